"""One contract every lab gets for free (in the spirit of a shared scheduler test suite).

For each registered lab: its spec is complete, its package has the lab shape, its tiny demo (seconds, no
fetched data) writes every output its figures module registers (each figure with a caption and the command
that reproduces it), a second demo reuses the finished runs, every verb has ``--help``, and a bad ``--run``
is one line on stderr with exit status 2.
"""

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from genlab.cli import build_parser, main
from genlab.labs import all_labs
from genlab.train import TrainConfig

LABS = all_labs()
NAMES = [lab.name for lab in LABS]
SHAPE = ("__init__.py", "config.py", "core.py", "figures.py", "cli.py")


def _lab_verbs(name: str) -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    top = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    lab = top.choices[name]
    sub = next(a for a in lab._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _takes_run(p: argparse.ArgumentParser) -> bool:
    return any("--run" in a.option_strings for a in p._actions)


def test_labs_are_found_in_order():
    assert len(LABS) >= 4
    assert [lab.order for lab in LABS] == sorted(lab.order for lab in LABS)


@pytest.mark.parametrize("lab", LABS, ids=NAMES)
def test_spec_is_complete_and_package_has_the_lab_shape(lab):
    import importlib

    pkg = Path(importlib.import_module(f"genlab.labs.{lab.name}").__file__).parent
    assert [f for f in SHAPE if not (pkg / f).is_file()] == []
    assert lab.title and lab.story and len(lab.story) > 80
    assert issubclass(lab.Config, TrainConfig)
    assert lab.presets and all(isinstance(c, lab.Config) for c in lab.presets.values())
    assert callable(lab.demo) and callable(lab.register)
    names = [(f.kind, f.name) for f in lab.figures]  # a figure and its table may share a file stem
    assert names and len(names) == len(set(names))
    # in figures.py, or in a module of the lab's own package for a self-contained part (imagediff's compose.py)
    assert all(f.fn.__module__.startswith(f"genlab.labs.{lab.name}.") for f in lab.figures)
    assert any(f.fn.__module__ == f"genlab.labs.{lab.name}.figures" for f in lab.figures)


@pytest.mark.parametrize("lab", LABS, ids=NAMES)
def test_tiny_demo_writes_every_registered_output_and_is_reused(lab, tmp_path):
    runs = lab.demo(tmp_path, quick=True, device="cpu", quiet=True, reuse=True, tiny=True)
    assert runs
    _TINY_RUNS[lab.name] = runs  # the damaged-run test below works on copies of these
    made = {
        p.stem
        for r in runs
        for d in (r.figures_dir, r.tables_dir)
        if d.exists()
        for p in d.iterdir()
        if p.suffix in (".png", ".csv")
    }
    missing = [f.name for f in lab.figures if f.name not in made]
    assert missing == []
    for r in runs:
        for png in r.figures_dir.glob("*.png") if r.figures_dir.exists() else []:
            meta = json.loads(png.with_suffix(".json").read_text())
            assert meta.get("caption"), png
            assert meta.get("command", "").startswith(("genlab ", "python ")), png
    stamps = {r.path: r.last_checkpoint.stat().st_mtime_ns for r in runs if r.last_checkpoint.exists()}
    again = lab.demo(tmp_path, quick=True, device="cpu", quiet=True, reuse=True, tiny=True)
    assert [r.path for r in again] == [r.path for r in runs]
    assert {p: Run_mtime(p) for p in stamps} == stamps  # finished runs are reused, not retrained
    if lab.key_metrics is not None:
        rows = lab.key_metrics(again)
        assert all({"metric", "value", "reference"} <= set(r) for r in rows)


_TINY_RUNS: dict = {}


def Run_mtime(path: Path) -> int:
    return (path / "checkpoints" / "last.pt").stat().st_mtime_ns


@pytest.mark.parametrize("lab", LABS, ids=NAMES)
def test_every_verb_has_help(lab, capsys):
    verbs = _lab_verbs(lab.name)
    assert verbs
    for verb in verbs:
        assert main([lab.name, verb, "--help"]) == 0
        assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("lab", LABS, ids=NAMES)
def test_bad_run_is_one_line_and_exit_2(lab, tmp_path, capsys):
    other = tmp_path / "runs" / "x" / "other"
    other.mkdir(parents=True)
    (other / "config.json").write_text(json.dumps({"lab": "not-" + lab.name, "config": {}}))
    for verb, p in _lab_verbs(lab.name).items():
        if not _takes_run(p):
            continue
        for bad, words in ((tmp_path / "missing", "not a run folder"), (other, f"not a {lab.name} run")):
            code = main([lab.name, verb, "--run", str(bad)])
            err = capsys.readouterr().err
            assert code == 2, (verb, err)
            assert err.count("\n") == 1 and words in err, (verb, err)


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "the checkpoint ran code"))


