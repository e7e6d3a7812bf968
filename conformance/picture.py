"""A failure as a picture: one self-contained HTML file with an inline SVG.

The per-CPU timeline of :mod:`conformance.trace` drawn to scale: one lane per CPU, time
running down (one row per trace event, as in the text timeline and in kernel commit
messages), and in each lane

- the kernel operations as spans (``munmap(mm0, v0..v0)`` from start to return), each
  event inside them a tick labelled with its kernel function (``ptep_get_and_clear``,
  ``flush_tlb_mm``, ...);
- each TLB entry's life, a bar per (cpu, mm, vpage, frame) from fill to flush or
  eviction: blue while its PTE is the one it was filled from, red once it outlived that PTE
  (cleared or replaced), orange while it is writable over a write-protected PTE;
- flushes: an arrow to every CPU the flush reaches (an IPI when remote), and a cross where
  an entry died;
- the violating step: a red band with the oracle's message.

No network, no script: hover titles are SVG ``<title>`` elements. The TLB lives are not
in the trace (recording them would cost every step); :func:`render_html` re-runs the
failure's actions on a fresh machine whose TLBs and trace record them, so normal runs pay
nothing. The same input gives the same bytes.

Example::

    >>> from conformance.reproducer import load
    >>> html = render_html(load("repro/linux_4_13-3.json"))       # doctest: +SKIP
    >>> html.startswith("<!DOCTYPE html>")                        # doctest: +SKIP
    True
"""
from __future__ import annotations

import os
from html import escape

from .errors import Failure, Violation
from .mm.mm_types import PRESENT
from .hw.tlb import Tlbs
from .trace import Trace, _who_cpu, format_event

#: trace event names that flush TLBs (conformance/hw/arch.py)
FLUSHES = ("flush_tlb_range", "flush_tlb_mm", "arch_tlbbatch_flush", "local_flush_tlb")

# geometry (px); monospace 12 px is about 7.2 px per character
ROW = 18
CHAR = 7.2
GUTTER = 58
LANE = 16
TEXT_CHARS = (36, 68)  # characters of event text per lane: at least, at most
PAGE = 1380  # the width the lanes share before the page scrolls sideways
HEAD = 132
TOP = 8

FRESH, STALE, WIDER = "#3a7bd5", "#d62828", "#f08c00"
FLUSH_COLOUR = "#7b2cbf"
OP_COLOURS = {"fault": "#8d99ae", "reclaim": "#2a9d8f", "migrate": "#e9c46a", "munmap": "#9b5de5",
              "mmap": "#00bbf9", "mprotect": "#f15bb5", "madvise": "#fb8500", "mremap": "#8ac926",
              "write": "#6a4c93", "writeback": "#1982c4", "truncate": "#bc4749", "exit": "#5f0f40",
              "fork": "#ef476f"}


class Life:
    """One TLB entry's life on one CPU: ``start``/``end`` are trace event indices (-1: cached
    at boot; None: still cached at the end); ``stale_at`` the event at which its PTE went
    away or was replaced, ``wider_at`` the one at which a writable entry's PTE lost W."""

    __slots__ = ("cpu", "mm", "vpage", "frame", "inst", "writable", "start", "end", "replaced",
                 "stale_at", "stale_why", "wider_at")

    def __init__(self, cpu, mm, vpage, frame, inst, writable, start) -> None:
        self.cpu, self.mm, self.vpage, self.frame = cpu, mm, vpage, frame
        self.inst, self.writable, self.start = inst, writable, start
        self.end = None
        self.replaced = False
        self.stale_at = self.wider_at = None
        self.stale_why = ""

    @property
    def key(self) -> tuple:
        return (self.mm, self.vpage, self.frame)


