"""The bounded check (conformance/search/bounded.py, docs/BOUNDED.md): smallest K and shortest
counterexample on known mutants, a pass on linux, each reduction against the unreduced
search, determinism across runs and jobs, a partial result on a budget, the CLI."""
from __future__ import annotations

import os
import subprocess
import sys

import attrs
import pytest

from conformance.boundcli import BOUND_CONFIG, save_counterexample
from conformance.search.bounded import bounded
from conformance.cli import main
from conformance.registry import load_protocol
from conformance.reproducer import load, replay

EMPTY = attrs.evolve(BOUND_CONFIG, populate=False)


def _counts(res):
    return [(lv.k, lv.states, lv.transitions, lv.depth, lv.complete) for lv in res.levels]


def test_linux_4_3_fails_at_k2_with_the_shortest_counterexample(tmp_path):
    """2.4 (reclaim vs mprotect/munmap, no flush_tlb_batched_pending): every program of one
    operation passes, a program of two fails in 3 transitions, and the reproducer replays it.
    (The 3-transition program was reclaim + munmap until 2026-12-05; since munmap's
    free_pgtables waits for reclaim's rmap walk, that one takes longer and BFS meets the
    mprotect one first.)"""
    res = bounded(load_protocol("linux_4_3"), BOUND_CONFIG, 3)
    assert res.levels[0].complete and res.levels[0].k == 1
    assert res.fail_k == 2 and res.failure.rule == "S3"
    assert res.path == (("s", 0, "reclaim", (0,)), ("s", 1, "mprotect", (0, 1, False)), ("a", 1))
    path = save_counterexample(res, str(tmp_path))
    again = replay(load(path))
    assert again is not None and again.headline() == res.failure.headline()
    assert again.report(last=None) == res.failure.report(last=None)


def test_hist_2_9_fails_at_k1():
    """2.9 (migration flushes after the copy): one migrate, 5 transitions (the fifth: the point inside set_tlb_ubc_flush_pending, hookpoints)."""
    res = bounded(load_protocol("hist_2_9_migrate_flush_after_copy"), BOUND_CONFIG, 2)
    assert res.fail_k == 1 and len(res.path) == 5 and res.failure.rule == "S2"
    assert res.path[0] == ("s", 0, "migrate", (0,))


def test_linux_passes_at_k2():
    res = bounded(load_protocol("linux"), EMPTY, 2)
    assert res.passed, res.headline()
    # 1,132 states and 2,596 transitions at K=2 until 2026-12-05, when mprotect began to
    # stop at a hole as do_mprotect_pkey does (an mprotect starting in one changes nothing)
    # 1,136 and 2,600 until 2026-12-06, when a CPU's TLB entered the key in a canonical
    # order (statekey._cpu: a re-fill no longer makes a state of its own); 26 and 1,107
    # until 2026-12-06 10:00, when a walker began to skip a range with no page table
    # (Mm.pmd_none: the empty boot has none, so no PTL or flush_tlb_batched_pending there);
    # 795 and 2,082 until 2026-12-06 12:00, when free_pgtables began to free the tables no
    # VMA shares (a fault, then a munmap of its page: the table goes, with a flush); 803 and
    # 2,090 until 2026-12-06 15:00, when a fault's first try began to drop mmap_lock for
    # its read (VM_FAULT_RETRY: a munmap or mprotect no longer waits behind the read, so
    # fewer of their waiting states); 673 and 1,750 until 2026-12-06 18:00, when a fault
    # that found its PTE changed (or waited for a migration entry) began to return to user
    # space and fault again (docs/model.md section 11 item 22: an unlock and a point between);
    # 705 and 1,846 until 20:40, when that fault began to end at its return 0 (the restarted
    # access is the program's next operation): the same graph as before 18:00; 673 and
    # 1,750 until 2026-12-07 10:30, when faults began to take their VMA's lock (docs/model.md
    # section 11 item 31: a munmap of the other page no longer waits behind a fault, so
    # its waiting states are gone); 621 and 1,622 until 2026-12-07 15:00, when
    # tlb_end_vma stopped flushing (MMU_GATHER_MERGE_VMAS, x86's: docs/model.md section 11
    # item 34; a munmap's one flush is now in tlb_finish_mmu, whose points between its
    # flush and its free the per-VMA flush had not)
    assert _counts(res) == [(1, 14, 32, 2, True), (2, 682, 1760, 11, True)]
    assert res.headline().startswith("PASS: no violation in any interleaving of any program "
                                      "of <= 2 operations: 682 states")
    # without the lazy evictions: 791 states (730 with the flush at each VMA's end, 792
    # before per-VMA locks, 832 with the
    # re-fault inside the fault, 952 before
    # VM_FAULT_RETRY, 944 before tables were freed, 1,260 before the pmd_none skip); without
    # either reduction 22 at K=1 (the 42 until 2026-12-06: an eviction's empty table
    # and a re-fill's order were states of their own; 34 before the skip) and 824 at K=2
    # (886 before per-VMA locks; 926 with the re-fault inside the fault;
    # 1,046; 1,038; 1,354); 1,934 and 2,136 before the canonical TLB key; 882 since
    # MMU_GATHER_MERGE_VMAS (824 with the flush at each VMA's end)
    eager = bounded(load_protocol("linux"), EMPTY, 2, lazy_evict=False)
    assert eager.passed and _counts(eager) == [(1, 14, 32, 2, True), (2, 791, 2192, 11, True)]
    plain = bounded(load_protocol("linux"), EMPTY, 2, reduce=False, lazy_evict=False)
    assert plain.passed and _counts(plain) == [(1, 22, 52, 4, True), (2, 882, 2726, 11, True)]


def test_linux_populated_k2_completes():
    """The populated boot at K=2 (both CPUs caching both pages): out of reach without the
    lazy evictions (more than 670,000 states in 10 minutes), complete with them."""
    res = bounded(load_protocol("linux"), BOUND_CONFIG, 2)
    assert res.passed, res.headline()
    # 49,006 until 2026-12-04 17:50, when a batch flush stopped flushing up-to-date CPUs;
    # 48,632 until 22:00, when munmap's detached VMAs stayed in the rmap until free_pgtables
    # (remove_migration_ptes finds them: more interleavings of migrate and munmap); 52,124
    # until 2026-12-05, when free_pgtables began to wait for an rmap walk in flight; 53,178
    # until 2026-12-05, when mprotect began to stop at a hole as do_mprotect_pkey does;
    # 507 and 53,214 until 2026-12-06, when a CPU's TLB entered the key in a canonical
    # order (statekey._cpu); 259 and 35,637 until 2026-12-06 12:00, when free_pgtables
    # began to free the tables no VMA shares (a munmap of both pages of one); 35,961 until
    # 2026-12-06 15:00, when a fault's first try began to drop mmap_lock for a folio lock
    # or read IO (VM_FAULT_RETRY); 35,993 until 2026-12-06 18:00, when a fault that found
    # its PTE changed began to return to user space and fault again (model.md 11 item 22);
    # 37,337 until 20:40, when that fault began to end at its return 0 (the restarted access
    # is the program's next operation); 35,301 until 2026-12-07, when an mprotect to RW
    # began to make writable the PTEs can_change_pte_writable allows (model.md K7); 35,338
    # until 2026-12-07 10:10, when a write fault on a read-only VMA became a SIGSEGV under
    # its VMA's lock (model.md item 31: it no longer waits for mmap_lock behind a munmap);
    # 261 and 35,322 until 2026-12-07 15:00, when tlb_end_vma stopped flushing
    # (MMU_GATHER_MERGE_VMAS, x86's, model.md item 34: a munmap's or mprotect's flush is in
    # tlb_finish_mmu, with a point between its flush and its free)
    assert [lv.states for lv in res.levels] == [284, 40143]


