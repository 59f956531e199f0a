"""What every lab's verbs share: the common options, config from the command line, opening ``--run``.

Lab ``cli.py`` modules build their ``genlab <lab> <verb>`` parsers from these pieces; :mod:`genlab.cli`
only assembles the labs and turns errors into one line. A verb handler is ``cmd_<verb>(args) -> int``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shutil
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from genlab.config import INT_MAX, INT_MIN, Config, build_config
from genlab.errors import ConfigError
from genlab.runs import Run, choose_device, seed_everything


def add_common_args(p: argparse.ArgumentParser) -> None:
    """Options every verb takes."""
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default: auto)")
    p.add_argument("--quiet", action="store_true", help="hide progress bars")
    seed = at_least(INT_MIN, INT_MAX)  # torch takes 64-bit seeds
    p.add_argument("--seed", type=seed, default=None, help="random seed (overrides the config's)")


def add_train_args(p: argparse.ArgumentParser, presets: Sequence[str] = (), config: type[Config] | None = None) -> None:
    """Options of a ``train`` verb: config sources, run folder, resume. With ``config`` (the lab's Config
    class), ``--help`` ends with every config key: its type, default and meaning (:meth:`Config.help_table`)."""
    add_common_args(p)
    if config is not None:
        width = max(shutil.get_terminal_size().columns - 2, 40)  # as argparse's own formatter
        p.formatter_class = argparse.RawDescriptionHelpFormatter  # keeps the table's lines as they are
        if p.description:  # raw from here on: wrap a plain description the way argparse would have
            p.description = "\n\n".join(textwrap.fill(" ".join(t.split()), width) for t in p.description.split("\n\n"))
        note = "defaults before any --preset" if presets else "defaults"
        table = config.help_table(width)
        p.epilog = "\n\n".join(filter(None, [p.epilog, f"config keys (--set KEY=VALUE; {note}):\n{table}"]))
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (repeatable), e.g. --set lr=3e-4",
    )
    p.add_argument("--config", default=None, metavar="FILE", help="JSON or TOML file of config values")
    if presets:
        p.add_argument("--preset", default=None, choices=list(presets), help="a named starting config")
    p.add_argument("--run-dir", default="runs", metavar="DIR", help="root folder of runs (default: runs)")
    p.add_argument("--name", default=None, help="run name (default: a timestamp)")
    p.add_argument("--resume", action="store_true", help="continue the run --name from its last checkpoint")
    p.add_argument("--show-config", action="store_true", help="print the resolved config and exit")
    if config is None or "log" in {f.name for f in dataclasses.fields(config)}:
        p.add_argument(
            "--log",
            default=None,
            choices=("jsonl", "tensorboard"),
            help="tensorboard: also write TensorBoard event files in <run>/tensorboard (same as --set log=...)",
        )


def add_run_arg(p: argparse.ArgumentParser, required: bool = True) -> None:
    """``--run DIR``: the trained run a verb works on."""
    p.add_argument("--run", required=required, metavar="DIR", help="a run folder made by 'train'")
    add_common_args(p)


def add_lab_parser(sub: argparse._SubParsersAction, name: str, help: str, description: str | None = None):
    """``genlab <name>``: a lab's parser; returns the sub-parsers its verbs are added to."""
    p = sub.add_parser(
        name, help=help, description=description or help, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    verbs = p.add_subparsers(dest="verb", metavar="<verb>", parser_class=type(p))
    verbs.required = True
    return verbs


def config_from_args(cls: type[Config], args: argparse.Namespace, presets: Mapping[str, Config] | None = None) -> Any:
    """Defaults -> ``--preset`` -> ``--config FILE`` -> ``--set`` pairs -> ``--seed``."""
    base = None
    preset = getattr(args, "preset", None)
    if preset:
        base = (presets or {})[preset]
    overrides = list(getattr(args, "overrides", []) or [])
    if getattr(args, "seed", None) is not None:
        overrides.append(f"seed={args.seed}")
    if getattr(args, "log", None) is not None:
        overrides.append(f"log={args.log}")
    cfg = build_config(cls, base=base, file=getattr(args, "config", None), overrides=overrides)
    if getattr(args, "show_config", False):
        print(cfg.describe())
        raise SystemExit(0)
    return cfg


def open_run_arg(args: argparse.Namespace, lab: str) -> tuple[Run, torch.device]:
    """The ``--run`` folder of a verb (a one-line error if it is missing or of another lab), its device,
    and ``--seed`` applied."""
    run = Run.open(args.run, lab)
    device = choose_device(getattr(args, "device", "auto"))
    if getattr(args, "seed", None) is not None:
        seed_everything(args.seed)
    return run, device


def at_least(low: int, high: int | None = None):
    """An argparse ``type``: an integer >= ``low`` (and <= ``high``): ``--n 0`` is a one-line usage error, not a
    crash later."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is too small; it must be >= {low}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{value} is too large; it must be <= {high}")
        return value

    return parse


def number(low: float | None = None, high: float | None = None, *, above: float | None = None):
    """An argparse ``type``: a finite float within ``[low, high]`` (or ``> above``); NaN and inf are refused."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"{value:g} is too small; it must be >= {low:g}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{value:g} is too large; it must be <= {high:g}")
        if above is not None and value <= above:
            raise argparse.ArgumentTypeError(f"{value:g} is too small; it must be > {above:g}")
        return value

    return parse


# a run folder's own records: an --out that names one of them would destroy the run
_RUN_RECORDS = ("config.json", "progress.json", "metrics.jsonl", "summary.json", "tokenizer.json", "chars.json")
_RUN_RECORDS += ("vocab.json", ".lock", "model.safetensors")


def output_file(text: str, option: str = "--out") -> Path:
    """The file an ``--out`` option names; a folder, or a run's own record (its config, checkpoint, metrics,
    tokenizer...), is a one-line error instead of being overwritten."""
    path = Path(text)
    if path.is_dir():
        raise ConfigError(f"{option} {text!r} is a folder; give a file name inside it")
    if path.exists():
        for parent in list(path.resolve().parents)[:3]:
            if (parent / "config.json").is_file():
                rel = path.resolve().relative_to(parent)
                if rel.as_posix() in _RUN_RECORDS or rel.suffix == ".pt":
                    raise ConfigError(
                        f"{option} {text!r} is the file {rel.as_posix()!r} of the run {str(parent)!r}; writing "
                        f"there would destroy the run: choose another file name"
                    )
                break
    return path
