"""Certify a protocol: fuzz it for a time or example budget and return a verdict.

The run is a list of *chunks* (:func:`plan`): chunk ``i`` runs ``chunk`` examples under
the seed ``chunk_seed(seed, i)``, and a failure is minimized inside its chunk. The
search is one of two *engines*:

* ``walk`` (the default): the raw swarm walk (:func:`run_walk_chunk`,
  :mod:`conformance.search.walk`): the state machine's own rules driven by ``random.Random``
  without Hypothesis (about 15x the steps per second), each example with its own rule
  mix and argument subsets (swarm testing); a failure is delta-debugged, then the
  explorer finds the shortest interleaving of its operations
  (:mod:`conformance.search.shortest`), and it is also written as a threaded litmus file;
* ``hypothesis``: Hypothesis's stateful test of the protocol's state machine
  (:func:`run_chunk`), shrunk by Hypothesis: what the pytest plugin runs. Chunks are submitted to a
``concurrent.futures`` executor (:mod:`conformance.executors`: this process, local
worker processes, or a Dask cluster); the verdict is the one of the *lowest* failing
chunk index, so the same seed finds the same failure on any executor and any number
of workers (given the budget to reach that chunk); the reproducer replays exactly.
Chunks above a known failure are not submitted.

* With an example budget (``max_examples``) the chunk list is fixed: every chunk up
  to the first failing one runs, wherever and in whatever order.
* With a time budget chunks are submitted until the deadline and those running then
  finish. The verdict is still seed-determined given the chunks the budget reached:
  every chunk below a failing one has finished, and a chunk's outcome depends on its
  seed alone (its shrinking is time-capped near the deadline, see docs/SCALING.md).

With an example database (:mod:`conformance.database`), saved failures of earlier runs
of the same protocol and config are replayed first (the walk engine: the runs saved
under the ``.actions`` sub-key, in chunk 0; Hypothesis: each chunk's reuse phase), and
the failures this run finds are saved when it ends.

A failure travels from a worker as plain data, ``(rule, actions, text)``, and is
replayed in the parent (a :class:`Failure` holds a live machine: it does not pickle).

Example::

    >>> r = certify("linux", budget_s=2, seed=1)   # doctest: +SKIP
    >>> r.passed, r.examples > 0                    # doctest: +SKIP
    (True, True)
"""
from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures.process import BrokenProcessPool

import attrs
from hypothesis import HealthCheck, Phase, seed as hseed, settings
from hypothesis.errors import HypothesisDeprecationWarning
from hypothesis.reporting import with_reporter
from hypothesis.stateful import get_state_machine_test

from .config import DEFAULT, MachineConfig
from .defaults import DEFAULT_CHUNK, ENGINES, default_jobs  # noqa: F401 - default_jobs as before
from .coverage import counted_class, merge, tally
from .database import (ChunkDatabase, apply_log, campaign_key, describe, keyed,
                       open_database, saved_count, snapshot)
from .errors import Failure, ModelError, ProtocolError, UsageError
from .executors import Workers, open_workers
from .found import Filing, file_found
from .registry import load_protocol, loaded_protocol, protocol_names
from .search import outside
from .search.statemachine import Stats, conformance_machine
from .watchdog import a_worker_stopped, before_stop, stuck, watch_this_thread

@attrs.define
class Result:
    """What a certification run measured."""

    protocol: str
    seed: int
    budget_s: float | None
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
    #: the example budget (a fixed chunk list), or None for a time budget
    max_examples: int | None = None
    #: chunks counted: every one finished up to the failing chunk (all of them on a pass)
    chunks: int = 0
    #: stopped by Ctrl-C: the counts cover the chunks finished by then; with no failure,
    #: from chunk 0 up to the first one still running (``--examples`` runs them again)
    interrupted: bool = False
    #: chunks that finished after one still running when Ctrl-C came: not counted
    uncounted: int = 0
    #: where the chunks ran (a :class:`~conformance.executors.Workers` name)
    workers: str = "1 local process"
    #: the example database (None: none) and how many saved failures were replayed first
    database: str | None = None
    replayed: int = 0
    #: the search: "walk" (raw swarm walk) or "hypothesis" (the Hypothesis state machine)
    engine: str = "walk"
    #: the walk engine: the failure's operations as a threaded litmus file, and whether the
    #: explorer showed that no interleaving of them fails sooner
    litmus: str | None = None
    proven: bool = False
    #: Ctrl-C came while the failure was being shrunk: it is reported as found, unshrunk
    shrink_cut: bool = False
    #: examples per chunk (the unit of work), and actions per example (``--steps``)
    chunk: int = 0
    steps_per_example: int = 50
    #: what the chunks counted exercised, summed (conformance/coverage.py: hooks per path,
    #: race windows, the oracle's checks per rule)
    counts: dict = attrs.Factory(dict)
    #: the reference that loads the protocol again (a file's path, ``module:Class``): what
    #: the follow-up commands a report prints name; "" where it is the name itself
    protocol_ref: str = ""
    #: ``certify --bound K``: the bounded check's result (:class:`conformance.search.bounded.Result`)
    #: beside the random search's, or None
    bounded: object = None

    @property
    def failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    @property
    def passed(self) -> bool:
        """No failure, over at least one example and not interrupted: zero examples, or a
        run stopped before its budget, is no verdict, not a PASS."""
        return not self.failures and self.examples > 0 and not self.interrupted

    @property
    def shrunk_length(self) -> int | None:
        f = self.failure
        return None if f is None or f.machine is None else len(f.machine.actions)


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


