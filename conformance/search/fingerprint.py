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

State that refers to itself (a dict holding itself, parent pointers, a doubly-linked
list) or is nested deeper than Python's recursion limit (a 1,000-node linked list) cannot
be read by these recursive functions: they end in a RecursionError. :func:`safe_fp` and
:func:`safe_top` read the same values with an explicit stack, and give the same
fingerprint wherever the recursive functions finish (the key of every state without a
cycle is the same whichever reads it); an object met again *inside itself* is written
``(CYCLE, n)``: the object ``n`` levels up the path from the value being read to the
object it refers to (``CYCLE`` is ``...``, which no other fingerprint holds). The state
key (:mod:`conformance.search.statekey`) takes them only after the recursive functions
failed on a protocol's state.

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
            f = lambda x, read=read: (name, read(x), _attrs(x))  # noqa: E731
            f._safe = (_PARTS, functools.partial(_sub_parts, name, read._safe[1]), False)
            return f
    kind = model_kind(t)
    if kind is not None and (kind[0] == "opaque" or not top):
        tag = kind[1]
        return (lambda x: tag) if kind[0] == "opaque" else (lambda x: (tag, x.id))
    special = SPECIAL.get(t)
    if special is not None:
        f = lambda x: special(x, fp)  # noqa: E731
        f._safe = (_NESTED, special)
        return f
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

        def it_safe(x, fp):  # the same, reading the rest with the walk's fp
            try:
                return (name, fp(x.__reduce__()[1:]))
            except TypeError:
                return name
        it._safe = (_NESTED, it_safe)
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

    def by_dict_parts(x):
        d = getattr(x, "__dict__", None)
        if d is None:
            raise unreadable(x)
        items = [(k, v) for k, v in sorted(d.items()) if k not in UNREAD]
        return [v for _k, v in items], lambda x, rs: (name,) + tuple(
            [(k, r) for (k, _v), r in zip(items, rs)])
    by_dict._safe = (_PARTS, by_dict_parts, False)
    if top:
        return by_dict
    f = _memo(by_dict)
    f._safe = (_PARTS, by_dict_parts, True)
    return f


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
    f = ns["f"]
    f._safe = (_PARTS, functools.partial(_slot_parts, name, slots, with_dict), memo)
    return f


# -- state that refers to itself, or nested deeper than the recursion limit --------------
#
# Every function above that reads other values carries ``_safe``: how :func:`_walk` reads
# the same value without recursing. ``(_PARTS, parts, memo)``: ``parts(x)`` gives ``(the
# values x holds, join)``, and ``join(x, their fingerprints)`` builds what the function
# itself returns (``memo``: the function keeps its results in ``_BOX.memo``);
# ``(_NESTED, g)``: the function is ``g(x, fp)`` (the SPECIAL readers, an iterator's),
# called with a reader that walks on from the path so far. A function without ``_safe``
# reads no other value (a reference, a name, an opaque part): the walk calls it.

_PARTS, _NESTED = "parts", "nested"
#: a back-reference: ``(CYCLE, n)`` is the object ``n`` levels up the path (module doc);
#: ``...`` is no value any reader above returns (an Ellipsis in the state is unreadable)
CYCLE = Ellipsis
_OPEN = object()  # a frame pushed, no value yet


def _seq_parts(x):
    return list(x), _seq_join


def _seq_join(x, rs):
    return tuple(rs)


def _dict_parts(x):
    ch = []
    for k, v in x.items():
        ch.append(k)
        ch.append(v)
    return ch, _dict_join


def _dict_join(x, rs):
    return tuple([(rs[i], rs[i + 1]) for i in range(0, len(rs), 2)])


def _set_parts(x):
    return list(x), _set_join


def _set_join(x, rs):
    return ("set",) + tuple(sorted(rs, key=text))


_seq._safe = (_PARTS, _seq_parts, False)
_dict._safe = (_PARTS, _dict_parts, False)
_set._safe = (_PARTS, _set_parts, False)


def _sub_parts(name, read_parts, x):
    """A container subclass with a ``__dict__``: ``(name, its items, _attrs(x))``."""
    ch, join = read_parts(x)
    n = len(ch)
    items = [(k, v) for k, v in sorted(x.__dict__.items()) if k not in UNREAD]

    def sub_join(x, rs):
        return (name, join(x, rs[:n]), tuple([(k, r) for (k, _v), r in zip(items, rs[n:])]))
    return ch + [v for _k, v in items], sub_join


