"""The per-CPU text timeline every failure prints (``conformance.trace.Trace.timeline``): only
the columns that have something in them, the events of no CPU in a column of their own, a
protocol error's row in the column of the operation whose hook failed, and a syscall's
return row that says it is one (a user review, 2026-12-05)."""
import os
import re

from conformance.config import MachineConfig
from conformance.errors import ProtocolError
from conformance.lufdoc import diagram
from conformance.machine import Machine
from conformance.trace import Trace
from protocols.linux import Linux


def _header(text: str) -> list[str]:
    return text.splitlines()[0].split()


def test_only_the_cpus_with_an_event_are_drawn():
    """A 4-CPU timeline where CPU1 and CPU3 act: two columns, under their own numbers (it
    drew all four, 44 characters each, whatever acted)."""
    t = Trace()
    t.step = 1
    t.msg(3, "reclaim[pfn0]: start")
    t.step = 2
    t.msg(1, "read mm0:v0 -> 1000")
    text = t.timeline(4)
    assert _header(text) == ["step", "CPU1", "CPU3"]
    assert len(text.splitlines()[1].split()) == 3  # "----" and one rule per column
    row = text.splitlines()[2]
    assert row.index("reclaim") == 5 + 46  # the second column: CPU3's
    assert text.splitlines()[3].index("read") == 5
    assert max(len(x) for x in text.splitlines()) <= 5 + 46 + 44
    # ``last`` draws the columns of the rows it keeps, never fewer
    assert _header(t.timeline(4, last=1)) == ["step", "CPU1"]


def test_the_events_of_no_cpu_get_a_column_of_their_own():
    """A frame freed (no CPU) is drawn in a last ``hw`` column, without the ``[hw] `` prefix,
    not in CPU0's column, where it read as CPU0's own action; no such event, no column."""
    t = Trace()
    t.step = 1
    t.msg(0, "read mm0:v0 -> 1000")
    t.step = 2
    t.msg(None, "pfn1 freed")
    t.step = 3
    t.msg(2, "reclaim[pfn1]: return")
    lines = t.timeline(3).splitlines()
    assert _header("\n".join(lines)) == ["step", "CPU0", "CPU2", "hw"]
    (row,) = [x for x in lines if "pfn1 freed" in x]
    assert row == "   2" + " " * (1 + 46 * 2) + "pfn1 freed"
    assert "[hw]" not in "\n".join(lines)
    t2 = Trace()
    t2.step = 1
    t2.msg(0, "read mm0:v0 -> 1000")
    assert _header(t2.timeline(3)) == ["step", "CPU0"]
    # the mail diagram of docs/LUF.txt draws the same columns (conformance.trace.columns)

    class F:
        machine = type("M", (), {"trace": t})()
        rule, text = "S1", "x"
    assert diagram(F()).splitlines()[0].split() == ["CPU0", "CPU2", "hw"]


class YieldsInDefer(Linux):
    name = "yields_in_defer"

    def should_defer_flush(self, task, mm):
        yield  # a hook that must not yield (conformance/hooks.py must_not_yield)


def test_a_protocol_error_row_is_in_the_column_of_the_operation_whose_hook_failed():
    """A must-not-yield hook that yields inside a migrate on CPU1: the ``!! PROTOCOL ERROR``
    row is in CPU1's column, the migrate's (it was ``[hw]`` in CPU0's), and it names where the
    hook is defined, as the other hook-rule errors do."""
    m = Machine(YieldsInDefer)
    try:
        m.migrate(1, (0,))
        m.drain()
    except ProtocolError as e:
        f = e
    else:
        raise AssertionError("no protocol error")
    (who,) = [w for _s, w, name, args in m.trace.events
              if name == "msg" and args[0].startswith("!! PROTOCOL ERROR")]
    assert who is not None and who.cpu == 1 and who.name == "migrate", who
    text = f.report(last=None)
    assert "[hw]" not in text
    timeline = text[text.index("\nstep "):]
    assert _header(timeline.strip()) == ["step", "CPU1"]
    assert re.search(r"\n +\d+ !! PROTOCOL ERROR: should_defer_flush", timeline), timeline
    assert f"(should_defer_flush at {os.path.basename(__file__)}:" in str(f), str(f)


def test_a_syscall_says_where_it_returns():
    """mprotect logged its label alone (``mprotect(mm0, v0..v0, RO)``) at the end of its walk,
    before its S3 check, then ``...: return``: now one row, ``...: return``, as a fault's;
    its S3 row would follow it. mremap's return keeps its result."""
    # the holed machine (docs/SEARCH.md): v2 is free for the mremap to move v0 to
    m = Machine(Linux, MachineConfig(ncpus=4, nmms=2, vpages=3, ptes_per_table=1, nframes=10,
                                     nfiles=2, file_pages=1, swap_slots=6))
    m.mprotect(0, 0, 1, False)
    m.drain()
    m.mremap(1, 0, 1, 2)
    m.drain()
    texts = [t for _s, _c, t in m.trace.lines()]
    assert "mprotect(mm0, v0..v0, RO)" not in texts, texts
    assert texts.count("mprotect(mm0, v0..v0, RO): return") == 1, texts
    assert not [t for t in texts if t.startswith("mremap(") and "return" not in t
                and not t.endswith(": start")], texts
    assert [t for t in texts if t.startswith("mremap(") and t.endswith(": return (2)")], texts


def test_a_violation_s_cpus_get_their_columns_even_with_no_event():
    """The CPU a violation names (the one holding the stale entry) often does nothing in the
    rows drawn; its column is drawn all the same (``also``), where only the acting CPUs'
    were and the headline blamed a CPU the timeline did not show (a review, 2026-12-05)."""
    from conformance.trace import Trace

    t = Trace()
    t.step = 1
    t.msg(2, "pageout(pfn0 -> slot0)")
    assert t.timeline(4).splitlines()[0].split() == ["step", "CPU2"]
    assert t.timeline(4, also=(0,)).splitlines()[0].split() == ["step", "CPU0", "CPU2"]
    assert t.timeline(4, last=0, also=(0,)).splitlines()[0].split() == ["step", "CPU0", "CPU1",
                                                                       "CPU2", "CPU3"]
