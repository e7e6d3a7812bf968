"""``flushcheck``: certify a protocol, list protocols, replay a reproducer.

Exit status: 0 pass, 1 a violation or protocol error, 2 bad input, 3 a
flushcheck bug (model error), 130 interrupted, 141 the reader of stdout went
away early (``flushcheck list | head -1``: quiet, like a process killed by
SIGPIPE). Bad input never prints a traceback. A budget, job or step count of
zero or less is bad input, and so is a certify run that ended with zero
examples: no verdict is ever a PASS on nothing.

Examples::

    flushcheck certify linux                 # 60 s of fuzzing, prints a verdict
    flushcheck certify linux_4_13 --seed 3   # fails with S3 and a shrunk timeline
    flushcheck certify linux --examples 2000 --scheduler tcp://10.0.0.5:8786
    flushcheck certify linux --database redis://127.0.0.1:6379/0
    flushcheck certify linux --out cert/     # cert/certificate.json and certificate.md
    flushcheck certify --reproduce cert/certificate.json   # the same work: same verdict?
    flushcheck certify linux --profile thorough            # three machine configs, 200 s each
    flushcheck replay repro/linux_4_13-3.json
    flushcheck certify ./my_flush.py         # a protocol file anywhere; or module:Class
    flushcheck new my_flush --base linux     # writes ./my_flush.py, every hook listed
    flushcheck list
    flushcheck bound linux -k 2              # every program of <= 2 operations, exhaustively
    flushcheck explore litmus/bug-2.4-reclaim-vs-mprotect.litmus --protocol linux_4_3
    flushcheck litmus                        # the corpus x every protocol, herd-style
    flushcheck soundness --budget 10         # raw-walk volume on the correct protocols
    flushcheck picture repro/linux_4_13-3.json   # the failure as an HTML page (SVG)
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys

import attrs

# only what the parser needs: explore and litmus must start without importing Hypothesis
# (tests/test_cli.py checks it); each command imports the rest itself
from . import interrupts
from .config import CONFIG_SETS, DEFAULT, MachineConfig, refused
from .defaults import ACTIONS_PER_EXAMPLE, ENGINES, PROFILES, default_jobs
from .errors import HookRuleBroken, ModelError, UsageError, unwritten
from .watchdog import HookStuck, save_reproducers_in, stopped_for_good, watch

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
#: no violation, but the bounded check stopped (its budget) before the bound it was given:
#: not a PASS, and not a counterexample either (a script must tell them apart)
EXIT_INCOMPLETE = 4
EXIT_PIPE = 141  # stdout's reader went away (128 + SIGPIPE, what the shell says of `yes | head`)

#: what a protocol argument may be (conformance/registry.py load_protocol)
PROTOCOL_FORMS = ("a name in protocols/, a path/to/file.py, module:Class, or an entry point "
                  "of the group flushcheck.protocols")


#: the most each count option may be, and what to do instead (README, "Exit status"). Far
#: above any run in docs/, bench/ and tests/, and low enough that a typo (``--actions
#: 999999999999``) is one line of bad input, not a run that never ends: no budget stops an
#: example, a chunk or a cost cell half-way (soundness checks its budget between examples,
#: certify between chunks, cost never), so one that long outlived any budget. Measured on
#: one core, 2026-12-06: an example of 10,000 actions about 0.5 s, 1,000,000 cost
#: operations about 25 s per cell, 10**8 walk examples about 3 days; Hypothesis ends an
#: example near 500 steps however many are asked for.
COUNT_LIMITS = {
    "--examples": (100_000_000, "examples (days of one core): split a longer run over "
                                "--seed values"),
    "--steps": (1_000, "steps per example (Hypothesis ends one near 500 steps anyway): for "
                       "more work raise --examples or --budget"),
    "--actions": (10_000, "actions per example (no budget stops an example half-way): for "
                          "more work raise --budget"),
    "--ops": (1_000_000, "operations per cell (no budget stops a cell half-way; about 25 s "
                         "per cell at the limit)"),
}
#: certify's ``--chunk`` may be at most this many times its engine's default
#: (``DEFAULT_CHUNK``): about 30 s of one core under either engine, since a chunk running at
#: the end of a time budget finishes (10,000 Hypothesis examples took 190 s past a 1 s budget)
CHUNK_LIMIT_FACTOR = 20


def require_at_most(option: str, value: int | None, most: int | None = None,
                    what: str | None = None) -> None:
    """:class:`UsageError` when the count ``value`` of ``option`` (None: not given) is above
    its limit: ``most`` and ``what`` it counts, or :data:`COUNT_LIMITS`'s.

    Example::

        >>> require_at_most("--actions", 10**12)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        conformance.errors.UsageError: --actions 1000000000000 is too many: at most 10,000 ...
    """
    if most is None:
        most, what = COUNT_LIMITS[option]
    if value is not None and value > most:
        raise UsageError(f"{option} {value} is too many: at most {most:,} {what}")


def max_chunk(engine: str) -> int:
    """The most examples a ``--chunk`` may hold under ``engine`` (:data:`CHUNK_LIMIT_FACTOR`).

    >>> max_chunk("walk"), max_chunk("hypothesis")
    (10000, 1000)
    """
    from .defaults import DEFAULT_CHUNK

    return CHUNK_LIMIT_FACTOR * DEFAULT_CHUNK[engine]


def require_states(value: int | None) -> None:
    """:class:`UsageError` unless a ``--max-states`` (None: not given) is at least 1: explore,
    litmus and picture alike (picture searched "the first -5 states")."""
    if value is not None and value < 1:
        raise UsageError(f"--max-states {value}: at least 1 state")


def config_pairs(values) -> list[str]:
    """``--config`` values as single ``KEY=VALUE`` pairs: one flag may carry several,
    comma-separated (``--config ncpus=3,vpages=3``).

    >>> config_pairs(["ncpus=3,vpages=3", "populate=false"])
    ['ncpus=3', 'vpages=3', 'populate=false']
    """
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def _config(pairs: list[str]) -> MachineConfig:
    fields = {f.name: f for f in attrs.fields(MachineConfig)}
    kw, given = {}, {}
    for p in config_pairs(pairs):
        key, sep, val = p.partition("=")
        if not sep or key not in fields:
            raise UsageError(f"bad --config {p!r} (keys: {', '.join(fields)})")
        if given.setdefault(key, val) != val:  # the last one won, silently (a user review)
            raise UsageError(f"bad --config: {key} given twice ({key}={given[key]} and {p})")
        if fields[key].type in (bool, "bool"):
            if val.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise UsageError(f"bad --config {p!r}: {val!r} is not 1/true/yes/on or "
                                 "0/false/no/off")
            kw[key] = val.lower() in ("1", "true", "yes", "on")
        else:
            try:
                kw[key] = int(val)
            except ValueError:
                raise UsageError(f"bad --config {p!r}: {val!r} is not an integer") from None
    try:
        return attrs.evolve(DEFAULT, **kw)
    except ValueError as exc:  # an attrs validator (sizes >= 1, batch_gen_bits: 1..15)
        raise UsageError(f"bad --config: {refused(exc)}") from None


def cmd_certify(args) -> int:
    """``flushcheck certify``: one protocol under the profile's machine configs (one unless
    ``--profile thorough|nightly``; ``--config`` names one), a report per config, a
    certificate with ``--out``; or ``--reproduce CERTIFICATE``."""
    from .database import profile, profile_budget, profile_configs, profile_spec
    from .registry import load_protocol, protocol_ref
    from .report import counted

    if args.reproduce:
        return _certify_reproduce(args)
    require_at_most("--examples", args.examples)
    require_at_most("--steps", args.steps)
    require_at_most("--chunk", args.chunk, max_chunk(args.engine),
                    f"examples per chunk under the {args.engine} engine (a chunk running at "
                    "the end of --budget finishes): for more work raise --examples or --budget")
    if getattr(args, "bound_budget", None) is not None:  # before the random search, not after
        from .certify import require_seconds

        require_seconds("--bound-budget", args.bound_budget)
    if not args.protocol:
        raise UsageError("certify needs a protocol (or --reproduce CERTIFICATE)")
    if args.show_program and args.engine != "hypothesis":  # it was ignored without a word
        raise UsageError("--show-program prints Hypothesis's program: it needs --engine "
                         "hypothesis (the walk's failure is its reproducer and litmus file)")
    if args.bound is not None and args.bound < 1:
        raise UsageError("--bound must be at least 1")
    if args.bound is None and (args.bound_ops != "small" or args.bound_budget is not None):
        raise UsageError("--bound-ops and --bound-budget need --bound K")
    if args.bound is not None:  # checked before the random search, not after it
        from .boundcli import bound_config
        from .search.menu import parse_menu

        args.bound_menu = parse_menu(args.bound_ops, flag="--bound-ops")
        args.bound_cfg = bound_config(args.config)
        args.bound_result = None  # one bounded check for every config of a profile
        args.bound_error = None  # or its one-line error, said under each config's report
    name = args.profile or profile()
    cls = load_protocol(args.protocol)
    configs = [("config", _config(args.config))] if args.config else profile_configs(name)
    # an example budget alone runs every chunk of it; --budget adds a time limit
    budget = args.budget if args.budget is not None else (
        None if args.examples else profile_budget(name))
    database = args.database if args.database is not None else profile_spec(name)
    if args.database is None and "://" not in database and database != "none" and (
            why := _unwritable(database, "dir")) is not None:
        # the profile's own directory, unusable (.hypothesis a file): a failure found was
        # kept nowhere, without a word (a review, 2026-12-05)
        print(f"flushcheck: warning: the example database {database} cannot be used "
              f"({why}): failures are not kept (--database DIR or none)", file=sys.stderr)
        database = "none"
    if len(configs) == 1:
        return _certify_one(args, cls, configs[0][1], budget, database)[0]
    rows = []
    for i, (cname, cfg) in enumerate(configs):
        if i:
            print()
        print(f"== profile {name}: config {cname} ({i + 1} of {len(configs)})")
        code, res = _certify_one(args, cls, cfg, budget, database, cname)
        rows.append((cname, code, res))
        if code == EXIT_INTERRUPTED:
            break
    print(f"\nflushcheck certify {protocol_ref(cls)} --profile {name}: {len(rows)} configs")
    for cname, code, res in rows:
        print(f"  {cname:12} {counted(res.examples, 'example'):>19} "
              f"{counted(res.steps, 'step'):>18}  {_verdict_word(res)}")
    codes = [c for _, c, _ in rows]
    # a config whose outputs or bounded check failed (exit 2) is no pass either: a profile
    # returned 0 for it (a review, 2026-12-06)
    for worst in (EXIT_BUG, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_INCOMPLETE):
        if worst in codes:
            return worst
    return EXIT_PASS


def _repro_stem(args, protocol: str, seed: int, cfg, cname: str | None) -> str:
    """The name certify saves a failure under, without ``.json``: ``P-SEED``, then the
    profile's config name, then what else changes the failures a seed finds: ``strict``,
    the engine when not the default walk, and a digest (6 hex digits) of a ``--config``
    that is not the default machine, a ``--steps`` or a ``--chunk``; so that two runs
    asking for different things keep both reproducers.

    Before 2026-12-05 the name was protocol, seed and profile config only, and
    ``certify linux --strict`` overwrote the F1 reproducer that ``certify linux --config
    reclaim_activates_dirty_file=true`` had just saved (a user review).

    Example::

        >>> import argparse
        >>> a = argparse.Namespace(strict=True, engine="walk", config=[], steps=50, chunk=None)
        >>> from conformance.config import DEFAULT
        >>> _repro_stem(a, "linux", 0, DEFAULT, None)
        'linux-0-strict'
    """
    import hashlib

    from .config import DEFAULT
    from .defaults import DEFAULT_CHUNK

    tags = [f"{protocol}-{seed}"] + ([cname] if cname else [])
    if args.strict:
        tags.append("strict")
    if args.engine != "walk":
        tags.append(args.engine)
    # every field of the config that differs from the default machine (describe() leaves
    # some out, max_op_steps among them); --steps only where the engine reads it, --chunk
    # only when not the engine's default (a review, 2026-12-05)
    default = attrs.asdict(DEFAULT)
    varied = [f"{k}={v}" for k, v in sorted(attrs.asdict(cfg).items()) if v != default[k]] \
        + ([f"steps={args.steps}"] if args.engine == "hypothesis" and args.steps != 50 else []) \
        + ([f"chunk={args.chunk}"] if args.chunk not in (None, DEFAULT_CHUNK[args.engine])
           else [])
    if varied:
        tags.append(hashlib.blake2b("\n".join(varied).encode(), digest_size=3).hexdigest())
    return "-".join(tags)


def _verdict_word(res) -> str:
    from .certificate import verdict_of

    return verdict_of(res)


def _certify_one(args, cls, cfg, budget, database, cname: str | None = None):
    """One certify run under one machine config: report, reproducers, certificate.
    Returns (exit status, Result)."""
    from .certify import certify
    from .progress import CertifyProgress
    from .report import certify_report
    from .reproducer import git_commit, save

    label = cls.name + (f" [{cname}]" if cname else "")
    with CertifyProgress(label, total=args.examples) as progress:
        res = certify(cls, budget_s=budget, seed=args.seed, strict=args.strict, cfg=cfg,
                      steps=args.steps, chunk=args.chunk, jobs=args.jobs,
                      max_examples=args.examples, scheduler=args.scheduler,
                      database=database, engine=args.engine, progress=progress)
    bound_error = None  # certify --bound's one-line error, said after the report
    if getattr(args, "bound", None) and not res.interrupted:  # the bounded check beside it
        if args.bound_result is None and args.bound_error is None:  # its config and menu
            from .boundcli import run_bound  # are not the profile's: once

            try:
                args.bound_result = run_bound(cls, args.bound_cfg, args.bound,
                                              args.bound_menu, strict=args.strict,
                                              budget=args.bound_budget, jobs=args.jobs,
                                              quiet=True)
            except UsageError as exc:
                # the random search's report stands (a failure with its reproducer); the
                # bounded check's error (state outside the machine) is said after it, for
                # each config of a profile, and the status is no pass. Before 2026-12-06
                # the error alone was printed, and a failure found was lost.
                args.bound_error = f"the bounded check: {exc}"
        bound_error = args.bound_error
        res.bounded = args.bound_result
    commit = git_commit()
    shown = _commit_shown(commit)
    bounded = getattr(res, "bounded", None)
    # a bounded check stopped by Ctrl-C after it found a counterexample (a lazy eviction's
    # failing pair, Result.shortest) has a verdict: FAIL, as `bound` says it (a review,
    # 2026-12-06: it read "interrupted: no verdict")
    found = bounded is not None and bounded.failure is not None
    if not res.failures and not found and (res.interrupted or (
            bounded is not None and bounded.stopped == "interrupted")):
        print(certify_report(res, cls, shown, []))  # what ran so far; no certificate
        problems: list = []
        _bound_block(bounded, args.repro_dir, problems)
        if args.out:  # a certificate states a verdict, and there is none
            print(f"certificate: none written to {args.out} (interrupted: no verdict)")
        return outputs_status(problems, EXIT_INTERRUPTED), res
    if res.examples == 0 and not res.failures:
        # a verdict on nothing is not a PASS (a budget too small for the workers to start)
        raise UsageError(f"certify ran 0 examples in {res.elapsed_s:.2f} s: raise --budget")
    paths, problems = [], []  # problems: outputs not written (outputs_status)
    stem = _repro_stem(args, res.protocol, res.seed, res.config, cname)
    for i, f in enumerate(res.failures):
        if f.machine is not None:
            suffix = "" if i == 0 else f"-{f.rule}"
            path = os.path.join(args.repro_dir, f"{stem}{suffix}.json")
            if _written(problems, "reproducer", path,
                        lambda: save(f, path, seed=res.seed)) is None:
                break  # the report pairs the i-th path with the i-th failure
            paths.append(path)
    if paths and res.litmus:  # the failure's operations as a scenario, beside its reproducer
        lit = os.path.splitext(paths[0])[0] + ".litmus"
        _written(problems, "scenario", lit, lambda: _write_text(lit, res.litmus))
    print(certify_report(res, cls, shown, paths))
    bound_path = _bound_block(bounded, args.repro_dir, problems)
    if bounded is not None:  # the random search's verdict and the bounded check's, joined
        print(f"  overall   {_verdict_word(res)}")
    if args.show_program and res.failures:  # (a pass has no program)
        print("\nHypothesis program:\n" + (res.hypothesis_program or
                                             "(none: Hypothesis printed no steps for it)"))
    if bound_error is not None:
        problems.append(bound_error)
        if args.out:  # a certificate of --bound K without the bounded check's result
            problems.append(f"certificate: none written to {args.out} (the bounded check "
                            "did not run)")
    elif args.out:
        from .certificate import JSON_NAME, build, litmus_cells, write

        out = os.path.join(args.out, cname) if cname else args.out
        cert = build(res, cls, commit, args.argv, paths, litmus_cells(cls), bound_path)
        done = _written(problems, "certificate", os.path.join(out, JSON_NAME),
                        lambda: write(cert, out))
        if done is not None:
            jpath, mpath = done
            print(f"certificate: {jpath}, {mpath}   (flushcheck certify --reproduce {jpath})")
    return outputs_status(problems, exit_status(_verdict_word(res))), res


def _commit_shown(commit: str) -> str:
    """The report's commit, marked when the checkout has uncommitted changes to tracked
    files (the certificate records the same as ``dirty``; the terminal report did not say
    it, a user review of 2026-12-05)."""
    from .certificate import DIRTY, tree_dirty

    return commit + (DIRTY if tree_dirty() else "")


def _write_text(path: str, text: str) -> str:
    with open(path, "w") as fh:
        fh.write(text)
    return path


def _written(problems: list, what: str, path: str, write):
    """``write()``'s result; None, with a line for ``problems``, when it raises an OSError:
    an output the run could not write at its end (its path made a directory meanwhile, a
    full disk: what :func:`_check_outputs` cannot refuse up front). Before, that was a
    traceback (exit 3) in place of the verdict."""
    try:
        return write()
    except OSError as exc:
        problems.append(unwritten(what, path, exc))
        return None


def outputs_status(problems: list, code: int) -> int:
    """Say on stderr, one line each, which outputs ``problems`` were not written (after
    the verdict, printed first on stdout), and the exit status: the verdict's ``code``,
    or :data:`EXIT_USAGE` where that is a pass (a PASS without the certificate or the file
    asked for is no clean run).

    Example::

        >>> outputs_status([], EXIT_PASS), outputs_status(["x"], EXIT_FAIL)
        (0, 1)
    """
    if not problems:
        return code
    sys.stdout.flush()
    for line in problems:
        print(f"flushcheck: error: {line}", file=sys.stderr)
    return EXIT_USAGE if code == EXIT_PASS else code


def exit_status(verdict: str) -> int:
    """The exit status of a verdict (:func:`conformance.certificate.verdict_of`).

    >>> exit_status("PASS"), exit_status("FAIL: S3"), exit_status("INCOMPLETE")
    (0, 1, 4)
    """
    if verdict == "PASS":
        return EXIT_PASS
    if verdict == "MODEL ERROR":
        return EXIT_BUG
    if verdict == "INTERRUPTED":
        return EXIT_INTERRUPTED
    if verdict == "INCOMPLETE":
        return EXIT_INCOMPLETE
    return EXIT_FAIL  # FAIL, PROTOCOL ERROR, NO VERDICT


def _bound_block(bres, repro_dir: str, problems: list) -> str | None:
    """Print ``certify --bound``'s result under certify's report, with its counterexample
    saved (or a line for ``problems``); the reproducer's path (None without one)."""
    if bres is None:
        return None
    from .boundcli import bound_lines, counterexample_path, path_text, save_counterexample

    print("\n".join(bound_lines(bres)))
    if bres.failure is None:
        return None
    path = _written(problems, "reproducer", counterexample_path(bres, repro_dir),
                    lambda: save_counterexample(bres, repro_dir))
    print(f"            {bres.counterexample}: {path_text(bres.path)}")
    if path:
        print(f"            reproducer {path}  (flushcheck replay {path})")
    return path


