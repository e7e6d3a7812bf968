"""State keys for the bounded check: the machine's fingerprint, as a 16-byte digest.

The fingerprint reads what the explorer's (:func:`conformance.search.explorer.fingerprint`) reads,
through :mod:`conformance.search.fingerprint`: generic, every ``__slots__`` field (and ``__dict__``
entry) of the machine's parts, a function per class generated on first sight, so a field
another change adds to a model class is covered without a list to update; likewise every
attribute of the machine, the oracle and the kernel (:func:`_rest`) and every slot of an
operation (:func:`_op`), with the frames of a hook paused at an automatic interleaving
point (:func:`conformance.hookpoints.paused_frames`, as the explorer's key) and each
frame's value stack (:mod:`conformance.search.framestack`: a loop's iterator). It is cut in
parts (:func:`parts`) so that a hardware event re-reads only what it can change
(:func:`hw_summary`). Each part is serialised with ``marshal`` format 0 (no object
sharing, no interning flags: equal tuples give equal bytes whatever their history) and
hashed with BLAKE2b to 16 bytes; the key is BLAKE2b-128 of those part digests and the
search's own state. Two distinct states share a key only if two distinct part values, or
two distinct digest lists, collide: probability at most ``(p**2 + n**2) / 2**129`` for
``p`` part values and ``n`` states (``p`` <= 8n here): below 1e-19 for 10**9 states
(docs/BOUNDED.md).

A protocol whose state refers to itself (or is nested deeper than the recursion limit)
ends the recursive reading in a RecursionError: that key is taken again, and the
protocol's later keys at once, with :func:`conformance.search.fingerprint.safe_fp` (the
same bytes for every value without a cycle; a cycle as a back-reference).

Example::

    >>> from conformance.config import MachineConfig
    >>> from conformance.machine import Machine
    >>> from conformance.registry import load_protocol
    >>> cls, cfg = load_protocol("linux"), MachineConfig(ncpus=2, nmms=1, vpages=2)
    >>> key(Machine(cls, cfg)) == key(Machine(cls, cfg))
    True
    >>> len(key(Machine(cls, cfg)))
    16
"""
from __future__ import annotations

import marshal
from hashlib import blake2b

from . import explorer as _x
from . import fingerprint as _f
from .framestack import _YIELD_FROM, key_values
from ..errors import UsageError
from ..hookpoints import _DRIVE_CODE, paused_frames

DIGEST_BYTES = 16


def key(m, extra=()) -> bytes:
    """The 16-byte digest of ``m``'s fingerprint and ``extra`` (the search's own state)."""
    return digest(parts(m), extra)


def summary(m) -> tuple:
    """``(ranks, part digests)`` of ``m``: what :func:`hw_summary` needs of a state to key
    its hardware successors without taking its parts again (the bounded check keeps it
    with each state of the BFS frontier: 16 bytes a part, one ``bytes``)."""
    p = parts(m)
    return p[0], pdigests(p)


def pdigests(p: tuple) -> bytes:
    """The parts of :func:`parts` each hashed to 16 bytes, concatenated."""
    return b"".join([blake2b(b, digest_size=DIGEST_BYTES).digest() for b in p[1]])


def digest_pd(pd: bytes, extra=()) -> bytes:
    """The 16-byte key of a state's part digests (:func:`pdigests`) and ``extra``."""
    return blake2b(pd + _dumps(extra), digest_size=DIGEST_BYTES).digest()


def _dumps(x) -> bytes:
    try:
        b = marshal.dumps(x, 0)
    except ValueError:  # unmarshallable, or nested deeper than marshal goes (2,000 levels)
        b = _f.text(x).encode()
    return len(b).to_bytes(4, "little") + b  # length-prefixed: parts cannot run together


