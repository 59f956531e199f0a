"""Hand-written Elman RNN / GRU, restricted self-attention and the token-wise classifiers."""

import math

import pytest
import torch
from torch import nn

from genlab.errors import ConfigError
from genlab.nn.attention import RestrictedSelfAttention, window_to_matrix
from genlab.nn.recurrent import ElmanCell, GRUCell, Recurrent
from genlab.nn.sentiment_models import AttentionMLP, RecurrentClassifier, TokenMLP, WordEmbedding


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("layers", [1, 2])
def test_gru_matches_torch_gru(layers):
    torch.manual_seed(0)
    ref = nn.GRU(5, 7, num_layers=layers, batch_first=True)
    ours = Recurrent(5, 7, layers, "gru", reset_after=True)
    for i, cell in enumerate(ours.cells):
        cell.load_from_torch(ref, i)
    x = _x(3, 9, 5, seed=1)
    want, h_n = ref(x)
    got, last = ours(x)
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(last, h_n[-1], atol=1e-5)


def test_gru_lab_form_equals_torch_form_when_reset_gate_is_open():
    """With r = 1 the two candidate formulas agree: W (r*h) = r * (W h)."""
    lab, tor = GRUCell(4, 6), GRUCell(4, 6, reset_after=True)
    tor.load_state_dict({**lab.state_dict(), "h_bias_rec": torch.zeros(6)})
    with torch.no_grad():
        for c in (lab, tor):
            c.r.bias.fill_(50.0)  # sigmoid(50) == 1 in float32
    x, h = _x(2, 4, seed=2), _x(2, 6, seed=3)
    assert torch.allclose(lab(x, h), tor(x, h), atol=1e-6)
    with torch.no_grad():
        for c in (lab, tor):
            c.r.bias.fill_(0.0)
    assert not torch.allclose(lab(x, h), tor(x, h), atol=1e-4)


@pytest.mark.parametrize(
    "cell_cls,kw", [(ElmanCell, {"activation": "relu"}), (GRUCell, {}), (GRUCell, {"reset_after": True})]
)
def test_fast_step_equals_literal_equation(cell_cls, kw):
    cell = cell_cls(3, 5, **kw)
    x, h = _x(4, 3, seed=4), _x(4, 5, seed=5)
    assert torch.allclose(cell.step(cell.input_part(x), h), cell(x, h), atol=1e-6)


@pytest.mark.parametrize(
    "act,fn", [("none", lambda a: a), ("tanh", torch.tanh), ("relu", torch.relu), ("sigmoid", torch.sigmoid)]
)
def test_elman_activations(act, fn):
    cell = ElmanCell(3, 4, act)
    x, h = _x(2, 3, seed=6), _x(2, 4, seed=7)
    want = fn(x @ cell.lin.weight[:, :3].T + h @ cell.lin.weight[:, 3:].T + cell.lin.bias)
    assert torch.allclose(cell(x, h), want, atol=1e-6)


def test_unknown_activation_and_cell():
    with pytest.raises(ConfigError, match="unknown activation 'gelu'"):
        ElmanCell(3, 4, "gelu")
    with pytest.raises(ConfigError, match="unknown recurrent cell 'lstm'"):
        Recurrent(3, 4, cell="lstm")


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_padding_does_not_change_the_final_state(cell):
    torch.manual_seed(0)
    rnn = Recurrent(3, 4, 2, cell)
    x = _x(1, 6, 3, seed=8)
    _, short = rnn(x[:, :4])
    padded = torch.cat([x[:, :4], _x(1, 2, 3, seed=9)], 1)
    _, last = rnn(padded, torch.tensor([[1, 1, 1, 1, 0, 0]], dtype=torch.bool))
    assert torch.allclose(short, last, atol=1e-6)


def test_truncated_bptt_cuts_the_gradient():
    torch.manual_seed(0)
    rnn = Recurrent(3, 4, 1, "gru", tbptt=3).train()
    states, last = rnn.states_along_time(_x(2, 8, 3, seed=10))
    grads = torch.autograd.grad(last.sum(), states, allow_unused=True)
    norms = [0.0 if g is None else g.norm().item() for g in grads]
    assert all(n == 0.0 for n in norms[:6]) and all(n > 0 for n in norms[6:])


@pytest.mark.parametrize("layers", [1, 2])
def test_states_along_time_are_the_forward_states(layers):
    torch.manual_seed(0)
    rnn = Recurrent(3, 5, layers, "rnn")
    x, mask = _x(2, 6, 3, seed=13), torch.tensor([[1] * 6, [1] * 4 + [0] * 2], dtype=torch.bool)
    out, last = rnn(x, mask)
    states, final = rnn.states_along_time(x, mask)
    assert len(states) == 6 and torch.equal(torch.stack(states, 1), out) and torch.equal(final, last)


