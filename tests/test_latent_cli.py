"""The ``genlab latent`` commands on scikit-learn's digits (tiny settings), and their one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from genlab.cli import main
from genlab.labs import latent

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
        (["latent", "classify", "--run", str(ae_run), "--labels", "100000", "--quiet"], "larger than the "
                                                                                        "training set"),
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
        latent.load_images("cifar")


@pytest.mark.slow
def test_demo_tiny_pipeline(tmp_path, monkeypatch):
    monkeypatch.setitem(latent.PRESETS, "quick", latent.PRESETS["tiny"])
    runs = latent.demo(tmp_path, quick=True, device="cpu", quiet=True)
    run = runs[0]
    names = {p.stem for p in run.figures_dir.glob("*.png")}
    assert {"reconstructions", "ae_loss", "few_label", "gan_samples", "gan_losses", "cgan_grid",
            "cgan_losses",
            "interpolation", "importance"} <= names
    s = run.read_summary()
    for key in ("judge_test_accuracy", "cgan_judge_agreement", "fd_cgan_vs_test", "few_label_codes_mlp_first",
                "receptive_field_117_case"):
        assert key in s
    assert s["receptive_field_117_case"] == {"output": 117, "receptive_field": 12}
    assert latent.demo(tmp_path, quick=True, device="cpu", quiet=True)[0].path == run.path  # reuse
