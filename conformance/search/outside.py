"""State a protocol keeps outside the machine: its modules' globals and its classes'
attributes, watched by the exhaustive searches.

The bounded check (:mod:`conformance.search.bounded`) and the explorer
(:mod:`conformance.search.explorer`) key a state by what the machine holds and rebuild a
state by re-executing its path from a fresh machine. A protocol that keeps state in a
module global, a class attribute or a function's default argument escapes both: two
states that differ only there get one key, and a re-execution starts from whatever the
last one left (docs/BOUNDED.md). The search would report "no violation" for states it
never looked at. Such state cannot be keyed, but it can be seen changing: :func:`look`
fingerprints it before a search and :func:`check` after (and after each chunk a worker
process runs), and a change ends the search with one line naming the value, instead of a
verdict.

What is watched, for every class of the protocol's MRO defined outside flushcheck (the
protocol's modules, ``protocols/`` helpers included): the class's attributes other than
dunders and flushcheck's own ``_fc_*`` caches (a method is read with its defaults and
closure cells); the module's globals other than dunders, modules and what other modules
define; a class the module defines, with its attributes likewise. Each is read with the
state key's :func:`conformance.search.fingerprint.fp` (``repr`` for what no rule reads
or a cyclic graph such as a logger; :func:`conformance.search.fingerprint.safe_fp` for a
graph too deep for ``repr``), as a digest, a function with its own attributes, a
``random.Random`` with its state. Not watched: objects those reach only through another
module (the ``random`` module's own generator among them), state inside other objects
implemented in C, and a value changed and changed back between two looks.

Example::

    >>> from conformance.registry import load_protocol
    >>> cls = load_protocol("linux")
    >>> check(cls, look(cls)) is None
    True
"""
from __future__ import annotations

import os
import random
from contextlib import contextmanager
from hashlib import blake2b
import sys
import types

from ..errors import UsageError
from .fingerprint import fp, safe_fp, text

_SKIP_TYPES = (types.ModuleType, types.BuiltinFunctionType)
_MISSING = object()  # a name one look has and the other has not


def _value(v):
    """``v``'s fingerprint; a function's own attributes too (``helper.calls``), a
    ``random.Random``'s state; ``repr`` where no rule reads it or its graph is cyclic."""
    try:
        with _depth(READ_DEPTH):
            got = fp(v)
    except (UsageError, RecursionError):  # what no rule reads, a cyclic graph (a logger:
        # its repr, which its lazily filled caches do not change) or a deep one, whose repr
        # recurses too: then read without recursing
        try:
            return ("repr", _repr(v))
        except RecursionError:
            try:
                got = safe_fp(v)
            except (UsageError, RecursionError):
                return ("repr", f"<a {type(v).__name__} too deep to show>")
    if isinstance(v, types.FunctionType) and v.__dict__:
        got = (got, tuple(sorted((k, _value(x)) for k, x in v.__dict__.items()
                                 if k != "__wrapped__")))
    elif isinstance(v, random.Random):
        got = (got, v.getstate())
    return got


#: how deep :func:`_value` lets the fingerprint and ``repr`` recurse, counted from where it
#: reads (the same allowance from ``look`` and from ``check``, one frame deeper: with the
#: interpreter's limit, a value at the edge read one way before a search and the other after
#: it, a false "changed during the search"; a review, 2026-12-05)
READ_DEPTH = 800


@contextmanager
def _depth(frames: int):
    """The recursion limit set ``frames`` above the current stack's depth for the block."""
    depth, f = 0, sys._getframe()
    while f is not None:
        depth, f = depth + 1, f.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _repr(v) -> str:
    """``repr(v)`` within :data:`READ_DEPTH` (RecursionError beyond it)."""
    with _depth(READ_DEPTH):
        return repr(v)


def _where(mod) -> str:
    """A module as its user knows it: its file (``protocols/luf_v12.py``, ``mine.py``)."""
    f = getattr(mod, "__file__", None)
    if not f:
        return mod.__name__
    parent = os.path.basename(os.path.dirname(f))
    return f"{parent}/{os.path.basename(f)}" if parent == "protocols" else os.path.basename(f)


