"""Ordering of the simulated kernel paths (conformance/mm/) against the kernel's.

Orderings are read from ``machine.trace``: kernel messages, flush events, and ``hook``
events logged by a recording subclass of the mainline protocol at the moment the kernel
calls the hook (with a snapshot of the state the hook's contract is about).
"""
import pytest

from conformance.config import MachineConfig
from conformance.errors import UsageError
from conformance.machine import Machine
from conformance.mm.mm_types import MIGRATION, NONE, PRESENT, SWAP
from conformance.registry import load_protocol
from conformance.hookpoints import finish_hook
from steps import past_rmap_walk

LINUX = load_protocol("linux")


def _refs(self, frame):
    return sorted(self.arch._arch.tlbs.refs[frame])  # the test's observer reads the hardware: a hook cannot


def _held_ptls(task, mm):
    return tuple(lk.name for lk in mm.ptls if lk.owner is task)


#: hook name -> what to snapshot when the kernel calls it
SNAPSHOTS = {
    "set_tlb_ubc_flush_pending": lambda self, task, mm, pteval, vpage: (mm.id, vpage),
    "try_to_unmap_flush": None,
    "try_to_unmap_flush_dirty": None,
    "flush_tlb_batched_pending": lambda self, task, mm: (
        _held_ptls(task, mm), tuple(p.kind for p in mm.ptes)),
    "free_unref_folios": lambda self, task, frames: tuple((f, _refs(self, f)) for f in frames),
    "tlb_remove_tlb_entry": lambda self, tlb, vpage: (
        vpage, tlb.mm.ptl(vpage).owner is tlb.task),
    "tlb_flush_mmu_tlbonly": lambda self, tlb: tlb.cleared_ptes,
    "mmap_region": lambda self, task, mm, vma: (
        tuple(mm.ptes[v].kind for v in range(vma.start, vma.end)),
        tuple(e for v in range(vma.start, vma.end)
              for e in self.arch._arch.tlbs.entries_for(mm.id, v))),
}


def _recorder(name, snap):
    orig = getattr(LINUX, name)

    def hooked(self, *args):
        who = getattr(args[0], "task", args[0])  # the task, or the mmu_gather's task
        self.arch.trace.event(who, "hook", name, snap(self, *args) if snap else None)
        return orig(self, *args)

    hooked.__name__ = name
    return hooked


RECORDING = type("RecordingLinux", (LINUX,),
                 {"name": "recording-linux",
                  **{n: _recorder(n, s) for n, s in SNAPSHOTS.items()}})


def machine(**cfg):
    return Machine(RECORDING, MachineConfig(**{"ncpus": 2, **cfg}))


def texts(m):
    return [t for _, _, t in m.trace.lines()]


def pos(m, needle, start=0):
    """Index of the first trace line at or after ``start`` containing ``needle``."""
    for i, t in enumerate(texts(m)):
        if i >= start and needle in t:
            return i
    raise AssertionError(f"{needle!r} not in trace:\n" + "\n".join(texts(m)))


def hooks(m, name):
    """Snapshots of every call of hook ``name``, in order."""
    return [a[1] for _, _, n, a in m.trace.events if n == "hook" and a[0] == name]


def finish(m, op):
    """Run one operation (and only it) to completion."""
    while op in m.ops:
        m.advance(op.id)


# -- reclaim: shrink_folio_list ------------------------------------------------------------------

def test_reclaim_defers_the_pte_clear_flush_before_remove_mapping():
    """shrink_folio_list: try_to_unmap clears + set_tlb_ubc_flush_pending, then __remove_mapping, no flush yet."""
    m = machine()
    frame = m.frame_of(0, 3)  # file0:1, mapped by mm0:v3 (CPU0 runs mm0) and mm1:v1
    m.reclaim(1, (frame,))
    m.drain()
    clear = pos(m, "ptep_get_and_clear(mm0:v3)")
    pending = pos(m, "hook(set_tlb_ubc_flush_pending, (0, 3))")
    remove = pos(m, f"__remove_mapping(pfn{frame} from page cache)")
    flush = pos(m, "arch_tlbbatch_flush(cpus 0)")
    assert clear < pending < remove < flush
    assert m.mms[0].ptes[3].kind == NONE and m.frame_of(0, 3) is None
    assert "pageout" not in "".join(texts(m))  # clean file folio: no IO, no dirty flush