def max_local_jobs() -> int:
    """The most local worker processes a run may ask for: 8 per CPU available, and at least
    64. A process pool forks its workers up front, so ``--jobs 100000`` with a time budget
    forked until the machine gave out; a cluster's workers (``--scheduler``) are not
    counted here.

    Example::

        >>> max_local_jobs() >= 64
        True
    """
    from .defaults import default_jobs
    return max(64, 8 * default_jobs())


def require_local_jobs(jobs: int) -> None:
    """:class:`UsageError` unless ``jobs`` is a count of local worker processes this machine
    can run (:func:`max_local_jobs`).

    Example::

        >>> require_local_jobs(10**6)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: --jobs 1000000 is more local worker processes than ...
    """
    require_count("--jobs", jobs)
    if jobs > max_local_jobs():
        raise UsageError(f"--jobs {jobs} is more local worker processes than this machine "
                         f"runs (at most {max_local_jobs()}: 8 per CPU available, and never fewer "
                         "than 64); a cluster "
                         "takes --scheduler")


def chunk_seed(seed: int, i: int) -> int:
    """The Hypothesis seed of chunk ``i`` of a run with seed ``seed``.

    Example::

        >>> chunk_seed(1, 2)
        100005
    """
    return seed * 100_003 + i


@attrs.frozen
class Chunk:
    """One unit of work: ``examples`` examples under the Hypothesis seed ``seed``."""

    index: int
    seed: int
    examples: int


def plan(seed: int, chunk: int, max_examples: int | None = None) -> Iterator[Chunk]:
    """The chunks of a run: endless for a time budget, fixed for an example budget (the
    last chunk takes the remainder).

    Example::

        >>> [c.examples for c in plan(0, 50, max_examples=120)]
        [50, 50, 20]
    """
    i = 0
    while max_examples is None or i * chunk < max_examples:
        n = chunk if max_examples is None else min(chunk, max_examples - i * chunk)
        yield Chunk(i, chunk_seed(seed, i), n)
        i += 1


def all_failures(exc: BaseException) -> list:
    """Every :class:`Failure` in what Hypothesis raised, shortest reproducer first."""
    if isinstance(exc, Failure):
        found = [exc]
    elif isinstance(exc, BaseExceptionGroup):
        found = [f for e in exc.exceptions for f in all_failures(e)]
    else:
        found = []
    return sorted(found, key=lambda f: (len(f.machine.actions) if f.machine else 0, f.rule))


def _notes(exc: BaseException) -> list:
    """The notes Hypothesis attached to ``exc`` and the exceptions it groups: its program
    (``Falsifying example:``, ``state = ...``, one line a step), which this Hypothesis adds
    to the exception instead of printing it (``--show-program`` printed nothing: a user
    review, 2026-12-06)."""
    out = [str(n) for n in getattr(exc, "__notes__", None) or ()]
    for e in getattr(exc, "exceptions", None) or ():
        out += _notes(e)
    return out


def fuzz_settings(examples: int, steps: int, shrink: bool = True, database=None) -> settings:
    """The Hypothesis settings certify uses. Without a database a chunk is its seed; with
    one, the reuse phase first replays the examples saved under the chunk's key.

    Example::

        >>> Phase.reuse in fuzz_settings(10, 5).phases
        False
    """
    phases = ([Phase.reuse] if database is not None else []) + [Phase.generate, Phase.target] \
        + ([Phase.shrink] if shrink else [])
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                    database=database, derandomize=False, phases=phases,
                    report_multiple_bugs=True, suppress_health_check=list(HealthCheck),
                    print_blob=False)


