"""The state keys (the bounded check's ``statekey.key`` and the explorer's ``fingerprint``)
read every form protocol state can take, or refuse it: a value a key cannot read merges two
different states, and the search loses one's future (a false "no violation").

A review (2026-12-05) found forms both keys read as a bare class name (a deque, a bytearray,
an array, a partial, a closure, a default argument), a container subclass's own attributes
left out, classes recognised by name (a protocol's own ``Cpu`` or ``Arch``), and any
``__dict__`` entry named ``arch`` skipped; with the last, two machines with the same key,
one of which fails S2 when drained. Each test below fails on that code.
"""
import array
import collections
import functools

import pytest

from conformance.boundcli import BOUND_CONFIG
from conformance.errors import Failure, UsageError
from conformance.machine import Machine
from conformance.registry import load_protocol
from conformance.search.explorer import fingerprint
from conformance.search.snapshot import snapshot
from conformance.search.statekey import key
from protocols.linux import Linux


class Ubc:
    """``struct tlbflush_unmap_batch`` as a plain class, with the kernel's field names."""

    def __init__(self, batch):
        self.arch = batch
        self.flush_required = False
        self.writable = False


class UnslottedBatch(Linux):
    """linux with its per-task batch written as a plain (unslotted) class."""
    name = "linux-unslotted-batch"

    def init_task(self, task):
        return Ubc(self.arch.new_batch())


def _deferred(cls):
    """A machine whose reclaim has deferred a flush to a non-empty batch."""
    m = Machine(cls, BOUND_CONFIG)
    op = m.reclaim(0, (m.frame_of(0, 0),))
    while op.tlb_ubc.arch.cpumask == 0:
        m.advance(op.id)
    return m, op


def _drain(m):
    try:
        m.drain()
        m.check_quiescent()
    except Failure as f:
        return f.rule
    return None


def test_a_batch_field_named_arch_is_in_the_key():
    """The cpumask of an unslotted batch's ``arch`` field decides the future (S2 when a CPU
    is left out of the deferred flush): the keys must tell the two machines apart."""
    a, _ = _deferred(UnslottedBatch)
    b, opb = _deferred(UnslottedBatch)
    assert key(a) == key(b) and fingerprint(a) == fingerprint(b)
    assert opb.tlb_ubc.arch.cpumask != 0b01
    opb.tlb_ubc.arch.cpumask = 0b01
    assert key(a) != key(b) and fingerprint(a) != fingerprint(b)
    assert _drain(a) is None and _drain(b) == "S2"  # what the merge would have lost


class Owed(dict):
    pass


class Cpu:  # a protocol's own per-CPU state, named as the model's class is
    def __init__(self, i, gen):
        self.id, self.loaded_gen = i, gen


class Arch:  # a protocol's own per-mm arch context
    def __init__(self, gen):
        self.tlb_gen = gen


def _owed(gen):
    d = Owed({1: 3})
    d.gen = gen
    return d


FORMS = {
    "deque": lambda v: collections.deque([v]),
    "bytearray": lambda v: bytearray([v]),
    "array": lambda v: array.array("q", [v]),
    "partial": lambda v: functools.partial(max, v),
    "closure": lambda v: (lambda: v),
    "default argument": lambda v: (lambda x=v: x),
    "dict subclass attribute": _owed,
    "a class named Cpu": lambda v: [Cpu(0, v)],
    "a class named Arch": Arch,
}


@pytest.mark.parametrize("form", FORMS)
def test_protocol_state_of_every_form_reaches_both_keys(form):
    m = Machine(load_protocol("linux"), BOUND_CONFIG)
    keys = []
    for v in (1, 5):
        object.__setattr__(m.proto, "state", FORMS[form](v))
        keys.append((key(m), fingerprint(m)))
    assert keys[0][0] != keys[1][0] and keys[0][1] != keys[1][1]


def test_a_value_no_key_can_read_stops_the_search():
    m = Machine(load_protocol("linux"), BOUND_CONFIG)
    object.__setattr__(m.proto, "state", memoryview(b"x"))
    with pytest.raises(UsageError, match="state key cannot read a builtins.memoryview"):
        key(m)
    with pytest.raises(UsageError, match="state key cannot read"):
        fingerprint(m)


def test_the_start_undo_restores_every_form():
    """``snapshot``/``restore`` (the bounded check's undo of a start) puts back the content
    of deques, bytearrays, arrays and a container subclass's attributes, which it recorded
    as nothing before."""
    m = Machine(load_protocol("linux"), BOUND_CONFIG)
    state = {"q": collections.deque([1]), "b": bytearray(b"\x01"), "a": array.array("q", [1]),
             "o": _owed(1)}
    object.__setattr__(m.proto, "state", state)
    before = key(m)
    s = snapshot(m)
    state["q"].append(2)
    state["b"][0] = 9
    state["a"].append(7)
    state["o"].gen = 2
    assert key(m) != before
    s.restore()
    assert key(m) == before
    assert list(state["q"]) == [1] and state["b"] == b"\x01" and list(state["a"]) == [1]
    assert state["o"].gen == 1


