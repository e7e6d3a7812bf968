"""Kernel state no hook may change: who is to blame for a MODEL ERROR.

A hook gets the kernel's own objects (the mm, the VMA, the PTE, the task), as the kernel's
functions get pointers; the hook API (conformance/protocol.py) lets it change TLBs (the
arch primitives), ``mm->tlb_gen``, the gather it is handed, its own per-mm/VMA/task state,
and free pages through the allocator. A hook that writes anything else (clears a PTE to
"help", narrows a VMA, edits the page cache) leaves the model inconsistent, and the model
then fails somewhere later, outside any hook: a MODEL ERROR, "a flushcheck bug", blamed on
flushcheck for the protocol's write.

So when a run ends in a MODEL ERROR, :func:`blame` replays its actions once more with this
guard on: around each stretch of a hook's execution (from its call or resumption to its
next point or its return; other CPUs' kernel code runs between stretches and changes this
state rightly) it compares :func:`kernel_state` before and after. A change makes the run
the protocol's error, naming the hook, the step and the first value it changed; the
reproducer stays the MODEL ERROR's actions, whose replay blames it again. No guard runs
on the per-step path: one ``None`` test per hook call (``hookpoints._guard``).

Example::

    >>> from conformance.machine import Machine
    >>> from conformance.registry import load_protocol
    >>> m = Machine(load_protocol("linux"))
    >>> st = kernel_state(m)
    >>> st["mm0 v0 pte"][:2], st == kernel_state(m)
    (('present', 'pfn0'), True)
"""
from __future__ import annotations

from .mm.mm_types import PTE_KIND_NAMES


def kernel_state(m) -> dict:
    """``{name: value}`` of the kernel state no hook may change (module doc): every PTE,
    every mm's VMAs (not their protocol slot) and locks, the page and swap caches, the
    swap map, the frames' contents, reverse maps and isolation, the files on disk; each
    task's fields but ``tlb_ubc`` (its CPU, its generator, what it waits for, the oracle's
    records of what it touched); that every ``mm->tlb_gen`` is an int; the protocol's own
    ``arch`` and ``free_to_allocator`` (a hook that wrote ``task.s3_visits = None`` or
    ``self.arch = None`` was a MODEL ERROR, "a flushcheck bug": a review of 2026-12-05).
    Not: what the allocator's free changes (a frame's owner and flags, the free lists, the
    gathers' references), ``tlb_flush_pending`` (the gather hooks keep it), ``tlb_gen``'s
    value, the TLBs, the protocol's own state. (Values are tuples of plain values, except
    a lock's holder, an operation compared by identity, and :class:`_same`.)"""
    out = {}
    for mm in m.mms:
        n = f"mm{mm.id}"
        for i, p in enumerate(mm.ptes):
            out[f"{n} v{i} pte"] = (PTE_KIND_NAMES[p.kind], f"pfn{p.frame}", "W" if p.writable else "RO",
                                    "D" if p.dirty else "-", "A" if p.accessed else "-",
                                    f"slot{p.slot}", f"inst{p.inst}")
        out[f"{n} vmas"] = tuple([(v.start, v.end, v.anon_id, v.file, v.pgoff, v.writable,
                                   v.maywrite, v.vm_readers, v.vm_write_locked, v.anon_vma)
                                  for v in mm.vmas])
        out[f"{n} mmap_lock"] = (mm.mmap_lock.readers, mm.mmap_lock.writer)
        out[f"{n} ptls"] = tuple([lock.owner for lock in mm.ptls])
        out[f"{n} exiting"] = (mm.exiting,)
    mem = m.mem
    out["frame contents"] = tuple(mem.value)
    out["reverse maps"] = tuple([tuple(r.items()) for r in mem.rmap])
    out["isolated"] = tuple(mem.isolated)
    out["folio locks"] = tuple([lock.owner for lock in mem.folio_lock])
    for f in mem.files:
        out[f"file{f.id} page cache"] = tuple(f.cache.items())
        out[f"file{f.id} on disk"] = tuple(f.disk)
    out["swap cache"] = tuple(mem.swap_cache.items())
    out["swap map"] = tuple(mem.swap_map)
    out["swap slots"] = tuple(mem.swap)
    for i, op in enumerate(m.ops):  # the tasks: the kernel's and the oracle's fields, not
        n = f"task{i}"  # tlb_ubc (named by place: a hook may have changed the id or CPU)
        for field in _TASK_PLAIN:
            out[f"{n} {field}"] = getattr(op, field)
        for field in ("gen", "blocked_on", "result"):
            out[f"{n} {field}"] = _same(getattr(op, field))
        for field in ("touched_vps", "touched_locs", "touched_frames", "s3_visits", "s3_wd"):
            out[f"{n} {field}"] = _items(getattr(op, field))
    for mm in m.mms:  # mm->tlb_gen is the protocol's to bump, but an int
        out[f"mm{mm.id} tlb_gen is an int"] = (type(mm.tlb_gen) is int,)
    proto = m.proto  # the protocol's handles on the machine, given at its boot
    out[_HANDLES] = (_same(getattr(proto, "arch", None)),
                                            _same(getattr(proto, "free_to_allocator", None)))
    return out


