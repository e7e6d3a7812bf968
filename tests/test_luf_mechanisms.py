"""Why each LUF variant passes a review scenario, checked by ablation.

For every (variant, scenario) that passes in docs/LUF.md, removing the hook named as its
mechanism must make the scenario fail: the mechanism is really what prevents it, and the
checker catches the ablated protocol (it fails a broken protocol and passes the real one).
"""
import pytest

from conformance.litmus import corpus, verdict
from conformance.lufdoc import run_scenario
from conformance.protocol import Protocol
from conformance.registry import load_protocol

from steps import run_lines

SCENARIOS = {s.name.split("-")[1]: s for s in corpus()
             if s.name.startswith("luf-") and s.name[4:5].isdigit()}

# (variant, scenario, hooks whose removal must break it, rule then violated)
MECHANISMS = [
    ("luf_v10", "1", ["flush_tlb_batched_pending"], "S3"),
    ("luf_v10", "3", ["fault_install_pte"], "C1"),
    ("luf_v10", "4", ["page_alloc"], "S1"),
    ("luf_v10", "5", ["fault_install_pte"], "C1"),
    ("luf_v11", "1", ["flush_tlb_batched_pending"], "S3"),
    ("luf_v11", "2", ["file_end_write"], "C1"),
    ("luf_v11", "3", ["fault_install_pte"], "C1"),
    ("luf_v11", "4", ["page_alloc"], "S1"),
    ("luf_v11", "5", ["fault_install_pte"], "C1"),
    # two independent mechanisms: either alone suffices
    ("luf_vma_flag", "1", ["flush_tlb_batched_pending", "tlb_end_vma"], "S3"),
    ("luf_vma_flag", "4", ["page_alloc"], "S1"),
    ("luf_v12", "1", ["flush_tlb_batched_pending", "tlb_end_vma"], "S3"),
    ("luf_v12", "2", ["mapping_write_begin"], "C1"),
    ("luf_v12", "3", ["handle_mm_fault_end"], "C1"),
    ("luf_v12", "4", ["page_alloc"], "S1"),
    ("luf_v12", "5", ["handle_mm_fault_end"], "C1"),
    ("luf_reclaim_migrate_only", "1", ["flush_tlb_batched_pending"], "S3"),
    ("luf_reclaim_migrate_only", "4", ["page_alloc"], "S1"),
    # the as-posted modules (docs/LUF.md, Readings)
    ("luf_v10_posted", "1", ["flush_tlb_batched_pending"], "S3"),
    ("luf_v10_posted", "4", ["page_alloc"], "S1"),
    ("luf_v10_posted", "5", ["do_wp_page"], "C1"),  # v10 09/12's luf_flush() in do_wp_page
    ("luf_v11_posted", "1", ["flush_tlb_batched_pending"], "S3"),
    ("luf_v11_posted", "2", ["file_end_write"], "C1"),
    ("luf_v11_posted", "4", ["page_alloc"], "S1"),
    ("luf_v12_posted", "1", ["flush_tlb_batched_pending", "tlb_end_vma"], "S3"),
    ("luf_v12_posted", "4", ["page_alloc"], "S1"),
    # the lazyfree fix: v11's mechanisms, and the fix itself for scenario 6
    ("luf_lazyfree_fix", "1", ["flush_tlb_batched_pending"], "S3"),
    ("luf_lazyfree_fix", "2", ["file_end_write"], "C1"),
    ("luf_lazyfree_fix", "3", ["fault_install_pte"], "C1"),
    ("luf_lazyfree_fix", "4", ["page_alloc"], "S1"),
    ("luf_lazyfree_fix", "5", ["fault_install_pte"], "C1"),
    ("luf_lazyfree_fix", "6", ["LUF_LAZYFREE=True"], "C1"),
    # column 7 (the 2017 mprotect race): excluding dirty PTEs from LUF is what closes it
    ("luf_v10", "7", ["LUF_DIRTY_OK=True"], "S2"),
    ("luf_v11", "7", ["LUF_DIRTY_OK=True"], "S2"),
    ("luf_vma_flag", "7", ["LUF_DIRTY_OK=True"], "S2"),
    ("luf_reclaim_migrate_only", "7", ["LUF_DIRTY_OK=True"], "S2"),
    ("luf_lazyfree_fix", "7", ["LUF_DIRTY_OK=True"], "S2"),
]
LUF_ROWS = ("luf_v10", "luf_v10_posted", "luf_v11", "luf_v11_posted", "luf_vma_flag", "luf_v12",
            "luf_v12_posted", "luf_reclaim_migrate_only", "luf_lazyfree_fix")


def without(name, hooks):
    """The protocol with ``hooks`` reset to the generic kernel's (no LUF/batching action);
    an entry ``ATTR=VALUE`` sets a class attribute instead (the fix undone)."""
    base = load_protocol(name)
    ns = {"name": f"{name}-without-{'-'.join(hooks)}"}
    for h in hooks:
        if "=" in h:
            attr, value = h.split("=")
            ns[attr] = {"True": True, "False": False}[value]
        else:
            ns[h] = getattr(Protocol, h)
    return type(base.__name__ + "Ablated", (base,), ns)


@pytest.mark.parametrize("proto,scenario,hooks,rule", MECHANISMS,
                         ids=[f"{p}-s{n}-{'+'.join(h)}" for p, n, h, _ in MECHANISMS])
def test_mechanism_is_what_prevents_the_scenario(proto, scenario, hooks, rule):
    sc = SCENARIOS[scenario]
    assert run_scenario(sc, load_protocol(proto)) is None
    assert verdict(run_scenario(sc, without(proto, hooks))) == rule


@pytest.mark.parametrize("scenario", ["2", "3", "5"])
def test_v12_as_posted_fails_where_its_narrowed_flushes_fold_nothing(scenario):
    """v12 as posted: 19/26's ``fold_luf_batch_mm`` never sets the batch's
    ``flush_required``, so ``luf_flush_mapping`` / ``luf_flush_mm`` fold nothing in and the
    file update (2), the read-only and writable mappings (3) and the fault after reclaim
    (5) keep another CPU's LUF'd entry (C1). The same module with the batches folded in
    (``LUF_BATCH_FLUSH_REQUIRED=True``, luf_v12's reading) passes each: that flag alone
    is the difference."""
    sc = SCENARIOS[scenario]
    assert verdict(run_scenario(sc, load_protocol("luf_v12_posted"))) == "C1"
    assert run_scenario(sc, without("luf_v12_posted", ["LUF_BATCH_FLUSH_REQUIRED=True"])) is None


