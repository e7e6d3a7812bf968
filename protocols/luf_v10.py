"""LUF v10 as posted (2024-05-10, "[PATCH v10 00/12] LUF(Lazy Unmap Flush) reducing tlb
numbers over 90%", Byungchul Park; kernel-notes 4.1-4.4).

Read-only folios unmapped by reclaim and migration are freed without a flush;
the page carries an unmap generation and is flushed when allocated again.
Unmaps still use ``set_tlb_ubc_flush_pending``, so ``flush_tlb_batched_pending``
flushes munmap/mprotect (Byungchul's argument in the seed). Give-up points of
the v10 cover letter: (1) a fault making a PTE writable, (2) mmap of a writable
mapping.

Ambiguity, read in LUF's favour: "when a non-writable PTE becomes writable
(fault handler)" is taken to cover every writable PTE a fault installs (also
``pte_none`` -> writable in ``do_shared_fault``), and the flush happens right
after ``set_pte_at`` under the PTL, before any CPU can use the new PTE.
"Folios whose PTEs were all read-only" is read as read-only *and clean* (the
migrc RFC v2 excluded ``pte_dirty`` folios), see ``LufBase.LUF_DIRTY_OK``.
"""
from protocols._luf import LufBase


class LufV10(LufBase):
    """LUF v10: deferral + allocation-time flush + fault/mmap give-ups."""

    def fault_install_pte(self, task, mm, vma, vpage, pte, write) -> None:
        """Give up LUF when a fault installs or upgrades a writable PTE."""
        if pte.writable:
            self.luf_flush_all(task)

    def mmap_region(self, task, mm, vma) -> None:
        """Give up LUF when a writable mapping is created."""
        if vma.writable:
            self.luf_flush_all(task)

#: the rule the fuzzer must find violated (tests/test_protocols.py, docs/LUF.md)
EXPECTED_VIOLATION = "C1"
