import json
from dataclasses import dataclass

import pytest

from genlab.config import Config, build_config, param, parse_value
from genlab.errors import ConfigError


@dataclass
class Demo(Config):
    lr: float = param(1e-3, "learning rate", min=0.0)
    steps: int = param(100, "steps", min=1)
    sampler: str = param("euler", "sampler", choices=("euler", "heun"))
    widths: tuple[int, ...] = param((16, 16), "layer widths")
    pair: tuple[int, float] = param((1, 0.5), "a fixed pair")
    flag: bool = param(False, "a switch")
    cap: float | None = param(None, "optional cap")


def test_override_parses_each_type():
    cfg = Demo().override(
        ["lr=3e-4", "steps=1e3", "sampler=heun", "widths=32,64,128", "pair=(2, 0.25)", "flag=yes", "cap=2.5"]
    )
    assert cfg == Demo(lr=3e-4, steps=1000, sampler="heun", widths=(32, 64, 128), pair=(2, 0.25), flag=True, cap=2.5)
    assert Demo(cap=1.0).override(["cap=none"]).cap is None
    assert Demo().override(["flag=off"]).flag is False


@pytest.mark.parametrize(
    "pair, words",
    [
        (["nosuchkey=1"], ["unknown config key 'nosuchkey'", "valid keys: lr, steps"]),
        (["lr=abc"], ["'abc'", "lr", "expected a number"]),
        (["steps=2.5"], ["'2.5'", "steps", "integer"]),
        (["sampler=heum"], ["'heum'", "choose one of: euler, heun"]),
        (["lr=-1"], ["-1.0", "lr", ">= 0.0"]),
        (["steps=0"], ["steps", ">= 1"]),
        (["flag=maybe"], ["'maybe'", "true or false"]),
        (["pair=1,2,3"], ["pair", "expected 2"]),
        (["lr"], ["key=value"]),
    ],
)
def test_override_errors_name_the_value_and_the_fix(pair, words):
    with pytest.raises(ConfigError) as e:
        Demo().override(pair)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_override_does_not_mutate_the_original():
    base = Demo()
    base.override(["lr=0.5"])
    assert base.lr == 1e-3


def test_config_files_json_and_toml(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"lr": 0.01, "widths": [8, 8]}))
    (tmp_path / "c.toml").write_text('sampler = "heun"\nsteps = 7\nflag = true\n')
    cfg = build_config(Demo, file=tmp_path / "c.json", overrides=["steps=3"])
    assert (cfg.lr, cfg.widths, cfg.steps) == (0.01, (8, 8), 3)
    cfg = build_config(Demo, file=tmp_path / "c.toml")
    assert (cfg.sampler, cfg.steps, cfg.flag) == ("heun", 7, True)
    (tmp_path / "bad.json").write_text(json.dumps({"lr": 0.01, "typo": 1}))
    with pytest.raises(ConfigError, match="unknown config key 'typo'"):
        build_config(Demo, file=tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="not found"):
        build_config(Demo, file=tmp_path / "missing.toml")
    (tmp_path / "c.yaml").write_text("lr: 1")
    with pytest.raises(ConfigError, match=r"\.json or \.toml"):
        build_config(Demo, file=tmp_path / "c.yaml")


def test_round_trip_through_dict():
    cfg = Demo().override(["widths=4,5", "cap=1"])
    assert Demo.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_parse_value_rejects_what_it_cannot_parse():
    assert parse_value("7", int) == 7
    with pytest.raises(ConfigError):
        parse_value("seven", int)


def test_nan_infinity_and_upper_bounds_are_refused():
    from genlab.train import TrainConfig

    for bad in ("lr=nan", "lr=inf", "ema_decay=1.5", "lr=-1", "grad_clip=nan"):
        with pytest.raises(ConfigError, match="bad value"):
            TrainConfig().override([bad])
    assert TrainConfig().override(["lr=0.5"]).lr == 0.5


def test_config_file_that_is_not_utf8_is_one_line(tmp_path):
    from genlab.config import load_config_file

    path = tmp_path / "c.json"
    path.write_bytes(b'{"lr": "\xff"}')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config_file(path)
