"""LUF RFC v12 (2025-02-20, "[RFC PATCH v12 00/26]", Byungchul Park; kernel-notes 4.3-4.4).

Keys/generations (``luf_ugen``, ``luf_batch[]``, per-page ``luf_key``) track what each
freed page owes; the allocator flushes it at takeoff. Patch 16/26's ``luf_flush(0)``
flush points modelled here: ``tlb_end_vma()`` (every zap/munmap VMA, mprotect),
the end of ``handle_mm_fault()`` for ``VM_WRITE|VM_MAYWRITE`` VMAs or write faults,
``mapping_write_begin()`` (file updates), ``finish_task_switch()``, and the end of
``truncate_inode_pages_range()`` (hole punch; the patch also flushes after
``truncate_inode_folio``'s removal, the same point for the model's one-page punch),
the end of ``folio_mkclean()``; and, of 25/26 and 16/26, ``luf_flush(fold_unmap_luf())``
when ``shrink_folio_list`` keeps a folio ``try_to_unmap`` found LUF-able (``keep:``) and
``can_luf_fail()`` when ``try_to_unmap_one`` aborts its walk (both added 2026-12-05;
before, the model deferred those flushes longer than the series). An allocation flushes
its page's pass (``luf_batch[luf_key]``; ``TAKEOFF_SCOPE``).
Eligibility is decided on ``pte_write`` (v12 ``can_luf_*``). Not modelled: the other
invalidate paths (``folio_invalidate``, ``mapping_evict_folio``, ``mapping_try_invalidate``,
``invalidate_inode_pages2_range``: no such path in the machine) and ``remove_mapping``
(not reclaim's ``__remove_mapping``), KASAN / init_on_free, and ``ptep_clear_flush`` of
inaccessible PTEs (no such path in the machine).

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

    #: v12 16/26, 18/26: an allocation flushes ``luf_batch[luf_key]``, its page's pass
    TAKEOFF_SCOPE = "pass"

    def tlb_end_vma(self, tlb, vma) -> None:
        self.luf_flush_all(tlb.task)
        super().tlb_end_vma(tlb, vma)

    def handle_mm_fault_end(self, task, mm, vma, vpage, write) -> None:
        if write or vma.writable or vma.maywrite:
            self.luf_flush_all(task)

    def mapping_write_begin(self, task, file, pgoff) -> None:
        self.luf_flush_all(task)

    def truncate_inode_pages_range(self, task, file, pgoff) -> None:
        """Patch 16/26 of v12 calls ``luf_flush(0)`` after ``truncate_inode_folio``'s
        ``filemap_remove_folio`` and at the end of ``truncate_inode_pages_range``: a hole
        punch cannot leave a LUF'd entry reading the removed folio
        (``litmus/luf-trunc-hole-punch.litmus``)."""
        self.luf_flush_all(task)

    def context_switch(self, cpu_id, prev, next_mm) -> None:
        self.luf_flush_all(cpu_id)

    def folio_mkclean(self, task, frame) -> None:
        """v12 16/26: ``luf_flush(0)`` at the end of ``folio_mkclean`` ("Ensure to clean
        stale tlb entries for this mapping"), before writeback copies the folio out."""
        self.luf_flush_all(task)

    def walk_abort(self, task, frame, migration) -> None:
        """v12 16/26: ``if (!ret) can_luf_fail();`` at the end of ``try_to_unmap_one``: a
        walk that stopped (a lazyfree folio found re-dirtied) makes the folio not LUF-able,
        so :meth:`try_to_unmap_end` puts its batch in ``tlb_ubc``, flushed at the pass's
        end as mainline's, where the model deferred it until the frame's next allocation
        before 2026-12-05 (docs/model.md section 11)."""
        task.tlb_ubc.folio_ro = False

    def shrink_folio_list_keep(self, task, frame) -> None:
        """v12 25/26: ``if (can_luf) luf_flush(fold_unmap_luf());`` at ``keep:``.

        ``can_luf`` is what ``try_to_unmap`` returned for the kept folio:
        ``can_luf_test()``, v12's ``current->can_luf`` (set by ``can_luf_init`` for an
        anonymous or file folio, cleared by ``can_luf_fail()`` at a writable PTE or an
        aborted walk). Unlike v10/v11's it does not ask whether a PTE was batched, so a
        folio whose PTEs were all cleared with ``ptep_clear_flush`` flushes here too.

        ``fold_unmap_luf()`` gives this pass's ``tlb_ubc_luf`` (every LUF-able folio it
        unmapped so far, not only this one) a new key, and ``luf_flush(key)`` folds that
        batch into ``tlb_ubc`` and ends in ``try_to_unmap_flush()``, which flushes the
        task's other batches too. With nothing to fold, or all of it covered by
        ``tlb_ubc`` already (``arch_tlbbatch_done``), it returns 0 and ``luf_flush(0)``
        flushes ``luf_batch[0]``: every LUF deferral (16/26 "Accumulate to the 0th entry
        right away"; :meth:`luf_flush_all`). The pass's folios owe nothing afterwards;
        they leave ``unkeyed`` after the flush, as in :meth:`try_to_unmap_flush_dirty`, so
        a ``luf_flush(0)`` in between still covers them. (Before 2026-12-05 the model
        flushed here only the pass's LUF batch, and only for a folio that had a PTE in it:
        less than v12, the false-FAIL direction; a review of the posting.)"""
        ubc = task.tlb_ubc
        if ubc.folio_frame != frame or not ubc.folio_ro:
            return  # try_to_unmap returned false: can_luf is false, nothing at keep:
        covered = ubc.arch.cpumask
        frames, mask = self._take_pass_luf(task)
        if not mask & ~covered:  # fold_unmap_luf() returned 0
            self.luf_flush_all(task)
        self._flush_with_tlb_ubc(task, frames, mask)  # luf_flush(key)

#: the rule the fuzzer finds first (tests/test_protocols.py: seed 0, 6000 examples of 100 steps):
#: the S2 of the mprotect race (litmus/bug-2.4-reclaim-vs-mprotect.litmus). The lazyfree C1
#: (litmus/luf-6-lazyfree-discard.litmus) is what docs/LUF.md's random column finds first
#: (certify --seed 1, 50 steps); LUF.md lists both.
EXPECTED_VIOLATION = "S2"
