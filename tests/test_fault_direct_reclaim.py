"""A task's allocation enters direct reclaim when the free list is empty
(``Kernel.alloc_frame_direct_reclaim``, docs/model.md section 11 item 29): a fault's
``alloc_anon_folio``, its page cache read-in and its swap-in.

The default machine: mm0 runs on CPU0 and CPU2 (v0, v1 anonymous: pfn0, pfn1; v2, v3 file
pages), mm1 on CPU1 (file pages only). Each test empties the free list through the other
consumer first, so the fault's allocation has to reclaim.
"""
from conformance.errors import Failure
from conformance.machine import Machine
from conformance.mm.mm_types import PRESENT
from conformance.registry import load_protocol
from conformance.reproducer import replay_actions

LINUX = load_protocol("linux")


class ReclaimNoFlush(LINUX):
    """A broken protocol: reclaim never flushes what it deferred (``try_to_unmap_flush``
    does nothing), so the frames it frees are still cached."""
    name = "mutant-reclaim-no-flush"

    def try_to_unmap_flush(self, task):
        pass


def exhaust(m):
    """The other consumer takes every free frame."""
    while m.consumer_alloc() is not None:
        pass
    assert not m.mem.free_list


def lines(m):
    return [t for _, _, t in m.trace.lines()]


def anon_fault_under_pressure(m):
    """mm0's v0 and v1 are zapped (their frames go to the other consumer with the rest),
    then CPU0 writes v1: ``alloc_anon_folio`` finds no free frame and reclaims the clean
    file folios, which CPU1 and CPU2 cache."""
    m.madvise(0, 0, 2, "dontneed")
    m.drain()
    exhaust(m)
    assert m.user_access(0, 1, True) == "fault"
    m.drain()


def outcome(cls, schedule):
    m = Machine(cls)
    try:
        schedule(m)
        m.check_quiescent()
    except Failure as f:
        return m, f.rule
    return m, None


def test_a_fault_allocation_reclaims_and_maps_what_it_freed():
    m, rule = outcome(LINUX, anon_fault_under_pressure)
    assert rule is None
    text = lines(m)
    at = [next(i for i, t in enumerate(text) if s in t)
          for s in ("fault(mm0:v1,W): start", "__alloc_pages_direct_reclaim",
                    "arch_tlbbatch_flush", "alloc_anon_folio -> pfn", "fault(mm0:v1,W): return")]
    assert at == sorted(at)
    pte = m.mms[0].ptes[1]
    assert pte.kind == PRESENT and pte.writable
    assert "fault: OOM" not in text


def test_the_direct_reclaim_of_a_fault_catches_a_missing_reclaim_flush():
    """The checker fails the broken protocol through this path (S1 where the fault takes a
    frame CPU1 still caches) and passes mainline on the same schedule; the actions replay."""
    m, rule = outcome(ReclaimNoFlush, anon_fault_under_pressure)
    assert rule == "S1"
    acts = [[n, list(a)] for n, a in m.actions]
    assert replay_actions(ReclaimNoFlush, m.cfg, False, acts).rule == "S1"
    assert replay_actions(LINUX, m.cfg, False, acts) is None


def test_with_nothing_on_the_lru_the_fault_is_oom():
    """No LRU folio: no pass runs (no init_tlb_ubc, no flush), the fault ends in OOM."""
    def schedule(m):
        m.madvise(0, 0, 2, "dontneed")
        m.drain()
        for frame, owner in enumerate(m.mem.owner):
            if owner is not None and owner.__class__ is tuple:
                m.reclaim(1, (frame,))
                m.drain()
        exhaust(m)
        m.user_access(0, 1, True)
        m.drain()
    m, rule = outcome(LINUX, schedule)
    assert rule is None
    text = lines(m)
    assert "fault: OOM" in text and "__alloc_pages_direct_reclaim" not in text


def run_inside_the_pass(m, op, start_other, until=lambda m, other: other not in m.ops):
    """Advance fault ``op`` into its direct reclaim, free one frame (the other consumer),
    start ``start_other(m)`` and run it, first whenever it can, until ``until``."""
    while "__alloc_pages_direct_reclaim" not in lines(m):
        m.advance(op.id)
    m.advance(op.id)
    assert m.consumer_free()
    other = start_other(m)
    while not until(m, other):
        m.advance(other.id if other.runnable() else op.id)
    return other


def fault_op(m, cpu):
    return next(o for o in m.ops if o.cpu == cpu)


def evicted_then_read(frame, vpage):
    """Reclaim ``frame`` (kswapd on CPU1), exhaust the free list, and read ``vpage`` of mm0
    on CPU0: a fault whose allocation will reclaim. Returns the machine and the fault."""
    m = Machine(LINUX)
    m.reclaim(1, (frame,))
    m.drain()
    exhaust(m)
    assert m.user_access(0, vpage, False) == "fault"
    return m, fault_op(m, 0)


def test_a_page_read_in_during_the_pass_is_not_read_in_twice():
    """``filemap_add_folio``'s -EEXIST: file0:1 (pfn3, mapped by mm0:v3 and mm1:v1) is
    evicted; CPU0's read fault reclaims for its read-in, and CPU1 reads the page in
    meanwhile; CPU0 frees its frame and finds CPU1's (until this check it overwrote the
    page cache slot, a ModelError at the quiescent check)."""
    m, op = evicted_then_read(3, 3)
    run_inside_the_pass(m, op, lambda m: (m.user_access(1, 1, False), fault_op(m, 1))[1])
    m.drain()
    m.check_quiescent()
    cached = m.mem.files[0].cache[1]
    assert list(m.mem.owner).count(("f", 0, 1)) == 1 and m.mem.owner[cached] == ("f", 0, 1)
    assert "__alloc_pages_direct_reclaim" in lines(m)


def test_a_slot_read_in_during_the_pass_is_looked_up_again():
    """``__read_swap_cache_async``'s -EEXIST: mm0:v0 is swapped out; CPU0's swap-in fault
    reclaims for its folio, and CPU2 (mm0 too) starts reading the slot in meanwhile; CPU0
    frees its frame and finds CPU2's folio in the swap cache. With CPU2's fault run to its
    end instead, CPU0's entry is gone (!pte_same): its fault returns to user space."""
    for finish_other in (False, True):
        m, op = evicted_then_read(0, 0)

        def in_swap_cache(m, other):
            return bool(m.mem.swap_cache) or other not in m.ops
        run_inside_the_pass(m, op, lambda m: (m.user_access(2, 0, False), fault_op(m, 2))[1],
                            until=(lambda m, o: o not in m.ops) if finish_other
                            else in_swap_cache)
        m.drain()
        m.check_quiescent()
        loc = m.mms[0].find_vma(0).location(0)
        assert list(m.mem.owner).count(loc) == 1
        text = lines(m)
        assert "__alloc_pages_direct_reclaim" in text
        assert any("fault(mm0:v0): return" in t for t in text)
