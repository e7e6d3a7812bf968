"""A bug of the model (an exception that is no Failure) is reported as a MODEL ERROR by every
runner, with its reproducer, never as a crash of the suite: the walk, delta debugging (the
soundness campaign's shrink used to die with the model's TypeError, seed 9494), replay, a
litmus script, the explorer.

The model bug is injected: ``Kernel.copy_out`` (the S2 check point of pageout, migration
and writeback) raises TypeError when it copies out of one chosen frame.
"""
import os

import pytest

import conformance.mm as K
from conformance.errors import ModelError
from conformance.litmus import parse, run
from conformance.registry import load_protocol
from conformance.reproducer import replay_actions
from conformance.search.explorer import explore
from conformance.search.walk import run_example, shrink

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def broken_copy_out(monkeypatch):
    orig = K.Kernel.copy_out

    def copy_out(self, op, frame):
        if self.mem.owner[frame][0] == "a":  # anonymous pageout / migration copy
            raise TypeError("injected model bug")
        return orig(self, op, frame)

    monkeypatch.setattr(K.Kernel, "copy_out", copy_out)


SCRIPT = """\
name   injected
config populate=false ncpus=2
expect * pass
CPU0   touch w v0
CPU1   reclaim R pfn(mm0,v0)
R      finish
"""

THREADED = """\
name   injected-threaded
config populate=false ncpus=2
expect * pass
CPU0   touch w v0
thread CPU0
touch w v1
thread CPU1
reclaim R pfn(mm0,v0)
"""


def test_litmus_script_reports_a_model_error(broken_copy_out):
    f = run(parse(SCRIPT, "<injected>"), load_protocol("linux"))
    assert isinstance(f, ModelError) and "uncaught TypeError: injected model bug" in str(f)
    assert "MODEL ERROR" in f.report()


def test_explorer_reports_a_model_error(broken_copy_out):
    res = explore(parse(THREADED, "<injected>"), load_protocol("linux"))
    assert isinstance(res.failure, ModelError) and res.verdict == "MODEL-ERROR"


def test_walk_shrink_and_replay_keep_a_model_error(broken_copy_out):
    cls = load_protocol("linux")
    ex = next(e for e in (run_example(cls, seed=s) for s in range(200))
              if e.failure is not None)
    assert isinstance(ex.failure, ModelError)
    small = shrink(ex.failure, seconds=20)
    assert isinstance(small, ModelError)
    assert len(small.machine.actions) <= len(ex.failure.machine.actions)
    again = replay_actions(cls, small.machine.cfg, False, small.machine.actions)
    assert isinstance(again, ModelError) and str(again) == str(small)
    assert "MODEL ERROR" in again.report()


def test_without_the_injected_bug_all_pass():
    """The same inputs pass on the model as it is: the tests above see the injected bug."""
    assert run(parse(SCRIPT, "<injected>"), load_protocol("linux")) is None
    assert explore(parse(THREADED, "<injected>"), load_protocol("linux")).verdict == "pass"
