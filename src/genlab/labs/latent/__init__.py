"""A convolutional (denoising) autoencoder compresses 32x32 digits into 64 numbers, and the lab asks what those
numbers are good for. With only 50 labelled images, classifiers on the frozen codes (an MLP, logistic
regression, 1-NN, and label spreading over a k-NN graph of unlabelled codes) beat the same encoder trained from
scratch on those 50; a GAN that generates codes, decoded by the frozen decoder, draws new digits where
independent Gaussian codes do not; a conditional GAN draws the digit it is asked for, as a CNN judge trained on
real images confirms (agreement, and a Frechet distance in the judge's feature space); straight paths between
codes or GAN noise vectors stay among digit-like images; and the judge's occlusion and gradient maps, with a
receptive-field table checked on real torch layers, show which pixels a conv net looks at. The autoencoder is
the run's own checkpoint; every later part trains in ``<run>/stages/<part>`` with the same loop.
"""

from genlab.labs import LabSpec
from genlab.labs.latent.cli import register
from genlab.labs.latent.config import PRESETS, LatentConfig
from genlab.labs.latent.core import demo
from genlab.labs.latent.figures import key_metrics  # importing figures registers the lab's outputs

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
)
