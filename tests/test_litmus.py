"""The litmus corpus (litmus/*.litmus) against every discovered protocol.

A scripted file is run once; a threaded file is explored exhaustively
(conformance/search/explorer.py). The verdict must match the file's expectation
(kernel-notes 2.4: 3ea277194daa; 2.7: 5ee2fa2f0636; the bug-* files: docs/CORPUS.md).
"""
import attrs
import pytest

from conformance.corpus import check_one
from conformance.errors import UsageError
from conformance.findings import FINDINGS
from conformance.litmus import corpus, parse, run, verdict
from conformance.registry import load_protocol, protocol_names

SCENARIOS = corpus()


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
@pytest.mark.parametrize("proto", protocol_names())
def test_scenario_verdict(sc, proto):
    """The verdict of every (scenario, protocol) pair is the expected one."""
    cell = check_one(sc, proto, load_protocol(proto))
    assert cell.ok, cell.detail


def test_commit_message_races_are_in_the_corpus():
    """The 2017 and 2021 interleavings are present with the historical verdicts."""
    by = {s.name: s for s in SCENARIOS}
    assert by["reclaim-vs-mprotect-2017"].expected("linux_4_3") == "S3"
    assert by["lost-pending-flush-2021"].expected("linux_4_13") == "S3"
    findings = {f.scenario for f in FINDINGS}
    for name in by:
        if name in findings:  # a finding about mainline: test_findings_are_scenarios_with_their_switch
            continue
        assert by[name].expected("linux") == "pass"
        assert by[name].expected("immediate") == "pass"


def test_findings_are_scenarios_with_their_switch():
    """Each finding about mainline (docs/FINDINGS.md) is a litmus file that turns on its
    MachineConfig switch (off by default) and fails linux, while immediate passes it; off,
    the same script passes linux, and a PASS on the default machine names the finding."""
    from conformance.config import DEFAULT
    from conformance.findings import scope_lines

    by = {s.name: s for s in SCENARIOS}
    for f in FINDINGS:
        sc = by[f.scenario]
        assert getattr(DEFAULT, f.switch) is False
        assert getattr(sc.config, f.switch) is True
        assert sc.expected("linux") != "pass" and sc.expected("immediate") == "pass"
        assert check_one(sc, "linux", load_protocol("linux")).verdict == sc.expected("linux")
        assert check_one(sc, "immediate", load_protocol("immediate")).verdict == "pass"
        off = attrs.evolve(sc, config=attrs.evolve(sc.config, **{f.switch: False}))
        assert check_one(off, "linux", load_protocol("linux")).verdict == "pass"
        assert any(f"finding {f.id} " in x for x in scope_lines(DEFAULT))
        assert not any(f"finding {f.id} " in x for x in scope_lines(sc.config))


def test_2021_race_needs_the_lost_flag():
    """linux_4_13 fails only because flush_tlb_batched_pending's clear loses the flag:
    the same script without the re-fill inside the window passes."""
    sc = next(s for s in SCENARIOS if s.name == "lost-pending-flush-2021")
    lines = [(no, w) for no, w in sc.lines if w[:2] != ["CPU0", "fill"]]
    trimmed = type(sc)(sc.name, sc.doc, sc.config, sc.expect, lines, sc.path)
    assert run(trimmed, load_protocol("linux_4_13")) is None


def test_bad_litmus_is_a_usage_error():
    """A malformed scenario names its line."""
    with pytest.raises(UsageError, match="<litmus>:2"):
        parse("name x\nconfig ncpus=lots\n")
    with pytest.raises(UsageError, match="unknown verdict 'S9'"):
        parse("name x\nexpect linux_4_3 S9\n")
    with pytest.raises(UsageError, match=r"<litmus>:3: CPU7, but the machine has 2 CPUs"):
        parse("name x\nconfig ncpus=2\nCPU7 read v0\n")
    with pytest.raises(UsageError, match=r"<litmus>:3: CPU0 is already running"):
        run(parse("name x\nCPU0 munmap U v0 1\nCPU0 munmap V v1 1\n"), load_protocol("linux"))
    sc = parse("name x\nCPU0 frobnicate v0\n")
    with pytest.raises(UsageError, match="unknown CPU verb"):
        run(sc, load_protocol("linux"))


def test_model_regression_scenario_has_teeth(monkeypatch):
    """Without the isolation check in folio_isolate_lru the regression scenario shows the
    false S1 it was written for; with it, linux passes (above)."""
    import conformance.mm as K

    orig = K.Kernel._lru_folio

    def no_isolation_check(self, op, frame):
        saved = self.mem.isolated[frame]
        self.mem.isolated[frame] = None
        ok = orig(self, op, frame)
        if not ok:
            self.mem.isolated[frame] = saved
        return ok
    monkeypatch.setattr(K.Kernel, "_lru_folio", no_isolation_check)
    sc = next(s for s in SCENARIOS if s.name == "model-reclaim-keeps-isolated")
    assert verdict(run(sc, load_protocol("linux"))) == "S1"


def test_rmap_walk_lock_regression_has_teeth(monkeypatch):
    """Without rmap_walk's read lock (i_mmap_rwsem / anon_vma) the explorer finds the walk
    that misses a PTE mremap moves away and back (the fuzzer's MODEL-ERROR); with it every
    interleaving passes (test_scenario_verdict)."""
    import conformance.mm as K
    from conformance.search.explorer import explore

    def no_walk_lock(self, op, loc):
        return None
        yield  # a generator, like the real one

    sc = next(s for s in SCENARIOS if s.name == "model-rmap-walk-vs-mremap")
    monkeypatch.setattr(K.Kernel, "rmap_walk_lock", no_walk_lock)
    res = explore(sc, load_protocol("linux"))
    assert res.verdict == "MODEL-ERROR" and "still mapped" in res.failure.headline()
