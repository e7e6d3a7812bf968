"""Protocol state that refers to itself (a dict holding itself, parent pointers, a
doubly-linked ring) or is nested deeper than Python's recursion limit (a 1,000-node linked
list) is keyed like any other state.

Until 2026-12-05 the state key read values recursively: such state ended every search in a
RecursionError (exit 3, "a flushcheck bug", some 3,000 lines of traceback), certify lost
the violation it had found before the shortest-interleaving step keyed it, and a protocol
that passes could not be searched at all. The key now reads such a protocol's state with an
explicit stack (``fingerprint.safe_fp``): a cycle as a back-reference by path position, the
same bytes as before for every value without one. Every test below fails on the code
before it: a RecursionError, or exit 3 where a one-line error or a verdict is due; the
three that check the new reading itself (``safe_fp`` against the recursive reading, its
memo) find no such reading there.
"""
from __future__ import annotations

import array
import collections
import enum
import functools
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conformance.boundcli import BOUND_CONFIG
from conformance.cli import EXIT_FAIL, EXIT_PASS, EXIT_USAGE, main
from conformance.machine import Machine
from conformance.registry import load_protocol
from conformance.search import statekey
from conformance.search.bounded import bounded
from conformance.search.statekey import key
from protocols.immediate import Immediate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUG_2_4 = os.path.join(REPO, "litmus", "bug-2.4-reclaim-vs-mprotect.litmus")


# -- protocol files for the command line ------------------------------------------------

#: the review's failing protocol: linux that never flushes its reclaim batch, with a dict
#: holding itself on the protocol object
CYCFAIL = """
from protocols.linux import Linux


class P(Linux):
    def __init__(self, arch, free_pages):
        super().__init__(arch, free_pages)
        self.d = {}
        self.d["self"] = self.d

    def try_to_unmap_flush(self, task):
        pass
"""

#: correct protocols (immediate) whose per-mm state is each shape the review named
PASSING = {
    "dict_holding_itself": "s = {}; s['self'] = s; return s",
    "list_holding_itself": "s = []; s.append(s); return s",
    "object_holding_itself": "o = Obj(); o.me = o; return o",
    "doubly_linked_ring": ("a, b = Obj(), Obj(); a.v, b.v = 1, 2; a.next = a.prev = b; "
                           "b.next = b.prev = a; return a"),
    "list_5000_deep": ("s = []\n        for _ in range(5000):\n            s = [s]\n"
                       "        return s"),
    "slotted_list_1000": ("h = None\n        for i in range(1000):\n            h = Node(i, h)\n"
                          "        return h"),
}

_PASSING_MODULE = """
from protocols.immediate import Immediate


class Obj:
    pass


class Node:
    __slots__ = ("v", "next")

    def __init__(self, v, nxt):
        self.v, self.next = v, nxt


class X(Immediate):
    def init_mm(self, mm):
        {body}
"""


def _write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_certify_reports_a_cyclic_protocols_violation_with_a_reproducer_that_replays(
        tmp_path, capsys):
    """The failure certify finds is shrunk, explored for its shortest interleaving (which
    keys every state), reported and saved; the reproducer replays it."""
    path = _write(tmp_path, "cycfail", CYCFAIL)
    repro = tmp_path / "repro"
    rc = main(["certify", path, "--budget", "5", "--jobs", "1", "--database", "none",
               "--repro-dir", str(repro)])
    out, err = capsys.readouterr()
    assert rc == EXIT_FAIL, out + err
    # S2 or S1, each a real violation of a pass that never flushes (S2 until 2026-12-07
    # 15:00, S1 until 22:00, when reclaim began to isolate its whole batch first): which one
    # the walk meets first moves with the model; the reproducer and the scenario must keep it
    assert "Traceback" not in err
    rule = next(r for r in ("S1", "S2") if f"FAIL: {r} violated" in out)
    saved = repro / "cycfail-0.json"
    assert json.loads(saved.read_text())["rule"] == rule
    assert main(["replay", str(saved)]) == EXIT_FAIL
    out = capsys.readouterr().out
    assert f"replayed  VIOLATION {rule}" in out
    # and the scenario it wrote explores to the same violation
    assert main(["explore", str(repro / "cycfail-0.litmus"), "--protocol", path,
                 "--repro-dir", str(repro)]) == EXIT_FAIL
    assert f"verdict   FAIL: {rule}" in capsys.readouterr().out


