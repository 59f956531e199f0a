"""Attention imitating a convolution (k^2 relative-position heads) and a fully connected layer ([CLS] query)."""

import torch
import torch.nn.functional as F

from genlab.labs.theory import imitation
from genlab.labs.theory.config import PRESETS
from genlab.labs.theory.core import Theory
from genlab.nn.imitate import ClsAttention, RelativeAttention
from genlab.runs import Run


def test_nine_one_hot_heads_are_exactly_a_3x3_convolution():
    torch.manual_seed(0)
    size, kernel, bias = 6, torch.randn(2, 1, 3, 3), torch.randn(2)
    att = RelativeAttention(size, 1, 2, heads=9, head_dim=1)
    centre = size + 1 - 1  # bias index of offset 0 (size + pad - 1)
    with torch.no_grad():
        att.bias.fill_(-1e4)
        att.value.weight.fill_(1.0)
        for h, (u, v) in enumerate((u, v) for u in (-1, 0, 1) for v in (-1, 0, 1)):
            att.bias[h, centre + u, centre + v] = 0.0  # head h looks at the neighbour (u, v) only
            att.out.weight[:, h] = kernel[:, 0, u + 1, v + 1]
        att.out.bias.copy_(bias)
    x = torch.randn(3, 1, size, size)
    torch.testing.assert_close(att(x), F.conv2d(x, kernel, bias, padding=1), atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # one head spread over two neighbours is no longer the convolution
        att.bias[0, centre, centre] = 0.0
    assert not torch.allclose(att(x), F.conv2d(x, kernel, bias, padding=1), atol=1e-3)


def test_one_additive_head_gives_one_feature_a_multiplicative_head_a_full_map():
    torch.manual_seed(0)
    x = torch.randn(200, 1, 8, 8)
    add, mul = ClsAttention(64, 10, 1), ClsAttention(64, 10, 1, multiplicative=True)
    # the additive head's output moves along one direction only: rank 1 after removing the constant
    rank = lambda m: torch.linalg.matrix_rank((m(x) - m(x).mean(0)).detach(), rtol=1e-4)  # noqa: E731
    assert rank(add) == 1 and rank(mul) == 10


def test_trained_imitators_check(tmp_path):
    torch.set_num_threads(1)
    cfg = PRESETS["quick"]  # 600 steps: the check of the report itself
    th = Theory(Run.create("theory", cfg, name="t", root=tmp_path), cfg)
    ev = imitation.evidence_attention_imitation(th)
    assert ev["passed"], ev["check"]
