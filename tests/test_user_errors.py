"""Bad input and bad protocols never end flushcheck silently or with a bare traceback: a
protocol's ``sys.exit()`` (in a hook, at boot, at import), a damaged certificate, options
``certify --reproduce`` would ignore, an unwritable ``new --dir``, an internal bug (exit 3
with its traceback), an ``EXPECTED_VIOLATION`` that is no rule, a misspelt hook name."""
from __future__ import annotations

import json
import os
import textwrap

import pytest

from conformance import cli, registry
from conformance.cli import EXIT_BUG, EXIT_FAIL, EXIT_INTERRUPTED, EXIT_PASS, EXIT_USAGE, main
from conformance.errors import UsageError
from conformance.registry import load_protocol, protocol_names


def _protocol(tmp_path, name: str, body: str) -> str:
    """A protocol file ``tmp_path/name.py``: a subclass of linux with ``body`` in it (or,
    when ``body`` starts with ``module:``, that module text alone)."""
    path = tmp_path / f"{name}.py"
    if body.startswith("module:"):
        text = body[len("module:"):]
    else:
        text = ("import sys\nfrom protocols.linux import Linux\n\n\nclass P(Linux):\n"
                + textwrap.indent(textwrap.dedent(body), "    "))
    path.write_text(textwrap.dedent(text))
    return str(path)


def _certify(path, tmp_path, *extra):
    return main(["certify", path, "--examples", "50", "--jobs", "1", "--database", "none",
                 "--repro-dir", str(tmp_path / "repro"), *extra])


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- 1. a protocol's SystemExit ---------------------------------------------------------
@pytest.mark.parametrize("engine", ["walk", "hypothesis"])
def test_hook_system_exit_is_a_protocol_error(tmp_path, capsys, engine):
    """A hook's ``sys.exit(0)`` is a PROTOCOL ERROR with its reproducer (exit 1), on both
    engines; before, certify ended there with status 0 and no output: a silent PASS."""
    path = _protocol(tmp_path, "exits", """
        def try_to_unmap_flush(self, task):
            sys.exit(0)
    """)
    assert _certify(path, tmp_path, "--engine", engine) == EXIT_FAIL
    out = capsys.readouterr().out
    assert "PROTOCOL ERROR" in out and "SystemExit" in out, out
    name = "exits-0.json" if engine == "walk" else f"exits-0-{engine}.json"  # cli._repro_stem
    repro = tmp_path / "repro" / name
    assert repro.exists()
    assert main(["replay", str(repro)]) == EXIT_FAIL  # the reproducer replays it
    assert "PROTOCOL ERROR" in capsys.readouterr().out


@pytest.mark.parametrize("hook, raises", [
    ("init_task(self, task)", "sys.exit(0)"),
    ("init_task(self, task)", "raise ValueError('boom')"),
    ("context_switch(self, cpu, prev, nxt)", "sys.exit(0)"),
])
def test_a_hook_outside_any_step_is_a_protocol_error_too(tmp_path, capsys, hook, raises):
    """``init_task`` (an operation's start) and ``context_switch`` (a switch_mm action) run
    outside an operation's step: what they raise is a PROTOCOL ERROR too (Machine.call_hook),
    not a crash of the suite (a ValueError in init_task crashed shrinking, exit 1)."""
    path = _protocol(tmp_path, "outside", f"""
        def {hook}:
            {raises}
    """)
    assert _certify(path, tmp_path) == EXIT_FAIL
    out = capsys.readouterr().out
    assert "PROTOCOL ERROR" in out and hook.split("(")[0] in out, out


BOOM = "class Boom(BaseException):\n    pass\n\n\n"


@pytest.mark.parametrize("engine", ["walk", "hypothesis"])
@pytest.mark.parametrize("raises", ["GeneratorExit('x')", "Boom('boom')"])
def test_hook_base_exception_is_a_protocol_error(tmp_path, capsys, engine, raises):
    """A hook raising a BaseException that is no Exception (``GeneratorExit``, a class of
    the protocol's own) is a PROTOCOL ERROR (exit 1), as its ``sys.exit()`` is; the machine
    caught only Exception and SystemExit, and the run ended with Python's traceback (exit 1,
    read as a violation), under either engine."""
    path = _protocol(tmp_path, "base_exc", "module:from protocols.linux import Linux\n\n\n"
                     + BOOM + "class P(Linux):\n    def try_to_unmap_flush(self, task):\n"
                     f"        raise {raises}\n")
    assert _certify(path, tmp_path, "--engine", engine) == EXIT_FAIL
    out, err = capsys.readouterr()
    assert "PROTOCOL ERROR" in out and raises.split("(")[0] in out, out
    assert "Traceback" not in err, err