def test_gradient_norms_along_time_match_autograd_on_the_states():
    torch.manual_seed(0)
    model = RecurrentClassifier(WordEmbedding(12, 4), "rnn", 6)
    ids, y = torch.randint(1, 12, (3, 9)), torch.tensor([0, 1, 1])
    norms = model.gradient_norms_along_time(ids, y)
    states, last = model.rnn.states_along_time(model.embed(ids), torch.ones_like(ids, dtype=torch.bool))
    grads = torch.autograd.grad(nn.functional.cross_entropy(model.head(last), y), states)
    assert norms == [g.norm(dim=-1).mean().item() for g in grads]
    assert norms[-1] > norms[0] > 0  # tanh Elman at initialisation: the gradient fades going back in time


def _naive_attention(att, x, mask):
    b, t, _ = x.shape
    q, k, v = att.q(x), att.key(x), att.v(x)
    out = torch.zeros(b, t, att.hidden)
    for bi in range(b):
        for i in range(t):
            if not mask[bi, i]:
                continue
            js = [j for j in range(max(0, i - att.k), min(t, i + att.k + 1)) if mask[bi, j]]
            s = torch.stack([q[bi, i] @ k[bi, j] for j in js]) / math.sqrt(att.hidden)
            out[bi, i] = (torch.softmax(s, 0)[:, None] * v[bi, js]).sum(0)
    return out


def test_restricted_attention_matches_a_loop_and_ignores_padding():
    torch.manual_seed(0)
    att = RestrictedSelfAttention(6, 5, k=2)
    x = _x(2, 7, 6, seed=11)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3], dtype=torch.bool)
    out, w = att(x, mask)
    assert torch.allclose(out, _naive_attention(att, x, mask), atol=1e-5)
    assert torch.allclose(w[mask].sum(-1), torch.ones(int(mask.sum())), atol=1e-6)
    x2 = x.clone()
    x2[1, 4:] = 100.0  # whatever sits on padding must not matter
    out2, _ = att(x2, mask)
    assert torch.allclose(out[1, :4], out2[1, :4], atol=1e-6)
    full = window_to_matrix(w[1, :4], 2)
    assert full.shape == (4, 4) and torch.allclose(full.sum(1), torch.ones(4), atol=1e-6)
    assert full[0, 3] == 0  # outside the window of 2


def test_attention_window_must_be_positive():
    with pytest.raises(ConfigError, match="window 0"):
        RestrictedSelfAttention(4, 4, k=0)


def test_token_mlp_is_the_mean_of_sub_scores():
    torch.manual_seed(0)
    emb = WordEmbedding(20, 8)
    ids = torch.tensor([[3, 4, 5, 0], [6, 7, 0, 0]])
    mask = ids > 0
    for model in (TokenMLP(emb, (6,)), AttentionMLP(emb, hidden=5, k=1, widths=(6,))):
        sub = model.sub_scores(ids, mask)
        logits = model(ids, mask)
        assert torch.allclose(logits[0], sub[0, :3].mean(0), atol=1e-6)
        assert torch.allclose(logits[1], sub[1, :2].mean(0), atol=1e-6)
        assert torch.all(sub[~mask] == 0)


def test_frozen_embeddings_are_not_trained_nor_saved():
    table = _x(10, 4, seed=12)
    model = RecurrentClassifier(WordEmbedding(10, 4, table), "rnn", 6)
    assert all("table" not in k for k in model.state_dict())
    assert all(p.data_ptr() != table.data_ptr() for p in model.parameters())
    out = model(torch.tensor([[1, 2, 3]]), torch.ones(1, 3, dtype=torch.bool))
    assert out.shape == (1, 2)


def test_build_classifier_loss_and_scores(tmp_path):
    from types import SimpleNamespace

    from genlab.data import reviews as rv
    from genlab.nn.sentiment_models import (
        baseline_scores,
        build_classifier,
        loss_and_accuracy,
        prepared_scores,
        tfidf_baseline,
    )

    path = str(rv.write_tiny_reviews(tmp_path / "reviews.csv", n=40))
    data = rv.prepare(path, n_train=30, embeddings="learned", min_count=1)
    settings = dict(embeddings="learned", embed_dim=6, hidden=5, layers=1, activation="tanh", tbptt=0)
    kinds = {"rnn": RecurrentClassifier, "gru": RecurrentClassifier, "mlp": TokenMLP, "attention": AttentionMLP}
    for name, cls in kinds.items():
        cfg = SimpleNamespace(model=name, reset_after=False, widths=(4,), window=2, **settings)
        model = build_classifier(cfg, data.vocab)
        assert type(model) is cls and model.embed.dim == 6
        x, m, y = rv.train_batch(data, 1, batch_size=8)
        out = loss_and_accuracy(model, (x, m, y))
        logits = model(x, m)
        assert torch.isclose(out["loss"], nn.functional.cross_entropy(logits, y))
        assert out["acc"] == (logits.argmax(-1) == y).float().mean()
        s = prepared_scores(model, data)
        assert set(s) == {f"{p}_{k}" for p in ("train", "test") for k in ("acc", "f1", "auc")}
        assert all(0 <= v <= 1 for v in s.values())
    assert baseline_scores(path, 30) is baseline_scores(path, 30)  # once per process
    assert baseline_scores(path, 30) == tfidf_baseline(rv.load_reviews(path, 30))
