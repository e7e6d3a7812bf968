"""Certificates: a certify run written down so that a reviewer can check and re-run it.

``flushcheck certify P --out DIR`` writes ``DIR/certificate.json`` (the data) and
``DIR/certificate.md`` (the same, to read or paste): the protocol and the SHA-256 of its
source files, the flushcheck version and commit, Python and Hypothesis versions, the
machine config, seed, budget, engine, chunks and examples per chunk, examples and steps,
the oracle's checks per rule, the coverage (:mod:`conformance.coverage`), the litmus table
of the protocol (:mod:`conformance.corpus`), the verdict and, for a failure, its timeline,
reproducer, picture and litmus scenario (copied into DIR and linked).

``flushcheck certify --reproduce DIR/certificate.json`` (:func:`reproduce`) re-runs the
recorded work: the same protocol (its source hash compared), seed, config, strictness,
engine, steps, chunk size, and the recorded *number of chunks* as an example budget (so a
run under a time budget is reproducible), with no example database; it must reach the
same verdict.

Example::

    >>> from conformance.certify import certify
    >>> res = certify("linux", budget_s=None, max_examples=20, chunk=10, jobs=1)
    >>> cert = build(res, load_protocol("linux"), commit="c0ffee")
    >>> cert["verdict"], cert["run"]["chunks"], cert["run"]["chunk"]
    ('PASS', 2, 10)
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil

import attrs

from . import coverage
from .config import MachineConfig, refused
from .defaults import ENGINES
from .errors import ModelError, ProtocolError, UsageError
from .registry import load_protocol, protocol_module

FORMAT = "flushcheck-certificate/1"
JSON_NAME = "certificate.json"
MD_NAME = "certificate.md"


def sha256_file(path: str) -> str:
    """The SHA-256 of a file's bytes, hex.

    Example::

        >>> len(sha256_file(__file__))
        64
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def protocol_source(cls) -> dict:
    """The protocol's source file and its SHA-256, and every source file of its class
    hierarchy outside ``conformance/`` (a variant of ``linux`` depends on protocols/linux.py).

    Example::

        >>> src = protocol_source(load_protocol("linux_4_13"))
        >>> src["path"].endswith("protocols/linux_4_13.py"), len(src["sources"]) >= 1
        (True, True)
    """
    from .machine import _protocol_files

    path = os.path.abspath(protocol_module(cls).__file__)
    files = sorted(_protocol_files(cls) | {path})
    return {"path": path, "sha256": sha256_file(path),
            "sources": {f: sha256_file(f) for f in files}}


def source_digest(cls) -> str:
    """One SHA-256 over the protocol's source files (:func:`protocol_source`: its module and
    every file of its class hierarchy outside ``conformance/``), by file name and content,
    so that it does not depend on where the files lie. A reproducer records it: ``replay``
    then tells a fixed protocol from an unchanged one.

    Example::

        >>> len(source_digest(load_protocol("linux")))
        64
    """
    return digest_of(protocol_source(cls)["sources"])


def digest_of(sources: dict) -> str:
    """:func:`source_digest` of ``protocol_source(cls)["sources"]`` already read (path ->
    SHA-256), by file name and content."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted(sources, key=os.path.basename):
        h.update(f"{os.path.basename(path)} {sources[path]}\n".encode())
    return h.hexdigest()


def flushcheck_version() -> str:
    """The installed flushcheck's version (pyproject), or 'unknown' from a bare checkout.

    Example::

        >>> isinstance(flushcheck_version(), str)
        True
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flushcheck")
    except PackageNotFoundError:
        return "unknown"


#: what a commit gets when the checkout has uncommitted changes (report and certificate)
DIRTY = " (with uncommitted changes)"


