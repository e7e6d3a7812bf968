"""mm/memory.c (Linux 6.12), the fault half: ``handle_mm_fault`` and the ``do_*_page`` paths.

mm/memory.c is split in three modules here (fault, zap, copy) to keep each short; a
function is in the one its kernel caller belongs to. ``filemap_get_folio`` is in
:mod:`conformance.mm.filemap`.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from ..migrate import _MigrationWait
from ..mm_types import MIGRATION, NONE, PRESENT, SWAP
from ..task import hook


class FaultPaths:
    """The fault paths of mm/memory.c, mixed into :class:`conformance.mm.Kernel`."""

    def fault(self, op, mm, vpage: int, write: bool):
        """``handle_mm_fault`` (from ``do_user_addr_fault``, under ``mmap_read_lock``)."""
        tr = self.trace
        yield from self.mmap_read_lock(op, mm)
        vma = mm.find_vma(vpage)
        if vma is None or (write and not vma.writable):
            tr.msg(op, "fault mm%d:v%d -> SIGSEGV", mm.id, vpage)
            op.result = "segv"
            self.mmap_read_unlock(op, mm)
            return
        loc = vma.location(vpage)
        op.touched_vps[(mm.id, vpage)] = None
        op.touched_locs[loc] = None
        pte = mm.ptes[vpage]
        for _attempt in range(50):
            kind = pte.kind
            if kind == PRESENT:
                yield from self.do_wp_page(op, mm, vma, vpage, write)
                break
            if kind == MIGRATION:
                tr.msg(op, "migration_entry_wait(mm%d:v%d)", mm.id, vpage)
                op.blocked_on = _MigrationWait(pte)
                yield
                op.blocked_on = None
                continue
            if kind == NONE:
                if vma.is_anon:
                    mm.pte_alloc(vpage)  # do_anonymous_page's pte_alloc, before the folio
                    r = yield from self.do_anonymous_page(op, mm, vma, vpage, write)
                else:
                    r = yield from self.do_file_fault(op, mm, vma, vpage, write)
            else:
                r = yield from self.do_swap_page(op, mm, vma, vpage, write)
            if r != "retry":
                op.result = r
                break
        yield from hook(self.proto.handle_mm_fault_end(op, mm, vma, vpage, write))
        self.mmap_read_unlock(op, mm)

    def _install(self, op, mm, vma, vpage, frame, writable, dirty, write):
        """``set_pte_at`` under the PTL, then the protocol's ``fault_install_pte`` (atomic)."""
        pte = mm.ptes[vpage]
        pte.set_present(frame, writable, dirty, self.m.new_pte_inst())
        self.rmap_add(frame, mm, vpage)
        op.touched_frames[frame] = None
        self.trace.msg(op, "set_pte_at(mm%d:v%d -> pfn%d%s)", mm.id, vpage, frame,
                       " W" if writable else " RO")
        self.m.call_hook(self.proto.fault_install_pte, op, mm, vma, vpage, pte, write)

    def do_wp_page(self, op, mm, vma, vpage, write):
        """``do_wp_page``: ``wp_page_reuse`` (exclusive anon) / ``wp_page_shared`` (page_mkwrite).

        Shared file page: ``wp_page_shared`` drops the PTL and calls ``do_page_mkwrite``
        (``filemap_page_mkwrite``: ``folio_lock``, so it waits for a writeback holding
        it), re-takes the PTL, ``pte_same`` recheck (changed: nothing, the access
        re-faults), ``wp_page_reuse`` and ``fault_dirty_shared_page`` (folio marked
        dirty), then unlocks the folio. Also the spurious-fault case: the PTE is
        already what the access needs.

        A write to a present read-only PTE (where ``handle_pte_fault`` calls the kernel's
        ``do_wp_page``) first runs the protocol's ``do_wp_page`` hook (LUF v10's
        ``luf_flush()`` at the top of ``do_wp_page``). Simplification: the kernel enters
        ``do_wp_page`` holding the PTL; the model calls the hook before taking any lock,
        and every decision after it re-reads the PTE under the PTL, as the kernel's
        ``pte_same`` rechecks do.
        """
        pte = mm.ptes[vpage]
        if write and pte.kind == PRESENT and not pte.writable:
            yield from hook(self.proto.do_wp_page(op, mm, vma, vpage))
        if write and vma.is_anon:  # wp_page_reuse / wp_page_copy of an anonymous folio
            return (yield from self.do_wp_page_anon(op, mm, vma, vpage))
        flk = None
        if write and not vma.is_anon and pte.kind == PRESENT and not pte.writable:
            frame = pte.frame
            flk = self.mem.folio_lock[frame]
            yield from self.lock(op, flk)  # do_page_mkwrite
            if not (pte.kind == PRESENT and pte.frame == frame):
                self.unlock(op, flk)
                return
        ptl = mm.ptl(vpage)
        yield from self.lock(op, ptl)
        if pte.kind == PRESENT and write and not pte.writable:
            pte.writable = True
            pte.dirty = True
            if not vma.is_anon:
                self.mem.dirty[pte.frame] = True  # fault_dirty_shared_page
            op.touched_frames[pte.frame] = None
            self.trace.msg(op, "do_wp_page(mm%d:v%d): pte writable", mm.id, vpage)
            self.m.call_hook(self.proto.fault_install_pte, op, mm, vma, vpage, pte, write)
        self.unlock(op, ptl)
        if flk is not None:
            self.unlock(op, flk)

    def do_anonymous_page(self, op, mm, vma, vpage, write):
        """``do_anonymous_page``: allocate a zeroed folio, then install under the PTL.

        Simplification: the shared zero page is not modelled; a read fault
        allocates like a write fault (as when the zero page is forbidden), so an
        anonymous page in a ``VM_WRITE`` VMA is mapped writable and dirty
        (``pte_mkwrite(pte_mkdirty(entry))``).
        """
        frame = self.alloc_frame(op, "new")  # not on the LRU until mapped (folio_add_lru_vma)
        if frame is None:
            self.trace.msg(op, "fault: OOM")
            return "oom"
        self.mem.value[frame] = 0  # clear_user_highpage
        self.trace.msg(op, "alloc_anon_folio -> pfn%d", frame)
        yield
        ptl = mm.ptl(vpage)
        yield from self.lock(op, ptl)
        if mm.ptes[vpage].kind != NONE:  # !pte_none: someone else installed it
            self.unlock(op, ptl)
            self.mem.owner[frame] = "zapped"
            self.free_frames([frame])
            return "retry"
        self.mem.owner[frame] = vma.location(vpage)
        self._install(op, mm, vma, vpage, frame, vma.writable, vma.writable, write)
        self.unlock(op, ptl)
        return "ok"

    def do_file_fault(self, op, mm, vma, vpage, write):
        """``do_read_fault`` / ``do_shared_fault`` + ``finish_fault``.

        A shared writable mapping wants write-notify (``vma_wants_writenotify``),
        so a read fault maps the page read-only and a write fault maps it
        writable and dirty after ``do_page_mkwrite`` (folio marked dirty).
        """
        fid, pgoff = vma.file, vma.pgoff + vpage - vma.start
        frame = yield from self.filemap_get_folio(op, fid, pgoff)
        if frame is None:
            return "oom"
        flk = self.mem.folio_lock[frame]
        mm.pte_alloc(vpage)  # finish_fault: pte_alloc(vmf->prealloc_pte) once the page is read
        ptl = mm.ptl(vpage)
        yield from self.lock(op, ptl)
        if mm.ptes[vpage].kind != NONE:
            self.unlock(op, ptl)
            self.unlock(op, flk)
            return "retry"
        self._install(op, mm, vma, vpage, frame, write, write, write)
        if write:
            self.mem.dirty[frame] = True
        self.unlock(op, ptl)
        self.unlock(op, flk)
        return "ok"

    def do_swap_page(self, op, mm, vma, vpage, write):
        """``do_swap_page``: swap cache lookup or read, ``pte_same`` recheck, map.

        The folio is exclusive, so in a ``VM_WRITE`` VMA it is mapped writable
        (``pte_mkwrite``, v6.11+) and dirty only on a write fault: a read fault
        leaves a writable *clean* PTE, the case where hardware rule 4 matters.
        Simplification: the swap slot is always freed on swap-in
        (``should_try_to_free_swap`` true), which marks the folio dirty; if a fork sibling
        still holds a swap entry of the slot, the slot first gets the folio's data (see
        below), where the kernel keeps the folio in the swap cache for the sibling.

        ``!pte_same`` after a swap-in read: if the swap entry is gone meanwhile (MADV_DONTNEED
        zapped it or MADV_FREE dropped it: ``free_swap_and_cache`` could not take the folio we
        hold locked), the folio is clean, unmapped and only in the swap cache. The kernel leaves
        it there for reclaim (``shrink_folio_list`` -> ``__remove_mapping``, no TLB work) or
        ``folio_free_swap``; simplification: we drop it from the swap cache and free it here,
        at once, instead of leaking it and its slot.
        """
        mem = self.mem
        pte = mm.ptes[vpage]
        slot = pte.slot
        frame = mem.swap_cache.get(slot)
        if frame is not None:
            yield from self.lock(op, mem.folio_lock[frame])
            if mem.swap_cache.get(slot) != frame:
                self.unlock(op, mem.folio_lock[frame])
                return "retry"
        else:
            frame = self.alloc_frame(op, vma.location(vpage))
            if frame is None:
                return "oom"
            yield from self.lock(op, mem.folio_lock[frame])
            mem.swap_cache[slot] = frame
            self.trace.msg(op, "swap_read_folio(slot%d -> pfn%d)", slot, frame)
            yield  # read IO in flight
            mem.value[frame] = mem.swap[slot]
        flk = mem.folio_lock[frame]
        op.touched_frames[frame] = None
        ptl = mm.ptl(vpage)
        yield from self.lock(op, ptl)
        if not (pte.kind == SWAP and pte.slot == slot):  # !pte_same
            self.unlock(op, ptl)
            unused = mem.swap_map[slot] == 0 and mem.swap_cache.get(slot) == frame
            if unused:  # no swap entry left: delete_from_swap_cache, the slot is free again
                del mem.swap_cache[slot]
                mem.put_slot(slot)
            self.unlock(op, flk)
            if unused and self.last_reference(frame):
                mem.owner[frame] = "zapped"
                self.free_frames([frame])
            return "retry"
        mem.owner[frame] = vma.location(vpage)
        self._install(op, mm, vma, vpage, frame, vma.writable, write and vma.writable, write)
        shared = mem.swap_map[slot] > 1
        if shared:
            # A fork sibling's swap entry still refers to the slot (``copy_nonpresent_pte``).
            # The kernel's ``folio_free_swap`` fails then (``folio_swapped``): the folio
            # stays in the swap cache, mapped read-only (not exclusive) until ``do_wp_page``
            # copies it, and the sibling's swap-in finds it there. Simplification: the slot
            # gets the folio's data (what the sibling's swap-in would map; nobody wrote the
            # unmapped folio since the fork) and the folio leaves the swap cache as above.
            # Without this the sibling read the slot as it was, stale when reclaim had kept
            # the folio without pageout (an mmu_gather's reference): a false C1 on ``linux``.
            mem.swap[slot] = mem.value[frame]
        del mem.swap_cache[slot]
        mem.swap_map[slot] -= 1
        mem.put_slot(slot)
        mem.dirty[frame] = True
        if shared and write:
            # The kernel maps a folio that is not exclusive read-only, unlocks it, and a write
            # fault goes on to ``do_wp_page`` under the PTL: the protocol's ``do_wp_page`` hook
            # (LUF v10's flush) runs there too (simplification F3: the model maps it writable)
            self.unlock(op, flk)
            yield from hook(self.proto.do_wp_page(op, mm, vma, vpage))
            self.unlock(op, ptl)
        else:
            self.unlock(op, ptl)
            self.unlock(op, flk)
        return "ok"

    def do_wp_page_anon(self, op, mm, vma, vpage):
        """``do_wp_page`` for an anonymous folio (mm/memory.c), PTL held for the decision.

        Present and read-only, else nothing (spurious, or the PTE changed: the access
        re-faults). Reuse (``wp_page_reuse``: the PTE made writable and dirty, the folio
        exclusive again, ``folio_move_anon_rmap``: owned by this location) when the folio
        is ``PageAnonExclusive`` (never shared by a fork: :data:`PhysMem.cow` clear), or
        when ``wp_can_reuse_anon_folio`` finds no other reference: mapped once, not
        isolated by reclaim/migration, no mmu_gather reference, not in the swap cache
        (simplification: the kernel first tries ``folio_free_swap``), folio lock free
        (``folio_trylock``). Else :meth:`wp_page_copy`.
        """
        mem = self.mem
        pte = mm.ptes[vpage]
        ptl = mm.ptl(vpage)
        yield from self.lock(op, ptl)
        if not (pte.kind == PRESENT and not pte.writable):
            self.unlock(op, ptl)
            return
        frame = pte.frame
        if not mem.cow[frame] or not (
                len(mem.rmap[frame]) != 1 or mem.isolated[frame] is not None
                or mem.gathered[frame] or frame in mem.swap_cache.values()
                or mem.folio_lock[frame].owner is not None):
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
        yield from self.wp_page_copy(op, mm, vma, vpage, frame, value)

    def wp_page_copy(self, op, mm, vma, vpage, old: int, value: int):
        """``wp_page_copy`` (mm/memory.c): allocate a new folio and copy the old one into it
        (PTL dropped, **yield**), re-take the PTL; if the PTE is still the read-only PTE of
        ``old`` (``pte_same``): ``ptep_clear_flush`` (``flush_tlb_page`` of this mm, the
        kernel's own flush), ``folio_add_new_anon_rmap``, ``set_pte_at`` writable and
        dirty (a new PTE instance; the ``fault_install_pte`` hook), then
        ``folio_remove_rmap_pte(old)``; unlock; ``folio_put(old)``: freed if that was its
        last reference. If the PTE changed meanwhile, the new folio is freed and the
        access re-faults.
        """
        mem = self.mem
        new = self.alloc_frame(op, "new")
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
            return "retry"
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
        if self.last_reference(old):  # folio_put
            mem.owner[old] = "zapped"
            self.free_frames([old])
        elif mem.owner[old] == vma.location(vpage):
            mem.owner[old] = self._anon_owner_after_unmap(old)
        return "ok"
