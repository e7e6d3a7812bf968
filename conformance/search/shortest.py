"""Shrunk is shortest: a failing run's operations as a threaded litmus scenario, explored.

Delta debugging (:func:`conformance.search.walk.shrink`) removes actions until none can go,
but it keeps the order the random schedule happened to take; a shorter interleaving
of the same operations may exist. This module turns the failing run into a
*threaded* litmus scenario (``docs/litmus.md``, "Threads") and lets the explorer
(:mod:`conformance.search.explorer`) find the shortest interleaving of it, breadth first:

* every operation a CPU started (a syscall, reclaim, migration, writeback, write())
  and every user access it made, and its context switches, become that CPU's
  ``thread`` program, in the order the CPU ran them (a CPU runs one thing at a time,
  so that order is fixed; ``advance`` actions are dropped: the explorer schedules);
* the other consumer's allocations and frees become a ``thread consumer`` program;
* TLB fills and evictions become ``hw`` events the explorer may fire at any point, as
  often as the run fired them (an eviction by the page it evicted, if that page
  belonged to the CPU's loaded mm: the only kind a ``hw`` line can name);
* frames are literal (``pfnK``): the machine boots the same way every time.

The run's own schedule is one of the interleavings explored, so the explorer finds a
counterexample at most as long (counted in machine actions: each explorer choice is
one action). It keeps only a counterexample that violates the same rule (or, for an oracle
violation, another oracle rule: the same race seen sooner) and replays from its actions
alone; otherwise the delta-debugged failure stands.

Example::

    >>> from conformance.registry import load_protocol
    >>> from conformance.reproducer import replay_actions
    >>> from conformance.config import DEFAULT
    >>> acts = [("reclaim", (0, (4,))), ("advance", (0,)), ("munmap", (1, 2, 1)),
    ...         ("advance", (1,))]
    >>> f = replay_actions(load_protocol("linux_4_3"), DEFAULT, False, acts)
    >>> print(litmus_text(f, "linux_4_3").split("thread", 1)[1])   # doctest: +ELLIPSIS
     CPU0
    reclaim R0 pfn4
    ...
"""
from __future__ import annotations

import attrs

from ..config import DEFAULT
from ..errors import Failure, UsageError
from ..reproducer import FOLIO_ACTIONS, NESTED_ACTIONS

#: the explorer's state cap when it looks for the shortest interleaving (deterministic, unlike
#: a time cap): 25,000 states, about 25 s on a 4-CPU run of five operations (the explorer
#: keys about 1,000 such states a second). 10,000 until 2026-12-02: 3 of 4 unproven 2.11
#: failures of docs/CORPUS.md need 10,216-24,183 states to reach their length
SHORTEST_MAX_STATES = 25_000

#: machine action -> (litmus verb, op name letter); the op's CPU is its first argument
_OP_VERBS = {"reclaim": "R", "migrate": "G", "compact": "C", "move_pages": "V", "munmap": "U", "mmap": "M", "mprotect": "P",
             "write": "W", "writeback": "B", "madvise": "A", "mremap": "X", "truncate": "T",
             "exit_mmap": "E", "fork": "K"}


class NotExpressible(Exception):
    """The run did something a litmus thread cannot say (an explicit ``fault`` action)."""


#: operations on one file page: the action's name -> its litmus verb (args: file, pgoff)
_FILE_PAGE_VERBS = {"write": "filewrite", "writeback": "writeback", "truncate": "truncate"}


def _op_line(name: str, args: tuple, label: str) -> str:
    a = args[1:]
    if name in FOLIO_ACTIONS:
        line = f"{name} {label} " + " ".join(f"pfn{f}" for f in a[0])
        if name in NESTED_ACTIONS and len(a) > 1 and a[1]:
            line += " nested " + " ".join(f"pfn{f}" for f in a[1])
        return line
    if name == "munmap":
        return f"munmap {label} v{a[0]} {a[1]}"
    if name == "mprotect":
        return f"mprotect {label} v{a[0]} {a[1]} {'rw' if a[2] else 'ro'}"
    if name == "mmap":
        start, n, file, writable, fixed = a
        kind = "anon" if file is None else f"file{file}"
        return f"mmap {label} v{start} {n} {kind} {'rw' if writable else 'ro'}" + \
            (" fixed" if fixed else "")
    if name in _FILE_PAGE_VERBS:
        return f"{_FILE_PAGE_VERBS[name]} {label} file{a[0]} {a[1]}"
    if name == "madvise":
        return f"madvise {label} v{a[0]} {a[1]} {a[2]}"
    if name == "mremap":
        return f"mremap {label} v{a[0]} {a[1]} v{a[2]}"
    if name == "exit_mmap":
        return f"exit {label}"
    if name == "fork":
        return f"fork {label} mm{a[0]}"
    raise NotExpressible(name)


