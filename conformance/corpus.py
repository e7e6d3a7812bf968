"""The litmus corpus against every protocol: a herd-style table of verdicts vs expectations.

A scripted file (no ``thread`` section) is run once (:func:`conformance.litmus.run`); a
threaded file is explored exhaustively (:func:`conformance.search.explorer.explore`). A cell is the
verdict (``pass`` or the rule violated) and whether it matches the file's ``expect`` line.

Example::

    >>> from conformance.litmus import corpus
    >>> cells = check(corpus()[:1], ["linux", "linux_4_3"])   # doctest: +SKIP
    >>> [(c.protocol, c.verdict, c.ok) for c in cells]         # doctest: +SKIP
    [('linux', 'pass', True), ('linux_4_3', 'S3', True)]
"""
from __future__ import annotations

import json
import os
import time

import attrs

from .errors import UsageError
from .litmus import LITMUS_DIR, Scenario, run, verdict

#: the expectation of a cell the corpus holds none for: any verdict but an error
#: (:func:`expectation`)
ANY = "any"
#: verdicts that are never an answer, whatever a protocol's bug
ERRORS = ("PROTOCOL-ERROR", "MODEL-ERROR")


@attrs.define
class Cell:
    scenario: str
    protocol: str
    verdict: str
    expected: str
    seconds: float
    detail: str = ""  # explorer summary, or the failure's headline

    @property
    def ok(self) -> bool:
        return as_expected(self.verdict, self.expected)


def as_expected(verdict: str, expected: str) -> bool:
    """Is ``verdict`` what ``expected`` (:func:`expectation`) asks for? :data:`ANY` takes any
    verdict but an error or a search cut short (``incomplete``: no verdict either).

    Example::

        >>> as_expected("S3", ANY), as_expected("MODEL-ERROR", ANY), as_expected("S3", "pass")
        (True, False, False)
    """
    if expected == ANY:
        return verdict not in ERRORS and verdict != "incomplete"
    return verdict == expected


def expectation(sc: Scenario, name: str, proto_cls) -> str:
    """The verdict scenario ``sc`` expects of protocol ``name`` (class ``proto_cls``).

    A file outside the shipped corpus (``litmus/``; a directory of your own means its ``*``
    for everything it runs) expects what its ``expect`` lines say of ``name``. A file of the
    shipped corpus was written for the modules flushcheck ships (:data:`protocols.SHIPPED`):
    one of them, however it was loaded (by name or by its path), expects what the file says
    of that module (:func:`registry.shipped_as`); any other protocol (one you dropped into
    ``protocols/``, an entry point, a file, a copy of a shipped module elsewhere) gets no
    expectation: :data:`ANY`, any verdict but a protocol or model error or a search cut
    short; except that a module declaring ``CORRECT = True`` claims to pass every scenario
    that turns on no finding's switch (docs/FINDINGS.md), so it expects ``pass`` there.
    Before 2026-12-05 every protocol was held to ``*``, and a variant with a bug failed a
    dozen litmus tests (and ``flushcheck litmus``) that were never written with it in mind
    (a user review); the first fix went by the name given, which took a fixed copy
    ``/tmp/x/linux_4_13.py`` for the shipped module and a shipped module given by its path
    for a stranger (a review of it).

    Example::

        >>> from conformance.litmus import corpus
        >>> from conformance.registry import load_protocol
        >>> sc = next(s for s in corpus() if s.name == "lost-pending-flush-2021")
        >>> [expectation(sc, p, load_protocol(p)) for p in ("linux_4_13", "linux")]
        ['S3', 'pass']
    """
    from .registry import declared, shipped_as

    if not _in_shipped_corpus(sc):
        return sc.expected(name)
    module = shipped_as(proto_cls)
    if module is not None:
        return sc.expected(module)
    if declared(proto_cls, "CORRECT") is True and not _turns_on_a_finding(sc):
        return "pass"
    return ANY


def _in_shipped_corpus(sc: Scenario) -> bool:
    """``sc`` is a file of ``litmus/`` (real paths: a symlink to it is it)."""
    return os.path.dirname(os.path.realpath(sc.path)) == os.path.realpath(LITMUS_DIR)


def _turns_on_a_finding(sc: Scenario) -> bool:
    from .findings import FINDINGS

    return any(getattr(sc.config, f.switch) for f in FINDINGS)


def check_one(sc: Scenario, name: str, proto_cls, max_states: int | None = None) -> Cell:
    """Run or explore one scenario under one protocol."""
    from .search.explorer import MAX_STATES, explore

    t0 = time.perf_counter()
    if sc.threads:
        res = explore(sc, proto_cls, max_states=max_states or MAX_STATES)
        v = res.verdict if res.complete or res.failure is not None else "incomplete"
        detail = (f"shortest counterexample {len(res.path)} choices; " if res.failure else "") + \
            res.summary()
    else:
        f = run(sc, proto_cls)
        v = verdict(f)
        detail = f.headline() if f is not None else "script passed"
    return Cell(sc.name, name, v, expectation(sc, name, proto_cls), time.perf_counter() - t0,
                detail)


