"""2D diffusion: a small MLP learns to predict the noise ``eps`` in ``x_t = alpha(t) x_0 + sigma(t) eps`` (VE:
``alpha = 1``, ``sigma(t) = exp(5 (t - 1))``), and the schedules and samplers of :mod:`genlab.diffusion` turn it
back into points. Three runs cover the lab (``genlab diffusion2d train --preset NAME``): ``square``, unconditional
uniform points in [-1, 1]^2 (forward trajectory, loss, 3x3 seed grid, steps sweep, samplers and schedules,
same-noise determinism, the ELBO beside the exact ODE log-density, and the noise that the ODE sampler turns into
(4, 5.5)); ``grid``, conditional on the 3 x 3 cell (9 classes, classifier-free guidance: data by class, one
trajectory per class, class-coloured samples, ELBO with the right and a wrong class); and ``spiral``, the lab
session's discrete DDPM (linear betas, T = 1000, sinusoidal time embedding: the forward process at several t, the
reverse process p_theta(x_0) against q(x_0), x_{t-1} beside x0_hat).

Verbs: ``train | sample | figures | elbo | invert``.
"""

from __future__ import annotations

from functools import partial

from genlab.labs import LabSpec
from genlab.labs.diffusion2d import cli, figures  # noqa: F401  (importing figures registers them)
from genlab.labs.diffusion2d.config import LAB, PRESETS, Diffusion2DConfig
from genlab.labs.diffusion2d.core import demo
from genlab.runs import Run


def key_metrics(runs: list[Run]) -> list[dict]:
    """Headline numbers for the report's front table, against the issue's targets."""
    rows = []
    for run in runs:
        s, name, found = run.read_summary(), run.path.name, []
        if "distance_ratio" in s:
            found.append(("sample distance / noise floor", s["distance_ratio"], "<= 2" if name == "square" else ""))
        if "in_region" in s:
            found.append(("samples in their class's cell", s["in_region"], ">= 0.90"))
        elif "in_support" in s:
            found.append(
                ("samples inside the square", s["in_support"], ">= 0.97")
                if name == "square"
                else ("samples on the data", s["in_support"], "")
            )
        if "elbo_le_ode_within_se_all" in s:
            found.append(
                (
                    "ELBO <= ODE log p + se at the reference points",
                    "yes" if s["elbo_le_ode_within_se_all"] else "no",
                    "yes",
                )
            )
        if "elbo_right_class" in s:
            found.append(
                (
                    "ELBO at (-0.66, 0.66), class 2 vs 6",
                    f"{s['elbo_right_class']:.3g} vs {s['elbo_wrong_class']:.3g}",
                    "right class higher",
                )
            )
        rows += [{"metric": f"{name}: {m}", "value": v, "reference": r} for m, v, r in found]
    return rows


SPEC = LabSpec(
    name=LAB,
    title="2D diffusion: VE-SDE sampling, conditional models, likelihoods, DDPM spiral",
    order=1,
    Config=Diffusion2DConfig,
    presets=PRESETS,
    register=partial(cli.register, description=__doc__),
    demo=demo,
    key_metrics=key_metrics,
    story=__doc__,
)
