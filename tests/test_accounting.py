"""The model's frame and swap-slot accounting at quiescence (conformance/accounting.py): every
rule fails on a machine with that bookkeeping broken by hand, passes on the same machine
intact, and ``check_quiescent`` reports it as a MODEL ERROR (never a protocol's verdict)."""
import re

import pytest

from conformance.accounting import unaccounted
from conformance.errors import ModelError
from conformance.machine import Machine
from conformance.mm.mm_types import SWAP
from conformance.registry import load_protocol

LINUX = load_protocol("linux")


def swapped_out():
    """The default machine with mm0:v0's folio (pfn0) reclaimed to swap."""
    m = Machine(LINUX)
    m.reclaim(1, (0,))
    m.drain()
    assert m.mms[0].ptes[0].kind == SWAP
    return m


def forget_cached_page(m):
    m.mem.files[0].cache.pop(0)            # pfn2: the page cache no longer holds it


def free_twice(m):
    m.mem.free_list.append(m.mem.free_list[0])


def leave_dead(m):
    m.consumer_alloc()
    frame = m.consumer_frames.pop()
    m.mem.owner[frame] = "released"        # dead, never freed


def unmap_anon(m):
    m.mms[0].ptes[1].clear()               # pfn1: mapped by nothing, not in the swap cache
    m.mem.rmap[1].clear()
    for c in m.tlbs.cpus:                  # and cached nowhere (else C1 comes first)
        m.tlbs.drop_mm(c, 0)


def lose_swap_entry(m):
    m.mms[0].ptes[0].clear()               # swap_map still counts mm0:v0's entry


def leak_slot(m):
    m.mem.swap_free.pop()                  # a slot nobody uses, off the free list


def still_isolated(m):
    m.mem.isolated[1] = "reclaim"


@pytest.mark.parametrize("machine, breaks, says", [
    (Machine, forget_cached_page, "is lost: the page cache holds pfn- at file0:0"),
    (Machine, free_twice, "the free list holds a frame twice"),
    (Machine, leave_dead, "is dead ('released') but was never freed"),
    (Machine, unmap_anon, "no PTE maps it and the swap cache does not hold it"),
    (swapped_out, lose_swap_entry, "counts 1 swap entries (swap_map) where 0 PTEs"),
    (swapped_out, leak_slot, "is unused (0 swap entries) but not on the swap free list"),
    (Machine, still_isolated, "still isolated or gathered"),
])
def test_each_rule_fails_broken_bookkeeping_and_passes_it_intact(machine, breaks, says):
    m = machine(LINUX) if machine is Machine else machine()
    assert unaccounted(m) is None
    m.check_quiescent()
    breaks(m)
    assert says in unaccounted(m)
    with pytest.raises(ModelError, match="frame accounting: .*" + re.escape(says)):
        m.check_quiescent()
