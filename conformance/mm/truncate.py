"""mm/truncate.c (Linux 6.12): hole punch (``truncate_inode_pages_range`` after
``unmap_mapping_range``).

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from .task import hook

class TruncatePaths:
    """The paths of mm/truncate.c, mixed into :class:`conformance.mm.Kernel`."""

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
        0, and a later fault reads a new zero-filled page-cache page. Between the two, the
        hook ``truncate_inode_pages_range`` (the end of that function: LUF v12's
        ``luf_flush(0)``).
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
        # out: (LUF v12 flushes here and right after filemap_remove_folio; with one page and
        # nothing that could map the removed folio again in between, one call is both)
        yield from hook(self.proto.truncate_inode_pages_range(op, fid, pgoff))
        f.disk[pgoff] = 0  # the blocks are freed: a hole
        self.oracle.expected[loc] = 0
        self.trace.msg(op, "fallocate(file%d:%d, PUNCH_HOLE)", fid, pgoff)
        self.up_write(op, inv)
        self.m.log_return(op)
        for mm, vp in visited:
            self.oracle.check_s3(op, mm, vp, vp + 1, "truncate")
