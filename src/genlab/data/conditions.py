"""Conditions for a diffusion model from captions, class labels or free prompts (one :class:`Conditioner`).

``text``: a caption's sentence vector (FiLM) and token vectors (cross-attention) from the text encoder, every
caption encoded once; ``class``: a one-hot vector; ``none``: no condition. Dropped conditions (classifier-free
guidance) keep their tensors and set ``Cond.drop``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genlab.data.captions import CanvasCaptions, Captions, make_canvas_captions, make_captions
from genlab.data.text_encoder import TextBank, encode, encoder_dim
from genlab.nn.unet import Cond


@dataclass
class Conditioner:
    """Turns captions, labels or free prompts into the U-Net's :class:`~genlab.nn.unet.Cond`."""

    kind: str  # text | class | none
    num_classes: int
    captions: Captions
    encoder: str = "minilm"
    bank: TextBank | None = None  # every caption (then every canvas caption), encoded once
    canvas: CanvasCaptions | None = None  # 2x2 canvas prompts (text only)
    cross_attn: bool = True  # give the network the prompt's tokens (False: the sentence vector only)

    @classmethod
    def make(
        cls,
        kind: str,
        dataset: str,
        num_classes: int,
        encoder: str = "minilm",
        *,
        canvas: bool = False,
        cross_attn: bool = True,
    ) -> Conditioner:
        caps = make_captions(dataset, num_classes)
        quads = make_canvas_captions(num_classes) if canvas and kind == "text" else None
        texts = caps.texts + (quads.texts if quads else ())
        bank = encode(texts, encoder) if kind == "text" else None
        return cls(kind, num_classes, caps, encoder, bank, quads, cross_attn)

    @property
    def dims(self) -> tuple[int, int]:
        """(vector size, token size) the U-Net is built for."""
        if self.kind == "text":
            d = encoder_dim(self.encoder)
            return d, d if self.cross_attn else 0
        return (self.num_classes, 0) if self.kind == "class" else (0, 0)

    def of_canvas(self, idx: torch.Tensor, device: torch.device) -> Cond:
        """The conditions of canvas captions ``idx`` (indices into :attr:`canvas`)."""
        return self.of_captions(idx + len(self.captions.texts), device)

    def canvas_batch(self, n: int, device: torch.device, seed: int = 0) -> tuple[Cond, torch.Tensor, list[str]]:
        """``n`` canvas prompts drawn with ``seed`` (one or two named quadrants, any template), their named
        classes ``(n, 4)`` (-1 = free) and their texts."""
        g = torch.Generator().manual_seed(seed)
        idx = torch.randint(0, len(self.canvas.texts), (n,), generator=g)
        named = torch.tensor([self.canvas.named[i] for i in idx])
        return self.of_canvas(idx, device), named, [self.canvas.texts[i] for i in idx]

    def train_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, M) caption indices of each class's training phrasings (padded) and their counts."""
        rows = [self.captions.of(y) for y in range(self.num_classes)]
        m = max(len(r) for r in rows)
        table = torch.tensor([r + [r[0]] * (m - len(r)) for r in rows])
        return table, torch.tensor([len(r) for r in rows])

    def of_captions(self, idx: torch.Tensor, device: torch.device) -> Cond:
        b = self.bank
        return Cond(b.vec[idx].to(device), b.tokens[idx].to(device), b.mask[idx].to(device))

    def of_labels(self, y: torch.Tensor, device: torch.device) -> Cond | None:
        if self.kind == "class":
            return Cond(F.one_hot(y, self.num_classes).float().to(device))
        if self.kind == "text":  # the first training phrasing of each class
            return self.of_captions(torch.tensor([self.captions.of(int(c))[0] for c in y]), device)
        return None

    def of_prompts(self, texts: list[str], device: torch.device) -> Cond:
        bank = encode(texts, self.encoder)
        return Cond(bank.vec.to(device), bank.tokens.to(device), bank.mask.to(device))

    def eval_batch(
        self, per_class: int, device: torch.device, heldout: bool = False
    ) -> tuple[Cond | None, torch.Tensor]:
        """``per_class`` conditions for each class and their classes: text cycles through each class's training
        (or held-out) phrasings, labels repeat."""
        if self.kind != "text":
            y = torch.arange(self.num_classes).repeat_interleave(per_class)
            return self.of_labels(y, device), y
        idx, ys = [], []
        for y in range(self.num_classes):
            pool = self.captions.of(y, heldout)
            idx += [pool[k % len(pool)] for k in range(per_class)]
            ys += [y] * per_class
        return self.of_captions(torch.tensor(idx), device), torch.tensor(ys)

    def describe(self, label: int, classes: tuple[str, ...] | list[str], heldout: bool = False) -> str:
        """What a condition for class ``label`` says: its first (training or held-out) phrasing, or the class."""
        if self.kind == "text":
            return self.captions.first(label, heldout)
        return f"class {classes[label]}" if self.kind == "class" else "(no condition)"

    def unconditional(self, n: int, device: torch.device) -> Cond | None:
        """A batch of empty prompts (dropped conditions)."""
        if self.kind == "none":
            return None
        c = self.of_labels(torch.zeros(n, dtype=torch.long), device)
        return c.dropped(torch.ones(n, dtype=torch.bool, device=device))
