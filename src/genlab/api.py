"""genlab from Python: a trained model in one line.

::

    import genlab

    m = genlab.train("diffusion2d", preset="square", steps=2000)   # the lab's own training, into runs/
    points = m.sample(500)                                          # (500, 2) tensor
    m = genlab.load("runs/textgen/mini")                            # a run folder, or an exported one
    print(m.generate("Alice was", 60))

:func:`load` reads the folder's ``config.json`` to find its lab, opens it with that lab's own opener (the one
the CLI verbs use) and returns a thin object whose methods are the lab's verbs, each calling the lab's or the
library's function. ``.opened`` is what the lab's figure functions take; ``.run`` the run folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from genlab.errors import ConfigError, choose
from genlab.runs import Run, choose_device, cpu_threads

# --------------------------------------------------------------------------------------- the model objects


class Model:
    """A trained run of one lab: ``run`` (its folder), ``config``, ``device`` and ``opened`` (the lab's own
    opened run, as its figures and verbs see it)."""

    lab: ClassVar[str] = ""

    def __init__(self, opened: Any, run: Run, device: torch.device):
        self.opened, self.run, self.device = opened, run, device

    @classmethod
    def open(cls, run: Run, device: torch.device) -> Model:
        import importlib

        return cls(importlib.import_module(f"genlab.labs.{run.lab}.core").open_run(run, device), run, device)

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def config(self) -> Any:
        return getattr(self.opened, "cfg", None)

    def export(self, out: str | Path) -> Path:
        """Write this model as a folder to share (``genlab <lab> export``): model.safetensors, config.json..."""
        from genlab.export import export_run

        return export_run(self.run, out, lab=self.run.lab)

    def __repr__(self) -> str:
        return f"<genlab {self.run.lab} model {str(self.path)!r}>"


_MODELS: dict[str, type[Model]] = {}


def _lab_model(cls: type[Model]) -> type[Model]:
    _MODELS[cls.lab] = cls
    return cls


def _threads(cfg: Any, device: torch.device):
    """The run's CPU thread policy (as its CLI verbs use it)."""
    return cpu_threads(getattr(cfg, "threads", 0) if device.type == "cpu" else 0)


@_lab_model
class Diffusion2D(Model):
    """A 2D diffusion run: ``.sample(n)`` points; ``.opened`` is a :class:`~genlab.diffusion.DiffusionModel`."""

    lab = "diffusion2d"

    @classmethod
    def open(cls, run: Run, device: torch.device) -> Model:
        from genlab.labs.diffusion2d import core

        return cls(core.open_run(run, device), run, device)

    def sample(self, n: int = 1000, *, label: int | None = None, seed: int = 0, **how: Any) -> torch.Tensor:
        """``n`` points ``(n, 2)``, as ``genlab diffusion2d sample`` draws them (``label``: one class of a
        conditional run; ``how``: sampler, steps, grid, guidance, eta)."""
        from genlab.labs.diffusion2d.cli import _check_label

        _check_label(self.opened, label)
        labels = torch.full((n,), label) if label is not None else None
        with _threads(self.config, self.device):
            return self.opened.sample(n, seed=seed, labels=labels, **how).x.cpu()


@_lab_model
class TextGen(Model):
    """A GPT run: ``.generate(prompt)``, ``.score(text)``, ``.logits(text)``, ``.attention(prompt)``."""

    lab = "textgen"

    def generate(self, prompt: str, max_new_tokens: int = 60, **how: Any) -> str:
        """The continuation of ``prompt`` (``how``: temperature, top_k, top_p, greedy, seed)."""
        from genlab.nn.gpt_tools import generate

        return generate(self.opened.model, self.opened.tok, prompt, max_new_tokens, **how)

    def score(self, text: str, prompt: str = "") -> dict[str, Any]:
        """log p(text | prompt), its perplexity and the per-token rows."""
        from genlab.nn.gpt_tools import score

        return score(self.opened.model, self.opened.tok, text, prompt)

    def logits(self, text: str) -> torch.Tensor:
        """The next-token logits ``(T, vocab)`` at each of ``text``'s last ``block_size`` tokens."""
        from genlab.nn.gpt_tools import encode_nonempty

        model = self.opened.model
        ids = encode_nonempty(self.opened.tok, text, "text")[-model.config.block_size :]
        with torch.no_grad():
            return model(torch.tensor([ids], device=self.device))[0][0].cpu()

    def attention(self, prompt: str | None = None, **kw: Any) -> dict[str, Any]:
        """Each block's attention of word ``word`` (default 11, the report's case) as the model, continuing
        ``prompt`` greedily, predicts word ``word + 1``: the lab's attention figure's numbers."""
        return self.opened.attention(**({"prompt": prompt} if prompt is not None else {}), **kw)


