"""Piecewise-constant Transformers: the field, the flow map and its inverse, the building blocks and
the toy interpolation of Chapter 4 (checks of the pages, in the ranges the theory allows)."""

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from nnips import attention, flow, interpolation, rates, sphere, wasserstein

seeds = st.integers(min_value=0, max_value=2**31 - 1)
E = torch.eye(3, dtype=torch.float64)


def random(shape, seed, scale=1.0):
    return scale * torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def two_clouds(n=150, seeds=(0, 1)):
    """The overlapping inputs of the interpolation page."""
    x1 = sphere.around(n, torch.tensor([1.0, 0.2, 0.3]), 0.35, seed=seeds[0])
    x2 = sphere.around(n, torch.tensor([1.0, -0.2, 0.1]), 0.35, seed=seeds[1])
    return torch.stack([x1, x2])


TARGETS = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 8), m=st.integers(1, 4), seed=seeds, barycentre=st.booleans())
def test_field_is_the_formula_of_the_paper(n, m, seed, barycentre):
    """v[mu](x) = P_x (V sum_j softmax_j(<B x, y_j>) y_j + W (U x + b)_+), arXiv 2411.04551."""
    x = sphere.uniform(n, 3, seed=seed)
    V, B = random((3, 3), seed), None if barycentre else random((3, 3), seed + 1)
    W, U, b = random((3, m), seed + 2), random((m, 3), seed + 3), random((m,), seed + 4)
    v = interpolation.Piece(1.0, V, B, W, U, b).field()(x)
    scores = torch.zeros(n, n, dtype=torch.float64) if B is None else (x @ B.T) @ x.T
    attn = torch.softmax(scores, -1) @ x @ V.T
    mlp = torch.relu(x @ U.T + b) @ W.T
    torch.testing.assert_close(v, sphere.project(x, attn + mlp))


def test_flow_map_composes_and_the_reversed_path_inverts_it():
    x = sphere.uniform(20, 3, batch=2, seed=0)
    p1 = interpolation.Piece(0.7, V=random((3, 3), 1), B=random((3, 3), 2))
    p2 = interpolation.Piece(0.5, W=random((3, 4), 3), U=random((4, 3), 4), b=random((4,), 5))
    both = interpolation.transport([p1, p2], x, dt=0.005)
    torch.testing.assert_close(both, interpolation.transport(p2, interpolation.transport(p1, x, dt=0.005), dt=0.005))
    # The inverse is exact for the flow: smooth attention pieces come back to rounding error; the
    # kink of the ReLU lowers the order of RK4, so the perceptron piece comes back to O(dt^2).
    back = interpolation.transport(interpolation.reverse(p1), interpolation.transport(p1, x, dt=0.005), dt=0.005)
    assert (back - x).abs().max() < 1e-11
    errors = []
    for dt in (0.005, 0.0025):
        there = interpolation.transport([p1, p2], x, dt=dt)
        errors.append((interpolation.transport(interpolation.reverse([p1, p2]), there, dt=dt) - x).abs().max())
    assert errors[1] < 1e-7 and errors[1] < errors[0] / 3


def test_recorded_frames_start_at_the_input_and_end_at_the_output():
    x = sphere.uniform(5, 3, seed=0)
    pieces = [interpolation.clustering(3, 2.0, 1.0), interpolation.Piece(0.5, V=E)]
    t, xs = interpolation.transport(pieces, x, frames=4)
    assert t.tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1.0, 1.125, 1.25, 1.375, 1.5])
    assert torch.equal(xs[0], x)
    torch.testing.assert_close(xs[-1], interpolation.transport(pieces, x))


def test_switches_count_parameter_changes():
    a, b = interpolation.Piece(1.0, V=E), interpolation.Piece(2.0, V=2 * E)
    assert interpolation.switches([a]) == 0
    assert interpolation.switches([a, interpolation.Piece(3.0, V=E.clone()), b, a]) == 2


