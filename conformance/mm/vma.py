"""mm/vma.c (Linux 6.12): munmap (``do_vmi_align_munmap``, ``vms_complete_munmap_vmas``).

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from ..errors import ModelError
from ..protocol import MmuGather
from .mmu_gather import GATHER_FREES
from .task import hook


class VmaPaths:
    """The paths of mm/vma.c, mixed into :class:`conformance.mm.Kernel`."""

    def unmap_region(self, op, mm, start: int, end: int, downgrade: bool = False,
                     fullmm: bool = False):
        """``do_vmi_align_munmap``: detach the VMAs of [start, end) (``vms_gather_munmap_vmas``,
        ``mmap_lock`` held for write), then ``vms_complete_munmap_vmas``: if ``downgrade``
        (``munmap``: ``vms->unlock``), ``mmap_write_downgrade``, then ``vms_clear_ptes``
        = ``unmap_region`` (mm/vma.c): ``tlb_gather_mmu``, ``unmap_vmas`` (zap per VMA and
        page table, ``tlb_end_vma``), ``free_pgtables``, ``tlb_finish_mmu``.

        Followed: mm/vma.c of 6.12+ (``vms_complete_munmap_vmas``). 4.20 (dd2283f2605e,
        "mm: mmap: zap pages with read mmap_sem in munmap") to 6.11 downgrade at the same
        place, between detaching and zapping (``__do_munmap`` / ``do_vmi_align_munmap``);
        before 4.20 the zap ran under the write lock. After the downgrade, faults and
        madvise of the same mm run beside the open gather (on the detached range they
        find no VMA; on a neighbouring range of the same page table they meet the PTL
        and ``flush_tlb_batched_pending``). ``MAP_FIXED`` (``mmap``) does not downgrade.
        The detached VMAs stay in ``i_mmap`` and their ``anon_vma`` until ``free_pgtables``
        unlinks them after the zap (``mm.unlinking``): a truncate's or hole punch's
        ``unmap_mapping_range`` and ``remove_migration_ptes`` still find them, and may
        zap, or find already empty, PTEs this zap has not reached or has cleared::

            CPU0 (munmap v0)                    CPU1 (truncate, file page at v0)
            detach VMA, downgrade
            zap_pte_range: clear v0, unlock
                                                i_mmap walk: the detached VMA
                                                zap_pte_range: v0 none, nothing
                                                tlb_finish_mmu: nested -> full flush
            free_pgtables: unlink_file_vma
            tlb_finish_mmu: flush

        ``free_pgtables`` takes each VMA's rmap lock for write to unlink it
        (``unlink_anon_vmas``: the anon_vma root's rwsem; ``unlink_file_vma_batch_process``:
        ``i_mmap_rwsem``), so munmap cannot return while a walk that found the VMA is still
        inside its ``i_mmap_lock_read`` section, its own flushes not yet done::

            CPU0 (munmap v0)                    CPU1 (truncate, file page at v0)
                                                i_mmap_lock_read, the detached VMA
                                                zap_pte_range: clear v0, unlock
            zap_pte_range: v0 none
            (nothing gathered)
            free_pgtables: i_mmap write: waits
                                                tlb_finish_mmu: flush v0
                                                i_mmap_unlock_read
            unlink, tlb_finish_mmu, return

        Without that wait munmap returned with v0 still cached, a stale entry the kernel
        cannot have unless its ``tlb_finish_mmu`` flushed for the nested gather (a review
        found it, 2026-12-05; docs/SOUNDNESS.md).

        ``free_pgtables`` also frees the page tables no VMA left in the tree shares, and
        records them in the gather (``freed_tables``), so ``tlb_finish_mmu`` flushes.

        ``fullmm``: the gather is ``tlb_gather_mmu_fullmm``'s, as ``exit_mmap``'s (the
        teardown of a fork slot's previous tenant, :meth:`dup_mmap`): ``tlb_end_vma``
        returns early, and ``tlb_finish_mmu`` flushes the whole mm if anything was cleared
        or a page table freed (``free_pgtables`` frees every table of the mm then, as
        6.12's ``free_pgd_range`` sets ``freed_tables`` only for tables that exist; an mm
        that never faulted has none, and no entry to flush).

        Simplification: 4.20-5.x's refusal to downgrade next to a ``VM_GROWSDOWN`` /
        ``VM_GROWSUP`` VMA is not modelled (no such VMAs).
        """
        # vms_gather_munmap_vmas: __split_vma and vma_start_write(next) write-lock each VMA
        # met, so a fault holding one's read lock ends first and none starts under it
        yield from self.vma_start_write_range(op, mm, start, end)
        vmas = mm.split_vmas(start, end)
        if not vmas:
            if downgrade:
                self.mmap_write_downgrade(op, mm)
            return
        mm.vmas = [v for v in mm.vmas if not (start <= v.start and v.end <= end)]
        # detached, still in i_mmap / anon_vma. One unmap at a time per mm: the detach
        # needs mmap_lock for write, held (or downgraded to read) until this returns
        if mm.unlinking:
            raise ModelError(f"{mm}: two unmaps in flight")
        mm.unlinking = vmas
        if downgrade:
            self.mmap_write_downgrade(op, mm)
        self._touch_range(op, mm, start, end)
        for v in vmas:
            for vp in range(v.start, v.end):
                op.touched_locs[v.location(vp)] = None
        proto = self.proto
        tlb = MmuGather(op, mm, start, end, self._tlb_batch_pages_flush)
        tlb.fullmm = fullmm  # tlb_gather_mmu_fullmm
        self.m.call_hook(proto.tlb_gather_mmu, tlb)
        for vma in vmas:
            for a, b in mm.table_ranges(vma.start, vma.end):
                yield from self.zap_pte_range(op, tlb, mm, vma, a, b)
            yield from hook(proto.tlb_end_vma(tlb, vma))
        yield from self.free_pgtables(op, mm, vmas, tlb)
        yield from hook(proto.tlb_finish_mmu(tlb))
        if tlb.pages:
            raise self.m.left_by_hooks(op, GATHER_FREES, "tlb_finish_mmu left pages unfreed")

    def free_pgtables(self, op, mm, vmas, tlb):
        """``free_pgtables`` (mm/memory.c): hide each VMA from the rmap before its page
        tables go, ``unlink_anon_vmas`` (the anon_vma root's rwsem for write) and
        ``unlink_file_vma_batch_add``/``_process`` (``i_mmap_rwsem`` for write). Taking the
        lock waits for an rmap walk in flight on it (truncate's ``unmap_mapping_range``
        with its ``zap_page_range_single`` flushes, reclaim's ``try_to_unmap``, migration,
        ``folio_mkclean``); once it is unlinked no walk finds the VMA. ``vmas`` are the
        detached VMAs of an unmap (``mm.unlinking``) or, at exit, every VMA of the mm.

        Then ``free_pgd_range(tlb, addr, end, floor, ceiling)``: a page table the unlinked
        VMAs span is freed where no VMA left in the tree shares it (``floor`` is the
        previous VMA's end, ``ceiling`` the next one's start: ``free_pgd_range`` drops a
        first or last table a neighbour still uses), :meth:`Mm.pmd_free`; from then on
        every walker skips it (``pmd_none``) until a fault or a move allocates it again.
        ``pte_free_tlb`` records it in the gather (``tlb_flush_pmd_range`` of the table's
        first address, ``tlb->freed_tables``), so ``tlb_finish_mmu`` flushes that address
        on the mm's CPUs even where no PTE was cleared (x86 ``tlb_flush`` ->
        ``flush_tlb_mm_range(..., freed_tables)``).

        Simplifications: the file batch is one lock section per VMA; every VMA is unlinked
        before any table is freed (the kernel unlinks, then frees, per group of VMAs less
        than ``PMD_SIZE`` apart; a later group's unlink can wait for an rmap walk after an
        earlier group's tables are gone, which no walker of the model can tell apart: a
        freed table holds no PTE and no VMA); the PMD, PUD and P4D levels (their
        ``pmd_free_tlb``) are not modelled (P2), so an unmap that frees no PTE table sets no
        ``freed_tables``; the gather has no stride (``tlb_get_unmap_shift``), so two freed
        tables make one range flushed page by page where x86 flushes each table's first
        address (``PMD_SHIFT`` stride): more flushing, only on a CPU one generation behind.
        """
        for vma in vmas:
            sem = self.rmap_lock(vma.location(vma.start))
            if sem is not None:
                yield from self.down_write(op, sem)
            mm.unlink_vma(vma)
            if sem is not None:
                self.up_write(op, sem)
        n = mm.ptes_per_table
        tables = sorted({t for v in vmas for t in range(v.start // n, (v.end - 1) // n + 1)})
        for t in tables:
            a = t * n
            if mm.pmd_none(a) or any(v.start < a + n and a < v.end for v in mm.vmas):
                continue  # free_pgd_range: floor/ceiling keep a table a neighbour uses
            mm.pmd_free(a)  # free_pte_range -> pte_free_tlb
            tlb.adjust_range(a)  # tlb_flush_pmd_range(tlb, addr, PAGE_SIZE)
            tlb.freed_tables = True

    def munmap(self, op, mm, start: int, npages: int):
        """``__vm_munmap(start, len, unlock=true)``: write lock, detach, downgrade, zap under
        the read lock (:meth:`unmap_region`), ``mmap_read_unlock``. S3 is checked when it
        returns."""
        yield from self.mmap_write_lock(op, mm)
        yield from self.unmap_region(op, mm, start, start + npages, downgrade=True)
        self.mmap_read_unlock(op, mm)
        self.m.log_return(op)
        self.oracle.check_s3(op, mm, start, start + npages, "munmap")
