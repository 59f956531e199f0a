"""genlab from Python: ``genlab.load`` / ``genlab.train`` and the README's "From Python" examples, run as written.

``README_PYTHON`` is the README section's text (tests/test_readme.py checks that the README holds it); every
```python block in it runs here, in order, in a fresh folder holding the two input files the examples name.
"""

import re
import sys
import time

import pytest
import torch

import genlab
from genlab.api import Diffusion2D, Model, lab_config
from genlab.data.reviews import write_tiny_reviews
from genlab.errors import ConfigError, GenlabError, RunError
from genlab.runs import Run

README_PYTHON = """\
## From Python

`genlab.train` trains a run with the lab's own training (a preset and any config keys, as `--preset` and `--set`
do) and returns the trained model; `genlab.load` opens any run folder, or a folder that `genlab <lab> export`
wrote, as that lab's model, with the lab's verbs as methods.

```python
import genlab

m = genlab.train("diffusion2d", preset="square", steps=2000)  # a run folder under runs/diffusion2d/
points = m.sample(1000)  # a (1000, 2) tensor; sampler=..., steps=... as the sample verb takes them
m.export("square-model")  # model.safetensors (the EMA weights), config.json: no pickle, ready to share
assert genlab.load("square-model").sample(1000).equal(points)  # the same model, the same points
```

```python
import genlab

gpt = genlab.train("textgen", preset="nano", corpus="text", text="my_book.txt")  # any plain-text file
print(gpt.generate("Once upon a time", 80, temperature=0.8, top_k=40, seed=0))
print(gpt.score("It was a dark and stormy night.")["perplexity"])  # and per-token rows
print(gpt.logits("Once upon a time").shape)  # (tokens, vocabulary size)
```

```python
import genlab

clf = genlab.train("sentiment", csv="reviews.csv", n_train=600, model="mlp", embeddings="learned", steps=300)
print(clf.predict(["A wonderful, moving film.", "Dull, and far too long."]))  # [(label, P(positive)), ...]
words = clf.explain("A wonderful, moving film.")  # each word's negative / positive sub-scores
```

```python
import genlab

images = genlab.train("imagediff", preset="tiny").sample("a handwritten 7", 16)  # (16, 1, 8, 8) in [0, 1]
ae = genlab.train("latent", preset="tiny")  # the autoencoder of the latent-space lab (8x8 digits, seconds)
codes = ae.encode(ae.opened.data.test_x[:10])  # (10, code_dim)
print(ae.decode(codes).shape)  # images again: (10, 1, 32, 32)
```
"""

BOOK = (
    "Once upon a time there was a little town by the sea, and every night the wind told the children a story. "
    "It was a dark and stormy night when the old captain came home with a map and a key. "
) * 40


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


@pytest.mark.slow
def test_the_readme_python_examples_run_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_book.txt").write_text(BOOK)
    write_tiny_reviews(tmp_path / "reviews.csv", n=800)
    blocks = python_blocks(README_PYTHON)
    assert len(blocks) == 4 and all(b.startswith("import genlab\n") for b in blocks)
    seconds = []
    for code in blocks:
        t0 = time.perf_counter()
        exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
        seconds.append(round(time.perf_counter() - t0, 1))
    out = capsys.readouterr().out
    assert "torch.Size([" in out and "positive" in out, out
    assert (tmp_path / "square-model" / "model.safetensors").is_file()
    print(f"README examples ran in {seconds} s")


def test_the_readme_examples_are_five_lines_or_so():
    for code in python_blocks(README_PYTHON):
        lines = [ln for ln in code.splitlines() if ln.strip() and ln != "import genlab"]
        assert 2 <= len(lines) <= 5 and all(len(ln) <= 120 for ln in lines), code


# ------------------------------------------------------------------------------------------ the fast tests

TINY = dict(steps=20, hidden=16, depth=2, n_points=200, batch_size=200, sample_steps=8, eval_n=100, log_every=5)


@pytest.fixture(scope="module")
def square(tmp_path_factory):
    return genlab.train("diffusion2d", preset="square", root=tmp_path_factory.mktemp("runs"), name="s", **TINY)


def test_train_uses_the_preset_and_keys_and_returns_the_loaded_model(square):
    assert isinstance(square, Diffusion2D) and square.run.path.name == "s" and square.run.finished
    cfg = square.config
    assert (cfg.dataset, cfg.steps, cfg.hidden) == ("square", 20, 16)  # the preset, then the keys
    assert Run(square.run.path).config(type(cfg)) == cfg
    assert repr(square) == f"<genlab diffusion2d model {str(square.path)!r}>"
    x = square.sample(30, seed=1)
    assert x.shape == (30, 2) and torch.isfinite(x).all()
    assert torch.equal(x, genlab.load(square.path).sample(30, seed=1))
    assert not torch.equal(x, square.sample(30, seed=2))
    with pytest.raises(ConfigError, match="unconditional; drop --label"):
        square.sample(5, label=1)


def test_lab_config_checks_presets_and_keys():
    assert lab_config("diffusion2d", "grid", steps=7).dataset == "grid"
    assert lab_config("textgen").steps == lab_config("textgen", None).steps
    with pytest.raises(ConfigError, match="unknown preset of lab 'diffusion2d' 'sqaure'; choose one of"):
        lab_config("diffusion2d", "sqaure")
    with pytest.raises(ConfigError, match="stepz"):
        genlab.train("diffusion2d", stepz=3)
    with pytest.raises(ConfigError, match="unknown lab 'difusion2d'"):
        genlab.train("difusion2d")


def test_load_errors_are_one_line(square, tmp_path):
    with pytest.raises(RunError, match="not a run folder"):
        genlab.load(tmp_path / "nothing")
    with pytest.raises(GenlabError):
        genlab.load(square.path, device="tpu")
    fresh = Run.create("diffusion2d", square.config, name="untrained", root=tmp_path)
    with pytest.raises(RunError, match="no checkpoint yet"):
        genlab.load(fresh.path)
    for e in (RunError, ConfigError):
        assert issubclass(e, GenlabError)


def test_a_lab_without_a_single_training_run_says_so():
    with pytest.raises(ConfigError, match="no single training run"):
        genlab.train("theory")
    assert Model.lab == "" and issubclass(Diffusion2D, Model)


def test_genlab_train_is_the_function_and_the_loop_module_still_imports():
    import genlab.labs.diffusion2d.core  # noqa: F401 - imports the loop module (from genlab.train import fit)
    from genlab.train import fit

    assert callable(genlab.train) and genlab.train.__module__ == "genlab.api" and genlab.load.__name__ == "load"
    assert fit.__module__ == "genlab.train" and sys.modules["genlab.train"].fit is fit
