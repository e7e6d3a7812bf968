"""The raw seeded walk: the state machine's own rules driven by ``random.Random``, no Hypothesis.

Hypothesis runs a few thousand steps per second per core; the model alone runs
about 90,000. A false report of the oracle on a correct protocol is rare (one in
millions of steps), so the soundness campaign (:mod:`conformance.soundness`)
needs this walk's volume, and ``bench/steps.py`` measures it.

A walk takes each rule of ``conformance_machine(...)`` as it is (the
:class:`~conformance.search.statemachine.Driver` call its rule method makes for each value,
its preconditions, every value of its argument strategies), so it follows the rules as they
change. One *example* is a fresh ``Machine``, ``n`` actions, then
``Driver.teardown()`` (drain + C1 over every entry); it depends only on
(protocol, config, strict, seed, n).

Example::

    >>> from conformance.registry import load_protocol
    >>> ex = run_example(load_protocol("linux"), seed=7, n=40)
    >>> ex.steps, ex.failure is None
    (40, True)
"""
from __future__ import annotations

import copy
import functools
import inspect
import itertools
import random
import time
from math import gcd
from operator import methodcaller

import attrs

from ..config import DEFAULT, MachineConfig
from ..defaults import ACTIONS_PER_EXAMPLE
from ..errors import Failure, ModelError, UsageError
from ..machine import Machine
from ..mm.mm_types import PRESENT
from ..reproducer import ACTIONS, FOLIO_ACTIONS, NESTED_ACTIONS, replay_actions
from ..hookpoints import watching
from .conflict import ConflictWatch
from .statemachine import Driver, Stats, check_sizes, conformance_machine


#: the most values one rule argument may have in the raw walk, which lists them all
MAX_VALUES = 10_000


def strategy_values(strategy, where: str) -> tuple:
    """Every value ``strategy`` can draw, for the strategy kinds ``strategies/`` uses.

    The walk draws uniformly from these (Hypothesis biases integers toward their
    ends and shrinks; the ranges are the same).

    Example::

        >>> from hypothesis import strategies as st
        >>> strategy_values(st.integers(0, 3), "x")
        (0, 1, 2, 3)
    """
    s = getattr(strategy, "wrapped_strategy", strategy)  # st.integers() etc. are lazy
    kind = type(s).__name__
    if kind == "IntegersStrategy" and None not in (s.start, s.end):
        if s.end - s.start >= MAX_VALUES:  # a rule's arguments grow with the machine's size
            raise UsageError(f"the machine is too large for the raw walk: {where} draws from "
                             f"{s.end - s.start + 1:,} values (at most {MAX_VALUES:,}); use "
                             "fewer vpages, mms or CPUs, or --engine hypothesis")
        return tuple(range(s.start, s.end + 1))
    if kind == "SampledFromStrategy" and not getattr(s, "_transformations", ()):
        return tuple(s.elements)
    if kind == "BooleansStrategy":
        return (False, True)
    raise TypeError(f"conformance.search.walk: cannot mirror {strategy!r} ({where}) in the raw walk; "
                    "teach strategy_values() about it")


class Rules:
    """The state machine's own rules for one config, callable without Hypothesis.

    Taken from ``conformance_machine(proto_cls, cfg)`` (strategies depend on the
    machine's size, so each config has its own): each rule's function, its
    preconditions (the has_runnable / has_idle lambdas) and the values of its
    argument strategies. A step evaluates each distinct precondition once, then
    picks uniformly among the rules whose preconditions hold and draws their
    arguments, as Hypothesis's rule choice does (less its swarm testing, which
    disables random subsets of rules per example). Rules are in name order, so
    the walk does not depend on how Hypothesis lists them.

    ``entries`` hold, per rule, ``(name, calls, idx)``: the rule's name, its driver call
    for every value it can draw (an ``operator.methodcaller`` of the driver method with
    the decoded arguments, one per value, in the order of the strategy's values: the call
    the Hypothesis rule method makes for that value, ``statemachine.Rule``) and the
    indices of its preconditions. A walk step calls ``call(driver)``: no Python frame
    between the walk and the driver. ``decoders`` turn a combination of drawn values into
    its call (:class:`Swarm` narrows the values).

    Example::

        >>> from conformance.registry import load_protocol
        >>> "munmap" in Rules(load_protocol("linux")).names
        True
    """

    def __init__(self, proto_cls, cfg: MachineConfig = DEFAULT) -> None:
        # refused before the state machine builds its tables, which on a large machine took
        # minutes and gigabytes before strategy_values came to refuse them
        check_sizes(cfg, MAX_VALUES, "the raw walk", ", or --engine hypothesis")
        rules = sorted(conformance_machine(proto_cls, cfg).setup_state().rules,
                       key=lambda r: r.function.__name__)
        self.names = tuple(r.function.__name__ for r in rules)
        self.preconditions: list = []
        #: per rule, per argument (in parameter order) its fields: radices, or (values,)
        self.fields: list = []
        #: per rule, drawn values (a tuple in parameter order) -> the call's arguments
        self.decoders: list = []
        entries = []
        for r in rules:
            idx = []
            for p in r.preconditions:
                if p not in self.preconditions:
                    self.preconditions.append(p)
                idx.append(self.preconditions.index(p))
            # the arguments in the rule function's parameter order: a step passes them by
            # position (a call with ** costs a dict per step)
            order = list(inspect.signature(r.function).parameters)[1:]
            if sorted(order) != sorted(r.arguments):
                raise TypeError(f"conformance.search.walk: rule {r.function.__name__} takes "
                                f"{order}, its strategies give {sorted(r.arguments)}")
            strategies = [r.arguments[k] for k in order]
            values = [strategy_values(v, f"{r.function.__name__}.{k}")
                      for k, v in zip(order, strategies)]
            decode = functools.partial(_call_of, *_walk_call(r.function, order))
            # every combination once (duplicates in sampled_from kept): one uniform pick
            # from this list is an independent uniform draw of each argument
            entries.append((r.function.__name__, [decode(v) for v in itertools.product(*values)],
                            tuple(idx)))
            self.decoders.append(decode)
            # each argument's fields: a code() integer's radices (the rule function's
            # walk_fields, statemachine._rule_method: a rule draws one such integer), else one
            # field (its values)
            radices = getattr(r.function, "walk_fields", None)
            if radices is not None and len(values) != 1:
                raise TypeError(f"conformance.search.walk: rule {r.function.__name__} has "
                                "walk_fields but not exactly one argument")
            self.fields.append([radices or (vals,) for vals in values])
        self.entries = entries
        self._enabled: dict = {}

    def enabled(self, flags: tuple) -> list:
        """The rules whose preconditions all hold, given each precondition's truth."""
        got = self._enabled.get(flags)
        if got is None:
            got = self._enabled[flags] = [(fn, args) for fn, args, idx in self.entries
                                          if all(flags[i] for i in idx)]
        return got


