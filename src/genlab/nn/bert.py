"""A BERT encoder in plain torch, enough to run the pretrained all-MiniLM-L6-v2 sentence encoder offline.

The ``minilm`` dataset (``genlab data fetch minilm``) holds a sentence-transformers folder: a BERT
(``config.json``, ``model.safetensors``), its WordPiece tokenizer (``tokenizer.json``) and a mean-pooling +
L2-normalise head. Reading it needs no ``transformers``: the weights load by name into :class:`BertEncoder`
(post-LayerNorm blocks, exact-erf GELU), the tokenizer is the ``tokenizers`` library's, and
:func:`mean_pool` is the sentence head. The result equals ``SentenceTransformer(folder).encode(...)`` to
float precision (checked once by hand against sentence-transformers 6.0.1; install ``genlab[text]`` to compare).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class _Layer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int, eps: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.ff1 = nn.Linear(d, ff)
        self.ff2 = nn.Linear(ff, d)
        self.ln2 = nn.LayerNorm(d, eps=eps)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        h = self.ln1(h + self.out(a.transpose(1, 2).reshape(b, n, d)))
        return self.ln2(h + self.ff2(F.gelu(self.ff1(h))))


class BertEncoder(nn.Module):
    """Token ids ``(B, T)`` and a padding mask -> contextual token vectors ``(B, T, d)``."""

    def __init__(
        self,
        vocab: int = 30522,
        d: int = 384,
        layers: int = 6,
        heads: int = 12,
        ff: int = 1536,
        max_len: int = 512,
        eps: float = 1e-12,
    ):
        super().__init__()
        self.word = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.token_type = nn.Embedding(2, d)
        self.ln = nn.LayerNorm(d, eps=eps)
        self.layers = nn.ModuleList(_Layer(d, heads, ff, eps) for _ in range(layers))
        self.dim = d

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        h = self.ln(self.word(ids) + self.pos(pos)[None] + self.token_type.weight[0])
        for layer in self.layers:
            h = layer(h, mask)
        return h

    @classmethod
    def from_folder(cls, folder: str | Path) -> BertEncoder:
        """Build from a Hugging Face BERT folder (``config.json`` + ``model.safetensors``)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        c = json.loads((folder / "config.json").read_text())
        model = cls(
            c["vocab_size"],
            c["hidden_size"],
            c["num_hidden_layers"],
            c["num_attention_heads"],
            c["intermediate_size"],
            c["max_position_embeddings"],
            c.get("layer_norm_eps", 1e-12),
        )
        w = {k.removeprefix("bert."): v for k, v in load_file(str(folder / "model.safetensors")).items()}
        sd = {
            "word.weight": w["embeddings.word_embeddings.weight"],
            "pos.weight": w["embeddings.position_embeddings.weight"],
            "token_type.weight": w["embeddings.token_type_embeddings.weight"],
            "ln.weight": w["embeddings.LayerNorm.weight"],
            "ln.bias": w["embeddings.LayerNorm.bias"],
        }
        for i in range(len(model.layers)):
            p = f"encoder.layer.{i}."
            for part in ("weight", "bias"):
                sd[f"layers.{i}.qkv.{part}"] = torch.cat(
                    [w[f"{p}attention.self.{n}.{part}"] for n in ("query", "key", "value")]
                )
                sd[f"layers.{i}.out.{part}"] = w[f"{p}attention.output.dense.{part}"]
                sd[f"layers.{i}.ln1.{part}"] = w[f"{p}attention.output.LayerNorm.{part}"]
                sd[f"layers.{i}.ff1.{part}"] = w[f"{p}intermediate.dense.{part}"]
                sd[f"layers.{i}.ff2.{part}"] = w[f"{p}output.dense.{part}"]
                sd[f"layers.{i}.ln2.{part}"] = w[f"{p}output.LayerNorm.{part}"]
        model.load_state_dict(sd)
        return model.eval()


def mean_pool(tokens: torch.Tensor, mask: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """The sentence vector: mean of the non-padding token vectors (then unit length, as all-MiniLM-L6-v2)."""
    m = mask.to(tokens.dtype).unsqueeze(-1)
    v = (tokens * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return F.normalize(v, dim=-1) if normalize else v
