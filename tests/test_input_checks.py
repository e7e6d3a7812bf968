"""Bad input is refused in one line (exit 2), never replayed into a traceback: a reproducer
whose action has an argument of the wrong type or range, and a machine config whose loop cap
(``max_op_steps``) is below what the model's own kernel paths take."""
import json
import os
import subprocess
import sys

import attrs
import pytest

from conformance.cli import main
from conformance.config import CONFIG_SETS, DEFAULT, MAX_OP_STEPS_FLOOR, MachineConfig
from conformance.errors import UsageError
from conformance.registry import load_protocol
from conformance.reproducer import ACTIONS, _spec, check_actions
from conformance.search.walk import run_example

#: one well-formed action of every kind the reproducer format holds (DEFAULT's machine:
#: 3 CPUs, 2 mms, 4 pages, 10 frames, 2 files of 2 pages); each test corrupts one argument
GOOD = {
    "advance": [0], "fault": [0, 1, True], "reclaim": [0, [3], [4]], "migrate": [1, [2, 3]],
    "compact": [1, [2, 3]], "move_pages": [1, [2, 3], [4]],
    "munmap": [1, 0, 2], "mmap": [0, 1, 2, None, True, False], "mprotect": [0, 0, 1, False],
    "write": [0, 1, 1], "user_access": [2, 3, False], "fill": [1, 0], "evict": [2, 5],
    "switch_mm": [0, 1], "consumer_alloc": [], "consumer_free": [], "writeback": [1, 0, 1],
    "madvise": [0, 2, 2, "free"], "mremap": [0, 0, 1, 3], "truncate": [2, 1, 0],
    "exit_mmap": [1], "fork": [0, 1],
}

#: (action, argument position, bad value, what the message names): every argument kind, and
#: each wrong kind of value (string, float, list, null, bool, negative, too large)
BAD = [
    ("munmap", 2, "x", "npages"), ("munmap", 2, 1.0, "npages"), ("munmap", 2, [1], "npages"),
    ("munmap", 2, None, "npages"), ("munmap", 2, True, "npages"), ("munmap", 1, -1, "start"),
    ("munmap", 2, 0, "npages"), ("munmap", 1, 3, "start 3 + npages 2"),
    ("advance", 0, -1, "op_id"), ("advance", 0, "0", "op_id"), ("advance", 0, 0.5, "op_id"),
    ("fault", 2, None, "write"), ("fault", 1, 4, "vpage"),
    ("reclaim", 1, "x", "frames"), ("reclaim", 1, [0, "x"], "frames"), ("reclaim", 1, 2, "frames"),
    ("reclaim", 2, [10], "nested"), ("migrate", 1, [[2]], "frames"), ("migrate", 0, 3, "cpu"),
    ("compact", 1, [[2]], "frames"), ("compact", 0, 3, "cpu"),
    ("move_pages", 2, [10], "nested"), ("move_pages", 1, "x", "frames"), ("move_pages", 0, 3, "cpu"),
    ("mmap", 3, 2, "file"), ("mmap", 3, "anon", "file"), ("mmap", 4, 1, "writable"),
    ("mmap", 5, None, "fixed"), ("mmap", 2, 9, "npages"),
    ("mprotect", 3, "rw", "writable"), ("mprotect", 0, True, "cpu"),
    ("write", 1, 2, "file"), ("write", 2, 1.5, "pgoff"),
    ("user_access", 2, 0, "write"), ("user_access", 0, -1, "cpu"),
    ("fill", 1, [0], "vpage"), ("evict", 1, -1, "index"), ("evict", 1, None, "index"),
    ("switch_mm", 1, True, "mm_id"), ("switch_mm", 1, 2, "mm_id"),
    ("writeback", 2, 2, "pgoff"), ("writeback", 1, "0", "file"),
    ("madvise", 3, "bogus", "advice"), ("madvise", 3, None, "advice"), ("madvise", 3, 1, "advice"),
    ("mremap", 3, 4, "new_start"), ("mremap", 3, 3.0, "new_start"), ("mremap", 1, -2, "old_start"),
    ("mremap", 2, 4, "new_start 3 + npages 4"),
    ("truncate", 2, -1, "pgoff"), ("truncate", 1, False, "file"),
    ("exit_mmap", 0, "1", "cpu"), ("exit_mmap", 0, 3, "cpu"),
    ("fork", 1, 2, "child"), ("fork", 1, 1.0, "child"),
]


