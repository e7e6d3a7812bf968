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
hash; what an allocation flushes follows each posting, :attr:`LufBase.TAKEOFF_SCOPE`):

* per task, per folio being unmapped: a batch and a "read-only" flag
  (v12 ``tlb_ubc_ro`` folded into ``tlb_ubc_luf`` or ``tlb_ubc`` after the walk);
* ``self.unkeyed[frame]``: ``tlb_ubc_luf``, the cpumask of a read-only folio this reclaim or
  migration pass unmapped, not yet given a key (the task's ``luf_frames`` lists its frames).
  ``try_to_unmap_flush`` still folds it in (``fold_batch(tlb_ubc, tlb_ubc_luf)``, kernel-notes
  4.2), so ``try_to_unmap_flush_dirty`` before ``pageout`` flushes it with the rest; only
  ``fold_unmap_luf``, just before the pass's last ``try_to_unmap_flush`` (the end of
  ``shrink_folio_list``, ``migrate_pages_batch``'s ``move:``), turns it into
* ``self.pending[frame]``: the cpumask LUF still owes for that frame (the page's
  ugen/luf_key); flushed by :meth:`page_alloc` when the frame is handed out, with every
  other frame's of the same generation (v10/v11: all of them) or pass (v12: its key;
  ``self.pass_of[frame]``);
* :meth:`luf_flush_all` is ``luf_flush(0)`` while ``luf_batch[0]`` accumulates every LUF
  unmap (v12 16/26, :attr:`LufBase.LUF_BATCH_ZERO`; the v10 and v11 modules' give-up): flush
  every deferred batch ("give up LUF");
* :meth:`fold_luf_batch_mm`: a hook where a still-LUF-able PTE is recorded, before its
  ``arch_tlbbatch_add_pending``; :mod:`protocols.luf_v12` keeps there the per-mm and
  per-mapping batches of v12 19/26 and 20/26, which its narrowed give-up points
  (``luf_flush_vma`` / ``luf_flush_mm`` / ``luf_flush_mapping``) flush.

Subclasses choose the give-up points by overriding hooks.

Not modelled (a review against the postings, 2026-12-05; it makes the model defer *longer*
than the series, the false-FAIL direction, and no failing trace was traced to it):

* 16/26's ``luf_batch[0]`` keeps every LUF unmap for ever (``luf_flush(0)`` flushes it all,
  generations skip what is done); here ``unkeyed`` holds a frame's mask only until its key
  or a flush, which is what ``luf_flush(0)`` can still owe (20/26 stops filling entry 0:
  :mod:`protocols.luf_v12` has no ``luf_flush(0)`` that flushes deferrals).

Also not modelled, in the other direction (the model flushes sooner or more than the series,
so a bug only the series has may not show): v12 13/26's buddy allocator prefers pages that
owe no flush (``pend_list``, ``non_luf_pages_ok``), where the model's allocator is LIFO and
takes a LUF'd page, and flushes for it, sooner; 17/26 skips CPUs whose per-CPU generation
says they flushed since (``arch_tlbbatch_diet``, ``arch_tlbbatch_check_done``), after every
flush it marks (``tlb_flush_end``), which :mod:`protocols.luf_v12` models
(``LufV12._luf_done``, every ``tlb_flush_end`` of 17/26 since 2026-12-05) and the v10/v11
modules, which keep no generations, do not; v12's ``try_to_unmap_flush_takeoff`` (09/26,
16/26) drops the CPUs it flushed from the allocating task's batches (``arch_tlbbatch_done``,
01/26), which :mod:`protocols.luf_v12` models since 2026-12-06
(``LufV12.try_to_unmap_flush_takeoff``; this base drops nothing), and 16/26's
``fold_unmap_luf`` keys only the CPUs ``tlb_ubc`` does not already cover, which
:mod:`protocols.luf_v12` reaches through the mark of the ``try_to_unmap_flush`` that follows
(:meth:`LufBase.fold_unmap_luf`); 15/26 flushes (``luf_flush(0)``, ``luf_flush_mapping``
since 20/26, in ``mapping_write_begin``) only on the ``->write_begin`` write paths, where
the model flushes on every file write (iomap and FUSE writers get none in v12). 02-08,
15 and 26 of v12 were read on 2026-12-05 for the rest: arch batch helpers, ``luf_key`` in
``struct page``, ``luf_ugen`` wrap-around (``ugen_before``, 2^63 steps away here), the
``luf_batch`` hash (16-bit keys skipping 0, collisions merge batches, unreachable within a
run here) and a debug option no Kconfig can enable; none flushes later than the model.

