"""Physical memory: frames and their contents, and, indexed by pfn beside them, what the
kernel keeps per frame (``struct page``/folio flags, the allocator's free list, the page
cache and swap of files and anonymous pages).

Simplification: the kernel's per-frame state lives here, one table per field indexed by
pfn, beside the frames' contents (the hardware), because every path and the oracle index
it by pfn; the code that changes it is the kernel's (:mod:`conformance.mm`).

* The allocator is LIFO: ``free_unref_folios`` puts a frame on the per-CPU
  free list and the next ``alloc_pages`` takes the most recently freed one
  first (pcp lists are LIFO for cache hotness), which is what turns a stale
  TLB entry into a leak.
* A frame's ``owner`` says what it holds: a page-cache page ``('f', file,
  pgoff)``, an anonymous page ``('a', anon_id, index)`` (``Vma.location``), ``'other'`` (the other
  consumer: slab or another process, Matthew Wilcox's scenario) or ``None``
  when free.
* ``rmap[frame]`` lists the PTEs mapping it, as (mm_id, vpage) in insertion
  order: our stand-in for ``anon_vma``/``i_mmap`` plus ``page_vma_mapped_walk``.
* Files have on-disk content and a page cache (``mapping->i_pages``); swap has
  slots and a swap cache (``swap_address_space``).
"""
from __future__ import annotations

from ..mm.mm_types import SleepLock


class File:
    """An inode: ``disk`` is what is on storage; ``cache`` maps pgoff -> frame."""

    __slots__ = ("id", "disk", "cache")

    def __init__(self, file_id: int, pages: int) -> None:
        self.id = file_id
        self.disk = [1000 * (file_id + 1) + p for p in range(pages)]
        self.cache: dict[int, int] = {}


class PhysMem:
    """Frames, allocator, files and swap."""

    __slots__ = ("value", "owner", "dirty", "lazyfree", "folio_lock", "free_list", "rmap", "isolated",
                 "rmap_locks",
                 "gathered", "window_refs", "files", "swap", "swap_free", "swap_cache", "swap_map",
                 "cow", "anon_root", "fork_copies")

    def __init__(self, nframes: int, nfiles: int, file_pages: int, swap_slots: int) -> None:
        self.value = [0] * nframes
        self.owner: list = [None] * nframes
        self.dirty = [False] * nframes  # PG_dirty of the folio in the frame
        # MADV_FREE'd anonymous folio (folio_mark_lazyfree: !PG_swapbacked); cleared when
        # the frame is freed or reallocated, or when reclaim finds it re-dirtied
        self.lazyfree = [False] * nframes
        self.folio_lock = [SleepLock(f"folio_lock(pfn{f})") for f in range(nframes)]
        # LIFO: the end of the list is handed out first.
        self.free_list = list(range(nframes - 1, -1, -1))
        self.rmap: list[dict] = [{} for _ in range(nframes)]
        # anon_vma->rwsem / mapping->i_mmap_rwsem, by ('a', anon_id) / ('f', file), made on use
        self.rmap_locks: dict = {}
        # References other than mappings and the page/swap cache (our folio refcount):
        # isolated[f] is the reclaim/migration holding it off the LRU (folio_isolate_lru);
        # gathered[f] counts the other references: mmu_gathers that will put it after their
        # flush, and a madvise split window's folio_get (_split_window).
        self.isolated: list = [None] * nframes
        self.gathered = [0] * nframes
        # window_refs[f]: 1 while a madvise split window's folio_get is counted in gathered[f]
        # (at most one window per folio: it holds the folio lock), so a gather's free can tell
        # a page it took from one a hook appended (Kernel._tlb_batch_pages_flush)
        self.window_refs: dict[int, int] = {}
        self.files = [File(i, file_pages) for i in range(nfiles)]
        self.swap = [0] * swap_slots
        self.swap_free = list(range(swap_slots - 1, -1, -1))
        self.swap_cache: dict[int, int] = {}  # slot -> frame
        self.swap_map = [0] * swap_slots  # swap entries (PTEs) referencing each slot
        # fork (Kernel.dup_mmap): cow[f] is !PageAnonExclusive of an anonymous folio that a
        # fork shared (cleared when a COW fault reuses it, and when the frame is freed);
        # anon_root[anon_id] the anon_vma root a forked anonymous memory hangs off
        # (anon_vma_fork); fork_copies[f]: (fork, child location, parent location) for each
        # entry a fork in flight has copied whose folio is f (a present PTE, a migration
        # entry, a swap entry whose slot is in the swap cache) until the fork's flush
        # (oracle bookkeeping: a store through the parent's still-writable TLB entry then
        # reaches both, as if it came before the fork; Machine._fork_window_store)
        self.cow = [False] * nframes
        self.anon_root: dict[int, int] = {}
        self.fork_copies: dict[int, list] = {}

    def take_free_frame(self):
        """The allocator's choice (``rmqueue``): the most recently freed frame, or None."""
        if not self.free_list:
            return None
        return self.free_list.pop()

    def put_free_frame(self, frame: int) -> None:
        """``free_unref_folios``/``free_unref_page``: back to the head of the free list."""
        self.owner[frame] = None
        self.dirty[frame] = False
        self.lazyfree[frame] = False
        self.cow[frame] = False
        self.free_list.append(frame)

    def alloc_slot(self):
        """``folio_alloc_swap``: a free swap slot, or None when swap is full."""
        if not self.swap_free:
            return None
        return self.swap_free.pop()

    def put_slot(self, slot: int) -> None:
        """Free ``slot`` once no swap entry and no swap-cache folio refer to it (``swap_free``)."""
        if self.swap_map[slot] == 0 and slot not in self.swap_cache:
            self.swap_free.append(slot)

    def swap_slot_of(self, frame: int):
        """The slot whose swap-cache folio ``frame`` is (``folio->swap``), or None.

        Example::

            >>> from conformance.machine import Machine
            >>> from conformance.registry import load_protocol
            >>> Machine(load_protocol("linux")).mem.swap_slot_of(0) is None
            True
        """
        for slot, f in self.swap_cache.items():
            if f == frame:
                return slot
        return None

    def is_mapped(self, frame: int) -> bool:
        """``folio_mapped``."""
        return bool(self.rmap[frame])
