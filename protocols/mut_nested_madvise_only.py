"""A mutant of mainline (not a kernel version): only madvise gathers count as nested.

99baac21e458 made ``tlb_finish_mmu`` flush the whole mm when another gather of the mm is
open (``mm_tlb_flush_nested``), for parallel ``madvise`` calls under the read
``mmap_lock``. The mutant's author reasons that munmap, mprotect and mremap hold
``mmap_lock`` for write, so only madvise gathers can overlap, and counts open madvise
gathers per mm instead of ``mm->tlb_flush_pending``.

Correct while every other gather holds ``mmap_lock`` for write. Truncate and hole punch
(``unmap_mapping_range`` -> ``zap_page_range_single``) take no ``mmap_lock``: their gather
clears a file PTE and flushes only at its ``tlb_finish_mmu``; a madvise (or munmap) of the
page that finds the PTE already empty then returns without a flush while another CPU still
caches it (S3). ``litmus/gap-truncate-nested.litmus``.
"""
from protocols.linux import Linux, MmBatched


class MmMadvGathers(MmBatched):
    """``MmBatched`` plus the count of open madvise gathers."""

    __slots__ = ("madv_gathers",)

    def __init__(self) -> None:
        super().__init__()
        self.madv_gathers = 0


class NestedMadviseOnly(Linux):
    """Mainline whose nested check sees only madvise gathers."""

    def init_mm(self, mm):
        return MmMadvGathers()

    def tlb_gather_mmu(self, tlb) -> None:
        super().tlb_gather_mmu(tlb)
        if tlb.path == "madvise":
            tlb.mm.proto.madv_gathers += 1

    def tlb_finish_mmu(self, tlb) -> None:
        """The nested full flush only when two madvise gathers overlap."""
        st = tlb.mm.proto
        madv = tlb.path == "madvise"
        if madv and st.madv_gathers > 1:
            tlb.fullmm = True
            tlb.reset_range()
            tlb.freed_tables = True
        self.tlb_flush_mmu(tlb)
        if madv:  # after the flush, as dec_tlb_flush_pending is (until 2026-12-07 before
            st.madv_gathers -= 1  # it: a second bug, hidden while tlb_end_vma flushed)
        tlb.mm.tlb_flush_pending -= 1


EXPECTED_VIOLATION = "S3"
LITMUS = "gap-truncate-nested"
SUMMARY = ("counts only madvise gathers as nested; a truncate's gather beside a madvise of "
           "the same page leaves the madvise returning with a cached entry")
