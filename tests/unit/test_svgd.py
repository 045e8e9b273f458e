"""SVGD against exact answers on Gaussian targets, the kernel Stein discrepancy against the Stein
operator, its kinship with attention, and the convergence check of the SVGD page."""

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from nnips import attention, sphere, svgd, wasserstein

seeds = st.integers(min_value=0, max_value=2**31 - 1)


def gaussian_score(mean, std):
    return lambda x: -(x - mean) / std**2


def test_one_particle_is_gradient_ascent_on_log_p():
    x = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    score = gaussian_score(torch.tensor([0.5, 0.5], dtype=torch.float64), 2.0)
    torch.testing.assert_close(svgd.run(x, score, steps=1, step_size=0.1, h=1.0), x + 0.1 * score(x))


@settings(max_examples=25, deadline=None)
@given(m=st.floats(-3, 3), std=st.floats(0.3, 3.0), h=st.floats(0.2, 5.0))
def test_two_particles_stop_at_the_exact_fixed_point(m, std, h):
    """Particles m +- a are at rest iff exp(-4a^2/h)(1 + 4 std^2/h) = 1 (target N(m, std^2), fixed h)."""
    a = math.sqrt(h / 4 * math.log(1 + 4 * std**2 / h))
    x = torch.tensor([[m - a], [m + a]], dtype=torch.float64)
    phi = svgd.direction(x, gaussian_score(m, std), h=h)
    assert phi.abs().max() < 1e-12 * max(1.0, abs(m) / std**2 + 1 / std**2)


def test_two_particles_converge_to_the_fixed_point():
    x = torch.tensor([[0.1], [0.3]], dtype=torch.float64)
    x = svgd.run(x, gaussian_score(0.0, 1.0), steps=3000, step_size=0.1, h=1.0)
    a = 0.5 * math.sqrt(math.log(5))  # a^2 = (h/4) log(1 + 4/h) with h = 1
    assert x.sort(0).values[:, 0].tolist() == pytest.approx([-a, a], abs=1e-9)


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 10), seed=seeds)
def test_a_symmetric_configuration_keeps_its_mean_at_the_centre(n, seed):
    """With a symmetric target and x -> -x symmetric particles, the mean stays exactly at 0."""
    half = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = svgd.run(torch.cat([half, -half]), gaussian_score(0.0, 1.5), steps=20, step_size=0.05)
    assert x.mean(0).abs().max() < 1e-12


def test_many_particles_recover_the_mean_and_covariance_of_a_gaussian():
    mean = torch.tensor([1.0, -1.0], dtype=torch.float64)
    x0 = torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = svgd.run(x0, gaussian_score(mean, 1.0), steps=1000, step_size=0.1)
    assert (x.mean(0) - mean).abs().max() < 0.02
    assert (torch.cov(x.T) - torch.eye(2, dtype=torch.float64)).abs().max() < 0.15


@pytest.mark.parametrize("seed", [0, 1])
def test_ksd_is_the_stein_operator_applied_to_the_svgd_direction(seed):
    """KSD^2 = (1/n) sum_i [s(x_i) . phi(x_i) + div phi(x_i)], with phi built on the particles."""
    target = svgd.GaussianMixture(torch.tensor([[-1.0, 0.0], [1.5, 1.0]]), torch.tensor([0.6, 0.9]))
    x = torch.randn(15, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    h = 0.8
    s = target.score(x)

    def phi(y):  # the direction at arbitrary points y, particles x fixed
        k = svgd.kernel(x, y, h)                                           # (n, m)
        return (k.T @ s + (2 / h) * (k.sum(0)[:, None] * y - k.T @ x)) / x.shape[0]

    y = x.clone().requires_grad_(True)
    out = phi(y)
    div = sum(torch.autograd.grad(out[:, l].sum(), y, retain_graph=True)[0][:, l] for l in range(2))
    stein = ((s * phi(x)).sum(-1) + div.detach()).mean()
    assert svgd.ksd(x, target.score, h).item() ** 2 == pytest.approx(stein.item(), rel=1e-10)
    torch.testing.assert_close(phi(x), svgd.direction(x, target.score, h))


def test_mixture_score_is_the_gradient_of_the_log_density_and_samples_have_its_moments():
    target = svgd.GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 1.0]]), torch.tensor([0.5, 1.0]),
                                  torch.tensor([0.25, 0.75]))
    x = torch.randn(9, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64).requires_grad_(True)
    (grad,) = torch.autograd.grad(target.log_density(x).sum(), x)
    torch.testing.assert_close(target.score(x.detach()), grad)
    sample = target.sample(40_000, seed=1)
    assert (sample.mean(0) - torch.tensor([1.0, 0.75], dtype=torch.float64)).abs().max() < 0.03


