"""Whose ``KeyboardInterrupt`` is it: the user's (Ctrl-C, or SIGTERM taken as it) or a
protocol hook's own ``raise KeyboardInterrupt``?

Both arrive as the same exception, and every runner lets a KeyboardInterrupt through as
the user's: a hook that raised one ended ``certify`` with "INTERRUPTED: no verdict", exit
130 and no reproducer, even in a worker process that ignores SIGINT (an audit,
2026-12-06). The command (``cli.console_main``) installs a SIGINT handler that records the
signal before raising, and the SIGTERM handler records its own; a KeyboardInterrupt with
no signal recorded was raised by code, and where it was raised in the protocol's frame
``Machine`` makes it a protocol error. A caller that did not install the handler (a test
calling ``fuzz()``) keeps Python's: there a hook's KeyboardInterrupt stays the user's, as
no one can tell them apart.

Example::

    >>> users(KeyboardInterrupt())   # no handler installed in this process: the user's
    True
"""
from __future__ import annotations

import signal

#: the signals received (SIGINT, SIGTERM), in this process and inherited by forked workers
_SIGNALLED: list = []
#: the handler is installed (here, or in the process this one was forked from)
_INSTALLED: list = []


def install() -> None:
    """Take SIGINT as Python's default handler does (raise KeyboardInterrupt), recording it.
    In the main thread only (elsewhere a signal handler cannot be set: left as it is)."""
    def on_int(signum, frame):
        _SIGNALLED.append(signum)
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, on_int)
    except ValueError:
        return
    _INSTALLED.append(True)


def signalled(signum: int) -> None:
    """Record ``signum`` (a handler of ours that raises KeyboardInterrupt for it: SIGTERM)."""
    _SIGNALLED.append(signum)


def users(exc: BaseException) -> bool:
    """Is KeyboardInterrupt ``exc`` the user's (or flushcheck's own, a class with
    ``_fc_ours``: the watchdog's stop) rather than raised by protocol code? Always where
    :func:`install` did not run, and once a signal came."""
    return not _INSTALLED or bool(_SIGNALLED) or getattr(type(exc), "_fc_ours", False)
