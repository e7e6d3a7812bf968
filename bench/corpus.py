"""Measure the historical bug corpus and write docs/CORPUS.md.

Every protocol module that declares ``BUG`` (the kernel-notes section), ``FIXED_BY`` (the
fixing commit), ``LITMUS`` (its litmus file) and ``EXPECTED_VIOLATION`` is one row:

* the explorer on its litmus file: verdict, shortest counterexample (choices after the
  prologue, and machine actions in all), states and seconds; and the fixed protocol
  (``linux``) on the same file;
* the random search (``flushcheck certify NAME --seed S --jobs 1``, the default 60 s
  budget and engine) for seeds 0..N-1: how many failed (and with which rule), the median
  and slowest time to first failure, the shrunk lengths (machine actions) and in how many
  the explorer proved that no interleaving of the failure's operations fails sooner;
* a failure certify's shrink left unproven (its explorer cap ran out) is proven here, outside
  certify, by the search its report prints (``flushcheck explore FILE --shorter-than L``)
  with a larger cap (``--prove-states``, 0: not at all); the last column counts those proofs
  apart ("k outside certify"), and a shorter interleaving found there would be shown too;
* the power table: for budgets of 1, 10 and 60 s, in how many seeds each module failed
  (time to first failure within the budget: with one job a shorter budget runs the same
  chunks in the same order), written to docs/CORPUS.md and docs/corpus_power.json, which
  certify's PASS line cites.

Usage::

    python bench/corpus.py                # 10 seeds, 1 job, writes docs/CORPUS.md (10-30 minutes)
    python bench/corpus.py --seeds 3 --print-only
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from conformance.certify import certify  # noqa: E402
from conformance.search.explorer import explore  # noqa: E402
from conformance.litmus import LITMUS_DIR, load, parse  # noqa: E402
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


#: the budgets of the power table (seconds); a run of the largest gives them all (below)
POWER_BUDGETS = (1.0, 10.0, 60.0)
POWER_JSON = os.path.join(ROOT, "docs", "corpus_power.json")


#: the states cap of the proofs made outside certify (certify's own: 25,000); 2.7's seed 5,
#: 19 actions, needed 89,585
PROVE_STATES = 400_000


def prove_outside(cls, r, max_states: int) -> dict | None:
    """The proof certify's report prints for an unproven failure (``flushcheck explore
    FILE --shorter-than L``), with ``max_states``: ``dict(proven, shorter, states, seconds)``
    (``proven`` None when the cap ran out too; ``shorter`` the length and rule of a shorter
    failing interleaving, if one exists); None when there is nothing to prove."""
    if not r.failures or r.proven or not r.litmus or not max_states:
        return None
    t0 = time.monotonic()
    res = explore(parse(r.litmus, "<corpus proof>"), cls, max_states=max_states,
                  shorter_than=r.shrunk_length)
    f = res.failure
    shorter = f"{len(f.machine.actions)} actions ({f.rule})" if f is not None else None
    proven = False if shorter is not None else (True if res.complete else None)
    return dict(proven=proven, shorter=shorter, states=res.states,
                seconds=time.monotonic() - t0)


def measure(name, cls, mod, seeds: int, budget: float, jobs: int,
            prove_states: int = PROVE_STATES) -> dict:
    sc = load(os.path.join(LITMUS_DIR, mod.LITMUS + ".litmus"))
    ex = explore(sc, cls)
    fixed = explore(sc, load_protocol("linux"))
    runs = []
    for s in range(seeds):
        t0 = time.monotonic()
        r = certify(cls, budget_s=budget, seed=s, jobs=jobs, database=None)
        rules = [f.rule for f in r.failures]
        wall = time.monotonic() - t0
        outside = prove_outside(cls, r, prove_states)
        runs.append(dict(seed=s, found=bool(rules), expected=mod.EXPECTED_VIOLATION in rules,
                         rules=rules, ttf=r.first_failure_s, proven=r.proven,
                         shrunk=r.shrunk_length if r.failures else None,
                         wall=wall, outside=outside))
        print(f"  {name} seed {s}: {rules or 'pass'} ttf={r.first_failure_s} "
              f"shrunk={runs[-1]['shrunk']} proven={r.proven}"
              + (f" outside certify: {outside}" if outside else ""), flush=True)
    return dict(name=name, mod=mod, ex=ex, fixed=fixed, runs=runs)


def _fmt_row(row) -> str:
    mod, ex, fixed, runs = row["mod"], row["ex"], row["fixed"], row["runs"]
    found = [r for r in runs if r["found"]]
    ttfs = [r["ttf"] for r in found]
    # a seed that found nothing counts as the budget (an upper bound) in the median
    med = statistics.median([r["ttf"] if r["found"] else math.inf for r in runs])
    med_txt = f"{med:.2f} s" if med != math.inf else "-"
    shr = [r["shrunk"] for r in found]
    shr_txt = f"{min(shr)}-{max(shr)} (median {statistics.median(shr):g})" if shr else "-"
    other = sorted({x for r in found for x in r["rules"]} - {mod.EXPECTED_VIOLATION})
    ex_len = (f"{len(ex.path)} choices / {len(ex.failure.machine.actions)} actions"
              if ex.failure is not None else "not found")
    found_txt = f"{len(found)}/{len(runs)}" + (f" ({', '.join(other)} in some)" if other else "")
    slowest = f"{max(ttfs):.2f} s" if ttfs else "-"
    return (f"| {mod.BUG} | `{mod.FIXED_BY}` | `{row['name']}` | {mod.SUMMARY} | "
            f"{mod.EXPECTED_VIOLATION} | {ex.verdict} | {ex_len} | {ex.states} states, "
            f"{ex.seconds:.2f} s | {fixed.verdict} ({fixed.states} states) | {found_txt} | "
            f"{med_txt} | {slowest} | {shr_txt} | {_fmt_proven(found)} |")


def _fmt_proven(found) -> str:
    """``n/N``: runs whose shrunk length is proven the explorer's shortest of its operations,
    inside certify or outside it (:func:`prove_outside`, counted apart), and any run a
    shorter interleaving of which fails."""
    inside = sum(1 for r in found if r["proven"])
    out = [r["outside"] for r in found if r.get("outside")]
    outside = sum(1 for o in out if o["proven"])
    shorter = [o["shorter"] for o in out if o["shorter"] is not None]
    txt = f"{inside + outside}/{len(found)}"
    notes = ([f"{outside} outside certify"] if outside else []) + \
        ([f"{len(shorter)} with a shorter one: {', '.join(shorter)}"]
         if shorter else [])
    return txt + (f" ({'; '.join(notes)})" if notes else "")


def power(rows, budgets=POWER_BUDGETS) -> dict:
    """Per budget: per module the seeds whose run failed within it, and the seeds in which
    every module did. A run of budget B with one job is the same chunk sequence as a run of
    any smaller budget, so "failed within b" is "time to first failure <= b"."""
    seeds = len(rows[0]["runs"]) if rows else 0
    out = {}
    for b in budgets:
        per = {r["name"]: sum(1 for x in r["runs"] if x["found"] and x["ttf"] <= b) for r in rows}
        every = sum(1 for s in range(seeds)
                    if all(r["runs"][s]["found"] and r["runs"][s]["ttf"] <= b for r in rows))
        out[f"{b:g}"] = dict(per_module=per, all_found_seeds=every)
    return dict(seeds=seeds, modules=len(rows), budgets=out)


def _fmt_power(pw: dict, rows) -> str:
    head = "| module | " + " | ".join(f"{b} s" for b in pw["budgets"]) + " |\n" + \
        "|---|" + "---|" * len(pw["budgets"])
    lines = [head]
    for r in rows:
        lines.append(f"| `{r['name']}` ({r['mod'].BUG}) | " + " | ".join(
            f"{v['per_module'][r['name']]}/{pw['seeds']}" for v in pw["budgets"].values()) + " |")
    lines.append(f"| **all {pw['modules']} in one seed** | " + " | ".join(
        f"{v['all_found_seeds']}/{pw['seeds']}" for v in pw["budgets"].values()) + " |")
    return "\n".join(lines)


def _replace(text: str, tag: str, body: str) -> str:
    a, b = f"<!-- {tag} -->", f"<!-- /{tag} -->"
    if a not in text or b not in text:
        print(f"docs/CORPUS.md has no {a} ... {b} markers; {tag} printed only")
        return text
    return text[: text.index(a) + len(a)] + "\n" + body + "\n" + text[text.index(b):]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=float, default=max(POWER_BUDGETS))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--only", action="append", default=None, help="only these protocol modules")
    ap.add_argument("--print-only", action="store_true", help="print the tables, do not write")
    ap.add_argument("--prove-states", type=int, default=PROVE_STATES,
                    help="states cap of the proofs outside certify of the failures its shrink "
                         "left unproven (0: none)")
    args = ap.parse_args()
    rows = []
    for name, cls, mod in corpus_protocols():
        if args.only and name not in args.only:
            continue
        rows.append(measure(name, cls, mod, args.seeds, args.budget, args.jobs,
                            args.prove_states))
    head = ("| § | fixed by | module | what went wrong | rule | explorer verdict | shortest "
            "counterexample | explorer cost | `linux` on the file | random: found | median "
            "time to first failure | slowest | shrunk length (actions) | shrunk = explorer "
            "shortest of its operations |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    table = "\n".join([head] + [_fmt_row(r) for r in rows])
    budgets = [b for b in POWER_BUDGETS if b <= args.budget]
    pw = power(rows, budgets)
    ptable = _fmt_power(pw, rows)
    print(table)
    print()
    print(ptable)
    if not args.print_only:
        path = os.path.join(ROOT, "docs", "CORPUS.md")
        text = _replace(_replace(open(path).read(), "corpus-table", table), "power-table", ptable)
        with open(path, "w") as fh:
            fh.write(text)
        pw.update(measured=time.strftime("%Y-%m-%d"), jobs=args.jobs, engine="walk",
                  cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                  python=platform.python_version(), document="docs/CORPUS.md")
        with open(POWER_JSON, "w") as fh:
            json.dump(pw, fh, indent=1, sort_keys=True)
            fh.write("\n")
        print(f"wrote the tables into {path} and the power figures into {POWER_JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
