"""A certify run's progress on the terminal (``rich``), on stderr; nothing elsewhere.

The line appears once the run has taken :data:`DELAY` seconds (a short run prints only its
report) and only when stderr is a terminal: piped or redirected, certify's stderr stays
empty and stdout holds the report alone. It shows examples, steps and the oracle's checks
summed over the finished chunks, the chunks running (jobs busy) and the time elapsed, and
it is erased when the run ends (``transient``).

Example::

    >>> import io
    >>> with CertifyProgress("linux", stream=io.StringIO()) as p:   # not a terminal
    ...     p(results={}, busy=2)
    >>> p.enabled
    False
"""
from __future__ import annotations

import sys
import threading

from .watchdog import before_stop

#: seconds before the progress line appears
DELAY = 2.0


class CertifyProgress:
    """A ``progress(results, busy)`` callback for :func:`conformance.certify.certify` that
    draws a ``rich`` progress line on ``stream`` (default stderr) if it is a terminal."""

    def __init__(self, label: str, stream=None, delay: float = DELAY,
                 total: int | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty())
        self.label = label
        self.delay = delay
        self.total = total
        self._lock = threading.Lock()
        self._progress = None
        self._task = None
        self._timer = None
        self._started = False
        self._closed = False
        self._fields = dict(examples=0, steps=0, checks=0, busy=0)

    def __enter__(self) -> "CertifyProgress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, Progress, SpinnerColumn, TextColumn,
                                       TimeElapsedColumn)

            columns = [SpinnerColumn(), TextColumn("[bold]{task.description}")]
            if self.total:
                columns.append(BarColumn())
            columns += [TextColumn("{task.fields[examples]:,} examples, {task.fields[steps]:,} "
                                   "steps, {task.fields[checks]:,} rules checked, "
                                   "{task.fields[busy]} jobs busy"), TimeElapsedColumn()]
            self._progress = Progress(*columns, console=Console(file=self.stream),
                                      transient=True, refresh_per_second=4)
            self._task = self._progress.add_task(f"certify {self.label}", total=self.total,
                                                 **self._fields)
            self._timer = threading.Timer(self.delay, self._start)
            self._timer.daemon = True
            self._timer.start()
            # a hook that swallows every stop ends the process from the watchdog: take the
            # line down first, or its report is drawn through it and the cursor stays hidden
            self._stop_hook = before_stop(self._take_down)
            self._stop_hook.__enter__()
        return self

    def _take_down(self) -> None:
        self._timer.cancel()
        self._closed = True
        if self._started:
            self._progress.stop()
            self._progress.console.show_cursor(True)

    def _start(self) -> None:
        with self._lock:
            if not self._closed:
                self._progress.start()
                self._started = True

    def __call__(self, results: dict, busy: int) -> None:
        """Take the finished chunks' totals and the number running."""
        if not self.enabled:
            return
        ex = sum(r.examples for r in results.values())
        st = sum(r.steps for r in results.values())
        ck = sum(n for r in results.values() for k, n in r.counts.items()
                 if k.startswith("check "))
        self._fields.update(examples=ex, steps=st, checks=ck, busy=busy)
        self._progress.update(self._task, completed=ex, **self._fields)

    def __exit__(self, *exc) -> None:
        if not self.enabled:
            return
        self._stop_hook.__exit__(None, None, None)
        self._timer.cancel()
        with self._lock:
            self._closed = True
            if self._started:
                self._progress.stop()
