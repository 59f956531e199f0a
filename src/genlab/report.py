"""``genlab report``: run every lab's demo (or reuse its runs) and gather one HTML page and one Markdown file.

Each lab's ``SPEC.demo(root, quick=, device=, quiet=, reuse=)`` trains its runs and writes their figures
(each with a caption, the command that reproduces it, and the numbers behind it), tables and ``summary.json``.
This module only collects: ``index.html`` (self-contained, images embedded) and ``report.md`` (images beside
it, under ``figures/``). A lab that fails is reported in its own section; the others still run, and the
command exits non-zero at the end.

A lab's ``SPEC.key_metrics(runs) -> list[dict]``, when it has one, gives rows with keys ``metric``, ``value`` and
``reference``: they fill the front table of headline numbers against the reference reports.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import json
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

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
    section = LabSection(lab.name, lab.title)
    t0 = time.perf_counter()
    try:
        if not reuse and (root / lab.name).exists():
            shutil.rmtree(root / lab.name)
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
nav { position:sticky; top:0; background:#fff; border-bottom:1px solid var(--line); padding:10px 40px; z-index:1; }
nav a { margin-right:18px; color:var(--accent); text-decoration:none; font-weight:600; }
main { max-width:1200px; margin:0 auto; padding:24px 40px 60px; }
section.lab { background:#fff; border:1px solid var(--line); border-radius:10px; padding:22px 26px; margin:26px 0; }
h2 { margin:0 0 6px; } h3 { margin:22px 0 8px; color:var(--muted); font-size:15px; text-transform:uppercase;
     letter-spacing:.04em; }
.meta { color:var(--muted); font-size:13px; }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(420px,1fr)); gap:18px; }
figure { margin:0; border:1px solid var(--line); border-radius:8px; padding:10px; background:#fff; }
figure img { width:100%; height:auto; display:block; }
figcaption { font-size:13.5px; margin-top:8px; }
code, pre { font-family: ui-monospace,SFMono-Regular,Menlo,monospace; font-size:12.5px; }
code.cmd { display:block; background:#f1f3f7; padding:6px 8px; border-radius:5px; margin-top:6px;
           white-space:pre-wrap; word-break:break-all; }
details { margin-top:6px; font-size:12.5px; } details pre { max-height:240px; overflow:auto; background:#f7f8fa;
           padding:8px; }
table { border-collapse:collapse; margin:8px 0 14px; font-size:13.5px; }
th, td { border-bottom:1px solid var(--line); padding:5px 12px; text-align:left; }
th { background:#f1f3f7; }
.error { border-left:4px solid var(--bad); background:#fef3f2; padding:10px 14px; white-space:pre-wrap; }
.summary { display:grid; grid-template-columns:repeat(auto-fill,minmax(230px,1fr)); gap:4px 14px; margin:8px 0 14px;
           font-size:13px; }
.summary div { display:flex; justify-content:space-between; gap:8px; border-bottom:1px solid var(--line);
               padding:3px 0; }
.summary span { color:var(--muted); overflow-wrap:anywhere; } .summary b { font-weight:600; text-align:right; }
.ok { color:var(--good); font-weight:600; } .failed { color:var(--bad); font-weight:600; }
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v)[:200]
    return str(v)


def _html_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p class='meta'>(empty)</p>"
    keys = list(rows[0])
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(k, '')))}</td>" for k in keys) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(rows: list[dict[str, Any]]) -> str:
    return markdown_table([{k: _fmt(v) for k, v in r.items()} for r in rows])


def _scalar_summary(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"quantity": k, "value": v} for k, v in summary.items() if not isinstance(v, (dict, list))]


def write_report(
    sections: list[LabSection], out: Path, *, title: str = "genlab report", subtitle: str = ""
) -> tuple[Path, Path]:
    """Write ``out/index.html`` (images embedded) and ``out/report.md`` (images under ``out/figures``)."""
    out.mkdir(parents=True, exist_ok=True)
    front = [{"lab": s.short_title, **m} for s in sections for m in s.metrics]
    nav = "".join(
        f"<a href='#{s.name}' title='{html.escape(s.title)}'>{html.escape(s.short_title)}</a>" for s in sections
    )
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'><style>{CSS}</style></head><body>",
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header><nav>{nav}</nav><main>",
    ]
    md = [f"# {title}\n", f"{subtitle}\n" if subtitle else ""]
    status = [
        {
            "lab": s.short_title,
            "status": "failed" if s.error else "ok",
            "runs": len(s.runs),
            "figures": sum(len(r.figures) for r in s.runs),
            "seconds": round(s.seconds, 1),
        }
        for s in sections
    ]
    parts.append("<section class='lab'><h2>Overview</h2>" + _html_table(status))
    md += ["## Overview\n", _md_table(status)]
    if front:
        parts.append("<h3>Key numbers against the reference reports</h3>" + _html_table(front))
        md += ["\n### Key numbers against the reference reports\n", _md_table(front)]
    parts.append("</section>")

    for s in sections:
        state = "<span class='failed'>failed</span>" if s.error else "<span class='ok'>ok</span>"
        parts.append(
            f"<section class='lab' id='{s.name}'><h2>{html.escape(s.title)}</h2>"
            f"<p class='meta'>{state} &middot; {s.seconds:.0f} s &middot; lab <code>{s.name}</code></p>"
        )
        md.append(f"\n## {s.title}\n\n_{'failed' if s.error else 'ok'}, {s.seconds:.0f} s_\n")
        if s.error:
            parts.append(f"<div class='error'>{html.escape(s.error)}</div>")
            md.append(f"\n```\n{s.error}\n```\n")
        for r in s.runs:
            rel = f"{s.name}/{r.run.path.name}"
            parts.append(
                f"<h3>Run {html.escape(rel)}</h3><p class='meta'>folder: "
                f"<code>{html.escape(str(r.run.path))}</code></p>"
            )
            md.append(f"\n### Run {rel}\n")
            scalars = _scalar_summary(r.summary)
            if scalars:
                cells = "".join(
                    f"<div><span>{html.escape(str(x['quantity']))}</span><b>{html.escape(_fmt(x['value']))}</b></div>"
                    for x in scalars
                )
                parts.append(f"<div class='summary'>{cells}</div>")
                md.append(_md_table(scalars))
            for t in r.tables:
                cap = html.escape(t.caption or t.name)
                parts.append(f"<p><b>{cap}</b></p>" + _html_table(t.rows))
                md += [f"\n**{t.caption or t.name}**\n\n", _md_table(t.rows)]
            if r.figures:
                parts.append("<div class='grid'>")
            for fig in r.figures:
                data = base64.b64encode(fig.path.read_bytes()).decode()
                copy = out / "figures" / s.name / r.run.path.name / fig.path.name
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(fig.path, copy)
                cap = html.escape(fig.caption or fig.name)
                cmd = f"<code class='cmd'>$ {html.escape(fig.command)}</code>" if fig.command else ""
                nums = ""
                if fig.data is not None:
                    text = json.dumps(fig.data, indent=1)
                    text = text if len(text) < 6000 else text[:6000] + "\n... (truncated; see the run folder)"
                    nums = (
                        f"<details><summary>numbers behind the figure</summary><pre>{html.escape(text)}</pre></details>"
                    )
                parts.append(
                    f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(fig.name)}'>"
                    f"<figcaption><b>{html.escape(fig.name)}</b>: {cap}{cmd}{nums}</figcaption></figure>"
                )
                md.append(
                    f"\n![{fig.name}]({copy.relative_to(out).as_posix()})\n\n*{fig.caption or fig.name}*"
                    + (f"\n\n`{fig.command}`" if fig.command else "")
                    + "\n"
                )
            if r.figures:
                parts.append("</div>")
        parts.append("</section>")
    parts.append(f"<p class='meta'>Made by genlab on {time.strftime('%Y-%m-%d %H:%M')}.</p></main></body></html>")
    html_path = atomic_write_bytes(out / "index.html", "".join(parts).encode("utf-8"))
    md_path = atomic_write_text(out / "report.md", "\n".join(md))
    return html_path, md_path


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
    """Run (or reuse) every lab's demo, write the report, and return the sections."""
    specs = specs if specs is not None else all_labs()
    names = {s.name: s for s in specs}
    if labs:
        for lab in labs:
            choose("lab", lab, names)
        specs = [names[lab] for lab in labs]
    root = out / "runs"
    sections = []
    bar = tqdm(specs, desc="labs", disable=quiet, dynamic_ncols=True)
    for spec in bar:
        bar.set_postfix_str(spec.name)
        sections.append(run_lab(spec, root, quick=quick, device=device, quiet=quiet, reuse=reuse))
    bar.close()
    kind = "quick" if quick else "full"
    write_report(
        sections,
        out,
        subtitle=f"{kind} configuration of {len(sections)} labs, "
        f"{sum(s.seconds for s in sections) / 60:.1f} minutes"
        + (" (finished runs reused, figures redrawn)" if reuse else ""),
    )
    return sections


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="run every lab's demo (or reuse its runs) and write one HTML report")
    p.add_argument("--quick", action="store_true", help="the quick configurations (minutes on a laptop CPU)")
    p.add_argument("--labs", default=None, help="comma-separated labs to include (default: all)")
    p.add_argument("--out", default="report", help="output folder (default: report); its runs/ holds the runs")
    p.add_argument("--reuse", action="store_true", help="reuse finished runs in OUT/runs, only redraw figures")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--quiet", action="store_true", help="hide progress bars")
    p.set_defaults(func=_cmd_report)


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
    sections = make_report(out=out, labs=labs, quick=args.quick, device=args.device, quiet=args.quiet, reuse=args.reuse)
    failed = [s.name for s in sections if s.error]
    total = sum(s.seconds for s in sections)
    print(f"report: {out / 'index.html'} ({len(sections)} labs, {total:.0f} s)")
    if failed:
        print(f"genlab: error: lab(s) failed: {', '.join(failed)}; see their sections in the report")
        return 1
    return 0
