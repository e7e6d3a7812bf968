"""Coverage counters (conformance/coverage.py): hooks per calling path, race windows, the
oracle's checks per rule; summed over chunks, printed on a PASS, emitted as Hypothesis events."""
from __future__ import annotations

import time

from conformance import coverage
from conformance.certify import Chunk, certify, run_chunk
from conformance.config import DEFAULT
from conformance.machine import Machine
from conformance.registry import load_protocol
from conformance.report import certify_report


def test_immediate_never_reaches_the_deferred_flush_hook():
    """immediate never defers (should_defer_flush is False), so set_tlb_ubc_flush_pending is
    never called; mainline reaches it. The pending window (a stale entry alive when an
    operation starts) is rare under immediate, not absent: kernel-owned windows open it (for
    instance fork write-protects the parent's PTEs and flushes once at the end of dup_mmap,
    whatever the protocol): 2 windows in these 300 examples, against 1,440 for linux."""
    imm = certify("immediate", budget_s=None, max_examples=300, chunk=150, jobs=1)
    lin = certify("linux", budget_s=None, max_examples=300, chunk=150, jobs=1)
    assert imm.passed and lin.passed
    assert "set_tlb_ubc_flush_pending" in coverage.unreached_hooks(imm.counts)
    assert "set_tlb_ubc_flush_pending" not in coverage.unreached_hooks(lin.counts)
    assert coverage.hooks(lin.counts)["set_tlb_ubc_flush_pending"].keys() <= {"reclaim", "migrate",
                                                                               "madvise"}
    imm_pending = sum(coverage.windows(imm.counts)["pending"].values())
    lin_pending = sum(coverage.windows(lin.counts)["pending"].values())
    assert lin_pending > 100 * max(imm_pending, 1)
    text = certify_report(imm, load_protocol("immediate"), "c0ffee", [])
    assert "never reached: set_tlb_ubc_flush_pending" in text
    assert "never reached: set_tlb_ubc_flush_pending" not in certify_report(
        lin, load_protocol("linux"), "c0ffee", [])


def test_counts_are_summed_over_chunks():
    """A run's counters are the sum of its chunks' (chunk 0 is the same seed either way)."""
    whole = certify("linux", budget_s=None, max_examples=40, chunk=20, jobs=1)
    a = certify("linux", budget_s=None, max_examples=20, chunk=20, jobs=1)
    assert whole.chunks == 2 and whole.counts != a.counts
    assert all(whole.counts[k] >= n for k, n in a.counts.items())
    assert sum(coverage.checks(whole.counts).values()) > sum(coverage.checks(a.counts).values())


def test_hook_counted_per_calling_path():
    m = Machine(coverage.counted_class(load_protocol("linux")))
    m.munmap(0, 0, 1)
    m.drain()
    per = coverage.hooks(coverage.tally(m, {}))
    assert per["flush_tlb_batched_pending"] == {"munmap": 1}
    assert per["tlb_finish_mmu"] == {"munmap": 1}
    m.switch_mm(1, 0)
    assert coverage.hooks(coverage.tally(m, {}))["context_switch"] == {"switch": 1}


def test_pending_window_at_operation_start_and_stale_use():
    """A stale entry (its PTE cleared behind the TLB) alive when an operation starts counts
    the pending window for that path; a user access hitting it while the operation is in
    flight counts the stale-used window."""
    linux = coverage.counted_class(load_protocol("linux"))
    m = Machine(linux)
    m.mms[0].ptes[1].clear()          # CPU0 (mm0) still caches v1
    m.munmap(2, 3, 1)                 # CPU2 runs mm0 too: a munmap starts
    assert m.coverage["window pending"] == {"munmap": 1}
    assert m.ops, "munmap should still be in flight"
    m.user_access(0, 1, write=False)  # a TLB hit on the stale entry
    assert m.coverage["window stale-used"] == {"munmap": 1}
    m2 = Machine(linux)
    m2.munmap(2, 3, 1)
    m2.user_access(0, 1, write=False)
    assert m2.coverage["window pending"] == {} and m2.coverage["window stale-used"] == {}


def test_hypothesis_engine_emits_events(monkeypatch):
    """The state machine's teardown sums the example's counters and reports each hook and
    window reached as a Hypothesis event (pytest --hypothesis-show-statistics lists them)."""
    import conformance.search.statemachine as sm

    seen = []
    monkeypatch.setattr(sm, "event", seen.append)
    counts: dict = {}
    ex, st, failures, _, _ = run_chunk(load_protocol("linux"), DEFAULT, False, 20, 5, 1,
                                       time.monotonic(), counts=counts)
    assert ex >= 5 and not failures
    assert any(e.startswith("hook ") for e in seen)
    assert not any(e.startswith("check ") for e in seen)
    assert counts["check C1"] > 0 and coverage.hooks(counts)


def test_plain_machines_count_nothing():
    """The soundness campaign's raw walk (a plain protocol class) pays for no counting."""
    m = Machine(load_protocol("linux"))
    m.munmap(0, 0, 1)
    m.drain()
    assert m.coverage == {} and type(m.proto) is not coverage.counted_class(type(m.proto))
    assert set(coverage.tally(m, {})) == {"check " + r for r in coverage.RULES}


