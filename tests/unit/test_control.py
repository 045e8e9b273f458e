import math

import pytest
import scipy.linalg
import torch

from nnips import control, rates


def linear_theta(M):
    """sigma = identity with W A = M and b = 0 gives the linear ODE x' = M x."""
    d = M.shape[0]
    return lambda t: (M, torch.eye(d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64))


def test_linear_flow_map_is_the_matrix_exponential():
    M = torch.tensor([[0.0, 1.0], [-2.0, -0.3]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0], [0.3, -0.5]], dtype=torch.float64)
    xs = control.flow_map(linear_theta(M), x, [0.0, 1.0, 2.5], activation=lambda z: z)
    for k, t in enumerate([0.0, 1.0, 2.5]):
        expected = x @ torch.from_numpy(scipy.linalg.expm(t * M.numpy())).T
        torch.testing.assert_close(xs[k], expected, atol=1e-9, rtol=0)


def test_linear_resnet_is_a_matrix_power():
    M = torch.tensor([[0.0, 1.0], [-2.0, -0.3]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    L, T = 7, 1.4
    net = control.ResNet.from_function(linear_theta(M), T, L, activation=lambda z: z)
    step = torch.eye(2, dtype=torch.float64) + (T / L) * M
    torch.testing.assert_close(net(x), x @ torch.linalg.matrix_power(step, L).T)


def smooth_theta(seed, d=2, m=6):
    g = torch.Generator().manual_seed(seed)
    W0, W1 = torch.randn(2, d, m, generator=g, dtype=torch.float64)
    A0, A1 = torch.randn(2, m, d, generator=g, dtype=torch.float64)
    b0, b1 = torch.randn(2, m, generator=g, dtype=torch.float64)
    return lambda t: (W0 * math.cos(t) + W1 * math.sin(t), A0 * math.cos(t) + A1 * math.sin(t),
                      b0 * math.cos(t) + b1 * math.sin(t))


def test_resnet_converges_to_the_flow_map_at_order_one():
    theta = smooth_theta(1)
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ref = control.flow_map(theta, x, [0.0, 1.0])[-1]
    layers = [16, 32, 64, 128]
    errors = [(control.ResNet.from_function(theta, 1.0, L)(x) - ref).abs().max().item() for L in layers]
    assert rates.power_law(layers, errors).slope == pytest.approx(-1, abs=0.1)


def test_resnet_states_and_gradients():
    net = control.ResNet.from_function(smooth_theta(0), 2.0, 5)
    x = torch.zeros(3, 2, dtype=torch.float64)
    states = net(x, return_states=True)
    assert states.shape == (6, 3, 2) and torch.equal(states[0], x)
    net(x).sum().backward()
    assert net.W.grad is not None and net.W.grad.shape == net.W.shape


def test_winding_numbers():
    angles = torch.linspace(0, 2 * math.pi, 50, dtype=torch.float64)[:-1]
    circle = torch.stack([angles.cos(), angles.sin()], -1)
    points = torch.tensor([[0.0, 0.0], [0.5, 0.2], [2.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(control.winding_number(circle, points),
                               torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64), atol=1e-12, rtol=0)
    assert control.winding_number(circle.flip(0), points[:1]).item() == pytest.approx(-1)


def test_bad_input():
    with pytest.raises(ValueError, match="A must be"):
        control.ResNet(torch.ones(3, 2, 4), torch.ones(3, 2, 4), torch.ones(3, 4), T=1.0)
    with pytest.raises(ValueError, match="T must be > 0"):
        control.ResNet(torch.ones(3, 2, 4), torch.ones(3, 4, 2), torch.ones(3, 4), T=0.0)
    with pytest.raises(ValueError, match="L must be"):
        control.ResNet.from_function(smooth_theta(0), 1.0, 0)
    with pytest.raises(ValueError, match="curve must have shape"):
        control.winding_number(torch.ones(2, 2), torch.ones(1, 2))


# --- Chapter 5: the linear-quadratic turnpike -------------------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=12, deadline=None)
@given(a=st.floats(-2, 2), q=st.floats(0.2, 4), z=st.floats(-2, 2), x0=st.floats(-2, 2), T=st.floats(0.5, 30))
def test_lq_closed_form_matches_the_riccati_solution(a, q, z, x0, T):
    lq = control.ScalarLQ(a, z, x0, T, q=q)
    t = torch.linspace(0.0, T, 101, dtype=torch.float64)
    x, u = lq.optimal(t)
    # The backward-then-forward Riccati sweep amplifies the solver's error for unstable a and long T
    # (tight tolerances keep the comparison meaningful on every drawn case)
    x_ric, u_ric = lq.riccati(t, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(x, x_ric, atol=1e-7, rtol=0)
    torch.testing.assert_close(u, u_ric, atol=1e-7, rtol=0)


def test_lq_pair_solves_the_state_equation_and_the_boundary_conditions():
    lq = control.ScalarLQ(a=0.7, z=-1.0, x0=2.0, T=6.0, q=2.0)
    t = torch.linspace(0.0, lq.T, 6001, dtype=torch.float64)
    x, u = lq.optimal(t)
    assert x[0].item() == pytest.approx(lq.x0, abs=1e-12)
    assert u[-1].item() == pytest.approx(0.0, abs=1e-12)  # lambda(T) = 0 and u = -lambda
    dxdt = (x[2:] - x[:-2]) / (t[2:] - t[:-2])
    torch.testing.assert_close(dxdt, lq.a * x[1:-1] + u[1:-1], atol=1e-5, rtol=0)


def test_lq_static_optimum_minimises_the_static_cost():
    lq = control.ScalarLQ(a=1.3, z=2.0, x0=0.0, T=1.0, q=0.5)
    x_bar, u_bar = lq.static()
    xs = torch.linspace(x_bar - 1, x_bar + 1, 2001, dtype=torch.float64)
    costs = (lq.a * xs) ** 2 + lq.q * (xs - lq.z) ** 2
    assert xs[costs.argmin()].item() == pytest.approx(x_bar, abs=1e-3)
    assert u_bar == pytest.approx(-lq.a * x_bar)


def test_lq_optimal_control_beats_perturbed_controls():
    lq = control.ScalarLQ(a=1.0, z=2.0, x0=0.0, T=3.0)
    t = torch.linspace(0.0, lq.T, 3001, dtype=torch.float64)
    x, u = lq.optimal(t)
    best = lq.cost(t, x, u)
    for k in range(1, 4):
        v = 0.1 * torch.sin(k * t)
        # The state driven by u + v is x + xi, with xi' = a xi + v, xi(0) = 0 (explicit Euler is enough).
        xi = torch.zeros_like(t)
        for j in range(len(t) - 1):
            xi[j + 1] = xi[j] + (t[j + 1] - t[j]) * (lq.a * xi[j] + v[j])
        assert lq.cost(t, x + xi, u + v) > best


def test_lq_rate_is_sqrt_a2_plus_1():
    """The book's check (turnpike/lq): fitted rates near t = 0 and t = T, a = 1, T = 10, within 2 %."""
    lq = control.ScalarLQ(a=1.0, z=2.0, x0=0.0, T=10.0)
    t = torch.linspace(0.0, lq.T, 1001, dtype=torch.float64)
    gap = (lq.optimal(t)[0] - lq.static()[0]).abs()
    start, end = t <= lq.T / 4, t >= 3 * lq.T / 4
    assert -rates.exponential(t[start], gap[start]).slope == pytest.approx(math.sqrt(2), rel=0.02)
    assert rates.exponential(t[end], gap[end]).slope == pytest.approx(math.sqrt(2), rel=0.02)


def test_lq_average_cost_tends_to_the_static_cost():
    J_bar = None
    offsets = []
    for T in (20.0, 40.0):
        lq = control.ScalarLQ(a=1.0, z=2.0, x0=0.0, T=T)
        x_bar, u_bar = lq.static()
        J_bar = u_bar ** 2 + (x_bar - lq.z) ** 2
        t = torch.linspace(0.0, T, 40001, dtype=torch.float64)
        offsets.append(lq.cost(t, *lq.optimal(t)) - T * J_bar)
    assert offsets[0] == pytest.approx(offsets[1], abs=1e-4)  # J_T = T J_bar + const + o(1)


# --- Chapter 5: training as optimal control ----------------------------------------------------------

X0, Y = control.discs(12, seed=3)


def test_discs_radii_and_labels():
    x, y = control.discs(200, seed=0, inner=0.5, outer=(1.0, 1.5), augment=2)
    assert x.shape == (200, 4) and torch.equal(x[:, 2:], torch.zeros(200, 2, dtype=torch.float64))
    r = x[:, :2].norm(dim=-1)
    assert bool((r[y > 0] <= 0.5).all()) and bool(((r[y < 0] >= 1.0) & (r[y < 0] <= 1.5)).all())
    assert (y > 0).sum().item() == 100


def test_risk_is_the_mean_squared_readout_error():
    x = torch.tensor([[[0.0, 0.0, 2.0], [1.0, 1.0, -1.0]]], dtype=torch.float64)
    y = torch.tensor([1.0, 1.0], dtype=torch.float64)
    assert control.risk(x, y).item() == pytest.approx((1 + 4) / 2)
    assert control.risk(x, y, readout=torch.tensor([1.0, 0.0, 0.0])).item() == pytest.approx((1 + 0) / 2)


def test_random_network_with_fixed_features():
    net = control.ResNet.random(3, 5, 4, 2.0, seed=1, fixed_features=True)
    assert net.W.requires_grad and not net.A.requires_grad and not net.b.requires_grad
    assert torch.equal(net.A[0], net.A[3]) and torch.equal(net.W, torch.zeros(4, 3, 5, dtype=torch.float64))
    x = torch.randn(6, 3, dtype=torch.float64)
    assert torch.equal(net(x), x)  # zero control: the identity


def test_extend_appends_identity_layers():
    net = control.ResNet.random(3, 5, 4, 2.0, seed=1, fixed_features=True)
    with torch.no_grad():
        net.W.normal_(generator=torch.Generator().manual_seed(0))
    longer = net.extend(5.0)
    assert longer.layers == 10 and not longer.A.requires_grad and longer.W.requires_grad
    x = torch.randn(6, 3, dtype=torch.float64)
    assert torch.equal(longer(x), net(x))
    assert control.stopping_time(longer) == pytest.approx(2.0)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), running=st.booleans(), fixed=st.booleans(), lam=st.floats(0, 2),
       act=st.sampled_from(["tanh", "relu"]))
def test_costates_give_the_autograd_gradient(seed, running, fixed, lam, act):
    net = control.ResNet.random(3, 4, 5, 1.5, seed=seed, fixed_features=fixed, activation=getattr(torch, act))
    with torch.no_grad():
        net.W.normal_(generator=torch.Generator().manual_seed(seed + 1))
    J = control.objective(net, X0, Y, lam=lam, running=running)
    params = [p for p in (net.W, net.A, net.b) if p.requires_grad]
    expected = torch.autograd.grad(J, params)
    got = control.pontryagin_gradient(net, X0, Y, lam=lam, running=running)
    got = [g for g, p in zip(got, (net.W, net.A, net.b)) if p.requires_grad]
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, atol=1e-13, rtol=1e-10)


def test_final_costate_is_the_gradient_of_the_loss():
    net = control.ResNet.random(3, 4, 5, 1.5, seed=0)
    p = control.costates(net, X0, Y)
    xT = net(X0).detach().requires_grad_(True)
    (expected,) = torch.autograd.grad(control.risk(xT, Y), xT)
    torch.testing.assert_close(p[-1], expected)
    assert p.shape == (6, *X0.shape)


def test_prox_l1_exact_values():
    v = torch.tensor([-3.0, -1.0, -0.25, 0.0, 0.5, 2.0], dtype=torch.float64)
    assert control.prox_l1(v, 0.5).tolist() == [-2.5, -0.5, 0.0, 0.0, 0.0, 1.5]
    assert control.prox_l1(v, 0.5, bound=1.0).tolist() == [-1.0, -0.5, 0.0, 0.0, 0.0, 1.0]
    assert torch.equal(control.prox_l1(v, 0.0), v)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.floats(-5, 5), min_size=1, max_size=8), tau=st.floats(0, 3),
       bound=st.one_of(st.none(), st.floats(0.1, 4)))
