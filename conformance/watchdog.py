"""A protocol frame that never returns: found by a once-a-second timer, not by step counts.

A hook that loops through interleaving points is stopped by ``MachineConfig.max_op_steps``
(its operation takes too many steps). A hook that loops *without* one (``while True: pass``,
a retry loop whose condition never changes) never gives control back, so no step count
can see it, and certify's budget, which is checked between examples, never comes. The
watchdog is an interval timer (``SIGALRM`` once a second): each tick looks at the frame
the interpreter is running, finds the outermost frame of a protocol's own code (a file
that :func:`conformance.machine._protocol_files` named) on its stack: the hook the model
called, one frame per call. When the same one has been running for :data:`STUCK_S`
seconds it raises :class:`HookStuck`, naming the hook and the line of protocol code the
interpreter was in. (The innermost protocol frame would not do: a retry loop that calls a
helper, ``while not lock_free(): pass``, is in a new helper frame at every tick, and was
never caught, 2026-12-04.) The exception
leaves through the hook like any other the hook raised, so the step that called it
reports a protocol error with its reproducer (``Machine._step``, ``ModelError.uncaught``).

A frame that swallows every ``HookStuck`` (a loop around ``try: ... except: pass`` whose
body loops too, so that no tick lands outside the ``try``) cannot be unwound: Python has
no way to end a frame from outside that its own handlers cannot catch. After
:data:`STUCK_S` more seconds of ``HookStuck`` raised at every tick, :func:`_stop_for_good`
ends the process instead of hanging it: the protocol error on stderr with the operation's
timeline, its reproducer saved where the command saves reproducers
(:func:`save_reproducers_in`), and exit 1, a FAIL. A worker process leaves its words and
reproducer in its parent's note directory; the parent saves the reproducer when the pool
breaks (:func:`stopped_for_good`).

Cost: one signal a second, whatever the step rate. A hook runs for microseconds; a frame
of protocol code still running after :data:`STUCK_S` seconds is stuck.

:func:`watch` is installed by the command line (``flushcheck ...``), in every local
worker process (``conformance.executors``) and by the pytest plugin's ``fuzz``; elsewhere
(a library caller) nothing changes unless it calls :func:`watch` itself.

Example::

    >>> import signal
    >>> with watch(stuck_s=2):
    ...     signal.getitimer(signal.ITIMER_REAL)[1]
    1.0
"""
from __future__ import annotations

import gc
import os
import shutil
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager

from .errors import Failure

#: seconds one frame of protocol code may run before it counts as a loop
STUCK_S = 5

#: seconds :func:`_stop_for_good` may take for its report before the process ends anyway
REPORT_S = 30

#: the absolute paths of every loaded protocol's own files (``machine._protocol_files``)
PROTOCOL_FILES: set = set()


class HookStuck(BaseException):
    """Raised inside a protocol frame that ran for :data:`STUCK_S` seconds without returning.

    A BaseException, not an Exception: a retry loop that swallows what it raises
    (``while True: try: ... except Exception: continue``) caught the RuntimeError it was
    and looped on for good. The machine turns it into a protocol error as it does any
    BaseException a hook raises (``Machine._step``, ``Machine.call_hook``)."""


class _State:
    frame = None  # the protocol frame seen running at the last tick
    ticks = 0  # consecutive ticks it was seen
    stuck_s = STUCK_S
    active = False  # a timer is installed (an inner watch() leaves it to the outer one)
    stuck = None  # the frame a HookStuck was raised in, while it still runs (swallowed)
    swallowed = 0  # ticks ``stuck`` has run on since its first HookStuck
    repro_dir = None  # where _stop_for_good saves a reproducer (None: it saves none)
    note = None  # (pid, directory): where a worker's _stop_for_good leaves its words for pid
    last_words = None  # what the note said when the watch() block that made it ended


#: the directory of the suite's own code (a frame there, outward of protocol frames, is the
#: machine that called them: :func:`_protocol_frames`)
_SUITE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _protocol_frames(frame) -> tuple:
    """(innermost, outermost) frame of protocol code that the suite called (a hook, and what
    it called), on the stack of ``frame``; Nones if there is none. A protocol frame with
    no frame of the suite outward of it is not a hook: it called the suite, as a test
    function does that defines its protocol class in its own file and calls ``fuzz()``
    (until 2026-12-06 that test function counted as a hook, and a fuzz longer than
    :data:`STUCK_S` under load was reported as a stuck hook)."""
    inner = outer = None
    first = last = None  # protocol frames not yet known to be the suite's callees
    while frame is not None:
        name = frame.f_code.co_filename
        if name in PROTOCOL_FILES:
            last = frame
            if first is None:
                first = frame
        elif first is not None and name.startswith(_SUITE_DIR):
            if inner is None:
                inner = first
            outer, first = last, None
        frame = frame.f_back
    return inner, outer


