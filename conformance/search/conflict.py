"""Where the walk branches: a store that breaks another hook's read-modify-write.

An *atomicity violation* (Lu et al., "AVIO", ASPLOS 2006): operation A runs a protocol hook
that reads a shared field and writes it back later, with an interleaving point between the
two (``flush_tlb_batched_pending``: read ``mm->tlb_flush_batched``, ``flush_tlb_mm``, then
clear it); while A is paused there, operation B's hook stores the same field. Whatever A
writes next is computed from a value that is no longer there. The 2021 race (kernel-notes
2.7, syzbot/KCSAN's report of it) is exactly this: reclaim's ``set_tlb_ubc_flush_pending``
sets the bool while a munmap is paused inside ``flush_tlb_batched_pending``, whose clear
then loses the mark. Whether such a moment becomes a failure depends on what runs after it
(a later walker of the reclaimed page, the entry still cached), so certify's walk replays
the example up to that moment and runs it on several times (:func:`conformance.search.walk.
run_example`, docs/SEARCH.md "Branching at a broken read-modify-write").

The watch (:class:`ConflictWatch`) is generic: it knows no protocol and no field by name.

* **Which fields a hook reads and writes back**: the attribute names its code both loads
  and stores (``LOAD_ATTR`` and ``STORE_ATTR`` in its bytecode: the definition that runs, and its parent's
  while the code calls ``super()``); :func:`rmw_fields`.
  Simplification: helpers the hook calls, and dict or list items (LUF's ``pending``), are
  not looked into.
* **Paused inside it**: the operation is stopped at one of the hook's interleaving points
  (:func:`conformance.hookpoints.paused_hook`), not in kernel code, and not at the entry of an
  atomic section (:func:`conformance.hookpoints.paused_before_section`): there the hook has
  not read yet, and the section's read and write have no point between them (mainline's
  ``atomic_inc`` of ``tlb_flush_batched``).
* **Another hook**: two calls of one hook racing on a field (two reclaims bumping mainline's
  ``tlb_flush_batched`` generation) are the hook's own concurrency, which every reclaim-heavy
  example has; the watch looks for one hook's update inside another hook's window.
* **A stale entry alive** in the mm whose state is stored (any mm for the protocol's global
  state; :func:`conformance.coverage.stale_alive`): without one, nothing the lost update
  could leave unflushed is cached.

Only the first such moment of an example counts (:attr:`ConflictWatch.mark`: the number of
actions logged by then, the current ``advance`` included).

Example (``linux_4_13``: the munmap is paused between its flush and its clear when reclaim
sets the bool)::

    >>> from conformance.registry import load_protocol
    >>> sorted(rmw_fields(load_protocol("linux_4_13"), "flush_tlb_batched_pending"))
    ['tlb_flush_batched']
    >>> rmw_fields(load_protocol("linux_4_13"), "set_tlb_ubc_flush_pending")
    frozenset()
"""
from __future__ import annotations

import dis

from .. import hookpoints
from ..coverage import stale_alive

def rmw_fields(proto_cls, hook: str) -> frozenset:
    """The attribute names hook ``hook`` of ``proto_cls`` both loads and stores, read off the
    bytecode of the definition that runs (the flushcheck wrappers of
    :func:`~conformance.hookpoints.pointed_class` and :func:`~conformance.coverage.counted_class`
    skipped) and of the one it overrides while its code calls ``super()``. Cached per
    (class, hook), on the class.

    Example::

        >>> from conformance.registry import load_protocol
        >>> sorted(rmw_fields(load_protocol("linux"), "set_tlb_ubc_flush_pending"))
        ['tlb_flush_batched']
    """
    cache = proto_cls.__dict__.get("_fc_rmw")  # on the class: freed with it (a module dict
    if cache is None:  # kept every class a long run loaded, as hookpoints.pointed_class says)
        cache = {}
        type.__setattr__(proto_cls, "_fc_rmw", cache)
    got = cache.get(hook)
    if got is None:
        loads, stores = set(), set()
        for klass in proto_cls.__mro__:
            own = klass.__dict__
            if "_fc_pointed" in own or "_fc_counted" in own or hook not in own:
                continue
            fn = getattr(own[hook], "__code__", None)
            if fn is None:
                continue
            for ins in dis.get_instructions(fn):
                if ins.opname == "LOAD_ATTR":
                    loads.add(ins.argval)
                elif ins.opname == "STORE_ATTR":
                    stores.add(ins.argval)
            if "super" not in fn.co_names:  # an override that does not call its parent's
                break
        got = cache[hook] = frozenset(loads & stores)
    return got


class ConflictWatch:
    """Called by :mod:`conformance.hookpoints` each time a pausable hook stores a field of
    shared protocol state (``hookpoints.watching(watch)``); sets :attr:`mark` at the first
    store that breaks another paused hook's read-modify-write while a stale entry is alive
    (module doc).

    Example::

        >>> from conformance.machine import Machine
        >>> from conformance.registry import load_protocol
        >>> m = Machine(load_protocol("linux_4_13"))
        >>> w = ConflictWatch(m)
        >>> with hookpoints.watching(w):
        ...     _ = m.munmap(0, 0, 1); m.drain()
        >>> w.mark is None          # one operation alone breaks nothing
        True
    """

    __slots__ = ("m", "mark", "_cls")

    def __init__(self, machine) -> None:
        self.m = machine
        #: how many actions were logged when the first conflicting store ran (None: none yet)
        self.mark: int | None = None
        self._cls = type(machine.proto)

    def __call__(self, state, field: str) -> None:
        if self.mark is not None:
            return
        run = hookpoints._active
        if run is None:
            return
        m = self.m
        who, storer = run.who, run.name
        for op in m.ops:
            if op is who:
                continue
            hook = hookpoints.paused_hook(op)
            # a hook paused at an atomic section's entry has not read the field yet: the
            # section reads it after this store, so nothing is overwritten
            if hook is not None and hook != storer and field in rmw_fields(self._cls, hook) \
                    and not hookpoints.paused_before_section(op):
                if stale_alive(m, self._mm_of(state)):
                    self.mark = len(m.actions)
                return

    def _mm_of(self, state):
        """The id of the mm whose per-mm or per-VMA protocol state ``state`` is; None for
        the protocol's own (global) state."""
        for mm in self.m.mms:
            if mm.proto is state or any(v.proto is state for v in mm.vmas):
                return mm.id
        return None
