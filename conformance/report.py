"""Human-readable verdicts for certify and replay (what users paste into a review)."""
from __future__ import annotations

import inspect
import os

from .certify import Result
from .errors import ModelError, ProtocolError
from .findings import scope_lines
from .soundness import KEEP, is_window
from .watchdog import stuck

RULE_NAMES = {
    "S1": "frame reuse",
    "S2": "copy-out",
    "S3": "syscall return",
    "C1": "quiescent coherence",
    "O1": "observation",
}


#: a shrink at least this long (seconds after the failure was found) gets its own line
SHRINK_SAID_S = 10.0

#: the longest protocol summary shown whole (longer: its first sentence, or cut at a word)
SUMMARY_MAX = 200


def protocol_summary(cls) -> str:
    """The first paragraph of the protocol's module (or class) docstring on one line: whole
    up to :data:`SUMMARY_MAX` characters, else its first sentence if that fits, else cut at
    a word with `` ...``. (It was the first line, which cut most historical protocols'
    commit titles in half: a user review, 2026-12-05.)

    Example::

        >>> from conformance.registry import load_protocol
        >>> protocol_summary(load_protocol("hist_2_5_no_nested_gather_flush"))[-20:]
        '(Minchan Kim, 2017).'
        >>> from protocols.linux import Linux
        >>> protocol_summary(type("Quiet", (Linux,), {"__module__": "mine"}))
        '(no docstring; a subclass of Linux)'
    """
    # the module's or the class's own: inspect.getdoc(cls) falls back to a base class's, and a
    # variant without a docstring was summed up as the protocol it changes ("Mainline batched
    # unmap TLB flush" for a Linux subclass that drops a flush: a review, 2026-12-06)
    own = next((k.__dict__["__doc__"] for k in cls.__mro__
                if k.__module__ == cls.__module__ and k.__dict__.get("__doc__")), None)
    doc = inspect.getdoc(inspect.getmodule(cls)) or (inspect.cleandoc(own) if own else "")
    if not doc:
        base = next((k for k in cls.__mro__ if k.__module__ != cls.__module__), object)
        return f"(no docstring; a subclass of {base.__name__})"
    text = " ".join(doc.split("\n\n")[0].split())
    if len(text) <= SUMMARY_MAX:
        return text
    end = text.find(". ")
    if 0 < end < SUMMARY_MAX:
        return text[:end + 1]
    return text[:SUMMARY_MAX].rsplit(" ", 1)[0] + " ..."


def rules_line(o1_note=None) -> str:
    """The rules checked, as a report lists them; ``o1_note`` qualifies O1 (strict mode).

    Example::

        >>> rules_line("strict").endswith("O1 observation (strict)")
        True
    """
    rules = ", ".join(f"{k} {v}" for k, v in RULE_NAMES.items())
    return rules.replace("O1 observation", f"O1 observation ({o1_note})") if o1_note else rules


#: the search each engine runs, as the report names it
SEARCH = {"walk": "raw swarm walk (conformance/search/walk.py), failures shrunk then explored "
                  "for their shortest interleaving",
          "hypothesis": "Hypothesis state machine (conformance/search/statemachine.py), shrunk by "
                        "Hypothesis"}