class Flag:
    """Two sentinels a protocol keeps as class attributes."""
    IDLE = object()
    OWED = object()


def test_sentinels_are_keyed_by_the_name_that_binds_them():
    """A bare object() is keyed by its module global or class attribute: two different
    sentinels differ (they merged, and a class attribute's scan of every module ran at every
    key, 4.6x slower searches: a review); one nothing names stops the search."""
    m = Machine(load_protocol("linux"), BOUND_CONFIG)
    keys = []
    for v in (Flag.IDLE, Flag.OWED):
        object.__setattr__(m.proto, "state", v)
        keys.append((key(m), fingerprint(m)))
    assert keys[0][0] != keys[1][0] and keys[0][1] != keys[1][1]
    object.__setattr__(m.proto, "state", object())
    with pytest.raises(UsageError, match="state key cannot read a builtins.object"):
        key(m)


def _closure_counter():
    seen = []  # reachable only through the closure

    def note():
        seen.append(1)
        return len(seen)
    return note


def test_the_start_undo_restores_closures_defaults_and_partials():
    """The key reads closure cells, defaults and a partial's arguments; the undo skipped
    functions, so a counter in a closure made ``check_undo`` fail (a review)."""
    m = Machine(load_protocol("linux"), BOUND_CONFIG)
    note = _closure_counter()
    held = []
    state = {"note": note, "default": (lambda x=held: x), "partial": functools.partial(max, held)}
    object.__setattr__(m.proto, "state", state)
    before = key(m)
    s = snapshot(m)
    note()
    held.append(3)
    state["default"].__defaults__ = ([9],)
    assert key(m) != before
    s.restore()
    assert key(m) == before and note() == 1 and held == []


def test_enum_members_and_the_protocols_own_methods_are_keyed():
    """An Enum member in protocol state made the bounded key recurse (its __dict__ holds its
    class), and a bound method of the protocol itself made the explorer's fingerprint
    recurse (the protocol read inside its own state): both found by a review, 2026-12-05."""
    import enum

    class Phase(enum.Enum):
        IDLE = 1
        OWED = 2

    m = Machine(load_protocol("linux"), BOUND_CONFIG)
    values = (Phase.IDLE, Phase.OWED, m.proto.try_to_unmap_flush, m.proto.try_to_unmap_flush_dirty)
    keys = []
    for v in values:
        object.__setattr__(m.proto, "state", v)
        keys.append((key(m), fingerprint(m)))
    assert len({k for k, _ in keys}) == 4 and len({f for _, f in keys}) == 4


# -- state outside the machine (conformance/search/outside.py) --------------------------------

OUTSIDE = {
    "a module global": ("SEEN = {}\n\n\nclass P(Linux):\n"
                        "    def try_to_unmap_flush(self, task):\n"
                        "        SEEN[len(SEEN)] = 1\n"
                        "        super().try_to_unmap_flush(task)\n", "SEEN (outside_global.py)"),
    "a class attribute": ("class P(Linux):\n    calls = []\n\n"
                          "    def try_to_unmap_flush(self, task):\n"
                          "        self.calls.append(1)\n"
                          "        super().try_to_unmap_flush(task)\n",
                          "P.calls (outside_attribute.py)"),
    "a default argument": ("class P(Linux):\n"
                           "    def try_to_unmap_flush(self, task, seen=[]):\n"
                           "        seen.append(1)\n"
                           "        super().try_to_unmap_flush(task)\n",
                           "P.try_to_unmap_flush (outside_argument.py)"),
}


@pytest.mark.parametrize("form", list(OUTSIDE))
def test_state_outside_the_machine_stops_the_searches(tmp_path, form):
    """A protocol keeping state in a module global, a class attribute or a default argument
    escapes the keys and the re-executions: the bounded check and the explorer could report
    "no violation" for states they never looked at (docs/BOUNDED.md). Before 2026-12-05 this
    was documented, not detected; now the search ends with one line naming the value, in a
    worker process too (--jobs). The same protocol keeping nothing there passes."""
    from conformance.litmus import corpus
    from conformance.search.bounded import bounded
    from conformance.search.explorer import explore
    source, name = OUTSIDE[form]
    path = tmp_path / f"outside_{form.split()[-1]}.py"
    path.write_text("from protocols.linux import Linux\n\n" + source)
    cls = load_protocol(str(path))
    sc = next(s for s in corpus() if s.name == "bug-2.4-reclaim-vs-mprotect")
    for search in (lambda: bounded(cls, BOUND_CONFIG, 1),
                   lambda: bounded(cls, BOUND_CONFIG, 2, jobs=2, max_states=3000),
                   lambda: explore(sc, cls)):
        with pytest.raises(UsageError) as exc:
            search()
        assert f"changed {name} during the search: state outside the machine" in str(exc.value), \
            str(exc.value)
    assert bounded(load_protocol("linux"), BOUND_CONFIG, 1).failure is None
    assert explore(sc, load_protocol("linux")).verdict == "pass"