def test_reclaim_defers_only_when_another_cpu_runs_the_mm():
    """should_defer_flush (x86): ptep_clear_flush at once when only the reclaiming CPU runs the mm."""
    m = machine()
    frame = m.frame_of(1, 1)  # file0:1 again: mm1 runs only on CPU1, the reclaiming CPU
    m.reclaim(1, (frame,))
    m.drain()
    assert pos(m, "ptep_clear_flush(mm1:v1)") < pos(m, "flush_tlb_page(mm1, v1)") \
        < pos(m, f"__remove_mapping(pfn{frame}")
    assert hooks(m, "set_tlb_ubc_flush_pending") == [(0, 3)]  # only mm0's PTE was deferred


def test_reclaim_flushes_dirty_batch_before_pageout():
    """shrink_folio_list: try_to_unmap_flush_dirty strictly before pageout (no write after IO starts)."""
    m = machine()
    frame = m.frame_of(0, 0)  # anon, mapped W D; CPU0 caches it dirty
    assert m.user_access(0, 0, True) == "wrote"
    value = m.mem.value[frame]
    m.reclaim(1, (frame,))
    m.drain()
    clear = pos(m, "ptep_get_and_clear(mm0:v0) [pfn0 dirty]")
    dirty = pos(m, "hook(try_to_unmap_flush_dirty")
    flush = pos(m, "arch_tlbbatch_flush(cpus 0)")
    out = pos(m, f"pageout(pfn{frame} -> slot")
    assert clear < dirty < flush < out < pos(m, "__remove_mapping")
    assert m.mms[0].ptes[0].kind == SWAP
    assert m.user_access(0, 0, False) == "fault"  # swap-in
    m.drain()
    assert m.user_access(0, 0, False) == value


def test_reclaim_frees_frames_only_after_try_to_unmap_flush():
    """shrink_folio_list: try_to_unmap_flush strictly before free_unref_folios, one flush for the batch."""
    m = machine()
    anon, file = m.frame_of(0, 1), m.frame_of(0, 2)
    m.reclaim(1, (anon, file))
    m.drain()
    last_remove = pos(m, f"__remove_mapping(pfn{file}")
    flush_hook = pos(m, "hook(try_to_unmap_flush,", last_remove)
    flush = pos(m, "arch_tlbbatch_flush", last_remove)
    free = pos(m, "hook(free_unref_folios")
    assert last_remove < flush_hook < flush < free
    assert free < pos(m, f"pfn{anon} freed") and free < pos(m, f"pfn{file} freed")
    assert hooks(m, "free_unref_folios") == [((anon, []), (file, []))]
    assert m.mem.owner[anon] is None and m.mem.owner[file] is None


# -- migration: migrate_pages_batch ----------------------------------------------------------------

def test_migration_unmaps_the_batch_and_flushes_before_any_copy():
    """migrate_pages_batch: migration entries for every folio, try_to_unmap_flush at move:, then copy."""
    m = machine()
    a, b = m.frame_of(0, 0), m.frame_of(0, 1)
    assert m.user_access(0, 1, True) == "wrote"
    value = m.mem.value[b]
    op = finish_hook(m, m.migrate(1, (a, b)))  # through set_tlb_ubc_flush_pending
    assert m.mms[0].ptes[0].kind == MIGRATION
    m.drain()
    assert op not in m.ops
    unmap_b = pos(m, "ptep_get_and_clear(mm0:v1)")
    assert pos(m, "ptep_get_and_clear(mm0:v0)") < unmap_b
    assert unmap_b < pos(m, "hook(try_to_unmap_flush") < pos(m, "arch_tlbbatch_flush(cpus 0)") \
        < pos(m, "migrate: move") < pos(m, "copy pfn")
    assert m.frame_of(0, 0) not in (None, a) and m.frame_of(0, 1) not in (None, b)
    assert m.mem.owner[a] is None and m.mem.owner[b] is None
    assert m.user_access(0, 1, False) == value


