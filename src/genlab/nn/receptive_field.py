"""Output size and receptive field of a stack of convolution and pooling layers, layer by layer.

For a layer with kernel ``k``, stride ``s``, padding ``p`` and dilation ``d`` on an input of ``n`` pixels:

    n_out = floor((n + 2p - d (k - 1) - 1) / s) + 1          (the formula in torch.nn.Conv2d's documentation)
    j_out = j_in * s                                         (jump: input pixels between adjacent outputs)
    r_out = r_in + d (k - 1) * j_in                          (receptive field, starting from r = 1, j = 1)

The lab's example is 128x128 through conv3, conv3, maxpool2, conv3, conv5 (no padding, stride 1 convs):

* with PyTorch's ``MaxPool2d(2)`` (stride defaults to the kernel size, 2) the sizes are
  128 -> 126 -> 124 -> 62 -> 60 -> 56, and each output pixel sees an 18x18 input window;
* the 117x117 of the reference answer is what a *stride-1* 2x2 max-pool gives:
  128 -> 126 -> 124 -> 123 -> 121 -> 117, with a 12x12 receptive field.

:func:`torch_stack` builds the same layers in torch so a test can check both numbers against real tensors
(the size by a forward pass, the receptive field by which input pixels get a non-zero gradient).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from genlab.errors import ConfigError


@dataclass(frozen=True)
class Layer:
    """One layer: ``kind`` is conv or maxpool (avgpool behaves the same), square kernel/stride/padding."""

    kind: str
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1

    @property
    def name(self) -> str:
        extra = "".join(
            f", {k}={v}"
            for k, v, d in (
                ("stride", self.stride, 1 if self.kind == "conv" else self.kernel),
                ("padding", self.padding, 0),
                ("dilation", self.dilation, 1),
            )
            if v != d
        )
        return f"{self.kind}{self.kernel}{extra}"


def conv(k: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> Layer:
    return Layer("conv", k, stride, padding, dilation)


def maxpool(k: int, stride: int | None = None, padding: int = 0) -> Layer:
    """Max-pooling; ``stride`` defaults to the kernel size, as in ``torch.nn.MaxPool2d``."""
    return Layer("maxpool", k, k if stride is None else stride, padding)


EXAMPLE = (conv(3), conv(3), maxpool(2), conv(3), conv(5))
EXAMPLE_STRIDE1_POOL = (conv(3), conv(3), maxpool(2, stride=1), conv(3), conv(5))


def parse_stack(text: str) -> tuple[Layer, ...]:
    """``"conv3,conv3,maxpool2,conv3,conv5"`` (``/s`` a stride, e.g. ``maxpool2/1``) -> layers."""
    layers = []
    for tok in (t.strip().lower() for t in text.split(",") if t.strip()):
        base, _, stride = tok.partition("/")
        kind = next((k for k in ("conv", "maxpool", "pool") if base.startswith(k)), None)
        digits = base[len(kind) :] if kind else ""
        if kind is None or not digits.isdigit() or (stride and not stride.isdigit()):
            raise ConfigError(f"bad layer {tok!r}; write e.g. conv3, conv5/2 or maxpool2 (maxpool2/1 for stride 1)")
        k = int(digits)
        s = int(stride) if stride else None
        layers.append(conv(k, s or 1) if kind == "conv" else maxpool(k, s))
    return tuple(layers)


def stack_geometry(size: int, layers: Sequence[Layer]) -> list[dict[str, int | str]]:
    """One row per layer: its output size, jump and receptive field (from the formulas above)."""
    n, jump, rf = size, 1, 1
    rows = []
    for layer in layers:
        out = (n + 2 * layer.padding - layer.dilation * (layer.kernel - 1) - 1) // layer.stride + 1
        if out < 1:
            raise ConfigError(
                f"layer {layer.name} gets a {n}x{n} input and would leave no output; use a larger input or fewer layers"
            )
        rf = rf + layer.dilation * (layer.kernel - 1) * jump
        jump *= layer.stride
        n = out
        rows.append({"layer": layer.name, "output": out, "jump": jump, "receptive_field": rf})
    return rows


def torch_stack(layers: Sequence[Layer], channels: int = 1) -> nn.Sequential:
    """The same stack as torch modules (convs with ``channels`` in and out, all weights 1, no bias)."""
    mods: list[nn.Module] = []
    for layer in layers:
        if layer.kind == "conv":
            c = nn.Conv2d(channels, channels, layer.kernel, layer.stride, layer.padding, layer.dilation, bias=False)
            nn.init.constant_(c.weight, 1.0)
            mods.append(c)
        else:
            mods.append(nn.MaxPool2d(layer.kernel, layer.stride, layer.padding))
    return nn.Sequential(*mods)


def measured_geometry(size: int, layers: Sequence[Layer]) -> tuple[int, int]:
    """Output size and receptive field measured on real torch layers.

    The receptive field is the side of the box of input pixels whose gradient is non-zero for the centre
    output pixel (a random positive input, so max-pooling routes the gradient somewhere in every window;
    with all-ones conv weights no contribution cancels). This is the extent that *can* influence the
    output: max-pooling picks one pixel per window, so the box is measured over many random inputs.
    """
    net = torch_stack(layers)
    gen = torch.Generator().manual_seed(0)
    rows = cols = None
    out_size = 0
    for _ in range(16):
        x = (torch.rand(1, 1, size, size, generator=gen) + 0.1).requires_grad_(True)
        y = net(x)
        out_size = y.shape[-1]
        c = out_size // 2
        y[0, 0, c, c].backward()
        nz = x.grad[0, 0].abs() > 0
        r = nz.any(1).nonzero().flatten()
        k = nz.any(0).nonzero().flatten()
        rows = (
            (r.min().item(), r.max().item())
            if rows is None
            else (min(rows[0], r.min().item()), max(rows[1], r.max().item()))
        )
        cols = (
            (k.min().item(), k.max().item())
            if cols is None
            else (min(cols[0], k.min().item()), max(cols[1], k.max().item()))
        )
    return out_size, max(rows[1] - rows[0] + 1, cols[1] - cols[0] + 1)


def geometry_table(size: int, stacks: Mapping[str, Sequence[Layer]], key: str = "stack") -> list[dict[str, Any]]:
    """:func:`stack_geometry` rows of each named stack (its name under ``key``), with the last row of each also
    measured on torch layers (:func:`measured_geometry`; blank on the other rows)."""
    rows = []
    for label, stack in stacks.items():
        geo = stack_geometry(size, stack)
        out, rf = measured_geometry(size, stack)
        for i, r in enumerate(geo):
            last = i == len(geo) - 1
            rows.append(
                {
                    key: label,
                    **r,
                    "measured_output": out if last else "",
                    "measured_receptive_field": rf if last else "",
                }
            )
    return rows
