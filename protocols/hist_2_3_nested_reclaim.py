"""Before b385d21f27d8 "mm: delete unnecessary and unsafe init_tlb_ubc()" (Hugh Dickins, 2016;
Fixes 72b252aed506, stable 4.3+).

``shrink_node_memcg`` began with ``init_tlb_ubc()``: ``current->tlb_ubc.flush_required =
false``. Memcg reclaim can recurse into global reclaim (allocating for swapout), arrive back
there and reset the outer level's pending flush; if the inner level needs none, the outer
``try_to_unmap_flush`` does nothing and the outer level frees pages that other CPUs still
cache. kernel-notes 2.3. The cpumask is deliberately not cleared, as in the kernel.

  CPU0 (reclaim, one task)                                  CPU1 (task of the mm)
  try_to_unmap(A): ptep_get_and_clear, flush deferred       (entry for A cached)
  add_to_swap(B) -> allocation -> nested shrink_node:
    init_tlb_ubc(): flush_required = false
    ... inner reclaim needs no flush ...
  try_to_unmap_flush(): nothing required
  free A
  (A reallocated)                                           <- S1
"""
from protocols.linux import Linux


class NestedReclaimReset(Linux):
    """4.3-4.7 (fixed in 4.8): every reclaim pass, nested or not, resets ``flush_required``."""

    def init_tlb_ubc(self, task) -> None:
        """``init_tlb_ubc()``: ``current->tlb_ubc.flush_required = false`` (cpumask kept)."""
        task.tlb_ubc.flush_required = False


EXPECTED_VIOLATION = "S1"
BUG = "2.3"
FIXED_BY = "b385d21f27d8"
LITMUS = "bug-2.3-nested-reclaim"
SUMMARY = ("a nested reclaim pass (memcg reclaim allocating for swapout) resets the outer "
           "pass's flush_required; pages are freed with live remote TLB entries")
