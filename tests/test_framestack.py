"""The state keys read a frame's value stack (conformance/search/framestack.py): a loop's
iterator, a ``with`` block's ``__exit__``, an outer call's pending arguments. Without it,
two states that differ only in how far a ``for`` loop has got had one key."""
from __future__ import annotations

import sys

import pytest

from conformance.config import MachineConfig
from conformance.errors import ModelError
from conformance.machine import Machine
from conformance.search import framestack
from conformance.search.explorer import fingerprint
from conformance.search.framestack import key_values, stack
from conformance.search.statekey import key
from protocols.linux import Linux

pytestmark = pytest.mark.skipif(not framestack.supported(),
                                reason="frame layout of CPython 3.11-3.13 only")


# -- reading the stack: a frame stopped at each kind of instruction that runs Python code -----
class _Seen:
    """Objects whose dunder methods read the stack of the frame that called them."""

    def __init__(self) -> None:
        self.got = []

    def _read(self):
        self._got(stack(sys._getframe(2)))

    def _got(self, st):  # the values, and each iterator's items left when read
        self.got.append((st, [v.__length_hint__() for v in st if hasattr(v, "__length_hint__")]))

    def __setattr__(self, name, value):
        if name != "got":
            self._read()
        object.__setattr__(self, name, value)

    def __setitem__(self, k, v):
        self._read()

    def __delitem__(self, k):
        self._read()

    def __getitem__(self, k):
        self._read()
        return 0

    def __eq__(self, other):
        self._read()
        return False

    __hash__ = object.__hash__

    def __add__(self, other):
        self._read()
        return 0

    def __contains__(self, x):
        self._read()
        return False

    def __iter__(self):
        self._read()
        return iter((1, 2))

    def __enter__(self):
        self._read()
        return self

    def __exit__(self, *exc):
        return False

    @property
    def prop(self):
        self._read()
        return 0

    def __bool__(self):
        self._read()
        return False

    def __neg__(self):
        self._read()
        return 0

    def __format__(self, spec):
        self._read()
        return ""

    def key(self, x):
        self._got(stack(sys._getframe(1)))  # called from sorted (C): no frame between
        return x

    def call(self, *args):
        self._read()


def _stops(s):
    """One loop over a temporary list, its body stopping at each kind of instruction."""
    for _ in list((1, 2)):
        s.attr = 1  # STORE_ATTR
        s[0] = 1  # STORE_SUBSCR
        del s[0]  # DELETE_SUBSCR
        s[0]  # BINARY_SUBSCR  # noqa: B018
        s == 1  # COMPARE_OP  # noqa: B015
        s + 1  # BINARY_OP  # noqa: B018
        1 in s  # CONTAINS_OP  # noqa: B015
        a, b = s  # UNPACK_SEQUENCE (through __iter__)
        s.prop  # LOAD_ATTR  # noqa: B018
        sorted((1,), key=s.key)  # CALL of a C function calling back
        s.call(*(1, 2))  # CALL_FUNCTION_EX
        with s:  # BEFORE_WITH
            pass
        if s:  # a truth test through __bool__ (POP_JUMP_*)
            pass
        not s  # UNARY_NOT  # noqa: B015
        -s  # UNARY_NEGATIVE  # noqa: B018
        f"{s}"  # FORMAT_VALUE  # noqa: B021
        len([s])  # a builtin call, PRECALL once 3.11 has specialized it


def test_a_running_frame_reads_its_loop_iterator_at_every_kind_of_stop():
    """The depth of a frame running a call through C comes from its bytecode, less the
    operands of the instruction in progress: at every kind of stop the stack below them is
    exactly the loop's iterator (two iterations: its position moves, nothing else)."""
    for run in range(20):  # cold, then specialized (3.11's PRECALL calls len itself)
        s = _Seen()
        _stops(s)
        assert len(s.got) == 2 * 16, run
        assert all(len(st) == 1 and type(st[0]).__name__ == "list_iterator"
                   for st, _ in s.got), (run, s.got)
        assert len({id(st[0]) for st, _ in s.got}) == 1
        assert [h for _, h in s.got] == [[1]] * 16 + [[0]] * 16


