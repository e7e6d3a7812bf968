"""Litmus scenarios as data: a text file with a machine config, a script of actions and
the expected verdict per protocol (in the spirit of herd7 litmus files).

Format (``#`` starts a comment)::

    name   reclaim-vs-mprotect-2017
    doc    3ea277194daa: reclaim defers the flush, mprotect sees a non-present PTE
    config populate=false ncpus=2
    expect linux_4_3 S3
    expect *         pass           # every other protocol

    CPU0 touch w v0                 # fault in and write: dirty RW entry cached
    CPU1 reclaim R pfn(mm0,v0)      # start reclaim as op R (first step runs)
    R    until ptep_get_and_clear   # advance R until its trace says so (or it ends)
    CPU0 mprotect P v0 1 ro
    P    finish
    CPU0 write v0
    R    finish

CPU verbs: ``touch r|w vN`` (access; on a fault run the fault to completion and
access again), ``read vN``, ``write vN`` (one access; a fault runs to completion, or until it
waits for a lock another operation of the script holds, then on at the end), ``fill vN``,
``evict K``, ``switch mmN``,
``reclaim OP pfn...``, ``migrate OP pfn...`` (kcompactd), ``compact OP pfn...`` (the same
migration by the CPU's user task: direct compaction), ``move_pages OP pfn... [nested pfn...]``
(move_pages(2) by the CPU's user task; ``nested``: the last folio's destination allocation
enters direct reclaim of those), ``munmap OP vS N``,
``mprotect OP vS N ro|rw``, ``mmap OP vS N anon|fileK ro|rw [fixed]``,
``filewrite OP fileK PGOFF``, ``writeback OP fileK PGOFF``, ``madvise OP vS N ADVICE``,
``mremap OP vS N vD``, ``fork OP mmN``, ``reclaim OP pfn... nested pfn...``, ``truncate OP fileK PGOFF``
(hole punch), ``exit OP`` (``exit_mmap`` of the CPU's mm, then exec). Op verbs: ``step [N]``,
``until TEXT``, ``finish``. ``thread CPUn [mmM]`` sections and ``hw CPUn fill|evict vN
[COUNT]`` lines make a file *threaded*, for the explorer (:mod:`conformance.search.explorer`);
a ``thread consumer`` section holds the other consumer's ``consumer alloc|free`` lines.
Other: ``consumer alloc``, ``consumer free``. A frame is ``pfnK`` or
``pfn(mmM,vN)`` (the frame mapped there when the line runs) or
``pfn(fileF,P)`` (the page-cache frame). After the script every operation is
run to completion and C1 is checked over every entry.

Example::

    >>> sc = parse(open("litmus/reclaim-vs-mprotect-2017.litmus").read())  # doctest: +SKIP
    >>> run(sc, load_protocol("linux_4_3")).rule                           # doctest: +SKIP
    'S3'
"""
from __future__ import annotations

import functools
import os
import re

import attrs

from .config import DEFAULT, MachineConfig, refused
from .errors import VIOLATION_TYPES, Failure, ModelError, UsageError
from .hookpoints import finish_hook
from .reproducer import FOLIO_ACTIONS, NESTED_ACTIONS, arg_error

LITMUS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "litmus")


@attrs.define
class Scenario:
    name: str
    doc: str
    config: MachineConfig
    expect: dict  # protocol name or "*" -> "pass" | rule
    lines: list  # (lineno, [words]): the script, or the prologue of a threaded scenario
    path: str = ""
    #: threaded scenarios (for the explorer): [(cpu, [(lineno, [words])])] in file order
    threads: list = attrs.Factory(list)
    #: hardware events the explorer may fire: [(lineno, cpu, "fill"|"evict", vpage, max count)]
    hw: list = attrs.Factory(list)
    #: ``thread CPUn mmM``: the mm CPU n switches to when the threads start
    thread_mm: dict = attrs.Factory(dict)
    #: the lines of ``name`` and of each ``expect`` (protocol -> line): for the checks made
    #: once other files or the protocol run are known (:func:`corpus`, :func:`check_expect_names`)
    name_line: int = 0
    expect_lines: dict = attrs.Factory(dict)

    def expected(self, protocol: str) -> str:
        return self.expect.get(protocol, self.expect.get("*", "pass"))


