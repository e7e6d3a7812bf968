"""Model additions for the historical-bug corpus: nested reclaim, migration flush placement,
zap of dirty file PTEs vs writeback, madvise (parallel gathers, split window), mremap.

Each mutant is a small subclass of the mainline protocol defined here; every schedule is
run on the mutant (which must fail with the named rule) and on mainline (which must pass).
"""
import pytest

from conformance.errors import Failure
from conformance.machine import Machine
from conformance.mm.mm_types import NONE, PRESENT, SWAP
from conformance.registry import load_protocol
from conformance.reproducer import replay_actions
from conformance.hookpoints import finish_hook

from steps import run_lines

LINUX = load_protocol("linux")
LINUX_4_3 = load_protocol("linux_4_3")


class NestedInitTlbUbc(LINUX):
    """4.3-4.7: ``init_tlb_ubc`` resets the task's pending flag at every shrink pass."""
    name = "mutant-init-tlb-ubc"

    def init_tlb_ubc(self, task):
        task.tlb_ubc.flush_required = False


class MigrateFlushLate(LINUX):
    name = "mutant-migrate-flush-late"
    MIGRATE_FLUSH_BEFORE_COPY = False


class ZapRmapEarly(LINUX):
    """1cf35d47712d..5df397dec7c4: flush under the PTL, rmap removed before it."""
    name = "mutant-zap-rmap-early"
    ZAP_DIRTY_FILE_PTE = (True, False)


class ZapNoForceFlush(LINUX):
    """Before 1cf35d47712d: no forced flush for dirty shared PTEs."""
    name = "mutant-zap-no-force-flush"
    ZAP_DIRTY_FILE_PTE = (False, False)


class NoRecheck(LINUX):
    """Before 383c4613c67c: no flush_tlb_batched_pending after madvise re-takes the PTL."""
    name = "mutant-no-recheck"
    RECHECK_AFTER_RELOCK = False


class NoNestedCheck(LINUX):
    """Before 99baac21e458: tlb_finish_mmu ignores parallel gathers."""
    name = "mutant-no-nested-check"

    def tlb_finish_mmu(self, tlb):
        self.tlb_flush_mmu(tlb)
        tlb.mm.tlb_flush_pending -= 1


def outcome(cls, schedule):
    """Run ``schedule(m)`` on a fresh default machine, then quiesce: the rule violated, or None."""
    m = Machine(cls)
    try:
        schedule(m)
        m.drain()
        m.check_quiescent()
    except Failure as f:
        assert f.machine is m
        return f.rule
    return None


def finish(m, op):
    while op in m.ops:
        m.advance(op.id)


def run_while_runnable(m, op):
    while op in m.ops and op.runnable():
        m.advance(op.id)


def check(mutant, schedule, rule, mainline=LINUX):
    assert outcome(mutant, schedule) == rule
    assert outcome(mainline, schedule) is None


# -- part 1: nested reclaim -------------------------------------------------------------------

def nested_reclaim(m):
    m.switch_mm(2, 1)  # mm0 now runs on CPU0 only: its PTEs are flushed at once
    assert m.frame_of(1, 2) == 4 and m.frame_of(0, 0) == 0 and m.frame_of(0, 1) == 1
    # pfn4 (mm1:v2, cached by CPU1) is deferred; pfn0's swapout allocation recurses over pfn1
    m.reclaim(0, (4, 0), nested=(1,))
    m.drain()
    m.consumer_alloc()  # pfn0
    m.consumer_alloc()  # pfn4: CPU1 still caches it if the outer flush was lost


def test_nested_reclaim_init_tlb_ubc_loses_the_outer_flush():
    check(NestedInitTlbUbc, nested_reclaim, "S1")


