"""The theory lab's config: the sizes of its small experiments (the toy seq2seq ablations train through fit)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from genlab.config import param
from genlab.errors import ConfigError
from genlab.train import TrainConfig


@dataclass
class TheoryConfig(TrainConfig):
    steps: int = param(300, "training steps of each toy seq2seq transformer (copy/reverse ablations)", min=0)
    lr: float = param(3e-3, "learning rate of the toy transformers", min=0.0)
    batch_size: int = param(64, "toy sequences per step", min=1)
    log_every: int = param(25, "log metrics every N steps", min=1)
    threads: int = param(1, "torch CPU threads (the experiments are tiny: one thread is fastest)", min=0)
    length: int = param(8, "toy sequence length", min=2)
    vocab: int = param(16, "toy vocabulary (symbol 0 is the start token)", min=3)
    d_model: int = param(32, "toy transformer width", min=4)
    n_head: int = param(4, "attention heads", min=1)
    d_ff: int = param(64, "feed-forward width", min=1)
    n_layers: int = param(1, "encoder and decoder layers", min=1)
    deep_layers: int = param(4, "layers of the deeper pair (with and without residual connections)", min=1)
    eval_size: int = param(512, "toy sequences to measure accuracy on", min=1)
    depth: int = param(32, "residual blocks in the variance-against-depth experiment", min=2)
    bptt_max_len: int = param(400, "longest sequence in the BPTT cost measurement", min=8)
    gan_steps: int = param(1000, "training steps of each 2D GAN (plain, conditional, CycleGAN)", min=0)
    imitate_steps: int = param(600, "training steps of the attention layers imitating a conv / FC layer", min=0)
    diffusion_steps: int = param(600, "training steps of each small image denoiser (2D positions question)", min=0)
    judge_steps: int = param(300, "training steps of the digit classifier the saliency maps explain", min=0)
    saliency_images: int = param(64, "test digits the saliency maps are compared on", min=1)
    diffusion_samples: int = param(256, "samples drawn from each small image denoiser", min=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.d_model % self.n_head:
            raise ConfigError(
                f"bad value {self.n_head} for n_head: d_model={self.d_model} must split evenly into the heads; "
                f"use a divisor of {self.d_model} (e.g. --set n_head=4)"
            )


def _presets() -> dict[str, TheoryConfig]:
    quick = TheoryConfig()
    tiny = replace(
        quick,
        steps=40,
        eval_size=64,
        depth=8,
        bptt_max_len=64,
        gan_steps=30,
        imitate_steps=20,
        diffusion_steps=20,
        judge_steps=20,
        saliency_images=8,
        diffusion_samples=32,
    )
    return {"quick": quick, "tiny": tiny}


PRESETS = _presets()
