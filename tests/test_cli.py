"""The command line: verdicts, exit codes, one-line errors, exact replays."""
import json
import os
import re
import subprocess
import sys

from conformance.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=300)


def test_certify_linux_passes_briefly(tmp_path):
    """A short certify of mainline passes and says what it checked."""
    r = run_cli("certify", "linux", "--budget", "3", "--repro-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verdict   PASS: 0 violations" in r.stdout
    assert "S1 frame reuse" in r.stdout and "examples" in r.stdout
    # the PASS line itself states what it stands on
    assert re.search(r"verdict   PASS: 0 violations in [1-9][\d,]* examples, [1-9][\d,]* steps", r.stdout)
    # and what its machine left out: the findings about mainline (docs/FINDINGS.md)
    assert "  scope     not finding F1 (docs/FINDINGS.md)" in r.stdout


def test_certify_linux_4_3_fails_with_timeline_and_replays(tmp_path):
    """linux_4_3 fails S3 with a shrunk per-CPU timeline; the reproducer replays it exactly."""
    r = run_cli("certify", "linux_4_3", "--seed", "1", "--budget", "60", "--repro-dir", str(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL: S3 violated" in r.stdout
    assert re.search(r"^step CPU\d", r.stdout, re.M)  # the timeline: the CPUs that act
    path = os.path.join(tmp_path, "linux_4_3-1.json")
    data = json.load(open(path))
    assert data["rule"] == "S3" and data["protocol"] == "linux_4_3"
    r1, r2 = run_cli("replay", path), run_cli("replay", path)
    assert r1.returncode == 1 and "S3" in r1.stdout
    assert r1.stdout == r2.stdout  # byte for byte


def test_corrupt_reproducer_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    def repro(config=None, actions=()):
        return json.dumps({"format": "flushcheck-reproducer/1", "protocol": "linux",
                           "config": config or {}, "actions": list(actions)})
    for text in ("{not json", json.dumps({"format": "nope"}),
                 repro(actions=[["bogus_action", []]]),
                 repro(config={"ncpus": -1}),  # a hand-edited machine
                 repro(actions=[["user_access", [7, 0, False]]]),  # a CPU it does not have
                 repro(actions=[["fill", [-1, 0]]]),  # not CPU2 by Python's indexing
                 repro(actions=[["reclaim", [0, [0, 99]]]]),
                 repro(actions=[["user_access", [0, 0]]])):  # an argument missing
        bad.write_text(text)
        assert main(["replay", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("flushcheck: error:") and len(err.strip().splitlines()) == 1
    assert main(["replay", str(tmp_path / "missing.json")]) == 2


def test_unknown_protocol_and_bad_config(capsys):
    assert main(["certify", "nope"]) == 2
    assert "unknown protocol 'nope'" in capsys.readouterr().err
    assert main(["certify", "linux", "--config", "ncpus=many"]) == 2
    assert main(["certify", "linux", "--config", "color=red"]) == 2


def test_a_machine_nothing_runs_on_is_refused(capsys):
    """No PASS (and no power claim) for a machine without CPUs, pages or frames, an
    unreadable boolean, or one too large for the raw walk: one line, exit 2."""
    for cfg in ("ncpus=0", "vpages=-1", "nframes=0", "populate=maybe"):
        for cmd in (["certify", "linux_4_13", "--budget", "1", "--jobs", "1"],
                    ["bound", "linux", "-k", "1", "-q"]):
            assert "bad --config" in _usage_error(capsys, cmd + ["--config", cfg]), cfg
    err = _usage_error(capsys, ["certify", "linux", "--budget", "1", "--jobs", "1",
                                "--config", "ncpus=100"])  # beyond config.LIMITS
    assert "'ncpus' must be <= 64: 100" in err
    err = _usage_error(capsys, ["certify", "linux", "--budget", "1", "--jobs", "1",
                                "--config", "vpages=64"])  # within them, not for the walk
    assert "too large for the raw walk" in err


def test_same_seed_same_trace():
    """Determinism: the same seed gives the same history, byte for byte."""
    from conformance.pytest_plugin import fuzz
    a = fuzz("linux_4_3", examples=500, seed=3, shrink=False)
    b = fuzz("linux_4_3", examples=500, seed=3, shrink=False)
    assert a is not None and b is not None
    assert a.machine.actions == b.machine.actions
    assert a.machine.trace.timeline(2) == b.machine.trace.timeline(2)


def _usage_error(capsys, argv) -> str:
    """Run the CLI; it must exit 2 with one line on stderr and print no verdict."""
    assert main(argv) == 2, argv
    out, err = capsys.readouterr()
    assert "PASS" not in out, argv
    assert err.startswith("flushcheck: error:") and len(err.strip().splitlines()) == 1, err
    return err


def test_certify_budget_zero_is_bad_input_not_a_pass(capsys):
    assert "--budget" in _usage_error(capsys, ["certify", "linux", "--budget", "0"])


def test_certify_negative_budget_is_bad_input(capsys):
    assert "--budget" in _usage_error(capsys, ["certify", "linux", "--budget", "-5"])
    assert "--budget" in _usage_error(capsys, ["certify", "linux", "--budget", "nan"])


def test_certify_jobs_zero_or_negative_is_bad_input(capsys):
    assert "--jobs" in _usage_error(capsys, ["certify", "linux", "--jobs", "0"])
    assert "--jobs" in _usage_error(capsys, ["certify", "linux", "--jobs", "-2"])


def test_certify_steps_zero_is_bad_input(capsys):
    assert "--steps" in _usage_error(capsys, ["certify", "linux", "--steps", "0"])


def test_zero_examples_is_never_a_pass():
    """A run that executed nothing (the budget ran out before a worker started) is no
    verdict: ``passed`` is False and the report says so (the CLI exits 2)."""
    from conformance.certify import Result
    from conformance.registry import load_protocol
    from conformance.report import certify_report

    res = Result(protocol="linux", seed=0, budget_s=0.001)
    assert not res.passed
    text = certify_report(res, load_protocol("linux"), "abc", [])
    assert "PASS" not in text and "NO VERDICT: 0 examples ran" in text


def test_explore_and_litmus_do_not_import_hypothesis(tmp_path):
    """explore and litmus start fast: neither they nor the parser import Hypothesis (the
    failing explore also saves its reproducer and picture)."""
    for args, rc in ((["explore", "litmus/bug-2.7-lost-pending-flush.litmus", "--protocol",
                       "linux_4_13", "--repro-dir", str(tmp_path)], 1),
                     (["litmus", "--protocol", "linux"], 0)):
        code = ("import sys\nfrom conformance.cli import main\n"
                f"rc = main({args!r})\n"
                "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'hypothesis')\n"
                "assert not bad, bad[:5]\nsys.exit(rc)\n")
        r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == rc, r.stdout + r.stderr


def test_explore_stopped_early_is_no_pass(capsys):
    """An exploration the state cap stopped says INCOMPLETE, not PASS, and exits non-zero;
    the same file explored to the end says PASS and exits 0."""
    from conformance.cli import main

    lit = "litmus/bug-2.7-lost-pending-flush.litmus"
    rc = main(["explore", lit, "--protocol", "linux", "--max-states", "5"])
    out = capsys.readouterr().out
    assert rc != 0 and "verdict   INCOMPLETE" in out and "verdict   PASS" not in out
    rc = main(["explore", lit, "--protocol", "linux"])
    out = capsys.readouterr().out
    assert rc == 0 and "verdict   PASS" in out


def test_explore_shorter_than_proves_a_length_or_finds_a_shorter_one(capsys, tmp_path):
    """``--shorter-than L`` on the 2021 race (shortest: 9 choices under linux_4_13; 8 until
    munmap's free_pgtables waited for the reclaim's rmap walk, 2026-12-05): below 9 it says
    NONE SHORTER and exits 0, never PASS (the scenario still fails at 9); below 10 it finds
    the 9-choice counterexample and exits 1; a bound under 1 is a one-line error."""
    from conformance.cli import main

    lit = "litmus/bug-2.7-lost-pending-flush.litmus"
    args = ["explore", lit, "--protocol", "linux_4_13", "--repro-dir", str(tmp_path)]
    rc = main(args + ["--shorter-than", "9"])
    out = capsys.readouterr().out
    assert rc == 0 and "NONE SHORTER: no interleaving of fewer than 9 choices fails" in out
    assert "verdict   PASS" not in out and "fewer than 9 choices)" in out
    rc = main(args + ["--shorter-than", "10"])
    out = capsys.readouterr().out
    assert rc == 1 and "FAIL: S3" in out and "shortest counterexample: 9 choices" in out
    r = subprocess.run([sys.executable, "-m", "conformance.cli", *args, "--shorter-than", "0"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "at least 1 choice" in r.stderr and "Traceback" not in r.stderr


def test_explore_reports_its_own_bounds_never_a_bare_pass(capsys, tmp_path):
    """A user review (2026-12-06): ``--preemptions 1`` on the 2021 race, which linux_4_13
    fails only with more preemptions, printed ``verdict   PASS   (expected S3, DIFFERS)``;
    now it says what was searched, NONE WITHIN 1 PREEMPTION, and the command line it echoes
    names the bound. With 2 it fails as the scenario says. A FAIL's summary no longer ends
    in "(search stopped early)", which means --max-states; a run stopped there still does."""
    from conformance.cli import main

    lit = "litmus/bug-2.7-lost-pending-flush.litmus"
    args = ["explore", lit, "--protocol", "linux_4_13", "--repro-dir", str(tmp_path)]
    assert main(args + ["--preemptions", "1"]) == 0
    out = capsys.readouterr().out
    assert "NONE WITHIN 1 PREEMPTION: no interleaving of at most 1 preemption fails" in out
    assert "verdict   PASS" not in out and "DIFFERS" not in out and "--preemptions 1" in out
    # both bounds: it said NONE SHORTER of 60 choices alone (a review, 2026-12-06)
    assert main(args + ["--preemptions", "1", "--shorter-than", "60"]) == 0
    out = capsys.readouterr().out
    assert "NONE SHORTER: no interleaving of fewer than 60 choices and at most 1 " \
           "preemption fails" in out, out
    assert main(args + ["--preemptions", "2"]) == 1
    out = capsys.readouterr().out
    assert "verdict   FAIL: S3   (expected S3)" in out and "stopped early" not in out
    assert main(args) == 1
    assert "stopped early" not in capsys.readouterr().out
    assert main(args + ["--max-states", "3"]) == 1
    out = capsys.readouterr().out
    assert "INCOMPLETE" in out and "(search stopped early)" in out


def test_a_machine_unlike_the_kernel_says_so_beside_its_verdict(capsys, tmp_path):
    """``certify linux --config batch_gen_bits=1`` printed ``FAIL: S3`` with nothing to say
    that a 1-bit pending count, not mainline, fails (a user review, 2026-12-06). Every
    report of such a machine now carries a ``caveat`` line under its config (certify, its
    certificate, bound, explore); the kernel's 15 bits carry none."""
    import json

    from conformance.cli import main

    one = ["--examples", "1", "--chunk", "1", "--jobs", "1", "--database", "none",
           "--steps", "1", "--repro-dir", str(tmp_path / "r")]
    main(["certify", "linux", *one, "--config", "batch_gen_bits=2", "--out",
          str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert "  caveat    batch_gen_bits=2: mm->tlb_flush_batched's pending count is 2 bits, " \
           "not mainline's 15" in out and "ABA-prone" in out, out
    cert = json.load(open(tmp_path / "c" / "certificate.json"))
    assert cert["caveats"] and "| caveat | batch_gen_bits=2" in \
        open(tmp_path / "c" / "certificate.md").read()
    main(["certify", "linux", *one])
    assert "caveat" not in capsys.readouterr().out
    main(["bound", "linux", "-k", "1", "--config", "batch_gen_bits=3", "-q"])
    out = capsys.readouterr().out
    assert "  caveat    batch_gen_bits=3:" in out and "after 4 deferrals" in out
    assert "ABA-prone" not in out
    lit = tmp_path / "narrow.litmus"
    src = open(os.path.join(REPO, "litmus", "bug-2.4-reclaim-vs-mprotect.litmus")).read()
    lit.write_text(src.replace("config populate=false ncpus=2",
                               "config populate=false ncpus=2 batch_gen_bits=2"))
    main(["explore", str(lit), "--protocol", "linux", "--repro-dir", str(tmp_path / "r")])
    assert "  caveat    batch_gen_bits=2:" in capsys.readouterr().out


def test_a_finding_switched_on_is_a_caveat(capsys, tmp_path):
    """A machine with a finding's switch on takes mainline's own path of that finding
    (docs/FINDINGS.md), which fails every deferring protocol: its reports say so, each
    switch in its own line, and the switch is no longer in the PASS's scope line."""
    from conformance.cli import main
    from conformance.findings import FINDINGS

    for f in FINDINGS:
        main(["bound", "linux", "-k", "1", "--config", f"{f.switch}=true", "-q"])
        out = capsys.readouterr().out
        assert f"  caveat    {f.switch}: mainline's own path of finding {f.id} " in out, out
        assert f"not finding {f.id} " not in out
        assert sum(x.startswith("  caveat") for x in out.splitlines()) == 1
    main(["explore", os.path.join(REPO, "litmus", FINDINGS[1].scenario + ".litmus"),
          "--protocol", "linux", "--repro-dir", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert "verdict   FAIL: S2" in out and f"finding {FINDINGS[1].id} (docs/FINDINGS.md)" in out


def test_tables_name_a_file_protocol_by_its_stem(capsys, tmp_path):
    """``litmus`` and ``cost`` labelled a file protocol's row with the path given, where
    every other report and docs/PROTOCOLS.md use its name, the file's stem (a user review,
    2026-12-06)."""
    import shutil

    from conformance.cli import main

    mine = tmp_path / "deeply" / "nested"
    mine.mkdir(parents=True)
    path = mine / "myimm.py"
    shutil.copy(os.path.join(REPO, "protocols", "immediate.py"), path)
    main(["litmus", "--protocol", str(path), "--protocol", "linux",
          "bug-2.4-reclaim-vs-mprotect"])
    out = capsys.readouterr().out
    assert "\nmyimm  " in out and str(path) not in out, out
    main(["cost", str(path), "linux", "--ops", "80", "--mix", "default"])
    out = capsys.readouterr().out
    assert "\nmyimm  " in out and str(path) not in out, out
    # two files of one stem keep their paths, so the rows can be told apart (a review)
    other = tmp_path / "myimm.py"
    shutil.copy(path, other)
    main(["litmus", "--protocol", str(path), "--protocol", str(other),
          "bug-2.4-reclaim-vs-mprotect"])
    out = capsys.readouterr().out
    assert f"\n{path}  " in out and f"\n{other}  " in out, out


def test_show_program_prints_hypothesis_program(capsys, tmp_path):
    """``--show-program`` never printed a program: this Hypothesis attaches it to the
    exception as notes, and the reporter got only its "spent more than five minutes"
    warning, which flushcheck's own 5 s shrink cap provokes. Now the notes are the program
    (one ``state.`` line a step). Under the walk engine, which has none, the flag was
    ignored; now it is a one-line error (a user review, 2026-12-06)."""
    from conformance.cli import main

    args = ["certify", "linux_4_3", "--engine", "hypothesis", "--budget", "8", "--jobs",
            "1", "--database", "none", "--seed", "1", "--repro-dir", str(tmp_path)]
    assert main(args + ["--show-program"]) == 1
    out = capsys.readouterr().out
    program = out.split("\nHypothesis program:\n", 1)[1]
    assert "Falsifying example:\nstate = Conformance_linux_4_3()\nstate." in program, program
    assert "five minutes" not in out
    assert main(["certify", "linux", "--show-program", "--budget", "1"]) == 2
    assert "it needs --engine hypothesis" in capsys.readouterr().err


def test_unwritable_outputs_and_unreadable_inputs_are_refused_first(capsys, tmp_path):
    """Checked before any work (they used to fail with a traceback after the whole run)."""
    afile = tmp_path / "a_file"
    afile.write_text("x")
    binary = tmp_path / "bin.litmus"
    binary.write_bytes(bytes(range(256)))
    two7 = os.path.join(REPO, "litmus", "bug-2.7-lost-pending-flush.litmus")
    for argv, word in (
            (["certify", "linux", "--budget", "1", "--out", str(afile)], "not a directory"),
            (["certify", "linux", "--budget", "1", "--repro-dir", str(afile)], "not a directory"),
            (["soundness", "--budget", "1", "--markdown", str(tmp_path / "no" / "x.md")],
             "no such directory"),
            (["luf-doc", "--output", str(tmp_path / "no" / "x.md")], "no such directory"),
            (["explore", str(binary), "--protocol", "linux"], "not UTF-8"),
            (["litmus", "--dir", str(tmp_path / "missing")], "No such file"),
            (["explore", two7, "--protocol", "linux", "--max-states", "0"], "--max-states"),
            (["explore", two7, "--protocol", "linux", "--preemptions", "-1"], "--preemptions"),
            (["certify", "linux", "--budget", "1", "--bound", "1", "--bound-budget", "-1"],
             "--bound-budget"),
            (["certify", "linux", "--budget", "1", "--database", str(afile)], "not a directory")):
        assert word in _usage_error(capsys, argv), argv


def test_a_file_protocols_follow_up_commands_name_its_path(tmp_path):
    """The scenario line and the header of a failing certify of a file name the file, which
    loads it again (the class name alone loaded nothing, or a built-in of the same name)."""
    path = tmp_path / "linux.py"  # the name of a built-in, on purpose
    path.write_text("from protocols.linux_4_3 import Linux43\n\n\nclass Mine(Linux43):\n"
                    "    pass\n")
    r = run_cli("certify", str(path), "--seed", "1", "--budget", "60", "--jobs", "1",
                "--database", "none", "--repro-dir", str(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("scenario:"))
    assert f"--protocol {path}" in line, line
    assert r.stdout.splitlines()[0] == f"flushcheck certify {path}"  # the header too


def test_replay_tells_a_fixed_protocol_from_an_unchanged_one(tmp_path, capsys):
    """A reproducer records the digest of its protocol's source. Replayed after the protocol
    was fixed, a failure that no longer happens, or whose actions no longer apply (the
    fixed protocol's interleaving points moved), is said to be so, exit 0; before, the
    second was "does not apply to this model", exit 2 (a protocol author's review,
    2026-12-04). With the source unchanged a replay that passes says what may be wrong."""
    from conformance.litmus import corpus, run
    from conformance.registry import load_protocol
    from conformance.reproducer import save

    proto = tmp_path / "my_flush.py"
    proto.write_text("from protocols.linux_4_3 import Linux43\n\n\nclass MyFlush(Linux43):\n"
                     "    pass\n")
    sc = next(s for s in corpus() if s.name == "reclaim-vs-mprotect-2017")
    f = run(sc, load_protocol(str(proto)))
    assert f is not None and f.rule == "S3"
    path = save(f, str(tmp_path / "r.json"), picture=False)
    data = json.load(open(path))
    assert len(data["protocol_source_sha256"]) == 64
    assert main(["replay", path]) == 1  # unchanged: the failure again
    capsys.readouterr()
    shorter = tmp_path / "shorter.json"  # unchanged source, actions that pass
    shorter.write_text(json.dumps(dict(data, actions=data["actions"][:1])))
    assert main(["replay", str(shorter)]) == 0
    out = capsys.readouterr().out
    assert "PASS: the recorded failure did not reproduce\n" in out
    assert "the protocol's source is the recorded one" in out
    proto.write_text("from protocols.linux import Linux\n\n\nclass MyFlush(Linux):\n    pass\n")
    # fixed; in a new process, as a user runs it (this one keeps the module it loaded)
    r = subprocess.run([sys.executable, "-m", "conformance.cli", "replay", path],
                       capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "the protocol's source differs from the recorded one" in out
    assert "the recorded failure did not reproduce" in out


# -- outputs that cannot be written after the run ----------------------------------------

FAILING = ["certify", "linux_4_3", "--seed", "1", "--examples", "300", "--jobs", "1",
           "--database", "none"]


def _kept(capsys, argv, code: int, verdict: str, *unwritten) -> str:
    """Run the CLI: exit ``code``, ``verdict`` on stdout, and on stderr exactly one line per
    output not written, each naming its path and the OS error (no traceback)."""
    assert main(argv) == code, argv
    out, err = capsys.readouterr()
    assert verdict in out, out
    assert "Traceback" not in err and err.count("\n") == len(unwritten), err
    for line in unwritten:
        assert f"flushcheck: error: {line}\n" in err, err
    return out


def test_an_unwritable_reproducer_keeps_the_verdict(tmp_path, capsys):
    """The reproducer's path made a directory (``s2/<name>-0.json``): the FAIL is printed,
    exit 1, with one line naming the path; it was a traceback in place of the verdict,
    exit 3. Its scenario (``.litmus``) the same, and a certificate with a PASS (exit 2:
    the certificate asked for is not there)."""
    repro = tmp_path / "r"
    (repro / "linux_4_3-1.json").mkdir(parents=True)
    out = _kept(capsys, FAILING + ["--repro-dir", str(repro)], 1, "verdict   FAIL: S3",
                f"cannot write the reproducer {repro}/linux_4_3-1.json: Is a directory")
    assert "reproducer:" not in out
    (repro / "linux_4_3-1.json").rmdir()
    (repro / "linux_4_3-1.litmus").mkdir()
    out = _kept(capsys, FAILING + ["--repro-dir", str(repro)], 1, "verdict   FAIL: S3",
                f"cannot write the scenario {repro}/linux_4_3-1.litmus: Is a directory")
    assert f"reproducer: {repro}/linux_4_3-1.json" in out
    cert = tmp_path / "c"
    (cert / "certificate.json").mkdir(parents=True)
    _kept(capsys, ["certify", "linux", "--examples", "20", "--jobs", "1", "--database", "none",
                   "--out", str(cert)], 2, "verdict   PASS",
          f"cannot write the certificate {cert}/certificate.json: Is a directory")


def test_a_full_disk_keeps_the_verdict_of_every_command(tmp_path, capsys, monkeypatch):
    """No space left for a reproducer (certify, certify --bound, bound, explore, soundness):
    each verdict is printed with its exit status and one line per file not written."""
    import errno

    from conformance import reproducer

    def full(failure, path, seed=None, picture=True):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(reproducer, "save", full)
    r = str(tmp_path)
    _kept(capsys, FAILING + ["--repro-dir", r], 1, "verdict   FAIL: S3",
          f"cannot write the reproducer {r}/linux_4_3-1.json: No space left on device")
    _kept(capsys, ["bound", "linux_4_3", "-k", "2", "-q", "--repro-dir", r], 1,
          "verdict   FAIL: S3", f"cannot write the reproducer {r}/bound-linux_4_3-K2.json: "
          "No space left on device")
    _kept(capsys, FAILING + ["--bound", "2", "--repro-dir", r], 1, "overall   FAIL: S3",
          f"cannot write the reproducer {r}/linux_4_3-1.json: No space left on device",
          f"cannot write the reproducer {r}/bound-linux_4_3-K2.json: No space left on device")
    two4 = os.path.join(REPO, "litmus", "bug-2.4-reclaim-vs-mprotect.litmus")
    _kept(capsys, ["explore", two4, "--protocol", "linux_4_3", "--repro-dir", r], 1,
          "verdict   FAIL: S3", f"cannot write the reproducer {r}/explore-bug-2.4-reclaim-vs-"
          "mprotect-linux_4_3.json: No space left on device")
    assert main(["soundness", "--protocol", "linux_4_3", "--config-set", "quick", "--budget",
                 "1", "--jobs", "1", "--shrink-seconds", "1", "--repro-dir", r]) == 1
    out, err = capsys.readouterr()
    assert "FAIL" in out and "Traceback" not in err
    assert f"flushcheck: error: cannot write the reproducer {r}/soundness-linux_4_3-" in err
    from conformance import picture  # no verdict to keep: one line, exit 2

    monkeypatch.setattr(picture, "write_html", lambda what, out, **kw: full(None, out))
    fixture = os.path.join(REPO, "tests", "fixtures", "replay", "linux_4_3-1.json")
    assert main(["picture", fixture, "-o", f"{r}/p.html"]) == 2
    assert capsys.readouterr().err == (f"flushcheck: error: cannot write the picture {r}/p.html: "
                                       "No space left on device\n")


def test_reproducers_of_runs_asking_different_things_are_kept_apart(tmp_path, capsys):
    """certify names a reproducer by what changes the failure a seed finds: the F1 run
    (``--config``) and the ``--strict`` run of the same protocol and seed keep both files,
    where the second overwrote the first (a user review, 2026-12-05); a ``--config`` equal
    to the default machine adds nothing to the name."""
    import argparse

    from conformance.cli import _repro_stem
    from conformance.config import DEFAULT, MachineConfig

    repro = tmp_path / "repro"
    common = ["--budget", "20", "--jobs", "1", "--database", "none", "--repro-dir", str(repro)]
    assert main(["certify", "linux", "--config", "reclaim_activates_dirty_file=true"]
                + common) == 1
    assert main(["certify", "linux", "--strict"] + common) == 1
    capsys.readouterr()
    saved = sorted(p.name for p in repro.glob("*.json"))
    assert len(saved) == 2 and "linux-0-strict.json" in saved, saved
    rules = sorted(json.loads((repro / n).read_text())["rule"] for n in saved)
    assert rules == ["O1-strict", "S2"], rules
    a = argparse.Namespace(strict=False, engine="walk", config=["ncpus=3"], steps=50, chunk=None)
    assert _repro_stem(a, "linux", 0, MachineConfig(ncpus=3), None) == "linux-0"
    assert DEFAULT == MachineConfig(ncpus=3)
    a.engine = "hypothesis"
    assert _repro_stem(a, "linux", 7, DEFAULT, "small") == "linux-7-small-hypothesis"
    # every config field counts (describe() leaves max_op_steps out); --steps only for the
    # engine that reads it, --chunk only when not the engine's default (a review)
    import attrs

    a = argparse.Namespace(strict=False, engine="walk", config=["max_op_steps=500"], steps=10,
                           chunk=500)
    five, nine = (_repro_stem(a, "linux", 0, attrs.evolve(DEFAULT, max_op_steps=n), None)
                  for n in (500, 900))
    assert five != nine and five.startswith("linux-0-") and nine.startswith("linux-0-")
    assert _repro_stem(a, "linux", 0, DEFAULT, None) == "linux-0"


def test_the_report_pins_the_protocol_source_and_a_dirty_checkout(monkeypatch):
    """A verdict pasted into a review says which source it judged: the report names the
    protocol's files and the digest its reproducers record, and the commit line says when
    the checkout has uncommitted changes (a user review, 2026-12-05: a linux.py with its
    flush removed printed the same commit line as the clean tree, and no digest)."""
    import conformance.certificate as certificate
    from conformance.certificate import source_digest
    from conformance.certify import Result
    from conformance.cli import _commit_shown
    from conformance.registry import load_protocol
    from conformance.report import certify_report

    cls = load_protocol("linux_4_13")
    text = certify_report(Result(protocol="linux_4_13", seed=0, budget_s=1), cls, "abc", [])
    line = next(ln for ln in text.splitlines() if ln.startswith("  source "))
    assert source_digest(cls)[:16] in line
    assert "protocols/linux_4_13.py" in line and "protocols/linux.py" in line
    monkeypatch.setattr(certificate, "tree_dirty", lambda: True)
    assert _commit_shown("abc") == "abc (with uncommitted changes)"
    monkeypatch.setattr(certificate, "tree_dirty", lambda: False)
    assert _commit_shown("abc") == "abc"


def test_a_hook_name_typo_is_in_the_report(tmp_path, capsys):
    """A variant whose one change is a misspelt hook certifies as mainline; the warning went
    to stderr only, so the report a review gets said PASS with no word of it (a user
    review, 2026-12-05). The report now carries it; a correct name gives no warning line."""
    typo = tmp_path / "typo_variant.py"
    typo.write_text("from protocols.linux import Linux\n\n\nclass Typo(Linux):\n"
                    "    def try_to_unmap_flsh(self, task):\n        pass\n")
    common = ["--examples", "20", "--jobs", "1", "--database", "none",
              "--repro-dir", str(tmp_path / "repro")]
    assert main(["certify", str(typo)] + common) == 0
    out = capsys.readouterr().out
    assert ("  warning   typo_variant.try_to_unmap_flsh is no Protocol hook and is never called "
            "(did you mean try_to_unmap_flush?)") in out, out
    assert main(["certify", "linux"] + common) == 0
    assert "  warning " not in capsys.readouterr().out


def test_sigterm_reports_what_ran_and_leaves_no_temporary_files(tmp_path):
    """SIGTERM (a CI job's timeout) to certify is taken as Ctrl-C: the report of what ran,
    exit 143, no ``flushcheck-found-*`` directory left behind; before, the process ended
    with no word and left one (a user review, 2026-12-05)."""
    import signal
    import time

    env = dict(os.environ, TMPDIR=str(tmp_path))
    p = subprocess.Popen([sys.executable, "-m", "conformance.cli", "certify", "linux",
                          "--budget", "120", "--jobs", "2", "--database", "none",
                          "--repro-dir", str(tmp_path / "repro")], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # chunks running: certify's filing directory exists once its workers are started (the
    # handler is in place long before); a fixed sleep could signal a slow start too early
    deadline = time.monotonic() + 90
    while not list(tmp_path.glob("flushcheck-found-*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 143, (p.returncode, out, err)
    assert "INTERRUPTED: no verdict" in out and "SIGTERM" in out, out
    assert not list(tmp_path.glob("flushcheck-found-*")), list(tmp_path.iterdir())


def test_the_power_line_says_what_its_table_was_not_measured_on():
    """The power table was measured on the default machine without --strict; a PASS on
    another config or with --strict says so (it quoted the table as if it applied)."""
    import attrs

    from conformance.certify import Result
    from conformance.config import DEFAULT
    from conformance.registry import load_protocol
    from conformance.report import certify_report

    def power(**kw) -> str:
        res = Result(protocol="linux", seed=0, budget_s=60, **kw)
        res.examples, res.steps, res.chunks = 500, 60_000, 1
        text = certify_report(res, load_protocol("linux"), "abc", [])
        return next(ln for ln in text.splitlines() if ln.startswith("  power "))

    assert "not this run's config" not in power(config=DEFAULT)
    assert "not this run's config" in power(config=attrs.evolve(DEFAULT, ncpus=4))
    assert "measured without --strict" in power(config=DEFAULT, strict=True)


def test_the_verdict_says_what_the_module_declares(tmp_path, capsys):
    """A module that declares the rule it breaks (``EXPECTED_VIOLATION``) gets it named on
    the verdict line: found, or, on a PASS, not found in this run; linux declares none."""
    common = ["--jobs", "1", "--database", "none", "--repro-dir", str(tmp_path)]
    # a seed whose failure shrinks in seconds (seed 0's shrink took a minute of CI; seed 3
    # with 2,000 examples until free_pgtables freed tables, 2026-12-06, which it no longer
    # fails; seed 8's failure is found at 182 but takes the explorer a minute; seed 6
    # until a shared write fault got an interleaving point after its install, 16:00; seed
    # 5 until 2026-12-07 15:00, when tlb_end_vma stopped flushing, MMU_GATHER_MERGE_VMAS:
    # seeds 0-11 at 1,000 examples, S3 at 1, 8 and 11, in 19, 42 and 1.2 s)
    assert main(["certify", "linux_4_13", "--seed", "11", "--examples", "1000"] + common) == 1
    assert "FAIL: S3 violated   (as the module declares: EXPECTED_VIOLATION = 'S3')" \
        in capsys.readouterr().out
    assert main(["certify", "linux_4_13", "--examples", "5"] + common) == 0
    assert "(the module declares EXPECTED_VIOLATION = 'S3': not found in this run)" \
        in capsys.readouterr().out
    assert main(["certify", "linux", "--examples", "5"] + common) == 0
    assert "declares" not in capsys.readouterr().out


def test_a_second_sigterm_ends_the_process_as_sigterm_always_did():
    """The first SIGTERM is a KeyboardInterrupt (the report of what ran); if its wind-down
    does not end the process (a protocol's bare ``except:`` swallowed it), a second one
    ends it by the signal, where it was ignored (a review, 2026-12-05)."""
    code = ("import os, signal, time\n"
            "from conformance.cli import _terminate_as_interrupt\n"
            "_terminate_as_interrupt()\n"
            "try:\n"
            "    os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)\n"
            "except KeyboardInterrupt:\n"
            "    print('first', flush=True)\n"
            "os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)\n"
            "print('still alive', flush=True)\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=60)
    assert p.stdout == "first\n" and p.returncode == -15, (p.returncode, p.stdout, p.stderr)


def test_explore_keeps_a_strict_or_preemption_bounded_counterexample_apart(tmp_path, capsys):
    """explore's reproducer name carries --strict and --preemptions, as certify's carries
    what changes its failure: a bounded run no longer overwrites the unbounded one's file."""
    scen = os.path.join(REPO, "litmus", "bug-2.7-lost-pending-flush.litmus")
    common = ["explore", scen, "--protocol", "linux_4_13", "--repro-dir", str(tmp_path)]
    assert main(common) == 1
    assert main(common + ["--preemptions", "2"]) == 1
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        "explore-bug-2.7-lost-pending-flush-linux_4_13-p2.json",
        "explore-bug-2.7-lost-pending-flush-linux_4_13.json"]


def test_a_long_shrink_is_said_in_its_own_line():
    """``certify --budget 1`` took 90 s with nothing to say the shrink, which the budget does
    not bound, took 88 of them (a researcher's review, 2026-12-06). A shrink of 10 s or more
    gets a ``shrink`` line; a short one none."""
    from conformance.certify import certify
    from conformance.registry import load_protocol
    from conformance.report import SHRINK_SAID_S, certify_report

    cls = load_protocol("linux_4_3")
    res = certify(cls, budget_s=None, max_examples=50, seed=0)
    assert res.failure is not None and res.first_failure_s is not None
    for after, said in ((SHRINK_SAID_S + 30, True), (SHRINK_SAID_S / 2, False)):
        res.elapsed_s = res.first_failure_s + after
        text = certify_report(res, cls, "abc", [])
        assert (f"\n  shrink    the run went on {after:.1f} s after the failure was found, "
                "shrinking it: a shrink is bounded by its candidate runs" in text) is said, text


def test_a_failure_that_needs_nested_reclaim_says_6_12_cannot_nest():
    """The walk draws reclaim nested in reclaim (the 2016 bug's path, kernel-notes 2.3) for
    every protocol, which 6.12 cannot run (PF_MEMALLOC; a review, 2026-12-07): a FAIL whose
    shrunk actions keep a nested pass says so in a caveat line; one without it does not."""
    from conformance.certify import certify
    from conformance.registry import load_protocol
    from conformance.report import NESTED_RECLAIM_CAVEAT, certify_report, nests_reclaim

    for name, says in (("hist_2_3_nested_reclaim", True), ("linux_4_3", False)):
        cls = load_protocol(name)
        res = certify(cls, budget_s=None, max_examples=2000, seed=1)
        assert res.failures, name
        assert nests_reclaim(res.failure.machine) is says, res.failure.machine.actions
        text = certify_report(res, cls, "c", [])
        assert (f"  caveat    {NESTED_RECLAIM_CAVEAT}" in text) is says, text
