"""pytest plugin: every protocol module in ``protocols/`` is fuzzed, with no registration.

Tests that take a ``protocol_name`` argument are parametrized over every
discovered protocol, unless the test gets ``protocol_name`` from elsewhere: a fixture of that
name it sees (its module's, a conftest's) or a ``parametrize`` mark of its own, which stay
the project's. :func:`fuzz` runs a protocol's state machine under a flushcheck
profile (:func:`fuzz_profile`: ``ci`` when ``CI=true``: derandomized, no database;
``dev`` otherwise: failing examples kept in ``.hypothesis/flushcheck`` and replayed first
by the next ``fuzz`` of the same protocol, config and strictness without ``seed=``; ``fleet``
with ``--hypothesis-profile fleet`` and ``FLUSHCHECK_REDIS=redis://host:port/db``:
kept in a shared Redis; ``thorough`` and ``nightly``: as ``dev``, with 2,000 and
10,000 examples per protocol) and returns the failure, if any. The profiles are those of
:mod:`conformance.database`, which certify uses too (``flushcheck certify --profile``).
The plugin loads no profile: a project's own ``@given`` tests keep the profile the
project loads (this repository's ``tests/conftest.py`` loads flushcheck's), and a profile
name the project (or Hypothesis, ``ci``) registered stays theirs.
Each example's coverage (hooks per calling path, race windows) is a Hypothesis event:
``pytest --hypothesis-show-statistics`` lists them.

A protocol module may declare ``EXPECTED_VIOLATION = "S3"`` (a known-buggy
historical protocol); the suite then asserts that the fuzzer finds exactly that
rule violated, instead of asserting a pass.

Options: ``--flushcheck-protocol REF`` (repeatable) restricts the
parametrization, or adds a protocol from anywhere: REF takes every form
``flushcheck certify`` takes (a name in ``protocols/``, ``path/to/my_flush.py``,
``mypkg.flush:MyProtocol``, an entry point of ``flushcheck.protocols``;
:func:`conformance.registry.load_protocol`); ``--flushcheck-examples N`` sets
examples per protocol of a :func:`fuzz` called without ``examples=`` (default: the
profile's, 300 for ``dev`` and ``ci``: :func:`default_examples`);
``--flushcheck-repro-dir DIR`` (default ``repro/pytest``) is where a test that fails after
:func:`fuzz` returned a failure saves its reproducer (and picture): the test's report gains
a ``flushcheck reproducer`` section with the path and the ``flushcheck replay`` command
(:func:`replay_command`: for a class in a test module, with the module's folder on
``PYTHONPATH``). A test that expected the failure and passes saves nothing.

Example test::

    def test_conforms(protocol_name):
        failure = fuzz(protocol_name, examples=200)
        assert failure is None, failure.report()
"""
from __future__ import annotations

import os
import warnings

import pytest
from hypothesis import Phase
from hypothesis import settings as Settings  # fuzz() has a parameter named settings

from conformance.database import profile as default_profile, profile_examples, register_profiles
from conformance.defaults import PROFILES

DEFAULT_EXAMPLES = 300

# --hypothesis-profile thorough names flushcheck's; a name already taken stays its owner's
register_profiles(replace=False)


def pytest_addoption(parser):
    g = parser.getgroup("flushcheck")
    g.addoption("--flushcheck-protocol", action="append", default=[],
                help="fuzz only these protocols (repeatable): a name in protocols/, "
                     "path/to/file.py, module:Class, or an entry point of flushcheck.protocols")
    g.addoption("--flushcheck-examples", type=int, default=None,
                help="Hypothesis examples per protocol of a fuzz() called without examples= "
                     f"(default {DEFAULT_EXAMPLES}; --hypothesis-profile thorough: 2000, "
                     "nightly: 10000)")
    g.addoption("--flushcheck-repro-dir", default=os.path.join("repro", "pytest"),
                help="where a failing test saves the reproducer of the failure fuzz() returned "
                     "(default: repro/pytest, relative to the directory pytest runs in)")