def test_every_passing_luf_cell_has_a_checked_mechanism():
    """The list above covers every scripted LUF cell that passes (docs/LUF.md)."""
    covered = {(p, n) for p, n, _, _ in MECHANISMS}
    for proto in LUF_ROWS:
        for n, sc in SCENARIOS.items():
            if run_scenario(sc, load_protocol(proto)) is None:
                assert (proto, n) in covered, (proto, n)


@pytest.mark.parametrize("proto", ["luf_v12", "luf_v12_posted"])
def test_v12_gives_up_luf_for_a_folio_whose_walk_aborted(proto):
    """v12 16/26 ``can_luf_fail()`` on an aborted ``try_to_unmap_one`` and 25/26's flush at
    ``keep:`` (hooks ``walk_abort``, ``shrink_folio_list_keep``, 2026-12-05): either one
    stops a lazyfree folio's discarded mapping from staying deferred after reclaim kept the
    folio (litmus/luf-walk-abort-redirtied-lazyfree.litmus). Without both, the scenario
    fails C1, as luf_v12 did before they were modelled."""
    sc = next(s for s in corpus() if s.name == "luf-walk-abort-redirtied-lazyfree")
    assert run_scenario(sc, load_protocol(proto)) is None
    assert run_scenario(sc, without(proto, ["walk_abort"])) is None
    assert run_scenario(sc, without(proto, ["shrink_folio_list_keep"])) is None
    assert verdict(run_scenario(sc, without(proto, ["walk_abort", "shrink_folio_list_keep"]))) == "C1"


def test_v12_gives_up_luf_at_the_end_of_folio_mkclean(monkeypatch):
    """v12 16/26 ``luf_flush(0)`` at the end of ``folio_mkclean``, ``luf_flush_mapping(mapping)``
    since 20/26: the model calls the ``folio_mkclean`` hook there (writeback,
    litmus/bug-2.1-zap-dirty-shared.litmus), and luf_v12 flushes what the folio's mapping owes
    (planted before the call: CPU0 for the folio's file, CPU1 for another file) and only that:
    the other file's batch and the page's takeoff batch (``pending``, CPU2) still owe
    afterwards."""
    from conformance.hookpoints import atomic_section
    from conformance.search import outside
    # the recording list is state outside the machine on purpose (the test reads what the
    # hook saw; nothing the hook does depends on it): the explorer's watch would stop on it
    monkeypatch.setattr(outside, "check", lambda cls, before: None)
    calls = []

    def plant(proto, frame):
        file = proto.folio_file(frame)
        other = 1 - file
        for f, cpus in ((file, 0b01), (other, 0b10)):
            proto.mapping_luf_batch[f] = proto.mapping_luf_batch.get(f, 0) | cpus
            proto.mapping_luf_owed[f] = proto.mapping_luf_owed.get(f, 0) | cpus
        proto.pending[frame] = proto.pending.get(frame, 0) | 0b100  # its takeoff batch (CPU2)
        return file, other

    class Recording(load_protocol("luf_v12")):
        name = "luf_v12-recording-folio_mkclean"

        def folio_mkclean(self, task, frame):
            with atomic_section():  # no other CPU between the planting and the reading
                file, other = plant(self, frame)
                super().folio_mkclean(task, frame)
                calls.append((task.path, self.mapping_luf_owed.get(file, 0) & 1,
                              self.mapping_luf_owed.get(other, 0) & 2, frame in self.pending))

    sc = next(s for s in corpus() if s.name == "bug-2.1-zap-dirty-shared")
    assert run_scenario(sc, Recording) is None
    assert calls and {c[0] for c in calls} == {"writeback"}
    assert all(not owed and other and pending for _p, owed, other, pending in calls)
    calls.clear()

    class Ablated(Recording):  # the check fails without v12's flush there
        def folio_mkclean(self, task, frame):
            with atomic_section():
                file, other = plant(self, frame)
                calls.append((task.path, self.mapping_luf_owed.get(file, 0) & 1,
                              self.mapping_luf_owed.get(other, 0) & 2, frame in self.pending))

    run_scenario(sc, Ablated)
    assert calls and all(owed for _p, owed, _o, _pe in calls)


def _run(call):
    """Run a pausable hook called outside a step (it returns the generator of its points)."""
    for _ in call or ():
        pass


def _flushes(monkeypatch, proto):
    """The cpumasks ``proto`` flushes from now on (its ``arch_tlbbatch_flush`` calls)."""
    got = []
    arch = type(proto.arch._arch)  # the machine's Arch under the protocol's view of it
    real = arch.arch_tlbbatch_flush

    def recording(self, batch, who=None):
        got.append(batch.cpumask)
        return real(self, batch, who)
    monkeypatch.setattr(arch, "arch_tlbbatch_flush", recording)
    return got


@pytest.mark.parametrize("name,flushed,left", [
    # v10/v11 check_luf_flush(ugen): the one global luf_ubc, every generation not done
    ("luf_v10", 0b111, {}), ("luf_v11_posted", 0b111, {}), ("luf_vma_flag", 0b111, {}),
    # v12 luf_takeoff_check_and_fold: luf_batch[luf_key], the page's own pass
    ("luf_v12", 0b011, {7: 0b100}), ("luf_v12_posted", 0b011, {7: 0b100}),
])
def test_takeoff_flushes_what_the_posting_batches_with_the_page(monkeypatch, name, flushed,
                                                                left):
    """Taking a page that still owes its flush out of the allocator flushes what the
    posting's batch holds beside it (``LufBase.TAKEOFF_SCOPE``): frames 5 and 6 were
    unmapped by one pass (CPU0 and CPU1 cached them), frame 7 by another (CPU2). Before
    2026-12-05 the model flushed frame 5's own CPU0 only, less than any posting."""
    from conformance.machine import Machine
    p = Machine(load_protocol(name)).proto
    p.pending.update({5: 0b001, 6: 0b010, 7: 0b100})
    p.pass_of.update({5: 1, 6: 1, 7: 2} if p.TAKEOFF_SCOPE == "pass" else {})
    got = _flushes(monkeypatch, p)
    p.page_alloc(None, 5)
    assert got == [flushed] and p.pending == left
    got.clear()
    p.page_alloc(None, 4)  # a page that owes nothing: no flush
    assert got == []