v12's flush when ``shrink_folio_list`` keeps a LUF-able folio and its ``can_luf_fail()``
on an aborted walk are modelled in :class:`protocols.luf_v12.LufV12` (the hooks
``shrink_folio_list_keep`` and ``walk_abort``, 2026-12-05). v11 has neither (its 12/12
adds no flush at ``keep:``, its 09/12 no ``can_luf_fail()`` at the end of
``try_to_unmap_one``), so this base, which the v10 and v11 modules use, does neither (v10
RESEND 09/12 and 12/12, read 2026-12-05, have neither either).
"""
from conformance.hw.arch import TlbBatch
from conformance.hookpoints import atomic_section
from protocols.linux import Linux, TlbUbc


class LufUbc(TlbUbc):
    """``tlb_ubc`` plus the batch of the folio whose rmap walk is in progress."""

    __slots__ = ("folio", "folio_ro", "folio_ptes", "folio_frame", "fault_installed",
                 "luf_frames")

    def __init__(self, arch_batch) -> None:
        super().__init__(arch_batch)
        self.folio = TlbBatch()
        self.folio_ro = True
        self.folio_ptes: list = []  # (mm, vpage) unmapped for the current folio
        self.folio_frame = None  # the folio whose rmap walk is in progress
        self.fault_installed = ()  # the pages this fault task installed/upgraded (luf_v11_posted)
        self.luf_frames: list = []  # the folios of this pass in tlb_ubc_luf (LufBase.unkeyed)


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

    #: What an allocation flushes when the page it takes still owes a LUF flush.
    #: ``"all"``: every deferral that has its generation (v10 RESEND 09/12 and v11 09/12
    #: ``check_luf_flush(ugen)`` fold the one global ``luf_ubc`` into ``tlb_ubc`` and
    #: flush it; every pass between two such flushes shares ``luf_gen``). ``"pass"``: the
    #: batch of the pass that unmapped the page (v12 16/26 and 18/26
    #: ``luf_takeoff_check_and_fold``: ``fold_batch(tlb_ubc_takeoff, &luf_batch[luf_key])``,
    #: one key per ``fold_unmap_luf``). Before 2026-12-05 the model flushed only the
    #: page's own folio's CPUs, less than any posting: the false-FAIL direction, where a
    #: stale entry of another page the posting's takeoff flush covered stayed cached.
    TAKEOFF_SCOPE = "all"

    #: v12 16/26 accumulates every LUF unmap into ``luf_batch[0]`` at once, which
    #: :meth:`luf_flush_all` (``luf_flush(0)``) flushes: here the frame's ``unkeyed`` mask,
    #: from its first deferred PTE on. v12 20/26 removes that accumulation ("XXX: Reserve
    #: the 0th entry for later use."; :mod:`protocols.luf_v12`, False); the v10 and v11
    #: modules keep it (their give-up flushes every deferral, as ``luf_flush_all`` does).
    LUF_BATCH_ZERO = True

    def __init__(self, arch, free_pages) -> None:
        super().__init__(arch, free_pages)
        self.pending: dict[int, int] = {}  # frame -> cpumask still owed (ugen / luf_key)
        # frame -> cpumask in a task's tlb_ubc_luf (a frame is in one pass at a time: the
        # pass holds it isolated until after its last try_to_unmap_flush)
        self.unkeyed: dict[int, int] = {}
        # frame -> the key of the pass that deferred it (TAKEOFF_SCOPE "pass" only): the
        # smallest key no pending frame has, so equal states keep equal keys
        self.pass_of: dict[int, int] = {}

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
        ubc.folio_frame = frame

    def _physmem(self):
        """The machine's ``PhysMem`` (None outside a machine).

        The model passes protocols a frame number, not a folio, so folio flags are read
        from the machine's ``PhysMem`` through the allocator's owner (the kernel object
        whose ``free_frames`` is ``free_to_allocator``)."""
        kernel = getattr(self.free_to_allocator, "__self__", None)
        return getattr(kernel, "mem", None)

    def folio_lazyfree(self, frame) -> bool:
        """``folio_test_anon(folio) && !folio_test_swapbacked(folio)`` (MADV_FREE'd):
        ``PhysMem.lazyfree`` is the model's ``!PG_swapbacked`` of an anonymous folio
        (docs/model.md section 2)."""
        mem = self._physmem()
        if mem is None:
            return False
        owner = mem.owner[frame]
        return isinstance(owner, tuple) and owner[0] == "a" and bool(mem.lazyfree[frame])

    def folio_file(self, frame):
        """The file of ``folio_mapping(folio)`` for a page-cache folio (its owner
        ``('f', file, pgoff)``), else None. Simplification: an anonymous folio in the swap
        cache has ``swap_address_space()`` as its ``folio_mapping``; no path of the model
        flushes a swap mapping's LUF batch (v12 20/26 calls ``luf_flush_mapping`` from
        file paths only), so it is None here."""
        mem = self._physmem()
        if mem is None:
            return None
        owner = mem.owner[frame]
        if isinstance(owner, tuple) and owner[0] == "f":
            return owner[1]
        return None

    def set_tlb_ubc_flush_pending(self, task, mm, pteval, vpage) -> None:
        """As mainline (``mm->tlb_flush_batched`` pending), but into the folio's batch. While
        the folio is still LUF-able: first :meth:`fold_luf_batch_mm` (v12 19/26 and 20/26:
        the mm's and the mapping's ``luf_batch``, before ``arch_tlbbatch_add_pending``), and
        with :attr:`LUF_BATCH_ZERO` also into ``luf_batch[0]`` at once (v12 16/26:
        "Accumulate to the 0th entry right away so that luf_flush(0) can be used to properly
        perform pending TLB flush once this unmapping is observed"): here ``unkeyed``."""
        if pteval.kind != 1:
            return
        ubc = task.tlb_ubc
        if pteval.writable or (pteval.dirty and not self.LUF_DIRTY_OK):
            ubc.folio_ro = False  # can_luf_fail: the folio goes to tlb_ubc and is flushed
        if ubc.folio_ro:
            self.fold_luf_batch_mm(task, mm, ubc.folio_frame)
        real = ubc.arch
        ubc.arch = ubc.folio  # arch_tlbbatch_add_pending into tlb_ubc_ro
        try:
            super().set_tlb_ubc_flush_pending(task, mm, pteval, vpage)
        finally:
            ubc.arch = real
        ubc.folio_ptes.append((mm, vpage))
        if ubc.folio_ro and self.LUF_BATCH_ZERO:
            frame = ubc.folio_frame
            self.unkeyed[frame] = self.unkeyed.get(frame, 0) | ubc.folio.cpumask

    def fold_luf_batch_mm(self, task, mm, frame) -> None:
        """Hook: a PTE of ``mm`` mapping the LUF-able folio ``frame`` was just cleared with
        its flush deferred (``set_tlb_ubc_flush_pending`` while ``can_luf_test()``), before
        its ``arch_tlbbatch_add_pending``. v12 19/26 and 20/26 record it in
        ``mm->luf_batch`` and ``mapping->luf_batch`` (:mod:`protocols.luf_v12`); the base
        records nothing here."""

    def try_to_unmap_end(self, task, frame, migration) -> None:
        """Fold the folio's batch: read-only -> ``tlb_ubc_luf`` (LUF), else -> ``tlb_ubc``."""
        ubc = task.tlb_ubc
        mask = ubc.folio.cpumask
        ubc.folio.cpumask = 0
        if not mask:
            return
        if ubc.folio_ro:
            if frame not in ubc.luf_frames:
                ubc.luf_frames.append(frame)
            self.unkeyed[frame] = self.unkeyed.get(frame, 0) | mask
            self.luf_deferred(task, frame, ubc.folio_ptes)
        else:
            ubc.arch.cpumask |= mask
            self.unkeyed.pop(frame, None)  # (what entry 0 got before can_luf_fail stays
            # flushable by luf_flush(0) in the series; the frame owes nothing)

    def fold_unmap_luf(self, task) -> None:
        """``fold_unmap_luf``: this pass's ``tlb_ubc_luf`` becomes owed by its frames (the
        key ``free_unref_folios`` / ``migrate_folio_done`` give the pages). Simplification:
        each frame owes its own folio's CPUs, where the series keys the whole batch (an
        allocation of any frame of the key flushes the key's, :meth:`page_alloc`).

        v12 16/26 first drops from ``tlb_ubc_luf`` the CPUs ``tlb_ubc`` holds ("fold_unmap_luf()
        is always followed by try_to_unmap_flush()."; ``if (arch_tlbbatch_done(&tlb_ubc_luf->arch,
        &tlb_ubc->arch)) { tlb_ubc_luf->flush_required = false; ... }``, then "Check again after
        shrinking."): not done here, and not needed: :class:`protocols.luf_v12.LufV12`'s
        ``try_to_unmap_flush`` that follows marks every CPU of ``tlb_ubc`` done
        (``tlb_flush_end``, :meth:`protocols.luf_v12.LufV12._luf_done`), which takes them out
        of these frames' masks (and the frames out of ``pending`` if their key owes nothing
        more) before any of the frames is freed: the state the series' shrunk key reaches.

        One atomic section: the series folds under ``luf_batch``'s lock, and every LUF unmap
        is in entry 0 already, so no ``luf_flush(0)`` can miss a batch on its way to its
        key. Split (a point after the first store), a ``luf_flush_all`` in between missed the
        mask while only this loop held it: a C1 the series cannot have."""
        ubc = task.tlb_ubc
        if not ubc.luf_frames:
            return
        with atomic_section():
            masks = [(f, self.unkeyed.pop(f)) for f in ubc.luf_frames if f in self.unkeyed]
            # the batch is the pass's, not each frame's: a frame left with no CPU of its own
            # (LufV12.try_to_unmap_flush_takeoff dropped them) still gets the key while the
            # pass owes any; none left is "Check again after shrinking.": return 0
            if any(mask for _f, mask in masks):
                key = None
                if self.TAKEOFF_SCOPE == "pass":  # new_luf_key()
                    used = set(self.pass_of.values())
                    key = next(k for k in range(1, len(used) + 2) if k not in used)
                for frame, mask in masks:
                    self.pending[frame] = self.pending.get(frame, 0) | mask
                    if key is not None:
                        self.pass_of[frame] = key
        ubc.luf_frames.clear()

    def try_to_unmap_flush(self, task) -> None:
        """The model calls it where the series calls ``fold_unmap_luf()`` first (the end of
        ``shrink_folio_list``, ``migrate_pages_batch``'s ``move:``): the read-only folios
        stay owed by their frames, the rest is flushed as mainline."""
        self.fold_unmap_luf(task)
        super().try_to_unmap_flush(task)

    def try_to_unmap_flush_dirty(self, task) -> None:
        """Before ``pageout``: if a deferred PTE was dirty (``tlb_ubc->writable`` or
        ``tlb_ubc_luf->writable``; our ``writable`` is set for both), ``try_to_unmap_flush``,
        which folds ``tlb_ubc_luf`` into ``tlb_ubc`` (``fold_batch``) and flushes it all:
        this pass's read-only folios owe nothing afterwards. They leave ``unkeyed`` only
        after the flush, so a ``luf_flush_all`` meanwhile still covers them (entry 0)."""
        ubc = task.tlb_ubc
        if not ubc.writable:
            return
        self._flush_with_tlb_ubc(task, *self._take_pass_luf(task))

    def _take_pass_luf(self, task) -> tuple:
        """This pass's ``tlb_ubc_luf`` taken out of the task: ``(frames, cpumask)``. The
        caller flushes the mask, then drops the frames from ``unkeyed`` (after the flush, so
        a ``luf_flush(0)`` in between still covers them)."""
        ubc = task.tlb_ubc
        frames, ubc.luf_frames = ubc.luf_frames, []
        mask = 0
        for frame in frames:
            mask |= self.unkeyed.get(frame, 0)
        return frames, mask

    def _flush_with_tlb_ubc(self, task, frames, mask) -> None:
        """``fold_batch(tlb_ubc, <the pass's LUF batch>)`` and mainline's
        ``try_to_unmap_flush``: ``frames`` (:meth:`_take_pass_luf`) owe nothing afterwards,
        and leave ``unkeyed`` only then, so a ``luf_flush(0)`` in between still covers
        them."""
        self._fold_and_flush(task, mask)
        for frame in frames:
            self.unkeyed.pop(frame, None)

    def _fold_and_flush(self, task, mask) -> None:
        """``fold_batch(tlb_ubc, <mask>)`` and mainline's ``try_to_unmap_flush`` (no
        ``fold_unmap_luf``): the flush of :meth:`_flush_with_tlb_ubc`."""
        ubc = task.tlb_ubc
        if mask:
            ubc.arch.cpumask |= mask
            ubc.flush_required = True
        Linux.try_to_unmap_flush(self, task)

    def luf_deferred(self, task, frame, ptes) -> None:
        """Hook for variants that record where LUF deferred a flush (per-VMA flag)."""

    # -- flushing ----------------------------------------------------------------
    def _flush_mask(self, mask: int, who) -> None:
        b = TlbBatch()
        b.cpumask = mask
        self.arch.arch_tlbbatch_flush(b, who)

    def page_alloc(self, task, frame) -> None:
        """``luf_takeoff_check_and_fold`` + ``try_to_unmap_flush_takeoff`` (v12), or
        ``check_luf_flush(ugen)`` (v10, v11): flush what the page still owes before anyone
        can use it, with what the posting's batch holds beside it
        (:attr:`TAKEOFF_SCOPE`); those pages owe nothing afterwards. A frame can stay in
        ``pending`` with no CPU of its own left while others of its key still owe
        (:meth:`protocols.luf_v12.LufV12._luf_done`): it still makes the allocation flush
        them."""
        owes = frame in self.pending or frame in self.unkeyed
        mask = self.pending.pop(frame, 0) | self.unkeyed.pop(frame, 0)  # (none unkeyed: isolated)
        if not owes:
            return
        if self.TAKEOFF_SCOPE == "all":  # luf_ubc: every generation not yet flushed
            for m in self.pending.values():
                mask |= m
            self.pending.clear()
        elif self.TAKEOFF_SCOPE == "pass":  # luf_batch[luf_key]: the page's pass
            key = self.pass_of.pop(frame, None)
            for f in [f for f, k in self.pass_of.items() if k == key]:
                mask |= self.pending.pop(f, 0)
                del self.pass_of[f]
        self.try_to_unmap_flush_takeoff(task, mask)
        if not self.pending and not self.unkeyed:
            self.luf_flushed()

    def try_to_unmap_flush_takeoff(self, task, mask) -> None:
        """The takeoff flush of :meth:`page_alloc` (v12 09/26 ``try_to_unmap_flush_takeoff``,
        v10/v11 ``check_luf_flush``): flush ``mask``. Nothing is dropped from ``task``'s own
        batches here; :class:`protocols.luf_v12.LufV12` drops what v12 drops."""
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
        if not self.pending and not self.unkeyed:
            return
        with atomic_section():
            mask = 0
            for m in self.pending.values():
                mask |= m
            for m in self.unkeyed.values():  # v12 accumulates every LUF unmap in entry 0
                mask |= m
            self.pending.clear()
            self.pass_of.clear()
            self.unkeyed.clear()  # their tasks' luf_frames now name nothing: pop(frame, 0)
            self._flush_mask(mask, who)
        self.luf_flushed()

    def luf_flushed(self) -> None:
        """Hook: every deferred flush has just been done."""