def _swallowed_here(frame, outer) -> bool:
    """Would an exception raised at ``frame`` be swallowed before it reaches ``outer``?

    True inside a garbage-collector callback (``gc.callbacks``: Hypothesis times its
    collections with one) or a ``__del__``, which CPython calls from wherever an
    allocation or a last reference happened to be, and whose exceptions it passes to
    ``sys.unraisablehook`` instead of the caller. A ``HookStuck`` raised there was lost
    (a ``PytestUnraisableExceptionWarning``, 2026-12-05) and the hook ran one more stuck
    period."""
    codes = {getattr(getattr(cb, "__func__", cb), "__code__", None) for cb in gc.callbacks}
    while frame is not None and frame is not outer:
        code = frame.f_code
        if code in codes or code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def _tick(signum, frame) -> None:
    note = _State.note
    if note is not None and note[0] != os.getpid() and os.getppid() != note[0]:
        os._exit(1)  # a pool worker whose parent is gone (killed): nobody wants its work
    inner, f = _protocol_frames(frame)
    if f is not None and f is _State.stuck:
        # still running after its HookStuck (a bare except, `except BaseException`, swallowed
        # it): raised again at every tick until the frame is gone, not after another
        # stuck_s seconds, which the next swallow would restart for good; a frame that
        # swallows them all for stuck_s more seconds ends the process (_stop_for_good)
        _State.swallowed += 1
        if _State.swallowed >= _State.stuck_s:
            _stop_for_good(frame, f, inner)
        if not _swallowed_here(frame, f):
            raise HookStuck(_stuck_text(f, inner))
        return
    _State.stuck, _State.swallowed = None, 0
    if f is None or f is not _State.frame:
        _State.frame, _State.ticks = f, 0
        return
    _State.ticks += 1
    if _State.ticks >= _State.stuck_s:
        if _swallowed_here(frame, f):
            return  # the next tick, out of the callback, raises (ticks stay counted)
        _State.frame, _State.ticks, _State.stuck = None, 0, f
        raise HookStuck(_stuck_text(f, inner))


def _stuck_text(f, inner, seconds: int | None = None) -> str:
    """What a :class:`HookStuck` says: the stuck frame ``f`` (the hook the model called) and
    the line the interpreter was in (``inner``, the innermost protocol frame)."""
    name = getattr(f.f_code, "co_qualname", f.f_code.co_name)
    seconds = _State.stuck_s if seconds is None else seconds
    # the function looping, where it is not the hook the model called (a shipped hook
    # calling the protocol's own: "Linux.try_to_unmap_flush_dirty ran for..." read as if
    # mainline's code were stuck; a user review, 2026-12-07)
    where = ("" if inner.f_code is f.f_code
             else f" in {getattr(inner.f_code, 'co_qualname', inner.f_code.co_name)}")
    return (f"{name} ran for {seconds} s without returning (a loop with no "
            f"interleaving point? {os.path.basename(inner.f_code.co_filename)}:{inner.f_lineno}"
            f"{where})")


def _machine_on_stack(frame):
    """The :class:`~conformance.machine.Machine` that runs ``frame`` and the operation whose
    step it is (``Machine._step``'s locals; None for a hook called outside any step: a
    context switch, an allocation, ``Machine.call_hook``), or ``(None, None)``: the
    innermost frame of a machine's method. A hook on its greenlet
    (:mod:`conformance.hookpoints`) has its own stack: its machine is on the stack of the
    greenlet that switched to it."""
    machine = sys.modules.get("conformance.machine")
    if machine is None:
        return None, None
    cls = machine.Machine
    stacks = [frame]
    hookpoints = sys.modules.get("conformance.hookpoints")
    run = getattr(hookpoints, "_active", None)
    if run is not None and run.parent is not None:
        stacks.append(run.parent.gr_frame)
    for f in stacks:
        while f is not None:
            if f.f_code.co_filename == machine.__file__:
                loc = f.f_locals
                m = loc.get("self")
                if isinstance(m, cls):
                    op = loc.get("op") if f.f_code is cls._step.__code__ else None
                    return m, op
            f = f.f_back
    return None, None


