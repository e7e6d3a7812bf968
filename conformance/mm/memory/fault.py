"""mm/memory.c (Linux 6.12), the fault half: ``handle_mm_fault`` and the ``do_*_page`` paths.

mm/memory.c is split in four modules here (fault, swapin, zap, copy) to keep each short; a
function is in the one its kernel caller belongs to. ``filemap_get_folio`` is in
:mod:`conformance.mm.filemap`.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from ..migrate import _MigrationWait
from ...errors import ModelError
from ..mm_types import (MIGRATION, NONE, PRESENT, REFAULT, VM_FAULT_COMPLETED, VM_FAULT_RETRY,
                        VM_FAULT_RETRY_MAJOR, Vma)
from ..task import hook


class FaultPaths:
    """The fault paths of mm/memory.c, mixed into :class:`conformance.mm.Kernel`."""

    def fault(self, op, mm, vpage: int, write: bool):
        """``do_user_addr_fault`` (arch/x86/mm/fault.c): ``mmap_read_lock``, ``find_vma``,
        ``handle_mm_fault``, ``mmap_read_unlock``; again once on ``VM_FAULT_RETRY``.

        The first try runs with ``FAULT_FLAG_ALLOW_RETRY``: where it must sleep on a folio
        lock or wait for read IO (``folio_lock_or_retry`` in :meth:`do_swap_page`,
        ``lock_folio_maybe_drop_mmap`` and ``maybe_unlock_mmap_for_io`` in
        :meth:`conformance.mm.filemap.FilemapPaths.filemap_get_folio`), it drops
        ``mmap_lock`` itself, waits, and returns :data:`VM_FAULT_RETRY`; the fault then
        takes ``mmap_lock`` again, looks the VMA up again and retries with
        ``FAULT_FLAG_TRIED``, which sleeps under ``mmap_lock`` as the model did for every
        try before 2026-12-06 (docs/model.md section 11 item 20). While the first try
        waits, a writer of the mm (munmap, mprotect, mremap, mmap, fork) may run::

            CPU0 (fault v0)                       CPU1 (munmap v0)
            do_swap_page: swapin_readahead
            folio_lock_or_retry:
              mmap_read_unlock
              (read IO in flight)                 mmap_write_lock
                                                  zap v0's swap entry, unmap the VMA
                                                  mmap_write_unlock
            mmap_read_lock, find_vma: none
            -> SIGSEGV

        A write fault that made a shared file page writable drops ``mmap_lock`` on its
        first try too, after the PTE is installed (:meth:`fault_dirty_shared_page`,
        ``VM_FAULT_COMPLETED``), and ends there.

        Where ``handle_mm_fault`` returns 0 with nothing done (:data:`REFAULT`: a
        ``!pte_same`` recheck, or after ``migration_entry_wait``), the fault unlocks
        ``mmap_lock`` and returns to user space (``op.result`` ``"restart"``); the CPU
        restarts the access, which is the user program's next access (``Machine.user_access``,
        another operation): it looks the TLB up, walks the page table and faults again, as a
        new first try, only if the PTE still does not allow it. Anything may run in
        between, a writer of the mm included::

            CPU0 (fault v0)                       CPU1 (munmap v0)
            do_swap_page: migration entry
            migration_entry_wait (under mmap_lock)
            return 0, mmap_read_unlock
                                                  mmap_write_lock, unmap v0, unlock
            the access restarts: #PF again
            mmap_read_lock, find_vma: none
            -> SIGSEGV

        (Before 2026-12-06 18:00 the model went on at once under the same ``mmap_lock`` and
        ``tried``; from then until 20:40 it faulted again inside the same operation, without
        the TLB lookup and walk of the restarted access: docs/model.md section 11 item 22.)

        **Per-VMA locks first** (``CONFIG_PER_VMA_LOCK``, 6.4+): the fault first tries
        :meth:`lock_vma_under_rcu` and runs ``handle_mm_fault`` with
        ``FAULT_FLAG_VMA_LOCK`` under that VMA's read lock alone, so a writer of the mm
        (mprotect, mremap, munmap, mmap) changing *another* VMA runs beside it; every lock
        drop above drops the VMA lock instead (``release_fault_lock``). Only where no VMA
        is found, the VMA is write-locked by a writer in flight, or the try returned
        ``VM_FAULT_RETRY`` does the fault go on to ``mmap_lock`` as above (an access the
        VMA does not allow is a SIGSEGV under the VMA lock, ``bad_area_access_error`` with
        no mm, 6.10+); after a major
        fault's retry (:data:`VM_FAULT_RETRY_MAJOR`: the try read the page in) with
        ``FAULT_FLAG_TRIED``, so it sleeps under ``mmap_lock``, else as a first try, which
        may drop ``mmap_lock`` once more.

        Simplifications: no ``FAULT_FLAG_RETRY_NOWAIT`` or killable waits.
        """
        tr = self.trace
        tried = False  # FAULT_FLAG_TRIED
        vma = self.lock_vma_under_rcu(op, mm, vpage)
        per_vma = vma is not None  # FAULT_FLAG_VMA_LOCK: this try holds the VMA's lock
        beside = self.m._w_beside  # coverage: a fault beside a writer of the mm
        if beside is not None and per_vma and mm.mmap_lock.writer is not None:
            beside[mm.mmap_lock.writer.name] += 1
        while True:
            if not per_vma:  # lock_mmap: / retry:
                yield from self.mmap_read_lock(op, mm)
                vma = mm.find_vma(vpage)
            if vma is None or (write and not vma.writable):  # access_error: under the VMA
                tr.msg(op, "fault mm%d:v%d -> SIGSEGV", mm.id, vpage)  # lock too (6.10+)
                op.result = "segv"
                self._drop_fault_lock(op, mm)
                return
            r = yield from self.handle_mm_fault(op, mm, vma, vpage, write, tried)
            yield from hook(self.proto.handle_mm_fault_end(op, mm, vma, vpage, write))
            if r is VM_FAULT_RETRY_MAJOR:
                r = VM_FAULT_RETRY
                tried = tried or per_vma  # VMA lock: if (fault & VM_FAULT_MAJOR) TRIED
            if r is VM_FAULT_COMPLETED:  # fault_dirty_shared_page released the lock
                return
            if r is not VM_FAULT_RETRY:
                self._drop_fault_lock(op, mm)
                if r is REFAULT:  # returned 0: back to user space, where the access restarts
                    tr.msg(op, "fault mm%d:v%d: returns 0, the access restarts", mm.id, vpage)
                    op.result = "restart"
                return
            if per_vma:
                tr.msg(op, "fault mm%d:v%d: %s under the VMA lock, mmap_lock%s", mm.id, vpage,
                       "VM_FAULT_RETRY|VM_FAULT_MAJOR" if tried else "VM_FAULT_RETRY",
                       " (FAULT_FLAG_TRIED)" if tried else "")
                per_vma = False
                continue
            if tried:  # never: a retried fault sleeps under mmap_lock
                raise ModelError("handle_mm_fault: VM_FAULT_RETRY with FAULT_FLAG_TRIED")
            tr.msg(op, "fault mm%d:v%d: VM_FAULT_RETRY, again", mm.id, vpage)
            tried = True

    def handle_mm_fault(self, op, mm, vma, vpage: int, write: bool, tried: bool):
        """``handle_mm_fault`` -> ``handle_pte_fault`` under ``mmap_read_lock``: the
        ``do_*_page`` path the PTE calls for. Returns :data:`REFAULT` where the kernel
        returns 0 with nothing done (a ``!pte_same`` / ``!pte_none`` recheck found the PTE
        changed by another path; a migration entry waited for by ``migration_entry_wait``,
        under ``mmap_lock``), :data:`VM_FAULT_RETRY` when a first try (``tried`` false)
        dropped ``mmap_lock`` (see :meth:`fault`), :data:`VM_FAULT_COMPLETED` when
        :meth:`fault_dirty_shared_page` did."""
        tr = self.trace
        loc = vma.location(vpage)
        op.touched_vps[(mm.id, vpage)] = None
        op.touched_locs[loc] = None
        pte = mm.ptes[vpage]
        kind = pte.kind
        if kind == PRESENT:
            r = yield from self.do_wp_page(op, mm, vma, vpage, write, tried)
        elif kind == MIGRATION:
            tr.msg(op, "migration_entry_wait(mm%d:v%d)", mm.id, vpage)
            op.blocked_on = _MigrationWait(pte)
            yield
            op.blocked_on = None
            return REFAULT
        elif kind == NONE:
            if vma.is_anon:
                mm.pte_alloc(vpage)  # do_anonymous_page's pte_alloc, before the folio
                r = yield from self.do_anonymous_page(op, mm, vma, vpage, write)
            else:
                r = yield from self.do_file_fault(op, mm, vma, vpage, write, tried)
        else:
            r = yield from self.do_swap_page(op, mm, vma, vpage, write, tried)
        if r is VM_FAULT_RETRY or r is VM_FAULT_RETRY_MAJOR or r is REFAULT:
            return r
        if r is VM_FAULT_COMPLETED:
            op.result = "ok"
            return r
        op.result = r  # None for a spurious do_wp_page
        return None

    def _install(self, op, mm, vma, vpage, frame, writable, dirty, write):
        """``set_pte_at`` under the PTL, then the protocol's ``fault_install_pte`` (atomic)."""
        pte = mm.ptes[vpage]
        pte.set_present(frame, writable, dirty, self.m.new_pte_inst())
        self.rmap_add(frame, mm, vpage)
        op.touched_frames[frame] = None
        self.trace.msg(op, "set_pte_at(mm%d:v%d -> pfn%d%s)", mm.id, vpage, frame,
                       " W" if writable else " RO")
        self.m.call_hook(self.proto.fault_install_pte, op, mm, vma, vpage, pte, write)

    def do_wp_page(self, op, mm, vma, vpage, write, tried=True):
        """``do_wp_page``: ``wp_page_reuse`` (exclusive anon) / ``wp_page_shared`` (page_mkwrite).

        Shared file page: ``wp_page_shared`` drops the PTL and calls ``do_page_mkwrite``
        (``filemap_page_mkwrite``: ``folio_lock``, so it waits for a writeback holding
        it), re-takes the PTL, ``pte_same`` recheck (changed: :data:`REFAULT`, the access
        restarts), ``wp_page_reuse``, then :meth:`fault_dirty_shared_page` (folio
        marked dirty and unlocked; the model marks it under the PTL and unlocks it
        before the call). Also the spurious-fault case: the PTE is
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
            if not (pte.kind == PRESENT and pte.frame == frame):  # !pte_same: returns 0
                self.unlock(op, flk)
                return REFAULT
        ptl = mm.ptl(vpage)
        yield from self.lock(op, ptl)
        if pte.kind != PRESENT:  # zapped meanwhile: !pte_same, returns 0 (the access
            self.unlock(op, ptl)  # restarts; finish_mkwrite_fault's VM_FAULT_NOPAGE for a write)
            if flk is not None:
                self.unlock(op, flk)
            return REFAULT
        upgraded = write and not pte.writable
        if upgraded:
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
            if upgraded:  # wp_page_shared's end
                return (yield from self.fault_dirty_shared_page(op, mm, tried))
        return None

    def fault_dirty_shared_page(self, op, mm, tried: bool):
        """``fault_dirty_shared_page`` (mm/memory.c), the end of ``do_shared_fault`` and
        ``wp_page_shared``, after the caller marked the folio dirty and unlocked it:
        ``balance_dirty_pages_ratelimited`` throttles the dirtying task. A first try
        (``tried`` false) drops ``mmap_lock`` before it (``maybe_unlock_mmap_for_io``: the
        VMA has ``page_mkwrite``, ``filemap_page_mkwrite``), and the fault is done
        (``VM_FAULT_COMPLETED``, returned): ``handle_mm_fault``'s end, LUF v12's flush
        point, runs without the lock, and **yield** here, as the throttle may sleep. So a
        writable PTE the fault installed is visible, and writers of the mm may run, before
        that flush::

            CPU0 (write fault, file page)         CPU1
            finish_fault: set_pte_at(W)
            fault_dirty_shared_page:
              folio_unlock, mmap_read_unlock
              balance_dirty_pages_ratelimited     munmap / mprotect of the page, or a
                                                  store through the new entry
            handle_mm_fault's end (luf_flush)

        Simplification: a retried fault (``tried``) throttles under ``mmap_lock`` with no
        interleaving point, and returns None."""
        if tried:
            return None
        self.release_fault_lock(op, mm, "fault_dirty_shared_page")
        yield  # balance_dirty_pages_ratelimited
        return VM_FAULT_COMPLETED

    def release_fault_lock(self, op, mm, where: str) -> None:
        """``release_fault_lock`` (include/linux/mm.h) where a fault's first try drops
        ``mmap_read_lock`` (``where``: ``folio_lock_or_retry``, ``maybe_unlock_mmap_for_io``
        of ``lock_folio_maybe_drop_mmap``, ``do_sync_mmap_readahead`` and
        ``fault_dirty_shared_page``); the fault then ends in ``VM_FAULT_RETRY`` or
        ``VM_FAULT_COMPLETED`` without unlocking it again. A fault under its VMA lock
        (``FAULT_FLAG_VMA_LOCK``, :meth:`fault`) drops that instead (``vma_end_read``)."""
        self.trace.msg(op, "%s: drops %s", where, self._drop_fault_lock(op, mm))

    def _drop_fault_lock(self, op, mm) -> str:
        """Drop the lock a fault holds, its VMA's (``vma_end_read``) or ``mmap_lock``
        (``mmap_read_unlock``), and name it."""
        for h in op.held:
            if h.__class__ is Vma:
                self.vma_end_read(op, h)
                return "the VMA lock"
        self.mmap_read_unlock(op, mm)
        return "mmap_lock"

    def do_anonymous_page(self, op, mm, vma, vpage, write):
        """``do_anonymous_page``: allocate a zeroed folio, then install under the PTL.

        First ``vmf_anon_prepare``: a VMA with no ``anon_vma`` yet gets one
        (``__anon_vma_prepare``); under the VMA lock only, that needs ``mmap_read_trylock``,
        and where a writer holds ``mmap_lock`` the fault drops its VMA lock and returns
        :data:`VM_FAULT_RETRY`, to go on under ``mmap_lock`` (docs/model.md section 11
        item 31)::

            CPU0 (first write fault, VMA B)       CPU1 (mprotect VMA A)
            lock_vma_under_rcu(B)                 mmap_write_lock
            vmf_anon_prepare: trylock fails
            vma_end_read(B), VM_FAULT_RETRY
            mmap_read_lock: waits                 ... mmap_write_unlock

        Simplification: the shared zero page is not modelled; a read fault
        allocates like a write fault (as when the zero page is forbidden), so an
        anonymous page in a ``VM_WRITE`` VMA is mapped writable and dirty
        (``pte_mkwrite(pte_mkdirty(entry))``), and a read fault prepares the anon_vma
        too. A trylock fails only while a writer holds ``mmap_lock`` (the model's rwsem
        has no writer preference, section 3).
        """
        if not vma.anon_vma:  # vmf_anon_prepare
            if mm.mmap_lock.writer is not None and any(h is vma for h in op.held):
                self.vma_end_read(op, vma)
                self.trace.msg(op, "vmf_anon_prepare: mmap_read_trylock failed, drops the VMA lock")
                return VM_FAULT_RETRY
            vma.anon_vma = True  # __anon_vma_prepare
        # not on the LRU until mapped (folio_add_lru_vma); may enter direct reclaim
        frame = yield from self.alloc_frame_direct_reclaim(op, "new")
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
            return REFAULT
        self.mem.owner[frame] = vma.location(vpage)
        self._install(op, mm, vma, vpage, frame, vma.writable, vma.writable, write)
        self.unlock(op, ptl)
        return "ok"

    def do_fault_around(self, op, mm, vma, vpage):
        """``do_fault_around``: the window of ``fault_around_pages`` PTEs aligned on the
        address, clamped to the VMA and to its page table (``from_pte``/``to_pte``), mapped
        by :meth:`conformance.mm.filemap.FilemapPaths.filemap_map_pages`. Returns whether
        ``vpage`` itself was mapped (``VM_FAULT_NOPAGE``)::

            CPU0 (read fault v2, v3 cached)       CPU1
            do_fault_around: pte_offset_map_lock
              set_pte_range(v2), set_pte_range(v3)
            pte_unmap_unlock                      a read of v3 hits no fault
        """
        n = self.m.cfg.fault_around_pages
        per = mm.ptes_per_table
        base = vpage - vpage % per
        pte_off = vpage - base
        from_pte = max(pte_off - pte_off % n, pte_off - (vpage - vma.start))
        to_pte = min(from_pte + n, per, pte_off + (vma.end - vpage))
        return (yield from self.filemap_map_pages(op, mm, vma, vpage,
                                                  range(base + from_pte, base + to_pte)))

    def do_file_fault(self, op, mm, vma, vpage, write, tried=True):
        """``do_read_fault`` / ``do_shared_fault`` + ``finish_fault``.

        A shared writable mapping wants write-notify (``vma_wants_writenotify``),
        so a read fault maps the page read-only and a write fault maps it
        writable and dirty after ``do_page_mkwrite`` (folio marked dirty).
        ``filemap_fault`` of a first try (``tried`` false) may drop ``mmap_lock`` and
        return :data:`VM_FAULT_RETRY` (see :meth:`fault`). A read fault first tries
        :meth:`do_fault_around` (``should_fault_around``: the config's
        ``fault_around_pages`` > 1), which ends the fault where it mapped the page.
        """
        if not write and self.m.cfg.fault_around_pages > 1:  # do_read_fault
            if (yield from self.do_fault_around(op, mm, vma, vpage)):
                return "ok"  # VM_FAULT_NOPAGE: filemap_map_pages mapped the faulting page
        fid, pgoff = vma.file, vma.pgoff + vpage - vma.start
        frame = yield from self.filemap_get_folio(op, fid, pgoff, None if tried else mm)
        if frame is VM_FAULT_RETRY or frame is VM_FAULT_RETRY_MAJOR:
            return frame
        if frame is None:
            return "oom"
        flk = self.mem.folio_lock[frame]
        mm.pte_alloc(vpage)  # finish_fault: pte_alloc(vmf->prealloc_pte) once the page is read
        ptl = mm.ptl(vpage)
        yield from self.lock(op, ptl)
        if mm.ptes[vpage].kind != NONE:
            self.unlock(op, ptl)
            self.unlock(op, flk)
            return REFAULT
        self._install(op, mm, vma, vpage, frame, write, write, write)
        if write:
            self.mem.dirty[frame] = True
        self.unlock(op, ptl)
        self.unlock(op, flk)
        if write:  # do_shared_fault's end
            return (yield from self.fault_dirty_shared_page(op, mm, tried)) or "ok"
        return "ok"
