"""Autoencoder, latent GAN, judge, Frechet distance, receptive fields and region importance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from genlab.data.splits import label_indices
from genlab.errors import ConfigError
from genlab.labs.latent.cli import parse_digits, parse_pair
from genlab.nn import receptive_field as rf
from genlab.nn.autoencoder import CodeClassifier, ConvAutoencoder, EncoderClassifier, decode_codes, encode_all
from genlab.nn.gan import (
    JudgeCNN,
    LatentGAN,
    discriminator_loss,
    frechet_distance,
    generator_loss,
    judge_scores,
    matching_discriminator_loss,
)
from genlab.nn.saliency import gradient_map, occlusion_map


def test_autoencoder_shapes_and_training_reduces_bce():
    torch.manual_seed(0)
    ae = ConvAutoencoder(code_dim=8, noise_sigma=0.35)
    x = (torch.rand(16, 1, 32, 32) > 0.7).float()
    assert ae.encode(x).shape == (16, 8) and ae(x).shape == x.shape
    out = ae.decode(ae.encode(x))
    assert out.min() >= 0 and out.max() <= 1
    opt = torch.optim.Adam(ae.parameters(), 3e-3)
    first = ae.loss(x).item()
    for _ in range(15):
        loss = ae.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ae.loss(x).item() < first
    ae.eval()
    assert torch.equal(ae(x), ae(x))  # eval mode: no input noise, deterministic


def test_denoising_noise_only_in_training():
    ae = ConvAutoencoder(code_dim=4, noise_sigma=0.5)
    x = torch.full((2, 1, 32, 32), 0.5)
    noisy = ae.corrupt(x)
    assert not torch.equal(noisy, x) and noisy.min() >= 0 and noisy.max() <= 1
    assert torch.equal(ConvAutoencoder(code_dim=4, noise_sigma=0.0).corrupt(x), x)


def test_classifiers_and_encode_all():
    enc = EncoderClassifier(code_dim=6, num_classes=3, hidden=0)
    assert enc(torch.rand(5, 1, 32, 32)).shape == (5, 3)
    assert CodeClassifier(6, 3)(torch.rand(4, 6)).shape == (4, 3)
    codes = encode_all(enc.encoder, torch.rand(7, 1, 32, 32), batch=3)
    assert codes.shape == (7, 6)
    ae = ConvAutoencoder(code_dim=6).eval()
    z = torch.randn(5, 6)
    torch.testing.assert_close(decode_codes(ae, z, batch=2), ae.decode(z))  # batching changes nothing


def test_gan_losses_match_formulas():
    zero = torch.zeros(4)
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert generator_loss(zero).item() == pytest.approx(math.log(2))
    big = torch.full((4,), 20.0)
    assert discriminator_loss(big, -big).item() < 1e-6  # a perfect discriminator has ~0 loss
    assert generator_loss(-big).item() == pytest.approx(20.0, rel=1e-3)  # non-saturating: large, not flat
    assert matching_discriminator_loss(zero, zero, zero).item() == pytest.approx(2 * math.log(2))
    # a D that ignores the class (wrong-class real codes look real) is penalised
    assert matching_discriminator_loss(big, -big, big).item() > 9.9


def test_latent_gan_normalisation_and_conditioning():
    gan = LatentGAN(noise_dim=3, code_dim=5, num_classes=4)
    codes = torch.randn(100, 5) * 3 + 2
    gan.set_code_stats(codes)
    torch.testing.assert_close(gan.denormalise(gan.normalise(codes)), codes)
    assert gan.normalise(codes).mean(0).abs().max() < 1e-4
    y = torch.tensor([0, 3])
    assert gan.sample_codes(y=y).shape == (2, 5)
    assert gan.discriminator(torch.randn(2, 5), y).shape == (2,)
    with pytest.raises(ValueError):
        gan.generator(torch.randn(2, 3))


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-3)
    shift = np.array([1.0, 2.0, 0.0])
    assert frechet_distance(a, a + shift) == pytest.approx(5.0, abs=1e-2)
    # scaling one dimension by 2: trace term (1 + 4 - 2*2) = 1
    assert frechet_distance(a, a * np.array([2.0, 1, 1])) == pytest.approx(1.0, abs=0.1)


def test_judge_features():
    j = JudgeCNN(10)
    x = torch.rand(3, 1, 32, 32)
    assert j.features(x).shape == (3, 128) and j(x).shape == (3, 10)


class _FirstPixel(nn.Module):
    """A 'judge' whose class is 1 when the top-left pixel is inked, else 0; features: the first 4 pixels."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))  # judge_outputs finds the device from a parameter

    def features(self, x):
        return x[:, 0, 0, :4]

    def head(self, f):
        return torch.stack([0.5 - f[:, 0], f[:, 0] - 0.5], 1)

    def forward(self, x):
        return self.head(self.features(x))


