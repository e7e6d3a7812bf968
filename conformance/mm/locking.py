"""kernel/locking/rwsem.c, include/linux/mmap_lock.h (Linux 6.12): locks as mm takes them.

``spin_lock``/``folio_lock``, rw_semaphores, ``mmap_lock`` and the per-VMA locks
(``CONFIG_PER_VMA_LOCK``, include/linux/mm.h), the rmap locks
(``anon_vma->rwsem``, ``mapping->i_mmap_rwsem``: mm/rmap.c), ``invalidate_lock``
(include/linux/fs.h) and the PTE lock with its ``flush_tlb_batched_pending``
(``pte_offset_map_lock``, include/linux/mm.h).

Locks are real: an operation that wants a held lock yields with ``op.blocked_on`` set and
is not runnable until the lock is free. Lock order, as in the kernel: ``mmap_lock`` >
folio lock > PTL. Simplification: no lockdep; a wait is a yield (no sleeping queue, no
writer preference: a waiting writer does not hold new readers back).

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from .mm_types import RwSem
from .task import hook


class _ReadWant:
    __slots__ = ("sem",)

    def __init__(self, sem):
        self.sem = sem

    def can_take(self, op):
        return self.sem.writer is None

    def __repr__(self) -> str:
        return f"{self.sem.name} (read)"


class _WriteWant:
    __slots__ = ("sem",)

    def __init__(self, sem):
        self.sem = sem

    def can_take(self, op):
        return self.sem.writer is None and self.sem.readers == 0

    def __repr__(self) -> str:
        return f"{self.sem.name} (write)"


class _VmaWriteWant:
    """``vma_start_write``'s ``down_write(&vma->vm_lock)``: wait until no fault holds the
    VMA's read lock."""

    __slots__ = ("vma",)

    def __init__(self, vma):
        self.vma = vma

    def can_take(self, op):
        return self.vma.vm_readers == 0

    def __repr__(self) -> str:
        return f"vm_lock of {self.vma} (write)"


