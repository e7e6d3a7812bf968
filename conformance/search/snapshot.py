"""Undo of a kernel operation's start, for the bounded check (docs/BOUNDED.md, "What makes
it faster").

A machine cannot be copied (its operations are generators), so the bounded check rebuilds
a state by re-executing its path. A *start* transition runs no generator of the operations
already in flight: it creates a new operation and runs the new generator to its first
interleaving point. Everything it can change is data reachable from the machine, so it
can be undone in place: :func:`snapshot` records, for every mutable object reachable from
the machine (generically: every slot, ``__dict__`` entry, list item, dict key and value,
set member, tuple item; not into generators, frames, functions or greenlets), its shallow
contents; :func:`Snapshot.restore` closes the generators started since (and the hook
greenlets they paused: their ``finally`` blocks run *before* the restore, not at garbage
collection afterwards) and writes every recorded object back, identity kept, dict order
included. Objects created since become unreachable.

Why the new operation cannot change anything the walk does not record: its code reaches
objects only through the machine (its arguments, the machine's parts) and the objects it
creates; an object that only another operation's frame holds is out of its reach. Protocol
state is reached through the machine (``m.proto``, ``mm.proto``, ``vma.proto``,
``op.tlb_ubc``). A protocol keeping state in a module global or a class attribute would
escape the walk, as it escapes the state key and the reproducer (each of which assumes the
same); the searches watch such state and stop when it changes
(:mod:`conformance.search.outside`). ``bounded(..., check_undo=True)`` compares the
restored machine's key with the key before at every start, and the child's key with the
key of a re-execution.

The history (``trace.events``, ``actions``, ``trace.step``) is not walked: it only grows,
and is cut back to its length. An iterator reachable from the machine (a protocol's
``itertools.count``, or a generator other than an operation's own) cannot be set back: the
snapshot is then not ``exact``, and the bounded check re-executes that parent's starts
instead of undoing them.

Example::

    >>> from conformance.boundcli import BOUND_CONFIG
    >>> from conformance.machine import Machine
    >>> from conformance.registry import load_protocol
    >>> from conformance.search.statekey import key
    >>> m = Machine(load_protocol("linux"), BOUND_CONFIG)
    >>> before = key(m)
    >>> s = snapshot(m)
    >>> op = m.munmap(0, 0, 1)
    >>> key(m) != before, len(m.ops)
    (True, 1)
    >>> s.restore()
    >>> key(m) == before, m.ops, m.tlbs.cpus[0].op
    (True, [], None)
"""
from __future__ import annotations

import array
import collections
import functools
import types

from greenlet import greenlet

from ..machine import _close_op
from ..trace import Trace
from .fingerprint import slots_of

_ATOMS = frozenset({int, str, bool, float, type(None), bytes, complex, range, slice})
#: values not walked: code, not state. A function's closure cells and defaults, a bound
#: method's object and a partial's arguments are walked (the state key reads them since
#: 2026-12-05, so the undo must restore them: a counter in a closure failed check_undo)
_SKIP_TYPES = frozenset({types.BuiltinFunctionType, types.BuiltinMethodType, type,
                         types.ModuleType, types.FrameType, types.CodeType,
                         types.MethodWrapperType, types.WrapperDescriptorType})
#: Machine attributes not walked: the history (cut back instead), coverage counters, and
#: values that never change (config, the protocol's files)
_MACHINE_SKIP = frozenset({"trace", "actions", "coverage", "_w_pending", "_w_stale",
                           "_w_beside", "cfg",
                           "_proto_files", "_fts_overridden"})
_MISSING = object()
_L_SET = list.__setitem__
_D_CLEAR, _D_UPDATE = dict.clear, dict.update
_S_CLEAR, _S_UPDATE = set.clear, set.update
_ALL = slice(None)
_SETATTR, _DELATTR = object.__setattr__, object.__delattr__

#: type -> how to record it: "l" list, "d" dict, "s" set, "t" tuple/frozenset (walked, not
#: recorded), "q" deque, "b" bytearray, "a" array.array, "o" an object (slots and/or
#: __dict__), "i" an iterator or generator (not restorable: the snapshot is not exact
#: unless it is an operation's generator), None: an atom or code (neither); a container subclass with a ``__dict__`` adds
#: "+" (its attributes are recorded as an "o" record too)
_KIND: dict = {}


def _kind(t):
    k = _KIND.get(t)
    if k is None and t not in _KIND:
        if t in _ATOMS or t in _SKIP_TYPES or issubclass(t, greenlet):
            k = None
        elif issubclass(t, list):
            k = "l"
        elif issubclass(t, dict):
            k = "d"
        elif issubclass(t, set):
            k = "s"
        elif issubclass(t, (tuple, frozenset)):
            k = "t"
        elif issubclass(t, collections.deque):
            k = "q"
        elif issubclass(t, bytearray):
            k = "b"
        elif issubclass(t, array.array):
            k = "a"
        elif t is types.FunctionType:
            k = "f"
        elif t is types.CellType:
            k = "c"
        elif t is types.MethodType:
            k = "m"
        elif issubclass(t, functools.partial):
            k = "p"
        elif hasattr(t, "__next__"):  # an iterator: its position is not data we can set
            k = "i"
        else:
            k = "o"
        if k is not None and k not in ("o", "i") and any("__dict__" in c.__dict__
                                                         for c in t.__mro__ if c is not object):
            k += "+"
        _KIND[t] = k
    return k


