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

import array
import collections
import enum
import functools
import types
from bisect import bisect_left

from ..errors import UsageError

_ATOMS = frozenset({int, str, bool, float, type(None), bytes})
AT = _ATOMS  # the name generated code uses
#: ``__dict__`` entries no key reads: a counted protocol's coverage counters
#: (``_fc_coverage``, conformance/coverage.py: history, never read by a hook; certify's
#: failures run on counted classes, and counters in the key kept the explorer from merging
#: states that differ only in how often a hook was called). A protocol's view of the arch is
#: not skipped by its name ``arch`` (the kernel's ``tlbflush_unmap_batch.arch`` is state, and
#: a protocol's own unslotted batch named so was not in the key, 2026-12-05): the arch
#: objects themselves are opaque (:func:`model_kind`).
UNREAD = frozenset({"_fc_coverage"})

_KINDS = None


def _model_kinds() -> tuple:
    """``(class, kind, value)`` of the model classes a key reads specially, imported on first
    use (the model imports this module's users)."""
    global _KINDS
    if _KINDS is None:
        from ..hookpoints import _HookArch
        from ..hw.arch import Arch
        from ..hw.physmem import PhysMem
        from ..hw.tlb import Cpu, Tlbs
        from ..machine import Machine
        from ..mm import Kernel
        from ..mm.mm_types import Mm
        from ..mm.task import Op
        from ..oracle import Oracle
        from ..trace import Trace
        _KINDS = ((Op, "ref", "op"), (Mm, "ref", "mm"), (Cpu, "ref", "cpu"),
                  (Machine, "opaque", "Machine"), (Kernel, "opaque", "Kernel"),
                  (Arch, "opaque", "Arch"), (_HookArch, "opaque", "Arch"),
                  (Tlbs, "opaque", "Tlbs"), (Trace, "opaque", "Trace"),
                  (Oracle, "opaque", "Oracle"), (PhysMem, "opaque", "PhysMem"))
    return _KINDS


def model_kind(t):
    """``("ref", tag)`` for an operation, mm or CPU class (a reference by ``id`` inside other
    values), ``("opaque", name)`` for the machine's big parts (each read as a part of its
    own, or not at all), else None. By class identity, subclasses included: until
    2026-12-05 by class *name*, so a protocol's own class called ``Cpu`` or ``Arch`` was read
    as a reference or a bare name, whatever it held (a review).

    Example::

        >>> from conformance.mm.task import Op
        >>> model_kind(Op), model_kind(dict)
        (('ref', 'op'), None)
    """
    for cls, kind, value in _model_kinds():
        if issubclass(t, cls):
            return kind, value
    return None

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
    # bare class name; a subclass with a __dict__ adds its attributes
    for base, read in ((tuple, _seq), (list, _seq), (dict, _dict), (set, _set), (frozenset, _set)):
        if issubclass(t, base):
            if t is base or not _has_dict(t):
                return read
            return lambda x, read=read: (name, read(x), _attrs(x))
    kind = model_kind(t)
    if kind is not None and (kind[0] == "opaque" or not top):
        tag = kind[1]
        return (lambda x: tag) if kind[0] == "opaque" else (lambda x: (tag, x.id))
    special = SPECIAL.get(t)
    if special is not None:
        return lambda x: special(x, fp)
    if issubclass(t, type):  # a class (a metaclass's instance too: an Enum class): by name
        return lambda x: ("class", x.__module__, x.__qualname__)
    if issubclass(t, enum.Enum):  # a member: by its class and name (its __dict__ holds its
        return lambda x: ("enum", t.__module__, t.__qualname__, x._name_)  # class: a cycle)
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
            raise unreadable(x)
        return (name,) + tuple([(k, v if v.__class__ in _ATOMS else fp(v))
                                for k, v in sorted(d.items()) if k not in UNREAD])
    return by_dict if top else _memo(by_dict)


def unreadable(x) -> UsageError:
    """The error for a value no key can read (no ``__dict__``, no slots, no rule here): the
    state it holds would be left out of the key and two different states merged, so the
    search stops instead (before 2026-12-05 it was keyed by its class name alone)."""
    t = type(x)
    return UsageError(f"the state key cannot read a {t.__module__}.{t.__qualname__} (protocol "
                      "state in it would be left out of the search's key); keep protocol "
                      "state in plain objects, slotted classes, dicts, lists, tuples, sets, "
                      "deques or numbers")