def _slot_parts(name, slots, with_dict, x):
    """A slotted class: what :func:`_generated`'s function returns (``inst`` ranked, not
    read as a value)."""
    ch = [getattr(x, s, None) for s in slots if s != "inst"]
    items = ()
    if with_dict:
        items = [(k, v) for k, v in sorted(getattr(x, "__dict__", {}).items())
                 if k not in UNREAD]
        ch += [v for _k, v in items]

    def slot_join(x, rs):
        out, j = [name], 0
        for s in slots:
            if s == "inst":
                out.append(R(getattr(x, s, None)))
            else:
                out.append(rs[j])
                j += 1
        r = tuple(out)
        if with_dict:
            r += tuple([(k, rs[j + i]) for i, (k, _v) in enumerate(items)])
        return r
    return ch, slot_join


def safe_fp(x):
    """:func:`fp` for any state: a cycle as a back-reference, any depth (module doc).

    Example::

        >>> d = {"n": 1}
        >>> safe_fp(d) == fp(d)
        True
        >>> d["self"] = d
        >>> safe_fp(d)
        (('n', 1), ('self', (Ellipsis, 1)))
    """
    return _walk(x, False, {}, 0)[0]


def safe_top(x):
    """:func:`top` for any state (:func:`safe_fp`).

    Example::

        >>> from conformance.hw.tlb import TlbEntry
        >>> e = TlbEntry(3, True, False, 7)
        >>> safe_top(e) == top(e) == ('TlbEntry', 3, True, False, 7)
        True
    """
    return _walk(x, True, {}, 0)[0]


def _walk(x, top, onpath, base):
    """``(fingerprint of x, whether it holds a back-reference)``, read with an explicit
    stack. ``onpath``: id -> path level of each object being read (the path from the key's
    value to here), ``base``: the level of ``x``. A value met while it is on the path is
    ``(CYCLE, levels up)``. A result with no back-reference in it is kept in the key's memo
    where the recursive function keeps it: nothing it reaches reaches it back, so it reads
    the same wherever it is met; one with a back-reference is not (read under another
    object of its cycle, the cycle closes elsewhere)."""
    memo = _BOX.memo
    stack = []  # [object, values it holds, next index, their fingerprints, join, cyclic, memo]
    v = x
    while True:
        t = v.__class__
        if t in _ATOMS:
            r, cyc = v, False
        else:
            i = id(v)
            level = base + len(stack)
            at = onpath.get(i)
            if at is not None:
                r, cyc = (CYCLE, level - at), True
            else:
                table = _TOP if top else _FN
                top = False
                f = table.get(t)
                if f is None:
                    f = table[t] = _build(t, table is _TOP)
                how = getattr(f, "_safe", None)
                if how is None:
                    r, cyc = f(v), False
                elif how[0] is _PARTS:
                    keep = how[2] and memo is not None
                    r = memo.get(i) if keep else None
                    if r is not None:
                        cyc = False
                    else:
                        children, join = how[1](v)
                        onpath[i] = level
                        stack.append([v, children, 0, [], join, False, keep])
                        r = _OPEN
                else:  # _NESTED: its reader walks on from here
                    onpath[i] = level
                    seen = [False]

                    def nested(w, level=level, seen=seen):
                        got, c = _walk(w, False, onpath, level + 1)
                        if c:
                            seen[0] = True
                        return got
                    try:
                        r = how[1](v, nested)
                    finally:
                        del onpath[i]
                    cyc = seen[0]
        # hand r to the frame above; finish every frame whose values are all read
        while True:
            if r is not _OPEN:
                if not stack:
                    return r, cyc
                fr = stack[-1]
                fr[3].append(r)
                if cyc:
                    fr[5] = True
            else:
                fr = stack[-1]
            children = fr[1]
            if fr[2] < len(children):
                v = children[fr[2]]
                fr[2] += 1
                break
            stack.pop()
            obj = fr[0]
            del onpath[id(obj)]
            r, cyc = fr[4](obj, fr[3]), fr[5]
            if fr[6] and not cyc:
                memo[id(obj)] = r


def text(x) -> str:
    """``repr(x)``, with tuples (a fingerprint's) written without recursing: the same text
    at any depth and from any caller (``repr`` of a deep tuple fails, or not, by how deep
    its caller is).

    Example::

        >>> deep = ()
        >>> for _ in range(5000):
        ...     deep = (deep,)
        >>> text(((1,), "a", ...)) == repr(((1,), "a", ...)), len(text(deep))
        (True, 15002)
    """
    if x.__class__ is not tuple:
        return repr(x)
    out = []
    stack = [(x, 0)]
    while stack:
        t, i = stack.pop()
        if i == 0:
            out.append("(")
        if i < len(t):
            if i:
                out.append(", ")
            stack.append((t, i + 1))
            v = t[i]
            if v.__class__ is tuple:
                stack.append((v, 0))
            else:
                out.append(repr(v))
        else:
            out.append(",)" if len(t) == 1 else ")")
    return "".join(out)
