"""Text corpora and tokenizers for the GPT lab.

Corpora: ``alice`` (Project Gutenberg #11), ``shakespeare`` (42 works), or any UTF-8 file (``--text PATH``);
``sample`` is a few built-in sentences (no fetching) for tests and the tiny demo.
The Gutenberg header and licence footer are cut off; the last 10% of the tokens is the validation split.

Tokenizers (all encode any string, "squirrel" included, and share ``encode / decode / piece / save``):

* ``gpt2``: GPT-2's byte-pair encoding (vocabulary 50257) through ``tiktoken``, read from the fetched
  ranks file;
* ``bpe``: a byte-level BPE trained on the corpus with Hugging Face ``tokenizers`` (vocabulary size
  configurable), saved in the run folder so the run decodes the same way later;
* ``char``: one token per character of the corpus, plus an unknown-character token.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from genlab.errors import ConfigError, DataError, choose

CORPORA = ("alice", "shakespeare", "text", "sample")
TOKENIZERS = ("gpt2", "bpe", "char")
EOT = "<|endoftext|>"

# The GPT-2 pre-tokenisation pattern: contractions, letters, numbers, other symbols, whitespace.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

_START = re.compile(r"^\*\*\* ?START OF (THIS|THE) PROJECT GUTENBERG.*$", re.MULTILINE | re.IGNORECASE)
_END = re.compile(
    r"^(\*\*\* ?END OF (THIS|THE) PROJECT GUTENBERG|End of (the )?Project Gutenberg).*$", re.MULTILINE | re.IGNORECASE
)


def strip_gutenberg(text: str) -> str:
    """The text between Project Gutenberg's ``*** START OF ...`` and ``*** END OF ...`` lines (if present)."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    m = _START.search(text)
    if m:
        text = text[m.end() :]
    m = _END.search(text)
    if m:
        text = text[: m.start()]
    return text.strip() + "\n"


# The built-in ``sample`` corpus: a short made-up story, repeated, so a character model learns it in seconds.
SAMPLE_TEXT = (
    "Alice was beginning to get very tired of sitting by the river with nothing to do. "
    "The little squirrel was around Alice but she kept saying that she was not hungry at all. "
    "I am a little squirrel holding a walnut, said the squirrel, and I will not give it to the Queen. "
    "The Queen said that every walnut in the garden was hers. 'Off with his head!' she shouted. "
    "Alice sat by the bank and watched the squirrel run up the tree with the walnut in its paws.\n"
) * 12


def load_corpus(corpus: str, path: str | Path | None = None) -> str:
    """The cleaned text of ``corpus`` (``alice``, ``shakespeare``, ``sample``, or ``text`` with ``path``)."""
    choose("corpus", corpus, CORPORA)
    if corpus == "sample":
        return SAMPLE_TEXT
    if corpus == "text":
        if not path:
            raise ConfigError("corpus 'text' needs a file: pass --text PATH (or --set text=PATH)")
        p = Path(path)
        if not p.is_file():
            raise DataError(f"text file {str(p)!r} not found; check the path")
    else:
        from genlab.data.fetch import data_path

        p = data_path(corpus)
    try:
        text = strip_gutenberg(p.read_text(encoding="utf-8", errors="replace"))
    except OSError as e:
        raise DataError(f"could not read {str(p)!r}: {e}") from None
    if len(text.strip()) < 100:
        raise DataError(f"text {str(p)!r} is too short ({len(text)} characters); give at least a paragraph")
    return text


# ------------------------------------------------------------------------------------------------ tokenizers


class Tokenizer:
    """Shared interface: ``encode(str) -> list[int]``, ``decode(ids) -> str``, ``piece(id)`` for display."""

    name = ""
    vocab_size = 0
    eot = 0  # id of <|endoftext|>

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids) -> str:
        raise NotImplementedError

    def piece(self, i: int) -> str:
        """How token ``i`` reads on its own (for tables and painted tokens)."""
        return self.decode([i])

    def save(self, folder: Path) -> None:
        """Write what is needed to rebuild this tokenizer into ``folder`` (nothing for gpt2)."""


class GPT2Tokenizer(Tokenizer):
    name = "gpt2"

    def __init__(self, ranks_path: str | Path | None = None):
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe

        if ranks_path is None:
            from genlab.data.fetch import data_path

            ranks_path = data_path("gpt2")
        try:
            ranks = load_tiktoken_bpe(str(ranks_path))
        except (ValueError, IndexError, UnicodeDecodeError) as e:  # a damaged ranks file (base64 or layout)
            raise DataError(
                f"the GPT-2 ranks file {str(ranks_path)!r} is damaged ({_first_line(e)}); check it with 'genlab data "
                f"verify gpt2' and fetch it again with 'genlab data fetch gpt2 --force'"
            ) from None
        self.enc = tiktoken.Encoding(
            name="gpt2-genlab", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={EOT: len(ranks)}
        )
        self.vocab_size = self.enc.n_vocab
        self.eot = len(ranks)

    def encode(self, text: str) -> list[int]:
        return self.enc.encode_ordinary(text)

    def decode(self, ids) -> str:
        return self.enc.decode([int(i) for i in ids])