def _walk_call(fn, params: list) -> tuple:
    """A rule method's ``walk_call``: ``(driver method, per-code argument table or None)``
    (``statemachine._rule_method``: a rule of one drawn argument, a pick or a code)."""
    got = getattr(fn, "walk_call", None)
    if got is None or len(params) != 1:
        raise TypeError(f"conformance.search.walk: rule {fn.__name__} is not a "
                        "statemachine.Rule method (no walk_call): the walk cannot call it")
    return got


def _call_of(method: str, table, values: tuple):
    """The driver call for the drawn ``values`` (one value: a pick ``i``, passed as it is, or
    a code ``x``, whose arguments ``table`` holds: the rule method's own table)."""
    return methodcaller(method, *(values if table is None else table[values[0]]))


_RULES: dict = {}


def rules_for(proto_cls, cfg: MachineConfig = DEFAULT) -> Rules:
    """The :class:`Rules` of ``cfg``, built once per process.

    The rules depend on the config only (the protocol is a class attribute the
    rule functions never read), and each build makes a state machine class that
    Hypothesis caches for good, so a long campaign must not build them per chunk.

    Example::

        >>> from conformance.registry import load_protocol
        >>> rules_for(load_protocol("linux")) is rules_for(load_protocol("immediate"))
        True
    """
    rules = _RULES.get(cfg)
    if rules is None:
        rules = _RULES[cfg] = Rules(proto_cls, cfg)
    return rules


class Shim:
    """What a rule function needs of the state machine instance: ``d`` and ``stats``."""

    __slots__ = ("d", "stats")

    def __init__(self, d, stats) -> None:
        self.d = d
        self.stats = stats


def walk(rules: Rules, shim: Shim, rand, n: int) -> None:
    """``n`` steps of ``rules`` on ``shim``, each choice drawn by ``rand()`` (a float in [0, 1)).

    The hot loop of the campaign and of bench/steps.py: two ``rand()`` calls per
    step, one for the rule, one for its arguments. Each step makes the rule's driver call
    for the drawn value (:class:`Rules`) and counts in ``shim.stats.steps``, as the
    Hypothesis rule method does.

    Example::

        >>> from conformance.registry import load_protocol
        >>> m = Machine(load_protocol("linux"))
        >>> rules = Rules(load_protocol("linux"))
        >>> walk(rules, Shim(Driver(m), Stats()), random.Random(1).random, 5)
        >>> len(m.actions) >= 1
        True
    """
    # each precondition as a call with no arguments: a guard naming a driver method
    # (statemachine._guard) as that bound method, anything else bound to the shim
    guards = [getattr(shim.d, p.driver_method) if hasattr(p, "driver_method")
              else functools.partial(p, shim) for p in rules.preconditions]
    enabled = rules.enabled
    known = rules._enabled  # enabled()'s cache, read here first: one call less per step
    two = len(guards) == 2
    if two:
        g0, g1 = guards
    d = shim.d
    done = 0  # steps run (the one that raised included), added to stats.steps once
    try:
        for done in range(1, n + 1):
            flags = (g0(), g1()) if two else tuple([g() for g in guards])
            acts = known.get(flags)
            if acts is None:
                acts = enabled(flags)
            if not acts:  # a swarm mix whose rules all wait for something none of them starts
                done -= 1
                return
            _name, calls = acts[int(rand() * len(acts))]
            calls[int(rand() * len(calls))](d)
    finally:
        shim.stats.steps += done


# -- swarm testing ------------------------------------------------------------------------------
#: the rules every swarm keeps: without ``advance`` no operation would run past its first step
#: until the teardown drains it
SWARM_ALWAYS = ("advance",)
#: a swarm example's length is drawn uniformly from this range (mean 110, as long as a
#: Hypothesis example of certify's default 50 steps at most twice over)
SWARM_ACTIONS = (20, 200)
#: the chance that a swarm mix keeps a rule
SWARM_KEEP = 0.5
#: the chance that a kept rule also narrows its arguments (each field to a random subset of
#: its values: a few pages, CPUs, files, scheduling picks, so that operations collide)
SWARM_ARGS = 0.25
#: the chance that an example draws a rule mix at all (else every rule, as Hypothesis): one
#: in eight, a hedge for a bug that some rule hides. 1/2 until 2026-12-02 16:40: on every slow
#: mutant a mix found 1-6x fewer failures per CPU second than every rule (docs/SEARCH.md,
#: "Portfolio weights"): a race needs three or four particular rules, which a mix keeping each
#: with probability 1/2 holds in one example of 8-16, and no rule's absence helped any mutant
SWARM_RULES = 0.125
#: the chance that an example schedules by priority (:class:`PriorityDriver`), and the
#: chance per scheduling step that the running operation's priority drops; 3/4 (1/2 until
#: 2026-12-02 16:40: PCT found 5x the failures of the uniform pick for the LUF S2 variants,
#: 2x for 2.3, all eight of ``luf_v11``'s, and the others within the noise)
SWARM_PCT = 0.75
SWARM_PCT_CHANGE = 0.1


#: the share of certify's walk examples that start warmed up (:func:`warm_up`); drawn from
#: the example's seed apart from its other draws (:func:`warm_of`)
SWARM_WARM = 0.75


#: does certify's walk refill an entry after each flushing step (:class:`WalkDriver`)? On
#: since 2026-12-03 13:00 (docs/SEARCH.md, "Refill after a flush")
SWARM_REFILL = True


#: how many times certify's walk runs an example on from its first broken read-modify-write
#: (:mod:`conformance.search.conflict`), and how many actions each such branch walks after
#: the replayed prefix (docs/SEARCH.md, "Branching at a broken read-modify-write"); 0
#: branches: off
SWARM_BRANCHES = 4
SWARM_BRANCH_ACTIONS = 30


def branch_seed(seed: int, b: int) -> int:
    """The seed of branch ``b`` of the swarm example of ``seed`` (:func:`run_branches`): a
    stream of its own per branch."""
    return (seed ^ 0x4252414E) * 1_000_003 + b