#: callables :func:`_stop_for_good` calls before it prints (a live progress line to take
#: down, pytest's output capture to suspend): :func:`before_stop`
_BEFORE_STOP: list = []


@contextmanager
def before_stop(fn):
    """Have :func:`_stop_for_good` call ``fn()`` before it prints, while the block runs
    (whatever ``fn`` raises is ignored: the process ends all the same)."""
    entry = (os.getpid(), fn)  # a forked worker inherits the list: not its parent's entries
    _BEFORE_STOP.append(entry)
    try:
        yield
    finally:
        _BEFORE_STOP.remove(entry)


def _stop_for_good(frame, f, inner) -> None:
    """End this process: the frame ``f`` swallowed every :class:`HookStuck` raised into it
    for :data:`STUCK_S` seconds, and nothing else can unwind it (module doc). Prints the
    protocol error (with the operation's timeline when a machine is on the stack) and
    exits 1 (a FAIL). In the process that runs the command, the reproducer is saved in the
    repro directory; a forked worker prints nothing and hands its words, report and
    reproducer to its parent instead (:func:`_leave_words`; the parent, which stops the
    other workers when one ends, prints one report and saves its reproducer: a worker of two
    stopping at once was killed half-way through writing it, and two printed two reports;
    certify's parent runs the chunks in flight again itself, ``certify._rerun_here``). The
    timer is off first: a tick during a slow report entered this function again, nested,
    for good (a review, 2026-12-05)."""
    # one last alarm, in case the report itself blocks (a lock a forked worker inherited
    # held): then the process ends without it
    signal.signal(signal.SIGALRM, lambda *_: os._exit(1))
    signal.setitimer(signal.ITIMER_REAL, REPORT_S, 0)
    text = (f"{_stuck_text(f, inner)}, then swallowed the HookStuck raised into it at every "
            f"second for {_State.stuck_s} s more (a bare `except:` or `except BaseException:` "
            "in a loop?): no exception can end it, so flushcheck ends the run here")
    note = _State.note
    worker = note is not None and os.getpid() != note[0]
    if worker:
        _leave_words(note[1], text, None)  # the words first: the parent may kill us soon
    lines = []
    try:
        m, op = _machine_on_stack(frame)
        if m is not None:
            who = op.label if op is not None else "a hook called outside any operation"
            failure = m._protocol_error(f"HookStuck in {who}: {text}", op)
            lines.append(failure.report(last=None))
            if worker:
                from .reproducer import to_dict

                _leave_words(note[1], text, to_dict(failure), lines[-1])
            elif _State.repro_dir is not None:
                from .reproducer import to_dict

                lines.append(_save_stuck(to_dict(failure)))
    except BaseException as exc:  # noqa: BLE001 - the report is best effort; the exit is not
        lines.append(f"flushcheck: (no reproducer: {type(exc).__name__}: {exc})")
    lines.append(f"flushcheck: protocol error: {text}")
    for pid, fn in list(_BEFORE_STOP):
        if pid == os.getpid():
            try:
                fn()
            except BaseException:  # noqa: BLE001 - as above
                pass
    try:
        sys.stdout.flush()
        if not worker:  # a worker's report is its parent's to print (stopped_for_good): it
            # prints one, the lowest chunk's, where every stuck worker printed its own
            print("\n".join(lines), file=sys.stderr, flush=True)
    finally:
        if note is not None and not worker:
            shutil.rmtree(note[1], ignore_errors=True)
        _end_children()
        os._exit(1)


def _end_children() -> None:
    """Terminate this process's pool workers: ``os._exit`` runs no pool shutdown, and the
    workers, which ignore Ctrl-C, ran on as orphans."""
    try:
        import multiprocessing

        for child in multiprocessing.active_children():
            child.terminate()
    except BaseException:  # noqa: BLE001 - the exit comes all the same
        pass


def _save_stuck(reproducer: dict) -> str:
    """Save a stuck hook's reproducer (:func:`conformance.reproducer.to_dict`) as
    ``stuck-NAME.json`` in the repro directory, whole or not at all; the line that names it.
    No picture: drawing one replays the actions, on greenlets, from inside the stuck hook's
    own greenlet (2026-12-05: the search went on under it)."""
    from .reproducer import write_dict

    path = os.path.join(_State.repro_dir, f"stuck-{reproducer.get('protocol', 'protocol')}.json")
    return _saved_line(write_dict(reproducer, path, whole=True))


