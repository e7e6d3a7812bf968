"""docs/LUF.md is generated; it must match what the code produces now."""
import subprocess
import sys

from conformance.lufdoc import DOC_PATH, generate, render


def test_committed_luf_doc_is_current():
    """`flushcheck luf-doc --check` passes on a clean checkout (regenerate after any change)."""
    assert open(DOC_PATH).read() == generate(), \
        "docs/LUF.md is stale: run 'flushcheck luf-doc' and commit the result"


def test_luf_doc_check_command_fails_on_a_stale_file(tmp_path):
    stale = tmp_path / "LUF.md"
    stale.write_text("# stale\n")
    r = subprocess.run([sys.executable, "-m", "conformance.cli", "luf-doc", "--check",
                        "--output", str(stale)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and "stale" in r.stdout


def test_render_marks_failures_with_links():
    """A failing cell links to its timeline; a passing one says pass."""
    class F:
        rule = "C1"

        def report(self, last=None):
            return "timeline"
    from conformance.lufdoc import ROWS, _scenarios
    scs = _scenarios()
    results = {(p, c): None for p in ROWS for c in list(range(1, len(scs) + 1)) + ["random"]}
    results["luf_v10", 2] = F()
    text = render(results, scs)
    assert "[C1](#luf-v10-2)" in text and '<a id="luf-v10-2"></a>' in text
    assert "| `linux` | pass | pass | pass | pass | pass | pass |" in text
