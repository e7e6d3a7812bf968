#!/usr/bin/env python
"""LUF variants: flush cost per 1,000 operations, and median time to first failure.

Usage::

    python bench/luf_cost.py                      # the cost table (conformance/cost.py), all LUF rows
    python bench/luf_cost.py --ttff               # also time to first failure, 10 seeds each,
                                                  # written to bench/luf_ttff.json (docs/LUF.md reads it)
    python bench/luf_cost.py --ttff --budget 60 --seeds 1-10 --protocol luf_v12

Time to first failure: ``conformance.certify.certify(name, budget_s, seed=s, jobs=1)``'s
``first_failure_s`` (wall-clock seconds from the start of the run to the first failing
example, before shrinking) and ``failures[0].rule``, per seed; the median is over the seeds
that failed (a seed that found nothing within the budget is counted as "no failure"). The
times depend on the machine and its load: the JSON records the date and a note, and
docs/LUF.md prints them as measured.
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
from conformance.cost import cost_table  # noqa: E402
from conformance.lufdoc import ROWS, TTFF_PATH  # noqa: E402


def seeds_of(text):
    a, _, b = text.partition("-")
    return list(range(int(a), int(b or a) + 1))


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
        for s in seeds:
            r = certify(p, budget_s=a.budget, seed=s, jobs=1)
            if r.first_failure_s is not None and r.failures:
                times.append(round(r.first_failure_s, 3))
                rules.append(r.failures[0].rule)
            else:
                rules.append("pass")
        med = statistics.median(times) if times else None
        data["protocols"][p] = dict(seeds=len(seeds), failed=len(times), budget_s=a.budget,
                                    times_s=times, rules=rules, median_s=med)
        print(f"{p:<26} median {('%.2f s' % med) if med is not None else '-':>9}  "
              f"{len(times)}/{len(seeds)} failed  rules {','.join(rules)}  "
              f"({time.monotonic() - t0:.0f} s)", flush=True)
        data["date"] = datetime.date.today().isoformat()
        data["seeds_list"] = a.seeds
        data["note"] = a.note or "certify jobs=1, 2 shared cores"
        with open(TTFF_PATH, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
