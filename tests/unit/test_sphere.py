import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from nnips import sphere

dims = st.integers(min_value=2, max_value=12)
counts = st.integers(min_value=1, max_value=12)
seeds = st.integers(min_value=0, max_value=2**31 - 1)


@settings(max_examples=30, deadline=None)
@given(n=counts, d=dims, seed=seeds)
def test_uniform_points_are_unit_vectors(n, d, seed):
    x = sphere.uniform(n, d, batch=2, seed=seed)
    assert x.shape == (2, n, d) and x.dtype == torch.float64
    torch.testing.assert_close(x.norm(dim=-1), torch.ones(2, n, dtype=torch.float64))


def test_uniform_is_reproducible_and_seed_dependent():
    assert torch.equal(sphere.uniform(5, 3, seed=1), sphere.uniform(5, 3, seed=1))
    assert not torch.equal(sphere.uniform(5, 3, seed=1), sphere.uniform(5, 3, seed=2))


def test_uniform_mean_is_zero_and_covariance_isotropic():
    x = sphere.uniform(200_000, 3, seed=0)
    assert x.mean(0).abs().max() < 5e-3  # std of each mean is 1/sqrt(3 * 2e5) ~ 1.3e-3
    torch.testing.assert_close(x.T @ x / len(x), torch.eye(3, dtype=torch.float64) / 3, atol=5e-3, rtol=0)


@settings(max_examples=20, deadline=None)
@given(n=counts, d=dims, seed=seeds)
def test_hemisphere_points_are_on_the_right_side(n, d, seed):
    w = torch.zeros(d, dtype=torch.float64)
    w[0] = 1.0
    x = sphere.hemisphere(n, d, w=w, seed=seed)
    assert bool((x @ w > 0).all())
    torch.testing.assert_close(x.norm(dim=-1), torch.ones(n, dtype=torch.float64))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 6), extra=st.integers(0, 4), seed=st.one_of(st.none(), seeds))
def test_orthonormal_frames(n, extra, seed):
    d = max(n + extra, 2)
    x = sphere.orthonormal(n, d, seed=seed)
    torch.testing.assert_close(x @ x.T, torch.eye(n, dtype=torch.float64))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 8), rho=st.floats(-0.1, 0.95))
def test_equiangular_gram_matrix(n, rho):
    if rho <= -1 / (n - 1):
        return
    x = sphere.equiangular(n, n + 1, rho)
    expected = (1 - rho) * torch.eye(n, dtype=torch.float64) + rho
    torch.testing.assert_close(x @ x.T, expected)


def test_projection_is_tangent_and_idempotent():
    x = sphere.uniform(10, 4, seed=0)
    v = torch.randn(10, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    p = sphere.project(x, v)
    assert (p * x).sum(-1).abs().max() < 1e-14
    torch.testing.assert_close(sphere.project(x, p), p)


@pytest.mark.parametrize("n,d", [(3, 2), (5, 2), (5, 3), (6, 3), (8, 4), (4, 4)])
def test_wendel_formula_matches_monte_carlo(n, d):
    trials = 400
    x = sphere.uniform(n, d, batch=trials, seed=n * 10 + d)
    p_hat = sphere.in_open_hemisphere(x).double().mean().item()
    p = sphere.wendel_probability(n, d)
    # Five binomial standard deviations: fails by chance with probability < 1e-6.
    assert abs(p_hat - p) <= 5 * math.sqrt(p * (1 - p) / trials) + 1e-12


def test_wendel_closed_values():
    assert sphere.wendel_probability(3, 2) == 0.75
    assert sphere.wendel_probability(4, 4) == 1.0
    assert sphere.wendel_probability(2, 2) == 1.0


def test_hemisphere_test_on_explicit_configurations():
    inside = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    antipodal = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    assert sphere.in_open_hemisphere(inside).item()
    assert not sphere.in_open_hemisphere(antipodal).item()
