"""Every protocol module in protocols/ is checked against the oracle.

Protocols declaring ``EXPECTED_VIOLATION`` (historical bugs) must be caught with
exactly that rule under a fixed seed; every other protocol must pass its Hypothesis fuzz.
A mutant is caught by the Hypothesis state machine (``fuzz``, 6000 examples: the default,
kept for the mutants it finds soonest, which shows the state machine catches bugs), by
certify's walk engine (WALK_FOUND: the ones Hypothesis took longest on, or misses), or by
the litmus file its module names (LITMUS_ONLY).
"""
import os

from conformance.pytest_plugin import expected_violation, fuzz

#: fixed seeds under which the Hypothesis engine finds each historical bug it is given here
#: (6000 examples); 0 for the others. fuzz() generates from the seed alone
#: (conformance.certify.seed_only): these no longer move when the set of imported or
#: collected modules changes. The mutants it took longest on are WALK_FOUND now (their
#: seeds here were hist_2_3 1, linux_4_13 3, luf_v10_posted 7, luf_v11_posted 2,
#: mut_gather_free_before_flush 1, the others 0; in one loaded 2-core CI run, from 240 s
#: for hist_2_3 down to 15 s for mut_gather_free_before_flush).
#: linux_gen_reset_zero stays here (seed 0, 14 s): the walk finds it at once (seed 2: at
#: example 14) but certify's minimization of it took 40 s of CPU.
#: luf_v11 (the lazyfree C1) was here with seed 1 until 2026-12-03 10:40, when the walk's
#: two-page counts moved Hypothesis's draws off it (seed 1: nothing in 6,000, 6 minutes);
#: the walk finds it now (WALK_FOUND).
#: mut_nested_madvise_only: seed 1 finds it in 3.8 s, seed 0 (the default) in 21 (seeds 0-5
#: all find S3; 2026-12-06)
#: mut_gather_flush_once: seed 5 finds its S1 in 0.2 s; seed 0 (the default) found an S2
#: first since a folio whose trylock fails stays isolated (2026-12-07, docs/model.md section
#: 11 item 26): reclaim keeps the folio an exit then zaps, and writes it back under the
#: entry the mutant's exit did not flush, a true failure of the same missing flush (seeds
#: 1-6 all find S1 first, 0.2-7.1 s)
FAILING_SEEDS = {"linux_4_3": 1, "hist_2_5_no_nested_gather_flush": 3,
                 "mut_nested_madvise_only": 1, "mut_gather_flush_once": 5}


#: mutants the fuzzer does not find in 6000 examples, nor certify's walk within a few
#: thousand examples; the litmus file their module names kills them, with the rule they
#: declare. Empty from 2026-12-04 14:30 (mut_batched_mark_first was here: its race needs a
#: reclaim, a hole punch and an mremap into a free page of one mm; certify's machines booted
#: full until the holed shape, walk.shapes_for; it is WALK_FOUND now, its litmus file still
#: kills it, tests/test_litmus.py, and the bounded check finds it, test_bounded.py) until
#: 2026-12-06 16:00, when a fork stopped starting into a slot whose task is in the kernel
#: (Machine.can_fork_into): luf_dirty_writable_vma's S2 needs a fork and a migration inside
#: its window, and certify's walk found no S2 of it in seeds 0-19 at 2,000 examples after
#: that (one C1, seed 4); it was WALK_FOUND (14, 500), S2 at 403, the only one of seeds
#: 0-15 at 500, until then. Its litmus file (gap-fork-wrprotect-dirty-migrate) kills it.
LITMUS_ONLY: set = {"luf_dirty_writable_vma"}


