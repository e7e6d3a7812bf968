"""The bounded check: every program of up to K operations, every interleaving, the whole
machine (docs/BOUNDED.md).

From the boot state, a *transition* is one of (tried in this order, so the search is
deterministic):

* ``("f", cpu, vpage)``: the hardware fills a TLB entry of the CPU's loaded mm from a
  present PTE the CPU does not cache (a re-fill of a cached page is an eviction then a
  fill, both transitions);
* ``("e", cpu, mm, vpage)``: the hardware evicts a cached entry; by default not alone but
  paired with the transition that reads the entry's absence (:func:`steps`: a re-fill
  ``("r", ...)``, or a user access started on that CPU ``("m", ...)``), the lazy-eviction
  reduction (docs/BOUNDED.md, "Reductions"); a pair counts two transitions;
* ``("a", op_id)``: advance a runnable operation in flight to its next interleaving point
  (``Machine.advance``);
* ``("s", cpu, kind, args)``: start an operation of the menu (:mod:`conformance.search.menu`)
  with some arguments on an idle CPU, while fewer than K operations have been started. A
  user read or write is an operation of the program too: it counts against K (a fault
  it takes runs as its continuation, not as another operation).

Hardware events are not counted: TLB contents are finite, and the state key dedups
the cycles they make. Breadth first, with deduplication on a 16-byte digest of the
whole machine's fingerprint (:mod:`conformance.search.statekey`) plus the number of operations
started: the first failing transition found ends a shortest counterexample (fewest
transitions). A state with no operation in flight is checked as a quiescent machine
(C1 over every entry), as a reproducer's replay does at its end.

Operations are generators, which cannot be copied, so expanding a state re-executes its
path from a fresh machine (``_execute``) once, tries each hardware event on that machine
and undoes it (:func:`_hw_undoable`: a fill or an eviction runs no generator), each start
too (:mod:`conformance.search.snapshot`: a start runs only the new operation's generator), and
re-executes the path again for each advance but the last; the last kernel transition runs
on the machine itself. A dropped machine is disposed of (:meth:`Machine.dispose`).
Each frontier state carries its key's part digests (:func:`conformance.statekey.summary`),
from which its hardware successors are keyed without taking its parts again. A terminal state (K
operations started, none in flight) is not expanded when no fresh fill would fail C1
(:func:`_fresh_fills_pass`). The bound runs K = 1, 2, ... in turn: the first K that fails
is the smallest, and a stopped run says "complete up to K-1, partial at K". ``jobs`` > 1 splits each BFS level into chunks run by forked processes; the
parent merges the children in chunk order, so states, transitions and the
counterexample are the same for any number of jobs.

Example::

    >>> from conformance.config import MachineConfig
    >>> from conformance.registry import load_protocol
    >>> cfg = MachineConfig(ncpus=2, nmms=1, vpages=2, nframes=4, nfiles=1, file_pages=1,
    ...                     swap_slots=2, populate=False)
    >>> res = bounded(load_protocol("linux"), cfg, 1, menu=("read", "munmap"))
    >>> res.passed, res.levels[-1].k, res.levels[-1].complete
    (True, 1, True)
"""
from __future__ import annotations

import contextlib
import time

import attrs

from ..config import MachineConfig
from ..errors import Failure, ModelError, ProtocolError, UsageError, describe
from .explorer import fresh_fill_fails
from . import outside
from .menu import KINDS, MENUS
from .snapshot import snapshot
from .statekey import DIGEST_BYTES, digest_pd, hw_summary, key, summary

#: parents per chunk sent to a worker (jobs > 1); a chunk stops between parents at the deadline
CHUNK = 256


@attrs.define
class Level:
    """The search at one bound ``k``: distinct states, transitions executed, BFS depth
    reached, seconds, and whether it covered every interleaving of every program."""

    k: int
    states: int = 0
    transitions: int = 0
    depth: int = 0
    seconds: float = 0.0
    complete: bool = False
    peak_frontier: int = 0
    #: a violation was found at this bound (the level stopped at its first failing depth)
    failed: bool = False

    def line(self) -> str:
        """One line: ``K=2  51,557 states  ...``."""
        how = "complete" if self.complete else "counterexample" if self.failed else "partial"
        return (f"K={self.k}  {_n(self.states, 'state')}  {_n(self.transitions, 'transition')}  "
                f"depth {self.depth}  {self.seconds:.2f} s  {how}")