def test_attention_collapses_a_hemisphere_at_the_linearised_rate_one():
    """Page "building blocks" (a): W_2(mu_t, delta_x*) ~ C e^{-t} for SA with V = I, any beta."""
    x0 = sphere.hemisphere(200, 3, seed=0)
    t = torch.linspace(0, 16, 33, dtype=torch.float64)
    for beta in (1.0, 4.0):
        xs = flow.integrate(attention.SelfAttention(beta), x0, t, dt=0.05)
        limit = sphere.normalize(xs[-1].mean(0, keepdim=True))[0]
        w2 = wasserstein.w2_dirac(xs, limit)
        window = (t >= 4) & (t <= 12)
        rate = -rates.exponential(t[window], w2[window]).slope
        assert 0.97 < rate < 1.03, (beta, rate)


def test_usa_collapses_at_the_linearised_rate_e_beta():
    """Exercise of the building-blocks page: USA with V = I linearises to y' = e^beta (ybar - y)."""
    x0 = sphere.hemisphere(200, 3, seed=0)
    t = torch.linspace(0, 6, 25, dtype=torch.float64)
    xs = flow.integrate(attention.SelfAttention(1.0, normalized=False), x0, t, dt=0.01)
    w2 = wasserstein.w2_dirac(xs, sphere.normalize(xs[-1].mean(0, keepdim=True))[0])
    window = (t >= 1.5) & (t <= 4.5)
    assert abs(-rates.exponential(t[window], w2[window]).slope - math.e) < 0.05


def test_a_perceptron_cap_moves_one_measure_and_leaves_the_other_exactly_in_place():
    x = torch.stack([sphere.around(50, E[0], 0.1, seed=0), sphere.around(50, -E[0], 0.1, seed=1)])
    pieces, y = interpolation.moves(x, 0, E[2], rate=5.0)
    assert (y[1] - x[1]).abs().max() < 1e-14  # the field vanishes there: only rounding moves it
    assert wasserstein.w2_dirac(y[0], E[2]) < 1e-2 < wasserstein.w2_dirac(x[0], E[2])


def test_separation_pushes_every_token_of_each_measure_its_own_way():
    """d<x,e>/dt = lambda <m,e> (1 - <x,e>^2): the sign of <m,e> decides, token by token."""
    x = two_clouds()
    assert not bool(sphere.in_open_hemisphere(torch.cat([x[0], -x[1]])))
    piece = interpolation.separation(x)
    e = piece.V[0] / piece.V[0].norm() * torch.sign(piece.V[0, 0])  # any column of V is along e
    e = e * torch.sign(x[0].mean(0) @ e)
    y = interpolation.transport(piece, x)
    assert bool(((y[0] - x[0]) @ e >= 0).all()) and bool(((y[1] - x[1]) @ e <= 0).all())
    assert bool(sphere.in_open_hemisphere(torch.cat([y[0], -y[1]])))


def test_a_measure_independent_field_cannot_separate_a_shared_token():
    shared = sphere.around(1, E[0], 0.1, seed=3)
    x = torch.stack([torch.cat([shared, sphere.around(20, E[1], 0.3, seed=0)]),
                     torch.cat([shared, sphere.around(20, -E[1], 0.3, seed=1)])])
    mlp = interpolation.Piece(1.0, W=random((3, 3), 0), U=random((3, 3), 1), b=random((3,), 2))
    y = interpolation.transport(mlp, x)
    torch.testing.assert_close(y[0, 0], y[1, 0])
    z = interpolation.transport(interpolation.separation(x), x)
    assert (z[0, 0] - z[1, 0]).norm() > 1.0


