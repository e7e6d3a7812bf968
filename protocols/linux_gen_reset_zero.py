"""Mainline with an off-by-one in the overflow reset of ``mm->tlb_flush_batched``
(a mutant for issue 14's small-counter gap; not a kernel release).

mm/rmap.c ``set_tlb_ubc_flush_pending``: when the pending generation grows past
``TLB_FLUSH_BATCH_PENDING_LARGE`` the cmpxchg resets the counter "to be 1 and 0"
(pending 1, flushed 0): the deferral being recorded right now is still pending. This
mutant resets it to 0 ("start counting again"), so pending == flushed and the next
``flush_tlb_batched_pending`` skips the flush the reset deferral needs: munmap or
mprotect returns with the stale entry cached (S3), the 2017 race again.

With mainline's 15-bit pending half the reset needs 16384 deferrals in one mm, which no
walk reaches; the machine's ``batch_gen_bits=2`` (this module's ``CONFIG`` and
litmus/gap-gen-reset.litmus; no longer a config of the wide set since 2026-12-03,
conformance/config.py) reaches it at the third deferral.

  CPU1 (reclaim)                       CPU0 (same mm)
  3rd deferral: pending > LARGE,
    tlb_flush_batched := 0
                                       mprotect: flush_tlb_batched_pending: 0 == 0,
                                         no flush; PTE none, nothing recorded   <- S3
"""
from protocols.linux import Linux


class GenResetZero(Linux):
    """The overflow reset forgets the deferral it is recording."""

    def batch_reset(self, batch: int) -> int:
        return 0


#: found only with a small counter (MachineConfig.batch_gen_bits=2, CONFIG below)
EXPECTED_VIOLATION = "S3"
LITMUS = "gap-gen-reset"
CONFIG = {"batch_gen_bits": 2}
SUMMARY = ("the tlb_flush_batched overflow reset writes 0 instead of pending 1 / flushed 0: "
           "the deferral being recorded looks flushed")
