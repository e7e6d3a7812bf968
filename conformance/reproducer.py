"""Reproducer files: a failure saved as the exact list of machine actions.

Like TigerBeetle's VOPR, a failure is reproduced from data plus the commit:
the file records the protocol, the derived configuration, the seed, the
commit and every action; :func:`replay` re-executes them on a fresh machine.

Example::

    >>> path = save(failure, "repro/linux_4_13-1.json", seed=1)   # doctest: +SKIP
    >>> replay(load(path)).headline()                              # doctest: +SKIP
    'VIOLATION S3 at step 19 ...'
"""
from __future__ import annotations

import functools
import inspect
import json
import operator
import os
import reprlib
import subprocess
import sys

import attrs

from .config import MachineConfig, refused
from .errors import VIOLATION_TYPES, Failure, ModelError, ProtocolError, UsageError

FORMAT = "flushcheck-reproducer/1"


def git_commit() -> str:
    """The commit of the checkout flushcheck runs from, or 'unknown'."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def to_dict(failure: Failure, seed=None) -> dict:
    from .registry import protocol_ref  # imported here: the registry loads protocols

    from .certificate import source_digest

    m = failure.machine
    return {
        "format": FORMAT,
        "protocol": m.proto.name,
        # what load_protocol needs to find it again (a file's path, module:Class, ...)
        "protocol_ref": protocol_ref(m.proto),
        # replay tells a fixed protocol from an unchanged one (absent in older files)
        "protocol_source_sha256": source_digest(type(m.proto)),
        "config": attrs.asdict(m.cfg),
        "strict": m.oracle.strict,
        "seed": seed,
        "commit": git_commit(),
        "rule": failure.rule,
        "verdict": failure.headline(),
        "actions": [[name, list(args)] for name, args in m.actions],
    }


def save(failure: Failure, path: str, seed=None, picture: bool = True) -> str:
    """Write ``failure``'s reproducer to ``path`` (directories created) and, with
    ``picture``, its picture beside it (``<stem>.html``, :mod:`conformance.picture`).

    A picture that cannot be drawn costs a warning on stderr, never the reproducer.

    Example::

        >>> save(failure, "repro/linux_4_13-1.json", seed=1)   # doctest: +SKIP
        'repro/linux_4_13-1.json'
        >>> os.path.exists("repro/linux_4_13-1.html")         # doctest: +SKIP
        True
    """
    write_dict(to_dict(failure, seed), path)
    if picture and failure.machine is not None:
        from .picture import html_path, write_html

        try:
            write_html(failure, html_path(path), command=f"flushcheck picture {path}")
        except Exception as exc:  # a drawing bug must not lose the verdict  # noqa: BLE001
            print(f"flushcheck: warning: no picture for {path}: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
    return path


def write_dict(data: dict, path: str, whole: bool = False) -> str:
    """Write ``data`` (a reproducer, :func:`to_dict`, or any JSON) to ``path``, directories created;
    ``whole``: whole or not at all (a file of its own, then renamed: for paths two
    processes may write at once)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    mine = f"{path}.{os.getpid()}.tmp" if whole else path
    try:
        with open(mine, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.write("\n")
        if whole:
            os.replace(mine, path)
    finally:
        if whole and os.path.exists(mine):
            os.unlink(mine)
    return path


#: the deepest nesting a flushcheck JSON file holds is a handful of levels (a reproducer's
#: reclaim frames: the object, its actions, an action, its arguments, the frames); a file
#: nested deeper is damaged, and read on it would end in a RecursionError (json's parser
#: at about 1,000 levels, repr() and json.dumps of a value below that: a traceback)
MAX_JSON_DEPTH = 32


class JsonTooDeep(ValueError):
    """A JSON document nested more than :data:`MAX_JSON_DEPTH` levels deep."""


def parse_json(text):
    """``json.loads(text)`` of a file or database entry flushcheck reads (a reproducer, a
    certificate, a saved walk run), refusing a document nested more than
    :data:`MAX_JSON_DEPTH` levels deep with :class:`JsonTooDeep`, a ValueError as any other
    malformed text: never the RecursionError the parser (or a later repr) raises on one.

    Example::

        >>> parse_json('{"a": [1, [2]]}')
        {'a': [1, [2]]}
        >>> parse_json("[" * 100000 + "]" * 100000)
        Traceback (most recent call last):
        ...
        conformance.reproducer.JsonTooDeep: JSON nested more than 32 levels deep
    """
    too_deep = JsonTooDeep(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        data = json.loads(text)
    except RecursionError:
        raise too_deep from None
    level, depth = [data], 1
    while level:  # breadth first, without recursion
        level = [v for x in level if isinstance(x, (dict, list))
                 for v in (x.values() if isinstance(x, dict) else x)]
        if level:
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise too_deep
    return data


#: every rule a reproducer can name: the oracle's and the two that are no violation
RULES = (*VIOLATION_TYPES, ProtocolError.rule, ModelError.rule)

#: the fields of a reproducer besides its protocol, config and actions, and what each must
#: be where it is there and not null (files written before a field existed lack it): what
#: replay prints or reads of them. ``strict`` as anything but a boolean was read as
#: Python's truth of it ("no" was strict)
_OPTIONAL = {
    "strict": ("true or false", lambda v: v.__class__ is bool),
    "seed": ("an integer", lambda v: v.__class__ is int),
    "protocol_ref": ("a string", lambda v: isinstance(v, str)),
    "protocol_source_sha256": ("a string", lambda v: isinstance(v, str)),
    "commit": ("a string", lambda v: isinstance(v, str)),
    # replay never reads it (it re-runs the actions and says what they hit), but a file that
    # names a rule the oracle does not have was edited or is not ours (a review, 2026-12-06)
    "rule": ("one of " + ", ".join(RULES), lambda v: v in RULES),
    "verdict": ("a string", lambda v: isinstance(v, str)),
}


def load(path: str) -> dict:
    """Read and validate a reproducer; :class:`UsageError` with one line if it is corrupt
    (every action's name, arity and arguments included: :func:`check_actions`; the other
    fields' types: :data:`_OPTIONAL`)."""
    try:
        with open(path) as fh:
            data = parse_json(fh.read())
    except FileNotFoundError:
        raise UsageError(f"reproducer {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"reproducer {path}: a directory, not a reproducer file") from None
    except OSError as exc:  # unreadable: permissions, an I/O error
        raise UsageError(f"reproducer {path}: cannot read it ({exc.strerror or exc})") from None
    except JsonTooDeep as exc:
        raise UsageError(f"reproducer {path}: not a reproducer ({exc})") from None
    except ValueError as exc:
        raise UsageError(f"reproducer {path}: not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"reproducer {path}: not a {FORMAT} file")
    acts = data.get("actions")
    if not isinstance(acts, list) or not all(
            isinstance(a, list) and len(a) == 2 and isinstance(a[0], str) and isinstance(a[1], list)
            for a in acts):
        raise UsageError(f"reproducer {path}: malformed 'actions'")
    if not acts and " at step 0" not in str(data.get("verdict")):
        # a failure at boot (a hook stuck in init_mm) has none; any other reproducer without
        # actions replayed to "PASS: did not reproduce", exit 0
        raise UsageError(f"reproducer {path}: no actions, and its verdict is no failure at "
                         "boot (step 0): nothing to replay")
    for name, kind in (("protocol", str), ("config", dict)):
        if name not in data:
            raise UsageError(f"reproducer {path}: no {name!r}")
        if not isinstance(data[name], kind):  # it said "missing" of one that was there
            raise UsageError(f"reproducer {path}: {name!r} is {type(data[name]).__name__} "
                             f"{str(data[name])[:40]!r}, not a "
                             f"{'string' if kind is str else 'JSON object'}")
    for key, (what, ok) in _OPTIONAL.items():
        value = data.get(key)
        if value is not None and not ok(value):
            raise UsageError(f"reproducer {path}: {key!r} must be {what}, not {_shown(value)}")
    try:
        cfg = MachineConfig(**data["config"])
    except (TypeError, ValueError) as exc:  # an unknown key, or a validator's (sizes >= 1)
        raise UsageError(f"reproducer {path}: bad config ({refused(exc)})") from None
    try:
        check_actions(cfg, acts)
    except UsageError as exc:
        raise UsageError(f"reproducer {path}: {exc}") from None
    return data


#: the actions over a batch of folios (``(cpu, frames, ...)``; those of
#: :data:`NESTED_ACTIONS` may add the batch of a nested reclaim pass)
FOLIO_ACTIONS = ("reclaim", "migrate", "compact", "move_pages")

#: the folio actions whose allocation may enter reclaim again: ``(cpu, frames, nested)``
NESTED_ACTIONS = ("reclaim", "move_pages")

ACTIONS = ("advance", "fault", "reclaim", "migrate", "compact", "move_pages", "munmap", "mmap", "mprotect", "write",
           "user_access", "fill", "evict", "switch_mm", "consumer_alloc", "consumer_free",
           "writeback", "madvise", "mremap", "truncate", "exit_mmap", "fork")


def protocol_of(data: dict):
    """The protocol a reproducer names, loaded from ``protocol_ref`` (a built-in name, a
    file's path, ``module:Class`` or an entry point), or ``protocol`` in files written
    before it."""
    from .registry import load_protocol

    ref = data.get("protocol_ref")
    cls = load_protocol(ref if isinstance(ref, str) else data["protocol"])
    if cls.name != data["protocol"]:  # replay printed one name and ran the other's code
        raise UsageError(f"reproducer names protocol {data['protocol']!r}, but its "
                         f"protocol_ref {ref!r} loads {cls.name!r}")
    return cls


def replay(data: dict, proto_cls=None):
    """Re-run a reproducer. Returns the :class:`Failure` it hits, or None if it passes.
    ``proto_cls``: the protocol, already loaded (else :func:`protocol_of`)."""
    cls = proto_cls or protocol_of(data)
    return replay_actions(cls, MachineConfig(**data["config"]), bool(data.get("strict")),
                          data["actions"])


def _index(value, n: int) -> bool:
    """Is ``value`` a number in ``0..n-1`` (a CPU, page, mm, file, file page, frame)?"""
    return value.__class__ is int and 0 <= value < n  # not a bool: True is no CPU number


def _indexes(value, n: int) -> bool:
    """Is ``value`` a list of numbers in ``0..n-1`` (a reclaim's or migration's frames)?"""
    return value.__class__ in (list, tuple) and all(_index(v, n) for v in value)


#: each kind of action argument: (does ``value`` fit, given its bound; what it must be). The
#: bound is a config field's value (a count of CPUs, pages, ...) or a constant (choices)
_KINDS = {
    "index": (_index, lambda n: f"an integer in 0..{n - 1}"),
    "indexes": (_indexes, lambda n: f"a list of integers in 0..{n - 1}"),
    "index_or_none": (lambda v, n: v is None or _index(v, n),
                      lambda n: f"null or an integer in 0..{n - 1}"),
    # a page count: at least one page, and no more than the address space holds
    "npages": (lambda v, n: v.__class__ is int and 1 <= v <= n, lambda n: f"an integer in 1..{n}"),
    # an operation's number, an eviction's pick (modulo the entries cached): no upper bound
    # the file can be checked against; an operation not in flight is refused as it replays
    "count": (lambda v, _: v.__class__ is int and v >= 0, lambda _: "an integer >= 0"),
    "bool": (lambda v, _: v.__class__ is bool, lambda _: "true or false"),
    "choice": (lambda v, c: v.__class__ is str and v in c,
               lambda c: "one of " + ", ".join(json.dumps(x) for x in c)),
}


#: what each parameter of a Machine action takes, by its name in the method's signature:
#: (kind of :data:`_KINDS`, bound): the bound is the MachineConfig field that counts what
#: it indexes, or for a choice the name of the :mod:`conformance.machine` constant listing them
_PARAMS = {
    "op_id": ("count", None), "index": ("count", None),
    "cpu": ("index", "ncpus"),
    "vpage": ("index", "vpages"), "start": ("index", "vpages"),
    "old_start": ("index", "vpages"), "new_start": ("index", "vpages"),
    "npages": ("npages", "vpages"),
    "mm_id": ("index", "nmms"), "child": ("index", "nmms"),
    "file": ("index", "nfiles"), "pgoff": ("index", "file_pages"),
    "frames": ("indexes", "nframes"), "nested": ("indexes", "nframes"),
    "write": ("bool", None), "writable": ("bool", None), "fixed": ("bool", None),
    "advice": ("choice", "MADV_ADVICE"),
}
#: a parameter one action takes more of than its name says: mmap's ``file`` None is anonymous
_PARAM_OF = {("mmap", "file"): ("index_or_none", "nfiles")}

#: action name -> (((position, parameter, test, what, bound of cfg), ...), ((start position,
#: parameter, npages position), ...)): built once per action from its signature (_spec)
_SPECS: dict = {}
_SIGNATURES: dict = {}


def _signature(name: str):
    """The signature of Machine method ``name`` (inspected once: replays check every action)."""
    sig = _SIGNATURES.get(name)
    if sig is None:
        from .machine import Machine

        sig = _SIGNATURES[name] = inspect.signature(getattr(Machine, name))
    return sig


def _spec(name: str) -> tuple:
    """Action ``name``'s checks (:data:`_SPECS`), from the Machine method's parameters: each
    one's kind by :data:`_PARAMS`, and each ``*start`` with the action's ``npages`` as a
    range that must fit the address space (mremap: its source and its destination)."""
    from . import machine

    params = list(_signature(name).parameters)[1:]
    checks = []
    for n, p in enumerate(params):
        kind, bound = _PARAM_OF.get((name, p)) or _PARAMS.get(p, (None, None))
        if kind is None:  # a new action parameter: say so, never replay it unchecked
            raise TypeError(f"conformance.reproducer: no check for parameter {p!r} of action "
                            f"{name}: add it to _PARAMS")
        if kind == "choice":
            get = functools.partial(_constant, getattr(machine, bound))
        else:
            get = operator.attrgetter(bound) if bound else _no_bound
        checks.append((n, p) + _KINDS[kind] + (get,))
    ranges = tuple((n, p, params.index("npages")) for n, p in enumerate(params)
                   if p.endswith("start") and "npages" in params)
    spec = _SPECS[name] = (tuple(checks), ranges)
    return spec


def _constant(value, cfg):
    """The bound of a choice: ``value``, whatever the config."""
    return value


def _no_bound(cfg) -> None:
    """The bound of a kind that has none (a count, a boolean)."""
    return None


def _shown(value) -> str:
    """``value`` as the reproducer's JSON spells it (``null``, ``true``, ``"x"``), cut to 40
    characters (a message is one line).

    Example::

        >>> _shown([list(range(30))])
        '[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1...'
    """
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = reprlib.repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def arg_error(cfg: MachineConfig, name: str, args) -> str | None:
    """What keeps Machine action ``name`` from taking ``args`` on a machine of ``cfg``, or
    None: an argument of the wrong type (a string, a float, a list, null or a bool where a
    number goes, a number where true/false goes), or out of range (a CPU, page, mm, file,
    file page or frame the machine does not have, a negative count, a range past the last
    page, an unknown advice). Such arguments do not find a model bug; they would crash the
    model. The one check of an action's arguments: a reproducer's (:func:`_check_args`) and
    a litmus line's (:mod:`conformance.litmus`). Arguments missing are left to the caller
    (:func:`_arity_error`). Cheap: a few comparisons per action (replays run while
    shrinking).

    Example::

        >>> arg_error(MachineConfig(), "munmap", [0, 3, 2])  # v3, v4: there is no v4
        'start 3 + npages 2 runs past the last page (vpages=4)'
        >>> arg_error(MachineConfig(), "truncate", [0, 0, 1]) is None
        True
    """
    checks, ranges = _SPECS.get(name) or _spec(name)
    nargs = len(args)
    for n, param, test, what, bound in checks:
        if n < nargs:
            b = bound(cfg)
            if not test(args[n], b):
                return f"{param} {_shown(args[n])} is not {what(b)}"
    for n, param, k in ranges:
        if n < nargs and k < nargs and args[n] + args[k] > cfg.vpages:
            return (f"{param} {args[n]} + npages {args[k]} runs past the last page "
                    f"(vpages={cfg.vpages})")
    return None


def _check_args(cfg: MachineConfig, i: int, name: str, args) -> None:
    """:class:`UsageError` naming action ``i`` if ``name`` cannot take ``args`` on a machine
    of ``cfg`` (:func:`arg_error`). Such a file (hand-edited, foreign, corrupt) does not
    apply.

    Example::

        >>> _check_args(MachineConfig(), 3, "munmap", [0, 1, "x"])
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: action 3 (munmap): npages "x" is not an integer in 1..4
    """
    bad = arg_error(cfg, name, args)
    if bad is not None:
        raise UsageError(f"action {i} ({name}): {bad}")


def check_actions(cfg: MachineConfig, actions) -> None:
    """:class:`UsageError` naming the first action of ``actions`` (``[name, args]`` pairs, as
    a reproducer holds them) that no machine of ``cfg`` can run: an unknown name, a wrong
    number of arguments, or an argument of the wrong type or range (:func:`_check_args`).
    Run on the whole list before anything replays, so a corrupt file is refused up front
    rather than found by the model halfway through.

    Example::

        >>> check_actions(MachineConfig(), [["fill", [0, 1]], ["evict", [0, -1]]])
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: action 1 (evict): index -1 is not an integer >= 0
    """
    for i, (name, args) in enumerate(actions):
        if name not in ACTIONS:
            raise UsageError(f"unknown action {name!r} at index {i}")
        bad = _arity_error(i, name, args)
        if bad is not None:
            raise bad
        _check_args(cfg, i, name, args)


def _arity_error(i: int, name: str, args) -> UsageError | None:
    """The :class:`UsageError` for action ``name`` called with a wrong number of arguments,
    or None when ``args`` fit its signature."""
    try:
        _signature(name).bind(None, *args)
    except TypeError as exc:
        return UsageError(f"action {i} ({name}): {exc}")
    return None


def replay_actions(cls, cfg: MachineConfig, strict: bool, actions, machine=None):
    """Run ``actions`` on a fresh machine (or on ``machine``, fresh from ``Machine(cls, cfg,
    strict=strict)``), then quiesce; the :class:`Failure` hit, or None (the fresh machine of
    a passed replay is disposed of: :meth:`Machine.dispose`)."""
    from .machine import Machine

    m = machine if machine is not None else Machine(cls, cfg, strict=strict)
    try:
        for i, (name, args) in enumerate(actions):
            if name not in ACTIONS:
                raise UsageError(f"reproducer: unknown action {name!r} at index {i}")
            args = [tuple(a) if isinstance(a, list) else a for a in args]
            _check_args(m.cfg, i, name, args)
            try:
                getattr(m, name)(*args)
            except TypeError:
                bad = _arity_error(i, name, args)
                if bad is not None:
                    raise bad from None
                raise
        m.drain()
        m.check_quiescent()
    except Failure as f:
        return f
    except UsageError as exc:
        raise UsageError(f"reproducer does not apply to this model: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a model bug replays as one, never a traceback
        return ModelError.uncaught(exc, m)
    if machine is None:
        m.dispose()  # a passed replay's machine of our own (shrinking drops thousands)
    return None