def warm_of(seed: int) -> bool:
    """Does the swarm example of ``seed`` start warmed up? Drawn from a stream of its own
    (``random.Random(seed ^ 0x5741524D)``), so that the example's other draws, and every
    example that does not start warmed up, are what they were without the warm-up."""
    return random.Random(seed ^ 0x5741524D).random() < SWARM_WARM


def warm_up(m: Machine) -> int:
    """Each CPU's task writes every page of the writable VMAs of its mm, CPUs and pages in
    order, each write fault run to completion and the store run again
    (``Machine.user_access``, ``Machine.drain``); returns how many actions it logged. What a
    program's threads have done once they have written their data: every writable page
    dirty and cached writable and dirty on every CPU of its mm (SDM 4.8: a store through an
    entry sets its D bit; a write-protected PTE takes the write fault, ``do_wp_page`` /
    ``wp_page_shared``, first).

    Why: the populated boot (``MAP_POPULATE``) maps a shared file page read-only, for
    write-notify (``populate_vma_page_range`` asks ``FOLL_WRITE`` only of private writable
    mappings), so without this an example holds a writable dirty entry of a page-cache page
    only after the walk has drawn the write, on that CPU, to that page; and such an entry
    is what every copy-out race needs (S2: a store through it after the copy is lost). 2.1
    and 2.8 failed 38x and 41x as often per CPU second with it, 2.7 and 2.11 as often
    (docs/SEARCH.md, "The write warm-up"). Its actions are the example's first: a reproducer
    replays them and shrinking drops those a failure does not need.

    Example::

        >>> from conformance.registry import load_protocol
        >>> m = Machine(load_protocol("linux"))
        >>> n = warm_up(m)
        >>> all(e.writable and e.dirty for c in m.tlbs.cpus for mm, t in c.tlb.items()
        ...     for vp, e in t.items() if m.mms[mm].find_vma(vp).writable)
        True
    """
    before = len(m.actions)
    for c in m.tlbs.cpus:
        mm = c.loaded_mm
        if mm.exiting:
            continue
        for vma in list(mm.vmas):
            if not vma.writable:
                continue
            for vp in range(vma.start, vma.end):
                # a store that faults is run again once the fault is handled, as the CPU
                # restarts the faulting instruction (a fault that cannot map the page, e.g.
                # out of memory, leaves it at that)
                for _ in range(3):
                    if m.user_access(c.id, vp, True) != "fault":
                        break
                    m.drain()
    return len(m.actions) - before


class Swarm:
    """Swarm testing (Groce et al., ISSTA 2012) over the walk's rules.

    One uniform rule mix spreads the schedule over everything, so a race that needs
    two particular operations in flight together and few others is rare. Each swarm
    example draws its own *mix* first: every rule is kept with probability 1/2
    (:data:`SWARM_ALWAYS` always), then the example walks only the kept rules, with
    a length drawn from :data:`SWARM_ACTIONS`. Everything is drawn from the example's
    seed, so ``(protocol, config, strict, seed)`` still decides the example.

    Example::

        >>> from conformance.registry import load_protocol
        >>> sw = Swarm(rules_for(load_protocol("linux")))
        >>> mix, n, sched = sw.draw(random.Random(5))
        >>> "advance" in mix.names and 20 <= n <= 200
        True
    """

    __slots__ = ("rules",)

    def __init__(self, rules: Rules) -> None:
        self.rules = rules

    def draw(self, rnd: random.Random) -> tuple:
        """(rules of the mix, length, scheduler) for one example, drawn from ``rnd``:
        ``scheduler`` is None (uniform, as Hypothesis) or a :class:`PriorityDriver`'s
        change probability."""
        rules = self.rules
        names = rules.names
        sched = SWARM_PCT_CHANGE if rnd.random() < SWARM_PCT else None
        if rnd.random() >= SWARM_RULES:  # this example keeps every rule and argument
            return rules, rnd.randint(*SWARM_ACTIONS), sched
        keep = [n in SWARM_ALWAYS or rnd.random() < SWARM_KEEP for n in names]
        if not any(k for n, k in zip(names, keep) if n not in SWARM_ALWAYS):
            keep = [True] * len(names)  # a mix of advance alone starts nothing
        entries = []
        for k, (name, calls, idx), fields, decode in zip(keep, rules.entries, rules.fields,
                                                         rules.decoders):
            if not k:
                continue
            if rnd.random() < SWARM_ARGS:
                calls = [decode(v) for v in
                         itertools.product(*[_some_values(f, rnd) for f in fields])]
            entries.append((name, calls, idx))
        mix = copy.copy(rules)
        mix.names = tuple(n for n, k in zip(names, keep) if k)
        mix.entries = entries
        mix._enabled = {}
        return mix, rnd.randint(*SWARM_ACTIONS), sched


def _some_values(fields: tuple, rnd: random.Random) -> list:
    """A random subset of one argument's values, each field's values kept with probability
    1/2 (at least one): for a ``code()`` argument (fields = radices) the codes whose every
    field is in its subset, else (fields = ``(values,)``) a subset of the values."""
    if len(fields) == 1 and isinstance(fields[0], tuple):
        vals = fields[0]
        return [v for v in vals if rnd.random() < 0.5] or [vals[int(rnd.random() * len(vals))]]
    codes = [0]
    place = 1
    for r in fields:
        digits = [d for d in range(r) if rnd.random() < 0.5] or [int(rnd.random() * r)]
        codes = [c + d * place for d in digits for c in codes]
        place *= r
    return sorted(codes)


def refill_seed(seed: int) -> int:
    """The seed of the refill stream of the swarm example of ``seed``
    (:class:`WalkDriver`): a stream of its own, so that the example's other draws are what
    they were without the refills."""
    return seed ^ 0x46494C4C


