"""Hypothesis ``RuleBasedStateMachine`` per protocol: the fuzzer.

Rules start kernel operations on idle CPUs, advance any runnable operation by
one step (two rules do this, to bias the schedule toward preempting operations
in the middle), perform user reads and writes, fill and evict TLB entries,
switch contexts and let the other consumer allocate. The oracle runs inside
every action; a violation is an ``AssertionError`` that Hypothesis shrinks.

Example::

    >>> from conformance.registry import load_protocol
    >>> cls = conformance_machine(load_protocol("linux"))
    >>> cls.__name__
    'Conformance_linux'
"""
from __future__ import annotations

import math

from hypothesis import event, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule
from hypothesis.strategies import SearchStrategy

try:  # Hypothesis internals, used only to limit swarm testing (see _limit_swarm)
    from hypothesis.strategies._internal.featureflags import FeatureFlags
except ImportError:  # pragma: no cover
    FeatureFlags = None

import strategies as S

from ..config import DEFAULT, MachineConfig
from ..coverage import counted_class, events, merge, tally
from ..errors import UsageError
from ..machine import MADV_ADVICE, Machine
from ..mm.mm_types import PRESENT


class Stats:
    """Counters shared by every run of a machine class: examples, steps, and ``counts``, the
    coverage and oracle checks summed over the examples (:func:`conformance.coverage.tally`;
    filled by the Hypothesis state machine's teardown)."""

    __slots__ = ("examples", "steps", "counts")

    def __init__(self) -> None:
        self.examples = 0
        self.steps = 0
        self.counts: dict = {}


def _pick(ids: list, i: int):
    """The ``i``-th (modulo) of ``ids``, or None if there are none."""
    return ids[i % len(ids)] if ids else None


