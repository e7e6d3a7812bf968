"""include/linux/mm_types.h, include/linux/pgtable.h (Linux 6.12): page tables, VMAs, mms and
the locks that guard them (the data; the code that takes the locks is :mod:`.locking`).

PTE kinds follow x86-64 Linux: a present PTE (``pte_present``), a swap entry
(``is_swap_pte``), a migration entry (``is_migration_entry``) or ``pte_none``.
PTEs are grouped in page-table pages of ``ptes_per_table`` entries, each with
its own split PTE lock (``pte_lockptr``, ``USE_SPLIT_PTE_PTLOCKS``).

Simplifications, stated here once:

* one level of page table (PTE tables), allocated where the kernel allocates them
  (``Mm.pte_alloc``) and freed by ``free_pgtables`` where no VMA shares them any more
  (``Mm.pmd_free``, which sets ``tlb->freed_tables``); PMD/PUD levels, THP and hugetlb are
  not modelled, so ``exit_mmap`` sets ``freed_tables`` itself, and the nested case of
  ``tlb_finish_mmu`` sets it for the full flush it forces;
* VMAs of one mm are a short sorted list, not a maple tree.
"""
from __future__ import annotations

from ..errors import ModelError

NONE, PRESENT, SWAP, MIGRATION = 0, 1, 2, 3
PTE_KIND_NAMES = ("none", "present", "swap", "migration")

#: ``VM_FAULT_RETRY``: a fault's first try dropped ``mmap_lock`` to wait for a folio lock
#: or read IO; ``do_user_addr_fault`` takes it again and retries (mm/memory/fault.py)
VM_FAULT_RETRY = "VM_FAULT_RETRY"
#: ``VM_FAULT_RETRY | VM_FAULT_MAJOR``: the same after the try started a read (a page
#: cache read-in, a swap-in): a retry after a first try under the VMA lock sets
#: ``FAULT_FLAG_TRIED`` for it (``do_user_addr_fault``), so it sleeps under ``mmap_lock``
VM_FAULT_RETRY_MAJOR = "VM_FAULT_RETRY|VM_FAULT_MAJOR"
#: ``VM_FAULT_COMPLETED``: the fault is done and a first try already dropped ``mmap_lock``
#: (``fault_dirty_shared_page``); ``do_user_addr_fault`` does not unlock it again
VM_FAULT_COMPLETED = "VM_FAULT_COMPLETED"
#: ``handle_mm_fault`` returned 0 with nothing done: a ``!pte_same`` / ``!pte_none`` recheck
#: found the PTE changed, or ``migration_entry_wait`` waited for a migration entry. The
#: kernel's ``do_user_addr_fault`` unlocks ``mmap_lock`` and returns, and the CPU restarts the
#: access; the model's fault ends there (not a kernel name: the kernel's 0)
REFAULT = "refault"


class Pte:
    """One page-table entry (``pte_t``).

    ``frame``: the PFN for present and migration entries (the migration source);
    ``slot``: the swap slot of a swap entry. ``writable``/``dirty``/``accessed``
    are ``_PAGE_RW``/``_PAGE_DIRTY``/``_PAGE_ACCESSED`` (a migration entry keeps
    the writable/dirty bits it replaced, like ``make_writable_migration_entry``
    and ``make_migration_entry_dirty``, simplified to plain copies; it keeps no
    accessed bit, so ``remove_migration_pte`` restores every PTE old, where the
    kernel's ``make_migration_entry_young`` keeps A where the arch can: docs/model.md P4).

    ``inst`` is the PTE's *instance* (oracle bookkeeping, not a kernel field): every
    ``set_pte_at`` of a new mapping (a fault install, ``remove_migration_ptes``, a
    ``move_ptes`` destination, populate) gets a fresh number from
    ``Machine.new_pte_inst``, increasing over the run; changing bits of a live PTE
    (write-protect, ``do_wp_page``, ``folio_mkclean``, MADV_FREE's mkold/mkclean, the
    lazyfree restore of ``pteval``) keeps it. TLB entries record the instance they were
    filled from, so S3 asks *which* PTE an entry came from (docs/oracle.md section 2).
    """

    __slots__ = ("kind", "frame", "writable", "dirty", "accessed", "slot", "inst")

    def __init__(self) -> None:
        self.kind = NONE
        self.frame = -1
        self.writable = False
        self.dirty = False
        self.accessed = False
        self.slot = -1
        self.inst = 0

    def clear(self) -> None:
        """``pte_clear``."""
        self.kind = NONE
        self.frame = -1
        self.writable = self.dirty = self.accessed = False
        self.slot = -1
        self.inst = 0

    def set_present(self, frame: int, writable: bool, dirty: bool, inst: int) -> None:
        """``set_pte_at(mk_pte(...))``; ``inst``: a new instance, or the one a re-set keeps."""
        self.kind = PRESENT
        self.frame = frame
        self.writable = writable
        self.dirty = dirty
        self.accessed = False
        self.slot = -1
        self.inst = inst

    def snapshot(self) -> "Pte":
        """The value ``ptep_get_and_clear`` returns (``pteval``)."""
        p = Pte()
        p.kind, p.frame, p.writable, p.dirty, p.accessed, p.slot, p.inst = (
            self.kind, self.frame, self.writable, self.dirty, self.accessed, self.slot, self.inst)
        return p

    def __repr__(self) -> str:
        if self.kind == PRESENT:
            return f"pte(pfn={self.frame}{' W' if self.writable else ' RO'}{' D' if self.dirty else ''})"
        if self.kind == SWAP:
            return f"pte(swap:{self.slot})"
        if self.kind == MIGRATION:
            return f"pte(migration:{self.frame})"
        return "pte_none"


