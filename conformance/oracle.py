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
        #: how often each rule was checked (certificates): one increment per check
        self.checked_s1 = self.checked_s2 = self.checked_s3 = 0
        self.checked_c1 = self.checked_o1 = 0

    @property
    def checks(self) -> int:
        """Checks of every rule so far."""
        return sum(self.checked().values())

    def checked(self) -> dict:
        """How often each rule was checked, by rule name.

        Example::

            >>> from conformance.machine import Machine
            >>> from conformance.registry import load_protocol
            >>> m = Machine(load_protocol("linux"))
            >>> m.check_quiescent()               # C1 over every cached entry
            >>> m.oracle.checked()["C1"] > 0
            True
        """
        return {"S1": self.checked_s1, "S2": self.checked_s2, "S3": self.checked_s3,
                "C1": self.checked_c1, "O1": self.checked_o1}

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
        self.checked_s1 += 1
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
        self.checked_s2 += 1
        for (cpu, mm_id, vpage), e in self.m.tlbs.refs[frame].items():
            if e.writable and e.dirty:
                self._fail("S2", f"pfn{frame} copied out while CPU{cpu} holds a writable dirty entry "
                           f"mm{mm_id}:v{vpage}", cpus=(cpu,), mm=mm_id, vpage=vpage, frame=frame,
                           expected="no writable+dirty entry", observed=repr(e), who=who)

    def check_s3(self, op, mm, start: int, end: int, syscall: str) -> None:
        """S3 syscall return: no entry contradicts what the syscall made of [start, end).

        On PTE identity (``TlbEntry.inst``, ``Pte.inst``; docs/oracle.md section 2):

        * ``munmap``, ``mmap``, ``mremap`` (old and new range), ``madvise(dontneed)``,
          ``madvise(free)`` for the swap entries it dropped: no entry of any PTE instance
          that was live in a slot at or before the walk's visit of it
          (``e.inst <= op.s3_visits[slot]``), whoever cleared it and whenever. Instances
          installed after the visit (a fault behind the walk) are not this syscall's.
          munmap/mmap/mremap took ``mmap_lock`` for write and removed the range's VMAs
          before walking (munmap then downgrades to read: no fault can map the detached
          range), so a slot they did not walk (no VMA there) counts as visited at return:
          no entry at all. madvise checks only the slots it walked; ``truncate`` checks
          the slots it walked, in every mm it visited.
        * ``mprotect`` (PROT_READ): no writable entry in the range.
        * ``madvise(free)`` also: no writable dirty entry it saw over a PTE it left clean
          (``op.s3_wd``) is still cached while that PTE is still the same clean instance, or
          after reclaim discarded the clean folio (``try_to_unmap_one``'s lazyfree discard,
          which trusts that no such entry is left; since 2026-12-05, a review's finding).

        Checked even when other operations (reclaim with a deferred flush) are still in
        flight: that is what the 2017/2021 races and 99baac21e458 violate.

        Example: ``mprotect`` S3 on linux_4_3, in docs/oracle.md section 9.
        """
        self.checked_s3 += 1
        entries_for = self.m.tlbs.entries_for
        mm_id = mm.id
        if syscall == "mprotect":
            for vpage in range(start, end):
                for c, e in entries_for(mm_id, vpage):
                    if e.writable:
                        self._fail_s3(op, mm, vpage, c, e, syscall, "no writable entry")
            return
        madvise = syscall.startswith("madvise")
        visits = op.s3_visits
        now = self.m.pte_insts
        for vpage in range(start, end):
            clock = visits.get((mm_id, vpage))
            if clock is None:
                if madvise:
                    continue
                clock = now
            for c, e in entries_for(mm_id, vpage):
                if e.inst <= clock:
                    self._fail_s3(op, mm, vpage, c, e, syscall,
                                  "no entry of a PTE live up to the walk's visit" if madvise
                                  else "no entry")
        if syscall == "madvise(free)":
            tlbs = self.m.tlbs
            owner = self.m.mem.owner
            for cpu, mid, vpage, e in op.s3_wd:
                if tlbs.lookup(tlbs.cpus[cpu], mid, vpage) is not e:
                    continue
                pte = self.m.mms[mid].ptes[vpage]
                if pte.kind == PRESENT:
                    if pte.inst == e.inst and not pte.dirty:
                        self._fail_s3(op, mm, vpage, tlbs.cpus[cpu], e, syscall,
                                      "no writable dirty entry over a PTE it left clean")
                elif owner[e.frame] == "discarded":
                    # reclaim discarded the clean folio before we returned (its flush still
                    # deferred): the entry we should have flushed now writes into a folio
                    # that holds nobody's data
                    self._fail_s3(op, mm, vpage, tlbs.cpus[cpu], e, syscall,
                                  "no writable dirty entry over a folio discarded as clean")

    def _fail_s3(self, op, mm, vpage: int, cpu, e, syscall: str, want: str) -> None:
        pte = mm.ptes[vpage]
        self._fail("S3", f"{syscall} returned on CPU{op.cpu} but CPU{cpu.id} still caches "
                   f"mm{mm.id}:v{vpage} -> pfn{e.frame}{' W' if e.writable else ' RO'}"
                   f"{'D' if e.dirty else ''} (filled from PTE #{e.inst}; the PTE is now "
                   f"{pte!r}{' #%d' % pte.inst if pte.kind == PRESENT else ''})",
                   cpus=sorted({op.cpu, cpu.id}), mm=mm.id, vpage=vpage, frame=e.frame,
                   expected=want, observed=repr(e), who=op)

    # -- C1 -----------------------------------------------------------------------------
    def check_entry(self, cpu_id: int, mm_id: int, vpage: int, e, exclude=None) -> None:
        """C1 for one entry, unless an operation in flight touches it."""
        self.checked_c1 += 1
        mm = self.m.mms[mm_id]
        vma = mm.find_vma(vpage)
        loc = vma.location(vpage) if vma is not None else None
        if self.in_flight(mm_id, vpage, loc, e.frame, exclude):
            return
        if vma is None:
            self._fail("C1", f"CPU{cpu_id} caches mm{mm_id}:v{vpage} -> pfn{e.frame} but no VMA "
                       "maps that address", expected="no entry", observed=repr(e),
                       **_where(cpu_id, mm_id, vpage, e))
        if e.writable and not vma.writable:
            self._fail("C1", f"CPU{cpu_id} caches a writable entry for mm{mm_id}:v{vpage} in a "
                       "read-only VMA", expected="read-only", observed=repr(e),
                       **_where(cpu_id, mm_id, vpage, e))
        exp = self.expected.get(loc, 0)
        got = self.m.mem.value[e.frame]
        if got != exp:
            self._fail("C1", f"CPU{cpu_id} caches mm{mm_id}:v{vpage} -> pfn{e.frame}, which holds "
                       f"{got}, but {_loc(loc)} is {exp}", expected=exp, observed=got,
                       **_where(cpu_id, mm_id, vpage, e))
        if e.writable and self.backing(mm, vpage, loc) != e.frame:
            self._fail("C1", f"CPU{cpu_id} caches a writable entry mm{mm_id}:v{vpage} -> pfn{e.frame} "
                       f"but {_loc(loc)} is backed by {self.backing(mm, vpage, loc)}",
                       expected=self.backing(mm, vpage, loc), observed=e.frame,
                       **_where(cpu_id, mm_id, vpage, e))

    def backing(self, mm, vpage: int, loc):
        """The frame that currently backs a location (PTE for anon, page cache for file)."""
        if loc[0] == "f":
            return self.m.mem.files[loc[1]].cache.get(loc[2])
        pte = mm.ptes[vpage]
        return pte.frame if pte.kind == PRESENT else None

    def check_mappings_of(self, loc, exclude=None) -> None:
        """C1 for every entry of every address that maps ``loc``."""
        anon = loc[0] == "a"
        ident, index = loc[1], loc[2]
        entries_for = self.m.tlbs.entries_for
        for mm in self.m.mms:
            for vma in mm.vmas:  # Vma.vpage_of, inlined: this runs after every user write
                if (vma.anon_id if anon else vma.file) != ident:
                    continue
                vp = vma.start + index - vma.pgoff
                if vma.start <= vp < vma.end:
                    for cpu, e in entries_for(mm.id, vp):
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
        self.checked_o1 += 1
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
        """O1 for writes: a write through a stale entry to an unmapped/read-only address.
        Counted in ``checked_o1`` as a read is (until 2026-12-05 only loads were: a
        certificate's O1 figure left every store out; an oracle review)."""
        self.checked_o1 += 1
        if vma is not None and vma.writable:
            return
        if not self.strict and self.in_flight(mm.id, vpage, vma.location(vpage) if vma else None, frame):
            return
        self._fail("O1" + ("-strict" if self.strict else ""),
                   f"CPU{cpu_id} wrote mm{mm.id}:v{vpage} through a stale writable entry to pfn{frame} "
                   f"({'no VMA' if vma is None else 'read-only VMA'})",
                   cpus=(cpu_id,), mm=mm.id, vpage=vpage, frame=frame,
                   expected="fault", observed="write succeeded")


def _where(cpu_id: int, mm_id: int, vpage: int, e) -> dict:
    """A C1 violation's fields: built only when one is reported (check_entry runs every step)."""
    return dict(cpus=(cpu_id,), mm=mm_id, vpage=vpage, frame=e.frame)


def _loc(loc) -> str:
    if loc is None:
        return "nothing"
    if loc[0] == "f":
        return f"file{loc[1]}:{loc[2]}"
    return f"anon{loc[1]}:v{loc[2]}"
