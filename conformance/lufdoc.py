"""Generate docs/LUF.md: the LUF review thread's scenarios, executed, with what each variant costs.

``flushcheck luf-doc`` rewrites the file; ``flushcheck luf-doc --check`` exits 1
if the committed file differs from what the current code produces (a test runs
it). Everything in the file is computed:

* the scripted and explored scenarios are the ``litmus/luf-N-*.litmus`` files (a
  threaded file is explored exhaustively, :mod:`conformance.search.explorer`);
* the random column is one deterministic run of certify's raw swarm walk per protocol
  (fixed seed, fixed example count), exactly ``flushcheck certify P --seed 1 --jobs 1
  --profile ci`` cut to ``RANDOM_EXAMPLES`` examples;
* *further rules*: every other rule the random machine violates, found by running
  ``FURTHER_CHUNKS`` more chunks of the same walk with the rules already found switched off
  (:func:`suppressed`), each minimized as certify minimizes;
* *who can see it*: the failing scenarios run again with C1 switched off (what user
  programs and the kernel's own safety rules can see: S1, S2, S3, O1), and the
  observation files ``litmus/luf-obs-*.litmus``;
* the cost table: :func:`conformance.cost.cost_table` (seeded workload mixes);
* the closing note's times to first failure are *measured* (not reproducible), so
  they are read from ``bench/luf_ttff.json``, written by ``bench/luf_cost.py``, and
  printed with the date they were measured.

:func:`generate_text` is the plain-text summary for a mailing-list reply (the verdict
table in fixed-width text, one CPU-column diagram of at most ~25 lines per finding).
"""
from __future__ import annotations

import contextlib
import json
import os

from .config import DEFAULT
from .litmus import corpus, run
from .registry import load_protocol
from .trace import HW, columns, heading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: rows: each LUF variant in its favourable reading, then as posted where a reading differs
ROWS = ["luf_v10", "luf_v10_posted", "luf_v11", "luf_v11_posted", "luf_vma_flag", "luf_v12",
        "luf_v12_posted", "luf_reclaim_migrate_only", "luf_lazyfree_fix", "linux", "immediate"]
#: what each row is (the "reading" column)
READING = {
    "luf_v10": "v10, favourable reading",
    "luf_v10_posted": "v10 as posted",
    "luf_v11": "v11, favourable reading",
    "luf_v11_posted": "v11 as posted",
    "luf_vma_flag": "per-VMA flag (seed thread proposal)",
    "luf_v12": "v12, favourable reading",
    "luf_v12_posted": "v12 as posted",
    "luf_reclaim_migrate_only": "reclaim/migration only (Huang Ying)",
    "luf_lazyfree_fix": "v11 (favourable) + the lazyfree fix",
    "linux": "mainline",
    "immediate": "flush at every clear",
}
#: favourable module -> (as-posted module, the differences, each with its source line)
PAIRS = {
    "luf_v10": ("luf_v10_posted", [
        "eligibility: the module also excludes dirty PTEs (`LUF_DIRTY_OK = False`, the migrc "
        "RFC v2 rule); v10 RESEND 09/12 tests `pte_write(pteval)` only",
        "fault: the module flushes whenever a fault installs or upgrades a writable PTE, "
        "atomically with the install (the cover letter's \"non-writable ptes change to "
        "writable e.g. through fault handler\"); v10 RESEND 09/12 flushes only at the top of "
        "`do_wp_page` (`if (folio) luf_flush();`), so a write fault on an empty PTE "
        "(`do_shared_fault`) installs a writable PTE with no flush"]),
    "luf_v11": ("luf_v11_posted", [
        "eligibility: as v10 (v11 09/12 tests `pte_write` only)",
        "fault: the module flushes whenever a fault installs or upgrades a writable PTE, "
        "atomically with the install; v11 09/12 flushes only in `need_luf_flush`, when the fault "
        "finds the PTE changed under it to a writable one (after `update_mmu_tlb*()`)",
        "mmap: the module keeps v10's give-up at writable mmap; v11 adds no flush to mm/mmap.c"]),
    "luf_v12": ("luf_v12_posted", [
        "narrowed flushes: the module's `luf_flush_mm` / `luf_flush_mapping` fold the mm's and "
        "the file's `luf_batch` in and flush it (`LUF_BATCH_FLUSH_REQUIRED`), as 19/26 and 20/26 "
        "evidently mean; as posted, `fold_luf_batch_mm` never sets the batch's `flush_required` "
        "and 08/26's `fold_batch` returns at once for such a batch, so they flush the caller's "
        "own batches alone (scenarios 2, 3, 5 and the hole punch fail)",
        "context switch: the module flushes (`luf_flush_mm` of the mm switched away from) on "
        "every switch; v12 flushes in `finish_task_switch` (16/26 `luf_flush(0)`, 19/26 "
        "`luf_flush_mm(mm)`) only in the block that drops a borrowed lazy-TLB mm "
        "(`mmdrop_lazy_tlb_sched`), which this machine runs where a user task that slept "
        "on a lock is switched back in from the idle task, and where a user task runs on a "
        "CPU after a kernel thread's reclaim, migration or writeback there (hook "
        "`finish_task_switch`, both modules)"]),
}
TITLES = {1: "munmap after reclaim", 2: "file changed underneath", 3: "RO + RW mappings",
          4: "freed page reused", 5: "fault-in after reclaim", 6: "lazyfree discard",
          7: "mprotect vs migration", 8: "migration restores writable"}