def _cap_shrinking(seconds: float):
    """Bound Hypothesis's shrink phase (``engine.MAX_SHRINKING_SECONDS``, 300 s by default)
    so that a run ends near its budget; the best reproducer found by then is reported.
    Returns a function that puts the previous cap back (the cap is process-wide: left set,
    it capped every later ``fuzz()`` of the process, e.g. a pytest worker's)."""
    try:
        from hypothesis.internal.conjecture import engine
    except ImportError:  # pragma: no cover
        return lambda: None
    if not hasattr(engine, "MAX_SHRINKING_SECONDS"):
        return lambda: None
    old = engine.MAX_SHRINKING_SECONDS
    engine.MAX_SHRINKING_SECONDS = max(5, int(seconds))

    def restore() -> None:
        engine.MAX_SHRINKING_SECONDS = old
    return restore


class _StopAtStuckHook(KeyboardInterrupt):
    """Ends a Hypothesis chunk at the example after one whose hook the watchdog stopped
    (conformance/watchdog.py): each shrinking replay would run that hook's loop for the
    watchdog's seconds again (about 5 s a replay: 41.6 s for a 10 s budget, 2026-12-05).
    A KeyboardInterrupt, the one exception Hypothesis's engine lets through as it is (any
    other it records, and one raised before the example's draws is "inconsistent data
    generation"); :func:`stop_at_stuck_hook`'s callers catch it. Not raised in Hypothesis's
    final replay of the failure it reports (:func:`_final_replay`): that one runs, loop
    included, once."""

    _fc_ours = True  # no protocol's KeyboardInterrupt (conformance/interrupts.py)


def _final_replay() -> bool:
    """Is Hypothesis replaying the failure it is about to report (``BuildContext.is_final``)?
    Stopping that replay early would make it draw less than the run it replays, which
    Hypothesis reports as inconsistent data generation."""
    from hypothesis.control import current_build_context
    try:
        return bool(getattr(current_build_context(), "is_final", False))
    except Exception:  # noqa: BLE001 - outside a test: not a replay
        return False


def stop_at_stuck_hook(machine_cls) -> list:
    """Make a Hypothesis run of ``machine_cls`` (a ``conformance_machine`` class) end at the
    example after one whose hook the watchdog stopped, instead of shrinking it: the first
    such failure goes into the returned list, and the next example, unless it is
    Hypothesis's final replay, raises :class:`_StopAtStuckHook`, which the caller catches
    around the test to report that failure unshrunk (:func:`run_chunk`, and the pytest
    plugin's ``fuzz``). ``machine_cls.__init__`` is wrapped in place.

    Example::

        >>> from conformance.search.statemachine import conformance_machine
        >>> stop_at_stuck_hook(conformance_machine(load_protocol("linux")))
        []
    """
    found: list = []
    base_init = machine_cls.__init__

    def init(self):
        if found and not _final_replay():  # Hypothesis would replay the stuck hook to
            raise _StopAtStuckHook            # shrink: its loop each time
        base_init(self)
        m = self.machine
        if m is None:
            return
        make = m._protocol_error

        def _protocol_error(*a, **kw):
            e = make(*a, **kw)
            if not found and stuck(e):
                found.append(e)
            return e
        m._protocol_error = _protocol_error
    machine_cls.__init__ = init
    return found


def run_chunk(cls, cfg, strict, steps, examples, cseed, t0, shrink_s: float = 300,
              database=None, key: bytes | None = None, counts: dict | None = None):
    """One chunk. Returns (examples, steps, [failures], seconds to first failure, program).

    ``database``/``key``: replay the examples saved under ``key`` first, save new ones.
    ``counts``: a dict the examples' coverage and checks are summed into (shrinking's
    examples included: they ran). A hook the watchdog stops ends the chunk with that
    failure unshrunk (:class:`_StopAtStuckHook`).
    """
    uncap = _cap_shrinking(shrink_s)
    stats = Stats()
    machine_cls = conformance_machine(cls, cfg, strict, stats=stats)
    first = {}
    stuck_found = stop_at_stuck_hook(machine_cls)
    base_init = machine_cls.__init__

    def noted(fn):
        """``fn`` (a failure's constructor), noting the time of the chunk's first failure."""
        def wrapper(*a, **kw):
            first.setdefault("t", time.monotonic() - t0)
            return fn(*a, **kw)
        return wrapper

    def init(self):
        base_init(self)
        if "t" not in first and self.machine is not None:
            m = self.machine
            m._protocol_error = noted(m._protocol_error)
            m.oracle._fail = noted(m.oracle._fail)
    machine_cls.__init__ = init
    program: list[str] = []
    test = hseed(cseed)(get_state_machine_test(machine_cls, settings=fuzz_settings(
        examples, steps, database=database)))
    if database is not None and key is not None:
        keyed(test, key, database)
    failures = []

    def report(text) -> None:
        # the shrink cap above is flushcheck's (the budget): Hypothesis's fixed warning that
        # it "spent more than five minutes" shrinking, printed after 5 s, is not the program
        # (a user review, 2026-12-06)
        if str(text).startswith("WARNING: Hypothesis has spent more than five minutes"):
            program.append(f"(shrinking stopped at its cap of {max(5, int(shrink_s))} s: the "
                           "program may not be the shortest)")
        else:
            program.append(text)
    try:
        with with_reporter(report):
            test()
    except _StopAtStuckHook:
        failures = stuck_found[:1]  # not shrunk, as the walk engine's (shortest.minimize)
    except BaseException as exc:  # noqa: BLE001 - Hypothesis may wrap failures in groups
        failures = all_failures(exc)
        if not failures:
            raise
        program.extend(_notes(exc))
    finally:
        uncap()
        if counts is not None:
            merge(counts, stats.counts)
    return stats.examples, stats.steps, failures, first.get("t"), "\n".join(program)