def pytest_configure(config):
    # no settings.load_profile here: the plugin is loaded in every project that installs
    # flushcheck, whose own @given tests keep their profile (a review, 2026-12-06: they got
    # flushcheck's dev profile); fuzz() runs under flushcheck's profile explicitly
    global _CONFIG
    _CONFIG = config
    examples = config.getoption("--flushcheck-examples")
    if examples is not None and examples < 1:
        raise pytest.UsageError(f"--flushcheck-examples {examples}: must be at least 1")
    #: what fuzz() runs when called without examples= (default_examples)
    config._flushcheck_examples = examples or profile_examples(fuzz_profile()) \
        or DEFAULT_EXAMPLES


def pytest_sessionstart(session):
    """Load every ``--flushcheck-protocol`` now: a reference that does not load (``linx``, a
    missing file, an entry point whose module fails to import) is one usage error before
    any test runs, the registry's line, where each test failed with a traceback through
    the registry (a review, 2026-12-06). Under the watchdog, as certify loads them: a
    protocol file whose top level never ends is stopped after ``registry.IMPORT_S``."""
    from conformance.errors import UsageError
    from conformance.registry import load_protocol
    from conformance.watchdog import before_stop, watch

    refs = session.config.getoption("--flushcheck-protocol")
    if not refs:  # no watchdog then: its stop resets SIGALRM and the interval timer, which
        return    # cancelled a project's own session deadline (a review, 2026-12-06)
    with watch(), before_stop(_uncapture):
        for ref in refs:
            try:
                load_protocol(ref)
            except UsageError as exc:
                raise pytest.UsageError(f"--flushcheck-protocol {ref}: {exc}") from None


def fuzz_profile() -> str:
    """The flushcheck profile :func:`fuzz` runs under: the one pytest's
    ``--hypothesis-profile`` names when it is flushcheck's (``thorough``, ``fleet``...),
    else ``ci`` when ``CI`` is true, else ``dev`` (:func:`conformance.database.profile`).
    A profile of the project's own is left to the project's ``@given`` tests.

    Example::

        >>> fuzz_profile() in PROFILES
        True
    """
    chosen = _CONFIG.getoption("--hypothesis-profile", default=None) if _CONFIG else None
    return chosen if chosen in PROFILES else default_profile()


def default_examples() -> int:
    """The examples :func:`fuzz` runs when called without ``examples=``: pytest's
    ``--flushcheck-examples``, else the profile's (:func:`fuzz_profile`: ``thorough`` 2,000,
    ``nightly`` 10,000), else :data:`DEFAULT_EXAMPLES` (300).

    Example::

        >>> default_examples() >= 1
        True
    """
    if _CONFIG is not None:
        return _CONFIG._flushcheck_examples
    return profile_examples(fuzz_profile()) or DEFAULT_EXAMPLES


#: the pytest config this plugin was configured with (None: fuzz called outside pytest)
_CONFIG = None


def _uncapture() -> None:
    """Suspend pytest's output capture: called by the watchdog before it ends the process
    for a hook that swallows every stop, whose report would stay in a capture file that
    ``os._exit`` never shows (a review, 2026-12-05)."""
    capman = _CONFIG.pluginmanager.getplugin("capturemanager") if _CONFIG is not None else None
    if capman is not None:
        capman.suspend_global_capture(in_=True)


