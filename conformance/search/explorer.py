"""The exhaustive explorer: every interleaving of a litmus scenario's threads and hardware
events, breadth first, with state deduplication; the shortest counterexample if any.

A *threaded* litmus file (``docs/litmus.md``, "Threads") has a prologue (a script run
once, in order), one program per CPU (``thread CPUn``) and the hardware events the
hardware may add (``hw CPUn fill|evict vN [COUNT]``). A *choice* is one of:

* ``("t", i)``: thread ``i`` makes one step: if its operation (a syscall, reclaim, or
  the fault handler of its last access) is in flight, that operation runs to its next
  interleaving point (``Machine.advance``); otherwise the thread's next line runs
  (an access, or the start of an operation, whose first step runs at once);
* ``("h", j)``: hardware event ``j`` fires (a speculative fill of a present PTE the CPU
  does not cache as it is now: not at all, or from an older PTE, ``Tlbs.fill_changes``; or
  the eviction of a cached entry), at most COUNT times, while a thread is left; after the
  end of every thread the fills still allowed are checked without being run
  (:func:`_failing_fill`).

A state is the sequence of choices that reaches it. Operations are Python generators,
which cannot be copied, so a state is *re-executed* from a fresh machine to expand it
(a step costs about 10 microseconds). Breadth-first order makes the first failure found
a shortest one (fewest choices). Deduplication keys a state on :func:`fingerprint`: the
whole machine (page tables, TLBs, memory, page and swap cache, locks, protocol state, the
oracle's expected values) plus, for each operation in flight, its step count and the
code position and locals of every frame of its generator stack (``gi_frame``,
``gi_yieldfrom``); and the threads' positions and the hardware events left.

Example::

    >>> from conformance.litmus import load
    >>> from conformance.registry import load_protocol
    >>> res = explore(load("litmus/bug-2.4-reclaim-vs-mprotect.litmus"),
    ...               load_protocol("linux_4_3"))                      # doctest: +SKIP
    >>> res.verdict, len(res.path)                                     # doctest: +SKIP
    ('S3', 3)
"""
from __future__ import annotations

import time
import types
from bisect import bisect_left
from collections import deque

import attrs

from ..errors import Failure, ModelError, UsageError
from ..hookpoints import paused_frames
from . import outside
from .fingerprint import SPECIAL, UNREAD, model_kind, unreadable
from .framestack import key_values
from ..litmus import Scenario, Unmapped, _Runner

#: default cap on distinct states (a scenario that needs more is too big to be a litmus test)
MAX_STATES = 200_000


@attrs.define
class Result:
    """What :func:`explore` found.

    ``failure`` is the shortest counterexample (its machine holds the trace and the
    actions, so ``failure.report()`` draws the timeline and ``reproducer.save`` saves it),
    ``path`` its choices; ``states`` distinct states expanded or reached, ``transitions``
    choices executed, ``interleavings`` complete schedules (counted over the state graph,
    so the same number with or without deduplication), ``complete`` False when the state
    cap stopped the search or a failure ended it. ``shorter_than``: the search looked only
    for a counterexample of fewer choices (None: any length); then ``complete`` with no
    failure says that no interleaving of fewer choices fails, and interleavings are not
    counted.
    """

    scenario: str
    protocol: str
    failure: Failure | None
    path: tuple
    states: int
    transitions: int
    interleavings: int
    seconds: float
    complete: bool
    dedup: bool
    preemption_bound: int | None
    max_depth: int
    shorter_than: int | None = None

    @property
    def verdict(self) -> str:
        return "pass" if self.failure is None else self.failure.rule

    def summary(self) -> str:
        how = "deduplicated" if self.dedup else "no deduplication"
        if self.preemption_bound is not None:
            how += f", at most {self.preemption_bound} preemption(s)"
        # a failure ends the search by design (the shortest counterexample): not "early"
        done = "" if self.complete or self.failure is not None else " (search stopped early)"
        if self.shorter_than is not None:
            how += f", only paths of fewer than {self.shorter_than} choices"
        inter = (f"{self.interleavings} interleavings" if self.complete and self.shorter_than is None
                 else "interleavings not counted")
        return (f"{self.states} states, {self.transitions} transitions, {inter}, depth "
                f"{self.max_depth}, {self.seconds:.2f} s ({how}){done}")


