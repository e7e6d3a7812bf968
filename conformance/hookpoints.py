"""Automatic interleaving points inside protocol hooks.

A hook written as a plain function used to run as one atomic step: a protocol that frees
a batch and then flushes inside one hook showed no window between the two, although on
hardware another CPU can allocate the frame before the flush IPI lands. Now, **between any
two machine-visible effects of one hook call there is an interleaving point**, without the
author writing ``yield``. The effects:

* a **flush**, or any other change the arch layer makes on the protocol's behalf: every
  primitive of :class:`conformance.hw.arch.Arch` that changes the machine
  (:data:`ARCH_EFFECTS`: ``flush_tlb_mm_range``, ``flush_tlb_mm``, ``flush_tlb_page``,
  ``arch_tlbbatch_flush``, ``local_flush_tlb``, ``inc_mm_tlb_gen``,
  ``arch_tlbbatch_add_pending``, which bumps the shared ``mm->context.tlb_gen``). Why:
  arch/x86/mm/tlb.c ``flush_tlb_mm_range`` / ``arch_tlbbatch_flush`` send IPIs
  (``flush_tlb_multi``); before the IPIs are sent and after they are acknowledged the
  other CPUs run on (the model's flush itself stays synchronous: docs/model.md);
* a **free**: the page allocator's free as the protocol reaches it,
  ``self.free_to_allocator`` (``free_unref_folios``) or a gather's ``tlb.free_pages``
  (``tlb_batch_pages_flush`` -> ``free_pages_and_swap_cache``). Why: once a page is on a
  per-CPU or buddy free list, another CPU's ``get_page_from_freelist`` can take it
  (mm/page_alloc.c) before the freeing CPU runs its next line;
* a **store to shared protocol state**: a field of the per-mm (``mm.proto``, from
  :meth:`~conformance.protocol.Protocol.init_mm`) or per-VMA (``vma.proto``, from
  ``init_vma``) state, an item of such a dict or list, an attribute of the protocol object
  or an item of a dict or list it holds (global protocol state: LUF's ``pending``). Why: a
  store to memory other CPUs read (``mm->tlb_flush_batched``, mm/rmap.c) is visible to
  them once it leaves the store buffer, and the next line of the hook runs later.
  Per-task state (``task.tlb_ubc``: ``struct tlbflush_unmap_batch`` in ``current``) is
  private to the CPU running the task and is *not* an effect; nor is the ``struct
  mmu_gather`` (on the caller's stack) nor the generic ``mm.tlb_flush_pending`` counter
  (``inc/dec_tlb_flush_pending``, kernel state the base class keeps).

The point sits *after* an effect and *before* the next one, at the protocol's boundary
(nothing is half done): a hook with one effect has no automatic point, one that flushes
and then frees has one. The window before a hook's first effect and after its last one
is the calling kernel path's (its own ``yield`` statements; docs/model.md). Reads are no effects:
a hook's reads between two effects happen before the point (docs/model.md), so a value read
there and stored back after it can overwrite what other CPUs stored; where the kernel reads
and writes back atomically (``atomic_inc``, a ``cmpxchg`` loop, a lock of its own), the
protocol says so with :class:`atomic_section`, which moves the point before its reads.

Mechanism: a hook the kernel calls where it may be interleaved ("may yield" in
:mod:`conformance.protocol`; the model's ``yield from hook(...)``) runs in a ``greenlet``;
at a point it switches back to the operation's generator, which yields (one interleaving
point: one ``advance`` of the operation, one choice of the explorer and of the walk).
Everything the hook calls (its helper methods, ``super()``, other hooks) runs on that
greenlet, so an effect inside a helper counts. A hook written as a generator keeps
working: each of its ``yield`` statements is a point as before. Hooks that must not yield (the
constructors ``init_*``, ``init_tlb_ubc``, ``should_defer_flush``, ``page_alloc``,
``fault_install_pte``, ``tlb_gather_mmu``, ``tlb_remove_tlb_entry``, ``context_switch``,
``finish_task_switch``: :data:`ATOMIC_HOOKS`) run as before, in one step: the model calls
them where its kernel path does not stop (inside the page allocator, under the PTL between
two PTE updates, in the scheduler with interrupts off), so their effects are no points
(docs/model.md).

Each point is a trace event (``point``) of the operation's CPU, drawn in the timeline as
``(HOOK pauses after EFFECT)``, HOOK being the hook the kernel called. The explorer's
state key includes the paused hook's frames (:func:`paused_frames`).

Example (``protocols/mut_gather_free_before_flush.py`` frees, then flushes, in one hook)::

    >>> from conformance.machine import Machine
    >>> from conformance.registry import load_protocol
    >>> m = Machine(load_protocol("mut_gather_free_before_flush"))
    >>> type(m.proto).__name__, type(m.proto)._fc_pointed, pointed_class(type(m.proto)) is type(m.proto)
    ('GatherFreeBeforeFlush', True, True)
    >>> op = m.munmap(0, 0, 1); m.drain()
    >>> [e[3] for e in m.trace.events if e[2] == "point"]
    [('tlb_finish_mmu', 'free')]
"""
from __future__ import annotations

