"""The image diffusion lab: U-Net shapes and conditioning, text encoders, captions, guidance, the CLI's errors.

Everything runs on generated data or scikit-learn's 8x8 digits with the hashing text encoder: seconds, no
fetched data.
"""

import numpy as np
import pytest
import torch

from genlab.cli import main
from genlab.data.captions import make_captions
from genlab.data.text_encoder import encode
from genlab.errors import ConfigError
from genlab.labs.imagediff import core
from genlab.labs.imagediff.config import PRESETS
from genlab.nn.bert import BertEncoder, mean_pool
from genlab.nn.unet import Cond, UNet
from genlab.runs import Run


def _cond(b, dim=12, t=5):
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[0, 3:] = False
    return Cond(torch.randn(b, dim), torch.randn(b, t, dim), mask, torch.zeros(b, dtype=torch.bool))


def test_unet_shapes_zero_init_and_condition_paths():
    torch.manual_seed(0)
    m = UNet(widths=(8, 16, 16), attn=(1, 2), vec_dim=12, token_dim=12)
    x, t = torch.randn(4, 1, 16, 16), torch.rand(4)
    assert torch.equal(m(x, t, _cond(4)), torch.zeros(4, 1, 16, 16))  # zero-initialised output layer
    for p in m.parameters():  # make every path matter
        torch.nn.init.normal_(p, std=0.2)
    c = _cond(4)
    out = m(x, t, c)
    assert out.shape == x.shape and torch.isfinite(out).all()
    # the prompt changes the output; a dropped prompt ignores it (vector and tokens)
    other = Cond(torch.randn(4, 12), torch.randn(4, 5, 12), c.mask, c.drop)
    assert not torch.allclose(out, m(x, t, other))
    drop = torch.ones(4, dtype=torch.bool)
    assert torch.allclose(m(x, t, c.dropped(drop)), m(x, t, other.dropped(drop)), atol=1e-6)
    # padding tokens are ignored
    c2 = Cond(c.vec, c.tokens.clone(), c.mask, c.drop)
    c2.tokens[0, 3:] = 99.0
    assert torch.allclose(m(x, t, c)[0], m(x, t, c2)[0], atol=1e-5)
    # batch independence (GroupNorm, attention per image)
    assert torch.allclose(m(x[:2], t[:2], c.index(torch.arange(2))), out[:2], atol=1e-5)


def test_unet_class_and_unconditional_variants():
    m = UNet(widths=(8, 16), attn=(), vec_dim=10)
    assert m(torch.randn(3, 1, 8, 8), torch.rand(3), Cond(torch.eye(10)[:3])).shape == (3, 1, 8, 8)
    u = UNet(widths=(8, 16), attn=(1,))
    assert u(torch.randn(2, 1, 8, 8), torch.rand(2)).shape == (2, 1, 8, 8)


def test_captions_have_held_out_phrasings_per_class():
    for name in ("mnist", "fashion"):
        caps = make_captions(name)
        assert len(set(caps.texts)) == len(caps.texts)
        for y in range(10):
            train, held = caps.of(y), caps.of(y, heldout=True)
            assert len(train) >= 8 and len(held) >= 3
            assert not set(caps.texts[i] for i in train) & set(caps.texts[i] for i in held)
    caps = make_captions("mnist")
    assert "a drawing of an eight" in caps.texts and "a eight" not in " ".join(caps.texts)
    assert caps.label_of("a handwritten 7") == 7


def test_hash_encoder_is_deterministic_and_padded():
    a = encode(["a handwritten 7", "the digit seven, by hand"], "hash")
    b = encode(["the digit seven, by hand"], "hash")
    assert torch.equal(a.vec[1], b.vec[0])
    assert a.tokens.shape[1] == a.mask.sum(1).max() and a.mask[0].sum() < a.mask[1].sum()
    assert torch.allclose(a.vec.norm(dim=1), torch.ones(2))
    with pytest.raises(ConfigError):
        encode(["x"], "nope")


