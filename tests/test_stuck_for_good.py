"""A hook that never returns, seen from the command line: a protocol error, never a hang.

The watchdog (conformance/watchdog.py) raises ``HookStuck`` into a hook that runs on; a
hook that swallows every one of them (a loop whose ``try`` holds a loop of its own, so that
no tick lands outside it) cannot be unwound, and ends the process with its report and
reproducer (``_stop_for_good``). Each command runs in a fresh process with a 1 s watchdog
(``watchdog.STUCK_S``, which forked workers inherit); on the code before 2026-12-05 these
runs hung, which the ``timeout`` turns into a failure."""
from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SWALLOWS_EVERY_STOP = '''
from protocols.linux import Linux


class Nested(Linux):
    name = "nested"

    def try_to_unmap_flush(self, task):
        while True:
            try:
                try:
                    while True:  # every tick lands here, inside both try blocks
                        pass
                except BaseException:
                    continue
            except BaseException:
                pass
'''

SPINS = '''
from protocols.linux import Linux


class Spin(Linux):
    name = "spin"

    def try_to_unmap_flush(self, task):
        while True:  # no interleaving point, nothing swallowed
            pass
'''


def _run(cwd, argv) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=90)
    return r.returncode, r.stdout, r.stderr


def _flushcheck(cwd, *argv, stuck_s: int = 1, before: str = "") -> tuple[int, str, str]:
    """``flushcheck ARGV`` in a fresh process in ``cwd`` with a ``stuck_s`` watchdog, after
    the Python statements ``before``."""
    code = (f"import sys; from conformance import watchdog; watchdog.STUCK_S = {stuck_s}\n"
            f"{before}\nfrom conformance.cli import main; sys.exit(main(sys.argv[1:]))")
    return _run(cwd, ["-c", code, *argv])


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_a_hook_that_swallows_every_stop_ends_the_run_with_its_reproducer(tmp_path):
    """A stop in the process itself (bound's one job), after the watchdog's 2 s and 2 s
    more of HookStuck swallowed."""
    (tmp_path / "nested.py").write_text(SWALLOWS_EVERY_STOP)
    rc, out, err = _flushcheck(tmp_path, "bound", "nested.py", "-k", "1", "--repro-dir", "r",
                               stuck_s=2)
    last = _last_line(err)
    assert rc == 1, (rc, out, err)
    assert last.startswith("flushcheck: protocol error: Linux.try_to_unmap_flush_dirty ran "
                           "for 2 s without returning (a loop with no interleaving point? "
                           "nested.py:12 in Nested.try_to_unmap_flush), then swallowed the HookStuck raised into it at "
                           "every second for 2 s more"), last
    assert "no exception can end it" in last and "Traceback" not in err
    assert "PROTOCOL ERROR at step" in err and "reclaim[pfn0]" in err  # the timeline
    assert os.listdir(tmp_path / "r") == ["stuck-nested.json"]
    # the reproducer replays into the same stop; replay saves no reproducer of its own
    rc, out, err = _flushcheck(tmp_path, "replay", "r/stuck-nested.json", stuck_s=2)
    assert rc == 1 and _last_line(err) == last, (rc, out, err)
    assert os.listdir(tmp_path / "r") == ["stuck-nested.json"]


SWALLOWS_IN_A_RARE_HOOK = '''
from protocols.linux import Linux


class Rare(Linux):
    name = "rare"

    def walk_abort(self, task, frame, migration):
        while True:
            try:
                while True:
                    pass
            except BaseException:
                pass
'''


