"""Pictures (conformance/picture.py): a failure as a self-contained HTML page with an SVG."""
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conformance.search.explorer import explore
from conformance.litmus import load as load_litmus
from conformance.picture import html_path, render_html
from conformance.registry import load_protocol
from conformance.reproducer import load, save

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LITMUS = os.path.join(REPO, "litmus", "bug-2.7-lost-pending-flush.litmus")
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def failure():
    """The 2021 race (kernel-notes 2.7) under linux_4_13: the explorer's shortest
    counterexample, S3 at step 18."""
    res = explore(load_litmus(LITMUS), load_protocol("linux_4_13"))
    assert res.failure is not None and res.failure.rule == "S3"
    return res.failure


@pytest.fixture(scope="module")
def page(failure):
    return render_html(failure)


def _svg(page):
    m = re.search(r"<svg\b.*?</svg>", page, re.S)
    assert m, "no inline svg"
    return ET.fromstring(m.group(0))


def _classes(el):
    return (el.get("class") or "").split()


def test_well_formed_html_and_svg(page):
    assert page.startswith("<!DOCTYPE html>")
    root = _svg(page)
    assert root.tag == SVG + "svg"
    # the page as a whole is well-formed XML too (XHTML-compatible markup)
    ET.fromstring(page.split("\n", 1)[1])


def test_one_lane_per_cpu(page, failure):
    """A lane per CPU, then one headed "hw" for the events of no CPU: here the free of pfn0
    (kernel-notes 2.7's reuse), drawn in CPU0's lane as "[hw] pfn0 freed" until 2026-12-05,
    where it read as CPU0's doing."""
    root = _svg(page)
    lanes = [g for g in root.iter(SVG + "g") if "lane" in _classes(g)]
    assert [g.get("data-cpu") for g in lanes] == \
        [str(c) for c in range(failure.machine.cfg.ncpus)] + ["hw"]
    hw_x = float(lanes[-1].find(SVG + "rect").get("x"))
    cpu0_x = float(lanes[0].find(SVG + "rect").get("x"))
    texts = {t.text: float(t.get("x")) for t in root.iter(SVG + "text") if t.text and t.get("x")}
    assert texts["pfn0 freed"] > hw_x > cpu0_x  # in the hw column, not CPU0's
    assert not any("[hw]" in t for t in texts)


def test_marks_the_violating_step_with_the_oracle_message(page, failure):
    marks = [g for g in _svg(page).iter(SVG + "g") if "violation" in _classes(g)]
    assert len(marks) == 1
    assert marks[0].get("data-step") == str(failure.step) and marks[0].get("data-rule") == "S3"
    assert failure.headline() in marks[0].find(SVG + "title").text
    # the entry the oracle names (CPU0 mm0:v2 -> pfn1) is drawn stale, still cached at the end
    culprits = [g for g in _svg(page).iter(SVG + "g") if "culprit" in _classes(g)]
    assert len(culprits) == 1 and "stale" in _classes(culprits[0])
    tip = culprits[0].find(SVG + "title").text
    assert tip.startswith("CPU0 mm0:v2 -> pfn1") and "still cached at the end" in tip


def test_spans_ticks_and_flushes(page):
    root = _svg(page)
    ops = [r for r in root.iter(SVG + "rect") if "op" in _classes(r)]
    assert {r.find(SVG + "title").text.split(" on ")[0] for r in ops} >= {
        "munmap(mm0, v0..v0)", "reclaim[pfn1]"}
    texts = " ".join(t.text or "" for t in root.iter(SVG + "text"))
    assert "flush_tlb_mm(mm0)" in texts and "ptep_get_and_clear(mm0:v2)" in texts
    assert "IPI from CPU1" in texts  # reclaim's arch_tlbbatch_flush on CPU1 reaches CPU0
    entries = [g for g in root.iter(SVG + "g") if "tlb-entry" in _classes(g)]
    assert any("flushed by arch_tlbbatch_flush" in g.find(SVG + "title").text for g in entries)


def test_self_contained(page):
    assert "http:" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https:" not in page
    assert not re.search(r"<script\b", page)
    assert not re.search(r"""(src|href)=["'](?!#)""", page)


def test_deterministic(failure, page):
    """Same input, same bytes (no clock, no ids, no set order)."""
    assert render_html(failure) == page


def test_written_next_to_a_saved_reproducer(failure, tmp_path, page):
    path = save(failure, str(tmp_path / "repro" / "race.json"))
    html = tmp_path / "repro" / "race.html"
    assert html_path(path) == str(html) and html.exists()
    text = html.read_text()
    assert "flushcheck picture " + path in text
    # the same picture from the reproducer file as from the failure in memory: same svg
    assert re.search(r"<svg\b.*</svg>", text, re.S).group(0) == \
        re.search(r"<svg\b.*</svg>", render_html(load(path)), re.S).group(0)
    assert re.search(r"<svg\b.*</svg>", page, re.S).group(0) == \
        re.search(r"<svg\b.*</svg>", text, re.S).group(0)


