"""The litmus corpus (litmus/*.litmus) against every discovered protocol.

A scripted file is run once; a threaded file is explored exhaustively
(conformance/search/explorer.py). The verdict must match the file's expectation
(kernel-notes 2.4: 3ea277194daa; 2.7: 5ee2fa2f0636; the bug-* files: docs/CORPUS.md).
"""
import attrs
import pytest

from conformance.corpus import check_one, expectation
from conformance.corpus import table as _table
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
    for name in by:
        if any(getattr(by[name].config, f.switch) for f in FINDINGS):
            continue  # a finding about mainline: test_findings_are_scenarios_with_their_switch
        assert by[name].expected("linux") == "pass"
        assert by[name].expected("immediate") == "pass"


def test_findings_are_scenarios_with_their_switch():
    """Each finding about mainline (docs/FINDINGS.md) is a litmus file that turns on its
    MachineConfig switch (off by default) and fails linux, while immediate passes it; off,
    the same script passes linux, and a PASS on the default machine names the finding.
    Every other file that turns the switch on (F2's plainest route,
    finding-lazyfree-skips-isolated-batch) is held to the same."""
    from conformance.config import DEFAULT
    from conformance.findings import scope_lines

    by = {s.name: s for s in SCENARIOS}
    for f in FINDINGS:
        sc = by[f.scenario]
        assert getattr(DEFAULT, f.switch) is False
        assert getattr(sc.config, f.switch) is True
        for other in (s for s in SCENARIOS if getattr(s.config, f.switch)):
            assert other.expected("linux") != "pass" and other.expected("immediate") == "pass"
            assert check_one(other, "linux", load_protocol("linux")).verdict \
                == other.expected("linux")
            assert check_one(other, "immediate", load_protocol("immediate")).verdict == "pass"
            off = attrs.evolve(other, config=attrs.evolve(other.config, **{f.switch: False}))
            assert check_one(off, "linux", load_protocol("linux")).verdict == "pass", other.name
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
    with pytest.raises(UsageError, match="<litmus>:2: .*unknown CPU verb"):  # when parsed
        parse("name x\nCPU0 frobnicate v0\n")


def test_model_regression_scenario_has_teeth(monkeypatch):
    """Without the isolation check in folio_isolate_lru the regression scenario shows the
    false S1 it was written for; with it, linux passes (above)."""
    import conformance.mm as K

    orig = K.Kernel._on_lru

    def no_isolation_check(self, frame):
        saved = self.mem.isolated[frame]
        self.mem.isolated[frame] = None
        try:
            return orig(self, frame)
        finally:
            self.mem.isolated[frame] = saved
    monkeypatch.setattr(K.Kernel, "_on_lru", no_isolation_check)
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


#: (line, what the one-line error says after ``<litmus>:N: ``): each passed with exit 0 (or
#: ran something else: a negative page is Python's last), or crashed with an IndexError
BAD_ARGUMENTS = [
    ("CPU0 munmap P v0 -1", "munmap: npages -1 is not an integer in 1..4"),
    ("CPU0 mprotect P v-1 2 rw", "mprotect: start -1 is not an integer in 0..3"),
    ("CPU0 truncate P file0 -1", "truncate: pgoff -1 is not an integer in 0..1"),
    ("CPU0 munmap P v3 5", "munmap: npages 5 is not an integer in 1..4"),
    ("CPU0 munmap P v3 2", "munmap: start 3 + npages 2 runs past the last page (vpages=4)"),
    ("CPU0 madvise P v0 0 free", "madvise: npages 0 is not an integer in 1..4"),
    ("CPU0 madvise P v0 1 bogus", 'madvise: advice "bogus" is not one of "dontneed", "free"'),
    ("CPU0 mmap P v0 1 file7 rw", "mmap: file 7 is not null or an integer in 0..1"),
    ("CPU0 mremap P v0 1 v9", "mremap: new_start 9 is not an integer in 0..3"),
    ("CPU0 filewrite P file5 0", "filewrite: file 5 is not an integer in 0..1"),
    ("CPU0 writeback P file0 2", "writeback: pgoff 2 is not an integer in 0..1"),
    ("CPU0 evict -1", "evict: index -1 is not an integer >= 0"),
    ("CPU0 switch mm7", "switch: mm_id 7 is not an integer in 0..1"),
    ("CPU0 fill v-2", "fill: vpage -2 is not an integer in 0..3"),
    ("CPU0 touch w v99", "touch: vpage 99 is not an integer in 0..3"),
    ("CPU0 read v4", "read: vpage 4 is not an integer in 0..3"),
    ("CPU0 reclaim R pfn99", "reclaim: frames [99] is not a list of integers in 0..9"),
    ("CPU0 fork F mm9", "fork: child 9 is not an integer in 0..1"),
    # pfn(...) of a page outside the config (before: "bad arguments (list index out of range)")
    ("CPU0 reclaim R pfn(mm9,v0)", "pfn(mm9,v0): mm 9 is not an integer in 0..1"),
    ("CPU0 reclaim R pfn(mm0,v99)", "pfn(mm0,v99): vpage 99 is not an integer in 0..3"),
    ("CPU0 migrate M pfn(file5,0)", "pfn(file5,0): file 5 is not an integer in 0..1"),
    ("CPU0 reclaim R pfn(file0,7)", "pfn(file0,7): pgoff 7 is not an integer in 0..1"),
]


