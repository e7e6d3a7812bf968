"""Fewer cyclic garbage collections while a search runs.

A walk example builds a machine of a few thousand small objects, runs it and drops it;
the search loops dispose of a passed example's machine (``Machine.dispose``: until
2026-12-04 every machine was a reference cycle, 20% of the raw walk went to the collector's
scans), so all of it is freed by reference counting the moment the example ends. CPython's
cycle collector does not know that: with its default thresholds (700 container
allocations per young collection) it scans the young objects every few steps and, every
hundred of those, the whole heap, Hypothesis's modules and the rule tables included,
none of which a search ever frees.

:func:`search_gc` is the policy a search loop runs under: the heap as it is when the loop
starts (modules, rule tables, the booted protocol classes) goes to the permanent
generation (``gc.freeze()``), so full collections skip it, and a young collection comes
every 20,000 container allocations instead of every 700 (:data:`THRESHOLDS`). Cycles are
still collected (a machine dropped with a hook paused holds a greenlet cycle,
docs/BOUNDED.md): later, never leaked. On exit the thresholds and the frozen heap are restored.

Measured (callgrind, 300 of certify's walk examples of ``linux``, start-up subtracted,
docs/BENCHMARKS.md "2026-12-03 03:20"): 5.1% fewer instructions; the raw walk 4.5%.

It changes no verdict and no trace: what the model computes never depends on when a
cycle is freed (``bench/golden.py --check`` compares traces byte for byte).

Example::

    >>> import gc
    >>> before = gc.get_threshold()
    >>> with search_gc():
    ...     gc.get_threshold()[0]
    20000
    >>> gc.get_threshold() == before
    True
"""
from __future__ import annotations

import gc
from contextlib import contextmanager

#: the thresholds while a search runs: a young collection every 20,000 container
#: allocations (CPython's default: 700), a middle one every 20 young ones, a full one every
#: 100 middle ones (defaults 10 and 10); measured as given in the module doc
THRESHOLDS = (20_000, 20, 100)


@contextmanager
def search_gc():
    """Run the block under the search's collection policy (module doc); nests and restores.

    A caller that froze the heap itself (``gc.get_freeze_count()`` > 0 on entry) keeps its
    frozen objects: the block neither freezes nor unfreezes then.
    """
    old = gc.get_threshold()
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    if old[0]:  # a threshold of 0 turns collection off: leave that as it is
        gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        if freeze:
            # the block's own cyclic garbage, collected while the heap before it is still
            # frozen (so this pass reads only the block's objects): unfrozen first, it went to
            # the oldest generation, the next block froze it with the rest, and a worker
            # running block after block never freed it (2026-12-04: 2.7 MB a soundness chunk,
            # 0.33 MB with this collection; a campaign worker reached 12 GB and the OOM killer)
            gc.collect()
            gc.unfreeze()
