"""Sinkhorn normalisation and the Sinkformer field: double stochasticity, POT, the energy and its
dissipation identity (checks of the Sinkformers page in the ranges the theory allows)."""

import math

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings, strategies as st

from nnips import attention, clusters, flow, sinkformer, sphere

seeds = st.integers(min_value=0, max_value=2**31 - 1)


def scores_of(n, beta, seed, d=3):
    x = sphere.uniform(n, d, seed=seed)
    return x, beta * x @ x.T


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 30), beta=st.floats(0.0, 3.0), seed=seeds, batch=st.integers(1, 3))
def test_sinkhorn_is_doubly_stochastic_to_tolerance(n, beta, seed, batch):
    x = sphere.uniform(n, 3, batch=batch, seed=seed)
    A = sinkformer.sinkhorn(beta * x @ x.mT, tol=1e-12)
    assert bool((A > 0).all())
    assert (A.sum(-1) - 1).abs().max() < 1e-12
    assert (A.sum(-2) - 1).abs().max() < 1e-11


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 12), seed=seeds)
def test_sinkhorn_ignores_row_and_column_offsets(n, seed):
    """diag(u) K diag(v) has the same Sinkhorn limit as K: the limit depends on K up to scalings."""
    g = torch.Generator().manual_seed(seed)
    S = torch.randn(n, n, generator=g, dtype=torch.float64)
    r, c = torch.randn(n, 1, generator=g, dtype=torch.float64), torch.randn(1, n, generator=g, dtype=torch.float64)
    torch.testing.assert_close(sinkformer.sinkhorn(S + r + c), sinkformer.sinkhorn(S), rtol=1e-9, atol=1e-10)


def test_sinkhorn_matches_pot_with_weights():
    """w_i A_ij is POT's entropic plan between mu = sum_i w_i delta_i and itself, cost -S, reg 1."""
    _, S = scores_of(12, 2.0, 0)
    w = torch.linspace(1, 2, 12, dtype=torch.float64)
    w = w / w.sum()
    A = sinkformer.sinkhorn(S, w, tol=1e-13)
    plan = ot.sinkhorn(w.numpy(), w.numpy(), -S.numpy(), 1.0, method="sinkhorn_log", stopThr=1e-14,
                       numItermax=100_000)
    np.testing.assert_allclose((w[:, None] * A).numpy(), plan, rtol=1e-8, atol=1e-13)


def test_softmax_is_already_doubly_stochastic_for_equally_spaced_points():
    """Circulant kernels have equal column sums: Sinkhorn stops at the softmax."""
    angle = torch.arange(7, dtype=torch.float64) * 2 * math.pi / 7
    x = torch.stack([angle.cos(), angle.sin()], -1)
    torch.testing.assert_close(sinkformer.SinkhornAttention(3.0).attention_matrix(x),
                               attention.SelfAttention(3.0).attention_matrix(x))


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 20), beta=st.floats(0.0, 3.0), seed=seeds)
def test_symmetric_and_alternating_iterations_agree(n, beta, seed):
    _, S = scores_of(n, beta, seed)
    A, f, g = sinkformer.sinkhorn(S, symmetric=True, potentials=True)
    torch.testing.assert_close(A, sinkformer.sinkhorn(S, symmetric=False), rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(A, A.T)
    assert torch.equal(f, g)


def test_the_symmetric_iteration_stays_fast_on_clustered_tokens():
    """Two clusters of sizes 5 and 15: alternating updates crawl, the averaged iteration does not."""
    x = torch.cat([sphere.around(5, torch.tensor([1.0, 0.0, 0.0]), 0.01, seed=0),
                   sphere.around(15, torch.tensor([-1.0, 0.2, 0.0]), 0.01, seed=1)])
    S = 4.0 * x @ x.T
    A = sinkformer.sinkhorn(S, max_iter=200, symmetric=True)
    assert (A.sum(0) - 1).abs().max() < 1e-12
    with pytest.raises(RuntimeError):
        sinkformer.sinkhorn(S, max_iter=200, symmetric=False)


def test_sinkhorn_raises_when_it_does_not_converge():
    _, S = scores_of(20, 3.0, 0)
    for symmetric in (True, False):
        with pytest.raises(RuntimeError, match="max_iter = 2"):
            sinkformer.sinkhorn(S, max_iter=2, symmetric=symmetric)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 10), beta=st.floats(0.1, 3.0), seed=seeds)
def test_field_is_tangent_and_is_the_explicit_formula(n, beta, seed):
    x, S = scores_of(n, beta, seed)
    A = sinkformer.sinkhorn(S)
    v = sinkformer.SinkhornAttention(beta)(x)
    torch.testing.assert_close(v, sphere.project(x, A @ x))
    assert (v * x).sum(-1).abs().max() < 1e-12


def test_measure_field_is_softmax_attention_to_a_reweighted_measure():
    x = sphere.uniform(6, 3, seed=1)
    field = sinkformer.SinkhornAttention(2.0)
    torch.testing.assert_close(field.measure_field(x, x), field(x))
    # A token listed twice is the same as a token of mass 2/(n+1): the field only sees the measure.
    doubled = torch.cat([x, x[:1]])
    w = torch.full((6,), 1.0 / 7, dtype=torch.float64)
    w[0] = 2.0 / 7
    torch.testing.assert_close(field.measure_field(x, x, w), field(doubled)[:6])