def test_hook_keyboard_interrupt_still_interrupts(tmp_path, capsys):
    """Ctrl-C in a hook is no protocol error: the run stops as interrupted (130)."""
    path = _protocol(tmp_path, "ctrl_c", """
        def try_to_unmap_flush(self, task):
            raise KeyboardInterrupt
    """)
    assert _certify(path, tmp_path) == EXIT_INTERRUPTED
    assert "PROTOCOL ERROR" not in capsys.readouterr().out


def test_boot_and_import_system_exit_are_bad_input(tmp_path, capsys):
    """``sys.exit()`` in ``init_mm`` (booting) or at import: one line, exit 2."""
    boot = _protocol(tmp_path, "boot_exits", """
        def init_mm(self, mm):
            raise SystemExit(0)
    """)
    assert _certify(boot, tmp_path) == EXIT_USAGE
    assert "cannot boot a machine: SystemExit" in _one_line(capsys.readouterr().err)
    imp = _protocol(tmp_path, "import_exits", "module:import sys\nsys.exit(0)\n")
    assert _certify(imp, tmp_path) == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert imp in line and "sys.exit()" in line
    with pytest.raises(UsageError):  # and so for every command that loads it
        load_protocol(imp)


@pytest.mark.parametrize("raises", ["GeneratorExit('x')", "Boom('at import')"])
def test_import_base_exception_is_bad_input(tmp_path, capsys, monkeypatch, raises):
    """A module raising a BaseException that is no Exception when imported is bad input in
    one line (exit 2), as a file, as ``module:Class`` and in ``flushcheck list``; it was a
    traceback (and ``list`` crashed on it)."""
    path = _protocol(tmp_path, "import_boom", f"module:{BOOM}raise {raises}\n")
    assert _certify(path, tmp_path) == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert path in line and raises.split("(")[0] in line, line
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UsageError, match="import_boom cannot be imported: "):
        load_protocol("import_boom:P")


# -- 2. damaged certificates ------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A real certificate (linux, PASS): its path."""
    out = tmp_path_factory.mktemp("cert")
    assert main(["certify", "linux", "--examples", "5", "--chunk", "5", "--jobs", "1",
                 "--database", "none", "--repro-dir", str(out / "repro"),
                 "--out", str(out / "c")]) == EXIT_PASS
    return str(out / "c" / "certificate.json")


def _pop(*keys):
    def damage(cert):
        for k in keys[:-1]:
            cert = cert[k]
        cert.pop(keys[-1])
    return damage


def _set(value, *keys):
    def damage(cert):
        for k in keys[:-1]:
            cert = cert[k]
        cert[keys[-1]] = value
    return damage


DAMAGED = [  # (damage, the field the one-line error must name)
    (_pop("run"), "run"),
    (_pop("config"), "config"),
    (_pop("verdict"), "verdict"),
    (_pop("protocol"), "protocol"),
    (_pop("protocol", "ref"), "protocol.ref"),
    (_set("5", "run", "seed"), "run.seed"),
    (_set(True, "run", "seed"), "run.seed"),
    (_set(0, "config", "ncpus"), "config.ncpus"),
    (_set(100_000, "config", "ncpus"), "config.ncpus"),  # beyond config.LIMITS
    (_set({"config": {"nframes": 10**7}, "menu": ["read"], "strict": False, "bound": 1,
           "passed": True, "complete_k": 1, "levels": []}, "bounded"), "bounded.config.nframes"),
    (_set(1, "config", "no_such_key"), "config.no_such_key"),
    (_set([1], "run"), "run"),
    (_set(0, "run", "chunk"), "run.chunk"),
    (_set("fast", "run", "engine"), "run.engine"),
    (_set(1, "run", "strict"), "run.strict"),
    (_set(None, "flushcheck", "commit"), "flushcheck.commit"),
    (_set({"config": {}, "menu": ["read"], "strict": False, "bound": 1, "passed": True,
           "complete_k": 1, "levels": [{"k": 1}]}, "bounded"), "bounded.levels[0].states"),
]


