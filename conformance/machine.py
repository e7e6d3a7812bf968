"""The simulated machine: hardware, memory, mms, the kernel, the protocol and the oracle.

Every public method is one *action* of the history (user access, hardware
event, start or step of a kernel operation). Actions are logged in
``self.actions`` so that a run replays exactly from that list
(:func:`conformance.reproducer.replay`).

Example::

    >>> from conformance.registry import load_protocol
    >>> m = Machine(load_protocol("linux"), MachineConfig(populate=False))
    >>> m.user_access(0, 2, write=False)   # mm0:v2 is a read-only file mapping; not present yet
    'fault'
    >>> m.drain()                          # run the fault to completion
    >>> m.user_access(0, 2, write=False)   # now it reads file0:0 through a fresh TLB entry
    1000
"""
from __future__ import annotations

import inspect
import os
import sys
import weakref
from types import CoroutineType, GeneratorType

from .accounting import unaccounted
from .hw.arch import Arch
from .config import DEFAULT, MachineConfig
from .coverage import counters, stale_alive
from .errors import Failure, HookRuleBroken, ModelError, ProtocolError, UsageError, describe
from .guard import blame
from .hookpoints import (NONE_HELD, RETURNS_VALUE, _defined_at, bad_return, changed_locks,
                         pointed_class)
from .interrupts import users
from .mm import Kernel, Op
from .hw.physmem import PhysMem
from .oracle import Oracle
from .protocol import MmuGather, Protocol
from .registry import hook_code, hook_names
from .mm.mm_types import PRESENT, Lock, Mm, Vma
from .hw.tlb import Tlbs
from .watchdog import _SUITE_DIR, PROTOCOL_FILES
from .trace import Trace

#: values written by user stores start here (file contents are 1000.., anon pages 0)
FIRST_USER_VALUE = 1_000_000

#: operations whose mm makes a folio "hot" for reclaim/migration (``Machine.hot_frames``)
HOT_OPS = frozenset({"munmap", "mprotect", "mmap", "madvise", "mremap", "exit", "fork"})

#: operations run by a task of the CPU's loaded mm (``exit_mmap`` waits for none to be in flight)
MM_TASK_OPS = frozenset({"fault", "munmap", "mprotect", "mmap", "madvise", "mremap", "fork"})

#: operations a user task runs (a fault, a syscall): one switched back in after it slept
#: runs ``finish_task_switch``'s lazy-TLB branch in its own context (``Machine._step``,
#: hook ``finish_task_switch``); so does ``compact`` (``Op.user_task``). Not ``reclaim``
#: (kswapd), ``migrate`` (kcompactd's compaction: ``migrate_pages_batch``, batched flush),
#: ``writeback`` (the flusher), all kernel threads, whose switch from another kernel thread
#: leaves ``rq->prev_mm`` NULL; nor ``exit``: ``exit_mmap`` runs after ``exit_mm`` cleared
#: ``current->mm``
USER_TASK_OPS = MM_TASK_OPS | {"write", "truncate"}

#: the calls of an address space that can drop or replace the folio at an address (not a
#: fault or mprotect, which drop none, nor the rmap walkers: reclaim, migrate, writeback,
#: truncate); madvise only with these advices: ``Machine._store_races_the_drop``
DROPPING_OPS = frozenset({"munmap", "mmap", "mremap", "fork", "exit"})
DROPPING_ADVICE = frozenset({"dontneed", "free"})

#: the madvise advices modelled (``Machine.madvise``)
MADV_ADVICE = ("dontneed", "free", "cold", "pageout")


def boot_layout(m: "Machine") -> None:
    """The initial address spaces (docs/model.md, "Boot layout").

    mm0: v0-v1 anonymous RW, v2-v3 file0 shared read-only (opened O_RDONLY).
    mm1: v0-v1 file0 shared RW, v2-v3 file1 shared read-only.
    Further mms alternate the two layouts. CPU i starts with mm (i mod nmms) loaded.
    Two mappings of file0, one RO and one RW, are what review scenario 3 needs.
    """
    for mm in m.mms:
        mm.vmas = boot_vmas(m, mm)
    for cpu in m.tlbs.cpus:
        mm = m.mms[cpu.id % len(m.mms)]
        cpu.loaded_mm = mm
        cpu.loaded_gen = mm.tlb_gen
    if m.cfg.populate:
        populate(m)


def boot_vmas(m: "Machine", mm) -> list:
    """The VMAs of ``mm``'s program (even mm: anonymous RW then file0 RO; odd mm: file0 RW
    then file(1 mod nfiles) RO), each with a fresh anon_vma and the protocol's
    ``init_vma``: at boot, and when ``exit_mmap`` execs the next program into the slot."""
    half = m.cfg.vpages // 2
    if mm.id % 2 == 0:
        vmas = [Vma(0, half, m.new_anon_id(), None, 0, True, True),
                Vma(half, m.cfg.vpages, None, 0, 0, False, False)]
    else:
        vmas = [Vma(0, half, None, 0, 0, True, True),
                Vma(half, m.cfg.vpages, None, 1 % m.cfg.nfiles, 0, False, False)]
    for v in vmas:
        v.end = min(v.end, v.start + (m.cfg.file_pages if v.file is not None else v.end))
        v.proto = m.proto.init_vma(v)
    return vmas


def populate(m: "Machine") -> None:
    """``MAP_POPULATE`` at boot: every VMA page is faulted in, then every CPU caches its mm.

    Installs directly the state the fault path leaves behind, in the same order
    and with the same frames as running it would (``do_anonymous_page`` for
    anonymous RW memory: a zeroed folio mapped writable and dirty;
    ``filemap_fault`` + ``finish_fault`` for files: the page read into the page
    cache, mapped read-only, write-notify). Done this way because it runs once
    per example; no protocol hook runs (nothing can be pending at boot). The
    history starts after this, at step 0.
    """
    mem = m.mem
    for mm in m.mms:
        for vma in mm.vmas:
            for vp in range(vma.start, vma.end):
                loc = vma.location(vp)
                pte = mm.ptes[vp]
                if vma.is_anon:
                    mm.pte_alloc(vp)  # do_anonymous_page: the table before the folio
                    vma.anon_vma = True  # its vmf_anon_prepare
                    frame = mem.take_free_frame()
                    if frame is None:
                        return
                    mem.owner[frame] = loc
                    mem.value[frame] = 0
                    pte.set_present(frame, vma.writable, vma.writable, m.new_pte_inst())
                else:
                    f = mem.files[loc[1]]
                    frame = f.cache.get(loc[2])
                    if frame is None:
                        frame = mem.take_free_frame()
                        if frame is None:
                            return
                        mem.owner[frame] = loc
                        mem.value[frame] = f.disk[loc[2]]
                        f.cache[loc[2]] = frame
                    mm.pte_alloc(vp)  # finish_fault: the table after the page is read
                    pte.set_present(frame, False, False, m.new_pte_inst())
                mem.rmap[frame][(mm.id, vp)] = None
    for cpu in m.tlbs.cpus:
        for vp in range(m.cfg.vpages):
            m.tlbs.fill(cpu, cpu.loaded_mm, vp)


#: the base class's ``finish_task_switch`` (a protocol that keeps it logs no row for it)
_BASE_FTS = hook_code(Protocol.finish_task_switch)


def _mm_task(op) -> bool:
    """Is ``op`` run by a task of its CPU's loaded mm, which keeps that mm from exiting?
    A fault or syscall of the mm (:data:`MM_TASK_OPS`), or a migration in the direct
    compaction of such a task's allocation (:meth:`Machine.compact`)."""
    return op.name in MM_TASK_OPS or (op.user_task and op.name == "migrate")