def _damages(marker: Path):
    """Ways a run folder someone hands you can be broken: (name, file it breaks, how)."""
    return [
        ("config-not-json", "config.json", lambda p: p.write_bytes(b"\xff{ not json")),
        ("config-a-list", "config.json", lambda p: p.write_text("[1, 2, 3]")),
        (
            "config-wrong-types",
            "config.json",
            lambda p: p.write_text(json.dumps({"lab": p.parent.parent.name, "config": {"seed": "x"}})),
        ),
        ("checkpoint-empty", "checkpoints/last.pt", lambda p: p.write_bytes(b"")),
        ("checkpoint-truncated", "checkpoints/last.pt", lambda p: p.write_bytes(p.read_bytes()[:200])),
        ("checkpoint-random", "checkpoints/last.pt", lambda p: p.write_bytes(bytes(range(256)) * 8)),
        ("checkpoint-runs-code", "checkpoints/last.pt", lambda p: torch.save({"step": 1, "x": _RunsCode(marker)}, p)),
        (
            "checkpoint-other-model",
            "checkpoints/last.pt",
            lambda p: torch.save({"step": 1, "model": {"w": torch.ones(2)}, "ema": None}, p),
        ),
    ]


def _snapshot(folder: Path, skip: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file() and p != skip}


@pytest.mark.parametrize("lab", LABS, ids=NAMES)
def test_a_damaged_run_is_one_line_never_a_traceback_and_nothing_written_changes(lab, tmp_path, capsys):
    runs = _TINY_RUNS.get(lab.name) or lab.demo(tmp_path / "demo", device="cpu", quiet=True, tiny=True)
    source = next((r for r in runs if r.last_checkpoint.exists()), runs[0])
    marker = tmp_path / "pwned"
    verbs = [v for v, p in _lab_verbs(lab.name).items() if _takes_run(p)]
    tried = 0
    for name, rel, damage in _damages(marker):
        if not (source.path / rel).exists():
            continue
        case = tmp_path / name / lab.name / source.path.name
        shutil.copytree(source.path, case)
        for extra in ("checkpoints/prev.pt", "checkpoints/best.pt"):  # no intact fallback: the damage must show
            (case / extra).unlink(missing_ok=True)
        damage(case / rel)
        for verb in verbs:
            before = _snapshot(case, case / rel)  # a verb that succeeded before this one may have drawn figures
            code = main([lab.name, verb, "--run", str(case), "--quiet", "--device", "cpu"])
            err = capsys.readouterr().err
            tried += 1
            assert code in (0, 2), (name, verb, err)
            if code == 2:
                assert err.startswith("genlab: error:") and err.count("\n") == 1, (name, verb, err)
                assert _snapshot(case, case / rel) == before, (name, verb, "a failed command changed files")
        assert not marker.exists(), (name, "a checkpoint ran code")
    assert tried


def _numbers(runs) -> dict:
    """Every summary value of the runs except wall-clock timings (which measure the machine) and reuse counts
    (which say what an earlier call left behind)."""
    timing = ("seconds", "per_second", "per_s", "time", "reused")
    return {
        (r.path.name, k): v
        for r in runs
        for k, v in r.read_summary().items()
        if not any(t in k for t in timing) and not isinstance(v, (dict, list))
    }