#: thread verbs run by a task of the CPU's loaded mm: they wait while that mm exits (and
#: ``exit`` waits until no task of its mm is in the kernel)
_TASK_VERBS = frozenset({"touch", "read", "write", "munmap", "mprotect", "mmap", "madvise",
                         "mremap", "exit", "fork"})


class _Thread:
    __slots__ = ("cpu", "prog", "pc", "op", "tries")

    def __init__(self, cpu: int, prog: list) -> None:
        self.cpu = cpu
        self.prog = prog
        self.pc = 0
        self.op = None  # the operation in flight for this thread
        self.tries = 0  # accesses made by the current ``touch``


class _Run:
    """One execution: a machine built from the scenario, driven by choices."""

    def __init__(self, sc: Scenario, proto_cls, strict: bool) -> None:
        from ..machine import Machine

        self.sc = sc
        self.m = Machine(proto_cls, sc.config, strict=strict)
        self.r = _Runner(sc, self.m)
        self.threads = [_Thread(cpu, prog) for cpu, prog in sc.threads]
        self.hw_left = [ev[4] for ev in sc.hw]
        self.last = -1  # the thread that made the previous step
        self.preemptions = 0

    def prologue(self) -> None:
        for no, words in self.sc.lines:
            try:
                self.r.line(no, words)
            except (IndexError, ValueError) as exc:
                raise self.r.err(no, f"bad arguments ({exc})") from None
        self.m.drain()
        for cpu, mm in sorted(self.sc.thread_mm.items()):  # thread CPUn mmM
            self.m.switch_mm(cpu, mm)

    # -- what may happen next ------------------------------------------------------
    def thread_enabled(self, t: _Thread) -> bool:
        if t.op is not None:
            return t.op.runnable()
        if t.pc >= len(t.prog):
            return False
        verb = t.prog[t.pc][1][0]
        if verb in _TASK_VERBS:  # a task of the CPU's mm: none runs while the mm exits
            if verb == "exit":
                return self.m.can_exit(t.cpu)
            if verb == "fork" and self._child_busy(t.prog[t.pc][1]):
                return False  # the child's slot is still in use: fork waits for it
            return not self.m.tlbs.cpus[t.cpu].loaded_mm.exiting
        if verb == "switch":  # to a task of mm N: none while N exits or a fork replaces it
            return not self._taskless_target(t.prog[t.pc][1], t.cpu)
        return True

    def _slot(self, w, i: int):
        """The mm named ``mmN`` by word ``i`` of line ``w``, or None where it names none (a
        malformed line is left to the parser's error when it runs)."""
        slot = w[i][2:] if len(w) > i and w[i].startswith("mm") else ""
        mms = self.m.mms
        return mms[int(slot)] if slot.isdigit() and int(slot) < len(mms) else None

    def _taskless_target(self, w, cpu: int) -> bool:
        """``switch mmN`` to another mm whose slot has no task now (its exit, or a fork into
        it, in flight): :meth:`Machine.switch_mm` refuses it, so the thread waits."""
        mm = self._slot(w, 1)
        return mm is not None and mm.exiting and mm is not self.m.tlbs.cpus[cpu].loaded_mm

    def _child_busy(self, w) -> bool:
        """``fork NAME mmN`` whose slot N is in ``exit_mmap`` or has a task in the kernel:
        not startable yet (:meth:`Machine.fork` refuses it, :meth:`Machine.can_fork_into`)."""
        mm = self._slot(w, 2)
        return mm is not None and not self.m.can_fork_into(mm.id)

    def done(self) -> bool:
        return all(t.op is None and t.pc >= len(t.prog) for t in self.threads)

    def hw_enabled(self, j: int) -> bool:
        if not self.hw_left[j]:
            return False
        _no, cpu, what, vp, _n = self.sc.hw[j]
        tlbs = self.m.tlbs
        c = tlbs.cpus[cpu]
        if what == "evict":
            return tlbs.lookup(c, c.loaded_mm.id, vp) is not None
        return tlbs.fill_changes(c, c.loaded_mm, vp)  # a present PTE, not cached as it is now

    def choices(self, bound) -> list:
        out = []
        last_enabled = 0 <= self.last < len(self.threads) and self.thread_enabled(self.threads[self.last])
        for i, t in enumerate(self.threads):
            if not self.thread_enabled(t):
                continue
            if bound is not None and last_enabled and i != self.last and self.preemptions >= bound:
                continue
            out.append(("t", i))
        if out or not self.done():
            out += [("h", j) for j in range(len(self.sc.hw)) if self.hw_enabled(j)]
        return out

    # -- doing it -----------------------------------------------------------------------
    def apply(self, choice) -> None:
        kind, i = choice
        if kind == "h":
            self.hw_left[i] -= 1
            _no, cpu, what, vp, _n = self.sc.hw[i]
            m = self.m
            if what == "fill":
                m.fill(cpu, vp)
            else:
                c = m.tlbs.cpus[cpu]
                keys = m.tlbs.cached(c)
                m.evict(cpu, keys.index((c.loaded_mm.id, vp)))
            return
        t = self.threads[i]
        if self.last >= 0 and i != self.last and self.thread_enabled(self.threads[self.last]):
            self.preemptions += 1
        self.last = i
        if t.op is not None:
            self.m.advance(t.op.id)
        else:
            self._next_line(t)
        if t.op is not None and t.op not in self.m.ops:
            t.op = None

    def _next_line(self, t: _Thread) -> None:
        m, r = self.m, self.r
        no, w = t.prog[t.pc]
        verb = w[0]
        try:
            if verb in ("read", "write", "touch"):
                write = (w[1] == "w") if verb == "touch" else verb == "write"
                vp = r.vpage(no, w[-1])
                res = r.call(no, verb, "user_access", t.cpu, vp, write)
                if res == "fault":
                    t.op = m.tlbs.cpus[t.cpu].op
                    t.tries += 1
                    if verb == "touch" and t.tries < 4:
                        return  # access again once the fault handler has returned
                t.pc += 1
                t.tries = 0
                return
            if verb == "consumer":
                (m.consumer_alloc if w[1] == "alloc" else m.consumer_free)()
            else:
                try:
                    t.op = r.cpu_verb(no, t.cpu, w)
                except Unmapped:
                    m.trace.msg(t.cpu, "%s: nothing mapped, skipped", " ".join(w))
        except (IndexError, ValueError) as exc:
            raise r.err(no, f"bad arguments ({exc})") from None
        t.pc += 1

    def key(self, bound) -> bytes:
        """The state's key: the bounded check's 16-byte digest of the machine
        (:func:`conformance.search.statekey.key`: the content of :func:`fingerprint`, read
        by functions generated per class) with the threads' positions, the hardware
        events left and, under a preemption bound, who ran last and the preemptions spent.
        Same states as keying by :func:`fingerprint` itself (every threaded litmus file
        under seven protocols: the same states, transitions and counterexamples) until
        2026-12-06, when the key began to read a CPU's TLB by content (``statekey._cpu``):
        now the same or fewer (bug-2.7 under linux: 313 where :func:`fingerprint`, which
        reads dict order, gives 315), the same verdicts and shortest lengths; 1.3-4x
        cheaper per key, and 16 bytes a state instead of the tuple."""
        th = tuple((t.pc, t.tries, t.op.id if t.op is not None else -1) for t in self.threads)
        extra = (self.last, self.preemptions) if bound is not None else ()
        return _statekey().key(self.m, (th, tuple(self.hw_left), extra))


