"""``VM_FAULT_RETRY``: a fault's first try drops ``mmap_lock`` to wait for a folio lock or
read IO (docs/model.md section 11 item 20, fixed 2026-12-06).

Each test shows a writer of the mm running inside the wait, which the model before this
change kept out (the fault held ``mmap_read_lock`` across the wait), and the retry that
follows: it looks the VMA up again, under ``mmap_lock``, with ``FAULT_FLAG_TRIED``.
Since then: no task of a fork's child slot runs during the fork (item 21), and a fault
whose recheck finds its PTE changed, or that waited for a migration entry, returns to user
space, where the access restarts (item 22, ``REFAULT``); those tests say which.
"""
import pytest

from conformance.config import MachineConfig
from conformance.errors import UsageError
from conformance.machine import Machine
from conformance.mm.mm_types import MIGRATION, NONE, PRESENT, SWAP
from conformance.registry import load_protocol

LINUX = load_protocol("linux")
EMPTY = MachineConfig(ncpus=2, populate=False)


def finish(m, op):
    while op in m.ops:
        m.advance(op.id)


def advance_until_mmap_lock_dropped(m, op, mm):
    """Advance ``op`` (a fault of ``mm``) until it is in flight without ``mmap_lock``."""
    while mm.mmap_lock in op.held or op.blocked_on is not None and "mmap" in repr(op.blocked_on):
        m.advance(op.id)
    assert op in m.ops and mm.mmap_lock not in op.held


def both_retry_and_map(m, first, second, vpage, frame):
    """Run ``first`` (whose read holds ``frame`` locked) and then ``second`` (waiting for
    it) to their ends: each retried once, and mm0's ``vpage`` maps ``frame``."""
    finish(m, first)
    finish(m, second)
    assert first.result == "ok"
    assert m.trace.timeline(2).count("VM_FAULT_RETRY") == 2
    pte = m.mms[0].ptes[vpage]
    assert pte.kind == PRESENT and pte.frame == frame
    m.check_quiescent()


def swapped_out_v0():
    """mm0:v0 written, then swapped out by reclaim on CPU1: its PTE is a swap entry."""
    m = Machine(LINUX, EMPTY)
    m.user_access(0, 0, True)
    finish(m, m.ops[0])
    m.user_access(0, 0, True)
    finish(m, m.reclaim(1, (m.mms[0].ptes[0].frame,)))
    assert m.mms[0].ptes[0].kind == SWAP
    return m


def test_a_swap_in_read_drops_mmap_lock_and_munmap_runs_inside_it():
    """``do_swap_page``'s ``folio_lock_or_retry`` finds the folio locked by the read it
    started: ``mmap_lock`` dropped, so munmap takes it for writing while the read is in
    flight; the retry finds no VMA (SIGSEGV), and the folio read in is freed with its slot.

        CPU0 (fault v0)                         CPU1 (munmap v0)
        swapin_readahead (folio locked)
        folio_lock_or_retry: mmap_read_unlock
        (read IO in flight)                     mmap_write_lock, zap, unmap, unlock
        read ends: folio_unlock
        mmap_read_lock, find_vma: none -> SIGSEGV
    """
    m = swapped_out_v0()
    assert m.user_access(0, 0, False) == "fault"
    fault = m.ops[0]
    mm = m.mms[0]
    advance_until_mmap_lock_dropped(m, fault, mm)
    assert mm.mmap_lock.readers == 0 and m.mem.swap_cache
    m.switch_mm(1, 0)
    unmap = m.munmap(1, 0, 1)
    finish(m, unmap)
    assert fault in m.ops  # the munmap ran to its end inside the fault's wait
    finish(m, fault)
    assert fault.result == "segv"
    assert "VM_FAULT_RETRY" in m.trace.timeline(2)
    assert m.mem.swap_cache == {}
    assert sorted(m.mem.swap_free) == list(range(m.cfg.swap_slots))
    m.check_quiescent()