_TASK_PLAIN = ("id", "cpu", "name", "args", "path", "steps")


class _same:
    """An object compared by identity (a generator, a lock, the arch), shown by its type."""

    __slots__ = ("obj",)

    def __init__(self, obj) -> None:
        self.obj = obj

    def __eq__(self, other) -> bool:
        return isinstance(other, _same) and other.obj is self.obj

    def __repr__(self) -> str:
        return "None" if self.obj is None else f"<{type(self.obj).__name__}>"


def _items(c):
    """A dict's items or a list's entries, as a tuple; anything else (a hook replaced the
    container) compared by identity."""
    if type(c) is dict:
        return tuple(c.items())
    if type(c) is list:
        return tuple(c)
    return _same(c)


def gather_state(args) -> dict:
    """The kernel's part of the gather a hook is handed (``args[0]``, an ``MmuGather``), {}
    for any other hook: the hook may flush it, reset its range, set ``fullmm`` and
    ``freed_tables`` (``tlb_finish_mmu``'s nested case) and free its pages, which empties
    ``pages`` and ``delayed_rmap``; it may not point it at another mm or task, change the
    range it was opened for or how it frees, or add to what it frees (a hook that appended
    frame 999 to ``tlb.pages``, or set ``tlb.mm = None``, was a MODEL ERROR: an audit,
    2026-12-06)."""
    from .protocol import MmuGather

    tlb = args[0] if args else None
    if tlb.__class__ is not MmuGather:
        return {}
    return {"the gather's mm, task, range, path and free": (
                _same(tlb.mm), _same(tlb.task), tlb.range_start, tlb.range_end, tlb.path,
                tlb.advice, _same(tlb.free_pages)),
            "the gather's pages": _only_fewer(tlb.pages),
            "the gather's delayed rmaps": _only_fewer(tlb.delayed_rmap)}


class _only_fewer:
    """A list a hook may only take entries from (a gather's pages): equal to a later value
    that is a list holding nothing it did not hold, as many times at most."""

    __slots__ = ("items", "listed")

    def __init__(self, items) -> None:
        self.listed = type(items) is list  # a hook that put a tuple or None there changed it
        self.items = tuple(items) if self.listed else items

    def admits(self, later) -> bool:
        """Does ``later`` (an ``_only_fewer``, or None) hold only what this held? Where
        either is no list, only the very same object does."""
        if later is None or not (self.listed and later.listed):
            return later is not None and later.items is self.items
        left = list(self.items)
        for x in later.items:
            if x not in left:
                return False
            left.remove(x)
        return True

    def __repr__(self) -> str:
        return repr(list(self.items)) if self.listed else repr(self.items)


def first_change(before: dict, after: dict) -> str | None:
    """The first value that differs between two :func:`kernel_state` results, as
    ``"NAME: OLD -> NEW"``, or None."""
    for name, old in before.items():
        new = after.get(name)
        if not old.admits(new) if isinstance(old, _only_fewer) else new != old:
            return f"{name}: {_shown(old)} -> {_shown(new)}"
    return None