class WalkDriver(Driver):
    """The walk's :class:`Driver`: its uniform ``advance``, and, when ``refill`` (a
    ``random.Random``) is given, a *refill after a flush*: after a kernel step that dropped
    TLB entries (a flush), one of them whose PTE is still present is filled again on its
    CPU at once (``Machine.fill``, hardware rule 1; logged, so a reproducer replays it).

    Why: a CPU running user code refills its working set right after a flush, and the 2021
    race (2.7) needs exactly that: the reclaimed page re-cached between
    ``flush_tlb_batched_pending``'s flush and the reclaim's PTE clear, one step later. A
    fill drawn among all rules lands there rarely (docs/SEARCH.md, "Refill after a flush":
    2.7 1.4-1.9x the failures per CPU second, the other mutants unchanged). Simplification:
    one entry per flushing step, not the whole working set, so a flushed TLB stays mostly
    empty for the races that need a walk after a flush.

    Example::

        >>> from conformance.registry import load_protocol
        >>> m = Machine(load_protocol("linux"))
        >>> d = WalkDriver(m, random.Random(1))
        >>> _ = m.mprotect(0, 0, 1, False)  # write-protects v0: flushes its entries
        >>> while m.runnable_ops():
        ...     d.advance(0)
        >>> any(name == "fill" for name, args in m.actions)
        True
    """

    def __init__(self, machine: Machine, refill: random.Random | None = None) -> None:
        super().__init__(machine)
        self.refill = refill
        if refill is not None:
            machine.tlbs.dropped = []

    def _run(self, op) -> None:
        """``Driver._run``, then the refill: the list of dropped entries is emptied before
        the step, so what it holds after is what the step flushed (evictions happen
        between steps)."""
        if self.refill is None:
            super()._run(op)
            return
        m = self.m
        dropped = m.tlbs.dropped
        dropped.clear()
        super()._run(op)
        if dropped:
            cpus, mms = m.tlbs.cpus, m.mms
            again = [(c, vp) for c, mm_id, vp in dropped
                     if getattr(cpus[c].loaded_mm, "id", None) == mm_id
                     and mms[mm_id].ptes[vp].kind == PRESENT]
            if again:
                c, vp = again[int(self.refill.random() * len(again))]
                m.fill(c, vp)


class PriorityDriver(WalkDriver):
    """A :class:`WalkDriver` whose ``advance`` runs the runnable operation of highest
    priority, as PCT does (Burckhardt et al., ASPLOS 2010), instead of a uniform pick.

    Each operation gets a random priority when first scheduled; at each scheduling step,
    with probability ``change``, the operation about to run drops to a lower priority
    (a PCT *change point*). A uniform pick rarely leaves one operation stalled between
    two steps while another runs many: the 2021 race and the zap-vs-writeback races need
    exactly that. Every draw comes from the example's ``rnd``; the machine still logs
    ``advance(op_id)``, so a reproducer replays without this class.

    Example::

        >>> from conformance.registry import load_protocol
        >>> m = Machine(load_protocol("linux"))
        >>> d = PriorityDriver(m, random.Random(1), 0.1)
        >>> d.m.munmap(0, 0, 1).id in [o.id for o in m.runnable_ops()]
        True
    """

    def __init__(self, machine: Machine, rnd: random.Random, change: float,
                 refill: random.Random | None = None) -> None:
        super().__init__(machine, refill)
        self.rnd = rnd
        self.prio: dict = {}
        self.change = change

    def advance(self, i: int) -> None:
        run = self.m.runnable_ops()
        if not run:
            return
        prio, rnd = self.prio, self.rnd
        best, top = None, -1.0
        for op in run:  # op order is start order: ties cannot happen (distinct floats)
            p = prio.get(op.id)
            if p is None:
                p = prio[op.id] = rnd.random()
            if p > top:
                best, top = op, p
        if rnd.random() < self.change:
            prio[best.id] = top * rnd.random() * 0.5
        self._run(best)


_SWARMS: dict = {}


def swarm_for(proto_cls, cfg: MachineConfig = DEFAULT) -> Swarm:
    """The :class:`Swarm` over :func:`rules_for` ``cfg``, built once per process."""
    sw = _SWARMS.get(cfg)
    if sw is None:
        sw = _SWARMS[cfg] = Swarm(rules_for(proto_cls, cfg))
    return sw


# -- machine shapes -----------------------------------------------------------------------------
def shapes_for(cfg: MachineConfig) -> tuple:
    """The machines certify's walk examples run on, one drawn per example (:func:`shape_of`):
    of every eight, three on ``cfg`` *narrowed* (two CPUs per mm, ``ncpus = 2 * nmms``, and
    two virtual pages, each in a page table of its own: ``vpages=2 ptes_per_table=1``),
    three on it *holed* (narrowed, but three pages and one-page files, ``vpages=3
    file_pages=1``: every mm boots with its last page unmapped), one on ``cfg`` with two
    CPUs per mm (*paired*), one on ``cfg`` itself; just ``(cfg,)`` when they are one
    machine, and no holed machine when ``cfg`` has fewer than three pages (a shape never
    grows the configured machine). (Six of eight narrowed from 2026-12-02 16:40 to
    2026-12-04 14:30; docs/SEARCH.md, "Portfolio weights" and "The holed machine".)

    Why (docs/SEARCH.md, "Machine shape"): the races of 2.1, 2.8 and 2.11 need a second
    task of the mm holding a TLB entry while the first one's zap, reclaim or madvise is in
    its window, and on the default machine only mm0 has two CPUs: a fourth CPU found them
    1.3-2.9x as often per step. Two pages instead of four make the few operations a race
    needs meet on one page more often, and one page per table gives 2.7 its two page-table
    locks of one mm: per step, 2x for 2.7 and 1.2-1.3x for 2.1, 2.8 and 2.11 over the paired
    machine. The holed machine's free page is where ``mremap`` moves a page to: on an
    address space that boots full it moves nothing until a ``munmap`` makes a hole, and the
    race of ``mut_batched_mark_first`` (a reclaim and a hole punch both pending while an
    mremap of the reclaimed page runs) was not found in 45,000 narrowed examples, against 9
    failures in as many holed ones. The paired machine keeps what needs a page table with
    two pages or a third and fourth page; the configured machine what needs an mm with one
    CPU (its flushes stay local): one example in eight each, a hedge no known bug needs.

    Example::

        >>> [(c.ncpus, c.vpages, c.file_pages) for c in dict.fromkeys(shapes_for(DEFAULT))]
        [(4, 2, 2), (4, 3, 1), (4, 4, 2), (3, 4, 2)]
        >>> one = MachineConfig(ncpus=4, vpages=2, ptes_per_table=1)
        >>> shapes_for(one) == (one,)
        True
    """
    paired = attrs.evolve(cfg, ncpus=max(cfg.ncpus, 2 * cfg.nmms))
    narrow = attrs.evolve(paired, vpages=min(cfg.vpages, 2), ptes_per_table=1)
    holed = attrs.evolve(narrow, vpages=3, file_pages=1) if cfg.vpages >= 3 else narrow
    if narrow == paired == cfg:
        return (cfg,)
    return (narrow,) * 3 + (holed,) * 3 + (paired, cfg)


