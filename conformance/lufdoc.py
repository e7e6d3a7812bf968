"""Generate docs/LUF.md: the LUF review thread's scenarios, executed.

``flushcheck luf-doc`` rewrites the file; ``flushcheck luf-doc --check`` exits 1
if the committed file differs from what the current code produces (a test runs
it). Everything in the file is computed: the scripted scenarios are the
``litmus/luf-*.litmus`` files, the random column is one deterministic
Hypothesis run per protocol (fixed seed, fixed example count).
"""
from __future__ import annotations

import os

from .config import DEFAULT
from .litmus import corpus, run, verdict
from .registry import load_protocol

ROWS = ["luf_v10", "luf_v11", "luf_vma_flag", "luf_v12", "luf_reclaim_migrate_only",
        "linux", "immediate"]
TITLES = {1: "munmap after reclaim", 2: "file changed underneath", 3: "RO + RW mappings",
          4: "freed page reused", 5: "fault-in after reclaim"}
OBJECTIONS = {
    1: "Dave Hansen: munmap() finds only pte_none, the mmu_gather skips its flush, a new "
       "mmap at the address reads through the stale entry",
    2: "Dave Hansen: another process write()s the file; the stale entry still reads the old page",
    3: "Dave Hansen (v11 NAK): a read-only and a writable mapping of one file; a store through "
       "the writable one changes the file without write()",
    4: "Matthew Wilcox: the freed page is allocated to slab / another process and read through "
       "the stale entry",
    5: "the fault handler brings the page back in on another CPU and makes it writable",
}
#: Why a variant passes a scenario (checked against the module's code).
MECHANISMS = {
    ("immediate", 0): "never defers: `ptep_clear_flush` at every PTE clear (`Immediate.should_defer_flush`)",
    ("linux", 0): "`try_to_unmap_flush` before `free_unref_folios`: no stale entry outlives reclaim",
    ("*", 1): "`zap_pte_range` calls `flush_tlb_batched_pending`: LUF's unmap went through "
              "`set_tlb_ubc_flush_pending`, so the mm is pending and gets `flush_tlb_mm` "
              "(Byungchul's argument in the seed)",
    ("luf_v12", 1): "`flush_tlb_batched_pending` in `zap_pte_range` (mm pending), then "
                    "`tlb_end_vma`'s `luf_flush(0)` (`LufV12.tlb_end_vma`)",
    ("luf_vma_flag", 1): "`flush_tlb_batched_pending` in `zap_pte_range` (mm pending); the "
                         "VMA flag check in `tlb_end_vma` comes second",
    ("*", 4): "the allocation-time flush: the page still owes its flush when it leaves the "
              "allocator (`LufBase.page_alloc`)",
    ("luf_v10", 3): "give-up at the fault: `do_shared_fault` installs a writable PTE, "
                    "`LufV10.fault_install_pte` does `luf_flush(0)` before anyone can use it",
    ("luf_v11", 3): "as v10: `fault_install_pte` give-up on the writable PTE",
    ("luf_v10", 5): "give-up at the fault: `do_wp_page` makes the PTE writable, "
                    "`LufV10.fault_install_pte` does `luf_flush(0)`",
    ("luf_v11", 5): "as v10: `fault_install_pte` give-up when `do_wp_page` makes the PTE writable",
    ("luf_v11", 2): "`file_end_write` does `luf_flush(0)` (`LufV11.file_end_write`) before write() returns",
    ("luf_v12", 2): "`mapping_write_begin` does `luf_flush(0)` before the page-cache page changes",
    ("luf_v12", 3): "`luf_flush(0)` at the end of `handle_mm_fault` for a VM_WRITE VMA, before "
                    "the faulting CPU retries its store",
    ("luf_v12", 5): "`luf_flush(0)` at the end of `handle_mm_fault` (write fault)",
}
#: Explanations of failures the random machine finds beyond the review scenarios.
FINDINGS = {
    ("luf_v12", "S2"):
        "RFC v12 decides LUF eligibility on `pte_write` alone. An `mprotect(PROT_READ)` on "
        "another CPU write-protects the PTE under the PTL (the dirty bit stays) and flushes "
        "only later, after dropping the PTL (`tlb_end_vma`/`tlb_finish_mmu`); a reclaim or migration running in between sees a read-only PTE, "
        "takes the folio for LUF and leaves it out of `tlb_ubc`, so `try_to_unmap_flush_dirty` "
        "(or the flush at `move:`) does not cover it and `pageout` (or the migration copy) "
        "starts while the mprotect CPU still holds a writable, dirty TLB entry: a store in "
        "that window is lost. Mainline is immune (every deferred entry is flushed before IO "
        "and copy); excluding dirty PTEs from LUF (the migrc RFC v2 rule, used here for "
        "v10/v11) or checking `mm_tlb_flush_pending()` closes it.",
}
#: The random column is exactly ``flushcheck certify P --seed 1 --jobs 1`` limited to
#: RANDOM_CHUNKS chunks of RANDOM_CHUNK examples (no time budget, so it is reproducible).
RANDOM_SEED = 1
RANDOM_CHUNK = 50
RANDOM_CHUNKS = 40
RANDOM_EXAMPLES = RANDOM_CHUNK * RANDOM_CHUNKS
RANDOM_STEPS = 50


