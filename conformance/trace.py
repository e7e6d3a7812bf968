"""The history: what happened, step by step, and its per-CPU timeline.

Events are stored as tuples and formatted only when a report is drawn, so the
per-step cost is one ``list.append``. The timeline uses the two-column form of
kernel commit messages: one column per CPU that has an event in the rows drawn (an
idle CPU takes no room; the others keep their numbers), then, when some event
belongs to no CPU (a frame freed, the other consumer's allocation), a last column
``hw`` for those (:func:`columns`); here at width 22 (reports draw 44)::

    step CPU0                    CPU2                    hw
    ---- ----------------------  ----------------------  ----------------------
       1 read mm0:v0 -> 1000
       2                         reclaim[pfn2]: start
       3                                                 pfn2 freed
"""
from __future__ import annotations

import textwrap


def _who_cpu(who) -> int:
    if who is None:
        return -1
    if isinstance(who, int):
        return who
    return who.cpu


def _fmt_arg(a) -> str:
    return str(a)


def format_event(name: str, args: tuple) -> str:
    """One event as text: ``name(arg, ...)`` or a free-form message."""
    if name == "msg":
        if len(args) == 1:
            return args[0]
        try:
            return args[0] % args[1:]
        except (TypeError, ValueError):  # a model bug's message must not hide the bug's report
            return f"{args[0]} {args[1:]!r}"
    if name == "flush_tlb_range":
        mm, s, e = args
        return f"flush_tlb_range(mm{mm}, v{s}..v{e - 1})" if e - s > 1 else f"flush_tlb_page(mm{mm}, v{s})"
    if name == "flush_tlb_mm":
        return f"flush_tlb_mm(mm{args[0]})"
    if name == "arch_tlbbatch_flush":
        mask = args[0]
        cpus = ",".join(str(i) for i in range(mask.bit_length()) if mask >> i & 1)
        return f"arch_tlbbatch_flush(cpus {cpus})"
    if name == "point":  # conformance/hookpoints.py: a hook paused after an effect
        return f"({args[0]} pauses after {args[1]})"
    if name == "returns":  # a hook whose last effect, after its last point, was a store
        return f"({args[0]} returns after {args[1]})"
    return f"{name}({', '.join(_fmt_arg(a) for a in args)})"


class Trace:
    """Append-only event list; ``step`` is the number of the current machine action."""

    __slots__ = ("events", "step")

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.step = 0

    def event(self, who, name: str, *args) -> None:
        self.events.append((self.step, who, name, args))

    def msg(self, who, text: str, *args) -> None:
        self.events.append((self.step, who, "msg", (text,) + args))

    def lines(self):
        """(step, cpu, text) for every event."""
        for step, who, name, args in self.events:
            yield step, _who_cpu(who), format_event(name, args)

    def lines_with_quiet(self, actions) -> list:
        """:meth:`lines`, plus a row for each step that logged no event, from ``actions``
        (the machine's action list: step ``k`` is action ``k - 1``), so that the timeline's
        steps run without a gap: an operation that ran to its next point without a visible
        effect (``(reclaim[pfn0] continues)``, in its CPU's column) or an action that changed
        nothing (``(evict(1, 0): no effect)``: an empty TLB).

        Example::

            >>> t = Trace(); t.step = 1; t.msg(0, "read mm0:v0 -> 1000"); t.step = 2
            >>> t.lines_with_quiet([("user_access", (0, 0, False)), ("evict", (1, 0))])
            [(1, 0, 'read mm0:v0 -> 1000'), (2, 1, '(evict(1, 0): no effect)')]
        """
        ops, seen = {}, set()
        for step, who, _name, _args in self.events:
            seen.add(step)
            if hasattr(who, "id"):  # an operation: its id as advance() names it
                ops.setdefault(who.id, who)
        rows = list(self.lines())
        quiet = []
        for k, (name, args) in enumerate(actions, 1):
            if k in seen or k > self.step:
                continue
            if name == "advance" and args and args[0] in ops:
                op = ops[args[0]]
                quiet.append((k, op.cpu, f"({op} continues)"))
            else:  # fill, evict, switch_mm name their CPU first; the consumer has none
                cpu = args[0] if name in ("fill", "evict", "switch_mm") else -1
                quiet.append((k, cpu, f"({name}({', '.join(map(str, args))}): no effect)"))
        return sorted(rows + quiet, key=lambda r: r[0]) if quiet else rows

    def timeline(self, ncpus: int, width: int = 44, last: int | None = None,
                 actions=None, also=()) -> str:
        """The per-CPU timeline; ``last`` keeps only the final ``last`` events; ``actions``
        (the machine's): a row for each step without an event too
        (:meth:`lines_with_quiet`). An event longer than ``width`` wraps onto continuation
        lines in its CPU's column (indented two spaces, no step number): nothing is cut.

        Only the columns :func:`columns` picks for the rows drawn are drawn: the CPUs that
        have an event there, under their own numbers, and ``hw`` after them for the events of
        no CPU (``cpu < 0``). Those are drawn without the ``[hw] `` prefix they had when they
        shared CPU0's column: the column says whose they are, and the prefix cost five
        characters of a 44-character cell. ``also``: CPUs drawn even with no event in the
        rows (a violation's CPUs: the one holding the stale entry often did nothing in the
        steps drawn, and its missing column hid who the headline blames; a review,
        2026-12-05). ``ncpus`` (the machine's CPUs) only matters for a timeline with no row
        at all: its CPUs' columns, empty.

        Example::

            >>> t = Trace(); t.step = 1
            >>> t.msg(1, "reclaim: dirty file pfn0: activate_locked, no pageout")
            >>> t.step = 2; t.msg(None, "pfn0 freed")
            >>> print(t.timeline(4, width=30))
            step CPU1                            hw
            ---- ------------------------------  ------------------------------
               1 reclaim: dirty file pfn0:
                   activate_locked, no pageout
               2                                 pfn0 freed
        """
        rows = list(self.lines()) if actions is None else self.lines_with_quiet(actions)
        if last is not None and len(rows) > last:
            rows = rows[-last:] if last > 0 else []  # rows[-0:] is every row
        rows = fold_repeats(rows)
        cols = (columns([cpu for _step, cpu, _text in rows] + list(also)) if rows
                else list(range(ncpus)))
        at = {c: i for i, c in enumerate(cols)}
        head = "step " + "  ".join(f"{heading(c):<{width}}" for c in cols)
        sep = "---- " + "  ".join("-" * width for _ in cols)
        out = [head.rstrip(), sep]
        for step, cpu, text in rows:
            col = at[cpu if cpu >= 0 else HW]
            for i, part in enumerate(_wrap(text, width)):
                cells = [""] * len(cols)
                cells[col] = part
                out.append(((f"{step:>4} " if i == 0 and step is not None else "     ")
                            + "  ".join(f"{c:<{width}}" for c in cells)).rstrip())
        return "\n".join(out)