@pytest.mark.parametrize("lab", LABS, ids=NAMES)
def test_the_same_config_and_seed_give_the_same_numbers(lab, tmp_path):
    first = _TINY_RUNS.get(lab.name) or lab.demo(tmp_path / "a", device="cpu", quiet=True, tiny=True)
    again = lab.demo(tmp_path / "b", device="cpu", quiet=True, reuse=False, tiny=True)
    assert _numbers(first) and _numbers(first) == _numbers(again)


# (lab, index of the tiny demo's run, verb and options, words the one-line error must hold)
BAD_INPUTS = [
    ("diffusion2d", 0, ["sample", "--n", "0"], "must be >= 1"),
    ("diffusion2d", 0, ["sample", "--n", "-5"], "must be >= 1"),
    ("diffusion2d", 0, ["sample", "--guidance", "nan"], "not a finite number"),
    ("diffusion2d", 0, ["sample", "--eta", "2"], "must be <= 1"),
    ("diffusion2d", 0, ["sample", "--sampler", "heum"], "unknown sampler 'heum'"),
    ("diffusion2d", 0, ["elbo", "--point=nan,nan"], "finite"),
    ("diffusion2d", 0, ["elbo", "--mc", "1"], "must be >= 2"),
    ("diffusion2d", 0, ["invert", "--point=inf,1"], "finite"),
    ("diffusion2d", 0, ["invert", "--steps", "0"], "must be >= 1"),
    ("textgen", 0, ["generate", "--temperature", "nan"], "not a finite number"),
    ("textgen", 0, ["generate", "--num-samples", "0"], "must be >= 1"),
    ("textgen", 0, ["generate", "--top-p", "0"], "must be > 0"),
    ("textgen", 0, ["score", "--text", ""], "empty text"),
    ("textgen", 0, ["attention", "--word", "0"], "must be >= 1"),
    ("textgen", 0, ["invert", "--steps", "0"], "must be >= 1"),
    ("textgen", 0, ["invert", "--every", "0"], "must be >= 1"),
    ("textgen", 0, ["invert", "--lr", "nan"], "not a finite number"),
    ("latent", 0, ["classify", "--labels", "0"], "must be >= 1"),
    ("latent", 0, ["classify", "--labels", "100000"], "larger than the training set"),
    ("latent", 0, ["cgan", "--digits", "0,11"], "bad digit '11'"),
    ("latent", 0, ["interpolate", "--pair", "0,999999"], "out of range"),
    ("sentiment", 2, ["explain", "🙂🙂🙂"], "no words"),
    ("sentiment", 0, ["explain", "a fine film"], "explain needs"),
    ("sentiment", 0, ["eval", "--csv", "/nonexistent.csv"], "not found"),
    ("imagediff", 0, ["sample", "--guidance", "-1"], "must be >= 0"),
    ("imagediff", 0, ["sample", "--out", "x.jpg"], "end it in .png"),
    ("theory", 0, ["figures", "--only", "nosuch"], "unknown output"),
]


@pytest.mark.parametrize("lab_name, index, argv, words", BAD_INPUTS, ids=[" ".join(c[2]) for c in BAD_INPUTS])
def test_bad_verb_input_is_one_line_and_exit_2(lab_name, index, argv, words, tmp_path, capsys):
    lab = next(lab for lab in LABS if lab.name == lab_name)
    runs = _TINY_RUNS.get(lab.name) or lab.demo(tmp_path, device="cpu", quiet=True, tiny=True)
    _TINY_RUNS[lab.name] = runs
    run = runs[index]
    before = _snapshot(run.path, run.path / "none")
    code = main([lab.name, argv[0], "--run", str(run.path), "--quiet", *argv[1:]])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("genlab: error:") and err.count("\n") == 1, err
    assert words in err, err
    assert _snapshot(run.path, run.path / "none") == before
