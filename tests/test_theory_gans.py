"""The GAN-pairing question: the paired 2D domains, and a conditional GAN learns the pairing only from pairs."""

from dataclasses import replace

import torch

from genlab.data import paired2d
from genlab.diffusion.metrics import energy_distance
from genlab.labs.theory import gans
from genlab.labs.theory.config import PRESETS
from genlab.labs.theory.core import Theory
from genlab.runs import Run


def test_partner_is_a_bijection_onto_domain_b():
    g = torch.Generator().manual_seed(0)
    a = paired2d.sample_a(2000, g)
    b = paired2d.partner(a)
    assert torch.allclose((b - torch.tensor(paired2d.CENTRE_B)).norm(dim=1), 1.5 - a.norm(dim=1), atol=1e-5)
    # the partners are distributed as domain B, so the marginals cannot tell the pairing
    assert energy_distance(b, paired2d.sample_b(2000, g)) < 0.01
    a2, b2 = paired2d.pairs(8, torch.Generator().manual_seed(1), paired=False)
    assert not torch.allclose(paired2d.partner(a2), b2)


def test_conditional_gan_learns_the_pairing_from_pairs_only(tmp_path):
    torch.set_num_threads(1)
    cfg = replace(PRESETS["quick"], gan_steps=600)
    th = Theory(Run.create("theory", cfg, name="t", root=tmp_path), cfg)
    a = paired2d.sample_a(500, torch.Generator().manual_seed(5))
    errors = {}
    for paired in (True, False):
        model = gans.train(th, "cgan", paired)
        with torch.no_grad():
            out = gans.translate("cgan", model, a, torch.Generator().manual_seed(6))
        errors[paired] = float((out - paired2d.partner(a)).norm(dim=1).mean())
    assert errors[True] < 0.5 and errors[False] > 1.5 * errors[True], errors