def test_judge_scores_agreement_per_class_and_fd():
    torch.manual_seed(0)
    x = torch.rand(400, 1, 4, 4)
    x[:200, 0, 0, 0] = 0.0
    x[200:, 0, 0, 0] = 1.0
    judge = _FirstPixel()
    asked = torch.cat([torch.zeros(200), torch.ones(100), torch.zeros(100)]).long()  # the last 100 are wrong
    out = judge_scores(judge, x, judge.features(x), asked, num_classes=2)
    assert out["agreement"] == pytest.approx(0.75) and out["per_class"] == pytest.approx([2 / 3, 1.0])
    assert out["fd"] == pytest.approx(0.0, abs=1e-3)  # the same images: no distance
    assert "fd" not in judge_scores(judge, x) and "agreement" not in judge_scores(judge, x)


@pytest.mark.parametrize("stack, out, field", [(rf.EXAMPLE, 56, 18), (rf.EXAMPLE_STRIDE1_POOL, 117, 12)])
def test_receptive_field_example_against_torch(stack, out, field):
    rows = rf.stack_geometry(128, stack)
    assert rows[-1]["output"] == out and rows[-1]["receptive_field"] == field
    assert rf.measured_geometry(128, stack) == (out, field)
    y = rf.torch_stack(stack)(torch.zeros(1, 1, 128, 128))
    assert [r["output"] for r in rows][-1] == y.shape[-1]


def test_receptive_field_other_stacks_match_torch():
    stack = (rf.conv(3, 2, 1), rf.conv(5, 1, 2, dilation=1), rf.maxpool(3, 2), rf.conv(3, 2))
    for size in (17, 32, 45):
        rows = rf.stack_geometry(size, stack)
        assert rf.torch_stack(stack)(torch.zeros(1, 1, size, size)).shape[-1] == rows[-1]["output"]
    assert (
        rf.measured_geometry(40, rf.parse_stack("conv3,conv3/2,conv3"))[1]
        == rf.stack_geometry(40, rf.parse_stack("conv3,conv3/2,conv3"))[-1]["receptive_field"]
    )
    with pytest.raises(ConfigError, match="bad layer"):
        rf.parse_stack("conv3,pool")
    with pytest.raises(ConfigError, match="no output"):
        rf.stack_geometry(4, rf.EXAMPLE)


class _Corner(nn.Module):
    """Class 0's logit is the ink in the top-left 8x8 corner; class 1's is constant."""

    def forward(self, x):
        s = x[:, 0, :8, :8].sum((1, 2))
        return torch.stack([s, torch.full_like(s, 5.0)], 1)


def test_occlusion_and_gradient_find_the_region():
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, :8, :8] = 0.1  # class-0 logit 6.4 vs 5: hiding part of the corner flips the odds
    x[0, 0, 20:, 20:] = 1.0  # ink the model ignores
    occ = occlusion_map(_Corner(), x, torch.tensor([0]), patch=6, stride=2)[0]
    assert occ[:8, :8].mean() > 0.1 and abs(occ[20:, 20:]).max() < 1e-6
    grad = gradient_map(_Corner(), x, torch.tensor([0]))[0]
    assert grad[:8, :8].min() > 0 and grad[8:, :].max() == 0


def test_label_draws_and_bad_input():
    y = torch.arange(200) % 10
    assert label_indices(y, 50, "first", 0).tolist() == list(range(50))
    assert label_indices(y, 50, "first", 1).tolist() == list(range(50, 100))
    bal = label_indices(y, 50, "balanced", 0, seed=1)
    assert torch.bincount(y[bal], minlength=10).tolist() == [5] * 10
    assert not torch.equal(bal, label_indices(y, 50, "balanced", 1, seed=1))
    with pytest.raises(ConfigError, match="larger than the training set"):
        label_indices(y, 201, "first", 0)
    with pytest.raises(ConfigError, match="digits must be integers in 0-9"):
        parse_digits("3,10")
    assert parse_digits("0, 7") == (0, 7)
    with pytest.raises(ConfigError, match="--pair"):
        parse_pair("1")


