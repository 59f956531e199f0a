"""``genlab <lab> train --help`` lists every config key with its type, default and meaning, generated from the
lab's Config dataclass: each field's name and default (read from the code, not from the help) must appear."""

import argparse
import dataclasses
import re

import pytest

from genlab.cli import build_parser
from genlab.config import Config, param
from genlab.labs import all_labs

LABS = [spec.name for spec in all_labs()]


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _train_verbs(lab: str) -> dict[str, str]:
    """``{verb: help text}`` of every verb of ``lab`` that takes a config (``--set`` and ``--show-config``)."""
    verbs = _verbs(_verbs(build_parser())[lab])
    out = {}
    for name, p in verbs.items():
        opts = {o for a in p._actions for o in a.option_strings}
        if {"--set", "--show-config"} <= opts:
            out[name] = p.format_help()
    return out


def _check_lists_every_key(text: str, cls: type[Config]) -> None:
    assert "config keys (--set KEY=VALUE" in text
    text = text[text.index("config keys (--set KEY=VALUE") :]
    flat = " ".join(text.split())
    defaults = cls()
    for f in dataclasses.fields(cls):
        shown = re.escape(repr(getattr(defaults, f.name)))
        table = rf"^  {f.name}\s+\S.*?\s{{2}}{shown}(\s{{2}}|$)"  # key  type  default  meaning
        stacked = rf"^  {f.name}: \S.* = {shown}$"  # key: type = default, meaning below
        assert re.search(table, text, re.M) or re.search(stacked, text, re.M), f"{f.name} = {shown} not in:\n{text}"
        meaning = " ".join(f.metadata.get("help", "").split())
        assert meaning[:40] in flat, f"the meaning of {f.name} is missing"


@pytest.mark.parametrize("columns", ["200", "80"])  # the aligned table, and one key per line when narrow
@pytest.mark.parametrize("lab", LABS)
def test_train_help_lists_every_config_key_with_its_default(lab, columns, monkeypatch):
    monkeypatch.setenv("COLUMNS", columns)
    spec = next(s for s in all_labs() if s.name == lab)
    helps = _train_verbs(lab)
    assert helps, f"lab {lab} has no verb taking --set"
    for verb, text in helps.items():
        _check_lists_every_key(text, spec.Config)
        if columns == "80":
            assert max(len(line) for line in text.splitlines()) <= 80, f"{lab} {verb}: a help line is wider than 80"


@dataclasses.dataclass
class _Toy(Config):
    rate: float = param(0.5, "a rate", min=0.0, max=1.0)
    mode: str = param("a", "how to go", choices=("a", "b"))
    sizes: tuple[int, ...] = param((3, 4), "layer sizes")
    name: str = param("", "empty by default")
    long_default: tuple[float, ...] = param((0.0, 1.0, 2.0, 3.0, 5.0, 8.0), "a default wider than its column")


def test_help_table_shows_types_defaults_choices_and_bounds():
    table = _Toy.help_table(100)
    lines = table.splitlines()
    assert lines[0].split() == ["key", "type", "default", "meaning"]
    assert re.search(r"^  rate\s+float\s+0\.5\s+a rate \[>= 0 and <= 1\]$", table, re.M)
    assert re.search(r"^  mode\s+str\s+'a'\s+how to go \(one of: a, b\)$", table, re.M)
    assert re.search(r"^  sizes\s+tuple\[int, \.\.\.\]\s+\(3, 4\)\s+layer sizes$", table, re.M)
    assert re.search(r"^  name\s+str\s+''\s+empty by default$", table, re.M)
    i = next(i for i, line in enumerate(lines) if line.startswith("  long_default"))
    assert (
        lines[i].endswith("(0.0, 1.0, 2.0, 3.0, 5.0, 8.0)")
        and lines[i + 1].strip() == "a default wider than its column"
    )
    assert lines[i + 1].index("a default") == lines[1].index("a rate")  # the meaning column, one line down
    narrow = _Toy.help_table(40)
    assert "  rate: float = 0.5\n      a rate [>= 0 and <= 1]" in narrow