def test_bert_reader_matches_a_reference_attention_block(tmp_path):
    """The MiniLM reader builds a BERT from a config + safetensors; checked against a hand-written layer."""
    import json

    from safetensors.torch import save_file

    torch.manual_seed(0)
    d, ff, heads = 8, 16, 2
    w = {
        "embeddings.word_embeddings.weight": torch.randn(20, d),
        "embeddings.position_embeddings.weight": torch.randn(10, d),
        "embeddings.token_type_embeddings.weight": torch.randn(2, d),
        "embeddings.LayerNorm.weight": torch.ones(d),
        "embeddings.LayerNorm.bias": torch.zeros(d),
    }
    p = "encoder.layer.0."
    for n, shape in [
        ("attention.self.query", (d, d)),
        ("attention.self.key", (d, d)),
        ("attention.self.value", (d, d)),
        ("attention.output.dense", (d, d)),
        ("intermediate.dense", (ff, d)),
        ("output.dense", (d, ff)),
    ]:
        w[p + n + ".weight"] = torch.randn(shape) * 0.3
        w[p + n + ".bias"] = torch.randn(shape[0]) * 0.1
    for n in ("attention.output.LayerNorm", "output.LayerNorm"):
        w[p + n + ".weight"], w[p + n + ".bias"] = torch.ones(d), torch.zeros(d)
    save_file(w, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "vocab_size": 20,
                "hidden_size": d,
                "num_hidden_layers": 1,
                "num_attention_heads": heads,
                "intermediate_size": ff,
                "max_position_embeddings": 10,
            }
        )
    )
    model = BertEncoder.from_folder(tmp_path)
    ids, mask = torch.tensor([[1, 5, 7, 0]]), torch.tensor([[True, True, True, False]])
    ln = lambda z: torch.nn.functional.layer_norm(z, (d,), eps=1e-12)  # noqa: E731
    lin = lambda z, n: z @ w[p + n + ".weight"].T + w[p + n + ".bias"]  # noqa: E731
    h = ln(
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:4]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    q, k, v = (
        lin(h, f"attention.self.{n}").view(1, 4, heads, d // heads).transpose(1, 2) for n in ("query", "key", "value")
    )
    s = (q @ k.transpose(-1, -2)) / (d // heads) ** 0.5 + torch.where(mask, 0.0, -1e9)[:, None, None, :]
    a = (s.softmax(-1) @ v).transpose(1, 2).reshape(1, 4, d)
    h = ln(h + lin(a, "attention.output.dense"))
    h = ln(h + lin(torch.nn.functional.gelu(lin(h, "intermediate.dense")), "output.dense"))
    got = model(ids, mask)
    assert torch.allclose(got[:, :3], h[:, :3], atol=1e-5)
    pooled = mean_pool(got, mask)
    assert torch.allclose(pooled, torch.nn.functional.normalize(h[:, :3].mean(1), dim=-1), atol=1e-5)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagediff")
    cfg = PRESETS["tiny"]
    run = Run.create("imagediff", cfg, name="t", root=root)
    core.train(run, cfg, device=torch.device("cpu"), quiet=True)
    return run


def test_tiny_training_guidance_and_determinism(tiny_run):
    o = core.open_run(tiny_run, torch.device("cpu"))
    c = o.cond.of_prompts(["a handwritten 3"] * 4, o.device)
    a = core.generate(o, c, 4, guidance=2.0, seed=1)
    b = core.generate(o, c, 4, guidance=2.0, seed=1)
    assert a.shape == (4, 1, 8, 8) and torch.equal(a, b) and float(a.min()) >= 0 and float(a.max()) <= 1
    assert not torch.equal(a, core.generate(o, c, 4, guidance=0.0, seed=1))
    with pytest.raises(ConfigError):
        core.generate(o, c, 4, guidance=-1.0)
    # guidance 0 with a prompt is the unconditional model
    u = core.generate(o, o.cond.unconditional(4, o.device), 4, guidance=0.0, seed=1)
    assert torch.allclose(u, core.generate(o, c, 4, guidance=0.0, seed=1))
    res = core.adherence(o, per_class=1)
    assert 0 <= res["adherence"] <= 1 and len(res["per_class"]) == 10


def test_sample_verb_outputs_and_one_line_errors(tiny_run, tmp_path, capsys):
    out = tmp_path / "s.npy"
    assert (
        main(
            [
                "imagediff",
                "sample",
                "--run",
                str(tiny_run.path),
                "--prompt",
                "a handwritten 7",
                "--n",
                "3",
                "--steps",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    arr = np.load(out)
    assert arr.shape == (3, 8, 8) and arr.dtype == np.float32 and arr.min() >= 0 and arr.max() <= 1
    png = tmp_path / "s.png"
    assert (
        main(
            [
                "imagediff",
                "sample",
                "--run",
                str(tiny_run.path),
                "--prompt",
                "",
                "--n",
                "2",
                "--steps",
                "2",
                "--out",
                str(png),
            ]
        )
        == 0
    )
    assert png.is_file() and "unconditionally" in capsys.readouterr().err
    for bad, words in (
        (["--guidance", "-1"], "guidance"),
        (["--out", str(tmp_path / "x.jpg")], ".png"),
        (["--label", "3"], "class-conditioned"),
        (["--n", "0"], "--n"),
    ):
        assert main(["imagediff", "sample", "--run", str(tiny_run.path), "--prompt", "a 3", *bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err


def test_prompt_to_a_class_run_and_bad_config_are_one_line(tmp_path, capsys):
    cfg = PRESETS["tiny"].update({"cond": "class", "steps": 2})
    run = Run.create("imagediff", cfg, name="c", root=tmp_path)
    core.train(run, cfg, device=torch.device("cpu"), quiet=True)
    assert main(["imagediff", "sample", "--run", str(run.path), "--prompt", "a 3", "--n", "1"]) == 2
    assert "not on text" in capsys.readouterr().err
    assert (
        main(
            [
                "imagediff",
                "sample",
                "--run",
                str(run.path),
                "--label",
                "3",
                "--n",
                "2",
                "--steps",
                "2",
                "--out",
                str(tmp_path / "c.npy"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    for bad in ("space=latent2", "dataset=cifar", "cond=music"):
        assert main(["imagediff", "train", "--preset", "tiny", "--set", bad, "--run-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err


def test_missing_text_encoder_names_the_fetch_command(tmp_path, monkeypatch, capsys):
    from genlab.data import text_encoder

    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "empty"))
    text_encoder._minilm.cache_clear()
    monkeypatch.setattr(text_encoder, "_CACHE", {})
    assert main(["imagediff", "train", "--preset", "tiny", "--set", "encoder=minilm", "--run-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "genlab data fetch minilm" in err
    text_encoder._minilm.cache_clear()


def test_predictions_convert_back_to_the_true_noise():
    from genlab.diffusion import VPCosineSchedule
    from genlab.diffusion.prediction import PREDICTIONS, target, to_eps

    sch = VPCosineSchedule()
    torch.manual_seed(0)
    x0, eps = torch.rand(6, 1, 4, 4) * 2 - 1, torch.randn(6, 1, 4, 4)
    t = torch.tensor([0.01, 0.1, 0.3, 0.5, 0.8, 0.95])
    xt = sch.perturb(x0, t, eps)
    for p in PREDICTIONS:
        out = target(p, sch, x0, eps, t)
        assert torch.allclose(to_eps(p, sch, xt, t, out), eps, atol=1e-3), p
        # clipping a guess that is already in range changes nothing
        assert torch.allclose(to_eps(p, sch, xt, t, out, (-1.0, 1.0)), eps, atol=1e-3), p
    # a guess outside the range is pulled back: the implied x0 lies in [-1, 1]
    e = to_eps("x0", sch, xt, t, 3 * torch.ones_like(x0), (-1.0, 1.0))
    a, s = sch.alpha(t).float().view(-1, 1, 1, 1), sch.sigma(t).float().view(-1, 1, 1, 1)
    assert torch.allclose((xt - s * e) / a, torch.ones_like(x0), atol=1e-3)


def test_latent_space_trains_an_autoencoder_stage_and_decodes_samples(tmp_path):
    cfg = PRESETS["tiny"].update(
        {"space": "latent", "ae_steps": 3, "code_dim": 8, "latent_width": 16, "latent_depth": 1, "steps": 3}
    )
    run = Run.create("imagediff", cfg, name="l", root=tmp_path)
    core.train(run, cfg, device=torch.device("cpu"), quiet=True)
    assert (run.path / "stages" / "ae").is_dir() and Run(run.path / "stages" / "ae").finished
    o = core.open_run(run, torch.device("cpu"))
    c = o.cond.of_prompts(["a 3", "a 4"], o.device)
    x, res = core.generate(o, c, 2, guidance=2.0, steps=2, trajectory=True)
    assert x.shape == (2, 1, 32, 32) and res.x.shape == (2, 8) and float(x.min()) >= 0 and float(x.max()) <= 1


def test_guidance_scale_changes_samples_beyond_one(tiny_run):
    o = core.open_run(tiny_run, torch.device("cpu"))
    c = o.cond.of_prompts(["a handwritten 3"] * 3, o.device)
    assert c.drop is None
    x1, x2 = (core.generate(o, c, 3, guidance=w, seed=1) for w in (1.0, 3.0))
    assert not torch.allclose(x1, x2)
    both = c.cat(c.dropped(torch.ones(3, dtype=torch.bool)))
    assert both.drop.tolist() == [False] * 3 + [True] * 3


def test_learning_rate_decays_with_the_steps_or_the_time_budget(monkeypatch):
    cfg = PRESETS["tiny"].update({"steps": 100, "warmup": 10, "max_seconds": 0.0})
    f = core.budget_cosine(cfg)
    assert f(0) == pytest.approx(0.1) and f(10) == pytest.approx(1.0) and f(100) == pytest.approx(0.1)
    clock = iter([0.0, 50.0])
    monkeypatch.setattr(core.time, "perf_counter", lambda: next(clock))
    g = core.budget_cosine(cfg.update({"max_seconds": 50.0}))  # t0 = 0, then the budget is spent
    assert g(20) == pytest.approx(0.1)


def test_image_sizes_conditioner_batches_and_the_judge_protocol():
    from genlab.data.conditions import Conditioner
    from genlab.data.images import ImageData
    from genlab.diffusion.images import Judge, at_resolution, to_judge
    from genlab.nn.gan import JudgeCNN

    x = torch.rand(3, 1, 32, 32)
    for r in (8, 16, 28, 32):
        assert at_resolution(x, r).shape == (3, 1, r, r)
        assert to_judge(at_resolution(x, r)).shape == (3, 1, 32, 32)
    assert torch.equal(to_judge(at_resolution(x, 28))[..., 2:30, 2:30], x[..., 2:30, 2:30])
    text = Conditioner.make("text", "digits", 10, "hash")
    c, y = text.eval_batch(3, torch.device("cpu"), heldout=True)
    assert len(c) == 30 and y.tolist() == [k for k in range(10) for _ in range(3)]
    assert text.describe(7, [str(k) for k in range(10)], heldout=True) == text.captions.first(7, True)
    label = Conditioner.make("class", "digits", 10)
    assert label.describe(2, [str(k) for k in range(10)]) == "class 2" and len(label.eval_batch(2, "cpu")[1]) == 20
    none = Conditioner.make("none", "digits", 10)
    assert none.eval_batch(1, "cpu")[0] is None and none.describe(0, []) == "(no condition)"
    data = ImageData("t", x, torch.tensor([0, 1, 1]), x, torch.tensor([0, 1, 1]), ("a", "b"))
    judge = Judge(JudgeCNN(2).eval(), data)
    pred, _ = judge(x)
    a = judge.adherence(x, pred)
    assert a["adherence"] == 1.0 and judge.accuracy() == round(float((pred == data.test_y).float().mean()), 4)
    fd = judge.frechet(judge(x)[1])
    assert fd["fd"] == fd["fd_floor"] and "real3" in judge.cache


def test_row_labels_put_one_tick_per_grid_row():
    from genlab import plots

    fig, ax = plots.figure()
    plots.show_images(ax, np.zeros((6, 4, 4)), 3)
    plots.row_labels(ax, ["a", "b", "c"], 6, fontsize=8)
    assert list(ax.get_yticks()) == [3.0, 9.0, 15.0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
