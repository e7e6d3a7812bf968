"""mm/mmap.c (Linux 6.12): ``do_mmap`` -> ``mmap_region`` and ``exit_mmap``.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from .mm_types import Vma
from ..protocol import MmuGather
from .mmu_gather import GATHER_FREES
from .task import hook


class MmapPaths:
    """The paths of mm/mmap.c, mixed into :class:`conformance.mm.Kernel`."""

    def mmap(self, op, mm, start: int, npages: int, file, writable: bool, maywrite: bool,
             fixed: bool, pgoff: int = 0):
        """``do_mmap`` -> ``mmap_region``; ``MAP_FIXED`` unmaps what is there first.

        Without MAP_FIXED the lowest free range is used (``get_unmapped_area``
        simplified to first fit). Simplification: adjacent VMAs are not merged.
        """
        yield from self.mmap_write_lock(op, mm)
        nv = len(mm.ptes)
        if not fixed:
            start = self._free_range(mm, npages)
            if start is None:
                self.trace.msg(op, "mmap: ENOMEM")
                op.result = "enomem"
                self.mmap_write_unlock(op, mm)
                return
        npages = min(npages, nv - start)
        if file is not None:
            npages = max(1, min(npages, len(self.mem.files[file].disk) - pgoff))
        end = start + npages
        if fixed:
            yield from self.unmap_region(op, mm, start, end)
        anon_id = None
        if file is None:
            anon_id = self.m.new_anon_id()
            pgoff = start  # vm_pgoff of anonymous memory: its first page
        vma = Vma(start, end, anon_id, file, pgoff, writable, maywrite)
        vma.proto = self.proto.init_vma(vma)
        yield from hook(self.proto.mmap_region(op, mm, vma))
        vma.vm_write_locked = True  # __mmap_region: vma_start_write before vma_iter_store
        mm.vmas.append(vma)
        mm.vmas.sort(key=lambda v: v.start)
        self._touch_range(op, mm, start, end)
        self.trace.msg(op, "mmap -> %r", vma)
        op.result = start
        self.mmap_write_unlock(op, mm)
        self.m.log_return(op)
        self.oracle.check_s3(op, mm, start, end, "mmap")

    def _free_range(self, mm, npages: int):
        nv = len(mm.ptes)
        for s in range(0, nv - npages + 1):
            if all(mm.find_vma(v) is None for v in range(s, s + npages)):
                return s
        return None

    def exit_mmap(self, op, mm):
        """``exit_mmap`` (mm/mmap.c, 6.x) of an mm whose last task exited, then ``exec``
        of a new program into the same mm slot.

        ``mmap_read_lock``; ``tlb_gather_mmu_fullmm`` (``tlb->fullmm``: ``tlb_end_vma``
        returns early, ``tlb_flush`` flushes the whole mm); ``unmap_vmas`` over every VMA
        (:meth:`zap_pte_range` per page table: a full gather batch still flushes and frees
        mid-walk); ``mmap_read_unlock``; ``mmap_write_lock``; :meth:`free_pgtables`
        (``unlink_anon_vmas``/``unlink_file_vma`` under the rmap locks, so it waits for an
        rmap walk in flight; after it no rmap walk finds the VMAs any more;
        page tables freed: ``tlb->freed_tables``, so x86 also flushes the CPUs in lazy TLB
        mode); ``tlb_finish_mmu``; ``remove_vma``; ``mmap_write_unlock``.

        Lazy TLB: the CPUs that had the mm loaded keep it loaded (``active_mm``) and keep
        their entries until a flush reaches them; the model sends every flush to them
        (simplification A2: x86 skips lazy CPUs unless tables are freed, so its mid-walk
        flushes of an exiting mm do not reach them; the model flushes more, never less).
        No task of the mm runs meanwhile (``Machine.exit_mmap`` refuses while one is in
        the kernel; user accesses and syscalls on an exiting mm are refused).

        Then a new program starts in the slot (``execve``: ``mm_alloc`` + the ELF and
        stack mappings), modelled as the boot layout's VMAs (fresh anon_vmas, nothing
        faulted in, the protocol's ``mmap_region`` hook for each) under the write lock.
        Simplification: the kernel's exec makes a new ``mm_struct`` (new ``ctx_id``, new
        protocol state); here the slot, its ``tlb_gen`` and ``mm.proto`` are kept, so a
        deferred flush still pending for the old mm stays pending for the new one (more
        flushing, never less), and an entry a protocol failed to flush stays visible.
        """
        from ..machine import boot_vmas  # the boot layout is the "program" exec starts
        mm.exiting = True  # mm_users is 0: no task of the mm runs from now on
        yield from self.mmap_read_lock(op, mm)
        vmas = list(mm.vmas)
        proto = self.proto
        self._touch_range(op, mm, 0, len(mm.ptes))
        for v in vmas:
            for vp in range(v.start, v.end):
                op.touched_locs[v.location(vp)] = None
        if vmas:
            tlb = MmuGather(op, mm, 0, len(mm.ptes), self._tlb_batch_pages_flush)
            tlb.fullmm = True  # tlb_gather_mmu_fullmm
            self.m.call_hook(proto.tlb_gather_mmu, tlb)
            for vma in vmas:  # unmap_vmas -> unmap_single_vma
                for a, b in mm.table_ranges(vma.start, vma.end):
                    yield from self.zap_pte_range(op, tlb, mm, vma, a, b)
                yield from hook(proto.tlb_end_vma(tlb, vma))
            self.mmap_read_unlock(op, mm)
            yield from self.mmap_write_lock(op, mm)
            yield from self.free_pgtables(op, mm, vmas, tlb)  # waits for rmap walks in flight
            tlb.freed_tables = True  # free_pgd_range frees the upper levels too (P2)
            yield from hook(proto.tlb_finish_mmu(tlb))
            if tlb.pages:
                raise self.m.left_by_hooks(op, GATHER_FREES, "tlb_finish_mmu left pages unfreed")
        else:
            self.mmap_read_unlock(op, mm)
            yield from self.mmap_write_lock(op, mm)
        self.trace.msg(op, "exit_mmap(mm%d)", mm.id)
        new = boot_vmas(self.m, mm)  # execve of the next program
        for vma in new:
            yield from hook(proto.mmap_region(op, mm, vma))
        mm.vmas = new
        mm.exiting = False
        self.trace.msg(op, "exec: mm%d %s", mm.id, new)
        self.mmap_write_unlock(op, mm)