def _sleeps(blocked_on) -> bool:
    """Does a task that waits for ``blocked_on`` (``Op.blocked_on``) sleep? Yes for an
    rw_semaphore (``mmap_lock``, ``anon_vma->rwsem``, ``i_mmap_rwsem``, ``invalidate_lock``),
    a folio lock (:class:`~conformance.mm.mm_types.SleepLock`) and ``migration_entry_wait``;
    no for a PTL (:class:`~conformance.mm.mm_types.Lock`), a spinlock its waiter spins on."""
    return blocked_on.__class__ is not Lock


def _hook_task(args):
    """The task a hook runs for: its first argument, or a gather's ``task`` (an
    :class:`Op`, a CPU number, or None). :meth:`Machine.call_hook` has it inline (the
    per-hook path); a predicate's wrong answer (an error path) calls it."""
    a = args[0] if args else None
    return a.task if a.__class__ is MmuGather else a


class Machine:
    """One simulated machine running one protocol."""

    def __init__(self, proto_cls, cfg: MachineConfig = DEFAULT, strict: bool = False) -> None:
        self.cfg = cfg
        self.mem = PhysMem(cfg.nframes, cfg.nfiles, cfg.file_pages, cfg.swap_slots)
        self.tlbs = Tlbs(cfg.ncpus, cfg.nframes)
        self.trace = Trace()
        self.arch = Arch(self.tlbs, self.trace)
        # the tlb_flush_batched counter width the protocols use (MachineConfig.batch_gen_bits)
        self.arch.tlb_flush_batch_bits = cfg.batch_gen_bits
        self.mms = [Mm(i, cfg.vpages, cfg.ptes_per_table) for i in range(cfg.nmms)]
        self.ops: list[Op] = []
        self.actions: list[tuple] = []
        self._next_op = 0
        self._next_value = FIRST_USER_VALUE
        self._next_anon = 0
        self.pte_insts = 0  # the last PTE instance handed out (new_pte_inst)
        self.consumer_frames: list[int] = []
        self.failed = False
        self.failing_op: Op | None = None  # whose step raised an exception that is no Failure
        self.busy_cpus = 0  # CPUs running a kernel operation (an O(1) precondition)
        #: CPUs whose last operation was a kernel thread's (bit per CPU): the user task that
        #: runs there next is switched in from it (:meth:`_from_kthread`). Kept only for a
        #: protocol that overrides ``finish_task_switch`` (0 for the others, whose state
        #: keys and bounded counts it would otherwise split)
        self.kthread_ran = 0
        self.oracle = Oracle(self, strict=strict)
        self.kernel = Kernel(self)
        self._proto_files = _protocol_files(proto_cls)
        try:
            self._boot(proto_cls)
        except (Failure, UsageError):
            raise
        except BaseException as exc:  # a protocol that cannot even boot is bad input (exit
            # 2); its sys.exit() too, which would otherwise end the run silently, and any
            # BaseException of its own (GeneratorExit, a class of its), a traceback before;
            # Ctrl-C is the user's
            if not _whose(exc):
                raise
            after = ""
            if not self.protocol_fault(exc, proto_cls):
                if proto_cls is Protocol or not _boots_plainly(self.cfg):
                    raise
                # kernel code failed, but the same machine boots without the protocol's
                # hooks: its init_mm / init_vma changed what they were handed (vma.end =
                # 100 was "internal error" and a traceback: an audit, 2026-12-06)
                after = (" (raised in flushcheck's code after its boot hooks ran; the machine "
                         "boots without them: did init_mm or init_vma change what it was "
                         "handed, or return state that cannot be read?)")
            raise UsageError(f"protocol {getattr(proto_cls, 'name', proto_cls.__name__)} cannot "
                             f"boot a machine: {type(exc).__name__}: {describe(exc)}{after}"
                             ) from None
        #: does the protocol override ``finish_task_switch``? Only then does the trace get a
        #: row for it (:meth:`_switched_in`); every protocol's is called, so certify's hook
        #: coverage counts it (the base class's does nothing)
        self._fts_overridden = hook_code(getattr(type(self.proto), "finish_task_switch", None)) \
            is not _BASE_FTS
        self._w_pending = self.coverage.get("window pending")
        self._w_stale = self.coverage.get("window stale-used")
        #: per-VMA locks (coverage.py): a fault under its VMA lock beside a writer of its mm
        self._w_beside = self.coverage.get("window beside-writer")

    def _boot(self, proto_cls) -> None:
        """The protocol object (its ``__init__``), each mm's ``init_mm``, the boot layout
        (each VMA's ``init_vma``)."""
        # every effect of a hook the kernel may interleave is a point (hookpoints.py)
        self.proto = pointed_class(proto_cls)(self.arch, self.kernel.free_frames)
        #: what the run exercised (conformance/coverage.py): hooks per calling path, race
        #: windows; counted when the protocol class is a ``coverage.counted_class`` (certify
        #: and the state machine run those; the soundness campaign's raw walk does not pay)
        self.coverage = {}
        if "_fc_counted" in proto_cls.__dict__:
            self.coverage = self.proto._fc_coverage = counters()
        for mm in self.mms:
            mm.proto = self.proto.init_mm(mm)
        boot_layout(self)

    def protocol_fault(self, exc: BaseException, proto_cls=None) -> bool:
        """Is ``exc`` (not a :class:`Failure`) the protocol's fault? Raised in a frame of
        the protocol's own files, or a ``TypeError`` of calling one of its functions with
        the wrong parameters (``Sig.try_to_unmap_flush() takes 1 positional argument but 2
        were given``: the protocol's frame never ran, the call was ours)."""
        if _raised_in(exc, self._proto_files) or isinstance(exc, HookRuleBroken):
            return True
        if exc.__class__ is not TypeError or not exc.args or not isinstance(exc.args[0], str):
            return False
        head = exc.args[0].split("(", 1)[0]
        return head in _misdeclared(proto_cls or type(self.proto), self._proto_files)

    # -- bookkeeping --------------------------------------------------------------
    def new_anon_id(self) -> int:
        self._next_anon += 1
        return self._next_anon

    def new_pte_inst(self) -> int:
        """A fresh PTE instance number (``Pte.inst``): larger than every one before it, so
        "installed before a walk visited the slot" is ``inst <= clock at the visit``."""
        self.pte_insts += 1
        return self.pte_insts

    def _action(self, name: str, args: tuple) -> None:
        self.actions.append((name, args))
        self.trace.step += 1

    def cpu_idle(self, cpu: int) -> bool:
        return self.tlbs.cpus[cpu].op is None

    def runnable_ops(self) -> list[Op]:
        # Op.runnable(), without the call for the common unblocked operation
        return [op for op in self.ops if op.blocked_on is None or op.runnable()]

    def call_hook(self, fn, *args, answers: bool = False, on=None):
        """Call a hook that must not yield (allocation, context switch). What it raises is
        a protocol error when it is the protocol's (:meth:`protocol_fault`), here as in
        :meth:`_step`: ``context_switch`` runs outside any operation's step. It must leave
        the locks its task holds as they were (:func:`~conformance.hookpoints.changed_locks`),
        and return None unless its contract returns a value (the ``init_*`` state; a
        coroutine never: :func:`~conformance.hookpoints.bad_return`); ``answers``: it is
        asked a question (:meth:`call_predicate`). A protocol error's ``!!`` row goes to the
        column of ``on`` (an operation or a CPU), by default the operation the hook runs in
        (its task: the first argument, or a gather's ``task``), as a MODEL ERROR's does
        (:meth:`_step`); until 2026-12-05 it went to CPU0's column as ``[hw]``, as if no
        CPU did it."""
        a = args[0] if args else None  # _hook_task(args), inline: every hook call comes here
        who = a.task if a.__class__ is MmuGather else a
        if on is None and who.__class__ is Op:
            on = who
        held = getattr(who, "held", NONE_HELD)
        had = tuple(held)  # by content (hookpoints._drive)
        try:
            r = fn(*args)
        except BaseException as exc:  # a BaseException too, and ours: _step says why
            if _whose(exc):
                self._raise_if_protocol_fault(exc, fn.__name__, on)
            raise
        if r.__class__ is GeneratorType:
            r.close()
            raise self._protocol_error(f"{fn.__name__} yielded in a context that cannot be "
                                       f"interleaved{_defined_at(fn)}", on)
        if getattr(who, "held", NONE_HELD) is not held or tuple(held) != had:
            raise self._protocol_error(str(changed_locks(fn, had, who)), on)
        if r is not None and (r.__class__ is CoroutineType
                              or not answers and fn.__name__ not in RETURNS_VALUE):
            raise self._protocol_error(str(bad_return(fn, r)), on)
        return r

    def call_predicate(self, fn, *args) -> bool:
        """:meth:`call_hook` for a hook that answers yes or no (``should_defer_flush``):
        a bool, or an int as C reads one (a cpumask: nonzero is yes). Anything else is a
        protocol error, above all None: a hook that forgot its ``return`` would otherwise
        read as "never defer", and the protocol would pass as ``immediate`` does.

        Example::

            >>> from conformance.registry import load_protocol
            >>> m = Machine(load_protocol("linux"))
            >>> m.call_predicate(lambda mask: mask & ~1, 0b110)
            True
            >>> m.call_predicate(lambda: None)       # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            conformance.errors.ProtocolError: protocol linux: <lambda> returned None (NoneType): return a bool (<lambda> at ...)
        """
        r = self.call_hook(fn, *args, answers=True)
        if type(r) is bool or type(r) is int:
            return bool(r)
        who = _hook_task(args)
        raise self._protocol_error(f"{fn.__name__} returned {r!r} ({type(r).__name__}): "
                                   f"return a bool{_defined_at(fn)}",
                                   who if who.__class__ is Op else None)

    def left_by_hooks(self, op, hooks: tuple, text: str) -> Failure:
        """The failure to raise for ``text``, an invariant of ``op``'s kernel path found broken
        right after the hooks ``hooks`` ran, which must keep it (``tlb_finish_mmu left pages
        unfreed``: ``tlb_finish_mmu`` and the ``tlb_flush_mmu`` it calls free what the gather
        holds). A :class:`ProtocolError` naming the first of them the protocol's own code
        defines: the hook has returned, no frame of it is on the stack for
        :meth:`protocol_fault` to see, and it was a MODEL ERROR. Else a :class:`ModelError`:
        the base class's hooks are the model's."""
        for name in hooks:
            code = hook_code(getattr(type(self.proto), name, None))
            if code is not None and os.path.abspath(code.co_filename) in self._proto_files:
                return self._protocol_error(
                    f"{text} (its {name}: {os.path.basename(code.co_filename)}:"
                    f"{code.co_firstlineno})", op)
        return ModelError(text)

    def _raise_if_protocol_fault(self, exc: BaseException, who: str, op=None) -> None:
        """Raise ``exc``, raised while running ``who`` (an operation, a hook), as a
        :class:`ProtocolError` naming where the protocol raised it, if it is the protocol's
        fault (:meth:`protocol_fault`); else return, and the caller re-raises it."""
        if self.protocol_fault(exc):
            raise self._protocol_error(f"{type(exc).__name__} in {who}: {describe(exc)}"
                                       + _where(exc, self._proto_files), op) from exc

    def _protocol_error(self, text: str, op=None) -> ProtocolError:
        """A :class:`ProtocolError` at this step; its ``!!`` row in the timeline goes to
        ``op``'s column (an operation, or a CPU's number), else to the ``hw`` column of the
        events of no CPU (a drain that never ends)."""
        self.failed = True
        self.trace.msg(op, "!! PROTOCOL ERROR: %s", text)
        e = ProtocolError(f"protocol {self.proto.name}: {text}")
        e.machine = self
        e.step = self.trace.step
        return e

    def _model_error(self, text: str, op=None) -> ModelError:
        """A :class:`ModelError` of this machine at this step, for one raised outside an
        operation's step (which :meth:`_step` would give its machine): the end of an
        operation, a deadlock while draining, the other consumer's free. Without its
        machine it had no actions: certify's report crashed on it (``x.machine.actions``),
        or said "FAIL: MODEL-ERROR violated" with exit 1, and there was no reproducer."""
        self.failed = True
        e = ModelError(text)
        e.machine, e.step = self, self.trace.step
        return blame(e, op)  # a hook that wrote kernel state: the protocol's (conformance/guard.py)

    # -- kernel operations ----------------------------------------------------------
    def _start(self, cpu: int, name: str, args: tuple, gen_fn, label: str,
               user_task: bool | None = None) -> Op:
        """Start operation ``name`` on ``cpu`` and run its first step; ``user_task``: does a
        user task run it (default: ``name`` in :data:`USER_TASK_OPS`)."""
        c = self.tlbs.cpus[cpu]
        if c.op is not None:
            raise UsageError(f"CPU{cpu} is already running {c.op}")
        op = Op(self._next_op, cpu, name, args)
        self._next_op += 1
        op._label = label
        op.user_task = name in USER_TASK_OPS if user_task is None else user_task
        mine = _kernel_fields(op)
        op.tlb_ubc = self.call_hook(self.proto.init_task, op)
        if _kernel_fields(op) != mine:
            # the task is not in self.ops yet, so no guard sees it (guard.kernel_state): a
            # hook that set task.args = None failed later as a MODEL ERROR no replay made
            # again, after minutes of search for its shortest form (an audit, 2026-12-06)
            raise self._protocol_error(
                f"HookRuleBroken: init_task changed the task's kernel fields (id, cpu, name, "
                f"args, path) of its {name}: it makes the task's tlb_ubc and nothing else"
                f"{_defined_at(self.proto.init_task)}", cpu)
        op.gen = gen_fn(op)
        c.op = op
        self.busy_cpus += 1
        self.ops.append(op)
        if self._w_pending is not None and stale_alive(self):
            self._w_pending[name] += 1  # coverage: a deferred flush pending as this path starts
        self.trace.msg(op, "%s: start", op)
        if self.kthread_ran >> cpu & 1 and (op.user_task or name == "exit"):
            self._from_kthread(cpu, op, c.loaded_mm)  # its task is switched in (tlb_ubc set)
        self._step(op)
        return op

    def _step(self, op: Op) -> None:
        op.steps += 1
        if op.steps > self.cfg.max_op_steps:
            from .hookpoints import paused_at, paused_hook

            hook = paused_hook(op)  # where the loop is: the hook it is paused in, if any
            raise self._protocol_error(
                f"{op.label} did not finish in {self.cfg.max_op_steps} steps ("
                + (f"paused in {hook} after {paused_at(op)}: does it loop through its "
                   "interleaving points?)" if hook else "a protocol hook loops?)"), op)
        b = op.blocked_on
        if b is not None and op.user_task and _sleeps(b):
            self._switched_in(op)
        try:
            op.gen.send(None)
        except StopIteration:
            self._finish(op)
        except BaseException as exc:  # a protocol bug, or ours: find out whose frame raised
            # (a hook's sys.exit() too: uncaught, it ends certify with status 0; and any
            # other BaseException, GeneratorExit or a class of the protocol's own, which the
            # runners' `except Exception` let through as a traceback; Ctrl-C is the user's)
            if _whose(exc):
                self._raise_if_protocol_fault(exc, op.label, op)
            if isinstance(exc, ModelError):
                self.failed = True
                exc.machine, exc.step = self, self.trace.step
                blamed = blame(exc, op)  # a hook that wrote kernel state (conformance/guard.py)
                if blamed is not exc:
                    raise blamed from exc
            elif not isinstance(exc, Failure):
                self.failing_op = op  # ModelError.uncaught's row goes to op's CPU column
            raise

    def _switched_in(self, op: Op) -> None:
        """``op``, a user task's operation, blocked on a sleeping lock (``op.blocked_on``)
        when it last yielded: it slept, its CPU ran the idle task (a kernel thread, which
        kept the CPU's mm loaded lazily: the CPU is busy, nothing else runs there), and it
        is now switched back in from it. ``context_switch`` set ``rq->prev_mm`` to that
        mm (``!prev->mm``), so ``finish_task_switch`` (kernel/sched/core.c) runs its
        lazy-TLB branch in ``op``'s context: the protocol's ``finish_task_switch(task,
        mm)``, before the step. A row in the trace only for a protocol that overrides the
        hook (the base class's does nothing), so no other protocol's trace changes.
        Simplification: every blocked wait is a sleep (the kernel's rwsem and
        mutex waiters may spin on a running owner first and never schedule). Not on a CPU
        whose mm is exiting: only ``write`` and ``truncate`` start there, and the model's
        file syscalls do not load their task's mm (its task is not that mm's, which has
        none left), so the mm a switch would hand over is not known. A slot a fork is
        replacing (``exiting`` too, :meth:`conformance.mm.Kernel.dup_mmap`) still hands
        over its old tenant, which the idle task's lazy reference (``mmgrab``) keeps: the
        hook runs there, as it did before the fork set the flag."""
        mm = self.tlbs.cpus[op.cpu].loaded_mm
        if not mm.exiting or self._replaced_by_fork(mm):
            self._finish_task_switch(op, mm, "idle")

    def _from_kthread(self, cpu: int, who, mm) -> None:
        """The user task that runs on ``cpu`` next after a kernel thread's operation there
        (reclaim: kswapd; migrate: kcompactd; writeback: the flusher; an exit: the dead
        task, whose ``exit_mm`` cleared its mm and kept it as a lazy reference) is switched
        in from that thread, which kept ``mm``, the CPU's mm, loaded lazily:
        ``context_switch``'s "kernel -> user" case sets ``rq->prev_mm`` to it, and
        ``finish_task_switch`` (kernel/sched/core.c) runs its lazy-TLB branch in the task's
        context: the protocol's ``finish_task_switch(who, mm)``, ``who`` the operation the
        task starts (after ``init_task`` and its start row, before its first step), or
        ``cpu`` for a user access or a switch to another mm's task. Called where that task
        first runs: :meth:`user_access`, :meth:`_start` of a user task's operation or an
        exit, :meth:`switch_mm` (``mm`` the mm switched away from). Also for an ``mm`` that
        is exiting (a write or hole punch the model starts on its CPU): the lazy reference
        keeps it, and the kernel drops it there all the same."""
        self.kthread_ran &= ~(1 << cpu)
        if mm is not None:
            self._finish_task_switch(who, mm, "a kernel thread")

    def _finish_task_switch(self, who, mm, prev: str) -> None:
        """The protocol's ``finish_task_switch(who, mm)`` for a task switched in from
        ``prev`` (:meth:`_switched_in`, :meth:`_from_kthread`), with its trace row where the
        protocol overrides the hook (the kernel-thread bit is kept only there anyway)."""
        if self._fts_overridden:
            self.trace.msg(who, "finish_task_switch: switched in from %s, rq->prev_mm = mm%d",
                           prev, mm.id)
        self.call_hook(self.proto.finish_task_switch, who, mm, on=who)

    def _finish(self, op: Op) -> None:
        self.ops.remove(op)
        self.tlbs.cpus[op.cpu].op = None
        self.busy_cpus -= 1
        if self._fts_overridden and not op.user_task:
            # kswapd, kcompactd, the flusher: kernel threads; and an exit, whose task ran
            # exit_mmap after exit_mm cleared its mm (it switches out as a kernel thread would)
            self.kthread_ran |= 1 << op.cpu
        if op.held:
            raise self._model_error(f"{op.label} returned holding {op.held}", op)
        if not op.returned:
            self.log_return(op)
        self.oracle.op_returned(op)

    def log_return(self, op: Op) -> None:
        """``op``'s ``<op>: return`` row (with its result, if any), once: a syscall logs it
        where it returns to user space, right before its S3 check (so that the oracle's
        ``!! S3`` row follows the return it judges), and :meth:`_finish` does not log it
        again; any other operation's is logged when it finishes. Until 2026-12-05 mprotect,
        madvise and mremap logged their label alone there (``mprotect(mm0, v0..v0, RO)``),
        which read as a second start, then the return row after it."""
        self.trace.msg(op, "%s: return%s", op,
                       "" if op.result in (None, "ok") else f" ({op.result})")
        op.returned = True

    def advance(self, op_id: int) -> None:
        """Run operation ``op_id`` to its next interleaving point."""
        self._action("advance", (op_id,))
        for op in self.ops:
            if op.id == op_id:
                if not op.runnable():
                    raise UsageError(f"{op.label} is blocked on {op.blocked_on}")
                self._step(op)
                return
        raise UsageError(f"no operation {op_id} in flight")

    def advance_runnable(self, op: Op) -> None:
        """:meth:`advance` of an operation the caller just found runnable in ``self.ops``
        (the driver's and drain's schedule): the same action, without searching for it."""
        self._action("advance", (op.id,))
        self._step(op)

    def fault(self, cpu: int, vpage: int, write: bool) -> Op:
        """Start ``handle_mm_fault`` on ``cpu`` for its loaded mm (normally via :meth:`user_access`)."""
        self._action("fault", (cpu, vpage, write))
        return self._start_fault(cpu, self._task_mm(cpu), vpage, write)

    def _start_fault(self, cpu: int, mm, vpage: int, write: bool) -> Op:
        return self._start(cpu, "fault", (vpage, write),
                           lambda op: self.kernel.fault(op, mm, vpage, write),
                           lambda: f"fault(mm{mm.id}:v{vpage}{',W' if write else ''})")

    def reclaim(self, cpu: int, frames: tuple, nested: tuple = ()) -> Op:
        """Start ``shrink_node`` (kswapd on ``cpu``) over ``frames``; ``nested``: the frames a
        nested reclaim pass (entered from the first swapout allocation) works on."""
        frames = tuple(frames)
        nested = tuple(nested)
        self._action("reclaim", (cpu, frames, nested) if nested else (cpu, frames))
        return self._start(cpu, "reclaim", frames,
                           lambda op: self.kernel.reclaim(op, frames, nested),
                           lambda: _folios("reclaim", frames, "nested", nested))

    def writeback(self, cpu: int, file: int, pgoff: int) -> Op:
        """Start writeback of page ``pgoff`` of ``file`` (``folio_write_one``, with ``folio_mkclean``)."""
        self._action("writeback", (cpu, file, pgoff))
        return self._start(cpu, "writeback", (file, pgoff),
                           lambda op: self.kernel.writeback(op, file, pgoff),
                           lambda: f"writeback(file{file}:{pgoff})")

    def _mm_op(self, cpu: int, name: str, args: tuple, run, label) -> Op:
        """Log the action and start ``run(op, mm)`` on ``cpu``'s loaded mm (a syscall by the
        task running there); ``label(mm)`` names the operation."""
        self._action(name, (cpu,) + args)
        mm = self._task_mm(cpu)
        return self._start(cpu, name, args, lambda op: run(op, mm), lambda: label(mm))

    def _task_mm(self, cpu: int):
        """The mm of the task running on ``cpu``; an exiting mm has no task left."""
        mm = self.tlbs.cpus[cpu].loaded_mm
        if mm.exiting:
            raise UsageError(f"{self._taskless(mm)}: no task of it runs on CPU{cpu}")
        return mm

    def madvise(self, cpu: int, start: int, npages: int, advice: str) -> Op:
        """Start ``madvise(start, npages, MADV_<advice>)``: "dontneed", "free", "cold", "pageout"."""
        if advice not in MADV_ADVICE:
            raise UsageError(f"madvise: unknown advice {advice!r}")
        return self._mm_op(cpu, "madvise", (start, npages, advice),
                           lambda op, mm: self.kernel.madvise(op, mm, start, npages, advice),
                           lambda mm: f"madvise(mm{mm.id}, {_vrange(start, npages)}, {advice})")

    def mremap(self, cpu: int, old_start: int, npages: int, new_start: int) -> Op:
        """Start ``mremap(old_start, npages, npages, MREMAP_MAYMOVE|MREMAP_FIXED, new_start)``."""
        return self._mm_op(cpu, "mremap", (old_start, npages, new_start),
                           lambda op, mm: self.kernel.mremap(op, mm, old_start, npages, new_start),
                           lambda mm: f"mremap(mm{mm.id}, {_vrange(old_start, npages)} -> v{new_start})")

    def migrate(self, cpu: int, frames: tuple) -> Op:
        """Start ``migrate_pages_batch`` (async, batched flush) over ``frames``, run by
        kcompactd on ``cpu`` (a kernel thread: ``kcompactd_do_work`` -> ``compact_zone`` ->
        ``migrate_pages``; its ``migrate_pages_sync`` starts with a ``MIGRATE_ASYNC``
        ``migrate_pages_batch`` pass, whose flush is the batched one modelled here)."""
        frames = tuple(frames)
        self._action("migrate", (cpu, frames))
        return self._start(cpu, "migrate", frames, lambda op: self.kernel.migrate(op, frames),
                           lambda: _folios("migrate", frames))

    def compact(self, cpu: int, frames: tuple) -> Op:
        """Start the same ``migrate_pages_batch`` as :meth:`migrate`, run by the user task on
        ``cpu`` in direct compaction (``__alloc_pages_direct_compact`` ->
        ``try_to_compact_pages`` -> ``compact_zone`` -> ``migrate_pages``, async first): the
        kernel path and hooks are migration's (``task.path`` "migrate"), but a wait on a
        sleeping lock switches the task out and back in (``finish_task_switch``)."""
        frames = tuple(frames)
        self._action("compact", (cpu, frames))
        self._task_mm(cpu)  # the allocating task's: refused where its mm is exiting
        return self._start(cpu, "migrate", frames, lambda op: self.kernel.migrate(op, frames),
                           lambda: _folios("compact", frames),
                           user_task=True)

    def move_pages(self, cpu: int, frames: tuple, nested: tuple = ()) -> Op:
        """Start move_pages(2) by the user task on ``cpu`` (``do_move_pages_to_node`` ->
        ``migrate_pages``, ``MIGRATE_SYNC``, whose ``migrate_pages_sync`` starts with the
        ``MIGRATE_ASYNC`` batch of :meth:`migrate`) over ``frames``; ``nested``: the frames
        a direct reclaim, entered from the last folio's destination allocation
        (``alloc_migration_target``), works on while the earlier folios' flush is pending
        (docs/model.md section 11 item 24). A user task, as in :meth:`compact`. The frames
        may belong to several mms: move_pages(2) itself moves one mm's pages, but memory
        offlining (``do_migrate_range``, ``alloc_migration_target``, ``MIGRATE_SYNC``) runs
        the same batch over any folios, with the same allocation.

        Example::

            >>> from conformance.registry import load_protocol
            >>> m = Machine(load_protocol("linux"), MachineConfig(vpages=3))
            >>> op = m.move_pages(1, (m.frame_of(0, 0), m.frame_of(0, 1)), (m.frame_of(0, 2),))
            >>> op.label
            'move_pages[pfn0,pfn1]+reclaim[pfn2]'
        """
        frames = tuple(frames)
        nested = tuple(nested)
        self._action("move_pages", (cpu, frames, nested) if nested else (cpu, frames))
        self._task_mm(cpu)  # the calling task's: refused where its mm is exiting
        return self._start(cpu, "migrate", frames,
                           lambda op: self.kernel.migrate(op, frames, nested),
                           lambda: _folios("move_pages", frames, "reclaim", nested),
                           user_task=True)

    def munmap(self, cpu: int, start: int, npages: int) -> Op:
        """Start ``munmap(start, npages)`` by the task running on ``cpu``."""
        return self._mm_op(cpu, "munmap", (start, npages),
                           lambda op, mm: self.kernel.munmap(op, mm, start, npages),
                           lambda mm: f"munmap(mm{mm.id}, {_vrange(start, npages)})")

    def mmap(self, cpu: int, start: int, npages: int, file, writable: bool, fixed: bool) -> Op:
        """Start ``mmap``: anonymous private (file None) or shared ``file``; ``fixed`` = MAP_FIXED."""
        self._action("mmap", (cpu, start, npages, file, writable, fixed))
        mm = self._task_mm(cpu)
        maywrite = writable or file is None
        what = "anon" if file is None else f"file{file}"
        return self._start(cpu, "mmap", (start, npages, file, writable, fixed),
                           lambda op: self.kernel.mmap(op, mm, start, npages, file, writable,
                                                       maywrite, fixed),
                           lambda: f"mmap(mm{mm.id}, {'v%d, ' % start if fixed else ''}{npages}p, {what}, "
                           f"{'RW' if writable else 'RO'}{', FIXED' if fixed else ''})")

    def mprotect(self, cpu: int, start: int, npages: int, writable: bool) -> Op:
        """Start ``mprotect(start, npages, PROT_READ[|PROT_WRITE])``."""
        return self._mm_op(cpu, "mprotect", (start, npages, writable),
                           lambda op, mm: self.kernel.mprotect(op, mm, start, npages, writable),
                           lambda mm: f"mprotect(mm{mm.id}, {_vrange(start, npages)}, "
                           f"{'RW' if writable else 'RO'})")

    def fork(self, cpu: int, child: int) -> Op:
        """Start ``fork()`` by the task on ``cpu``: ``dup_mmap`` of its loaded mm into mm slot
        ``child`` (whose previous address space is torn down first; :meth:`Kernel.dup_mmap`)."""
        self._action("fork", (cpu, child))
        mm = self._task_mm(cpu)
        if not 0 <= child < len(self.mms) or self.mms[child] is mm:
            raise UsageError(f"fork: mm{child} is not another mm of the machine")
        cm = self.mms[child]
        busy = self._in_flight_for(cm)  # first: a fork into the slot sets cm.exiting too
        if busy is not None:  # the slot's tenant must be gone, as for an exit (below)
            raise UsageError(f"fork: mm{child}: {busy.label} is still in flight")
        if cm.exiting:  # its exit_mmap is in flight: the slot is not free for a child yet
            raise UsageError(f"fork: mm{child} is exiting")
        return self._start(cpu, "fork", (child,), lambda op: self.kernel.dup_mmap(op, mm, cm),
                           lambda: f"fork(mm{mm.id} -> mm{child})")

    def write(self, cpu: int, file: int, pgoff: int) -> Op:
        """Start ``write()`` of a fresh value to page ``pgoff`` of ``file``."""
        self._action("write", (cpu, file, pgoff))
        value = self._value()
        return self._start(cpu, "write", (file, pgoff, value),
                           lambda op: self.kernel.write(op, file, pgoff, value),
                           lambda: f"write(file{file}:{pgoff})")

    def truncate(self, cpu: int, file: int, pgoff: int) -> Op:
        """Start ``fallocate(FALLOC_FL_PUNCH_HOLE)`` of page ``pgoff`` of ``file`` (any task)."""
        self._action("truncate", (cpu, file, pgoff))
        return self._start(cpu, "truncate", (file, pgoff),
                           lambda op: self.kernel.truncate(op, file, pgoff),
                           lambda: f"truncate(file{file}:{pgoff})")

    def exit_mmap(self, cpu: int) -> Op:
        """The last task of ``cpu``'s loaded mm exits: ``exit_mmap`` on ``cpu``, then a new
        program is exec'd into the mm (:meth:`conformance.mm.Kernel.exit_mmap`).
        Refused while a task of that mm is in the kernel (a fault, a syscall or a direct
        compaction in flight)."""
        self._action("exit_mmap", (cpu,))
        mm = self._task_mm(cpu)
        busy = self._in_flight_for(mm)
        if busy is not None:
            raise UsageError(f"exit of mm{mm.id}: {busy.label} is still in flight")
        return self._start(cpu, "exit", (), lambda op: self.kernel.exit_mmap(op, mm),
                           lambda: f"exit(mm{mm.id})")

    def can_exit(self, cpu: int) -> bool:
        """Would :meth:`exit_mmap` on ``cpu`` be accepted (idle CPU, no task of its mm in
        the kernel, the mm not already exiting)?"""
        cpus = self.tlbs.cpus
        mm = cpus[cpu].loaded_mm
        if cpus[cpu].op is not None or mm.exiting:
            return False
        return self._in_flight_for(mm) is None

    def can_fork_into(self, child: int) -> bool:
        """May a fork make its child in mm slot ``child`` now (:meth:`fork`)? Not while the
        slot's mm exits, nor while a task of it is in the kernel or a fork fills it: the
        slot's tenant is torn down first, and the kernel tears down no mm whose task is
        mid-fault (since a fault's first try drops ``mmap_lock`` for its read,
        ``VM_FAULT_RETRY``, nothing else keeps the teardown out of such a fault). Once the
        fork started, no task of the slot enters the kernel until the child is made
        (:meth:`conformance.mm.Kernel.dup_mmap` sets ``exiting`` for that time)."""
        cm = self.mms[child]
        return not cm.exiting and self._in_flight_for(cm) is None

    def _replaced_by_fork(self, mm) -> bool:
        """Is a fork making its child in ``mm``'s slot (which sets ``mm.exiting``)?"""
        return any(_forks_into(op, mm) for op in self.ops)

    def _taskless(self, mm) -> str:
        """Why ``mm`` (``exiting`` set) has no task: its exit, or a fork replacing it."""
        if self._replaced_by_fork(mm):
            return f"mm{mm.id} is being replaced by a fork's child"
        return f"mm{mm.id} is exiting"

    def _in_flight_for(self, mm):
        """The first operation in flight that keeps ``mm`` from going away (a task of it in
        the kernel, or a fork making its child in its slot), else None."""
        cpus = self.tlbs.cpus
        for op in self.ops:
            if (_mm_task(op) and cpus[op.cpu].loaded_mm is mm) or _forks_into(op, mm):
                return op
        return None

    def close(self) -> None:
        """Throw the machine away: end every operation in flight where it stands
        (``generator.close``, no further step runs). A hook paused at an automatic point
        is unwound; without this a dropped machine with a paused hook stays alive (the
        paused greenlet's frames hold it, and the cycle collector cannot see into them):
        the explorer calls it for every machine it drops.

        Example::

            >>> from conformance.registry import load_protocol
            >>> m = Machine(load_protocol("linux"))
            >>> op = m.munmap(0, 0, 1)
            >>> m.close(); m.ops
            []
        """
        for op in list(self.ops):
            _close_op(op)
        self.ops.clear()

    def dispose(self) -> None:
        """Throw the machine away for good: :meth:`close`, then break its reference cycles
        (the kernel and the oracle point back at the machine, the protocol at the kernel's
        allocator), so that reference counting frees it the moment the last reference goes.
        Nothing may read the machine afterwards: a search calls it for a machine it drops
        (a passed example, a dropped branch or state), never for one a failure carries.

        Why: without it every machine is cyclic garbage that only the cycle collector
        frees, and its scans of a few hundred objects per dropped machine were 20% of the
        raw walk's time (docs/BENCHMARKS.md, "2026-12-04 03:30").

        Example::

            >>> import gc
            >>> from conformance.registry import load_protocol
            >>> linux = load_protocol("linux"); gc.collect() >= 0
            True
            >>> m = Machine(linux); _ = m.user_access(0, 0, True); m.drain()
            >>> m.dispose(); del m
            >>> gc.collect()  # nothing left for the cycle collector
            0
        """
        self.close()
        for part in (self.kernel, self.oracle, self.proto, self.arch):
            d = getattr(part, "__dict__", None)
            if d is not None:
                d.clear()
        self.__dict__.clear()

    def drain(self, limit: int = 20000) -> None:
        """Run every operation in flight to completion, oldest first."""
        n = 0
        while self.ops:
            run = self.runnable_ops()
            if not run:
                raise self._model_error("deadlock: " + ", ".join(f"{o} waits for {o.blocked_on}"
                                                                 for o in self.ops))
            self.advance_runnable(run[0])
            n += 1
            if n > limit:
                raise self._protocol_error("operations did not finish while draining")

    # -- user accesses and hardware events ----------------------------------------------
    def _value(self) -> int:
        v = self._next_value
        self._next_value += 1
        return v

    def user_access(self, cpu: int, vpage: int, write: bool):
        """A user load or store on ``cpu`` to ``vpage`` of its loaded mm (SDM 4.8, 4.10).

        Returns the value read, ``'wrote'``, or ``'fault'`` when the access
        page-faults (the fault handler is then started on that CPU).
        """
        self._action("user_access", (cpu, vpage, write))
        c = self.tlbs.cpus[cpu]
        if c.op is not None:
            raise UsageError(f"CPU{cpu} is in the kernel ({c.op})")
        mm = c.loaded_mm
        if mm.exiting:
            raise UsageError(f"{self._taskless(mm)}: no task of it runs on CPU{cpu}")
        if self.kthread_ran >> cpu & 1:
            self._from_kthread(cpu, cpu, mm)  # the task is switched in before it accesses
        tlbs = self.tlbs
        e = tlbs.lookup(c, mm.id, vpage)
        if (e is not None and self.ops and self._w_stale is not None
                and (not write or (e.writable and e.dirty))):
            self._note_use(mm, vpage, e)  # coverage: a hit uses the entry without a walk
        vma = mm.find_vma(vpage)
        if not write:
            if e is None:  # TLB miss: walk
                e = tlbs.fill(c, mm, vpage)
                if e is None:
                    return self._fault(c, mm, vpage, False)
                self.oracle.check_entry(cpu, mm.id, vpage, e)
            value = self.mem.value[e.frame]
            self.trace.msg(cpu, "read mm%d:v%d -> %d [pfn%d]", mm.id, vpage, value, e.frame)
            self.oracle.check_read(cpu, mm, vpage, vma, e.frame, value)
            return value
        if e is None or not (e.writable and e.dirty):
            # Rule 4: a clean or read-only entry re-walks the PTE to set D; faults
            # if it is no longer present or writable (SDM 4.8; kernel-notes 5.2).
            pte = mm.ptes[vpage]
            if pte.kind != PRESENT or not pte.writable:
                if e is not None:
                    tlbs.drop(c, mm.id, vpage)  # a #PF invalidates the entry (SDM 4.10.4.1)
                return self._fault(c, mm, vpage, True)
            pte.accessed = pte.dirty = True
            e = tlbs.insert(c, mm.id, vpage, pte.frame, True, True, pte.inst)
        frame = e.frame
        self.oracle.check_write_allowed(cpu, mm, vpage, vma, frame)
        value = self._value()
        self.mem.value[frame] = value
        self.trace.msg(cpu, "write mm%d:v%d = %d [pfn%d]", mm.id, vpage, value, frame)
        loc = vma.location(vpage) if vma is not None else self._backed_location(frame)
        if loc is not None and loc[0] == "a" and self.mem.owner[frame] != loc \
                and self._store_races_the_drop(mm.id, vpage):
            # a stale entry to an anonymous folio that no longer backs the location
            # (MADV_DONTNEED zapped it, or reclaim discarded it as lazyfree) while the
            # call that dropped it is in flight: the store is lost with the folio; the
            # location's content does not change
            loc = None
        if loc is not None:
            self.oracle.expected[loc] = value
            self.oracle.check_mappings_of(loc)
        if self.mem.fork_copies and loc is not None:
            self._fork_window_store(frame, value, loc)
        self.oracle.check_frame(frame)
        return "wrote"

    def _store_races_the_drop(self, mm_id: int, vpage: int) -> bool:
        """May a store at ``mm_id:vpage`` through a stale entry to an anonymous folio that no
        longer backs the address's location be lost with the folio? Only while a call of that
        address space that can drop or replace the folio there (madvise DONTNEED/FREE, munmap,
        a MAP_FIXED mmap, mremap, fork, exit: :data:`DROPPING_OPS`) is in flight on the
        address: the store races the call, and madvise(2) lets it be lost. An rmap walker
        (reclaim, migration, writeback, truncate) does not excuse it. The kernel's lazyfree
        discard relies on a store after MADV_FREE returned marking the PTE dirty
        (``try_to_unmap_one``: "a clear->dirty transition on a cached TLB entry is written
        through and traps if the PTE is unmapped"), so a writable dirty entry over the
        discarded folio is one MADV_FREE should have flushed before it returned::

            CPU0 (madvise FREE v0)          CPU1 (reclaim)              CPU2 (mm0, W D entry)
            PTE clean, flush pending
                                            clean: discard, flush
                                            deferred
            returns without the flush
                                                                        store v0: the folio
                                                                        is gone, the data too
                                            flush, free
                                                                        read v0: 0

        Such a store now counts (``expected`` takes it), so the read that follows fails O1.
        Until 2026-12-05 every such store was lost, and a protocol that skipped MADV_FREE's
        flush passed where a reclaim discarded the folio in between (a review's finding).
        Since 2026-12-05 07:00 a fault, an mprotect and MADV_COLD/PAGEOUT in flight no longer
        excuse it either: none of them drops the folio at the address (a second review's
        finding: a read fault in flight hid the same mutant's lost store).
        """
        for op in self.ops:
            name = op.name
            if (name in DROPPING_OPS or name == "madvise" and op.args[2] in DROPPING_ADVICE) \
                    and (mm_id, vpage) in op.touched_vps:
                return True
        return False

    def _fork_window_store(self, frame: int, value: int, loc) -> None:
        """A store to location ``loc`` through a parent's writable TLB entry to a folio that
        a fork in flight has already copied an entry of, before its ``flush_tlb_mm``: the
        child sees it, as if the store came before the fork (``PhysMem.fork_copies``, filled
        by :meth:`~conformance.mm.memory.copy.CopyPaths.copy_pte_range`: a write-protected
        present PTE, a migration entry, a swap entry with its folio in the swap cache; after
        the flush no such store can happen unless a protocol left the entry, then O1/C1
        judge). Only a store to the location the entry was copied from counts: the child's
        location follows that folio, not whatever the frame holds later."""
        for _fork, cloc, ploc in self.mem.fork_copies.get(frame, ()):
            if ploc == loc:
                self.oracle.expected[cloc] = value
                self.oracle.check_mappings_of(cloc)

    def _note_use(self, mm, vpage: int, e) -> None:
        """Coverage: a user access uses ``e`` while operations are in flight; if it is stale
        (conformance/coverage.py), count the window for the path of each of them."""
        p = mm.ptes[vpage]
        if p.inst != e.inst or (e.writable and not p.writable):
            w = self._w_stale
            for op in self.ops:
                w[op.path] += 1

    def _backed_location(self, frame: int):
        """The location ``frame`` currently backs, if any.

        A write through a still-present PTE while munmap has already detached the
        VMA (it holds mmap_lock, the hardware does not care) lands in the page
        that backs the location, so the location's content changes.
        """
        owner = self.mem.owner[frame]
        if owner.__class__ is not tuple:
            return None
        if owner[0] == "f":
            return owner if self.mem.files[owner[1]].cache.get(owner[2]) == frame else None
        return owner if self.mem.rmap[frame] else None

    def _fault(self, c, mm, vpage: int, write: bool) -> str:
        self.trace.msg(c.id, "#PF mm%d:v%d%s", mm.id, vpage, " (write)" if write else "")
        self._start_fault(c.id, mm, vpage, write)
        return "fault"

    def fill(self, cpu: int, vpage: int) -> bool:
        """Rule 1: a speculative fill of ``vpage`` of the loaded mm (even inside the kernel)."""
        self._action("fill", (cpu, vpage))
        c = self.tlbs.cpus[cpu]
        mm = c.loaded_mm
        e = self.tlbs.fill(c, mm, vpage)
        if e is None:
            return False
        self.trace.msg(cpu, "[tlb fill mm%d:v%d -> pfn%d%s]", mm.id, vpage, e.frame,
                       " W" if e.writable else "")
        self.oracle.check_entry(cpu, mm.id, vpage, e)
        return True

    def evict(self, cpu: int, index: int) -> bool:
        """Rule 5: evict the ``index``-th entry (modulo the count) of ``cpu``'s TLB."""
        self._action("evict", (cpu, index))
        c = self.tlbs.cpus[cpu]
        got = self.tlbs.evicted_by(c, index)
        if got is None:
            return False
        mm_id, vp = got
        self.tlbs.drop(c, mm_id, vp)
        self.trace.msg(cpu, "[tlb evict mm%d:v%d]", mm_id, vp)
        return True

    def switch_mm(self, cpu: int, mm_id: int) -> None:
        """Context switch ``cpu`` to a task of ``mm_id`` (``switch_mm_irqs_off``, PCID kept).

        Entries of the previous mm stay cached unless its ``tlb_gen`` moved on
        while this CPU ran it without catching up (then they are dead, see
        :mod:`conformance.hw.arch`).
        """
        self._action("switch_mm", (cpu, mm_id))
        c = self.tlbs.cpus[cpu]
        if c.op is not None:
            raise UsageError(f"CPU{cpu} is in the kernel ({c.op})")
        prev = c.loaded_mm
        nxt = self.mms[mm_id]
        if prev is nxt:
            return
        if nxt.exiting:
            raise UsageError(f"{self._taskless(nxt)}: it has no task to switch to")
        if prev is not None and c.loaded_gen < prev.tlb_gen:
            self.tlbs.drop_mm(c, prev.id)
        c.loaded_mm = nxt
        c.loaded_gen = nxt.tlb_gen
        self.trace.msg(cpu, "switch_mm(mm%d -> mm%d)", prev.id if prev else -1, mm_id)
        self.call_hook(self.proto.context_switch, cpu, prev, nxt, on=cpu)
        if self.kthread_ran >> cpu & 1:  # from a kernel thread that held prev lazily
            self._from_kthread(cpu, cpu, prev)

    def consumer_alloc(self) -> int | None:
        """Another consumer (slab, another process) allocates a frame and writes it (S1)."""
        self._action("consumer_alloc", ())
        frame = self.kernel.alloc_frame(None, "other")
        if frame is None:
            return None
        self.mem.value[frame] = -self._value()
        self.consumer_frames.append(frame)
        self.trace.msg(None, "other consumer allocates pfn%d", frame)
        # no C1 over the frame's entries here: alloc_frame's S1 check has just failed the
        # run if any entry maps it, and nothing fills in between (until 2026-12-05 a
        # check_frame ran here over an entry set that was always empty; an oracle review)
        return frame

    def consumer_free(self) -> bool:
        """The other consumer frees its oldest frame."""
        self._action("consumer_free", ())
        if not self.consumer_frames:
            return False
        frame = self.consumer_frames.pop(0)
        if self.mem.owner[frame] == "other":
            self.mem.owner[frame] = "released"  # dead: free_frames frees only dead frames
        try:
            self.kernel.free_frames([frame])
        except ModelError as exc:  # the allocator's (a frame freed twice), outside any step
            raise self._model_error(str(exc)) from None
        return True

    # -- queries for strategies -------------------------------------------------------------
    def lru_frames(self) -> list[int]:
        """Frames reclaim or migration may pick (page cache or anonymous), in frame order."""
        return [f for f, o in enumerate(self.mem.owner) if o.__class__ is tuple]

    def hot_frames(self) -> list[int]:
        """LRU folios mapped in an mm that a munmap/mprotect/mmap/madvise/mremap in flight
        works on."""
        mms = {id(self.tlbs.cpus[op.cpu].loaded_mm) for op in self.ops
               if op.name in HOT_OPS}
        if not mms:
            return []
        hot = []
        for f in self.lru_frames():
            for mm_id, _vp in self.mem.rmap[f]:
                if id(self.mms[mm_id]) in mms:
                    hot.append(f)
                    break
        return hot

    def frame_of(self, mm_id: int, vpage: int):
        pte = self.mms[mm_id].ptes[vpage]
        return pte.frame if pte.kind == PRESENT else None

    def check_quiescent(self) -> None:
        """C1 over every entry (call when nothing is in flight), then the model's own
        bookkeeping: every frame and swap slot accounted for (conformance/accounting.py; a
        MODEL ERROR where it is not)."""
        self.oracle.check_all()
        if not self.ops and (why := unaccounted(self)) is not None:  # only when quiescent
            raise self._model_error(f"frame accounting: {why}")