def runs_in_order_and_replays(schedule, action, *texts):
    """Run ``schedule`` on mainline: its trace has a line with each of ``texts`` in that
    order, ``action`` was logged, and its actions replay: S1 for the mutant, a pass for
    mainline."""
    m = Machine(LINUX)
    schedule(m)
    lines = [t for _, _, t in m.trace.lines()]
    at = [next(i for i, t in enumerate(lines) if text in t) for text in texts]
    assert at == sorted(at), list(zip(texts, at))
    assert action in m.actions
    acts = [[n, list(a)] for n, a in m.actions]
    assert replay_actions(NestedInitTlbUbc, m.cfg, False, acts).rule == "S1"
    assert replay_actions(LINUX, m.cfg, False, acts) is None


def test_nested_reclaim_runs_inside_the_outer_pass_and_replays():
    runs_in_order_and_replays(nested_reclaim, ("reclaim", (0, (4, 0), (1,))),
                              "nested reclaim", "pageout(pfn1", "pageout(pfn0")


class CountsFlushes(LINUX):
    name = "linux-counting-try-to-unmap-flush"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.flushes = 0

    def try_to_unmap_flush(self, task):
        self.flushes += 1
        return super().try_to_unmap_flush(task)


def flushes_of_reclaim(nested):
    """How often reclaim of pfn0 (with its nested pass over ``nested``) calls the
    protocol's ``try_to_unmap_flush`` (mainline's ``try_to_unmap_flush_dirty`` is one)."""
    m = Machine(CountsFlushes)
    before = m.proto.flushes
    m.reclaim(1, (0,), nested=nested(m))
    m.drain()
    return m.proto.flushes - before


def test_a_nested_pass_that_isolates_nothing_does_not_flush():
    """``shrink_inactive_list``: ``if (nr_taken == 0) return 0;`` comes before
    ``shrink_folio_list`` and its final ``try_to_unmap_flush``: a nested pass over no LRU
    folio (a free frame) flushes nothing for the outer pass (it did until 2026-12-07, an
    extra flush that could cover a protocol's missing one); one over an LRU folio does."""
    alone = flushes_of_reclaim(lambda m: ())
    assert flushes_of_reclaim(lambda m: (m.mem.free_list[-1],)) == alone
    assert flushes_of_reclaim(lambda m: (1,)) > alone


def test_old_reclaim_actions_replay_without_nested():
    m = Machine(LINUX)
    m.reclaim(1, (0,))
    assert m.actions[-1] == ("reclaim", (1, (0,)))


def move_pages_nested(m, nested=(1,)):
    m.switch_mm(2, 1)  # mm0 now runs on CPU0 only: its PTEs are flushed at once
    assert m.frame_of(1, 2) == 4 and m.frame_of(0, 0) == 0 and m.frame_of(0, 1) == 1
    # pfn4 (mm1:v2, cached by CPU1) is deferred; pfn0's destination allocation reclaims pfn1
    m.move_pages(0, (4, 0), nested)
    m.drain()
    m.consumer_alloc()  # the frames migration freed are handed out again: CPU1 still
    m.consumer_alloc()  # caches pfn4 if the nested pass lost its pending flush


def test_move_pages_nested_reclaim_init_tlb_ubc_loses_the_migration_flush():
    """docs/model.md section 11 item 24: the direct reclaim entered from move_pages(2)'s
    destination allocation runs with the first folio's flush pending; a nested pass that
    resets the task's batch loses it (S1), mainline's covers it. Without the nested pass
    the same mutant passes: the reclaim inside the migration is what this test needs."""
    check(NestedInitTlbUbc, move_pages_nested, "S1")
    assert outcome(NestedInitTlbUbc, lambda m: move_pages_nested(m, ())) is None


def test_move_pages_reclaims_between_the_unmap_and_the_move_and_replays():
    runs_in_order_and_replays(move_pages_nested, ("move_pages", (0, (4, 0), (1,))),
                              "ptep_get_and_clear(mm1:v2)", "enters direct reclaim",
                              "pageout(pfn1", "migrate: move")


