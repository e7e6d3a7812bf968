"""The protocol interface: the kernel's flush-policy functions, as overridable methods.

A protocol is a class whose methods are named as in the kernel. The simulated
kernel (:mod:`conformance.mm`) calls them at the points the kernel does;
they act on the machine only through ``self.arch`` (:class:`conformance.hw.arch.Arch`).

This base class is the *generic* kernel code that every protocol shares:
``include/asm-generic/tlb.h`` + ``mm/mmu_gather.c`` for the mmu_gather family,
and "never defer" for the batched-unmap API (``should_defer_flush`` false, as
without ``CONFIG_ARCH_WANT_BATCHED_UNMAP_TLB_FLUSH``). Reference protocols in
``protocols/`` subclass it.

Hooks whose kernel counterpart may be interleaved with other CPUs are marked "may
yield" below; the others must return without yielding. Inside a "may yield" hook the
interleaving points are automatic (:mod:`conformance.hookpoints`): between any two of
its effects (a flush or other change through ``self.arch``, a free, a store to
``mm.proto``, ``vma.proto`` or the protocol's own state) other CPUs may run, with no
``yield`` written. Such a hook may still be a generator: each ``yield`` is one more
point (linux's ``flush_tlb_batched_pending`` yields between its flush and its clear,
where the 2021 race lived).

Which path calls a hook: ``task.path`` ("reclaim", "migrate", "munmap", "mmap",
"mprotect", "madvise", "mremap", "fault", "write", "writeback", "truncate", "exit",
"fork": ``conformance.coverage.PATHS``; see :class:`conformance.mm.Op`) and, for mmu_gather hooks, ``tlb.path`` and
``tlb.advice`` (:class:`MmuGather`). Every hook, its call sites and what the reference
protocols do there: ``docs/PROTOCOLS.md``.

State: per task (``task.tlb_ubc``, made by :meth:`init_task`), per mm
(``mm.proto``, :meth:`init_mm`), per VMA (``vma.proto``, :meth:`init_vma`),
and anything per frame in the protocol's own containers.

Example, a variant that forgets the flush before freeing reclaimed pages::

    from protocols.linux import Linux

    class NoFlush(Linux):
        def try_to_unmap_flush(self, task):
            pass
"""
from __future__ import annotations


class MmuGather:
    """``struct mmu_gather`` (include/asm-generic/tlb.h).

    ``start``/``end`` is the range recorded by ``__tlb_adjust_range``;
    ``range_start``/``range_end`` the whole range the gather was opened for
    (what ``tlb_finish_mmu`` flushes when nested); ``pages`` the frames to free
    after the flush (``__tlb_remove_page``); ``delayed_rmap`` the (frame, mm, vpage)
    whose rmap removal waits for the flush (5df397dec7c4).

    ``path``: the kernel path that opened the gather (``task.path`` at
    ``tlb_gather_mmu``): "munmap" (``unmap_region``), "mmap" (``MAP_FIXED`` over a
    mapping), "mprotect" (``change_protection``), "mremap" (``do_vmi_munmap`` of the old
    range, after the moves), "truncate" (``zap_page_range_single``
    under ``unmap_mapping_range``), "exit" (``exit_mmap``, ``fullmm``), "fork"
    (``dup_mmap`` unmapping the child slot's previous tenant through ``unmap_region``),
    "madvise"; ``advice`` is then the
    madvise advice ("dontneed": ``zap_page_range_single``, "free":
    ``madvise_free_single_vma``, "cold", "pageout": ``madvise_cold_or_pageout_pte_range``),
    else None. ``pages`` is in the order the PTEs were zapped; the protocol orders the
    flush against their freeing in :meth:`Protocol.tlb_flush_mmu`.
    """

    __slots__ = ("task", "mm", "start", "end", "range_start", "range_end", "fullmm",
                 "need_flush_all", "freed_tables", "cleared_ptes", "pages",
                 "delayed_rmap", "proto", "free_pages", "path", "advice")

    def __init__(self, task, mm, start: int, end: int, free_pages) -> None:
        self.task = task
        self.mm = mm
        self.range_start = start
        self.range_end = end
        self.fullmm = False
        self.need_flush_all = False
        self.freed_tables = False
        self.pages: list[int] = []
        self.delayed_rmap: list = []
        self.proto = None
        self.free_pages = free_pages  # tlb_batch_pages_flush, provided by the kernel
        self.path = getattr(task, "path", None)  # who opened it: munmap, mprotect, ...
        self.advice = None  # madvise's advice when path == "madvise"
        self.reset_range()

    def reset_range(self) -> None:
        """``__tlb_reset_range`` (include/asm-generic/tlb.h): an empty range, and nothing
        cleared or freed since the last flush (``freed_tables``, ``cleared_ptes``).
        Simplified: the kernel's fullmm range is ``~0``; a fullmm flush here is
        ``flush_tlb_mm`` whatever the range says.

        Example::

            >>> t = MmuGather(None, None, 0, 4, None)
            >>> t.adjust_range(2); t.freed_tables = True; t.reset_range()
            >>> (t.start > t.end, t.freed_tables, t.cleared_ptes)
            (True, False, False)
        """
        self.start = 1 << 30
        self.end = 0
        self.freed_tables = False
        self.cleared_ptes = False

    def adjust_range(self, vpage: int) -> None:
        """``__tlb_adjust_range(tlb, addr, PAGE_SIZE)``."""
        if vpage < self.start:
            self.start = vpage
        if vpage + 1 > self.end:
            self.end = vpage + 1


