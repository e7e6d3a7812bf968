"""Sound verdicts: S3 on PTE identity and the model fixes that change verdicts.

Each fix has a test that fails without it: a regression litmus file that passes on mainline
(tests/test_litmus.py runs every file) plus a teeth test here that puts the old behaviour
back (by monkeypatching) and shows the false verdict it gave; or, for a model rule, a
direct check of the rule that the old code breaks.
"""
import pytest

import conformance.mm as K
from conformance.config import MachineConfig
from conformance.errors import S3Violation
from conformance.search.explorer import explore
from conformance.litmus import corpus, run, verdict
from conformance.machine import Machine
from conformance.oracle import Oracle
from conformance.mm.mm_types import MIGRATION, PRESENT, SWAP
from conformance.registry import load_protocol
from generic_tlb import LinuxFlushAtVmaEnd
from old_model import old_s3_frame, skip_dirty_flush_if_gathered, undo_in_source

LINUX = load_protocol("linux")
SCENARIOS = {s.name: s for s in corpus()}


def finish(m, op):
    while op in m.ops:
        m.advance(op.id)


# -- S3 on PTE identity --------------------------------------------------------------------



def test_refault_behind_madvise_is_not_blamed_on_it():
    """The certify false positive (issue 'Sound verdicts'): passes on PTE identity..."""
    sc = SCENARIOS["model-s3-madvise-refault"]
    assert verdict(run(sc, LINUX)) == "pass"


def test_refault_behind_madvise_failed_the_frame_rule(monkeypatch):
    """... and the old frame-based condition reports it as S3 on mainline."""
    monkeypatch.setattr(Oracle, "check_s3", old_s3_frame)
    f = run(SCENARIOS["model-s3-madvise-refault"], LINUX)
    assert f is not None and f.rule == "S3" and "madvise(dontneed)" in f.headline()


def test_dontneed_form_of_99baac21e458_is_found_on_the_empty_slot():
    """The second DONTNEED finds pte_none: S3 judges that slot too (explorer, every
    interleaving); mainline's nested flush in tlb_finish_mmu passes."""
    sc = SCENARIOS["bug-2.5-parallel-madvise-dontneed"]
    res = explore(sc, load_protocol("hist_2_5_no_nested_gather_flush"))
    assert res.verdict == "S3" and isinstance(res.failure, S3Violation)
    assert "still caches" in res.failure.headline()
    for name in ("linux", "immediate"):
        res = explore(sc, load_protocol(name))
        assert res.verdict == "pass" and res.complete


def test_old_entry_over_a_refault_onto_the_same_frame_is_stale():
    """An entry of an older PTE instance is caught even when the PTE now maps the same
    frame again (the frame rule was blind to it): DONTNEED zaps mm0:v0, a fault maps the
    freed frame back, and CPU1 still caches the *old* PTE's entry at madvise's return."""
    m = Machine(load_protocol("hist_2_5_no_nested_gather_flush"),
                MachineConfig(ncpus=3, populate=False))
    m.user_access(0, 0, True)
    finish(m, m.ops[0])
    m.user_access(0, 0, True)
    m.switch_mm(1, 0)
    m.fill(1, 0)
    old = m.mms[0].ptes[0]
    old_frame, old_inst = old.frame, old.inst
    # CPU0 zaps with a flush pending; the frame is freed only after that flush, so plant
    # the re-fault by hand: a new instance of the same frame (what a fault would install
    # if the frame came back first, e.g. on a protocol that frees before flushing)
    a = m.madvise(0, 0, 1, "dontneed")
    while "zap mm0:v0" not in m.trace.timeline(3):
        m.advance(a.id)
    old.set_present(old_frame, True, True, m.new_pte_inst())
    assert m.mms[0].ptes[0].frame == old_frame and m.mms[0].ptes[0].inst != old_inst
    e = m.tlbs.lookup(m.tlbs.cpus[1], 0, 0)
    assert e is not None and e.inst == old_inst and e.frame == old_frame
    with pytest.raises(S3Violation):
        m.oracle.check_s3(a, m.mms[0], 0, 1, "madvise(dontneed)")


def test_mremap_destination_is_checked():
    """S3 checks mremap's new range: an entry there older than the move is stale."""
    m = Machine(LINUX, MachineConfig(ncpus=2, populate=False, vpages=8))  # v6, v7 free
    m.user_access(0, 0, True)
    finish(m, m.ops[0])
    m.user_access(0, 0, True)
    # plant an entry at the destination v6 of an instance older than the move
    stale = m.tlbs.insert(m.tlbs.cpus[0], 0, 6, m.mms[0].ptes[0].frame, False, False, 1)
    assert stale.inst <= m.pte_insts
    op = m.mremap(0, 0, 1, 6)
    with pytest.raises(S3Violation, match="mremap"):
        finish(m, op)


# -- the model fixes -------------------------------------------------------------------

def test_reclaim_flushes_dirty_before_keeping_a_gathered_folio():
    sc = SCENARIOS["model-reclaim-dirty-flush-before-keep"]
    assert verdict(run(sc, LINUX)) == "pass"


def test_reclaim_keep_before_dirty_flush_was_a_false_s2(monkeypatch):
    """The old order (is_page_cache_freeable() decided before try_to_unmap_flush_dirty()):
    a gathered dirty folio is kept, unlocked, with its deferred writable entry unflushed,
    and writeback copies it out under that entry."""
    monkeypatch.setattr(LINUX, "try_to_unmap_flush_dirty",
                        skip_dirty_flush_if_gathered(LINUX.try_to_unmap_flush_dirty))
    f = run(SCENARIOS["model-reclaim-dirty-flush-before-keep"], LINUX)
    assert f is not None and f.rule == "S2", f and f.headline()


def _count_tlb_records(monkeypatch, proto):
    calls = []
    orig = proto.tlb_remove_tlb_entry

    def rec(self, tlb, vpage):
        calls.append(vpage)
        return orig(self, tlb, vpage)
    monkeypatch.setattr(proto, "tlb_remove_tlb_entry", rec)
    return calls


