"""Saved reproducers replay byte for byte (issue 12: behaviour unchanged by the move of the
kernel paths into ``conformance/mm/``).

``tests/fixtures/replay/`` holds reproducers saved by ``flushcheck certify`` (shrunk, one per
corpus mutant), unshrunk failing walks of certify's swarm walk (40-100 actions), and passing
walks of ``linux`` and ``immediate`` (``*-pass*.json``). Each ``.expected`` beside it is what
the replay gave at commit 5ac9f32, before the move: the failure's whole report (headline and
every trace line) or, for a passing run, ``PASS`` and every trace line. (Regenerated on
2026-12-04 when the timeline gained a row for each step without an event, ``(reclaim[pfn0]
continues)``: the 32 lines added were the only change; and again when a cell longer than its
column wrapped onto continuation lines instead of being cut with ``~``: the 40 cut lines became
88, the same text whole. ``hist_2_1_zap_flush_after_unlock-1`` gained one ``advance`` when
that protocol's full-batch flush moved after the PTL's release, as before 1cf35d47712d: its
``tlb_flush_mmu`` then flushes and frees, two effects with a hook point between; the same
S2, one step later. ``mut_gather_flush_once-1`` was saved again (certify, seed 1, at the
change) when munmap's detached VMAs stayed in the rmap until ``free_pgtables``: in its old
walk the hole punch now meets the VMAs of the teardown in flight, and its nested flush
clears the entry the S1 needed; the new one fails S2. On 2026-12-05 munmap's ``free_pgtables``
began to wait for an rmap walk in flight (``i_mmap_rwsem`` / the anon_vma lock for write):
the S3 of ``hist_2_5_no_nested_gather_flush-1``, ``mut_munmap_exclusive-1`` and
``mut_nested_madvise_only-1`` returned from a munmap or MAP_FIXED mmap inside a hole punch's
walk, which the kernel's lock excludes; each was saved again (certify, seed 1: S3 each, of
a race the kernel has), and five passing walks (``linux-pass1``, ``-pass2``,
``immediate-pass1`` to ``-pass3``), whose munmap now waits where they had it return, were
drawn again with their seeds; ``exit_mmap``'s ``free_pgtables`` waits too, which made the
unshrunk 2.3 walk ``hist_2_3_nested_reclaim-walk266`` inapplicable (its exit no longer
returns inside a hole punch's walk): it was replaced by ``-walk163``, the first S1 of 60-110
actions among the walk's examples of seeds 0.. under the current model. Later on 2026-12-05
the LUF modules learnt that ``try_to_unmap_flush_dirty`` before ``pageout`` folds
``tlb_ubc_luf`` in (RFC v12 16/26): ``luf_v12-1``'s S2 at pageout, a false verdict, now
replays as a PASS; it was saved again (certify, seed 1: a C1 of the lazyfree finding). That
C1 went through an aborted walk that v12 flushes at the pass's end (``can_luf_fail()``),
also a false verdict, gone once luf_v12 modelled it (the ``walk_abort`` and
``shrink_folio_list_keep`` hooks); saved again the same way: the C1 of a clean discard.
When luf_v12 modelled v12 19/26 and 20/26 (the per-mm and per-mapping ``luf_batch`` stored in
``set_tlb_ubc_flush_pending`` before ``arch_tlbbatch_add_pending``), ``luf_v12-1.expected``
was regenerated: the same C1 at the same step, two of its hook points now named after those
stores (``store``) instead of ``store tlb_flush_batched``.
Regenerated later on 2026-12-05 for the timeline's layout alone, the same rows in the same
order: only the CPUs with an event are drawn, and the events of no CPU in a last ``hw``
column, without their ``[hw] `` prefix. And again when mprotect, madvise and mremap stopped
logging their label alone at the end of their walk (``madvise(mm0, v0..v1, free)``: 19 rows
gone) and log their ``: return`` row there instead, before their S3 check, as munmap, mmap
and truncate now do too: a passing run's return rows stay where they were; the 6 fixtures
whose S3 judges such a syscall gained its return row right before the ``!! S3`` row (there
was none: the verdict ended the run before the operation finished).) Regenerated on
2026-12-06 when a hook whose last effect is a store got a row for it (``(HOOK returns after
store NAME)``, hookpoints._drive): 11 fixtures gained such rows, most in place of an
``(OP continues)`` row of the same step; no other row moved. Later that day
``free_pgtables`` began to free the page tables no VMA shares, with ``pte_free_tlb``'s
flush in ``tlb_finish_mmu`` (one more interleaving point in such an unmap, and no walk of a
freed table after it): ``mut_munmap_exclusive-1``'s S3 is gone (the freed table's flush of a
mm with a deferred batch outstanding is a full flush on the CPU behind it, as in the
kernel), so it was replaced by ``-8`` (certify, seed 8, 2,000 examples: an S3 of a
truncate); ``hist_2_1_zap_flush_after_unlock-1``, ``hist_2_8_rmap_before_flush-1`` and
``luf_v12-1`` no longer applied (an operation ran longer) and were saved again (certify,
seed 1: S2, S2 and C1 as before); ``linux-pass3`` and ``immediate-pass3`` were drawn again
(``run_example(seed=3, swarm=True)``); ``mut_exit_no_flush-1`` keeps its actions and its C1,
two steps sooner (the fork's teardown of an exec'd mm walks no table). Later that day
a fault's first try began to drop ``mmap_lock`` for a folio lock or read IO and retry
(``VM_FAULT_RETRY``, docs/model.md section 11 item 20): three fixtures gained the rows of
its drop and retry (``do_sync_mmap_readahead: drops mmap_lock``, ``fault mm0:v3:
VM_FAULT_RETRY, again``: 9 rows), and no other row moved. Then a write fault that makes
a shared file page writable got an interleaving point after the install, where its first
try drops ``mmap_lock`` (``fault_dirty_shared_page``), and a fork stopped starting into a
slot whose task is in the kernel: ``hist_2_1_zap_flush_after_unlock-1`` and
``hist_2_8_rmap_before_flush-1`` keep their S2 at the same step, with the fault's return
row replaced by its drop row (it no longer returns before the S2); the four passing walks
``linux-pass2``, ``-pass3``, ``immediate-pass2`` and ``-pass3`` no longer applied (a write
fault took one more step) and were drawn again with their seeds (``run_example(seed=N,
swarm=True)``: 41, 112, 40 and 109 actions); ``hist_2_3_nested_reclaim-walk163`` was
drawn again the same way (the first S1 of 60-110 actions among seeds 0..: seed 163 again,
83 actions). On 2026-12-06 20:50 the madvise split window began to hold its folio's lock
(docs/model.md section 11 item 23): ``hist_2_11_madvise_relock-1`` had reclaim unmap the
very folio being split, and replayed as a PASS; it was saved again (``flushcheck certify
hist_2_11_madvise_relock --seed 1 --jobs 1``: S3, 11 actions, reclaim of another folio of
the table). ``hist_2_3_nested_reclaim-walk114`` no longer applied and gave way to
``-walk172`` (the first S1 among seeds 0-399 but 163, 42 actions); ``linux-pass1``,
``immediate-pass1`` and ``luf_v12-1`` keep their actions and verdicts, with the window's
row renamed (``split_folio pfn0 (PTL dropped, folio locked)``). On 2026-12-07 a folio
whose ``folio_trylock`` fails began to stay isolated until the pass's end (docs/model.md
section 11 item 26): ``hist_2_3_nested_reclaim-walk172`` keeps its S1 at the same step,
its ``reclaim: skip pfn3`` row now ``reclaim: folio_trylock(pfn3) failed, keep``. Later
on 2026-12-07 faults began to take their VMA's lock first (docs/model.md section 11 item
31): every lock drop of a first try now reads ``drops the VMA lock`` (8 fixtures; each
failing one keeps its rule and step, each passing one its actions) and its retry
``VM_FAULT_RETRY under the VMA lock, mmap_lock`` (``VM_FAULT_RETRY|VM_FAULT_MAJOR ...
(FAULT_FLAG_TRIED)`` after a read). On 2026-12-07 15:00 ``tlb_end_vma`` stopped
flushing (x86's ``MMU_GATHER_MERGE_VMAS``, the model's default since; docs/model.md section
11 item 34): a gather's one flush is ``tlb_finish_mmu``'s, whose pause after the flush is
one more interleaving point, so most fixtures no longer applied. ``linux_4_3-1``,
``luf_v12-1`` and ``mut_nested_madvise_only-1`` were saved again (certify, seed 1: S3, C1
and S3 as before); ``mut_munmap_exclusive-8`` replayed as a PASS and gave way to ``-2``
(certify, seed 2, 2,500 examples: S3 at example 2,126; seed 8 finds none in 8,000);
``hist_2_5_no_nested_gather_flush-1`` keeps its actions and its S3, two steps later; the
six passing walks were drawn again with their seeds (58, 51, 111, 38, 47 and 116 actions);
``hist_2_3_nested_reclaim-walk163`` gave way to ``-walk255`` (the first S1 of 60-110
actions among seeds 0..: 69) and ``linux_4_3-walk39`` to ``-walk115`` (the first S3 of
40-100 actions: 58). A model change that
moves a single trace event fails here; a deliberate one regenerates the files with
``python tests/test_replay_fixtures.py --regenerate`` and says why in its commit.
"""
import glob
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conformance.machine import Machine  # noqa: E402
from conformance.registry import load_protocol  # noqa: E402
from conformance.config import MachineConfig  # noqa: E402
from conformance.reproducer import load, replay_actions  # noqa: E402

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "replay")
FIXTURES = sorted(glob.glob(os.path.join(HERE, "*.json")))


def render(path: str) -> str:
    """The replay of the reproducer at ``path`` as text: the report of the failure it hits
    (``report(last=None)``: every trace line), or ``PASS`` and the run's trace lines."""
    data = load(path)
    cls = load_protocol(data["protocol_ref"])
    strict = bool(data.get("strict"))
    m = Machine(cls, MachineConfig(**data["config"]), strict=strict)
    f = replay_actions(cls, m.cfg, strict, data["actions"], machine=m)
    if f is not None:
        return f.report(last=None) + "\n"
    return "PASS\n" + "".join(f"{s} {c} {t}\n" for s, c, t in m.trace.lines())


def test_fixtures_exist():
    assert len(FIXTURES) >= 20


@pytest.mark.parametrize("path", FIXTURES, ids=[os.path.basename(p)[:-5] for p in FIXTURES])
def test_reproducer_replays_byte_for_byte(path):
    with open(path[:-5] + ".expected") as fh:
        expected = fh.read()
    assert render(path) == expected


if __name__ == "__main__" and sys.argv[1:] == ["--regenerate"]:
    for p in FIXTURES:
        with open(p[:-5] + ".expected", "w") as fh:
            fh.write(render(p))