def mechanism(proto: str, n: int) -> str:
    for key in ((proto, n), (proto, 0), ("*", n)):
        if key in MECHANISMS:
            return MECHANISMS[key]
    return "(no mechanism recorded)"


def _scenarios():
    scs = [s for s in corpus() if s.name.startswith("luf-")]
    return sorted(scs, key=lambda s: s.name)


def compute():
    """{(proto, column): Failure or None} for scenario columns 1..5 and 'random'."""
    out = {}
    scs = _scenarios()
    for p in ROWS:
        cls = load_protocol(p)
        for i, sc in enumerate(scs, 1):
            out[p, i] = run(sc, cls)
        out[p, "random"] = random_cell(p, cls)
    return out, scs


_CELL = """
import json, sys, time
from conformance.certify import chunk_seed, run_chunk
from conformance.config import DEFAULT
from conformance.registry import load_protocol
cls = load_protocol(sys.argv[1])
found = None
for i in range({chunks}):
    _, _, f, _, _ = run_chunk(cls, DEFAULT, False, {steps}, {chunk}, chunk_seed({seed}, i),
                              time.monotonic())
    if f:
        found = [[n, list(a)] for n, a in f[0].machine.actions]
        break
print(json.dumps(found))
"""


def random_cell(proto: str, cls):
    """The random column: one Hypothesis run (fixed seed and example count), shrunk.

    It runs in a fresh interpreter: Hypothesis's shrinker outcome was seen to depend
    on what the process had run and imported before, and this file must be byte-for-byte
    reproducible. The shrunk actions are replayed here (the model is deterministic).
    """
    import json
    import subprocess
    import sys

    from .reproducer import replay_actions

    code = _CELL.format(steps=RANDOM_STEPS, chunk=RANDOM_CHUNK, chunks=RANDOM_CHUNKS,
                        seed=RANDOM_SEED)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    out = subprocess.run([sys.executable, "-c", code, proto], capture_output=True, text=True,
                         env=env, timeout=900, check=True)
    actions = json.loads(out.stdout.strip().splitlines()[-1])
    if actions is None:
        return None
    actions = [(n, tuple(tuple(x) if isinstance(x, list) else x for x in a)) for n, a in actions]
    f = replay_actions(cls, DEFAULT, False, actions)
    if f is None:
        raise RuntimeError(f"{proto}: the random failure did not replay")
    return f


def _anchor(p, col) -> str:
    return f"{p}-{col}".replace("_", "-")


