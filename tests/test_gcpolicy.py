"""The searches' garbage-collection policy (conformance/gcpolicy.py): it restores what it
changed, and changes no run."""
from __future__ import annotations

import gc

from conformance.gcpolicy import THRESHOLDS, search_gc
from conformance.registry import load_protocol
from conformance.search.walk import run_example


def test_restores_thresholds_and_unfreezes():
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    with search_gc():
        assert gc.get_threshold() == THRESHOLDS
        assert gc.get_freeze_count() > frozen
        with search_gc():  # nested: the inner block leaves the outer one's freeze alone
            assert gc.get_threshold() == THRESHOLDS
        assert gc.get_freeze_count() > frozen
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen


def test_restores_after_an_exception():
    before = gc.get_threshold()
    try:
        with search_gc():
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.get_threshold() == before


def test_collection_off_stays_off():
    before = gc.get_threshold()
    gc.set_threshold(0)
    try:
        with search_gc():
            assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)


def test_the_policy_changes_no_run():
    """The same examples, with and without the policy: the same actions and trace."""
    cls = load_protocol("linux_4_3")

    def runs():
        out = []
        for s in range(40):
            ex = run_example(cls, seed=s, swarm=True)
            out.append((ex.machine.actions, list(ex.machine.trace.lines()),
                        None if ex.failure is None else ex.failure.rule))
        return out
    plain = runs()
    with search_gc():
        assert runs() == plain
    assert any(r for _, _, r in plain)  # some of them fail: failing runs compared too


def _cyclic_garbage(fn) -> int:
    """Objects the cycle collector found unreachable while ``fn()`` ran, and what it left
    behind."""
    found = []

    def count(phase, info):
        if phase == "stop":
            found.append(info["collected"])
    while gc.collect():  # until none is left (a finalized generator's cycle takes two)
        pass
    gc.callbacks.append(count)
    try:
        fn()
        gc.collect()  # what fn() dropped since its last collection
    finally:
        gc.callbacks.remove(count)
    return sum(found)


def test_the_search_loops_leave_no_cyclic_garbage():
    """The soundness chunk and certify's walk chunk dispose of each passed example's
    machine (``Machine.dispose``): reference counting frees it, the cycle collector finds
    nothing. Without the dispose, each machine (the kernel and the oracle point back at it)
    is a few hundred objects of cyclic garbage; the collector's scans were 20% of the raw
    walk's time."""
    import time

    from conformance.certify import Chunk, run_walk_chunk
    from conformance.config import DEFAULT
    from conformance.soundness import Job, run_chunk

    linux = load_protocol("linux")
    # once first: what is built once per process (rule tables, classes) is cyclic for good
    run_chunk(Job("linux", "default", DEFAULT, False, 0, 80), 0, 0.0)
    run_walk_chunk(linux, DEFAULT, False, 50, Chunk(0, 1, 2), time.monotonic())
    assert _cyclic_garbage(lambda: run_chunk(Job("linux", "default", DEFAULT, False, 0, 80), 0,
                                             time.monotonic() + 600)) == 0
    assert _cyclic_garbage(lambda: run_walk_chunk(linux, DEFAULT, False, 50, Chunk(0, 1, 40),
                                                  time.monotonic())) == 0
    # teeth: the same examples, not disposed, are cyclic garbage
    assert _cyclic_garbage(lambda: [run_example(linux, seed=s, swarm=True) for s in range(5)]) > 0


def test_a_dropped_protocol_class_is_freed():
    """Nothing module-level keeps a protocol class alive once its last machine is gone: the
    wrapped classes (``pointed_class``, ``counted_class``) and the per-class answers
    (protocol files, misdeclared hooks, read-modify-write fields) are kept on the class or
    weakly. Until 2026-12-04 module dicts kept every class ``load_protocol`` made, with its
    generated hooks: a campaign worker loads one per chunk."""
    import weakref

    from conformance.coverage import counted_class
    from conformance.machine import Machine
    from conformance.search.conflict import rmw_fields

    refs = []
    for _ in range(3):
        cls = load_protocol("linux")
        m = Machine(counted_class(cls))
        _ = m.user_access(0, 0, True)
        m.drain()
        rmw_fields(type(m.proto), "set_tlb_ubc_flush_pending")
        m.dispose()
        refs.append(weakref.ref(cls))
        del cls, m
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


def _machines_left(fn, monkeypatch) -> tuple:
    """(machines made, machines still alive) after ``fn()`` ran with the cycle collector off:
    a machine freed by reference counting is gone the moment it is dropped."""
    import weakref

    from conformance.machine import Machine

    made = []
    init = Machine.__init__

    def recording(self, *a, **kw):
        made.append(weakref.ref(self))
        init(self, *a, **kw)
    monkeypatch.setattr(Machine, "__init__", recording)
    was = gc.isenabled()
    gc.disable()
    try:
        fn()
        return len(made), sum(r() is not None for r in made)
    finally:
        if was:
            gc.enable()


def test_a_passed_replay_and_the_explorer_leave_their_machines_to_reference_counting(monkeypatch):
    """``replay_actions`` disposes of the machine it made for a replay that passed (shrinking
    replays thousands), and the explorer of every machine it drops: 281,855 objects of
    cyclic garbage for one explore of model-rmap-walk-vs-mremap before (16% of its time)."""
    from conformance.config import DEFAULT
    from conformance.litmus import load
    from conformance.reproducer import replay_actions
    from conformance.search.explorer import explore

    linux = load_protocol("linux")
    actions = run_example(linux, seed=3, n=40).machine.actions
    assert _machines_left(lambda: replay_actions(linux, DEFAULT, False, actions),
                          monkeypatch) == (1, 0)
    sc = load("litmus/model-rmap-walk-vs-mremap.litmus")
    made, left = _machines_left(lambda: explore(sc, linux), monkeypatch)
    assert made > 500 and left == 0
