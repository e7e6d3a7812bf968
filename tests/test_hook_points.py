"""Automatic interleaving points inside protocol hooks (conformance/hookpoints.py, issue 14).

A hook's effects (a flush, a free, a store to shared protocol state) are each an
interleaving point, inside helper methods too; hooks that must not yield stay atomic; a
mutant that frees before it flushes in one plain hook, invisible while hooks were atomic,
now fails, found both by the explorer and by the random walk.
"""
from __future__ import annotations

import ast
import os

import pytest

from conformance.errors import ProtocolError
from conformance.search.explorer import explore
from conformance.hookpoints import ATOMIC_HOOKS, paused_at
from conformance.litmus import load
from conformance.machine import Machine
from conformance.config import MachineConfig
from conformance.registry import load_protocol
from conformance.search.walk import run_example
from protocols.linux import Linux

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GAP = os.path.join(ROOT, "litmus", "gap-atomic-hook.litmus")


class MergeVmas(Linux):
    """The mutant's correct counterpart: ``MMU_GATHER_MERGE_VMAS`` (no flush at
    ``tlb_end_vma``), ``tlb_flush_mmu`` in the kernel's order (flush, then free)."""

    MMU_GATHER_MERGE_VMAS = True


def points(m):
    """(who's CPU, hook, effect) of every automatic point in ``m``'s trace."""
    return [(getattr(e[1], "cpu", e[1]), e[3][0], e[3][1]) for e in m.trace.events
            if e[2] == "point"]


# -- the mutant ------------------------------------------------------------------------------
def test_explorer_finds_free_before_flush():
    res = explore(load(GAP), load_protocol("mut_gather_free_before_flush"))
    assert res.verdict == "S1"
    text = res.failure.report()
    # the reproducer shows the window: CPU0 freed the page inside its hook and paused
    # there, before its flush; the other consumer is handed the page: S1
    assert "(tlb_finish_mmu pauses after free)" in text
    assert text.index("pfn0 freed") < text.index("pauses after free") < text.index("!! S1")


@pytest.mark.parametrize("proto", ["linux", "immediate", MergeVmas])
def test_correct_protocols_pass_the_gap_scenario(proto):
    cls = load_protocol(proto) if isinstance(proto, str) else proto
    res = explore(load(GAP), cls)
    assert res.verdict == "pass" and res.complete


def test_random_walk_finds_free_before_flush():
    mutant = load_protocol("mut_gather_free_before_flush")
    found = None
    for seed in range(400):
        ex = run_example(mutant, seed=seed, swarm=True)
        if ex.failure is not None:
            found = ex.failure
            break
    assert found is not None and found.rule == "S1"
    # the counterpart survives the same seeds
    for s in range(seed + 1):
        assert run_example(MergeVmas, seed=s, swarm=True).failure is None


# -- determinism -----------------------------------------------------------------------------
@pytest.mark.parametrize("proto", ["linux", "luf_vma_flag", "mut_gather_free_before_flush"])
def test_same_seed_same_trace(proto):
    cls = load_protocol(proto)
    a = run_example(cls, seed=11, swarm=True).machine
    b = run_example(cls, seed=11, swarm=True).machine
    assert list(a.trace.lines()) == list(b.trace.lines())
    assert a.actions == b.actions


# -- what is a point -------------------------------------------------------------------------
class HelperFlush(Linux):
    """``tlb_finish_mmu`` frees through a helper, then flushes through another."""

    def _free(self, tlb):
        tlb.free_pages(tlb)

    def _flush(self, tlb):
        self.arch.flush_tlb_mm(tlb.mm, tlb.task)

    def tlb_end_vma(self, tlb, vma) -> None:
        pass

    def tlb_finish_mmu(self, tlb) -> None:
        self._flush(tlb)
        self._free(tlb)
        tlb.mm.tlb_flush_pending -= 1


#: munmap of one page: start, zap (PTL), tlb_end_vma + tlb_finish_mmu, return
HELPER_STEPS_ATOMIC = 2


def test_an_effect_inside_a_helper_is_a_point():
    m = Machine(HelperFlush, MachineConfig(populate=True))
    op = m.munmap(0, 0, 1)
    seen = []
    while op in m.ops:
        m.advance(op.id)
        seen.append(paused_at(op))
    # one point, between the helpers' two effects (after the flush, before the free)
    assert "flush_tlb_mm" in seen
    assert [p[1:] for p in points(m)] == [("tlb_finish_mmu", "flush_tlb_mm")]
    assert op.steps == HELPER_STEPS_ATOMIC + 1


