"""mm/mmu_gather.c (Linux 6.12): freeing what an ``mmu_gather`` batched.

The gather's flush itself is the protocol's (``tlb_flush_mmu_tlbonly`` and friends,
:class:`conformance.protocol.Protocol`); the kernel side kept here frees the pages after it.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from ..errors import HookRuleBroken

#: the hooks that free what a gather holds before ``tlb_finish_mmu`` returns (the base
#: class's ``tlb_finish_mmu`` calls ``tlb_flush_mmu``, which frees): its callers check
#: that they did (``Machine.left_by_hooks``)
GATHER_FREES = ("tlb_finish_mmu", "tlb_flush_mmu")


class MmuGatherPaths:
    """The paths of mm/mmu_gather.c, mixed into :class:`conformance.mm.Kernel`."""

    def _tlb_batch_pages_flush(self, tlb) -> None:
        """``tlb_batch_pages_flush`` -> ``free_pages_and_swap_cache``: ``free_swap_cache``
        of each page, then ``folio_put``."""
        if tlb.pages:
            pages, tlb.pages = tlb.pages, []
            mem = self.mem
            for f in pages:
                if f.__class__ is not int or not 0 <= f < len(mem.gathered) \
                        or mem.gathered[f] - mem.window_refs.get(f, 0) <= 0:
                    # only __tlb_remove_page adds to pages, with a reference: a hook wrote
                    # this one (tlb.pages.append(999) was a MODEL ERROR: an audit, 2026-12-06;
                    # the frame of a madvise split window, whose folio_get is counted in
                    # gathered too, passed until 2026-12-07)
                    raise HookRuleBroken(
                        f"the gather's pages hold {f!r}, a page no gather took a reference "
                        "on: a hook may free a gather's pages, not add to them")
                mem.gathered[f] -= 1
            self.put_folios(pages)  # each free_swap_cache'd first

    def free_swap_cache(self, frame: int) -> None:
        """``free_swap_cache`` (mm/swap_state.c): a swap-cache folio no PTE maps leaves the
        swap cache if ``folio_trylock`` succeeds and no swap entry uses its slot
        (``folio_free_swap``: ``folio_swapped`` false), marked dirty. Only a swap-in that
        was not exclusive leaves a mapped folio in the swap cache (``do_swap_page``).
        Called by ``free_pages_and_swap_cache`` (the gather's put) and ``wp_page_copy``, as
        in the kernel, and by the model's other puts (:meth:`put_folios`,
        :meth:`put_isolated`), which free such a folio at once where the kernel leaves it
        to reclaim."""
        mem = self.mem
        if mem.rmap[frame] or mem.folio_lock[frame].owner is not None:
            return
        slot = mem.swap_slot_of(frame)
        if slot is not None and not mem.swap_map[slot]:
            self.folio_free_swap(frame, slot)

    def folio_free_swap(self, frame: int, slot: int) -> None:
        """``folio_free_swap`` (mm/swapfile.c) once its caller knows no swap entry uses
        ``slot``: ``delete_from_swap_cache`` (the slot is free again) and
        ``folio_set_dirty`` (the data now lives only in the folio)."""
        mem = self.mem
        del mem.swap_cache[slot]
        mem.put_slot(slot)
        mem.dirty[frame] = True

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
        self._keep(op, frame, kept)
