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