def test_a_swap_in_retries_and_maps_the_folio_it_read():
    """Without a writer in the wait, the retry finds the folio in the swap cache, locks it
    and maps it: one ``VM_FAULT_RETRY``, the data the page had."""
    m = swapped_out_v0()
    written = m.oracle.expected[m.mms[0].find_vma(0).location(0)]
    assert written == 1000000  # the write before the swap-out
    assert m.user_access(0, 0, False) == "fault"
    fault = m.ops[0]
    finish(m, fault)
    assert fault.result == "ok"
    assert m.trace.timeline(2).count("VM_FAULT_RETRY") == 1
    pte = m.mms[0].ptes[0]
    assert pte.kind == PRESENT and m.mem.swap_cache == {}
    assert m.mem.value[pte.frame] == written
    m.check_quiescent()


def test_a_swap_in_that_meets_a_locked_folio_waits_without_mmap_lock():
    """A second fault of the page meets the folio the first one's read holds locked:
    ``folio_lock_or_retry`` drops ``mmap_lock`` and waits for the unlock without taking
    the lock (``folio_wait_locked``); both retry, and the page is mapped once."""
    m = swapped_out_v0()
    m.switch_mm(1, 0)
    assert m.user_access(1, 0, False) == "fault"
    first = m.ops[0]
    advance_until_mmap_lock_dropped(m, first, m.mms[0])
    assert m.user_access(0, 0, True) == "fault"
    second = [op for op in m.ops if op is not first][0]
    advance_until_mmap_lock_dropped(m, second, m.mms[0])
    frame = m.mem.swap_cache[m.mms[0].ptes[0].slot]
    assert second.blocked_on is m.mem.folio_lock[frame]  # folio_wait_locked
    assert m.mem.folio_lock[frame] not in second.held
    assert m.mms[0].mmap_lock.readers == 0
    both_retry_and_map(m, first, second, 0, frame)


def test_a_file_read_in_drops_mmap_lock_and_munmap_runs_inside_it():
    """``filemap_fault`` on a page-cache miss: ``do_sync_mmap_readahead`` drops
    ``mmap_lock`` (``maybe_unlock_mmap_for_io``) before the read; a munmap of the VMA runs
    to its end inside the read, and the retry finds no VMA: SIGSEGV, with the page read
    in left in the page cache, unmapped."""
    m = Machine(LINUX, EMPTY)
    vma = m.mms[0].find_vma(2)
    assert not vma.is_anon
    assert m.user_access(0, 2, False) == "fault"
    fault = m.ops[0]
    advance_until_mmap_lock_dropped(m, fault, m.mms[0])
    assert m.mms[0].mmap_lock.readers == 0
    m.switch_mm(1, 0)
    finish(m, m.munmap(1, 2, 1))
    assert fault in m.ops
    finish(m, fault)
    assert fault.result == "segv"
    frame = m.mem.files[vma.file].cache[vma.pgoff]
    assert not m.mem.rmap[frame] and m.mem.folio_lock[frame].owner is None
    m.check_quiescent()


def test_a_file_fault_hit_on_a_locked_folio_drops_mmap_lock():
    """``lock_folio_maybe_drop_mmap``: the page is in the page cache but another fault's
    read holds its lock: the first try drops ``mmap_lock``, sleeps on the folio lock and
    takes it, unlocks it again and returns ``VM_FAULT_RETRY``; the retries map the page."""
    m = Machine(LINUX, EMPTY)
    m.switch_mm(1, 0)
    assert m.user_access(1, 2, False) == "fault"
    reader = m.ops[0]
    advance_until_mmap_lock_dropped(m, reader, m.mms[0])
    frame = m.mem.files[0].cache[0]
    assert m.mem.folio_lock[frame].owner is reader  # the read is in flight
    assert m.user_access(0, 2, False) == "fault"
    second = [op for op in m.ops if op is not reader][0]
    advance_until_mmap_lock_dropped(m, second, m.mms[0])
    assert second.blocked_on is m.mem.folio_lock[frame]
    both_retry_and_map(m, reader, second, 2, frame)