class Snapshot:
    """The recorded contents of a machine (:func:`snapshot`); :meth:`restore` puts them
    back, as often as needed."""

    __slots__ = ("m", "records", "ops", "nevents", "nactions", "step", "exact")

    def restore(self) -> None:
        """Close what started since the snapshot, then write every recorded object back."""
        m = self.m
        old = self.ops
        for op in m.ops:
            if op not in old:
                _close_op(op)  # its finally blocks run now, before the restore overwrites
        for obj, kind, saved in self.records:
            if kind == "o":
                slots, d = saved
                for name, v in slots:
                    if v is _MISSING:
                        try:
                            _DELATTR(obj, name)
                        except AttributeError:
                            pass
                    else:
                        _SETATTR(obj, name, v)
                if d is not None:
                    od = obj.__dict__
                    _D_CLEAR(od)
                    _D_UPDATE(od, d)
            elif kind == "l":
                _L_SET(obj, _ALL, saved)
            elif kind == "d":
                _D_CLEAR(obj)
                _D_UPDATE(obj, saved)
            elif kind == "s":
                _S_CLEAR(obj)
                _S_UPDATE(obj, saved)
            elif kind == "q":
                obj.clear()
                obj.extend(saved)
            elif kind == "f":
                obj.__defaults__, obj.__kwdefaults__ = saved
            elif kind == "c":
                if saved is _MISSING:
                    try:
                        del obj.cell_contents
                    except ValueError:
                        pass
                else:
                    obj.cell_contents = saved
            else:  # "b", "a": a slice assignment keeps the object
                obj[:] = saved
        del m.trace.events[self.nevents:]
        del m.actions[self.nactions:]
        m.trace.step = self.step


def snapshot(m) -> Snapshot:
    """Record every mutable object reachable from machine ``m`` (module doc)."""
    records = []
    exact = True
    op_gens = {id(op.gen) for op in m.ops}  # the operations' code: a start advances none
    seen = set()
    add = seen.add
    push_rec = records.append
    stack = []
    push = stack.append
    extend = stack.extend
    # the machine itself, minus the history and constant attributes
    d = m.__dict__
    keep = {k: v for k, v in d.items() if k not in _MACHINE_SKIP}
    push_rec((m, "o", ((), dict(d))))
    add(id(m))
    extend(keep.values())
    kind_of = _KIND.get
    while stack:
        x = stack.pop()
        t = x.__class__
        k = kind_of(t, 0)
        if k == 0:
            k = _kind(t)
        if k is None:
            continue
        if k == "i":  # an iterator, or a generator but an operation's own, in the
            # protocol's state: a start may advance it, the key reads its position
            # (fingerprint's __reduce__), and no restore can set it back; the search
            # re-executes such a parent's starts instead (a review, 2026-12-07: an
            # itertools.count advanced by init_task made the undone search keep states no
            # run has, 9,061 at K=2 where re-execution finds 7,278)
            if id(x) not in op_gens:
                exact = False
            continue
        i = id(x)
        if i in seen:
            continue
        add(i)
        if k[-1] == "+":  # a container subclass's own attributes, then its content
            od = dict(x.__dict__)
            push_rec((x, "o", ((), od)))
            extend(od.values())
            k = k[:-1]
        if k == "t":
            extend(x)
        elif k == "l":
            push_rec((x, "l", list(x)))
            extend(x)
        elif k == "d":
            saved = dict(x)
            push_rec((x, "d", saved))
            extend(saved)
            extend(saved.values())
        elif k == "s":
            push_rec((x, "s", set(x)))
            extend(x)
        elif k == "q":
            push_rec((x, "q", list(x)))
            extend(x)
        elif k == "b":
            push_rec((x, "b", bytes(x)))
        elif k == "a":
            push_rec((x, "a", array.array(x.typecode, x)))
        elif k == "f":  # the defaults can be replaced, the cells' contents set
            push_rec((x, "f", (x.__defaults__, x.__kwdefaults__)))
            if x.__defaults__:
                extend(x.__defaults__)
            if x.__kwdefaults__:
                push(x.__kwdefaults__)
            if x.__closure__:
                extend(x.__closure__)
        elif k == "c":
            try:
                v = x.cell_contents
            except ValueError:  # not bound yet
                v = _MISSING
            push_rec((x, "c", v))
            if v is not _MISSING:
                push(v)
        elif k == "m":  # a bound method: its object (its function is code, walked as one)
            push(x.__self__)
            push(x.__func__)
        elif k == "p":  # a partial's fields cannot be replaced; what they hold is walked
            push(x.func)
            extend(x.args)
            push(x.keywords)
        else:
            if issubclass(t, Trace):
                continue
            slots = tuple([(s, getattr(x, s, _MISSING)) for s in slots_of(t)])
            od = getattr(x, "__dict__", None)
            od = dict(od) if od is not None else None
            push_rec((x, "o", (slots, od)))
            for _s, v in slots:
                if v is not _MISSING:
                    push(v)
            if od:
                extend(od.values())
    s = Snapshot()
    s.m, s.records, s.ops, s.exact = m, records, list(m.ops), exact
    s.nevents, s.nactions, s.step = len(m.trace.events), len(m.actions), m.trace.step
    return s