def test_shared_state_store_is_a_point_task_state_is_not():
    """linux's ``set_tlb_ubc_flush_pending``: ``arch_tlbbatch_add_pending`` (bumps the shared
    ``tlb_gen``), then the store to ``mm->tlb_flush_batched``: a point between them; the
    ``tlb_ubc`` stores between them are not effects."""
    m = Machine(load_protocol("linux"))
    m.reclaim(1, (m.frame_of(0, 0),))
    m.drain()
    got = [p[1:] for p in points(m) if p[1] == "set_tlb_ubc_flush_pending"]
    assert got == [("set_tlb_ubc_flush_pending", "arch_tlbbatch_add_pending")]


def test_generator_hooks_keep_their_yields():
    """linux's ``flush_tlb_batched_pending`` yields between its flush and its cmpxchg: that
    ``yield`` is the point between the two effects (no automatic point is added)."""
    m = Machine(load_protocol("linux"))
    m.reclaim(1, (m.frame_of(0, 0),))
    m.drain()
    op = m.munmap(0, 0, 1)
    while op in m.ops:
        m.advance(op.id)
    got = [p[2] for p in points(m) if p[1] == "flush_tlb_batched_pending"]
    assert got == ["yield"]


# -- must-not-yield hooks ----------------------------------------------------------------------
def test_atomic_hooks_match_the_model_call_sites():
    """:data:`ATOMIC_HOOKS` is exactly what the model calls through ``Machine.call_hook``
    or ``call_predicate`` (the kernel cannot stop there) plus the state constructors."""
    called = set()
    from conformance.hooks import model_files
    for f in model_files():
        if f == "protocol.py":
            continue
        tree = ast.parse(open(os.path.join(ROOT, "conformance", f)).read())
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("call_hook", "call_predicate")
                    and isinstance(node.args[0], ast.Attribute)):
                called.add(node.args[0].attr)
    assert called | {"init_mm", "init_vma", "init_task"} == ATOMIC_HOOKS


def test_must_not_yield_hooks_stay_atomic():
    """luf_v12 flushes in ``context_switch`` and ``page_alloc``: no point, no operation."""
    m = Machine(load_protocol("luf_v12"))
    m.reclaim(1, (m.frame_of(0, 2),))  # a read-only file page: LUF defers its flush
    m.drain()
    assert m.proto.pending
    n = len(points(m))
    m.switch_mm(0, 1)  # finish_task_switch: luf_flush_mm(mm0), in one step
    assert 0 not in m.proto.mm_luf_owed
    assert not m.proto.pending and len(points(m)) == n and not m.ops


class YieldingPageAlloc(Linux):
    def page_alloc(self, task, frame):
        yield


def test_a_must_not_yield_hook_that_yields_is_a_protocol_error():
    m = Machine(YieldingPageAlloc)
    with pytest.raises(ProtocolError, match="page_alloc yielded"):
        m.consumer_alloc()


# -- protocol errors -------------------------------------------------------------------------
class RaisesAfterFlush(Linux):
    def tlb_end_vma(self, tlb, vma) -> None:
        self.arch.flush_tlb_mm(tlb.mm, tlb.task)
        raise RuntimeError("boom")


class LoopsFlushing(Linux):
    def tlb_end_vma(self, tlb, vma) -> None:
        while True:
            self.arch.flush_tlb_mm(tlb.mm, tlb.task)


def test_a_hook_raising_after_a_point_is_a_protocol_error():
    m = Machine(RaisesAfterFlush)
    op = m.munmap(0, 0, 1)
    with pytest.raises(ProtocolError, match="RuntimeError in munmap.*boom"):
        m.drain()
    assert op.label in str(m.trace.timeline(3))


def test_a_hook_looping_on_effects_is_a_protocol_error():
    m = Machine(LoopsFlushing)
    m.munmap(0, 0, 1)
    with pytest.raises(ProtocolError, match="did not finish"):
        m.drain()


