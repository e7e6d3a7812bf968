"""Before 383c4613c67c "mm: close theoretical race where stale TLB entries could linger"
(Ryan Roberts, 2025; Fixes 3ea277194daa and 9c276cc65a58; Reviewed-by Jann Horn).

``madvise_free_pte_range`` / ``madvise_cold_or_pageout_pte_range`` drop the PTL to split a
large folio and re-take it without calling ``flush_tlb_batched_pending`` again; a reclaim
that cleared a PTE of that table in the gap leaves its deferred flush unseen, and madvise
returns with the old entry cached. kernel-notes 2.11 (Jann Horn's interleaving).

Mainline (:mod:`protocols.linux`) without the re-check after re-locking.

  CPU0 (madvise FREE)                    CPU1 (reclaim)
  pte_offset_map_lock
  flush_tlb_batched_pending
  pte_unmap_unlock (split folio)
                                         try_to_unmap_one: get_and_clear,
                                           set_tlb_ubc_flush_pending
  pte_offset_map_lock
  [old PTE still cached in TLB]  ... return                          <- S3
"""
from protocols.linux import Linux


class MadviseNoRecheck(Linux):
    """No ``flush_tlb_batched_pending`` after madvise re-takes the PTL."""

    RECHECK_AFTER_RELOCK = False


EXPECTED_VIOLATION = "S3"
BUG = "2.11"
FIXED_BY = "383c4613c67c"
LITMUS = "bug-2.11-madvise-relock"
SUMMARY = ("madvise drops the PTL to split a folio and re-takes it without "
           "flush_tlb_batched_pending; a reclaim in the gap leaves a stale entry behind")
