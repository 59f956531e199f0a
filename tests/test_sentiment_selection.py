"""The sentiment lab's model-selection settings: bidirectional reading, pooling over time, GloVe fine-tuning at
its own learning rate, the validation split carved from the training set, early stopping on it, and the
MiniLM + logistic-regression reference row."""

import json

import numpy as np
import pytest
import torch

from genlab.data import reviews as rv
from genlab.errors import ConfigError, DataError
from genlab.labs.sentiment.config import TINY, SentimentConfig
from genlab.labs.sentiment.core import load_model, prepare_data, train
from genlab.nn import sentiment_models as sm
from genlab.nn.sentiment_models import RecurrentClassifier, WordEmbedding, param_groups, reverse_padded
from genlab.runs import Run


def _embed(vocab=30, dim=6, seed=0):
    table = torch.randn(vocab, dim, generator=torch.Generator().manual_seed(seed))
    table[0] = 0
    return table


def _batch():
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0], [9, 0, 0, 0]])
    return ids, ids != 0


def test_reverse_padded_reverses_real_words_only():
    ids, mask = _batch()
    got = reverse_padded(ids.unsqueeze(-1).float(), mask).squeeze(-1).long()
    assert got.tolist() == [[6, 5, 4, 3], [8, 7, 0, 0], [9, 0, 0, 0]]


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_bidirectional_concatenates_both_directions(cell):
    torch.manual_seed(0)
    model = RecurrentClassifier(WordEmbedding(30, 6, _embed()), cell, hidden=5, bidirectional=True)
    ids, mask = _batch()
    x = model.embed(ids)
    states, last = model.rnn(x, mask)
    feats = model.summary(x, mask, states, last)
    assert feats.shape == (3, 10) and model(ids, mask).shape == (3, 2)
    assert model.head[0].in_features == 10
    # the second half is the backward stack's state after reading the review from its last word to its first
    _, back_last = model.rnn_back(x[:1, [3, 2, 1, 0]], mask[:1])
    assert torch.allclose(feats[:1, 5:], back_last, atol=1e-6)
    assert torch.allclose(feats[:, :5], last, atol=1e-6)
    assert not torch.allclose(feats[:, 5:], last, atol=1e-3)


@pytest.mark.parametrize("pool", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_pooling_over_real_words_ignores_padding(pool, bidirectional):
    torch.manual_seed(1)
    model = RecurrentClassifier(WordEmbedding(30, 6, _embed()), "gru", 5, pool=pool, bidirectional=bidirectional)
    model.eval()
    ids, mask = _batch()
    x = model.embed(ids)
    states, last = model.rnn(x, mask)
    feats = model.summary(x, mask, states, last)
    if pool != "last" and not bidirectional:  # by hand, over the real words of the second review (2 words)
        want = states[1, :2].mean(0) if pool == "mean" else states[1, :2].max(0).values
        assert torch.allclose(feats[1], want, atol=1e-6)
    # more padding changes nothing
    ids2 = torch.cat([ids, torch.zeros(3, 3, dtype=torch.long)], 1)
    assert torch.allclose(model(ids, mask), model(ids2, ids2 != 0), atol=1e-5)


def test_unknown_pooling_is_a_config_error():
    with pytest.raises(ConfigError, match="pooling"):
        RecurrentClassifier(WordEmbedding(30, 6, _embed()), "gru", 5, pool="sum")


def test_finetuned_embeddings_get_their_own_learning_rate_and_only_training_words_move():
    table = _embed()
    emb = WordEmbedding(30, 6, table.clone(), tuned=torch.tensor([3, 4, 5]))
    model = RecurrentClassifier(emb, "gru", 5)
    groups = param_groups(model, 1e-3, 0.1)
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(1e-4)]
    assert groups[1]["params"] == [emb.delta.weight]
    assert all(p is not emb.delta.weight for p in groups[0]["params"])
    assert len(param_groups(RecurrentClassifier(WordEmbedding(30, 6, table), "gru", 5), 1e-3, 0.1)) == 1
    opt = torch.optim.Adam(groups)
    ids, mask = _batch()
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(ids, mask), torch.tensor([1, 0, 1])).backward()
        opt.step()
    out = emb(torch.arange(30))
    moved = (out - table).abs().sum(1) > 0
    assert moved.nonzero().flatten().tolist() == [3, 4, 5]  # tuned words moved; the rest, and padding, did not
    # a checkpoint carries its tuned ids: a model built without them loads it and gives the same vectors
    fresh = WordEmbedding(30, 6, table.clone(), tuned=torch.zeros(0, dtype=torch.long))
    fresh.load_state_dict(emb.state_dict())
    assert torch.allclose(fresh(torch.arange(30)), out)
    assert "table" not in emb.state_dict()


def test_build_classifier_reads_the_new_keys(monkeypatch):
    monkeypatch.setattr(rv, "embedding_matrix", lambda vocab: _embed(vocab.size))
    vocab = rv.Vocab("learned", [f"w{i}" for i in range(28)])
    cfg = SentimentConfig(embeddings="glove", hidden=4, bidirectional=True, pool="max", embed_lr_scale=0.5)
    m = sm.build_classifier(cfg, vocab, torch.tensor([2, 3]))
    assert m.bidirectional and m.pool == "max" and m.embed.delta.weight.shape == (3, 6)
    assert not hasattr(sm.build_classifier(SentimentConfig(embeddings="glove", hidden=4), vocab).embed, "delta")


