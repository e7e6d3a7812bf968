"""The pytest plugin and its Python API (``conformance/pytest_plugin.py``) as a project that
installs flushcheck meets them: each test here runs pytest in a directory of its own, as a
subprocess, with this checkout first on ``PYTHONPATH`` (its plugin, loaded through the
``pytest11`` entry point or the copied ``tests/conftest.py``)."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(ci: bool = False, *paths) -> dict:
    # not this run's xdist worker variables: the child is a pytest run of its own
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTEST_XDIST") and k != "PYTEST_CURRENT_TEST"}
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


MINE_CONFTEST = '''
from hypothesis import settings

settings.register_profile("mine", max_examples=7)
settings.load_profile("mine")
'''

MINE_TEST = '''
import os

from hypothesis import given, settings, strategies as st

RUNS = []


@given(st.integers())
def test_a_plain_given_test(x):
    RUNS.append(x)


def test_b_it_ran_under_the_projects_profile():
    assert len(RUNS) == 7, len(RUNS)
    assert settings.default.max_examples == 7
    assert "flushcheck" not in repr(settings.default.database), settings.default
    with open(os.environ["SETTINGS_OUT"], "w") as fh:
        fh.write(repr(settings.default))


def test_c_fuzz_runs_under_flushchecks_profile():
    from conformance.pytest_plugin import fuzz

    # no deadline: the project's (Hypothesis's 200 ms, off on CI) would fail a slow example
    assert fuzz("immediate", examples=3, steps=5, seed=0) is None
'''


def test_a_projects_own_hypothesis_profile_is_left_alone(tmp_path):
    """A project that installs flushcheck and loads a profile of its own (``max_examples=7``)
    got flushcheck's ``dev`` profile for its plain ``@given`` tests (no deadline, every health
    check suppressed, examples in ``.hypothesis/flushcheck``), and with ``CI=true`` its ``ci``
    profile, which replaced Hypothesis's own ``ci`` (a review, 2026-12-06). Now the project's
    settings are what they are without flushcheck, on CI and off it; fuzz() runs under
    flushcheck's own settings whatever the project loaded."""
    (tmp_path / "conftest.py").write_text(MINE_CONFTEST)
    (tmp_path / "test_mine.py").write_text(MINE_TEST)
    for ci in (False, True):
        seen = {}
        for plugin in (("-p", "no:flushcheck"),  # the project without flushcheck
                       ("-p", "no:flushcheck", "-p", "conformance.pytest_plugin")):
            env = _env(ci)
            env["SETTINGS_OUT"] = str(tmp_path / "settings.txt")
            r = _pytest(tmp_path, *plugin, "test_mine.py", conftest=False, env=env)
            assert r.returncode == 0 and "3 passed" in r.out, (ci, plugin, r.out)
            seen[plugin] = (tmp_path / "settings.txt").read_text()
        without, with_plugin = seen.values()
        assert with_plugin == without, (ci, with_plugin, without)
    assert not (tmp_path / ".hypothesis" / "flushcheck").exists()


REPO_PROFILE_TEST = '''
import os

from hypothesis import settings


def test_profile():
    s = settings.default
    if os.environ.get("CI") == "true":
        assert s.derandomize and s.database is None, s
    else:
        assert not s.derandomize and "flushcheck" in repr(s.database), s
    assert s.deadline is None, s
'''


def test_this_repos_suite_runs_under_flushchecks_profile(tmp_path):
    """This repository's ``tests/conftest.py`` loads flushcheck's profile for its own tests:
    ``ci`` with ``CI=true`` (derandomized, no database: ``.ci/run``), else ``dev``."""
    (tmp_path / "test_profile.py").write_text(REPO_PROFILE_TEST)
    for ci in (False, True):
        r = _pytest(tmp_path, "test_profile.py", ci=ci)
        assert r.returncode == 0 and "1 passed" in r.out, (ci, r.out)


COUNTING = '''
from conformance.pytest_plugin import fuzz
from protocols.immediate import Immediate

#: machines booted: one per example (and one per replay of a failure, none here)
BOOTED = []


class Counting(Immediate):
    def __init__(self, arch, free_pages):
        BOOTED.append(1)
        super().__init__(arch, free_pages)


def test_examples(request):
    assert fuzz(Counting, steps=5, seed=0) is None
    # Hypothesis boots a machine for an example it then rejects too: a few more than asked
    assert 3 <= len(BOOTED) <= 6, len(BOOTED)
'''

PROFILE_EXAMPLES = '''
from conformance.pytest_plugin import default_examples


def test_thorough():
    assert default_examples() == 2000
'''