def test_fault_waits_on_migration_entry():
    """do_swap_page -> migration_entry_wait: the fault sleeps until remove_migration_ptes."""
    m = machine()
    assert m.user_access(0, 0, True) == "wrote"
    value = m.mem.value[m.frame_of(0, 0)]
    mig = finish_hook(m, m.migrate(1, (m.frame_of(0, 0),)))
    assert m.mms[0].ptes[0].kind == MIGRATION
    m.tlbs.drop(m.tlbs.cpus[0], 0, 0)  # CPU0 misses: the walk finds the migration entry
    assert m.user_access(0, 0, False) == "fault"
    fault = m.tlbs.cpus[0].op
    assert fault is not None and not fault.runnable()
    with pytest.raises(UsageError):
        m.advance(fault.id)
    m.drain()
    assert mig not in m.ops and fault not in m.ops
    assert pos(m, "migration_entry_wait(mm0:v0)") < pos(m, "remove_migration_pte(mm0:v0") \
        < pos(m, "fault(mm0:v0): return")
    assert m.user_access(0, 0, False) == value


# -- munmap: zap_pte_range + mmu_gather ----------------------------------------------------------------

def _leave_mm0_pending(m):
    """A drained reclaim of mm0:v3 leaves mm0->tlb_flush_batched pending (nothing resets it)."""
    m.reclaim(1, (m.frame_of(0, 3),))
    m.drain()
    st = m.mms[0].proto.tlb_flush_batched
    assert st & 0xFFFF != st >> 16


def test_munmap_calls_flush_tlb_batched_pending_under_ptl_before_zapping():
    """zap_pte_range: flush_tlb_batched_pending after pte_offset_map_lock, before the PTE loop, per table."""
    m = machine()
    _leave_mm0_pending(m)
    n = len(m.trace.events)
    m.munmap(0, 0, 4)
    m.drain()
    calls = hooks(m, "flush_tlb_batched_pending")
    assert [held for held, _ in calls] == [("ptl(mm0,t0)",), ("ptl(mm0,t1)",)]
    # PTEs not yet inspected: still present when the hook ran
    assert calls[0][1][:3] == (PRESENT, PRESENT, PRESENT)
    first = pos(m, "hook(flush_tlb_batched_pending", n)
    assert first < pos(m, "flush_tlb_mm(mm0)", n) < pos(m, "zap mm0:v0", n)
    second = pos(m, "hook(flush_tlb_batched_pending", first + 1)
    assert pos(m, "zap mm0:v1", n) < second < pos(m, "zap mm0:v2", n)
    assert texts(m)[n:].count("flush_tlb_mm(mm0)") == 1  # pending absorbed once


def test_munmap_over_pte_none_records_nothing_and_skips_the_flush():
    """tlb_flush_mmu_tlbonly: returns early when zap_pte_range skipped only pte_none entries."""
    m = machine(populate=False)
    flushes = m.arch.flushes
    m.munmap(0, 2, 2)
    m.drain()
    assert hooks(m, "tlb_remove_tlb_entry") == []
    assert hooks(m, "tlb_flush_mmu_tlbonly") and not any(hooks(m, "tlb_flush_mmu_tlbonly"))
    assert m.arch.flushes == flushes
    assert not any("flush" in t and "hook" not in t for t in texts(m))


def test_munmap_over_present_ptes_records_and_flushes_the_range():
    """zap_pte_range / tlb_remove_tlb_entry: present PTEs are recorded under the PTL and flushed."""
    m = machine()
    m.munmap(0, 2, 2)
    m.drain()
    assert hooks(m, "tlb_remove_tlb_entry") == [(2, True), (3, True)]
    assert True in hooks(m, "tlb_flush_mmu_tlbonly")
    assert pos(m, "zap mm0:v3") < pos(m, "flush_tlb_range(mm0, v2..v3)")
    assert not m.tlbs.entries_for(0, 2) and not m.tlbs.entries_for(0, 3)


