"""The hardware: what the kernel and the protocol under test drive, and the oracle watches.

=====================  ================================================================
module                 models
=====================  ================================================================
:mod:`.tlb`            CPUs and their PCID-tagged TLBs (Intel SDM Vol. 3A 4.8, 4.10):
                       fill, hit, dirty-bit walk, eviction
:mod:`.arch`           the x86 flush primitives protocols call (arch/x86/mm/tlb.c):
                       ``flush_tlb_mm_range``, ``arch_tlbbatch_flush``, ``tlb_gen``
:mod:`.physmem`        physical frames and their contents (with the kernel's per-pfn
                       state beside them, see its docstring)
=====================  ================================================================

The kernel's paths are :mod:`conformance.mm`; the page tables, being the kernel's data
that the hardware walks, are :mod:`conformance.mm.mm_types`.
"""