@pytest.mark.parametrize("name,cfg,k,menu", [
    ("linux_4_3", BOUND_CONFIG, 2, ("reclaim", "munmap")),
    ("hist_2_9_migrate_flush_after_copy", BOUND_CONFIG, 1, ("migrate",)),
    ("luf_v10", EMPTY, 2, ("read", "write", "reclaim", "munmap")),
])
def test_undo_loses_nothing(name, cfg, k, menu):
    """The undo of hardware events (and the partial keys it allows) against the unreduced
    search, which re-executes every transition and takes every key whole: the same states,
    transitions and counterexample; with check_undo every incremental key and every undo
    is compared with a whole key as the search runs."""
    cls = load_protocol(name)
    plain = bounded(cls, cfg, k, menu=menu, undo=False, reduce=False, lazy_evict=False)
    # check_undo triples the cost: on the smallest case only (every protocol gets it below)
    fast = bounded(cls, cfg, k, menu=menu, check_undo=name.startswith("hist"), reduce=False,
                   lazy_evict=False)
    assert _counts(fast) == _counts(plain)
    assert fast.path == plain.path and fast.fail_k == plain.fail_k
    # the lazy evictions' pairs undone too: the same as re-executing them
    lazy_plain = bounded(cls, cfg, k, menu=menu, undo=False, reduce=False)
    lazy_fast = bounded(cls, cfg, k, menu=menu, reduce=False, check_undo=True)
    assert _counts(lazy_fast) == _counts(lazy_plain) and lazy_fast.path == lazy_plain.path
    # both reductions: fewer states, the same verdict and a counterexample as short
    reduced = bounded(cls, cfg, k, menu=menu)
    _same_verdict(reduced, plain)
    assert sum(lv.states for lv in reduced.levels) <= sum(lv.states for lv in plain.levels)


def _same_verdict(reduced, plain):
    """The same verdict at the same K, a counterexample of the same length and rule (which
    of several shortest ones BFS meets first may differ: pairs are queued behind)."""
    assert reduced.passed == plain.passed and reduced.fail_k == plain.fail_k
    assert len(reduced.path) == len(plain.path)
    assert (reduced.failure and reduced.failure.rule) == (plain.failure and plain.failure.rule)


def test_terminal_check_sees_what_a_fresh_fill_would():
    """The terminal-state reduction's check (bounded._fresh_fills_pass): it passes on a
    coherent machine, and fails when a present PTE maps a frame that no longer holds the
    location's content, with no TLB entry caching it (only a fill would show it)."""
    from conformance.search.bounded import _fresh_fills_pass
    from conformance.machine import Machine

    m = Machine(load_protocol("linux"), BOUND_CONFIG)
    assert _fresh_fills_pass(m)
    for cpu in range(BOUND_CONFIG.ncpus):
        m.evict(cpu, 0)  # mm0:v0, the anonymous page, leaves every TLB
    m.mem.value[m.mms[0].ptes[0].frame] = 7  # the frame's content is lost
    m.check_quiescent()  # no entry shows it
    assert not _fresh_fills_pass(m)
    with pytest.raises(Exception, match="C1"):
        m.fill(0, 0)


def test_undo_is_exact_for_every_protocol():
    """Every protocol of the corpus, K=1 on the empty boot: undo and partial keys checked
    against whole keys at every hardware event (a protocol whose state holds a PTE or a TLB
    entry would show here)."""
    from conformance.registry import protocol_names

    for name in protocol_names():
        bounded(load_protocol(name), EMPTY, 1, check_undo=True)


@pytest.mark.parametrize("name,menu", [("linux_4_3", ("reclaim", "munmap")),
                                       ("mut_gather_free_before_flush", ("munmap",))])
def test_start_undo_is_exact(name, menu):
    """Starts undone in place (conformance/search/snapshot.py), at K=2 where a start runs while
    another operation is in flight (its hook paused at an automatic point: the undo closes
    the new operation's paused greenlet): with check_undo every start's key is compared
    with the key of a re-execution and the restored machine's with the parent's; states,
    transitions and counterexample are those of the search that re-executes everything."""
    cls = load_protocol(name)
    for lazy in (False, True):
        plain = bounded(cls, BOUND_CONFIG, 2, menu=menu, undo=False, reduce=False,
                        lazy_evict=lazy)
        fast = bounded(cls, BOUND_CONFIG, 2, menu=menu, check_undo=True, reduce=False,
                       lazy_evict=lazy)
        assert _counts(fast) == _counts(plain)
        assert fast.path == plain.path and fast.fail_k == plain.fail_k


def test_dropped_machines_are_freed():
    """Every machine the search re-executes is freed when dropped: one whose operation is
    paused inside a hook (a greenlet) used to stay alive with its whole machine (79 MB
    per 5,000 states of linux at K=2)."""
    import gc

    from conformance.machine import Machine

    def machines():
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, Machine))

    before = machines()
    res = bounded(load_protocol("mut_gather_free_before_flush"), BOUND_CONFIG, 1,
                  menu=("munmap", "reclaim"))
    assert res.passed and res.levels[-1].states > 50  # 53 (was 100+ before the canonical key)
    assert machines() <= before


def test_deterministic_across_runs_and_jobs():
    cls, menu = load_protocol("linux_4_3"), ("reclaim", "munmap")
    a = bounded(cls, BOUND_CONFIG, 2, menu=menu)
    b = bounded(cls, BOUND_CONFIG, 2, menu=menu)
    c = bounded(cls, BOUND_CONFIG, 2, menu=menu, jobs=2)
    assert _counts(a) == _counts(b) == _counts(c)
    assert a.path == b.path == c.path