def test_prox_l1_is_the_minimiser_and_satisfies_the_optimality_condition(values, tau, bound):
    v = torch.tensor(values, dtype=torch.float64)
    w = control.prox_l1(v, tau, bound)
    M = math.inf if bound is None else bound
    assert bool((w.abs() <= M).all())

    def objective(u):
        return 0.5 * (u - v) ** 2 + tau * u.abs()

    # Separable: each entry minimises its own convex objective over [-M, M]; compare with a fine grid.
    reach = min(M, 6.0)
    grid = torch.linspace(-reach, reach, 24001, dtype=torch.float64)
    for vi, wi in zip(v, w):
        best = (0.5 * (grid - vi) ** 2 + tau * grid.abs()).min()
        assert (0.5 * (wi - vi) ** 2 + tau * wi.abs()).item() <= best.item() + 1e-12
    # Subgradient condition at interior nonzero entries, and the threshold at zeros (unconstrained).
    inner = (w != 0) & (w.abs() < M)
    torch.testing.assert_close((w - v + tau * w.sign())[inner], torch.zeros_like(w[inner]))
    if bound is None:
        assert bool((v[w == 0].abs() <= tau + 1e-12).all())
    assert float(objective(w).sum()) <= float(objective(torch.zeros_like(v)).sum()) + 1e-12