def test_madv_pageout_ignores_references(monkeypatch):
    """2864f3d0f583: MADV_PAGEOUT neither clears the accessed bit nor records a flush;
    MADV_COLD does both. (The folio is locked elsewhere, so pageout's reclaim skips it and
    the PTE stays for us to look at.)"""
    cls = load_protocol("linux")
    calls = _count_tlb_records(monkeypatch, cls)
    for advice, want_calls, want_young in (("pageout", [], True), ("cold", [1], False)):
        calls.clear()
        m = Machine(cls)  # populated: mm0:v1 anonymous, mapped once, accessed
        pte = m.mms[0].ptes[1]
        _locked_by_other(m, pte.frame)
        assert pte.kind == PRESENT and pte.accessed
        finish(m, m.madvise(0, 1, 1, advice))
        assert pte.kind == PRESENT and calls == want_calls and pte.accessed is want_young


def test_force_flush_frees_the_batch_after_the_ptl():
    """zap_pte_range with force_flush calls tlb_flush_mmu after dropping the PTL: an anonymous
    page gathered earlier in the same munmap is freed there, not at tlb_finish_mmu."""
    cfg = MachineConfig(ncpus=2, populate=False, vpages=6)
    m = Machine(LINUX, cfg)  # mm0: [0,3) anon RW, [3,5) file0 RO
    finish(m, m.mmap(0, 3, 1, 0, True, True))  # MAP_FIXED file0:0 shared RW at v3
    for vp in (0, 3):
        m.user_access(0, vp, True)
        if m.ops:
            finish(m, m.ops[0])
            m.user_access(0, vp, True)
    anon = m.mms[0].ptes[0].frame
    op = m.munmap(0, 0, 4)
    freed_before_finish = None
    while op in m.ops:
        m.advance(op.id)
        text = m.trace.timeline(2)
        if "zap mm0:v3" in text and freed_before_finish is None and op in m.ops:
            m.advance(op.id)  # the rest of zap_pte_range: flush under the PTL, unlock, free
            freed_before_finish = m.mem.owner[anon] is None and "tlb_finish" not in text
    assert freed_before_finish


def _locked_by_other(m, frame):
    m.mem.folio_lock[frame].owner = "someone"


def test_madv_free_locks_only_swapcache_or_dirty_folios():
    """madvise_free_pte_range takes the folio lock only for a swap-cache or PG_dirty folio:
    a clean folio whose lock is held elsewhere is still made lazyfree; a dirty one is not."""
    m = Machine(LINUX)  # populated: mm0:v0,v1 anonymous, folios clean (PG_dirty clear)
    f0 = m.mms[0].ptes[0].frame
    f1 = m.mms[0].ptes[1].frame
    _locked_by_other(m, f0)
    _locked_by_other(m, f1)
    m.mem.dirty[f1] = True
    finish(m, m.madvise(0, 0, 2, "free"))
    assert m.mem.lazyfree[f0] and not m.mem.lazyfree[f1]


def test_madv_free_frees_the_swap_cache_of_a_swapcache_folio():
    """folio_free_swap: a swap-cache folio no swap entry uses leaves the swap cache and
    becomes lazyfree; one whose slot a swap entry still uses is skipped."""
    for users, lazy in ((0, True), (1, False)):
        m = Machine(LINUX)
        f0 = m.mms[0].ptes[0].frame
        slot = m.mem.alloc_slot()
        m.mem.swap_cache[slot] = f0
        m.mem.swap_map[slot] = users
        finish(m, m.madvise(0, 0, 1, "free"))
        assert m.mem.lazyfree[f0] is lazy
        assert (slot in m.mem.swap_cache) is (not lazy)


def test_madv_free_of_a_file_vma_is_einval():
    m = Machine(LINUX)
    op = m.madvise(0, 2, 1, "free")  # mm0:v2 is file0
    finish(m, op)
    assert op.result == "error"


def test_swap_in_racing_a_zap_leaves_no_swap_cache_folio():
    """DONTNEED drops a swap entry while its swap-in read is in flight: the fault's pte_same
    check fails, and the folio (now in the swap cache only) is freed with its slot, not
    leaked."""
    m = Machine(LINUX, MachineConfig(ncpus=2, populate=False))
    m.user_access(0, 0, True)
    finish(m, m.ops[0])
    m.user_access(0, 0, True)
    finish(m, m.reclaim(1, (m.mms[0].ptes[0].frame,)))
    assert m.mms[0].ptes[0].kind == SWAP
    assert m.user_access(0, 0, False) == "fault"
    fault = m.ops[0]
    while "swap_read_folio" not in m.trace.timeline(2):
        m.advance(fault.id)
    m.switch_mm(1, 0)
    finish(m, m.madvise(1, 0, 1, "dontneed"))
    finish(m, fault)
    assert m.mem.swap_cache == {}
    assert sorted(m.mem.swap_free) == list(range(m.cfg.swap_slots))
    owned = [f for f, o in enumerate(m.mem.owner) if o is not None]
    assert owned == [m.mms[0].ptes[0].frame]  # only the zero page the retry mapped


@pytest.mark.parametrize("child_first", [False, True])
def test_the_last_swap_reference_takes_the_folio_out_of_the_swap_cache(child_first):
    """free_swap_and_cache_nr -> __try_to_reclaim_swap (docs/model.md section 11, item 15).

    A fork-shared folio that reclaim kept in the swap cache (the parent's munmap gather held
    a reference) while the child's PTE became a swap entry: when the child's munmap drops
    that last swap reference, the unmapped folio leaves the swap cache and its slot is free;
    the folio itself is freed by the last put, after the parent gather's flush if that comes
    last. Before, the folio and its slot leaked for the rest of the run.

        CPU0 (parent)            CPU1                     CPU2 (child)
        munmap(v0): zap, gather
                                 reclaim: unmap child,
                                 extra ref: keep (swap cache)
                                                          munmap(v0): swap entry
        flush, free gathered                              (child_first: here)
    """
    m = Machine(LINUX, MachineConfig(ncpus=3))
    f0 = m.mms[0].ptes[0].frame
    finish(m, m.fork(0, 1))
    unmap = m.munmap(0, 0, 1)
    while not m.mem.gathered[f0]:
        m.advance(unmap.id)
    finish(m, m.reclaim(1, (f0,)))
    assert m.mms[1].ptes[0].kind == SWAP and list(m.mem.swap_cache.values()) == [f0]
    m.switch_mm(2, 1)
    if not child_first:
        finish(m, unmap)
        assert m.mem.owner[f0] is not None  # still in the swap cache: not freed yet
    finish(m, m.munmap(2, 0, 1))
    assert m.mem.swap_cache == {}
    if child_first:
        assert m.mem.owner[f0] is not None  # the parent's gather still holds it
        finish(m, unmap)
    assert m.mem.owner[f0] is None
    assert sorted(m.mem.swap_free) == list(range(m.cfg.swap_slots))
    timeline = m.trace.timeline(3)
    assert timeline.index("flush_tlb_page(mm0, v0)") < timeline.index("pfn0 freed")


