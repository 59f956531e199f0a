"""Dataclass configs, typed ``--set key=value`` overrides, and config files.

Every lab's configuration is a flat dataclass deriving from :class:`Config`. Values come, in order, from the
dataclass defaults, an optional preset, a JSON or TOML file (``--config``), and ``--set key=value`` pairs.
Each value is parsed with the field's declared type, and checked against the field's ``choices`` or
``min`` when it has them, so a typo fails at once with the list of valid keys or values::

    @dataclass
    class MyConfig(Config):
        lr: float = param(1e-3, "learning rate", min=0.0)
        sampler: str = param("euler", "sampling method", choices=("euler", "heun"))

    cfg = MyConfig().override(["lr=3e-4", "sampler=heun"])
"""

from __future__ import annotations

import dataclasses
import json
import math
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from genlab.errors import ConfigError

C = TypeVar("C", bound="Config")

INT_MAX, INT_MIN = 2**63 - 1, -(2**63)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def param(
    default: Any, help: str = "", *, choices: tuple | None = None, min: float | None = None, max: float | None = None
):
    """A config field with a help text and, optionally, allowed ``choices`` or bounds ``min`` <= value <= ``max``.

    Every float field also refuses NaN and infinity (they pass any comparison and fail much later).
    """
    meta = {"help": help, "choices": choices, "min": min, "max": max}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for sequence defaults so configs stay hashable and immutable")
    return dataclasses.field(default=default, metadata=meta)


def parse_value(text: str, tp: Any, key: str = "value") -> Any:
    """Parse the string ``text`` as type ``tp`` (int, float, bool, str, tuples, Optional, Literal)."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if type(None) in get_args(tp) and text.strip().lower() in ("none", "null", ""):
            return None
        errors = []
        for a in args:
            try:
                return parse_value(text, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"bad value {text!r} for {key}")
    if origin is Literal:
        options = get_args(tp)
        if text in options:
            return text
        raise ConfigError(f"bad value {text!r} for {key}; choose one of: {', '.join(map(str, options))}")
    if origin is tuple:
        args = get_args(tp)
        parts = [p.strip() for p in text.strip().strip("()[]").split(",") if p.strip()]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(parse_value(p, args[0], key) for p in parts)
        if len(parts) != len(args):
            raise ConfigError(f"bad value {text!r} for {key}; expected {len(args)} comma-separated values")
        return tuple(parse_value(p, a, key) for p, a in zip(parts, args))
    if tp is bool:
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"bad value {text!r} for {key}; expected true or false")
    if tp in (int, float):
        try:
            if tp is int:
                f = float(text)
                if not f.is_integer():
                    raise ValueError
                return int(f)
            return float(text)
        except ValueError:
            raise ConfigError(
                f"bad value {text!r} for {key}; expected {'an integer' if tp is int else 'a number'}"
            ) from None
    if tp is str:
        return text
    raise ConfigError(f"cannot parse {key} of type {tp}")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check or convert a value from a JSON/TOML file to the field's type."""
    if isinstance(value, str) and tp is not str:
        return parse_value(value, tp, key)
    origin = get_origin(tp)
    if origin is tuple and isinstance(value, (list, tuple)):
        return parse_value(",".join(str(v) for v in value), tp, key)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        return parse_value(str(value), tp, key)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    expected = tp if isinstance(tp, type) else object
    if not isinstance(value, expected) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"bad value {value!r} for {key}; expected {getattr(tp, '__name__', tp)}")
    return value


