"""nnips.meanfield: the loss expansion, the particle velocity, targets, kernels, the radial PDE, scalings."""

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nnips import meanfield as mf
from nnips import rates

UNITS = {"relu-bias": mf.Ridge("relu", bias=True), "tanh": mf.Ridge("tanh"), "rbf": mf.RBF(0.7),
         "piecewise": mf.Ridge(mf.PiecewiseLinear(0.5, 1.5, -2.5, 7.5))}


def problem(unit, n=7, d=3, M=11, batch=(), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((*batch, M, d), generator=g, dtype=torch.float64)
    f = torch.sin(x.sum(-1)) + x[..., 0] ** 2
    c, y = mf.initial(n, unit.dim(d), batch=batch, seed=seed + 1, c_std=1.3, y_std=0.9)
    return c, y, mf.Data(x, f)


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(sorted(UNITS)), n=st.integers(1, 9), d=st.integers(2, 4), M=st.integers(1, 12),
       batch=st.sampled_from([(), (2,), (2, 3)]), seed=st.integers(0, 1000))
def test_loss_expansion_is_exact(name, n, d, M, batch, seed):
    unit = UNITS[name]
    c, y, data = problem(unit, n, d, M, batch, seed)
    direct = mf.loss(c, y, unit, data)
    expanded = mf.loss_from_potentials(*mf.potentials(c, y, unit, data))
    assert direct.shape == batch
    assert torch.allclose(direct, expanded, rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(sorted(UNITS)), n=st.integers(1, 9), learn_c=st.booleans(),
       batch=st.sampled_from([(), (3,)]), seed=st.integers(0, 1000))
def test_velocity_is_minus_n_times_the_gradient_of_the_loss(name, n, learn_c, batch, seed):
    unit = UNITS[name]
    c, y, data = problem(unit, n, batch=batch, seed=seed)
    c.requires_grad_(True)
    y.requires_grad_(True)
    gc, gy = torch.autograd.grad(mf.loss(c, y, unit, data).sum(), (c, y))
    vc, vy = mf.velocity(c.detach(), y.detach(), unit, data, learn_c=learn_c)
    assert torch.allclose(vc, -n * gc if learn_c else torch.zeros_like(vc), atol=1e-12)
    assert torch.allclose(vy, -n * gy, atol=1e-12)


@pytest.mark.parametrize("name", sorted(UNITS))
def test_velocity_is_grad_F_minus_mean_grad_K(name):
    # theta_i' = grad F(theta_i) - (1/n) sum_j grad_1 K(theta_i, theta_j), by autograd on F and K.
    unit = UNITS[name]
    c, y, data = problem(unit, n=6)
    c.requires_grad_(True)
    y.requires_grad_(True)
    _, F, K = mf.potentials(c, y, unit, data)
    # d/dtheta_i of sum_i F_i is grad F(theta_i); of sum_ij K_ij it is 2 sum_j grad_1 K(theta_i, theta_j).
    gF = torch.autograd.grad(F.sum(), (c, y), retain_graph=True)
    gK = torch.autograd.grad(K.sum(), (c, y))
    vc, vy = mf.velocity(c.detach(), y.detach(), unit, data)
    assert torch.allclose(vc, gF[0] - gK[0] / (2 * 6), atol=1e-12)
    assert torch.allclose(vy, gF[1] - gK[1] / (2 * 6), atol=1e-12)


@pytest.mark.parametrize("name", sorted(UNITS))
def test_unit_jacobian_and_pullback_match_autograd(name):
    unit = UNITS[name]
    c, y, data = problem(unit, n=4, M=5)
    y.requires_grad_(True)
    phi = unit(data.x, y)
    jac = unit.jacobian(data.x, y.detach())
    g = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    (auto,) = torch.autograd.grad((phi * g).sum(), y)
    assert torch.allclose(unit.pullback(data.x, y.detach(), g), auto, atol=1e-12)
    assert torch.allclose((jac * g[..., None]).sum(0), auto, atol=1e-12)


def test_velocity_at_test_particles_is_the_field_of_the_network():
    unit = UNITS["tanh"]
    c, y, data = problem(unit, n=5)
    both = mf.velocity(c, y, unit, data, at=(c[:2], y[:2]))
    own = mf.velocity(c, y, unit, data)
    assert torch.allclose(both[0], own[0][:2]) and torch.allclose(both[1], own[1][:2])
    # test particles batched over seeds feel one network
    vc, vy = mf.velocity(c, y, unit, data, at=(c.expand(3, 5), y.expand(3, 5, -1)))
    assert vc.shape == (3, 5) and torch.allclose(vy[2], own[1])


