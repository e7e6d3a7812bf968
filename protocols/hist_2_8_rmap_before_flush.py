"""Before 5df397dec7c4 "mm: delay page_remove_rmap() until after the TLB has been flushed"
(Linus Torvalds, 2022).

Since 1cf35d47712d ``zap_pte_range`` flushed a dirty shared-file PTE before dropping the PTL,
but still called ``page_remove_rmap`` at zap time, before that flush. The page was then
"invisible to rmap": ``folio_mkclean`` did not walk to this PTE, so it did not serialise on
the PTL, and writeback could start while another CPU still had the stale writable entry: a
lost write. kernel-notes 2.8.

Mainline (:mod:`protocols.linux`) with only ``delay_rmap`` reverted (``force_flush`` kept).

  CPU0 (munmap)                          CPU1 (same mm)            CPU2 (writeback)
  zap_pte_range (PTL held):              (writable dirty entry
    PTE dirty: cleared, force_flush,      cached)
    page_remove_rmap
                                                                   folio_mkclean: no mapping
                                         store (no fault)          copy out, mark clean   <- S2
    tlb_flush_mmu_tlbonly
  pte_unmap_unlock
"""
from protocols.linux import Linux


class RmapBeforeFlush(Linux):
    """Force the flush under the PTL, but remove the rmap before it."""

    ZAP_DIRTY_FILE_PTE = (True, False)


EXPECTED_VIOLATION = "S2"
BUG = "2.8"
FIXED_BY = "5df397dec7c4"
LITMUS = "bug-2.8-rmap-before-flush"
SUMMARY = ("zap removes the rmap of a dirty shared-file page before its flush under the PTL; "
           "folio_mkclean does not wait and writeback runs beside a stale writable entry")