def parts(m) -> tuple:
    """The fingerprint of ``m`` in parts, each serialised: ``(ranks, [mms, cpu0, cpu1, ...,
    memory, protocol, the rest (:func:`_rest`), operations])``; ``ranks`` is the sorted PTE
    instance numbers the parts were ranked against (:func:`conformance.search.explorer._inst_ranks`).
    The content of :func:`conformance.search.explorer.fingerprint` (plus any attribute other changes
    add), cut where a hardware event's change stops (:func:`hw_summary`)."""
    ranks = _x._inst_ranks(m)
    _f.ranked(ranks)
    cls = m.proto.__class__
    fast = _PROTO_FAST.get(cls)
    if fast is None:  # its state is its own part: elsewhere a name
        _f.opaque(cls, "proto")
        fast = _PROTO_FAST[cls] = True
    try:
        if fast:
            try:
                out = _parts(m, _f.fp, _f.top, _OP_FN)
            except RecursionError:  # a cycle, or deep state: read again, without recursing
                _PROTO_FAST[cls] = False
                _f.ranked(ranks)  # a new memo
                out = _safely(m, _parts, m)
        else:
            out = _safely(m, _parts, m)
    finally:
        _f.ranked(None)
    return tuple(ranks[0]), out


#: protocol class -> False once its state ended a recursive reading in a RecursionError
#: (its keys are read by :func:`conformance.search.fingerprint.safe_fp` from then on, in
#: this process: the same bytes for state without a cycle, so keys taken either way mix)
_PROTO_FAST: dict = {}


def _parts(m, fp, top, op_fns) -> list:
    out = [_dumps(tuple([top(mm) for mm in m.mms]))]
    out += [_dumps(_cpu(c, top)) for c in m.tlbs.cpus]
    out.append(_dumps(_memory(m.mem, fp)))
    out.append(_dumps(top(m.proto)))
    out.append(_dumps(_rest(m, fp)))
    out.append(_ops_part(m, fp, op_fns))
    return out


def _cpu(c, top):
    """A CPU's part: every slot, read by ``top``, with its TLB in a canonical form: tables
    by mm id and entries by page, an mm's empty table left out. Nothing the machine does
    depends on a TLB's dict order or on an empty table (no capacity, no LRU: a flush, an
    eviction or a lookup names its entry, and ``Tlbs.cached`` lists mms sorted); only the
    order in which a message or the non-lazy eviction list names entries does. Read in
    insertion order, a re-fill (its page moves to the table's end) or an eviction of a
    table's last entry (an empty table, where a full flush leaves none) made one state
    several keys: ``bound linux -k 2`` searched 53,214 states where 35,637 are distinct
    (a review, 2026-12-06). The dict is swapped for the canonical one while ``top`` reads
    the CPU, so that the generated reader, the safe reader and any slot added later all
    see it."""
    tlb = c.tlb
    canon = {mid: (t if len(t) < 2 else dict(sorted(t.items())))
             for mid, t in sorted(tlb.items()) if t}
    c.tlb = canon
    try:
        return top(c)
    finally:
        c.tlb = tlb


def _safely(m, f, *args):
    """``f(*args, fp, top, op readers)`` with the readers that do not recurse; a
    RecursionError left (the readers of ``fingerprint.SPECIAL``'s values and of iterators
    recurse: a bound method's object, a closure, a deque, a partial) as one line naming the
    protocol."""
    try:
        return f(*args, _f.safe_fp, _f.safe_top, _OP_FN_SAFE)
    except RecursionError:
        name = getattr(m.proto, "name", m.proto.__class__.__name__)
        raise UsageError(
            f"protocol {name}: its state is nested too deep for the search's state key "
            "(bound methods, closures, deques, partials or iterators inside one another, some "
            "hundreds of levels); keep protocol state in plain objects, slotted classes, dicts, "
            "lists, tuples and sets, which are read at any depth") from None


def _memory(mem, fp) -> tuple:
    return tuple([fp(getattr(mem, s, None)) for s in _f.slots_of(mem.__class__)])


