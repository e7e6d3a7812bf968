"""Hypothesis strategies for the conformance state machine (the *generator*).

Everything is kept small so that collisions are frequent: few CPUs, a handful of
virtual pages split over two page-table pages, few frames (the allocator reuses
the most recently freed one), two files of two pages.

Each strategy takes the :class:`~conformance.config.MachineConfig` it draws for.

Example::

    >>> from hypothesis import find
    >>> from conformance.config import DEFAULT
    >>> find(cpus(DEFAULT), lambda c: c > 0)  # the smallest CPU number above 0 it draws
    1
"""
from __future__ import annotations

from hypothesis import strategies as st


def cpus(cfg):
    """A CPU number (mapped onto an idle CPU by the rules that need one)."""
    return st.integers(0, cfg.ncpus - 1)


def vpages(cfg):
    """A virtual page of the CPU's loaded mm."""
    return st.integers(0, cfg.vpages - 1)


def range_starts(cfg):
    """Start of an munmap/mprotect range: ``< vpages`` is a page; above picks a page whose
    PTE reclaim or migration just took away (see ``Driver._start``)."""
    return st.integers(0, 2 * cfg.vpages - 1)


def mms(cfg):
    return st.integers(0, cfg.nmms - 1)


def files(cfg):
    return st.integers(0, cfg.nfiles - 1)


def pgoffs(cfg):
    return st.integers(0, cfg.file_pages - 1)


def mapping_kinds(cfg):
    """``None`` for anonymous memory, else a file number."""
    return st.sampled_from((None,) + tuple(range(cfg.nfiles)))


def picks():
    """An index into a list chosen at run time (taken modulo its length; shrinks to 0)."""
    return st.integers(0, 7)


def code(radices):
    """One integer encoding several small fields (mixed radix; see :func:`decode`).

    Example::

        >>> decode(7, (2, 4))
        (1, 3)
    """
    n = 1
    for r in radices:
        n *= r
    # no attribute on it for the raw walk's fields: Hypothesis caches st.integers() by its
    # bounds, so two configs (or picks()) share one object and the last writer's radices
    # reached both, which made a walk example depend on the configs run before it in the
    # process (the rule function carries them: statemachine._rule_method, walk_fields)
    return st.integers(0, n - 1)


def decode(x: int, radices) -> tuple:
    """Split ``x`` into fields, the first field in the least significant digit."""
    out = []
    for r in radices:
        x, d = divmod(x, r)
        out.append(d)
    return tuple(out)
