"""A mutant of mainline (not a kernel version): no final flush when an mm exits.

``exit_mmap`` opens its gather with ``tlb_gather_mmu_fullmm``: the mm has no users left.
The mutant's author concludes that nobody can use the mm's TLB entries any more and lets
``tlb_finish_mmu`` of such a gather free the pages without the flush (the forced flushes
of a full page batch mid-walk are kept). On x86 the CPUs that ran the mm keep it loaded in
lazy TLB mode with its entries (and paging-structure caches: ``free_pgtables`` sets
``freed_tables``, which is why x86 flushes lazy CPUs then) until a flush reaches them, so
the freed pages are reused while entries still map them (S1), and the next program
started in the mm slot reads through them (C1). Only an exiting mm reaches
this: before ``exit_mmap`` was modelled, ``fullmm`` was set only by the nested case of
``tlb_finish_mmu``, after the gather was opened. ``litmus/gap-exit-fullmm.litmus``.
"""
from protocols.linux import Linux


class ExitNoFlush(Linux):
    """Mainline whose ``tlb_finish_mmu`` skips the flush for an exiting mm's gather."""

    def tlb_gather_mmu(self, tlb) -> None:
        """``tlb_gather_mmu``; remember whether it was opened fullmm (``exit_mmap``)."""
        super().tlb_gather_mmu(tlb)
        tlb.proto = tlb.fullmm

    def tlb_finish_mmu(self, tlb) -> None:
        """An exiting mm's gather: free without flushing; any other: mainline."""
        if tlb.proto:
            tlb.free_pages(tlb)
            tlb.mm.tlb_flush_pending -= 1
            return
        super().tlb_finish_mmu(tlb)


EXPECTED_VIOLATION = "C1"
LITMUS = "gap-exit-fullmm"
SUMMARY = "exit_mmap's fullmm gather frees its pages without the final flush"