class _OtherTask:
    """Stands for a task holding a folio lock (a fault's ``folio_lock``, a truncation)."""
    label = "other task"


def inside_the_nested_pass(m, op, start_other):
    """Run move_pages ``op`` into its nested direct reclaim, then start ``start_other(m)``
    there and run it to its end, first whenever it can run. Returns that operation."""
    while not any("enters direct reclaim" in t for _, _, t in m.trace.lines()):
        m.advance(op.id)
    m.advance(op.id)
    other = start_other(m)
    while other in m.ops:
        m.advance(other.id if other.runnable() else op.id)
    return other


def move_pages_last_folio_locked(m, munmap_it=False):
    """move_pages(pfn4, pfn0) while another task holds pfn0's folio lock: the destination
    allocation (and its direct reclaim of pfn1) comes before ``folio_trylock(src)``, which
    fails and puts pfn0 back; with ``munmap_it`` mm0's munmap of v0 runs inside the nested
    pass (move_pages then runs on CPU1), so the put-back drops pfn0's last reference."""
    m.switch_mm(2, 1)
    lk = m.mem.folio_lock[0]
    lk.owner = _OtherTask()
    op = m.move_pages(1 if munmap_it else 0, (4, 0), (1,))  # CPU0 runs mm0's munmap
    if munmap_it:
        inside_the_nested_pass(m, op, lambda m: m.munmap(0, 0, 1))
        assert op in m.ops and not m.mem.rmap[0]
    finish(m, op)
    lk.owner = None
    m.drain()
    m.consumer_alloc()
    m.consumer_alloc()


def test_move_pages_reclaims_before_the_last_folio_trylock():
    """The kernel's ``migrate_folio_unmap`` calls ``get_new_folio`` before
    ``folio_trylock(src)``: a last folio locked elsewhere still has its allocation, and its
    direct reclaim, run with pfn4's flush pending (S1 for a pass that resets the batch);
    the model skipped the pass for it until 2026-12-07."""
    check(NestedInitTlbUbc, move_pages_last_folio_locked, "S1")
    m = Machine(LINUX)
    move_pages_last_folio_locked(m)
    lines = [t for _, _, t in m.trace.lines()]
    assert any("folio_trylock(pfn0) failed" in t for t in lines)
    assert m.mem.owner[0].__class__ is tuple and m.mem.isolated[0] is None  # put back


def test_a_put_back_last_folio_unmapped_meanwhile_is_freed():
    """munmap zaps pfn0 while it is isolated (inside the nested pass): the put-back holds
    its last reference and frees it, not a frame leaked with an owner and no mapping."""
    m = Machine(LINUX)
    move_pages_last_folio_locked(m, munmap_it=True)
    assert m.mem.owner[0].__class__ is not tuple and not m.mem.rmap[0]
    assert outcome(LINUX, lambda m: move_pages_last_folio_locked(m, True)) is None


@pytest.mark.parametrize("how", ["truncate", "munmap"])
def test_a_last_folio_removed_in_the_nested_pass_leaks_no_frame(how):
    """move_pages whose last folio is removed while the nested pass runs (isolated,
    unlocked): file1:0 (pfn4) by a truncate, which can lock it, or mm0:v0 (pfn0) by a
    munmap. The isolation holds its last reference, so it is not migrated but freed at the
    put-back, and no destination frame is allocated for it (one leaked, owned by nobody,
    until 2026-12-07 03:50; a review)."""
    m = Machine(LINUX)
    last = 4 if how == "truncate" else 0
    op = m.move_pages(0 if how == "truncate" else 1, (4 - last, last), (1,))
    inside_the_nested_pass(m, op, lambda m: m.truncate(2, 1, 0) if how == "truncate"
                           else m.munmap(0, 0, 1))
    assert m.mem.isolated[last] is op and m.mem.owner[last].__class__ is not tuple
    m.drain()
    m.check_quiescent()
    dead = [f for f, o in enumerate(m.mem.owner) if o.__class__ is not tuple
            and o != "other" and f not in m.mem.free_list]
    assert dead == [], dead
    assert any(f"pfn{last} freed from under us" in t for _, _, t in m.trace.lines())


