"""LUF RFC v12 (2025-02-20, "[RFC PATCH v12 00/26]", Byungchul Park; kernel-notes 4.3-4.4).

Keys/generations (``luf_ugen``, ``luf_batch[]``, per-page ``luf_key``) track what each
freed page owes; the allocator flushes it at takeoff. Patch 16/26's ``luf_flush(0)``
flush points modelled here: ``tlb_end_vma()`` (every zap/munmap VMA, mprotect),
the end of ``handle_mm_fault()`` for ``VM_WRITE|VM_MAYWRITE`` VMAs or write faults,
``mapping_write_begin()`` (file updates), ``finish_task_switch()``, and the end of
``truncate_inode_pages_range()`` (hole punch; the patch also flushes after
``truncate_inode_folio``'s removal, the same point for the model's one-page punch).
Eligibility is decided on ``pte_write`` (v12 ``can_luf_*``). Not modelled: the other
invalidate paths (``folio_invalidate``, ``mapping_evict_folio``, ``mapping_try_invalidate``,
``invalidate_inode_pages2_range``: no such path in the machine) and ``remove_mapping``
(not reclaim's ``__remove_mapping``), KASAN / init_on_free, ``ptep_clear_flush`` of inaccessible PTEs (no
such path in the machine), and the flush at the end of ``folio_mkclean`` (the machine
has writeback and ``folio_mkclean`` now, but calls no protocol hook there; see
:mod:`protocols.luf_v12_posted` for why it cannot change a verdict here).

Reading in LUF's favour: the ``finish_task_switch()`` flush is taken on *every*
context switch (``context_switch``). The posting has it in the block that drops a
borrowed lazy-TLB mm (kernel-notes section 7); :mod:`protocols.luf_v12_posted` is that
reading, and docs/LUF.md shows both rows.

Note the fault flush is at the *end* of ``handle_mm_fault``, after the PTE is
installed and the PTL dropped, as in the posting.

Eligibility follows v12 exactly: a read-only but *dirty* PTE qualifies, which is
what exposes the race with a concurrent mprotect whose mmu_gather flush is
still pending (docs/LUF.md).
"""
from protocols._luf import LufBase


class LufV12(LufBase):
    """LUF RFC v12 flush points."""

    #: v12 ``can_luf_*``: only write permission disqualifies a folio, not the dirty bit
    LUF_DIRTY_OK = True

    def tlb_end_vma(self, tlb, vma) -> None:
        self.luf_flush_all(tlb.task)
        super().tlb_end_vma(tlb, vma)

    def handle_mm_fault_end(self, task, mm, vma, vpage, write) -> None:
        if write or vma.writable or vma.maywrite:
            self.luf_flush_all(task)

    def mapping_write_begin(self, task, file, pgoff) -> None:
        self.luf_flush_all(task)

    def truncate_inode_pages_range(self, task, file, pgoff) -> None:
        """Patch 16/25 of v12 calls ``luf_flush(0)`` after ``truncate_inode_folio``'s
        ``filemap_remove_folio`` and at the end of ``truncate_inode_pages_range``: a hole
        punch cannot leave a LUF'd entry reading the removed folio
        (``litmus/luf-trunc-hole-punch.litmus``)."""
        self.luf_flush_all(task)

    def context_switch(self, cpu_id, prev, next_mm) -> None:
        self.luf_flush_all(cpu_id)

#: the rule the fuzzer finds first (tests/test_protocols.py: seed 0, 6000 examples of 100 steps):
#: the S2 of the mprotect race (litmus/bug-2.4-reclaim-vs-mprotect.litmus). The lazyfree C1
#: (litmus/luf-6-lazyfree-discard.litmus) is what docs/LUF.md's random column finds first
#: (certify --seed 1, 50 steps); LUF.md lists both.
EXPECTED_VIOLATION = "S2"
