"""The lab contract: every lab is a small package ``genlab.labs.<name>`` of the same shape.

::

    labs/<lab>/__init__.py   SPEC (a LabSpec) and the lab's story in one paragraph
    labs/<lab>/config.py     Config (a TrainConfig) and its presets
    labs/<lab>/core.py       train / evaluate / open a run: library pieces wired together, no plotting
    labs/<lab>/figures.py    one @figure- (or @table-) registered function per figure or table
    labs/<lab>/<part>.py     optional: a self-contained part of a lab with its own outputs (imagediff/compose.py)
    labs/<lab>/cli.py        the lab's verbs (``genlab <lab> <verb>``)

A figure function takes the lab's opened run (whatever its ``core.open_run`` returns: the model, config,
data... of one run) and returns a :class:`Drawn`: the matplotlib figure (or a table's rows), its caption,
the numbers behind it and any headline numbers for ``summary.json``. It saves nothing itself: :func:`draw`
saves the PNG (or CSV + Markdown) atomically under the house style, with the command that reproduces it.
The registry is the one list of a lab's outputs: the ``figures`` verb, the report's order and the lab
contract test all read it.

:func:`all_labs` finds the lab packages by themselves: adding a lab needs no edit anywhere else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.errors import choose
from genlab.runs import Run

# ------------------------------------------------------------------------------------- the figure registry


@dataclass
class Drawn:
    """What a registered function returns: a figure (or a table's rows) and what the report shows with it."""

    fig: Any = None  # a matplotlib Figure (figures)
    caption: str = ""
    data: Any = None  # the numbers behind the figure, saved beside it as JSON
    rows: list[dict[str, Any]] | None = None  # a table's rows (tables; a figure with rows saves both)
    summary: dict[str, Any] = field(default_factory=dict)  # merged into the run's summary.json


@dataclass(frozen=True)
class FigureSpec:
    lab: str
    name: str  # the file stem under figures/ (or tables/)
    fn: Callable[..., Drawn]
    kind: str  # "figure" or "table"
    when: Callable[[Any], bool] | None  # does it apply to this opened run? (None: always)
    verb: str  # the verb whose command reproduces it
    order: int

    def applies(self, opened: Any) -> bool:
        return self.when is None or bool(self.when(opened))


_REGISTRY: dict[str, list[FigureSpec]] = {}


def _lab_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) < 3 or parts[:2] != ["genlab", "labs"]:
        raise ValueError(f"figures are registered from genlab.labs.<lab> modules, not {module!r}")
    return parts[2]


def figure(
    name: str, *, when: Callable[[Any], bool] | None = None, verb: str = "figures", kind: str = "figure"
) -> Callable[[Callable[..., Drawn]], Callable[..., Drawn]]:
    """Register a figure function of the calling lab under ``name`` (its file stem), in definition order."""

    def deco(fn: Callable[..., Drawn]) -> Callable[..., Drawn]:
        lab = _lab_of(fn.__module__)
        specs = _REGISTRY.setdefault(lab, [])
        if any(s.name == name and s.kind == kind for s in specs):  # a figure and its table may share a stem
            raise ValueError(f"lab {lab!r} registers the {kind} {name!r} twice")
        specs.append(FigureSpec(lab, name, fn, kind, when, verb, len(specs)))
        fn.spec = specs[-1]  # type: ignore[attr-defined]
        return fn

    return deco


def table(name: str, *, when: Callable[[Any], bool] | None = None, verb: str = "figures"):
    """Register a table function (it returns ``Drawn(rows=..., caption=...)``)."""
    return figure(name, when=when, verb=verb, kind="table")


def registered(lab: str) -> list[FigureSpec]:
    """Every output ``lab`` registers, in the order its figures module defines them."""
    if lab not in _REGISTRY and lab in _lab_packages():
        get_lab(lab)  # importing the lab imports its figures module, which registers them
    return list(_REGISTRY.get(lab, []))


def save_drawn(run: Run, name: str, out: Drawn, *, kind: str = "figure", command: str | None = None) -> Path:
    """Write one output into ``run``: ``figures/<name>.png`` (+ ``.json``) or ``tables/<name>.csv|md``."""
    if out.summary:
        run.update_summary(out.summary)
    if kind == "table":
        return run.save_table(out.rows or [], name, caption=out.caption or None)
    if out.fig is None:
        raise ValueError(f"figure function {name!r} returned no figure")
    if out.rows is not None:  # a figure drawn from a table: the table is saved beside it, under the same name
        run.save_table(out.rows, name, caption=out.caption or None)
    return run.save_figure(out.fig, name, caption=out.caption or None, command=command, data=out.data)