def _certify_reproduce(args) -> int:
    """``flushcheck certify --reproduce CERTIFICATE``: the recorded work again; 0 when it
    reaches the recorded verdict, 1 when not. Any other option but ``--jobs`` and
    ``--scheduler`` (where it runs) is refused: the certificate fixes the protocol, the seed,
    the config and the rest, and a flag ignored would seem to apply."""
    from .certificate import reproduce
    from .progress import CertifyProgress
    from .report import counted, config_text

    # compared with the parser's own defaults, so an option added later is refused too
    defaults = vars(build_parser().parse_args(["certify"]))
    allowed = {"reproduce", "jobs", "scheduler", "cmd", "fn"}
    given = [(k if k == "protocol" else "--" + k.replace("_", "-"))
             for k, v in defaults.items() if k not in allowed and getattr(args, k, v) != v]
    if given:
        raise UsageError(f"certify --reproduce re-runs what {args.reproduce} records: it takes "
                         f"no {', '.join(given)} (only --jobs and --scheduler)")
    with CertifyProgress(f"--reproduce {args.reproduce}") as progress:
        rep = reproduce(args.reproduce, jobs=args.jobs, scheduler=args.scheduler,
                        progress=progress)
    res = rep.result
    print(f"flushcheck certify --reproduce {args.reproduce}")
    print(f"  protocol  {res.protocol}: source "
          + ("the same (sha256 matches)" if rep.source_same else "DIFFERS from the recorded"))
    print(f"  config    {config_text(res)}")
    print(f"  seed      {res.seed}   {counted(res.chunks, 'chunk')} of {counted(res.chunk, 'example')} "
          f"({res.engine} engine)")
    print(f"  ran       {counted(res.examples, 'example')}, {counted(res.steps, 'step')} in "
          f"{res.elapsed_s:.1f} s")
    if getattr(res, "bounded", None) is not None:
        print(f"  bounded   {res.bounded.headline()}")
    print(f"  recorded  {rep.recorded}")
    print(f"  now       {rep.verdict}")
    for note in rep.notes:
        print(f"  note      {note}")
    print(f"  verdict   {'MATCHED' if rep.matched else 'DID NOT MATCH'}")
    if not rep.matched:  # what the run gives now, as certify would show it
        for f in res.failures:
            print("\n" + f.report(last=None))
        bres = getattr(res, "bounded", None)
        if bres is not None and bres.failure is not None:
            from .boundcli import path_text

            print(f"\nbounded: {bres.counterexample} at K={bres.fail_k}: "
                  f"{path_text(bres.path)}\n\n" + bres.failure.report(last=None))
    return EXIT_PASS if rep.matched else EXIT_FAIL


