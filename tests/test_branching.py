"""Certify's walk branches at a broken read-modify-write (conformance/search/conflict.py,
docs/SEARCH.md "Branching at a broken read-modify-write")."""
from __future__ import annotations

from conformance.config import MachineConfig
from conformance.hookpoints import paused_hook, watching
from conformance.machine import Machine
from conformance.registry import load_protocol
from conformance.reproducer import replay_actions
from conformance.search import walk
from conformance.search.conflict import ConflictWatch, rmw_fields

#: the 2.7 litmus file's machine (litmus/bug-2.7-lost-pending-flush.litmus)
SMALL = MachineConfig(populate=False, ncpus=2)


def _window_of_2_7(name: str, refill: bool):
    """The litmus file's prologue (v0 written, v2 read, reclaimed v0 leaving the mm
    pending), then munmap(v0) on CPU0 until it is paused inside
    ``flush_tlb_batched_pending`` (flushed, not yet cleared), then (if ``refill``) v2
    re-cached on CPU0, then reclaim of v2 on CPU1 until the watch marks or it returns.
    Returns the watch's mark and the actions logged when the reclaim stopped."""
    m = Machine(load_protocol(name), SMALL)
    for vp, write in ((0, True), (2, False)):
        while m.user_access(0, vp, write) == "fault":
            m.drain()
    m.reclaim(1, (m.frame_of(0, 0),))
    m.drain()
    w = ConflictWatch(m)
    with watching(w):
        mu = m.munmap(0, 0, 1)
        while paused_hook(mu) != "flush_tlb_batched_pending":
            m.advance(mu.id)
        if refill:
            m.fill(0, 2)
        r2 = m.reclaim(1, (m.frame_of(0, 2),))
        while w.mark is None and r2 in m.ops:
            m.advance(r2.id)
    return w.mark, len(m.actions)


def test_rmw_fields_are_what_a_hook_reads_and_writes_back():
    assert rmw_fields(load_protocol("linux_4_13"), "flush_tlb_batched_pending") == {"tlb_flush_batched"}
    # 4.13's set_tlb_ubc_flush_pending only stores the bool (it overrides without super())
    assert rmw_fields(load_protocol("linux_4_13"), "set_tlb_ubc_flush_pending") == frozenset()
    # mainline's reads the generation word and stores it incremented
    assert rmw_fields(load_protocol("linux"), "set_tlb_ubc_flush_pending") == {"tlb_flush_batched"}
    assert rmw_fields(load_protocol("immediate"), "flush_tlb_batched_pending") == frozenset()


def test_the_watch_marks_reclaims_store_inside_the_munmaps_flush_and_clear():
    """2.7's moment: reclaim's ``set_tlb_ubc_flush_pending`` stores the mm's flag while the
    munmap is paused between its flush and its clear, v2's entry cached. The mark is the
    action count at that store, in 4.13 (where the clear loses it) as in mainline (where
    the cmpxchg keeps it): the watch marks moments, what runs after them decides."""
    for name in ("linux_4_13", "linux"):
        mark, logged = _window_of_2_7(name, refill=True)
        assert mark is not None and mark == logged, name


def test_no_mark_without_a_stale_entry_of_that_mm():
    """The same interleaving with v2 not re-cached: the munmap's flush emptied CPU0's TLB, so
    the reclaim's store leaves nothing stale behind and the watch stays quiet."""
    mark, _ = _window_of_2_7("linux_4_13", refill=False)
    assert mark is None


