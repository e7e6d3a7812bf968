"""LUF v11 (2024-05-31, "[PATCH v11 00/12]", Byungchul Park): v10 plus a flush in
``file_end_write()`` when a file is updated by ``write()`` (kernel-notes 4.1, 4.6).

Dave Hansen's answer (v11 09/12): an unconditional global flush in the
``sys_write()`` path does not scale, and a read-only plus a writable mapping of one
file changes the file without ``write()`` (review scenario 3). Both objections
are about v11 as posted; this module keeps v10's favourable reading of the fault
give-up (every writable PTE a fault installs flushes, atomically with the install).
"""
from protocols.luf_v10 import LufV10


class LufV11(LufV10):
    """LUF v11: v10 + ``luf_flush`` in ``file_end_write``."""

    def file_end_write(self, task, file, pgoff) -> None:
        """``file_end_write()``: the file changed, give up LUF."""
        self.luf_flush_all(task)