class Recorder:
    """What the trace does not keep: TLB lives and the CPUs each flush reached.

    Installed on one machine by :func:`record` (its TLBs and trace switch to recording
    subclasses); the machine runs as before, event for event.
    """

    def __init__(self, m) -> None:
        self.m = m
        self.live: dict = {}  # (cpu, mm, vpage) -> Life
        self.lives: list[Life] = []
        self.reached: dict = {}  # event index -> CPUs a flush reached
        #: why the lives could not be judged (a hook that renumbered an mm left entries of
        #: an mm the machine does not have): drawn without them, and said so
        self.broken: str | None = None
        for cpu, mm_id, vp, e in m.tlbs.all_entries():
            self._start(cpu.id, mm_id, vp, e, -1)

    def _now(self) -> int:
        return len(self.m.trace.events)

    def _start(self, cpu, mm_id, vp, e, at) -> None:
        life = Life(cpu, mm_id, vp, e.frame, e.inst, e.writable, at)
        self.live[(cpu, mm_id, vp)] = life
        self.lives.append(life)

    def inserted(self, cpu, mm_id, vp, e) -> None:
        old = self.live.get((cpu, mm_id, vp))
        if old is not None and old.frame == e.frame and old.inst == e.inst:
            old.writable |= e.writable  # a re-walk of the same PTE (sets D): the same life
            return
        if old is not None:
            old.end, old.replaced = self._now(), True
        self._start(cpu, mm_id, vp, e, self._now())

    def dropped(self, cpu, mm_id, vp) -> None:
        life = self.live.pop((cpu, mm_id, vp), None)
        if life is not None:
            life.end = self._now()

    def before_event(self, who, name, args) -> None:
        """Judge every live entry against its PTE now; note the CPUs a flush reaches."""
        i = self._now()
        mms = self.m.mms
        if self.broken is not None:
            return
        for life in self.live.values():
            if not (life.mm.__class__ is int and 0 <= life.mm < len(mms)
                    and life.vpage.__class__ is int and 0 <= life.vpage < len(mms[life.mm].ptes)):
                # an entry of an mm the machine does not have: a hook renumbered one
                # (HookRuleBroken); mms[-1] would have read another mm's PTE
                self.broken = f"an entry of mm{life.mm} v{life.vpage}, which the machine lacks"
                return
            pte = mms[life.mm].ptes[life.vpage]
            if life.stale_at is None and (pte.kind != PRESENT or pte.inst != life.inst):
                life.stale_at = i
                life.stale_why = "PTE cleared" if pte.kind != PRESENT else "PTE replaced"
            elif (life.wider_at is None and life.stale_at is None and life.writable
                  and not pte.writable):
                life.wider_at = i
        if name in FLUSHES:
            cpus = self.m.tlbs.cpus
            if name == "arch_tlbbatch_flush":
                self.reached[i] = [c.id for c in cpus if args[0] >> c.id & 1]
            elif name == "local_flush_tlb":
                self.reached[i] = [_who_cpu(who)]
            else:
                self.reached[i] = [c.id for c in cpus
                                   if c.loaded_mm is not None and c.loaded_mm.id == args[0]]


def record(m) -> Recorder:
    """Make machine ``m`` record its TLB lives and flush targets from now on.

    Example::

        >>> from conformance.machine import Machine
        >>> from conformance.registry import load_protocol
        >>> m = Machine(load_protocol("linux"))
        >>> rec = record(m)
        >>> m.evict(1, 0)                       # CPU1 drops mm1:v0, cached since boot
        True
        >>> [(l.cpu, l.mm, l.vpage, l.start, l.end) for l in rec.lives if l.end is not None]
        [(1, 1, 0, -1, 0)]
    """
    rec = Recorder(m)

    class RecordingTlbs(Tlbs):
        __slots__ = ()

        def insert(self, cpu, mm_id, vpage, frame, writable, dirty, inst):
            e = Tlbs.insert(self, cpu, mm_id, vpage, frame, writable, dirty, inst)
            rec.inserted(cpu.id, mm_id, vpage, e)
            return e

        def drop(self, cpu, mm_id, vpage):
            hit = Tlbs.drop(self, cpu, mm_id, vpage)
            if hit:
                rec.dropped(cpu.id, mm_id, vpage)
            return hit

        def drop_mm(self, cpu, mm_id):
            vps = list(cpu.tlb.get(mm_id) or ())
            n = Tlbs.drop_mm(self, cpu, mm_id)
            for vp in vps:
                rec.dropped(cpu.id, mm_id, vp)
            return n

    class RecordingTrace(Trace):
        __slots__ = ()

        def event(self, who, name, *args):
            rec.before_event(who, name, args)
            Trace.event(self, who, name, *args)

        def msg(self, who, text, *args):
            rec.before_event(who, "msg", (text,) + args)
            Trace.msg(self, who, text, *args)

    m.tlbs.__class__ = RecordingTlbs
    m.trace.__class__ = RecordingTrace
    return rec


