"""Step helpers shared by the tests that drive a machine by hand."""


def past_rmap_walk(m, op):
    """Advance ``op`` (a reclaim or migration paused in its rmap walk) until it holds no rmap
    lock (``i_mmap_rwsem``, an anon_vma's rwsem): its walk is over, its deferred flush not
    done yet. A munmap's ``free_pgtables`` waits for that walk (docs/model.md section 5)."""
    while op in m.ops and any(getattr(lk, "name", "").startswith(("i_mmap", "anon_vma"))
                              for lk in op.held):
        m.advance(op.id)
    return op
