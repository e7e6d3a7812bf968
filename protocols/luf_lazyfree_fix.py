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

Built on :mod:`protocols.luf_v11` (the variant whose only random-machine finding is the
lazyfree one) so that it can pass the random machine; the same one-line change applies
to every variant.
"""
from protocols.luf_v11 import LufV11


class LufLazyfreeFix(LufV11):
    """LUF v11 (favourable reading) with lazyfree folios excluded from LUF."""

    LUF_LAZYFREE = False
