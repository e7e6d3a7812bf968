"""Certificates (``certify --out``, ``certify --reproduce``), profiles with several machine
configs, and the progress line (stderr, terminals only)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from conformance.certificate import reproduce
from conformance.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300, **kw)


def test_pass_certificate_round_trip_of_a_time_budget(tmp_path, capsys):
    """A PASS under a time budget records its chunks; --reproduce runs exactly that many
    (the same examples and steps) and reaches PASS again."""
    out = tmp_path / "cert"
    code = main(["certify", "linux", "--budget", "2", "--chunk", "100", "--jobs", "1",
                 "--profile", "ci", "--out", str(out), "--repro-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr().out
    cert = json.load(open(out / "certificate.json"))
    assert cert["verdict"] == "PASS" and cert["failure"] is None
    run = cert["run"]
    assert run["budget_s"] == 2 and run["max_examples"] is None and run["chunks"] >= 1
    assert run["chunk"] == 100 and run["engine"] == "walk"
    assert len(cert["protocol"]["sha256"]) == 64
    assert cert["protocol"]["path"].endswith("protocols/linux.py")
    assert set(cert["checks"]) == {"S1", "S2", "S3", "C1", "O1"} and cert["checks"]["C1"] > 0
    assert cert["coverage"]["hooks"]["try_to_unmap_flush"]
    assert cert["litmus"] and all(c["ok"] for c in cert["litmus"])
    assert cert["python"] and cert["hypothesis"] and cert["flushcheck"]["commit"]
    assert cert["flushcheck"]["dirty"] in (True, False, None)
    md = open(out / "certificate.md").read()
    assert "**Verdict: PASS**" in md and "## Hooks reached" in md and "## Litmus corpus" in md
    assert cert["scope"] and cert["scope"][0].startswith("not finding F1")
    assert "| scope | not finding F1" in md
    capsys.readouterr()
    assert main(["certify", "--reproduce", str(out / "certificate.json"), "--jobs", "2"]) == 0
    text = capsys.readouterr().out
    assert "verdict   MATCHED" in text and "source the same" in text
    rep = reproduce(str(out / "certificate.json"))
    # other sessions may commit meanwhile: only a new commit may be noted
    assert rep.matched and all(n.startswith("flushcheck commit") for n in rep.notes)
    assert (rep.result.examples, rep.result.steps, rep.result.chunks) == (
        run["examples"], run["steps"], run["chunks"])


def test_fail_certificate_round_trip(tmp_path, capsys):
    """A FAIL (the mutant linux_4_3, seed 1) carries its timeline, and its reproducer,
    picture and litmus scenario copied beside the certificate; --reproduce fails the same."""
    out = tmp_path / "cert"
    code = main(["certify", "linux_4_3", "--seed", "1", "--budget", "60", "--jobs", "1",
                 "--profile", "ci", "--out", str(out), "--repro-dir", str(tmp_path / "repro")])
    assert code == 1
    cert = json.load(open(out / "certificate.json"))
    assert cert["verdict"] == "FAIL: S3"
    fail = cert["failure"]
    assert fail["rule"] == "S3" and "\nstep CPU" in fail["timeline"]
    assert fail["files"] == {"reproducer": "linux_4_3-1.json", "picture": "linux_4_3-1.html",
                             "scenario": "linux_4_3-1.litmus"}
    for name in fail["files"].values():
        assert (out / name).exists()
    md = open(out / "certificate.md").read()
    assert "[linux_4_3-1.html](linux_4_3-1.html)" in md and "flushcheck replay" in md
    capsys.readouterr()
    assert main(["certify", "--reproduce", str(out / "certificate.json"), "--jobs", "1"]) == 0
    assert "now       FAIL: S3" in capsys.readouterr().out
    cert["verdict"] = "PASS"  # a certificate that says otherwise: the failure is shown
    json.dump(cert, open(out / "certificate.json", "w"))
    assert main(["certify", "--reproduce", str(out / "certificate.json"), "--jobs", "1"]) == 1
    text = capsys.readouterr().out
    assert "DID NOT MATCH" in text and "\nstep CPU" in text.split("DID NOT MATCH")[1]


def test_reproduce_says_when_it_does_not_match(tmp_path, capsys):
    """A certificate whose verdict or source hash is not what the run gives: exit 1, and the
    changed source is named."""
    out = tmp_path / "cert"
    assert main(["certify", "linux", "--examples", "30", "--chunk", "15", "--jobs", "1",
                 "--profile", "ci", "--out", str(out), "--repro-dir", str(tmp_path)]) == 0
    path = out / "certificate.json"
    cert = json.load(open(path))
    cert["verdict"] = "FAIL: S3"
    cert["protocol"]["sha256"] = "0" * 64
    path.write_text(json.dumps(cert))
    capsys.readouterr()
    assert main(["certify", "--reproduce", str(path), "--jobs", "1"]) == 1
    text = capsys.readouterr().out
    assert "DID NOT MATCH" in text and "source DIFFERS" in text
    assert "the protocol's source differs" in text


def test_certify_needs_a_protocol_or_a_certificate(tmp_path, capsys):
    assert main(["certify"]) == 2
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    assert main(["certify", "--reproduce", str(bad)]) == 2
    assert "not a flushcheck certificate" in capsys.readouterr().err


def test_profile_runs_each_of_its_configs(tmp_path):
    """thorough certifies under three machine configs, a report and a certificate each,
    then one line per config."""
    r = run_cli("certify", "linux", "--profile", "thorough", "--budget", "1", "--jobs", "1",
                "--out", str(tmp_path / "c"), "--repro-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("default", "cpus2-empty", "big"):
        assert f"config {name}" in r.stdout
        assert (tmp_path / "c" / name / "certificate.json").exists()
    assert "cpus=2 " in r.stdout and "3 configs" in r.stdout
    assert r.stdout.count("verdict   PASS") == 3


def test_profiles_for_pytest():
    """The pytest plugin's Hypothesis profiles: thorough and nightly raise the examples."""
    from hypothesis import settings

    from conformance.database import profile_examples, register_profiles

    register_profiles()
    assert settings.get_profile("thorough").max_examples == profile_examples("thorough") == 2000
    assert settings.get_profile("nightly").max_examples == 10_000
    assert settings.get_profile("ci").derandomize


