"""The latent lab's report items: the classifier-architecture search on frozen codes (chosen by cross-validation,
never by the test set), test accuracy per epoch, and the autoencoder's differences from the course's starter."""

from __future__ import annotations

import json
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genlab.cli import main
from genlab.errors import ConfigError
from genlab.labs.latent import classifiers, core, figures
from genlab.labs.latent.config import AE_VS_COURSE, PRESETS
from genlab.nn.autoencoder import CodeClassifier, ConvAutoencoder
from genlab.nn.few_label import Stacked, fold_masks, masked_step, stacked_scores
from genlab.runs import Run


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    """A tiny autoencoder run on the 8x8 digits (made through the API; the CLI's ``ae`` has its own tests)."""
    cfg = PRESETS["tiny"].update({"steps": 8, "batch_size": 32})
    run = Run.create("latent", cfg, name="t", root=tmp_path_factory.mktemp("runs"))
    core.train_autoencoder(run, cfg, device=torch.device("cpu"), quiet=True)
    return run.path


# ------------------------------------------------------------------------------------------- the library


def test_stacked_copies_train_exactly_as_they_would_alone():
    torch.manual_seed(0)
    x, y = torch.randn(30, 6), torch.randint(0, 3, (30,))
    mask = (torch.rand(3, 30) < 0.7).float()
    make = partial(CodeClassifier, 6, 3, (5, 4), dropout=0.0, activation="tanh")
    stacked = Stacked(make, 3)
    alone = []
    for c in range(3):
        m = make()
        m.load_state_dict({k: w[c].detach().clone() for k, w in zip(stacked.names, stacked.stacked)})
        alone.append(m)
    opt = torch.optim.AdamW(stacked.parameters(), 1e-2)
    for _ in range(20):
        opt.zero_grad()
        masked_step(stacked, (x, y, mask))["loss"].backward()
        opt.step()
    for c, m in enumerate(alone):
        o, rows = torch.optim.AdamW(m.parameters(), 1e-2), mask[c].bool()
        for _ in range(20):
            o.zero_grad()
            F.cross_entropy(m(x[rows]), y[rows]).backward()
            o.step()
        for w, (_, p) in zip(stacked.stacked, m.named_parameters()):
            assert torch.allclose(w[c], p, atol=1e-5)
        acc = (m.eval()(x).argmax(1) == y).float().mean()
        assert stacked_scores(stacked, x, y)["acc"][c] == pytest.approx(float(acc))


def test_stacked_refuses_buffers():
    with pytest.raises(ValueError, match="buffers"):
        Stacked(lambda: nn.BatchNorm1d(3), 2)


@pytest.mark.parametrize(
    "labels", [torch.arange(50) % 10, torch.zeros(12, dtype=torch.long).index_fill(0, torch.arange(3), 1)]
)
def test_fold_masks_validate_each_example_once(labels):
    train, val = fold_masks(labels, 3, seed=1)
    assert train.shape == val.shape == (4, len(labels))
    assert torch.equal(val[:3].sum(0), torch.ones(len(labels)))  # each example validated exactly once
    assert torch.equal(train[:3] + val[:3], torch.ones(3, len(labels)))  # a copy never trains on its fold
    assert torch.equal(train[3], torch.ones(len(labels))) and val[3].sum() == 0
    if len(labels) == 50:  # five of each class: every fold holds one or two of each
        for f in range(3):
            counts = torch.bincount(labels[val[f].bool()], minlength=10)
            assert counts.min() >= 1 and counts.max() <= 2


def test_fold_masks_bad_folds_is_a_config_error():
    with pytest.raises(ConfigError, match="search_folds"):
        fold_masks(torch.arange(4), 5)


