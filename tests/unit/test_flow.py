import pytest
import torch
from hypothesis import given, settings, strategies as st

from nnips import attention, clusters, equiangular, flow, rates, sphere


@settings(max_examples=15, deadline=None)
@given(method=st.sampled_from(["layer", "euler", "rk4"]), beta=st.floats(0, 6), seed=st.integers(0, 1000),
       normalized=st.booleans())
def test_points_stay_on_the_sphere(method, beta, seed, normalized):
    x0 = sphere.uniform(8, 3, batch=2, seed=seed)
    field = attention.SelfAttention(beta, normalized=normalized)
    xs = flow.integrate(field, x0, [0.0, 0.5, 1.0], method=method, dt=0.05 if normalized else 1e-3)
    assert (xs.norm(dim=-1) - 1).abs().max() < 1e-12


def test_output_shape_first_state_dtype():
    x0 = sphere.uniform(5, 3, batch=(2, 3), seed=0, dtype=torch.float32)
    xs = flow.integrate(attention.SelfAttention(1.0), x0, torch.linspace(0, 1, 4), method="layer", dt=0.1)
    assert xs.shape == (4, 2, 3, 5, 3) and xs.dtype == torch.float32
    assert torch.equal(xs[0], x0)


def test_recording_times_are_hit_exactly():
    """Unequal intervals: each is cut into equal steps, so the state at t equals one run to t."""
    field = attention.SelfAttention(2.0)
    x0 = sphere.uniform(6, 3, seed=0)
    t = flow.log_times(0.013, 2.0, 6)
    xs = flow.integrate(field, x0, t, method="rk4", dt=0.01)
    ref = flow.integrate(field, x0, t, method="adaptive")
    assert (xs - ref).abs().max() < 1e-8


def test_batched_systems_are_independent():
    field = attention.SelfAttention(3.0)
    x0 = sphere.uniform(6, 3, batch=3, seed=0)
    batched = flow.integrate(field, x0, [0.0, 1.0], method="rk4", dt=0.05)
    one = flow.integrate(field, x0[1], [0.0, 1.0], method="rk4", dt=0.05)
    torch.testing.assert_close(batched[:, 1], one)


def test_observe_records_a_statistic():
    field = attention.SelfAttention(1.0)
    x0 = sphere.uniform(10, 3, batch=4, seed=0)
    t = [0.0, 1.0, 20.0]
    stats = flow.integrate(field, x0, t, observe=lambda x: clusters.pair_fraction(x, 1e-3))
    assert stats.shape == (3, 4)
    assert stats[0].max() == 0 and stats[-1].min() == 1  # d = 3: one cluster (GLPR Theorem 6.1)


@pytest.mark.parametrize("method,order", [("layer", 1), ("euler", 1), ("rk4", 4)])
def test_convergence_order_against_the_adaptive_reference(method, order):
    field = attention.SelfAttention(2.0)
    x0 = sphere.uniform(8, 3, seed=7)
    T = 1.0
    ref = flow.integrate(field, x0, [0.0, T], method="adaptive", rtol=1e-13, atol=1e-14)[-1]
    layers = [8, 16, 32, 64] if order == 1 else [4, 8, 16, 32]
    errors = [(flow.integrate(field, x0, [0.0, T], method=method, dt=T / L)[-1] - ref).abs().max().item()
              for L in layers]
    slope = rates.power_law(layers, errors).slope
    assert slope == pytest.approx(-order, abs=0.15)


def test_rk4_order_on_the_exact_equiangular_solution():
    beta, n, T = 1.0, 4, 2.0
    x0 = sphere.orthonormal(n, n)
    exact = equiangular.gamma([0.0, T], beta, n)[-1].item()
    layers = [10, 20, 40, 80]
    errors = []
    for L in layers:
        x = flow.integrate(attention.SelfAttention(beta), x0, [0.0, T], method="rk4", dt=T / L)[-1]
        errors.append(abs((x[0] @ x[1]).item() - exact))
    assert rates.power_law(layers, errors).slope == pytest.approx(-4, abs=0.2)


@pytest.mark.parametrize("normalized", [True, False])
def test_cone_collapse_invariant(normalized):
    """Tokens in the open hemisphere {<x, w> > 0}: min_i <x_i(t), w> is non-decreasing (Lemma 6.4)."""
    w = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    x0 = sphere.hemisphere(20, 3, w=w, batch=5, seed=2)
    field = attention.SelfAttention(4.0, normalized=normalized)
    xs = flow.integrate(field, x0, torch.linspace(0, 3, 61), method="rk4", dt=0.01 if normalized else 2e-4)
    r = torch.stack([clusters.min_inner_product(x, w) for x in xs])
    assert bool((r[1:] - r[:-1] >= -1e-12).all())
    assert bool((r[-1] > r[0]).all())


def test_non_finite_state_raises():
    field = attention.SelfAttention(1000.0, normalized=False)
    x0 = sphere.uniform(4, 3, seed=0)
    with pytest.raises(FloatingPointError, match="non-finite"):
        flow.integrate(field, x0, [0.0, 1.0], method="euler", dt=0.1)