def test_munmap_frees_pages_only_after_the_flush():
    """tlb_flush_mmu: unhook, then invalidate, then free (free_pages_and_swap_cache after the flush)."""
    m = machine(ncpus=3)  # CPU0 and CPU2 run mm0 and cache v0, v1
    a, b = m.frame_of(0, 0), m.frame_of(0, 1)
    m.munmap(0, 0, 2)
    m.drain()
    flush = pos(m, "flush_tlb_range(mm0, v0..v1)")
    assert pos(m, f"zap mm0:v0 [pfn{a}]") < pos(m, f"zap mm0:v1 [pfn{b}]") < flush
    assert flush < pos(m, f"pfn{a} freed") and flush < pos(m, f"pfn{b} freed")
    assert m.mem.gathered[a] == m.mem.gathered[b] == 0
    assert not m.tlbs.refs[a] and not m.tlbs.refs[b]


def test_munmap_after_reclaim_flushes_through_flush_tlb_batched_pending():
    """Seed scenario 1: reclaim left only pte_none; munmap's flush_tlb_batched_pending still flushes."""
    m = machine()
    frame = m.frame_of(0, 2)
    rec = finish_hook(m, m.reclaim(1, (frame,)))  # mm0:v2 cleared, flush deferred; CPU0 still caches it
    past_rmap_walk(m, rec)  # munmap's free_pgtables waits for the walk; the flush stays deferred
    assert m.mms[0].ptes[2].kind == NONE and m.tlbs.entries_for(0, 2)
    n = len(m.trace.events)
    op = m.munmap(0, 2, 1)
    finish(m, op)  # munmap returns (S3 checked) while the reclaim is still in flight
    assert rec in m.ops
    assert hooks(m, "tlb_remove_tlb_entry") == []
    assert "flush_tlb_mm(mm0)" in texts(m)[n:]
    assert not any(t.startswith("flush_tlb_range") for t in texts(m)[n:])
    assert not m.tlbs.entries_for(0, 2)
    m.drain()


# -- mprotect: change_pte_range -------------------------------------------------------------------------

def test_mprotect_write_protects_under_ptl_and_flushes_before_return():
    """change_pte_range: PTL, flush_tlb_batched_pending, wrprotect + tlb_flush_pte_range; tlb_finish_mmu flushes."""
    m = machine(ncpus=3)  # CPU2 also caches mm0:v0, v1 writable and dirty
    assert m.tlbs.entries_for(0, 0)[-1][1].writable
    m.mprotect(0, 0, 2, False)
    m.drain()
    assert hooks(m, "flush_tlb_batched_pending")[0][0] == ("ptl(mm0,t0)",)
    assert hooks(m, "tlb_remove_tlb_entry") == [(0, True), (1, True)]
    flush = pos(m, "flush_tlb_range(mm0, v0..v1)")
    # the syscall's last message is its return, logged once (its S3 check follows it)
    assert texts(m).count("mprotect(mm0, v0..v1, RO): return") == 1
    assert pos(m, "wrprotect mm0:v1") < flush < pos(m, "mprotect(mm0, v0..v1, RO): return")
    for vp in (0, 1):
        pte = m.mms[0].ptes[vp]
        assert pte.kind == PRESENT and not pte.writable and pte.dirty
        assert not any(e.writable for _, e in m.tlbs.entries_for(0, vp))


def test_mprotect_of_an_already_writable_vma_changes_nothing():
    """``newflags == oldflags``: mm1's file0 mapping is RW already; its read-faulted PTEs stay
    read-only (the next write fault upgrades them) and nothing is flushed."""
    m = machine()
    flushes = m.arch.flushes
    m.mprotect(1, 0, 2, True)  # mm1: file0 RW mapping, read-faulted RO
    m.drain()
    assert m.arch.flushes == flushes and hooks(m, "tlb_remove_tlb_entry") == []
    assert not m.mms[1].ptes[0].writable