#: mutants checked by certify's walk engine (the default engine, a raw model walk: about
#: 3 ms of CPU an example, measured on the loaded CI machine), name -> (seed, examples): a fixed
#: example count and seed, deterministic (example k of chunk i depends on the seed alone,
#: its machine shape and warm-up included); the walk stops at the first failure and
#: minimizes it. Each comment: the example the walk finds the declared rule at. The count is
#: that example rounded up to certify's chunk (500): a pass costs the same, a model change
#: that moves the example a little is absorbed. Seeds 0-7 were tried for each (re-pinned when
#: the walk began drawing a machine shape per example, again when it narrowed half of them
#: to two pages, again when the portfolio's weights moved to six of eight narrowed, a rule mix
#: in one of eight and PCT in three of four, 2026-12-02, and again when three of four examples
#: began warmed up, 2026-12-03, and again when MADV_FREE went to anonymous memory and counts
#: to two pages in two of three, 2026-12-03 10:40; checked again when the walk began refilling
#: an entry after each flushing step, 13:00: every pin found the same rule, 2.7 sooner); the seed taken is the cheapest at which
#: the declared rule comes first, or the one pinned before if it still finds it.
WALK_FOUND = {
    "hist_2_1_zap_flush_after_unlock": (3, 500),  # S2 at 4
    "hist_2_3_nested_reclaim": (3, 500),  # S1 in the first chunk of 169, 1.3 s (seeds 0-3
    #   since a shared write fault's first try drops mmap_lock after the install, 2026-12-06
    #   16:00: a C1 first at 0-2; seed 2, S1 at 23, until then)
    "hist_2_8_rmap_before_flush": (3, 500),  # S2 at 4
    "hist_2_11_madvise_relock": (1, 5000),  # S3 in chunk 9 (4,500-5,000), 13.7 s; none in
    #   3,000 examples of seeds 0-11, nor 12,000 of seed 0, since 2026-12-06 20:50, when the
    #   split window began to hold its folio's lock (reclaim must unmap another folio of the
    #   table, and the split one must be old and clean, or x86 flushes the whole mm). Seed 0,
    #   S3 at 55, until then (seed 7, S3 at 6 until 2026-12-05)
    "linux_4_13": (11, 500),  # S3 at 127, 1.2 s (seeds 0-11 at 1,000 since tlb_end_vma
    #   stopped flushing, MMU_GATHER_MERGE_VMAS, 2026-12-07 15:00: S3 at 1, 8 and 11, at
    #   388, 183 and 127, 19, 42 and 1.2 s; seed 5, S3 within 705 at 1,000, until then;
    #   seeds 0-5 at 1,000 since a shared
    #   write fault's first try drops mmap_lock after the install, 2026-12-06 16:00: only 5;
    #   seed 6, S3 at 549, until then; seeds 0-15 scanned at 500 examples on 2026-12-06
    #   12:30, after free_pgtables began to free tables: 2 and 8 find it, but their failures
    #   take certify's explorer a minute to leave unproven; seeds 4-9 at 6,000: 2,517, 704,
    #   549, 1,333, 182, 1,991; seed 6, S3 at 210, until then)
    "luf_v11": (7, 500),  # C1 within 30, 3.9 s (seeds 0-7 since a shared write fault's
    #   first try drops mmap_lock after the install, 2026-12-06 16:00: C1 at 2, 4 and 7, but
    #   2 and 4 took the explorer 14 and 53 s; seed 1, C1 at 206, until then; seed 2, C1 at
    #   8, until 2026-12-05)
    # the four S2 variants: through migration since 2026-12-05 (try_to_unmap_flush_dirty
    # flushes tlb_ubc_luf before pageout, RFC v12 16/26); seed 5, S2 at 46 (pageout), until then
    "luf_v10_posted": (0, 500),  # S2 at 94 (seeds 0-11 since tlb_end_vma stopped flushing,
    #   2026-12-07 15:00: C1 first in all but 0; seed 10, S2 at 72, until then; seeds 0-11
    #   since free_pgtables frees tables,
    #   2026-12-06 12:30: C1 first in all but 10; seed 0, S2 at 10, until then)
    "luf_v11_posted": (0, 500),  # S2 at 10
    "luf_v12": (11, 500),  # S2 at 182 (seeds 0-11 since 2026-12-06 12:30: S2 first at 4,
    #   8, 11; seed 0, S2 at 10, until then)
    "luf_v12_posted": (0, 500),  # S2 at 94 (since reclaim isolates its whole batch first,
    #   2026-12-07 22:00, docs/model.md item 37: seed 3 finds C1 first; seed 3, S2 at 285,
    #   until then; seeds 0-11 since tlb_end_vma stopped
    #   flushing, 2026-12-07 15:00: C1 first in all but 3; seed 20, S2 within 54, until
    #   then; seeds 0-23 since the madvise split
    #   window holds its folio's lock, 2026-12-06 20:50: C1 first in all but 20; seed 15, S2
    #   within 25, until then; seeds 0-15 since a shared write
    #   fault's first try drops mmap_lock after the install, 2026-12-06 16:00: C1 first at
    #   0-14; seed 34, S2 in 0.2 s, until then, from 15:40, after VM_FAULT_RETRY: seeds 15,
    #   20, 26, 27, 30, 31, 33, 34 all S2 first, but 30's took certify's explorer 53 s of
    #   CI to leave unproven; seed 30, S2 at 1, until then; seeds 0-39 since free_pgtables frees tables, 2026-12-06 12:30: C1 first
    #   in all but those eight; seed 0, S2 at 10, until then)
    "luf_vma_flag": (4, 500),  # C1 at 275
    # litmus-only until the portfolio weights of 2026-12-02 16:40 (certify's walk needed
    # 20-36 s for them): fork's S2 and the hole-punch C1 are found within 500 examples now
    "luf_lazyfree_fix": (0, 2000),  # C1 at 1,837 (seeds 0-9 at 2,000 examples since
    #   tlb_end_vma stopped flushing, 2026-12-07 15:00: 0 and 4 find it, at 1,837 and
    #   1,934; seed 11, C1 at 1,558, until then; seeds 0-23 at 2,000 examples, since
    #   free_pgtables frees tables, 2026-12-06 12:30: 4 and 11 find it, at 1,933 and 1,558;
    #   seed 22, C1 at 1,218, until then; seeds 0-23 at 2,000 examples, since a
    #   walker skips a range with no page table, 2026-12-06: 11, 18, 22 find it, at 1,559,
    #   1,848, 1,218; seed 19, C1 at 507, until then; seeds 0-39 at 2,000 examples, since
    #   munmap and exit wait for rmap walks in free_pgtables, 2026-12-05: 2, 3, 9, 19 find it,
    #   at 847, 735, 602, 507; seed 14, C1 at 215, until then)
    "mut_exit_no_flush": (11, 500),  # C1 at 14, 0.1 s (seeds 0-11 since tlb_end_vma
    #   stopped flushing, 2026-12-07 15:00: C1 first at 0, 4, 9, 10, 11, an S3 first at the
    #   others: the exit's missing flush meets a munmap or madvise returning over the stale
    #   entry first; seed 1, C1 within 84, until then; seeds 0-15 since the madvise
    #   split window holds its folio's lock, 2026-12-06 20:50: C1 first at 0, 1, 4, 6, 10, 13,
    #   15, an S3 first at the others: a MAP_FIXED mmap returning over the exited mm's stale
    #   entry; seed 5, C1 at 0, until then; seeds 0-15 since 2026-12-06 12:30: C1 first at
    #   1, 4, 5, 6, 12, an S3 or S1 first at the others; seed 3, C1 at 15, until then; seed 1
    #   until 2026-12-05)
    "mut_gather_free_before_flush": (2, 500),  # S1 at 6
    "mut_munmap_exclusive": (2, 2500),  # S3 at 2,126 (seeds 0-11 at 2,000 examples find
    #   none since tlb_end_vma stopped flushing, 2026-12-07 15:00; seeds 0-7 at 8,000: 0, 2
    #   and 3, at 6,563, 2,126 and 6,518; seed 8, S3 at 1,508, until then; seeds 0-11 at
    #   2,000 examples since
    #   free_pgtables frees tables and flushes the freed one, 2026-12-06 12:30: only 8; its
    #   tlb_finish_mmu now flushes for any munmap that frees a table; seed 1, S3 at 215, until
    #   then; seed 0, S3 at 7, until 2026-12-05: that S3 was a munmap returning inside a hole
    #   punch's walk, which free_pgtables now waits for)
    # litmus-only until the holed machine (2026-12-04 14:30); since mremap unmaps its old
    # range (17:00) the race is mremap marking and a hole punch skipping its flush: seeds
    # 0-11 at 2,000 examples, 8 finds it (at 1,509), the others none
    "mut_batched_mark_first": (2, 2500),  # S3 at 2,126 (seeds 0-11 at 2,000 find none
    #   since tlb_end_vma stopped flushing, 2026-12-07 15:00; seeds 0-7 at 8,000: 0 and 2,
    #   at 6,563 and 2,126; seed 8, S3 at 1,509, until then)
}


