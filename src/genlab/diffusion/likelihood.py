"""Likelihoods of a trained diffusion model: the ELBO (a Monte-Carlo lower bound) and the exact ODE
log-density.

**ELBO.** Discretise [t_0, 1] into ``T`` steps ``t_i`` and read the model as a hierarchical latent-variable
model
(Kingma et al., "Variational diffusion models"): a prior ``p(z_1)``, reverse steps ``p(z_s | z_t) =
q(z_s | z_t, x = x0_hat(z_t, t))`` and a Gaussian decoder ``p(x | z_{t_0})``. Then

    -log p(x) <= KL(q(z_1 | x) || p(z_1))                              (prior term)
                 + E[-log p(x | z_{t_0})]                               (reconstruction term)
                 + L_T(x),                                              (diffusion term)

    L_T(x) = (T / 2) E_{eps, i ~ U{1..T}} [ (SNR(t_{i-1}) - SNR(t_i)) ||x - x0_hat(z_{t_i}, t_i)||^2 ],

the lab's estimator (with ``SNR = alpha^2 / sigma^2``, ``1 / sigma^2`` for VE). The prior is the sampler's
start ``N(prior_mean, prior_std^2)`` (per coordinate, and per point if given so: one Gaussian per class) and
the decoder ``N(z_0 / alpha_0, (sigma_0 / alpha_0)^2 I)``, so both terms are exact;
``L_T`` is averaged over Monte-Carlo draws of (i, eps), stratified in i, and comes with its standard error.
Everything is vectorised: all points and all draws go through the network in large chunks.

**Exact log-density.** The probability-flow ODE ``dx/dt = v(x, t)`` is a continuous normalising flow, so

    log p_0(x_0) = log p_1(x_1) + integral_0^1 div v(x_t, t) dt,

integrated along the ODE path from the data point up to t = 1. With ``v = f x + c(t) eps_hat(x, t)``,
``div v = f D + c(t) tr(d eps_hat / dx)``; the trace is exact (one backward pass per dimension: cheap in 2D)
or Hutchinson's unbiased estimate for images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from genlab.diffusion.samplers import ode_velocity, prior_params, x0_from_eps
from genlab.diffusion.schedules import Schedule
from genlab.errors import ConfigError

Tensor = torch.Tensor


def _eval(eps_fn: Callable[..., Tensor], x: Tensor, t: Tensor, cond: Tensor | None) -> Tensor:
    return eps_fn(x, t) if cond is None else eps_fn(x, t, cond)


@dataclass
class ElboResult:
    """Per point (shape (B,)), in nats: ``elbo <= log p(x)`` and its parts (``elbo = -(prior + recon +
    diffusion)``).

    ``stderr`` is the Monte-Carlo standard error of ``elbo`` (only the diffusion term is random).
    """

    elbo: Tensor
    stderr: Tensor
    diffusion: Tensor
    prior: Tensor
    reconstruction: Tensor
    draws: int


def elbo(
    eps_fn: Callable[..., Tensor],
    schedule: Schedule,
    x: Tensor,
    *,
    cond: Tensor | None = None,
    T: int | None = None,
    n_mc: int = 256,
    chunk: int = 65536,
    generator: torch.Generator | None = None,
    t0: float | None = None,
    prior_std: float | Tensor | None = None,
    prior_mean: Tensor | None = None,
) -> ElboResult:
    """The ELBO of each point of ``x`` (shape (B, ...)) with ``n_mc`` draws per point.

    ``T`` defaults to 1000 for VE schedules and ``schedule.T - 1`` for discrete VP ones (so the grid is the
    DDPM steps); ``t0`` (the decoder's time) defaults to ``schedule.t_min``. ``cond`` (e.g. class labels,
    shape (B,)) is passed to ``eps_fn(x, t, cond)``. ``prior_std`` and ``prior_mean`` describe the sampler's
    start (default ``N(0, sigma(1)^2)``; see :func:`~genlab.diffusion.samplers.prior_params`).
    """
    if n_mc < 2:
        raise ConfigError(f"bad number of Monte-Carlo draws {n_mc}; it must be >= 2 for a standard error")
    t0 = float(getattr(schedule, "t_min", 0.0) if t0 is None else t0)
    T = int(T if T is not None else (getattr(schedule, "T", 1001) - 1 if schedule.kind == "vp" else 1000))
    if T < 1:
        raise ConfigError(f"bad number of ELBO steps T={T}; it must be >= 1")
    B, D = x.shape[0], x[0].numel()
    device, dtype = x.device, x.dtype
    f64 = torch.float64

    # exact prior and reconstruction terms
    t1 = torch.tensor(1.0, dtype=f64)
    a1, s1 = float(schedule.alpha(t1)), float(schedule.sigma(t1))
    mean, std = (v.reshape(B, -1).double().cpu() for v in prior_params(schedule, x, prior_std, prior_mean))
    # KL(N(a1 x, s1^2) || N(mean, std^2)), summed over the D coordinates
    prior = (
        torch.log(std / s1)
        + s1**2 / (2 * std**2)
        - 0.5
        + (a1 * x.reshape(B, -1).double().cpu() - mean).pow(2) / (2 * std**2)
    ).sum(1)
    tz = torch.tensor(t0, dtype=f64)
    s0 = float(schedule.sigma(tz) / schedule.alpha(tz))
    recon = torch.full((B,), 0.5 * D * (math.log(2 * math.pi * s0**2) + 1), dtype=f64)

    # diffusion term: stratified step indices i in 1..T, one row per (point, draw)
    k = torch.arange(n_mc, dtype=f64).repeat(B)
    u = torch.rand(B * n_mc, generator=generator, dtype=f64)
    i = torch.clamp(torch.floor((k + u) * T / n_mc), max=T - 1) + 1
    t = t0 + i * (1 - t0) / T
    s = t0 + (i - 1) * (1 - t0) / T
    weight = (schedule.snr(s) - schedule.snr(t)) * T / 2
    values = torch.empty(B * n_mc, dtype=f64)
    idx = torch.arange(B, device=device).repeat_interleave(n_mc)
    with torch.no_grad():
        for lo in range(0, B * n_mc, chunk):
            sl = slice(lo, min(lo + chunk, B * n_mc))
            xb = x[idx[sl]]
            tb = t[sl].to(device=device, dtype=dtype)
            eps = torch.randn(xb.shape, generator=generator, dtype=dtype).to(device)
            z = schedule.perturb(xb, tb, eps)
            x0 = _x0_batch(schedule, z, tb, _eval(eps_fn, z, tb, None if cond is None else cond[idx[sl]]))
            err = (xb - x0).reshape(xb.shape[0], -1).double().pow(2).sum(1).cpu()
            values[sl] = weight[sl] * err
    values = values.reshape(B, n_mc)
    diffusion = values.mean(1)
    stderr = values.std(1) / math.sqrt(n_mc)
    total = -(prior.cpu() + recon + diffusion)
    return ElboResult(total, stderr, diffusion, prior.cpu(), recon, n_mc)


def _x0_batch(schedule: Schedule, z: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    """x0_hat with a per-row time ``t`` of shape (B,)."""
    shape = (-1,) + (1,) * (z.dim() - 1)
    return (z - schedule.sigma(t).reshape(shape) * eps) / schedule.alpha(t).reshape(shape)


@dataclass
class LogLikResult:
    """Exact ODE log-density per point: ``logp = prior_logp + delta`` (nats); ``z`` is the point reached at
    t = 1, as standard noise ``(x_1 - prior_mean) / prior_std``."""

    logp: Tensor
    prior_logp: Tensor
    delta: Tensor
    z: Tensor


def _divergence(
    eps_fn, schedule: Schedule, x: Tensor, t: Tensor, cond, trace: str, probe: Tensor | None
) -> tuple[Tensor, Tensor]:
    """(v(x, t), div v(x, t)) with the exact trace or Hutchinson's estimate ``probe^T J probe``."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        eps = _eval(eps_fn, xg, t.to(x.dtype).expand(x.shape[0]), cond)
        flat = eps.reshape(x.shape[0], -1)
        if trace == "exact":
            tr = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
            for j in range(flat.shape[1]):
                (g,) = torch.autograd.grad(flat[:, j].sum(), xg, retain_graph=j < flat.shape[1] - 1)
                tr = tr + g.reshape(x.shape[0], -1)[:, j]
        else:
            (g,) = torch.autograd.grad((eps * probe).sum(), xg)
            tr = (g * probe).reshape(x.shape[0], -1).sum(1)
    eps = eps.detach()
    D = flat.shape[1]
    f = schedule.drift(t).to(x.dtype)
    c = (schedule.dsigma(t) - schedule.drift(t) * schedule.sigma(t)).to(x.dtype)
    return ode_velocity(schedule, x, t, eps), f * D + c * tr.detach()


