"""Protocol modules. Drop a file here that subclasses a reference protocol and it is
discovered by ``flushcheck certify <module>`` and fuzzed by ``pytest``; nothing else
to edit.

:data:`SHIPPED` names the modules that come with flushcheck. It is not a list of what is
discovered (every module here is); it says which protocols the shipped litmus corpus and
the guide were written for: a litmus file's ``expect *`` line is a claim about these, and a
module you add gets no expectation from it (docs/litmus.md, "A protocol the corpus does not
know"). Until 2026-12-05 the set was what ``git ls-files`` tracked, so a user's module
counted as shipped once committed and failed the guide's module count; and every module was
held to ``expect *``, so a variant with a bug failed a dozen litmus tests it was never
written against (a user review).
"""

#: the modules of this directory that flushcheck ships (add a name here with a new module
#: the corpus and docs describe; a test checks each exists and that every module the
#: litmus corpus names is here)
SHIPPED = (
    "hist_2_11_madvise_relock", "hist_2_1_zap_flush_after_unlock", "hist_2_3_nested_reclaim",
    "hist_2_5_no_nested_gather_flush", "hist_2_8_rmap_before_flush",
    "hist_2_9_migrate_flush_after_copy", "immediate", "linux", "linux_4_13", "linux_4_3",
    "linux_gen_reset_zero", "luf_dirty_writable_vma", "luf_lazyfree_fix",
    "luf_reclaim_migrate_only", "luf_v10", "luf_v10_posted", "luf_v11", "luf_v11_posted",
    "luf_v12", "luf_v12_posted", "luf_vma_flag", "mut_batched_mark_first",
    "mut_exit_no_flush", "mut_gather_flush_once", "mut_gather_free_before_flush",
    "mut_munmap_exclusive", "mut_nested_madvise_only",
)