# -- mprotect vs a migration in flight ---------------------------------------------------

def test_mprotect_makes_a_migration_entry_readable():
    sc = SCENARIOS["model-mprotect-vs-migration"]
    assert verdict(run(sc, LINUX)) == "pass"


def test_migration_entry_left_writable_restores_a_writable_pte(monkeypatch):
    """Without make_readable_migration_entry in change_pte_range, remove_migration_ptes
    restores a writable PTE in a read-only VMA behind mprotect: the store succeeds (O1)."""
    orig = K.Kernel.change_pte_range

    def leaky(self, op, tlb, mm, vma, start, end, writable):
        saved = {vp: mm.ptes[vp].writable for vp in range(start, end)
                 if mm.ptes[vp].kind == MIGRATION}
        yield from orig(self, op, tlb, mm, vma, start, end, writable)
        for vp, w in saved.items():
            if mm.ptes[vp].kind == MIGRATION:
                mm.ptes[vp].writable = w
    monkeypatch.setattr(K.Kernel, "change_pte_range", leaky)
    f = run(SCENARIOS["model-mprotect-vs-migration"], LINUX)
    assert f is not None and f.rule in ("O1", "C1"), f and f.headline()


# -- swap-in of a slot a fork sibling still refers to (2026-12-03) -------------------------
#: certify linux --seed 27182818 on eee8f525 (shrunk): reclaim keeps mm0's dirty anonymous
#: folio pfn0 without pageout (an mmu_gather of a fork holds it) after putting it in the swap
#: cache and mm0's PTE to a swap entry; a second fork copies that swap entry to mm1; mm0
#: swaps in from the swap cache, which freed the swap-cache entry; mm1's swap-in then read
#: the slot as it was on disk (never written) and C1 fired on mainline.
#: Re-derived 2026-12-06, when free_pgtables began to free page tables: the first fork's
#: teardown of mm1 frees its tables and its tlb_finish_mmu flushes them (one step more, a
#: fifth advance of op 2); the second teardown's zap skips mm1's table [2,4), freed by the
#: first and not re-created (the fork copies only the anonymous VMA's table [0,2)), so that
#: fork reaches tlb_finish_mmu sooner: two advances of op 3 before reclaim keeps pfn0, not
#: three. It waits there, paused after the flush of the freed tables, its gather still
#: holding pfn0 (the same "extra reference (mmu_gather), keep" as before).
FORK_SWAP_ACTIONS = [
    ("user_access", (2, 0, True)), ("mmap", (2, 1, 2, 1, False, True)), ("advance", (0,)),
    ("reclaim", (1, (0,), (4,))), ("advance", (1,)), ("advance", (0,)), ("advance", (0,)),
    ("fork", (2, 1)), ("advance", (2,)), ("advance", (2,)), ("advance", (2,)),
    ("advance", (2,)), ("advance", (2,)), ("fork", (2, 1)), ("advance", (1,)),
    ("advance", (3,)), ("advance", (3,)), ("advance", (1,)), ("advance", (1,)),
    ("advance", (1,)), ("advance", (1,)), ("advance", (3,)), ("advance", (3,)),
    ("user_access", (2, 0, True)), ("advance", (1,)), ("user_access", (1, 0, False)),
    ("advance", (5,)), ("fill", (1, 0))]


def test_swap_in_leaves_the_data_for_a_fork_sibling_swap_entry():
    """Both mms see the data the folio held (1,000,000), not the stale slot: mm0's swap-in
    is not exclusive (mm1's swap entry uses the slot), so it maps the folio read-only and
    its write fault copies it; the folio stays in the swap cache, where mm1's swap-in
    finds that very folio (``folio_free_swap`` fails while ``folio_swapped``). mm1's fault
    then ends without a read, so the run has one advance less than the failing one. Fails
    without the fix in ``do_swap_page`` (checked: mm1 reads the stale slot, 0)."""
    from conformance.config import DEFAULT
    from conformance.reproducer import replay_actions
    m = Machine(LINUX, DEFAULT)
    actions = [a for a in FORK_SWAP_ACTIONS if a != ("advance", (5,))]
    assert len(actions) == len(FORK_SWAP_ACTIONS) - 1
    assert replay_actions(LINUX, DEFAULT, False, actions, machine=m) is None
    frames, values = [], []
    for mm in m.mms:
        pte = mm.ptes[0]
        assert pte.kind == PRESENT
        frames.append(pte.frame)
        values.append(m.mem.value[pte.frame])
    assert values == [1_000_000, 1_000_000]
    assert frames[1] == 0 and frames[0] != 0  # mm1 maps the kept folio, mm0 its copy
    assert not m.mms[1].ptes[0].writable and m.mem.cow[0]
    text = "\n".join(t for _, _, t in m.trace.lines())
    assert "do_swap_page(mm0:v0): not exclusive, read-only" in text
    assert "wp_page_copy(mm0:v0): pfn0 -> " in text


def _without_the_swap_slot_fix(monkeypatch):
    """``do_swap_page`` as it was before the fix: the folio leaves the swap cache at the
    swap-in although a fork sibling's swap entry still uses the slot, whose data on swap
    is stale (its source with that one condition replaced)."""
    from conformance.mm.memory.swapin import SwapinPaths

    undo_in_source(monkeypatch, SwapinPaths, "do_swap_page",
                   "if not mem.swap_map[slot] and (exclusive", "if True or (exclusive")


