"""The shared diffusion core: schedules, samplers, likelihoods, guidance (tiny, analytic models only)."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.data.toy2d import make_toy2d, plane_points
from genlab.diffusion import (
    SAMPLERS,
    SCHEDULES,
    DiffusionModel,
    VEExpSchedule,
    VPLinearSchedule,
    compare_likelihoods,
    data_prior,
    diffusion_batches,
    diffusion_step,
    drop_labels,
    elbo,
    energy_distance,
    energy_vs_floor,
    forward_path,
    forward_snapshots,
    invert,
    likelihood_checks,
    make_sampler,
    make_schedule,
    mmd_rbf,
    model_eps_fn,
    ode_log_likelihood,
    prior_rows,
    sample,
    time_grid,
    toy2d_quality,
)
from genlab.errors import ConfigError

ALL = [make_schedule(n) for n in SCHEDULES] + [VEExpSchedule(2.0), make_schedule("vp-linear", T=50)]


def gaussian_eps(schedule, sd: float):
    """The exact noise predictor for data ~ N(0, sd^2 I).

    E[eps | x_t] = sigma x_t / (alpha^2 sd^2 + sigma^2).
    """

    def eps_fn(x, t, cond=None):
        shape = (-1,) + (1,) * (x.dim() - 1)
        a, s = schedule.alpha(t).reshape(shape), schedule.sigma(t).reshape(shape)
        return s * x / (a**2 * sd**2 + s**2)

    return eps_fn


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: s.describe())
def test_schedule_derivatives_match_autograd(schedule):
    t = torch.tensor([0.013, 0.21, 0.5, 0.777, 0.96], dtype=torch.float64, requires_grad=True)
    for value, deriv in ((schedule.sigma, schedule.dsigma), (schedule.alpha, schedule.dalpha)):
        out = value(t)
        if not out.requires_grad:  # a constant (alpha = 1 for VE): its derivative must be 0
            assert torch.equal(deriv(t.detach()), torch.zeros_like(t))
            continue
        (g,) = torch.autograd.grad(out.sum(), t)
        assert torch.allclose(deriv(t.detach()), g, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: s.describe())
def test_noise_level_inverse(schedule):
    t = torch.tensor([0.1, 0.4, 0.9], dtype=torch.float64)
    assert torch.allclose(schedule.t_of_noise_level(schedule.noise_level(t)), t, atol=1e-6)


def test_vp_schedule_hits_ddpm_alpha_bar_and_variance_preserving():
    s = VPLinearSchedule(1e-4, 0.02, 1000)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    n = torch.tensor([1, 37, 500, 1000])
    assert torch.allclose(s.alpha(n.double() / 1000) ** 2, abar[n - 1], rtol=1e-10)
    t = torch.rand(20, dtype=torch.float64)
    assert torch.allclose(s.alpha(t) ** 2 + s.sigma(t) ** 2, torch.ones(20, dtype=torch.float64))
    # g^2 of the VP SDE is the continuous beta, about T * beta_n
    assert float(s.diffusion2(torch.tensor(0.9995))) == pytest.approx(1000 * 0.02, rel=0.02)


def test_ve_exp_schedule_is_the_labs():
    s = VEExpSchedule(5.0)
    assert float(s.sigma(torch.tensor(1.0))) == pytest.approx(1.0)
    assert float(s.sigma(torch.tensor(0.0))) == pytest.approx(math.exp(-5))
    assert float(s.drift(torch.tensor(0.3))) == 0.0


def test_time_grids():
    s = VEExpSchedule()
    u = time_grid(s, 10)
    assert (
        len(u) == 11 and u[0] == 1 and u[-1] == 0 and torch.allclose(u.diff(), torch.full((10,), -0.1, dtype=u.dtype))
    )
    e = time_grid(s, 10, "edm")
    assert e[0] == 1 and e[-1] == 0 and (e.diff() < 0).all()
    levels = s.noise_level(e[:-1]) ** (1 / 7)
    assert torch.allclose(levels.diff(), levels.diff()[0].expand(9), atol=1e-6)  # even in level^(1/rho)


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_steps_is_one_line_error(bad):
    with pytest.raises(ConfigError, match="steps"):
        time_grid(VEExpSchedule(), bad)


def test_unknown_names_are_one_line_errors():
    with pytest.raises(ConfigError, match="unknown sampler 'heum'; choose one of: euler, heun"):
        make_sampler("heum")
    with pytest.raises(ConfigError, match="unknown schedule"):
        make_schedule("cosine")
    with pytest.raises(ConfigError, match="time grid"):
        time_grid(VEExpSchedule(), 5, "log")


@pytest.mark.parametrize("sched_name", ["ve-exp", "vp-linear"])
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_samplers_recover_a_gaussian_of_any_shape(sampler, sched_name):
    """With the exact eps of N(0, sd^2), every sampler ends with about the right spread, any shape."""
    sd = 0.5
    sch = make_schedule(sched_name)
    g = torch.Generator().manual_seed(0)
    steps = 200
    res = sample(gaussian_eps(sch, sd), sch, sampler, shape=(1500, 2, 3, 3), steps=steps, generator=g, eta=0.5)
    assert res.x.shape == (1500, 2, 3, 3)
    # the model's prior is N(0, sigma(1)^2): the ODE maps it to sd_end = sigma(1) * sqrt(var_0 / var_1)
    a1, s1 = float(sch.alpha(torch.tensor(1.0))), float(sch.sigma(torch.tensor(1.0)))
    var1 = a1**2 * sd**2 + s1**2
    ode_sd = s1 * math.sqrt(sd**2 / var1)  # = sd for VP, where var_1 = 1 = sigma(1)^2
    bounds = {"euler": (ode_sd, ode_sd), "heun": (ode_sd, ode_sd), "ddim": (ode_sd, sd)}
    lo, hi = bounds.get(sampler, (sd, sd))
    assert 0.94 * lo <= float(res.x.std()) <= 1.06 * hi


def test_deterministic_sampler_repeats_and_stochastic_differs():
    sch = VEExpSchedule()
    fn = gaussian_eps(sch, 0.5)
    z = torch.randn(1, 2).repeat(5, 1)
    a = sample(fn, sch, "euler", noise=z, steps=50).x
    assert torch.equal(a, a[:1].expand_as(a))
    b = sample(fn, sch, "euler-maruyama", noise=z, steps=50, generator=torch.Generator().manual_seed(1)).x
    assert (b - b[0]).abs().max() > 1e-2


def test_ddpm_equals_ddim_eta_one():
    sch = VPLinearSchedule(T=100)
    fn = gaussian_eps(sch, 0.7)
    z = torch.randn(64, 2, generator=torch.Generator().manual_seed(3))
    a = sample(fn, sch, "ddpm", noise=z, steps=100, generator=torch.Generator().manual_seed(5)).x
    b = sample(fn, sch, "ddim", eta=1.0, noise=z, steps=100, generator=torch.Generator().manual_seed(5)).x
    assert torch.allclose(a, b, atol=1e-5)


def test_trajectories_have_every_step():
    sch = VEExpSchedule()
    res = sample(gaussian_eps(sch, 0.5), sch, "heun", shape=(7, 2), steps=12, return_trajectory=True)
    assert res.xs.shape == (13, 7, 2) and res.x0s.shape == (12, 7, 2) and len(res.times) == 13
    assert torch.equal(res.xs[-1], res.x)


@pytest.mark.parametrize("sched_name", ["ve-exp", "vp-cosine"])
def test_ode_inversion_round_trip(sched_name):
    sch = make_schedule(sched_name)
    fn = gaussian_eps(sch, 0.6)
    x0 = torch.tensor([[4.0, 5.5], [0.1, -0.3]], dtype=torch.float64)
    inv = invert(fn, sch, x0, steps=200)
    back = sample(fn, sch, "heun", noise=inv.x, steps=200, t_end=float(sch.t_min))
    assert torch.allclose(back.x, x0, atol=1e-3)


def test_ode_log_likelihood_matches_the_gaussian_flow_and_bounds_the_elbo():
    sd = 0.5
    sch = VEExpSchedule()
    fn = gaussian_eps(sch, sd)
    x = torch.tensor([[0.0, 0.0], [0.4, -0.2], [1.5, 1.0]], dtype=torch.float64)
    ll = ode_log_likelihood(fn, sch, x, steps=100)
    var0, var1 = sd**2 + math.exp(-10), sd**2 + 1.0
    model_var = var0 / var1  # the flow maps N(0, sigma(1)^2 = 1) to N(0, var0 / var1)
    exact = -0.5 * (x**2).sum(1) / model_var - math.log(2 * math.pi * model_var)
    assert torch.allclose(ll.logp, exact, atol=2e-3)
    hutch = torch.stack(
        [
            ode_log_likelihood(
                fn, sch, x, steps=20, trace="hutchinson", generator=torch.Generator().manual_seed(i)
            ).logp
            for i in range(8)
        ]
    )
    assert torch.allclose(hutch.mean(0), ode_log_likelihood(fn, sch, x, steps=20).logp, atol=0.3)
    e = elbo(fn, sch, x, n_mc=400, generator=torch.Generator().manual_seed(0))
    assert (e.stderr > 0).all()
    assert (e.elbo <= ll.logp + 3 * e.stderr).all()
    assert e.elbo[0] > e.elbo[2]  # the typical point beats the far one


def shifted_gaussian_eps(schedule, means: torch.Tensor, sd: float):
    """The exact noise predictor for class-conditional data ~ N(means[c], sd^2 I), given the class c."""

    def eps_fn(x, t, cond):
        shape = (-1,) + (1,) * (x.dim() - 1)
        a, s = schedule.alpha(t).reshape(shape), schedule.sigma(t).reshape(shape)
        return s * (x - a * means[cond]) / (a**2 * sd**2 + s**2)

    return eps_fn


def test_a_per_class_prior_makes_the_ode_density_exact():
    """With the exact score of N(m_c, sd^2), the flow started from the true x_1 law N(a1 m_c, s1^2 + a1^2 sd^2)
    of each class gives the true log-density, and the ELBO stays below it; the lab's N(0, sigma(1)^2) start
    does not."""
    sd = 0.2
    sch = VEExpSchedule()
    means = torch.tensor([[0.7, -0.7], [-0.5, 0.2]], dtype=torch.float64)
    fn = shifted_gaussian_eps(sch, means, sd)
    x = torch.tensor([[0.65, -0.6], [-0.4, 0.3], [0.7, -0.7]], dtype=torch.float64)
    cond = torch.tensor([0, 1, 1])
    var0 = sd**2 + math.exp(-10)
    truth = -0.5 * ((x - means[cond]) ** 2).sum(1) / var0 - math.log(2 * math.pi * var0)
    prior = {"prior_mean": means[cond], "prior_std": torch.full((3, 2), math.sqrt(1 + sd**2), dtype=torch.float64)}
    ll = ode_log_likelihood(fn, sch, x, cond=cond, steps=100, **prior)
    assert torch.allclose(ll.logp, truth, atol=5e-3, rtol=2e-3)
    e = elbo(fn, sch, x, cond=cond, n_mc=400, generator=torch.Generator().manual_seed(0), **prior)
    assert (e.elbo <= ll.logp + 2 * e.stderr).all()
    plain = ode_log_likelihood(fn, sch, x, cond=cond, steps=100)
    assert (plain.logp - truth).abs().max() > 1  # the wrong start gives another density
    # sampling from the same prior lands in the class's Gaussian, and inversion gives back the noise
    z = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out = sample(lambda y, t: fn(y, t, cond), sch, "heun", noise=z, steps=200, **prior)
    assert ((out.x - means[cond]).norm(dim=1) < 4 * sd).all()
    inv = invert(lambda y, t: fn(y, t, cond), sch, out.x, steps=200, **prior)
    assert torch.allclose(inv.x, z, atol=1e-2)
    with pytest.raises(ConfigError, match="broadcast"):
        sample(fn, sch, "euler", noise=z, steps=1, prior_mean=torch.zeros(2, 2, dtype=torch.float64))


def test_elbo_is_vectorised_and_conditional():
    sch = VEExpSchedule()
    seen = []

    def fn(x, t, cond=None):
        seen.append(cond)
        return torch.zeros_like(x)

    x = torch.zeros(3, 2)
    e = elbo(fn, sch, x, cond=torch.tensor([0, 1, 2]), n_mc=8, chunk=10)
    assert e.elbo.shape == (3,) and len(seen) == 3  # 24 rows in chunks of 10
    assert seen[0].tolist() == [0] * 8 + [1, 1]
    with pytest.raises(ConfigError):
        elbo(fn, sch, x, n_mc=1)


def test_guidance_mixes_conditional_and_unconditional():
    class Toy(torch.nn.Module):
        null_label = 9

        def forward(self, x, t, y=None):
            y = torch.full((x.shape[0],), 9) if y is None else y
            return x * 0 + y[:, None].float()

    m = Toy()
    x, t, y = torch.zeros(4, 2), torch.full((4,), 0.5), torch.tensor([1, 2, 3, 4])
    assert torch.equal(model_eps_fn(m, y)(x, t), torch.tensor([1.0, 2, 3, 4])[:, None].expand(4, 2))
    guided = model_eps_fn(m, y, guidance=3.0)(x, t)  # 9 + 3 (y - 9)
    assert torch.allclose(guided[:, 0], 9 + 3 * (y.float() - 9))
    assert model_eps_fn(m, y, guidance=0.0)(x, t).eq(9).all()
    dropped = drop_labels(torch.zeros(10000, dtype=torch.long), 0.25, 9, torch.Generator().manual_seed(0))
    assert 0.22 < float((dropped == 9).float().mean()) < 0.28


def test_two_sample_distances():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g)
    c = torch.randn(500, 2, generator=g) + 1.0
    assert 0 <= energy_distance(a, b) < energy_distance(a, c)
    assert mmd_rbf(a, b) < mmd_rbf(a, c)


def test_prior_std_scales_the_start_and_enters_the_likelihoods():
    sch = VEExpSchedule()
    fn = gaussian_eps(sch, 0.5)
    z = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = sample(fn, sch, "euler", noise=z, steps=1, prior_std=2.0, return_trajectory=True)
    assert torch.allclose(a.xs[0], 2.0 * z)
    with pytest.raises(ConfigError, match="prior_std"):
        sample(fn, sch, "euler", noise=z, steps=1, prior_std=0.0)
    x = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    e1 = elbo(fn, sch, x, n_mc=4, generator=torch.Generator().manual_seed(0))
    e2 = elbo(fn, sch, x, n_mc=4, generator=torch.Generator().manual_seed(0), prior_std=1.5)
    # KL(N(x, 1) || N(0, p^2)) per coordinate: log p + (1 + x^2) / (2 p^2) - 1/2
    kl = sum(math.log(1.5) + (1 + v**2) / (2 * 1.5**2) - 0.5 for v in (0.3, -0.2))
    assert float(e2.prior[0]) == pytest.approx(kl, rel=1e-6)
    assert float(e1.prior[0]) == pytest.approx((0.09 + 0.04) / 2, rel=1e-6)
    inv = invert(fn, sch, x, steps=100, prior_std=1.5)
    back = sample(fn, sch, "heun", noise=inv.x, steps=100, prior_std=1.5)
    assert torch.allclose(back.x, x, atol=1e-4)


def test_energy_vs_floor_is_near_one_for_data_and_far_for_other_samples():
    def fresh(n, seed):
        return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))

    same = energy_vs_floor(fresh(400, 7), fresh)
    shifted = energy_vs_floor(fresh(400, 7) + 1.0, fresh)
    assert same["noise_floor"] == shifted["noise_floor"] > 0  # the floor depends on the data only
    assert same["distance_ratio"] < 3 < shifted["distance_ratio"]
    assert same["energy_distance"] / same["noise_floor"] == pytest.approx(same["distance_ratio"])
    assert energy_vs_floor(fresh(400, 7), fresh, repeats=2) != same  # means over `repeats` fresh sets


def test_data_prior_per_class_global_and_sigma():
    sch = VEExpSchedule()  # alpha = 1, sigma(1) = 1
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [12.0, 14.0]])
    y = torch.tensor([0, 0, 1, 1])
    mean, std = data_prior(sch, x, y, num_classes=2)
    assert mean.tolist() == [[1.0, 0.0], [11.0, 12.0], [6.0, 6.0]]
    assert std[0].tolist() == pytest.approx([math.sqrt(1 + 2), 1.0])  # sigma^2 + Var (unbiased)
    g_mean, g_std = data_prior(sch, x, y, num_classes=2, kind="global")
    assert torch.equal(g_mean, mean[2:].expand(3, 2)) and torch.equal(g_std, std[2:].expand(3, 2))
    s_mean, s_std = data_prior(sch, x, kind="sigma")
    assert s_mean.tolist() == [[0.0, 0.0]] and s_std.tolist() == [[1.0, 1.0]]
    with pytest.raises(ConfigError, match="class 1 has 1 training points"):
        data_prior(sch, x[:3], y[:3], num_classes=2)
    with pytest.raises(ConfigError, match="unknown prior 'wide'"):
        data_prior(sch, x, kind="wide")
    rows = prior_rows(mean, std, torch.tensor([1, 2, 0]))  # 2 is the null label: the all-data row
    assert torch.equal(rows["prior_mean"], mean[[1, 2, 0]]) and torch.equal(prior_rows(mean, std)["prior_std"], std[2:])
    one = prior_rows(*data_prior(sch, x), torch.tensor([3, 3]))  # no classes: one row for every label
    assert one["prior_mean"].shape == (2, 2) and torch.equal(one["prior_mean"][0], one["prior_mean"][1])


def test_forward_path_has_the_ve_marginal_variance():
    sch = VEExpSchedule()
    x0 = torch.tensor([1.4, -1.25])
    times, path = forward_path(sch, x0, 100, torch.Generator().manual_seed(0))
    assert times.shape == (101,) and path.shape == (101, 2) and path.dtype == torch.float64
    assert torch.allclose(path[0], x0.double(), atol=0.05)  # starts within sigma(0) = e^-5 of x_0
    ends = torch.stack([forward_path(sch, x0, 20, torch.Generator().manual_seed(s))[1][-1] for s in range(2000)])
    assert ends.mean(0).tolist() == pytest.approx(x0.tolist(), abs=0.1)
    assert ends.var(0).tolist() == pytest.approx([1.0, 1.0], rel=0.1)  # sigma(1)^2


def test_diffusion_step_drops_labels_for_guidance():
    torch.manual_seed(0)  # the loss below is a 128-draw mean of eps^2: seeded, so the check is not flaky
    sch, seen = VEExpSchedule(), []

    def net(x, t, y=None):
        seen.append(None if y is None else y.clone())
        return torch.zeros_like(x)

    x = torch.randn(64, 2)
    out = diffusion_step(sch)(net, (x, None))
    assert seen[-1] is None and out["loss"].item() == pytest.approx(1.0, rel=0.3)  # predicting 0: E[eps^2]
    diffusion_step(sch, 0.5, null_label=9)(net, (x, torch.zeros(64, dtype=torch.long)))
    assert 0 < int((seen[-1] == 9).sum()) < 64 and set(seen[-1].tolist()) == {0, 9}


def test_forward_snapshots_draw_in_order_and_keep_t0():
    sch, x0 = VEExpSchedule(), torch.rand(4000, 2) * 2 - 1
    snaps = forward_snapshots(sch, x0, [0.0, 0.5, 1.0], torch.Generator().manual_seed(3))
    assert snaps[0] is x0  # no draw at t = 0
    g = torch.Generator().manual_seed(3)
    first = sch.perturb(x0, torch.full((4000,), 0.5), torch.randn(x0.shape, generator=g))
    assert torch.equal(snaps[1], first)  # one fresh draw per time, in order
    assert float((snaps[2] - x0).std()) == pytest.approx(1.0, rel=0.05)  # sigma(1) = 1


def test_compare_likelihoods_rows_agreement_and_checks():
    sch = VEExpSchedule()
    fn = gaussian_eps(sch, 0.5)
    x = torch.tensor([[0.0, 0.0], [0.4, -0.2], [3.0, 3.0]], dtype=torch.float64)
    cmp = compare_likelihoods(fn, sch, x, n_mc=64, ode_steps=20, seed=0)
    e = elbo(fn, sch, x, n_mc=64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(cmp.elbo.elbo, e.elbo) and torch.equal(
        cmp.ode.logp, ode_log_likelihood(fn, sch, x, steps=20).logp
    )
    rows = cmp.rows()
    assert [set(r) for r in rows] == [{"elbo", "stderr", "ode_logp", "z", "elbo_le_ode_plus_se"}] * 3
    assert rows[1]["z"] == round(float(cmp.gap[1] / e.stderr[1]), 2)
    inside = torch.tensor([True, True, False])
    agree = cmp.agreement(inside)
    assert agree["gap_mean"] == pytest.approx(float(cmp.gap[:2].mean()))
    assert 0 <= agree["share_over_se"] <= 1 and agree["gap_sd"] >= 0
    checks = likelihood_checks(rows, inside.tolist())
    assert checks["elbo_in_min"] == min(r["elbo"] for r in rows[:2]) and checks["elbo_out_max"] == rows[2]["elbo"]
    assert checks["elbo_in_gt_out"] and checks["elbo_le_ode_within_se_all"] == all(
        r["elbo_le_ode_plus_se"] for r in rows
    )


class ShiftedGaussians(torch.nn.Module):
    """The exact noise predictor of class-conditional data N(means[y], sd^2 I); no label or the null label (K)
    predicts as if the data were N(0, sd^2 I)."""

    def __init__(self, schedule, means: torch.Tensor, sd: float):
        super().__init__()
        self.schedule, self.sd = schedule, sd
        self.means = torch.cat([means, torch.zeros(1, means.shape[1], dtype=means.dtype)])
        self.num_classes, self.null_label = means.shape[0], means.shape[0]

    def forward(self, x, t, y=None):
        a, s = self.schedule.alpha(t)[:, None], self.schedule.sigma(t)[:, None]
        m = self.means[y] if y is not None else 0.0
        return s * (x - a * m) / (a**2 * self.sd**2 + s**2)


def test_diffusion_model_samples_classes_from_their_priors_and_inverts():
    sch, sd = VEExpSchedule(), 0.1
    means = torch.tensor([[0.6, -0.6], [-0.6, 0.6], [0.6, 0.6]], dtype=torch.float64)
    prior_mean = torch.cat([means, torch.zeros(1, 2, dtype=torch.float64)])
    prior_std = torch.full((4, 2), math.sqrt(1 + sd**2), dtype=torch.float64)
    dm = DiffusionModel(ShiftedGaussians(sch, means, sd), sch, prior_mean, prior_std, sampler="heun", steps=100)
    assert dm.classes == 3 and dm.prior()["prior_mean"].tolist() == [[0.0, 0.0]]
    out = dm.sample(30, noise=torch.randn(30, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    labels = torch.arange(30) % 3  # balanced by default
    assert ((out.x - means[labels]).norm(dim=1) < 5 * sd).all()
    z = torch.randn(5, 2, dtype=torch.float64)
    free = dm.sample(5, noise=z, guidance=0.0)  # the label is ignored: the all-data start and eps
    direct = sample(lambda x, t: dm.model(x, t), sch, "heun", noise=z, steps=100, **dm.prior())
    assert torch.allclose(free.x, direct.x)
    x0 = torch.tensor([[0.5, -0.7]], dtype=torch.float64)
    inv, back = dm.round_trip(x0, torch.tensor([0]), steps=200)
    assert torch.allclose(back.x, x0, atol=1e-3) and back.xs.shape == (201, 1, 2)
    shared, own = dm.class_paths(z[:1].repeat(3, 1), steps=50)
    assert torch.equal(shared.xs[0, 0], shared.xs[0, 1]) and not torch.equal(own.xs[0, 0], own.xs[0, 1])
    assert ((own.x - means).norm(dim=1) < 5 * sd).all()
    rows = dm.likelihoods(x0, torch.tensor([0]), n_mc=16, ode_steps=20).rows()
    assert len(rows) == 1 and rows[0]["elbo"] < 10


def test_diffusion_batches_full_or_random_rows():
    x, y = torch.arange(10.0)[:, None], torch.arange(10)
    assert diffusion_batches(x, y, 10)(0) == (x, y) and diffusion_batches(x)(3)[1] is None
    bx, by = diffusion_batches(x, y, 4)(0)
    assert bx.shape == (4, 1) and torch.equal(bx[:, 0].long(), by)


def test_toy2d_quality_and_plane_points():
    fresh = make_toy2d("grid", 500, seed=99)
    q = toy2d_quality("grid", fresh.x, fresh.y, data_seed=0)
    assert q["in_support"] == 1.0 and q["in_region"] == 1.0 and q["distance_ratio"] < 3
    far = toy2d_quality("grid", fresh.x + 3)
    assert far["in_support"] == 0.0 and "in_region" not in far and far["distance_ratio"] > 10
    pts = plane_points(2.0, 5)
    assert pts.shape == (25, 2) and pts[:5, 1].tolist() == [-2.0] * 5 and pts[:5, 0].tolist() == [-2, -1, 0, 1, 2]


def test_noise_is_drawn_where_the_generator_lives(monkeypatch):
    """A seeded generator on one device with tensors on another (a CPU generator and CUDA/MPS tensors) must work:
    torch refuses to draw on a device other than the generator's. Here a stand-in generator says it lives on
    'cuda' while the tensors are on the CPU, and a strict torch.randn/rand enforces torch's rule."""
    import torch

    from genlab.diffusion import VPLinearSchedule, diffusion_loss, sample

    class Elsewhere:  # a generator that lives on another device than the tensors
        device = torch.device("cuda")

        def __init__(self):
            self.real = torch.Generator().manual_seed(0)

    real_randn, real_rand = torch.randn, torch.rand

    def strict(real):
        def fn(*shape, generator=None, device=None, **kw):
            if isinstance(generator, Elsewhere):
                if device is None or torch.device(device) != generator.device:
                    raise RuntimeError("Expected a 'cuda' device type for generator")
                return real(*shape, generator=generator.real, **kw)  # stands in for the draw on that device
            return real(*shape, generator=generator, device=device, **kw)

        return fn

    monkeypatch.setattr(torch, "randn", strict(real_randn))
    monkeypatch.setattr(torch, "rand", strict(real_rand))
    sch = VPLinearSchedule(T=20)
    g = Elsewhere()
    for name in ("ddpm", "euler-maruyama", "ddim"):
        res = sample(
            lambda z, t: torch.zeros_like(z),
            sch,
            sampler=name,
            steps=5,
            shape=(4, 2),
            device="cpu",
            generator=g,
            eta=1.0,
        )
        assert res.x.shape == (4, 2) and torch.isfinite(res.x).all()
    loss = diffusion_loss(lambda z, t: torch.zeros_like(z), sch, torch.zeros(4, 2), generator=g)
    assert torch.isfinite(loss)


def test_samples_of_one_class_are_compared_with_that_class():
    """Fresh points of one grid cell, scored as samples drawn for that cell, sit at the noise floor; scored as if
    drawn for several classes (against all the data) they are far from it."""
    import torch

    from genlab.data.toy2d import make_toy2d
    from genlab.diffusion import toy2d_quality

    d = make_toy2d("grid", 9000, seed=99)
    x = d.x[d.y == 4][:500]
    one = toy2d_quality("grid", x, torch.full((500,), 4))
    mixed = toy2d_quality("grid", x, torch.arange(500) % 9)
    assert one["distance_ratio"] < 3 and mixed["distance_ratio"] > 20
