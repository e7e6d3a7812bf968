"""Flush cost counting: what each protocol pays in TLB flushes on fixed, seeded workloads.

LUF exists to send fewer shootdowns (its postings report about 97% fewer shootdown
interrupts, kernel-notes 4.9); a verdict without the cost hides the trade-off (a variant
can pass by flushing everywhere). Every flush of the machine goes through the arch layer
(:mod:`conformance.hw.arch`), so this module counts them there, without changing what they
do, on workloads driven by the random machine's own rules (:mod:`conformance.search.walk`).

What is counted, per flush primitive (x86, arch/x86/mm/tlb.c):

* ``flush_tlb_mm_range`` (also ``flush_tlb_page``): a *range* flush if the range is at
  most ``tlb_single_page_flush_ceiling`` pages, else a *full* flush; targets = the CPUs
  that have the mm loaded (those ``flush_tlb_func`` acts on);
* ``flush_tlb_mm``: a *full* flush; targets = the CPUs that have the mm loaded;
* ``arch_tlbbatch_flush`` (reclaim/migration batches, LUF's deferred flushes): a *full*
  flush; targets = the CPUs of the batch that have an mm loaded;
* ``local_flush_tlb``: a *full* flush of one CPU, never an IPI.

*IPIs* = for each flush, the targets other than the CPU that issued it (the CPU of the
operation passed as ``who``; an allocation by the "other consumer" has no CPU, so all its
targets count). That is the shootdown-interrupt count LUF's postings measure.

Workload mixes (``MIXES``): the state machine's rules with a weight per rule (a rule not
named weighs 1; ``default`` is the random machine's uniform mix). One run is
``ops // ACTIONS_PER_EXAMPLE`` examples of ``ACTIONS_PER_EXAMPLE`` steps, example ``i``
seeded ``seed * 1_000_003 + i``, on the default config. The oracle is switched off for
these runs (the instance's ``Oracle._fail`` does nothing), so a failing protocol keeps
running and is charged for its whole workload; an example that ends in a model or
protocol error stops there and counts the steps it did (``aborted``). The step sequence
depends on the protocol only through which rules are enabled (operations in flight), so
two protocols see the same workload up to that.

Deterministic: the same (protocol, mix, seed, ops) gives the same counts.

Example::

    >>> c = flush_costs("linux", "reclaim-heavy", seed=1, ops=160)
    >>> c["ops"], c["ipis"] >= 0
    (160, True)

Command line: ``python -m conformance.cost PROTOCOL... [--mix M]... [--seed S] [--ops N]``.
"""
from __future__ import annotations

import argparse
import random
import sys

from .hw.arch import TLB_SINGLE_PAGE_FLUSH_CEILING
from .config import DEFAULT
from .errors import Failure, ModelError, UsageError
from .machine import Machine
from .registry import load_protocol
from .search.statemachine import Driver, Stats
from .search.walk import ACTIONS_PER_EXAMPLE, Shim, rules_for

#: rule name -> weight (unnamed rules weigh 1); rule names are those of conformance.search.walk.Rules
MIXES = {
    "default": {},
    "reclaim-heavy": {"reclaim": 10, "access": 4, "madvise": 2, "background": 2},
    "migration-heavy": {"migrate": 10, "access": 4, "background": 2},
    "file-write-heavy": {"file_write": 10, "writeback": 3, "access": 4, "mmap": 2},
}
#: the default workload size (walk steps) per (protocol, mix)
DEFAULT_OPS = 4000
DEFAULT_SEED = 1
COLUMNS = ("ipis", "full", "range")


class FlushCounter:
    """Counts the flushes of one machine's arch layer (wraps its four flush primitives on
    the instance; behaviour unchanged)."""

    def __init__(self, arch) -> None:
        self.arch = arch
        self.ipis = 0
        self.full = 0
        self.range = 0
        cpus = arch.cpus
        orig_range = arch.flush_tlb_mm_range
        orig_mm = arch.flush_tlb_mm
        orig_batch = arch.arch_tlbbatch_flush
        orig_local = arch.local_flush_tlb

        def loaded(mm):
            return [c.id for c in cpus if c.loaded_mm is mm]

        def flush_tlb_mm_range(mm, start, end, who=None):
            if end - start <= TLB_SINGLE_PAGE_FLUSH_CEILING:
                self.range += 1
            else:
                self.full += 1
            self._ipis(loaded(mm), who)
            return orig_range(mm, start, end, who)

        def flush_tlb_mm(mm, who=None):
            self.full += 1
            self._ipis(loaded(mm), who)
            return orig_mm(mm, who)

        def arch_tlbbatch_flush(batch, who=None):
            mask = batch.cpumask
            if mask:
                self.full += 1
                self._ipis([c.id for c in cpus if mask >> c.id & 1 and c.loaded_mm is not None], who)
            return orig_batch(batch, who)

        def local_flush_tlb(cpu_id, who=None):
            if cpus[cpu_id].loaded_mm is not None:
                self.full += 1
            return orig_local(cpu_id, who)

        arch.flush_tlb_mm_range = flush_tlb_mm_range
        arch.flush_tlb_mm = flush_tlb_mm
        arch.arch_tlbbatch_flush = arch_tlbbatch_flush
        arch.local_flush_tlb = local_flush_tlb

    def _ipis(self, targets, who) -> None:
        issuer = _cpu_of(who)
        self.ipis += sum(1 for t in targets if t != issuer)


