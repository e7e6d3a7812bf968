"""The kernel's memory-management paths, one module per kernel file they model.

Each operation is a generator; each ``yield`` is an interleaving point (see
:mod:`conformance.mm.task`). :class:`Kernel` is the machine's kernel: the paths of every
module below, mixed into one object that holds the machine's state.

Where a kernel function is modelled: ``grep -rn NAME conformance/`` (a method is named as
the kernel names it, or its docstring opens with the kernel function it models;
``tests/test_layout.py`` checks a list of them).

=========================  ================================  ==========================================
module                     kernel file (Linux 6.12)          paths
=========================  ================================  ==========================================
``mm.task``                include/linux/sched.h             ``Op`` (the task; an operation in flight),
                                                             ``hook``
``mm.mm_types``            include/linux/mm_types.h          ``Mm``, ``Vma``, ``Pte``, ``Lock``, ``RwSem``
``mm.locking``             kernel/locking/rwsem.c,           ``down_read``/``down_write``, ``mmap_*_lock``,
                           include/linux/mmap_lock.h         rmap locks, ``invalidate_lock``, the PTL
``mm.page_alloc``          mm/page_alloc.c, mm/swap.c        ``alloc_frame`` (S1), ``free_frames``,
                                                             ``copy_out`` (S2), ``last_reference``
``mm.mmu_gather``          mm/mmu_gather.c                   ``tlb_batch_pages_flush``
``mm.memory.fault``        mm/memory.c                       ``handle_mm_fault``, ``do_anonymous_page``,
                                                             ``do_file_fault``, ``do_wp_page``,
                                                             ``wp_page_copy``
``mm.memory.swapin``       mm/memory.c                       ``do_swap_page``
``mm.memory.zap``          mm/memory.c                       ``zap_pte_range``, ``unmap_mapping_range``
``mm.memory.copy``         mm/memory.c                       ``copy_pte_range``
``mm.rmap``                mm/rmap.c                         ``try_to_unmap_one``, ``folio_mkclean``,
                                                             ``rmap_walk``
``mm.vmscan``              mm/vmscan.c                       ``shrink_node``, ``shrink_folio_list``
``mm.migrate``             mm/migrate.c                      ``migrate_pages_batch``,
                                                             ``remove_migration_ptes``
``mm.filemap``             mm/filemap.c                      ``filemap_get_folio``, ``write()``
``mm.page_writeback``      mm/page-writeback.c               ``folio_write_one`` (writeback)
``mm.truncate``            mm/truncate.c                     hole punch
``mm.vma``                 mm/vma.c                          ``munmap``, ``unmap_region``
``mm.mmap``                mm/mmap.c                         ``mmap``, ``exit_mmap``
``mm.mprotect``            mm/mprotect.c                     ``mprotect``, ``change_pte_range``
``mm.madvise``             mm/madvise.c                      ``madvise``, its PTE walkers
``mm.mremap``              mm/mremap.c                       ``mremap``, ``move_ptes``
``mm.fork``                kernel/fork.c                     ``dup_mmap``
=========================  ================================  ==========================================

The hardware these paths drive (TLBs, the arch flush primitives, physical frames) is
:mod:`conformance.hw`; the flush protocol under test is called through its hooks
(:class:`conformance.protocol.Protocol`) where the kernel calls them.
"""
from __future__ import annotations

from .filemap import FilemapPaths
from .fork import ForkPaths
from .locking import LockingPaths
from .madvise import MadvisePaths
from .memory.copy import CopyPaths
from .memory.fault import FaultPaths
from .memory.swapin import SwapinPaths
from .memory.wp import WpPaths
from .memory.zap import ZapPaths
from .migrate import MigratePaths
from .mmap import MmapPaths
from .mmu_gather import MmuGatherPaths
from .mprotect import MprotectPaths
from .mremap import MremapPaths
from .page_alloc import PageAllocPaths
from .page_writeback import PageWritebackPaths
from .rmap import RmapPaths
from .truncate import TruncatePaths
from .task import Op, hook
from .vma import VmaPaths
from .vmscan import VmscanPaths

__all__ = ["Kernel", "Op", "hook"]


class Kernel(LockingPaths, PageAllocPaths, MmuGatherPaths, RmapPaths, VmscanPaths, MigratePaths,
             FaultPaths, WpPaths, SwapinPaths, ZapPaths, CopyPaths, FilemapPaths, PageWritebackPaths, TruncatePaths,
             VmaPaths, MmapPaths, MprotectPaths, MadvisePaths, MremapPaths, ForkPaths):
    """The kernel paths of the simulated machine: one object, the paths of every module
    above mixed in (no two define the same method: ``tests/test_layout.py``)."""

    def __init__(self, machine) -> None:
        m = machine
        self.m = m
        self.mem = m.mem
        self.mms = m.mms
        self.arch = m.arch
        self.trace = m.trace
        self.oracle = m.oracle

    @property
    def proto(self):
        return self.m.proto

    def _error(self, op, mm, text: str, write: bool) -> None:
        """A syscall fails before changing anything: result "error", drop ``mmap_lock``."""
        self.trace.msg(op, text)
        op.result = "error"
        (self.mmap_write_unlock if write else self.mmap_read_unlock)(op, mm)

    @staticmethod
    def _touch_range(op, mm, start: int, end: int) -> None:
        for vp in range(start, end):
            op.touched_vps[(mm.id, vp)] = None