def _kernel_fields(op) -> tuple:
    """What ``init_task`` may not change of its task. Not ``_label``: reading ``task.label``
    (a log line, ``repr(task)``) makes it from a function once, and that read failed a
    correct init_task (a review, 2026-12-06)."""
    return op.id, op.cpu, op.name, op.args, op.user_task, op.path


def _boots_plainly(cfg) -> bool:
    """Does ``cfg`` boot with the base protocol's hooks (which do nothing)?"""
    try:
        Machine(Protocol, cfg).dispose()
    except Exception:  # noqa: BLE001 - the model's own boot failing: not the protocol's
        return False
    return True


def _whose(exc: BaseException) -> bool:
    """Must :meth:`Machine.protocol_fault` say whose ``exc`` is, raised in a hook's call or an
    operation's step? Yes unless it is a verdict (a :class:`Violation` the oracle found, a
    :class:`ProtocolError`). Our own :class:`ModelError` and :class:`UsageError` too: one
    raised while a hook of the protocol is on the stack is its fault (its double free in
    the allocator, its ``raise UsageError(...)``), which was a MODEL ERROR, or "reproducer
    does not apply" and a litmus file's line blamed. A KeyboardInterrupt only where no
    signal came (:func:`conformance.interrupts.users`: a hook's own ``raise``); Ctrl-C is
    the user's."""
    if isinstance(exc, KeyboardInterrupt):
        return not users(exc)
    return not isinstance(exc, Failure) or isinstance(exc, ModelError)


