"""Why image diffusion needs 2D positions: a shift-equivariant denoiser cannot place things; coordinates can."""

from dataclasses import replace

import torch

from genlab.labs.theory import positions
from genlab.labs.theory.config import PRESETS
from genlab.labs.theory.core import Theory
from genlab.runs import Run


def test_without_positions_the_denoiser_commutes_with_shifts():
    torch.manual_seed(0)
    x, t = torch.randn(2, 1, 12, 12), torch.rand(2)
    plain, coords = positions.Denoiser("circular", False), positions.Denoiser("circular", True)
    for shift in ((3, 5), (1, 0)):
        moved = torch.roll(x, shift, dims=(2, 3))
        torch.testing.assert_close(plain(moved, t), torch.roll(plain(x, t), shift, dims=(2, 3)))
        assert not torch.allclose(coords(moved, t), torch.roll(coords(x, t), shift, dims=(2, 3)), atol=1e-4)


def test_data_lives_top_left_and_the_measure_sees_it():
    data = positions.blobs(500, torch.Generator().manual_seed(0))
    assert positions.top_left_share(data) == 1.0
    assert positions.top_left_share(torch.roll(data, (6, 6), dims=(2, 3))) == 0.0


def test_denoiser_with_coordinates_learns_where_the_blobs_are(tmp_path):
    torch.set_num_threads(1)
    cfg = replace(PRESETS["quick"], diffusion_steps=500)
    th = Theory(Run.create("theory", cfg, name="t", root=tmp_path), cfg)
    variants = (positions.VARIANTS[0], positions.VARIANTS[2])  # the zero-padding one is only shown in the report
    ev = positions.evidence_diffusion_positions(th, n=128, variants=variants)
    share = {r["denoiser"]: r["top_left_share"] for r in ev["rows"]}
    assert share["circular padding + 2D coordinates"] > 0.8 and share["circular padding, no coordinates"] < 0.45
