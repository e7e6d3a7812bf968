"""The raw walk makes exactly the driver calls the Hypothesis state machine's rules make.

The walk does not call the rule methods: it holds each rule's driver call per drawn value
(``walk.Rules``, ``statemachine.Rule``). These tests compare the two, value by value, on a
driver that records what it is asked to do.
"""
from __future__ import annotations

import itertools

import pytest

from conformance.config import DEFAULT, MachineConfig
from conformance.registry import load_protocol
from conformance.search.statemachine import Stats, conformance_machine
from conformance.search.walk import Rules, strategy_values


class Recorder:
    """A driver that records each method call instead of running it."""

    def __init__(self) -> None:
        self.calls = []

    def __getattr__(self, name):
        def record(*args):
            self.calls.append((name,) + args)
        return record


class Self:
    """What a rule method reads of the state machine: ``d`` and ``stats``."""

    def __init__(self, d) -> None:
        self.d, self.stats = d, Stats()


@pytest.mark.parametrize("cfg", [DEFAULT, MachineConfig(ncpus=4, vpages=2, ptes_per_table=1)],
                         ids=["default", "narrowed"])
def test_walk_calls_equal_the_rule_methods(cfg):
    linux = load_protocol("linux")
    rules = Rules(linux, cfg)
    by_name = {r.function.__name__: r for r in conformance_machine(linux, cfg).setup_state().rules}
    compared = 0
    for (name, calls, _idx) in rules.entries:
        r = by_name[name]
        (arg, strategy), = r.arguments.items()
        values = strategy_values(strategy, name)
        assert len(calls) == len(values)
        for v, call in zip(values, calls):
            hyp, walk = Recorder(), Recorder()
            me = Self(hyp)
            r.function(me, **{arg: v})
            call(walk)
            assert walk.calls == hyp.calls and len(hyp.calls) == 1, (name, v)
            assert me.stats.steps == 1
            compared += 1
    assert compared > 1000


def test_a_narrowed_swarm_mix_decodes_like_the_rule_methods():
    """Swarm.draw narrows a rule's values and decodes them with ``Rules.decoders``."""
    linux = load_protocol("linux")
    rules = Rules(linux)
    by_name = {r.function.__name__: r for r in conformance_machine(linux).setup_state().rules}
    for (name, calls, _idx), decode in zip(rules.entries, rules.decoders):
        r = by_name[name]
        (arg, strategy), = r.arguments.items()
        for v in itertools.islice(strategy_values(strategy, name), 0, None, 7):
            hyp, walk = Recorder(), Recorder()
            r.function(Self(hyp), **{arg: v})
            decode((v,))(walk)
            assert walk.calls == hyp.calls, (name, v)


def test_the_walk_counts_its_steps():
    from conformance.machine import Machine
    from conformance.search.statemachine import Driver
    from conformance.search.walk import Shim, walk
    import random
    linux = load_protocol("linux")
    stats = Stats()
    walk(Rules(linux), Shim(Driver(Machine(linux)), stats), random.Random(3).random, 25)
    assert stats.steps == 25


def test_the_warm_up_starts_three_examples_in_four_and_moves_no_other(monkeypatch):
    """A warmed-up example begins with the warm-up's writes; an example that does not start
    warmed up is the example it was before the warm-up existed (its draws are its own)."""
    from conformance.search import walk
    linux = load_protocol("linux")
    seeds = range(40)
    warm = [s for s in seeds if walk.warm_of(s)]
    assert 20 <= len(warm) <= 38  # 3/4 of 40, give or take
    cold = next(s for s in seeds if not walk.warm_of(s))
    now = walk.run_example(linux, seed=cold, swarm=True).machine.actions
    w = walk.run_example(linux, seed=warm[0], swarm=True)
    monkeypatch.setattr(walk, "SWARM_WARM", 0.0)
    assert walk.run_example(linux, seed=cold, swarm=True).machine.actions == now
    before = walk.run_example(linux, seed=warm[0], swarm=True)
    # the default machine: CPU0 and CPU2 write mm0's anonymous pages, CPU1 mm1's file pages
    writes = [a for a in w.machine.actions[:6] if a[0] == "user_access"]
    assert writes[0] == ("user_access", (0, 0, True)) and len(writes) >= 4
    assert w.machine.actions != before.machine.actions
    assert w.steps > before.steps - 1  # the warm-up's actions count as steps


def test_the_warm_up_leaves_a_writable_dirty_entry_of_every_writable_page():
    from conformance.machine import Machine
    from conformance.search.walk import warm_up
    for cfg in (DEFAULT, MachineConfig(ncpus=4, vpages=2, ptes_per_table=1)):
        m = Machine(load_protocol("linux"), cfg)
        n = warm_up(m)
        assert n == len(m.actions) and not m.ops and not m.failed
        for c in m.tlbs.cpus:
            mm = c.loaded_mm
            for vma in mm.vmas:
                for vp in range(vma.start, vma.end):
                    e = m.tlbs.lookup(c, mm.id, vp)
                    if vma.writable:
                        assert e is not None and e.writable and e.dirty, (c.id, vp)


def test_a_rules_swarm_fields_are_its_own_whatever_was_built_before():
    """Each rule's swarm fields are the radices its statemachine.Rule gives for this config
    (a pick: one field of its values), however many configs the process built first. They
    were read from an attribute of the Hypothesis strategy, which Hypothesis shares between
    equal bounds: the last config or rule built with the same range won (on one CPU
    tlb_fill's (1, 8) became the pick rules' fields), so a walk example depended on what ran
    before it in the process (certify --profile's later configs did not reproduce alone)."""
    from conformance.search.statemachine import RULES

    cls = load_protocol("linux")
    one = MachineConfig(ncpus=1, nmms=1)
    for cfg in (DEFAULT, one, MachineConfig(ncpus=2, vpages=2), DEFAULT, one):
        rules = Rules(cls, cfg)
        by_name = {r.name: r for r in RULES}
        for name, fields, (_, calls, _) in zip(rules.names, rules.fields, rules.entries):
            r = by_name[name]
            if r.fields is None:
                assert fields == [(tuple(range(8)),)], (cfg, name, fields)
            else:
                assert fields == [tuple(r.fields(cfg))], (cfg, name, fields)