def test_mprotect_to_writable_upgrades_the_ptes_can_change_pte_writable_allows():
    """``MM_CP_TRY_CHANGE_WRITABLE`` (docs/model.md K7, modelled 2026-12-07): making a VMA
    writable again makes writable each present PTE of an exclusive anonymous folio (D kept)
    and each dirty one of a shared file, records it (x86 ``pte_needs_flush``: RW is
    flush-on-change) and flushes it at ``tlb_finish_mmu``; the next store takes no fault.
    A folio a fork shares (not ``PageAnonExclusive``) and a clean file PTE stay read-only
    for their write fault."""
    m = machine()
    for mm, start in ((0, 0), (1, 0)):
        finish(m, m.mprotect(0 if mm == 0 else 1, start, 2, False))
    m.mms[1].ptes[0].dirty = False  # file0:0 clean in mm1, file0:1 dirty (set by the test)
    m.mms[1].ptes[1].dirty = True
    n = len(m.trace.events)
    finish(m, m.mprotect(0, 0, 2, True))
    finish(m, m.mprotect(1, 0, 2, True))
    assert [m.mms[0].ptes[v].writable for v in (0, 1)] == [True, True]
    assert [m.mms[0].ptes[v].dirty for v in (0, 1)] == [True, True]
    assert [m.mms[1].ptes[v].writable for v in (0, 1)] == [False, True]
    assert hooks(m, "tlb_remove_tlb_entry")[-3:] == [(0, True), (1, True), (1, True)]
    assert pos(m, "mkwrite mm0:v1") < pos(m, "mprotect(mm0, v0..v1, RW): return")
    assert any(t.startswith("flush_tlb_") for t in texts(m)[n:])
    assert m.user_access(0, 0, True) == "wrote"  # no fault
    m.drain()
    finish(m, m.fork(0, 1))  # mm0's anonymous folios shared with the child: not exclusive
    finish(m, m.mprotect(0, 0, 2, False))
    finish(m, m.mprotect(0, 0, 2, True))
    assert not m.mms[0].ptes[0].writable


def test_mprotect_starting_in_a_hole_changes_nothing():
    """do_mprotect_pkey: ``vma->vm_start > start`` -> ENOMEM before the loop. Until 2026-12-05
    the model write-protected the VMA behind the hole (an oracle review): a state the
    kernel cannot reach, where a later store to v1 faulted."""
    m = machine()
    m.munmap(0, 0, 1)
    m.drain()
    op = m.mprotect(0, 0, 2, False)  # v0 is a hole now, v1 the rest of the anon RW VMA
    m.drain()
    assert op.result == "error" and "mprotect: ENOMEM" in texts(m)
    assert m.mms[0].find_vma(1).writable and m.mms[0].ptes[1].writable
    assert m.user_access(0, 1, True) == "wrote"


def test_mprotect_stops_at_a_hole_keeping_what_it_changed():
    """The kernel's loop changes the VMAs before the first hole, then returns ENOMEM; the
    syscall's S3 covers what it changed."""
    m = machine()
    m.munmap(0, 1, 1)
    m.drain()
    op = m.mprotect(0, 0, 4, False)  # v0 anon RW, v1 a hole, v2..v3 file RO
    m.drain()
    assert op.result == "error" and "mprotect: ENOMEM at v1" in texts(m)
    assert not m.mms[0].find_vma(0).writable and not m.mms[0].ptes[0].writable
    assert not any(e.writable for _, e in m.tlbs.entries_for(0, 0))