@pytest.mark.parametrize("name", ["luf_v12", "luf_v12_posted"])
def test_v12_marks_done_at_every_tlb_flush_end_of_17_26(monkeypatch, name):
    """v12 17/26 puts ``tlb_flush_end`` after the flush of ``try_to_unmap_flush`` (every
    caller: here ``try_to_unmap_flush_dirty``; ``arch_tlbbatch_mark_ugen``, the batch's
    CPUs) and of ``flush_tlb_batched_pending`` (``arch_mm_mark_ugen``: ``mm_cpumask``).
    Marked CPUs leave what the mm's and the mapping's batches owe, and a page's key is done
    (``arch_tlbbatch_check_done``) only once every CPU of every frame of the key is: frame
    6 stays owed with no CPU of its own left while frame 5 of its pass still owes CPU1, and
    its allocation flushes CPU1. Before, neither flush marked (the model flushed those CPUs
    again), and a frame left ``pending`` once its own CPUs were done."""
    from conformance.machine import Machine
    m = Machine(load_protocol(name))
    p, mm0 = m.proto, m.mms[0]
    assert p.arch.mm_cpumask(mm0) == 0b101
    task = type("Task", (), {})()
    task.tlb_ubc = p.init_task(task)
    p.pending.update({5: 0b011, 6: 0b100, 7: 0b100})
    p.pass_of.update({5: 1, 6: 1, 7: 2})
    p.mm_luf_owed[0], p.mapping_luf_owed[0] = 0b101, 0b111
    got = _flushes(monkeypatch, p)
    ubc = task.tlb_ubc
    ubc.arch.cpumask, ubc.flush_required, ubc.writable = 0b001, True, True
    _run(p.try_to_unmap_flush_dirty(task))  # try_to_unmap_flush: tlb_flush_end(&tlb_ubc->arch)
    assert got == [0b001]
    assert p.pending == {5: 0b010, 6: 0b100, 7: 0b100}
    assert p.mm_luf_owed == {0: 0b100} and p.mapping_luf_owed == {0: 0b110}
    mm0.proto.tlb_flush_batched = 1  # pending 1, flushed 0
    _run(p.flush_tlb_batched_pending(task, mm0))  # tlb_flush_end(NULL, mm): CPUs 0 and 2
    assert p.pending == {5: 0b010, 6: 0} and p.pass_of == {5: 1, 6: 1}  # key 2 done
    assert p.mm_luf_owed == {} and p.mapping_luf_owed == {0: 0b010}
    p.page_alloc(None, 6)  # key 1 still owes CPU1 (frame 5's)
    assert got == [0b001, 0b010] and p.pending == {} and p.pass_of == {}


def test_v12_flushes_at_keep_for_every_folio_try_to_unmap_found_luf_able(monkeypatch):
    """v12 25/26 ``if (can_luf) luf_flush(fold_unmap_luf());``: ``can_luf`` is
    ``try_to_unmap``'s ``can_luf_test()``, true for a folio no writable PTE or aborted walk
    disqualified, batched PTE or not. A kept folio whose PTEs were all flushed at once
    (nothing in ``tlb_ubc_luf``) makes ``fold_unmap_luf()`` return 0, and ``luf_flush(0)``
    folds ``luf_batch[0]``, which nothing fills since 20/26: it flushes the task's own
    batches (here CPU0's, in ``tlb_ubc``), not a deferral of an earlier pass (CPU2's; the
    model flushed every deferral there before 19/26 and 20/26 were modelled). A folio
    ``try_to_unmap`` found not LUF-able flushes nothing."""
    from conformance.machine import Machine
    p = Machine(load_protocol("luf_v12")).proto
    task = type("Task", (), {})()
    task.tlb_ubc = p.init_task(task)
    got = _flushes(monkeypatch, p)
    p.pending[7] = 0b100
    task.tlb_ubc.arch.cpumask, task.tlb_ubc.flush_required = 0b001, True
    task.tlb_ubc.folio_frame, task.tlb_ubc.folio_ro = 3, False  # a writable PTE: not LUF-able
    _run(p.shrink_folio_list_keep(task, 3))
    assert got == [] and p.pending == {7: 0b100}
    task.tlb_ubc.folio_ro = True  # LUF-able, its PTE flushed by ptep_clear_flush
    _run(p.shrink_folio_list_keep(task, 3))
    assert got == [0b001] and p.pending == {7: 0b100} and not task.tlb_ubc.flush_required
    # with a PTE of this pass in tlb_ubc_luf (CPU1) that tlb_ubc does not cover: a new key,
    # luf_flush(key) flushes the pass's batch with tlb_ubc (CPU0), not every deferral
    got.clear()
    p.unkeyed[3] = 0b010
    task.tlb_ubc.luf_frames.append(3)
    task.tlb_ubc.arch.cpumask, task.tlb_ubc.flush_required = 0b001, True
    _run(p.shrink_folio_list_keep(task, 3))
    assert got == [0b011] and p.pending == {7: 0b100} and p.unkeyed == {}


