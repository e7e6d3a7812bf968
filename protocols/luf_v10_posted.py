"""LUF v10 *as posted* (2024-05-10 / RESEND 2024-05-20, "[PATCH v10 00/12] LUF(Lazy Unmap
Flush) reducing tlb numbers over 90%", Byungchul Park): :mod:`protocols.luf_v10` without
its favourable reading of eligibility.

Source line for the one difference (kernel-notes section 7, "LUF postings vs the modules"):
v10 RESEND 09/12 sorts each unmapped PTE into ``tlb_ubc`` or ``tlb_ubc_ro`` on
``pte_write(pteval)`` alone, so a read-only but *dirty* PTE keeps the folio LUF-able
(``LUF_DIRTY_OK = True``). :mod:`protocols.luf_v10` also excludes dirty PTEs, as the
migrc RFC v2 did; that reading closes the mprotect race of ``docs/LUF.md`` (S2), this
module shows it.

Everything else as :mod:`protocols.luf_v10` (give-ups at a fault installing a writable
PTE, ``fault_install_pte``, and at mmap of a writable mapping, ``mmap_region``; the v10
cover letter names both, and its code reading is not in doubt).
"""
from protocols.luf_v10 import LufV10


class LufV10Posted(LufV10):
    """LUF v10 with the posted eligibility test (``pte_write`` only)."""

    #: v10 09/12: ``if (pte_write(pteval)) tlb_ubc else tlb_ubc_ro`` (dirty read-only PTEs qualify)
    LUF_DIRTY_OK = True

#: the rule the fuzzer finds first (tests/test_protocols.py: certify's walk, seed 5, 500 examples;
#: seeds 0-4 find the lazyfree C1 first): the S2 of the mprotect race (pte_write-only
#: eligibility); docs/LUF.md lists every rule it violates (the lazyfree C1 among them)
EXPECTED_VIOLATION = "S2"
