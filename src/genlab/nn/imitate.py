"""Self-attention layers over the pixels of an image that can imitate a convolution or a fully connected layer.

Convolution (after Cordonnier, Loukas and Jaggi, 2020). :class:`RelativeAttention` makes every pixel a query
and every pixel of the zero-padded image a key, with attention logits that depend only on the offset between
them: head h scores offset d by a learned ``bias[h, d]``. A head whose bias peaks at one offset copies that
neighbour; with one head per offset of a k x k kernel (k^2 heads, 9 for 3x3) the output projection puts the
kernel's weights on the copies, and the layer *is* the convolution::

    out_i = W_o [sum_j a^1_ij V x_j, ..., sum_j a^H_ij V x_j],   a^h_ij = softmax_j(bias[h, j - i])

With fewer heads a pixel only gets a positive, normalised average of its neighbours per head, which cannot
reproduce signed kernel weights.

Fully connected layer. :class:`ClsAttention` adds a [CLS] query that attends to the pixel tokens and reads the
layer's output from its result. A fully connected layer gives every pixel its own signed weight. With BERT's
additive embeddings (x_j u + p_j) one head returns one weighted mean of the pixels, sum_j a_j x_j, with
positive weights: a single linear feature per head, so a 10-output layer needs about 2 x 10 heads. With the
pixel value multiplying its position embedding (x_j p_j) the value already carries a per-pixel signed vector:
sum_j a_j x_j V p_j is any linear map of rank <= d, so one head of width d >= the layer's outputs is exact.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class RelativeAttention(nn.Module):
    """Pixels attend to their zero-padded neighbourhood by learned relative-position biases only."""

    def __init__(self, size: int, in_ch: int, out_ch: int, heads: int, pad: int = 1, head_dim: int = 4):
        super().__init__()
        self.size, self.pad, self.heads, self.head_dim = size, pad, heads, head_dim
        span = 2 * (size + pad) - 1  # offsets from any query to any key of the padded grid
        self.bias = nn.Parameter(torch.randn(heads, span, span) * 0.1)
        self.value = nn.Linear(in_ch, heads * head_dim, bias=False)
        self.out = nn.Linear(heads * head_dim, out_ch)
        q = torch.arange(size) + pad  # query rows/cols in padded coordinates
        k = torch.arange(size + 2 * pad)
        d = k[None, :] - q[:, None] + (size + pad - 1)  # (size, padded) offset indices along one axis
        flat = d[:, None, :, None] * span + d[None, :, None, :]  # (qy, qx, ky, kx) -> index into span x span
        self.register_buffer("offsets", flat.reshape(size * size, -1), persistent=False)

    def weights(self) -> torch.Tensor:
        """Attention ``(heads, size^2 queries, padded^2 keys)``: softmax over keys of bias[h, key - query]."""
        return self.bias.flatten(1)[:, self.offsets].softmax(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        xp = nn.functional.pad(x, (self.pad,) * 4)
        v = self.value(xp.flatten(2).transpose(1, 2))  # (B, keys, heads * dh)
        v = v.view(b, -1, self.heads, self.head_dim).permute(2, 1, 0, 3).reshape(self.heads, -1, b * self.head_dim)
        y = self.weights() @ v  # (heads, queries, B * dh): the batch rides along in one matmul per head
        y = y.view(self.heads, h * w, b, self.head_dim).permute(2, 1, 0, 3)  # (B, queries, heads, dh)
        y = self.out(y.reshape(b, h * w, -1))
        return y.transpose(1, 2).reshape(b, -1, h, w)


class ClsAttention(nn.Module):
    """A [CLS] query attends to the pixel tokens; its result, projected, is the layer's output."""

    def __init__(self, pixels: int, out: int, heads: int = 1, dim: int = 32, multiplicative: bool = False):
        super().__init__()
        self.heads, self.dim, self.multiplicative = heads, dim, multiplicative
        self.pos = nn.Parameter(torch.randn(pixels, dim) / math.sqrt(dim))
        self.pixel = nn.Parameter(torch.randn(dim) / math.sqrt(dim))  # additive: the pixel value's embedding
        self.cls = nn.Parameter(torch.randn(heads, dim) / math.sqrt(dim))  # one query per head
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, heads * dim, bias=False)
        self.out = nn.Linear(heads * dim, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # (B, pixels)
        tokens = x[..., None] * self.pos if self.multiplicative else x[..., None] * self.pixel + self.pos
        # keys from the positions only: where each head looks does not depend on the image
        a = (self.cls @ self.key(self.pos).T / math.sqrt(self.dim)).softmax(-1)  # (heads, pixels)
        pooled = torch.einsum("hp,bpd->bhd", a, tokens)  # sum_j a_j t_j: the value map is linear, so pool first
        y = torch.einsum("bhd,hed->bhe", pooled, self.value.weight.view(self.heads, self.dim, self.dim))
        return self.out(y.flatten(1))