EVERY_OTHER = ("from protocols.linux import Linux\n\nCOUNT = [0]\n\n\nclass P(Linux):\n"
               "    def try_to_unmap_flush(self, task):\n"
               "        COUNT[0] += 1\n"
               "        if COUNT[0] % 2:\n"
               "            super().try_to_unmap_flush(task)\n")


def test_state_outside_the_machine_that_changes_a_replay_is_named_not_a_crash(tmp_path):
    """A hook that flushes on every other call, counting calls in a module global (a user
    review, 2026-12-06): a re-execution of a passing path failed, which the bounded check
    took for its own bug (ModelError "replay of a passing state failed", exit 3 with a
    traceback), before its check of outside state after the search could name the global.
    Now the ModelError gives way to that check's one line, in a worker (--jobs 2) too. The
    explorer named it already."""
    from conformance.search.bounded import bounded
    path = tmp_path / "every_other.py"
    path.write_text(EVERY_OTHER)
    cls = load_protocol(str(path))
    for jobs in (1, 2):
        with pytest.raises(UsageError, match=r"changed COUNT \(every_other.py\) during the "
                                             r"search: state outside the machine"):
            bounded(cls, BOUND_CONFIG, 1, jobs=jobs)


def test_certify_bound_keeps_the_random_failure_when_the_bounded_check_cannot_run(
        tmp_path, capsys):
    """``certify P --bound K`` where the random search failed and the bounded check then
    stops on state outside the machine: the failure is reported (exit 1), the bounded
    check's error follows on stderr, and no certificate claims a bounded result. Before
    2026-12-06 it printed nothing on stdout and exited 3: the failure was lost. The
    failure does not replay in the parent (the count moved on): that is the protocol's
    doing, a PROTOCOL ERROR naming the global, where it was a MODEL ERROR ("a flushcheck
    bug, please report", exit 3)."""
    from conformance.cli import main
    path = tmp_path / "every_other.py"
    path.write_text(EVERY_OTHER)
    out, repro = tmp_path / "cert", tmp_path / "r"
    # seed 2: a failure that does not replay at once (seed 1's shrink took 40 s of CI; seed
    # 2's failure replayed from faults taking their VMA's lock, docs/model.md item 31, until
    # reclaim isolated its whole batch first, item 37, 2026-12-07 22:00; seed 8's replays
    # since, and its shrink's explorer ended in a traceback until outside.changes_first
    # named the global there too)
    assert main(["certify", str(path), "--examples", "500", "--jobs", "1", "--seed", "2",
                 "--database", "none", "--bound", "1", "--repro-dir", str(repro),
                 "--out", str(out)]) == 1
    got = capsys.readouterr()
    assert "  verdict   PROTOCOL ERROR" in got.out, got.out
    assert "did not replay" in got.out and "changed COUNT (every_other.py)" in got.out
    assert "MODEL ERROR" not in got.out
    assert "error: the bounded check: protocol every_other changed COUNT" in got.err, got.err
    assert "certificate: none written" in got.err and not out.exists()


def test_a_shrink_whose_explorer_meets_state_outside_the_machine_is_no_crash(tmp_path, capsys):
    """certify's shrink explores the shrunk failure's interleavings (``shortest``); with
    EVERY_OTHER's module global a passing path failed when re-executed there, a ModelError
    that ended certify in a traceback ("internal error", exit 3; seed 8, 2026-12-07 22:30).
    The explorer now names the changed global first (``outside.changes_first``), the shrink
    keeps its delta-debugged failure unproven, and the verdict is the failure's."""
    from conformance.cli import main
    path = tmp_path / "every_other.py"
    path.write_text(EVERY_OTHER)
    rc = main(["certify", str(path), "--examples", "500", "--jobs", "1", "--seed", "8",
               "--database", "none", "--repro-dir", str(tmp_path / "r")])
    got = capsys.readouterr()
    assert rc == 1 and "internal error" not in got.err and "Traceback" not in got.err, got.err
    assert "  verdict   FAIL: S2 violated" in got.out and "not proven shortest" in got.out