def _cpu_of(who):
    """The CPU that issues a flush: an operation's ``cpu``, a CPU number, or None."""
    if who is None:
        return None
    if isinstance(who, int):
        return who
    return getattr(who, "cpu", None)


def _silence(oracle) -> None:
    """Switch the oracle off for a cost run: violations are neither raised nor traced."""
    oracle._fail = lambda *args, **kwargs: None


def weighted_walk(rules, shim, rand, n: int, weights: dict) -> None:
    """``n`` steps of ``rules`` (as :func:`conformance.search.walk.walk`), the rule drawn with
    ``weights`` (rule name -> weight, default 1) among those enabled."""
    preconds = rules.preconditions
    enabled = rules.enabled
    for _ in range(n):
        acts = enabled(tuple([p(shim) for p in preconds]))
        ws = [weights.get(name, 1) for name, _calls in acts]
        x = rand() * sum(ws)
        k = 0
        while k < len(ws) - 1 and x >= ws[k]:
            x -= ws[k]
            k += 1
        _name, calls = acts[k]
        shim.stats.steps += 1
        calls[int(rand() * len(calls))](shim.d)


def flush_costs(protocol, mix: str = "default", seed: int = DEFAULT_SEED, ops: int = DEFAULT_OPS,
                cfg=DEFAULT) -> dict:
    """Flush counts of ``protocol`` (a module name or class) on workload ``mix``.

    Returns ``{"protocol", "mix", "seed", "ops", "ipis", "full", "range", "aborted",
    "per_1000": {"ipis", "full", "range"}}``: totals over ``ops`` walk steps (rounded
    down to whole examples of ``ACTIONS_PER_EXAMPLE``), and per 1,000 steps.
    """
    cls = load_protocol(protocol) if isinstance(protocol, str) else protocol
    name = protocol if isinstance(protocol, str) else getattr(cls, "name", cls.__name__)
    if mix not in MIXES:
        raise ValueError(f"unknown mix {mix!r} (one of {', '.join(MIXES)})")
    weights = MIXES[mix]
    rules = rules_for(cls, cfg)
    examples = max(1, ops // ACTIONS_PER_EXAMPLE)
    tot = dict(ipis=0, full=0, range=0)
    steps = 0
    aborted = 0
    errors = 0  # examples a protocol (or model) error stopped
    first_error = None
    for i in range(examples):
        m = Machine(cls, cfg)
        _silence(m.oracle)
        counter = FlushCounter(m.arch)
        stats = Stats()
        d = Driver(m)
        try:
            weighted_walk(rules, Shim(d, stats), random.Random(seed * 1_000_003 + i).random,
                          ACTIONS_PER_EXAMPLE, weights)
            d.teardown()
        except (Failure, Exception) as exc:  # noqa: BLE001 - an error ends the example
            aborted += 1
            if not isinstance(exc, Failure):
                exc = ModelError.uncaught(exc, m)
            errors += 1
            if first_error is None:
                first_error = exc.headline()
        steps += stats.steps
        for k in tot:
            tot[k] += getattr(counter, k)
    per = {k: (1000.0 * v / steps if steps else 0.0) for k, v in tot.items()}
    return dict(protocol=name, mix=mix, seed=seed, ops=steps, aborted=aborted, errors=errors,
                examples=examples, first_error=first_error, per_1000=per, **tot)


def cost_table(protocols, mixes=None, seed: int = DEFAULT_SEED, ops: int = DEFAULT_OPS,
               markdown: bool = False, baseline: str = "linux") -> str:
    """Protocols x mixes: IPIs / full / range flushes per 1,000 operations, and the IPIs as a
    percentage of ``baseline``'s on the same mix (when the baseline is among ``protocols``
    or can be loaded). A cell whose examples stopped on a protocol or model error shows
    that instead of a cost (a protocol that stops early flushes less), with the first error
    under the table."""
    return cost_report(protocols, mixes, seed, ops, markdown, baseline)[0]


def cost_report(protocols, mixes=None, seed: int = DEFAULT_SEED, ops: int = DEFAULT_OPS,
                markdown: bool = False, baseline: str = "linux") -> tuple:
    """:func:`cost_table`'s text, and whether an error stopped any example."""
    mixes = list(mixes or MIXES)
    res = {(p, mx): flush_costs(p, mx, seed, ops) for p in protocols for mx in mixes}
    base = {}
    for mx in mixes:
        b = res.get((baseline, mx)) or flush_costs(baseline, mx, seed, ops)
        base[mx] = b["per_1000"]["ipis"]

    errors = any(r["errors"] for r in res.values())
    from .registry import row_labels
    # a row is the protocol's name: a file's stem, as every other report shows it (a full
    # path was the label; a user review, 2026-12-06), unless two rows share it
    shown = row_labels(protocols)

    def cell(p, mx):
        if res[p, mx]["errors"]:  # no cost for a protocol that does not run: say why
            return f"ERROR in {res[p, mx]['errors']}/{res[p, mx]['examples']} examples"
        r = res[p, mx]["per_1000"]
        pct = (f" ({100.0 * r['ipis'] / base[mx]:.0f}%)" if base[mx] else "")
        return f"{r['ipis']:.0f}{pct} / {r['full']:.0f} / {r['range']:.0f}"

    if markdown:
        L = ["| protocol | " + " | ".join(mixes) + " |", "|---|" + "---|" * len(mixes)]
        for p in protocols:
            L.append(f"| `{shown[p]}` | " + " | ".join(cell(p, mx) for mx in mixes) + " |")
        return "\n".join(L + _error_lines(res, protocols)), errors
    cells = {(p, mx): cell(p, mx) for p in protocols for mx in mixes}
    pw = max(len(shown.get(p, p)) for p in list(protocols) + ["protocol"])
    cw = {mx: max(len(mx), *(len(cells[p, mx]) for p in protocols)) for mx in mixes}
    L = ["  ".join([f"{'protocol':<{pw}}"] + [f"{mx:<{cw[mx]}}" for mx in mixes]).rstrip(),
         "  ".join(["-" * pw] + ["-" * cw[mx] for mx in mixes])]
    for p in protocols:
        L.append("  ".join([f"{shown[p]:<{pw}}"] + [f"{cells[p, mx]:<{cw[mx]}}"
                                                     for mx in mixes]).rstrip())
    L.append("")
    L.append(f"per 1,000 operations: remote flush IPIs (% of {baseline}) / full flushes / "
             f"page-range flushes; seed {seed}, {ops} operations per cell")
    L += _error_lines(res, protocols)
    return "\n".join(L), errors


def _error_lines(res: dict, protocols) -> list:
    """One line per protocol whose examples stopped on an error: the first one."""
    out = []
    for p in protocols:
        first = next((r["first_error"] for (q, _mx), r in res.items() if q == p and r["errors"]),
                     None)
        if first is not None:
            out.append(f"{p}: {first}")
    return out




def main(argv=None) -> int:
    """``python -m conformance.cost PROTOCOL... [--mix M]... [--seed S] [--ops N] [--markdown]``."""
    # one-line argument errors, as every other subcommand's
    from .cli import _Parser, require_at_most

    ap = _Parser(prog="flushcheck cost",
                 description="TLB flush cost per 1,000 operations on seeded workload mixes")
    ap.add_argument("protocols", nargs="+", help="protocol module names (e.g. linux luf_v12)")
    ap.add_argument("--mix", action="append", choices=list(MIXES),
                    help="workload mix (repeatable; default: all)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--ops", type=int, default=DEFAULT_OPS,
                    help=f"walk steps per cell (at least {ACTIONS_PER_EXAMPLE}: one example; at "
                         "most 1,000,000)")
    ap.add_argument("--markdown", action="store_true", help="a Markdown table")
    ap.add_argument("--baseline", default="linux", help="the protocol IPIs are compared with")
    a = ap.parse_args(argv)
    if a.ops < ACTIONS_PER_EXAMPLE:
        ap.error(f"--ops must be at least {ACTIONS_PER_EXAMPLE} (one example)")
    try:
        require_at_most("--ops", a.ops)
    except UsageError as exc:  # one line and exit 2, as the floor above
        ap.error(str(exc))
    text, errors = cost_report(a.protocols, a.mix, a.seed, a.ops, a.markdown, a.baseline)
    print(text)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