#: the test item running now (:func:`fuzz` files its Hypothesis statistics on it)
_ITEM = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Remember the running item: Hypothesis's plugin collects statistics only for ``@given``
    tests, and a test calling :func:`fuzz` is a plain function."""
    global _ITEM
    _ITEM = item
    try:
        yield
    finally:
        _ITEM = None


def _note_statistics(stats) -> None:
    """Hypothesis's statistics of a :func:`fuzz` run, filed on the running test item where
    its pytest plugin prints them (``--hypothesis-show-statistics``), events included."""
    if _ITEM is None:
        return
    try:
        from hypothesis.statistics import describe_statistics
    except ImportError:  # pragma: no cover - a Hypothesis without it
        return
    stats["nodeid"] = _ITEM.nodeid
    _ITEM.hypothesis_statistics = describe_statistics(stats)


def pytest_generate_tests(metafunc):
    if "protocol_name" in metafunc.fixturenames and not _provided(metafunc, "protocol_name"):
        from conformance.registry import protocol_names

        names = metafunc.config.getoption("--flushcheck-protocol") or protocol_names()
        metafunc.parametrize("protocol_name", names)


def _provided(metafunc, arg: str) -> bool:
    """Does the test get ``arg`` from elsewhere: a fixture of that name that it sees (its
    module's, a conftest's, a plugin's), or a ``parametrize`` mark of its own? Then the
    argument is the project's, not flushcheck's (a review, 2026-12-06: a conftest fixture
    ``protocol_name`` was overridden in every test that used it)."""
    # Metafunc._arg2fixturedefs: the fixtures visible to this test, by name (pytest >= 3)
    if getattr(metafunc, "_arg2fixturedefs", {}).get(arg):
        return True
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = names.split(",")
        if arg in (n.strip() for n in names):
            return True
    return False


class MisspeltHookWarning(UserWarning):
    """A method of the protocol :func:`fuzz` was given is named like a hook but is none
    (``try_to_unmap_flsh``): the model never calls it (:func:`registry.misspelt_hooks`).
    A warning in pytest's summary; the loader's own line on stderr is captured with the
    test's output, which pytest shows only for a failing test."""


def _protocol(name_or_cls):
    """The protocol class :func:`fuzz` and :func:`expected_violation` run: a reference's
    (:func:`registry.load_protocol`) or a class's (:func:`registry.load_class`: the same
    checks, named after the class). A bad one is the registry's :class:`UsageError`, raised
    from here: the test's traceback ends at its call, not deep in the registry."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this frame
    from conformance.errors import UsageError
    from conformance.registry import load_class, load_protocol

    try:
        return load_protocol(name_or_cls) if isinstance(name_or_cls, str) \
            else load_class(name_or_cls)
    except UsageError as exc:
        raise UsageError(str(exc)) from None


def expected_violation(name_or_cls):
    """The rule a protocol declares it violates (``EXPECTED_VIOLATION`` of its class or
    module), or None; ``name_or_cls`` is any protocol reference or a protocol class, as
    :func:`fuzz` takes.

    Example::

        >>> expected_violation("linux_4_13"), expected_violation("linux")
        ('S3', None)
        >>> from protocols.linux_4_13 import Linux413
        >>> expected_violation(Linux413)
        'S3'
    """
    __tracebackhide__ = _usage_error  # as in :func:`fuzz`
    from conformance.registry import declared

    return declared(_protocol(name_or_cls), "EXPECTED_VIOLATION")


def _usage_error(excinfo) -> bool:
    """pytest's ``__tracebackhide__`` filter: hide the frame for a :class:`UsageError`."""
    from conformance.errors import UsageError

    return excinfo.errisinstance(UsageError)


def fuzz(name_or_cls, examples: int | None = None, steps: int = 100, seed: int | None = None,
         strict: bool = False, cfg=None, shrink: bool = True, settings: Settings | None = None):
    """Fuzz a protocol with Hypothesis's state machine; return the first :class:`Failure`
    found (shrunk), or None when every example passed.

    - ``name_or_cls``: a protocol reference (``"linux"``, ``"./my_flush.py"``,
      ``"mypkg.flush:MyProtocol"``, an entry point: :func:`registry.load_protocol`) or a
      protocol class (checked and named after itself: :func:`registry.load_class`). One
      that does not load is a one-line :class:`~conformance.errors.UsageError`.
    - ``examples``: Hypothesis examples; None: :func:`default_examples` (pytest's
      ``--flushcheck-examples``, else the profile's, else 300).
    - ``steps``: operations per example at most (``stateful_step_count``).
    - ``seed``: the examples come from this seed alone (the same failure every run, in any
      process); no example database is read or written then. None: the profile decides
      (``ci``: derandomized; ``dev``: random, saved failures replayed first).
    - ``strict``: judge by rule ``O1-strict`` instead of ``O1`` (docs/oracle.md).
    - ``cfg``: the :class:`~conformance.config.MachineConfig` (CPUs, pages, ...); None: the
      default machine.
    - ``shrink``: shrink the failure (Hypothesis's shrink phase) before returning it; a hook
      stuck in a loop is returned unshrunk either way.
    - ``settings``: Hypothesis settings to start from instead of flushcheck's profile
      (:func:`fuzz_profile`), e.g. a database of your own; ``examples`` and ``steps`` win
      over its ``max_examples`` and ``stateful_step_count``, and its ``deadline`` applies to
      every example (flushcheck's profiles have none: an example takes milliseconds to
      seconds). The profile a project loads for its own tests is never used.

    Under pytest, a test that fails after fuzz() returned a failure saves its reproducer
    (``--flushcheck-repro-dir``).

    Example::

        >>> fuzz("linux", examples=10, steps=20, seed=0) is None
        True
        >>> f = fuzz("linux_4_3", examples=50, steps=30, seed=1, shrink=False)
        >>> f.rule, f.machine.proto.name
        ('S3', 'linux_4_3')
        >>> from hypothesis.database import InMemoryExampleDatabase
        >>> mine = Settings(database=InMemoryExampleDatabase())
        >>> fuzz("immediate", examples=5, steps=10, settings=mine) is None
        True
    """
    # a bad protocol reference (``fuzz("linx")``) fails the test with the caller's line and
    # the registry's one line; pytest printed this function's whole source with it (a
    # review, 2026-12-06). Only then: any other exception keeps this frame in its traceback
    __tracebackhide__ = _usage_error
    from hypothesis import seed as hseed
    from hypothesis.stateful import get_state_machine_test

    from conformance.certify import _StopAtStuckHook, all_failures, seed_only, stop_at_stuck_hook
    from conformance.config import DEFAULT
    from conformance.database import campaign_key, keyed, profile_settings
    from conformance.registry import misspelt_hooks, misspelt_text
    from conformance.search.statemachine import conformance_machine

    cls = _protocol(name_or_cls)
    for meth, hook in misspelt_hooks(cls):
        warnings.warn(misspelt_text(cls.name, meth, hook), MisspeltHookWarning, stacklevel=2)
    machine = conformance_machine(cls, cfg or DEFAULT, strict)
    stuck_found = stop_at_stuck_hook(machine)  # a stuck hook is reported unshrunk
    # flushcheck's profile (or the caller's settings), never the globally loaded profile,
    # which is the project's: a deadline=1 of its own ended every fuzz in DeadlineExceeded
    base = settings if settings is not None else profile_settings(fuzz_profile())
    if examples is None:
        examples = default_examples()
    s = Settings(base, max_examples=examples, stateful_step_count=steps,
                 # reuse: the failures the database keeps (dev, thorough, fleet) replayed
                 # first; nothing to replay without one (ci, or seed=, which drops it)
                 phases=[Phase.reuse, Phase.explicit, Phase.generate, Phase.target]
                 + ([Phase.shrink] if shrink else []),
                 report_multiple_bugs=False)
    # one key per protocol, strictness and config (the class name alone omits the config)
    test = keyed(get_state_machine_test(machine, settings=s), campaign_key(cls.name, cfg or DEFAULT,
                                                                           strict))
    if seed is not None:
        test = hseed(seed)(test)
    try:
        from hypothesis.statistics import collector
    except ImportError:  # pragma: no cover - a Hypothesis without it
        collector = None
    from conformance.watchdog import before_stop, watch

    try:
        # seed_only: the same examples whatever test modules this process collected; watch:
        # a hook that never returns is a protocol error, not a hung test run
        with seed_only(), watch(), before_stop(_uncapture):
            if collector is None:
                test()
            else:
                with collector.with_value(_note_statistics):
                    test()
    except _StopAtStuckHook:
        return _returned(stuck_found[0], seed)
    except BaseException as exc:  # noqa: BLE001
        found = all_failures(exc)
        if not found:
            raise
        return _returned(found[0], seed)
    return None


#: the failures :func:`fuzz` returned during a test, (failure, seed) pairs, kept on the item
_RETURNED = pytest.StashKey[list]()


def _returned(failure, seed):
    """``failure``, noted on the running test item: if the test then fails, its reproducer
    is saved (:func:`pytest_runtest_makereport`); a test that expected it saves nothing."""
    if _ITEM is not None:
        _ITEM.stash.setdefault(_RETURNED, []).append((failure, seed))
    return failure


def repro_path(directory: str, nodeid: str, protocol: str, index: int = 0) -> str:
    """Where a failing test's reproducer goes: ``DIR/PROTOCOL-TEST-DIGEST.json``, the test
    function's name and a digest (6 hex digits) of its whole node id, so that each
    parametrization and each test file keeps its own file; ``-N`` for a test's N-th
    failure after the first.

    Example::

        >>> repro_path("repro/pytest", "tests/test_mine.py::test_conforms[linux]", "linux")
        'repro/pytest/linux-test_conforms-dd5793.json'
    """
    import hashlib
    import re

    def safe(text: str, most: int) -> str:  # a file name's characters only
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:most]

    test = safe(nodeid.split("::")[-1].split("[")[0], 40)
    digest = hashlib.blake2b(nodeid.encode(), digest_size=3).hexdigest()
    tail = f"-{index}" if index else ""
    return os.path.join(directory, f"{safe(protocol, 60)}-{test}-{digest}{tail}.json")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that failed after :func:`fuzz` returned a failure gets the failure's reproducer
    saved (``--flushcheck-repro-dir``, default ``repro/pytest``) and a ``flushcheck
    reproducer`` section in its report naming the file and the command that replays it.
    Before 2026-12-05 a pytest failure showed the timeline only, and the interleaving was
    lost with the test run."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call":
        return
    # taken off the item: a session's items live to its end, each failure with its machine
    returned = item.stash.get(_RETURNED, None)
    if returned is not None:
        del item.stash[_RETURNED]
    if not rep.failed or not returned:
        return
    # relative to where pytest was started, also on an xdist worker
    directory = os.path.join(str(item.config.invocation_params.dir),
                             item.config.getoption("--flushcheck-repro-dir"))
    lines = []
    for i, (failure, seed) in enumerate(returned):
        if failure.machine is not None:
            lines.append(_save_for_report(failure, seed, directory, item.nodeid, i))
    if lines:
        rep.sections.append(("flushcheck reproducer", "\n".join(lines)))


