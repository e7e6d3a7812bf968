"""``flushcheck bound P -k K``: the bounded check from the command line, and the block
certify prints for ``certify P --bound K`` (docs/BOUNDED.md).

Example::

    flushcheck bound linux -k 2                       # the small config, the small menu
    flushcheck bound linux_4_3 -k 3                   # FAIL at K=2: timeline + reproducer
    flushcheck bound linux -k 4 --budget 600 --config populate=false --ops full
"""
from __future__ import annotations

import os
import shlex
import sys

import attrs

from .config import MachineConfig
from .errors import ModelError, UsageError
from .findings import scope_lines

#: the issue's small config: 2 CPUs, 1 mm, 2 vpages, 4 frames, 1 file page, 2 swap slots
BOUND_CONFIG = MachineConfig(ncpus=2, nmms=1, vpages=2, nframes=4, nfiles=1, file_pages=1,
                             swap_slots=2)


#: the largest machine the bounded check takes, field by field (docs/BOUNDED.md, "What is
#: searched"): an exhaustive search is for small machines, and the root state's choice list
#: alone grows with the product of these (``bound linux -k 1 --config
#: ncpus=64,nmms=32,vpages=1024`` built it for minutes, --budget unread meanwhile). At all of
#: them at once, ``--ops all``, ``--budget 2`` stops the search after 2 s. Generous for every
#: machine docs/, tests/ and bench/ search (at most 3 CPUs, 2 mms, 3 virtual pages).
BOUND_LIMITS = {"ncpus": 8, "nmms": 4, "vpages": 16, "nframes": 64, "nfiles": 4,
                "file_pages": 16, "swap_slots": 64}


def bound_size_error(cfg: MachineConfig) -> str | None:
    """What makes ``cfg`` too large for the bounded check (:data:`BOUND_LIMITS`), or None.

    >>> bound_size_error(BOUND_CONFIG) is None
    True
    >>> bound_size_error(attrs.evolve(BOUND_CONFIG, ncpus=64))  # doctest: +ELLIPSIS
    'ncpus=64 is too large for the bounded check: at most ncpus=8 (...'
    """
    for key, most in BOUND_LIMITS.items():
        if getattr(cfg, key) > most:
            return (f"{key}={getattr(cfg, key)} is too large for the bounded check: at most "
                    f"{key}={most} (an exhaustive search, for small machines: docs/BOUNDED.md); "
                    "certify fuzzes larger ones")
    return None


def bound_config(pairs) -> MachineConfig:
    """:data:`BOUND_CONFIG` with ``KEY=VALUE`` pairs applied (certify's ``--config`` syntax);
    :class:`UsageError` beyond :data:`BOUND_LIMITS`.

    >>> bound_config(["ncpus=3"]).ncpus
    3
    """
    from .cli import _config, config_pairs

    base = _config(pairs)  # validates; fields not given keep BOUND_CONFIG's values
    given = {p.partition("=")[0] for p in config_pairs(pairs)}
    cfg = attrs.evolve(BOUND_CONFIG, **{k: getattr(base, k) for k in given})
    if (why := bound_size_error(cfg)) is not None:
        raise UsageError(f"bad --config: {why}")
    return cfg


def run_bound(cls, cfg, k, menu, *, strict=False, budget=None, jobs=1, quiet=False,
              unreduced=False):
    """Run :func:`conformance.search.bounded.bounded`, with one progress line per BFS level on
    stderr unless ``quiet`` or stderr is no terminal (as certify's progress: a log keeps the
    report only); ``unreduced``: without its reductions (a cross-check)."""
    from .search.bounded import bounded

    if k < 1:
        raise UsageError("the bound K must be at least 1")
    quiet = quiet or not sys.stderr.isatty()

    def progress(lv) -> None:
        if not quiet:
            print(f"  ... {lv.line().replace('partial', 'so far')}", file=sys.stderr, flush=True)

    off = {"reduce": False, "lazy_evict": False} if unreduced else {}
    return bounded(cls, cfg, k, menu=menu, strict=strict, budget_s=budget, jobs=jobs,
                   progress=progress, **off)


