"""A litmus file is data: a line it cannot read as written is the file's error, one line
naming ``path:line`` and exit status 2, never a traceback nor a line read in part.

Each case here was accepted silently (or crashed) before 2026-12-05: a ``CPU`` word
without a number was a ValueError from ``_cpu`` (exit 3, a traceback), a word too many was
ignored, a second ``expect`` for a protocol overrode the first, an ``expect`` naming no
protocol expected nothing, two files of one name swapped their expectations in the
``flushcheck litmus`` table, and an empty ``--dir`` said "0/0 cells as expected", exit 0.
"""
import os
import shutil

import pytest

from conformance.cli import main
from conformance.errors import UsageError
from conformance.litmus import corpus, parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAD = "name x\nconfig populate=false ncpus=2\nexpect * pass\n"  # lines 1-3


def _error(capsys) -> str:
    """The one line a command printed on stderr."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("word", ["CPU", "CPUabc", "CPU0x1"])
def test_a_cpu_word_without_a_number_is_the_lines_error(word):
    """Like ``thread CPUabc`` and ``hw CPUabc``: before, a ValueError out of parse."""
    line = f"{word} touch w v0"
    with pytest.raises(UsageError) as exc:
        parse(HEAD + line + "\n")
    assert str(exc.value) == f"<litmus>:4: cannot parse {line!r} (expected CPUn, got {word!r})"


def test_cpu_then_a_number_apart_is_no_cpu():
    with pytest.raises(UsageError, match=r"^<litmus>:4: cannot parse 'CPU 0 touch w v0' "
                       r"\(expected CPUn, got 'CPU'\)$"):
        parse(HEAD + "CPU 0 touch w v0\n")


@pytest.mark.parametrize("command", ["litmus", "explore", "picture"])
def test_a_bad_cpu_word_is_exit_2_in_every_command(command, tmp_path, capsys):
    """``flushcheck litmus --dir``, ``explore FILE`` and ``picture FILE``: exit 3 and a
    traceback before."""
    lit = tmp_path / "x.litmus"
    lit.write_text(HEAD + "CPUabc touch w v0\nthread CPU0\nread v0\n")
    argv = {"litmus": ["litmus", "--dir", str(tmp_path), "--protocol", "linux"],
            "explore": ["explore", str(lit), "--protocol", "linux",
                        "--repro-dir", str(tmp_path)],
            "picture": ["picture", str(lit), "--protocol", "linux",
                        "-o", str(tmp_path / "x.html")]}[command]
    assert main(argv) == 2
    assert _error(capsys) == (f"flushcheck: error: {lit}:4: cannot parse 'CPUabc touch w v0' "
                              "(expected CPUn, got 'CPUabc')")


#: (lines after HEAD, the error after ``<litmus>:N: ``): each was accepted before
MALFORMED = [
    ("expect linux pass\nexpect linux S3", "5: cannot parse 'expect linux S3' (a second expect "
     "for linux (the first is at line 4))"),
    ("expect * S3", "4: cannot parse 'expect * S3' (a second expect for * (the first is at "
     "line 3))"),
    ("expect linux pass extra", "4: cannot parse 'expect linux pass extra' (expected 'expect "
     "PROTOCOL VERDICT')"),
    ("CPU0 munmap M v0 1 junk", "4: cannot parse 'CPU0 munmap M v0 1 junk' (expected 'munmap "
     "OP vN N': 'junk' is too many)"),
    ("CPU0 read v0 v1", "4: cannot parse 'CPU0 read v0 v1' (expected 'read vN': 'v1' is too "
     "many)"),
    ("thread CPU0 mm0 extra\nread v0", "4: cannot parse 'thread CPU0 mm0 extra' (expected "
     "'thread CPUn [mmM]')"),
    ("thread CPU0\nread v0 v1", "5: cannot parse 'read v0 v1' (expected 'read vN': 'v1' is "
     "too many)"),
    ("CPU0 touch w v0\nCPU1 reclaim R pfn(mm0,v0)\nR until", "6: cannot parse 'R until' "
     "(expected 'R step [N]|finish|until TEXT')"),
    ("CPU0 munmap M v0 1\nM finish now", "5: cannot parse 'M finish now' (expected 'M step "
     "[N]|finish|until TEXT')"),
    ("CPU0 munmap M v0 1\nM step 2 3", "5: cannot parse 'M step 2 3' (expected 'M step "
     "[N]|finish|until TEXT')"),
    ("name y", "4: cannot parse 'name y' (a second name (the first is at line 1))"),
    ("config ncpus=3", "4: cannot parse 'config ncpus=3' (ncpus is given twice (first at line "
     "2))"),
    # a word read as another: a load, mm1, file0, a plain reclaim, a free, a reclaim
    ("CPU0 touch x v0", "4: cannot parse 'CPU0 touch x v0' (expected 'touch r|w vN': 'x' is "
     "not r|w)"),
    ("CPU0 switch xx1", "4: cannot parse 'CPU0 switch xx1' (expected 'switch mmN': 'xx1' is "
     "not mmN)"),
    ("CPU0 filewrite W abcd0 0", "4: cannot parse 'CPU0 filewrite W abcd0 0' (expected "
     "'filewrite OP fileN N': 'abcd0' is not fileN)"),
    ("CPU0 reclaim R pfn0 nested", "4: cannot parse 'CPU0 reclaim R pfn0 nested' ('nested' "
     "without a frame after it)"),
    ("consumer frobnicate", "4: cannot parse 'consumer frobnicate' (expected 'consumer "
     "alloc|free')"),
    ("CPU0 migrate M pfn0 nested pfn1", "4: cannot parse 'CPU0 migrate M pfn0 nested pfn1' "
     "(expected 'migrate OP FRAME...': 'nested' is not FRAME)"),
    ("CPU0 mprotect P v0 1 rx", "4: cannot parse 'CPU0 mprotect P v0 1 rx' (expected "
     "'mprotect OP vN N ro|rw': 'rx' is not ro|rw)"),
    ("CPU0 mmap P v0 1 anon rw fixd", "4: cannot parse 'CPU0 mmap P v0 1 anon rw fixd' "
     "(expected 'mmap OP vN N anon|fileN ro|rw [fixed]': 'fixd' is not fixed)"),
    ("thread CPU0\nread v0\nhw CPU0 fill v1 2 junk", "6: cannot parse 'hw CPU0 fill v1 2 "
     "junk' (expected 'hw CPUn fill|evict vN [COUNT]')"),
    # an operation named like a CPU: its op lines would be read as that CPU's
    ("CPU0 munmap CPU1 v0 1", "4: cannot parse 'CPU0 munmap CPU1 v0 1' (expected 'munmap OP "
     "vN N': 'CPU1' is not an operation's name (not CPU..., consumer or a header keyword))"),
    # found only when a run reached it: a violation before it ends the run
    ("thread CPU0\nfrobnicate v0", "5: cannot parse 'frobnicate v0' (unknown CPU verb "
     "'frobnicate' (one of touch, read, write, fill, evict, switch, reclaim, migrate, compact, "
     "move_pages, munmap, mprotect, mmap, filewrite, writeback, madvise, mremap, truncate, exit, fork))"),
]


@pytest.mark.parametrize("lines,says", MALFORMED, ids=[x for x, _ in MALFORMED])
def test_a_malformed_line_is_refused_when_parsed(lines, says):
    with pytest.raises(UsageError) as exc:
        parse(HEAD + lines + "\n")
    assert str(exc.value) == f"<litmus>:{says}"


def test_name_takes_one_word():
    """``name a b c`` was the scenario ``a``."""
    with pytest.raises(UsageError) as exc:
        parse("name a b c\n")
    assert str(exc.value) == "<litmus>:1: cannot parse 'name a b c' (expected 'name NAME')"


def test_thread_consumer_takes_no_mm():
    """It said ``thread: cpu -1 is not an integer in 0..1``."""
    with pytest.raises(UsageError) as exc:
        parse(HEAD + "thread consumer mm0\nconsumer alloc\n")
    assert str(exc.value) == ("<litmus>:4: cannot parse 'thread consumer mm0' (expected "
                              "'thread consumer')")


def test_a_line_past_the_point_a_run_stops_is_still_checked():
    """The 2017 race: linux_4_3 stops at mprotect's return, so a typo after it was never
    read there (``R finsh``)."""
    with open(os.path.join(REPO, "litmus", "reclaim-vs-mprotect-2017.litmus")) as fh:
        text = fh.read()
    assert text.count("R      finish") == 1
    with pytest.raises(UsageError, match=r":17: cannot parse 'R finsh +# try_to_unmap_flush' "
                       r"\(expected 'R step"):
        parse(text.replace("R      finish", "R finsh"))


def test_an_empty_directory_is_no_corpus(tmp_path, capsys):
    """``litmus --dir EMPTY`` printed "0/0 cells as expected" and exited 0."""
    (tmp_path / "notes.txt").write_text("not a scenario\n")
    with pytest.raises(UsageError, match=f"^no .litmus files in {tmp_path}$"):
        corpus(str(tmp_path))
    assert main(["litmus", "--dir", str(tmp_path), "--protocol", "linux"]) == 2
    assert _error(capsys) == f"flushcheck: error: no .litmus files in {tmp_path}"


def test_two_files_of_one_name_are_refused(tmp_path, capsys):
    """The table is keyed by name: both cells showed one file's expectation (pass, pass)
    while the summary said 1/2 as expected, exit 1."""
    body = "config populate=false ncpus=2\nCPU0 touch w v0\n"
    (tmp_path / "a.litmus").write_text("name same\nexpect linux S3\n" + body)
    (tmp_path / "b.litmus").write_text("name same\nexpect linux pass\n" + body)
    assert main(["litmus", "--dir", str(tmp_path), "--protocol", "linux"]) == 2
    assert _error(capsys) == (
        f"flushcheck: error: {tmp_path}/b.litmus:1: name 'same' is also the name of "
        f"{tmp_path}/a.litmus:1 (a scenario's name is its id: one name per file)")


UNKNOWN = ("expect: unknown protocol 'linux_413' (not *, a module of protocols/ or an entry "
           "point of flushcheck.protocols{}; did you mean 'linux_4_13'?)")


def _with_unknown_expect(tmp_path):
    """bug-2.7 (linux_4_13 fails it) with the linux_4_13 line misspelt, at line 8: the
    table showed linux_4_13 S3!pass, as if the protocol had regressed."""
    with open(os.path.join(REPO, "litmus", "bug-2.7-lost-pending-flush.litmus")) as fh:
        lines = fh.read().splitlines()
    assert lines[7] == "expect linux_4_13 S3", lines[:9]
    lines[7] = "expect linux_413 S3"
    lit = tmp_path / "bug-2.7.litmus"
    lit.write_text("\n".join(lines) + "\n")
    return lit


def test_an_expect_line_naming_no_protocol_is_refused_in_a_corpus(tmp_path, capsys):
    lit = _with_unknown_expect(tmp_path)
    with pytest.raises(UsageError) as exc:
        corpus(str(tmp_path))
    assert str(exc.value) == f"{lit}:8: " + UNKNOWN.format("")
    assert main(["litmus", "--dir", str(tmp_path), "--protocol", "linux"]) == 2
    assert _error(capsys) == f"flushcheck: error: {lit}:8: " + UNKNOWN.format("")


@pytest.mark.parametrize("command", ["explore", "picture"])
def test_an_expect_line_naming_no_protocol_is_refused_by_explore_and_picture(
        command, tmp_path, capsys):
    """``explore`` said ``FAIL: S3 (expected pass, DIFFERS)``, exit 1, the misspelt line's S3
    lost; picture drew, exit 0."""
    lit = _with_unknown_expect(tmp_path)
    argv = {"explore": ["explore", str(lit), "--repro-dir", str(tmp_path)],
            "picture": ["picture", str(lit), "-o", str(tmp_path / "x.html")]}[command]
    assert main(argv + ["--protocol", "linux_4_13"]) == 2
    assert _error(capsys) == (f"flushcheck: error: {lit}:8: "
                              + UNKNOWN.format(", nor 'linux_4_13', the protocol run"))


def test_an_expect_line_may_name_the_file_protocol_run(tmp_path, capsys):
    """The exception (docs/litmus.md): certify saves a file protocol's failure as a scenario
    expecting its stem; explore reads it under that protocol (as before), and refuses it
    under another (before: PASS, the line ignored)."""
    shutil.copy(os.path.join(REPO, "protocols", "linux.py"), tmp_path / "mine.py")
    lit = tmp_path / "mine-0.litmus"
    lit.write_text("name mine-0\nconfig populate=false ncpus=2\nexpect mine pass\n"
                   "thread CPU0\ntouch w v0\n")
    argv = ["explore", str(lit), "--repro-dir", str(tmp_path), "--protocol"]
    assert main(argv + [str(tmp_path / "mine.py")]) == 0
    assert "verdict   PASS   (expected pass)" in capsys.readouterr().out
    assert main(argv + ["linux"]) == 2
    assert "mine-0.litmus:3: expect: unknown protocol 'mine'" in _error(capsys)


def test_the_shipped_corpus_still_parses():
    """Every file of litmus/ has the forms the parser now requires (test_litmus.py runs
    them; this says which check a failure is)."""
    scs = corpus()
    assert len(scs) == len([f for f in os.listdir(os.path.join(REPO, "litmus"))
                            if f.endswith(".litmus")])
