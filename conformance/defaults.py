"""What the command line shows as its defaults, importable without Hypothesis.

``flushcheck explore`` and ``flushcheck litmus`` start in a fraction of a second
because building the parser imports nothing heavier than this module and
:mod:`conformance.config`; the modules that own these values
(:mod:`conformance.walk`, :mod:`conformance.database`, :mod:`conformance.certify`)
import Hypothesis and re-export them from here.
"""
from __future__ import annotations

import os

#: actions per raw-walk example (bench/steps.py measures with the same length)
ACTIONS_PER_EXAMPLE = 80

#: the example-database profiles (:func:`conformance.database.profile_spec`)
PROFILES = ("dev", "ci", "fleet")


def default_jobs() -> int:
    """Worker processes by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
