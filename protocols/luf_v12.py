"""LUF RFC v12 (2025-02-20, "[RFC PATCH v12 00/26]", Byungchul Park; kernel-notes 4.3-4.4),
the whole series: 16/26's give-up points narrowed by 19/26 and 20/26.

Keys/generations (``luf_ugen``, ``luf_batch[]``, per-page ``luf_key``) track what each
freed page owes; the allocator flushes it at takeoff. Patch 16/26 gives LUF up with
``luf_flush(0)`` (every LUF unmap, accumulated in ``luf_batch[0]``) at: ``tlb_end_vma()``
(every zap/munmap VMA, mprotect), the end of ``handle_mm_fault()`` for
``VM_WRITE|VM_MAYWRITE`` VMAs or write faults, ``mapping_write_begin()`` (file updates),
``finish_task_switch()``, the end of ``truncate_inode_pages_range()`` (hole punch; the
patch also flushes after ``truncate_inode_folio``'s removal, the same point for the
model's one-page punch) and the end of ``folio_mkclean()``. Patches 19/26 ("mm: skip luf
tlb flush for luf'd mm that already has been done") and 20/26 ("mm, fs: skip tlb flushes
for luf'd filemap that already has been done") narrow each of them to the LUF unmaps that
concern it, as modelled here since 2026-12-05 (before, this module flushed every deferral
at each point, as 16/26 alone does):

* ``set_tlb_ubc_flush_pending`` records a still-LUF-able PTE in ``mm->luf_batch`` (19/26)
  and, for a folio with a mapping, in ``mapping->luf_batch`` (20/26), each with
  ``fold_luf_batch_mm`` (:meth:`LufV12.fold_luf_batch_mm`), *before* the PTE's
  ``arch_tlbbatch_add_pending``; 20/26 drops 16/26's accumulation into ``luf_batch[0]``
  (``LUF_BATCH_ZERO = False``);
* ``tlb_end_vma``: ``luf_flush_vma(vma)`` (the file's mapping for a ``VM_SHARED`` file
  VMA, then the mm); ``handle_mm_fault``: ``luf_flush_mapping`` for a ``VM_SHARED`` file
  VMA, then ``luf_flush_mm(mm)``; ``finish_task_switch``: ``luf_flush_mm(mm)``;
  ``mapping_write_begin``, ``folio_mkclean`` and the truncate paths:
  ``luf_flush_mapping(mapping)``;
* 25/26's ``luf_flush(fold_unmap_luf())`` at ``keep:`` is left with the task's own
  batches when the key is 0 (``luf_batch[0]`` is never filled since 20/26).

What the narrowed points flush is what :meth:`LufV12._luf_done` has not marked done: the
model keeps, per batch, the CPUs not flushed since its last fold, which stands for 17/26's
generations (``ugen_done``, ``arch_tlbbatch_diet``). Since 2026-12-05 it marks every flush
17/26 follows with ``tlb_flush_end``: ``try_to_unmap_flush`` from all its callers
(``try_to_unmap_flush_dirty`` and ``luf_flush(key)`` too) and ``flush_tlb_batched_pending``
(``arch_mm_mark_ugen``: every CPU of ``mm_cpumask(mm)``), each in one atomic section with
its flush; before, only the narrowed flushes, the takeoff flush and the pass's
``try_to_unmap_flush`` were marked, and the model flushed CPUs the series finds done. Since
2026-12-05 it also keeps 17/26's generation numbers (``luf_ugen``, per-CPU ``ugen_done``,
each batch's ``ugen``) for the diet of the caller's own ``tlb_ubc``
(:meth:`LufV12._luf_flush_batch`, :meth:`LufV12._diet`), which drops CPUs of the caller's
own non-LUF deferrals that a flush marked done after the batch's ugen, however late the
deferral. Since 2026-12-06 the machine reaches it with deferrals of the caller's own: a
user task's operation that slept on a lock runs :meth:`finish_task_switch` when it is
switched back in (``Machine._switched_in``); MADV_PAGEOUT's reclaim is dieted there with no
rule broken (its next unmap puts the CPUs back, ``tlb_end_vma`` flushes them); direct
compaction (``compact``: migration in a user task) gets S2
(litmus/luf-diet-own-batch.litmus); ``tests/test_luf_mechanisms.py`` also adds the call by
hand in a reclaiming task (full preemption) and gets an S2. Since 2026-12-06 the
takeoff flush drops the CPUs it flushed from the allocating task's own batches
(``arch_tlbbatch_done`` in ``try_to_unmap_flush_takeoff``, 09/26 and 16/26:
:meth:`LufV12.try_to_unmap_flush_takeoff`; sound, no verdict moved); ``fold_unmap_luf``'s
``arch_tlbbatch_done(&tlb_ubc_luf->arch, &tlb_ubc->arch)`` (16/26) is reached through the mark
of the ``try_to_unmap_flush`` that follows it (:meth:`protocols._luf.LufBase.fold_unmap_luf`).
The narrowing exposes a window of the series that 16/26 alone did not have:
``litmus/luf-narrow-fold-before-add-pending.litmus``.

Also modelled: of 25/26 and 16/26, ``luf_flush(fold_unmap_luf())`` when
``shrink_folio_list`` keeps a folio ``try_to_unmap`` found LUF-able (``keep:``) and
``can_luf_fail()`` when ``try_to_unmap_one`` aborts its walk (both added 2026-12-05;
before, the model deferred those flushes longer than the series). An allocation flushes
its page's pass (``luf_batch[luf_key]``; ``TAKEOFF_SCOPE``).
Eligibility is decided on ``pte_write`` (v12 ``can_luf_*``). Not modelled: the other
invalidate paths (``folio_invalidate``, ``mapping_evict_folio``, ``mapping_try_invalidate``,
``invalidate_inode_pages2_range``: no such path in the machine) and ``remove_mapping``
(not reclaim's ``__remove_mapping``), KASAN / init_on_free, and ``ptep_clear_flush`` of
inaccessible PTEs (19/26: ``luf_flush_vma``; no such path in the machine).

Reading in LUF's favour, 1: ``fold_luf_batch_mm`` makes ``mm->luf_batch`` and
``mapping->luf_batch`` something ``luf_flush_mm`` / ``luf_flush_mapping`` fold in and
flush (:attr:`LufV12.LUF_BATCH_FLUSH_REQUIRED`), as 19/26 and 20/26 evidently mean. As
posted, nothing ever sets those batches' ``flush_required``: ``fold_luf_batch_mm`` only ORs
the mm's CPUs into ``batch.arch`` (``arch_tlbbatch_add_pending``) and stamps ``ugen``,
``luf_batch_init`` leaves ``flush_required`` false (``reset_batch``, 08/26), and 08/26's
``fold_batch`` begins ``if (!src->flush_required) return;``. So the posted narrowed
flushes fold nothing in and flush only the caller's own batches, and every deferral they
were meant to end survives them (:mod:`protocols.luf_v12_posted`, docs/LUF.md; found by a
review of the patches on 2026-12-05, after the narrowing was first modelled in this
reading alone).

Reading in LUF's favour, 2: the ``finish_task_switch()`` flush is taken on *every*
context switch (``context_switch``), for the mm the CPU switches away from. The posting has
it in the block that drops a borrowed lazy-TLB mm (kernel-notes section 7), for that mm
(``rq->prev_mm``); :mod:`protocols.luf_v12_posted` is that reading, and docs/LUF.md shows
both rows.

Note the fault flush is at the *end* of ``handle_mm_fault``, after the PTE is
installed and the PTL dropped, as in the posting.

Eligibility follows v12 exactly: a read-only but *dirty* PTE qualifies, which is
what exposes the race with a concurrent mprotect whose mmu_gather flush is
still pending (docs/LUF.md).
"""
from conformance.hookpoints import atomic_section
from conformance.hw.arch import TlbBatch
from protocols._luf import LufBase


