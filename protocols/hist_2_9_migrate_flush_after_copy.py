"""Batched migration without flush-before-copy (the ordering rule of 7e12beb8ca2a
"migrate_pages: batch flushing TLB", Huang Ying, 2023).

``migrate_pages_batch`` unmaps a batch with the flush deferred (``TTU_BATCH_FLUSH``) and must
call ``try_to_unmap_flush()`` *before* ``migrate_folio_move`` copies: a CPU that still caches
the source writable and dirty writes without faulting, and the write lands in the source
after the copy, lost (kernel-notes 1.9, 2.9). This mutant batches the same way but flushes
only after the copies, just before the sources are freed (which keeps S1 intact): the
naive batching the commit's ordering exists to rule out. Not a kernel release; the
inaccessible-PTE regression of 2.9 (4d4b6d66db63) needs PROT_NONE, which the model lacks.

  CPU0 (migrate)                          CPU1 (same mm)
  try_to_migrate_one: migration entry,    (W D entry cached)
    flush deferred
  migrate_folio_move: copy src -> dst     <- S2 (store through the entry would be lost)
  try_to_unmap_flush()
"""
from protocols.linux import Linux


class MigrateFlushAfterCopy(Linux):
    """Flush the migration batch after the copy instead of before it."""

    MIGRATE_FLUSH_BEFORE_COPY = False


EXPECTED_VIOLATION = "S2"
BUG = "2.9"
FIXED_BY = "7e12beb8ca2a"  # the commit whose ordering it breaks: no kernel shipped this bug
LITMUS = "bug-2.9-migrate-flush-before-copy"
SUMMARY = ("batched migration copies the source before flushing the deferred unmap: a "
           "store through a stale writable entry is lost")