@pytest.mark.parametrize("start", ["reclaim", "migrate"])
def test_a_folio_that_fails_its_trylock_stays_isolated_until_the_end(start):
    """``shrink_folio_list``'s ``if (!folio_trylock(folio)) goto keep;`` and
    ``migrate_folio_unmap``'s ``-EAGAIN``: the folio was isolated with the batch, and stays
    off the LRU (unlocked, not reclaimed or migrated) until the pass puts it back after its
    flush; its owner's munmap meanwhile leaves the last reference to that put-back, which
    frees it. Until 2026-12-07 the model never isolated it."""
    m = Machine(LINUX)
    lk = m.mem.folio_lock[0]
    lk.owner = _OtherTask()
    op = getattr(m, start)(1, (0, 4))
    assert op in m.ops and m.mem.isolated[0] is op and lk.owner.__class__ is _OtherTask
    finish(m, m.munmap(0, 0, 1))  # mm0's v0: zapped, not freed (the isolation holds it)
    assert not m.mem.rmap[0] and 0 not in m.mem.free_list
    finish(m, op)
    lk.owner = None
    assert m.mem.isolated[0] is None and 0 in m.mem.free_list
    m.drain()
    m.check_quiescent()


@pytest.mark.parametrize("start", ["reclaim", "migrate"])
def test_the_whole_batch_is_isolated_before_the_first_folio_is_locked(start):
    """``isolate_lru_folios`` (``isolate_migratepages_block``, ``add_page_for_migration``)
    takes every folio of the batch off the LRU before the pass locks the first, so while
    the pass works on pfn4 (mm1's), pfn1 (mm0's) is already off the LRU: its owner's munmap leaves the
    last reference to the pass's put. Until 2026-12-07 22:00 each folio was isolated when
    the loop reached it, and the munmap freed pfn1 at once (F2's plainest route,
    litmus/finding-lazyfree-skips-isolated-batch.litmus, was out of reach)."""
    m = Machine(LINUX)
    assert m.mem.owner[1] == ("a", 1, 1) and list(m.mem.rmap[1]) == [(0, 1)]
    op = getattr(m, start)(1, (4, 1))
    assert op in m.ops and m.mem.isolated[4] is op and m.mem.isolated[1] is op
    assert m.mem.folio_lock[1].owner is None  # isolated, not locked yet
    finish(m, m.munmap(0, 1, 1))  # mm0's v1: zapped, not freed (the isolation holds it)
    assert not m.mem.rmap[1] and 1 not in m.mem.free_list
    finish(m, op)
    assert m.mem.isolated[1] is None and 1 in m.mem.free_list
    if start == "reclaim":  # add_to_swap, the dirty flush, a pageout that writes nothing
        lines = [t for _, _, t in m.trace.lines()]
        assert any(t.startswith("pageout(pfn1): no swap entry uses slot") for t in lines)
        assert not any(t.startswith("pageout(pfn1 -> slot") for t in lines)
        assert not m.mem.swap_cache
    m.drain()
    m.check_quiescent()


def test_a_move_pages_failure_is_a_litmus_thread_and_explored_again():
    """A failure through move_pages' nested pass is written as the litmus verb (with its
    ``nested`` frames) and the explorer finds it again from that text."""
    from conformance.search.shortest import shortest

    m = Machine(LINUX)
    move_pages_nested(m)
    f = replay_actions(NestedInitTlbUbc, m.cfg, False, [[n, list(a)] for n, a in m.actions])
    g, text, proven = shortest(f)
    assert "\nmove_pages V0 pfn4 pfn0 nested pfn1\n" in text
    assert g.rule == "S1" and proven