class Driver:
    """Turns rule arguments into machine actions (idle CPU choice, frame choice)."""

    def __init__(self, machine: Machine) -> None:
        self.m = machine

    def _idle(self, cpu: int):
        return _pick([c.id for c in self.m.tlbs.cpus if c.op is None], cpu)

    def _idle_task(self, cpu: int):
        """An idle CPU whose loaded mm has a task to run (not exiting): where a user
        access or a syscall of that mm can start."""
        return _pick([c.id for c in self.m.tlbs.cpus if c.op is None and not c.loaded_mm.exiting],
                     cpu)

    def has_idle(self) -> bool:
        return self.m.busy_cpus < self.m.cfg.ncpus

    def has_runnable(self) -> bool:
        for op in self.m.ops:  # evaluated before every step: Op.runnable() inlined
            b = op.blocked_on
            if b is None or b.can_take(op):
                return True
        return False

    def advance(self, i: int) -> None:
        run = self.m.runnable_ops()
        if run:
            self._run(run[i % len(run)])

    def _run(self, op) -> None:
        """Advance ``op``, runnable (logs ``advance(op.id)``, as ``Machine.advance`` does).
        The walk's drivers add their refill here (``walk.WalkDriver``)."""
        self.m.advance_runnable(op)

    def access(self, cpu: int, vpage: int, write: bool) -> None:
        c = self._idle_task(cpu)
        if c is not None:
            self.m.user_access(c, vpage, write)

    def fill(self, cpu: int, k: int) -> None:
        """Speculative fill of the ``k``-th present PTE of the CPU's loaded mm (a fill from a
        non-present PTE cannot happen, so those picks would be wasted)."""
        mm = self.m.tlbs.cpus[cpu].loaded_mm
        present = [vp for vp, pte in enumerate(mm.ptes) if pte.kind == 1]
        if present:
            self.m.fill(cpu, present[k % len(present)])

    def _start(self, cpu: int, start: int) -> int:
        """A range start: ``start < vpages`` is that page; larger values pick a *hot* page
        of the CPU's mm: mapped by a VMA but with no present PTE (reclaimed, migrating,
        or never faulted). Collision bias: the 2017/2021 races are munmap/mprotect over
        such a page."""
        n = self.m.cfg.vpages
        if start < n:
            return start
        mm = self.m.tlbs.cpus[cpu].loaded_mm
        hot = [vp for vp, pte in enumerate(mm.ptes) if pte.kind != 1 and mm.find_vma(vp)]
        return hot[(start - n) % len(hot)] if hot else start - n

    def evict(self, cpu: int, k: int) -> None:
        self.m.evict(cpu, k)

    def switch(self, cpu: int, mm: int) -> None:
        c = self._idle(cpu)
        if c is not None and not self.m.mms[mm].exiting:
            self.m.switch_mm(c, mm)

    def background(self, kind: int, cpu: int, k: int) -> None:
        """Rarely decisive events, one rule so they dilute the schedule less: evict the k-th
        TLB entry of a CPU (kind 0), switch an idle CPU to another mm (1), the other consumer
        allocates and writes a frame (2) or frees its oldest one (3), the last task of an
        idle CPU's mm exits and a new program starts there (4: ``exit_mmap``), the task of an
        idle CPU forks into the k-th other mm slot (5: ``dup_mmap``; here for the same reason
        as exit: the child's slot loses its address space)."""
        if kind == 0:
            self.evict(cpu, k)
        elif kind == 1:
            if self.has_idle():
                self.switch(cpu, k % self.m.cfg.nmms)
        elif kind == 2:
            self.consumer_alloc()
        elif kind == 3:
            self.consumer_free()
        elif kind == 4:
            if self.has_idle():
                self.exit_mmap(cpu)
        elif self.has_idle():
            self.fork(cpu, k)

    def _frames(self, a: int, n: int):
        """Folios for reclaim/migration: even picks prefer *hot* folios, those mapped in
        an mm that a munmap/mprotect/mmap is working on right now (collision bias:
        every batched-flush race is reclaim meeting such an operation)."""
        lru = self.m.lru_frames()
        if not lru:
            return ()
        hot = self.m.hot_frames() if a % 2 == 0 else ()
        pool = hot or lru
        i = a // 2 if hot else a
        picked = [pool[i % len(pool)]]
        if n > 1 and len(pool) > 1:
            picked.append(pool[(i + 1) % len(pool)])
        return tuple(picked)

    def _one_more(self, frames: tuple, a: int) -> tuple:
        """The folio of a nested reclaim pass: the ``a``-th LRU folio not in ``frames``
        (none when every LRU folio is in the batch)."""
        rest = [f for f in self.m.lru_frames() if f not in frames]
        return (rest[a % len(rest)],) if rest else ()

    def reclaim(self, cpu: int, a: int, n: int, nested: bool = False) -> None:
        """Reclaim; ``nested``: one more LRU folio (not in ``frames``) for a nested pass."""
        c = self._idle(cpu)
        frames = self._frames(a, n)
        if c is not None and frames:
            self.m.reclaim(c, frames, self._one_more(frames, a) if nested else ())

    def migrate(self, cpu: int, a: int, n: int, direct: bool = False) -> None:
        """kcompactd's migration, or (``direct``) the same by the task of the CPU's mm:
        for a pick ``a`` under 4 in direct compaction (:meth:`Machine.compact`), from 4 a
        move_pages(2) whose last destination allocation enters direct reclaim of one more
        LRU folio (:meth:`Machine.move_pages`, docs/model.md section 11 item 24); kcompactd's
        where that mm is exiting (it has no task). The pick decides, not a draw of its own,
        so every example draws what it drew before."""
        c = self._idle(cpu)
        frames = self._frames(a, n)
        if c is not None and frames:
            if direct and not self.m.tlbs.cpus[c].loaded_mm.exiting:
                if a < 4:
                    self.m.compact(c, frames)
                    return
                self.m.move_pages(c, frames, self._one_more(frames, a))
            else:
                self.m.migrate(c, frames)

    def munmap(self, cpu: int, start: int, n: int) -> None:
        c = self._idle_task(cpu)
        if c is not None:
            start = self._start(c, start)
            self.m.munmap(c, start, min(n, self.m.cfg.vpages - start))

    def mmap(self, cpu: int, start: int, n: int, file, writable: bool, fixed: bool) -> None:
        c = self._idle_task(cpu)
        if c is not None:
            self.m.mmap(c, start, min(n, self.m.cfg.vpages - start), file, writable, fixed)

    def mprotect(self, cpu: int, start: int, n: int, writable: bool) -> None:
        c = self._idle_task(cpu)
        if c is not None:
            start = self._start(c, start)
            self.m.mprotect(c, start, min(n, self.m.cfg.vpages - start), writable)

    def write(self, cpu: int, file: int, pgoff: int) -> None:
        c = self._idle(cpu)
        if c is not None:
            self.m.write(c, file, pgoff)

    def writeback(self, cpu: int, file: int, pgoff: int) -> None:
        """Writeback of file ``file`` page ``pgoff``; ``file == nfiles`` is a hot pick: the
        ``pgoff``-th page-cache folio an mmu_gather holds (zapped, flush not done yet:
        collision bias for the zap-vs-``folio_mkclean`` races), if any."""
        c = self._idle(cpu)
        if c is None:
            return
        mem = self.m.mem
        if file == len(mem.files):
            hot = [(f.id, p) for f in mem.files for p, fr in sorted(f.cache.items())
                   if mem.gathered[fr]]
            file, pgoff = hot[pgoff % len(hot)] if hot else (0, pgoff)
        self.m.writeback(c, file, pgoff)

    def madvise(self, cpu: int, start: int, n: int, advice: str, mm: int = 0) -> None:
        """madvise. Collision biases (the madvise races need two CPUs in one mm):

        * an even hot pick (``start >= vpages``) joins a madvise in flight if there is one:
          a task of the same mm repeats that call (same range and advice) on this CPU
          (parallel gathers, 99baac21e458);
        * otherwise ``mm`` > 0 makes a task of mm ``mm - 1`` the caller (the CPU switches
          to it first), and the range is picked as for munmap/mprotect;
        * a ``free`` whose range holds no anonymous VMA (``madvise_free_single_vma``'s
          ``-EINVAL`` before any work: a no-op) goes to an anonymous page instead
          (:meth:`_anon_page`): MADV_FREE's races (99baac21e458, 383c4613c67c) need it
          to clean a page reclaim can take. Measured in docs/SEARCH.md, "MADV_FREE on
          anonymous memory, two pages". (A range whose first VMA is a file's and a later
          one anonymous is a no-op too; it is left as drawn.)
        """
        c = self._idle(cpu)
        if c is None:
            return
        m = self.m
        nv = m.cfg.vpages
        if start >= nv and (start - nv) % 2 == 0:
            for op in m.ops:
                if op.name == "madvise":
                    self._run_task_of(c, m.tlbs.cpus[op.cpu].loaded_mm.id)
                    m.madvise(c, *op.args)
                    return
        if mm and not m.mms[mm - 1].exiting:
            self._run_task_of(c, mm - 1)
        if m.tlbs.cpus[c].loaded_mm.exiting:
            return
        start = self._start(c, start)
        if advice == "free":
            caller = m.tlbs.cpus[c].loaded_mm
            if not any(v.is_anon for v in caller.vmas if v.start < start + n and v.end > start):
                at = self._anon_page(caller, start)
                if at is not None:
                    self._run_task_of(c, at[0])
                    start = at[1]
        m.madvise(c, start, min(n, nv - start), advice)

    def _anon_page(self, mm, k: int):
        """``(mm id, vpage)``: the ``k``-th page of an anonymous VMA of ``mm``, else of any
        mm that is not exiting (in mm order); pages with a present PTE first, as only
        those does MADV_FREE clean. None: no anonymous VMA anywhere."""
        for mms in ((mm,), self.m.mms):
            pages = [(x, vp) for x in mms if not x.exiting for v in x.vmas if v.is_anon
                     for vp in range(v.start, v.end)]
            if pages:
                pool = [p for p in pages if p[0].ptes[p[1]].kind == PRESENT] or pages
                x, vp = pool[k % len(pool)]
                return x.id, vp
        return None

    def _run_task_of(self, c: int, mm_id: int) -> None:
        """A task of ``mm_id`` is scheduled on idle CPU ``c`` (a context switch if needed)."""
        if self.m.tlbs.cpus[c].loaded_mm.id != mm_id:
            self.m.switch_mm(c, mm_id)

    def mremap(self, cpu: int, start: int, n: int, dest: int) -> None:
        """mremap to the ``dest``-th free range of the CPU's mm (none free: nothing)."""
        c = self._idle_task(cpu)
        if c is None:
            return
        start = self._start(c, start)
        mm = self.m.tlbs.cpus[c].loaded_mm
        vma = mm.find_vma(start)
        if vma is None:
            return
        n = min(n, vma.end - start)
        free = [s for s in range(len(mm.ptes) - n + 1)
                if not any(v.start < s + n and v.end > s for v in mm.vmas)]
        if free:
            self.m.mremap(c, start, n, free[dest % len(free)])

    def truncate(self, cpu: int, file: int, pgoff: int) -> None:
        """Hole punch of page ``pgoff`` of ``file``; ``file == nfiles`` is a hot pick: the
        ``pgoff``-th cached file page mapped in an mm that an operation in flight works on
        (collision bias: truncate beside an open gather), if any."""
        c = self._idle(cpu)
        if c is None:
            return
        m = self.m
        if file == len(m.mem.files):
            busy = {m.tlbs.cpus[op.cpu].loaded_mm.id for op in m.ops}
            hot = [(f.id, p) for f in m.mem.files for p, fr in sorted(f.cache.items())
                   if any(mid in busy for mid, _vp in m.mem.rmap[fr])]
            file, pgoff = hot[pgoff % len(hot)] if hot else (0, pgoff)
        m.truncate(c, file, pgoff)

    def exit_mmap(self, cpu: int) -> None:
        """The last task of an idle CPU's mm exits (then a new program starts in the mm);
        nothing when a task of that mm is in the kernel."""
        c = self._idle_task(cpu)
        if c is not None and self.m.can_exit(c):
            self.m.exit_mmap(c)

    def fork(self, cpu: int, k: int) -> None:
        """fork() by the task on an idle CPU into the ``k``-th other mm slot that may take a
        child (:meth:`Machine.can_fork_into`: not exiting, no task of it in the kernel;
        none: nothing)."""
        c = self._idle_task(cpu)
        if c is None:
            return
        own = self.m.tlbs.cpus[c].loaded_mm.id
        others = [i for i in range(self.m.cfg.nmms) if i != own and self.m.can_fork_into(i)]
        if others:
            self.m.fork(c, others[k % len(others)])

    def consumer_alloc(self) -> None:
        self.m.consumer_alloc()

    def consumer_free(self) -> None:
        self.m.consumer_free()

    def teardown(self) -> None:
        """Quiesce: finish every operation, then C1 over every entry."""
        if not self.m.failed:
            self.m.drain()
            self.m.check_quiescent()


