"""Per-VMA locks (``CONFIG_PER_VMA_LOCK``, Linux 6.4+; docs/model.md section 11 item 31): a
fault runs under its VMA's read lock (``lock_vma_under_rcu``), a writer of the mm write-locks
only the VMAs it changes (``vma_start_write``), so the two meet only on a VMA they share.

The default machine: mm0 runs on CPU0, CPU2 (and CPU4 with five CPUs); its VMA A is
[v0, v2) anonymous (populated), B is [v2, v4) a read-only file mapping. A fault on v0 is held
inside the kernel, under A's lock, by a migration of v0's folio (``migration_entry_wait``).
"""
import pytest

from conformance.config import MachineConfig
from conformance.machine import Machine
from conformance.mm.locking import LockingPaths, _VmaWriteWant
from conformance.mm.mm_types import MIGRATION, PRESENT, Vma
from conformance.registry import load_protocol

LINUX = load_protocol("linux")


def fault_held_under_a(m):
    """CPU1 migrates v0's folio up to its migration entry; CPU0's write fault on v0 then
    waits for it (``migration_entry_wait``) holding A's read lock."""
    mg = m.migrate(1, (m.frame_of(0, 0),))
    while m.mms[0].ptes[0].kind != MIGRATION:
        m.advance(mg.id)
    f = m.fault(0, 0, True)
    assert f.blocked_on is not None and f in m.ops
    return f


def lines(m):
    return [t for _, _, t in m.trace.lines()]


def pre_6_4(monkeypatch):
    """The kernel before per-VMA locks: ``lock_vma_under_rcu`` never succeeds."""
    monkeypatch.setattr(LockingPaths, "lock_vma_under_rcu",
                        staticmethod(lambda op, mm, vpage: None))


@pytest.mark.parametrize("per_vma_lock", [True, False])
def test_a_munmap_of_another_vma_runs_beside_a_fault(monkeypatch, per_vma_lock):
    """munmap(B) takes ``mmap_lock`` for write and detaches B while the fault on A is in
    flight; without per-VMA locks the fault holds ``mmap_lock`` for read and the munmap
    waits for it (so the same check fails on the pre-6.4 model)."""
    if not per_vma_lock:
        pre_6_4(monkeypatch)
    m = Machine(LINUX)
    f = fault_held_under_a(m)
    assert any(h.__class__ is Vma for h in f.held) is per_vma_lock
    mu = m.munmap(2, 2, 2)
    ran_beside = mu.blocked_on is None and m.mms[0].find_vma(2) is None and f in m.ops
    assert ran_beside is per_vma_lock
    m.drain()
    m.check_quiescent()
    assert m.mms[0].find_vma(2) is None and m.mms[0].ptes[0].kind == PRESENT


def test_a_writer_waits_for_the_faults_of_its_vma_and_new_ones_take_mmap_lock():
    """mprotect(A) write-locks A and waits in ``vma_start_write`` for the fault holding
    A's read lock; meanwhile a fault on B runs to its end under B's lock (and a write to
    read-only B is a SIGSEGV there), and a new fault on A cannot take A's lock (the writer
    is marked) and waits for ``mmap_lock``."""
    m = Machine(LINUX, MachineConfig(ncpus=5))
    m.madvise(4, 2, 1, "dontneed")
    m.drain()
    f = fault_held_under_a(m)
    mp = m.mprotect(2, 0, 2, False)
    assert isinstance(mp.blocked_on, _VmaWriteWant) and mp.held == [m.mms[0].mmap_lock]
    fb = m.fault(4, 2, False)  # B: read fault of a file page
    while fb in m.ops:
        m.advance(fb.id)
    assert fb.result == "ok" and m.mms[0].ptes[2].kind == PRESENT
    assert isinstance(mp.blocked_on, _VmaWriteWant)  # still waiting for the fault on A
    # a write to read-only B: SIGSEGV under B's lock (6.10+), no wait for mmap_lock
    fs = m.fault(4, 3, True)
    assert fs not in m.ops and fs.result == "segv"
    fa = m.fault(4, 1, False)
    assert repr(fa.blocked_on) == "mmap_lock(mm0) (read)" and fa.held == []
    m.drain()
    m.check_quiescent()
    text = lines(m)
    # the fault on A ended before mprotect changed A, and the second fault on A after it
    assert (text.index("fault(mm0:v0,W): return (restart)") < text.index("wrprotect mm0:v0")
            < text.index("mprotect(mm0, v0..v1, RO): return")
            < text.index("fault(mm0:v1): return"))
    assert all(not v.vm_write_locked and v.vm_readers == 0 for v in m.mms[0].vmas)


