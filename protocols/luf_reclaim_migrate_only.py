"""LUF restricted to reclaim and migration, with every other unmap path forced to flush
through a ``flush_tlb_batched_pending``-like framework: Huang Ying's suggestion in the
seed thread (2024-05-30: "only support page reclaiming and migration. A TLB flushing can
be enforced during unmap with something similar as flush_tlb_batched_pending()").

Modelled as the LUF core with no other give-up point: zap, mprotect (and mremap,
madvise) already call ``flush_tlb_batched_pending`` under the PTL, which flushes the
mm because LUF's unmaps mark it pending; the allocator flushes at takeoff.
Reading in LUF's favour: the forced flush covers every unmap path that takes a PTL.
"""
from protocols._luf import LufBase


class LufReclaimMigrateOnly(LufBase):
    """LUF for reclaim/migration only; unmap paths rely on flush_tlb_batched_pending."""

#: the rule the fuzzer must find violated (tests/test_protocols.py, docs/LUF.md)
EXPECTED_VIOLATION = "C1"
