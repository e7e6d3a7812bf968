"""The arch layer protocols act through: x86 flush primitives, cpumasks, tlb_gen.

Protocols never touch TLBs directly; they call these, so they cannot repair
the oracle's view by other means than a real flush.

Modelled on arch/x86/mm/tlb.c:

* ``inc_mm_tlb_gen``: every flush and every ``arch_tlbbatch_add_pending`` bumps
  ``mm->context.tlb_gen``. A CPU that does not have the mm loaded will flush
  that mm's PCID when it switches back (``choose_new_asid`` sees an old
  ``tlb_gen``). *Simplification*: we drop such dead entries at the bump
  instead of at the switch; no CPU can use or refill them in between, so
  nothing observable changes and the oracle never sees entries that can no
  longer be used.
* ``flush_tlb_func``: a ranged flush is done as a range only if the CPU is
  exactly one generation behind, else the CPU flushes the whole mm.
* ``mm_cpumask(mm)``: the CPUs that have the mm loaded: 6.12's (a CPU leaves it when it
  switches away; the lazy trimming of 209954cbc7d0 came after 6.12). Lazy TLB mode is
  not modelled: x86 skips lazy CPUs (``tlb_is_not_lazy``) where the model flushes them
  (docs/model.md A2).
* All flushes are synchronous: a remote flush returns after every target CPU
  has flushed (``smp_call_function_many(..., wait=1)``).
"""
from __future__ import annotations

TLB_SINGLE_PAGE_FLUSH_CEILING = 33  # tlb_single_page_flush_ceiling


class TlbBatch:
    """``struct arch_tlbflush_unmap_batch`` on x86: a cpumask (bit i = CPU i)."""

    __slots__ = ("cpumask",)

    def __init__(self) -> None:
        self.cpumask = 0

    def __repr__(self) -> str:
        return f"batch{{{','.join(str(i) for i in range(self.cpumask.bit_length()) if self.cpumask >> i & 1)}}}"


