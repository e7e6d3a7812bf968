"""The soundness campaign: fuzz the protocols meant to be correct, at raw-walk speed.

A false report of the oracle on a correct protocol is rare (about one in a few
million steps), so finding one needs volume: this campaign runs the seeded raw
walk of :mod:`conformance.search.walk` (about 110,000 steps/s per core, against a few
thousand for Hypothesis) over every correct protocol and a set of machine
configs, counts every failing example, and shrinks and saves a reproducer for
the first few of each rule. ``flushcheck soundness`` is its command;
docs/SOUNDNESS.md explains how to read it.

Work is split into *chunks* of examples; chunk ``c`` of (protocol, config) has
the seed ``derive_seed(seed, protocol, config name, c)`` and its example ``i``
the seed ``derive_seed(chunk seed, i)``, so an example's actions depend only
on (protocol, config, strict, example seed, actions per example), whatever the
number of jobs.

In strict mode (O1 without the in-flight exemption) an ``O1-strict`` failure at
an access that some operation in flight touched is a *window* the kernel
tolerates, not a violation: windows are grouped by :func:`window_signature`.
An ``O1-strict`` failure that no operation in flight covers would fail plain O1
as well, and counts as a violation, as do S1, S2, S3 and C1.

Example::

    >>> r = campaign(["linux"], CONFIG_SETS["quick"], budget_s=1, jobs=1)   # doctest: +SKIP
    >>> r.verdict, r.cells[0].examples > 0                                 # doctest: +SKIP
    ('PASS', True)
"""
from __future__ import annotations

import hashlib
import os
import queue
import time
from concurrent.futures.process import BrokenProcessPool

import attrs

from .certify import require_count, require_local_jobs, require_seconds
from .config import CONFIG_SETS, DEFAULT, MachineConfig  # noqa: F401 - CONFIG_SETS re-exported
from .errors import Failure, unwritten
from .executors import local_workers
from .gcpolicy import search_gc
from .registry import _import, load_protocol, loaded_protocol, protocol_names
from .search.walk import (ACTIONS_PER_EXAMPLE, rules_for, run_example, run_shaped_example,
                          shape_of, shapes_for, shrink)

#: the protocols fuzzed by default, besides every module that declares ``CORRECT = True``
ALWAYS = ("immediate", "linux")

#: prefix of the key an O1-strict window is counted under (:func:`classify`)
WINDOW = "window: "

#: examples per chunk (a chunk is the unit handed to a worker; ~0.1 s)
CHUNK_EXAMPLES = 100
#: failing examples kept (and shrunk) per (protocol, config, rule or window signature)
KEEP = 3
KEEP_WINDOWS = 1


def derive_seed(*parts) -> int:
    """A 64-bit seed from ``parts`` (BLAKE2b of their text: unlike ``hash()`` of a
    string, the same in every process).

    Example::

        >>> derive_seed(0, "linux", "default", 0) == derive_seed(0, "linux", "default", 0)
        True
    """
    text = "/".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def correct_protocols() -> list[str]:
    """``immediate``, ``linux`` and every protocol module with ``CORRECT = True``, sorted.

    A module that does not import is a :class:`UsageError` naming it (one line, exit 2):
    left out, a module meant to be ``CORRECT`` would get a campaign's PASS that never ran
    it (a user review, 2026-12-07); ``--protocol`` names the ones to run meanwhile.

    Example::

        >>> "linux" in correct_protocols()
        True
    """
    names = set(ALWAYS)
    for name in protocol_names():
        mod = _import(f"protocols.{name}", f"protocols/{name}.py")
        if vars(mod).get("CORRECT", False) is True:
            names.add(name)
    return sorted(names)


# -- classifying a failure ------------------------------------------------------------------
def _op_text(op) -> str:
    """An operation as a window signature names it (the variant that matters, no numbers)."""
    if op.name == "madvise":
        return f"madvise({op.args[2]})"
    if op.name == "mprotect":
        return f"mprotect({'RW' if op.args[2] else 'RO'})"
    if op.name == "mmap" and op.args[4]:
        return "mmap(FIXED)"
    return op.name


