"""Measure the historical bug corpus and write docs/CORPUS.md.

Every protocol module that declares ``BUG`` (the kernel-notes section), ``FIXED_BY`` (the
fixing commit), ``LITMUS`` (its litmus file) and ``EXPECTED_VIOLATION`` is one row:

* the explorer on its litmus file: verdict, shortest counterexample (choices after the
  prologue, and machine actions in all), states and seconds; and the fixed protocol
  (``linux``) on the same file;
* the random state machine (``flushcheck certify NAME --seed S``, default budget and jobs)
  for seeds 0..N-1: how many failed with the expected rule, the median time to first
  failure, and the shrunk lengths (machine actions).

Usage::

    python bench/corpus.py                # 10 seeds, writes docs/CORPUS.md (about 10 minutes)
    python bench/corpus.py --seeds 3 --print-only
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from conformance.certify import certify, default_jobs  # noqa: E402
from conformance.explorer import explore  # noqa: E402
from conformance.litmus import LITMUS_DIR, load  # noqa: E402
from conformance.registry import load_protocol, protocol_names  # noqa: E402


def corpus_protocols() -> list:
    """(module name, class, module) for every protocol module describing a historical bug."""
    out = []
    for name in protocol_names():
        cls = load_protocol(name)
        mod = sys.modules[cls.__module__]
        if all(hasattr(mod, a) for a in ("BUG", "FIXED_BY", "LITMUS", "EXPECTED_VIOLATION")):
            out.append((name, cls, mod))
    return sorted(out, key=lambda t: [int(x) for x in t[2].BUG.split(".")])


def measure(name, cls, mod, seeds: int, budget: float, jobs: int) -> dict:
    sc = load(os.path.join(LITMUS_DIR, mod.LITMUS + ".litmus"))
    ex = explore(sc, cls)
    fixed = explore(sc, load_protocol("linux"))
    runs = []
    for s in range(seeds):
        t0 = time.monotonic()
        r = certify(cls, budget_s=budget, seed=s, jobs=jobs)
        rules = [f.rule for f in r.failures]
        runs.append(dict(seed=s, found=mod.EXPECTED_VIOLATION in rules, rules=rules,
                         ttf=r.first_failure_s, shrunk=r.shrunk_length if r.failures else None,
                         wall=time.monotonic() - t0))
        print(f"  {name} seed {s}: {rules or 'pass'} ttf={r.first_failure_s} shrunk={runs[-1]['shrunk']}",
              flush=True)
    return dict(name=name, mod=mod, ex=ex, fixed=fixed, runs=runs)


def _fmt_row(row) -> str:
    mod, ex, fixed, runs = row["mod"], row["ex"], row["fixed"], row["runs"]
    found = [r for r in runs if r["found"]]
    ttfs = [r["ttf"] for r in found]
    med = f"{statistics.median(ttfs):.2f} s" if ttfs else "-"
    shr = [r["shrunk"] for r in found]
    shr_txt = f"{min(shr)}-{max(shr)} (median {statistics.median(shr):g})" if shr else "-"
    ex_len = (f"{len(ex.path)} choices / {len(ex.failure.machine.actions)} actions"
              if ex.failure is not None else "not found")
    return (f"| {mod.BUG} | `{mod.FIXED_BY}` | `{row['name']}` | {mod.SUMMARY} | "
            f"{mod.EXPECTED_VIOLATION} | {ex.verdict} | {ex_len} | {ex.states} states, "
            f"{ex.seconds:.2f} s | {fixed.verdict} ({fixed.states} states) | "
            f"{len(found)}/{len(runs)} | {med} | {shr_txt} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--jobs", type=int, default=default_jobs())
    ap.add_argument("--only", action="append", default=None, help="only these protocol modules")
    ap.add_argument("--print-only", action="store_true", help="print the table, do not write")
    args = ap.parse_args()
    rows = []
    for name, cls, mod in corpus_protocols():
        if args.only and name not in args.only:
            continue
        rows.append(measure(name, cls, mod, args.seeds, args.budget, args.jobs))
    head = ("| § | fixed by | module | what went wrong | rule | explorer verdict | shortest "
            "counterexample | explorer cost | `linux` on the file | random: found | median "
            "time to first failure | shrunk length (actions) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|")
    table = "\n".join([head] + [_fmt_row(r) for r in rows])
    print(table)
    if not args.print_only:
        path = os.path.join(ROOT, "docs", "CORPUS.md")
        text = open(path).read()
        a, b = "<!-- corpus-table -->", "<!-- /corpus-table -->"
        if a in text and b in text:
            text = text[: text.index(a) + len(a)] + "\n" + table + "\n" + text[text.index(b):]
            with open(path, "w") as fh:
                fh.write(text)
            print(f"wrote the table into {path}")
        else:
            print(f"{path} has no {a} ... {b} markers; table printed only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