class NullDriver:
    """A driver that does nothing: measures Hypothesis's own cost per step (bench/steps.py)."""

    def __init__(self, machine=None) -> None:
        pass

    def has_idle(self) -> bool:
        return True

    def has_runnable(self) -> bool:
        return True

    def __getattr__(self, name):
        return _noop


def _noop(*args, **kwargs):
    return None


class _PartialSwarm(SearchStrategy):
    """Hypothesis's ``FeatureStrategy`` with every rule outside ``swarm`` forced on."""

    def __init__(self, always_on, names) -> None:
        super().__init__()
        self.always_on = tuple(sorted(always_on))
        self.names = names

    def do_draw(self, data):
        return FeatureFlags(data, enabled=self.always_on, at_least_one_of=self.names)


def _limit_swarm(machine) -> None:
    """Restrict swarm testing to ``SWARM_RULES`` (uses Hypothesis's RuleStrategy internals;
    if they change, the default full swarm is kept)."""
    rs = getattr(machine, "_rules_strategy", None)
    if rs is None or not hasattr(rs, "enabled_rules_strategy") or FeatureFlags is None:
        return
    names = frozenset(r.function.__name__ for r in rs.rules)
    rs.enabled_rules_strategy = st.shared(_PartialSwarm(names - machine.SWARM_RULES, names),
                                          key=("enabled rules", machine))


