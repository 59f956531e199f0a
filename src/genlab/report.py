"""``genlab report``: run every lab's demo (or reuse its runs) and gather one HTML page and one Markdown file.

Each lab's ``SPEC.demo(root, quick=, device=, quiet=, reuse=)`` trains its runs and writes their figures
(each with a caption, the command that reproduces it, and the numbers behind it), tables and ``summary.json``.
This module only collects: ``index.html`` (self-contained, images embedded) and ``report.md`` (images beside
it, under ``figures/``). A lab that fails is reported in its own section; the others still run, and the
command exits non-zero at the end.

A lab's ``SPEC.key_metrics(runs) -> list[dict]``, when it has one, gives rows with keys ``metric``, ``value`` and
``reference``, and optionally ``same`` (are the data and model the reference's?) and ``reference_from`` ("full run",
the default, or "any run" for a check or target): they fill the front table, where each number also says which
run (quick or full) made it. ``SPEC.labels`` names the summary keys (with units); ``SPEC.expected_seconds`` gives
the time each mode usually takes, for the "about N min left" line printed after each lab.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import json
import math
import re
import shutil
import struct
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from genlab.errors import ConfigError, GenlabError, choose
from genlab.io import atomic_write_bytes, atomic_write_text
from genlab.labs import LabSpec, all_labs, report_order
from genlab.runs import Run, markdown_table


@dataclass
class Figure:
    path: Path
    name: str
    caption: str = ""
    command: str = ""
    data: Any = None


@dataclass
class Table:
    name: str
    rows: list[dict[str, str]]
    caption: str = ""


@dataclass
class RunResult:
    run: Run
    summary: dict[str, Any]
    figures: list[Figure]
    tables: list[Table]


@dataclass
class LabSection:
    name: str
    title: str
    seconds: float = 0.0
    error: str | None = None
    runs: list[RunResult] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "quick"  # "quick" or "full"
    labels: Mapping[str, str] = field(default_factory=dict)  # summary key -> label (the lab's LabSpec.labels)
    same_quick_and_full: bool = False

    @property
    def short_title(self) -> str:
        return self.title.split(":")[0]


# ---------------------------------------------------------------------------------------------- collecting


def collect_run(run: Run, order: dict[str, int] | None = None) -> RunResult:
    """Read a run folder's figures (in the lab's registry ``order``; others after, as made), tables and
    summary."""
    order = order or {}

    def key(png: Path) -> tuple:
        if png.stem in order:
            return (0, order[png.stem], png.name)
        return (1, png.stat().st_mtime_ns, png.name)

    figures = []
    pngs = sorted(run.figures_dir.glob("*.png"), key=key) if run.figures_dir.exists() else []
    for png in pngs:
        meta_path = png.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        figures.append(Figure(png, png.stem, meta.get("caption", ""), meta.get("command", ""), meta.get("data")))
    tables = []
    if run.tables_dir.exists():
        for path in sorted(run.tables_dir.glob("*.csv"), key=lambda p: (order.get(p.stem, len(order)), p.name)):
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
            md = path.with_suffix(".md")
            caption = ""
            if md.exists():
                first = md.read_text().split("\n\n", 1)
                caption = first[0] if len(first) == 2 and not first[0].startswith("|") else ""
            tables.append(Table(path.stem, rows, caption))
    return RunResult(run, run.read_summary(), figures, tables)


def run_lab(lab: LabSpec, root: Path, *, quick: bool, device: str, quiet: bool, reuse: bool) -> LabSection:
    """Call one lab's ``demo`` and collect what it wrote; an exception becomes the section's error."""
    section = LabSection(lab.name, lab.title, mode="quick" if quick else "full", labels=lab.labels)
    section.same_quick_and_full = lab.same_quick_and_full
    reuse = reuse or not quick  # a full report never starts a lab over
    t0 = time.perf_counter()
    try:  # without reuse each demo starts its own runs afresh; other runs in the folder (the user's) are kept
        runs = lab.demo(root, quick=quick, device=device, quiet=quiet, reuse=reuse)
        order = report_order(lab.name)
        section.runs = [collect_run(r, order) for r in runs]
        if lab.key_metrics is not None:
            section.metrics = list(lab.key_metrics(runs))
    except GenlabError as e:
        section.error = str(e)
    except Exception:  # noqa: BLE001 - one lab's bug must not stop the others
        section.error = traceback.format_exc(limit=6)
    section.seconds = time.perf_counter() - t0
    return section


# ------------------------------------------------------------------------------------------------- writing

CSS = """
:root { --ink:#1d2433; --muted:#5b6475; --line:#e3e6ec; --accent:#0072B2; --bad:#b42318; --good:#067647; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--ink);
       background:#f7f8fa; }
header { background:#14213d; color:#fff; padding:28px 40px; }
header h1 { margin:0 0 4px; font-size:26px; } header p { margin:0; color:#c9d1e3; }
nav.top { position:sticky; top:0; background:#fff; border-bottom:1px solid var(--line); padding:10px 40px; z-index:1; }
nav.top a { margin-right:18px; color:var(--accent); text-decoration:none; font-weight:600; }
main { max-width:1200px; margin:0 auto; padding:24px 40px 60px; }
section.lab { background:#fff; border:1px solid var(--line); border-radius:10px; padding:22px 26px; margin:26px 0; }
h2 { margin:0 0 6px; } h3 { margin:22px 0 8px; color:var(--muted); font-size:15px; text-transform:uppercase;
     letter-spacing:.04em; }
.meta { color:var(--muted); font-size:13px; }
.toc { font-size:13.5px; background:#f7f8fa; border:1px solid var(--line); border-radius:8px; padding:8px 14px;
       margin:10px 0 4px; } .toc ul { margin:4px 0 0; padding-left:20px; } .toc li { margin:2px 0; }
.toc a, figcaption a { color:var(--accent); }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(420px,1fr)); gap:18px; }
figure { margin:0; border:1px solid var(--line); border-radius:8px; padding:10px; background:#fff; }
figure.wide { grid-column:1 / -1; }
figure a.zoom { display:block; cursor:zoom-in; }
figure img { width:100%; height:auto; display:block; }
figcaption { font-size:13.5px; margin-top:8px; }
code, pre { font-family: ui-monospace,SFMono-Regular,Menlo,monospace; font-size:12.5px; }
code.cmd { display:block; background:#f1f3f7; padding:6px 8px; border-radius:5px; margin-top:6px;
           white-space:pre-wrap; word-break:break-all; }
details { margin-top:6px; font-size:12.5px; } details pre { max-height:240px; overflow:auto; background:#f7f8fa;
           padding:8px; }
table { border-collapse:collapse; margin:8px 0 14px; font-size:13.5px; }
th, td { border-bottom:1px solid var(--line); padding:5px 12px; text-align:left; vertical-align:top; }
th { background:#f1f3f7; }
.error { border-left:4px solid var(--bad); background:#fef3f2; padding:10px 14px; white-space:pre-wrap; }
.summary { display:grid; grid-template-columns:repeat(auto-fill,minmax(260px,1fr)); gap:4px 14px; margin:8px 0 6px;
           font-size:13px; }
.summary div { display:flex; justify-content:space-between; gap:8px; border-bottom:1px solid var(--line);
               padding:3px 0; }
.summary span { color:var(--muted); overflow-wrap:anywhere; } .summary b { font-weight:600; text-align:right; }
p.note { font-size:13px; margin:4px 0; } p.note span { color:var(--muted); }
.ok { color:var(--good); font-weight:600; } .failed { color:var(--bad); font-weight:600; }
@media print {
  body { background:#fff; font-size:11pt; }
  header { background:none; color:#000; padding:0 0 8px; } header p { color:#333; }
  nav.top { display:none; }
  main { max-width:none; padding:0; }
  section.lab { border:none; border-radius:0; padding:0; margin:0 0 18px; break-before:page; }
  section.lab:first-of-type { break-before:auto; }
  figure, tr, .summary div, .toc, p.note { break-inside:avoid; }
  h2, h3 { break-after:avoid; }
  .grid { grid-template-columns:1fr 1fr; gap:10px; }
  details pre { max-height:none; }
  a { color:inherit; text-decoration:none; }
}
"""

# summary.json keys that several labs write; a lab's own ``LabSpec.labels`` come first
COMMON_LABELS = {
    "train_seconds": "training time (s)",
    "train_wall_seconds": "training wall time (s)",
    "train_steps_done": "training steps done",
    "steps": "training steps",
    "device": "device",
    "final_loss": "final training loss",
    "params": "trainable parameters",
    "parameters": "parameters",
    "stopped_by_time": "stopped by the time budget",
    "figures_seconds": "time to draw the figures (s)",
    "figures_wall_seconds": "time to draw the figures (s)",
    "figures_done": "figures drawn",
    "note": "note",
    "judge_test_accuracy": "judge's accuracy on real test images",
    "guidance": "guidance scale",
}
FRONT_COLUMNS = ("lab", "metric", "reference", "genlab", "run", "same data/model?")
FRONT_LEGEND = (
    "reference: the number the reference report gives (or, where it says so, a target set for genlab); "
    "genlab: this report's value; run: whether that value comes from a quick or a full run (a quick run's number "
    "beside a full-run reference says so); same data/model?: whether genlab used the reference's data and model "
    "(\u201cnot stated\u201d where the lab does not say)."
)


def humanise(key: str) -> str:
    """A label for a summary key no table names: ``check_x`` -> "check: x", ``x_seconds`` -> "x time (s)",
    underscores -> spaces."""
    for prefix, form in (("check_", "check: {}"), ("seconds_", "time: {} (s)")):
        if key.startswith(prefix) and len(key) > len(prefix):
            return form.format(humanise(key[len(prefix) :]))
    for suffix, unit in (("_seconds", " time (s)"), ("_per_second", " per second"), ("_per_s", " per second")):
        if key.endswith(suffix) and len(key) > len(suffix):
            return humanise(key[: -len(suffix)]) + unit
    return " ".join(key.replace("_", " ").split())


def label(key: str, labels: Mapping[str, str] | None = None) -> str:
    """The report's label for a summary key: the lab's, a shared one, or the key made readable."""
    if labels and key in labels:
        return labels[key]
    return COMMON_LABELS.get(key) or humanise(key)


def fmt_number(v: float | int) -> str:
    """A number as the report shows it: 3 significant digits (whole numbers from 100 up, with separators);
    integers in full."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    if 100 <= a < 1e15:
        return f"{round(v, 2 - int(math.floor(math.log10(a)))):,.0f}"
    return f"{v:.3g}"


_FLOAT = re.compile(r"^-?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+)$")


def _fmt(v: Any) -> str:
    if isinstance(v, (bool, int, float)):
        return fmt_number(v)
    if isinstance(v, (dict, list)):
        return json.dumps(v)[:200]
    if isinstance(v, str) and _FLOAT.match(v.strip()):  # a number read back from a CSV table
        return fmt_number(float(v))
    return str(v)


def _raw(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, default=str)


def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _html_table(rows: list[dict[str, Any]], labels: Mapping[str, str] | None = None) -> str:
    """A table; headers through :func:`label`, numbers rounded (the raw value in the cell's tooltip)."""
    if not rows:
        return "<p class='meta'>(empty)</p>"
    keys = list(rows[0])
    head = "".join(f"<th title='{_esc(k)}'>{_esc(label(k, labels))}</th>" for k in keys)

    def cell(v: Any) -> str:
        shown = _fmt(v)
        raw = _raw(v)
        return f"<td title='{_esc(raw)}'>{_esc(shown)}</td>" if raw != shown else f"<td>{_esc(shown)}</td>"

    body = "".join("<tr>" + "".join(cell(r.get(k, "")) for k in keys) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(rows: list[dict[str, Any]], labels: Mapping[str, str] | None = None) -> str:
    return markdown_table([{label(k, labels): _fmt(v).replace("|", "\\|") for k, v in r.items()} for r in rows])


def front_rows(sections: list[LabSection]) -> list[dict[str, Any]]:
    """The front table: each lab's key numbers beside the reference, saying which run made them and whether the
    data and model are the reference's."""
    rows = []
    for s in sections:
        for m in s.metrics:
            reference = m.get("reference", "")
            if s.mode == "full":
                run = "full run"
            elif s.same_quick_and_full:
                run = "quick run (the same as the full run)"
            elif reference not in ("", None) and m.get("reference_from", "full run") == "full run":
                run = "quick run; the reference is from a full run"
            else:
                run = "quick run"
            rows.append(
                {
                    "lab": s.short_title,
                    "metric": m.get("metric", ""),
                    "reference": reference,
                    "genlab": m.get("value", ""),
                    "run": run,
                    "same data/model?": m.get("same") or "not stated",
                }
            )
    return rows


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


class _Anchors:
    """Unique, valid ``id`` values for the page's sections, runs, tables and figures."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, *parts: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_-]+", "-", "--".join(parts)).strip("-") or "x"
        name, i = base, 2
        while name in self.used:
            name, i = f"{base}-{i}", i + 1
        self.used.add(name)
        return name


def _summary_html(summary: dict[str, Any], labels: Mapping[str, str]) -> str:
    """The run's scalar numbers under their labels (long texts as notes below), the raw JSON one click away."""
    scalars = [(k, v) for k, v in summary.items() if not isinstance(v, (dict, list))]
    notes = [(k, v) for k, v in scalars if isinstance(v, str) and len(v) > 60]
    cells = "".join(
        f"<div><span class='label' title='{_esc(k)}'>{_esc(label(k, labels))}</span>"
        f"<b title='{_esc(_raw(v))}'>{_esc(_fmt(v))}</b></div>"
        for k, v in scalars
        if (k, v) not in notes
    )
    parts = [f"<div class='summary'>{cells}</div>"] if cells else []
    parts += [
        f"<p class='note'><span class='label' title='{_esc(k)}'>{_esc(label(k, labels))}</span>: {_esc(v)}</p>"
        for k, v in notes
    ]
    text = json.dumps(summary, indent=1, default=str)
    text = text if len(text) < 20000 else text[:20000] + "\n... (truncated; see summary.json in the run folder)"
    parts.append(f"<details><summary>raw values (summary.json)</summary><pre>{_esc(text)}</pre></details>")
    return "".join(parts)


def write_report(
    sections: list[LabSection], out: Path, *, title: str = "genlab report", subtitle: str = ""
) -> tuple[Path, Path]:
    """Write ``out/index.html`` (images embedded; a click opens the full-size copy under ``out/figures``) and
    ``out/report.md`` (images under ``out/figures``)."""
    out.mkdir(parents=True, exist_ok=True)
    anchor = _Anchors()
    anchor.used |= {"overview", "key-numbers"}
    ids = {s.name: anchor(s.name) for s in sections}
    front = front_rows(sections)
    nav = "".join(f"<a href='#{ids[s.name]}' title='{_esc(s.title)}'>{_esc(s.short_title)}</a>" for s in sections)
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}</title>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'><style>{CSS}</style></head><body>",
        f"<header><h1>{_esc(title)}</h1><p>{_esc(subtitle)}</p></header><nav class='top'>{nav}</nav><main>",
    ]
    md = [f"# {title}\n", f"{subtitle}\n" if subtitle else ""]
    status = [
        {
            "lab": s.short_title,
            "status": "failed" if s.error else "ok",
            "run": f"{s.mode} run",
            "runs": len(s.runs),
            "figures": sum(len(r.figures) for r in s.runs),
            "time (s)": round(s.seconds, 1),
        }
        for s in sections
    ]
    parts.append("<section class='lab' id='overview'><h2>Overview</h2>" + _html_table(status))
    md += ["## Overview\n", _md_table(status)]
    if front:
        parts.append(
            "<h3 id='key-numbers'>Key numbers against the reference reports</h3>"
            + _html_table(front)
            + f"<p class='meta'>{_esc(FRONT_LEGEND)}</p>"
        )
        md += ["\n### Key numbers against the reference reports\n", _md_table(front), f"\n{FRONT_LEGEND}\n"]
    parts.append("</section>")

    for s in sections:
        state = "<span class='failed'>failed</span>" if s.error else "<span class='ok'>ok</span>"
        parts.append(
            f"<section class='lab' id='{ids[s.name]}'><h2>{_esc(s.title)}</h2>"
            f"<p class='meta'>{state} &middot; {s.mode} run &middot; {s.seconds:.0f} s &middot; lab "
            f"<code>{s.name}</code></p>"
        )
        md.append(f"\n## {s.title}\n\n_{'failed' if s.error else 'ok'}, {s.mode} run, {s.seconds:.0f} s_\n")
        if s.error:
            parts.append(f"<div class='error'>{_esc(s.error)}</div>")
            md.append(f"\n```\n{s.error}\n```\n")
        body, toc = [], []
        for r in s.runs:
            rel = f"{s.name}/{r.run.path.name}"
            run_id = anchor(s.name, r.run.path.name)
            items = []
            body.append(
                f"<h3 id='{run_id}'>Run {_esc(rel)}</h3>"
                f"<p class='meta'>folder: <code>{_esc(str(r.run.path))}</code></p>"
            )
            md.append(f"\n### Run {rel}\n")
            if r.summary:
                body.append(_summary_html(r.summary, s.labels))
                scalars = [
                    {"quantity": label(k, s.labels), "value": v}
                    for k, v in r.summary.items()
                    if not isinstance(v, (dict, list))
                ]
                if scalars:
                    md.append(_md_table(scalars))
                md.append(f"\nRaw values: `{r.run.summary_path}`\n")
            for t in r.tables:
                tid = anchor(s.name, r.run.path.name, "table", t.name)
                items.append(f"<a href='#{tid}'>{_esc(t.name)}</a>")
                body.append(f"<p id='{tid}'><b>{_esc(t.caption or t.name)}</b></p>" + _html_table(t.rows, s.labels))
                md += [f"\n**{t.caption or t.name}**\n\n", _md_table(t.rows, s.labels)]
            if r.figures:
                body.append("<div class='grid'>")
            for fig in r.figures:
                raw = fig.path.read_bytes()
                copy = out / "figures" / s.name / r.run.path.name / fig.path.name
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(fig.path, copy)
                href = quote(copy.relative_to(out).as_posix())
                fid = anchor(s.name, r.run.path.name, fig.name)
                items.append(f"<a href='#{fid}'>{_esc(fig.name)}</a>")
                size = _png_size(raw)
                wide = " class='wide'" if size and size[0] > 2 * size[1] else ""
                dims = f" width='{size[0]}' height='{size[1]}'" if size else ""
                cap = _esc(fig.caption or fig.name)
                cmd = f"<code class='cmd'>$ {_esc(fig.command)}</code>" if fig.command else ""
                nums = ""
                if fig.data is not None:
                    text = json.dumps(fig.data, indent=1, default=str)
                    text = text if len(text) < 6000 else text[:6000] + "\n... (truncated; see the run folder)"
                    nums = f"<details><summary>numbers behind the figure</summary><pre>{_esc(text)}</pre></details>"
                body.append(
                    f"<figure id='{fid}'{wide}><a class='zoom' href='{href}' title='open full size'>"
                    f"<img src='data:image/png;base64,{base64.b64encode(raw).decode()}' alt='{_esc(fig.name)}'"
                    f"{dims}></a><figcaption><b>{_esc(fig.name)}</b>: {cap} "
                    f"(<a href='{href}'>full size</a>){cmd}{nums}</figcaption></figure>"
                )
                md.append(
                    f"\n![{fig.name}]({copy.relative_to(out).as_posix()})\n\n*{fig.caption or fig.name}*"
                    + (f"\n\n`{fig.command}`" if fig.command else "")
                    + "\n"
                )
            if r.figures:
                body.append("</div>")
            toc.append(
                f"<li><a href='#{run_id}'>{_esc(rel)}</a>" + (": " + ", ".join(items) if items else "") + "</li>"
            )
        if toc:
            parts.append(f"<div class='toc'><b>Contents</b><ul>{''.join(toc)}</ul></div>")
        parts += body
        parts.append("</section>")
    parts.append(f"<p class='meta'>Made by genlab on {time.strftime('%Y-%m-%d %H:%M')}.</p></main></body></html>")
    html_path = atomic_write_bytes(out / "index.html", "".join(parts).encode("utf-8"))
    md_path = atomic_write_text(out / "report.md", "\n".join(md))
    return html_path, md_path


def _minutes(seconds: float) -> str:
    m = seconds / 60
    return f"{m:.1f}" if m < 10 else f"{m:.0f}"


def _time_left(specs: list[LabSpec], mode: str, what: str = "left") -> str:
    """``about N min left`` from the labs still to run (their ``expected_seconds``), naming those without one."""
    if not specs:
        return "writing the report"
    known = [s.expected_seconds[mode] for s in specs if mode in s.expected_seconds]
    unknown = [s.name for s in specs if mode not in s.expected_seconds]
    text = f"about {_minutes(sum(known))} min {what}"
    return text + (f" (+ {', '.join(unknown)}: no estimate)" if unknown else "")


def make_report(
    *,
    out: Path,
    labs: list[str] | None = None,
    quick: bool = True,
    device: str = "auto",
    quiet: bool = False,
    reuse: bool = False,
    specs: list[LabSpec] | None = None,
) -> list[LabSection]:
    """Run (or reuse) every lab's demo, quick or full (``quick=False``), write the report, and return the sections.

    A full report always reuses: finished runs are kept as they are and cut-off ones continue from their last
    checkpoint, so a killed full report, run again, goes on where it stopped. One line per lab says when it
    starts and ends, with the time left from the labs' ``expected_seconds``.
    """
    specs = specs if specs is not None else all_labs()
    names = {s.name: s for s in specs}
    if labs:
        for lab in labs:
            choose("lab", lab, names)
        specs = [names[lab] for lab in labs]
    mode = "quick" if quick else "full"
    reuse = reuse or not quick
    root = out / "runs"
    sections = []
    n = len(specs)
    print(f"report: {n} labs, {mode} run; {_time_left(specs, mode, 'in all')}", flush=True)
    for k, spec in enumerate(specs, 1):
        expected = spec.expected_seconds.get(mode)
        usual = f"usually about {_minutes(expected)} min" if expected is not None else "no estimate"
        print(f"[{k}/{n}] {spec.name}: started ({usual})", flush=True)
        section = run_lab(spec, root, quick=quick, device=device, quiet=quiet, reuse=reuse)
        sections.append(section)
        what = "failed after" if section.error else "done in"
        print(
            f"[{k}/{n}] {spec.name}: {what} {_minutes(section.seconds)} min; {_time_left(specs[k:], mode)}", flush=True
        )
    write_report(
        sections,
        out,
        subtitle=f"{mode} configuration of {len(sections)} labs, "
        f"{sum(s.seconds for s in sections) / 60:.1f} minutes"
        + (" (finished runs reused, cut-off runs continued, figures redrawn)" if reuse else ""),
    )
    return sections


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="run every lab's demo (or reuse its runs) and write one HTML report")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        dest="mode",
        action="store_const",
        const="quick",
        help="the quick configurations, minutes on a laptop CPU (the default; what make demo runs)",
    )
    mode.add_argument(
        "--full",
        dest="mode",
        action="store_const",
        const="full",
        help="each lab at the settings its reference report used, as far as genlab can (about 1.5 hours on a "
        "CPU, estimated); always reuses finished runs and continues cut-off ones, so a killed full report goes on "
        "where it stopped",
    )
    p.add_argument("--labs", default=None, help="comma-separated labs to include (default: all)")
    p.add_argument("--out", default="report", help="output folder (default: report); its runs/ holds the runs")
    p.add_argument(
        "--reuse", action="store_true", help="reuse finished runs in OUT/runs, only redraw figures (--full always does)"
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--quiet", action="store_true", help="hide progress bars")
    p.set_defaults(func=_cmd_report, mode="quick")


def _cmd_report(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; the report needs a folder (e.g. --out report)")
    labs = None
    if args.labs is not None:
        labs = [x.strip() for x in args.labs.split(",") if x.strip()]
        if not labs:
            raise ConfigError(
                f"--labs {args.labs!r} names no lab; give some, e.g. --labs diffusion2d,textgen, or "
                f"leave --labs out for all of them"
            )
    sections = make_report(
        out=out, labs=labs, quick=args.mode != "full", device=args.device, quiet=args.quiet, reuse=args.reuse
    )
    failed = [s.name for s in sections if s.error]
    total = sum(s.seconds for s in sections)
    print(f"report: {out / 'index.html'} ({len(sections)} labs, {total:.0f} s)")
    if failed:
        print(f"genlab: error: lab(s) failed: {', '.join(failed)}; see their sections in the report")
        return 1
    return 0
