"""A protocol that raises, loops or breaks the hook rules is a protocol error with a
reproducer, never a crash of the suite (and never reported as a violation)."""
import json
import os
import re
import sys

import pytest

from conformance.certify import certify
from conformance.errors import ProtocolError
from conformance.litmus import corpus, run
from conformance.reproducer import load, replay, save
from protocols.linux import Linux

SC2017 = next(s for s in corpus() if s.name == "reclaim-vs-mprotect-2017")


class Raises(Linux):
    name = "raises"

    def try_to_unmap_flush(self, task):
        raise RuntimeError("boom")


class Loops(Linux):
    name = "loops"

    def flush_tlb_batched_pending(self, task, mm):
        while True:  # an interleaving point that never ends
            yield


class YieldsInAlloc(Linux):
    name = "yields_in_alloc"

    def page_alloc(self, task, frame):
        yield  # allocation cannot be interleaved


def test_raising_hook_is_a_protocol_error():
    f = run(SC2017, Raises)
    assert isinstance(f, ProtocolError)
    assert "RuntimeError in reclaim" in str(f) and "boom" in str(f)
    # the line its author goes to: this file, in the hook that raised
    assert f"(at {os.path.basename(__file__)}:" in str(f) and " in try_to_unmap_flush)" in str(f)
    # the timeline ends at the error's step, with its row in the operation's column (it
    # stopped at the last step that logged an event, a review found)
    # (its text wraps onto continuation lines: the last row with a step number)
    last = [x for x in f.report(last=None).splitlines() if re.match(r" *\d+ ", x)][-1]
    assert last.startswith(f"{f.step:>4} ") and "!! PROTOCOL ERROR: RuntimeError in" in last


def test_looping_hook_is_a_protocol_error():
    f = run(SC2017, Loops)
    assert isinstance(f, ProtocolError) and "did not finish" in str(f)


def test_yield_where_not_allowed_is_a_protocol_error():
    f = run(SC2017, YieldsInAlloc)
    assert isinstance(f, ProtocolError) and "page_alloc yielded" in str(f)


def test_correct_protocol_is_not_a_protocol_error():
    """The same scenario on the reference protocol passes (the checker is not trigger-happy)."""
    assert run(SC2017, Linux) is None


def test_certify_reports_protocol_error_with_a_replaying_reproducer(tmp_path):
    res = certify(Raises, budget_s=30, seed=0)
    assert isinstance(res.failure, ProtocolError)
    path = save(res.failure, str(tmp_path / "r.json"), seed=0)
    data = load(path)
    assert data["rule"] == "PROTOCOL-ERROR"
    assert isinstance(replay(data, Raises), ProtocolError)
    assert json.load(open(path))["actions"]


class WrongParameters(Linux):
    name = "wrong_parameters"

    def try_to_unmap_flush(self):  # the task parameter missing: the call fails, not the body
        pass


class WrongParametersAtomic(Linux):
    name = "wrong_parameters_atomic"

    def should_defer_flush(self, task):  # a must-not-yield hook, called through call_hook
        return True


class InitRaises(Linux):
    name = "init_raises"

    def __init__(self, arch, free_pages):
        raise RuntimeError("boom")


def test_a_hook_with_the_wrong_parameters_is_a_protocol_error():
    """The TypeError of the call names the protocol's own function: its fault, although no
    frame of it ran (before, a model error, and a traceback from certify's shrinking)."""
    for cls, hook in ((WrongParameters, "try_to_unmap_flush"),
                      (WrongParametersAtomic, "should_defer_flush")):
        f = run(SC2017, cls)
        assert isinstance(f, ProtocolError) and f"{cls.__name__}.{hook}() takes" in str(f)
        res = certify(cls, budget_s=30, seed=0)
        assert isinstance(res.failure, ProtocolError), res.failure


def test_a_model_type_error_is_not_blamed_on_the_protocol():
    from conformance.machine import Machine
    m = Machine(Linux)
    # linux declares its hooks as the base class does: a call with the wrong parameters
    # would be the kernel model's
    assert not m.protocol_fault(TypeError("Linux.try_to_unmap_flush() takes 1 positional "
                                          "argument but 2 were given"))
    assert not m.protocol_fault(TypeError("Machine.fill() takes 3 positional arguments"))
    w = Machine(WrongParameters)
    assert w.protocol_fault(TypeError("WrongParameters.try_to_unmap_flush() takes 1 "
                                      "positional argument but 2 were given"))


def test_a_protocol_that_cannot_boot_is_bad_input(capsys):
    import pytest

    from conformance.errors import UsageError
    from conformance.machine import Machine
    with pytest.raises(UsageError, match="cannot boot a machine: RuntimeError: boom"):
        Machine(InitRaises)


def test_cost_shows_a_protocol_error_instead_of_a_cost(tmp_path):
    from conformance.cost import cost_report
    path = tmp_path / "raising_flush.py"
    path.write_text("from protocols.linux import Linux\n\n\nclass RaisingFlush(Linux):\n"
                    "    def try_to_unmap_flush(self, task):\n"
                    "        raise RuntimeError('broken flush')\n")
    text, errors = cost_report([str(path), "linux"], ["default"], ops=400)
    assert errors and "ERROR in" in text and "broken flush (at raising_flush.py:6 in try_to_unmap_flush)" in text, text
    text, errors = cost_report(["linux"], ["default"], ops=400)
    assert not errors and "ERROR" not in text


class SpinsWithoutPoints(Linux):
    name = "spins"

    def try_to_unmap_flush(self, task):
        while True:  # no effect, no yield: no step count can see it
            pass


def test_a_hook_that_never_returns_is_a_protocol_error():
    """The watchdog (conformance/watchdog.py) stops a protocol frame that runs on without
    returning; the step reports a protocol error, and certify does not shrink it."""
    from conformance.search.shortest import minimize
    from conformance.watchdog import stuck, watch
    with watch(stuck_s=1):
        f = run(SC2017, SpinsWithoutPoints)
    assert isinstance(f, ProtocolError) and "HookStuck" in str(f) and "without returning" in str(f)
    assert stuck(f) and minimize(f)[0] is f
    assert not stuck(run(SC2017, Raises))


def test_the_pytest_plugin_stops_a_hook_that_never_returns():
    """fuzz (the pytest plugin's, under tests/test_protocols.py --flushcheck-protocol) ran
    without the watchdog, and a stuck hook hung the test run for good (a review, 2026-12-04):
    it is now a protocol error after the watchdog's 5 s."""
    from conformance.pytest_plugin import fuzz
    f = fuzz(SpinsWithoutPoints, examples=50, seed=0, shrink=False)
    assert isinstance(f, ProtocolError) and "HookStuck" in str(f)