def test_the_explorer_sees_a_violation_only_a_fill_after_the_end_shows(monkeypatch):
    """The fork/swap failure shows itself only through a fill after every operation has
    returned (mm1's swap-in mapped the stale slot; the fill's entry reads 0 where 1,000,000
    belongs). The explorer once offered hardware events only while a thread was left, so its
    scenario (the one a shrink writes) passed every interleaving on the model without the
    fix, and the shrink could call a run "proven shortest" that its scenario did not
    contain. Now the end of every thread is checked for a fresh fill that would fail C1
    (``explorer._failing_fill``): without the fix the explorer finds the failure, at the
    run's own length; the same run is then proven shortest; with the fix nothing fails."""
    from conformance.config import DEFAULT
    from conformance.litmus import parse
    from conformance.reproducer import replay_actions
    from conformance.search.shortest import litmus_text, shortest

    _without_the_swap_slot_fix(monkeypatch)
    f = replay_actions(LINUX, DEFAULT, False, FORK_SWAP_ACTIONS)
    assert f is not None and f.rule == "C1" and FORK_SWAP_ACTIONS[-1][0] == "fill"
    text = litmus_text(f, "linux")
    assert "hw CPU1 fill v0" in text  # the failing fill is in the scenario
    res = explore(parse(text), LINUX)
    assert res.failure is not None and res.failure.rule == "C1"
    assert len(res.path) == len(FORK_SWAP_ACTIONS) and res.path[-1] == ("h", 0)
    assert shortest(f)[2]  # no interleaving of fewer choices fails: proven
    monkeypatch.undo()
    fixed = explore(parse(text), LINUX)
    assert fixed.failure is None and fixed.complete


# -- an rmap walk's zap through a VMA that no longer maps the page --------------------------
#: the soundness campaign's false C1 of 2026-12-03 (`soundness --config-set wide --swarm
#: --seed 20261404`, config cpus4), shrunk: truncate(file0:1) on CPU1 pauses in its i_mmap
#: walk before zapping mm1:v1 (the old tenant's file page); fork(mm0 -> mm1) on CPU0 tears
#: the slot down and copies mm0's anonymous v1 there; truncate resumed and zapped the child's
#: page through the old file VMA; the child's next write faulted in a zero page (C1)
FORK_UNDER_TRUNCATE = [
    ("user_access", (2, 1, True)), ("truncate", (1, 0, 1)), ("migrate", (2, (3,))),
    ("advance", (0,)), ("advance", (1,)), ("fork", (0, 1)),
] + [("advance", (2,))] * 7 + [
    ("advance", (0,)), ("advance", (0,)), ("switch_mm", (0, 1)), ("user_access", (0, 1, True)),
    ("advance", (3,)), ("fill", (0, 1)), ("advance", (1,)), ("advance", (1,)), ("advance", (1,)),
    ("advance", (0,)), ("advance", (1,)),
]
CPUS4 = MachineConfig(ncpus=4)
# FORK_UNDER_TRUNCATE runs on LinuxFlushAtVmaEnd (tests/generic_tlb.py): its truncate pauses
# at the flush of its first VMA's end, which x86 (MMU_GATHER_MERGE_VMAS, the model's default
# since 2026-12-07 15:00) does not make; on x86 the pause is in tlb_finish_mmu and the run
# above no longer reaches the child's page


def _replay_until_blocked(m, actions):
    """Run ``actions`` on ``m`` until one advances an operation that is blocked; then let
    everything finish and check every entry (C1)."""
    from conformance.errors import UsageError
    for name, args in actions:
        try:
            getattr(m, name)(*args)
        except UsageError:
            break
    m.drain()
    m.check_quiescent()


def test_truncate_does_not_zap_a_fork_childs_page_through_the_old_file_vma():
    m = Machine(LinuxFlushAtVmaEnd, CPUS4)
    _replay_until_blocked(m, FORK_UNDER_TRUNCATE)  # no C1: the child's write survives
    assert ("f", 0, 1) not in [v.location(1) for v in m.mms[1].vmas if v.start <= 1 < v.end]


_FREE_PGTABLES = K.Kernel.free_pgtables


def _free_pgtables_without_waiting(self, op, mm, vmas, tlb=None):
    """``free_pgtables`` as the model had it until 2026-12-05: the VMAs leave the rmap
    without taking its locks, so an rmap walk in flight is not waited for. Everything else
    is today's: the real ``free_pgtables`` runs with ``rmap_lock`` answering None (no
    lock to take), so it still frees the tables no VMA shares and records them in ``tlb``
    (since 2026-12-06). Without a lock it never waits, so it runs in one step: the
    override is gone before any other operation runs (checked: it must not yield)."""
    self.rmap_lock = lambda loc: None  # shadows LockingPaths.rmap_lock on this kernel
    try:
        for _ in _FREE_PGTABLES(self, op, mm, vmas, tlb):
            raise AssertionError("free_pgtables without rmap locks yielded")
    finally:
        del self.rmap_lock
    return
    yield


def test_munmap_waits_for_a_hole_punch_walking_its_vma(monkeypatch):
    """free_pgtables takes i_mmap_rwsem for write (2026-12-05, a review's finding): munmap
    cannot return between a hole punch's clear of its PTE and the hole punch's flush. A
    munmap without the nested check of tlb_finish_mmu (``mut_munmap_exclusive``; correct
    for this race in the kernel, which waits) passes every interleaving; with the old,
    non-waiting free_pgtables it failed S3. ``linux`` passes both ways (its nested check)."""
    sc = SCENARIOS["gap-munmap-waits-for-rmap-walk"]
    exclusive = load_protocol("mut_munmap_exclusive")
    assert explore(sc, exclusive).verdict == "pass"
    assert explore(sc, LINUX).verdict == "pass"
    monkeypatch.setattr(K.Kernel, "free_pgtables", _free_pgtables_without_waiting)
    res = explore(sc, exclusive)
    assert res.verdict == "S3" and "munmap returned" in str(res.failure)
    assert explore(sc, LINUX).verdict == "pass"


def test_without_the_recheck_truncate_zapped_the_childs_page(monkeypatch):
    """The C1 needs both holes: no re-check under the PTL, and a teardown of the child's
    slot that does not wait for the truncate's walk (free_pgtables waits since 2026-12-05;
    the re-check still covers the slot aliasing the walk could meet otherwise)."""
    from conformance.errors import C1Violation
    zap = K.Kernel.zap_pte_range

    def no_recheck(self, op, tlb, mm, vma, start, end, madv=False, rmap_loc=None):
        return zap(self, op, tlb, mm, vma, start, end, madv)
    monkeypatch.setattr(K.Kernel, "zap_pte_range", no_recheck)
    _replay_until_blocked(Machine(LinuxFlushAtVmaEnd, CPUS4),
                          FORK_UNDER_TRUNCATE)  # the wait alone: no C1
    monkeypatch.setattr(K.Kernel, "free_pgtables", _free_pgtables_without_waiting)
    with pytest.raises(C1Violation, match="mm1:v1"):
        _replay_until_blocked(Machine(LinuxFlushAtVmaEnd, CPUS4), FORK_UNDER_TRUNCATE)



