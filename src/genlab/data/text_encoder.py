"""Prompts to vectors: the pretrained MiniLM sentence encoder, or a hashing stand-in for tests.

:func:`encode` turns prompts into a :class:`TextBank`: one sentence vector per prompt (for FiLM) and the
per-token vectors with their padding mask (for cross-attention), each computed once per distinct prompt and
kept in a process-wide cache.

* ``minilm``: all-MiniLM-L6-v2 (384-d), read from ``genlab data fetch minilm`` by :mod:`genlab.nn.bert`.
* ``hash``: every lower-cased word gets a fixed random vector seeded by its hash (32-d), the sentence vector
  is their normalised mean. It knows no meaning (``seven`` and ``7`` are unrelated), so it is only for the
  tiny demo and the tests, which must run without fetched data.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from genlab.errors import DataError, choose

ENCODERS = ("minilm", "hash")
HASH_DIM = 32


@dataclass
class TextBank:
    """Encoded prompts: ``vec`` (N, D), ``tokens`` (N, T, D), ``mask`` (N, T) and the token strings."""

    texts: tuple[str, ...]
    vec: torch.Tensor
    tokens: torch.Tensor
    mask: torch.Tensor
    words: tuple[tuple[str, ...], ...]

    @property
    def dim(self) -> int:
        return self.vec.shape[1]


def encoder_dim(name: str) -> int:
    choose("text encoder", name, ENCODERS)
    return 384 if name == "minilm" else HASH_DIM


# --------------------------------------------------------------------------------------------- hashing


def _word_vector(word: str) -> torch.Tensor:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little") % (2**63)
    return torch.randn(HASH_DIM, generator=torch.Generator().manual_seed(seed))


def _hash_one(text: str) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    words = tuple(re.findall(r"[a-z0-9]+|[^\sa-z0-9]", text.lower())) or ("",)
    toks = torch.stack([_word_vector(w) for w in words]) / HASH_DIM**0.5
    return F.normalize(toks.mean(0), dim=0), toks, words


# ---------------------------------------------------------------------------------------------- MiniLM


@lru_cache(maxsize=1)
def _minilm():
    from tokenizers import Tokenizer

    from genlab.data.fetch import data_path, is_fetched
    from genlab.nn.bert import BertEncoder

    if not is_fetched("minilm"):
        raise DataError(
            "the text encoder is not in the cache; run 'genlab data fetch minilm' first (or --set cond=class)"
        )
    folder = data_path("minilm")
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok, BertEncoder.from_folder(folder)


@torch.no_grad()
def _minilm_many(texts: Sequence[str]) -> list[tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]]:
    from genlab.nn.bert import mean_pool

    tok, model = _minilm()
    encs = tok.encode_batch(list(texts))
    n = max(len(e.ids) for e in encs)
    ids = torch.zeros(len(encs), n, dtype=torch.long)
    mask = torch.zeros(len(encs), n, dtype=torch.bool)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)] = torch.tensor(e.ids)
        mask[i, : len(e.ids)] = True
    h = model(ids, mask)
    vec = mean_pool(h, mask)
    return [(vec[i], h[i, : len(e.ids)].clone(), tuple(e.tokens)) for i, e in enumerate(encs)]


# ----------------------------------------------------------------------------------------------- cache

_CACHE: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]] = {}


def encode(texts: Sequence[str], encoder: str = "minilm") -> TextBank:
    """Encode ``texts`` (each distinct text once per process), padded to the longest token sequence."""
    choose("text encoder", encoder, ENCODERS)
    todo = list(dict.fromkeys(t for t in texts if (encoder, t) not in _CACHE))
    if todo:
        done = _minilm_many(todo) if encoder == "minilm" else [_hash_one(t) for t in todo]
        _CACHE.update({(encoder, t): d for t, d in zip(todo, done)})
    items = [_CACHE[(encoder, t)] for t in texts]
    if not items:
        raise DataError("no prompts to encode")
    n = max(it[1].shape[0] for it in items)
    dim = items[0][0].shape[0]
    tokens = torch.zeros(len(items), n, dim)
    mask = torch.zeros(len(items), n, dtype=torch.bool)
    for i, (_, tok, _) in enumerate(items):
        tokens[i, : len(tok)] = tok
        mask[i, : len(tok)] = True
    return TextBank(tuple(texts), torch.stack([it[0] for it in items]), tokens, mask, tuple(it[2] for it in items))