def _count_watchdog_stops(monkeypatch) -> list:
    """A list that gains an item each time the watchdog stops a hook (a HookStuck made)."""
    from conformance.watchdog import HookStuck
    made = []
    init = HookStuck.__init__

    def counted(self, *a):
        made.append(1)
        init(self, *a)
    monkeypatch.setattr(HookStuck, "__init__", counted)
    return made


def test_the_hypothesis_engine_does_not_shrink_a_stuck_hook(monkeypatch):
    """Hypothesis shrank a stuck hook's failure by replaying it, each replay running the
    loop until the watchdog stopped it again (41.6 s for a 10 s budget, 2026-12-05). The
    chunk now ends at the next example: the loop runs for the example that found it and
    once more for Hypothesis's final replay, and the failure is reported unshrunk. (Without
    the stop, the same chunk with shrinking capped at 5 s replayed the loop 14 times, 20 s.)"""
    import time

    import conformance.certify as C
    from conformance.config import DEFAULT
    from conformance.watchdog import stuck, watch
    made = _count_watchdog_stops(monkeypatch)
    with watch(stuck_s=1):
        ex, _steps, failures, first, _prog = C.run_chunk(
            SpinsWithoutPoints, DEFAULT, False, 50, 100, 0, time.monotonic())
    assert len(failures) == 1 and stuck(failures[0]) and first is not None
    assert len(made) <= 2, f"the loop ran {len(made)} times"
    assert ex < 100


def test_the_pytest_plugin_does_not_shrink_a_stuck_hook_either(monkeypatch):
    """The plugin's fuzz shrinks by default (``pytest --flushcheck-protocol P``); a stuck hook
    ends its run at the next example as certify's Hypothesis chunks do
    (``certify.stop_at_stuck_hook``): the loop runs at most twice, not at every attempt
    (without the stop: 69 runs of the loop, 138 s at this 1 s watchdog, 2026-12-05)."""
    from conformance.pytest_plugin import fuzz
    from conformance.watchdog import stuck, watch
    made = _count_watchdog_stops(monkeypatch)
    with watch(stuck_s=1):
        f = fuzz(SpinsWithoutPoints, examples=50, seed=0)
    assert isinstance(f, ProtocolError) and stuck(f)
    assert len(made) <= 2, f"the loop ran {len(made)} times"


class LoopsThroughItsPoints(Linux):
    name = "yield_loop"

    def try_to_unmap_flush(self, task):
        while task.tlb_ubc.flush_required:  # never cleared: a point, forever
            yield
        return (yield from super().try_to_unmap_flush(task))


def test_a_hook_that_loops_through_its_points_is_named():
    """Stopped by max_op_steps, the error said only "a protocol hook loops?"; it names the
    hook the operation is paused in, and the point (a protocol author's review)."""
    f = run(SC2017, LoopsThroughItsPoints)
    assert isinstance(f, ProtocolError) and "did not finish in" in str(f)
    assert "paused in try_to_unmap_flush_dirty after yield" in str(f)  # which calls it


def _never_free() -> bool:
    return False


class RetriesThroughAHelper(Linux):
    name = "retries"

    def try_to_unmap_flush(self, task):
        while not _never_free():  # a new helper frame at every tick of the watchdog
            pass


def test_a_retry_loop_through_a_helper_is_stopped_too():
    """The watchdog looked at the innermost protocol frame, which a retry loop that calls a
    helper replaces at every tick: certify hung for good (a review, 2026-12-04). It now
    watches the hook the model called, and names the line the loop was in."""
    from conformance.watchdog import watch
    with watch(stuck_s=1):
        f = run(SC2017, RetriesThroughAHelper)
    # the hook the model called (linux's try_to_unmap_flush_dirty calls try_to_unmap_flush)
    assert isinstance(f, ProtocolError) and "Linux.try_to_unmap_flush_dirty ran for " in str(f), f
    # the line the loop was in when the tick came: the while, or the helper it calls
    assert re.search(r"\(at test_protocol_errors\.py:\d+ in (try_to_unmap_flush|_never_free)\)",
                     str(f)), f


class YieldsInsideAnAtomicSection(Linux):
    name = "atomic_yield"

    def flush_tlb_batched_pending(self, task, mm):
        from conformance.hookpoints import atomic_section
        with atomic_section():
            yield  # no point can be inside the block
        return (yield from super().flush_tlb_batched_pending(task, mm))


def test_a_yield_inside_an_atomic_section_is_a_protocol_error():
    """The hook paused there with the block still open, and every other CPU's hooks lost their
    points while it stayed paused (certify then crashed or blamed its own reproducer, a
    review of 2026-12-04): now a protocol error at the yield's line. The same hook with its
    yield after the block passes the scenario."""
    f = run(SC2017, YieldsInsideAnAtomicSection)
    assert isinstance(f, ProtocolError) and "AtomicYield" in str(f)
    assert "yield inside atomic_section()" in str(f) and "in flush_tlb_batched_pending)" in str(f)

    class YieldsAfterTheBlock(Linux):
        name = "atomic_then_yield"

        def flush_tlb_batched_pending(self, task, mm):
            from conformance.hookpoints import atomic_section
            with atomic_section():
                pass
            yield
            return (yield from super().flush_tlb_batched_pending(task, mm))
    assert run(SC2017, YieldsAfterTheBlock) is None


KILLS_ITS_WORKER = """import os, signal
from protocols.linux import Linux

PARENT = os.getpid()  # imported by flushcheck before it forks its workers


class KillsItsWorker(Linux):
    def try_to_unmap_flush(self, task):
        if os.getpid() != PARENT:  # as the OOM killer would: SIGKILL, no exception
            os.kill(os.getpid(), signal.SIGKILL)
        return super().try_to_unmap_flush(task)
"""


