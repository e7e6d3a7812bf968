"""The bounded check's figures (docs/BOUNDED.md): speed and memory, the reach of the
correct protocols, the smallest K of every corpus mutant and LUF variant.

    python bench/bounded.py speed                 # states/s, bytes/state: fast vs plain
    python bench/bounded.py speed --against da4ab67   # and the search as it was at a commit
    python bench/bounded.py reach --cap 600       # linux, immediate: largest K in the cap
    python bench/bounded.py mutants --kmax 3 --cap 120 --check
    python bench/bounded.py reach --protocol linux --cpus 2 --boot empty --cap 60

Times are CPU seconds of this process (``time.process_time``), so a loaded machine slows
the figures less than wall time would; states/s is distinct states per CPU second. ``speed``
runs each search in a fresh forked process (one search's garbage does not slow the next).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import attrs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from conformance.boundcli import BOUND_CONFIG  # noqa: E402
from conformance.search.bounded import bounded  # noqa: E402
from conformance.search.menu import MENUS  # noqa: E402
from conformance.registry import load_protocol, protocol_names  # noqa: E402
from conformance.pytest_plugin import expected_violation  # noqa: E402


def _cfg(cpus: int, boot: str):
    return attrs.evolve(BOUND_CONFIG, ncpus=cpus, populate=boot == "populated")


def _run(name, cfg, k, menu, **kw):
    t = time.process_time()
    res = bounded(load_protocol(name), cfg, k, menu=menu, clock=time.process_time, **kw)
    return res, time.process_time() - t


#: speed's modes: keyword arguments of ``bounded``; "plain" is the unreduced search (every
#: transition on a re-execution, every key whole, terminal states expanded, every eviction
#: a transition), "eager" the fast search with every eviction a transition (the search
#: before the lazy evictions), "fast" the search as it is
MODES = {"plain": {"undo": False, "reduce": False, "lazy_evict": False},
         "eager": {"lazy_evict": False}, "fast": {}}


def _against(rev: str):
    """``bounded`` as it was at commit ``rev``: its bounded.py, statekey.py and
    fingerprint.py loaded from git as modules of their own (the model is today's)."""
    import subprocess
    import types

    names = ("fingerprint", "statekey", "bounded")
    tag = "_at_" + rev
    import conformance.search  # noqa: F401 - the package the modules load into
    for n in names:
        # conformance/search/ since issue 12; conformance/ before
        for pkg in ("conformance.search", "conformance"):
            path = pkg.replace(".", "/") + f"/{n}.py"
            got = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True,
                                 text=True, cwd=ROOT)
            if got.returncode == 0:
                src = got.stdout
                break
        else:
            raise SystemExit(f"bench/bounded.py: no {n}.py at {rev}")
        for o in names:
            src = src.replace(f"from .{o} import", f"from .{tag}_{o} import")
            src = src.replace(f"from . import {o} as", f"from . import {tag}_{o} as")
        mod = types.ModuleType(f"{pkg}.{tag}_{n}")
        mod.__package__ = pkg
        sys.modules[mod.__name__] = mod
        exec(compile(src, f"{rev}:{path}", "exec"), mod.__dict__)  # noqa: S102
        _adapt(mod, src)
        setattr(sys.modules[pkg], f"{tag}_{n}", mod)
    return sys.modules[f"{pkg}.{tag}_bounded"].bounded


def _adapt(mod, src: str) -> None:
    """Today's model under an old module where the model's API changed since: until
    74d7bb4 ``hookpoints.paused_frames`` gave ``(name, lasti, locals)`` triples, since then
    the frames."""
    if "for name, lasti, local in paused_frames(" in src:
        from conformance import hookpoints

        mod.paused_frames = lambda g: [(f.f_code.co_name, f.f_lasti, f.f_locals)
                                       for f in hookpoints.paused_frames(g)]


