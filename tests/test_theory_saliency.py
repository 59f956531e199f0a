"""Grad-CAM on a model whose answer is known, the deletion measure, and the trained comparison's check."""

import numpy as np
import pytest
import torch
from torch import nn

from genlab.labs.theory import saliency
from genlab.labs.theory.config import PRESETS
from genlab.labs.theory.core import Theory
from genlab.nn.gradcam import deletion_drop, gradcam_map
from genlab.runs import Run


class Halves(nn.Module):
    """Two channels: the image's left half (right half zeroed) and its right half."""

    def forward(self, x):
        left = torch.zeros_like(x)
        left[..., : x.shape[-1] // 2] = 1
        return torch.cat([x * left, x * (1 - left)], 1)


class LeftHalf(nn.Module):
    """Class 1's score reads the left-half channel only, so only the left half matters for it."""

    def __init__(self):
        super().__init__()
        self.halves = Halves()

    def forward(self, x):
        left = self.halves(x)[:, 0].mean((1, 2))
        return torch.stack([torch.zeros_like(left), left], 1)


def test_gradcam_finds_the_half_the_score_reads():
    x = torch.rand(3, 1, 8, 8) + 0.1
    model = LeftHalf()
    cam = gradcam_map(model, model.halves, x, torch.ones(3, dtype=torch.long))
    assert cam.shape == (3, 8, 8)
    assert cam[:, :, :3].min() > 0 and np.allclose(cam[:, :, 5:], 0)  # right half: zero (bilinear blur at 4)
    with pytest.raises(ValueError, match="not run"):
        gradcam_map(model, LeftHalf().halves, x, torch.ones(3, dtype=torch.long))  # a layer of another model


def test_deletion_ranks_a_true_map_above_a_wrong_one():
    model = LeftHalf()
    x = torch.rand(4, 1, 8, 8) + 0.1
    y = torch.ones(4, dtype=torch.long)
    right_map = np.zeros((4, 8, 8))
    right_map[:, :, :4] = 1.0 + np.random.default_rng(0).random((4, 8, 4))
    wrong_map = right_map[:, :, ::-1].copy()
    assert deletion_drop(model, x, y, right_map, 0.25) > 0 == deletion_drop(model, x, y, wrong_map, 0.25)


def test_trained_judge_maps_beat_random_deletion(tmp_path):
    torch.set_num_threads(1)
    cfg = PRESETS["quick"]
    th = Theory(Run.create("theory", cfg, name="t", root=tmp_path), cfg)
    ev = saliency.evidence_saliency(th, n=32)
    assert ev["passed"], ev["check"]
