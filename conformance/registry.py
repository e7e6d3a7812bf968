"""Protocol discovery: a protocol can come from anywhere, with no registration.

:func:`load_protocol` takes a *protocol reference*, one of (tried in this order):

1. a module name in ``protocols/`` (``linux``, ``luf_v12``): the built-in protocols;
2. a path to a Python file (``path/to/my_flush.py``, ``./my_flush.py``): anything
   ending in ``.py`` or containing a path separator;
3. ``module:Class`` (``mypkg.flush:MyProtocol``): a class of an importable module;
4. the name of an entry point of the group ``flushcheck.protocols`` (a distribution
   declares ``[project.entry-points."flushcheck.protocols"] my_flush = "mypkg.flush"``,
   or ``"mypkg.flush:MyProtocol"``);
5. an importable dotted module name (``mypkg.flush``).

A *module* is a protocol when it defines (or names in ``PROTOCOL``) exactly one
subclass of :class:`conformance.protocol.Protocol`.

The protocol's display name (``cls.name``: reports, reproducer files, database keys):
the module name for a built-in, the file's stem for a file (``my_flush``), the class
name for ``module:Class`` (``MyProtocol``), the entry point's name for an entry point,
the last component for a dotted module. ``cls.ref`` is the reference string that loads
it again (a file's absolute path): what certify sends to a worker process, and what a
reproducer records so that ``flushcheck replay`` finds the protocol.

Bad input (unknown name, missing file, a syntax error, ``module:Class`` that is not a
Protocol subclass, an entry point that fails to import) is a :class:`UsageError`: one
line, no traceback.

Example::

    >>> "linux" in protocol_names()
    True
    >>> load_protocol("linux").name
    'linux'
    >>> load_protocol("protocols.linux:Linux").name
    'Linux'
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import pkgutil
import sys
import types

from .errors import UsageError, describe
from .protocol import Protocol
from .watchdog import PROTOCOL_FILES, patience

#: the entry-point group a distribution publishes its protocols under
ENTRY_POINT_GROUP = "flushcheck.protocols"


def _package():
    try:
        return importlib.import_module("protocols")
    except Exception as exc:  # pragma: no cover - broken install
        raise UsageError(f"cannot import the protocols package: {exc}") from None


def protocol_names() -> list[str]:
    """Names of every module in ``protocols/``, sorted.

    Example::

        >>> names = protocol_names()
        >>> names == sorted(names), [n for n in names if n.startswith("hist_2_1")][:2]
        (True, ['hist_2_11_madvise_relock', 'hist_2_1_zap_flush_after_unlock'])
    """
    pkg = _package()
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)
                  if not m.name.startswith("_"))


def entry_points() -> dict:
    """The entry points of the group ``flushcheck.protocols``, by name (first one wins).

    Example::

        >>> isinstance(entry_points(), dict)
        True
    """
    from importlib.metadata import entry_points as _eps

    out: dict = {}
    try:
        found = _eps(group=ENTRY_POINT_GROUP)
    except Exception:  # noqa: BLE001 - a broken distribution on sys.path
        return out
    for ep in found:
        out.setdefault(ep.name, ep)
    return out


def entry_point_names() -> list[str]:
    """Names of the protocols published under ``flushcheck.protocols``, sorted.

    Example::

        >>> entry_point_names() == sorted(entry_points())
        True
    """
    return sorted(entry_points())


def is_file_ref(ref: str) -> bool:
    """Is ``ref`` a path to a file (ends in ``.py`` or has a path separator)?

    Example::

        >>> is_file_ref("./my_flush.py"), is_file_ref("linux"), is_file_ref("a.b:C")
        (True, False, False)
    """
    return ref.endswith(".py") or os.sep in ref or (os.altsep is not None and os.altsep in ref)


def _is_protocol(obj) -> bool:
    """Is ``obj`` a protocol: a subclass of :class:`Protocol`, not ``Protocol`` itself (the
    base class, whose hooks are the interface, no flush policy to certify)?"""
    return inspect.isclass(obj) and issubclass(obj, Protocol) and obj is not Protocol


def _no_protocol(what: str, obj) -> UsageError:
    """The error for ``what`` (a ``module:Class``, a module's ``PROTOCOL``) naming ``obj``,
    no protocol: the same words wherever it is named.

    Example::

        >>> str(_no_protocol("m:C", 3))
        'm:C is not a subclass of conformance.protocol.Protocol'
        >>> str(_no_protocol("m:Protocol", Protocol))
        'm:Protocol is not a subclass of conformance.protocol.Protocol (it is that base class itself)'
    """
    return UsageError(f"{what} is not a subclass of conformance.protocol.Protocol"
                      + (" (it is that base class itself)" if obj is Protocol else ""))


def _protocol_of_module(mod, where: str):
    """The protocol class a module defines (``PROTOCOL``, or its one Protocol subclass).
    Read from the module's namespace: a module ``__getattr__`` that raises was a traceback
    (a review, 2026-12-05)."""
    cls = vars(mod).get("PROTOCOL")
    if cls is None:
        found = [c for _, c in inspect.getmembers(mod, inspect.isclass)
                 if _is_protocol(c) and c.__module__ == mod.__name__]
        if len(found) != 1:
            raise UsageError(f"protocol module {where} must define exactly one Protocol "
                             f"subclass (found {len(found)}) or set PROTOCOL")
        cls = found[0]
    if not _is_protocol(cls):  # Protocol itself too, as module:Class refuses it
        raise _no_protocol(f"{where}: PROTOCOL", cls)
    return cls


def _import(modname: str, where: str, what: str = "is malformed"):
    try:
        with _loading(modname):
            return importlib.import_module(modname)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - any import error (a sys.exit() at
        # import too, or any other BaseException the module raises) is the user's input
        raise UsageError(f"protocol module {where} {what}: "
                         f"{type(exc).__name__}: {_one_line(exc)}") from None


@contextlib.contextmanager
def _loading(modname: str):
    """The import of protocol module ``modname``: its file is the protocol's from its first
    line on (``watchdog.PROTOCOL_FILES``: a loop at its top level is stopped, its
    ``os._exit()`` refused), as a file protocol's is (:func:`_file_module`), and it has
    :data:`IMPORT_S` seconds."""
    if modname not in sys.modules:
        _watch_source(modname)
    with patience(IMPORT_S):
        yield


def _watch_source(modname: str) -> None:
    """Add the file of module ``modname`` to ``watchdog.PROTOCOL_FILES`` before it is
    imported, unless it is the standard library's (``os:path`` names no protocol),
    flushcheck's own (``conformance.protocol:Protocol``) or no file. Finding it may import
    its parent packages (what the import does first anyway)."""
    import sysconfig

    try:
        spec = importlib.util.find_spec(modname)
    except BaseException:  # noqa: BLE001 - a parent that fails: the import says so
        return
    origin = getattr(spec, "origin", None)
    if not isinstance(origin, str) or not os.path.isfile(origin):
        return
    skip = tuple(os.path.realpath(p) + os.sep for p in
                 [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"],
                  os.path.dirname(os.path.abspath(__file__))])  # and flushcheck's own
    if not os.path.realpath(origin).startswith(skip):
        PROTOCOL_FILES.add(origin)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"{exc.msg} (line {exc.lineno})"
    if isinstance(exc, SystemExit):
        return f"{exc.code!r} (it calls sys.exit() when imported)"
    return " ".join(describe(exc).split())


#: seconds a protocol file's top level may run before the watchdog stops it
IMPORT_S = 60


def _file_module(path: str):
    """Import the file at ``path`` once per process, as a module named after its stem and
    a hash of its absolute path (so two ``my_flush.py`` in different folders differ, and
    the class pickles by reference within the process)."""
    path = os.path.abspath(path)
    if os.path.isdir(path):  # it said "does not exist" of ``certify /tmp`` (a review, 2026-12-06)
        raise UsageError(f"protocol file {path} is a directory: give a protocol's .py file, a "
                         "name in protocols/ or module:Class")
    if not os.path.isfile(path):
        raise UsageError(f"protocol file {path} does not exist")
    stem = os.path.splitext(os.path.basename(path))[0]
    modname = f"flushcheck_file_{stem}_{hashlib.sha1(path.encode()).hexdigest()[:8]}"
    mod = sys.modules.get(modname)
    if mod is not None:
        return mod, stem, path
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"protocol file {path} is not a Python module")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    # its folder, at the end of sys.path: a helper module beside the file imports (as it
    # would for `python my_flush.py`), and nothing installed is shadowed by it
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.append(folder)
    # the protocol's own file from its first line on: a loop at its top level is stopped
    # by the watchdog (conformance/watchdog.py) as a hook's is, where it hung the command;
    # after IMPORT_S, not a hook's 5 s: a module may compute a table as it loads
    PROTOCOL_FILES.add(path)
    try:
        with patience(IMPORT_S):
            spec.loader.exec_module(mod)
    except KeyboardInterrupt:
        del sys.modules[modname]
        raise
    except BaseException as exc:  # noqa: BLE001 - its sys.exit() too: else certify would
        # end there, status 0 and no output, a silent PASS; any other BaseException (a
        # GeneratorExit, a class of its own) was a traceback
        del sys.modules[modname]
        raise UsageError(f"protocol file {path} is malformed: "
                         f"{type(exc).__name__}: {_one_line(exc)}") from None
    return mod, stem, path


def _resolve(ref: str):
    """``(class, display name, canonical reference)`` for a protocol reference."""
    if ref in protocol_names():
        mod = _import(f"protocols.{ref}", f"protocols/{ref}.py")
        return _protocol_of_module(mod, f"protocols/{ref}.py"), ref, ref
    if is_file_ref(ref):
        mod, stem, path = _file_module(ref)
        return _protocol_of_module(mod, path), stem, path
    if ":" in ref:
        modname, _, attr = ref.partition(":")
        if not modname or not attr:
            raise UsageError(f"protocol {ref!r}: module:Class needs both names "
                             "(e.g. protocols.linux:Linux)")
        if modname in protocol_names() and importlib.util.find_spec(modname) is None:
            # linux:Linux: the module is protocols.linux (a user review, 2026-12-07)
            raise UsageError(f"protocol {ref!r}: no module {modname}; "
                             f"did you mean protocols.{modname}:{attr}?")
        mod = _import(modname, modname, "cannot be imported")
        cls = mod
        for part in attr.split("."):
            cls = getattr(cls, part, None)
            if cls is None:
                raise UsageError(f"{ref}: module {modname} has no attribute {attr!r}")
        if not _is_protocol(cls):
            raise _no_protocol(ref, cls)
        return cls, attr.rsplit(".", 1)[-1], ref
    eps = entry_points()
    if ref in eps:
        ep = eps[ref]
        try:
            with _loading(ep.module):
                obj = ep.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a sys.exit() at import too, any other
            # BaseException of the module's
            raise UsageError(f"entry point {ref} = {ep.value} ({ENTRY_POINT_GROUP}) failed to "
                             f"import: {type(exc).__name__}: {_one_line(exc)}") from None
        if inspect.ismodule(obj):
            return _protocol_of_module(obj, f"{ep.value} (entry point {ref})"), ref, ref
        if _is_protocol(obj):
            return obj, ref, ref
        raise UsageError(f"entry point {ref} = {ep.value} is neither a protocol module nor "
                         "a Protocol subclass")
    if "." in ref and importlib.util.find_spec(ref.split(".")[0]) is not None:
        mod = _import(ref, ref, "cannot be imported")
        return _protocol_of_module(mod, ref), ref.rsplit(".", 1)[-1], ref
    import difflib

    modules, points = protocol_names(), entry_point_names()
    near = difflib.get_close_matches(ref, modules + points, n=1, cutoff=0.7)
    known = modules + [f"{n} (entry point)" for n in points]
    raise UsageError(f"unknown protocol {ref!r}"
                     + (f" (did you mean {near[0]!r}?)" if near else "")
                     + f" (known: {', '.join(known)}; or a file.py, "
                     "module:Class, or an entry point of flushcheck.protocols)")


def load_protocol(ref: str):
    """The protocol class a reference names (see the module docstring); :class:`UsageError`
    if there is none.

    The class returned is a fresh subclass carrying ``name`` (display name) and ``ref``
    (the reference that loads it again), so a module that imports another protocol's
    class keeps its own name.

    Example::

        >>> cls = load_protocol("linux")
        >>> cls.name, cls.ref, cls.__mro__[1].__name__
        ('linux', 'linux', 'Linux')
    """
    if not isinstance(ref, str) or not ref:
        raise UsageError(f"a protocol reference must be a non-empty string, not {ref!r}")
    cls, name, canonical = _resolve(ref)
    return _checked(cls, name, canonical, canonical)


def _checked(cls, name: str, ref: str | None, where: str):
    """``cls`` checked (once per class and process) and subclassed with ``name`` and ``ref``:
    what :func:`load_protocol` and :func:`load_class` return."""
    if cls not in _CHECKED:
        _check_expected(cls, where)
        _check_constants(cls, where)
        _check_hooks(cls, where)
        _warn_misspelt(cls, name)
        _CHECKED.add(cls)
    try:
        return type(cls.__name__, (cls,), {"name": name, "ref": ref,
                                           "__module__": cls.__module__, "__doc__": cls.__doc__})
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - its __init_subclass__ (or metaclass)
        # refuses a subclass, which flushcheck makes of every protocol: a traceback, exit 3
        raise UsageError(f"protocol {where} cannot be subclassed (flushcheck runs a "
                         f"subclass of it): {type(exc).__name__}: {_one_line(exc)}") from None


def load_class(cls):
    """:func:`load_protocol` for a class object (what the pytest plugin's ``fuzz()`` may be
    given): the same checks, and a fresh subclass named after the class, where the class
    itself carries the name of its base (``base``: every such class shared one database key
    and one reproducer name, a review of 2026-12-06). A class that its module holds at its
    qualified name is loaded as ``module:Class``, so that its ``ref`` loads it again in
    another process (a replay); one no module holds (made in a function or by ``exec``, or
    in ``__main__``, another script in another process) gets ``ref`` None. A class either
    function returned comes back as it is. Not a protocol class: :class:`UsageError`.

    Example::

        >>> from protocols.linux import Linux
        >>> cls = load_class(Linux)
        >>> cls.name, cls.ref, load_class(cls) is cls
        ('Linux', 'protocols.linux:Linux', True)
        >>> def made():
        ...     class Mine(Linux):
        ...         pass
        ...     return Mine
        >>> load_class(made()).name, load_class(made()).ref
        ('Mine', None)
        >>> load_class(len)
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: <built-in function len> is not a subclass of conformance.protocol.Protocol
    """
    if not _is_protocol(cls):
        raise _no_protocol(shown(cls), cls)
    if "ref" in vars(cls) and len(cls.__bases__) == 1 and cls.__bases__[0] in _CHECKED:
        return cls  # made by load_protocol or load_class: checked and named
    ref = _class_ref(cls)
    if ref is not None:
        return load_protocol(ref)
    return _checked(cls, cls.__name__, None, f"{cls.__module__}.{cls.__qualname__}")


def _class_ref(cls) -> str | None:
    """``module:Class`` that loads ``cls`` itself again, or None: a class that its module
    does not hold at its ``__qualname__``, one in ``__main__``, or one of a protocol file
    (its module's name, ``flushcheck_file_...``, exists in this process alone). Read from
    the namespaces: a module ``__getattr__`` may raise."""
    modname = cls.__module__
    mod = sys.modules.get(modname) if isinstance(modname, str) else None
    if mod is None or modname == "__main__" or modname.startswith("flushcheck_file_"):
        return None
    obj = mod
    for part in cls.__qualname__.split("."):
        obj = vars(obj).get(part) if hasattr(obj, "__dict__") else None
    return f"{modname}:{cls.__qualname__}" if obj is cls else None


#: the protocol classes :func:`load_protocol` checked (:func:`_check_expected`,
#: :func:`_warn_misspelt`): once per class and process, so a warning is printed once
_CHECKED: set = set()


def rule_names() -> tuple:
    """The rules a protocol may declare it violates (``EXPECTED_VIOLATION``): the oracle's.

    Example::

        >>> rule_names()
        ('S1', 'S2', 'S3', 'C1', 'O1', 'O1-strict')
    """
    from .errors import VIOLATION_TYPES

    return tuple(VIOLATION_TYPES)


def _check_expected(cls, where: str) -> None:
    """:class:`UsageError` unless the ``EXPECTED_VIOLATION`` of ``cls`` and of its module
    (what :func:`conformance.pytest_plugin.expected_violation` reads) is None or a rule: a
    misspelt one (``"S9"``) would make the known-bug tests expect a verdict that never
    comes, or pass for the wrong reason. Likewise the module's ``CORRECT``, which the
    soundness campaign reads as ``is True``: ``CORRECT = "yes"`` left the protocol out of
    it without a word (a review, 2026-12-05). The module's names are read from its
    namespace, past a module ``__getattr__`` (one that raised was a traceback)."""
    mod = sys.modules.get(cls.__module__)
    names = vars(mod) if mod is not None else {}
    for rule, what in ((getattr(cls, "EXPECTED_VIOLATION", None), f"class {cls.__name__}"),
                       (names.get("EXPECTED_VIOLATION"), "module")):
        if rule is not None and rule not in rule_names():
            raise UsageError(f"protocol {where}: {what} EXPECTED_VIOLATION = {rule!r} is not a "
                             f"rule (one of {', '.join(rule_names())}, or None)")
    correct = names.get("CORRECT")
    if correct is not None and type(correct) is not bool:
        raise UsageError(f"protocol {where}: module CORRECT = {shown(correct)} is not True or "
                         "False")
    expected = getattr(cls, "EXPECTED_VIOLATION", None) or names.get("EXPECTED_VIOLATION")
    if correct is True and expected is not None:
        # the soundness campaign took it for correct, the test plugin expected its S3, and
        # certify printed "FAIL: S3 (as the module declares)" (a user review, 2026-12-06)
        raise UsageError(f"protocol {where}: CORRECT = True and EXPECTED_VIOLATION = "
                         f"{expected!r} contradict each other (a correct protocol violates no "
                         "rule): keep one")


#: the policy constants a protocol may set instead of overriding a hook (conformance/protocol.py)
CONSTANTS = ("MIGRATE_FLUSH_BEFORE_COPY", "ZAP_DIRTY_FILE_PTE", "RECHECK_AFTER_RELOCK",
             "MMU_GATHER_MERGE_VMAS")

#: the values ``ZAP_DIRTY_FILE_PTE = (force_flush, delay_rmap)`` may take: the kernels that
#: had them (conformance/protocol.py). No kernel delayed the rmap without forcing the flush
#: that removes it (``tlb_flush_rmaps`` runs under the PTL after a forced flush): the model
#: would keep such a mapping in the rmap for ever.
ZAP_DIRTY_FILE_PTE_VALUES = ((True, True), (True, False), (False, False))


def _check_constants(cls, where: str) -> None:
    """:class:`UsageError` unless the policy constants of ``cls`` are values the model
    implements (:data:`CONSTANTS`): ``MIGRATE_FLUSH_BEFORE_COPY``, ``RECHECK_AFTER_RELOCK``
    and ``MMU_GATHER_MERGE_VMAS`` true or false,
    ``ZAP_DIRTY_FILE_PTE`` one of :data:`ZAP_DIRTY_FILE_PTE_VALUES`. Another value would
    be read as some other kernel's behaviour without a word.

    Example::

        >>> from conformance.protocol import Protocol
        >>> class Odd(Protocol):
        ...     ZAP_DIRTY_FILE_PTE = (False, True)
        >>> _check_constants(Odd, "odd")
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: protocol odd: ZAP_DIRTY_FILE_PTE = (False, True) is not one of (True, True), (True, False), (False, False)
    """
    for attr in CONSTANTS:
        if attr == "ZAP_DIRTY_FILE_PTE":
            continue
        value = getattr(cls, attr)
        if value.__class__ is not bool:
            raise UsageError(f"protocol {where}: {attr} = {value!r} is not True or False")
    zap = getattr(cls, "ZAP_DIRTY_FILE_PTE")
    if not isinstance(zap, tuple) or zap not in ZAP_DIRTY_FILE_PTE_VALUES \
            or any(v.__class__ is not bool for v in zap):
        raise UsageError(f"protocol {where}: ZAP_DIRTY_FILE_PTE = {zap!r} is not one of "
                         + ", ".join(map(repr, ZAP_DIRTY_FILE_PTE_VALUES)))


_HOOKS: tuple = ()


def hook_names() -> tuple:
    """The hooks the model calls: the public methods of :class:`Protocol`.

    Example::

        >>> "try_to_unmap_flush_dirty" in hook_names(), "name" in hook_names()
        (True, False)
    """
    global _HOOKS
    if not _HOOKS:
        _HOOKS = tuple(n for n, v in vars(Protocol).items()
                       if not n.startswith("_") and inspect.isfunction(v))
    return _HOOKS


def hook_code(fn):
    """The code object of hook ``fn`` as its author wrote it (through the wrappers of
    coverage and hookpoints, a bound or static method's function), or None when it is no
    Python function.

    Example::

        >>> from protocols.linux import Linux
        >>> hook_code(Linux.try_to_unmap_flush).co_name, hook_code(len)
        ('try_to_unmap_flush', None)
    """
    try:
        for _ in range(8):  # a wrapper of a wrapper: a few levels at most
            inner = getattr(fn, "_fc_counts", None) or getattr(fn, "__wrapped__", None)
            if inner is None:
                break
            fn = inner
        code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    except Exception:  # noqa: BLE001 - an object whose attributes raise: no function
        return None
    return code if isinstance(code, types.CodeType) else None


def _check_hooks(cls, where: str) -> None:
    """:class:`UsageError` for a hook of ``cls`` that the kernel cannot call: one that is
    not callable (``try_to_unmap_flush = 5``, ``tlb_flush_mmu = None``), or a callable that
    is no Python function (a builtin, a ``functools.partial``, a callable object, a class:
    ``try_to_unmap_flush = len``). Either fails in flushcheck's own
    frames, where nothing tells whose fault it is: it was a MODEL ERROR, or a crash. A
    Python function whose parameters cannot take the hook's arguments
    (``def try_to_unmap_flush(self)``), and a staticmethod or classmethod hook, are
    refused too (:func:`_check_python_hook`): a run reports them as a protocol error only
    if it reaches the hook, and a run that never does would certify a protocol the kernel
    cannot call.

    Example::

        >>> from protocols.linux import Linux
        >>> class Odd(Linux):
        ...     try_to_unmap_flush = len
        >>> _check_hooks(Odd, "odd")
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: protocol odd: hook try_to_unmap_flush = <built-in function len> is no Python function: flushcheck calls every hook as a method; write it as def try_to_unmap_flush(self, task)
    """
    for name in hook_names():
        fn = getattr(cls, name)
        if hook_code(fn) is not None:
            _check_python_hook(cls, name, where)
            continue
        if not callable(fn):
            raise UsageError(f"protocol {where}: hook {name} = {shown(fn)} is not callable")
        # a builtin, a functools.partial, a callable object: the class does not bind it
        # (it would get no self), and the run names hooks by __name__, which a partial or
        # an object lacks (both were a MODEL ERROR, a review of 2026-12-05)
        params = list(inspect.signature(vars(Protocol)[name]).parameters)
        what = re.sub(r" at 0x[0-9a-f]+", "", shown(fn))  # no address: the same line each run
        raise UsageError(f"protocol {where}: hook {name} = {what} is no Python function: "
                         f"flushcheck calls every hook as a method; write it as "
                         f"def {name}({', '.join(params)})")


def _check_python_hook(cls, name: str, where: str) -> None:
    """:class:`UsageError` if the Python function ``cls`` has for hook ``name`` cannot
    take the arguments the kernel model passes (positionally, as
    :class:`conformance.protocol.Protocol` declares them, the protocol object first), or
    is a staticmethod or classmethod: the wrappers that count hooks and add interleaving
    points (:mod:`conformance.coverage`, :mod:`conformance.hookpoints`) call every hook as
    a method, ``fn(self, ...)``, so those would get one argument too many. A hook of
    another kind (a wrapper object, a descriptor of its own) is left to the run.

    Example::

        >>> from protocols.linux import Linux
        >>> class Short(Linux):
        ...     def try_to_unmap_flush(self):
        ...         pass
        >>> _check_python_hook(Short, "try_to_unmap_flush", "short")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: protocol short: hook try_to_unmap_flush(self) (...) cannot be called as try_to_unmap_flush(self, task): too many positional arguments
    """
    params = list(inspect.signature(vars(Protocol)[name]).parameters)
    raw = next((vars(k)[name] for k in cls.__mro__ if name in vars(k)), None)
    if isinstance(raw, (staticmethod, classmethod)):
        raise UsageError(f"protocol {where}: hook {name} is a {type(raw).__name__}; "
                         f"flushcheck calls every hook as a method: write it as "
                         f"def {name}({', '.join(params)})")
    if not isinstance(raw, types.FunctionType):
        return
    code = hook_code(raw)
    at = (f" ({os.path.basename(code.co_filename)}:{code.co_firstlineno})"
          if code is not None else "")
    if inspect.iscoroutinefunction(raw) or inspect.isasyncgenfunction(raw):
        # refused at load as a bad signature is: a run reports it (HookRuleBroken) only if
        # it reaches the hook, and one that never does certified it (a user review,
        # 2026-12-07)
        from .hookpoints import ASYNC_ADVICE
        raise UsageError(f"protocol {where}: hook {name}{at} is an async def: {ASYNC_ADVICE}")
    try:  # the function called: a wrapper's own parameters, not the wrapped function's
        sig = inspect.signature(raw, follow_wrapped=False)
        sig.bind(*params)
    except ValueError:  # no signature to read: the run will tell
        return
    except TypeError as exc:
        raise UsageError(f"protocol {where}: hook {name}{sig}{at} cannot be called as "
                         f"{name}({', '.join(params)}): {exc}") from None


def shown(value) -> str:
    """``repr(value)``, short, or its type's name where that fails (a protocol's object).

    Example::

        >>> shown(5), shown(list(range(30)))
        ('5', '[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16...')
    """
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - an object of the protocol's whose repr raises
        return f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _is_builtin(klass) -> bool:
    """Is ``klass`` defined in ``protocols/`` (a built-in protocol or a base of some)?"""
    return klass.__module__ == "protocols" or klass.__module__.startswith("protocols.")


def misspelt_hooks(cls) -> list[tuple[str, str]]:
    """``(method, hook)`` for each public method of ``cls`` that is no hook (not a
    :class:`Protocol` attribute, not a built-in base's helper) but is named like one
    (``try_to_unmap_flush_dirtyy``): the model never calls it, and the protocol would
    certify as if it were not there.

    Example::

        >>> class Typo(Protocol):
        ...     def try_to_unmap_flsh(self, task): pass
        >>> misspelt_hooks(Typo)
        [('try_to_unmap_flsh', 'try_to_unmap_flush')]
    """
    import difflib

    skip = set(dir(Protocol))
    for base in cls.__mro__[1:]:
        if _is_builtin(base):  # their helpers (luf_flushed, batch_reset) are known
            skip.update(vars(base))
    seen, out = set(), []
    for klass in cls.__mro__:
        if klass is Protocol or klass is object or (klass is not cls and _is_builtin(klass)):
            continue
        for meth, v in vars(klass).items():
            if meth.startswith("_") or meth in skip or meth in seen or not (
                    inspect.isfunction(v) or isinstance(v, (staticmethod, classmethod))):
                continue
            seen.add(meth)
            close = difflib.get_close_matches(meth, hook_names(), n=1, cutoff=0.85)
            if close:
                out.append((meth, close[0]))
    return out


def misspelt_text(name: str, meth: str, hook: str) -> str:
    return f"{name}.{meth} is no Protocol hook and is never called (did you mean {hook}?)"


def _warn_misspelt(cls, name: str) -> None:
    """A warning on stderr for each of :func:`misspelt_hooks`. A warning, not an error: a
    helper may be named so on purpose (certify's report repeats it, where a review sees
    it)."""
    mp = sys.modules.get("multiprocessing")
    if mp is not None and mp.parent_process() is not None:
        return  # a worker process: the parent warned already
    for meth, hook in misspelt_hooks(cls):
        print(f"flushcheck: warning: {misspelt_text(name, meth, hook)}", file=sys.stderr)


_LOADED: dict = {}


def loaded_protocol(ref: str):
    """:func:`load_protocol`, once per process and reference: for workers that run chunk
    after chunk of one protocol (each load is a fresh class, with its own wrapped hooks made
    at its first machine, freed only by the cycle collector).

    Example::

        >>> loaded_protocol("linux") is loaded_protocol("linux")
        True
    """
    key = os.path.abspath(ref) if is_file_ref(ref) else ref  # a relative path: where it is now
    cls = _LOADED.get(key)
    if cls is None:
        cls = _LOADED[key] = load_protocol(ref)
    return cls


def protocol_ref(cls) -> str:
    """The reference that loads ``cls`` (a protocol class or instance) again: ``cls.ref``
    for a class :func:`load_protocol` made (a file's absolute path, ``module:Class``, a
    built-in's name), else its name. Reports print it, reproducers store it.

    Example::

        >>> protocol_ref(load_protocol("linux_4_3"))
        'linux_4_3'
    """
    return getattr(cls, "ref", None) or cls.name


def shipped_as(cls) -> str | None:
    """The name of the module of :data:`protocols.SHIPPED` that ``cls`` comes from, or None:
    decided by the module's file (its real path in the ``protocols`` package), whatever the
    reference it was loaded by (``linux_4_13``, ``protocols/linux_4_13.py``), so that a copy
    of a shipped module elsewhere (``/tmp/x/linux_4_13.py``, a fix of it) is not taken for
    it (a review, 2026-12-05).

    Example::

        >>> shipped_as(load_protocol("protocols/linux_4_13.py"))
        'linux_4_13'
    """
    from protocols import SHIPPED

    try:
        path = getattr(protocol_module(cls), "__file__", None)
    except ImportError:  # a class made where no module holds it
        return None
    if not path:
        return None
    path = os.path.realpath(path)
    here = {os.path.realpath(p) for p in _package().__path__}
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem if os.path.dirname(path) in here and stem in SHIPPED else None


def row_labels(refs) -> dict:
    """Each protocol reference's label in a table: the protocol's name (a file's stem, as
    every report shows it), or the reference itself where two references of the table load
    protocols of one name (``linux`` beside ``a/linux.py``).

    Example::

        >>> row_labels(["linux", "linux_4_3"])
        {'linux': 'linux', 'linux_4_3': 'linux_4_3'}
    """
    names = {r: load_protocol(r).name for r in refs}
    many = collections.Counter(names.values())
    return {r: (n if many[n] == 1 else r) for r, n in names.items()}


def declared(cls, attr: str):
    """What the protocol declares as ``attr`` (``EXPECTED_VIOLATION``, ``CORRECT``): its
    class's attribute, else its module's; None when neither does. The one reading for the
    report, the litmus corpus and the test plugin.

    Example::

        >>> declared(load_protocol("linux_4_13"), "EXPECTED_VIOLATION")
        'S3'
    """
    value = getattr(cls, attr, None)
    if value is not None:
        return value
    try:
        module = protocol_module(cls)
    except ImportError:  # a class made where no module holds it
        return None
    value = vars(module).get(attr)
    return value if value is None or _assigned_in(module, attr) else None


def _assigned_in(module, attr: str) -> bool:
    """Does ``module``'s own source assign (or import by name) ``attr``? A star import
    (``from protocols.linux_4_13 import *``) copies a mutant's ``EXPECTED_VIOLATION`` into
    the importing module, whose correct protocol was then expected to fail S3 (its
    test_conforms failed, certify's PASS said "S3 not found in this run"; a review,
    2026-12-06). A module whose source cannot be read keeps what its namespace holds.

    Example::

        >>> import protocols.linux_4_13 as m
        >>> _assigned_in(m, "EXPECTED_VIOLATION"), _assigned_in(m, "CORRECT")
        (True, False)
    """
    import ast

    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return True
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == attr and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, ast.alias) and (node.asname or node.name) == attr:
            return True
    return False


def protocol_module(cls):
    """The module a loaded protocol class comes from (for its ``EXPECTED_VIOLATION`` etc.).

    Example::

        >>> protocol_module(load_protocol("linux_4_13")).EXPECTED_VIOLATION
        'S3'
    """
    return sys.modules.get(cls.__module__) or importlib.import_module(cls.__module__)
