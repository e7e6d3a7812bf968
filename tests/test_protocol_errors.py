"""A protocol that raises, loops or breaks the hook rules is a protocol error with a
reproducer, never a crash of the suite (and never reported as a violation)."""
import json

from conformance.certify import certify
from conformance.errors import ProtocolError
from conformance.litmus import corpus, run
from conformance.reproducer import load, replay, save
from protocols.linux import Linux

SC2017 = next(s for s in corpus() if s.name == "reclaim-vs-mprotect-2017")


class Raises(Linux):
    name = "raises"

    def try_to_unmap_flush(self, task):
        raise RuntimeError("boom")


class Loops(Linux):
    name = "loops"

    def flush_tlb_batched_pending(self, task, mm):
        while True:  # an interleaving point that never ends
            yield


class YieldsInAlloc(Linux):
    name = "yields_in_alloc"

    def page_alloc(self, task, frame):
        yield  # allocation cannot be interleaved


def test_raising_hook_is_a_protocol_error():
    f = run(SC2017, Raises)
    assert isinstance(f, ProtocolError)
    assert "RuntimeError in reclaim" in str(f) and "boom" in str(f)


def test_looping_hook_is_a_protocol_error():
    f = run(SC2017, Loops)
    assert isinstance(f, ProtocolError) and "did not finish" in str(f)


def test_yield_where_not_allowed_is_a_protocol_error():
    f = run(SC2017, YieldsInAlloc)
    assert isinstance(f, ProtocolError) and "page_alloc yielded" in str(f)


def test_correct_protocol_is_not_a_protocol_error():
    """The same scenario on the reference protocol passes (the checker is not trigger-happy)."""
    assert run(SC2017, Linux) is None


def test_certify_reports_protocol_error_with_a_replaying_reproducer(tmp_path):
    res = certify(Raises, budget_s=30, seed=0)
    assert isinstance(res.failure, ProtocolError)
    path = save(res.failure, str(tmp_path / "r.json"), seed=0)
    data = load(path)
    assert data["rule"] == "PROTOCOL-ERROR"
    assert isinstance(replay(data, Raises), ProtocolError)
    assert json.load(open(path))["actions"]