def test_label_spreading_follows_the_clusters():
    from genlab.nn.label_spreading import LabelSpreading, nearest

    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]])
    y = torch.arange(3).repeat_interleave(60)
    z = centres[y] + 0.5 * torch.randn(180, 3, generator=gen)
    graph = LabelSpreading(z, k=6)
    labelled = torch.tensor([0, 60, 120])  # one label per cluster
    scores = graph.spread(labelled, y[labelled], 3)
    assert (scores.argmax(1) == y).float().mean() > 0.97
    new = centres + 0.1
    assert graph.predict(scores, nearest(new, z, 6)).tolist() == [0, 1, 2]


def test_label_draws_and_random_batches():
    from genlab.data.splits import label_draws, random_batches

    y = torch.arange(100) % 10
    draws = label_draws(y, 20, ("first", "balanced"), 2, seed=3)
    assert list(draws) == [("first", 0), ("first", 1), ("balanced", 0), ("balanced", 1)]
    assert torch.equal(draws[("balanced", 1)], label_indices(y, 20, "balanced", 1, 3))
    x = torch.arange(10.0).view(10, 1)
    torch.manual_seed(0)
    xb, yb = random_batches(x, x[:, 0].long() * 2, batch_size=6)(1)
    assert xb.shape == (6, 1) and torch.equal(yb, xb[:, 0].long() * 2)  # the same rows of each tensor
    assert random_batches(x, batch_size=4)(0).shape == (4, 1)  # one tensor: a tensor


def test_load_subset_is_cached_and_cut():
    from genlab.data.images import load_subset

    d = load_subset("digits", "", 100, 30)
    assert len(d.train_x) == 100 and len(d.test_x) == 30 and load_subset("digits", "", 100, 30) is d


def test_few_label_probes_rows_and_trained_head():
    from genlab.nn.few_label import CodeProbes, accuracy, classify_step, draw_rows, standardise

    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]]) + 10
    y, ty = torch.arange(3).repeat_interleave(50), torch.arange(3).repeat_interleave(10)
    z, tz = standardise(centres[y] + 0.5 * torch.randn(150, 3, generator=gen), centres[ty])
    assert z.mean(0).abs().max() < 1e-5 and torch.allclose(z.std(0), torch.ones(3))
    idx = torch.tensor([0, 50, 100])
    probes = CodeProbes(z, tz, [idx], points=60, k=5, seed=0)
    assert probes.nodes >= 60 and (probes.position[idx] >= 0).all()
    acc = probes.accuracies(idx, y[idx], ty, 3)
    assert list(acc) == ["logistic regression", "k-NN (cosine, k=1)", "label spreading (k-NN graph)"]
    assert min(acc.values()) == 1.0  # three well-separated clusters, one label each
    head = nn.Linear(3, 3)
    opt = torch.optim.Adam(head.parameters(), 0.1)
    for _ in range(50):
        losses = classify_step(head, (z, y))
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
    assert losses["train_acc"] == 1.0 and accuracy(head, tz, ty, batch=7) == 1.0
    rows = draw_rows({("first 3", "a"): [0.5, 1.0], ("first 3", "b"): [1.0]})
    assert rows[0] == {
        "labels": "first 3",
        "method": "a",
        "mean_test_acc": 0.75,
        "std": 0.25,
        "min": 0.5,
        "max": 1.0,
        "per_draw": "0.500 1.000",
    }
    assert [r["method"] for r in rows] == ["a", "b"]


def test_gan_step_trains_and_batches_match_the_model():
    from genlab.nn.gan import gan_batches, gan_step

    torch.manual_seed(0)
    gan = LatentGAN(noise_dim=3, code_dim=4, num_classes=2)
    real, labels = torch.randn(50, 4), torch.arange(50) % 2
    batch = gan_batches(gan, real, labels, 8)(1)
    assert [t.shape for t in batch] == [(8, 4), (8,), (8, 3), (8,)]
    assert batch[1].max() <= 1 and batch[3].max() <= 1
    assert gan_batches(LatentGAN(3, 4), real, None, 8)(1)[1] is None
    opts = {
        "d": torch.optim.SGD(gan.discriminator.parameters(), 0.1),
        "g": torch.optim.SGD(gan.generator.parameters(), 0.1),
    }
    order = []

    def optimize(name, loss):
        order.append(name)
        opts[name].zero_grad()
        loss.backward()
        opts[name].step()

    before = [p.clone() for p in gan.parameters()]
    out = gan_step(gan, batch, optimize, matching=True)
    assert order == ["d", "g"] and set(out) == {"d_loss", "g_loss", "D(real)", "D(fake)"}
    assert all(not torch.equal(a, b) for a, b in zip(before, gan.parameters()) if a.dim() > 1)


