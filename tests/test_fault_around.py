"""Fault-around (``do_fault_around`` -> ``filemap_map_pages``, the config's
``fault_around_pages``; docs/model.md section 11 item 32): a read fault of a file page maps
the page cache's unlocked neighbours in its window read-only, under one PTL.

The empty boot: mm0's v2..v3 map file0 read-only, mm1's v0..v1 map file0 shared writable
(write-notify: read faults map read-only). mm0 reads v2 and v3 first, so file0's two pages
are cached when mm1 faults.
"""
import pytest

from conformance.config import MachineConfig
from conformance.machine import Machine
from conformance.mm.mm_types import MIGRATION, NONE, PRESENT
from conformance.registry import load_protocol

LINUX = load_protocol("linux")


def cached_file0(pages: int):
    m = Machine(LINUX, MachineConfig(populate=False, fault_around_pages=pages))
    for vp in (2, 3):
        m.fault(0, vp, False)
        m.drain()
    assert sorted(m.mem.files[0].cache) == [0, 1]
    return m


def lines(m):
    return [t for _, _, t in m.trace.lines()]


@pytest.mark.parametrize("pages", [1, 2, 16])
def test_a_read_fault_maps_its_cached_neighbour(pages):
    """With a window of 2 or more pages mm1's read fault of v0 maps v1 too, read-only and
    clean, so the read of v1 after it hits the page table without a fault; with 1 (the
    default) it maps v0 alone and v1 faults."""
    m = cached_file0(pages)
    m.fault(1, 0, False)
    m.drain()
    v1 = m.mms[1].ptes[1]
    if pages > 1:
        assert "do_fault_around(mm1:v0..v1)" in lines(m)
        assert v1.kind == PRESENT and not v1.writable and not v1.dirty
        assert v1.frame == m.mem.files[0].cache[1] and (1, 1) in m.mem.rmap[v1.frame]
        assert m.user_access(1, 1, False) != "fault"
    else:
        assert not any("do_fault_around" in t for t in lines(m)) and v1.kind == NONE
        assert m.user_access(1, 1, False) == "fault"
    m.drain()
    m.check_quiescent()


def test_a_locked_neighbour_is_skipped():
    """``next_uptodate_folio``'s ``folio_trylock``: a migration holds file0:1's folio
    locked (its migration entries installed), so mm1's fault maps v0 alone."""
    m = cached_file0(16)
    frame = m.mem.files[0].cache[1]
    mg = m.migrate(2, (frame,))
    while m.mms[0].ptes[3].kind != MIGRATION:
        m.advance(mg.id)
    assert m.mem.folio_lock[frame].owner is mg
    f = m.fault(1, 0, False)
    while f in m.ops:
        m.advance(f.id)
    assert m.mms[1].ptes[0].kind == PRESENT and m.mms[1].ptes[1].kind == NONE
    m.drain()
    m.check_quiescent()


def test_a_window_with_nothing_cached_takes_no_lock_and_reads_the_page_in():
    """Nothing of file0 cached: fault-around does nothing (no table, no PTL) and the fault
    reads the page in as without it."""
    m = Machine(LINUX, MachineConfig(populate=False, fault_around_pages=16))
    m.fault(0, 2, False)
    m.drain()
    text = lines(m)
    assert text.index("page cache: file0:0 read into pfn0") < text.index(
        "do_fault_around(mm0:v2..v3)")  # only the retry, after the read, maps around
    assert m.mms[0].ptes[2].kind == PRESENT and m.mms[0].ptes[3].kind == NONE
    m.check_quiescent()


def test_the_window_is_clamped_to_the_vma_and_the_page_table():
    """``from_pte``/``to_pte``: a window of 16 on 2-PTE tables covers one table, and
    never a page outside the VMA (mm0's v1 is anonymous: not mapped by v2's fault)."""
    m = Machine(LINUX, MachineConfig(populate=False, fault_around_pages=16, ptes_per_table=4))
    for vp in (2, 3):
        m.fault(0, vp, False)
        m.drain()
    m.madvise(0, 2, 2, "dontneed")
    m.drain()
    m.fault(0, 3, False)
    m.drain()
    assert "do_fault_around(mm0:v2..v3)" in lines(m)
    assert [m.mms[0].ptes[vp].kind for vp in range(4)] == [NONE, NONE, PRESENT, PRESENT]
    m.check_quiescent()


def test_a_window_that_is_not_a_power_of_two_is_one_line_of_bad_input(capsys):
    """``fault_around_bytes`` is rounded to a power of two of pages by the kernel; a
    ``--config`` that asks for 3 pages is refused in one line, exit 2."""
    from conformance.cli import main
    assert main(["certify", "linux", "--config", "fault_around_pages=3", "--examples", "1",
                 "--database", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["flushcheck: error: bad --config: 'fault_around_pages' must be a power of "
                   "two, not 3"], err


def test_v11_posted_need_luf_flush_asks_about_the_faulting_page_not_its_neighbours(monkeypatch):
    """luf_v11_posted flushes (``need_luf_flush`` -> ``luf_flush(0)``) where a fault finds
    its page's PTE made writable by someone else; a neighbour its own fault-around mapped
    does not make the fault the installer of the faulting page (the reading the module had
    before 2026-12-07 10:59: any install by the fault skipped the flush)::

        CPU1 (mm1 read fault, v1)             CPU3 (mm1 write fault, v1)   CPU2
                                                                           migrate file0:1
        do_fault_around: maps v0, v1's
          folio is locked: skipped
        lock_folio_maybe_drop_mmap: waits     lock_folio...: waits
                                                                           migration ends
                                              set_pte_at(v1, W)
        VM_FAULT_RETRY: v1 writable, not
          installed by this fault: luf_flush

    The write fault, which installed v1 itself, does not flush."""
    import protocols._luf as luf

    who = []
    flush_all = luf.LufBase.luf_flush_all

    def spy(self, task):
        who.append(task)
        return flush_all(self, task)

    monkeypatch.setattr(luf.LufBase, "luf_flush_all", spy)
    m = Machine(load_protocol("luf_v11_posted"),
                MachineConfig(populate=False, fault_around_pages=16, ncpus=4))
    for vp in (2, 3):
        m.fault(0, vp, False)
        m.drain()
    mg = m.migrate(2, (m.mem.files[0].cache[1],))
    while m.mms[0].ptes[3].kind != MIGRATION:
        m.advance(mg.id)
    rd = m.fault(1, 1, False)
    wr = m.fault(3, 1, True)
    assert rd.blocked_on is not None and wr.blocked_on is not None
    for op in (mg, wr, rd):
        while op in m.ops:
            m.advance(op.id)
    text = lines(m)
    assert "set_pte_at(mm1:v0 -> pfn0 RO)" in text        # rd's fault-around mapped v0
    assert m.mms[1].ptes[1].writable and wr.result == "ok"  # wr installed v1 writable
    assert rd in who and wr not in who
    m.drain()
    m.check_quiescent()
