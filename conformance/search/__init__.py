"""The search: how flushcheck chooses which interleavings to run (Jepsen's generator).

=====================  ================================================================
module                 searches
=====================  ================================================================
:mod:`.statemachine`   Hypothesis's ``RuleBasedStateMachine``: the rules (``RULES``) and
                       the driver that turns their draws into machine actions
:mod:`.walk`           the raw seeded walk (certify's default engine) and delta debugging
:mod:`.explorer`       every interleaving of one threaded litmus file, breadth first
:mod:`.shortest`       a failure's operations as a litmus file, explored for the shortest
:mod:`.bounded`        every program of up to K operations, every interleaving
                       (with :mod:`.menu`, :mod:`.statekey`, :mod:`.fingerprint` and
                       :mod:`.snapshot`, which undoes an operation's start in place)
=====================  ================================================================

The judging is elsewhere: the oracle (:mod:`conformance.oracle`) runs inside every step of
the machine (:mod:`conformance.machine`) whatever searches it.
"""
