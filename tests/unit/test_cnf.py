"""Continuous normalizing flows (nnips.control.CNF), the banana target, and the optimal transport helpers."""

import math

import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nnips import control, rates, wasserstein


def random_flow(seed, d=2, m=5, L=3, T=1.0, scale=0.8, activation=torch.tanh, steps=1):
    g = torch.Generator().manual_seed(seed)
    W = scale * torch.randn(L, d, m, generator=g, dtype=torch.float64)
    A = scale * torch.randn(L, m, d, generator=g, dtype=torch.float64)
    b = scale * torch.randn(L, m, generator=g, dtype=torch.float64)
    return control.CNF(control.ResNet(W, A, b, T, activation=activation), steps=steps)


def linear_flow(B, c, T=1.0, L=2, steps=64):
    """Identity activation: f(x) = B x + c on every layer, written as W (A x + b) with W = B, A = I, b = B^-1 c."""
    d = B.shape[0]
    W = B.expand(L, d, d).clone()
    A = torch.eye(d, dtype=torch.float64).expand(L, d, d).clone()
    b = torch.linalg.solve(B, c).expand(L, d).clone()
    return control.CNF(control.ResNet(W, A, b, T, activation=lambda z: z), steps=steps)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 4), m=st.integers(1, 6),
       activation=st.sampled_from(["tanh", "softplus"]))
