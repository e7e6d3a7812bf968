"""Fork (``dup_mmap`` -> ``copy_pte_range`` -> ``copy_present_pte``) and COW faults
(``do_wp_page``: ``wp_page_reuse`` / ``wp_page_copy``) in the model (issue 14).

Each checker test runs a schedule on a correct protocol (which must pass) and on a
protocol broken on exactly that path (which must fail with the named rule).
"""
import pytest

from conformance.config import MachineConfig
from conformance.errors import Failure, UsageError
from conformance.litmus import load, parse, run
from conformance.machine import Machine
from conformance.mm.mm_types import NONE, PRESENT, SWAP
from conformance.registry import load_protocol

LINUX = load_protocol("linux")
IMMEDIATE = load_protocol("immediate")
CFG = MachineConfig(ncpus=2, populate=False)


def forked(cls=LINUX, cfg=CFG):
    """mm0:v0 written (1000000) on CPU0, then CPU1 (a task of mm0) forks into mm1."""
    m = Machine(cls, cfg)
    m.user_access(0, 0, True)
    m.drain()
    assert m.user_access(0, 0, True) == "wrote"
    m.switch_mm(1, 0)
    m.fork(1, 1)
    m.drain()
    return m


def test_fork_write_protects_parent_and_shares_the_folio():
    """copy_present_pte: parent PTE RO (D kept, same instance), child RO on the same frame,
    both in the rmap, the folio no longer exclusive; flush_tlb_mm(oldmm) dropped CPU0's
    writable entry; shared file mappings are not copied (vma_needs_copy)."""
    m = Machine(LINUX, CFG)
    m.user_access(0, 0, True)
    m.drain()
    m.user_access(0, 0, True)
    inst = m.mms[0].ptes[0].inst
    m.switch_mm(1, 0)
    m.fork(1, 1)
    m.drain()
    p, c = m.mms[0].ptes[0], m.mms[1].ptes[0]
    assert (p.kind, p.writable, p.dirty, p.inst) == (PRESENT, False, True, inst)
    assert (c.kind, c.frame, c.writable, c.dirty) == (PRESENT, p.frame, False, True)
    assert c.inst > inst
    assert list(m.mem.rmap[p.frame]) == [(0, 0), (1, 0)]
    assert m.mem.cow[p.frame]
    assert m.tlbs.lookup(m.tlbs.cpus[0], 0, 0) is None  # flushed at the end of dup_mmap
    assert [repr(v) for v in m.mms[1].vmas] == [repr(v) for v in m.mms[0].vmas]
    assert m.mms[1].vmas[0].anon_id != m.mms[0].vmas[0].anon_id
    assert m.mms[1].ptes[2].kind == NONE  # file VMA: faulted in by the child


def test_cow_copy_in_parent_then_reuse_in_child():
    """Parent write: wp_page_copy (new frame, the child keeps the old value); child write:
    the folio is mapped once now, wp_page_reuse (no copy)."""
    m = forked()
    old = m.mms[0].ptes[0].frame
    m.switch_mm(1, 1)
    assert m.user_access(0, 0, True) == "fault"
    m.drain()
    assert m.user_access(0, 0, True) == "wrote"
    assert m.mms[0].ptes[0].frame != old and m.mms[0].ptes[0].writable
    assert m.user_access(1, 0, False) == 1000000  # the child still reads the fork-time value
    assert m.user_access(1, 0, True) == "fault"
    m.drain()
    assert m.mms[1].ptes[0].frame == old and m.mms[1].ptes[0].writable
    assert not m.mem.cow[old] and m.mem.owner[old] == m.mms[1].vmas[0].location(0)
    m.check_quiescent()


def test_child_exit_leaves_the_parent_its_folio():
    """The child slot is forked over again (its address space torn down): the parent's
    folio keeps its owner and its value, and a parent write copies or reuses correctly."""
    m = forked()
    frame = m.mms[0].ptes[0].frame
    m.munmap(1, 0, 2)  # CPU1 runs mm0 here: unmap in the parent instead
    m.drain()
    assert m.mem.owner[frame] == m.mms[1].vmas[0].location(0)  # the child's location now
    m.switch_mm(1, 1)
    assert m.user_access(1, 0, False) == 1000000
    m.check_quiescent()