def counted(count: int, word: str) -> str:
    """``count`` and ``word``, plural unless one: ``1 example``, ``2,000 examples``."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _budget(res: Result) -> str:
    """The budget as the report states it: seconds, examples, or both."""
    parts = ([counted(res.max_examples, "example")] if res.max_examples is not None else []) \
        + ([f"{res.budget_s:g} s"] if res.budget_s is not None else [])
    if res.max_examples is not None and res.engine == "hypothesis":
        # Hypothesis's max_examples counts valid examples; an example that ran out of its
        # data is run (and counted in "ran") but not counted by Hypothesis: 58 for 50
        parts[0] += " (valid ones, as Hypothesis counts: ran counts every one)"
    return " or ".join(parts)


def source_line(proto_cls) -> list[str]:
    """``source`` and the digest a reproducer records (:func:`certificate.source_digest`,
    over the protocol's module and every file of its class hierarchy outside
    ``conformance/``), with those files: what a verdict pasted into a review was about,
    which the commit alone does not say for a protocol the checkout does not hold or has
    changed (a user review, 2026-12-05: a linux.py with its flush removed printed the same
    commit line as the clean tree). Nothing when the class has no source file.

    Example::

        >>> from conformance.registry import load_protocol
        >>> source_line(load_protocol("linux_4_13"))[0][:26]
        '  source    sha256 digest '
    """
    from .certificate import digest_of, protocol_source

    try:
        sources = protocol_source(proto_cls)["sources"]
    except (OSError, TypeError, AttributeError):
        return []
    files, digest = sorted(sources), digest_of(sources)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shown = [os.path.relpath(f, here) if f.startswith(here + os.sep) else f for f in files]
    return [f"  source    sha256 digest {digest[:16]} of {', '.join(shown)}"]


def misspelt_lines(name: str, proto_cls) -> list[str]:
    """A ``warning`` line for each method named like a hook that no path calls
    (:func:`registry.misspelt_hooks`): the loader warns on stderr, but the report is what a
    review gets, and it said PASS for a variant whose one change was never called (a user
    review, 2026-12-05: ``try_to_unmap_flsh``)."""
    from .registry import misspelt_hooks, misspelt_text

    return [f"  warning   {misspelt_text(name, m, h)}" for m, h in misspelt_hooks(proto_cls)]


def _as_declared(proto_cls, rules: set) -> str:
    """What the verdict says of the module's ``EXPECTED_VIOLATION`` (a historical bug or a
    mutant declares the rule it breaks): the rules found include it, do not, or, on a
    PASS, the declared bug was not found within the budget. Nothing for a module that
    declares none. (A suggestion of the user review of 2026-12-05.)"""
    from .registry import declared as declared_by

    declared = declared_by(proto_cls, "EXPECTED_VIOLATION")
    if not isinstance(declared, str):
        return ""
    if not rules:
        return f"   (the module declares EXPECTED_VIOLATION = {declared!r}: not found in this run)"
    if declared in rules:
        return f"   (as the module declares: EXPECTED_VIOLATION = {declared!r})"
    return f"   (the module declares EXPECTED_VIOLATION = {declared!r}, not found first)"


def power_text(res) -> str:
    """What a PASS of this run's budget is worth (:func:`corpus.power_line`), with what the
    power table was not measured on: the report's ``power`` line and the certificate's."""
    from .corpus import power_line

    return power_line(res.budget_s, res.jobs, res.engine, differs=power_caveats(res))


def power_caveats(res) -> tuple:
    """How this run differs from the runs the power table measured (the default machine, O1
    not strict): the power line said the same for any ``--config`` (a user review,
    2026-12-05)."""
    from .config import DEFAULT

    return (("measured on the default machine, not this run's config",) if res.config != DEFAULT
            else ()) + (("measured without --strict",) if res.strict else ())


#: what a failure whose shrunk actions keep a nested reclaim pass says (docs/model.md K10):
#: the walk draws the 2016 bug's path (kernel-notes 2.3) for every protocol
NESTED_RECLAIM_CAVEAT = (
    "the failing interleaving runs a reclaim pass nested inside another (an allocation of "
    "the outer pass: add_to_swap's, the path of kernel-notes 2.3, 4.3-4.7); 6.12 has no "
    "such nesting: every reclaim context "
    "runs with PF_MEMALLOC, and __alloc_pages_slowpath does not enter direct reclaim again "
    "(docs/model.md K10): a verdict about older kernels, or about a protocol's robustness")


def nests_reclaim(machine) -> bool:
    """Does ``machine``'s action list start a reclaim with a nested pass (``reclaim(cpu,
    frames, nested)``)? The shrinker drops a nested pass the failure does not need
    (conformance/search/walk.py), so in a shrunk reproducer it is part of the failure.

    Example::

        >>> class M: actions = [("reclaim", (2, (0,), (3,)))]
        >>> nests_reclaim(M), nests_reclaim(type("N", (), {"actions": []}))
        (True, False)
    """
    return any(name == "reclaim" and len(args) > 2 and args[2]
               for name, args in machine.actions)


def certify_report(res: Result, proto_cls, commit: str, repro_paths) -> str:
    """The certify verdict block."""
    rules = rules_line(res.strict and "strict")
    lines = [
        # the reference that loads it again (a file's path: a file named linux.py is not linux)
        f"flushcheck certify {res.protocol_ref or res.protocol}",
        f"  protocol  {res.protocol}: {protocol_summary(proto_cls)}",
        *source_line(proto_cls),
        *misspelt_lines(res.protocol, proto_cls),
        f"  commit    {commit}",
        f"  config    {config_text(res)}",
        *[f"  caveat    {x}" for x in res.config.caveats()],
        f"  seed      {res.seed}   budget {_budget(res)}   on {res.workers}",
        f"  search    {SEARCH[res.engine]}",
        f"  rules     {rules}",
    ]
    if res.database is not None:
        lines.append(f"  database  {res.database}: {res.replayed} saved failing example"
                     f"{'' if res.replayed == 1 else 's'} replayed first")
    lines.append(f"  ran       {counted(res.examples, 'example')}, {counted(res.steps, 'step')} in {res.elapsed_s:.1f} s "
                 f"({res.chunks} chunk{'' if res.chunks == 1 else 's'})"
                 + ("   (interrupted)" if res.interrupted else ""))
    if res.uncounted:
        lines.append(f"  note      {counted(res.uncounted, 'later chunk')} finished too but "
                     f"{'is' if res.uncounted == 1 else 'are'} not counted: chunk "
                     f"{res.chunks} was still running, and the counts are chunks 0 to "
                     f"{res.chunks - 1}'s")
    if res.interrupted and not res.failures:
        lines.append(f"  verdict   INTERRUPTED: no verdict, 0 violations in "
                     f"{counted(res.examples, 'example')}, {counted(res.steps, 'step')} before it was interrupted (Ctrl-C or SIGTERM)")
        return "\n".join(lines)
    if res.passed:  # the PASS line itself says what it stands on, the coverage what it exercised
        lines.append(f"  verdict   PASS: 0 violations in {counted(res.examples, 'example')}, "
                     f"{counted(res.steps, 'step')}" + _as_declared(proto_cls, set()))
        lines.append(f"  power     {power_text(res)}")
        lines += [f"  scope     {x}" for x in scope_lines(res.config)]
        lines += coverage_lines(res)
        return "\n".join(lines)
    if not res.failures:  # zero examples: no verdict (the CLI refuses it as bad input)
        lines.append("  verdict   NO VERDICT: 0 examples ran")
        return "\n".join(lines)
    f = res.failure
    rules = ", ".join(sorted({x.rule for x in res.failures}))
    kind = ("MODEL ERROR (a flushcheck bug)" if isinstance(f, ModelError)
            else "PROTOCOL ERROR" if isinstance(f, ProtocolError) else f"FAIL: {rules} violated")
    if not isinstance(f, (ModelError, ProtocolError)):
        kind += _as_declared(proto_cls, {x.rule for x in res.failures})
    lines.append(f"  verdict   {kind}")
    if res.first_failure_s is not None and any(x.machine is None for x in res.failures):
        # a worker's failure in its words alone (certify.in_words): no actions to count
        lines.append(f"  found     after {res.first_failure_s:.2f} s (chunk {res.failing_chunk}); "
                     "reported as the worker saw it: no actions replay it here, no reproducer")
    elif res.first_failure_s is not None:
        sizes = [len(x.machine.actions) for x in res.failures]
        lines.append(f"  found     after {res.first_failure_s:.2f} s (chunk {res.failing_chunk}); "
                     + ("not shrunk (a stuck hook: each replay would run its loop again), "
                        if stuck(f) else "not shrunk (Ctrl-C while shrinking), "
                        if getattr(res, "shrink_cut", False) else "shrunk to ")
                     + ", ".join(map(str, sizes)) + (" action" if sizes == [1] else " actions")
                     + ("; the explorer: no interleaving of its operations fails sooner"
                        if res.proven else _unproven(res)))
        after = res.elapsed_s - res.first_failure_s
        if after >= SHRINK_SAID_S and not stuck(f) and not getattr(res, "shrink_cut", False):
            # the budget bounds the search, not the shrink: --budget 1 took 90 s with no
            # word of where they went (a researcher's review, 2026-12-06)
            lines.append(f"  shrink    the run went on {after:.1f} s after the failure was found, "
                         "shrinking it: a shrink is bounded by its candidate runs and the "
                         "explorer's states, not by --budget, so that a seed gives the same "
                         "reproducer on any machine (--database saves the failure, not its "
                         "shrink)")
    shape = f.machine.cfg if f.machine is not None else res.config
    if shape != res.config:  # the walk drew another machine shape for this example
        lines.append(f"  machine   {shape.describe()}   (the failing example's)")
    if any(nests_reclaim(x.machine) for x in res.failures if x.machine is not None):
        lines.append(f"  caveat    {NESTED_RECLAIM_CAVEAT}")
    for i, x in enumerate(res.failures):
        lines.append("")
        lines.append(x.report(last=None))
        if repro_paths and i < len(repro_paths):
            lines.append("")
            lines.append(f"reproducer: {repro_paths[i]}")
            lines.append(f"replay:     flushcheck replay {repro_paths[i]}")
            lines += _picture_line(repro_paths[i])
            if i == 0 and res.litmus:
                lit = os.path.splitext(repro_paths[i])[0] + ".litmus"
                # unproven: the explorer need only look below the run's own length
                bound = "" if res.proven else f" --shorter-than {len(x.machine.actions)}"
                lines.append(f"scenario:   {lit}   (flushcheck explore {lit} "
                             f"--protocol {res.protocol_ref or res.protocol}{bound})")
    return "\n".join(lines)


def _unproven(res: Result) -> str:
    """What the found line says of a shrunk failure the explorer did not prove shortest: its
    state cap, and where to search further (the scenario saved beside the reproducer, which
    ``flushcheck explore`` searches with a cap eight times larger by default). The cap is
    the usual reason, not the only one: an interleaving the machine refuses, or a protocol
    whose state outside the machine changed under the search, ends the shrink's search
    too (it said "more interleavings than the cap" for those, 2026-12-07 22:55); the
    scenario's own search says which."""
    if not res.litmus:
        return ""
    from .search.shortest import SHORTEST_MAX_STATES

    return (f"; not proven shortest: the shrink's search of its interleavings, capped at "
            f"{SHORTEST_MAX_STATES:,} explorer states, did not end (most often the cap; the "
            "scenario below searches further and says why)")