# -- part 1: migration flush placement -----------------------------------------------------------

def migrate_dirty_anon(m):
    m.migrate(1, (0,))  # mm0:v0 is cached W D by CPU0 and CPU2


def test_migration_flush_after_copy_is_s2():
    check(MigrateFlushLate, migrate_dirty_anon, "S2")


# -- part 1 + 2: zap of a dirty shared-file PTE vs writeback (folio_mkclean) --------------------

def zap_vs_writeback(m):
    assert m.user_access(1, 0, True) == "fault"  # mm1:v0 = file0:0, RO PTE (write-notify)
    m.drain()
    assert m.user_access(1, 0, True) == "wrote"  # CPU1 caches mm1:v0 W D
    m.switch_mm(2, 1)
    m.munmap(2, 0, 1)  # zaps the dirty PTE; stops inside (or just after) its PTL section
    wb = m.writeback(0, 0, 0)
    run_while_runnable(m, wb)  # mainline: folio_mkclean waits for munmap's PTL


@pytest.mark.parametrize("mutant", [ZapRmapEarly, ZapNoForceFlush])
def test_zap_dirty_file_pte_without_delayed_rmap_is_s2_at_writeback(mutant):
    check(mutant, zap_vs_writeback, "S2")


def test_writeback_cleans_and_write_protects_ptes():
    m = Machine(LINUX)
    assert m.user_access(1, 0, True) == "fault"
    m.drain()
    assert m.user_access(1, 0, True) == "wrote"
    value = m.mem.value[m.frame_of(1, 0)]
    m.writeback(0, 0, 0)
    m.drain()
    pte = m.mms[1].ptes[0]
    assert pte.kind == PRESENT and not pte.writable and not pte.dirty
    assert m.mem.files[0].disk[0] == value and not m.mem.dirty[pte.frame]
    assert not m.tlbs.entries_for(1, 0)  # ptep_clear_flush
    assert m.user_access(1, 0, True) == "fault"  # write-notify again
    m.drain()
    m.check_quiescent()


def test_writeback_of_an_uncached_page_skips():
    m = Machine(LINUX)
    op = m.writeback(0, 1, 1)  # file1:1 is cached (pfn5); evict it first via reclaim
    m.drain()
    assert op.result is None
    m.reclaim(0, (5,))
    m.drain()
    op = m.writeback(0, 1, 1)
    assert op.result == "skip" and op not in m.ops


# -- part 3: madvise ---------------------------------------------------------------------------

def recheck_window(m):
    # mm0:v0 old and clean first: the second madvise then records nothing for it (a gather
    # that records v0 makes x86 flush the whole mm, CPU0 being two tlb_gen behind: no race)
    finish(m, m.madvise(0, 0, 1, "free"))
    md = m.madvise(0, 0, 2, "free")  # stops in the split window of mm0:v0, its folio locked
    assert "split_folio pfn0" in m.trace.timeline(3)
    finish_hook(m, m.reclaim(1, (1,)))  # try_to_unmap clears mm0:v1 and defers the flush
    finish(m, md)  # relock; v1 is a swap entry: MADV_FREE drops it


def test_the_split_window_keeps_its_folio_locked():
    """Reclaim of the folio being split waits out the window: ``madvise_free_pte_range``
    holds the folio lock across ``split_folio``, and ``shrink_folio_list`` trylocks (a
    review, 2026-12-06: the model's window opened without it, and the 2.11 litmus had
    reclaim unmap the very folio being split)."""
    m = Machine(NoRecheck)
    md = m.madvise(0, 1, 1, "free")  # the split window of mm0:v1 (pfn1)
    assert m.mem.folio_lock[1].owner is md
    finish_hook(m, m.reclaim(1, (1,)))
    assert m.mms[0].ptes[1].kind == PRESENT  # folio_trylock failed: kept, not unmapped
    finish(m, md)
    assert m.mem.folio_lock[1].owner is None
    m.drain()
    m.check_quiescent()


