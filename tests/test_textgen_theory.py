"""The transformer theory made executable (genlab.nn.transformer)."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from genlab.nn import transformer as tr


@pytest.mark.parametrize("T,D,M", [(7, 5, 3), (16, 8, 8), (10, 4, 12)])
def test_attention_cost_matches_flop_counter(T, D, M):
    q, k, v = torch.randn(T, D), torch.randn(T, D), torch.randn(T, M)
    with FlopCounterMode(display=False) as counter:
        tr.attention(q, k, v)
    # FLOPs of a matmul are 2 x its multiplications
    assert counter.get_total_flops() == 2 * tr.attention_multiplications(T, D, M) == 2 * T * T * (D + M)


def test_causal_mask_blocks_the_future():
    m = tr.causal_mask(4)
    assert m.tolist() == [
        [True, False, False, False],
        [True, True, False, False],
        [True, True, True, False],
        [True, True, True, True],
    ]
    q = torch.randn(4, 3)
    _, w = tr.attention(q, q, q, m)
    assert torch.all(w.triu(1) == 0) and torch.allclose(w.sum(-1), torch.ones(4))


def test_decoder_is_causal_and_addnorm_normalises():
    torch.manual_seed(0)
    model = tr.Seq2SeqTransformer(vocab=9, d_model=16, n_head=2, d_ff=32, n_layers=1).eval()
    src = torch.randint(1, 9, (1, 5))
    tgt = torch.randint(1, 9, (1, 5))
    other = tgt.clone()
    other[0, 3:] = (other[0, 3:] % 8) + 1
    torch.testing.assert_close(model(src, tgt)[0, :3], model(src, other)[0, :3])
    an = tr.AddNorm(16)
    out = an(torch.randn(4, 16) * 5 + 3, torch.randn(4, 16))
    torch.testing.assert_close(out.mean(-1), torch.zeros(4), atol=1e-5, rtol=0)


def test_sinusoidal_positions_make_order_matter():
    torch.manual_seed(0)
    model = tr.Seq2SeqTransformer(vocab=9, d_model=16, n_head=2, d_ff=32, n_layers=1).eval()
    a = model._inputs(torch.tensor([[3, 3, 3]]))
    assert not torch.allclose(a[0, 0], a[0, 1])  # the same token at two positions differs


def _train(tmp_path, task, variant="full", steps=150, length=5, vocab=8):
    from genlab.labs.theory.config import TheoryConfig
    from genlab.labs.theory.core import Theory, train_seq2seq
    from genlab.runs import Run

    cfg = TheoryConfig(
        steps=steps, length=length, vocab=vocab, d_model=32, n_head=4, d_ff=64, n_layers=1, eval_size=256
    )
    run = (
        Run(tmp_path / "theory" / "t")
        if (tmp_path / "theory" / "t").exists()
        else Run.create("theory", cfg, name="t", root=tmp_path)
    )
    return train_seq2seq(Theory(run, cfg), task, variant), run


def test_transformer_learns_to_reverse_in_seconds_through_fit(tmp_path):
    acc, run = _train(tmp_path, "reverse")
    assert acc["greedy_seq_acc"] > 0.9, acc
    sub = run.path / "stages" / "seq2seq-reverse-full"
    assert (sub / "checkpoints" / "last.pt").exists() and (sub / "metrics.jsonl").exists()  # fit's run folder
    stamp = (sub / "checkpoints" / "last.pt").stat().st_mtime_ns
    again, _ = _train(tmp_path, "reverse")  # a finished stage is reused, not retrained
    assert again == acc and (sub / "checkpoints" / "last.pt").stat().st_mtime_ns == stamp


def test_copy_task_learned_too(tmp_path):
    acc, _ = _train(tmp_path, "copy", steps=100)
    assert acc["greedy_seq_acc"] > 0.9, acc


def test_without_positions_the_model_sees_a_bag_of_tokens():
    torch.manual_seed(0)
    model = tr.Seq2SeqTransformer(vocab=9, d_model=16, n_head=2, d_ff=32, n_layers=1, positional=False).eval()
    src = torch.tensor([[1, 2, 3, 4]])
    mem, mem_perm = model.encode(src), model.encode(src.flip(1))
    torch.testing.assert_close(mem.flip(1), mem_perm)  # permuting the source only permutes the encoding
    tgt = torch.tensor([[0, 5]])
    torch.testing.assert_close(model.decode(tgt, mem), model.decode(tgt, mem_perm))  # the order is lost


def test_without_the_mask_the_decoder_reads_the_future():
    torch.manual_seed(0)
    model = tr.Seq2SeqTransformer(vocab=9, d_model=16, n_head=2, d_ff=32, n_layers=1, causal=False).eval()
    src = torch.randint(1, 9, (1, 5))
    tgt = torch.randint(1, 9, (1, 5))
    other = tgt.clone()
    other[0, 3:] = (other[0, 3:] % 8) + 1
    assert not torch.allclose(model(src, tgt)[0, :3], model(src, other)[0, :3])


def test_no_mask_decoder_cheats_in_training_and_fails_at_generation(tmp_path):
    # length 8 over 15 symbols: copying the next input (the answer) is easier to learn than reading the encoder
    acc, _ = _train(tmp_path, "reverse", "no_mask", steps=300, length=8, vocab=16)
    assert acc["forced_token_acc"] > 0.9 and acc["greedy_seq_acc"] < 0.5, acc


def test_no_positions_cannot_reverse(tmp_path):
    acc, _ = _train(tmp_path, "reverse", "no_positions")
    assert acc["greedy_seq_acc"] < 0.5, acc


def test_residual_branch_init_has_zero_mean_output():
    torch.manual_seed(0)
    u = torch.randn(256, 32)
    outs = []
    for _ in range(200):  # expectation over the initialisation
        ffn = tr.FeedForward(32, 64)
        tr.init_residual_branch(ffn.w2, n_layers=6)
        outs.append(ffn(u).detach())
    outs = torch.stack(outs)
    mean, std = outs.mean(0), outs.std(0)
    # E[F(u)] = 0 for every input: the average over 200 inits is within a few standard errors of zero
    assert (mean.abs() < 4 * std / 200**0.5 + 1e-6).float().mean() > 0.99
    # and deeper stacks get smaller branches: x + F(x) stays near the identity
    deep = tr.FeedForward(32, 64)
    tr.init_residual_branch(deep.w2, n_layers=48)
    shallow = tr.FeedForward(32, 64)
    torch.manual_seed(1)
    tr.init_residual_branch(shallow.w2, n_layers=1)
    assert deep(u).std() < shallow(u).std()


def test_deep_stack_needs_the_residual_connections(tmp_path):
    deep, _ = _train(tmp_path, "reverse", "deep", steps=200)
    flat, _ = _train(tmp_path, "reverse", "deep_no_residual", steps=200)
    assert deep["greedy_seq_acc"] > 0.9 > 0.5 > flat["greedy_seq_acc"], (deep, flat)


def test_addnorm_without_residual_drops_the_skip():
    an = tr.AddNorm(8, residual=False)
    x, fx = torch.randn(3, 8), torch.randn(3, 8)
    torch.testing.assert_close(an(x, fx), an(x + 100, fx))  # x no longer reaches the output
    assert not torch.allclose(tr.AddNorm(8)(x, fx), tr.AddNorm(8)(x + 100, fx))
