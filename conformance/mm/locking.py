"""kernel/locking/rwsem.c, include/linux/mmap_lock.h (Linux 6.12): locks as mm takes them.

``spin_lock``/``folio_lock``, rw_semaphores, ``mmap_lock``, the rmap locks
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

    def mmap_read_lock(self, op, mm):
        return self.down_read(op, mm.mmap_lock)

    def mmap_write_lock(self, op, mm):
        return self.down_write(op, mm.mmap_lock)

    def mmap_read_unlock(self, op, mm) -> None:
        self.up_read(op, mm.mmap_lock)

    @staticmethod
    def mmap_write_downgrade(op, mm) -> None:
        """``mmap_write_downgrade`` (``downgrade_write``): the writer becomes a reader
        without releasing the lock, so waiting readers may enter; never waits."""
        sem = mm.mmap_lock
        sem.writer = None
        sem.readers += 1

    def mmap_write_unlock(self, op, mm) -> None:
        self.up_write(op, mm.mmap_lock)

    def _lock_pte_table(self, op, mm, vpage: int):
        """``pte_offset_map_lock`` + ``flush_tlb_batched_pending(mm)``: every walker that
        changes PTEs starts so. Returns the PTL."""
        ptl = mm.ptl(vpage)
        yield from self.lock(op, ptl)
        yield from hook(self.proto.flush_tlb_batched_pending(op, mm))
        return ptl