def rerun(proto_cls, cfg, strict, actions):
    """Re-run ``actions`` on a fresh recording machine: (machine, recorder, failure or None).

    Example::

        >>> from conformance.registry import load_protocol
        >>> from conformance.config import DEFAULT
        >>> m, rec, f = rerun(load_protocol("linux"), DEFAULT, False, [("fill", (0, 2))])
        >>> f is None and len(rec.lives) > 0
        True
    """
    from .machine import Machine
    from .reproducer import replay_actions

    m = Machine(proto_cls, cfg, strict=strict)
    rec = record(m)
    return m, rec, replay_actions(proto_cls, cfg, strict, actions, machine=m)


def _source(x):
    """(machine, recorder, failure, original trace lines) for what render_html accepts."""
    from .machine import Machine

    if isinstance(x, dict):  # a loaded reproducer
        from .config import MachineConfig
        from .reproducer import protocol_of

        cls = protocol_of(x)
        acts = [(n, tuple(tuple(a) if isinstance(a, list) else a for a in args))
                for n, args in x["actions"]]
        m, rec, f = rerun(cls, MachineConfig(**x["config"]), bool(x.get("strict")), acts)
        return m, rec, f, None
    failure = x if isinstance(x, Failure) else None
    m = x.machine if failure is not None else x
    if not isinstance(m, Machine):
        return None, None, failure, None
    m2, rec, f2 = rerun(type(m.proto), m.cfg, m.oracle.strict, list(m.actions))
    before = [(s, c, t) for s, c, t in m.trace.lines()]
    if [(s, c, t) for s, c, t in m2.trace.lines()] != before:  # did not re-run the same
        return m, None, failure, before
    return m2, rec, (f2 if failure is not None else None), None


def _text_px(text: str) -> float:
    return len(text) * CHAR


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _wrap(text: str, n: int) -> list[str]:
    words, lines, cur = text.split(" "), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > n:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    return lines + ([cur] if cur else [])


def _op_of(who):
    return who if who is not None and hasattr(who, "gen") and hasattr(who, "cpu") else None


def _end_why(events, i) -> str:
    if i >= len(events):
        return "dropped at the end"
    _s, who, name, args = events[i]
    text = format_event(name, args)
    if name in FLUSHES:
        return f"flushed by {text}"
    if text.startswith("[tlb evict"):
        return "evicted"
    if text.startswith("#PF"):
        return "invalidated by the #PF"
    if text.startswith("switch_mm"):
        return "dropped at switch_mm (its tlb_gen moved on)"
    return f"dropped (inc_mm_tlb_gen: mm not loaded) before {text}"


def render_html(x, *, title: str | None = None, command: str | None = None,
                ncpus: int | None = None) -> str:
    """The picture of a failure as an HTML document (a string; same input, same bytes).

    ``x``: a :class:`Failure` with its machine, a :class:`~conformance.machine.Machine`, a
    loaded reproducer (:func:`conformance.reproducer.load`) or a bare
    :class:`~conformance.trace.Trace` (then ``ncpus`` is needed and no TLB lives are
    drawn). ``command`` is shown as the command that makes the picture.

    Example::

        >>> from conformance.machine import Machine
        >>> from conformance.registry import load_protocol
        >>> m = Machine(load_protocol("linux"))
        >>> m.user_access(0, 2, write=True)     # a file page mapped read-only: a fault
        'fault'
        >>> "<svg" in render_html(m)
        True
    """
    if isinstance(x, Trace):
        m, rec, failure, lines = None, None, None, None
        trace, n = x, ncpus or 1
    else:
        m, rec, failure, lines = _source(x)
        trace, n = m.trace, m.cfg.ncpus
    events = trace.events
    head = failure.headline() if failure is not None else "no failure: the run passes"
    if lines is not None:
        head += "  (the re-run differs from the recorded trace: TLB lives not drawn)"
    elif rec is not None and rec.broken is not None:
        head += f"  (TLB lives not drawn: the machine could not be read, {rec.broken})"
        rec = None
    doc_title = title or (f"flushcheck picture: {m.proto.name}" if m is not None
                          else "flushcheck picture")
    svg = _svg(events, n, rec, failure, m)
    meta = []
    if m is not None:
        meta.append(f"protocol <b>{escape(m.proto.name)}</b> &#160; config "
                    f"{escape(m.cfg.describe())}")
    if command:
        meta.append(f"made by <code>{escape(command)}</code>")
    legend = "".join(
        f'<span class="sw" style="background:{c}"></span>{escape(t)} &#160; '
        for c, t in ((FRESH, "TLB entry, its PTE live"), (STALE, "stale: outlived its PTE"),
                     (WIDER, "writable over a read-only PTE"), (FLUSH_COLOUR, "flush / IPI")))
    report = failure.report(last=None) if failure is not None else (
        trace.timeline(n, actions=m.actions if m is not None else None) if trace is not None
        else "")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"/>',
        f"<title>{escape(doc_title)}</title>",
        "<style>body{font:14px sans-serif;margin:12px;color:#222}"
        "h1{font-size:16px;margin:0 0 4px}p{margin:2px 0}"
        "code,pre{font:12px monospace}.bad{color:#b00;font-weight:bold}"
        ".sw{display:inline-block;width:22px;height:8px;margin:0 4px;vertical-align:middle}"
        "svg text{font:12px monospace}svg .small{font-size:10.5px}"
        "svg .cpu{font:bold 14px sans-serif}</style></head><body>",
        f"<h1>{escape(doc_title)}</h1>",
        f'<p class="{"bad" if failure is not None else ""}">{escape(head)}</p>',
        "".join(f"<p>{t}</p>" for t in meta),
        f"<p>{legend}</p>",
        svg,
        "<details><summary>the text timeline</summary><pre>" + escape(report) + "</pre></details>",
        "</body></html>",
        ""])


