"""mm/madvise.c (Linux 6.12): ``do_madvise`` and its page-table walkers.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from .mm_types import PRESENT, SWAP
from ..protocol import MmuGather
from .mmu_gather import GATHER_FREES
from .task import hook


class MadvisePaths:
    """The paths of mm/madvise.c, mixed into :class:`conformance.mm.Kernel`."""

    def madvise(self, op, mm, start: int, npages: int, advice: str):
        """``do_madvise`` under ``mmap_read_lock``: two madvises of one mm run in parallel.

        Per VMA of the range, one mmu_gather (``tlb_gather_mmu`` ...
        ``tlb_finish_mmu``, so parallel gathers see ``mm_tlb_flush_nested``):
        ``dontneed``: ``zap_page_range_single`` -> ``unmap_single_vma`` ->
        :meth:`zap_pte_range` per page table (the VMA stays; anonymous contents are
        gone); ``free`` (anonymous VMAs only), ``cold``, ``pageout``:
        :meth:`madvise_pte_range`, and for ``pageout`` ``reclaim_pages`` (``shrink_folio_list`` in this task) after each page table.
        No VMA in the range: ``-ENOMEM`` (result "error"). ``free`` on a VMA that is not
        anonymous: ``madvise_free_single_vma`` returns ``-EINVAL`` and ``madvise_walk_vmas``
        stops there (result "error"; the VMAs before it were done). S3 for dontneed/free at
        return.
        """
        yield from self.mmap_read_lock(op, mm)
        end = start + npages
        vmas = [v for v in mm.vmas if v.start < end and v.end > start]
        if not vmas:
            self._error(op, mm, "madvise: ENOMEM", False)
            return
        self._touch_range(op, mm, start, end)
        proto = self.proto
        for vma in vmas:
            if advice == "free" and not vma.is_anon:
                self.trace.msg(op, "madvise_free: not anonymous: EINVAL")
                op.result = "error"
                break
            a, b = max(vma.start, start), min(vma.end, end)
            tlb = MmuGather(op, mm, a, b, self._tlb_batch_pages_flush)
            tlb.advice = advice
            self.m.call_hook(proto.tlb_gather_mmu, tlb)
            for ta, tb in mm.table_ranges(a, b):
                if advice == "dontneed":
                    yield from self.zap_pte_range(op, tlb, mm, vma, ta, tb, madv=True)
                    continue
                folios = yield from self.madvise_pte_range(op, tlb, mm, vma, ta, tb, advice)
                if folios:  # pageout: reclaim_pages -> reclaim_folio_list
                    op.path = "reclaim"
                    yield from self.shrink_folio_list(op, tuple(folios))
                    op.path = "madvise"
            yield from hook(proto.tlb_end_vma(tlb, vma))
            yield from hook(proto.tlb_finish_mmu(tlb))
            if tlb.pages:
                raise self.m.left_by_hooks(op, GATHER_FREES, "tlb_finish_mmu left pages unfreed")
        self.mmap_read_unlock(op, mm)
        self.m.log_return(op)
        if advice in ("dontneed", "free"):
            self.oracle.check_s3(op, mm, start, end, "madvise(%s)" % advice)

    def _split_window(self, op, mm, ptl, frame: int, what: str):
        """Large-folio split in the madvise walkers (``madvise_free_pte_range``,
        ``madvise_cold_or_pageout_pte_range``): ``folio_trylock``, ``pte_unmap_unlock``,
        ``split_folio``, ``folio_unlock``, re-take the PTL and (``RECHECK_AFTER_RELOCK``,
        383c4613c67c) call ``flush_tlb_batched_pending`` again. The folio stays locked
        across the split, so no rmap walker (reclaim, migration, writeback, truncate) can
        unmap *it* in the window; a walker can unmap another folio of the same table, which
        is Jann Horn's interleaving (kernel-notes 2.11)::

            CPU0 (MADV_FREE v0..v1)              CPU1 (reclaim of v1's folio)
            lock PTL, flush_tlb_batched_pending
            v0: large folio, folio_trylock
            unlock PTL, split_folio
                                                 try_to_unmap_one(v1): clear,
                                                 set_tlb_ubc_flush_pending
            folio_unlock, lock PTL
            (no flush_tlb_batched_pending)
            v1: swap entry, freed; return        (v1 still cached on CPU0)

        Returns False where the kernel opens no window here (the model then treats the
        folio as a small one): a folio mapped more than once (``folio_likely_mapped_shared``)
        or locked by another path (``folio_trylock`` fails); the kernel ``break``s out of
        the table for a large folio there, a small folio goes on as usual.

        Simplifications: large folios are not modelled, so every page table's first
        present PTE opens this window (drop the PTL, **yield**, re-take it) if its folio
        qualifies; the caller re-reads the PTE afterwards. ``split_folio``'s own unmap and
        remap (``unmap_folio``, its ``try_to_unmap_flush``) are not modelled: the split
        changes no PTE here. ``folio_get``'s reference is counted in ``mem.gathered``,
        the model's count of references other than mappings, caches and isolation (an
        mmu_gather's until its flush): a MADV_DONTNEED that zaps the folio in the window
        does not free it, and our ``folio_put`` does; the folio stays on the LRU, as
        ``folio_get`` leaves it (a parallel MADV_COLD still ages it; reclaim and migration
        fail ``folio_trylock``); a write fault copies instead of reusing it, as the
        kernel's refcount check makes it. Until 21:50 the window took no reference, and a
        zap in it freed the locked frame for reuse (a model error in the soundness
        campaign, seed 20262092: a reclaim of the reused frame); from 21:50 to 22:05 the
        reference was the isolation one, which a parallel MADV_COLD skips (a review).
        Until 2026-12-06 20:50 the window opened without the folio
        lock, and the shipped litmus of 2.11 had reclaim unmap the very folio being split
        (a reviewer's finding: the kernel's reclaim skips a folio it cannot trylock).
        """
        mem = self.mem
        lk = mem.folio_lock[frame]
        if len(mem.rmap[frame]) != 1 or not self.trylock(op, lk):
            return False
        mem.gathered[frame] += 1  # folio_get: an extra reference (see below)
        mem.window_refs[frame] = 1  # one window: we hold the folio lock
        self.unlock(op, ptl)
        self.trace.msg(op, "%s: split_folio pfn%d (PTL dropped, folio locked)", what, frame)
        yield
        mem.gathered[frame] -= 1  # folio_unlock, folio_put
        del mem.window_refs[frame]
        self.unlock(op, lk)
        self.put_folios([frame])  # the last put if it was zapped in the window (DONTNEED,
        # a COW copy): freed after the zapper's flush
        yield from self.lock(op, ptl)
        if self.proto.RECHECK_AFTER_RELOCK:
            yield from hook(self.proto.flush_tlb_batched_pending(op, mm))
        return True

    def madvise_pte_range(self, op, tlb, mm, vma, start: int, end: int, advice: str):
        """``madvise_free_pte_range`` / ``madvise_cold_or_pageout_pte_range`` for one page table.

        PTL, ``flush_tlb_batched_pending``; the first present PTE opens the split window
        (:meth:`_split_window`) if its folio is mapped once and unlocked, after which each
        PTE is re-read.

        free (anonymous VMA): swap entry -> ``free_swap_and_cache``, PTE cleared (the
        location reads zero; an S3 visit, ``op.s3_visits``); migration entries skipped;
        present PTE: only a swap-cache or PG_dirty folio needs the folio lock
        (``folio_trylock``, held -> skip), then ``folio_mapcount != 1`` -> skip, a swap-cache
        folio must leave the swap cache (``folio_free_swap``: only if no swap entry uses
        the slot, else skip), ``folio_clear_dirty``, unlock; then for any folio, if the PTE
        is young or dirty: ``ptep_get_and_clear_full`` + set back present, old and clean
        (write bit kept, same PTE instance), ``tlb_remove_tlb_entry``;
        ``folio_mark_lazyfree``. A PTE left clean records, for S3, the writable dirty
        entries of it that exist now (``op.s3_wd``): the gather's flush, or the nested one
        of ``tlb_finish_mmu``, owes their removal.

        cold/pageout: a folio mapped more than once (``folio_mapcount != 1``) or off the LRU
        (isolated) is left alone; cold: ``ptep_test_and_clear_young`` +
        ``tlb_remove_tlb_entry`` if it was young; pageout neither clears the accessed bit
        nor records a flush (2864f3d0f583, "pageout: ignore references rather than
        clearing young"), isolates the folio here under the PTL (``folio_isolate_lru``)
        and collects it for the caller's ``reclaim_pages``. Until 2026-12-07 22:00 that
        reclaim isolated it after the PTL's release (section 11 item 37 made
        :meth:`shrink_folio_list` take only folios its caller isolated).
        """
        mem = self.mem
        proto = self.proto
        if mm.pmd_none(start):  # walk_pmd_range: no table, no pte_entry (no pte_hole op)
            return []
        ptl = yield from self._lock_pte_table(op, mm, start)
        free = advice == "free"
        split = False
        folios = []
        for vpage in range(start, end):
            pte = mm.ptes[vpage]
            if pte.kind == PRESENT and not split:
                split = True
                yield from self._split_window(op, mm, ptl, pte.frame, "madvise_" + advice)
            kind = pte.kind  # re-read after the relock
            if kind == SWAP and free:
                op.s3_visits[(mm.id, vpage)] = self.m.pte_insts
                slot = self._free_swap_entry(op, pte)
                loc = vma.location(vpage)
                self.oracle.expected.pop(loc, None)
                op.touched_locs[loc] = None
                self.trace.msg(op, "madvise_free mm%d:v%d [swap slot%d freed]", mm.id, vpage, slot)
                continue
            if kind != PRESENT:
                continue
            frame = pte.frame
            if not free:
                if len(mem.rmap[frame]) != 1 or mem.isolated[frame] is not None:
                    continue  # folio_mapcount() != 1 / !folio_test_lru: not ours to age
                if advice == "cold":
                    if pte.accessed:
                        pte.accessed = False
                        self.m.call_hook(proto.tlb_remove_tlb_entry, tlb, vpage)
                else:  # folio_isolate_lru under the PTL, onto the caller's folio_list
                    self._isolate(op, frame)
                    folios.append(frame)
                continue
            lazy = self._madvise_free_folio(op, tlb, mm, vpage, pte)
            self._record_wd(op, mm, vpage, pte)  # cleaned or skipped: S3 judges a clean PTE
            if not lazy:
                continue
            self.trace.msg(op, "madvise_free mm%d:v%d [pfn%d lazyfree]", mm.id, vpage, frame)
        self.unlock(op, ptl)
        yield
        return folios

    def _madvise_free_folio(self, op, tlb, mm, vpage: int, pte):
        """One present PTE of ``madvise_free_pte_range`` (see there), under the PTL, no
        interleaving point. Returns whether the folio was marked lazyfree."""
        mem = self.mem
        frame = pte.frame
        swapcache_slot = mem.swap_slot_of(frame)
        if swapcache_slot is not None or mem.dirty[frame]:
            if mem.folio_lock[frame].owner is not None:  # folio_trylock failed
                return False
            if len(mem.rmap[frame]) != 1:  # folio_mapcount(folio) != 1
                return False
            if swapcache_slot is not None:  # folio_free_swap: only if no swap entry uses it
                if mem.swap_map[swapcache_slot]:
                    return False
                self.folio_free_swap(frame, swapcache_slot)
            mem.dirty[frame] = False  # folio_clear_dirty
        op.touched_frames[frame] = None
        if pte.accessed or pte.dirty:
            pte.set_present(frame, pte.writable, False, pte.inst)  # mkold + mkclean, same PTE
            self.m.call_hook(self.proto.tlb_remove_tlb_entry, tlb, vpage)
        iso = mem.isolated[frame]
        if iso is not None and mem.folio_lock[frame].owner is not iso \
                and self.m.cfg.lazyfree_skips_isolated:
            # folio_mark_lazyfree: off the LRU -> nothing (every form: folio_test_lru up to
            # 6.10, folio_test_clear_lru in 6.11-6.12, !folio_test_lru since Hugh Dickins'
            # 2025 revert): a folio a reclaim or migration holds isolated stays
            # swap-backed, and a later reclaim swaps it out behind a PTE this walk cleaned
            # under a writable dirty entry: finding F2 (docs/FINDINGS.md), off by default.
            # Only where its isolator does not also hold it locked: a migration's
            # destination is locked and isolated while remove_migration_ptes maps it, where
            # the kernel's folio_add_lru(dst) came before (with the LRU cache disabled, on
            # the LRU at once); the isolated and locked source keeps the default rule, a
            # simplification (docs/model.md section 11 item 36)
            self.trace.msg(op, "folio_mark_lazyfree(pfn%d): off the LRU, stays swap-backed",
                           frame)
            return False
        # folio_mark_lazyfree, the lru_lazyfree batch drained at once; by default also for a
        # folio off the LRU (the switch above: docs/model.md section 11 item 36)
        mem.lazyfree[frame] = True
        return True

    def _record_wd(self, op, mm, vpage: int, pte) -> None:
        """S3 for MADV_FREE: remember the writable dirty entries of ``pte``'s instance that
        exist while the walk leaves it present and clean (docs/oracle.md section 2)."""
        if pte.kind != PRESENT or pte.dirty:
            return
        for c, e in self.m.tlbs.entries_for(mm.id, vpage):
            if e.writable and e.dirty and e.inst == pte.inst:
                op.s3_wd.append((c.id, mm.id, vpage, e))