def test_svgd_repulsion_on_the_sphere_is_minus_usa():
    """With k(x,y) = exp(-beta |x-y|^2 / 2) (h = 2/beta), the projected repulsion is -beta e^{-beta} USA."""
    beta = 1.7
    x = sphere.uniform(10, 3, seed=0)
    repulsion = svgd.direction(x, lambda y: torch.zeros_like(y), h=2 / beta)
    usa = attention.SelfAttention(beta, normalized=False)(x)
    torch.testing.assert_close(sphere.project(x, repulsion), -beta * math.exp(-beta) * usa)


def test_svgd_page_check_particles_beat_independent_samples():
    """Page "SVGD": W_2 to the target decreases and ends below that of i.i.d. samples of the same size."""
    target = svgd.GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.0]]), torch.tensor([0.7, 0.7, 0.5]))
    reference = target.sample(1000, seed=1)
    x0 = torch.randn(100, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    xs = svgd.run(x0, target.score, steps=600, step_size=0.1, every=100)
    w2 = [wasserstein.w2(x, reference) for x in xs]
    assert all(b <= a + 1e-3 for a, b in zip(w2[:-1], w2[1:])) and w2[-1] < 0.5 * w2[0]
    iid = [wasserstein.w2(target.sample(100, seed=s), reference) for s in range(2, 12)]
    assert w2[-1] < sum(iid) / len(iid)
    k = svgd.ksd(xs, target.score)
    assert k[-1] < 0.1 * k[0]


@pytest.mark.parametrize("call,error,match", [
    (lambda: svgd.direction(torch.ones(3), lambda x: x), ValueError, r"shape \(\.\.\., n, d\)"),
    (lambda: svgd.direction(torch.ones(3, 2), lambda x: x[:, :1]), ValueError, "score"),
    (lambda: svgd.direction(torch.ones(3, 2), lambda x: x, h=0.0), ValueError, "h must be > 0"),
    (lambda: svgd.direction(torch.ones(3, 2), lambda x: x * math.nan), FloatingPointError, "non-finite"),
    (lambda: svgd.median_bandwidth(torch.ones(1, 2)), ValueError, "n >= 2"),
    (lambda: svgd.run(torch.ones(3, 2), lambda x: x, steps=-1, step_size=0.1), ValueError, "steps"),
    (lambda: svgd.run(torch.ones(3, 2), lambda x: x, steps=1, step_size=0.0), ValueError, "step_size"),
    (lambda: svgd.run(torch.ones(3, 2), lambda x: x, steps=1, step_size=0.1, every=0), ValueError, "every"),
    (lambda: svgd.GaussianMixture(torch.ones(2, 2), torch.ones(3)), ValueError, "means must be"),
    (lambda: svgd.GaussianMixture(torch.ones(2, 2), torch.ones(2), torch.ones(2)), ValueError, "weights"),
    (lambda: svgd.GaussianMixture(torch.ones(2, 2), torch.ones(2)).score(torch.ones(3, 3)), ValueError, "d = 2"),
    (lambda: svgd.GaussianMixture(torch.ones(2, 2), torch.ones(2)).sample(0), ValueError, "n must be"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