def _svg(events, ncpus, rec, failure, m) -> str:
    lives = rec.lives if rec is not None else []
    reached = rec.reached if rec is not None else {}
    boot = any(l.start == -1 for l in lives)
    # the violating event: the oracle's "!!" line, else the last event of the failing step
    bad = None
    if failure is not None:
        for i, (_s, _w, name, args) in enumerate(events):
            if name == "msg" and str(args[0]).startswith("!! "):
                bad = i
        if bad is None:  # a protocol or model error: a row of its own after the last event
            bad = len(events)
    # events of no CPU (a hardware fill or eviction the machine made, a global message) get a
    # column of their own, "hw", after the CPUs', as in the text timeline; until 2026-12-05
    # they were drawn in CPU0's lane marked "[hw]", where they read as CPU0's doing
    no_cpu = [not 0 <= _who_cpu(w) < ncpus for _s, w, _n, _a in events]
    hw_col = ncpus if any(no_cpu) else None
    cols = ncpus + (hw_col is not None)
    # entry lanes per CPU, in order of first appearance (the hw column has none)
    lanes: list[dict] = [{} for _ in range(cols)]
    for l in lives:
        if 0 <= l.cpu < ncpus:
            lanes[l.cpu].setdefault(l.key, len(lanes[l.cpu]))
    fixed = sum(10 + len(lanes[c]) * LANE + 30 + 8 for c in range(cols))
    tc = int(min(TEXT_CHARS[1], max(TEXT_CHARS[0], (PAGE - GUTTER - fixed) / cols / CHAR)))
    # the hw column is as wide as its longest event (a free is a dozen characters), unless
    # the failure's row is drawn there
    hw_chars = tc
    if hw_col is not None and not (bad is not None and bad < len(events) and no_cpu[bad]):
        hw_chars = min(tc, max([20] + [len(format_event(n, a)) for i, (_s, _w, n, a)
                                       in enumerate(events) if no_cpu[i]]))
    col_x, col_w = [], []
    x = GUTTER
    for c in range(cols):
        w = 10 + len(lanes[c]) * LANE + 30 + (hw_chars if c == hw_col else tc) * CHAR + 8
        col_x.append(x)
        col_w.append(w)
        x += w
    width = int(x + 8)
    bad_lines = (_wrap(failure.headline(), tc) if failure is not None and bad is not None
                 else [])
    # rows: y of each event's top; the violating row is as tall as its message
    ys, y = [], HEAD + (ROW if boot else 0)
    for i in range(len(events) + 1):
        ys.append(y)
        y += ROW if i != bad else ROW * (len(bad_lines) + 1) + 6
        if i == len(events) - 1 and bad != len(events):
            break
    bottom = y + ROW
    height = int(bottom + 10)

    def mid(i):
        if i is None or i >= len(events):
            return bottom - 4
        if i < 0:
            return HEAD + ROW / 2
        return ys[i] + ROW / 2

    def lane_x(c):
        return col_x[c] + 10

    def op_x(c):
        return col_x[c] + 10 + len(lanes[c]) * LANE + 8

    def text_x(c):
        return op_x(c) + 22

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{FLUSH_COLOUR}"/>'
           '</marker></defs>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>']
    # step bands and numbers
    prev, shade = None, False
    for i, (step, _w, _n, _a) in enumerate(events):
        if step != prev:
            shade = not shade
            j = i
            while j + 1 < len(events) and events[j + 1][0] == step:
                j += 1
            h = ys[j] + (ROW if j != bad else ROW * (len(bad_lines) + 1) + 6) - ys[i]
            if shade:
                out.append(f'<rect x="0" y="{ys[i]}" width="{width}" height="{h}" fill="#f3f4f7"/>')
            out.append(f'<text x="{GUTTER - 8}" y="{ys[i] + 13}" text-anchor="end" fill="#555">'
                       f'{step}</text>')
            prev = step
    if boot:
        out.append(f'<text x="{GUTTER - 8}" y="{HEAD + 13}" text-anchor="end" fill="#555" '
                   'class="small">boot</text>')
    if bad is not None:  # under the bars that run through it; its text comes last
        out.append(f'<rect x="{GUTTER - 52}" y="{ys[bad] + 1}" width="{width - GUTTER + 48}" '
                   f'height="{ROW * (len(bad_lines) + 1) + 2}" fill="#fde2e2" stroke="{STALE}" '
                   'stroke-width="2" rx="4"/>')
    # lanes: a frame and a header per CPU
    out.append(f'<text x="{GUTTER - 8}" y="{HEAD - 6}" text-anchor="end" class="small" '
               'fill="#555">step</text>')
    for c in range(cols):
        hw = c == hw_col
        out.append(f'<g class="lane" data-cpu="{"hw" if hw else c}">')
        out.append(f'<rect x="{col_x[c]}" y="{TOP}" width="{col_w[c]}" height="{bottom - TOP}" '
                   'fill="none" stroke="#999"/>')
        out.append(f'<text class="cpu" x="{col_x[c] + 8}" y="{TOP + 18}">'
                   f'{"hw" if hw else f"CPU{c}"}</text>')
        if lanes[c]:
            out.append(f'<text class="small" x="{lane_x(c)}" y="{TOP + 34}" fill="#555">'
                       'TLB entries</text>')
        out.append(f'<text class="small" x="{text_x(c)}" y="{HEAD - 6}" fill="#555">'
                   f'{"events of no CPU" if hw else "kernel operations and events"}</text>')
        for key, k in lanes[c].items():
            lx = lane_x(c) + k * LANE + LANE / 2
            out.append(f'<line x1="{lx}" y1="{HEAD}" x2="{lx}" y2="{bottom}" stroke="#e3e3e3"/>')
            out.append(f'<text class="small" transform="translate({lx + 4},{HEAD - 6}) '
                       f'rotate(-90)">mm{key[0]}:v{key[1]} pfn{key[2]}</text>')
        out.append("</g>")
    # operations: spans from start to return
    spans: dict = {}
    for i, (_s, who, _n, _a) in enumerate(events):
        op = _op_of(who)
        if op is not None:
            spans.setdefault(op.id, [op, i, i])[2] = i
    for op, a, b in spans.values():
        c = op.cpu
        if not 0 <= c < ncpus:
            continue
        done = any(format_event(n, ar).endswith(": return") or ": return (" in format_event(n, ar)
                   for _s, w, n, ar in events[a:b + 1] if w is op)
        end = (ys[b] + ROW - 3) if done else (
            ys[bad] + ROW * (len(bad_lines) + 1) + 2 if bad is not None else bottom - 2)
        y1, y2 = ys[a] + 3, end
        col = OP_COLOURS.get(op.name, "#888")
        # an operation in flight ran on after its last event, in steps with no event of
        # its own (the text timeline's "continues" rows): no last step to give (it read
        # "steps 18-18, still in flight" beside a timeline continuing at 19 and 22)
        steps = (f"steps {events[a][0]}-{events[b][0]}" if done
                 else f"from step {events[a][0]}, still in flight at the end")
        out.append(f'<rect class="op" x="{op_x(c)}" y="{y1}" width="10" height="{y2 - y1}" rx="3" '
                   f'fill="{col}" fill-opacity="0.85"><title>{escape(op.label)} on CPU{c}, '
                   f'{steps}</title></rect>')
    # TLB entry lives
    for l in lives:
        if not 0 <= l.cpu < ncpus:
            continue
        lx = lane_x(l.cpu) + lanes[l.cpu][l.key] * LANE + 4
        y1, y2 = mid(l.start), mid(l.end)
        segs = [(l.start, FRESH)]
        if l.wider_at is not None:
            segs.append((l.wider_at, WIDER))
        if l.stale_at is not None:
            segs.append((l.stale_at, STALE))
        when = "boot" if l.start < 0 else f"step {events[l.start][0]}"
        life = (f"CPU{l.cpu} mm{l.mm}:v{l.vpage} -> pfn{l.frame} {'W' if l.writable else 'RO'} "
                f"(PTE #{l.inst}): cached from {when}")
        if l.stale_at is not None:
            life += f"; stale from step {events[l.stale_at][0]} ({l.stale_why})"
        elif l.wider_at is not None:
            life += f"; its PTE write-protected at step {events[l.wider_at][0]}"
        if l.end is None:
            life += "; still cached at the end"
        elif l.replaced:
            life += f"; replaced at step {events[min(l.end, len(events) - 1)][0]}"
        else:
            life += (f"; ended at step {events[min(l.end, len(events) - 1)][0]}: "
                     f"{_end_why(events, l.end)}")
        stale = l.stale_at is not None
        culprit = (bad is not None and getattr(failure, "mm", None) == l.mm
                   and getattr(failure, "vpage", None) == l.vpage
                   and getattr(failure, "frame", None) == l.frame
                   and l.cpu in getattr(failure, "cpus", ()) and l.start < bad
                   and (l.end is None or l.end >= bad))
        out.append(f'<g class="tlb-entry{" stale" if stale else ""}{" culprit" if culprit else ""}">'
                   f'<title>{escape(life)}</title>')
        if culprit:  # the entry the oracle names
            out.append(f'<rect x="{lx - 3}" y="{y1 - 3:.1f}" width="14" height="{y2 - y1 + 6:.1f}" '
                       f'fill="none" stroke="#111" stroke-width="1.5" rx="3"/>')
        for k, (at, colour) in enumerate(segs):
            s = y1 if k == 0 else mid(at) - ROW / 2
            e = mid(segs[k + 1][0]) - ROW / 2 if k + 1 < len(segs) else y2
            if e > s:
                out.append(f'<rect x="{lx}" y="{s:.1f}" width="8" height="{e - s:.1f}" '
                           f'fill="{colour}"/>')
        if l.start >= 0:
            out.append(f'<circle cx="{lx + 4}" cy="{y1}" r="4" fill="#fff" stroke="{FRESH}" '
                       'stroke-width="2"/>')
        if l.end is None:
            out.append(f'<path d="M{lx - 2},{y2} L{lx + 10},{y2} L{lx + 4},{y2 + 7} z" '
                       f'fill="{STALE if stale else FRESH}"/>')
        elif not l.replaced:  # a cross: purple where a flush killed it, grey otherwise
            x_colour = FLUSH_COLOUR if _end_why(events, l.end).startswith("flushed") else "#666"
            out.append(f'<path d="M{lx - 1},{y2 - 5} L{lx + 9},{y2 + 5} M{lx + 9},{y2 - 5} '
                       f'L{lx - 1},{y2 + 5}" stroke="{x_colour}" stroke-width="2.5"/>')
        out.append("</g>")
    # events: ticks and labels in their CPU's lane
    for i, (step, who, name, args) in enumerate(events):
        if i == bad:
            continue
        text = format_event(name, args)
        hw = no_cpu[i]
        c = hw_col if hw else _who_cpu(who)
        op = _op_of(who)
        y = ys[i] + 13
        tx = text_x(c)
        if op is not None:
            out.append(f'<line x1="{op_x(c) + 10}" y1="{ys[i] + 9}" x2="{tx - 4}" '
                       f'y2="{ys[i] + 9}" stroke="#444"/>')
        else:
            out.append(f'<circle cx="{tx - 9}" cy="{ys[i] + 9}" r="3" '
                       f'fill="{"#aaa" if hw else "#444"}"/>')
        weight = ' font-weight="bold"' if text.endswith(": start") else ""
        fill = FLUSH_COLOUR if name in FLUSHES else ("#777" if hw else "#111")
        shown = _clip(text, hw_chars if hw else tc)
        tip = f"<title>step {step}: {escape(text)}</title>" if shown != text else ""
        out.append(f'<text x="{tx}" y="{y}" fill="{fill}"{weight}>{tip}{escape(shown)}</text>')
        if name in FLUSHES:
            out.append(_flush_marks(i, c, text, reached.get(i, []), ys[i] + 9, tx, lane_x,
                                    lanes, ncpus, tc))
    if bad is not None:
        out.append(_violation(events, bad, failure, bad_lines, ys[bad], text_x, ncpus, hw_col))
    out.append("</svg>")
    return "\n".join(out)


