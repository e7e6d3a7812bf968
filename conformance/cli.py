"""``flushcheck``: certify a protocol, list protocols, replay a reproducer.

Exit status: 0 pass, 1 a violation or protocol error, 2 bad input, 3 a
flushcheck bug (model error). Bad input never prints a traceback.

Examples::

    flushcheck certify linux                 # 60 s of fuzzing, prints a verdict
    flushcheck certify linux_4_13 --seed 3   # fails with S3 and a shrunk timeline
    flushcheck replay repro/linux_4_13-3.json
    flushcheck list
    flushcheck explore litmus/bug-2.4-reclaim-vs-mprotect.litmus --protocol linux_4_3
    flushcheck litmus                        # the corpus x every protocol, herd-style
"""
from __future__ import annotations

import argparse
import os
import sys

import attrs

from .certify import default_jobs
from .config import DEFAULT, MachineConfig
from .errors import ModelError, UsageError

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3


def _config(pairs: list[str]) -> MachineConfig:
    fields = {f.name: f for f in attrs.fields(MachineConfig)}
    kw = {}
    for p in pairs:
        key, sep, val = p.partition("=")
        if not sep or key not in fields:
            raise UsageError(f"bad --config {p!r} (keys: {', '.join(fields)})")
        if fields[key].type in (bool, "bool"):
            kw[key] = val.lower() in ("1", "true", "yes", "on")
        else:
            try:
                kw[key] = int(val)
            except ValueError:
                raise UsageError(f"bad --config {p!r}: {val!r} is not an integer") from None
    return attrs.evolve(DEFAULT, **kw)


def cmd_certify(args) -> int:
    from .certify import certify
    from .registry import load_protocol
    from .report import certify_report
    from .reproducer import git_commit, save

    cls = load_protocol(args.protocol)
    cfg = _config(args.config)
    res = certify(cls, budget_s=args.budget, seed=args.seed, strict=args.strict, cfg=cfg,
                  steps=args.steps, jobs=args.jobs)
    paths = []
    for i, f in enumerate(res.failures):
        if f.machine is not None:
            suffix = "" if i == 0 else f"-{f.rule}"
            paths.append(save(f, os.path.join(args.repro_dir, f"{res.protocol}-{res.seed}{suffix}.json"),
                              seed=res.seed))
    print(certify_report(res, cls, git_commit(), paths))
    if args.show_program and res.hypothesis_program:
        print("\nHypothesis program:\n" + res.hypothesis_program)
    if isinstance(res.failure, ModelError):
        return EXIT_BUG
    return EXIT_PASS if res.passed else EXIT_FAIL


def cmd_replay(args) -> int:
    from .errors import ModelError as _ME
    from .reproducer import load, replay

    data = load(args.file)
    print(f"flushcheck replay {args.file}")
    print(f"  protocol  {data['protocol']}   commit {data.get('commit')}   seed {data.get('seed')}")
    print(f"  recorded  {data.get('verdict')}")
    f = replay(data)
    if f is None:
        print("  replayed  PASS: the recorded failure did not reproduce")
        return EXIT_PASS
    print(f"  replayed  {f.headline()}\n")
    print(f.report(last=None))
    return EXIT_BUG if isinstance(f, _ME) else EXIT_FAIL


def cmd_luf_doc(args) -> int:
    from .lufdoc import DOC_PATH, generate

    text = generate()
    path = args.output or DOC_PATH
    if args.check:
        try:
            old = open(path).read()
        except OSError:
            old = None
        if old != text:
            print(f"{path} is stale: run 'flushcheck luf-doc' and commit it")
            return EXIT_FAIL
        print(f"{path} is up to date")
        return EXIT_PASS
    with open(path, "w") as fh:
        fh.write(text)
    print(f"wrote {path}")
    return EXIT_PASS