class ConformanceBase(RuleBasedStateMachine):
    """The rules; :func:`conformance_machine` binds a protocol, a config and a driver."""

    proto_cls = None
    cfg: MachineConfig = DEFAULT
    strict = False
    driver_cls = Driver
    stats: Stats = Stats()

    #: Rules Hypothesis's swarm testing may switch off for a whole example. Swarm
    #: testing disables each rule with a probability drawn per example, which starves
    #: races that need four or five rules together (reclaim + munmap + fill + advance),
    #: so only the rarely decisive rules take part in it.
    SWARM_RULES = frozenset({"background", "mmap", "file_write", "migrate", "mremap", "truncate"})

    def __init__(self) -> None:
        super().__init__()
        _limit_swarm(self)
        self.stats.examples += 1
        # a counted class: the teardown reports the example's coverage (conformance/coverage.py)
        self.machine = Machine(counted_class(self.proto_cls), self.cfg, self.strict) \
            if self.driver_cls is Driver else None
        self.d = self.driver_cls(self.machine)

    def teardown(self) -> None:
        """Quiesce and check C1; then add the example's coverage to ``stats.counts`` and
        report each hook and window it reached as a Hypothesis ``event`` (so
        ``pytest --hypothesis-show-statistics`` shows in what share of examples each was)."""
        try:
            self.d.teardown()
        finally:
            if self.machine is not None:
                counts = tally(self.machine, {})
                merge(self.stats.counts, counts)
                for e in events(counts):
                    event(e)

    # Rules are defined by conformance_machine, which knows the configuration.