def _save_for_report(failure, seed, directory: str, nodeid: str, index: int) -> str:
    """Save ``failure``'s reproducer for a failing test's report; the report's lines. Nothing
    here may raise: an exception out of ``pytest_runtest_makereport`` is pytest's
    INTERNALERROR, which ends the whole run (a review, 2026-12-05: a protocol class made
    with ``exec`` has no module to hash). A class :func:`fuzz` was given that no module
    holds (made in a function or by ``exec``) records a reference that does not load
    again; then the report says so instead of printing a replay command that fails."""
    from conformance.picture import html_path
    from conformance.registry import load_protocol, protocol_ref
    from conformance.reproducer import save
    from conformance.watchdog import before_stop, stuck, watch

    path = repro_path(directory, nodeid, failure.machine.proto.name, index)
    # a stuck hook's picture would replay its loop (watchdog._save_stuck draws none either)
    draw = not stuck(failure)
    try:
        # watched: the picture replays the protocol's hooks, here outside fuzz()'s watch
        with watch(), before_stop(_uncapture):
            save(failure, path, seed=seed, picture=draw)
    except Exception as exc:  # noqa: BLE001 - the file is lost, never the report
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return f"{failure.rule}: reproducer not saved: {path}: {type(exc).__name__}: {why}"
    ref = protocol_ref(failure.machine.proto)
    try:
        loads = load_protocol(ref).name == failure.machine.proto.name
    except Exception:  # noqa: BLE001 - UsageError, ImportError, a module that raises
        loads = False
    picture = (f"  picture: {html_path(path)}" if draw else
               "  picture: none (a stuck hook: drawing it would run its loop again)")
    if not loads:
        cls = type(failure.machine.proto)
        return (f"{failure.rule}: reproducer saved to {path}\n"
                f"  replay:  not by name: it records protocol {ref!r}, which does not load "
                f"{cls.__module__}.{cls.__qualname__} again; give fuzz() a class its "
                f"module holds (not one made in a function or by exec), or a protocol "
                f"file's path\n{picture}")
    return (f"{failure.rule}: reproducer saved to {path}\n"
            f"  replay:  {replay_command(ref, path)}\n{picture}")


