"""Linux 4.13-5.16: ``mm->tlb_flush_batched`` as a bool (3ea277194daa, Mel Gorman, 2017).

``set_tlb_ubc_flush_pending`` sets the bool after the PTE clear;
``flush_tlb_batched_pending`` does ``flush_tlb_mm(mm); barrier();
mm->tlb_flush_batched = false``. With split PTLs, reclaim can set the bool on
another page table between the flush and the clear, and the clear loses it
(the 2021 race, fixed by 5ee2fa2f0636; kernel-notes 2.7).

Only ``tlb_flush_batched`` is 4.13's: everything else is today's mainline (migration's
batched flush of v6.3 included), i.e. mainline with 5ee2fa2f0636 reverted.
"""
from protocols.linux import Linux


class Linux413(Linux):
    """The bool ``tlb_flush_batched`` of 4.13-5.16."""

    def set_tlb_ubc_flush_pending(self, task, mm, pteval, vpage) -> None:
        """``arch_tlbbatch_add_mm``; ``flush_required = true``; ``barrier(); mm->tlb_flush_batched = true``."""
        ubc = task.tlb_ubc
        self.arch.arch_tlbbatch_add_pending(ubc.arch, mm, vpage)
        ubc.flush_required = True
        mm.proto.tlb_flush_batched = True
        if pteval.dirty:
            ubc.writable = True

    def flush_tlb_batched_pending(self, task, mm):
        """``if (mm->tlb_flush_batched) { flush_tlb_mm(mm); barrier(); mm->tlb_flush_batched = false; }``"""
        st = mm.proto
        if st.tlb_flush_batched:
            self.arch.flush_tlb_mm(mm, task)
            yield
            st.tlb_flush_batched = False

#: the rule the fuzzer must find violated (tests/test_protocols.py asserts it)
EXPECTED_VIOLATION = "S3"

#: the historical bug corpus (docs/CORPUS.md, bench/corpus.py)
BUG = "2.7"
FIXED_BY = "5ee2fa2f0636"
LITMUS = "bug-2.7-lost-pending-flush"
SUMMARY = ("the bool mm->tlb_flush_batched set by reclaim on one page table is cleared by "
           "flush_tlb_batched_pending on another; a later munmap skips the flush")
