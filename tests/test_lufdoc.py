"""docs/LUF.md and docs/LUF.txt are generated; they must match what the code produces now."""
from conformance.litmus import load
from conformance.lufdoc import (DOC_PATH, ROWS, TEXT_PATH, _scenarios, diagram, generate,
                                generate_text, observe, render, run_scenario, suppressed)
from conformance.oracle import Oracle
from conformance.registry import load_protocol


def test_committed_luf_doc_is_current():
    """`flushcheck luf-doc --check` passes on a clean checkout (regenerate after any change);
    the plain-text summary beside it (`flushcheck luf-doc --text`) too."""
    assert open(DOC_PATH).read() == generate(), \
        "docs/LUF.md is stale: run 'flushcheck luf-doc' and commit the result"
    assert open(TEXT_PATH).read() == generate_text(), \
        "docs/LUF.txt is stale: regenerate it with conformance.lufdoc.generate_text()"


def test_luf_doc_check_command_fails_on_a_stale_file(tmp_path, capsys):
    """`flushcheck luf-doc --check` exits 1 on a stale file. In process, so it reuses what
    the test above computed (``lufdoc.computed`` runs once per process)."""
    from conformance.cli import main

    stale = tmp_path / "LUF.md"
    stale.write_text("# stale\n")
    assert main(["luf-doc", "--check", "--output", str(stale)]) == 1
    assert "stale" in capsys.readouterr().out


def test_render_marks_failures_with_links():
    """A failing cell links to its timeline; a passing one says pass."""
    class F:
        rule = "C1"
        machine = None

        def report(self, last=None):
            return "timeline"
    scs = _scenarios()
    results = {(p, c): None for p in ROWS for c in list(range(1, len(scs) + 1)) + ["random"]}
    results["luf_v10", 2] = F()
    text = render(results, scs)
    assert "[C1](#luf-v10-2)" in text and '<a id="luf-v10-2"></a>' in text
    assert "| `linux` | mainline | " + " | ".join(["pass"] * (len(scs) + 1)) + " | none |" in text


def test_observation_mode_tells_observable_from_c1_only():
    """With C1 off, the two-thread lazyfree file is O1 under v11 (another thread's fault maps
    the zero page without a flush) and passes under v12 (the fault flushes) and linux; with
    the full oracle all LUF variants are C1. The oracle is restored afterwards."""
    sc = load("litmus/luf-obs-lazyfree-two-threads.litmus")
    orig = Oracle._fail
    assert observe(sc, load_protocol("luf_v11")).rule == "O1"
    assert observe(sc, load_protocol("luf_v12")) is None
    assert observe(sc, load_protocol("linux")) is None
    assert Oracle._fail is orig
    assert run_scenario(sc, load_protocol("luf_v12")).rule == "C1"
    with suppressed({"C1", "O1"}):
        assert run_scenario(sc, load_protocol("luf_v11")) is None
    assert Oracle._fail is orig


def test_diagram_fits_a_mail():
    """The text summary's CPU-column diagram has at most 25 lines and ends with the verdict."""
    sc = _scenarios()[5]
    f = run_scenario(sc, load_protocol("luf_v12"))
    d = diagram(f).splitlines()
    assert len(d) <= 25 and d[0].startswith("CPU") and d[-1].startswith("=> C1")