def hw_summary(m, base: tuple, cpu: int, pte_changed: bool) -> tuple:
    """:func:`summary` of ``m`` after a fill or an eviction on ``cpu``, from ``base``, the
    summary before it. The event changed that CPU's TLB, and, when ``pte_changed`` (a fill
    that set a PTE's accessed bit), that PTE: then every part is taken again (a local of an
    operation, or any other part, may hold the PTE). Otherwise only that CPU's part is, and
    the operations' if one of them keeps S3 write-dirty entries (``s3_wd``: which entry is
    cached matters to it); also every part if the event changed the PTE instance numbers the
    state holds (an eviction of the last entry of an old PTE: the ranks move)."""
    if pte_changed:
        return summary(m)
    ranks = _x._inst_ranks(m)
    if tuple(ranks[0]) != base[0]:
        return summary(m)
    cls = m.proto.__class__
    _f.ranked(ranks)
    try:
        if _PROTO_FAST.get(cls, True):
            try:
                pd = _hw_parts(m, base[1], cpu, _f.fp, _f.top, _OP_FN)
            except RecursionError:  # as parts(): read again, without recursing
                _PROTO_FAST[cls] = False
                _f.ranked(ranks)
                pd = _safely(m, _hw_parts, m, base[1], cpu)
        else:
            pd = _safely(m, _hw_parts, m, base[1], cpu)
    finally:
        _f.ranked(None)
    return base[0], pd


def _hw_parts(m, pd: bytes, cpu: int, fp, top, op_fns) -> bytes:
    d = DIGEST_BYTES
    at = (1 + cpu) * d
    b = blake2b(_dumps(_cpu(m.tlbs.cpus[cpu], top)), digest_size=d).digest()
    pd = pd[:at] + b + pd[at + d:]
    for op in m.ops:
        if op.s3_wd:
            pd = pd[:-d] + blake2b(_ops_part(m, fp, op_fns), digest_size=d).digest()
            break
    return pd


#: Machine attributes that are not state, or that other parts cover; every other attribute
#: (one another change adds included) enters the key through :func:`_rest`
_MACHINE_SKIP = frozenset({
    "cfg", "mem", "tlbs", "mms", "ops", "proto", "oracle", "kernel",  # parts of their own
    "trace", "actions", "arch", "coverage", "_proto_files", "_w_pending", "_w_stale",
    "_w_beside", "_fts_overridden",  # the protocol's, never changes
    "failed",  # the history, the hardware's code, coverage counters, bookkeeping
    "pte_insts",  # the next PTE instance is larger than all: ranks stand for the numbers
})


#: the x86 layer's attributes that are not state: references, the flush counter
_ARCH_SKIP = frozenset({"tlbs", "cpus", "trace", "flushes"})


def _rest(m, fp) -> tuple:
    """Machine, oracle, kernel and arch state outside the big parts, read generically: every
    attribute not in :data:`_MACHINE_SKIP`, the oracle's (its expected values; not its
    check counters), the kernel's, and the arch layer's but :data:`_ARCH_SKIP`."""
    d = m.__dict__
    mine = tuple([(k, fp(d[k])) for k in sorted(d) if k not in _MACHINE_SKIP])
    od = m.oracle.__dict__
    oracle = tuple([(k, fp(od[k])) for k in sorted(od)
                    if k != "m" and not k.startswith("checked_")])
    kd = m.kernel.__dict__
    kernel = tuple([(k, fp(kd[k])) for k in sorted(kd)])
    ad = getattr(m.arch, "__dict__", {})
    arch = tuple([(k, fp(ad[k])) for k in sorted(ad) if k not in _ARCH_SKIP])
    return mine, oracle, kernel, arch


def _ops_part(m, fp, op_fns) -> bytes:
    return _dumps(tuple([_op(m, op, fp, op_fns) for op in m.ops]))