def test_a_generator_driving_a_python_iterator_reads_its_stack():
    """``yield from`` over an iterator that is no generator: the frame runs SEND through C;
    below the value sent lie the loop's iterator and the delegate."""
    class Driven(_Seen):
        def __iter__(self):
            return self

        def __next__(self):
            self._read()
            raise StopIteration

    s = Driven()

    def drive(it):
        for _ in list((1,)):
            yield from it

    list(drive(s))
    (st, _), = s.got
    assert [type(v).__name__ for v in st] == ["list_iterator", "Driven"]


def test_a_suspended_generator_reads_its_iterator_and_with_block():
    def walk(items, cm):
        for x in list(items):
            with cm:
                yield x

    s = _Seen()
    g = walk([1, 2, 3], s)
    next(g)
    it, ex = stack(g.gi_frame)
    assert it.__length_hint__() == 2 and ex.__self__ is s
    from conformance.search.fingerprint import fp
    assert fp(key_values(g.gi_frame)[1]) == ("method", "_Seen.__exit__", fp(s))
    next(g)
    assert stack(g.gi_frame)[0].__length_hint__() == 1


def test_the_depth_walk_matches_every_saved_stack_of_the_model():
    """Every frame of every operation of a few programs, at every interleaving point: where
    Python saved the depth (a yield, an inline call), the bytecode walk agrees with it."""
    cls = _LoopingFlush
    m = Machine(cls)
    ops = [m.reclaim(1, (m.frame_of(0, 0),)), m.munmap(0, 0, 2), m.mprotect(2, 2, 1, False)]
    checked = 0
    for _ in range(400):
        live = [op for op in ops if op in m.ops and op.runnable()]
        if not live:
            break
        for op in m.ops:
            for f in _frames(op):
                top = framestack._stacktop(f)
                if top < 0:
                    continue
                ins = framestack.suspended_at(f.f_code, f.f_lasti)
                n = framestack._nlocalsplus(f.f_code)
                if ins is not None:  # the YIELD_VALUE popped the value it yields
                    d = framestack._depths(f.f_code)[ins.offset]
                    assert top - n == d - 1, (f.f_code.co_name, ins)
                    checked += 1
                    plan = framestack._plan(f.f_code, f.f_lasti)  # key_values' shortcut
                    if plan is not framestack._READ:
                        got = stack(f)
                        assert len(got) == len(plan) and all(
                            type(v).__name__ == "generator" for v in got), (plan, got)
        m.advance(live[checked % len(live)].id)
    assert checked > 50


def _frames(op):
    from conformance.hookpoints import _DRIVE_CODE, paused_frames
    g = op.gen
    while g is not None and getattr(g, "gi_frame", None) is not None:
        if g.gi_code is _DRIVE_CODE:
            yield from paused_frames(g)
        yield g.gi_frame
        g = g.gi_yieldfrom


# -- the keys read it ----------------------------------------------------------------------
class _LoopingFlush(Linux):
    """Mainline whose batched flush first stores the same value three times in a loop over a
    temporary list: paused before the second and before the third store, the hook has the
    same code position and locals; only the loop's iterator tells the two apart."""

    def try_to_unmap_flush(self, task):
        for v in list((0, 0, 0)):
            self.marker = v
        return super().try_to_unmap_flush(task)


def _paused_in_the_loop():
    from conformance.hookpoints import _DRIVE_CODE, paused_frames
    m = Machine(_LoopingFlush)
    op = m.reclaim(1, (m.frame_of(0, 0),))
    while op in m.ops:
        g = op.gen
        while g is not None and g.gi_code is not _DRIVE_CODE:
            g = g.gi_yieldfrom
        if g is not None:
            for f in paused_frames(g):
                if f.f_code.co_name == "try_to_unmap_flush" and \
                        f.f_code is _LoopingFlush.try_to_unmap_flush.__code__:
                    return m, op, f
        m.advance(op.id)
    raise AssertionError("the hook never paused inside its loop")