@pytest.mark.parametrize("name", ["luf_v12", "luf_v12_posted"])
def test_v12_takeoff_drops_the_cpus_it_flushed_from_the_allocating_task(monkeypatch, name):
    """v12 09/26 and 16/26 ``try_to_unmap_flush_takeoff``: after the takeoff flush,
    ``if (arch_tlbbatch_done(&tlb_ubc->arch, &tlb_ubc_takeoff->arch)) reset_batch(tlb_ubc);``
    and the same for ``tlb_ubc_ro`` and ``tlb_ubc_luf`` (x86 ``arch_tlbbatch_done``, 01/26:
    ``cpumask_andnot``, true when nothing is left). The allocating task's own deferrals
    (``tlb_ubc`` CPUs 0 and 2; ``tlb_ubc_luf``: frame 3 on CPUs 1 and 2, frame 4 on CPU2)
    lose the CPUs each takeoff flushed, so the pass's ``try_to_unmap_flush`` flushes nothing
    more and frame 4, left with no CPU of its own, is keyed with frame 3 (its allocation
    flushes CPU1, its pass's). A pass whose ``tlb_ubc_luf`` empties owes nothing
    (``fold_unmap_luf`` returns 0) and its ``writable`` is reset. Before 2026-12-06 the
    model dropped nothing: the pass flushed CPUs 0 and 2 again and keyed all of them."""
    from conformance.machine import Machine
    p = Machine(load_protocol(name)).proto
    task, other = (type("Task", (), {})() for _ in range(2))
    task.tlb_ubc, other.tlb_ubc = p.init_task(task), p.init_task(other)
    got = _flushes(monkeypatch, p)
    ubc = task.tlb_ubc
    ubc.arch.cpumask, ubc.flush_required, ubc.writable = 0b101, True, True
    p.unkeyed.update({3: 0b110, 4: 0b100})
    ubc.luf_frames += [3, 4]
    p.pending.update({5: 0b001, 6: 0b100})  # freed pages of two earlier passes
    p.pass_of.update({5: 1, 6: 2})
    p.page_alloc(task, 5)  # takeoff flush of CPU0
    assert got == [0b001] and ubc.arch.cpumask == 0b100 and ubc.flush_required
    p.page_alloc(task, 6)  # takeoff flush of CPU2: tlb_ubc empty, reset
    assert got == [0b001, 0b100] and ubc.arch.cpumask == 0 and not ubc.flush_required
    assert p.unkeyed == {3: 0b010, 4: 0} and ubc.luf_frames == [3, 4] and ubc.writable
    _run(p.try_to_unmap_flush(task))  # fold_unmap_luf + try_to_unmap_flush: nothing left
    assert got == [0b001, 0b100] and p.pending == {3: 0b010, 4: 0}
    assert p.pass_of[3] == p.pass_of[4]
    p.page_alloc(None, 4)  # frame 4 owes its key's CPU1
    assert got == [0b001, 0b100, 0b010] and p.pending == {}
    o = other.tlb_ubc  # a pass whose only deferral is a LUF one the takeoff covers
    o.writable, o.luf_frames = True, [7]
    p.unkeyed[7], p.pending[8], p.pass_of[8] = 0b001, 0b011, 3
    p.page_alloc(other, 8)
    assert got[-1] == 0b011 and p.unkeyed == {} and o.luf_frames == [] and not o.writable
    _run(p.try_to_unmap_flush(other))
    assert len(got) == 4 and p.pending == {}


#: a migration (kcompactd, CPU1) of A (mm0 anon, writable and dirty on CPU2: tlb_ubc {0, 2})
#: and C (mm0 file0:1, read-only): C's destination is allocated after A's unmap and takes R0's
#: LUF'd page, whose takeoff flush covers CPUs 0 and 2 (the consumer's page, freed last, went
#: to A's destination)
TAKEOFF_SCRIPT = """
name   luf-takeoff-drops-own-batch
config populate=false ncpus=3
CPU2   touch w v0                  # A
CPU2   touch r v3                  # C
CPU2   touch r v2                  # mm0 file0:0, read-only
consumer alloc
CPU0   reclaim R0 pfn(mm0,v2)      # LUF'd: its page owes CPUs 0 and 2
R0     finish
consumer free
CPU1   migrate G pfn(mm0,v0) pfn(mm0,v3)
G      finish
"""


def test_v12_takeoff_inside_a_migration_spares_the_pass_flush(monkeypatch):
    """The machine reaches the drop of :func:`test_v12_takeoff_drops_the_cpus_it_flushed_from_
    the_allocating_task` by itself: ``migrate_folio_unmap`` allocates each destination after
    the earlier folios' unmaps, so C's takeoff flush (CPUs 0 and 2) lands while A's deferral
    is pending and empties the task's ``tlb_ubc``: ``move:``'s ``try_to_unmap_flush`` has
    nothing left (before 2026-12-06 it flushed CPUs 0 and 2 again). No rule breaks: the
    takeoff flush came after A's PTE was cleared, so CPU2's writable entry is gone before the
    copy. The v11 module, which drops nothing, and linux flush at ``move:``."""
    import conformance.hw.arch as arch
    from conformance.litmus import parse

    got = []
    real = arch.Arch.arch_tlbbatch_flush

    def recording(self, batch, who=None):
        if batch.cpumask:
            got.append((who.name, batch.cpumask))
        return real(self, batch, who)
    monkeypatch.setattr(arch.Arch, "arch_tlbbatch_flush", recording)
    sc = parse(TAKEOFF_SCRIPT)
    for name, flushed in [("luf_v12", [("migrate", 0b101)]),
                          ("luf_v12_posted", [("migrate", 0b101)]),
                          ("luf_v11", [("migrate", 0b101)] * 2),
                          ("linux", [("reclaim", 0b101), ("migrate", 0b101)])]:
        got.clear()
        assert run_scenario(sc, load_protocol(name)) is None
        assert got == flushed, name


def test_do_wp_page_hook_runs_where_the_kernel_calls_do_wp_page():
    """The hook runs for a write to a present read-only PTE and after a write fault's swap-in
    of a folio a fork sibling still shares (the kernel's ``do_swap_page`` maps it read-only
    and calls ``do_wp_page``; a review, 2026-12-05); not for a read, nor for a write to an
    empty PTE, nor for the swap-in of an exclusive folio."""
    from conformance.machine import Machine
    from conformance.mm.mm_types import SWAP
    from protocols.linux import Linux
    calls = []

    class Recording(Linux):
        def do_wp_page(self, task, mm, vma, vpage):
            calls.append((mm.id, vpage))

    def finish(m, op):
        while op in m.ops:
            m.advance(op.id)

    m = Machine(Recording)
    f0 = m.mms[0].ptes[0].frame
    finish(m, m.fork(0, 1))  # both map f0 read-only (copy-on-write)
    finish(m, m.fault(0, 0, False))
    assert calls == []  # a read
    finish(m, m.fault(0, 0, True))
    assert calls == [(0, 0)]  # a write to the present read-only PTE
    calls.clear()
    m2 = Machine(Recording)
    f0 = m2.mms[0].ptes[0].frame
    finish(m2, m2.fork(0, 1))
    finish(m2, m2.reclaim(1, (f0,)))
    assert m2.mms[0].ptes[0].kind == SWAP and m2.mms[1].ptes[0].kind == SWAP
    finish(m2, m2.fault(0, 0, True))  # the slot is shared with the child: do_wp_page
    assert calls == [(0, 0)]
    calls.clear()
    m2.switch_mm(2, 1)
    finish(m2, m2.fault(2, 0, True))  # the child's swap-in: the slot is its own now
    assert calls == []


