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

import inspect
import json
import os
import subprocess
import sys

import attrs

from .config import MachineConfig
from .errors import Failure, ModelError, UsageError

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

    m = failure.machine
    return {
        "format": FORMAT,
        "protocol": m.proto.name,
        # what load_protocol needs to find it again (a file's path, module:Class, ...)
        "protocol_ref": protocol_ref(m.proto),
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
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(to_dict(failure, seed), fh, indent=1)
        fh.write("\n")
    if picture and failure.machine is not None:
        from .picture import html_path, write_html

        try:
            write_html(failure, html_path(path), command=f"flushcheck picture {path}")
        except Exception as exc:  # a drawing bug must not lose the verdict  # noqa: BLE001
            print(f"flushcheck: warning: no picture for {path}: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
    return path


def load(path: str) -> dict:
    """Read and validate a reproducer; :class:`UsageError` with one line if it is corrupt."""
    try:
        with open(path) as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise UsageError(f"reproducer {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"reproducer {path}: not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"reproducer {path}: not a {FORMAT} file")
    acts = data.get("actions")
    if not isinstance(acts, list) or not all(
            isinstance(a, list) and len(a) == 2 and isinstance(a[0], str) and isinstance(a[1], list)
            for a in acts):
        raise UsageError(f"reproducer {path}: malformed 'actions'")
    if not isinstance(data.get("protocol"), str) or not isinstance(data.get("config"), dict):
        raise UsageError(f"reproducer {path}: missing 'protocol' or 'config'")
    try:
        MachineConfig(**data["config"])
    except (TypeError, ValueError) as exc:  # an unknown key, or a validator's (sizes >= 1)
        raise UsageError(f"reproducer {path}: bad config ({exc})") from None
    return data


ACTIONS = ("advance", "fault", "reclaim", "migrate", "munmap", "mmap", "mprotect", "write",
           "user_access", "fill", "evict", "switch_mm", "consumer_alloc", "consumer_free",
           "writeback", "madvise", "mremap", "truncate", "exit_mmap", "fork")


def replay(data: dict, proto_cls=None):
    """Re-run a reproducer. Returns the :class:`Failure` it hits, or None if it passes.

    The protocol is loaded from ``protocol_ref`` (a built-in name, a file's path,
    ``module:Class`` or an entry point), or ``protocol`` in files written before it.
    """
    from .registry import load_protocol

    ref = data.get("protocol_ref")
    cls = proto_cls or load_protocol(ref if isinstance(ref, str) else data["protocol"])
    return replay_actions(cls, MachineConfig(**data["config"]), bool(data.get("strict")),
                          data["actions"])


#: the config field bounding each indexing parameter of an action ("frames": each frame)
_RANGES = {"cpu": "ncpus", "vpage": "vpages", "start": "vpages", "old_start": "vpages",
           "new_start": "vpages", "mm_id": "nmms", "child": "nmms", "pgoff": "file_pages",
           "frames": "nframes", "nested": "nframes"}
#: action name -> ((position, parameter name, config field), ...), from its signature
_INDEXES: dict = {}


def _check_args(cfg: MachineConfig, i: int, name: str, args: list) -> None:
    """:class:`UsageError` if action ``name`` cannot take ``args`` on a machine of ``cfg``
    (a hand-edited or foreign reproducer: a CPU, page, mm, file page or frame the machine
    does not have, the wrong number of arguments); such a file does not apply, it does not
    find a model bug. Cheap: a few comparisons per action (replays run while shrinking)."""
    idx = _INDEXES.get(name)
    if idx is None:
        from .machine import Machine

        params = list(inspect.signature(getattr(Machine, name)).parameters)[1:]
        idx = _INDEXES[name] = tuple((n, p, _RANGES[p]) for n, p in enumerate(params)
                                     if p in _RANGES)
    for n, param, field in idx:
        if n >= len(args):
            continue  # too few arguments: the call's own TypeError says so
        limit = getattr(cfg, field)
        value = args[n]
        for v in (value if param in ("frames", "nested") and value.__class__ is tuple
                  else (value,)):
            if v.__class__ is not int or not 0 <= v < limit:
                raise UsageError(f"action {i} ({name}): {param} {v!r} is not in 0..{limit - 1}")


def _arity_error(i: int, name: str, args: list) -> UsageError | None:
    """The :class:`UsageError` for action ``name`` called with a wrong number of arguments,
    or None when ``args`` fit its signature."""
    from .machine import Machine

    try:
        inspect.signature(getattr(Machine, name)).bind(None, *args)
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