def tree_dirty() -> bool | None:
    """Does the checkout flushcheck runs from have uncommitted changes to tracked files
    (then its commit alone does not say what ran)? None when git cannot tell.

    Example::

        >>> tree_dirty() in (True, False, None)
        True
    """
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def verdict_of(res) -> str:
    """A run's verdict as a certificate states it, the bounded check's (``certify
    --bound K``, ``res.bounded``) joined to the random search's: PASS, FAIL: rules,
    PROTOCOL ERROR, MODEL ERROR, INTERRUPTED, INCOMPLETE (no violation, but the bounded
    check stopped at its budget before K) or NO VERDICT.

    Example::

        >>> from conformance.certify import Result
        >>> verdict_of(Result("linux", 0, 1.0))
        'NO VERDICT'
    """
    b = getattr(res, "bounded", None)
    failures = list(res.failures) + ([b.failure] if b is not None and b.failure else [])
    if failures:
        for kind, word in ((ModelError, "MODEL ERROR"), (ProtocolError, "PROTOCOL ERROR")):
            if any(isinstance(f, kind) for f in failures):
                return word
        return "FAIL: " + ", ".join(sorted({x.rule for x in failures}))
    if res.interrupted or (b is not None and b.stopped == "interrupted"):
        return "INTERRUPTED"
    if not res.passed:
        return "NO VERDICT"
    return "PASS" if b is None or b.passed else "INCOMPLETE"


def litmus_cells(cls, max_states: int | None = None) -> list:
    """The litmus corpus under this one protocol (:func:`conformance.corpus.check_one`).

    Example::

        >>> cells = litmus_cells(load_protocol("linux"))     # doctest: +SKIP
        >>> all(c.ok for c in cells)                          # doctest: +SKIP
        True
    """
    from .corpus import check_one
    from .litmus import corpus

    return [check_one(sc, cls.name, cls, max_states) for sc in corpus()]


def build(res, cls, commit: str, argv: list | None = None, repro_paths=(),
          cells: list | None = None, bound_repro: str | None = None) -> dict:
    """The certificate of the certify run ``res`` of protocol class ``cls`` (a dict for
    JSON). ``repro_paths``: the reproducers certify saved (the first is the failure's);
    ``cells``: the protocol's litmus table (:func:`litmus_cells`), None to leave it out;
    ``bound_repro``: the bounded check's counterexample saved, if it has one."""
    import hypothesis

    from .findings import scope_lines
    from .registry import misspelt_hooks, misspelt_text
    from .report import config_text, power_text

    cfg = res.config
    counts = res.counts
    cert = {
        "format": FORMAT,
        "protocol": {"name": res.protocol, "ref": getattr(cls, "ref", res.protocol),
                     **protocol_source(cls)},
        "flushcheck": {"version": flushcheck_version(), "commit": commit,
                       "dirty": tree_dirty()},
        "python": platform.python_version(),
        "hypothesis": hypothesis.__version__,
        "command": "flushcheck " + " ".join(argv) if argv else None,
        "config": attrs.asdict(cfg),
        "config_text": config_text(res),  # with the walk's per-example machine shapes
        "run": {
            "seed": res.seed, "strict": res.strict, "engine": res.engine,
            "budget_s": res.budget_s, "max_examples": res.max_examples,
            "steps_per_example": res.steps_per_example, "chunk": res.chunk,
            "chunks": res.chunks, "examples": res.examples, "steps": res.steps,
            "elapsed_s": round(res.elapsed_s, 3), "jobs": res.jobs, "workers": res.workers,
            "database": res.database, "replayed": res.replayed,
            "interrupted": res.interrupted,
        },
        "checks": coverage.checks(counts),
        "coverage": {
            "hooks": coverage.hooks(counts),
            "windows": coverage.windows(counts),
            "unreached_hooks": coverage.unreached_hooks(counts),
            "unreached_windows": coverage.unreached_windows(counts),
        },
        "verdict": verdict_of(res),
        # what the machine left out (docs/FINDINGS.md): a PASS does not cover these paths
        "scope": scope_lines(cfg),
        # what the machine does unlike the kernel that can fail a correct protocol
        # (MachineConfig.caveats; since 2026-12-06)
        "caveats": cfg.caveats(),
        # what a PASS of this budget is worth, as the report's power line says it (the
        # certificate left it out: a user review, 2026-12-05); None for any other verdict
        "power": power_text(res) if res.passed and not res.failures else None,
        # methods named like a hook that no path calls (registry.misspelt_hooks)
        "warnings": [misspelt_text(res.protocol, m, h) for m, h in misspelt_hooks(cls)],
        "failure": None,
    }
    if getattr(res, "bounded", None) is not None:  # certify --bound K (docs/BOUNDED.md)
        b = res.bounded
        cert["bounded"] = b.to_dict()
        if b.failure is not None:
            from .boundcli import path_text

            cert["bounded"]["counterexample"] = {
                "headline": b.failure.headline(), "transitions": path_text(b.path),
                "timeline": b.failure.report(last=None)}
            if bound_repro:
                cert["bounded"]["counterexample"]["files"] = _failure_files(bound_repro)
    if cells is not None:
        cert["litmus"] = [{"scenario": c.scenario, "verdict": c.verdict, "expected": c.expected,
                           "ok": c.ok} for c in cells]
    if res.failures:
        f = res.failure
        cert["failure"] = {
            "rule": f.rule, "headline": f.headline(), "failing_chunk": res.failing_chunk,
            "first_failure_s": res.first_failure_s,
            "actions": len(f.machine.actions) if f.machine is not None else None,
            "machine": (f.machine.cfg if f.machine is not None else cfg).describe(),
            "timeline": f.report(last=None),
            "others": [x.headline() for x in res.failures[1:]],
        }
        if repro_paths:
            cert["failure"]["files"] = _failure_files(repro_paths[0])
    return cert


