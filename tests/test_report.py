"""The report: fake labs write runs; the report gathers them, and a failing lab does not stop the others."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from genlab import labs
from genlab.errors import ConfigError
from genlab.labs import Drawn
from genlab.plots import figure
from genlab.report import make_report
from genlab.runs import reuse_or_create


def fake_lab(name, *, fail=False):
    """A lab spec whose demo draws two registered figures (drawn out of order) and a table."""
    labs._REGISTRY.pop(name, None)
    calls = []

    def curve(i):
        def fn(opened):
            fig, ax = figure()
            ax.plot(range(10), [x ** (i + 1) for x in range(10)])
            return Drawn(fig, caption=f"power {i + 1}", data={"power": i + 1})

        fn.__module__ = f"genlab.labs.{name}"
        return labs.figure(f"curve{i}")(fn)

    first, second = curve(0), curve(1)

    def scores(opened):
        return Drawn(rows=[{"model": "m", "acc": 0.9}], caption="Scores")

    scores.__module__ = f"genlab.labs.{name}"
    labs.table("scores")(scores)

    def demo(root, *, quick=True, device="auto", quiet=False, reuse=True):
        calls.append(reuse)
        if fail:
            raise RuntimeError(f"{name} exploded")
        run = reuse_or_create(name, {"quick": quick}, name="quick", root=root, reuse=reuse)
        for fn in (second, first, scores):  # made out of order, shown in registry order
            labs.draw(fn, None, run)
        run.update_summary({"accuracy": 0.91})
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
            {"metric": "accuracy", "value": runs[0].read_summary()["accuracy"], "reference": 0.8}
        ],
    )
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


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


CHECK = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});
</script>"""


def test_report_renders_in_a_headless_browser(tmp_path):
    """Every image loads in a real browser; a screenshot is kept (CI keeps it as an artifact)."""
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
    shot_dir = Path(os.environ.get("GENLAB_ARTIFACTS", tmp_path))
    shot_dir.mkdir(parents=True, exist_ok=True)
    shot = shot_dir / "report-screenshot.png"
    subprocess.run(
        flags + ["--window-size=1280,2200", f"--screenshot={shot}", (tmp_path / "index.html").as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert shot.is_file() and shot.read_bytes()[:4] == b"\x89PNG"