@pytest.mark.parametrize("damage,field", DAMAGED, ids=[f for _, f in DAMAGED])
def test_damaged_certificate_is_one_line(certificate, tmp_path, capsys, damage, field):
    """Each damaged field is refused in one line naming the file and the field (exit 2),
    not a KeyError or TypeError traceback from the re-run."""
    cert = json.load(open(certificate))
    damage(cert)
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(cert))
    assert main(["certify", "--reproduce", str(path), "--jobs", "1"]) == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert str(path) in line and f" {field}" in line, line


def test_undamaged_certificate_reproduces(certificate, capsys):
    assert main(["certify", "--reproduce", certificate, "--jobs", "1"]) == EXIT_PASS
    assert "MATCHED" in capsys.readouterr().out


# -- 5. options --reproduce would ignore ------------------------------------------------
@pytest.mark.parametrize("extra,named", [
    (["linux_4_3"], "protocol"),
    (["--strict", "--config", "ncpus=2", "--seed", "5"], "--seed, --strict, --config"),
    (["--out", "d"], "--out"),
    (["--engine", "hypothesis", "--examples", "9", "--chunk", "3"], "--examples"),
    (["--bound", "1", "--database", "none", "--profile", "ci"], "--bound"),
])
def test_reproduce_refuses_other_options(certificate, capsys, extra, named):
    """The certificate fixes the protocol, seed, config...: anything else given with
    --reproduce is refused in one line naming it; --jobs stays allowed."""
    words = extra[:1] if extra[0] == "linux_4_3" else []
    rest = extra[1:] if words else extra
    assert main(["certify", *words, "--reproduce", certificate, "--jobs", "1", *rest]) \
        == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert named in line and "--jobs" in line, line


# -- 3. flushcheck new --dir ------------------------------------------------------------
@pytest.mark.parametrize("where", ["/proc", "/sys"])
def test_new_into_unwritable_dir_is_one_line(where, capsys):
    if not os.path.isdir(where):
        pytest.skip(f"no {where} here")
    assert main(["new", "zz_flushcheck_test", "--dir", where]) == EXIT_USAGE
    assert f"cannot write {where}/zz_flushcheck_test.py" in _one_line(capsys.readouterr().err)


def test_new_makes_a_missing_dir(tmp_path, capsys):
    """Like ``certify --out a/b/c``, ``new --dir a/b/c`` makes its path; a file there is
    refused in one line."""
    where = tmp_path / "a" / "b"
    assert main(["new", "mine", "--dir", str(where)]) == EXIT_PASS
    assert load_protocol(str(where / "mine.py")).name == "mine"
    (tmp_path / "f").write_text("")
    capsys.readouterr()
    assert main(["new", "mine", "--dir", str(tmp_path / "f")]) == EXIT_USAGE
    assert "not a directory" in _one_line(capsys.readouterr().err)


# -- 4. an internal bug ------------------------------------------------------------------
def test_uncaught_exception_is_a_bug_with_its_traceback(monkeypatch, capsys):
    """Exit 3 (not Python's 1, a violation), the traceback, then one line saying so."""
    def broken(args):
        raise RuntimeError("a flushcheck bug")

    monkeypatch.setattr(cli, "cmd_list", broken)
    assert main(["list"]) == EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: a flushcheck bug" in err
    assert err.strip().splitlines()[-1] == ("flushcheck: internal error (a flushcheck bug, "
                                            "please report it with the traceback above)")


def test_uncaught_base_exception_is_a_bug_too(monkeypatch, capsys):
    """A BaseException that is no Exception (a GeneratorExit) reaching the command line is
    a bug as any other: exit 3 and the line, not Python's traceback and exit 1."""
    def broken(args):
        raise GeneratorExit("a flushcheck bug")

    monkeypatch.setattr(cli, "cmd_list", broken)
    assert main(["list"]) == EXIT_BUG
    err = capsys.readouterr().err
    assert "GeneratorExit: a flushcheck bug" in err
    assert err.strip().splitlines()[-1].startswith("flushcheck: internal error")


