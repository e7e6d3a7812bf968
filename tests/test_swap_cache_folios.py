"""A folio that stays in the swap cache while mapped (2026-12-07, docs/model.md F3 and
section 11 item 9): a swap-in that is not exclusive (a fork sibling's swap entry uses the
slot) maps the folio read-only and leaves it in the swap cache, where reclaim and migration
now take it as the kernel's do (``folio_test_swapcache`` in ``shrink_folio_list``, the swap
cache slot in ``folio_migrate_mapping``)::

    CPU0 (mm0, the parent)                 CPU1
    write v0: pfn0 = 1000000
    fork -> mm1: pfn0 shared read-only
                                           reclaim pfn0: mm0:v0, mm1:v0 -> slot, freed
    read v0: swap-in reads the slot into
    pfnX, not exclusive: RO, stays in the
    swap cache (mm1's entry uses the slot)
                                           reclaim or migrate pfnX
"""
from conformance.config import MachineConfig
from conformance.machine import Machine
from conformance.mm.mm_types import PRESENT, SWAP
from conformance.registry import load_protocol


def shared_swap_cache_folio(name: str = "linux", mm1_loaded: bool = False):
    """The machine after the diagram's read swap-in: (machine, slot, frame, value).
    ``mm1_loaded``: CPU2 runs mm1 during the reclaim, so mm1 keeps a batched flush pending
    (``tlb_flush_batched``) that its next PTL holder's ``flush_tlb_batched_pending`` does."""
    m = Machine(load_protocol(name), MachineConfig(ncpus=3, nmms=3, populate=False))
    assert m.user_access(0, 0, True) == "fault"
    m.drain()
    assert m.user_access(0, 0, True) == "wrote"
    value = m.mem.value[m.mms[0].ptes[0].frame]
    m.fork(0, 1)
    m.drain()
    if mm1_loaded:
        m.switch_mm(2, 1)
    m.reclaim(1, (m.mms[0].ptes[0].frame,))
    m.drain()
    slot = m.mms[0].ptes[0].slot
    assert m.mms[1].ptes[0].kind == SWAP and m.mms[1].ptes[0].slot == slot
    assert m.user_access(0, 0, False) == "fault"
    m.drain()
    pte = m.mms[0].ptes[0]
    assert pte.kind == PRESENT and not pte.writable
    frame = pte.frame
    assert m.mem.swap_cache[slot] == frame and m.mem.swap_map[slot] == 1
    assert not m.mem.dirty[frame] and m.mem.cow[frame]
    return m, slot, frame, value


def _sibling_reads(m, value) -> int:
    """mm1's first access, on CPU2 (no entry of mm1 there): its swap-in; returns the frame."""
    m.switch_mm(2, 1)
    assert m.user_access(2, 0, False) == "fault"
    m.drain()
    assert m.user_access(2, 0, False) == value
    return m.mms[1].ptes[0].frame


def test_a_swap_in_that_is_not_exclusive_maps_read_only_and_the_sibling_maps_the_same_folio():
    m, slot, frame, value = shared_swap_cache_folio()
    assert m.user_access(0, 0, False) == value
    assert _sibling_reads(m, value) == frame
    # the last swap entry went on a read fault: the folio stays in the swap cache, mapped
    assert m.mem.swap_cache.get(slot) == frame and m.mem.swap_map[slot] == 0
    m.check_quiescent()


def test_reclaim_takes_a_mapped_swap_cache_folio_without_a_new_slot():
    m, slot, frame, value = shared_swap_cache_folio()
    free_slots = list(m.mem.swap_free)
    before = len(m.trace.events)
    m.reclaim(1, (frame,))
    m.drain()
    lines = [t for _, _, t in m.trace.lines()][before:]
    assert f"reclaim: pfn{frame} already in the swap cache (slot{slot})" in lines
    assert not any(t.startswith(f"pageout(pfn{frame} ") for t in lines)  # clean: on swap
    assert m.mms[0].ptes[0].kind == SWAP and m.mms[0].ptes[0].slot == slot
    assert m.mem.swap_map[slot] == 2 and m.mem.swap_free == free_slots
    assert m.mem.owner[frame] is None and slot not in m.mem.swap_cache  # freed
    got = _sibling_reads(m, value)  # read from the slot (the frame may be reused)
    assert f"swap_read_folio(slot{slot} -> pfn{got})" in [t for _, _, t in m.trace.lines()][-8:]
    m.check_quiescent()