def shape_of(shapes: tuple, seed: int) -> MachineConfig:
    """The machine of the example with 64-bit ``seed``: its top bits pick one of ``shapes``
    (the example's own ``random.Random(seed)`` draws everything else)."""
    return shapes[(seed >> 56) % len(shapes)]


def shapes_text(shapes: tuple) -> str:
    """How a report states the shapes, in the words of ``MachineConfig.describe``, e.g.
    ``3/8 of walk examples with cpus=4 vpages=2 ptes_per_table=1, 3/8 with cpus=4 vpages=3
    ptes_per_table=1 files=2x1, 1/8 with cpus=4``; ""
    for one."""
    if len(shapes) == 1:
        return ""
    words = shapes[-1].describe().split()  # the configured machine's
    parts = []
    for shape in dict.fromkeys(shapes[:-1]):  # in order, each once
        diff = " ".join(w for w in shape.describe().split() if w not in words)
        if diff:
            n, d = shapes.count(shape), len(shapes)
            g = gcd(n, d)
            parts.append(f"{n // g}/{d // g}" +
                         (" of walk examples" if not parts else "") + f" with {diff}")
    return ", ".join(parts)


class Example:
    """One example's outcome: ``steps`` done, the ``failure`` hit (None: it passed) and the
    ``machine`` it ran on (``machine.actions`` is its history)."""

    __slots__ = ("steps", "failure", "machine")

    def __init__(self, steps: int, failure: Failure | None, machine: Machine) -> None:
        self.steps = steps
        self.failure = failure
        self.machine = machine


def run_example(proto_cls, cfg: MachineConfig = DEFAULT, strict: bool = False, seed: int = 0,
                n: int = ACTIONS_PER_EXAMPLE, rules: Rules | None = None,
                swarm: bool = False) -> Example:
    """One example: ``Machine(proto_cls, cfg, strict)``, ``n`` walk steps, ``Driver.teardown()``.

    Deterministic: the same (protocol, config, strict, seed, n) gives the same
    ``machine.actions``. ``rules`` (built for ``cfg``) saves rebuilding them per
    example. ``swarm``: the example draws its own rule mix and length from ``seed``
    first (:class:`Swarm`; ``n`` and ``rules`` are then ignored) and starts warmed up in
    :data:`SWARM_WARM` of the seeds (:func:`warm_of`, :func:`warm_up`; its actions count as
    steps) and refills an entry after each flushing step (:class:`WalkDriver`, from a
    stream of its own, :func:`refill_seed`): what certify runs. An exception that is not a :class:`Failure` comes from the model (a
    protocol's own exceptions are ProtocolErrors already), so it is returned as
    a :class:`ModelError`.

    Example::

        >>> from conformance.registry import load_protocol
        >>> a = run_example(load_protocol("linux"), seed=3, n=30)
        >>> b = run_example(load_protocol("linux"), seed=3, n=30)
        >>> a.steps == b.steps == 30, a.machine.actions == b.machine.actions
        (True, True)
    """
    rnd = random.Random(seed)
    sched = None
    if swarm:
        rules, n, sched = swarm_for(proto_cls, cfg).draw(rnd)
    rules = rules or rules_for(proto_cls, cfg)
    stats = Stats()
    m = Machine(proto_cls, cfg, strict)
    refill = random.Random(refill_seed(seed)) if swarm and SWARM_REFILL else None
    d = WalkDriver(m, refill) if sched is None else PriorityDriver(m, rnd, sched, refill)
    watch = ConflictWatch(m) if swarm and SWARM_BRANCHES else None

    def run() -> None:
        with watching(watch):
            if swarm and warm_of(seed):
                stats.steps += warm_up(m)
            walk(rules, Shim(d, stats), rnd.random, n)
            d.teardown()
    failure = _failure_of(run, m)
    if failure is None and watch is not None and watch.mark is not None:
        return run_branches(proto_cls, cfg, strict, seed, rules, m, watch.mark, stats.steps)
    return Example(stats.steps, failure, m)


def _failure_of(run, m: Machine) -> Failure | None:
    """Call ``run()`` (which drives ``m``); the :class:`Failure` it raised, or None. An
    exception that is not a Failure comes from the model (a protocol's own exceptions are
    ProtocolErrors already), so it is returned as a :class:`ModelError`."""
    try:
        run()
    except Failure as f:
        return f
    except Exception as exc:  # noqa: BLE001 - a model bug must not end a campaign
        return ModelError.uncaught(exc, m)
    return None


def run_branches(proto_cls, cfg: MachineConfig, strict: bool, seed: int, rules: Rules,
                 machine: Machine, mark: int, steps: int) -> Example:
    """The passed swarm example of ``seed`` (on ``machine``, ``steps`` steps so far) run on
    :data:`SWARM_BRANCHES` times from its first broken read-modify-write
    (:class:`~conformance.search.conflict.ConflictWatch`, ``mark`` actions in): each branch
    replays those actions on a fresh machine, then walks :data:`SWARM_BRANCH_ACTIONS` more
    of the example's rules, scheduled by priority (:class:`PriorityDriver`, fresh
    priorities, so the paused operations run on in a new order) with the refill, from
    ``random.Random(branch_seed(seed, b))``, then the teardown. Returns the first branch's
    failure as the example's (its machine's actions are prefix and branch: a reproducer
    like any other), or the passed example; the steps count every action each branch ran,
    the replayed ones included.

    Why: whether the moment becomes a failure depends on what runs after it (the 2021
    race: a later walker of the reclaimed page with its entry still cached), and the one
    continuation the example drew rarely has it; replaying the moment is cheaper than
    waiting for the walk to reach it again (docs/SEARCH.md, "Branching at a broken
    read-modify-write": 2.7 3.3-4.4x the failures per CPU second).

    Example::

        >>> from conformance.registry import load_protocol
        >>> ex = run_example(load_protocol("linux_4_13"), seed=36, swarm=True)
        >>> ex.failure is None, len(ex.machine.actions), ex.steps  # its steps, then 4 branches
        (True, 106, 566)
    """
    prefix = machine.actions[:mark]
    for b in range(SWARM_BRANCHES):
        bseed = branch_seed(seed, b)
        rnd = random.Random(bseed)
        m = Machine(proto_cls, cfg, strict)
        refill = random.Random(refill_seed(bseed)) if SWARM_REFILL else None
        d = PriorityDriver(m, rnd, SWARM_PCT_CHANGE, refill)
        stats = Stats()

        def run() -> None:
            for name, args in prefix:
                getattr(m, name)(*args)
            stats.steps += len(prefix)
            walk(rules, Shim(d, stats), rnd.random, SWARM_BRANCH_ACTIONS)
            d.teardown()
        failure = _failure_of(run, m)
        steps += stats.steps
        if failure is not None:
            machine.dispose()  # the passed example's: the branch's failure replaces it
            return Example(steps, failure, m)
        m.dispose()  # a passed branch: freed now, not by the cycle collector
    return Example(steps, None, machine)


