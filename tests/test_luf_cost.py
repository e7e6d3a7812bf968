"""conformance/cost.py: flush counting on seeded workloads (docs/LUF.md, cost table)."""
import pytest

from conformance import cost
from conformance.config import MachineConfig
from conformance.machine import Machine
from conformance.registry import load_protocol

TWO = MachineConfig(ncpus=2, populate=False)


def _reclaim_cached_page(proto):
    """CPU0 writes anon v0 (entry cached on CPU0), CPU1 (which runs mm1) reclaims the page,
    then the page is allocated again; returns the counter."""
    m = Machine(load_protocol(proto), TWO)
    c = cost.FlushCounter(m.arch)
    while m.user_access(0, 0, True) == "fault":
        m.drain()
    frame = m.frame_of(0, 0)
    m.reclaim(1, (frame,))
    m.drain()
    m.consumer_alloc()
    return c


def test_one_remote_shootdown_for_reclaim_of_a_remotely_cached_page():
    """linux: reclaim on CPU1 defers the flush of CPU0's entry and does it with one batch
    flush: one full flush, one IPI (CPU0), the issuer CPU1 not counted."""
    c = _reclaim_cached_page("linux")
    assert (c.ipis, c.full, c.range) == (1, 1, 0)


def test_immediate_flushes_the_page_and_luf_defers_to_the_allocation():
    """immediate: ``ptep_clear_flush`` (a page flush, one IPI). A dirty page is not LUF'd
    (v10 reading), so luf_v10 pays as linux; the posted v12 takes only read-only PTEs too."""
    c = _reclaim_cached_page("immediate")
    assert (c.ipis, c.full, c.range) == (1, 0, 1)
    c = _reclaim_cached_page("luf_v10")
    assert (c.ipis, c.full, c.range) == (1, 1, 0)


def test_luf_read_only_page_flush_moves_to_allocation():
    """A read-only page reclaimed under LUF is freed unflushed; the flush (one IPI to CPU0)
    is paid when the page is allocated again, by the consumer (no issuing CPU)."""
    m = Machine(load_protocol("luf_v11"), TWO)
    c = cost.FlushCounter(m.arch)
    while m.user_access(0, 2, False) == "fault":  # v2: file0, read-only mapping
        m.drain()
    m.reclaim(1, (m.frame_of(0, 2),))
    m.drain()
    assert (c.ipis, c.full) == (0, 0)  # reclaim flushed nothing
    m.consumer_alloc()
    assert (c.ipis, c.full) == (1, 1)  # the takeoff flush


def test_deterministic_and_oracle_off_changes_nothing_for_a_correct_protocol():
    """Same arguments, same counts; and silencing the oracle does not change what a
    passing protocol does (its counts equal a run with the oracle on)."""
    a = cost.flush_costs("linux", "reclaim-heavy", seed=3, ops=400)
    b = cost.flush_costs("linux", "reclaim-heavy", seed=3, ops=400)
    assert a == b and a["ops"] == 400 and a["aborted"] == 0
    orig = cost._silence
    try:
        cost._silence = lambda oracle: None
        c = cost.flush_costs("linux", "reclaim-heavy", seed=3, ops=400)
    finally:
        cost._silence = orig
    assert c == a


def test_luf_sends_fewer_ipis_than_linux_and_immediate_more_page_flushes():
    """The trade-off the table shows: LUF defers reclaim's shootdowns; immediate flushes pages."""
    lin = cost.flush_costs("linux", "reclaim-heavy", seed=1, ops=1600)
    luf = cost.flush_costs("luf_v11", "reclaim-heavy", seed=1, ops=1600)
    imm = cost.flush_costs("immediate", "reclaim-heavy", seed=1, ops=1600)
    assert luf["ipis"] < lin["ipis"]
    assert imm["range"] > lin["range"]


def test_unknown_mix_and_cli(capsys):
    with pytest.raises(ValueError, match="unknown mix"):
        cost.flush_costs("linux", "nope")
    assert cost.main(["linux", "immediate", "--mix", "default", "--ops", "160"]) == 0
    out = capsys.readouterr().out
    assert "linux" in out and "immediate" in out and "(100%)" in out