def _failure_files(repro: str) -> dict:
    """The failure's files beside its reproducer (those that exist), by kind."""
    from .picture import html_path

    stem = os.path.splitext(repro)[0]
    files = {"reproducer": repro, "picture": html_path(repro), "scenario": stem + ".litmus"}
    return {k: p for k, p in files.items() if os.path.exists(p)}


def write(cert: dict, out_dir: str) -> tuple[str, str]:
    """Write ``certificate.json`` and ``certificate.md`` into ``out_dir`` (created), with
    the failure's files copied beside them (the certificate then names the copies).

    Example::

        >>> write(build(res, cls, "c0ffee"), "cert")      # doctest: +SKIP
        ('cert/certificate.json', 'cert/certificate.md')
    """
    os.makedirs(out_dir, exist_ok=True)
    for fail in (cert.get("failure") or {},
                 (cert.get("bounded") or {}).get("counterexample") or {}):
        for kind, src in list(fail.get("files", {}).items()):
            dst = os.path.join(out_dir, os.path.basename(src))
            if os.path.abspath(src) != os.path.abspath(dst):
                shutil.copyfile(src, dst)
            fail["files"][kind] = os.path.basename(src)
    jpath = os.path.join(out_dir, JSON_NAME)
    with open(jpath, "w") as fh:
        json.dump(cert, fh, indent=1, sort_keys=False)
        fh.write("\n")
    mpath = os.path.join(out_dir, MD_NAME)
    with open(mpath, "w") as fh:
        fh.write(markdown(cert))
    return jpath, mpath


