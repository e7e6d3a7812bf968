"""mm/memory.c (Linux 6.12), the copy-on-write fault of an anonymous folio:
``do_wp_page``'s ``wp_page_reuse`` / ``wp_page_copy`` decision and ``wp_page_copy``.

Split from :mod:`.fault` (whose ``do_wp_page`` calls it, as does ``do_swap_page`` in
:mod:`.swapin`) to keep each module short. Mixed into :class:`conformance.mm.Kernel`; each
method names the kernel function it models, and says where it simplifies it (summary in
docs/model.md).
"""
from __future__ import annotations

from ..mm_types import PRESENT, REFAULT


class WpPaths:
    """The anonymous ``do_wp_page`` of mm/memory.c, mixed into :class:`conformance.mm.Kernel`."""

    def do_wp_page_anon(self, op, mm, vma, vpage):
        """``do_wp_page`` for an anonymous folio (mm/memory.c), PTL held for the decision.

        Present and read-only, else nothing: spurious (present and writable: the restarted
        access goes through) or :data:`REFAULT` (no longer present: handle_pte_fault's
        ``!pte_same`` returns 0, and the access restarts). Reuse (``wp_page_reuse``: the PTE made writable and dirty, the folio
        exclusive again, ``folio_move_anon_rmap``: owned by this location) when the folio
        is ``PageAnonExclusive`` (never shared by a fork: :data:`PhysMem.cow` clear), or
        when ``wp_can_reuse_anon_folio`` finds no other reference: mapped once, not
        isolated by reclaim/migration, no mmu_gather reference, not in the swap cache
        (after ``folio_free_swap``: :meth:`wp_page_anon_locked`), folio lock free
        (``folio_trylock``). Else :meth:`wp_page_copy`.
        """
        yield from self.lock(op, mm.ptl(vpage))
        return (yield from self.wp_page_anon_locked(op, mm, vma, vpage))

    def wp_page_anon_locked(self, op, mm, vma, vpage):
        """:meth:`do_wp_page_anon` from its decision on, the PTL held (``do_swap_page``
        calls ``do_wp_page`` holding it); unlocks it.

        ``wp_can_reuse_anon_folio`` on a swap-cache folio: ``folio_trylock`` and
        ``folio_free_swap``, which fails while a swap entry uses the slot (the fork
        sibling's swap-in will map this folio: copy). Simplification: tried only when no
        other reference would make the reuse fail anyway.
        """
        mem = self.mem
        pte = mm.ptes[vpage]
        ptl = mm.ptl(vpage)
        if not (pte.kind == PRESENT and not pte.writable):
            self.unlock(op, ptl)
            return None if pte.kind == PRESENT else REFAULT
        frame = pte.frame
        reuse = len(mem.rmap[frame]) == 1 and mem.isolated[frame] is None \
            and not mem.gathered[frame] and mem.folio_lock[frame].owner is None
        if mem.cow[frame] and reuse:
            slot = mem.swap_slot_of(frame)
            if slot is not None and mem.swap_map[slot]:  # folio_free_swap fails: copy
                reuse = False
            elif slot is not None:
                self.folio_free_swap(frame, slot)
                op.touched_frames[frame] = None
                self.trace.msg(op, "do_wp_page(mm%d:v%d): pfn%d leaves the swap cache",
                               mm.id, vpage, frame)
        if not mem.cow[frame] or reuse:
            pte.writable = True
            pte.dirty = True
            mem.cow[frame] = False
            mem.owner[frame] = vma.location(vpage)
            op.touched_frames[frame] = None
            self.trace.msg(op, "do_wp_page(mm%d:v%d): wp_page_reuse", mm.id, vpage)
            self.m.call_hook(self.proto.fault_install_pte, op, mm, vma, vpage, pte, True)
            self.unlock(op, ptl)
            return
        value = mem.value[frame]  # __wp_page_copy_user (the fault holds a folio reference)
        self.unlock(op, ptl)
        return (yield from self.wp_page_copy(op, mm, vma, vpage, frame, value))

    def wp_page_copy(self, op, mm, vma, vpage, old: int, value: int):
        """``wp_page_copy`` (mm/memory.c): allocate a new folio and copy the old one into it
        (PTL dropped, **yield**), re-take the PTL; if the PTE is still the read-only PTE of
        ``old`` (``pte_same``): ``ptep_clear_flush`` (``flush_tlb_page`` of this mm, the
        kernel's own flush), ``folio_add_new_anon_rmap``, ``set_pte_at`` writable and
        dirty (a new PTE instance; the ``fault_install_pte`` hook), then
        ``folio_remove_rmap_pte(old)``; unlock; ``folio_put(old)``: freed if that was its
        last reference (first ``free_swap_cache(old)``: an unmapped swap-cache folio whose
        slot no swap entry uses leaves the swap cache). If the PTE changed meanwhile, the new folio is freed and it returns
        :data:`REFAULT` (the kernel's 0: the access restarts).
        """
        mem = self.mem
        new = yield from self.alloc_frame_direct_reclaim(op, "new")  # may reclaim
        if new is None:
            self.trace.msg(op, "wp_page_copy: OOM")
            return "oom"
        mem.value[new] = value
        self.trace.msg(op, "wp_page_copy(mm%d:v%d): pfn%d -> pfn%d", mm.id, vpage, old, new)
        yield
        pte = mm.ptes[vpage]
        ptl = mm.ptl(vpage)
        yield from self.lock(op, ptl)
        if not (pte.kind == PRESENT and pte.frame == old and not pte.writable):  # !pte_same
            self.unlock(op, ptl)
            mem.owner[new] = "zapped"
            self.free_frames([new])
            return REFAULT
        op.touched_frames[old] = None
        pte.clear()
        self.arch.flush_tlb_page(mm, vpage, op)  # ptep_clear_flush
        mem.owner[new] = vma.location(vpage)
        pte.set_present(new, True, True, self.m.new_pte_inst())
        self.rmap_add(new, mm, vpage)
        op.touched_frames[new] = None
        self.m.call_hook(self.proto.fault_install_pte, op, mm, vma, vpage, pte, True)
        self.rmap_remove(old, mm, vpage)  # folio_remove_rmap_pte
        self.unlock(op, ptl)
        self.put_folios([old])  # if (page_copied) free_swap_cache(old_folio); folio_put
        if mem.owner[old] == vma.location(vpage):
            mem.owner[old] = self._anon_owner_after_unmap(old)
        return "ok"
