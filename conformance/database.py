"""The example database certify keeps between runs: failures found once are replayed first.

A certify run's failing examples (Hypothesis choice sequences) go to a Hypothesis
example database: a local directory by default (profile ``dev``), Redis for a fleet
(profile ``fleet`` or ``--database redis://host:port/db``), none on CI (profile
``ci``: derandomized, nothing kept). Each protocol, strictness and machine config
has its own key (:func:`campaign_key`), so a failure of ``linux_4_3`` on 2 CPUs is
never replayed against ``linux`` or on 4 CPUs.

Workers never talk to the database. The parent reads the protocol's keys once
(:func:`snapshot`); every chunk runs against a :class:`ChunkDatabase` seeded with
that snapshot, which records what Hypothesis saved or deleted; the parent writes
those logs back when the run ends (:func:`apply_log`). So a chunk on a Dask worker
on another machine replays the local directory's examples, and within one run
every chunk sees the same saved examples whatever the executor (the verdict stays
a function of the seed and the database as it was when the run started).

Example::

    >>> from hypothesis.database import InMemoryExampleDatabase
    >>> db = InMemoryExampleDatabase()
    >>> chunk = ChunkDatabase(snapshot(db, b"k"))
    >>> chunk.save(b"k", b"\\x01")
    >>> apply_log(db, chunk.log)
    >>> sorted(db.fetch(b"k"))
    [b'\\x01']
"""
from __future__ import annotations

import os
from collections.abc import Iterable

import attrs
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from .config import CONFIG_SETS, DEFAULT, MachineConfig
from .defaults import PROFILE_SETTINGS, PROFILES
from .errors import UsageError
from .executors import first_line

#: the ``dev`` profile's directory (relative to where flushcheck runs, like ``repro/``;
#: ``.hypothesis/`` is where Hypothesis keeps its own and is git-ignored)
DEFAULT_DIR = os.path.join(".hypothesis", "flushcheck")
#: the Redis URL of the ``fleet`` profile
REDIS_ENV = "FLUSHCHECK_REDIS"
#: the sub-keys Hypothesis files examples under, after the test's own key
SUB_KEYS = (b"", b".secondary", b".pareto", b".actions")  # .actions: the walk engine's runs


def campaign_key(protocol: str, cfg: MachineConfig, strict: bool) -> bytes:
    """The database key of one protocol under one config: readable, stable across machines.

    Example::

        >>> from conformance.config import DEFAULT
        >>> campaign_key("linux", DEFAULT, False).startswith(b"flushcheck:linux:o1:")
        True
    """
    fields = ",".join(f"{k}={v}" for k, v in sorted(attrs.asdict(cfg).items()))
    return f"flushcheck:{protocol}:{'o1-strict' if strict else 'o1'}:{fields}".encode()


def keyed(test, key: bytes, database: ExampleDatabase | None = None):
    """Make the Hypothesis test ``test`` file its examples under ``key`` (its own digest
    otherwise: the state machine's class name, which does not include the config), in
    ``database`` when given (apply after ``@seed``, which drops the database).

    Example::

        >>> def t(): pass
        >>> keyed(t, b"k")._hypothesis_internal_database_key
        b'k'
    """
    # Hypothesis reads these attributes of the @given-wrapped function: the database key
    # (core.StateForActualGivenExecution.run_engine) and its settings, which @seed resets
    # to database=None; tests/test_scaling.py checks that a keyed run saves under ``key``.
    test._hypothesis_internal_database_key = key
    if database is not None:
        test._hypothesis_internal_use_settings = settings(
            test._hypothesis_internal_use_settings, database=database)
    return test


def profile() -> str:
    """The profile in force by default: ``ci`` when ``CI`` is true, else ``dev``.

    Example::

        >>> profile() in ("ci", "dev")
        True
    """
    return "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"


def profile_spec(name: str) -> str:
    """The ``--database`` spec a profile stands for: a directory, a Redis URL or ``none``.

    Example::

        >>> profile_spec("ci")
        'none'
    """
    kind = _settings(name)["database"]
    if kind == "none":
        return "none"
    if kind == "dev":
        return DEFAULT_DIR
    url = os.environ.get(REDIS_ENV, "")
    if not url:
        raise UsageError(f"profile {name} needs {REDIS_ENV}=redis://host:port/db")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        # a bare host:port would be read as a directory: a fleet sharing nothing, unnoticed
        raise UsageError(f"{REDIS_ENV}={url!r} is not a Redis URL "
                         "(redis://host:port/db, rediss://... or unix://...)")
    return url


