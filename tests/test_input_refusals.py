"""Bad input is one line on stderr and exit 2, and never a run without end: a certificate
whose optional fields are null or missing, counts beyond their documented limits, a machine
too large for the bounded check, a Dask scheduler address that is no scheduler, a directory
given as a protocol file, an empty output path."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conformance.certificate import CERT_FIELDS
from conformance.cli import EXIT_FAIL, EXIT_PASS, EXIT_USAGE, main
from conformance.errors import UsageError


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- 1. a certificate's optional fields, null or missing ---------------------------------
@pytest.fixture(scope="module")
def bounded_certificate(tmp_path_factory):
    """A real certificate with a bounded check (linux, PASS): its data."""
    out = tmp_path_factory.mktemp("cert")
    assert main(["certify", "linux", "--examples", "5", "--chunk", "5", "--jobs", "1",
                 "--database", "none", "--repro-dir", str(out / "repro"), "--bound", "1",
                 "--out", str(out / "c")]) == EXIT_PASS
    with open(out / "c" / "certificate.json") as fh:
        return json.load(fh)


OPTIONAL = [f[:-1] for f, _ in CERT_FIELDS if f.endswith("?")]


@pytest.mark.parametrize("how", ["null", "missing"])
@pytest.mark.parametrize("field", OPTIONAL)
def test_an_optional_certificate_field_null_or_missing_is_no_crash(
        bounded_certificate, tmp_path, capsys, field, how):
    """Every field the certificate's table lets be missing or null (a ``?`` row) is read
    as such by the re-run: ``protocol.sources: null`` was an AttributeError, a missing
    ``run.max_examples`` or ``bounded.fail_k`` a KeyError (exit 3). The bounded record
    is made a stopped one, so that the re-run reads ``stopped`` too."""
    cert = json.loads(json.dumps(bounded_certificate))
    cert["bounded"]["passed"] = False
    cert["bounded"]["stopped"] = "budget"
    *parents, key = field.split(".")
    obj = cert
    for p in parents:
        obj = obj[p]
    if how == "null":
        obj[key] = None
    else:
        obj.pop(key)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cert))
    assert main(["certify", "--reproduce", str(path), "--jobs", "1"]) in (EXIT_PASS, EXIT_FAIL)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err


# -- 2. counts beyond their limits --------------------------------------------------------
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HUGE = "999999999999"


def _cli(tmp_path, *args, timeout=30):
    """``flushcheck ARGS`` in a child process in ``tmp_path`` (its repro/ goes there), which
    a run without end cannot hang: the test fails after ``timeout`` seconds instead."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [REPO] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    try:
        return subprocess.run([sys.executable, "-m", "conformance.cli", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"flushcheck {' '.join(args)} still ran after {timeout} s")


@pytest.mark.parametrize("args,option,most", [
    (["soundness", "--budget", "0.2", "--protocol", "linux", "--actions", HUGE, "--jobs", "1",
      "--config-set", "quick"], "--actions", "10,000"),
    (["cost", "linux", "--ops", HUGE], "--ops", "1,000,000"),
    (["certify", "linux", "--examples", HUGE, "--jobs", "1", "--database", "none"],
     "--examples", "100,000,000"),
    (["certify", "linux", "--budget", "1", "--chunk", HUGE, "--jobs", "1", "--database",
      "none"], "--chunk", "10,000"),
    (["certify", "linux", "--budget", "1", "--engine", "hypothesis", "--chunk", "1001",
      "--jobs", "1", "--database", "none"], "--chunk", "1,000"),
    (["certify", "linux", "--budget", "1", "--engine", "hypothesis", "--steps", HUGE, "--jobs",
      "1", "--database", "none"], "--steps", "1,000"),
], ids=["soundness-actions", "cost-ops", "certify-examples", "certify-chunk-walk",
        "certify-chunk-hypothesis", "certify-steps"])
def test_a_count_beyond_its_limit_is_one_line(tmp_path, args, option, most):
    """A count no budget can stop (an example of 10**12 actions, a cost cell of 10**14
    operations, a chunk of 10**12 examples, which finishes after the budget) is refused in
    one line naming the option and its limit, exit 2; soundness and cost ran past 40 s."""
    r = _cli(tmp_path, *args)
    assert r.returncode == EXIT_USAGE, r.stdout + r.stderr
    line = _one_line(r.stderr)
    assert f"{option} " in line and f"at most {most} " in line, line


def test_the_count_limits_themselves_are_allowed():
    from conformance.cli import COUNT_LIMITS, require_at_most

    for option, (most, _what) in COUNT_LIMITS.items():
        require_at_most(option, most)
        with pytest.raises(UsageError, match=f"^{option} {most + 1} is too many"):
            require_at_most(option, most + 1)


REFUSED = "flushcheck: error: --max-states -5: at least 1 state"


@pytest.mark.parametrize("file", ["litmus/bug-2.4-reclaim-vs-mprotect.litmus",
                                  "tests/fixtures/replay"])
def test_picture_refuses_max_states_below_one_as_explore_does(tmp_path, capsys, file):
    """picture read ``--max-states -5`` as a search of "the first -5 states"; explore and
    litmus refuse it. The same line for all three, before the file is read."""
    path = os.path.join(REPO, file)
    if os.path.isdir(path):  # any saved reproducer
        path = os.path.join(path, min(f for f in os.listdir(path) if f.endswith(".json")))
    assert main(["picture", path, "--max-states", "-5", "-o", str(tmp_path / "p.html")]) \
        == EXIT_USAGE
    assert _one_line(capsys.readouterr().err) == REFUSED
    assert main(["explore", os.path.join(REPO, "litmus/bug-2.4-reclaim-vs-mprotect.litmus"),
                 "--protocol", "linux", "--max-states", "-5"]) == EXIT_USAGE
    assert _one_line(capsys.readouterr().err) == REFUSED


# -- 3. a machine too large for the bounded check -----------------------------------------
def test_a_machine_too_large_for_the_bounded_check_is_one_line(tmp_path):
    """The issue's command built the root state's choices for minutes, --budget unread."""
    r = _cli(tmp_path, "bound", "linux", "-k", "1", "--config", "ncpus=64,nmms=32,vpages=1024",
             "--budget", "5")
    assert r.returncode == EXIT_USAGE, r.stdout + r.stderr
    line = _one_line(r.stderr)
    assert "ncpus=64" in line and "at most ncpus=8" in line, line


def test_every_bounded_limit_is_refused_naming_its_field():
    from conformance.boundcli import BOUND_LIMITS, bound_config

    for key, most in BOUND_LIMITS.items():
        assert getattr(bound_config([f"{key}={most}"]), key) == most
        with pytest.raises(UsageError, match=f"^bad --config: {key}={most + 1} is too large "
                                             f"for the bounded check: at most {key}={most} "):
            bound_config([f"{key}={most + 1}"])


def test_the_bounded_limits_take_every_machine_the_repo_searches():
    """Every ``bound ... --config`` in the docs and the README, and bench/bounded.py's
    largest CPU count, is within the limits."""
    import re

    from conformance.boundcli import bound_config

    found = []
    for name in ["README.md"] + [os.path.join("docs", f) for f in os.listdir(
            os.path.join(REPO, "docs")) if f.endswith(".md")]:
        with open(os.path.join(REPO, name)) as fh:
            found += re.findall(r"flushcheck bound [^`\n]*?--config ([\w=,]+)", fh.read())
    assert len(found) >= 4, found
    for pairs in found + ["ncpus=3"]:  # bench/bounded.py --cpus 2 and 3
        bound_config([pairs])


def test_certify_bound_refuses_it_before_the_random_search(tmp_path):
    r = _cli(tmp_path, "certify", "linux", "--examples", "1", "--jobs", "1", "--database",
             "none", "--bound", "1", "--config", "vpages=17")
    assert r.returncode == EXIT_USAGE and r.stdout == "", r.stdout + r.stderr
    assert "vpages=17 is too large for the bounded check" in _one_line(r.stderr)


def test_a_certificate_with_a_bounded_machine_too_large_is_damaged(bounded_certificate,
                                                                   tmp_path):
    cert = json.loads(json.dumps(bounded_certificate))
    cert["bounded"]["config"]["ncpus"] = 9
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cert))
    r = _cli(tmp_path, "certify", "--reproduce", str(path), "--jobs", "1")
    assert r.returncode == EXIT_USAGE, r.stdout + r.stderr
    line = _one_line(r.stderr)
    assert "damaged certificate: bounded.config: ncpus=9 is too large" in line, line