def test_chunk_keeps_counts_over_the_wire():
    from conformance.certify import Task, run_task

    r = run_task(Task("linux", DEFAULT, False, 10, Chunk(0, 0, 3), time.time()))
    assert r.counts["check C1"] > 0


def test_a_hypothesis_chunk_puts_the_shrink_cap_back():
    """run_chunk caps Hypothesis's shrink phase for its own run only: the cap is process-wide,
    and left set it capped every later fuzz() of a pytest worker."""
    from hypothesis.internal.conjecture import engine

    before = engine.MAX_SHRINKING_SECONDS
    run_chunk(load_protocol("linux"), DEFAULT, False, 20, 3, 1, time.monotonic(), shrink_s=7)
    assert engine.MAX_SHRINKING_SECONDS == before


def test_a_base_hook_is_counted_without_a_greenlet():
    """A hook the protocol leaves to the base class (linux: try_to_unmap_begin) does nothing,
    so the pointed class leaves it unwrapped: in a counted class it is the counting call
    alone, as in a plain class the base's no-op, not a greenlet hand-off per call. It is still
    counted per path."""
    from conformance.hookpoints import pointed_class
    counted = coverage.counted_class(load_protocol("linux"))
    assert pointed_class(counted).try_to_unmap_begin is counted.try_to_unmap_begin
    assert pointed_class(counted).set_tlb_ubc_flush_pending is not counted.set_tlb_ubc_flush_pending
    m = Machine(counted)
    m.reclaim(0, (0,))
    m.drain()
    assert coverage.tally(m, {})["hook try_to_unmap_begin @reclaim"] == 1


def test_a_pointed_hook_counts_inline_and_calls_the_protocol_directly():
    """A hook the machine wraps with interleaving points (hookpoints.pointed_class) counts
    its calls itself: the wrapper calls the protocol's own function, with no counting frame
    between (one Python call per hook call), and the counts are the same as the counting
    wrapper's: each call, by path, once. A base-class no-op hook keeps its counting wrapper."""
    linux = load_protocol("linux")
    m = Machine(coverage.counted_class(linux))
    hook = type(m.proto).set_tlb_ubc_flush_pending
    assert hook.__wrapped__ is linux.set_tlb_ubc_flush_pending
    noop = type(m.proto).try_to_unmap_begin  # linux does not define it
    assert noop._fc_counts is type(m.proto).__mro__[2].try_to_unmap_begin
    op = m.reclaim(1, (m.frame_of(0, 0),))
    m.drain()
    assert op not in m.ops
    counts = coverage.tally(m, {})
    # try_to_unmap_flush twice: shrink_folio_list calls it, and linux's
    # try_to_unmap_flush_dirty calls it again (a hook calling a hook counts too)
    assert {k: n for k, n in counts.items() if k.startswith("hook ")} == {
        "hook init_tlb_ubc @reclaim": 1, "hook should_defer_flush @reclaim": 1,
        "hook set_tlb_ubc_flush_pending @reclaim": 1, "hook try_to_unmap_flush @reclaim": 2,
        "hook try_to_unmap_flush_dirty @reclaim": 1, "hook try_to_unmap_begin @reclaim": 1,
        "hook try_to_unmap_end @reclaim": 1, "hook free_unref_folios @reclaim": 1}


def test_beside_writer_window_counts_each_overlap_where_it_begins(monkeypatch):
    """A fault holding A's VMA lock when munmap(B) takes ``mmap_lock`` counts the
    beside-writer window for munmap once (the writer's start); a fault on B starting
    under mprotect(A)'s ``mmap_lock`` counts it for mprotect (the fault's start). On the
    pre-6.4 model (no per-VMA locks) neither overlap exists and the window stays empty."""
    from test_per_vma_lock import fault_held_under_a, pre_6_4

    from conformance.config import MachineConfig

    linux = coverage.counted_class(load_protocol("linux"))
    m = Machine(linux)
    f = fault_held_under_a(m)
    m.munmap(2, 2, 2)
    assert f in m.ops and m.coverage["window beside-writer"] == {"munmap": 1}
    m.drain()
    assert m.coverage["window beside-writer"] == {"munmap": 1}

    m = Machine(linux, MachineConfig(ncpus=5))
    m.madvise(4, 2, 1, "dontneed")
    m.drain()
    fault_held_under_a(m)
    m.mprotect(2, 0, 2, False)  # waits for A's reader: holds mmap_lock, no reader of B yet
    assert m.coverage["window beside-writer"] == {"mprotect": 1}  # beside the fault on A
    m.fault(4, 2, False)
    assert m.coverage["window beside-writer"] == {"mprotect": 2}  # and the one on B
    m.drain()
    cert_never = coverage.unreached_windows(coverage.tally(m, {}))
    assert "beside-writer @munmap" in cert_never and "beside-writer @reclaim" not in cert_never

    pre_6_4(monkeypatch)
    m = Machine(linux)
    fault_held_under_a(m)
    m.munmap(2, 2, 2)
    m.drain()
    assert m.coverage["window beside-writer"] == {}