@attrs.define
class Result:
    """What :func:`bounded` found: one :class:`Level` per bound tried, and the shortest
    counterexample at the first bound that fails (``failure``, its ``path`` of transitions,
    ``fail_k``), or none. ``stopped``: why the search ended early ("budget", "interrupted",
    "max-states"), or None."""

    protocol: str
    config: MachineConfig
    menu: tuple
    bound: int
    strict: bool
    levels: list = attrs.Factory(list)
    failure: Failure | None = None
    path: tuple = ()
    fail_k: int | None = None
    stopped: str | None = None
    seconds: float = 0.0
    jobs: int = 1
    #: the reductions the search used (docs/BOUNDED.md, "Reductions"): "terminal states",
    #: "lazy evictions"; () for the unreduced search
    reductions: tuple = ()
    #: the menu's kinds that some state searched could start (it had arguments for them on
    #: an idle CPU): a kind never started was not checked at all, whatever the verdict
    started_kinds: set = attrs.Factory(set)
    #: False where the search stopped (``stopped``) after it had found ``failure`` through a
    #: lazy eviction's pair but before it had finished that BFS depth: the counterexample is
    #: real and K is the smallest bound, but one a transition shorter may lie in what was
    #: not searched (:func:`_found`)
    shortest: bool = True

    @property
    def counterexample(self) -> str:
        """What the reports call the counterexample: "shortest counterexample", or
        "counterexample" where the search stopped before it proved that (``shortest``)."""
        return "shortest counterexample" if self.shortest else "counterexample"

    @property
    def never_started(self) -> tuple:
        """The menu's kinds no state searched could start, in menu order: ``bound -k 2 --ops
        mremap`` on the default machine (no free range to move to) searched one state and
        said PASS with nothing to say mremap never ran (a user review, 2026-12-06)."""
        return tuple(n for n in self.menu if n not in self.started_kinds)

    @property
    def vacuous(self) -> bool:
        """No kind of the menu could start in any state searched: the search covered the
        hardware's events alone, and "no violation in any program of <= K operations" is
        true of no program at all (``bound -k 2 --ops mremap`` on a machine with no free
        range). Not a PASS: exit 4, as an incomplete search (a decision of 2026-12-07
        22:55; it said PASS, exit 0, with the kind named beside it)."""
        return self.failure is None and bool(self.menu) and not self.started_kinds

    @property
    def passed(self) -> bool:
        """No violation, every bound up to ``bound`` searched completely, and some kind of
        the menu started (not :attr:`vacuous`)."""
        return self.failure is None and self.stopped is None and bool(self.levels) \
            and self.levels[-1].k == self.bound and self.levels[-1].complete \
            and not self.vacuous

    @property
    def complete_k(self) -> int:
        """The largest bound searched completely without a violation (0: none)."""
        done = [lv.k for lv in self.levels if lv.complete]
        return max(done) if done else 0

    def headline(self) -> str:
        """The verdict in one line."""
        if self.failure is not None:
            # a protocol error is no violation: named as certify names it (it read "FAIL:
            # PROTOCOL-ERROR"; a user review, 2026-12-06)
            what = {ProtocolError.rule: "PROTOCOL ERROR", ModelError.rule: "MODEL ERROR"}.get(
                self.failure.rule, f"FAIL: {self.failure.rule}")
            if not self.shortest:
                return (f"{what} with a program of {_ops(self.fail_k)}: a counterexample of "
                        f"{_n(len(self.path), 'transition')}, not proven the shortest "
                        f"(stopped: {self.stopped}; one of {len(self.path) - 1} may exist)")
            return (f"{what} with a program of {_ops(self.fail_k)}: "
                    f"shortest counterexample {_n(len(self.path), 'transition')}")
        last = self.levels[-1] if self.levels else Level(self.bound)
        never = self.never_started
        unchecked = (f" ({', '.join(never)}: never started, no state searched "
                     + ("so far " if self.stopped else "")
                     + f"could start {'it' if len(never) == 1 else 'them'} on this machine)"
                     if never else "")
        if self.vacuous and self.stopped is None and last.complete:
            return (f"NOTHING CHECKED: no state searched could start any operation of the "
                    f"menu ({', '.join(self.menu)}) on this machine, so no program of "
                    f"<= {_ops(self.bound)} exists here: {_n(last.states, 'state')} of "
                    f"hardware events alone, {self.seconds:.1f} s")
        if self.passed:
            return (f"PASS: no violation in any interleaving of any program of <= "
                    f"{_ops(self.bound)}: {_n(last.states, 'state')}, "
                    f"{_n(last.transitions, 'transition')}, {self.seconds:.1f} s{unchecked}")
        return (f"PARTIAL ({self.stopped}): complete up to K={self.complete_k}, partial at "
                f"K={last.k}: {_n(last.states, 'state')}, depth {last.depth}, {self.seconds:.1f} s"
                f"{unchecked}")

    def to_dict(self) -> dict:
        """The result as JSON data (certify's report and certificate carry it)."""
        return {
            "bound": self.bound, "menu": list(self.menu), "config": attrs.asdict(self.config),
            "strict": self.strict, "verdict": self.headline(),
            "passed": self.passed, "complete_k": self.complete_k,
            "fail_k": self.fail_k, "shortest": self.shortest,
            "rule": self.failure.rule if self.failure else None,
            "path": [list(_jsonable(c)) for c in self.path], "stopped": self.stopped,
            "seconds": round(self.seconds, 3), "jobs": self.jobs,
            "reductions": list(self.reductions), "never_started": list(self.never_started),
            "levels": [attrs.asdict(lv) for lv in self.levels],
            "digest_bytes": DIGEST_BYTES,
        }


