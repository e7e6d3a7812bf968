"""mm/migrate.c (Linux 6.12): ``migrate_pages_batch`` and migration entries.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from .mm_types import MIGRATION
from .task import hook


class _MigrationWait:
    """``migration_entry_wait``: sleep until the migration entry is replaced."""

    __slots__ = ("pte",)

    def __init__(self, pte):
        self.pte = pte

    def can_take(self, op):
        return self.pte.kind != MIGRATION


class MigratePaths:
    """The paths of mm/migrate.c, mixed into :class:`conformance.mm.Kernel`."""

    def migrate(self, op, frames: tuple, nested: tuple = ()):
        """``migrate_pages_batch``: unmap all, ``try_to_unmap_flush`` *before any copy*, then move.

        ``migrate_folio_unmap`` allocates the destination and installs migration
        entries (deferred flush: async mode, ``TTU_BATCH_FLUSH``); at ``move:``
        the batch is flushed; ``migrate_folio_move`` copies (S2), switches the
        page cache slot (``folio_migrate_mapping``), ``remove_migration_ptes``,
        unlocks and frees the source (``migrate_folio_done``).
        With the protocol's ``MIGRATE_FLUSH_BEFORE_COPY`` False (a naive batching, not
        a kernel version) the flush is issued only after the copy and
        ``remove_migration_ptes`` of each folio, just before its source is freed.
        Each folio's move starts with the protocol's ``migrate_folio_move`` hook (after the
        batch flush when ``MIGRATE_FLUSH_BEFORE_COPY``, before ``folio_migrate_mapping``
        and the copy).

        Direct reclaim from the destination allocation (``nested`` non-empty; move_pages(2),
        docs/model.md section 11 item 24): ``get_new_folio`` (``alloc_migration_target``,
        ``GFP_HIGHUSER_MOVABLE``) of the batch's last folio enters direct reclaim, a nested
        ``shrink_node`` over ``nested`` in the same task (its own ``init_tlb_ubc``, final
        ``try_to_unmap_flush`` and free; ``task.path`` "reclaim" while it runs), with the
        earlier folios' flush still pending in the task's batch::

            CPU1 (move_pages of A, B)                CPU0 (mm0)
            try_to_migrate(A): clear mm0:v0,         caches v0 W D
              flush deferred (TTU_BATCH_FLUSH)
            get_new_folio(B) -> direct reclaim:
              nested shrink_node(C): init_tlb_ubc,
              try_to_migrate... try_to_unmap_flush
            move: try_to_unmap_flush(); copy A       a store through v0 must not be lost

        The last folio is isolated before its allocation and locked after it, as
        ``add_page_for_migration`` and ``migrate_folio_unmap`` do. A folio whose
        ``folio_trylock`` fails (``MIGRATE_ASYNC``: ``-EAGAIN``) or whose destination
        allocation fails stays isolated, unlocked, until the batch is moved, then is put
        back (``putback_movable_pages``), freed there if its owner unmapped it meanwhile
        (until 2026-12-07 the model never isolated a folio it could not lock). Simplified:
        only that one allocation reclaims; the destination is allocated after the source's
        trylock, where ``migrate_folio_unmap`` allocates first and frees it on an async
        trylock failure (so a folio whose trylock fails never reaches the ``page_alloc``
        hook here: one allocation, and a protocol's flush there, fewer than the kernel's);
        the batch is isolated in one step before the first trylock
        (:meth:`isolate_lru_folios`; until 2026-12-07 22:00 each folio when the loop reached
        it); no pass runs when the last folio is not on the LRU (no allocation); a failed allocation does not end the
        loop (the kernel's ``-ENOMEM`` goes to ``move:``); the ``MIGRATE_ASYNC`` retry
        passes and the ``MIGRATE_SYNC`` retry of a folio whose trylock failed are not
        modelled (docs/model.md section 11 item 24). kcompactd's and direct compaction's
        allocator (``compaction_alloc``) never reclaims: ``nested`` is empty for them.
        """
        mem = self.mem
        proto = self.proto
        tr = self.trace
        batch = []
        failed = []  # not migrated: on ``from`` until putback_movable_pages
        taken = self.isolate_lru_folios(op, frames, "migrate")
        # the allocation of the batch's last folio reclaims, if that folio was taken (a
        # frame listed twice is taken at its first place: then the last folio is another)
        last = taken[-1] if taken and taken[-1] == frames[-1] else None
        for frame in taken:
            if nested and frame == last:
                # get_new_folio runs before migrate_folio_unmap's folio_trylock(src)
                tr.msg(op, "get_new_folio: allocation enters direct reclaim")
                yield from self.direct_reclaim(op, nested)
            if not self.trylock(op, mem.folio_lock[frame]):  # MIGRATE_ASYNC: -EAGAIN
                tr.msg(op, "migrate: folio_trylock(pfn%d) failed", frame)
                failed.append(frame)
                continue
            owner = mem.owner[frame]
            if owner.__class__ is not tuple:
                # truncated or zapped while isolated and unlocked (the loop yields
                # there): the isolation holds its last reference. The kernel tests
                # "Folio was freed from under us" (folio_ref_count(src) == 1) before its
                # allocation, so it migrates such an orphan and frees both; the model
                # frees it at the put-back, the same end (it leaked its destination frame
                # until 2026-12-07 03:50)
                tr.msg(op, "migrate: pfn%d freed from under us", frame)
                dst = None
            else:
                dst = self.alloc_frame(op, owner)  # None: -ENOMEM
            if dst is None:
                self.unlock(op, mem.folio_lock[frame])
                failed.append(frame)
                continue
            yield from self.lock(op, mem.folio_lock[dst])
            mem.isolated[dst] = op  # migration holds its reference until the move is done
            yield from self.try_to_unmap(op, frame, None, migration=True)
            batch.append((frame, dst, owner))
        before = proto.MIGRATE_FLUSH_BEFORE_COPY
        if before:
            yield from hook(proto.try_to_unmap_flush(op))
        tr.msg(op, "migrate: move")
        yield
        for frame, dst, owner in batch:
            yield from hook(proto.migrate_folio_move(op, frame, dst))
            if mem.gathered[frame]:
                if not before:
                    yield from hook(proto.try_to_unmap_flush(op))
                yield from self._migrate_abort(op, frame, dst, owner)
                continue
            tr.msg(op, "copy pfn%d -> pfn%d", frame, dst)
            mem.value[dst] = self.copy_out(op, frame)
            mem.dirty[dst] = mem.dirty[frame]
            mem.lazyfree[dst] = mem.lazyfree[frame]  # folio_migrate_flags: !swapbacked kept
            if owner[0] == "f":
                mem.files[owner[1]].cache[owner[2]] = dst
            else:
                slot = mem.swap_slot_of(frame)
                if slot is not None:  # folio_migrate_mapping: dst takes the swap cache entry
                    mem.swap_cache[slot] = dst
                    if mem.cow[frame]:  # not exclusive, whether or not a PTE maps it
                        mem.cow[dst] = True
            yield from self.remove_migration_ptes(op, frame, dst, owner)
            if not before:
                yield from hook(proto.try_to_unmap_flush(op))
            mem.isolated[dst] = None
            self.unlock(op, mem.folio_lock[dst])
            if owner[0] == "a":
                # our folio_put: the last one if dst was unmapped meanwhile; a swap-cache
                # folio whose last swap entry was zapped while we held it locked
                # (free_swap_and_cache's trylock failed) leaves the swap cache first, where
                # the kernel leaves it to reclaim (put_folios' simplification)
                self.put_folios([dst])
            if self.release_isolated(op, frame):
                yield from hook(proto.free_unref_folios(op, [frame]))
            yield
        for frame in failed:  # the caller's putback_movable_pages: freed if it was the last
            if self.put_isolated(frame):  # reference (unmapped while isolated)
                yield from hook(proto.free_unref_folios(op, [frame]))

    def remove_migration_ptes(self, op, src: int, dst: int, loc):
        """``remove_migration_ptes(src, dst)``: each migration entry still pointing at ``src``
        becomes a present PTE of ``dst`` with the permissions it recorded (one PTL each).
        The walk is redone after each step (an entry mremap moved meanwhile is found)."""
        seen = []
        walk = yield from self.rmap_walk_lock(op, loc)
        while True:
            for mm, vpage in self._mappings_of(loc):
                pte = mm.ptes[vpage]
                if pte.kind == MIGRATION and pte.frame == src and (mm.id, vpage) not in seen:
                    break
            else:
                self.rmap_walk_unlock(op, walk)
                return
            mm_id = mm.id
            seen.append((mm_id, vpage))
            ptl = mm.ptl(vpage)
            yield from self.lock(op, ptl)
            pte = mm.ptes[vpage]
            if pte.kind == MIGRATION and pte.frame == src:
                pte.set_present(dst, pte.writable, pte.dirty, self.m.new_pte_inst())
                self.rmap_add(dst, mm, vpage)
                if self.mem.owner[dst].__class__ is not tuple:
                    # a COW fault or a zap took dst's last mapping between two of these
                    # steps and marked it dead; this entry maps it again (migration's
                    # reference kept it): it is this mapping's folio (a frame mapped with a
                    # dead owner was never freed, conformance/accounting.py, 2026-12-07)
                    self.mem.owner[dst] = self._mapping_location(mm, vpage, loc)
                if self.mem.cow[src]:  # a readable entry restores a non-exclusive folio
                    self.mem.cow[dst] = True
                self.trace.msg(op, "remove_migration_pte(mm%d:v%d -> pfn%d)", mm_id, vpage, dst)
            self.unlock(op, ptl)
            yield

    def _migrate_abort(self, op, frame: int, dst: int, loc):
        """``__migrate_folio``'s "src has extra refs" check failed (-EAGAIN, before the copy;
        an mmu_gather's reference): ``remove_migration_ptes(src, src)``, free dst.
        Simplified: the kernel's ``migrate_folio_move`` keeps the folio's migration entries
        on -EAGAIN and retries it in the next pass (up to ``nr_pass``), restoring them
        only in the cleanup (``migrate_folio_undo_src``); the model restores them at once,
        after the batch's flush either way (a review of 2026-12-07)."""
        mem = self.mem
        self.trace.msg(op, "migrate pfn%d: extra reference (mmu_gather), restore", frame)
        yield from self.remove_migration_ptes(op, frame, frame, loc)
        mem.isolated[dst] = None
        self.unlock(op, mem.folio_lock[dst])
        mem.owner[dst] = "zapped"
        self.free_frames([dst])
        if self.release_isolated(op, frame):
            yield from hook(self.proto.free_unref_folios(op, [frame]))