def config_text(res: Result) -> str:
    """The machine config as a report states it, with the walk's per-example shapes.

    Example::

        >>> from conformance.certify import Result
        >>> config_text(Result("linux", 0, 1.0))   # doctest: +ELLIPSIS
        'cpus=3 mms=2 ... populated; 3/8 of walk examples with cpus=4 vpages=2 ptes_per_table=1, 3/8 with cpus=4 vpages=3 ptes_per_table=1 files=2x1, 1/8 with cpus=4; 3/4 start with every writable page written on every CPU; a flushed entry refilled after each flushing step'
    """
    text = res.config.describe()
    if res.engine == "walk":
        from fractions import Fraction

        from .search.walk import SWARM_REFILL, SWARM_WARM, shapes_for, shapes_text

        more = shapes_text(shapes_for(res.config))
        text += f"; {more}" if more else ""
        if SWARM_WARM:
            text += (f"; {Fraction(SWARM_WARM).limit_denominator(64)} start with every "
                     "writable page written on every CPU")
        if SWARM_REFILL:
            text += "; a flushed entry refilled after each flushing step"
    return text


def coverage_lines(res: Result) -> list[str]:
    """The compact coverage block (conformance/coverage.py) under a verdict: the oracle's
    checks per rule, the hooks reached per path and those never reached, the race windows.

    Example::

        >>> from conformance.certify import Result
        >>> coverage_lines(Result("linux", 0, 1.0))
        []
    """
    from .coverage import summary

    return ["  " + line for line in summary(res.counts)] if res.counts else []