def covering_ops(failure: Failure) -> list:
    """The operations in flight that touched the failing access's page, location or frame:
    the ones whose in-flight exemption (docs/oracle.md section 4) would excuse it."""
    m, mm_id, vp = failure.machine, getattr(failure, "mm", None), getattr(failure, "vpage", None)
    if m is None or mm_id is None or vp is None:
        return []
    vma = m.mms[mm_id].find_vma(vp)
    loc = vma.location(vp) if vma is not None else None
    frame = failure.frame
    return [op for op in m.ops
            if (mm_id, vp) in op.touched_vps or loc in op.touched_locs
            or frame in op.touched_frames]


def window_signature(failure: Failure) -> str | None:
    """The window of an ``O1-strict`` failure that operations in flight cover, or None.

    The access (load or store), the sorted operations that cover it (with their
    variant: ``madvise(free)``, ``mprotect(RO)``, ``mmap(FIXED)``) and whether the
    TLB entry used was writable. None when the failure is not ``O1-strict`` or no
    operation covers it (then plain O1 fails too: a violation, not a window).

    Example::

        >>> window_signature(failure)   # doctest: +SKIP
        'load during munmap, entry W'
    """
    if failure.rule != "O1-strict":
        return None
    ops = covering_ops(failure)
    if not ops:
        return None
    m = failure.machine
    name, args = m.actions[-1]
    store = name == "user_access" and bool(args[2])
    cpu = failure.cpus[0] if failure.cpus else None
    e = None if cpu is None else m.tlbs.lookup(m.tlbs.cpus[cpu], failure.mm, failure.vpage)
    entry = "no entry" if e is None else ("entry W" if e.writable else "entry RO")
    return (f"{'store' if store else 'load'} during "
            f"{' + '.join(sorted(_op_text(op) for op in ops))}, {entry}")


def classify(failure: Failure) -> str:
    """The key a failure is counted under: ``window: <signature>``, or its rule.

    Example::

        >>> classify(failure)   # doctest: +SKIP
        'S3'
    """
    sig = window_signature(failure)
    return failure.rule if sig is None else WINDOW + sig


def keep_count(key: str) -> int:
    """How many failing examples of ``key`` a (protocol, config) keeps, shrinks and saves."""
    return KEEP_WINDOWS if is_window(key) else KEEP


def is_window(key: str) -> bool:
    """Is ``key`` (see :func:`classify`) an O1-strict window rather than a violation?"""
    return key.startswith(WINDOW)


# -- one chunk ---------------------------------------------------------------------------------
@attrs.frozen
class Job:
    """One (protocol, config) of a campaign, as a worker needs it (picklable)."""

    protocol: str
    config: str
    cfg: MachineConfig
    strict: bool
    seed: int
    actions: int
    #: certify's examples (its swarm walk: rule mix, argument subsets, PCT scheduling,
    #: 20-200 actions, ``actions`` ignored; on its machine shapes of ``cfg``,
    #: ``walk.shapes_for``) instead of the uniform walk on ``cfg``
    swarm: bool = False


@attrs.define
class Chunk:
    """What one chunk ran: counts per key and the first failing examples of each key."""

    index: int
    examples: int = 0
    steps: int = 0
    counts: dict = attrs.Factory(dict)  # key -> failing examples
    firsts: list = attrs.Factory(list)  # (chunk, example, seed, key, headline, length)


def run_chunk(job: Job, index: int, deadline: float, out: Chunk | None = None) -> Chunk:
    """Run chunk ``index`` of ``job`` until it has ``CHUNK_EXAMPLES`` examples or the deadline
    passes (chunk 0 runs at least one example, so no (protocol, config) reports zero).

    ``out`` is filled as examples finish, so a Ctrl-C keeps what was done.

    Example::

        >>> from conformance.config import DEFAULT
        >>> c = run_chunk(Job("linux", "default", DEFAULT, False, 0, 20), 0, 0.0)
        >>> c.examples, c.steps
        (1, 20)
    """
    out = Chunk(index) if out is None else out
    cls = loaded_protocol(job.protocol)
    rules = rules_for(cls, job.cfg)
    cseed = derive_seed(job.seed, job.protocol, job.config, index)
    with search_gc():  # disposed machines are freed by reference counting: fewer cycle scans
        for i in range(CHUNK_EXAMPLES):
            if time.monotonic() >= deadline and (i or index):
                break
            eseed = derive_seed(cseed, i)
            ex = _example(cls, job, eseed, rules)
            out.examples += 1
            out.steps += ex.steps
            if ex.failure is not None:  # kept as its seed: the example replays from it
                key = classify(ex.failure)
                n = out.counts.get(key, 0)
                out.counts[key] = n + 1
                if n < keep_count(key):
                    out.firsts.append((index, i, eseed, key, ex.failure.headline(),
                                       len(ex.failure.machine.actions)))
            # freed now, not by the cycle collector (Machine.dispose); a failing one may hold
            # a hook paused in a greenlet, which the collector never frees
            ex.machine.dispose()
    return out


