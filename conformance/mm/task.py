"""include/linux/sched.h (Linux 6.12): the task an operation runs as (``struct task_struct``),
and the convention every kernel path follows.

Each operation is a generator; each ``yield`` is an interleaving point where the
scheduler may run another CPU, a user access or a hardware event. Locks are
real: an operation that wants a held lock yields with ``op.blocked_on`` set and
is not runnable until the lock is free. Lock order, as in the kernel:
``mmap_lock`` > folio lock > PTL.

Each path names the kernel function it models; simplifications are stated
where they are made (summary in docs/model.md).
"""
from __future__ import annotations

from types import GeneratorType


class Op:
    """A kernel operation in flight on a CPU; also the task (``current``) it runs as.

    ``touched_*`` record every PTE slot (mm, vpage), location and frame the
    operation changed or depends on: the oracle treats those as "in flight"
    (C1, O1) until the operation ends, then checks them.

    For S3 at syscall return (docs/oracle.md section 2): ``s3_visits[(mm, vpage)]`` is the
    PTE-instance clock (``Machine.pte_insts``) when the walk visited that slot under its
    PTL, after ``flush_tlb_batched_pending``: every instance live in the slot up to the
    visit has a number at most that; ``s3_wd`` lists ``(cpu, mm, vpage, entry)``: the
    writable dirty entries MADV_FREE saw over a PTE it left clean.

    ``path``: the kernel path the task is in now, for protocol hooks that decide by
    caller: "fault", "reclaim" (``shrink_folio_list``, also when ``madvise(MADV_PAGEOUT)``'s
    ``reclaim_pages`` runs it: restored to "madvise" after), "migrate"
    (``migrate_pages_batch``), "munmap", "mmap" (``MAP_FIXED`` unmaps first), "mprotect",
    "madvise", "mremap", "write", "writeback", "truncate" (hole punch), "exit"
    (``exit_mmap``, then exec), "fork" (``dup_mmap``). It starts as the operation's name.
    """

    __slots__ = ("id", "cpu", "name", "args", "gen", "blocked_on", "held", "tlb_ubc",
                 "touched_vps", "touched_locs", "touched_frames", "steps", "_label", "result",
                 "s3_visits", "s3_wd", "path", "returned", "user_task")

    def __init__(self, op_id: int, cpu: int, name: str, args: tuple) -> None:
        self.id = op_id
        self.cpu = cpu
        self.name = name
        self.args = args
        self.gen = None
        self.blocked_on = None
        self.held: list = []
        self.tlb_ubc = None
        self.touched_vps: dict = {}
        self.touched_locs: dict = {}
        self.touched_frames: dict = {}
        self.steps = 0
        self._label = name  # a string, or a function making it (built only when shown)
        self.result = None
        self.s3_visits: dict = {}  # (mm_id, vpage) -> PTE-instance clock at the walk's visit
        self.s3_wd: list = []  # (cpu, mm_id, vpage, entry): W+D over a PTE MADV_FREE left clean
        self.path = name  # the kernel path now (task.path for hooks); nested reclaim sets it
        self.returned = False  # its ": return" row is logged (Machine.log_return)
        self.user_task = False  # run by a user task, not a kernel thread (Machine._start)

    @property
    def label(self) -> str:
        lb = self._label
        if lb.__class__ is not str:
            lb = self._label = lb()
        return lb

    def __str__(self) -> str:
        return self.label

    def runnable(self) -> bool:
        b = self.blocked_on
        return b is None or b.can_take(self)

    def __repr__(self) -> str:
        return f"{self.label}@CPU{self.cpu}"


def hook(result):
    """Run a protocol hook's interleaving points, if it has any (``yield from hook(...)``)."""
    if result.__class__ is GeneratorType:
        return (yield from result)
    return result