def test_code_classifier_depths_and_activations():
    assert isinstance(CodeClassifier(8, 3, 0).net, nn.Linear)
    deep = CodeClassifier(8, 3, (16, 16, 4), activation="gelu")
    linears = [m for m in deep.net if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [16, 16, 4, 3]
    assert sum(isinstance(m, nn.GELU) for m in deep.net) == 3
    with pytest.raises(ConfigError, match="unknown activation 'swish'"):
        CodeClassifier(8, 3, 4, activation="swish")


# ---------------------------------------------------------------------------------------------- the grid


def test_search_grid():
    cfg = PRESETS["tiny"].update(
        {"search_widths": (8, 32), "search_depths": (0, 1, 2), "search_activations": ("relu", "tanh")}
    )
    grid = classifiers.search_grid(cfg)
    assert len(grid) == 1 + 2 * 2 * 2
    assert grid[0] == {"name": "linear", "hidden": (), "activation": "none"}
    assert {g["hidden"] for g in grid} == {(), (8,), (32,), (8, 8), (32, 32)}
    assert len({g["name"] for g in grid}) == len(grid)
    with pytest.raises(ConfigError, match="search_widths is empty"):
        classifiers.search_grid(cfg.update({"search_widths": ()}))
    with pytest.raises(ConfigError, match="unknown activation in search_activations 'swish'"):
        classifiers.search_grid(cfg.update({"search_activations": ("relu", "swish")}))


# -------------------------------------------------------------------------------------------- the search


def test_search_chooses_on_validation_alone(ae_run, monkeypatch):
    """The same labelled images with the test labels scrambled: the same rows and choice, other test numbers."""
    run = Run(ae_run)
    cfg = run.config(core.LatentConfig).update({"clf_steps": 15})
    ae = core.load_autoencoder(run, torch.device("cpu"))
    first = classifiers.architecture_search(run, ae, cfg, device=torch.device("cpu"), quiet=True)
    rows = first["rows"]
    assert len(rows) == len(classifiers.search_grid(cfg)) and sum(r["chosen"] for r in rows) == 1
    best = max(rows, key=lambda r: (r["cv_acc"], -r["cv_ce"], -r["weights"]))
    assert first["best"] == best and best["chosen"]
    assert json.loads(core.results_path(run, "search").read_text())["best"] == best

    real = core.load_data

    def scrambled(c):
        data = real(c)
        data.test_y = data.test_y[torch.randperm(len(data.test_y), generator=torch.Generator().manual_seed(3))]
        return data

    monkeypatch.setattr(classifiers, "load_data", scrambled)
    again = classifiers.architecture_search(run, ae, cfg, device=torch.device("cpu"), quiet=True)
    strip = [{k: v for k, v in r.items() if k != "test_acc"} for r in again["rows"]]
    assert strip == [{k: v for k, v in r.items() if k != "test_acc"} for r in rows]
    assert [r["test_acc"] for r in again["rows"]] != [r["test_acc"] for r in rows]


def test_search_verb_table_and_errors(ae_run, capsys):
    argv = ["latent", "search", "--run", str(ae_run), "--quiet", "--set", "clf_steps=5", "--set", "search_folds=2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "chosen by 2-fold cross-validation on 50 labels" in out
    md = (ae_run / "tables" / "architecture_search.md").read_text()
    assert md.count("<- chosen") == 1 and "choosing on the test set" in md
    s = json.loads((ae_run / "summary.json").read_text())
    assert s["search_configurations"] == 5 and 0 <= s["search_best_test_acc"] <= 1
    before = sorted(p.name for p in (ae_run / "stages" / "search").iterdir())
    for bad, needle in (
        (["--set", "search_activations=relu,swish"], "unknown activation in search_activations 'swish'"),
        (["--set", "search_folds=99"], "search_folds"),
        (["--labels", "100000"], "larger than the training set"),
    ):
        assert main(["latent", "search", "--run", str(ae_run), "--quiet", *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in (ae_run / "stages" / "search").iterdir()) == before


# ------------------------------------------------------------------------------------- accuracy per epoch


def test_accuracy_per_epoch_ends_at_the_tables_value(ae_run):
    argv = ["latent", "classify", "--run", str(ae_run), "--quiet", "--draws", "1"]
    over = ["--set", "clf_steps=12", "--set", "curve_points=4", "--set", "curve_test=0"]
    assert main([*argv, *over]) == 0
    meta = json.loads((ae_run / "figures" / "accuracy_per_epoch.json").read_text())
    codes, scratch = meta["data"]["codes"], meta["data"]["scratch"]
    assert codes["epoch"] == scratch["epoch"] == [3, 6, 9, 12]
    table = json.loads(core.results_path(Run(ae_run)).read_text())["rows"]
    draw0 = {r["method"]: float(r["per_draw"].split()[0]) for r in table if r["labels"].startswith("first")}
    assert codes["test_acc"][-1] == pytest.approx(draw0["codes + MLP"], abs=6e-4)
    assert scratch["test_acc"][-1] == pytest.approx(draw0["from scratch: encoder + MLP"], abs=6e-4)
    assert "an epoch is one step" in meta["caption"]


def test_no_logged_curves_no_figure(ae_run, tmp_path):
    o = core.open_run(Run(ae_run), torch.device("cpu"))
    empty = core.Opened(Run(tmp_path), o.cfg, o.data, o.ae)
    assert classifiers.logged_curves(empty) == {} and not figures.fig_accuracy_per_epoch.spec.applies(empty)


# -------------------------------------------------------------------------- the autoencoder vs the course


def test_deviations_from_the_starter_match_the_model():
    ae = ConvAutoencoder(64, noise_sigma=0.35)
    enc = {m.kernel_size for m in ae.encoder.modules() if isinstance(m, nn.Conv2d)}
    dec = {m.kernel_size for m in ae.decoder.modules() if isinstance(m, nn.ConvTranspose2d)}
    assert len(enc) == len(dec) == 1
    (ek, _), (dk, _) = enc.pop(), dec.pop()
    assert f"{ek}x{ek} convolutions in the encoder" in AE_VS_COURSE
    assert f"{dk}x{dk} transposed convolutions in the decoder" in AE_VS_COURSE
    slopes = {m.negative_slope for m in ae.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2} and "LeakyReLU(0.2)" in AE_VS_COURSE
    assert any(isinstance(m, nn.BatchNorm2d) for m in ae.encoder.modules()) and "BatchNorm" in AE_VS_COURSE
    from genlab.labs.latent import SPEC

    assert "BatchNorm" in SPEC.story and "LeakyReLU" in SPEC.story and "kernels" in SPEC.story
