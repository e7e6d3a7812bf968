"""A protocol module dropped into protocols/ is found and fuzzed with no registration."""
import os
import shutil
import subprocess
import sys

import protocols
from conformance.errors import UsageError
from conformance.registry import load_protocol, protocol_names

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MUTANT = '''"""linux with the flush in try_to_unmap_flush removed (a test mutant)."""
from conformance.protocol import Protocol
from protocols.linux import Linux


class NoFlushBeforeFree(Linux):
    def try_to_unmap_flush(self, task):
        ubc = task.tlb_ubc
        if not ubc.flush_required:
            return
        # self.arch.arch_tlbbatch_flush(ubc.arch, task)   <- removed
        ubc.flush_required = False
        ubc.writable = False
'''


def _tree_with(tmp_path, files: dict) -> dict:
    """A copy of protocols/ with extra modules, first on PYTHONPATH for a subprocess."""
    dst = tmp_path / "protocols"
    shutil.copytree(os.path.dirname(protocols.__file__), dst,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name, text in files.items():
        (dst / name).write_text(text)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), REPO, env.get("PYTHONPATH", "")])
    return env


def _flushcheck(env, *args, timeout=240):
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], env=env, cwd=env["PWD_FOR_TEST"],
                          capture_output=True, text=True, timeout=timeout)


def test_dropped_in_mutant_is_discovered_and_fails(tmp_path):
    """protocols/mutant.py (linux minus the flush in try_to_unmap_flush) is certified and
    fails: S1 (freed frames handed out while still cached) or S2 (try_to_unmap_flush_dirty
    calls the same function before pageout's copy-out), whichever the search meets first."""
    env = _tree_with(tmp_path, {"mutant.py": MUTANT})
    env["PWD_FOR_TEST"] = str(tmp_path)
    listing = _flushcheck(env, "list")
    assert "mutant" in listing.stdout
    r = _flushcheck(env, "certify", "mutant", "--seed", "1", "--budget", "60")
    assert r.returncode == 1, r.stdout + r.stderr
    verdict = next(line for line in r.stdout.splitlines() if "verdict" in line)
    rules = verdict.split("FAIL: ")[1].split(" violated")[0].split(", ")
    assert rules and set(rules) <= {"S1", "S2"}, r.stdout
    # every distinct rule has its own shrunk timeline and reproducer, which replays exactly
    paths = [line.split("reproducer: ")[1] for line in r.stdout.splitlines()
             if line.startswith("reproducer: ")]
    assert len(paths) == len(rules)
    replays = [_flushcheck(env, "replay", p) for p in paths]
    assert all(rp.returncode == 1 for rp in replays)
    assert all(any(f"replayed  VIOLATION {rule}" in rp.stdout for rp in replays) for rule in rules)


def test_reference_protocols_are_discovered():
    """The four reference protocols of the foundation are found by module name."""
    names = protocol_names()
    for n in ("immediate", "linux", "linux_4_13", "linux_4_3"):
        assert n in names
        assert load_protocol(n).name == n


def test_malformed_module_is_a_one_line_error(tmp_path):
    """A module that fails to import, or defines no protocol, is a usage error (exit 2)."""
    env = _tree_with(tmp_path, {"broken.py": "import nonexistent_module_xyz\n",
                                "empty.py": '"""No protocol here."""\nX = 1\n'})
    env["PWD_FOR_TEST"] = str(tmp_path)
    for name, msg in (("broken", "malformed"), ("empty", "exactly one Protocol subclass")):
        r = _flushcheck(env, "certify", name, "--budget", "1")
        assert r.returncode == 2
        assert msg in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    # list and litmus show every other protocol, name the broken ones, and exit 2
    r = _flushcheck(env, "list")
    assert r.returncode == 2 and "linux" in r.stdout and "(error:" in r.stdout
    r = _flushcheck(env, "litmus", "reclaim-vs-mprotect-2017")
    assert r.returncode == 2 and "cells as expected" in r.stdout, r.stdout + r.stderr
    assert "skipped" in r.stderr and "Traceback" not in r.stderr
    # a campaign of the default set stops at once: a module left out would get its PASS
    r = _flushcheck(env, "soundness", "--budget", "1", "--jobs", "1", "--config-set", "quick")
    assert r.returncode == 2 and "verdict" not in r.stdout, r.stdout + r.stderr
    assert "protocols/broken.py is malformed" in r.stderr and "Traceback" not in r.stderr


def test_unknown_protocol_in_process():
    try:
        load_protocol("no_such_protocol")
    except UsageError as e:
        assert "unknown protocol 'no_such_protocol'" in str(e)
    else:
        raise AssertionError("no error")
    for ref, says in ((":X", "module:Class needs both names"),
                      ("linux:", "module:Class needs both names"),
                      ("linux:Linux", "no module linux; did you mean protocols.linux:Linux?")):
        try:
            load_protocol(ref)
        except UsageError as e:
            assert says in str(e), e
        else:
            raise AssertionError(f"{ref}: no error")


def test_a_protocol_file_imports_a_helper_beside_it(tmp_path):
    """A protocol file's folder is on sys.path when it loads: "No module named 'my_helpers'"
    was a malformed-module error before (a protocol author's review, 2026-12-04)."""
    (tmp_path / "my_helpers.py").write_text("def always():\n    return True\n")
    (tmp_path / "helped.py").write_text(
        "from my_helpers import always\nfrom protocols.linux import Linux\n\n\n"
        "class Helped(Linux):\n    def should_defer_flush(self, task, mm):\n"
        "        return always() and super().should_defer_flush(task, mm)\n")
    cls = load_protocol(str(tmp_path / "helped.py"))
    assert cls.name == "helped" and cls.__mro__[1].__name__ == "Helped"

