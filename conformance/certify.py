"""Certify a protocol: fuzz it for a time budget and return a verdict.

The run is a sequence of *chunks*: chunk ``i`` runs ``chunk`` Hypothesis examples
of the protocol's state machine under the seed ``chunk_seed(seed, i)``. A
failure is shrunk by Hypothesis inside its chunk. With ``jobs > 1`` chunks run in
parallel worker processes, and the verdict is still the one of the *lowest*
failing chunk index, so the same seed finds the same failure whatever the
number of jobs (given the budget to reach it); the reproducer replays exactly.

Example::

    >>> r = certify("linux", budget_s=2, seed=1)   # doctest: +SKIP
    >>> r.passed, r.examples > 0                    # doctest: +SKIP
    (True, True)
"""
from __future__ import annotations

import math
import multiprocessing
import os
import queue as _queue
import time

import attrs
from hypothesis import HealthCheck, Phase, seed as hseed, settings
from hypothesis.reporting import with_reporter
from hypothesis.stateful import get_state_machine_test

from .config import DEFAULT, MachineConfig
from .errors import Failure, UsageError
from .registry import load_protocol
from .statemachine import Stats, conformance_machine

@attrs.define
class Result:
    """What a certification run measured."""

    protocol: str
    seed: int
    budget_s: float
    examples: int = 0
    steps: int = 0
    elapsed_s: float = 0.0
    first_failure_s: float | None = None
    #: every distinct rule violated, each shrunk on its own; the shortest first
    failures: list = attrs.Factory(list)
    failing_chunk: int | None = None
    hypothesis_program: str = ""
    strict: bool = False
    config: MachineConfig = DEFAULT
    jobs: int = 1

    @property
    def failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    @property
    def passed(self) -> bool:
        """No failure, over at least one example: zero examples is no verdict, not a PASS."""
        return not self.failures and self.examples > 0

    @property
    def shrunk_length(self) -> int | None:
        return None if self.failure is None else len(self.failure.machine.actions)