def _example(cls, job: Job, seed: int, rules=None):
    """Example ``seed`` of ``job``: certify's own (:func:`run_shaped_example`: the machine
    shape drawn from the seed, then the swarm walk) with ``swarm``, else the uniform walk on
    ``job.cfg``. Until 2026-12-04 the swarm campaign ran the swarm walk on ``job.cfg`` only,
    never on certify's narrowed 4-CPU machine, where ``certify linux`` then found a false
    C1 the campaign had passed (docs/SOUNDNESS.md)."""
    if job.swarm:
        return run_shaped_example(cls, shapes_for(job.cfg), job.strict, seed)
    return run_example(cls, job.cfg, job.strict, seed, job.actions, rules)


def _example_cfg(job: Job, seed: int) -> MachineConfig:
    """The machine example ``seed`` of ``job`` ran on (:func:`_example`)."""
    return shape_of(shapes_for(job.cfg), seed) if job.swarm else job.cfg


def shrink_example(job: Job, seed: int, key: str, seconds: float) -> list:
    """Re-run example ``seed`` of ``job`` and shrink its failure, keeping ``key``; the
    shrunk action list (the example's own if it did not fail as ``key``)."""
    ex = _example(load_protocol(job.protocol), job, seed)
    f = ex.failure
    if f is None or classify(f) != key:  # cannot happen: examples are deterministic
        return []
    return list(shrink(f, seconds, same=classify).machine.actions)


# -- results -----------------------------------------------------------------------------------
@attrs.define
class Finding:
    """One kept failing example, shrunk, with its reproducer."""

    key: str
    count: int  # failing examples under this key in the (protocol, config)
    seed: int  # the example's seed
    headline: str
    length: int  # actions of the example until it failed
    shrunk: int | None = None  # actions of the reproducer saved
    path: str | None = None  # the reproducer (None: could not be replayed)
    was_shrunk: bool = True  # False: saved as it failed (Ctrl-C came before shrinking)

    @property
    def window(self) -> bool:
        return is_window(self.key)

    @property
    def label(self) -> str:
        """The rule, or the window's signature."""
        return self.key[len(WINDOW):] if self.window else self.key


