"""The value stack of a suspended Python frame: the state the state keys cannot see in
its locals.

A kernel path paused at ``yield`` inside ``for a, b in mm.table_ranges(...)`` keeps the
loop's iterator on the frame's evaluation stack, not in a local: the ranges still to walk
are state. So is the position of ``for slot in self.flagged`` in a hook paused between
two stores (``luf_vma_flag.luf_flushed``), the ``__exit__`` a ``with`` block will call,
and the callable and arguments of an outer call whose inner call paused. Two states with
the same code positions and locals but different stacks have different futures, so the
keys (:mod:`conformance.search.statekey`, :func:`conformance.search.explorer.fingerprint`)
must read the stack too, or they may merge them and lose a counterexample.

Python offers no API for another frame's stack, so :func:`stack` reads CPython's frame
layout (``struct _PyInterpreterFrame``, Include/internal/pycore_frame.h): the same offsets
in 3.11, 3.12 and 3.13 on 64-bit builds, checked by :func:`supported` on a frame whose stack
is known before the first read. A frame suspended at a ``yield`` (a generator) or in a
call of a Python function (a hook calling a helper) has its stack depth saved
(``stacktop``); a frame running a call through C (a hook whose store calls the shared
state's ``__setattr__``, or whose ``with`` calls ``__enter__``) has none (``stacktop``
is -1 while it runs), and its depth comes from the bytecode (:func:`_depths`: the
compiler gives every instruction one stack depth), less the operands of the instruction
in progress (:data:`_OPERANDS`).

Example::

    >>> def walk(items):
    ...     for x in list(items):
    ...         yield x
    >>> g = walk([1, 2, 3]); next(g)
    1
    >>> it, = stack(g.gi_frame)
    >>> it.__length_hint__()  # the loop's iterator: two items still to walk
    2
"""
from __future__ import annotations

import ctypes
import dis
import sys
from bisect import bisect_right
from collections import namedtuple
from types import GeneratorType

from ..errors import ModelError

#: offsets in bytes (64-bit CPython 3.11-3.13): ``PyFrameObject.f_frame``, and in
#: ``_PyInterpreterFrame`` its ``stacktop`` (an int) and its ``localsplus`` array
_F_FRAME, _STACKTOP, _LOCALSPLUS = 24, 64, 72
_PTR = ctypes.c_void_p
_INT = ctypes.c_int
_OBJS = ctypes.POINTER(ctypes.py_object)

#: the operands the instruction in progress has taken off the stack (its own, gone when it
#: completes): by opcode name, a count or a function of the oparg. Only instructions that
#: can run Python code through C are listed: a frame is "running" at no other.
_OPERANDS = {
    # 3.11 counts a call's arguments to the PRECALL before it (``stack_effect``), not to
    # the CALL: the depth the walk gives a CALL is below them already
    "CALL": (lambda a: 2) if sys.version_info[:2] == (3, 11) else (lambda a: a + 2),
    "CALL_KW": lambda a: a + 3, "CALL_FUNCTION_EX": lambda a: 3 + (a & 1),
    "STORE_ATTR": 2, "DELETE_ATTR": 1, "STORE_SUBSCR": 3, "DELETE_SUBSCR": 2,
    "BINARY_SUBSCR": 2, "BINARY_OP": 2, "COMPARE_OP": 2, "CONTAINS_OP": 2,
    "LOAD_ATTR": 1, "LOAD_METHOD": 1, "BEFORE_WITH": 1, "GET_ITER": 1,
    "UNPACK_SEQUENCE": 1, "UNPACK_EX": 1, "FOR_ITER": 0,  # the iterator stays
    "LIST_EXTEND": 1, "SET_UPDATE": 1, "DICT_UPDATE": 1, "DICT_MERGE": 1,
    "FORMAT_VALUE": lambda a: 2 if (a & 4) else 1, "FORMAT_SIMPLE": 1,
    "FORMAT_WITH_SPEC": 2, "TO_BOOL": 1, "STORE_SLICE": 4, "BINARY_SLICE": 3,
    # 3.11 specializes a PRECALL to make a builtin call itself (the CALL after it is then
    # skipped): its operands are the call's, the callable and its self slot
    "PRECALL": lambda a: a + 2,
    "SEND": 1,  # the value sent; the delegate stays
    "GET_YIELD_FROM_ITER": 1,
    "LOAD_SUPER_ATTR": 3, "WITH_EXCEPT_START": 0,  # it calls __exit__ and pops nothing
    "UNARY_NOT": 1, "UNARY_NEGATIVE": 1, "UNARY_INVERT": 1,  # __bool__, __neg__, ...
    # a truth test through __bool__ or __len__ (3.11's names, then 3.12's)
    "POP_JUMP_FORWARD_IF_FALSE": 1, "POP_JUMP_FORWARD_IF_TRUE": 1,
    "POP_JUMP_BACKWARD_IF_FALSE": 1, "POP_JUMP_BACKWARD_IF_TRUE": 1,
    "POP_JUMP_IF_FALSE": 1, "POP_JUMP_IF_TRUE": 1,
    "JUMP_IF_FALSE_OR_POP": 1, "JUMP_IF_TRUE_OR_POP": 1,
}
_HAS_JUMP = frozenset(dis.hasjrel) | frozenset(dis.hasjabs)
_NO_FALLTHROUGH = frozenset({"RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE",
                             "JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT",
                             "JUMP_ABSOLUTE", "JUMP", "JUMP_NO_INTERRUPT"})