def test_closed_form_divergence_is_the_exact_trace(seed, d, m, activation):
    act = torch.tanh if activation == "tanh" else torch.nn.functional.softplus
    flow = random_flow(seed, d=d, m=m, L=2, activation=act)
    x = torch.randn(7, d, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    for k in range(2):
        _, div = flow.field(k, x)
        exact = control.divergence(lambda z: flow.field(k, z)[0], x)
        torch.testing.assert_close(div, exact, atol=1e-12, rtol=1e-12)


def test_linear_flow_pushes_the_gaussian_to_the_exact_gaussian():
    B = torch.tensor([[0.3, -1.0], [0.8, -0.2]], dtype=torch.float64)
    c = torch.tensor([0.5, -0.3], dtype=torch.float64)
    T = 1.0
    flow = linear_flow(B, c, T)
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x, logp = flow(z)
    E = torch.from_numpy(scipy.linalg.expm(T * B.numpy()))
    shift = torch.linalg.solve(B, (E - torch.eye(2, dtype=torch.float64)) @ c)
    torch.testing.assert_close(x, z @ E.T + shift, atol=1e-8, rtol=0)
    exact = torch.distributions.MultivariateNormal(shift, E @ E.T).log_prob(x)
    torch.testing.assert_close(logp, exact, atol=1e-8, rtol=0)
    torch.testing.assert_close(flow.log_prob(x), exact, atol=1e-8, rtol=0)


def test_rk4_inverse_and_log_density_converge_at_order_four():
    z = torch.randn(30, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    reference = random_flow(3, T=1.5, steps=256)
    with torch.no_grad():
        x_ref, logp_ref = reference(z)
    steps = [4, 8, 16, 32]
    errors = []
    for s in steps:
        flow = random_flow(3, T=1.5, steps=s)
        with torch.no_grad():
            x, logp = flow(z)
        errors.append(max((x - x_ref).abs().max().item(), (logp - logp_ref).abs().max().item()))
    assert rates.power_law(steps, errors).slope == pytest.approx(-4.0, abs=0.3)
    with torch.no_grad():
        back, _ = reference.inverse(x_ref)
        assert (back - z).abs().max().item() < 1e-10
        torch.testing.assert_close(reference.log_prob(x_ref), logp_ref, atol=1e-10, rtol=0)


def test_model_density_integrates_to_one():
    flow = random_flow(5, T=1.0, steps=4)
    s = torch.linspace(-7, 7, 281, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(s, s, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        mass = flow.log_prob(grid).exp().sum().item() * (s[1] - s[0]).item() ** 2
    assert mass == pytest.approx(1.0, abs=1e-3)


def test_states_and_sampling():
    flow = random_flow(6, L=4)
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x, logp, states = flow(z, return_states=True)
    assert states.shape == (5, 5, 2) and torch.equal(states[0], z) and torch.equal(states[-1], x)
    torch.testing.assert_close(flow(z)[1], logp)
    assert torch.equal(flow.sample(9, seed=3), flow.sample(9, seed=3)) and flow.sample(9, seed=3).shape == (9, 2)
    finer = control.CNF(flow.net, steps=3)
    assert finer(z, return_states=True)[2].shape == (13, 5, 2)


def test_banana_density_samples_and_knothe_map():
    target = control.Banana(a=0.7, s=0.4)
    z = torch.randn(20, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # change of variables for the triangular map, whose Jacobian determinant is s
    torch.testing.assert_close(target.log_prob(target.knothe(z)), control.gaussian_log_density(z) - math.log(0.4))
    x = target.sample(20000, seed=1)
    assert -target.log_prob(x).mean().item() == pytest.approx(target.entropy(), abs=0.03)
    assert x[:, 1].mean().item() == pytest.approx(0.0, abs=0.03)


def test_training_fits_the_banana():
    target = control.Banana()
    data = target.sample(400, seed=0)
    flow = control.CNF(control.ResNet.random(2, 8, 4, 2.0, seed=0))
    history = control.train_cnf(flow, data, iterations=150, lr=0.03, kinetic=0.1)
    assert history[-1] < history[0] - 0.4
    test = target.sample(2000, seed=1)
    with torch.no_grad():
        kl = (target.log_prob(test) - flow.log_prob(test)).mean().item()
    assert 0 < kl < 0.15


def test_kinetic_energy_bounds_the_transport_cost():
    flow = random_flow(7, T=2.0, steps=4)
    z = torch.randn(100, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    with torch.no_grad():
        x, _ = flow(z)
        action = flow.kinetic_energy(x)
    assert ((x - z).pow(2).sum(-1) <= 2.0 * action + 1e-9).all()  # Cauchy-Schwarz: |x - z|^2 <= T int |f|^2


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 3))
def test_gaussian_w2_closed_form_properties(seed, d):
    g = torch.Generator().manual_seed(seed)
    m1, m2 = torch.randn(2, d, generator=g, dtype=torch.float64)
    R1, R2 = torch.randn(2, d, d, generator=g, dtype=torch.float64)
    S1, S2 = R1 @ R1.T + 0.1 * torch.eye(d), R2 @ R2.T + 0.1 * torch.eye(d)
    assert wasserstein.w2_gaussian(m1, S1, m1, S1) == pytest.approx(0.0, abs=1e-6)
    assert wasserstein.w2_gaussian(m1, S1, m2, S2) == pytest.approx(wasserstein.w2_gaussian(m2, S2, m1, S1), rel=1e-8)
    assert wasserstein.w2_gaussian(m1, S1, m2, S1) == pytest.approx((m1 - m2).norm().item(), rel=1e-6)
    if d == 1:
        assert wasserstein.w2_gaussian(m1, S1, m2, S2) == pytest.approx(
            math.sqrt((m1 - m2).item() ** 2 + (S1.sqrt() - S2.sqrt()).item() ** 2), rel=1e-10)


def test_pot_on_samples_approaches_the_gaussian_closed_form():
    S = torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
    exact = wasserstein.w2_gaussian(torch.zeros(2), torch.eye(2), torch.tensor([1.0, 0.0]), S)
    L = torch.linalg.cholesky(S)
    g = torch.Generator().manual_seed(0)
    estimates = []
    for _ in range(4):
        z = torch.randn(600, 2, generator=g, dtype=torch.float64)
        y = torch.tensor([1.0, 0.0], dtype=torch.float64) + torch.randn(600, 2, generator=g, dtype=torch.float64) @ L.T
        estimates.append(wasserstein.w2(z, y))
    assert sum(estimates) / 4 == pytest.approx(exact, abs=0.08)


def test_assignment_is_optimal_and_the_identity_for_an_optimal_map():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 2, generator=g, dtype=torch.float64)
    y = torch.randn(200, 2, generator=g, dtype=torch.float64) * 2 + 1
    sigma = wasserstein.assignment(x, y)
    assert ((x - y[sigma]) ** 2).sum(-1).mean().item() == pytest.approx(wasserstein.w2(x, y) ** 2, rel=1e-9)
    S = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)  # the gradient of a convex quadratic
    image = x @ S + torch.tanh(x) + 3.0  # plus the gradient of another convex function: still monotone
    assert torch.equal(wasserstein.assignment(x, image), torch.arange(200))


def test_transport_map_page_checks():
    """The page's flow (width 8, depth 4, kinetic penalty 0.3): its printed checks lie in the allowed ranges."""
    target = control.Banana(a=0.5, s=0.5)
    data, test, other = (target.sample(1000, seed=s) for s in (0, 1, 2))

    def fit(m, L):
        flow = control.CNF(control.ResNet.random(2, m, L, 2.0, seed=0))
        control.train_cnf(flow, data, iterations=300, lr=0.03, kinetic=0.3)
        return flow

    def kl(flow):
        with torch.no_grad():
            return (target.log_prob(test) - flow.log_prob(test)).mean().item()

    flow = fit(8, 4)
    assert 0 < kl(flow) < 0.05
    assert abs(kl(control.CNF(flow.net, steps=16)) - kl(flow)) < 0.01  # not an artefact of the integrator
    z = torch.randn(1000, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    with torch.no_grad():
        mapped = flow(z)[0]
        action = flow.kinetic_energy(mapped)

    def ratio(image):
        best = wasserstein.assignment(z, image)
        return ((image - z) ** 2).sum(-1).mean().item() / ((image[best] - z) ** 2).sum(-1).mean().item()

    assert 1 <= ratio(mapped) < 1.05 and ratio(target.knothe(z)) > 1.5
    assert ((mapped - z) ** 2).sum(-1).mean().item() <= 2.0 * action.mean().item()
    floor = wasserstein.w2(other, test)
    assert wasserstein.w2(flow.sample(1000, seed=5), test) < 1.2 * floor < 0.5 * wasserstein.w2(z, test)
    assert kl(fit(1, 4)) > 0.1  # one neuron per layer is too small


@pytest.mark.parametrize("call, error, match", [
    (lambda: control.CNF("net"), TypeError, "net must be"),
    (lambda: control.CNF(control.ResNet.random(2, 3, 2, 1.0), steps=0), ValueError, "steps must be"),
    (lambda: random_flow(0)(torch.ones(4, 3)), ValueError, "z must have shape"),
    (lambda: random_flow(0).log_prob(torch.ones(4)), ValueError, "x must have shape"),
    (lambda: control.train_cnf(random_flow(0), torch.ones(5, 2), lr=0.0), ValueError, "lr must be > 0"),
    (lambda: control.train_cnf(random_flow(0), torch.ones(5, 2), kinetic=-1.0), ValueError, "kinetic must be"),
    (lambda: control.train_cnf("flow", torch.ones(5, 2)), TypeError, "flow must be"),
    (lambda: control.Banana(s=0.0), ValueError, "s must be > 0"),
    (lambda: control.Banana().log_prob(torch.ones(3)), ValueError, "x must have shape"),
    (lambda: wasserstein.w2_gaussian(torch.zeros(2), torch.eye(2), torch.zeros(3), torch.eye(3)), ValueError,
     "same length"),
    (lambda: wasserstein.w2_gaussian(torch.zeros(2), -torch.eye(2), torch.zeros(2), torch.eye(2)), ValueError,
     "S1 must be positive"),
    (lambda: wasserstein.assignment(torch.ones(3, 2), torch.ones(4, 2)), ValueError, "same shape"),
])
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_the_transport_maps_experiment_runs_small_and_resumes(tmp_path, monkeypatch):
    import numpy as np

    from nnips.experiments import beyond, run

    small = ["--widths", "1", "2", "--depths", "1", "--depth-width", "2", "--width-depth", "1", "--N", "100",
             "--eval", "100", "--iterations", "5", "--batch", "50", "--out", str(tmp_path)]
    summary = np.load(run("transport-maps", small))
    assert summary["width_kl"].shape == (2,) and summary["depth_w2"].shape == (1,) and summary["floor"] > 0
    assert (tmp_path / "transport-maps" / "transport-maps.png").exists()

    def refuse(*args, **kwargs):
        raise AssertionError("a saved unit was recomputed")

    monkeypatch.setattr(beyond.TransportMaps, "run_unit", refuse)
    run("transport-maps", small)
