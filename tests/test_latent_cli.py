"""The ``genlab latent`` commands on scikit-learn's digits (tiny settings), and their one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from genlab.cli import main
from genlab.data.images import load_images
from genlab.labs import latent
from genlab.labs.latent import core
from genlab.labs.latent.figures import key_metrics
from genlab.runs import Run

TINY = ["--preset", "tiny", "--quiet", "--device", "cpu", "--set", "steps=12", "--set", "batch_size=32"]


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert main(["latent", "ae", *TINY, "--run-dir", str(root), "--name", "t"]) == 0
    return root / "latent" / "t"


def test_ae_writes_run_and_figures(ae_run):
    assert (ae_run / "checkpoints" / "last.pt").exists()
    assert (ae_run / "figures" / "reconstructions.png").exists()
    meta = json.loads((ae_run / "figures" / "reconstructions.json").read_text())
    assert meta["command"].startswith("genlab latent figures --run")
    assert len(meta["data"]["mse_per_image"]) == 12
    summary = json.loads((ae_run / "summary.json").read_text())
    assert summary["dataset"] == "digits" and summary["ae_test_bce"] > 0


def test_same_seed_same_autoencoder(tmp_path):
    for name in ("a", "b"):
        argv = ["latent", "ae", *TINY, "--set", "steps=3", "--run-dir", str(tmp_path), "--name", name]
        assert main(argv) == 0
    wa = torch.load(tmp_path / "latent" / "a" / "checkpoints" / "last.pt", weights_only=False)["model"]
    wb = torch.load(tmp_path / "latent" / "b" / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_gan_and_interpolate(ae_run):
    assert main(["latent", "gan", "--run", str(ae_run), "--quiet", "--set", "gan_steps=5"]) == 0
    assert (ae_run / "figures" / "gan_samples.png").exists()
    assert (ae_run / "stages" / "gan" / "metrics.jsonl").exists()
    assert main(["latent", "interpolate", "--run", str(ae_run), "--pair", "3,4", "--quiet"]) == 0
    meta = json.loads((ae_run / "figures" / "interpolation.json").read_text())
    assert meta["data"]["pair"] == [3, 4] and "--pair 3,4" in meta["command"]


def test_bad_inputs_are_one_line_errors(ae_run, tmp_path, capsys):
    cases = [
        (["latent", "cgan", "--run", str(ae_run), "--digits", "3,12", "--quiet"], "bad digit '12'"),
        (["latent", "classify", "--run", str(ae_run), "--labels", "100000", "--quiet"], "larger than the training set"),
        (["latent", "ae", "--set", "dataset=mnst", "--run-dir", str(tmp_path)], "dataset"),
        (["latent", "interpolate", "--run", str(ae_run), "--pair", "0,99999", "--quiet"], "out of range"),
        (["latent", "figures", "--run", str(tmp_path / "nope")], "not a run folder"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, err
    assert main(["latent", "ae", "--bogus"]) == 2


def test_unknown_dataset_in_api():
    from genlab.errors import DataError

    with pytest.raises(DataError, match="unknown dataset"):
        load_images("cifar")


def test_demo_tiny_pipeline(tmp_path):
    run = latent.demo(tmp_path, quick=True, device="cpu", quiet=True, tiny=True)[0]
    names = {p.stem for p in run.figures_dir.glob("*.png")}
    assert {
        "reconstructions",
        "ae_loss",
        "few_label",
        "gan_samples",
        "gan_losses",
        "cgan_grid",
        "cgan_losses",
        "interpolation",
        "importance",
        "accuracy_per_epoch",
    } <= names
    assert {p.stem for p in run.tables_dir.glob("*.csv")} == {"few_label", "architecture_search", "receptive_field"}
    s = run.read_summary()
    for key in (
        "judge_test_accuracy",
        "cgan_judge_agreement",
        "fd_cgan_vs_test",
        "few_label_codes_mlp_first",
        "receptive_field_117_case",
        "interp_judge_confidence_ae_midpoint",
        "search_best_test_acc",
        "acc_per_epoch_codes_last",
    ):
        assert key in s
    assert s["receptive_field_117_case"] == {"output": 117, "receptive_field": 12}
    assert Run(run.path / "stages" / "gan").finished and Run(run.path / "stages" / "judge").finished
    stamp = (run.path / "stages" / "cgan" / "checkpoints" / "last.pt").stat().st_mtime_ns
    searched = core.results_path(run, "search").stat().st_mtime_ns
    assert latent.demo(tmp_path, quick=True, device="cpu", quiet=True, tiny=True)[0].path == run.path  # reuse
    assert (run.path / "stages" / "cgan" / "checkpoints" / "last.pt").stat().st_mtime_ns == stamp  # not retrained
    assert core.results_path(run, "search").stat().st_mtime_ns == searched  # the search is not run again


def test_key_metrics_reads_the_few_label_count(tmp_path):
    run = Run.create("latent", core.PRESETS["tiny"], name="k", root=tmp_path)
    method = "codes + MLP"
    run.update_summary(
        {
            "few_label_labels": 100,
            f"few_label/first 50/{method}": {"mean": 0.5, "std": 0.0},
            f"few_label/first 100/{method}": {"mean": 0.8, "std": 0.0},
        }
    )
    rows = [r for r in key_metrics([run]) if method in r["metric"]]
    assert [(r["metric"].split(",")[0], r["value"]) for r in rows] == [("100 labels", 0.8)]