# -- 6. EXPECTED_VIOLATION ----------------------------------------------------------------
def test_expected_violation_must_be_a_rule(tmp_path, capsys):
    mod = _protocol(tmp_path, "s9", "module:from protocols.linux import Linux\n\n\n"
                    "class S9(Linux):\n    pass\n\n\nEXPECTED_VIOLATION = 'S9'\n")
    assert _certify(mod, tmp_path) == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert "module EXPECTED_VIOLATION = 'S9' is not a rule" in line and mod in line
    cls = _protocol(tmp_path, "cls_s9", "EXPECTED_VIOLATION = 'S-3'\n")
    with pytest.raises(UsageError, match="class P EXPECTED_VIOLATION = 'S-3'"):
        load_protocol(cls)
    ok = _protocol(tmp_path, "ok_o1", "module:from protocols.linux import Linux\n\n\n"
                   "class Ok(Linux):\n    pass\n\n\nEXPECTED_VIOLATION = 'O1-strict'\n")
    assert load_protocol(ok).name == "ok_o1"


def test_policy_constants_must_be_values_the_model_implements(tmp_path, capsys):
    """ZAP_DIRTY_FILE_PTE = (False, True) (a delayed rmap no forced flush removes) and a
    non-bool MIGRATE_FLUSH_BEFORE_COPY (or RECHECK_AFTER_RELOCK, MMU_GATHER_MERGE_VMAS) are
    one-line errors, exit 2; the three kernels' values load, and both gather settings."""
    odd = _protocol(tmp_path, "odd_zap", "ZAP_DIRTY_FILE_PTE = (False, True)\n")
    assert _certify(odd, tmp_path) == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert "ZAP_DIRTY_FILE_PTE = (False, True) is not one of (True, True)" in line and odd in line
    for i, body in enumerate(("ZAP_DIRTY_FILE_PTE = [True, True]\n",
                              "ZAP_DIRTY_FILE_PTE = (1, 1)\n",
                              "MIGRATE_FLUSH_BEFORE_COPY = 'no'\n",
                              "RECHECK_AFTER_RELOCK = None\n",
                              "MMU_GATHER_MERGE_VMAS = 1\n")):
        with pytest.raises(UsageError, match="is not"):
            load_protocol(_protocol(tmp_path, f"bad_const{i}", body))
    for i, value in enumerate(((True, True), (True, False), (False, False))):
        ok = _protocol(tmp_path, f"zap_ok{i}", f"ZAP_DIRTY_FILE_PTE = {value!r}\n")
        assert load_protocol(ok).ZAP_DIRTY_FILE_PTE == value
    arm64 = _protocol(tmp_path, "per_vma_flush", "MMU_GATHER_MERGE_VMAS = False\n")
    assert load_protocol(arm64).MMU_GATHER_MERGE_VMAS is False


@pytest.mark.parametrize("body, says", [
    ("try_to_unmap_flush = 5\n", "hook try_to_unmap_flush = 5 is not callable"),
    ("tlb_flush_mmu = None\n", "hook tlb_flush_mmu = None is not callable"),
    ("try_to_unmap_flush = len\n", "hook try_to_unmap_flush = <built-in function len> is no "
     "Python function: flushcheck calls every hook as a method; write it as "
     "def try_to_unmap_flush(self, task)"),
    ("try_to_unmap_flush = print\n", "hook try_to_unmap_flush = <built-in function print> is "
     "no Python function"),
    # these two took the hook's arguments and ran into a MODEL ERROR ('functools.partial'
    # object has no attribute '__name__'; a review, 2026-12-05)
    ("try_to_unmap_flush = __import__('functools').partial(lambda self, task: None)\n",
     "hook try_to_unmap_flush = functools.partial(<function P.<lambda>>) is no Python function"),
    ("class _W:\n    def __call__(self, *a):\n        return None\n"
     "try_to_unmap_flush = _W()\n", "hook try_to_unmap_flush = <"),
])
def test_a_hook_the_kernel_cannot_call_is_bad_input(tmp_path, capsys, body, says):
    """A hook that is no callable, or a callable that is no Python function, is refused when
    the protocol loads, in one line (exit 2): its call failed in flushcheck's own frames
    (``fn.__name__`` of an int, a partial, an object), a MODEL ERROR or a crash of certify
    while it shrank the failure. A ``def`` loads."""
    path = _protocol(tmp_path, "uncallable", body)
    assert _certify(path, tmp_path) == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert says in line and path in line and " at 0x" not in line, line
    assert line.endswith("is no Python function: flushcheck calls every hook as a method; "
                         "write it as def try_to_unmap_flush(self, task)") or "callable" in line
    ok = _protocol(tmp_path, "takes_them", "def try_to_unmap_flush(self, task):\n"
                                           "    return None\n")
    assert load_protocol(ok).name == "takes_them"


