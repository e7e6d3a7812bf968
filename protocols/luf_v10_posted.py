"""LUF v10 *as posted* (2024-05-10 / RESEND 2024-05-20, "[PATCH v10 00/12] LUF(Lazy Unmap
Flush) reducing tlb numbers over 90%", Byungchul Park): :mod:`protocols.luf_v10` without
its favourable readings.

Source lines (kernel-notes section 7, "LUF postings vs the modules"; RESEND 09/12 and 12/12
read again on 2026-12-05, docs/LUF.md "Readings"):

1. Eligibility: 09/12 sorts each unmapped PTE into ``tlb_ubc`` or ``tlb_ubc_ro`` on
   ``pte_write(pteval)`` alone, so a read-only but *dirty* PTE keeps the folio LUF-able
   (``LUF_DIRTY_OK = True``). :mod:`protocols.luf_v10` also excludes dirty PTEs, as the
   migrc RFC v2 did; that reading closes the mprotect race of ``docs/LUF.md`` (S2), this
   module shows it.
2. The fault give-up: 09/12's only change to mm/memory.c is ``if (folio) luf_flush();`` at
   the top of ``do_wp_page``, a write to a present read-only PTE (:meth:`do_wp_page`). A
   write fault on an empty PTE (``do_shared_fault`` / ``do_anonymous_page`` via
   ``finish_fault``), or the swap-in of an exclusive folio, installs a writable PTE with no
   flush (a shared one goes on to ``do_wp_page``).
   :mod:`protocols.luf_v10` reads the cover letter's "when any non-writable ptes change to
   writable e.g. through fault handler" as every writable PTE a fault installs
   (``fault_install_pte``); this module does not, and fails review scenario 3 through
   ``do_shared_fault`` (``litmus/luf-3-ro-and-rw-mappings.litmus``).

As :mod:`protocols.luf_v10`: the give-up at mmap of a writable mapping (09/12's
``if (prot & PROT_WRITE) luf_flush();`` in ``do_mmap``: ``mmap_region``); no flush at
``shrink_folio_list``'s ``keep:`` (12/12 adds none) and no ``can_luf_fail()`` when
``try_to_unmap_one`` aborts its walk (09/12 calls it only in ``set_tlb_ubc_flush_pending``
for a writable PTE), the two points RFC v12 added (:mod:`protocols.luf_v12`).
Not modelled: ``try_to_unmap_luf``'s give-up when ``luf_lock`` is contended or a flush is
in progress (``on_flushing``): an opportunistic give-up that some interleaving always
misses.
"""
from protocols.luf_v10 import LufV10


class LufV10Posted(LufV10):
    """LUF v10 with the posted eligibility test (``pte_write`` only) and fault give-up
    (``do_wp_page`` only)."""

    #: v10 09/12: ``if (pte_write(pteval)) tlb_ubc else tlb_ubc_ro`` (dirty read-only PTEs qualify)
    LUF_DIRTY_OK = True

    def fault_install_pte(self, task, mm, vma, vpage, pte, write) -> None:
        """v10 09/12 adds no flush where a fault installs a PTE (``finish_fault``,
        ``do_anonymous_page``, ``do_swap_page``) or makes one writable: its only fault
        flush is at the top of ``do_wp_page`` (:meth:`do_wp_page`)."""

    def do_wp_page(self, task, mm, vma, vpage) -> None:
        """v10 09/12, mm/memory.c ``do_wp_page``: ``if (folio) luf_flush();`` ("might be
        about to change its permission to writable. Conservatively give up deferring tlb
        flush just in case"), before ``wp_page_reuse`` / ``wp_page_shared`` /
        ``wp_page_copy``."""
        self.luf_flush_all(task)

#: the rule the fuzzer finds first (tests/test_protocols.py: certify's walk, seed 5, 500 examples;
#: seeds 0-4 find the lazyfree C1 first): the S2 of the mprotect race (pte_write-only
#: eligibility); docs/LUF.md lists every rule it violates (the lazyfree C1 among them)
EXPECTED_VIOLATION = "S2"