class BPETokenizer(Tokenizer):
    """Byte-level BPE learned on the corpus (Hugging Face ``tokenizers``)."""

    name = "bpe"
    FILE = "tokenizer.json"

    def __init__(self, tok):
        self.tok = tok
        self.vocab_size = tok.get_vocab_size()
        self.eot = tok.token_to_id(EOT)

    @classmethod
    def train(cls, text: str, vocab_size: int = 2048) -> BPETokenizer:
        from tokenizers import ByteLevelBPETokenizer

        tok = ByteLevelBPETokenizer()
        tok.train_from_iterator(
            [text], vocab_size=vocab_size, min_frequency=2, special_tokens=[EOT], show_progress=False
        )
        return cls(tok)

    @classmethod
    def load(cls, folder: Path) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        path = Path(folder) / cls.FILE
        if not path.is_file():
            raise DataError(f"no {cls.FILE} in {str(folder)!r}; the run's BPE tokenizer is missing, train again")
        try:
            return cls(HFTokenizer.from_file(str(path)))
        except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception for a damaged file
            why = _first_line(e)
            raise DataError(f"the run's tokenizer {str(path)!r} is damaged ({why}); train the run again") from None

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text).ids

    def decode(self, ids) -> str:
        return self.tok.decode([int(i) for i in ids], skip_special_tokens=False)

    def save(self, folder: Path) -> None:
        from genlab.io import atomic_write_text

        atomic_write_text(Path(folder) / self.FILE, self.tok.to_str())


class CharTokenizer(Tokenizer):
    """Characters of the corpus; id 0 is <|endoftext|>, id 1 stands for any character not in the corpus."""

    name = "char"
    FILE = "chars.json"
    UNK = "\ufffd"

    def __init__(self, chars: list[str]):
        self.itos = [EOT, self.UNK] + [c for c in chars if c != self.UNK]
        self.stoi = {c: i for i, c in enumerate(self.itos)}
        self.vocab_size = len(self.itos)
        self.eot = 0

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @classmethod
    def load(cls, folder: Path) -> CharTokenizer:
        path = Path(folder) / cls.FILE
        if not path.is_file():
            raise DataError(f"no {cls.FILE} in {str(folder)!r}; the run's character table is missing, train again")
        try:
            chars = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            chars = e
        if not isinstance(chars, list) or not all(isinstance(c, str) for c in chars) or chars[:1] != [EOT]:
            why = _first_line(chars) if isinstance(chars, Exception) else "not the list of characters genlab writes"
            raise DataError(f"the run's character table {str(path)!r} is damaged ({why}); train the run again")
        return cls(chars[2:])

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(c, 1) for c in text]

    def decode(self, ids) -> str:
        return "".join(self.itos[int(i)] for i in ids)

    def save(self, folder: Path) -> None:
        from genlab.io import atomic_write_json

        atomic_write_json(Path(folder) / self.FILE, self.itos)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:160] if text else type(e).__name__


def build_tokenizer(name: str, text: str, *, vocab_size: int = 2048) -> Tokenizer:
    """A tokenizer for ``text`` (``bpe`` and ``char`` are learned from it)."""
    choose("tokenizer", name, TOKENIZERS)
    if name == "gpt2":
        return GPT2Tokenizer()
    if name == "bpe":
        return BPETokenizer.train(text, vocab_size)
    return CharTokenizer.train(text)


def load_tokenizer(name: str, folder: Path) -> Tokenizer:
    """The tokenizer a run saved in ``folder``."""
    choose("tokenizer", name, TOKENIZERS)
    if name == "gpt2":
        return GPT2Tokenizer()
    return BPETokenizer.load(folder) if name == "bpe" else CharTokenizer.load(folder)


# -------------------------------------------------------------------------------------------------- batches


class TokenData:
    """A token stream split into train (first 90%) and validation (last 10%), batched by random offsets.

    Example i is ``tokens[i : i + block]``; its target is ``tokens[i + 1 : i + block + 1]``.
    """

    def __init__(
        self, ids: list[int] | torch.Tensor, block_size: int, val_frac: float = 0.1, device: torch.device | str = "cpu"
    ):
        data = torch.as_tensor(ids, dtype=torch.long)
        n_val = max(block_size + 1, int(len(data) * val_frac))
        if len(data) - n_val < block_size + 1:
            need = 2 * (block_size + 1)
            raise DataError(
                f"text has only {len(data)} tokens; it needs more than {need} for a block of "
                f"{block_size} in both splits (use a longer text or a smaller block_size)"
            )
        self.block_size = block_size
        self.train = data[:-n_val].to(device)
        self.val = data[-n_val:].to(device)

    def batch(self, split: str, batch_size: int, generator: torch.Generator | None = None):
        data = self.train if split == "train" else self.val
        ix = torch.randint(len(data) - self.block_size, (batch_size,), generator=generator)
        offsets = torch.arange(self.block_size)
        rows = (ix[:, None] + offsets[None, :]).to(data.device)
        return data[rows], data[rows + 1]
