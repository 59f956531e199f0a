"""Hand-written pieces checked against the libraries that implement the same maths.

* the Elman RNN cell and the stacked, padded :class:`~genlab.nn.recurrent.Recurrent` against ``torch.nn.RNN``
  with the same weights (the GRU's check against ``nn.GRU`` is in test_sentiment_models.py);
* the restricted (banded) self-attention of the sentiment models against
  ``torch.nn.functional.scaled_dot_product_attention`` with a band mask;
* label spreading (:mod:`genlab.nn.label_spreading`) against ``sklearn.semi_supervised.LabelSpreading`` on the
  same k-NN graph;
* the Frechet distance (:func:`genlab.nn.gan.frechet_distance`) against the formula written with
  ``scipy.linalg.sqrtm``, in two forms.
"""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genlab.nn.gan import frechet_distance
from genlab.nn.label_spreading import LabelSpreading
from genlab.nn.recurrent import ElmanCell, Recurrent
from genlab.nn.sentiment_models import AttentionMLP, WordEmbedding


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------- Elman RNN vs nn.RNN


def _copy_into_torch_rnn(ours: Recurrent, activation: str) -> nn.RNN:
    """An ``nn.RNN`` with our weights: our one linear layer on ``[x, h]`` is torch's ``W_ih | W_hh`` side by side;
    torch's two biases add up, so ours goes into ``b_ih`` and ``b_hh`` is zero."""
    first = ours.cells[0]
    ref = nn.RNN(
        first.input_size, ours.hidden_size, len(ours.cells), nonlinearity=activation, batch_first=True
    ).double()
    with torch.no_grad():
        for i, cell in enumerate(ours.cells):
            getattr(ref, f"weight_ih_l{i}").copy_(cell.lin.weight[:, : cell.input_size])
            getattr(ref, f"weight_hh_l{i}").copy_(cell.lin.weight[:, cell.input_size :])
            getattr(ref, f"bias_ih_l{i}").copy_(cell.lin.bias)
            getattr(ref, f"bias_hh_l{i}").zero_()
    return ref


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("layers", [1, 2])
def test_elman_layer_matches_torch_rnn(activation, layers):
    torch.manual_seed(0)
    ours = Recurrent(5, 7, layers, "rnn", activation).double()
    ref = _copy_into_torch_rnn(ours, activation)
    x = _randn(3, 9, 5, seed=1).double()
    want, h_n = ref(x)
    got, last = ours(x)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(last, h_n[-1], atol=1e-12, rtol=1e-10)
    # padded batch: our final state (the state after each review's last real word) is torch's h_n of the
    # packed sequences, and the states at real positions are torch's outputs
    lengths = torch.tensor([9, 4, 1])
    mask = torch.arange(9)[None, :] < lengths[:, None]
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_p, h_n = ref(packed)
    want, _ = nn.utils.rnn.pad_packed_sequence(out_p, batch_first=True, total_length=9)
    got, last = ours(x, mask)
    torch.testing.assert_close(last, h_n[-1], atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(got[mask], want[mask], atol=1e-12, rtol=1e-10)


def test_elman_cell_matches_torch_rnn_cell():
    torch.manual_seed(0)
    cell = ElmanCell(4, 6, "tanh").double()
    ref = nn.RNNCell(4, 6, nonlinearity="tanh").double()
    with torch.no_grad():
        ref.weight_ih.copy_(cell.lin.weight[:, :4])
        ref.weight_hh.copy_(cell.lin.weight[:, 4:])
        ref.bias_ih.copy_(cell.lin.bias)
        ref.bias_hh.zero_()
    x, h = _randn(5, 4, seed=2).double(), _randn(5, 6, seed=3).double()
    torch.testing.assert_close(cell(x, h), ref(x, h), atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(cell.step(cell.input_part(x), h), ref(x, h), atol=1e-12, rtol=1e-10)


# --------------------------------------------------------------------- restricted attention vs SDPA + band mask


@pytest.mark.parametrize("k", [1, 2, 4])
def test_restricted_attention_matches_sdpa_with_band_mask(k):
    torch.manual_seed(0)
    model = AttentionMLP(WordEmbedding(30, 6), hidden=8, k=k, widths=(8,)).double()
    attn = model.attn
    B, T = 3, 11
    x = _randn(B, T, 6, seed=4).double()
    lengths = torch.tensor([11, 6, 2])
    mask = torch.arange(T)[None, :] < lengths[:, None]
    got, _ = attn(x, mask)

    q, key, v = attn.q(x), attn.key(x), attn.v(x)
    i = torch.arange(T)
    band = (i[:, None] - i[None, :]).abs() <= k  # query i sees key j when |i - j| <= k
    allowed = band[None] & mask[:, None, :]  # ... and j is a real word: (B, T, T)
    want = F.scaled_dot_product_attention(q, key, v, attn_mask=allowed)  # default scale 1 / sqrt(H)
    torch.testing.assert_close(got[mask], want[mask], atol=1e-12, rtol=1e-10)
    assert torch.all(got[~mask] == 0)  # padding queries read nothing (SDPA gives them NaN: no key allowed)

    # and through the model: the token-wise MLP reads exactly these features
    ids = torch.randint(2, 30, (B, T), generator=torch.Generator().manual_seed(5)) * mask
    feats = model.features(ids, mask)
    want = F.scaled_dot_product_attention(*(f(model.embed(ids)) for f in (attn.q, attn.key, attn.v)), attn_mask=allowed)
    torch.testing.assert_close(feats[mask], want[mask], atol=1e-12, rtol=1e-10)


# ------------------------------------------------------------------------- label spreading vs scikit-learn


def _knn_kernel(k: int, power: float):
    """The k-NN graph of :class:`LabelSpreading` written again in numpy, as a kernel for scikit-learn: each point
    joined to its k most cosine-similar others with weight max(cos, 0)^power, then symmetrised (W + W^T)."""

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        an = a / np.linalg.norm(a, axis=1, keepdims=True)
        bn = b / np.linalg.norm(b, axis=1, keepdims=True)
        cos = an @ bn.T
        np.fill_diagonal(cos, -np.inf)  # a point is not its own neighbour
        w = np.zeros_like(cos)
        rows = np.arange(len(cos))[:, None]
        nbrs = np.argsort(-cos, axis=1)[:, :k]
        w[rows, nbrs] = np.maximum(cos[rows, nbrs], 0) ** power
        return w + w.T

    return kernel


@pytest.mark.parametrize("alpha,iters", [(0.99, 40), (0.5, 10)])
def test_label_spreading_matches_sklearn(alpha, iters):
    """scikit-learn's LabelSpreading iterates the same ``F <- alpha S F + (1 - alpha) Y`` from ``F = Y``, with
    ``S = D^-1/2 W D^-1/2`` (its normalised graph Laplacian, negated, diagonal zeroed; W has no self-loops
    here), for ``max_iter`` steps when ``tol=0``. The formulations differ only in that scikit-learn divides each
    row of F by its sum at the end (probabilities), which leaves the argmax alone; so the row-normalised scores
    and the labels must agree, given the same graph as a callable kernel."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.semi_supervised import LabelSpreading as SkLabelSpreading

    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[3.0, 0, 0, 1], [0, 3.0, 0, 1], [0, 0, 3.0, 1], [1, 1, 1, 1]])
    y = torch.arange(4).repeat_interleave(40)
    z = (centres[y] + 1.2 * torch.randn(160, 4, generator=gen)).double()
    labelled = torch.tensor([0, 1, 40, 41, 80, 81, 120, 121])
    k, power = 7, 3.0

    ours = LabelSpreading(z, k=k, power=power).spread(labelled, y[labelled], 4, alpha=alpha, iters=iters)
    ours = ours.double() / ours.double().sum(1, keepdim=True).clamp_min(1e-300)

    y_sk = np.full(len(z), -1)
    y_sk[labelled.numpy()] = y[labelled].numpy()
    sk = SkLabelSpreading(kernel=_knn_kernel(k, power), alpha=alpha, max_iter=iters, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: it always runs max_iter steps
        sk.fit(z.numpy(), y_sk)
    assert sk.n_iter_ == iters
    np.testing.assert_allclose(ours.numpy(), sk.label_distributions_, atol=1e-5)
    assert np.array_equal(ours.argmax(1).numpy(), sk.transduction_)
    assert (sk.transduction_ == y.numpy()).mean() > 0.6  # the case is not degenerate: labels did spread


# ---------------------------------------------------------------------------- Frechet distance vs scipy sqrtm


def _frechet_direct(a: np.ndarray, b: np.ndarray, symmetric: bool) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``; with ``symmetric``, the trace of the square root
    taken as ``tr((S_a^(1/2) S_b S_a^(1/2))^(1/2))`` (same eigenvalues, a symmetric matrix)."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    if symmetric:
        r = linalg.sqrtm(s_a)
        cross = linalg.sqrtm(r @ s_b @ r)
    else:
        cross = linalg.sqrtm(s_a @ s_b)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b) - 2 * np.trace(cross).real)


@pytest.mark.parametrize("d", [3, 16])
def test_frechet_distance_matches_scipy_sqrtm_formula(d):
    rng = np.random.default_rng(d)
    a = rng.normal(size=(600, d)) @ rng.normal(size=(d, d))
    b = rng.normal(size=(500, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)
    got = frechet_distance(a, b)
    for symmetric in (False, True):
        assert got == pytest.approx(_frechet_direct(a, b, symmetric), rel=1e-5, abs=1e-6)
    assert got > 1.0
    # torch tensors are read the same way, and a set is at distance ~0 from itself
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(got, rel=1e-12)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-4)