def test_v12_narrowed_flushes_flush_only_their_own_batch(monkeypatch):
    """v12 19/26 ``luf_flush_mm`` and 20/26 ``luf_flush_mapping`` flush what
    ``mm->luf_batch`` / ``mapping->luf_batch`` owe, not every deferral (16/26's
    ``luf_flush(0)``): a LUF unmap of a file folio in mm0 is recorded in mm0's and file0's
    batches (``fold_luf_batch_mm``); flushing mm1 or file1 leaves them owed, flushing mm0
    flushes mm0's CPUs and nothing else, and marks them done for every batch, so a second
    flush finds nothing owed; a new fold makes every CPU of its batch owe again. The batch
    gets ``mm_cpumask`` through ``arch_tlbbatch_add_pending`` (a ``tlb_gen`` bump) only
    while it lacks some of the mm's CPUs (``arch_tlbbatch_need_fold``)."""
    from conformance.machine import Machine
    m = Machine(load_protocol("luf_v12"))
    p, mm0, mm1 = m.proto, m.mms[0], m.mms[1]
    frame = m.mem.files[0].cache[0]  # file0:0, mapped by mm0 (CPUs 0, 2) and mm1 (CPU1)
    task = type("Task", (), {})()
    task.tlb_ubc = p.init_task(task)
    got = _flushes(monkeypatch, p)
    gen = mm0.tlb_gen
    p.fold_luf_batch_mm(task, mm0, frame)
    assert mm0.tlb_gen == gen + 2  # need_fold for mm0's batch and for file0's: two bumps
    assert p.mm_luf_batch == p.mm_luf_owed == {0: 0b101}
    assert p.mapping_luf_batch == p.mapping_luf_owed == {0: 0b101}
    p.fold_luf_batch_mm(task, mm0, frame)
    assert mm0.tlb_gen == gen + 2  # the batches hold mm0's CPUs: no bump (the window)
    _run(p.luf_flush_mm(task, mm1))
    _run(p.luf_flush_mapping(task, 1))
    assert got == [] and p.mm_luf_owed == {0: 0b101} and p.mapping_luf_owed == {0: 0b101}
    _run(p.luf_flush_mm(task, mm0))
    # CPUs 0 and 2 flushed: done for every batch (tlb_flush_end), file0's too
    assert got == [0b101] and p.mm_luf_owed == {} and p.mapping_luf_owed == {}
    _run(p.luf_flush_mm(task, mm0))
    _run(p.luf_flush_mapping(task, 0))
    assert got == [0b101]
    assert p.mm_luf_batch == p.mapping_luf_batch == {0: 0b101}  # never emptied, only done
    p.fold_luf_batch_mm(task, mm1, frame)  # mm1 (CPU1): file0's batch owes CPUs 0-2 again
    assert p.mm_luf_owed == {1: 0b010} and p.mapping_luf_owed == {0: 0b111}
    _run(p.luf_flush_mapping(task, 0))
    assert got == [0b101, 0b111] and p.mm_luf_owed == {} and p.mapping_luf_owed == {}


def test_v12_fold_before_add_pending_is_what_fails_the_hole_punch():
    """litmus/luf-narrow-fold-before-add-pending.litmus: v12 19/26 and 20/26 stamp the mm's
    and the mapping's ``luf_batch`` before the PTE's ``arch_tlbbatch_add_pending`` bumps
    ``tlb_gen``, so a ``luf_flush_mapping`` in between skips the reclaiming CPU ("nothing to
    do") and marks it done. With the fold moved after ``arch_tlbbatch_add_pending`` (where
    16/26 folded ``luf_batch[0]``) the scenario passes; as posted it fails C1."""
    from protocols.luf_v12 import LufV12

    class FoldAfterAddPending(LufV12):
        name = "luf_v12-fold-after-add-pending"

        def fold_luf_batch_mm(self, task, mm, frame):
            pass

        def set_tlb_ubc_flush_pending(self, task, mm, pteval, vpage):
            super().set_tlb_ubc_flush_pending(task, mm, pteval, vpage)
            if pteval.kind == 1 and task.tlb_ubc.folio_ro:
                LufV12.fold_luf_batch_mm(self, task, mm, task.tlb_ubc.folio_frame)

    sc = next(s for s in corpus() if s.name == "luf-narrow-fold-before-add-pending")
    assert verdict(run_scenario(sc, load_protocol("luf_v12"))) == "C1"
    assert verdict(run_scenario(sc, load_protocol("luf_v12_posted"))) == "C1"
    assert run_scenario(sc, FoldAfterAddPending) is None