def cmd_soundness(args) -> int:
    """The soundness campaign (docs/SOUNDNESS.md): 0 no violation, 1 a violation, 3 a model
    error, 130 interrupted before anything was found; windows (--strict) do not fail it."""
    import platform
    import shlex
    import time

    from .report import counted, soundness_markdown, soundness_report
    from .reproducer import git_commit
    from .soundness import campaign, correct_protocols

    require_at_most("--actions", args.actions)
    protos = args.protocol or correct_protocols()
    configs = CONFIG_SETS[args.config_set]

    def progress(cell) -> None:  # stderr: stdout is the report
        print(f"  {cell.job.protocol} {cell.job.config}: {counted(cell.examples, 'example')}, "
              f"{counted(cell.steps, 'step')}, {cell.rate:,.0f} steps/s, "
              f"{counted(cell.violations, 'violation')}"
              + (f", {counted(cell.windows, 'window')}" if args.strict else ""),
              file=sys.stderr, flush=True)

    res = campaign(protos, configs, budget_s=args.budget, seed=args.seed, jobs=args.jobs,
                   strict=args.strict, actions=args.actions, shrink_s=args.shrink_seconds,
                   repro_dir=args.repro_dir, progress=progress, swarm=args.swarm)
    commit = git_commit()
    print(soundness_report(res, commit))
    problems = [line for cell in res.cells for line in cell.unwritten]
    if args.markdown:
        command = "flushcheck " + " ".join(shlex.quote(a) for a in args.argv)
        text = soundness_markdown(res, command, commit, time.strftime("%Y-%m-%d"),
                                  platform.python_version(), os.cpu_count() or 1)
        if _written(problems, "report", args.markdown,
                    lambda: _write_text(args.markdown, text)) is not None:
            print(f"wrote {args.markdown}")
    if res.model_error:
        code = EXIT_BUG
    elif res.verdict == "FAIL":
        code = EXIT_FAIL
    else:
        code = EXIT_INTERRUPTED if res.interrupted else EXIT_PASS
    return outputs_status(problems, code)


