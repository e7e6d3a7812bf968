"""Certify a protocol: fuzz it for a time budget and return a verdict.

Runs the protocol's conformance state machine in chunks of examples, each
chunk under its own seed derived from the run's seed, until the budget is
spent or a failure is found. A failure is shrunk by Hypothesis; its reproducer
is saved and its timeline printed.

Example::

    >>> r = certify("linux", budget_s=2, seed=1)   # doctest: +SKIP
    >>> r.passed, r.examples > 0
    (True, True)
"""
from __future__ import annotations

import time

import attrs
from hypothesis import HealthCheck, Phase, seed as hseed, settings
from hypothesis.reporting import with_reporter
from hypothesis.stateful import get_state_machine_test

from .config import DEFAULT, MachineConfig
from .errors import Failure
from .registry import load_protocol
from .statemachine import Stats, conformance_machine

RULES = ("S1", "S2", "S3", "C1", "O1")


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
    failure: Failure | None = None
    hypothesis_program: str = ""
    strict: bool = False
    config: MachineConfig = DEFAULT

    @property
    def passed(self) -> bool:
        return self.failure is None

    @property
    def shrunk_length(self) -> int | None:
        return None if self.failure is None else len(self.failure.machine.actions)


def _first_failure(exc: BaseException):
    """The failure to report from what Hypothesis raised (it may group several)."""
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        found = [f for f in (_first_failure(e) for e in exc.exceptions) if f is not None]
        if found:
            return min(found, key=lambda f: len(f.machine.actions) if f.machine else 0)
    return None


def fuzz_settings(examples: int, steps: int, shrink: bool = True) -> settings:
    """The Hypothesis settings certify uses (no database: a run is its seed)."""
    phases = [Phase.generate, Phase.target] + ([Phase.shrink] if shrink else [])
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                    database=None, derandomize=False, phases=phases, report_multiple_bugs=False,
                    suppress_health_check=list(HealthCheck), print_blob=False)


def certify(name_or_cls, budget_s: float = 60.0, seed: int = 0, strict: bool = False,
            cfg: MachineConfig = DEFAULT, chunk: int = 50, steps: int = 100,
            max_examples: int | None = None) -> Result:
    """Fuzz one protocol for ``budget_s`` seconds (or ``max_examples`` examples)."""
    cls = load_protocol(name_or_cls) if isinstance(name_or_cls, str) else name_or_cls
    stats = Stats()
    res = Result(protocol=cls.name, seed=seed, budget_s=budget_s, strict=strict, config=cfg)
    machine_cls = conformance_machine(cls, cfg, strict, stats=stats)
    t0 = time.monotonic()
    first = {}
    orig_fail_hook = machine_cls.__init__

    def init(self):
        orig_fail_hook(self)
        if "t" not in first:
            m = self.machine
            prev = m.oracle._fail

            def _fail(*a, _prev=prev, **kw):
                first.setdefault("t", time.monotonic() - t0)
                return _prev(*a, **kw)
            m.oracle._fail = _fail
    machine_cls.__init__ = init
    i = 0
    program: list[str] = []
    while True:
        if time.monotonic() - t0 >= budget_s:
            break
        if max_examples is not None and stats.examples >= max_examples:
            break
        test = get_state_machine_test(machine_cls, settings=fuzz_settings(chunk, steps))
        test = hseed(seed * 100_003 + i)(test)
        i += 1
        try:
            with with_reporter(program.append):
                test()
        except BaseException as exc:  # noqa: BLE001 - Hypothesis may wrap failures in groups
            f = _first_failure(exc)
            if f is None:
                raise
            res.failure = f
            break
    res.examples = stats.examples
    res.steps = stats.steps
    res.elapsed_s = time.monotonic() - t0
    res.first_failure_s = first.get("t")
    res.hypothesis_program = "\n".join(program)
    return res