def test_characteristics_of_the_network_own_particles_are_its_trajectories():
    unit = UNITS["tanh"]
    c, y, data = problem(unit, n=5)
    run = mf.train(c, y, unit, data, 0.1, 7)
    cc, yy = mf.characteristics(c, y, unit, data, (c, y), 0.1, 7)
    assert torch.allclose(cc, run.c[-1]) and torch.allclose(yy, run.y[-1])


def test_gd_step_with_a_dt_per_network():
    unit = UNITS["relu-bias"]
    c, y, data = problem(unit, batch=(3,))
    dt = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    cb, yb = mf.gd_step(c, y, unit, data, dt)
    for b in range(3):
        cs, ys = mf.gd_step(c[b], y[b], unit, mf.Data(data.x[b], data.f[b]), float(dt[b]))
        assert torch.allclose(cb[b], cs) and torch.allclose(yb[b], ys)


@pytest.mark.parametrize("name", ["relu-bias", "tanh", "rbf"])
def test_gradient_descent_dissipates_the_loss(name):
    # the discrete energy identity: with a small step, the loss never increases
    unit = UNITS[name]
    c, y, data = problem(unit, n=16, M=30, batch=(2,))
    run = mf.train(c, y, unit, data, 0.01, 300, record=range(0, 301, 10))
    assert bool((run.loss[1:] <= run.loss[:-1] + 1e-14).all())
    assert run.c.shape == (31, 2, 16) and run.t[-1] == pytest.approx(3.0)


def test_train_records_test_loss_and_accepts_fresh_batches():
    target = mf.ThreeSpin(3, seed=0)
    unit = UNITS["relu-bias"]
    c, y = mf.initial(8, 4, batch=2, c_std=0.0)
    test = target.sample(50, seed=9)
    run = mf.train(c, y, unit, lambda k: target.sample(20, batch=2, seed=k), 0.05, 10, record=[0, 5, 10],
                   test=test)
    assert run.loss is None and run.test.shape == (3, 2)
    assert torch.allclose(run.test[0], torch.full((2,), 0.5 * (test.f ** 2).mean().item(), dtype=torch.float64))


def test_three_spin_formula_oddness_and_sphere():
    f = mf.ThreeSpin(3, seed=2)
    x = f.sample(5, seed=1).x
    assert torch.allclose(x.norm(dim=-1), torch.full((5,), math.sqrt(3), dtype=torch.float64))
    loops = torch.tensor([sum(f.a[p, q, r] * xi[p] * xi[q] * xi[r] for p in range(3) for q in range(3)
                              for r in range(3)) / 3 for xi in x])
    assert torch.allclose(f(x), loops) and torch.allclose(f(-x), -f(x))


@pytest.mark.parametrize("d", [2, 5])
def test_three_spin_second_moment_against_monte_carlo(d):
    f = mf.ThreeSpin(d, seed=1)
    values = f.sample(200_000, seed=3).f ** 2
    error = values.std().item() / math.sqrt(values.numel())
    assert abs(values.mean().item() - f.second_moment()) < 4 * error


def test_resampling_matches_the_monte_carlo_formula():
    # E L[f_n] = L[f_mu] + V / (2n) exactly, for i.i.d. draws from the empirical measure mu
    unit = UNITS["tanh"]
    c, y, data = problem(unit, n=40, M=20)
    phi = c * unit(data.x, y)
    V = phi.var(-1, correction=0).mean().item()
    base = mf.loss(c, y, unit, data).item()
    for n in (4, 16):
        cs, ys = mf.resample(c, y, n, batch=20_000, seed=n)
        losses = mf.loss(cs, ys, unit, data)
        error = losses.std().item() / math.sqrt(losses.numel())
        assert abs(losses.mean().item() - (base + V / (2 * n))) < 4 * error


def lln_spread(ns, seeds=64, steps=10, dt=0.1):
    """Variance over seeds of the output of a network at one input after mean-field GD (the LLN page)."""
    unit = UNITS["tanh"]
    teacher = mf.Teacher(torch.tensor([2.0, -1.5, 1.0], dtype=torch.float64),
                         torch.tensor([[2.0, 0.0], [-1.0, 1.5], [0.5, -2.0]], dtype=torch.float64), unit,
                         inputs="gaussian")
    data = teacher.sample(50, seed=1)
    x0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    spread = []
    for n in ns:
        c, y = mf.initial(n, 2, batch=seeds, seed=n)
        run = mf.train(c, y, unit, data, dt, steps)
        spread.append(mf.output(run.c[-1], run.y[-1], unit, x0).var(0).item())
    return spread