def cmd_replay(args) -> int:
    from .errors import ModelError as _ME
    from .reproducer import git_commit, load, protocol_of, replay

    data = load(args.file)
    try:  # before anything is printed: a bad reference is one line
        cls = protocol_of(data)
    except UsageError as exc:
        raise UsageError(f"reproducer {args.file}: {exc}") from None
    print(f"flushcheck replay {args.file}")
    seed = data.get("seed")  # a bounded check's counterexample has none: it is a path
    print(f"  protocol  {data['protocol']}   commit {data.get('commit')}"
          + (f"   seed {seed}" if seed is not None else ""))
    print(f"  recorded  {data.get('verdict')}")
    from .certificate import source_digest

    recorded = data.get("protocol_source_sha256")
    # None: a file written before reproducers recorded the protocol's source
    same = None if not isinstance(recorded, str) else recorded == source_digest(cls)
    try:
        f = replay(data, cls)
    except UsageError as exc:
        if same is not False:
            raise
        # the protocol changed (fixed?): its interleaving points moved under the actions
        print(f"  replayed  the recorded actions no longer apply ({exc}); the protocol's source "
              "differs from the recorded one: the recorded failure did not reproduce")
        return EXIT_PASS
    if f is None:
        print("  replayed  PASS: the recorded failure did not reproduce"
              + (" (the protocol's source differs from the recorded one)" if same is False
                 else ""))
        if same:
            was, now = str(data.get("commit"))[:12], git_commit()[:12]
            known = "unknown" not in (was, now)  # git_commit() outside a checkout
            print(f"  note      the protocol's source is the recorded one: does it keep state "
                  "outside the machine (module or class attributes, which outlive an "
                  "example)? " + (f"The commit is the recorded one too ({now}; uncommitted "
                                  "changes aside)" if known and was == now else
                                  f"Or the model changed: recorded commit {was}, now {now}"))
        return EXIT_PASS
    print(f"  replayed  {f.headline()}\n")
    print(f.report(last=None))
    return EXIT_BUG if isinstance(f, _ME) else EXIT_FAIL


def cmd_luf_doc(args) -> int:
    """docs/LUF.md and its plain-text summary docs/LUF.txt (one computation for both);
    ``--text`` prints the summary; ``--check`` exits 1 if either file is stale."""
    from .lufdoc import DOC_PATH, TEXT_PATH, generate, generate_text

    if args.text:
        print(generate_text(), end="")
        return EXIT_PASS
    outputs = [(args.output or DOC_PATH, generate())]
    if args.output is None:
        outputs.append((TEXT_PATH, generate_text()))
    if args.check:
        stale = []
        for path, text in outputs:
            try:
                with open(path) as fh:
                    old = fh.read()
            except OSError:
                old = None
            if old != text:
                stale.append(path)
        for path in stale:
            print(f"{path} is stale: run 'flushcheck luf-doc' and commit it")
        if not stale:
            print(" and ".join(p for p, _ in outputs) + " up to date")
        return EXIT_FAIL if stale else EXIT_PASS
    for path, text in outputs:
        try:
            _write_text(path, text)
        except OSError as exc:  # no verdict to keep: bad input, one line
            raise UsageError(unwritten("file", path, exc)) from None
        print(f"wrote {path}")
    return EXIT_PASS


def cmd_cost(args) -> int:
    """``flushcheck cost``: remote IPIs and flushes per 1,000 operations (conformance/cost.py)."""
    from .cost import main as cost_main

    return cost_main(args.rest)