def check(scenarios: list[Scenario], protocols: list[str], max_states: int | None = None) -> list[Cell]:
    """Every scenario against every protocol, in order (scenario-major)."""
    from .registry import load_protocol

    classes = {p: load_protocol(p) for p in protocols}
    return [check_one(sc, p, classes[p], max_states) for sc in scenarios for p in protocols]


def table(cells: list[Cell], scenarios: list[Scenario], protocols: list[str],
          names: dict | None = None) -> str:
    """Protocol x scenario; a cell is the verdict, with ``!`` and the expectation when they
    differ. ``names``: a row's label for each protocol reference (a file's path shows as
    the protocol's name, its stem, as in every other report); the reference by default."""
    by = {(c.scenario, c.protocol): c for c in cells}
    names = names or {}
    cols = [sc.name for sc in scenarios]
    short = [f"[{i + 1}]" for i in range(len(cols))]
    pw = max(len(names.get(p, p)) for p in protocols + ["protocol"])
    cw = [max(4, len(s)) for s in short]
    for j, sc in enumerate(scenarios):
        for p in protocols:
            cw[j] = max(cw[j], len(_cell_text(by[(sc.name, p)])))
    out = ["  ".join([f"{'protocol':<{pw}}"] + [f"{s:<{w}}" for s, w in zip(short, cw)]).rstrip()]
    out.append("  ".join(["-" * pw] + ["-" * w for w in cw]))
    for p in protocols:
        row = [f"{names.get(p, p):<{pw}}"] + [f"{_cell_text(by[(sc.name, p)]):<{w}}"
                                              for sc, w in zip(scenarios, cw)]
        out.append("  ".join(row).rstrip())
    out.append("")
    for s, sc in zip(short, scenarios):
        kind = "explored" if sc.threads else "script"
        out.append(f"{s} {sc.name} ({kind})")
    bad = [c for c in cells if not c.ok]
    free = sorted({names.get(c.protocol, c.protocol) for c in cells if c.expected == ANY})
    out.append("")
    out.append(f"{len(cells) - len(bad)}/{len(cells)} cells as expected"
               + ("" if not bad else "; '!' marks a cell that differs (verdict!expected)"))
    if free:
        out.append(f"'?' marks a verdict the corpus records no expectation for ({', '.join(free)}: "
                   f"not shipped with flushcheck; any verdict but an error is as expected; "
                   f"docs/litmus.md)")
    return "\n".join(out)


def _cell_text(c: Cell) -> str:
    if not c.ok:
        return f"{c.verdict}!{c.expected}"
    return f"{c.verdict}?" if c.expected == ANY else c.verdict


def select(scenarios: list[Scenario], names: list[str]) -> list[Scenario]:
    """The scenarios named (by ``name`` or file name); all when ``names`` is empty."""
    if not names:
        return scenarios
    out = []
    for n in names:
        hit = [sc for sc in scenarios if sc.name == n or sc.path.endswith("/" + n)
               or sc.path.endswith("/" + n + ".litmus")]
        if not hit:
            raise UsageError(f"no litmus scenario named {n!r}")
        out += hit
    return out


# -- the power a PASS stands on -----------------------------------------------------------------
#: written by bench/corpus.py: per budget, in how many seeds each corpus mutant was found
POWER_JSON = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                          "corpus_power.json")


def power_line(budget_s: float | None, jobs: int = 1, engine: str = "walk",
               path: str = POWER_JSON, differs: tuple = ()) -> str:
    """What a PASS of this budget is worth: the measured share of seeds in which such a run
    finds the historical bugs (docs/CORPUS.md's power table), for the largest measured budget
    not above ``budget_s``.

    Example::

        >>> power_line(None).startswith("not measured")
        True
    """
    try:
        with open(path) as fh:
            pw = json.load(fh)
    except (OSError, ValueError):
        return "not measured (docs/corpus_power.json is missing: run python bench/corpus.py)"
    if budget_s is None:
        return "not measured for an example budget (the power table is per time budget)"
    fits = sorted((float(b), v) for b, v in pw["budgets"].items() if float(b) <= budget_s)
    if not fits:
        return f"not measured for a budget under {min(float(b) for b in pw['budgets']):g} s"
    b, v = fits[-1]
    n, seeds = pw["modules"], pw["seeds"]
    least = min(v["per_module"].values()) if v["per_module"] else 0
    how = f"{pw['jobs']} job{'s' if pw['jobs'] != 1 else ''}, {pw['engine']} engine"
    caveat = ("" if engine == pw["engine"] else f"; this run used the {engine} engine") + \
        "".join(f"; {d}" for d in differs)  # what else of the run the table was not measured on
    if b != budget_s:  # a longer run finds at least what a shorter one of its seed does
        how += f"; the largest measured under this run's {budget_s:g} s"
    # "all ... in 0/10, each one in at least 0/10" read as if nothing was found (a user
    # review, 2026-12-07): the two counts are the seeds that found every bug, and the
    # seeds that found the hardest one
    return (f"a {b:g} s budget ({how}) found all {n} known bugs in {v['all_found_seeds']}/"
            f"{seeds} seeds; the hardest to find, in {least}/{seeds} (docs/CORPUS.md, measured "
            f"{pw['measured']}{caveat})")
