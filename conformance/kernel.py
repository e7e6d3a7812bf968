"""Kernel paths as generators of atomic steps.

Each operation is a generator; each ``yield`` is an interleaving point where the
scheduler may run another CPU, a user access or a hardware event. Locks are
real: an operation that wants a held lock yields with ``op.blocked_on`` set and
is not runnable until the lock is free. Lock order, as in the kernel:
``mmap_lock`` > folio lock > PTL.

Each path names the kernel function it models; simplifications are stated
where they are made (summary in docs/model.md).
"""
from __future__ import annotations

from types import GeneratorType

from .errors import ModelError
from .pagetable import MIGRATION, NONE, PRESENT, SWAP, Vma
from .protocol import MmuGather


class Op:
    """A kernel operation in flight on a CPU; also the task (``current``) it runs as.

    ``touched_*`` record every PTE slot (mm, vpage), location and frame the
    operation changed or depends on: the oracle treats those as "in flight"
    (C1, O1) until the operation ends, then checks them.
    """

    __slots__ = ("id", "cpu", "name", "args", "gen", "blocked_on", "held", "tlb_ubc",
                 "touched_vps", "touched_locs", "touched_frames", "steps", "_label", "result")

    def __init__(self, op_id: int, cpu: int, name: str, args: tuple) -> None:
        self.id = op_id
        self.cpu = cpu
        self.name = name
        self.args = args
        self.gen = None
        self.blocked_on = None
        self.held: list = []
        self.tlb_ubc = None
        self.touched_vps: dict = {}
        self.touched_locs: dict = {}
        self.touched_frames: dict = {}
        self.steps = 0
        self._label = name  # a string, or a function making it (built only when shown)
        self.result = None

    @property
    def label(self) -> str:
        lb = self._label
        if lb.__class__ is not str:
            lb = self._label = lb()
        return lb

    def __str__(self) -> str:
        return self.label

    def runnable(self) -> bool:
        b = self.blocked_on
        return b is None or b.can_take(self)

    def __repr__(self) -> str:
        return f"{self.label}@CPU{self.cpu}"


class _ReadWant:
    __slots__ = ("sem",)

    def __init__(self, sem):
        self.sem = sem

    def can_take(self, op):
        return self.sem.writer is None


class _WriteWant:
    __slots__ = ("sem",)

    def __init__(self, sem):
        self.sem = sem

    def can_take(self, op):
        return self.sem.writer is None and self.sem.readers == 0


class _MigrationWait:
    """``migration_entry_wait``: sleep until the migration entry is replaced."""

    __slots__ = ("pte",)

    def __init__(self, pte):
        self.pte = pte

    def can_take(self, op):
        return self.pte.kind != MIGRATION


def hook(result):
    """Run a protocol hook's interleaving points, if it has any (``yield from hook(...)``)."""
    if result.__class__ is GeneratorType:
        return (yield from result)
    return result


