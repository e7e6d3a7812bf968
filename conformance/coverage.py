"""Coverage: what a run exercised, so that a PASS says what it stands on.

Three kinds of counters, kept on a :class:`~conformance.machine.Machine` in
``machine.coverage`` (a dict: counter group -> {calling path: count}) when its protocol
class is :func:`counted_class` of the protocol (certify's chunks and the Hypothesis state
machine run those; the soundness campaign's raw walk and ``bench/steps.py`` do not, and pay
nothing), and summed over a run's examples and chunks as one flat dict (:func:`tally`:
``"group @path" -> count``):

* ``hook NAME``: each protocol hook, per calling path (``task.path`` / ``tlb.path``:
  "reclaim", "migrate", "munmap", ...; ``context_switch`` is "switch", ``page_alloc``
  for the other consumer is "other"). Counted by :func:`counted_class`, the protocol's
  class with each hook wrapped, so a hook a protocol calls from another one (``tlb_finish_mmu``
  -> ``tlb_flush_mmu``) counts too. ``init_mm``, ``init_vma`` and ``init_task`` are constructors,
  not counted.
* ``window pending``: a kernel operation of a path *starts* while some TLB entry is
  stale, that is the oracle's view of a deferred flush pending: the entry's PTE instance
  is gone or replaced (``TlbEntry.inst`` != ``Pte.inst``), or the entry is writable over
  a PTE that no longer is. Counted at operation start only (a scan of the TLBs that stops
  at the first stale entry), never per step.
* ``window stale-used``: a user access *uses* a stale entry (a TLB hit, no walk) while an
  operation of a path is in flight, per path of every operation then in flight.
* ``window beside-writer``: a fault runs under its VMA's read lock alone while a writer of
  the same mm holds ``mmap_lock`` for write (per-VMA locks, ``lock_vma_under_rcu``), per
  path of the writer (:data:`WRITER_PATHS`). Counted once per overlap, where it begins: a
  fault taking the VMA lock under a writer, or a writer taking ``mmap_lock`` while a fault
  holds a VMA lock of the mm. The interleavings per-VMA locks opened (a writer changing one
  VMA while a fault installs a PTE in another) are reached only where this one is.

Plus ``check RULE``: how often the oracle checked each rule (``Oracle.checked``).

Example::

    >>> from conformance.machine import Machine
    >>> from conformance.registry import load_protocol
    >>> m = Machine(counted_class(load_protocol("linux")))
    >>> _ = m.munmap(0, 0, 1); m.drain()
    >>> counts = tally(m, {})
    >>> counts["hook flush_tlb_batched_pending @munmap"]
    1
    >>> "set_tlb_ubc_flush_pending" in unreached_hooks(counts)
    True
"""
from __future__ import annotations

from collections import defaultdict

from .hookpoints import hook_params
from .protocol import Protocol

#: the protocol methods that are not counted: per-object state constructors
NOT_COUNTED = frozenset({"init_mm", "init_vma", "init_task"})
#: every counted hook, in the order :class:`~conformance.protocol.Protocol` defines them
HOOKS = tuple(n for n, v in vars(Protocol).items()
              if callable(v) and not n.startswith("_") and n not in NOT_COUNTED)
#: the paths an operation starts as (``Op.name``)
PATHS = ("fault", "reclaim", "migrate", "munmap", "mmap", "mprotect", "madvise", "mremap",
         "write", "writeback", "truncate", "exit", "fork")
#: the race windows, as the report names them
WINDOWS = {"pending": "a deferred flush pending (a stale TLB entry alive) when an operation "
                      "of the path starts",
           "stale-used": "a user access used a stale TLB entry while an operation of the "
                         "path was in flight",
           "beside-writer": "a fault ran under its VMA's lock alone while a writer of the "
                            "path held the mm's mmap_lock"}
#: the paths that take ``mmap_lock`` for write (``mmap_write_lock``) while a fault of the
#: mm may be in flight: the only paths the beside-writer window can name (exit takes it too,
#: but only once no task of the mm is left: ``Machine.exit_mmap`` refuses while one is in
#: the kernel)
WRITER_PATHS = ("munmap", "mmap", "mprotect", "mremap", "fork")
#: the paths each window can name
WINDOW_PATHS = {"pending": PATHS, "stale-used": PATHS, "beside-writer": WRITER_PATHS}
#: the rules the oracle counts (``Oracle.checked``)
RULES = ("S1", "S2", "S3", "C1", "O1")


