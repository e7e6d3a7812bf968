"""State keys for the bounded check: the machine's fingerprint, as a 16-byte digest.

The fingerprint is the explorer's (:func:`conformance.explorer.fingerprint`): generic, it
walks every ``__slots__`` field (and ``__dict__`` entry) of the machine's parts, found per
class on first sight, so a field another change adds to a model class is covered without
a list to update. It is serialised with ``marshal`` format 0 (no object sharing, no
interning flags: equal tuples give equal bytes whatever their history) and hashed with
BLAKE2b to 16 bytes. Two distinct states share a key with probability at most
``n**2 / 2**129`` over ``n`` states: below 1e-24 for 10**9 states (docs/BOUNDED.md).

Example::

    >>> from conformance.config import MachineConfig
    >>> from conformance.machine import Machine
    >>> from conformance.registry import load_protocol
    >>> cls, cfg = load_protocol("linux"), MachineConfig(ncpus=2, nmms=1, vpages=2)
    >>> key(Machine(cls, cfg)) == key(Machine(cls, cfg))
    True
    >>> len(key(Machine(cls, cfg)))
    16
"""
from __future__ import annotations

import marshal
from hashlib import blake2b

from .explorer import fingerprint

DIGEST_BYTES = 16


def key(m, extra=()) -> bytes:
    """The 16-byte digest of ``m``'s fingerprint and ``extra`` (the search's own state)."""
    fp = (fingerprint(m), extra)
    try:
        raw = marshal.dumps(fp, 0)
    except ValueError:  # a value marshal cannot write: its repr (deterministic for our types)
        raw = repr(fp).encode()
    return blake2b(raw, digest_size=DIGEST_BYTES).digest()
