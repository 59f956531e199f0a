"""The ``genlab`` command: ``genlab <lab> <verb> [options]``, ``genlab data ...``, ``genlab report``.

Each lab module in :mod:`genlab.labs` adds its own sub-commands through ``register(subparsers)``; this file
holds what they share: the common options, config building, and turning a :class:`GenlabError` into one
line on stderr with exit status 2 (any other exception is a bug and keeps its traceback, exit status 1).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genlab import __version__
from genlab.config import Config, build_config
from genlab.errors import ConfigError, GenlabError

# --------------------------------------------------------------------------------------------- shared options

def add_common_args(p: argparse.ArgumentParser) -> None:
    """Options every verb takes."""
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default: auto)")
    p.add_argument("--quiet", action="store_true", help="hide progress bars")
    p.add_argument("--seed", type=int, default=None, help="random seed (overrides the config's)")


def add_train_args(p: argparse.ArgumentParser, presets: Sequence[str] = ()) -> None:
    """Options of a ``train`` verb: config sources, run folder, resume."""
    add_common_args(p)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (repeatable), e.g. --set lr=3e-4")
    p.add_argument("--config", default=None, metavar="FILE", help="JSON or TOML file of config values")
    if presets:
        p.add_argument("--preset", default=None, choices=list(presets), help="a named starting config")
    p.add_argument("--run-dir", default="runs", metavar="DIR", help="root folder of runs (default: runs)")
    p.add_argument("--name", default=None, help="run name (default: a timestamp)")
    p.add_argument("--resume", action="store_true", help="continue the run --name from its last checkpoint")
    p.add_argument("--show-config", action="store_true", help="print the resolved config and exit")


def add_run_arg(p: argparse.ArgumentParser, required: bool = True) -> None:
    """``--run DIR``: the trained run a verb works on."""
    p.add_argument("--run", required=required, metavar="DIR", help="a run folder made by 'train'")
    add_common_args(p)


def add_lab_parser(sub: argparse._SubParsersAction, name: str, help: str, description: str | None = None):
    """``genlab <name>``: a lab's parser; returns the sub-parsers its verbs are added to."""
    p = sub.add_parser(name, help=help, description=description or help,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", metavar="<verb>", parser_class=type(p))
    verbs.required = True
    return verbs


def config_from_args(cls: type[Config], args: argparse.Namespace,
                     presets: dict[str, Config] | None = None) -> Any:
    """Defaults -> ``--preset`` -> ``--config FILE`` -> ``--set`` pairs -> ``--seed``."""
    base = None
    preset = getattr(args, "preset", None)
    if preset:
        base = (presets or {})[preset]
    overrides = list(getattr(args, "overrides", []) or [])
    if getattr(args, "seed", None) is not None:
        overrides.append(f"seed={args.seed}")
    cfg = build_config(cls, base=base, file=getattr(args, "config", None), overrides=overrides)
    if getattr(args, "show_config", False):
        print(cfg.describe())
        raise SystemExit(0)
    return cfg


# ------------------------------------------------------------------------------------------------ the parser

def lab_modules() -> list[Any]:
    """Every module in :mod:`genlab.labs` that registers commands, in their ``ORDER``."""
    import genlab.labs as labs_pkg

    mods = []
    for info in pkgutil.iter_modules(labs_pkg.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"genlab.labs.{info.name}")
        if hasattr(mod, "register"):
            mods.append(mod)
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 99), m.__name__))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like GenlabError
        self.exit(2, f"genlab: error: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="genlab", description="Deep generative and sequence-model labs, one command each.",
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="Run 'genlab <command> --help' for a command's options.\n"
                            "Start with: genlab report --quick")
    parser.add_argument("--version", action="version", version=f"genlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)
    sub.required = True
    from genlab import report as report_mod
    from genlab.data import fetch as fetch_mod

    fetch_mod.register(sub)
    report_mod.register(sub)
    for mod in lab_modules():
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed as one line
        return int(e.code or 0)
    try:
        result = args.func(args)
    except GenlabError as e:
        print(f"genlab: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. 'genlab data list | head'
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("genlab: interrupted; finished checkpoints are kept (continue with --resume)", file=sys.stderr)
        return 130
    return int(result or 0)


def check_path(path: str | Path, what: str = "file") -> Path:
    """An existing path, or a one-line error naming it."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{what} {str(p)!r} not found; check the path")
    return p


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