def test_a_protocol_that_refuses_a_subclass_is_bad_input(tmp_path, capsys):
    """``__init_subclass__`` raising (a "final" class): flushcheck subclasses every protocol
    it loads, and the refusal was a traceback (exit 3). One line, exit 2."""
    path = _protocol(tmp_path, "final", """
        def __init_subclass__(cls, **kw):
            raise TypeError("P is final")
    """)
    assert _certify(path, tmp_path) == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert "cannot be subclassed" in line and "TypeError: P is final" in line, line


# -- 7. a misspelt hook ---------------------------------------------------------------------
def test_misspelt_hook_warns_once(tmp_path, capsys, monkeypatch):
    """A method named like a hook but no hook is never called: one warning line (once per
    class), the exit status unchanged; a helper named unlike any hook is no warning."""
    monkeypatch.setattr(registry, "_CHECKED", set())
    path = _protocol(tmp_path, "my_flush", """
        def try_to_unmap_flush_dirtyy(self, task):
            pass

        def my_helper(self):
            pass
    """)
    load_protocol(path)
    load_protocol(path)
    assert capsys.readouterr().err.splitlines() == [
        "flushcheck: warning: my_flush.try_to_unmap_flush_dirtyy is no Protocol hook and is "
        "never called (did you mean try_to_unmap_flush_dirty?)"]
    monkeypatch.setattr(registry, "_CHECKED", set())
    assert main(["certify", path, "--examples", "5", "--chunk", "5", "--jobs", "1",
                 "--database", "none", "--repro-dir", str(tmp_path)]) == EXIT_PASS
    assert "did you mean try_to_unmap_flush_dirty?" in capsys.readouterr().err


def test_builtin_protocols_load_without_warning(capsys, monkeypatch):
    """Every module in protocols/ loads (its EXPECTED_VIOLATION a rule) and none warns:
    their helper methods (luf_flushed, batch_reset...) are named unlike any hook."""
    monkeypatch.setattr(registry, "_CHECKED", set())
    for name in protocol_names():
        load_protocol(name)
    assert capsys.readouterr().err == ""


def test_version_cost_errors_and_plurals(capsys):
    """``--version`` names the version and commit; cost's argument errors are one line, as
    every other subcommand's; a report counts one example as one."""
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("flushcheck ")
    with pytest.raises(SystemExit) as e:
        main(["cost", "linux", "--ops", "x"])
    assert e.value.code == 2
    assert "invalid int value: 'x'" in _one_line(capsys.readouterr().err)
    assert main(["certify", "linux", "--examples", "1", "--chunk", "1", "--jobs", "1",
                 "--database", "none"]) == 0
    out = capsys.readouterr().out
    assert "budget 1 example " in out and "0 violations in 1 example," in out