def test_fuzz_runs_the_examples_pytest_was_given(tmp_path):
    """``pytest --flushcheck-examples 3`` on ``fuzz(P, seed=0, steps=5)`` ran 300 examples, and
    ``--hypothesis-profile thorough`` 300 instead of its 2,000: fuzz()'s own default won (a
    review, 2026-12-06). Now a fuzz() called without ``examples=`` runs the option's, else the
    profile's, else 300; a count below 1 is a usage error, not a traceback per test."""
    (tmp_path / "test_count.py").write_text(COUNTING)
    r = _pytest(tmp_path, "test_count.py", "--flushcheck-examples", "3")
    assert r.returncode == 0 and "1 passed" in r.out, r.out
    (tmp_path / "test_profile_examples.py").write_text(PROFILE_EXAMPLES)
    r = _pytest(tmp_path, "test_profile_examples.py", "--hypothesis-profile", "thorough")
    assert r.returncode == 0 and "1 passed" in r.out, r.out
    r = _pytest(tmp_path, "test_count.py", "--flushcheck-examples", "0")
    assert r.returncode == 4, r.out
    assert "ERROR: --flushcheck-examples 0: must be at least 1" in r.out and "Traceback" \
        not in r.out, r.out


#: a protocol that fails while FC_BROKEN=1 (a hook raising in every page fault) and is
#: correct otherwise: the same name, so the same database key, either way
FLAKY = '''
import os

from protocols.immediate import Immediate


class Flaky(Immediate):
    def fault_install_pte(self, task, mm, vma, vpage, pte, write):
        if os.environ.get("FC_BROKEN") == "1":
            raise RuntimeError("broken")
        return super().fault_install_pte(task, mm, vma, vpage, pte, write)
'''

REUSE_TEST = '''
import os

from conformance.config import DEFAULT
from conformance.database import DEFAULT_DIR, campaign_key, open_database
from conformance.pytest_plugin import fuzz

SAVED = lambda: list(open_database(DEFAULT_DIR).fetch(campaign_key("flaky", DEFAULT, False)))


def test_a_a_failure_is_saved():
    os.environ["FC_BROKEN"] = "1"
    # about one example in ten installs a PTE by a fault on the populated boot: 50 examples
    # missed about once in 200 runs (CI, 2026-12-06); the run stops at the first failure
    assert fuzz("./flaky.py", examples=1000, steps=20, shrink=False) is not None
    assert SAVED()


def test_b_and_replayed_first():
    os.environ["FC_BROKEN"] = "0"  # fixed: the saved example passes, and goes
    # two examples: Hypothesis ends the run at the last one before it drops a replayed one
    assert fuzz("./flaky.py", examples=2, steps=20) is None
    assert SAVED() == []
'''


def test_fuzz_replays_the_saved_failures_first(tmp_path):
    """fuzz() saved its failures in the ``dev`` profile's database but never replayed them:
    its phases left out ``Phase.reuse`` (a review, 2026-12-06; the README said "replayed
    first"). The saved failure of a protocol since fixed is replayed by the next run, passes,
    and is dropped from the database."""
    (tmp_path / "flaky.py").write_text(FLAKY)
    (tmp_path / "test_reuse.py").write_text(REUSE_TEST)
    r = _pytest(tmp_path, "test_reuse.py", ci=False)
    assert r.returncode == 0 and "2 passed" in r.out, r.out


OWN_FIXTURE = '''
import pytest


@pytest.fixture
def protocol_name():
    return "http"


def test_own(protocol_name):
    assert protocol_name == "http"
'''

OWN_PARAMETRIZE = '''
import pytest


@pytest.mark.parametrize("protocol_name", ["tcp", "udp"])
def test_own_parameters(protocol_name):
    assert protocol_name in ("tcp", "udp")
'''

FLUSHCHECKS = '''
def test_flushchecks(protocol_name):
    assert protocol_name in ("linux", "immediate")
'''


def test_a_projects_own_protocol_name_is_left_alone(tmp_path):
    """Every test argument named ``protocol_name`` was parametrized over flushcheck's
    protocols, overriding a project's own fixture of that name (a conftest fixture returning
    "http" gave 27 failures) and clashing with its own ``parametrize`` (a review,
    2026-12-06). Now only a ``protocol_name`` that no fixture or ``parametrize`` of the test
    provides is flushcheck's."""
    (tmp_path / "test_own.py").write_text(OWN_FIXTURE)
    (tmp_path / "test_own_parameters.py").write_text(OWN_PARAMETRIZE)
    (tmp_path / "test_flushchecks.py").write_text(FLUSHCHECKS)
    r = _pytest(tmp_path, "-vv", "--flushcheck-protocol", "linux",
                "--flushcheck-protocol", "immediate", conftest=False)
    assert r.returncode == 0 and "5 passed" in r.out, r.out
    assert "test_flushchecks[linux]" in r.out and "test_own_parameters[tcp]" in r.out, r.out


