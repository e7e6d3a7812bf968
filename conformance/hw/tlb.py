"""CPUs and their mm-tagged TLBs: the x86 hardware rules (Intel SDM Vol. 3A 4.8, 4.10).

Each CPU caches (mm, vpage) -> (frame, writable, dirty). Entries are tagged by
mm (PCID), so a CPU keeps entries of an mm it switched away from. The rules
(PRIMER section 2) and where they live:

1. fill from a present PTE at any time, setting its accessed bit: :meth:`Tlbs.fill`
   (SDM 4.10.2.3, "may cache translations ... speculative execution");
2. a read hit uses the entry without a walk: :meth:`conformance.machine.Machine.user_access`;
3. a write hit on a dirty entry writes without a walk: same place;
4. a write through a clean entry re-walks to set D and faults if the PTE is no
   longer present or writable (SDM 4.8 "sets the dirty flag", kernel-notes 5.2);
5. any entry can be evicted at any time: :meth:`Tlbs.drop` (SDM 4.10.2, "may invalidate
   any TLB entry at any time"; 4.10.4.1);
6. flushes are synchronous: :mod:`conformance.hw.arch`.

Besides the per-CPU tables we keep ``refs[frame]``, every entry that maps a
frame, so that the oracle checks S1/S2 in time independent of TLB size.
"""
from __future__ import annotations


class TlbEntry:
    """One cached translation: frame, the walk's R/W and the PTE's D bit.

    ``inst`` is the instance of the PTE it was filled from (``Pte.inst``; oracle
    bookkeeping: S3 asks which PTE an entry came from). Entries are never changed in
    place: a re-walk makes a new one.
    """

    __slots__ = ("frame", "writable", "dirty", "inst")

    def __init__(self, frame: int, writable: bool, dirty: bool, inst: int) -> None:
        self.frame = frame
        self.writable = writable
        self.dirty = dirty
        self.inst = inst

    def __repr__(self) -> str:
        return f"pfn{self.frame}{' W' if self.writable else ' RO'}{'D' if self.dirty else ''}"


class Cpu:
    """A CPU: its TLB (mm_id -> {vpage: entry}), loaded mm and running operation.

    ``loaded_gen`` is the ``cpu_tlbstate.ctxs[asid].tlb_gen`` of the loaded mm:
    the mm generation this CPU's entries are current with (x86 ``flush_tlb_func``).
    """

    __slots__ = ("id", "tlb", "loaded_mm", "loaded_gen", "op")

    def __init__(self, cpu_id: int) -> None:
        self.id = cpu_id
        self.tlb: dict[int, dict[int, TlbEntry]] = {}
        self.loaded_mm = None
        self.loaded_gen = 0
        self.op = None

    def __repr__(self) -> str:
        return f"CPU{self.id}"