def _fixture(name: str) -> dict:
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "replay")
    with open(os.path.join(here, name)) as fh:
        return json.load(fh)


def _replay(capsys, path) -> tuple:
    """``flushcheck replay path``: (exit status, stdout, stderr)."""
    rc = main(["replay", str(path)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_every_action_argument_has_a_check():
    """The table covers every parameter of every action the format holds (a new parameter
    without a check fails here, not in a user's replay), and the well-formed actions the
    tests corrupt pass it."""
    assert set(GOOD) == set(ACTIONS)
    for name in ACTIONS:
        _spec(name)
    check_actions(DEFAULT, [[name, args] for name, args in GOOD.items()])


@pytest.mark.parametrize("name,pos,value,names", BAD,
                         ids=[f"{n}-{p}-{v!r}" for n, p, v, _ in BAD])
def test_a_bad_argument_is_a_one_line_usage_error(tmp_path, capsys, name, pos, value, names):
    """An action with an argument of the wrong type or range, inserted into a real
    reproducer as its action 1: exit 2, one line naming the file, the action and the
    argument; nothing replayed, no traceback."""
    data = _fixture("linux_4_3-1.json")
    assert data["config"]["ncpus"] == 3 and data["config"]["vpages"] == 4  # GOOD's machine
    args = list(GOOD[name])
    args[pos] = value
    data["actions"].insert(1, [name, args])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    rc, out, err = _replay(capsys, path)
    assert rc == 2, (out, err)
    assert out == ""  # refused before anything replayed
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"flushcheck: error: reproducer {path}: action 1 ({name}): {names} ")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A reproducer ``flushcheck bound`` has just written (linux_4_3 fails S3 at K=2)."""
    d = tmp_path_factory.mktemp("repro")
    assert main(["bound", "linux_4_3", "-k", "2", "-q", "--repro-dir", str(d)]) == 1
    (path,) = [os.path.join(d, f) for f in os.listdir(d) if f.endswith(".json")]
    return path


def test_an_untouched_reproducer_replays_to_its_failure(saved, capsys):
    """The check refuses only what is wrong: the file as saved replays to the failure it
    records, and so does a walk's long history (tests/fixtures, every action kind it uses)."""
    capsys.readouterr()
    with open(saved) as fh:
        data = json.load(fh)
    rc, out, err = _replay(capsys, saved)
    assert rc == 1 and err == "", err
    assert f"  replayed  {data['verdict']}\n" in out
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "replay")
    walk = os.path.join(here, "linux_4_3-walk115.json")
    rc, out, err = _replay(capsys, walk)
    assert rc == 1 and err == "" and "replayed  VIOLATION" in out


