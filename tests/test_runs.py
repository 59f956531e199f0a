import json
import os

import pytest
import torch

from genlab import runs as runs_mod
from genlab.errors import ConfigError, RunError
from genlab.io import atomic_torch_save, atomic_write_text
from genlab.runs import Run, choose_device, markdown_table


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("simulated crash while writing")


def test_crash_while_writing_keeps_the_old_checkpoint(tmp_path):
    path = tmp_path / "checkpoints" / "last.pt"
    atomic_torch_save({"step": 1, "w": torch.ones(3)}, path)
    with pytest.raises(RuntimeError, match="simulated crash"):
        atomic_torch_save({"step": 2, "w": torch.zeros(3), "bad": Unpicklable()}, path)
    state = torch.load(path, weights_only=True)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left behind


def test_crash_at_replace_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")

    def boom(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(runs_mod.os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_run_folder_layout_and_outputs(tmp_path):
    run = Run.create("toy", {"a": 1}, name="r1", root=tmp_path)
    assert json.loads(run.config_path.read_text())["config"] == {"a": 1}
    run.log_metrics({"step": 1, "loss": 0.5})
    run.log_metrics({"step": 2, "loss": 0.25})
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 3, "lo')  # a line cut by a kill
    assert [r["step"] for r in run.read_metrics()] == [1, 2]
    run.truncate_metrics(1)
    assert [r["step"] for r in run.read_metrics()] == [1]
    run.save_table([{"model": "gru", "acc": 0.8123456}], "results", caption="Test accuracy")
    assert (run.tables_dir / "results.csv").read_text().splitlines() == ["model,acc", "gru,0.8123456"]
    assert "| gru | 0.8123 |" in (run.tables_dir / "results.md").read_text()
    run.update_summary({"x": 1})
    assert run.update_summary({"y": 2}) == {"x": 1, "y": 2}
    from genlab.plots import figure

    fig, ax = figure()
    ax.plot([0, 1], [1, 0])
    png = run.save_figure(fig, "line", caption="A line", command="genlab toy figures", data={"y": [1, 0]})
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert json.loads((run.figures_dir / "line.json").read_text())["command"] == "genlab toy figures"


def test_trained_run_is_not_overwritten_without_resume(tmp_path):
    run = Run.create("toy", {"a": 1}, name="r", root=tmp_path)
    run.save_checkpoint({"step": 5})
    with pytest.raises(RunError, match="--resume"):
        Run.create("toy", {"a": 1}, name="r", root=tmp_path)
    with pytest.raises(RunError, match="changed: a"):
        Run.create("toy", {"a": 2}, name="r", root=tmp_path, resume=True)
    assert Run.create("toy", {"a": 1}, name="r", root=tmp_path, resume=True).path == run.path


def test_bad_names_and_missing_runs(tmp_path):
    with pytest.raises(ConfigError, match="bad run name"):
        Run.create("toy", {}, name="../escape", root=tmp_path)
    with pytest.raises(RunError, match="not a run folder"):
        Run.open(tmp_path / "nope")
    with pytest.raises(RunError, match="no checkpoint"):
        Run.create("toy", {}, name="empty", root=tmp_path).load_checkpoint()


def test_device_choice():
    assert choose_device("cpu").type == "cpu"
    assert choose_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ConfigError, match="choose one of"):
        choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--device cpu"):
            choose_device("cuda")


def test_markdown_table_empty():
    assert markdown_table([]) == "(empty)\n"


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_checkpoint_that_would_run_code_is_refused_in_one_line(tmp_path):
    run = Run.create("toy", {"a": 1}, name="evil", root=tmp_path)
    run.checkpoint_dir.mkdir(parents=True)
    torch.save({"step": 1, "payload": _RunsCode()}, run.last_checkpoint)
    with pytest.raises(RunError, match="cannot load .* safely"):
        run.load_checkpoint()
    run.last_checkpoint.write_bytes(b"\x00garbage")
    with pytest.raises(RunError, match="cannot load"):
        run.load_checkpoint()


def test_rng_state_round_trips_through_a_safe_checkpoint(tmp_path):
    import random

    import numpy as np

    from genlab.runs import rng_state, set_rng_state

    path = tmp_path / "s.pt"
    atomic_torch_save({"rng": rng_state()}, path)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(torch.load(path, weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_damaged_run_files_are_one_line_errors(tmp_path):
    run = Run.create("toy", {"a": 1}, name="r", root=tmp_path)
    run.summary_path.write_bytes(b"{\xff\xfe")
    with pytest.raises(RunError, match="summary.*damaged"):
        run.read_summary()
    run.metrics_path.write_bytes(b'{"step": 1, "loss": 0.5}\n{"step": 2, "lo\xff\n[1, 2]\n{"step": 3}\n')
    assert [r["step"] for r in run.read_metrics()] == [1, 3]
    run.config_path.write_text("[1, 2]")
    with pytest.raises(RunError, match="not a genlab run config"):
        run.read_config_file()
    run.config_path.write_text("{not json")
    with pytest.raises(RunError, match="damaged"):
        Run.open(run.path, "toy")


def test_written_files_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "x.txt", "hi")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_reuse_keeps_a_run_of_another_config_beside_the_new_one(tmp_path, capsys):
    from genlab.runs import reuse_or_create

    first = reuse_or_create("toy", {"a": 1}, root=tmp_path, name="demo")
    (first.path / "marker").write_text("trained")
    again = reuse_or_create("toy", {"a": 1}, root=tmp_path, name="demo")
    assert (again.path / "marker").exists()
    other = reuse_or_create("toy", {"a": 2}, root=tmp_path, name="demo")
    kept = [p for p in (tmp_path / "toy").iterdir() if p.name.startswith("demo.replaced-")]
    assert len(kept) == 1 and (kept[0] / "marker").read_text() == "trained"
    assert other.same_config({"a": 2}) and "kept it as" in capsys.readouterr().err
