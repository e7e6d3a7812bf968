"""mm/page_alloc.c, mm/swap.c (Linux 6.12): the page allocator, a frame's last reference.

``alloc_frame`` is where S1 (frame reuse) is judged, ``copy_out`` where S2 (copy-out) is:
the oracle is called at the point the kernel hands a page out or reads it away.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from ..errors import ModelError


#: ``SWAP_CLUSTER_MAX`` (include/linux/swap.h): a direct reclaim pass's batch and its
#: ``nr_to_reclaim`` (``try_to_free_pages``); it keeps a fault's pass within ``max_op_steps``
#: on a large machine (every LRU folio made a 66-folio pass run past the cap, a review)
SWAP_CLUSTER_MAX = 32

#: a direct reclaim pass's steps (``Op.steps``), as measured on the default machine: a
#: folio's isolation, trylock, pageout and free, and each PTE its ``try_to_unmap`` walks
#: (one PTL each); :meth:`PageAllocPaths._direct_reclaim_batch` keeps the sum under half
#: of ``max_op_steps``
STEPS_PER_FOLIO = 4
STEPS_PER_MAPPING = 2

#: what an owner in use means, for :meth:`PageAllocPaths.free_frames`'s error
_USE = {"other": "the other consumer holds it", "new": "a fault just allocated it"}


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

    def alloc_frame_direct_reclaim(self, op, owner):
        """A task's allocation that may sleep (``GFP_HIGHUSER_MOVABLE``, ``GFP_KERNEL``):
        ``__alloc_pages_slowpath``. When the free list is empty (``get_page_from_freelist``
        fails), ``__alloc_pages_direct_reclaim`` -> ``try_to_free_pages`` runs a direct
        reclaim pass in the allocating task (:meth:`shrink_node`: its own ``init_tlb_ubc``,
        final ``try_to_unmap_flush`` and free; ``task.path`` "reclaim" while it runs), then
        the allocation is tried again. A generator (the pass yields); returns the frame, or
        None (OOM) if the pass freed nothing the allocation could take.

        The faults' allocations (``alloc_anon_folio``, ``wp_page_copy``'s
        ``folio_prealloc``, ``filemap_alloc_folio`` in read-ahead, the swap-in's
        ``__read_swap_cache_async``) and ``write()``'s page cache allocation come here, with
        the task's ``mmap_lock`` (a fault) and, for the page cache, ``invalidate_lock``
        held for read, as in the kernel (a first try's read-in has dropped ``mmap_lock``
        before it, ``do_sync_mmap_readahead``). Until 2026-12-07 they failed at once with an OOM
        (docs/model.md section 11 item 29)::

            CPU0 (fault, mm0:v1)                     CPU1 (mm0)
            alloc_anon_folio: free list empty
            direct reclaim: try_to_unmap(A)          caches A's PTE
              (TTU_BATCH_FLUSH), pageout,
              try_to_unmap_flush, free A
            allocation takes A's frame (S1 here)     no entry for A may be left

        Simplified: the pass takes the first :data:`SWAP_CLUSTER_MAX` folios on the LRU,
        in frame order, as one batch (fewer on a machine whose folios are mapped many
        times over, :meth:`_direct_reclaim_batch`) (the kernel isolates at most that many per
        ``shrink_inactive_list`` and stops at ``nr_to_reclaim = SWAP_CLUSTER_MAX``; it
        scans the inactive list from its tail, by priority, with referenced bits and an
        active list; the model keeps no LRU order), and the allocation gives up after one
        pass (the kernel's ``should_reclaim_retry`` retries, then the OOM killer: here the
        fault ends in ``"oom"`` as before). With nothing on the LRU no pass runs. A dirty
        file folio is written back as kswapd's pass does (the default
        ``reclaim_activates_dirty_file=false``), where the kernel's direct reclaim always
        activates it (finding F1, docs/FINDINGS.md; the same holds for move_pages' nested
        pass). The other consumer (slab) allocates with :meth:`alloc_frame` and never reclaims.
        """
        frame = self.alloc_frame(op, owner)
        if frame is not None:
            return frame
        victims = self._direct_reclaim_batch()
        if not victims:
            return None
        self.trace.msg(op, "__alloc_pages_direct_reclaim")
        yield from self.direct_reclaim(op, victims)
        return self.alloc_frame(op, owner)

    def _direct_reclaim_batch(self) -> tuple:
        """The folios a direct reclaim pass takes: the LRU's in frame order, at most
        :data:`SWAP_CLUSTER_MAX` (``try_to_free_pages``' ``nr_to_reclaim``, the batch
        ``isolate_lru_folios`` takes), and cut where the pass's steps (about
        :data:`STEPS_PER_FOLIO` a folio and :data:`STEPS_PER_MAPPING` a PTE its
        ``try_to_unmap`` walks) would pass half of ``max_op_steps``, the model's guard
        against a hook that loops (simplified: the kernel's batch does not depend on the
        mappings; on a machine where 32 folios are mapped 32 times each the model's pass
        is shorter; one folio is always taken)."""
        mem = self.mem
        budget = self.m.cfg.max_op_steps // 2
        batch = []
        cost = 0
        for frame in range(len(mem.owner)):
            if not self._on_lru(frame):
                continue
            cost += STEPS_PER_FOLIO + STEPS_PER_MAPPING * len(mem.rmap[frame])
            if batch and cost > budget:
                break
            batch.append(frame)
            if len(batch) == SWAP_CLUSTER_MAX:
                break
        return tuple(batch)

    def free_frames(self, frames) -> None:
        """The page allocator's free (``free_unref_folios`` without policy).

        A frame must be unused when it is freed: every path that frees one first marks it
        dead (``"zapped"``, ``"isolated"``, ``"truncated"``, ``"discarded"``, the other
        consumer's ``"released"``). Freeing one that is free is a double free; freeing
        one in use (mapped or cached: a location; the other consumer's ``"other"``; a
        fault's ``"new"``) is one too, of a frame freed before and allocated again; so is
        freeing one something still references (``last_reference`` false: a gather, an
        isolation, a mapping), which a second free meets later. Caught
        here, under the hook that frees (a protocol's ``free_unref_folios`` freeing a list
        twice, a gather freed twice), it is that protocol's error; before, the second
        free passed and the frame's next owner raised it later, outside any hook, as a
        MODEL ERROR (the other consumer's free, a fault freeing its page).
        """
        owner = self.mem.owner
        for f in frames:
            o = owner[f]
            if o is None:
                raise ModelError(f"double free of pfn{f}")
            if o.__class__ is tuple or o == "other" or o == "new":
                use = _USE.get(o, "mapped or cached")
                raise ModelError(f"free of pfn{f}, which is in use ({use}): a double free of "
                                 "a frame freed before and allocated again")
            if not self.last_reference(f):  # dead, but a gather, an isolation or a mapping
                raise ModelError(f"free of pfn{f}, which is still referenced (mapped, "  # holds it
                                 "isolated, gathered or cached): freed before its last put")
            self.mem.put_free_frame(f)
            self.trace.event(None, "msg", "pfn%d freed", f)

    def put_folios(self, frames) -> None:
        """``folio_put`` of each of ``frames`` (once per frame) after its holder dropped its
        reference (an mmu_gather's ``gathered`` count, a madvise split window's): a frame
        with no reference left is dead and freed. A dead folio the swap cache let go of
        keeps its old location until here, so it is marked ``"zapped"``; a free frame stays
        free, and ``free_frames`` calls it a double free. An unmapped swap-cache folio whose
        slot no swap entry uses leaves the swap cache first (:meth:`free_swap_cache`: a
        gather's put skipped it while another holder had it locked; simplification, the
        kernel leaves it on the LRU for a later reclaim)."""
        frames = list(dict.fromkeys(frames))
        for f in frames:
            self.free_swap_cache(f)
        last = [f for f in frames if self.last_reference(f)]
        owner = self.mem.owner
        for f in last:
            if owner[f] is not None:
                owner[f] = "zapped"
        self.free_frames(last)

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
