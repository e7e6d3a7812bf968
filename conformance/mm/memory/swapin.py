"""mm/memory.c (Linux 6.12), the swap-in fault: ``do_swap_page``.

Split from :mod:`.fault` (which calls it from ``handle_mm_fault``) to keep each module
short. Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from ..mm_types import REFAULT, SWAP, VM_FAULT_RETRY
from ..task import hook


class SwapinPaths:
    """``do_swap_page`` of mm/memory.c, mixed into :class:`conformance.mm.Kernel`."""

    def do_swap_page(self, op, mm, vma, vpage, write, tried=True):
        """``do_swap_page``: swap cache lookup or read, ``pte_same`` recheck, map.

        The folio is exclusive, so in a ``VM_WRITE`` VMA it is mapped writable
        (``pte_mkwrite``, v6.11+) and dirty only on a write fault: a read fault
        leaves a writable *clean* PTE, the case where hardware rule 4 matters.
        Simplification: the swap slot is always freed on swap-in
        (``should_try_to_free_swap`` true), which marks the folio dirty; if a fork sibling
        still holds a swap entry of the slot, the slot first gets the folio's data (see
        below), where the kernel keeps the folio in the swap cache for the sibling.

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
                return VM_FAULT_RETRY
        flk = mem.folio_lock[frame]
        op.touched_frames[frame] = None
        ptl = mm.ptl(vpage)
        yield from self.lock(op, ptl)
        if not (pte.kind == SWAP and pte.slot == slot):  # !pte_same
            self.unlock(op, ptl)
            self._swapin_unlock(op, slot, frame)
            return REFAULT
        mem.owner[frame] = vma.location(vpage)
        self._install(op, mm, vma, vpage, frame, vma.writable, write and vma.writable, write)
        shared = mem.swap_map[slot] > 1
        if shared:
            # A fork sibling's swap entry still refers to the slot (``copy_nonpresent_pte``).
            # The kernel's ``folio_free_swap`` fails then (``folio_swapped``): the folio
            # stays in the swap cache, mapped read-only (not exclusive) until ``do_wp_page``
            # copies it, and the sibling's swap-in finds it there. Simplification: the slot
            # gets the folio's data (what the sibling's swap-in would map; nobody wrote the
            # unmapped folio since the fork) and the folio leaves the swap cache as above.
            # Without this the sibling read the slot as it was, stale when reclaim had kept
            # the folio without pageout (an mmu_gather's reference): a false C1 on ``linux``.
            mem.swap[slot] = mem.value[frame]
        del mem.swap_cache[slot]
        mem.swap_map[slot] -= 1
        mem.put_slot(slot)
        mem.dirty[frame] = True
        if shared and write:
            # The kernel maps a folio that is not exclusive read-only, unlocks it, and a write
            # fault goes on to ``do_wp_page`` under the PTL: the protocol's ``do_wp_page`` hook
            # (LUF v10's flush) runs there too (simplification F3: the model maps it writable)
            self.unlock(op, flk)
            yield from hook(self.proto.do_wp_page(op, mm, vma, vpage))
            self.unlock(op, ptl)
        else:
            self.unlock(op, ptl)
            self.unlock(op, flk)
        return "ok"

    def _swapin_unlock(self, op, slot: int, frame: int) -> None:
        """Unlock a swap-in's folio that it does not map (``!pte_same``, or a first try's
        ``VM_FAULT_RETRY``). If no swap entry refers to ``slot`` any more, the folio is
        clean, unmapped and only in the swap cache: simplification (see
        :meth:`do_swap_page`), it leaves the swap cache and is freed here, and the slot
        with it, where the kernel leaves both to reclaim or ``folio_free_swap``."""
        mem = self.mem
        unused = mem.swap_map[slot] == 0 and mem.swap_cache.get(slot) == frame
        if unused:  # no swap entry left: delete_from_swap_cache, the slot is free again
            del mem.swap_cache[slot]
            mem.put_slot(slot)
        self.unlock(op, mem.folio_lock[frame])
        if unused and self.last_reference(frame):
            mem.owner[frame] = "zapped"
            self.free_frames([frame])