def test_the_split_window_holds_a_reference_on_its_folio():
    """``folio_get`` before the split: a MADV_DONTNEED that zaps the folio inside the window
    does not free it; madvise's ``folio_put`` does, after the window. Without the reference
    the locked frame was freed and handed out again, still locked by madvise (a model error
    in the soundness campaign of 2026-12-06, seed 20262092: reclaim of the reused frame)."""
    m = Machine(LINUX)
    md = m.madvise(0, 0, 1, "free")  # the split window of mm0:v0 (pfn0)
    finish(m, m.madvise(2, 0, 1, "dontneed"))  # zaps v0, flushes, puts its reference
    assert m.mms[0].ptes[0].kind == NONE
    assert m.mem.owner[0] is not None  # not freed: madvise(free) holds a reference
    finish(m, md)
    assert m.mem.owner[0] is None and m.mem.folio_lock[0].owner is None  # our put: freed
    m.drain()
    m.check_quiescent()


def test_a_parallel_cold_ages_the_folio_in_a_split_window():
    """``folio_get`` leaves the folio on the LRU: a second MADV_COLD of the same mm, while
    the first holds the folio in its split window, still clears its accessed bit and
    records the flush (``folio_test_lru`` is true). The reference counted as an isolation
    made it skip the folio (a review, 2026-12-06)."""
    m = Machine(LINUX)
    pte = m.mms[0].ptes[0]
    pte.accessed = True
    a = m.madvise(0, 0, 1, "cold")  # the split window of mm0:v0
    assert m.mem.folio_lock[0].owner is a
    finish(m, m.madvise(2, 0, 1, "cold"))
    # its tlb_finish_mmu flushes the whole mm: the first madvise's gather is open
    # (mm_tlb_flush_nested). flush_tlb_page(mm0, v0) of its tlb_end_vma until 2026-12-07
    # 15:00, when that stopped flushing (MMU_GATHER_MERGE_VMAS, x86's)
    assert not pte.accessed and "flush_tlb_mm(mm0)" in m.trace.timeline(3)
    finish(m, a)
    m.drain()
    m.check_quiescent()


def test_no_split_window_for_a_shared_folio():
    """``folio_likely_mapped_shared`` / a failed ``folio_trylock``: the kernel opens no
    window for such a folio (the model takes it as a small one and goes on)."""
    m = Machine(LINUX)
    finish(m, m.fork(0, 1))  # mm0's anonymous folios now mapped twice
    md = m.madvise(0, 0, 2, "free")
    finish(m, md)
    assert "split_folio" not in m.trace.timeline(3)


def test_madvise_no_recheck_after_relock_is_s3():
    check(NoRecheck, recheck_window, "S3")


def parallel_free(m):
    m.switch_mm(1, 0)
    assert m.fill(1, 0)  # CPU1 caches mm0:v0 W D
    a = m.madvise(0, 0, 1, "free")
    m.advance(a.id)  # CPU0 cleans the PTE; its flush waits for its tlb_end_vma
    b = m.madvise(2, 0, 1, "free")  # CPU2 sees a clean, old PTE and records nothing
    finish(m, b)


def test_parallel_madvise_free_needs_the_nested_check():
    check(NoNestedCheck, parallel_free, "S3")


def test_madvise_dontneed_zaps_and_keeps_the_vma():
    m = Machine(LINUX)
    assert m.user_access(0, 0, True) == "wrote"
    m.madvise(0, 0, 2, "dontneed")
    m.drain()
    assert m.mms[0].ptes[0].kind == NONE and m.mms[0].find_vma(0) is not None
    assert not m.tlbs.entries_for(0, 0)
    assert m.user_access(0, 0, False) == "fault"
    m.drain()
    assert m.user_access(0, 0, False) == 0  # a fresh zero page
    m.check_quiescent()