def _owner_by_find_vma(self, mm, vpage, default):
    """``_mapping_location`` as the model had it until 2026-12-05: ``find_vma``, which no
    longer sees a VMA a munmap in flight has detached."""
    vma = mm.find_vma(vpage)
    if vma is None or not vma.is_anon:
        return default
    return vma.location(vpage)


def test_reclaim_takes_a_folio_only_a_detached_vma_maps(monkeypatch):
    """docs/model.md section 11, item 12: a fork-shared anon folio whose child mapping is
    gone while the parent's munmap is between its two page tables keeps a location (its
    anon_vma still links the detached VMA), so reclaim unmaps it through that VMA and 4.3's
    munmap returns over the deferred flush (S3); mainline and ``immediate`` pass. With the
    old lookup the folio was marked zapped and reclaim skipped it: every protocol passed."""
    sc = SCENARIOS["gap-reclaim-folio-of-detached-vma"]
    cow = SCENARIOS["gap-reclaim-folio-of-detached-vma-after-cow"]  # via wp_page_copy
    # the folio is at v2 since 2026-12-06 (vpages=6: the munmap of v1..v2 must free no
    # table, or its own pte_free_tlb flush would close the race; free_pgtables frees tables)
    for s, page in ((sc, "mm0:v2"), (cow, "mm1:v2")):
        f = run(s, load_protocol("linux_4_3"))
        assert verdict(f) == "S3" and page in str(f)
        for name in ("linux", "immediate"):
            assert verdict(run(s, load_protocol(name))) == "pass"
    monkeypatch.setattr(K.Kernel, "_mapping_location", _owner_by_find_vma)
    for s in (sc, cow):
        assert verdict(run(s, load_protocol("linux_4_3"))) == "pass"
    m = Machine(load_protocol("linux_4_3"), sc.config)  # the same prefix: reclaim skips
    from conformance.litmus import _Runner
    r = _Runner(sc, m)
    for no, words in sc.lines:  # up to the reclaim's first step
        r.line(no, words)
        if words[:2] == ["R", "until"]:
            break
    # its only folio is not on the LRU: shrink_inactive_list's nr_taken == 0 (since
    # 2026-12-07; the per-folio "reclaim: skip" before)
    assert any("nothing isolated" in str(e) for e in m.trace.events)


# -- a finding, not a model bug: mainline's generation word is ABA-prone at 2 bits ------------
#: the soundness campaign's S3 on `linux` under config gen2 (2026-12-03, seed 6205900804597959258
#: of the swarm walk on MachineConfig(batch_gen_bits=2), shrunk). CPU2's madvise reads
#: tlb_flush_batched = (pending 1, flushed 0) and flushes; CPU1's reclaim defers v2 (pending
#: 2) and then v3, whose pending 2 > PENDING_LARGE 1 triggers the overflow reset back to
#: (1, 0); madvise's cmpxchg finds the value it read and marks it flushed (1, 1): the v3
#: deferral, whose entry CPU0 re-cached inside the window, is lost, and munmap(v3) skips the
#: flush (S3). docs/SOUNDNESS.md, "gen2 left the wide set".
GEN_RESET_ABA = [
    ("reclaim", (2, (1,))), ("advance", (0,)), ("advance", (0,)), ("advance", (0,)),
    ("advance", (0,)), ("advance", (0,)), ("madvise", (2, 1, 1, "free")),
    ("reclaim", (1, (2, 3))), ("advance", (2,)), ("advance", (2,)), ("fill", (0, 3)),
] + [("advance", (2,))] * 6 + [("advance", (1,)), ("advance", (1,)), ("munmap", (0, 3, 1)),
                               ("advance", (3,))]


def test_at_two_bits_the_overflow_reset_lets_a_cmpxchg_succeed_on_a_recycled_value():
    from conformance.reproducer import replay_actions
    f = replay_actions(LINUX, MachineConfig(batch_gen_bits=2), False, GEN_RESET_ABA)
    assert f is not None and f.rule == "S3" and "mm0:v3" in str(f)
    # no reset at mainline's 15 bits (or at 3): the cmpxchg fails, the mm stays pending
    for bits in (15, 3):
        assert replay_actions(LINUX, MachineConfig(batch_gen_bits=bits), False, GEN_RESET_ABA) is None


def test_gen2_is_no_longer_in_the_wide_soundness_set():
    from conformance.config import CONFIG_SETS
    assert "gen2" not in dict(CONFIG_SETS["wide"])


# -- mainline's pending increment is one atomic read-modify-write -----------------------------
# flushcheck soundness --config-set wide --swarm --budget 15 --seed 20261703 (2026-12-03
# 21:13): two S3 on linux in 262,600 examples. Both: reclaim's set_tlb_ubc_flush_pending read
# mm->tlb_flush_batched before its automatic point, other CPUs' increments passed it, its
# store put the counter back; a later increment recreated the value a paused
# flush_tlb_batched_pending had read, whose cmpxchg then succeeded over a deferral it had not
# flushed (docs/SOUNDNESS.md). The kernel's atomic_inc cannot move the counter back.
PENDING_MOVED_BACK = {  # config "tight": mmap returns with CPU0 caching the cleared v3
    "cfg": MachineConfig(nframes=8),
    "actions": [
        ("reclaim", (2, (1,))), ("reclaim", (0, (2, 3))), ("advance", (0,)),
        ("reclaim", (1, (0,))), ("advance", (2,)), ("advance", (2,)), ("advance", (2,)),
        ("advance", (2,)), ("advance", (2,)), ("advance", (0,)), ("switch_mm", (1, 0)),
        ("madvise", (1, 1, 1, "pageout")), ("advance", (0,)), ("fill", (0, 3))]
    + [("advance", (1,))] * 6 + [("advance", (3,)), ("advance", (3,)), ("advance", (0,)),
                                 ("advance", (0,)), ("mmap", (2, 3, 1, None, False, True)),
                                 ("advance", (1,)), ("advance", (1,)), ("advance", (4,))],
}
# (the two advances of the reclaim before the mmap's: since 2026-12-05 the MAP_FIXED unmap's
# free_pgtables waits for that reclaim's rmap walk, and they end it)
# config "default": mprotect returns with CPU2 caching v1. Found again on 2026-12-04 22:50 by
# the explorer (reclaim of pfn0, pfn1 on CPU1; migrate of pfn2, pfn3 then mprotect of v1 on
# CPU2; munmap of v2..v3 on CPU0; one hardware fill of CPU2's v1) with the split increment, when
# the model's munmap started keeping its detached VMAs in the rmap until free_pgtables: the old
# schedule had the migration restore mm0:v2 past the munmap, which now waits for its PTL.
# Since 2026-12-06 (free_pgtables frees tables) the munmap is of v2 alone, not v2..v3: the
# unmap of the whole file VMA freed table [2,4), and its pte_free_tlb flush (a full flush of
# CPU2, generations behind after the deferrals) dropped CPU2's v1 as the kernel's would; with
# v3 left in the table that munmap flushes nothing of its own. The migration then restores
# mm0:v3 too: one more advance of it before the mprotect (six, not five).
PENDING_MOVED_BACK_MPROTECT = {
    "cfg": MachineConfig(),
    "actions": [("switch_mm", (1, 0)), ("reclaim", (1, (0, 1))), ("migrate", (2, (2, 3)))]
    + [("advance", (1,))] * 5 + [("munmap", (0, 2, 1))] + [("advance", (0,))] * 4
    + [("advance", (1,))] * 3 + [("fill", (2, 1)), ("advance", (0,)), ("advance", (0,)),
                                 ("advance", (2,)), ("advance", (2,))]
    + [("advance", (1,))] * 6 + [("mprotect", (2, 1, 1, False)), ("advance", (3,))],
}