def _forks_into(op, mm) -> bool:
    """Is ``op`` a fork whose child is being made in ``mm``'s slot (no exit of it meanwhile)?"""
    return op.name == "fork" and op.args[0] == mm.id


def _vrange(start: int, npages: int) -> str:
    return f"v{start}..v{start + npages - 1}"


def _folios(name: str, frames: tuple, nested_name: str = "", nested: tuple = ()) -> str:
    """The label of an operation over a batch of folios, and of its nested reclaim pass:
    ``reclaim[pfn4,pfn0]+nested[pfn1]``."""
    label = f"{name}[{','.join(f'pfn{f}' for f in frames)}]"
    return label + _folios("+" + nested_name, nested) if nested else label


#: protocol class -> :func:`_protocol_files` (every Machine asks; the answer never changes
#: once every class of the MRO has its module in sys.modules); weak, as the other caches
#: keyed by a protocol class (load_protocol makes a fresh class per call)
_PROTO_FILES = weakref.WeakKeyDictionary()


def _protocol_files(proto_cls) -> frozenset:
    """The protocol's own files (absolute paths): the module of each class of its MRO that
    is not flushcheck's, and the file of each hook function it has, which a helper module
    may define (``try_to_unmap_flush = helpers.flush``: a frame of it is the protocol's, and
    the watchdog must see it)."""
    got = _PROTO_FILES.get(proto_cls)
    if got is not None:
        return got
    files = set()
    complete = True
    for c in proto_cls.__mro__:
        mod = sys.modules.get(c.__module__)
        complete = complete and mod is not None
        f = getattr(mod, "__file__", None)
        if f and not os.path.abspath(f).startswith(_SUITE_DIR):
            files.add(os.path.abspath(f))
            PROTOCOL_FILES.add(f)  # as code objects name it: what the watchdog looks for
    for name in hook_names():
        code = hook_code(getattr(proto_cls, name, None))
        f = code.co_filename if code is not None else "<"
        if not f.startswith("<") and not os.path.abspath(f).startswith(_SUITE_DIR):
            files.add(os.path.abspath(f))
            PROTOCOL_FILES.add(f)
    got = frozenset(files)
    if complete:
        _PROTO_FILES[proto_cls] = got
    PROTOCOL_FILES.update(got)  # (conformance/watchdog.py)
    return got


