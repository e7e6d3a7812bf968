"""A mutant of mainline (not a kernel version), written for munmap under the write lock.

Two changes, both from one belief, that munmap runs alone in its mm (true before 4.20,
dd2283f2605e "mm: mmap: zap pages with read mmap_sem in munmap"):

* munmap's ``tlb_finish_mmu`` skips ``mm_tlb_flush_nested`` (no other gather of the mm can
  be open);
* ``flush_tlb_batched_pending`` marks the mm flushed before it flushes (``flushed :=
  pending``, then ``flush_tlb_mm``): a walker that read the mark in between would skip its
  own flush, but every such walker (madvise) is in a gather that sees the nesting and
  flushes the whole mm at its end, and munmap cannot run beside one.

Since munmap downgrades to the read lock before zapping, a madvise of a neighbouring range
runs beside its open gather: the madvise marks the mm flushed and is preempted before its
flush; munmap finds the mark, skips its flush, finds a PTE reclaim cleared (the flush
deferred) and returns with the entry still cached (S3).
``litmus/gap-munmap-downgrade.litmus``.
"""
from protocols.mut_batched_mark_first import BatchedMarkFirst


class MunmapExclusive(BatchedMarkFirst):
    """Mainline assuming munmap holds ``mmap_lock`` for write through its walk: the mark of
    ``flush_tlb_batched_pending`` first (:mod:`protocols.mut_batched_mark_first`), and no
    nested check for munmap."""

    def tlb_finish_mmu(self, tlb) -> None:
        """munmap: no nested check; the others: mainline."""
        if tlb.path == "munmap":
            self.tlb_flush_mmu(tlb)
            tlb.mm.tlb_flush_pending -= 1
            return
        super().tlb_finish_mmu(tlb)


EXPECTED_VIOLATION = "S3"
LITMUS = "gap-munmap-downgrade"
SUMMARY = ("munmap skips the nested check and flush_tlb_batched_pending marks before it "
           "flushes: after the downgrade a madvise's mark makes munmap skip its flush")