@attrs.define
class Cell:
    """One (protocol, config) of a campaign."""

    job: Job
    examples: int = 0
    steps: int = 0
    seconds: float = 0.0
    counts: dict = attrs.Factory(dict)
    firsts: list = attrs.Factory(list)
    findings: list = attrs.Factory(list)
    #: a line per reproducer that could not be written (errors.unwritten)
    unwritten: list = attrs.Factory(list)

    @property
    def rate(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0

    @property
    def violations(self) -> int:
        return sum(n for k, n in self.counts.items() if not is_window(k))

    @property
    def windows(self) -> int:
        return sum(n for k, n in self.counts.items() if is_window(k))

    def add(self, chunk: Chunk) -> None:
        self.examples += chunk.examples
        self.steps += chunk.steps
        for k, n in chunk.counts.items():
            self.counts[k] = self.counts.get(k, 0) + n
        self.firsts.extend(chunk.firsts)
        self.firsts = self.kept()  # bounded however long the campaign runs

    def kept(self) -> list:
        """The first few failing examples per key, in (chunk, example) order: deterministic
        for a given set of chunks run."""
        out, seen = [], {}
        for first in sorted(self.firsts):
            key = first[3]
            seen[key] = seen.get(key, 0) + 1
            if seen[key] <= keep_count(key):
                out.append(first)
        return out


@attrs.define
class Campaign:
    """A whole campaign: its parameters and one :class:`Cell` per (protocol, config)."""

    protocols: list
    configs: tuple
    budget_s: float
    seed: int = 0
    jobs: int = 1
    strict: bool = False
    actions: int = ACTIONS_PER_EXAMPLE
    cells: list = attrs.Factory(list)
    interrupted: bool = False
    swarm: bool = False

    @property
    def examples(self) -> int:
        return sum(c.examples for c in self.cells)

    @property
    def steps(self) -> int:
        return sum(c.steps for c in self.cells)

    @property
    def model_error(self) -> bool:
        return any("MODEL-ERROR" in c.counts for c in self.cells)

    @property
    def verdict(self) -> str:
        """PASS (no violation, every cell ran), FAIL, or INTERRUPTED (no violation so far)."""
        if any(c.violations for c in self.cells):
            return "FAIL"
        if self.interrupted or not self.cells or any(c.examples == 0 for c in self.cells):
            return "INTERRUPTED"
        return "PASS"


# -- running -----------------------------------------------------------------------------------
def _chunk_task(args) -> Chunk:
    job, index, deadline = args
    return run_chunk(job, index, deadline)


def _shrink_task(args) -> list:
    return shrink_example(*args)


class _Pool:
    """Fork workers whose results arrive, in completion order, on one queue.

    Certify's local workers (:func:`conformance.executors.local_workers`: a
    ``ProcessPoolExecutor`` whose workers ignore Ctrl-C and run the watchdog; a
    ``multiprocessing.Pool`` until 2026-12-04: when the OOM killer took one of its workers,
    the task it ran never finished and the campaign waited forever): a worker that dies fails
    every pending task with ``BrokenProcessPool``, which :meth:`get` raises and the CLI
    reports in one line."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.workers = local_workers(jobs)
        self.results: queue.Queue = queue.Queue()

    def submit(self, fn, args, tag) -> None:
        try:
            fut = self.workers.executor.submit(fn, args)
        except BrokenProcessPool as exc:  # a worker died since the last result
            self.results.put((tag, None, exc))
            return
        fut.add_done_callback(lambda f: self._done(tag, f))

    def _done(self, tag, fut) -> None:
        # a task cancelled by close() puts nothing (its exception() would raise, and the
        # pool would print a traceback per queued task)
        if not fut.cancelled():
            exc = fut.exception()
            self.results.put((tag, None, exc) if exc is not None else (tag, fut.result(), None))

    def get(self):
        tag, result, error = self.results.get()
        if error is not None:
            raise error
        return tag, result

    def close(self) -> None:
        self.workers.close(cancel=True)  # running chunks stopped, queued ones cancelled


def _fuzz_cell(cell: Cell, budget_s: float, pool: _Pool | None) -> None:
    """Run chunks of ``cell`` for ``budget_s`` seconds (in ``pool``'s workers if any)."""
    t0 = time.monotonic()
    deadline = t0 + budget_s
    try:
        if pool is None:
            i = 0
            while i == 0 or time.monotonic() < deadline:
                chunk = Chunk(i)
                try:
                    run_chunk(cell.job, i, deadline, chunk)
                finally:
                    cell.add(chunk)
                i += 1
            return
        nxt = 0
        running = 0
        for _ in range(pool.jobs):  # one chunk per worker to start with
            pool.submit(_chunk_task, (cell.job, nxt, deadline), nxt)
            nxt += 1
            running += 1
        while running:
            _tag, chunk = pool.get()
            running -= 1
            cell.add(chunk)
            if time.monotonic() < deadline:
                pool.submit(_chunk_task, (cell.job, nxt, deadline), nxt)
                nxt += 1
                running += 1
    finally:
        cell.seconds = time.monotonic() - t0


def window_order(cell: Cell) -> list:
    """The window keys of ``cell``, most frequent first (the order reports list them)."""
    return sorted((k for k in cell.counts if is_window(k)), key=lambda k: (-cell.counts[k], k))


def _save_findings(cell: Cell, repro_dir: str, shrunk: dict) -> None:
    """Replay each kept example (shrunk if ``shrunk`` has it) and save its reproducer;
    an example that shrank to the same actions as an earlier one of its key is dropped."""
    from .reproducer import replay_actions, save

    job = cell.job
    cls = load_protocol(job.protocol)
    windows = window_order(cell)
    seen: dict = {}  # key -> shrunk action lists saved
    for _chunk, _ex, seed, key, headline, length in cell.kept():
        finding = Finding(key, cell.counts[key], seed, headline, length)
        acts = shrunk.get(seed)
        if not acts:  # not shrunk (interrupted, or it did not fail again): the example itself
            ex = _example(cls, job, seed)  # (the uniform walk's until 2026-12-04, swarm or not)
            acts = list(ex.failure.machine.actions) if ex.failure is not None else []
            finding.was_shrunk = False
        if acts in seen.setdefault(key, []):
            continue
        seen[key].append(acts)
        try:
            f = replay_actions(cls, _example_cfg(job, seed), job.strict, acts) if acts else None
        except Exception:  # noqa: BLE001 - a model error that replay does not catch
            f = None
        if f is not None and f.machine is not None:
            slug = f"window{windows.index(key) + 1}" if is_window(key) else key
            # cls.name: a file protocol's stem, not its path (which made nested folders)
            name = (f"soundness-{cls.name}-{job.config}-{slug}"
                    f"{'-strict' if job.strict else ''}-{len(seen[key])}.json")
            path = os.path.join(repro_dir, name)
            try:
                finding.path = save(f, path, seed=seed)
            except OSError as exc:  # said after the report (cmd_soundness), the verdict kept
                cell.unwritten.append(unwritten("reproducer", path, exc))
            finding.shrunk = len(f.machine.actions)
            finding.headline = f.headline()
        cell.findings.append(finding)
    # violations by rule, then windows most frequent first (stable: example order within a key)
    cell.findings.sort(key=lambda f: (f.window, windows.index(f.key) if f.window else 0, f.key))


def _shrink_cell(cell: Cell, shrink_s: float, pool: _Pool | None) -> dict:
    """Shrink every kept example of ``cell``: example seed -> shrunk action list."""
    kept = cell.kept()
    tasks = [(cell.job, seed, key, shrink_s) for _c, _i, seed, key, _h, _n in kept]
    if pool is None:
        return {t[1]: shrink_example(*t) for t in tasks}
    for t in tasks:
        pool.submit(_shrink_task, t, t[1])
    out = {}
    for _ in tasks:
        seed, acts = pool.get()
        out[seed] = acts
    return out


def check_params(budget_s: float, jobs: int, actions: int, shrink_s: float) -> None:
    """:class:`UsageError` unless every parameter allows a real run.

    Example::

        >>> check_params(0, 1, 80, 3.0)
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: --budget must be a positive number of seconds, not 0
    """
    require_seconds("--budget", budget_s)
    require_local_jobs(jobs)
    require_count("--actions", actions)
    require_seconds("--shrink-seconds", shrink_s, zero_ok=True)


def campaign(protocols, configs, budget_s: float = 60.0, seed: int = 0, jobs: int = 1,
             strict: bool = False, actions: int = ACTIONS_PER_EXAMPLE, shrink_s: float = 3.0,
             repro_dir: str = "repro", progress=None, swarm: bool = False) -> Campaign:
    """Fuzz every protocol under every config for ``budget_s`` seconds each.

    ``protocols``: names; ``configs``: (name, MachineConfig) pairs. Kept failing
    examples are shrunk (``shrink_s`` seconds each) and saved under
    ``repro_dir``. ``progress(cell)`` is called as each cell's fuzzing ends. A
    Ctrl-C stops the campaign: the result has ``interrupted`` set, covers what
    ran, and its findings are saved unshrunk. ``swarm``: each example is certify's swarm
    walk (:class:`conformance.search.walk.Swarm`) instead of the uniform ``actions``-step walk.

    Example::

        >>> r = campaign(["linux_4_3"], CONFIG_SETS["quick"], budget_s=2)   # doctest: +SKIP
        >>> r.verdict, r.cells[0].findings[0].key                          # doctest: +SKIP
        ('FAIL', 'S3')
    """
    check_params(budget_s, jobs, actions, shrink_s)
    for p in protocols:
        load_protocol(p)  # UsageError now, not in a worker
    res = Campaign(list(protocols), tuple(configs), budget_s, seed, jobs, strict, actions,
                   swarm=swarm)
    pool = _Pool(jobs) if jobs > 1 else None
    try:
        for p in protocols:
            for name, cfg in configs:
                cell = Cell(Job(p, name, cfg, strict, seed, actions, swarm))
                res.cells.append(cell)
                shrunk: dict = {}
                try:
                    _fuzz_cell(cell, budget_s, pool)
                    if progress is not None:
                        progress(cell)
                    shrunk = _shrink_cell(cell, shrink_s, pool)
                except KeyboardInterrupt:
                    res.interrupted = True
                _save_findings(cell, repro_dir, shrunk)
                if res.interrupted:
                    return res
    finally:
        if pool is not None:
            pool.close()
    return res
