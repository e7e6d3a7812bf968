"""bench/corpus.py's proof outside certify (``prove_outside``): it proves a shrunk failure
shortest with the search certify's report prints, and it finds a shorter interleaving when
the length it is given is not the shortest (so the column it fills can say "no")."""
import importlib.util
import os
from types import SimpleNamespace

from conformance.certify import certify
from conformance.registry import load_protocol

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bench_corpus():
    spec = importlib.util.spec_from_file_location("bench_corpus",
                                                  os.path.join(ROOT, "bench", "corpus.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_prove_outside_certify_agrees_and_can_refute():
    bc = _bench_corpus()
    cls = load_protocol("linux_4_3")
    r = certify(cls, budget_s=20, seed=0, jobs=1, database=None)
    assert r.failures and r.litmus and r.proven  # certify's own shrink proved it
    as_unproven = SimpleNamespace(failures=r.failures, proven=False, litmus=r.litmus,
                                  shrunk_length=r.shrunk_length)
    got = bc.prove_outside(cls, as_unproven, 10_000)
    assert got["proven"] is True and got["shorter"] is None
    # claimed longer than it is: the same search finds the real one, shorter
    longer = SimpleNamespace(failures=r.failures, proven=False, litmus=r.litmus,
                             shrunk_length=r.shrunk_length + 2)
    got = bc.prove_outside(cls, longer, 10_000)
    assert got["proven"] is False and got["shorter"].startswith(f"{r.shrunk_length} actions")
    # nothing to prove: proven inside certify, or no failure, or proofs turned off
    assert bc.prove_outside(cls, r, 10_000) is None
    assert bc.prove_outside(cls, as_unproven, 0) is None
    assert "1 outside certify" in bc._fmt_proven(
        [dict(proven=False, outside=dict(proven=True, shorter=None)), dict(proven=True)])
