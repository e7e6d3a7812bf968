#!/usr/bin/env python
"""What did a model change cost per step? certify's search on this tree against a commit.

Each side runs certify's search (``conformance.search.walk.run_example(P, seed=s,
swarm=True)`` for s = 0, 1, ..., as the swarm row of bench/steps.py) for ``--seconds`` of
its own CPU time, in a fresh Python process: this tree, and a temporary ``git worktree`` of
``REV`` (the whole package as it was: model, oracle, protocols). The sides alternate,
``--repeats`` rounds, the old side first in odd rounds; the fastest round of each is kept.
Steps are the walk's actions, as ``Stats.steps``: the two models draw different programs
from the same seeds once their behaviour differs, so the ratio is the search's speed, not
one program's.

Usage::

    python bench/model_against.py ef0bf48~1            # linux, 5 s per side and round, 3 rounds
    python bench/model_against.py HEAD~3 --protocol immediate --seconds 10
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: the child: the swarm walk for a CPU-time budget, counts printed as JSON on the last line
CHILD = """
import json, sys, time
from conformance.registry import load_protocol
from conformance.search.walk import run_example
cls = load_protocol(sys.argv[1])
seconds = float(sys.argv[2])
steps = runs = failures = 0
t0 = time.process_time()
while time.process_time() - t0 < seconds:
    ex = run_example(cls, seed=runs, swarm=True)
    steps += ex.steps
    failures += ex.failure is not None
    if ex.failure is None:
        ex.machine.dispose()
    runs += 1
dt = time.process_time() - t0
print(json.dumps(dict(steps=steps, runs=runs, failures=failures, seconds=dt, rate=steps / dt)))
"""


def side(tree: str, protocol: str, seconds: float) -> dict:
    """One timed run of the child in ``tree`` (its package first on the path)."""
    env = dict(os.environ, PYTHONPATH=tree, PYTHONHASHSEED="0")
    out = subprocess.run([sys.executable, "-c", CHILD, protocol, str(seconds)], cwd=tree,
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rev", help="the commit to compare with (e.g. ef0bf48~1)")
    ap.add_argument("--protocol", default="linux")
    ap.add_argument("--seconds", type=float, default=5.0,
                    help="CPU seconds per side and round (default 5)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds; the fastest is kept")
    a = ap.parse_args(argv)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="flushcheck-against-") as tmp:
        old_tree = os.path.join(tmp, "tree")
        got = subprocess.run(["git", "worktree", "add", "--detach", old_tree, a.rev], cwd=ROOT,
                             capture_output=True, text=True)
        if got.returncode:
            print(f"bench/model_against.py: no worktree of {a.rev}: {got.stderr.strip()}",
                  file=sys.stderr)
            return 2
        try:
            best = {"old": None, "new": None}
            for r in range(a.repeats):
                order = ("old", "new") if r % 2 == 0 else ("new", "old")
                for name in order:
                    res = side(old_tree if name == "old" else ROOT, a.protocol, a.seconds)
                    print(f"round {r + 1} {name}: {res['rate']:,.0f} steps/s "
                          f"({res['steps']:,} steps, {res['runs']} examples, "
                          f"{res['failures']} failing)", flush=True)
                    if best[name] is None or res["rate"] > best[name]["rate"]:
                        best[name] = res
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", old_tree], cwd=ROOT,
                           capture_output=True)
    old, new = best["old"]["rate"], best["new"]["rate"]
    print(f"\n{a.protocol}, certify's search, best of {a.repeats} x {a.seconds:g} CPU s:")
    print(f"  {a.rev:<16} {old:>10,.0f} steps/s")
    print(f"  {head + (' +dirty' if dirty else ''):<16} {new:>10,.0f} steps/s")
    print(f"  {'ratio':<16} {new / old:>10.3f}  (this tree / {a.rev})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