def test_madvise_free_then_reclaim_discards_a_clean_folio():
    m = Machine(LINUX)
    assert m.user_access(0, 0, True) == "wrote"
    m.madvise(0, 0, 1, "free")
    m.drain()
    pte = m.mms[0].ptes[0]
    assert pte.kind == PRESENT and not pte.dirty and m.mem.lazyfree[0]
    nslots = len(m.mem.swap_free)
    m.reclaim(1, (0,))
    m.drain()
    assert pte.kind == NONE and len(m.mem.swap_free) == nslots  # discarded, no swap entry
    assert m.user_access(0, 0, False) == "fault"
    m.drain()
    assert m.user_access(0, 0, False) == 0
    m.check_quiescent()


def test_madvise_free_then_write_redirties_and_reclaim_keeps_it():
    m = Machine(LINUX)
    m.madvise(0, 0, 1, "free")
    m.drain()
    assert m.user_access(0, 0, True) == "wrote"  # clean entry/PTE: the walk sets D
    assert m.mms[0].ptes[0].dirty
    m.reclaim(1, (0,))
    m.drain()
    assert m.frame_of(0, 0) == 0 and not m.mem.lazyfree[0]
    m.check_quiescent()


def test_a_lazyfree_folio_a_gather_holds_is_not_discarded():
    """litmus/model-lazyfree-gather-reference: try_to_unmap_one discards a clean lazyfree
    folio only if ``ref_count == 1 + map_count``; the child's open gather holds one more,
    so the parent's PTE is restored, the folio is swap-backed again and the walk aborts
    (the model discarded the mapping until 2026-12-07, docs/model.md section 11 item 36).
    The parent's read then hits its mapping; the same script without the child's zap in
    flight discards it."""
    from conformance.litmus import load, run
    from conformance.trace import format_event

    text = open("litmus/model-lazyfree-gather-reference.litmus").read()
    upto = text.index("R      finish")
    m = run_lines(text[:upto] + "R      finish\n", LINUX)
    frame = m.mms[0].ptes[0].frame
    assert m.mms[0].ptes[0].kind == PRESENT and not m.mem.lazyfree[frame]
    assert m.mem.owner[frame] == m.mms[0].find_vma(0).location(0)  # not "discarded"
    assert any("held by another reference: pte restored, keep" in format_event(ev[2], ev[3])
               for ev in m.trace.events)
    plain = text[:upto].replace("D      until zap mm1:v0\n", "D      finish\n")
    m = run_lines(plain + "R      finish\n", LINUX)
    assert m.mms[0].ptes[0].kind == NONE  # no other reference: discarded
    for name in ("linux", "immediate", "luf_v12"):
        assert run(load("litmus/model-lazyfree-gather-reference.litmus"),
                   load_protocol(name)) is None


#: two S2 a campaign found on ``linux`` (seed 20262148, 2026-12-07 17:52-18:04) while the model
#: left a folio off the LRU swap-backed at MADV_FREE (6.12's ``!folio_test_lru``): reclaim
#: (or migration) held pfn0 isolated after a failed trylock, the MADV_FREE in flight cleaned
#: its PTE, and a second reclaim swapped it out under CPU0's writable dirty entry, whose
#: flush the MADV_FREE's gather still held (docs/model.md section 11 item 36: the kernel
#: can do the same; finding F2, docs/FINDINGS.md, behind ``lazyfree_skips_isolated``)
S2_UNDER_AN_IN_FLIGHT_MADV_FREE = (
    (dict(ncpus=4), [("switch_mm", (1, 0)), ("madvise", (1, 0, 1, "free")),
                     ("reclaim", (3, (0, 1))), ("advance", (1,)), ("advance", (0,)),
                     ("fill", (0, 0)), ("advance", (0,))] + [("advance", (1,))] * 4
     + [("reclaim", (3, (0,)))] + [("advance", (2,))] * 3),
)


