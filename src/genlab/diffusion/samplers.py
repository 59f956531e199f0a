"""Samplers: turn a noise-prediction network into samples, for any
:class:`~genlab.diffusion.schedules.Schedule`.

The network is seen only through an ``eps_fn(x, t) -> eps_hat``: ``x`` has any shape ``(B, ...)`` and ``t``
is a
tensor of shape ``(B,)`` with the time in [0, 1]. From ``eps_hat`` follow the two other views every sampler
uses:

    x0_hat = (x - sigma(t) eps_hat) / alpha(t)          (the denoised guess)
    score  = -eps_hat / sigma(t)                        (the gradient of log p_t)

A sampler is an object with one method, ``step(eps_fn, schedule, x, t, t_next, last, generator)``, that moves
``x`` from time ``t`` to ``t_next`` and returns ``(x_next, x0_hat)``. The driver :func:`sample` owns the rest:
the time grid (uniform or EDM rho spacing), the starting noise, and the trajectory. This is the split of
diffusers' schedulers (schedule and sampler separate, one small interface), written from the equations:

* ``euler``: Euler steps of the probability-flow ODE (the lab's "DDIM"),
  ``dx/dt = f x - g^2/2 score = f x + (sigma' - f sigma) eps_hat``; for VE this is ``dx = sigma' eps_hat dt``,
  the lab's ``dz = -sigma' sigma score dt``.
* ``heun``: the same ODE with Heun's second-order correction (Karras et al., EDM).
* ``euler-maruyama``: the reverse-time SDE ``dx = (f x - g^2 score) dt + g dW`` (stochastic).
* ``ddpm``: ancestral sampling from the Gaussian posterior ``q(x_s | x_t, x_0 = x0_hat)``.
* ``ddim``: DDIM with ``eta`` (0 = deterministic, 1 = the DDPM posterior variance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from genlab.diffusion.schedules import Schedule
from genlab.errors import ConfigError, choose

Tensor = torch.Tensor
EpsFn = Callable[[Tensor, Tensor], Tensor]

SAMPLERS = ("euler", "heun", "euler-maruyama", "ddpm", "ddim")
GRIDS = ("uniform", "edm")


def _b(v: Tensor, x: Tensor) -> Tensor:
    """A scalar (0-d) tensor as ``x``'s dtype/device, ready to broadcast."""
    return v.to(device=x.device, dtype=x.dtype)


def _call(eps_fn: EpsFn, x: Tensor, t: Tensor) -> Tensor:
    return eps_fn(x, t.to(device=x.device, dtype=x.dtype).expand(x.shape[0]))