def run_shaped_example(proto_cls, shapes: tuple, strict: bool, seed: int) -> Example:
    """Certify's walk example of 64-bit ``seed``: :func:`run_example` with ``swarm=True`` on
    the machine :func:`shape_of` draws from ``shapes`` (:func:`shapes_for` of the campaign's
    config)."""
    return run_example(proto_cls, shape_of(shapes, seed), strict, seed=seed, swarm=True)


# -- shrinking --------------------------------------------------------------------------------
def run_positions(cls, cfg, strict, actions, keep, names: dict | None = None):
    """Run the actions at positions ``keep`` of ``actions``; ``advance`` by *start position*.

    ``actions`` holds ``(name, args)`` where an ``advance``'s argument is the
    position of the action that started the operation, not its op id: op ids are
    handed out in start order, so removing one start would renumber every later
    operation and no ``advance`` after it would apply. An ``advance`` whose
    operation was not started (or is not runnable) is skipped. ``names`` (from
    :func:`by_start_position`) names the folios of a reclaim or migration and the
    entry of an eviction by what they hold (:func:`_by_name`), for the same reason:
    a frame number or a TLB index means another page once an earlier action is
    gone; such an action whose page is not there is skipped too. With ``names``, a CPU
    still busy when the next operation starts there first finishes what it runs
    (:func:`_free_cpu`). Returns
    ``(failure, executed)``: the :class:`Failure` hit (None if none, or if an
    action no longer applies) and how many entries of ``keep`` ran.

    Example::

        >>> from conformance.registry import load_protocol
        >>> acts = [("reclaim", (0, (4,), (5,))), ("advance", (0,)), ("munmap", (1, 2, 1)),
        ...         ("advance", (2,))]
        >>> f, done = run_positions(load_protocol("linux_4_3"), DEFAULT, False, acts, [0, 1, 2, 3])
        >>> f.rule, done
        ('S3', 3)
    """
    m = Machine(cls, cfg, strict=strict)
    op_at: dict = {}  # start position -> op id
    known: set = set()
    done = 0
    try:
        for pos in keep:
            name, args = actions[pos]
            if name == "advance":
                op_id = op_at.get(args[0])
                if op_id is None or not any(o.id == op_id and o.runnable() for o in m.ops):
                    done += 1
                    continue
                m.advance(op_id)
            elif name in ACTIONS:
                if names is not None:
                    if pos in names:
                        args = _by_name(m, name, args, names[pos])
                        if args is None:  # its page is not there in this candidate
                            done += 1
                            continue
                    if name not in _NO_CPU:
                        _free_cpu(m, args[0])
                getattr(m, name)(*args)
                for o in m.ops:  # at most one new op: the one this action started
                    if o.id not in known:
                        known.add(o.id)
                        op_at[pos] = o.id
            else:
                raise UsageError(f"unknown action {name!r}")
            done += 1
        m.drain()
        m.check_quiescent()
    except Failure as f:
        return f, done
    except UsageError:  # an action that no longer applies: does not reproduce
        m.close()
        return None, done
    except Exception as exc:  # noqa: BLE001 - a model bug: it reproduces as one
        return ModelError.uncaught(exc, m), done
    m.close()
    return None, done


#: actions that start nothing on a CPU (hardware events, the other consumer, scheduling)
_NO_CPU = frozenset(("advance", "fill", "evict", "consumer_alloc", "consumer_free"))
#: the most steps :func:`_free_cpu` runs to let a CPU finish what it is doing
_FREE_CPU_STEPS = 2000


def _free_cpu(m: Machine, cpu: int) -> None:
    """Let ``cpu`` finish the operation it is running before the next one starts there.

    In the failing run a CPU started an operation only when it was idle; once delta
    debugging has removed some of another operation's ``advance`` actions, the CPU may
    still be busy when the candidate reaches that start. A CPU runs one thing at a time,
    so the candidate runs it to completion first (its own steps, or the oldest runnable
    operation's while it waits for a lock), each step an ``advance`` in the log, as a
    reproducer replays it. The full run never needs this: it changes only candidates
    that would otherwise not apply. Raises :class:`UsageError` (does not reproduce) on a
    deadlock or after :data:`_FREE_CPU_STEPS` steps."""
    c = m.tlbs.cpus[cpu]
    for _ in range(_FREE_CPU_STEPS):
        op = c.op
        if op is None:
            return
        if not op.runnable():
            run = m.runnable_ops()
            if not run:
                raise UsageError(f"CPU{cpu} waits for {op.blocked_on} and nothing runs")
            op = run[0]
        m.advance(op.id)
    raise UsageError(f"CPU{cpu} did not finish in {_FREE_CPU_STEPS} steps")


def _name_of(m: Machine, name: str, args: tuple):
    """What a reclaim's or migration's folios hold (``mem.owner``: ``('a', anon_vma, index)``
    or ``('f', file, pgoff)``) or which entry an eviction drops (``(mm, vpage)``), just
    before the action runs on ``m``; None for other actions."""
    if name in FOLIO_ACTIONS:
        owner = m.mem.owner
        return tuple(tuple(owner[f] for f in frames) for frames in args[1:])
    if name == "evict":
        return m.tlbs.evicted_by(m.tlbs.cpus[args[0]], args[1])
    return None


def _by_name(m: Machine, name: str, args: tuple, named):
    """``args`` with each folio, or the evicted entry, found again by what :func:`_name_of`
    recorded, in the candidate run ``m``; None if one is not there. A frame that still
    holds its page is kept (so an unchanged prefix replays exactly); else the lowest frame
    holding it (a folio swapped in again, or migrated, is the same page)."""
    if name == "evict":
        keys = m.tlbs.cached(m.tlbs.cpus[args[0]])
        return (args[0], keys.index(named)) if named in keys else None
    owner = m.mem.owner
    out = [args[0]]
    for frames, locs in zip(args[1:], named):
        got = []
        for f, loc in zip(frames, locs):
            if loc.__class__ is not tuple:  # not a folio when the run picked it: literal
                got.append(f)
                continue
            if f >= len(owner) or owner[f] != loc:
                f = next((g for g, o in enumerate(owner) if o == loc), None)
                if f is None:
                    return None
            got.append(f)
        out.append(tuple(got))
    return tuple(out)