def test_an_isolated_folio_is_marked_lazyfree_unless_the_f2_switch_is_on():
    """The campaign's interleaving above. By default MADV_FREE marks pfn0 lazyfree although
    reclaim holds it isolated (finding F2's switch off), so the second reclaim discards it
    and copies nothing out: ``linux`` passes it. With ``lazyfree_skips_isolated`` the folio
    stays swap-backed (6.12's ``!folio_test_lru``) and the second reclaim copies it out
    under CPU0's writable dirty entry: S2."""
    from conformance.config import MachineConfig

    for kw, actions in S2_UNDER_AN_IN_FLIGHT_MADV_FREE:
        for on in (False, True):
            cfg = MachineConfig(**kw, lazyfree_skips_isolated=on)
            m = Machine(LINUX, cfg)
            assert replay_actions(LINUX, cfg, False, actions[:7], machine=m) is None
            assert m.mem.lazyfree[0] is (not on) and not m.mms[0].ptes[0].dirty
            f = replay_actions(LINUX, cfg, False, actions)
            assert (f.rule if f else None) == ("S2" if on else None)


def test_parallel_madvise_free_passes_on_mainline_with_faults_and_reclaim():
    def sched(m):
        a = m.madvise(0, 0, 2, "free")
        b = m.madvise(2, 0, 2, "free")
        m.reclaim(1, (0, 1))
        for _ in range(6):
            for op in list(m.ops):
                if op in m.ops and op.runnable():
                    m.advance(op.id)
    assert outcome(LINUX, sched) is None


@pytest.mark.parametrize("advice", ["cold", "pageout"])
def test_madvise_cold_and_pageout(advice):
    m = Machine(LINUX)
    m.madvise(0, 0, 2, advice)
    m.drain()
    assert not m.mms[0].ptes[0].accessed
    if advice == "pageout":
        assert m.mms[0].ptes[0].kind == SWAP and m.mms[0].ptes[1].kind == SWAP
    else:
        assert m.frame_of(0, 0) == 0
    m.check_quiescent()


# -- part 4: mremap ----------------------------------------------------------------------------

def reclaim_then_mremap(m):
    m.munmap(0, 3, 1)
    m.drain()
    r = finish_hook(m, m.reclaim(1, (1,)))  # clears mm0:v1, defers the flush (CPU0, CPU2 cache it)
    m.advance(r.id)  # the rmap walk ends (anon_vma lock dropped), before any flush
    finish(m, m.mremap(0, 1, 1, 3))  # moves the swap entry: nothing present, no force_flush


def test_mremap_without_flush_tlb_batched_pending_is_s3():
    check(LINUX_4_3, reclaim_then_mremap, "S3")


def test_mremap_moves_ptes_and_locations():
    m = Machine(LINUX)
    assert m.user_access(0, 1, True) == "wrote"
    value = m.mem.value[1]
    m.munmap(0, 3, 1)
    m.drain()
    op = m.mremap(0, 1, 1, 3)
    m.drain()
    assert op.result == 3
    assert m.mms[0].ptes[1].kind == NONE and m.frame_of(0, 3) == 1
    assert m.mms[0].find_vma(1) is None and m.mms[0].find_vma(3).is_anon
    assert list(m.mem.rmap[1]) == [(0, 3)]
    assert not m.tlbs.entries_for(0, 1)
    assert m.user_access(0, 3, False) == value
    m.reclaim(1, (1,))  # the rmap walk finds the new address
    m.drain()
    assert m.user_access(0, 3, False) == "fault"
    m.drain()
    assert m.user_access(0, 3, False) == value
    m.check_quiescent()


def test_mremap_rejects_an_occupied_destination():
    m = Machine(LINUX)
    op = m.mremap(0, 0, 1, 2)
    assert op.result == "error" and op not in m.ops
