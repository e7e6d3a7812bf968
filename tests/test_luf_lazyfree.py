"""The lazyfree finding (docs/LUF.md): every LUF variant frees a MADV_FREE'd folio whose PTE was
write-protected without the flush; luf_lazyfree_fix does not."""
import pytest

from conformance.config import MachineConfig
from conformance.litmus import load
from conformance.lufdoc import observe, run_scenario
from conformance.machine import Machine
from conformance.registry import load_protocol

LAZY = load("litmus/luf-6-lazyfree-discard.litmus")
TWO_THREADS = load("litmus/luf-obs-lazyfree-two-threads.litmus")
TAKERS = ["luf_v10", "luf_v10_posted", "luf_v11", "luf_v11_posted", "luf_vma_flag", "luf_v12",
          "luf_v12_posted", "luf_reclaim_migrate_only"]


@pytest.mark.parametrize("proto", TAKERS)
def test_every_posting_takes_the_lazyfree_folio(proto):
    """Explored: some interleaving ends with the stale entry at quiescence (C1)."""
    f = run_scenario(LAZY, load_protocol(proto))
    assert f is not None and f.rule == "C1"
    assert any("discard lazyfree" in t for _s, _c, t in f.machine.trace.lines())


@pytest.mark.parametrize("proto", ["luf_lazyfree_fix", "linux", "immediate"])
def test_the_fix_and_mainline_pass_every_interleaving(proto):
    assert run_scenario(LAZY, load_protocol(proto)) is None
    assert run_scenario(TWO_THREADS, load_protocol(proto)) is None


def test_fix_is_the_one_attribute():
    """The fix module is luf_v11 with LUF_LAZYFREE off; turning it back on brings C1 back."""
    fix = load_protocol("luf_lazyfree_fix")
    assert fix.LUF_LAZYFREE is False and load_protocol("luf_v11").LUF_LAZYFREE is True
    undone = type("Undone", (fix,), {"LUF_LAZYFREE": True, "name": "undone"})
    assert run_scenario(LAZY, undone).rule == "C1"


def test_observable_by_two_threads_only_without_a_fault_flush():
    """C1 off: v10/v11 let another thread's read fault map a zero page with no flush, so one
    thread reads 0 and the other the old data (O1); v12's fault-end flush removes it when
    read in LUF's favour; as posted its ``luf_flush_mm`` folds no batch in (19/26's
    ``fold_luf_batch_mm`` sets no ``flush_required``), so v12 as posted is O1 too."""
    for proto in ("luf_v10", "luf_v11", "luf_v11_posted", "luf_reclaim_migrate_only",
                  "luf_v12_posted"):
        assert observe(TWO_THREADS, load_protocol(proto)).rule == "O1", proto
    for proto in ("luf_v12", "luf_vma_flag"):
        assert observe(TWO_THREADS, load_protocol(proto)) is None, proto
    # a program that learns from mincore() that the page is gone still sees it under v12
    assert observe(LAZY, load_protocol("luf_v12")).rule == "O1"


def test_folio_lazyfree_reads_the_folio_flags():
    """``LufBase.folio_lazyfree``: true only for an anonymous MADV_FREE'd folio."""
    m = Machine(load_protocol("luf_v11"), MachineConfig(ncpus=2, populate=False))
    while m.user_access(0, 0, True) == "fault":
        m.drain()
    frame = m.frame_of(0, 0)
    assert m.proto.folio_lazyfree(frame) is False
    m.madvise(0, 0, 1, "free")
    m.drain()
    assert m.proto.folio_lazyfree(frame) is True
    while m.user_access(0, 2, False) == "fault":  # a file page
        m.drain()
    assert m.proto.folio_lazyfree(m.frame_of(0, 2)) is False