def render(results, scs) -> str:
    cols = list(range(1, len(scs) + 1)) + ["random"]
    L = ["# LUF under flushcheck: the review thread, executed", ""]
    L.append("Generated by `flushcheck luf-doc` from `litmus/luf-*.litmus` and the protocol "
             "modules; `tests/test_lufdoc.py` fails if this file is stale. Do not edit by hand.")
    L.append("")
    L.append("## Summary")
    L.append("")
    for n in range(1, len(scs) + 1):
        failing = [p for p in ROWS if results[p, n] is not None]
        passing = [p for p in ROWS if p.startswith("luf") and results[p, n] is None]
        text = f"- **Scenario {n}, {TITLES.get(n, scs[n-1].name)}** ({OBJECTIONS.get(n, '')}): "
        if not failing:
            text += "**answered** for every LUF variant (see the mechanisms below)."
        else:
            text += "**real** for " + ", ".join(
                f"`{p}` ({results[p, n].rule})" for p in failing) + "; "
            text += ("answered for " + ", ".join(f"`{p}`" for p in passing) + "."
                     if passing else "no LUF variant answers it.")
        L.append(text)
    rnd = [p for p in ROWS if results[p, "random"] is not None]
    L.append(f"- **Random state machine** (`flushcheck certify <protocol> --seed {RANDOM_SEED} "
             f"--jobs 1`, at most {RANDOM_EXAMPLES} examples of {RANDOM_STEPS} steps): finds " + (", ".join(
                 f"`{p}` ({results[p, 'random'].rule})" for p in rnd) if rnd else "nothing") + ".")
    L.append("- `linux` and `immediate` pass every column.")
    L.append("")
    L.append("Where a posting was ambiguous the module takes the reading most favourable to LUF "
             "and says so in its docstring (e.g. v10's fault give-up flushes atomically with the "
             "PTE install; v10-era eligibility excludes dirty PTEs).")
    L.append("")
    L.append("## Verdicts")
    L.append("")
    head = "| protocol | " + " | ".join(
        f"{n} {TITLES.get(n, '')}" if n != "random" else "random state machine" for n in cols) + " |"
    L.append(head)
    L.append("|" + "---|" * (len(cols) + 1))
    for p in ROWS:
        cells = []
        for c in cols:
            f = results[p, c]
            cells.append("pass" if f is None else f"[{f.rule}](#{_anchor(p, c)})")
        L.append(f"| `{p}` | " + " | ".join(cells) + " |")
    L.append("")
    extra = [p for p in ROWS if results[p, "random"] is not None
             and all(results[p, n] is None for n in range(1, len(scs) + 1))]
    if extra:
        L.append("## Findings beyond the thread")
        L.append("")
        for p in extra:
            f = results[p, "random"]
            L.append(f"- `{p}`, [{f.rule}](#{_anchor(p, 'random')}): "
                     + FINDINGS.get((p, f.rule), "found by the random state machine; see its timeline."))
        L.append("")
    L.append("## Why the passing cells pass")
    L.append("")
    L.append("| protocol | scenario | mechanism |")
    L.append("|---|---|---|")
    for p in ROWS:
        for n in range(1, len(scs) + 1):
            if results[p, n] is None:
                L.append(f"| `{p}` | {n} | {mechanism(p, n)} |")
    L.append("")
    L.append("## Scenarios")
    L.append("")
    for n, sc in enumerate(scs, 1):
        L.append(f"{n}. `{os.path.relpath(sc.path, os.path.dirname(os.path.dirname(__file__)))}`: {sc.doc}")
    L.append("")
    L.append("## Timelines of the failing cells")
    L.append("")
    for p in ROWS:
        for c in cols:
            f = results[p, c]
            if f is None:
                continue
            what = f"scenario {c}" if c != "random" else "random state machine (shrunk)"
            L.append(f'### <a id="{_anchor(p, c)}"></a>`{p}`, {what}: {f.rule}')
            L.append("")
            L.append("```text")
            L.append(f.report(last=None))
            L.append("```")
            L.append("")
    return "\n".join(L).rstrip() + "\n"


def generate() -> str:
    results, scs = compute()
    return render(results, scs)


DOC_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "LUF.md")