_SUPPORTED: bool | None = None


def _nlocalsplus(code) -> int:
    """``co_nlocalsplus``: locals, cells (a cell argument is one slot) and free variables."""
    n = code.co_nlocals
    if code.co_cellvars:
        args = set(code.co_varnames)
        n += sum(1 for c in code.co_cellvars if c not in args)
    return n + len(code.co_freevars)


def _iframe(frame) -> int:
    """The address of ``frame``'s ``_PyInterpreterFrame``."""
    return _PTR.from_address(id(frame) + _F_FRAME).value


def _slots(iframe: int, lo: int, hi: int) -> tuple:
    """``localsplus[lo:hi]`` of the frame at ``iframe`` (None for an empty slot)."""
    arr = ctypes.cast(iframe + _LOCALSPLUS, _OBJS)
    out = []
    for i in range(lo, hi):
        try:
            out.append(arr[i])
        except ValueError:  # NULL: a call's empty self slot
            out.append(None)
    return tuple(out)


def _stacktop(frame) -> int:
    return _INT.from_address(_iframe(frame) + _STACKTOP).value


def _require() -> None:
    """A one-line ModelError unless :func:`supported`."""
    if not supported():
        raise ModelError(f"the state key reads frame stacks in CPython 3.11-3.13 (64-bit), "
                         f"not in {sys.implementation.name} {sys.version.split()[0]}")


def stack(frame) -> tuple:
    """The values on suspended ``frame``'s evaluation stack that outlive the instruction in
    progress, bottom first (None for an empty slot, as a call's NULL). Raises
    :class:`~conformance.errors.ModelError` where it cannot tell (:func:`supported` is
    False, or a running frame stopped in an instruction :data:`_OPERANDS` does not
    know): a key that silently left the stack out could merge two states."""
    _require()
    return _stack(frame)


def key_values(frame, inner=None) -> tuple:
    """:func:`stack` of ``frame`` as a state key reads it (each key fingerprints the result
    its own way): ``inner``, the generator a ``yield from`` delegates to, which the caller
    reads as the next frames of its chain, as ``"yield from"``; any other generator (a
    delegate the caller does not walk) as the code position, locals and stack of each
    frame of its chain; the rest as it is (both fingerprints read an iterator by
    ``__reduce__``, its sequence and position; a bound method, as a ``with`` block's
    ``__exit__``, by its name and object; a range by its bounds). Empty
    slots (a call's NULL, which the interpreter's specializations push or not for one
    code position) are left out.

    Example::

        >>> def walk(items):
        ...     for x in list(items):
        ...         yield x
        >>> g = walk(["a", "b"]); next(g)
        'a'
        >>> key_values(g.gi_frame)[0].__reduce__()[1:]
        ((['a', 'b'],), 1)
    """
    if not _SUPPORTED:
        _require()
    code = frame.f_code
    at = (code, frame.f_lasti)
    plan = _PLAN.get(at)
    if plan is None:
        plan = _PLAN[at] = _plan(code, frame.f_lasti)
    if plan is not _READ:  # known from the bytecode: nothing, or only the yield from's
        if not plan or inner.__class__ is GeneratorType:  # delegate, walked by the caller
            return plan
    vals = _stack(frame)
    if not vals:
        return vals
    out = []
    for v in vals:
        t = v.__class__
        if v is None:
            continue
        if v is inner and t is GeneratorType:
            out.append("yield from")
        elif t is GeneratorType:
            out.append(("generator",) + _chain(v))
        else:  # (both fingerprints read a method by its name and object, a range by its
            out.append(v)  # bounds)
    return tuple(out)


