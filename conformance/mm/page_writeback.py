"""mm/page-writeback.c (Linux 6.12): writeback of one page-cache folio.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations



class PageWritebackPaths:
    """The paths of mm/page-writeback.c, mixed into :class:`conformance.mm.Kernel`."""

    def writeback(self, op, fid: int, pgoff: int):
        """``folio_write_one`` -> ``folio_clear_dirty_for_io`` + ``writepage`` of one page-cache page.

        Outside ``mmap_lock``. Skip if the page is not cached. ``folio_lock`` (wait;
        give up if the folio left the page cache meanwhile), ``folio_clear_dirty_for_io``:
        ``folio_mkclean`` (:mod:`conformance.mm.rmap`), re-dirty the folio if it cleaned any PTE, then clear
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