def bound_lines(res) -> list[str]:
    """The bounded result as report lines (certify prints them beside its random search)."""
    lines = [f"  bounded   {res.headline()}",
             f"            menu {','.join(res.menu)}; config {res.config.describe()}; "
             f"{res.jobs} job(s); reductions: {', '.join(res.reductions) or 'none'}"]
    for lv in res.levels:
        lines.append(f"            {lv.line()}")
    return lines + never_lines(res, "            never ")


def never_lines(res, lead: str = "  never     ") -> list[str]:
    """One line per menu kind that no state searched could start (``Result.never_started``),
    with what its arguments need: a verdict says nothing of such a kind. None after a
    counterexample (the search stopped at it)."""
    from .search.menu import KINDS

    if res.failure is not None:
        return []
    return [f"{lead}{n}: no state searched could start it"
            + (f" (it needs {KINDS[n].needs})" if KINDS[n].needs else "")
            for n in res.never_started]


def counterexample_path(res, repro_dir: str) -> str:
    """Where :func:`save_counterexample` saves ``res``'s counterexample."""
    return os.path.join(repro_dir, f"bound-{res.protocol}-K{res.fail_k}{_search_tag(res)}.json")


def save_counterexample(res, repro_dir: str) -> str | None:
    """Save the counterexample as a reproducer (``flushcheck replay`` runs it); its path
    (an OSError where it cannot be written: the callers report it after the verdict)."""
    from .reproducer import save

    f = res.failure
    if f is None or f.machine is None:
        return None
    return save(f, counterexample_path(res, repro_dir))


def _search_tag(res) -> str:
    """"" for the default search (:data:`BOUND_CONFIG`, the small menu, not strict), else
    ``-`` and 8 hex digits of the config, menu and strictness, so that a search on another
    machine does not overwrite the default one's reproducer.

    >>> from conformance.search.bounded import Result
    >>> from conformance.search.menu import MENUS
    >>> _search_tag(Result("linux", BOUND_CONFIG, MENUS["small"], 2, False))
    ''
    >>> _search_tag(Result("linux", BOUND_CONFIG, ("read",), 2, False))
    '-c424f44c'
    """
    from hashlib import blake2b

    from .search.menu import MENUS

    if res.config == BOUND_CONFIG and tuple(res.menu) == MENUS["small"] and not res.strict:
        return ""
    what = f"{res.config.describe()}|{','.join(res.menu)}|{res.strict}"
    return "-" + blake2b(what.encode(), digest_size=4).hexdigest()


def path_text(path) -> str:
    """The transitions of a path, in words."""
    words = []
    for c in path:
        if c[0] == "a":
            words.append(f"advance op{c[1]}")
        elif c[0] == "s":
            words.append(f"CPU{c[1]} {c[2]}({', '.join(map(str, c[3]))})")
        elif c[0] == "f":
            words.append(f"hw CPU{c[1]} fill v{c[2]}")
        else:
            words.append(f"hw CPU{c[1]} evict mm{c[2]}:v{c[3]}")
    return ", ".join(words)


def rerun_command(cls, args) -> str:
    """The command that runs this search again, as the report's first line: the protocol by
    the reference that loads it (a file's absolute path, ``module:Class``; a built-in's name)
    and every option that changes the search (TigerBeetle's VOPR prints what it derived).

    Example::

        >>> import argparse
        >>> from conformance.registry import load_protocol
        >>> a = argparse.Namespace(k=2, ops="small", config=["nmms=2"], strict=False,
        ...                        unreduced=False)
        >>> rerun_command(load_protocol("linux"), a)
        'flushcheck bound linux -k 2 --config nmms=2'
    """
    from .registry import protocol_ref

    words = ["flushcheck", "bound", shlex.quote(protocol_ref(cls)), "-k", str(args.k)]
    if args.ops != "small":
        words += ["--ops", shlex.quote(args.ops)]
    for kv in args.config or ():
        words += ["--config", shlex.quote(kv)]
    words += ["--strict"] * bool(args.strict) + ["--unreduced"] * bool(args.unreduced)
    return " ".join(words)