def _chain(g) -> tuple:
    """A generator and those it delegates to: each frame's code position, locals (sorted)
    and stack (:func:`key_values`), and a delegate that is not a generator as it is."""
    out = []
    while g is not None:
        if g.__class__ is not GeneratorType:
            out.append(g)
            break
        f = g.gi_frame
        if f is None:
            out.append("finished")
            break
        # a running generator (a hook paused at an automatic point inside a generator it
        # drives: its frame is on the hook's stack) delegates to nothing readable: on
        # CPython 3.11 its gi_yieldfrom may read an inline cache as RESUME and return a wild
        # pointer, a segfault (a review, 2026-12-06); hookpoints._gen_frames stops there too
        inner = None if g.gi_running else g.gi_yieldfrom
        out.append((f.f_code.co_name, f.f_lasti, tuple(sorted(f.f_locals.items())),
                    key_values(f, inner)))
        g = inner
    return tuple(out)


#: (code, last instruction) -> what :func:`key_values` returns there without reading the
#: frame, or :data:`_READ`
_PLAN: dict = {}
_READ = object()
_YIELD_FROM = ("yield from",)


def _plan(code, lasti: int):
    """A frame suspended at a ``yield`` (``YIELD_VALUE``, which took the value yielded off
    the stack) holds as many values as the bytecode walk gives it, less one: none, or only
    the generator a ``yield from`` delegates to (``SEND`` just before: it is on top) need
    no read. Anything else (a running frame, a loop's iterator) is read each time."""
    ins = suspended_at(code, lasti)
    if ins is None:
        return _READ
    depth = _depths(code)[ins.offset] - 1
    if depth == 0:
        return ()
    before = _previous(code, ins.offset)
    if depth == 1 and before is not None and before.opname == "SEND":
        return _YIELD_FROM
    return _READ


def suspended_at(code, lasti: int):
    """The ``YIELD_VALUE`` a generator frame whose last instruction is ``lasti`` is
    suspended at, or None (3.11 and 3.12 give the yield's own offset, 3.13 the ``RESUME``
    after it)."""
    ins = _covering(code, lasti)
    if ins is not None and ins.opname == "RESUME":
        ins = _previous(code, ins.offset)
    return ins if ins is not None and ins.opname == "YIELD_VALUE" else None


def _previous(code, offset: int):
    offs = sorted(_instructions(code))
    i = offs.index(offset)
    return _instructions(code)[offs[i - 1]] if i > 0 else None


def _stack(frame) -> tuple:
    code = frame.f_code
    n = _NLP.get(code)
    if n is None:
        n = _NLP[code] = _nlocalsplus(code)
    iframe = _iframe(frame)
    top = _INT.from_address(iframe + _STACKTOP).value  # (_stacktop, with the address kept)
    if top >= 0:  # saved at a yield or an inline Python call
        return _slots(iframe, n, top) if top > n else ()
    depth = _running_depth(code, frame.f_lasti)
    return _slots(iframe, n, n + depth) if depth else ()


_NLP: dict = {}
_RUNNING: dict = {}


def _running_depth(code, lasti: int) -> int:
    """The stack depth below the operands of the instruction at ``lasti`` of ``code``."""
    k = (code, lasti)
    got = _RUNNING.get(k)
    if got is None:
        ins = _covering(code, lasti)
        take = _OPERANDS.get(ins.opname) if ins is not None else None
        if take is None:
            where = f"{code.co_filename}:{code.co_firstlineno} {code.co_name}"
            what = ins.opname if ins is not None else f"offset {lasti}"
            raise ModelError(f"the state key cannot read the stack of {where} stopped in "
                             f"{what} (conformance/search/framestack.py)")
        if callable(take):
            take = take(ins.arg or 0)
        got = _RUNNING[k] = _depths(code)[lasti] - take
    return got


