"""Every ``genlab ...`` command the README shows parses with today's CLI (options and verbs exist)."""

import re
import shlex
from pathlib import Path

import pytest

from genlab.cli import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands() -> list[str]:
    cmds, fenced = [], False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        m = re.match(r"^\s*(genlab \S.*)$", line)
        if m and (fenced or line.startswith("    ")):
            cmds.append(m.group(1).split("  #")[0].split(" # ")[0].strip())
    return cmds


def test_the_readme_shows_commands():
    assert len(readme_commands()) > 20


@pytest.mark.parametrize("cmd", readme_commands())
def test_readme_command_parses(cmd):
    argv = shlex.split(cmd)[1:]
    if "--help" in argv:
        return
    try:
        build_parser().parse_args(argv)
    except SystemExit as e:  # argparse's way of saying no
        pytest.fail(f"README command does not parse: {cmd} (exit {e.code})")


def test_readme_holds_the_tested_python_examples():
    """The "From Python" section is the text tests/test_api.py runs (its slow test executes every example)."""
    from test_api import README_PYTHON

    assert README_PYTHON.strip() in README.read_text()