def cmd_bound(args) -> int:
    """``flushcheck bound``: exit 0 pass, 1 counterexample (or protocol error), 3 a model
    error, 4 incomplete (stopped by ``--budget`` before K, no violation; or nothing of the
    menu could start, ``Result.vacuous``), 130 interrupted."""
    from .search.menu import parse_menu
    from .registry import load_protocol
    from .reproducer import git_commit

    from .certify import require_local_jobs, require_seconds
    from .cli import (EXIT_BUG, EXIT_FAIL, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_PASS,
                      _written, outputs_status)

    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    require_local_jobs(args.jobs)
    if args.budget is not None:
        require_seconds("--budget", args.budget)
    cls = load_protocol(args.protocol)
    cfg = bound_config(args.config)
    menu = parse_menu(args.ops)
    res = run_bound(cls, cfg, args.k, menu, strict=args.strict, budget=args.budget,
                    jobs=args.jobs, quiet=args.quiet, unreduced=args.unreduced)
    print(f"{rerun_command(cls, args)}   commit {git_commit()}")
    print(f"  config    {cfg.describe()}")
    for line in cfg.caveats():
        print(f"  caveat    {line}")
    print(f"  menu      {','.join(menu)} (a user read/write counts as one operation; "
          "hardware fill/evict unbounded)")
    print("  reduced   " + (", ".join(res.reductions) + " (docs/BOUNDED.md, \"Reductions\": "
                             "no counterexample lost, none made longer)" if res.reductions
                             else "none (--unreduced)"))
    for lv in res.levels:
        print(f"  searched  {lv.line()}")
    print(f"  verdict   {res.headline()}")
    if res.failure is not None:
        f = res.failure
        print(f"  {res.counterexample}: {len(res.path)} transitions ({path_text(res.path)})")
        problems: list = []
        path = _written(problems, "reproducer", counterexample_path(res, args.repro_dir),
                        lambda: save_counterexample(res, args.repro_dir))
        if path:
            from .picture import html_path

            print(f"  reproducer {path}  (flushcheck replay {path})")
            if os.path.exists(html_path(path)):
                print(f"  picture   {html_path(path)}")
        print()
        print(f.report(last=None))
        return outputs_status(problems, EXIT_BUG if isinstance(f, ModelError) else EXIT_FAIL)
    for line in never_lines(res):
        print(line)
    if res.stopped == "interrupted":
        return EXIT_INTERRUPTED
    for line in scope_lines(cfg):
        print(f"  scope     {line}")
    return EXIT_PASS if res.passed else EXIT_INCOMPLETE


def add_parser(sub, protocol_forms: str, default_jobs: int) -> None:
    """The ``bound`` subcommand's arguments."""
    b = sub.add_parser("bound", help="bounded check: every program of up to K operations, "
                       "every interleaving (BFS, shortest counterexample)")
    b.add_argument("protocol", help=protocol_forms)
    b.add_argument("-k", "--bound", dest="k", type=int, default=2,
                   help="operations per program (default 2); bounds 1..K run in turn")
    b.add_argument("--ops", default="small",
                   help="the operation menu: small (read,write,reclaim,migrate,munmap,"
                        "mprotect; the default), full (the reach table's), all (also "
                        "reclaim_nested, truncate, mremap, compact, move_pages_nested), or a "
                        "comma-separated list")
    b.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="machine size over the small config (2 CPUs, 1 mm, 2 vpages, 4 frames, "
                        "1 file page, 2 swap slots, populated); repeat the flag or "
                        "comma-separate: --config ncpus=3,vpages=3")
    b.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help="stop after this long with a partial result (exit 4 when no "
                        "violation was found)")
    b.add_argument("--jobs", type=int, default=1,
                   help=f"worker processes per BFS level (default 1; {default_jobs} CPUs here)")
    b.add_argument("--strict", action="store_true", help="O1 strict: no transient exception")
    b.add_argument("--unreduced", action="store_true",
                   help="search without the reductions (terminal states, lazy evictions): "
                        "a cross-check, many more states")
    b.add_argument("--repro-dir", default="repro", metavar="DIR",
                   help="where a counterexample's reproducer is saved (default repro/)")
    b.add_argument("-q", "--quiet", action="store_true",
                   help="no progress lines on stderr (there are none when it is no terminal)")
    b.set_defaults(fn=cmd_bound)