OBJECTIONS = {
    1: "Dave Hansen: munmap() finds only pte_none, the mmu_gather skips its flush, a new "
       "mmap at the address reads through the stale entry",
    2: "Dave Hansen: another process write()s the file; the stale entry still reads the old page",
    3: "Dave Hansen (v11 NAK): a read-only and a writable mapping of one file; a store through "
       "the writable one changes the file without write()",
    4: "Matthew Wilcox: the freed page is allocated to slab / another process and read through "
       "the stale entry",
    5: "the fault handler brings the page back in on another CPU and makes it writable",
    6: "beyond the thread: reclaim discards a MADV_FREE'd page whose PTE was write-protected; "
       "LUF frees it without the flush",
    7: "beyond the thread: the 2017 reclaim-vs-mprotect race (kernel-notes 2.4, explored) under "
       "LUF's eligibility test, through migration: mprotect leaves a read-only *dirty* PTE whose "
       "writable entry is still cached",
    8: "beyond the thread: scenario 3 through migration: a writable PTE flushed at once "
       "(`ptep_clear_flush`) never reaches `can_luf_fail`, the read-only one is deferred, and "
       "`remove_migration_ptes` restores the writable PTE, so the store needs no fault (the "
       "writer's mm runs on no other CPU and its own task migrates: `move_pages(2)`, "
       "`mbind(2)`; a NUMA hinting fault would end in `handle_mm_fault`'s `luf_flush`)",
}
#: Why a variant passes a scenario (checked against the module's code; tests/test_luf_mechanisms.py).
MECHANISMS = {
    ("immediate", 0): "never defers: `ptep_clear_flush` at every PTE clear (`Immediate.should_defer_flush`)",
    ("linux", 0): "`try_to_unmap_flush` before `free_unref_folios`: no stale entry outlives reclaim",
    ("*", 1): "`zap_pte_range` calls `flush_tlb_batched_pending`: LUF's unmap went through "
              "`set_tlb_ubc_flush_pending`, so the mm is pending and gets `flush_tlb_mm` "
              "(Byungchul's argument in the seed)",
    ("luf_v12", 1): "`flush_tlb_batched_pending` in `zap_pte_range` (mm pending), then "
                    "`tlb_end_vma`'s `luf_flush_vma` (16/26's `luf_flush(0)` narrowed by "
                    "19/26; `LufV12.tlb_end_vma`)",
    ("luf_v12_posted", 1): "as `luf_v12`: `flush_tlb_batched_pending`, then `tlb_end_vma`'s `luf_flush_vma`",
    ("luf_vma_flag", 1): "`flush_tlb_batched_pending` in `zap_pte_range` (mm pending); the "
                         "VMA flag check in `tlb_end_vma` comes second",
    ("*", 4): "the allocation-time flush: the page still owes its flush when it leaves the "
              "allocator (`LufBase.page_alloc`)",
    ("luf_v10", 3): "give-up at the fault: `do_shared_fault` installs a writable PTE, "
                    "`LufV10.fault_install_pte` does `luf_flush(0)` before anyone can use it",
    ("luf_v11", 3): "as v10: `fault_install_pte` give-up on the writable PTE",
    ("luf_lazyfree_fix", 3): "as v10: `fault_install_pte` give-up on the writable PTE",
    ("luf_v10", 5): "give-up at the fault: `do_wp_page` makes the PTE writable, "
                    "`LufV10.fault_install_pte` does `luf_flush(0)`",
    ("luf_v10_posted", 5): "give-up at the top of `do_wp_page` (`LufV10Posted.do_wp_page`: "
                           "`luf_flush()`), before the PTE is made writable",
    ("luf_v11", 5): "as v10: `fault_install_pte` give-up when `do_wp_page` makes the PTE writable",
    ("luf_lazyfree_fix", 5): "as v10: `fault_install_pte` give-up when `do_wp_page` makes the PTE writable",
    ("luf_v11", 2): "`file_end_write` does `luf_flush(0)` (`LufV11.file_end_write`) before write() returns",
    ("luf_v11_posted", 2): "`file_end_write` does `luf_flush(0)` (`LufV11Posted.file_end_write`)",
    ("luf_lazyfree_fix", 2): "`file_end_write` does `luf_flush(0)` (inherited from `LufV11`)",
    ("luf_v12", 2): "`mapping_write_begin` does `luf_flush_mapping` (20/26; `luf_flush(0)` in "
                    "16/26) before the page-cache page changes",
    ("luf_v12", 3): "`luf_flush_mapping` (the file's `luf_batch`, 20/26) and `luf_flush_mm` at the "
                    "end of `handle_mm_fault` for a VM_WRITE VMA, before the faulting CPU "
                    "retries its store",
    ("luf_v12", 5): "`luf_flush_mapping` at the end of `handle_mm_fault` (write fault in a shared "
                    "mapping of the file: its `luf_batch` holds the reader's CPU)",
    ("linux", 7): "`flush_tlb_batched_pending` in `change_pte_range` (3ea277194daa) and "
                  "`try_to_unmap_flush` at `move:`, before the copy",
    ("*", 7): "`LUF_DIRTY_OK = False`: the read-only but dirty PTE keeps the folio out of LUF, so "
              "its deferred flush stays in `tlb_ubc` and `try_to_unmap_flush` at `move:` does it "
              "before the copy",
    ("luf_lazyfree_fix", 6): "`can_luf` is false for an anonymous `!swapbacked` folio "
                             "(`LufBase.folio_lazyfree`, `LUF_LAZYFREE = False`): the discard's "
                             "deferred flush stays in `tlb_ubc` and `try_to_unmap_flush` does it "
                             "before the folio is freed",
}
#: The lazyfree finding, in words (docs/LUF.md "The lazyfree finding").
LAZYFREE = """\
**Timeline** (`litmus/luf-6-lazyfree-discard.litmus`; the explorer's shortest counterexample is
[`luf_v12`, scenario 6](#luf-v12-6), and the random machine's [`luf_v11`](#luf-v11-random)):

```text
CPU0 (process)                          CPU1 (kswapd)
*p = 1                  (anon page, PTE writable+dirty)
madvise(p, MADV_FREE)   PTE clean+old, write bit kept; folio lazyfree; flushed
mprotect(p, PROT_READ)  PTE read-only; flushed
x = *p                  TLB: p -> pfn0 RO (reads 1)
                                        shrink_folio_list(pfn0)
                                          try_to_unmap_one: ptep_get_and_clear,
                                            set_tlb_ubc_flush_pending (deferred)
                                          !swapbacked && clean: discard
                                          LUF: all PTEs were read-only -> no flush,
                                            pfn0 freed with the flush owed
                                        reclaim returns
x = *p                  still 1 through the stale entry; the page reads 0 for
                        everyone else (a fault maps a zero-filled page)
```

**The kernel lines it rests on.**
- mainline `try_to_unmap_one` (mm/rmap.c) clears the PTE with the flush deferred
  (`ptep_get_and_clear` + `set_tlb_ubc_flush_pending`) *before* the MADV_FREE check
  (`!folio_test_swapbacked`); the discard (`goto discard`) keeps that deferral, and
  `shrink_folio_list` frees the folio only after `try_to_unmap_flush()`. So in mainline the
  stale-read window ends inside reclaim, and the oracle's in-flight exemption covers it
  (`linux` and `immediate` pass scenario 6, every interleaving).
- MADV_FREE keeps the write bit: `madvise_free_pte_range` clears only young and dirty
  (`clear_young_dirty_ptes(..., CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY)`). LUF takes a lazyfree folio
  only when something else write-protected its PTE: `mprotect(PROT_READ)` here, fork's COW
  write-protect (`copy_present_pte`) in the kernel (fork is not modelled).
- No posting excludes lazyfree folios: v10/v11 `can_luf_folio` excludes zone-device, hugetlb and
  large folios; v12 `can_luf_init` adds DEBUG_PAGEALLOC/KASAN/init_on_free and then sets
  `can_luf` for any anonymous folio; none tests `folio_test_swapbacked`, and the discard falls
  through to the `free_folios_luf` batch.

**Severity.** After reclaim returns, a CPU keeps reading the process's pre-MADV_FREE data
through a read-only entry while the page reads zero for everyone else, with no time bound
(until the page leaves the allocator or some flush point runs); no cross-process leak (S1
holds), no lost write (the entry is read-only), but MADV_FREE's contract ("once freed, the
caller sees zero-fill-on-demand pages") is broken; under v10/v11 two threads of one program
see different contents (O1 in `litmus/luf-obs-lazyfree-two-threads.litmus`), and so do they
under v12 as posted (its `luf_flush_mm` at the end of the other thread's fault folds no batch
in); under v12 read in LUF's favour (`luf_v12`) only a program that asked
`mincore()`/`/proc/self/pagemap` can tell.

**The fix** (`protocols/luf_lazyfree_fix.py`, one line on any variant: `LUF_LAZYFREE = False`):
`can_luf` is false for `folio_test_anon && !folio_test_swapbacked`, so the discard's deferred
flush stays in `tlb_ubc` and `try_to_unmap_flush()` does it before the folio is freed, as
mainline (equivalently: send the discard to the normal free batch, not `free_folios_luf`).
Its cost is the lazyfree discards' flushes (cost table).

**It does not make v11 pass** (found 2026-12-02 by `flushcheck certify luf_lazyfree_fix --seed
31337`, C1 after 21 s with two jobs; `litmus/luf-trunc-hole-punch.litmus`, explored): a hole
punch (`truncate_pagecache_range`, one `unmap_mapping_range` before truncating the page cache)
zaps a file page and flushes; a fault maps the page again on another CPU and a reclaim there
clears that PTE with the flush deferred by LUF, keeping the folio (the zap's gather still holds
it); `truncate_inode_folio` finds the folio unmapped, deletes it and zeroes the hole, and
nothing flushes the entry, which still reads the old data. It is scenario 2 (the file changed
underneath) without `write()`: every v10 and v11 variant fails it; v12's `luf_flush(0)` at the
end of `truncate_inode_pages_range` (patch 16/26, `luf_flush_mapping` since 20/26; the model's
hook of that name) answers it, and `luf_v12` passes the file. `luf_lazyfree_fix` now declares
C1 for it.

**v12 as posted reopens it** (found 2026-12-05 when 19/26 and 20/26 were modelled, and
corrected the same day by a review of the patches): 20/26 turns the `luf_flush(0)` at the end
of `truncate_inode_pages_range` into `luf_flush_mapping(mapping)`, which folds
`mapping->luf_batch` into the caller's batch with `fold_batch(tlb_ubc, &lb->batch, false)` and
flushes. But nothing ever sets that batch's `flush_required`: 19/26's `fold_luf_batch_mm`
(called from `set_tlb_ubc_flush_pending` for a LUF-able PTE) only ORs the mm's CPUs into
`batch.arch` and stamps a new `ugen`, `luf_batch_init` leaves `flush_required` false, and
08/26's `fold_batch` begins `if (!src->flush_required) return;`. So as posted every narrowed
flush (`luf_flush_mapping`, `luf_flush_mm`, `luf_flush_vma`) flushes the caller's own batches
alone: `luf_v12_posted` fails the hole punch (this file), and scenarios 2, 3 and 5 (a
`write()`, a store through a writable mapping, a fault after reclaim), which 16/26's
`luf_flush(0)` answered. `luf_v12` reads the series in LUF's favour, with the batches folded
in as their names promise (`LUF_BATCH_FLUSH_REQUIRED`); the fix is one line,
`dst->batch.flush_required = true;` in `fold_luf_batch_mm`.

**With that fixed, a second window remains** (`litmus/luf-narrow-fold-before-add-pending.litmus`,
C1 for both modules). `set_tlb_ubc_flush_pending` records the LUF unmap in `mm->luf_batch` and
`mapping->luf_batch` (`fold_luf_batch_mm`: a new `luf_ugen`) *before* the PTE's
`arch_tlbbatch_add_pending`, the `inc_mm_tlb_gen` that tells a flush IPI there is work; once
the batches hold the mm's CPUs (`arch_tlbbatch_need_fold` false, the steady state: they are
never emptied) nothing bumps `tlb_gen` in between. A `luf_flush_mapping` that lands there
finds the reclaiming CPU up to date (x86 `flush_tlb_func`: "nothing to do"), flushes nothing
on it, and still marks it done past the batch's ugen (17/26's `tlb_flush_end` marks every
CPU of the batch), so the next `luf_flush_mapping` drops it (`arch_tlbbatch_diet`). No lock
is held from the fold to `arch_tlbbatch_add_pending`; any flush that carries a ugen and does
not bump the mm's `tlb_gen` opens it (a takeoff flush too, not only truncate's). As posted
the hole punch fails without this race (above); the diagram is the corrected series:

```text
CPU0 (fallocate PUNCH_HOLE file0:1)        CPU2 (mm0, reclaim)
                                           (an earlier LUF unmap put CPUs 0-2 in
                                            mm0's and file0's luf_batch)
unmap_mapping_range: zap mm0:v3, flush
zap mm1:v1 (PTL of mm1)                    read v3: fault maps file0:1 RO, TLB fill
                                           try_to_unmap_one: ptep_get_and_clear(v3)
                                           set_tlb_ubc_flush_pending:
                                             fold_luf_batch_mm(mm0, file0): new ugen,
                                             need_fold false: no tlb_gen bump yet
tlb_end_vma: luf_flush_vma(mm1's VMA)
  luf_flush_mapping(file0): IPI to CPU2
    flush_tlb_func: local tlb_gen ==
    mm's: "nothing to do"
  tlb_flush_end: CPU2 done past the ugen
                                             arch_tlbbatch_add_pending: tlb_gen++
                                           __remove_mapping; freed with its luf_key
truncate_inode_pages_range:
  luf_flush_mapping(file0): diet leaves
  nothing, returns; the hole reads 0
                                           read v3: the stale entry, old data (C1)
```

16/26 alone folded `luf_batch[0]` *after* `arch_tlbbatch_add_pending`; in the corrected
series, the fold moved after it (or `tlb_gen` bumped before the new ugen) makes the scenario
pass (`tests/test_luf_mechanisms.py`); the entry stays until the page is allocated again (the
takeoff flush covers CPU2). The model treats every file VMA as `VM_SHARED` (the trigger at
`tlb_end_vma` needs a `MAP_SHARED` mapping of the file).

**A third window, found by reading, not by the machine: the diet of the caller's own batch.**
`luf_flush_mm` and `luf_flush_mapping` (19/26, 20/26) fold the batch into `current->tlb_ubc`
and then call `arch_tlbbatch_diet(&tlb_ubc->arch, lb_ugen)` (17/26; x86 and riscv, arm64's
drops nothing), which drops every CPU whose `ugen_done` is not before the batch's ugen, and
return without `try_to_unmap_flush()` if nothing is left. But `current->tlb_ubc` also holds
the caller's *own* deferrals: a writable PTE, or a folio that is not LUF-able, goes to
`tlb_ubc` (16/26: `if (!can_luf_test()) tlb_ubc = &current->tlb_ubc`), and stamps no ugen.
So a CPU marked done by any batched flush that started after the batch's stamp
(`tlb_flush_start`) is dropped, even one that finished before the caller cleared its PTE and
may have cached the entry again since; nothing re-adds it (`try_to_unmap_flush_dirty`,
`fold_unmap_luf` and the pass's last `try_to_unmap_flush` flush the dieted mask), so the
caller's own flush flushes nothing for it. The kernel reaches the diet with such a batch
(1) where a user task in direct reclaim is rescheduled while a deferral of its own is pending
and switched back in from a kernel thread (the idle task, a kworker: `context_switch` sets
`rq->prev_mm` to that thread's lazily held `active_mm`, and `finish_task_switch` runs
`luf_flush_mm(mm)` in the task's context, 19/26): between `try_to_unmap` and
`try_to_unmap_flush_dirty` only with full preemption (no schedule point lies there), else at
the next iteration's `cond_resched()` or a sleeping rmap lock while a deferral that outlived
its folio's iteration (`keep_locked` / `activate_locked`, a dirty file folio in direct
reclaim) is pending; kswapd, a kernel thread, never takes that branch; and (2), with no
scheduling at all, where `try_to_unmap_one` uses `ptep_clear_flush` (only when
`should_defer_flush()` is false: on x86 no other CPU in the mm's `mm_cpumask`) on a PROT_NONE
PTE with no flush pending (19/26 `luf_flush_vma`, then `luf_flush_mm`; 20/26
`luf_flush_mapping` for a `VM_SHARED` file VMA) while deferrals of earlier PTEs or folios
are pending. The machine had neither until 2026-12-06 (no kernel threads, no preemption
inside an operation, no PROT_NONE); it now has the sleeping-lock half of (1): a
user task's operation stepped again after it blocked on a sleeping lock runs the protocol's
`finish_task_switch(task, mm)` (the idle task held the CPU's mm lazily; `Machine._switched_in`),
where both v12 modules call `luf_flush_mm(mm)`. Of the machine's user-task paths only
MADV_PAGEOUT (reclaim in the task's context) has deferrals of its own; its diet is reached
(`test_pageout_that_slept_is_dieted_by_finish_task_switch`: the task sleeps on the anon_vma
rwsem a mremap holds) and breaks no rule, since the folio whose walk it slept in is unmapped
after it, in the same mm, and puts every CPU of the mm back (its LUF unmap into the mm's
`luf_batch`, which the madvise's `tlb_end_vma` flushes in the step that frees the pass's
folios). The model's `migrate` is kcompactd's (a kernel thread); `compact`, the same
migration by a user task in direct compaction, gets S2 by the rule alone
(`litmus/luf-diet-own-batch.litmus`: the migration's second folio is another mm's).
Before, `LufV12._diet` modelled the diet and changed no run;
`tests/test_luf_mechanisms.py::test_v12_diet_in_a_reclaiming_task_drops_its_own_deferral`
adds path (1) by hand, with full preemption, and gets S2 under both v12 modules (it passes
without the diet); a read-only review of the patch text found no way to refute it, and saw
the same run end in S1 once the frame is reused (S2 and C1 switched off):

```text
CPU0 (task T in direct reclaim, mm0)       CPU2 (mm0)
reclaim file0:0 (read-only): LUF,
  mm0->luf_batch.ugen = u1
an allocation's takeoff flush: CPUs 0, 2
  marked done past u1
                                           store v0 (anon): W D entry
try_to_unmap(v0's folio): writable, not
  LUF-able: tlb_ubc {0, 2}
preempted; a kernel thread runs on CPU0,
  holding mm0 lazily; T switched back in:
finish_task_switch: luf_flush_mm(mm0)
  arch_tlbbatch_diet(tlb_ubc, u1): CPUs 0
  and 2 are done past u1: both dropped,
  empty: return
try_to_unmap_flush_dirty: nothing left
pageout: copy v0's folio out               holds W D for v0 at the copy: a
                                             later store is lost (S2); once the
                                             frame is freed and reused, S1
```

On x86 CPU2 catches up at its next `switch_mm` into mm0 or flush IPI for mm0
(`arch_tlbbatch_add_pending` bumped `tlb_gen`); a thread that keeps running mm0 across the
pageout keeps the entry. A fix: diet a copy of `lb->batch` taken under `lb->lock` (held for
read, so `lb->batch` itself must not change), return if the copy is empty, else fold it into
`tlb_ubc` and `try_to_unmap_flush()`; never diet `tlb_ubc`. Migration (`try_to_migrate` with
`TTU_BATCH_FLUSH`) in a user task (direct compaction: the machine's `compact`) is the same
window, and the machine gets it by itself, with no preemption, at a sleeping rmap lock
(`litmus/luf-diet-own-batch.litmus`: S2 under both v12 modules; every other protocol
passes, and so do the v12 modules with kcompactd's `migrate`):

```text
CPU1 (task T, mm1: compact A, C)           CPU0 (mm0)                 CPU3 (mm1)
(reclaim of mm1's file1:0 stamped mm1's
 luf_batch u1; a takeoff flush marked
 CPUs 1, 3 done past u1)                                              store v0: W D entry (A)
try_to_migrate(A): writable, not LUF-able:
  tlb_ubc {1, 3}
                                           mremap(v0 -> v1): holds
                                           mm0's anon_vma for write
try_to_migrate(C, mm0:v0): anon_vma
  held: T sleeps, the idle task runs
                                           mremap returns
T switched back in: finish_task_switch:
  luf_flush_mm(mm1): diet drops 1 and 3,
  empty: return
C's unmap adds mm0's CPUs 0, 2
move: try_to_unmap_flush: CPUs 0, 2
copy A                                                                 holds W D for A at
                                                                       the copy (S2)
```

Not reported to the list from here. The two other CPU-dropping steps of the series were read
on 2026-12-06 and found sound: `try_to_unmap_flush_takeoff` (09/26, 16/26) drops the CPUs its
takeoff flush just flushed from the allocating task's `tlb_ubc`, `tlb_ubc_ro` and
`tlb_ubc_luf` (`arch_tlbbatch_done`, 01/26), which hold only that task's own deferrals, each
`tlb_gen` bump done before the flush (a PTE cleared after it puts the CPU back); it is
modelled since then (`LufV12.try_to_unmap_flush_takeoff`: a migration whose destination
allocation takes a LUF'd page; no verdict moved). `fold_unmap_luf` (16/26) keys only the CPUs
`tlb_ubc` does not cover, "always followed by try_to_unmap_flush()"; the model reaches the
same key through 17/26's mark of that flush (`LufV12._luf_done`)."""