def test_energy_is_half_the_entropic_self_transport_cost():
    """F = (1/2) OT_eps(mu, mu) with cost -<x, y>, eps = 1/beta: <P, M> + eps KL(P | mu x mu), via POT."""
    beta, n = 2.5, 15
    x = sphere.uniform(n, 3, seed=2)
    a = np.full(n, 1.0 / n)
    M = -(x @ x.T).numpy()
    P = ot.sinkhorn(a, a, M, 1.0 / beta, method="sinkhorn_log", stopThr=1e-14, numItermax=100_000)
    cost = (P * M).sum() + (P * np.log(P / np.outer(a, a))).sum() / beta
    assert sinkformer.SinkhornAttention(beta).energy(x).item() == pytest.approx(cost / 2, rel=1e-9)


def test_energy_is_minus_one_half_exactly_at_one_cluster():
    field = sinkformer.SinkhornAttention(3.0)
    one = sphere.uniform(1, 3, seed=0).expand(8, 3)
    assert field.energy(one).item() == pytest.approx(-0.5, abs=1e-12)
    assert field.energy(sphere.uniform(8, 3, seed=0)).item() > -0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_energy_gradient_matches_finite_differences(seed):
    beta, n, h = 2.0, 7, 1e-6
    x = sphere.uniform(n, 3, seed=seed)
    field = sinkformer.SinkhornAttention(beta, tol=1e-14)
    v = sphere.project(x, torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    plus = sphere.normalize(x + h * v)
    minus = sphere.normalize(x - h * v)
    slope = (field.energy(plus) - field.energy(minus)) / (2 * h)
    assert slope.item() == pytest.approx((field.energy_gradient(x) * v).sum().item(), rel=1e-6, abs=1e-9)
    # The Sinkformer with V = I is the gradient descent x' = -n grad F.
    torch.testing.assert_close(field(x), -n * field.energy_gradient(x))


def test_energy_decreases_along_the_flow_with_the_dissipation_identity():
    """Page "Sinkformers": dF/dt = -(1/n) sum_i |x_i'|^2 <= 0, and clusters form."""
    beta, n = 3.0, 48
    field = sinkformer.SinkhornAttention(beta)
    t = torch.linspace(0, 20, 41, dtype=torch.float64)
    xs = flow.integrate(field, sphere.uniform(n, 3, seed=0), t, dt=0.1)
    F = field.energy(xs)
    assert (F[1:] - F[:-1]).max() <= 1e-12
    assert F[-1] >= -0.5 - 1e-12 and clusters.count(xs[-1], 1e-3) < n // 4
    h = 1e-6
    ys = flow.integrate(field, xs[10], [0.0, h], method="adaptive", rtol=1e-13)
    measured = (field.energy(ys[1]) - field.energy(ys[0])) / h
    predicted = -(field(xs[10]) ** 2).sum() / n
    assert measured.item() == pytest.approx(predicted.item(), rel=1e-4)


def test_softmax_columns_drift_toward_one_as_tokens_cluster():
    """Softmax attention of a clustered configuration is nearly doubly stochastic."""
    sa = attention.SelfAttention(3.0)
    xs = flow.integrate(sa, sphere.uniform(48, 3, seed=0), [0.0, 30.0], dt=0.1)
    columns = (sa.attention_matrix(xs).sum(-2) - 1).abs().amax(-1)
    assert columns[0] > 0.3 and columns[1] < 1e-3


@pytest.mark.parametrize("n1,n2,c", [(34, 14, -0.95), (5, 20, 0.3), (10, 10, -1.0)])
def test_softmax_column_sums_of_two_point_clusters(n1, n2, c):
    """Exercise of the Sinkformers page: n1/(n1 + n2 r) + n2 r/(n2 + n1 r) with r = e^{beta (c - 1)}."""
    beta = 3.0
    p = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    q = torch.tensor([c, math.sqrt(1 - c * c), 0.0], dtype=torch.float64)
    x = torch.cat([p.expand(n1, 3), q.expand(n2, 3)])
    columns = attention.SelfAttention(beta).attention_matrix(x).sum(0)
    r = math.exp(beta * (c - 1))
    assert columns[0].item() == pytest.approx(n1 / (n1 + n2 * r) + n2 * r / (n2 + n1 * r), rel=1e-12)
    assert columns[-1].item() == pytest.approx(n2 / (n2 + n1 * r) + n1 * r / (n1 + n2 * r), rel=1e-12)


@pytest.mark.parametrize("call,error,match", [
    (lambda: sinkformer.sinkhorn(torch.ones(3, 4)), ValueError, r"shape \(\.\.\., n, n\)"),
    (lambda: sinkformer.sinkhorn(torch.ones(3, 3), tol=0.0), ValueError, "tol must be > 0"),
    (lambda: sinkformer.sinkhorn(torch.ones(3, 3), max_iter=0), ValueError, "max_iter must be"),
    (lambda: sinkformer.sinkhorn(torch.ones(3, 3), torch.ones(3)), ValueError, "weights must sum"),
    (lambda: sinkformer.sinkhorn(torch.ones(3, 3), torch.ones(2) / 2), ValueError, "last dimension n = 3"),
    (lambda: sinkformer.sinkhorn(torch.full((3, 3), math.nan)), ValueError, "scores has non-finite"),
    (lambda: sinkformer.SinkhornAttention(torch.ones(2)), TypeError, "one float beta"),
    (lambda: sinkformer.SinkhornAttention(1.0, Q=torch.tensor([[1.0, 2.0], [0.0, 1.0]])).energy(
        sphere.uniform(3, 2)), ValueError, "symmetric"),
    (lambda: sinkformer.SinkhornAttention(0.0).energy(sphere.uniform(3, 2)), ValueError, "beta > 0"),
    (lambda: sinkformer.SinkhornAttention(1.0).normalized_energy(sphere.uniform(3, 2)), NotImplementedError, "own"),
    (lambda: sinkformer.SinkhornAttention(1.0).attention_matrix(2 * sphere.uniform(3, 2)), ValueError, "unit sphere"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