def test_a_worker_that_stops_for_good_is_a_protocol_error_not_a_dead_worker(tmp_path):
    """A worker's ``os._exit`` breaks the pool, which read "a worker process died (killed by
    the OS?)", exit 3, a flushcheck bug; the parent now runs the chunks that were in flight
    itself, so ``--jobs 2`` stops on the lowest chunk's hook, with the report and the
    reproducer ``--jobs 1`` gives. Chunk 0 of seed 7 reaches ``walk_abort`` at its 770th
    example, chunk 1 at its 110th: chunk 1's worker got stuck first, and its 67 actions
    were the reproducer (86 with one job; a review, 2026-12-05: figures of that day), each
    stuck worker printing its own report."""
    (tmp_path / "rare.py").write_text(SWALLOWS_IN_A_RARE_HOOK)
    runs = {}
    for jobs in ("1", "2"):
        rc, out, err = _flushcheck(tmp_path, "certify", "rare.py", "--seed", "7", "--examples",
                                   "4000", "--chunk", "1000", "--jobs", jobs, "--database",
                                   "none", "--repro-dir", f"r{jobs}")
        assert rc == 1, (jobs, rc, out, err)
        assert "died" not in err and "Traceback" not in err
        assert _last_line(err).endswith("no exception can end it, so flushcheck ends the run "
                                        "here"), err
        assert err.count("PROTOCOL ERROR at step") == 1, err  # one report, not one per worker
        assert err.strip().splitlines()[-2] == (f"reproducer r{jobs}/stuck-rare.json  (flushcheck "
                                                f"replay r{jobs}/stuck-rare.json)"), err
        assert os.listdir(tmp_path / f"r{jobs}") == ["stuck-rare.json"]
        runs[jobs] = (err.replace(f"r{jobs}/", "R/"),
                      (tmp_path / f"r{jobs}" / "stuck-rare.json").read_bytes())
    assert runs["1"] == runs["2"]
    # step 86 until 2026-12-06 (a walker now skips a range with no page table: the walk
    # draws other interleavings from the same seed), 69 until 12:00 that day (free_pgtables
    # frees a table no VMA shares), 86 again until 15:00 (a fault's first try drops
    # mmap_lock for its read: VM_FAULT_RETRY), 128 until 16:00 (a shared write fault's
    # first try drops it after the install: one more interleaving point), 93 until
    # 2026-12-07 (the walk's migrate rule draws move_pages with a nested reclaim), 100 until
    # 15:00 that day (tlb_end_vma stopped flushing, MMU_GATHER_MERGE_VMAS: other
    # interleavings from the same seed), 33 until 17:40 that day (MADV_FREE's reference and
    # LRU tests, docs/model.md section 11 item 36: a lazyfree folio a gather holds aborts
    # the walk too, and other interleavings from the same seed), 92 until 22:00 that day
    # (reclaim isolates its whole batch first, docs/model.md section 11 item 37), 86 since
    assert "PROTOCOL ERROR at step 86: " in runs["1"][0], runs["1"][0]
    rc, out, err = _flushcheck(tmp_path, "replay", "r2/stuck-rare.json")
    assert rc == 1 and "no exception can end it" in _last_line(err), (rc, out, err)


def test_a_worker_hands_its_report_to_the_parent(tmp_path):
    """bound's parent cannot run a level's chunks again itself: it prints the report of the
    worker that stopped (its timeline, once), saves its reproducer and says where it ran."""
    (tmp_path / "nested.py").write_text(SWALLOWS_EVERY_STOP)
    rc, out, err = _flushcheck(tmp_path, "bound", "nested.py", "-k", "1", "--jobs", "2",
                               "--repro-dir", "r")
    assert rc == 1, (rc, out, err)
    assert _last_line(err).endswith("no exception can end it, so flushcheck ends the run here "
                                    "(in a worker process)"), err
    # the worker that stops first: its chunk's reclaim or migrate (both call the hook;
    # which chunk holds which moved with the canonical TLB key of 2026-12-06)
    assert err.count("PROTOCOL ERROR at step") == 1, err
    assert "reclaim[pfn0]" in err or "migrate[pfn0]" in err, err
    assert err.strip().splitlines()[-2] == ("reproducer r/stuck-nested.json  (flushcheck "
                                            "replay r/stuck-nested.json)"), err
    assert os.listdir(tmp_path / "r") == ["stuck-nested.json"]
    rc, out, err = _flushcheck(tmp_path, "replay", "r/stuck-nested.json")
    assert rc == 1 and "no exception can end it" in _last_line(err), (rc, out, err)


def test_bound_workers_stop_a_hook_that_never_returns(tmp_path):
    """``bound --jobs 2``'s workers ran no watchdog: a hook that never returns hung the
    search for good, where one job reported it."""
    (tmp_path / "spin.py").write_text(SPINS)
    for jobs in ("1", "2"):
        rc, out, err = _flushcheck(tmp_path, "bound", "spin.py", "-k", "1", "--jobs", jobs,
                                   "--repro-dir", "r")
        assert rc == 1, (jobs, rc, out, err)
        assert "verdict   PROTOCOL ERROR with a program of 1 operation" in out, out
        assert "HookStuck in reclaim[pfn0]: Linux.try_to_unmap_flush_dirty ran for" in out, out