def cmd_explore(args) -> int:
    from .explorer import explore
    from .litmus import load
    from .registry import load_protocol
    from .reproducer import git_commit, save

    sc = load(args.scenario)
    cls = load_protocol(args.protocol)
    res = explore(sc, cls, dedup=not args.no_dedup, preemption_bound=args.preemptions,
                  max_states=args.max_states, strict=args.strict)
    print(f"flushcheck explore {sc.path} --protocol {res.protocol}   commit {git_commit()}")
    print(f"  config    {sc.config.describe()}")
    print(f"  searched  {res.summary()}")
    exp = sc.expected(res.protocol)
    print(f"  verdict   {res.verdict.upper() if res.failure is None else 'FAIL: ' + res.verdict}"
          f"   (expected {exp}{'' if res.verdict == exp else ', DIFFERS'})")
    if res.failure is None and not res.complete:
        print("  the search stopped at --max-states before covering every interleaving")
    if res.failure is not None:
        f = res.failure
        print(f"  shortest counterexample: {len(res.path)} choices "
              f"({', '.join(_choice_text(sc, c) for c in res.path)})")
        if f.machine is not None:
            path = save(f, os.path.join(args.repro_dir, f"explore-{sc.name}-{res.protocol}.json"))
            print(f"  reproducer {path}  (flushcheck replay {path})")
        print()
        print(f.report(last=None))
        return EXIT_BUG if isinstance(f, ModelError) else EXIT_FAIL
    return EXIT_PASS if res.complete else EXIT_FAIL


def _choice_text(sc, c) -> str:
    kind, i = c
    if kind == "t":
        return f"CPU{sc.threads[i][0]}"
    _no, cpu, what, vp, _n = sc.hw[i]
    return f"hw CPU{cpu} {what} v{vp}"


def cmd_litmus(args) -> int:
    from .corpus import check, select, table
    from .litmus import corpus
    from .registry import protocol_names

    scs = select(corpus(args.dir) if args.dir else corpus(), args.scenarios)
    protos = args.protocol or protocol_names()
    cells = check(scs, protos, args.max_states)
    print(table(cells, scs, protos))
    if args.verbose:
        print()
        for c in cells:
            print(f"{c.scenario:40} {c.protocol:28} {c.verdict:8} {c.seconds:6.2f}s  {c.detail}")
    return EXIT_PASS if all(c.ok for c in cells) else EXIT_FAIL


def cmd_list(args) -> int:
    from .registry import load_protocol, protocol_names
    from .report import protocol_summary

    for name in protocol_names():
        try:
            print(f"{name:28} {protocol_summary(load_protocol(name))}")
        except UsageError as exc:
            print(f"{name:28} (error: {exc})")
    return EXIT_PASS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flushcheck", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("certify", help="fuzz one protocol against every property")
    c.add_argument("protocol")
    c.add_argument("--budget", type=float, default=60.0, help="seconds of fuzzing (default 60)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--steps", type=int, default=50, help="actions per example (default 50)")
    c.add_argument("--jobs", type=int, default=default_jobs(),
                   help=f"worker processes (default: the {default_jobs()} CPUs available)")
    c.add_argument("--strict", action="store_true", help="O1 strict: no transient exception")
    c.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="machine size, e.g. --config ncpus=3")
    c.add_argument("--repro-dir", default="repro")
    c.add_argument("--show-program", action="store_true", help="also print Hypothesis's program")
    c.set_defaults(fn=cmd_certify)
    r = sub.add_parser("replay", help="re-run a saved reproducer exactly")
    r.add_argument("file")
    r.set_defaults(fn=cmd_replay)
    d = sub.add_parser("luf-doc", help="regenerate docs/LUF.md (the LUF verdict table)")
    d.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    d.add_argument("--output", default=None)
    d.set_defaults(fn=cmd_luf_doc)
    e = sub.add_parser("explore", help="explore every interleaving of one threaded litmus file")
    e.add_argument("scenario", help="a .litmus file with 'thread' sections")
    e.add_argument("--protocol", required=True)
    e.add_argument("--no-dedup", action="store_true", help="do not merge equal states")
    e.add_argument("--preemptions", type=int, default=None, metavar="K",
                   help="explore only schedules with at most K preemptions")
    e.add_argument("--max-states", type=int, default=200_000)
    e.add_argument("--strict", action="store_true", help="O1 strict: no transient exception")
    e.add_argument("--repro-dir", default="repro")
    e.set_defaults(fn=cmd_explore)
    lt = sub.add_parser("litmus", help="run the litmus corpus against every protocol (herd-style table)")
    lt.add_argument("scenarios", nargs="*", help="scenario names (default: all)")
    lt.add_argument("--protocol", action="append", default=None, help="only these protocols")
    lt.add_argument("--dir", default=None, help="litmus directory (default: litmus/)")
    lt.add_argument("--max-states", type=int, default=None)
    lt.add_argument("-v", "--verbose", action="store_true", help="one line per cell with timings")
    lt.set_defaults(fn=cmd_litmus)
    ls = sub.add_parser("list", help="list the protocols found in protocols/")
    ls.set_defaults(fn=cmd_list)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except UsageError as exc:
        print(f"flushcheck: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("flushcheck: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