def _statekey():
    from . import statekey  # it reads this module's instance ranks: imported when first used
    return statekey


def _execute(sc, proto_cls, strict, path):
    """A fresh run of ``path``: (run, failure or None)."""
    run = _Run(sc, proto_cls, strict)
    try:
        run.prologue()
    except Failure as f:
        return run, f
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a model bug is reported as one, not a crash
        return run, ModelError.uncaught(exc, run.m)
    for c in path:
        try:
            run.apply(c)
        except Failure as f:
            return run, f
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - a model bug, as in the prologue (shrinking
            # a model error replays the path that hits it: that was a crash of certify)
            return run, ModelError.uncaught(exc, run.m)
    return run, None


def path_of(sc: Scenario, proto_cls, actions, strict: bool = False) -> tuple | None:
    r"""The explorer's choices that take a run's own schedule through ``sc``, or None if the
    run is not one of ``sc``'s interleavings.

    ``actions`` is the machine log of a run of ``sc``'s operations from the machine's boot
    (a threaded file without prologue, as :mod:`conformance.search.shortest` writes one).
    Each action becomes the choice that makes it: a start, access, context switch or
    consumer action the next line of that CPU's (or the consumer's) thread, an ``advance``
    a step of the thread whose operation it moves, a fill or an eviction the ``hw`` event
    naming that CPU and page. Each choice must be enabled when it comes (a ``hw`` event also
    after the end of every thread, as :func:`_failing_fill` allows it), and a failure may
    only end the run. So a failing run with a path is a counterexample of ``len(actions)``
    choices in the explorer's own search.

    Example::

        >>> from conformance.litmus import parse
        >>> from conformance.registry import load_protocol
        >>> sc = parse("name x\nthread CPU1\nmunmap U0 v2 1\n")
        >>> path_of(sc, load_protocol("linux"), [("munmap", (1, 2, 1)), ("advance", (0,))])
        (('t', 0), ('t', 0))
        >>> path_of(sc, load_protocol("linux"), [("munmap", (0, 2, 1))]) is None  # CPU0 has no thread
        True
    """
    from ..litmus import CONSUMER

    run = _Run(sc, proto_cls, strict)
    path: list = []
    try:
        run.prologue()
        by_cpu = {t.cpu: i for i, t in enumerate(run.threads)}
        for n, (name, args) in enumerate(actions):
            c = _choice_of(run, by_cpu, CONSUMER, name, tuple(args))
            if c is None:
                return None
            enabled = run.hw_enabled(c[1]) if c[0] == "h" else c in run.choices(None)
            if not enabled:
                return None
            path.append(c)
            try:
                run.apply(c)
            except UsageError:
                return None
            except Exception:  # noqa: BLE001 - a Failure, or the model bug a ModelError of
                # the run stands for (ModelError.uncaught): either may only end it
                return tuple(path) if n == len(actions) - 1 else None
    except (Failure, UsageError):
        return None
    finally:
        run.m.dispose()
    return tuple(path)


def _choice_of(run, by_cpu: dict, consumer: int, name: str, args: tuple):
    """The choice of :func:`path_of` that makes machine action ``(name, args)`` next."""
    if name == "advance":
        return next((("t", i) for i, t in enumerate(run.threads)
                     if t.op is not None and t.op.id == args[0]), None)
    if name in ("fill", "evict"):
        cpu = args[0]
        vp = args[1]
        if name == "evict":
            c = run.m.tlbs.cpus[cpu]
            got = run.m.tlbs.evicted_by(c, args[1])
            if got is None or got[0] != c.loaded_mm.id:
                return None  # nothing cached, or another mm's entry: no hw line names it
            vp = got[1]
        return next((("h", j) for j, ev in enumerate(run.sc.hw)
                     if (ev[1], ev[2], ev[3]) == (cpu, name, vp)), None)
    if name in ("consumer_alloc", "consumer_free"):
        i = by_cpu.get(consumer)
    else:
        i = by_cpu.get(args[0])
    return None if i is None else ("t", i)


def _failing_fill(run) -> int | None:
    """At the end of every thread, the first hardware fill still allowed whose entry would
    fail C1, without running it (``None``: none would). After the end only fills and
    evictions remain; they change no PTE or memory but accessed bits, which C1 does not
    read, and every entry they can leave is either cached now (checked by :func:`_finish`)
    or a fresh fill of a present PTE, which C1 judges alone. So a violation is reachable
    from the end iff one fresh fill fails: the bounded check's terminal argument
    (``bounded._fresh_fills_pass``), for the fills the scenario allows."""
    for j, (_no, cpu, what, vp, _n) in enumerate(run.sc.hw):
        if what == "fill" and run.hw_enabled(j) and fresh_fill_fails(run.m, cpu, vp):
            return j
    return None


def fresh_fill_fails(m, cpu: int, vp: int) -> bool:
    """Would a fill of ``vp``'s present PTE on ``cpu`` (its loaded mm) fail C1? The entry
    ``Machine.fill`` would make, judged by the oracle without being cached (nothing is
    changed, not even the accessed bit)."""
    from ..hw.tlb import TlbEntry

    mm = m.tlbs.cpus[cpu].loaded_mm
    pte = mm.ptes[vp]
    try:
        m.oracle.check_entry(cpu, mm.id, vp, TlbEntry(pte.frame, pte.writable, pte.dirty, pte.inst))
    except Failure:
        return True
    return False


def _finish(run) -> Failure | None:
    """At the end of every thread: C1 over every entry (as at the end of a litmus script)."""
    try:
        run.m.drain()
        run.m.check_quiescent()
    except Failure as f:
        return f
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a model bug
        return ModelError.uncaught(exc, run.m)
    return None


def explore(sc: Scenario, proto_cls, *, dedup: bool = True, preemption_bound: int | None = None,
            max_states: int = MAX_STATES, strict: bool = False,
            shorter_than: int | None = None) -> Result:
    """Explore every interleaving of ``sc``'s threads and hardware events under ``proto_cls``.

    Breadth first: the first failure found has the fewest choices. Deterministic (choices
    are tried threads first, in file order, then hardware events in file order).
    Raises :class:`UsageError` if ``sc`` has no ``thread`` section.

    ``shorter_than=L``: look only for a counterexample of fewer than ``L`` choices, as when
    a failing run of ``L`` choices is known and the question is whether a shorter one
    exists (:func:`conformance.search.shortest.shortest`). A state at depth ``L - 2`` is the
    last expanded; its children, at depth ``L - 1``, are run and checked but neither keyed
    nor kept, since nothing below them is wanted. The deepest level is the largest, so this
    skips most of the keys and all of the expansions a proof at length ``L`` would
    otherwise spend finding the known failure again; the states cap counts only the states
    kept. Same answer as the unbounded search on every failure shorter than ``L``
    (``tests/test_explorer.py``).

    Example::

        >>> from conformance.litmus import load
        >>> from conformance.registry import load_protocol
        >>> sc = load("litmus/bug-2.4-reclaim-vs-mprotect.litmus")            # doctest: +SKIP
        >>> explore(sc, load_protocol("linux_4_3"), shorter_than=3).verdict  # doctest: +SKIP
        'pass'
    """
    before = outside.look(proto_cls)  # state the keys cannot see must not change (outside.py)
    with outside.changes_first(proto_cls, before):
        res = _explore(sc, proto_cls, dedup, preemption_bound, max_states, strict, shorter_than)
    outside.check(proto_cls, before)
    return res


def _explore(sc, proto_cls, dedup, preemption_bound, max_states, strict, shorter_than) -> Result:
    """:func:`explore`'s search."""
    if not sc.threads:
        raise UsageError(f"{sc.path or sc.name}: no 'thread' section: nothing to explore "
                         "(run it as a script with 'flushcheck litmus')")
    t0 = time.perf_counter()
    name = getattr(proto_cls, "name", proto_cls.__name__)
    run, fail = _execute(sc, proto_cls, strict, ())
    if fail is None and run.done():
        fail = _finish(run)
    if fail is not None:
        return Result(sc.name, name, fail, (), 1, 0, 1, time.perf_counter() - t0, True, dedup,
                      preemption_bound, 0, shorter_than)
    if shorter_than is not None and shorter_than <= 1:  # only the empty path is shorter
        run.m.dispose()
        return Result(sc.name, name, None, (), 1, 0, 0, time.perf_counter() - t0, True, dedup,
                      preemption_bound, 0, shorter_than)
    # the depth of the deepest paths wanted: a child there is checked, not keyed or queued
    last = None if shorter_than is None else shorter_than - 1
    root = run.key(preemption_bound) if dedup else 0
    run.m.dispose()  # the root is re-executed as the queue's first state
    children: dict = {}  # state key -> list of child keys ("end" for a complete schedule)
    seen = {root}
    queue = deque([((), root)])
    states, transitions, depth = 1, 0, 0
    next_id = 1
    complete = True
    # the first path that ends every thread and then fails on a fresh fill (_failing_fill):
    # one choice longer than its end state, so reported once no shorter failure can come
    late = None
    while queue:
        path, key = queue.popleft()
        if late is not None and len(path) >= len(late) - 1:  # failures shorter than late's
            break  # would have been found: every state of depth < len(late) - 1 is expanded
        run, fail = _execute(sc, proto_cls, strict, path)
        if fail is not None:  # cannot happen: failing children are never queued
            raise ModelError(f"explorer: replay of a passing state failed: {fail}")
        options = run.choices(preemption_bound)
        if not options:
            if not run.done():
                f = _deadlock(run)
                return Result(sc.name, name, f, path, states, transitions, 0,
                              time.perf_counter() - t0, False, dedup, preemption_bound, depth,
                              shorter_than)
            children[key] = ["end"]
            run.m.dispose()
            continue
        kids = children[key] = []
        for n, choice in enumerate(options):
            # the last option reuses the machine already at ``path``; the others re-execute it
            child = run if n == len(options) - 1 else _execute(sc, proto_cls, strict, path)[0]
            transitions += 1
            cpath = path + (choice,)
            try:
                child.apply(choice)
                fail = _finish(child) if child.done() else None
            except Failure as f:
                fail = f
            except UsageError:
                raise
            except Exception as exc:  # noqa: BLE001 - a model bug: the interleaving that hits it
                fail = ModelError.uncaught(exc, child.m)
            if fail is not None:
                return Result(sc.name, name, fail, cpath, states, transitions, 0,
                              time.perf_counter() - t0, False, dedup, preemption_bound, len(cpath),
                              shorter_than)
            if late is None and child.done() and (last is None or len(cpath) < last):
                j = _failing_fill(child)
                if j is not None:
                    late = cpath + (("h", j),)
            if last is not None and len(cpath) >= last:  # checked; nothing below it is wanted
                depth = max(depth, len(cpath))
                if not child.done() and not child.choices(preemption_bound):
                    # a deadlock here is a failure of fewer than ``shorter_than`` choices too
                    return Result(sc.name, name, _deadlock(child), cpath, states, transitions, 0,
                                  time.perf_counter() - t0, False, dedup, preemption_bound,
                                  len(cpath), shorter_than)
                child.m.dispose()
                continue
            if dedup:
                ckey = child.key(preemption_bound)
            else:
                ckey = next_id
                next_id += 1
            child.m.dispose()  # its key is all the search keeps of it (frees a paused hook's)
            kids.append(ckey)
            if ckey in seen:
                continue
            seen.add(ckey)
            states += 1
            depth = max(depth, len(cpath))
            if states > max_states:
                complete = False
                queue.clear()
                break
            queue.append((cpath, ckey))
    if late is not None:
        run, fail = _execute(sc, proto_cls, strict, late)
        if fail is None:
            raise ModelError(f"explorer: a fill after the end passed when run: {late}")
        return Result(sc.name, name, fail, late, states, transitions, 0,
                      time.perf_counter() - t0, False, dedup, preemption_bound, len(late),
                      shorter_than)
    inter = _count_paths(root, children) if complete and last is None else 0
    return Result(sc.name, name, None, (), states, transitions, inter, time.perf_counter() - t0,
                  complete, dedup, preemption_bound, depth, shorter_than)


def _deadlock(run) -> ModelError:
    """The model error of a run with threads left and nothing runnable."""
    f = ModelError("deadlock: " + ", ".join(f"{o} waits for {o.blocked_on}" for o in run.m.ops))
    f.machine = run.m
    return f


def _count_paths(root, children: dict) -> int:
    """Complete schedules from ``root``: paths to an ``end`` in the (acyclic) state graph."""
    memo: dict = {}
    stack = [(root, False)]  # iterative post-order, so deep graphs do not hit the recursion limit
    while stack:
        k, expanded = stack.pop()
        if k in memo:
            continue
        if expanded:
            memo[k] = sum(1 if c == "end" else memo[c] for c in children.get(k, ()))
            continue
        stack.append((k, True))
        for c in children.get(k, ()):
            if c != "end" and c not in memo:
                stack.append((c, False))
    return memo[root]


# -- fingerprints ------------------------------------------------------------------------------
def fingerprint(m) -> tuple:
    """A hashable summary of everything that decides what ``m`` can do next.

    Covers the mms (PTEs, VMAs, locks, ``tlb_gen``, ``tlb_flush_pending``, protocol
    state), the TLBs, memory (every ``PhysMem`` slot), the protocol object, the oracle's
    expected values, the other consumer, id counters, and each operation in flight: its
    identity, step count, held locks, task state (``tlb_ubc``) and, for every generator
    frame in its ``yield from`` chain, the code position, the locals and the value stack
    (:func:`conformance.search.framestack.key_values`: a ``for`` loop's iterator lives
    there, not in a local); and what the oracle reads of it when it judges (C1/O1's
    in-flight sets ``touched_*``, S3's ``s3_visits`` and ``s3_wd``).

    PTE instance numbers (``Pte.inst``, ``TlbEntry.inst``, the S3 visit clocks) only
    ever increase, so two paths to the same machine rarely share them; the oracle only
    compares them (equal, at most), so they enter the key as their rank among the
    numbers the state holds (:func:`_inst_ranks`): states that differ only in numbering
    merge, states the oracle tells apart do not. The counter itself is left out: the next
    instance is larger than all, whatever its number.
    """
    global _RANKS
    mem = m.mem
    _RANKS = _inst_ranks(m)
    # the protocol object is read once, as a part; inside other values (a bound method of
    # its own in its state, an operation's frame) it is a name, as in the bounded key
    # (statekey: fingerprint.opaque); read there again, a bound method of its own recursed
    _REF[m.proto.__class__] = "proto"
    try:
        return (
            tuple(_fp(mm, top=True) for mm in m.mms),
            tuple(_fp(c, top=True) for c in m.tlbs.cpus),
            tuple(_fp(getattr(mem, s)) for s in _slots(type(mem))),
            _fp(m.proto, top=True),
            tuple(m.oracle.expected.items()),
            tuple(m.consumer_frames), m._next_value, m._next_anon, m._next_op, m.kthread_ran,
            tuple(_fp_op(m, op) for op in m.ops),
        )
    finally:
        _RANKS = None


#: (sorted instance numbers, the same as a set) while :func:`fingerprint` runs
_RANKS = None


def _inst_ranks(m):
    vals = {pte.inst for mm in m.mms for pte in mm.ptes if pte.kind == 1}
    for cpu in m.tlbs.cpus:
        for t in cpu.tlb.values():
            vals.update(e.inst for e in t.values())
    for op in m.ops:
        vals.update(op.s3_visits.values())
    return sorted(vals), vals


def _inst(v: int) -> int:
    """A PTE instance number as its rank: 2*k for the k-th number the state holds, 2*k+1
    for one (a snapshot in a local) that falls between the (k-1)-th and the k-th."""
    order, known = _RANKS
    k = bisect_left(order, v)
    return 2 * k if v in known else 2 * k + 1


def _fp_op(m, op) -> tuple:
    frames = []
    g = op.gen
    while g is not None and isinstance(g, types.GeneratorType):
        fr = g.gi_frame
        if fr is None:
            break
        inner = g.gi_yieldfrom
        hook = paused_frames(g)  # a hook paused at an automatic point: its own frames
        for f in hook or (fr,):
            frames.append((f.f_code.co_name, f.f_lasti,
                           tuple([(k, v if type(v) in _ATOM_TYPES else _fp(v))
                                  for k, v in sorted(f.f_locals.items()) if k != "self"]),
                           _fp(key_values(f, None if hook else inner))))  # a loop's iterator
        g = inner
    tlbs = m.tlbs
    oracle = (tuple(sorted(op.touched_vps)), tuple(sorted(op.touched_locs, key=repr)),
              tuple(sorted(op.touched_frames)),
              tuple(sorted((k, _inst(v)) for k, v in op.s3_visits.items())),
              # an s3_wd entry matters only while it is still the cached one
              tuple(sorted((c, mm, vp) for c, mm, vp, e in op.s3_wd
                           if tlbs.lookup(tlbs.cpus[c], mm, vp) is e)))
    return (op.id, op.cpu, op.name, op.args, op.steps, op.result, tuple(_fp(h) for h in op.held),
            _fp(op.blocked_on), _fp(op.tlb_ubc), tuple(frames), oracle)


_SLOTS: dict = {}


def _slots(cls) -> tuple:
    s = _SLOTS.get(cls)
    if s is None:
        names = []
        for c in reversed(cls.__mro__):
            for n in c.__dict__.get("__slots__", ()):
                if n not in names and n != "__weakref__":
                    names.append(n)
        s = _SLOTS[cls] = tuple(names)
    return s


_ATOMS = (int, str, bool, float, type(None), bytes)
#: the exact types of :data:`_ATOMS`, tested first (most values are ints and strings)
_ATOM_TYPES = frozenset(_ATOMS)
#: type -> (name, slots) of the plain slotted classes (PTEs, TLB entries, VMAs, locks...):
#: those :func:`_fp` reaches its slots branch for whatever ``top`` is, found on first sight
_PLAIN: dict = {}
#: type -> name of the plain classes without slots whose instances :func:`_fp` reads
#: through ``__dict__`` (protocol objects and their per-task and per-mm state)
_PLAIN_DICT: dict = {}
#: type -> what :func:`_fp` returns for its instances when not ``top``: a name (opaque parts,
#: callables), or (tag,) for a reference by id (operations, mms, CPUs)
_REF: dict = {}


def _cacheable(t) -> bool:
    """Whether :func:`_fp`'s branch for an instance of ``t`` can be remembered for the type:
    plain attribute lookup, so ``callable``/``hasattr`` answer the same for every instance."""
    return t.__getattribute__ is object.__getattribute__ and not hasattr(t, "__getattr__")


def _fp(x, top: bool = False):
    t = type(x)
    if t in _ATOM_TYPES:  # fast paths, the same results as the chain below
        return x
    atoms = _ATOM_TYPES  # below, an atom is taken as it is without a call of _fp
    if t is tuple or t is list:
        return tuple([v if type(v) in atoms else _fp(v) for v in x])
    if t is dict:
        return tuple([(k if type(k) in atoms else _fp(k), v if type(v) in atoms else _fp(v))
                      for k, v in x.items()])
    if not top:
        ref = _REF.get(t)
        if ref is not None:
            return ref if ref.__class__ is str else (ref[0], x.id)
    plain = _PLAIN.get(t)
    if plain is not None:
        name, slots = plain
        out = [name]
        ranks = _RANKS is not None
        for s in slots:
            if s == "inst" and ranks:
                out.append(_inst(x.inst))
            else:
                v = getattr(x, s, None)
                out.append(v if type(v) in atoms else _fp(v))
        return tuple(out)
    name = _PLAIN_DICT.get(t)
    if name is not None:
        return (name,) + tuple([(k, v if type(v) in atoms else _fp(v))
                                for k, v in sorted(x.__dict__.items()) if k not in UNREAD])
    name = type(x).__name__
    extra = ()  # a container subclass's own attributes (the items are read below)
    if not isinstance(x, _ATOMS) and isinstance(x, (tuple, list, dict, set, frozenset)):
        d = getattr(x, "__dict__", None)
        if d:
            extra = (name, tuple((k, _fp(v)) for k, v in sorted(d.items()) if k not in UNREAD))
    if isinstance(x, _ATOMS):
        return x
    if isinstance(x, (tuple, list)):
        return tuple(_fp(v) for v in x) + extra
    if isinstance(x, dict):
        return tuple((_fp(k), _fp(v)) for k, v in x.items()) + extra
    if isinstance(x, (set, frozenset)):
        return ("set",) + tuple(sorted((_fp(v) for v in x), key=repr)) + extra
    cache = _cacheable(t)
    kind = model_kind(t)  # by class identity (conformance/search/fingerprint.py)
    if kind is not None and kind[0] == "ref" and (kind[1] == "op" or not top):
        if cache:
            _REF[t] = (kind[1],)
        return (kind[1], x.id)
    if kind is not None and kind[0] == "opaque":
        if cache:
            _REF[t] = kind[1]
        return kind[1]
    special = SPECIAL.get(t)  # a callable by its name and object, a range by its bounds
    if special is not None:
        return special(x, _fp)
    if callable(x) and not hasattr(x, "__next__"):
        if cache:
            _REF[t] = name
        return name
    if isinstance(x, types.GeneratorType):
        return "generator"
    if hasattr(x, "__next__") and hasattr(x, "__reduce__"):  # list/range/dict iterators
        try:
            return (name, _fp(x.__reduce__()[1:]))
        except TypeError:
            return name
    slots = _slots(type(x))
    if slots:
        if kind is None and cache:
            _PLAIN[t] = (name, slots)  # nothing above depended on this instance or on top
        return (name,) + tuple(_inst(x.inst) if s == "inst" and _RANKS is not None
                               else _fp(getattr(x, s, None)) for s in slots)
    d = getattr(x, "__dict__", None)
    if d is not None:
        if kind is None and cache:
            _PLAIN_DICT[t] = name  # as _PLAIN: the same branch for every instance
        return (name,) + tuple((k, _fp(v)) for k, v in sorted(d.items()) if k not in UNREAD)
    raise unreadable(x)