def test_the_toy_interpolation_reaches_its_targets_also_from_fresh_samples():
    """Page "interpolation": W_2(output_i, delta_{y_i}) below epsilon = 1e-3, also for fresh samples."""
    x = two_clouds()
    pieces = interpolation.construct(x, TARGETS)
    assert interpolation.switches(pieces) == len(pieces) - 1 >= 3
    out = interpolation.transport(pieces, x)
    assert wasserstein.w2_dirac(out, TARGETS).max() < 1e-3
    fresh = interpolation.transport(pieces, two_clouds(100, seeds=(10, 11)))
    assert wasserstein.w2_dirac(fresh, TARGETS).max() < 1e-3


def test_sphere_animation_is_embedded_html_and_checks_its_input():
    from nnips import plot

    xs = torch.stack([two_clouds(5)] * 3)
    html = plot.sphere_animation(xs, t=torch.arange(3.0), targets=TARGETS)
    assert "<script" in html and html.count("data:image/png") >= 3
    with pytest.raises(ValueError, match="frames, N, n, 3"):
        plot.sphere_animation(xs[0])


def test_around_is_a_cloud_around_its_centre():
    x = sphere.around(2000, torch.tensor([0.0, 3.0, 0.0]), 0.2, batch=2, seed=0)
    assert x.shape == (2, 2000, 3)
    torch.testing.assert_close(x.norm(dim=-1), torch.ones(2, 2000, dtype=torch.float64))
    assert (sphere.normalize(x.mean(-2)) - E[1]).abs().max() < 0.02


@pytest.mark.parametrize("call,error,match", [
    (lambda: interpolation.Piece(0.0, V=E), ValueError, "duration must be > 0"),
    (lambda: interpolation.Piece(1.0), ValueError, "needs an attention term"),
    (lambda: interpolation.Piece(1.0, B=E, W=E, U=E, b=torch.ones(3)), ValueError, "B without V"),
    (lambda: interpolation.Piece(1.0, W=E), ValueError, "W, U and b go together"),
    (lambda: interpolation.Piece(1.0, V=E, B=torch.eye(2, dtype=torch.float64)), ValueError, "B must have the shape"),
    (lambda: interpolation.Piece(1.0, V=torch.ones(3, 2)), ValueError, "V must be square"),
    (lambda: interpolation.Piece(1.0, V=E, W=torch.ones(2, 1), U=torch.ones(1, 2), b=torch.ones(1)), ValueError,
     "same dimension"),
    (lambda: interpolation.Piece(1.0, W=torch.ones(3, 2), U=torch.ones(3, 3), b=torch.ones(3)), ValueError, "shapes"),
    (lambda: interpolation.transport([], sphere.uniform(3, 3)), TypeError, "non-empty sequence"),
    (lambda: interpolation.transport(interpolation.Piece(1.0, V=E), sphere.uniform(3, 2)), ValueError, "dimension 3"),
    (lambda: interpolation.transport(interpolation.Piece(1.0, V=E), 2 * sphere.uniform(3, 3)), ValueError,
     "unit sphere"),
    (lambda: interpolation.separation(sphere.uniform(4, 3, batch=3)), ValueError, "two measures"),
    (lambda: interpolation.separation(sphere.uniform(4, 3)), ValueError, r"shape \(N, n, d\)"),
    (lambda: interpolation.separation(torch.stack([sphere.uniform(4, 3)] * 2)), ValueError, "same way"),
    (lambda: interpolation.clustering(3, beta=0.0), ValueError, "beta must be > 0"),
    (lambda: interpolation.moves(sphere.uniform(4, 3, batch=2), 2, E[0]), ValueError, "index must be < N"),
    (lambda: interpolation.moves(torch.stack([sphere.around(9, E[0], 0.01), sphere.around(9, E[1], 0.01)]),
                                 0, E[1]), ValueError, "another measure"),
    (lambda: interpolation.construct(two_clouds(10), TARGETS[:1]), ValueError, "targets must have shape"),
    (lambda: sphere.around(3, torch.zeros(3), 0.1), ValueError, "center must be a non-zero"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