def cmd_explore(args) -> int:
    from .corpus import ANY, as_expected, expectation
    from .search.explorer import explore
    from .litmus import check_expect_names, load
    from .picture import html_path
    from .registry import load_protocol, protocol_ref
    from .reproducer import git_commit, save

    sc = load(args.scenario)
    cls = load_protocol(args.protocol)
    check_expect_names(sc, cls.name)  # known now: the protocol run may be a file's
    if args.shorter_than is not None and args.shorter_than < 1:
        raise UsageError(f"--shorter-than {args.shorter_than}: a length of at least 1 choice")
    require_states(args.max_states)
    if args.preemptions is not None and args.preemptions < 0:
        raise UsageError(f"--preemptions {args.preemptions}: at least 0")
    res = explore(sc, cls, dedup=not args.no_dedup, preemption_bound=args.preemptions,
                  max_states=args.max_states, strict=args.strict, shorter_than=args.shorter_than)
    bound = f" --shorter-than {args.shorter_than}" if args.shorter_than is not None else ""
    if args.preemptions is not None:
        bound += f" --preemptions {args.preemptions}"
    ref = shlex.quote(protocol_ref(cls))  # a file by its absolute path
    print(f"flushcheck explore {sc.path} --protocol {ref}{bound}   commit {git_commit()}")
    print(f"  config    {sc.config.describe()}")
    for line in sc.config.caveats():
        print(f"  caveat    {line}")
    print(f"  searched  {res.summary()}")
    exp = expectation(sc, res.protocol, cls)
    differs = not as_expected(res.verdict, exp)
    if exp == ANY:  # a protocol the shipped corpus was not written for (corpus.expectation)
        exp = f"no verdict in particular: the corpus records none for {res.protocol}"
    if res.failure is None and not res.complete:  # no verdict: a PASS here would claim too much
        print(f"  verdict   INCOMPLETE: no violation in the states searched   (expected {exp})")
        print("  the search stopped at --max-states before covering every interleaving")
    elif res.failure is None and (args.shorter_than is not None or args.preemptions is not None):
        # a bound, not the scenario's verdict: --preemptions K read "PASS (expected S3,
        # DIFFERS)" for a protocol that fails with more preemptions (2026-12-06), and
        # with --shorter-than too it read NONE SHORTER, naming only one of the two bounds
        k, n = args.preemptions, args.shorter_than
        bounds = ([] if n is None else [f"fewer than {n} choices"]) + (
            [] if k is None else [f"at most {k} preemption{'s' * (k != 1)}"])
        word, anyhow = (("NONE SHORTER", "at any length") if n is not None else
                        (f"NONE WITHIN {k} PREEMPTION{'S' * (k != 1)}", "with any number"))
        print(f"  verdict   {word}: no interleaving of {' and '.join(bounds)} fails   "
              f"(expected {exp} {anyhow})")
    else:
        print(f"  verdict   {res.verdict.upper() if res.failure is None else 'FAIL: ' + res.verdict}"
              f"   (expected {exp}{', DIFFERS' if differs else ''})")
    if res.failure is not None:
        f = res.failure
        print(f"  shortest counterexample: {len(res.path)} choices "
              f"({', '.join(_choice_text(sc, c) for c in res.path)})")
        problems = []
        if f.machine is not None:
            # what else changes the counterexample found: strict O1, a preemption bound (so
            # that such a run keeps its own file, as certify's names do since 2026-12-05)
            tags = ("-strict" if args.strict else "") + (
                f"-p{args.preemptions}" if args.preemptions is not None else "")
            path = os.path.join(args.repro_dir, f"explore-{sc.name}-{res.protocol}{tags}.json")
            if _written(problems, "reproducer", path, lambda: save(f, path)) is not None:
                print(f"  reproducer {path}  (flushcheck replay {path})")
                if os.path.exists(html_path(path)):
                    print(f"  picture    {html_path(path)}")
        print()
        print(f.report(last=None))
        return outputs_status(problems, EXIT_BUG if isinstance(f, ModelError) else EXIT_FAIL)
    return EXIT_PASS if res.complete else EXIT_FAIL


def _choice_text(sc, c) -> str:
    kind, i = c
    if kind == "t":
        from .litmus import _thread_name
        return _thread_name(sc.threads[i][0])
    _no, cpu, what, vp, _n = sc.hw[i]
    return f"hw CPU{cpu} {what} v{vp}"


