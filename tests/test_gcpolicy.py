"""The searches' garbage-collection policy (conformance/gcpolicy.py): it restores what it
changed, and changes no run."""
from __future__ import annotations

import gc

from conformance.gcpolicy import THRESHOLDS, search_gc
from conformance.registry import load_protocol
from conformance.search.walk import run_example


def test_restores_thresholds_and_unfreezes():
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    with search_gc():
        assert gc.get_threshold() == THRESHOLDS
        assert gc.get_freeze_count() > frozen
        with search_gc():  # nested: the inner block leaves the outer one's freeze alone
            assert gc.get_threshold() == THRESHOLDS
        assert gc.get_freeze_count() > frozen
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen


def test_restores_after_an_exception():
    before = gc.get_threshold()
    try:
        with search_gc():
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.get_threshold() == before


def test_collection_off_stays_off():
    before = gc.get_threshold()
    gc.set_threshold(0)
    try:
        with search_gc():
            assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)


def test_the_policy_changes_no_run():
    """The same examples, with and without the policy: the same actions and trace."""
    cls = load_protocol("linux_4_3")

    def runs():
        out = []
        for s in range(40):
            ex = run_example(cls, seed=s, swarm=True)
            out.append((ex.machine.actions, list(ex.machine.trace.lines()),
                        None if ex.failure is None else ex.failure.rule))
        return out
    plain = runs()
    with search_gc():
        assert runs() == plain
    assert any(r for _, _, r in plain)  # some of them fail: failing runs compared too