def _shown(v) -> str:
    if isinstance(v, tuple) and len(v) == 7 and v and v[0] in PTE_KIND_NAMES:
        return " ".join(v)
    text = repr(v)
    return text if len(text) <= 120 else text[:117] + "..."


def kernel_write(failure) -> str | None:
    """Replay ``failure``'s actions with the guard on (module doc): the first hook that
    changed :func:`kernel_state`, as "HOOK changed kernel state directly at step N (NAME:
    OLD -> NEW)", or None (none did, no machine, or called inside a guarded replay). Cached
    on the failure."""
    from . import hookpoints
    from .machine import Machine
    from .reproducer import replay_actions

    m = getattr(failure, "machine", None)
    if m is None or hookpoints._guard is not None:
        return None
    if "_fc_kernel_write" in failure.__dict__:
        return failure._fc_kernel_write
    found = []
    try:
        r = Machine(type(m.proto), m.cfg, m.oracle.strict)  # the class is pointed already
    except BaseException:  # noqa: BLE001 - no replay, no blame: the failure stands
        return None
    at_boot = _boot_change(r)
    if at_boot is not None:
        r.dispose()
        failure._fc_kernel_write = f"a boot hook (init_mm, init_vma) changed kernel state ({at_boot})"
        return failure._fc_kernel_write

    def take(args):
        return {**kernel_state(r), **gather_state(args)}

    def tripped(fn, before, args):
        if not found:
            change = first_change(before, {**kernel_state(r), **gather_state(args)})
            if change is not None:
                hook = getattr(fn, "__qualname__", getattr(fn, "__name__", "a hook"))
                found.append(f"{hook} changed kernel state directly at step {r.trace.step} "
                             f"({change})")

    hookpoints._guard = (take, tripped)
    try:
        replay_actions(type(r.proto), r.cfg, r.oracle.strict, m.actions, machine=r)
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - what the replay ends in does not matter here
        pass
    finally:
        hookpoints._guard = None
        r.dispose()
    failure._fc_kernel_write = found[0] if found else None
    return failure._fc_kernel_write


#: the entry of :func:`kernel_state` that names the machine's own objects (never equal
#: between two machines)
_HANDLES = "protocol's arch and allocator"


def _boot_change(r) -> str | None:
    """The first difference between machine ``r`` fresh from its boot and the same config
    booted with the base protocol (whose ``init_mm`` and ``init_vma`` change nothing), or
    None. The guard watches hooks as operations run them; the boot hooks run before any
    (``vma.writable = False`` in ``init_vma`` failed later with nothing to blame)."""
    from .machine import Machine
    from .protocol import Protocol

    try:
        plain = Machine(Protocol, r.cfg)
    except BaseException:  # noqa: BLE001 - the model's boot fails on its own: no blame
        return None
    try:
        a, b = kernel_state(plain), kernel_state(r)
    finally:
        plain.dispose()
    del a[_HANDLES], b[_HANDLES]
    return first_change(a, b)


#: what a hook may change, for the reports
ALLOWED = ("a hook may change TLBs, tlb_gen, its gather and its own state, and free pages, "
           "nothing else (conformance/guard.py)")


def blame(failure, op=None):
    """``failure`` itself, or, when it is a MODEL ERROR and a hook changed
    :func:`kernel_state` before it (:func:`kernel_write`), a ProtocolError saying so, with
    ``failure``'s machine (its actions and timeline): the model failed because of the
    protocol's write, not a flushcheck bug. Its ``!! PROTOCOL ERROR`` row goes to ``op``'s
    CPU column, the operation that failed (none: the ``hw`` column)."""
    from .errors import ModelError

    if not isinstance(failure, ModelError):
        return failure
    wrote = kernel_write(failure)
    if wrote is None:
        return failure
    e = failure.machine._protocol_error(f"HookRuleBroken: {wrote}: {ALLOWED}; the model then "
                                        f"failed: {failure}", op)
    e.__cause__ = failure
    return e