def test_v12_diet_drops_cpus_of_the_callers_own_batch(monkeypatch):
    """v12 19/26 ``luf_flush_mm``: ``fold_batch(tlb_ubc, &lb->batch, false)``, then
    ``arch_tlbbatch_diet(&tlb_ubc->arch, lb->ugen)`` (17/26) on ``current->tlb_ubc``, whose
    CPUs may be the caller's own deferrals (``try_to_unmap`` of a folio that is not
    LUF-able). They carry no ugen: CPU1, marked done by a flush after mm0's batch was
    stamped, leaves the caller's batch whenever its deferral was made, and the caller's
    ``try_to_unmap_flush`` then flushes nothing for it. A batch never stamped (``ugen`` 0,
    mm1) drops nothing; a stamp newer than the mark keeps the CPU."""
    from conformance.machine import Machine
    m = Machine(load_protocol("luf_v12"))
    p, mm0, mm1 = m.proto, m.mms[0], m.mms[1]
    other, task = (type("Task", (), {})() for _ in range(2))
    other.tlb_ubc, task.tlb_ubc = p.init_task(other), p.init_task(task)
    got = _flushes(monkeypatch, p)
    p.fold_luf_batch_mm(other, mm0, m.mem.files[0].cache[0])  # mm0->luf_batch.ugen = u1
    other.tlb_ubc.arch.cpumask, other.tlb_ubc.flush_required = 0b111, True
    _run(p.try_to_unmap_flush(other))  # tlb_flush_end: every ugen_done > u1
    assert got == [0b111] and p.mm_luf_owed == {}
    ubc = task.tlb_ubc
    ubc.arch.cpumask, ubc.flush_required = 0b010, True  # our own deferral on CPU1
    _run(p.luf_flush_mm(task, mm1))  # mm1's batch: ugen 0, nothing dropped, flushed
    assert got == [0b111, 0b010] and not ubc.flush_required
    ubc.arch.cpumask, ubc.flush_required = 0b010, True
    _run(p.luf_flush_mm(task, mm0))  # diet: CPU1 is done past u1 -> empty -> return
    assert got == [0b111, 0b010] and ubc.arch.cpumask == 0 and ubc.flush_required
    _run(p.try_to_unmap_flush(task))  # the pass's flush: flush_required, an empty mask
    assert got == [0b111, 0b010, 0]
    p.fold_luf_batch_mm(other, mm0, m.mem.files[0].cache[0])  # a newer stamp
    ubc.arch.cpumask, ubc.flush_required = 0b010, True
    _run(p.luf_flush_mm(task, mm0))  # CPU1's mark is older: kept, flushed with 0 and 2
    assert got == [0b111, 0b010, 0, 0b111]


def _resched_in_reclaim(base, diet=True):
    """``base`` with ``finish_task_switch`` run in the reclaiming task right after each
    ``try_to_unmap`` of a folio that is not LUF-able: ``luf_flush_mm`` of the CPU's loaded
    mm, as when a user task in direct reclaim is preempted there and switched back in from
    a kernel thread that borrowed its mm (``rq->prev_mm``). The machine has no such switch
    (no kernel threads, docs/model.md section 1), so the test adds it. ``diet=False``: the
    model before 2026-12-05, which flushed all of the caller's batches there."""
    class Resched(base):
        name = base.name + "-resched-in-reclaim"

        def try_to_unmap_end(self, task, frame, migration):
            ro = task.tlb_ubc.folio_ro
            super().try_to_unmap_end(task, frame, migration)
            if not ro:
                _run(self.luf_flush_mm(task, self.arch.cpus[task.cpu].loaded_mm))

    if not diet:
        Resched._diet = lambda self, mask, ugen: mask
    return Resched


DIET_SCRIPT = """
name   luf-diet-own-batch
config populate=false ncpus=3
CPU0   touch r v2                  # mm0 file0:0, read-only
CPU0   reclaim R0 pfn(mm0,v2)      # LUF'd: mm0->luf_batch.ugen = u1 (CPUs 0, 2)
R0     finish
consumer alloc                     # takeoff flush of CPUs 0 and 2: ugen_done > u1
CPU2   touch w v0                  # mm0 anon: writable dirty entry on CPU2
CPU0   reclaim R1 pfn(mm0,v0)      # writable: tlb_ubc {0, 2}; then luf_flush_mm(mm0)
R1     finish                      # pageout copies while CPU2 may still write
"""


@pytest.mark.parametrize("name", ["luf_v12", "luf_v12_posted"])
def test_v12_diet_in_a_reclaiming_task_drops_its_own_deferral(name):
    """The diet of the caller's own ``tlb_ubc`` (v12 17/26 ``arch_tlbbatch_diet`` in 19/26
    ``luf_flush_mm``) reached where the kernel reaches it with deferrals pending:
    ``finish_task_switch`` in a task between ``try_to_unmap`` and its flush
    (:func:`_resched_in_reclaim`). R1's writable PTE of mm0 put CPUs 0 and 2 in its
    ``tlb_ubc``; both were marked done by the takeoff flush after mm0's batch was stamped,
    so the diet empties the batch and ``luf_flush_mm`` returns; ``try_to_unmap_flush_dirty``
    then flushes nothing and ``pageout`` copies the folio while CPU2 holds a writable dirty
    entry: S2. Without the diet of the caller's batch it passes, and linux and immediate
    pass the script."""
    from conformance.litmus import parse
    sc = parse(DIET_SCRIPT)
    base = load_protocol(name)
    assert verdict(run_scenario(sc, _resched_in_reclaim(base))) == "S2"
    assert run_scenario(sc, _resched_in_reclaim(base, diet=False)) is None
    for good in ("linux", "immediate"):
        assert run_scenario(sc, load_protocol(good)) is None


# -- the machine's finish_task_switch rule (conformance/machine.py Machine._switched_in) ---------
#: MADV_PAGEOUT (reclaim in the user task's context) over two lazyfree folios of a fork child
#: (mm1): A at v0, writable and clean (its discard is not LUF-able: tlb_ubc {1, 3}, CPU3
#: holding an entry), B at v1, read-only. A mremap of the parent's anonymous VMA holds the
#: shared anon_vma root for write, paused in its flush_tlb_batched_pending (mm0 has a batched
#: flush pending from R1), while B's rmap walk wants it for read: the pageout task sleeps, is
#: switched back in from the idle task, and finish_task_switch runs luf_flush_mm(mm1) in its
#: context. mm1's luf_batch was stamped by R0 and CPUs 1 and 3 were marked done after it (the
#: pageout's own flush_tlb_batched_pending of mm1), so the diet empties the task's tlb_ubc.
PAGEOUT_SLEEPS_SCRIPT = """
name   pageout-sleeps-on-anon-vma
config populate=false ncpus=4 vpages=6
CPU0   touch w v0
CPU0   touch w v1
CPU0   fork F mm1
F      finish
CPU1   touch w v0                  # the child's COW copy: A, writable
CPU0   touch w v1                  # the parent's COW: B stays the child's alone, read-only
CPU1   madvise FR v0 2 free        # A and B lazyfree, their PTEs clean
FR     finish
CPU3   touch r v0                  # CPU3 (mm1) caches A
CPU3   touch r v3
CPU2   reclaim R0 pfn(mm1,v3)      # LUF: mm1->luf_batch stamped
R0     finish
CPU2   touch r v3
CPU2   reclaim R1 pfn(mm0,v3)      # mm0: a batched flush pending
R1     finish
CPU1   madvise P v0 2 pageout
P      until discard lazyfree      # A discarded, its flush deferred in tlb_ubc
P      step
CPU0   mremap X v1 1 v5            # holds anon_vma (the root) for write, pauses
P      step 2                      # B's rmap walk: blocked, the task sleeps
X      finish
P      finish                      # switched back in: finish_task_switch
"""