def _saved_line(path: str) -> str:
    return f"reproducer {path}  (flushcheck replay {path})"


def _leave_words(directory: str, text: str, reproducer, report: str | None = None) -> None:
    """A worker's words, reproducer (or None) and report with its timeline (or None) for
    its parent, as ``PID.json`` in the note directory, whole or not at all."""
    from .reproducer import write_dict

    try:
        write_dict({"text": text, "reproducer": reproducer, "report": report},
                   os.path.join(directory, f"{os.getpid()}.json"), whole=True)
    except BaseException:  # noqa: BLE001 - the parent then says "a worker died"
        pass


def save_reproducers_in(directory: str | None) -> None:
    """Where :func:`_stop_for_good` saves a reproducer (a command's ``--repro-dir``); None:
    it saves none (``replay``, which re-runs one)."""
    _State.repro_dir = directory


def a_worker_stopped() -> bool:
    """In the process that started the watchdog: has one of its forked workers left its
    words (:func:`_stop_for_good`)? They stay for :func:`stopped_for_good`."""
    if _State.note is None or os.getpid() != _State.note[0]:
        return False
    try:
        return any(n.endswith(".json") for n in os.listdir(_State.note[1]))
    except OSError:
        return False


def stopped_for_good() -> str | None:
    """In the process that started the watchdog (a pool's parent), once a worker's
    :func:`_stop_for_good` ended it: what it said, plus the line naming its reproducer,
    saved now in the repro directory (the worker's that wrote one first); None when no
    worker stopped so. Also after the :func:`watch` block has ended with the pool's error."""
    if _State.last_words is not None:  # read when the watch() block ended: once
        words, _State.last_words = _State.last_words, None
        return words
    if _State.note is None or os.getpid() != _State.note[0]:
        return None
    import json

    words = []
    try:
        names = os.listdir(_State.note[1])
    except OSError:
        return None
    for name in names:
        if name.endswith(".json"):
            path = os.path.join(_State.note[1], name)
            try:
                with open(path) as fh:
                    words.append((json.load(fh), os.stat(path).st_mtime_ns, name))
                os.unlink(path)  # read once: a later pool of this process starts clean
            except (OSError, ValueError):
                continue
    if not words:
        return None
    # the first reproducer written, else the first words
    words.sort(key=lambda w: (w[0].get("reproducer") is None, w[1], w[2]))
    rec = words[0][0]
    text = rec.get("text") or "a worker's hook never returned"
    repro = rec.get("reproducer")
    report = rec.get("report")
    head = f"{report}\n" if isinstance(report, str) else ""
    if isinstance(repro, dict) and _State.repro_dir is not None:
        try:
            return f"{head}{_save_stuck(repro)}\nflushcheck: protocol error: {text}"
        except OSError:
            pass
    return f"{head}flushcheck: protocol error: {text}"