@pytest.mark.parametrize("case", [PENDING_MOVED_BACK, PENDING_MOVED_BACK_MPROTECT],
                         ids=["mmap-tight", "mprotect-default"])
def test_the_pending_increment_cannot_move_the_counter_back(case):
    from conformance.reproducer import replay_actions
    assert replay_actions(LINUX, case["cfg"], False, case["actions"]) is None


@pytest.mark.parametrize("case", [PENDING_MOVED_BACK, PENDING_MOVED_BACK_MPROTECT],
                         ids=["mmap-tight", "mprotect-default"])
def test_a_split_increment_gave_mainline_a_false_s3(case, monkeypatch):
    import contextlib

    import protocols.linux
    from conformance.reproducer import replay_actions
    # the increment without its atomic section: the word read before the point at its store,
    # as before the fix
    monkeypatch.setattr(protocols.linux, "atomic_section", contextlib.nullcontext)
    f = replay_actions(LINUX, case["cfg"], False, case["actions"])
    assert f is not None and f.rule == "S3" and "still caches" in str(f)


def test_an_atomic_section_pauses_at_its_entry_after_an_effect():
    """The point of a hook whose effect is followed by an atomic section is at the block's
    entry, before the reads inside: the pause event is traced, and the read-modify-write
    that follows runs in the next step."""
    m = Machine(LINUX, MachineConfig(nframes=8))
    m.reclaim(2, (1,))  # clears mm0:v1, pauses in set_tlb_ubc_flush_pending
    assert [e[3] for e in m.trace.events if e[2] == "point"] == [
        ("set_tlb_ubc_flush_pending", "arch_tlbbatch_add_pending")]
    assert m.mms[0].proto.tlb_flush_batched == 0  # not read yet
    m.advance(0)
    assert m.mms[0].proto.tlb_flush_batched == 1


# -- a store in a fork's window reaches the child through a copied non-present entry -------------
# flushcheck certify linux --seed 20261802 (2026-12-04 00:15): C1 on linux. A fork copied the
# migration entry of mm0:v0 while the migration's flush was still deferred; CPU2's store through
# its stale writable entry landed in the old folio, the migration copied it to the page both mms
# then map, and the oracle still expected the child's v0 to hold the value from before the
# store: it counted a fork-window store for the child only over a copied present PTE
# (docs/SOUNDNESS.md, litmus/model-fork-copies-*.litmus).
# Re-derived 2026-12-06, when free_pgtables began to free page tables: the munmap of mm1:v0
# and the fork's teardown of mm1 each free a table (one PTE per table here) and flush it in
# tlb_finish_mmu, one step more each (an advance of op 0, and of op 1 before the store, so
# that the store still comes after the copy of the migration entry and before dup_mmap's
# flush). Those flushes are of mm1; CPU2's stale writable entry is mm0's.
FORK_COPIES_MIGRATION = {
    "cfg": MachineConfig(ncpus=4, vpages=2, ptes_per_table=1),
    "actions": [
        ("munmap", (3, 0, 1)), ("advance", (0,)), ("advance", (0,)), ("fork", (0, 1)),
        ("migrate", (3, (0,))), ("advance", (2,)), ("advance", (2,)), ("advance", (1,)),
        ("advance", (1,)), ("user_access", (2, 0, True)), ("advance", (1,)),
        ("advance", (2,)), ("advance", (2,)), ("advance", (2,)), ("fill", (3, 0)),
        ("advance", (2,)), ("advance", (2,))],
}
FORK_COPIES_FILES = ("model-fork-copies-migration-entry", "model-fork-copies-swap-entry")


def _fork_copies_of_present_ptes_only(monkeypatch):
    """``copy_pte_range`` as it was before the fix: a fork-window entry only for a copied
    present PTE (its source with the migration and swap entries' lines taken out)."""
    import inspect
    import textwrap

    import conformance.mm.memory.copy as C

    src = textwrap.dedent(inspect.getsource(C.CopyPaths.copy_pte_range))
    lines = src.splitlines(keepends=True)
    record = "mem.fork_copies.setdefault("
    at = [i for i, line in enumerate(lines) if record in line]
    assert len(at) == 3  # swap, migration, present: keep the last
    for i in at[:2]:
        lines[i] = lines[i][:len(lines[i]) - len(lines[i].lstrip())] + "pass\n"
    ns: dict = {}
    exec(compile("".join(lines), C.__file__, "exec"), C.__dict__, ns)  # noqa: S102
    monkeypatch.setattr(C.CopyPaths, "copy_pte_range", ns["copy_pte_range"])


def test_a_store_in_the_fork_window_reaches_the_child_through_a_migration_entry():
    from conformance.reproducer import replay_actions
    assert replay_actions(LINUX, FORK_COPIES_MIGRATION["cfg"], False,
                          FORK_COPIES_MIGRATION["actions"]) is None
    for name in FORK_COPIES_FILES:
        assert verdict(run(SCENARIOS[name], LINUX)) == "pass"


