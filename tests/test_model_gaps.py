"""Known gaps of the model that give a wrong verdict, as executable scenarios: each is
``xfail(strict=True)`` while the gap stands (it fails the right verdict today) and turns
into an error the day a change closes it, so the marker comes off with the fix.

F3 (docs/model.md, simplifications): a fork-shared anonymous folio that reclaim left in
the swap cache is swapped in by one side *writable*, where the kernel maps it read-only,
not exclusive (``pte_swp_exclusive`` false, ``folio_free_swap`` fails while the other
side's swap entry remains), and ``do_wp_page`` copies it on the first write
(``wp_can_reuse_anon_folio``: ``folio_ref_count > 1``). A protocol whose read-only entries
outlive reclaim then sees a false C1 (confirmed by a review, 2026-12-07)::

    CPU0 (mm0, the parent; kswapd)             CPU1 (mm1, a fork child)
                                               read mm1:v0: caches pfn0 RO
    (CPU2: munmap of mm2:v0 gathers pfn0)
    reclaim pfn0: mm0:v0, mm1:v0 -> slot0,
      the flush deferred (LUF, read-only)
    "extra reference (mmu_gather), keep":
      pfn0 stays in the swap cache
    read fault mm0:v0: swap-cache hit,
      set_pte_at(mm0:v0 -> pfn0 W)  <- F3
    write mm0:v0 = 1000001 into pfn0           its stale entry sees 1000001: C1
                                               (kernel: the write faults and copies;
                                               pfn0 keeps 1000000)
"""
import pytest

from conformance.config import MachineConfig
from conformance.errors import Failure
from conformance.machine import Machine
from conformance.registry import load_protocol


def shared_swap_cache_folio_swapped_in(name: str):
    """Run the F3 scenario above under protocol ``name``: (the rule it fails or None, did
    reclaim keep the folio in the swap cache)."""
    m = Machine(load_protocol(name), MachineConfig(ncpus=3, nmms=3, populate=False))
    m.user_access(0, 0, True)
    m.drain()
    m.user_access(0, 0, True)
    m.reclaim(0, (m.mms[0].ptes[0].frame,))         # swap out, then read back in: a clean
    m.drain()                                       # read-only PTE of an exclusive folio
    m.user_access(0, 0, False)
    m.drain()
    value = m.user_access(0, 0, False)
    frame = m.mms[0].ptes[0].frame
    m.switch_mm(1, 0)
    m.fork(1, 1)
    m.drain()
    m.fork(1, 2)
    m.drain()
    m.switch_mm(1, 1)
    assert m.user_access(1, 0, False) == value      # CPU1 caches mm1:v0 read-only
    m.switch_mm(2, 2)
    munmap = m.munmap(2, 0, 1)
    while not any(f"zap mm2:v0 [pfn{frame}]" in t for _, _, t in m.trace.lines()):
        m.advance(munmap.id)                        # mm2's gather holds the folio
    reclaim = m.reclaim(0, (frame,))
    while reclaim in m.ops:                         # all of it before the munmap goes on
        m.advance(reclaim.id)
    kept = frame in m.mem.swap_cache.values()       # the gather's reference kept it
    m.drain()
    try:
        assert m.user_access(0, 0, False) == "fault"
        m.drain()
        m.user_access(0, 0, True)
        m.drain()
        m.check_quiescent()
    except Failure as f:
        return f.rule, kept
    return None, kept


@pytest.mark.parametrize("name", ["linux", "immediate", "luf_v10", "luf_v12"])
def test_the_f3_scenario_passes_where_no_stale_entry_survives(name):
    """The folio stays in the swap cache for all of them; ``linux`` and ``immediate``
    leave no stale entry, ``luf_v10`` flushes when a fault installs a writable PTE,
    ``luf_v12`` when reclaim keeps the folio."""
    assert shared_swap_cache_folio_swapped_in(name) == (None, True)


@pytest.mark.xfail(strict=True, reason="F3 (docs/model.md): a shared swap-cache folio is "
                   "swapped in writable; a false C1 for these LUF modules")
@pytest.mark.parametrize("name", ["luf_v10_posted", "luf_v11_posted",
                                  "luf_reclaim_migrate_only"])
def test_the_f3_scenario_is_no_failure_of_a_lazy_protocol(name):
    assert shared_swap_cache_folio_swapped_in(name) == (None, True)