class Rule:
    """One rule of the state machine, as data: its ``name`` (Hypothesis's rule name, also
    what swarm testing switches off), its ``guard`` (``"idle"``: a CPU is free to start an
    operation, ``"runnable"``: an operation can advance, ``None``: always), its ``fields``
    (a function of the config giving the radices of the one integer it draws, or ``None``
    for a plain pick ``i``), and what it does: the driver's method ``method`` called with
    ``args(cfg, *fields)`` (the fields themselves when ``args`` is None). ``doc`` is the
    rule's docstring.

    A rule is a driver call, as data, so that each value it can draw is decoded into its
    call once: the Hypothesis rule method looks it up in a table per code, and the raw walk
    (conformance/search/walk.py) holds the call itself (an ``operator.methodcaller``: no
    Python frame between the walk and the driver).
    """

    __slots__ = ("name", "guard", "fields", "method", "args", "doc")

    def __init__(self, name: str, guard, fields, method: str, args, doc: str) -> None:
        self.name, self.guard, self.fields = name, guard, fields
        self.method, self.args, self.doc = method, args, doc

    def call_args(self, cfg: MachineConfig, fields: tuple) -> tuple:
        """The driver method's arguments for the drawn ``fields`` (a pick: ``(i,)``)."""
        return fields if self.args is None else tuple(self.args(cfg, *fields))


#: page/folio counts a rule's count field decodes to: two pages or folios in two draws of
#: three (one of three until 2026-12-03: the 2021 race needs one munmap over two page tables
#: or reclaim of a second folio, docs/SEARCH.md "MADV_FREE on anonymous memory, two pages")
_COUNT = (1, 2, 2)


