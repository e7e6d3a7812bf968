"""Known gaps of the model that gave a wrong verdict, as executable scenarios: each is
``xfail(strict=True)`` while the gap stands (it fails the right verdict) and turns into an
error the day a change closes it, so the marker comes off with the fix and the scenario
stays as a regression test. None is open now.

F3 (docs/model.md, simplifications; closed 2026-12-07): a fork-shared anonymous folio that
reclaim left in the swap cache was swapped in by one side *writable*, where the kernel maps it read-only,
not exclusive (``pte_swp_exclusive`` false, ``folio_free_swap`` fails while the other
side's swap entry remains), and ``do_wp_page`` copies it on the first write
(``wp_can_reuse_anon_folio``: ``folio_ref_count > 1``). A protocol whose read-only entries
outlive reclaim then saw a false C1 (confirmed by a review, 2026-12-07)::

    CPU0 (mm0, the parent; kswapd)             CPU1 (mm1, a fork child)
                                               read mm1:v0: caches pfn0 RO
    (CPU2: munmap of mm2:v0 gathers pfn0)
    reclaim pfn0: mm0:v0, mm1:v0 -> slot0,
      the flush deferred (LUF, read-only)
    "extra reference (mmu_gather), keep":
      pfn0 stays in the swap cache
    read fault mm0:v0: swap-cache hit,
      set_pte_at(mm0:v0 -> pfn0 W)  <- F3 (now RO: not exclusive)
    write mm0:v0 = 1000001 into pfn0           its stale entry sees 1000001: C1
                                               (kernel: the write faults and copies;
                                               pfn0 keeps 1000000)
"""
import pytest

from conformance.config import MachineConfig
from conformance.errors import Failure
from conformance.machine import Machine
from conformance.registry import load_protocol


def f3_machine(name: str) -> Machine:
    return Machine(load_protocol(name), MachineConfig(ncpus=3, nmms=3, populate=False))


def shared_swap_cache_folio_swapped_in(name: str, m: Machine | None = None):
    """Run the F3 scenario above under protocol ``name`` (on ``m`` if given): (the rule it
    fails or None, did reclaim keep the folio in the swap cache)."""
    m = m or f3_machine(name)
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


ALL = ["linux", "immediate", "luf_v10", "luf_v12", "luf_v10_posted", "luf_v11_posted",
       "luf_reclaim_migrate_only"]


@pytest.mark.parametrize("name", ALL)
def test_the_f3_scenario_passes_every_reference_protocol(name):
    """The folio stays in the swap cache for all of them; ``linux`` and ``immediate``
    leave no stale entry, ``luf_v10`` flushes when a fault installs a writable PTE,
    ``luf_v12`` when reclaim keeps the folio; the three others keep mm1's stale read-only
    entry, and mm0's write copies the folio (kernel: ``do_swap_page`` maps it read-only,
    ``do_wp_page`` copies), so the entry still reads the right data."""
    assert shared_swap_cache_folio_swapped_in(name) == (None, True)


def _swap_in_always_exclusive(monkeypatch):
    """``do_swap_page`` as the model had it before the F3 fix: every swap-in exclusive,
    mapped writable (its source with that one line replaced)."""
    from old_model import undo_in_source

    from conformance.mm.memory.swapin import SwapinPaths

    undo_in_source(monkeypatch, SwapinPaths, "do_swap_page",
                   "exclusive = mem.swap_map[slot] == 1 and not mem.rmap[frame] and not "
                   "mem.cow[frame]", "exclusive = True")


@pytest.mark.parametrize("name", ["luf_v10_posted", "luf_v11_posted",
                                  "luf_reclaim_migrate_only"])
def test_the_f3_scenario_fails_them_on_the_model_without_the_fix(name, monkeypatch):
    """The scenario can fail: with every swap-in exclusive, the three lazy modules get
    the false C1 again (the store lands in the folio mm1's stale entry reads)."""
    _swap_in_always_exclusive(monkeypatch)
    assert shared_swap_cache_folio_swapped_in(name) == ("C1", True)


@pytest.mark.parametrize("name", ["linux", "luf_v10_posted"])
def test_the_f3_scenario_copies_the_shared_folio(name):
    """mm0's write does not store into the kept folio: its swap-in maps it read-only (mm1's
    swap entry uses the slot) and ``do_wp_page`` copies it; mm1's swap-in then maps the
    very folio, still in the swap cache, with the data it had; a write then reuses it
    (``wp_can_reuse_anon_folio``: ``folio_free_swap`` succeeds, one reference)."""
    m = f3_machine(name)
    assert shared_swap_cache_folio_swapped_in(name, m) == (None, True)
    text = "\n".join(t for _, _, t in m.trace.lines())
    assert "do_swap_page(mm0:v0): not exclusive, read-only" in text
    assert "wp_page_copy(mm0:v0): pfn" in text
    slot = m.mms[1].ptes[0].slot
    kept = m.mem.swap_cache[slot]
    assert m.mms[0].ptes[0].frame != kept
    m.switch_mm(2, 1)  # CPU2 has no entry of mm1: its access walks and swaps in
    assert m.user_access(2, 0, False) == "fault"
    m.drain()
    assert m.user_access(2, 0, False) == 1000000
    # the read fault leaves the mapped folio in the swap cache (should_try_to_free_swap
    # is false), read-only, with no swap entry left
    assert m.mms[1].ptes[0].frame == kept and m.mem.swap_cache.get(slot) == kept
    assert not m.mms[1].ptes[0].writable and m.mem.swap_map[slot] == 0
    m.check_quiescent()
    assert m.user_access(2, 0, True) == "fault"
    m.drain()
    assert m.user_access(2, 0, True) == "wrote"
    assert m.mms[1].ptes[0].frame == kept and slot not in m.mem.swap_cache
    assert "do_wp_page(mm1:v0): wp_page_reuse" in "\n".join(t for _, _, t in m.trace.lines())
    m.check_quiescent()


@pytest.mark.parametrize("name", ["luf_v10_posted", "luf_v11_posted",
                                  "luf_reclaim_migrate_only"])
def test_the_f3_litmus_scenario_has_teeth(name, monkeypatch):
    """litmus/model-shared-swap-cache-folio-swapped-in.litmus, the scenario as data (every
    protocol expected to pass it: tests/test_litmus.py), fails C1 on the model without the
    fix."""
    import os

    from conformance.litmus import load, run, verdict

    sc = load(os.path.join(os.path.dirname(__file__), "..", "litmus",
                           "model-shared-swap-cache-folio-swapped-in.litmus"))
    assert verdict(run(sc, load_protocol(name))) == "pass"
    _swap_in_always_exclusive(monkeypatch)
    assert verdict(run(sc, load_protocol(name))) == "C1"