def ode_log_likelihood(
    eps_fn: Callable[..., Tensor],
    schedule: Schedule,
    x: Tensor,
    *,
    cond: Tensor | None = None,
    steps: int = 200,
    trace: str = "exact",
    t_end: float | None = None,
    generator: torch.Generator | None = None,
    prior_std: float | Tensor | None = None,
    prior_mean: Tensor | None = None,
) -> LogLikResult:
    """Exact log-density ``log p_0(x)`` of the probability-flow ODE model (Heun steps, uniform in t).

    The prior at t = 1 is the sampler's ``N(prior_mean, prior_std^2)`` (default ``N(0, sigma(1)^2)``).
    ``trace`` is ``exact`` or ``hutchinson``.
    """
    if trace not in ("exact", "hutchinson"):
        raise ConfigError(f"unknown trace estimator {trace!r}; choose one of: exact, hutchinson")
    if steps < 1:
        raise ConfigError(f"bad number of ODE steps {steps}; it must be >= 1")
    t_lo = float(getattr(schedule, "t_min", 0.0) if t_end is None else t_end)
    times = torch.linspace(t_lo, 1.0, steps + 1, dtype=torch.float64)
    probe = None
    if trace == "hutchinson":
        probe = (torch.randint(0, 2, x.shape, generator=generator) * 2 - 1).to(x)
    B = x.shape[0]
    delta = torch.zeros(B, dtype=torch.float64, device=x.device)
    xt = x.detach()
    v, div = _divergence(eps_fn, schedule, xt, times[0], cond, trace, probe)
    for n in range(steps):
        h = float(times[n + 1] - times[n])
        x_pred = xt + h * v
        v2, div2 = _divergence(eps_fn, schedule, x_pred, times[n + 1], cond, trace, probe)
        xt = xt + h * (v + v2) / 2
        delta = delta + h * (div + div2).double() / 2
        if n < steps - 1:
            v, div = _divergence(eps_fn, schedule, xt, times[n + 1], cond, trace, probe)
    mean, std = prior_params(schedule, xt, prior_std, prior_mean)
    z = (xt - mean) / std
    prior_logp = (-0.5 * z.double() ** 2 - torch.log(std.double()) - 0.5 * math.log(2 * math.pi)).reshape(B, -1).sum(1)
    return LogLikResult((prior_logp + delta).cpu(), prior_logp.cpu(), delta.cpu(), z)