def test_a_slow_report_does_not_let_the_next_tick_in(tmp_path):
    """The timer ran on while the stop wrote its report: a tick during a report slower than
    a second entered the stop again, nested, for good (a review, 2026-12-05)."""
    (tmp_path / "nested.py").write_text(SWALLOWS_EVERY_STOP)
    slow_save = ("import time; from conformance import reproducer; _write = reproducer.write_dict; "
                 "reproducer.write_dict = lambda *a, **k: (time.sleep(2.5), _write(*a, **k))[1]")
    rc, out, err = _flushcheck(tmp_path, "bound", "nested.py", "-k", "1", "--repro-dir", "r",
                               before=slow_save)
    assert rc == 1 and "no exception can end it" in _last_line(err), (rc, out, err)
    assert os.listdir(tmp_path / "r") == ["stuck-nested.json"]


SWALLOWS_IN_CONTEXT_SWITCH = SWALLOWS_EVERY_STOP.replace(
    "def try_to_unmap_flush(self, task):", "def context_switch(self, cpu_id, prev, next_mm):")


def test_a_hook_called_outside_any_step_gets_its_timeline_and_reproducer(tmp_path):
    """``context_switch`` runs outside any operation's step: the stop found no machine (it
    looked for ``Machine._step`` alone) and saved no reproducer."""
    (tmp_path / "ctx.py").write_text(SWALLOWS_IN_CONTEXT_SWITCH)
    rc, out, err = _flushcheck(tmp_path, "certify", "ctx.py", "--budget", "60", "--jobs", "1",
                               "--repro-dir", "r")
    assert rc == 1 and "Nested.context_switch ran for 1 s" in _last_line(err), (rc, out, err)
    assert "HookStuck in a hook called outside any operation" in err
    assert os.listdir(tmp_path / "r") == ["stuck-ctx.json"]  # the protocol's name: its file's


def test_under_pytest_the_stop_shows_its_report(tmp_path):
    """The pytest plugin's ``fuzz`` ran under pytest's output capture, which ``os._exit``
    never printed: the session ended with no word of why (a review, 2026-12-05)."""
    (tmp_path / "nested.py").write_text(SWALLOWS_EVERY_STOP)
    (tmp_path / "test_nested.py").write_text(
        "from conformance import watchdog\n"
        "from conformance.pytest_plugin import fuzz\n"
        "from nested import Nested\n\n"
        "watchdog.STUCK_S = 1\n\n\n"
        "def test_fuzz():\n"
        "    fuzz(Nested, examples=50, seed=0, shrink=False)\n")
    rc, out, err = _run(tmp_path, ["-m", "pytest", "-q", "-p", "no:cacheprovider",
                                   "test_nested.py"])
    assert rc == 1 and "no exception can end it, so flushcheck ends the run here" in out + err, \
        (rc, out, err)
    assert "PROTOCOL ERROR at step" in out + err


def test_a_hook_stuck_at_boot_has_a_reproducer_without_actions_that_replays(tmp_path):
    """A hook that swallows every stop in ``init_mm`` (at boot, before any action): its
    reproducer has no actions, and replay must take it (a review of a stricter check,
    which refused every reproducer without actions)."""
    (tmp_path / "boot.py").write_text(SWALLOWS_EVERY_STOP.replace(
        "def try_to_unmap_flush(self, task):", "def init_mm(self, mm):"))
    rc, out, err = _flushcheck(tmp_path, "certify", "boot.py", "--examples", "5", "--jobs", "1",
                               "--database", "none", "--repro-dir", "r")
    assert rc == 1 and "no exception can end it" in _last_line(err), (rc, out, err)
    (name,) = os.listdir(tmp_path / "r")
    with open(tmp_path / "r" / name) as fh:
        assert __import__("json").load(fh)["actions"] == []
    rc, out, err = _flushcheck(tmp_path, "replay", f"r/{name}")
    assert rc == 1 and "no exception can end it" in _last_line(err), (rc, out, err)


def test_a_stop_for_good_leaves_no_temporary_directory(tmp_path):
    """certify's filing directory (conformance/found.py) goes before the process ends with
    ``os._exit``: every such run left an empty ``/tmp/flushcheck-found-*`` (15 after one
    CI run of the suite, 2026-12-05)."""
    (tmp_path / "nested.py").write_text(SWALLOWS_EVERY_STOP)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    rc, out, err = _flushcheck(tmp_path, "certify", "nested.py", "--jobs", "1", "--budget", "30",
                               "--database", "none", "--repro-dir", "r",
                               before=f"import tempfile; tempfile.tempdir = {str(tmp)!r}")
    assert rc == 1 and "no exception can end it" in err, (rc, out, err)
    assert os.listdir(tmp) == [], os.listdir(tmp)
