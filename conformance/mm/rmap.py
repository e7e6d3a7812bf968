"""mm/rmap.c (Linux 6.12): reverse mappings, ``try_to_unmap_one``, ``folio_mkclean``.

``rmap[frame]`` (insertion-ordered (mm, vpage) pairs, in :mod:`conformance.hw.physmem`)
stands for ``anon_vma``/``i_mmap`` plus ``page_vma_mapped_walk``; the walk takes the
rmap lock of :mod:`conformance.mm.locking`.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from .mm_types import MIGRATION, PRESENT, SWAP
from .task import hook


class RmapPaths:
    """The paths of mm/rmap.c, mixed into :class:`conformance.mm.Kernel`."""

    def rmap_add(self, frame: int, mm, vpage: int) -> None:
        self.mem.rmap[frame][(mm.id, vpage)] = None

    def rmap_remove(self, frame: int, mm, vpage: int) -> None:
        """``folio_remove_rmap_pte``."""
        self.mem.rmap[frame].pop((mm.id, vpage), None)

    def _rmap_walk(self, frame: int):
        """``rmap_walk`` over a live ``rmap[frame]``: a mapping that ``move_ptes`` (mremap)
        moves during the walk is still visited at its new address, as the kernel's walk
        over ``anon_vma``/``i_mmap`` finds the new VMA. Each (mm, vpage) once."""
        seen = []
        rmap = self.mem.rmap[frame]
        while True:
            for key in rmap:
                if key not in seen:
                    break
            else:
                return
            seen.append(key)
            yield key

    def try_to_unmap(self, op, frame: int, slot, migration: bool):
        """``try_to_unmap_one`` / ``try_to_migrate_one`` for every PTE mapping ``frame``.

        Under each PTL: ``should_defer_flush`` -> ``ptep_get_and_clear`` +
        ``set_tlb_ubc_flush_pending``, else ``ptep_clear_flush``; dirty PTE ->
        ``folio_mark_dirty``; then a swap entry (anon), a migration entry, or
        none (file); rmap removed. All before any flush.

        A lazyfree anonymous folio (MADV_FREE, ``!folio_test_swapbacked``, no ``slot``):
        if the folio is clean and nothing but its mappings and this isolation holds it
        (``ref_count == 1 + map_count``) it is discarded (the PTE stays none, the location
        reads zero from now on: ``oracle.expected`` is reset); if it was re-dirtied (a
        dirty PTE or PG_dirty) or another reference holds it (an mmu_gather that zapped
        another mapping: ``gathered[frame]``, less a madvise split window's ``folio_get``,
        which K9's window takes for small folios too, where 6.12 has none) the
        PTE is restored, the folio is swap-backed again and the walk stops (``ret =
        false``: reclaim keeps it; the protocol's ``walk_abort`` hook). Returns False in
        that case, else True.

        The reference test was missing until 2026-12-07 (docs/model.md section 11 item
        36): a fork-shared lazyfree folio whose other mapping sat in an open gather was
        discarded here and kept by ``shrink_folio_list`` for the gather's reference,
        where 6.12 keeps the mapping::

            CPU0 (mm0)                    CPU1 (mm1, the child)     CPU2 (kswapd)
            MADV_FREE v0: lazyfree
                                          MADV_DONTNEED v0: zap,
                                          the gather holds a ref
                                                                    try_to_unmap_one(mm0:v0):
                                                                    ref 3 != 1 + map 1:
                                                                    set_pte_at, walk_abort
        """
        proto = self.proto
        mem = self.mem
        lazy = not migration and slot is None and mem.lazyfree[frame]
        yield from hook(proto.try_to_unmap_begin(op, frame, migration))
        walk = yield from self.rmap_walk_lock(op, mem.owner[frame])
        for (mm_id, vpage) in self._rmap_walk(frame):
            mm = self.mms[mm_id]
            ptl = mm.ptl(vpage)
            yield from self.lock(op, ptl)
            pte = mm.ptes[vpage]
            if pte.kind == PRESENT and pte.frame == frame:
                op.touched_vps[(mm_id, vpage)] = None
                pteval = pte.snapshot()
                pte.clear()
                if self.m.call_predicate(proto.should_defer_flush, op, mm):
                    self.trace.msg(op, "ptep_get_and_clear(mm%d:v%d) [pfn%d%s]", mm_id, vpage,
                                   frame, " dirty" if pteval.dirty else "")
                    yield from hook(proto.set_tlb_ubc_flush_pending(op, mm, pteval, vpage))
                else:
                    self.trace.msg(op, "ptep_clear_flush(mm%d:v%d) [pfn%d]", mm_id, vpage, frame)
                    self.arch.flush_tlb_page(mm, vpage, op)
                if pteval.dirty:
                    mem.dirty[frame] = True
                if lazy:
                    # ref_count == 1 + map_count && !folio_test_dirty: else set_pte_at(pteval),
                    # folio_set_swapbacked, walk_abort (redirtied, or a gather's reference)
                    if mem.dirty[frame] or mem.gathered[frame] > mem.window_refs.get(frame, 0):
                        pte.set_present(frame, pteval.writable, pteval.dirty, pteval.inst)
                        pte.accessed = pteval.accessed
                        mem.lazyfree[frame] = False
                        if mem.owner[frame] == "discarded":
                            # a fork shares it: an earlier mapping was discarded clean, this
                            # one stays; the folio is its location's (left "discarded" and
                            # mapped until 2026-12-07, conformance/accounting.py)
                            mem.owner[frame] = self._mapping_location(mm, vpage, "discarded")
                        self.trace.msg(op, "lazyfree pfn%d %s: pte restored, keep", frame,
                                       "redirtied" if mem.dirty[frame] else
                                       "held by another reference")
                        self.unlock(op, ptl)
                        self.rmap_walk_unlock(op, walk)
                        yield from hook(proto.walk_abort(op, frame, migration))
                        yield from hook(proto.try_to_unmap_end(op, frame, migration))
                        return False
                    owner = self._mapping_location(mm, vpage, mem.owner[frame])
                    self.oracle.expected.pop(owner, None)  # discard: a later fault reads zero
                    op.touched_locs[owner] = None
                    mem.owner[frame] = "discarded"
                    self.trace.msg(op, "discard lazyfree pfn%d", frame)
                elif migration:
                    pte.kind = MIGRATION
                    pte.frame = frame
                    pte.writable = pteval.writable
                    pte.dirty = pteval.dirty
                elif slot is not None:
                    pte.kind = SWAP
                    pte.slot = slot
                    mem.swap_map[slot] += 1
                self.rmap_remove(frame, mm, vpage)
            self.unlock(op, ptl)
            yield
        if walk is not None:
            self.rmap_walk_unlock(op, walk)
            yield  # the walk's lock is dropped before the caller flushes or pages out
        yield from hook(proto.try_to_unmap_end(op, frame, migration))
        return True

    def folio_mkclean(self, op, frame: int):
        """``folio_mkclean`` -> ``page_mkclean_one`` over the rmap (``rmap[frame]`` order).

        Per mapping: take its PTL; if the PTE is present for ``frame`` and dirty or
        writable: ``ptep_clear_flush`` (``flush_tlb_page``), then set it back
        write-protected and clean; unlock, **yield**. Then the protocol's ``folio_mkclean``
        hook (the end of the function: LUF v12's ``luf_flush(0)``). Returns the number of
        PTEs cleaned. A mapping whose rmap zap already removed is not visited.
        """
        cleaned = 0
        walk = yield from self.rmap_walk_lock(op, self.mem.owner[frame])
        for (mm_id, vpage) in self._rmap_walk(frame):
            mm = self.mms[mm_id]
            ptl = mm.ptl(vpage)
            yield from self.lock(op, ptl)
            pte = mm.ptes[vpage]
            if pte.kind == PRESENT and pte.frame == frame and (pte.dirty or pte.writable):
                op.touched_vps[(mm_id, vpage)] = None
                self.arch.flush_tlb_page(mm, vpage, op)  # ptep_clear_flush
                pte.writable = False  # pte_wrprotect + pte_mkclean + set_pte_at
                pte.dirty = False
                cleaned += 1
                self.trace.msg(op, "page_mkclean_one(mm%d:v%d) [pfn%d]", mm_id, vpage, frame)
            self.unlock(op, ptl)
            yield
        self.rmap_walk_unlock(op, walk)
        yield from hook(self.proto.folio_mkclean(op, frame))
        return cleaned

    def _mappings_of(self, loc):
        """Every (mm, vpage) whose VMA maps location ``loc`` (``rmap_walk`` of a folio
        whose PTEs are migration entries: via ``anon_vma``/``i_mmap``, so an entry that
        mremap moved is found at its new address, and a VMA a munmap in flight detached is
        found until its ``free_pgtables``: ``Mm.rmap_vmas``)."""
        out = []
        for mm in self.mms:
            for vma in mm.rmap_vmas():
                vp = vma.vpage_of(loc)
                if vp is None and loc[0] == "a" and self.mem.anon_root:
                    vp = self._forked_vpage_of(vma, loc)
                if vp is not None:
                    out.append((mm, vp))
        return out

    def _anon_owner_after_unmap(self, frame: int):
        """The owner of an anonymous folio one of whose mappings just went: "zapped" when
        none is left; else (a fork shares it) the location of a remaining mapping, so a
        store through that mapping still lands in its location (``folio->index`` is the
        same for parent and child; the model names locations per ``anon_vma``)."""
        rmap = self.mem.rmap[frame]
        for mm_id, vpage in rmap:
            return self._mapping_location(self.mms[mm_id], vpage, "zapped")
        return self._swap_entry_location(frame)

    def _swap_entry_location(self, frame: int):
        """The owner of an anonymous folio whose last PTE just went: if it is in the swap
        cache and a swap entry still refers to its slot (reclaim installed another
        mapping's entry first: ``folio_test_swapcache``, ``swap_map``), the location of
        that entry's mapping, whose next swap-in finds the folio; else "zapped". It was
        always "zapped", and never freed, until 2026-12-07 (conformance/accounting.py);
        a folio whose slot no entry uses is the zapped location's no more (MADV_DONTNEED:
        a store through a stale entry is lost, ``Machine._store_races_the_drop``)."""
        mem = self.mem
        slot = mem.swap_slot_of(frame)
        if slot is None or not mem.swap_map[slot]:
            return "zapped"
        for mm in self.mms:
            for vpage, pte in enumerate(mm.ptes):
                if pte.kind == SWAP and pte.slot == slot:
                    return self._mapping_location(mm, vpage, "zapped")
        return "zapped"

    def _mapping_location(self, mm, vpage: int, default):
        """The anonymous location ``mm``'s VMA maps at ``vpage`` as an rmap walk finds it
        (``Mm.rmap_vma``: the tree's VMA, or one a munmap in flight detached and has not
        unlinked yet: ``folio->mapping`` is the ``anon_vma`` and ``free_pgtables`` has not
        run ``unlink_anon_vmas``); ``default`` when no anonymous VMA is there.

        A fork-shared folio whose other mappings are gone stays an LRU folio with a
        location while only a detached VMA still maps it, so reclaim and migration can
        take it in that window, as the kernel's can (docs/model.md section 11, item 12)::

            CPU0 (mm0: munmap v0..v1)          CPU1 (mm1, the fork's child)
            detach v0..v1, zap v0
                                               munmap v1: the folio's last other
                                               mapping goes; owner: mm0's location
                                               reclaim: try_to_unmap(mm0:v1) via
                                               the anon_vma, swap entry, flush deferred
            zap v1: a swap entry
            (4.3: no flush_tlb_batched_pending, returns with v1 cached: S3)
        """
        vma = mm.rmap_vma(vpage)
        if vma is None or not vma.is_anon:
            return default
        return vma.location(vpage)

    def _forked_vpage_of(self, vma, loc):
        """:meth:`_mappings_of` for a fork: the address in ``vma`` of the page with
        ``loc``'s index if ``vma``'s ``anon_vma`` has the same root (``anon_vma_chain``)."""
        roots = self.mem.anon_root
        if vma.anon_id is None or roots.get(vma.anon_id, vma.anon_id) != \
                roots.get(loc[1], loc[1]):
            return None
        vp = vma.start + loc[2] - vma.pgoff
        return vp if vma.start <= vp < vma.end else None
