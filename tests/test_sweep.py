"""genlab.sweep: one child run per cell, reused when it holds the same config, in this process or several."""

import json
from functools import partial

import pytest

from genlab.errors import ConfigError
from genlab.runs import Run
from genlab.sweep import run_sweep


def _complete(run: Run, config: dict, *, tag: str = "") -> bool:
    """A stand-in for a lab's training: mark the cell done; no work when it already is."""
    marker = run.path / "done.json"
    if marker.exists():
        return False
    marker.write_text(json.dumps({**config, "tag": tag}))
    return True


def _check_sweep(tmp_path, jobs):
    cells = [("a", {"h": 1}), ("b", {"h": 2})]
    done = partial(_complete, tag="t")
    out, reused = run_sweep("toy", {"cells": [1, 2]}, cells, done, root=tmp_path, name="grid", jobs=jobs, quiet=True)
    assert out.path == tmp_path / "toy" / "grid" and out.read_config_file()["config"] == {"cells": [1, 2]}
    assert reused == {"a": False, "b": False}
    child = Run(out.path / "stages" / "b")
    assert child.same_config({"h": 2}) and child.lab == "toy"
    assert json.loads((child.path / "done.json").read_text()) == {"h": 2, "tag": "t"}
    cells[1] = ("b", {"h": 3})  # b's folder holds another config: removed and done afresh
    _, reused = run_sweep("toy", {"cells": [1, 2]}, cells, done, root=tmp_path, name="grid", jobs=jobs, quiet=True)
    assert reused == {"a": True, "b": False}
    assert json.loads((child.path / "done.json").read_text())["h"] == 3


def test_run_sweep_trains_each_cell_once_and_redoes_a_changed_one(tmp_path):
    _check_sweep(tmp_path, jobs=1)


@pytest.mark.slow
def test_run_sweep_in_spawned_processes(tmp_path):
    """Two worker processes (each imports torch: seconds): the same as in this process."""
    _check_sweep(tmp_path, jobs=2)


def test_run_sweep_needs_a_positive_job_count(tmp_path):
    with pytest.raises(ConfigError, match="--jobs 0"):
        run_sweep("toy", {}, [], _complete, root=tmp_path, jobs=0)
    assert not (tmp_path / "toy").exists()