def _diet_spy(monkeypatch, cls):
    """What each diet of the caller's own ``tlb_ubc`` (``LufV12._diet``) got and left, with
    the kernel path of the task it ran for (not a hook: patching it leaves the protocol's
    files and points as they are)."""
    got = []
    orig = cls._diet

    def spy(self, mask, ugen):
        left = orig(self, mask, ugen)
        got.append((mask, left))
        return left

    monkeypatch.setattr(cls, "_diet", spy)
    return got


@pytest.mark.parametrize("name", ["luf_v12", "luf_v12_posted"])
def test_pageout_that_slept_is_dieted_by_finish_task_switch(monkeypatch, name):
    """The machine reaches v12's diet of the caller's own batch by itself (no hand-added
    call): the MADV_PAGEOUT task that slept on the anon_vma rwsem with A's deferral pending
    runs ``finish_task_switch`` -> ``luf_flush_mm(mm1)`` when it is stepped again, and the
    diet drops CPUs 1 and 3 from its ``tlb_ubc``. No rule breaks: B's read-only unmap, after
    the diet, puts mm1's CPUs (3 among them) in the mm's luf_batch again, and the madvise's
    ``tlb_end_vma`` (``luf_flush_vma``) flushes them in the same step as the pass frees A:
    the model has no point between that free and the flush (docs/LUF.md). The schedule is
    v12's (the mremap pauses in v12's ``flush_tlb_batched_pending``), so it is run under the
    v12 modules only."""
    from conformance.litmus import parse

    cls = load_protocol(name)
    got = _diet_spy(monkeypatch, cls)
    assert run_scenario(parse(PAGEOUT_SLEEPS_SCRIPT), cls) is None
    assert (0b1010, 0) in got, got


def test_finish_task_switch_row_only_where_overridden():
    """The trace has ``finish_task_switch`` rows for luf_v12, none for linux (whose traces
    and replay fixtures stay as they were): the resumed task's after its sleep, and a CPU's
    (a user access) or a starting operation's after a kernel thread's reclaim there."""
    from conformance.trace import format_event

    rows = {}
    for name in ("luf_v12", "linux"):
        m = run_lines(PAGEOUT_SLEEPS_SCRIPT, load_protocol(name))
        rows[name] = [(ev[1], format_event(ev[2], ev[3])) for ev in m.trace.events
                      if "finish_task_switch" in format_event(ev[2], ev[3])]
    assert rows["linux"] == []
    kthread = "finish_task_switch: switched in from a kernel thread, rq->prev_mm = mm%d"
    assert [(getattr(who, "name", who), text) for who, text in rows["luf_v12"]] == [
        (2, kthread % 0),  # R0 (kswapd) on CPU2, then CPU2's task (mm0) reads v3; after
        # R1 no user task runs on CPU2 again
        ("madvise", "finish_task_switch: switched in from idle, rq->prev_mm = mm1")]


@pytest.mark.parametrize("name", ["luf_v12", "luf_v12_posted"])
def test_migration_in_a_user_task_that_slept_is_s2(name):
    """litmus/luf-diet-own-batch.litmus: direct compaction (``compact``: the migration run by
    a user task on CPU1, mm1) reaches docs/LUF.md's third window by the machine's rule
    alone: the diet at ``finish_task_switch`` drops CPU3 from the task's own batch, C's unmap
    adds only mm0's CPUs back, and ``move:`` copies A while CPU3 holds its writable dirty
    entry: S2. The same script with kcompactd's ``migrate`` (no user task: no
    ``finish_task_switch``) passes; linux and immediate pass either way."""
    from conformance.litmus import parse

    direct = next(s for s in corpus() if s.name == "luf-diet-own-batch")
    with open(direct.path) as f:
        text = f.read()
    assert "CPU1 compact G" in text
    kthread = parse(text.replace("CPU1 compact G", "CPU1 migrate G"))
    assert run_scenario(kthread, load_protocol(name)) is None
    assert verdict(run_scenario(direct, load_protocol(name))) == "S2"
    for good in ("linux", "immediate"):
        assert run_scenario(kthread, load_protocol(good)) is None
        assert run_scenario(direct, load_protocol(good)) is None