#: The rules. ``fields``: the radices of the integer a rule draws (see _rules); a "hot
#: pick" value (``nfiles`` for a file, ``2 * vpages`` ranges for a start) picks what is in
#: use (Driver). Order and names are Hypothesis's (its choices and database keys follow them).
RULES = (
    Rule("advance", "runnable", None, "advance", None,
         "Run one operation in flight to its next interleaving point."),
    Rule("preempt_advance", "runnable", None, "advance", None,
         "Same as advance: a second rule doubles the weight of scheduling kernel steps."),
    Rule("access", "idle", lambda c: (c.ncpus, c.vpages, 2), "access",
         lambda cfg, cpu, vp, w: (cpu, vp, bool(w)),
         "A user load or store (cpu, vpage, write)."),
    Rule("tlb_fill", None, lambda c: (c.ncpus, 8), "fill", None,
         "A speculative fill (cpu, k-th present PTE of its mm)."),
    Rule("background", None, lambda c: (6, c.ncpus, 8), "background", None,
         "Rarely decisive events, one rule so they dilute the schedule less "
         "(Driver.background: evict, switch, the other consumer's alloc and free, exit, fork)."),
    Rule("reclaim", "idle", lambda c: (c.ncpus, 8, 3, 3), "reclaim",
         lambda cfg, cpu, a, k, nested: (cpu, a, _COUNT[k], nested == 2),
         "Reclaim one or two folios (cpu, pick, count, nested: 2 -> one nested folio)."),
    # the count's second two-folio value is a user task's migration: direct compaction for
    # picks under 4 (2026-12-06), move_pages(2) with a nested direct reclaim from 4
    # (2026-12-07); no draw of its own, so every example draws what it drew before
    Rule("migrate", "idle", lambda c: (c.ncpus, 8, 3), "migrate",
         lambda cfg, cpu, a, k: (cpu, a, _COUNT[k], k == 2),
         "Migrate one or two folios (cpu, pick, count; 2: two, by a user task: direct "
         "compaction, or move_pages with a nested direct reclaim for picks from 4)."),
    Rule("munmap", "idle", lambda c: (c.ncpus, 2 * c.vpages, 3), "munmap",
         lambda cfg, cpu, start, k: (cpu, start, _COUNT[k]),
         "munmap (cpu, start or hot pick, pages)."),
    Rule("mmap", "idle", lambda c: (c.ncpus, c.vpages, 3, c.nfiles + 1, 2, 2), "mmap",
         lambda cfg, cpu, start, k, f, w, fixed:
             (cpu, start, _COUNT[k], None if f == 0 else f - 1, bool(w), bool(fixed)),
         "mmap (cpu, start, pages, anon or file, writable, MAP_FIXED)."),
    Rule("mprotect", "idle", lambda c: (c.ncpus, 2 * c.vpages, 3, 2), "mprotect",
         lambda cfg, cpu, start, k, w: (cpu, start, _COUNT[k], bool(w)),
         "mprotect (cpu, start or hot pick, pages, writable)."),
    Rule("file_write", "idle", lambda c: (c.ncpus, c.nfiles, c.file_pages), "write", None,
         "write() of a fresh value to one page of a file (cpu, file, pgoff)."),
    Rule("writeback", "idle", lambda c: (c.ncpus, c.nfiles + 1, c.file_pages), "writeback",
         None, "Writeback of one page-cache page with folio_mkclean (cpu, file or hot, pgoff)."),
    Rule("madvise", "idle", lambda c: (c.ncpus, 2 * c.vpages, 3, 4, c.nmms + 1), "madvise",
         lambda cfg, cpu, start, k, adv, mm: (cpu, start, _COUNT[k], MADV_ADVICE[adv], mm),
         "madvise (cpu, start or hot pick, pages, advice, calling task's mm)."),
    Rule("mremap", "idle", lambda c: (c.ncpus, 2 * c.vpages, 3, c.vpages), "mremap",
         lambda cfg, cpu, start, k, dest: (cpu, start, _COUNT[k], dest),
         "mremap (cpu, start or hot pick, pages, which free destination)."),
    Rule("truncate", "idle", lambda c: (c.ncpus, c.nfiles + 1, c.file_pages), "truncate",
         None, "Hole punch of one file page (cpu, file or hot, pgoff)."),
)


def _guard(method: str):
    """A rule guard: the driver's ``method`` (``has_runnable``, ``has_idle``) as a Hypothesis
    precondition. ``driver_method`` names it, so the raw walk calls the driver's bound
    method directly (one frame less per guard per step)."""
    def guard(self) -> bool:
        return getattr(self.d, method)()
    guard.__name__ = guard.__qualname__ = method
    guard.driver_method = method
    return guard


_GUARDS = {"runnable": precondition(_guard("has_runnable")),
           "idle": precondition(_guard("has_idle"))}


#: the most values one rule may draw in the Hypothesis state machine: each has a table
#: entry per value, built per config (under a second and 50 MB for this many). Its size is a
#: product of the machine's sizes: mremap's grows with ncpus * vpages**2, 4 * 10**8 values
#: at config.LIMITS, which took minutes and gigabytes (the budget ignored)
MAX_CODES = 1 << 18


