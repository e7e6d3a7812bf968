"""flushcheck: a property-based conformance suite for TLB flush protocols.

The pieces follow Jepsen's split of a test:

=================  ==========================================================
generator          ``strategies/`` and :mod:`conformance.search` (the state
                   machine, the walk, the explorer, the bounded search)
nemesis            hardware events in :mod:`conformance.hw.tlb` (fill, evict)
system under test  a protocol class from ``protocols/`` (:mod:`conformance.protocol`),
                   called by the kernel paths of :mod:`conformance.mm`
history            :mod:`conformance.trace`
checker            :mod:`conformance.oracle`
=================  ==========================================================

:mod:`conformance.machine` ties them together: the hardware (:mod:`conformance.hw`), the
kernel (:mod:`conformance.mm`), the protocol and the oracle of one simulated machine.

Example::

    >>> from conformance.machine import Machine
    >>> from conformance.registry import load_protocol
    >>> from conformance.config import MachineConfig
    >>> m = Machine(load_protocol("linux"), MachineConfig(populate=False))
    >>> m.user_access(0, 0, write=False)   # CPU0 touches vpage 0 of its mm: faults
    'fault'
"""
