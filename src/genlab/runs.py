"""Run folders, seeding, device choice, metrics, atomic writes and checkpoints.

A run folder holds everything one training run produced::

    runs/<lab>/<name>/
        config.json          the full config the run used
        metrics.jsonl        one JSON object per logged step
        checkpoints/last.pt  model, optimisers, scheduler, EMA, RNG states and step (written atomically)
        figures/*.png        every figure, with the numbers behind it as .csv/.json beside it
        tables/*.csv|md      tables
        summary.json         headline numbers (merged by each command that adds some)
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import random
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab.errors import ConfigError, RunError

DEFAULT_RUNS_ROOT = Path("runs")


# ----------------------------------------------------------------------------------------------- atomic files

def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through a temporary file and ``os.replace``: a crash never leaves half a checkpoint."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ------------------------------------------------------------------------------------------ seeding and RNG

def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every global RNG state, for a checkpoint (so that a resumed run draws the same numbers)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -------------------------------------------------------------------------------------------------- devices

DEVICES = ("auto", "cpu", "cuda", "mps")


def choose_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; asking for a missing device is an error."""
    if name not in DEVICES and not name.startswith("cuda:"):
        raise ConfigError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for but CUDA is not available here; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' asked for but Apple MPS is not available here; use --device cpu or auto")
    return torch.device(name)


@contextlib.contextmanager
def cpu_threads(n: int):
    """Run the block with ``n`` torch CPU threads (0 = leave as is), then restore the previous count.

    The labs' small networks (2D MLPs, recurrent cells over short batches) spend more time synchronising
    threads than computing: on a busy 2-core machine one thread trained them 7-17x faster than two.
    """
    old = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# ------------------------------------------------------------------------------ distributed (torchrun) seam

def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """Only rank 0 writes files and shows progress bars under torchrun."""
    return rank() == 0


# ------------------------------------------------------------------------------------------------ run folder

_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def default_run_name() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


