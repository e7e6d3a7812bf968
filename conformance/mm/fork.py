"""kernel/fork.c (Linux 6.12): ``dup_mmap``.

Its page-table copy is ``copy_pte_range`` (:mod:`conformance.mm.memory.copy`); the COW
faults it sets up are in :mod:`conformance.mm.memory.fault`.

Mixed into :class:`conformance.mm.Kernel`; each method names the kernel function
it models, and says where it simplifies it (summary in docs/model.md).
"""
from __future__ import annotations

from ..errors import ModelError
from .mm_types import NONE


class ForkPaths:
    """The paths of kernel/fork.c, mixed into :class:`conformance.mm.Kernel`."""

    def dup_mmap(self, op, mm, child):
        """``kernel_clone`` -> ``copy_mm`` -> ``dup_mm`` -> ``dup_mmap`` (kernel/fork.c; in
        mm/mmap.c since 2025): the task running ``mm`` forks; the child is mm slot ``child``.

        The model has a fixed set of mms, so the child *replaces* the slot's previous
        address space: that old tenant exits first (simplification: its teardown is
        :meth:`unmap_region` over every VMA under the fork's write lock, with
        ``exit_mmap``'s ``tlb_gather_mmu_fullmm``, the usual hooks, and its whole-mm
        flush at ``tlb_finish_mmu``); CPUs that had the slot loaded now run the child. The
        slot keeps its ``mm.proto`` and ``tlb_gen`` (a pending ``tlb_flush_batched``
        inherited from the old tenant only costs a flush). Until 2026-12-07 16:00 the
        teardown's gather was not fullmm, and its flush covered only the range it cleared:
        an entry of the old tenant whose PTE another path had cleared, its flush deferred,
        outside that range, survived into the child (a review). In the kernel the child is
        a new mm, whose new ``ctx_id`` makes x86 flush the ASID it is given
        (``choose_new_asid``), so no old entry survives; a protocol that defers a flush
        past the old mm's exit could fail here for an entry no kernel keeps.

        ``mmap_write_lock`` of both mms, in mm-id order (the kernel's child mm is new and
        unreachable, so its order does not matter there; here another task may hold the
        slot's lock). Per parent VMA, in address order: ``vma_start_write`` (waits for a
        fault holding its read lock; a fault on a VMA the loop has not reached yet runs
        beside the fork, as in 6.5+), ``vm_area_dup`` (flags, file, ``vm_pgoff`` and the
        protocol slot copied), an anonymous VMA gets its own ``anon_vma`` hanging off the
        parent's root (``anon_vma_fork``: a new location id, ``PhysMem.anon_root``; the
        child's locations start with the parent's values). ``copy_page_range`` runs only
        where ``vma_needs_copy``: an anonymous VMA with an ``anon_vma`` (shared file
        mappings have none and are faulted in by the child; an anonymous VMA never faulted
        has none yet, and the child gets no page table for it) -> :meth:`copy_pte_range`
        per page table. Simplification: the root ``anon_vma`` lock that ``anon_vma_fork`` takes for
        the link is held through each page table's copy, so no rmap walk (reclaim, migration)
        runs during it; in the kernel a walk may race the copy and find the folio mapped
        again afterwards (``shrink_folio_list``: ``folio_mapped`` -> activate), and the
        model's walk, which tracks mappings by (mm, address), would miss a mapping the
        child re-created in a slot it had already visited. Then ``mmap_write_unlock(child)``, ``flush_tlb_mm(oldmm)`` (the parent's
        CPUs drop the writable entries of the PTEs just write-protected),
        ``mmap_write_unlock(mm)``. Not a protocol hook: the flush is the kernel's own.

        From the fork's start to the child's unlock the slot has no task (``child.exiting``,
        as in ``exit_mmap``): the old tenant's last task has exited (its ``mm_users`` is 0)
        and the kernel's child does not run before ``dup_mmap`` returns, so no user access,
        syscall or fault of the slot starts meanwhile (``Machine.user_access``,
        ``Machine._task_mm``). Without it a fault of the slot started after the fork could
        drop ``mmap_lock`` for its read (``VM_FAULT_RETRY``) and the teardown run inside
        it (docs/model.md section 11 item 21).
        """
        if child is mm:
            raise ModelError("fork into the parent's own mm slot")
        child.exiting = True  # the old tenant is gone; the child runs from the unlock
        first, second = (mm, child) if mm.id < child.id else (child, mm)
        yield from self.mmap_write_lock(op, first)
        yield from self.mmap_write_lock(op, second)
        if child.vmas:  # the slot's previous tenant exits
            yield from self.unmap_region(op, child, 0, len(child.ptes), fullmm=True)
        mem = self.mem
        for vma in list(mm.vmas):
            # for_each_vma(vmi, mpnt) { vma_start_write(mpnt); ...: each parent VMA is
            # write-locked when the loop reaches it (fb49c455323f, 6.5+; 6.4.y's loop that
            # locked every VMA first was dropped from mainline in 946c6b59c56d), so a
            # fault on a VMA the loop has not reached runs beside the fork
            yield from self.vma_start_write(op, vma)
            new = vma.split_copy(vma.start, vma.end)  # vm_area_dup
            if vma.is_anon:  # anon_vma_fork
                new.anon_id = self.m.new_anon_id()
                mem.anon_root[new.anon_id] = mem.anon_root.get(vma.anon_id, vma.anon_id)
            child.vmas.append(new)
            child.vmas.sort(key=lambda v: v.start)
            self._touch_range(op, child, new.start, new.end)
            if not vma.is_anon or not vma.anon_vma:
                # !vma_needs_copy: no anon_vma (a shared file mapping, or an anonymous VMA
                # never faulted): nothing to copy, the child faults its pages in
                if vma.is_anon and any(mm.ptes[vp].kind != NONE
                                       for vp in range(vma.start, vma.end)):
                    raise ModelError(f"{vma} maps pages but has no anon_vma")
                continue
            # anon_vma_fork's anon_vma_lock_write(root), held here through each page
            # table's copy (see above)
            rl = self.rmap_lock(vma.location(vma.start))
            for a, b in mm.table_ranges(vma.start, vma.end):
                if mm.pmd_none(a):  # copy_pmd_range skips it: the child gets no table
                    continue
                child.pte_alloc(a)  # copy_pte_range's pte_alloc_map_lock
                yield from self.down_write(op, rl)
                yield from self.copy_pte_range(op, mm, vma, child, new, a, b)
                self.up_write(op, rl)
                yield  # cond_resched between page tables
        self.trace.msg(op, "dup_mmap(mm%d -> mm%d)", mm.id, child.id)
        # the child's unlock and the parent's flush are one step, with no point between
        # them: the kernel's child cannot run (or be faulted) before dup_mmap returns, and
        # a point here would let the child write-fault a COW copy while a parent store
        # through a writable entry still reaches the shared folio (Machine._fork_window_store
        # counts such a store for the child), a false C1 (an oracle review, 2026-12-05)
        child.exiting = False  # the child's task may run from here (on the slot's CPUs)
        self.mmap_write_unlock(op, child)
        self.arch.flush_tlb_mm(mm, op)  # flush_tlb_mm(oldmm)
        for f in list(mem.fork_copies):  # the window is closed: stores no longer reach the child
            rest = [c for c in mem.fork_copies[f] if c[0] is not op]
            if rest:
                mem.fork_copies[f] = rest
            else:
                del mem.fork_copies[f]
        self.mmap_write_unlock(op, mm)
        op.result = child.id
