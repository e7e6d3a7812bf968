"""mm/memory.c (Linux 6.12), the swap-in fault: ``do_swap_page``.

Split from :mod:`.fault` (which calls it from ``handle_mm_fault``) to keep each module
short. Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from ..mm_types import REFAULT, SWAP, VM_FAULT_RETRY, VM_FAULT_RETRY_MAJOR
from ..task import hook


class SwapinPaths:
    """``do_swap_page`` of mm/memory.c, mixed into :class:`conformance.mm.Kernel`."""

    def do_swap_page(self, op, mm, vma, vpage, write, tried=True):
        """``do_swap_page``: swap cache lookup or read, ``pte_same`` recheck, map.

        **Exclusive** (``pte_swp_exclusive``, or ``folio_ref_count == 1``): in a ``VM_WRITE``
        VMA the folio is mapped writable (``pte_mkwrite``, v6.11+) and dirty only on a write
        fault: a read fault leaves a writable *clean* PTE, the case where hardware rule 4
        matters. Simplification: the model has no per-PTE exclusive bit; the folio counts
        as exclusive when this is the slot's only swap entry, no PTE maps the folio and
        no fork shared it (``PhysMem.cow``, the model's ``!PageAnonExclusive``).

        **Not exclusive** (a fork sibling's swap entry of the same slot,
        ``copy_nonpresent_pte``; the folio mapped elsewhere; a fork-shared folio that
        reclaim kept): mapped read-only and shared, and it stays in the swap cache while
        another swap entry uses the slot (``folio_free_swap`` fails: ``folio_swapped``), so
        the sibling's swap-in finds that very folio. A write fault goes on to
        ``do_wp_page`` with the PTL held (the protocol's ``do_wp_page`` hook, then
        ``wp_can_reuse_anon_folio``, which copies while the folio is in the swap cache).
        Until 2026-12-07 the model mapped it writable and wrote the folio's data back to
        the slot for the sibling (F3 in docs/model.md): a store into a folio another mm's
        stale read-only entry still reached, a false C1 for LUF modules::

            CPU0 (mm0, the parent)                 CPU1 (mm1, a fork child)
                                                   caches mm1:v0 -> pfn0 RO
            reclaim pfn0: mm0:v0, mm1:v0 -> slot0,
              its flush deferred (LUF), pfn0 kept
              in the swap cache (a gather's ref)
            read fault mm0:v0: pfn0 RO, shared
            write fault: do_wp_page copies          mm1:v0 -> pfn0 still reads pfn0's
                                                    data: right

        ``folio_free_swap`` after ``swap_free``: where ``should_try_to_free_swap`` says so,
        a write fault with no other reference (``folio_ref_count == 2``); then the folio
        is exclusive if that left it ``folio_ref_count == 1``. Simplification: for an
        exclusive folio it is always tried (the kernel also leaves a read fault's folio in
        the swap cache, mapped writable, for reclaim), which marks the folio dirty.

        ``folio_lock_or_retry``: on a first try (``tried`` false), a folio someone else
        holds locked, or one whose read this fault has just started
        (``swapin_readahead``: the read is asynchronous and the folio stays locked until
        it ends), is waited for with ``mmap_lock`` dropped, and the fault returns
        :data:`VM_FAULT_RETRY` (see :meth:`fault`). Simplification: the
        ``SWP_SYNCHRONOUS_IO`` path (zram), which reads synchronously under ``mmap_lock``
        and skips the swap cache, is not modelled; a retried fault (``tried``) reads
        under ``mmap_lock`` in the swap cache instead.

        ``!pte_same`` after a swap-in read: if the swap entry is gone meanwhile (MADV_DONTNEED
        zapped it or MADV_FREE dropped it: ``free_swap_and_cache`` could not take the folio we
        hold locked), the folio is clean, unmapped and only in the swap cache. The kernel leaves
        it there for reclaim (``shrink_folio_list`` -> ``__remove_mapping``, no TLB work) or
        ``folio_free_swap``; simplification: we drop it from the swap cache and free it here,
        at once, instead of leaking it and its slot (:meth:`_swapin_unlock`).
        """
        mem = self.mem
        pte = mm.ptes[vpage]
        slot = pte.slot
        frame = mem.swap_cache.get(slot)
        if frame is not None:
            flk = mem.folio_lock[frame]
            if not tried and flk.owner is not None:  # folio_lock_or_retry, first try
                self.release_fault_lock(op, mm, f"folio_lock_or_retry(pfn{frame})")
                while flk.owner is not None:  # folio_wait_locked
                    op.blocked_on = flk
                    yield
                op.blocked_on = None
                return VM_FAULT_RETRY
            yield from self.lock(op, flk)
            if mem.swap_cache.get(slot) != frame:
                self.unlock(op, flk)
                return REFAULT
        else:
            frame = yield from self.alloc_frame_direct_reclaim(op, vma.location(vpage))
            if frame is None:
                return "oom"
            # the allocation's direct reclaim may have yielded: the entry changed (the
            # kernel's swapcache_prepare fails, NULL, !pte_same: return 0) or another task
            # read the slot in (-EEXIST: __read_swap_cache_async looks it up again)
            if not (pte.kind == SWAP and pte.slot == slot):
                self.put_folios([frame])
                return REFAULT
            if slot in mem.swap_cache:
                self.put_folios([frame])
                return (yield from self.do_swap_page(op, mm, vma, vpage, write, tried))
            yield from self.lock(op, mem.folio_lock[frame])
            mem.swap_cache[slot] = frame
            self.trace.msg(op, "swap_read_folio(slot%d -> pfn%d)", slot, frame)
            if not tried:  # folio_lock_or_retry finds the folio locked by the read it started
                self.release_fault_lock(op, mm, f"folio_lock_or_retry(pfn{frame})")
            yield  # read IO in flight
            mem.value[frame] = mem.swap[slot]
            if not tried:  # the read's folio_unlock in its IO completion, then the retry
                self._swapin_unlock(op, slot, frame)
                return VM_FAULT_RETRY_MAJOR  # the read was ours: ret = VM_FAULT_MAJOR
        flk = mem.folio_lock[frame]
        op.touched_frames[frame] = None
        ptl = mm.ptl(vpage)
        yield from self.lock(op, ptl)
        if not (pte.kind == SWAP and pte.slot == slot):  # !pte_same
            self.unlock(op, ptl)
            self._swapin_unlock(op, slot, frame)
            return REFAULT
        # pte_swp_exclusive (simplification: no per-PTE bit, see above)
        exclusive = mem.swap_map[slot] == 1 and not mem.rmap[frame] and not mem.cow[frame]
        # a reference besides ours and the swap cache's: a mapping, a gather, an isolation
        others = mem.rmap[frame] or mem.gathered[frame] or mem.isolated[frame] is not None
        mem.swap_map[slot] -= 1  # swap_free_nr
        if not mem.swap_map[slot] and (exclusive or write and not others):
            # should_try_to_free_swap (a write fault with no other reference;
            # simplification: always, for an exclusive folio)
            self.folio_free_swap(frame, slot)
        if not exclusive and not (others or slot in mem.swap_cache):
            exclusive = True  # folio_ref_count(folio) == 1
        if not mem.rmap[frame]:
            mem.owner[frame] = vma.location(vpage)
        mem.cow[frame] = not exclusive  # RMAP_EXCLUSIVE or not
        writable = exclusive and vma.writable
        self._install(op, mm, vma, vpage, frame, writable, write and writable, write)
        if not exclusive:
            # mapped read-only and shared; the folio stays in the swap cache while a swap
            # entry uses the slot (folio_free_swap fails), or for a read fault
            self.trace.msg(op, "do_swap_page(mm%d:v%d): not exclusive, read-only", mm.id, vpage)
        self.unlock(op, flk)
        if write and not writable:
            # ``do_swap_page``: ``if (vmf->flags & FAULT_FLAG_WRITE) ret |= do_wp_page(vmf)``,
            # the PTL still held: the copy of a folio that is not exclusive
            yield from hook(self.proto.do_wp_page(op, mm, vma, vpage))
            return (yield from self.wp_page_anon_locked(op, mm, vma, vpage))
        self.unlock(op, ptl)
        return "ok"

    def _swapin_unlock(self, op, slot: int, frame: int) -> None:
        """Unlock a swap-in's folio that it does not map (``!pte_same``, or a first try's
        ``VM_FAULT_RETRY``). If no swap entry refers to ``slot`` any more, the folio is
        clean, unmapped and only in the swap cache: simplification (see
        :meth:`do_swap_page`), it leaves the swap cache and is freed here, and the slot
        with it, where the kernel leaves both to reclaim or ``folio_free_swap``."""
        mem = self.mem
        unused = mem.swap_map[slot] == 0 and mem.swap_cache.get(slot) == frame \
            and not mem.rmap[frame]  # a mapped folio stays (TTRS_UNMAPPED)
        if unused:  # no swap entry left: the slot is free again
            self.folio_free_swap(frame, slot)
        self.unlock(op, mem.folio_lock[frame])
        if unused and self.last_reference(frame):
            mem.owner[frame] = "zapped"
            self.free_frames([frame])