#: Further explanations of findings (variant, rule) -> text.
FINDINGS = {
    "S2": "RFC v12 (and v10/v11 as posted) decide LUF eligibility on `pte_write` alone. An "
          "`mprotect(PROT_READ)` on another CPU write-protects the PTE under the PTL (the dirty "
          "bit stays) and flushes only later, after dropping the PTL (`tlb_end_vma`/"
          "`tlb_finish_mmu`); a migration running in between sees a read-only PTE and takes the "
          "folio for LUF; at `move:` `fold_unmap_luf()` keys it before `try_to_unmap_flush()`, "
          "so the copy starts while the mprotect CPU still holds a writable, dirty TLB entry: a "
          "store in that window is lost (`litmus/luf-7-mprotect-vs-migration.litmus`). Reclaim "
          "is immune: `try_to_unmap_flush_dirty()` before `pageout()` sees the batch's "
          "`writable` (from `pte_dirty`) and `try_to_unmap_flush()` folds `tlb_ubc_luf` in "
          "(`litmus/bug-2.4-reclaim-vs-mprotect.litmus` passes under every variant). Mainline is "
          "immune (every deferred entry is flushed before IO and copy); excluding dirty PTEs "
          "(the favourable v10/v11 reading) or checking `mm_tlb_flush_pending()` closes it.",
}
#: why another thread's fault removes the lazyfree stale entry (class C), per variant
LAZY_C = {
    "luf_v12": "every fault in a VM_WRITE/VM_MAYWRITE VMA flushes its mm's LUF batch at the end "
               "of `handle_mm_fault` (`luf_flush_mm`)",
    "luf_v12_posted": "every fault in a VM_WRITE/VM_MAYWRITE VMA flushes its mm's LUF batch at the "
                      "end of `handle_mm_fault` (`luf_flush_mm`)",
    "luf_vma_flag": "the other thread's fault finds its VMA flagged (LUF deferred a flush there) "
                    "and flushes",
}
#: severity classes, most severe first (the "rank" column)
CLASSES = [
    ("A", "lost write or memory of another owner (S1, S2)"),
    ("B", "stale data observable by a program (an O1 violation in a scenario where the program "
          "itself holds the new value: a write()/store it made, or another thread's read)"),
    ("C", "stale data observable only through `mincore()` or `/proc/self/pagemap` (O1 only "
          "against the kernel's expected value; no second view inside the program)"),
    ("D", "the TLB disagrees with the kernel's view at quiescence (C1), nothing a program sees"),
]
#: The random column is exactly ``flushcheck certify P --seed 1 --jobs 1 --profile ci`` (the
#: raw swarm walk, no example database) limited to RANDOM_CHUNKS chunks of RANDOM_CHUNK
#: examples (no time budget, so it is reproducible). 2,000 swarm examples are about 220,000
#: machine actions (lengths 20-200), twice what the earlier 2,000 Hypothesis examples of 50
#: steps ran, in about a fifteenth of the time.
RANDOM_SEED = 1
RANDOM_CHUNK = 500
RANDOM_CHUNKS = 4
RANDOM_EXAMPLES = RANDOM_CHUNK * RANDOM_CHUNKS
#: further rules: chunks run after the first failure (rules found so far switched off), and
#: the most rules listed per protocol
FURTHER_CHUNKS = 4
FURTHER_MAX_RULES = 4
#: where bench/luf_cost.py records the measured times to first failure
TTFF_PATH = os.path.join(ROOT, "bench", "luf_ttff.json")