def threads_of(proto_cls, cfg, strict: bool, actions) -> tuple:
    """(threads, consumer program, hw events) of a run: ``{cpu: [line]}``, ``[line]``,
    ``{(cpu, "fill"|"evict", vpage): count}``, found by replaying ``actions`` once.

    Example::

        >>> from conformance.registry import load_protocol
        >>> th, cons, hw = threads_of(load_protocol("linux"), DEFAULT, False,
        ...                           [("evict", (0, 1)), ("fill", (0, 1)), ("munmap", (1, 2, 1)),
        ...                            ("advance", (0,))])
        >>> th, cons, hw
        ({1: ['munmap U0 v2 1']}, [], {(0, 'evict', 1): 1, (0, 'fill', 1): 1})
    """
    from ..machine import Machine

    m = Machine(proto_cls, cfg, strict=strict)
    threads: dict = {}
    consumer: list = []
    hw: dict = {}
    count = 0
    try:
        for name, args in actions:
            args = tuple(tuple(a) if isinstance(a, list) else a for a in args)
            if name == "advance":
                m.advance(*args)
            elif name == "fill":
                cpu, vp = args
                c = m.tlbs.cpus[cpu]
                if m.tlbs.fill_changes(c, c.loaded_mm, vp):  # one that changes nothing is no event
                    # counted before it runs (a present PTE: it fills): the fill that fails
                    # C1 on the entry it made ends the run and must be in the scenario too
                    k = (cpu, "fill", vp)
                    hw[k] = hw.get(k, 0) + 1
                m.fill(cpu, vp)
            elif name == "evict":
                cpu, index = args
                c = m.tlbs.cpus[cpu]
                got = m.tlbs.evicted_by(c, index)
                m.evict(cpu, index)
                if got is not None and got[0] == c.loaded_mm.id:
                    k = (cpu, "evict", got[1])
                    hw[k] = hw.get(k, 0) + 1
            elif name == "user_access":
                cpu, vp, write = args
                threads.setdefault(cpu, []).append(f"{'write' if write else 'read'} v{vp}")
                m.user_access(cpu, vp, write)
            elif name == "switch_mm":
                threads.setdefault(args[0], []).append(f"switch mm{args[1]}")
                m.switch_mm(*args)
            elif name in ("consumer_alloc", "consumer_free"):
                consumer.append(f"consumer {name[9:]}")
                getattr(m, name)()
            elif name in _OP_VERBS:
                label = f"{_OP_VERBS[name]}{count}"
                count += 1
                threads.setdefault(args[0], []).append(_op_line(name, args, label))
                getattr(m, name)(*args)
            else:
                raise NotExpressible(name)
    except Failure:
        pass
    except Exception:  # noqa: BLE001 - the model bug (or protocol fault) the failing run
        # ends with (its runner made it a ModelError: ModelError.uncaught), here again: the
        # run is over, its threads are what ran; shrinking a model error crashed certify
        pass
    return threads, consumer, hw


def litmus_text(failure: Failure, protocol: str, doc: str = "") -> str:
    """The failing run of ``failure`` as a threaded litmus file (no prologue: the machine
    boots as configured), expecting ``failure.rule`` under ``protocol``.

    :class:`NotExpressible` if the run has an action a thread cannot say.
    """
    m = failure.machine
    threads, consumer, hw = threads_of(type(m.proto), m.cfg, m.oracle.strict, m.actions)
    diff = [f"{f.name}={str(getattr(m.cfg, f.name)).lower()}" for f in attrs.fields(type(m.cfg))
            if getattr(m.cfg, f.name) != getattr(DEFAULT, f.name)]
    out = [f"name   {protocol}-{failure.rule}-shortest"]
    for line in (doc or "the operations of a failing certify run; the explorer finds their "
                 "shortest interleaving").splitlines():
        out.append(f"doc    {line}")
    if diff:
        out.append("config " + " ".join(diff))
    out.append(f"expect {protocol} {failure.rule}")
    out.append("# other protocols' verdicts on this file were not computed")
    for cpu in sorted(threads):
        out.append("")
        out.append(f"thread CPU{cpu}")
        out.extend(threads[cpu])
    if consumer:
        out.append("")
        out.append("thread consumer")
        out.extend(consumer)
    if hw:
        out.append("")
    for (cpu, what, vp), n in sorted(hw.items()):
        out.append(f"hw CPU{cpu} {what} v{vp}" + (f" {n}" if n > 1 else ""))
    return "\n".join(out) + "\n"