class Kernel:
    """The kernel paths of the simulated machine."""

    def __init__(self, machine) -> None:
        m = machine
        self.m = m
        self.mem = m.mem
        self.mms = m.mms
        self.arch = m.arch
        self.trace = m.trace
        self.oracle = m.oracle

    @property
    def proto(self):
        return self.m.proto

    # -- locking -------------------------------------------------------------
    def lock(self, op, lk):
        """``spin_lock``/``folio_lock``: wait (yield) while held."""
        while lk.owner is not None:
            op.blocked_on = lk
            yield
        op.blocked_on = None
        lk.owner = op
        op.held.append(lk)

    def unlock(self, op, lk) -> None:
        lk.owner = None
        op.held.remove(lk)

    def mmap_read_lock(self, op, mm):
        sem = mm.mmap_lock
        while sem.writer is not None:
            op.blocked_on = _ReadWant(sem)
            yield
        op.blocked_on = None
        sem.readers += 1
        op.held.append(sem)

    def mmap_write_lock(self, op, mm):
        sem = mm.mmap_lock
        while sem.writer is not None or sem.readers:
            op.blocked_on = _WriteWant(sem)
            yield
        op.blocked_on = None
        sem.writer = op
        op.held.append(sem)

    def mmap_read_unlock(self, op, mm) -> None:
        mm.mmap_lock.readers -= 1
        op.held.remove(mm.mmap_lock)

    def mmap_write_unlock(self, op, mm) -> None:
        mm.mmap_lock.writer = None
        op.held.remove(mm.mmap_lock)

    # -- memory services ---------------------------------------------------------
    def alloc_frame(self, op, owner):
        """``alloc_pages``: take the most recently freed frame; S1 is checked here.

        The protocol's ``page_alloc`` hook runs first (LUF flushes what the page
        still owes at takeoff), then the oracle checks that no TLB entry maps it.
        """
        mem = self.mem
        frame = mem.take_free_frame()
        if frame is None:
            return None
        self.m.call_hook(self.proto.page_alloc, op, frame)
        self.oracle.check_s1(frame, op)
        mem.owner[frame] = owner
        mem.dirty[frame] = False
        if op is not None:
            op.touched_frames[frame] = None
        return frame

    def free_frames(self, frames) -> None:
        """The page allocator's free (``free_unref_folios`` without policy)."""
        for f in frames:
            if self.mem.owner[f] is None:
                raise ModelError(f"double free of pfn{f}")
            self.mem.put_free_frame(f)
            self.trace.event(None, "msg", "pfn%d freed", f)

    def _tlb_batch_pages_flush(self, tlb) -> None:
        """``tlb_batch_pages_flush`` -> ``free_pages_and_swap_cache``."""
        if tlb.pages:
            pages, tlb.pages = tlb.pages, []
            mem = self.mem
            for f in pages:
                mem.gathered[f] -= 1
            self.free_frames([f for f in dict.fromkeys(pages) if self.last_reference(f)])

    def copy_out(self, op, frame: int) -> int:
        """Content leaves a frame (pageout, migration copy, writeback): S2 is checked here."""
        self.oracle.check_s2(frame, op)
        return self.mem.value[frame]

    def rmap_add(self, frame: int, mm, vpage: int) -> None:
        self.mem.rmap[frame][(mm.id, vpage)] = None

    def rmap_remove(self, frame: int, mm, vpage: int) -> None:
        """``folio_remove_rmap_pte``."""
        self.mem.rmap[frame].pop((mm.id, vpage), None)

    # -- page fault --------------------------------------------------------------
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
        pte.set_present(frame, writable, dirty)
        self.rmap_add(frame, mm, vpage)
        op.touched_frames[frame] = None
        self.trace.msg(op, "set_pte_at(mm%d:v%d -> pfn%d%s)", mm.id, vpage, frame,
                       " W" if writable else " RO")
        self.m.call_hook(self.proto.fault_install_pte, op, mm, vma, vpage, pte, write)

    def do_wp_page(self, op, mm, vma, vpage, write):
        """``do_wp_page``: ``wp_page_reuse`` (exclusive anon) / ``wp_page_shared`` (page_mkwrite).

        Also the spurious-fault case: the PTE is already what the access needs.
        """
        ptl = mm.ptl(vpage)
        yield from self.lock(op, ptl)
        pte = mm.ptes[vpage]
        if pte.kind == PRESENT and write and not pte.writable:
            pte.writable = True
            pte.dirty = True
            if not vma.is_anon:
                self.mem.dirty[pte.frame] = True  # fault_dirty_shared_page
            op.touched_frames[pte.frame] = None
            self.trace.msg(op, "do_wp_page(mm%d:v%d): pte writable", mm.id, vpage)
            self.m.call_hook(self.proto.fault_install_pte, op, mm, vma, vpage, pte, write)
        self.unlock(op, ptl)

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

    def filemap_get_folio(self, op, fid: int, pgoff: int):
        """``filemap_fault``/``filemap_get_folio``: find or read in, return it locked.

        Retries if the folio left the page cache while we waited for its lock
        (``folio->mapping`` check). Returns None on OOM.
        """
        f = self.mem.files[fid]
        loc = ("f", fid, pgoff)
        for _attempt in range(50):
            frame = f.cache.get(pgoff)
            if frame is not None:
                yield from self.lock(op, self.mem.folio_lock[frame])
                if f.cache.get(pgoff) != frame:
                    self.unlock(op, self.mem.folio_lock[frame])
                    continue
                op.touched_frames[frame] = None
                return frame
            frame = self.alloc_frame(op, loc)
            if frame is None:
                return None
            yield from self.lock(op, self.mem.folio_lock[frame])
            f.cache[pgoff] = frame  # filemap_add_folio, locked, !uptodate
            self.trace.msg(op, "page cache: file%d:%d read into pfn%d", fid, pgoff, frame)
            yield  # read IO in flight
            self.mem.value[frame] = f.disk[pgoff]
            return frame
        raise ModelError("filemap_get_folio: no progress")

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
        (``should_try_to_free_swap`` true), which marks the folio dirty.
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
            self.unlock(op, flk)
            return "retry"
        mem.owner[frame] = vma.location(vpage)
        self._install(op, mm, vma, vpage, frame, vma.writable, write and vma.writable, write)
        del mem.swap_cache[slot]
        mem.swap_map[slot] -= 1
        mem.put_slot(slot)
        mem.dirty[frame] = True
        self.unlock(op, ptl)
        self.unlock(op, flk)
        return "ok"

    # -- rmap walk -----------------------------------------------------------------
    def try_to_unmap(self, op, frame: int, slot, migration: bool):
        """``try_to_unmap_one`` / ``try_to_migrate_one`` for every PTE mapping ``frame``.

        Under each PTL: ``should_defer_flush`` -> ``ptep_get_and_clear`` +
        ``set_tlb_ubc_flush_pending``, else ``ptep_clear_flush``; dirty PTE ->
        ``folio_mark_dirty``; then a swap entry (anon), a migration entry, or
        none (file); rmap removed. All before any flush.
        """
        proto = self.proto
        mem = self.mem
        yield from hook(proto.try_to_unmap_begin(op, frame, migration))
        for (mm_id, vpage) in list(mem.rmap[frame]):
            mm = self.mms[mm_id]
            ptl = mm.ptl(vpage)
            yield from self.lock(op, ptl)
            pte = mm.ptes[vpage]
            if pte.kind == PRESENT and pte.frame == frame:
                op.touched_vps[(mm_id, vpage)] = None
                pteval = pte.snapshot()
                pte.clear()
                if self.m.call_hook(proto.should_defer_flush, op, mm):
                    self.trace.msg(op, "ptep_get_and_clear(mm%d:v%d) [pfn%d%s]", mm_id, vpage,
                                   frame, " dirty" if pteval.dirty else "")
                    yield from hook(proto.set_tlb_ubc_flush_pending(op, mm, pteval, vpage))
                else:
                    self.trace.msg(op, "ptep_clear_flush(mm%d:v%d) [pfn%d]", mm_id, vpage, frame)
                    self.arch.flush_tlb_page(mm, vpage, op)
                if pteval.dirty:
                    mem.dirty[frame] = True
                if migration:
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
        yield from hook(proto.try_to_unmap_end(op, frame, migration))

    def _lru_folio(self, op, frame: int) -> bool:
        """Is ``frame`` a folio reclaim/migration can isolate, and can we trylock it?"""
        owner = self.mem.owner[frame]
        if owner is None or owner.__class__ is not tuple:
            return False
        if self.mem.isolated[frame] is not None:  # folio_isolate_lru: already off the LRU
            return False
        lk = self.mem.folio_lock[frame]
        if lk.owner is not None:  # folio_trylock failed
            return False
        if frame in self.mem.swap_cache.values():
            return False
        lk.owner = op
        op.held.append(lk)
        self.mem.isolated[frame] = op
        op.touched_frames[frame] = None
        op.touched_locs[owner] = None
        return True

    def putback(self, op, frame: int) -> None:
        """Unlock and end the isolation (``folio_unlock`` + ``folio_putback_lru``)."""
        self.mem.isolated[frame] = None
        self.unlock(op, self.mem.folio_lock[frame])

    def release_isolated(self, op, frame: int) -> bool:
        """Unlock and drop the isolation reference; True if it was the last one (caller frees)."""
        self.mem.isolated[frame] = None
        self.unlock(op, self.mem.folio_lock[frame])
        if self.last_reference(frame):
            self.mem.owner[frame] = "isolated"
            return True
        return False

    def last_reference(self, frame: int) -> bool:
        """Is no reference left (mapping, page/swap cache, isolation, mmu_gather)?

        Our stand-in for ``folio_put`` reaching zero and for the refcount freeze of
        ``__remove_mapping``/``folio_migrate_mapping``.
        """
        mem = self.mem
        if mem.rmap[frame] or mem.isolated[frame] is not None or mem.gathered[frame]:
            return False
        owner = mem.owner[frame]
        if owner.__class__ is tuple and owner[0] == "f" and \
                mem.files[owner[1]].cache.get(owner[2]) == frame:
            return False
        return frame not in mem.swap_cache.values()

    def _keep_gathered(self, op, frame: int, slot, kept: list) -> None:
        """An mmu_gather holds a reference: pageout's ``is_page_cache_freeable()`` and
        ``__remove_mapping``'s refcount freeze fail, so reclaim keeps the folio. A zapped
        anonymous folio leaves the swap cache (``free_swap_cache``).

        Kept folios are unlocked (``keep:`` label) but stay isolated on ``ret_folios``
        until ``shrink_folio_list`` has done its final ``try_to_unmap_flush``: only then
        does the caller put them back on the LRU (``move_folios_to_lru``), so nobody can
        migrate and free one while its deferred flush is still pending.
        """
        self.trace.msg(op, "reclaim pfn%d: extra reference (mmu_gather), keep", frame)
        if slot is not None:
            del self.mem.swap_cache[slot]
            self.mem.put_slot(slot)
        self.unlock(op, self.mem.folio_lock[frame])
        kept.append(frame)

    # -- reclaim -------------------------------------------------------------------
    def reclaim(self, op, frames: tuple):
        """``shrink_folio_list`` over ``frames``, in the kernel's order.

        Per folio: ``add_to_swap`` (anon; marks it dirty), ``try_to_unmap(TTU_BATCH_FLUSH)``,
        if dirty ``try_to_unmap_flush_dirty`` then ``pageout`` (S2),
        ``__remove_mapping``, unlock. At the end ``try_to_unmap_flush`` strictly
        before ``free_unref_folios``.
        Simplification: one batch; the demotion pass and activation are not modelled.
        """
        mem = self.mem
        proto = self.proto
        tr = self.trace
        to_free = []
        kept = []
        for frame in frames:
            if not self._lru_folio(op, frame):
                tr.msg(op, "reclaim: skip pfn%d", frame)
                continue
            owner = mem.owner[frame]
            anon = owner[0] == "a"
            slot = None
            if anon:
                slot = mem.alloc_slot()
                if slot is None:
                    tr.msg(op, "reclaim: swap full, keep pfn%d", frame)
                    self.putback(op, frame)
                    continue
                mem.swap_cache[slot] = frame  # add_to_swap
                mem.dirty[frame] = True
            yield from self.try_to_unmap(op, frame, slot, migration=False)
            if mem.rmap[frame]:
                raise ModelError(f"pfn{frame} still mapped after try_to_unmap under folio lock")
            if mem.gathered[frame]:  # pageout's is_page_cache_freeable() fails
                self._keep_gathered(op, frame, slot, kept)
                yield
                continue
            if mem.dirty[frame]:
                yield from hook(proto.try_to_unmap_flush_dirty(op))
                if anon:
                    tr.msg(op, "pageout(pfn%d -> slot%d)", frame, slot)
                    mem.swap[slot] = self.copy_out(op, frame)
                else:
                    tr.msg(op, "pageout(pfn%d -> file%d:%d)", frame, owner[1], owner[2])
                    mem.files[owner[1]].disk[owner[2]] = self.copy_out(op, frame)
                mem.dirty[frame] = False
                yield
            if mem.gathered[frame]:  # gathered during pageout: the refcount freeze fails
                self._keep_gathered(op, frame, slot, kept)
                yield
                continue
            if anon:
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
        yield from hook(proto.try_to_unmap_flush(op))
        for frame in kept:  # move_folios_to_lru: back on the LRU, or freed by our put
            mem.isolated[frame] = None
            if self.last_reference(frame):
                mem.owner[frame] = "isolated"
                to_free.append(frame)
        if to_free:
            yield from hook(proto.free_unref_folios(op, to_free))

    # -- migration -----------------------------------------------------------------
    def migrate(self, op, frames: tuple):
        """``migrate_pages_batch``: unmap all, ``try_to_unmap_flush`` *before any copy*, then move.

        ``migrate_folio_unmap`` allocates the destination and installs migration
        entries (deferred flush: async mode, ``TTU_BATCH_FLUSH``); at ``move:``
        the batch is flushed; ``migrate_folio_move`` copies (S2), switches the
        page cache slot (``folio_migrate_mapping``), ``remove_migration_ptes``,
        unlocks and frees the source (``migrate_folio_done``).
        """
        mem = self.mem
        proto = self.proto
        tr = self.trace
        batch = []
        for frame in frames:
            if not self._lru_folio(op, frame):
                tr.msg(op, "migrate: skip pfn%d", frame)
                continue
            owner = mem.owner[frame]
            dst = self.alloc_frame(op, owner)
            if dst is None:
                self.putback(op, frame)
                continue
            yield from self.lock(op, mem.folio_lock[dst])
            mem.isolated[dst] = op  # migration holds its reference until the move is done
            mapped = list(mem.rmap[frame])
            yield from self.try_to_unmap(op, frame, None, migration=True)
            batch.append((frame, dst, mapped, owner))
        yield from hook(proto.try_to_unmap_flush(op))
        tr.msg(op, "migrate: move")
        yield
        for frame, dst, mapped, owner in batch:
            if mem.gathered[frame]:
                yield from self._migrate_abort(op, frame, dst, mapped)
                continue
            tr.msg(op, "copy pfn%d -> pfn%d", frame, dst)
            mem.value[dst] = self.copy_out(op, frame)
            mem.dirty[dst] = mem.dirty[frame]
            if owner[0] == "f":
                mem.files[owner[1]].cache[owner[2]] = dst
            yield from self.remove_migration_ptes(op, frame, dst, mapped)
            mem.isolated[dst] = None
            self.unlock(op, mem.folio_lock[dst])
            if owner[0] == "a" and self.last_reference(dst):
                mem.owner[dst] = "zapped"  # unmapped meanwhile: our folio_put is the last
                self.free_frames([dst])
            if self.release_isolated(op, frame):
                yield from hook(proto.free_unref_folios(op, [frame]))
            yield

    def remove_migration_ptes(self, op, src: int, dst: int, mapped):
        """``remove_migration_ptes(src, dst)``: each migration entry still pointing at ``src``
        becomes a present PTE of ``dst`` with the permissions it recorded (one PTL each)."""
        for mm_id, vpage in mapped:
            mm = self.mms[mm_id]
            ptl = mm.ptl(vpage)
            yield from self.lock(op, ptl)
            pte = mm.ptes[vpage]
            if pte.kind == MIGRATION and pte.frame == src:
                pte.set_present(dst, pte.writable, pte.dirty)
                self.rmap_add(dst, mm, vpage)
                self.trace.msg(op, "remove_migration_pte(mm%d:v%d -> pfn%d)", mm_id, vpage, dst)
            self.unlock(op, ptl)
            yield

    def _migrate_abort(self, op, frame: int, dst: int, mapped):
        """``folio_migrate_mapping`` failed (-EAGAIN): ``remove_migration_ptes(src, src)``, free dst."""
        mem = self.mem
        self.trace.msg(op, "migrate pfn%d: extra reference (mmu_gather), restore", frame)
        yield from self.remove_migration_ptes(op, frame, frame, mapped)
        mem.isolated[dst] = None
        self.unlock(op, mem.folio_lock[dst])
        mem.owner[dst] = "zapped"
        self.free_frames([dst])
        if self.release_isolated(op, frame):
            yield from hook(self.proto.free_unref_folios(op, [frame]))

    # -- munmap / mmu_gather -----------------------------------------------------------
    def zap_pte_range(self, op, tlb, mm, vma, start: int, end: int):
        """``zap_pte_range`` for one page-table page.

        Take the PTL, ``flush_tlb_batched_pending``, clear present PTEs
        recording each in the gather (``pte_none`` is skipped and records
        nothing); dirty shared-file PTEs force a flush under the PTL with the
        rmap removal delayed until after it (5df397dec7c4); anon pages are
        gathered and freed only after the flush.
        """
        mem = self.mem
        proto = self.proto
        ptl = mm.ptl(start)
        yield from self.lock(op, ptl)
        yield from hook(proto.flush_tlb_batched_pending(op, mm))
        force_flush = False
        for vpage in range(start, end):
            pte = mm.ptes[vpage]
            kind = pte.kind
            if kind == NONE:
                continue
            op.touched_vps[(mm.id, vpage)] = None
            if kind == PRESENT:
                pteval = pte.snapshot()
                pte.clear()  # ptep_get_and_clear_full
                self.m.call_hook(proto.tlb_remove_tlb_entry, tlb, vpage)
                frame = pteval.frame
                op.touched_frames[frame] = None
                mem.gathered[frame] += 1  # __tlb_remove_page: put after the flush
                tlb.pages.append(frame)
                if vma.is_anon:
                    self.rmap_remove(frame, mm, vpage)
                    mem.owner[frame] = "zapped"
                elif pteval.dirty:
                    mem.dirty[frame] = True  # folio_mark_dirty
                    force_flush = True
                    tlb.delayed_rmap.append((frame, mm, vpage))
                else:
                    self.rmap_remove(frame, mm, vpage)
                self.trace.msg(op, "zap mm%d:v%d [pfn%d]", mm.id, vpage, frame)
            elif kind == SWAP:
                slot = pte.slot
                pte.clear()
                mem.swap_map[slot] -= 1
                mem.put_slot(slot)  # free_swap_and_cache
                self.trace.msg(op, "zap mm%d:v%d [swap slot%d]", mm.id, vpage, slot)
            else:
                pte.clear()  # migration entry: remove_migration_ptes will find none
                self.trace.msg(op, "zap mm%d:v%d [migration entry]", mm.id, vpage)
        if force_flush:
            yield from hook(proto.tlb_flush_mmu_tlbonly(tlb))
            for frame, rmm, vpage in tlb.delayed_rmap:  # tlb_flush_rmaps
                self.rmap_remove(frame, rmm, vpage)
            tlb.delayed_rmap.clear()
        self.unlock(op, ptl)
        yield

    def unmap_region(self, op, mm, start: int, end: int):
        """``do_vmi_align_munmap`` -> ``unmap_region``: detach VMAs, zap, ``tlb_finish_mmu``.

        Simplification: ``mmap_lock`` stays held for write (no downgrade), and
        page-table pages are not freed (``free_pgtables`` is a no-op).
        """
        vmas = mm.split_vmas(start, end)
        if not vmas:
            return
        mm.vmas = [v for v in mm.vmas if not (start <= v.start and v.end <= end)]
        for vp in range(start, end):
            op.touched_vps[(mm.id, vp)] = None
        for v in vmas:
            for vp in range(v.start, v.end):
                op.touched_locs[v.location(vp)] = None
        proto = self.proto
        tlb = MmuGather(op, mm, start, end, self._tlb_batch_pages_flush)
        self.m.call_hook(proto.tlb_gather_mmu, tlb)
        for vma in vmas:
            for a, b in mm.table_ranges(vma.start, vma.end):
                yield from self.zap_pte_range(op, tlb, mm, vma, a, b)
            yield from hook(proto.tlb_end_vma(tlb, vma))
        yield from hook(proto.tlb_finish_mmu(tlb))
        if tlb.pages:
            raise ModelError("tlb_finish_mmu left pages unfreed")

    def munmap(self, op, mm, start: int, npages: int):
        """``__vm_munmap``; S3 is checked when it returns."""
        yield from self.mmap_write_lock(op, mm)
        yield from self.unmap_region(op, mm, start, start + npages)
        self.mmap_write_unlock(op, mm)
        self.oracle.check_s3(op, mm, start, start + npages, "munmap")

    # -- mmap ------------------------------------------------------------------------------
    def mmap(self, op, mm, start: int, npages: int, file, writable: bool, maywrite: bool,
             fixed: bool, pgoff: int = 0):
        """``do_mmap`` -> ``mmap_region``; ``MAP_FIXED`` unmaps what is there first.

        Without MAP_FIXED the lowest free range is used (``get_unmapped_area``
        simplified to first fit). Simplification: adjacent VMAs are not merged.
        """
        yield from self.mmap_write_lock(op, mm)
        nv = len(mm.ptes)
        if not fixed:
            start = self._free_range(mm, npages)
            if start is None:
                self.trace.msg(op, "mmap: ENOMEM")
                op.result = "enomem"
                self.mmap_write_unlock(op, mm)
                return
        npages = min(npages, nv - start)
        if file is not None:
            npages = max(1, min(npages, len(self.mem.files[file].disk) - pgoff))
        end = start + npages
        if fixed:
            yield from self.unmap_region(op, mm, start, end)
        anon_id = None
        if file is None:
            anon_id = self.m.new_anon_id()
        vma = Vma(start, end, anon_id, file, pgoff, writable, maywrite)
        vma.proto = self.proto.init_vma(vma)
        yield from hook(self.proto.mmap_region(op, mm, vma))
        mm.vmas.append(vma)
        mm.vmas.sort(key=lambda v: v.start)
        for vp in range(start, end):
            op.touched_vps[(mm.id, vp)] = None
        self.trace.msg(op, "mmap -> %r", vma)
        op.result = start
        self.mmap_write_unlock(op, mm)
        self.oracle.check_s3(op, mm, start, end, "mmap")

    def _free_range(self, mm, npages: int):
        nv = len(mm.ptes)
        for s in range(0, nv - npages + 1):
            if all(mm.find_vma(v) is None for v in range(s, s + npages)):
                return s
        return None

    # -- mprotect ------------------------------------------------------------------------
    def mprotect(self, op, mm, start: int, npages: int, writable: bool):
        """``do_mprotect_pkey`` -> ``mprotect_fixup`` -> ``change_protection``.

        VMAs whose flags do not change are skipped (``newflags == oldflags``).
        For the others, per VMA: ``change_protection_range`` (``tlb_start_vma``,
        ``change_pte_range`` per page table, ``tlb_end_vma``); ``change_pte_range``
        takes the PTL, calls ``flush_tlb_batched_pending`` and write-protects
        present PTEs, recording them with ``tlb_flush_pte_range``. Making a range
        writable changes no PTE here (simplification: ``MM_CP_TRY_CHANGE_WRITABLE``
        is not modelled; the next write fault upgrades). ``tlb_finish_mmu`` at
        the end; S3 on return. Simplification: PROT_NONE is not modelled.
        """
        yield from self.mmap_write_lock(op, mm)
        end = start + npages
        inside = [v for v in mm.vmas if v.start < end and v.end > start]
        if not inside or (writable and not all(v.maywrite for v in inside)):
            self.trace.msg(op, "mprotect: %s", "EACCES" if inside else "ENOMEM")
            op.result = "error"
            self.mmap_write_unlock(op, mm)
            return
        for vp in range(start, end):
            op.touched_vps[(mm.id, vp)] = None
        changed = []  # split only the VMAs whose protection changes (vma_modify_flags)
        for v in [v for v in inside if v.writable != writable]:
            changed += mm.split_vmas(max(v.start, start), min(v.end, end))
        proto = self.proto
        tlb = MmuGather(op, mm, start, end, self._tlb_batch_pages_flush)
        self.m.call_hook(proto.tlb_gather_mmu, tlb)
        for vma in changed:
            vma.writable = writable
            yield from hook(proto.mprotect_fixup(op, mm, vma))
            for a, b in mm.table_ranges(vma.start, vma.end):
                yield from self.change_pte_range(op, tlb, mm, a, b, writable)
            yield from hook(proto.tlb_end_vma(tlb, vma))
        yield from hook(proto.tlb_finish_mmu(tlb))
        self.trace.msg(op, "mprotect(mm%d, v%d..v%d, %s)", mm.id, start, end - 1,
                       "RW" if writable else "RO")
        self.mmap_write_unlock(op, mm)
        if not writable:
            self.oracle.check_s3(op, mm, start, end, "mprotect")

    def change_pte_range(self, op, tlb, mm, start: int, end: int, writable: bool):
        """``change_pte_range`` for one page-table page."""
        proto = self.proto
        ptl = mm.ptl(start)
        yield from self.lock(op, ptl)
        yield from hook(proto.flush_tlb_batched_pending(op, mm))
        if not writable:
            for vpage in range(start, end):
                pte = mm.ptes[vpage]
                if pte.kind == PRESENT and pte.writable:
                    pte.writable = False  # ptep_modify_prot_start/commit keep D
                    op.touched_frames[pte.frame] = None
                    self.m.call_hook(proto.tlb_remove_tlb_entry, tlb, vpage)  # tlb_flush_pte_range
                    self.trace.msg(op, "wrprotect mm%d:v%d", mm.id, vpage)
                elif pte.kind == MIGRATION:
                    pte.writable = False  # make_readable_migration_entry
        self.unlock(op, ptl)
        yield

    # -- write() ----------------------------------------------------------------------------
    def write(self, op, fid: int, pgoff: int, value: int):
        """``generic_perform_write``: ``write_begin`` (find/read in, lock), copy, ``write_end``.

        Calls ``mapping_write_begin`` (LUF v12) and ``file_end_write`` (LUF v11).
        Simplification: a full-page write still reads the page in first.
        """
        loc = ("f", fid, pgoff)
        op.touched_locs[loc] = None
        frame = yield from self.filemap_get_folio(op, fid, pgoff)
        if frame is None:
            op.result = "enomem"
            return
        yield from hook(self.proto.mapping_write_begin(op, fid, pgoff))
        self.mem.value[frame] = value
        self.mem.dirty[frame] = True  # folio_mark_dirty in write_end
        self.oracle.expected[loc] = value
        self.trace.msg(op, "write(file%d:%d) = %d [pfn%d]", fid, pgoff, value, frame)
        self.unlock(op, self.mem.folio_lock[frame])
        yield from hook(self.proto.file_end_write(op, fid, pgoff))