def mechanism(proto: str, n: int) -> str:
    for key in ((proto, n), (proto, 0), ("*", n)):
        if key in MECHANISMS:
            return MECHANISMS[key]
    return "(no mechanism recorded)"


def _scenarios():
    """The columns: the ``litmus/luf-N-*.litmus`` files, by N."""
    scs = [s for s in corpus() if s.name.startswith("luf-") and s.name[4:5].isdigit()]
    return sorted(scs, key=lambda s: int(s.name.split("-")[1]))


def _observation_files():
    return sorted((s for s in corpus() if s.name.startswith("luf-obs-")), key=lambda s: s.name)


# -- running -------------------------------------------------------------------------------
@contextlib.contextmanager
def suppressed(rules):
    """Within the block, the oracle does not report violations of ``rules`` (they are
    neither raised nor traced). Used to find further rules after the first, and to judge
    only what programs can see (C1 off). Patches ``Oracle._fail`` for the duration (this
    process is single-threaded here) and restores it."""
    from .oracle import Oracle

    rules = frozenset(rules)
    orig = Oracle._fail

    def _fail(self, rule, text, who=None, **kw):
        if rule in rules:
            return None
        return orig(self, rule, text, who, **kw)

    Oracle._fail = _fail
    try:
        yield
    finally:
        Oracle._fail = orig


