"""A mutant of mainline's mmu_gather (not a kernel version): ``tlb_flush_mmu`` frees, *then* flushes.

mm/mmu_gather.c ``tlb_flush_mmu`` is ``tlb_flush_mmu_tlbonly(tlb); tlb_flush_mmu_free(tlb);``
("unhook, invalidate, free": include/asm-generic/tlb.h, the comment at the top). This
variant swaps the two, in one plain hook. With ``CONFIG_MMU_GATHER_MERGE_VMAS`` (x86,
powerpc, s390: include/asm-generic/tlb.h "Indicates the architecture wants to merge ranges over
VMAs"), ``tlb_end_vma`` does not flush, so ``tlb_finish_mmu`` -> ``tlb_flush_mmu`` is the
gather's only flush and the order inside it is all that keeps a freed page out of other
CPUs' TLBs.

When a hook ran as one step, the free and the flush were atomic and the mutant passed
every scenario. On hardware the freed page is on the allocator's lists
(``free_pages_and_swap_cache`` -> ``free_unref_folios``) before this CPU sends the flush
IPI: another CPU can allocate and write it while a third still caches the old translation.
With the automatic interleaving point after the free (conformance/hookpoints.py) the model
has that window: ``litmus/gap-atomic-hook.litmus``, S1.

  CPU0 (munmap)                    CPU1 (mm0, caches v0 W D)      other consumer
  zap v0: PTE cleared, gathered
  tlb_finish_mmu -> tlb_flush_mmu:
    free pfn0          (point)
                                                                  allocates pfn0  <- S1
    flush_tlb_mm_range
"""
from protocols.linux import Linux


class GatherFreeBeforeFlush(Linux):
    """Mainline with ``MMU_GATHER_MERGE_VMAS`` and ``tlb_flush_mmu`` freeing before it flushes."""

    #: no flush at VMA boundaries (``tlb_finish_mmu`` does it): the model's default since
    #: 2026-12-07, set here all the same because the mutant's window needs it (with False,
    #: ``tlb_end_vma`` flushes before ``tlb_finish_mmu`` frees, and only a full batch's
    #: flush in mid-walk keeps the wrong order's window)
    MMU_GATHER_MERGE_VMAS = True

    def tlb_flush_mmu(self, tlb) -> None:
        """Free the gathered pages, then invalidate (the wrong order, in one plain hook)."""
        tlb.free_pages(tlb)
        self.tlb_flush_mmu_tlbonly(tlb)


#: the rule the fuzzer must find violated (tests/test_protocols.py asserts it)
EXPECTED_VIOLATION = "S1"
#: the scenario that shows the window (issue 14, "a hook with no yield is atomic")
LITMUS = "gap-atomic-hook"
