"""LUF RFC v12 *as posted* (2025-02-20, "[RFC PATCH v12 00/26]", Byungchul Park): the two
readings of :mod:`protocols.luf_v12` taken in LUF's favour, undone.

1. The narrowed flushes of 19/26 and 20/26 fold nothing in (``LUF_BATCH_FLUSH_REQUIRED =
   False``). 19/26's ``fold_luf_batch_mm`` (``set_tlb_ubc_flush_pending``, for a LUF-able
   PTE)::

       if (unlikely(need_fold))
               arch_tlbbatch_add_pending(&dst->batch.arch, mm, 0, -1UL);
       dst->ugen = new_luf_ugen();

   sets no ``dst->batch.flush_required``; ``luf_batch_init`` resets it to false, and 08/26's
   ``fold_batch(dst, src, reset)`` starts ``if (!src->flush_required) return;``. So
   ``luf_flush_mm`` (``fold_batch(tlb_ubc, &lb->batch, false)``, then ``arch_tlbbatch_diet``,
   ``try_to_unmap_flush()``) and 20/26's ``luf_flush_mapping`` flush the caller's own
   batches alone: the hole punch, a ``write()`` and a fault into a shared file no longer
   end another CPU's LUF'd entry, where 16/26's ``luf_flush(0)`` did (the patches read
   through the search tools' mail copies, 2026-12-05; ``litmus/luf-trunc-hole-punch``,
   ``luf-2``, ``luf-3`` and ``luf-5`` fail here, docs/LUF.md).

2. Source line (kernel-notes section 7, "LUF postings vs the modules"): v12's context-switch
flush is in ``finish_task_switch()`` inside the block that drops a lazy-TLB mm
(``mmdrop_lazy_tlb_sched``), i.e. only when a CPU switches away from an mm it borrowed
while running a kernel thread, not on every ``switch_mm``. The machine's ``switch_mm`` is
a switch between two user tasks (docs/model.md section 1), so this module never flushes
there. :mod:`protocols.luf_v12` flushes on every switch (``luf_flush_mm`` in
``context_switch``), which can only remove stale entries earlier. Since 2026-12-06 the
machine has one such drop: a user task's operation that slept on a lock is switched back
in from the idle task, which held the CPU's mm lazily (``Machine._step``, hook
``finish_task_switch``); both modules run ``luf_flush_mm(mm)`` there, in that task's
context (this one inherits :meth:`LufV12.finish_task_switch`: with its ``fold_batch``
folding nothing from ``mm->luf_batch``, what it flushes is the task's own batches after the
diet, ``arch_tlbbatch_diet(&tlb_ubc->arch, lb->ugen)``); and, since the same day, the drop when a user task runs on a CPU after a kernel
thread's operation there (reclaim, migrate, writeback: ``Machine._from_kthread``).

Decided the same way in both modules:

* the whole series: 16/26's ``luf_flush(0)`` points narrowed by 19/26 and 20/26 to
  ``luf_flush_vma`` / ``luf_flush_mm`` / ``luf_flush_mapping`` (per-mm and per-mapping
  ``luf_batch``, modelled since 2026-12-05; :mod:`protocols.luf_v12`);
* eligibility on ``pte_write`` only (``LUF_DIRTY_OK = True``; v12 ``can_luf_*``);
* the flush at the end of ``folio_mkclean()`` (16/26), the flush of the pass's LUF batch
  when reclaim keeps a LUF-able folio (25/26) and ``can_luf_fail()`` on an aborted walk
  (16/26), all inherited from :class:`~protocols.luf_v12.LufV12` (modelled since
  2026-12-05; the model had no hook at those points before).
"""
from protocols.luf_v12 import LufV12


class LufV12Posted(LufV12):
    """LUF RFC v12 as posted: narrowed flushes that fold no one else's batch, and the
    context-switch flush where the posting has it (a user task switched back in from a
    kernel thread: :meth:`finish_task_switch`; never at a plain switch)."""

    #: as posted: nothing sets ``mm->luf_batch`` / ``mapping->luf_batch``'s
    #: ``flush_required``, so ``fold_batch`` folds nothing from them (module docstring, 1)
    LUF_BATCH_FLUSH_REQUIRED = False

    def context_switch(self, cpu_id, prev, next_mm) -> None:
        """``finish_task_switch``: v12 flushes (``luf_flush_mm(mm)`` since 19/26) only when
        dropping a borrowed lazy-TLB mm, so nothing happens at a plain switch between two
        user tasks. A ``switch_mm`` right after a kernel thread's operation on the CPU is
        also that drop: the machine then calls :meth:`finish_task_switch` after this hook
        (``Machine._from_kthread``)."""


#: the rule the fuzzer finds first (tests/test_protocols.py: seed 0, 6000 examples of 100
#: steps): the S2 of the mprotect race (pte_write-only eligibility); docs/LUF.md lists every
#: rule it violates (the lazyfree C1 among them)
EXPECTED_VIOLATION = "S2"