#: protocol class -> :func:`_misdeclared` (weak: :data:`_PROTO_FILES`)
_MISDECLARED = weakref.WeakKeyDictionary()


def _misdeclared(proto_cls, files: frozenset) -> frozenset:
    """The ``__qualname__`` of each function the protocol's own files define that our code
    could call with parameters it does not take: a hook (or ``__init__``) whose parameters
    differ from :class:`~conformance.protocol.Protocol`'s. A hook declared as the base class
    declares it is called right, so a ``TypeError`` naming it would be a flushcheck bug."""
    got = _MISDECLARED.get(proto_cls)
    if got is None:
        from .protocol import Protocol

        names = set()
        for c in proto_cls.__mro__:
            mod = sys.modules.get(c.__module__)
            f = getattr(mod, "__file__", None)
            if f is None or os.path.abspath(f) not in files:
                continue
            for attr, v in vars(c).items():
                v = getattr(v, "__func__", v)  # staticmethod, classmethod
                base = vars(Protocol).get(attr)
                if hasattr(v, "__code__") and callable(base) and _params(v) != _params(base):
                    names.add(v.__qualname__)
        got = _MISDECLARED[proto_cls] = frozenset(names)
    return got


def _params(fn) -> list:
    """What a positional call needs of ``fn``: each parameter's kind and whether it has a
    default (names do not matter: the kernel passes hook arguments by position)."""
    try:
        return [(p.kind, p.default is p.empty) for p in inspect.signature(fn).parameters.values()]
    except (TypeError, ValueError):
        return []