def test_fork_copies_swap_entries():
    """copy_nonpresent_pte: swap_duplicate; each side swaps in its own copy of the value."""
    m = Machine(LINUX, CFG)
    m.user_access(0, 0, True)
    m.drain()
    m.user_access(0, 0, True)
    m.reclaim(1, (m.mms[0].ptes[0].frame,))
    m.drain()
    slot = m.mms[0].ptes[0].slot
    assert m.mms[0].ptes[0].kind == SWAP
    m.switch_mm(1, 0)
    m.fork(1, 1)
    m.drain()
    assert m.mms[1].ptes[0].kind == SWAP and m.mem.swap_map[slot] == 2
    m.switch_mm(1, 1)
    _faults_then_reads(m, (1, 0), 1000000)


def _faults_then_reads(m, cpus, value):
    """Each CPU's read of v0 faults (its PTE is gone), then reads ``value``; C1 at the end."""
    for cpu in cpus:
        assert m.user_access(cpu, 0, False) == "fault"
        m.drain()
        assert m.user_access(cpu, 0, False) == value
    m.check_quiescent()


def test_lazyfree_discard_of_a_shared_folio_resets_every_location():
    """MADV_FREE in the parent marks a clean shared folio lazyfree; after the child's PTE is
    cleaned too, reclaim discards both mappings, and both locations read zero."""
    m = Machine(LINUX, CFG)
    m.user_access(0, 0, True)
    m.drain()
    m.madvise(0, 0, 1, "free")  # parent PTE clean, folio lazyfree
    m.drain()
    m.switch_mm(1, 0)
    m.fork(1, 1)  # the child copies the clean PTE
    m.drain()
    frame = m.mms[0].ptes[0].frame
    assert m.mem.lazyfree[frame]
    m.switch_mm(1, 1)
    m.reclaim(1, (frame,))
    m.drain()
    assert m.mms[0].ptes[0].kind == NONE and m.mms[1].ptes[0].kind == NONE
    _faults_then_reads(m, (0, 1), 0)


def test_store_in_the_fork_window_reaches_the_child():
    """A store through CPU0's writable entry after copy_present_pte and before
    flush_tlb_mm(oldmm) lands in the shared folio: the child sees it (no false O1)."""
    for cls in (LINUX, IMMEDIATE):
        m = Machine(cls, CFG)
        m.user_access(0, 0, True)
        m.drain()
        m.user_access(0, 0, True)
        m.switch_mm(1, 0)
        op = m.fork(1, 1)
        while not any("copy_present_pte" in str(e[3]) for e in m.trace.events):
            m.advance(op.id)
        assert m.user_access(0, 0, True) == "wrote"  # the stale W D entry: no fault
        m.drain()
        m.switch_mm(1, 1)
        assert m.user_access(1, 0, False) == 1000001
        m.check_quiescent()


class WritableFromPteWrite(LINUX):
    """Mainline taking the batch's ``writable`` from ``pte_write`` instead of ``pte_dirty``:
    a read-only dirty PTE with a writable dirty TLB entry is not flushed before pageout."""
    name = "mutant-writable-from-pte-write"

    def set_tlb_ubc_flush_pending(self, task, mm, pteval, vpage):
        super().set_tlb_ubc_flush_pending(task, mm, pteval, vpage)
        if not pteval.writable:  # "a read-only PTE cannot have a writable entry"
            task.tlb_ubc.writable = False


def test_gap_litmus_fails_the_mutant_and_passes_mainline():
    """litmus/gap-fork-wrprotect-dirty (reclaim): S2 for a mainline mutant that takes the
    batch's writable bit from pte_write; its migration form: S2 for the LUF mutant (whose
    reclaim passes: try_to_unmap_flush_dirty folds tlb_ubc_luf in); linux and immediate pass
    both."""
    sc = load("litmus/gap-fork-wrprotect-dirty.litmus")
    migrate = load("litmus/gap-fork-wrprotect-dirty-migrate.litmus")
    assert run(sc, WritableFromPteWrite).rule == "S2"
    assert run(migrate, load_protocol("luf_dirty_writable_vma")).rule == "S2"
    assert run(sc, load_protocol("luf_dirty_writable_vma")) is None
    for proto in (LINUX, IMMEDIATE):
        assert run(sc, proto) is None
        assert run(migrate, proto) is None


