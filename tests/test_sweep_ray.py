"""``--backend ray``: each sweep cell as a Ray task on a local Ray instance started here, against the local pool.

Skipped without the optional extra (pip install 'genlab[ray]'); ``make setup`` installs it, so CI runs these.
One Ray instance (two CPUs, no dashboard) serves the whole module: starting one costs seconds.
"""

from __future__ import annotations

import csv
import json
import sys
from functools import partial
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from genlab.cli import main  # noqa: E402
from genlab.data.reviews import write_tiny_reviews  # noqa: E402
from genlab.errors import DataError  # noqa: E402
from genlab.runs import Run  # noqa: E402
from genlab.sweep import run_sweep  # noqa: E402

# Ray workers cannot import this test module (tests/ is not on their path): send its functions by value
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _complete(run: Run, config: dict, *, tag: str = "") -> bool:
    """A stand-in for a lab's training: mark the cell done; no work when it already is."""
    marker = run.path / "done.json"
    if marker.exists():
        return False
    marker.write_text(json.dumps({**config, "tag": tag}))
    return True


def _fail(run: Run, config: dict) -> bool:
    if config["h"] == 2:
        raise DataError(f"cell {run.path.name} has no data; fetch it with genlab data fetch")
    if config["h"] == 3:
        raise ZeroDivisionError("a bug in a lab")
    return True


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*.json"))}


def test_ray_tasks_write_the_same_cells_as_the_local_pool(tmp_path, local_ray):
    cells = [("a", {"h": 1}), ("b", {"h": 2}), ("c", {"h": 3})]
    done = partial(_complete, tag="t")
    results = {}
    for backend in ("local", "ray"):
        root = tmp_path / backend
        out, reused = run_sweep("toy", {"n": 3}, cells, done, root=root, name="grid", quiet=True, backend=backend)
        assert list(reused) == ["a", "b", "c"] and not any(reused.values())
        again = run_sweep("toy", {"n": 3}, cells[:2] + [("c", {"h": 4})], done, root=root, name="grid", quiet=True)
        assert again[1] == {"a": True, "b": True, "c": False}  # c's folder held another config: trained afresh
        results[backend] = (reused, _files(out.path / "stages"))
    assert results["ray"] == results["local"]
    assert json.loads(results["ray"][1]["c/done.json"]) == {"h": 4, "tag": "t"}
    assert set(results["ray"][1]) == {f"{c}/{f}" for c in "abc" for f in ("config.json", "done.json")}


def test_an_error_inside_a_ray_task_is_the_labs_own_error(tmp_path, local_ray):
    with pytest.raises(DataError) as e:
        run_sweep("toy", {}, [("a", {"h": 1}), ("b", {"h": 2})], _fail, root=tmp_path, name="bad", backend="ray")
    assert type(e.value) is DataError  # not Ray's RayTaskError(DataError) with a traceback in its message
    assert str(e.value) == "cell b has no data; fetch it with genlab data fetch"
    with pytest.raises(ZeroDivisionError, match="a bug in a lab"):  # a bug keeps its type
        run_sweep("toy", {}, [("c", {"h": 3})], _fail, root=tmp_path, name="bug", backend="ray")
    assert ray.is_initialized()  # a Ray this process was already connected to is left as it was


def _sweep_table(csv_path: Path, run_dir: Path, *extra: str) -> list[dict]:
    """``genlab sentiment sweep`` of three tiny cells; its table without the timing column."""
    args = ["sentiment", "sweep", "--csv", str(csv_path), "--run-dir", str(run_dir), "--quiet", *extra]
    args += ["--models", "rnn,mlp", "--activations", "tanh,relu", "--hidden", "8", "--steps", "3"]
    args += ["--set", "n_train=60", "--set", "embeddings=learned", "--set", "embed_dim=8"]
    assert main(args) == 0
    with open(run_dir / "sentiment" / "sweep" / "tables" / "sweep.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(float(r.pop("seconds")) >= 0 for r in rows)
    return rows


def test_sentiment_sweep_on_ray_gives_the_local_table(tmp_path, local_ray):
    data = write_tiny_reviews(tmp_path / "IMDB Dataset.csv", n=80)
    local = _sweep_table(data, tmp_path / "local")
    assert [(r["model"], r["activation"]) for r in local] == [("rnn", "tanh"), ("rnn", "relu"), ("mlp", "-")]
    assert _sweep_table(data, tmp_path / "ray", "--backend", "ray") == local
    summary = json.loads((tmp_path / "ray" / "sentiment" / "sweep" / "summary.json").read_text())
    assert summary["cells"] == 3 and summary["reused"] == 0
