#!/usr/bin/env python
"""How much faster is a shrunk failure proven shortest, and how often?

certify shrinks each failure (``conformance.search.shortest.minimize``: delta debugging,
then the explorer over the failure's operations). Two changes of 2026-12-03:

* **reordering** in delta debugging (``walk._move_pass``): one action moved so that the run
  fails sooner, then removal again;
* **the explorer's bound**: it looks only for an interleaving *shorter* than the run
  (``explore(..., shorter_than=len(actions))``): the run already is a counterexample of
  its own length, so the deepest level is checked and not kept.

This script measures the shrink both ways on the same failures, in one process,
alternating which arm runs first:

* the failures: for each mutant of the corpus, the first ``--failures`` failing examples of
  certify's walk (``walk.run_shaped_example`` on the default machine's shapes, example
  seeds from ``random.Random(index)``, each tried in order);
* *before*: ``minimize(failure, below_run=False)`` with the reordering pass turned off
  (the code of the morning); *now*: ``minimize(failure)``. CPU time of each
  (``time.process_time``), the length returned and whether it was proven shortest.

Now must never be longer than before (exit 1 if it is). Usage::

    python bench/shortest.py                      # 8 mutants x 3 failures (several minutes)
    python bench/shortest.py --mutants linux_4_13 --failures 5
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from conformance.config import DEFAULT  # noqa: E402
from conformance.registry import load_protocol  # noqa: E402
from conformance.search import walk  # noqa: E402
from conformance.search.shortest import minimize  # noqa: E402

MUTANTS = ("hist_2_1_zap_flush_after_unlock", "hist_2_3_nested_reclaim", "linux_4_3",
           "hist_2_5_no_nested_gather_flush", "linux_4_13", "hist_2_8_rmap_before_flush",
           "hist_2_9_migrate_flush_after_copy", "hist_2_11_madvise_relock")


def failures(name: str, n: int, max_examples: int = 200_000) -> list:
    """The first ``n`` failing walk examples of ``name``: [(example seed, Failure)]."""
    cls = load_protocol(name)
    shapes = walk.shapes_for(DEFAULT)
    rnd = random.Random(MUTANTS.index(name) if name in MUTANTS else 0)
    out = []
    for _ in range(max_examples):
        seed = rnd.getrandbits(64)
        ex = walk.run_shaped_example(cls, shapes, False, seed)
        if ex.failure is not None and ex.failure.machine is not None:
            out.append((seed, ex.failure))
            if len(out) == n:
                break
    return out


def timed(f, now: bool) -> tuple:
    move_pass = walk._move_pass
    if not now:
        walk._move_pass = lambda failure, same, spent, runs: failure
    try:
        t = time.process_time()
        small, _text, proven = minimize(f, below_run=now)
        return len(small.machine.actions), proven, time.process_time() - t
    finally:
        walk._move_pass = move_pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mutants", nargs="*", default=list(MUTANTS))
    ap.add_argument("--failures", type=int, default=3)
    args = ap.parse_args()
    print(f"{'mutant':34} {'seed':>20} {'raw':>4} | {'before':>18} | {'now':>18} | ratio")
    tot = [0.0, 0.0]
    proven = [0, 0]
    rows = 0
    worse = 0
    for name in args.mutants:
        for seed, f in failures(name, args.failures):
            # alternate which arm runs first so that a drift of the host's speed cancels
            arms = (False, True) if rows % 2 == 0 else (True, False)
            got = {b: timed(f, b) for b in arms}
            (lb, pb, tb), (ln, pn, tn) = got[False], got[True]
            worse += ln > lb
            tot[0] += tb
            tot[1] += tn
            proven[0] += pb
            proven[1] += pn
            rows += 1
            print(f"{name:34} {seed:>20} {len(f.machine.actions):>4} | "
                  f"{lb:>3} {'proven' if pb else 'open  '} {tb:6.2f} s | "
                  f"{ln:>3} {'proven' if pn else 'open  '} {tn:6.2f} s | {tb / max(tn, 1e-9):5.2f}x",
                  flush=True)
    print(f"\n{rows} failures: CPU {tot[0]:.1f} s before, {tot[1]:.1f} s now "
          f"({tot[0] / max(tot[1], 1e-9):.2f}x); proven {proven[0]}/{rows} before, "
          f"{proven[1]}/{rows} now; longer now than before: {worse}")
    return 0 if worse == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
