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
import signal
import threading
from contextlib import contextmanager

from .errors import Failure

#: seconds one frame of protocol code may run before it counts as a loop
STUCK_S = 5

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


def _protocol_frames(frame) -> tuple:
    """(innermost, outermost) frame of protocol code on the stack of ``frame``; Nones if
    there is none."""
    inner = outer = None
    while frame is not None:
        if frame.f_code.co_filename in PROTOCOL_FILES:
            outer = frame
            if inner is None:
                inner = frame
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
    inner, f = _protocol_frames(frame)
    if f is not None and f is _State.stuck:
        # still running after its HookStuck (a bare except, `except BaseException`, swallowed
        # it): raised again at every tick until the frame is gone, not after another
        # stuck_s seconds, which the next swallow would restart for good
        if not _swallowed_here(frame, f):
            raise HookStuck(_stuck_text(f, inner))
        return
    _State.stuck = None
    if f is None or f is not _State.frame:
        _State.frame, _State.ticks = f, 0
        return
    _State.ticks += 1
    if _State.ticks >= _State.stuck_s:
        if _swallowed_here(frame, f):
            return  # the next tick, out of the callback, raises (ticks stay counted)
        _State.frame, _State.ticks, _State.stuck = None, 0, f
        raise HookStuck(_stuck_text(f, inner))


def _stuck_text(f, inner) -> str:
    """What a :class:`HookStuck` says: the stuck frame ``f`` (the hook the model called) and
    the line the interpreter was in (``inner``, the innermost protocol frame)."""
    name = getattr(f.f_code, "co_qualname", f.f_code.co_name)
    return (f"{name} ran for {_State.stuck_s} s without returning (a loop with no "
            f"interleaving point? {os.path.basename(inner.f_code.co_filename)}:{inner.f_lineno})")


def start(stuck_s: int = STUCK_S) -> bool:
    """Install the timer in this process (main thread only; False where it cannot be)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        return False
    _State.stuck_s, _State.frame, _State.ticks, _State.stuck = stuck_s, None, 0, None
    signal.signal(signal.SIGALRM, _tick)
    signal.setitimer(signal.ITIMER_REAL, 1.0, 1.0)
    _State.active = True
    return True


def stop() -> None:
    """Remove the timer (the previous SIGALRM handler is not kept: none is expected)."""
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM"):
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
    _State.frame, _State.stuck, _State.active = None, None, False


@contextmanager
def watch(stuck_s: int = STUCK_S):
    """The watchdog for the duration of the block (module doc); inside another one, that
    one stays (and keeps its ``stuck_s``)."""
    started = not _State.active and start(stuck_s)
    try:
        yield
    finally:
        if started:
            stop()


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
