"""The printed checks of Chapter 3, "Metastability", lie in the range the theory allows (small sizes)."""

import math

import numpy as np
import pytest
import torch

from nnips import attention, circle, clusters, equiangular, flow, landscape, metastability, rates


def test_timescales_plateaus_of_glpr_figure_4_and_a_much_later_collapse():
    t = flow.log_times(0.1, 1e10, 120)
    counts = metastability.cluster_counts([4.0, 9.0], n=32, d=2, seeds=16, t=t, seed=0)
    window = (t >= 18) & (t <= 30)
    for b, expected in ((0, 2), (1, 3)):
        assert torch.bincount(counts[window, b].flatten()).argmax().item() == expected  # GLPR Fig. 4
    collapse = [clusters.plateau(t, counts[:, b], 2)[1].median().item() for b in (0, 1)]
    assert collapse[1] > 1e3 * collapse[0]
    for beta, T in zip((4.0, 9.0), collapse):
        assert 0 < math.log(T) / beta <= 2  # log T / beta ~ 1 - cos g for the last two clusters


def test_escape_rate_between_the_theorem_and_the_cap_geometry():
    angle, eps = math.pi / 3, 0.002
    betas = torch.arange(10.0, 27.0, 4.0, dtype=torch.float64)
    t = flow.log_times(0.1, 1e12, 300)
    exit_time, merge_time, alpha = metastability.escape_times(betas, 8, angle, eps, 4, t, seed=0)
    r = math.acos(1 - eps)
    for times in (exit_time, merge_time):
        slope = rates.exponential(betas, (betas[:, None] * times).log().mean(1).exp()).slope
        assert 1 - alpha < slope < 1 - math.cos(angle + 2 * r)
        assert abs(slope - (1 - math.cos(angle))) < 0.06
    assert (exit_time / (eps / 16 * torch.exp((1 - alpha) * betas))[:, None]).min() >= 1


def test_staircase_levels_jumps_and_strict_saddles():
    beta0 = 2000.0
    theta0 = 0.5 * torch.tensor([0.0, 0.5, 2.0, 4.0, 7.0], dtype=torch.float64) * math.log(beta0) / math.sqrt(beta0)
    limit = circle.staircase_limit(theta0)
    assert np.allclose(limit.levels, [0.2, 0.28, 0.44, 0.52, 1.0])
    betas = torch.tensor([1000.0, 2000.0, 4000.0], dtype=torch.float64)
    s = torch.linspace(0, 1.15 * limit.jumps[-1], 801, dtype=torch.float64)
    energy = metastability.staircase(circle.points(theta0), betas, s)
    edges = np.concatenate([[0.0], limit.jumps])
    for k in (2, 3):
        mid = np.abs(s.numpy() - (edges[k] + edges[k + 1]) / 2).argmin()
        assert (energy[mid] - limit.levels[k]).abs().max() < 1e-3
    assert torch.allclose(energy[-1], torch.ones(3, dtype=torch.float64), atol=1e-3)
    ma, mb = 0.6, 0.4
    crossing = np.array([np.interp(limit.levels[3] + ma * mb, e.numpy(), s.numpy()) for e in energy.T])
    assert -0.65 < rates.power_law(betas, limit.jumps[-1] - crossing).slope < -0.4
    mids = torch.tensor((edges[:-1] + edges[1:]) / 2, dtype=torch.float64)
    states = metastability.staircase(circle.points(theta0), [4000.0], torch.cat([torch.zeros(1, dtype=torch.float64),
                                                                                 mids]), states=True)[1:, 0]
    usa = attention.RescaledUSA(4000.0)
    for k, x in enumerate(states):
        y, m = clusters.atoms(x, 1e-12)
        up = torch.linalg.eigvalsh(landscape.riemannian_hessian(lambda z: usa.energy(z, weights=m, diagonal=False), y,
                                                                weights=5 * m)).max().item()
        down = torch.linalg.eigvalsh(landscape.riemannian_hessian(usa.energy, x)).min().item()
        assert up > 0
        if k >= 1:  # a cluster of s >= 2 tokens: curvature -s / n^2 when it is split
            assert down == pytest.approx(-(5 * m).max().item() / 25, abs=1e-3)


def test_cluster_number_exponent_near_one_half_and_growth_rates():
    n, beta = 256, 16.0
    base = 2 * math.pi * torch.arange(n, dtype=torch.float64) / n
    modes = [2, 4, 6]
    x0 = circle.points(torch.stack([base + 1e-4 * torch.cos(k * base) for k in modes]))
    t = torch.linspace(0, 2, 5, dtype=torch.float64)
    theta = circle.angles(flow.integrate_adaptive(attention.SelfAttention(beta), x0, t, rtol=1e-10, atol=1e-12))
    for i, k in enumerate(modes):
        amplitude = torch.exp(1j * k * theta[:, i]).mean(-1).abs()
        assert rates.exponential(t[1:], amplitude[1:]).slope == pytest.approx(circle.growth_rates(beta, k), rel=1e-4)
    betas = [8.0, 16.0, 32.0, 64.0, 128.0]
    t = flow.log_times(1.0, 100.0, 30)
    counts = metastability.cluster_counts(betas, n=160, d=2, seeds=2, t=t, seed=1, rtol=1e-5, atol=1e-7)
    first = torch.tensor([[next(v for v, _, _ in clusters.plateaus(t[1:], c[1:], min_ratio=2.0) if v < 80)
                           for c in counts[:, b].T] for b in range(len(betas))], dtype=torch.float64)
    assert 0.35 < rates.power_law(betas, first.mean(1)).slope < 0.65
    ratio = first.mean(1) / torch.tensor([circle.fastest_mode(b) for b in betas])
    assert ((ratio > 0.5) & (ratio < 1.3)).all()


def test_noisy_kuramoto_order_parameter_and_long_context_limits():
    kappas = torch.tensor([1.0, 4.0, 10.0], dtype=torch.float64)
    n = 1000
    theta0 = 0.3 * torch.randn(3, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = torch.linspace(0, 80, 161, dtype=torch.float64)
    r = circle.langevin(theta0, 0.0, kappas, t, dt=0.02, seed=1, observe=circle.order_parameter)[t >= 40].mean(0)
    fluctuation = math.sqrt(math.pi / (2 * n * (2 - 1.0)))
    assert 0.6 * fluctuation < r[0].item() < 1.5 * fluctuation
    for kappa, measured in zip(kappas[1:].tolist(), r[1:].tolist()):
        assert abs(measured - circle.kuramoto_order(kappa)) < 0.02
    large = np.geomspace(1e4, 1e12, 9)
    for gamma, exponent in ((1.0, -1.0), (2.0, -1.0), (3.0, -0.5)):
        limit = equiangular.long_context_limit(gamma, 0.5)
        gap = [abs(equiangular.one_layer_cosine(int(m), gamma, 0.5) - limit) for m in large]
        assert rates.power_law(large, gap).slope == pytest.approx(exponent, abs=0.02)