def test_migration_moves_a_swap_cache_folio_and_its_slot():
    m, slot, frame, value = shared_swap_cache_folio()
    m.migrate(1, (frame,))
    m.drain()
    dst = m.mms[0].ptes[0].frame
    assert dst != frame and m.mem.swap_cache[slot] == dst
    assert not m.mms[0].ptes[0].writable and m.mem.cow[dst]
    assert m.mem.owner[frame] is None  # the source is freed
    assert _sibling_reads(m, value) == dst  # the sibling's swap-in finds the destination
    m.check_quiescent()


def test_a_write_copies_while_the_sibling_entry_uses_the_slot_and_reuses_after():
    m, slot, frame, value = shared_swap_cache_folio()
    assert m.user_access(0, 0, True) == "fault"  # do_wp_page: in the swap cache, copy
    m.drain()
    assert m.mms[0].ptes[0].frame != frame and m.mem.value[frame] == value
    assert m.mem.swap_cache[slot] == frame  # kept for mm1's entry
    m.switch_mm(2, 1)
    assert m.user_access(2, 0, True) == "fault"  # mm1's write swap-in: the last entry,
    m.drain()                                    # no other reference: exclusive, writable
    pte = m.mms[1].ptes[0]
    assert pte.frame == frame and pte.writable and slot not in m.mem.swap_cache
    assert not m.mem.cow[frame]
    m.check_quiescent()


def test_a_folio_a_gather_could_not_lock_leaves_the_swap_cache_at_the_holders_put():
    """A review's leak (2026-12-07): mm1's entry gone, mm0:v0 maps the swap-cache folio;
    MADV_COLD's split window holds the folio locked while MADV_DONTNEED zaps mm0:v0, so the
    gather's ``free_swap_cache`` cannot take it; the window's put must (it was left in the
    swap cache with a dead owner: a MODEL ERROR at the quiescent check)."""
    m, slot, frame, value = shared_swap_cache_folio()
    m.switch_mm(2, 1)
    m.madvise(2, 0, 1, "dontneed")
    m.drain()
    assert m.mem.swap_map[slot] == 0 and m.mem.swap_cache[slot] == frame
    cold = m.madvise(0, 0, 1, "cold")
    while m.mem.folio_lock[frame].owner is not cold:
        m.advance(cold.id)
    m.switch_mm(1, 0)
    dontneed = m.madvise(1, 0, 1, "dontneed")
    while dontneed in m.ops:
        m.advance(dontneed.id)
    assert m.mem.swap_cache.get(slot) == frame  # the gather's trylock failed
    m.drain()
    assert slot not in m.mem.swap_cache and m.mem.owner[frame] is None
    m.check_quiescent()


def test_a_swap_in_that_loses_its_entry_leaves_a_mapped_folio_in_the_swap_cache():
    """A review's finding (2026-12-07): mm1's swap-in holds the folio (which mm0 maps)
    locked and waits for mm1's PTL, held by a MADV_FREE that frees mm1's swap entry; the
    swap-in's ``!pte_same`` took the folio out of the swap cache though mm0 maps it (the
    kernel's ``__try_to_reclaim_swap`` leaves a mapped folio: ``TTRS_UNMAPPED``)."""
    m, slot, frame, value = shared_swap_cache_folio(mm1_loaded=True)
    m.switch_mm(2, 1)
    free = m.madvise(2, 0, 1, "free")
    ptl = m.mms[1].ptl(0)
    while ptl.owner is not free:
        m.advance(free.id)
    m.switch_mm(1, 1)
    assert m.user_access(1, 0, False) == "fault"
    fault = next(o for o in m.ops if o.cpu == 1)
    while fault.blocked_on is not ptl:
        m.advance(fault.id)
    assert m.mem.folio_lock[frame].owner is fault
    while free in m.ops:
        m.advance(free.id)
    m.drain()
    assert any("returns 0, the access restarts" in t for _, _, t in m.trace.lines())
    assert m.mem.swap_cache.get(slot) == frame and m.mms[0].ptes[0].frame == frame
    m.check_quiescent()