@dataclass
class LikelihoodComparison:
    """The ELBO and the exact ODE log-density of the same points (:func:`compare_likelihoods`).

    They are likelihoods of two models that share the network: the ELBO bounds the stochastic (discrete-time)
    sampler's, the ODE gives the deterministic flow's, and they coincide only where the network has learnt the
    true score. So ``elbo <= ode + stderr`` is expected where the two models agree (on the data).
    """

    elbo: ElboResult
    ode: LogLikResult

    @property
    def gap(self) -> Tensor:
        """ELBO - ODE log-density per point (nats)."""
        return self.elbo.elbo - self.ode.logp

    def rows(self, digits: int = 4) -> list[dict[str, float | bool]]:
        """Per point: ``elbo`` +- ``stderr`` and ``ode_logp`` (rounded to ``digits``), ``z`` = gap / stderr (2
        digits) and ``elbo_le_ode_plus_se``: whether the ELBO stays below the ODE value plus one standard error."""
        e, se, lp = self.elbo.elbo, self.elbo.stderr, self.ode.logp
        return [
            {
                "elbo": round(float(e[i]), digits),
                "stderr": round(float(se[i]), digits),
                "ode_logp": round(float(lp[i]), digits),
                "z": round(float((e[i] - lp[i]) / se[i]), 2),
                "elbo_le_ode_plus_se": bool(e[i] <= lp[i] + se[i]),
            }
            for i in range(len(e))
        ]

    def agreement(self, mask: Tensor | None = None) -> dict[str, float]:
        """Over the points of ``mask`` (default: all): mean and sd of the gap, and the share of points where the
        ELBO exceeds the ODE value by more than its standard error."""
        gap, over = self.gap, self.gap > self.elbo.stderr
        if mask is not None:
            gap, over = gap[mask], over[mask]
        return {"gap_mean": float(gap.mean()), "gap_sd": float(gap.std()), "share_over_se": float(over.double().mean())}


