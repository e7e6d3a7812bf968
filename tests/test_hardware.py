"""The x86 hardware rules of PRIMER section 2 (Intel SDM Vol. 3A 4.8, 4.10) and the flush
primitives of conformance/hw/arch.py (arch/x86/mm/tlb.c)."""
from conformance.hw.arch import TLB_SINGLE_PAGE_FLUSH_CEILING
from conformance.config import MachineConfig
from conformance.machine import Machine
from conformance.mm.mm_types import MIGRATION, PRESENT, SWAP
from conformance.registry import load_protocol
from conformance.hookpoints import finish_hook

LINUX = load_protocol("linux")
BARE = MachineConfig(ncpus=2, populate=False)


def machine(cfg=None):
    return Machine(LINUX, cfg if cfg is not None else MachineConfig(ncpus=2))


def bare():
    """A machine with the boot layout but no PTE and no TLB entry."""
    return Machine(LINUX, BARE)


def entries(m, cpu, mm_id):
    """{vpage: (frame, writable, dirty)} of one CPU's TLB for one mm."""
    return {vp: (e.frame, e.writable, e.dirty)
            for vp, e in m.tlbs.cpus[cpu].tlb.get(mm_id, {}).items()}


def fault_in(m, cpu, vpage, write=False):
    assert m.user_access(cpu, vpage, write) == "fault"
    m.drain()


# -- rule 1: fill ------------------------------------------------------------------------------

def test_fill_from_non_present_pte_creates_no_entry():
    """SDM 4.10.2.3: no TLB entry can exist for a PTE with P=0 (none, swap, migration)."""
    m = bare()
    mm = m.mms[0]
    c0 = m.tlbs.cpus[0]
    assert m.fill(0, 0) is False
    mm.ptes[1].kind, mm.ptes[1].slot = SWAP, 0
    mm.ptes[2].kind, mm.ptes[2].frame = MIGRATION, 7
    for vp in (0, 1, 2):
        assert m.tlbs.fill(c0, mm, vp) is None
        assert not mm.ptes[vp].accessed
    assert entries(m, 0, 0) == {}
    assert all(not r for r in m.tlbs.refs)


def test_fill_from_present_pte_caches_it_and_sets_accessed():
    """SDM 4.10.2.3: a fill (also speculative) caches frame/R/W/D of a present PTE and sets A."""
    m = bare()
    fault_in(m, 0, 0)  # anon RW: do_anonymous_page maps it writable and dirty
    pte = m.mms[0].ptes[0]
    assert pte.kind == PRESENT and not pte.accessed
    m.tlbs.drop(m.tlbs.cpus[0], 0, 0)
    assert m.fill(0, 0) is True
    assert pte.accessed
    assert entries(m, 0, 0) == {0: (pte.frame, True, True)}
    assert (0, 0, 0) in m.tlbs.refs[pte.frame]


def test_fill_is_possible_while_the_cpu_runs_kernel_code():
    """PRIMER 2 rule 1: a CPU inside a kernel op with the mm loaded can still (re)fill entries."""
    m = bare()
    fault_in(m, 0, 0)
    m.tlbs.drop(m.tlbs.cpus[0], 0, 0)
    op = m.mprotect(0, 0, 2, False)  # CPU0 is now in the kernel (paused inside change_pte_range)
    assert op in m.ops and m.tlbs.cpus[0].op is op
    assert m.fill(0, 0) is True
    assert 0 in entries(m, 0, 0)


# -- rule 2: read hit ----------------------------------------------------------------------------

def test_read_hit_uses_the_entry_without_walking():
    """SDM 4.10.2: a read hit uses the cached frame; the PTE (and its A bit) is not looked at."""
    m = machine()  # populated: CPU0 caches mm0:v2 -> pfn2 (file0:0 = 1000)
    pte = m.mms[0].ptes[2]
    old = pte.frame
    other = m.mms[1].ptes[2].frame  # file1:0 = 2000
    pte.set_present(other, False, False, m.new_pte_inst())  # the PTE now says something else, A clear
    assert m.user_access(0, 2, False) == 1000
    assert entries(m, 0, 0)[2][0] == old
    assert not pte.accessed


def test_read_hit_survives_a_cleared_pte():
    """SDM 4.10.2 / kernel-notes 5.2: a stale entry of either kind can read after the PTE is gone."""
    m = machine()
    m.mms[0].ptes[2].clear()
    assert m.user_access(0, 2, False) == 1000
    assert m.tlbs.cpus[0].op is None  # no fault started