def shortest(failure: Failure, max_states: int = SHORTEST_MAX_STATES, below_run: bool = True) -> tuple:
    """``(failure, litmus text, proven)``: the explorer's shortest interleaving of
    ``failure``'s operations if it is shorter (fewer machine actions), violates the same
    rule (or another oracle rule, where ``failure`` is an oracle violation) and replays from
    its actions; else ``failure`` itself. The text is the scenario
    explored (None when the run cannot be written as one); ``proven``: no interleaving of
    these operations fails sooner.

    The run itself is one interleaving of its scenario, of ``len(actions)`` choices (the
    scenario has no prologue and each explorer choice is one machine action), so the
    explorer looks only for a shorter one (``explore(..., shorter_than=len(actions))``):
    when every interleaving of fewer choices passes, the run is proven shortest without
    the deepest level's keys and expansions. ``below_run=False`` searches to the failure
    itself, as before 2026-12-03 (``bench/shortest.py`` compares the two).

    Deterministic: the explorer is breadth first in a fixed order and capped by states.
    """
    from .explorer import explore, path_of
    from ..litmus import parse
    from ..reproducer import replay_actions

    m = failure.machine
    if m is None:
        return failure, None, False
    cls = type(m.proto)
    name = _protocol_name(cls)
    try:
        text = litmus_text(failure, name)
        sc = parse(text, f"<{name} shortest>")
    except (NotExpressible, UsageError):
        return failure, None, False
    if not sc.threads:
        return failure, text, False
    try:
        res = explore(sc, cls, max_states=max_states, strict=m.oracle.strict,
                      shorter_than=len(m.actions) if below_run else None)
    except UsageError:
        # an interleaving the machine refuses (a thread's line invalid in some order the
        # run never took): the delta-debugged failure stands, unproven; never a crash
        return failure, text, False
    f = res.failure
    if f is None:  # no interleaving of fewer choices fails: shortest if the search finished
        # and the run itself is one of the scenario's interleavings, of len(actions) choices
        return failure, text, (res.complete and below_run
                               and path_of(sc, cls, m.actions, m.oracle.strict) is not None)
    if f.machine is None or not _same_kind(f, failure):
        return failure, text, False
    if len(f.machine.actions) >= len(m.actions):  # only without the bound: the run's length
        return failure, text, len(f.machine.actions) == len(m.actions)
    check = replay_actions(cls, m.cfg, m.oracle.strict, f.machine.actions)
    if check is None or check.rule != f.rule:
        return failure, text, False
    return check, text, True


def _protocol_name(cls) -> str:
    return getattr(cls, "name", cls.__name__)


def _same_kind(f: Failure, g: Failure) -> bool:
    """Can ``f`` stand for ``g``: the same rule, or both oracle violations (a shorter
    interleaving of the same operations that breaks S1 where the run broke C1 is the same
    race seen sooner; a model or protocol error never stands for a violation, nor the
    reverse)."""
    from ..errors import Violation

    return f.rule == g.rule or (isinstance(f, Violation) and isinstance(g, Violation))


#: delta-debugging candidates tried per round (about 1 to 3 ms each)
SHRINK_MAX_RUNS = 3000


def minimize(failure: Failure, max_runs: int = SHRINK_MAX_RUNS,
             max_states: int = SHORTEST_MAX_STATES, rounds: int = 4,
             below_run: bool = True) -> tuple:
    """``(failure, litmus text, proven)``: delta debugging (:func:`conformance.search.walk.shrink`,
    capped by candidates, not time), then :func:`shortest`; again while the explorer's
    interleaving let delta debugging remove more. ``proven`` as in :func:`shortest`, for
    the failure returned; the text is its scenario.

    Example::

        >>> from conformance.registry import load_protocol
        >>> from conformance.search.walk import run_example
        >>> ex = run_example(load_protocol("linux_4_3"), seed=6, swarm=True)
        >>> small, text, proven = minimize(ex.failure)
        >>> len(ex.failure.machine.actions), len(small.machine.actions), proven
        (17, 3, True)
    """
    import math

    from ..watchdog import stuck
    from .walk import shrink

    if stuck(failure):  # each replay would run the stuck hook's loop for its seconds again
        return failure, "", False
    best = shrink(failure, seconds=math.inf, max_runs=max_runs)
    for _ in range(rounds):
        f, text, proven = shortest(best, max_states, below_run)
        if f is best:  # the explorer searched best's own operations: text and proof are its
            return best, text, proven
        # f is a shorter interleaving; delta debugging may now remove more, and the next
        # round explores the operations f itself started
        smaller = shrink(f, seconds=math.inf, max_runs=max_runs)
        best = smaller if len(smaller.machine.actions) < len(f.machine.actions) else f
    # the rounds are spent: the explorer once more on what they left (unexplored so far), so
    # a run the last round shortened can still be proven
    return shortest(best, max_states, below_run)
