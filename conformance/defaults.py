"""What the command line shows as its defaults, importable without Hypothesis.

``flushcheck explore`` and ``flushcheck litmus`` start in a fraction of a second
because building the parser imports nothing heavier than this module and
:mod:`conformance.config`; the modules that own these values
(:mod:`conformance.search.walk`, :mod:`conformance.database`, :mod:`conformance.certify`)
import Hypothesis and re-export them from here.
"""
from __future__ import annotations

import os

#: actions per raw-walk example (bench/steps.py measures with the same length)
ACTIONS_PER_EXAMPLE = 80

#: the profiles certify and the pytest plugin share (:mod:`conformance.database`), what each
#: sets: the example database ("dev": .hypothesis/flushcheck, "none", "redis":
#: $FLUSHCHECK_REDIS), certify's budget in seconds *per machine config*, its machine configs
#: (names in :data:`conformance.database.PROFILE_CONFIGS`), and the Hypothesis examples per
#: protocol of the pytest plugin's ``fuzz`` (None: ``--flushcheck-examples``, 300)
PROFILE_SETTINGS = {
    "dev": dict(database="dev", budget_s=60.0, configs=("default",), examples=None),
    "ci": dict(database="none", budget_s=60.0, configs=("default",), examples=None),
    "fleet": dict(database="redis", budget_s=60.0, configs=("default",), examples=None),
    "thorough": dict(database="dev", budget_s=200.0, configs=("default", "cpus2-empty", "big"),
                     examples=2_000),
    "nightly": dict(database="dev", budget_s=600.0,
                    configs=("default", "cpus2-empty", "big", "cpus4", "empty", "tight"),
                    examples=10_000),
}
#: the profile names (``--profile``, ``--hypothesis-profile``)
PROFILES = tuple(PROFILE_SETTINGS)

#: certify's examples per chunk by engine (``--engine``): a walk example costs about a
#: millisecond, a Hypothesis one about 15
DEFAULT_CHUNK = {"walk": 500, "hypothesis": 50}
ENGINES = tuple(DEFAULT_CHUNK)


def default_jobs() -> int:
    """Worker processes by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