def test_read_miss_walks_and_faults_on_non_present_pte():
    """SDM 4.10.2: a read miss walks; P=0 raises #PF and the fault handler runs on that CPU."""
    m = bare()
    assert m.user_access(0, 2, False) == "fault"
    assert m.tlbs.cpus[0].op is not None and m.tlbs.cpus[0].op.name == "fault"
    m.drain()
    assert m.user_access(0, 2, False) == 1000
    assert m.mms[0].ptes[2].accessed


# -- rule 3: write hit on a dirty entry ---------------------------------------------------------

def test_write_hit_on_dirty_entry_writes_without_walking():
    """SDM 4.8: D is already set in the entry, so the write does not re-walk the PTE."""
    m = machine()  # CPU0 caches mm0:v0 -> pfn0 W D
    pte = m.mms[0].ptes[0]
    frame = pte.frame
    pte.writable = False  # write-protected behind the TLB's back, D cleared
    pte.dirty = False
    assert m.user_access(0, 0, True) == "wrote"
    assert not pte.dirty and not pte.writable
    assert m.user_access(0, 0, False) == m.mem.value[frame] != 0


def test_stale_dirty_entry_writes_after_reclaim_cleared_the_pte():
    """kernel-notes 5.2: a stale *dirty* entry can still write once try_to_unmap cleared the PTE."""
    m = machine()
    frame = m.frame_of(0, 0)
    op = finish_hook(m, m.reclaim(1, (frame,)))  # deferred flush: CPU0 runs mm0
    assert m.mms[0].ptes[0].kind == SWAP and op in m.ops
    assert m.user_access(0, 0, True) == "wrote"
    assert m.tlbs.cpus[0].op is None
    assert m.mem.value[frame] >= 1_000_000


# -- rule 4: write through a clean entry ------------------------------------------------------

def _clean_writable_entry(m):
    """mm0:v0 present writable but clean, cached W with D clear on CPU0."""
    fault_in(m, 0, 0)
    pte = m.mms[0].ptes[0]
    pte.dirty = False
    m.tlbs.insert(m.tlbs.cpus[0], 0, 0, pte.frame, True, False, pte.inst)
    return pte


def _page_faults(m):
    """(mm, vpage, write) of every #PF raised by a user access, from the trace."""
    return [(a[1], a[2], a[3] == " (write)") for _, _, name, a in m.trace.events
            if name == "msg" and a[0].startswith("#PF")]


def test_write_through_clean_entry_rewalks_and_sets_dirty():
    """SDM 4.8: the first write through a D=0 entry re-walks and sets D (and A) in the PTE."""
    m = bare()
    pte = _clean_writable_entry(m)
    assert m.user_access(0, 0, True) == "wrote"
    assert pte.dirty and pte.accessed
    assert entries(m, 0, 0)[0] == (pte.frame, True, True)


def test_write_through_clean_entry_faults_when_pte_not_present():
    """kernel-notes 5.2: the D-bit re-walk sees P=0, so the write faults; the #PF drops the entry."""
    m = bare()
    pte = _clean_writable_entry(m)
    frame = pte.frame
    pte.clear()
    before = m.mem.value[frame]
    assert m.user_access(0, 0, True) == "fault"
    assert m.mem.value[frame] == before
    assert 0 not in entries(m, 0, 0)
    assert not m.tlbs.refs[frame]
    assert _page_faults(m) == [(0, 0, False), (0, 0, True)]  # fault_in, then this write


def test_write_through_clean_entry_faults_when_pte_not_writable():
    """SDM 4.8 / 4.10.4.1: the re-walk sees R/W=0, the write faults and the #PF drops the entry."""
    m = bare()
    pte = _clean_writable_entry(m)
    frame = pte.frame
    pte.writable = False
    assert m.user_access(0, 0, True) == "fault"
    assert m.mem.value[frame] == 0
    assert 0 not in entries(m, 0, 0)
    assert _page_faults(m) == [(0, 0, False), (0, 0, True)]  # fault_in, then this write


def test_write_through_read_only_entry_faults_on_read_only_pte():
    """SDM 4.6: a write through an R/W=0 entry re-walks; a read-only PTE faults."""
    m = machine()  # CPU0 caches mm0:v2 (file0 RO mapping) read-only
    assert entries(m, 0, 0)[2][1] is False
    assert m.user_access(0, 2, True) == "fault"
    assert 2 not in entries(m, 0, 0)
    m.drain()
    assert m.tlbs.cpus[0].op is None