class Lock:
    """A spinlock (the PTL, ``pte_lockptr``): a waiter spins on its CPU and never schedules.
    ``owner`` is the holding operation."""

    __slots__ = ("name", "owner")

    def __init__(self, name: str) -> None:
        self.name = name
        self.owner = None

    def can_take(self, op) -> bool:
        return self.owner is None

    def __repr__(self) -> str:
        return self.name


class SleepLock(Lock):
    """A lock whose waiter sleeps: the folio lock (``folio_lock`` -> ``__folio_lock``,
    ``folio_wait_bit_common``: ``io_schedule``). ``Machine._step`` tells it from a
    :class:`Lock` by class: a user task that waited for it was switched out
    (``finish_task_switch``)."""

    __slots__ = ()


class RwSem:
    """``mmap_lock``: an rw_semaphore (``mmap_read_lock``/``mmap_write_lock``)."""

    __slots__ = ("name", "readers", "writer")

    def __init__(self, name: str) -> None:
        self.name = name
        self.readers = 0
        self.writer = None

    def __repr__(self) -> str:
        return self.name


class Vma:
    """A ``vm_area_struct``: [start, end) in virtual pages.

    ``anon_id`` names the anonymous memory (our ``anon_vma``) so that locations
    survive a VMA split by mprotect; ``pgoff`` is ``vm_pgoff`` (for anonymous
    memory the page the VMA was created at); ``file``/``pgoff`` name a shared file
    mapping (``VM_SHARED``); ``maywrite`` is ``VM_MAYWRITE`` (the file was opened
    for writing). ``proto`` is the slot protocols may use for per-VMA flags
    (LUF's deferred-flush flag).

    The per-VMA lock (``CONFIG_PER_VMA_LOCK``, Linux 6.4+): ``vm_readers`` counts the faults
    holding its read lock (``vma->vm_lock`` taken by ``vma_start_read``), and
    ``vm_write_locked`` is ``vma->vm_lock_seq == mm->mm_lock_seq``: a holder of ``mmap_lock``
    for write has called ``vma_start_write`` on it (conformance/mm/locking.py). A copy
    (:meth:`split_copy`, :meth:`moved_copy`) keeps the write lock of the VMA it copies, as
    ``__split_vma`` and ``copy_vma``'s ``vma_link`` write-lock the new VMA, and has no
    readers.

    ``anon_vma`` is ``vma->anon_vma != NULL``: the first anonymous fault attached one
    (``__anon_vma_prepare``; ``anon_id`` names it from the VMA's birth, so that locations
    are stable), copies keep it (``__split_vma``, ``copy_vma``, ``anon_vma_fork``).
    """

    __slots__ = ("start", "end", "anon_id", "file", "pgoff", "writable", "maywrite", "proto",
                 "vm_readers", "vm_write_locked", "anon_vma")

    def __init__(self, start, end, anon_id, file, pgoff, writable, maywrite):
        self.start = start
        self.end = end
        self.anon_id = anon_id
        self.file = file
        self.pgoff = pgoff
        self.writable = writable
        self.maywrite = maywrite
        self.proto = None
        self.vm_readers = 0
        self.vm_write_locked = False
        self.anon_vma = False

    @property
    def is_anon(self) -> bool:
        return self.file is None

    def location(self, vpage: int):
        """The location a user address means: ('a', anon_id, index) or ('f', file, pgoff).

        ``index`` is ``linear_page_index``: an anonymous VMA's ``pgoff`` is the page it
        was created at (``vm_pgoff = addr >> PAGE_SHIFT``) and mremap keeps it, so a
        moved page keeps its location (and its expected value)."""
        if self.file is None:
            return ("a", self.anon_id, self.pgoff + vpage - self.start)
        return ("f", self.file, self.pgoff + vpage - self.start)

    def vpage_of(self, loc):
        """The address in this VMA that maps ``loc``, or None (the rmap walk's ``vma_address``)."""
        if (self.anon_id if loc[0] == "a" else self.file) != loc[1]:
            return None
        vp = self.start + loc[2] - self.pgoff
        return vp if self.start <= vp < self.end else None

    def split_copy(self, start: int, end: int) -> "Vma":
        """``__split_vma``: a copy covering [start, end) (protocol slot copied too)."""
        v = Vma(start, end, self.anon_id, self.file, self.pgoff + start - self.start,
                self.writable, self.maywrite)
        v.proto = self.proto
        v.vm_write_locked = self.vm_write_locked
        v.anon_vma = self.anon_vma
        return v

    def moved_copy(self, new_start: int) -> "Vma":
        """``copy_vma`` for mremap: the same memory (``vm_pgoff`` kept) at ``new_start``."""
        v = Vma(new_start, new_start + self.end - self.start, self.anon_id, self.file,
                self.pgoff, self.writable, self.maywrite)
        v.proto = self.proto
        v.vm_write_locked = self.vm_write_locked
        v.anon_vma = self.anon_vma
        return v

    def __repr__(self) -> str:
        kind = "anon" if self.file is None else f"file{self.file}@{self.pgoff}"
        return f"vma[{self.start},{self.end}) {kind} {'rw' if self.writable else 'ro'}"