@settings(max_examples=30, deadline=None)
@given(a=st.lists(st.floats(-5, 5), min_size=4, max_size=4), b=st.lists(st.floats(-5, 5), min_size=4, max_size=4),
       tau=st.floats(0, 3))
def test_prox_l1_is_nonexpansive(a, b, tau):
    a, b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    assert (control.prox_l1(a, tau) - control.prox_l1(b, tau)).norm() <= (a - b).norm() + 1e-12


@pytest.mark.parametrize("penalty,bound", [("l2", None), ("l1", None), ("l1", 0.2)])
def test_training_decreases_the_cost_monotonically(penalty, bound):
    net = control.ResNet.random(3, 16, 8, 2.0, seed=0, fixed_features=True)
    history = control.train(net, X0, Y, lam=0.1, running=True, penalty=penalty, iterations=30, bound=bound)
    assert history.shape == (31,)
    assert bool((history[1:] <= history[:-1] + 1e-12).all()) and history[-1] < 0.8 * history[0]
    assert history[-1].item() == pytest.approx(
        control.objective(net, X0, Y, lam=0.1, running=True, penalty=penalty).item(), rel=1e-12)
    if bound is not None:
        assert net.W.abs().max().item() <= bound


def test_l1_training_gives_exact_zeros_beyond_the_stopping_time():
    net = control.ResNet.random(3, 16, 24, 6.0, seed=0, fixed_features=True)
    control.train(net, X0, Y, lam=0.2, penalty="l1", iterations=150, bound=0.2)
    T_star = control.stopping_time(net)
    k_star = round(T_star / 0.25)
    assert 0 < T_star < net.T
    assert torch.count_nonzero(net.W[k_star:]) == 0 and torch.count_nonzero(net.W[k_star - 1]) > 0
    # The network truncated at T* computes the same map.
    x = net(X0, return_states=True).detach()
    assert torch.equal(x[k_star], x[-1])


