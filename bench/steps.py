#!/usr/bin/env python
"""How fast is a step? The model's raw speed, and its share of a Hypothesis step.

Usage::

    python bench/steps.py                 # about 50 s (--seconds 3)
    python bench/steps.py --seconds 1     # quicker, noisier
    python bench/steps.py --clock cpu     # time by CPU time when other work shares the cores
    python bench/steps.py --profile       # also cProfile the raw linux walk (top 8 by tottime)

(a) RAW: a seeded ``random.Random`` walk (``conformance.search.walk``, the walk the
    soundness campaign runs) drives
    ``Driver(Machine(load_protocol(p)))`` with the state machine's action mix
    (advance twice, access, tlb_fill, background (evict / context switch / other
    consumer), reclaim, migrate, munmap, mmap, mprotect, file_write;
    preconditions has_runnable / has_idle as in the rules),
    80 actions per run, then ``Driver.teardown()``, then ``Machine.dispose()`` of a passed
    run (as the campaign's and certify's loops). A step is one action, as in
    ``Stats.steps``; the time includes building the Machine (boot + populate)
    and the teardown (drain + C1 over every entry). Rows: with the oracle; with
    the oracle's check methods replaced by no-ops on the instance (after boot);
    and the same walk over ``NullDriver`` (the walk's own cost: RNG, choice).
    Row "swarm": certify's search, ``conformance.search.walk.run_example(linux, seed=s,
    swarm=True)`` for s = 0, 1, ... (each example draws its own rule mix and
    length first), steps per second, Machine and teardown included.

(b) HYPOTHESIS: ``get_state_machine_test(conformance_machine(p, driver_cls=...),
    settings=fuzz_settings(N, 100, shrink=False))`` under one fixed
    ``hypothesis.seed``, once with ``NullDriver`` (the same rules over an empty
    machine: Hypothesis's own per-step cost) and once with the real ``Driver``.
    µs/step = time / ``Stats.steps``. The model+oracle share is
    (real - empty) / empty; as a cross-check the script also times the Driver
    methods and Machine() inside one real run (the "direct" share), because the
    empty and real runs draw different data and Hypothesis's own cost differs
    between them by more than the model costs.

Every measurement is repeated in interleaved rounds of identical work (same
seeds) and the fastest round is kept (--repeats, default 3).

Targets (the issue): raw >= 100,000 steps/s on one core; model+oracle <= 25%
of Hypothesis's own per-step cost. Each is printed as PASS or MISS. This is a
measurement, not a test: nothing here asserts on time.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import platform
import pstats
import os
import random
import subprocess
import sys
import time
from contextlib import nullcontext

# runnable from a checkout without installing the package (as bench/corpus.py)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hypothesis import seed as hseed  # noqa: E402
from hypothesis.stateful import get_state_machine_test  # noqa: E402

from conformance.certify import fuzz_settings  # noqa: E402
from conformance.config import DEFAULT  # noqa: E402
from conformance.errors import Failure  # noqa: E402
from conformance.gcpolicy import search_gc  # noqa: E402
from conformance.machine import Machine  # noqa: E402
from conformance.oracle import Oracle  # noqa: E402
from conformance.registry import load_protocol  # noqa: E402
from conformance.search.statemachine import Driver, NullDriver, Stats, conformance_machine  # noqa: E402
from conformance.search.walk import ACTIONS_PER_EXAMPLE, Rules, Shim, run_example, walk  # noqa: E402

RAW_TARGET = 100_000  # steps/s, one core
SHARE_TARGET = 0.25  # model+oracle cost / Hypothesis's own per-step cost
ACTIONS_PER_RUN = ACTIONS_PER_EXAMPLE  # 80, as the soundness campaign
HYP_STEPS = 100  # stateful_step_count, as certify
RAW_SEED = 20261125
HYP_SEED = 1125

#: the clock every run is timed with; --clock cpu makes it the process's CPU time
CLOCK = time.perf_counter

#: the oracle methods disabled for the "oracle off" row
ORACLE_CHECKS = tuple(sorted(n for n in vars(Oracle) if n.startswith("check_"))) + ("op_returned",)


# -- (a) the raw walk -------------------------------------------------------------------------
#: the rules the walk expects to find (a changed rule set is reported, not silently measured)
RULES = ("advance", "preempt_advance", "access", "tlb_fill", "background", "reclaim",
         "migrate", "munmap", "mmap", "mprotect", "file_write", "writeback", "madvise", "mremap",
         "truncate")


def _disable_oracle(oracle) -> None:
    for name in ORACLE_CHECKS:
        setattr(oracle, name, _noop)


def _noop(*args, **kwargs):
    return None


def raw_walk(proto_cls=None, seconds: float = 1.0, seed: int = RAW_SEED, oracle: bool = True,
             driver_cls=Driver, max_runs: int | None = None) -> dict:
    """Random walks of ACTIONS_PER_RUN actions (+ teardown) for ``seconds``; counts and time."""
    rules = Rules(proto_cls or load_protocol("immediate"))
    rng = random.Random(seed)
    rand = rng.random
    stats = Stats()
    runs = failures = 0
    clock = CLOCK
    t0 = clock()
    deadline = t0 + seconds
    while clock() < deadline and (max_runs is None or runs < max_runs):
        m = Machine(proto_cls) if driver_cls is Driver else None
        if m is not None and not oracle:
            _disable_oracle(m.oracle)
        d = driver_cls(m)
        try:
            walk(rules, Shim(d, stats), rand, ACTIONS_PER_RUN)
            d.teardown()
        except Failure:
            failures += 1
        else:
            if m is not None:
                m.dispose()  # as the campaign's and certify's loops drop a passed example
        runs += 1
    steps = stats.steps
    dt = clock() - t0
    return dict(steps=steps, runs=runs, failures=failures, seconds=dt, rate=steps / dt)


def swarm_walk(proto_cls, seconds: float = 1.0, max_runs: int | None = None) -> dict:
    """certify's search: ``run_example(proto_cls, seed=s, swarm=True)`` for s = 0, 1, ...
    (each example draws its rule mix and a length of 20-200 actions, then Machine, walk,
    teardown) for ``seconds``; counts and time, as :func:`raw_walk`."""
    steps = runs = failures = 0
    clock = CLOCK
    t0 = clock()
    deadline = t0 + seconds
    while clock() < deadline and (max_runs is None or runs < max_runs):
        ex = run_example(proto_cls, seed=runs, swarm=True)
        steps += ex.steps
        failures += ex.failure is not None
        if ex.failure is None:
            ex.machine.dispose()  # as certify's chunk loop
        runs += 1
    dt = clock() - t0
    return dict(steps=steps, runs=runs, failures=failures, seconds=dt, rate=steps / dt)


def raw_best(configs, seconds: float, repeats: int) -> dict:
    """Best rate per configuration over ``repeats`` interleaved rounds of identical work.

    ``configs`` is a list of (key, raw_walk kwargs; ``fn=swarm_walk`` runs
    :func:`swarm_walk` instead; ``default_gc=True`` runs it under CPython's default
    collection thresholds instead of :func:`conformance.gcpolicy.search_gc`). The first
    round of a configuration runs for ``seconds / repeats`` and fixes its number of runs;
    later rounds replay
    exactly those runs (same seeds), so the rounds differ only by how much the
    machine disturbed them and the fastest is kept.
    """
    budget = seconds / repeats
    nruns, best = {}, {}
    for _ in range(repeats):
        for key, kw in configs:
            kw = dict(kw)
            fn = kw.pop("fn", raw_walk)
            # the campaigns' collection policy (conformance/gcpolicy.py), unless the row
            # measures CPython's default one
            policy = nullcontext() if kw.pop("default_gc", False) else search_gc()
            with policy:
                if key in nruns:
                    r = fn(seconds=float("inf"), max_runs=nruns[key], **kw)
                else:
                    r = fn(seconds=budget, **kw)
                    nruns[key] = r["runs"]
            if key not in best or r["rate"] > best[key]["rate"]:
                best[key] = r
    return best


# -- (b) Hypothesis: empty machine versus real machine ---------------------------------------
def hyp_run(proto_cls, driver_cls, examples: int, seed: int = HYP_SEED) -> dict:
    stats = Stats()
    cls = conformance_machine(proto_cls, driver_cls=driver_cls, stats=stats)
    test = hseed(seed)(get_state_machine_test(cls, settings=fuzz_settings(examples, HYP_STEPS,
                                                                           shrink=False)))
    t0 = CLOCK()
    test()
    dt = CLOCK() - t0
    return dict(steps=stats.steps, examples=stats.examples, seconds=dt,
                us=dt / max(stats.steps, 1) * 1e6)


DRIVER_METHODS = ("has_idle", "has_runnable", "advance", "access", "fill", "evict", "switch",
                  "reclaim", "migrate", "munmap", "mmap", "mprotect", "write", "consumer_alloc",
                  "consumer_free", "teardown")


def hyp_run_timed(proto_cls, examples: int, seed: int = HYP_SEED) -> dict:
    """The real run of :func:`hyp_run`, timing what runs inside the model.

    Every Driver method (preconditions included) and every ``Machine(...)`` built
    by the state machine is wrapped in a timer for this one run (the module
    global ``conformance.search.statemachine.Machine`` is swapped and restored). The
    choices are the same as :func:`hyp_run` with the same seed. Each timer costs
    about 0.2 µs per wrapped call (4-5 calls per step), counted as model time.
    """
    import conformance.search.statemachine as sm

    clock = time.perf_counter
    acc = [0.0, 0]  # seconds inside the model, wrapped calls

    def timed(fn):
        def w(*a, **k):
            t = clock()
            try:
                return fn(*a, **k)
            finally:
                acc[0] += clock() - t
                acc[1] += 1
        return w

    real_machine = sm.Machine

    def machine(*a, **k):
        t = clock()
        try:
            return real_machine(*a, **k)
        finally:
            acc[0] += clock() - t

    stats = Stats()
    base = conformance_machine(proto_cls, stats=stats)

    def __init__(self):
        base.__init__(self)
        d = self.d
        for name in DRIVER_METHODS:
            setattr(d, name, timed(getattr(d, name)))

    cls = type(base.__name__, (base,), {"__init__": __init__, "__module__": base.__module__})
    test = hseed(seed)(get_state_machine_test(cls, settings=fuzz_settings(examples, HYP_STEPS,
                                                                           shrink=False)))
    sm.Machine = machine
    try:
        t0 = CLOCK()
        test()
        dt = CLOCK() - t0
    finally:
        sm.Machine = real_machine
    n = max(stats.steps, 1)
    return dict(steps=stats.steps, examples=stats.examples, seconds=dt, us=dt / n * 1e6,
                model_us=acc[0] / n * 1e6, hyp_us=(dt - acc[0]) / n * 1e6, calls=acc[1] / n)


def hyp_best(proto_cls, examples: int, repeats: int) -> tuple[dict, dict, dict]:
    """Empty, real and instrumented real, interleaved ``repeats`` times; the fastest of each.

    Each kind repeats identical work (same seed, same settings), so the fastest
    run is the one the rest of the machine disturbed least.
    """
    hyp_run(proto_cls, NullDriver, 3)  # warm up (strategy compilation, imports)
    hyp_run(proto_cls, Driver, 3)
    empties, reals, timed = [], [], []
    for _ in range(repeats):
        empties.append(hyp_run(proto_cls, NullDriver, examples))
        reals.append(hyp_run(proto_cls, Driver, examples))
        timed.append(hyp_run_timed(proto_cls, examples))
    return tuple(min(runs, key=lambda r: r["us"]) for runs in (empties, reals, timed))


def profile_raw(proto: str, seconds: float, top: int = 8) -> str:
    prof = cProfile.Profile()
    prof.enable()
    r = raw_walk(load_protocol(proto), seconds)
    prof.disable()
    out = io.StringIO()
    st = pstats.Stats(prof, stream=out).strip_dirs()
    st.sort_stats("tottime").print_stats(top)
    total = sum(v[2] for v in st.stats.values())  # tottime over every function
    return (f"cProfile, raw walk, {proto}: {r['steps']} steps in {r['runs']} runs, "
            f"profiled total {total:.2f} s\n" + out.getvalue())


# -- report -----------------------------------------------------------------------------------
def tree_version() -> str:
    """``git describe --always --dirty`` of the checkout measured, or '?' outside git."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, timeout=10,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="seconds per raw row, over all repeats (default 3; the whole run takes "
                         "about 17x this)")
    ap.add_argument("--examples", type=int, default=None,
                    help="Hypothesis examples per run (default 80, scaled with --seconds)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="interleaved rounds of identical work; the fastest is kept (default 3)")
    ap.add_argument("--profile", action="store_true",
                    help="also print a cProfile of the raw linux walk (top 8 by tottime)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="time runs by wall clock (default) or by this process's CPU time, which "
                         "other load on the machine disturbs less; timers inside the model stay "
                         "on the wall clock")
    a = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.perf_counter if a.clock == "wall" else time.process_time
    secs = a.seconds
    examples = a.examples or max(5, int(80 * secs / 3))

    print(f"flushcheck bench/steps.py  python {platform.python_version()}  "
          f"{platform.machine()}  {platform.system()}  {os.cpu_count()} cores  "
          f"date {time.strftime('%Y-%m-%d')}  tree {tree_version()}")
    print(f"config: {DEFAULT.describe()}")
    print(f"raw: seed {RAW_SEED}, {ACTIONS_PER_RUN} actions/run + teardown, {secs:g} s per row; "
          f"hypothesis: seed {HYP_SEED}, {examples} examples x <= {HYP_STEPS} steps; "
          f"best of {a.repeats}; clock: {a.clock}\n")

    names = Rules(load_protocol("linux")).names
    if sorted(names) == sorted(RULES):
        print(f"rules: the state machine's {len(names)} rules, preconditions and argument "
              "ranges, taken from conformance_machine()\n")
    else:
        print(f"WARNING: the rule set changed (missing {sorted(set(RULES) - set(names))}, new "
              f"{sorted(set(names) - set(RULES))}); the walk uses the rules as they are now\n")

    # (a) raw
    t_start = time.perf_counter()
    configs = [("walk", dict(driver_cls=NullDriver))]
    for proto in ("immediate", "linux"):
        cls = load_protocol(proto)
        configs += [((proto, True), dict(proto_cls=cls)),
                    ((proto, False), dict(proto_cls=cls, oracle=False))]
    configs.append(("swarm", dict(proto_cls=load_protocol("linux"), fn=swarm_walk)))
    configs.append(("default-gc", dict(proto_cls=load_protocol("linux"), default_gc=True)))
    best = raw_best(configs, secs, a.repeats)
    harness = best["walk"]
    rows = [(proto, best[proto, True], best[proto, False]) for proto in ("immediate", "linux")]
    print("(a) raw model steps/s (one core, no Hypothesis)")
    walk_us = 1e6 / harness["rate"]
    print(f"{'protocol':<10} {'oracle on':>10} {'µs/step':>8} {'oracle off':>10} {'µs/step':>8} "
          f"{'oracle':>7} {'less walk':>10} {'runs':>5} {'fail':>4}")
    for proto, on, off in rows:
        share = 1 - on["rate"] / off["rate"]
        alone = 1e6 / (1e6 / on["rate"] - walk_us)
        print(f"{proto:<10} {on['rate']:>10,.0f} {1e6 / on['rate']:>8.2f} {off['rate']:>10,.0f} "
              f"{1e6 / off['rate']:>8.2f} {share:>7.0%} {alone:>10,.0f} "
              f"{on['runs']:>5} {on['failures']:>4}")
    print(f"{'(walk)':<10} {harness['rate']:>10,.0f} {walk_us:>8.2f}  the same walk over "
          "NullDriver: rule choice, arguments,\n"
          f"{'':<30}preconditions and rule wrappers (included in the rows above)")
    sw = best["swarm"]
    print(f"{'swarm':<10} {sw['rate']:>10,.0f} {1e6 / sw['rate']:>8.2f}  linux, certify's search: "
          f"run_example(seed=s, swarm=True), s = 0..{sw['runs'] - 1}\n"
          f"{'':<30}(per-example rule mix, 20-200 actions; {sw['failures']} failures)")
    dg = best["default-gc"]
    print(f"{'default gc':<10} {dg['rate']:>10,.0f} {1e6 / dg['rate']:>8.2f}  linux, oracle on, "
          f"under CPython's default collection thresholds\n"
          f"{'':<30}(every other row: conformance.gcpolicy.search_gc, as the campaigns; "
          f"{rows[-1][1]['rate'] / dg['rate']:.2f}x)")
    print("  oracle = share of the step in the oracle (1 - on/off); less walk = oracle-on steps/s\n"
          "  with the (walk) µs/step taken off: roughly the model alone")
    linux_on = rows[-1][1]["rate"]
    print(f"target raw >= {RAW_TARGET:,} steps/s (linux, oracle on): {linux_on:,.0f} -> "
          f"{verdict(linux_on >= RAW_TARGET)} ({linux_on / RAW_TARGET:.2f}x the target)\n")
    if a.profile:  # here, before Hypothesis has grown the heap (GC pauses would show up)
        print(profile_raw("linux", secs))

    # (b) Hypothesis
    print("(b) Hypothesis step: same rules over an empty machine (NullDriver) vs the real one, "
          "µs per step")
    print(f"{'protocol':<10} {'empty':>7} {'steps':>6} {'real':>7} {'steps':>6} {'real-empty':>11} "
          f"{'share':>6} | {'in model':>8} {'hyp own':>8} {'share':>6}")
    shares, direct = {}, {}
    for proto in ("immediate", "linux"):
        cls = load_protocol(proto)
        empty, real, timed = hyp_best(cls, examples, a.repeats)
        extra = real["us"] - empty["us"]
        shares[proto] = extra / empty["us"]
        direct[proto] = timed["model_us"] / timed["hyp_us"]
        print(f"{proto:<10} {empty['us']:>7.1f} {empty['steps']:>6} {real['us']:>7.1f} "
              f"{real['steps']:>6} {extra:>11.1f} {shares[proto]:>6.0%} | "
              f"{timed['model_us']:>8.1f} {timed['hyp_us']:>8.1f} {direct[proto]:>6.0%}")
    print("  share (left) = (real - empty) / empty, the issue's measure; the two runs draw\n"
          "  different data (preconditions differ), so Hypothesis's own cost differs between\n"
          "  them by more than the model costs. share (right) = time inside Driver methods and\n"
          "  Machine() over the rest of one real run (same seed): the model's cost directly.")
    raw_us = 1e6 / linux_on
    print(f"raw linux step (a) = {raw_us:.1f} µs = {raw_us / empty['us']:.1%} of Hypothesis's "
          f"empty step; a Hypothesis step costs {real['us'] / raw_us:.0f}x a raw one")
    share, dshare = shares["linux"], direct["linux"]
    print(f"target model+oracle <= {SHARE_TARGET:.0%} of Hypothesis's own per-step cost (linux): "
          f"(real-empty)/empty {share:.0%} -> {verdict(share <= SHARE_TARGET)}; "
          f"direct {dshare:.0%} -> {verdict(dshare <= SHARE_TARGET)}")
    print(f"\ntotal {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