def test_judge_verdicts_and_latent_gan_report():
    from genlab.nn.gan import judge_latent_gans, judge_verdicts, midpoint_confidence

    torch.manual_seed(0)
    x = torch.rand(8, 1, 4, 4)
    conf, cls = judge_verdicts(_FirstPixel(), x)
    assert torch.equal(cls, (x[:, 0, 0, 0] > 0.5).long()) and (conf >= 0.5).all()
    ae, judge = ConvAutoencoder(code_dim=4).eval(), JudgeCNN(3).eval()
    gan, cgan = LatentGAN(2, 4), LatentGAN(2, 4, num_classes=3)
    images, labels = torch.rand(30, 1, 32, 32), torch.arange(30) % 3
    gen = torch.Generator().manual_seed(0)
    out = judge_latent_gans(judge, ae, (images, labels), images, gan=gan, cgan=cgan, n=20, generator=gen)
    assert out["fd_samples"] == 20 and out["fd_train_vs_test"] == pytest.approx(0.0, abs=1e-3)  # same images
    assert len(out["cgan_judge_agreement_per_class"]) == 3 and 0 <= out["cgan_judge_agreement"] <= 1
    assert {"fd_gan_vs_test", "fd_diag_gaussian_codes_vs_test", "fd_reconstructions_vs_test"} <= set(out)
    assert "fd_gan_vs_test" not in judge_latent_gans(judge, ae, (images, labels), images, n=20)
    conf = midpoint_confidence(ae, gan, judge, images, 5, torch.Generator().manual_seed(0))
    assert list(conf) == ["ae_endpoint", "ae_midpoint", "gan_midpoint"] and all(1 / 3 <= v <= 1 for v in conf.values())


def test_straight_paths_and_reconstruction_errors():
    from genlab.nn.autoencoder import reconstruction_errors, straight_path
    from genlab.nn.gan import interpolation_rows

    a, b = torch.zeros(2, 3), torch.ones(2, 3)
    path = straight_path(a, b, 5)
    assert path.shape == (5, 2, 3) and torch.equal(path[0], a) and torch.equal(path[-1], b)
    assert torch.allclose(path[2], torch.full((2, 3), 0.5))
    ae = ConvAutoencoder(code_dim=4).eval()
    x = torch.rand(7, 1, 32, 32)
    err = reconstruction_errors(ae, x, batch=3)
    with torch.no_grad():
        assert err["bce"] == pytest.approx(ae.loss(x).item(), rel=1e-5)
    rows = interpolation_rows(ae, LatentGAN(2, 4).eval(), x[0], x[1], torch.randn(2, 2), 4)
    assert list(rows) == ["pixels", "ae", "gan"] and all(r.shape == (4, 1, 32, 32) for r in rows.values())
    torch.testing.assert_close(rows["pixels"][-1], x[1])


def test_geometry_table_and_plot_helpers():
    from genlab import plots

    rows = rf.geometry_table(128, {"stride 1": rf.EXAMPLE_STRIDE1_POOL}, key="pooling")
    assert rows[0]["pooling"] == "stride 1" and rows[0]["measured_output"] == ""
    assert (rows[-1]["measured_output"], rows[-1]["measured_receptive_field"]) == (117, 12)
    fig, axes = plots.image_rows({"a": torch.rand(3, 1, 8, 8), "b": torch.rand(3, 1, 8, 8)}, size=(4, 2))
    assert len(axes) == 2 and axes[1].get_ylabel() == "b"
    plots.grid_text(axes[0], ["x", "y", "z"], 10, 12, along="cols")
    assert [t.get_position() for t in axes[0].texts] == [(7.0, 12), (17.0, 12), (27.0, 12)]
    fig, ax = plots.figure()
    bars = [{"g": g, "s": s, "v": 0.5, "e": 0.1} for g in ("one", "two") for s in ("p", "q", "r")]
    plots.grouped_bars(ax, bars, "g", "s", "v", "e", tick=str.upper)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ONE", "TWO"] and len(ax.patches) == 6
    im = plots.heatmap(ax, np.array([[-2.0, 1.0], [0.0, 0.5]]), cmap="RdBu_r", symmetric=True, outline=np.eye(2))
    assert im.get_clim() == (-2.0, 2.0)