import dis
import inspect
import os
from types import CoroutineType, GeneratorType

from greenlet import GreenletExit, getcurrent, greenlet

from .errors import HookRuleBroken
from .protocol import MmuGather, Protocol

#: hooks the model calls where it cannot be interleaved (``Machine.call_hook``, no
#: ``yield from hook(...)``): they run in one step (tests/test_hook_points.py checks this
#: against the call sites of conformance/mm/ and machine.py)
ATOMIC_HOOKS = frozenset({"init_mm", "init_vma", "init_task", "init_tlb_ubc",
                          "should_defer_flush", "page_alloc", "fault_install_pte",
                          "tlb_gather_mmu", "tlb_remove_tlb_entry", "context_switch",
                          "finish_task_switch"})

#: the :class:`~conformance.hw.arch.Arch` primitives that change the machine: each is a point
ARCH_EFFECTS = ("flush_tlb_mm_range", "flush_tlb_mm", "flush_tlb_page", "arch_tlbbatch_flush",
                "local_flush_tlb", "inc_mm_tlb_gen", "arch_tlbbatch_add_pending")

#: the hook run now on its greenlet (a :class:`_Run`), or None: kernel code, or an atomic hook
_active = None
#: protocol hook frames active now (a hook calling a hook runs it plainly)
_depth = 0
#: what a paused hook's greenlet hands back to its operation
_PAUSE = object()
#: called with the state object and the field's name each time a pausable hook stores an
#: attribute of shared protocol state, after the store's point and before the store
#: (:func:`watching`); None:
#: nobody watches (the default: the Hypothesis machine, the explorer, the bounded check)
_watch = None
#: None, or while :func:`conformance.guard.blame` replays a MODEL ERROR: (take, tripped), the
#: kernel state no hook may change, taken before each stretch of a hook's execution and
#: handed to ``tripped(fn, before)`` after it
_guard = None
#: open :func:`atomic_section` blocks (only the running hook can open one: it cannot pause
#: inside, so one counter serves every greenlet)
_atomic_depth = 0


class _Run(greenlet):
    """A worker greenlet (:func:`_worker`) and the pausable hook call it runs now: who runs
    it (for the trace), its name, its last effect since its last point."""

    __slots__ = ("who", "name", "trace", "depth", "effect", "last", "exc")


def point(effect: str | None) -> None:
    """The running hook is about to have ``effect``: if it already had one since its last
    point, pause here first (other CPUs run between the two effects). ``None``: a point with
    no effect of its own (an :class:`atomic_section`'s entry, whose effects follow).

    Called at the protocol's boundary, before the effect starts (nothing is half done);
    outside a pausable hook (kernel code, an atomic hook) it does nothing.
    """
    run = _active
    if run is not None and getcurrent() is run:  # not a dead hook unwinding at collection
        last = run.last
        if last is not None and not _atomic_depth:
            run.effect = last
            run.trace.event(run.who, "point", run.name, last)
            run.parent.switch(_PAUSE)
        run.last = effect


class atomic_section:
    """``with atomic_section():`` the reads and effects inside have no point between them:
    what the kernel does under a spinlock, with one atomic instruction (``atomic_inc``, a
    ``cmpxchg`` loop: read, compute, write back), or with a generation marked only after the
    work (a protocol's own lock, which the hook API has no other way to express). The block
    counts as one effect: when the hook had an effect since its last point, it pauses at
    the block's entry, *before* the reads inside (other CPUs run there, as between any two
    effects), and an effect after the block is a point again.

    Entering is what makes a read-modify-write atomic: without the block, a value read
    before a point and stored after it overwrites what other CPUs stored between
    (docs/model.md H2, H5).

    Example::

        >>> from conformance.hookpoints import atomic_section
        >>> with atomic_section():
        ...     pass    # e.g. fold a shared pending set and flush it, no other CPU between
    """

    __slots__ = ()

    def __enter__(self):
        global _atomic_depth
        if not _atomic_depth:  # the block's point, before its reads (a nested block has none)
            point(None)
        _atomic_depth += 1
        return self

    def __exit__(self, *exc):
        global _atomic_depth
        _atomic_depth -= 1
        return False


def _pause_at_yield() -> None:
    """A generator hook's own ``yield``: a point, whatever came before it."""
    run = _active
    run.effect = "yield"
    run.last = None
    run.trace.event(run.who, "point", run.name, "yield")
    run.parent.switch(_PAUSE)