def test_mprotect_eacces_keeps_the_vmas_before_it_changed():
    """EACCES is decided VMA by VMA in the kernel's loop: a VMA before the one that may not
    become writable is made writable (until 2026-12-05 the model refused before any)."""
    m = machine()
    m.mprotect(0, 0, 2, False)
    m.drain()
    assert not m.mms[0].find_vma(0).writable
    op = m.mprotect(0, 0, 4, True)  # v0..v1 anon (VM_MAYWRITE), v2..v3 file RO (not)
    m.drain()
    assert op.result == "error" and "mprotect: EACCES at v2" in texts(m)
    assert m.mms[0].find_vma(0).writable and not m.mms[0].find_vma(2).writable


# -- PTL serialisation ------------------------------------------------------------------------------------

def _munmap_paused_in_ptl(m):
    """munmap(mm0:v0) paused inside flush_tlb_batched_pending, holding ptl(mm0,t0)."""
    _leave_mm0_pending(m)
    op = m.munmap(0, 0, 1)
    assert m.mms[0].ptls[0].owner is op
    assert m.mms[0].ptes[0].kind == PRESENT
    return op


def test_ops_on_the_same_page_table_do_not_interleave_inside_the_ptl():
    """Split PTL (pte_lockptr): reclaim of a PTE in table t0 waits while munmap holds ptl(mm0,t0)."""
    m = machine()
    mun = _munmap_paused_in_ptl(m)
    rec = m.reclaim(1, (m.frame_of(0, 1),))
    assert rec.blocked_on is m.mms[0].ptls[0] and not rec.runnable()
    assert m.mms[0].ptes[1].kind == PRESENT
    with pytest.raises(UsageError):
        m.advance(rec.id)
    while m.mms[0].ptls[0].owner is mun:
        m.advance(mun.id)
    assert rec.runnable()
    m.drain()
    assert pos(m, "zap mm0:v0") < pos(m, "ptep_get_and_clear(mm0:v1)")
    assert m.mms[0].ptes[1].kind == SWAP


def test_ops_on_different_page_tables_run_concurrently():
    """Split PTL: reclaim of a PTE in table t1 proceeds while munmap holds ptl(mm0,t0) (the 2021 race's premise)."""
    m = machine()
    mun = _munmap_paused_in_ptl(m)
    rec = m.reclaim(1, (m.frame_of(0, 2),))
    assert rec.blocked_on is None
    assert m.mms[0].ptes[2].kind == NONE  # cleared while munmap is inside ptl(mm0,t0)
    assert m.mms[0].ptls[0].owner is mun and mun in m.ops
    m.drain()
    assert pos(m, "ptep_get_and_clear(mm0:v2)") < pos(m, "zap mm0:v0")


# -- mmap ------------------------------------------------------------------------------------------------

def test_mmap_fixed_unmaps_the_old_mapping_first():
    """do_mmap(MAP_FIXED) -> mmap_region: the old range is zapped, flushed and freed before the new VMA."""
    m = machine()
    a = m.frame_of(0, 0)
    assert m.user_access(0, 0, True) == "wrote"
    m.mmap(0, 0, 2, None, True, True)
    m.drain()
    zap = pos(m, f"zap mm0:v0 [pfn{a}]")
    flush = pos(m, "flush_tlb_range(mm0, v0..v1)")
    region = pos(m, "hook(mmap_region")
    assert zap < flush < pos(m, f"pfn{a} freed") < region < pos(m, "mmap -> vma[0,2) anon rw")
    assert hooks(m, "mmap_region") == [((NONE, NONE), ())]
    assert m.user_access(0, 0, False) == "fault"
    m.drain()
    assert m.user_access(0, 0, False) == 0  # a fresh anonymous page


def test_mmap_without_fixed_unmaps_nothing():
    """get_unmapped_area: without MAP_FIXED a free range is chosen and nothing is zapped."""
    m = machine(vpages=6)  # mm0: anon v0-v2, file0 v3-v4, v5 free
    flushes = m.arch.flushes
    op = m.mmap(0, 0, 1, None, True, False)
    m.drain()
    assert op.result == 5
    assert not any(t.startswith("zap") for t in texts(m))
    assert m.arch.flushes == flushes