def run_scenario(sc, cls):
    """The first failure of a scenario under ``cls`` (a script is run, a threaded file
    explored: its shortest counterexample), or None."""
    if sc.threads:
        from .search.explorer import explore

        res = explore(sc, cls)
        if res.failure is None and not res.complete:
            raise RuntimeError(f"{sc.name}: exploration incomplete under {cls.__name__}")
        return res.failure
    return run(sc, cls)


def observe(sc, cls):
    """``run_scenario`` with C1 switched off: what a program (or the kernel's safety rules)
    can see."""
    with suppressed({"C1"}):
        return run_scenario(sc, cls)


def random_cells(proto: str, cls):
    """The random column and the further rules: certify's raw swarm walk (fixed seed, fixed
    example counts), each failure minimized as certify does it.

    Chunks of ``RANDOM_CHUNK`` walk examples with seeds ``chunk_seed(RANDOM_SEED, i)`` run
    until the first failure (at most ``RANDOM_CHUNKS`` chunks: that is the random column,
    exactly ``flushcheck certify P --seed 1 --jobs 1 --profile ci`` cut to that many chunks);
    then ``FURTHER_CHUNKS`` more chunks run with the rules found so far switched off
    (:func:`suppressed`), each new rule's minimized example kept. The walk is a plain seeded
    ``random.Random`` with no state across runs, so this runs in process and is byte-for-byte
    reproducible. The kept actions are replayed (the model is deterministic), each with the
    earlier rules off. Returns ``[(failure, note)]``, the first being the random column; the
    note says what the same run does under the full oracle.
    """
    import time

    from .certify import Chunk, chunk_seed, run_walk_chunk
    from .reproducer import replay_actions

    found = []
    i, limit = 0, RANDOM_CHUNKS
    while i < limit:
        with suppressed([r for r, *_ in found]):
            _, _, fails, _, _, _ = run_walk_chunk(
                cls, DEFAULT, False, 0, Chunk(i, chunk_seed(RANDOM_SEED, i), RANDOM_CHUNK),
                time.monotonic())
        i += 1
        f = fails[0] if fails else None
        if f is not None and f.rule in ("S1", "S2", "S3", "C1", "O1") \
                and f.rule not in [r for r, *_ in found]:
            if not found:
                limit = i + FURTHER_CHUNKS
            found.append((f.rule, i - 1, f.machine.cfg, list(f.machine.actions)))
            if len(found) >= FURTHER_MAX_RULES:
                break
    res = []
    before = []
    for rule, chunk, cfg, actions in found:  # on the machine shape the walk drew for the example
        with suppressed(before):
            f = replay_actions(cls, cfg, False, actions)
        if f is None or f.rule != rule:
            raise RuntimeError(f"{proto}: the random {rule} failure did not replay")
        full = replay_actions(cls, cfg, False, actions) if before else f
        if full is not None and full.rule == rule and full.step == f.step:
            note = "under the full oracle the same run shows this violation first"
        elif full is not None:
            note = (f"under the full oracle this run first violates {full.rule} (step "
                    f"{full.step}), which was switched off to reach this one")
        else:
            note = "under the full oracle this run passes"
        res.append((f, f"{note} (chunk {chunk})"))
        before.append(rule)
    return res


def compute():
    """Everything docs/LUF.md shows: a dict with ``results`` {(proto, column): Failure or
    None} for the scenario columns 1..n and 'random', ``further`` {proto: [(failure, note,
    seed)]}, ``observed`` {(proto, column or observation file name): Failure or None} and
    ``costs`` (the Markdown cost table); plus the scenarios."""
    from .cost import cost_table

    scs = _scenarios()
    obs_files = _observation_files()
    results, further, observed = {}, {}, {}
    for p in ROWS:
        cls = load_protocol(p)
        for i, sc in enumerate(scs, 1):
            results[p, i] = f = run_scenario(sc, cls)
            if f is not None and f.rule == "C1":
                observed[p, i] = observe(sc, cls)
        for sc in obs_files:
            observed[p, sc.name] = observe(sc, cls)
        cells = random_cells(p, cls)
        results[p, "random"] = cells[0][0] if cells else None
        further[p] = [(f, note, k) for k, (f, note) in enumerate(cells[1:], 1)]
    data = dict(results=results, further=further, observed=observed,
                costs=cost_table(ROWS, markdown=True), ipis=_ipis(), ttff=_ttff())
    return data, scs