def test_partial_result_on_a_budget():
    res = bounded(load_protocol("linux"), BOUND_CONFIG, 3, budget_s=0.5)
    assert res.stopped == "budget" and not res.passed and res.failure is None
    assert "PARTIAL (budget): complete up to K=" in res.headline()
    assert not res.levels[-1].complete


def test_ctrl_c_is_a_partial_result():
    """Ctrl-C (here raised by the progress callback after the second BFS level of K=1):
    the result says how far the search got."""
    seen = []

    def progress(lv):
        seen.append(lv.depth)
        if len(seen) == 2:
            raise KeyboardInterrupt

    res = bounded(load_protocol("linux"), EMPTY, 2, progress=progress)
    assert res.stopped == "interrupted" and res.complete_k == 0
    assert res.headline().startswith("PARTIAL (interrupted): complete up to K=0, partial at K=1")


def test_cli_pass_fail_and_bad_input(capsys, tmp_path):
    assert main(["bound", "linux", "-k", "1", "-q", "--config", "populate=false"]) == 0
    out = capsys.readouterr().out
    assert "PASS: no violation" in out and "14 states" in out  # 26 before Mm.pmd_none
    assert "reduced   terminal states, lazy evictions" in out
    assert main(["bound", "linux", "-k", "1", "-q", "--config", "populate=false",
                 "--unreduced"]) == 0
    out = capsys.readouterr().out
    assert "22 states" in out and "reduced   none (--unreduced)" in out  # 34 before
    rd = str(tmp_path)
    assert main(["bound", "hist_2_9_migrate_flush_after_copy", "-k", "1", "-q",
                 "--repro-dir", rd]) == 1
    out = capsys.readouterr().out
    assert "shortest counterexample: 5 transitions" in out and "flushcheck replay" in out
    assert main(["bound", "linux", "-k", "0"]) == 2
    assert main(["bound", "linux", "--ops", "fork,read"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "unknown operation fork" in err
    # several pairs in one --config, comma-separated, as repeated flags
    assert main(["bound", "linux", "-k", "1", "-q", "--config", "populate=false,ncpus=3"]) == 0
    one = capsys.readouterr().out.split("verdict")[1].split(",")[:2]
    assert main(["bound", "linux", "-k", "1", "-q", "--config", "populate=false",
                 "--config", "ncpus=3"]) == 0
    assert capsys.readouterr().out.split("verdict")[1].split(",")[:2] == one
    assert main(["bound", "linux", "--config", "ncpus=3,bogus=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad --config 'bogus=1'" in err


def test_menu_is_data():
    """A kind added to the menu is searched: a menu of reads alone never fails linux_4_3
    (it needs reclaim and munmap), adding munmap and reclaim finds it."""
    cls = load_protocol("linux_4_3")
    assert bounded(cls, BOUND_CONFIG, 2, menu=("read",)).passed
    res = bounded(cls, BOUND_CONFIG, 2, menu=("read", "reclaim", "munmap"))
    assert res.fail_k == 2


def test_certify_carries_the_bounded_result(capsys, tmp_path):
    """certify --bound K: the bounded verdict under the random one, in the certificate too,
    and a bounded counterexample fails the run even when the random search passed."""
    import json

    out = str(tmp_path / "cert")
    assert main(["certify", "linux", "--examples", "5", "--chunk", "5", "--jobs", "1",
                 "--database", "none", "--bound", "1", "--config", "populate=false",
                 "--out", out]) == 0
    text = capsys.readouterr().out
    assert "  bounded   PASS: no violation in any interleaving of any program of <= 1" in text
    cert = json.load(open(f"{out}/certificate.json"))
    assert cert["bounded"]["passed"] and cert["bounded"]["levels"][0]["states"] == 14
    assert "| bounded check | PASS" in open(f"{out}/certificate.md").read()
    assert main(["certify", "hist_2_9_migrate_flush_after_copy", "--examples", "1", "--chunk",
                 "1", "--jobs", "1", "--database", "none", "--steps", "1", "--bound", "1",
                 "--bound-ops", "migrate", "--repro-dir", str(tmp_path)]) == 1
    assert "  bounded   FAIL: S2 with a program of 1 operation:" in capsys.readouterr().out
    assert main(["certify", "linux", "--bound", "0"]) == 2


@pytest.mark.parametrize("boot,k", [("populated", 1), ("empty", 2)])
def test_lazy_evictions_lose_nothing(boot, k):
    """The lazy-eviction reduction (docs/BOUNDED.md, "Reductions") against the search with
    every eviction a transition of its own, on every protocol in protocols/: the same
    verdict, at the same K, with a counterexample as short, in fewer states."""
    from conformance.registry import protocol_names

    cfg = BOUND_CONFIG if boot == "populated" else EMPTY
    for name in protocol_names():
        cls = load_protocol(name)
        eager = bounded(cls, cfg, k, lazy_evict=False)
        lazy = bounded(cls, cfg, k)
        _same_verdict(lazy, eager)
        assert lazy.levels[-1].states < eager.levels[-1].states, name


@pytest.mark.parametrize("name,menu", [
    ("linux_4_3", "small"), ("luf_v12", "small"), ("hist_2_5_no_nested_gather_flush", "full")])
def test_lazy_evictions_keep_each_mutants_shortest(name, menu):
    """Mutants that fail at K=2 on the populated boot: the same K, rule and length of the
    shortest counterexample with and without the lazy evictions."""
    from conformance.search.menu import MENUS

    cls = load_protocol(name)
    eager = bounded(cls, BOUND_CONFIG, 2, menu=MENUS[menu], lazy_evict=False)
    lazy = bounded(cls, BOUND_CONFIG, 2, menu=MENUS[menu])
    assert eager.fail_k == 2
    _same_verdict(lazy, eager)


def _violation_when(monkeypatch, where, test):
    """Make ``Machine.<where>`` fail with rule X when ``test(machine, cpu, vpage)`` holds
    before it runs: a stand-in for a protocol bug that only an eviction exposes."""
    from conformance.errors import Violation
    from conformance.machine import Machine

    orig = getattr(Machine, where)

    def patched(self, cpu, vpage, *a):
        if test(self, cpu, vpage):
            raise Violation("X", f"{where} on CPU{cpu} v{vpage}")
        return orig(self, cpu, vpage, *a)
    monkeypatch.setattr(Machine, where, patched)


@pytest.mark.parametrize("where,menu", [("user_access", ("read",)), ("fill", ("read",))])
def test_pairs_reach_what_an_eviction_enables(monkeypatch, where, menu):
    """On the populated boot every CPU caches every page, so a read that misses the TLB, or
    a fill, happens only after an eviction. A violation there is found by the lazy search
    through its pairs (an eviction and the access that misses; an eviction and the re-fill),
    as short as the eager search's, and missed by a search that drops evictions (so this
    test can fail)."""
    from conformance.search import bounded as B

    def misses(m, cpu, vp):
        c = m.tlbs.cpus[cpu]
        return m.tlbs.lookup(c, c.loaded_mm.id, vp) is None
    _violation_when(monkeypatch, where, misses)
    cls = load_protocol("linux")
    eager = bounded(cls, BOUND_CONFIG, 1, menu=menu, lazy_evict=False)
    lazy = bounded(cls, BOUND_CONFIG, 1, menu=menu)
    assert eager.failure is not None and eager.failure.rule == "X" and len(eager.path) == 2
    assert eager.path[0][0] == "e"
    _same_verdict(lazy, eager)
    assert lazy.path[0][0] == "e"  # the pair, as two transitions of the path
    orig = B.choices
    monkeypatch.setattr(B, "choices",
                        lambda m, s, ctx: [c for c in orig(m, s, ctx) if c[0] not in "rm"])
    assert bounded(cls, BOUND_CONFIG, 1, menu=menu).passed


def test_reclaim_nested_kind():
    """``--ops small,reclaim_nested``: reclaim of one folio with a nested pass over another
    (kernel-notes 2.3), on no menu by default; its start logs the nested folio, so a
    counterexample through it replays."""
    from conformance.machine import Machine
    from conformance.search.menu import KINDS, MENUS, parse_menu

    assert "reclaim_nested" not in MENUS["full"]
    assert parse_menu("small,reclaim_nested") == MENUS["small"] + ("reclaim_nested",)
    m = Machine(load_protocol("linux"), BOUND_CONFIG)
    args = KINDS["reclaim_nested"].args(m, 0)
    lru = m.lru_frames()
    assert args == [(f, g) for f in lru for g in lru if f != g] and args
    KINDS["reclaim_nested"].start(m, 0, args[0])
    assert m.actions[-1] == ("reclaim", (0, (args[0][0],), (args[0][1],)))


def test_the_key_reads_shared_protocol_state():
    """A pointed protocol's state is a SharedDict / SharedList (conformance/hookpoints.py): a
    dict or list subclass with empty slots. The key read it as its class name, so two states
    that differ only in LUF's pending cpumasks (or a per-VMA flag list) shared one key and
    the search expanded one of them; luf_vma_flag at K<=2 counted 61,438 states that way
    against 61,636. The explorer's fingerprint always read the contents."""
    from conformance.hookpoints import SharedDict, SharedList
    from conformance.machine import Machine
    from conformance.search import statekey
    from conformance.search.explorer import fingerprint

    m = Machine(load_protocol("luf_v12"), attrs.evolve(BOUND_CONFIG, populate=False))
    assert type(m.proto.pending) is SharedDict
    before, fp_before = statekey.key(m), fingerprint(m)
    dict.__setitem__(m.proto.pending, 1, 1)  # no interleaving point outside a hook
    assert statekey.key(m) != before and fingerprint(m) != fp_before
    dict.clear(m.proto.pending)
    assert statekey.key(m) == before
    m.proto.extra = SharedList([1])
    with_one = statekey.key(m)
    list.append(m.proto.extra, 2)
    assert statekey.key(m) != with_one


def test_every_slot_reaches_the_key():
    """The key reads each slot through generated code (conformance/search/fingerprint.py for
    model objects, statekey._op_slots for an operation): changing any one slot of an
    operation in flight, a PTE, a VMA or a TLB entry changes the key, and putting it back
    restores it. Fails if the generated readers skip a slot (an off-by-one in the slot
    list, a slot read into the wrong variable)."""
    from conformance.machine import Machine
    from conformance.search import fingerprint, statekey

    m = Machine(load_protocol("linux"), BOUND_CONFIG)
    m.munmap(0, 0, 1)  # an operation in flight, paused at its first interleaving point
    op = m.ops[0]
    entry = next(iter(m.tlbs.cpus[0].tlb[0].values()))
    objects = [op, m.mms[0].ptes[0], m.mms[0].vmas[0], entry]
    skip = {op: statekey._OP_SKIP | {"s3_wd"}}  # s3_wd: read only while its entry is cached
    base = statekey.key(m)
    tried = 0
    for obj in objects:
        for name in fingerprint.slots_of(type(obj)):
            if name in skip.get(obj, ()):
                continue
            old = getattr(obj, name)
            object.__setattr__(obj, name, _another(old))
            try:
                assert statekey.key(m) != base, f"{type(obj).__name__}.{name} is not in the key"
            finally:
                object.__setattr__(obj, name, old)
            assert statekey.key(m) == base
            tried += 1
    assert tried >= 25


def _another(v):
    """A value of ``v``'s kind that differs from it (a dict or list one item longer)."""
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 1000
    if isinstance(v, dict):  # a key of the kind it holds (some are sorted)
        k = next(iter(v), (7, 7))
        return {**v, (k + 1000 if isinstance(k, int) else (7, 7)): 7}
    if isinstance(v, list):
        return v + [7]
    return ("changed", v)


def test_the_header_is_the_command_that_runs_it_again(capsys, tmp_path, monkeypatch):
    """A file protocol is named by its absolute path (its bare name would load nothing, or
    a built-in of that name), with the options that shaped the search; the header runs the
    same search again. The header printed the protocol's name and -k alone until
    2026-12-04."""
    import shutil
    from pathlib import Path

    import conformance

    src = Path(conformance.__file__).parent.parent / "protocols" / "linux_4_3.py"
    shutil.copy(src, tmp_path / "mine.py")
    monkeypatch.chdir(tmp_path)
    args = ["mine.py", "-k", "1", "--ops", "read,munmap", "--config", "populate=false"]
    assert main(["bound", *args, "-q"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    head = first.split("   commit")[0]
    assert head == (f"flushcheck bound {tmp_path / 'mine.py'} -k 1 --ops read,munmap "
                    "--config populate=false")
    again = head.split()[2:]
    assert main(["bound", *again, "-q"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == first


def test_the_key_does_not_depend_on_when_locals_were_read():
    """CPython 3.11 keeps one ``f_locals`` dict per frame and appends names set since the
    last read, so reading it in its own order made a frame's key depend on when earlier
    keys were taken on that machine: one state got two keys, and ``check_undo`` failed
    on madvise's frame (``end`` and ``folios`` swapped) until locals were read sorted
    (found by a review on 2026-12-04)."""
    from conformance.search.menu import MENUS

    res = bounded(load_protocol("linux"), EMPTY, 2, menu=MENUS["full"], check_undo=True)
    assert res.passed


#: the config mut_batched_mark_first's race needs: a third CPU (reclaim, truncate and mremap
#: all in flight), a free page for mremap's destination (vpages=3: v0 anon, v1 file0, v2
#: free) and a page table per page (truncate's PTL must not be mremap's)
TRUNCATE_VS_MREMAP = attrs.evolve(BOUND_CONFIG, ncpus=3, vpages=3, ptes_per_table=1)


def test_the_bounded_check_finds_the_mutant_the_walk_does_not(tmp_path):
    """mut_batched_mark_first (flush_tlb_batched_pending marks the mm flushed before it
    flushes) is found by the random walk in few seeds (docs/CORPUS.md); every program of
    three operations of reclaim, truncate and mremap finds it, in the interleaving of
    litmus/gap-mremap-vs-truncate.litmus: reclaim clears the file page v1, defers its
    flush and removes the folio from the page cache; mremap's move_ptes marks the mm and
    pauses before its flush (no gather open yet); a hole punch reads the mark, skips its
    flush, finds no other gather and returns while CPU0 still caches v1. (Before mremap
    unmapped its old range, 2026-12-04 17:00, the 6 transitions found were the reverse
    order, which mremap's nested tlb_finish_mmu flushes in the kernel.)"""
    res = bounded(load_protocol("mut_batched_mark_first"), TRUNCATE_VS_MREMAP, 3,
                  menu=("reclaim", "truncate", "mremap"), start_k=3)
    assert res.fail_k == 3 and res.failure.rule == "S3"
    assert res.path == (("s", 0, "reclaim", (1,)), ("a", 0), ("a", 0), ("a", 0),
                        ("s", 1, "mremap", (0, 1, 2)), ("s", 2, "truncate", (0, 0)), ("a", 2))
    again = replay(load(save_counterexample(res, str(tmp_path))))
    assert again is not None and again.headline() == res.failure.headline()


def test_mainline_passes_the_mutants_config_within_two_operations():
    """The reference on the same config and menu: no violation within two operations (and
    within three: 948,961 states in 1,095 s, docs/BOUNDED.md, too long for the suite)."""
    res = bounded(load_protocol("linux"), TRUNCATE_VS_MREMAP, 2,
                  menu=("reclaim", "truncate", "mremap"))
    assert res.passed, res.headline()


def test_truncate_and_mremap_kinds():
    """mremap's arguments are the moves that can succeed (a range in one VMA to a free range
    of its size, not overlapping it); truncate's every file page. Neither is on the reach
    table's ``full`` menu (measured before they joined); ``all`` has every kind."""
    from conformance.machine import Machine
    from conformance.search.menu import KINDS, MENUS

    m = Machine(load_protocol("linux"), TRUNCATE_VS_MREMAP)
    assert KINDS["mremap"].args(m, 0) == [(0, 1, 2), (1, 1, 2)]
    assert KINDS["mremap"].args(Machine(load_protocol("linux"), BOUND_CONFIG), 0) == []
    assert KINDS["truncate"].args(m, 0) == [(0, 0)]
    assert "truncate" not in MENUS["full"] and "mremap" not in MENUS["full"]
    assert set(MENUS["all"]) == set(KINDS)
    KINDS["mremap"].start(m, 2, (0, 1, 2))
    assert m.actions[-1] == ("mremap", (2, 0, 1, 2))


CERTIFY_ONE = ["--examples", "1", "--chunk", "1", "--jobs", "1", "--database", "none",
               "--steps", "1"]


def test_a_bounded_counterexample_fails_the_certificate_and_its_reproduction(capsys, tmp_path):
    """certify --bound K where only the bounded check fails: the overall verdict is FAIL (the
    report's ``overall`` line, the certificate), the counterexample's reproducer is copied
    beside the certificate, and --reproduce runs the bounded check again and matches. A
    certificate written as before 2026-12-04 14:30 (PASS beside a failing bounded check)
    no longer matches."""
    import json
    import os

    out = str(tmp_path / "cert")
    # one random example passes (seed 0); every program of two operations does not
    assert main(["certify", "mut_gather_free_before_flush", *CERTIFY_ONE, "--bound", "2",
                 "--repro-dir", str(tmp_path / "r"), "--out", out]) == 1
    text = capsys.readouterr().out
    assert "  verdict   PASS: 0 violations" in text and "  overall   FAIL: S1" in text
    cert = json.load(open(f"{out}/certificate.json"))
    assert cert["verdict"] == "FAIL: S1"
    cex = cert["bounded"]["counterexample"]
    assert os.path.exists(os.path.join(out, cex["files"]["reproducer"]))
    assert cex["transitions"].startswith("CPU")
    md = open(f"{out}/certificate.md").read()
    assert "**Verdict: FAIL: S1**" in md and "## Bounded check: shortest counterexample" in md
    assert main(["certify", "--reproduce", f"{out}/certificate.json", "--jobs", "1"]) == 0
    rep = capsys.readouterr().out
    assert "  bounded   FAIL: S1" in rep and "  verdict   MATCHED" in rep
    cert["verdict"] = "PASS"  # what the certificate said before
    json.dump(cert, open(f"{out}/certificate.json", "w"))
    assert main(["certify", "--reproduce", f"{out}/certificate.json", "--jobs", "1"]) == 1
    rep = capsys.readouterr().out
    assert "  verdict   DID NOT MATCH" in rep
    assert "bounded: shortest counterexample at K=2: CPU" in rep and "step CPU" in rep


def test_a_budget_stop_is_incomplete_not_pass_nor_fail(capsys, tmp_path):
    """A bounded check stopped by its budget before K, with no violation: exit 4, from the
    verb and from certify (verdict INCOMPLETE in the certificate, which --reproduce matches
    by running the complete bounds again)."""
    import json

    assert main(["bound", "linux", "-k", "3", "-q", "--budget", "0.5"]) == 4
    assert "PARTIAL (budget)" in capsys.readouterr().out
    out = str(tmp_path / "cert")
    assert main(["certify", "linux", *CERTIFY_ONE, "--bound", "3", "--bound-budget", "1",
                 "--out", out]) == 4
    assert "  overall   INCOMPLETE" in capsys.readouterr().out
    cert = json.load(open(f"{out}/certificate.json"))
    assert cert["verdict"] == "INCOMPLETE" and cert["bounded"]["stopped"] == "budget"
    assert main(["certify", "--reproduce", f"{out}/certificate.json", "--jobs", "1"]) == 0
    rep = capsys.readouterr().out
    assert "not re-run" in rep and "  verdict   MATCHED" in rep


def test_ctrl_c_in_either_search_is_interrupted_with_no_certificate(capsys, tmp_path,
                                                                     monkeypatch):
    """Ctrl-C in the bounded check: exit 130 and no certificate (it used to write a PASS one
    and exit 1). Ctrl-C in the random search: the bounded check does not start."""
    import os

    import conformance.boundcli as bc
    import conformance.certify as ce
    import conformance.search.bounded as bd

    def interrupt(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(bd, "_search", interrupt)
    out = str(tmp_path / "cert")
    assert main(["certify", "linux", *CERTIFY_ONE, "--bound", "2", "--out", out]) == 130
    text = capsys.readouterr().out
    assert "PARTIAL (interrupted)" in text and not os.path.exists(out)
    assert "certificate: none written" in text
    real = ce.certify

    def interrupted(*a, **k):
        res = real(*a, **k)
        res.interrupted = True
        return res
    monkeypatch.setattr(ce, "certify", interrupted)
    monkeypatch.setattr(bc, "run_bound", lambda *a, **k: pytest.fail("the bounded check ran"))
    assert main(["certify", "linux", *CERTIFY_ONE, "--bound", "2", "--out", out]) == 130
    assert not os.path.exists(out)


def test_bound_options_are_checked_before_the_random_search(capsys, monkeypatch):
    import conformance.certify as ce

    monkeypatch.setattr(ce, "certify", lambda *a, **k: pytest.fail("the random search ran"))
    assert main(["certify", "linux", "--bound", "1", "--bound-ops", "nope"]) == 2
    assert capsys.readouterr().err.startswith("flushcheck: error: --bound-ops 'nope'")
    assert main(["certify", "linux", "--bound-ops", "full"]) == 2
    assert main(["certify", "linux", "--bound-budget", "5"]) == 2
    assert "need --bound K" in capsys.readouterr().err


def test_a_chunk_stops_between_parents_at_the_deadline():
    """expand's ``stop`` ends a chunk before its next parent (the budget of a large config
    was overshot by minutes when only whole chunks of 64 parents were checked), and, since
    2026-12-05, before the next child of a parent (the first parent was always expanded
    whole: minutes for a large config)."""
    from conformance.search.bounded import _Ctx, expand

    ctx = _Ctx(load_protocol("linux"), BOUND_CONFIG, False, ("read", "reclaim"), 1, True,
               False, True, True)
    kids, whole, _, _, _ = expand(ctx, [(), (), ()], 0, None)
    assert whole > 0 and kids
    kids, cut, _, _, _ = expand(ctx, [(), (), ()], 0, None, stop=lambda: True)
    assert (kids, cut) == ([], 0)
    calls = iter(range(1000))
    kids, cut, _, _, _ = expand(ctx, [(), (), ()], 0, None, stop=lambda: next(calls) >= 5)
    # asked before each of the first parent's children: cut at its sixth, none kept (a
    # parent cut half-way gives no children; the level is partial anyway)
    assert (kids, cut) == ([], 0) and next(calls) == 6


def test_bad_arguments_are_one_line(capsys, tmp_path):
    """argparse's own errors (a word where a number goes) are one line and exit 2, as every
    other bad input; an output directory that cannot be made (/proc: root may "access" it)
    is refused before the search."""
    from conformance.cli import _writable

    with pytest.raises(SystemExit) as e:
        main(["bound", "linux", "-k", "x"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid int value: 'x'" in err
    assert _writable(str(tmp_path))
    if os.path.isdir("/proc"):
        assert not _writable("/proc")
        assert main(["bound", "linux_4_3", "-k", "2", "-q", "--repro-dir", "/proc/x"]) == 2


def test_the_budget_stops_inside_one_parents_expansion():
    """``bound --budget`` was asked only between parents: with ``vpages=256`` the first
    parent's expansion ran past 100 s under a 2 s budget (``vpages=1024``: minutes and 620
    MB; a review, 2026-12-05). It is asked before each child of the fast search now: a
    partial result, in about the budget. (Since 2026-12-06 the bounded check refuses a
    machine beyond ``boundcli.BOUND_LIMITS``; the largest it takes, with every operation
    kind, still has a first parent longer than the budget: cut inside it, no transition.)"""
    r = subprocess.run([sys.executable, "-m", "conformance.cli", "bound", "immediate", "-k",
                        "1", "--budget", "2", "--config", "ncpus=8,nmms=4,vpages=16,nframes=64",
                        "--ops", "all", "-q"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 4, (r.returncode, r.stdout, r.stderr)
    assert "verdict   PARTIAL (budget): complete up to K=0, partial at K=1" in r.stdout, r.stdout
    assert "K=1  1 state  0 transitions  depth 0" in r.stdout, r.stdout


PEEK = """from protocols.linux import Linux


class Peek(Linux):
    def set_tlb_ubc_flush_pending(self, task, mm, pteval, vpage):
        # deflect the batch from CPUs that (it thinks) cannot cache the page
        seen = [c.id for c in self.arch.cpus if vpage in c.%s.get(mm.id, {})]
        super().set_tlb_ubc_flush_pending(task, mm, pteval, vpage)
        task.tlb_ubc.arch.cpumask &= sum(1 << c for c in seen) | (1 << task.cpu)
"""


def test_a_hook_cannot_read_a_tlb_so_the_lazy_evictions_lose_nothing(tmp_path):
    """The lazy-eviction reduction holds because nothing but a fill, an access start and the
    oracle reads whether an entry is cached (docs/BOUNDED.md, "Reductions"). A protocol that
    read TLBs through ``self.arch.cpus[i].tlb`` broke that (a review, 2026-12-06: PASS
    reduced, S2 unreduced) and models no kernel: no software reads a TLB. Now the read is a
    protocol error, in the reduced and the unreduced search alike. The CPUs' cpu_tlbstate
    (``loaded_mm``, ``loaded_gen``), which kernels do read, stays readable: the same
    protocol deciding on ``loaded_mm`` instead passes both ways."""
    from conformance.errors import ProtocolError

    cfg = attrs.evolve(BOUND_CONFIG)
    path = tmp_path / "peek.py"
    path.write_text(PEEK % "tlb")
    cls = load_protocol(str(path))
    for kw in ({}, {"undo": False, "reduce": False, "lazy_evict": False}):
        res = bounded(cls, cfg, 2, menu=("reclaim", "write"), **kw)
        assert isinstance(res.failure, ProtocolError), res.headline()
        assert "read CPU0's TLB: no software can read a TLB's contents" in str(res.failure)
        assert res.headline().startswith("PROTOCOL ERROR with a program of 1 operation")
    tlbs = tmp_path / "peek_tlbs.py"
    tlbs.write_text(PEEK.replace("self.arch.cpus if vpage in c.%s.get(mm.id, {})",
                                 "self.arch.tlbs.cpus if c.tlb"))
    res = bounded(load_protocol(str(tlbs)), cfg, 1, menu=("reclaim",))
    assert isinstance(res.failure, ProtocolError) and "self.arch.tlbs" in str(res.failure)
    # one view per CPU for the machine's life: a protocol may keep, compare or hash them
    from conformance.machine import Machine
    arch = Machine(load_protocol("linux"), cfg).proto.arch
    assert arch.cpus[0] is arch.cpus[0] and arch.cpus[1] in {arch.cpus[1]}
    state = tmp_path / "peek_state.py"
    state.write_text(PEEK.replace("vpage in c.%s.get(mm.id, {})", "c.loaded_mm is mm"))
    for kw in ({}, {"undo": False, "reduce": False, "lazy_evict": False}):
        res = bounded(load_protocol(str(state)), cfg, 2, menu=("reclaim", "write"), **kw)
        assert res.passed, res.headline()


DRIVES_A_GENERATOR = """from protocols.linux import Linux


class _Pending:
    def __init__(self, batch):
        self.batch = batch

    def run(self, proto, task, mm):
        yield  # a point between the read and the decision
        pending = self.batch & proto.pending_mask
        if pending != self.batch >> proto.flushed_shift:
            proto.arch.flush_tlb_mm(mm, task)
            mm.proto.tlb_flush_batched = pending | (pending << proto.flushed_shift)


class HelperSelf(Linux):
    def flush_tlb_batched_pending(self, task, mm):
        yield from _Pending(mm.proto.tlb_flush_batched).run(self, task, mm)
"""


def test_a_hook_paused_inside_a_generator_it_drives_is_keyed_without_a_crash(tmp_path):
    """A hook that ``yield from``s a helper's generator, paused at an automatic point (the
    flush) inside it: the helper's generator is *running*, and the state key read its
    ``gi_yieldfrom``, which on CPython 3.11 can return a wild pointer: ``bound`` died of a
    segfault (exit 139, no output; a review, 2026-12-06). Run in a child process, so that
    the old code's crash fails this test and not the test run."""
    path = tmp_path / "drives_a_generator.py"
    path.write_text(DRIVES_A_GENERATOR)
    r = subprocess.run([sys.executable, "-m", "conformance.cli", "bound", str(path), "-k", "2",
                        "--ops", "reclaim,mprotect", "-q", "--repro-dir", str(tmp_path)],
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert "verdict   PASS: no violation in any interleaving of any program of <= 2" in r.stdout


def test_a_menu_kind_no_state_could_start_is_named_beside_the_verdict(capsys):
    """``bound -k 2 --ops mremap`` on the default machine (both pages mapped: no free range
    to move to) searched one state and said PASS with nothing to say mremap never ran (a
    user review, 2026-12-06). The verdict and a ``never`` line name it; with a free page
    (``vpages=3``) mremap starts and nothing is said. In the search's own jobs too."""
    cls = load_protocol("linux")
    for jobs in (1, 2):
        res = bounded(cls, BOUND_CONFIG, 2, menu=("mremap", "reclaim"), jobs=jobs)
        assert res.passed and res.never_started == ("mremap",), jobs
        assert "(mremap: never started, no state searched could start it" in res.headline()
        assert res.to_dict()["never_started"] == ["mremap"]
    # a search stopped early says "so far": the kind may start in a state it did not reach
    cut = bounded(cls, BOUND_CONFIG, 2, menu=("mremap", "reclaim"), max_states=2)
    assert cut.stopped and "no state searched so far could start it" in cut.headline()
    # a munmap frees a range at K=1, so a program of 2 can move into it: started, not named
    assert bounded(cls, BOUND_CONFIG, 2, menu=("munmap", "mremap")).never_started == ()
    roomy = attrs.evolve(BOUND_CONFIG, vpages=3)
    assert bounded(cls, roomy, 1, menu=("mremap",)).never_started == ()
    # a menu none of whose kinds could start checked nothing: no PASS, exit 4 (it said PASS,
    # exit 0, until 2026-12-07 22:55)
    alone = bounded(cls, BOUND_CONFIG, 2, menu=("mremap",))
    assert alone.vacuous and not alone.passed and alone.levels[-1].complete
    assert alone.headline().startswith("NOTHING CHECKED: no state searched could start any "
                                       "operation of the menu (mremap)")
    assert main(["bound", "linux", "-k", "1", "--ops", "mremap", "-q"]) == 4
    out = capsys.readouterr().out
    assert "\n  verdict   NOTHING CHECKED" in out and "PASS" not in out
    assert "\n  never     mremap: no state searched could start it (it needs a free range" in out
    assert main(["bound", "linux", "-k", "1", "--ops", "mremap", "-q", "--config", "vpages=3"]) == 0
    assert "never" not in capsys.readouterr().out


def test_move_pages_nested_starts_where_three_folios_are_on_the_lru():
    """``move_pages_nested`` (docs/model.md section 11 item 24) takes two LRU folios and a
    third for the direct reclaim of the last one's destination allocation: the small
    machine (two pages) never starts it, and says so; ``vpages=4, nframes=6`` does, and
    ``linux`` passes every interleaving of it."""
    from conformance.machine import Machine
    from conformance.search.menu import KINDS
    cls = load_protocol("linux")
    small = bounded(cls, BOUND_CONFIG, 1, menu=("move_pages_nested",))
    assert small.never_started == ("move_pages_nested",)
    roomy = attrs.evolve(BOUND_CONFIG, vpages=4, nframes=6)
    m = Machine(cls, roomy)
    choices = KINDS["move_pages_nested"].args(m, 0)
    assert choices and all(len({f, g, h}) == 3 for f, g, h in choices)
    assert any(f > g for f, g, _ in choices)  # the deferred folio may have the higher frame
    res = bounded(cls, roomy, 1, menu=("move_pages_nested",))
    assert res.passed and res.never_started == ()


def test_a_failing_pair_is_reported_when_the_search_stops_before_its_depth_ends(monkeypatch,
                                                                            tmp_path, capsys):
    """A lazy eviction's failing pair waits for the end of its BFS depth (a single
    transition one shorter may still fail there). A search stopped before that end said
    PARTIAL and dropped the violation it had found. It now reports the counterexample as
    not proven the shortest, at the smallest K; a search that finds no pair before it
    stops still says PARTIAL (so this test can fail both ways)."""
    from conformance.search import bounded as B

    def misses(m, cpu, vp):
        c = m.tlbs.cpus[cpu]
        return m.tlbs.lookup(c, c.loaded_mm.id, vp) is None
    _violation_when(monkeypatch, "fill", misses)
    cls = load_protocol("linux")
    whole = bounded(cls, BOUND_CONFIG, 1, menu=("read",))
    assert whole.failure is not None and whole.shortest and whole.stopped is None
    cut = bounded(cls, BOUND_CONFIG, 1, menu=("read",), max_states=2)
    assert cut.stopped == "max-states" and cut.failure is not None and not cut.shortest
    assert cut.failure.rule == "X" and cut.fail_k == 1 and cut.path[0][0] == "e"
    assert cut.levels[-1].failed and not cut.levels[-1].complete
    assert "not proven the shortest (stopped: max-states" in cut.headline()
    assert cut.to_dict()["shortest"] is False
    from conformance.cli import _bound_block  # certify --bound's block says it too
    _bound_block(cut, str(tmp_path), [])
    block = capsys.readouterr().out
    assert "not proven the shortest" in block and "shortest counterexample" not in block
    assert "            counterexample: hw CPU" in block
    # without the pairs nothing fails before the stop: still PARTIAL, nothing invented
    orig = B.choices
    monkeypatch.setattr(B, "choices",
                        lambda m, s, ctx: [c for c in orig(m, s, ctx) if c[0] not in "rm"])
    none = bounded(cls, BOUND_CONFIG, 1, menu=("read",), max_states=2)
    assert none.failure is None and none.headline().startswith("PARTIAL (max-states)")


def test_certify_bound_interrupted_after_a_failing_pair_is_a_fail(monkeypatch, tmp_path,
                                                                 capsys):
    """Ctrl-C in ``certify --bound`` after the bounded search found a failing pair: FAIL with
    the counterexample (exit 1), as ``bound`` reports it; it read "interrupted: no verdict".
    The stop is made by --max-states inside the real search, then named "interrupted"."""
    import conformance.boundcli as BC
    from conformance.search import bounded as B

    def misses(m, cpu, vp):
        c = m.tlbs.cpus[cpu]
        return m.tlbs.lookup(c, c.loaded_mm.id, vp) is None
    real = B.bounded

    def stopped_by_ctrl_c(cls, cfg, k, **kw):
        kw["max_states"] = 2
        with monkeypatch.context() as mp:  # the bounded check's bug, not the random search's
            _violation_when(mp, "fill", misses)
            res = real(cls, cfg, k, **kw)
        assert res.failure is not None and not res.shortest
        res.stopped = "interrupted"
        return res
    monkeypatch.setattr(B, "bounded", stopped_by_ctrl_c)
    rc = main(["certify", "linux", "--examples", "5", "--chunk", "5", "--jobs", "1",
               "--database", "none", "--bound", "1", "--bound-ops", "read",
               "--repro-dir", str(tmp_path / "r"), "--out", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "FAIL: X with a program of 1 operation: a counterexample of 2 transitions, not " \
           "proven the shortest (stopped: interrupted" in out, out
    assert "interrupted: no verdict" not in out


def test_undoing_a_fill_over_a_stale_entry_restores_both_frames_index():
    """A fill over a stale entry (its PTE now maps another frame) moves the entry in the
    reverse index from the old frame to the new; the undo restored only the old frame's,
    and the phantom left in the new one made S1 fail once the real entry was flushed (a
    review, 2026-12-07: a false S1 of ``bound``)."""
    from conformance.machine import Machine
    from conformance.config import MachineConfig
    from conformance.search.bounded import _hw_undoable, refs_match_tlbs

    m = Machine(load_protocol("linux"), MachineConfig(ncpus=3, nmms=2, vpages=4))
    t, mm0 = m.tlbs, m.mms[0]
    pte = mm0.ptes[0]
    old_frame, new_frame = pte.frame, m.mem.take_free_frame()
    assert t.lookup(t.cpus[0], 0, 0) is not None
    pte.set_present(new_frame, pte.writable, pte.dirty, m.new_pte_inst())  # stale entry
    undo, _ = _hw_undoable(m, ("f", 0, 0))
    m.fill(0, 0)
    assert (0, 0, 0) in t.refs[new_frame] and (0, 0, 0) not in t.refs[old_frame]
    undo()
    assert t.lookup(t.cpus[0], 0, 0).frame == old_frame and refs_match_tlbs(m)
    assert (0, 0, 0) not in t.refs[new_frame]
    for cpu in t.cpus:
        t.drop(cpu, 0, 0)  # the flush that ends the window
    m.oracle.check_s1(new_frame, None)  # no phantom entry: the frame may be handed out


class CountsTasks(load_protocol("linux")):
    """mainline, counting the tasks it saw in an iterator: ``init_task`` advances it at
    every start, and the key reads its position (``__reduce__``)."""
    name = "counts_tasks"

    def __init__(self, *a, **k):
        import itertools
        super().__init__(*a, **k)
        self.seen = itertools.count()

    def init_task(self, task):
        next(self.seen)
        return super().init_task(task)


def test_an_iterator_in_protocol_state_makes_the_search_re_execute_starts():
    """A start's undo cannot set an iterator back: the undone search kept states no run has
    (9,061 at K=2 where re-execution finds 7,278; a review, 2026-12-07). A snapshot that
    meets an iterator is not exact, and that parent's starts are re-executed: the same
    states as the plain search, and check_undo is satisfied."""
    from conformance.machine import Machine
    from conformance.search.snapshot import snapshot

    assert not snapshot(Machine(CountsTasks, BOUND_CONFIG)).exact
    assert snapshot(Machine(load_protocol("linux"), BOUND_CONFIG)).exact
    menu = ("read", "munmap", "reclaim")
    kw = dict(menu=menu, reduce=False, lazy_evict=False)
    plain = bounded(CountsTasks, BOUND_CONFIG, 2, undo=False, **kw)
    fast = bounded(CountsTasks, BOUND_CONFIG, 2, check_undo=True, **kw)
    assert _counts(fast) == _counts(plain) and [lv.states for lv in fast.levels] == [437, 7278]


class CountsTasksInAGenerator(load_protocol("linux")):
    """The same count kept in a generator of the protocol's own."""
    name = "counts_tasks_gen"

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.seen = (i for i in range(10**9))

    def init_task(self, task):
        next(self.seen)
        return super().init_task(task)


def test_a_generator_in_protocol_state_is_not_exact_either():
    """A generator the protocol holds (not an operation's code) is an iterator the undo
    cannot set back: not exact, starts re-executed, the plain search's states; linux's
    snapshots stay exact with operations in flight (their generators are theirs)."""
    from conformance.machine import Machine
    from conformance.search.snapshot import snapshot

    assert not snapshot(Machine(CountsTasksInAGenerator, BOUND_CONFIG)).exact
    m = Machine(load_protocol("linux"), BOUND_CONFIG)
    m.munmap(0, 0, 1)
    assert m.ops and snapshot(m).exact
    kw = dict(menu=("read", "munmap", "reclaim"), reduce=False, lazy_evict=False)
    plain = bounded(CountsTasksInAGenerator, BOUND_CONFIG, 2, undo=False, **kw)
    fast = bounded(CountsTasksInAGenerator, BOUND_CONFIG, 2, check_undo=True, **kw)
    assert _counts(fast) == _counts(plain)