def _picture_line(repro_path: str) -> list[str]:
    """``picture:`` and the page drawn beside a saved reproducer, if one was."""
    from .picture import html_path

    page = html_path(repro_path)
    return [f"picture:    {page}"] if os.path.exists(page) else []


# -- the soundness campaign ---------------------------------------------------------------------
def _cells_rows(res) -> list:
    """(protocol, config, examples, steps, seconds, steps/s, violations, windows) per cell,
    then the total."""
    rows = [(c.job.protocol, c.job.config, c.examples, c.steps, c.seconds, c.rate, c.violations,
             c.windows) for c in res.cells]
    secs = sum(c.seconds for c in res.cells)
    rows.append(("total", "", res.examples, res.steps, secs, res.steps / secs if secs else 0.0,
                 sum(c.violations for c in res.cells), sum(c.windows for c in res.cells)))
    return rows


def _soundness_verdict(res) -> str:
    """The verdict line: PASS always says how many examples and steps it stands on."""
    ran = f"in {res.examples:,} examples, {res.steps:,} steps"
    if res.verdict == "PASS":
        return f"PASS: 0 violations {ran}"
    bad = sum(c.violations for c in res.cells)
    if res.verdict == "FAIL":
        rules = sorted({k for c in res.cells for k in c.counts if not is_window(k)})
        return (f"FAIL: {bad:,} failing example{'s' if bad != 1 else ''} ({', '.join(rules)}) {ran}"
                + ("   (interrupted)" if res.interrupted else ""))
    return f"INTERRUPTED: no verdict, 0 violations {ran} before it was interrupted (Ctrl-C or SIGTERM)"


