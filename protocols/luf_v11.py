"""LUF v11 (2024-05-31, "[PATCH v11 00/12]", Byungchul Park): v10 plus a flush in
``file_end_write()`` when a file is updated by ``write()`` (kernel-notes 4.1, 4.6).

Dave Hansen's answer (v11 09/12): an unconditional global flush in the
``sys_write()`` path does not scale, and a read-only plus a writable mapping of one
file changes the file without ``write()`` (review scenario 3). Both objections
are about v11 as posted; this module keeps v10's favourable reading of the fault
give-up (every writable PTE a fault installs flushes, atomically with the install) and
v10's give-up at mmap of a writable mapping; :mod:`protocols.luf_v11_posted` is v11 as
posted (``need_luf_flush`` only, no mmap flush, ``pte_write``-only eligibility), and
docs/LUF.md shows both rows.

Lazyfree folios are taken for LUF as in every posting (``LufBase.LUF_LAZYFREE``): the
random machine finds the lazyfree C1 of docs/LUF.md (scenario 6);
:mod:`protocols.luf_lazyfree_fix` is this module with the fix.
"""
from protocols.luf_v10 import LufV10


class LufV11(LufV10):
    """LUF v11: v10 + ``luf_flush`` in ``file_end_write``."""

    def file_end_write(self, task, file, pgoff) -> None:
        """``file_end_write()``: the file changed, give up LUF."""
        self.luf_flush_all(task)

#: the rule the fuzzer must find violated (tests/test_protocols.py, docs/LUF.md): the
#: lazyfree discard (litmus/luf-6-lazyfree-discard.litmus)
EXPECTED_VIOLATION = "C1"