@pytest.mark.parametrize("shape", PASSING)
def test_bound_of_a_passing_cyclic_or_deep_protocol_passes(shape, tmp_path, capsys):
    """The same states as immediate itself: 129 at K=1 (the state adds no behaviour; 106
    before tlb_end_vma stopped flushing, MMU_GATHER_MERGE_VMAS, 2026-12-07; 104 before
    free_pgtables freed tables, 188 before the canonical TLB key, both 2026-12-06)."""
    path = _write(tmp_path, shape, _PASSING_MODULE.format(body=PASSING[shape]))
    rc = main(["bound", path, "-k", "1", "--jobs", "1"])
    out, err = capsys.readouterr()
    assert rc == EXIT_PASS and "Traceback" not in err, out + err
    assert "K=1  129 states  480 transitions" in out and "verdict   PASS" in out


@pytest.mark.parametrize("shape", ["dict_holding_itself", "doubly_linked_ring"])
def test_explore_and_litmus_of_a_passing_cyclic_protocol_pass(shape, tmp_path, capsys):
    path = _write(tmp_path, shape, _PASSING_MODULE.format(body=PASSING[shape]))
    assert main(["explore", BUG_2_4, "--protocol", path]) == EXIT_PASS
    assert "verdict   PASS" in capsys.readouterr().out
    assert main(["litmus", "bug-2.4-reclaim-vs-mprotect", "--protocol", path]) == EXIT_PASS
    assert "1/1 cells as expected" in capsys.readouterr().out


# -- keys --------------------------------------------------------------------------------

class Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class Node:
    __slots__ = ("v", "next")

    def __init__(self, v, nxt):
        self.v, self.next = v, nxt


def _machine(state):
    """An immediate machine whose first mm holds ``state`` as its protocol state."""
    m = Machine(Immediate, BOUND_CONFIG)
    m.mms[0].proto = state
    return m


def _ring(*values, forwards=True):
    """A doubly-linked ring of ``Obj(v=...)``, its first node; built from either end."""
    nodes = [Obj(v=v) for v in values]
    order = range(len(nodes)) if forwards else reversed(range(len(nodes)))
    for i in order:
        nodes[i].next = nodes[(i + 1) % len(nodes)]
        nodes[(i + 1) % len(nodes)].prev = nodes[i]
    return nodes[0]


def _self_dict(**items):
    d = dict(items)
    d["self"] = d
    return d


def test_states_differing_only_inside_a_cycle_get_different_keys():
    assert key(_machine(_ring(1, 2, 3))) != key(_machine(_ring(1, 2, 4)))
    assert key(_machine(_self_dict(n=1))) != key(_machine(_self_dict(n=2)))
    # where the back-reference points is state too: a ring of three whose last node's
    # "next" leads back to the second node, not the first
    a, b = _ring(1, 2, 3), _ring(1, 2, 3)
    b.next.next.next = b.next
    assert key(_machine(a)) != key(_machine(b))


def test_equal_cyclic_states_get_equal_keys_however_they_were_built():
    """Separately built, in another order (other ids, another dict order inside each node):
    one key."""
    assert key(_machine(_ring(1, 2, 3))) == key(_machine(_ring(1, 2, 3, forwards=False)))
    assert key(_machine(_self_dict(n=1))) == key(_machine(_self_dict(n=1)))