def test_present_ptes_only_gave_mainline_a_false_c1(monkeypatch):
    from conformance.reproducer import replay_actions
    _fork_copies_of_present_ptes_only(monkeypatch)
    f = replay_actions(LINUX, FORK_COPIES_MIGRATION["cfg"], False,
                       FORK_COPIES_MIGRATION["actions"])
    assert f is not None and f.rule == "C1" and "anon2:v0 is 0" in str(f)
    for name in FORK_COPIES_FILES:
        f = run(SCENARIOS[name], LINUX)
        assert f is not None and f.rule == "C1", name


def test_a_fork_window_store_counts_only_for_its_own_location(monkeypatch):
    """The old folio of a migration that ended inside the fork's window is taken and written
    by another mm: with the location check the child passes (tests/test_litmus.py); without
    it the child is expected to hold that mm's value."""
    def any_store_to_the_frame(self, frame, value, loc):
        for _fork, cloc, _ploc in self.mem.fork_copies.get(frame, ()):
            self.oracle.expected[cloc] = value
            self.oracle.check_mappings_of(cloc)
    sc = SCENARIOS["model-fork-window-frame-reused"]
    assert verdict(run(sc, LINUX)) == "pass"
    monkeypatch.setattr(Machine, "_fork_window_store", any_store_to_the_frame)
    f = run(sc, LINUX)
    assert f is not None and f.rule == "C1" and "is 1000000" in str(f)


# -- a redirtied lazyfree folio stays isolated until reclaim's flush ------------------------------
# flushcheck certify linux --seed 20261803 (2026-12-04 00:32): S1 on linux. Reclaim of a
# MADV_FREE'd folio that a fork shared discarded mm0's clean mapping (its flush deferred), found
# mm1's mapping dirty, restored it and put the folio back on the LRU at once; mm1's COW fault
# then dropped the last reference and the allocator handed the frame out while CPU0 still
# cached mm0:v0. The kernel keeps such a folio isolated (activate_locked -> ret_folios) until
# move_folios_to_lru, after the final try_to_unmap_flush (docs/SOUNDNESS.md).
# Re-derived 2026-12-06, when free_pgtables began to free page tables: the fork's teardown of
# mm1 frees both of its tables and its tlb_finish_mmu flushes them (a flush of mm1, one step
# more: a sixth advance of the fork). And again at 2026-12-06 20:50, when the madvise split
# window stopped opening for a folio mapped twice (the fork shares pfn1): one advance of the
# madvise fewer. And at 2026-12-07 15:00, when tlb_end_vma stopped flushing
# (MMU_GATHER_MERGE_VMAS, docs/model.md section 11 item 34): the madvise's one flush is in
# tlb_finish_mmu, one interleaving point more, so one advance of it more after the fill.
REDIRTIED_LAZYFREE = [
    ("exit_mmap", (0,)), ("advance", (0,)), ("advance", (0,)), ("advance", (0,)),
    ("advance", (0,)), ("advance", (0,)), ("user_access", (0, 0, False)), ("advance", (1,)),
    ("fork", (0, 1)), ("advance", (2,)), ("advance", (2,)), ("advance", (2,)), ("advance", (2,)),
    ("advance", (2,)), ("advance", (2,)), ("madvise", (0, 0, 1, "free")), ("advance", (3,)),
    ("fill", (0, 0)), ("advance", (3,)), ("truncate", (0, 1, 1)), ("user_access", (3, 0, True)),
    ("reclaim", (0, (1,))), ("advance", (6,)), ("advance", (6,)), ("advance", (6,)),
    ("advance", (5,)), ("write", (3, 1, 1))]


def test_a_redirtied_lazyfree_folio_stays_isolated_until_the_flush():
    from conformance.reproducer import replay_actions
    assert replay_actions(LINUX, MachineConfig(ncpus=4), False, REDIRTIED_LAZYFREE) is None


def test_putting_it_back_at_once_gave_mainline_a_false_s1(monkeypatch):
    from conformance.reproducer import replay_actions
    # a kept folio's isolation ended at once (folio_putback_lru), as the redirtied-lazyfree
    # path did before the fix
    def put_back_at_once(self, op, frame, kept):
        self.mem.isolated[frame] = None
        self.unlock(op, self.mem.folio_lock[frame])

    monkeypatch.setattr(K.Kernel, "_keep", put_back_at_once)
    f = replay_actions(LINUX, MachineConfig(ncpus=4), False, REDIRTIED_LAZYFREE)
    assert f is not None and f.rule == "S1" and "still caches mm0:v0" in str(f)


def test_closing_the_pool_with_tasks_queued_prints_nothing(capfd, caplog):
    """Ctrl-C or an error while many shrink tasks are queued: ``_Pool.close`` cancels them,
    and their done-callbacks put nothing (``Future.exception()`` of a cancelled future raises,
    and concurrent.futures printed a traceback per task: thousands on one Ctrl-C)."""
    from conformance.soundness import _Pool

    pool = _Pool(2)
    try:
        for i in range(3000):
            pool.submit(abs, -i, i)
        pool.get()
    finally:
        pool.close()
    assert "exception calling callback" not in capfd.readouterr().err + caplog.text


def test_a_relative_protocol_file_is_the_one_in_the_current_folder(tmp_path, monkeypatch):
    """``loaded_protocol`` (once per process) keys a file by its absolute path, as
    ``load_protocol`` resolves it: the same relative name in another folder is another
    protocol."""
    from conformance.registry import loaded_protocol

    for folder, base in (("a", "linux"), ("b", "linux_4_3")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "proto.py").write_text(
            f"from protocols.{base} import *  # noqa\nfrom protocols.{base} import "
            f"{'Linux' if base == 'linux' else 'Linux43'} as P\n\n\nclass Proto(P):\n    pass\n")
    monkeypatch.chdir(tmp_path / "a")
    a = loaded_protocol("proto.py")
    monkeypatch.chdir(tmp_path / "b")
    b = loaded_protocol("proto.py")
    assert a is not b and a.ref != b.ref and b.ref.endswith("b/proto.py")


