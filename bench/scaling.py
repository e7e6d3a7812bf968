"""certify's throughput against the number of workers, local and on a Dask LocalCluster.

For each worker count ``n`` (``--workers 1,2,4``) and each executor (``local``: ``n`` forked
processes, ``n = 1`` being this process; ``dask``: a LocalCluster of ``n`` single-threaded
worker processes), certify ``linux`` for a fixed example budget of ``--examples-per-worker``
x ``n`` examples under a fixed seed, and print examples/s, steps/s and the efficiency

    efficiency = throughput / (n x single throughput)

where the single throughput is the local run with one worker, measured in the same
invocation (so the table compares like with like on whatever machine runs it). Each row
is the best of ``--repeat`` runs (the least disturbed by other load). Every executor gets a
small warm-up run first (worker start-up and imports are not what the table measures).

Example::

    python bench/scaling.py --workers 1,2                      # docs/SCALING.md, 2 cores
    python bench/scaling.py --workers 1,2,4,8,16 --repeat 3    # a bigger machine
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conformance.certify import certify  # noqa: E402
from conformance.executors import Workers, dask_workers, local_workers  # noqa: E402


def measure(workers: Workers, n: int, args) -> dict:
    """One certify run on ``workers``: counts, seconds, rates."""
    t0 = time.monotonic()
    r = certify("linux", budget_s=None, max_examples=args.examples_per_worker * n, seed=args.seed,
                chunk=args.chunk, steps=args.steps, workers=workers)
    secs = time.monotonic() - t0
    assert r.passed, f"linux did not pass on {workers.name}"
    return dict(examples=r.examples, steps=r.steps, chunks=r.chunks, seconds=secs,
                ex_rate=r.examples / secs, st_rate=r.steps / secs)


def warm_up(workers: Workers, args) -> None:
    """One chunk per slot, so every worker has imported flushcheck and run the model."""
    certify("linux", budget_s=None, max_examples=workers.slots * 5, chunk=5, steps=args.steps,
            seed=args.seed + 1, workers=workers)


def best_of(workers: Workers, n: int, args) -> dict:
    warm_up(workers, args)
    runs = [measure(workers, n, args) for _ in range(args.repeat)]
    return max(runs, key=lambda m: m["st_rate"])


def run_local(n: int, args) -> dict:
    w = local_workers(n)
    try:
        return best_of(w, n, args)
    finally:
        w.close()


def run_dask(n: int, args) -> dict:
    from distributed import LocalCluster

    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster:
        w = dask_workers(cluster.scheduler_address)
        try:
            return best_of(w, n, args)
        finally:
            w.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", default="1,2", help="worker counts, e.g. 1,2,4,8,16")
    p.add_argument("--executors", default="local,dask", help="local, dask or both")
    p.add_argument("--examples-per-worker", type=int, default=1000)
    p.add_argument("--chunk", type=int, default=50)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args(argv)
    counts = [int(x) for x in args.workers.split(",")]
    executors = args.executors.split(",")
    rows = []
    # local runs first: they fork this process, which must not hold a Dask cluster's threads
    for ex in sorted(executors, key=lambda e: e != "local"):
        for n in counts:
            m = run_local(n, args) if ex == "local" else run_dask(n, args)
            rows.append((ex, n, m))
            print(f"  {ex} {n}: {m['examples']} examples, {m['steps']} steps, {m['chunks']} chunks "
                  f"in {m['seconds']:.1f} s", file=sys.stderr, flush=True)
    single = next((m for ex, n, m in rows if ex == "local" and n == 1), None)
    if single is None:  # no local single run asked for: measure the baseline anyway
        single = run_local(1, args)
    print(f"certify linux, seed {args.seed}, {args.examples_per_worker} examples per worker, "
          f"chunks of {args.chunk}, {args.steps} steps per example; {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; best of {args.repeat}")
    print()
    print("| executor | workers | examples | steps | seconds | examples/s | steps/s | "
          "efficiency (examples) | efficiency (steps) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for ex, n, m in rows:
        print(f"| {ex} | {n} | {m['examples']:,} | {m['steps']:,} | {m['seconds']:.1f} | "
              f"{m['ex_rate']:,.0f} | {m['st_rate']:,.0f} | "
              f"{m['ex_rate'] / (n * single['ex_rate']):.2f} | "
              f"{m['st_rate'] / (n * single['st_rate']):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
