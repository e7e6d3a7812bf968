"""The two model/oracle bugs of issue "Sound verdicts", as patches that put them back.

Used by the teeth tests (tests/test_soundness_fixes.py) and by bench/soundness_power.py,
which checks that the soundness campaign would have found them. Also
:func:`undo_in_source`, which puts back a later model fix by editing one line of its
method's source (tests/test_soundness_fixes.py, tests/test_model_gaps.py).
"""
import inspect
import sys
import textwrap

from conformance.oracle import Oracle
from conformance.mm.mm_types import PRESENT

FIXED_CHECK_S3 = Oracle.check_s3


def old_s3_frame(self, op, mm, start, end, syscall):
    """``Oracle.check_s3`` with the frame-based madvise rule it replaced: an entry of a slot
    madvise walked must map the frame its PTE maps now."""
    if not syscall.startswith("madvise"):
        return FIXED_CHECK_S3(self, op, mm, start, end, syscall)
    for vpage in range(start, end):
        pte = mm.ptes[vpage]
        cur = pte.frame if pte.kind == PRESENT else None
        if (mm.id, vpage) in op.s3_visits:
            for c, e in self.m.tlbs.entries_for(mm.id, vpage):
                if e.frame != cur:
                    self._fail_s3(op, mm, vpage, c, e, syscall, "old frame rule")


def skip_dirty_flush_if_gathered(orig):
    """``try_to_unmap_flush_dirty`` as if reclaim kept a gathered folio before calling it
    (the old order): no flush while the task holds a gathered folio isolated."""
    def try_to_unmap_flush_dirty(self, task):
        mem = self.free_to_allocator.__self__.mem  # the Kernel's free_frames
        if any(mem.gathered[f] and mem.isolated[f] is task for f in range(len(mem.gathered))):
            return None
        return orig(self, task)
    return try_to_unmap_flush_dirty


def undo_in_source(monkeypatch, cls, name: str, fix: str, old: str) -> None:
    """Install ``cls.name`` with the text ``fix`` (once in its source) replaced by ``old``:
    the model as it was before that fix, for a test that the fix is what makes it pass."""
    fn = getattr(cls, name)
    src = textwrap.dedent(inspect.getsource(fn))
    assert src.count(fix) == 1, f"{cls.__name__}.{name} no longer reads {fix!r}"
    module = sys.modules[fn.__module__]
    ns: dict = {}
    exec(compile(src.replace(fix, old), module.__file__, "exec"), module.__dict__, ns)  # noqa: S102
    monkeypatch.setattr(cls, name, ns[name])