def test_finish_task_switch_runs_exactly_where_a_user_task_is_switched_in(monkeypatch):
    """The two rules, stated independently of the machine's code and checked on every
    resumption and every user-side event of 600 swarm walk examples (certify's; run
    directly, without the stuck-hook watchdog, which would take this file for the
    protocol's and the test for a hook):

    * a blocked operation stepped again runs ``finish_task_switch`` (in its own context,
      with its CPU's mm) if and only if a user task runs it (a fault, a syscall,
      ``compact``, ``move_pages``; not kswapd's reclaim, kcompactd's ``migrate``, the flusher's writeback)
      and it waited on a sleeping lock (an rwsem, a VMA lock, a folio lock, a migration entry; not a
      PTL, which its waiter spins on), on a CPU whose mm is not exiting (a slot a fork
      replaces counts as not exiting: its old tenant is handed over); each of the four
      cases occurs;
    * after a kernel thread's operation on a CPU (kswapd's reclaim, kcompactd's migrate,
      the flusher's writeback, or an exit: the dead task leaves as a kernel thread), the
      first user task to run there (a user access, the start of a user task's operation or
      an exit, a switch to another mm) runs it once, with the CPU's mm (the one switched
      away from), exiting or not (the lazy reference keeps it)."""
    import conformance.machine as machine
    from conformance.search.walk import run_example

    user = {"fault", "munmap", "mprotect", "mmap", "madvise", "mremap", "fork", "write",
            "truncate"}
    sleeping = {"SleepLock", "_ReadWant", "_WriteWant", "_MigrationWait", "_VmaWriteWant"}
    calls, want, seen = [], [], set()

    def pending(m):  # per machine: a swarm example replays branches on fresh machines
        return m.__dict__.setdefault("_test_kthread_ran", set())

    class Rec(load_protocol("linux")):
        name = "linux_fts_recorder"

        def finish_task_switch(self, task, mm):
            if isinstance(task, int) or task.steps == 0:  # switched in from a kernel thread
                calls.append(("k", task if isinstance(task, int) else task.cpu, mm.id))
            else:
                calls.append(("s", task.id, task.steps, mm.id))

    M = machine.Machine
    orig, o_finish, o_access, o_start, o_switch = (M._step, M._finish, M.user_access,
                                                    M._start, M.switch_mm)

    def finish(self, op):
        o_finish(self, op)
        if op.name in ("reclaim", "writeback", "exit") or (
                op.name == "migrate" and not op.label.startswith(("compact[", "move_pages["))):
            pending(self).add(op.cpu)

    def switched_in(self, cpu, mm):
        pending(self).discard(cpu)
        want.append(("k", cpu, mm.id))

    def access(self, cpu, vpage, write):
        c = self.tlbs.cpus[cpu]
        if cpu in pending(self) and c.op is None and not c.loaded_mm.exiting:
            switched_in(self, cpu, c.loaded_mm)
        return o_access(self, cpu, vpage, write)

    def start(self, cpu, name, args, gen_fn, label, user_task=None):
        c = self.tlbs.cpus[cpu]
        if cpu in pending(self) and c.op is None and (name in user or name == "exit"
                                                       or user_task):
            switched_in(self, cpu, c.loaded_mm)
        return o_start(self, cpu, name, args, gen_fn, label, user_task)

    def switch(self, cpu, mm_id):
        c = self.tlbs.cpus[cpu]
        prev, nxt = c.loaded_mm, self.mms[mm_id]
        if cpu in pending(self) and c.op is None and prev is not nxt and not nxt.exiting:
            switched_in(self, cpu, prev)
        return o_switch(self, cpu, mm_id)

    def step(self, op):
        b = op.blocked_on
        if b is not None:
            is_user = op.name in user or op.label.startswith(("compact[", "move_pages["))
            sleeps = type(b).__name__ in sleeping
            seen.add((is_user, sleeps))
            mm = self.tlbs.cpus[op.cpu].loaded_mm
            # a slot a fork replaces (exiting set too) still has its old tenant, which the
            # idle task's lazy reference keeps: only a real exit has no mm to hand over
            forked = any(o.name == "fork" and o.args[0] == mm.id for o in self.ops)
            if is_user and sleeps and (not mm.exiting or forked):
                want.append(("s", op.id, op.steps + 1, mm.id))
        return orig(self, op)

    for name, fn in (("_step", step), ("_finish", finish), ("user_access", access),
                     ("_start", start), ("switch_mm", switch)):
        monkeypatch.setattr(M, name, fn)
    for seed in range(600):
        assert run_example(Rec, seed=seed, swarm=True).failure is None
    assert calls == want
    assert sum(w[0] == "s" for w in want) > 100 and sum(w[0] == "k" for w in want) > 100
    assert seen == {(True, True), (True, False), (False, True), (False, False)}, seen


def _recording(calls):
    """linux with a ``finish_task_switch`` that records (task, mm, exiting)."""
    class Rec(load_protocol("linux")):
        name = "linux_fts_recorder"

        def finish_task_switch(self, task, mm):
            calls.append((task.label, mm.id, mm.exiting))
    return Rec


def test_exit_waits_for_its_tasks_direct_compaction():
    """``exit_mmap`` of an mm is refused while a task of it is in direct compaction (the
    compacting task keeps its mm: ``compact``), not while kcompactd migrates its folios."""
    from conformance.errors import UsageError
    from conformance.machine import Machine
    from conformance.config import MachineConfig

    for verb, refused in (("compact", True), ("migrate", False)):
        m = Machine(load_protocol("linux"), MachineConfig(ncpus=2, nmms=1))
        frame = m.mms[0].ptes[0].frame
        op = getattr(m, verb)(0, (frame,))
        assert op in m.ops  # still in flight after its first step
        assert m.can_exit(1) is not refused
        if refused:
            with pytest.raises(UsageError, match="compact.*still in flight"):
                m.exit_mmap(1)


def test_no_switch_in_on_a_cpu_whose_mm_is_exiting():
    """A file write started on a CPU whose mm is exiting (the model's file syscalls do not
    load their task's mm) that sleeps on a folio lock gets no ``finish_task_switch``: the mm
    a switch would hand over is not known. The same write on a live mm's CPU gets one."""
    script = """
name   write-on-exiting-cpu
config populate=false ncpus=4
CPU0   touch w v0           # a page table of mm0's: its exit has a table to zap, and pauses
CPU1   touch w v0
CPU1   writeback B file0 0
B      step                 # holds file0:0's folio lock
{exit}
CPU2   filewrite W file0 0  # waits for the folio lock
B      finish
W      finish
"""
    for exiting in (True, False):
        calls = []
        text = script.format(exit="CPU0   exit E\nE      step" if exiting else "")
        run_lines(text, _recording(calls))
        assert calls == ([] if exiting else [("write(file0:0)", 0, False)]), calls


def test_a_task_switched_in_from_a_kernel_thread_is_set_up():
    """The operation a user task starts after kswapd ran on its CPU reaches
    ``finish_task_switch`` set up, as the kernel's task is: its ``tlb_ubc`` made
    (``init_task``), in the machine's operations, its start row logged (until a review of
    2026-12-06 the hook got it before ``init_task``: a hook reading ``task.tlb_ubc`` raised)."""
    from conformance.machine import Machine

    seen = []

    class Rec(load_protocol("linux")):
        name = "linux_fts_setup"

        def finish_task_switch(self, task, mm):
            seen.append((task.tlb_ubc is not None, task in m.ops, mm.id))

    m = Machine(Rec)
    cpu = 1
    m.reclaim(cpu, (m.frame_of(m.tlbs.cpus[cpu].loaded_mm.id, 0),))
    m.drain()
    m.munmap(cpu, 2, 1)
    assert seen == [(True, True, m.tlbs.cpus[cpu].loaded_mm.id)]
