"""A mutant of mainline (not a kernel version): one TLB flush per mmu_gather.

Its author reads x86's ``CONFIG_MMU_GATHER_MERGE_VMAS`` (``tlb_end_vma`` does not flush) as
"one flush per gather, at ``tlb_finish_mmu``", and keeps the one early flush the kernel
documents: ``zap_pte_range`` flushes under the PTL when it zapped a dirty shared-file PTE
(1cf35d47712d, 5df397dec7c4), so that ``folio_mkclean`` cannot miss that entry. So
``tlb_flush_mmu_tlbonly`` flushes only when delayed rmaps are pending (that forced flush,
which covers the whole range gathered so far) or from ``tlb_finish_mmu``, and
``tlb_flush_mmu``, which ``zap_pte_range`` calls right after its forced flush, only frees
the batch ("nothing left to invalidate").

Correct as long as the only forced flush is the dirty-shared one. It is not: when the
gather's page batch is full (``__tlb_remove_page`` returns true), ``zap_pte_range`` forces
a flush too, with no delayed rmap, and ``tlb_flush_mmu`` then frees pages whose entries
are still cached (S1 at their reuse). Only the bounded batch (``MachineConfig.gather_batch``,
docs/model.md section 5) reaches that. ``litmus/gap-gather-full-midwalk.litmus``.
"""
from conformance.protocol import Protocol
from protocols.linux import Linux


class GatherFlushOnce(Linux):
    """Mainline with the gather's flushes merged into ``tlb_finish_mmu``."""

    def tlb_flush_mmu_tlbonly(self, tlb) -> None:
        """Flush now only for delayed rmaps (the dirty-shared forced flush); else wait for
        ``tlb_finish_mmu``."""
        if tlb.delayed_rmap:
            Protocol.tlb_flush_mmu_tlbonly(self, tlb)

    def tlb_flush_mmu(self, tlb) -> None:
        """Free the batch: the caller's forced flush already ran (so the author believes)."""
        tlb.free_pages(tlb)

    def tlb_finish_mmu(self, tlb) -> None:
        """The nested check, the one flush of the gather, then free."""
        if tlb.mm.tlb_flush_pending > 1:  # mm_tlb_flush_nested
            tlb.fullmm = True
            tlb.reset_range()
            tlb.freed_tables = True
        Protocol.tlb_flush_mmu_tlbonly(self, tlb)
        tlb.free_pages(tlb)
        tlb.mm.tlb_flush_pending -= 1


EXPECTED_VIOLATION = "S1"
LITMUS = "gap-gather-full-midwalk"
SUMMARY = ("flushes an mmu_gather only for delayed rmaps and at tlb_finish_mmu; a full page "
           "batch forces tlb_flush_mmu mid-walk, which then frees pages still cached")