def _attrs(x) -> tuple:
    """The ``__dict__`` of a container subclass, sorted (its items are read separately)."""
    return tuple([(k, fp(v)) for k, v in sorted(x.__dict__.items()) if k not in UNREAD])


def _method(x, fp):
    self = x.__self__
    if self.__class__ is types.ModuleType:  # a builtin function: len, sorted
        return ("builtin", x.__qualname__)
    return ("method", getattr(x, "__func__", x).__qualname__, fp(self))


def _function(x, fp):
    """A function by its name and, where it has them, its defaults and closure cells (a
    closure's cells are state: ``lambda: v`` differs with ``v``); a function inside a cell
    by its name only (a nested function that calls itself holds itself)."""
    cells, defaults, kwdefaults = x.__closure__, x.__defaults__, x.__kwdefaults__
    if not (cells or defaults or kwdefaults):
        return ("function", x.__qualname__)

    def cell(c):
        try:
            v = c.cell_contents
        except ValueError:  # not yet bound
            return ("empty cell",)
        return ("function", v.__qualname__) if v.__class__ is types.FunctionType else fp(v)
    return ("function", x.__qualname__, fp(defaults or ()), fp(kwdefaults or {}),
            tuple([cell(c) for c in cells or ()]))


_SENTINELS: dict = {}


def _sentinel(x, fp):
    """A bare ``object()``: a sentinel (``hookpoints._PAUSE``, a protocol's ``UNSET``), by the
    name that binds it: a module global, else a class attribute of a class a loaded module
    defines (``module.Class.NAME``), found once and cached with the object itself (so its
    ``id`` cannot be reused while the cache holds it). Never by ``id``: the key must be the
    same in every process. A sentinel nothing names is refused (:func:`unreadable`): two of
    them would merge. The first binding found, modules in sorted order, names it; processes
    that import the same modules agree."""
    got = _SENTINELS.get(id(x))
    if got is not None:
        return ("sentinel", got[1])
    import sys
    name = None
    for mod_name, mod in sorted(sys.modules.items()):
        d = getattr(mod, "__dict__", None) or {}
        for k, v in list(d.items()):
            if v is x:
                name = f"{mod_name}.{k}"
                break
        if name is None:
            for k, v in list(d.items()):
                if isinstance(v, type) and getattr(v, "__module__", None) == mod_name:
                    for a, w in list(vars(v).items()):
                        if w is x:
                            name = f"{mod_name}.{k}.{a}"
                            break
                if name is not None:
                    break
        if name is not None:
            break
    if name is None:
        raise unreadable(x)
    _SENTINELS[id(x)] = (x, name)
    return ("sentinel", name)


#: values read by what they stand for, not by their class name, ``f(x, fp)`` with the
#: fingerprint function that reads the rest: a callable by its name and (bound) its object
#: (``free = tlb.free_pages`` differs with the gather), a function with its defaults and
#: closure, a range by its bounds (a range iterator's ``__reduce__`` holds its range), the
#: containers with neither ``__dict__`` nor slots by their content. The explorer's
#: fingerprint reads them through this table too (conformance/search/explorer.py ``_fp``).
SPECIAL = {
    types.MethodType: _method,
    types.BuiltinMethodType: _method,
    types.FunctionType: _function,
    range: lambda x, fp: ("range", x.start, x.stop, x.step),
    object: _sentinel,
    # the C slots of built-in types (``dict.__setitem__``, ``list.append``): code, by name
    types.WrapperDescriptorType: lambda x, fp: ("descriptor", x.__qualname__),
    types.MethodDescriptorType: lambda x, fp: ("descriptor", x.__qualname__),
    types.ClassMethodDescriptorType: lambda x, fp: ("descriptor", x.__qualname__),
    types.GetSetDescriptorType: lambda x, fp: ("descriptor", x.__qualname__),
    types.MemberDescriptorType: lambda x, fp: ("descriptor", x.__qualname__),
    types.MethodWrapperType: lambda x, fp: ("method", x.__qualname__, fp(x.__self__)),
    collections.deque: lambda x, fp: ("deque", x.maxlen, tuple([fp(v) for v in x])),
    bytearray: lambda x, fp: ("bytearray", bytes(x)),
    array.array: lambda x, fp: ("array", x.typecode, tuple(x.tolist())),
    functools.partial: lambda x, fp: ("partial", fp(x.func), fp(x.args),
                                      tuple(sorted((k, fp(v)) for k, v in x.keywords.items()))),
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