def draw(
    fn: Callable[..., Drawn] | FigureSpec, opened: Any, run: Run, *, command: str | None = None, **kwargs: Any
) -> Path:
    """Call one registered function on an opened run (house style on) and save what it returns.

    ``kwargs`` go to the function (e.g. a verb's ``--point``); ``command`` defaults to the spec's verb on
    this run, so a verb that passes its own flags should pass the matching command too.
    """
    from genlab.plots import style

    spec = fn if isinstance(fn, FigureSpec) else fn.spec  # type: ignore[attr-defined]
    with style():
        out = spec.fn(opened, **kwargs)
    return save_drawn(run, spec.name, out, kind=spec.kind, command=command or run.command(spec.verb))


def draw_all(
    lab: str, opened: Any, run: Run, *, only: Iterable[str] | None = None, verb: str | None = None
) -> list[Path]:
    """Every registered output of ``lab`` that applies to ``opened`` (optionally only the names in ``only``,
    or only those of ``verb``), in registry order."""
    wanted = set(only) if only is not None else None
    if wanted is not None:
        for name in sorted(wanted):
            choose(f"output of lab {lab!r}", name, sorted({s.name for s in registered(lab)}))
    run.read_summary()  # a damaged summary.json is an error before any output is redrawn, not after some
    paths = []
    for spec in registered(lab):
        if wanted is not None and spec.name not in wanted:
            continue
        if verb is not None and spec.verb != verb:
            continue
        if spec.applies(opened):
            paths.append(draw(spec, opened, run))
    return paths


def report_order(lab: str) -> dict[str, int]:
    """``{output name: position}`` for the report: registry order."""
    return {s.name: s.order for s in registered(lab)}


# ------------------------------------------------------------------------------------------ the lab spec


@dataclass(frozen=True)
class LabSpec:
    """What a lab tells the CLI, the report and the contract test about itself."""

    name: str
    title: str  # heading in the report and in ``genlab --help``
    order: int  # place in ``genlab --help`` and in the report
    Config: type  # its TrainConfig subclass
    presets: Mapping[str, Any]  # named starting configs
    register: Callable[[Any], None]  # adds ``genlab <lab> <verb>`` sub-commands to argparse sub-parsers
    demo: Callable[..., list[Run]]  # demo(root, *, quick, device, quiet, reuse) -> the runs the report shows
    # the report's front table rows: metric, value, reference; optional "same" (is the data and model the same as
    # the reference's? e.g. "no: RT snippets, not IMDB") and "reference_from" ("full run", the default, or "any run"
    # for a check or a target that holds for a run of any size)
    key_metrics: Callable[[list[Run]], list[dict[str, Any]]] | None = None
    story: str = ""  # one paragraph: what the lab shows
    # seconds the report's demo takes, {"quick": ..., "full": ...} (measured, or estimated where the README says
    # so): the report's "about N min left"
    expected_seconds: Mapping[str, float] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)  # summary.json key -> label with unit, for the report
    same_quick_and_full: bool = False  # the demo trains the same runs in quick and full mode

    @property
    def figures(self) -> list[FigureSpec]:
        return registered(self.name)


def _lab_packages() -> list[str]:
    import genlab.labs as pkg

    return sorted(
        info.name for info in pkgutil.iter_modules(pkg.__path__) if info.ispkg and not info.name.startswith("_")
    )


_LABS: dict[str, LabSpec] = {}


def get_lab(name: str) -> LabSpec:
    """The spec of lab ``name``; an unknown name is a one-line error listing the labs."""
    if name not in _LABS:
        choose("lab", name, _lab_packages())
        spec = importlib.import_module(f"genlab.labs.{name}").SPEC
        if spec.name != name:
            raise ValueError(f"package genlab.labs.{name} declares SPEC.name = {spec.name!r}")
        _LABS[name] = spec
    return _LABS[name]


def all_labs() -> list[LabSpec]:
    """Every lab package, in their ``order``."""
    return sorted((get_lab(n) for n in _lab_packages()), key=lambda s: (s.order, s.name))
