"""The image diffusion lab's settings and presets."""

from __future__ import annotations

from dataclasses import dataclass, replace

from genlab.config import param
from genlab.data.text_encoder import ENCODERS
from genlab.diffusion.prediction import PREDICTIONS
from genlab.diffusion.samplers import SAMPLERS
from genlab.train import TrainConfig

DATASETS = ("mnist", "fashion", "digits")


@dataclass
class ImageDiffConfig(TrainConfig):
    """Data, U-Net, diffusion and evaluation settings. ``steps``, ``lr``, ``batch_size`` are the U-Net's."""

    steps: int = param(2000, "U-Net optimisation steps", min=0)
    lr: float = param(2e-3, "peak learning rate (AdamW, linear warm-up, cosine decay to 10%)", min=0.0, max=10.0)
    batch_size: int = param(64, "images per step", min=1)
    amp: str = param("bf16", "autocast: off, bf16 (CPU/GPU) or fp16 (GPU)", choices=("off", "bf16", "fp16"))
    ema_decay: float = param(0.995, "EMA of the weights used for sampling (0 = off)", min=0.0, max=0.99999)
    grad_clip: float = param(1.0, "clip the gradient norm to this (0 = off)", min=0.0)
    log_every: int = param(25, "log metrics every N steps", min=1)
    warmup: int = param(100, "learning-rate warm-up steps", min=0)
    space: str = param(
        "pixel",
        "where diffusion runs: pixel (U-Net on images) or latent (MLP on autoencoder codes, decoded to 32x32 images)",
        choices=("pixel", "latent"),
    )
    dataset: str = param("mnist", "image dataset", choices=DATASETS)
    train_limit: int = param(0, "use only the first N training images (0 = all)", min=0)
    resolution: int = param(
        16,
        "image side the model sees: 28 (MNIST's own pixels), 32 (padded), 16 or 8 (average-pooled from 32)",
        choices=(8, 16, 28, 32),
    )
    cond: str = param("text", "conditioning: text (prompt), class (label) or none", choices=("text", "class", "none"))
    canvas: int = param(
        1,
        "1: one digit per image; 2: a 2x2 canvas of four digits (side 2 x resolution) with prompts that place "
        "digits by quadrant ('a 3 in the top left and a 7 in the bottom right'); text only",
        choices=(1, 2),
    )
    cross_attn: bool = param(
        True, "text: the U-Net attends to the prompt's tokens (False: only the pooled sentence vector, by FiLM)"
    )
    encoder: str = param("minilm", "text encoder: minilm (pretrained, fetched) or hash (tests only)", choices=ENCODERS)
    widths: tuple[int, ...] = param((32, 64, 96), "U-Net channels per resolution", min=1)
    blocks: int = param(1, "residual blocks per resolution (down path; one more on the way up)", min=1)
    attn: tuple[int, ...] = param((1, 2), "resolution levels (0 = full) with cross-attention to the prompt tokens")
    p_uncond: float = param(0.1, "prompt dropout: share of training images seen without their prompt", min=0.0, max=1.0)
    prediction: str = param("v", "network target: v (alpha eps - sigma x0), eps or x0", choices=PREDICTIONS)
    schedule: str = param("vp-cosine", "VP noise schedule", choices=("vp-cosine", "vp-linear"))
    T: int = param(1000, "discrete diffusion steps of the schedule", min=1)
    guidance: float = param(2.0, "default classifier-free guidance scale for sampling", min=0.0)
    sampler: str = param("ddim", "default sampler", choices=SAMPLERS)
    sample_steps: int = param(25, "default sampling steps", min=1)
    clip_x0: bool = param(True, "clip the denoised guess x0_hat to the data range at every sampling step")
    eval_per_class: int = param(20, "samples per class for adherence and Frechet distance", min=1)
    guidance_sweep: tuple[float, ...] = param((0.0, 1.0, 2.0, 3.0, 5.0, 8.0), "guidance scales of the sweep")
    code_dim: int = param(64, "latent space: autoencoder code size", min=2)
    ae_steps: int = param(1500, "latent space: autoencoder steps (batch 128), trained once in stages/ae", min=0)
    latent_width: int = param(512, "latent space: width of the MLP denoiser", min=8)
    latent_depth: int = param(4, "latent space: residual blocks of the MLP denoiser", min=1)
    judge_steps: int = param(800, "steps of the judge CNN (batch 128) trained on the real training images", min=0)


Config = ImageDiffConfig

PRESETS: dict[str, ImageDiffConfig] = {
    # 16x16 MNIST, MiniLM prompts, at most 3 minutes of training on one CPU thread (650-750 steps measured on the
    # shared 2-core machine gave 99% adherence at guidance 2 on training and on held-out phrasings)
    "quick": ImageDiffConfig(max_seconds=180.0, threads=1),
    # 28x28 MNIST, wider U-Net, 30 minutes
    "full": ImageDiffConfig(
        resolution=28,
        widths=(32, 64, 128),
        attn=(2,),
        steps=9000,
        max_seconds=1800.0,
        threads=1,
        warmup=300,
        ema_decay=0.999,
        eval_per_class=100,
        judge_steps=1500,
    ),
    # scikit-learn's 8x8 digits at 8x8, a hashing text encoder, a few steps: the whole lab in seconds
    "tiny": ImageDiffConfig(
        dataset="digits",
        resolution=8,
        encoder="hash",
        widths=(8, 16),
        attn=(1,),
        steps=12,
        batch_size=32,
        warmup=2,
        log_every=4,
        amp="off",
        ema_decay=0.9,
        eval_per_class=2,
        sample_steps=3,
        guidance_sweep=(0.0, 2.0),
        judge_steps=10,
        threads=1,
    ),
}


# 2x2 canvases for ``genlab imagediff compose`` (both variants: cross-attention and pooled): 16x16 digits on a
# 32x32 canvas; the variants train side by side, one CPU thread each
COMPOSE_PRESETS: dict[str, ImageDiffConfig] = {
    # about 900 steps in 8 minutes: the composition starts to show (a first look, not the measured result)
    "quick": ImageDiffConfig(canvas=2, batch_size=48, max_seconds=480.0, threads=1, eval_per_class=20, guidance=4.0),
    # 6400 steps, a fixed step count so the result does not depend on how busy the machine is: 75-110 minutes per
    # variant on a busy 2-core machine (3200 steps reached 0.74 per-quadrant adherence, 6400 steps 0.91)
    "full": ImageDiffConfig(
        canvas=2,
        batch_size=48,
        steps=6400,
        max_seconds=7200.0,
        threads=1,
        ema_decay=0.999,
        eval_per_class=30,
        guidance=4.0,
    ),
    "tiny": replace(PRESETS["tiny"], canvas=2, steps=8),
}
