"""The unnormalised model in R^d and its rescaled tokens z = e^{-tV} x (nnips.rescaled, Chapter 2)."""

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st
from scipy.spatial import ConvexHull

from nnips import rates, rescaled

seeds = st.integers(min_value=0, max_value=2**31 - 1)


def uniform_box(n, d, seed, half_width=1.0):
    g = torch.Generator().manual_seed(seed)
    return half_width * (2 * torch.rand(n, d, generator=g, dtype=torch.float64) - 1)


def random_matrix(d, seed):
    return torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) / math.sqrt(d)


def test_beta_zero_has_an_exact_solution_and_rk4_has_order_four():
    """beta = 0: P = 1/n, so z_i - mean(z) = e^{-tV}(z_i(0) - mean(z(0))) and the mean is constant."""
    V = random_matrix(3, 0)
    field = rescaled.Rescaled(V, beta=0.0)
    z0 = uniform_box(5, 3, 1)
    T = 2.0
    mean = z0.mean(dim=0)
    exact = mean + (z0 - mean) @ torch.linalg.matrix_exp(-T * V).T
    errors = [(rescaled.integrate(field, z0, [0.0, T], dt=T / m)[-1] - exact).abs().max().item() for m in (10, 20, 40)]
    assert errors[-1] < 1e-7
    assert rates.power_law([10, 20, 40], errors).slope == pytest.approx(-4, abs=0.3)
    euler = [(rescaled.integrate(field, z0, [0.0, T], dt=T / m, method="euler")[-1] - exact).abs().max().item()
             for m in (100, 200, 400)]
    assert rates.power_law([100, 200, 400], euler).slope == pytest.approx(-1, abs=0.1)


@settings(max_examples=10, deadline=None)
@given(d=st.integers(1, 3), n=st.integers(1, 6), seed=seeds, beta=st.floats(0.0, 2.0))
def test_rescaling_matches_the_unnormalised_dynamics(d, n, seed, beta):
    """x(t) = e^{tV} z(t), with the same attention matrix (GLPR, arXiv 2312.10794, (9.1)-(9.3))."""
    V, Q, K = random_matrix(d, seed), random_matrix(d, seed + 1), random_matrix(d, seed + 2)
    field = rescaled.Rescaled(V, Q=Q, K=K, beta=beta)

    def unnormalised(t, x):
        return torch.softmax(beta * (x @ Q.T) @ (x @ K.T).mT, dim=-1) @ x @ V.T

    x0 = uniform_box(n, d, seed)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    xs = rescaled.integrate(unnormalised, x0, t, dt=0.005)
    zs = rescaled.integrate(field, x0, t, dt=0.005)
    for s, z, x in zip(t.tolist(), zs, xs):
        torch.testing.assert_close(field.to_x(s, z), x, rtol=1e-8, atol=1e-10)
        torch.testing.assert_close(field.from_x(s, x), z, rtol=1e-8, atol=1e-10)
        torch.testing.assert_close(field.attention_matrix(s, z), torch.softmax(beta * (x @ Q.T) @ (x @ K.T).T, -1),
                                   rtol=1e-7, atol=1e-9)


@settings(max_examples=10, deadline=None)
@given(seed=seeds, n=st.integers(4, 12))
def test_polytope_case_shrinks_the_hull_and_leaders_are_initial_vertices(seed, n):
    """V = I: each z_i moves into the hull of the others; the hull area never grows (Theorem 3.1 mechanism)."""
    field = rescaled.Rescaled(torch.eye(2, dtype=torch.float64))
    z0 = uniform_box(n, 2, seed, half_width=5.0)
    zs = rescaled.integrate(field, z0, torch.linspace(0, 6, 13, dtype=torch.float64), dt=0.01)
    areas = torch.tensor([ConvexHull(z.numpy()).volume for z in zs])
    assert bool((areas[1:] <= areas[:-1] + 1e-9).all())
    leaders = rescaled.leaders(field.attention_matrix(6.0, zs[-1]))
    assert 1 <= len(leaders) <= len(ConvexHull(z0.numpy()).vertices)


@settings(max_examples=15, deadline=None)
@given(seed=seeds, n=st.integers(2, 20))
def test_one_dimensional_attention_becomes_boolean_with_extreme_leaders(seed, n):
    """d = 1, V = QK = 1: P(t) tends to a 0/1 matrix of rank <= 2 led by the largest and smallest token."""
    x0 = uniform_box(n, 1, seed)
    field = rescaled.Rescaled(V=1.0)
    z = rescaled.integrate(field, x0, [0.0, 10.0], dt=0.01)[-1]
    P = field.attention_matrix(10.0, z)
    assert torch.minimum(P, 1 - P).max().item() < 1e-6
    assert torch.linalg.matrix_rank(P).item() <= 2
    assert set(rescaled.leaders(P)) <= {x0.argmax().item(), x0.argmin().item()}
    order = torch.argsort(z[:, 0])
    assert torch.equal(order, torch.argsort(x0[:, 0]))  # tokens never cross