def test_lln_variance_over_seeds_falls_like_one_over_n():
    ns = [8, 16, 32, 64, 128]
    slope = rates.power_law(ns, lln_spread(ns)).slope
    assert slope == pytest.approx(-1, abs=0.15)


def test_lln_needs_the_mean_field_learning_rate():
    # a learning rate that does not scale like 1/n (dt = n * eta with eta fixed) breaks the 1/n law, so the
    # tolerance of the test above separates the mean-field scaling from this one
    ns = [8, 16, 32, 64]
    unit = UNITS["tanh"]
    teacher = mf.Teacher(torch.tensor([2.0], dtype=torch.float64), torch.tensor([[2.0, 0.0]], dtype=torch.float64),
                         unit, inputs="gaussian")
    data = teacher.sample(50, seed=1)
    x0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    spread = []
    for n in ns:
        c, y = mf.initial(n, 2, batch=64, seed=n)
        run = mf.train(c, y, unit, data, 0.0125 * n, 20)  # eta = 0.0125 fixed: "standard" parametrisation
        spread.append(mf.output(run.c[-1], run.y[-1], unit, x0).var(0).item())
    assert abs(rates.power_law(ns, spread).slope + 1) > 0.5


def test_tangent_kernel_matches_the_autograd_jacobian():
    unit = UNITS["relu-bias"]
    c, y, data = problem(unit, n=5, M=6)

    def f(c, y):
        return mf.output(c, y, unit, data.x)

    jc, jy = torch.autograd.functional.jacobian(f, (c, y))
    J = torch.cat([jc, jy.flatten(-2)], dim=-1)
    assert torch.allclose(mf.tangent_kernel(c, y, unit, data.x), J @ J.T, atol=1e-12)


def test_linearized_fit_is_the_limit_of_gradient_descent_on_the_linear_model():
    unit = UNITS["tanh"]
    c, y, data = problem(unit, n=20, M=6)
    x_new = data.x + 0.1
    J = torch.cat([c[None, :, None] * unit.jacobian(data.x, y), unit(data.x, y)[..., None]], -1).flatten(-2)
    J_new = torch.cat([c[None, :, None] * unit.jacobian(x_new, y), unit(x_new, y)[..., None]], -1).flatten(-2)
    J, J_new = J / 20, J_new / 20
    theta = torch.zeros(J.shape[-1], dtype=torch.float64)
    residual0 = data.f - mf.output(c, y, unit, data.x)
    step = 1 / torch.linalg.eigvalsh(J @ J.T).max()
    for _ in range(20_000):
        theta = theta + step * J.T @ (residual0 - J @ theta)
    expected = mf.output(c, y, unit, x_new) + J_new @ theta
    assert torch.allclose(mf.linearized_fit(c, y, unit, data, x_new), expected, atol=1e-8)


def test_radial_moments_match_quadrature():
    law = mf.GaussianClasses(6, 0.2)
    sigma = mf.PiecewiseLinear(0.5, 1.5, -2.5, 7.5)
    d = 6
    density = lambda u: (1 - u * u) ** ((d - 3) / 2)  # noqa: E731
    norm = scipy.integrate.quad(density, -1, 1)[0]
    a = torch.tensor([0.3, 0.9, 2.0, 7.0], dtype=torch.float64)
    mean_sigma, slope_moment = law._moments(a, sigma)
    for k, ak in enumerate(a.tolist()):
        points = [t / ak for t in (0.5, 1.5) if t / ak < 1]
        m1 = scipy.integrate.quad(lambda u: float(sigma(torch.tensor(ak * u))) * density(u), -1, 1,
                                  points=points)[0] / norm
        m2 = scipy.integrate.quad(lambda u: float(sigma.derivative(torch.tensor(ak * u))) * u * density(u), -1, 1,
                                  points=points)[0] / norm
        assert mean_sigma[k].item() == pytest.approx(m1, abs=1e-7)
        assert slope_moment[k].item() == pytest.approx(m2, abs=1e-7)