def _isolated(fn, *a):
    """``fn(*a)`` in a forked process; its result (one search's garbage stays there)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        return pool.apply(fn, a)


def _rss(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` (the peak) of this process, in bytes (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _speed_one(name, boot, k, mode, cap, max_states, memory, rev=None):
    search = _against(rev) if rev else bounded
    kw = dict(MODES.get(mode, {}))
    cls = load_protocol(name)
    if memory:  # the peak resident size from here on (tracemalloc would triple the time)
        import gc

        gc.collect()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident size
        base = _rss("VmRSS")
    t = time.process_time()
    res = search(cls, _cfg(2, boot), k, menu=MENUS["small"],
                 clock=time.process_time, budget_s=cap, max_states=max_states,
                 start_k=k if max_states else 1, **kw)
    cpu = time.process_time() - t
    peak = _rss("VmHWM") - base if memory else 0
    states = sum(lv.states for lv in res.levels)
    trans = sum(lv.transitions for lv in res.levels)
    return states, trans, cpu, peak, res.levels[-1].complete, res.levels[-1].peak_frontier


def memory(args) -> None:
    """The memory rows of :func:`speed` alone."""
    _memory_rows(args, ["plain", "eager", "fast"] + ([args.against] if args.against else []))


def _memory_rows(args, modes) -> None:
    print("\n| memory: linux populated K=2 | mode | states | peak frontier | peak RSS growth MiB "
          "| bytes/state |")
    print("|---|---|---:|---:|---:|---:|")
    for mode in modes:
        rev = mode if mode not in MODES else None
        states, _t, _cpu, peak, _c, front = _isolated(_speed_one, "linux", "populated", 2,
                                                      mode, None, args.states, True, rev)
        print(f"| first {args.states:,} states | {mode} | {states:,} | {front:,} | "
              f"{peak / 2**20:.1f} | {peak / max(states, 1):,.0f} |", flush=True)


def speed(args) -> None:
    """The same searches, each in a fresh process: the unreduced search ("plain"), the
    fast one, and with ``--against REV`` the search as it was at that commit ("REV");
    then bytes per state: the growth of the peak resident size over a search stopped at
    ``--states`` states, divided by them (``/proc/self/status`` VmHWM after resetting it;
    tracemalloc would triple the search's time)."""
    modes = ["plain", "eager", "fast"] + ([args.against] if args.against else [])
    print("| search | mode | states | transitions | CPU s | states/s |")
    print("|---|---|---:|---:|---:|---:|")
    # the last row: a whole bound proved, the time a user waits for (every mode the same
    # verdict; the states differ by what each reduction removes)
    cases = [("linux", "populated", 1, None), ("linux", "empty", 2, None),
             ("linux_4_3", "populated", 2, None), ("linux", "populated", 2, args.states),
             ("linux", "populated", 2, None)]
    for name, boot, k, ms in cases:
        for mode in modes:
            rev = mode if mode not in MODES else None
            states, trans, cpu, _p, _c, _f = _isolated(_speed_one, name, boot, k, mode,
                                                       args.cap, ms, False, rev)
            what = f"K<={k}" if ms is None else f"K={k}, first {ms:,} states"
            print(f"| {name} {boot} {what} | {mode} | {states:,} | {trans:,} | {cpu:.2f} | "
                  f"{states / cpu:,.0f} |", flush=True)
    _memory_rows(args, modes)


def reach(args) -> None:
    """For each protocol, boot and CPU count: the largest K searched completely in the cap."""
    print(f"| protocol | boot | CPUs | largest K complete | its states | CPU s | "
          f"at K+1 (stopped at the {args.cap:g} s cap) |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name in args.protocol or ("linux", "immediate"):
        for boot in args.boot or ("populated", "empty"):
            for cpus in args.cpus or (2, 3):
                res, cpu = _run(name, _cfg(cpus, boot), 50, MENUS[args.menu],
                                budget_s=args.cap)
                done = [lv for lv in res.levels if lv.complete]
                last = res.levels[-1]
                k = done[-1].k if done else 0
                part = (f"{last.states:,} states, depth {last.depth}" if not last.complete
                        else "-")
                verdict = "" if res.failure is None else f" **{res.failure.rule} at K={res.fail_k}**"
                print(f"| {name} | {boot} | {cpus} | {k}{verdict} | "
                      f"{done[-1].states if done else 0:,} | {cpu:.0f} | {part} |", flush=True)


def mutants(args) -> None:
    """Every protocol that is not meant to be correct: the smallest K that fails."""
    # every module that declares the rule it breaks (EXPECTED_VIOLATION): the corpus's
    # kernel bugs, the LUF variants and the mutants (hist_, linux_4_, luf_ only until
    # 2026-12-07, when the mut_ rows and linux_gen_reset_zero joined the table)
    names = args.protocol or [n for n in protocol_names() if expected_violation(n)]
    print(f"| protocol | smallest K | rule | shortest (transitions) | states at that K | "
          f"CPU s |{' plain agrees |' if args.check else ''}")
    print(f"|---|---:|---|---:|---:|---:|{'---|' if args.check else ''}")
    for name in names:
        res, cpu = _run(name, _cfg(2, args.boot), args.kmax, MENUS[args.menu],
                        budget_s=args.cap)
        if res.failure is not None:
            row = (f"| {name} | {res.fail_k} | {res.failure.rule} | {len(res.path)} | "
                   f"{res.levels[-1].states:,} | {cpu:.1f} |")
        else:
            how = (f"not within {res.complete_k}" if res.stopped is None or res.complete_k
                   else "not within 0")
            if res.stopped:
                how += f" (K={res.levels[-1].k} partial at the cap)"
            row = f"| {name} | {how} | - | - | {res.levels[-1].states:,} | {cpu:.1f} |"
        if args.check:  # the unreduced search must fail at that K, as short, the same rule
            if res.failure is not None:
                plain, _ = _run(name, _cfg(2, args.boot), res.fail_k, MENUS[args.menu],
                                undo=False, reduce=False, lazy_evict=False,
                                start_k=res.fail_k)
                agree = (plain.failure is not None and len(plain.path) == len(res.path)
                         and plain.failure.rule == res.failure.rule)
                row += f" {'yes' if agree else 'NO'} |"
            else:
                row += " - |"
        print(row, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("speed", "memory", "reach", "mutants"))
    ap.add_argument("--cap", type=float, default=600.0, help="CPU seconds per search")
    ap.add_argument("--kmax", type=int, default=3, help="mutants: the largest K tried")
    ap.add_argument("--menu", default="full", choices=tuple(MENUS))
    ap.add_argument("--boot", action="append", default=None, choices=("populated", "empty"))
    ap.add_argument("--cpus", action="append", type=int, default=None)
    ap.add_argument("--protocol", action="append", default=None)
    ap.add_argument("--against", default=None, metavar="REV",
                    help="speed: also the search as it was at commit REV")
    ap.add_argument("--states", type=int, default=20000,
                    help="speed: the K=2 row and the memory row stop at this many states")
    ap.add_argument("--check", action="store_true",
                    help="mutants: re-run each failing K unreduced; compare its length and rule")
    args = ap.parse_args()
    if args.what == "mutants" and args.boot:
        args.boot = args.boot[0]
    elif args.what == "mutants":
        args.boot = "populated"
    {"speed": speed, "memory": memory, "reach": reach, "mutants": mutants}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