class Protocol:
    """Generic kernel flush policy; subclass and override hooks to make a protocol."""

    #: set by the registry to the module name (``linux``, ``luf_v10``, ...)
    name = "base"

    #: ``migrate_pages_batch`` does ``try_to_unmap_flush()`` before the move phase
    #: (7e12beb8ca2a). False: a naive batching that flushes only after the copies and
    #: ``remove_migration_ptes``, just before the sources are freed (S2 at the copy).
    MIGRATE_FLUSH_BEFORE_COPY = True

    #: ``zap_pte_range`` on a dirty shared-file PTE: ``(force_flush, delay_rmap)``.
    #: ``(True, True)``: mainline since 5df397dec7c4 (flush under the PTL, rmap removed
    #: after it); ``(True, False)``: 1cf35d47712d..5df397dec7c4 (flush under the PTL,
    #: ``page_remove_rmap`` at zap time, before the flush); ``(False, False)``: the
    #: dirty-file reason of 1cf35d47712d reverted (no forced flush for it: the gather flushes
    #: at ``tlb_end_vma`` / ``tlb_finish_mmu``, after the PTL is dropped), and, as in the
    #: kernel before 1cf35d47712d, a gather batch that fills up is flushed after the PTL is
    #: dropped, not under it (``zap_pte_range``; docs/model.md section 11, item 7).
    ZAP_DIRTY_FILE_PTE = (True, True)

    #: madvise's free/cold/pageout walkers call ``flush_tlb_batched_pending`` again each
    #: time they re-take the PTL after dropping it to split a large folio (383c4613c67c).
    RECHECK_AFTER_RELOCK = True

    #: ``CONFIG_MMU_GATHER_MERGE_VMAS``, which x86, powerpc, s390 and loongarch select
    #: (1e9fdf21a433; x86's ``tlb_end_vma`` was an empty stub before it): True,
    #: ``tlb_end_vma`` does not flush, the gather's range grows across VMAs and
    #: ``tlb_finish_mmu`` (or a forced flush of ``zap_pte_range``) flushes it. False:
    #: asm-generic's default (arm64, riscv), a flush at every VMA boundary
    #: (``tlb_flush_mmu_tlbonly``). **True by default since 2026-12-07 15:00** (x86's; docs/
    #: model.md section 11 item 34: False, the model's only behaviour before, flushed more than
    #: x86, a miss). A protocol module may set False to be checked as on arm64.
    MMU_GATHER_MERGE_VMAS = True

    def __init__(self, arch, free_pages) -> None:
        self.arch = arch
        #: ``free_unref_folios`` of the page allocator: ``free_pages(frames)``
        self.free_to_allocator = free_pages

    # -- state ------------------------------------------------------------
    def init_mm(self, mm):
        """Per-mm protocol state (``mm.proto``), e.g. ``mm->tlb_flush_batched``."""
        return None

    def init_vma(self, vma):
        """Per-VMA protocol state (``vma.proto``), e.g. LUF's deferred-flush flag."""
        return None

    def init_task(self, task):
        """Per-task state (``task.tlb_ubc``): ``struct tlbflush_unmap_batch``."""
        return None

    # -- batched unmap flush (mm/rmap.c) -----------------------------------
    def init_tlb_ubc(self, task) -> None:
        """Start of every ``shrink_node``-level reclaim pass, nested ones included (must
        not yield). Mainline: nothing (Hugh Dickins, "mm: delete unnecessary and unsafe
        init_tlb_ubc()"); 4.3-4.7 reset ``current->tlb_ubc.flush_required = false`` in
        ``shrink_lruvec``/``shrink_node_memcg``, losing an outer pass's pending flush."""

    def should_defer_flush(self, task, mm) -> bool:
        """``should_defer_flush(mm, TTU_BATCH_FLUSH)``: defer this PTE's flush?"""
        return False

    def set_tlb_ubc_flush_pending(self, task, mm, pteval, vpage) -> None:
        """Record a deferred flush for a PTE just cleared by ``ptep_get_and_clear``. May yield."""
        raise NotImplementedError("set_tlb_ubc_flush_pending called but should_defer_flush is false")

    def try_to_unmap_flush(self, task) -> None:
        """Flush everything the task deferred (before pages are freed). May yield."""

    def try_to_unmap_flush_dirty(self, task) -> None:
        """Flush if a deferred PTE was dirty (before IO). May yield."""

    def flush_tlb_batched_pending(self, task, mm) -> None:
        """Called under the PTL by zap/mprotect/mremap/madvise before looking at PTEs (and, when
        ``RECHECK_AFTER_RELOCK``, again after madvise re-takes it). May yield."""

    # -- folio-level hooks for LUF-style protocols ----------------------------
    def try_to_unmap_begin(self, task, frame: int, migration: bool) -> None:
        """Before the rmap walk of one folio (``try_to_unmap``/``try_to_migrate``)."""

    def try_to_unmap_end(self, task, frame: int, migration: bool) -> None:
        """After the rmap walk of one folio (LUF v12: fold ``tlb_ubc_ro``)."""

    def walk_abort(self, task, frame: int, migration: bool) -> None:
        """``try_to_unmap_one`` returned false (its ``walk_abort:`` label): the walk stops
        with the folio still mapped (the model's one case: a lazyfree folio found
        re-dirtied, its PTE restored). Called before :meth:`try_to_unmap_end`. LUF v12:
        ``can_luf_fail()``, the folio's batch goes to ``tlb_ubc``. May yield."""

    def shrink_folio_list_keep(self, task, frame: int) -> None:
        """``shrink_folio_list``'s ``keep:`` label for a folio that ``try_to_unmap`` walked
        in this pass: the folio is kept (activated, or kept for a later pass) instead of
        freed; it stays isolated until after the pass's ``try_to_unmap_flush``. LUF v12:
        ``if (can_luf) luf_flush(fold_unmap_luf())``. May yield."""

    def migrate_folio_move(self, task, src: int, dst: int) -> None:
        """``migrate_folio_move`` (mm/migrate.c) of one folio of the batch: after the unmap
        (migration entries installed, flush deferred) and, with
        ``MIGRATE_FLUSH_BEFORE_COPY``, after the batch's ``try_to_unmap_flush``; before
        ``move_to_new_folio`` -> ``migrate_folio`` (6.12's ``__migrate_folio``: the
        reference check, ``folio_mc_copy``: S2, ``__folio_migrate_mapping``) and
        ``remove_migration_ptes``. A scheme that orders its own
        flush against the copy flushes here. Default: nothing. May yield."""

    def free_unref_folios(self, task, frames: list[int]) -> None:
        """Return unmapped folios to the allocator. May yield."""
        self.free_to_allocator(frames)

    def page_alloc(self, task, frame: int) -> None:
        """A frame is being taken out of the allocator (LUF's takeoff flush)."""

    def fault_install_pte(self, task, mm, vma, vpage: int, pte, write: bool) -> None:
        """A fault just installed (``set_pte_at`` in ``finish_fault``/``do_anonymous_page``/
        ``do_swap_page``) or upgraded (``wp_page_reuse``) ``pte``, still under the PTL.
        With fault-around (``MachineConfig.fault_around_pages`` > 1) also for each page
        ``filemap_map_pages`` maps read-only, the faulting page's neighbours included
        (``vpage`` says which). Must not yield."""

    def do_wp_page(self, task, mm, vma, vpage: int) -> None:
        """The top of ``do_wp_page`` (mm/memory.c): a write fault found ``vpage``'s PTE
        present and read-only, before ``wp_page_reuse`` / ``wp_page_shared`` /
        ``wp_page_copy`` changes it (LUF v10's ``luf_flush()``, "if (folio)"); also after a
        write fault's swap-in of a folio a fork sibling still shares (``do_swap_page`` maps it
        read-only and calls ``do_wp_page``). Not called for a fault on an empty PTE, or a
        swap-in of an exclusive folio, which install their PTE in ``finish_fault`` /
        ``do_anonymous_page`` / ``do_swap_page`` instead. May yield."""

    def handle_mm_fault_end(self, task, mm, vma, vpage: int, write: bool) -> None:
        """The end of ``handle_mm_fault`` (after the PTL is dropped; LUF v12's flush point),
        once per try: a first try that dropped ``mmap_lock`` (``VM_FAULT_RETRY``, or
        ``VM_FAULT_COMPLETED`` after a shared write fault's install) calls it without
        ``mmap_lock``, a retry again with it; a try that returned 0 with nothing done (a
        changed PTE, a migration entry waited for) calls it too, before the fault returns
        and the access restarts. Not called when the fault ends in SIGSEGV. May yield."""

    def mmap_region(self, task, mm, vma) -> None:
        """A new VMA is being inserted (``mmap_region``). May yield."""

    def mprotect_fixup(self, task, mm, vma) -> None:
        """A VMA's protection changed (``mprotect_fixup``). May yield."""

    def mapping_write_begin(self, task, file: int, pgoff: int) -> None:
        """``write()`` is about to update a page-cache page (v12 hook). May yield."""

    def file_end_write(self, task, file: int, pgoff: int) -> None:
        """``write()`` finished updating a page-cache page (v11 hook). May yield."""

    def truncate_inode_pages_range(self, task, file: int, pgoff: int) -> None:
        """The end of ``truncate_inode_pages_range``: the range's folios are out of the page
        cache, the hole not yet freed (v12 hook: ``luf_flush(0)``). May yield."""

    def folio_mkclean(self, task, frame: int) -> None:
        """The end of ``folio_mkclean`` (writeback's write-protect of every PTE of the
        folio, each with ``ptep_clear_flush``), before the folio is written. LUF v12:
        ``luf_flush(0)``. May yield."""

    def context_switch(self, cpu_id: int, prev, next_mm) -> None:
        """``finish_task_switch`` on ``cpu_id`` (must not yield)."""

    def finish_task_switch(self, task, mm) -> None:
        """``finish_task_switch`` (kernel/sched/core.c) in the context of a user task
        switched in from a kernel thread: its lazy-TLB branch, ``mm = rq->prev_mm`` (set by
        ``context_switch`` when ``!prev->mm``: the kernel thread kept the CPU's mm loaded
        lazily), where the kernel drops that borrowed mm (``mmdrop_lazy_tlb_sched``). The
        machine calls it in two places; ``mm`` is the CPU's loaded mm either way:

        * an operation of a user task (a fault, a syscall, direct compaction's ``compact``:
          not kswapd's reclaim, kcompactd's ``migrate``, the flusher's writeback, nor
          ``exit_mmap``, which runs after ``exit_mm`` cleared ``current->mm``) that blocked
          on a sleeping lock (``Op.blocked_on``: an rwsem, a folio lock, a migration entry;
          not a PTL) is stepped again, after the idle task ran: before that step, ``task``
          the operation;
        * the first user task to run on a CPU after a kernel thread's operation there
          (reclaim, migrate, writeback, or an exit, whose dead task switches out as a kernel
          thread): ``task`` the operation it starts (a syscall, a fault, an exit; set up,
          before its first step), or the CPU number for a user access or a switch to another
          mm's task (``mm`` then the mm switched away from), before it runs.

        Must not yield. Default: nothing (mainline only drops the reference).

        Example (a protocol that counts the switches)::

            class Counting(Linux):
                def finish_task_switch(self, task, mm):
                    self.switched_in = getattr(self, "switched_in", 0) + 1
        """

    # -- mmu_gather (include/asm-generic/tlb.h, mm/mmu_gather.c) ------------
    def tlb_gather_mmu(self, tlb: MmuGather) -> None:
        """``tlb_gather_mmu``: ``__tlb_reset_range`` + ``inc_tlb_flush_pending``."""
        tlb.reset_range()
        tlb.mm.tlb_flush_pending += 1

    def tlb_remove_tlb_entry(self, tlb: MmuGather, vpage: int) -> None:
        """``tlb_remove_tlb_entry``: record that a present PTE was cleared."""
        tlb.adjust_range(vpage)
        tlb.cleared_ptes = True

    def tlb_flush(self, tlb: MmuGather) -> None:
        """``tlb_flush`` (x86): ``flush_tlb_mm_range`` of the recorded range."""
        if tlb.fullmm or tlb.need_flush_all:
            self.arch.flush_tlb_mm(tlb.mm, tlb.task)
        else:
            self.arch.flush_tlb_mm_range(tlb.mm, tlb.start, tlb.end, tlb.task)

    def tlb_flush_mmu_tlbonly(self, tlb: MmuGather) -> None:
        """``tlb_flush_mmu_tlbonly``: returns early when nothing was cleared (the seed's point)."""
        if not (tlb.freed_tables or tlb.cleared_ptes):
            return
        self.tlb_flush(tlb)
        tlb.reset_range()

    def tlb_flush_mmu(self, tlb: MmuGather) -> None:
        """``tlb_flush_mmu``: invalidate, then free the gathered pages (unhook, invalidate, free)."""
        self.tlb_flush_mmu_tlbonly(tlb)
        tlb.free_pages(tlb)

    def tlb_end_vma(self, tlb: MmuGather, vma) -> None:
        """``tlb_end_vma`` (include/asm-generic/tlb.h): a flush at the VMA boundary unless
        ``fullmm``; nothing with :attr:`MMU_GATHER_MERGE_VMAS`, as on x86 (the kernel's
        ``vma_pfn`` exception is for VM_PFNMAP, which the model has not). May yield."""
        if tlb.fullmm or self.MMU_GATHER_MERGE_VMAS:
            return
        self.tlb_flush_mmu_tlbonly(tlb)

    def tlb_finish_mmu(self, tlb: MmuGather) -> None:
        """``tlb_finish_mmu``: force a full flush when gathers nest (99baac21e458, 7a30df49f63a)."""
        if tlb.mm.tlb_flush_pending > 1:  # mm_tlb_flush_nested
            tlb.fullmm = True
            tlb.reset_range()
            tlb.freed_tables = True
        self.tlb_flush_mmu(tlb)
        tlb.mm.tlb_flush_pending -= 1  # dec_tlb_flush_pending
