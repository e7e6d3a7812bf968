"""The driver's collision biases (docs/model.md, "Biases"): what a rule's draw turns into."""
from __future__ import annotations

from conformance.config import MachineConfig
from conformance.machine import Machine
from conformance.registry import load_protocol
from conformance.search.statemachine import Driver

#: certify's narrowed machine: mm0 maps v0 anonymous and v1 of file0; mm1 only file pages
NARROWED = MachineConfig(ncpus=4, vpages=2, ptes_per_table=1)


def _driver():
    m = Machine(load_protocol("linux"), NARROWED)
    return m, Driver(m)


def _cpu_of(m, mm_id):
    return next(c.id for c in m.tlbs.cpus if c.loaded_mm.id == mm_id)


def _started(m):
    """The last operation started: its name, the mm its CPU runs, its arguments."""
    name, (cpu, *args) = next(a for a in reversed(m.actions) if a[0] not in ("switch_mm", "advance"))
    return name, m.tlbs.cpus[cpu].loaded_mm.id, tuple(args)


def test_madvise_free_of_a_file_range_goes_to_the_anonymous_page():
    m, d = _driver()
    d.madvise(_cpu_of(m, 0), 1, 1, "free")  # v1 of mm0: file0, would be -EINVAL
    assert _started(m) == ("madvise", 0, (0, 1, "free"))


def test_madvise_free_in_an_mm_without_anonymous_memory_switches_to_one_that_has():
    m, d = _driver()
    cpu = _cpu_of(m, 1)
    d.madvise(cpu, 0, 2, "free")
    assert _started(m) == ("madvise", 0, (0, 2, "free"))
    assert m.actions[-1][1][0] == cpu  # the idle CPU drawn, now running a task of mm0


def test_madvise_free_over_anonymous_memory_and_other_advice_are_left_alone():
    m, d = _driver()
    d.madvise(_cpu_of(m, 0), 0, 2, "free")  # starts in the anonymous VMA: kept as drawn
    assert _started(m) == ("madvise", 0, (0, 2, "free"))
    m, d = _driver()
    d.madvise(_cpu_of(m, 1), 1, 1, "cold")
    assert _started(m) == ("madvise", 1, (1, 1, "cold"))


def test_without_anonymous_memory_madvise_free_fails_with_einval_as_drawn():
    m, d = _driver()
    cpu = _cpu_of(m, 0)
    m.munmap(cpu, 0, 1)  # mm0's only anonymous VMA
    while m.runnable_ops():
        m.advance_runnable(m.runnable_ops()[0])
    d.madvise(cpu, 1, 1, "free")
    assert _started(m) == ("madvise", 0, (1, 1, "free"))
    while m.runnable_ops():
        m.advance_runnable(m.runnable_ops()[0])
    assert any("EINVAL" in str(line) for line in m.trace.lines())


# -- the walk's refill after a flush (docs/SEARCH.md, "Refill after a flush") ----------------
def _write_protect_v0(refill):
    """mm0's anonymous page v0, written (cached writable and dirty) by both CPUs of mm0,
    then write-protected by mprotect on one of them and run to the end under a
    ``WalkDriver``: returns the machine, mm0's CPUs and the index in ``actions`` of the
    action right after the advance that flushed."""
    import random

    from conformance.search.walk import WalkDriver
    m = Machine(load_protocol("linux"), NARROWED)
    cpus = [c.id for c in m.tlbs.cpus if c.loaded_mm.id == 0]
    for c in cpus:
        for _ in range(3):  # a write fault, then the store again (as walk.warm_up)
            if m.user_access(c, 0, True) != "fault":
                break
            m.drain()
    assert all(m.tlbs.lookup(m.tlbs.cpus[c], 0, 0).writable for c in cpus)
    d = WalkDriver(m, random.Random(3) if refill else None)
    flushes = m.arch.flushes
    m.mprotect(cpus[0], 0, 1, False)
    flushed_at = None
    while m.runnable_ops():
        before = len(m.actions)
        d.advance(0)
        if flushed_at is None and m.arch.flushes != flushes:
            flushed_at = before + 1  # the action after this advance
    return m, cpus, flushed_at


def test_the_walk_refills_an_entry_right_after_the_step_that_flushed_it():
    m, cpus, flushed_at = _write_protect_v0(refill=True)
    assert flushed_at is not None
    name, (cpu, vpage) = m.actions[flushed_at]  # the action right after the flushing advance
    assert (name, vpage) == ("fill", 0) and cpu in cpus
    e = m.tlbs.lookup(m.tlbs.cpus[cpu], 0, 0)
    assert e is not None and not e.writable  # refilled from the write-protected PTE


def test_without_refill_the_flushed_entries_stay_gone():
    m, cpus, flushed_at = _write_protect_v0(refill=False)
    assert flushed_at is not None
    assert not any(name == "fill" for name, _ in m.actions)
    assert all(m.tlbs.lookup(m.tlbs.cpus[c], 0, 0) is None for c in cpus)


def test_a_swarm_example_with_refills_replays_byte_for_byte():
    """The refills are logged actions drawn from the example's seed: the same seed gives the
    same actions, and replaying them (no driver at all) reaches the same trace."""
    from conformance.config import DEFAULT
    from conformance.reproducer import replay_actions
    from conformance.search import walk
    cls = load_protocol("linux")
    shapes = walk.shapes_for(DEFAULT)
    seed = 12345  # top bits 0: the narrowed machine, shapes[0] (walk.shape_of)
    a = walk.run_shaped_example(cls, shapes, False, seed)
    b = walk.run_shaped_example(cls, shapes, False, seed)
    assert a.machine.actions == b.machine.actions
    assert any(name == "fill" for name, _ in a.machine.actions)
    assert replay_actions(cls, a.machine.cfg, False, a.machine.actions) is None
