"""The LUF (Lazy Unmap Flush) core shared by the ``luf_*`` protocol modules.

Byungchul Park's series (v10 2024-05 .. RFC v12 2025-02; kernel-notes section 4):
for a folio whose PTEs were all read-only, reclaim (``shrink_folio_list``) and
migration (``migrate_pages_batch``) do *not* flush before freeing it; the
pending flush travels with the freed page and is done when the page is taken
out of the allocator again (``luf_takeoff_*`` / ``try_to_unmap_flush_takeoff``).
Unmaps still go through ``set_tlb_ubc_flush_pending``, so ``mm->tlb_flush_batched``
shows pending and ``flush_tlb_batched_pending`` still flushes in zap/mprotect
(Byungchul's argument in the seed thread).

Modelled state (simplified from v10's per-page ``ugen`` and v12's ``luf_batch``
hash, which only make the bookkeeping cheaper, not the flush points different):

* per task, per folio being unmapped: a batch and a "read-only" flag
  (v12 ``tlb_ubc_ro`` folded into ``tlb_ubc_luf`` or ``tlb_ubc`` after the walk);
* ``self.pending[frame]``: the cpumask LUF still owes for that frame (the page's
  ugen/luf_key); flushed by :meth:`page_alloc` when the frame is handed out;
* :meth:`luf_flush_all` is ``luf_flush(0)``: flush every deferred batch ("give up LUF").

Subclasses choose the give-up points by overriding hooks.
"""
from conformance.hw.arch import TlbBatch
from conformance.hookpoints import atomic_section
from protocols.linux import Linux, TlbUbc


class LufUbc(TlbUbc):
    """``tlb_ubc`` plus the batch of the folio whose rmap walk is in progress."""

    __slots__ = ("folio", "folio_ro", "folio_ptes", "fault_installed")

    def __init__(self, arch_batch) -> None:
        super().__init__(arch_batch)
        self.folio = TlbBatch()
        self.folio_ro = True
        self.folio_ptes: list = []  # (mm, vpage) unmapped for the current folio
        self.fault_installed = False  # this fault task installed/upgraded a PTE (luf_v11_posted)