def _ipis():
    """{proto: IPIs per 1,000 operations on the default mix} (for the closing note)."""
    from .cost import flush_costs

    return {p: flush_costs(p, "default")["per_1000"]["ipis"] for p in ROWS}


def _ttff():
    try:
        with open(TTFF_PATH) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


# -- classification ----------------------------------------------------------------------------
def findings(data, scs):
    """Every finding: [(proto, where, rule, failure, observed failure or None, class, how)].

    ``where`` is a scenario number, 'random' or 'further-k'. The class is decided by the
    rule and, for C1, by what the same scenario shows with C1 off (O1: class B if the
    program holds the new value itself, else C) and, for the lazyfree discard, by the
    two-thread observation file (O1 there: B; else C via mincore)."""
    res, obs = data["results"], data["observed"]
    out = []
    lazy_col = next((i for i, sc in enumerate(scs, 1) if "lazyfree" in sc.name), None)
    two = next((n for (p, n) in obs if isinstance(n, str) and "two-threads" in n), None)
    for p in ROWS:
        cells = [(c, res[p, c]) for c in list(range(1, len(scs) + 1)) + ["random"]]
        cells += [(f"further-{k}", f) for k, (f, _n, _s) in enumerate(data["further"][p], 1)]
        for where, f in cells:
            if f is None:
                continue
            cls_, how = classify(p, where, f, obs, lazy_col, two)
            out.append((p, where, f.rule, f, obs.get((p, where)), cls_, how))
    return out


def _is_lazyfree(f) -> bool:
    return f.machine is not None and any("lazyfree" in str(line[2]) for line in f.machine.trace.lines())


def classify(p, where, f, obs, lazy_col, two):
    rule = f.rule
    if rule in ("S1", "S2"):
        return "A", ("S2: a store through the stale writable entry is lost when the copy is "
                     "used" if rule == "S2" else "S1: the new owner's memory is reachable")
    if rule == "S3":
        return "B", "S3: a syscall returned with a translation it must have removed"
    if rule == "O1":
        return "B", "O1: a user read returned a value no program order allows"
    # C1
    lazy = where == lazy_col or _is_lazyfree(f)
    if lazy:
        o = obs.get((p, two)) if two else None
        if o is not None and o.rule == "O1":
            return "B", ("two threads disagree: after another thread's read fault maps a zero "
                         "page (no flush), this thread still reads the old data "
                         "(`luf-obs-lazyfree-two-threads`, O1)")
        return "C", (LAZY_C.get(p, "another thread's fault flushes the stale entry") +
                     ", so only a program that asked `mincore()`/pagemap can tell "
                     "(`luf-obs-lazyfree-two-threads` passes; scenario 6 is O1 with C1 off)")
    o = obs.get((p, where))
    if isinstance(where, int) and o is not None and o.rule == "O1":
        return "B", ("the scenario's own read returns the old data after the new value was "
                     "written (O1 with C1 off)")
    if where == "random" or str(where).startswith("further"):
        g = readback(f)
        if g is not None and g.rule == "O1":
            if _changed_by_user(f):
                return "B", ("a read by the stale CPU right after the run returns the old data "
                             "(O1 with C1 off) although the location was changed by a write()/"
                             "store that returned before it")
            return "C", ("a read by the stale CPU right after the run returns the old data "
                         "(O1 with C1 off); nothing in the program saw the new value")
        return "D", "C1 only: a read by the stale CPU right after the run does not return a wrong value"
    return "D", "C1 only: no read in the scenario returns a wrong value"


def readback(f):
    """Replay a C1 failure's actions with C1 off, then let the CPU holding the stale entry
    read the page (if that CPU runs the entry's mm): the failure that read hits (O1), or None."""
    from .errors import Failure
    from .machine import Machine

    m0 = f.machine
    if m0 is None or not getattr(f, "cpus", None) or f.mm is None:
        return None
    with suppressed({"C1"}):
        m = Machine(type(m0.proto), m0.cfg)
        try:
            for name, args in m0.actions:
                getattr(m, name)(*[tuple(a) if isinstance(a, list) else a for a in args])
            m.drain()
            cpu = f.cpus[0]
            if m.tlbs.cpus[cpu].loaded_mm is not m.mms[f.mm]:
                return None
            m.user_access(cpu, f.vpage, False)
            m.drain()
        except Failure as g:
            return g
    return None


def _changed_by_user(f) -> bool:
    """Did a user store or a write() change some location during the failing run?"""
    return any(t.startswith("write ") or t.startswith("write(") for _s, _c, t in f.machine.trace.lines())


# -- rendering ---------------------------------------------------------------------------------
def _anchor(p, col) -> str:
    return f"{p}-{col}".replace("_", "-")


def _cols(scs):
    return list(range(1, len(scs) + 1)) + ["random"]