@_lab_model
class ImageDiff(Model):
    """An image diffusion run: ``.sample(prompt, n)`` images."""

    lab = "imagediff"

    @classmethod
    def open(cls, run: Run, device: torch.device) -> Model:
        from genlab.labs.imagediff import core

        with _threads(run.config(core.ImageDiffConfig), device):
            return cls(core.open_run(run, device), run, device)

    def sample(
        self, prompt: str | None = None, n: int = 16, *, label: int | None = None, seed: int = 0, **how: Any
    ) -> torch.Tensor:
        """``n`` images ``(n, 1, H, W)`` in [0, 1] of ``prompt`` (a text run), ``label`` (a class run) or neither
        (unconditional), as ``genlab imagediff sample`` draws them (``how``: guidance, steps, sampler)."""
        from genlab.labs.imagediff import core
        from genlab.labs.imagediff.cli import conditioning

        if n < 1:
            raise ConfigError(f"bad n {n}; it must be >= 1")
        cond, guidance, _ = conditioning(self.opened, n, prompt, label, how.pop("guidance", None))
        with _threads(self.config, self.device):
            return core.generate(self.opened, cond, n, guidance=guidance, seed=seed, **how)


@_lab_model
class Sentiment(Model):
    """A review classifier: ``.predict(reviews)`` and (mlp / attention models) ``.explain(review)``; ``.model``,
    ``.vocab``."""

    lab = "sentiment"

    def __init__(self, opened: Any, run: Run, device: torch.device):
        from genlab.labs.sentiment import core

        if isinstance(opened, core.Sweep):
            raise ConfigError(f"{str(run.path)!r} is a sweep; load one of its cells (the folders under stages/)")
        super().__init__(opened, run, device)
        self.model, _, self.vocab = core.load_model(run, device)

    @classmethod
    def open(cls, run: Run, device: torch.device) -> Model:
        from genlab.labs.sentiment import core

        return cls(core.open_run(run), run, device)

    def predict(self, reviews: str | Sequence[str]) -> list[tuple[str, float]]:
        """``(label, P(positive))`` per review, scored as ``genlab sentiment predict`` and the evaluation do."""
        from genlab.nn.sentiment_models import predict_texts

        texts = [reviews] if isinstance(reviews, str) else list(reviews)
        return predict_texts(self.model, self.vocab, texts, self.config.max_len)

    def explain(self, review: str) -> dict[str, Any]:
        """Per-word (negative, positive) sub-scores, the scores and the prediction (mlp / attention runs)."""
        from genlab.nn.sentiment_models import explain_review

        return explain_review(self.model, self.vocab, review, self.config.max_len)


@_lab_model
class Latent(Model):
    """An autoencoder run: ``.encode(images)``, ``.decode(codes)``, ``.classify(images)`` (its judge CNN)."""

    lab = "latent"

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Codes ``(N, code_dim)`` of images ``(N, 1, 32, 32)`` in [0, 1]."""
        with torch.no_grad():
            return self.opened.ae.encode(images.to(self.device)).cpu()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Images ``(N, 1, 32, 32)`` in [0, 1] of codes."""
        with torch.no_grad():
            return self.opened.ae.decode(codes.to(self.device)).cpu()

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """The class the run's judge CNN (trained by ``genlab latent cgan``) sees in each image."""
        from genlab.nn.gan import judge_outputs

        if self.opened.judge is None:
            raise ConfigError(
                f"run {str(self.path)!r} has no judge yet; train it with 'genlab latent cgan --run {self.path}'"
            )
        with torch.no_grad():
            return judge_outputs(self.opened.judge, images)[0]


