"""Where certify's chunks run: a standard ``concurrent.futures`` executor.

* :func:`local_workers` (the default, nothing to start): ``jobs`` forked worker
  processes (``ProcessPoolExecutor``), or the calling process itself for one job.
* :func:`dask_workers`: a Dask distributed cluster (``pip install 'flushcheck[dask]'``),
  through ``distributed.Client.get_executor()``, which is a ``concurrent.futures``
  executor too.

Either is a :class:`Workers`: the executor, how many chunks it runs at once, a name
for reports, and :meth:`Workers.close`, which on an interruption cancels what is
queued and terminates local worker processes (none is left behind).

Example::

    >>> with local_workers(1) as w:
    ...     w.executor.submit(pow, 2, 10).result(), w.slots
    (1024, 1)
"""
from __future__ import annotations

import contextlib
import multiprocessing
import signal
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor

from .errors import UsageError

#: how long to wait for a Dask scheduler to answer: one answers within a second on its own
#: network, and distributed retries a refused connection until this runs out, so a wrong
#: address is said within seconds (it took 20)
CONNECT_TIMEOUT_S = 5
#: how long to wait for a first worker to join a scheduler that answered (workers may still
#: be starting)
WORKERS_TIMEOUT_S = 20
#: how long closing a client whose start failed may take (its loop is still running)
CLOSE_TIMEOUT_S = 2
#: how often a Dask run asks the scheduler how many worker threads it has now
RECOUNT_S = 10.0


class InlineExecutor(Executor):
    """Runs each call in the calling process when it is submitted (one job: no process
    start-up, and protocol classes that cannot be pickled still work).

    Example::

        >>> InlineExecutor().submit(sum, [1, 2]).result()
        3
    """

    def submit(self, fn, /, *args, **kwargs) -> Future:
        fut: Future = Future()
        fut.set_running_or_notify_cancel()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - delivered by result(); Ctrl-C propagates
            fut.set_exception(exc)
        return fut


class Workers:
    """An executor plus what certify needs to know about it.

    ``slots``: chunks it runs at once; certify keeps ``window`` chunks submitted so
    that no worker idles while the parent collects a result. ``recount``: a callable
    giving the slots now (a cluster's workers may join or leave during a campaign).
    """

    def __init__(self, executor: Executor, slots: int, name: str, per_slot: int = 1,
                 extra: int = 0, recount=None, on_close=None, client=None) -> None:
        self.executor = executor
        #: a Dask cluster's ``distributed.Client`` (None: local workers)
        self.client = client
        self.slots = slots
        self.name = name
        self._per_slot, self._extra = per_slot, extra
        self._recount = recount
        self._counted = time.monotonic()
        self._on_close = on_close

    @property
    def window(self) -> int:
        """How many chunks to keep submitted."""
        if self._recount is not None and time.monotonic() - self._counted > RECOUNT_S:
            self._counted = time.monotonic()
            self.slots = max(1, self._recount())
        return self.slots * self._per_slot + self._extra

    def close(self, cancel: bool = False) -> None:
        """Shut the executor down; ``cancel``: drop queued chunks and stop running ones."""
        ex = self.executor
        if isinstance(ex, ProcessPoolExecutor):
            shut_pool(ex, cancel)
        elif isinstance(ex, InlineExecutor):
            ex.shutdown()
        else:  # Dask's ClientExecutor: shutdown(wait=False) cancels its futures
            ex.shutdown(wait=not cancel)
        if self._on_close is not None:
            self._on_close()

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, typ, exc, tb) -> None:
        self.close(cancel=typ is not None)


