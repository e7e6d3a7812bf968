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
from .pagetable import MIGRATION, NONE, PRESENT, SWAP, RwSem, Vma
from .protocol import MmuGather


class Op:
    """A kernel operation in flight on a CPU; also the task (``current``) it runs as.

    ``touched_*`` record every PTE slot (mm, vpage), location and frame the
    operation changed or depends on: the oracle treats those as "in flight"
    (C1, O1) until the operation ends, then checks them.

    For S3 at syscall return (docs/oracle.md section 2): ``s3_visits[(mm, vpage)]`` is the
    PTE-instance clock (``Machine.pte_insts``) when the walk visited that slot under its
    PTL, after ``flush_tlb_batched_pending``: every instance live in the slot up to the
    visit has a number at most that; ``s3_wd`` lists ``(cpu, mm, vpage, entry)``: the
    writable dirty entries MADV_FREE saw over a PTE it left clean.

    ``path``: the kernel path the task is in now, for protocol hooks that decide by
    caller: "fault", "reclaim" (``shrink_folio_list``, also when ``madvise(MADV_PAGEOUT)``'s
    ``reclaim_pages`` runs it: restored to "madvise" after), "migrate"
    (``migrate_pages_batch``), "munmap", "mmap" (``MAP_FIXED`` unmaps first), "mprotect",
    "madvise", "mremap", "write", "writeback", "truncate" (hole punch), "exit"
    (``exit_mmap``, then exec), "fork" (``dup_mmap``). It starts as the operation's name.
    """

    __slots__ = ("id", "cpu", "name", "args", "gen", "blocked_on", "held", "tlb_ubc",
                 "touched_vps", "touched_locs", "touched_frames", "steps", "_label", "result",
                 "s3_visits", "s3_wd", "path")

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
        self.s3_visits: dict = {}  # (mm_id, vpage) -> PTE-instance clock at the walk's visit
        self.s3_wd: list = []  # (cpu, mm_id, vpage, entry): W+D over a PTE MADV_FREE left clean
        self.path = name  # the kernel path now (task.path for hooks); nested reclaim sets it

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

    def __repr__(self) -> str:
        return f"{self.sem.name} (read)"