def _n(n: int, what: str) -> str:
    """``1 state``, ``51,557 states``."""
    return f"{n:,} {what}" + "s" * (n != 1)


def _ops(n: int) -> str:
    return _n(n, "operation")


def _jsonable(c):
    return tuple(list(x) if isinstance(x, tuple) else x for x in c)


# -- one execution ------------------------------------------------------------------------
class _Ctx:
    """What every execution of one search shares (set before workers fork)."""

    __slots__ = ("cls", "cfg", "strict", "menu", "k", "undo", "check_undo", "reduce",
                 "lazy_evict")

    def __init__(self, cls, cfg, strict, menu, k, undo=True, check_undo=False,
                 reduce=True, lazy_evict=True) -> None:
        self.cls, self.cfg, self.strict, self.menu, self.k = cls, cfg, strict, menu, k
        self.undo, self.check_undo, self.reduce = undo, check_undo, reduce
        self.lazy_evict = lazy_evict


def _started(path) -> int:
    return sum(1 for c in path if c[0] == "s")


def _execute(ctx: _Ctx, path):
    """A fresh machine run along ``path``: (machine, failure or None)."""
    from ..machine import Machine

    m = Machine(ctx.cls, ctx.cfg, strict=ctx.strict)
    try:
        for c in path:
            apply(m, c)
    except Failure as f:
        return m, f
    return m, None


def steps(c) -> tuple:
    """The primitive transitions of choice ``c``: ``(c,)``, or for a lazy eviction's pair
    (docs/BOUNDED.md, "Reductions") the eviction and the transition that consumes it:
    ``("r", cpu, mm, vp)`` is an eviction then a fill of that page (a re-fill),
    ``("m", cpu, mm, kind, args)`` an eviction then the start of a user access to it."""
    if c[0] == "r":
        return ("e", c[1], c[2], c[3]), ("f", c[1], c[3])
    if c[0] == "m":
        return ("e", c[1], c[2], c[4][0]), ("s", c[1], c[3], c[4])
    return (c,)


def _is_pair(c) -> bool:
    """Is choice ``c`` a lazy eviction's pair (two transitions, :func:`steps`)?"""
    return c[0] == "r" or c[0] == "m"


def _starts(c) -> bool:
    """Does choice ``c`` start an operation (count against K)?"""
    return c[0] == "s" or c[0] == "m"