# -- rule 5: eviction ------------------------------------------------------------------------------

def test_evict_drops_exactly_one_entry_and_its_reverse_reference():
    """SDM 4.10.2: any entry may be invalidated at any time; index is modulo the entry count."""
    m = machine()
    before = entries(m, 0, 0)
    assert len(before) == 4
    frame = before[1][0]
    assert m.evict(0, 4 + 1) is True  # 5 mod 4 = the second entry, mm0:v1
    after = entries(m, 0, 0)
    assert set(after) == {0, 2, 3}
    assert (0, 0, 1) not in m.tlbs.refs[frame]
    assert len(entries(m, 1, 1)) == 4  # CPU1 untouched


def test_evict_on_empty_tlb_is_a_no_op_and_a_miss_refills():
    """SDM 4.10.2: after eviction a read walks again (setting A) and re-caches the PTE."""
    m = bare()
    assert m.evict(0, 0) is False
    fault_in(m, 0, 2)
    assert m.user_access(0, 2, False) == 1000
    assert m.evict(0, 0) is True
    assert entries(m, 0, 0) == {}
    m.mms[0].ptes[2].accessed = False
    assert m.user_access(0, 2, False) == 1000
    assert m.mms[0].ptes[2].accessed and 2 in entries(m, 0, 0)


# -- flush primitives (arch/x86/mm/tlb.c) -------------------------------------------------------

def _cpu1_keeps_mm0_entries(m):
    """CPU1 runs mm0, caches its pages, then switches back to mm1 (PCID keeps mm0's entries)."""
    m.switch_mm(1, 0)
    for vp in range(4):
        m.fill(1, vp)
    m.switch_mm(1, 1)
    assert len(entries(m, 1, 0)) == 4


def test_flush_tlb_mm_flushes_every_cpu_running_the_mm():
    """x86 flush_tlb_mm: every entry of the mm on every CPU in mm_cpumask, synchronously."""
    m = machine(MachineConfig(ncpus=3))  # CPU0 and CPU2 run mm0
    mm0 = m.mms[0]
    mm1_before = entries(m, 1, 1)
    m.arch.flush_tlb_mm(mm0)
    assert entries(m, 0, 0) == {} and entries(m, 2, 0) == {}
    assert mm0.tlb_gen == 2
    assert m.tlbs.cpus[0].loaded_gen == 2 and m.tlbs.cpus[2].loaded_gen == 2
    assert entries(m, 1, 1) == mm1_before and m.tlbs.cpus[1].loaded_gen == 1
    assert m.trace.events[-1][2:] == ("flush_tlb_mm", (0,))


def test_flush_tlb_mm_kills_entries_of_cpus_not_running_the_mm():
    """x86 inc_mm_tlb_gen: a CPU that switched away has stale PCID entries; they die with the bump."""
    m = machine()
    _cpu1_keeps_mm0_entries(m)
    m.arch.flush_tlb_mm(m.mms[0])
    assert entries(m, 1, 0) == {}
    assert len(entries(m, 1, 1)) == 4


def test_flush_tlb_mm_range_one_generation_behind_flushes_only_the_range():
    """x86 flush_tlb_func: local gen == new_gen - 1 -> flush just [start, end)."""
    m = machine()
    mm0 = m.mms[0]
    m.arch.flush_tlb_mm_range(mm0, 1, 3)
    assert set(entries(m, 0, 0)) == {0, 3}
    assert mm0.tlb_gen == 2 and m.tlbs.cpus[0].loaded_gen == 2
    assert m.trace.events[-1][2:] == ("flush_tlb_range", (0, 1, 3))


def test_flush_tlb_mm_range_more_than_one_generation_behind_flushes_everything():
    """x86 flush_tlb_func: a CPU that missed a generation cannot trust a partial flush -> full."""
    m = machine()
    mm0 = m.mms[0]
    m.arch.inc_mm_tlb_gen(mm0)  # e.g. a deferred pending: CPU0 did not catch up
    assert len(entries(m, 0, 0)) == 4 and m.tlbs.cpus[0].loaded_gen == 1
    m.arch.flush_tlb_mm_range(mm0, 1, 2)
    assert entries(m, 0, 0) == {}
    assert mm0.tlb_gen == 3 and m.tlbs.cpus[0].loaded_gen == 3