def markdown(cert: dict) -> str:
    """The certificate as markdown (what ``certificate.md`` holds).

    Example::

        >>> markdown(load("cert/certificate.json")).startswith("# flushcheck certificate")  # doctest: +SKIP
        True
    """
    p, run = cert["protocol"], cert["run"]
    budget = " or ".join(([f"{run['max_examples']} examples"] if run["max_examples"] else [])
                         + ([f"{run['budget_s']:g} s"] if run["budget_s"] is not None else []))
    lines = [
        f"# flushcheck certificate: {p['name']}", "",
        f"**Verdict: {cert['verdict']}** over {run['examples']:,} examples, "
        f"{run['steps']:,} steps ({run['chunks']} chunk{'' if run['chunks'] == 1 else 's'} of "
        f"{run['chunk']} examples).", "",
        "| | |", "|---|---|",
        f"| protocol | `{p['name']}` (`{p['ref']}`) |",
        f"| source | `{p['path']}` sha256 `{p['sha256']}` |",
        f"| flushcheck | {cert['flushcheck']['version']}, commit `{cert['flushcheck']['commit']}`"
        f"{DIRTY if cert['flushcheck'].get('dirty') else ''} |",
        f"| Python, Hypothesis | {cert['python']}, {cert['hypothesis']} |",
        f"| machine | {cert['config_text']} |",
        f"| seed | {run['seed']} |",
        f"| budget | {budget} |",
        f"| engine | {_engine_text(run)}{', O1 strict' if run['strict'] else ''} |",
        f"| ran | {run['examples']:,} examples, {run['steps']:,} steps in {run['elapsed_s']:.1f} s "
        f"on {run['workers']} |",
        f"| database | {run['database'] or 'none'} ({run['replayed']} saved examples replayed) |",
    ]
    if cert.get("command"):
        lines.append(f"| command | `{cert['command']}` |")
    lines += [f"| scope | {x} |" for x in cert.get("scope", [])]
    lines += [f"| caveat | {x} |" for x in cert.get("caveats", [])]
    if cert.get("power"):
        lines.append(f"| power | {cert['power']} |")
    lines += [f"| warning | {x} |" for x in cert.get("warnings", [])]
    if cert.get("bounded"):
        lines.append(f"| bounded check | {cert['bounded']['verdict']} (menu "
                     f"{','.join(cert['bounded']['menu'])}) |")
    lines += ["", "Re-run exactly this work: `flushcheck certify --reproduce certificate.json`", ""]
    lines += ["## Checks per rule", "", "| rule | checks |", "|---|---:|"]
    lines += [f"| {r} | {n:,} |" for r, n in cert["checks"].items()]
    cov = cert["coverage"]
    lines += ["", "## Hooks reached, per calling path", "",
              "| hook | calls | paths |", "|---|---:|---|"]
    for h, per in cov["hooks"].items():
        paths = ", ".join(f"{k} {v:,}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]))
        lines.append(f"| `{h}` | {sum(per.values()):,} | {paths or '**never reached**'} |")
    lines += ["", "## Race windows entered, per path", "",
              "| window | entered | per path | never reached |", "|---|---:|---|---|"]
    for w, per in cov["windows"].items():
        paths = ", ".join(f"{k} {v:,}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]))
        never = ", ".join(x for x in coverage.WINDOW_PATHS.get(w, coverage.PATHS) if x not in per)
        lines.append(f"| {w}: {coverage.WINDOWS[w]} | {sum(per.values()):,} | {paths or '-'} | "
                     f"{never or '-'} |")
    if cert.get("litmus") is not None:
        lines += ["", "## Litmus corpus under this protocol", "",
                  "| scenario | verdict | expected | |", "|---|---|---|---|"]
        lines += [f"| {c['scenario']} | {c['verdict']} | {c['expected']} | "
                  f"{'ok' if c['ok'] else '**differs**'} |" for c in cert["litmus"]]
    fail = cert.get("failure")
    if fail:
        lines += ["", "## Failure", "", f"{fail['headline']}", ""] + _files_lines(fail)
        lines += ["", "```", fail["timeline"], "```"]
    cex = (cert.get("bounded") or {}).get("counterexample")
    if cex:
        shortest = "shortest " if (cert.get("bounded") or {}).get("shortest", True) else ""
        lines += ["", f"## Bounded check: {shortest}counterexample", "", cex["headline"], "",
                  f"Transitions: {cex['transitions']}", ""] + _files_lines(cex)
        lines += ["", "```", cex["timeline"], "```"]
    return "\n".join(lines) + "\n"


def _files_lines(fail: dict) -> list:
    """A failure's files as markdown list items, and the command that replays it."""
    files = fail.get("files", {})
    lines = [f"- {label}: [{files[kind]}]({files[kind]})"
             for kind, label in (("reproducer", "reproducer"), ("picture", "picture"),
                                 ("scenario", "litmus scenario")) if kind in files]
    if "reproducer" in files:
        lines.append(f"- replay: `flushcheck replay {files['reproducer']}`")
    return lines


def _engine_text(run: dict) -> str:
    if run["engine"] == "walk":
        return "walk: the raw swarm walk (each example draws its rule mix and 20-200 actions)"
    return f"hypothesis: the Hypothesis state machine, at most {run['steps_per_example']} steps " \
        "per example"


def load(path: str) -> dict:
    """A certificate file; :class:`UsageError` if it is not one.

    Example::

        >>> load("README.md")
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: cannot read certificate README.md: Expecting value: line 1 column 1 (char 0)
    """
    from .reproducer import parse_json

    try:
        with open(path) as fh:
            cert = parse_json(fh.read())  # a file nested too deeply: a ValueError too
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read certificate {path}: {exc}") from None
    if not isinstance(cert, dict) or cert.get("format") != FORMAT:
        raise UsageError(f"{path} is not a flushcheck certificate ({FORMAT})")
    check_fields(cert, path)
    _fill_optional(cert)
    return cert


def _is_int(least=None):
    """A check: an int (not a bool: JSON's true is no seed) of at least ``least``."""
    return lambda v: v.__class__ is int and (least is None or v >= least)


class _BadKey(ValueError):
    """A check's complaint about one key of the value (``args``: the key, the text)."""


def _machine(value) -> bool:
    """A check: a dict :class:`MachineConfig` takes (a :class:`_BadKey` names a wrong key)."""
    if not isinstance(value, dict):
        return False
    fields = attrs.fields_dict(MachineConfig)
    for key, v in value.items():
        if key not in fields:
            raise _BadKey(key, f"no such machine config key (keys: {', '.join(fields)})")
        try:  # one key at a time, so the message names the one that is wrong
            attrs.evolve(MachineConfig(), **{key: v})
        except (TypeError, ValueError) as exc:
            raise _BadKey(key, refused(exc)) from None
    try:
        MachineConfig(**value)
    except (TypeError, ValueError) as exc:
        raise ValueError(refused(exc)) from None
    return True


def _bound_machine(value) -> bool:
    """A check (after :func:`_machine`): a machine within the bounded check's limits
    (``boundcli.BOUND_LIMITS``), as ``bound --config`` takes; a re-run of a larger one
    built its first state's choices for minutes."""
    from .boundcli import bound_size_error

    why = bound_size_error(MachineConfig(**value))
    if why is not None:
        raise ValueError(why)
    return True


def _menu_kinds(value) -> bool:
    """A check: a list of the bounded check's operation kinds."""
    from .search.menu import KINDS

    return isinstance(value, list) and bool(value) and all(
        isinstance(k, str) and k in KINDS for k in value)


_STR = ("a string", lambda v: isinstance(v, str))
_BOOL = ("true or false", lambda v: v.__class__ is bool)
_DICT = ("an object", lambda v: isinstance(v, dict))
_LIST = ("a list", lambda v: isinstance(v, list))
_INT = ("an integer", _is_int())
_COUNT = ("an integer >= 0", _is_int(0))
_POSITIVE = ("an integer >= 1", _is_int(1))
_MACHINE = ("a machine config", _machine)

#: what :func:`reproduce` reads from a certificate, and what each must be: a field name
#: (dots into objects, ``[]`` for each element of a list; a trailing ``?``: it may be
#: missing or null) and (what it must be, a check). A field is checked only where its
#: parent is there, and a parent comes before its fields, so a damaged certificate is one
#: line naming the field instead of a KeyError or TypeError deep in a re-run.
CERT_FIELDS = (
    ("protocol", _DICT), ("protocol.ref", _STR), ("protocol.path", _STR),
    ("protocol.sha256", _STR), ("protocol.sources?", _DICT),
    ("flushcheck", _DICT), ("flushcheck.commit", _STR),
    ("config", _MACHINE),
    ("run", _DICT), ("run.seed", _INT), ("run.strict", _BOOL),
    ("run.engine", ("one of " + ", ".join(ENGINES),
                    lambda v: isinstance(v, str) and v in ENGINES)),
    ("run.chunk", _POSITIVE), ("run.chunks", _COUNT), ("run.max_examples?", _COUNT),
    ("run.steps_per_example", _POSITIVE), ("run.examples", _COUNT), ("run.steps", _COUNT),
    ("run.replayed", _COUNT),
    ("verdict", _STR),
    ("bounded?", _DICT), ("bounded.config", _MACHINE),
    ("bounded.config", ("a machine the bounded check takes", _bound_machine)),
    ("bounded.menu", ("a list of operation kinds", _menu_kinds)), ("bounded.strict", _BOOL),
    ("bounded.bound", _POSITIVE), ("bounded.fail_k?", _POSITIVE), ("bounded.passed", _BOOL),
    ("bounded.complete_k", _COUNT), ("bounded.stopped?", _STR), ("bounded.levels", _LIST),
    ("bounded.levels[]", _DICT), ("bounded.levels[].k", _POSITIVE),
    ("bounded.levels[].states", _COUNT), ("bounded.levels[].transitions", _COUNT),
    ("bounded.levels[].depth", _COUNT), ("bounded.levels[].complete", _BOOL),
)

_MISSING = object()


def _field_values(cert: dict, field: str):
    """``(name, value)`` for each place ``field`` (a :data:`CERT_FIELDS` name, without its
    ``?``) names in ``cert``, ``value`` :data:`_MISSING` where it is absent; none where a
    parent is absent or null (the parent's own row decided whether that is allowed)."""
    places = [("", cert)]
    parts = field.split(".")
    for i, part in enumerate(parts):
        each = part.endswith("[]")
        key = part[:-2] if each else part
        last = i == len(parts) - 1
        nxt = []
        for name, obj in places:
            if not isinstance(obj, dict):
                continue
            sub = f"{name}.{key}" if name else key
            v = obj.get(key, _MISSING)
            if each:
                if isinstance(v, list):
                    nxt += [(f"{sub}[{j}]", x) for j, x in enumerate(v)]
            elif last or (v is not _MISSING and v is not None):
                nxt.append((sub, v))
        places = nxt
    return places


def check_fields(cert: dict, path: str) -> None:
    """:class:`UsageError`, naming the file and the field, unless every field of
    :data:`CERT_FIELDS` is there and of its kind.

    Example::

        >>> check_fields({"format": FORMAT, "run": []}, "c.json")
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: c.json: damaged certificate: protocol is missing
        >>> check_fields({"protocol": {"ref": 1}}, "c.json")
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: c.json: damaged certificate: protocol.ref must be a string, not 1
    """
    for field, (what, ok) in CERT_FIELDS:
        optional = field.endswith("?")
        for name, value in _field_values(cert, field.rstrip("?")):
            if value is _MISSING or value is None:
                if optional:
                    continue
                raise UsageError(f"{path}: damaged certificate: {name} is "
                                 + ("missing" if value is _MISSING else "null"))
            try:
                good = ok(value)
            except _BadKey as exc:
                raise UsageError(f"{path}: damaged certificate: {name}.{exc.args[0]}: "
                                 f"{exc.args[1]}") from None
            except ValueError as exc:
                raise UsageError(f"{path}: damaged certificate: {name}: {exc}") from None
            if not good:
                shown = repr(value)
                shown = shown if len(shown) <= 40 else shown[:37] + "..."
                raise UsageError(f"{path}: damaged certificate: {name} must be {what}, "
                                 f"not {shown}")


def _fill_optional(cert: dict) -> None:
    """Set each optional field of :data:`CERT_FIELDS` (a ``?`` row) that is missing to
    null, so that the re-run reads a missing field and a null one alike: it read
    ``run["max_examples"]`` and ``bounded["fail_k"]`` as if always there (a KeyError,
    exit 3, for a certificate without them) and ``protocol.sources`` as if never null."""
    for field, _check in CERT_FIELDS:
        if field.endswith("?"):
            parent, _, key = field[:-1].rpartition(".")
            for obj in [cert] if not parent else [v for _, v in _field_values(cert, parent)]:
                if isinstance(obj, dict):
                    obj.setdefault(key, None)


@attrs.define
class Reproduction:
    """What :func:`reproduce` found: the recorded and the new verdict, and what differs."""

    recorded: str
    verdict: str
    result: object
    source_same: bool
    notes: list = attrs.Factory(list)

    @property
    def matched(self) -> bool:
        return self.recorded == self.verdict


def reproduce(path: str, jobs: int = 1, scheduler: str | None = None,
              progress=None) -> Reproduction:
    """Re-run the work the certificate at ``path`` records; the verdicts, compared.

    The recorded number of chunks becomes the example budget (``chunks * chunk``, or the
    recorded example budget when it was smaller), so a time-budget run is re-run exactly;
    no example database (a run that replayed saved examples first may differ: said so).

    Example::

        >>> rep = reproduce("cert/certificate.json")     # doctest: +SKIP
        >>> rep.matched, rep.recorded                     # doctest: +SKIP
        (True, 'PASS')
    """
    from .certify import certify

    cert = load(path)
    p, run = cert["protocol"], cert["run"]
    cls = load_protocol(p["ref"])
    notes = []
    now = protocol_source(cls)
    same = now["sha256"] == p["sha256"]
    if not same:
        notes.append(f"the protocol's source differs: recorded sha256 {p['sha256'][:16]}..., "
                     f"now {now['sha256'][:16]}... ({now['path']})")
    for f, sha in (p["sources"] or {}).items():  # missing or null: no base file to compare
        if f != p["path"] and now["sources"].get(f) != sha:
            notes.append(f"a base protocol's source differs: {f}")
    from .reproducer import git_commit

    commit = git_commit()
    if cert["flushcheck"]["commit"] != commit:
        notes.append(f"flushcheck commit: recorded {cert['flushcheck']['commit'][:12]}, "
                     f"now {commit[:12]} (the model or oracle may differ)")
    if run["replayed"]:
        notes.append(f"the recorded run replayed {run['replayed']} saved examples first; this "
                     "one uses no database")
    cfg = MachineConfig(**cert["config"])
    budget = run["chunks"] * run["chunk"]
    if run["max_examples"]:
        budget = min(budget, run["max_examples"])
    if budget < 1:
        raise UsageError(f"{path} records no chunk: nothing to reproduce")
    _require_runnable(path, run)
    res = certify(cls, budget_s=None, max_examples=budget, seed=run["seed"],
                  strict=run["strict"], cfg=cfg, chunk=run["chunk"],
                  steps=run["steps_per_example"], jobs=jobs, scheduler=scheduler,
                  database=None, engine=run["engine"], progress=progress)
    if res.chunks != run["chunks"]:
        notes.append(f"chunks: recorded {run['chunks']}, now {res.chunks}")
    if (res.examples, res.steps) != (run["examples"], run["steps"]):
        notes.append(f"work: recorded {run['examples']:,} examples, {run['steps']:,} steps; "
                     f"now {res.examples:,} examples, {res.steps:,} steps")
    if cert.get("bounded"):
        res.bounded = _rerun_bounded(cls, cert["bounded"], jobs, notes)
    return Reproduction(cert["verdict"], verdict_of(res), res, same, notes)


def _require_runnable(path, run: dict) -> None:
    """:class:`UsageError` where the run a certificate records cannot be one certify ran: a
    chunk or steps per example beyond what certify takes (``cli.max_chunk``,
    ``cli.COUNT_LIMITS``), or more chunks than examples (every chunk counted ran at least
    one). A damaged ``run.chunks`` of 10**12 re-ran without end (a review, 2026-12-06). No
    cap on the examples themselves: a time budget has none, so a genuine run on a cluster
    may record more than any ``--examples`` certify takes.

    Example::

        >>> _require_runnable("c.json", {"chunk": 500, "engine": "walk", "chunks": 10**12,
        ...                   "examples": 5, "steps_per_example": 100})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: c.json: damaged certificate: run.chunks is 1,000,000,000,000 but run.examples only 5 (a chunk counted ran at least one example)
    """
    from .cli import COUNT_LIMITS, max_chunk

    for field, value, most in (
            ("run.chunk", run["chunk"], max_chunk(run["engine"])),
            ("run.steps_per_example", run["steps_per_example"], COUNT_LIMITS["--steps"][0])):
        if value > most:
            raise UsageError(f"{path}: damaged certificate: {field} is {value:,}, "
                             f"more than certify takes (at most {most:,})")
    if run["chunks"] > run["examples"]:
        raise UsageError(f"{path}: damaged certificate: run.chunks is {run['chunks']:,} but "
                         f"run.examples only {run['examples']:,} (a chunk counted ran at "
                         "least one example)")


def _rerun_bounded(cls, rec: dict, jobs: int, notes: list):
    """The bounded check a certificate records (``rec``), run again up to the bound it
    decided: its failing bound, its bound when it passed, or the last bound it completed
    when its budget stopped it (the partial bound after it depends on the clock, so it is
    not re-run: the result is marked stopped as recorded, and a note says so). Each level
    re-run is compared with the recorded one (states, transitions, depth); differences are
    noted."""
    from .search.bounded import Result, bounded

    cfg = MachineConfig(**rec["config"])
    menu, strict = tuple(rec["menu"]), rec["strict"]
    k = rec["fail_k"] or (rec["bound"] if rec["passed"] else rec["complete_k"])
    if k:
        new = bounded(cls, cfg, k, menu=menu, strict=strict, jobs=jobs)
    else:
        new = Result(getattr(cls, "name", cls.__name__), cfg, menu, rec["bound"], strict)
    if not rec["passed"] and not rec["fail_k"] and new.stopped is None:
        notes.append(f"bounded: K={rec['complete_k'] + 1} was stopped ({rec['stopped']}) when "
                     "recorded, partial; not re-run")
        new.bound, new.stopped = rec["bound"], rec["stopped"]
    what = ("k", "states", "transitions", "depth", "complete")
    now = {lv.k: lv for lv in new.levels}
    for lv in rec["levels"]:
        if lv["k"] > k:
            continue
        got = now.get(lv["k"])
        old = tuple(lv[w] for w in what)
        if got is None or tuple(getattr(got, w) for w in what) != old:
            notes.append(f"bounded K={lv['k']}: recorded {lv['states']:,} states, "
                         f"{lv['transitions']:,} transitions; now "
                         + (f"{got.states:,} states, {got.transitions:,} transitions"
                            if got else "not reached"))
    return new
