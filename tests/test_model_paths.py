"""Issue 14 paths: munmap after mmap_write_downgrade, a bounded mmu_gather batch (flush
mid-walk), truncate / hole punch (unmap_mapping_range + truncate_inode_pages_range) and
process exit (exit_mmap with a fullmm gather, then exec).

The need_resched break inside one page-table page (``MachineConfig.zap_need_resched``)
is tested the same way: its threaded file fails the historical protocol that lacks the
nested-flush check, which passes it without the break.

Each mutant test runs the gap's litmus file: the mutant fails with the named rule, linux
and immediate pass; the same file with the new path taken away (unbounded batch, write
lock) passes on the mutant, which is what made it invisible before.
"""
import attrs
import pytest

from conformance.config import MachineConfig
from conformance.corpus import check_one
from conformance.errors import UsageError
from conformance.litmus import load, run, verdict
from conformance.machine import Machine
from conformance.mm.mm_types import NONE, PRESENT
from conformance.registry import load_protocol

LINUX = load_protocol("linux")
QUIET = MachineConfig(populate=False, ncpus=2)


class Counting(LINUX):
    """linux, counting ``flush_tlb_batched_pending`` calls and mid-walk ``tlb_flush_mmu``s."""
    name = "counting-linux"
    batched = 0
    flush_mmu = 0

    def flush_tlb_batched_pending(self, task, mm):
        Counting.batched += 1  # the class itself: the machine runs a subclass (hookpoints)
        return super().flush_tlb_batched_pending(task, mm)

    def tlb_flush_mmu(self, tlb):
        Counting.flush_mmu += 1
        super().tlb_flush_mmu(tlb)


def _touch(m, cpu, vp, write=True):
    if m.user_access(cpu, vp, write) == "fault":
        m.drain()
        m.user_access(cpu, vp, write)


def test_munmap_downgrades_before_zapping():
    """After munmap's first step (VMAs detached, zap under way) a madvise of the same mm
    starts and runs: the lock is held for read."""
    m = Machine(LINUX, attrs.evolve(QUIET, ncpus=3, vpages=6))
    _touch(m, 0, 2)
    _touch(m, 0, 4, write=False)
    m.switch_mm(1, 0)
    mu = m.munmap(0, 3, 2)
    assert m.mms[0].mmap_lock.writer is None and m.mms[0].mmap_lock.readers == 1
    assert [v.start for v in m.mms[0].vmas] == [0]  # detached before the downgrade
    a = m.madvise(1, 2, 1, "dontneed")
    assert a.blocked_on is None
    m.drain()
    assert m.mms[0].mmap_lock.readers == 0 and m.mms[0].ptes[4].kind == NONE
    assert mu.result is None and a.result is None


def test_mmap_fixed_keeps_the_write_lock():
    """MAP_FIXED unmaps without downgrading (``vms_complete_munmap_vmas`` with unlock false)."""
    m = Machine(LINUX, QUIET)
    _touch(m, 0, 0)
    op = m.mmap(0, 0, 1, None, True, True)
    assert op in m.ops and m.mms[0].mmap_lock.writer is op  # in its zap, still the writer
    m.drain()
    assert m.mms[0].mmap_lock.writer is None


def test_full_gather_flushes_and_frees_mid_walk():
    """A batch of 2: munmap of 3 pages of one table flushes and frees after the second,
    re-takes the PTL (``flush_tlb_batched_pending`` again) and zaps the third."""
    cfg = attrs.evolve(QUIET, vpages=8, ptes_per_table=4, nframes=12)  # mm0 v0-v3: anon
    m = Machine(Counting, cfg)
    for vp in (0, 1, 2):
        _touch(m, 0, vp)
    Counting.batched = Counting.flush_mmu = 0
    mu = m.munmap(0, 0, 3)
    m.drain()
    assert any("flush mid-walk" in text for _s, _c, text in m.trace.lines())
    assert Counting.batched == 2  # one per pass over the table
    assert Counting.flush_mmu == 2  # mid-walk, and tlb_finish_mmu's
    assert mu.result is None and all(m.mms[0].ptes[vp].kind == NONE for vp in range(3))
    # an unbounded batch: one pass, one tlb_flush_mmu at the end
    Counting.batched = Counting.flush_mmu = 0
    m = Machine(Counting, attrs.evolve(cfg, gather_batch=100))
    for vp in (0, 1):
        _touch(m, 0, vp)
    Counting.batched = Counting.flush_mmu = 0
    m.munmap(0, 0, 2)
    m.drain()
    assert (Counting.batched, Counting.flush_mmu) == (1, 1)