def test_picture_command(tmp_path, failure):
    repro = save(failure, str(tmp_path / "r.json"), picture=False)
    out = tmp_path / "out.html"
    r = subprocess.run([sys.executable, "-m", "conformance.cli", "picture", repro, "-o", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"wrote {out}" and out.exists()
    r = subprocess.run([sys.executable, "-m", "conformance.cli", "picture", LITMUS,
                        "--protocol", "linux_4_13", "-o", "-"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("<!DOCTYPE html>") and 'class="violation"' in r.stdout
    r = subprocess.run([sys.executable, "-m", "conformance.cli", "picture", LITMUS,
                        "--protocol", "linux", "-o", str(tmp_path / "none.html")],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "nothing to draw" in r.stderr
    # a search stopped at --max-states is no pass: it said "no counterexample (pass)" of a
    # scenario linux_4_13 fails (a user review, 2026-12-06)
    r = subprocess.run([sys.executable, "-m", "conformance.cli", "picture", LITMUS,
                        "--protocol", "linux_4_13", "--max-states", "2", "-o", "-"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "(pass)" not in r.stderr, r.stderr
    assert "no counterexample in the first 2 states (the search stopped at --max-states)" \
        in r.stderr and r.stderr.count("\n") == 1


def test_explore_says_where_the_picture_is(tmp_path):
    r = subprocess.run([sys.executable, "-m", "conformance.cli", "explore", LITMUS, "--protocol",
                        "linux_4_13", "--repro-dir", str(tmp_path)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    page = tmp_path / "explore-bug-2.7-lost-pending-flush-linux_4_13.html"
    assert f"  picture    {page}" in r.stdout.splitlines() and page.exists()


def test_picture_of_a_scenario_saved_for_a_file_protocol_says_to_name_it(tmp_path, capsys):
    """certify saves a failure's scenario beside its reproducer with expect lines naming the
    protocol; a file protocol is named by its stem there, which does not load: the error
    says to give --protocol (it was "unknown protocol 'stem'" and a list of every built-in)."""
    from conformance.cli import main

    with open(LITMUS) as fh:
        text = fh.read()
    lit = tmp_path / "mine-0.litmus"
    lit.write_text(re.sub(r"^expect .*$", "", text, flags=re.M) + "\nexpect mine S3\n")
    assert main(["picture", str(lit)]) == 2
    err = capsys.readouterr().err
    assert "its expect lines name 'mine'" in err and "give --protocol" in err
    assert len(err.strip().splitlines()) == 1


def test_a_litmus_picture_draws_the_protocol_expected_to_fail():
    """``picture FILE.litmus`` without --protocol: a protocol the expect lines name as
    failing; for a finding (``expect * S2``, docs/FINDINGS.md) linux; none if all pass."""
    from conformance.cli import _failing_protocol

    lit = os.path.join(REPO, "litmus")
    assert _failing_protocol(load_litmus(os.path.join(
        lit, "bug-2.4-reclaim-vs-mprotect.litmus"))) == "linux_4_3"
    assert _failing_protocol(load_litmus(os.path.join(
        lit, "finding-reclaim-activates-dirty-file.litmus"))) == "linux"
    assert _failing_protocol(load_litmus(os.path.join(
        lit, "gap-truncate-vs-mremap.litmus"))) is None


def renumbers():
    """A protocol whose ``tlb_finish_mmu`` renumbers its gather's mm (a HookRuleBroken)."""
    class Renumbers(load_protocol("linux")):
        name = "renumbers"

        def tlb_finish_mmu(self, tlb):
            tlb.mm.id = 7
            return super().tlb_finish_mmu(tlb)
    return Renumbers


def test_a_picture_of_a_run_a_hook_broke_is_drawn_without_lives(tmp_path, monkeypatch):
    """A hook that renumbered an mm (a HookRuleBroken protocol error) left TLB entries of an
    mm the machine does not have: drawing them raised IndexError, so certify left an empty
    page it still listed, and ``flushcheck picture`` of the reproducer was a traceback (a
    review, 2026-12-05). The page is drawn without the TLB lives now, and says why. Since
    2026-12-07 the model's frame accounting stops such a run first, at its quiescent check
    (its rmap names mm1, the PTE's mm is mm7: the test of the accounting below); with that
    check off, the run reaches the unreadable machine this test is about."""
    import conformance.machine
    from conformance.certify import certify
    from conformance.picture import html_path, write_html
    from conformance.reproducer import save
    monkeypatch.setattr(conformance.machine, "unaccounted", lambda m: None)

    r = certify(renumbers(), budget_s=None, max_examples=2, seed=1, chunk=2)
    (f,) = r.failures
    path = save(f, str(tmp_path / "r.json"))
    page = open(html_path(path)).read()
    assert ("TLB lives not drawn: the machine could not be read, an entry of mm7 v0, which the "
            "machine lacks") in page
    again = write_html(f, str(tmp_path / "again.html"))  # the class is the test's, which
    assert "TLB lives not drawn" in open(again).read()  # no reproducer's reference loads


def test_the_frame_accounting_names_a_renumbered_mm():
    """The same hook with the accounting check on: a protocol error whose model failure is
    the accounting's, naming the PTE the renumbered mm's rmap no longer lists."""
    from conformance.certify import certify

    # seed 5 since 2026-12-07 15:00 (tlb_end_vma stopped flushing, MMU_GATHER_MERGE_VMAS):
    # seed 1's run now renumbers the mm where the model next fails on the mm it lacks (an
    # IndexError, still reported as this protocol's error), before the quiescent check
    (f,) = certify(renumbers(), budget_s=None, max_examples=2, seed=5, chunk=2).failures
    assert "HookRuleBroken" in str(f)
    assert "the model then failed: frame accounting: mm7:v0 maps pfn1" in str(f)


def test_a_drawing_error_leaves_no_empty_page(tmp_path, monkeypatch):
    from conformance import picture

    def broken(*a, **kw):
        raise RuntimeError("a drawing bug")

    monkeypatch.setattr(picture, "render_html", broken)
    with pytest.raises(RuntimeError):
        picture.write_html(None, str(tmp_path / "p.html"))
    assert not (tmp_path / "p.html").exists()


def test_a_model_error_without_a_row_is_drawn_where_it_fits():
    """A model error has no "!!" row of its own; with an event of no CPU on the page it was
    drawn in the hw lane, narrowed to that lane's events, and its message ran past the
    picture's right edge (a review, 2026-12-05). It goes to CPU0's lane, wrapped to fit."""
    from conformance.machine import Machine
    from conformance.picture import CHAR, _svg
    m = Machine(load_protocol("linux"))
    m.munmap(0, 0, 1)
    m.drain()
    m.consumer_alloc()  # an event of no CPU: the page has an hw lane
    e = m._model_error("deadlock while draining: CPU0 waits for the PTL of mm0:v1 held by "
                       "CPU1 which waits for the mmap_lock of mm0")
    svg = _svg(m.trace.events, m.cfg.ncpus, None, e, m)
    root = ET.fromstring(svg)
    width = float(root.get("width"))
    lanes = [g for g in root.iter(SVG + "g") if "lane" in _classes(g)]
    assert lanes[-1].get("data-cpu") == "hw"
    mark = next(g for g in root.iter(SVG + "g") if "violation" in _classes(g))
    texts = [t for t in mark.iter(SVG + "text") if t.text]
    assert len(texts) > 2
    assert all(float(t.get("x")) + len(t.text) * CHAR <= width for t in texts), width


def test_a_flush_of_no_cpu_is_not_drawn_as_a_cpus():
    """A LUF takeoff flush for the other consumer's allocation has no CPU; its IPIs were
    labelled "IPI from CPU3" on a 3-CPU machine (the hw lane's index)."""
    from conformance.machine import Machine
    m = Machine(load_protocol("luf_v12"))
    for f in m.lru_frames():
        m.reclaim(1, (f,))
        m.drain()
    for _ in range(6):
        m.consumer_alloc()
    assert any(n == "arch_tlbbatch_flush" and w is None for _s, w, n, _a in m.trace.events)
    page = render_html(m)
    assert "IPI from hw" in page and f"IPI from CPU{m.cfg.ncpus}" not in page


def test_an_operation_in_flight_gives_no_last_step():
    """An operation still in flight runs on after its last event, in steps the text timeline
    draws as "(OP continues)": its tooltip said "steps 18-18, still in flight" beside a
    timeline continuing at 19 and 22 (a researcher's review, 2026-12-06). It gives its
    first step; a returned one keeps its range."""
    page = render_html(load(os.path.join(REPO, "tests", "fixtures", "replay",
                                         "hist_2_3_nested_reclaim-walk172.json")))
    titles = [r.find(SVG + "title").text for r in _svg(page).iter(SVG + "rect")
              if "op" in _classes(r)]
    assert not [t for t in titles if re.search(r"steps \d+-\d+, still in flight", t)], titles
    assert any(re.search(r"from step \d+, still in flight at the end$", t) for t in titles)
    assert any(re.search(r"steps \d+-\d+$", t) for t in titles), titles


def test_a_hooks_last_store_has_a_row(failure):
    """The 2021 race is a store: CPU0's ``flush_tlb_batched_pending`` clears the pending
    count after CPU1's reclaim set it. The store comes after the hook's last point, so its
    step read ``(munmap(...) continues)`` and the race was not on the page (a researcher's
    review, 2026-12-06). It has a row of its own, in CPU0's column, after CPU1's store."""
    rows = [r for r in failure.report(last=None).splitlines() if "returns after" in r]
    assert len(rows) >= 2, rows
    assert rows[-1].startswith("  17 (flush_tlb_batched_pending returns after"), rows
