"""The fix for the lazyfree finding of docs/LUF.md, on LUF v11 (favourable reading).

The finding: reclaim's ``try_to_unmap_one`` clears a lazyfree (MADV_FREE) folio's PTE
with the flush deferred (``set_tlb_ubc_flush_pending``) *before* the MADV_FREE check, and
the discard keeps that deferral; no LUF posting tests ``folio_test_swapbacked``, so a
clean lazyfree folio whose PTE was write-protected (mprotect(PROT_READ) here, fork's COW
write-protect in the kernel) is taken for LUF and freed through ``free_folios_luf``
without a flush. After reclaim returns a CPU still reads the pre-MADV_FREE data through
a read-only entry while the location reads zero for everyone else (C1; O1 where another
thread's fault maps the zero page without a flush).

The fix (``LufBase.LUF_LAZYFREE = False``): in ``can_luf_init`` (v12 naming; v10/v11
``can_luf_folio``), a folio that is anonymous and ``!folio_test_swapbacked`` is not
LUF-able; its deferred flush stays in ``tlb_ubc`` and ``try_to_unmap_flush()`` does it
before ``shrink_folio_list`` frees the discarded folio, as in mainline. Equivalent to
sending the discard to the normal free batch. The cost: discards of lazyfree folios are
flushed as mainline flushes them (docs/LUF.md, cost table).

Built on :mod:`protocols.luf_v11` (the variant whose only random-machine finding was the
lazyfree one) so that it could pass the random machine; the same one-line change applies
to every variant.

It does not pass it (found 2026-12-02, `flushcheck certify luf_lazyfree_fix --seed 31337`,
C1 after 21 s with two jobs, shrunk to 10 actions): a hole punch races with a fault and a
reclaim of the same file page, and v11 has no flush on that path
(``litmus/luf-trunc-hole-punch.litmus``, explored; v12's ``luf_flush(0)`` at the end of
``truncate_inode_pages_range`` answers it: ``luf_v12`` passes the file)::

  CPU0 (fallocate PUNCH_HOLE)              CPU2
  unmap_mapping_range: zap file0:1,
    flush_tlb_batched_pending, flush
                                           read v3: fault maps file0:1 again (RO, cached)
                                           reclaim: ptep_get_and_clear, LUF defers the
                                             flush; the folio is kept (gather's reference)
  truncate_inode_folio: folio unmapped,
    deleted from the page cache, hole zeroed
  return                                   [old entry still cached: reads the old data]
                                           C1: the file reads 0, CPU2 reads 1001
"""
from protocols.luf_v11 import LufV11


class LufLazyfreeFix(LufV11):
    """LUF v11 (favourable reading) with lazyfree folios excluded from LUF."""

    LUF_LAZYFREE = False


#: the hole-punch race above (the lazyfree finding, scenario 6, passes)
EXPECTED_VIOLATION = "C1"
LITMUS = "luf-trunc-hole-punch"
