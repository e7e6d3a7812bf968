"""mm/memory.c (Linux 6.12), fork's part: ``copy_pte_range`` (``dup_mmap``'s page-table copy).

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from ..mm_types import MIGRATION, NONE, SWAP


class CopyPaths:
    """The page-table copy of mm/memory.c, mixed into :class:`conformance.mm.Kernel`."""

    def copy_pte_range(self, op, mm, vma, child, new, start: int, end: int):
        """``copy_pte_range`` -> ``copy_present_ptes``/``copy_nonpresent_pte`` for one page
        table (mm/memory.c): the child's PTL (``pte_alloc_map_lock``), then the parent's
        (``spin_lock_nested``); no ``flush_tlb_batched_pending`` (fork does not call it: the
        ``flush_tlb_mm`` at the end of ``dup_mmap`` covers a flush reclaim deferred).

        Per PTE: ``pte_none`` -> nothing; swap entry -> ``swap_duplicate`` (one more swap
        entry on the slot) and the same entry in the child; migration entry -> the child
        gets it too, and a writable one is made readable in both
        (``make_readable_migration_entry``: a COW mapping); present ->
        ``folio_try_dup_anon_rmap_pte`` (the folio is now mapped twice and loses
        ``PageAnonExclusive``: ``PhysMem.cow``), and, the mapping being COW
        (``is_cow_mapping``: private, ``VM_MAYWRITE``), a writable PTE is write-protected
        in the parent (``ptep_set_wrprotect``: D kept, same PTE instance, no flush here)
        and mapped read-only in the child (``pte_wrprotect``; ``pte_mkold``; D kept: a
        private mapping is not made clean), a new PTE instance. Every child slot gets the
        parent location's value (oracle). Unlock both; the caller yields.

        The fork window (until ``dup_mmap``'s ``flush_tlb_mm``): a parent CPU may still
        cache a writable dirty entry to the folio behind each copied entry, and a store
        through it reaches the child too. ``PhysMem.fork_copies`` records (fork, child
        location, parent location) per frame (:meth:`Machine._fork_window_store`): for a
        present PTE its frame (``ptep_set_wrprotect`` without a flush); for a migration
        entry the folio being migrated (its stale entry is the migration's deferred flush:
        a store before that flush is copied to the new folio, which ``remove_migration_ptes``
        maps in both mms); for a swap entry the swap-cache folio of its slot, if any (a
        reclaim's deferred flush: the child's swap-in finds that folio, or the slot written
        from it).
        Simplifications: no GUP pins, so ``folio_try_dup_anon_rmap_pte`` never fails
        (``copy_present_page`` is never needed); the PTLs are held through the whole page
        table, where the kernel may drop them for ``cond_resched`` once ``progress`` passes
        32 (a present or swap PTE counts 8) and go on at ``again``: the model's tables are
        too small to pass it but at ``ptes_per_table`` >= 5, and the break only adds points
        between PTE copies inside the fork window (a miss, never a false FAIL).
        """
        mem = self.mem
        expected = self.oracle.expected
        dst_ptl = child.ptl(start)
        yield from self.lock(op, dst_ptl)
        src_ptl = mm.ptl(start)
        yield from self.lock(op, src_ptl)
        for vp in range(start, end):
            loc, cloc = vma.location(vp), new.location(vp)
            if loc in expected:
                expected[cloc] = expected[loc]
            else:
                expected.pop(cloc, None)
            op.touched_locs[cloc] = None
            op.touched_vps[(mm.id, vp)] = None
            pte = mm.ptes[vp]
            kind = pte.kind
            if kind == NONE:
                continue
            dst = child.ptes[vp]
            if kind == SWAP:
                mem.swap_map[pte.slot] += 1  # swap_duplicate
                dst.kind, dst.slot = SWAP, pte.slot
                self.trace.msg(op, "copy swap entry mm%d:v%d [slot%d]", mm.id, vp, pte.slot)
                cached = mem.swap_cache.get(pte.slot)
                if cached is not None:  # the child's swap-in will find this folio
                    mem.fork_copies.setdefault(cached, []).append((op, cloc, loc))
                continue
            frame = pte.frame
            mem.cow[frame] = True
            op.touched_frames[frame] = None
            if kind == MIGRATION:
                pte.writable = False  # make_readable_migration_entry, both mms
                dst.kind, dst.frame, dst.writable, dst.dirty = MIGRATION, frame, False, pte.dirty
                self.trace.msg(op, "copy migration entry mm%d:v%d [pfn%d]", mm.id, vp, frame)
                # the migration copies this folio, stores before its flush included, to
                # the page remove_migration_ptes maps in both mms
                mem.fork_copies.setdefault(frame, []).append((op, cloc, loc))
                continue
            pte.writable = False  # ptep_set_wrprotect(src_mm, addr, src_pte)
            dst.set_present(frame, False, pte.dirty, self.m.new_pte_inst())
            self.rmap_add(frame, child, vp)
            mem.fork_copies.setdefault(frame, []).append((op, cloc, loc))
            self.trace.msg(op, "copy_present_pte(mm%d:v%d -> mm%d) [pfn%d, wrprotect]",
                           mm.id, vp, child.id, frame)
        self.unlock(op, src_ptl)
        self.unlock(op, dst_ptl)
