"""Human-readable verdicts for certify and replay (what users paste into a review)."""
from __future__ import annotations

import inspect

from .certify import Result
from .errors import ModelError, ProtocolError

RULE_NAMES = {
    "S1": "frame reuse",
    "S2": "copy-out",
    "S3": "syscall return",
    "C1": "quiescent coherence",
    "O1": "observation",
}


def protocol_summary(cls) -> str:
    doc = inspect.getdoc(inspect.getmodule(cls)) or inspect.getdoc(cls) or ""
    return doc.splitlines()[0] if doc else ""


def certify_report(res: Result, proto_cls, commit: str, repro_paths) -> str:
    """The certify verdict block."""
    rules = ", ".join(f"{k} {v}" for k, v in RULE_NAMES.items())
    if res.strict:
        rules = rules.replace("O1 observation", "O1 observation (strict)")
    lines = [
        f"flushcheck certify {res.protocol}",
        f"  protocol  {res.protocol}: {protocol_summary(proto_cls)}",
        f"  commit    {commit}",
        f"  config    {res.config.describe()}",
        f"  seed      {res.seed}   budget {res.budget_s:g} s   jobs {res.jobs}",
        f"  rules     {rules}",
        f"  ran       {res.examples} examples, {res.steps} steps in {res.elapsed_s:.1f} s",
    ]
    if res.passed:
        lines.append("  verdict   PASS: 0 violations")
        return "\n".join(lines)
    f = res.failure
    rules = ", ".join(sorted({x.rule for x in res.failures}))
    kind = ("MODEL ERROR (a flushcheck bug)" if isinstance(f, ModelError)
            else "PROTOCOL ERROR" if isinstance(f, ProtocolError) else f"FAIL: {rules} violated")
    lines.append(f"  verdict   {kind}")
    if res.first_failure_s is not None:
        lines.append(f"  found     after {res.first_failure_s:.1f} s (chunk {res.failing_chunk}); "
                     f"shrunk to {', '.join(str(len(x.machine.actions)) for x in res.failures)} actions")
    for i, x in enumerate(res.failures):
        lines.append("")
        lines.append(x.report(last=None))
        if repro_paths and i < len(repro_paths):
            lines.append("")
            lines.append(f"reproducer: {repro_paths[i]}")
            lines.append(f"replay:     flushcheck replay {repro_paths[i]}")
    return "\n".join(lines)