def _ignore_sigint() -> None:
    """Worker processes leave Ctrl-C to the parent, which reports and then stops them, and
    run their own watchdog (interval timers are not inherited by a fork: conformance/watchdog.py)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .watchdog import start

    start()


#: seconds a pool's workers have to end once their work is done (close())
EXIT_GRACE_S = 10.0


def shut_pool(ex: ProcessPoolExecutor, cancel: bool = False) -> None:
    """Shut a process pool down (certify's and bound's); ``cancel``: stop its running calls
    now. Otherwise its workers get :data:`EXIT_GRACE_S` to end: a worker whose protocol left
    a thread running waits for it at its exit (multiprocessing's ``threading._shutdown``),
    and ``shutdown(wait=True)`` for the worker, so the run hung after its last chunk (a
    review, 2026-12-05)."""
    if cancel:
        _terminate(ex)
    else:
        procs = list((getattr(ex, "_processes", None) or {}).values())
        ex.shutdown(wait=False)
        _end_late(procs, EXIT_GRACE_S)
    ex.shutdown(wait=True, cancel_futures=cancel)


def _end_late(procs: list, grace_s: float) -> None:
    """Terminate the worker processes ``procs`` still alive ``grace_s`` seconds from now."""
    deadline = time.monotonic() + grace_s
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(timeout=5)


def _terminate(ex: ProcessPoolExecutor) -> None:
    """Stop a pool's running calls now (a chunk cannot be asked to stop half-way)."""
    if hasattr(ex, "terminate_workers"):  # Python >= 3.14
        ex.terminate_workers()
        return
    for p in list((getattr(ex, "_processes", None) or {}).values()):
        if p.is_alive():
            p.terminate()
    for p in list((getattr(ex, "_processes", None) or {}).values()):
        p.join(timeout=5)


def local_workers(jobs: int) -> Workers:
    """``jobs`` local worker processes (forked where the platform can), or this process
    for ``jobs == 1``.

    Example::

        >>> w = local_workers(2); w.name, w.slots
        ('2 local processes', 2)
        >>> w.close()
    """
    if jobs == 1:
        return Workers(InlineExecutor(), 1, "1 local process")
    methods = multiprocessing.get_all_start_methods()
    # fork: workers start in milliseconds and inherit the loaded protocols
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    ex = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_ignore_sigint)
    return Workers(ex, jobs, f"{jobs} local processes", extra=1)


def _client_class():
    """distributed's ``Client``, made to close itself when its start fails. distributed
    closes it only after an OSError; after anything else (the ValueError of an address with
    no port, the MemoryError of a reply from a server that is no scheduler) the half-started
    client was closed by its ``__del__`` at exit, its event loop gone by then: 40 s, then
    ``Exception ignored in: Client.__del__`` and a TimeoutError traceback after the one-line
    error (a review, 2026-12-06). Made on each call, not cached: the import is what tells
    that the dask extra is missing."""
    from distributed import Client

    class _Client(Client):
        def start(self, **kwargs):
            try:
                super().start(**kwargs)
            except BaseException:
                with contextlib.suppress(Exception):  # the start's error is the one to say
                    self.close(timeout=CLOSE_TIMEOUT_S)
                raise

    return _Client


def dask_workers(address: str, timeout_s: float = CONNECT_TIMEOUT_S,
                 workers_timeout_s: float = WORKERS_TIMEOUT_S) -> Workers:
    """The workers of the Dask scheduler at ``address`` (e.g. ``tcp://10.0.0.5:8786``):
    ``timeout_s`` for it to answer, ``workers_timeout_s`` for a first worker to join.

    Missing dask, an unreachable scheduler or one with no worker are one-line
    :class:`UsageError` s, and leave no client behind.

    Example::

        >>> w = dask_workers(cluster.scheduler_address)   # doctest: +SKIP
        >>> w.name                                          # doctest: +SKIP
        'dask tcp://127.0.0.1:40123 (2 workers, 2 threads)'
    """
    try:
        client_class = _client_class()
    except ImportError:
        raise UsageError("--scheduler needs the dask extra: "
                         "pip install 'flushcheck[dask]'") from None
    try:
        client = client_class(address, timeout=timeout_s, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - whatever the address gave back, it is no scheduler
        # an unexpected kind: a server that answered but is no Dask scheduler (its reply
        # read as a message length of exabytes: a MemoryError)
        odd = not isinstance(exc, (OSError, TimeoutError, ValueError))
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {first_line(exc)}"
                         + (f" ({type(exc).__name__}: is a Dask scheduler listening there?)"
                            if odd else "")) from None
    try:
        client.wait_for_workers(1, timeout=workers_timeout_s)
    except (OSError, TimeoutError) as exc:
        client.close(timeout=CLOSE_TIMEOUT_S)
        raise UsageError(f"no Dask worker joined the scheduler at {address} within "
                         f"{workers_timeout_s:g} s: {first_line(exc)}") from None
    nthreads = client.nthreads()
    slots = sum(nthreads.values())
    # pure=False: two chunks are never the same task, even with equal arguments
    ex = client.get_executor(pure=False)
    name = f"dask {address} ({len(nthreads)} workers, {slots} threads)"
    # twice the slots: a result's round trip through the scheduler leaves no worker idle
    return Workers(ex, slots, name, per_slot=2, on_close=client.close,
                   recount=lambda: sum(client.nthreads().values()), client=client)


def open_workers(jobs: int, scheduler: str | None = None) -> Workers:
    """The workers a certify run asks for: a Dask scheduler's, or ``jobs`` local ones.

    Example::

        >>> open_workers(1).name
        '1 local process'
    """
    return dask_workers(scheduler) if scheduler else local_workers(jobs)


def first_line(exc: BaseException) -> str:
    """An exception's message on one line (flushcheck reports an error in one line).

    Example::

        >>> first_line(OSError("refused\\nretrying"))
        'refused'
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
