"""A hook that writes kernel state (conformance/guard.py): the protocol's error, not ours.

Before 2026-12-05 a hook that pointed a PTE at a frame that does not exist ended certify
in "MODEL ERROR (a flushcheck bug, please report)", exit 3, and one that dropped an mm's
VMAs in a plain O1 violation that read like a missing flush."""
from __future__ import annotations

import collections

import pytest

from conformance import guard, hookpoints
from conformance.config import MachineConfig
from conformance.errors import ModelError, ProtocolError, Violation
from conformance.litmus import corpus, run
from conformance.registry import load_protocol, protocol_names
from conformance.reproducer import load, replay, replay_actions, save
from protocols.linux import Linux

SC2017 = next(s for s in corpus() if s.name == "reclaim-vs-mprotect-2017")


class PointsPtesNowhere(Linux):
    name = "points_ptes_nowhere"

    def flush_tlb_batched_pending(self, task, mm):
        super().flush_tlb_batched_pending(task, mm)
        for p in mm.ptes:  # every present PTE at a frame the machine does not have
            if p.kind == 1:
                p.frame = 999


class DropsVmas(Linux):
    name = "drops_vmas"

    def flush_tlb_batched_pending(self, task, mm):
        super().flush_tlb_batched_pending(task, mm)
        mm.vmas.clear()  # the VMAs gone, their PTEs and rmap left


def _madvise_dontneed(cls):
    """What certify shrank PointsPtesNowhere's failure to: one MADV_DONTNEED, whose
    ``flush_tlb_batched_pending`` points mm0's v0 at pfn999 before the zap reads it."""
    cfg = MachineConfig(ncpus=4, nmms=2, vpages=2, ptes_per_table=1, nframes=10, nfiles=2,
                        file_pages=2, swap_slots=6)
    return replay_actions(cls, cfg, False, [("madvise", (2, 1, 1, "dontneed"))])


def test_a_model_error_after_a_hooks_write_is_the_protocols_error(tmp_path):
    f = _madvise_dontneed(PointsPtesNowhere)
    assert isinstance(f, ProtocolError) and not isinstance(f, ModelError), f
    assert ("HookRuleBroken: PointsPtesNowhere.flush_tlb_batched_pending changed kernel state "
            "directly at step") in str(f), f
    assert "-> present pfn999" in str(f) and "the model then failed: uncaught IndexError" in str(f)
    # its timeline row is the madvise's, on CPU2 (it went to CPU0's [hw] column until 2026-12-05)
    (who,) = [w for _s, w, name, args in f.machine.trace.events
              if name == "msg" and args[0].startswith("!! PROTOCOL ERROR")]
    assert who is not None and who.cpu == 2 and who.name == "madvise", who
    # the reproducer keeps the actions up to the model's failure: its replay blames it again
    path = save(f, str(tmp_path / "r.json"), picture=False)
    again = replay(load(path), PointsPtesNowhere)
    assert isinstance(again, ProtocolError) and again.headline() == f.headline()
    # the same actions without the write: no failure
    assert _madvise_dontneed(Linux) is None


def test_a_violation_after_a_hooks_write_names_the_write_as_its_cause():
    f = run(SC2017, DropsVmas)
    assert isinstance(f, Violation), f
    assert ("CAUSE: DropsVmas.flush_tlb_batched_pending changed kernel state directly at step "
            in f.report()), f.report()
    assert "vmas: ((" in f.report() and "-> ())" in f.report()
    # a protocol's own bug has no such line: linux_4_3 fails this scenario by its flush alone
    f = run(SC2017, load_protocol("linux_4_3"))
    assert isinstance(f, Violation) and "CAUSE:" not in f.report()


def test_no_reference_protocol_writes_kernel_state_in_any_litmus_cell(monkeypatch):
    """The guard on around every hook of every protocol in protocols/ over the whole litmus
    corpus: no change (a false blame would turn a protocol's verdict into a protocol error).
    The fuzzing campaigns of 2026-12-05 ran with it on too (docs/SOUNDNESS.md)."""
    from conformance.machine import Machine
    cur, trips = {}, collections.Counter()
    init = Machine.__init__

    def tracked(self, *a, **k):
        cur["m"] = self
        init(self, *a, **k)

    def take(args):  # the guard's own: kernel state and the gather a hook is handed
        try:
            return {**guard.kernel_state(cur["m"]), **guard.gather_state(args)}
        except AttributeError:  # the init hooks of a machine still being built
            return None

    def tripped(fn, before, args):
        if before is not None:
            change = guard.first_change(before, {**guard.kernel_state(cur["m"]),
                                                 **guard.gather_state(args)})
            if change is not None:
                trips[(cur["m"].proto.name, change)] += 1

    monkeypatch.setattr(Machine, "__init__", tracked)
    monkeypatch.setattr(hookpoints, "_guard", (take, tripped))
    cells = 0
    for sc in corpus():
        for name in protocol_names():
            run(sc, load_protocol(name))
            cells += 1
    assert cells > 1000 and not trips, trips
    # and the guard sees a write when there is one
    run(SC2017, DropsVmas)
    assert trips and all(p == "drops_vmas" for p, _ in trips)