def test_the_issue_case_in_a_process(saved, tmp_path):
    """The reported case, end to end: ``flushcheck replay`` (a process of its own) of the
    reproducer ``bound`` saved, the page count of its munmap (mprotect since 2026-12-05: the
    munmap of 2.4 now waits for the reclaim's rmap walk, which makes it one step longer)
    edited to ``"x"``."""
    with open(saved) as fh:
        data = json.load(fh)
    i, name = next((i, n) for i, (n, _a) in enumerate(data["actions"])
                   if n in ("munmap", "mprotect"))
    data["actions"][i][1][2] = "x"
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    r = subprocess.run([sys.executable, "-m", "conformance.cli", "replay", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr == (f'flushcheck: error: reproducer {path}: action {i} ({name}): '
                        f'npages "x" is not an integer in 1..{data["config"]["vpages"]}\n')


@pytest.mark.parametrize("cname", ["default", "big", "empty"])
def test_what_the_walk_writes_passes_the_check(cname):
    """Histories of certify's swarm walk, as a reproducer stores them (JSON), all pass:
    the check accepts every argument the model itself produces."""
    cfg = dict(CONFIG_SETS["default"])[cname]
    for proto in ("linux", "linux_4_3"):
        cls = load_protocol(proto)
        for seed in range(40):
            ex = run_example(cls, cfg, seed=seed, swarm=True)
            m = ex.failure.machine if ex.failure is not None else ex.machine
            acts = json.loads(json.dumps([[n, list(a)] for n, a in m.actions]))
            check_actions(cfg, acts)


def test_check_actions_names_the_first_bad_action():
    with pytest.raises(UsageError, match=r"^action 2 \(fill\): vpage 4\.0 is not an integer"):
        check_actions(DEFAULT, [["fill", [0, 1]], ["advance", [0]], ["fill", [0, 4.0]]])
    with pytest.raises(UsageError, match=r"^unknown action 'nope' at index 0"):
        check_actions(DEFAULT, [["nope", []]])
    with pytest.raises(UsageError, match=r"^action 0 \(munmap\): missing a required argument"):
        check_actions(DEFAULT, [["munmap", [0, 1]]])


# -- max_op_steps ----------------------------------------------------------------------

def test_max_op_steps_below_the_floor_is_refused():
    """Below the floor a correct protocol's own paths would be reported as looping."""
    for bad in (0, 1, MAX_OP_STEPS_FLOOR - 1):
        with pytest.raises(ValueError, match="max_op_steps"):
            MachineConfig(max_op_steps=bad)
    assert MachineConfig(max_op_steps=MAX_OP_STEPS_FLOOR).max_op_steps == MAX_OP_STEPS_FLOOR
    assert MAX_OP_STEPS_FLOOR < DEFAULT.max_op_steps


@pytest.mark.parametrize("cmd", [["bound", "linux", "-k", "1", "-q"],
                                 ["certify", "linux", "--budget", "1", "--jobs", "1"]])
def test_a_low_max_op_steps_is_a_one_line_usage_error(capsys, cmd):
    """The CLIs that take ``--config`` (certify, bound; soundness takes config sets only)
    refuse it in one line, exit 2, before any search: no PROTOCOL-ERROR verdict."""
    assert main(cmd + ["--config", "max_op_steps=1"]) == 2
    out, err = capsys.readouterr()
    assert "FAIL" not in out and "PROTOCOL" not in out
    assert err.strip() == ("flushcheck: error: bad --config: 'max_op_steps' must be >= "
                           f"{MAX_OP_STEPS_FLOOR}: 1")


def test_a_reproducer_with_a_low_max_op_steps_is_refused(saved, tmp_path, capsys):
    with open(saved) as fh:
        data = json.load(fh)
    data["config"]["max_op_steps"] = 1
    bad = tmp_path / "low.json"
    bad.write_text(json.dumps(data))
    rc, out, err = _replay(capsys, bad)
    assert rc == 2 and "bad config" in err and "max_op_steps" in err


def test_mainline_passes_at_the_floor(capsys):
    """The floor is enough for the model's own paths: mainline passes the bounded check and
    swarm walks on the largest config of the default set with the cap at the floor."""
    assert main(["bound", "linux", "-k", "1", "-q", "--config",
                 f"max_op_steps={MAX_OP_STEPS_FLOOR}"]) == 0
    capsys.readouterr()
    big = attrs.evolve(dict(CONFIG_SETS["default"])["big"], max_op_steps=MAX_OP_STEPS_FLOOR)
    for proto in ("linux", "immediate"):
        cls = load_protocol(proto)
        for seed in range(100):
            assert run_example(cls, big, seed=seed, swarm=True).failure is None


def test_a_directory_is_no_reproducer(tmp_path, capsys):
    """``flushcheck replay DIR``: one line that says what it is (it said "not valid JSON
    (IsADirectoryError)")."""
    assert main(["replay", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a directory, not a reproducer file" in err


# -- JSON nested too deeply, fields of the wrong type ------------------------------------

def _deep(depth: int, inner="0") -> str:
    return "[" * depth + inner + "]" * depth


def _nested(depth: int):
    x = 0
    for _ in range(depth):
        x = [x]
    return x


@pytest.mark.parametrize("where", ["file", "argument", "seed"])
def test_json_nested_too_deeply_is_a_one_line_error(tmp_path, capsys, where):
    """A file nested past json's recursion limit (``replay r/deep.json``), or a field nested
    just below it (which repr() and json.dumps then recursed on), is bad input: one line,
    exit 2. It was a RecursionError: a traceback, exit 3."""
    path = tmp_path / "deep.json"
    if where == "file":
        path.write_text(_deep(100_000))
    else:
        data = _fixture("linux_4_3-1.json")
        if where == "argument":
            data["actions"][1][1][0] = "DEEP"
        else:
            data["seed"] = "DEEP"
        path.write_text(json.dumps(data).replace('"DEEP"', _deep(980)))
    rc, out, err = _replay(capsys, path)
    assert rc == 2 and out == "", (out, err)
    assert err == (f"flushcheck: error: reproducer {path}: not a reproducer (JSON nested more "
                   "than 32 levels deep)\n")


def test_a_certificate_nested_too_deeply_is_a_one_line_error(tmp_path, capsys):
    """``certify --reproduce`` of such a file: one line, exit 2 (a traceback, exit 3)."""
    path = tmp_path / "certificate.json"
    path.write_text(_deep(100_000))
    assert main(["certify", "--reproduce", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (f"flushcheck: error: cannot read certificate {path}: JSON "
                                 "nested more than 32 levels deep\n")


def test_a_walk_database_entry_nested_too_deeply_is_skipped():
    """A saved walk run that cannot be read is not this run's verdict: skipped (counted as
    an example), as any other malformed entry; a RecursionError ended certify (exit 3)."""
    from conformance.certify import Chunk, run_walk_chunk
    from conformance.database import campaign_key

    key = campaign_key("linux", DEFAULT, False)
    saved = {key + b".actions": [_deep(100_000).encode(),
                                 json.dumps({"config": {}, "actions": _nested(100)}).encode()]}
    ex, _steps, found, *_ = run_walk_chunk(load_protocol("linux"), DEFAULT, False, 50,
                                           Chunk(0, 1, 3), 0.0, saved, key)
    assert found == [] and ex == 3 + 2


@pytest.mark.parametrize("field,value,says", [
    ("strict", "no", "'strict' must be true or false, not \"no\""),
    ("strict", 1, "'strict' must be true or false, not 1"),
    ("seed", "3", "'seed' must be an integer, not \"3\""),
    ("verdict", ["S3"], "'verdict' must be a string, not [\"S3\"]"),
    ("rule", "S9", "'rule' must be one of S1, S2, S3, C1, O1, O1-strict, PROTOCOL-ERROR, "
                   "MODEL-ERROR, not \"S9\""),
    ("batch_gen_bits", True, "bad config ('batch_gen_bits' must be an integer, not True)"),
])
def test_a_reproducer_field_of_the_wrong_type_is_refused(tmp_path, capsys, field, value, says):
    """``"strict": "no"`` replayed strict (Python's truth of a string), ``batch_gen_bits:
    true`` ran with one bit (True == 1): both are bad input now, one line, exit 2."""
    data = _fixture("linux_4_3-1.json")
    if field == "batch_gen_bits":
        data["config"][field] = value
    else:
        data[field] = value
    path = tmp_path / "typed.json"
    path.write_text(json.dumps(data))
    rc, out, err = _replay(capsys, path)
    assert rc == 2 and out == "", (out, err)
    assert err == f"flushcheck: error: reproducer {path}: {says}\n"
    with pytest.raises(ValueError, match="batch_gen_bits"):
        MachineConfig(batch_gen_bits=True)


# -- size limits (config.LIMITS) --------------------------------------------------------

TOO_LARGE = [("ncpus", 100_000), ("nframes", 100_000_000), ("nmms", 33), ("vpages", 1025),
             ("max_op_steps", 10**9), ("swap_slots", 10**7)]


def test_every_size_field_has_a_limit_and_the_repo_keeps_to_them():
    """Each integer field of MachineConfig is capped (a new one without a limit fails
    here), the limits are where the docstrings say, and every config the repo names (the
    config sets, the profiles, the bounded check's, the litmus corpus) is within them."""
    from conformance.boundcli import BOUND_CONFIG
    from conformance.config import LIMITS
    from conformance.database import PROFILE_CONFIGS
    from conformance.litmus import corpus

    sizes = {f.name for f in attrs.fields(MachineConfig) if f.type in (int, "int")}
    assert set(LIMITS) == sizes - {"batch_gen_bits"}  # that one: range(1, 16) itself
    assert LIMITS["ncpus"] == 64 and LIMITS["nmms"] * 2 <= LIMITS["ncpus"]
    configs = [c for s in CONFIG_SETS.values() for _, c in s] + list(PROFILE_CONFIGS.values())
    configs += [BOUND_CONFIG] + [sc.config for sc in corpus()]
    for cfg in configs:
        for k, most in LIMITS.items():
            assert getattr(cfg, k) <= most
    MachineConfig(**LIMITS)  # all at once: a machine that boots


@pytest.mark.parametrize("key,value", TOO_LARGE)
def test_a_size_beyond_its_limit_is_one_line_wherever_the_config_comes_from(
        tmp_path, capsys, key, value):
    """``--config ncpus=100000 --budget 2`` ran on, past its budget, into gigabytes; a
    reproducer with ``ncpus=10**6`` reported a false PROTOCOL ERROR (its boot outran the
    watchdog), then hung. Now every source of a config refuses it in one line, exit 2:
    --config (certify, bound), a reproducer, a litmus ``config`` line (naming its line),
    a certificate."""
    from conformance.config import LIMITS

    says = f"'{key}' must be <= {LIMITS[key]}: {value}"
    for cmd in (["certify", "linux", "--budget", "2", "--jobs", "1", "--database", "none"],
                ["bound", "linux", "-k", "1", "-q"]):
        assert main(cmd + ["--config", f"{key}={value}"]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err == f"flushcheck: error: bad --config: {says}\n"
    data = _fixture("linux_4_3-1.json")
    data["config"][key] = value
    repro = tmp_path / "big.json"
    repro.write_text(json.dumps(data))
    rc, out, err = _replay(capsys, repro)
    assert rc == 2 and out == "" and err == f"flushcheck: error: reproducer {repro}: bad config ({says})\n"
    lit = tmp_path / "big.litmus"
    lit.write_text(f"name big\nconfig populate=false {key}={value}\nCPU0 touch w v0\n")
    assert main(["litmus", "--dir", str(tmp_path), "--protocol", "linux"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"flushcheck: error: {lit}:2: cannot parse ") and says in err
    assert err.count("\n") == 1  # a certificate's: tests/test_user_errors.py, DAMAGED


def test_a_walk_database_entry_beyond_the_limits_is_skipped(monkeypatch):
    """An entry whose machine is too large (``nframes=10**7``: certify hung booting it) is
    no run of this model: skipped, as a malformed one, without booting its machine."""
    from conformance import reproducer
    from conformance.certify import Chunk, run_walk_chunk
    from conformance.database import campaign_key

    booted, replay = [], reproducer.replay_actions

    def replay_actions(cls, cfg, *args, **kw):
        booted.append(cfg.nframes)
        return None if cfg.nframes > 4096 else replay(cls, cfg, *args, **kw)

    monkeypatch.setattr(reproducer, "replay_actions", replay_actions)
    key = campaign_key("linux", DEFAULT, False)
    big = json.dumps({"config": {"nframes": 10**7}, "actions": [["advance", [0]]]}).encode()
    ex, _steps, found, *_ = run_walk_chunk(load_protocol("linux"), DEFAULT, False, 50,
                                           Chunk(0, 1, 3), 0.0, {key + b".actions": [big]}, key)
    assert found == [] and ex == 3 + 1 and booted == []


@pytest.mark.parametrize("engine,says", [
    ("walk", "too large for the raw walk: madvise.x draws from 294,912 values"),
    ("hypothesis", "too large for the state machine: mremap.x draws from 18,874,368 values")])
def test_a_machine_too_large_for_the_search_is_refused_at_once(engine, says):
    """Within the limits, a machine can still be too large for a search's rule tables
    (mremap's grows with CPUs x pages x pages): refused before any table is built. At
    ``vpages=1024`` the state machine built them first (minutes, gigabytes): the walk's
    own check came after."""
    r = subprocess.run([sys.executable, "-m", "conformance.cli", "certify", "linux",
                        "--budget", "2", "--jobs", "1", "--database", "none", "--engine", engine,
                        "--config", "vpages=1024"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert says in r.stderr and r.stderr.count("\n") == 1


def test_jobs_are_capped_at_the_chunks_of_an_example_budget(monkeypatch):
    """``--jobs 100000 --examples 1`` forked every worker up front (a process pool does):
    now as many as there are chunks."""
    from conformance import certify as certify_mod

    asked, real = [], certify_mod.open_workers

    def workers(jobs, scheduler=None):  # what certify asks for; one process runs it
        asked.append(jobs)
        return real(1, scheduler)

    monkeypatch.setattr(certify_mod, "open_workers", workers)
    r = certify_mod.certify("linux", budget_s=None, max_examples=1, jobs=100_000)
    assert asked == [1] and r.jobs == 1 and r.examples == 1
    certify_mod.certify("linux", budget_s=None, max_examples=30, chunk=10, jobs=100_000)
    assert asked == [1, 3]


@pytest.mark.parametrize("change, says", [
    # an attrs validator's error printed the attribute's whole repr, with addresses
    ({"config": {"batch_gen_bits": 0}},
     "bad config ('batch_gen_bits' must be in range(1, 16) (got 0))"),
    # replay printed "PASS: the recorded failure did not reproduce", exit 0 (a failure at
    # boot, step 0, has no actions: test_stuck_for_good replays one)
    ({"actions": []}, "no actions, and its verdict is no failure at boot (step 0): nothing "
                      "to replay"),
    # it said "missing 'protocol' or 'config'" of a config that was there (2026-12-06)
    ({"config": "x"}, "'config' is str 'x', not a JSON object"),
    # replay printed linux_4_3 in its header and ran linux's code, exit 0
    ({"protocol_ref": "linux"},
     "reproducer names protocol 'linux_4_3', but its protocol_ref 'linux' loads 'linux'"),
])
def test_a_reproducer_that_says_one_thing_and_does_another_is_refused(saved, tmp_path, capsys,
                                                                      change, says):
    """A review, 2026-12-05: three reproducers replay answered wrongly or unreadably."""
    with open(saved) as fh:
        data = json.load(fh)
    for key, value in change.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    rc, out, err = _replay(capsys, bad)
    assert rc == 2 and out == "", (rc, out, err)
    assert err.strip() == f"flushcheck: error: reproducer {bad}: {says}", err
