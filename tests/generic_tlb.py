"""Mainline as on an architecture that flushes at every VMA's end.

``CONFIG_MMU_GATHER_MERGE_VMAS`` is selected by x86, powerpc, s390 and loongarch, and is the
model's default since 2026-12-07 15:00 (``Protocol.MMU_GATHER_MERGE_VMAS``, docs/model.md
section 11 item 34): ``tlb_end_vma`` does not flush. arm64, riscv and the others keep
asm-generic's flush at each VMA boundary (``tlb_flush_mmu_tlbonly``), which was the model's
only behaviour before that date.

The hand-written interleavings below that date (advances counted step by step through the
flush's interleaving point, each checked to fail on the model before its fix) run on
:class:`LinuxFlushAtVmaEnd`, the configuration they were recorded and checked on, so they
stay the same runs; those that a one-advance change re-fits to the new default moved to it
instead (each test says which).
"""
from protocols.linux import Linux


class LinuxFlushAtVmaEnd(Linux):
    """``linux`` with asm-generic's ``tlb_end_vma`` (``MMU_GATHER_MERGE_VMAS`` off, as on arm64)."""

    MMU_GATHER_MERGE_VMAS = False
