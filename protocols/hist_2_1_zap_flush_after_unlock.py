"""Before 1cf35d47712d "mm: split 'tlb_flush_mmu()' into tlb flushing and memory freeing
parts" (Linus Torvalds, 2014; reported by Ben Herrenschmidt, tested by Dave Hansen).

``zap_pte_range`` found a dirty shared-file PTE, called ``set_page_dirty``, removed the rmap
and dropped the PTL; the TLB was flushed only later (``tlb_finish_mmu``; x86's
``tlb_end_vma`` was an empty stub).
Meanwhile another CPU kept writing through its stale writable entry, and ``page_mkclean``
(writeback), no longer finding the mapping, did not wait: the page was written out and
cleaned while the writes went on, and the later ones were lost. kernel-notes 2.1.

Mainline (:mod:`protocols.linux`) with only that fix reverted: no ``force_flush`` for a dirty
file PTE, so no flush before the PTL is dropped, and no ``delay_rmap`` (which came later,
5df397dec7c4).

  CPU0 (munmap)                          CPU1 (same mm)            CPU2 (writeback)
  zap_pte_range: PTE dirty, cleared,     (writable dirty entry
    set_page_dirty, page_remove_rmap      cached)
  pte_unmap_unlock (no flush)
                                                                   folio_mkclean: no mapping
                                         store (no fault)          copy out, mark clean   <- S2
  tlb_finish_mmu: flush
"""
from protocols.linux import Linux


class ZapFlushAfterUnlock(Linux):
    """A dirty shared-file PTE neither forces a flush under the PTL nor delays the rmap."""

    ZAP_DIRTY_FILE_PTE = (False, False)


EXPECTED_VIOLATION = "S2"
BUG = "2.1"
FIXED_BY = "1cf35d47712d"
LITMUS = "bug-2.1-zap-dirty-shared"
SUMMARY = ("zap drops the PTL before flushing a dirty shared-file PTE; writeback cleans and "
           "writes the page while a stale writable entry keeps writing")