def test_a_cyclic_state_and_its_unrolled_look_alike_get_different_keys():
    d = _self_dict()
    unrolled = {"self": {"self": {"self": {}}}}
    assert key(_machine(d)) != key(_machine(unrolled))
    s = []
    s.append(s)
    for look_alike in ([[[]]], [["cycle", 1]], [[None]], [(1,)]):
        assert key(_machine(s)) != key(_machine(look_alike))
    # a node whose "me" is itself, and one whose "me" is an equal node with no "me"
    o = Obj()
    o.me = o
    assert key(_machine(o)) != key(_machine(Obj(me=Obj())))
    # a ring of two and a ring of one with the same value
    assert key(_machine(_ring(1, 1))) != key(_machine(_ring(1)))


def test_deep_acyclic_state_is_keyed_by_content():
    def chain(n, last):
        h = Node(last, None)
        for i in range(n - 1):
            h = Node(i, h)
        return h
    a, b, c = chain(1000, 0), chain(1000, 0), chain(1000, 1)
    assert key(_machine(a)) == key(_machine(b)) != key(_machine(c))
    deep = []
    for _ in range(5000):
        deep = [deep]
    assert key(_machine(deep)) != key(_machine([[deep]]))


def test_cycles_through_methods_closures_and_partials():
    """A back-reference through the values the key reads by special rules (a bound
    method's object, a closure's cell, a partial's arguments, a deque)."""
    def state(v):
        o = Obj(v=v)
        o.cb = o.__init__  # a bound method of o
        o.fn = lambda: o  # a closure over o
        o.p = functools.partial(print, o)
        o.q = collections.deque([o])
        return o
    assert key(_machine(state(1))) == key(_machine(state(1))) != key(_machine(state(2)))


def test_the_keys_are_the_same_in_every_process():
    """No id() or hash order in a cyclic state's key: a set inside the cycle, two hash
    seeds."""
    code = textwrap.dedent("""
        from conformance.boundcli import BOUND_CONFIG
        from conformance.machine import Machine
        from conformance.search.statekey import key
        from protocols.immediate import Immediate
        class Obj:
            pass
        o = Obj()
        o.me, o.tags, o.kids = o, {"alpha", "beta", "gamma", "delta"}, [o, {"o": o}]
        m = Machine(Immediate, BOUND_CONFIG)
        m.mms[0].proto = o
        print(key(m).hex())
    """)
    keys = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=REPO)
        r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        keys.add(r.stdout.strip())
    assert len(keys) == 1


class Counted(Immediate):
    """immediate that counts, modulo 3, the page faults of each mm in its per-mm state: two
    nodes, the counter in the second; :class:`CyclicCounted` links them both ways."""
    name = "counted"

    def init_mm(self, mm):
        a, b = Obj(v=0), Obj(v=0)
        a.next = b
        return a

    def handle_mm_fault_end(self, task, mm, vma, vpage, write) -> None:
        nxt = mm.proto.next
        nxt.v = (nxt.v + 1) % 3
        super().handle_mm_fault_end(task, mm, vma, vpage, write)


class CyclicCounted(Counted):
    name = "cyclic-counted"

    def init_mm(self, mm):
        a = super().init_mm(mm)
        a.prev = a.next.next = a.next
        a.next.prev = a
        return a


def test_a_cyclic_protocol_has_the_states_of_its_acyclic_twin():
    """The counter inside the cycle is state (no merge) and the cycle itself adds none (no
    split): the same states and transitions as the twin without back pointers; the start
    and hardware undo restore the cyclic state exactly (``check_undo``)."""
    got = []
    for cls in (Counted, CyclicCounted):
        r = bounded(cls, BOUND_CONFIG, 2)
        assert r.passed
        got.append([(lv.states, lv.transitions) for lv in r.levels])
    assert got[0] == got[1]
    assert got[0][-1][0] > bounded(Immediate, BOUND_CONFIG, 2).levels[-1].states  # counted
    r = bounded(CyclicCounted, BOUND_CONFIG, 2, check_undo=True, max_states=1500)
    assert r.failure is None and r.stopped == "max-states"


# -- the reading without recursion is the recursive one ----------------------------------