class _WriteWant:
    __slots__ = ("sem",)

    def __init__(self, sem):
        self.sem = sem

    def can_take(self, op):
        return self.sem.writer is None and self.sem.readers == 0

    def __repr__(self) -> str:
        return f"{self.sem.name} (write)"


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

    def down_read(self, op, sem):
        """``down_read``: wait (yield) while a writer holds ``sem``."""
        while sem.writer is not None:
            op.blocked_on = _ReadWant(sem)
            yield
        op.blocked_on = None
        sem.readers += 1
        op.held.append(sem)

    def down_write(self, op, sem):
        """``down_write``: wait (yield) while anyone holds ``sem``."""
        while sem.writer is not None or sem.readers:
            op.blocked_on = _WriteWant(sem)
            yield
        op.blocked_on = None
        sem.writer = op
        op.held.append(sem)

    def up_read(self, op, sem) -> None:
        sem.readers -= 1
        op.held.remove(sem)

    def up_write(self, op, sem) -> None:
        sem.writer = None
        op.held.remove(sem)

    def rmap_lock(self, loc):
        """The lock an rmap walk of ``loc``'s folio takes: ``anon_vma->rwsem`` of an
        anonymous location's anon_vma, ``mapping->i_mmap_rwsem`` of a file (our stand-in for
        ``anon_vma_lock_read``/``i_mmap_lock_read`` in ``rmap_walk``, and for
        ``take_rmap_locks`` in mremap's ``move_page_tables``). None for a folio that has no
        such root any more (nothing can map it)."""
        if loc.__class__ is not tuple:
            return None
        key = (loc[0], self.mem.anon_root.get(loc[1], loc[1]) if loc[0] == "a" else loc[1])
        sem = self.mem.rmap_locks.get(key)
        if sem is None:
            sem = self.mem.rmap_locks[key] = RwSem(f"{'anon_vma' if loc[0] == 'a' else 'i_mmap'}"
                                                   f"({loc[0]}{loc[1]})")
        return sem

    def rmap_walk_lock(self, op, loc):
        """``rmap_walk``'s read lock on ``loc``'s anon_vma / i_mmap (may wait for mremap)."""
        sem = self.rmap_lock(loc)
        if sem is not None:
            yield from self.down_read(op, sem)
        return sem

    def rmap_walk_unlock(self, op, sem) -> None:
        if sem is not None:
            self.up_read(op, sem)

    def invalidate_lock(self, fid: int):
        """``mapping->invalidate_lock`` of ``file``: hole punching holds it for write
        (``filemap_invalidate_lock``), reading a page in holds it for read
        (``filemap_fault``'s ``filemap_invalidate_lock_shared`` when the page is not
        cached). Simplification: ``write()`` reads a page in under it too, where the kernel
        serializes ``write()`` and ``fallocate()`` by ``i_rwsem``."""
        key = ("inv", fid)
        sem = self.mem.rmap_locks.get(key)
        if sem is None:
            sem = self.mem.rmap_locks[key] = RwSem(f"invalidate_lock(file{fid})")
        return sem

    def mmap_read_lock(self, op, mm):
        return self.down_read(op, mm.mmap_lock)

    def mmap_write_lock(self, op, mm):
        return self.down_write(op, mm.mmap_lock)

    def mmap_read_unlock(self, op, mm) -> None:
        self.up_read(op, mm.mmap_lock)

    @staticmethod
    def mmap_write_downgrade(op, mm) -> None:
        """``mmap_write_downgrade`` (``downgrade_write``): the writer becomes a reader
        without releasing the lock, so waiting readers may enter; never waits."""
        sem = mm.mmap_lock
        sem.writer = None
        sem.readers += 1

    def mmap_write_unlock(self, op, mm) -> None:
        self.up_write(op, mm.mmap_lock)

    def _error(self, op, mm, text: str, write: bool) -> None:
        """A syscall fails before changing anything: result "error", drop ``mmap_lock``."""
        self.trace.msg(op, text)
        op.result = "error"
        (self.mmap_write_unlock if write else self.mmap_read_unlock)(op, mm)

    @staticmethod
    def _touch_range(op, mm, start: int, end: int) -> None:
        for vp in range(start, end):
            op.touched_vps[(mm.id, vp)] = None

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
        mem.lazyfree[frame] = False
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

    def _lock_pte_table(self, op, mm, vpage: int):
        """``pte_offset_map_lock`` + ``flush_tlb_batched_pending(mm)``: every walker that
        changes PTEs starts so. Returns the PTL."""
        ptl = mm.ptl(vpage)
        yield from self.lock(op, ptl)
        yield from hook(self.proto.flush_tlb_batched_pending(op, mm))
        return ptl

    def _free_swap_entry(self, pte) -> int:
        """``free_swap_and_cache`` + ``pte_clear`` of a swap entry; returns its slot."""
        slot = pte.slot
        pte.clear()
        self.mem.swap_map[slot] -= 1
        self.mem.put_slot(slot)
        return slot

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
        """
        pte = mm.ptes[vpage]
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
            inv = self.invalidate_lock(fid)
            yield from self.down_read(op, inv)  # no page cache folio: read it in
            if f.cache.get(pgoff) is not None:  # someone read it in while we waited
                self.up_read(op, inv)
                continue
            frame = self.alloc_frame(op, loc)
            if frame is None:
                self.up_read(op, inv)
                return None
            yield from self.lock(op, self.mem.folio_lock[frame])
            f.cache[pgoff] = frame  # filemap_add_folio, locked, !uptodate
            self.trace.msg(op, "page cache: file%d:%d read into pfn%d", fid, pgoff, frame)
            yield  # read IO in flight
            self.mem.value[frame] = f.disk[pgoff]
            self.up_read(op, inv)
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
        del mem.swap_cache[slot]
        mem.swap_map[slot] -= 1
        mem.put_slot(slot)
        mem.dirty[frame] = True
        self.unlock(op, ptl)
        self.unlock(op, flk)
        return "ok"

    # -- rmap walk -----------------------------------------------------------------
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
        if the folio is clean it is discarded (the PTE stays none, the location reads
        zero from now on: ``oracle.expected`` is reset); if it was re-dirtied (a dirty
        PTE or PG_dirty) the PTE is restored, the folio is swap-backed again and the walk
        stops (``ret = false``: reclaim keeps it). Returns False in that case, else True.
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
                if self.m.call_hook(proto.should_defer_flush, op, mm):
                    self.trace.msg(op, "ptep_get_and_clear(mm%d:v%d) [pfn%d%s]", mm_id, vpage,
                                   frame, " dirty" if pteval.dirty else "")
                    yield from hook(proto.set_tlb_ubc_flush_pending(op, mm, pteval, vpage))
                else:
                    self.trace.msg(op, "ptep_clear_flush(mm%d:v%d) [pfn%d]", mm_id, vpage, frame)
                    self.arch.flush_tlb_page(mm, vpage, op)
                if pteval.dirty:
                    mem.dirty[frame] = True
                if lazy:
                    if mem.dirty[frame]:  # redirtied: set_pte_at(pteval), folio_set_swapbacked
                        pte.set_present(frame, pteval.writable, pteval.dirty, pteval.inst)
                        pte.accessed = pteval.accessed
                        mem.lazyfree[frame] = False
                        self.trace.msg(op, "lazyfree pfn%d redirtied: pte restored, keep", frame)
                        self.unlock(op, ptl)
                        self.rmap_walk_unlock(op, walk)
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
        if slot is not None and not self.mem.swap_map[slot]:  # no swap entry of a fork sibling
            del self.mem.swap_cache[slot]
            self.mem.put_slot(slot)
        self.unlock(op, self.mem.folio_lock[frame])
        kept.append(frame)

    # -- reclaim -------------------------------------------------------------------
    def reclaim(self, op, frames: tuple, nested: tuple = ()):
        """kswapd / direct reclaim: one ``shrink_node`` pass over ``frames``."""
        yield from self.shrink_node(op, frames, nested)

    def shrink_node(self, op, frames: tuple, nested: tuple = ()):
        """``shrink_node`` (``shrink_lruvec``): the protocol's ``init_tlb_ubc`` hook, then
        ``shrink_folio_list``. Also the nested pass of :meth:`shrink_folio_list`."""
        self.m.call_hook(self.proto.init_tlb_ubc, op)
        yield from self.shrink_folio_list(op, frames, nested)

    def shrink_folio_list(self, op, frames: tuple, nested: tuple = ()):
        """``shrink_folio_list`` over ``frames``, in the kernel's order.

        Per folio: ``add_to_swap`` (anon; marks it dirty), ``try_to_unmap(TTU_BATCH_FLUSH)``,
        if dirty ``try_to_unmap_flush_dirty`` then ``pageout`` (S2),
        ``__remove_mapping``, unlock. A folio an mmu_gather still holds is kept: if dirty, by
        ``pageout``, whose ``is_page_cache_freeable()`` fails *after* the
        ``try_to_unmap_flush_dirty()`` that precedes it (so no writable dirty entry it
        deferred survives the unlock); if clean, by ``__remove_mapping``'s refcount freeze. At the end ``try_to_unmap_flush`` strictly
        before ``free_unref_folios``.
        Simplification: one batch; the demotion pass and activation are not modelled.

        Nested reclaim (``nested`` non-empty; Hugh Dickins' 2016 bug, kernel-notes 2.3):
        the swapout allocation of the first anonymous folio (in ``add_to_swap``, after
        the slot is taken) enters reclaim again in the same task: a nested
        ``shrink_node`` over ``nested`` (its own ``init_tlb_ubc``, final
        ``try_to_unmap_flush`` and free), then the outer loop goes on. If no anonymous
        folio reaches ``add_to_swap``, the nested pass runs after the loop, before the
        outer ``try_to_unmap_flush`` (an allocation elsewhere in the pass).
        A lazyfree anonymous folio (MADV_FREE) skips ``add_to_swap``: clean, it is
        discarded by ``try_to_unmap``; re-dirtied, it is kept (the next reclaim swaps it).
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
            if anon and not mem.lazyfree[frame]:
                slot = mem.alloc_slot()
                if slot is None:
                    tr.msg(op, "reclaim: swap full, keep pfn%d", frame)
                    self.putback(op, frame)
                    continue
                mem.swap_cache[slot] = frame  # add_to_swap
                mem.dirty[frame] = True
                if nested:
                    tr.msg(op, "add_to_swap: allocation enters nested reclaim")
                    yield from self.shrink_node(op, nested)
                    nested = ()
            if not (yield from self.try_to_unmap(op, frame, slot, migration=False)):
                self.putback(op, frame)  # lazyfree folio redirtied: activate
                yield
                continue
            if mem.rmap[frame]:
                raise ModelError(f"pfn{frame} still mapped after try_to_unmap under folio lock")
            if mem.dirty[frame]:
                yield from hook(proto.try_to_unmap_flush_dirty(op))
                if mem.gathered[frame]:  # pageout(): !is_page_cache_freeable() -> PAGE_KEEP
                    self._keep_gathered(op, frame, slot, kept)
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
                yield
                continue
            if anon:
                if slot is not None:
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
        With the protocol's ``MIGRATE_FLUSH_BEFORE_COPY`` False (a naive batching, not
        a kernel version) the flush is issued only after the copy and
        ``remove_migration_ptes`` of each folio, just before its source is freed.
        Each folio's move starts with the protocol's ``migrate_folio_move`` hook (after the
        batch flush when ``MIGRATE_FLUSH_BEFORE_COPY``, before ``folio_migrate_mapping``
        and the copy).
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
            yield from self.remove_migration_ptes(op, frame, dst, owner)
            if not before:
                yield from hook(proto.try_to_unmap_flush(op))
            mem.isolated[dst] = None
            self.unlock(op, mem.folio_lock[dst])
            if owner[0] == "a" and self.last_reference(dst):
                mem.owner[dst] = "zapped"  # unmapped meanwhile: our folio_put is the last
                self.free_frames([dst])
            if self.release_isolated(op, frame):
                yield from hook(proto.free_unref_folios(op, [frame]))
            yield

    def _mappings_of(self, loc):
        """Every (mm, vpage) whose VMA maps location ``loc`` (``rmap_walk`` of a folio
        whose PTEs are migration entries: via ``anon_vma``/``i_mmap``, so an entry that
        mremap moved is found at its new address)."""
        out = []
        for mm in self.mms:
            for vma in mm.vmas:
                vp = vma.vpage_of(loc)
                if vp is None and loc[0] == "a" and self.mem.anon_root:
                    vp = self._forked_vpage_of(vma, loc)
                if vp is not None:
                    out.append((mm, vp))
        return out

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
                if self.mem.cow[src]:  # a readable entry restores a non-exclusive folio
                    self.mem.cow[dst] = True
                self.trace.msg(op, "remove_migration_pte(mm%d:v%d -> pfn%d)", mm_id, vpage, dst)
            self.unlock(op, ptl)
            yield

    def _migrate_abort(self, op, frame: int, dst: int, loc):
        """``folio_migrate_mapping`` failed (-EAGAIN): ``remove_migration_ptes(src, src)``, free dst."""
        mem = self.mem
        self.trace.msg(op, "migrate pfn%d: extra reference (mmu_gather), restore", frame)
        yield from self.remove_migration_ptes(op, frame, frame, loc)
        mem.isolated[dst] = None
        self.unlock(op, mem.folio_lock[dst])
        mem.owner[dst] = "zapped"
        self.free_frames([dst])
        if self.release_isolated(op, frame):
            yield from hook(self.proto.free_unref_folios(op, [frame]))

    # -- munmap / mmu_gather -----------------------------------------------------------
    def zap_pte_range(self, op, tlb, mm, vma, start: int, end: int, madv: bool = False):
        """``zap_pte_range`` for one page-table page (mm/memory.c).

        Take the PTL, ``flush_tlb_batched_pending``, clear present PTEs
        recording each in the gather (``pte_none`` is skipped and records
        nothing); anon pages are gathered and freed only after the flush.
        A dirty shared-file PTE follows the protocol's ``ZAP_DIRTY_FILE_PTE =
        (force_flush, delay_rmap)``: mainline (True, True) flushes under the PTL and
        removes the rmap only after that flush (5df397dec7c4); with ``delay_rmap``
        False the rmap goes at once (``page_remove_rmap`` in the loop), so
        ``folio_mkclean`` no longer finds the mapping; without ``force_flush`` the flush
        waits for ``tlb_end_vma``/``tlb_finish_mmu``. When ``force_flush``, a ``yield``
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
        forced it differs. The PTL-held flush happens whatever the protocol's
        ``ZAP_DIRTY_FILE_PTE`` says: that attribute is about the dirty-file reason only.

        ``madv`` (MADV_DONTNEED: the VMA stays): an anonymous location whose PTE is
        cleared reads zero from now on (``oracle.expected`` reset).
        Every slot of the table range is a *visit* for S3 (``op.s3_visits``), ``pte_none``
        ones included: the 99baac21e458 race is a walk that finds the slot already empty.
        """
        mem = self.mem
        proto = self.proto
        file_force, file_delay = proto.ZAP_DIRTY_FILE_PTE
        anon = vma.is_anon
        batch = self.m.cfg.gather_batch
        addr = start
        while addr < end:  # retry: once per pass that stopped on a full batch
            ptl = yield from self._lock_pte_table(op, mm, addr)
            force_flush = False
            vpage = addr
            addr = end
            while vpage < end:
                op.s3_visits[(mm.id, vpage)] = self.m.pte_insts
                pte = mm.ptes[vpage]
                kind = pte.kind
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
                    slot = self._free_swap_entry(pte)
                    self.trace.msg(op, "zap mm%d:v%d [swap slot%d]", mm.id, vp, slot)
                else:
                    pte.clear()  # migration entry: remove_migration_ptes will find none
                    self.trace.msg(op, "zap mm%d:v%d [migration entry]", mm.id, vp)
            if force_flush:
                yield  # rest of the walk / IPI wait, PTL held
                yield from hook(proto.tlb_flush_mmu_tlbonly(tlb))
                for frame, rmm, vp in tlb.delayed_rmap:  # tlb_flush_rmaps
                    self.rmap_remove(frame, rmm, vp)
                tlb.delayed_rmap.clear()
            self.unlock(op, ptl)
            if force_flush:  # tlb_flush_mmu: free the batched memory too
                yield from hook(proto.tlb_flush_mmu(tlb))
            yield

    def unmap_region(self, op, mm, start: int, end: int, downgrade: bool = False):
        """``do_vmi_align_munmap``: detach the VMAs of [start, end) (``vms_gather_munmap_vmas``,
        ``mmap_lock`` held for write), then ``vms_complete_munmap_vmas``: if ``downgrade``
        (``munmap``: ``vms->unlock``), ``mmap_write_downgrade``, then ``vms_clear_ptes``
        = ``unmap_region`` (mm/vma.c): ``tlb_gather_mmu``, ``unmap_vmas`` (zap per VMA and
        page table, ``tlb_end_vma``), ``free_pgtables``, ``tlb_finish_mmu``.

        Followed: mm/vma.c of 6.12+ (``vms_complete_munmap_vmas``). 4.20 (dd2283f2605e,
        "mm: mmap: zap pages with read mmap_sem in munmap") to 6.11 downgrade at the same
        place, between detaching and zapping (``__do_munmap`` / ``do_vmi_align_munmap``);
        before 4.20 the zap ran under the write lock. After the downgrade, faults and
        madvise of the same mm run beside the open gather (on the detached range they
        find no VMA; on a neighbouring range of the same page table they meet the PTL
        and ``flush_tlb_batched_pending``). ``MAP_FIXED`` (``mmap``) does not downgrade.
        Simplification: page-table pages are not freed (``free_pgtables`` is a no-op);
        4.20-5.x's refusal to downgrade next to a ``VM_GROWSDOWN``/``VM_GROWSUP`` VMA is
        not modelled (no such VMAs).
        """
        vmas = mm.split_vmas(start, end)
        if not vmas:
            if downgrade:
                self.mmap_write_downgrade(op, mm)
            return
        mm.vmas = [v for v in mm.vmas if not (start <= v.start and v.end <= end)]
        if downgrade:
            self.mmap_write_downgrade(op, mm)
        self._touch_range(op, mm, start, end)
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
        """``__vm_munmap(start, len, unlock=true)``: write lock, detach, downgrade, zap under
        the read lock (:meth:`unmap_region`), ``mmap_read_unlock``. S3 is checked when it
        returns."""
        yield from self.mmap_write_lock(op, mm)
        yield from self.unmap_region(op, mm, start, start + npages, downgrade=True)
        self.mmap_read_unlock(op, mm)
        self.oracle.check_s3(op, mm, start, start + npages, "munmap")

    # -- truncate / hole punch ---------------------------------------------------------
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
            vma = mm.find_vma(vp)
            if vma is None or vma.vpage_of(loc) != vp:  # unmapped while we zapped others
                continue
            op.touched_vps[(mm.id, vp)] = None
            tlb = MmuGather(op, mm, vp, vp + 1, self._tlb_batch_pages_flush)
            self.m.call_hook(proto.tlb_gather_mmu, tlb)
            yield from self.zap_pte_range(op, tlb, mm, vma, vp, vp + 1)
            yield from hook(proto.tlb_end_vma(tlb, vma))
            yield from hook(proto.tlb_finish_mmu(tlb))
            if tlb.pages:
                raise ModelError("tlb_finish_mmu left pages unfreed")
            visited.append((mm, vp))
        self.rmap_walk_unlock(op, walk)

    def truncate(self, op, fid: int, pgoff: int):
        """``fallocate(FALLOC_FL_PUNCH_HOLE)`` of page ``pgoff`` of ``file``: the hole reads
        zero from now on.

        ``filemap_invalidate_lock`` (no page can be read in meanwhile), then
        ``truncate_pagecache_range`` (mm/truncate.c): :meth:`unmap_mapping_range` (every
        PTE of the page in every mm is zapped, each mm with its own gather), then
        ``truncate_inode_pages_range``: ``folio_lock`` the page-cache folio (waits for
        writeback, reclaim or migration holding it; re-looks it up if it left the page
        cache meanwhile), ``truncate_cleanup_folio`` (a fault mapped it again between the
        unmap and the lock: ``unmap_mapping_folio``, one more :meth:`unmap_mapping_range`;
        ``folio_cancel_dirty``), ``filemap_remove_folio`` (``folio->mapping = NULL``:
        the frame's owner becomes "truncated"), unlock, ``folio_put``: freed here unless an
        mmu_gather or an isolation still holds it (then by that holder). Last, the
        filesystem frees the blocks: ``disk[pgoff] = 0``, the location's expected value is
        0, and a later fault reads a new zero-filled page-cache page.
        Simplification: one page; hole punch semantics (never SIGBUS beyond EOF: the file
        keeps its size). S3 at return: no entry of a PTE instance live at or before the
        walk's visit, in every (mm, vpage) walked (docs/oracle.md section 2).
        """
        mem = self.mem
        f = mem.files[fid]
        loc = ("f", fid, pgoff)
        op.touched_locs[loc] = None
        inv = self.invalidate_lock(fid)
        yield from self.down_write(op, inv)
        visited: list = []
        yield from self.unmap_mapping_range(op, loc, visited)
        while True:  # truncate_inode_pages_range
            frame = f.cache.get(pgoff)
            if frame is None:
                break
            lk = mem.folio_lock[frame]
            yield from self.lock(op, lk)
            if f.cache.get(pgoff) != frame:  # truncated or migrated while we waited
                self.unlock(op, lk)
                continue
            op.touched_frames[frame] = None
            if mem.rmap[frame]:  # truncate_cleanup_folio -> unmap_mapping_folio
                yield from self.unmap_mapping_range(op, loc, visited)
            mem.dirty[frame] = False  # folio_cancel_dirty
            del f.cache[pgoff]  # filemap_remove_folio
            mem.owner[frame] = "truncated"
            self.trace.msg(op, "truncate: pfn%d removed from the page cache", frame)
            self.unlock(op, lk)
            if self.last_reference(frame):
                self.free_frames([frame])
            break
        f.disk[pgoff] = 0  # the blocks are freed: a hole
        self.oracle.expected[loc] = 0
        self.trace.msg(op, "fallocate(file%d:%d, PUNCH_HOLE)", fid, pgoff)
        self.up_write(op, inv)
        for mm, vp in visited:
            self.oracle.check_s3(op, mm, vp, vp + 1, "truncate")

    # -- exit ---------------------------------------------------------------------------
    def exit_mmap(self, op, mm):
        """``exit_mmap`` (mm/mmap.c, 6.x) of an mm whose last task exited, then ``exec``
        of a new program into the same mm slot.

        ``mmap_read_lock``; ``tlb_gather_mmu_fullmm`` (``tlb->fullmm``: ``tlb_end_vma``
        returns early, ``tlb_flush`` flushes the whole mm); ``unmap_vmas`` over every VMA
        (:meth:`zap_pte_range` per page table: a full gather batch still flushes and frees
        mid-walk); ``mmap_read_unlock``; ``mmap_write_lock``; ``free_pgtables``
        (``unlink_anon_vmas``/``unlink_file_vma``: no rmap walk finds the VMAs any more;
        page tables freed: ``tlb->freed_tables``, so x86 also flushes the CPUs in lazy TLB
        mode); ``tlb_finish_mmu``; ``remove_vma``; ``mmap_write_unlock``.

        Lazy TLB: the CPUs that had the mm loaded keep it loaded (``active_mm``) and keep
        their entries until a flush reaches them; the model sends every flush to them
        (simplification A2: x86 skips lazy CPUs unless tables are freed, so its mid-walk
        flushes of an exiting mm do not reach them; the model flushes more, never less).
        No task of the mm runs meanwhile (``Machine.exit_mmap`` refuses while one is in
        the kernel; user accesses and syscalls on an exiting mm are refused).

        Then a new program starts in the slot (``execve``: ``mm_alloc`` + the ELF and
        stack mappings), modelled as the boot layout's VMAs (fresh anon_vmas, nothing
        faulted in, the protocol's ``mmap_region`` hook for each) under the write lock.
        Simplification: the kernel's exec makes a new ``mm_struct`` (new ``ctx_id``, new
        protocol state); here the slot, its ``tlb_gen`` and ``mm.proto`` are kept, so a
        deferred flush still pending for the old mm stays pending for the new one (more
        flushing, never less), and an entry a protocol failed to flush stays visible.
        """
        from .machine import boot_vmas  # the boot layout is the "program" exec starts
        mm.exiting = True  # mm_users is 0: no task of the mm runs from now on
        yield from self.mmap_read_lock(op, mm)
        vmas = list(mm.vmas)
        proto = self.proto
        self._touch_range(op, mm, 0, len(mm.ptes))
        for v in vmas:
            for vp in range(v.start, v.end):
                op.touched_locs[v.location(vp)] = None
        if vmas:
            tlb = MmuGather(op, mm, 0, len(mm.ptes), self._tlb_batch_pages_flush)
            tlb.fullmm = True  # tlb_gather_mmu_fullmm
            self.m.call_hook(proto.tlb_gather_mmu, tlb)
            for vma in vmas:  # unmap_vmas -> unmap_single_vma
                for a, b in mm.table_ranges(vma.start, vma.end):
                    yield from self.zap_pte_range(op, tlb, mm, vma, a, b)
                yield from hook(proto.tlb_end_vma(tlb, vma))
            self.mmap_read_unlock(op, mm)
            yield from self.mmap_write_lock(op, mm)
            mm.vmas = []  # free_pgtables: unlink_anon_vmas / unlink_file_vma
            tlb.freed_tables = True  # free_pte_range -> pte_free_tlb
            yield from hook(proto.tlb_finish_mmu(tlb))
            if tlb.pages:
                raise ModelError("tlb_finish_mmu left pages unfreed")
        else:
            self.mmap_read_unlock(op, mm)
            yield from self.mmap_write_lock(op, mm)
        self.trace.msg(op, "exit_mmap(mm%d)", mm.id)
        new = boot_vmas(self.m, mm)  # execve of the next program
        for vma in new:
            yield from hook(proto.mmap_region(op, mm, vma))
        mm.vmas = new
        mm.exiting = False
        self.trace.msg(op, "exec: mm%d %s", mm.id, new)
        self.mmap_write_unlock(op, mm)

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
            pgoff = start  # vm_pgoff of anonymous memory: its first page
        vma = Vma(start, end, anon_id, file, pgoff, writable, maywrite)
        vma.proto = self.proto.init_vma(vma)
        yield from hook(self.proto.mmap_region(op, mm, vma))
        mm.vmas.append(vma)
        mm.vmas.sort(key=lambda v: v.start)
        self._touch_range(op, mm, start, end)
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
            self._error(op, mm, "mprotect: " + ("EACCES" if inside else "ENOMEM"), True)
            return
        self._touch_range(op, mm, start, end)
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
        ptl = yield from self._lock_pte_table(op, mm, start)
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

    # -- writeback ------------------------------------------------------------------------
    def writeback(self, op, fid: int, pgoff: int):
        """``folio_write_one`` -> ``folio_clear_dirty_for_io`` + ``writepage`` of one page-cache page.

        Outside ``mmap_lock``. Skip if the page is not cached. ``folio_lock`` (wait;
        give up if the folio left the page cache meanwhile), ``folio_clear_dirty_for_io``:
        ``folio_mkclean`` (below), re-dirty the folio if it cleaned any PTE, then clear
        PG_dirty; if it was dirty, ``folio_start_writeback``, copy out to ``disk`` (S2:
        :meth:`copy_out`), **yield** (IO), ``folio_end_writeback``, unlock.
        Simplification: the folio lock is held through the IO (it stands for
        PG_writeback, which reclaim and a second writeback wait on).
        """
        mem = self.mem
        f = mem.files[fid]
        frame = f.cache.get(pgoff)
        if frame is None:
            self.trace.msg(op, "writeback: file%d:%d not cached", fid, pgoff)
            op.result = "skip"
            return
        loc = ("f", fid, pgoff)
        op.touched_locs[loc] = None
        lk = mem.folio_lock[frame]
        yield from self.lock(op, lk)
        if f.cache.get(pgoff) != frame:
            self.unlock(op, lk)
            op.result = "skip"
            return
        op.touched_frames[frame] = None
        if (yield from self.folio_mkclean(op, frame)):
            mem.dirty[frame] = True  # folio_mark_dirty: a PTE was dirty or writable
        if mem.dirty[frame]:
            mem.dirty[frame] = False
            self.trace.msg(op, "writepage(pfn%d -> file%d:%d)", frame, fid, pgoff)
            f.disk[pgoff] = self.copy_out(op, frame)
            yield  # IO in flight (PG_writeback)
        self.unlock(op, lk)

    def folio_mkclean(self, op, frame: int):
        """``folio_mkclean`` -> ``page_mkclean_one`` over the rmap (``rmap[frame]`` order).

        Per mapping: take its PTL; if the PTE is present for ``frame`` and dirty or
        writable: ``ptep_clear_flush`` (``flush_tlb_page``), then set it back
        write-protected and clean; unlock, **yield**. Returns the number of PTEs
        cleaned. A mapping whose rmap zap already removed is not visited.
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
        return cleaned

    # -- madvise ------------------------------------------------------------------------
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
                raise ModelError("tlb_finish_mmu left pages unfreed")
        self.trace.msg(op, "madvise(mm%d, v%d..v%d, %s)", mm.id, start, end - 1, advice)
        self.mmap_read_unlock(op, mm)
        if advice in ("dontneed", "free"):
            self.oracle.check_s3(op, mm, start, end, "madvise(%s)" % advice)

    def _split_window(self, op, mm, ptl, what: str):
        """Large-folio split in the madvise walkers: ``pte_unmap_unlock``, ``split_folio``,
        re-take the PTL and (``RECHECK_AFTER_RELOCK``, 383c4613c67c) call
        ``flush_tlb_batched_pending`` again.

        Simplification: large folios are not modelled, so every page table's first
        present PTE opens this window (drop the PTL, **yield**, re-take it); the caller
        re-reads the PTE afterwards.
        """
        self.unlock(op, ptl)
        self.trace.msg(op, "%s: split_folio (PTL dropped)", what)
        yield
        yield from self.lock(op, ptl)
        if self.proto.RECHECK_AFTER_RELOCK:
            yield from hook(self.proto.flush_tlb_batched_pending(op, mm))

    def madvise_pte_range(self, op, tlb, mm, vma, start: int, end: int, advice: str):
        """``madvise_free_pte_range`` / ``madvise_cold_or_pageout_pte_range`` for one page table.

        PTL, ``flush_tlb_batched_pending``; the first present PTE opens the split window
        (:meth:`_split_window`), after which each PTE is re-read.

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
        clearing young") and collects the folio for the caller's ``reclaim_pages``.
        Simplification: those folios are isolated by that reclaim's own
        ``folio_isolate_lru``, not here under the PTL.
        """
        mem = self.mem
        proto = self.proto
        ptl = yield from self._lock_pte_table(op, mm, start)
        free = advice == "free"
        split = False
        folios = []
        for vpage in range(start, end):
            pte = mm.ptes[vpage]
            if pte.kind == PRESENT and not split:
                split = True
                yield from self._split_window(op, mm, ptl, "madvise_" + advice)
            kind = pte.kind  # re-read after the relock
            if kind == SWAP and free:
                op.s3_visits[(mm.id, vpage)] = self.m.pte_insts
                slot = self._free_swap_entry(pte)
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
                else:
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
        swapcache_slot = next((s for s, f in mem.swap_cache.items() if f == frame), None)
        if swapcache_slot is not None or mem.dirty[frame]:
            if mem.folio_lock[frame].owner is not None:  # folio_trylock failed
                return False
            if len(mem.rmap[frame]) != 1:  # folio_mapcount(folio) != 1
                return False
            if swapcache_slot is not None:  # folio_free_swap: only if no swap entry uses it
                if mem.swap_map[swapcache_slot]:
                    return False
                del mem.swap_cache[swapcache_slot]
                mem.put_slot(swapcache_slot)
            mem.dirty[frame] = False  # folio_clear_dirty
        op.touched_frames[frame] = None
        if pte.accessed or pte.dirty:
            pte.set_present(frame, pte.writable, False, pte.inst)  # mkold + mkclean, same PTE
            self.m.call_hook(self.proto.tlb_remove_tlb_entry, tlb, vpage)
        mem.lazyfree[frame] = True  # folio_mark_lazyfree
        return True

    def _record_wd(self, op, mm, vpage: int, pte) -> None:
        """S3 for MADV_FREE: remember the writable dirty entries of ``pte``'s instance that
        exist while the walk leaves it present and clean (docs/oracle.md section 2)."""
        if pte.kind != PRESENT or pte.dirty:
            return
        for c, e in self.m.tlbs.entries_for(mm.id, vpage):
            if e.writable and e.dirty and e.inst == pte.inst:
                op.s3_wd.append((c.id, mm.id, vpage, e))

    # -- mremap ---------------------------------------------------------------------------
    def mremap(self, op, mm, old_start: int, npages: int, new_start: int):
        """``mremap(MREMAP_MAYMOVE|MREMAP_FIXED)`` to a free range: ``move_vma``.

        ``mmap_write_lock``; "error" unless ``[old_start, +npages)`` lies in one VMA and
        the destination is inside the address space, free of VMAs and disjoint from the
        source. ``copy_vma`` (same ``vm_pgoff``, so every page keeps its location),
        ``move_page_tables`` -> :meth:`move_ptes` per extent, then the old VMA piece is
        removed. Simplification: the old range is not passed through ``unmap_region``
        (no PTE is left there; its ``flush_tlb_batched_pending`` is the one
        ``move_ptes`` already did). S3 at return: no entry of the old range; in the new
        range, none of a PTE instance older than the move (docs/oracle.md section 2).
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
        old = mm.split_vmas(old_start, old_end)[0]
        new = old.moved_copy(new_start)
        mm.vmas.append(new)  # copy_vma
        mm.vmas.sort(key=lambda v: v.start)
        n = mm.ptes_per_table
        a = old_start
        # take_rmap_locks (need_rmap_locks taken as always true): no rmap walk runs
        # while PTEs move, so none misses a PTE that is between its old and new place
        rl = self.rmap_lock(vma.location(old_start))
        yield from self.down_write(op, rl)
        while a < old_end:
            na = new_start + a - old_start
            ext = min(old_end, (a // n + 1) * n, a + (na // n + 1) * n - na) - a
            yield from self.move_ptes(op, mm, a, a + ext, na)
            a += ext
        self.up_write(op, rl)  # drop_rmap_locks
        mm.vmas.remove(old)
        self.trace.msg(op, "mremap(mm%d, v%d..v%d -> v%d)", mm.id, old_start, old_end - 1, new_start)
        op.result = new_start
        self.mmap_write_unlock(op, mm)
        self.oracle.check_s3(op, mm, old_start, old_end, "mremap")
        self.oracle.check_s3(op, mm, new_start, new_end, "mremap")

    def move_ptes(self, op, mm, old_addr: int, old_end: int, new_addr: int):
        """``move_ptes``: old PTL, then the new one if different (``spin_lock_nested``),
        ``flush_tlb_batched_pending``; each non-none PTE ``ptep_get_and_clear`` +
        ``set_pte_at`` at the new address (rmap follows; a present PTE there is a new
        instance); a present one sets ``force_flush``, and then ``flush_tlb_range`` of this
        extent of the old range (``old_end - len .. old_end``) before the PTLs are dropped.
        Every old and new slot of the extent is an S3 visit (``op.s3_visits``).
        """
        proto = self.proto
        old_ptl = mm.ptl(old_addr)
        new_ptl = mm.ptl(new_addr)
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
        yield

    # -- fork and COW -----------------------------------------------------------------------
    def dup_mmap(self, op, mm, child):
        """``kernel_clone`` -> ``copy_mm`` -> ``dup_mm`` -> ``dup_mmap`` (kernel/fork.c; in
        mm/mmap.c since 2025): the task running ``mm`` forks; the child is mm slot ``child``.

        The model has a fixed set of mms, so the child *replaces* the slot's previous
        address space: that old tenant exits first (simplification: its teardown is
        :meth:`unmap_region` over every VMA, an mmu_gather with the usual hooks, not
        ``exit_mmap``'s ``tlb_gather_mmu_fullmm``); CPUs that had the slot loaded now run
        the child. The slot keeps its ``mm.proto`` and ``tlb_gen`` (a pending
        ``tlb_flush_batched`` inherited from the old tenant only costs a flush).

        ``mmap_write_lock`` of both mms, in mm-id order (the kernel's child mm is new and
        unreachable, so its order does not matter there; here another task may hold the
        slot's lock). Per parent VMA (``vm_area_dup``: flags, file, ``vm_pgoff`` and the
        protocol slot copied), an anonymous VMA gets its own ``anon_vma`` hanging off the
        parent's root (``anon_vma_fork``: a new location id, ``Memory.anon_root``; the
        child's locations start with the parent's values). ``copy_page_range`` runs only
        where ``vma_needs_copy``: anonymous VMAs (shared file mappings have no
        ``anon_vma`` and are faulted in by the child) -> :meth:`copy_pte_range` per page
        table. Simplification: the root ``anon_vma`` lock that ``anon_vma_fork`` takes for
        the link is held through each page table's copy, so no rmap walk (reclaim, migration)
        runs during it; in the kernel a walk may race the copy and find the folio mapped
        again afterwards (``shrink_folio_list``: ``folio_mapped`` -> activate), and the
        model's walk, which tracks mappings by (mm, address), would miss a mapping the
        child re-created in a slot it had already visited. Then ``mmap_write_unlock(child)``, ``flush_tlb_mm(oldmm)`` (the parent's
        CPUs drop the writable entries of the PTEs just write-protected),
        ``mmap_write_unlock(mm)``. Not a protocol hook: the flush is the kernel's own.
        """
        if child is mm:
            raise ModelError("fork into the parent's own mm slot")
        first, second = (mm, child) if mm.id < child.id else (child, mm)
        yield from self.mmap_write_lock(op, first)
        yield from self.mmap_write_lock(op, second)
        if child.vmas:  # the slot's previous tenant exits
            yield from self.unmap_region(op, child, 0, len(child.ptes))
        mem = self.mem
        for vma in list(mm.vmas):
            new = vma.split_copy(vma.start, vma.end)  # vm_area_dup
            if vma.is_anon:  # anon_vma_fork
                new.anon_id = self.m.new_anon_id()
                mem.anon_root[new.anon_id] = mem.anon_root.get(vma.anon_id, vma.anon_id)
            child.vmas.append(new)
            child.vmas.sort(key=lambda v: v.start)
            self._touch_range(op, child, new.start, new.end)
            if not vma.is_anon:  # !vma_needs_copy: the child faults the file pages in
                continue
            # anon_vma_fork's anon_vma_lock_write(root), held here through each page
            # table's copy (see above)
            rl = self.rmap_lock(vma.location(vma.start))
            for a, b in mm.table_ranges(vma.start, vma.end):
                yield from self.down_write(op, rl)
                yield from self.copy_pte_range(op, mm, vma, child, new, a, b)
                self.up_write(op, rl)
                yield  # cond_resched between page tables
        self.trace.msg(op, "dup_mmap(mm%d -> mm%d)", mm.id, child.id)
        self.mmap_write_unlock(op, child)
        self.arch.flush_tlb_mm(mm, op)  # flush_tlb_mm(oldmm)
        for f in list(mem.fork_copies):  # the window is closed: stores no longer reach the child
            rest = [c for c in mem.fork_copies[f] if c[0] is not op]
            if rest:
                mem.fork_copies[f] = rest
            else:
                del mem.fork_copies[f]
        self.mmap_write_unlock(op, mm)
        op.result = child.id

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
        ``PageAnonExclusive``: ``Memory.cow``), and, the mapping being COW
        (``is_cow_mapping``: private, ``VM_MAYWRITE``), a writable PTE is write-protected
        in the parent (``ptep_set_wrprotect``: D kept, same PTE instance, no flush here)
        and mapped read-only in the child (``pte_wrprotect``; ``pte_mkold``; D kept: a
        private mapping is not made clean), a new PTE instance. Every child slot gets the
        parent location's value (oracle). Unlock both; the caller yields.
        Simplification: no GUP pins, so ``folio_try_dup_anon_rmap_pte`` never fails
        (``copy_present_page`` is never needed).
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
                continue
            frame = pte.frame
            mem.cow[frame] = True
            op.touched_frames[frame] = None
            if kind == MIGRATION:
                pte.writable = False  # make_readable_migration_entry, both mms
                dst.kind, dst.frame, dst.writable, dst.dirty = MIGRATION, frame, False, pte.dirty
                self.trace.msg(op, "copy migration entry mm%d:v%d [pfn%d]", mm.id, vp, frame)
                continue
            pte.writable = False  # ptep_set_wrprotect(src_mm, addr, src_pte)
            dst.set_present(frame, False, pte.dirty, self.m.new_pte_inst())
            self.rmap_add(frame, child, vp)
            mem.fork_copies.setdefault(frame, []).append((op, cloc))
            self.trace.msg(op, "copy_present_pte(mm%d:v%d -> mm%d) [pfn%d, wrprotect]",
                           mm.id, vp, child.id, frame)
        self.unlock(op, src_ptl)
        self.unlock(op, dst_ptl)

    def do_wp_page_anon(self, op, mm, vma, vpage):
        """``do_wp_page`` for an anonymous folio (mm/memory.c), PTL held for the decision.

        Present and read-only, else nothing (spurious, or the PTE changed: the access
        re-faults). Reuse (``wp_page_reuse``: the PTE made writable and dirty, the folio
        exclusive again, ``folio_move_anon_rmap``: owned by this location) when the folio
        is ``PageAnonExclusive`` (never shared by a fork: :data:`Memory.cow` clear), or
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

    def _anon_owner_after_unmap(self, frame: int):
        """The owner of an anonymous folio one of whose mappings just went: "zapped" when
        none is left; else (a fork shares it) the location of a remaining mapping, so a
        store through that mapping still lands in its location (``folio->index`` is the
        same for parent and child; the model names locations per ``anon_vma``)."""
        rmap = self.mem.rmap[frame]
        for mm_id, vpage in rmap:
            return self._mapping_location(self.mms[mm_id], vpage, "zapped")
        return "zapped"

    def _mapping_location(self, mm, vpage: int, default):
        """The anonymous location ``mm``'s VMA maps at ``vpage``; ``default`` when no
        anonymous VMA is there (detached by a munmap in flight)."""
        vma = mm.find_vma(vpage)
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