def test_hyperplane_case_levels_along_the_top_eigenvector():
    c, s = math.cos(0.5), math.sin(0.5)
    phi = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    V = phi @ torch.diag(torch.tensor([1.0, -0.5], dtype=torch.float64)) @ phi.T
    field = rescaled.Rescaled(V)
    for seed in range(3):
        z = rescaled.integrate(field, uniform_box(15, 2, seed), [0.0, 10.0], dt=0.01)[-1]
        levels = torch.unique(torch.round(z @ phi[:, 0], decimals=3))
        assert len(levels) <= 3
        assert (z @ phi[:, 1]).std() > 10  # spreading along the hyperplanes


def test_hardmax_velocity_on_glpr_example():
    z0 = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    v = rescaled.hardmax_velocity(z0)
    torch.testing.assert_close(v, torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 2 / 3]], dtype=torch.float64))
    up = z0.clone()
    up[2, 1] = 0.25
    torch.testing.assert_close(rescaled.hardmax_velocity(up)[2], torch.tensor([0.0, 0.75], dtype=torch.float64))
    down = z0.clone()
    down[2, 1] = -0.25
    assert rescaled.hardmax_velocity(down).abs().max().item() == 0.0


def test_softmax_converges_to_the_climbing_hardmax_solution():
    """As beta grows the softmax solution approaches z_3(t) = (0, 1 - e^{-t}) (the page's check)."""
    z0 = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    t = torch.linspace(0, 4, 41, dtype=torch.float64)
    climbing = torch.stack([torch.zeros_like(t), 1 - torch.exp(-t)], dim=-1)
    target = torch.cat([z0[:2].expand(len(t), 2, 2), climbing[:, None]], dim=1)
    betas = [8.0, 32.0, 128.0]
    gaps = [(rescaled.integrate(rescaled.Rescaled(torch.eye(2, dtype=torch.float64), beta=b), z0, t, dt=0.002)
             - target).norm(dim=-1).max().item() for b in betas]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 5e-3
    assert -1.2 < rates.power_law(betas, gaps).slope < -0.6


def test_leaders_of_a_boolean_matrix():
    P = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert rescaled.leaders(P) == [1, 2]


@pytest.mark.parametrize("call,error,match", [
    (lambda: rescaled.Rescaled(torch.ones(2, 3)), ValueError, "V must be a square"),
    (lambda: rescaled.Rescaled(torch.eye(2), Q=torch.eye(3)), ValueError, r"Q must have shape \(2, 2\)"),
    (lambda: rescaled.Rescaled(torch.eye(2), beta=float("inf")), ValueError, "beta must be finite"),
    (lambda: rescaled.Rescaled(torch.eye(2)).attention_matrix(0.0, torch.zeros(3, 3)), ValueError, "dimension d = 3"),
    (lambda: rescaled.integrate(rescaled.Rescaled(torch.eye(2)), torch.zeros(3, 2), [0.0, 1.0], dt=0.0),
     ValueError, "dt must be > 0"),
    (lambda: rescaled.integrate(rescaled.Rescaled(torch.eye(2)), torch.zeros(3, 2), [0.0, 1.0], method="rk45"),
     ValueError, "valid methods: euler, rk4"),
    (lambda: rescaled.integrate(rescaled.Rescaled(torch.eye(2)), torch.zeros(2), [0.0, 1.0]), ValueError, "z0 must"),
    (lambda: rescaled.integrate(3, torch.zeros(3, 2), [0.0, 1.0]), TypeError, "field must be callable"),
    (lambda: rescaled.hardmax_velocity(torch.zeros(3, 2), tol=-1.0), ValueError, "tol must be"),
    (lambda: rescaled.leaders(torch.ones(2, 3)), ValueError, "P must be one square"),
])
def test_bad_input_is_rejected(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_non_finite_states_are_reported():
    field = rescaled.Rescaled(torch.tensor([[500.0]], dtype=torch.float64), beta=0.0)

    def explode(t, z):
        return 1e300 * z

    with pytest.raises(FloatingPointError, match="non-finite"):
        rescaled.integrate(explode, torch.ones(2, 1, dtype=torch.float64), [0.0, 1.0], dt=0.5)
    assert repr(field) == "Rescaled(d=1, beta=0.0)"
