"""Weights to share: ``genlab <lab> export --run DIR --out DIR``, one implementation for every lab.

An exported folder is a minimal run folder that holds no pickle::

    OUT/
        config.json          the run's config (plus where and from which step it was exported)
        model.safetensors    the weights the lab samples with (the EMA weights where the run kept them)
        progress.json, summary.json, tokenizer.json | chars.json | vocab.json ...   the run's JSON records
        stages/<part>/...    the same for each part trained in a child run (an autoencoder, a judge...)

:class:`~genlab.runs.Run` reads ``model.safetensors`` as the folder's checkpoint, so :func:`genlab.load` and
every ``--run`` verb of the lab open an exported folder as they open the run it came from. Metrics, figures,
tables, optimiser states and earlier checkpoints stay behind.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from genlab.errors import ConfigError
from genlab.io import atomic_write_json
from genlab.runs import WEIGHTS_FILE, Run

LEFT_BEHIND = ("metrics.jsonl", ".lock")  # records an exported model does not need (besides checkpoints/, figures/)


def weights_of(state: dict[str, Any], path: Any) -> tuple[dict[str, torch.Tensor], bool]:
    """The state dict a lab's opener loads from a checkpoint (:func:`genlab.train.load_weights`: the EMA weights
    when the run kept them) and whether they are the EMA's."""
    from genlab.train import training_state

    state = training_state(state, path)
    ema = state.get("ema")
    if isinstance(ema, dict):
        return {k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")}, True
    return state["model"], False


def _save_weights(weights: dict[str, Any], path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    bad = [k for k, v in weights.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ConfigError(f"the checkpoint of {str(path.parent)!r} holds non-tensor weights ({', '.join(bad[:3])})")
    # tied weights (a GPT's embedding and output layer) share storage, which safetensors refuses: one copy each
    save_file({k: v.detach().cpu().contiguous().clone() for k, v in weights.items()}, str(path), metadata)


def _run_folders(run: Run) -> list[Path]:
    """The run and every child run under it (``stages/**``), parents first."""
    subs = sorted(p.parent for p in run.path.glob("stages/**/config.json"))
    return [run.path, *subs]


def _check_out(run: Run, out: Path) -> None:
    src, dst = run.path.resolve(), out.resolve()
    if dst == src or src in dst.parents or dst in src.parents:
        raise ConfigError(f"--out {str(out)!r} overlaps the run {str(run.path)!r}; export to a folder beside it")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {str(out)!r} already exists and is not an empty folder; choose a new folder")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {str(out)!r}: folder {str(out.parent)!r} does not exist; create it first")


def export_run(run: str | Path | Run, out: str | Path, *, lab: str | None = None) -> Path:
    """Write ``run`` (a run folder of ``lab``) as a shareable folder ``out``; returns ``out``.

    The folder is built beside ``out`` and moved into place when complete, so a failed export leaves nothing.
    """
    run = Run.open(getattr(run, "path", run), lab)
    run.read_config_file()  # a damaged config.json is an error before anything is written
    out = Path(out)
    _check_out(run, out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        root_info: dict[str, Any] = {}
        for folder in _run_folders(run):
            sub, dst = Run(folder), tmp / folder.relative_to(run.path)
            dst.mkdir(parents=True, exist_ok=True)
            for f in sorted(folder.glob("*.json")):
                shutil.copyfile(f, dst / f.name)
            if not sub.last_checkpoint.exists():
                continue
            state = sub.load_checkpoint(map_location="cpu")
            weights, ema = weights_of(state, sub.last_checkpoint)
            step = int(state.get("step", 0) or 0)
            meta = {"format": "pt", "lab": run.lab, "step": str(step), "ema": str(ema).lower()}
            _save_weights(weights, dst / WEIGHTS_FILE, meta)
            if folder == run.path:
                root_info = {"step": step, "ema": ema, "tensors": len(weights)}
        if not root_info:
            raise ConfigError(f"run {str(run.path)!r} has no checkpoint yet; train it first, then export it")
        body = run.read_config_file()
        body["exported"] = {"from": str(run.path), **root_info}
        atomic_write_json(tmp / "config.json", body)
        if out.exists():
            out.rmdir()  # empty (checked above)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def pickle_free(folder: str | Path) -> list[str]:
    """What in ``folder`` could hold a pickle: any file that is neither JSON nor a safetensors file whose header
    parses (an empty list: none)."""
    found = []
    for p in sorted(Path(folder).rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(folder).as_posix()
        if p.suffix == ".json":
            try:
                json.loads(p.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, ValueError):
                found.append(f"{rel} (not JSON)")
        elif p.suffix == ".safetensors":
            if not _header_parses(p):
                found.append(f"{rel} (not a safetensors file)")
        else:
            found.append(f"{rel} (neither JSON nor safetensors)")
    return found


def _header_parses(path: Path) -> bool:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            f.metadata()
            return bool(list(f.keys()))
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return False


# ------------------------------------------------------------------------------------------------- the verb


def add_export_verb(lab_parser: argparse.ArgumentParser, lab: str) -> None:
    """``genlab <lab> export --run DIR --out DIR`` on a lab's parser (the same verb for every lab)."""
    from genlab.verbs import add_run_arg

    verbs = next(a for a in lab_parser._actions if isinstance(a, argparse._SubParsersAction))
    p = verbs.add_parser(
        "export",
        help="write the run's weights (model.safetensors), config and tokenizer files to share, no pickle",
        description=(
            "Write a trained run as a folder to share: model.safetensors (the weights the lab samples with, "
            "EMA where kept), config.json and the tokenizer or vocabulary files, for every trained part. "
            "genlab.load(OUT) and every --run verb of the lab open that folder. No pickle in it."
        ),
    )
    add_run_arg(p)
    p.add_argument("--out", default=None, metavar="DIR", help="a new (or empty) folder to write (required)")
    p.set_defaults(func=lambda args: cmd_export(args, lab))


def cmd_export(args: argparse.Namespace, lab: str) -> int:
    run = Run.open(args.run, lab)  # a missing or foreign --run is named before a missing --out
    if not args.out:
        raise ConfigError(f"export needs --out DIR, a new folder to write, e.g. --out {run.path.name}-export")
    out = export_run(run, args.out, lab=lab)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    step = json.loads((out / "config.json").read_text())["exported"]["step"]
    shown = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"
    print(f"exported {str(run.path)!r} at step {step} -> {str(out)!r} ({shown}, no pickle)")
    if not run.finished:
        print(f"note: {str(run.path)!r} has not finished training; the export holds its last checkpoint")
    print(f"open it with: genlab.load({str(out)!r}), or any 'genlab {lab} <verb> --run {out}'")
    return 0