def x0_from_eps(schedule: Schedule, x: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    """The denoised guess ``(x - sigma eps) / alpha`` at time ``t`` (a 0-d tensor)."""
    return (x - _b(schedule.sigma(t), x) * eps) / _b(schedule.alpha(t), x)


def ode_velocity(schedule: Schedule, x: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    """dx/dt of the probability-flow ODE: ``f x + (sigma' - f sigma) eps_hat``."""
    f = _b(schedule.drift(t), x)
    return f * x + (_b(schedule.dsigma(t), x) - f * _b(schedule.sigma(t), x)) * eps


# --------------------------------------------------------------------------------------------------- samplers


class Sampler:
    """One step of a sampler; see the module docstring for the interface."""

    name = "sampler"
    stochastic = False
    evals_per_step = 1

    def step(
        self,
        eps_fn: EpsFn,
        schedule: Schedule,
        x: Tensor,
        t: Tensor,
        t_next: Tensor,
        *,
        last: bool,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def draw(kind: str, shape, *, generator: torch.Generator | None, device=None, dtype=None) -> Tensor:
    """Standard normal (``kind="normal"``) or uniform noise drawn where ``generator`` lives, then moved to
    ``device``: a CPU generator (the labs' seeded ones) then works for CUDA and MPS tensors too, and gives the
    same numbers on every device."""
    where = generator.device if generator is not None else device
    fn = torch.randn if kind == "normal" else torch.rand
    return fn(tuple(shape), generator=generator, device=where, dtype=dtype).to(device)


def _noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return draw("normal", x.shape, generator=generator, device=x.device, dtype=x.dtype)


class EulerODE(Sampler):
    """Euler step of the probability-flow ODE: ``x_next = x + (t_next - t) v(x, t)`` (works in both
    directions)."""

    name = "euler"

    def step(self, eps_fn, schedule, x, t, t_next, *, last, generator=None):
        eps = _call(eps_fn, x, t)
        v = ode_velocity(schedule, x, t, eps)
        return x + _b(t_next - t, x) * v, x0_from_eps(schedule, x, t, eps)


class HeunODE(Sampler):
    """Heun (trapezoid) step of the probability-flow ODE: Euler predictor, then the average of both slopes.

    The correction is skipped where the next time has no noise left (sigma = 0), as in EDM.
    """

    name = "heun"
    evals_per_step = 2

    def step(self, eps_fn, schedule, x, t, t_next, *, last, generator=None):
        eps = _call(eps_fn, x, t)
        v = ode_velocity(schedule, x, t, eps)
        h = _b(t_next - t, x)
        x_pred = x + h * v
        if float(schedule.sigma(t_next)) == 0.0 or float(t_next) < getattr(schedule, "t_min", 0.0):
            return x_pred, x0_from_eps(schedule, x, t, eps)
        v2 = ode_velocity(schedule, x_pred, t_next, _call(eps_fn, x_pred, t_next))
        return x + h * (v + v2) / 2, x0_from_eps(schedule, x, t, eps)


class EulerMaruyama(Sampler):
    """Euler-Maruyama step of the reverse-time SDE ``dx = (f x + g^2 eps_hat / sigma) dt + g dW`` (dt < 0).

    No noise is added on the last step, so the result is the denoised end point.
    """

    name = "euler-maruyama"
    stochastic = True

    def step(self, eps_fn, schedule, x, t, t_next, *, last, generator=None):
        eps = _call(eps_fn, x, t)
        g2 = _b(schedule.diffusion2(t), x)
        h = _b(t_next - t, x)
        drift = _b(schedule.drift(t), x) * x + g2 / _b(schedule.sigma(t), x) * eps
        x_next = x + h * drift
        if not last:
            x_next = x_next + torch.sqrt(g2 * h.abs()) * _noise(x, generator)
        return x_next, x0_from_eps(schedule, x, t, eps)


def _transition(schedule: Schedule, t: Tensor, s: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """alpha_t, sigma_t, alpha_s, sigma_s and the variance sigma_{t|s}^2 of q(x_t | x_s), s < t."""
    a_t, s_t, a_s, s_s = schedule.alpha(t), schedule.sigma(t), schedule.alpha(s), schedule.sigma(s)
    var_ts = torch.clamp(s_t**2 - (a_t / a_s) ** 2 * s_s**2, min=0.0)
    return a_t, s_t, a_s, s_s, var_ts


class DDPMAncestral(Sampler):
    """Ancestral step: draw ``x_s`` from the forward posterior ``q(x_s | x_t, x_0 = x0_hat)``.

    With ``alpha_{t|s} = alpha_t / alpha_s`` and ``sigma_{t|s}^2 = sigma_t^2 - alpha_{t|s}^2 sigma_s^2``:

        mean = alpha_s sigma_{t|s}^2 / sigma_t^2 * x0_hat + alpha_{t|s} sigma_s^2 / sigma_t^2 * x_t
        var  = sigma_{t|s}^2 sigma_s^2 / sigma_t^2

    For consecutive DDPM steps this is Ho et al.'s ``mu_tilde`` and ``beta_tilde``.
    """

    name = "ddpm"
    stochastic = True

    def step(self, eps_fn, schedule, x, t, t_next, *, last, generator=None):
        eps = _call(eps_fn, x, t)
        x0 = x0_from_eps(schedule, x, t, eps)
        a_t, s_t, a_s, s_s, var_ts = (_b(v, x) for v in _transition(schedule, t, t_next))
        mean = a_s * var_ts / s_t**2 * x0 + (a_t / a_s) * s_s**2 / s_t**2 * x
        var = var_ts * s_s**2 / s_t**2
        if last:
            return mean, x0
        return mean + torch.sqrt(var) * _noise(x, generator), x0


class DDIM(Sampler):
    """DDIM step (Song, Meng & Ermon) with stochasticity ``eta``:

        x_s = alpha_s x0_hat + sqrt(sigma_s^2 - c^2) eps_hat + c z,   c = eta sigma_s sigma_{t|s} / sigma_t

    ``eta = 0`` is deterministic (an exact step of the ODE written in ``x / alpha`` and ``sigma / alpha``);
    ``eta = 1`` has the DDPM posterior variance and equals :class:`DDPMAncestral`.
    """

    name = "ddim"

    def __init__(self, eta: float = 0.0):
        if eta < 0:
            raise ConfigError(f"bad DDIM eta {eta}; it must be >= 0")
        self.eta = float(eta)
        self.stochastic = eta > 0

    def step(self, eps_fn, schedule, x, t, t_next, *, last, generator=None):
        eps = _call(eps_fn, x, t)
        x0 = x0_from_eps(schedule, x, t, eps)
        a_t, s_t, a_s, s_s, var_ts = (_b(v, x) for v in _transition(schedule, t, t_next))
        c = self.eta * s_s * torch.sqrt(var_ts) / s_t
        x_next = a_s * x0 + torch.sqrt(torch.clamp(s_s**2 - c**2, min=0.0)) * eps
        if self.stochastic and not last:
            x_next = x_next + c * _noise(x, generator)
        return x_next, x0

    def __repr__(self) -> str:
        return f"DDIM(eta={self.eta:g})"


def make_sampler(name: str | Sampler, *, eta: float = 0.0) -> Sampler:
    """A sampler by name (one of :data:`SAMPLERS`); a :class:`Sampler` passes through."""
    if isinstance(name, Sampler):
        return name
    choose("sampler", name, SAMPLERS)
    return {"euler": EulerODE, "heun": HeunODE, "euler-maruyama": EulerMaruyama, "ddpm": DDPMAncestral}.get(
        name, lambda: DDIM(eta)
    )()


# ----------------------------------------------------------------------------------------------------- driver


def time_grid(
    schedule: Schedule, steps: int, kind: str = "uniform", *, t_start: float = 1.0, t_end: float = 0.0, rho: float = 7.0
) -> Tensor:
    """``steps + 1`` times from ``t_start`` to ``t_end`` (float64).

    ``uniform`` spaces them evenly in t (the lab's dt = 1/steps). ``edm`` spaces them evenly in
    ``noise_level^(1/rho)`` (Karras et al.), which puts more steps at low noise, and maps back to t.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"bad number of sampling steps {steps!r}; it must be an integer >= 1")
    choose("time grid", kind, GRIDS)
    if kind == "uniform":
        return torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64)
    if rho <= 0:
        raise ConfigError(f"bad rho {rho}; it must be > 0")
    lo = float(schedule.noise_level(torch.tensor(t_end, dtype=torch.float64)))
    hi = float(schedule.noise_level(torch.tensor(t_start, dtype=torch.float64)))
    ramp = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    levels = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    times = schedule.t_of_noise_level(levels).to(torch.float64)
    times[0], times[-1] = t_start, t_end
    return times


@dataclass
class SampleResult:
    """What a sampler returns: the end point, the time grid, and optionally the whole trajectory.

    ``xs[i]`` is the state at ``times[i]`` (``xs[0]`` the start, ``xs[-1] == x``); ``x0s[i]`` is the model's
    ``x0_hat`` at ``times[i]``, one per step.
    """

    x: Tensor
    times: Tensor
    xs: Tensor | None = None
    x0s: Tensor | None = None


@torch.no_grad()
def run_steps(
    eps_fn: EpsFn,
    schedule: Schedule,
    sampler: Sampler,
    x: Tensor,
    times: Tensor,
    *,
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
    progress: bool = False,
) -> SampleResult:
    """Apply ``sampler`` along ``times`` (decreasing to sample, increasing to invert with an ODE sampler)."""
    xs, x0s = ([x], []) if return_trajectory else (None, None)
    n = len(times) - 1
    for i in tqdm(range(n), disable=not progress, leave=False, desc=sampler.name):
        x, x0 = sampler.step(eps_fn, schedule, x, times[i], times[i + 1], last=(i == n - 1), generator=generator)
        if return_trajectory:
            xs.append(x)
            x0s.append(x0)
    if return_trajectory:
        return SampleResult(x, times, torch.stack(xs), torch.stack(x0s))
    return SampleResult(x, times)


def sample(
    eps_fn: EpsFn,
    schedule: Schedule,
    sampler: str | Sampler = "euler",
    *,
    shape: tuple[int, ...] | None = None,
    noise: Tensor | None = None,
    steps: int = 1000,
    grid: str = "uniform",
    rho: float = 7.0,
    t_start: float = 1.0,
    t_end: float = 0.0,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    prior_std: float | Tensor | None = None,
    prior_mean: Tensor | None = None,
    return_trajectory: bool = False,
    progress: bool = False,
) -> SampleResult:
    """Draw samples: start from ``prior_mean + prior_std * noise`` at ``t_start`` and step down to ``t_end``.

    Give either ``noise`` (standard normal, any shape ``(B, ...)``: the same noise gives the same output with
    a
    deterministic sampler) or ``shape`` (then the noise is drawn from ``generator``). Stochastic samplers draw
    their extra noise from ``generator`` too.

    ``prior_std`` defaults to ``sigma(t_start)``, the lab's start. When sigma(1) is not much larger than the
    data (the lab's sigma(1) = 1 for points in [-1, 1]^2) the true x_1 is wider than that: pass
    ``prior_std = sqrt(sigma(1)^2 + alpha(1)^2 Var(data))`` to start from a Gaussian with x_1's variance,
    otherwise a deterministic sampler keeps the too-narrow start and its samples shrink towards the centre.
    ``prior_std`` and ``prior_mean`` may be tensors that broadcast to the noise, e.g. one Gaussian per class
    (see :func:`prior_params`).
    """
    smp = make_sampler(sampler, eta=eta)
    if noise is None:
        if shape is None:
            raise ConfigError("sample() needs the noise or the shape of the samples")
        noise = draw("normal", shape, generator=generator, device=device or "cpu")
    elif device is not None:
        noise = noise.to(device)
    times = time_grid(schedule, steps, grid, t_start=t_start, t_end=t_end, rho=rho)
    mean, std = prior_params(schedule, noise, prior_std, prior_mean, t_start)
    x = mean + std * noise
    return run_steps(
        eps_fn, schedule, smp, x, times, generator=generator, return_trajectory=return_trajectory, progress=progress
    )


def prior_params(
    schedule: Schedule,
    like: Tensor,
    prior_std: float | Tensor | None = None,
    prior_mean: Tensor | None = None,
    t_start: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation of the sampler's Gaussian start ``N(mean, std^2)``, broadcast to ``like``.

    ``prior_std`` defaults to ``sigma(t_start)`` and ``prior_mean`` to 0. Either may be a number or a tensor
    that broadcasts to ``like``'s shape ``(B, ...)``: per coordinate, or per sample (one Gaussian per class,
    say). The samplers start from it, and the ELBO's prior term and the ODE log-density evaluate it.
    """
    if prior_std is None:
        prior_std = float(schedule.sigma(torch.tensor(t_start, dtype=torch.float64)))
    std = torch.as_tensor(prior_std, dtype=like.dtype, device=like.device)
    if not bool((std > 0).all()):
        raise ConfigError(f"bad prior_std {float(std.min())}; it must be > 0")
    mean = (
        torch.zeros((), dtype=like.dtype, device=like.device)
        if prior_mean is None
        else torch.as_tensor(prior_mean, dtype=like.dtype, device=like.device)
    )
    try:
        return torch.broadcast_to(mean, like.shape), torch.broadcast_to(std, like.shape)
    except RuntimeError:
        raise ConfigError(
            f"prior mean {tuple(mean.shape)} or std {tuple(std.shape)} does not broadcast to the "
            f"samples' shape {tuple(like.shape)}; give one value, one per coordinate, or one row "
            f"per sample"
        ) from None


PRIORS = ("matched", "global", "sigma")


def data_prior(
    schedule: Schedule,
    x0: Tensor,
    labels: Tensor | None = None,
    num_classes: int = 0,
    kind: str = "matched",
    t: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """A Gaussian start for the samplers fitted to the data ``x0`` (N, ...): ``(means, stds)`` of shape
    ``(K, ...)``, one row per class and a last row for all data (K = ``num_classes`` + 1), or a single row
    without classes; pick rows per sample and pass them as ``prior_mean``/``prior_std``.

    ``sigma`` is the textbook ``N(0, sigma(t)^2)``. When sigma(1) is not much larger than the data (sigma(1) = 1
    for points in [-1, 1]^2, say) the true ``x_t = alpha(t) x_0 + sigma(t) eps`` is wider than that, and for
    one class it is centred on that class: ``matched`` starts from a Gaussian with the true x_t's mean
    ``alpha(t) E[x_0 | c]`` and variance ``sigma(t)^2 + alpha(t)^2 Var(x_0 | c)`` per coordinate, per class
    (``labels`` gives each point's class); ``global`` does the same with the statistics of all data.
    """
    choose("prior", kind, PRIORS)
    at = torch.tensor(t, dtype=torch.float64)
    s1, a1 = float(schedule.sigma(at)), float(schedule.alpha(at))
    K = num_classes + 1 if num_classes else 1
    if kind == "sigma":
        return torch.zeros(K, *x0.shape[1:]), torch.full((K, *x0.shape[1:]), s1)
    x = x0.double()
    groups = [x] * K
    if kind == "matched" and num_classes:
        groups = [x[labels == c] for c in range(num_classes)] + [x]
    for c, g in enumerate(groups):
        if g.shape[0] < 2:
            raise ConfigError(
                f"class {c} has {g.shape[0]} training points, too few for its matched prior; "
                f"use more points or the prior 'global'"
            )
    mean = torch.stack([a1 * g.mean(0) for g in groups]).float()
    std = torch.stack([(s1**2 + a1**2 * g.var(0)).sqrt() for g in groups]).float()
    return mean, std


def prior_rows(
    mean: Tensor, std: Tensor, labels: Tensor | None = None, device: torch.device | str | None = None
) -> dict[str, Tensor]:
    """``prior_mean``/``prior_std`` keyword arguments from a :func:`data_prior`: one row per label (no labels,
    or the null label, give the all-data row; a prior without classes has one row for all)."""
    rows = labels.long().cpu() if labels is not None else torch.tensor([mean.shape[0] - 1])
    if mean.shape[0] == 1:
        rows = torch.zeros_like(rows)
    return {"prior_mean": mean[rows].to(device), "prior_std": std[rows].to(device)}


def euler_sample(eps_fn: EpsFn, schedule: Schedule, **kw) -> SampleResult:
    """:func:`sample` with the probability-flow Euler sampler (the lab's "DDIM")."""
    return sample(eps_fn, schedule, "euler", **kw)


def heun_sample(eps_fn: EpsFn, schedule: Schedule, **kw) -> SampleResult:
    return sample(eps_fn, schedule, "heun", **kw)


def sde_sample(eps_fn: EpsFn, schedule: Schedule, **kw) -> SampleResult:
    return sample(eps_fn, schedule, "euler-maruyama", **kw)


def ddpm_sample(eps_fn: EpsFn, schedule: Schedule, **kw) -> SampleResult:
    return sample(eps_fn, schedule, "ddpm", **kw)


def ddim_sample(eps_fn: EpsFn, schedule: Schedule, eta: float = 0.0, **kw) -> SampleResult:
    return sample(eps_fn, schedule, "ddim", eta=eta, **kw)


def invert(
    eps_fn: EpsFn,
    schedule: Schedule,
    x0: Tensor,
    *,
    steps: int = 1000,
    method: str = "heun",
    grid: str = "uniform",
    rho: float = 7.0,
    t_start: float = 1.0,
    t_end: float = 0.0,
    prior_std: float | Tensor | None = None,
    prior_mean: Tensor | None = None,
    return_trajectory: bool = False,
    progress: bool = False,
) -> SampleResult:
    """ODE inversion: integrate the probability-flow ODE from data ``x0`` (at ``t_end``) up to ``t_start``.

    Returns a :class:`SampleResult` whose ``x`` is the *noise* ``z = (x_1 - prior_mean) / prior_std``: passing
    it back as ``sample(..., noise=z, sampler=method, steps=steps, grid=grid, prior_std=prior_std,
    prior_mean=prior_mean)`` retraces the same
    path down to ``x0``
    (up to the discretisation error, which shrinks with ``steps``). The trajectory (if asked) runs from the
    data up to the noise. ``t_end`` is at least ``schedule.t_min`` (VP: 1/T, where sigma > 0), so pass
    ``t_end=schedule.t_min`` to :func:`sample` to retrace a VP inversion.
    """
    if method not in ("euler", "heun"):
        raise ConfigError(f"unknown inversion method {method!r}; choose one of: euler, heun")
    t_end = max(t_end, getattr(schedule, "t_min", 0.0))
    times = time_grid(schedule, steps, grid, t_start=t_start, t_end=t_end, rho=rho).flip(0)
    res = run_steps(
        eps_fn, schedule, make_sampler(method), x0, times, return_trajectory=return_trajectory, progress=progress
    )
    mean, std = prior_params(schedule, res.x, prior_std, prior_mean, t_start)
    res.x = (res.x - mean) / std
    return res
