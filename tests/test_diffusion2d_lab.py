"""The 2D diffusion lab: data, denoiser, training, CLI verbs and figures (tiny sizes)."""

from __future__ import annotations

import json

import pytest
import torch

from genlab.cli import main
from genlab.data.toy2d import DATASETS, NUM_CLASSES, grid_class, in_support, make_toy2d, region
from genlab.diffusion import data_prior
from genlab.errors import ConfigError
from genlab.labs import draw, get_lab
from genlab.labs.diffusion2d import core, figures
from genlab.nn.denoisers import TIME_EMBEDDINGS, MLPDenoiser
from genlab.runs import Run

TINY = [
    "steps=40",
    "hidden=16",
    "depth=2",
    "n_points=200",
    "batch_size=200",
    "sample_steps=8",
    "eval_n=100",
    "log_every=5",
]


def _sets(pairs):
    return [a for p in pairs for a in ("--set", p)]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    argv = ["diffusion2d", "train", "--run-dir", str(root), "--name", "sq", "--quiet", *_sets(TINY)]
    assert main(argv) == 0
    return Run.open(root / "diffusion2d" / "sq")


@pytest.fixture(scope="module")
def tiny_grid_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert (
        main(
            ["diffusion2d", "train", "--preset", "grid", "--run-dir", str(root), "--name", "g", "--quiet", *_sets(TINY)]
        )
        == 0
    )
    return Run.open(root / "diffusion2d" / "g")


# ------------------------------------------------------------------------------------------------ data


@pytest.mark.parametrize("name", DATASETS)
def test_toy_datasets(name):
    d = make_toy2d(name, 300, seed=1)
    assert d.x.shape == (300, 2) and d.x.dtype == torch.float32
    assert torch.equal(d.x, make_toy2d(name, 300, seed=1).x)
    assert not torch.equal(d.x, make_toy2d(name, 300, seed=2).x)
    assert d.num_classes == NUM_CLASSES[name]
    if d.y is not None:
        assert set(d.y.tolist()) == set(range(d.num_classes))
        assert float((region(name, d.x) == d.y).float().mean()) > 0.95
    assert float(in_support(name, d.x).float().mean()) > 0.95


def test_grid_classes_match_the_labs_reference_points():
    pts = torch.tensor([[-0.66, 0.66], [0.66, -0.66], [0.0, 0.0], [1.5, 0.0]])
    assert grid_class(pts).tolist() == [2, 6, 4, -1]


def test_bad_dataset_is_one_line_error():
    with pytest.raises(ConfigError, match="unknown dataset 'sqare'"):
        make_toy2d("sqare")
    with pytest.raises(ConfigError, match="number of points"):
        make_toy2d("square", 0)


# -------------------------------------------------------------------------------------------- denoiser


@pytest.mark.parametrize("emb", TIME_EMBEDDINGS)
def test_denoiser_shapes_and_classes(emb):
    m = MLPDenoiser(2, 16, 2, time_embedding=emb, num_classes=3)
    x, t = torch.randn(5, 2), torch.rand(5)
    out = m(x, t, torch.tensor([0, 1, 2, 3, 0]))  # 3 is the null label
    assert out.shape == (5, 2) and m.null_label == 3
    assert torch.equal(m(x, t), m(x, t, torch.full((5,), 3)))  # no label = the null label
    zeros, ones = torch.zeros(5, dtype=torch.long), torch.ones(5, dtype=torch.long)
    assert not torch.allclose(m(x, t, zeros), m(x, t, ones))
    assert m(x, torch.tensor(0.5)).shape == (5, 2)