class LufBase(Linux):
    """Mainline batched flush plus LUF's deferral of read-only folios to allocation time."""

    #: Eligibility. v12 checks only ``pte_write`` (a dirty read-only PTE qualifies); the
    #: v10-era reading, favourable to LUF, also excludes dirty PTEs as the migrc RFC v2 did:
    #: a stale *dirty* writable TLB entry can only exist if the PTE is dirty, so that closes
    #: the race with an mprotect whose flush is still pending (docs/LUF.md, finding).
    LUF_DIRTY_OK = False

    #: Lazyfree folios (MADV_FREE: anonymous and ``!folio_test_swapbacked``). No posting
    #: excludes them (v10/v11 ``can_luf_folio``: zone-device, hugetlb, large folios; v12
    #: ``can_luf_init``: also DEBUG_PAGEALLOC/KASAN/init_on_free, then ``can_luf`` for any
    #: anon folio; none tests ``folio_test_swapbacked``), so ``try_to_unmap_one``'s discard
    #: branch frees them through the ``free_folios_luf`` batch with the flush deferred:
    #: True (as posted). False is the fix of docs/LUF.md ("the lazyfree finding"):
    #: ``can_luf`` is false for ``anon && !swapbacked``, the discard is flushed as mainline.
    LUF_LAZYFREE = True

    def __init__(self, arch, free_pages) -> None:
        super().__init__(arch, free_pages)
        self.pending: dict[int, int] = {}  # frame -> cpumask still owed (ugen / luf_key)

    def init_task(self, task):
        return LufUbc(self.arch.new_batch())

    # -- unmap side -----------------------------------------------------------
    def try_to_unmap_begin(self, task, frame, migration) -> None:
        """Start of the rmap walk of one folio (v12 ``can_luf_init``): empty per-folio batch,
        assume read-only; with ``LUF_LAZYFREE`` False a lazyfree folio starts as not LUF-able."""
        ubc = task.tlb_ubc
        ubc.folio.cpumask = 0
        ubc.folio_ro = self.LUF_LAZYFREE or migration or not self.folio_lazyfree(frame)
        ubc.folio_ptes = []

    def folio_lazyfree(self, frame) -> bool:
        """``folio_test_anon(folio) && !folio_test_swapbacked(folio)`` (MADV_FREE'd).

        The model passes protocols a frame number, not a folio, so this reads the folio
        flags of the machine's ``PhysMem`` through the allocator's owner (the kernel object
        whose ``free_frames`` is ``free_to_allocator``): ``PhysMem.lazyfree`` is the model's
        ``!PG_swapbacked`` of an anonymous folio (docs/model.md section 2)."""
        kernel = getattr(self.free_to_allocator, "__self__", None)
        mem = getattr(kernel, "mem", None)
        if mem is None:
            return False
        owner = mem.owner[frame]
        return isinstance(owner, tuple) and owner[0] == "a" and bool(mem.lazyfree[frame])

    def set_tlb_ubc_flush_pending(self, task, mm, pteval, vpage) -> None:
        """As mainline (``mm->tlb_flush_batched`` pending), but into the folio's batch."""
        if pteval.kind != 1:
            return
        ubc = task.tlb_ubc
        real = ubc.arch
        ubc.arch = ubc.folio  # arch_tlbbatch_add_pending into tlb_ubc_ro
        try:
            super().set_tlb_ubc_flush_pending(task, mm, pteval, vpage)
        finally:
            ubc.arch = real
        if pteval.writable or (pteval.dirty and not self.LUF_DIRTY_OK):
            ubc.folio_ro = False  # can_luf_fail: the folio goes to tlb_ubc and is flushed
        ubc.folio_ptes.append((mm, vpage))

    def try_to_unmap_end(self, task, frame, migration) -> None:
        """Fold the folio's batch: read-only -> owed by the frame (LUF), else -> ``tlb_ubc``."""
        ubc = task.tlb_ubc
        mask = ubc.folio.cpumask
        ubc.folio.cpumask = 0
        if not mask:
            return
        if ubc.folio_ro:
            self.pending[frame] = self.pending.get(frame, 0) | mask
            self.luf_deferred(task, frame, ubc.folio_ptes)
        else:
            ubc.arch.cpumask |= mask

    def luf_deferred(self, task, frame, ptes) -> None:
        """Hook for variants that record where LUF deferred a flush (per-VMA flag)."""

    # -- flushing ----------------------------------------------------------------
    def _flush_mask(self, mask: int, who) -> None:
        b = TlbBatch()
        b.cpumask = mask
        self.arch.arch_tlbbatch_flush(b, who)

    def page_alloc(self, task, frame) -> None:
        """``luf_takeoff_check_and_fold`` + ``try_to_unmap_flush_takeoff``: flush what the
        page still owes before anyone can use it."""
        mask = self.pending.pop(frame, 0)
        if mask:
            self._flush_mask(mask, task)

    def luf_flush_all(self, who) -> None:
        """``luf_flush(0)``: flush every batch LUF deferred ("give up LUF").

        One atomic section (:class:`conformance.hookpoints.atomic_section`): in the series a
        page's ``luf_key`` is marked done only after the flush that covers it, so an
        allocation between the fold and the flush still sees the page as owing and flushes
        for it (``luf_takeoff_check``). The model keeps no generations (``pending`` is a
        frame -> cpumask dict), so clearing it and flushing must not be split: split, the
        allocator would hand out a page whose flush is still to come, an S1 the series
        cannot have (seen as S1 in every LUF variant once hooks got automatic points).
        """
        if not self.pending:
            return
        with atomic_section():
            mask = 0
            for m in self.pending.values():
                mask |= m
            self.pending.clear()
            self._flush_mask(mask, who)
        self.luf_flushed()

    def luf_flushed(self) -> None:
        """Hook: every deferred flush has just been done."""
