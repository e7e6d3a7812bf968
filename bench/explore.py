"""Explorer cost: every threaded litmus file under one protocol, then the largest one again
without state deduplication, in the same run (docs/BENCHMARKS.md, "Explorer").

"Largest" is the file whose deduplicated search visits the most states. Deduplication must
not change the number of interleavings (complete schedules); the script checks that.

    python bench/explore.py                  # protocol linux
    python bench/explore.py --protocol immediate --repeats 3
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conformance.search.explorer import explore  # noqa: E402
from conformance.litmus import corpus  # noqa: E402
from conformance.registry import load_protocol  # noqa: E402


def _best(sc, cls, dedup: bool, repeats: int, max_states: int):
    runs = [explore(sc, cls, dedup=dedup, max_states=max_states) for _ in range(repeats)]
    return min(runs, key=lambda r: r.seconds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protocol", default="linux")
    ap.add_argument("--repeats", type=int, default=3, help="keep the fastest of N runs")
    ap.add_argument("--max-states", type=int, default=2_000_000)
    args = ap.parse_args()
    cls = load_protocol(args.protocol)
    threaded = [sc for sc in corpus() if sc.threads]
    print(f"protocol {args.protocol}; fastest of {args.repeats} runs each\n")
    print(f"{'scenario':42} {'verdict':8} {'states':>8} {'transitions':>11} {'interleavings':>13} {'s':>7}")
    results = []
    for sc in threaded:
        r = _best(sc, cls, True, args.repeats, args.max_states)
        results.append((sc, r))
        print(f"{sc.name:42} {r.verdict:8} {r.states:>8} {r.transitions:>11} {r.interleavings:>13} "
              f"{r.seconds:>7.2f}")
    sc, d = max(results, key=lambda t: t[1].states)
    t = _best(sc, cls, False, args.repeats, args.max_states)
    print(f"\nlargest: {sc.name}")
    print(f"  deduplicated     {d.summary()}")
    print(f"  no dedup         {t.summary()}")
    if d.complete and t.complete:
        same = "equal" if d.interleavings == t.interleavings else "DIFFERENT (a bug)"
        print(f"  interleavings    {same}: {d.interleavings} vs {t.interleavings}")
        print(f"  ratio            states {t.states / d.states:.1f}x, time {t.seconds / d.seconds:.1f}x "
              "(no dedup / dedup)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
