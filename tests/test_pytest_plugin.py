"""The pytest plugin and its Python API (``conformance/pytest_plugin.py``) as a project that
installs flushcheck meets them: each test here runs pytest in a directory of its own, as a
subprocess, with this checkout first on ``PYTHONPATH`` (its plugin, loaded through the
``pytest11`` entry point or the copied ``tests/conftest.py``)."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(ci: bool = False, *paths) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), REPO])
    env.pop("CI", None)
    if ci:
        env["CI"] = "true"  # the ci profile: no example database in the test's directory
    return env


def _pytest(where, *args, ci: bool = True, conftest: bool = True, timeout: int = 180,
            env: dict | None = None):
    """Run pytest in directory ``where`` (with this repo's ``tests/conftest.py`` copied in,
    unless ``conftest`` is false: a project that only installed flushcheck); its
    CompletedProcess, stdout and stderr joined in ``out``."""
    if conftest:
        with open(os.path.join(REPO, "tests", "conftest.py")) as fh:
            (where / "conftest.py").write_text(fh.read())
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                       cwd=str(where), env=env or _env(ci), capture_output=True, text=True,
                       timeout=timeout)
    r.out = r.stdout + r.stderr
    return r


SPINS = '''
from conformance import watchdog
from conformance.pytest_plugin import fuzz
from protocols.linux import Linux

watchdog.STUCK_S = 1


class Spins(Linux):
    def try_to_unmap_flush(self, task):
        while True:
            pass


def test_spins():
    f = fuzz(Spins, examples=50, seed=0, shrink=False)
    assert f is None, f.rule
'''


def test_a_failing_test_of_a_stuck_hook_saves_its_reproducer_without_a_picture(tmp_path):
    """A hook that never returns (no interleaving point in its loop) is a protocol error that
    fuzz() returns; the failing test's reproducer was then saved with its picture, whose
    drawing replays the actions with no watchdog: the loop again, and pytest hung for good
    (a review, 2026-12-06). Now the reproducer is saved without a picture, as a stuck hook's
    is elsewhere (watchdog._save_stuck), and the report says why."""
    (tmp_path / "test_spins.py").write_text(SPINS)
    r = _pytest(tmp_path, "test_spins.py", timeout=90)
    assert r.returncode == 1 and "1 failed" in r.out, r.out
    assert "PROTOCOL-ERROR: reproducer saved to" in r.out, r.out
    assert "picture: none (a stuck hook: drawing it would run its loop again)" in r.out, r.out
    saved = sorted(p.name for p in (tmp_path / "repro" / "pytest").iterdir())
    assert len(saved) == 1 and saved[0].endswith(".json"), saved
