"""A mutant of mainline (not a kernel version): ``flush_tlb_batched_pending`` marks the mm
flushed before it flushes.

The cmpxchg ``flushed := pending`` moves in front of ``flush_tlb_mm``. A second caller that
reads the mark in between skips its flush although the first one's has not happened yet.
Before truncate was modelled every such second caller was a madvise (the only other walker
under the read ``mmap_lock``), whose gather sees the first one's gather open
(``mm_tlb_flush_nested``) and flushes the whole mm at its end: the mistake was masked
(issue 14). ``mremap``'s ``move_ptes`` calls ``flush_tlb_batched_pending`` with no gather,
and truncate (``unmap_mapping_range``, no ``mmap_lock``) runs beside it: a truncate marks
the mm and is preempted before its flush; mremap skips its flush, moves the swap entry
reclaim left behind and returns while another CPU still caches the old address (S3).
``litmus/gap-truncate-vs-mremap.litmus``.
"""
from protocols.linux import TLB_FLUSH_BATCH_FLUSHED_SHIFT, TLB_FLUSH_BATCH_PENDING_MASK, Linux


class BatchedMarkFirst(Linux):
    """Mainline with the mark and the flush of ``flush_tlb_batched_pending`` swapped."""

    def flush_tlb_batched_pending(self, task, mm):
        """If pending != flushed: flushed := pending, **yield**, ``flush_tlb_mm``."""
        st = mm.proto
        batch = st.tlb_flush_batched
        pending = batch & TLB_FLUSH_BATCH_PENDING_MASK
        if pending != batch >> TLB_FLUSH_BATCH_FLUSHED_SHIFT:
            st.tlb_flush_batched = pending | (pending << TLB_FLUSH_BATCH_FLUSHED_SHIFT)
            yield
            self.arch.flush_tlb_mm(mm, task)


EXPECTED_VIOLATION = "S3"
LITMUS = "gap-truncate-vs-mremap"
SUMMARY = ("flush_tlb_batched_pending marks the mm flushed before flushing; a truncate "
           "preempted in between makes mremap skip its flush")
