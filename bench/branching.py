#!/usr/bin/env python
"""Does branching at a broken read-modify-write pay? Failures per CPU second, off against on.

Usage::

    python bench/branching.py                       # 2.7 and 2.11, 60 CPU s per arm (~4 min)
    python bench/branching.py --seconds 20 linux_4_13 hist_2_1_zap_flush_after_unlock
    python bench/branching.py --branches 8 --actions 60   # another setting of the two knobs

For each protocol: certify's walk examples (``walk.run_shaped_example`` over the default
machine's shapes, example seeds drawn from ``random.Random(--seed)``), in blocks of 50
seeds; each block runs under both arms, in a random order per block: *off*
(``walk.SWARM_BRANCHES = 0``, the walk before branching) and *on* (``--branches``
branches of ``--actions`` actions each from the example's first broken read-modify-write,
:mod:`conformance.search.conflict`). An arm stops at ``--seconds`` of process CPU time. A
failure counts if it breaks the protocol's ``EXPECTED_VIOLATION`` (any failure for a
protocol without one). Printed per protocol: failures, CPU seconds, failures per CPU
second, examples and raw steps per second of each arm, and the ratio on/off of failures per
CPU second (the figure that moves the median time to first failure).

Failures are few per arm (10-120), so a ratio within about 1.5x of 1 is noise; repeat with
another --seed before reading anything into it (docs/SEARCH.md lists the runs).
"""
from __future__ import annotations

import argparse
import random
import time

from conformance.config import DEFAULT
from conformance.pytest_plugin import expected_violation
from conformance.registry import load_protocol
from conformance.search import walk

DEFAULT_PROTOCOLS = ("linux_4_13", "hist_2_11_madvise_relock")


def measure(name: str, seconds: float, seed: int, branches: int, actions: int) -> dict:
    """Both arms over the same example seeds; returns {arm: (failures, cpu s, examples, steps)}."""
    cls = load_protocol(name)
    rule = expected_violation(name)
    shapes = walk.shapes_for(DEFAULT)
    rnd = random.Random(seed)
    got = {"off": [0, 0.0, 0, 0], "on": [0, 0.0, 0, 0]}
    saved = walk.SWARM_BRANCHES, walk.SWARM_BRANCH_ACTIONS
    try:
        while min(g[1] for g in got.values()) < seconds:
            block = [rnd.getrandbits(64) for _ in range(50)]
            arms = ["off", "on"]
            rnd.shuffle(arms)
            for arm in arms:
                g = got[arm]
                if g[1] >= seconds:
                    continue
                walk.SWARM_BRANCHES = branches if arm == "on" else 0
                walk.SWARM_BRANCH_ACTIONS = actions
                t = time.process_time()
                for s in block:
                    ex = walk.run_shaped_example(cls, shapes, False, s)
                    g[2] += 1
                    g[3] += ex.steps
                    if ex.failure is not None and (rule is None or ex.failure.rule == rule):
                        g[0] += 1
                g[1] += time.process_time() - t
    finally:
        walk.SWARM_BRANCHES, walk.SWARM_BRANCH_ACTIONS = saved
    return {k: tuple(v) for k, v in got.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("protocols", nargs="*", default=list(DEFAULT_PROTOCOLS))
    ap.add_argument("--seconds", type=float, default=60.0, help="CPU seconds per arm")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--branches", type=int, default=walk.SWARM_BRANCHES)
    ap.add_argument("--actions", type=int, default=walk.SWARM_BRANCH_ACTIONS)
    a = ap.parse_args()
    print(f"branches={a.branches} actions={a.actions} seed={a.seed} seconds/arm={a.seconds:g}")
    for name in a.protocols:
        r = measure(name, a.seconds, a.seed, a.branches, a.actions)
        rate = {k: f / t for k, (f, t, _n, _s) in r.items()}
        cells = "  ".join(f"{k} {f} in {t:.0f} s = {f / t:.3f}/s ({n} ex, {s / t:,.0f} steps/s)"
                          for k, (f, t, n, s) in r.items())
        ratio = rate["on"] / rate["off"] if rate["off"] else float("inf")
        print(f"{name:34s} {cells}  on/off {ratio:.2f}x")


if __name__ == "__main__":
    main()
