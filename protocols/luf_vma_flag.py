"""LUF with a per-VMA deferred-flush flag: the design Byungchul proposed in the seed thread
(2024-05-30, reply to Dave Hansen: "a new flag in vma or something indicating LUF has
deferred necessary TLB flush for it during unmapping so that mmu_gather mechanism can be
aware of it").

LUF deferral as in v10, but instead of v10's global give-ups the flag of each
VMA whose PTEs LUF unmapped is consulted by the mmu_gather/munmap path
(``tlb_end_vma``), by ``mmap_region`` over the range (its MAP_FIXED unmap goes
through ``tlb_end_vma`` too), by ``mprotect_fixup`` and by the fault path: each
flushes every deferred batch when its VMA is flagged, even when it only finds
``pte_none``.

Reading in LUF's favour: a flagged VMA triggers the full ``luf_flush(0)``, and
flags are cleared only when every deferred batch has been flushed.
"""
from protocols._luf import LufBase


class LufVmaFlag(LufBase):
    """LUF whose give-ups are keyed on a per-VMA flag."""

    def init_vma(self, vma):
        return {"luf_deferred": False}

    def __init__(self, arch, free_pages) -> None:
        super().__init__(arch, free_pages)
        self.flagged: list = []  # VMA slots with the flag set, to clear after a flush

    def luf_deferred(self, task, frame, ptes) -> None:
        """Set the flag of every VMA in which this folio's PTEs were unmapped."""
        for mm, vpage in ptes:
            vma = mm.find_vma(vpage)
            if vma is not None and vma.proto is not None and not vma.proto["luf_deferred"]:
                vma.proto["luf_deferred"] = True
                self.flagged.append(vma.proto)

    def luf_flushed(self) -> None:
        for slot in self.flagged:
            slot["luf_deferred"] = False
        self.flagged.clear()

    def _check(self, vma, who) -> None:
        if vma is not None and vma.proto is not None and vma.proto["luf_deferred"]:
            self.luf_flush_all(who)

    def tlb_end_vma(self, tlb, vma) -> None:
        """munmap / MAP_FIXED / mprotect: flush if LUF deferred a flush in this VMA."""
        self._check(vma, tlb.task)
        super().tlb_end_vma(tlb, vma)

    def mprotect_fixup(self, task, mm, vma) -> None:
        self._check(vma, task)

    def fault_install_pte(self, task, mm, vma, vpage, pte, write) -> None:
        """The fault path consults the faulting VMA's flag (only that VMA's)."""
        self._check(vma, task)

#: the rule the fuzzer must find violated (tests/test_protocols.py, docs/LUF.md)
EXPECTED_VIOLATION = "C1"
