"""``CONFIG_MMU_GATHER_MERGE_VMAS`` (``Protocol.MMU_GATHER_MERGE_VMAS``; docs/model.md section
11 item 34): x86, powerpc, s390 and loongarch select it, so their ``tlb_end_vma`` does not
flush and a gather's range grows across VMAs until ``tlb_finish_mmu``. It is the model's
default since 2026-12-07 15:00; a protocol module sets the attribute False to be checked as
on arm64 or riscv (asm-generic's flush at every VMA boundary, the model's only behaviour
before). These tests show each setting does what it says and that mainline passes with both.
"""
import pytest

from conformance.litmus import corpus
from conformance.protocol import Protocol
from conformance.search.explorer import explore
from conformance.machine import Machine
from conformance.registry import load_protocol
from conformance.search.walk import run_example
from conformance.config import DEFAULT
from generic_tlb import LinuxFlushAtVmaEnd

LINUX = load_protocol("linux")


def flushes_of_munmap_across_two_vmas(cls):
    """munmap of v1..v2: one page of A (anonymous), one of B (file), one gather."""
    m = Machine(cls)
    before = len(list(m.trace.lines()))
    m.munmap(0, 1, 2)
    m.drain()
    m.check_quiescent()
    return [t for _, _, t in list(m.trace.lines())[before:] if t.startswith("flush_tlb")]


def test_merge_vmas_is_the_default():
    assert Protocol.MMU_GATHER_MERGE_VMAS is True and LINUX.MMU_GATHER_MERGE_VMAS is True


def test_merge_vmas_flushes_once_at_tlb_finish_mmu():
    assert flushes_of_munmap_across_two_vmas(LINUX) == ["flush_tlb_range(mm0, v1..v2)"]
    assert flushes_of_munmap_across_two_vmas(LinuxFlushAtVmaEnd) == [
        "flush_tlb_page(mm0, v1)", "flush_tlb_page(mm0, v2)"]


@pytest.mark.parametrize("scenario", [s for s in corpus() if s.name.startswith("bug-2.5")],
                         ids=lambda s: s.name)
@pytest.mark.parametrize("cls", [LINUX, LinuxFlushAtVmaEnd], ids=["x86", "generic"])
def test_mainline_passes_the_nested_gather_scenarios_either_way(scenario, cls):
    """99baac21e458's races: with no flush at ``tlb_end_vma`` the first madvise's PTE stays
    cached until its ``tlb_finish_mmu``, and mainline's nested check still covers it; the
    protocol without the check fails on both settings."""
    assert explore(scenario, cls).verdict == "pass"
    assert explore(scenario, load_protocol("hist_2_5_no_nested_gather_flush")).verdict == "S3"


def test_mainline_flushing_at_each_vma_end_passes_a_swarm_sample():
    """200 swarm walks of the default machine with asm-generic's flush: no violation (a
    soundness probe of the setting the suite no longer runs by default; the default is
    certified in docs/SOUNDNESS.md)."""
    for seed in range(200):
        ex = run_example(LinuxFlushAtVmaEnd, DEFAULT, seed=seed, swarm=True)
        assert ex.failure is None, (seed, ex.failure)
