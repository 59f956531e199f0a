"""No pretrained image model is reachable here, so the lab trains its own small text-to-image diffusion model
and steers it with a real pretrained text encoder. A U-Net (residual blocks with GroupNorm, a sinusoidal time
embedding, the prompt's MiniLM sentence vector entering every block by FiLM and its token vectors by
cross-attention at the low resolutions) learns to denoise MNIST digits on a VP cosine schedule; captions come
from many phrasings per class ("a handwritten 7", "the digit seven", ...), dropped 10% of the time so that the
same network is also the unconditional model that classifier-free guidance needs. The figures follow one image
from noise to digit (x_t beside the network's guess x0_hat), show random unprompted digits beside prompted
ones, sweep the guidance scale, and measure prompt adherence with a judge CNN trained on real digits, on
training phrasings and on held-out phrasings the model never saw; Frechet distances in the judge's features sit
beside the train-vs-test floor, and nearest training images check for copying. The quick preset works on 16x16
images, where a 3-minute CPU budget buys the most denoising steps (v-prediction, x0_hat clipped at every sampling
step, a learning rate that decays with the time budget); the full preset on MNIST's own 28x28, and
``--set space=latent`` runs the same diffusion on a conv autoencoder's 64-number codes (the idea behind latent
diffusion), which samples about 20 times faster. ``genlab imagediff compose`` asks for composition: on 2x2 canvases
of four digits, prompts such as "a 3 in the top left and a 7 in the bottom right" are followed only if pixels can
ask the prompt's tokens what to draw where they are, so the same U-Net is trained with cross-attention and with the
pooled sentence vector alone, and the judge reads each named quadrant.
"""

from pathlib import Path

from genlab.labs import LabSpec
from genlab.labs.imagediff import (
    compose,
    core,
    figures,  # noqa: F401 - registers the lab's figures and tables
)
from genlab.labs.imagediff.cli import register
from genlab.labs.imagediff.config import PRESETS, ImageDiffConfig
from genlab.labs.imagediff.core import key_metrics
from genlab.runs import Run

LABELS = {
    "unprompted_classes": "classes among unprompted samples",
    "best_guidance": "best guidance scale (sweep)",
    "adherence_train": "prompt adherence, training phrasings (share)",
    "adherence_heldout": "prompt adherence, held-out phrasings (share)",
    "fd": "Frechet distance, samples vs test images (judge features)",
    "fd_floor": "Frechet distance, training vs test images (floor)",
    "fd_unprompted": "Frechet distance, unprompted samples vs test images",
    "nearest_distance": "mean L2 distance of samples to their nearest training image",
    "nearest_distance_test": "mean L2 distance of test images to their nearest training image",
    "quadrant_adherence": "2x2 canvases: per-quadrant adherence (share)",
    "quadrant_both_right": "2x2 canvases: both named quadrants right (share)",
    "quadrant_adherence_cross": "2x2 canvases: per-quadrant adherence, cross-attention",
    "quadrant_adherence_pooled": "2x2 canvases: per-quadrant adherence, pooled sentence vector",
    "quadrant_both_right_cross": "2x2 canvases: both named quadrants right, cross-attention",
    "quadrant_both_right_pooled": "2x2 canvases: both named quadrants right, pooled sentence vector",
}


def demo(
    root: str | Path,
    *,
    quick: bool = True,
    device: str = "auto",
    quiet: bool = False,
    reuse: bool = True,
    tiny: bool = False,
) -> list[Run]:
    """The single-digit run (:func:`core.demo`); the full and tiny demos add the 2x2 composition experiment, which
    the quick demo leaves to ``genlab imagediff compose`` (two more trainings)."""
    runs = core.demo(root, quick=quick, device=device, quiet=quiet, reuse=reuse, tiny=tiny)
    if quick and not tiny:
        return runs
    return runs + compose.demo_runs(root, tiny=tiny, device=device, quiet=quiet)


SPEC = LabSpec(
    name="imagediff",
    title="Text-to-image: a U-Net denoiser steered by a MiniLM-encoded prompt, with guidance",
    order=5,
    Config=ImageDiffConfig,
    presets=PRESETS,
    register=register,
    demo=demo,
    key_metrics=key_metrics,
    story=__doc__,
    # quick: measured by .ci/run (180 s of training + figures); full, measured on a busy 2-core machine: the 28x28
    # run 48 min with its figures (genlab report --full on b0d27f3), the composition's 6400 steps per variant (two
    # processes) 109 min with its figures (the session before)
    expected_seconds={"quick": 275, "full": 9440},
    labels=LABELS,
)