def test_a_removed_working_directory_is_one_line(tmp_path, monkeypatch, capsys):
    """certify from a directory removed after the shell entered it (a clone deleted under a
    running loop): one line and exit 2, not the traceback of ``os.path.abspath``."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    rc = main(["certify", "linux", "--budget", "1", "--jobs", "1"])
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE, err
    assert "current directory no longer exists" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_protocol_naming_the_base_class_is_refused_as_module_class_is(tmp_path, capsys):
    """A module whose ``PROTOCOL`` is the base class itself was accepted (and certified: the
    interface's hooks, no policy), while ``conformance.protocol:Protocol`` was refused: both
    are refused now, in the same words, exit 2."""
    path = _protocol(tmp_path, "base_itself",
                     "module:from conformance.protocol import Protocol\nPROTOCOL = Protocol\n")
    assert _certify(path, tmp_path) == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert main(["certify", "conformance.protocol:Protocol", "--examples", "5"]) == EXIT_USAGE
    other = _one_line(capsys.readouterr().err)
    why = (" is not a subclass of conformance.protocol.Protocol (it is that base class "
           "itself)")
    assert line == f"flushcheck: error: {path}: PROTOCOL{why}", line
    assert other == f"flushcheck: error: conformance.protocol:Protocol{why}", other


def test_a_stuck_protocol_frame_outside_any_step_is_a_protocol_error(monkeypatch, capsys):
    """The watchdog's HookStuck (a BaseException) raised in protocol code that runs outside
    an operation's step (its ``__eq__`` while a state key is taken) reached the command line
    as a flushcheck bug: a traceback and exit 3. It is the protocol's: one line, exit 1."""
    from conformance.watchdog import HookStuck

    def stuck(args):
        raise HookStuck("Mine.__eq__ ran for 5 s without returning (a loop with no "
                        "interleaving point? mine.py:7)")

    monkeypatch.setattr(cli, "cmd_list", stuck)
    assert main(["list"]) == EXIT_FAIL
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("flushcheck: protocol error: Mine.__eq__ ran for 5 s") and \
        "no reproducer" in err


@pytest.mark.parametrize("argv", [
    ["certify", "linux", "--jobs", "100000", "--budget", "1"],
    ["soundness", "--jobs", "100000", "--budget", "1"],
    ["bound", "linux", "-k", "1", "--jobs", "100000"],
])
def test_more_local_jobs_than_the_machine_runs_is_one_line(argv, capsys):
    """``--jobs 100000`` with a time budget forked worker after worker up front (a review,
    2026-12-05); local worker processes are capped at 8 per CPU (at least 64)."""
    assert main(argv) == EXIT_USAGE
    err = _one_line(capsys.readouterr().err)
    assert "--jobs 100000 is more local worker processes than this machine runs" in err


def test_a_module_getattr_that_raises_is_not_read(tmp_path, capsys):
    """A module ``__getattr__`` that raises: the loader's ``getattr(mod, "PROTOCOL")`` and
    ``"EXPECTED_VIOLATION"`` reads raised through it, a traceback and exit 3 (a review,
    2026-12-05). The module's names are read from its namespace; it certifies as linux."""
    path = _protocol(tmp_path, "modgetattr", "module:from protocols.linux import Linux\n\n\n"
                     "class A(Linux):\n    pass\n\n\ndef __getattr__(name):\n"
                     "    raise RuntimeError('no ' + name)\n")
    assert _certify(path, tmp_path) == EXIT_PASS, capsys.readouterr()
    assert "verdict   PASS" in capsys.readouterr().out


@pytest.mark.parametrize("value", ['"yes"', "1", "0"])
def test_correct_must_be_a_bool(tmp_path, capsys, value):
    """``CORRECT = "yes"`` loaded, and the soundness campaign (``is True``) left the protocol
    out without a word. One line, exit 2; ``CORRECT = False`` loads."""
    path = _protocol(tmp_path, "correct", f"module:from protocols.linux import Linux\n"
                     f"CORRECT = {value}\n\n\nclass A(Linux):\n    pass\n")
    assert _certify(path, tmp_path) == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert "module CORRECT = " in line and "is not True or False" in line and path in line, line
    ok = _protocol(tmp_path, "correct_ok", "module:from protocols.linux import Linux\n"
                   "CORRECT = False\n\n\nclass A(Linux):\n    pass\n")
    assert load_protocol(ok).name == "correct_ok"


@pytest.mark.parametrize("where", ["module", "class"])
def test_correct_and_an_expected_violation_contradict(tmp_path, capsys, where):
    """``CORRECT = True`` beside ``EXPECTED_VIOLATION = "S3"`` loaded: the soundness
    campaign took the protocol for correct, the test plugin expected S3, and certify
    printed "FAIL: S3 (as the module declares)" (a user review, 2026-12-06). One line, exit
    2; either alone loads."""
    expect = 'EXPECTED_VIOLATION = "S3"\n'
    body = ("module:from protocols.linux import Linux\nCORRECT = True\n"
            + (expect if where == "module" else "") + "\n\nclass A(Linux):\n"
            + ("    " + expect if where == "class" else "    pass\n"))
    path = _protocol(tmp_path, f"both_{where}", body)
    assert _certify(path, tmp_path) == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert "CORRECT = True and EXPECTED_VIOLATION = 'S3' contradict each other" in line, line
    for name, text in (("only_correct", body.replace(expect, "").replace(
                            "class A(Linux):\n", "class A(Linux):\n    pass\n")),
                       ("only_expected", body.replace("CORRECT = True\n", ""))):
        assert load_protocol(_protocol(tmp_path, f"{name}_{where}", text)).name.startswith(name)


def test_a_hooks_long_message_stays_on_one_line(tmp_path, capsys):
    """A hook raising an exception whose message has 100 lines put all of them into the
    PROTOCOL ERROR headline of certify, bound and cost (a review, 2026-12-05): its first
    line now, and how many it left out."""
    path = _protocol(tmp_path, "chatty", """
        def try_to_unmap_flush(self, task):
            raise ValueError("\\n".join(f"line {i}" for i in range(100)))
    """)
    assert _certify(path, tmp_path) == EXIT_FAIL
    out = capsys.readouterr().out
    (head,) = [ln for ln in out.splitlines() if ln.startswith("PROTOCOL ERROR at step")]
    assert "ValueError in " in head and ": line 0 [and 99 more lines]" in head, head
    assert "line 1\n" not in out and "line 99" not in out


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_protocols_os_exit_is_its_error(tmp_path, jobs):
    """``os._exit(0)`` in a hook ended certify with status 0 and no output (a PASS to a
    script that reads the status), and with two jobs read "a worker process died (killed by
    the OS?)", exit 3; at import it ended the process too (a review, 2026-12-05). Run in a
    process of its own: on the old code the call ends it."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    hook = _protocol(tmp_path, "exits", """
        def try_to_unmap_flush(self, task):
            __import__("os")._exit(0)
    """)
    at_import = _protocol(tmp_path, "exits_at_import", "module:import os\nos._exit(0)\n")

    def certify(path):
        return subprocess.run([sys.executable, "-c", "import sys; from conformance.cli import "
                               "main; sys.exit(main(sys.argv[1:]))", "certify", path,
                               "--examples", "50", "--jobs", jobs, "--database", "none",
                               "--repro-dir", str(tmp_path / "r")], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    r = certify(hook)
    assert r.returncode == EXIT_FAIL, (r.returncode, r.stdout, r.stderr)
    assert "verdict   PROTOCOL ERROR" in r.stdout and "HookRuleBroken" in r.stdout
    assert "os._exit(0) called at exits.py:" in r.stdout, r.stdout
    r = certify(at_import)
    assert r.returncode == EXIT_USAGE, (r.returncode, r.stdout, r.stderr)
    assert "os._exit(0) called at exits_at_import.py:2" in _one_line(r.stderr)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_thread_the_protocol_left_running_does_not_hang_the_command(tmp_path, jobs):
    """A hook that starts a thread and leaves it running: ``flushcheck certify`` printed its
    verdict and never exited with one job, and printed nothing with two (each worker waited
    for its threads at exit, and the parent for the workers; a review, 2026-12-05). The
    command ends now, with a warning line; the workers get EXIT_GRACE_S (1 s here)."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    path = _protocol(tmp_path, "threads", """
        def try_to_unmap_flush(self, task):
            import threading, time
            threading.Thread(target=time.sleep, args=(600,)).start()
            return super().try_to_unmap_flush(task)
    """)
    def command(*argv):
        return subprocess.run([sys.executable, "-c", "import sys; from conformance import "
                               "executors; executors.EXIT_GRACE_S = 1; from conformance.cli "
                               "import console_main; sys.argv[0] = 'flushcheck'; "
                               "console_main()", *argv, "--jobs", jobs, "--repro-dir",
                               str(tmp_path / "r")], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    r = command("certify", path, "--examples", "400", "--chunk", "100", "--database", "none")
    assert r.returncode == EXIT_PASS, (r.returncode, r.stdout, r.stderr)
    assert "verdict   PASS: 0 violations in 400 examples" in r.stdout
    if jobs == "1":  # the workers' threads end with them, unseen by the parent
        assert "started by the protocol still running" in _one_line(r.stderr)
    r = command("bound", path, "-k", "1")  # its own pool: it hung as certify's did
    assert r.returncode == EXIT_PASS and "verdict   PASS" in r.stdout, (r.stdout, r.stderr)


def test_a_loop_at_a_protocol_files_top_level_is_stopped(tmp_path, capsys, monkeypatch):
    """``while True: pass`` at a protocol file's top level hung certify for good: the
    watchdog stops only the protocol's frames, and the file was no protocol file until it
    had loaded (a review, 2026-12-05). One line, exit 2."""
    from conformance import watchdog
    monkeypatch.setattr(watchdog, "STUCK_S", 1)
    monkeypatch.setattr(registry, "IMPORT_S", 2)
    path = _protocol(tmp_path, "spins_at_import", "module:while True:\n    pass\n")
    assert _certify(path, tmp_path) == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert ("is malformed: HookStuck: <module> ran for 2 s without returning" in line
            and "spins_at_import.py:1" in line), line
    # a top level slower than a hook may be, but under IMPORT_S, loads (a review of the
    # change: with the hook's limit a module computing a table as it loads was refused)
    monkeypatch.setattr(registry, "IMPORT_S", 4)
    slow = _protocol(tmp_path, "slow_import", "module:import time\ntime.sleep(2.5)\n"
                     "from protocols.linux import Linux\n\n\nclass P(Linux):\n    pass\n")
    assert _certify(slow, tmp_path) == EXIT_PASS, capsys.readouterr()


def test_an_unusable_default_database_is_said(tmp_path, capsys, monkeypatch):
    """``.hypothesis`` a file: the dev profile's database ``.hypothesis/flushcheck`` could not
    be used, and a failure found was kept nowhere without a word (an explicit ``--database``
    there is refused, exit 2; a review, 2026-12-05). A warning line, and no database."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".hypothesis").write_text("")
    rc = main(["certify", "linux_4_3", "--profile", "dev", "--examples", "50", "--jobs", "1",
               "--repro-dir", str(tmp_path / "repro")])
    out, err = capsys.readouterr()
    assert rc == EXIT_FAIL, (out, err)
    assert ("flushcheck: warning: the example database .hypothesis/flushcheck cannot be used ("
            f"{tmp_path}/.hypothesis is not a directory): failures are not kept") in err, err
    assert "database " not in out  # the report names none


def test_a_protocol_helpers_os_exit_is_its_error_and_symlinks_to_nothing_are_said(tmp_path):
    """A review of the fixes above: ``os._exit`` called by a helper module a hook imports
    ended certify with status 0 again once the check asked only about the immediate caller
    (any protocol frame on the stack counts now); and a ``.hypothesis`` that is a symlink to
    nothing passed the database check (``exists`` is False for it), keeping no failure."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    (tmp_path / "exit_helper.py").write_text("import os\n\n\ndef flush_now():\n    os._exit(0)\n")
    path = _protocol(tmp_path, "helper_exits", """
        def try_to_unmap_flush(self, task):
            __import__("exit_helper").flush_now()
    """)
    (tmp_path / ".hypothesis").symlink_to(tmp_path / "nowhere" / "db")
    r = subprocess.run([sys.executable, "-c", "import sys; from conformance.cli import main; "
                        "sys.exit(main(sys.argv[1:]))", "certify", path, "--profile", "dev",
                        "--examples", "50", "--jobs", "1", "--repro-dir", str(tmp_path / "r")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == EXIT_FAIL, (r.returncode, r.stdout, r.stderr)
    assert "os._exit(0) called at exit_helper.py:5 (from helper_exits.py:" in r.stdout, r.stdout
    assert (f"the example database .hypothesis/flushcheck cannot be used ({tmp_path}/.hypothesis"
            " is a symlink to nothing)") in r.stderr, r.stderr


def test_a_module_protocols_top_level_is_watched_too(tmp_path, capsys, monkeypatch):
    """A ``module:Class`` protocol's file is the protocol's from its first line on, as a
    file protocol's: a loop at its top level is stopped (it hung), and ``os._exit(0)``
    there is refused (it ended certify with status 0 and no output); both were left open
    by the first fix (a review, 2026-12-05)."""
    import subprocess
    import sys
    from conformance import watchdog
    monkeypatch.setattr(watchdog, "STUCK_S", 1)
    monkeypatch.setattr(registry, "IMPORT_S", 1)
    (tmp_path / "fc_spins_module.py").write_text("while True:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _certify("fc_spins_module:P", tmp_path) == EXIT_USAGE
    line = _one_line(capsys.readouterr().err)
    assert ("fc_spins_module cannot be imported: HookStuck: <module> ran for 1 s" in line
            and "fc_spins_module.py:1" in line), line
    (tmp_path / "fc_exits_module.py").write_text("import os\nos._exit(0)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, str(tmp_path),
                                                        os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "conformance.cli", "certify", "fc_exits_module:P",
                        "--examples", "5", "--jobs", "1"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == EXIT_USAGE, (r.returncode, r.stdout, r.stderr)
    assert "os._exit(0) called at fc_exits_module.py:2" in _one_line(r.stderr)
