"""mm/filemap.c (Linux 6.12): the page cache lookup and ``write()``.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from ..errors import ModelError
from .task import hook


class FilemapPaths:
    """The paths of mm/filemap.c, mixed into :class:`conformance.mm.Kernel`."""

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