class LockingPaths:
    """The locking primitives the paths use, mixed into :class:`conformance.mm.Kernel`."""

    def lock(self, op, lk):
        """``spin_lock``/``folio_lock``: wait (yield) while held."""
        while lk.owner is not None:
            op.blocked_on = lk
            yield
        op.blocked_on = None
        lk.owner = op
        op.held.append(lk)

    @staticmethod
    def trylock(op, lk) -> bool:
        """``spin_trylock``/``folio_trylock``: take ``lk`` if it is free, never wait."""
        if lk.owner is not None:
            return False
        lk.owner = op
        op.held.append(lk)
        return True

    def unlock(self, op, lk) -> None:
        lk.owner = None
        op.held.remove(lk)

    def down_read(self, op, sem):
        """``down_read``: wait (yield) while a writer holds ``sem``."""
        while sem.writer is not None:
            op.blocked_on = _ReadWant(sem)
            yield
        op.blocked_on = None
        sem.readers += 1
        op.held.append(sem)

    def down_write(self, op, sem):
        """``down_write``: wait (yield) while anyone holds ``sem``."""
        while sem.writer is not None or sem.readers:
            op.blocked_on = _WriteWant(sem)
            yield
        op.blocked_on = None
        sem.writer = op
        op.held.append(sem)

    def up_read(self, op, sem) -> None:
        sem.readers -= 1
        op.held.remove(sem)

    def up_write(self, op, sem) -> None:
        sem.writer = None
        op.held.remove(sem)

    def rmap_lock(self, loc):
        """The lock an rmap walk of ``loc``'s folio takes: ``anon_vma->rwsem`` of an
        anonymous location's anon_vma, ``mapping->i_mmap_rwsem`` of a file (our stand-in for
        ``anon_vma_lock_read``/``i_mmap_lock_read`` in ``rmap_walk``, and for
        ``take_rmap_locks`` in mremap's ``move_page_tables``). None for a folio that has no
        such root any more (nothing can map it)."""
        if loc.__class__ is not tuple:
            return None
        key = (loc[0], self.mem.anon_root.get(loc[1], loc[1]) if loc[0] == "a" else loc[1])
        sem = self.mem.rmap_locks.get(key)
        if sem is None:
            sem = self.mem.rmap_locks[key] = RwSem(f"{'anon_vma' if loc[0] == 'a' else 'i_mmap'}"
                                                   f"({loc[0]}{loc[1]})")
        return sem

    def rmap_walk_lock(self, op, loc):
        """``rmap_walk``'s read lock on ``loc``'s anon_vma / i_mmap (may wait for mremap)."""
        sem = self.rmap_lock(loc)
        if sem is not None:
            yield from self.down_read(op, sem)
        return sem

    def rmap_walk_unlock(self, op, sem) -> None:
        if sem is not None:
            self.up_read(op, sem)

    def invalidate_lock(self, fid: int):
        """``mapping->invalidate_lock`` of ``file``: hole punching holds it for write
        (``filemap_invalidate_lock``), reading a page in holds it for read
        (``filemap_fault``'s ``filemap_invalidate_lock_shared`` when the page is not
        cached). Simplification: ``write()`` reads a page in under it too, where the kernel
        serializes ``write()`` and ``fallocate()`` by ``i_rwsem``."""
        key = ("inv", fid)
        sem = self.mem.rmap_locks.get(key)
        if sem is None:
            sem = self.mem.rmap_locks[key] = RwSem(f"invalidate_lock(file{fid})")
        return sem

    @staticmethod
    def lock_vma_under_rcu(op, mm, vpage: int):
        """``lock_vma_under_rcu`` (mm/memory.c) -> ``vma_start_read`` (include/linux/mm.h):
        the VMA at ``vpage`` read-locked, or None where the fault must take ``mmap_lock``
        instead (no VMA there, or the VMA is write-locked: ``vm_lock_seq == mm_lock_seq``,
        a writer of the mm has called :meth:`vma_start_write` on it and not yet released
        ``mmap_lock``). Never waits (``down_read_trylock``). The read lock is in
        ``op.held`` as the VMA itself until :meth:`vma_end_read`."""
        vma = mm.find_vma(vpage)
        if vma is None or vma.vm_write_locked:
            return None
        vma.vm_readers += 1
        op.held.append(vma)
        return vma

    @staticmethod
    def vma_end_read(op, vma) -> None:
        """``vma_end_read``: drop a fault's VMA read lock."""
        vma.vm_readers -= 1
        op.held.remove(vma)

    def vma_start_write(self, op, vma):
        """``vma_start_write`` (include/linux/mm.h), by a holder of ``mmap_lock`` for write
        about to change ``vma``: wait for the faults holding its read lock
        (``down_write(&vma->vm_lock)``), then mark it write-locked (``vm_lock_seq =
        mm_lock_seq``) so that a new fault falls back to ``mmap_lock`` (and waits behind the
        writer) until :meth:`vma_end_write_all`. A VMA already write-locked returns at once.
        Faults on the mm's *other* VMAs go on beside the writer::

            CPU0 (write fault, VMA B)             CPU1 (mprotect VMA A read-only)
            lock_vma_under_rcu(B)                 mmap_write_lock
            do_anonymous_page(B)                  vma_start_write(A), change_pte_range(A)
            set_pte_at                            tlb_finish_mmu
            vma_end_read(B)                       mmap_write_unlock
        """
        # marked before the wait: while a writer waits in down_write, a new reader's
        # down_read_trylock fails (RWSEM_FLAG_WAITERS is in RWSEM_READ_FAILED_MASK), so a
        # fault starting then falls back to mmap_lock as it does once vm_lock_seq is set
        vma.vm_write_locked = True
        while vma.vm_readers:
            op.blocked_on = _VmaWriteWant(vma)
            yield
        op.blocked_on = None

    def vma_start_write_range(self, op, mm, start: int, end: int):
        """:meth:`vma_start_write` of every VMA meeting [start, end), in address order:
        the VMAs a writer splits, changes or detaches there (``__split_vma`` write-locks
        the VMA it splits and its new part, ``vms_gather_munmap_vmas`` each detached
        VMA)."""
        for v in [v for v in mm.vmas if v.start < end and v.end > start]:
            yield from self.vma_start_write(op, v)

    @staticmethod
    def vma_end_write_all(mm) -> None:
        """``vma_end_write_all`` (``mm_lock_seq++``, in ``mmap_write_unlock`` and
        ``mmap_write_downgrade``): every VMA of the mm the writer write-locked is unlocked,
        those a munmap in flight detached too (no lookup finds them any more)."""
        for v in mm.vmas:
            v.vm_write_locked = False
        for v in mm.unlinking:
            v.vm_write_locked = False

    def mmap_read_lock(self, op, mm):
        return self.down_read(op, mm.mmap_lock)

    def mmap_write_lock(self, op, mm):
        """``mmap_write_lock``: ``down_write(&mm->mmap_lock)``. Faults holding a VMA's read
        lock go on beside the writer (per-VMA locks: :meth:`vma_start_write`)."""
        yield from self.down_write(op, mm.mmap_lock)
        w = self.m._w_beside
        if w is not None and any(v.vm_readers for v in mm.vmas):
            w[op.name] += 1  # coverage: a fault runs beside this writer

    def mmap_read_unlock(self, op, mm) -> None:
        self.up_read(op, mm.mmap_lock)

    @staticmethod
    def mmap_write_downgrade(op, mm) -> None:
        """``mmap_write_downgrade`` (``downgrade_write``): the writer becomes a reader
        without releasing the lock, so waiting readers may enter; never waits."""
        LockingPaths.vma_end_write_all(mm)
        sem = mm.mmap_lock
        sem.writer = None
        sem.readers += 1

    def mmap_write_unlock(self, op, mm) -> None:
        """``mmap_write_unlock``: :meth:`vma_end_write_all`, then ``up_write``."""
        self.vma_end_write_all(mm)
        self.up_write(op, mm.mmap_lock)

    def _lock_pte_table(self, op, mm, vpage: int):
        """``pte_offset_map_lock`` + ``flush_tlb_batched_pending(mm)``: every walker that
        changes PTEs starts so. Returns the PTL."""
        ptl = mm.ptl(vpage)
        yield from self.lock(op, ptl)
        yield from hook(self.proto.flush_tlb_batched_pending(op, mm))
        return ptl