def apply(m, c) -> None:
    """Perform transition ``c`` on machine ``m`` (one machine action; two for a lazy
    eviction's pair, :func:`steps`). An exception that is no :class:`Failure` (kernel code
    that tripped over what a hook left: its gather's pages, a VMA) is a failure of the
    transition as every other runner makes it (``ModelError.uncaught``: a PROTOCOL ERROR
    where a hook wrote kernel state, ``guard.blame``); it ended ``bound`` with a traceback
    (an audit, 2026-12-06)."""
    try:
        _apply(m, c)
    except (Failure, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - reported as the transition's failure
        raise ModelError.uncaught(exc, m) from exc


def _apply(m, c) -> None:
    if _is_pair(c):
        for p in steps(c):
            _apply(m, p)
        return
    kind = c[0]
    if kind == "a":
        m.advance(c[1])
    elif kind == "s":
        KINDS[c[2]].start(m, c[1], c[3])
    elif kind == "f":
        m.fill(c[1], c[2])
    else:
        _, cpu, mm_id, vp = c
        t = m.tlbs.cpus[cpu].tlb
        keys = [(i, v) for i in sorted(t) for v in t[i]]
        m.evict(cpu, keys.index((mm_id, vp)))


def choices(m, started: int, ctx: _Ctx) -> list:
    """Every transition enabled in ``m`` with ``started`` operations begun, in search order.

    With ``ctx.lazy_evict`` an eviction is no transition of its own: it comes paired with
    the transition that reads the entry's absence (:func:`steps`; docs/BOUNDED.md,
    "Reductions"): a re-fill of the page, or a user access to it started on that CPU."""
    out = []
    lazy = ctx.lazy_evict
    for c in m.tlbs.cpus:
        mm = c.loaded_mm
        cached = c.tlb.get(mm.id, {})
        out += [("f", c.id, vp) for vp, pte in enumerate(mm.ptes)
                if pte.kind == 1 and vp not in cached]
        if lazy:
            out += [("r", c.id, mm.id, vp) for vp in sorted(cached) if mm.ptes[vp].kind == 1]
        else:
            out += [("e", c.id, i, vp) for i, vp in m.tlbs.cached(c)]
    out += [("a", op.id) for op in m.ops if op.runnable()]
    if started < ctx.k:
        for c in m.tlbs.cpus:
            if c.op is None:
                mm_id = c.loaded_mm.id
                cached = c.tlb.get(mm_id, {})
                for name in ctx.menu:
                    kind = KINDS[name]
                    args = kind.args(m, c.id)
                    out += [("s", c.id, name, a) for a in args]
                    if lazy and kind.reads_tlb:
                        out += [("m", c.id, mm_id, name, a) for a in args if a[0] in cached]
    return out


def _fresh_fills_pass(m) -> bool:
    """In a terminal state (K operations started, none in flight) only fills and evictions
    remain. They change no PTE or memory but accessed bits, which C1 does not read; every
    entry they leave is either one cached now (checked: the state is quiescent and passed
    C1) or a fresh fill of a present PTE of a CPU's loaded mm. So a violation is reachable
    from here iff such a fresh fill fails C1: check each without running it."""
    return not any(pte.kind == 1 and fresh_fill_fails(m, cpu.id, vp)
                   for cpu in m.tlbs.cpus for vp, pte in enumerate(cpu.loaded_mm.ptes))


def _hw_undoable(m, c):
    """Before hardware event ``c`` runs on ``m``: a function that puts ``m`` back as it was,
    and the PTE a fill reads (None for an eviction).

    A fill or an eviction changes only the CPU's TLB table for one mm and the frame's
    reverse index (``Tlbs.refs``), the PTE's accessed bit (a fill), the oracle's C1
    counter and the history (events, actions, step): those are saved and restored, dict
    order included (the fingerprint reads dicts in order). No generator runs, so no
    operation's frame changes. ``--check-undo`` (and tests/test_bounded.py) compare the
    state key before and after every undo.
    """
    cpu = m.tlbs.cpus[c[1]]
    mm_id = cpu.loaded_mm.id if c[0] == "f" else c[2]
    vp = c[2] if c[0] == "f" else c[3]
    had_table = mm_id in cpu.tlb
    table = dict(cpu.tlb[mm_id]) if had_table else None
    old = table.get(vp) if table is not None else None
    pte = cpu.loaded_mm.ptes[vp] if c[0] == "f" else None
    # the reverse index of the frame the entry maps now and of the one a fill maps: a fill
    # over a stale entry (its PTE moved to another frame) moves the entry from one to the
    # other, and restoring only the first would leave a phantom in the second, which S1,
    # S2 and C1 read. choices() never fills a cached page (a re-fill is an evict-fill
    # pair, each undone on its own), so this is a defence (two reviews, 2026-12-07)
    frames = {f for f in (old.frame if old is not None else None,
                          pte.frame if pte is not None else None)
              if f is not None and f >= 0}
    refs = m.tlbs.refs
    saved_refs = [(f, dict(refs[f])) for f in sorted(frames)]
    accessed = pte.accessed if pte is not None else None
    ne, na, step, c1 = len(m.trace.events), len(m.actions), m.trace.step, m.oracle.checked_c1

    def undo() -> None:
        if had_table:
            t = cpu.tlb[mm_id]
            t.clear()
            t.update(table)
        else:
            cpu.tlb.pop(mm_id, None)
        for f, saved in saved_refs:
            r = refs[f]
            r.clear()
            r.update(saved)
        if pte is not None:
            pte.accessed = accessed
        del m.trace.events[ne:]
        del m.actions[na:]
        m.trace.step, m.oracle.checked_c1 = step, c1
    return undo, pte


def refs_match_tlbs(m) -> bool:
    """Is ``m.tlbs.refs`` (the reverse index S1, S2 and C1 read) exactly the entries the
    CPUs' TLBs hold? The state key does not read it (it is derived), so ``check_undo``
    asks this too.

    Example::

        >>> from conformance.machine import Machine
        >>> from conformance.registry import load_protocol
        >>> refs_match_tlbs(Machine(load_protocol("linux")))
        True
    """
    want: list = [{} for _ in m.tlbs.refs]
    for cpu in m.tlbs.cpus:
        for mm_id, table in cpu.tlb.items():
            for vp, e in table.items():
                want[e.frame][(cpu.id, mm_id, vp)] = e
    return all(a.keys() == b.keys() and all(a[x] is b[x] for x in a)
               for a, b in zip(want, m.tlbs.refs))


def _deadlock(m) -> ModelError | None:
    if m.ops and not any(op.runnable() for op in m.ops):
        f = ModelError("deadlock: " + ", ".join(f"{o} waits for {o.blocked_on}" for o in m.ops))
        f.machine = m
        return f
    return None


def expand(ctx: _Ctx, paths, first: int = 0, sums=None, stop=None):
    """Expand the states at ``paths`` (one BFS level's chunk, ``first`` the index of its
    first parent; ``sums``: their :func:`conformance.statekey.summary`, or None; ``stop``:
    None, or a function that says, before each parent but the first and before each
    child of the fast search, to end the chunk there: the budget ran out, and the caller,
    seeing that too, reports a partial level; one chunk of a large config can take
    minutes). Returns
    (children, transitions, failure, late, kinds): children are (parent index, choice, key,
    summary) in order, the chunk's own duplicates dropped (summary None in the plain
    search); failure is None or (parent index, choice) of the first failing transition
    (the chunk stops there); late is None or (parent index, choice) of the first failing
    pair of transitions (:func:`steps`) before it, which does not stop the chunk; kinds the
    names of the operation kinds the chunk's parents could start (:attr:`Result.never_started`)."""
    out = []
    # the chunk's own duplicates, kept apart for pairs: a pair's child lies one level deeper
    # than a single transition's, so a pair must not hide a later parent's equal child
    seen, seen_pairs = set(), set()
    transitions = 0
    late = None
    kinds: set = set()
    for n, path in enumerate(paths):
        if n and stop is not None and stop():
            break
        try:
            got = _expand_one(ctx, path, kinds, sums[n] if sums else None, stop)
        except _Cut:  # the caller, seeing the budget spent too, reports a partial level
            break
        kids, trans, failed, pair = got
        transitions += trans
        if pair is not None and late is None:
            late = (first + n, pair)
        for c, k, sm in kids:
            dup = seen_pairs if _is_pair(c) else seen
            if k not in dup:
                dup.add(k)
                out.append((first + n, c, k, sm))
        if failed is not None:
            return out, transitions, (first + n, failed), late, kinds
    return out, transitions, None, late, kinds


def _expand_one(ctx: _Ctx, path, kinds: set, base, stop):
    """One parent's children, transitions, failing choice and failing pair, the fast way or
    the plain one (:func:`expand`)."""
    with _unreadable_state(ctx.cls):
        if ctx.undo:
            kids, trans, failed = _expand_fast(ctx, path, kinds, base, stop)
            if failed is None:
                return kids, trans, None, None
            # the children before it, in choices order
        return _expand_plain(ctx, path, kinds)


@contextlib.contextmanager
def _unreadable_state(cls):
    """An exception raised in the protocol's own code while the search keys a state is no
    transition's failure (:func:`apply` makes those): its state could not be read for the
    key (a dict subclass whose ``items`` raises), a one-line :class:`UsageError`; it ended
    ``bound`` with a traceback (an audit, 2026-12-06)."""
    try:
        yield
    except (Failure, _Cut, KeyboardInterrupt, UsageError):
        raise
    except Exception as exc:
        from ..machine import _protocol_files, _where

        where = _where(exc, _protocol_files(cls))
        if not where:
            raise
        raise UsageError(f"protocol {getattr(cls, 'name', cls.__name__)}: its state cannot be "
                         f"read for the bounded check's state key: {type(exc).__name__}: "
                         f"{describe(exc)}{where}") from None


def _parent(ctx: _Ctx, path, kinds: set):
    """The machine at ``path`` re-executed, the operations started and its transitions;
    None for a terminal state that is not expanded (docs/BOUNDED.md, "Reductions").
    ``kinds`` gains the name of every operation kind the state can start."""
    m, fail = _execute(ctx, path)
    if fail is not None:  # cannot happen: failing children are never queued
        raise ModelError(f"bounded: replay of a passing state failed: {fail}")
    started = _started(path)
    if ctx.reduce and started == ctx.k and not m.ops and _fresh_fills_pass(m):
        m.dispose()
        return None
    opts = choices(m, started, ctx)
    kinds.update(c[2] for c in opts if c[0] == "s")  # an "m" pair's kind has its "s" too
    return m, started, opts


def _fails(child, c) -> bool:
    """Run kernel transition ``c`` on ``child``: does it fail (a violation, or a deadlock)?"""
    try:
        apply(child, c)
        if not child.ops:
            child.check_quiescent()
        elif _deadlock(child) is not None:
            return True
    except Failure:
        return True
    return False


def _expand_plain(ctx: _Ctx, path, kinds: set):
    """One parent, every transition on a re-execution and every key whole (the unreduced
    search): ([(choice, key)] in choices order up to the first failure, transitions,
    failing choice or None, first failing pair or None). A failing pair (:func:`steps`)
    does not stop the parent: its counterexample is one transition longer than a single
    transition's, so the search reports it only if no single one fails (:func:`_search`)."""
    got = _parent(ctx, path, kinds)
    if got is None:
        return [], 0, None, None
    m, started, opts = got
    kids = []
    late = None
    for i, c in enumerate(opts):
        child = m if i == len(opts) - 1 else _execute(ctx, path)[0]
        if _fails(child, c):
            if not _is_pair(c):
                return kids, i + 1, c, late
            late = late or c
            child.dispose()
            continue
        kids.append((c, key(child, started + _starts(c)), None))
        child.dispose()
    return kids, len(opts), None, late


class _Cut(Exception):
    """The budget ran out in the middle of one parent's expansion (:func:`_expand_fast`)."""


def _expand_fast(ctx: _Ctx, path, kinds: set, base=None, stop=None):
    """One parent, the fast way (docs/BOUNDED.md, "What makes it faster"): its machine is
    re-executed once; hardware events are undone (:func:`_hw_undoable`), starts too
    (:mod:`conformance.search.snapshot`); each advance but the last runs on a re-execution, the
    last kernel transition on the machine itself. ``base``: the parent's summary
    (:func:`conformance.statekey.summary`), taken when it was made, or None. Returns
    ([(choice, key, summary)] in choices order, transitions, failing choice or None): on a
    failure the caller redoes the parent with :func:`_expand_plain` (which child comes
    first in choices order). ``stop``: as :func:`expand`'s, asked before each child too
    (a large config's one parent took minutes past ``bound --budget 3``: a review,
    2026-12-05); when it says so, :class:`_Cut` ends the expansion."""
    got = _parent(ctx, path, kinds)
    if got is None:
        return [], 0, None
    m, started, opts = got

    def cut() -> None:
        if stop is not None and stop():
            m.dispose()
            raise _Cut
    hw = [c for c in opts if c[0] in "fer"]  # choices() lists the hardware events first
    adv = [c for c in opts if c[0] == "a"]
    st = [c for c in opts if _starts(c)]
    keys = {}
    # No quiescent check after a hardware event: C1 over every entry is C1 of each entry;
    # an eviction removes one, a fill adds one that Machine.fill checks itself, and only
    # the accessed bit changes elsewhere, which C1 does not read. The parent passed it.
    if hw and base is None:
        base = summary(m)
    n = 0
    for c in hw:
        cut()
        n += 1
        first = None
        if c[0] == "r":  # a re-fill: the eviction, then the fill, each undone
            first, c1 = steps(c)
            undo_first, _ = _hw_undoable(m, first)
            apply(m, first)
        else:
            c1 = c
        undo, pte = _hw_undoable(m, c1)
        acc = pte.accessed if pte is not None else True
        try:
            apply(m, c1)
        except Failure:
            return [], n, c
        sm = hw_summary(m, base, c[1], not acc)
        k = digest_pd(sm[1], started)
        if ctx.check_undo and k != key(m, started):
            raise ModelError(f"bounded: the key after {c} differs when taken whole")
        undo()
        if first is not None:
            undo_first()
        if ctx.check_undo and key(m, started) != digest_pd(base[1], started):
            raise ModelError(f"bounded: undoing {c} did not restore the state")
        if ctx.check_undo and not refs_match_tlbs(m):  # the key does not read the index
            raise ModelError(f"bounded: undoing {c} left the TLBs' reverse index wrong")
        keys[c] = k, sm
    # kernel transitions: the starts undone (all of them when an advance follows, else all
    # but the last), each advance but the last on a re-execution, the last on ``m``
    kern = st + adv
    snap = snapshot(m) if len(kern) > 1 and st else None
    if snap is not None and not snap.exact:  # state no restore can set back: re-execute
        snap = None
    for i, c in enumerate(kern):
        cut()
        last = i == len(kern) - 1
        child = m if last or (_starts(c) and snap is not None) else _execute(ctx, path)[0]
        n += 1
        if _fails(child, c):
            return [], n, c
        sm = summary(child)
        k = digest_pd(sm[1], started + _starts(c))
        keys[c] = k, sm
        if child is not m or last:
            child.dispose()
        elif _starts(c):
            if ctx.check_undo:
                again = _execute(ctx, path)[0]
                apply(again, c)
                if key(again, started + 1) != k:
                    raise ModelError(f"bounded: the key after {c} differs on a re-execution")
            snap.restore()
            if ctx.check_undo and key(m, started) != key(_execute(ctx, path)[0], started):
                raise ModelError(f"bounded: undoing {c} did not restore the state")
    if not kern:  # hardware events only: the parent's machine is not needed again
        m.dispose()
    return [(c,) + keys[c] for c in opts], n, None


def _failure_of(ctx: _Ctx, path) -> Failure:
    """Re-run a failing path for its Failure (with the machine, its trace and actions)."""
    m, fail = _execute(ctx, path)
    if fail is None and not m.ops:
        try:
            m.check_quiescent()
        except Failure as f:
            fail = f
    if fail is None:
        fail = _deadlock(m)
    if fail is None:
        raise ModelError("bounded: a failing path passed when re-run (nondeterminism)")
    return fail


# -- the search ----------------------------------------------------------------------------
_WORKER_CTX: _Ctx | None = None


def _work(paths, first, sums, wall_deadline):
    stop = None if wall_deadline is None else (lambda: time.perf_counter() > wall_deadline)
    before = outside.look(_WORKER_CTX.cls)  # a worker's changes stay in the worker
    with outside.changes_first(_WORKER_CTX.cls, before):
        got = expand(_WORKER_CTX, paths, first, sums, stop)
    outside.check(_WORKER_CTX.cls, before)
    return got


def bounded(cls, cfg: MachineConfig, bound: int, *, menu=MENUS["small"], strict: bool = False,
            budget_s: float | None = None, jobs: int = 1, max_states: int | None = None,
            start_k: int = 1, progress=None, undo: bool = True,
            check_undo: bool = False, clock=time.perf_counter,
            reduce: bool = True, lazy_evict: bool = True) -> Result:
    """Search every program of up to ``bound`` operations from ``menu`` under ``cls``.

    Bounds ``start_k``..``bound`` in turn; stops at the first that fails (its shortest
    counterexample), at ``budget_s`` seconds, at ``max_states`` states in one bound, or on
    Ctrl-C (a partial result). ``progress(level)`` is called after each BFS level.
    ``clock`` measures the budget (``time.process_time``: CPU seconds of this process, for
    benchmarks on a loaded machine, one job). ``reduce`` (the terminal-state reduction) and
    ``lazy_evict`` (evictions only paired with what reads them) are the reductions
    (docs/BOUNDED.md, "Reductions"); ``undo`` and ``reduce`` and ``lazy_evict`` all False is
    the unreduced search. A menu kind that switches mm turns ``lazy_evict`` off.
    """
    lazy_evict = lazy_evict and not any(KINDS[n].switches_mm for n in menu)
    t0 = time.perf_counter()
    deadline = None if budget_s is None else clock() + budget_s
    name = getattr(cls, "name", cls.__name__)
    res = Result(name, cfg, tuple(menu), bound, strict, jobs=jobs,
                 reductions=("terminal states",) * reduce + ("lazy evictions",) * lazy_evict)
    before = outside.look(cls)  # state the keys cannot see must not change (outside.py)
    try:
        with outside.changes_first(cls, before):
            for k in range(start_k, bound + 1):
                ctx = _Ctx(cls, cfg, strict, tuple(menu), k, undo, check_undo, reduce,
                           lazy_evict)
                lv = Level(k)
                res.levels.append(lv)
                _search(ctx, lv, res, deadline, jobs, max_states, progress, clock)
                if res.failure is not None or res.stopped is not None:
                    break
    except KeyboardInterrupt:
        res.stopped = "interrupted"
    outside.check(cls, before)
    res.seconds = time.perf_counter() - t0
    return res


def _search(ctx, lv: Level, res: Result, deadline, jobs, max_states, progress, clock) -> None:
    t0 = time.perf_counter()
    root, fail = _execute(ctx, ())
    try:
        root.check_quiescent()  # the boot state (populated: every CPU caches its pages)
    except Failure as f:
        res.failure, res.fail_k, res.path = f, ctx.k, ()
        lv.failed = True
        return
    with _unreadable_state(ctx.cls):
        root_sum = summary(root)
    seen = {digest_pd(root_sum[1], 0)}
    root.dispose()
    lv.states = 1
    frontier = [()]
    sums = [root_sum]  # each frontier state's summary (the fast search's hardware keys)
    pool = _pool(ctx, jobs) if jobs > 1 else None
    # children of a pair of transitions (a lazy eviction and its consumer, :func:`steps`)
    # lie two levels down: they wait here, as (path, key, summary), and join the next
    # frontier first, before that level's own children (so BFS order stays by length)
    later: list = []
    pair_fail = None
    try:
        while frontier or later:
            nxt = []
            nsums = []

            def admit(p, k, sm) -> None:
                if k not in seen:
                    seen.add(k)
                    nxt.append(p)
                    nsums.append(sm)
            for p, k, sm in later:
                admit(p, k, sm)
            later = []
            pair_fail = None
            for children, trans, failed, pair, kinds in _level(ctx, frontier, sums, pool,
                                                                jobs, deadline, clock):
                lv.transitions += trans
                res.started_kinds |= kinds
                pair_fail = pair_fail or pair
                for parent, c, k, sm in children:
                    if _is_pair(c):
                        later.append((frontier[parent] + steps(c), k, sm))
                    else:
                        admit(frontier[parent] + (c,), k, sm)
                if failed is not None:
                    hit = failed
                    break
                lv.states = len(seen)
                if max_states is not None and lv.states >= max_states:
                    res.stopped = "max-states"
                    _found(ctx, lv, res, frontier, pair_fail, shortest=False)
                    return
                if deadline is not None and clock() > deadline:
                    res.stopped = "budget"
                    _found(ctx, lv, res, frontier, pair_fail, shortest=False)
                    return
            else:
                hit = pair_fail  # a failing pair counts once the level has no failure
            if hit is not None:
                lv.states = len(seen)
                _found(ctx, lv, res, frontier, hit)
                return
            if nxt or later:
                lv.depth += 1
            lv.peak_frontier = max(lv.peak_frontier, len(nxt))
            frontier, sums = nxt, nsums
            lv.seconds = time.perf_counter() - t0
            if progress is not None:
                progress(lv)
        lv.complete = True
    except KeyboardInterrupt:  # Ctrl-C: a partial result (the workers are stopped below)
        res.stopped = "interrupted"
        _found(ctx, lv, res, frontier, pair_fail, shortest=False)
    finally:
        lv.seconds = time.perf_counter() - t0
        if pool is not None:
            _close(pool, cancel=res.stopped is not None or res.failure is not None)


def _found(ctx, lv: Level, res: Result, frontier, hit, shortest: bool = True) -> None:
    """Report the failing choice ``hit`` (``(parent, choice)`` in ``frontier``; None:
    nothing) as the level's counterexample.

    ``shortest`` False: the search stopped inside a BFS depth after a lazy eviction's pair
    had failed there. A failing pair waits for the end of its depth, where a single
    transition one shorter may still fail; a search stopped before that end said PARTIAL
    and dropped a real violation (``bounded(linux, ..., max_states=2)`` under a violation
    only a pair reaches,
    ``test_a_failing_pair_is_reported_when_the_search_stops_before_its_depth_ends``). It is
    reported, not shown as proven the shortest (``Result.shortest``); the bound is still
    the smallest: every smaller one was searched completely."""
    if hit is None:
        return
    parent, c = hit
    res.path = frontier[parent] + steps(c)
    res.failure = _failure_of(ctx, res.path)
    res.fail_k = ctx.k
    res.shortest = shortest
    lv.failed = True


def _level(ctx, frontier, sums, pool, jobs, deadline, clock):
    """The level's chunks' results, in chunk order (lazily: the caller may stop early).
    Each chunk also stops between parents once ``deadline`` has passed (the caller then
    stops the level): in a worker only when the budget is wall time (``time.perf_counter``
    is CLOCK_MONOTONIC, one clock for every process; a CPU-time budget, the benchmarks',
    is one job's)."""
    if pool is None:
        step = 64  # small chunks: the deadline is checked often
        stop = None if deadline is None else (lambda: clock() > deadline)
        for i in range(0, len(frontier), step):
            yield expand(ctx, frontier[i:i + step], i, sums[i:i + step], stop)
        return
    wall = deadline if clock is time.perf_counter else None
    step = max(1, min(CHUNK, -(-len(frontier) // jobs)))
    futs = []
    window = 2 * jobs
    starts = list(range(0, len(frontier), step))
    nxt = 0

    def submit(i):
        return pool.submit(_work, frontier[i:i + step], i, sums[i:i + step], wall)
    while nxt < len(starts) and len(futs) < window:
        futs.append(submit(starts[nxt]))
        nxt += 1
    while futs:
        r = futs.pop(0).result()
        if nxt < len(starts):
            futs.append(submit(starts[nxt]))
            nxt += 1
        yield r


def _pool(ctx, jobs):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from ..executors import _ignore_sigint

    global _WORKER_CTX
    _WORKER_CTX = ctx  # inherited by the forked workers
    mp = multiprocessing.get_context("fork")
    # the workers leave Ctrl-C to the parent and run their own watchdog, as certify's do:
    # without it a hook that never returns hung `bound --jobs 2` for good (2026-12-05)
    return ProcessPoolExecutor(max_workers=jobs, mp_context=mp, initializer=_ignore_sigint)


def _close(pool, cancel: bool) -> None:
    from ..executors import shut_pool

    shut_pool(pool, cancel)
