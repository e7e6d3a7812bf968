"""The checker: PRIMER section 4's rules S1, S2, S3, C1, O1 (docs/oracle.md).

Every check is incremental: it looks only at the entries an event can have
affected, found through ``Tlbs.refs[frame]`` and the per-(mm, vpage) TLB slots,
so its cost does not grow with the number of TLB entries.

"In flight": an entry, location or frame is exempt from C1 and from the
non-strict O1 while some kernel operation that touched it has not returned;
when that operation returns, everything it touched is checked.
"""
from __future__ import annotations

from .errors import VIOLATION_TYPES

PRESENT = 1


class Oracle:
    """Judges TLB coherence after every event of a :class:`~conformance.machine.Machine`."""

    def __init__(self, machine, strict: bool = False) -> None:
        self.m = machine
        self.strict = strict
        #: location -> expected value (last user write or write(); 0 / disk content)
        self.expected: dict = {}
        for f in machine.mem.files:
            for pgoff, v in enumerate(f.disk):
                self.expected[("f", f.id, pgoff)] = v
        self.checks = 0

    def _fail(self, rule, text, who=None, **kw):
        self.m.failed = True
        v = VIOLATION_TYPES[rule](rule, text, **kw)
        v.machine = self.m
        v.step = self.m.trace.step
        if who is None and v.cpus:
            who = v.cpus[0]
        self.m.trace.msg(who, "!! %s: %s", rule, text)
        raise v

    def expected_of(self, loc):
        return self.expected.get(loc, 0)

    # -- in flight ----------------------------------------------------------------
    def in_flight(self, mm_id, vpage, loc, frame, exclude=None) -> bool:
        """Does some operation still running touch this PTE slot, location or frame?"""
        for op in self.m.ops:
            if op is exclude:
                continue
            if ((mm_id, vpage) in op.touched_vps or loc in op.touched_locs
                    or frame in op.touched_frames):
                return True
        return False

    # -- S1, S2, S3 -------------------------------------------------------------------
    def check_s1(self, frame: int, who) -> None:
        """S1 frame reuse: when the allocator hands out ``frame``, no TLB entry maps it."""
        self.checks += 1
        refs = self.m.tlbs.refs[frame]
        if refs:
            (cpu, mm_id, vpage), e = next(iter(refs.items()))
            self._fail("S1", f"pfn{frame} handed out by the allocator while CPU{cpu} still caches "
                       f"mm{mm_id}:v{vpage} -> pfn{frame}",
                       cpus=sorted({k[0] for k in refs}), mm=mm_id, vpage=vpage, frame=frame,
                       expected="no TLB entry", who=who,
                       observed=f"{len(refs)} entr{'y' if len(refs) == 1 else 'ies'}")

    def check_s2(self, frame: int, who) -> None:
        """S2 copy-out: when ``frame`` is copied out, no entry can write it without faulting."""
        self.checks += 1
        for (cpu, mm_id, vpage), e in self.m.tlbs.refs[frame].items():
            if e.writable and e.dirty:
                self._fail("S2", f"pfn{frame} copied out while CPU{cpu} holds a writable dirty entry "
                           f"mm{mm_id}:v{vpage}", cpus=(cpu,), mm=mm_id, vpage=vpage, frame=frame,
                           expected="no writable+dirty entry", observed=repr(e), who=who)

    def check_s3(self, op, mm, start: int, end: int, syscall: str) -> None:
        """S3 syscall return: no entry contradicts the new mapping of [start, end).

        After munmap and mmap: no entry at all. After mprotect(PROT_READ): no
        writable entry. Checked even when reclaim elsewhere is still in flight.
        """
        self.checks += 1
        for vpage in range(start, end):
            for c, e in self.m.tlbs.entries_for(mm.id, vpage):
                cpu = c.id
                if syscall == "mprotect" and not e.writable:
                    continue
                want = "no writable entry" if syscall == "mprotect" else "no entry"
                self._fail("S3", f"{syscall} returned on CPU{op.cpu} but CPU{cpu} still caches "
                           f"mm{mm.id}:v{vpage} -> pfn{e.frame}{' W' if e.writable else ' RO'}",
                           cpus=sorted({op.cpu, cpu}), mm=mm.id, vpage=vpage, frame=e.frame,
                           expected=want, observed=repr(e), who=op)

    def check_s3_madvise(self, op, mm, start: int, end: int, advice: str) -> None:
        """S3 at madvise(MADV_DONTNEED / MADV_FREE) return (docs/oracle.md section 2).

        (a) For every (mm, vpage) whose PTE this op cleared (``op.madv_cleared``: zapped
        present/swap/migration entries; swap entries MADV_FREE dropped), no entry may map
        a frame other than the one the PTE maps now. (b) FREE: no entry in the range may
        be writable and dirty over a present *clean* PTE of the same frame (a write
        through it would not set the PTE dirty bit and reclaim would discard it).
        Conditions chosen so that faults, reclaim and migration running concurrently
        under ``mmap_read_lock`` give no false report.
        """
        self.checks += 1
        ptes = mm.ptes
        for vpage in range(start, end):
            pte = ptes[vpage]
            cur = pte.frame if pte.kind == PRESENT else None
            cleared = (mm.id, vpage) in op.madv_cleared
            for c, e in self.m.tlbs.entries_for(mm.id, vpage):
                if cleared and e.frame != cur:
                    why = "no entry for a PTE it cleared"
                elif (advice == "free" and cur == e.frame and not pte.dirty
                      and e.writable and e.dirty):
                    why = "no writable dirty entry over a clean PTE"
                else:
                    continue
                self._fail("S3", f"madvise({advice}) returned on CPU{op.cpu} but CPU{c.id} still "
                           f"caches mm{mm.id}:v{vpage} -> pfn{e.frame}{' W' if e.writable else ' RO'}"
                           f"{'D' if e.dirty else ''} (PTE {pte!r})",
                           cpus=sorted({op.cpu, c.id}), mm=mm.id, vpage=vpage, frame=e.frame,
                           expected=why, observed=repr(e), who=op)

    # -- C1 -----------------------------------------------------------------------------
    def check_entry(self, cpu_id: int, mm_id: int, vpage: int, e, exclude=None) -> None:
        """C1 for one entry, unless an operation in flight touches it."""
        self.checks += 1
        mm = self.m.mms[mm_id]
        vma = mm.find_vma(vpage)
        loc = vma.location(vpage) if vma is not None else None
        if self.in_flight(mm_id, vpage, loc, e.frame, exclude):
            return
        base = dict(cpus=(cpu_id,), mm=mm_id, vpage=vpage, frame=e.frame)
        if vma is None:
            self._fail("C1", f"CPU{cpu_id} caches mm{mm_id}:v{vpage} -> pfn{e.frame} but no VMA "
                       "maps that address", expected="no entry", observed=repr(e), **base)
        if e.writable and not vma.writable:
            self._fail("C1", f"CPU{cpu_id} caches a writable entry for mm{mm_id}:v{vpage} in a "
                       "read-only VMA", expected="read-only", observed=repr(e), **base)
        exp = self.expected.get(loc, 0)
        got = self.m.mem.value[e.frame]
        if got != exp:
            self._fail("C1", f"CPU{cpu_id} caches mm{mm_id}:v{vpage} -> pfn{e.frame}, which holds "
                       f"{got}, but {_loc(loc)} is {exp}", expected=exp, observed=got, **base)
        if e.writable and self.backing(mm, vpage, loc) != e.frame:
            self._fail("C1", f"CPU{cpu_id} caches a writable entry mm{mm_id}:v{vpage} -> pfn{e.frame} "
                       f"but {_loc(loc)} is backed by {self.backing(mm, vpage, loc)}",
                       expected=self.backing(mm, vpage, loc), observed=e.frame, **base)

    def backing(self, mm, vpage: int, loc):
        """The frame that currently backs a location (PTE for anon, page cache for file)."""
        if loc[0] == "f":
            return self.m.mem.files[loc[1]].cache.get(loc[2])
        pte = mm.ptes[vpage]
        return pte.frame if pte.kind == PRESENT else None

    def check_mappings_of(self, loc, exclude=None) -> None:
        """C1 for every entry of every address that maps ``loc``."""
        for mm in self.m.mms:
            for vma in mm.vmas:
                vp = vma.vpage_of(loc)
                if vp is not None:
                    for cpu, e in self.m.tlbs.entries_for(mm.id, vp):
                        self.check_entry(cpu.id, mm.id, vp, e, exclude)

    def check_frame(self, frame: int, exclude=None) -> None:
        for (cpu, mm_id, vpage), e in list(self.m.tlbs.refs[frame].items()):
            self.check_entry(cpu, mm_id, vpage, e, exclude)

    def op_returned(self, op) -> None:
        """C1 for everything an operation touched, now that it is no longer in flight."""
        tlbs = self.m.tlbs
        for (mm_id, vpage) in op.touched_vps:
            for cpu, e in tlbs.entries_for(mm_id, vpage):
                self.check_entry(cpu.id, mm_id, vpage, e, op)
        for loc in op.touched_locs:
            self.check_mappings_of(loc, op)
        for frame in op.touched_frames:
            self.check_frame(frame, op)

    def check_all(self) -> None:
        """C1 over every entry (used at quiescence and to cross-check the incremental path)."""
        for cpu, mm_id, vpage, e in list(self.m.tlbs.all_entries()):
            self.check_entry(cpu.id, mm_id, vpage, e)

    # -- O1 ---------------------------------------------------------------------------------
    def check_read(self, cpu_id: int, mm, vpage: int, vma, frame: int, value) -> None:
        """O1: a user read returns the expected value (unless transiently possible)."""
        self.checks += 1
        loc = vma.location(vpage) if vma is not None else None
        exp = self.expected.get(loc, 0) if vma is not None else "SIGSEGV"
        if value == exp:
            return
        if not self.strict and self.in_flight(mm.id, vpage, loc, frame):
            return
        where = _loc(loc) if loc else "an unmapped address"
        self._fail("O1" + ("-strict" if self.strict else ""),
                   f"CPU{cpu_id} read mm{mm.id}:v{vpage} ({where}) through pfn{frame} and got {value}",
                   cpus=(cpu_id,), mm=mm.id, vpage=vpage, frame=frame, expected=exp, observed=value)

    def check_write_allowed(self, cpu_id: int, mm, vpage: int, vma, frame: int) -> None:
        """O1 for writes: a write through a stale entry to an unmapped/read-only address."""
        if vma is not None and vma.writable:
            return
        if not self.strict and self.in_flight(mm.id, vpage, vma.location(vpage) if vma else None, frame):
            return
        self._fail("O1" + ("-strict" if self.strict else ""),
                   f"CPU{cpu_id} wrote mm{mm.id}:v{vpage} through a stale writable entry to pfn{frame} "
                   f"({'no VMA' if vma is None else 'read-only VMA'})",
                   cpus=(cpu_id,), mm=mm.id, vpage=vpage, frame=frame,
                   expected="fault", observed="write succeeded")


def _loc(loc) -> str:
    if loc is None:
        return "nothing"
    if loc[0] == "f":
        return f"file{loc[1]}:{loc[2]}"
    return f"anon{loc[1]}:v{loc[2]}"