def test_a_shared_write_fault_drops_mmap_lock_after_it_made_the_pte_writable():
    """``fault_dirty_shared_page`` at the end of ``wp_page_shared``: the first try drops
    ``mmap_lock`` for ``balance_dirty_pages_ratelimited`` after the PTE became writable,
    and the fault is done (``VM_FAULT_COMPLETED``); a munmap of the page runs there, before
    ``handle_mm_fault``'s end, and the fault returns without unlocking ``mmap_lock`` again.

        CPU0 (write to v2, RO file PTE)         CPU1 (munmap v2)
        wp_page_shared: PTE writable
        fault_dirty_shared_page:
          folio_unlock, mmap_read_unlock
          balance_dirty_pages_ratelimited       mmap_write_lock, zap v2, unlock
        handle_mm_fault's end
    """
    m = Machine(LINUX, EMPTY)
    finish(m, m.mmap(0, 2, 2, 0, True, True))  # file0 shared and writable at v2..v3
    assert m.user_access(0, 2, False) == "fault"
    finish(m, m.ops[0])  # read fault (its first try read the page in): v2 RO
    pte = m.mms[0].ptes[2]
    assert pte.kind == PRESENT and not pte.writable
    assert m.user_access(0, 2, True) == "fault"
    fault = m.ops[0]
    advance_until_mmap_lock_dropped(m, fault, m.mms[0])
    assert pte.kind == PRESENT and pte.writable  # made writable before the drop
    m.switch_mm(1, 0)
    finish(m, m.munmap(1, 2, 1))
    assert fault in m.ops and pte.kind == NONE
    finish(m, fault)
    assert fault.result == "ok" and not fault.held  # VM_FAULT_COMPLETED
    # the first try ran under the VMA's lock (docs/model.md section 11 item 31): that is
    # the lock release_fault_lock drops
    assert "fault_dirty_shared_page: drops the VMA lock" in m.trace.timeline(2)
    assert "VM_FAULT_RETRY" not in m.trace.timeline(2).split("(write)")[-1]
    m.check_quiescent()


def test_no_fork_into_the_slot_of_an_mm_whose_task_is_mid_fault():
    """A fork's child slot is torn down first, as an exit would; the kernel tears down no
    mm whose task is in the kernel. Since a fault's first try drops ``mmap_lock`` for its
    read, nothing else kept the teardown out of it: the fork is refused, as an exit is."""
    m = Machine(LINUX, MachineConfig(ncpus=2, populate=False))
    m.switch_mm(1, 1)
    assert m.user_access(1, 2, False) == "fault"  # mm1's task faults on CPU1
    fault = m.ops[0]
    advance_until_mmap_lock_dropped(m, fault, m.mms[1])
    assert not m.can_fork_into(1)
    try:
        m.fork(0, 1)
    except UsageError as exc:
        assert "still in flight" in str(exc)
    else:
        raise AssertionError("fork into mm1 started while mm1's task faults")
    finish(m, fault)
    assert m.can_fork_into(1)
    finish(m, m.fork(0, 1))
    m.check_quiescent()


