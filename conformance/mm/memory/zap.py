"""mm/memory.c (Linux 6.12), the zap half: ``zap_pte_range`` and ``unmap_mapping_range``.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from ..mm_types import NONE, PRESENT, SWAP
from ...protocol import MmuGather
from ..mmu_gather import GATHER_FREES
from ..task import hook


class ZapPaths:
    """The zap paths of mm/memory.c, mixed into :class:`conformance.mm.Kernel`."""

    def zap_pte_range(self, op, tlb, mm, vma, start: int, end: int, madv: bool = False,
                      rmap_loc=None):
        """``zap_pte_range`` for one page-table page (mm/memory.c).

        Take the PTL, ``flush_tlb_batched_pending``, clear present PTEs
        recording each in the gather (``pte_none`` is skipped and records
        nothing); anon pages are gathered and freed only after the flush.
        A dirty shared-file PTE follows the protocol's ``ZAP_DIRTY_FILE_PTE =
        (force_flush, delay_rmap)``: mainline (True, True) flushes under the PTL and
        removes the rmap only after that flush (5df397dec7c4); with ``delay_rmap``
        False the rmap goes at once (``page_remove_rmap`` in the loop), so
        ``folio_mkclean`` no longer finds the mapping; without ``force_flush`` the flush
        waits for ``tlb_end_vma``/``tlb_finish_mmu`` (x86's ``tlb_end_vma`` does not flush:
        ``Protocol.MMU_GATHER_MERGE_VMAS``). When ``force_flush``, a ``yield``
        between the PTE loop and ``tlb_flush_mmu_tlbonly`` (PTL held) stands for the
        rest of the page-table walk and the IPI wait: another CPU's ``folio_mkclean``
        (writeback) may run there. After the PTL is dropped, a forced flush frees the batch
        at once (``tlb_flush_mmu``: nothing left to invalidate, then
        ``tlb_batch_pages_flush``), not only at ``tlb_finish_mmu``.

        **Full batch** (``__tlb_remove_folio_pages`` / ``__tlb_remove_page`` returning true
        when ``tlb_next_batch`` cannot add a batch; here when the gather holds
        ``MachineConfig.gather_batch`` pages): ``force_flush`` and ``force_break``, the
        walk stops after that PTE, flushes under the PTL (``tlb_flush_mmu_tlbonly``,
        ``tlb_flush_rmaps``), drops it, ``tlb_flush_mmu`` frees the batch, **yield**
        (``cond_resched``) and the walk starts again at the next address: re-take the PTL,
        ``flush_tlb_batched_pending`` again (6.x: ``zap_pmd_range`` calls again from the
        returned ``addr``; before 6.x: ``goto again`` inside ``zap_pte_range``). This
        force flush is the same code as the dirty-file one (since 1cf35d47712d); only what
        forced it differs. With ``ZAP_DIRTY_FILE_PTE = (False, False)`` (the kernel before
        1cf35d47712d) a full batch is flushed after the PTL is dropped instead: unlock,
        **yield** (the flush's IPI wait), ``tlb_flush_mmu`` ("we break out of the PTE lock to
        avoid doing the potential expensive TLB invalidate and page-free while holding it").

        ``madv`` (MADV_DONTNEED: the VMA stays): an anonymous location whose PTE is
        cleared reads zero from now on (``oracle.expected`` reset).
        ``rmap_loc`` (an rmap walk's zap, :meth:`unmap_mapping_range`): with the PTL held,
        the page is zapped only if a VMA an rmap walk finds in the mm (``Mm.rmap_vma``: the
        tree's, or one a munmap in flight has not unlinked yet) still maps ``rmap_loc`` there (returns
        False if not, True when the range was walked). Why: in
        the kernel the walk holds ``i_mmap_rwsem`` and the VMA it found cannot leave the
        tree (``unlink_file_vma`` waits for the write lock), and a new mm never reuses
        the old one's page tables; the model reuses mm slots (fork, exec) and lets munmap
        finish beside the walk, so without the check a paused truncate zapped, through
        the old tenant's file VMA, the anonymous page a fork's child had at that address
        (a false C1, docs/SOUNDNESS.md 2026-12-03 18:00). A VMA that no longer maps the
        page had its PTEs zapped by its own unmap, so the kernel's walk would find nothing
        left either.
        Every slot of the table range is a *visit* for S3 (``op.s3_visits``), ``pte_none``
        ones included: the 99baac21e458 race is a walk that finds the slot already empty.

        **need_resched** (``MachineConfig.zap_need_resched``): the loop's ``if
        (need_resched()) break;`` (6.x) stops the pass before every slot but its first, with
        no flush unless one is forced: the PTL is dropped with cleared PTEs still in other
        CPUs' TLBs, the same window as between two page-table pages, here inside one. The
        walk restarts at that slot as for a full batch. Simplified: the kernel tests
        ``need_resched()`` before the pass's first PTE too; after ``cond_resched`` it is
        false there, so breaking before the first would only repeat the restart.

        ::

            CPU0 (munmap v0..v1, one table)     CPU1
            pte_clear(v0), gathered, no flush
            need_resched: break, unlock PTL
                                                spin_lock(PTL)   (v0 none, v1 mapped)
                                                flush_tlb_batched_pending ...
                                                spin_unlock(PTL)
            spin_lock(PTL), flush_tlb_batched_pending
            pte_clear(v1) ... tlb_finish_mmu: flush, free
        """
        mem = self.mem
        proto = self.proto
        file_force, file_delay = proto.ZAP_DIRTY_FILE_PTE
        anon = vma.is_anon
        batch = self.m.cfg.gather_batch
        resched = self.m.cfg.zap_need_resched
        addr = start
        if mm.pmd_none(start):  # zap_pmd_range: no table, no PTL, nothing to flush
            for vpage in range(start, end):  # visited now, each slot empty (S3)
                op.s3_visits[(mm.id, vpage)] = self.m.pte_insts
            return True
        while addr < end:  # retry: once per pass that stopped (full batch, need_resched)
            ptl = yield from self._lock_pte_table(op, mm, addr)
            if rmap_loc is not None:
                now = mm.rmap_vma(addr)
                if now is None or now.vpage_of(rmap_loc) != addr:
                    self.unlock(op, ptl)
                    return False
            force_flush = False
            vpage = first = addr
            addr = end
            while vpage < end:
                pte = mm.ptes[vpage]
                kind = pte.kind
                # 6.12: "if (pte_none(ptent)) continue; if (need_resched()) break;": a
                # none slot is passed under the PTL, the break comes only before a PTE to
                # zap (until 2026-12-07 the model could break before a none slot too, so a
                # fault could fill it and this pass zap it: a review)
                if kind != NONE and resched and vpage != first:
                    addr = vpage
                    self.trace.msg(op, "zap: need_resched, drop the PTL mid-table")
                    break
                op.s3_visits[(mm.id, vpage)] = self.m.pte_insts
                vpage += 1
                if kind == NONE:
                    continue
                vp = vpage - 1
                op.touched_vps[(mm.id, vp)] = None
                if madv:
                    if anon:
                        loc = vma.location(vp)
                        self.oracle.expected.pop(loc, None)
                        op.touched_locs[loc] = None
                if kind == PRESENT:
                    pteval = pte.snapshot()
                    pte.clear()  # ptep_get_and_clear_full
                    self.m.call_hook(proto.tlb_remove_tlb_entry, tlb, vp)
                    frame = pteval.frame
                    op.touched_frames[frame] = None
                    mem.gathered[frame] += 1  # __tlb_remove_page: put after the flush
                    tlb.pages.append(frame)
                    if anon:
                        self.rmap_remove(frame, mm, vp)
                        mem.owner[frame] = self._anon_owner_after_unmap(frame)
                    elif pteval.dirty:
                        mem.dirty[frame] = True  # folio_mark_dirty
                        force_flush = force_flush or file_force
                        if file_delay:
                            tlb.delayed_rmap.append((frame, mm, vp))
                        else:
                            self.rmap_remove(frame, mm, vp)
                    else:
                        self.rmap_remove(frame, mm, vp)
                    self.trace.msg(op, "zap mm%d:v%d [pfn%d]", mm.id, vp, frame)
                    if len(tlb.pages) >= batch:  # __tlb_remove_page: batch full
                        force_flush = True  # force_break: stop after this PTE
                        if vpage < end:
                            addr = vpage
                            self.trace.msg(op, "zap: mmu_gather full, flush mid-walk")
                        break
                elif kind == SWAP:
                    slot = self._free_swap_entry(op, pte)
                    self.trace.msg(op, "zap mm%d:v%d [swap slot%d]", mm.id, vp, slot)
                else:
                    pte.clear()  # migration entry: remove_migration_ptes will find none
                    self.trace.msg(op, "zap mm%d:v%d [migration entry]", mm.id, vp)
            if force_flush and file_force:
                yield  # rest of the walk / IPI wait, PTL held
                yield from hook(proto.tlb_flush_mmu_tlbonly(tlb))
                for frame, rmm, vp in tlb.delayed_rmap:  # tlb_flush_rmaps
                    self.rmap_remove(frame, rmm, vp)
                tlb.delayed_rmap.clear()
            self.unlock(op, ptl)
            if force_flush:  # tlb_flush_mmu: free the batched memory too
                if not file_force:  # before 1cf35d47712d: the whole flush after the unlock
                    yield  # its IPI wait, PTL dropped
                yield from hook(proto.tlb_flush_mmu(tlb))
            yield
        return True

    def _free_swap_entry(self, op, pte) -> int:
        """``free_swap_and_cache_nr`` (mm/swapfile.c) + ``pte_clear`` of a swap entry;
        returns its slot.

        The last swap reference gone (``swap_only_has_cache``): ``__try_to_reclaim_swap(si,
        offset, TTRS_UNMAPPED | TTRS_FULL)``. It ``folio_trylock``s the swap-cache folio and,
        if the folio is not mapped and ``folio_swapcache_freeable`` (no writeback),
        ``delete_from_swap_cache`` + ``folio_set_dirty``; its ``folio_put``
        frees the folio if that was the last reference. Another reference (reclaim's
        isolation, an mmu_gather) frees it later, after that holder's flush.
        Simplified: ``TTRS_FULL`` (swap more than half used, ``mem_cgroup_swap_full``: the
        kernel then drops a *mapped* folio from the swap cache too, marked dirty, so a
        later reclaim writes it out again) is not modelled; the folio stays in the swap
        cache, and a later reclaim of it is clean (a review of 2026-12-07 23:45: one S2
        check point fewer, no flush decision differs).
        A mapped folio (a swap-in that was not exclusive mapped it read-only) stays in the
        swap cache, as in the kernel, until a write fault's ``folio_free_swap``, reclaim,
        or the gather's ``free_swap_cache`` after its last PTE is zapped. A failed trylock
        leaves the folio in the swap cache, as in the kernel (the swap-in that holds it
        frees it on ``!pte_same``; reclaim's pass or migration takes it off later).
        """
        mem = self.mem
        slot = pte.slot
        pte.clear()
        mem.swap_map[slot] -= 1
        frame = mem.swap_cache.get(slot) if not mem.swap_map[slot] else None
        if frame is not None and mem.folio_lock[frame].owner is None and not mem.rmap[frame]:
            op.touched_frames[frame] = None
            del mem.swap_cache[slot]  # delete_from_swap_cache
            mem.dirty[frame] = True  # folio_set_dirty
            self.trace.msg(op, "free_swap_and_cache: pfn%d leaves the swap cache", frame)
            if self.last_reference(frame):  # folio_put
                mem.owner[frame] = "zapped"
                self.free_frames([frame])
        mem.put_slot(slot)
        return slot

    def unmap_mapping_range(self, op, loc, visited: list):
        """``unmap_mapping_range(mapping, pgoff, 1, even_cows=0)`` (mm/memory.c) for one page:
        ``i_mmap_lock_read``, then ``unmap_mapping_range_tree``: for each VMA mapping the
        page, ``zap_page_range_single`` (mm/memory.c): its own ``tlb_gather_mmu``,
        :meth:`zap_pte_range` of the one page, ``tlb_end_vma``, ``tlb_finish_mmu``. No
        ``mmap_lock``: it runs beside munmap, mprotect, mremap, madvise and faults of any
        mm mapping the file, and beside their open gathers (``mm_tlb_flush_nested``).
        Appends each (mm, vpage) it walked to ``visited`` (S3 at return)."""
        proto = self.proto
        walk = yield from self.rmap_walk_lock(op, loc)
        for mm, vp in self._mappings_of(loc):
            vma = mm.rmap_vma(vp)
            if vma is None or vma.vpage_of(loc) != vp:  # unmapped while we zapped others
                continue
            op.touched_vps[(mm.id, vp)] = None
            tlb = MmuGather(op, mm, vp, vp + 1, self._tlb_batch_pages_flush)
            self.m.call_hook(proto.tlb_gather_mmu, tlb)
            walked = yield from self.zap_pte_range(op, tlb, mm, vma, vp, vp + 1, rmap_loc=loc)
            yield from hook(proto.tlb_end_vma(tlb, vma))
            yield from hook(proto.tlb_finish_mmu(tlb))
            if tlb.pages:
                raise self.m.left_by_hooks(op, GATHER_FREES, "tlb_finish_mmu left pages unfreed")
            if walked:  # not unmapped meanwhile (zap_pte_range's rmap_loc)
                visited.append((mm, vp))
        self.rmap_walk_unlock(op, walk)
