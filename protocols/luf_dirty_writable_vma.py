"""LUF with the dirty-PTE exclusion narrowed to read-only VMAs (a plausible fix of the
mprotect finding of docs/LUF.md; not a posting). A mutant for issue 14's fork gap.

The finding it answers: v12 takes a read-only but *dirty* PTE for LUF, and an mprotect
(PROT_READ) whose mmu_gather flush is still pending leaves a writable dirty TLB entry
over such a PTE (litmus/bug-2.4-reclaim-vs-mprotect.litmus, S2). This variant's
reasoning: "mprotect clears ``VM_WRITE`` before it write-protects a PTE
(``mprotect_fixup`` -> ``change_protection``), and every other write-protect
(``folio_mkclean``) flushes at once; so a dirty read-only PTE can hide a writable TLB entry
only in a read-only VMA. Exclude dirty PTEs there, keep them LUF-able in a ``VM_WRITE``
VMA." True of every path of the model before fork; false in the kernel:
``copy_present_pte`` (fork) write-protects the parent's private writable PTEs and keeps D
and ``VM_WRITE``, and the parent's CPUs keep their writable dirty entries until
``flush_tlb_mm(oldmm)`` at the end of ``dup_mmap``. A migration in that window takes the
folio for LUF, ``fold_unmap_luf`` at ``move:`` keys its batch before ``try_to_unmap_flush``,
and the copy runs while a store can still land in the old folio (S2). (Reclaim does not:
``try_to_unmap_flush_dirty`` before ``pageout`` folds ``tlb_ubc_luf`` in and flushes it.)

  CPU0 (parent, W D entry of v0)     CPU1 (fork)                   CPU0 (migration)
                                     copy_present_pte: wrprotect
                                       (RO D, VM_WRITE kept)
                                                                   try_to_migrate: RO D in a
                                                                     VM_WRITE VMA -> LUF
                                                                   move: copy  <- S2
                                     flush_tlb_mm(oldmm)

Built on :mod:`protocols.luf_lazyfree_fix` (LUF v11 with the lazyfree fix), whose own
failures (the hole punch, docs/LUF.md; scenario 8, a migration restoring a writable PTE)
need no fork: the S2 here is this variant's, through fork and migration.
litmus/gap-fork-wrprotect-dirty-migrate.litmus.
"""
from protocols.luf_lazyfree_fix import LufLazyfreeFix


class LufDirtyWritableVma(LufLazyfreeFix):
    """LUF whose dirty-PTE exclusion looks at the VMA: only read-only VMAs exclude D."""

    LUF_DIRTY_OK = True  # dirty PTEs are LUF-able, except in read-only VMAs (below)

    def set_tlb_ubc_flush_pending(self, task, mm, pteval, vpage) -> None:
        """As LUF; a dirty PTE of a VMA without ``VM_WRITE`` (or already detached) makes
        the folio not LUF-able."""
        super().set_tlb_ubc_flush_pending(task, mm, pteval, vpage)
        if pteval.kind == 1 and pteval.dirty:
            vma = mm.find_vma(vpage)
            if vma is None or not vma.writable:
                task.tlb_ubc.folio_ro = False


#: the rule fork's write-protect window exposes (litmus/gap-fork-wrprotect-dirty-migrate.litmus)
EXPECTED_VIOLATION = "S2"
LITMUS = "gap-fork-wrprotect-dirty-migrate"
SUMMARY = ("LUF excludes dirty PTEs only in read-only VMAs; fork write-protects a private "
           "writable PTE keeping D and VM_WRITE, so migration defers the flush past the copy")
