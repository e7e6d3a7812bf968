"""Step helpers shared by the tests that drive a machine by hand."""


def past_rmap_walk(m, op):
    """Advance ``op`` (a reclaim or migration paused in its rmap walk) until it holds no rmap
    lock (``i_mmap_rwsem``, an anon_vma's rwsem): its walk is over, its deferred flush not
    done yet. A munmap's ``free_pgtables`` waits for that walk (docs/model.md section 5)."""
    while op in m.ops and any(getattr(lk, "name", "").startswith(("i_mmap", "anon_vma"))
                              for lk in op.held):
        m.advance(op.id)
    return op


def run_lines(text: str, cls):
    """The machine after every line of the litmus script ``text`` ran on protocol ``cls``
    (no drain, no final check: the test inspects the state the script leaves)."""
    from conformance.litmus import _Runner, parse
    from conformance.machine import Machine

    sc = parse(text)
    m = Machine(cls, sc.config)
    r = _Runner(sc, m)
    for no, words in sc.lines:
        r.line(no, words)
    return m
