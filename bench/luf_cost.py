#!/usr/bin/env python
"""LUF variants: flush cost per 1,000 operations, and median time to first failure.

Usage::

    python bench/luf_cost.py                      # the cost table (conformance/cost.py), all LUF rows
    python bench/luf_cost.py --ttff               # also time to first failure, 10 seeds each,
                                                  # written to bench/luf_ttff.json (docs/LUF.md reads it)
    python bench/luf_cost.py --ttff --budget 60 --seeds 1-10 --protocol luf_v12

Time to first failure, per seed: ``certify(name, budget_s, seed=s, jobs=1, database=None)``
itself, certify's default engine (the raw swarm walk) and its chunks, ``Result.first_failure_s``
(from the start to the first failing example, before minimization) and the rule of that
failure; a pass runs the whole budget. (Until 2026-12-02 this script ran the Hypothesis
engine's chunk loop, which certify no longer runs by default, so its figures described an
engine the user does not get.) The median is over the seeds that failed (a seed that found
nothing within the budget counts as "no failure"). The times depend on the machine and its
load: the JSON records the date and a note, and docs/LUF.md prints them as measured.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conformance.certify import certify  # noqa: E402
from conformance.registry import load_protocol  # noqa: E402
from conformance.cost import cost_table  # noqa: E402
from conformance.lufdoc import ROWS, TTFF_PATH  # noqa: E402


def seeds_of(text):
    a, _, b = text.partition("-")
    return list(range(int(a), int(b or a) + 1))


def first_failure(cls, seed, budget):
    """(seconds to the first failing example, its rule) or (None, "pass") within ``budget``:
    what ``flushcheck certify NAME --seed SEED --jobs 1 --budget BUDGET`` finds first."""
    r = certify(cls, budget_s=budget, seed=seed, jobs=1, database=None)
    if not r.failures:
        return None, "pass"
    return r.first_failure_s, r.failures[0].rule


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
        data["note"] = a.note or "certify's walk engine, jobs=1"
        with open(TTFF_PATH, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
