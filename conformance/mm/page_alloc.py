"""mm/page_alloc.c, mm/swap.c (Linux 6.12): the page allocator, a frame's last reference.

``alloc_frame`` is where S1 (frame reuse) is judged, ``copy_out`` where S2 (copy-out) is:
the oracle is called at the point the kernel hands a page out or reads it away.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from ..errors import ModelError


class PageAllocPaths:
    """The paths of mm/page_alloc.c, mm/swap.c, mixed into :class:`conformance.mm.Kernel`."""

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

    def copy_out(self, op, frame: int) -> int:
        """Content leaves a frame (pageout, migration copy, writeback): S2 is checked here."""
        self.oracle.check_s2(frame, op)
        return self.mem.value[frame]

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