_INS: dict = {}
#: what the walk and the operand table read of an instruction (``dis.Instruction`` keeps
#: its text too: a megabyte for the model's code, held for the whole search)
_Ins = namedtuple("_Ins", "offset opname opcode arg argval")


def _instructions(code) -> dict:
    got = _INS.get(code)
    if got is None:
        got = _INS[code] = {i.offset: _Ins(i.offset, i.opname, i.opcode, i.arg, i.argval)
                            for i in dis.get_instructions(code)}
    return got


def _covering(code, lasti: int):
    """The instruction whose code units include ``lasti`` (a frame's last instruction can
    be one of its inline caches), or None."""
    ins = _instructions(code)
    got = ins.get(lasti)
    if got is None:
        offs = sorted(ins)
        i = bisect_right(offs, lasti) - 1
        got = ins[offs[i]] if i >= 0 else None
    return got


_DEPTHS: dict = {}


def _depths(code) -> dict:
    """The stack depth before each instruction of ``code`` (offset -> depth): a walk of its
    control flow and exception handlers with ``dis.stack_effect``, as the compiler's own
    ``stackdepth`` does (Python/compile.c)."""
    got = _DEPTHS.get(code)
    if got is not None:
        return got
    ins = _instructions(code)
    order = sorted(ins)
    nxt = {a: b for a, b in zip(order, order[1:])}
    depth: dict = {}
    work = [(order[0], 0)] if order else []
    for h in _handlers(code):  # an exception handler starts with its saved depth
        work.append((h.target, h.depth + (1 if h.lasti else 0) + 1))
    while work:
        off, d = work.pop()
        while off is not None:
            seen = depth.get(off)
            if seen is not None:
                if seen != d:  # the compiler gives each instruction one depth
                    raise ModelError(f"framestack: {code.co_name} has two stack depths at "
                                     f"{off} ({seen}, {d})")
                break
            depth[off] = d
            i = ins[off]
            arg = i.arg if i.opcode >= dis.HAVE_ARGUMENT else None
            if i.opcode in _HAS_JUMP:
                work.append((i.argval, d + dis.stack_effect(i.opcode, arg, jump=True)))
            if i.opname in _NO_FALLTHROUGH:
                break
            if i.opname == "RETURN_GENERATOR":  # resumed, the frame gets the value sent
                d += 1  # to it (None, popped next): stack_effect says 0
            elif i.opcode in _HAS_JUMP:
                d += dis.stack_effect(i.opcode, arg, jump=False)
            else:
                d += dis.stack_effect(i.opcode, arg)
            off = nxt.get(off)
    _DEPTHS[code] = depth
    return depth


def _handlers(code) -> list:
    parse = getattr(dis, "_parse_exception_table", None)
    return list(parse(code)) if parse is not None else []


def supported() -> bool:
    """Can :func:`stack` read frames here? Checked once, on a generator paused in a
    ``for`` over a temporary list (its stack: the list's iterator) and on a running frame
    whose ``with`` called ``__enter__`` (its stack: the iterator, below the manager)."""
    global _SUPPORTED
    if _SUPPORTED is None:
        _SUPPORTED = _self_check()
    return _SUPPORTED


class _Probe:
    def __enter__(self):
        self.entered = _stack(sys._getframe(1))
        return self

    def __exit__(self, *exc):
        return False

    def key(self, x):
        self.called = _stack(sys._getframe(1))
        return x


def _probe_gen(items, probe):
    for x in list(items):
        sorted((x,), key=probe.key)  # a CALL running Python code through C
        with probe:  # a BEFORE_WITH running __enter__
            yield x


def _self_check() -> bool:
    import sysconfig

    if sys.implementation.name != "cpython" or not (3, 11) <= sys.version_info[:2] <= (3, 13) \
            or ctypes.sizeof(_PTR) != 8 or sysconfig.get_config_var("Py_GIL_DISABLED"):
        return False  # (a free-threaded build lays its objects out otherwise: no read at all)
    try:
        probe = _Probe()
        g = _probe_gen([7, 8, 9], probe)
        next(g)
        it, ex = _stack(g.gi_frame)
        return (it.__class__ is type(iter([])) and it.__length_hint__() == 2
                and getattr(ex, "__self__", None) is probe
                and probe.entered == (it,) and probe.called == (it,))
    except Exception:  # noqa: BLE001 - any surprise means: cannot read frames here
        return False