def test_fork_into_own_mm_is_a_usage_error():
    m = Machine(LINUX, CFG)
    with pytest.raises(UsageError):
        m.fork(0, 0)
    with pytest.raises(UsageError, match="mmN"):  # the line's form: refused when parsed
        parse("name x\nconfig populate=false ncpus=2\nCPU0 fork F 1\n")


def test_random_machine_reaches_fork():
    """The state machine's background rule (kind 5) forks; walk.py reuses the same rules."""
    from conformance.search.walk import run_example
    forks = sum(a[0] == "fork" for s in range(40) for a in run_example(LINUX, seed=s).machine.actions)
    assert forks > 0


# -- tlb_flush_batched counter width (MachineConfig.batch_gen_bits) ----------------------------
def _deferrals(cfg, n):
    """``n`` deferred unmaps of mm0 pages by reclaim on CPU1: mm0's tlb_flush_batched."""
    m = Machine(LINUX, cfg)
    for _ in range(n):
        m.user_access(0, 0, True)
        m.drain()
        m.reclaim(1, (m.mms[0].ptes[0].frame,))
        m.drain()
    return m.mms[0].proto.tlb_flush_batched


def test_small_counter_reaches_the_overflow_reset():
    """15 bits (mainline): three deferrals leave pending 3; 2 bits: the third one finds
    pending 2 > PENDING_LARGE 1 and resets the counter to pending 1, flushed 0."""
    import attrs
    assert _deferrals(CFG, 3) == 3
    assert _deferrals(attrs.evolve(CFG, batch_gen_bits=2), 2) == 2
    assert _deferrals(attrs.evolve(CFG, batch_gen_bits=2), 3) == 1


def test_gap_gen_reset_needs_the_small_counter():
    """litmus/gap-gen-reset: the reset-to-zero mutant fails (S3) with 2 bits and passes with
    mainline's 15; linux and immediate pass both."""
    import attrs
    sc = load("litmus/gap-gen-reset.litmus")
    mutant = load_protocol("linux_gen_reset_zero")
    assert sc.config.batch_gen_bits == 2
    assert run(sc, mutant).rule == "S3"
    assert run(sc, LINUX) is None and run(sc, IMMEDIATE) is None
    wide = attrs.evolve(sc, config=attrs.evolve(sc.config, batch_gen_bits=15))
    assert run(wide, mutant) is None


def test_bad_counter_width_is_a_one_line_error():
    with pytest.raises(UsageError, match="bad config"):
        parse("name x\nconfig batch_gen_bits=16\n")
    from conformance.cli import _config
    with pytest.raises(UsageError, match="bad --config"):
        _config(["batch_gen_bits=0"])
    assert _config(["batch_gen_bits=2"]).describe().endswith("gen_bits=2")


def test_fork_and_exit_of_the_same_slot_exclude_each_other():
    """No fork into an exiting slot; no exit of a slot a fork fills, nor of the forking mm."""
    m = Machine(LINUX, CFG)
    m.user_access(0, 0, True)
    m.drain()
    m.exit_mmap(1)  # mm1 exits on CPU1
    with pytest.raises(UsageError, match="exiting"):
        m.fork(0, 1)
    m.drain()
    m.switch_mm(1, 0)
    op = m.fork(1, 1)
    assert op in m.ops and not m.can_exit(0)
    with pytest.raises(UsageError, match="replaced by a fork"):
        m.switch_mm(0, 1)  # the slot has no task while the fork fills it (model.md 11.21)
    assert not m.can_exit(0) and not m.can_fork_into(1)
    m.drain()
    m.check_quiescent()