def _body(fn, proto, args):
    """The hook on its greenlet; each ``yield`` of a generator hook pauses it too. A hook the
    kernel may interleave returns None (conformance/protocol.py): what else a plain one
    returns is a protocol error (:func:`bad_return`). A generator hook's return value is
    what ``yield from`` of it gives a hook that calls it (:func:`_nested`), so it is not
    checked."""
    r = fn(proto, *args)
    if r.__class__ is not GeneratorType:
        if r is not None:
            _check_return(fn, r)
        return r
    try:
        r.send(None)
        while True:
            if _atomic_depth:  # a point inside the block would leave it open while paused
                r.throw(AtomicYield("yield inside atomic_section(): the block has no point "
                                    "(end the block before the yield)"))
            _pause_at_yield()
            r.send(None)
    except StopIteration as stop:
        return stop.value


def _check_return(fn, r) -> None:
    """Raise :func:`bad_return`'s error for ``r``, what pausable hook ``fn`` returned,
    unless it stands for None (``return self.other_hook(...)`` of a generator hook: a
    :class:`_Done` of None)."""
    if r.__class__ is not _Done or r.value is not None:
        raise bad_return(fn, r)


#: the hooks whose contract returns a value (conformance/protocol.py: the per-mm, per-VMA
#: and per-task state, ``should_defer_flush``'s answer); every other one returns None
RETURNS_VALUE = frozenset(n for n, v in vars(Protocol).items() if not n.startswith("_")
                          and callable(v) and v.__annotations__.get("return") != "None")


#: what an ``async def`` hook is told, at load (conformance/registry.py) and in a run
ASYNC_ADVICE = ("the kernel calls it and never awaits it; write it as a plain function (or a "
                "generator: each yield is a point)")


def bad_return(fn, r) -> HookRuleBroken:
    """The error of hook ``fn`` that returned ``r`` where the kernel expects None, or a
    coroutine anywhere: an ``async def`` hook, which the kernel calls and never awaits, so
    its body never ran, and the run went on to an oracle verdict as if it did nothing
    (S2 for a flush never made); or a value the kernel ignores (a hook written as if it
    were another's, a flush that returns what it should have done)."""
    from .registry import shown

    name = getattr(fn, "__name__", "the hook")
    if r.__class__ is CoroutineType:
        r.close()  # never awaited: closed here, without Python's RuntimeWarning
        text = f"{name} is a coroutine function (async def): {ASYNC_ADVICE}"
    else:
        text = (f"{name} returned {shown(r)} ({type(r).__name__}): the hook returns None "
                "(conformance/protocol.py), the kernel ignores the value")
    return HookRuleBroken(text + _defined_at(fn))


def _defined_at(fn) -> str:
    """`` (NAME at FILE:LINE)`` where hook function ``fn`` is defined, "" for no function."""
    from .registry import hook_code

    code = hook_code(fn)
    return (f" ({code.co_name} at {os.path.basename(code.co_filename)}:{code.co_firstlineno})"
            if code is not None else "")


class AtomicYield(RuntimeError):
    """A generator hook yielded inside its own :class:`atomic_section`. Raised into the hook
    at that ``yield``, so it leaves through the protocol's frame: a protocol error naming the
    line. Until 2026-12-04 the hook paused there with the block open, and every other CPU's
    hooks lost their points while it stayed paused (a review found it)."""


#: what a worker hands back when its hook raised (the exception is in ``exc``)
_RAISED = object()


def _worker(fn, proto, args):
    """A :class:`_Run`'s loop: run hooks one after the other (a fresh greenlet per hook call
    costs ten times a switch). A hook's exception goes back to the operation with it."""
    while True:
        try:
            r = _body(fn, proto, args)
        except GreenletExit:  # a paused hook dropped with its operation: end quietly
            raise
        except BaseException as exc:  # noqa: BLE001 - re-raised by _drive
            getcurrent().exc = exc
            r = _RAISED
        # idle until the next hook: hold nothing of this one (its protocol and arguments
        # would keep a dropped machine alive until this worker is reused)
        fn = proto = args = None
        fn, proto, args = getcurrent().parent.switch(r)


#: idle workers (reused: the model is single-threaded, so one list does)
_IDLE: list = []


