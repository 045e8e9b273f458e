"""Chapter 3 building blocks: long-time integration, merging, plateaus, rescaled USA, Hessians, the circle."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from nnips import attention, circle, clusters, equiangular, flow, landscape, sphere


# --- flow.integrate_adaptive -------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 5])
@pytest.mark.parametrize("normalized", [True, False])
def test_adaptive_follows_the_exact_equiangular_solution(n, normalized):
    """GLPR Theorem 6.8: from an orthonormal start every inner product is gamma_beta(t)."""
    t = torch.tensor([0.0, 0.5, 2.0, 6.0], dtype=torch.float64)
    xs = flow.integrate_adaptive(attention.SelfAttention(1.5, normalized=normalized), sphere.orthonormal(n, n), t)
    g = equiangular.gamma(t, 1.5, n, normalized=normalized)
    off = ~torch.eye(n, dtype=torch.bool)
    assert ((xs @ xs.mT)[:, off] - g[:, None]).abs().max() < 1e-8


def test_adaptive_agrees_with_fine_rk4_and_tolerance_controls_the_error():
    field = attention.SelfAttention(3.0)
    x0 = sphere.uniform(8, 3, seed=4)
    t = [0.0, 1.0, 4.0]
    ref = flow.integrate(field, x0, t, method="rk4", dt=1e-3)
    loose = (flow.integrate_adaptive(field, x0, t, rtol=1e-5, atol=1e-7) - ref).abs().max()
    tight = (flow.integrate_adaptive(field, x0, t, rtol=1e-10, atol=1e-12) - ref).abs().max()
    assert tight < 1e-9 and tight < loose < 1e-3


def test_adaptive_batch_members_are_independent_and_keep_their_own_steps():
    beta = torch.tensor([1.0, 8.0]).reshape(2, 1)
    x0 = sphere.uniform(6, 2, batch=(2, 3), seed=0)
    t = flow.log_times(0.1, 50.0, 10)
    both = flow.integrate_adaptive(attention.SelfAttention(beta), x0, t)
    alone = flow.integrate_adaptive(attention.SelfAttention(8.0), x0[1, 2], t)
    assert torch.allclose(both[:, 1, 2], alone, atol=1e-7)
    assert torch.equal(both[0], x0)


def test_adaptive_observe_and_first_state():
    x0 = sphere.uniform(10, 3, batch=4, seed=0)
    stats = flow.integrate_adaptive(attention.SelfAttention(1.0), x0, [0.0, 1.0, 30.0],
                                    observe=lambda x: clusters.number(x, 1e-3))
    assert stats.shape == (3, 4) and stats.dtype == torch.int64
    assert (stats[0] == 10).all() and (stats[-1] == 1).all()  # d = 3: one cluster (GLPR Theorem 6.1)


def test_merging_keeps_clusters_together_and_long_plateaus_cheap():
    field = attention.SelfAttention(9.0)
    calls = [0]

    def counted(x):
        calls[0] += 1
        return field(x)

    x0 = sphere.uniform(32, 2, seed=1)
    t = flow.log_times(0.1, 1e6, 30)
    xs = flow.integrate_adaptive(counted, x0, t, merge=lambda x: clusters.snap(x, 1e-12))
    assert calls[0] < 7 * 1500  # without merging, steps stay of order one up to t = 1e6
    last = xs[-1]
    distinct = torch.unique(last, dim=0)
    assert distinct.shape[0] == clusters.number(last, 1e-3).item()
    assert (last.norm(dim=-1) - 1).abs().max() < 1e-12


def test_merging_does_not_change_the_clustering_before_merges():
    """With and without merging the same cluster counts are recorded up to t = 40 (beta = 4)."""
    field = attention.SelfAttention(4.0)
    x0 = sphere.uniform(16, 2, batch=3, seed=5)
    t = torch.linspace(0, 40, 9, dtype=torch.float64)
    plain = flow.integrate_adaptive(field, x0, t, observe=lambda x: clusters.number(x, 1e-3))
    merged = flow.integrate_adaptive(field, x0, t, observe=lambda x: clusters.number(x, 1e-3),
                                     merge=lambda x: clusters.snap(x, 1e-12))
    assert torch.equal(plain, merged)


def test_arclength_clock_has_unit_speed_and_the_same_orbit():
    field = attention.SelfAttention(2.0)
    x0 = sphere.uniform(6, 2, seed=3)
    arc = flow.ArcLength(field)
    v = arc(x0)
    assert abs(((v ** 2).sum() / 6).sqrt().item() - 1) < 1e-12
    s = torch.linspace(0, 0.3, 4, dtype=torch.float64)
    xs = flow.integrate_adaptive(arc, x0, s, rtol=1e-11, atol=1e-13)
    # distance travelled in rms: at most s (equality for straight paths)
    travelled = ((xs[-1] - x0).norm(dim=-1) ** 2).mean().sqrt().item()
    assert travelled <= 0.3 + 1e-9
    # the orbit is that of the field: the final point lies on the original trajectory
    ts = torch.linspace(0, 3, 3001, dtype=torch.float64)
    orbit = flow.integrate(field, x0, ts, method="rk4", dt=1e-3)
    assert (orbit - xs[-1]).norm(dim=-1).amax(dim=-1).min() < 1e-3
    assert torch.equal(arc(torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)), torch.zeros(2, 2,
                                                                                                       dtype=torch.float64))


# --- clusters ------------------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 25), delta=st.floats(1e-3, 0.5))
def test_labels_count_like_scipy(seed, n, delta):
    x = sphere.uniform(n, 2, batch=3, seed=seed)
    assert torch.equal(clusters.number(x, delta), clusters.count(x, delta))
    lab = clusters.labels(x, delta)
    assert (lab <= torch.arange(n)).all()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), spread=st.floats(1e-8, 1e-3))
def test_snap_merges_close_tokens_by_at_most_the_bound(seed, spread):
    centers = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    x = torch.cat([sphere.around(5, centers[0], spread, seed=seed), sphere.around(3, centers[1], spread, seed=seed + 1)])
    delta = 1.0 - torch.clamp((x @ x.T)[:5, :5].min(), max=1.0).item() + 1e-15
    delta = max(delta, (1.0 - (x @ x.T)[5:, 5:].min()).item() + 1e-15)
    y = clusters.snap(x, delta)
    assert torch.unique(y, dim=0).shape[0] == 2
    assert (y - x).norm(dim=-1).max() <= math.sqrt(2 * delta) + 1e-12
    assert torch.equal(clusters.snap(y, delta), y) or (clusters.snap(y, delta) - y).abs().max() < 1e-15


def test_snap_leaves_isolated_tokens_alone_and_accepts_one_delta_per_system():
    x = sphere.uniform(6, 3, batch=2, seed=1)
    assert torch.equal(clusters.snap(x, 1e-6), x)
    y = torch.stack([x[0], x[0]])
    y[:, 1] = sphere.normalize(y[:, 0] + 1e-3 * y[:, 2])
    merged = clusters.snap(y, torch.tensor([1e-7, 1e-4], dtype=torch.float64))
    assert not torch.equal(merged[0, 0], merged[0, 1]) and torch.equal(merged[1, 0], merged[1, 1])


def test_atoms_plateau_first_time():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    y, m = clusters.atoms(x)
    assert y.shape == (2, 2) and m.tolist() == [0.75, 0.25]
    t = [0.0, 1.0, 10.0, 100.0, 1000.0]
    counts = torch.tensor([[9, 9], [3, 2], [2, 2], [2, 1], [1, 1]])
    start, end = clusters.plateau(t, counts, 2)
    assert start.tolist() == [10.0, 1.0] and end.tolist() == [1000.0, 100.0]
    assert clusters.first_time(t, counts < 1).tolist() == [math.inf, math.inf]
    assert clusters.plateaus(t, counts[:, 0], min_ratio=5.0) == [(3, 1.0, 10.0), (2, 10.0, 1000.0)]
    assert clusters.plateaus(t, counts[:, 0])[0] == (9, 0.0, 1.0)


# --- RescaledUSA -----------------------------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), beta=st.floats(0.1, 30.0))
def test_rescaled_usa_is_usa_on_the_clock_e_beta_t(seed, beta):
    x = sphere.uniform(7, 3, seed=seed)
    r, u = attention.RescaledUSA(beta), attention.SelfAttention(beta, normalized=False)
    # USA itself loses digits to the cancellation x_i/n - <x_i, x_i/n> x_i that RescaledUSA avoids
    torch.testing.assert_close(r(x) * math.exp(beta), u(x), rtol=0, atol=1e-12 * math.exp(beta))
    torch.testing.assert_close(r.energy(x) * math.exp(beta), u.energy(x), rtol=1e-10, atol=0)
    torch.testing.assert_close(r(x), 7 * r.energy_gradient(x), rtol=1e-10, atol=1e-15)
    torch.testing.assert_close(r.normalized_energy(x), 2 * beta * r.energy(x), rtol=1e-12, atol=0)


def test_rescaled_usa_keeps_exponentially_small_forces_at_large_beta():
    """Two merged clusters at angle g: the pull e^{-beta(1 - cos g)} survives at beta = 4000."""
    g, beta = 0.3, 4000.0
    x = circle.points(torch.tensor([0.0, 0.0, g], dtype=torch.float64))
    v = attention.RescaledUSA(beta)(x)
    expected = math.exp(-beta * (1 - math.cos(g))) * math.sin(g) / 3  # speed of the pair, USA / n
    assert v[0].norm().item() == pytest.approx(expected, rel=1e-10)
    assert v[2].norm().item() == pytest.approx(2 * expected, rel=1e-10)


# --- landscape -------------------------------------------------------------------------------------

def test_tangent_basis_is_orthonormal_and_tangent():
    x = sphere.uniform(4, 5, seed=2)
    B = landscape.tangent_basis(x)
    assert B.shape == (4, 4, 5)
    assert (B @ x.unsqueeze(-1)).abs().max() < 1e-12
    torch.testing.assert_close(B @ B.mT, torch.eye(4, dtype=torch.float64).expand(4, 4, 4))


def test_hessian_of_a_height_function():
    """f(x) = <a, x> on S^{d-1}: Riemannian gradient P_x a and Hessian -<a, x> Id."""
    a = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    x = sphere.uniform(1, 3, seed=0)
    f = lambda y: (y @ a).sum()  # noqa: E731
    torch.testing.assert_close(landscape.riemannian_gradient(f, x), sphere.project(x, a.expand(1, 3)))
    torch.testing.assert_close(landscape.riemannian_hessian(f, x), -(x[0] @ a) * torch.eye(2, dtype=torch.float64))


@pytest.mark.parametrize("d", [2, 3, 4])
def test_hessian_at_one_cluster_has_eigenvalues_zero_and_minus_one_over_n(d):
    """At one cluster, Hess of e^{-beta} E_beta = -(1/n^2)(n I - 1 1^T) per tangent direction."""
    n = 6
    x = sphere.uniform(1, d, seed=1).expand(n, d).clone()
    eig = torch.linalg.eigvalsh(landscape.riemannian_hessian(attention.RescaledUSA(5.0).energy, x))
    expected = torch.tensor([-1 / n] * ((n - 1) * (d - 1)) + [0.0] * (d - 1), dtype=torch.float64)
    torch.testing.assert_close(eig, expected, atol=1e-12, rtol=0)


def test_circle_hessian_equals_the_angle_hessian():
    theta = torch.tensor([0.1, 0.7, 2.0, -2.5], dtype=torch.float64)
    energy = attention.RescaledUSA(3.0).energy
    H = landscape.riemannian_hessian(energy, circle.points(theta))
    H_angles = torch.autograd.functional.hessian(lambda a: energy(circle.points(a)), theta)
    torch.testing.assert_close(H, H_angles, atol=1e-14, rtol=1e-12)


def test_weighted_hessian_of_atoms_equals_token_hessian_on_rigid_cluster_motions():
    """Two clusters (3 and 2 coincident tokens): the atom Hessian in the mass metric carries the
    eigenvalues of the token Hessian restricted to rigid motions of the clusters."""
    theta = torch.tensor([0.0, 0.0, 0.0, 1.2, 1.2], dtype=torch.float64)
    usa = attention.RescaledUSA(2.0)
    H = landscape.riemannian_hessian(usa.energy, circle.points(theta))
    U = torch.tensor([[1, 0], [1, 0], [1, 0], [0, 1], [0, 1]], dtype=torch.float64)
    U = U / U.norm(dim=0)
    y, m = clusters.atoms(circle.points(theta))
    Ha = landscape.riemannian_hessian(lambda z: usa.energy(z, weights=m, diagonal=False), y, weights=m * 5)
    torch.testing.assert_close(torch.linalg.eigvalsh(U.T @ H @ U), torch.linalg.eigvalsh(Ha), atol=1e-13, rtol=0)


# --- circle ----------------------------------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), beta=st.floats(0.0, 12.0), normalized=st.booleans())
def test_angle_velocity_is_the_sphere_field_for_d_2(seed, beta, normalized):
    x = sphere.uniform(9, 2, seed=seed)
    theta = circle.angles(x)
    v = attention.SelfAttention(beta, normalized=normalized)(x)
    tangential = (landscape.tangent_basis(x)[..., 0, :] * v).sum(-1)
    torch.testing.assert_close(circle.velocity(theta, beta, normalized=normalized), tangential, rtol=1e-10,
                               atol=1e-12)


def test_growth_rates_match_the_fourier_multiplier_and_fastest_mode_is_near_sqrt_2beta():
    beta = 6.0
    k = np.arange(0, 8)
    lam = circle.growth_rates(beta, k, normalized=False) * math.exp(beta)
    # USA linearised at uniform on mode cos(k theta): d/dt eta = -(1/(2 pi beta)) d^2/dtheta^2 (h * eta)
    u = np.linspace(0, 2 * np.pi, 4001)[:-1]
    multiplier = [np.mean(np.exp(beta * np.cos(u)) * np.cos(kk * u)) * 2 * np.pi for kk in k]  # 2 pi I_k
    assert np.allclose(lam, k ** 2 * np.array(multiplier) / (2 * np.pi * beta), rtol=1e-10)
    for b in (50.0, 200.0, 800.0):
        assert abs(circle.fastest_mode(b) - math.sqrt(2 * b)) <= 1.5


def test_kuramoto_order_solves_the_self_consistency():
    for kappa in (2.1, 3.0, 10.0):
        r = circle.kuramoto_order(kappa)
        from scipy.special import iv
        assert r == pytest.approx(iv(1, kappa * r) / iv(0, kappa * r), abs=1e-12) and r > 0
    assert circle.kuramoto_order(2.0) == 0.0


def test_langevin_without_noise_is_the_deterministic_flow_and_noise_is_reproducible():
    theta0 = torch.tensor([[0.0, 0.5, 1.0]], dtype=torch.float64)
    det = circle.langevin(theta0, 1.0, 1e30, [0.0, 1.0], dt=1e-3)[-1]
    ref = circle.angles(flow.integrate(attention.SelfAttention(1.0, normalized=False), circle.points(theta0),
                                       [0.0, 1.0], method="adaptive")[-1])
    torch.testing.assert_close(det, ref, atol=2e-3, rtol=0)
    a = circle.langevin(theta0, 0.0, 2.0, [0.0, 0.5], seed=3)
    b = circle.langevin(theta0, 0.0, 2.0, [0.0, 0.5], seed=3)
    assert torch.equal(a, b)


def test_langevin_brownian_variance():
    """beta = 0 with one token: dtheta = sqrt(2/kappa) dW, so Var theta(t) = 2t/kappa."""
    theta0 = torch.zeros(4000, 1, dtype=torch.float64)
    out = circle.langevin(theta0, 0.0, 4.0, [0.0, 1.0], dt=0.1, seed=0)[-1, :, 0]
    assert out.var().item() == pytest.approx(0.5, rel=0.1)


def test_staircase_limit_bookkeeping():
    theta = torch.tensor([0.0, 0.05, 0.3, 1.0, 1.1], dtype=torch.float64)
    s = circle.staircase_limit(theta)
    assert s.levels[0] == pytest.approx(0.2) and s.levels[-1] == pytest.approx(1.0)
    assert np.all(np.diff(s.jumps) > 0) and len(s.merges) == 4
    assert s.merges[0] == ([0], [1])
    # each jump is 2 m_a m_b
    sizes = [(len(a) / 5, len(b) / 5) for a, b in s.merges]
    assert np.allclose(np.diff(s.levels), [2 * a * b for a, b in sizes])


# --- equiangular long context and caps ---------------------------------------------------------------

@pytest.mark.parametrize("gamma", [1.0, 2.0, 3.0])
def test_one_layer_cosine_matches_the_particles_and_tends_to_the_limit(gamma):
    n, rho = 48, 0.5
    x = sphere.equiangular(n, n, rho)
    v = attention.SelfAttention(gamma * math.log(n)).velocity(x)
    theta = v / v.norm(dim=-1, keepdim=True)
    assert (theta[0] @ theta[1]).item() == pytest.approx(equiangular.one_layer_cosine(n, gamma, rho), abs=1e-12)
    assert equiangular.one_layer_cosine(10 ** 14, gamma, rho) == pytest.approx(
        equiangular.long_context_limit(gamma, rho), abs=1e-5)


def test_caps_hold_their_points():
    w = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64)
    x = sphere.cap(200, w, 0.05, batch=2, seed=0)
    assert ((x @ (w / 3)) >= 0.95 - 1e-12).all()
    assert ((x @ (w / 3)) < 0.96).any()  # they fill the cap, not just its centre


# --- input validation --------------------------------------------------------------------------------

X = sphere.uniform(4, 2, seed=0)


@pytest.mark.parametrize("call,error,match", [
    (lambda: flow.integrate_adaptive(attention.SelfAttention(1.0), X, [0.0, 1.0], rtol=0.0), ValueError, "rtol"),
    (lambda: flow.integrate_adaptive(attention.SelfAttention(1.0), X, [1.0, 0.0]), ValueError, "t must be"),
    (lambda: flow.integrate_adaptive(attention.SelfAttention(1.0), X, [0.0, 1.0], merge=3), TypeError, "merge"),
    (lambda: flow.integrate_adaptive(attention.SelfAttention(1.0), X, [0.0, 1e3], max_steps=3), RuntimeError,
     "max_steps"),
    (lambda: flow.ArcLength("field"), TypeError, "field must be callable"),
    (lambda: clusters.snap(X, torch.tensor([3.0])), ValueError, "delta"),
    (lambda: clusters.labels(X, 0.0), ValueError, "delta"),
    (lambda: clusters.plateau([0.0, 1.0], torch.tensor([1, 1, 1]), 1), ValueError, "values must have shape"),
    (lambda: clusters.plateau([0.0, 1.0], torch.tensor([1, 1]), 0), ValueError, "k must be"),
    (lambda: clusters.first_time([0.0, 1.0], torch.tensor([1, 1])), TypeError, "boolean"),
    (lambda: clusters.atoms(X.expand(2, 4, 2)), ValueError, "one configuration"),
    (lambda: attention.RescaledUSA(0.0), ValueError, "beta must be > 0"),
    (lambda: attention.RescaledUSA(1.0).energy(X, weights=torch.ones(3)), ValueError, "weights"),
    (lambda: landscape.riemannian_hessian(lambda y: y.sum(-1), X), ValueError, "scalar"),
    (lambda: landscape.riemannian_hessian(lambda y: y.sum(), X, weights=-torch.ones(4)), ValueError, "weights"),
    (lambda: landscape.riemannian_gradient(3, X), TypeError, "f must be callable"),
    (lambda: circle.angles(sphere.uniform(3, 3)), ValueError, "d = 2"),
    (lambda: circle.growth_rates(-1.0, 2), ValueError, "beta"),
    (lambda: circle.growth_rates(1.0, [1.5]), ValueError, "k must be"),
    (lambda: circle.kuramoto_order(0.0), ValueError, "kappa"),
    (lambda: circle.langevin(torch.zeros(3), 0.0, -1.0, [0.0, 1.0]), ValueError, "kappa"),
    (lambda: circle.staircase_limit(torch.zeros(1)), ValueError, "n >= 2"),
    (lambda: circle.staircase_limit(torch.zeros(3, dtype=torch.float64)), ValueError, "distinct"),
    (lambda: equiangular.one_layer_cosine(10, 1.0, 1.0), ValueError, "rho"),
    (lambda: equiangular.long_context_limit(-1.0, 0.5), ValueError, "gamma"),
    (lambda: sphere.cap(3, torch.zeros(3), 0.1), ValueError, "center"),
    (lambda: sphere.cap(3, torch.ones(3), 3.0), ValueError, "eps"),
])
def test_bad_input_raises_a_named_error(call, error, match):
    with pytest.raises(error, match=match):
        call()