def default_jobs() -> int:
    """Worker processes by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def require_seconds(option: str, value, zero_ok: bool = False) -> None:
    """:class:`UsageError` unless ``value`` is a finite number of seconds, > 0 (or >= 0).

    Example::

        >>> require_seconds("--budget", 0)
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: --budget must be a positive number of seconds, not 0
    """
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (
        value >= 0 if zero_ok else value > 0)
    if not ok:
        raise UsageError(f"{option} must be a {'non-negative' if zero_ok else 'positive'} "
                         f"number of seconds, not {value!r}")


def require_count(option: str, value) -> None:
    """:class:`UsageError` unless ``value`` is an integer >= 1 (jobs, steps, examples).

    Example::

        >>> require_count("--jobs", 0)
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: --jobs must be at least 1, not 0
    """
    if not isinstance(value, int) or value < 1:
        raise UsageError(f"{option} must be at least 1, not {value!r}")


def chunk_seed(seed: int, i: int) -> int:
    return seed * 100_003 + i


def all_failures(exc: BaseException) -> list:
    """Every :class:`Failure` in what Hypothesis raised, shortest reproducer first."""
    if isinstance(exc, Failure):
        found = [exc]
    elif isinstance(exc, BaseExceptionGroup):
        found = [f for e in exc.exceptions for f in all_failures(e)]
    else:
        found = []
    return sorted(found, key=lambda f: (len(f.machine.actions) if f.machine else 0, f.rule))


def fuzz_settings(examples: int, steps: int, shrink: bool = True) -> settings:
    """The Hypothesis settings certify uses (no database: a run is its seed)."""
    phases = [Phase.generate, Phase.target] + ([Phase.shrink] if shrink else [])
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                    database=None, derandomize=False, phases=phases, report_multiple_bugs=True,
                    suppress_health_check=list(HealthCheck), print_blob=False)


def _cap_shrinking(seconds: float) -> None:
    """Bound Hypothesis's shrink phase (``engine.MAX_SHRINKING_SECONDS``, 300 s by default)
    so that a run ends near its budget; the best reproducer found by then is reported."""
    try:
        from hypothesis.internal.conjecture import engine
    except ImportError:  # pragma: no cover
        return
    if hasattr(engine, "MAX_SHRINKING_SECONDS"):
        engine.MAX_SHRINKING_SECONDS = max(5, int(seconds))


def run_chunk(cls, cfg, strict, steps, examples, cseed, t0, shrink_s: float = 300):
    """One chunk. Returns (examples, steps, [failures], seconds to first failure, program)."""
    _cap_shrinking(shrink_s)
    stats = Stats()
    machine_cls = conformance_machine(cls, cfg, strict, stats=stats)
    first = {}
    base_init = machine_cls.__init__

    def init(self):
        base_init(self)
        if "t" not in first:
            orc = self.machine.oracle
            prev = orc._fail

            def _fail(*a, **kw):
                first.setdefault("t", time.monotonic() - t0)
                return prev(*a, **kw)
            orc._fail = _fail
    machine_cls.__init__ = init
    program: list[str] = []
    test = hseed(cseed)(get_state_machine_test(machine_cls, settings=fuzz_settings(examples, steps)))
    failures = []
    try:
        with with_reporter(program.append):
            test()
    except BaseException as exc:  # noqa: BLE001 - Hypothesis may wrap failures in groups
        failures = all_failures(exc)
        if not failures:
            raise
    return stats.examples, stats.steps, failures, first.get("t"), "\n".join(program)


def certify(name_or_cls, budget_s: float = 60.0, seed: int = 0, strict: bool = False,
            cfg: MachineConfig = DEFAULT, chunk: int = 50, steps: int = 50,
            max_examples: int | None = None, jobs: int = 1) -> Result:
    """Fuzz one protocol for ``budget_s`` seconds (or ``max_examples`` examples).

    A budget, job count, step count, chunk or example limit that could only give
    a vacuous verdict (zero or negative, NaN, infinite) is a :class:`UsageError`.
    A run may still end with zero examples (a budget smaller than the workers'
    start-up): its ``passed`` is False, never a PASS.
    """
    require_seconds("--budget", budget_s)
    require_count("--jobs", jobs)
    require_count("--steps", steps)
    require_count("chunk", chunk)
    if max_examples is not None:
        require_count("max_examples", max_examples)
    cls = load_protocol(name_or_cls) if isinstance(name_or_cls, str) else name_or_cls
    res = Result(protocol=cls.name, seed=seed, budget_s=budget_s, strict=strict, config=cfg,
                 jobs=jobs)
    t0 = time.monotonic()
    if jobs > 1 and "fork" in multiprocessing.get_all_start_methods():
        _certify_parallel(cls, res, t0, chunk, steps, max_examples)
    else:
        i = 0
        while time.monotonic() - t0 < budget_s and (max_examples is None or res.examples < max_examples):
            ex, st, f, tf, prog = run_chunk(cls, cfg, strict, steps, chunk, chunk_seed(seed, i), t0,
                                            shrink_s=t0 + budget_s - time.monotonic())
            res.examples += ex
            res.steps += st
            if f:
                res.failures, res.failing_chunk, res.first_failure_s = f, i, tf
                res.hypothesis_program = prog
                break
            i += 1
    res.elapsed_s = time.monotonic() - t0
    return res


def _worker(cls, res_cfg, strict, steps, chunk, seed, t0, deadline, next_chunk, stop_at, max_ex,
            done_ex, out):
    """Worker process: take chunk indices until the deadline or a lower failure is known."""
    while True:
        with next_chunk.get_lock():
            i = next_chunk.value
            next_chunk.value += 1
        if i >= stop_at.value or time.monotonic() >= deadline:
            break
        if max_ex is not None and done_ex.value >= max_ex:
            break
        ex, st, f, tf, prog = run_chunk(cls, res_cfg, strict, steps, chunk, chunk_seed(seed, i), t0,
                                        shrink_s=deadline - time.monotonic())
        with done_ex.get_lock():
            done_ex.value += ex
        msg = {"i": i, "examples": ex, "steps": st}
        if f:
            with stop_at.get_lock():
                stop_at.value = min(stop_at.value, i)
            msg.update(found=[(x.rule, list(x.machine.actions), str(x)) for x in f if x.machine],
                       t=tf, program=prog)
        out.put(msg)
    out.put({"done": True})


def _certify_parallel(cls, res: Result, t0: float, chunk: int, steps: int, max_examples) -> None:
    from .reproducer import replay_actions

    ctx = multiprocessing.get_context("fork")
    next_chunk = ctx.Value("l", 0)
    stop_at = ctx.Value("l", 1 << 60)
    done_ex = ctx.Value("l", 0)
    out = ctx.Queue()
    deadline = t0 + res.budget_s
    procs = [ctx.Process(target=_worker, daemon=True,
                         args=(cls, res.config, res.strict, steps, chunk, res.seed, t0, deadline,
                               next_chunk, stop_at, max_examples, done_ex, out))
             for _ in range(res.jobs)]
    for p in procs:
        p.start()
    failures = []
    finished = 0
    while finished < len(procs):
        try:
            msg = out.get(timeout=1.0)
        except _queue.Empty:
            if not any(p.is_alive() for p in procs):
                break
            continue
        if msg.get("done"):
            finished += 1
            continue
        res.examples += msg["examples"]
        res.steps += msg["steps"]
        if "found" in msg:
            failures.append(msg)
    for p in procs:
        p.join(timeout=5)
    if failures:
        best = min(failures, key=lambda m: m["i"])
        res.failing_chunk = best["i"]
        res.first_failure_s = min(m["t"] for m in failures if m["t"] is not None) \
            if any(m["t"] is not None for m in failures) else None
        res.hypothesis_program = best["program"]
        for rule, actions, text in best["found"]:
            f = replay_actions(cls, res.config, res.strict, actions)
            if f is None or f.rule != rule:
                raise RuntimeError(f"worker failure did not replay in the parent: {text}")
            res.failures.append(f)