def _drive(fn, proto, args):
    """The generator the kernel runs (``yield from hook(...)``): start the hook on an idle
    worker, and yield once each time it pauses at a point."""
    global _active, _depth
    run = _IDLE.pop() if _IDLE else _Run(_worker)
    cur = getcurrent()
    if run.parent is not cur:
        run.parent = cur
    a = args[0] if args else None
    who = run.who = a.task if a.__class__ is MmuGather else a
    held = getattr(who, "held", NONE_HELD)  # the task's locks: the hook must leave them
    had = tuple(held)  # by content: a lock swapped in place kept the list and its length
    run.name = fn.__name__
    run.trace = proto.arch.trace  # _HookArch.trace: a slot
    run.effect = run.last = None
    _active, _depth = run, 1
    g = _guard
    if g is not None:
        before = g[0](args)
    r = run.switch(fn, proto, args)  # the worker never raises: _RAISED
    run.depth, _active, _depth = _depth, None, 0
    if g is not None:
        g[1](fn, before, args)
    while r is _PAUSE:
        try:
            yield
        except GeneratorExit:
            # the operation is dropped with its hook paused (Machine.close: a machine thrown
            # away): unwind the hook's greenlet, or its frames keep the whole machine alive
            # (a suspended greenlet is invisible to the cycle collector)
            if not run.dead:
                run.throw(GreenletExit)
            raise
        _active, _depth = run, run.depth
        cur = getcurrent()
        if run.parent is not cur:  # resumed from another greenlet than it started in
            run.parent = cur
        if g is not None:
            before = g[0](args)
        r = run.switch()
        run.depth, _active, _depth = _depth, None, 0
        if g is not None:
            g[1](fn, before, args)
    last = run.last
    if last is not None and r is not _RAISED and last.startswith("store"):
        # a store after the hook's last point had no row: its step read "(OP continues)",
        # though the store (a generation marked flushed, a pending bit cleared) is often the
        # race itself (a researcher's review, 2026-12-06). Flushes and frees have rows of
        # their own; a store has none but this
        run.trace.event(run.who, "returns", run.name, last)
    run.who = run.trace = None  # idle: nothing of this machine (effect, last: reset at start)
    _IDLE.append(run)
    if r is _RAISED:
        exc, run.exc = run.exc, None
        raise exc
    if getattr(who, "held", NONE_HELD) is not held or tuple(held) != had:
        raise changed_locks(fn, had, who)
    return r


#: the locks of a hook's "task" that is none (a hook called by hand, outside the kernel)
NONE_HELD = ()


def changed_locks(fn, before: tuple, task) -> HookRuleBroken:
    """The error of a hook ``fn`` that changed the list of locks its task holds (``task.held``,
    kernel state: ``spin_lock``/``down_read`` add to it, the unlocks remove from it), which
    held ``before`` when it was called. The kernel code after it tripped over the list
    later (``unlock``'s ``list.remove``, "returned holding", a deadlock on a lock nobody
    holds): a MODEL ERROR, or a litmus line blamed, though only the hook could have done it.
    Compared by content since 2026-12-06: a hook that put another lock (or None) in its
    list's last place kept the list and its length, and passed (an audit)."""
    now = getattr(task, "held", ())
    return HookRuleBroken(f"{getattr(fn, '__name__', fn)} changed the locks its task holds "
                          f"(task.held: {_locks(before)} when it was called, "
                          f"{_locks(now) if isinstance(now, list) else repr(now)[:60]} when it "
                          f"returned): only the kernel takes and drops them{_defined_at(fn)}")


def _locks(held) -> str:
    """``[PTL(mm0 t0), mmap_lock(mm0) (read)]``, at most 4 named."""
    names = [repr(x)[:40] for x in list(held)[:4]]
    return "[" + ", ".join(names) + (", ..." if len(held) > 4 else "") + "]"


def paused_frames(gen) -> list:
    """The frames of the hook paused under ``gen`` (a :func:`_drive` generator), outermost
    first (frame objects); [] for any other generator. The state keys include their code
    positions, locals and value stacks (two states whose hooks stopped at different
    points are different states)."""
    if gen.gi_code is not _DRIVE_CODE or gen.gi_frame is None:
        return []
    run = gen.gi_frame.f_locals.get("run")
    if run is None or run.gr_frame is None:
        return []
    frames = []
    f = run.gr_frame
    while f is not None and f.f_code is not _BODY_CODE:
        if f.f_code is _NESTED_CODE:  # a generator hook a hook called, paused at its yield:
            frames += reversed(_gen_frames(f.f_locals.get("gen")))  # its frames, inside
        if f.f_code is not _POINT_CODE and f.f_code is not _ENTER_CODE:  # the pause itself:
            frames.append(f)  # its caller's position says where, its locals are trace text
        f = f.f_back
    frames.reverse()
    # a generator hook paused at its own yield: its frame is below _body's, not above
    if f is not None:
        frames += _gen_frames(f.f_locals.get("r"))
    return frames


def _gen_frames(r) -> list:
    """The frames of suspended generator ``r`` and of those it delegates to, outermost first."""
    out = []
    while r.__class__ is GeneratorType and r.gi_frame is not None and not r.gi_running:
        out.append(r.gi_frame)
        r = r.gi_yieldfrom
    return out


def _paused_run(op):
    """The :class:`_Run` of the hook ``op`` is paused inside, or None (kernel code)."""
    g = op.gen
    while g is not None and g.__class__ is GeneratorType:
        if g.gi_code is _DRIVE_CODE:
            return g.gi_frame.f_locals.get("run") if g.gi_frame is not None else None
        g = g.gi_yieldfrom
    return None


