"""The ``genlab`` command: ``genlab <lab> <verb> [options]``, ``genlab data ...``, ``genlab report``.

Each lab package in :mod:`genlab.labs` adds its own sub-commands through its ``SPEC.register(subparsers)``
(built from the shared pieces in :mod:`genlab.verbs`); this file only assembles them and turns a
:class:`GenlabError` into one line on stderr with exit status 2 (any other exception is a bug and keeps its
traceback, exit status 1). Nothing imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from genlab import __version__
from genlab.errors import GenlabError, NothingToDo, describe_os_error, is_out_of_memory
from genlab.labs import all_labs

# ------------------------------------------------------------------------------------------------ the parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like GenlabError
        self.exit(2, f"genlab: error: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="genlab",
        description="Deep generative and sequence-model labs, one command each.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'genlab <command> --help' for a command's options.\nStart with: genlab report --quick",
    )
    parser.add_argument("--version", action="version", version=f"genlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of any error (or GENLAB_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)
    sub.required = True
    from genlab import report as report_mod
    from genlab.data import fetch as fetch_mod

    fetch_mod.register(sub)
    report_mod.register(sub)
    from genlab.export import add_export_verb

    for lab in all_labs():
        lab.register(sub)
        add_export_verb(sub.choices[lab.name], lab.name)  # one 'export' verb for every lab
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed as one line
        return int(e.code or 0)
    debug = args.debug or os.environ.get("GENLAB_DEBUG", "") not in ("", "0")
    try:
        result = args.func(args)
    except NothingToDo as e:
        print(f"genlab: {e}", file=sys.stderr)
        return 0
    except GenlabError as e:
        if debug:
            raise
        print(f"genlab: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. 'genlab data list | head'
        sys.stderr.close()
        return 0
    except OSError as e:  # the environment: full disk, read-only folder, a file where a folder should be...
        if debug:
            raise
        print(f"genlab: error: {describe_os_error(e)}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as e:
        if debug or not is_out_of_memory(e):
            raise
        print(
            "genlab: error: out of memory; make the config smaller (e.g. --set batch_size=... or a smaller "
            "model) or use a device with more memory",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("genlab: interrupted; finished checkpoints are kept (continue with --resume)", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