def _settings(name: str) -> dict:
    if name not in PROFILE_SETTINGS:
        raise UsageError(f"unknown profile {name!r} (profiles: {', '.join(PROFILES)})")
    return PROFILE_SETTINGS[name]


#: the machine configs profiles name: conformance.config.CONFIG_SETS["wide"], and
#: "cpus2-empty" (two CPUs, nothing populated: every page is faulted in by the run)
PROFILE_CONFIGS = dict(CONFIG_SETS["wide"]) | {
    "cpus2-empty": attrs.evolve(DEFAULT, ncpus=2, populate=False)}


def profile_configs(name: str) -> list:
    """``(config name, MachineConfig)`` for every machine config certify runs under a
    profile (each with the profile's budget).

    Example::

        >>> [n for n, _ in profile_configs("thorough")]
        ['default', 'cpus2-empty', 'big']
    """
    return [(c, PROFILE_CONFIGS[c]) for c in _settings(name)["configs"]]


def profile_budget(name: str) -> float:
    """certify's budget per machine config under a profile, in seconds.

    Example::

        >>> profile_budget("dev"), profile_budget("nightly")
        (60.0, 600.0)
    """
    return _settings(name)["budget_s"]


def profile_examples(name: str) -> int | None:
    """The pytest plugin's examples per protocol under a profile (None: its option's).

    Example::

        >>> profile_examples("thorough")
        2000
    """
    return _settings(name)["examples"]


def open_database(spec: str | None) -> ExampleDatabase | None:
    """The database ``spec`` names: ``none``, ``redis://host:port/db`` or a directory.

    An unreachable Redis, or Redis without the ``redis`` package, is a one-line
    :class:`UsageError`.

    Example::

        >>> open_database("none") is None
        True
        >>> describe(open_database("/tmp/fc-examples"))
        '/tmp/fc-examples'
    """
    if spec is None or spec.lower() == "none":
        return None
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return _redis(spec)
    if "://" in spec:
        raise UsageError(f"--database {spec!r}: not a directory, redis://host:port/db or none")
    return DirectoryBasedExampleDatabase(spec)


def _redis(url: str) -> ExampleDatabase:
    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError:
        raise UsageError("--database redis:// needs the redis extra: "
                         "pip install 'flushcheck[redis]'") from None
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
        client.ping()  # fail now, in one line, rather than in the middle of a campaign
    except (redis.RedisError, ValueError, OSError) as exc:
        raise UsageError(f"cannot reach redis at {url}: {first_line(exc)}") from None
    return RedisExampleDatabase(client)


def describe(db: ExampleDatabase | None) -> str:
    """A database as a report names it: its directory, its Redis URL, or ``none``.

    Example::

        >>> describe(DirectoryBasedExampleDatabase("/tmp/fc-examples"))
        '/tmp/fc-examples'
    """
    if db is None:
        return "none"
    if isinstance(db, DirectoryBasedExampleDatabase):
        return str(db.path)
    redis = getattr(db, "redis", None)
    kw = getattr(getattr(redis, "connection_pool", None), "connection_kwargs", None)
    if kw and "host" in kw:
        return f"redis://{kw['host']}:{kw.get('port', 6379)}/{kw.get('db', 0)}"
    return repr(db)


def register_profiles(replace: bool = True) -> None:
    """Register the Hypothesis profiles ``ci``, ``dev``, ``thorough``, ``nightly`` and
    (with ``$FLUSHCHECK_REDIS``) ``fleet``, so that ``--hypothesis-profile thorough`` and
    ``settings.load_profile("dev")`` name them; certify takes the same database.
    ``replace=False`` (the pytest plugin, in every project that installs flushcheck)
    registers only the names no profile has yet: Hypothesis's own ``ci``, which it loads
    itself on CI, and a project's ``dev`` stay theirs (registering over the profile in force
    changes it at once). Loading one is left to whoever runs the tests (this repository's
    ``tests/conftest.py``); the plugin's ``fuzz`` runs under :func:`profile_settings`.
    ``thorough`` and ``nightly`` keep failures in the local directory as ``dev`` does and
    raise ``max_examples`` (:func:`profile_examples`).

    Example::

        >>> register_profiles()
        >>> settings.get_profile("ci").database is None
        True
    """
    # from Hypothesis's own defaults, not from whatever profile was loaded before this runs
    base = settings.get_profile("default")
    common = dict(deadline=None, suppress_health_check=list(HealthCheck))
    made = {"ci": settings(base, derandomize=True, database=None, print_blob=False, **common),
            "dev": settings(base, database=DirectoryBasedExampleDatabase(DEFAULT_DIR), **common)}
    for name in ("thorough", "nightly"):
        made[name] = settings(base, database=DirectoryBasedExampleDatabase(DEFAULT_DIR),
                              max_examples=profile_examples(name), **common)
    if os.environ.get(REDIS_ENV):
        try:
            from hypothesis.extra.redis import RedisExampleDatabase
            import redis
        except ImportError:  # the fleet profile needs the redis extra; the others do not
            pass
        else:
            db = RedisExampleDatabase(redis.Redis.from_url(os.environ[REDIS_ENV]))
            made["fleet"] = settings(base, database=db, **common)
    for name, made_settings in made.items():
        if replace or not _registered(name):
            settings.register_profile(name, made_settings)
    _MADE.clear()
    _MADE.update(made)