@dataclasses.dataclass
class Config:
    """Base class of every config: validation, overrides, and (de)serialisation."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            choices = f.metadata.get("choices")
            if choices is not None and value not in choices:
                raise ConfigError(f"bad value {value!r} for {f.name}; choose one of: {', '.join(map(str, choices))}")
            for v in value if isinstance(value, tuple) else (value,):
                if isinstance(v, float) and not math.isfinite(v):
                    raise ConfigError(f"bad value {value!r} for {f.name}; it must be a finite number")
                if isinstance(v, int) and not INT_MIN <= v <= INT_MAX:  # torch takes 64-bit integers
                    raise ConfigError(f"bad value {value!r} for {f.name}; it must lie within +-{INT_MAX} (64 bits)")
                low, high = f.metadata.get("min"), f.metadata.get("max")
                if low is not None and v is not None and v < low:
                    raise ConfigError(f"bad value {value!r} for {f.name}; it must be >= {low}")
                if high is not None and v is not None and v > high:
                    raise ConfigError(f"bad value {value!r} for {f.name}; it must be <= {high}")

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}

    @classmethod
    def field_help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def _check_keys(self, keys) -> None:
        valid = self.field_types()
        for key in keys:
            if key not in valid:
                raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(valid)}")

    def update(self: C, values: dict[str, Any]) -> C:
        """A copy with ``values`` (already typed, e.g. from JSON) applied and validated."""
        self._check_keys(values)
        types_ = self.field_types()
        typed = {k: _coerce(v, types_[k], k) for k, v in values.items()}
        return dataclasses.replace(self, **typed)

    def override(self: C, pairs: list[str] | tuple[str, ...]) -> C:
        """A copy with ``key=value`` strings applied, each parsed with its field's type."""
        parsed: dict[str, Any] = {}
        types_ = self.field_types()
        for pair in pairs:
            if "=" not in pair:
                raise ConfigError(f"bad override {pair!r}; write it as key=value, e.g. --set lr=3e-4")
            key, text = pair.split("=", 1)
            key = key.strip().replace("-", "_")
            self._check_keys([key])
            parsed[key] = parse_value(text.strip(), types_[key], key)
        return dataclasses.replace(self, **parsed)

    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any]) -> C:
        return cls().update(values)

    def describe(self) -> str:
        """The config as aligned ``key = value  # help`` lines (for ``--help`` and logs)."""
        helps = self.field_help()
        width = max((len(k) for k in helps), default=0)
        return "\n".join(f"  {k:<{width}} = {v!r}  # {helps[k]}" for k, v in self.to_dict().items())

    @classmethod
    def help_table(cls, width: int = 100) -> str:
        """Every key of the config for ``--help``: name, type, default (as ``repr``, like :meth:`describe`) and
        the field's help line, with its choices or bounds where the help does not name them. Generated from
        the fields' :func:`param` metadata, so the help cannot disagree with the code.

        A table of aligned columns when the meanings get at least 40 of the ``width`` characters (a default
        longer than 16 characters pushes its meaning to the next line); otherwise each key on one line
        (``name: type = default``) and its meaning indented below it, as argparse does with long options."""
        types_ = cls.field_types()
        rows = []
        for f in dataclasses.fields(cls):
            meaning = f.metadata.get("help", "")
            choices, low, high = f.metadata.get("choices"), f.metadata.get("min"), f.metadata.get("max")
            if choices is not None and not all(str(c) in meaning for c in choices):
                meaning += f" (one of: {', '.join(map(str, choices))})"
            bounds = [f"{op} {b:g}" if isinstance(b, float) else f"{op} {b}" for op, b in ((">=", low), ("<=", high))]
            bounds = [b for b, v in zip(bounds, (low, high)) if v is not None]
            if bounds:
                meaning += f" [{' and '.join(bounds)}]"
            tp = types_[f.name]
            tname = tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")
            rows.append((f.name, tname, repr(f.default), meaning))

        def wrap(text: str, indent: int) -> list[str]:
            return textwrap.wrap(text, width - indent, break_on_hyphens=False) or [""]

        head = ("key", "type", "default", "meaning")
        kw, tw = (max(len(r[i]) for r in [*rows, head]) for i in (0, 1))
        dw = min(16, max(len(r[2]) for r in [*rows, head]))
        indent = 2 + kw + 2 + tw + 2 + dw + 2
        lines = []
        if width - indent < 40:
            for name, tname, default, meaning in rows:
                lines.append(f"  {name}: {tname} = {default}")
                lines += ["      " + w for w in wrap(meaning, 6)]
            return "\n".join(lines)
        for name, tname, default, meaning in [head, *rows]:
            prefix = f"  {name:<{kw}}  {tname:<{tw}}  {default:<{dw}}  "
            if len(prefix) > indent:  # a long default: the meaning starts on the next line
                lines.append(prefix.rstrip())
                prefix = " " * indent
            wrapped = wrap(meaning, indent)
            lines += [prefix + wrapped[0], *(" " * indent + w for w in wrapped[1:])]
        return "\n".join(line.rstrip() for line in lines)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or TOML config file into a dict (flat ``key = value`` pairs)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found; pass an existing .json or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"config file {str(path)!r} cannot be read ({e.strerror})") from None
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"config file {str(path)!r} must end in .json or .toml")
    except (ValueError, TypeError) as e:
        raise ConfigError(f"config file {str(path)!r} could not be parsed: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a table of key = value pairs")
    return data


def build_config(
    cls: type[C], *, base: C | None = None, file: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> C:
    """Defaults (or ``base``, e.g. a preset), then a config file, then ``key=value`` overrides."""
    cfg = base if base is not None else cls()
    if file is not None:
        cfg = cfg.update(load_config_file(file))
    return cfg.override(list(overrides))
