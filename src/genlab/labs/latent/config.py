"""The latent lab's settings (one config for every part) and its presets."""

from __future__ import annotations

from dataclasses import dataclass

from genlab.config import param
from genlab.data.images import DATASETS
from genlab.train import TrainConfig


@dataclass
class LatentConfig(TrainConfig):
    """Settings of every part of the lab. ``steps``, ``lr`` and ``batch_size`` are the autoencoder's."""

    steps: int = param(4000, "autoencoder optimisation steps (4000 x 128 = 8.5 epochs of MNIST)", min=0)
    lr: float = param(2e-3, "autoencoder learning rate (Adam, cosine decay)", min=0.0)
    dataset: str = param("mnist", "image dataset", choices=DATASETS)
    data_dir: str = param("", "folder with the 4 IDX files when dataset=idx")
    train_limit: int = param(0, "use only the first N training images (0 = all)", min=0)
    test_limit: int = param(0, "use only the first N test images (0 = all)", min=0)
    code_dim: int = param(64, "autoencoder code size", min=2)
    noise_sigma: float = param(0.35, "denoising autoencoder input noise std (0 = plain autoencoder)", min=0.0)
    labels: int = param(50, "labelled training images for the few-label classifier", min=1)
    draws: int = param(5, "label draws for the few-label table (mean and spread)", min=1)
    clf_steps: int = param(300, "steps of each few-label classifier (full batch of labelled images)", min=1)
    augment: int = param(
        600, "few-label: distorted copies of each labelled image for the augmented MLP row (0 = no such row)", min=0
    )
    augment_steps: int = param(8000, "steps of the augmented few-label classifier", min=1)
    augment_batch: int = param(
        2048, "random rows (labelled images and copies) per step of the augmented classifier (0 = all)", min=0
    )
    spread_points: int = param(20000, "training codes in the label-spreading graph (0 = all)", min=0)
    spread_k: int = param(10, "neighbours per point in the label-spreading graph", min=1)
    curve_points: int = param(25, "test-accuracy points along the first-N draw's classifiers (0 = none)", min=0)
    curve_test: int = param(2000, "test images scored at each of those points (0 = all)", min=0)
    search_widths: tuple[int, ...] = param((32, 128, 256), "architecture search: hidden-layer widths", min=1, max=65536)
    search_depths: tuple[int, ...] = param((0, 1, 2), "architecture search: hidden layers (0 = linear)", min=0, max=16)
    search_activations: tuple[str, ...] = param(
        ("relu", "tanh", "sigmoid"), "architecture search: activations (relu, leaky_relu, tanh, sigmoid, gelu)"
    )
    search_folds: int = param(5, "architecture search: cross-validation folds of the labelled images", min=2)
    demo_search: bool = param(True, "the demo (genlab report) runs the architecture search too")
    noise_dim: int = param(32, "GAN noise size", min=1)
    gan_steps: int = param(4000, "latent GAN steps", min=0)
    gan_lr: float = param(1e-3, "GAN learning rate (Adam, beta1 = 0.5; the reference used 2e-4)", min=0.0)
    gan_batch: int = param(256, "GAN batch size (codes)", min=1)
    cgan_steps: int = param(6000, "conditional GAN steps", min=0)
    cgan_matching: bool = param(True, "matching-aware cGAN discriminator (real codes + wrong class = fake)")
    judge_steps: int = param(1500, "steps of the judge CNN (batch 128)", min=0)
    grid_k: int = param(10, "samples per digit in the conditional grid", min=1)
    interp_steps: int = param(10, "frames in each interpolation row", min=2)


Config = LatentConfig

PRESETS: dict[str, LatentConfig] = {
    "full": LatentConfig(),
    "quick": LatentConfig(
        steps=400,
        train_limit=20000,
        clf_steps=100,
        augment=60,
        augment_steps=100,
        augment_batch=0,
        spread_points=10000,
        curve_points=10,
        curve_test=500,
        demo_search=False,
        gan_steps=1200,
        cgan_steps=1800,
        judge_steps=250,
        eval_every=200,
        log_every=10,
    ),
    # scikit-learn's 8x8 digits (embedded, no fetch) and a few steps of every part: the whole lab in seconds
    "tiny": LatentConfig(
        dataset="digits",
        steps=30,
        clf_steps=10,
        draws=2,
        augment=5,
        augment_steps=10,
        augment_batch=64,  # random rows, as in the full preset
        search_widths=(8, 32),
        search_depths=(0, 1),
        search_activations=("relu", "tanh"),
        search_folds=3,
        gan_steps=30,
        cgan_steps=30,
        judge_steps=20,
        grid_k=3,
        interp_steps=4,
        batch_size=64,
        log_every=5,
        threads=1,
    ),
}


QUICK_NOTE = (
    "quick demo: autoencoder 400 steps on the first 20k training images, few-label classifiers 100 "
    "steps (accuracy per epoch on 500 test images), label spreading over 10k codes, GAN 1200 / cGAN 1800 "
    "steps, judge 250 steps, no architecture search (genlab latent search --run DIR); the full settings are one "
    "flag away (genlab latent ae --preset full)"
)

# how genlab's autoencoder (genlab.nn.autoencoder.ConvAutoencoder) compares with the course's starter model
AE_VS_COURSE = (
    "As in the course's starter autoencoder: four stride-2 convolutions with 16/32/64/96 channels, a dense 64-number "
    "code, a mirrored decoder with a sigmoid output, BCE loss, input noise 0.35, batch 128. Not as in the starter: "
    "the kernel sizes (3x3 convolutions in the encoder; 4x4 transposed convolutions in the decoder, so that each "
    "stride-2 layer exactly doubles the side, 2 -> 4 -> 8 -> 16 -> 32), BatchNorm after every convolution, "
    "LeakyReLU(0.2) activations, the sigmoid folded into the loss (BCE from logits: the same maths, numerically "
    "safer), and the training (Adam 2e-3 with a cosine decay; the full preset runs 4000 steps, 8.5 epochs, "
    "where the report ran ~15)"
)


def quick_note(cfg: LatentConfig) -> str:
    """The quick demo's settings in brackets, for the captions of a quick run's outputs (else nothing)."""
    return f" ({QUICK_NOTE})" if cfg == PRESETS["quick"] else ""


def augment_note(cfg: LatentConfig) -> str:
    """What the augmented few-label row learns from, and for how long (for the few-label caption)."""
    rows = (cfg.augment + 1) * cfg.labels
    how = f"batches of {cfg.augment_batch} random rows" if 0 < cfg.augment_batch < rows else "full batches"
    return (
        f" The augmented MLP learns from each labelled image and {cfg.augment} randomly distorted copies of it "
        "(rotation up to 12 degrees, scale up to 10%, shift up to 2 pixels, a smooth elastic displacement up to 1.5 "
        f"pixels) through the same frozen encoder, for {cfg.augment_steps} steps of {how}: still only the labelled "
        "images, no unlabelled ones."
    )
