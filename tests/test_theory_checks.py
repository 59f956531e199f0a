"""Every check of the theory lab as a test: each must pass on the lab's own sizes, and each can fail."""

import numpy as np
import pytest
import torch

from genlab.labs.theory.config import PRESETS
from genlab.labs.theory.core import EVIDENCE, Theory
from genlab.nn import bptt
from genlab.nn import transformer as tr
from genlab.runs import Run


@pytest.fixture
def th(tmp_path):
    cfg = PRESETS["quick"]
    return Theory(Run.create("theory", cfg, name="t", root=tmp_path), cfg)


TRAINED = ("seq2seq_ablations", "gan_pairing", "attention_imitation", "diffusion_positions", "saliency")  # own tests


@pytest.mark.parametrize("name", [n for n in EVIDENCE if n not in TRAINED])
def test_check_passes(th, name):
    torch.set_num_threads(1)
    ev = th.get(name)
    assert ev["passed"], ev["check"]
    assert th.get(name) is ev  # computed once per opened run


def test_bptt_formula_check_fails_without_the_derivative_matrices(th):
    ev = th.get("bptt_formula")
    assert ev["error"] < 1e-10 < 1e-3 < ev["wrong_error"]


def test_bptt_formula_matches_autograd_for_other_slopes_and_lengths():
    g = torch.Generator().manual_seed(3)
    for slope, steps in ((0.01, 3), (0.3, 12)):
        w = torch.randn(4, 4, generator=g, dtype=torch.float64) * 0.6
        u, xs = (
            torch.randn(4, 2, generator=g, dtype=torch.float64),
            torch.randn(steps, 2, generator=g, dtype=torch.float64),
        )
        h0, v = torch.randn(4, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64)
        wr = w.clone().requires_grad_(True)
        (v @ bptt.leaky_rnn(wr, u, xs, h0, slope)[0][-1]).backward()
        torch.testing.assert_close(bptt.bptt_grad_W(w, u, xs, h0, v, slope), wr.grad, rtol=0, atol=1e-12)


def test_full_bptt_memory_grows_linearly_and_truncation_caps_it():
    w = torch.randn(16, 16, requires_grad=True)
    u = torch.randn(16, 4)
    held, peaks = [], []
    for n in (10, 20, 40):
        xs = torch.randn(n, 4)
        _, b = bptt.last_state_bytes(w, u, xs, torch.zeros(16))
        held.append(b)
        peaks.append(bptt.truncated_backward(w, u, xs, torch.zeros(16), k=5)[0])
    assert held[2] - held[1] == 2 * (held[1] - held[0]) > 0  # the same bytes for every extra step
    assert peaks[0] == peaks[1] == peaks[2] < held[0] / 1.9  # five steps' worth, whatever the length


def test_residual_growth_exponents_differ_and_a_wrong_reading_would_fail():
    zero = tr.residual_stream_growth(16, "zero_mean").numpy()
    nonzero = tr.residual_stream_growth(16, "nonzero_mean").numpy()
    # increments from depth 8 to 16: about x2 for linear growth, about x4 for quadratic
    assert 1.6 < (zero[16] - zero[0]) / (zero[8] - zero[0]) < 2.4
    assert (nonzero[16] - nonzero[0]) / (nonzero[8] - nonzero[0]) > 3.0
    assert np.all(np.diff(zero) > 0)


def test_answers_name_their_evidence_and_stay_short():
    from genlab.labs import registered
    from genlab.labs.theory.figures import QUESTIONS

    names = {s.name for s in registered("theory")}
    for a in QUESTIONS:
        assert a.evidence in names, a.evidence
        assert a.evidence in a.answer  # the answer names the figure or table that shows it
        assert len(a.answer) < 1200 and "\n" not in a.question
