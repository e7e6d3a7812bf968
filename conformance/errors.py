"""Failure types. A :class:`Violation` is the oracle's verdict; a :class:`ProtocolError`
is a protocol that raised, looped or broke the hook rules; :class:`UsageError`
is bad user input (one-line message, non-zero exit, no traceback)."""
from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: unknown protocol, corrupt reproducer, malformed module."""


class Failure(AssertionError):
    """Base of everything that fails a run (an AssertionError so Hypothesis shrinks it)."""

    rule = "?"
    machine = None
    step = 0

    def headline(self) -> str:
        return str(self)

    def report(self, last: int | None = 60) -> str:
        """The verdict, the derived configuration and the per-CPU timeline."""
        m = self.machine
        out = [self.headline()]
        if m is not None and isinstance(self, Violation):
            from .guard import ALLOWED, kernel_write

            wrote = kernel_write(self)  # the verdict follows from a hook's write, not a flush
            if wrote is not None:
                out.append(f"CAUSE: {wrote}; this verdict follows from that write: {ALLOWED}")
        if m is not None:
            out.append(f"protocol: {m.proto.name}   config: {m.cfg.describe()}")
            out.append("")
            out.append(m.trace.timeline(m.cfg.ncpus, last=last, actions=m.actions,
                                        also=getattr(self, "cpus", ())))
        return "\n".join(out)


class Violation(Failure):
    """An oracle rule broken: rule, step, CPUs, mm, page, frame, expected and observed."""

    def __init__(self, rule, text, *, cpus=(), mm=None, vpage=None, frame=None,
                 expected=None, observed=None):
        self.rule = rule
        self.text = text
        self.cpus = tuple(cpus)
        self.mm = mm
        self.vpage = vpage
        self.frame = frame
        self.expected = expected
        self.observed = observed
        super().__init__(f"{rule}: {text}")

    def headline(self) -> str:
        where = []
        if self.cpus:
            where.append("CPU" + ",".join(str(c) for c in self.cpus))
        if self.mm is not None:
            where.append(f"mm{self.mm}")
        if self.vpage is not None:
            where.append(f"v{self.vpage}")
        if self.frame is not None:
            where.append(f"pfn{self.frame}")
        exp = ""
        if self.expected is not None or self.observed is not None:
            exp = f" (expected {self.expected}, observed {self.observed})"
        return f"VIOLATION {self.rule} at step {self.step} [{' '.join(where)}]: {self.text}{exp}"

    def __reduce__(self):
        """Picklable, as a worker's exception crosses to the parent (the default pickling
        calls ``__init__`` with the message alone, which fails in the parent, and a process
        pool then reports the whole pool broken); the machine does not travel.

        Example::

            >>> import pickle
            >>> v = S3Violation("S3", "munmap returned", cpus=(0,), mm=0, vpage=2)
            >>> v.step = 7
            >>> pickle.loads(pickle.dumps(v)).headline() == v.headline()
            True
        """
        kw = dict(cpus=self.cpus, mm=self.mm, vpage=self.vpage, frame=self.frame,
                  expected=self.expected, observed=self.observed)
        return _rebuilt, (self.__class__, self.rule, self.text, kw, self.step)


class S1Violation(Violation):
    """S1 frame reuse. One class per rule, so Hypothesis tells the rules apart as distinct
    bugs (with ``report_multiple_bugs=False`` its shrinker may still move to another rule
    when that gives a smaller example)."""


class S2Violation(Violation):
    """S2 copy-out."""


class S3Violation(Violation):
    """S3 syscall return."""


class C1Violation(Violation):
    """C1 quiescent coherence."""


class O1Violation(Violation):
    """O1 observation (and O1-strict)."""


VIOLATION_TYPES = {"S1": S1Violation, "S2": S2Violation, "S3": S3Violation,
                   "C1": C1Violation, "O1": O1Violation, "O1-strict": O1Violation}


class ProtocolError(Failure):
    """The protocol under test raised, looped, or broke the hook rules."""

    rule = "PROTOCOL-ERROR"

    def headline(self) -> str:
        return f"PROTOCOL ERROR at step {self.step}: {self}"


class HookRuleBroken(Exception):
    """A hook broke a rule of the hook API in a way no frame of it shows: the model found
    it right after the hook returned (it changed the locks its task holds, it returned a
    coroutine or a value where None is due). Always the protocol's fault
    (``Machine.protocol_fault``): a protocol error naming the hook, where the kernel code
    that tripped over it later was a MODEL ERROR (a lock list that no longer holds what
    ``unlock`` drops, a deadlock on a lock nobody holds any more), or nothing at all."""


class ModelError(Failure):
    """An internal inconsistency of the simulated machine: a flushcheck bug, never a verdict."""

    rule = "MODEL-ERROR"

    def headline(self) -> str:
        return f"MODEL ERROR (a flushcheck bug, please report) at step {self.step}: {self}"

    @classmethod
    def uncaught(cls, exc: BaseException, machine) -> "Failure":
        """``exc``, an exception that is no :class:`Failure`, as a ModelError of ``machine``
        (a ProtocolError when the protocol is at fault, ``Machine.protocol_fault``: one
        raised outside an operation's step, which makes those of a step ProtocolErrors
        already): every runner (the walk, shrinking, replay) reports it so, never as a
        crash.

        Example::

            >>> ModelError.uncaught(TypeError("x"), None).args[0]
            'uncaught TypeError: x'
        """
        fault = getattr(machine, "protocol_fault", None)
        if fault is not None and fault(exc):  # raised outside an operation's step (a
            # context switch, an allocation): the protocol's all the same
            err = ProtocolError(f"protocol {machine.proto.name}: {type(exc).__name__}: "
                                f"{describe(exc)}")
            err.__cause__ = exc
            machine.failed = True
        else:
            err = cls(f"uncaught {type(exc).__name__}: {describe(exc)}")
        err.machine = machine
        err.step = machine.trace.step if machine is not None else None
        if isinstance(err, ModelError) and machine is not None:
            from .guard import blame  # a hook that wrote kernel state: the protocol's error

            return blame(err, getattr(machine, "failing_op", None))
        return err


def describe(exc: BaseException) -> str:
    """``str(exc)`` on one line, or a stand-in when the exception's ``__str__`` raises: a
    protocol's own exception class may, and its report must be written all the same (it was
    a traceback, in the middle of turning the exception into a protocol error). A message of
    several lines keeps its first and says how many it left out; a long one is cut at
    :data:`DESCRIBE_MAX` characters (a hook's 100-line message filled the headline of every
    report: a review, 2026-12-05).

    Example::

        >>> class Mute(Exception):
        ...     def __str__(self):
        ...         raise ValueError("no str")
        >>> describe(Mute()), describe(KeyError("k"))
        ('<Mute.__str__ raised ValueError>', "'k'")
        >>> describe(ValueError("bad state\\nline 2\\nline 3"))
        'bad state [and 2 more lines]'
    """
    try:
        text = str(exc)
    except Exception as inner:  # noqa: BLE001 - whatever it raises, the report goes on
        return f"<{type(exc).__name__}.__str__ raised {type(inner).__name__}>"
    if "\n" in text or "\r" in text:
        lines = [ln for ln in text.splitlines() if ln.strip()] or [""]
        more = len(lines) - 1
        text = lines[0] + (f" [and {more} more line{'s' if more != 1 else ''}]" if more else "")
    if len(text) > DESCRIBE_MAX:
        text = text[:DESCRIBE_MAX - 3] + "..."
    return text


#: the longest exception message a report repeats (:func:`describe`)
DESCRIBE_MAX = 400


def _rebuilt(cls, rule, text, kw, step):
    """A :class:`Violation` unpickled (:meth:`Violation.__reduce__`)."""
    v = cls(rule, text, **kw)
    v.step = step
    return v


def unwritten(what: str, path: str, exc: OSError) -> str:
    """The line saying that output ``what`` (a reproducer, a certificate, ...) could not be
    written at ``path`` after a run: the path and the OS error, and the file the error
    names where it is another (a directory made on the way, a file copied).

    Example::

        >>> unwritten("reproducer", "r/x.json", IsADirectoryError(21, "Is a directory", "r/x.json"))
        'cannot write the reproducer r/x.json: Is a directory'
    """
    where = path if exc.filename in (None, path) else f"{path} ({exc.filename})"
    return f"cannot write the {what} {where}: {exc.strerror or exc}"