@pytest.mark.parametrize("line,says", BAD_ARGUMENTS, ids=[x for x, _ in BAD_ARGUMENTS])
def test_an_argument_out_of_range_is_a_usage_error_naming_its_line(line, says):
    """A script line's arguments get the check a reproducer's actions get (one check,
    conformance.reproducer.arg_error): out of range is a UsageError ``FILE:LINE: VERB:
    ...``. Before, ``munmap P v0 -1`` and the like ran (nothing, or Python's last page) and
    the file passed, exit 0."""
    sc = parse(f"name x\nconfig populate=false ncpus=2\n{line}\n")
    with pytest.raises(UsageError) as exc:
        run(sc, load_protocol("linux"))
    assert str(exc.value).startswith(f"<litmus>:3: {says}"), str(exc.value)


@pytest.mark.parametrize("line,says", BAD_ARGUMENTS[:4] + BAD_ARGUMENTS[12:13],
                         ids=[x for x, _ in BAD_ARGUMENTS[:4] + BAD_ARGUMENTS[12:13]])
def test_an_argument_out_of_range_in_a_thread_too(line, says):
    """The same lines in an explorer thread (without their ``CPUn`` word)."""
    from conformance.search.explorer import explore

    sc = parse(f"name x\nconfig populate=false ncpus=2\nthread CPU0\n{line.split(' ', 1)[1]}\n")
    with pytest.raises(UsageError) as exc:
        explore(sc, load_protocol("linux"))
    assert str(exc.value).startswith(f"<litmus>:4: {says}"), str(exc.value)


@pytest.mark.parametrize("text,says", [
    ("thread CPU0\nread v0\nhw CPU0 fill v99\n", "<litmus>:5: hw: vpage 99 is not an integer in 0..3"),
    ("thread CPU0\nread v0\nhw CPU1 evict v-1\n", "<litmus>:5: hw: vpage -1 is not an integer"),
    ("thread CPU0\nread v0\nhw CPU0 fill v1 0\n", "<litmus>:5: cannot parse 'hw CPU0 fill v1 0' "
     "(COUNT 0: the most times it may happen, at least 1)"),
    ("thread CPU0 mm7\nread v0\n", "<litmus>:3: thread: mm_id 7 is not an integer in 0..1"),
])
def test_hw_pages_and_thread_mms_out_of_range_are_refused_when_parsed(text, says):
    """``hw CPU0 fill v99`` crashed the explorer (IndexError, exit 3), ``thread CPU0 mm7``
    was a MODEL ERROR: both are the file's error, found as it is parsed."""
    with pytest.raises(UsageError) as exc:
        parse(f"name x\nconfig populate=false ncpus=2\n{text}")
    assert str(exc.value).startswith(says), str(exc.value)


