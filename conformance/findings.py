"""Findings about mainline that the default machine leaves out (docs/FINDINGS.md).

A finding is a window in the kernel's own paths, outside any flush protocol's hooks, that
makes every protocol deferring a flush fail the same way. The model has the kernel's path
behind a ``MachineConfig`` switch, off by default, so that a verdict still tells protocols
apart; each finding's litmus scenario turns its switch on and records the verdict per
protocol. A PASS says which findings its machine left out (:func:`scope_lines`), so it is
never read as covering them.

Example::

    >>> from conformance.config import MachineConfig
    >>> [f.id for f in FINDINGS]
    ['F1', 'F2']
    >>> scope_lines(MachineConfig(reclaim_activates_dirty_file=True,
    ...                           lazyfree_skips_isolated=True))
    []
"""
from __future__ import annotations

import attrs


@attrs.frozen
class Finding:
    """One finding: ``switch`` is the boolean ``MachineConfig`` field that takes the
    kernel's path, ``scenario`` the litmus file (``litmus/NAME.litmus``) that shows it."""

    id: str
    summary: str
    switch: str
    scenario: str


FINDINGS = (
    Finding(
        "F1",
        "mainline's shrink_folio_list activates a dirty file folio after try_to_unmap and "
        "before try_to_unmap_flush_dirty, so the flusher copies it out under a writable TLB "
        "entry (S2 for every protocol that defers reclaim's flush)",
        "reclaim_activates_dirty_file",
        "finding-reclaim-activates-dirty-file",
    ),
    Finding(
        "F2",
        "folio_mark_lazyfree leaves a folio off the LRU swap-backed after madvise_free_pte_range "
        "cleaned its PTE, so a later reclaim swaps it out with no dirty flush while the "
        "MADV_FREE's gather still holds the flush of a writable dirty entry (S2 for every "
        "protocol that defers both)",
        "lazyfree_skips_isolated",
        "finding-lazyfree-skips-isolated",
    ),
)


def caveat_lines(cfg) -> list[str]:
    """The other side of :func:`scope_lines`: one line per finding whose kernel path
    ``cfg`` takes, for :meth:`MachineConfig.caveats` (a failure on that machine may be the
    finding's, not the protocol's).

    Example::

        >>> from conformance.config import MachineConfig
        >>> caveat_lines(MachineConfig())
        []
        >>> print(caveat_lines(MachineConfig(lazyfree_skips_isolated=True))[0])  # doctest: +ELLIPSIS
        lazyfree_skips_isolated: mainline's own path of finding F2 (docs/FINDINGS.md), ...
    """
    return [f"{f.switch}: mainline's own path of finding {f.id} (docs/FINDINGS.md), which "
            f"fails every protocol that defers the flushes it needs, mainline included: a "
            f"failure may be the finding's, not the protocol's (litmus/{f.scenario}.litmus)"
            for f in FINDINGS if getattr(cfg, f.switch)]


def scope_lines(cfg) -> list[str]:
    """What a PASS on machine ``cfg`` does not cover: one line per finding whose kernel
    path ``cfg`` leaves off, with the flag that turns it on.

    Example::

        >>> from conformance.config import MachineConfig
        >>> print(scope_lines(MachineConfig())[0])     # doctest: +ELLIPSIS
        not finding F1 (docs/FINDINGS.md): mainline's shrink_folio_list activates ...; --config reclaim_activates_dirty_file=true takes that path
    """
    return [f"not finding {f.id} (docs/FINDINGS.md): {f.summary}; "
            f"--config {f.switch}=true takes that path"
            for f in FINDINGS if not getattr(cfg, f.switch)]
