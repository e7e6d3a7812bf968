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

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

import strategies as S

from .config import DEFAULT, MachineConfig
from .machine import Machine


class Stats:
    """Counters shared by every run of a machine class (examples, steps)."""

    __slots__ = ("examples", "steps")

    def __init__(self) -> None:
        self.examples = 0
        self.steps = 0


class Driver:
    """Turns rule arguments into machine actions (idle CPU choice, frame choice)."""

    def __init__(self, machine: Machine) -> None:
        self.m = machine

    def _idle(self, cpu: int):
        idle = [c.id for c in self.m.tlbs.cpus if c.op is None]
        if not idle:
            return None
        return idle[cpu % len(idle)]

    def has_idle(self) -> bool:
        return any(c.op is None for c in self.m.tlbs.cpus)

    def has_runnable(self) -> bool:
        return any(op.runnable() for op in self.m.ops)

    def advance(self, i: int) -> None:
        run = self.m.runnable_ops()
        if run:
            self.m.advance(run[i % len(run)].id)

    def access(self, cpu: int, vpage: int, write: bool) -> None:
        c = self._idle(cpu)
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
        of the CPU's mm, one whose PTE reclaim or migration took away (collision bias:
        the 2017/2021 races are munmap/mprotect over such a page)."""
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
        if c is not None:
            self.m.switch_mm(c, mm)

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

    def reclaim(self, cpu: int, a: int, n: int) -> None:
        c = self._idle(cpu)
        frames = self._frames(a, n)
        if c is not None and frames:
            self.m.reclaim(c, frames)

    def migrate(self, cpu: int, a: int, n: int) -> None:
        c = self._idle(cpu)
        frames = self._frames(a, n)
        if c is not None and frames:
            self.m.migrate(c, frames)

    def munmap(self, cpu: int, start: int, n: int) -> None:
        c = self._idle(cpu)
        if c is not None:
            start = self._start(c, start)
            self.m.munmap(c, start, min(n, self.m.cfg.vpages - start))

    def mmap(self, cpu: int, start: int, n: int, file, writable: bool, fixed: bool) -> None:
        c = self._idle(cpu)
        if c is not None:
            self.m.mmap(c, start, min(n, self.m.cfg.vpages - start), file, writable, fixed)

    def mprotect(self, cpu: int, start: int, n: int, writable: bool) -> None:
        c = self._idle(cpu)
        if c is not None:
            start = self._start(c, start)
            self.m.mprotect(c, start, min(n, self.m.cfg.vpages - start), writable)

    def write(self, cpu: int, file: int, pgoff: int) -> None:
        c = self._idle(cpu)
        if c is not None:
            self.m.write(c, file, pgoff)

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


class ConformanceBase(RuleBasedStateMachine):
    """The rules; :func:`conformance_machine` binds a protocol, a config and a driver."""

    proto_cls = None
    cfg: MachineConfig = DEFAULT
    strict = False
    driver_cls = Driver
    stats: Stats = Stats()

    def __init__(self) -> None:
        super().__init__()
        self.stats.examples += 1
        self.machine = Machine(self.proto_cls, self.cfg, self.strict) if self.driver_cls is Driver else None
        self.d = self.driver_cls(self.machine)

    def teardown(self) -> None:
        self.d.teardown()

    # Rules are defined by conformance_machine, which knows the configuration.


def _rules(cfg: MachineConfig) -> dict:
    """The rule methods for ``cfg`` (strategies depend on the machine's size)."""
    cpu, vp, n, pick = S.cpus(cfg), S.vpages(cfg), S.page_counts(cfg), S.picks()

    def counted(fn):
        def step(self, **kw):
            self.stats.steps += 1
            fn(self, **kw)
        step.__name__ = fn.__name__
        step.__doc__ = fn.__doc__
        return step

    runnable = precondition(lambda self: self.d.has_runnable())
    idle = precondition(lambda self: self.d.has_idle())
    r = {}

    @runnable
    @rule(i=pick)
    @counted
    def advance(self, i):
        """Run one operation in flight to its next interleaving point."""
        self.d.advance(i)

    @runnable
    @rule(i=pick)
    @counted
    def preempt_advance(self, i):
        """Same as advance: a second rule doubles the weight of scheduling kernel steps."""
        self.d.advance(i)

    @idle
    @rule(cpu=cpu, vpage=vp)
    @counted
    def read(self, cpu, vpage):
        self.d.access(cpu, vpage, False)

    @idle
    @rule(cpu=cpu, vpage=vp)
    @counted
    def write(self, cpu, vpage):
        self.d.access(cpu, vpage, True)

    @rule(cpu=cpu, k=pick)
    @counted
    def tlb_fill(self, cpu, k):
        self.d.fill(cpu, k)

    @rule(cpu=cpu, k=pick)
    @counted
    def tlb_evict(self, cpu, k):
        self.d.evict(cpu, k)

    @idle
    @rule(cpu=cpu, mm=S.mms(cfg))
    @counted
    def context_switch(self, cpu, mm):
        self.d.switch(cpu, mm)

    @idle
    @rule(cpu=cpu, a=pick, k=S.folio_counts())
    @counted
    def reclaim(self, cpu, a, k):
        self.d.reclaim(cpu, a, k)

    @idle
    @rule(cpu=cpu, a=pick, k=S.folio_counts())
    @counted
    def migrate(self, cpu, a, k):
        self.d.migrate(cpu, a, k)

    @idle
    @rule(cpu=cpu, start=S.range_starts(cfg), k=n)
    @counted
    def munmap(self, cpu, start, k):
        self.d.munmap(cpu, start, k)

    @idle
    @rule(cpu=cpu, start=vp, k=n, file=S.mapping_kinds(cfg), writable=st.booleans(),
          fixed=st.booleans())
    @counted
    def mmap(self, cpu, start, k, file, writable, fixed):
        self.d.mmap(cpu, start, k, file, writable, fixed)

    @idle
    @rule(cpu=cpu, start=S.range_starts(cfg), k=n, writable=st.booleans())
    @counted
    def mprotect(self, cpu, start, k, writable):
        self.d.mprotect(cpu, start, k, writable)

    @idle
    @rule(cpu=cpu, file=S.files(cfg), pgoff=S.pgoffs(cfg))
    @counted
    def file_write(self, cpu, file, pgoff):
        self.d.write(cpu, file, pgoff)

    @rule()
    @counted
    def other_consumer_alloc(self):
        self.d.consumer_alloc()

    @rule()
    @counted
    def other_consumer_free(self):
        self.d.consumer_free()

    for f in (advance, preempt_advance, read, write, tlb_fill, tlb_evict, context_switch, reclaim,
              migrate, munmap, mmap, mprotect, file_write, other_consumer_alloc,
              other_consumer_free):
        r[f.__name__] = f
    return r


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