def test_step_stops_once_the_operation_has_returned(tmp_path):
    """``P step 99999999999`` looped on after P returned (hours, doing nothing): the steps
    left are skipped at once, as docs/litmus.md says (``flushcheck litmus``, a process of
    its own: PASS, exit 0, in seconds); ``step 0`` or below is refused."""
    import subprocess
    import sys

    (tmp_path / "x.litmus").write_text(
        "name x\nconfig populate=false ncpus=2\nCPU0 touch w v0\nCPU0 munmap P v0 1\n"
        "P step 99999999999\nCPU0 read v0\n")
    r = subprocess.run([sys.executable, "-m", "conformance.cli", "litmus", "--dir",
                        str(tmp_path), "--protocol", "linux"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "1/1 cells as expected" in r.stdout, r.stdout + r.stderr
    with pytest.raises(UsageError, match=r"<litmus>:3: step 0: a number of steps is at least 1"):
        run(parse("name x\nCPU0 munmap P v0 1\nP step 0\n"), load_protocol("linux"))


# -- a protocol the shipped corpus was not written for (a user review, 2026-12-05) ---------------
def _user_module(tmp_path, name: str, base: str, hook: str = "", correct: bool = False):
    """A protocol file ``name.py`` subclassing ``module:Class`` ``base``, with ``hook``'s
    body as its ``flush_tlb_batched_pending`` (none: the base's), optionally CORRECT."""
    mod, cls = base.split(":")
    body = (f"    def flush_tlb_batched_pending(self, task, mm) -> None:\n        {hook}\n"
            if hook else "    pass\n")
    path = tmp_path / f"{name}.py"
    path.write_text(f"from protocols.{mod} import {cls}\n\n\nclass User({cls}):\n{body}"
                    + ("\nCORRECT = True\n" if correct else ""))
    return load_protocol(str(path))


def corpus_table(cells) -> str:
    by = {s.name: s for s in SCENARIOS}
    return _table(cells, [by[c.scenario] for c in cells], sorted({c.protocol for c in cells}))


def _cell(name: str, cls, scenario: str = "lost-pending-flush-2021"):
    sc = next(s for s in SCENARIOS if s.name == scenario)
    return check_one(sc, cls.name, cls)


def test_a_variant_with_a_bug_is_not_held_to_expect_star(tmp_path):
    """A user's variant (linux without ``flush_tlb_batched_pending``'s flush) fails the 2021
    race; the file's ``expect *  pass`` was written for the shipped protocols, not for it, so
    the cell shows S3 as a verdict with no expectation and is not a mismatch (it was one:
    36 litmus tests failed for one dropped-in module)."""
    cls = _user_module(tmp_path, "nopend_user", "linux:Linux", hook="pass")
    cell = _cell("nopend_user", cls)
    assert (cell.verdict, cell.expected, cell.ok) == ("S3", "any", True)
    assert "S3?" in corpus_table([cell])


def test_a_module_claiming_correct_must_pass_the_corpus(tmp_path):
    """``CORRECT = True`` is a claim the corpus can refute: linux_4_13's bug under that
    claim fails its cell; the same claim on a correct copy passes it, and the F1 file (its
    switch on, ``expect * S2``) expects nothing of either."""
    bad = _user_module(tmp_path, "claims_correct", "linux_4_13:Linux413", correct=True)
    cell = _cell("claims_correct", bad)
    assert (cell.verdict, cell.expected, cell.ok) == ("S3", "pass", False)
    good = _user_module(tmp_path, "really_correct", "immediate:Immediate", correct=True)
    assert _cell("really_correct", good).ok
    f1 = FINDINGS[0].scenario
    assert _cell("really_correct", good, f1).expected == "any"


def test_a_protocol_error_is_never_as_expected(tmp_path):
    """No expectation still excludes an error: a variant whose hook raises fails its cell."""
    cls = _user_module(tmp_path, "raises_user", "linux:Linux", hook="raise RuntimeError('oops')")
    cell = _cell("raises_user", cls)
    assert (cell.verdict, cell.expected, cell.ok) == ("PROTOCOL-ERROR", "any", False)


def test_shipped_protocols_keep_every_expectation():
    """The shipped modules are :data:`protocols.SHIPPED`: each exists, every protocol the
    corpus names is one, and ``expect *`` still binds them (linux_4_13 passes 2017)."""
    from protocols import SHIPPED

    names = protocol_names()
    assert all(n in names for n in SHIPPED)
    # the other way: a module the docs describe is shipped (one added to protocols/ for the
    # project and forgotten in SHIPPED would get no expectation from any `expect *` line);
    # a user's own module is in no doc of ours
    import glob
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    docs = "".join(open(p, encoding="utf-8").read()
                   for p in glob.glob(os.path.join(root, "docs", "*.md")) + [
                       os.path.join(root, "README.md")])
    assert [n for n in names if f"`{n}`" in docs and n not in SHIPPED] == []
    assert {p for sc in SCENARIOS for p in sc.expect if p != "*"} <= set(SHIPPED)
    by = {s.name: s for s in SCENARIOS}
    l413 = load_protocol("linux_4_13")
    assert expectation(by["reclaim-vs-mprotect-2017"], "linux_4_13", l413) == "pass"
    assert expectation(by["lost-pending-flush-2021"], "linux_4_13", l413) == "S3"


def test_a_directory_of_your_own_means_its_star_for_every_protocol(tmp_path):
    """Outside the shipped corpus a file's ``*`` is its author's claim about everything run."""
    (tmp_path / "mine.litmus").write_text(
        "name mine\nconfig populate=false ncpus=2\nexpect * S3\nCPU0 touch w v0\n")
    sc = corpus(str(tmp_path))[0]
    assert expectation(sc, "anything_at_all", load_protocol("linux")) == "S3"


def test_a_committed_user_module_is_not_counted_as_shipped(monkeypatch):
    """The guide's module counts read :func:`shipped_protocols`, which no longer asks git:
    a user's module, committed or not, is not among them."""
    import subprocess

    import conformance.registry as registry
    from conformance.hooks import shipped_protocols

    real = registry.protocol_names
    monkeypatch.setattr(registry, "protocol_names", lambda: real() + ["my_committed_variant"])
    tracked = "\n".join(f"../protocols/{n}.py" for n in real() + ["my_committed_variant"])
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a, 0, stdout=tracked, stderr=""))  # git would list it: the user committed it
    assert "my_committed_variant" not in shipped_protocols()
    assert "linux" in shipped_protocols()


