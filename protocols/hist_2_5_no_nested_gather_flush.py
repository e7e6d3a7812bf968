"""Before 99baac21e458 "mm: fix MADV_[FREE|DONTNEED] TLB flush miss problem" (Minchan Kim,
2017).

Two ``madvise(MADV_FREE)`` (or DONTNEED) calls on the same range run in parallel under
``mmap_lock`` held for read, each with its own ``mmu_gather``. The first cleans the PTEs and
will flush at its ``tlb_finish_mmu``; the second finds them already clean, gathers nothing
and returns without flushing, while its own thread still holds a writable dirty entry: later
writes do not set the PTE dirty bit and reclaim discards them. The fix: ``tlb_finish_mmu``
forces a flush of the whole range when ``mm_tlb_flush_nested`` (another gather is open).
kernel-notes 2.5.

Mainline (:mod:`protocols.linux`) with the nested check removed.

  CPU0 (madvise FREE)                    CPU1 (madvise FREE, same range)   CPU2
  gather; PTE: clear D, deferred flush                                     (W D entry)
                                         gather; PTE clean: nothing
                                         tlb_finish_mmu: no flush, return  <- S3
  tlb_finish_mmu: flush
"""
from protocols.linux import Linux


class NoNestedGatherFlush(Linux):
    """``tlb_finish_mmu`` without the ``mm_tlb_flush_nested`` forced flush."""

    def tlb_finish_mmu(self, tlb) -> None:
        """``tlb_flush_mmu``; ``dec_tlb_flush_pending`` (no nested check)."""
        self.tlb_flush_mmu(tlb)
        tlb.mm.tlb_flush_pending -= 1


EXPECTED_VIOLATION = "S3"
BUG = "2.5"
FIXED_BY = "99baac21e458"
LITMUS = "bug-2.5-parallel-madvise-free"
SUMMARY = ("parallel MADV_FREE on one range: the second finds the PTEs already clean, gathers "
           "nothing and returns while a writable dirty entry is still cached")