def test_a_first_try_that_sleeps_drops_the_vma_lock_then_takes_mmap_lock():
    """A read fault of a file page that is not cached reads it in: its first try, under
    B's lock, drops that lock for the IO (``release_fault_lock``: ``vma_end_read``) and
    returns ``VM_FAULT_RETRY | VM_FAULT_MAJOR``; the fault goes on under ``mmap_lock`` with
    ``FAULT_FLAG_TRIED`` (a major fault's), so it drops nothing more."""
    m = Machine(LINUX, MachineConfig(populate=False))
    f = m.fault(0, 2, False)
    m.drain()
    m.check_quiescent()
    text = lines(m)
    assert f.result == "ok"
    order = [next(i for i, t in enumerate(text) if s in t) for s in (
        "do_sync_mmap_readahead: drops the VMA lock",
        "VM_FAULT_RETRY|VM_FAULT_MAJOR under the VMA lock, mmap_lock (FAULT_FLAG_TRIED)",
        "set_pte_at(mm0:v2")]
    assert order == sorted(order)
    assert not any("drops mmap_lock" in t for t in text)
    assert all(v.vm_readers == 0 for v in m.mms[0].vmas)


@pytest.mark.parametrize("prepared", [False, True])
def test_a_first_anonymous_fault_beside_a_writer_takes_mmap_lock(prepared):
    """``vmf_anon_prepare``: a VMA with no ``anon_vma`` yet needs ``mmap_read_trylock`` to
    attach one under the VMA lock alone; with a writer holding ``mmap_lock`` (mprotect of
    A, waiting for the fault held under A) the first fault of the new anonymous VMA C drops
    C's lock and waits for ``mmap_lock``. Once C has its anon_vma (an earlier fault, its
    page then zapped by MADV_DONTNEED), the same fault runs to its end beside the writer."""
    m = Machine(LINUX, MachineConfig(ncpus=5, populate=False))
    for op in (m.munmap(0, 2, 2), m.mmap(0, 2, 2, None, True, False)):  # C: [v2, v4) anon
        m.drain()
    c = m.mms[0].find_vma(2)
    assert c.is_anon and not c.anon_vma
    if prepared:
        m.fault(0, 2, True)
        m.drain()
        m.madvise(0, 2, 1, "dontneed")
        m.drain()
        assert c.anon_vma and m.mms[0].ptes[2].kind != PRESENT
    m.fault(0, 0, True)  # A's first page, so that a migration can hold a fault under A
    m.drain()
    fault_held_under_a(m)
    mp = m.mprotect(2, 0, 2, False)
    assert isinstance(mp.blocked_on, _VmaWriteWant)
    fc = m.fault(4, 2, True)
    if prepared:
        while fc in m.ops:
            m.advance(fc.id)
        assert fc.result == "ok"
    else:
        assert repr(fc.blocked_on) == "mmap_lock(mm0) (read)" and fc.held == []
        assert "vmf_anon_prepare: mmap_read_trylock failed, drops the VMA lock" in lines(m)
    m.drain()
    m.check_quiescent()
    assert m.mms[0].ptes[2].kind == PRESENT and c.anon_vma
