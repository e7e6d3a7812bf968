"""Linux 4.3-4.12: batched unmap flush with no ``flush_tlb_batched_pending`` at all.

72b252aed506 "mm: send one IPI per CPU to TLB flush all entries after
unmapping pages" (Mel Gorman, 4.3) + d950c9477d51 "mm: defer flush of writable
TLB entries". Nothing tells mprotect/munmap/mremap/madvise that reclaim left a
flush pending: the 2017 race (3ea277194daa; kernel-notes 2.4).

Only the batch and its per-mm mark are 4.3's: everything else is today's mainline (the
model's kernel paths and :class:`protocols.linux.Linux`'s other hooks), so this is mainline
with 3ea277194daa reverted, not a 4.3 kernel. In particular migration defers its flush
(``TTU_BATCH_FLUSH``, 7e12beb8ca2a, v6.3), which 4.3 did not: the 2.4 race through
migration (``litmus/model-mprotect-vs-migration.litmus``) is this module's, not 4.3's.
"""
from protocols.linux import Linux


class Linux43(Linux):
    """Batched unmap flush before the 2017 fix: no per-mm mark."""

    def set_tlb_ubc_flush_pending(self, task, mm, pteval, vpage) -> None:
        """OR ``mm_cpumask`` into the batch, ``flush_required = true`` (+ ``writable`` if dirty)."""
        ubc = task.tlb_ubc
        self.arch.arch_tlbbatch_add_pending(ubc.arch, mm, vpage)
        ubc.flush_required = True
        if pteval.dirty:
            ubc.writable = True

    def flush_tlb_batched_pending(self, task, mm) -> None:
        """Did not exist before 4.13."""

#: the rule the fuzzer must find violated (tests/test_protocols.py asserts it)
EXPECTED_VIOLATION = "S3"

#: the historical bug corpus (docs/CORPUS.md, bench/corpus.py)
BUG = "2.4"
FIXED_BY = "3ea277194daa"
LITMUS = "bug-2.4-reclaim-vs-mprotect"
SUMMARY = ("reclaim clears a PTE and defers the flush; mprotect/munmap of that page find it "
           "non-present, flush nothing and return with the old entry cached")