def test_no_progress_when_not_a_terminal(tmp_path):
    """Piped, a run longer than the progress delay writes nothing on stderr."""
    r = run_cli("certify", "linux", "--budget", "3", "--jobs", "1", "--profile", "ci",
                "--repro-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == ""
    assert "verdict   PASS" in r.stdout


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_on_a_terminal(tmp_path):
    """stderr a terminal: the progress line (examples, steps, rules checked, jobs busy)
    appears after the delay, on stderr only; stdout holds the report."""
    master, slave = os.openpty()
    env = dict(os.environ, TERM="xterm", COLUMNS="160")
    p = subprocess.Popen([sys.executable, "-m", "conformance.cli", "certify", "linux",
                          "--budget", "4", "--jobs", "1", "--profile", "ci",
                          "--repro-dir", str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                         stderr=slave, text=True, env=env)
    os.close(slave)
    err = bytearray()

    def drain():  # read while it runs: a full pty buffer would block the child
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                return
            if not chunk:
                return
            err.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out, _ = p.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(master)
    assert p.returncode == 0
    assert b"examples" in err and b"rules checked" in err and b"jobs busy" in err
    assert "rules checked" not in out and "verdict   PASS" in out


def test_the_certificate_carries_the_power_line_and_the_warnings(tmp_path, capsys):
    """A PASS certificate states what its budget is worth (the report's power line) and any
    misspelt hook's warning: both were in the report only (a user review, 2026-12-05)."""
    import json

    from conformance.cli import main

    typo = tmp_path / "typo_cert.py"
    typo.write_text("from protocols.linux import Linux\n\n\nclass Typo(Linux):\n"
                    "    def try_to_unmap_flsh(self, task):\n        pass\n")
    out = tmp_path / "cert"
    assert main(["certify", str(typo), "--budget", "2", "--jobs", "1", "--database", "none",
                 "--repro-dir", str(tmp_path / "r"), "--out", str(out)]) == 0
    report = capsys.readouterr().out
    cert = json.loads((out / "certificate.json").read_text())
    power = next(ln for ln in report.splitlines() if ln.startswith("  power "))
    assert cert["power"] == power.split("power", 1)[1].strip()
    assert cert["warnings"] == ["typo_cert.try_to_unmap_flsh is no Protocol hook and is never "
                                "called (did you mean try_to_unmap_flush?)"]
    md = (out / "certificate.md").read_text()
    assert "| power | " in md and "| warning | typo_cert.try_to_unmap_flsh" in md
