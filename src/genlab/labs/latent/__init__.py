"""A convolutional (denoising) autoencoder compresses 32x32 digits into 64 numbers, and the lab asks what those
numbers are good for. With only 50 labelled images, classifiers on the frozen codes (an MLP, logistic
regression, 1-NN, and label spreading over a k-NN graph of unlabelled codes) beat the same encoder trained from
scratch on those 50; a GAN that generates codes, decoded by the frozen decoder, draws new digits where
independent Gaussian codes do not; a conditional GAN draws the digit it is asked for, as a CNN judge trained on
real images confirms (agreement, and a Frechet distance in the judge's feature space); straight paths between
codes or GAN noise vectors stay among digit-like images; and the judge's occlusion and gradient maps, with a
receptive-field table checked on real torch layers, show which pixels a conv net looks at. The autoencoder is
the run's own checkpoint; every later part trains in ``<run>/stages/<part>`` with the same loop. The test
accuracy of the frozen-code and from-scratch classifiers is followed epoch by epoch, and ``genlab latent search``
chooses the classifier head on the codes (hidden widths, depth, activation) by cross-validation within the 50
labelled images, never by the test set. The autoencoder keeps the course starter's shape (stride-2 convolutions
16/32/64/96, a dense 64-number code, a mirrored decoder, sigmoid output, BCE, input noise 0.35) but not its
details: 3x3 encoder and 4x4 transposed-decoder kernels, BatchNorm after every convolution, LeakyReLU(0.2).
"""

from __future__ import annotations

from pathlib import Path

from genlab.labs import LabSpec
from genlab.labs.latent import classifiers, core
from genlab.labs.latent.cli import register
from genlab.labs.latent.config import PRESETS, LatentConfig
from genlab.labs.latent.figures import key_metrics  # importing figures registers the lab's outputs
from genlab.runs import Run

LABELS = {
    "dataset": "dataset",
    "train_images": "training images",
    "test_images": "test images",
    "ae_steps": "autoencoder: training steps",
    "ae_noise_sigma": "autoencoder: input noise std",
    "ae_test_bce": "autoencoder: test reconstruction BCE (per pixel)",
    "ae_test_mse": "autoencoder: test reconstruction MSE (per pixel)",
    "ae_train_seconds": "autoencoder: training time (s)",
    "ae_images_per_second": "autoencoder: training speed (images/s)",
    "gan_steps": "GAN: training steps",
    "gan_train_seconds": "GAN: training time (s)",
    "gan_codes_per_second": "GAN: training speed (codes/s)",
    "cgan_steps": "cGAN: training steps",
    "cgan_train_seconds": "cGAN: training time (s)",
    "cgan_codes_per_second": "cGAN: training speed (codes/s)",
    "judge_accuracy_on_reconstructions": "judge's accuracy on reconstructed test images",
    "fd_reconstructions_vs_test": "Frechet distance, reconstructions vs test images",
    "fd_train_vs_test": "Frechet distance, training vs test images (floor)",
    "fd_gan_vs_test": "Frechet distance, GAN samples vs test images",
    "fd_diag_gaussian_codes_vs_test": "Frechet distance, decoded Gaussian codes vs test images",
    "cgan_judge_agreement": "cGAN samples judged the requested digit (share)",
    "fd_cgan_vs_test": "Frechet distance, cGAN samples vs test images",
    "fd_samples": "images per Frechet distance",
    "fd_note": "about the Frechet distances",
    "few_label_labels": "few-label: labelled images",
    "few_label_draws": "few-label: label draws",
    "few_label_codes_mlp_first": "few-label, first labels: MLP on frozen codes (test accuracy)",
    "few_label_augmented_first": "few-label, first labels: MLP on frozen codes + augmented copies (test accuracy)",
    "few_label_best_codes_first": "few-label, first labels: best classifier on codes (test accuracy)",
    "few_label_spreading_first": "few-label, first labels: label spreading (test accuracy)",
    "few_label_scratch_first": "few-label, first labels: encoder + MLP from scratch (test accuracy)",
    "frozen_codes_beat_scratch": "frozen codes beat training from scratch",
    "acc_per_epoch_codes_last": "accuracy per epoch: frozen codes + MLP, last epoch (test accuracy)",
    "acc_per_epoch_codes_peak": "accuracy per epoch: frozen codes + MLP, best epoch (test accuracy)",
    "acc_per_epoch_scratch_last": "accuracy per epoch: from scratch, last epoch (test accuracy)",
    "acc_per_epoch_scratch_peak": "accuracy per epoch: from scratch, best epoch (test accuracy)",
    "search_best": "architecture search: head chosen by cross-validation",
    "search_best_cv_acc": "architecture search: chosen head's cross-validated accuracy",
    "search_best_test_acc": "architecture search: chosen head's test accuracy",
    "search_top_test_acc_in_grid": "architecture search: best test accuracy in the grid (not a fair choice)",
    "search_configurations": "architecture search: configurations tried",
    "interp_judge_confidence_ae_endpoint": "judge's confidence on reconstructions (interpolation ends)",
    "interp_judge_confidence_ae_midpoint": "judge's confidence at AE-space midpoints",
    "interp_judge_confidence_gan_midpoint": "judge's confidence at GAN-space midpoints",
    "judge_confidence_ae_endpoint": "judge's confidence on reconstructions (interpolation ends)",
    "judge_confidence_ae_midpoint": "judge's confidence at AE-space midpoints",
    "judge_confidence_gan_midpoint": "judge's confidence at GAN-space midpoints",
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
    """Every part of the lab (:func:`core.demo`), then the classifier-architecture search where the preset asks for
    it (full and tiny; the quick demo leaves it to ``genlab latent search``)."""
    runs = core.demo(root, quick=quick, device=device, quiet=quiet, reuse=reuse, tiny=tiny)
    classifiers.demo_search(runs, device=device, quiet=quiet, reuse=reuse)
    return runs


SPEC = LabSpec(
    name="latent",
    title="Autoencoder latent space: few-label classifier, latent GAN, conditional GAN",
    order=3,
    Config=LatentConfig,
    presets=PRESETS,
    register=register,
    demo=demo,
    key_metrics=key_metrics,
    story=__doc__,
    # quick: make demo, idle CPU; full: genlab report --full, busy CPU (270 s), plus the augmented head added since
    # (8000 steps on 600 copies: about 33 s a draw, 10 draws, measured by `genlab latent classify` on that run)
    expected_seconds={"quick": 48, "full": 650},
    labels=LABELS,
)