def paused_hook(op):
    """The name of the hook ``op`` is paused inside, or None when it is paused in kernel
    code (or finished); :func:`paused_at` (with an example of both) gives the effect it
    paused after."""
    run = _paused_run(op)
    return run.name if run is not None and run.effect is not None else None


def paused_before_section(op) -> bool:
    """Is ``op`` paused at the entry of an :class:`atomic_section` (before the reads inside:
    a store by another CPU now cannot be overwritten by the section)?"""
    run = _paused_run(op)
    f = run.gr_frame if run is not None else None  # point()'s frame, called by __enter__
    return f is not None and f.f_back is not None and f.f_back.f_code is _ENTER_CODE


class watching:
    """``with watching(fn):`` every store a pausable hook makes to an attribute of shared
    protocol state (per-mm, per-VMA or the protocol object's own) calls ``fn(state,
    field_name)`` first (after the store's point, so other CPUs
    have run); ``fn`` None watches nothing. Restores the previous watcher on exit. Used by
    certify's walk to find where to branch (:mod:`conformance.search.conflict`).

    Example::

        >>> from conformance.machine import Machine
        >>> from conformance.registry import load_protocol
        >>> m = Machine(load_protocol("linux_4_13"))
        >>> seen = []
        >>> with watching(lambda state, name: seen.append((state is m.mms[0].proto, name))):
        ...     _ = m.reclaim(1, (m.frame_of(0, 0),)); m.drain()
        >>> seen
        [(True, 'tlb_flush_batched')]
    """

    __slots__ = ("fn", "saved")

    def __init__(self, fn) -> None:
        self.fn = fn
        self.saved = None

    def __enter__(self):
        global _watch
        self.saved, _watch = _watch, self.fn
        return self

    def __exit__(self, *exc):
        global _watch
        _watch = self.saved
        return False


def paused_at(op):
    """The effect after which ``op`` is paused inside a hook (``"yield"``: a generator
    hook's own ``yield``), or None when it is paused in kernel code.

    Example::

        >>> from conformance.machine import Machine
        >>> from conformance.registry import load_protocol
        >>> m = Machine(load_protocol("mut_gather_free_before_flush"))
        >>> op = m.munmap(0, 0, 1); paused_at(op)
        >>> m.advance(op.id); paused_at(op), paused_hook(op)
        ('free', 'tlb_finish_mmu')
    """
    run = _paused_run(op)
    return run.effect if run is not None else None


def finish_hook(machine, op):
    """Advance ``op`` through the automatic points of the hook it is paused in, to the next
    point its kernel path (or a ``yield`` of the hook) makes: where one advance used to
    stop when hooks were atomic. Returns ``op``. Litmus ``until`` does this after a hit.

    Example::

        >>> from conformance.machine import Machine
        >>> from conformance.registry import load_protocol
        >>> m = Machine(load_protocol("linux"))
        >>> op = m.reclaim(1, (m.frame_of(0, 0),)); paused_at(op)   # between tlb_gen and pending
        'arch_tlbbatch_add_pending'
        >>> paused_at(finish_hook(m, op)), m.mms[0].ptes[0].kind    # then the swap entry
        (None, 2)
    """
    while op in machine.ops and paused_at(op) not in (None, "yield"):
        machine.advance(op.id)
    return op


_DRIVE_CODE = _drive.__code__
_BODY_CODE = _body.__code__
_POINT_CODE = point.__code__
_ENTER_CODE = atomic_section.__enter__.__code__


# -- the protocol side -----------------------------------------------------------------------
class _HookArch:
    """The :class:`~conformance.hw.arch.Arch` a pointed protocol sees: each primitive of
    :data:`ARCH_EFFECTS` runs on the machine's arch, then is a point; everything else is
    the machine's arch's."""

    __slots__ = ("_arch", "trace", "mm_cpumask", "cpumask_any_but", "new_batch", "cpus")

    def __init__(self, arch) -> None:
        self._arch = arch
        # cpu_tlbstate, which the kernel reads; not the TLB itself. Made once, so that a
        # protocol comparing or hashing them sees one object per CPU (a review, 2026-12-06)
        self.cpus = tuple(CpuTlbState(c) for c in arch.cpus)
        # read on every hook call or often by protocols: slots, not __getattr__
        self.trace = arch.trace
        self.mm_cpumask = arch.mm_cpumask
        self.cpumask_any_but = arch.cpumask_any_but
        self.new_batch = arch.new_batch

    def __getattr__(self, name):
        if name == "tlbs":  # every CPU's TLB (cpus, a slot, are cpu_tlbstate views)
            raise HookRuleBroken("a hook read self.arch.tlbs, every CPU's TLB: "
                                 + _TLB_UNREADABLE)
        return getattr(self._arch, name)