@pytest.mark.parametrize("field,value,said", [
    ("chunks", 10**12, "run.chunks is 1,000,000,000,000 but run.examples only 5"),
    ("chunk", 10**6, "run.chunk is 1,000,000"),
    ("steps_per_example", 10**6, "run.steps_per_example is 1,000,000")])
def test_a_certificate_recording_a_run_beyond_certifys_limits_is_damaged(
        bounded_certificate, tmp_path, field, value, said):
    """``certify --reproduce`` re-runs the recorded chunks: a damaged ``run.chunks`` of
    10**12 re-ran without end (a review, 2026-12-06). Refused in one line: more chunks than
    examples, or a ``--chunk`` or ``--steps`` certify refuses."""
    cert = json.loads(json.dumps(bounded_certificate))
    cert["run"][field] = value
    cert["run"]["max_examples"] = None  # a time budget's run: its chunks are its budget
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cert))
    r = _cli(tmp_path, "certify", "--reproduce", str(path), "--jobs", "1")
    assert r.returncode == EXIT_USAGE, r.stdout + r.stderr
    line = _one_line(r.stderr)
    assert f"damaged certificate: {said}" in line, line


# -- 4. a Dask scheduler address that is no scheduler -------------------------------------
@pytest.fixture
def not_a_scheduler():
    """A TCP server that answers every connection with bytes no Dask message starts with
    (a web server, say, at the address given): its address."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.2)
    stop, conns = threading.Event(), []

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:  # the accept's timeout: look at stop again
                continue
            conn.sendall(b"\xff" * 64)
            conns.append(conn)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join()
    for conn in conns:
        conn.close()
    srv.close()


@pytest.mark.parametrize("where", ["bogus", "free port", "no scheduler"])
def test_a_bad_scheduler_address_is_one_line_and_quick(tmp_path, request, where):
    """An address without a port printed its line, waited 40 s, then a 7-line ``Exception
    ignored in: Client.__del__ ... TimeoutError``; a port with nothing listening took 20 s;
    a server that is no scheduler was a MemoryError traceback and exit 3. Each is one line,
    exit 2, within the connect timeout (5 s) and the process's start."""
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    import socket
    import time

    if where == "free port":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    else:
        address = request.getfixturevalue("not_a_scheduler") if where == "no scheduler" \
            else "bogus"
    t0 = time.monotonic()
    r = _cli(tmp_path, "certify", "linux", "--examples", "1", "--jobs", "1", "--scheduler",
             address, "--database", "none", timeout=60)
    took = time.monotonic() - t0
    assert r.returncode == EXIT_USAGE, r.stdout + r.stderr
    assert f"cannot reach the Dask scheduler at {address}: " in _one_line(r.stderr)
    assert took < 15, f"{took:.1f} s"


