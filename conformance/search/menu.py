"""The bounded check's operation menu: which operations a program may start, with which
arguments (docs/BOUNDED.md, "The menu").

The menu is data: one :class:`OpKind` per line, its arguments enumerated from the machine
as it is when the operation would start (the LRU folios for reclaim, every range of
virtual pages for munmap). A new kernel path joins the bounded check by one line in
:data:`KINDS`; a menu is a tuple of kind names (:data:`MENUS`, or ``--ops a,b,c``).

Example::

    >>> from conformance.config import MachineConfig
    >>> from conformance.machine import Machine
    >>> from conformance.registry import load_protocol
    >>> m = Machine(load_protocol("linux"), MachineConfig(ncpus=2, nmms=1, vpages=2))
    >>> KINDS["munmap"].args(m, 0)
    [(0, 1), (0, 2), (1, 1)]
"""
from __future__ import annotations

import attrs

from ..errors import UsageError
from ..machine import MADV_ADVICE


@attrs.frozen
class OpKind:
    """One kind of operation: ``args(m, cpu)`` lists the argument tuples it may start with on
    idle ``cpu`` (in a fixed order), ``start(m, cpu, args)`` starts it (a machine action).

    ``reads_tlb``: the operation looks up its CPU's TLB entry for the page ``args[0]`` when
    it starts (a user access: ``Machine.user_access``); no other kernel path reads a TLB.
    ``switches_mm``: it may change a CPU's loaded mm. Both feed the lazy-eviction reduction
    (docs/BOUNDED.md, "Reductions"): an eviction is paired with the start of a kind that
    reads the TLB, and a kind that switches mm turns the reduction off. ``needs``: what its
    arguments need of the machine, said where no state searched could start it
    (``Result.never_started``)."""

    name: str
    args: object
    start: object
    reads_tlb: bool = False
    switches_mm: bool = False
    needs: str = ""


def _vpages(m, cpu):
    return [(vp,) for vp in range(m.cfg.vpages)]


def _ranges(m, cpu):
    nv = m.cfg.vpages
    return [(s, n) for s in range(nv) for n in range(1, nv - s + 1)]


def _lru(m, cpu):
    """Single folios on the LRU (page cache or anonymous), in frame order: the strategies'
    pick (conformance/search/statemachine.py ``Driver._frames``) with one folio per call."""
    return [(f,) for f in m.lru_frames()]


def _lru_pairs(m, cpu):
    """Two distinct LRU folios, in frame order: the one reclaim works on and the one a nested
    pass works on (entered from the first one's swapout allocation: memcg reclaim recursing
    into global reclaim, kernel-notes 2.3; ``Machine.reclaim``'s ``nested``)."""
    fr = m.lru_frames()
    return [(f, g) for f in fr for g in fr if f != g]


def _lru_triples(m, cpu):
    """Two distinct LRU folios in either order, then a third: the batch a move_pages(2)
    migrates and the folio the direct reclaim of its last destination allocation works on,
    with the first one's flush pending (docs/model.md section 11 item 24;
    ``Machine.move_pages``). Both orders: the folio whose flush is deferred must come first,
    whatever its frame number (frame order only missed a batch whose deferred folio had
    the higher frame: a review, 2026-12-07)."""
    fr = m.lru_frames()
    return [(f, g, h) for f in fr for g in fr if g != f for h in fr if h != f and h != g]


def _file_pages(m, cpu):
    return [(f, p) for f in range(m.cfg.nfiles) for p in range(m.cfg.file_pages)]


def _mmap_args(m, cpu):
    """One page, anonymous or a shared file, read-only or writable, at the kernel's choice of
    address (not MAP_FIXED: a fixed map over a mapping is munmap + mmap, both on the menu)."""
    return [(f, w) for f in (None,) + tuple(range(m.cfg.nfiles)) for w in (False, True)]


def _moves(m, cpu):
    """``mremap`` moves that can succeed: each range inside one VMA of the CPU's mm, to each
    free range of the same size that does not overlap it (``MREMAP_FIXED``; a move the
    kernel refuses with EINVAL changes nothing but the operation count, so it is left out,
    as ``mmap`` leaves out addresses the kernel would not choose)."""
    mm = m.tlbs.cpus[cpu].loaded_mm
    nv = len(mm.ptes)
    out = []
    for v in mm.vmas:
        for s in range(v.start, v.end):
            for n in range(1, v.end - s + 1):
                out += [(s, n, d) for d in range(nv - n + 1)
                        if not (d < s + n and s < d + n)
                        and not any(w.start < d + n and w.end > d for w in mm.vmas)]
    return out


