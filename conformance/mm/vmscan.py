"""mm/vmscan.c (Linux 6.12): reclaim, ``shrink_node`` -> ``shrink_folio_list``.

Isolation, the folio lock and the reference checks reclaim and migration share
(``folio_isolate_lru``, ``folio_putback_lru``) live here too.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from ..errors import ModelError
from .task import hook


class VmscanPaths:
    """The paths of mm/vmscan.c, mixed into :class:`conformance.mm.Kernel`."""

    def _on_lru(self, frame: int) -> bool:
        """Is ``frame`` a folio on the LRU that reclaim/migration may isolate
        (``folio_isolate_lru``: not already isolated)? A swap-cache folio is, mapped
        (a swap-in that was not exclusive) or not (kept by reclaim for a gather's
        reference); until 2026-12-07 it never was (docs/model.md section 11 item 9)."""
        owner = self.mem.owner[frame]
        if owner is None or owner.__class__ is not tuple:
            return False
        return self.mem.isolated[frame] is None  # folio_isolate_lru: already off the LRU

    def _isolate(self, op, frame: int) -> None:
        """``folio_isolate_lru``: take the folio off the LRU with the isolation's reference."""
        self.mem.isolated[frame] = op
        op.touched_frames[frame] = None
        op.touched_locs[self.mem.owner[frame]] = None

    def put_isolated(self, frame: int) -> bool:
        """Drop the isolation reference (``folio_putback_lru``, ``move_folios_to_lru``,
        ``putback_movable_pages``); True if it was the last one (the caller frees). An
        unmapped swap-cache folio whose slot no swap entry uses leaves the swap cache
        first (:meth:`free_swap_cache`: a gather's put skipped it while we held its lock;
        simplification, the kernel leaves it on the LRU for a later reclaim)."""
        self.mem.isolated[frame] = None
        self.free_swap_cache(frame)
        if self.last_reference(frame):
            self.mem.owner[frame] = "isolated"
            return True
        return False

    def release_isolated(self, op, frame: int) -> bool:
        """Unlock and :meth:`put_isolated`."""
        self.unlock(op, self.mem.folio_lock[frame])
        return self.put_isolated(frame)

    def _keep(self, op, frame: int, kept: list) -> None:
        """``shrink_folio_list``'s ``keep_locked``/``keep``: unlock, and keep the folio
        isolated on ``ret_folios`` (``kept``) until the end of the pass, where
        ``move_folios_to_lru`` (after ``try_to_unmap_flush``) puts it back or, holding the
        last reference, frees it."""
        self.unlock(op, self.mem.folio_lock[frame])
        kept.append(frame)

    def _add_to_swap(self, op, frame: int, kept: list, nested: tuple):
        """``add_to_swap``: a swap slot for the anonymous folio, the folio in the swap cache
        and marked dirty; the slot's allocation is where a nested pass enters (``nested``,
        kernel-notes 2.3). Returns ``(slot, nested)``, ``nested`` emptied once its pass ran;
        ``(None, nested)`` when swap is full: the folio is kept (``activate_locked_split``)."""
        mem = self.mem
        slot = mem.alloc_slot()
        if slot is None:
            self.trace.msg(op, "reclaim: swap full, keep pfn%d", frame)
            self._keep(op, frame, kept)
            return None, nested
        mem.swap_cache[slot] = frame
        mem.dirty[frame] = True
        if nested:
            self.trace.msg(op, "add_to_swap: allocation enters nested reclaim")
            yield from self.shrink_node(op, nested)
            nested = ()
        return slot, nested

    def _orphan(self, frame: int, owner) -> bool:
        """Is ``frame`` an anonymous swap-backed folio that nothing maps and no swap entry
        names (its last PTE, or its slot's last swap entry, went while it waited in the
        batch), and that ``shrink_folio_list`` would still send to ``pageout``: not in the
        swap cache (``add_to_swap`` marks it dirty) or dirty in it?"""
        mem = self.mem
        if mem.rmap[frame] or mem.lazyfree[frame]:
            return False
        if owner != "zapped" and (owner.__class__ is not tuple or owner[0] != "a"):
            return False
        slot = mem.swap_slot_of(frame)
        return slot is None or (not mem.swap_map[slot] and mem.dirty[frame])

    def _reclaim_orphan(self, op, frame: int, kept: list, nested: tuple):
        """``shrink_folio_list`` of an :meth:`_orphan`: the kernel has no early exit for an
        unmapped anonymous folio whose last reference is the isolation. ``add_to_swap``
        (the swapout allocation, where a nested pass enters; swap full:
        ``activate_locked``), ``try_to_unmap`` skipped (``folio_mapped`` is false),
        ``try_to_unmap_flush_dirty``, then ``pageout``: an mmu_gather's reference keeps it
        (``is_page_cache_freeable``), else ``swap_writepage`` frees its swap space at once
        (``folio_free_swap``: no swap entry uses the slot) and writes nothing, and the
        folio, dirty, is kept (``PAGE_SUCCESS``, ``folio_test_dirty`` -> ``keep``); our
        put at the end frees it. Returns ``nested`` (emptied once its pass ran). Until
        2026-12-07 23:20 the model paged such a folio out (an S2 check of a copy nobody
        reads) or kept it without the dirty flush (a read-only review of item 37)."""
        mem = self.mem
        tr = self.trace
        slot = mem.swap_slot_of(frame)
        if slot is None:
            slot, nested = yield from self._add_to_swap(op, frame, kept, nested)
            if slot is None:
                return nested
        yield from hook(self.proto.try_to_unmap_flush_dirty(op))
        if mem.gathered[frame]:  # pageout(): !is_page_cache_freeable() -> PAGE_KEEP
            self._keep_gathered(op, frame, slot, kept)
        else:
            tr.msg(op, "pageout(pfn%d): no swap entry uses slot%d: folio_free_swap, no IO, "
                   "keep", frame, slot)
            del mem.swap_cache[slot]
            mem.put_slot(slot)
            self._keep(op, frame, kept)
        yield
        return nested

    def direct_reclaim(self, op, frames: tuple):
        """A direct reclaim pass inside a task's allocation (``__alloc_pages_direct_reclaim``
        -> ``try_to_free_pages``, move_pages' ``get_new_folio``): :meth:`shrink_node` over
        ``frames``, with ``task.path`` "reclaim" while it runs."""
        path = op.path
        op.path = "reclaim"
        yield from self.shrink_node(op, frames)
        op.path = path

    def reclaim(self, op, frames: tuple, nested: tuple = ()):
        """kswapd / direct reclaim: one ``shrink_node`` pass over ``frames``."""
        yield from self.shrink_node(op, frames, nested)

    def shrink_node(self, op, frames: tuple, nested: tuple = ()):
        """``shrink_node`` (``shrink_lruvec``): the protocol's ``init_tlb_ubc`` hook, then
        ``shrink_inactive_list``: ``if (nr_taken == 0) return 0;`` when no folio of
        ``frames`` is on the LRU (nothing isolated: no ``shrink_folio_list``, so none of its
        flushes), else ``shrink_folio_list``. Also the nested pass of
        :meth:`shrink_folio_list` over the folios :meth:`isolate_lru_folios` took."""
        self.m.call_hook(self.proto.init_tlb_ubc, op)
        taken = self.isolate_lru_folios(op, frames, "reclaim")
        if not taken:
            self.trace.msg(op, "shrink_inactive_list: nothing isolated")
            return
        yield from self.shrink_folio_list(op, taken, nested)

    def isolate_lru_folios(self, op, frames: tuple, who: str) -> list:
        """``isolate_lru_folios`` (reclaim) / ``isolate_migratepages_block`` and
        ``add_page_for_migration`` (migration): take every folio of ``frames`` that is on
        the LRU off it with the isolation's reference, the whole batch before the first
        ``folio_trylock``, in one step (the kernel holds ``lru_lock`` across reclaim's
        batch; move_pages isolates page by page under ``mmap_lock``, simplified to one
        step). Returns the folios taken, in ``frames``' order. Until 2026-12-07 22:00 each folio
        was isolated when the pass's loop reached it, so a folio later in the batch could
        be freed, reused, migrated or reused by a write fault's ``wp_can_reuse_anon_folio``
        while the pass worked on an earlier one, and MADV_FREE met it on the LRU (finding
        F2's plainest route, a folio waiting in reclaim's batch, was out of reach)."""
        taken = []
        skipped = []
        for frame in frames:
            if not self._on_lru(frame):
                skipped.append(frame)
                continue
            self._isolate(op, frame)
            taken.append(frame)
        if taken or who != "reclaim":  # reclaim's empty batch: "nothing isolated" says it
            for frame in skipped:
                self.trace.msg(op, "%s: skip pfn%d", who, frame)
        return taken

    def shrink_folio_list(self, op, frames: tuple, nested: tuple = ()):
        """``shrink_folio_list`` over ``frames``, in the kernel's order.

        Per folio: ``add_to_swap`` (anon; marks it dirty), ``try_to_unmap(TTU_BATCH_FLUSH)``,
        if dirty ``try_to_unmap_flush_dirty`` then ``pageout`` (S2),
        ``__remove_mapping``, unlock. A folio an mmu_gather still holds is kept: if dirty, by
        ``pageout``, whose ``is_page_cache_freeable()`` fails *after* the
        ``try_to_unmap_flush_dirty()`` that precedes it (so no writable dirty entry it
        deferred survives the unlock); if clean, by ``__remove_mapping``'s refcount freeze. At the end ``try_to_unmap_flush`` strictly
        before ``free_unref_folios``.
        Simplification: one batch; the demotion pass and activation are not modelled, but
        for a dirty file folio with ``MachineConfig.reclaim_activates_dirty_file``: the
        kernel's ``activate_locked`` of such a folio, after ``try_to_unmap`` and before any
        dirty flush (finding F1, docs/FINDINGS.md). Off (the default), a dirty file folio is
        written back here behind ``try_to_unmap_flush_dirty``, the path of kernels before
        6b0dfabb3555 "fs: Remove aops->writepage" on kswapd's second encounter; current
        kernels leave that write to the flusher.

        Nested reclaim (``nested`` non-empty; Hugh Dickins' 2016 bug, kernel-notes 2.3):
        the swapout allocation of the first anonymous folio (in ``add_to_swap``, after
        the slot is taken) enters reclaim again in the same task: a nested
        ``shrink_node`` over ``nested`` (its own ``init_tlb_ubc``, final
        ``try_to_unmap_flush`` and free), then the outer loop goes on. If no anonymous
        folio reaches ``add_to_swap``, the nested pass runs after the loop, before the
        outer ``try_to_unmap_flush`` (an allocation elsewhere in the pass).
        A lazyfree anonymous folio (MADV_FREE) skips ``add_to_swap``: clean, it is
        discarded by ``try_to_unmap``; re-dirtied, it is kept (the next reclaim swaps it);
        dirty and no longer mapped (zapped while isolated), it is kept without pageout and
        freed by the final put (``folio_is_file_lru`` -> ``activate_locked``).

        Every folio kept after its ``try_to_unmap`` reaches the ``keep:`` label: the
        protocol's ``shrink_folio_list_keep`` hook (LUF v12 flushes there what the pass
        deferred so far for LUF-able folios). A folio whose ``folio_trylock`` fails goes
        to ``keep:`` before any of that (no hook: ``try_to_unmap`` did not walk it) and
        stays isolated, unlocked, until ``move_folios_to_lru`` after the final flush (until
        2026-12-07 the model never isolated it). ``frames`` are folios the caller isolated
        before the loop starts (:meth:`isolate_lru_folios`, MADV_PAGEOUT's
        ``folio_isolate_lru`` under the PTL); one truncated
        while it waited (no mapping) is kept (``keep_locked``); an anonymous one whose
        last mapping (or last swap entry) went while it waited goes through
        ``add_to_swap``, the dirty flush and a ``pageout`` that writes nothing
        (:meth:`_reclaim_orphan`).
        """
        mem = self.mem
        proto = self.proto
        tr = self.trace
        to_free = []
        kept = []
        for frame in frames:
            if not self.trylock(op, mem.folio_lock[frame]):
                # goto keep: on ret_folios, isolated until after the pass's flush
                tr.msg(op, "reclaim: folio_trylock(pfn%d) failed, keep", frame)
                kept.append(frame)
                continue
            owner = mem.owner[frame]
            if self._orphan(frame, owner):
                nested = yield from self._reclaim_orphan(op, frame, kept, nested)
                continue
            if owner.__class__ is not tuple:
                # truncated while it waited in the batch (filemap_remove_folio: no
                # mapping): __remove_mapping is not reached (``!mapping``), keep_locked;
                # our put at the end frees it (the isolation held its last reference). A
                # lazyfree folio zapped while it waited too: the kernel frees it in the
                # loop (folio_ref_freeze), into the batch freed after the final flush
                tr.msg(op, "reclaim: pfn%d has no mapping any more, keep", frame)
                self._keep(op, frame, kept)
                continue
            anon = owner[0] == "a"
            slot = None
            if anon and not mem.lazyfree[frame]:
                slot = mem.swap_slot_of(frame)
            if slot is not None:  # folio_test_swapcache: no add_to_swap, no allocation
                tr.msg(op, "reclaim: pfn%d already in the swap cache (slot%d)", frame, slot)
            elif anon and not mem.lazyfree[frame]:
                slot, nested = yield from self._add_to_swap(op, frame, kept, nested)
                if slot is None:
                    continue
            if not (yield from self.try_to_unmap(op, frame, slot, migration=False)):
                # a lazyfree folio redirtied (try_to_unmap restored the PTE it found dirty):
                # activate_locked, kept isolated until after the final flush. The walk may
                # have discarded other mappings of it first, their flush deferred: the
                # folio's last reference must not go before that flush
                self._keep(op, frame, kept)
                yield from hook(proto.shrink_folio_list_keep(op, frame))
                yield
                continue
            if mem.rmap[frame]:
                raise ModelError(f"pfn{frame} still mapped after try_to_unmap under folio lock")
            if mem.dirty[frame] and anon and slot is None:
                # A dirty lazyfree folio nothing maps any more (its PTEs were zapped while we
                # held it isolated; a mapped one try_to_unmap would have restored and kept):
                # !swapbacked, so folio_is_file_lru() and shrink_folio_list does not write it
                # (activate_locked; pageout() would return PAGE_KEEP, it has no mapping). Kept
                # like a gathered folio; our put at the end frees it (its data is nobody's).
                tr.msg(op, "reclaim: dirty lazyfree pfn%d, no swap slot: keep", frame)
                self._keep(op, frame, kept)
                yield from hook(proto.shrink_folio_list_keep(op, frame))
                yield
                continue
            if mem.dirty[frame] and not anon and self.m.cfg.reclaim_activates_dirty_file:
                # "Only kswapd can writeback filesystem folios ...": activate_locked, after
                # try_to_unmap, before try_to_unmap_flush_dirty; the deferred flush waits for
                # the pass's end: finding F1 (docs/FINDINGS.md; off by default)
                tr.msg(op, "reclaim: dirty file pfn%d: activate_locked, no pageout", frame)
                self._keep(op, frame, kept)
                yield from hook(proto.shrink_folio_list_keep(op, frame))
                yield
                continue
            if mem.dirty[frame]:
                yield from hook(proto.try_to_unmap_flush_dirty(op))
                if mem.gathered[frame]:  # pageout(): !is_page_cache_freeable() -> PAGE_KEEP
                    self._keep_gathered(op, frame, slot, kept)
                    yield from hook(proto.shrink_folio_list_keep(op, frame))
                    yield
                    continue
                if anon:
                    tr.msg(op, "pageout(pfn%d -> slot%d)", frame, slot)
                    mem.swap[slot] = self.copy_out(op, frame)
                else:
                    tr.msg(op, "pageout(pfn%d -> file%d:%d)", frame, owner[1], owner[2])
                    mem.files[owner[1]].disk[owner[2]] = self.copy_out(op, frame)
                mem.dirty[frame] = False
                yield
            if mem.gathered[frame]:  # __remove_mapping: the refcount freeze fails
                self._keep_gathered(op, frame, slot, kept)
                yield from hook(proto.shrink_folio_list_keep(op, frame))
                yield
                continue
            if anon and slot is None:  # !folio_test_swapbacked: no mapping to leave
                tr.msg(op, "reclaim pfn%d: lazyfree, folio_ref_freeze (PGLAZYFREED)", frame)
            elif anon:
                del mem.swap_cache[slot]
                mem.put_slot(slot)
                tr.msg(op, "__remove_mapping(pfn%d from swap cache)", frame)
            else:
                f = mem.files[owner[1]]
                del f.cache[owner[2]]
                tr.msg(op, "__remove_mapping(pfn%d from page cache)", frame)
            if self.release_isolated(op, frame):
                to_free.append(frame)
            yield
        if nested:
            yield from self.shrink_node(op, nested)
        yield from hook(proto.try_to_unmap_flush(op))
        for frame in kept:  # move_folios_to_lru: back on the LRU, or freed by our put
            if self.put_isolated(frame):
                to_free.append(frame)
        if to_free:
            yield from hook(proto.free_unref_folios(op, to_free))
