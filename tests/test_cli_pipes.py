"""Output piped into a reader that stops early (``flushcheck list | head -1``) ends quietly:
no BrokenPipeError traceback, no "Exception ignored" message, exit status 141
(128 + SIGPIPE, as the shell reports ``yes | head -1``)."""
import os
import subprocess
import sys

import pytest

from conformance.cli import EXIT_PIPE

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LITMUS = os.path.join("litmus", "bug-2.7-lost-pending-flush.litmus")


def _closed_early(tmp_path, *args):
    """Run flushcheck with stdout a pipe whose reader is already gone: every write fails."""
    r, w = os.pipe()
    os.close(r)  # the reader went away before the first byte
    try:
        p = subprocess.run([sys.executable, "-m", "conformance.cli", *args], cwd=REPO,
                           stdout=w, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(w)
    return p


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    d = tmp_path_factory.mktemp("repro")
    subprocess.run([sys.executable, "-m", "conformance.cli", "explore", LITMUS, "--protocol",
                    "linux_4_13", "--repro-dir", str(d)], cwd=REPO, capture_output=True,
                   timeout=300)
    path = d / "explore-bug-2.7-lost-pending-flush-linux_4_13.json"
    assert path.exists()
    return str(path)


@pytest.mark.parametrize("cmd", ["list", "replay", "litmus", "explore", "help"])
def test_closed_pipe_is_quiet(cmd, repro, tmp_path):
    args = {"list": ["list"], "replay": ["replay", repro],
            "litmus": ["litmus", "bug-2.7-lost-pending-flush", "--protocol", "linux"],
            "explore": ["explore", LITMUS, "--protocol", "linux_4_13", "--repro-dir",
                        str(tmp_path)],
            "help": ["certify", "--help"]}[cmd]
    p = _closed_early(tmp_path, *args)
    assert p.stderr == ""
    # argparse's --help swallows the write error itself and exits 0
    assert p.returncode == (0 if cmd == "help" else EXIT_PIPE)


def test_head_reads_one_line(repro):
    """The pipeline itself, as a user types it: the first line, nothing on stderr."""
    p = subprocess.run(f"{sys.executable} -m conformance.cli replay {repro} | head -1",
                       shell=True, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.stdout == f"flushcheck replay {repro}\n"
    assert p.stderr == ""
