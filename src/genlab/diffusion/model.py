"""A trained noise-prediction network ready to use: the network, its schedule and the Gaussian start fitted to its
data (:func:`~genlab.diffusion.samplers.data_prior`), with sampling, likelihoods and ODE inversion on top.

::

    dm = DiffusionModel(net, schedule, *data_prior(schedule, x, y, net.num_classes), guidance=2.0)
    dm.sample(1000, labels=torch.full((1000,), 3)).x   # class 3, each sample started from class 3's Gaussian
    dm.likelihoods(points, labels).rows()                # ELBO beside the exact ODE log-density
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genlab.diffusion.guidance import model_eps_fn
from genlab.diffusion.likelihood import LikelihoodComparison, compare_likelihoods
from genlab.diffusion.samplers import SampleResult, invert, prior_rows, sample
from genlab.diffusion.schedules import Schedule

Tensor = torch.Tensor


@dataclass
class DiffusionModel:
    """``model(x, t[, labels]) -> eps_hat`` (with ``num_classes`` and ``null_label`` when conditional), its
    schedule, and the rows of its fitted start: ``prior_mean``/``prior_std`` of shape (K, ...), row c for class c
    and the last row for all data (one row without classes). ``sampler``, ``steps`` and ``guidance`` are the
    defaults of :meth:`sample`."""

    model: nn.Module
    schedule: Schedule
    prior_mean: Tensor
    prior_std: Tensor
    device: torch.device = torch.device("cpu")
    sampler: str = "euler"
    steps: int = 1000
    guidance: float = 1.0

    @property
    def classes(self) -> int:
        return getattr(self.model, "num_classes", 0)

    def prior(self, labels: Tensor | None = None) -> dict[str, Tensor]:
        """The samplers' and likelihoods' ``prior_mean``/``prior_std`` for ``labels`` (None: all data)."""
        return prior_rows(self.prior_mean, self.prior_std, labels, self.device)

    def eps_fn(self, labels: Tensor | None = None, guidance: float | None = None):
        """The samplers' ``eps_fn`` for ``labels`` with classifier-free guidance (default: :attr:`guidance`)."""
        return model_eps_fn(self.model, labels, guidance=self.guidance if guidance is None else guidance)

    def sample(
        self,
        n: int,
        *,
        seed: int = 0,
        sampler: str | None = None,
        steps: int | None = None,
        grid: str = "uniform",
        labels: Tensor | None = None,
        guidance: float | None = None,
        eta: float = 0.0,
        noise: Tensor | None = None,
        trajectory: bool = False,
    ) -> SampleResult:
        """``n`` samples from ``noise`` (default: drawn with ``seed``, whose generator also drives stochastic
        samplers). A conditional model samples ``labels`` (default: balanced over the classes), each from its
        class's Gaussian; with guidance 0 the label is ignored, so the start is the all-data Gaussian too."""
        g = torch.Generator().manual_seed(seed)
        if noise is None:
            noise = torch.randn(n, *self.prior_mean.shape[1:], generator=g)
        if self.classes and labels is None:
            labels = torch.arange(noise.shape[0]) % self.classes
        eps_fn = self.eps_fn(labels.to(self.device) if labels is not None else None, guidance)
        if (self.guidance if guidance is None else guidance) == 0:
            labels = None
        return sample(
            eps_fn,
            self.schedule,
            sampler or self.sampler,
            noise=noise.to(self.device),
            steps=steps or self.steps,
            grid=grid,
            eta=eta,
            generator=g,
            return_trajectory=trajectory,
            **self.prior(labels),
        )

    def class_paths(
        self, z: Tensor, *, sampler: str = "euler", steps: int | None = None
    ) -> tuple[SampleResult, SampleResult]:
        """One trajectory per class from the same noise ``z`` (one row per class): ``(shared, own)``, started from
        the all-data Gaussian (the label alone steers each path) and from each class's own Gaussian (as
        :meth:`sample` does)."""
        labels = torch.arange(self.classes)
        fn, steps = self.eps_fn(labels.to(self.device)), steps or self.steps
        shared, own = (
            sample(fn, self.schedule, sampler, noise=z, steps=steps, return_trajectory=True, **self.prior(lab))
            for lab in (None, labels)
        )
        return shared, own

    def likelihoods(
        self, x: Tensor, labels: Tensor | None = None, *, n_mc: int = 1000, ode_steps: int = 100, seed: int = 0
    ) -> LikelihoodComparison:
        """ELBO and exact ODE log-density of the points ``x`` (scored with ``labels``), without guidance: the
        likelihoods of the trained model itself (:func:`~genlab.diffusion.likelihood.compare_likelihoods`)."""
        fn = model_eps_fn(self.model)
        return compare_likelihoods(
            fn, self.schedule, x, cond=labels, n_mc=n_mc, ode_steps=ode_steps, seed=seed, **self.prior(labels)
        )

    def round_trip(
        self, x0: Tensor, labels: Tensor | None = None, *, steps: int = 1000, method: str = "heun"
    ) -> tuple[SampleResult, SampleResult]:
        """``(inverted, back)``: the noise that the ODE sampler ``method`` carries to ``x0`` (``inverted.x``, by
        :func:`~genlab.diffusion.samplers.invert`), and that noise sampled back (``back.x`` is ``x0`` up to the
        discretisation error), both with their trajectories."""
        fn, prior = self.eps_fn(labels), self.prior(labels)
        inv = invert(fn, self.schedule, x0, steps=steps, method=method, return_trajectory=True, **prior)
        t_end = self.schedule.t_min
        back = sample(fn, self.schedule, method, noise=inv.x, steps=steps, t_end=t_end, return_trajectory=True, **prior)
        return inv, back
