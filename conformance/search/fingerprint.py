"""A fast, generic fingerprint of machine values for the bounded check's state keys.

The same content as the explorer's reflective :func:`conformance.search.explorer.fingerprint`
(what it reads, and why, is documented there), built faster: the first time a class is
seen, a function for it is generated from its ``__slots__`` (Python source compiled once:
one attribute read per slot, no per-value type tests for the atoms), so a field another
change adds to a model class is in every later key without a list to update. Classes
without slots (protocol objects, their per-task and per-mm state) are read through their
``__dict__``, sorted; dicts in insertion order; sets sorted.

References stay references: an operation, an mm or a CPU inside another value is
``("op", id)`` (``"mm"``, ``"cpu"``), the machine's big parts (Machine, Kernel, PhysMem...)
and callables their names; :func:`top` reads an mm or a CPU itself. A slot named ``inst``
(a PTE instance number) is replaced by its rank among the numbers the state holds
(:func:`conformance.search.explorer._inst`), set by :func:`ranked` for one key.

Example::

    >>> from conformance.hw.tlb import TlbEntry
    >>> fp(TlbEntry(3, True, False, 7)) == ('TlbEntry', 3, True, False, 7)
    True
"""
from __future__ import annotations

import types
from bisect import bisect_left

_ATOMS = frozenset({int, str, bool, float, type(None), bytes})
AT = _ATOMS  # the name generated code uses
_OPAQUE = frozenset({"Machine", "Kernel", "Arch", "Tlbs", "Trace", "Oracle", "PhysMem",
                     "Registry"})
_REFS = {"Op": "op", "Mm": "mm", "Cpu": "cpu"}
#: ``__dict__`` entries no key reads: a protocol's view of the arch (the machine's arch is read
#: as a part of its own) and a counted protocol's coverage counters (``_fc_coverage``,
#: conformance/coverage.py: history, never read by a hook; certify's failures run on counted
#: classes, and counters in the key kept the explorer from merging states that differ only
#: in how often a hook was called)
UNREAD = frozenset({"arch", "_fc_coverage"})

#: (sorted instance numbers, the same as a set) while a key is taken, else None
_RANKS = None
#: type -> its fingerprint function; _TOP: the same for mm and CPU read themselves
_FN: dict = {}
_TOP: dict = {}


def ranked(ranks) -> None:
    """Set (a ``(sorted list, set)`` pair) or clear (None) the instance ranks for ``inst``:
    the start and the end of one key. While they are set, the fingerprint of each object
    of a model class is taken once (``_BOX.memo``, by identity: the objects are the
    machine's, alive and unchanged while the key is taken; an operation's frames hold the
    same VMAs, locks and gathers as the mms do)."""
    global _RANKS
    _RANKS = ranks
    _BOX.memo = {} if ranks is not None else None


def _memo(f):
    """``f`` with the memo of :func:`ranked` (the generated functions have it inline)."""
    def memo(x):
        m = _BOX.memo
        if m is None:
            return f(x)
        i = id(x)
        r = m.get(i)
        if r is None:
            r = m[i] = f(x)
        return r
    return memo


class _Box:
    """``memo``: id(object) -> its fingerprint while one key is taken (:func:`ranked`), else
    None; one object that the generated functions hold, so a new memo reaches them all."""

    __slots__ = ("memo",)

    def __init__(self) -> None:
        self.memo = None


_BOX = _Box()


def R(v):
    """An instance number as its rank (:func:`conformance.search.explorer._inst`); itself when no
    ranks are set."""
    if _RANKS is None:
        return v
    order, known = _RANKS
    k = bisect_left(order, v)
    return 2 * k if v in known else 2 * k + 1


def fp(x):
    """The fingerprint of any value the machine holds (hashable, marshal-able)."""
    t = x.__class__
    if t in _ATOMS:
        return x
    f = _FN.get(t)
    if f is None:
        f = _FN[t] = _build(t, top=False)
    return f(x)


FP = fp


def top(x):
    """The fingerprint of an mm or a CPU (or anything) read itself, not as a reference."""
    t = x.__class__
    f = _TOP.get(t)
    if f is None:
        f = _TOP[t] = _build(t, top=True)
    return f(x)


def _seq(x):
    if _ATOMS.issuperset(map(type, x)):  # atoms only (the common case): marshal takes it as
        return x if x.__class__ is tuple else tuple(x)  # it is
    return tuple([v if v.__class__ in _ATOMS else fp(v) for v in x])


def _dict(x):
    if _ATOMS.issuperset(map(type, x.values())) and _ATOMS.issuperset(map(type, x)):
        return tuple(x.items())
    return tuple([(k if k.__class__ in _ATOMS else fp(k), v if v.__class__ in _ATOMS else fp(v))
                  for k, v in x.items()])


def opaque(cls, name: str) -> None:
    """Read instances of ``cls`` as ``name`` inside other values (:func:`top` still reads
    them): the machine's protocol object, which has a part of its own, is held by many
    operation frames."""
    _FN[cls] = lambda x: name