#: the column of the events of no CPU (``cpu < 0``: a frame freed, the other consumer)
HW = -1

#: a run of more identical rows than this is drawn as its first row, one line counting
#: the rest, and its last row (:func:`fold_repeats`)
FOLD_AFTER = 3


def fold_repeats(rows: list) -> list:
    """``rows`` (``(step, cpu, text)``) with each run of more than :data:`FOLD_AFTER`
    consecutive rows of one CPU and one text (a protocol spinning through its points, an
    operation paused 400 times) cut to its first row, a row without a step counting the
    ones left out, and its last row: a stuck protocol's timeline was 800 lines of one
    pause (a user review, 2026-12-07). Deterministic; fewer rows never fold.

    Example::

        >>> rows = [(1, 0, "start")] + [(k, 0, "(x pauses)") for k in range(2, 8)]
        >>> for r in fold_repeats(rows): print(r)
        (1, 0, 'start')
        (2, 0, '(x pauses)')
        (None, 0, '... the same 4 more times (steps 3-6)')
        (7, 0, '(x pauses)')
    """
    out, i, n = [], 0, len(rows)
    while i < n:
        j = i + 1
        while j < n and rows[j][1] == rows[i][1] and rows[j][2] == rows[i][2]:
            j += 1
        if j - i > FOLD_AFTER:
            first, mid, end = rows[i], rows[i + 1:j - 1], rows[j - 1]
            out += [first, (None, first[1], f"... the same {len(mid)} more times (steps "
                                           f"{mid[0][0]}-{mid[-1][0]})"), end]
        else:
            out += rows[i:j]
        i = j
    return out


def columns(cpus) -> list[int]:
    """The columns a drawing of events on ``cpus`` (each event's CPU, negative for none)
    needs, in order: every CPU that has an event, by number, then :data:`HW` if some event
    has no CPU; ``[0]`` for no event. The text timeline (:meth:`Trace.timeline`) and the
    diagram of docs/LUF.txt (:func:`conformance.lufdoc.diagram`) draw these.

    Example::

        >>> columns([3, -1, 1, 3])
        [1, 3, -1]
        >>> [heading(c) for c in columns([2, 0])], columns([])
        (['CPU0', 'CPU2'], [0])
    """
    seen = set(cpus)
    cols = sorted(c for c in seen if c >= 0)
    if any(c < 0 for c in seen):
        cols.append(HW)
    return cols or [0]


def heading(col: int) -> str:
    """A column's heading: ``CPU<n>``, or ``hw`` for :data:`HW`."""
    return "hw" if col < 0 else f"CPU{col}"


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken at spaces where it can be;
    continuation lines are indented two spaces."""
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False) or [""]
