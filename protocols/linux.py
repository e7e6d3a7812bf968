"""Mainline since 5.17: batched unmap flush with pending/flushed generations.

Source: mm/rmap.c (``should_defer_flush``, ``set_tlb_ubc_flush_pending``,
``try_to_unmap_flush``, ``try_to_unmap_flush_dirty``,
``flush_tlb_batched_pending``) after 5ee2fa2f0636 "mm/rmap: fix potential
batched TLB flush race" (Huang Ying, v5.17), with 4d4b6d66db63's
``pte_accessible`` early return (v6.4); x86 ``arch_tlbbatch_*``
(arch/x86/mm/tlb.c); the generic mmu_gather of
:class:`conformance.protocol.Protocol` (``tlb_flush_mmu_tlbonly`` with its early
return, flush before free and, via ``try_to_unmap_flush_dirty``, before IO).

Per mm: ``mm->tlb_flush_batched`` is an atomic packing a *pending* generation
(bits 0-14) and a *flushed* generation (bits 16-30). The width of the pending half is
the machine's ``MachineConfig.batch_gen_bits`` (15 by default, as mainline; 2 bits reach
the overflow reset at the third deferral: ``protocols/linux_gen_reset_zero.py``; the ``gen2``
config left the wide set on 2026-12-03, conformance/config.py).
"""
from conformance.hookpoints import atomic_section
from conformance.protocol import Protocol

TLB_FLUSH_BATCH_FLUSHED_SHIFT = 16
TLB_FLUSH_BATCH_PENDING_MASK = (1 << (TLB_FLUSH_BATCH_FLUSHED_SHIFT - 1)) - 1
TLB_FLUSH_BATCH_PENDING_LARGE = TLB_FLUSH_BATCH_PENDING_MASK // 2


class TlbUbc:
    """``struct tlbflush_unmap_batch``: ``arch`` (cpumask), ``flush_required``, ``writable``."""

    __slots__ = ("arch", "flush_required", "writable")

    def __init__(self, arch_batch) -> None:
        self.arch = arch_batch
        self.flush_required = False
        self.writable = False


class MmBatched:
    """Per-mm state: ``mm->tlb_flush_batched`` (an ``atomic_t``)."""

    __slots__ = ("tlb_flush_batched",)

    def __init__(self) -> None:
        self.tlb_flush_batched = 0


class Linux(Protocol):
    """Mainline batched unmap TLB flush (v5.17+)."""

    def __init__(self, arch, free_pages) -> None:
        super().__init__(arch, free_pages)
        self.set_batch_width(getattr(arch, "tlb_flush_batch_bits",
                                     TLB_FLUSH_BATCH_FLUSHED_SHIFT - 1))

    def set_batch_width(self, bits: int) -> None:
        """``TLB_FLUSH_BATCH_FLUSHED_SHIFT`` = ``bits + 1``, ``TLB_FLUSH_BATCH_PENDING_MASK``,
        ``TLB_FLUSH_BATCH_PENDING_LARGE`` for a pending half of ``bits`` bits (mm/rmap.c
        has 15; bit ``bits`` stays a guard bit between the halves)."""
        self.flushed_shift = bits + 1
        self.pending_mask = (1 << bits) - 1
        self.pending_large = self.pending_mask // 2

    def init_task(self, task):
        return TlbUbc(self.arch.new_batch())

    def init_mm(self, mm):
        return MmBatched()

    def should_defer_flush(self, task, mm) -> bool:
        """x86: defer iff another CPU has the mm loaded (``arch_tlbbatch_should_defer``)."""
        return self.arch.cpumask_any_but(self.arch.mm_cpumask(mm), task.cpu)

    def set_tlb_ubc_flush_pending(self, task, mm, pteval, vpage) -> None:
        """Add the mm's CPUs to the batch, then bump the *pending* generation."""
        if pteval.kind != 1:  # !pte_accessible(mm, pteval) (4d4b6d66db63)
            return
        ubc = task.tlb_ubc
        self.arch.arch_tlbbatch_add_pending(ubc.arch, mm, vpage)
        ubc.flush_required = True
        # barrier(); then atomic_inc, or the try_cmpxchg loop that resets the word when
        # pending grows large: one atomic read-modify-write. The block pauses at its entry,
        # after arch_tlbbatch_add_pending and before the read, and nothing can come between
        # the read and the store (read before the point, the store put back a value that
        # other CPUs' increments had passed: a flush_tlb_batched_pending could then see its
        # old value again and mark this deferral flushed without a flush, a false S3 that
        # the soundness campaign found, docs/SOUNDNESS.md).
        st = mm.proto
        with atomic_section():
            batch = st.tlb_flush_batched
            if (batch & self.pending_mask) > self.pending_large:
                # "Prevent `pending' from catching up with `flushed' because of overflow.
                # Reset `pending' and `flushed' to be 1 and 0 if `pending' becomes large."
                st.tlb_flush_batched = self.batch_reset(batch)
            else:
                st.tlb_flush_batched = batch + 1
        if pteval.dirty:
            ubc.writable = True

    def batch_reset(self, batch: int) -> int:
        """The value the cmpxchg writes when pending grew large: pending 1, flushed 0."""
        return 1

    def try_to_unmap_flush(self, task) -> None:
        """Flush the task's batch if anything is pending (never touches ``tlb_flush_batched``)."""
        ubc = task.tlb_ubc
        if not ubc.flush_required:
            return
        self.arch.arch_tlbbatch_flush(ubc.arch, task)
        ubc.flush_required = False
        ubc.writable = False

    def try_to_unmap_flush_dirty(self, task) -> None:
        """Flush only if a deferred PTE was dirty (a stale entry could write during IO)."""
        if task.tlb_ubc.writable:
            self.try_to_unmap_flush(task)

    def flush_tlb_batched_pending(self, task, mm):
        """If pending != flushed: ``flush_tlb_mm``, then cmpxchg flushed := pending.

        The cmpxchg fails if a new pending arrived during the flush, leaving the
        mm pending ("to avoid losing flushing"). The interleaving point between
        the flush and the cmpxchg is where the 2021 race lived.
        """
        st = mm.proto
        batch = st.tlb_flush_batched
        pending = batch & self.pending_mask
        flushed = batch >> self.flushed_shift
        if pending != flushed:
            self._arch_flush_tlb_batched_pending(task, mm)
            yield
            if st.tlb_flush_batched == batch:  # atomic_cmpxchg(&mm->tlb_flush_batched, batch, ...)
                st.tlb_flush_batched = pending | (pending << self.flushed_shift)

    def _arch_flush_tlb_batched_pending(self, task, mm) -> None:
        """x86 ``arch_flush_tlb_batched_pending(mm)``: ``flush_tlb_mm(mm)``."""
        self.arch.flush_tlb_mm(mm, task)


CORRECT = True  # meant to be correct: `flushcheck soundness` fuzzes it by default
