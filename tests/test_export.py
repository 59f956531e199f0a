"""Weights to share: ``genlab <lab> export`` writes a folder with no pickle that ``genlab.load`` and the lab's
``--run`` verbs open as the run it came from (the same samples / logits / predictions), per lab."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.cli import main
from genlab.data.reviews import write_tiny_reviews
from genlab.errors import GenlabError, RunError
from genlab.export import export_run, pickle_free, weights_of
from genlab.runs import Run, load_tensors

D2D = dict(steps=30, hidden=16, depth=2, n_points=200, batch_size=200, sample_steps=8, eval_n=100, log_every=5)
TEXT = "Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing to do. " * 20
GPT = dict(tokenizer="char", n_layer=1, n_head=2, n_embd=32, block_size=32, steps=80, batch_size=16, eval_every=40)
GPT |= dict(eval_iters=2, warmup=2, lr=1e-2, threads=1)  # enough steps to generate words (for the attention)


def _export(run: Run, tmp_path: Path) -> Path:
    out = tmp_path / f"{run.path.name}-export"
    assert main([run.lab, "export", "--run", str(run.path), "--out", str(out)]) == 0
    return out


def _no_pickle(folder: Path) -> None:
    assert pickle_free(folder) == []
    assert not [p for p in folder.rglob("*") if p.suffix in (".pt", ".pkl", ".pickle", ".bin", ".npy")]
    assert (folder / "model.safetensors").is_file()


def _unchanged_after(folder: Path, fn) -> None:
    """``fn`` (opening the folder and using it) trains nothing into it: no new checkpoints, no new weights."""
    before = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.suffix in (".pt", ".safetensors"))
    fn()
    assert sorted(p.relative_to(folder) for p in folder.rglob("*") if p.suffix in (".pt", ".safetensors")) == before


@pytest.fixture(scope="module")
def d2d(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    m = genlab.train("diffusion2d", preset="grid", root=root, name="g", device="cpu", **D2D)
    return m.run, _export(m.run, tmp_path_factory.mktemp("out"))


@pytest.fixture(scope="module")
def gpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    book = root / "book.txt"
    book.write_text(TEXT)
    m = genlab.train("textgen", root=root, name="t", device="cpu", corpus="text", text=str(book), **GPT)
    return m.run, _export(m.run, tmp_path_factory.mktemp("out"))


@pytest.fixture(scope="module")
def img(tmp_path_factory):
    m = genlab.train("imagediff", preset="tiny", root=tmp_path_factory.mktemp("runs"), name="i", device="cpu")
    return m.run, _export(m.run, tmp_path_factory.mktemp("out"))


def test_diffusion2d_export_samples_as_the_run(d2d, tmp_path):
    run, out = d2d
    _no_pickle(out)
    a, b = genlab.load(run.path, device="cpu"), genlab.load(out, device="cpu")
    assert type(a).__name__ == type(b).__name__ == "Diffusion2D"
    for kw in ({}, {"label": 2, "guidance": 2.0}, {"sampler": "heun", "steps": 5}):
        x, y = a.sample(64, seed=3, **kw), b.sample(64, seed=3, **kw)
        assert x.shape == (64, 2) and torch.equal(x, y), kw
    assert not torch.equal(a.sample(64, seed=3), a.sample(64, seed=4))  # the comparison can tell samples apart
    # the EMA weights the lab samples with were exported, not the raw training weights
    state = load_tensors(run.last_checkpoint)
    ema, is_ema = weights_of(state, run.last_checkpoint)
    saved = load_file(str(out / "model.safetensors"))
    assert is_ema and json.loads((out / "config.json").read_text())["exported"]["ema"] is True
    assert all(torch.equal(saved[k], ema[k]) for k in ema) and set(saved) == set(ema)
    assert any(not torch.equal(saved[k], state["model"][k]) for k in saved)
    # the lab's --run verbs take the exported folder too, and write the same samples
    for folder, csv in ((run.path, tmp_path / "a.csv"), (out, tmp_path / "b.csv")):
        assert main(["diffusion2d", "sample", "--run", str(folder), "--n", "20", "--out", str(csv), "--quiet"]) == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_textgen_export_gives_the_same_logits_and_text(gpt, tmp_path, capsys):
    run, out = gpt
    _no_pickle(out)
    assert (out / "chars.json").is_file()  # the tokenizer travels with the weights
    a, b = genlab.load(run.path, device="cpu"), genlab.load(out, device="cpu")
    text = "Alice was beginning to get"
    la, lb = a.logits(text), b.logits(text)
    assert la.shape == (len(text), a.opened.tok.vocab_size) and torch.equal(la, lb)
    assert not torch.equal(la[0], la[-1])
    assert a.generate("Alice", 20, temperature=0.8, seed=1) == b.generate("Alice", 20, temperature=0.8, seed=1)
    assert a.score(text)["logprob"] == b.score(text)["logprob"]
    att_a, att_b = a.attention("Alice was", word=4), b.attention("Alice was", word=4)
    assert len(att_b["att"]) == 1 and att_a["tokens"] == att_b["tokens"] and torch.equal(att_a["att"], att_b["att"])
    said = []
    for folder in (run.path, out):
        argv = ["textgen", "generate", "--run", str(folder), "--prompt", "Alice", "--max-new-tokens", "15"]
        assert main([*argv, "--quiet", "--device", "cpu"]) == 0
        said.append(capsys.readouterr().out)
    assert said[0] == said[1] and said[0].startswith("Alice")


def test_imagediff_export_samples_as_the_run_and_trains_nothing(img):
    run, out = img
    _no_pickle(out)
    assert (out / "stages" / "judge" / "model.safetensors").is_file()  # every trained part is exported
    a = genlab.load(run.path, device="cpu")
    got = {}
    _unchanged_after(out, lambda: got.setdefault("b", genlab.load(out, device="cpu")))
    b = got["b"]
    x, y = a.sample("a handwritten 3", 4, seed=1, guidance=2.0), b.sample("a handwritten 3", 4, seed=1, guidance=2.0)
    assert x.shape == (4, 1, 8, 8) and torch.equal(x, y)
    assert not torch.equal(x, a.sample("a handwritten 7", 4, seed=1, guidance=2.0))
    assert torch.equal(a.sample(None, 3, seed=2), b.sample(None, 3, seed=2))  # unconditional
    ja, jb = a.opened.judge.net.state_dict(), b.opened.judge.net.state_dict()  # the export's judge is the run's
    assert ja.keys() == jb.keys() and all(torch.equal(ja[k], jb[k]) for k in ja)
    with pytest.raises(GenlabError, match="needs a class-conditioned run"):
        b.sample(label=3)


def test_imagediff_sample_verb_takes_the_export(img, tmp_path):
    run, out = img
    for folder, npy in ((run.path, tmp_path / "a.npy"), (out, tmp_path / "b.npy")):
        argv = ["imagediff", "sample", "--run", str(folder), "--prompt", "a 3", "--n", "3", "--out", str(npy)]
        assert main([*argv, "--quiet", "--device", "cpu"]) == 0
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()


def test_sentiment_and_latent_exports_predict_and_encode_as_the_runs(tmp_path, capsys):
    data = write_tiny_reviews(tmp_path / "reviews.csv", n=80)
    cfg = dict(csv=str(data), model="mlp", steps=8, hidden=8, n_train=60, embed_dim=8, embeddings="learned")
    m = genlab.train("sentiment", root=tmp_path / "runs", name="s", device="cpu", widths=(8,), eval_every=4, **cfg)
    out = export_run(m.run, tmp_path / "s-out")
    _no_pickle(out)
    assert (out / "vocab.json").is_file()
    e = genlab.load(out, device="cpu")
    reviews = ["a wonderful film, great acting", "dull and awful"]
    assert m.predict(reviews) == e.predict(reviews) and len(m.predict("one review")) == 1
    assert _same_nested(m.explain(reviews[0]), e.explain(reviews[0]))
    said = []
    for folder in (m.path, out):
        assert main(["sentiment", "predict", "--run", str(folder), *reviews]) == 0
        said.append(capsys.readouterr().out)
    assert said[0] == said[1] and said[0].count("\n") == 2  # one line per review, the same from both

    lat = genlab.train("latent", preset="tiny", root=tmp_path / "runs", name="l", device="cpu")
    out = export_run(lat.run, tmp_path / "l-out")
    _no_pickle(out)
    le = genlab.load(out, device="cpu")
    x = lat.opened.data.test_x[:5]
    codes = lat.encode(x)
    assert torch.equal(codes, le.encode(x)) and torch.equal(lat.decode(codes), le.decode(codes))
    assert lat.decode(codes).shape == x.shape
    with pytest.raises(GenlabError, match="no judge yet"):
        le.classify(x)


def _same_nested(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_nested(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_nested(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b


def test_the_pickle_scan_can_fail(d2d, tmp_path):
    _, out = d2d
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    torch.save({"w": torch.ones(2)}, bad / "extra.pt")
    (bad / "stages").mkdir()
    (bad / "stages" / "model.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    found = pickle_free(bad)
    assert any("extra.pt" in f for f in found) and any("stages/model.safetensors" in f for f in found)


def test_export_errors_are_one_line_and_write_nothing(d2d, tmp_path, capsys):
    run, out = d2d
    cases = [
        ([], "needs --out"),
        (["--out", str(out)], "not an empty folder"),  # a former export is never overwritten
        (["--out", str(run.path / "inside")], "overlaps the run"),
        (["--out", str(tmp_path / "no" / "such")], "does not exist"),
    ]
    for extra, words in cases:
        assert main(["diffusion2d", "export", "--run", str(run.path), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err
    assert main(["textgen", "export", "--run", str(run.path), "--out", str(tmp_path / "x")]) == 2
    assert "is a diffusion2d run" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (run.path / "inside").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no half-written temporary folder either


def test_a_damaged_export_is_a_one_line_error(d2d, tmp_path):
    _, out = d2d
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    raw = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(RunError, match="damaged: export the run again"):
        genlab.load(bad, device="cpu")
    with pytest.raises(GenlabError, match="not a run folder"):
        genlab.load(tmp_path / "nothing")
