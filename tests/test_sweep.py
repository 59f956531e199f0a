"""genlab.sweep: one child run per cell, reused when it holds the same config, in this process or several."""

import ast
import json
import socket
import sys
import types
from functools import partial
from pathlib import Path

import pytest

from genlab.cli import main
from genlab.data.reviews import write_tiny_reviews
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


# ------------------------------------------------------------------ backends: the choice, and Ray as an extra


def test_run_sweep_refuses_an_unknown_backend_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown --backend 'dask'; choose one of: local, ray"):
        run_sweep("toy", {}, [("a", {})], _complete, root=tmp_path, backend="dask")
    assert not (tmp_path / "toy").exists()


def test_backend_ray_without_ray_installed_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without the extra
    with pytest.raises(ConfigError) as e:
        run_sweep("toy", {}, [("a", {})], _complete, root=tmp_path, backend="ray")
    assert str(e.value) == "--backend ray needs Ray: pip install 'genlab[ray]'"
    assert not (tmp_path / "toy").exists()
    csv = write_tiny_reviews(tmp_path / "reviews.csv", n=40)
    args = ["sentiment", "sweep", "--csv", str(csv), "--run-dir", str(tmp_path / "runs"), "--quiet"]
    tiny = ["--models", "rnn", "--hidden", "8", "--steps", "2", "--set", "n_train=30", "--set", "embeddings=learned"]
    assert main([*args, *tiny, "--backend", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("--backend ray needs Ray: pip install 'genlab[ray]'") and "\n" not in err
    assert not (tmp_path / "runs" / "sentiment" / "sweep").exists()


@pytest.mark.parametrize("verb", [["sentiment", "sweep"], ["imagediff", "compose"]])
def test_backend_is_an_argparse_choice(verb, tmp_path, capsys):
    assert main([*verb, "--run-dir", str(tmp_path), "--backend", "nonsense"]) == 2
    err = capsys.readouterr().err.strip().replace("'local', 'ray'", "local, ray")  # Python 3.12+ drops the quotes
    assert "argument --backend: invalid choice: 'nonsense' (choose from local, ray)" in err and "\n" not in err
    assert not any(tmp_path.iterdir())


def _run_at_import(node: ast.AST):
    """The statements under ``node`` that run when its module is imported (not those inside functions)."""
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield child
            yield from _run_at_import(child)


def _imports_ray(node: ast.AST) -> bool:
    names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
    names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
    return any(n == "ray" or n.startswith("ray.") for n in names)


def test_no_genlab_module_imports_ray_at_import_time():
    """Ray stays optional: every ``import ray`` in the package sits inside a function (read from the source: a
    subprocess importing genlab would cost seconds of torch import)."""
    src = Path(__file__).resolve().parents[1] / "src" / "genlab"
    lazy, eager = [], []
    for path in src.rglob("*.py"):
        text = path.read_text()
        if "ray" not in text:
            continue
        tree = ast.parse(text)
        eager += [path.name for node in _run_at_import(tree) if _imports_ray(node)]
        lazy += [path.name for node in ast.walk(tree) if _imports_ray(node)]
    assert "sweep.py" in lazy  # the check finds the one lazy import
    assert eager == []


def test_backend_ray_fails_at_once_when_nothing_answers_at_ray_address(tmp_path, monkeypatch):
    """Ray itself retries an unreachable cluster for minutes; the sweep says so in one line before trying."""
    calls = []
    fake = types.SimpleNamespace(is_initialized=lambda: False, init=lambda **kw: calls.append(kw))
    monkeypatch.setitem(sys.modules, "ray", fake)
    with socket.socket() as s:  # a port nobody listens on: bound, then closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(ConfigError, match=rf"^nothing answers at RAY_ADDRESS=127.0.0.1:{port} \(.*'ray start --head'"):
        run_sweep("toy", {}, [("a", {})], _complete, root=tmp_path, backend="ray")
    assert calls == [] and not (tmp_path / "toy").exists()


@pytest.mark.parametrize("address", ["not an address", "10.0.0.1", "ray://", ":6379", "host:port"])
def test_backend_ray_refuses_a_ray_address_of_no_known_form_before_ray_is_called(tmp_path, monkeypatch, address):
    calls = []
    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(is_initialized=lambda: False, init=calls.append))
    monkeypatch.setenv("RAY_ADDRESS", address)
    with pytest.raises(ConfigError, match=r"is not host:port, ray://host:port or auto; .*'ray start --head'") as e:
        run_sweep("toy", {}, [("a", {})], _complete, root=tmp_path, backend="ray")
    assert repr(address) in str(e.value) and calls == [] and not (tmp_path / "toy").exists()


@pytest.mark.parametrize("cluster", [True, False])
def test_backend_ray_says_in_one_line_when_ray_does_not_start(tmp_path, monkeypatch, cluster):
    def init(**kw):
        raise ConnectionError("Failed to connect to Ray cluster\nat some address\n(traceback lines)")

    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(is_initialized=lambda: False, init=init))
    with socket.socket() as s:  # something answers at RAY_ADDRESS, but it is no Ray that lets us in
        s.bind(("127.0.0.1", 0))
        s.listen()
        address = f"127.0.0.1:{s.getsockname()[1]}"
        monkeypatch.setenv("RAY_ADDRESS", address if cluster else "")
        with pytest.raises(ConfigError) as e:
            run_sweep("toy", {}, [("a", {})], _complete, root=tmp_path, backend="ray")
    where = f"the Ray cluster at RAY_ADDRESS={address}" if cluster else "a local Ray instance"
    assert str(e.value).startswith(f"could not start or reach {where}: Failed to connect to Ray cluster; ")
    assert ("RAY_AUTH_MODE=token" in str(e.value)) == cluster and "\n" not in str(e.value)
    assert not (tmp_path / "toy").exists()