def render(data, scs) -> str:
    if "results" not in data:  # a bare {(proto, column): failure} mapping (tests)
        data = dict(results=data, further={p: [] for p in ROWS}, observed={}, costs="", ipis={},
                    ttff=None)
    results, further = data["results"], data["further"]
    cols = _cols(scs)
    nsc = len(scs)
    L = ["# LUF under flushcheck: the review thread, executed", ""]
    L.append("Generated by `flushcheck luf-doc` from `litmus/luf-*.litmus`, the protocol modules "
             "and `conformance/cost.py`; `tests/test_lufdoc.py` fails if this file is stale. Do "
             "not edit by hand.")
    L.append("")
    L.append("## Summary")
    L.append("")
    for n in range(1, nsc + 1):
        failing = [p for p in ROWS if results[p, n] is not None]
        passing = [p for p in ROWS if p.startswith("luf") and results[p, n] is None]
        text = f"- **Scenario {n}, {TITLES.get(n, scs[n-1].name)}** ({OBJECTIONS.get(n, '')}): "
        if not failing:
            text += "**answered** for every LUF variant (see the mechanisms below)."
        else:
            text += "**real** for " + ", ".join(
                f"`{p}` ({results[p, n].rule})" for p in failing) + "; "
            text += ("answered for " + ", ".join(f"`{p}`" for p in passing) + "."
                     if passing else "no LUF variant answers it.")
        L.append(text)
    rnd = [p for p in ROWS if results[p, "random"] is not None]
    L.append(f"- **Random state machine** (`flushcheck certify <protocol> --seed {RANDOM_SEED} "
             f"--jobs 1 --profile ci`: the raw swarm walk, at most {RANDOM_EXAMPLES} examples of "
             f"20-200 actions): finds " + (
                 ", ".join(f"`{p}` ({results[p, 'random'].rule})" for p in rnd) if rnd else "nothing")
             + "; every further rule per variant is listed under *Findings*.")
    L.append("- `linux` and `immediate` pass every column; so does `luf_lazyfree_fix` (the fix "
             "of the lazyfree finding on v11)." if all(
                 results.get((p, c)) is None for p in ("linux", "immediate", "luf_lazyfree_fix")
                 for c in cols) else "- `linux` and `immediate` pass every column.")
    L.append("")
    L.append("Each variant appears twice where a reading of its posting can change a verdict: "
             "*favourable* (the reading most favourable to LUF, the module named after the "
             "version) and *as posted* (`_posted`); see *Readings* for each difference and its "
             "source line.")
    L.append("")
    L.append("## Verdicts")
    L.append("")
    head = "| protocol | reading | " + " | ".join(
        f"{n} {TITLES.get(n, '')}" if n != "random" else "random state machine" for n in cols) + \
        " | further rules |"
    L.append(head)
    L.append("|" + "---|" * (len(cols) + 3))
    for p in ROWS:
        cells = []
        for c in cols:
            f = results[p, c]
            cells.append("pass" if f is None else f"[{f.rule}](#{_anchor(p, c)})")
        fr = ", ".join(f"[{f.rule}](#{_anchor(p, f'further-{k}')})"
                       for k, (f, _n, _s) in enumerate(further.get(p, []), 1)) or "none"
        L.append(f"| `{p}` | {READING.get(p, '')} | " + " | ".join(cells) + f" | {fr} |")
    L.append("")
    if data.get("costs"):
        L.append("## What each variant costs")
        L.append("")
        L.append("Per 1,000 operations (walk steps of the random machine's rules: user accesses, "
                 "operation starts and steps, hardware events) on four seeded workload mixes "
                 "(`conformance/cost.py`, `python -m conformance.cost PROTOCOL...`): **remote "
                 "flush IPIs** (CPUs other than the issuing one that a flush reaches; the "
                 "percentage is of `linux` on the same mix) / full flushes (`flush_tlb_mm`, "
                 "batch flushes, local full flushes) / page or range flushes. The oracle is off "
                 "for these runs, so a failing variant is charged for its whole workload. "
                 "Mixes: `default` = the random machine's uniform rule choice; the others weigh "
                 "reclaim, migration or write()+writeback 10x. 3 CPUs, 2 mms: LUF's reported "
                 "97% fewer shootdowns come from a 64-CPU machine where reclaim and migration "
                 "dominate; here munmap/mprotect/madvise flushes are part of every mix.")
        L.append("")
        L.append(data["costs"])
        L.append("")
    fl = findings(data, scs)
    if fl:
        L.append("## Findings, ranked by who can see them")
        L.append("")
        L.append("Classes: " + "; ".join(f"**{k}** {t}" for k, t in CLASSES) + ". A C1 alone "
                 "(class D) is a weaker verdict than an observed O1, S1 or S2.")
        L.append("")
        L.append("| protocol | where | rule | class | how a program can see it |")
        L.append("|---|---|---|---|---|")
        for p, where, rule, f, _o, klass, how in sorted(fl, key=lambda x: (x[5], ROWS.index(x[0]))):
            w = (f"scenario {where}" if isinstance(where, int) else
                 "random" if where == "random" else f"random, further rule {where.split('-')[1]}")
            L.append(f"| `{p}` | {w} | [{rule}](#{_anchor(p, where)}) | {klass} | {how} |")
        L.append("")
        for rule, text in FINDINGS.items():
            who = sorted({p for p, _w, r, *_ in fl if r == rule}, key=ROWS.index)
            if who:
                L.append(f"- **{rule}** ({', '.join(f'`{p}`' for p in who)}): {text}")
        L.append("")
    L.append("## The lazyfree finding (beyond the thread)")
    L.append("")
    lazy_col = next((i for i, sc in enumerate(scs, 1) if "lazyfree" in sc.name), None)
    if lazy_col is not None:
        takers = [p for p in ROWS if results[p, lazy_col] is not None]
        L.append(f"Scenario {lazy_col} is C1 for " + ", ".join(f"`{p}`" for p in takers) +
                 " (every variant that takes the folio: all of them, as posted and favourable), "
                 "and passes for " + ", ".join(f"`{p}`" for p in ROWS if results[p, lazy_col] is None)
                 + ". It is also the C1 the random machine finds first for `luf_v11`, "
                 "`luf_v12` and their posted forms.")
        L.append("")
    L.append(LAZYFREE)
    L.append("")
    if data.get("observed"):
        obsf = _observation_files()
        for sc in obsf:
            rows = [p for p in ROWS if (p, sc.name) in data["observed"]]
            L.append(f"`litmus/{sc.name}.litmus` with C1 off (what the program sees): " + ", ".join(
                f"`{p}` {('**' + data['observed'][p, sc.name].rule + '**') if data['observed'][p, sc.name] is not None else 'pass'}"
                for p in rows) + ".")
            L.append("")
    L.append("## Readings: each posting against its favourable module")
    L.append("")
    L.append("| favourable | as posted | difference (source line) | verdicts that change |")
    L.append("|---|---|---|---|")
    for fav, (posted, diffs) in PAIRS.items():
        changed = [c for c in cols if (results.get((fav, c)) is None) != (results.get((posted, c)) is None)
                   or (results.get((fav, c)) is not None and results.get((posted, c)) is not None
                       and results[fav, c].rule != results[posted, c].rule)]
        fr_f = {f.rule for f, _n, _s in further.get(fav, [])} | (
            {results[fav, "random"].rule} if results.get((fav, "random")) else set())
        fr_p = {f.rule for f, _n, _s in further.get(posted, [])} | (
            {results[posted, "random"].rule} if results.get((posted, "random")) else set())
        ch = [f"scenario {c}" if c != "random" else "random" for c in changed]
        if fr_p - fr_f:
            ch.append("random machine also finds " + ", ".join(sorted(fr_p - fr_f)))
        L.append(f"| `{fav}` | `{posted}` | " + "<br>".join(diffs) + " | " +
                 (", ".join(ch) if ch else "none") + " |")
    L.append("")
    L.append("## Why the passing cells pass")
    L.append("")
    L.append("| protocol | scenario | mechanism |")
    L.append("|---|---|---|")
    for p in ROWS:
        for n in range(1, nsc + 1):
            if results[p, n] is None:
                L.append(f"| `{p}` | {n} | {mechanism(p, n)} |")
    L.append("")
    L.append("## Scenarios")
    L.append("")
    for n, sc in enumerate(scs, 1):
        kind = " (explored: every interleaving)" if sc.threads else ""
        L.append(f"{n}. `{os.path.relpath(sc.path, ROOT)}`{kind}: {sc.doc}")
    for sc in _observation_files():
        L.append(f"- `{os.path.relpath(sc.path, ROOT)}` (observation): {sc.doc}")
    L.append("")
    L.append("## Timelines of the failing cells")
    L.append("")
    for p in ROWS:
        for c in cols:
            f = results[p, c]
            if f is None:
                continue
            what = f"scenario {c}" if c != "random" else "random state machine (shrunk)"
            L.append(f'### <a id="{_anchor(p, c)}"></a>`{p}`, {what}: {f.rule}')
            L.append("")
            L.append("```text")
            L.append(f.report(last=None))
            L.append("```")
            L.append("")
        for k, (f, note, seed) in enumerate(further.get(p, []), 1):
            L.append(f'### <a id="{_anchor(p, f"further-{k}")}"></a>`{p}`, further rule {k} '
                     f"(random state machine, shrunk): {f.rule}")
            L.append("")
            L.append(f"Found with {', '.join(_before(p, further, k, results))} switched off; {note}.")
            L.append("")
            L.append("```text")
            L.append(f.report(last=None))
            L.append("```")
            L.append("")
    L.append("## Closing note")
    L.append("")
    L.append(closing_note(data, scs, markdown=True))
    return "\n".join(L).rstrip() + "\n"


def _before(p, further, k, results):
    first = results[p, "random"]
    rules = [first.rule] if first is not None else []
    rules += [f.rule for f, _n, _s in further[p][:k - 1]]
    return rules