def by_start_position(cls, cfg, strict, actions, names: dict | None = None) -> list:
    """``actions`` (a machine's log) with each ``advance(op_id)`` turned into
    ``advance(start position)``, found by replaying the log once. ``names``, if given,
    is filled with what each reclaim's and migration's folios held and which entry each
    eviction dropped, by position (:func:`_name_of`), for :func:`run_positions`.

    Example::

        >>> from conformance.registry import load_protocol
        >>> by_start_position(load_protocol("linux"), DEFAULT, False,
        ...                   [("fill", (0, 0)), ("munmap", (0, 0, 1)), ("advance", (0,))])
        [('fill', (0, 0)), ('munmap', (0, 0, 1)), ('advance', (1,))]
    """
    m = Machine(cls, cfg, strict=strict)
    start_of: dict = {}  # op id -> position of the action that started it
    out = []
    try:
        for pos, (name, args) in enumerate(actions):
            if name == "advance":
                out.append(("advance", (start_of.get(args[0], -1),)))
                m.advance(args[0])
            else:
                out.append((name, tuple(args)))
                if names is not None:
                    named = _name_of(m, name, args)
                    if named is not None:
                        names[pos] = named
                getattr(m, name)(*args)
            for o in m.ops:
                start_of.setdefault(o.id, pos)
    except Exception:  # noqa: BLE001 - the failure (or model bug) the log ends with
        pass
    return out + [(n, tuple(a)) for n, a in actions[len(out):]]


def shrink(failure: Failure, seconds: float = 3.0, same=None, max_runs: int | None = None) -> Failure:
    """A failure with fewer actions that fails the same way, found within ``seconds``.

    Greedy delta debugging over the failing run's actions: try to remove chunks
    (half the list, then quarters, ... then single actions, until a pass over
    single actions removes nothing), keeping a candidate only if it still fails
    and ``same(candidate)`` equals ``same(failure)`` (default: the rule), then
    smaller arguments (:func:`simpler_args`). A
    candidate is cut after the action where it failed. Then reordering (:func:`_move_pass`:
    one action moved elsewhere so that the run fails sooner) and removal again, while a
    move helps. Any exception that is
    not a :class:`Failure` means "does not reproduce". Greedy removal depends on its
    path, so it runs twice (:func:`_shrink_path`: literal candidates first, and named
    ones from the start) and keeps the shorter result. ``max_runs`` caps the candidates
    tried per path (and, separately, the reordering's) instead of (or as well as) the clock: with ``seconds=math.inf`` the result
    depends on the failure alone (what certify uses). The result is checked
    with :func:`conformance.reproducer.replay_actions`, so its
    ``machine.actions`` are a reproducer; if that check fails (it should not),
    the original failure is returned.

    Example::

        >>> from conformance.registry import load_protocol
        >>> ex = run_example(load_protocol("linux_4_3"), seed=11)
        >>> small = shrink(ex.failure)
        >>> len(ex.failure.machine.actions), len(small.machine.actions), small.rule
        (67, 3, 'S3')
    """
    m = failure.machine
    if m is None:
        return failure
    same = same or (lambda f: f.rule)
    deadline = time.monotonic() + seconds
    # greedy removal depends on the path it takes, so two paths, the shorter result kept
    # (the first on a tie): literal candidates first, then named ones (2.1's certify seed 5:
    # 7 actions literal, 21 named from the start; literal then named: 5), and named ones
    # from the start (2.9's seed 7: 34 actions literal then named, 9 named from the start)
    paths = [_shrink_path(failure, same, deadline, max_runs, literal_first)
             for literal_first in (True, False)]
    best = min(paths, key=lambda f: len(f.machine.actions))  # the first on a tie
    for other in paths:
        if other is not best and other is not failure:
            other.machine.close()  # the longer path's result: free it (Machine.close)
    if best is not failure:
        cls, cfg, strict = type(m.proto), m.cfg, m.oracle.strict
        check = replay_actions(cls, cfg, strict, best.machine.actions)
        if check is None or check.rule != failure.rule or same(check) != same(failure):
            return failure
        best = check
    return best


def _shrink_path(failure: Failure, same, deadline: float, max_runs: int | None,
                 literal_first: bool) -> Failure:
    """One path of :func:`shrink`, with its own ``max_runs`` candidates: a literal pass (if
    ``literal_first``), a named pass, then smaller arguments (:func:`_simplify_pass`: a folio
    fewer, a page fewer) and a named pass again while they help: an operation of a smaller
    batch or range has fewer steps, and what it no longer touches can make another one
    removable."""
    spent, runs = _budget(deadline, max_runs)
    best = _shrink_pass(failure, same, spent, runs, named=False) if literal_first else failure
    best = _shrink_pass(best, same, spent, runs, named=True)
    best = _again_while_it_helps(_simplify_pass, best, same, spent, runs)
    # then reordering, with ``max_runs`` candidates of its own: a move that makes the run
    # fail sooner leaves actions after the violation, and delta debugging may remove more
    spent, runs = _budget(deadline, max_runs)
    return _again_while_it_helps(_move_pass, best, same, spent, runs)


def _budget(deadline: float, max_runs: int | None) -> tuple:
    """``(spent, runs)``: a candidate counter (``runs[0]``, which the passes increment) and
    the test that the clock or ``max_runs`` candidates are spent."""
    runs = [0]

    def spent() -> bool:
        return time.monotonic() >= deadline or (max_runs is not None and runs[0] >= max_runs)
    return spent, runs


def _again_while_it_helps(step, best: Failure, same, spent, runs: list) -> Failure:
    """``step`` (:func:`_simplify_pass`, :func:`_move_pass`) and a named removal pass after
    each success, until ``step`` finds nothing or the budget is spent."""
    while not spent():
        found = step(best, same, spent, runs)
        if found is best:
            break
        best = _shrink_pass(found, same, spent, runs, named=True)
    return best


