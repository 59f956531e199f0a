"""The report: fake labs write runs; the report gathers them, and a failing lab does not stop the others."""

import base64
import os
import re
import shutil
import stat
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from genlab import labs
from genlab.cli import main
from genlab.errors import ConfigError
from genlab.labs import Drawn
from genlab.plots import figure
from genlab.report import FRONT_COLUMNS, fmt_number, humanise, make_report
from genlab.runs import reuse_or_create


def fake_lab(name, *, fail=False, expected=None):
    """A lab spec whose demo draws two registered figures (drawn out of order; the second one wide) and a table,
    trains only a run that is not finished (continuing a cut-off one), and records each call in ``calls`` (reuse)
    and each training in ``demo.trained`` (run name, resumed?)."""
    labs._REGISTRY.pop(name, None)
    calls, trained = [], []

    def curve(i):
        def fn(opened):
            fig, ax = figure(size=(3.6, 3.2) if i == 0 else (12, 3))
            ax.plot(range(10), [x ** (i + 1) for x in range(10)])
            return Drawn(fig, caption=f"power {i + 1}", data={"power": i + 1})

        fn.__module__ = f"genlab.labs.{name}"
        return labs.figure(f"curve{i}")(fn)

    first, second = curve(0), curve(1)

    def scores(opened):
        return Drawn(rows=[{"model": "m", "test_acc": 0.912345}], caption="Scores")

    scores.__module__ = f"genlab.labs.{name}"
    labs.table("scores")(scores)

    def demo(root, *, quick=True, device="auto", quiet=False, reuse=True):
        calls.append(reuse)
        if fail:
            raise RuntimeError(f"{name} exploded")
        run = reuse_or_create(name, {"quick": quick}, name="quick" if quick else "full", root=root, reuse=reuse)
        if not run.finished:
            trained.append((run.path.name, run.last_checkpoint.exists()))
            run.save_checkpoint({"step": 1})
            run.mark_progress(1, 1)
        for fn in (second, first, scores):  # made out of order, shown in registry order
            labs.draw(fn, None, run)
        run.update_summary({"accuracy": 0.912345, "train_seconds": 12.3456, "some_raw_key": 123456.7})
        return [run]

    spec = labs.LabSpec(
        name=name,
        title=f"Lab {name}",
        order=1,
        Config=dict,
        presets={},
        register=lambda sub: None,
        demo=demo,
        key_metrics=lambda runs: [
            {"metric": "accuracy", "value": runs[0].read_summary()["accuracy"], "reference": 0.8},
            {"metric": "check", "value": "yes", "reference": "yes", "reference_from": "any run", "same": "no: toy"},
        ],
        expected_seconds=expected or {},
        labels={"accuracy": "accuracy (share)"},
    )
    demo.trained = trained  # what the demo trained: spec.demo.trained
    return spec, calls


def test_report_gathers_figures_and_survives_a_failing_lab(tmp_path):
    (good, _), (bad, _) = fake_lab("alpha"), fake_lab("beta", fail=True)
    sections = make_report(out=tmp_path, specs=[good, bad], quiet=True)
    assert [s.error is None for s in sections] == [True, False]
    assert "beta exploded" in sections[1].error
    page = (tmp_path / "index.html").read_text()
    assert page.count("<img src='data:image/png;base64,") == 2
    assert "power 2" in page and "beta exploded" in page
    assert f"$ genlab alpha figures --run {tmp_path / 'runs' / 'alpha' / 'quick'}" in page
    assert "accuracy" in page and "0.91" in page
    assert page.index("curve0") < page.index("curve1")
    md = (tmp_path / "report.md").read_text()
    for link in re.findall(r"\]\((figures/[^)]+)\)", md):
        assert (tmp_path / link).is_file()
    assert md.count("![") == 2


def test_reuse_keeps_runs_and_a_fresh_report_removes_them(tmp_path):
    lab, calls = fake_lab("alpha")
    make_report(out=tmp_path, specs=[lab], quiet=True)
    marker = tmp_path / "runs" / "alpha" / "quick" / "marker"
    marker.write_text("x")
    make_report(out=tmp_path, specs=[lab], quiet=True, reuse=True)
    assert marker.exists() and calls == [False, True]
    make_report(out=tmp_path, specs=[lab], quiet=True, reuse=False)
    assert not marker.exists()


def test_unknown_lab_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown lab 'gamma'; choose one of: alpha"):
        make_report(out=tmp_path, specs=[fake_lab("alpha")[0]], labs=["gamma"], quiet=True)