def _class_items(cls, where: str) -> list:
    out = []
    for k, v in vars(cls).items():
        if k.startswith("__") or k.startswith("_fc_") or isinstance(v, (type,) + _SKIP_TYPES):
            continue
        if isinstance(v, (staticmethod, classmethod)):
            v = v.__func__
        elif isinstance(v, property):
            continue
        out.append((f"{cls.__qualname__}.{k} ({where})", v))
    return out


def _watched(proto_cls) -> list:
    """``(name, value)`` of everything :func:`look` reads, in a fixed order."""
    out = []
    seen_mods = set()
    for c in proto_cls.__mro__:
        modname = c.__module__
        if modname == "builtins" or modname.split(".")[0] == "conformance":
            continue
        mod = sys.modules.get(modname)
        where = _where(mod) if mod is not None else modname
        out += _class_items(c, where)
        if mod is None or modname in seen_mods:
            continue
        seen_mods.add(modname)
        for k, v in vars(mod).items():
            if k.startswith("__") or isinstance(v, _SKIP_TYPES):
                continue
            own = getattr(v, "__module__", modname) == modname
            if isinstance(v, type):
                if own and v not in proto_cls.__mro__:
                    out += _class_items(v, where)
                continue
            if isinstance(v, types.FunctionType) and not own:
                continue
            out.append((f"{k} ({where})", v))
    return out


def look(proto_cls) -> tuple:
    """The fingerprint of ``proto_cls``'s state outside the machine (see the module doc):
    a digest per name, so that comparing two looks never recurses (a module global nested
    5,000 deep made ``now == old`` a RecursionError, exit 3; 2026-12-05)."""
    return tuple((name, blake2b(text(_value(v)).encode(), digest_size=16).digest())
                 for name, v in _watched(proto_cls))


@contextmanager
def changes_first(proto_cls, before: tuple):
    """A :class:`ModelError` of a search (a replay that no longer does what it did: "replay
    of a passing state failed", "a failing path passed when re-run") is, when the protocol's
    state outside the machine changed meanwhile (since ``before``, a :func:`look`), that
    change's doing: the one-line :class:`UsageError` of :func:`check` naming it, instead of
    "a flushcheck bug" (exit 3, a traceback). A protocol whose hook flushed on every other
    call, counting the calls in a module global, ended ``bound`` that way (a user review,
    2026-12-06), and certify's shrink, whose explorer met it (2026-12-07 22:30): the change
    is seen only after the search, and its own replay diverged first.

    Example::

        >>> from conformance.errors import ModelError
        >>> from conformance.registry import load_protocol
        >>> cls = load_protocol("linux")
        >>> with changes_first(cls, look(cls)):  # nothing outside changed: the error stands
        ...     raise ModelError("replay of a passing state failed")
        Traceback (most recent call last):
        ...
        conformance.errors.ModelError: replay of a passing state failed
    """
    from ..errors import ModelError

    try:
        yield
    except ModelError:
        check(proto_cls, before)
        raise


def check(proto_cls, before: tuple, during: str = "the search") -> None:
    """:class:`UsageError` naming the first value that differs from ``before`` (a
    :func:`look` of the same class), or None. ``during``: what ran between the two looks,
    for the message."""
    now = dict(look(proto_cls))
    old = dict(before)
    if now == old:  # (the order of a class's attributes may change: not a change of state)
        return None
    names = [n for n, v in now.items() if old.get(n, _MISSING) != v]
    names += [n for n in old if n not in now]
    name = getattr(proto_cls, "name", proto_cls.__name__)
    raise UsageError(
        f"protocol {name} changed {names[0]} during {during}: state outside the machine, "
        "which the search's keys and re-executions cannot see (its verdict would not hold); "
        "keep protocol state on the protocol object (self), mm.proto, vma.proto or the "
        "task's tlb_ubc")

