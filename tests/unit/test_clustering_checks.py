"""The printed checks of Chapter 2 ("Clustering"), recomputed with the pages' parameters and held to
the range the theory allows. Each test names the page and the check it guards."""

import math

import pytest
import torch

from nnips import attention, clusters, equiangular, flow, phase, rates, sphere


def test_one_cluster_every_start_merges_for_small_beta():
    """one-cluster.md: d = 3, beta <= 2, 16 tokens, 64 starts: all collapsed by T = 200 (Theorem 6.1)."""
    betas = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    x0 = sphere.uniform(16, 3, batch=64, seed=2).expand(3, 64, 16, 3)
    diameters = flow.integrate(attention.SelfAttention(betas[:, None]), x0, [0.0, 200.0], method="layer",
                               dt=0.1, observe=clusters.diameter)
    assert bool((diameters[-1] < 1e-2).all())


def test_one_cluster_beta0_mean_grows_to_one():
    """one-cluster.md: at beta = 0, |mean token| is non-decreasing and tends to 1 (Theorem 4.1)."""
    xs = flow.integrate(attention.SelfAttention(0.0), sphere.uniform(32, 3, seed=0),
                        torch.linspace(0, 10, 101, dtype=torch.float64), method="rk4", dt=0.05)
    m = xs.mean(dim=-2).norm(dim=-1)
    assert bool((m[1:] >= m[:-1] - 1e-12).all()) and m[-1].item() > 1 - 1e-4


def test_cone_collapse_monotone_and_rate_beats_the_bound():
    """cone-collapse.md: min_i <x_i, w> non-decreasing; measured rate (2) >= 1/(2 n e^{2 beta}) (Lemma 6.4)."""
    n, w = 32, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    betas = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=torch.float64)
    x0 = sphere.hemisphere(n, 3, w=w, seed=0).expand(4, n, 3)
    t = torch.linspace(0, 20, 201, dtype=torch.float64)
    xs = flow.integrate(attention.SelfAttention(betas), x0, t, method="rk4", dt=0.02)
    r = clusters.min_inner_product(xs, w)
    assert (r[1:] - r[:-1]).min().item() > -1e-9
    x_star = sphere.normalize(xs[-1].mean(dim=-2, keepdim=True))
    gap = 1 - (xs * x_star).sum(dim=-1).amin(dim=-1)
    window = (t >= 5) & (t <= 12)
    for k, b in enumerate(betas.tolist()):
        rate = -rates.exponential(t[window], gap[window, k]).slope
        assert rate > 1 / (2 * n * math.exp(2 * b))
        assert rate == pytest.approx(2.0, abs=0.02)  # linearisation at a single cluster


@pytest.mark.parametrize("n_points,dim", [(4, 3), (6, 3), (10, 5)])
def test_wendel_monte_carlo_within_three_and_a_half_standard_errors(n_points, dim):
    """cone-collapse.md: Monte Carlo hemisphere probability against Wendel's formula (Theorem 6.7)."""
    samples = 200
    x = sphere.uniform(n_points, dim, batch=samples, seed=10 * n_points + dim)
    estimate = sphere.in_open_hemisphere(x).double().mean().item()
    exact = sphere.wendel_probability(n_points, dim)
    se = max(math.sqrt(exact * (1 - exact) / samples), 1 / samples)
    assert abs(estimate - exact) <= 3.5 * se


@pytest.mark.parametrize("normalized", [True, False])
def test_equiangular_particles_follow_gamma(normalized):
    """equiangular.md: orthonormal start, |<x_i, x_j> - gamma_beta(t)| to integrator accuracy (Theorem 6.8)."""
    n = 16
    t = torch.linspace(0, 8, 81, dtype=torch.float64)
    xs = flow.integrate(attention.SelfAttention(1.0, normalized=normalized), sphere.orthonormal(n, n, seed=0), t,
                        method="rk4", dt=0.005)
    off = ~torch.eye(n, dtype=torch.bool)
    error = ((xs @ xs.mT)[:, off] - equiangular.gamma(t, 1.0, n, normalized=normalized)[:, None]).abs().max()
    assert error.item() < 1e-9


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0])
def test_equiangular_rate_near_one(normalized, beta):
    """equiangular.md: fitted rate of 1 - gamma_beta: 2 (SA), 2 e^beta (USA)."""
    t_a = equiangular.hitting_time(1 - 1e-4, beta, 16, normalized=normalized)
    t_b = equiangular.hitting_time(1 - 1e-10, beta, 16, normalized=normalized)
    window = torch.linspace(t_a, t_b, 40, dtype=torch.float64)
    g = equiangular.gamma(torch.cat([torch.zeros(1, dtype=torch.float64), window]), beta, 16,
                          normalized=normalized)[1:]
    fitted = -rates.exponential(window, 1 - g).slope
    assert fitted == pytest.approx(equiangular.rate(beta, normalized), rel=1e-3)


def test_high_dimension_exponent_is_minus_one_half():
    """equiangular.md: max deviation from gamma_beta(t) decays like d^(-1/2) up to a log (Theorem 6.9)."""
    n, beta = 16, 1.0
    times = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    g = equiangular.gamma(times, beta, n)
    off = ~torch.eye(n, dtype=torch.bool)
    dims = [64, 256, 1024, 4096]
    deviation = []
    for d in dims:
        xs = flow.integrate(attention.SelfAttention(beta), sphere.uniform(n, d, batch=8, seed=d), times, dt=0.1)
        deviation.append(((xs @ xs.mT)[..., off] - g[:, None, None]).abs().amax(dim=-1).mean(dim=-1))
    deviation = torch.stack(deviation)
    for k in (1, 2, 3):
        assert -0.62 < rates.power_law(dims, deviation[:, k]).slope < -0.42


def test_phase_diagram_sharpens_with_dimension():
    """phase-diagrams.md: agreement of the phase with the side of the curve grows with d (Theorem 6.9)."""
    betas = torch.linspace(0.1, 9.0, 20, dtype=torch.float64)
    t = torch.linspace(0, 30, 61, dtype=torch.float64)
    curve = phase.transition_curve(betas, 32)
    predicted = t[:, None] >= curve[None, :]
    agree, unsure = {}, {}
    for d in (2, 32):
        p = phase.diagram(d, betas, t, n=32, seeds=24, seed=0)
        agree[d] = ((p >= 0.5) == predicted).double().mean().item()
        unsure[d] = ((p > 0.05) & (p < 0.95)).double().mean().item()
    assert agree[32] > agree[2] and agree[32] > 0.95
    assert unsure[32] < unsure[2]