def _set(x):
    return ("set",) + tuple(sorted((fp(v) for v in x), key=repr))


_SLOTS: dict = {}


def slots_of(cls) -> tuple:
    """Every slot of ``cls`` and its bases, base classes first (cached per class)."""
    got = _SLOTS.get(cls)
    if got is None:
        got = _SLOTS[cls] = _slots_of(cls)
    return got


def _slots_of(cls) -> tuple:
    names = []
    for c in reversed(cls.__mro__):
        s = c.__dict__.get("__slots__", ())
        for n in ((s,) if isinstance(s, str) else s):
            if n not in names and n != "__weakref__" and n != "__dict__":
                names.append(n)
    return tuple(names)


def _build(t, top: bool):
    """The fingerprint function for instances of ``t``."""
    name = t.__name__
    # containers by content, subclasses too (as the explorer's fingerprint reads them): a
    # pointed protocol's shared state is a SharedDict or SharedList (conformance/hookpoints.py),
    # slotted with no slots of its own, which the object branches below would read as its
    # bare class name
    if issubclass(t, (tuple, list)):
        return _seq
    if issubclass(t, dict):
        return _dict
    if issubclass(t, (set, frozenset)):
        return _set
    if not top and name in _REFS:
        tag = _REFS[name]
        return lambda x: (tag, x.id)
    special = SPECIAL.get(t)
    if special is not None:
        return lambda x: special(x, fp)
    if name in _OPAQUE or t is type:
        return lambda x: name
    if t is types.GeneratorType:
        return lambda x: "generator"
    if hasattr(t, "__next__") and hasattr(t, "__reduce__"):  # list/range/dict iterators
        def it(x):
            try:
                return (name, fp(x.__reduce__()[1:]))
            except TypeError:
                return name
        return it
    slots = slots_of(t)
    if slots:
        return _generated(name, slots, _has_dict(t), memo=not top)

    def by_dict(x):
        d = getattr(x, "__dict__", None)
        if d is None:
            return name
        return (name,) + tuple([(k, v if v.__class__ in _ATOMS else fp(v))
                                for k, v in sorted(d.items()) if k not in UNREAD])
    return by_dict if top else _memo(by_dict)


def _method(x, fp):
    self = x.__self__
    if self.__class__ is types.ModuleType:  # a builtin function: len, sorted
        return ("builtin", x.__qualname__)
    return ("method", getattr(x, "__func__", x).__qualname__, fp(self))


#: values read by what they stand for, not by their class name, ``f(x, fp)`` with the
#: fingerprint function that reads the rest: a callable by its name and (bound) its object
#: (``free = tlb.free_pages`` differs with the gather), a range by its bounds (a range
#: iterator's ``__reduce__`` holds its range). The explorer's fingerprint reads them
#: through this table too (conformance/search/explorer.py ``_fp``).
SPECIAL = {
    types.MethodType: _method,
    types.BuiltinMethodType: _method,
    types.FunctionType: lambda x, fp: ("function", x.__qualname__),
    range: lambda x, fp: ("range", x.start, x.stop, x.step),
}


def _has_dict(t) -> bool:
    return any("__dict__" in c.__dict__ for c in t.__mro__ if c is not object)


def _generated(name: str, slots: tuple, with_dict: bool, memo: bool):
    """Compile ``f(x) -> (name, field...)`` for a slotted class (``inst`` ranked). With
    ``memo``, the result is kept for the key being taken (:func:`ranked`), by identity. A
    field that is no atom is read by its class's function straight from :data:`_FN` (one
    call, not two through :func:`fp`)."""
    lines = ["def f(x):"]
    if memo:
        lines += ["    M = BOX.memo", "    if M is not None:", "        r = M.get(id(x))",
                  "        if r is not None:", "            return r"]
    vals = []
    for i, s in enumerate(slots):
        lines.append(f"    v{i} = getattr(x, {s!r}, None)")
        if s != "inst":
            lines.append(f"    c = v{i}.__class__")
            lines.append(f"    if c not in AT:")
            lines.append(f"        v{i} = (FN.get(c) or FP)(v{i})")
        vals.append(f"R(v{i})" if s == "inst" else f"v{i}")
    tail = ""
    if with_dict:  # a slotted class whose subclass added a __dict__
        tail = (" + tuple([(k, FP(v)) for k, v in sorted(getattr(x, '__dict__', {}).items())"
                " if k not in UNREAD])")
    lines.append(f"    r = ({name!r}, {', '.join(vals)}{',' if len(vals) == 1 else ''})" + tail)
    if memo:
        lines += ["    if M is not None:", "        M[id(x)] = r"]
    lines.append("    return r")
    ns = {"AT": _ATOMS, "FP": fp, "FN": _FN, "R": R, "UNREAD": UNREAD, "BOX": _BOX}
    exec(compile("\n".join(lines), f"<fingerprint {name}>", "exec"), ns)  # noqa: S102
    return ns["f"]
