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
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab.errors import ConfigError, NothingToDo, RunError
from genlab.io import atomic_torch_save, atomic_write_json, atomic_write_text, json_default

DEFAULT_RUNS_ROOT = Path("runs")
WEIGHTS_FILE = "model.safetensors"  # an exported run's weights (genlab <lab> export): no pickle


# ------------------------------------------------------------------------------------------ seeding and RNG


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every global RNG state, for a checkpoint (so that a resumed run draws the same numbers)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    # plain lists and tensors only, so a checkpoint loads with torch.load(weights_only=True)
    state = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, cached))
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
    if name == "cuda" and world_size() > 1:
        return torch.device("cuda", local_rank())  # under torchrun, one GPU per process
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
    def create(
        cls, lab: str, config: Any, *, name: str | None = None, root: str | Path | None = None, resume: bool = False
    ) -> Run:
        """Make ``root/lab/name`` and write ``config.json``.

        An existing folder with a checkpoint is only reused with ``resume=True`` (it is never overwritten
        silently); its saved config must then match the new one.
        """
        if resume and not name:
            raise RunError("--resume needs the --name of the run to continue (its folder is RUN_DIR/<lab>/NAME)")
        if not name and world_size() > 1:
            raise RunError("under torchrun give the run a --name: every process must open the same run folder")
        name = name or default_run_name()
        if not _NAME_OK.match(name):
            raise ConfigError(f"bad run name {name!r}; use letters, digits, '.', '_' and '-'")
        run = cls(Path(root or DEFAULT_RUNS_ROOT) / lab / name)
        cfg = dict(_as_dict(config))
        if resume and not run.config_path.exists():
            raise RunError(
                f"nothing to resume: {str(run.path)!r} holds no run; check --name and --run-dir, or drop "
                f"--resume to start a new run"
            )
        if resume and run.last_checkpoint == run.weights_file:
            raise RunError(
                f"{str(run.path)!r} is an exported folder (weights only, no optimiser state) and cannot be resumed; "
                f"resume the run it was exported from, or train with --name NEW"
            )
        if resume and run.finished:
            step = json.loads(run.progress_path.read_text()).get("step")
            raise NothingToDo(
                f"run {str(run.path)!r} already finished training (step {step}); nothing to resume, "
                f"nothing changed. Use it with the lab's verbs (--run), or train with --name NEW"
            )
        if run.config_path.exists():
            if run.last_checkpoint.exists() and not resume:
                raise RunError(
                    f"run folder {str(run.path)!r} already holds a trained run; pass --resume to "
                    f"continue it or --name NEW for a fresh one"
                )
            old = json.loads(run.config_path.read_text())
            if resume and old.get("config") != json.loads(json.dumps(cfg, default=json_default)):
                changed = sorted(
                    k for k in set(old.get("config", {})) | set(cfg) if old.get("config", {}).get(k) != cfg.get(k)
                )
                raise RunError(
                    f"cannot resume {str(run.path)!r} with a different config (changed: "
                    f"{', '.join(changed)}); drop those --set options or use --name NEW"
                )
        run.path.mkdir(parents=True, exist_ok=True)
        if is_main_process():
            atomic_write_json(
                run.config_path, {"lab": lab, "config": cfg, "genlab_version": _version(), "torch": torch.__version__}
            )
        return run

    @classmethod
    def open(cls, path: str | Path, lab: str | None = None) -> Run:
        """Open an existing run folder (for ``sample``, ``figures``... ``--run DIR``).

        With ``lab``, a run made by another lab is a one-line error naming the lab it belongs to.
        """
        run = cls(path)
        if not run.config_path.is_file():
            raise RunError(
                f"{str(path)!r} is not a run folder (no config.json); train one first or pass the "
                f"folder a 'train' command printed"
            )
        if lab is not None and run.lab != lab:
            raise RunError(
                f"{str(path)!r} is a {run.lab} run, not a {lab} run; use 'genlab {run.lab} ...' "
                f"with it, or pass a {lab} run folder"
            )
        return run

    def child(self, stage: str, config: Any, **extra: Any) -> Run:
        """The sub-run ``<run>/stages/<stage>`` in which one part of a lab trains (own checkpoint, metrics).

        Its ``config.json`` records the parent's lab, the stage, ``config`` and any ``extra`` values (e.g. the
        loop settings of that part), so :attr:`finished` and :meth:`same_config` work on it as on any run.
        """
        sub = Run(self.path / "stages" / stage)
        sub.path.mkdir(parents=True, exist_ok=True)
        body = {"lab": self.lab, "stage": stage, "config": _as_dict(config)}
        body.update({k: _as_dict(v) for k, v in extra.items()})
        if is_main_process():
            atomic_write_json(sub.config_path, body)
        return sub

    def command(self, verb: str, *args: str, **flags: Any) -> str:
        """The shell command that (re)makes an output of this run: ``genlab <lab> <verb> --run DIR ...``.

        ``flags`` become ``--flag value`` (underscores turn into dashes; ``True`` is a bare flag; ``None`` and
        ``False`` are left out); values with spaces or quotes are shell-quoted.
        """
        import shlex

        parts = ["genlab", self.lab, verb, "--run", shlex.quote(str(self.path)), *args]
        for key, value in flags.items():
            if value is None or value is False:
                continue
            parts.append("--" + key.replace("_", "-"))
            if value is not True:
                parts.append(shlex.quote(str(value)))
        return " ".join(parts)

    def same_config(self, config: Any) -> bool:
        """Whether ``config.json`` holds exactly ``config`` (as JSON, so 1e-3 == 0.001)."""
        try:
            saved = self.read_config_file().get("config")
        except (OSError, ValueError, RunError):
            return False
        return saved == json.loads(json.dumps(_as_dict(config), default=json_default))

    # -- progress: the one definition of "finished"
    @property
    def progress_path(self) -> Path:
        return self.path / "progress.json"

    def mark_progress(self, step: int, steps: int, *, done: bool | None = None, reason: str = "") -> None:
        """Record how far training got (written by :func:`genlab.train.fit` beside every checkpoint)."""
        if not is_main_process():
            return
        body = {"step": int(step), "steps": int(steps), "done": bool(step >= steps if done is None else done)}
        if reason:
            body["reason"] = reason
        atomic_write_json(self.progress_path, body)

    @property
    def finished(self) -> bool:
        """True once training reached its last step (or its time budget) and wrote that checkpoint."""
        try:
            body = json.loads(self.progress_path.read_text())
        except (OSError, ValueError):
            return False
        return bool(body.get("done")) and self.last_checkpoint.exists()

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
        """``checkpoints/last.pt``; in an exported folder (``genlab <lab> export``), its ``model.safetensors``."""
        pt = self.checkpoint_dir / "last.pt"
        if not pt.exists() and self.weights_file.is_file():
            return self.weights_file
        return pt

    @property
    def weights_file(self) -> Path:
        """``model.safetensors``: the weights alone (no pickle) of an exported run, read as its checkpoint."""
        return self.path / WEIGHTS_FILE

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
        body = _read_json(self.config_path, "run config")
        if not isinstance(body, dict) or not isinstance(body.get("config", {}), dict):
            raise RunError(
                f"{str(self.config_path)!r} is not a genlab run config (no 'config' table); it is damaged "
                f"or from another program: train the run again"
            )
        return body

    def config(self, cls: type) -> Any:
        """The run's config as an instance of ``cls`` (a damaged or foreign config is a one-line error)."""
        body = self.read_config_file()
        try:
            return cls.from_dict(body.get("config", {}))
        except ConfigError as e:
            raise RunError(
                f"the config of run {str(self.path)!r} does not fit this genlab ({e}); train it again with this version"
            ) from None

    # -- metrics
    def log_metrics(self, record: dict[str, Any]) -> None:
        if not is_main_process():
            return
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record, default=json_default) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        rows = []
        for raw in self.metrics_path.read_bytes().splitlines():
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):  # a line cut by a kill: ignore it
                continue
            if isinstance(row, dict) and isinstance(row.get("step", 0), int):
                rows.append(row)
        return rows

    def truncate_metrics(self, step: int) -> None:
        """Drop logged rows after ``step`` (used on resume so the log matches an uninterrupted run)."""
        rows = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))

    # -- checkpoints
    def save_checkpoint(self, state: dict[str, Any], *, best: bool = False) -> Path | None:
        if not is_main_process():
            return None
        last = self.checkpoint_dir / "last.pt"  # never an exported folder's model.safetensors
        if last.exists():  # keep the previous good one (a hard link: no copy) to fall back on
            with contextlib.suppress(OSError):
                tmp = self.checkpoint_dir / ".prev.pt.tmp"
                tmp.unlink(missing_ok=True)
                os.link(last, tmp)
                os.replace(tmp, self.previous_checkpoint)
        path = atomic_torch_save(state, last)
        if best:
            atomic_torch_save(state, self.best_checkpoint)
        return path

    @property
    def previous_checkpoint(self) -> Path:
        return self.checkpoint_dir / "prev.pt"

    def load_checkpoint(self, which: str = "last", map_location: str | torch.device = "cpu") -> dict[str, Any]:
        path = self.best_checkpoint if which == "best" else self.last_checkpoint
        if which == "best" and not path.exists():
            path = self.last_checkpoint
        if not path.exists():
            raise RunError(f"run {str(self.path)!r} has no checkpoint yet; train it first (or --resume it)")
        if path == self.weights_file:
            return load_weights_file(path, map_location)
        try:
            return load_tensors(path, map_location)
        except RunError as e:
            if path != self.last_checkpoint or not self.previous_checkpoint.exists():
                raise
            print(
                f"genlab: {e}; falling back to the previous checkpoint {str(self.previous_checkpoint)!r}",
                file=sys.stderr,
            )
            return load_tensors(self.previous_checkpoint, map_location)

    @contextlib.contextmanager
    def lock(self):
        """Hold ``<run>/.lock`` while training: a second trainer of the same run is refused in one line; the
        lock of a process that died (a kill -9) is taken over."""
        if not is_main_process():
            yield
            return
        path = self.path / ".lock"
        self.path.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                try:
                    pid = int(path.read_text().split()[0])
                except (OSError, ValueError, IndexError):
                    pid = -1
                if pid > 0 and pid != os.getpid() and _alive(pid):
                    raise RunError(
                        f"run {str(self.path)!r} is being trained by process {pid}; wait for it to "
                        f"finish, or train under another --name"
                    ) from None
                path.unlink(missing_ok=True)  # stale: its owner is gone
        else:
            raise RunError(f"cannot take the lock {str(path)!r}; remove it if no genlab process uses the run")
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        try:
            yield
        finally:
            path.unlink(missing_ok=True)

    # -- outputs
    def figure_path(self, name: str) -> Path:
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        return self.figures_dir / f"{name}.png"

    def save_figure(
        self,
        fig: Any,
        name: str,
        *,
        caption: str | None = None,
        command: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Path:
        """Save a matplotlib figure as PNG (atomically) and close it.

        Beside it, ``<name>.json`` keeps what the report shows with it: the ``caption``, the ``command`` that
        reproduces it, and the ``data`` (numbers) behind it.
        """
        from genlab.plots import save_figure

        if not is_main_process():  # under torchrun rank 0 alone writes
            return self.figures_dir / f"{name}.png"
        path = save_figure(fig, self.figure_path(name))
        meta = {k: v for k, v in (("caption", caption), ("command", command), ("data", data)) if v is not None}
        if meta:
            atomic_write_json(self.figures_dir / f"{name}.json", meta)
        return path

    def save_table(self, rows: Sequence[dict[str, Any]], name: str, *, caption: str | None = None) -> Path:
        """Save a list of dicts as CSV and as a Markdown table."""
        if not is_main_process():  # under torchrun rank 0 alone writes
            return self.tables_dir / f"{name}.csv"
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
        if not self.summary_path.exists():
            return {}
        body = _read_json(self.summary_path, "run summary")
        if not isinstance(body, dict):
            raise RunError(
                f"{str(self.summary_path)!r} is damaged (not a table of numbers); delete it and run the "
                f"lab's 'figures' verb on the run to write it again"
            )
        return body

    def update_summary(self, values: dict[str, Any]) -> dict[str, Any]:
        """Merge ``values`` into ``summary.json``."""
        summary = self.read_summary()
        summary.update(values)
        if is_main_process():
            atomic_write_json(self.summary_path, summary)
        return summary


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_tensors(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)``: tensors, numbers, strings and containers only, so a checkpoint that
    someone handed you cannot run code. A damaged or foreign file is a one-line :class:`RunError`."""

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to unpickle a handed-over file means a damaged file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RunError(
            f"cannot load {str(path)!r} safely ({first[:160]}); it is damaged, from another program "
            f"or an older genlab: train the run again (or --resume from an intact checkpoint)"
        ) from None


def load_weights_file(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """An exported ``model.safetensors`` as a checkpoint dict: ``{"model": state dict, "ema": None, "step": N}``
    (the EMA weights, where the run kept them, were exported as the model's). A damaged file is one line."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device=str(map_location)) as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has keys(), no iteration
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise RunError(
            f"cannot read the weights {str(path)!r} ({first}); the file is damaged: export the run again"
        ) from None
    step = str(meta.get("step", "0"))
    return {"model": state, "ema": None, "step": int(step) if step.isdigit() else 0}


def reuse_or_create(lab: str, config: Any, *, root: str | Path, name: str, reuse: bool = True) -> Run:
    """The run folder ``root/lab/name`` for ``config``, the one way every lab's demo reuses work.

    * ``reuse`` and the folder holds the same config: it is returned as it is, finished (``run.finished``;
      skip training) or cut off (train with ``resume=True`` to continue from its last checkpoint);
    * ``reuse`` and the folder holds a run of another config: that run is kept, moved aside to
      ``<name>.replaced-<time>`` (said on stderr), and a fresh run is created;
    * ``reuse=False``: the caller asked for a fresh run, and the old folder is removed.
    """
    run = Run(Path(root) / lab / name)
    if reuse and run.config_path.exists() and run.same_config(config):
        return run
    if run.path.exists():
        if reuse:
            aside = run.path.with_name(f"{name}.replaced-{default_run_name()}")
            run.path.rename(aside)
            print(f"genlab: {str(run.path)!r} held a run of another config; kept it as {str(aside)!r}", file=sys.stderr)
        else:
            shutil.rmtree(run.path)
    return Run.create(lab, config, name=name, root=root)


def _read_json(path: Path, what: str) -> Any:
    """A JSON file genlab wrote, or a one-line RunError naming it when it is damaged."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunError(f"{what} {str(path)!r} is damaged ({e}); restore it, or train the run again") from None


def _as_dict(config: Any) -> Any:
    return config.to_dict() if hasattr(config, "to_dict") else config


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
    # the package is loaded before any of its modules: read its version without importing it (the package
    # imports genlab.api, which imports this module)
    return sys.modules["genlab"].__version__
