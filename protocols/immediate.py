"""Immediate flush: every PTE clear is flushed at once. Slow, obviously correct; the baseline.

Models a kernel without ``CONFIG_ARCH_WANT_BATCHED_UNMAP_TLB_FLUSH`` (reclaim
uses ``ptep_clear_flush``, mm/rmap.c ``try_to_unmap_one``) whose mmu_gather
also flushes each PTE as it is cleared (``tlb_remove_tlb_entry`` ->
``flush_tlb_page`` instead of ``__tlb_adjust_range``), as on s390 where remote
flushes are synchronous with the PTE update (``ptep_get_and_clear_full`` uses IPTE).
"""
from conformance.protocol import Protocol


class Immediate(Protocol):
    """Flush at every PTE clear; nothing is ever deferred, so nothing is ever pending."""

    def should_defer_flush(self, task, mm) -> bool:
        """Never defer: reclaim and migration use ``ptep_clear_flush``."""
        return False

    def tlb_remove_tlb_entry(self, tlb, vpage) -> None:
        """Flush the page right away (s390-style IPTE), then record it as usual."""
        self.arch.flush_tlb_page(tlb.mm, vpage, tlb.task)
        super().tlb_remove_tlb_entry(tlb, vpage)


CORRECT = True  # meant to be correct: `flushcheck soundness` fuzzes it by default
