"""Noise schedules: how much signal and noise the forward process holds at time ``t`` in [0, 1].

Every schedule here describes the same Gaussian forward process

    x_t = alpha(t) * x_0 + sigma(t) * eps,        eps ~ N(0, I),

and gives ``alpha(t)``, ``sigma(t)`` and their exact time derivatives. Variance-exploding (VE) schedules keep
``alpha = 1`` and let ``sigma`` grow (the 2D lab: ``sigma(t) = exp(5 (t - 1))``); variance-preserving (VP,
DDPM)
schedules shrink the signal so that ``alpha^2 + sigma^2 = 1``. The samplers and the likelihood only ever ask a
schedule for these four numbers (plus the derived SNR and SDE drift/diffusion), so any sampler runs with any
schedule and the tensors ``x`` may have any shape ``(B, ...)``.

From ``alpha`` and ``sigma`` follow the SDE coefficients of the forward process ``dx = f(t) x dt + g(t) dW``:

    f(t)   = alpha'(t) / alpha(t)
    g(t)^2 = d sigma^2 / dt - 2 f(t) sigma^2 = 2 sigma sigma' - 2 f sigma^2

For VE, ``f = 0`` and ``g^2 = d sigma^2/dt``; for VP, ``g^2 = beta(t)``, the continuous DDPM beta.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from genlab.errors import ConfigError, choose

Tensor = torch.Tensor


def _as_tensor(t: Tensor | float) -> Tensor:
    return t if isinstance(t, torch.Tensor) else torch.tensor(float(t), dtype=torch.float64)


class Schedule:
    """Base class: subclasses define ``sigma``, ``dsigma`` and, when the signal is scaled, ``alpha``,
    ``dalpha``.

    ``t`` may be a float or a tensor of any shape; the result has the shape (and dtype) of ``t``.
    """

    name = "schedule"
    kind = "ve"  # "ve" (alpha = 1) or "vp" (alpha^2 + sigma^2 = 1)
    t_min = 0.0  # the smallest time a network may be asked about (sigma > 0 there)

    # --- the four primitives
    def sigma(self, t: Tensor | float) -> Tensor:
        raise NotImplementedError

    def dsigma(self, t: Tensor | float) -> Tensor:
        """d sigma / dt, written out by hand (the tests compare it with autograd)."""
        raise NotImplementedError

    def alpha(self, t: Tensor | float) -> Tensor:
        t = _as_tensor(t)
        return torch.ones_like(t)

    def dalpha(self, t: Tensor | float) -> Tensor:
        t = _as_tensor(t)
        return torch.zeros_like(t)

    # --- derived quantities
    def snr(self, t: Tensor | float) -> Tensor:
        """Signal-to-noise ratio alpha^2 / sigma^2 (the lab's ``1 / sigma^2`` for VE)."""
        return self.alpha(t) ** 2 / self.sigma(t) ** 2

    def noise_level(self, t: Tensor | float) -> Tensor:
        """sigma / alpha: the VE-equivalent noise level (the EDM time grid is spaced in it)."""
        return self.sigma(t) / self.alpha(t)

    def drift(self, t: Tensor | float) -> Tensor:
        """f(t) = alpha' / alpha of the forward SDE ``dx = f x dt + g dW``."""
        return self.dalpha(t) / self.alpha(t)

    def diffusion2(self, t: Tensor | float) -> Tensor:
        """g(t)^2 = 2 sigma sigma' - 2 f sigma^2 of the forward SDE."""
        s = self.sigma(t)
        return 2 * s * self.dsigma(t) - 2 * self.drift(t) * s**2

    def t_of_noise_level(self, level: Tensor) -> Tensor:
        """Inverse of :meth:`noise_level` (bisection; subclasses override with a formula where one exists)."""
        level = _as_tensor(level).to(torch.float64)
        lo = torch.zeros_like(level)
        hi = torch.ones_like(level)
        for _ in range(60):
            mid = (lo + hi) / 2
            up = self.noise_level(mid).to(torch.float64) < level
            lo = torch.where(up, mid, lo)
            hi = torch.where(up, hi, mid)
        return (lo + hi) / 2

    def perturb(self, x0: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """x_t = alpha(t) x_0 + sigma(t) eps, with ``t`` of shape (B,) broadcast over ``x0`` of shape (B,
        ...)."""
        shape = (-1,) + (1,) * (x0.dim() - 1)
        a = self.alpha(t).to(x0.dtype).reshape(shape)
        s = self.sigma(t).to(x0.dtype).reshape(shape)
        return a * x0 + s * eps

    def describe(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


# ---------------------------------------------------------------------------------------- variance exploding


class VEExpSchedule(Schedule):
    """sigma(t) = exp(k (t - 1)): the lab's default (k = 5), from sigma(0) = e^-k to sigma(1) = 1."""

    def __init__(self, k: float = 5.0):
        if k <= 0:
            raise ConfigError(f"bad schedule rate k={k}; it must be > 0")
        self.k = float(k)
        self.name = f"exp({self.k:g}(t-1))"

    def sigma(self, t):
        return torch.exp(self.k * (_as_tensor(t) - 1))

    def dsigma(self, t):
        return self.k * self.sigma(t)

    def t_of_noise_level(self, level):
        return 1 + torch.log(_as_tensor(level)) / self.k


class VEPolySchedule(Schedule):
    """sigma(t) = t^2 + eps (the lab's alternative schedule; eps = 1e-4 keeps sigma(0) > 0)."""

    def __init__(self, eps: float = 1e-4):
        self.eps = float(eps)
        self.name = f"t^2+{self.eps:g}"

    def sigma(self, t):
        t = _as_tensor(t)
        return t**2 + self.eps

    def dsigma(self, t):
        return 2 * _as_tensor(t)

    def t_of_noise_level(self, level):
        return torch.sqrt(torch.clamp(_as_tensor(level) - self.eps, min=0.0))


class VEGeometricSchedule(Schedule):
    """sigma(t) = sigma_min (sigma_max / sigma_min)^t (Song et al.'s VE SDE)."""

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 2.0):
        if not 0 < sigma_min < sigma_max:
            raise ConfigError(f"bad sigma range {sigma_min}..{sigma_max}; need 0 < sigma_min < sigma_max")
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.log_ratio = math.log(self.sigma_max / self.sigma_min)
        self.name = f"geometric({self.sigma_min:g}..{self.sigma_max:g})"

    def sigma(self, t):
        return self.sigma_min * torch.exp(self.log_ratio * _as_tensor(t))

    def dsigma(self, t):
        return self.log_ratio * self.sigma(t)

    def t_of_noise_level(self, level):
        return torch.log(_as_tensor(level) / self.sigma_min) / self.log_ratio


# --------------------------------------------------------------------------------------- variance preserving


class DiscreteVPSchedule(Schedule):
    """A DDPM schedule of ``T`` discrete betas, read in continuous time ``t = n / T``.

    ``alphas_cumprod[n] = prod_{i<=n} (1 - beta_i)`` is the DDPM alpha-bar at step ``n`` (``alphas_cumprod[0]
    = 1`` is the clean data). Between the knots ``t = n / T``, ``log alpha-bar`` is linear in ``t``, so

        alpha(t) = exp(L(t) / 2),   sigma(t) = sqrt(1 - exp(L(t))),   L(t) = log alpha-bar(t)

    hits the discrete DDPM values exactly at every step and has a simple derivative in between
    (``L'`` is the slope of the segment, ``-T log(1 - beta_n)``, i.e. about ``T beta_n``).
    """

    kind = "vp"

    def __init__(self, betas: Tensor, name: str):
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.dim() != 1 or len(betas) < 1 or not ((betas > 0) & (betas < 1)).all():
            raise ConfigError("betas must be a non-empty 1D sequence of values in (0, 1)")
        self.T = len(betas)
        self.betas = betas
        self.alphas_cumprod = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])
        self.log_abar = torch.log(self.alphas_cumprod)
        self.t_min = 1.0 / self.T
        self.name = name

    def _segment(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """(L(t), L'(t)) with L linear between the knots n / T."""
        t = _as_tensor(t)
        log_abar = self.log_abar.to(t.device)
        pos = torch.clamp(t.to(torch.float64), 0.0, 1.0) * self.T
        n = torch.clamp(torch.floor(pos), max=self.T - 1).long()
        slope = (log_abar[n + 1] - log_abar[n]) * self.T
        value = log_abar[n] + (pos - n) * slope / self.T
        return value.to(t.dtype), slope.to(t.dtype)

    def log_alpha_bar(self, t):
        return self._segment(t)[0]

    def alpha(self, t):
        return torch.exp(self.log_alpha_bar(t) / 2)

    def dalpha(self, t):
        value, slope = self._segment(t)
        return torch.exp(value / 2) * slope / 2

    def sigma(self, t):
        return torch.sqrt(-torch.expm1(self.log_alpha_bar(t)))

    def dsigma(self, t):
        value, slope = self._segment(t)
        return -torch.exp(value) * slope / (2 * torch.sqrt(-torch.expm1(value)))

    def t_of_step(self, n: int | Tensor) -> Tensor:
        """The continuous time of DDPM step ``n`` (0 = data, T = pure noise)."""
        return _as_tensor(n).to(torch.float64) / self.T


class VPLinearSchedule(DiscreteVPSchedule):
    """DDPM's linear betas from ``beta_start`` to ``beta_end`` over ``T`` steps (Ho et al.: 1e-4..0.02,
    T=1000)."""

    def __init__(self, beta_start: float = 1e-4, beta_end: float = 0.02, T: int = 1000):
        if T < 1:
            raise ConfigError(f"bad number of diffusion steps T={T}; it must be >= 1")
        betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
        super().__init__(betas, f"linear beta {beta_start:g}..{beta_end:g}, T={T}")


class VPCosineSchedule(DiscreteVPSchedule):
    """Nichol & Dhariwal's cosine alpha-bar, ``cos^2((n/T + s) / (1 + s) * pi/2)``, betas clipped at 0.999."""

    def __init__(self, T: int = 1000, s: float = 0.008):
        if T < 1:
            raise ConfigError(f"bad number of diffusion steps T={T}; it must be >= 1")
        n = torch.arange(T + 1, dtype=torch.float64)
        f = torch.cos((n / T + s) / (1 + s) * math.pi / 2) ** 2
        abar = f / f[0]
        betas = torch.clamp(1 - abar[1:] / abar[:-1], 1e-8, 0.999)
        super().__init__(betas, f"cosine, T={T}")


# ------------------------------------------------------------------------------------------------ by name

SCHEDULES = ("ve-exp", "ve-poly", "ve-geometric", "vp-linear", "vp-cosine")


def forward_path(
    schedule: Schedule, x0: Tensor, steps: int = 1000, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """One sample path of the forward process from ``x0`` (one point, any shape): ``(times, path)`` with
    ``steps + 1`` rows, float64. It is a Brownian path in "variance time" (independent increments with
    variance d(sigma^2)) scaled by alpha(t): exactly the forward SDE for VE schedules, and a path with the
    right marginal mean for the others."""
    times = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    var = (schedule.sigma(times) ** 2 - schedule.sigma(times[0]) ** 2).clamp(min=0)
    shape = (-1,) + (1,) * x0.dim()
    inc = torch.randn(steps, *x0.shape, generator=generator, dtype=torch.float64)
    inc = inc * torch.sqrt(var.diff()).reshape(shape)
    base = schedule.sigma(times[0]) * torch.randn(*x0.shape, generator=generator, dtype=torch.float64)
    walk = base + torch.cat([torch.zeros(1, *x0.shape, dtype=torch.float64), inc.cumsum(0)])
    return times, schedule.alpha(times).reshape(shape) * (x0.double() + walk)


def forward_snapshots(
    schedule: Schedule, x0: Tensor, times: Sequence[float], generator: torch.Generator | None = None
) -> list[Tensor]:
    """Draws of ``x_t ~ q(x_t | x_0) = N(alpha(t) x_0, sigma(t)^2 I)`` of every point of ``x0`` (B, ...) at each
    time of ``times``, with fresh noise for each time drawn in order from ``generator``; ``t = 0`` is ``x0``
    itself (no draw)."""
    n = x0.shape[0]
    return [
        schedule.perturb(x0, torch.full((n,), t), torch.randn(x0.shape, generator=generator)) if t else x0
        for t in times
    ]


def make_schedule(
    name: str,
    *,
    k: float = 5.0,
    eps: float = 1e-4,
    sigma_min: float = 0.01,
    sigma_max: float = 2.0,
    T: int = 1000,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
) -> Schedule:
    """A schedule by name (one of :data:`SCHEDULES`) with its parameters."""
    choose("schedule", name, SCHEDULES)
    if name == "ve-exp":
        return VEExpSchedule(k)
    if name == "ve-poly":
        return VEPolySchedule(eps)
    if name == "ve-geometric":
        return VEGeometricSchedule(sigma_min, sigma_max)
    if name == "vp-linear":
        return VPLinearSchedule(beta_start, beta_end, T)
    return VPCosineSchedule(T)