def _protocol_frame(exc: BaseException, files: frozenset):
    """The innermost traceback entry in one of ``files`` (the protocol's) of ``exc``, or of
    the first exception of its chain (``__cause__``, else ``__context__``) that has one; None
    when they passed through none of them. The chain: a hook's ``StopIteration`` leaves the
    kernel's generator as a ``RuntimeError`` raised there, caused by the hook's."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb, hit = exc.__traceback__, None
        while tb is not None:
            if os.path.abspath(tb.tb_frame.f_code.co_filename) in files:
                hit = tb
            tb = tb.tb_next
        if hit is not None:
            return hit
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return None


def _where(exc: BaseException, files: frozenset) -> str:
    """Where in the protocol's own files ``exc`` was raised: `` (at FILE:LINE in FUNCTION)``
    of the innermost such frame, the line a protocol's author goes to; "" when none is
    (a hook called with the wrong parameters never ran)."""
    tb = _protocol_frame(exc, files)
    if tb is None:
        return ""
    code = tb.tb_frame.f_code
    return f" (at {os.path.basename(code.co_filename)}:{tb.tb_lineno} in {code.co_name})"


def _raised_in(exc: BaseException, files: frozenset) -> bool:
    return _protocol_frame(exc, files) is not None


def _close_op(op) -> None:
    """Close ``op``'s generator chain where it stands; a hook it paused at an automatic point
    is unwound by :func:`conformance.hookpoints._drive` (``GeneratorExit`` there kills the
    hook's greenlet). Whatever the unwinding raises is dropped: the operation, and usually
    its machine, are thrown away."""
    if op.gen is not None:
        try:
            op.gen.close()
        except Exception:  # noqa: BLE001 - nothing of the dropped operation is kept
            pass
