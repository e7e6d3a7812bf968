"""mm/filemap.c (Linux 6.12): the page cache lookup and ``write()``.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from ..errors import ModelError
from .mm_types import NONE, VM_FAULT_RETRY, VM_FAULT_RETRY_MAJOR
from .task import hook


class FilemapPaths:
    """The paths of mm/filemap.c, mixed into :class:`conformance.mm.Kernel`."""

    def filemap_get_folio(self, op, fid: int, pgoff: int, fault_mm=None):
        """``filemap_fault``/``filemap_get_folio``: find or read in, return it locked.

        Retries if the folio left the page cache while we waited for its lock
        (``folio->mapping`` check). Returns None on OOM.

        ``fault_mm``: the mm of a fault's first try (``FAULT_FLAG_ALLOW_RETRY`` without
        ``FAULT_FLAG_TRIED``), whose ``mmap_read_lock`` ``filemap_fault`` may drop:
        ``lock_folio_maybe_drop_mmap`` drops it before sleeping on a folio another task
        holds locked, and ``do_sync_mmap_readahead`` (``maybe_unlock_mmap_for_io``) before
        reading a page that is not in the page cache. Once dropped (``fpin``), the folio
        is unlocked again when it is found or read, and :data:`VM_FAULT_RETRY` is
        returned (``out_retry``). Simplifications: readahead reads the one page;
        ``VM_RAND_READ``, ``mmap_miss`` and ``do_async_mmap_readahead`` are not
        modelled (a miss always drops the lock, as read-around does).
        """
        f = self.mem.files[fid]
        loc = ("f", fid, pgoff)
        dropped = False  # fpin
        major = False  # filemap_fault's ret = VM_FAULT_MAJOR: the page was not cached
        for _attempt in range(50):
            frame = f.cache.get(pgoff)
            if frame is not None:
                flk = self.mem.folio_lock[frame]
                if fault_mm is not None and not dropped and flk.owner is not None:
                    self.release_fault_lock(op, fault_mm, "lock_folio_maybe_drop_mmap")
                    dropped = True
                yield from self.lock(op, flk)
                if f.cache.get(pgoff) != frame:
                    self.unlock(op, flk)
                    continue
                if dropped:  # if (fpin) { folio_unlock(folio); goto out_retry; }
                    self.unlock(op, flk)
                    return VM_FAULT_RETRY_MAJOR if major else VM_FAULT_RETRY
                op.touched_frames[frame] = None
                return frame
            major = True
            if fault_mm is not None and not dropped:  # do_sync_mmap_readahead
                self.release_fault_lock(op, fault_mm, "do_sync_mmap_readahead")
                dropped = True
            inv = self.invalidate_lock(fid)
            yield from self.down_read(op, inv)  # no page cache folio: read it in
            if f.cache.get(pgoff) is not None:  # someone read it in while we waited
                self.up_read(op, inv)
                continue
            frame = yield from self.alloc_frame_direct_reclaim(op, loc)
            if frame is None:
                self.up_read(op, inv)
                return VM_FAULT_RETRY_MAJOR if dropped else None
            if f.cache.get(pgoff) is not None:
                # read in meanwhile, while the allocation's direct reclaim yielded:
                # filemap_add_folio's -EEXIST, folio_put, look it up again
                self.put_folios([frame])
                self.up_read(op, inv)
                continue
            flk = self.mem.folio_lock[frame]
            yield from self.lock(op, flk)
            f.cache[pgoff] = frame  # filemap_add_folio, locked, !uptodate
            self.trace.msg(op, "page cache: file%d:%d read into pfn%d", fid, pgoff, frame)
            yield  # read IO in flight
            self.mem.value[frame] = f.disk[pgoff]
            self.up_read(op, inv)
            if dropped:  # the read's folio_unlock; then out_retry
                self.unlock(op, flk)
                return VM_FAULT_RETRY_MAJOR
            return frame
        raise ModelError("filemap_get_folio: no progress")

    def filemap_map_pages(self, op, mm, vma, vpage, window):
        """``filemap_map_pages`` (``vm_ops->map_pages`` of :meth:`do_fault_around`'s window):
        map the page cache's folios in ``window`` read-only. ``next_uptodate_folio`` takes
        the first cached folio ``folio_trylock`` gets (a locked one, a read in flight
        included, is skipped); none: nothing happens (no table, no PTL). Else the table is
        allocated (``filemap_map_pmd`` installs the preallocated one), the PTL taken, and
        that folio and each later one the trylock gets is mapped where its PTE is none
        (``set_pte_range``: not writable, not dirty, ``folio_add_file_rmap_ptes``; the
        protocol's ``fault_install_pte``, as for ``finish_fault``'s ``set_pte_range``), then
        unlocked. Returns whether ``vpage`` was mapped.

        Simplifications: one page per folio; no ``mmap_miss`` accounting; a folio under
        writeback is skipped (the model's writeback holds the folio lock through its IO,
        K11; the kernel's maps it); one isolated by reclaim and unlocked is mapped, as the
        kernel's is."""
        cache = self.mem.files[vma.file].cache
        locks = self.mem.folio_lock
        first = None  # next_uptodate_folio's first folio, locked before the table and PTL
        for vp in window:
            frame = cache.get(vma.pgoff + vp - vma.start)
            if frame is not None and self.trylock(op, locks[frame]):
                first = vp
                break
        if first is None:
            return False
        self.trace.msg(op, "do_fault_around(mm%d:v%d..v%d)", mm.id, window[0], window[-1])
        mm.pte_alloc(vpage)  # filemap_map_pmd: the preallocated table
        ptl = mm.ptl(vpage)
        yield from self.lock(op, ptl)
        mapped = False
        for vp in range(first, window[-1] + 1):
            frame = cache.get(vma.pgoff + vp - vma.start)
            if vp != first and (frame is None or not self.trylock(op, locks[frame])):
                continue
            if mm.ptes[vp].kind == NONE:  # filemap_map_order0_folio: pte_none
                op.touched_vps[(mm.id, vp)] = None
                op.touched_locs[vma.location(vp)] = None
                self._install(op, mm, vma, vp, frame, False, False, False)
                mapped = mapped or vp == vpage
            self.unlock(op, locks[frame])
        self.unlock(op, ptl)
        return mapped

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