def test_no_task_of_a_fork_child_slot_enters_the_kernel_while_the_fork_runs():
    """docs/model.md section 11 item 21 (a review's interleaving, 2026-12-06): the fork's
    child slot has no task from the fork's start (its tenant exited, the child does not
    run before dup_mmap returns), as an exiting mm has none::

        CPU2 (mm0)             CPU0 (mm0)                 CPU1 (mm1)
        fault(mm0:v0)
          lock_vma_under_rcu
                               fork(mm0 -> mm1)
                                 mmap_write_lock(mm0)
                                 vma_start_write(v0's VMA)
                                   waits
                                                          fault(mm1:v2)  <- refused now
                                                            drops mmap_lock (read IO)
                               ... tears mm1 down inside the fault's read ...

    Before the fix the fault of mm1 started, its first try dropped mm1's ``mmap_lock`` for
    the read, and the fork's teardown and copy ran inside it. Now the access is refused
    until the child is made, and then runs as the child's task."""
    m = Machine(LINUX, MachineConfig(ncpus=3, populate=False))
    m.switch_mm(2, 0)
    assert m.user_access(2, 0, True) == "fault"  # mm0's task faults on CPU2
    fault = m.ops[0]
    assert fault.held == [m.mms[0].vmas[0]]  # its VMA's read lock (docs/model.md item 31)
    fork = m.fork(0, 1)
    # dup_mmap write-locks the parent's VMAs: it waits behind the fault's read lock (with
    # mmap_lock held for write, as it waited for mmap_lock before per-VMA locks)
    assert "vm_lock of vma[0,2)" in repr(fork.blocked_on)
    assert m.tlbs.cpus[1].loaded_mm is m.mms[1]
    with pytest.raises(UsageError, match="replaced by a fork"):
        m.user_access(1, 2, False)
    with pytest.raises(UsageError, match="replaced by a fork"):
        m.mmap(1, 0, 1, None, True, False)
    with pytest.raises(UsageError, match="replaced by a fork"):
        m.exit_mmap(1)
    m.switch_mm(1, 0)
    with pytest.raises(UsageError, match="replaced by a fork"):
        m.switch_mm(1, 1)  # no task of the slot to switch to either
    assert not m.can_fork_into(1) and not m.can_exit(1)
    finish(m, fault)
    finish(m, fork)
    assert not m.mms[1].exiting
    m.switch_mm(1, 1)
    assert m.user_access(1, 2, False) == "fault"  # the child's task, from the fork's end
    m.drain()
    m.check_quiescent()


def test_a_sleeper_on_a_fork_child_slot_cpu_is_switched_in_from_the_old_tenant():
    """``finish_task_switch`` of a task that slept on a CPU whose loaded mm a fork then
    replaces: the idle task's lazy reference still holds the old tenant (``mmgrab``), so the
    hook runs for it, as before the fork set the slot's ``exiting`` (a review of item 21,
    2026-12-06: with the flag the call was skipped, as for a real exit). A file write is
    not a task of the slot's mm, so the fork does not wait for it."""
    calls = []

    class Rec(LINUX):
        name = "linux_fts_rec"

        def finish_task_switch(self, task, mm):
            calls.append((getattr(task, "label", task), mm.id))

    m = Machine(Rec, MachineConfig(ncpus=3))
    assert m.tlbs.cpus[1].loaded_mm is m.mms[1]
    frame = m.frame_of(1, 0)
    r = m.reclaim(2, (frame,))
    lock = m.mem.folio_lock[frame]
    while lock.owner is not r:
        m.advance(r.id)
    w = m.write(1, 0, 0)
    assert w.blocked_on is lock  # sleeps on CPU1, whose loaded mm is mm1
    fork = m.fork(0, 1)
    assert m.mms[1].exiting
    finish(m, r)
    while w in m.ops:
        m.advance(w.id if w.runnable() else fork.id)
    m.drain()
    m.check_quiescent()
    assert ("write(file0:0)", 1) in calls