def _config_of(protocol_name):
    """The machine a mutant's module asks for (``CONFIG``: MachineConfig fields, e.g. the small
    tlb_flush_batched counter linux_gen_reset_zero needs), or None for the default."""
    import attrs

    from conformance.config import DEFAULT
    from conformance.registry import load_protocol, protocol_module

    extra = getattr(protocol_module(load_protocol(protocol_name)), "CONFIG", None)
    return attrs.evolve(DEFAULT, **extra) if extra else None


def test_protocol_conforms(protocol_name, request):
    """Fuzz the protocol; a pass, or exactly the rule its module declares violated."""
    expected = expected_violation(protocol_name)
    if protocol_name in LITMUS_ONLY:
        from conformance.litmus import load, run, verdict
        from conformance.registry import load_protocol, protocol_module
        cls = load_protocol(protocol_name)
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "litmus", f"{protocol_module(cls).LITMUS}.litmus")
        sc = load(path)
        if sc.threads:  # a threaded file: every interleaving (the explorer)
            from conformance.search.explorer import explore
            assert explore(sc, cls).verdict == expected
        else:
            assert verdict(run(sc, cls)) == expected
        return
    if protocol_name in WALK_FOUND:
        from conformance.certify import certify
        from conformance.config import DEFAULT
        seed, examples = WALK_FOUND[protocol_name]
        r = certify(protocol_name, budget_s=None, max_examples=examples, seed=seed, jobs=1,
                    cfg=_config_of(protocol_name) or DEFAULT)
        assert r.failure is not None, f"{protocol_name}: no violation in {examples} walk " \
            f"examples of seed {seed}"
        assert r.failure.rule == expected, r.failure
        return
    if expected is None:
        f = fuzz(protocol_name, examples=request.config._flushcheck_examples)
        assert f is None, f.report()
    else:
        seed = FAILING_SEEDS.get(protocol_name, 0)
        # 6,000 finds every corpus mutant's violation at its pinned seed; an explicit
        # --flushcheck-examples wins (a user's own module that declares its violation)
        examples = request.config.getoption("--flushcheck-examples") or 6000
        f = fuzz(protocol_name, examples=examples, seed=seed, shrink=False,
                 cfg=_config_of(protocol_name))
        assert f is not None, f"{protocol_name}: no violation found with seed {seed}"
        assert f.rule == expected, f.report()