def test_stopping_time_of_a_hand_made_network():
    net = control.ResNet.random(2, 3, 8, 4.0, seed=0, fixed_features=True)
    assert control.stopping_time(net) == 0.0
    with torch.no_grad():
        net.W[2, 0, 1] = 1e-300
    assert control.stopping_time(net) == pytest.approx(1.5)
    assert control.layer_norms(net, p=1)[2].item() == 1e-300


@pytest.mark.parametrize("call,error,match", [
    (lambda: control.ScalarLQ(1.0, 0.0, 0.0, T=0.0), ValueError, "T must be > 0"),
    (lambda: control.ScalarLQ(1.0, 0.0, 0.0, T=1.0, q=-1.0), ValueError, "q must be > 0"),
    (lambda: control.ScalarLQ(math.nan, 0.0, 0.0, T=1.0), ValueError, "a must be finite"),
    (lambda: control.ScalarLQ(1.0, 0.0, 0.0, T=1.0).optimal([0.0, 2.0]), ValueError, r"t must lie in \[0, T\]"),
    (lambda: control.ScalarLQ(1.0, 0.0, 0.0, T=1.0).cost([0.0, 1.0], [0.0], [0.0, 1.0]), ValueError, "shape of t"),
    (lambda: control.discs(1), ValueError, "n must be"),
    (lambda: control.discs(10, outer=(1.5, 1.0)), ValueError, "outer"),
    (lambda: control.risk(torch.ones(3, 2), torch.ones(2)), ValueError, "y shape"),
    (lambda: control.risk(torch.ones(3, 2), torch.ones(3), readout=torch.ones(3)), ValueError, "readout"),
    (lambda: control.objective(control.ResNet.random(3, 2, 2, 1.0), torch.ones(4, 2), torch.ones(4), 0.1),
     ValueError, "x0 must have shape"),
    (lambda: control.objective("net", X0, Y, 0.1), TypeError, "net must be"),
    (lambda: control.objective(control.ResNet.random(3, 2, 2, 1.0), X0, Y, -1.0), ValueError, "lam"),
    (lambda: control.train(control.ResNet.random(3, 2, 2, 1.0), X0, Y, 0.1, penalty="l3"), ValueError, "penalty"),
    (lambda: control.train(control.ResNet.random(3, 2, 2, 1.0), X0, Y, 0.1, bound=1.0), ValueError, "bound"),
    (lambda: control.train(control.ResNet.random(3, 2, 2, 1.0), X0, Y, 0.1, iterations=-1), ValueError,
     "iterations"),
    (lambda: control.prox_l1(torch.ones(2), -1.0), ValueError, "tau"),
    (lambda: control.prox_l1(torch.ones(2), 1.0, bound=0.0), ValueError, "bound"),
    (lambda: control.layer_norms(control.ResNet.random(3, 2, 2, 1.0), p=3), ValueError, "p must be"),
    (lambda: control.ResNet.random(3, 2, 2, 1.0, fixed_features="yes"), TypeError, "fixed_features"),
    (lambda: control.ResNet.random(3, 2, 2, 1.0).extend(1.3), ValueError, "multiple of the step"),
    (lambda: control.ResNet.random(3, 2, 2, 1.0).extend(0.5), ValueError, "T must be >="),
])
def test_bad_input_raises_a_named_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- Chapter 5: the numbers the pages print, against the ranges the theory allows --------------------

