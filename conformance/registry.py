"""Protocol discovery: every module in ``protocols/`` is a protocol, no registration.

A module is a protocol when it defines (or names in ``PROTOCOL``) exactly one
subclass of :class:`conformance.protocol.Protocol`. Its name is the module name.

Example::

    >>> "linux" in protocol_names()
    True
    >>> load_protocol("linux").name
    'linux'
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil

from .errors import UsageError
from .protocol import Protocol


def _package():
    try:
        return importlib.import_module("protocols")
    except Exception as exc:  # pragma: no cover - broken install
        raise UsageError(f"cannot import the protocols package: {exc}") from None


def protocol_names() -> list[str]:
    """Names of every module in ``protocols/``, sorted."""
    pkg = _package()
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)
                  if not m.name.startswith("_"))


def load_protocol(name: str):
    """The protocol class of ``protocols/<name>.py``; :class:`UsageError` if there is none."""
    names = protocol_names()
    if name not in names:
        raise UsageError(f"unknown protocol {name!r} (known: {', '.join(names)})")
    try:
        mod = importlib.import_module(f"protocols.{name}")
    except Exception as exc:
        raise UsageError(f"protocol module protocols/{name}.py is malformed: "
                         f"{type(exc).__name__}: {exc}") from None
    cls = getattr(mod, "PROTOCOL", None)
    if cls is None:
        found = [c for _, c in inspect.getmembers(mod, inspect.isclass)
                 if issubclass(c, Protocol) and c is not Protocol and c.__module__ == mod.__name__]
        if len(found) != 1:
            raise UsageError(f"protocol module protocols/{name}.py must define exactly one Protocol "
                             f"subclass (found {len(found)}) or set PROTOCOL")
        cls = found[0]
    if not (inspect.isclass(cls) and issubclass(cls, Protocol)):
        raise UsageError(f"protocols/{name}.py: PROTOCOL is not a Protocol subclass")
    # A subclass per name, so a module that imports another protocol's class keeps its own name.
    return type(cls.__name__, (cls,), {"name": name, "__module__": cls.__module__,
                                       "__doc__": cls.__doc__})