def test_failure_is_shrunk_to_a_short_timeline():
    """Hypothesis shrinks a linux_4_3 failure; the report has the per-CPU timeline."""
    f = fuzz("linux_4_3", examples=2000, seed=4)  # seed 1 shrank 2x longer
    assert f is not None and f.rule == "S3"
    # the same failure unshrunk is 81 actions, 4 shrunk, 4 s for both runs (seed 4,
    # 2026-12-07 22:00, when reclaim began to isolate its whole batch first, docs/model.md
    # section 11 item 37: seed 3's 77 now shrink to 22, not 8; seeds 0-9 scanned: 24, 11,
    # 3, 22, 4, 8, 9, 14, 13, 5). Seed 3 until then, 15 and 5 (2026-12-07, when a folio whose trylock fails began to stay isolated: seed 0's 62 now
    # shrink to 3 actions on two CPUs, in 76 s; seeds 0-7 scanned). Seed 0 until then, 41
    # and 7 (2026-12-06 20:50, when the madvise split window began to hold its folio's lock: seed
    # 11's 32 shrank to 10, not 4; seeds 0-13 scanned). Seed 11 until then, 32 and 4 (after
    # fault_dirty_shared_page's interleaving point: seed 3's 87 now shrink to 14, not 8):
    # shorter than that and than 8 is the shrink's doing, as seed 3's 76 actions (2026-12-06
    # 12:30) and seed 1's 35 and "<= 30" were before (seed 5, 14 actions unshrunk, 4 shrunk,
    # until free_pgtables freed tables: now 43 and 11)
    raw = fuzz("linux_4_3", examples=2000, seed=4, shrink=False)
    assert len(f.machine.actions) < len(raw.machine.actions), len(raw.machine.actions)
    assert len(f.machine.actions) <= 8, len(f.machine.actions)
    rep = f.report()
    assert "CPU0" in rep and "CPU1" in rep and "S3" in rep