@attrs.frozen
class Task:
    """What travels to a worker: everything one chunk needs, picklable."""

    #: a protocol reference for ``load_protocol`` (``cls.ref``), or a class importable
    #: by reference
    protocol: object
    cfg: MachineConfig
    strict: bool
    steps: int
    chunk: Chunk
    #: ``time.time()`` at the run's start (wall clock: a worker may be another machine)
    started: float
    shrink_s: float = 300.0
    #: the database key, and what the database held under it when the run started
    key: bytes | None = None
    saved: dict = attrs.Factory(dict)
    #: "walk" (the raw swarm walk, :func:`run_walk_chunk`) or "hypothesis" (:func:`run_chunk`)
    engine: str = "walk"
    #: where a walk chunk files a failure before shrinking it (conformance/found.py;
    #: None: nowhere)
    found_to: str | None = None


@attrs.frozen
class ChunkResult:
    """What a worker sends back: counts, failures as ``(rule, actions, text, config)`` (the
    machine the failure ran on), the database writes to apply."""

    index: int
    examples: int
    steps: int
    found: tuple = ()
    first_failure_s: float | None = None
    program: str = ""
    log: tuple = ()
    #: the walk engine: the failure's operations as a threaded litmus file (None: none), and
    #: whether the explorer showed no interleaving of them fails in fewer actions
    litmus: str | None = None
    proven: bool = False
    #: coverage and the oracle's checks, summed over the chunk's examples
    counts: dict = attrs.Factory(dict)
    #: a failure filed before its shrink (:func:`_file_found`) and read after Ctrl-C: the
    #: one found, unshrunk
    interrupted: bool = False


@contextlib.contextmanager
def seed_only():
    """Within it, Hypothesis generates from the seed alone, whatever the process imported.

    Hypothesis mixes into its generation the constants found in the source of every
    *local* module the process has imported (``providers._get_local_constants``). The
    CLI process, a forked worker, a Dask worker and a pytest process (which imports the
    test modules it collected) import different modules, so the same seed gave different
    examples on each, and any new literal anywhere in the tree changed them; within this
    context that pool is empty (and its cache cleared, before and after). Every certify
    chunk and the pytest plugin's ``fuzz`` run in it.

    Example::

        >>> with seed_only():
        ...     pass
    """
    try:
        from hypothesis.internal.conjecture import providers
        getter, cache = providers._get_local_constants, providers.CONSTANTS_CACHE
        empty = providers.Constants()
    except (ImportError, AttributeError):  # pragma: no cover - a Hypothesis without them
        yield
        return
    cache.cache.clear()
    providers._get_local_constants = lambda: empty
    try:
        yield
    finally:
        providers._get_local_constants = getter
        cache.cache.clear()


#: the database sub-key under which the walk engine files failing runs (reproducer JSON)
WALK_SUB_KEY = b".actions"


def saved_run(blob: bytes, cfg: MachineConfig, strict: bool) -> tuple:
    """``(config, strict, actions)`` of a failing walk run saved in the database: a JSON
    object ``{"config": ..., "actions": [...]}`` (the machine it failed on, which the walk
    draws per example), or a bare action list, saved before the walk drew machine shapes
    (it ran on the campaign's ``cfg``). A malformed entry raises ValueError, TypeError or
    KeyError (one nested too deeply too: :func:`conformance.reproducer.parse_json`, not
    the RecursionError that ended certify with a traceback).

    Example::

        >>> saved_run(b'[["advance", [0]]]', DEFAULT, False)[0] == DEFAULT
        True
    """
    from .reproducer import parse_json

    data = parse_json(blob)
    if isinstance(data, dict):
        return MachineConfig(**data["config"]), strict, data["actions"]
    return cfg, strict, data