def test_kernel_state_names_what_changed():
    from conformance.machine import Machine
    m = Machine(Linux)
    before = guard.kernel_state(m)
    assert guard.first_change(before, guard.kernel_state(m)) is None
    m.mms[0].ptes[1].writable = not m.mms[0].ptes[1].writable
    change = guard.first_change(before, guard.kernel_state(m))
    assert change is not None and change.startswith("mm0 v1 pte: present pfn")


def test_blame_changes_only_a_model_error():
    """A violation keeps its kind (its report names the cause), a protocol error stays."""
    for f in (run(SC2017, DropsVmas), _madvise_dontneed(PointsPtesNowhere)):
        assert f is not None and guard.blame(f) is f


class WritesInAnAtomicHook(Linux):
    name = "writes_in_an_atomic_hook"

    def fault_install_pte(self, task, mm, vma, vpage, pte, write):
        mm.ptes[vpage].accessed = not mm.ptes[vpage].accessed  # atomic: one stretch


class WritesAfterAPoint(Linux):
    name = "writes_after_a_point"

    def flush_tlb_batched_pending(self, task, mm):
        self.arch.flush_tlb_mm(mm)
        self.arch.flush_tlb_mm(mm)  # a second effect: a point before it, a second stretch
        mm.ptes[0].accessed = not mm.ptes[0].accessed


@pytest.mark.parametrize("cls, actions, hook", [
    (WritesInAnAtomicHook, [("fault", (0, 0, True))], "WritesInAnAtomicHook.fault_install_pte"),
    (WritesAfterAPoint, [("madvise", (0, 1, 1, "dontneed"))],
     "WritesAfterAPoint.flush_tlb_batched_pending"),
])
def test_the_guard_sees_atomic_hooks_and_later_stretches(cls, actions, hook):
    """A write in an atomic hook (its generated wrapper), and one in a pausable hook's
    second stretch (after a point): each named. The failure here is made up (the writes
    break nothing visible); ``kernel_write`` replays its machine's actions (the operation
    run to its end: ``replay_actions`` drains)."""
    from conformance.machine import Machine
    cfg = MachineConfig(ncpus=2, nmms=1, vpages=2, ptes_per_table=1, nframes=4, nfiles=1,
                        file_pages=1, swap_slots=2, populate=cls is WritesAfterAPoint)
    m = Machine(cls, cfg)
    replay_actions(cls, cfg, False, actions, machine=m)
    made_up = Violation("C1", "made up")
    made_up.machine = m
    wrote = guard.kernel_write(made_up)
    assert wrote is not None and wrote.startswith(f"{hook} changed kernel state directly"), \
        (wrote, m.actions)


def test_a_model_error_no_hook_caused_stays_a_model_error():
    """A MODEL ERROR of a run whose hooks wrote nothing is ours, and says so."""
    from conformance.machine import Machine
    m = Machine(Linux)
    replay_actions(Linux, m.cfg, False, [("madvise", (0, 1, 1, "dontneed"))], machine=m)
    e = m._model_error("injected")
    assert type(e) is ModelError and guard.kernel_write(e) is None


@pytest.mark.parametrize("base, write, says", [
    ("linux", "tlb.task.s3_visits = None", " s3_visits: "),
    ("linux", "tlb.task.cpu = 99", " -> 99)"),
    ("linux", "tlb.task.blocked_on = 'x'", " blocked_on: None -> <str>"),
    ("linux", "self.free_to_allocator = None", "protocol's arch and allocator: "),
    ("immediate", "tlb.mm.tlb_gen = 'x'", "tlb_gen is an int: (True,) -> (False,)"),
])
def test_a_write_to_a_task_or_a_handle_is_the_protocols_error(base, write, says):
    """A hook that wrote a task's kernel fields, its own allocator handle or a non-int
    ``tlb_gen`` ended in MODEL ERROR (a flushcheck bug), exit 3: the guard did not compare
    them (a review, 2026-12-05)."""
    from conformance.certify import certify
    cls = type("Writes", (load_protocol(base),), {"name": "writes"})
    exec(f"def tlb_finish_mmu(self, tlb):\n    {write}\n"
         f"    return super(cls, self).tlb_finish_mmu(tlb)\n", {"cls": cls}, ns := {})
    cls.tlb_finish_mmu = ns["tlb_finish_mmu"]
    r = certify(cls, budget_s=None, max_examples=20, seed=1, chunk=20)
    (f,) = r.failures
    assert isinstance(f, ProtocolError) and not isinstance(f, ModelError), f
    assert "HookRuleBroken: tlb_finish_mmu changed kernel state directly" in str(f), f
    assert says in str(f), f