#: the settings objects :func:`register_profiles` made last, by profile name
_MADE: dict = {}


def _registered(name: str) -> bool:
    from hypothesis.errors import InvalidArgument

    try:
        settings.get_profile(name)
    except InvalidArgument:
        return False
    return True


def profile_settings(name: str) -> settings:
    """flushcheck's own Hypothesis settings of profile ``name``: what the pytest plugin's
    ``fuzz`` runs under. Kept here rather than read back from Hypothesis's profile registry,
    where a project may have registered a ``ci`` or ``dev`` of its own after flushcheck's.

    Example::

        >>> s = profile_settings("ci")
        >>> s.derandomize, s.database, s.deadline
        (True, None, None)
        >>> profile_settings("thorough").max_examples
        2000
    """
    _settings(name)  # an unknown name: its UsageError
    if not _MADE:
        register_profiles()
    if name not in _MADE:  # fleet without $FLUSHCHECK_REDIS or the redis extra
        raise UsageError(f"profile {name} needs {REDIS_ENV}=redis://host:port/db and the "
                         "redis extra (pip install 'flushcheck[redis]')")
    return _MADE[name]


def snapshot(db: ExampleDatabase | None, key: bytes) -> dict:
    """Everything ``db`` holds under ``key`` and its sub-keys, as a plain picklable dict.

    Example::

        >>> snapshot(None, b"k")
        {}
    """
    if db is None:
        return {}
    return {key + s: sorted(db.fetch(key + s)) for s in SUB_KEYS}


def saved_count(snap: dict, key: bytes, sub: bytes = b"") -> int:
    """How many failing examples ``snap`` holds for ``key`` (those replayed first): under
    ``key`` itself for Hypothesis, ``key + b".actions"`` for the walk engine.

    Example::

        >>> saved_count({b"k": [b"a", b"b"], b"k.secondary": [b"c"]}, b"k")
        2
    """
    return len(snap.get(key + sub, ()))


class ChunkDatabase(ExampleDatabase):
    """What one chunk's Hypothesis run sees: the run's snapshot plus its own writes, which
    it logs for the parent (``log``: ``("save"|"delete", key, value)`` tuples).

    Example::

        >>> db = ChunkDatabase({b"k": [b"a"]})
        >>> db.delete(b"k", b"a"); list(db.fetch(b"k")), db.log
        ([], [('delete', b'k', b'a')])
    """

    def __init__(self, snap: dict) -> None:
        super().__init__()
        self.data = {k: set(v) for k, v in snap.items()}
        self.log: list = []

    def fetch(self, key: bytes) -> Iterable[bytes]:
        yield from sorted(self.data.get(key, ()))

    def save(self, key: bytes, value: bytes) -> None:
        self.data.setdefault(key, set()).add(value)
        self.log.append(("save", key, value))

    def delete(self, key: bytes, value: bytes) -> None:
        self.data.get(key, set()).discard(value)
        self.log.append(("delete", key, value))

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"ChunkDatabase({len(self.log)} writes)"


def apply_log(db: ExampleDatabase | None, log: Iterable) -> None:
    """Write a chunk's logged saves and deletes to the real database, in order.

    Example::

        >>> apply_log(None, [("save", b"k", b"v")])   # no database: nothing kept
    """
    if db is None:
        return
    for op, key, value in log:
        (db.save if op == "save" else db.delete)(key, value)