def test_two_calls_of_one_hook_racing_on_its_field_are_no_mark():
    """Two reclaims of mainline in ``set_tlb_ubc_flush_pending`` at once: the second's store
    lands inside the first's read-modify-write of ``tlb_flush_batched``, but it is the
    same hook (a counter bump racing itself), so no branch."""
    m = Machine(load_protocol("linux"), MachineConfig(populate=False, ncpus=3))
    for vp, write in ((0, True), (2, False)):  # two page tables: two PTLs
        while m.user_access(0, vp, write) == "fault":
            m.drain()
    calls = []
    w = ConflictWatch(m)

    def watch(state, field):
        calls.append([paused_hook(o) for o in m.ops])
        w(state, field)
    with watching(watch):
        ra = m.reclaim(1, (m.frame_of(0, 0),))
        while paused_hook(ra) != "set_tlb_ubc_flush_pending":
            m.advance(ra.id)
        rb = m.reclaim(2, (m.frame_of(0, 2),))
        while rb in m.ops:
            m.advance(rb.id)
    assert any("set_tlb_ubc_flush_pending" in c for c in calls)  # the store did land inside
    assert w.mark is None


def test_a_branch_finds_what_the_example_missed_and_replays_byte_for_byte():
    """Seed 1260 of ``linux_4_13`` (the default machine) passes without branching; a branch
    from its broken read-modify-write fails S3. The failure's actions (the replayed
    prefix, then the branch) replay to the same failure without any driver; the same seed
    passes under mainline, whose branches run too. (Seed 231 until 2026-12-07 15:00, when
    tlb_end_vma stopped flushing, MMU_GATHER_MERGE_VMAS: its example now finds no S3; 1260
    is the first of seeds 0.. with all three properties.)"""
    cls = load_protocol("linux_4_13")
    seed = 1260
    saved = walk.SWARM_BRANCHES
    try:
        walk.SWARM_BRANCHES = 0
        assert walk.run_example(cls, seed=seed, swarm=True).failure is None
    finally:
        walk.SWARM_BRANCHES = saved
    ex = walk.run_example(cls, seed=seed, swarm=True)
    assert ex.failure is not None and ex.failure.rule == "S3"
    again = walk.run_example(cls, seed=seed, swarm=True)
    assert again.machine.actions == ex.machine.actions and again.steps == ex.steps
    replayed = replay_actions(cls, ex.machine.cfg, False, ex.machine.actions)
    assert str(replayed) == str(ex.failure)
    linux = walk.run_example(load_protocol("linux"), seed=seed, swarm=True)
    assert linux.failure is None
    assert linux.steps > len(linux.machine.actions)  # its branches ran and counted


def _store_beside_a_paused_increment(monkeypatch):
    """Mainline: reclaim on CPU0 paused at the entry of set_tlb_ubc_flush_pending's atomic
    section (it has not read tlb_flush_batched yet) while madvise(PAGEOUT) on CPU1 stores the
    word in flush_tlb_batched_pending's cmpxchg; a stale entry counts as alive throughout
    (the flush would otherwise have removed them). Returns the watch's mark."""
    import conformance.search.conflict as conflict
    monkeypatch.setattr(conflict, "stale_alive", lambda m, mm=None: True)
    m = Machine(load_protocol("linux"), MachineConfig(nframes=8))
    w = ConflictWatch(m)
    with watching(w):
        m.reclaim(2, (1,))      # defers mm0:v1, paused at its section's entry
        m.reclaim(0, (2,))      # defers mm0:v2, paused at its section's entry
        m.advance(0)            # CPU2's increment: pending 1
        m.switch_mm(1, 0)
        mad = m.madvise(1, 1, 1, "pageout")  # flush_tlb_batched_pending: flush, paused
        while mad in m.ops and w.mark is None:
            m.advance(mad.id)   # ... its cmpxchg stores the word
    return w.mark


def test_no_mark_for_a_hook_paused_before_its_atomic_section(monkeypatch):
    assert _store_beside_a_paused_increment(monkeypatch) is None


def test_without_the_section_test_that_store_would_mark(monkeypatch):
    import conformance.hookpoints as hp
    monkeypatch.setattr(hp, "paused_before_section", lambda op: False)
    assert _store_beside_a_paused_increment(monkeypatch) is not None