def run_walk_chunk(cls, cfg, strict, steps, chunk: Chunk, t0, saved: dict | None = None,
                   key: bytes | None = None, counts: dict | None = None,
                   found_to: str | None = None) -> tuple:
    """One chunk of the raw swarm walk. Returns (examples, steps, [failures], seconds to first
    failure, (litmus text of the failure's scenario, proven shortest), database writes).

    Chunk 0 first replays the failing runs saved under ``key + WALK_SUB_KEY`` (each counts as
    an example). Then example ``k`` is :func:`conformance.search.walk.run_example` with
    ``swarm=True`` under the ``k``-th 64-bit draw of ``random.Random(chunk.seed)``, so the
    chunk is its seed. The first failure ends the chunk and is minimized
    (:func:`conformance.search.shortest.minimize`: delta debugging, then the explorer's shortest
    interleaving of its operations), all capped by counts, never by the clock. ``counts``:
    a dict each example's coverage and checks are summed into (the replayed saved runs and
    the minimization are not counted). ``steps`` is not used: a swarm example draws its own
    length (Hypothesis's ``--steps`` has no walk counterpart).

    Example::

        >>> from conformance.registry import load_protocol
        >>> ex, st, found, tf, (text, proven), log = run_walk_chunk(
        ...     load_protocol("linux_4_3"), DEFAULT, False, 50, Chunk(0, 1, 200), time.monotonic())
        >>> found[0].rule, proven, "thread" in text
        ('S3', True, True)
    """
    import json
    import random

    from .gcpolicy import search_gc
    from .reproducer import replay_actions
    from .search.shortest import minimize
    from .search.walk import run_shaped_example, shapes_for, swarm_for

    shapes = shapes_for(cfg)
    for shape in shapes:
        swarm_for(cls, shape)  # build the rules before the clock matters
    counted = counted_class(cls) if counts is not None else cls  # coverage: hooks, windows
    examples = nsteps = 0
    failure = None
    if chunk.index == 0 and key is not None:
        for blob in (saved or {}).get(key + WALK_SUB_KEY, ()):
            try:
                run_cfg, run_strict, actions = saved_run(blob, cfg, strict)
                failure = replay_actions(cls, run_cfg, run_strict, actions)
            except (ValueError, TypeError, KeyError, UsageError):
                failure = None  # an entry this model cannot replay: not this run's verdict
            else:  # its steps: the actions it ran (up to the failure), as a walk counts them
                nsteps += (len(failure.machine.actions) if failure is not None
                           and failure.machine is not None else len(actions))
            examples += 1
            if failure is not None:
                break
    rnd = random.Random(chunk.seed)
    k = 0
    with search_gc():  # disposed machines are freed by reference counting: fewer cycle scans
        while failure is None and k < chunk.examples:
            ex = run_shaped_example(counted, shapes, strict, rnd.getrandbits(64))
            examples += 1
            k += 1
            nsteps += ex.steps
            failure = ex.failure
            if counts is not None:
                tally(ex.machine, counts)
            if failure is None:
                ex.machine.dispose()  # freed now, not by the cycle collector (Machine.dispose)
    if failure is None:
        return examples, nsteps, [], None, (None, False), ()
    first = time.monotonic() - t0
    # filed for the parent before the shrink, where Ctrl-C may come (``found_to``)
    _file_found(found_to, chunk.index, examples, nsteps, first, failure)
    small, text, proven = minimize(failure)
    log = ()
    if key is not None and small.machine is not None:
        m = small.machine
        log = (("save", key + WALK_SUB_KEY, json.dumps(
            {"config": attrs.asdict(m.cfg), "actions": [[n, list(a)] for n, a in m.actions]}
        ).encode()),)
    return examples, nsteps, [small], first, (text, proven), log


def _file_found(to: str | None, index: int, examples: int, steps: int, first: float,
                failure) -> None:
    """File chunk ``index``'s failure, unshrunk, at ``to`` (``Task.found_to``), before its
    shrink: read after Ctrl-C (conformance/found.py)."""
    if to is None or failure.machine is None:
        return
    item = ChunkResult(index, examples, steps, _found([failure], failure.machine.cfg), first,
                       interrupted=True)
    file_found(to, index, item)


