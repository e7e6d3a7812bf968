#!/usr/bin/env python
"""Golden traces: a hash of many seeded walks, to show that a speed change changed nothing.

For each protocol and seed, ``run_example(cls, seed=s, n=80)`` (the plain walk) and
``run_example(cls, seed=s, swarm=True)`` (certify's swarm walk) are run and hashed:
the machine's action log, every event of its trace formatted as the timeline formats
it (``Trace.lines()``), the number of steps, and the failure (rule and headline) if
any. One line per (protocol, kind): its SHA-256 over every seed.

    python bench/golden.py > /tmp/golden.txt          # before a change
    python bench/golden.py --check /tmp/golden.txt    # after: exit 1 on any difference
    python bench/golden.py --gc search --check /tmp/golden.txt   # the GC policy changes nothing

A difference means a run no longer produces the same trace byte for byte. The swarm
rows also change when the swarm's own drawing changes (conformance/search/walk.py Swarm),
which is not a model change: the plain rows say whether the model moved.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from contextlib import nullcontext

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conformance.gcpolicy import search_gc  # noqa: E402
from conformance.registry import load_protocol  # noqa: E402
from conformance.search.walk import run_example  # noqa: E402

PROTOCOLS = ("linux", "linux_4_3", "linux_4_13", "luf_v12", "immediate")
SEEDS = 300


def digest(ex) -> bytes:
    m = ex.machine
    out = [repr(m.actions), str(ex.steps)]
    out += [f"{step} {cpu} {text}" for step, cpu, text in m.trace.lines()]
    f = ex.failure
    out.append("PASS" if f is None else f"{type(f).__name__} {getattr(f, 'rule', None)} {f}")
    return "\n".join(out).encode()


def golden(protocols=PROTOCOLS, seeds: int = SEEDS) -> list[str]:
    rows = []
    for name in protocols:
        cls = load_protocol(name)
        for kind, kw in (("walk", dict(n=80)), ("swarm", dict(swarm=True))):
            h = hashlib.sha256()
            fails = 0
            for s in range(seeds):
                ex = run_example(cls, seed=s, **kw)
                fails += ex.failure is not None
                h.update(digest(ex))
            rows.append(f"{name:12} {kind:6} seeds {seeds} failures {fails:4} {h.hexdigest()}")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", metavar="FILE", help="compare with a saved output; exit 1 if any differs")
    ap.add_argument("--seeds", type=int, default=SEEDS)
    ap.add_argument("--gc", choices=("default", "search"), default="default",
                    help="run under CPython's default collection thresholds (default) or the "
                         "campaigns' policy (conformance/gcpolicy.py); the hashes must agree")
    a = ap.parse_args()
    with search_gc() if a.gc == "search" else nullcontext():
        rows = golden(seeds=a.seeds)
    if not a.check:
        print("\n".join(rows))
        return 0
    with open(a.check) as fh:
        want = fh.read().split("\n")
    bad = 0
    for r, w in zip(rows, want):
        same = r == w
        bad += not same
        print(("same  " if same else "DIFF  ") + r + ("" if same else f"\n  was {w}"))
    print("golden: all identical" if not bad else f"golden: {bad} rows differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
