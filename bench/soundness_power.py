#!/usr/bin/env python
"""Would the soundness campaign have caught the false positives it was built for?

Puts back, one at a time, the two model/oracle bugs issue "Sound verdicts" fixed, and runs
``flushcheck soundness`` (``conformance.soundness.campaign``) on ``linux``, which must pass:

* ``s3-frame``: S3 of madvise compares frames, not PTE instances (an entry of a slot madvise
  walked must map the frame the PTE maps now): the false S3 of
  ``litmus/model-s3-madvise-refault.litmus``;
* ``keep-before-dirty-flush``: reclaim keeps a gathered dirty folio before
  ``try_to_unmap_flush_dirty`` (the false S2 of
  ``litmus/model-reclaim-dirty-flush-before-keep.litmus``), put back by skipping the dirty
  flush whenever a folio the task isolated is gathered.

For each it prints the violations the campaign reports and how fast, next to the fixed model
(``fixed``). A measurement, not a test: the teeth tests are in tests/test_soundness_fixes.py.

Usage::

    python bench/soundness_power.py --budget 20 --jobs 2
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from conformance.oracle import Oracle  # noqa: E402
from conformance.registry import load_protocol  # noqa: E402
from conformance.soundness import CONFIG_SETS, campaign  # noqa: E402
from old_model import old_s3_frame, skip_dirty_flush_if_gathered  # noqa: E402


def install(variant: str) -> None:
    """Put one fixed bug back, in this process (tests/old_model.py)."""
    if variant == "s3-frame":
        Oracle.check_s3 = old_s3_frame
    elif variant == "keep-before-dirty-flush":
        linux = sys.modules[load_protocol("linux").__module__].Linux
        linux.try_to_unmap_flush_dirty = skip_dirty_flush_if_gathered(linux.try_to_unmap_flush_dirty)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=20.0, help="seconds per config")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--variant", action="append", default=None,
                    choices=("fixed", "s3-frame", "keep-before-dirty-flush"))
    args = ap.parse_args()
    variants = args.variant or ["s3-frame", "keep-before-dirty-flush"]
    for v in variants:
        pid = os.fork()
        if pid == 0:  # each variant in its own process: patches do not leak into the next
            install(v)
            res = campaign(["linux"], CONFIG_SETS["default"], budget_s=args.budget, seed=7,
                           jobs=args.jobs, repro_dir=f"/tmp/soundness-power-{v}", shrink_s=2)
            steps = sum(c.steps for c in res.cells)
            bad = sum(c.violations for c in res.cells)
            rules = sorted({f.key for c in res.cells for f in c.findings})
            print(f"{v:26} {steps:>11,} steps  {bad:>5} failing examples  rules {rules or '-'}")
            for c in res.cells:
                print(f"    {c.job.config:8} {c.steps:>10,} steps {c.violations:>5} failing "
                      f"{dict(sorted(c.counts.items()))}")
            os._exit(0)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
