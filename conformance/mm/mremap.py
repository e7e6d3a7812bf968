"""mm/mremap.c (Linux 6.12): ``move_vma`` and ``move_ptes``.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from .mm_types import NONE, PRESENT
from .task import hook


class MremapPaths:
    """The paths of mm/mremap.c, mixed into :class:`conformance.mm.Kernel`."""

    def mremap(self, op, mm, old_start: int, npages: int, new_start: int):
        """``mremap(MREMAP_MAYMOVE|MREMAP_FIXED)`` to a free range: ``move_vma``.

        ``mmap_write_lock``; "error" unless ``[old_start, +npages)`` lies in one VMA and
        the destination is inside the address space, free of VMAs and disjoint from the
        source. ``copy_vma`` (same ``vm_pgoff``, so every page keeps its location; the kernel
        resets it for an anonymous VMA never faulted, which has no page to keep),
        ``move_page_tables`` -> :meth:`move_ptes` per extent (``get_extent``), each under
        ``take_rmap_locks``; then ``unmap_source_vma`` -> ``do_vmi_munmap(old range,
        unlock=false)``: :meth:`unmap_region` of the old range under the write lock (no
        downgrade): its own ``tlb_gather_mmu``, a zap of the (now empty) old page tables
        with their ``flush_tlb_batched_pending``, ``tlb_end_vma`` and ``tlb_finish_mmu``,
        whose ``mm_tlb_flush_nested`` flushes the whole mm when another gather of the mm
        (a hole punch's, which takes no ``mmap_lock``) is open. S3 at return: no entry of
        the old range; in the new range, none of a PTE instance older than the move
        (docs/oracle.md section 2).

        Simplifications: ``need_rmap_locks`` is taken as always true (6.12's ``copy_vma``
        clears it for every unmerged copy, which ``vma_link`` puts after the old VMA in
        rmap traversal order, and keeps it for a merged one only when the new VMA's
        ``vm_pgoff`` is not above the old one's; without the locks a walk sees the old
        PTE, the new one or both; the model's walks have no such order, so a move waits
        for an rmap walk in flight and never runs between a walk's PTE clear and its end:
        docs/model.md K14 says what that can hide); x86's ``move_normal_pmd`` (a whole, aligned, populated page table moved by
        its PMD into an empty one, with an unconditional ``flush_tlb_range`` and no
        ``flush_tlb_batched_pending``) is not modelled: every extent goes through
        ``move_ptes``, the kernel's path for a move of less than a whole page table (a
        model page table stands for a 2 MB region of which the model tracks a few pages;
        6.7+'s ``try_realign_addr`` turns such a move into ``move_normal_pmd`` when it
        reaches the region's end with no VMA below it: the model assumes the untracked
        rest of the region is mapped, so it never does; docs/model.md K14).
        Until 2026-12-04 the model skipped ``do_vmi_munmap`` of the old range, and reported
        races (``litmus/gap-truncate-vs-mremap.litmus``) whose mremap the kernel's nested
        ``tlb_finish_mmu`` flushes before it returns (docs/SOUNDNESS.md).
        """
        yield from self.mmap_write_lock(op, mm)
        old_end = old_start + npages
        new_end = new_start + npages
        vma = mm.find_vma(old_start)
        if (vma is None or vma.end < old_end or new_start < 0 or new_end > len(mm.ptes)
                or any(v.start < new_end and v.end > new_start for v in mm.vmas)
                or (new_start < old_end and old_start < new_end)):
            self._error(op, mm, "mremap: EINVAL", True)
            return
        self._touch_range(op, mm, old_start, old_end)
        self._touch_range(op, mm, new_start, new_end)
        for vp in range(old_start, old_end):
            op.touched_locs[vma.location(vp)] = None
        # move_vma's vma_start_write(vma) (and __split_vma's): faults on it end first, later
        # ones wait for mmap_lock; the copy is write-locked too (copy_vma -> vma_link)
        yield from self.vma_start_write_range(op, mm, old_start, old_end)
        old = mm.split_vmas(old_start, old_end)[0]
        new = old.moved_copy(new_start)
        mm.vmas.append(new)  # copy_vma
        mm.vmas.sort(key=lambda v: v.start)
        n = mm.ptes_per_table
        a = old_start
        rl = self.rmap_lock(vma.location(old_start))
        while a < old_end:
            na = new_start + a - old_start
            ext = min(old_end, (a // n + 1) * n, a + (na // n + 1) * n - na) - a
            if not mm.pmd_none(a):  # move_page_tables: a pmd_none source is skipped
                mm.pte_alloc(na)  # alloc_new_pmd, then pte_alloc(new_vma->vm_mm, new_pmd)
                yield from self.move_ptes(op, mm, a, a + ext, na, rl)
            else:  # visited now, each old and new slot empty (S3), as move_ptes records
                for vp in range(a, a + ext):
                    op.s3_visits[(mm.id, vp)] = op.s3_visits[(mm.id, vp - a + na)] = \
                        self.m.pte_insts
            a += ext
        # unmap_source_vma: do_vmi_munmap(old range, unlock=false); `old` is its one VMA
        yield from self.unmap_region(op, mm, old_start, old_end)
        op.result = new_start
        self.mmap_write_unlock(op, mm)
        self.m.log_return(op)
        self.oracle.check_s3(op, mm, old_start, old_end, "mremap")
        self.oracle.check_s3(op, mm, new_start, new_end, "mremap")

    def move_ptes(self, op, mm, old_addr: int, old_end: int, new_addr: int, rl):
        """``move_ptes``: ``take_rmap_locks`` (``rl``, the old VMA's anon_vma or i_mmap
        rwsem, for write: no rmap walk runs while this extent's PTEs move, so none misses
        a PTE between its old and new place), old PTL, then the new one if different
        (``spin_lock_nested``),
        ``flush_tlb_batched_pending``; each non-none PTE ``ptep_get_and_clear`` +
        ``set_pte_at`` at the new address (rmap follows; a present PTE there is a new
        instance); a present one sets ``force_flush``, and then ``flush_tlb_range`` of this
        extent of the old range (``old_end - len .. old_end``) before the PTLs are dropped,
        then ``drop_rmap_locks``. Every old and new slot of the extent is an S3 visit
        (``op.s3_visits``).
        """
        proto = self.proto
        old_ptl = mm.ptl(old_addr)
        new_ptl = mm.ptl(new_addr)
        yield from self.down_write(op, rl)
        yield from self.lock(op, old_ptl)
        if new_ptl is not old_ptl:
            yield from self.lock(op, new_ptl)
        yield from hook(proto.flush_tlb_batched_pending(op, mm))
        force_flush = False
        for vp in range(old_addr, old_end):
            # no local copy of the clock: generator locals are part of the explorer's state key
            op.s3_visits[(mm.id, vp)] = op.s3_visits[(mm.id, vp - old_addr + new_addr)] = \
                self.m.pte_insts
            pte = mm.ptes[vp]
            if pte.kind == NONE:
                continue
            dst = mm.ptes[vp - old_addr + new_addr]
            dst.kind, dst.frame, dst.writable, dst.dirty, dst.accessed, dst.slot = (
                pte.kind, pte.frame, pte.writable, pte.dirty, pte.accessed, pte.slot)
            if pte.kind == PRESENT:
                dst.inst = self.m.new_pte_inst()
                force_flush = True
                self.rmap_remove(pte.frame, mm, vp)
                self.rmap_add(pte.frame, mm, vp - old_addr + new_addr)
                op.touched_frames[pte.frame] = None
            pte.clear()
            self.trace.msg(op, "move_pte(mm%d:v%d -> v%d)", mm.id, vp, vp - old_addr + new_addr)
        if force_flush:
            self.arch.flush_tlb_mm_range(mm, old_addr, old_end, op)
        if new_ptl is not old_ptl:
            self.unlock(op, new_ptl)
        self.unlock(op, old_ptl)
        self.up_write(op, rl)  # drop_rmap_locks
        yield