def test_a_bad_protocol_reference_is_one_usage_error_at_startup(tmp_path):
    """``--flushcheck-protocol linx``, or an entry point whose module fails to import, failed
    every test with a 77-line traceback through the registry (a review, 2026-12-06). Now
    pytest stops before collecting, with the registry's one line (exit 4)."""
    (tmp_path / "test_flushchecks.py").write_text(FLUSHCHECKS)
    # a distribution on sys.path publishing a protocol whose module raises when imported
    dist = tmp_path / "site" / "brokenfc-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenfc\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[flushcheck.protocols]\nbroken_fc = broken_fc_mod\n")
    (tmp_path / "site" / "broken_fc_mod.py").write_text("raise ImportError('no such kernel')\n")
    env = _env(True, tmp_path / "site")
    for ref, words in [("linx", "unknown protocol 'linx' (did you mean 'linux'?)"),
                       ("broken_fc", "entry point broken_fc = broken_fc_mod "
                                     "(flushcheck.protocols) failed to import: ImportError: "
                                     "no such kernel")]:
        r = _pytest(tmp_path, "--flushcheck-protocol", "linux", "--flushcheck-protocol", ref,
                    env=env)
        assert r.returncode == 4 and "Traceback" not in r.out, (ref, r.out)
        errors = [ln for ln in r.out.splitlines() if "ERROR" in ln]
        assert len(errors) == 1 and errors[0].startswith(
            f"ERROR: --flushcheck-protocol {ref}: ") and words in errors[0], (ref, r.out)


REF_TEST = '''
from conformance.pytest_plugin import fuzz
from protocols.immediate import Immediate


class RaisesAtFlush(Immediate):
    def tlb_flush_mmu_tlbonly(self, tlb):
        raise RuntimeError("no flush for you")


def test_ref():
    f = fuzz(RaisesAtFlush, examples=20, steps=20, seed=0, shrink=False)
    assert f is None, f.rule
'''


def test_the_replay_command_of_a_class_in_a_test_module_works_from_a_shell(tmp_path):
    """The replay command printed for a failing test's ``module:Class`` protocol, a class in
    the test module, failed from the shell (``protocol module test_ref cannot be imported``:
    pytest imported it from the test's folder, a shell's flushcheck cannot; a review,
    2026-12-06). Now it puts that folder first on PYTHONPATH, and replays from any folder."""
    import re
    import shlex

    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_ref.py").write_text(REF_TEST)
    r = _pytest(tmp_path, "tests/test_ref.py")
    assert r.returncode == 1 and "1 failed" in r.out, r.out
    command = re.search(r"^  replay:  (.*)$", r.out, re.M).group(1)
    path = str(tmp_path / "repro" / "pytest")
    assert command.startswith(f"PYTHONPATH={shlex.quote(str(tmp_path / 'tests'))}$"), command
    assert f"flushcheck replay {path}/RaisesAtFlush-test_ref-" in command, command
    # this checkout's flushcheck, from a folder the test module is not in
    command = command.replace("flushcheck replay",
                              f"{shlex.quote(sys.executable)} -m conformance.cli replay")
    (tmp_path / "elsewhere").mkdir()
    replayed = subprocess.run(command, shell=True, cwd=str(tmp_path / "elsewhere"),
                              env=_env(), capture_output=True, text=True, timeout=120)
    assert replayed.returncode == 1 and "no flush for you" in replayed.stdout, \
        replayed.stdout + replayed.stderr


# -- a protocol class given to fuzz() itself, in-process ------------------------------------
import pytest  # noqa: E402

from conformance.errors import UsageError  # noqa: E402
from conformance.pytest_plugin import expected_violation, fuzz  # noqa: E402
from protocols.immediate import Immediate  # noqa: E402


class RaisesAtFlush(Immediate):
    """Fails at once: every gather's flush raises (a protocol error in the first examples)."""
    def tlb_flush_mmu_tlbonly(self, tlb):
        raise RuntimeError("no flush for you")


class AlsoRaisesAtFlush(RaisesAtFlush):
    pass


class Misspelt(Immediate):
    def try_to_unmap_flsh(self, task):
        pass


class NotABool(Immediate):
    MIGRATE_FLUSH_BEFORE_COPY = "yes"


class KnownBug(Immediate):
    EXPECTED_VIOLATION = "S3"


