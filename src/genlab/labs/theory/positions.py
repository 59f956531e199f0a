"""Why image diffusion models need 2D positional information: a small denoiser with and without it.

The data: 12x12 images, each a bright blob somewhere in the top-left quadrant. Three small convolutional
denoisers (same size, DDPM noise-prediction loss on the cosine schedule, trained through fit) differ only in
what they know about where a pixel is:

* circular padding, no coordinates: every layer is exactly equivariant to (circular) shifts, and the start
  noise is too, so the samples' distribution is shift-invariant: a blob lands in each quadrant equally often,
  whatever the training;
* zero padding, no coordinates: the image border leaks some position (the usual U-Net's only clue);
* circular padding plus two coordinate channels (row and column in [-1, 1]): 2D position, given.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genlab.diffusion import VPCosineSchedule, diffusion_loss, sample
from genlab.labs.theory.core import Theory, evidence, fit_stage
from genlab.runs import seed_everything
from genlab.train import make_optimizer

SIZE = 12
VARIANTS = (("circular", False), ("zeros", False), ("circular", True))  # (padding, coordinate channels)


def blobs(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` images (n, 1, 12, 12) in [-1, 1]: a Gaussian blob (std 1.2 px) centred in the top-left quadrant."""
    centre = 1.0 + 3.0 * torch.rand(n, 2, generator=generator)  # rows and columns 1..4
    grid = torch.arange(SIZE, dtype=torch.float32)
    dy = (grid[None, :] - centre[:, :1]) ** 2
    dx = (grid[None, :] - centre[:, 1:]) ** 2
    img = torch.exp(-(dy[:, :, None] + dx[:, None, :]) / (2 * 1.2**2))
    return (2 * img - 1)[:, None]


def label(variant: tuple[str, bool]) -> str:
    padding, coords = variant
    return f"{padding} padding" + (" + 2D coordinates" if coords else ", no coordinates")


class Denoiser(nn.Module):
    """Four 3x3 convolutions (32 channels, SiLU); inputs: the noisy image, t as a constant channel and,
    optionally, the pixel's row and column."""

    def __init__(self, padding: str = "circular", coords: bool = False, width: int = 32):
        super().__init__()
        self.coords = coords
        chans = [2 + 2 * coords, width, width, width, 1]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
            layers.append(nn.Conv2d(a, b, 3, padding=1, padding_mode=padding))
            if i < len(chans) - 2:
                layers.append(nn.SiLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        parts = [x, t.view(-1, 1, 1, 1).expand(b, 1, h, w).to(x.dtype)]
        if self.coords:
            ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
            parts.append(torch.stack([ys, xs]).to(x)[None].expand(b, 2, h, w))
        return self.net(torch.cat(parts, 1))


def clipped(model: nn.Module, schedule: VPCosineSchedule):
    """The model's noise prediction with its denoised guess clipped to the data's range [-1, 1] (DDPM's
    ``clip_denoised``), so that the first steps, where alpha is tiny, cannot blow up."""

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, s = (v.to(x).view(-1, 1, 1, 1) for v in (schedule.alpha(t), schedule.sigma(t)))
        x0 = ((x - s * model(x, t)) / a).clamp(-1, 1)
        return (x - a * x0) / s

    return eps_fn


def top_left_share(images: torch.Tensor) -> float:
    """Share of images whose brightest pixel lies in the top-left quadrant."""
    flat = images.flatten(1).argmax(1)
    row, col = flat // SIZE, flat % SIZE
    return float(((row < SIZE // 2) & (col < SIZE // 2)).float().mean())


@evidence("diffusion_positions")
def evidence_diffusion_positions(th: Theory, n: int | None = None, variants=VARIANTS) -> dict[str, Any]:
    n = n or th.cfg.diffusion_samples
    schedule = VPCosineSchedule()
    rows, samples = [], {}
    for variant in variants:
        seed_everything(th.cfg.seed)
        model = Denoiser(*variant)

        def batches(step: int) -> torch.Tensor:
            return blobs(64, torch.Generator().manual_seed(th.cfg.seed * 1_000_003 + step)).to(th.device)

        def step_fn(m: nn.Module, x0: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"loss": diffusion_loss(m, schedule, x0)}

        opt = make_optimizer(model.parameters(), lr=2e-3)
        name = f"positions-{variant[0]}-{'coords' if variant[1] else 'none'}"
        config = {"padding": variant[0], "coords": variant[1]}
        model = fit_stage(th, name, model, opt, step_fn, batches, steps=th.cfg.diffusion_steps, config=config).cpu()
        with torch.no_grad():
            out = sample(
                clipped(model, schedule),
                schedule,
                "ddim",
                shape=(n, 1, SIZE, SIZE),
                steps=40,
                generator=torch.Generator().manual_seed(th.cfg.seed + 5),
            ).x
        samples[label(variant)] = out[:8].clamp(-1, 1).numpy()
        rows.append({"denoiser": label(variant), "top_left_share": top_left_share(out)})
    share = {r["denoiser"]: r["top_left_share"] for r in rows}
    none, coords = share[label(VARIANTS[0])], share[label(VARIANTS[2])]
    passed = none < 0.45 and coords > 0.8
    return {
        "rows": rows,
        "samples": samples,
        "data": blobs(8, torch.Generator().manual_seed(1)).numpy(),
        "passed": passed,
        "check": f"share of samples with the blob in the top-left quadrant (data: 1.00): {none:.2f} without any "
        f"position (shift-invariant: about 0.25, < 0.45), {share.get(label(VARIANTS[1]), -1):.2f} with "
        f"zero padding only, {coords:.2f} with 2D coordinates (> 0.8)",
    }
