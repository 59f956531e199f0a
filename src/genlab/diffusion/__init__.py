"""Diffusion maths shared by the 2D and image labs: schedules, samplers, priors, likelihood, guidance, the
sample-quality protocol, and a trained model bundled with its schedule and prior (:class:`DiffusionModel`).

Everything here works on tensors of any shape ``(B, ...)`` and sees the network only as
``eps_fn(x, t) -> eps_hat``::

    from genlab.diffusion import VEExpSchedule, euler_sample, model_eps_fn
    out = euler_sample(model_eps_fn(model), VEExpSchedule(5.0), shape=(1000, 2), steps=1000)
    out.x  # (1000, 2) samples
"""

from genlab.diffusion.guidance import drop_labels, model_eps_fn
from genlab.diffusion.likelihood import (
    ElboResult,
    LikelihoodComparison,
    LogLikResult,
    compare_likelihoods,
    elbo,
    likelihood_checks,
    ode_log_likelihood,
)
from genlab.diffusion.metrics import energy_distance, energy_vs_floor, mmd_rbf, toy2d_quality
from genlab.diffusion.model import DiffusionModel
from genlab.diffusion.samplers import (
    DDIM,
    GRIDS,
    PRIORS,
    SAMPLERS,
    DDPMAncestral,
    EulerMaruyama,
    EulerODE,
    HeunODE,
    Sampler,
    SampleResult,
    data_prior,
    ddim_sample,
    ddpm_sample,
    draw,
    euler_sample,
    heun_sample,
    invert,
    make_sampler,
    ode_velocity,
    prior_params,
    prior_rows,
    run_steps,
    sample,
    sde_sample,
    time_grid,
    x0_from_eps,
)
from genlab.diffusion.schedules import (
    SCHEDULES,
    DiscreteVPSchedule,
    Schedule,
    VEExpSchedule,
    VEGeometricSchedule,
    VEPolySchedule,
    VPCosineSchedule,
    VPLinearSchedule,
    forward_path,
    forward_snapshots,
    make_schedule,
)


def diffusion_loss(eps_fn, schedule: Schedule, x0, t=None, eps=None, generator=None):
    """The training loss: mean squared error between the true noise and the predicted one.

    ``t ~ U(t_min, 1)`` and ``eps ~ N(0, I)`` are drawn when not given; ``x_t = alpha(t) x0 + sigma(t) eps``.
    """
    if t is None:
        t_min = getattr(schedule, "t_min", 0.0)
        t = t_min + (1 - t_min) * draw("uniform", (x0.shape[0],), generator=generator, device=x0.device)
    if eps is None:
        eps = draw("normal", x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    xt = schedule.perturb(x0, t, eps)
    return ((eps_fn(xt, t.to(x0.dtype)) - eps) ** 2).mean()


def diffusion_step(schedule: Schedule, label_dropout: float = 0.0, null_label: int | None = None):
    """A training step for :func:`genlab.train.fit`: ``step(net, (x0, labels or None)) -> {"loss": ...}``;
    with labels, each is dropped to ``null_label`` with probability ``label_dropout`` (for guidance)."""

    def step(net, batch):
        x0, labels = batch
        if labels is None:
            return {"loss": diffusion_loss(net, schedule, x0)}
        labels = drop_labels(labels, label_dropout, null_label)
        return {"loss": diffusion_loss(lambda z, t: net(z, t, labels), schedule, x0)}

    return step


def diffusion_batches(x0, labels=None, batch_size: int | None = None):
    """``batches(step)`` for :func:`genlab.train.fit` with :func:`diffusion_step`: ``(x0, labels)``, the whole set
    when ``batch_size`` covers it (or is None), else ``batch_size`` rows drawn with replacement from torch's
    global generator (whose state ``fit`` checkpoints, so a resumed run draws the same rows)."""
    import torch

    n = x0.shape[0]

    def batches(step: int):
        if batch_size is None or batch_size >= n:
            return x0, labels
        idx = torch.randint(0, n, (batch_size,), device=x0.device)
        return x0[idx], (labels[idx] if labels is not None else None)

    return batches


__all__ = [
    "DDIM",
    "GRIDS",
    "PRIORS",
    "SAMPLERS",
    "SCHEDULES",
    "DDPMAncestral",
    "DiffusionModel",
    "DiscreteVPSchedule",
    "ElboResult",
    "EulerMaruyama",
    "EulerODE",
    "HeunODE",
    "LikelihoodComparison",
    "LogLikResult",
    "SampleResult",
    "Sampler",
    "Schedule",
    "VEExpSchedule",
    "VEGeometricSchedule",
    "VEPolySchedule",
    "VPCosineSchedule",
    "VPLinearSchedule",
    "compare_likelihoods",
    "data_prior",
    "draw",
    "ddim_sample",
    "ddpm_sample",
    "diffusion_batches",
    "diffusion_loss",
    "diffusion_step",
    "drop_labels",
    "elbo",
    "energy_distance",
    "energy_vs_floor",
    "euler_sample",
    "heun_sample",
    "invert",
    "likelihood_checks",
    "make_sampler",
    "make_schedule",
    "mmd_rbf",
    "model_eps_fn",
    "forward_path",
    "forward_snapshots",
    "ode_log_likelihood",
    "ode_velocity",
    "prior_params",
    "prior_rows",
    "run_steps",
    "sample",
    "sde_sample",
    "time_grid",
    "toy2d_quality",
    "x0_from_eps",
]