class Mm:
    """An ``mm_struct``: PTEs, VMAs, ``mmap_lock``, split PTLs and ``tlb_gen``.

    ``tlb_gen`` is x86's ``mm->context.tlb_gen``; ``tlb_flush_pending`` is the
    mmu_gather nesting counter (``inc_tlb_flush_pending``); ``proto`` is the
    protocol's per-mm state (``mm->tlb_flush_batched`` lives there).
    """

    __slots__ = ("id", "ptes", "vmas", "mmap_lock", "ptls", "ptes_per_table",
                 "tlb_gen", "tlb_flush_pending", "proto", "exiting", "unlinking", "pmds")

    def __init__(self, mm_id: int, vpages: int, ptes_per_table: int) -> None:
        self.id = mm_id
        self.ptes = [Pte() for _ in range(vpages)]
        self.vmas: list[Vma] = []
        self.mmap_lock = RwSem(f"mmap_lock(mm{mm_id})")
        self.ptes_per_table = ptes_per_table
        ntables = (vpages + ptes_per_table - 1) // ptes_per_table
        self.ptls = [Lock(f"ptl(mm{mm_id},t{t})") for t in range(ntables)]
        #: per page table: is it allocated (the PMD entry is not ``pmd_none``)? Set by
        #: :meth:`pte_alloc`, cleared by :meth:`pmd_free` (``free_pgtables``)
        self.pmds = [False] * ntables
        self.tlb_gen = 1
        self.tlb_flush_pending = 0
        self.proto = None
        self.exiting = False  # no task of the mm runs: exit_mmap, or a fork replacing the slot, in flight
        #: VMAs a munmap detached from the VMA tree that are still linked in the file's
        #: ``i_mmap`` and their ``anon_vma`` until its ``free_pgtables`` unlinks them, after
        #: the zap: rmap walks still find them (:meth:`rmap_vma`), lookups by address do not
        self.unlinking: list[Vma] = []

    def ptl(self, vpage: int) -> Lock:
        """``pte_lockptr``: the split PTL of the table holding ``vpage``."""
        return self.ptls[vpage // self.ptes_per_table]

    def pmd_none(self, vpage: int) -> bool:
        """``pmd_none(*pmd)``: ``vpage``'s range has no page table (never allocated, or freed
        by ``free_pgtables``). Every page-table walker that changes PTEs skips such a range
        without its PTL or a ``flush_tlb_batched_pending`` (``zap_pmd_range``,
        ``change_pmd_range``, ``move_page_tables``, ``walk_pmd_range``,
        ``copy_pmd_range``); the model walked it like any other, and the batched flush that
        walk made could hide a protocol's missing flush elsewhere (a fidelity review,
        2026-12-06)."""
        return not self.pmds[vpage // self.ptes_per_table]

    def pte_alloc(self, vpage: int) -> None:
        """``pte_alloc`` / ``__pte_alloc``: allocate ``vpage``'s page table if it has none
        (a fault's ``do_anonymous_page`` and ``finish_fault``, ``move_page_tables``'
        ``alloc_new_pmd``, ``copy_pte_range``'s ``pte_alloc_map_lock`` in the child,
        ``MAP_POPULATE`` at boot)."""
        self.pmds[vpage // self.ptes_per_table] = True

    def pmd_free(self, vpage: int) -> None:
        """``free_pte_range``: ``pmd_clear`` and ``pte_free_tlb`` of ``vpage``'s table, which
        :meth:`Kernel.free_pgtables` frees once no VMA shares it. Every PTE in it is
        ``pte_none`` by then (the unmap's zap cleared them, the VMAs left the rmap before,
        and no fault finds a VMA there); one that is not would be leaked by the kernel, and
        is a model error here."""
        n = self.ptes_per_table
        t = vpage // n
        left = [a for a in range(t * n, min(len(self.ptes), t * n + n)) if self.ptes[a].kind]
        if left:
            raise ModelError(f"{self}: free_pgtables of table {t} with PTEs at {left}")
        self.pmds[t] = False

    def find_vma(self, vpage: int):
        """``vma_lookup``."""
        for v in self.vmas:
            if v.start <= vpage < v.end:
                return v
        return None

    def rmap_vmas(self) -> list:
        """The VMAs an rmap walk (``i_mmap``, ``anon_vma``) finds in this mm: the tree's,
        then those a munmap in flight detached but has not unlinked yet (``unlinking``)."""
        return self.vmas + self.unlinking if self.unlinking else self.vmas

    def unlink_vma(self, vma) -> None:
        """Take ``vma`` out of the rmap (``free_pgtables``'s unlink): from ``unlinking`` if a
        munmap in flight detached it, else from the tree (``exit_mmap``'s VMAs)."""
        if any(v is vma for v in self.unlinking):
            self.unlinking = [v for v in self.unlinking if v is not vma]
        else:
            self.vmas = [v for v in self.vmas if v is not vma]

    def rmap_vma(self, vpage: int):
        """The VMA at ``vpage`` as an rmap walk sees it: :meth:`find_vma`, else one that a
        munmap in flight detached and has not unlinked yet (``free_pgtables``)."""
        vma = self.find_vma(vpage)
        if vma is None:
            for v in self.unlinking:
                if v.start <= vpage < v.end:
                    return v
        return vma

    def table_ranges(self, start: int, end: int):
        """Split [start, end) at page-table boundaries, as ``zap_pmd_range`` does."""
        out = []
        n = self.ptes_per_table
        a = start
        while a < end:
            b = min(end, (a // n + 1) * n)
            out.append((a, b))
            a = b
        return out

    def split_vmas(self, start: int, end: int) -> list[Vma]:
        """Split VMAs at start/end (``split_vma``) and return those inside [start, end)."""
        new: list[Vma] = []
        inside: list[Vma] = []
        for v in self.vmas:
            if v.end <= start or v.start >= end:
                new.append(v)
                continue
            if v.start < start:
                new.append(v.split_copy(v.start, start))
            mid = v.split_copy(max(v.start, start), min(v.end, end))
            new.append(mid)
            inside.append(mid)
            if v.end > end:
                new.append(v.split_copy(end, v.end))
        self.vmas = new
        return inside

    def __repr__(self) -> str:
        return f"mm{self.id}"