def run_task(task: Task) -> ChunkResult:
    """Run one chunk (in a worker); the result is plain data.

    Example::

        >>> t = Task("linux", DEFAULT, False, 10, Chunk(0, 0, 2), time.time())
        >>> r = run_task(t); r.index, r.examples > 0, r.found
        (0, True, ())
    """
    watch_this_thread()  # a Dask worker's thread, which no SIGALRM reaches (conformance/watchdog.py)
    cls = loaded_protocol(task.protocol) if isinstance(task.protocol, str) else task.protocol
    # this process's monotonic clock, set back to the run's start
    t0 = time.monotonic() - (time.time() - task.started)
    c = task.chunk
    counts: dict = {}
    if task.engine == "walk":
        ex, st, failures, tf, (text, proven), log = run_walk_chunk(
            cls, task.cfg, task.strict, task.steps, c, t0, task.saved, task.key, counts,
            task.found_to)
        return ChunkResult(c.index, ex, st, _found(failures, task.cfg), tf, "", log, text,
                           proven, counts)
    db = ChunkDatabase(task.saved) if task.key is not None else None
    with seed_only(), warnings.catch_warnings():
        # on a Dask worker the event loop's thread draws from the global `random` while a
        # chunk runs; Hypothesis takes that for the strategy's own use and warns
        warnings.filterwarnings("ignore", "Do not use the `random` module",
                                HypothesisDeprecationWarning)
        ex, st, failures, tf, prog = run_chunk(cls, task.cfg, task.strict, task.steps,
                                               c.examples, c.seed, t0, shrink_s=task.shrink_s,
                                               database=db, key=task.key, counts=counts)
    return ChunkResult(c.index, ex, st, _found(failures, task.cfg), tf, prog, tuple(db.log) if db else (),
                       counts=counts)


def _found(failures, cfg: MachineConfig) -> tuple:
    """:attr:`ChunkResult.found` of ``failures``: ``(rule, actions, text, config)`` each, the
    config of the machine it ran on (``cfg`` for a failure without one)."""
    return tuple((f.rule, list(f.machine.actions) if f.machine else None, str(f),
                  f.machine.cfg if f.machine else cfg) for f in failures)


def _protocol_ref(cls):
    """How a worker finds ``cls``: the reference string ``load_protocol`` made it from
    (``cls.ref``: a built-in name, a file's absolute path, ``module:Class`` or an entry
    point; such classes are built at run time and do not pickle, so the worker loads the
    reference again), else the class itself.

    Example::

        >>> _protocol_ref(load_protocol("linux"))
        'linux'
    """
    ref = getattr(cls, "ref", None)
    if isinstance(ref, str):
        try:
            if load_protocol(ref).__mro__[1] is cls.__mro__[1]:
                return ref
        except UsageError:
            pass
    return cls


def _budget_check(budget_s, max_examples) -> None:
    if budget_s is None and max_examples is None:
        raise UsageError("certify needs a time budget (--budget) or an example budget "
                         "(--examples)")
    if budget_s is not None:
        require_seconds("--budget", budget_s)
    if max_examples is not None:
        require_count("--examples", max_examples)