def test_a_worker_that_dies_stops_the_run_with_one_line(tmp_path):
    """A worker process killed in the middle of a chunk (here by the protocol; in real life
    by the OOM killer) ends the run with one line and exit 3, in certify and in the soundness
    campaign, whose pool waited forever for the dead worker's task until 2026-12-04. A
    correct protocol under the same pools passes (the pool itself works)."""
    import subprocess
    import sys
    path = tmp_path / "kills_its_worker.py"
    path.write_text(KILLS_ITS_WORKER)
    runs = {
        "certify": ["certify", str(path), "--jobs", "2", "--budget", "20",
                    "--repro-dir", str(tmp_path), "--database", "none"],
        "soundness": ["soundness", "--protocol", str(path), "--config-set", "quick",
                      "--jobs", "2", "--budget", "5", "--repro-dir", str(tmp_path)],
    }
    for name, argv in runs.items():
        r = subprocess.run([sys.executable, "-m", "conformance.cli", *argv], capture_output=True,
                           text=True, timeout=120, cwd=tmp_path)
        assert r.returncode == 3, (name, r.returncode, r.stdout[-500:], r.stderr[-500:])
        assert "a worker process died" in r.stderr and "Traceback" not in r.stderr, name
        assert len(r.stderr.strip().splitlines()) == 1, (name, r.stderr)
    ok = subprocess.run([sys.executable, "-m", "conformance.cli", "soundness", "--protocol", "linux",
                         "--config-set", "quick", "--jobs", "2", "--budget", "2",
                         "--repro-dir", str(tmp_path)], capture_output=True, text=True,
                        timeout=120, cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout[-500:] + ok.stderr[-500:]


class ForgetsToReturn(Linux):
    name = "forgets_to_return"

    def should_defer_flush(self, task, mm):
        self.arch.cpumask_any_but(self.arch.mm_cpumask(mm), task.cpu)  # no return: None


class AnswersInWords(Linux):
    name = "answers_in_words"

    def should_defer_flush(self, task, mm):
        return "no"


class AnswersWithAMask(Linux):
    name = "answers_with_a_mask"

    def should_defer_flush(self, task, mm):
        return self.arch.mm_cpumask(mm) & ~(1 << task.cpu)  # an int, as C would


def test_a_yes_or_no_hook_must_answer_a_bool():
    """should_defer_flush returning None (a forgotten return) or a str is a protocol error
    naming what it returned; None must not read as "never defer" and pass like immediate.
    An int is read as C reads it, so a cpumask answer behaves as linux does."""
    for cls, what in ((ForgetsToReturn, "None (NoneType)"), (AnswersInWords, "'no' (str)")):
        f = run(SC2017, cls)
        assert isinstance(f, ProtocolError), (cls, f)
        assert f"should_defer_flush returned {what}: return a bool" in str(f)
    assert run(SC2017, AnswersWithAMask) is None and run(SC2017, Linux) is None


def _a_watched_hook(monkeypatch, proto_file: str):
    """``hook(body)``, a function compiled as if ``proto_file`` (a protocol module's file,
    the only one the watchdog watches now) defined it, called as the suite calls a hook
    (from a function compiled as if in ``conformance/``): a hook frame to tick in by hand,
    the watchdog's state fresh, 2 ticks to stuck. ``hook.bare`` is the same function
    called with no suite frame outward (as a test function that calls ``fuzz()``)."""
    from conformance import watchdog
    ns: dict = {}
    exec(compile("def hook(body):\n    return body()\n", proto_file, "exec"), ns)
    exec(compile("def call_hook(fn, body):\n    return fn(body)\n",
                 watchdog._SUITE_DIR + "machine_for_tests.py", "exec"), ns)
    monkeypatch.setattr(watchdog, "PROTOCOL_FILES", {proto_file})
    monkeypatch.setattr(watchdog._State, "stuck_s", 2)
    monkeypatch.setattr(watchdog._State, "frame", None)
    monkeypatch.setattr(watchdog._State, "ticks", 0)
    monkeypatch.setattr(watchdog._State, "stuck", None, raising=False)

    def hook(body):
        return ns["call_hook"](ns["hook"], body)
    hook.bare = ns["hook"]
    return hook


def test_a_protocol_frame_the_suite_did_not_call_is_no_hook(monkeypatch):
    """A protocol class defined in a test module makes that module a protocol file, and the
    test function calling ``fuzz()`` a frame of it; it ran for seconds under load and was
    reported as a stuck hook (a CI run, 2026-12-06). A protocol frame counts only when the
    suite's code called it: ticks in the bare frame never raise; the same frame called as
    a hook does."""
    import signal
    import sys
    from conformance import watchdog
    hook = _a_watched_hook(monkeypatch, "/flushcheck-test/proto.py")

    def ticks():
        here = sys._getframe()
        for _ in range(3):
            watchdog._tick(signal.SIGALRM, here)
    hook.bare(ticks)  # nothing raised: the test function is no hook
    with pytest.raises(watchdog.HookStuck, match="hook ran for 2 s"):
        hook(ticks)


def test_the_watchdog_waits_out_a_gc_callback_instead_of_raising_into_it(monkeypatch):
    """A tick that lands in a garbage-collector callback (Hypothesis times collections with
    one) raised ``HookStuck`` there, where CPython swallows it (a
    ``PytestUnraisableExceptionWarning`` in a loaded CI run, 2026-12-05): the hook ran one
    more stuck period. The tick now leaves the callback alone and the next one raises."""
    import gc
    import signal
    import sys
    from conformance import watchdog
    hook = _a_watched_hook(monkeypatch, "/flushcheck-test/proto.py")

    def tick_inside_a_gc_callback() -> list:
        raised = []

        def on_gc(phase, info):
            if phase == "start":
                try:
                    watchdog._tick(signal.SIGALRM, sys._getframe())
                except watchdog.HookStuck:
                    raised.append(phase)
        gc.callbacks.append(on_gc)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(on_gc)
        return raised

    def stuck_hook_body():
        here = sys._getframe()
        watchdog._tick(signal.SIGALRM, here)  # the hook's frame first seen
        watchdog._tick(signal.SIGALRM, here)  # one stuck second
        assert tick_inside_a_gc_callback() == []  # stuck now, but not raised into the callback
        with pytest.raises(watchdog.HookStuck, match="hook ran for 2 s"):
            watchdog._tick(signal.SIGALRM, here)  # the next tick, back in the hook
    hook(stuck_hook_body)


class CorruptsTheGather(Linux):
    name = "corrupts_the_gather"

    def tlb_gather_mmu(self, tlb):
        super().tlb_gather_mmu(tlb)
        tlb.pages = None  # the kernel's list: zap_pte_range's append fails, in model code


class _Mute(Exception):
    def __str__(self):
        raise ValueError("no str")


class RaisesAMuteException(Linux):
    name = "raises_a_mute_exception"

    def try_to_unmap_flush(self, task):
        raise _Mute()


def test_certify_shrinks_a_model_error_into_one_report(monkeypatch):
    """A failure the walk reports as a model error (an exception of model code) crashed
    certify while it was shrunk: the replay that writes its threads (shortest.threads_of)
    and the explorer's let the exception through. It is one report with its actions, shrunk
    like any failure. Until 2026-12-06 the model error here came from a hook that broke
    its gather, which the guard now blames on the hook (a protocol error); the model's
    own bug is injected instead. An exception whose ``__str__`` raises was a traceback in
    the middle of becoming a protocol error."""
    import conformance.mm as K
    from conformance.errors import ModelError
    res = certify(CorruptsTheGather, budget_s=None, max_examples=50, seed=0)
    assert isinstance(res.failure, ProtocolError), res.failure
    assert "tlb_gather_mmu changed kernel state directly" in str(res.failure)

    def injected(self, tlb):
        raise AttributeError("injected model bug")
    with monkeypatch.context() as mp:
        mp.setattr(K.Kernel, "_tlb_batch_pages_flush", injected)
        res = certify(Linux, budget_s=None, max_examples=50, seed=0)
    f = res.failure
    assert isinstance(f, ModelError) and "AttributeError: injected model bug" in str(f), f
    assert f.machine is not None and f.machine.actions and res.litmus
    res = certify(RaisesAMuteException, budget_s=None, max_examples=50, seed=0)
    assert isinstance(res.failure, ProtocolError), res.failure
    assert "_Mute in " in str(res.failure) and "<_Mute.__str__ raised ValueError>" in str(res.failure)


HELPER: dict = {}  # a helper module of the protocol's, where its hook function is defined
exec(compile("def free_pages_helper(self, task, frames):\n    raise RuntimeError('helper boom')\n",
             "/flushcheck-test/helper.py", "exec"), HELPER)


class HookFromAHelper(Linux):
    name = "hook_from_a_helper"

    free_unref_folios = HELPER["free_pages_helper"]  # bound from the helper: no frame here


class RaisesStopIteration(Linux):
    name = "raises_stop_iteration"

    def free_unref_folios(self, task, frames):
        raise StopIteration  # out of the kernel's generator: a RuntimeError raised there


def test_a_fault_seen_through_a_helper_or_the_exception_chain_is_the_protocols():
    """Whose fault an exception is was read from its own traceback and the files of the
    protocol's classes: a hook bound from a helper module, and a hook's StopIteration (a
    RuntimeError of the kernel's generator, caused by the hook's), were model errors (and a
    crash while shrinking). The helper's file is the protocol's, and the cause counts."""
    f = run(SC2017, HookFromAHelper)
    assert isinstance(f, ProtocolError), f
    assert "RuntimeError in reclaim" in str(f) and "(at helper.py:2 in free_pages_helper)" in str(f)
    f = run(SC2017, RaisesStopIteration)
    assert isinstance(f, ProtocolError), f
    assert "generator raised StopIteration" in str(f) and " in free_unref_folios)" in str(f)
    res = certify(RaisesStopIteration, budget_s=None, max_examples=50, seed=0)
    assert isinstance(res.failure, ProtocolError), res.failure


class FreesTwice(Linux):
    name = "frees_twice"

    def free_unref_folios(self, task, frames):
        self.free_to_allocator(frames)
        self.free_to_allocator(frames)  # the allocator's ModelError, under this hook


class RaisesAModelError(Linux):
    name = "raises_a_model_error"

    def free_unref_folios(self, task, frames):
        from conformance.errors import ModelError
        raise ModelError("oops")


class RaisesAUsageError(Linux):
    name = "raises_a_usage_error"

    def free_unref_folios(self, task, frames):
        from conformance.errors import UsageError
        raise UsageError("not my fault")


def test_our_own_errors_raised_under_a_hook_are_the_protocols(monkeypatch):
    """A ModelError or UsageError raised while a hook of the protocol is on the stack (the
    allocator's double free of a hook that frees twice, a hook's own ``raise``) is its fault:
    it was a MODEL ERROR, a litmus line blamed, or, for certify, "reproducer does not apply
    to this model" (exit 2). The same ModelError raised under the base class's hook (model
    code: no frame of the protocol) stays a model error."""
    import conformance.mm as K
    from conformance.errors import ModelError
    for cls, what in ((FreesTwice, "ModelError in reclaim[pfn0]: double free of pfn0"),
                      (RaisesAModelError, "ModelError in reclaim[pfn0]: oops"),
                      (RaisesAUsageError, "UsageError in reclaim[pfn0]: not my fault")):
        f = run(SC2017, cls)
        assert isinstance(f, ProtocolError) and what in str(f), (cls, f)
        assert " in free_unref_folios)" in str(f)
    res = certify(RaisesAUsageError, budget_s=None, max_examples=50, seed=0)
    assert isinstance(res.failure, ProtocolError), res.failure

    def injected(self, frames):
        raise ModelError("injected model bug")
    monkeypatch.setattr(K.Kernel, "free_frames", injected)
    f = run(SC2017, Linux)
    assert f.__class__ is ModelError and "injected model bug" in str(f), f


class DropsItsLocks(Linux):
    name = "drops_its_locks"

    def try_to_unmap_flush(self, task):
        task.held.clear()  # kernel state: unlock's list.remove failed later, or a deadlock
        return super().try_to_unmap_flush(task)


class DropsItsLocksAtomically(Linux):
    name = "drops_its_locks_atomically"

    def should_defer_flush(self, task, mm):
        task.held.clear()
        return super().should_defer_flush(task, mm)


class SwapsItsLock(Linux):
    """Puts None in place of the PTL it holds: the list and its length unchanged (an audit,
    2026-12-06: a MODEL ERROR, "list.remove(x): x not in list")."""
    name = "swaps_its_lock"

    def flush_tlb_batched_pending(self, task, mm):
        if task.held:
            task.held[-1] = None
        return super().flush_tlb_batched_pending(task, mm)


class NeverFrees(Linux):
    name = "never_frees"

    def tlb_flush_mmu(self, tlb):
        self.tlb_flush_mmu_tlbonly(tlb)  # the gathered pages are never freed


def test_an_invariant_a_hook_broke_is_the_protocols(monkeypatch):
    """A hook that changes the locks its task holds, or a gather whose tlb_flush_mmu never
    frees, is found by kernel code after the hook returned, with no frame of the protocol
    on the stack: a MODEL ERROR ("list.remove(x): x not in list", "deadlock", "tlb_finish_mmu
    left pages unfreed"), or a litmus line blamed for "bad arguments". The locks are checked
    as the hook returns, the gather against the protocol's own tlb_finish_mmu/tlb_flush_mmu;
    the same leak with the base class's hooks (the model's) stays a model error."""
    import conformance.mm as K
    from conformance.errors import ModelError
    from conformance.machine import Machine
    # (the hook the kernel called: linux's try_to_unmap_flush_dirty calls try_to_unmap_flush)
    for cls, hook in ((DropsItsLocks, "try_to_unmap_flush_dirty"),
                      (DropsItsLocksAtomically, "should_defer_flush"),
                      (SwapsItsLock, "flush_tlb_batched_pending")):
        f = run(SC2017, cls)
        assert isinstance(f, ProtocolError), (cls, f)
        assert f"{hook} changed the locks its task holds" in str(f), f
        assert f"({hook} at " in str(f), f
    m = Machine(NeverFrees)
    with pytest.raises(ProtocolError, match=r"tlb_finish_mmu left pages unfreed \(its "
                       r"tlb_flush_mmu: test_protocol_errors.py:\d+\)"):
        m.munmap(0, 0, 1)
        m.drain()
    res = certify(DropsItsLocks, budget_s=None, max_examples=50, seed=0)
    assert isinstance(res.failure, ProtocolError), res.failure
    monkeypatch.setattr(K.Kernel, "_tlb_batch_pages_flush", lambda self, tlb: None)
    m = Machine(Linux)
    with pytest.raises(ModelError, match="tlb_finish_mmu left pages unfreed"):
        m.munmap(0, 0, 1)
        m.drain()


class AsyncFree(Linux):
    name = "async_free"

    async def free_unref_folios(self, task, frames):  # never awaited: never frees
        self.free_to_allocator(frames)


class ReturnsTheFrames(Linux):
    name = "returns_the_frames"

    def free_unref_folios(self, task, frames):
        self.free_to_allocator(frames)
        return frames


class AnswersASwitch(Linux):
    name = "answers_a_switch"

    def context_switch(self, cpu_id, prev, next_mm):
        return True  # a hook that must not yield, returning where None is the contract


class AsyncInitTask(Linux):
    name = "async_init_task"

    async def init_task(self, task):  # returns state, but never a coroutine
        return super().init_task(task)


class CallsAGeneratorHook(Linux):
    name = "calls_a_generator_hook"

    def try_to_unmap_flush(self, task):  # a generator hook
        yield
        super().try_to_unmap_flush(task)

    def try_to_unmap_flush_dirty(self, task):
        return self.try_to_unmap_flush(task)  # what it gives back stands for its None


def _run_warned(cls) -> tuple:
    """(the failure of SC2017 under ``cls``, Python's "coroutine ... was never awaited"
    warnings meanwhile, a garbage collection included)."""
    import gc
    import warnings
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        f = run(SC2017, cls)
        gc.collect()
    return f, [w for w in seen if "never awaited" in str(w.message)]


def test_a_hook_must_return_what_its_contract_says():
    """An ``async def`` hook returned its coroutine, never run, as a value the kernel
    ignored: the run went on to an oracle verdict (S2, its flush never made). A hook that
    returns a value where the contract returns None (conformance/protocol.py) is no flush
    either. Both are protocol errors naming the hook, pausable or not; the state the
    ``init_*`` hooks return is no error, and a hook returning the call of a generator hook
    (a stand-in for its None) neither."""
    from conformance.machine import Machine
    f, unawaited = _run_warned(AsyncFree)
    assert isinstance(f, ProtocolError), f
    assert "free_unref_folios is a coroutine function (async def)" in str(f), f
    assert not unawaited  # closed, not leaked
    f = run(SC2017, ReturnsTheFrames)
    assert isinstance(f, ProtocolError), f
    assert re.search(r"free_unref_folios returned \[\d+\] \(list\): the hook returns None", str(f))
    for cls, action, says in ((AnswersASwitch, lambda m: m.switch_mm(0, 1),
                               "context_switch returned True (bool)"),
                              (AsyncInitTask, lambda m: m.munmap(0, 0, 1),
                               "init_task is a coroutine function")):
        m = Machine(cls)
        with pytest.raises(ProtocolError, match=re.escape(says)):
            action(m)
    assert not isinstance(run(SC2017, CallsAGeneratorHook), ProtocolError)
    res = certify(ReturnsTheFrames, budget_s=None, max_examples=50, seed=0)
    assert isinstance(res.failure, ProtocolError), res.failure


def _for_a_while(seconds: float = 8.0) -> float:
    """A deadline the loops below give up at: they end on the old code instead of hanging
    the test run (the watchdog stops them long before, at its 1 s)."""
    import time
    return time.monotonic() + seconds


class SwallowsWhatItRaises(Linux):
    name = "swallows"

    def try_to_unmap_flush(self, task):
        import time
        end = _for_a_while()
        while time.monotonic() < end:  # a retry loop that swallows every Exception
            try:
                while time.monotonic() < end:
                    pass
            except Exception:  # noqa: BLE001
                continue


exec(compile("import time\n\n"
             "def spin(self, task, frames):\n"
             "    end = _for_a_while()\n"
             "    while time.monotonic() < end:\n"
             "        pass\n", "/flushcheck-test/spin_helper.py", "exec"),
     HELPER.setdefault("spin_ns", {"_for_a_while": _for_a_while}))


class SpinsInAHelper(Linux):
    name = "spins_in_a_helper"

    free_unref_folios = HELPER["spin_ns"]["spin"]  # bound from a helper module


def test_the_watchdog_stops_a_hook_that_swallows_it_or_lives_in_a_helper():
    """HookStuck was a RuntimeError: a retry loop with ``except Exception: continue`` caught
    it and looped on for good, certify hung. It is a BaseException now, still a protocol
    error. A hook bound from a helper module was no protocol code to the watchdog (its file
    was not in PROTOCOL_FILES): it was never stopped."""
    from conformance.watchdog import HookStuck, stuck, watch
    assert not issubclass(HookStuck, Exception)
    for cls, hook in ((SwallowsWhatItRaises, "Linux.try_to_unmap_flush_dirty"),
                      (SpinsInAHelper, "spin")):
        with watch(stuck_s=1):
            f = run(SC2017, cls)
        assert isinstance(f, ProtocolError) and stuck(f), (cls, f)
        assert f"{hook} ran for 1 s without returning" in str(f), f


def test_the_watchdog_raises_again_at_every_tick_once_a_hook_is_stuck(monkeypatch):
    """A hook that swallowed its HookStuck (a bare except) started a new stuck period: the
    ticks were counted from 0 again, and the next swallow restarted it, for good. Once stuck,
    the frame gets a HookStuck at every tick until it is gone; then it is forgotten."""
    import signal
    import sys
    from conformance import watchdog
    hook = _a_watched_hook(monkeypatch, "/flushcheck-test/swallows.py")

    def swallowing_hook_body():
        here = sys._getframe()
        raised = []
        for _ in range(3):  # first seen, one stuck second, stuck
            try:
                watchdog._tick(signal.SIGALRM, here)
            except BaseException as exc:  # noqa: BLE001 - the hook swallows it
                raised.append(exc)
        assert len(raised) == 1 and isinstance(raised[0], watchdog.HookStuck)
        with pytest.raises(watchdog.HookStuck, match="hook ran for 2 s"):
            watchdog._tick(signal.SIGALRM, here)  # the very next tick
    hook(swallowing_hook_body)
    watchdog._tick(signal.SIGALRM, sys._getframe())  # no protocol frame any more
    assert watchdog._State.stuck is None


def test_a_model_error_outside_a_step_has_its_machine():
    """A ModelError raised outside an operation's step (the other consumer's free of a frame
    freed behind its back, a deadlock while draining, an operation that returned holding a
    lock) had no machine: certify's report crashed on ``x.machine.actions``, or read "FAIL:
    MODEL-ERROR violated" with exit 1, and there was no reproducer."""
    from conformance.errors import ModelError
    from conformance.machine import Machine
    m = Machine(Linux)
    frame = m.consumer_alloc()
    m.mem.owner[frame] = "zapped"  # given up and freed behind the consumer's back
    m.kernel.free_frames([frame])
    with pytest.raises(ModelError, match=f"double free of pfn{frame}") as e:
        m.consumer_free()
    assert e.value.machine is m and e.value.step == len(m.actions) == 2


FAILED_ONCE: list = []


class FailsOnlyOnce(Linux):
    name = "fails_only_once"

    def free_unref_folios(self, task, frames):
        if not FAILED_ONCE:  # state outside the machine's slots: a replay passes
            FAILED_ONCE.append(1)
            raise RuntimeError("once")
        self.free_to_allocator(frames)


def test_a_failure_that_does_not_replay_in_the_parent_is_reported_in_words(monkeypatch):
    """certify replays the lowest failing chunk's failure from its actions in the parent; one
    that does not fail so there (a protocol keeping state outside its slots) was
    ``RuntimeError: worker failure did not replay in the parent``, a traceback (exit 3).
    It is reported in the worker's words, of its own kind, with why there is no
    reproducer."""
    import conformance.search.shortest as shortest
    from conformance.report import certify_report
    monkeypatch.setattr(sys.modules[__name__], "FAILED_ONCE", [])
    # not shrunk: each candidate passes, and the explorer would search all its states
    monkeypatch.setattr(shortest, "minimize", lambda failure: (failure, "", False))
    res = certify(FailsOnlyOnce, budget_s=None, max_examples=50, seed=0)
    f = res.failure
    assert isinstance(f, ProtocolError) and f.machine is None, f
    assert "RuntimeError in " in str(f) and "did not fail so when replayed here: they passed" in str(f)
    text = certify_report(res, FailsOnlyOnce, "commit", [])
    assert "verdict   PROTOCOL ERROR" in text and "no reproducer" in text, text


def test_an_oracle_verdict_that_does_not_replay_is_no_verdict(monkeypatch):
    """A worker's S2 that the parent's replay does not see (here flushcheck's own flake: the
    oracle fails once, at step 30 of the first run) was reported as "linux fails S2", exit 1
    (a review, 2026-12-05): the parent cannot tell the protocol's hidden state from a model
    nondeterminism, so it is no verdict, a MODEL ERROR (exit 3) in the worker's words."""
    import conformance.search.shortest as shortest
    from conformance.errors import ModelError
    from conformance.machine import Machine
    from conformance.report import certify_report
    done = []
    real = Machine._action

    def flaky(self, name, args):
        real(self, name, args)
        if self.trace.step == 30 and not done:
            done.append(1)
            self.oracle._fail("S2", "a flake of the model's, not linux's")
    monkeypatch.setattr(Machine, "_action", flaky)
    monkeypatch.setattr(shortest, "minimize", lambda failure: (failure, "", False))
    res = certify(Linux, budget_s=None, max_examples=50, seed=0, jobs=1)
    f = res.failure
    assert isinstance(f, ModelError) and "S2 did not replay, no verdict" in str(f), f
    text = certify_report(res, Linux, "commit", [])
    assert "verdict   FAIL" not in text and "MODEL ERROR" in text, text


class AsyncFlush(Linux):
    name = "async_flush"

    async def try_to_unmap_flush(self, task):  # linux's try_to_unmap_flush_dirty calls it
        return super().try_to_unmap_flush(task)


def test_an_async_hook_called_by_a_hook_is_refused_there():
    """A hook calling an ``async def`` hook (linux's try_to_unmap_flush_dirty calling
    try_to_unmap_flush) got the coroutine back and dropped it: the flush never ran, and
    Python warned that it was never awaited. The call is the protocol error."""
    f, unawaited = _run_warned(AsyncFlush)
    assert isinstance(f, ProtocolError), f
    assert "HookRuleBroken in reclaim" in str(f), f
    assert "try_to_unmap_flush is a coroutine function (async def)" in str(f), f
    assert not unawaited


def _module(tmp_path, name, body):
    path = tmp_path / f"{name}.py"
    path.write_text("from protocols.linux import Linux\n\n\nclass P(Linux):\n" + body)
    return str(path)


def test_a_python_hook_with_the_wrong_parameters_is_refused_at_load(tmp_path, capsys):
    """A hook the kernel cannot call is refused before any run, in one line naming its file
    and line: a run only sees it if it reaches the hook, and one that never does would
    certify a protocol the kernel cannot call (before 2026-12-05: left to the run)."""
    import pytest

    from conformance.cli import main
    from conformance.errors import UsageError
    from conformance.registry import load_protocol
    cases = {
        "short": ("    def try_to_unmap_flush(self):\n        pass\n",
                  "hook try_to_unmap_flush(self) (short.py:5) cannot be called as "
                  "try_to_unmap_flush(self, task): too many positional arguments"),
        "long": ("    def page_alloc(self, task, frame, extra):\n        pass\n",
                 "cannot be called as page_alloc(self, task, frame): missing a required "
                 "argument: 'extra'"),
        "static": ("    @staticmethod\n    def page_alloc(task, frame):\n        pass\n",
                   "hook page_alloc is a staticmethod; flushcheck calls every hook as a "
                   "method: write it as def page_alloc(self, task, frame)"),
        "klass": ("    @classmethod\n    def folio_mkclean(cls, task, frame):\n        pass\n",
                  "hook folio_mkclean is a classmethod"),
        # a hook a run may never reach (migration with one frame): refused before any run
        # since 2026-12-07 (a user review), as the classes above run it to HookRuleBroken
        "coro": ("    async def migrate_folio_move(self, task, src, dst):\n        pass\n",
                 "hook migrate_folio_move (coro.py:5) is an async def: the kernel calls it "
                 "and never awaits it"),
    }
    for name, (body, message) in cases.items():
        path = _module(tmp_path, name, body)
        with pytest.raises(UsageError, match=None) as exc:
            load_protocol(path)
        assert message in str(exc.value), exc.value
        assert main(["certify", path, "--examples", "5", "--jobs", "1"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    # what the kernel can call is accepted: extra parameters with defaults, *args
    ok = _module(tmp_path, "fine",
                 "    def page_alloc(self, task, frame, extra=None):\n        pass\n\n"
                 "    def do_wp_page(self, *args):\n        pass\n")
    assert load_protocol(ok).__mro__[1].__name__ == "P"


class FreesItsLastListAgain(Linux):
    """Frees the previous call's frames again: by then the other consumer holds one."""
    name = "frees_its_last_list_again"

    def free_unref_folios(self, task, frames):
        old, self.old = getattr(self, "old", []), list(frames)
        self.free_to_allocator(frames)
        self.free_to_allocator(old)


def test_a_double_free_of_a_frame_allocated_again_is_the_protocols():
    """The second free of a frame the other consumer got in between was accepted: the
    consumer's own free raised later, outside any hook, a MODEL ERROR blamed on flushcheck
    (left by the review of 2026-12-05). The allocator now refuses a frame in use, so the
    hook that frees it is named; the same script under linux passes."""
    from conformance.litmus import parse
    sc = parse("name x\nconfig populate=true ncpus=2\n"
               "CPU1 reclaim R pfn(mm0,v0)\nR finish\n"
               "consumer alloc\n"
               "CPU1 reclaim Q pfn(mm0,v1)\nQ finish\n"
               "consumer free\n")
    assert run(sc, Linux) is None
    f = run(sc, FreesItsLastListAgain)
    assert isinstance(f, ProtocolError), f
    assert "which is in use (the other consumer holds it)" in str(f), str(f)
    assert " in free_unref_folios)" in str(f), str(f)


def test_a_frame_something_still_references_is_not_freed():
    """A review of the free check (2026-12-05): a frame marked dead but still held by a
    gather was accepted, and the gather's own put then marked the (free) frame dead again
    and freed it twice: the frame was on the free list twice, silently. Now the early free
    is refused (still referenced), and a free frame the gather puts is a double free."""
    from types import SimpleNamespace

    from conformance.errors import ModelError
    from conformance.machine import Machine
    m = Machine(Linux)
    f = m.consumer_alloc()
    m.mem.owner[f] = "zapped"
    m.mem.gathered[f] = 1  # a gather holds it
    with pytest.raises(ModelError, match=f"free of pfn{f}, which is still referenced"):
        m.kernel.free_frames([f])
    m.mem.gathered[f] = 0
    m.kernel.free_frames([f])  # its last reference gone: freed
    m.mem.gathered[f] = 1  # a gather holding a frame that is free already
    with pytest.raises(ModelError, match=f"double free of pfn{f}"):
        m.kernel._tlb_batch_pages_flush(SimpleNamespace(pages=[f]))


def test_a_wrapper_that_adapts_the_parameters_is_accepted(tmp_path):
    """The load check reads the function called (a functools.wraps wrapper's own
    parameters), not the function it wraps: a review found an adapter refused."""
    from conformance.registry import load_protocol
    wrapped = tmp_path / "wrapped.py"
    wrapped.write_text("import functools\n\nfrom protocols.linux import Linux\n\n\n"
                       "def adapt(f):\n    @functools.wraps(f)\n"
                       "    def w(self, task):\n        return f(self)\n    return w\n\n\n"
                       "class W(Linux):\n    @adapt\n    def try_to_unmap_flush(self):\n"
                       "        pass\n")
    assert load_protocol(str(wrapped)).__mro__[1].__name__ == "W"


# -- an audit of 2026-12-06: hooks that broke the model without raising ----------------

class AddsToItsGather(Linux):
    name = "adds_to_its_gather"

    def tlb_flush_mmu_tlbonly(self, tlb):
        super().tlb_flush_mmu_tlbonly(tlb)
        tlb.pages.append(999)  # a frame no gather took: the free's IndexError


class RepointsItsGather(Linux):
    name = "repoints_its_gather"

    def tlb_gather_mmu(self, tlb):
        super().tlb_gather_mmu(tlb)
        tlb.mm = None


class RewritesItsTask(Linux):
    name = "rewrites_its_task"

    def init_task(self, task):
        task.args = None  # before the task is in Machine.ops: no guard saw it
        return super().init_task(task)


@pytest.mark.parametrize("cls,says", [
    (AddsToItsGather, "the gather's pages hold 999, a page no gather took a reference on"),
    (RepointsItsGather, "tlb_gather_mmu changed kernel state directly at step 1 (the "
                        "gather's mm, task, range, path and free: (<Mm>,"),
    (RewritesItsTask, "init_task changed the task's kernel fields (id, cpu, name, args, "
                      "path) of its munmap"),
])
def test_a_hook_that_breaks_its_gather_or_task_is_a_protocol_error(cls, says):
    """Each was a MODEL ERROR ("a flushcheck bug", exit 3) in certify and a traceback in
    ``bound``; the gather's kernel fields and pages are now watched (guard.gather_state,
    ``_tlb_batch_pages_flush``) and init_task's task checked as it returns. The bounded
    search reports it as its shortest counterexample, and linux itself still passes."""
    from conformance.boundcli import BOUND_CONFIG
    from conformance.search.bounded import bounded

    from conformance.config import DEFAULT
    from conformance.reproducer import replay_actions

    f = replay_actions(cls, DEFAULT, False, [["munmap", [0, 0, 1]], ["advance", [0]],
                                              ["advance", [0]], ["advance", [0]]])
    assert isinstance(f, ProtocolError) and says in str(f), f
    res = bounded(cls, BOUND_CONFIG, 1, menu=("munmap",))
    assert isinstance(res.failure, ProtocolError) and says in str(res.failure), res.failure
    assert bounded(Linux, BOUND_CONFIG, 1, menu=("munmap",)).passed


class AddsTheWindowsFolio(Linux):
    name = "adds_the_windows_folio"

    def tlb_flush_mmu_tlbonly(self, tlb):
        super().tlb_flush_mmu_tlbonly(tlb)
        if tlb.path == "munmap" and not getattr(self, "added", False):
            self.added = True  # once: the gather flushes again at tlb_finish_mmu
            tlb.pages.append(0)  # pfn0: a madvise split window holds it, no gather


@pytest.mark.parametrize("told_apart", [True, False])
def test_a_hook_adding_a_split_windows_folio_to_its_gather_is_a_protocol_error(told_apart):
    """The split window's ``folio_get`` is counted in ``mem.gathered`` with the gathers'
    references (so reclaim and the last put see it); a hook appending the window's frame to
    a gather's pages passed ``_tlb_batch_pages_flush``'s check and dropped the window's
    reference (noticed 2026-12-06, fixed 2026-12-07: ``mem.window_refs``). Without telling
    the two apart (``told_apart`` False: the window's count cleared by hand) the append
    goes through, which is what the check is for."""
    from conformance.machine import Machine

    m = Machine(AddsTheWindowsFolio)
    md = m.madvise(0, 0, 1, "free")  # the split window of mm0:v0 (pfn0), folio locked
    assert m.mem.window_refs == {0: 1} and m.mem.folio_lock[0].owner is md
    if not told_apart:
        m.mem.window_refs.clear()
    op = m.munmap(1, 0, 1)  # mm1 on CPU1: its gather's flush runs the hook
    if told_apart:
        with pytest.raises(ProtocolError, match="the gather's pages hold 0, a page no "
                                                "gather took a reference on"):
            while op in m.ops:
                m.advance(op.id)
    else:
        while op in m.ops:
            m.advance(op.id)
        assert m.mem.gathered[0] == 0  # the window's reference is gone


class RaisesKeyboardInterrupt(Linux):
    name = "raises_keyboard_interrupt"

    def try_to_unmap_flush(self, task):
        raise KeyboardInterrupt


def test_a_hooks_keyboard_interrupt_is_a_protocol_error_not_the_users(monkeypatch):
    """A hook's ``raise KeyboardInterrupt`` ended certify as "INTERRUPTED: no verdict", exit
    130, no reproducer (an audit, 2026-12-06). With the command's handler installed and no
    signal received it is a PROTOCOL ERROR; once a signal came (Ctrl-C, SIGTERM) it stays
    the user's; without the handler (a library caller) no one can tell, and it stays too."""
    from conformance import interrupts
    from conformance.errors import UsageError
    from conformance.machine import Machine

    class CannotBoot(Linux):
        name = "cannot_boot"

        def init_mm(self, mm):
            raise KeyboardInterrupt

    monkeypatch.setattr(interrupts, "_INSTALLED", [True])
    monkeypatch.setattr(interrupts, "_SIGNALLED", [])
    f = run(SC2017, RaisesKeyboardInterrupt)
    assert isinstance(f, ProtocolError) and "KeyboardInterrupt in reclaim" in str(f), f
    with pytest.raises(UsageError, match="cannot_boot cannot boot a machine: KeyboardInterrupt"):
        Machine(CannotBoot)
    monkeypatch.setattr(interrupts, "_SIGNALLED", [2])
    with pytest.raises(KeyboardInterrupt):
        run(SC2017, RaisesKeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        Machine(CannotBoot)
    monkeypatch.setattr(interrupts, "_SIGNALLED", [])
    monkeypatch.setattr(interrupts, "_INSTALLED", [])
    with pytest.raises(KeyboardInterrupt):
        run(SC2017, RaisesKeyboardInterrupt)


def test_the_command_tells_a_hooks_keyboard_interrupt_from_ctrl_c(tmp_path):
    """End to end, through ``console_main`` (the handler) and ``--jobs 2`` (forked workers
    that ignore SIGINT): exit 1 and a reproducer, where it was 130 and none."""
    import subprocess

    mod = tmp_path / "kbint.py"
    mod.write_text("from protocols.linux import Linux\n\n\nclass P(Linux):\n"
                   "    def try_to_unmap_flush(self, task):\n        raise KeyboardInterrupt\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for jobs in ("1", "2"):
        p = subprocess.run([sys.executable, "-c", "from conformance.cli import console_main; "
                            "console_main()", "certify", str(mod), "--budget", "5", "--jobs",
                            jobs, "--database", "none", "--repro-dir", str(tmp_path / "r")],
                           capture_output=True, text=True, cwd=root, timeout=300)
        assert p.returncode == 1, (jobs, p.stdout[-2000:], p.stderr[-2000:])
        assert "verdict   PROTOCOL ERROR" in p.stdout and "KeyboardInterrupt in" in p.stdout
        assert os.listdir(tmp_path / "r")


class _RaisingItems(dict):
    __slots__ = ()

    def items(self):
        raise ValueError("no items today")


class UnreadableState(Linux):
    name = "unreadable_state"

    def init_mm(self, mm):
        self.extra = _RaisingItems(a=1)
        return super().init_mm(mm)


class BreaksItsVmaAtBoot(Linux):
    name = "breaks_its_vma_at_boot"

    def init_vma(self, vma):
        vma.end = 100  # the boot's populate then indexes past the page table
        return super().init_vma(vma)


class RetagsItsVmaAtBoot(Linux):
    name = "retags_its_vma_at_boot"

    def init_vma(self, vma):
        vma.anon_id = None  # boots; the model fails later, with no hook running
        return super().init_vma(vma)


def test_boot_hooks_that_break_the_machine_and_state_the_key_cannot_read():
    """Three ways the audit of 2026-12-06 crashed the suite: protocol state whose reading
    raises (``bound``: a traceback; now a one-line error naming the protocol's line), an
    ``init_vma`` that breaks the boot (a traceback; now bad input, as a boot hook that
    raises), and one that changes a VMA without breaking the boot (nothing to blame; now
    the guard compares the boot with the base protocol's)."""
    from conformance.boundcli import BOUND_CONFIG
    from conformance.errors import ModelError, UsageError
    from conformance.guard import kernel_write
    from conformance.machine import Machine
    from conformance.search.bounded import bounded

    for jobs in (1, 2):
        with pytest.raises(UsageError, match=r"protocol unreadable_state: its state cannot be "
                           r"read for the bounded check's state key: ValueError: no items "
                           r"today \(at test_protocol_errors.py:\d+ in items\)"):
            bounded(UnreadableState, BOUND_CONFIG, 1, menu=("munmap",), jobs=jobs)
    with pytest.raises(UsageError, match=r"breaks_its_vma_at_boot cannot boot a machine: "
                       r"IndexError: .* the machine boots without them"):
        Machine(BreaksItsVmaAtBoot)
    for cls, blamed in ((RetagsItsVmaAtBoot, True), (Linux, False)):
        f = ModelError("the model failed later")
        f.machine = Machine(cls)
        said = kernel_write(f)
        if blamed:
            # each VMA: start, end, anon_id, file, pgoff, writable, maywrite, then its
            # lock's readers, write lock and anon_vma (docs/model.md section 11 item 31)
            assert said.startswith("a boot hook (init_mm, init_vma) changed kernel state (mm0 "
                                   "vmas: ((0, 2, 1, None, 0, True, True, 0, False, True), (2, "
                                   "4, None, 0, 0, False, False, 0, False, False)) -> ((0, 2, "
                                   "None, None"), said
        else:
            assert said is None, said


class ReadsItsTask(Linux):
    name = "reads_its_task"

    def init_task(self, task):
        repr(task)  # a debug log: makes task.label from its function, changes nothing
        return super().init_task(task)


class InterruptsInitTask(Linux):
    name = "interrupts_init_task"

    def init_task(self, task):
        raise KeyboardInterrupt


class InterruptsContextSwitch(Linux):
    name = "interrupts_context_switch"

    def context_switch(self, cpu_id, prev, next_mm):
        raise KeyboardInterrupt


def test_init_task_may_read_its_task_and_a_keyboard_interrupt_outside_a_step(monkeypatch):
    """A review of 2026-12-06: the init_task check compared the task's label, which reading
    it (``repr(task)``) makes from a function once, so a correct protocol that logs its task
    was a PROTOCOL ERROR; and a hook's KeyboardInterrupt raised outside an operation's step
    (``init_task``, ``context_switch``, called through ``Machine.call_hook``) was still the
    user's Ctrl-C."""
    from conformance import interrupts
    from conformance.config import DEFAULT
    from conformance.reproducer import replay_actions

    munmap = [["munmap", [0, 0, 1]]]  # init_task runs as it starts
    assert replay_actions(ReadsItsTask, DEFAULT, False, munmap) is None
    monkeypatch.setattr(interrupts, "_INSTALLED", [True])
    monkeypatch.setattr(interrupts, "_SIGNALLED", [])
    f = replay_actions(InterruptsInitTask, DEFAULT, False, munmap)
    assert isinstance(f, ProtocolError) and "KeyboardInterrupt in init_task" in str(f), f
    f = replay_actions(InterruptsContextSwitch, DEFAULT, False, [["switch_mm", [0, 1]]])
    assert isinstance(f, ProtocolError) and "KeyboardInterrupt in context_switch" in str(f), f