# ------------------------------------------------------------------------------------------- load and train


def load(path: str | Path | Run, device: str = "auto") -> Model:
    """Open a run folder (or a folder ``genlab <lab> export`` wrote) of any lab as that lab's model object."""
    from genlab.labs import get_lab

    run = Run.open(getattr(path, "path", path))
    lab = get_lab(run.lab).name
    return _MODELS.get(lab, Model).open(run, choose_device(device))


def _train_diffusion2d(cfg: Any, **kw: Any) -> Run:
    from genlab.labs.diffusion2d import core

    return core.train(cfg, **kw)


def _train_textgen(cfg: Any, **kw: Any) -> Run:
    from genlab.labs.textgen import core

    return core.train(cfg, **kw)


def _train_imagediff(cfg: Any, *, root: Any, name: str | None, device: str, quiet: bool) -> Run:
    from genlab.labs.imagediff import core

    core.load_data(cfg)  # a missing dataset or text encoder fails before a run folder is made (as the CLI)
    core.conditioner(cfg, 10)
    run = Run.create("imagediff", cfg, name=name, root=root)
    core.train(run, cfg, device=choose_device(device), quiet=quiet)
    return run


def _train_sentiment(cfg: Any, *, root: Any, name: str | None, device: str, quiet: bool) -> Run:
    from genlab.labs.sentiment import core

    data = core.prepare_data(cfg)  # a bad CSV fails before a run folder is made (as the CLI)
    try:  # 'epochs' passes over the reviews, as the train verb counts them (where this genlab has it)
        from genlab.labs.sentiment.variants import with_epochs
    except ImportError:
        pass
    else:
        cfg = with_epochs(cfg, data)
    run = Run.create("sentiment", cfg, name=name, root=root)
    core.train(cfg, run, device=device, quiet=quiet)
    return run


def _train_latent(cfg: Any, *, root: Any, name: str | None, device: str, quiet: bool) -> Run:
    from genlab.labs.latent import core

    core.load_data(cfg)
    run = Run.create("latent", cfg, name=name, root=root)
    core.train_autoencoder(run, cfg, device=choose_device(device), quiet=quiet)  # the 'ae' verb
    return run


_TRAIN: dict[str, Callable[..., Run]] = {
    "diffusion2d": _train_diffusion2d,
    "textgen": _train_textgen,
    "imagediff": _train_imagediff,
    "sentiment": _train_sentiment,
    "latent": _train_latent,
}


def lab_config(lab: str, preset: str | None = None, **overrides: Any) -> Any:
    """Lab ``lab``'s config: its defaults (or ``preset``) with ``overrides`` (config keys) applied and checked."""
    from genlab.labs import get_lab

    spec = get_lab(lab)
    cfg = spec.presets[choose(f"preset of lab {lab!r}", preset, list(spec.presets))] if preset else spec.Config()
    return cfg.update(overrides) if overrides else cfg


def train(
    lab: str,
    preset: str | None = None,
    *,
    root: str | Path = "runs",
    name: str | None = None,
    device: str = "auto",
    quiet: bool = True,
    **overrides: Any,
) -> Model:
    """Train a run of ``lab`` with the lab's own training function (``preset`` and config-key ``overrides``, as
    ``genlab <lab> train --preset P --set key=value``) into ``root/<lab>/<name>``; returns :func:`load` of it."""
    cfg = lab_config(lab, preset, **overrides)
    if lab not in _TRAIN:
        raise ConfigError(f"lab {lab!r} has no single training run; use 'genlab {lab} --help' for its verbs")
    run = _TRAIN[lab](cfg, root=root, name=name, device=device, quiet=quiet)
    return load(run, device=device)