def start(stuck_s: int | None = None, note: bool = False) -> bool:
    """Install the timer in this process (main thread only; False where it cannot be);
    ``stuck_s`` None: :data:`STUCK_S`, read now (a test's shorter one reaches the forked
    workers that call this too). ``note``: make this process's note, where its forked
    workers leave their words (:func:`watch`'s; a pool worker's initializer keeps the one
    it inherited, or none: a directory it made would never be removed)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        return False
    if note and (_State.note is None or _State.note[0] != os.getpid()):
        # a directory of its own, mkdtemp's: no earlier process's, no one else's;
        # removed by stop()
        _State.note = (os.getpid(), tempfile.mkdtemp(prefix="flushcheck-stopped-"))
    _State.last_words = None
    _State.stuck_s = STUCK_S if stuck_s is None else stuck_s
    _State.frame, _State.ticks, _State.stuck, _State.swallowed = None, 0, None, 0
    signal.signal(signal.SIGALRM, _tick)
    signal.setitimer(signal.ITIMER_REAL, 1.0, 1.0)
    _State.active = True
    return True


def stop() -> None:
    """Remove the timer (the previous SIGALRM handler is not kept: none is expected)."""
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM"):
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
    if _State.note is not None and _State.note[0] == os.getpid():
        shutil.rmtree(_State.note[1], ignore_errors=True)
    _State.note = None
    _State.frame, _State.stuck, _State.active = None, None, False


@contextmanager
def patience(seconds: int):
    """Within it, a protocol frame is stopped after ``seconds`` (at least the watchdog's own
    limit), e.g. a protocol file's top level while it loads; nothing where no watchdog runs.
    A :class:`HookStuck` raised in the block ends it as before."""
    was = _State.stuck_s
    _State.stuck_s = max(was, seconds)
    try:
        yield
    finally:
        _State.stuck_s = was


@contextmanager
def watch(stuck_s: int | None = None):
    """The watchdog for the duration of the block (module doc); inside another one, that
    one stays (and keeps its ``stuck_s``)."""
    started = not _State.active and start(stuck_s, note=True)
    try:
        yield
    except BaseException:
        if started:  # a worker's last words, read before stop() removes the note
            _State.last_words = stopped_for_good()
        raise
    finally:
        if started:
            stop()


class _Watched:
    """A thread :func:`watch_this_thread` watches: as :class:`_State`, per thread."""

    __slots__ = ("frame", "ticks", "stuck")

    def __init__(self) -> None:
        self.frame = self.stuck = None
        self.ticks = 0


_WATCHED: dict = {}  # thread id -> _Watched
_WATCHED_LOCK = threading.Lock()
_MONITOR: list = []  # the monitor thread of this process, once started


def watch_this_thread() -> bool:
    """Watch the calling thread, where no signal arrives (a Dask worker runs each chunk in a
    thread of its own): a monitor thread looks at its stack every second, as :func:`_tick`
    does the main thread's, and raises :class:`HookStuck` into it (an asynchronous
    exception, ``PyThreadState_SetAsyncExc``) when one protocol frame has run for
    :data:`STUCK_S` seconds, again at every second while it still runs. A hook that
    swallows every one of them is not ended (that would end the Dask worker): it runs on,
    as it did. False (nothing done) in the main thread, which the timer watches; True
    otherwise. Until 2026-12-05 a hook that never returned hung a Dask campaign for good."""
    if threading.current_thread() is threading.main_thread():
        return False
    with _WATCHED_LOCK:
        _WATCHED.setdefault(threading.get_ident(), _Watched())
        if not _MONITOR or not _MONITOR[0].is_alive():
            t = threading.Thread(target=_monitor, name="flushcheck-watchdog", daemon=True)
            _MONITOR[:] = [t]
            t.start()
    return True


def _monitor() -> None:
    import time

    while True:
        time.sleep(1.0)
        frames = sys._current_frames()
        with _WATCHED_LOCK:
            for tid in [t for t in _WATCHED if t not in frames]:  # the thread has ended
                del _WATCHED[tid]
            watched = list(_WATCHED.items())
        for tid, w in watched:
            inner, f = _protocol_frames(frames[tid])
            if f is not None and f is w.stuck:  # swallowed: again, while it runs
                _raise_in(tid, _stuck_text(f, inner, STUCK_S))
                continue
            w.stuck = None
            if f is None or f is not w.frame:
                w.frame, w.ticks = f, 0
                continue
            w.ticks += 1
            if w.ticks >= STUCK_S:
                w.frame, w.ticks, w.stuck = None, 0, f
                _raise_in(tid, _stuck_text(f, inner, STUCK_S))
        del frames, watched


def _raise_in(tid: int, text: str) -> None:
    """Raise ``HookStuck(text)`` in thread ``tid`` at its next bytecode."""
    import ctypes

    # the C call takes a class, not an instance: one whose constructor supplies the text
    cls = type("HookStuck", (HookStuck,), {"__init__": lambda self, *a: HookStuck.__init__(
        self, text), "__module__": __name__})
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(cls))


def stuck(failure) -> bool:
    """Is ``failure`` a protocol error raised by the watchdog (its cause a :class:`HookStuck`)?
    Such a failure is not shrunk: each replay would run the loop for :data:`STUCK_S` s again."""
    exc = failure
    while exc is not None:
        # the text of a Failure (a worker's, rebuilt from its words, has no cause); not of
        # a protocol's own exception in the chain, whose __str__ may raise
        if isinstance(exc, HookStuck) or isinstance(exc, Failure) and "HookStuck in " in str(exc):
            return True
        exc = exc.__cause__
    return False