def cmd_litmus(args) -> int:
    from .corpus import check, select, table
    from .litmus import corpus
    from .registry import load_protocol, protocol_names, row_labels

    scs = select(corpus(args.dir) if args.dir else corpus(), args.scenarios)
    require_states(args.max_states)
    protos, broken = args.protocol, []
    if not protos:  # every module in protocols/: one that cannot load does not hide the rest
        protos = []
        for name in protocol_names():
            try:
                load_protocol(name)
                protos.append(name)
            except UsageError as exc:
                broken.append(str(exc))
    cells = check(scs, protos, args.max_states)
    print(table(cells, scs, protos, row_labels(protos)))
    if args.verbose:
        print()
        for c in cells:
            print(f"{c.scenario:40} {c.protocol:28} {c.verdict:8} {c.seconds:6.2f}s  {c.detail}")
    if broken:  # the table holds the others; the run is still not clean
        for text in broken:
            print(f"flushcheck: error: skipped: {text}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_PASS if all(c.ok for c in cells) else EXIT_FAIL


def cmd_list(args) -> int:
    """The built-in protocols, then those published under the entry-point group
    ``flushcheck.protocols`` (marked ``[entry point]``)."""
    from .registry import entry_point_names, load_protocol, protocol_names
    from .report import protocol_summary

    builtin = protocol_names()
    rows = [(n, n, "") for n in builtin] + [
        (n, n, "[entry point] ") for n in entry_point_names() if n not in builtin]
    status = EXIT_PASS
    width = max([len(name) for name, _r, _m in rows] + [1])  # every summary in one column
    for name, ref, mark in rows:
        try:
            print(f"{name:{width}}  {mark}{protocol_summary(load_protocol(ref))}")
        except UsageError as exc:
            print(f"{name:{width}}  {mark}(error: {exc})")
            status = EXIT_USAGE  # listed, but a module that cannot load is bad input
    return status


def cmd_new(args) -> int:
    """``flushcheck new NAME [--base linux] [--dir DIR]``: write DIR/NAME.py, a protocol
    module listing every hook the base overrides (conformance/hooks.py); never overwrites."""
    from .hooks import new_module, write_new

    new_module(args.name, args.base)  # a bad name or base is refused before a folder is made
    if os.path.exists(args.dir) and not os.path.isdir(args.dir):
        raise UsageError(f"flushcheck new: --dir {args.dir} is not a directory")
    made = not os.path.exists(args.dir)
    try:
        os.makedirs(args.dir, exist_ok=True)  # like certify --out: a new path is made
        path = write_new(args.name, args.base, args.dir)
    except OSError as exc:  # unwritable (/proc, /sys, read-only), --dir a file, ...
        what = exc.filename or os.path.join(args.dir, f"{args.name}.py")
        raise UsageError(f"flushcheck new: cannot write {what}: {exc.strerror or exc}") from None
    if made:  # said, so that a mistyped --dir is seen (a user review, 2026-12-07)
        print(f"created the folder {args.dir} (it did not exist)")
    print(f"wrote {path}: {args.name}, a copy of {args.base} with its hooks listed")
    print(f"  certify it: flushcheck certify {path}")
    return EXIT_PASS


def _failing_protocol(sc):
    """The protocol ``picture`` draws a litmus file under: the first its ``expect`` lines
    name as failing; else, when ``*`` expects a failure (a finding about mainline,
    docs/FINDINGS.md), ``linux`` if it is expected to fail, or the first protocol found
    that is; None if every protocol is expected to pass."""
    named = next((p for p, v in sc.expect.items() if p != "*" and v != "pass"), None)
    if named is not None or sc.expect.get("*", "pass") == "pass":
        return named
    from .registry import protocol_names

    names = protocol_names()
    return next((p for p in ["linux"] + names if p in names and sc.expected(p) != "pass"), None)


def cmd_picture(args) -> int:
    """``flushcheck picture FILE [-o OUT]``: a failure as an HTML page with an inline SVG
    (conformance/picture.py). FILE is a saved reproducer, or a litmus file: explored under
    ``--protocol`` (default: :func:`_failing_protocol`) and its
    shortest counterexample drawn. ``-o -`` writes the page to stdout."""
    from .picture import html_path, render_html, write_html

    require_states(args.max_states)  # as explore and litmus do, before the file is read
    if args.file.endswith(".litmus"):
        from .search.explorer import explore
        from .litmus import check_expect_names, load as load_litmus
        from .registry import load_protocol

        sc = load_litmus(args.file)
        proto = args.protocol or _failing_protocol(sc)
        if proto is None:
            raise UsageError(f"{args.file}: no protocol expected to fail it: give --protocol")
        try:
            cls = load_protocol(proto)
        except UsageError:
            if args.protocol:
                raise
            # a scenario certify saved for a file protocol names it by its stem
            raise UsageError(f"{args.file}: its expect lines name {proto!r}, which is no "
                             "protocol flushcheck can load: give --protocol (a file protocol "
                             "by its path)") from None
        check_expect_names(sc, cls.name)
        res = explore(sc, cls, max_states=args.max_states, strict=args.strict)
        if res.failure is None and not res.complete:  # no verdict; it read "(pass)" (2026-12-06)
            raise UsageError(f"{args.file} under {res.protocol}: no counterexample in the "
                             f"first {args.max_states} states (the search stopped at "
                             "--max-states): nothing to draw; raise --max-states")
        if res.failure is None or res.failure.machine is None:
            raise UsageError(f"{args.file} under {res.protocol}: no counterexample "
                             f"({res.verdict}): nothing to draw")
        what = res.failure
        out = args.output or os.path.join("repro", f"explore-{sc.name}-{res.protocol}.html")
        title = f"flushcheck picture: {sc.name} under {res.protocol}"
    else:
        from .reproducer import load

        what = load(args.file)
        out = args.output or html_path(args.file)
        title = f"flushcheck picture: {what['protocol']}, {os.path.basename(args.file)}"
    command = "flushcheck picture " + " ".join(
        w for w in args.argv[1:] if w not in ("-o", "--output", args.output))
    if out == "-":
        sys.stdout.write(render_html(what, title=title, command=command))
        return EXIT_PASS
    try:
        print(f"wrote {write_html(what, out, title=title, command=command)}")
    except OSError as exc:  # no verdict to keep: bad input, one line
        raise UsageError(unwritten("picture", out, exc)) from None
    return EXIT_PASS


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``flushcheck bound: error: argument
    -k/--bound: invalid int value: 'x'``) and exit 2, as every other bad input; argparse's
    own prints the whole usage block first. Its subcommands' parsers are of this class too
    (``add_subparsers`` makes them of the parent's)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} ({self.prog} --help)\n")


def _version() -> str:
    """The installed flushcheck's version and this checkout's commit (a report names both).

    >>> _version().split()[0] != ""
    True
    """
    from .certificate import flushcheck_version
    from .reproducer import git_commit

    commit = git_commit()
    return flushcheck_version() + (f" (commit {commit[:12]})" if commit else "")


class _VersionAction(argparse.Action):
    """``--version``: the version is looked up (a ``git`` call) only when asked for."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"flushcheck {_version()}")  # stdout, as argparse's own version action
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="flushcheck", description=__doc__.split("\n\n")[0])
    p.add_argument("--version", nargs=0, action=_VersionAction,
                   help="print the version and commit, and exit")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("certify", help="fuzz one protocol against every property")
    c.add_argument("protocol", nargs="?", default=None, help=PROTOCOL_FORMS)
    c.add_argument("--budget", type=float, default=None,
                   help="seconds of fuzzing per machine config (default: the profile's, 60 s; "
                        "none with --examples)")
    c.add_argument("--examples", type=int, default=None, metavar="N",
                   help="an example budget: a fixed list of chunks, the same on any executor")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--steps", type=int, default=50,
                   help="the Hypothesis engine's steps per example (default 50); the walk "
                        "draws 20-200 actions per example itself")
    c.add_argument("--chunk", type=int, default=None, metavar="N",
                   help="examples per chunk, the unit of work sent to a worker (default 500 "
                        "walk examples, 50 Hypothesis examples)")
    c.add_argument("--engine", default="walk", choices=ENGINES,
                   help="the search: the raw swarm walk (default; a Hypothesis step costs "
                        "about 16x a raw one) or Hypothesis's state machine (what the pytest plugin runs)")
    c.add_argument("--jobs", type=int, default=default_jobs(),
                   help=f"worker processes (default: the {default_jobs()} CPUs available; "
                        "with --scheduler, the cluster's worker threads instead)")
    c.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the chunks on a Dask cluster (e.g. tcp://10.0.0.5:8786) instead of "
                        "local processes; needs the dask extra")
    c.add_argument("--database", default=None, metavar="DIR|redis://HOST:PORT/DB|none",
                   help="where failing examples are kept and replayed first (default: the "
                        "profile's)")
    c.add_argument("--profile", default=None, choices=PROFILES,
                   help="dev: .hypothesis/flushcheck (the default); ci: no database (the "
                        "default when CI=true); fleet: Redis at $FLUSHCHECK_REDIS; thorough: "
                        "3 machine configs, 200 s each; nightly: 6 configs, 600 s each")
    c.add_argument("--out", default=None, metavar="DIR",
                   help="write DIR/certificate.json and DIR/certificate.md (with several "
                        "configs, DIR/CONFIG/...)")
    c.add_argument("--reproduce", default=None, metavar="CERTIFICATE",
                   help="re-run the work a certificate.json records; exit 1 unless it reaches "
                        "the same verdict")
    c.add_argument("--strict", action="store_true", help="O1 strict: no transient exception")
    c.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="machine size, e.g. --config ncpus=3 (repeat the flag, or "
                        "comma-separate: --config ncpus=3,vpages=6)")
    c.add_argument("--bound", type=int, default=None, metavar="K",
                   help="also run the bounded check (every program of <= K operations, every "
                        "interleaving) on the small config with --config applied over it; "
                        "docs/BOUNDED.md")
    c.add_argument("--bound-ops", default="small", metavar="MENU",
                   help="the bounded check's operation menu (small, full, all, or kinds a,b,c)")
    c.add_argument("--bound-budget", type=float, default=None, metavar="SECONDS",
                   help="stop the bounded check after this long (a partial result)")
    c.add_argument("--repro-dir", default="repro")
    c.add_argument("--show-program", action="store_true", help="with --engine hypothesis: also print a failure's Hypothesis program")
    c.set_defaults(fn=cmd_certify)
    so = sub.add_parser("soundness", help="fuzz the correct protocols at raw-walk speed "
                        "(false positives of the oracle)")
    so.add_argument("--protocol", action="append", default=None, metavar="NAME",
                    help="only these protocols (default: immediate, linux and every module "
                         "with CORRECT = True)")
    so.add_argument("--config-set", default="default", choices=tuple(CONFIG_SETS),
                    help="machine configs (default: 5; quick: the default machine only; "
                         "wide: 7; docs/SOUNDNESS.md)")
    so.add_argument("--budget", type=float, default=30.0, metavar="SECONDS",
                    help="seconds of fuzzing per (protocol, config) (default 30)")
    so.add_argument("--jobs", type=int, default=default_jobs(), metavar="N",
                    help=f"worker processes (default: the {default_jobs()} CPUs available)")
    so.add_argument("--seed", type=int, default=0)
    so.add_argument("--strict", action="store_true",
                    help="O1 strict: count and group the windows the kernel tolerates")
    so.add_argument("--actions", type=int, default=ACTIONS_PER_EXAMPLE, metavar="N",
                    help=f"actions per example (default {ACTIONS_PER_EXAMPLE})")
    so.add_argument("--swarm", action="store_true",
                    help="run certify's swarm walk (rule mixes, PCT scheduling, 20-200 "
                         "actions per example) instead of the uniform walk")
    so.add_argument("--shrink-seconds", type=float, default=3.0, metavar="SECONDS",
                    help="time to shrink each kept failing example (default 3)")
    so.add_argument("--repro-dir", default="repro")
    so.add_argument("--markdown", default=None, metavar="FILE",
                    help="also write the report as markdown (for docs/SOUNDNESS.md)")
    so.set_defaults(fn=cmd_soundness)
    r = sub.add_parser("replay", help="re-run a saved reproducer exactly")
    r.add_argument("file")
    r.set_defaults(fn=cmd_replay)
    d = sub.add_parser("luf-doc", help="regenerate docs/LUF.md (the LUF verdict table)")
    d.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    d.add_argument("--output", default=None)
    d.add_argument("--text", action="store_true",
                   help="print the plain-text summary for a mailing-list reply (docs/LUF.txt)")
    d.set_defaults(fn=cmd_luf_doc)
    co = sub.add_parser("cost", help="TLB flush cost (IPIs, full/range flushes) per 1,000 operations",
                        add_help=False)
    co.add_argument("rest", nargs=argparse.REMAINDER,
                    help="PROTOCOL... [--mix M]... [--seed S] [--ops N] [--markdown] [--baseline P]")
    co.set_defaults(fn=cmd_cost)
    from .boundcli import add_parser as add_bound_parser

    add_bound_parser(sub, PROTOCOL_FORMS, default_jobs())
    e = sub.add_parser("explore", help="explore every interleaving of one threaded litmus file")
    e.add_argument("scenario", help="a .litmus file with 'thread' sections")
    e.add_argument("--protocol", required=True, help=PROTOCOL_FORMS)
    e.add_argument("--no-dedup", action="store_true", help="do not merge equal states")
    e.add_argument("--preemptions", type=int, default=None, metavar="K",
                   help="explore only schedules with at most K preemptions")
    e.add_argument("--max-states", type=int, default=200_000)
    e.add_argument("--shorter-than", type=int, default=None, metavar="L",
                   help="look only for a counterexample of fewer than L choices (a proof that "
                        "a known failure of L choices is shortest: the deepest level is checked, "
                        "not kept)")
    e.add_argument("--strict", action="store_true", help="O1 strict: no transient exception")
    e.add_argument("--repro-dir", default="repro")
    e.set_defaults(fn=cmd_explore)
    lt = sub.add_parser("litmus", help="run the litmus corpus against every protocol (herd-style table)")
    lt.add_argument("scenarios", nargs="*", help="scenario names (default: all)")
    lt.add_argument("--protocol", action="append", default=None,
                    help=f"only these protocols (repeatable; {PROTOCOL_FORMS})")
    lt.add_argument("--dir", default=None, help="litmus directory (default: litmus/)")
    lt.add_argument("--max-states", type=int, default=None)
    lt.add_argument("-v", "--verbose", action="store_true", help="one line per cell with timings")
    lt.set_defaults(fn=cmd_litmus)
    ls = sub.add_parser("list", help="list the protocols found in protocols/ and those "
                        "published under the entry-point group flushcheck.protocols")
    ls.set_defaults(fn=cmd_list)
    nw = sub.add_parser("new", help="write NAME.py: a protocol subclassing --base with every "
                        "hook it overrides listed (docs/PROTOCOLS.md)")
    nw.add_argument("name", help="the module name (NAME.py is written)")
    nw.add_argument("--base", default="linux", help=f"the protocol to start from (default "
                    f"linux; {PROTOCOL_FORMS})")
    nw.add_argument("--dir", default=".", help="where to write it (default: here)")
    nw.set_defaults(fn=cmd_new)
    pi = sub.add_parser("picture", help="draw a failure as an HTML page (inline SVG, one lane "
                        "per CPU): a saved reproducer, or a litmus file's shortest counterexample")
    pi.add_argument("file", help="a reproducer (.json) or a litmus file (.litmus)")
    pi.add_argument("-o", "--output", default=None, metavar="FILE",
                    help="where to write it (default: the reproducer's name with .html; for a "
                         "litmus file repro/explore-NAME-PROTOCOL.html; - for stdout)")
    pi.add_argument("--protocol", default=None,
                    help="for a litmus file: the protocol to explore it under (default: the "
                         "first its expect lines name as failing; linux when '*' expects a "
                         "failure and linux is not named)")
    pi.add_argument("--max-states", type=int, default=200_000)
    pi.add_argument("--strict", action="store_true", help="O1 strict: no transient exception")
    pi.set_defaults(fn=cmd_picture)
    return p


#: a run ended by SIGTERM (a CI job's timeout, ``kill``), as a shell reports one: 128 + 15
EXIT_TERMINATED = 143
_TERMINATED: list = []


def _terminate_as_interrupt() -> None:
    """SIGTERM to the command's process is taken as Ctrl-C: what ran so far is reported and
    the temporary files go, then the exit status is :data:`EXIT_TERMINATED`. Before
    2026-12-05 a CI job's timeout ended certify with no word and left an empty
    ``/tmp/flushcheck-found-*`` behind (a user review). A worker process forked from here
    inherits the handler; there it does what SIGTERM did (the pool's stop sends it)."""
    import signal

    me = os.getpid()

    def on_term(signum, frame):
        if os.getpid() == me and not _TERMINATED:
            _TERMINATED.append(True)
            interrupts.signalled(signum)  # the user's, not a hook's (interrupts.py)
            raise KeyboardInterrupt
        # a forked worker, or a second SIGTERM (the first one's wind-down did not end the
        # process: a protocol's bare except swallowed it, or the report hangs): end it as
        # SIGTERM always did
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    try:
        signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread: leave it
        pass


def console_main() -> None:
    """The ``flushcheck`` command: :func:`main`, then exit with its status even where the
    protocol left a thread of its own running (a hook's ``threading.Thread(...).start()``):
    Python waits for every such thread at exit, and the command printed its verdict and
    never ended (a review, 2026-12-05). Said in one line on stderr, then the process ends
    without them."""
    import threading

    interrupts.install()  # tells Ctrl-C from a hook's raise KeyboardInterrupt
    _terminate_as_interrupt()
    code = main()
    if code == EXIT_INTERRUPTED and _TERMINATED:
        code = EXIT_TERMINATED
    left = [t.name for t in threading.enumerate()
            if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if left:
        print(f"flushcheck: warning: {len(left)} thread{'s' if len(left) != 1 else ''} "
              f"started by the protocol still running ({', '.join(sorted(left)[:3])}"
              f"{', ...' if len(left) > 3 else ''}): ended with the process",
              file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(code)
    sys.exit(code)


def main(argv=None) -> int:
    """Run one command; its exit status. Output piped into a reader that stops early
    (``flushcheck list | head -1``) ends quietly with :data:`EXIT_PIPE`."""
    try:
        try:
            return _main(argv)
        finally:  # also after --help's SystemExit: a closed pipe fails here, not at exit
            sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away: point stdout at /dev/null so the interpreter's own final
        # flush finds nothing to complain about, and exit as a process killed by SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE


def _check_outputs(args) -> None:
    """Refuse, before any work, output paths that could not be written at the end
    (``--out``/``--repro-dir`` directories, ``--markdown``/``--output`` files), and an
    empty path given to any path option: one line, exit 2, instead of a traceback after
    the whole run."""
    try:
        os.getcwd()
    except FileNotFoundError:  # relative paths below (and the default reproducer dir) need it
        raise UsageError("the current directory no longer exists (removed after the shell "
                         "entered it): cd to an existing directory and run again") from None
    # an empty path read as one not given: certify --out '' wrote no certificate, luf-doc
    # --output '' rewrote docs/LUF.md, --repro-dir '' saved into the current directory, all
    # without a word (new --dir and litmus --dir, --reproduce: a path too)
    for opt in ("out", "repro_dir", "markdown", "output", "database", "dir", "reproduce"):
        if getattr(args, opt, None) == "":
            raise UsageError(f"--{opt.replace('_', '-')} '': an empty path: give a path, or "
                             "leave the option out")
    for opt, kind in (("out", "dir"), ("repro_dir", "dir"), ("markdown", "file"),
                      ("output", "file"), ("database", "dir")):
        path = getattr(args, opt, None)
        if not isinstance(path, str) or not path or (
                opt == "database" and (path == "none" or "://" in path)):
            continue
        why = _unwritable(path, kind)
        if why is not None:
            raise UsageError(f"--{opt.replace('_', '-')} {path}: {why}")


def _unwritable(path: str, kind: str) -> str | None:
    """Why ``path`` (a ``"dir"`` or ``"file"`` to be written) could not be written, or None.
    A symlink to nothing, at ``path`` or above it, cannot (``exists`` is False for it: the
    climb passed it, and the example database behind it kept nothing; a review, 2026-12-05)."""
    if os.path.islink(path) and not os.path.exists(path):
        return f"{os.path.abspath(path)} is a symlink to nothing"
    if os.path.exists(path):
        if (kind == "dir") != os.path.isdir(path):
            return "not a directory" if kind == "dir" else "is a directory"
        probe = path if kind == "dir" else os.path.dirname(os.path.abspath(path))
    else:  # the nearest existing ancestor must be a directory we can write into
        probe = os.path.dirname(os.path.abspath(path))
        if kind == "file" and not os.path.isdir(probe):
            return (f"{probe} is a file, not a directory" if os.path.exists(probe)
                    else f"no such directory {probe}")
        while not os.path.exists(probe):
            if os.path.islink(probe):
                return f"{probe} is a symlink to nothing"
            probe = os.path.dirname(probe)
        if not os.path.isdir(probe):
            return f"{probe} is not a directory"
    if not _writable(probe):
        return f"{probe} is not writable"
    return None


def _writable(directory: str) -> bool:
    """Can a file be made in ``directory``? Tried, not asked: ``os.access`` says yes to root
    everywhere, /proc included, where nothing can be made."""
    import tempfile

    try:
        os.rmdir(tempfile.mkdtemp(prefix=".flushcheck-probe-", dir=directory))
    except OSError:
        return False
    return True


def _worker_died(exc: BaseException) -> bool:
    """Is ``exc`` a process pool's ``BrokenProcessPool``: a worker killed from outside (the
    OOM killer, a signal) or exiting in the middle of a chunk? No verdict can be given for
    work that never reported. (Looked up, not imported: ``explore`` and ``litmus`` start
    without the pool's modules.)"""
    mod = sys.modules.get("concurrent.futures.process")
    return mod is not None and isinstance(exc, mod.BrokenProcessPool)


@contextlib.contextmanager
def _no_exit_from_protocols():
    """``os._exit`` called while a protocol's own frame is on the stack (its file in
    ``watchdog.PROTOCOL_FILES``: a file protocol from its first line on, any protocol's
    modules and hook files once a machine runs it), by anything but flushcheck itself,
    raises :class:`HookRuleBroken` instead of ending the process: a protocol's error with
    its reproducer, or a module that does not load. It ended certify with status 0 and no
    output, a PASS to a script that reads the status, and a ``--jobs`` run with "a worker
    process died (killed by the OS?)" (a review, 2026-12-05). Every other call (flushcheck's
    watchdog, multiprocessing's forked children, a library's) exits as before. Not covered:
    a ``module:Class`` protocol's parent package, which runs before its file is known
    (``registry._watch_source``); a C extension's ``_exit``. ``sys.exit`` raises
    SystemExit, which the runners already take."""
    from .watchdog import PROTOCOL_FILES

    real = os._exit
    ours = os.path.dirname(os.path.abspath(__file__)) + os.sep

    def _exit(code):
        caller = sys._getframe(1)
        if not caller.f_code.co_filename.startswith(ours):  # the watchdog's own exits stand
            f = caller  # a protocol frame anywhere below: a helper module it calls, too
            while f is not None and f.f_code.co_filename not in PROTOCOL_FILES:
                f = f.f_back
            if f is not None:
                raise HookRuleBroken(f"os._exit({code!r}) called at "
                                     f"{os.path.basename(caller.f_code.co_filename)}:"
                                     f"{caller.f_lineno} (from {os.path.basename(f.f_code.co_filename)}:"
                                     f"{f.f_lineno}): a protocol may not end the process")
        real(code)

    os._exit = _exit
    try:
        yield
    finally:
        os._exit = real


def _main(argv) -> int:
    """Parse ``argv`` and run its command; its exit status. Bad input is one line on stderr
    (exit 2); an exception no command expects is a flushcheck bug: its traceback, a line
    saying so, exit 3 (not Python's 1, which means a violation)."""
    try:
        words = list(sys.argv[1:] if argv is None else argv)
        if words[:1] == ["cost"]:  # its own parser (conformance/cost.py), --help included
            args = argparse.Namespace(fn=cmd_cost, rest=words[1:])
        else:
            args = build_parser().parse_args(words)
        args.argv = words  # for reports that quote it
        _check_outputs(args)
        # a protocol frame that never returns is stopped (conformance/watchdog.py); one that
        # swallows every stop ends the run with its reproducer where this command saves them
        save_reproducers_in(getattr(args, "repro_dir", None))
        try:
            with watch(), _no_exit_from_protocols():
                return args.fn(args)
        finally:
            save_reproducers_in(None)  # not a later library or pytest use's in this process
    except UsageError as exc:
        print(f"flushcheck: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("flushcheck: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise  # stdout's reader went away: main() ends quietly (EXIT_PIPE)
    except SystemExit as exc:
        # argparse's (--help, a bad flag) and flushcheck's own are exits; one raised in
        # other code (a protocol's sys.exit() where no runner catches it) would end the run
        # with its status, 0 a silent PASS
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = os.path.abspath(tb.tb_frame.f_code.co_filename) if tb is not None else ""
        if where == os.path.abspath(argparse.__file__) or where.startswith(
                os.path.dirname(os.path.abspath(__file__)) + os.sep):
            raise
        bug = exc
    except Exception as exc:
        if _worker_died(exc) and (words := stopped_for_good()) is not None:
            # its reproducer saved, and the one-line error (conformance/watchdog.py)
            print(f"{words} (in a worker process)", file=sys.stderr)
            return EXIT_FAIL
        if _worker_died(exc):
            print("flushcheck: error: a worker process died in the middle of its work (killed "
                  "by the OS? out of memory? see dmesg); no verdict", file=sys.stderr)
            return EXIT_BUG
        bug = exc
    except HookStuck as exc:
        # protocol code that loops outside any operation's step (its __eq__ or __hash__
        # while a state key is taken, a property read by a report): the protocol's error,
        # with no step to replay, not a flushcheck bug (a traceback and exit 3 before)
        print(f"flushcheck: protocol error: {exc}; it ran outside any operation's step, so "
              "there is no reproducer", file=sys.stderr)
        return EXIT_FAIL
    except BaseException as exc:  # noqa: BLE001 - not an Exception (a GeneratorExit, a
        # protocol's own BaseException no runner caught): a bug all the same, not Python's
        # traceback and exit 1, which reads as a violation
        bug = exc
    # an exception no command expects: a flushcheck bug; its traceback, for the bug report
    import traceback

    traceback.print_exception(type(bug), bug, bug.__traceback__)
    print("flushcheck: internal error (a flushcheck bug, please report it with the traceback "
          "above)", file=sys.stderr)
    return EXIT_BUG


if __name__ == "__main__":
    console_main()
