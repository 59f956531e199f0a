"""Review cleaning, the rt and Kaggle-CSV readers (on tiny fixture files), vocabularies and batching."""

import bz2
import csv

import numpy as np
import pytest
import torch

from genlab.data import reviews as rv
from genlab.errors import DataError


def test_clean_letters_only_lowercase_truncated():
    assert rv.clean("It's GREAT -- 10/10!<br />Really.") == ["it", "s", "great", "br", "really"]
    assert rv.clean("a b c d e", max_len=3) == ["a", "b", "c"]
    assert rv.clean("123 !!") == []


def _write_rt(path, n_fresh=30, n_rotten=20):
    with bz2.open(path, "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(["category", "text", "movie_name", "has_plot_and_reviews"])
        w.writerow(["plot", "A plot summary, not a review.", "m", "True"])
        w.writerow(["fresh", "", "m", "True"])  # empty: dropped
        for i in range(n_fresh):
            w.writerow(["fresh", f"great film number {i}", "m", "True"])
        for i in range(n_rotten):
            w.writerow(["rotten", f"dull film number {i}", "m", "True"])


def test_read_rt_drops_plots_and_splits_stratified(tmp_path):
    p = tmp_path / "rt.csv.bz2"
    _write_rt(p)
    s = rv.read_rt(p)
    assert len(s.train_texts) + len(s.test_texts) == 50
    assert len(s.test_texts) == 10
    assert s.test_labels.sum() == 6 and s.train_labels.sum() == 24  # 60% positive in both parts
    assert all(("great" in t) == (y == 1) for t, y in zip(s.train_texts, s.train_labels))
    again = rv.read_rt(p)
    assert again.test_texts == s.test_texts  # fixed split


def test_read_rt_wrong_columns(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("label,body\n1,hello\n")
    with pytest.raises(DataError, match="category"):
        rv.read_rt(p)


def _write_imdb(path, n=10):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        for i in range(n):
            w.writerow([f"review {i}, with a comma", "positive" if i % 2 else "negative"])


def test_read_imdb_csv_first_rows_train(tmp_path):
    p = tmp_path / "imdb.csv"
    _write_imdb(p)
    s = rv.read_imdb_csv(p, n_train=7)
    assert s.train_texts[0] == "review 0, with a comma" and len(s.train_texts) == 7 and len(s.test_texts) == 3
    assert list(s.train_labels[:3]) == [0, 1, 0]


def test_read_imdb_csv_errors(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("text,label\nhi,1\n")
    with pytest.raises(DataError, match="expected 'review' and 'sentiment'"):
        rv.read_imdb_csv(p)
    with pytest.raises(DataError, match="not found"):
        rv.read_imdb_csv(tmp_path / "missing.csv")
    q = tmp_path / "y.csv"
    _write_imdb(q, 4)
    with pytest.raises(DataError, match="need more than"):
        rv.read_imdb_csv(q, n_train=10)


def test_learned_vocab_encode_and_batch():
    v = rv.Vocab.build(["good good film", "bad film", "rare"], min_count=2)
    assert v.words() == ["film", "good"]
    assert v.encode("good bad film") == [v.id("good"), rv.UNK, v.id("film")]
    ids, lengths = rv.encode_texts(["good film", "film", "good good good film"], v)
    assert ids.shape == (3, 4) and lengths.tolist() == [2, 1, 4]
    x, m = rv.batch_of(ids, lengths, torch.tensor([0, 1]))
    assert x.shape == (2, 2) and m.tolist() == [[True, True], [True, False]]


def test_glove_vocab_from_fixture(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"index": ["the", "good", "movie"]}), tmp_path / "idx.parquet")
    np.save(tmp_path / "emb.npy", np.arange(6, dtype=np.float32).reshape(3, 2))
    index, matrix = rv.load_glove(str(tmp_path / "emb.npy"), str(tmp_path / "idx.parquet"))
    v = rv.Vocab("glove", glove=index)
    assert v.encode("The good zzz") == [2, 3, rv.UNK]
    assert matrix[index["movie"]].tolist() == [4.0, 5.0]


def test_prepare_is_cached_and_long_sequences_end_in_the_review_they_are_labelled_by(tmp_path):
    path = str(rv.write_tiny_reviews(tmp_path / "reviews.csv", n=20))
    p = rv.prepare(path, n_train=15, embeddings="learned", min_count=1)
    assert rv.prepare(path, n_train=15, embeddings="learned", min_count=1) is p
    assert len(p.train_ids) == 15 and len(p.test_ids) == 5 and p.train_len.tolist() == [8] * 15
    again = rv.prepare(path, n_train=15, embeddings="learned", vocab_words=p.vocab.words())
    assert torch.equal(again.train_ids, p.train_ids)
    ids, y = rv.long_sequences(p, length=20, count=2)
    assert ids.shape == (2, 20)
    last = torch.randperm(15, generator=torch.Generator().manual_seed(0))[2]  # 3 reviews of 8 words reach 20
    assert torch.equal(ids[0, -8:], p.train_ids[last, :8]) and y[0] == p.train_y[last]


def rows(ids):
    return {tuple(r.tolist()) for r in ids}


def test_train_batches_cover_each_epoch_once_and_test_batches_cycle(tmp_path):
    path = str(rv.write_tiny_reviews(tmp_path / "reviews.csv", n=20))
    p = rv.prepare(path, n_train=12, embeddings="learned", min_count=1)
    epoch = [rv.train_batch(p, step, batch_size=4, seed=3) for step in (1, 2, 3)]
    assert all(x.shape == (4, 8) and m.all() and len(y) == 4 for x, m, y in epoch)
    assert set().union(*(rows(x) for x, _, _ in epoch)) == rows(p.train_ids)  # one epoch: every review once
    again = rv.train_batch(p, 2, batch_size=4, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(again, epoch[1]))  # seeded, not the global RNG
    assert not torch.equal(rv.train_batch(p, 4, batch_size=4, seed=3)[0], epoch[0][0])  # epoch 2: a new order
    first, second, wrapped = (rv.test_batch(p, k, batch_size=4) for k in (0, 1, 2))  # 8 test reviews: 2 batches
    assert all(torch.equal(a, b) for a, b in zip(first, wrapped))
    assert rows(first[0]) | rows(second[0]) == rows(p.test_ids)
