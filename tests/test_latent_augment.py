"""Augmenting the few labelled images: distorted copies keep their label, differ from the original, stay close to it."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import ConfigError
from genlab.nn.autoencoder import ConvAutoencoder, encode_all
from genlab.nn.few_label import augment_images, augmented_codes, frozen_codes, standardiser

NO_DISTORTION = {"rotate": 0.0, "shift": 0.0, "scale": 0.0, "elastic": 0.0}


def _strokes(n: int = 4) -> torch.Tensor:
    """``n`` images that differ: a vertical bar at a different column in each."""
    x = torch.zeros(n, 1, 32, 32)
    for i in range(n):
        x[i, 0, 8:24, 4 + 6 * i : 8 + 6 * i] = 1.0
    return x


def test_augmented_copies_are_distorted_versions_of_their_own_image():
    x = _strokes()
    a = augment_images(x, 5, seed=0)
    assert a.shape == (20, 1, 32, 32)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    copies = a.view(5, 4, 1, 32, 32)  # copy-major: row c * N + i is a copy of image i
    for c in range(5):
        for i in range(4):
            assert not torch.allclose(copies[c, i], x[i], atol=1e-3)  # every copy moved
            # ... but it is still its own image: closer to image i than to any other one
            dist = ((x - copies[c, i]) ** 2).flatten(1).sum(1)
            assert int(dist.argmin()) == i
    assert torch.equal(a, augment_images(x, 5, seed=0))  # drawn from the seed alone
    assert not torch.equal(a, augment_images(x, 5, seed=1))


def test_no_distortion_gives_the_original_back_and_each_kind_moves_pixels():
    x = _strokes()
    assert torch.allclose(augment_images(x, 3, **NO_DISTORTION), x.repeat(3, 1, 1, 1), atol=1e-6)
    for kind, amount in {"rotate": 15.0, "shift": 2.0, "scale": 0.2, "elastic": 2.0}.items():
        moved = augment_images(x, 3, **{**NO_DISTORTION, kind: amount})
        assert (moved - x.repeat(3, 1, 1, 1)).abs().max() > 0.1, kind
    assert augment_images(x, 0).shape == (0, 1, 32, 32)
    with pytest.raises(ConfigError, match="augment"):
        augment_images(x, -1)


def test_augmented_codes_keep_labels_and_put_the_originals_first():
    torch.manual_seed(0)
    ae = ConvAutoencoder(8).eval()
    x, y = _strokes(), torch.tensor([3, 1, 4, 1])
    (ztr, zte), scale = frozen_codes(ae.encoder, x, x[:2])
    assert torch.allclose(ztr.mean(0), torch.zeros(8), atol=1e-5)  # standardised on the training codes
    assert torch.allclose(zte, ztr[:2], atol=1e-5)
    z, labels = augmented_codes(ae.encoder, x, y, 3, scale, seed=2)
    assert z.shape == (16, 8) and torch.equal(labels, y.repeat(4))
    assert torch.allclose(z[:4], ztr, atol=1e-5)  # the originals, on the same scale
    assert not torch.allclose(z[4:], ztr.repeat(3, 1), atol=1e-3)  # the copies are other codes
    raw = encode_all(ae.encoder, x)
    assert torch.allclose(standardiser(raw)(raw), ztr, atol=1e-5)