def counters() -> dict:
    """Fresh counters: ``{"hook NAME": {}}`` for every hook of :data:`HOOKS`, and the
    window groups (the machine fills those); each a ``defaultdict(int)`` by path.

    Example::

        >>> from conformance.registry import load_protocol
        >>> from conformance.machine import Machine
        >>> cov = Machine(counted_class(load_protocol("immediate"))).coverage
        >>> dict(cov["hook should_defer_flush"]), dict(cov["window beside-writer"])
        ({}, {})
        >>> Machine(load_protocol("immediate")).coverage    # not counted
        {}
    """
    cov = {k: defaultdict(int) for k in _HOOK_KEYS}
    cov["window pending"] = defaultdict(int)
    cov["window stale-used"] = defaultdict(int)
    cov["window beside-writer"] = defaultdict(int)
    return cov


_HOOK_KEYS = tuple("hook " + h for h in HOOKS)


def counted_class(cls):
    """``cls`` with every hook of :data:`HOOKS` counting its calls per path into the
    instance's ``_fc_coverage`` (set by the machine: :func:`counters`). Made once per class
    (a subclass named as ``cls``; a counted class is returned as it is). A machine of a
    counted class also counts the race windows. A hook that
    :func:`conformance.hookpoints.pointed_class` wraps anyway (each one the protocol
    defines) is counted inside that wrapper, with no frame of its own; these wrappers run
    only where nothing else wraps (the base class's no-op hooks).

    Example::

        >>> from conformance.registry import load_protocol
        >>> linux = load_protocol("linux")
        >>> c = counted_class(linux)
        >>> issubclass(c, linux), c.__name__ == linux.__name__, counted_class(c) is c
        (True, True, True)
    """
    if "_fc_counted" in cls.__dict__:
        return cls
    sub = cls.__dict__.get("_fc_counted_sub")  # on the class: freed with it (pointed_class)
    if sub is None:
        ns = {name: _counter(name, getattr(cls, name)) for name in HOOKS}
        ns.update(_fc_counted=True, __module__=cls.__module__, __qualname__=cls.__qualname__,
                  __doc__=cls.__doc__)
        sub = type(cls.__name__, (cls,), ns)
        type.__setattr__(cls, "_fc_counted_sub", sub)
    return sub


def _counter(name: str, fn):
    """``fn`` (a hook of a protocol class) counting its calls by path, with the parameters
    of :class:`~conformance.protocol.Protocol`'s hook spelled out
    (:func:`conformance.hookpoints.hook_params`). The first parameter is the task
    (``task.path``) or the gather (``tlb.path``); ``page_alloc`` for the other consumer has
    no task (path "other"); ``context_switch`` counts as "switch", and so does
    ``finish_task_switch`` where its task is a CPU number (a user access or ``switch_mm``
    after a kernel thread: ``Machine._from_kthread``)."""
    args = hook_params(name)
    first = args.split(",")[0]
    if name == "context_switch":
        path = '"switch"'
    elif name == "finish_task_switch":
        path = f'"switch" if {first}.__class__ is int else {first}.path'
    else:
        path = f'{first}.path if {first} is not None else "other"'
    count = f"self._fc_coverage[key][{path}] += 1"
    src = (f"def {name}(self, {args}):\n"
           f"    {count}\n"
           f"    return fn(self, {args})\n")
    ns = {"key": "hook " + name, "fn": fn}
    exec(compile(src, f"<flushcheck coverage: {name}>", "exec"), ns)  # noqa: S102
    counted = ns[name]
    counted.__qualname__ = getattr(fn, "__qualname__", name)
    counted.__doc__ = fn.__doc__
    counted._fc_counts = fn  # the hook counted: hookpoints.pointed_class looks through
    counted._fc_count_line = count  # and counts inline (key: "hook NAME"), saving a frame
    return counted


def stale_alive(machine, mm_id=None) -> bool:
    """Does some CPU cache an entry whose PTE instance is gone or replaced, or a writable
    entry over a PTE that no longer is (of mm ``mm_id`` only, if given)? Stops at the first
    one.

    Example::

        >>> from conformance.machine import Machine
        >>> from conformance.registry import load_protocol
        >>> m = Machine(load_protocol("linux"))
        >>> stale_alive(m)
        False
        >>> m.mms[0].ptes[0].clear()   # behind the kernel's back: CPU0 still caches v0
        >>> stale_alive(m)
        True
    """
    mms = machine.mms
    for c in machine.tlbs.cpus:
        for mid, t in c.tlb.items():
            if mm_id is not None and mid != mm_id:
                continue
            ptes = mms[mid].ptes
            for vp, e in t.items():
                p = ptes[vp]
                if p.inst != e.inst or (e.writable and not p.writable):
                    return True
    return False


def is_stale(pte, e) -> bool:
    """Is TLB entry ``e`` stale against the PTE it translates?

    Example::

        >>> from conformance.mm.mm_types import Pte
        >>> from conformance.hw.tlb import TlbEntry
        >>> is_stale(Pte(), TlbEntry(3, False, False, 7))   # the PTE is gone
        True
    """
    return pte.inst != e.inst or (e.writable and not pte.writable)