class Arch:
    """x86 TLB maintenance for the simulated machine.

    Example::

        >>> from conformance.machine import Machine
        >>> from conformance.registry import load_protocol
        >>> m = Machine(load_protocol("linux"))
        >>> m.arch.mm_cpumask(m.mms[0])   # CPU0 and CPU2 run mm0 at boot
        5
    """

    def __init__(self, tlbs, trace) -> None:
        self.tlbs = tlbs
        self.cpus = tlbs.cpus
        self.trace = trace
        self.flushes = 0  # flush operations issued (for benchmarks and reports)

    # -- cpumasks ---------------------------------------------------------
    def mm_cpumask(self, mm) -> int:
        """``mm_cpumask(mm)``: CPUs with ``mm`` loaded, as a bitmask."""
        mask = 0
        for cpu in self.cpus:
            if cpu.loaded_mm is mm:
                mask |= 1 << cpu.id
        return mask

    def cpumask_any_but(self, mask: int, cpu_id: int) -> bool:
        """``cpumask_any_but(mask, cpu) < nr_cpu_ids``."""
        return bool(mask & ~(1 << cpu_id))

    # -- generations ------------------------------------------------------
    def inc_mm_tlb_gen(self, mm) -> int:
        """``inc_mm_tlb_gen``; entries of CPUs not running ``mm`` die (see module doc)."""
        mm.tlb_gen += 1
        tlbs = self.tlbs
        for cpu in self.cpus:
            if cpu.loaded_mm is not mm and mm.id in cpu.tlb:
                tlbs.drop_mm(cpu, mm.id)
        return mm.tlb_gen

    def _flush_func(self, cpu, mm, start: int, end: int, new_gen: int) -> None:
        """``flush_tlb_func`` on one CPU: range only when exactly one generation behind."""
        if cpu.loaded_mm is not mm:
            return
        if end - start <= TLB_SINGLE_PAGE_FLUSH_CEILING and cpu.loaded_gen == new_gen - 1:
            for vpage in range(start, end):
                self.tlbs.drop(cpu, mm.id, vpage)
        else:
            self.tlbs.drop_mm(cpu, mm.id)
        cpu.loaded_gen = new_gen

    # -- primitives protocols call ---------------------------------------
    def flush_tlb_mm_range(self, mm, start: int, end: int, who=None) -> None:
        """``flush_tlb_mm_range``: local and remote flush of [start, end) of ``mm``."""
        self.flushes += 1
        new_gen = self.inc_mm_tlb_gen(mm)
        for cpu in self.cpus:
            self._flush_func(cpu, mm, start, end, new_gen)
        self.trace.event(who, "flush_tlb_range", mm.id, start, end)

    def flush_tlb_mm(self, mm, who=None) -> None:
        """``flush_tlb_mm``: every entry of ``mm`` on every CPU."""
        self.flushes += 1
        new_gen = self.inc_mm_tlb_gen(mm)
        for cpu in self.cpus:
            if cpu.loaded_mm is mm:
                self.tlbs.drop_mm(cpu, mm.id)
                cpu.loaded_gen = new_gen
        self.trace.event(who, "flush_tlb_mm", mm.id)

    def flush_tlb_page(self, mm, vpage: int, who=None) -> None:
        """``flush_tlb_page`` (as used by ``ptep_clear_flush``)."""
        self.flush_tlb_mm_range(mm, vpage, vpage + 1, who)

    def new_batch(self) -> TlbBatch:
        return TlbBatch()

    def arch_tlbbatch_add_pending(self, batch: TlbBatch, mm, vpage: int) -> None:
        """x86 ``arch_tlbbatch_add_pending``: ``inc_mm_tlb_gen`` + OR in ``mm_cpumask``."""
        self.inc_mm_tlb_gen(mm)
        batch.cpumask |= self.mm_cpumask(mm)

    def arch_tlbbatch_flush(self, batch: TlbBatch, who=None) -> None:
        """x86 ``arch_tlbbatch_flush``: full flush of the loaded mm on every CPU in the mask
        that is behind it.

        ``flush_tlb_func`` with ``f->mm == NULL`` (``TLB_GENERATION_INVALID``) flushes
        everything of the loaded ASID and catches the CPU up to the mm's current
        ``tlb_gen``, unless the CPU is already up to date (``local_tlb_gen ==
        mm_tlb_gen``: "nothing to do", ``goto done``). Until 2026-12-04 the model flushed
        those CPUs too, and wiped entries a gather had cleared but not flushed yet (a
        gather bumps the generation only when it flushes): a kernel-fidelity review found
        it (docs/model.md section 11).
        """
        mask = batch.cpumask
        if not mask:
            return
        self.flushes += 1
        for cpu in self.cpus:
            mm = cpu.loaded_mm
            if mask >> cpu.id & 1 and mm is not None and cpu.loaded_gen != mm.tlb_gen:
                self.tlbs.drop_mm(cpu, mm.id)
                cpu.loaded_gen = mm.tlb_gen
        batch.cpumask = 0
        self.trace.event(who, "arch_tlbbatch_flush", mask)

    def local_flush_tlb(self, cpu_id: int, who=None) -> None:
        """``flush_tlb_local``: the loaded mm's entries on one CPU.

        ``native_flush_tlb_local`` is ``invalidate_user_asid`` and a CR3 reload: it does
        not write ``cpu_tlbstate.ctxs[].tlb_gen``, so the CPU's generation stays where it
        was and a later batch or ranged flush still treats it as behind (a full flush),
        as the kernel's ``flush_tlb_func`` does. Until 2026-12-05 the model caught the
        generation up here, and a later ``arch_tlbbatch_flush`` skipped the CPU, keeping
        entries the kernel drops (a review; no built-in protocol calls this)."""
        cpu = self.cpus[cpu_id]
        if cpu.loaded_mm is not None:
            self.flushes += 1
            self.tlbs.drop_mm(cpu, cpu.loaded_mm.id)
            self.trace.event(who, "local_flush_tlb")