_TLB_UNREADABLE = (
    "no software can read a TLB's contents (the x86 SDM, vol. 3A, 4.10: the processor may "
    "cache translations, and only INVLPG, INVPCID and CR3/CR4 writes act on them), so no "
    "kernel protocol can decide on them; the CPUs' loaded mm and tlb_gen are "
    "self.arch.cpus[i].loaded_mm and .loaded_gen (cpu_tlbstate), a mm's CPUs "
    "self.arch.mm_cpumask(mm)")
# (why the hooks' arch refuses TLB reads, a review of 2026-12-06: a protocol that narrowed
# its batch to the CPUs whose TLB held the page passed the bounded check, whose
# lazy-eviction reduction rests on no hook reading a TLB, and failed S2 unreduced)


class CpuTlbState:
    """What a hook may read of a CPU through ``self.arch.cpus[i]``: x86's per-CPU
    ``cpu_tlbstate`` (arch/x86/include/asm/tlbflush.h: ``loaded_mm``, and the
    ``ctxs[asid].tlb_gen`` of it as ``loaded_gen``), and its number. Not its TLB
    (:data:`_TLB_UNREADABLE`): reading ``.tlb`` is a :class:`HookRuleBroken`.

    Example::

        >>> from conformance.machine import Machine
        >>> from conformance.registry import load_protocol
        >>> m = Machine(load_protocol("linux"))
        >>> c = m.proto.arch.cpus[0]
        >>> c.id, c.loaded_mm is m.mms[0], c.loaded_gen
        (0, True, 1)
    """

    __slots__ = ("_cpu",)

    def __init__(self, cpu) -> None:
        self._cpu = cpu

    @property
    def id(self) -> int:
        return self._cpu.id

    @property
    def loaded_mm(self):
        return self._cpu.loaded_mm

    @property
    def loaded_gen(self) -> int:
        return self._cpu.loaded_gen

    @property
    def tlb(self):
        raise HookRuleBroken(f"a hook read CPU{self._cpu.id}'s TLB: " + _TLB_UNREADABLE)

    def __repr__(self) -> str:
        return f"cpu_tlbstate(CPU{self._cpu.id})"


def _arch_effect(name: str):
    def primitive(self, *args):
        if _active is not None:
            point(name)
        # looked up on the instance: conformance/cost.py counts flushes by wrapping them there
        return getattr(self._arch, name)(*args)
    primitive.__name__ = primitive.__qualname__ = name
    primitive.__doc__ = f"``{name}`` on the machine's arch, then an interleaving point."
    return primitive


for _n in ARCH_EFFECTS:
    setattr(_HookArch, _n, _arch_effect(_n))


def _storing(base, name: str):
    """``base.name`` preceded by a point: a change of shared protocol state."""
    fn = getattr(base, name)

    def method(self, *a, **kw):
        point("store")
        return fn(self, *a, **kw)
    method.__name__ = method.__qualname__ = name
    return method


class SharedDict(dict):
    """A dict of shared protocol state: each change is a point (:func:`point`)."""

    __slots__ = ()

    def pop(self, k, *a):
        if k in self:  # a pop of a missing key stores nothing
            point("store")
        return dict.pop(self, k, *a)


class SharedList(list):
    """A list of shared protocol state: each change is a point (:func:`point`)."""

    __slots__ = ()


for _n in ("__setitem__", "__delitem__", "popitem", "setdefault", "update", "clear"):
    setattr(SharedDict, _n, _storing(dict, _n))
for _n in ("__setitem__", "__delitem__", "append", "extend", "insert", "pop", "remove", "clear"):
    setattr(SharedList, _n, _storing(list, _n))


def _share_container(v):
    """``v`` as shared state if it is a plain dict or list, else ``v``."""
    t = v.__class__
    if t is dict:
        return SharedDict(v)
    if t is list:
        return SharedList(v)
    return v


def _shared_setattr(self, name, value):
    if _active is not None:
        point("store " + name)
        if _watch is not None:
            _watch(self, name)
    object.__setattr__(self, name, _share_container(value))


_SHARED_CLASSES: dict = {}


