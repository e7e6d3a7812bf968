#!/usr/bin/env python
"""LUF variants: flush cost per 1,000 operations, and median time to first failure.

Usage::

    python bench/luf_cost.py                      # the cost table (conformance/cost.py), all LUF rows
    python bench/luf_cost.py --ttff               # also time to first failure, 10 seeds each,
                                                  # written to bench/luf_ttff.json (docs/LUF.md reads it)
    python bench/luf_cost.py --ttff --budget 60 --seeds 1-10 --protocol luf_v12

Time to first failure, per seed: certify's own chunk loop as ``certify(name, budget_s,
seed=s, jobs=1)`` runs it (``run_chunk`` over chunks of 50 examples of 50 steps with seeds
``chunk_seed(s, i)``, in order), timed from the start to the first failing example
(``run_chunk``'s first-failure time, before shrinking), the rule of that chunk's first
failure; stopped at the first failing chunk or at the budget. Unlike ``certify`` it does
not go on shrinking to the budget (shrinking is capped at 5 s), which keeps 10 seeds x 9
variants affordable; the time measured is the same quantity as ``Result.first_failure_s``.
The median is over the seeds that failed (a seed that found nothing within the budget
counts as "no failure"). The times depend on the machine and its load: the JSON records
the date and a note, and docs/LUF.md prints them as measured.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conformance.certify import chunk_seed, run_chunk  # noqa: E402
from conformance.config import DEFAULT  # noqa: E402
from conformance.registry import load_protocol  # noqa: E402
from conformance.cost import cost_table  # noqa: E402
from conformance.lufdoc import ROWS, TTFF_PATH  # noqa: E402


def seeds_of(text):
    a, _, b = text.partition("-")
    return list(range(int(a), int(b or a) + 1))


def first_failure(cls, seed, budget):
    """(seconds to the first failing example, its rule) or (None, "pass") within ``budget``."""
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < budget:
        _, _, failures, t, _ = run_chunk(cls, DEFAULT, False, 50, 50, chunk_seed(seed, i), t0,
                                         shrink_s=5)
        i += 1
        if failures:
            return (t if t is not None else time.monotonic() - t0), failures[0].rule
    return None, "pass"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ttff", action="store_true", help="measure time to first failure")
    ap.add_argument("--budget", type=float, default=60.0, help="certify budget per seed (s)")
    ap.add_argument("--seeds", default="1-10")
    ap.add_argument("--protocol", action="append", help="rows to measure (default: every LUF row)")
    ap.add_argument("--note", default="", help="recorded with the measurement (machine, load)")
    ap.add_argument("--no-cost", action="store_true")
    a = ap.parse_args(argv)
    rows = a.protocol or [p for p in ROWS if p.startswith("luf")]
    if not a.no_cost:
        print(cost_table(rows + [p for p in ("linux", "immediate") if p not in rows]))
        print()
    if not a.ttff:
        return 0
    seeds = seeds_of(a.seeds)
    try:
        with open(TTFF_PATH) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        data = {"protocols": {}}
    for p in rows:
        times, rules = [], []
        t0 = time.monotonic()
        cls = load_protocol(p)
        for s in seeds:
            t, rule = first_failure(cls, s, a.budget)
            if t is not None:
                times.append(round(t, 3))
            rules.append(rule)
        med = statistics.median(times) if times else None
        data["protocols"][p] = dict(seeds=len(seeds), failed=len(times), budget_s=a.budget,
                                    times_s=times, rules=rules, median_s=med)
        print(f"{p:<26} median {('%.2f s' % med) if med is not None else '-':>9}  "
              f"{len(times)}/{len(seeds)} failed  rules {','.join(rules)}  "
              f"({time.monotonic() - t0:.0f} s)", flush=True)
        data["date"] = datetime.date.today().isoformat()
        data["seeds_list"] = a.seeds
        data["note"] = a.note or "certify's chunk loop, jobs=1, on 2 cores shared with other work"
        with open(TTFF_PATH, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