class Colour(enum.Enum):
    RED = 1


class OwnedList(list):
    pass


UNSET = object()


def _forms(v):
    """Protocol state of every form the key reads (tests/test_state_keys.py's and more)."""
    owned = OwnedList([v, (v,)])
    owned.extra = {"v": v}
    return Obj(
        deque=collections.deque([v, [v]], maxlen=5), ba=bytearray([v]),
        arr=array.array("q", [v]), partial=functools.partial(max, v, key=abs),
        closure=(lambda: v), default=(lambda x=v, *, y=[v]: x), owned=owned,
        colour=Colour.RED, unset=UNSET, frozen=frozenset({v, v + 1}), sets={(v, "a"), "b"},
        it=iter([v, v + 1]), rng=range(v), method=Obj().__init__, builtin=len,
        nested={"a": [{"b": (v, None, 1.5, b"x", True)}]}, slotted=Node(v, Node(v, None)))


@pytest.mark.parametrize("name", ["linux", "luf_v12", "immediate", "linux_4_3"])
def test_the_safe_reading_gives_the_recursive_readings_bytes(name):
    """On states without a cycle the two readings of the key give the same bytes (the
    bounded search may mix keys taken either way in one search): machines of several
    protocols with operations in flight, and every form of protocol state."""
    from conformance.search import fingerprint as F

    m = Machine(load_protocol(name), BOUND_CONFIG)
    object.__setattr__(m.proto, "state", _forms(3))
    object.__setattr__(m.proto, "more", [_forms(4), m.proto.state])
    key(m)  # the protocol's class registered (its object opaque inside other values)
    ops = [m.reclaim(1, (m.frame_of(0, 1),)), m.munmap(0, 0, 2)]
    in_flight = 0
    for step in range(12):
        run = m.runnable_ops()
        if run:
            m.advance(run[step % len(run)].id)
        in_flight = max(in_flight, len(m.ops))
        ranks = statekey._x._inst_ranks(m)
        F.ranked(ranks)
        try:
            fast = statekey._parts(m, F.fp, F.top, statekey._OP_FN)
            F.ranked(ranks)
            safe = statekey._parts(m, F.safe_fp, F.safe_top, statekey._OP_FN_SAFE)
        finally:
            F.ranked(None)
        assert fast == safe, step
    assert in_flight == 2 and ops


def test_a_result_that_refers_above_itself_is_not_remembered():
    """Within one key an object's fingerprint is kept for its next meeting (the memo) only
    if its back-references stay inside it: a node read under its parent refers to the
    parent, read alone it does not."""
    from conformance.search import fingerprint as F

    parent = Obj(v=1)
    child = Obj(v=2, up=parent)
    parent.down = child
    alone = (F.safe_fp(parent), F.safe_fp(child))
    F.ranked(([], set()))
    try:
        assert (F.safe_fp(parent), F.safe_fp(child)) == alone
        assert (F.safe_fp(child), F.safe_fp(parent)) == alone[::-1]
    finally:
        F.ranked(None)
    assert alone[1] == ("Obj", ("up", ("Obj", ("down", (..., 2)), ("v", 1))), ("v", 2))


def test_state_nested_too_deep_for_every_reading_is_one_line(tmp_path, capsys):
    """Where a depth limit is left (values read by special rules inside one another: here
    3,000 bound methods, each of the next object), a one-line error naming the protocol,
    exit 2. (Passes on the code before this change too, with exit 3.)"""
    path = _write(tmp_path, "methods", """
        from protocols.immediate import Immediate


        class Obj:
            def hop(self):
                pass


        class X(Immediate):
            def init_mm(self, mm):
                o = Obj()
                for _ in range(3000):
                    nxt = Obj()
                    nxt.m = o.hop
                    o = nxt
                return o
    """)
    rc = main(["bound", path, "-k", "1", "--jobs", "1"])
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "protocol methods" in lines[0] and "nested too deep" in lines[0]