def fixed_feature_net(T, h=0.25):
    return control.ResNet.random(3, 64, round(T / h), T, seed=0, scale=2.0, fixed_features=True)


def test_training_page_classifies_the_discs():
    """turnpike/training: the 20-layer network separates the disc from the annulus."""
    x0, y = control.discs(100, seed=0)
    net = control.ResNet.random(d=3, m=8, L=20, T=5.0, seed=0)
    history = control.train(net, x0, y, lam=1e-3, running=False, iterations=200)
    assert history[-1] < 0.05 * history[0]
    assert (net(x0).detach()[:, 2].sign() == y).all()


def test_turnpike_page_rates_do_not_depend_on_the_horizon():
    """turnpike/turnpike: exponential decay of the training error, same rate for T = 5, 10, 20."""
    x0, y = control.discs(20, seed=0)
    fitted = []
    for T in (5.0, 10.0, 20.0):
        net = fixed_feature_net(T)
        control.train(net, x0, y, lam=1.0, running=True, iterations=300)
        error = control.risk(net(x0, return_states=True).detach(), y)
        t = torch.arange(net.layers + 1, dtype=torch.float64) * 0.25
        window = (t >= 0.5) & (t <= 2.5)
        fitted.append(-rates.exponential(t[window], error[window]).slope)
        assert error[round(2.5 / 0.25)] < 1e-2 * error[0]  # decayed by two orders of magnitude
    assert min(fitted) > 0.5
    assert max(fitted) / min(fitted) - 1 < 0.25  # the research note's criterion: spread < 25 %