# -- 5. a directory as a protocol, an empty path ------------------------------------------
LITMUS = os.path.join(REPO, "litmus", "bug-2.4-reclaim-vs-mprotect.litmus")


@pytest.mark.parametrize("args", [
    ["certify", "{dir}"], ["bound", "{dir}"], ["explore", LITMUS, "--protocol", "{dir}"],
    ["new", "mine", "--base", "{dir}"], ["litmus", "bug-2.4-reclaim-vs-mprotect", "--protocol",
                                          "{dir}"], ["cost", "{dir}"],
    ["cost", "linux", "--baseline", "{dir}/"],
], ids=["certify", "bound", "explore", "new", "litmus", "cost", "cost-baseline"])
def test_a_directory_as_a_protocol_says_it_is_a_directory(tmp_path, monkeypatch, capsys, args):
    """``certify /tmp`` said "protocol file /tmp does not exist"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "protos").mkdir()
    words = [a.replace("{dir}", str(tmp_path / "protos")) for a in args]
    try:
        code = main(words)
    except SystemExit as exc:  # cost's own parser exits as argparse does
        code = exc.code
    assert code == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert f"protocol file {tmp_path / 'protos'} is a directory: give a protocol's .py file" \
        in line, line


QUICK_CERTIFY = ["certify", "linux", "--examples", "1", "--jobs", "1"]


@pytest.mark.parametrize("args,option", [
    (QUICK_CERTIFY + ["--database", "none", "--out", ""], "--out"),
    (QUICK_CERTIFY + ["--database", "none", "--repro-dir", ""], "--repro-dir"),
    (QUICK_CERTIFY + ["--database", ""], "--database"),
    (["certify", "--reproduce", ""], "--reproduce"),
    (["soundness", "--budget", "0.2", "--config-set", "quick", "--jobs", "1", "--protocol",
      "linux", "--markdown", ""], "--markdown"),
    (["bound", "linux", "-k", "1", "--repro-dir", ""], "--repro-dir"),
    (["explore", LITMUS, "--protocol", "linux_4_3", "--repro-dir", ""], "--repro-dir"),
    (["picture", "{repro}", "-o", ""], "--output"),
    (["luf-doc", "--output", ""], "--output"),
    (["new", "mine", "--dir", ""], "--dir"),
    (["litmus", "bug-2.4-reclaim-vs-mprotect", "--protocol", "linux", "--dir", ""], "--dir"),
], ids=lambda v: v if isinstance(v, str) else " ".join(v[:1] + v[-2:-1]))
def test_an_empty_path_is_refused_in_one_line(tmp_path, monkeypatch, capsys, args, option):
    """An empty path was read as no path: ``certify --out ''`` wrote no certificate,
    ``luf-doc --output ''`` rewrote docs/LUF.md, ``--repro-dir ''`` saved into the current
    directory, ``picture -o ''`` wrote beside the reproducer, all without a word."""
    import shutil

    from conformance import lufdoc

    monkeypatch.chdir(tmp_path)
    # should the check go, nothing in the checkout is written and luf-doc is quick
    monkeypatch.setattr(lufdoc, "DOC_PATH", str(tmp_path / "LUF.md"))
    monkeypatch.setattr(lufdoc, "TEXT_PATH", str(tmp_path / "LUF.txt"))
    monkeypatch.setattr(lufdoc, "generate", lambda: "x\n")
    monkeypatch.setattr(lufdoc, "generate_text", lambda: "x\n")
    repro = tmp_path / "r.json"
    shutil.copy(os.path.join(REPO, "tests", "fixtures", "replay",
                             "hist_2_11_madvise_relock-1.json"), repro)
    assert main([a.replace("{repro}", str(repro)) for a in args]) == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert line == (f"flushcheck: error: {option} '': an empty path: give a path, or leave "
                    "the option out"), line


def test_a_config_key_given_twice_with_two_values_is_refused(capsys):
    """``--config ncpus=3,ncpus=4`` ran with the last value and said nothing (a user review,
    2026-12-07); the same value twice is harmless and still taken."""
    from conformance.cli import main

    assert main(["certify", "linux", "--config", "ncpus=3,ncpus=4", "--examples", "1",
                 "--jobs", "1", "--database", "none"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("flushcheck: error: bad --config: ncpus given twice "
                           "(ncpus=3 and ncpus=4)"), err
    assert main(["bound", "linux", "-k", "0", "--config", "ncpus=2", "--config",
                 "ncpus=3"]) == 2
    assert "ncpus given twice" in capsys.readouterr().err
    assert main(["certify", "linux", "--config", "ncpus=2,ncpus=2", "--examples", "1",
                 "--jobs", "1", "--database", "none"]) == 0