def test_certify_bound_of_a_profile_says_the_error_under_every_config(tmp_path, capsys):
    """A profile of three configs with ``--bound`` and a protocol whose state the bounded
    check cannot take: the first config's bounded error ended the command (exit 2) and the
    other configs never ran; the error is now said under each config's report, the
    bounded check runs once, and the profile's status is 2, where a config's 2 was dropped
    and it said 0 (a review, 2026-12-06)."""
    from conformance.cli import main
    path = tmp_path / "every_other.py"
    # counts every call but always flushes: the random search passes (EVERY_OTHER's own
    # missing flushes failed one example of a config since 2026-12-06), the bounded check
    # still sees the count change
    path.write_text(EVERY_OTHER.replace("        if COUNT[0] % 2:\n    ", ""))
    assert main(["certify", str(path), "--profile", "thorough", "--examples", "1", "--chunk",
                 "1", "--jobs", "1", "--database", "none", "--steps", "1", "--bound", "1",
                 "--repro-dir", str(tmp_path / "r")]) == 2
    got = capsys.readouterr()
    assert got.out.count("  verdict   ") == 3 and "--profile thorough: 3 configs" in got.out
    assert got.err.count("error: the bounded check: protocol every_other changed COUNT") == 3


def test_the_watch_reads_function_attributes_random_state_and_survives_cycles(tmp_path):
    """A review of the watch (2026-12-05): a function attribute (``helper.calls += 1``) and
    a ``random.Random``'s draws were not seen, a logger (a cyclic graph) crashed the search
    (RecursionError), and attributes that only changed order crashed ``check``."""
    from conformance.search import outside
    from conformance.search.bounded import bounded
    path = tmp_path / "watched.py"
    path.write_text("import logging\nimport random\n\nfrom protocols.linux import Linux\n\n"
                    "LOG = logging.getLogger(__name__)\nRNG = random.Random(0)\n\n\n"
                    "def helper():\n    pass\n\n\nclass P(Linux):\n    pass\n")
    cls = load_protocol(str(path))
    assert bounded(cls, BOUND_CONFIG, 1).failure is None  # a logger: no crash, no change
    mod = __import__("sys").modules[cls.__mro__[1].__module__]
    before = outside.look(cls)
    mod.RNG.random()
    with pytest.raises(UsageError, match=r"changed RNG \(watched.py\)"):
        outside.check(cls, before)
    before = outside.look(cls)
    mod.helper.calls = 1
    with pytest.raises(UsageError, match=r"changed helper \(watched.py\)"):
        outside.check(cls, before)
    before = outside.look(cls)
    outside.check(cls, tuple(reversed(before)))  # the same values in another order


def test_the_watch_takes_deep_and_cyclic_globals(tmp_path):
    """A module global nested 5,000 deep: comparing two looks recursed in C (``now ==
    old``), a RecursionError and exit 3, on the code before 2026-12-05 (evening); the look
    is a digest per name now. A change deep inside it, or inside a cyclic global, is still
    seen."""
    from conformance.search import outside
    from conformance.search.bounded import bounded
    path = tmp_path / "deep_globals.py"
    path.write_text("from protocols.linux import Linux\n\nCHAIN = None\nfor _ in range(5000):\n"
                    "    CHAIN = [CHAIN]\nRING = {'n': 0}\nRING['me'] = RING\n\n\n"
                    "class P(Linux):\n    pass\n")
    cls = load_protocol(str(path))
    assert bounded(cls, BOUND_CONFIG, 1).failure is None
    mod = __import__("sys").modules[cls.__mro__[1].__module__]
    before = outside.look(cls)
    inner = mod.CHAIN
    while inner[0] is not None:
        inner = inner[0]
    inner.append(1)
    with pytest.raises(UsageError, match=r"changed CHAIN \(deep_globals.py\)"):
        outside.check(cls, before)
    before = outside.look(cls)
    mod.RING["n"] = 1
    with pytest.raises(UsageError, match=r"changed RING \(deep_globals.py\)"):
        outside.check(cls, before)


def test_a_protocol_that_logs_keeps_its_logger_unchanged(tmp_path):
    """A logger fills its level cache the first time a level is asked for: read by the safe
    fingerprint (a review of 96a6524) a ``log.debug`` in a hook was "changed log during the
    search", exit 2, for a correct protocol. A logger is read by its repr, which stays.
    In a process of its own: pytest's logging handlers hide it (a lock in the graph)."""
    import os
    import subprocess
    import sys
    path = tmp_path / "logs.py"
    path.write_text("import logging\n\nfrom protocols.immediate import Immediate\n\n"
                    "log = logging.getLogger(__name__)\n\n\nclass P(Immediate):\n"
                    "    def should_defer_flush(self, task, mm):\n"
                    "        log.debug('asked')\n"
                    "        return super().should_defer_flush(task, mm)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-m", "conformance.cli", "bound", str(path), "-k", "2",
                        "-q"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "verdict   PASS" in r.stdout, (r.returncode, r.stdout, r.stderr)