def check_sizes(cfg: MachineConfig, most: int, engine: str, hint: str = "") -> None:
    """:class:`UsageError` if a rule of :data:`RULES` draws more than ``most`` values on a
    machine of ``cfg`` (rules in name order), checked before any table is built.

    Example::

        >>> check_sizes(MachineConfig(vpages=64), MAX_CODES, "the state machine")
        >>> check_sizes(MachineConfig(vpages=1024), MAX_CODES, "the state machine")
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: the machine is too large for the state machine: mremap.x draws from 18,874,368 values (at most 262,144); use fewer vpages, mms or CPUs
    """
    for r in sorted(RULES, key=lambda r: r.name):
        n = 1 if r.fields is None else math.prod(r.fields(cfg))
        if n > most:
            raise UsageError(f"the machine is too large for {engine}: {r.name}.x draws from "
                             f"{n:,} values (at most {most:,}); use fewer vpages, mms or "
                             f"CPUs{hint}")


def _rules(cfg: MachineConfig) -> dict:
    """The Hypothesis rule methods of :data:`RULES` for ``cfg`` (strategies depend on the
    machine's size; :class:`UsageError` for a machine whose tables would be too large,
    :data:`MAX_CODES`).

    Each rule draws *one* integer and decodes its fields (mixed radix, see
    :func:`strategies.decode`): Hypothesis's cost is per draw, so one draw per
    step instead of up to six gave about 20% more steps per second, and the integer
    still shrinks toward the simplest choice of every field. Each code's fields are
    decoded once per config (a table a step indexes).
    """
    check_sizes(cfg, MAX_CODES, "the state machine")
    out = {}
    for r in RULES:
        out[r.name] = _rule_method(r, cfg)
    return out


def _decode_table(radices: tuple) -> tuple:
    n = 1
    for r in radices:
        n *= r
    return tuple(S.decode(i, radices) for i in range(n))


def _rule_method(r: Rule, cfg: MachineConfig):
    """``r`` as a Hypothesis rule: a method drawing ``i`` (a pick) or ``x`` (a code), counting
    the step in ``stats.steps`` and calling the driver's ``r.method``. Its ``walk_call`` is
    ``(r.method, the per-code argument table, or None for a pick)``: the raw walk makes the
    same calls itself (conformance/search/walk.py, :class:`~conformance.search.walk.Rules`)
    and counts the steps itself."""
    method = r.method
    if r.fields is None:
        def step(self, i):
            self.stats.steps += 1
            getattr(self.d, method)(i)
        table = None
        strategy = {"i": S.picks()}
    else:
        radices = r.fields(cfg)
        # each code's driver arguments, decoded once per config
        table = tuple(r.call_args(cfg, f) for f in _decode_table(radices))

        def step(self, x):
            self.stats.steps += 1
            getattr(self.d, method)(*table[x])
        strategy = {"x": S.code(radices)}
    step.walk_call = (method, table)
    # the integer's fields, for the raw walk's swarm (walk.Rules): on this function, made
    # per config, never on the strategy, which Hypothesis shares between equal bounds
    step.walk_fields = None if r.fields is None else tuple(radices)
    step.__name__ = r.name
    step.__qualname__ = r.name
    step.__doc__ = r.doc
    step = rule(**strategy)(step)
    return _GUARDS[r.guard](step) if r.guard is not None else step


def conformance_machine(proto_cls, cfg: MachineConfig = DEFAULT, strict: bool = False,
                        driver_cls=Driver, stats: Stats | None = None):
    """A ``RuleBasedStateMachine`` subclass fuzzing ``proto_cls``.

    Class names differ per protocol (``Conformance_<name>``) so that Hypothesis's
    example database keys differ.
    """
    name = f"Conformance_{proto_cls.name}" + ("_strict" if strict else "")
    if driver_cls is not Driver:
        name += "_null"
    ns = dict(_rules(cfg))
    ns.update(proto_cls=proto_cls, cfg=cfg, strict=strict, driver_cls=driver_cls,
              stats=stats or Stats(), __module__=__name__)
    return type(name, (ConformanceBase,), ns)