def soundness_report(res, commit: str) -> str:
    """The ``flushcheck soundness`` report (text)."""
    rules = rules_line(res.strict and "strict: windows counted apart")
    lines = [
        f"flushcheck soundness   commit {commit}",
        f"  protocols {', '.join(res.protocols)}",
        "  configs   " + "\n            ".join(f"{n:8} {cfg.describe()}" for n, cfg in res.configs),
        f"  seed      {res.seed}   budget {res.budget_s:g} s per (protocol, config)   "
        f"jobs {res.jobs}   " + ("swarm walk (certify's), 20-200 actions per example"
                                 if res.swarm else f"{res.actions} actions per example"),
        f"  rules     {rules}",
        "",
        f"  {'protocol':<28} {'config':<8} {'examples':>10} {'steps':>12} {'seconds':>8} "
        f"{'steps/s':>9} {'violations':>10}" + (f" {'windows':>8}" if res.strict else ""),
    ]
    for p, cfg, ex, st, secs, rate, bad, win in _cells_rows(res):
        lines.append(f"  {p:<28} {cfg:<8} {ex:>10,} {st:>12,} {secs:>8.1f} {rate:>9,.0f} {bad:>10,}"
                     + (f" {win:>8,}" if res.strict else ""))
    lines += ["", f"  verdict   {_soundness_verdict(res)}"]
    found = [(c, f) for c in res.cells for f in c.findings if not f.window]
    if found:
        lines += ["", f"violations (the first {KEEP} failing examples per protocol, config and "
                  "rule, shrunk):"]
        last = None
        for c, f in found:
            if (id(c), f.key) != last:
                lines.append(f"  {c.job.protocol} {c.job.config} {f.key}: {f.count:,} failing "
                             f"example{'s' if f.count != 1 else ''}")
                last = (id(c), f.key)
            lines += [f"    example seed {f.seed}: {f.headline}", "      " + _repro_text(f)]
    wins = [(c, f) for c in res.cells for f in c.findings if f.window]
    if wins:
        lines += ["", "O1-strict windows (tolerated by the kernel; strict mode only), one shrunk "
                  "reproducer per signature:",
                  f"  {'count':>7}  {'protocol':<12} {'config':<8} signature"]
        for c, f in wins:
            lines.append(f"  {f.count:>7,}  {c.job.protocol:<12} {c.job.config:<8} {f.label}")
            lines.append(f"  {'':>7}  {_repro_text(f)}")
    return "\n".join(lines)


def _repro_text(f) -> str:
    if f.path is None:
        return f"{f.length} actions; no reproducer (the example did not replay)"
    size = (f"shrunk {f.length} -> {f.shrunk} actions" if f.was_shrunk
            else f"{f.shrunk} actions (not shrunk)")
    return f"{size}   reproducer {f.path}   (flushcheck replay {f.path})"


def soundness_markdown(res, command: str, commit: str, date: str, python: str, cores: int) -> str:
    """The campaign as markdown, for docs/SOUNDNESS.md."""
    lines = [
        f"- command: `{command}`",
        f"- date {date}, commit `{commit}`, Python {python}, {cores} cores, jobs {res.jobs}",
        f"- seed {res.seed}, budget {res.budget_s:g} s per (protocol, config), "
        + ("certify's swarm walk, 20-200 actions per example" if res.swarm else
         f"{res.actions} actions per example") + (", O1 strict" if res.strict else ""),
        f"- verdict: **{_soundness_verdict(res)}**",
        "",
        "| protocol | config | examples | steps | seconds | steps/s | violations"
        + (" | windows |" if res.strict else " |"),
        "|---|---|---:|---:|---:|---:|---:|" + ("---:|" if res.strict else ""),
    ]
    for p, cfg, ex, st, secs, rate, bad, win in _cells_rows(res):
        lines.append(f"| {p} | {cfg} | {ex:,} | {st:,} | {secs:.1f} | {rate:,.0f} | {bad:,} |"
                     + (f" {win:,} |" if res.strict else ""))
    lines += ["", "| config | machine |", "|---|---|"]
    lines += [f"| {n} | {cfg.describe()} |" for n, cfg in res.configs]
    for title, want in (("Violations", False), ("O1-strict windows", True)):
        rows = [(c, f) for c in res.cells for f in c.findings if f.window == want]
        if not rows:
            continue
        lines += ["", f"**{title}**", "",
                  "| protocol | config | " + ("signature" if want else "rule") + " | examples | "
                  "shrunk | headline | reproducer |", "|---|---|---|---:|---:|---|---|"]
        for c, f in rows:
            lines.append(f"| {c.job.protocol} | {c.job.config} | {f.label} | {f.count:,} | "
                         f"{f.shrunk if f.shrunk is not None else '-'} | "
                         f"{f.headline.replace('|', '/')} | `{f.path or '-'}` |")
    return "\n".join(lines) + "\n"
