"""Failures filed before their shrink: Ctrl-C while a chunk shrinks loses nothing.

A walk chunk that finds a failure shrinks it (``conformance.search.shortest.minimize``),
which can take minutes. Ctrl-C then ends the chunk (one job: it runs in certify's own
process) or the parent stops it (forked workers leave Ctrl-C to the parent; a Dask
cluster's chunks are cancelled), and the failure, found but not yet returned, would be
lost with it. So the chunk first *files* it, unshrunk, where the parent can read it after
Ctrl-C (:meth:`Filing.collect`). Where to file travels to the chunk as a string
(``Task.found_to``):

* a local directory (one job, forked workers): a pickle written under another name and
  renamed, so that a worker stopped half-way leaves no half file;
* ``dask:NAME``: the ``distributed.Queue`` called NAME on the cluster's scheduler (the
  workers may be other machines, with other file systems).

Example::

    >>> from conformance.executors import local_workers
    >>> w = local_workers(1)
    >>> filing = Filing.open(w)
    >>> file_found(filing.to, 7, "any picklable chunk result")
    >>> filing.collect()
    {7: 'any picklable chunk result'}
    >>> filing.close(); w.close()
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import uuid

#: the prefix of a filing place on a Dask cluster
DASK = "dask:"


def file_found(to: str | None, index: int, item) -> None:
    """File chunk ``index``'s ``item`` (its result with the unshrunk failure) at ``to``
    (:attr:`Filing.to`; None: nowhere, nobody will ask)."""
    if to is None:
        return
    blob = pickle.dumps((index, item))
    if to.startswith(DASK):
        from distributed import Queue

        Queue(to[len(DASK):]).put(blob)  # inside a Dask task: the worker's own client
        return
    tmp = os.path.join(to, f".{index}.{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(blob)
    os.replace(tmp, os.path.join(to, f"{index}.pickle"))


class Filing:
    """The parent's side: where its chunks file (:attr:`to`), and what they filed."""

    def __init__(self, to: str, queue=None) -> None:
        self.to = to
        self._queue = queue

    @classmethod
    def open(cls, workers) -> "Filing":
        """A filing place the chunks ``workers`` run can reach: a temporary directory for
        local workers, a queue on the scheduler for a Dask cluster's."""
        client = getattr(workers, "client", None)
        if client is None:
            return cls(tempfile.mkdtemp(prefix="flushcheck-found-"))
        from distributed import Queue

        # a name no other run on the cluster uses (it decides nothing but the queue)
        name = f"flushcheck-found-{uuid.uuid4().hex}"
        return cls(DASK + name, Queue(name, client=client))

    def settle(self, stop_workers, wanted: bool) -> dict:
        """Call ``stop_workers()``, and return what the chunks filed when ``wanted`` (else
        {}); the filing place is removed. A directory is read after the workers stopped (no
        file can come later), a cluster's queue before (while its client is open)."""
        if self._queue is not None:
            filed = self.collect() if wanted else {}
            self.close()
            stop_workers()
        else:
            stop_workers()
            filed = self.collect() if wanted else {}
            self.close()
        return filed

    def collect(self) -> dict:
        """What the chunks filed so far: chunk index -> item."""
        blobs = []
        if self._queue is not None:
            if self._queue.qsize():
                blobs = self._queue.get(batch=True)
        else:
            for name in sorted(os.listdir(self.to)):
                if name.endswith(".pickle"):
                    with open(os.path.join(self.to, name), "rb") as fh:
                        blobs.append(fh.read())
        return dict(pickle.loads(b) for b in blobs)

    def close(self) -> None:
        """Remove the filing place (before the workers' client closes, on a cluster)."""
        if self._queue is not None:
            self._queue.close()
        else:
            shutil.rmtree(self.to, ignore_errors=True)