def share(obj):
    """``obj`` (per-mm or per-VMA protocol state) made shared: a dict or list becomes a
    :class:`SharedDict`/:class:`SharedList`; an object of a plain class gets a subclass of
    the same name whose attribute stores are points (its dict and list fields become shared
    too). Atoms, None and objects whose class cannot be swapped are returned unchanged.

    Example::

        >>> from protocols.linux import MmBatched
        >>> st = share(MmBatched())
        >>> type(st).__name__, isinstance(st, MmBatched), st.tlb_flush_batched
        ('MmBatched', True, 0)
        >>> type(share({"luf_deferred": False})).__name__
        'SharedDict'
    """
    c = _share_container(obj)
    if c is not obj or obj is None or isinstance(obj, (int, str, float, bytes, tuple)):
        return c
    cls = obj.__class__
    if cls.__setattr__ is _shared_setattr:
        return obj
    sub = _SHARED_CLASSES.get(cls)
    if sub is None:
        ns = {"__slots__": (), "__setattr__": _shared_setattr, "__module__": cls.__module__,
              "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
        try:
            sub = type(cls.__name__, (cls,), ns)
        except TypeError:
            sub = False
        _SHARED_CLASSES[cls] = sub
    if not sub:
        return obj
    try:
        obj.__class__ = sub
    except TypeError:
        return obj
    for name in _fields(obj):
        v = getattr(obj, name, None)
        c = _share_container(v)
        if c is not v:
            object.__setattr__(obj, name, c)
    return obj


def _fields(obj) -> list:
    names = list(getattr(obj, "__dict__", ()))
    for c in type(obj).__mro__:
        for s in c.__dict__.get("__slots__", ()):
            if s not in names and s not in ("__dict__", "__weakref__"):
                names.append(s)
    return names


def hook_params(name: str) -> str:
    """The parameters of :class:`~conformance.protocol.Protocol`'s hook ``name`` after
    ``self``, spelled out: a wrapper with a fixed parameter list is called faster than one
    taking ``*args`` (the kernel passes hook arguments by position).

    Example::

        >>> hook_params("set_tlb_ubc_flush_pending")
        'task, mm, pteval, vpage'
    """
    return ", ".join(list(inspect.signature(getattr(Protocol, name)).parameters)[1:])


def _generated(name: str, fn, body: str):
    """A wrapper of hook ``fn`` named ``name``: ``def name(self, <params>)`` with ``body``
    (``{args}`` stands for the parameters), compiled in this module's namespace so that it
    reads ``_depth`` and ``_drive`` as they are when it runs.

    When ``fn`` is a hook of :func:`conformance.coverage.counted_class` (it has
    ``_fc_counts``), the wrapper counts the call itself (the counter's line, which reads
    ``key``) and calls the protocol's hook directly: one Python frame per hook call
    instead of two (callgrind: the counting wrapper's own frame was most of coverage's
    cost)."""
    args = hook_params(name)
    key = count = None
    raw = getattr(fn, "_fc_counts", None)
    if raw is not None:
        key, count, fn = "hook " + name, fn._fc_count_line, raw
    lines = ([f"    {count}"] if count else []) + body.format(args=args).splitlines()
    src = (f"def _make(fn, key):\n"
           f"  def {name}(self, {args}):\n"
           + "".join(f"  {line}\n" for line in lines)
           + f"  return {name}\n")
    local: dict = {}
    exec(compile(src, f"<flushcheck hookpoints: {name}>", "exec"), globals(), local)  # noqa: S102
    hook = local["_make"](fn, key)
    hook.__qualname__ = getattr(fn, "__qualname__", name)
    hook.__doc__ = fn.__doc__
    hook.__wrapped__ = fn
    return hook


def _pausable(name: str, fn):
    """``fn`` (a hook the kernel may interleave) as the kernel's entry: called by the
    kernel, it returns the :func:`_drive` generator; called from protocol code (a hook
    calling a hook), it runs where it is, a generator hook to its end (:func:`_nested`), and
    an ``async def`` one is refused there too (:func:`bad_return`): its caller drops the
    coroutine it got, and the run went on as if the hook did nothing."""
    return _generated(name, fn, "    if _depth:\n"
                                "        r = fn(self, {args})\n"
                                "        if r.__class__ is GeneratorType:\n"
                                "            return _nested(r)\n"
                                "        if r.__class__ is CoroutineType:\n"
                                "            raise bad_return(fn, r)\n"
                                "        return r\n"
                                "    return _drive(fn, self, ({args},))\n")


class _Done:
    """What a generator hook called by another hook returns once :func:`_nested` ran it:
    iterating it ends at once with the hook's return value, so ``yield from`` of the call
    gives that value, and a plain call has run the hook all the same."""

    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value

    def __iter__(self):
        return self

    def __next__(self):
        raise StopIteration(self.value)


def _nested(gen) -> _Done:
    """Run generator hook ``gen``, called by another hook, to its end here: each ``yield`` is
    a point when the calling hook can pause (as :func:`_body` makes them), and nothing in
    an atomic hook or an :class:`atomic_section`, where no point is. Before, a hook calling
    a generator hook as a plain function (mainline's ``try_to_unmap_flush_dirty`` calls
    ``try_to_unmap_flush``) got the generator back unrun: a generator override's flush
    silently never happened (a false S2 for a correct variant)."""
    try:
        gen.send(None)
        while True:
            run = _active
            if run is not None and getcurrent() is run and not _atomic_depth:
                _pause_at_yield()
            gen.send(None)
    except StopIteration as stop:
        return _Done(stop.value)


_NESTED_CODE = _nested.__code__  # (paused_frames reads the generator a _nested frame runs)


def _atomic(name: str, fn, shares: bool):
    """``fn`` (a hook that must not yield), run in one step; a hook it calls runs plainly.
    ``shares``: its result is per-mm or per-VMA state, made shared (:func:`share`).
    ``tlb_gather_mmu`` also makes the gather's ``free_pages`` an effect (:func:`freeing`)."""
    body = ("    global _depth\n"
            + ("    tlb.free_pages = freeing(tlb.free_pages)\n" if name == "tlb_gather_mmu" else "")
            + "    g = _guard if not _depth else None\n"
              "    if g is not None:\n"
              "        before = g[0](({args},))\n"
              "    _depth += 1\n"
              "    try:\n"
              "        r = fn(self, {args})\n"
              "    finally:\n"
              "        _depth -= 1\n"
              "    if g is not None:\n"
              "        g[1](fn, before, ({args},))\n"
            + ("    return share(r)\n" if shares else "    return r\n"))
    return _generated(name, fn, body)


def freeing(free):
    """``free`` (the page allocator's free, or a gather's ``tlb_batch_pages_flush``) as the
    protocol sees it: an effect (:func:`point`) before it starts. Keeps ``__self__`` (LUF
    reads the allocator's owner through it).

    Example::

        >>> from conformance.machine import Machine
        >>> from conformance.registry import load_protocol
        >>> m = Machine(load_protocol("linux"))
        >>> m.proto.free_to_allocator.__self__ is m.kernel, m.proto.free_to_allocator.__wrapped__ == m.kernel.free_frames
        (True, True)
    """
    def free_pages(*args):
        if _active is not None:
            point("free")
        return free(*args)
    free_pages.__self__ = getattr(free, "__self__", None)
    free_pages.__wrapped__ = free
    return free_pages


def _pointed_init(self, arch, free_pages):
    type(self)._fc_base.__init__(self, _HookArch(arch), freeing(free_pages))


def _proto_setattr(self, name, value):
    if _active is not None:
        point("store " + name)
        if _watch is not None:
            _watch(self, name)
    object.__setattr__(self, name, _share_container(value))


#: the hooks a protocol that does not override them leaves to the base class doing nothing
#: (or nothing visible): not wrapped, so they cost no greenlet
def _does_nothing(fn) -> bool:
    """Is ``fn``'s body only a docstring (it returns None and touches nothing)?"""
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    for ins in dis.get_instructions(code):
        if ins.opname in ("RESUME", "NOP", "RETURN_VALUE", "RETURN_CONST", "LOAD_CONST"):
            if ins.opname in ("LOAD_CONST", "RETURN_CONST") and ins.argval is not None:
                return False
            continue
        return False
    return True


_NOOP = frozenset(n for n, v in vars(Protocol).items() if callable(v) and _does_nothing(v))

def pointed_class(cls):
    """``cls`` with automatic interleaving points (module doc). Made once per class (a
    subclass named as ``cls``, ``_fc_pointed`` set); a pointed class is returned as it is.
    The machine makes its protocol from this class (``Machine.__init__``)."""
    if getattr(cls, "_fc_pointed", False):
        return cls
    # kept on the class itself (not in a module dict, where every class a long run loads
    # stayed alive: load_protocol makes a fresh subclass per call, soundness one per chunk,
    # 0.15 MB each with its generated hooks), checked against the hooks as they are now, so
    # a hook patched after first use (a test's monkeypatch, a mutant made at run time) is
    # wrapped anew, not the old one kept
    hooks = tuple([getattr(cls, name) for name in _HOOK_NAMES])
    cached = cls.__dict__.get("_fc_pointed_sub")
    if cached is not None and cached[0] == hooks:
        return cached[1]
    ns = {"_fc_pointed": True, "_fc_base": cls, "__init__": _pointed_init,
          "__setattr__": _proto_setattr, "__module__": cls.__module__,
          "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    if "_fc_counted" in cls.__dict__:  # coverage.counted_class: still a counted class
        ns["_fc_counted"] = True
    for name, v in vars(Protocol).items():
        if name.startswith("_") or not callable(v):
            continue
        fn = getattr(cls, name)
        # a counted class's hook counts, then calls the protocol's: the base class's no-op
        # hooks stay unwrapped there as here (the counting call alone, no greenlet hand-off)
        base = getattr(fn, "_fc_counts", fn) is v
        if name in ATOMIC_HOOKS:
            shares = name in ("init_mm", "init_vma")
            if not base or shares or name == "tlb_gather_mmu":
                ns[name] = _atomic(name, fn, shares)
        elif not (base and name in _NOOP):
            ns[name] = _pausable(name, fn)
    sub = type(cls.__name__, (cls,), ns)
    type.__setattr__(cls, "_fc_pointed_sub", (hooks, sub))
    return sub


#: the hook names :func:`pointed_class` wraps (the public callables of :class:`Protocol`)
_HOOK_NAMES = tuple(n for n, v in vars(Protocol).items() if not n.startswith("_") and callable(v))