def test_shipped_is_decided_by_the_module_file_not_the_name(tmp_path):
    """A fixed copy of a shipped module elsewhere (``/tmp/x/linux_4_13.py``) is not the
    shipped module: no expectation, so its PASS of the 2021 race is no mismatch; the shipped
    file given by its path is the shipped module, and keeps its S3 (a review: the first fix
    went by the name and had both the wrong way round). Through a symlink to ``litmus/``
    the corpus is still the shipped one."""
    import os

    import conformance.litmus as litmus

    fixed = tmp_path / "linux_4_13.py"
    fixed.write_text("from protocols.linux import Linux\n\n\nclass Fixed(Linux):\n    pass\n")
    copy = _cell("linux_4_13", load_protocol(str(fixed)))
    assert (copy.verdict, copy.expected, copy.ok) == ("pass", "any", True)
    path = os.path.join(os.path.dirname(litmus.LITMUS_DIR), "protocols", "linux_4_13.py")
    real = _cell("linux_4_13", load_protocol(path))
    assert (real.verdict, real.expected, real.ok) == ("S3", "S3", True)
    link = tmp_path / "corpus_link"
    link.symlink_to(litmus.LITMUS_DIR)
    sc = next(s for s in corpus(str(link)) if s.name == "lost-pending-flush-2021")
    assert expectation(sc, "mine", load_protocol(str(fixed))) == "any"


def test_a_search_cut_short_is_no_verdict_for_a_protocol_without_expectation(tmp_path):
    """``incomplete`` (--max-states reached) is not "any verdict": it was counted as
    expected for a user's module while the same cell of a shipped one was a mismatch."""
    cls = _user_module(tmp_path, "cut_short", "linux:Linux", hook="pass")
    sc = next(s for s in SCENARIOS if s.path.endswith("bug-2.7-lost-pending-flush.litmus"))
    cell = check_one(sc, "cut_short", cls, max_states=5)
    assert (cell.verdict, cell.expected, cell.ok) == ("incomplete", "any", False)
