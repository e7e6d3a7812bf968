"""mm/mprotect.c (Linux 6.12): ``do_mprotect_pkey`` and ``change_pte_range``.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from .mm_types import MIGRATION, PRESENT
from ..protocol import MmuGather
from .task import hook


class MprotectPaths:
    """The paths of mm/mprotect.c, mixed into :class:`conformance.mm.Kernel`."""

    def mprotect(self, op, mm, start: int, npages: int, writable: bool):
        """``do_mprotect_pkey`` -> ``mprotect_fixup`` -> ``change_protection``.

        VMAs whose flags do not change are skipped (``newflags == oldflags``).
        For the others, per VMA: ``change_protection_range`` (``change_pte_range`` per
        page table, ``tlb_end_vma``; the kernel's ``tlb_start_vma`` only sets the gather's
        VMA flags and flushes caches, so it has no hook); ``change_pte_range``
        takes the PTL, calls ``flush_tlb_batched_pending`` and write-protects
        present PTEs, recording them with ``tlb_flush_pte_range``. Making a range
        writable (``MM_CP_TRY_CHANGE_WRITABLE``: ``vma_wants_manual_pte_write_upgrade``
        is true for a private writable VMA and for a shared file VMA of a filesystem with
        ``page_mkwrite``, whose ``vma_wants_writenotify`` holds; the model's files are
        such, and a shmem-like file whose ``vm_page_prot`` is writable is not modelled)
        makes writable each present PTE
        ``can_change_pte_writable`` allows, recording it too (since 2026-12-07; before, the
        next write fault upgraded it). ``tlb_finish_mmu`` at the end; S3 on return.
        Simplification: PROT_NONE is not modelled.

        Which VMAs are changed is ``do_mprotect_pkey``'s loop: ENOMEM with nothing changed
        when no VMA meets the range or the range starts in a hole (``vma->vm_start >
        start``); then VMA by VMA in address order, stopping at the first hole
        (``vma->vm_start != tmp``: ENOMEM) or the first VMA that may not become writable
        (EACCES), the VMAs before it changed, as they stay; ENOMEM too when the range runs
        past the last VMA (``tmp < end``). Until 2026-12-05 the model changed every VMA
        meeting the range and refused EACCES before changing any (an oracle review): a
        state the kernel cannot reach, an mprotect over a hole write-protecting the VMA
        behind it.
        """
        yield from self.mmap_write_lock(op, mm)
        end = start + npages
        inside = sorted((v for v in mm.vmas if v.start < end and v.end > start),
                        key=lambda v: v.start)
        if not inside or inside[0].start > start:
            self._error(op, mm, "mprotect: ENOMEM", True)
            return
        reached, error, tmp = [], None, inside[0].start
        for v in inside:  # for_each_vma_range(vmi, vma, end)
            if v.start != tmp:
                error = "ENOMEM"
                break
            if writable and not v.maywrite:  # (newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS
                error = "EACCES"
                break
            reached.append(v)
            tmp = min(v.end, end)
        if error is None and tmp < end:
            error = "ENOMEM"
        if not reached:  # EACCES at the first VMA
            # the kernel runs tlb_gather_mmu and tlb_finish_mmu around its loop all the same
            # (inc/dec_tlb_flush_pending, and tlb_finish_mmu's full flush when another gather
            # of the mm is in flight); the model calls no hook for a call that changed
            # nothing: one flush fewer, of nothing this call cleared
            self._error(op, mm, f"mprotect: {error}", True)
            return
        end = tmp  # what the loop changed: the syscall's S3 covers it, not the rest
        self._touch_range(op, mm, start, end)
        proto = self.proto
        tlb = MmuGather(op, mm, start, end, self._tlb_batch_pages_flush)
        self.m.call_hook(proto.tlb_gather_mmu, tlb)
        # mprotect_fixup, VMA by VMA: only a VMA whose protection changes is write-locked
        # (vma_start_write, __split_vma's too) and split (vma_modify_flags), when the loop
        # reaches it; a fault on a VMA the loop has not reached yet, or on one it leaves
        # unchanged, runs beside it under its own VMA lock
        for v in [v for v in reached if v.writable != writable]:
            lo, hi = max(v.start, start), min(v.end, end)
            yield from self.vma_start_write_range(op, mm, lo, hi)
            for vma in mm.split_vmas(lo, hi):
                vma.writable = writable
                yield from hook(proto.mprotect_fixup(op, mm, vma))
                for a, b in mm.table_ranges(vma.start, vma.end):
                    yield from self.change_pte_range(op, tlb, mm, vma, a, b, writable)
                yield from hook(proto.tlb_end_vma(tlb, vma))
        yield from hook(proto.tlb_finish_mmu(tlb))
        if error is not None:  # after tlb_finish_mmu, the VMAs before the stop changed
            self.trace.msg(op, "mprotect: %s at v%d", error, end)  # the first page not changed
            op.result = "error"
        self.mmap_write_unlock(op, mm)
        self.m.log_return(op)
        if not writable:
            self.oracle.check_s3(op, mm, start, end, "mprotect")

    def change_pte_range(self, op, tlb, mm, vma, start: int, end: int, writable: bool):
        """``change_pte_range`` for one page-table page; ``change_pmd_range`` skips a range
        with no table (``pmd_none``: no PTL, no ``flush_tlb_batched_pending``).

        Each PTE whose write permission changes is recorded (``tlb_flush_pte_range``): x86's
        ``pte_needs_flush`` has ``_PAGE_RW`` in ``flush_on_change``, so an upgrade is
        flushed at ``tlb_finish_mmu`` as a write-protect is."""
        proto = self.proto
        if mm.pmd_none(start):
            return
        ptl = yield from self._lock_pte_table(op, mm, start)
        if writable:
            for vpage in range(start, end):
                pte = mm.ptes[vpage]
                if pte.kind == PRESENT and not pte.writable and \
                        self.can_change_pte_writable(vma, pte):
                    pte.writable = True  # pte_mkwrite: D stays as it was
                    op.touched_frames[pte.frame] = None
                    self.m.call_hook(proto.tlb_remove_tlb_entry, tlb, vpage)
                    self.trace.msg(op, "mkwrite mm%d:v%d", mm.id, vpage)
        else:
            for vpage in range(start, end):
                pte = mm.ptes[vpage]
                if pte.kind == PRESENT and pte.writable:
                    pte.writable = False  # ptep_modify_prot_start/commit keep D
                    op.touched_frames[pte.frame] = None
                    self.m.call_hook(proto.tlb_remove_tlb_entry, tlb, vpage)  # tlb_flush_pte_range
                    self.trace.msg(op, "wrprotect mm%d:v%d", mm.id, vpage)
                elif pte.kind == MIGRATION:
                    pte.writable = False  # make_readable_migration_entry
        self.unlock(op, ptl)
        yield

    def can_change_pte_writable(self, vma, pte) -> bool:
        """``can_change_pte_writable`` (mm/mprotect.c) for a present PTE of a VMA being made
        writable: a private (anonymous) one if its folio is ``PageAnonExclusive`` (no fork
        shares it: :data:`PhysMem.cow` clear), a shared file one if it is dirty ("clean"
        may mean the file system still needs its write fault: ``page_mkwrite``).
        Soft-dirty and userfaultfd write-protect tracking are not modelled. An anonymous
        page only read so far is an exclusive folio here (no zero page, docs/model.md K1:
        the ``mm_forbids_zeropage`` kernel), so it is made writable too."""
        if vma.is_anon:
            return not self.mem.cow[pte.frame]
        return pte.dirty