# -- a walker skips a range with no page table (pmd_none) ---------------------------------
#: the fidelity review of 2026-12-06: reclaim defers v0's flush; mprotect of v0 must flush
#: the pending batch (flush_tlb_batched_pending) before it write-protects, or CPU0 writes
#: through its stale writable entry after mprotect returned (S3). The munmap of v2..v3, whose
#: page table nothing ever allocated, took its PTL and called flush_tlb_batched_pending in
#: the model, and that flush hid the mutant's missing one; the kernel's zap_pmd_range skips
#: a pmd_none range without either
NO_TABLE = """name no-table-no-flush
config populate=false ncpus=2
{before}
CPU0   touch w v0
CPU1   reclaim R pfn(mm0,v0)
R      until ptep_get_and_clear
{between}
CPU0   mprotect P v0 1 ro
P      finish
CPU0   write v0
R      finish
"""


class NoPendingFlushInMprotect(LINUX):
    """A mutant: mprotect's change_pte_range skips flush_tlb_batched_pending."""
    name = "no_pending_flush_in_mprotect"

    def flush_tlb_batched_pending(self, task, mm):
        if task.path == "mprotect":
            return
        yield from super().flush_tlb_batched_pending(task, mm)


@pytest.mark.parametrize("between", ["", "CPU0   munmap M v2 2\nM      finish",
                                     "CPU0   madvise A v2 2 dontneed\nA      finish"])
def test_a_walk_of_a_range_with_no_page_table_flushes_nothing(between):
    """The mutant fails S3 with or without a munmap or MADV_DONTNEED of a range
    no page table was ever allocated for in between (each passed it before: their walk's
    flush_tlb_batched_pending flushed the batch the mutant's mprotect skips); mainline
    passes every form."""
    from conformance.litmus import parse

    sc = parse(NO_TABLE.format(before="", between=between))
    assert verdict(run(sc, NoPendingFlushInMprotect)) == "S3"
    assert verdict(run(sc, LINUX)) == "pass"


#: the same mutant after munmap freed v2..v3's page table (free_pgtables: no VMA shares it)
#: and a new mapping took the range without faulting: the MADV_DONTNEED of the new VMA walks
#: no table in the kernel, and walked (and flushed the pending batch) in the model until
#: free_pgtables freed tables (2026-12-06)
FREED_TABLE = NO_TABLE.format(before="""CPU0   touch r v2
CPU0   munmap U v2 2
U      finish
CPU0   mmap N v2 2 anon rw fixed
N      finish""", between="CPU0   madvise A v2 2 dontneed\nA      finish")


def test_a_walk_of_a_freed_page_table_flushes_nothing():
    """The mutant fails S3 where the table the MADV_DONTNEED walks was freed by an earlier
    munmap (it passed before free_pgtables freed tables); mainline passes."""
    from conformance.litmus import parse

    sc = parse(FREED_TABLE)
    assert verdict(run(sc, NoPendingFlushInMprotect)) == "S3"
    assert verdict(run(sc, LINUX)) == "pass"


def test_free_pgtables_frees_the_tables_no_vma_shares():
    """``free_pgtables`` frees a table of an unmapped range only where no VMA left shares
    it (``free_pgd_range``'s floor and ceiling); the freed table is in the gather
    (``freed_tables``, the table's first page in its range), so ``tlb_finish_mmu`` flushes
    it on the mm's CPUs though no PTE was cleared; exit frees every table; a fault
    allocates one again."""
    cfg = MachineConfig(ncpus=2, vpages=6, ptes_per_table=2, file_pages=3)
    m = Machine(LINUX, cfg)  # populated: v0-v2 anonymous, v3-v5 file0; tables [0,2) [2,4) [4,6)
    mm0 = m.mms[0]
    assert mm0.pmds == [True, True, True]
    gathers = []
    real = m.proto.tlb_finish_mmu

    def spy(tlb):
        gathers.append((tlb.freed_tables, tlb.start, tlb.end))
        return real(tlb)

    m.proto.tlb_finish_mmu = spy
    m.munmap(0, 1, 1)  # v1: v0 shares its table
    m.drain()
    assert mm0.pmds == [True, True, True] and gathers[-1][0] is False
    m.munmap(0, 0, 1)  # v0: now nothing shares table [0,2)
    m.drain()
    assert mm0.pmds == [False, True, True] and gathers[-1] == (True, 0, 1)
    m.munmap(0, 2, 3)  # v2..v4: [2,4) goes, [4,6) stays for v5
    m.drain()
    assert mm0.pmds == [False, False, True] and gathers[-1][:2] == (True, 2)
    m.munmap(0, 1, 1)  # no VMA there: nothing detached, nothing freed
    m.drain()
    m.user_access(0, 5, False)  # v5 still mapped and its table kept
    m.drain()
    assert mm0.ptes[5].kind == PRESENT
    m.mmap(0, 0, 2, None, True, True)
    m.drain()
    assert mm0.pmds == [False, False, True]  # a new mapping allocates no table...
    m.user_access(0, 1, True)
    m.drain()
    assert mm0.pmds == [True, False, True]  # ...its first fault does
    m.exit_mmap(0)
    m.drain()
    assert mm0.pmds == [False, False, False]


def test_a_page_table_is_allocated_where_the_kernel_allocates_one():
    """``Mm.pmds``: the populated boot allocates every VMA page's table; an empty boot none;
    a fault allocates its own; fork gives the child the tables the parent has; mremap the
    destination of a moved table (and the unmap of its source frees the source's). No PTE
    ever lies in a table never allocated (checked after every step of 3,000 swarm examples
    of four protocols on 2026-12-06)."""
    from conformance.boundcli import BOUND_CONFIG

    m = Machine(LINUX, BOUND_CONFIG)
    assert all(m.mms[0].pmds)
    cfg = MachineConfig(ncpus=2, nmms=2, vpages=4, ptes_per_table=1, populate=False)
    m = Machine(LINUX, cfg)
    mm0, mm1 = m.mms
    assert not any(mm0.pmds)
    m.user_access(0, 1, True)
    m.drain()
    assert mm0.pmds == [False, True, False, False]
    m.fork(0, 1)
    m.drain()
    assert mm1.pmds == [False, True, False, False]
    m.munmap(0, 3, 1)  # a free range to move to
    m.drain()
    m.mremap(0, 1, 1, 3)
    m.drain()
    assert mm0.ptes[3].kind == PRESENT and mm0.ptes[1].kind != PRESENT  # moved
    # v1's table is gone since 2026-12-06 (free_pgtables frees tables): mremap's unmap of the
    # old range frees it, as no VMA is left in it (one PTE per table); [True] until then
    assert mm0.pmds == [False, False, False, True]
