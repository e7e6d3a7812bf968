"""The model's own bookkeeping, checked when nothing is in flight: every frame and swap slot
is accounted for.

A model bug that loses a frame (a folio the page cache no longer points to, a destination
frame nothing frees, a second folio for one swap slot) does not fail a protocol by itself;
it quietly changes what the allocator hands out next, and an entry to the lost frame is
judged against a location nothing uses. Three such leaks were found by reading code
(docs/model.md section 11 items 24 and 29); this check finds the next one in every run that
reaches a quiescent state (``Machine.check_quiescent``), so the soundness campaign and
every test exercise it. Its errors are MODEL ERRORs, never a protocol's verdict.

What "accounted for" means, as the kernel would have it once every task is back in user
space (no reclaim, migration, gather or fault holding a reference):

* a free frame (owner None) is on the free list once, and every frame on it is free
  (``free_unref_folios`` / ``rmqueue``);
* the other consumer's frames (owner ``"other"``) are the ones it holds;
* a page cache folio (``("f", file, pgoff)``) is the one ``mapping->i_pages`` holds there;
* an anonymous folio is mapped by a PTE or is in the swap cache (``folio_mapped`` or
  ``folio_test_swapcache``: otherwise its last reference went and it was freed);
* no frame is still isolated or gathered, and no dead frame (``"zapped"``, ...) is left
  unfreed: whoever dropped the last reference freed it;
* a swap slot is free exactly when no swap entry and no swap-cache folio refer to it
  (``swap_free`` / ``put_swap_folio``), ``swap_map`` counts the swap PTEs, and the swap
  cache holds anonymous folios that a swap entry or a PTE uses (the kernel would leave an
  unused one on the LRU for reclaim; the model's puts free one at once, ``free_swap_cache``,
  since its owner is dead, and one left over is lost);
* every present PTE is in its frame's ``rmap`` and every ``rmap`` entry is a present PTE of
  that frame (``folio_mapcount``), and no migration entry is left.

Example::

    >>> from conformance.machine import Machine
    >>> from conformance.protocol import Protocol
    >>> m = Machine(Protocol)
    >>> unaccounted(m) is None
    True
    >>> m.mem.files[0].cache.pop(0)   # a page cache folio the cache forgets: a leak
    2
    >>> unaccounted(m)
    "pfn2 ('f', 0, 0) is lost: the page cache holds pfn- at file0:0"
"""
from __future__ import annotations

from .mm.mm_types import NONE, PRESENT, SWAP


def unaccounted(m) -> str | None:
    """The first frame or swap slot of quiescent machine ``m`` that is not accounted for
    (the module's rules), as one line, or None."""
    mem = m.mem
    free = mem.free_list
    if len(set(free)) != len(free):
        return f"the free list holds a frame twice: {sorted(free)}"
    on_free = set(free)
    consumer = set(m.consumer_frames)
    cached = set(mem.swap_cache.values())
    for frame, owner in enumerate(mem.owner):
        if (owner is None) != (frame in on_free):
            return (f"pfn{frame} is {'free' if owner is None else repr(owner)} but "
                    f"{'not ' if frame not in on_free else ''}on the free list")
        if (owner == "other") != (frame in consumer):
            return f"pfn{frame} is {owner!r} but the other consumer {'does not hold' if frame not in consumer else 'holds'} it"
        if mem.isolated[frame] is not None or mem.gathered[frame]:
            return f"pfn{frame} {owner!r} is still isolated or gathered with nothing in flight"
        if owner is None or owner == "other":
            continue
        if owner.__class__ is not tuple:
            return f"pfn{frame} is dead ({owner!r}) but was never freed"
        if owner[0] == "f":
            at = mem.files[owner[1]].cache.get(owner[2])
            if at != frame:
                return (f"pfn{frame} {owner!r} is lost: the page cache holds "
                        f"pfn{'-' if at is None else at} at file{owner[1]}:{owner[2]}")
        elif not mem.rmap[frame] and frame not in cached:
            return f"pfn{frame} {owner!r} is lost: no PTE maps it and the swap cache does not hold it"
    for f in mem.files:
        for pgoff, frame in f.cache.items():
            if mem.owner[frame] != ("f", f.id, pgoff):
                return f"file{f.id}:{pgoff}'s page cache folio pfn{frame} is {mem.owner[frame]!r}"
    free_slots = set(mem.swap_free)
    if len(free_slots) != len(mem.swap_free):
        return f"the swap free list holds a slot twice: {sorted(mem.swap_free)}"
    for slot, frame in mem.swap_cache.items():
        owner = mem.owner[frame]
        if owner.__class__ is not tuple or owner[0] != "a":
            return f"slot{slot}'s swap cache folio pfn{frame} is {owner!r}"
        if not mem.swap_map[slot] and not mem.rmap[frame]:
            # the kernel leaves such a folio to reclaim; the model's paths free it at once
            # instead (its owner would be dead, so reclaim could never take it)
            return (f"slot{slot}'s swap cache folio pfn{frame} is lost: no swap entry and "
                    "no PTE uses it, and nothing in the model frees it")
    entries = [0] * len(mem.swap_map)
    mapped = 0
    for mm in m.mms:
        for vpage, pte in enumerate(mm.ptes):
            if pte.kind == SWAP:
                entries[pte.slot] += 1
            elif pte.kind == PRESENT:
                mapped += 1
                if (mm.id, vpage) not in mem.rmap[pte.frame]:
                    return f"mm{mm.id}:v{vpage} maps pfn{pte.frame}, whose rmap does not list it"
            elif pte.kind != NONE:
                return f"mm{mm.id}:v{vpage} is still a migration entry with nothing in flight"
    if mapped != sum(len(r) for r in mem.rmap):
        frame = next(f for f, r in enumerate(mem.rmap)
                     if any(m.mms[i].ptes[v].kind != PRESENT or m.mms[i].ptes[v].frame != f
                            for i, v in r))
        return f"pfn{frame}'s rmap lists a PTE that does not map it: {list(mem.rmap[frame])}"
    if entries != mem.swap_map:
        slot = next(s for s, n in enumerate(entries) if n != mem.swap_map[s])
        return (f"slot{slot} counts {mem.swap_map[slot]} swap entries (swap_map) where "
                f"{entries[slot]} PTEs hold one")
    for slot, users in enumerate(mem.swap_map):
        used = users > 0 or slot in mem.swap_cache
        if used == (slot in free_slots):
            return (f"slot{slot} is {'in use' if used else 'unused'} ({users} swap entries) "
                    f"but {'on' if used else 'not on'} the swap free list")
    return None