# -- litmus scripts ----------------------------------------------------------------------------
SCRIPT = """
name   until-a-point
config populate=false ncpus=2
CPU0   touch w v0
CPU1   switch mm0
CPU1   fill v0
CPU0   munmap M v0 1
M      until pauses after free
consumer alloc
M      finish
"""


def test_litmus_until_stops_at_a_named_point():
    """``until pauses after free`` stops the mutant between its free and its flush (S1 at
    the allocation); linux has no such point, so its munmap runs to the end and passes."""
    from conformance.litmus import parse, run

    sc = parse(SCRIPT)
    assert run(sc, load_protocol("mut_gather_free_before_flush")).rule == "S1"
    assert run(sc, load_protocol("linux")) is None


class _GenFlush(Linux):
    """linux with one more point at the start of ``try_to_unmap_flush``, which mainline's
    ``try_to_unmap_flush_dirty`` calls as a plain function."""

    def try_to_unmap_flush(self, task):
        yield
        return super().try_to_unmap_flush(task)


def test_a_generator_hook_called_by_a_hook_runs_to_its_end():
    """Reclaim of a dirty page that CPU0 and CPU2 cache: try_to_unmap_flush_dirty's plain
    call runs the generator override (the flush before pageout), its yield a point. With the
    generator handed back unrun, as before, the copy-out found the writable entries: S2."""
    m = Machine(_GenFlush)
    m.reclaim(1, (m.frame_of(0, 0),))
    m.drain()
    m.check_quiescent()
    points = [e[3] for e in m.trace.events if e[2] == "point"]
    assert ("try_to_unmap_flush_dirty", "yield") in points
    text = m.trace.timeline(3)
    assert text.index("arch_tlbbatch_flush") < text.index("pageout")


def test_a_generator_hook_run_unrun_was_a_false_s2(monkeypatch):
    import conformance.hookpoints as hp
    from conformance.errors import S2Violation

    monkeypatch.setattr(hp, "_nested", lambda gen: gen)  # the generator back, unrun
    m = Machine(_GenFlush)
    m.reclaim(1, (m.frame_of(0, 0),))
    with pytest.raises(S2Violation):
        m.drain()


def test_yield_from_a_nested_generator_hook_gives_its_value():
    """``yield from`` of a generator hook called by a hook gives its return value; it ran
    once, its yield a point."""
    seen = []

    class Nested(_GenFlush):
        def try_to_unmap_flush_dirty(self, task):
            seen.append((yield from self.try_to_unmap_flush(task)))

        def try_to_unmap_flush(self, task):
            yield from super().try_to_unmap_flush(task)
            return "flushed"

    m = Machine(Nested)
    m.reclaim(1, (m.frame_of(0, 0),))
    m.drain()
    m.check_quiescent()
    assert seen == ["flushed"]
    assert ("try_to_unmap_flush_dirty", "yield") in [e[3] for e in m.trace.events
                                                     if e[2] == "point"]


def test_a_nested_generator_hooks_position_is_in_the_state_key():
    """Paused at the first or the second yield of a generator hook that another hook called,
    the operation is in two different states: the explorer's and the bounded check's keys
    read that generator's frames (hookpoints.paused_frames), or they would merge them."""
    from conformance.hookpoints import paused_frames
    from conformance.search.statekey import key

    class TwoYields(Linux):
        def try_to_unmap_flush_dirty(self, task):
            self.try_to_unmap_flush(task)  # a plain call: _nested runs it, yields are points

        def try_to_unmap_flush(self, task):
            yield
            yield
            return super().try_to_unmap_flush(task)

    m = Machine(TwoYields)
    op = m.reclaim(1, (m.frame_of(0, 0),))
    nested = []
    while op in m.ops:
        frames = tuple((f.f_code.co_name, f.f_lasti) for f in paused_frames(_drive_gen(op)))
        if any(n == "_nested" for n, _ in frames):
            nested.append(frames)
            assert key(m)  # the key takes them
        m.advance(op.id)
    # two pauses inside the nested generator, told apart by its own frame (the op's step
    # count, also in the key, does not tell them apart on every path)
    assert len(nested) == 2 and nested[0] != nested[1]


def _drive_gen(op):
    from conformance.hookpoints import _DRIVE_CODE
    g = op.gen
    while g is not None and getattr(g, "gi_code", None) is not _DRIVE_CODE:
        g = g.gi_yieldfrom
    return g or op.gen