def test_flush_tlb_mm_range_above_ceiling_flushes_everything():
    """x86 flush_tlb_mm_range: more than tlb_single_page_flush_ceiling pages -> full flush."""
    m = machine()
    m.arch.flush_tlb_mm_range(m.mms[0], 1, 2 + TLB_SINGLE_PAGE_FLUSH_CEILING)
    assert entries(m, 0, 0) == {}
    m2 = machine()
    m2.arch.flush_tlb_mm_range(m2.mms[0], 1, 1 + TLB_SINGLE_PAGE_FLUSH_CEILING)
    assert set(entries(m2, 0, 0)) == {0}


def test_flush_tlb_mm_range_leaves_other_mms_alone():
    """x86 flush_tlb_func: a CPU whose loaded mm is not f->mm does nothing."""
    m = machine()
    before = entries(m, 1, 1)
    m.arch.flush_tlb_mm_range(m.mms[0], 0, 4)
    assert entries(m, 1, 1) == before and m.tlbs.cpus[1].loaded_gen == 1


def test_arch_tlbbatch_add_pending_bumps_gen_ors_cpumask_and_flushes_nothing_live():
    """x86 arch_tlbbatch_add_pending: inc_mm_tlb_gen + cpumask_or(batch, mm_cpumask(mm))."""
    m = machine(MachineConfig(ncpus=3))  # CPU0, CPU2 run mm0; CPU1 runs mm1
    _cpu1_keeps_mm0_entries(m)
    mm0 = m.mms[0]
    flushes = m.arch.flushes
    batch = m.arch.new_batch()
    batch.cpumask = 0b010  # something already batched for CPU1
    m.arch.arch_tlbbatch_add_pending(batch, mm0, 2)
    assert batch.cpumask == 0b111
    assert mm0.tlb_gen == 2
    assert len(entries(m, 0, 0)) == 4 and len(entries(m, 2, 0)) == 4  # live entries stay
    assert m.tlbs.cpus[0].loaded_gen == 1  # CPU0 is now behind
    assert entries(m, 1, 0) == {}  # dead PCID entries of a CPU not running mm0
    assert m.arch.flushes == flushes


def test_arch_tlbbatch_flush_fully_flushes_loaded_mm_of_cpus_in_mask():
    """x86 arch_tlbbatch_flush: f->mm == NULL, full flush of the loaded ASID, catch up tlb_gen, clear mask."""
    m = machine(MachineConfig(ncpus=3))
    mm0 = m.mms[0]
    batch = m.arch.new_batch()
    m.arch.arch_tlbbatch_add_pending(batch, mm0, 2)
    batch.cpumask &= ~0b100  # leave CPU2 out of the mask
    m.arch.arch_tlbbatch_flush(batch)
    assert entries(m, 0, 0) == {} and m.tlbs.cpus[0].loaded_gen == mm0.tlb_gen == 2
    assert len(entries(m, 2, 0)) == 4 and m.tlbs.cpus[2].loaded_gen == 1
    assert len(entries(m, 1, 1)) == 4
    assert batch.cpumask == 0
    assert m.trace.events[-1][2:] == ("arch_tlbbatch_flush", (0b001,))


def test_arch_tlbbatch_flush_with_empty_mask_does_nothing():
    """x86 arch_tlbbatch_flush: nothing batched, no IPI."""
    m = machine()
    flushes = m.arch.flushes
    m.arch.arch_tlbbatch_flush(m.arch.new_batch())
    assert m.arch.flushes == flushes
    assert len(entries(m, 0, 0)) == 4


def test_mm_cpumask_is_the_cpus_with_the_mm_loaded():
    """mm_cpumask / cpumask_any_but as should_defer_flush uses them."""
    m = machine(MachineConfig(ncpus=3))
    assert m.arch.mm_cpumask(m.mms[0]) == 0b101
    assert m.arch.mm_cpumask(m.mms[1]) == 0b010
    assert m.arch.cpumask_any_but(0b010, 1) is False
    assert m.arch.cpumask_any_but(0b101, 0) is True


# -- context switch (switch_mm_irqs_off with PCID) ----------------------------------------------