#: every kind the bounded check knows, by name; add a kernel path here with one line
KINDS = {k.name: k for k in (
    OpKind("read", _vpages, lambda m, c, a: m.user_access(c, a[0], False), reads_tlb=True),
    OpKind("write", _vpages, lambda m, c, a: m.user_access(c, a[0], True), reads_tlb=True),
    OpKind("reclaim", _lru, lambda m, c, a: m.reclaim(c, a), needs="a folio on the LRU"),
    OpKind("reclaim_nested", _lru_pairs, lambda m, c, a: m.reclaim(c, (a[0],), (a[1],)),
           needs="two folios on the LRU"),
    OpKind("migrate", _lru, lambda m, c, a: m.migrate(c, a), needs="a folio on the LRU"),
    OpKind("compact", _lru, lambda m, c, a: m.compact(c, a), needs="a folio on the LRU"),
    OpKind("move_pages_nested", _lru_triples,
           lambda m, c, a: m.move_pages(c, a[:2], a[2:]),
           needs="three folios on the LRU (--config vpages=4,nframes=6)"),
    OpKind("munmap", _ranges, lambda m, c, a: m.munmap(c, *a)),
    OpKind("mprotect", lambda m, c: [r + (w,) for r in _ranges(m, c) for w in (False, True)],
           lambda m, c, a: m.mprotect(c, *a)),
    OpKind("madvise", lambda m, c: [r + (adv,) for r in _ranges(m, c) for adv in MADV_ADVICE],
           lambda m, c, a: m.madvise(c, *a)),
    OpKind("file_write", _file_pages, lambda m, c, a: m.write(c, *a)),
    OpKind("writeback", _file_pages, lambda m, c, a: m.writeback(c, *a)),
    OpKind("mmap", _mmap_args, lambda m, c, a: m.mmap(c, 0, 1, a[0], a[1], False)),
    OpKind("truncate", _file_pages, lambda m, c, a: m.truncate(c, *a)),
    OpKind("mremap", _moves, lambda m, c, a: m.mremap(c, *a),
           needs="a free range of virtual pages as long as a mapped one; the default "
                 "machine maps both its pages, --config vpages=3 leaves one free"),
)}

#: named menus (``--ops NAME`` or a comma-separated list of kinds)
MENUS = {
    # the small menu: user reads/writes, reclaim, migrate, munmap, mprotect
    "small": ("read", "write", "reclaim", "migrate", "munmap", "mprotect"),
    # the reach table's menu (docs/BOUNDED.md): every kind but reclaim_nested, which squares
    # reclaim's choices and matters only to the nested-reclaim bug (2.3), and truncate and
    # mremap, which joined after the table was measured (``--ops full,truncate,mremap``), and
    # compact (2026-12-06: migrate in a user task, which differs only for a protocol with
    # a finish_task_switch hook), and move_pages_nested (2026-12-07: needs three LRU folios,
    # cubes migration's choices, matters to protocols with per-task batch state)
    "full": tuple(k for k in KINDS
                  if k not in ("reclaim_nested", "truncate", "mremap", "compact",
                               "move_pages_nested")),
    # every kind
    "all": tuple(KINDS),
}


def parse_menu(text: str, flag: str = "--ops") -> tuple:
    """A menu name from :data:`MENUS` or a comma-separated list of kinds and menu names;
    UsageError if bad (naming ``flag``, the option it came from).

    >>> parse_menu("read,munmap")
    ('read', 'munmap')
    >>> parse_menu("small,reclaim_nested")[-1]
    'reclaim_nested'
    """
    names = []
    for w in (w.strip() for w in text.split(",")):
        for n in MENUS.get(w, (w,) if w else ()):
            if n not in names:
                names.append(n)
    names = tuple(names)
    bad = [n for n in names if n not in KINDS]
    if bad or not names:
        raise UsageError(f"{flag} {text!r}: unknown operation {', '.join(bad) or '(none)'}; "
                         f"menus: {', '.join(MENUS)}; kinds: {', '.join(KINDS)}")
    return names