class Page(HTMLParser):
    """What the tests read from index.html: each <img> with the href of the <a> around it, the summary labels,
    every table's cells, the ids and the in-page links."""

    def __init__(self, text):
        super().__init__()
        self.images, self.labels, self.tables, self.ids, self.local_links, self.figure_classes = (
            [],
            [],
            [],
            set(),
            [],
            {},
        )
        self._a, self._label, self._cell = [], None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "figure":
            self.figure_classes[a.get("id")] = a.get("class") or ""
        if tag == "a":
            self._a.append(a.get("href"))
            if (a.get("href") or "").startswith("#"):
                self.local_links.append(a["href"][1:])
        elif tag == "img":
            self.images.append((a.get("src", ""), self._a[-1] if self._a else None))
        elif tag == "span" and "label" in (a.get("class") or "").split():
            self._label = ""
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("th", "td"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "a" and self._a:
            self._a.pop()
        elif tag == "span" and self._label is not None:
            self.labels.append(self._label)
            self._label = None
        elif tag in ("th", "td") and self._cell is not None:
            self.tables[-1][-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._label is not None:
            self._label += data
        if self._cell is not None:
            self._cell += data


def test_every_figure_opens_full_size_and_labels_are_readable(tmp_path):
    make_report(out=tmp_path, specs=[fake_lab("alpha")[0], fake_lab("beta")[0]], quiet=True)
    page = Page((tmp_path / "index.html").read_text())
    assert len(page.images) == 4
    for src, href in page.images:
        assert href, f"an <img> outside any <a>: {src[:60]}"
        full = tmp_path / unquote(href)
        assert href.startswith("data:image/") or full.is_file(), href
        assert full.read_bytes() == base64.b64decode(src.split(",", 1)[1])  # the same PNG, at its full size
    assert page.labels and not [x for x in page.labels if "_" in x]
    assert {"accuracy (share)", "training time (s)", "some raw key"} <= set(page.labels)
    # wide figures (aspect > 2) span the grid; the others share it
    assert "wide" in page.figure_classes["alpha--quick--curve1"]
    assert "wide" not in page.figure_classes["alpha--quick--curve0"]
    # a contents list per lab: every in-page link lands on an id
    for lab in ("alpha", "beta"):
        assert {f"{lab}--quick", f"{lab}--quick--curve0", f"{lab}--quick--curve1"} <= set(page.local_links)
    assert set(page.local_links) <= page.ids
    text = (tmp_path / "index.html").read_text()
    assert "<details><summary>raw values (summary.json)</summary>" in text and "0.912345" in text
    assert "<script" not in text  # works without JavaScript
    assert "@media print" in text


def test_front_table_compares_like_with_like(tmp_path):
    make_report(out=tmp_path, specs=[fake_lab("alpha")[0]], quiet=True)
    page = Page((tmp_path / "index.html").read_text())
    front = next(t for t in page.tables if t and tuple(t[0]) == FRONT_COLUMNS)
    rows = [dict(zip(FRONT_COLUMNS, r)) for r in front[1:]]
    assert [r["metric"] for r in rows] == ["accuracy", "check"]
    assert rows[0]["genlab"] == "0.912" and rows[0]["reference"] == "0.8"
    assert rows[0]["run"] == "quick run; the reference is from a full run"
    assert rows[0]["same data/model?"] == "not stated"
    assert rows[1]["run"] == "quick run" and rows[1]["same data/model?"] == "no: toy"
    md = (tmp_path / "report.md").read_text()
    assert "| lab | metric | reference | genlab | run | same data/model? |" in md
    make_report(out=tmp_path, specs=[fake_lab("alpha")[0]], quiet=True, quick=False)
    front = next(t for t in Page((tmp_path / "index.html").read_text()).tables if t and tuple(t[0]) == FRONT_COLUMNS)
    assert [r[4] for r in front[1:]] == ["full run", "full run"]


def test_numbers_are_rounded_and_keys_humanised():
    assert [fmt_number(v) for v in (0.912345, 12.3456, 273.1, 123456.7, 1.43e-06, 0.0, 3000, 2176193, True)] == [
        "0.912",
        "12.3",
        "273",
        "123,000",
        "1.43e-06",
        "0",
        "3000",
        "2,176,193",
        "yes",
    ]
    assert humanise("plane_elbo_minus_ode_sd_in_support") == "plane elbo minus ode sd in support"
    assert humanise("check_gan_pairing") == "check: gan pairing"
    assert humanise("seconds_saliency") == "time: saliency (s)"
    assert humanise("figures_wall_seconds") == "figures wall time (s)"


def test_every_lab_label_is_readable():
    for lab in labs.all_labs():
        assert not [v for v in lab.labels.values() if "_" in v], lab.name
        assert set(lab.expected_seconds) <= {"quick", "full"}, lab.name


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_report_files_respect_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        make_report(out=tmp_path, specs=[fake_lab("alpha")[0]], quiet=True)
    finally:
        os.umask(old)
    for path in [tmp_path / "index.html", tmp_path / "report.md", *(tmp_path / "figures").rglob("*.png")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


def test_quick_and_full_are_mutually_exclusive(tmp_path, capsys):
    assert main(["report", "--quick", "--full", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--full" in err and "not allowed with" in err
    assert not (tmp_path / "index.html").exists()


def test_a_full_report_reuses_finished_runs_and_continues_cut_off_ones(tmp_path, capsys):
    lab, calls = fake_lab("alpha", expected={"quick": 60, "full": 600})
    other, _ = fake_lab("beta", expected={"quick": 30, "full": 300})
    make_report(out=tmp_path, specs=[lab, other], quiet=True, quick=False)
    run = tmp_path / "runs" / "alpha" / "full"
    assert lab.demo.trained == [("full", False)] and calls == [True]
    out = capsys.readouterr().out
    assert "report: 2 labs, full run; about 15 min in all" in out
    assert "[1/2] alpha: started (usually about 10 min)" in out
    assert re.search(r"\[1/2\] alpha: done in [\d.]+ min; about 5\.0 min left", out), out
    assert re.search(r"\[2/2\] beta: done in [\d.]+ min; writing the report", out), out
    (run / "marker").write_text("x")
    make_report(out=tmp_path, specs=[lab], quiet=True, quick=False)  # finished: reused, not trained again
    assert lab.demo.trained == [("full", False)] and calls == [True, True] and (run / "marker").exists()
    (run / "progress.json").write_text('{"step": 0, "steps": 1, "done": false}')  # as if killed mid-training
    make_report(out=tmp_path, specs=[lab], quiet=True, quick=False)
    assert lab.demo.trained == [("full", False), ("full", True)]  # continued from its checkpoint
    assert (run / "marker").exists()


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


CHECK = """<script>
window.addEventListener('load', async () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
  // every figure opens full size: the link around it loads an image of the same natural size
  const full = await Promise.all(imgs.map(i => new Promise(done => {
    const a = i.closest('a');
    if (!a) return done(false);
    const big = new Image();
    big.onload = () => done(big.naturalWidth === i.naturalWidth && big.naturalHeight === i.naturalHeight);
    big.onerror = () => done(false);
    big.src = a.href;
  })));
  document.body.setAttribute('data-full', full.filter(Boolean).length + '/' + imgs.length);
  // no raw key name shown as a label
  const labels = [...document.querySelectorAll('.summary span, span.label, th')].map(e => e.textContent);
  document.body.setAttribute('data-raw-labels', String(labels.filter(t => t.includes('_')).length));
  document.body.setAttribute('data-labels', String(labels.length));
});
</script>"""


def test_report_renders_in_a_headless_browser(tmp_path):
    """Every image loads in a real browser, opens full size from the link around it, no label shows a raw key
    name; a screenshot is kept (CI keeps it as an artifact)."""
    browser = _chromium()
    if browser is None:
        if os.environ.get("GENLAB_REQUIRE_BROWSER"):
            pytest.fail("GENLAB_REQUIRE_BROWSER is set but no chromium is installed")
        pytest.skip("no chromium installed (.ci/run installs Debian's chromium)")
    make_report(out=tmp_path, specs=[fake_lab("alpha")[0], fake_lab("beta")[0]], quiet=True)
    page = (tmp_path / "index.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", CHECK + "</body>"))
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        flags + ["--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert 'data-images="4/4"' in dom, dom[:500]
    assert 'data-full="4/4"' in dom, dom[:500]
    assert 'data-raw-labels="0"' in dom and 'data-labels="0"' not in dom, dom[:500]
    shot_dir = Path(os.environ.get("GENLAB_ARTIFACTS", tmp_path))
    shot_dir.mkdir(parents=True, exist_ok=True)
    shot = shot_dir / "report-screenshot.png"
    subprocess.run(
        flags + ["--window-size=1280,2200", f"--screenshot={shot}", (tmp_path / "index.html").as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert shot.is_file() and shot.read_bytes()[:4] == b"\x89PNG"