def _flush_marks(i, c, text, reached, y, tx, lane_x, lanes, ncpus, tc) -> str:
    """An arrow from the flushing CPU to every other CPU the flush reached (an IPI), and a
    bracket over the issuing CPU's own TLB lane when it flushed itself."""
    out = [f'<g class="flush" data-event="{i}">']
    for t in reached:
        if not 0 <= t < ncpus:
            continue
        x2 = lane_x(t) - 4
        if t == c:
            w = max(len(lanes[t]) * LANE, 8)
            out.append(f'<line x1="{x2}" y1="{y}" x2="{x2 + w + 8}" y2="{y}" '
                       f'stroke="{FLUSH_COLOUR}" stroke-width="2" stroke-dasharray="4 2">'
                       f'<title>{escape(text)}: local flush on CPU{t}</title></line>')
            continue
        x1 = tx + _text_px(_clip(text, tc)) + 6 if t > c else lane_x(c) - 6
        out.append(f'<line x1="{x1:.1f}" y1="{y}" x2="{x2}" y2="{y}" stroke="{FLUSH_COLOUR}" '
                   f'stroke-width="1.5" stroke-dasharray="6 3" marker-end="url(#arrow)">'
                   f'<title>{escape(text)}: IPI to CPU{t}</title></line>')
        lx = (x1 + x2) / 2 if t > c else x2 + 4
        out.append(f'<text class="small" x="{lx:.1f}" y="{y - 3}" fill="{FLUSH_COLOUR}">'
                   f'IPI \u2192 CPU{t}</text>' if t > c else
                   f'<text class="small" x="{x2 + 12 + len(lanes[t]) * LANE}" y="{y - 3}" '
                   f'fill="{FLUSH_COLOUR}">IPI from {f"CPU{c}" if c < ncpus else "hw"}</text>')
    out.append("</g>")
    return "\n".join(out)