def _has_batches(who) -> bool:
    """Has the task ``who`` (a CPU number has none) a deferred flush of its own in
    ``tlb_ubc`` or ``tlb_ubc_luf``?"""
    ubc = getattr(who, "tlb_ubc", None)
    return ubc is not None and (ubc.flush_required or bool(ubc.luf_frames))


class LufV12(LufBase):
    """LUF RFC v12 flush points, narrowed by 19/26 and 20/26."""

    #: v12 ``can_luf_*``: only write permission disqualifies a folio, not the dirty bit
    LUF_DIRTY_OK = True

    #: v12 16/26, 18/26: an allocation flushes ``luf_batch[luf_key]``, its page's pass
    TAKEOFF_SCOPE = "pass"

    #: v12 20/26 drops 16/26's accumulation into ``luf_batch[0]``
    LUF_BATCH_ZERO = False

    #: ``luf_flush_mm`` / ``luf_flush_mapping`` fold ``mm->luf_batch`` /
    #: ``mapping->luf_batch`` in: the reading in LUF's favour (module docstring). False is
    #: the posting: ``fold_batch()`` returns at once for a batch whose ``flush_required``
    #: nothing set, so the narrowed flushes flush the caller's own batches alone
    LUF_BATCH_FLUSH_REQUIRED = True

    #: ``luf_ugen``'s first value (``ATOMIC_LONG_INIT(LUF_UGEN_INIT)``; any nonzero value
    #: does: 0 is the "invalid" ugen, ``new_luf_ugen()`` skips it)
    LUF_UGEN_INIT = 1

    def __init__(self, arch, free_pages) -> None:
        super().__init__(arch, free_pages)
        #: mm id -> ``mm->luf_batch.batch.arch`` (v12 19/26; file -> ``mapping->luf_batch``,
        #: 20/26): every CPU the LUF unmaps of the mm (of the file's folios) ever folded in;
        #: the series never empties it
        self.mm_luf_batch: dict[int, int] = {}
        self.mapping_luf_batch: dict[int, int] = {}
        #: the CPUs of each batch not flushed since its last fold: what
        #: ``arch_tlbbatch_diet`` leaves of it (:meth:`_luf_done`)
        self.mm_luf_owed: dict[int, int] = {}
        self.mapping_luf_owed: dict[int, int] = {}
        #: v12 17/26's generations, kept only for the diet of the caller's own ``tlb_ubc``
        #: (:meth:`_diet`; the batches above keep their owed masks): ``luf_ugen`` (the last
        #: ``new_luf_ugen()``), per CPU ``ugen_done`` (``LUF_UGEN_INIT - 1`` until marked)
        #: and each batch's ``dst->ugen`` (0, "invalid", until its first fold)
        self.luf_ugen = self.LUF_UGEN_INIT
        self.ugen_done: dict[int, int] = {}
        self.mm_luf_ugen: dict[int, int] = {}
        self.mapping_luf_ugen: dict[int, int] = {}

    # -- recording (mm/rmap.c set_tlb_ubc_flush_pending) -------------------------
    def fold_luf_batch_mm(self, task, mm, frame) -> None:
        """v12 19/26 and 20/26, ``set_tlb_ubc_flush_pending`` while ``can_luf_test()``:
        ``fold_luf_batch_mm(&mm->luf_batch, mm)``, then, for a folio with a mapping
        (``folio_mapping(folio)``, taken by ``try_to_unmap_one`` / ``try_to_migrate_one``),
        ``fold_luf_batch_mm(&mapping->luf_batch, mm)``; both before the PTE's own
        ``arch_tlbbatch_add_pending`` into ``tlb_ubc_ro``."""
        self._fold_luf_batch_mm(self.mm_luf_batch, self.mm_luf_owed, self.mm_luf_ugen,
                                mm.id, mm)
        file = self.folio_file(frame)
        if file is not None:
            self._fold_luf_batch_mm(self.mapping_luf_batch, self.mapping_luf_owed,
                                    self.mapping_luf_ugen, file, mm)

    def new_luf_ugen(self) -> int:
        """v12 ``new_luf_ugen()`` (mm/rmap.c): ``atomic_long_inc_return(&luf_ugen)``, never
        0 ("Don't return invalid luf_ugen, zero"; 2^63 steps from wrapping here)."""
        self.luf_ugen += 1
        return self.luf_ugen

    def _diet(self, mask: int, ugen: int) -> int:
        """v12 17/26 ``arch_tlbbatch_diet(batch, ugen)`` (x86 and riscv; arm64's returns true
        and drops nothing): ``if (!ugen) goto out;`` else every CPU of the batch whose
        ``ugen_done`` is not before ``ugen`` (``!ugen_before(done, ugen)``) leaves it
        (``cpumask_clear_cpu``). What is left of ``mask`` is returned; the series returns
        ``cpumask_empty()`` of it. The CPUs dropped carry no ugen of their own: a CPU is
        dropped if *any* flush that started after ``ugen`` marked it, whatever PTE put it
        in the batch and when."""
        if not ugen:
            return mask
        done, never = self.ugen_done, self.LUF_UGEN_INIT - 1
        for cpu in range(mask.bit_length()):
            if mask >> cpu & 1 and done.get(cpu, never) >= ugen:
                mask &= ~(1 << cpu)
        return mask

    def _fold_luf_batch_mm(self, batches, owed, ugens, key, mm) -> None:
        """``fold_luf_batch_mm(dst, mm)`` (v12 19/26) on ``batches[key]``: ``if
        (arch_tlbbatch_need_fold(&dst->batch.arch, mm))`` (x86: ``mm_cpumask(mm)`` not a
        subset of the batch) ``arch_tlbbatch_add_pending(&dst->batch.arch, mm, ...)``, which
        bumps ``mm->context.tlb_gen`` and ORs the mask in; then ``dst->ugen =
        new_luf_ugen()``, which makes every CPU of the batch owe a flush again (for
        ``arch_tlbbatch_diet`` none has flushed since this ugen). When the batch already
        holds the mm's CPUs (the steady state: the batch is never emptied) nothing bumps
        ``tlb_gen`` until the PTE's own ``arch_tlbbatch_add_pending`` that follows. One
        atomic section: the series does it under ``write_lock(&dst->lock)``."""
        with atomic_section():
            cpus = batches.get(key, 0)
            if self.arch.mm_cpumask(mm) & ~cpus:
                b = TlbBatch()
                b.cpumask = cpus
                self.arch.arch_tlbbatch_add_pending(b, mm, 0)
                cpus = batches[key] = b.cpumask
            owed[key] = cpus
            ugens[key] = self.new_luf_ugen()  # dst->ugen = new_luf_ugen()

    def _luf_done(self, mask) -> None:
        """``tlb_flush_end`` (v12 17/26) after a flush of ``mask``: ``ugen =
        tlb_flush_start()`` (``new_luf_ugen()``) before the flush, then
        ``arch_tlbbatch_mark_ugen`` / ``arch_mm_mark_ugen`` raise those CPUs' ``ugen_done``
        to ``ugen``. Every batch stamped before the flush started (``ugen_before(batch
        ugen, ugen)``) then finds them done: ``arch_tlbbatch_diet`` drops them from every
        mm's and mapping's batch, and ``luf_takeoff_check_and_fold``
        (``arch_tlbbatch_check_done``) finds a key done once every CPU of its batch is.

        Callers flush and mark in one atomic section, so every batch the model holds was
        stamped before the flush: a batch stamped between ``tlb_flush_start`` and
        ``tlb_flush_end`` (ugen newer than the mark) is never dropped here. The marks,
        each where 17/26 puts a ``tlb_flush_end``:

        * ``try_to_unmap_flush`` (``tlb_flush_end(&tlb_ubc->arch, NULL, ugen)``): every CPU
          of ``tlb_ubc`` after it folded ``tlb_ubc_ro`` and ``tlb_ubc_luf`` in, from all its
          callers: the pass's flush (:meth:`try_to_unmap_flush`), ``try_to_unmap_flush_dirty``,
          ``luf_flush(key)`` at ``keep:`` (25/26) and the narrowed flushes' tail
          (:meth:`_fold_and_flush`);
        * ``try_to_unmap_flush_takeoff`` (``tlb_flush_end(&tlb_ubc_takeoff->arch, NULL,
          ugen)``): the takeoff flush (:meth:`try_to_unmap_flush_takeoff`, :meth:`_flush_mask`);
        * ``flush_tlb_batched_pending`` (``tlb_flush_end(NULL, mm, ugen)``, i.e.
          ``arch_mm_mark_ugen(mm, ugen)``): every CPU of ``mm_cpumask(mm)``
          (:meth:`_arch_flush_tlb_batched_pending`).

        A page (``pending``) owes its pass's key: its frame's CPUs leave it as they are
        marked, and the key's frames leave ``pending`` only once none of them owes a CPU
        (``arch_tlbbatch_check_done`` is all-or-nothing for ``luf_batch[key]``); until then
        an allocation of any of them flushes what the key's frames still owe, the CPUs
        ``luf_takeoff_end``'s ``arch_tlbbatch_diet`` leaves."""
        if not mask:
            return
        # tlb_flush_start(); arch_tlbbatch_mark_ugen: a fresh ugen is newer than every
        # CPU's ugen_done, so the mark's "only if older" always holds here (_diet reads it)
        ugen = self.new_luf_ugen()
        for cpu in range(mask.bit_length()):
            if mask >> cpu & 1:
                self.ugen_done[cpu] = ugen
        for owed in (self.mm_luf_owed, self.mapping_luf_owed):
            for key in [k for k, m in owed.items() if m & mask]:
                left = owed[key] & ~mask
                if left:
                    owed[key] = left
                else:
                    del owed[key]
        pending, pass_of = self.pending, self.pass_of

        def key_of(frame):  # a frame of no pass is a key of its own
            return pass_of.get(frame, ("frame", frame))

        touched = {key_of(f) for f, m in pending.items() if m & mask}  # membership only
        if not touched:
            return
        for frame in pending:
            pending[frame] &= ~mask
        owing = {key_of(f) for f, m in pending.items() if m}
        for frame in [f for f in pending if key_of(f) in touched and key_of(f) not in owing]:
            del pending[frame]
            pass_of.pop(frame, None)

    def _flush_mask(self, mask: int, who) -> None:
        """A flush of ``mask`` outside a task's batches (the takeoff flush,
        ``try_to_unmap_flush_takeoff``; ``finish_task_switch``), marked done
        (``tlb_flush_end``, :meth:`_luf_done`). Callers hold no point between the two
        (``page_alloc`` and ``context_switch`` run in one step; :meth:`luf_flush_mm` in an
        atomic section)."""
        if mask:
            super()._flush_mask(mask, who)
            self._luf_done(mask)

    def try_to_unmap_flush_takeoff(self, task, mask) -> None:
        """v12 ``try_to_unmap_flush_takeoff`` (09/26, 16/26, 17/26), the takeoff flush of
        :meth:`page_alloc` in the allocating task ``task``::

            ugen = tlb_flush_start();
            arch_tlbbatch_flush(&tlb_ubc_takeoff->arch);
            tlb_flush_end(&tlb_ubc_takeoff->arch, NULL, ugen);
            /*
             * Now that tlb shootdown of tlb_ubc_takeoff has been performed,
             * it's good chance to shrink tlb_ubc if possible.
             */
            if (arch_tlbbatch_done(&tlb_ubc->arch, &tlb_ubc_takeoff->arch))
                    reset_batch(tlb_ubc);
            if (arch_tlbbatch_done(&tlb_ubc_ro->arch, &tlb_ubc_takeoff->arch))
                    reset_batch(tlb_ubc_ro);
            if (arch_tlbbatch_done(&tlb_ubc_luf->arch, &tlb_ubc_takeoff->arch))
                    reset_batch(tlb_ubc_luf);

        x86 ``arch_tlbbatch_done`` (01/26) is ``return !cpumask_andnot(&bdst->cpumask,
        &bdst->cpumask, &bsrc->cpumask);``: every CPU just flushed leaves the task's three
        batches (the flushed mask survives the flush since 04/26), and a batch left empty
        is reset (``flush_required``, ``writable``). Here ``tlb_ubc`` is ``ubc.arch``,
        ``tlb_ubc_ro`` the folio batch ``ubc.folio``, ``tlb_ubc_luf`` the ``unkeyed`` masks
        of ``ubc.luf_frames``; with none of those left, the frames owe nothing and leave the
        pass (``fold_unmap_luf`` then returns 0). A frame left with no CPU while others of
        the pass owe some keeps its empty mask: :meth:`fold_unmap_luf` keys it with them.
        Simplification: the model keeps one ``flush_required`` for ``tlb_ubc`` and
        ``tlb_ubc_ro`` (cleared once both are empty) and one ``writable`` for the three
        batches (cleared once all three are); so ``try_to_unmap_flush_dirty`` may flush where
        the series, having reset ``tlb_ubc->writable`` alone, does not (more, never less).

        Sound in the series' terms (a review, 2026-12-06): the task's batches hold only its
        own deferrals, each PTE cleared and its ``arch_tlbbatch_add_pending`` (the
        ``tlb_gen`` bump, then the mask) done before this flush in the same task, so the IPI
        to a dropped CPU lands after the bump and flushes it (``flush_tlb_func``: behind
        ``tlb_gen``); a PTE cleared later ORs the CPU back in. The takeoff runs only in task
        context with interrupts on (10/26 ``no_shootdown_context``), so no interrupted
        ``set_tlb_ubc_flush_pending`` sees it, and ``page_alloc`` is one step here (no
        point between flush and drop). The machine reaches it with batches of the caller's
        own in ``migrate`` / ``compact``: ``migrate_folio_unmap`` allocates each folio's
        destination after the earlier folios' unmaps. Until 2026-12-06 nothing was dropped
        and the pass's ``try_to_unmap_flush`` (and the key of its LUF'd frames) flushed
        those CPUs again."""
        self._flush_mask(mask, task)  # flush + tlb_flush_end
        ubc = getattr(task, "tlb_ubc", None)
        if ubc is None or not mask:
            return
        keep = ~mask
        ubc.arch.cpumask &= keep  # arch_tlbbatch_done(&tlb_ubc->arch, ...)
        ubc.folio.cpumask &= keep  # tlb_ubc_ro
        if not ubc.arch.cpumask and not ubc.folio.cpumask:
            ubc.flush_required = False  # reset_batch(tlb_ubc), (tlb_ubc_ro)
        unkeyed, luf = self.unkeyed, 0  # tlb_ubc_luf
        for frame in ubc.luf_frames:
            if frame in unkeyed:
                luf |= unkeyed[frame]
                unkeyed[frame] &= keep
        if luf and not luf & keep:  # reset_batch(tlb_ubc_luf): the pass owes nothing more
            for frame in ubc.luf_frames:
                unkeyed.pop(frame, None)
            ubc.luf_frames.clear()
        if not ubc.arch.cpumask and not ubc.folio.cpumask and not ubc.luf_frames:
            ubc.writable = False

    def try_to_unmap_flush(self, task) -> None:
        """The pass's ``fold_unmap_luf()`` + ``try_to_unmap_flush()`` (:class:`LufBase`),
        whose flush ``tlb_flush_end`` marks done (:meth:`_fold_and_flush`)."""
        self.fold_unmap_luf(task)
        if task.tlb_ubc.flush_required:
            self._fold_and_flush(task, 0)

    def _fold_and_flush(self, task, mask) -> None:
        """v12 17/26 ``try_to_unmap_flush()``: ``if (!tlb_ubc->flush_required) return; ugen
        = tlb_flush_start(); arch_tlbbatch_flush(&tlb_ubc->arch); tlb_flush_end(&tlb_ubc->arch,
        NULL, ugen);``: every CPU of ``tlb_ubc`` (``mask`` folded in: ``tlb_ubc_ro``,
        ``tlb_ubc_luf``, a ``luf_batch``) is marked done (:meth:`_luf_done`), also those the
        IPI found up to date (x86 ``arch_tlbbatch_flush`` no longer clears the mask since
        04/26, so the mark sees all of it). Every caller of ``try_to_unmap_flush`` in the
        model comes here: the pass's flush, ``try_to_unmap_flush_dirty``, ``luf_flush(key)``
        at ``keep:`` (:meth:`shrink_folio_list_keep`) and ``luf_flush_mm`` /
        ``luf_flush_mapping``. Flush and mark in one atomic section (:meth:`_luf_done`)."""
        ubc = task.tlb_ubc
        with atomic_section():
            done = ubc.arch.cpumask | mask if mask or ubc.flush_required else 0
            super()._fold_and_flush(task, mask)
            self._luf_done(done)

    def _arch_flush_tlb_batched_pending(self, task, mm) -> None:
        """v12 17/26 ``flush_tlb_batched_pending``: ``ugen = tlb_flush_start();
        arch_flush_tlb_batched_pending(mm); tlb_flush_end(NULL, mm, ugen);``, whose
        ``arch_mm_mark_ugen(mm, ugen)`` marks every CPU of ``mm_cpumask(mm)`` done
        (:meth:`_luf_done`). x86 ``arch_flush_tlb_batched_pending`` is ``flush_tlb_mm``: it
        flushes only ``mm`` on those CPUs, yet the mark is per CPU, for every batch; here a
        CPU holds a stale LUF'd entry only of the mm it has loaded (the ``tlb_gen`` bump of
        ``arch_tlbbatch_add_pending`` kills the others', :mod:`conformance.hw.arch`), so
        after the flush the CPUs running ``mm`` hold none. ``mm_cpumask`` is read at the
        flush: the series reads it after (``tlb_flush_end``), the same mask when nothing
        runs between; the atomic section keeps only those runs of the series (a CPU
        switching in or out between flush and mark is a run the model does not have).

        Resting on the model's exact ``mm_cpumask`` (the CPUs with ``mm`` loaded, docs/model.md
        section 11 item 17): x86's mask is wider (lazy-TLB CPUs; since 6.x, CPUs that
        switched away keep their bit until a flush trims it), and ``flush_tlb_mm`` skips
        some of them, so ``arch_mm_mark_ugen`` may mark done a CPU the flush did not flush,
        still holding another mm's stale LUF entry in an older ASID: a window the series
        may have and this model cannot reach (it flushes more, never less; a review,
        2026-12-05)."""
        with atomic_section():
            super()._arch_flush_tlb_batched_pending(task, mm)
            self._luf_done(self.arch.mm_cpumask(mm))

    # -- the narrowed luf_flush(0) points (mm/rmap.c) -------------------------------
    def _luf_flush_batch(self, who, mask, lb_ugen) -> None:
        """The tail of ``luf_flush_mm`` / ``luf_flush_mapping`` (v12 19/26, 20/26)::

            fold_batch(tlb_ubc, &lb->batch, false);
            lb_ugen = lb->ugen;
            ...
            if (arch_tlbbatch_diet(&tlb_ubc->arch, lb_ugen))
                    return;
            try_to_unmap_flush();

        ``mask`` is what the diet leaves of ``lb->batch`` (its owed CPUs, :meth:`_luf_done`;
        0 as posted, where ``fold_batch`` folds nothing), ``lb_ugen`` the batch's ugen.
        ``who`` is the task, or a CPU number for ``finish_task_switch`` (the model gives that
        hook no task: only ``mask`` is flushed there).

        The diet works on ``current->tlb_ubc`` *after* the fold: the caller's own deferred
        flushes of ``tlb_ubc`` (``try_to_unmap`` of a folio that is not LUF-able, between it
        and the pass's ``try_to_unmap_flush``) lose every CPU a flush marked done after
        ``lb_ugen`` (:meth:`_diet`), though no ugen says when their PTEs were cleared; the
        CPUs dropped stay dropped (``cpumask_clear_cpu`` on the caller's batch). If nothing
        is left, it returns, and ``tlb_ubc_ro`` / ``tlb_ubc_luf`` are not flushed either
        (``try_to_unmap_flush`` is what folds them in); else ``try_to_unmap_flush()`` folds
        them in, flushes and marks (:meth:`_fold_and_flush`). ``tlb_ubc->flush_required``
        stays as it was when nothing is left: the later ``try_to_unmap_flush`` then flushes
        an empty mask, which the model skips. Until 2026-12-05 the model flushed all of the
        caller's batches whenever it had any (no diet of them), and returned only when it
        had none. The machine reaches these flushes with batches of the caller's own only
        through :meth:`finish_task_switch` of a user task that slept on a lock (since
        2026-12-06: MADV_PAGEOUT's reclaim, direct compaction; ``ptep_clear_flush`` of an
        inaccessible PTE inside ``try_to_unmap_one`` is not in the machine)."""
        ubc = getattr(who, "tlb_ubc", None)
        if ubc is None:
            self._flush_mask(mask, who)
            return
        own = self._diet(ubc.arch.cpumask, lb_ugen)  # arch_tlbbatch_diet(&tlb_ubc->arch)
        ubc.arch.cpumask = own
        if not own and not mask:
            return  # arch_tlbbatch_diet() returned true: no try_to_unmap_flush()
        frames, pass_mask = self._take_pass_luf(who)
        self._flush_with_tlb_ubc(who, frames, mask | pass_mask)  # marks (_fold_and_flush)

    def luf_flush_mm(self, who, mm) -> None:
        """v12 19/26 ``luf_flush_mm(mm)``: flush what ``mm->luf_batch`` still owes (the
        CPUs of the mm's LUF unmaps not flushed since), not every deferral (16/26's
        ``luf_flush(0)``).

        One atomic section: in the series a CPU leaves what a batch owes only once a flush
        that started after the batch's ugen marked it done (``tlb_flush_end``), after the
        flush; here what is owed is updated with the flush, so the read, the flush and the
        update must not be split (split, a second caller would find nothing owed and
        return before the first caller's flush landed)."""
        if mm is None:
            return
        self._luf_flush_owed(who, self.mm_luf_owed, self.mm_luf_ugen, mm.id)

    def _luf_flush_owed(self, who, owed: dict, ugens: dict, key) -> None:
        """``luf_flush_mm`` / ``luf_flush_mapping`` on the batch ``owed[key]``: nothing to
        do when it owes nothing and the caller has no batch of its own. With
        :attr:`LUF_BATCH_FLUSH_REQUIRED` false (the posting), ``fold_batch`` folds nothing
        from the batch: only the caller's own batches are flushed."""
        mask = owed.get(key, 0) if self.LUF_BATCH_FLUSH_REQUIRED else 0
        if not mask and not _has_batches(who):
            return
        with atomic_section():  # no point between the read above and the flush
            self._luf_flush_batch(who, mask, ugens.get(key, 0))

    def luf_flush_mapping(self, who, file) -> None:
        """v12 20/26 ``luf_flush_mapping(mapping)``: flush what ``mapping->luf_batch`` still
        owes (the CPUs of every mm whose PTE of one of the file's folios LUF deferred, not
        flushed since). One atomic section, as :meth:`luf_flush_mm`."""
        if file is None:
            return
        self._luf_flush_owed(who, self.mapping_luf_owed, self.mapping_luf_ugen, file)

    def luf_flush_vma(self, who, mm, vma) -> None:
        """v12 19/26 (20/26 for the mapping) ``luf_flush_vma(vma)``: for a ``VM_SHARED``
        VMA with a ``vm_file`` (every file VMA of the model), ``luf_flush_mapping`` of its
        file; then ``luf_flush_mm(vma->vm_mm)``."""
        if vma.file is not None:
            self.luf_flush_mapping(who, vma.file)
        self.luf_flush_mm(who, mm)

    # -- flush points ------------------------------------------------------------
    def tlb_end_vma(self, tlb, vma) -> None:
        """v12 16/26 ``luf_flush(0)`` at the top of ``tlb_end_vma`` ("Don't leave stale tlb
        entries for this vma."), ``luf_flush_vma(vma)`` since 19/26."""
        self.luf_flush_vma(tlb.task, tlb.mm, vma)
        super().tlb_end_vma(tlb, vma)

    def handle_mm_fault_end(self, task, mm, vma, vpage, write) -> None:
        """v12 16/26: ``if (flush) luf_flush(0);`` at the end of ``handle_mm_fault``, where
        ``flush`` is ``vma->vm_flags & (VM_WRITE | VM_MAYWRITE) || flags &
        FAULT_FLAG_WRITE``. 19/26: ``if (mapping) luf_flush(0); luf_flush_mm(mm);`` with
        ``mapping`` the file of a ``VM_SHARED`` VMA; 20/26: ``luf_flush_mapping(mapping)``
        for the former."""
        if write or vma.writable or vma.maywrite:
            if vma.file is not None:
                self.luf_flush_mapping(task, vma.file)
            self.luf_flush_mm(task, mm)

    def mapping_write_begin(self, task, file, pgoff) -> None:
        """v12 16/26 ``luf_flush(0)`` after ``->write_begin`` succeeds in
        ``mapping_write_begin`` (include/linux/fs.h), ``luf_flush_mapping(mapping)`` since
        20/26."""
        self.luf_flush_mapping(task, file)

    def truncate_inode_pages_range(self, task, file, pgoff) -> None:
        """Patch 16/26 of v12 calls ``luf_flush(0)`` after ``truncate_inode_folio``'s
        ``filemap_remove_folio`` and at the end of ``truncate_inode_pages_range``; 20/26
        makes both ``luf_flush_mapping(mapping)``: a hole punch cannot leave a LUF'd entry
        reading the removed folio (``litmus/luf-trunc-hole-punch.litmus``)."""
        self.luf_flush_mapping(task, file)

    def context_switch(self, cpu_id, prev, next_mm) -> None:
        """``finish_task_switch``: v12 16/26 ``luf_flush(0)``, 19/26 ``luf_flush_mm(mm)``
        with ``mm`` the lazy-TLB mm being dropped (``rq->prev_mm``). The favourable reading
        of this module flushes at every switch (module docstring); the mm flushed is the
        one the CPU switches away from."""
        self.luf_flush_mm(cpu_id, prev)

    def finish_task_switch(self, task, mm) -> None:
        """v12 19/26 in ``finish_task_switch`` (kernel/sched/core.c), the block that drops
        the lazy-TLB mm a kernel thread borrowed (``if (mm) { ...
        mmdrop_lazy_tlb_sched(mm); }`` with ``mm = rq->prev_mm``): 16/26's ``luf_flush(0)``,
        ``luf_flush_mm(mm)`` since 19/26, run in the context of the user task switched in:
        ``task``, an operation (``current->tlb_ubc`` is its own, so the diet of
        ``luf_flush_mm``, :meth:`_luf_flush_batch` and :meth:`_diet`, works on the
        deferrals it has pending: docs/LUF.md, "A third window"), or a CPU number (a user
        task between operations, with no batch). The machine calls it for a user task's
        operation stepped again after it slept on a lock (``Machine._switched_in``: ``mm``
        the CPU's mm, which the idle task kept), and for the first user task to run on a
        CPU after a kernel thread's operation there (``Machine._from_kthread``: ``mm`` the
        mm that thread kept)."""
        self.luf_flush_mm(task, mm)

    def folio_mkclean(self, task, frame) -> None:
        """v12 16/26: ``luf_flush(0)`` at the end of ``folio_mkclean`` ("Ensure to clean
        stale tlb entries for this mapping"), before writeback copies the folio out;
        ``luf_flush_mapping(mapping)`` since 20/26 (``mapping = folio_mapping(folio)``)."""
        self.luf_flush_mapping(task, self.folio_file(frame))

    def walk_abort(self, task, frame, migration) -> None:
        """v12 16/26: ``if (!ret) can_luf_fail();`` at the end of ``try_to_unmap_one``: a
        walk that stopped (a lazyfree folio found re-dirtied) makes the folio not LUF-able,
        so :meth:`try_to_unmap_end` puts its batch in ``tlb_ubc``, flushed at the pass's
        end as mainline's, where the model deferred it until the frame's next allocation
        before 2026-12-05 (docs/model.md section 11)."""
        task.tlb_ubc.folio_ro = False

    def shrink_folio_list_keep(self, task, frame) -> None:
        """v12 25/26: ``if (can_luf) luf_flush(fold_unmap_luf());`` at ``keep:``.

        ``can_luf`` is what ``try_to_unmap`` returned for the kept folio:
        ``can_luf_test()``, v12's ``current->can_luf`` (set by ``can_luf_init`` for an
        anonymous or file folio, cleared by ``can_luf_fail()`` at a writable PTE or an
        aborted walk). Unlike v10/v11's it does not ask whether a PTE was batched, so a
        folio whose PTEs were all cleared with ``ptep_clear_flush`` flushes here too.

        ``fold_unmap_luf()`` gives this pass's ``tlb_ubc_luf`` (every LUF-able folio it
        unmapped so far, not only this one) a new key, and ``luf_flush(key)`` folds that
        batch into ``tlb_ubc`` and ends in ``try_to_unmap_flush()``, which flushes the
        task's other batches too. With nothing to fold, or all of it covered by
        ``tlb_ubc`` already (``arch_tlbbatch_done``), it returns 0, and ``luf_flush(0)``
        folds ``luf_batch[0]``, which nothing fills since 20/26 ("XXX: Reserve the 0th
        entry for later use."): it flushes the task's batches only, as ``luf_flush(key)``.
        (Before 20/26 was modelled, the model flushed every LUF deferral there, 16/26's
        entry 0; before 2026-12-05 it flushed only the pass's LUF batch, and only for a
        folio that had a PTE in it.) The pass's folios owe nothing afterwards; they leave
        ``unkeyed`` after the flush, as in :meth:`try_to_unmap_flush_dirty`."""
        ubc = task.tlb_ubc
        if ubc.folio_frame != frame or not ubc.folio_ro:
            return  # try_to_unmap returned false: can_luf is false, nothing at keep:
        self._flush_with_tlb_ubc(task, *self._take_pass_luf(task))  # luf_flush(key or 0)

#: the rule the fuzzer finds first (tests/test_protocols.py: seed 0, 6000 examples of 100 steps):
#: the S2 of the mprotect race (litmus/bug-2.4-reclaim-vs-mprotect.litmus). The lazyfree C1
#: (litmus/luf-6-lazyfree-discard.litmus) is what docs/LUF.md's random column finds first
#: (certify --seed 1, 50 steps); LUF.md lists both.
EXPECTED_VIOLATION = "S2"
