"""Diffusion maths shared by the 2D and image labs: schedules, samplers, likelihood, guidance.

Everything here works on tensors of any shape ``(B, ...)`` and sees the network only as
``eps_fn(x, t) -> eps_hat``::

    from genlab.diffusion import VEExpSchedule, euler_sample, model_eps_fn
    out = euler_sample(model_eps_fn(model), VEExpSchedule(5.0), shape=(1000, 2), steps=1000)
    out.x  # (1000, 2) samples
"""

from genlab.diffusion.guidance import drop_labels, model_eps_fn
from genlab.diffusion.likelihood import ElboResult, LogLikResult, elbo, ode_log_likelihood
from genlab.diffusion.metrics import energy_distance, mmd_rbf
from genlab.diffusion.samplers import (
    DDIM,
    GRIDS,
    SAMPLERS,
    DDPMAncestral,
    EulerMaruyama,
    EulerODE,
    HeunODE,
    Sampler,
    SampleResult,
    ddim_sample,
    ddpm_sample,
    euler_sample,
    heun_sample,
    invert,
    make_sampler,
    ode_velocity,
    prior_params,
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
    make_schedule,
)


def diffusion_loss(eps_fn, schedule: Schedule, x0, t=None, eps=None, generator=None):
    """The training loss: mean squared error between the true noise and the predicted one.

    ``t ~ U(t_min, 1)`` and ``eps ~ N(0, I)`` are drawn when not given; ``x_t = alpha(t) x0 + sigma(t) eps``.
    """
    import torch

    if t is None:
        t_min = getattr(schedule, "t_min", 0.0)
        t = t_min + (1 - t_min) * torch.rand(x0.shape[0], generator=generator, device=x0.device)
    if eps is None:
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    xt = schedule.perturb(x0, t, eps)
    return ((eps_fn(xt, t.to(x0.dtype)) - eps) ** 2).mean()


__all__ = [
    "DDIM", "GRIDS", "SAMPLERS", "SCHEDULES", "DDPMAncestral", "DiscreteVPSchedule", "ElboResult",
    "EulerMaruyama", "EulerODE", "HeunODE", "LogLikResult", "SampleResult", "Sampler", "Schedule",
    "VEExpSchedule", "VEGeometricSchedule", "VEPolySchedule", "VPCosineSchedule", "VPLinearSchedule",
    "ddim_sample", "ddpm_sample", "diffusion_loss", "drop_labels", "elbo", "energy_distance",
    "euler_sample", "heun_sample", "invert", "make_sampler", "make_schedule", "mmd_rbf", "model_eps_fn",
    "ode_log_likelihood", "ode_velocity", "prior_params", "run_steps", "sample", "sde_sample", "time_grid",
    "x0_from_eps",
]