def _op(m, op, fp, op_fns) -> tuple:
    """One operation in flight: every slot (generically, new ones included) but its
    generator and label, the code position, locals and value stack
    (:func:`conformance.search.framestack.key_values`: a loop's iterator) of every frame of
    its ``yield from`` chain, and the oracle's in-flight sets in a canonical order (what
    :func:`conformance.search.explorer._fp_op` reads)."""
    frames = []
    g = op.gen
    while g is not None and g.__class__ is _GEN:
        fr = g.gi_frame
        if fr is None:
            break
        if g.gi_code is _DRIVE_CODE:  # a hook paused at an automatic point: its own frames
            for h in paused_frames(g):  # (the explorer's key reads them too)
                frames.append(_frame(h, None, fp))
        inner = g.gi_yieldfrom
        frames.append(_frame(fr, inner, fp))
        g = inner
    f = op_fns.get(op.__class__)
    if f is None:
        f = op_fns[op.__class__] = _op_slots(op.__class__, fp)
    return (tuple(frames),) + f(m, op)


def _frame(f, inner, fp) -> tuple:
    """One frame: code position, locals, value stack (``inner``: the generator its ``yield
    from`` delegates to, read as the chain's next frames)."""
    st = key_values(f, inner)
    return (f.f_code.co_name, f.f_lasti, _locals(f.f_locals, fp),
            st if not st or st is _YIELD_FROM else fp(st))


def _locals(local: dict, fp) -> tuple:
    """A frame's locals but ``self``, sorted by name: CPython 3.11's ``f_locals`` dict
    appends names set since its last read, so its own order depends on when earlier keys
    were read (docs/BOUNDED.md)."""
    atoms = _f._ATOMS
    return tuple([(k, v if v.__class__ in atoms else fp(v))
                  for k, v in sorted(local.items()) if k != "self"])


#: Op class -> its generated slot reader (:func:`_op_slots`); _SAFE: the same, reading
#: with :func:`conformance.search.fingerprint.safe_fp`
_OP_FN: dict = {}
_OP_FN_SAFE: dict = {}


def _op_slots(cls, fp):
    """Compile ``f(m, op) -> (slot value...)`` for an Op class: every slot but
    :data:`_OP_SKIP`, in slot order, each read the way :data:`_OP_SPECIAL` says or by its
    fingerprint ``fp`` (one attribute read per slot, no per-slot table lookups)."""
    lines, vals, ns = ["def f(m, op):"], [], {"AT": _f._ATOMS, "FP": fp}
    for i, s in enumerate(_f.slots_of(cls)):
        if s in _OP_SKIP:
            continue
        lines.append(f"    v{i} = getattr(op, {s!r}, None)")
        if s in _OP_SPECIAL:
            ns[f"S{i}"] = _OP_SPECIAL[s]
            vals.append(f"S{i}(m, v{i})")
        else:
            vals.append(f"(v{i} if v{i}.__class__ in AT else FP(v{i}))")
    lines.append(f"    return ({', '.join(vals)},)")
    exec(compile("\n".join(lines), f"<op slots {cls.__name__}>", "exec"), ns)  # noqa: S102
    return ns["f"]


def _s3_wd(m, wd) -> tuple:
    tlbs = m.tlbs  # an s3_wd entry matters only while it is still the cached one
    return tuple(sorted((c, mm, vp) for c, mm, vp, e in wd
                        if tlbs.lookup(tlbs.cpus[c], mm, vp) is e))


_GEN = type((lambda: (yield))())
#: Op slots read by :func:`_op` itself, or not state (the label is text for reports, the
#: path names the calling path for coverage counters)
_OP_SKIP = frozenset({"gen", "_label"})
#: Op slots read in a canonical form (dicts the oracle reads as sets; S3's clocks as ranks)
_OP_SPECIAL = {
    "touched_vps": lambda m, v: tuple(sorted(v)),
    "touched_locs": lambda m, v: tuple(sorted(v, key=repr)),
    "touched_frames": lambda m, v: tuple(sorted(v)),
    "s3_visits": lambda m, v: tuple(sorted((k, _f.R(c)) for k, c in v.items())),
    "s3_wd": _s3_wd,
}


def digest(p: tuple, extra=()) -> bytes:
    """The 16-byte key of a state's :func:`parts` and ``extra``: BLAKE2b of the parts'
    own 16-byte digests (:func:`pdigests`), so that a state's summary keys its hardware
    successors (:func:`hw_summary`)."""
    return digest_pd(pdigests(p), extra)