def _move_pass(failure: Failure, same, spent, runs: list) -> Failure:
    """One pass of :func:`shrink`'s reordering: each action of ``failure``'s run moved to each
    other position (named folios, as :func:`_shrink_pass` ``named=True``), in order; the
    first candidate that fails the same way in fewer actions, else ``failure`` itself.

    Delta debugging only removes actions, so it keeps the order the random schedule took.
    A shorter interleaving of the same operations often differs by one move: the access
    that observes the stale entry, a fill or one operation's step taken earlier, so that
    the violation comes before steps the run needed only afterwards (they are cut). The
    explorer finds such interleavings too, but breadth first over every one of them: on a
    2.7 failure of 20 actions it took 17,790 states and 60 CPU s to find one of 19, which
    one move finds in 0.2 s (delta debugging then removes four more actions).
    A candidate whose ``advance`` comes before its operation's start skips it
    (:func:`run_positions`)."""
    m = failure.machine
    want = same(failure)
    cls, cfg, strict = type(m.proto), m.cfg, m.oracle.strict
    names: dict = {}
    actions = by_start_position(cls, cfg, strict, m.actions, names)
    n = len(actions)
    for i in range(n):
        rest = [p for p in range(n) if p != i]
        for j in range(n):
            if j == i:  # its own place
                continue
            if spent():
                return failure
            runs[0] += 1
            f, _ = run_positions(cls, cfg, strict, actions, rest[:j] + [i] + rest[j:], names)
            if _reproduces(failure, same, want, f, n - 1):
                return f
    return failure


def simpler_args(name: str, args: tuple, named=None) -> list:
    """The one-step simplifications of a start action's arguments, each ``(args, named)``
    (``named``: :func:`_name_of`'s record for the new arguments), simplest first:

    * ``reclaim``, ``move_pages``: without its nested pass; a folio fewer in the batch or in
      the nested pass;
    * ``migrate``, ``compact``: a folio fewer;
    * ``munmap``, ``mprotect``, ``madvise``, ``mremap``, ``mmap``: a page fewer at either end
      of the range (``mremap`` moves both ends' destinations with it).

    Each strictly shrinks a batch or a range, so repeated simplification ends.

    Example::

        >>> simpler_args("reclaim", (0, (3, 4)))
        [((0, (4,)), None), ((0, (3,)), None)]
        >>> simpler_args("munmap", (1, 2, 2))
        [((1, 3, 1), None), ((1, 2, 1), None)]
        >>> simpler_args("munmap", (1, 2, 1))
        []
    """
    out = []
    if name in FOLIO_ACTIONS:
        if name in NESTED_ACTIONS and len(args) > 2 and args[2]:
            out.append(((args[0], args[1], ()), None if named is None else (named[0], ())))
        for t in range(1, len(args)):
            if len(args[t]) < 2:
                continue  # an empty batch or pass is no simpler: dropping it is above
            for j in range(len(args[t])):
                a = list(args)
                a[t] = args[t][:j] + args[t][j + 1:]
                nm = None
                if named is not None:
                    nm = list(named)
                    nm[t - 1] = named[t - 1][:j] + named[t - 1][j + 1:]
                    nm = tuple(nm)
                out.append((tuple(a), nm))
    elif name in ("munmap", "mprotect", "madvise", "mmap") and args[2] > 1:
        cpu, start, n = args[:3]
        out.append(((cpu, start + 1, n - 1) + args[3:], None))
        out.append(((cpu, start, n - 1) + args[3:], None))
    elif name == "mremap" and args[2] > 1:
        cpu, old, n, new = args
        out.append(((cpu, old + 1, n - 1, new + 1), None))
        out.append(((cpu, old, n - 1, new), None))
    return out


def _simplify_pass(failure: Failure, same, spent, runs: list) -> Failure:
    """One pass of :func:`shrink` over ``failure``'s start actions, replacing each one's
    arguments by a :func:`simpler_args` candidate that still fails the same way in a run no
    longer (named folios, as :func:`_shrink_pass` ``named=True``); ``failure`` itself if none
    does. As in Hypothesis's own order, a program with fewer folios or pages is simpler even
    at the same length (it reads simpler, and the explorer has fewer steps to interleave);
    the arguments shrink strictly, so the passes end."""
    m = failure.machine
    want = same(failure)
    cls, cfg, strict = type(m.proto), m.cfg, m.oracle.strict
    names: dict = {}
    actions = by_start_position(cls, cfg, strict, m.actions, names)
    keep = list(range(len(actions)))
    for pos, (name, args) in enumerate(actions):
        for new, named in simpler_args(name, args, names.get(pos)):
            if spent():
                return failure
            runs[0] += 1
            cand = actions[:pos] + [(name, new)] + actions[pos + 1:]
            cand_names = dict(names)
            if named is not None:
                cand_names[pos] = named
            f, _ = run_positions(cls, cfg, strict, cand, keep, cand_names)
            if _reproduces(failure, same, want, f, len(m.actions)):
                return f  # the positions moved: the caller starts over from f's own log
    return failure


def _reproduces(failure: Failure, same, want, f, longest: int) -> bool:
    """Does candidate run ``f`` (a :func:`run_positions` result) fail as ``failure`` did, with
    ``same(f) == want``, in at most ``longest`` actions? A rejected one's machine is freed
    (Machine.close)."""
    if f is not None and f.rule == failure.rule and same(f) == want \
            and len(f.machine.actions) <= longest:
        return True
    if f is not None and f.machine is not None:
        f.machine.close()
    return False


def _shrink_pass(failure: Failure, same, spent, runs: list, named: bool) -> Failure:
    """One greedy delta-debugging pass of :func:`shrink` over ``failure``'s actions until no
    chunk can go or ``spent()``; ``named``: folios and evicted entries by what they held and a
    busy CPU finishing first (:func:`run_positions`' ``names``), else the literal actions."""
    m = failure.machine
    want = same(failure)
    cls, cfg, strict = type(m.proto), m.cfg, m.oracle.strict
    names: dict | None = {} if named else None
    actions = by_start_position(cls, cfg, strict, m.actions, names)
    keep = list(range(len(actions)))
    best = failure

    def attempt(cand, shortest: int):
        # kept only if its run is shorter: a candidate without some advances can come out
        # as long or longer when a busy CPU finishes its operation first (_free_cpu)
        runs[0] += 1
        f, done = run_positions(cls, cfg, strict, actions, cand, names)
        if _reproduces(failure, same, want, f, shortest - 1):
            return f, cand[:done + 1]
        return None, None

    chunk = max(1, len(keep) // 2)
    while not spent():
        removed = False
        i = 0
        while i < len(keep) and not spent():
            f, cut = attempt(keep[:i] + keep[i + chunk:], len(best.machine.actions))
            if f is not None:
                best, keep, removed = f, cut, True
            else:
                i += chunk
        if chunk > 1:
            chunk = max(1, chunk // 2)
        elif not removed:
            break
    return best
