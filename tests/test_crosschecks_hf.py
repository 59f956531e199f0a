"""genlab's GPT and DDPM / DDIM steps against Hugging Face's implementations of the same maths.

* :class:`genlab.nn.gpt.GPT` against ``transformers``' GPT-2 with the same (copied) weights: the logits agree;
* the ancestral DDPM step and the DDIM step (eta 0 and 1) of :mod:`genlab.diffusion.samplers` against
  ``diffusers``' ``DDPMScheduler`` / ``DDIMScheduler`` on the same linear-beta schedule, the same noise
  prediction and the same random draws: whole trajectories agree.

Both libraries are the optional ``crosscheck`` extra (``pip install -e '.[crosscheck]'``; ``make setup`` installs it);
where one is absent its tests are skipped.
"""

from __future__ import annotations

import pytest
import torch

from genlab.diffusion.samplers import DDIM, DDPMAncestral, run_steps
from genlab.diffusion.schedules import VPLinearSchedule
from genlab.nn.gpt import GPT, GPTConfig

# ---------------------------------------------------------------------------------------- GPT vs GPT-2


def _gpt2_with_our_weights(ours: GPT):
    transformers = pytest.importorskip("transformers")
    c = ours.config
    ref = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(
            vocab_size=c.vocab_size,
            n_positions=c.block_size,
            n_embd=c.n_embd,
            n_layer=c.n_layer,
            n_head=c.n_head,
            activation_function="gelu",  # ours is the exact GELU; GPT-2's checkpoints use the tanh form
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            layer_norm_epsilon=1e-5,
            bos_token_id=None,
            eos_token_id=None,
        )
    ).eval()
    t = ref.transformer
    with torch.no_grad():
        t.wte.weight.copy_(ours.wte.weight)
        t.wpe.weight.copy_(ours.wpe.weight)
        for block, h in zip(ours.blocks, t.h, strict=True):
            # GPT-2's Conv1D keeps its weight as (in, out): our Linear's weight transposed
            for mine, theirs in ((block.ln1, h.ln_1), (block.ln2, h.ln_2)):
                theirs.weight.copy_(mine.weight)
                theirs.bias.copy_(mine.bias)
            for mine, theirs in (
                (block.attn.qkv, h.attn.c_attn),
                (block.attn.proj, h.attn.c_proj),
                (block.mlp.fc, h.mlp.c_fc),
                (block.mlp.proj, h.mlp.c_proj),
            ):
                theirs.weight.copy_(mine.weight.T)
                theirs.bias.copy_(mine.bias)
        t.ln_f.weight.copy_(ours.ln_f.weight)
        t.ln_f.bias.copy_(ours.ln_f.bias)
    ref.tie_weights()
    return ref


@pytest.mark.parametrize("shape", [dict(n_layer=2, n_head=2, n_embd=32), dict(n_layer=3, n_head=4, n_embd=64)])
def test_gpt_matches_transformers_gpt2(shape):
    torch.manual_seed(0)
    ours = GPT(GPTConfig(vocab_size=97, block_size=24, dropout=0.0, bias=True, **shape)).eval()
    with torch.no_grad():  # move every weight off its initial value, so that a swapped pair would show
        for p in ours.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ref = _gpt2_with_our_weights(ours)
    idx = torch.randint(97, (3, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mine, _ = ours(idx)
        theirs = ref(idx).logits
    assert mine.shape == theirs.shape
    torch.testing.assert_close(mine, theirs, atol=2e-5, rtol=1e-4)


# ------------------------------------------------------------------------------- DDPM / DDIM vs diffusers

T = 100


def _eps_model(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """A fixed, nonlinear noise prediction of the state and the integer DDPM timestep (both sides call it)."""
    w = torch.linspace(-0.6, 0.8, x.shape[1], dtype=x.dtype)
    return torch.tanh(x * w + 0.01 * k.to(x.dtype)[:, None]) + 0.1 * torch.sin(x.flip(1))


def _ours(sampler, x, times, seed):
    # genlab's continuous time t = (k + 1) / T is diffusers' timestep k (its alphas_cumprod[k] is ours at k + 1)
    def eps_fn(x, t):
        return _eps_model(x, torch.round(t * T).long() - 1)

    g = torch.Generator().manual_seed(seed)
    return run_steps(eps_fn, VPLinearSchedule(T=T), sampler, x.clone(), times, generator=g).x


def _theirs(scheduler, x, seed, **step_kw):
    g = torch.Generator().manual_seed(seed)
    for k in scheduler.timesteps:
        eps = _eps_model(x, k.expand(x.shape[0]))
        x = scheduler.step(eps, k, x, generator=g, **step_kw).prev_sample
    return x


def _schedule_kw():
    return dict(num_train_timesteps=T, beta_schedule="linear", beta_start=1e-4, beta_end=0.02, clip_sample=False)


def test_ddpm_ancestral_matches_diffusers_ddpm_scheduler():
    diffusers = pytest.importorskip("diffusers")
    sched = diffusers.DDPMScheduler(**_schedule_kw(), variance_type="fixed_small", prediction_type="epsilon")
    sched.set_timesteps(T)
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    times = torch.arange(T, -1, -1, dtype=torch.float64) / T
    torch.testing.assert_close(_ours(DDPMAncestral(), x, times, 7), _theirs(sched, x, 7), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("steps", [10, 25])
def test_ddim_matches_diffusers_ddim_scheduler(eta, steps):
    diffusers = pytest.importorskip("diffusers")
    sched = diffusers.DDIMScheduler(**_schedule_kw(), set_alpha_to_one=True, timestep_spacing="leading")
    sched.set_timesteps(steps)
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    ks = sched.timesteps.to(torch.float64)  # e.g. 90, 80, ..., 0; the last step lands on the data (t = 0)
    times = torch.cat([(ks + 1) / T, torch.zeros(1, dtype=torch.float64)])
    mine = _ours(DDIM(eta), x, times, 3)
    theirs = _theirs(sched, x, 3, eta=eta)
    torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=1e-4)