def test_truncate_unmaps_every_mm_and_punches_a_hole():
    """file0:0 is mapped RO in mm0 (v2) and RW, dirty, in mm1 (v0): truncate zaps both,
    drops the page-cache folio (its dirty data is discarded) and frees it; a later read
    faults in a fresh page of zeroes, and the disk holds a hole."""
    m = Machine(LINUX, QUIET)
    _touch(m, 0, 2, write=False)
    _touch(m, 1, 0)  # mm1:v0 = file0:0, write: W D
    frame = m.mem.files[0].cache[0]
    t = m.truncate(0, 0, 0)
    m.drain()
    assert t.result is None
    assert m.mms[0].ptes[2].kind == NONE and m.mms[1].ptes[0].kind == NONE
    assert 0 not in m.mem.files[0].cache and m.mem.owner[frame] is None
    assert m.mem.files[0].disk[0] == 0
    assert m.user_access(0, 2, False) == "fault"
    m.drain()
    assert m.user_access(0, 2, False) == 0
    m.check_quiescent()


def test_truncate_waits_for_the_folio_lock_and_unmaps_a_refault():
    """A fault that maps the page between the unmap and the page-cache removal is unmapped
    again (``truncate_cleanup_folio`` -> ``unmap_mapping_folio``)."""
    m = Machine(LINUX, QUIET)
    _touch(m, 0, 2, write=False)
    frame = m.mem.files[0].cache[0]
    holder = m.writeback(1, 0, 0)  # not dirty: takes and drops the lock at once
    m.drain()
    lk = m.mem.folio_lock[frame]
    lk.owner = holder  # stand-in for a writeback in flight holding the folio lock
    t = m.truncate(1, 0, 0)
    while t in m.ops and not t.blocked_on:
        m.advance(t.id)
    assert t.blocked_on is lk
    lk.owner = None
    assert m.user_access(0, 2, False) == "fault"  # maps the old folio again
    m.drain()
    assert m.mms[0].ptes[2].kind == NONE and 0 not in m.mem.files[0].cache
    m.check_quiescent()


def test_exit_unmaps_everything_flushes_lazy_cpus_and_execs():
    """exit_mmap on CPU0: every PTE of mm0 cleared, its anonymous pages freed, no entry of
    mm0 left on CPU2 (lazy: it keeps mm0 loaded), then the boot program's VMAs again with
    fresh anon_vmas and nothing mapped."""
    m = Machine(LINUX, MachineConfig())  # populated: CPU0 and CPU2 cache all of mm0
    old = [v.anon_id for v in m.mms[0].vmas]
    anon = [m.mms[0].ptes[vp].frame for vp in (0, 1)]
    x = m.exit_mmap(0)
    assert m.mms[0].exiting
    with pytest.raises(UsageError):
        m.user_access(2, 0, False)  # no task of mm0 runs any more
    m.drain()
    assert x.result is None and not m.mms[0].exiting
    assert all(p.kind == NONE for p in m.mms[0].ptes)
    assert all(m.mem.owner[f] is None for f in anon)
    assert not any(0 in c.tlb and c.tlb[0] for c in m.tlbs.cpus)
    assert [v.anon_id for v in m.mms[0].vmas] != old and len(m.mms[0].vmas) == 2
    assert m.tlbs.cpus[2].loaded_mm is m.mms[0]
    assert m.user_access(2, 0, False) == "fault"
    m.drain()
    m.check_quiescent()


def test_exit_waits_for_no_task_in_the_kernel():
    """exit is refused while a task of the mm is in a fault or a syscall."""
    m = Machine(LINUX, QUIET)
    m.user_access(0, 0, True)  # the fault is in flight
    assert not m.can_exit(1) or m.tlbs.cpus[1].loaded_mm is not m.mms[0]
    m.switch_mm(1, 0)
    assert not m.can_exit(1)
    with pytest.raises(UsageError):
        m.exit_mmap(1)
    m.drain()
    assert m.can_exit(1)


GAPS = [
    ("gap-gather-full-midwalk", "mut_gather_flush_once", "S1", {"gather_batch": 100}),
    ("gap-exit-fullmm", "mut_exit_no_flush", "C1", None),
    ("gap-truncate-nested", "mut_nested_madvise_only", "S3", None),
    ("gap-munmap-downgrade", "mut_munmap_exclusive", "S3", None),
    ("gap-mremap-vs-truncate", "mut_batched_mark_first", "S3", None),
    ("gap-zap-need-resched", "hist_2_5_no_nested_gather_flush", "S3", {"zap_need_resched": False}),
]


@pytest.mark.parametrize("name, mutant, rule, without", GAPS, ids=[g[0] for g in GAPS])
def test_gap_litmus_kills_its_mutant(name, mutant, rule, without):
    """The gap's scenario fails the mutant with ``rule``; linux and immediate pass it
    (a threaded file: in every interleaving)."""
    sc = load(f"litmus/{name}.litmus")
    assert check_one(sc, mutant, load_protocol(mutant)).verdict == rule
    for good in ("linux", "immediate"):
        assert check_one(sc, good, load_protocol(good)).verdict == "pass"
    if without:  # the same scenario without the new path: the mutant survives
        sc2 = attrs.evolve(sc, config=attrs.evolve(sc.config, **without))
        assert check_one(sc2, mutant, load_protocol(mutant)).verdict == "pass"