def _prepared(n_train=40, n_test=10):
    ids = torch.arange(n_train).unsqueeze(1) + 2  # every training review is a different word: rows are traceable
    y = torch.tensor([i % 2 for i in range(n_train)])
    split = rv.ReviewSplit([], y.numpy(), [], np.zeros(n_test, dtype=np.int64))
    te = torch.arange(n_test).unsqueeze(1) + 1000
    ones = torch.ones(n_train, dtype=torch.long)
    return rv.Prepared(split, None, ids, ones, y, te, torch.ones(n_test, dtype=torch.long), torch.zeros(n_test))


def test_validation_split_is_carved_from_train_disjoint_stratified_and_fixed():
    p = _prepared()
    q = rv.carve_validation(p, 0.2)
    tr, va = set(q.train_ids.flatten().tolist()), set(q.val_ids.flatten().tolist())
    assert len(va) == 8 and len(tr) == 32 and not tr & va and tr | va == set(p.train_ids.flatten().tolist())
    assert not va & set(q.test_ids.flatten().tolist()) and torch.equal(q.test_ids, p.test_ids)
    assert q.val_y.sum() == 4  # half positive, as the training set
    assert torch.equal(rv.carve_validation(p, 0.2).val_ids, q.val_ids)  # the same split every time
    with pytest.raises(DataError):
        rv.carve_validation(p, 1.0)


def test_prepare_with_val_fraction_keeps_test_and_splits_train(tmp_path):
    path = str(rv.write_tiny_reviews(tmp_path / "tiny.csv"))
    whole = rv.prepare(path, 60, "learned")
    p = rv.prepare(path, 60, "learned", val_fraction=0.2)
    assert len(p.train_ids) + len(p.val_ids) == len(whole.train_ids) == 60 and len(p.val_ids) == 12
    assert torch.equal(p.test_ids, whole.test_ids) and whole.val_ids is None


def test_early_stop_needs_a_validation_split():
    with pytest.raises(ConfigError, match="val_fraction"):
        prepare_data(SentimentConfig(early_stop=True))


def test_early_stopped_run_keeps_the_best_validation_weights(tmp_path):
    csv = str(rv.write_tiny_reviews(tmp_path / "tiny.csv", n=120))
    cfg = SentimentConfig(model="gru", csv=csv, steps=30, **{**TINY, "n_train": 100, "eval_every": 3})
    cfg = cfg.update({"val_fraction": 0.3, "early_stop": True, "lr": 0.05, "bidirectional": True, "pool": "max"})
    run = Run.create("sentiment", cfg, name="es", root=tmp_path / "runs")
    train(cfg, run, device="cpu", quiet=True, figures=False)
    s = run.read_summary()
    evals = [r for r in map(json.loads, (run.path / "metrics.jsonl").read_text().splitlines()) if "val_acc" in r]
    best = max(r["val_acc"] for r in evals)
    assert s["best_step"] == next(r["step"] for r in evals if r["val_acc"] == best)  # the first best one
    assert s["val_acc"] == pytest.approx(best, abs=1e-4)
    model, _, vocab = load_model(run)  # loading the run gives the same (best) weights again
    data = prepare_data(cfg, vocab.words())
    p = sm.predict_proba(model, data.val_ids, data.val_len)
    assert sm.scores(data.val_y.numpy(), p)["acc"] == pytest.approx(best, abs=1e-4)


def test_minilm_row_chooses_c_on_validation_only(monkeypatch):
    rng = np.random.default_rng(0)
    y_tr, y_te = np.arange(200) % 2, np.arange(60) % 2
    vec = {}

    def fake_vectors(texts):
        return np.stack([vec[t] for t in texts])

    for i, y in enumerate(np.concatenate([y_tr, y_te])):
        vec[f"r{i}"] = (rng.normal(size=8) + 2.0 * (y - 0.5)).astype(np.float32)
    split = rv.ReviewSplit([f"r{i}" for i in range(200)], y_tr, [f"r{200 + i}" for i in range(60)], y_te)
    monkeypatch.setattr(sm, "sentence_vectors", fake_vectors)
    out = sm.minilm_baseline(split)
    assert out["C"] in sm.MINILM_CS and out["test_acc"] > 0.8 and 0 < out["val_acc"] <= 1
    # test labels do not choose C: flipping them changes the test score, not the choice
    flipped = sm.minilm_baseline(rv.ReviewSplit(split.train_texts, y_tr, split.test_texts, 1 - y_te))
    assert flipped["C"] == out["C"] and flipped["test_acc"] == pytest.approx(1 - out["test_acc"])
    assert sm.minilm_reference("some.csv") is None


def test_best_preset_holds_the_selection():
    from genlab.labs.sentiment.config import PRESETS, describe_model

    cfg = PRESETS["best"]
    assert cfg.val_fraction > 0 and cfg.early_stop and cfg.bidirectional and cfg.pool == "max"
    assert cfg.embed_lr_scale > 0 and cfg.embeddings == "glove"
    assert "bidirectional, max-pooled" in describe_model(cfg) and "early-stopped" in describe_model(cfg)
    assert SentimentConfig().val_fraction == 0 and not SentimentConfig().bidirectional  # defaults unchanged