def tally(machine, into: dict) -> dict:
    """Add ``machine``'s counters (coverage and the oracle's checks) into the flat dict
    ``into`` (``"hook NAME @path"``, ``"window KIND @path"``, ``"check RULE"``); returns it.

    Example::

        >>> merge({"check S1": 2}, {"check S1": 1, "check C1": 4})
        {'check S1': 3, 'check C1': 4}
    """
    for group, per_path in machine.coverage.items():
        for path, n in per_path.items():
            k = f"{group} @{path}"
            into[k] = into.get(k, 0) + n
    for rule, n in machine.oracle.checked().items():
        k = "check " + rule
        into[k] = into.get(k, 0) + n
    return into


def merge(into: dict, other: dict) -> dict:
    """Sum the flat counters ``other`` into ``into`` (chunks into a run); returns ``into``.

    Example::

        >>> merge({"check S1": 1}, {"check S1": 2})
        {'check S1': 3}
    """
    for k, n in other.items():
        into[k] = into.get(k, 0) + n
    return into


def _split(counts: dict, group: str) -> dict:
    """{path: count} of one group (``"hook try_to_unmap_flush"``, ``"window pending"``)."""
    pre = group + " @"
    return {k[len(pre):]: n for k, n in counts.items() if k.startswith(pre)}


def hooks(counts: dict) -> dict:
    """{hook: {path: count}} for every hook of :data:`HOOKS` (empty: never reached).

    Example::

        >>> hooks({"hook tlb_flush @munmap": 2})["tlb_flush"]
        {'munmap': 2}
    """
    return {h: _split(counts, "hook " + h) for h in HOOKS}


def windows(counts: dict) -> dict:
    """{window: {path: count}} for every window of :data:`WINDOWS`.

    Example::

        >>> windows({"window pending @reclaim": 4})
        {'pending': {'reclaim': 4}, 'stale-used': {}, 'beside-writer': {}}
    """
    return {w: _split(counts, "window " + w) for w in WINDOWS}


def checks(counts: dict) -> dict:
    """{rule: checks} for every rule of :data:`RULES`.

    Example::

        >>> checks({"check S3": 5})["S3"], checks({})["C1"]
        (5, 0)
    """
    return {r: counts.get("check " + r, 0) for r in RULES}


def unreached_hooks(counts: dict) -> list[str]:
    """The hooks no path called.

    Example::

        >>> "tlb_flush" in unreached_hooks({}), "tlb_flush" in unreached_hooks(
        ...     {"hook tlb_flush @munmap": 1})
        (True, False)
    """
    return [h for h, per in hooks(counts).items() if not per]


def unreached_windows(counts: dict) -> list[str]:
    """``"window @path"`` for every window and path never entered.

    Example::

        >>> "pending @munmap" in unreached_windows({"window pending @reclaim": 1})
        True
    """
    return [f"{w} @{p}" for w, per in windows(counts).items() for p in WINDOW_PATHS[w]
            if p not in per]


def _top(per: dict, n: int) -> str:
    items = sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k} {v:,}" for k, v in items[:n]) + (", ..." if len(items) > n else "")


def summary(counts: dict, width: int = 6) -> list[str]:
    """The compact coverage block of a PASS (lines, each starting with a label column).

    Example::

        >>> lines = summary({"hook try_to_unmap_flush @reclaim": 5, "window pending @munmap": 2,
        ...                  "check S3": 7})
        >>> lines[0]
        'checks    S1 0, S2 0, S3 7, C1 0, O1 0'
    """
    hk = hooks(counts)
    reached = {h: per for h, per in hk.items() if per}
    per_hook = {f"{h}@{p}": n for h, per in reached.items() for p, n in per.items()}
    lines = ["checks    " + ", ".join(f"{r} {n:,}" for r, n in checks(counts).items()),
             f"hooks     {len(reached)} of {len(hk)} reached; top: {_top(per_hook, width) or '-'}"]
    miss = unreached_hooks(counts)
    if miss:
        lines.append("          never reached: " + ", ".join(miss))
    for w, per in windows(counts).items():
        if not per:
            lines.append(f"window    {w}: never reached")
            continue
        lines.append(f"window    {w}: {sum(per.values()):,} in {len(per)} of "
                     f"{len(WINDOW_PATHS[w])} paths; top: {_top(per, width)}")
        never = [p for p in WINDOW_PATHS[w] if p not in per]
        if never:
            lines.append(f"          never reached: {', '.join(never)}")
    return lines


def events(counts: dict) -> list[str]:
    """The Hypothesis ``event`` strings of one example's counters (what it reached, not how
    often: ``--hypothesis-show-statistics`` gives the share of examples per event).

    Example::

        >>> events({"hook tlb_flush @munmap": 3, "check S1": 2})
        ['hook tlb_flush @munmap']
    """
    return sorted(k for k, n in counts.items() if n and not k.startswith("check "))