def _fit_sharp_field(x_features: int, steps: int = 150) -> float:
    """Final MSE of a tiny denoiser fitted to a field that oscillates 1.5 times across [-1, 1]^2."""
    torch.manual_seed(0)
    x = torch.rand(512, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    target = torch.stack([torch.sin(3 * torch.pi * x[:, 0]), torch.cos(3 * torch.pi * x[:, 1])], 1)
    t = torch.full((512,), 0.5)
    m = MLPDenoiser(2, 32, 2, x_features=x_features, seed=0)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    for _ in range(steps):
        loss = ((m(x, t) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def test_fourier_features_of_x_fit_sharp_structure_a_raw_mlp_cannot():
    """The spiral preset's fix: a raw-coordinate MLP is slow on sharp structure (spectral bias)."""
    m = MLPDenoiser(2, 16, 2, x_features=8, seed=3)
    assert m.x_freqs.shape == (2, 8) and m(torch.randn(5, 2), torch.rand(5)).shape == (5, 2)
    assert torch.equal(m.x_freqs, MLPDenoiser(2, 16, 2, x_features=8, seed=3).x_freqs)
    raw, feat = _fit_sharp_field(0), _fit_sharp_field(16)
    assert feat < 0.1 * raw, (raw, feat)


# --------------------------------------------------------------------------------------------- training


def test_training_is_deterministic_and_logs(tiny_run, tmp_path):
    assert main(["diffusion2d", "train", "--run-dir", str(tmp_path), "--name", "again", "--quiet", *_sets(TINY)]) == 0
    a = [r["loss"] for r in tiny_run.read_metrics() if "loss" in r]
    b = [r["loss"] for r in Run(tmp_path / "diffusion2d" / "again").read_metrics() if "loss" in r]
    assert a == b and len(a) == 8
    s = tiny_run.read_summary()
    for key in ("train_seconds", "energy_distance", "noise_floor", "distance_ratio", "in_support"):
        assert key in s


def test_conditional_run_reports_in_region(tiny_grid_run):
    s = tiny_grid_run.read_summary()
    assert 0 <= s["in_region"] <= 1
    tr = core.open_run(tiny_grid_run)
    assert tr.classes == 9 and tr.model.null_label == 9


def test_matched_prior_is_wider_than_sigma1(tiny_run):
    tr = core.open_run(tiny_run)
    assert tr.prior_std.shape == (1, 2)
    assert tr.prior_std[0].tolist() == pytest.approx([(1 + 1 / 3) ** 0.5] * 2, rel=0.05)
    mean, std = data_prior(tr.schedule, make_toy2d("square", 200).x, kind="sigma")
    assert std.tolist() == [[1.0, 1.0]] and mean.abs().max() == 0


def test_conditional_prior_is_per_class(tiny_grid_run):
    """Each class starts from a Gaussian centred on its own cell (alpha(1) = 1 for VE) and narrower than the
    all-data one; the null label, and ``prior=global``, give the all-data Gaussian."""
    tr = core.open_run(tiny_grid_run)
    assert tr.prior_mean.shape == (10, 2)
    centres = torch.tensor([[(c // 3 - 1) * 2 / 3, (c % 3 - 1) * 2 / 3] for c in range(9)])
    from genlab.data.toy2d import grid_class

    assert grid_class(centres).tolist() == list(range(9))  # the centres above are the cells' own
    assert torch.allclose(tr.prior_mean[:9], centres, atol=0.08)
    assert (tr.prior_std[:9] < tr.prior_std[9]).all()
    p = tr.prior(torch.tensor([4, 9]))
    assert torch.equal(p["prior_mean"][1], tr.prior_mean[9]) and p["prior_mean"].shape == (2, 2)
    assert torch.equal(tr.prior()["prior_std"], tr.prior_std[9:])
    data = make_toy2d("grid", tr.cfg.n_points, tr.cfg.data_seed)
    mean, std = data_prior(tr.schedule, data.x, data.y, tr.classes, kind="global")
    assert torch.allclose(mean, tr.prior_mean[9].expand(10, 2)) and torch.allclose(std, tr.prior_std[9:].expand(10, 2))


# ---------------------------------------------------------------------------------------------------- CLI


def test_sample_verb_writes_csv(tiny_run, tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert (
        main(
            [
                "diffusion2d",
                "sample",
                "--run",
                str(tiny_run.path),
                "--sampler",
                "heun",
                "--steps",
                "5",
                "--n",
                "50",
                "--seed",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    lines = out.read_text().splitlines()
    assert lines[0] == "x,y" and len(lines) == 51
    assert "energy distance" in capsys.readouterr().out


def test_conditional_sample_and_elbo_verbs(tiny_grid_run, tmp_path, capsys):
    out = tmp_path / "c.csv"
    assert (
        main(
            [
                "diffusion2d",
                "sample",
                "--run",
                str(tiny_grid_run.path),
                "--steps",
                "4",
                "--n",
                "20",
                "--label",
                "2",
                "--guidance",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert out.read_text().splitlines()[1].endswith(",2")
    assert (
        main(
            [
                "diffusion2d",
                "elbo",
                "--run",
                str(tiny_grid_run.path),
                "--point=-0.66,0.66",
                "--label",
                "2",
                "--mc",
                "16",
            ]
        )
        == 0
    )
    assert "ODE log p" in capsys.readouterr().out


def test_elbo_and_invert_verbs(tiny_run, capsys):
    assert (
        main(["diffusion2d", "elbo", "--run", str(tiny_run.path), "--point", "0,0", "--point", "4,-2", "--mc", "16"])
        == 0
    )
    text = capsys.readouterr().out
    assert "(0, 0)" in text and "(4, -2)" in text
    assert main(["diffusion2d", "invert", "--run", str(tiny_run.path), "--steps", "50"]) == 0
    s = tiny_run.read_summary()
    assert s["bonus_endpoint_error"] < 1e-2
    assert (tiny_run.figures_dir / "09_bonus_inversion.png").exists()
    meta = json.loads((tiny_run.figures_dir / "09_bonus_inversion.json").read_text())
    assert meta["command"] == f"genlab diffusion2d invert --run {tiny_run.path} --steps 50"
    assert main(["diffusion2d", "invert", "--run", str(tiny_run.path), "--steps", "20", "--point=-1,2.5"]) == 0
    meta = json.loads((tiny_run.figures_dir / "09_bonus_inversion.json").read_text())
    assert meta["command"].endswith("--point=-1,2.5 --steps 20") and "(-1.0, 2.5)" in meta["caption"]
    assert tiny_run.read_summary()["bonus_target"] == [-1.0, 2.5]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "--sampler", "heum"], "unknown sampler 'heum'"),
        (["sample", "--steps", "0"], "argument --steps: 0 is too small"),
        (["sample", "--grid", "log"], "unknown time grid 'log'"),
        (["elbo", "--point", "1,2,3"], "3 coordinates"),
        (["elbo", "--point", "a,b"], "bad point 'a,b'"),
        (["invert", "--point", "4"], "1 coordinates"),
        (["sample", "--label", "1"], "unconditional"),
    ],
)
def test_bad_input_is_one_line_error(tiny_run, capsys, argv, message):
    assert main(["diffusion2d", argv[0], "--run", str(tiny_run.path), *argv[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "pairs, message",
    [
        (["dataset=sqare"], "bad value 'sqare' for dataset"),
        (["schedule=vp"], "bad value 'vp' for schedule"),
        (["sample_steps=0"], "sample_steps"),
        (["conditional=true"], "has no classes"),
    ],
)
def test_bad_config_is_one_line_error(tmp_path, capsys, pairs, message):
    assert main(["diffusion2d", "train", "--run-dir", str(tmp_path), "--quiet", *_sets(pairs)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_missing_run_is_one_line_error(tmp_path, capsys):
    assert main(["diffusion2d", "figures", "--run", str(tmp_path / "nope")]) == 2
    assert "not a run folder" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ figures


def test_some_figures_on_a_tiny_run(tiny_run):
    tr = core.open_run(tiny_run, tiny=True)
    paths = [
        draw(fn, tr, tiny_run) for fn in (figures.fig_loss, figures.fig_forward_trajectory, figures.fig_same_noise)
    ]
    for p in paths:
        assert p.exists() and p.stat().st_size > 1000
        meta = json.loads(p.with_suffix(".json").read_text())
        assert meta["command"] == f"genlab diffusion2d figures --run {tiny_run.path}" and meta["caption"]
    assert json.loads(paths[2].with_suffix(".json").read_text())["data"]["ode_max_difference"] == 0.0


def test_figure_sets_follow_the_kind_of_run(tiny_run, tiny_grid_run):
    """The registry's when= predicates pick the unconditional, conditional or DDPM set."""
    specs = get_lab("diffusion2d").figures
    pick = {
        run.path.name: {s.name for s in specs if s.applies(core.open_run(run, tiny=True))}
        for run in (tiny_run, tiny_grid_run)
    }
    assert {"01_forward_trajectory", "steps_sweep", "08_elbo", "09_bonus_inversion"} <= pick["sq"]
    assert not any(n.startswith(("07", "s1", "s2", "s3")) or n == "guidance" for n in pick["sq"])
    assert {"07a_class_data", "07c_class_samples", "guidance", "08_elbo", "elbo_points"} <= pick["g"]
    assert not any(n.startswith(("01", "03", "04", "05", "06", "s")) for n in pick["g"])


def test_a_table_and_its_figure_share_one_sample_set(tiny_run):
    tr = core.open_run(tiny_run, tiny=True)
    rows = figures.table_steps_sweep(tr).rows
    assert [(r["grid"], r["steps"]) for r in rows] == [(g, s) for g in ("uniform", "edm") for s in (2, 5)]
    assert core.steps_sweep(tr) is core.steps_sweep(tr)  # computed once per opened run
    assert figures.fig_steps_sweep(tr).data["rows"] == rows


@pytest.mark.slow
def test_every_figure_on_tiny_runs(tiny_run, tiny_grid_run, tmp_path):
    for run in (tiny_run, tiny_grid_run):
        assert main(["diffusion2d", "figures", "--run", str(run.path), "--quiet"]) == 0
    names = {p.stem for p in tiny_run.figures_dir.glob("*.png")}
    assert {
        "01_forward_trajectory",
        "02_loss",
        "03_seed_grid",
        "04_steps_sweep",
        "05_samplers_schedules",
        "06_same_noise_trajectories",
        "08_elbo",
        "09_bonus_inversion",
    } <= names
    names = {p.stem for p in tiny_grid_run.figures_dir.glob("*.png")}
    assert {"07a_class_data", "07b_class_trajectories", "07c_class_samples", "08_elbo"} <= names
    assert "elbo_right_gt_wrong" in tiny_grid_run.read_summary()


@pytest.mark.slow
def test_ddpm_spiral_figures(tmp_path):
    assert (
        main(
            [
                "diffusion2d",
                "train",
                "--preset",
                "spiral",
                "--run-dir",
                str(tmp_path),
                "--name",
                "sp",
                "--quiet",
                *_sets(TINY + ["T=50"]),
            ]
        )
        == 0
    )
    run = Run.open(tmp_path / "diffusion2d" / "sp")
    assert main(["diffusion2d", "figures", "--run", str(run.path), "--quiet"]) == 0
    names = {p.stem for p in run.figures_dir.glob("*.png")}
    assert {"s1_ddpm_forward", "s2_ddpm_reverse", "s3_ddpm_x0_hat"} <= names


def test_key_metrics_report_the_checks(tiny_run):
    tiny_run.update_summary({"elbo_le_ode_within_se_all": False})
    rows = {r["metric"]: r["value"] for r in get_lab("diffusion2d").key_metrics([tiny_run])}
    name = tiny_run.path.name
    assert rows[f"{name}: ELBO <= ODE log p + se at the reference points"] == "no"
    assert f"{name}: sample distance / noise floor" in rows