def test_the_keys_tell_a_hooks_loop_positions_apart():
    """Moving the paused hook's iterator one item on (nothing else changes: not its code
    position, not its locals, not the machine) changes both keys. Before the keys read the
    stack, both stayed equal: two states with different futures (one more store to come, or
    none) were one state."""
    m, op, f = _paused_in_the_loop()
    it = stack(f)[0]
    assert type(it).__name__ == "list_iterator"
    k, fpr, where = key(m), fingerprint(m), (f.f_lasti, dict(f.f_locals))
    next(it)
    assert (f.f_lasti, dict(f.f_locals)) == where
    assert key(m) != k
    assert fingerprint(m) != fpr


def test_the_keys_tell_a_kernel_loops_positions_apart():
    """The same for a kernel path: mprotect paused inside ``for a, b in
    mm.table_ranges(...)``, the ranges still to walk live only on its stack."""
    m = Machine(Linux, MachineConfig(ptes_per_table=1))  # a VMA of 2 pages: 2 ranges
    op = m.mprotect(0, 0, 2, False)
    its = []
    while op in m.ops:
        fr = next((f for f in _frames(op) if f.f_code.co_name == "mprotect"), None)
        its = [v for v in stack(fr) if type(v).__name__ == "list_iterator"] if fr else []
        # the innermost loop's iterator is the last (VMAs to change, their split parts,
        # then the page-table ranges: docs/model.md section 11 item 31 put the split there)
        if len(its) >= 2 and its[-1].__length_hint__() > 0:
            break
        m.advance(op.id)
    assert its and its[-1].__length_hint__() == 1, "mprotect paused with a range left to walk"
    k, fpr = key(m), fingerprint(m)
    next(its[-1])
    assert key(m) != k
    assert fingerprint(m) != fpr


def test_a_frame_the_key_cannot_read_is_a_one_line_error(monkeypatch):
    """Where the layout is unknown, or a running frame stopped at an instruction whose
    operands the module does not know, the key raises a ModelError (the search reports a
    model error) rather than leave the stack out and merge states."""
    def walk():
        yield 1
    g = walk()
    next(g)
    monkeypatch.setattr(framestack, "_SUPPORTED", False)
    with pytest.raises(ModelError, match="reads frame stacks in CPython 3.11-3.13"):
        key_values(g.gi_frame)
    monkeypatch.setattr(framestack, "_SUPPORTED", True)
    monkeypatch.setattr(framestack, "_OPERANDS", {})
    s = _Seen()
    with pytest.raises(ModelError, match="cannot read the stack of .* stopped in STORE_ATTR"):
        s.attr = 1


def test_a_yield_from_delegate_the_chain_does_not_walk_is_keyed():
    """A ``yield from`` over a list keeps the list's iterator as the delegate (no generator,
    so no frame chain reads it): two frames with 2 and 0 yields to come differ. So do two
    generators held on a stack whose own delegates stand at different points."""
    from conformance.search.fingerprint import fp

    def hook(pending):
        yield from list(pending)

    a, b = hook([1, 2, 3]), hook([1])
    next(a), next(b)
    ka, kb = fp(key_values(a.gi_frame, a.gi_yieldfrom)), fp(key_values(b.gi_frame, b.gi_yieldfrom))
    assert ka != kb

    def inner(n):
        for i in range(n):
            yield i

    def outer(n):
        yield from inner(n)

    def holder(g):
        for x in g:  # g on the stack as the loop's iterator, its delegate two frames down
            yield x

    c, d = holder(outer(3)), holder(outer(3))
    next(c), next(d), next(d)
    assert fp(key_values(c.gi_frame)) != fp(key_values(d.gi_frame))


def test_ranges_and_methods_are_read_by_what_they_stand_for():
    """Both fingerprints: a range by its bounds (a range iterator's ``__reduce__`` holds
    it), a bound method by its name and its object, a function by its name."""
    from conformance.search.explorer import _fp
    from conformance.search.fingerprint import fp

    class A:
        __slots__ = ("v",)

        def __init__(self, v):
            self.v = v

        def m(self):
            return self.v

    for f in (fp, _fp):
        assert f(range(0, 4)) != f(range(0, 6))
        assert f(iter(range(0, 4))) != f(iter(range(0, 6)))
        assert f(A(1).m) != f(A(2).m) and f(A(1).m) == f(A(1).m)
        assert f(A.m) != f(_Seen.key) and f(len) == ("builtin", "len")