#: what an ``expect`` line may name: a pass, a rule of the oracle, or an error
VERDICTS = ("pass",) + tuple(VIOLATION_TYPES) + ("PROTOCOL-ERROR", "MODEL-ERROR")


def _bool(v: str) -> bool:
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(v)


def parse(text: str, path: str = "<litmus>") -> Scenario:
    """Parse a litmus file; :class:`UsageError` naming the line on any error."""
    name, doc, cfg, expect, lines = None, "", {}, {}, []
    threads, hw, thread_mm, thread_no = [], [], {}, {}
    name_no, cfg_no, expect_no = 0, {}, {}  # where each was given: a second one is refused
    started: set = set()  # the operations the script's lines start, for its OP lines
    section = lines  # where script lines go: the prologue, then the current thread
    fields = {f.name: f for f in attrs.fields(MachineConfig)}
    for no, raw in enumerate(text.splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        head = words[0]
        try:
            if head == "name":
                _arity(words, 2, 2, "name NAME")
                if name is not None:
                    raise ValueError(f"a second name (the first is at line {name_no})")
                name, name_no = words[1], no
            elif head == "doc":
                doc = (doc + " " + " ".join(words[1:])).strip()
            elif head == "config":
                for kv in words[1:]:
                    k, _, v = kv.partition("=")
                    if k not in fields:
                        raise ValueError(f"unknown config key {k!r}")
                    if k in cfg_no:  # the later value won, silently
                        raise ValueError(f"{k} is given twice (first at line {cfg_no[k]})")
                    cfg_no[k] = no
                    cfg[k] = _bool(v) if fields[k].type in (bool, "bool") else int(v)
                    try:  # its range (config.LIMITS), here on its line
                        attrs.evolve(DEFAULT, **{k: cfg[k]})
                    except (TypeError, ValueError) as exc:  # attrs: (message, attribute, ...)
                        raise ValueError(f"bad config ({refused(exc)})") from None
            elif head == "expect":
                _arity(words, 3, 3, "expect PROTOCOL VERDICT")
                if words[2] not in VERDICTS:
                    raise ValueError(f"unknown verdict {words[2]!r} (one of {', '.join(VERDICTS)})")
                if words[1] in expect:  # the later line won, silently
                    raise ValueError(f"a second expect for {words[1]} (the first is at line "
                                     f"{expect_no[words[1]]})")
                expect[words[1]], expect_no[words[1]] = words[2], no
            elif head == "thread":  # thread CPUn [mmM] | thread consumer
                cpu = CONSUMER if words[1] == "consumer" else _cpu(words[1])
                _arity(words, 2, 2 if cpu == CONSUMER else 3,
                       "thread consumer" if cpu == CONSUMER else "thread CPUn [mmM]")
                if any(c == cpu for c, _ in threads):
                    raise ValueError(f"a second thread on {_thread_name(cpu)}")
                if len(words) > 2:
                    if not words[2].startswith("mm"):
                        raise ValueError(f"expected mmM, got {words[2]!r}")
                    thread_mm[cpu] = int(words[2][2:])
                    thread_no[cpu] = no
                section = []
                threads.append((cpu, section))
            elif head == "hw":
                _arity(words, 4, 5, "hw CPUn fill|evict vN [COUNT]")
                cpu, what = _cpu(words[1]), words[2]
                if what not in ("fill", "evict") or not words[3].startswith("v"):
                    raise ValueError("expected 'hw CPUn fill|evict vN [COUNT]'")
                count = int(words[4]) if len(words) > 4 else 1
                if count < 1:
                    raise ValueError(f"COUNT {count}: the most times it may happen, at least 1")
                hw.append((no, cpu, what, int(words[3][1:]), count))
            else:
                if section is not lines and (words[0].startswith("CPU") or
                                             (len(words) > 1 and words[1] in OP_VERBS)):
                    raise ValueError("a thread line is a CPU verb without 'CPUn' "
                                     "(the explorer schedules operation steps itself)")
                if threads and section is threads[-1][1] and threads[-1][0] == CONSUMER \
                        and head != "consumer":
                    raise ValueError("a 'thread consumer' holds only 'consumer alloc|free' lines")
                _check_line(words, section is lines, started)
                section.append((no, words))
        except (IndexError, ValueError) as exc:
            raise UsageError(f"{path}:{no}: cannot parse {raw.strip()!r} ({exc})") from None
    if name is None:
        raise UsageError(f"{path}: missing 'name'")
    try:
        config = attrs.evolve(DEFAULT, **cfg)
    except (TypeError, ValueError) as exc:  # an attrs validator (batch_gen_bits range)
        raise UsageError(f"{path}: bad config ({exc})") from None
    _check_cpus(path, config, lines, threads, hw)
    _check_pages_and_mms(path, config, hw, thread_mm, thread_no)
    return Scenario(name, doc, config, expect, lines, path, threads, hw, thread_mm, name_no,
                    expect_no)


def _arity(words: list, least: int, most: int, form: str) -> None:
    """``words`` has ``least`` to ``most`` words: a word more was ignored (``name a b c``
    was ``a``), a word less an IndexError ("list index out of range")."""
    if not least <= len(words) <= most:
        raise ValueError(f"expected '{form}'")


#: the words after each CPU verb (``OP``: the operation's name; ``N``: an integer; ``vN``,
#: ``mmN``, ``fileN``: an integer after that prefix; ``A|B``: one of those; ``ADVICE``: a
#: word, checked when the line runs; ``[fixed]``: optional; ``FRAME...``: any number of
#: frames, for reclaim and move_pages then optionally ``nested FRAME...``). Ranges are checked when the
#: line runs (``_Runner.check``); the shape here, as the file is parsed, so that a word the
#: runner never reads (``read v0 v1``, ``munmap M v0 1 junk``), a typo it would have read as
#: another word (``touch x v0`` was a load, ``switch xx1`` mm1) or an unknown verb is the
#: file's error even where no run reaches the line (a failure ends a run early).
CPU_VERBS = {
    "touch": "r|w vN", "read": "vN", "write": "vN", "fill": "vN", "evict": "N",
    "switch": "mmN", "reclaim": "OP FRAME...", "migrate": "OP FRAME...",
    "compact": "OP FRAME...", "move_pages": "OP FRAME...",
    "munmap": "OP vN N", "mprotect": "OP vN N ro|rw",
    "mmap": "OP vN N anon|fileN ro|rw [fixed]", "filewrite": "OP fileN N",
    "writeback": "OP fileN N", "madvise": "OP vN N ADVICE", "mremap": "OP vN N vN",
    "truncate": "OP fileN N", "exit": "OP", "fork": "OP mmN",
}

#: the first words of the lines parse consumes: no operation may be named so
HEADERS = ("name", "doc", "config", "expect", "thread", "hw")

_INT = re.compile(r"-?[0-9]+$")  # int() takes "+1", "1_0" and other digits too


def _is(form: str, word: str) -> bool:
    """Does ``word`` have the shape of ``form`` (one word of :data:`CPU_VERBS`)?"""
    if "|" in form:
        return any(_is(alt, word) for alt in form.split("|"))
    if form == "N":
        return bool(_INT.match(word))
    if form in ("vN", "mmN", "fileN"):
        return word.startswith(form[:-1]) and bool(_INT.match(word[len(form) - 1:]))
    if form == "OP":  # a line starting with it must read as the operation's
        return not (word.startswith("CPU") or word in HEADERS or word == "consumer")
    if form == "FRAME":
        return bool(_PFN.match(word))
    return form == "ADVICE" or word == form.strip("[]")


def _check_cpu_verb(w: list) -> None:
    """ValueError unless ``w`` (a CPU verb and its words, without ``CPUn``) has the shape
    :data:`CPU_VERBS` gives it."""
    if w[0] not in CPU_VERBS:
        raise ValueError(f"unknown CPU verb {w[0]!r} (one of {', '.join(CPU_VERBS)})")
    form = CPU_VERBS[w[0]].split()
    args = w[1:]
    if form[-1] == "FRAME...":  # reclaim OP FRAME... [nested FRAME...]; migrate OP FRAME...
        frames = args[1:]
        if w[0] in NESTED_ACTIONS and "nested" in frames:
            k = frames.index("nested")
            if k == len(frames) - 1:  # it was a plain reclaim
                raise ValueError("'nested' without a frame after it")
            frames = frames[:k] + frames[k + 1:]
        args, form = args[:1] + frames, form[:1] + ["FRAME"] * len(frames)
    shown = f"{w[0]} {CPU_VERBS[w[0]]}"
    if len(args) > len(form):
        raise ValueError(f"expected '{shown}': {' '.join(args[len(form):])!r} is too many")
    for i, f in enumerate(form):
        if i >= len(args):
            if not f.startswith("["):
                raise ValueError(f"expected '{shown}': {f} is missing")
        elif not _is(f, args[i]):
            what = ("an operation's name (not CPU..., consumer or a header keyword)"
                    if f == "OP" else f.strip("[]"))
            raise ValueError(f"expected '{shown}': {args[i]!r} is not {what}")


def _check_line(w: list, script: bool, started: set) -> None:
    """ValueError unless script line ``w`` has its verb's shape: ``CPUn VERB ...``,
    ``consumer alloc|free`` or, in a script (not a thread), ``OP step [N]|finish|until
    TEXT`` on an operation an earlier line started (``started``, which this adds to)."""
    head = w[0]
    if head == "consumer":
        if len(w) != 2 or w[1] not in ("alloc", "free"):  # any other word freed
            raise ValueError("expected 'consumer alloc|free'")
        return
    if not script:  # a thread's line: a CPU verb without its CPUn
        _check_cpu_verb(w)
        return
    if head.startswith("CPU"):
        _cpu(head)
        if len(w) < 2:
            raise ValueError("expected 'CPUn VERB ...'")
        _check_cpu_verb(w[1:])
        if CPU_VERBS[w[1]].startswith("OP"):
            started.add(w[2])  # the verb starts an operation named so
        return
    if head not in started:
        raise ValueError(f"unknown operation {head!r} (no line above starts it)")
    verb = w[1] if len(w) > 1 else None
    if verb == "finish" and len(w) == 2 or verb == "until" and len(w) > 2 or \
            verb == "step" and (len(w) == 2 or len(w) == 3 and _INT.match(w[2])):
        return
    raise ValueError(f"expected '{head} step [N]|finish|until TEXT'")


def _check_cpus(path: str, config: MachineConfig, lines, threads, hw) -> None:
    """Every CPU a line names exists in ``config`` (known only once the file is read)."""
    named = [(no, _cpu(w[0])) for no, w in lines if w[0].startswith("CPU")]
    named += [(no, cpu) for no, cpu, *_ in hw]
    named += [(section[0][0] if section else 0, cpu) for cpu, section in threads
              if cpu != CONSUMER]
    for no, cpu in named:
        if not 0 <= cpu < config.ncpus:
            where = f"{path}:{no}" if no else path
            raise UsageError(f"{where}: CPU{cpu}, but the machine has {config.ncpus} CPUs "
                             f"(CPU0..CPU{config.ncpus - 1}; config ncpus=...)")


def _check_pages_and_mms(path: str, config: MachineConfig, hw, thread_mm: dict,
                         thread_no: dict) -> None:
    """The page of every ``hw`` line and the mm of every ``thread CPUn mmM`` exist in
    ``config``: the check of the actions they become (:func:`conformance.reproducer.arg_error`;
    ``hw CPU0 fill v99`` crashed the explorer, ``thread CPU0 mm7`` was a MODEL ERROR)."""
    checks = [(no, "hw", "fill", (cpu, vp)) for no, cpu, _what, vp, _n in hw]
    checks += [(thread_no[cpu], "thread", "switch_mm", (cpu, mm)) for cpu, mm in thread_mm.items()]
    for no, word, action, args in checks:
        bad = arg_error(config, action, args)
        if bad is not None:
            raise UsageError(f"{path}:{no}: {word}: {bad}")


#: the CPU number of ``thread consumer``: the other consumer's allocations and frees, which
#: run on no CPU of the machine (``Machine.consumer_alloc``)
CONSUMER = -1


def _thread_name(cpu: int) -> str:
    return "consumer" if cpu == CONSUMER else f"CPU{cpu}"


#: the verbs of an operation line (``OP step|finish|until``), not allowed in threads
OP_VERBS = ("step", "finish", "until")


def _cpu(word: str) -> int:
    """n of ``CPUn``; ValueError for any other word (``CPU``, ``CPUabc``, ``CPU0x1``), also
    on a script line, whose ``CPU`` words were first read after parsing (a traceback).
    A negative n is left to the range check (``_check_cpus``), as a negative page is."""
    if not word.startswith("CPU") or not _INT.match(word[3:]):
        raise ValueError(f"expected CPUn, got {word!r}")
    return int(word[3:])


def load(path: str) -> Scenario:
    """Read and parse a litmus file; :class:`UsageError` with one line if it cannot be."""
    try:
        with open(path, encoding="utf-8") as fh:
            return parse(fh.read(), path)
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a litmus file (not UTF-8 text)") from None


def corpus(directory: str = LITMUS_DIR) -> list[Scenario]:
    """Every ``*.litmus`` file of the corpus, sorted by file name; :class:`UsageError` if
    there is none (``litmus --dir EMPTY`` said "0/0 cells as expected", exit 0), if two
    have one name (a cell is keyed by it: each showed the other's expectation) or if an
    ``expect`` line names no installed protocol (:func:`check_expect_names`)."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise UsageError(f"{directory}: {exc.strerror}") from None
    scs = [load(os.path.join(directory, f)) for f in names if f.endswith(".litmus")]
    if not scs:
        raise UsageError(f"no .litmus files in {directory}")
    first: dict = {}
    known = _installed()
    for sc in scs:
        other = first.setdefault(sc.name, sc)
        if other is not sc:
            raise UsageError(f"{sc.path}:{sc.name_line}: name {sc.name!r} is also the name of "
                             f"{other.path}:{other.name_line} (a scenario's name is its id: "
                             "one name per file)")
        _check_expect(sc, known)
    return scs


def _installed() -> set:
    """The protocol names an ``expect`` line may always use: ``*``, the modules of
    ``protocols/`` and the entry points of ``flushcheck.protocols``."""
    from .registry import entry_point_names, protocol_names

    return {"*", *protocol_names(), *entry_point_names()}


def check_expect_names(sc: Scenario, *run_as: str) -> None:
    """:class:`UsageError` ``path:line`` for an ``expect`` line naming a protocol that is
    neither installed (:func:`_installed`) nor one of ``run_as``: the display names of the
    protocols the scenario is run under. A misspelt name expects nothing of any protocol,
    and the protocol meant falls back to ``*``. A protocol loaded from a file or
    ``module:Class`` is named by its display name (certify writes a failure's scenario
    with ``expect STEM RULE``), which is legal only where that protocol is the one run.
    :func:`parse` cannot know that, so it takes any name; :func:`corpus` (every file is run
    under installed protocols), ``explore`` and ``picture`` check."""
    _check_expect(sc, _installed(), run_as)


def _check_expect(sc: Scenario, installed: set, run_as=()) -> None:
    import difflib

    known = installed | set(run_as)
    for proto in sc.expect:
        if proto not in known:
            near = difflib.get_close_matches(proto, sorted(known), 1)
            no = sc.expect_lines.get(proto)  # None: a Scenario made in code, not parsed
            raise UsageError(
                f"{sc.path if no is None else f'{sc.path}:{no}'}: expect: unknown protocol "
                f"{proto!r} (not *, a module of protocols/ or an entry point of "
                "flushcheck.protocols" + "".join(f", nor {r!r}, the protocol run" for r in run_as)
                + (f"; did you mean {near[0]!r}?" if near else "") + ")")


class Unmapped(UsageError):
    """A frame expression names a PTE that is not present (or a page that is not cached)."""


_PFN = re.compile(r"pfn\((mm|file)(\d+),v?(\d+)\)$|pfn(\d+)$")


class _Runner:
    def __init__(self, sc: Scenario, m) -> None:
        self.sc = sc
        self.m = m
        self.ops: dict = {}
        self.cursor: dict = {}  # op name -> index of the first trace event not yet matched

    def err(self, no, text):
        return UsageError(f"{self.sc.path}:{no}: {text}")

    def vpage(self, no, w: str) -> int:
        if not w.startswith("v"):
            raise self.err(no, f"expected a virtual page vN, got {w!r}")
        return int(w[1:])

    def frame(self, no, w: str) -> int:
        mt = _PFN.match(w)
        if not mt:
            raise self.err(no, f"expected pfnK, pfn(mmM,vN) or pfn(fileF,P), got {w!r}")
        if mt.group(4) is not None:
            return int(mt.group(4))
        a, b = int(mt.group(2)), int(mt.group(3))
        cfg = self.m.cfg  # out of range: an IndexError, "bad arguments" with no word why
        kind = mt.group(1)
        n, pages = (cfg.nmms, cfg.vpages) if kind == "mm" else (cfg.nfiles, cfg.file_pages)
        if a >= n:
            raise self.err(no, f"{w}: {kind} {a} is not an integer in 0..{n - 1}")
        if b >= pages:
            raise self.err(no, f"{w}: {'vpage' if kind == 'mm' else 'pgoff'} {b} is not an "
                           f"integer in 0..{pages - 1}")
        if mt.group(1) == "mm":
            f = self.m.frame_of(a, b)
        else:
            f = self.m.mem.files[a].cache.get(b)
        if f is None:
            raise Unmapped(f"{self.sc.path}:{no}: {w}: nothing is mapped there")
        return f

    def start(self, name: str, op):
        self.ops[name] = op
        self.cursor[name] = self._op_start_index(op)
        return op

    def _op_start_index(self, op) -> int:
        ev = self.m.trace.events
        for i in range(len(ev) - 1, -1, -1):
            if ev[i][1] is op and ev[i][2] == "msg" and ev[i][3][0] == "%s: start":
                return i
        return len(ev)

    def check(self, no: int, verb: str, action: str, args: tuple) -> None:
        """:class:`UsageError` naming line ``no`` if Machine ``action`` cannot take ``args``:
        the check a reproducer's actions get (:func:`conformance.reproducer.arg_error`: a
        CPU, page, mm, file, frame the machine does not have, a count below 1, a range
        past the last page, an unknown advice). Before it, ``munmap P v0 -1`` or
        ``truncate P file0 -1`` ran, did nothing (or another page) and passed."""
        bad = arg_error(self.m.cfg, action, args)
        if bad is not None:
            raise self.err(no, f"{verb}: {bad}")

    def call(self, no: int, verb: str, action: str, *args):
        """Machine ``action(*args)`` once :meth:`check` lets it."""
        self.check(no, verb, action, args)
        return getattr(self.m, action)(*args)

    def op(self, no, name):
        if name not in self.ops:
            raise self.err(no, f"unknown operation {name!r}")
        return self.ops[name]

    def touch(self, no: int, cpu: int, vp: int, write: bool) -> None:
        m = self.m
        self.check(no, "touch", "user_access", (cpu, vp, write))
        for _ in range(4):
            r = m.user_access(cpu, vp, write)
            if r != "fault":
                return
            fault = m.tlbs.cpus[cpu].op
            while fault in m.ops:
                m.advance(fault.id)

    def cpu_verb(self, no: int, cpu: int, w: list):
        """Run one CPU verb other than an access (``w`` without the ``CPUn`` word); returns
        the operation it started, if any (its first step has run)."""
        verb = w[0]
        call = functools.partial(self.call, no, verb)
        if verb == "fill":
            call("fill", cpu, self.vpage(no, w[1]))
        elif verb == "evict":
            call("evict", cpu, int(w[1]))
        elif verb == "switch":
            call("switch_mm", cpu, int(w[1][2:]))
        elif verb in FOLIO_ACTIONS:  # the verbs are the actions' names
            words = w[2:]
            nested = ()
            if "nested" in words:  # reclaim R pfn.. nested pfn..: an allocation reclaims
                k = words.index("nested")
                nested = tuple(self.frame(no, x) for x in words[k + 1:])
                words = words[:k]
            frames = tuple(self.frame(no, x) for x in words)
            if nested:
                return self.start(w[1], call(verb, cpu, frames, nested))
            return self.start(w[1], call(verb, cpu, frames))
        elif verb == "munmap":
            return self.start(w[1], call("munmap", cpu, self.vpage(no, w[2]), int(w[3])))
        elif verb == "mprotect":
            return self.start(w[1], call("mprotect", cpu, self.vpage(no, w[2]), int(w[3]),
                                         w[4] == "rw"))
        elif verb == "mmap":
            kind = w[4]
            file = None if kind == "anon" else int(kind[4:])
            return self.start(w[1], call("mmap", cpu, self.vpage(no, w[2]), int(w[3]), file,
                                         w[5] == "rw", len(w) > 6 and w[6] == "fixed"))
        elif verb == "filewrite":
            return self.start(w[1], call("write", cpu, int(w[2][4:]), int(w[3])))
        elif verb == "writeback":
            return self.start(w[1], call("writeback", cpu, int(w[2][4:]), int(w[3])))
        elif verb == "madvise":
            return self.start(w[1], call("madvise", cpu, self.vpage(no, w[2]), int(w[3]), w[4]))
        elif verb == "mremap":
            return self.start(w[1], call("mremap", cpu, self.vpage(no, w[2]), int(w[3]),
                                         self.vpage(no, w[4])))
        elif verb == "truncate":
            return self.start(w[1], call("truncate", cpu, int(w[2][4:]), int(w[3])))
        elif verb == "exit":
            return self.start(w[1], call("exit_mmap", cpu))
        elif verb == "fork":
            if not w[2].startswith("mm"):
                raise self.err(no, f"expected the child's mm slot mmN, got {w[2]!r}")
            return self.start(w[1], call("fork", cpu, int(w[2][2:])))
        else:
            raise self.err(no, f"unknown CPU verb {verb!r}")
        return None

    def line(self, no: int, w: list) -> None:
        m = self.m
        head = w[0]
        if head == "consumer":
            (m.consumer_alloc if w[1] == "alloc" else m.consumer_free)()
            return
        if head.startswith("CPU"):
            cpu = int(head[3:])
            verb = w[1]
            if verb == "touch":
                self.touch(no, cpu, self.vpage(no, w[3]), w[2] == "w")
            elif verb in ("read", "write"):
                if self.call(no, verb, "user_access", cpu, self.vpage(no, w[2]),
                             verb == "write") == "fault":
                    # the fault handler runs to completion, or until it waits for a lock an
                    # operation of the script holds: then it runs on at the end, with the
                    # rest (a protocol that flushed at once faults where another one writes
                    # through its stale entry)
                    fault = m.tlbs.cpus[cpu].op
                    while fault in m.ops and fault.runnable():
                        m.advance(fault.id)
            else:
                self.cpu_verb(no, cpu, w[1:])
            return
        op = self.op(no, head)
        verb = w[1]
        if verb == "step":
            n = int(w[2]) if len(w) > 2 else 1
            if n < 1:
                raise self.err(no, f"step {n}: a number of steps is at least 1")
            for _ in range(n):
                if op not in m.ops:  # it has returned: the steps left are skipped (all of
                    break  # them at once: "step 99999999999" looped on, doing nothing)
                m.advance(op.id)
        elif verb == "finish":
            while op in m.ops:
                m.advance(op.id)
        elif verb == "until":
            text = " ".join(w[2:])
            ev = m.trace.events
            while True:
                hit = next((i for i in range(self.cursor[head], len(ev)) if _mentions(ev[i], op, text)),
                           None)
                if hit is not None:
                    self.cursor[head] = hit + 1
                    if ev[hit][2] != "point":
                        # the text is the kernel's or an effect's: run on through the hook's
                        # automatic points (hookpoints.py) to the next point its code has; to
                        # stop at an automatic point, name it ("until pauses after free")
                        finish_hook(m, op)
                    break
                self.cursor[head] = len(ev)
                if op not in m.ops:
                    break
                m.advance(op.id)
        else:
            raise self.err(no, f"unknown operation verb {verb!r}")


def _mentions(event, op, text: str) -> bool:
    from .trace import format_event

    step, who, name, args = event
    return who is op and text in format_event(name, args)


def run(sc: Scenario, proto_cls, strict: bool = False):
    """Run a scenario against a protocol: the :class:`Failure` it hits, or None."""
    from .machine import Machine

    m = Machine(proto_cls, sc.config, strict=strict)
    r = _Runner(sc, m)
    try:
        for no, words in sc.lines:
            try:
                r.line(no, words)
            except (IndexError, ValueError) as exc:
                raise r.err(no, f"bad arguments ({exc})") from None
            except UsageError as exc:  # the machine refused the line (a busy CPU...)
                if str(exc).startswith(sc.path):
                    raise
                raise r.err(no, str(exc)) from None
        m.drain()
        m.check_quiescent()
    except Failure as f:
        return f
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a model bug is reported as one, not a crash
        return ModelError.uncaught(exc, m)
    return None


def verdict(failure) -> str:
    return "pass" if failure is None else failure.rule