def _violation(events, bad, failure, lines, y, text_x, ncpus, hw_col=None) -> str:
    step, who, _n, _a = events[bad] if bad < len(events) else (failure.step, None, "", ())
    c = _who_cpu(who)
    on_cpu = 0 <= c < ncpus
    # a row of an event of no CPU goes to the hw lane; a model error with no row of its
    # own (bad == len(events)) to CPU0's, where its text has the room it is wrapped to
    c = c if on_cpu else (hw_col if hw_col is not None and bad < len(events) else 0)
    violation = isinstance(failure, Violation)
    what = f"{failure.rule} violated" if violation else failure.rule.replace("-", " ")
    where = f" on CPU{c}" if on_cpu and (violation or bad < len(events)) else ""
    out = [f'<g class="violation" data-step="{step}" data-rule="{escape(failure.rule)}">',
           f'<title>{escape(failure.headline())}</title>',
           f'<text x="{text_x(c) - 14}" y="{y + 14}" fill="{STALE}" font-weight="bold">'
           f'\u2716 {escape(what)} at step {step}{where}</text>']
    for k, line in enumerate(lines):
        out.append(f'<text x="{text_x(c)}" y="{y + 14 + ROW * (k + 1)}" fill="#7a0000">'
                   f'{escape(line)}</text>')
    out.append("</g>")
    return "\n".join(out)


def html_path(repro_path: str) -> str:
    """Where the picture of a saved reproducer goes: beside it, ``<stem>.html``.

    Example::

        >>> html_path("repro/linux_4_13-3.json")
        'repro/linux_4_13-3.html'
    """
    return os.path.splitext(repro_path)[0] + ".html"


def write_html(x, path: str, **kw) -> str:
    """Write :func:`render_html` of ``x`` to ``path`` (directories created); returns ``path``.

    Example::

        >>> write_html(failure, "repro/linux_4_13-3.html")   # doctest: +SKIP
        'repro/linux_4_13-3.html'
    """
    page = render_html(x, **kw)  # first: a drawing error left an empty file, which the
    d = os.path.dirname(os.path.abspath(path))  # report then listed as the picture
    os.makedirs(d, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(page)
    return path