class Tlbs:
    """All TLBs plus the reverse index ``refs[frame] = {(cpu, mm_id, vpage): entry}``.

    ``dropped``: None, or a list to which :meth:`drop` and :meth:`drop_mm` append the
    ``(cpu_id, mm_id, vpage)`` of every entry they remove (flushes, evictions). Off in
    the model; the walk turns it on to refill what a kernel step flushed
    (``conformance.search.walk.WalkDriver``). Nothing the model does reads it.
    """

    __slots__ = ("cpus", "refs", "dropped")

    def __init__(self, ncpus: int, nframes: int) -> None:
        self.cpus = [Cpu(i) for i in range(ncpus)]
        self.refs: list[dict] = [{} for _ in range(nframes)]
        self.dropped: list | None = None

    def lookup(self, cpu: Cpu, mm_id: int, vpage: int):
        t = cpu.tlb.get(mm_id)
        return None if t is None else t.get(vpage)

    @staticmethod
    def cached(cpu: Cpu) -> list:
        """Every ``(mm_id, vpage)`` ``cpu`` caches, by mm then insertion: the order whose
        ``index``-th entry ``Machine.evict(cpu, index)`` drops (rule 5)."""
        return [(mm_id, vp) for mm_id in sorted(cpu.tlb) for vp in cpu.tlb[mm_id]]

    def evicted_by(self, cpu: Cpu, index: int):
        """The ``(mm_id, vpage)`` that ``Machine.evict(cpu.id, index)`` drops: the
        ``index``-th of :meth:`cached`, modulo its length; None when nothing is cached."""
        keys = self.cached(cpu)
        return keys[index % len(keys)] if keys else None

    def fill(self, cpu: Cpu, mm, vpage: int):
        """Rule 1 (SDM 4.10.2.3): cache the translation of a present PTE, setting A.

        Returns the new entry, or None when the PTE is not present (no entry can
        exist for a non-present PTE, SDM 4.10.2.3).
        """
        pte = mm.ptes[vpage]
        if pte.kind != 1:  # PRESENT
            return None
        pte.accessed = True
        return self.insert(cpu, mm.id, vpage, pte.frame, pte.writable, pte.dirty, pte.inst)

    def fill_changes(self, cpu: Cpu, mm, vpage: int) -> bool:
        """Would :meth:`fill` change anything? The PTE is present and either no entry is
        cached for it, the cached one differs from what a walk gives now (frame, R/W, D, or
        another PTE instance: the hardware re-walking a page whose PTE changed under a
        cached entry), or the PTE's A bit is clear (a fill sets it).

        What the explorer's ``hw fill`` may fire and what a run's fills become in its
        threaded litmus file (:mod:`conformance.search.shortest`): a fill that changes
        nothing is no event."""
        pte = mm.ptes[vpage]
        if pte.kind != 1:  # PRESENT
            return False
        e = self.lookup(cpu, mm.id, vpage)
        return e is None or not pte.accessed or (e.frame, e.writable, e.dirty, e.inst) != (
            pte.frame, pte.writable, pte.dirty, pte.inst)

    def insert(self, cpu: Cpu, mm_id: int, vpage: int, frame: int, writable: bool, dirty: bool,
               inst: int):
        """Cache (mm, vpage) -> frame on ``cpu``, replacing its entry for that page if any."""
        t = cpu.tlb.get(mm_id)
        if t is None:
            t = cpu.tlb[mm_id] = {}
        old = t.get(vpage)
        if old is not None:
            del self.refs[old.frame][(cpu.id, mm_id, vpage)]
        e = TlbEntry(frame, writable, dirty, inst)
        t[vpage] = e
        self.refs[frame][(cpu.id, mm_id, vpage)] = e
        return e

    def drop(self, cpu: Cpu, mm_id: int, vpage: int) -> bool:
        """Rule 5 (eviction) and ``INVLPG`` of one page on one CPU."""
        t = cpu.tlb.get(mm_id)
        if t is None:
            return False
        e = t.pop(vpage, None)
        if e is None:
            return False
        del self.refs[e.frame][(cpu.id, mm_id, vpage)]
        if self.dropped is not None:
            self.dropped.append((cpu.id, mm_id, vpage))
        return True

    def drop_mm(self, cpu: Cpu, mm_id: int) -> int:
        """Flush every entry of one mm (one PCID) on one CPU."""
        t = cpu.tlb.pop(mm_id, None)
        if not t:
            return 0
        refs = self.refs
        cid = cpu.id
        for vpage, e in t.items():
            del refs[e.frame][(cid, mm_id, vpage)]
        if self.dropped is not None:
            self.dropped.extend((cid, mm_id, vpage) for vpage in t)
        return len(t)

    def entries_for(self, mm_id: int, vpage: int):
        """Every (cpu, entry) caching (mm, vpage), in CPU order."""
        out = []
        for cpu in self.cpus:
            t = cpu.tlb.get(mm_id)
            if t is not None:
                e = t.get(vpage)
                if e is not None:
                    out.append((cpu, e))
        return out

    def all_entries(self):
        """(cpu, mm_id, vpage, entry) for every entry, in a deterministic order."""
        for cpu in self.cpus:
            for mm_id in sorted(cpu.tlb):
                t = cpu.tlb[mm_id]
                for vpage in sorted(t):
                    yield cpu, mm_id, vpage, t[vpage]
