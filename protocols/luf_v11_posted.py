"""LUF v11 *as posted* (2024-05-31, "[PATCH v11 00/12]", Byungchul Park): the readings
:mod:`protocols.luf_v11` takes in LUF's favour, undone.

Source lines for each decision (kernel-notes section 4.1 and section 7, "LUF postings vs
the modules"; the v11 cover letter: "cancel LUF in file_end_write(), after
update_mmu_tlb*() making PTE writable"):

1. Eligibility on ``pte_write(pteval)`` alone (v11 09/12, as v10): a read-only dirty PTE
   keeps the folio LUF-able, ``LUF_DIRTY_OK = True``.
2. The fault path flushes only where v11's ``need_luf_flush`` fires: after
   ``update_mmu_tlb*()``, i.e. when the fault finds that the PTE was changed under it
   (another CPU installed it meanwhile) and the PTE it finds is writable. A fault that
   itself installs or upgrades a writable PTE (``do_anonymous_page``,
   ``finish_fault``, ``do_swap_page``, ``wp_page_reuse``) does *not* flush. Modelled in
   :meth:`handle_mm_fault_end`: the fault installed nothing (``fault_install_pte`` was
   not called for it) and the PTE is present and writable. *Simplification*: the kernel
   flushes under the PTL at ``update_mmu_tlb``; here it happens at the end of the fault,
   after the PTL is dropped (the PTE found is someone else's, so no CPU is waiting on
   this fault to use it).
3. No flush in ``mm/mmap.c``: v11 touches no mmap path (``mmap_region`` does nothing);
   v10's cover letter promised a give-up at writable mmap, v11's code has none.
4. ``file_end_write()`` flushes (``luf_flush``), as :mod:`protocols.luf_v11`.

Dave Hansen's v11 NAK (scenario 3, a read-only and a writable mapping of one file) is
about this code: the store through the writable mapping installs a writable PTE with no
flush.
"""
from protocols._luf import LufBase


class LufV11Posted(LufBase):
    """LUF v11 as posted: ``file_end_write`` + ``need_luf_flush``; ``pte_write`` eligibility."""

    #: v11 09/12: ``pte_write`` only
    LUF_DIRTY_OK = True

    def fault_install_pte(self, task, mm, vma, vpage, pte, write) -> None:
        """``set_pte_at`` in the fault paths: v11 adds no flush here; remember that this
        fault installed (or upgraded) the PTE of ``vpage``, for :meth:`handle_mm_fault_end`
        (which asks about the faulting page: a neighbour fault-around mapped does not count,
        docs/model.md section 11 item 32)."""
        ubc = task.tlb_ubc
        if ubc is not None:
            ubc.fault_installed += (vpage,)

    def handle_mm_fault_end(self, task, mm, vma, vpage, write) -> None:
        """v11 ``need_luf_flush``: the fault found the PTE changed under it (``!pte_same`` ->
        ``update_mmu_tlb``) to a writable one: ``luf_flush(0)``."""
        if vpage in task.tlb_ubc.fault_installed:
            return
        pte = mm.ptes[vpage]
        if pte.kind == 1 and pte.writable:
            self.luf_flush_all(task)

    def file_end_write(self, task, file, pgoff) -> None:
        """``file_end_write()``: the file changed, give up LUF (v11 11/12)."""
        self.luf_flush_all(task)

#: the rule the fuzzer finds first (tests/test_protocols.py: seed 0, 6000 examples of 100
#: steps): the S2 of the mprotect race (pte_write-only eligibility); docs/LUF.md lists every
#: rule it violates (the lazyfree C1 among them)
EXPECTED_VIOLATION = "S2"
