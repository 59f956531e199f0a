"""``--log tensorboard``: event files beside metrics.jsonl, read back and compared with the log."""

from __future__ import annotations

import builtins
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from genlab.cli import main
from genlab.errors import ConfigError
from genlab.runs import Run
from toy_training import train_toy

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def read_events(path) -> dict[str, dict[int, float]]:
    acc = event_accumulator.EventAccumulator(str(path))
    acc.Reload()
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def logged(run) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for row in run.read_metrics():
        for k, v in row.items():
            if k != "step":
                out.setdefault(k, {})[row["step"]] = v
    return out


def test_events_hold_what_metrics_jsonl_holds(tmp_path):
    run, _, _ = train_toy(tmp_path, "tb", steps=20, log="tensorboard")
    events, log = read_events(run.path / "tensorboard"), logged(run)
    assert set(events) == set(log) and {"loss", "val_loss", "lr"} <= set(events)
    for tag, by_step in log.items():
        assert sorted(events[tag]) == sorted(by_step), tag
        for step, value in by_step.items():
            assert events[tag][step] == pytest.approx(value, rel=1e-6), (tag, step)


def test_jsonl_only_writes_no_events(tmp_path):
    run, _, _ = train_toy(tmp_path, "plain", steps=10)
    assert run.read_metrics() and not (run.path / "tensorboard").exists()


def test_resume_replaces_the_steps_after_the_checkpoint(tmp_path):
    """A run killed at step 25 (last checkpoint 20) and resumed shows each step once, with the resumed values."""
    toy = [sys.executable, str(Path(__file__).parent / "toy_training.py"), str(tmp_path), "r", "--log", "tensorboard"]
    killed = subprocess.run([*toy, "--kill-at", "25"], capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    subprocess.run([*toy, "--resume"], check=True, capture_output=True)
    run = Run(tmp_path / "toy" / "r")
    events, log = read_events(run.path / "tensorboard"), logged(run)
    assert max(events["loss"]) == 40 and sorted(events["loss"]) == sorted(log["loss"])
    for step, value in log["loss"].items():
        assert events["loss"][step] == pytest.approx(value, rel=1e-6)


def test_cli_flag_and_missing_package(tmp_path, monkeypatch, capsys):
    args = ["diffusion2d", "train", "--preset", "square", "--set", "steps=4", "--set", "log_every=2", "--quiet"]
    assert main([*args, "--run-dir", str(tmp_path), "--name", "a", "--log", "tensorboard", "--set", "hidden=8"]) == 0
    run_dir = tmp_path / "diffusion2d" / "a"
    assert json.loads((run_dir / "config.json").read_text())["config"]["log"] == "tensorboard"
    assert read_events(run_dir / "tensorboard")["loss"]

    real_import = builtins.__import__

    def no_tensorboard(name, *a, **kw):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ConfigError, match="pip install"):
        train_toy(tmp_path, "b", steps=4, log="tensorboard")
    code = main([*args, "--run-dir", str(tmp_path), "--name", "c", "--log", "tensorboard"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "tensorboard" in err