def compare_likelihoods(
    eps_fn: Callable[..., Tensor],
    schedule: Schedule,
    x: Tensor,
    *,
    cond: Tensor | None = None,
    n_mc: int = 1000,
    ode_steps: int = 100,
    seed: int = 0,
    prior_std: float | Tensor | None = None,
    prior_mean: Tensor | None = None,
) -> LikelihoodComparison:
    """:func:`elbo` (``n_mc`` draws from a generator seeded with ``seed``) and :func:`ode_log_likelihood`
    (``ode_steps`` Heun steps) of the points ``x``, under the same prior."""
    prior = {"prior_std": prior_std, "prior_mean": prior_mean}
    gen = torch.Generator().manual_seed(seed)
    e = elbo(eps_fn, schedule, x, cond=cond, n_mc=n_mc, generator=gen, **prior)
    return LikelihoodComparison(e, ode_log_likelihood(eps_fn, schedule, x, cond=cond, steps=ode_steps, **prior))


def likelihood_checks(rows: Sequence[Mapping], inside: Sequence[bool]) -> dict[str, float | bool]:
    """Checks of :meth:`LikelihoodComparison.rows` at reference points, ``inside`` marking those in distribution
    (on the data): the lowest ELBO inside and the highest outside (``elbo_in_gt_out`` when the first is larger),
    and whether the ELBO stays below the ODE value plus one standard error at the points inside
    (``elbo_le_ode_within_se_in_support``) and at all of them (``elbo_le_ode_within_se_all``)."""
    ins = [r["elbo"] for r, ok in zip(rows, inside) if ok]
    outs = [r["elbo"] for r, ok in zip(rows, inside) if not ok]
    return {
        "elbo_in_min": min(ins),
        "elbo_out_max": max(outs),
        "elbo_in_gt_out": bool(min(ins) > max(outs)),
        "elbo_le_ode_within_se_in_support": all(r["elbo_le_ode_plus_se"] for r, ok in zip(rows, inside) if ok),
        "elbo_le_ode_within_se_all": all(r["elbo_le_ode_plus_se"] for r in rows),
    }


__all__ = [
    "ElboResult",
    "LikelihoodComparison",
    "LogLikResult",
    "compare_likelihoods",
    "elbo",
    "likelihood_checks",
    "ode_log_likelihood",
    "x0_from_eps",
]