def test_fork_write_locks_each_parent_vma_when_its_loop_reaches_it():
    """6.5+ ``dup_mmap`` (``for_each_vma(vmi, mpnt) { vma_start_write(mpnt); ...``): while
    the fork copies mm0's anonymous VMA A [v0, v2), its file VMA B [v2, v4) is not yet
    write-locked, so a read fault on B (a page B never mapped) runs to its end under B's
    lock beside the fork; a fault on A, already locked, falls back to ``mmap_lock`` and
    waits for the fork. (Until 2026-12-07 the model locked every VMA first, the 6.4.y
    stable form Linus dropped from mainline in 946c6b59c56d, and the fault on B waited.)"""
    m = Machine(LINUX, MachineConfig(ncpus=3))
    m.madvise(0, 2, 2, "dontneed")
    m.drain()
    m.switch_mm(1, 0)
    a, b = m.mms[0].vmas
    f = m.fork(1, 1)
    while not (a.vm_write_locked and m.mms[1].ptes[0].kind != NONE):
        m.advance(f.id)
    assert f in m.ops and not b.vm_write_locked
    fb = m.fault(2, 2, False)
    while fb in m.ops and fb.blocked_on is None:
        m.advance(fb.id)
    assert fb not in m.ops and fb.result == "ok" and m.mms[0].ptes[2].kind == PRESENT
    fa = m.fault(0, 1, True)
    assert fa in m.ops and repr(fa.blocked_on) == "mmap_lock(mm0) (read)"
    m.drain()
    m.check_quiescent()


def test_fork_copies_no_page_table_of_an_anonymous_vma_never_faulted():
    """``vma_needs_copy``: an anonymous VMA without an ``anon_vma`` (never faulted) is not
    copied, so the child gets no page table for it even where the parent's table exists
    (here for the file VMA sharing it); a faulted one is copied."""
    cfg = MachineConfig(ncpus=2, populate=False, ptes_per_table=4)
    for fault_anon in (False, True):
        m = Machine(LINUX, cfg)
        m.user_access(0, 2, False)  # mm0's file page: the parent's one table exists
        m.drain()
        if fault_anon:
            m.user_access(0, 0, True)
            m.drain()
        assert m.mms[0].vmas[0].anon_vma is fault_anon
        m.switch_mm(1, 0)
        m.fork(1, 1)
        m.drain()
        assert m.mms[1].pmds == [fault_anon]
        assert (m.mms[1].ptes[0].kind == PRESENT) is fault_anon
        m.check_quiescent()


class _DefersWithoutAGeneration(LINUX):
    """Reclaim's flush deferred past the old tenant's exit, with no ``tlb_gen`` bump (as a
    lazy scheme might): the entry stays on a CPU only one generation behind, which a
    ranged flush does not reach beyond its range."""

    def set_tlb_ubc_flush_pending(self, task, mm, pteval, vpage):
        pass

    def try_to_unmap_flush(self, task):
        pass

    def try_to_unmap_flush_dirty(self, task):
        pass

    def flush_tlb_batched_pending(self, task, mm):
        pass


def test_no_entry_of_the_slots_old_tenant_survives_into_the_child():
    """The fork's teardown of the slot's previous tenant is exit_mmap's fullmm gather, so
    its tlb_finish_mmu flushes the whole mm: in the kernel the child is a new mm, whose new
    ctx_id makes x86 flush its ASID (choose_new_asid). Until 2026-12-07 16:00 the teardown
    flushed only the range it cleared, and an old entry of v3 (its PTE cleared earlier, the
    flush deferred) survived into the child: a C1 at the fork, against the child's own v3,
    which no kernel can have (a review)."""
    m = Machine(_DefersWithoutAGeneration, MachineConfig(ncpus=3))
    m.switch_mm(2, 1)
    assert m.fill(2, 3)  # CPU2 caches mm1:v3
    m.reclaim(0, (m.mms[1].ptes[3].frame,))
    m.drain()  # v3's PTE is none, its flush never comes; CPU2 still caches it
    assert m.mms[1].ptes[3].kind == NONE and m.tlbs.lookup(m.tlbs.cpus[2], 1, 3) is not None
    m.switch_mm(1, 0)
    m.fork(1, 1)
    m.drain()
    assert m.tlbs.lookup(m.tlbs.cpus[2], 1, 3) is None
    assert "flush_tlb_mm(mm1)" in m.trace.timeline(3)