def replay_command(ref: str, path: str) -> str:
    """The shell command that replays the reproducer at ``path`` of the protocol that
    ``ref`` loads: ``flushcheck replay PATH``, with the folder its module imports from first
    on ``PYTHONPATH`` where ``ref`` names a module (``module:Class``, a dotted module) of
    this process that is not installed: a class in a test module, which pytest imported
    from the test's folder and a shell's ``flushcheck`` cannot (``protocol module test_ref
    cannot be imported``, a review of 2026-12-06). A built-in, a file (its absolute path)
    or an entry point loads from anywhere.

    Example::

        >>> replay_command("linux", "repro/pytest/linux-t-1.json")
        'flushcheck replay repro/pytest/linux-t-1.json'
        >>> import sys, types
        >>> sys.modules["fc_doc_mod"] = types.ModuleType("fc_doc_mod")
        >>> sys.modules["fc_doc_mod"].__file__ = "/src/my tests/fc_doc_mod.py"
        >>> replay_command("fc_doc_mod:Mine", "r.json")
        "PYTHONPATH='/src/my tests'${PYTHONPATH:+:$PYTHONPATH} flushcheck replay r.json"
        >>> del sys.modules["fc_doc_mod"]
    """
    import shlex

    from conformance.registry import is_file_ref, protocol_names

    command = f"flushcheck replay {shlex.quote(path)}"
    if is_file_ref(ref) or ref in protocol_names():
        return command
    root = _import_root(ref.partition(":")[0])
    if root is None:
        return command
    # the caller's PYTHONPATH kept after it (where flushcheck itself may come from)
    return f"PYTHONPATH={shlex.quote(root)}${{PYTHONPATH:+:$PYTHONPATH}} {command}"


def _import_root(modname: str) -> str | None:
    """The folder from which module ``modname`` (loaded in this process) imports, or None
    when it has no file or is installed (site-packages, the standard library): for
    ``a.b`` at ``/x/a/b.py``, ``/x``."""
    import site
    import sys
    import sysconfig

    path = getattr(sys.modules.get(modname), "__file__", None)
    if not isinstance(path, str):
        return None
    root = os.path.abspath(path)
    package = os.path.splitext(os.path.basename(root))[0] == "__init__"
    for _ in range(modname.count(".") + 1 + package):
        root = os.path.dirname(root)
    installed = {os.path.realpath(p) for k, p in sysconfig.get_paths().items()
                 if k in ("purelib", "platlib", "stdlib", "platstdlib")}
    installed |= {os.path.realpath(p) for p in [*getattr(site, "getsitepackages", list)(),
                                                site.getusersitepackages()]}
    return None if os.path.realpath(root) in installed else root