def test_large_time_page_slope_is_below_the_bound():
    """turnpike/large-time: final training error O(1/T) or faster; T * int |u|^2 stays bounded."""
    x0, y = control.discs(20, seed=0)
    horizons = [1.0, 2.0, 4.0, 8.0, 16.0]
    error, scaled = [], []
    for T in horizons:
        net = fixed_feature_net(T)
        control.train(net, x0, y, lam=0.1, running=False, iterations=200)
        error.append(control.risk(net(x0).detach(), y).item())
        scaled.append(T * 0.25 * (control.layer_norms(net) ** 2).sum().item())
    assert rates.power_law(horizons, error).slope <= -1.0
    assert max(scaled) / min(scaled) < 1.25


def test_sparsity_page_stopping_time_and_switching_condition():
    """turnpike/sparsity: exact zeros after T*, switching function <= lambda there, T* = 0 above lambda_0."""
    x0, y = control.discs(20, seed=0)
    T, h, M = 10.0, 0.25, 0.1
    net = fixed_feature_net(T)
    control.train(net, x0, y, lam=1.0, penalty="l1", bound=M, iterations=300)
    T_star = control.stopping_time(net)
    assert 0 < T_star < T / 2
    assert torch.count_nonzero(net.W[round(T_star / h):]) == 0
    switching = control.pontryagin_gradient(net, x0, y, running=True)[0].abs().amax(dim=(1, 2)) / h
    t = torch.arange(net.layers, dtype=torch.float64) * h
    assert switching[t >= T_star].max() <= 1.0 + 1e-6
    # lambda_0 of the page's formula is the switching value of the zero network at t = 0.
    zero = fixed_feature_net(T)
    features = torch.tanh(x0 @ zero.A[0].T + zero.b[0])
    lambda_0 = T * (2 / len(y) * (x0[:, 2] - y) @ features).abs().max().item()
    at_zero = control.pontryagin_gradient(zero, x0, y, running=True)[0].abs().amax() / h
    assert lambda_0 == pytest.approx(at_zero.item(), rel=1e-12)
    control.train(zero, x0, y, lam=1.01 * lambda_0, penalty="l1", bound=M, iterations=20)
    assert control.stopping_time(zero) == 0.0
    below = fixed_feature_net(T)
    control.train(below, x0, y, lam=0.9 * lambda_0, penalty="l1", bound=M, iterations=50)
    assert 0 < control.stopping_time(below) < T_star


@pytest.mark.parametrize("cost,key", [("running", "rate"), ("final", "slope"), ("l1", "stopping_time")])
def test_turnpike_experiment_runs_and_resumes(tmp_path, cost, key):
    import numpy as np

    from nnips.experiments import run

    argv = ["--cost", cost, "--n", "8", "--m", "8", "--horizons", "2", "4", "--lam", "0.5", "--iterations", "5",
            "--out", str(tmp_path)]
    out = run("turnpike", argv)
    summary = dict(np.load(out))
    assert summary[key].shape[0] == 1 and summary["final_error"].shape == (1, 2)
    assert (tmp_path / "turnpike" / "units" / "T4_lam0.5.npz").exists()
    again = dict(np.load(run("turnpike", argv)))  # resumes from the saved units
    np.testing.assert_array_equal(again["final_error"], summary["final_error"])
