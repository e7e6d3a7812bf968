"""The bounded check's figures (docs/BOUNDED.md): speed and memory, the reach of the
correct protocols, the smallest K of every corpus mutant and LUF variant.

    python bench/bounded.py speed                 # states/s, bytes/state: fast vs plain
    python bench/bounded.py reach --cap 600       # linux, immediate: largest K in the cap
    python bench/bounded.py mutants --kmax 3 --cap 120 --check
    python bench/bounded.py reach --protocol linux --cpus 2 --boot empty --cap 60

Times are CPU seconds of this process (``time.process_time``), so a loaded machine slows
the figures less than wall time would; states/s is distinct states per CPU second.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc

import attrs

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conformance.boundcli import BOUND_CONFIG  # noqa: E402
from conformance.search.bounded import bounded  # noqa: E402
from conformance.search.menu import MENUS  # noqa: E402
from conformance.registry import load_protocol, protocol_names  # noqa: E402


def _cfg(cpus: int, boot: str):
    return attrs.evolve(BOUND_CONFIG, ncpus=cpus, populate=boot == "populated")


def _run(name, cfg, k, menu, **kw):
    t = time.process_time()
    res = bounded(load_protocol(name), cfg, k, menu=menu, clock=time.process_time, **kw)
    return res, time.process_time() - t


def speed(args) -> None:
    """The same searches with and without the fast path (undo of hardware events, partial
    keys), in one run; then bytes per state under tracemalloc."""
    print("| search | mode | states | transitions | CPU s | states/s |")
    print("|---|---|---:|---:|---:|---:|")
    cases = [("linux", "populated", 1), ("linux", "empty", 2), ("linux_4_3", "populated", 2)]
    for name, boot, k in cases:
        for undo in (False, True):
            res, cpu = _run(name, _cfg(2, boot), k, MENUS["small"], undo=undo,
                            budget_s=args.cap)
            states = sum(lv.states for lv in res.levels)
            trans = sum(lv.transitions for lv in res.levels)
            print(f"| {name} {boot} K<={k} | {'fast' if undo else 'plain'} | {states:,} | "
                  f"{trans:,} | {cpu:.2f} | {states / cpu:,.0f} |", flush=True)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    res, cpu = _run("linux", _cfg(2, "populated"), 2, MENUS["small"], start_k=2,
                    budget_s=args.cap)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    lv = res.levels[-1]
    print(f"\nmemory: linux populated K=2 ({'complete' if lv.complete else 'partial'}), "
          f"{lv.states:,} states, peak frontier {lv.peak_frontier:,}: traced peak "
          f"{peak / 2**20:.1f} MiB = {peak / max(lv.states, 1):,.0f} bytes/state "
          f"(the seen set and two BFS levels of paths included)")


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
    names = args.protocol or [n for n in protocol_names()
                              if n.startswith(("hist_", "linux_4_", "luf_"))]
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
        if args.check:  # the unreduced search must find the same K and the same path
            if res.failure is not None:
                plain, _ = _run(name, _cfg(2, args.boot), res.fail_k, MENUS[args.menu],
                                undo=False, start_k=res.fail_k)
                row += f" {'yes' if plain.path == res.path else 'NO'} |"
            else:
                row += " - |"
        print(row, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("speed", "reach", "mutants"))
    ap.add_argument("--cap", type=float, default=600.0, help="CPU seconds per search")
    ap.add_argument("--kmax", type=int, default=3, help="mutants: the largest K tried")
    ap.add_argument("--menu", default="full", choices=tuple(MENUS))
    ap.add_argument("--boot", action="append", default=None, choices=("populated", "empty"))
    ap.add_argument("--cpus", action="append", type=int, default=None)
    ap.add_argument("--protocol", action="append", default=None)
    ap.add_argument("--check", action="store_true",
                    help="mutants: re-run each failing K without undo and compare the path")
    args = ap.parse_args()
    if args.what == "mutants" and args.boot:
        args.boot = args.boot[0]
    elif args.what == "mutants":
        args.boot = "populated"
    {"speed": speed, "reach": reach, "mutants": mutants}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
