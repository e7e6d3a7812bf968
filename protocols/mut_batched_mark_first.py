"""A mutant of mainline (not a kernel version): ``flush_tlb_batched_pending`` marks the mm
flushed before it flushes.

The cmpxchg ``flushed := pending`` moves in front of ``flush_tlb_mm``. A second caller that
reads the mark in between skips its flush although the first one's has not happened yet.
Before truncate was modelled every such second caller was a madvise (the only other walker
under the read ``mmap_lock``), whose gather sees the first one's gather open
(``mm_tlb_flush_nested``) and flushes the whole mm at its end: the mistake was masked
(issue 14). ``mremap``'s ``move_ptes`` calls ``flush_tlb_batched_pending`` with no gather
open (its unmap of the old range comes after the moves), and a hole punch
(``unmap_mapping_range``, no ``mmap_lock``) runs beside it: an mremap marks the mm and is
preempted before its flush; the hole punch reads the mark, skips its flush, finds the PTE
reclaim already cleared, sees no other gather open and returns while another CPU still
caches the page (S3). ``litmus/gap-mremap-vs-truncate.litmus``. (The reverse order is no
race: mremap's unmap of the old range sees the hole punch's gather and flushes the mm;
``litmus/gap-truncate-vs-mremap.litmus``.)
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
LITMUS = "gap-mremap-vs-truncate"
SUMMARY = ("flush_tlb_batched_pending marks the mm flushed before flushing; an mremap "
           "preempted in between makes a hole punch skip its flush")