class Run:
    """A run folder: config, metrics, checkpoints, figures, tables and summary of one training run."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- creation / opening
    @classmethod
    def create(cls, lab: str, config: Any, *, name: str | None = None, root: str | Path | None = None,
               resume: bool = False) -> Run:
        """Make ``root/lab/name`` and write ``config.json``.

        An existing folder with a checkpoint is only reused with ``resume=True`` (it is never overwritten
        silently); its saved config must then match the new one.
        """
        name = name or default_run_name()
        if not _NAME_OK.match(name):
            raise ConfigError(f"bad run name {name!r}; use letters, digits, '.', '_' and '-'")
        run = cls(Path(root or DEFAULT_RUNS_ROOT) / lab / name)
        cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        if run.config_path.exists():
            if run.last_checkpoint.exists() and not resume:
                raise RunError(f"run folder {str(run.path)!r} already holds a trained run; pass --resume to "
                               f"continue it or --name NEW for a fresh one")
            old = json.loads(run.config_path.read_text())
            if resume and old.get("config") != json.loads(json.dumps(cfg, default=_json_default)):
                changed = sorted(k for k in set(old.get("config", {})) | set(cfg)
                                 if old.get("config", {}).get(k) != cfg.get(k))
                raise RunError(f"cannot resume {str(run.path)!r} with a different config (changed: "
                               f"{', '.join(changed)}); drop those --set options or use --name NEW")
        run.path.mkdir(parents=True, exist_ok=True)
        if is_main_process():
            atomic_write_json(run.config_path, {"lab": lab, "config": cfg,
                                                "genlab_version": _version(), "torch": torch.__version__})
        return run

    @classmethod
    def open(cls, path: str | Path) -> Run:
        """Open an existing run folder (for ``sample``, ``figures``... ``--run DIR``)."""
        run = cls(path)
        if not run.config_path.is_file():
            raise RunError(f"{str(path)!r} is not a run folder (no config.json); train one first or pass the "
                           f"folder a 'train' command printed")
        return run

    # -- paths
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoint_dir / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoint_dir / "best.pt"

    @property
    def figures_dir(self) -> Path:
        return self.path / "figures"

    @property
    def tables_dir(self) -> Path:
        return self.path / "tables"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def lab(self) -> str:
        return self.read_config_file().get("lab", self.path.parent.name)

    def read_config_file(self) -> dict[str, Any]:
        return json.loads(self.config_path.read_text())

    def config(self, cls: type) -> Any:
        """The run's config as an instance of ``cls``."""
        return cls.from_dict(self.read_config_file()["config"])

    # -- metrics
    def log_metrics(self, record: dict[str, Any]) -> None:
        if not is_main_process():
            return
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record, default=_json_default) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        rows = []
        for line in self.metrics_path.read_text().splitlines():
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a kill: ignore it
                    continue
        return rows

    def truncate_metrics(self, step: int) -> None:
        """Drop logged rows after ``step`` (used on resume so the log matches an uninterrupted run)."""
        rows = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))

    # -- checkpoints
    def save_checkpoint(self, state: dict[str, Any], *, best: bool = False) -> Path | None:
        if not is_main_process():
            return None
        path = atomic_torch_save(state, self.last_checkpoint)
        if best:
            atomic_torch_save(state, self.best_checkpoint)
        return path

    def load_checkpoint(self, which: str = "last", map_location: str | torch.device = "cpu") -> dict[str, Any]:
        path = self.best_checkpoint if which == "best" else self.last_checkpoint
        if which == "best" and not path.exists():
            path = self.last_checkpoint
        if not path.exists():
            raise RunError(f"run {str(self.path)!r} has no checkpoint yet; train it first (or --resume it)")
        return torch.load(path, map_location=map_location, weights_only=False)

    # -- outputs
    def figure_path(self, name: str) -> Path:
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        return self.figures_dir / f"{name}.png"

    def save_figure(self, fig: Any, name: str, *, caption: str | None = None, command: str | None = None,
                    data: dict[str, Any] | None = None) -> Path:
        """Save a matplotlib figure as PNG (atomically) and close it.

        Beside it, ``<name>.json`` keeps what the report shows with it: the ``caption``, the ``command`` that
        reproduces it, and the ``data`` (numbers) behind it.
        """
        from genlab.plots import save_figure

        path = save_figure(fig, self.figure_path(name))
        meta = {k: v for k, v in (("caption", caption), ("command", command), ("data", data)) if v is not None}
        if meta:
            atomic_write_json(self.figures_dir / f"{name}.json", meta)
        return path

    def save_table(self, rows: Sequence[dict[str, Any]], name: str, *, caption: str | None = None) -> Path:
        """Save a list of dicts as CSV and as a Markdown table."""
        self.tables_dir.mkdir(parents=True, exist_ok=True)
        header = list(rows[0].keys()) if rows else []
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
        csv_path = atomic_write_text(self.tables_dir / f"{name}.csv", buf.getvalue())
        md = markdown_table(rows)
        if caption:
            md = f"{caption}\n\n{md}"
        atomic_write_text(self.tables_dir / f"{name}.md", md)
        return csv_path

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.summary_path.read_text()) if self.summary_path.exists() else {}

    def update_summary(self, values: dict[str, Any]) -> dict[str, Any]:
        """Merge ``values`` into ``summary.json``."""
        summary = self.read_summary()
        summary.update(values)
        if is_main_process():
            atomic_write_json(self.summary_path, summary)
        return summary


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "(empty)\n"
    header = list(rows[0].keys())

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in header) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def find_runs(root: str | Path = DEFAULT_RUNS_ROOT, labs: Iterable[str] | None = None) -> list[Run]:
    """Every run folder under ``root`` (optionally only those of ``labs``), oldest first."""
    root = Path(root)
    found = []
    for cfg in sorted(root.glob("*/*/config.json")):
        if labs is None or cfg.parent.parent.name in set(labs):
            found.append(Run(cfg.parent))
    return sorted(found, key=lambda r: r.config_path.stat().st_mtime)


def _version() -> str:
    from genlab import __version__

    return __version__