def test_radial_risk_matches_a_wide_network():
    # a rotation-invariant cloud of neurons with the given radii has the radial risk (Monte Carlo)
    law = mf.GaussianClasses(8, 0.2)
    sigma = mf.PiecewiseLinear(0.5, 1.5, -2.5, 7.5)
    radii = torch.tensor([0.4, 0.9, 1.3], dtype=torch.float64)
    directions = torch.randn(3, 600, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = (radii[:, None, None] * directions / directions.norm(dim=-1, keepdim=True)).reshape(-1, 8)
    data = law.sample(20_000, batch=3, seed=1)  # three chunks keep the (M, n) features small
    f = mf.output(torch.ones(w.shape[0], dtype=torch.float64), w, mf.Ridge(sigma), data.x)
    values = ((data.f - f) ** 2).flatten()
    error = values.std().item() / math.sqrt(values.numel())
    # 1800 neurons: a bias of order 1/1800 on top of the Monte-Carlo error
    assert abs(values.mean().item() - law.radial_risk(radii, sigma).item()) < 4 * error + 5e-3


def test_the_origin_is_a_bad_stationary_point_of_the_radial_flow():
    law = mf.GaussianClasses(10, 0.2)
    sigma = mf.PiecewiseLinear(0.5, 1.5, -2.5, 7.5)
    run = law.radial_flow(torch.zeros(5, dtype=torch.float64), sigma, 0.1, 20)
    assert torch.equal(run.r[-1], torch.zeros(5, dtype=torch.float64))
    assert run.risk[-1].item() == pytest.approx(1 + 2.5 ** 2)  # E (y - s1)^2 with E y = 0


def test_radial_flow_follows_the_particle_system():
    # a wide network trained by GD on fresh Gaussian-class batches tracks the radial PDE
    law = mf.GaussianClasses(10, 0.2)
    sigma = mf.PiecewiseLinear(0.5, 1.5, -2.5, 7.5)
    pde = law.radial_flow(law.initial_radii(100, 0.8), sigma, 0.05, 40, record=[0, 20, 40], nodes=48)
    c, y = mf.initial(400, 10, c_value=1.0, y_std=0.8 / math.sqrt(10), seed=0)
    test = law.sample(20_000, seed=1)
    run = mf.train(c, y, mf.Ridge(sigma), lambda k: law.sample(500, seed=100 + k), 0.05, 40, record=[0, 20, 40],
                   test=test, learn_c=False)
    assert torch.allclose(2 * run.test, pde.risk, rtol=0.1)


def test_lazy_training_displacement_falls_like_tau_squared():
    # 2-homogeneous network, symmetric start: fitting O(1) data from scale tau moves the parameters by
    # O(tau^-1), that is O(tau^-2) relative to their size tau (the lazy-training page)
    unit = mf.Ridge("relu")
    a = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    teacher = mf.Teacher(torch.full((2,), 2.0, dtype=torch.float64), a, unit)
    train = teacher.sample(10, seed=1)
    taus = torch.tensor([4.0, 8.0, 16.0, 32.0], dtype=torch.float64)
    c, y = mf.initial(40, 3, batch=4, seed=3, symmetric=True)
    c, y = c * taus[:, None], y * taus[:, None, None]
    run = mf.train(c, y, unit, train, 0.5 / taus ** 2, 1500)
    assert bool((run.loss[-1] < 1e-3 * run.loss[0]).all())
    moved = mf.relative_displacement(c, y, run.c[-1], run.y[-1])
    assert rates.power_law(taus, moved).slope == pytest.approx(-2, abs=0.2)


def test_pair_covariance_recovers_a_common_factor():
    # h_i = g_i + eps * z with a common z per network: Cov(h_1, h_2) = eps^2 Var z, whatever the control
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(4000, 20, generator=gen, dtype=torch.float64)
    h = g + 0.3 * torch.randn(4000, 1, generator=gen, dtype=torch.float64)
    assert meanfield_cov(h, g) == pytest.approx(0.09, abs=0.01)
    assert meanfield_cov(h, None) == pytest.approx(0.09, abs=0.02)
    assert meanfield_cov(g, g) == 0.0


def meanfield_cov(h, g):
    return mf.pair_covariance(h, control=g).item()


def test_propagation_of_chaos_distance_to_the_characteristic():
    # the LLN page: each neuron is O(n^{-1/2}) from its McKean-Vlasov characteristic, correlations O(1/n)
    unit = UNITS["tanh"]
    teacher = mf.Teacher(torch.tensor([2.0, -1.5], dtype=torch.float64),
                         torch.tensor([[2.0, 0.0], [-1.0, 1.5]], dtype=torch.float64), unit, inputs="gaussian")
    data = teacher.sample(50, seed=1)
    reference = mf.initial(2048, 2, seed=99)
    widths, distance, scaled_corr = [8, 32, 128], [], []
    for n in widths:
        c, y = mf.initial(n, 2, batch=64, seed=n)
        run = mf.train(c, y, unit, data, 0.1, 10)
        cc, yy = mf.characteristics(*reference, unit, data, (c, y), 0.1, 10)
        distance.append(((run.c[-1] - cc) ** 2 + ((run.y[-1] - yy) ** 2).sum(-1)).mean().sqrt().item())
        scaled_corr.append(n * (mf.pair_covariance(run.c[-1], control=cc) / run.c[-1].var()).item())
    assert rates.power_law(widths, distance).slope == pytest.approx(-0.5, abs=0.1)
    assert max(abs(v) for v in scaled_corr) < 0.1


def test_trained_networks_beat_monte_carlo_samples_of_the_trained_measure():
    # the CLT page: D_n of GD-trained networks << V / (2n), and falls at least like 1/n
    target = mf.ThreeSpin(3, seed=0)
    unit = UNITS["relu-bias"]
    data = target.sample(200, seed=1)
    ref = mf.train(*mf.initial(512, 4, seed=7, c_std=0.5, y_std=0.5), unit, data, 0.1, 200)
    f_ref = mf.output(ref.c[-1], ref.y[-1], unit, data.x)
    V = (ref.c[-1] * unit(data.x, ref.y[-1])).var(-1, correction=0).mean().item()
    widths, trained = [8, 16, 32, 64], []
    for n in widths:
        run = mf.train(*mf.initial(n, 4, batch=4, seed=n, c_std=0.5, y_std=0.5), unit, data, 0.1, 200)
        trained.append((0.5 * (mf.output(run.c[-1], run.y[-1], unit, data.x) - f_ref) ** 2).mean().item())
    assert all(D < V / (2 * n) / 5 for D, n in zip(trained, widths))
    assert rates.power_law(widths, trained).slope < -0.9


def test_sgd_gap_to_the_radial_pde_shrinks_with_width():
    # the failures page: |R_N - R_PDE| decays at least like the N^{-1/2} bound
    law = mf.GaussianClasses(10, 0.2)
    sigma = mf.PiecewiseLinear(0.5, 1.5, -2.5, 7.5)
    pde = law.radial_flow(law.initial_radii(60, 0.8), sigma, 0.05, 60, nodes=40)
    test = law.sample(4000, seed=5)
    widths, gap = [20, 80], []
    for N in widths:
        c, w = mf.initial(N, 10, batch=4, seed=N, c_value=1.0, y_std=0.8 / math.sqrt(10))
        run = mf.train(c, w, mf.Ridge(sigma), lambda k, N=N: law.sample(400, batch=4, seed=1000 * N + k), 0.05, 60,
                       test=test, learn_c=False)
        gap.append((2 * run.test[-1] - pde.risk[-1]).abs().mean().item())
    assert rates.power_law(widths, gap).slope < -0.5


@pytest.mark.parametrize("call,error,match", [
    (lambda: mf.initial(0, 2), ValueError, "n must be"),
    (lambda: mf.initial(3, 2, symmetric=True), ValueError, "even n"),
    (lambda: mf.initial(4, 2, c_std=-1.0), ValueError, "c_std"),
    (lambda: mf.Ridge("sigmoid"), ValueError, "activation must be"),
    (lambda: mf.Ridge("relu", bias=1), TypeError, "bias"),
    (lambda: mf.RBF(0.0), ValueError, "alpha must be > 0"),
    (lambda: mf.PiecewiseLinear(1.0, 0.5, 0.0, 1.0), ValueError, "t1 must be < t2"),
    (lambda: mf.output(torch.ones(3), torch.ones(4, 2), mf.Ridge(), torch.ones(5, 2)), ValueError, "c must have"),
    (lambda: mf.output(torch.ones(3), torch.ones(3, 2), mf.Ridge(), torch.ones(5, 3)), ValueError, "dimension"),
    (lambda: mf.output(torch.ones(3), torch.ones(3, 2), "relu", torch.ones(5, 2)), TypeError, "unit must be"),
    (lambda: mf.output(torch.ones(3), torch.ones(3, 2).double(), mf.Ridge(), torch.ones(5, 2)), TypeError, "dtype"),
    (lambda: mf.loss(torch.ones(3), torch.ones(3, 2), mf.Ridge(), (torch.ones(5, 2), torch.ones(5))), TypeError,
     "meanfield.Data"),
    (lambda: mf.loss(torch.ones(3), torch.ones(3, 2), mf.Ridge(), mf.Data(torch.ones(5, 2), torch.ones(4))),
     ValueError, "data.f must have shape"),
    (lambda: mf.loss(torch.ones(3), torch.full((3, 2), math.nan), mf.Ridge(), mf.Data(torch.ones(5, 2), torch.ones(5))),
     ValueError, "non-finite"),
    (lambda: mf.train(torch.ones(3), torch.ones(3, 2), mf.Ridge(), mf.Data(torch.ones(5, 2), torch.ones(5)), 0.0, 3),
     ValueError, "dt must be > 0"),
    (lambda: mf.train(torch.ones(3), torch.ones(3, 2), mf.Ridge(), mf.Data(torch.ones(5, 2), torch.ones(5)), 0.1, 3,
                      record=[0, 5]), ValueError, "record"),
    (lambda: mf.train(torch.ones(3), torch.ones(3, 2), mf.Ridge(), mf.Data(torch.ones(5, 2), torch.ones(5)), 1e150, 5),
     FloatingPointError, "reduce dt"),
    (lambda: mf.velocity(torch.ones(3), torch.ones(3, 2), mf.Ridge(), mf.Data(torch.ones(5, 2), torch.ones(5)),
                         at=torch.ones(3)), TypeError, "at must be a pair"),
    (lambda: mf.resample(torch.ones(2, 3), torch.ones(2, 3, 1), 4), ValueError, "one network"),
    (lambda: mf.pair_covariance(torch.ones(5)), ValueError, "h must have shape"),
    (lambda: mf.pair_covariance(torch.ones(5, 3), control=torch.ones(5, 2)), ValueError, "control must have"),
    (lambda: mf.characteristics(torch.ones(3), torch.ones(3, 2), mf.Ridge(), mf.Data(torch.ones(5, 2), torch.ones(5)),
                                (torch.ones(3), torch.ones(3, 4)), 0.1, 2), ValueError, "test particles"),
    (lambda: mf.ThreeSpin(1), ValueError, "d must be"),
    (lambda: mf.ThreeSpin(3)(torch.ones(4, 2)), ValueError, "shape"),
    (lambda: mf.Teacher(torch.ones(2), torch.ones(2, 3), mf.Ridge(), inputs="cube"), ValueError, "inputs"),
    (lambda: mf.GaussianClasses(4, 1.5), ValueError, "delta"),
    (lambda: mf.GaussianClasses(4, 0.2).radial_flow(torch.ones(3), mf.RELU, 0.1, 2), TypeError, "PiecewiseLinear"),
    (lambda: mf.GaussianClasses(4, 0.2).radial_risk(-torch.ones(3), mf.PiecewiseLinear(0, 1, 0, 1)), ValueError,
     "radii"),
])
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_ks_of_rescaled_fluctuations_is_scale_free():
    # CLT at t = 0: sqrt(n) (f_n(x0) - E f) has one law across n (a KS test does not separate them)
    unit = UNITS["tanh"]
    x0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    samples = []
    for n in (16, 256):
        c, y = mf.initial(n, 2, batch=400, seed=n)
        samples.append((math.sqrt(n) * mf.output(c, y, unit, x0)[:, 0]).numpy())
    assert scipy.stats.ks_2samp(*samples).pvalue > 0.01
    assert np.std(samples[0]) == pytest.approx(np.std(samples[1]), rel=0.2)


def test_the_scaling_experiment_runs_small_and_resumes(tmp_path, monkeypatch):
    from nnips.experiments import meanfield_scaling, run

    small = ["--d", "3", "--M", "60", "--test", "60", "--widths", "8", "16", "--reference", "64", "--seeds", "2",
             "--draws", "4", "--steps", "20", "--dt", "0.1", "--out", str(tmp_path)]
    summary = np.load(run("meanfield-scaling", small))
    assert summary["widths"].tolist() == [8.0, 16.0] and summary["trained"].shape == (2,)
    assert (tmp_path / "meanfield-scaling" / "meanfield-scaling.png").exists()

    def refuse(*args, **kwargs):
        raise AssertionError("a saved unit was recomputed")

    monkeypatch.setattr(meanfield_scaling.MeanfieldScaling, "run_unit", refuse)
    run("meanfield-scaling", small)