def test_a_class_given_to_fuzz_is_loaded_as_load_protocol_loads_it():
    """A class passed straight to fuzz() skipped the loader: its failures, reproducer files
    and database key said ``protocol: base`` (the name it inherits), one key for every such
    class; a misspelt hook passed without a word; a policy constant that is no bool was
    read as some kernel's; expected_violation() refused the class (a review, 2026-12-06).
    Now it is checked and named as ``load_protocol("module:Class")`` would, and a misspelt
    hook is a warning in pytest's summary."""
    names = {}
    for cls in (RaisesAtFlush, AlsoRaisesAtFlush):
        f = fuzz(cls, examples=20, steps=20, seed=0, shrink=False)
        assert f is not None and f.rule == "PROTOCOL-ERROR", f
        proto = type(f.machine.proto)
        names[proto.name] = proto.ref
        assert f"protocol: {cls.__name__}" in f.report(), f.report()
    assert names == {"RaisesAtFlush": f"{__name__}:RaisesAtFlush",
                     "AlsoRaisesAtFlush": f"{__name__}:AlsoRaisesAtFlush"}, names
    with pytest.warns(UserWarning, match=r"Misspelt\.try_to_unmap_flsh is no Protocol hook "
                                         r"and is never called \(did you mean "
                                         r"try_to_unmap_flush\?\)"):
        assert fuzz(Misspelt, examples=2, steps=5, seed=0) is None
    with pytest.raises(UsageError, match="MIGRATE_FLUSH_BEFORE_COPY = 'yes' is not True or "
                                         "False"):
        fuzz(NotABool, examples=2, steps=5, seed=0)
    assert expected_violation(KnownBug) == "S3"
    assert expected_violation(RaisesAtFlush) is None


TIGHT_CONFTEST = '''
from datetime import timedelta

from hypothesis import settings

settings.register_profile("tight", deadline=timedelta(milliseconds=1))
'''

TIGHT_TEST = '''
from conformance.pytest_plugin import fuzz


def test_fuzz():
    assert fuzz("immediate", examples=5, steps=50, seed=0) is None
'''


def test_fuzz_keeps_flushchecks_settings_under_a_projects_profile(tmp_path):
    """fuzz() started from the profile in force, a project's: one with ``deadline=1`` ended
    every fuzz in DeadlineExceeded (an example takes milliseconds or more; a review,
    2026-12-06). Now fuzz() runs under flushcheck's profile, or the ``settings=`` given."""
    (tmp_path / "conftest.py").write_text(TIGHT_CONFTEST)
    (tmp_path / "test_tight.py").write_text(TIGHT_TEST)
    r = _pytest(tmp_path, "test_tight.py", "--hypothesis-profile", "tight", conftest=False)
    assert r.returncode == 0 and "1 passed" in r.out, r.out


DEADLINE = '''
import signal


def _on_alarm(signum, frame):
    raise RuntimeError("the session's deadline")


def pytest_configure(config):
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 30)
'''

KEEPS_IT = '''
import signal


def test_the_deadline_is_still_set():
    assert signal.getsignal(signal.SIGALRM).__name__ == "_on_alarm"
    assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 30
'''


def test_a_projects_own_sigalrm_and_timer_are_left_alone(tmp_path):
    """The plugin's session start entered the watchdog even with no ``--flushcheck-protocol``
    to load, and the watchdog's stop reset SIGALRM and the interval timer: a project's own
    session deadline set in ``pytest_configure`` was cancelled (a review, 2026-12-06)."""
    (tmp_path / "conftest.py").write_text(DEADLINE)
    (tmp_path / "test_keeps.py").write_text(KEEPS_IT)
    r = _pytest(tmp_path, conftest=False)
    assert r.returncode == 0 and "1 passed" in r.out, r.out


def test_a_bad_protocol_reference_in_a_test_is_the_callers_line_and_the_registrys(tmp_path):
    """``fuzz("linx")`` and ``expected_violation("linx")`` in a project's test fail it with
    the test's own line and the registry's one line; pytest printed fuzz()'s whole source
    (some 90 lines of docstring) with it. Another exception keeps fuzz()'s frame."""
    (tmp_path / "test_bad.py").write_text(
        "from conformance.pytest_plugin import expected_violation, fuzz\n"
        "def test_fuzz():\n    fuzz('linx')\n"
        "def test_declared():\n    expected_violation('linx')\n"
        "def test_other():\n    fuzz('linux', steps='many')\n")
    r = _pytest(tmp_path)
    assert r.returncode == 1 and "3 failed" in r.out, r.out
    assert r.out.count("E       conformance.errors.UsageError: unknown protocol 'linx'") == 2
    assert "test_bad.py:3: UsageError" in r.out and "test_bad.py:5: UsageError" in r.out
    bad, other = r.out.split(" test_other ")
    assert "def fuzz(" not in bad and "pytest_plugin.py" not in bad, r.out
    assert "pytest_plugin.py:" in other and ": in fuzz" in other, r.out