def certify(name_or_cls, budget_s: float | None = 60.0, seed: int = 0, strict: bool = False,
            cfg: MachineConfig = DEFAULT, chunk: int | None = None, steps: int = 50,
            max_examples: int | None = None, jobs: int = 1, scheduler: str | None = None,
            database=None, workers: Workers | None = None, engine: str = "walk",
            progress=None) -> Result:
    """Fuzz one protocol for ``budget_s`` seconds and/or ``max_examples`` examples.

    ``jobs`` local worker processes run the chunks (no more than an example budget has
    chunks: a process pool forks every worker up front), or the workers of the Dask
    scheduler at ``scheduler``, or ``workers`` (any :class:`Workers`). ``database``:
    an ``ExampleDatabase`` or a spec (a directory, ``redis://host:port/db``, ``none``);
    None keeps nothing. Ctrl-C ends the run early: ``interrupted`` is set, the counts
    cover the chunks finished, no worker process is left running.

    A budget, job count, step count, chunk or example limit that could only give
    a vacuous verdict (zero or negative, NaN, infinite) is a :class:`UsageError`.
    A run may still end with zero examples (a budget smaller than the workers'
    start-up): its ``passed`` is False, never a PASS.

    ``progress(results, busy)``, if given, is called whenever a chunk is submitted or
    finishes: ``results`` maps the finished chunks' indices to their :class:`ChunkResult`,
    ``busy`` is how many chunks are running (what the CLI's progress line shows).

    Example::

        >>> r = certify("linux", budget_s=None, max_examples=20, steps=10, chunk=10)
        >>> r.passed, r.chunks, r.examples >= 20
        (True, 2, True)
    """
    _budget_check(budget_s, max_examples)
    if engine not in ENGINES:
        raise UsageError(f"unknown --engine {engine!r} (one of {', '.join(ENGINES)})")
    chunk = DEFAULT_CHUNK[engine] if chunk is None else chunk
    require_count("--jobs", jobs)
    require_count("--steps", steps)
    require_count("--chunk", chunk)
    if max_examples is not None:  # no more workers than chunks: a pool forks all of its
        jobs = min(jobs, -(-max_examples // chunk))  # workers up front (--jobs 100000)
    if scheduler is None and workers is None:  # and no more than the machine runs
        require_local_jobs(jobs)
    cls = load_protocol(name_or_cls) if isinstance(name_or_cls, str) else name_or_cls
    db = open_database(database) if isinstance(database, str) else database
    key = campaign_key(cls.name, cfg, strict)
    saved = snapshot(db, key)
    res = Result(protocol=cls.name, protocol_ref=getattr(cls, "ref", ""), seed=seed, budget_s=budget_s, strict=strict, config=cfg,
                 jobs=jobs, max_examples=max_examples,
                 database=None if db is None else describe(db), engine=engine,
                 replayed=saved_count(saved, key, WALK_SUB_KEY if engine == "walk" else b""),
                 chunk=chunk, steps_per_example=steps)
    t0 = time.monotonic()
    deadline = math.inf if budget_s is None else t0 + budget_s
    started = time.time()
    ref = _protocol_ref(cls)

    def task(c: Chunk) -> Task:
        # shrinking ends near the deadline (Hypothesis allows 300 s otherwise)
        shrink_s = 300.0 if budget_s is None else deadline - time.monotonic()
        return Task(ref, cfg, strict, steps, c, started, shrink_s,
                    key if db is not None else None, saved, engine,
                    filing.to if filing is not None else None)

    own = workers is None
    if own:
        workers = open_workers(jobs, scheduler)
    # our own walk chunks file a failure before shrinking it: Ctrl-C then keeps it
    filing = Filing.open(workers) if own and engine == "walk" else None
    # a hook stuck for good ends this process with os._exit (conformance/watchdog.py): the
    # filing directory goes first (each such run left an empty /tmp/flushcheck-found-*)
    gone = contextlib.ExitStack()
    if filing is not None:
        gone.enter_context(before_stop(filing.close))
    res.jobs, res.workers = workers.slots, workers.name
    results: dict = {}
    finished = False
    broke = None  # a worker stopped for good (conformance/watchdog.py): the chunks to run here
    try:
        _drive(workers, plan(seed, chunk, max_examples), task, deadline, results, progress)
        finished = True
    except KeyboardInterrupt:
        res.interrupted = True
    except BrokenProcessPool as exc:
        if not (own and a_worker_stopped()):
            raise  # a worker killed from outside: the CLI says so
        broke = exc
    finally:
        def stop() -> None:
            if own:
                # a failure known, Ctrl-C or an error: chunks still running are of no use
                workers.close(cancel=not finished or _lowest_failing(results) is not None)
        with gone:  # the hook goes even if settling raises (in-process callers: pytest)
            if filing is None:
                stop()
            else:  # a failure a chunk was shrinking when Ctrl-C came is not lost
                for i, item in filing.settle(stop, wanted=res.interrupted).items():
                    results.setdefault(i, item)
    if broke is not None:
        filing = None  # settled: the chunks below run with no filing of their own
        try:
            _rerun_here(broke, plan(seed, chunk, max_examples), task, results)
        except KeyboardInterrupt:
            res.interrupted = True
    _collect(res, cls, results)
    for i in sorted(results):  # after the run: no chunk of it saw another's writes
        apply_log(db, results[i].log)
    res.elapsed_s = time.monotonic() - t0
    return res


def _rerun_here(broke: BrokenProcessPool, chunks: Iterator[Chunk], task, results: dict) -> None:
    """A worker stopped for good on a hook no exception can end, which broke the pool while
    other chunks were running: run the chunks that were in flight again, in this process and
    in index order, until one fails (a result, as ``--jobs 1`` would have found it) or gets
    stuck (this process then stops for good itself, with that chunk's report and reproducer,
    as ``--jobs 1`` does). So the failure reported is the lowest chunk's whatever the number of
    jobs, where it was the chunk whose worker got stuck first in wall time (a review,
    2026-12-05: 86 actions with one job, another chunk's 67 with two). None failing here:
    ``broke`` is raised again, and the CLI reports the worker's words."""
    below = _lowest_failing(results)
    in_flight = getattr(broke, "in_flight", None)
    if in_flight is None:  # not raised where _drive marks it: the worker's words, as before
        raise broke
    again = sorted(i for i in in_flight if below is None or i < below)
    for c in chunks:
        if not again or c.index > again[-1]:
            break
        if c.index in again:
            results[c.index] = r = run_task(task(c))
            if r.found:
                return
    if below is not None:  # every stuck chunk is above a failure, which --jobs 1 reports
        return
    raise broke


def _lowest_failing(results: dict) -> int | None:
    return min((i for i, r in results.items() if r.found), default=None)


def _drive(workers: Workers, chunks: Iterator[Chunk], task, deadline: float,
           results: dict, progress=None) -> None:
    """Keep ``workers.window`` chunks submitted, in index order, until the plan or the
    time runs out or a failure is known; fill ``results`` (index -> ChunkResult).

    Done when every chunk at or below the lowest failing one has finished: a chunk
    above it cannot change the verdict.
    """
    pending: dict = {}  # future -> chunk index
    stop_at = math.inf  # the lowest failing chunk so far
    more = True
    while True:
        while more and len(pending) < workers.window and time.monotonic() < deadline:
            c = next(chunks, None)
            if c is None or c.index > stop_at:
                more = False
                break
            try:
                pending[workers.executor.submit(run_task, task(c))] = c.index
            except BrokenProcessPool as exc:  # broke since the last wait(): c never ran
                exc.in_flight = sorted({c.index, *pending.values()})
                raise
        if progress is not None:  # the chunks running: at most one per slot (the rest wait)
            progress(results, min(len(pending), workers.slots))
        if not pending or all(i > stop_at for i in pending.values()):
            return
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for fut in done:
            i = pending.pop(fut)
            try:
                r = fut.result()
            except BrokenProcessPool as exc:  # every chunk in flight is lost with it
                exc.in_flight = sorted({i, *pending.values()})
                raise
            results[i] = r
            if r.found:
                stop_at = min(stop_at, i)
                more = False


def _collect(res: Result, cls, results: dict) -> None:
    """Sum the chunks that count and take the lowest failing chunk's failures, replayed
    here from their actions (each must hit the same rule again)."""
    from .reproducer import replay_actions

    best = _lowest_failing(results)
    counted = [r for i, r in sorted(results.items()) if best is None or i <= best]
    if best is None and res.interrupted:
        # the finished chunks from 0 up to the first that was still running: chunks finish
        # out of order, and counting the later ones gave totals no `--examples N` run
        # reproduces (a review, 2026-12-05: chunks 0-74 and 76 of 77)
        prefix = next(n for n in range(len(results) + 1) if n not in results)
        res.uncounted = len(counted) - prefix
        counted = counted[:prefix]
    res.chunks = len(counted)
    res.examples = sum(r.examples for r in counted)
    res.steps = sum(r.steps for r in counted)
    for r in counted:
        merge(res.counts, r.counts)
    if best is None:
        return
    r = results[best]
    res.failing_chunk = best
    res.first_failure_s = r.first_failure_s
    res.hypothesis_program = r.program
    res.litmus, res.proven, res.shrink_cut = r.litmus, r.proven, r.interrupted
    for rule, actions, text, cfg in r.found:
        if actions is None:  # nothing to replay: keep the worker's words
            f = in_words(rule, text)
        else:  # on the machine it failed on (the walk draws one per example)
            before = outside.look(cls)
            f = replay_actions(cls, cfg, res.strict, actions)
            if f is None or f.rule != rule:  # the worker's words, and why no reproducer
                got = 'they passed' if f is None else f.rule
                try:  # state the replay changed outside the machine explains it
                    outside.check(cls, before, "the failure's replay")
                    hidden = None
                except UsageError as exc:
                    hidden = str(exc)
                why = (f"{text} [its {len(actions)} actions did not fail so when replayed "
                       f"here: {got}; " + (hidden or "state kept outside the protocol's "
                                           "slots (a module or class attribute)?") + "]")
                # a protocol error was raised in the protocol's code, whatever the replay
                # does; an oracle verdict that does not replay is no verdict: the protocol's
                # hidden state or flushcheck's own nondeterminism (it read as "linux fails
                # S2", exit 1; a review, 2026-12-05). Where the replay changed the
                # protocol's state outside the machine, it is the protocol's: a protocol
                # error naming the value (it read as a flushcheck bug, exit 3; a user
                # review, 2026-12-06)
                if rule in (ModelError.rule, ProtocolError.rule):
                    f = in_words(rule, why)
                elif hidden is not None:
                    f = in_words(ProtocolError.rule, f"{rule} did not replay: {why}")
                else:
                    f = in_words(ModelError.rule, f"{rule} did not replay, no verdict: {why}")
        res.failures.append(f)


def in_words(rule: str, text: str) -> Failure:
    """A failure a worker reported in words alone (it had no actions, or they did not fail
    the same way when the parent replayed them), of the class its rule names: a model error
    stays one (exit 3; it read "FAIL: MODEL-ERROR violated", exit 1), a protocol error too.
    A replay that differed was a RuntimeError: the run ended in a traceback.

    Example::

        >>> type(in_words("MODEL-ERROR", "deadlock")).__name__, in_words("S2", "x").rule
        ('ModelError', 'S2')
    """
    kind = {ModelError.rule: ModelError, ProtocolError.rule: ProtocolError}.get(rule, Failure)
    f = kind(text)
    f.rule = rule
    return f
