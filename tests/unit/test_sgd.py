"""SGD as a noisy particle system (Chapter 7): mini-batch noise, temperature, ML-type noise, modified flows, dropout."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nnips import meanfield as mf
from nnips import rates

UNITS = {"relu-bias": mf.Ridge("relu", bias=True), "tanh": mf.Ridge("tanh"), "tanh-bias": mf.Ridge("tanh", bias=True),
         "rbf": mf.RBF(0.7)}


def problem(unit, n=5, d=3, M=7, batch=(), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((M, d), generator=g, dtype=torch.float64)
    f = torch.sin(x.sum(-1)) + x[..., 0] ** 2
    c, y = mf.initial(n, unit.dim(d), batch=batch, seed=seed + 1, c_std=1.3, y_std=0.9)
    return c, y, mf.Data(x, f)


# ---- mini-batch noise ------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(sorted(UNITS)), n=st.integers(1, 6), M=st.integers(1, 9), learn_c=st.booleans(),
       batch=st.sampled_from([(), (2,)]), seed=st.integers(0, 500))
def test_per_sample_velocities_average_to_the_velocity(name, n, M, learn_c, batch, seed):
    unit = UNITS[name]
    c, y, data = problem(unit, n=n, M=M, batch=batch, seed=seed)
    vc, vy = mf.per_sample_velocity(c, y, unit, data, learn_c)
    wc, wy = mf.velocity(c, y, unit, data, learn_c)
    assert vc.shape == (*batch, M, n) and vy.shape == (*batch, M, n, y.shape[-1])
    assert torch.allclose(vc.mean(-2), wc, atol=1e-12) and torch.allclose(vy.mean(-3), wy, atol=1e-12)
    # one point alone: the velocity on the data set {x_m}
    one = mf.velocity(c, y, unit, mf.Data(data.x[:1], data.f[:1]), learn_c)
    assert torch.allclose(vc[..., 0, :], one[0], atol=1e-12) and torch.allclose(vy[..., 0, :, :], one[1], atol=1e-12)


@pytest.mark.parametrize("name", ["relu-bias", "rbf"])
@pytest.mark.parametrize("P", [1, 2, 3])
def test_noise_covariance_is_exact_over_all_minibatches(name, P):
    # enumerate the M^P equally likely ordered batches drawn with replacement
    unit = UNITS[name]
    c, y, data = problem(unit, n=3, M=4)
    velocities = []
    for batch in itertools.product(range(4), repeat=P):
        index = torch.tensor(batch)
        velocities.append(mf.flatten(*mf.velocity(c, y, unit, mf.Data(data.x[index], data.f[index]))))
    v = torch.stack(velocities)
    centred = v - v.mean(0)
    exact = centred.T @ centred / len(v)
    assert torch.allclose(v.mean(0), mf.flatten(*mf.velocity(c, y, unit, data)), atol=1e-12)
    assert torch.allclose(mf.noise_covariance(c, y, unit, data, P), exact, atol=1e-12)


def test_noise_vanishes_when_the_network_fits_the_data():
    # noise of machine-learning type: a student equal to its teacher gets exactly zero noise
    unit = UNITS["tanh-bias"]
    c, y = mf.initial(4, 4, seed=3)
    teacher = mf.Teacher(c, y, unit, inputs="gaussian")
    data = teacher.sample(30, seed=1)
    assert mf.noise_covariance(c, y, unit, data, 1).abs().max() < 1e-14
    c2, y2 = mf.initial(4, 4, seed=4)
    assert mf.noise_covariance(c2, y2, unit, data, 1).trace() > 1e-3


def test_minibatches_are_reproducible_with_replacement_and_fresh_from_targets():
    data = mf.Data(torch.arange(6.0, dtype=torch.float64)[:, None], torch.arange(6.0, dtype=torch.float64))
    batches = mf.MiniBatches(data, 4, batch=(2, 3), seed=5)
    a, b = batches(3), mf.MiniBatches(data, 4, batch=(2, 3), seed=5)(3)
    assert a.x.shape == (2, 3, 4, 1) and torch.equal(a.x, b.x) and torch.equal(a.x[..., 0], a.f)
    assert not torch.equal(batches(3).x, batches(4).x)
    counts = torch.bincount(mf.MiniBatches(data, 50, batch=400, seed=1)(0).f.long().flatten(), minlength=6)
    assert counts.min() > 0.9 * 20000 / 6 and counts.max() < 1.1 * 20000 / 6
    fresh = mf.MiniBatches(mf.ThreeSpin(3, seed=0), 5, batch=2, seed=1)(0)
    assert fresh.x.shape == (2, 5, 3)
    assert mf.step_seed(1, 2) == mf.step_seed(1, 2) != mf.step_seed(1, 3)


def test_diffusion_step_has_the_mean_and_covariance_of_the_sgd_step():
    unit = UNITS["tanh-bias"]
    c, y, data = problem(unit, n=3, M=6)
    R, dt, P = 40000, 0.1, 2
    cs, ys = mf.DiffusionStep(P, seed=0)(c.expand(R, 3), y.expand(R, 3, 4), unit, data, dt)
    steps = (mf.flatten(cs, ys) - mf.flatten(c, y)) / dt
    v = mf.flatten(*mf.velocity(c, y, unit, data))
    sigma = mf.noise_covariance(c, y, unit, data, P)
    centred = steps - v
    measured = centred.T @ centred / R
    assert (steps.mean(0) - v).abs().max() < 4 * (sigma.diagonal() / R).sqrt().max()
    assert (measured - sigma).norm() < 0.05 * sigma.norm()


def test_same_temperature_gives_the_same_excess_loss():
    # the first page's check, small: SGD at (dt, P) and (dt/2, P/2), and the SDE, agree
    target = mf.ThreeSpin(3, seed=0)
    unit = UNITS["tanh-bias"]
    data = target.sample(100, seed=1)
    c, y = mf.initial(16, 4, seed=2, c_std=0.5, y_std=0.5)
    runs = [mf.excess_loss(c, y, unit, data, 0.25, 40, 24, P=8, seed=1),
            mf.excess_loss(c, y, unit, data, 0.125, 80, 24, P=4, seed=2),
            mf.excess_loss(c, y, unit, data, 0.25, 40, 24, step=mf.DiffusionStep(8, seed=3))]
    values = [r.excess for r in runs]
    spread = max(values) - min(values)
    assert min(values) > 0 and spread < 4 * max(r.stderr for r in runs) + 0.15 * max(values)


# ---- temperature -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def three_spin():
    target = mf.ThreeSpin(5, seed=0)
    return mf.Ridge("tanh", bias=True), target.sample(200, seed=1)


def test_excess_loss_is_linear_in_the_temperature(three_spin):
    unit, data = three_spin
    c, y = mf.initial(32, 6, seed=32, c_std=0.5, y_std=0.5)
    Ps = [8, 16, 32, 64]
    excess = [mf.excess_loss(c, y, unit, data, 0.25, 200, 16, P=P, seed=P).excess for P in Ps]
    assert rates.power_law([0.25 / P for P in Ps], excess).slope == pytest.approx(1, abs=0.2)


def test_excess_loss_is_flat_in_n_at_fixed_temperature_and_falls_like_one_over_n_at_a_over_n(three_spin):
    unit, data = three_spin
    widths = [32, 64, 128]
    fixed, scaled = [], []
    for n in widths:
        c, y = mf.initial(n, 6, seed=n, c_std=0.5, y_std=0.5)
        fixed.append(mf.excess_loss(c, y, unit, data, 0.25, 200, 16, P=8, seed=n).excess)
        scaled.append(mf.excess_loss(c, y, unit, data, 0.25, 200, 16, P=n // 4, seed=n + 1).excess)
    assert -0.3 < rates.power_law(widths, fixed).slope < 0.15
    assert rates.power_law(widths, scaled).slope == pytest.approx(-1, abs=0.3)


# ---- dropout ---------------------------------------------------------------------------------------

def all_masks(n, rate):
    masks = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)
    kept = masks.sum(1)
    return masks, (1 - rate) ** kept * rate ** (n - kept)


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(sorted(UNITS)), n=st.integers(1, 6), rate=st.floats(0.0, 0.9),
       seed=st.integers(0, 500))
def test_mean_dropout_loss_is_loss_plus_penalty(name, n, rate, seed):
    unit = UNITS[name]
    c, y, data = problem(unit, n=n, seed=seed)
    masks, weights = all_masks(n, rate)
    mean = (weights * mf.dropout_loss(c, y, unit, data, masks, rate)).sum()
    assert torch.allclose(mean, mf.loss(c, y, unit, data) + mf.dropout_penalty(c, y, unit, data, rate),
                          rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["relu-bias", "tanh", "rbf"])
@pytest.mark.parametrize("learn_c", [True, False])
def test_mean_dropout_step_is_the_penalty_step(name, learn_c):
    unit = UNITS[name]
    c, y, data = problem(unit, n=5)
    rate, dt = 0.3, 0.2
    masks, weights = all_masks(5, rate)
    dropout = mf.DropoutStep(rate)
    cs, ys = dropout.with_mask(c, y, unit, data, dt, masks, learn_c)
    cp, yp = mf.PenaltyStep(rate)(c, y, unit, data, dt, learn_c)
    assert torch.allclose((weights[:, None] * cs).sum(0), cp, atol=1e-12)
    assert torch.allclose((weights[:, None, None] * ys).sum(0), yp, atol=1e-12)
    # and the penalty step is the gradient step on L + R_p (velocity -n grad)
    c_, y_ = c.clone().requires_grad_(True), y.clone().requires_grad_(True)
    total = mf.loss(c_, y_, unit, data) + mf.dropout_penalty(c_, y_, unit, data, rate)
    gc, gy = torch.autograd.grad(total, (c_, y_))
    assert torch.allclose(yp, y - dt * 5 * gy, atol=1e-12)
    assert torch.allclose(cp, c - dt * 5 * gc if learn_c else c, atol=1e-12)


def test_dropped_units_do_not_move_and_rate_zero_is_gradient_descent():
    unit = UNITS["tanh-bias"]
    c, y, data = problem(unit, n=6, batch=(3,))
    keep = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    cs, ys = mf.DropoutStep(0.5).with_mask(c, y, unit, data, 0.1, keep)
    assert torch.equal(cs[..., keep == 0], c[..., keep == 0]) and torch.equal(ys[..., keep == 0, :], y[..., keep == 0, :])
    c0, y0 = mf.DropoutStep(0.0, seed=3)(c, y, unit, data, 0.1)
    g0, h0 = mf.gd_step(c, y, unit, data, 0.1)
    assert torch.allclose(c0, g0, atol=1e-14) and torch.allclose(y0, h0, atol=1e-14)


def test_dropout_penalty_and_fluctuations_scale_like_one_over_n(three_spin):
    # the dropout page, small: the penalty's excess ~ 1/n, the variance over masks ~ (p/q)/n
    unit, data = three_spin
    data = mf.Data(data.x[:100], data.f[:100])
    widths, penalty, spread = [16, 32, 64], [], []
    for n in widths:
        c, y = mf.initial(n, 6, seed=n, c_std=0.5, y_std=0.5)
        gd = mf.train(c, y, unit, data, 0.25, 60).loss[-1]
        penalty.append((mf.train(c, y, unit, data, 0.25, 60, step=mf.PenaltyStep(0.2)).loss[-1] - gd).item())
        run = mf.excess_loss(c, y, unit, data, 0.25, 60, 32, step=mf.DropoutStep(0.2, seed=n))
        spread.append(run.noisy.var(1).mean().item())
    assert rates.power_law(widths, penalty).slope == pytest.approx(-1, abs=0.25)
    assert rates.power_law(widths, spread).slope == pytest.approx(-1, abs=0.4)


# ---- linear least squares: ML-type noise -------------------------------------------------------------

def interpolation(N=8, p=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, p, generator=g, dtype=torch.float64) / math.sqrt(p)
    return mf.LinearRegression(x, torch.randn(N, generator=g, dtype=torch.float64))


def test_constant_step_sgd_converges_linearly_at_the_exact_mean_square_rate():
    problem_ = interpolation()
    eta = 1 / float((problem_.x ** 2).sum(1).max())
    run = problem_.sgd(torch.zeros(64, 30, dtype=torch.float64), eta, 1000, record=range(0, 1001, 20), seed=1)
    assert run.loss[-1].max() < 1e-28
    rho = problem_.mean_square_rate(eta)
    k = run.step.double()
    alive = run.loss.mean(1) > 1e-26
    assert rates.exponential(k[alive], run.loss.mean(1)[alive]).slope == pytest.approx(math.log(rho), rel=0.1)
    # it converges to the minimiser closest to the start (here the minimum-norm one)
    assert (run.theta[-1] - problem_.solution(torch.zeros(30, dtype=torch.float64))).abs().max() < 1e-12


def test_mean_square_rate_and_additive_floor_in_one_dimension():
    one = mf.LinearRegression(torch.tensor([[1.0]], dtype=torch.float64), torch.tensor([2.0], dtype=torch.float64))
    assert one.mean_square_rate(0.3) == pytest.approx(0.7 ** 2, rel=1e-12)
    assert one.additive_floor(0.3, 0.5) == pytest.approx(0.3 * 0.25 / (2 * 1.7), rel=1e-12)
    # the floor is the limit of the exact moment recursion of gradient descent with additive noise
    problem_ = interpolation(N=4, p=6)
    sol = problem_.solution(torch.zeros(6, dtype=torch.float64))
    late = problem_.sgd_moments(sol, sol[:, None] * sol[None, :], 0.5, 20000, P=None, additive=0.3)
    loss = 0.5 * torch.trace(problem_.H @ late.second) - problem_.b @ late.mean + 0.5 * (problem_.y ** 2).mean()
    assert loss.item() == pytest.approx(problem_.additive_floor(0.5, 0.3), rel=1e-9)


def test_additive_noise_stalls_at_a_floor_proportional_to_the_step():
    problem_ = interpolation()
    s = 0.1
    start = problem_.solution(torch.zeros(256, 30, dtype=torch.float64))
    etas, floors = [0.4, 0.2, 0.1], []
    for eta in etas:
        steps = int(150 / eta)
        run = problem_.sgd(start, eta, steps, P=None, additive=s, record=range(steps // 2, steps + 1, 10), seed=2)
        floors.append(run.loss.mean().item())
        assert run.loss.mean().item() == pytest.approx(problem_.additive_floor(eta, s), rel=0.1)
    assert rates.power_law(etas, floors).slope == pytest.approx(1, abs=0.1)


# ---- stochastic modified flows -----------------------------------------------------------------------

def regression(M=5, p=2, seed=3):
    g = torch.Generator().manual_seed(seed)
    return mf.LinearRegression(torch.randn(M, p, generator=g, dtype=torch.float64),
                               torch.randn(M, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("P", [1, 2])
def test_sgd_moments_are_exact_over_all_sample_paths(P):
    problem_ = regression(M=3)
    m0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    S0 = m0[:, None] * m0[None, :] + 0.1 * torch.eye(2, dtype=torch.float64)
    eta, k = 0.3, 3
    total_m, total_S, count = 0, 0, 0
    # the start has covariance 0.1 I: average over the two-point starts m0 +- sqrt(0.1) e_j (exact moments)
    starts = [m0 + sign * math.sqrt(0.2) * e for sign in (1, -1) for e in torch.eye(2, dtype=torch.float64)]
    for start in starts:
        for seq in itertools.product(range(3), repeat=k * P):
            theta = start.clone()
            for j in range(k):
                index = torch.tensor(seq[j * P:(j + 1) * P])
                theta = theta - eta * (problem_.x[index].T @ (problem_.x[index] @ theta - problem_.y[index])) / P
            total_m, total_S, count = total_m + theta, total_S + theta[:, None] * theta[None, :], count + 1
    moments = problem_.sgd_moments(m0, S0, eta, k, P=P)
    assert torch.allclose(moments.mean, total_m / count, atol=1e-13)
    assert torch.allclose(moments.second, total_S / count, atol=1e-13)


@pytest.mark.parametrize("modified", [False, True])
def test_sde_moments_match_the_ornstein_uhlenbeck_closed_form(modified):
    # x_m = 1: g_m = theta - y_m, so Sigma = Var(y) is constant and the SDE is an OU process
    y = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    problem_ = mf.LinearRegression(torch.ones(3, 1, dtype=torch.float64), y)
    eta, t, P, m0, v0 = 0.2, 1.7, 2, 3.0, 0.4
    B = 1 + eta / 2 if modified else 1.0
    mean = y.mean() + (m0 - y.mean()) * math.exp(-B * t)
    var = v0 * math.exp(-2 * B * t) + eta * y.var(correction=0) / (2 * B * P) * (1 - math.exp(-2 * B * t))
    out = problem_.sde_moments(torch.tensor([m0], dtype=torch.float64), torch.tensor([[v0 + m0 ** 2]], dtype=torch.float64),
                               eta, t, P=P, modified=modified)
    assert out.mean.item() == pytest.approx(mean.item(), rel=1e-12)
    assert (out.second - out.mean ** 2).item() == pytest.approx(var.item(), rel=1e-10)


def test_sgd_and_sde_paths_match_their_exact_moments():
    problem_ = regression()
    m0 = torch.tensor([1.5, -1.0], dtype=torch.float64)
    start = m0.expand(20000, 2)
    eta = 0.125
    sgd = problem_.sgd(start, eta, 8, seed=4).theta[-1]
    exact = problem_.sgd_moments(m0, m0[:, None] * m0[None, :], eta, 8)
    sde = problem_.sde(start, eta, 1.0, eta / 8, modified=True, seed=5)
    smf = problem_.sde_moments(m0, m0[:, None] * m0[None, :], eta, 1.0, modified=True)
    for paths, moments in ((sgd, exact), (sde, smf)):
        err = (paths.mean(0) - moments.mean).abs()
        assert (err < 4 * paths.std(0) / math.sqrt(20000)).all()
        second = (paths[:, :, None] * paths[:, None, :]).mean(0)
        assert torch.allclose(second, moments.second, rtol=0.05, atol=0.01)


def weak_errors(problem_, etas):
    m0 = torch.tensor([2.0, -1.0], dtype=torch.float64)
    S0 = m0[:, None] * m0[None, :]

    def stats(m):  # test functions: theta_1 and |theta|^2
        return torch.stack([m.mean[0], m.second.trace()])

    plain, modified = [], []
    for eta in etas:
        sgd = stats(problem_.sgd_moments(m0, S0, eta, round(1 / eta)))
        plain.append((sgd - stats(problem_.sde_moments(m0, S0, eta, 1.0))).abs())
        modified.append((sgd - stats(problem_.sde_moments(m0, S0, eta, 1.0, modified=True))).abs())
    return torch.stack(plain), torch.stack(modified)


def test_weak_orders_one_for_the_sde_and_two_for_the_modified_flow():
    etas = [2.0 ** -j for j in range(4, 10)]
    plain, modified = weak_errors(regression(), etas)
    for k in range(2):
        assert rates.power_law(etas, plain[:, k]).slope == pytest.approx(1, abs=0.1)
        assert rates.power_law(etas, modified[:, k]).slope == pytest.approx(2, abs=0.1)


# ---- input checks --------------------------------------------------------------------------------------

@pytest.mark.parametrize("call,error,match", [
    (lambda: mf.noise_covariance(torch.ones(2), torch.ones(2, 1), mf.Ridge(), mf.Data(torch.ones(3, 1), torch.ones(3)),
                                 0), ValueError, "P must be"),
    (lambda: mf.MiniBatches(mf.Data(torch.ones(2, 3, 1), torch.ones(2, 3)), 2), ValueError, "source must be"),
    (lambda: mf.MiniBatches([1, 2], 2), TypeError, "source must be"),
    (lambda: mf.MiniBatches(mf.ThreeSpin(3), 0), ValueError, "P must be"),
    (lambda: mf.MiniBatches(mf.ThreeSpin(3), 2)(-1), ValueError, "k must be"),
    (lambda: mf.DiffusionStep(0.0), ValueError, "P must be > 0"),
    (lambda: mf.DropoutStep(1.0), ValueError, "rate must lie"),
    (lambda: mf.PenaltyStep(-0.1), ValueError, "rate must be"),
    (lambda: mf.DropoutStep(0.5).with_mask(torch.ones(2), torch.ones(2, 1), mf.Ridge(),
                                           mf.Data(torch.ones(3, 1), torch.ones(3)), 0.1, torch.tensor([2.0, 1.0])),
     ValueError, "keep must"),
    (lambda: mf.dropout_loss(torch.ones(2), torch.ones(2, 1), mf.Ridge(), mf.Data(torch.ones(3, 1), torch.ones(3)),
                             torch.tensor([0.5, 1.0]), 0.2), ValueError, "mask must"),
    (lambda: mf.excess_loss(torch.ones(2, 2), torch.ones(2, 2, 1), mf.Ridge(), mf.Data(torch.ones(3, 1), torch.ones(3)),
                            0.1, 5, 2, P=1), ValueError, "one network"),
    (lambda: mf.excess_loss(torch.ones(2), torch.ones(2, 1), mf.Ridge(), mf.Data(torch.ones(3, 1), torch.ones(3)),
                            0.1, 5, 2), ValueError, "exactly one of P"),
    (lambda: mf.LinearRegression(torch.ones(3, 2), torch.ones(2)), ValueError, "y shape"),
    (lambda: mf.LinearRegression(torch.ones(3, 2), torch.ones(3)).loss(torch.ones(3)), ValueError, "theta must"),
    (lambda: mf.LinearRegression(torch.ones(3, 2), torch.ones(3)).sgd(torch.ones(2), 0.0, 3), ValueError, "eta"),
    (lambda: mf.LinearRegression(torch.ones(3, 2), torch.ones(3)).sde(torch.ones(2), 0.1, 1.0, 0.3), ValueError,
     "integer"),
    (lambda: mf.LinearRegression(torch.ones(3, 2), torch.ones(3)).sde_moments(torch.ones(2), torch.ones(3, 3), 0.1,
                                                                               1.0), ValueError, "second shape"),
    (lambda: mf.LinearRegression(torch.eye(2), torch.ones(2)).additive_floor(5.0, 0.1), ValueError, "< 2"),
])
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_the_temperature_experiment_runs_small_and_resumes(tmp_path, monkeypatch):
    from nnips.experiments import run, sgd_temperature

    small = ["--d", "3", "--M", "60", "--widths", "8", "16", "--fixed-P", "4", "--a", "2", "--temperatures-P", "2",
             "4", "--n-fixed", "8", "--seeds", "2", "--steps", "20", "--out", str(tmp_path)]
    summary = np.load(run("sgd-temperature", small))
    assert summary["fixed_excess"].shape == (2,) and np.isfinite(summary["slope_temperature"])
    assert (tmp_path / "sgd-temperature" / "sgd-temperature.png").exists()

    def refuse(*args, **kwargs):
        raise AssertionError("a saved unit was recomputed")

    monkeypatch.setattr(sgd_temperature.SGDTemperature, "run_unit", refuse)
    run("sgd-temperature", small)