def test_munmap_gap_needs_the_downgrade(monkeypatch):
    """With munmap holding mmap_lock for write through its zap (the model before, and
    kernels before 4.20), the madvise waits and the munmap mutant passes the scenario."""
    from conformance.mm import Kernel
    monkeypatch.setattr(Kernel, "mmap_write_downgrade", staticmethod(lambda op, mm: None))
    orig = Kernel.munmap

    def munmap_write(self, op, mm, start, npages):
        yield from self.mmap_write_lock(op, mm)
        yield from self.unmap_region(op, mm, start, start + npages)
        self.mmap_write_unlock(op, mm)
        self.oracle.check_s3(op, mm, start, start + npages, "munmap")
    monkeypatch.setattr(Kernel, "munmap", munmap_write)
    sc = load("litmus/gap-munmap-downgrade.litmus")
    assert verdict(run(sc, load_protocol("mut_munmap_exclusive"))) == "pass"
    monkeypatch.setattr(Kernel, "munmap", orig)


def test_munmap_truncate_gap_needs_the_detached_vmas_in_the_rmap(monkeypatch):
    """With rmap walks that see only the VMA tree (the model before 2026-12-04 22:00), the
    hole punch never meets the munmapped VMA and both protocols without the nested flush
    pass the scenario; with the VMAs kept until free_pgtables they fail it, linux passes."""
    from conformance.mm.mm_types import Mm
    sc = load("litmus/gap-munmap-vs-truncate.litmus")
    for bad in ("hist_2_5_no_nested_gather_flush", "mut_nested_madvise_only"):
        assert check_one(sc, bad, load_protocol(bad)).verdict == "S3"
    assert check_one(sc, "linux", LINUX).verdict == "pass"
    monkeypatch.setattr(Mm, "rmap_vmas", lambda self: self.vmas)
    for bad in ("hist_2_5_no_nested_gather_flush", "mut_nested_madvise_only"):
        assert check_one(sc, bad, load_protocol(bad)).verdict == "pass"


def test_munmap_unlinks_its_vmas_after_the_zap():
    """The detached VMAs are in ``Mm.unlinking`` from the detach to free_pgtables and
    gone from it when the munmap returns."""
    m = Machine(LINUX, QUIET)
    m.user_access(0, 2, False)
    m.drain()
    mm = m.mms[0]
    op = m.munmap(0, 2, 1)  # runs to its first point: detached and zapped, not flushed
    seen = [bool(mm.unlinking)]
    while op in m.ops:
        m.advance(op.id)
        seen.append(bool(mm.unlinking))
    assert True in seen and mm.unlinking == [] and mm.find_vma(2) is None


def test_explorer_threads_wait_for_an_exiting_mm():
    """A thread's ``exit`` waits while a syscall of its mm is in flight, and the mm's other
    thread waits while it exits: every interleaving runs, none is refused; the mutant that
    skips the exit flush fails one of them, linux none."""
    from conformance.search.explorer import explore
    from conformance.litmus import parse
    text = """name exit-threads
config populate=false ncpus=2
CPU0 touch w v0
thread CPU0
mmap M v0 1 file1 rw fixed
thread CPU1 mm0
exit E
"""
    res = explore(parse(text), LINUX)
    assert res.complete and res.failure is None
    assert explore(parse(text), load_protocol("mut_exit_no_flush")).failure is not None


def test_shortest_writes_truncate_and_exit_lines():
    """A failing run with a truncate and an exit is written back as litmus thread lines."""
    from conformance.search.shortest import threads_of
    cfg = MachineConfig()
    th, _cons, _hw = threads_of(LINUX, cfg, False, [("truncate", (0, 0, 1)), ("exit_mmap", (1,))])
    assert th == {0: ["truncate T0 file0 1"], 1: ["exit E1"]}


def test_read_in_waits_for_the_hole_punch():
    """A fault that must read the page in waits for ``invalidate_lock`` while truncate holds
    it, so it cannot read the old disk contents back into the page cache: it reads the hole."""
    m = Machine(LINUX, QUIET)
    m.user_access(0, 3, False)  # faults file0:1 in: mm0's v2..v3 page table exists
    m.drain()
    t = m.truncate(1, 0, 0)  # file0:0 is not cached; the walk of mm0:v2 yields
    assert t in m.ops
    assert m.user_access(0, 2, False) == "fault"
    f = m.tlbs.cpus[0].op
    assert f.blocked_on is not None and "invalidate_lock" in repr(f.blocked_on)
    m.drain()
    assert m.user_access(0, 2, False) == 0
    m.check_quiescent()