def verdict_line(data, scs, p) -> str:
    res = data["results"]
    rules = []
    for c in _cols(scs):
        f = res[p, c]
        if f is not None and f.rule not in rules:
            rules.append(f.rule)
    for f, _n, _s in data["further"].get(p, []):
        if f.rule not in rules:
            rules.append(f.rule)
    return ", ".join(rules) if rules else "pass"


def ttff_text(m) -> str:
    """The median time to first failure over all seeds, a seed that found nothing within
    the budget counting as longer than the budget (so the median is "> budget" when half
    or more of the seeds found nothing)."""
    if m is None:
        return "not measured"
    n, budget = m["seeds"], m["budget_s"]
    if not m["times_s"]:
        return f"no failure in {n} seeds x {budget:.0f} s"
    xs = sorted(m["times_s"]) + [float("inf")] * (n - len(m["times_s"]))
    med = (xs[(n - 1) // 2] + xs[n // 2]) / 2
    head = f"> {budget:.0f} s" if med == float("inf") else f"{med:.1f} s"
    return f"{head} ({len(m['times_s'])}/{n} seeds failed within {budget:.0f} s)"


def closing_note(data, scs, markdown: bool = True) -> str:
    """The final verdict per variant, its median time to first failure over 10 seeds (as
    measured, ``bench/luf_ttff.json``) and its IPIs per 1,000 operations against linux."""
    ipis = data.get("ipis") or {}
    tt = data.get("ttff") or {}
    base = ipis.get("linux")
    rows = []
    for p in ROWS:
        v = verdict_line(data, scs, p)
        m = tt.get("protocols", {}).get(p) if tt else None
        t = ttff_text(m)
        ip = ipis.get(p)
        ipt = (f"{ip:.0f} ({100.0 * ip / base:.0f}% of linux)" if ip is not None and base else "")
        rows.append((p, v, t, ipt))
    head = ("protocol", "rules violated (all columns)", "median time to first failure", "IPIs / 1,000 ops")
    if markdown:
        L = [f"| {' | '.join(head)} |", "|---|---|---|---|"]
        L += [f"| `{p}` | {v} | {t} | {i} |" for p, v, t, i in rows]
        when = (f"Times to first failure: `flushcheck certify NAME --seed S --jobs 1` with the "
                f"budget shown, its first failure before minimization (`bench/luf_cost.py --ttff`) "
                f"for seeds {tt.get('seeds_list', '1-10')}, measured {tt.get('date', '?')} "
                f"({tt.get('note', '')}); a seed with no failure within the budget counts as "
                "longer than the budget; not "
                "reproducible to the byte, so read from `bench/luf_ttff.json`." if tt else
                "Times to first failure: not measured yet (`python bench/luf_cost.py --ttff` writes "
                "`bench/luf_ttff.json`).")
        return "\n".join(L) + "\n\n" + when + " IPIs: the `default` mix, seed 1, 4000 operations."
    w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w[i]) for i, h in enumerate(head)).rstrip(),
           "  ".join("-" * x for x in w)]
    out += ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    return "\n".join(out)


_COMPUTED: list = []


def computed():
    """:func:`compute`, once per process (``generate`` and ``generate_text`` share it)."""
    if not _COMPUTED:
        _COMPUTED.append(compute())
    return _COMPUTED[0]


def generate() -> str:
    data, scs = computed()
    return render(data, scs)


# -- plain text for a mailing-list reply -------------------------------------------------------
def diagram(f, max_lines: int = 25, width: int = 34) -> str:
    """A CPU-column diagram of a failure in the style of kernel commit messages: the columns
    of the text timeline (:func:`conformance.trace.columns`: only the CPUs that act, and
    ``hw`` for the events of no CPU), at most ``max_lines`` lines (the start and the end
    kept, the middle elided), the violation last."""
    m = f.machine
    rows = [(s, c if c >= 0 else HW, t) for s, c, t in m.trace.lines() if not t.startswith("!! ")]
    used = columns([c for _s, c, _t in rows])
    body = max_lines - 3
    if len(rows) > body:
        rows = rows[:4] + [(None, used[0], "...")] + rows[-(body - 5):]
    head = "  ".join(f"{heading(c):<{width}}" for c in used).rstrip()
    out = [head]
    for _s, c, t in rows:
        cells = ["" for _ in used]
        t = t if len(t) <= width else t[: width - 1] + "~"
        cells[used.index(c)] = t
        out.append("  ".join(f"{x:<{width}}" for x in cells).rstrip())
    out.append(f"=> {f.rule}: {getattr(f, 'text', str(f))}")
    return "\n".join(out)


def render_text(data, scs) -> str:
    res = data["results"]
    cols = _cols(scs)
    head = ["protocol"] + [str(c) if c != "random" else "rnd" for c in cols] + ["further"]
    rows = []
    for p in ROWS:
        r = [p] + ["pass" if res[p, c] is None else res[p, c].rule for c in cols]
        r.append(",".join(f.rule for f, _n, _s in data["further"].get(p, [])) or "-")
        rows.append(r)
    w = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    L = ["LUF under flushcheck: verdicts (pass, or the first rule violated)", ""]
    L.append("  ".join(h.ljust(w[i]) for i, h in enumerate(head)).rstrip())
    L.append("  ".join("-" * x for x in w))
    for r in rows:
        L.append("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip())
    L.append("")
    for n, sc in enumerate(scs, 1):
        L.append(f"  [{n}] {TITLES.get(n, sc.name)}  (litmus/{sc.name}.litmus)")
    L.append(f"  rnd: flushcheck certify P --seed 1 --jobs 1 --profile ci, {RANDOM_EXAMPLES} walk examples;")
    L.append("  further: other rules the random walk violates with the earlier ones switched off")
    L.append("")
    L.append("Rules: S1 freed page reused while mapped in a TLB; S2 page copied out while a")
    L.append("writable dirty TLB entry exists; S3 syscall returned with a stale translation;")
    L.append("C1 TLB disagrees with the kernel's view at quiescence; O1 a read returned stale data.")
    L.append("")
    L.append(closing_note(data, scs, markdown=False))
    L.append("")
    fl = findings(data, scs)
    groups = {}
    for item in fl:
        groups.setdefault((item[5], item[2]), []).append(item)
    for (klass, rule), items in sorted(groups.items()):
        who = list(dict.fromkeys(p for p, *_ in items))
        # the shortest timeline of the group stands for it
        p, where, _r, f, _o, _k, how = min(
            items, key=lambda x: (len(list(x[3].machine.trace.lines())), ROWS.index(x[0])))
        w = (f"scenario {where}" if isinstance(where, int) else
             "random machine" if where == "random" else "random machine, further rule")
        L.append(f"{rule} (class {klass}): {', '.join(who)}")
        L.append(f"  shown: {p}, {w}. " + how.replace("`", ""))
        L.append("")
        L.append(diagram(f))
        L.append("")
    return "\n".join(L).rstrip() + "\n"


def generate_text() -> str:
    """The plain-text summary (``flushcheck luf-doc --text``)."""
    data, scs = computed()
    return render_text(data, scs)


DOC_PATH = os.path.join(ROOT, "docs", "LUF.md")
TEXT_PATH = os.path.join(ROOT, "docs", "LUF.txt")