def test_a_migration_wait_returns_to_user_space_and_munmap_runs_before_the_refault():
    """docs/model.md section 11 item 22: ``migration_entry_wait`` waits under
    ``mmap_lock``, then ``handle_mm_fault`` returns 0; ``do_user_addr_fault`` unlocks and
    the restarted access faults again (a new first try)::

        CPU0 (fault v0)                  CPU2 (migration of v0's folio)   CPU1 (munmap v0)
                                         PTE -> migration entry
        migration_entry_wait
                                         remove_migration_ptes, done
        return 0, mmap_read_unlock
                                                                          munmap v0
        the access restarts: #PF
        find_vma: none -> SIGSEGV

    The model before went on at once under the same ``mmap_lock``, so the munmap waited
    for the fault, which mapped the new folio. Since 20:40 the fault ends at its return 0
    and the restarted access is the next user access."""
    m = Machine(LINUX, MachineConfig(ncpus=3))
    m.switch_mm(1, 0)
    mm = m.mms[0]
    mig = m.migrate(2, (m.frame_of(0, 0),))
    while mm.ptes[0].kind != MIGRATION:
        m.advance(mig.id)
    fault = m.fault(0, 0, False)
    assert fault.blocked_on is not None and "mmap" not in repr(fault.blocked_on)
    finish(m, mig)
    m.advance(fault.id)  # woken: handle_mm_fault returns 0, mmap_read_unlock
    assert fault not in m.ops and fault.result == "restart" and not fault.held
    assert "returns 0, the access restarts" in m.trace.timeline(3)
    finish(m, m.munmap(1, 0, 1))
    assert m.user_access(0, 0, False) == "fault"  # the restarted access
    m.drain()  # its fault finds no VMA at its first step
    assert "fault mm0:v0 -> SIGSEGV" in m.trace.timeline(3)
    m.drain()
    m.check_quiescent()


def test_a_fault_that_lost_the_race_for_a_pte_returns_and_munmap_runs_before_its_refault():
    """``!pte_none`` after ``do_anonymous_page`` allocated its folio (a second fault of the
    same page won the race): the loser frees its folio and returns 0; ``mmap_lock`` is
    released before the restarted access faults again, so a munmap of the page runs in
    between and the new fault gets SIGSEGV. (The model before went on under the same lock:
    the munmap waited, and the loser's second look found the winner's PTE.)"""
    m = Machine(LINUX, MachineConfig(ncpus=3, populate=False))
    m.switch_mm(1, 0)
    m.switch_mm(2, 0)
    mm = m.mms[0]
    a = m.fault(0, 0, True)
    b = m.fault(1, 0, True)
    while "alloc_anon_folio" not in m.trace.timeline(3):
        m.advance(a.id)
    finish(m, b)  # b maps v0 first
    finish(m, a)
    assert a.result == "restart" and not a.held  # returned 0: in user space
    finish(m, m.munmap(2, 0, 1))
    assert m.user_access(0, 0, True) == "fault"  # the restarted access
    m.drain()
    assert b.result == "ok" and "fault mm0:v0 -> SIGSEGV" in m.trace.timeline(3)
    assert m.trace.timeline(3).count("returns 0, the access restarts") == 1
    m.drain()
    m.check_quiescent()


def test_a_cow_fault_that_lost_the_race_in_wp_page_copy_returns_and_its_access_restarts():
    """``wp_page_copy``'s ``!pte_same``: two write faults of a page a fork shares; the
    second copies first, so the first finds the PTE changed under the PTL, frees its copy
    and returns 0, and its restarted access finds the page writable (no second fault). The model before dropped that REFAULT on the floor in
    ``do_wp_page_anon`` (a review, 2026-12-06)."""
    m = Machine(LINUX, MachineConfig(ncpus=3))
    m.switch_mm(2, 0)
    m.switch_mm(1, 0)
    finish(m, m.fork(0, 1))
    mm = m.mms[0]
    assert mm.ptes[0].kind == PRESENT and not mm.ptes[0].writable
    a = m.fault(0, 0, True)
    while "wp_page_copy" not in m.trace.timeline(3):
        m.advance(a.id)
    b = m.fault(2, 0, True)
    finish(m, b)
    finish(m, a)
    assert mm.ptes[0].kind == PRESENT and mm.ptes[0].writable
    assert m.trace.timeline(3).count("returns 0, the access restarts") == 1
    assert a.result == "restart" and not a.held
    # the restarted store walks to the writable PTE b installed: no second fault
    assert m.user_access(0, 0, True) == "wrote" and not m.ops
    m.drain()
    m.check_quiescent()