def test_context_switch_keeps_pcid_tagged_entries_when_gen_unchanged():
    """x86 switch_mm_irqs_off: PCID keeps the old mm's entries; usable again when switching back."""
    m = machine()
    before = entries(m, 1, 1)
    m.switch_mm(1, 0)
    assert m.tlbs.cpus[1].loaded_mm is m.mms[0]
    assert m.tlbs.cpus[1].loaded_gen == m.mms[0].tlb_gen
    assert entries(m, 1, 1) == before
    m.switch_mm(1, 1)
    m.mms[1].ptes[2].clear()
    assert m.user_access(1, 2, False) == 2000  # hit on the retained entry, no walk


def test_context_switch_drops_entries_when_tlb_gen_moved():
    """x86 choose_new_asid: ctxs[asid].tlb_gen < mm->context.tlb_gen -> the PCID is flushed."""
    m = machine()
    m.arch.inc_mm_tlb_gen(m.mms[1])  # CPU1 runs mm1 and has not caught up
    assert len(entries(m, 1, 1)) == 4
    m.switch_mm(1, 0)
    assert entries(m, 1, 1) == {}
    m.switch_mm(1, 1)
    assert m.tlbs.cpus[1].loaded_gen == m.mms[1].tlb_gen == 2
    assert m.user_access(1, 2, False) == 2000  # refilled from the PTE


def test_a_batch_flush_leaves_an_up_to_date_cpu_alone():
    """x86 flush_tlb_func for a batch (f->mm NULL): a CPU whose generation is the mm's has
    nothing to do (goto done), and keeps its entries, even one a gather cleared but has not
    flushed yet; a CPU behind is flushed fully and caught up. The model flushed both until
    2026-12-04 (a kernel-fidelity review)."""
    m = machine()
    mm0 = m.mms[0]
    before = entries(m, 0, 0)
    assert before and m.tlbs.cpus[0].loaded_gen == mm0.tlb_gen
    batch = m.arch.new_batch()
    batch.cpumask = 0b11
    m.arch.arch_tlbbatch_flush(batch)
    assert entries(m, 0, 0) == before  # up to date: nothing to do
    m.arch.inc_mm_tlb_gen(mm0)  # a deferred pending: CPU0 is behind now
    batch.cpumask = 0b01
    m.arch.arch_tlbbatch_flush(batch)
    assert entries(m, 0, 0) == {} and m.tlbs.cpus[0].loaded_gen == mm0.tlb_gen


def test_a_local_flush_does_not_catch_the_cpu_up_with_the_mm():
    """x86 native_flush_tlb_local (invalidate_user_asid + CR3 reload) leaves
    cpu_tlbstate.ctxs[].tlb_gen alone: after it, a batch flush still flushes the CPU fully,
    and an entry filled after the local flush goes too. The model caught the generation up
    until 2026-12-05 and the batch flush skipped the CPU (a review)."""
    m = machine()
    mm0 = m.mms[0]
    batch = m.arch.new_batch()
    m.arch.arch_tlbbatch_add_pending(batch, mm0, 0)  # CPU0 behind: generation 1 < 2
    m.arch.local_flush_tlb(0)
    assert entries(m, 0, 0) == {} and m.tlbs.cpus[0].loaded_gen == 1 < mm0.tlb_gen
    m.fill(0, 1)
    assert 1 in entries(m, 0, 0)
    m.arch.arch_tlbbatch_flush(batch)
    assert entries(m, 0, 0) == {} and m.tlbs.cpus[0].loaded_gen == mm0.tlb_gen


def test_mainlines_verdict_rests_on_rule_4(monkeypatch):
    """Rule 4 carries mainline's PASS (docs/model.md section 2; a review, 2026-12-05): with
    hardware that writes through a writable clean entry without re-walking the PTE (here:
    every writable fill caches D=1), reclaim copies a swapped-in page out while CPU0 can
    still store to it without a fault, and ``linux`` fails S2; with rule 4 the store faults
    and both protocols pass."""
    from conformance.hw.tlb import Tlbs
    from conformance.litmus import corpus, run, verdict
    sc = next(s for s in corpus() if s.name == "model-rule4-writable-clean-store")
    for name in ("linux", "immediate"):
        assert verdict(run(sc, load_protocol(name))) == "pass"

    def fill_writes_through(self, cpu, mm, vpage):
        pte = mm.ptes[vpage]
        if pte.kind != PRESENT:
            return None
        pte.accessed = True
        return self.insert(cpu, mm.id, vpage, pte.frame, pte.writable,
                           pte.dirty or pte.writable, pte.inst)
    monkeypatch.setattr(Tlbs, "fill", fill_writes_through)
    assert verdict(run(sc, LINUX)) == "S2"
