"""nnips.unbalanced: the Wasserstein-Fisher-Rao gradient flow of weighted particles, against exact solutions."""

import math

import numpy as np
import pytest
import scipy.integrate
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nnips import rates
from nnips import unbalanced as ub


def cloud(n, d, seed, batch=()):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((*batch, n, d), generator=g, dtype=torch.float64)
    w = torch.rand((*batch, n), generator=g, dtype=torch.float64) + 0.1
    return x, w


def target(m=7, d=2, seed=100):
    y, b = cloud(m, d, seed)
    return ub.mmd(y, b, sigma=0.8)


def quadratic(z):
    return 0.5 * (z * z).sum(-1)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 8), d=st.integers(1, 3), seed=st.integers(0, 10_000), batch=st.sampled_from([(), (3,)]),
       interaction=st.booleans())
def test_first_variation_is_the_derivative_in_the_weights_and_positions(n, d, seed, batch, interaction):
    y, b = cloud(5, d, seed + 1)
    E = ub.mmd(y, b, sigma=0.7) if interaction else ub.Energy(external=quadratic)
    x, w = cloud(n, d, seed, batch)
    x.requires_grad_(True)
    w.requires_grad_(True)
    dx, dw = torch.autograd.grad(E(x, w).sum(), (x, w))
    V = ub.first_variation(E, x, w)
    torch.testing.assert_close(dw, V, atol=1e-12, rtol=1e-12)
    vx, _ = ub.velocity(E, x, w, alpha=1.0, beta=1.0)
    torch.testing.assert_close(dx, -w.detach()[..., None] * vx, atol=1e-12, rtol=1e-12)


def test_mmd_energy_is_half_the_squared_discrepancy_and_vanishes_at_the_target():
    y, b = cloud(6, 2, 3)
    E = ub.mmd(y, b, sigma=0.9)
    x, w = cloud(4, 2, 4)
    z = torch.cat([x, y])
    a = torch.cat([w, -b])
    kernel = torch.exp(-((z[:, None] - z[None]) ** 2).sum(-1) / (2 * 0.9 ** 2))
    assert E(x, w).item() == pytest.approx(0.5 * (a @ kernel @ a).item(), rel=1e-12)
    assert E(y, b).item() == pytest.approx(0.0, abs=1e-14)
    assert E(x, w).item() > 0


def test_pure_reaction_of_a_linear_energy_is_the_exact_exponential():
    U = ub.Energy(external=lambda z: torch.sin(3 * z[..., 0]) + z[..., 1] ** 2)
    x, w = cloud(5, 2, 0)
    run = ub.flow(U, x, w, dt=0.37, steps=9, alpha=0.0, beta=1.3)
    exact = w * torch.exp(-1.3 * run.t[:, None] * (torch.sin(3 * x[:, 0]) + x[:, 1] ** 2))
    torch.testing.assert_close(run.w, exact, atol=1e-12, rtol=1e-12)
    assert torch.equal(run.x[-1], x)


def test_pure_transport_of_a_quadratic_potential_is_the_euler_scheme_and_keeps_the_mass():
    E = ub.Energy(external=quadratic)
    x, w = cloud(5, 3, 1)
    run = ub.flow(E, x, w, dt=0.1, steps=20, alpha=2.0, beta=0.0)
    torch.testing.assert_close(run.x[-1], x * (1 - 0.2) ** 20, atol=1e-12, rtol=1e-12)
    assert torch.equal(run.w[-1], w)
    assert (run.mass - w.sum()).abs().max().item() == 0.0


def test_mass_conserving_reaction_keeps_the_mass():
    x, w = cloud(9, 2, 2)
    run = ub.flow(target(), x, w, dt=0.05, steps=40, conserve_mass=True)
    assert (run.mass - w.sum()).abs().max().item() < 1e-12
    free = ub.flow(target(), x, w, dt=0.05, steps=40)
    assert (free.mass - w.sum()).abs().max().item() > 1e-3


@pytest.mark.parametrize("conserve_mass", [False, True])
def test_energy_dissipation_identity(conserve_mass):
    E = target()
    x, w = cloud(6, 2, 5)
    rate = ub.dissipation(E, x, w, alpha=0.7, beta=1.9, conserve_mass=conserve_mass).item()
    assert rate > 0
    errors = []
    for dt in (1e-3, 1e-4, 1e-5):
        x1, w1 = ub.step(E, x, w, dt, alpha=0.7, beta=1.9, conserve_mass=conserve_mass)
        errors.append(abs((E(x1, w1) - E(x, w)).item() / dt + rate) / rate)
    assert errors[-1] < 1e-4
    assert rates.power_law([1e-3, 1e-4, 1e-5], errors).slope == pytest.approx(1.0, abs=0.1)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 10), seed=st.integers(0, 10_000), alpha=st.floats(0.0, 2.0), beta=st.floats(0.1, 2.0))
def test_energy_never_increases_along_the_flow(n, seed, alpha, beta):
    x, w = cloud(n, 2, seed)
    run = ub.flow(target(), x, w, dt=0.01, steps=30, alpha=alpha, beta=beta)
    assert (run.energy[1:] - run.energy[:-1]).max().item() <= 1e-14


def test_weak_form_of_the_equation_holds_for_the_atoms():
    """d/dt int phi dmu = int (-alpha grad phi . grad V - beta phi V) dmu, for a test function phi."""
    E = target()
    x, w = cloud(7, 2, 6)
    alpha, beta = 0.6, 1.4

    def phi(z):
        return torch.cos(z[..., 0]) * z[..., 1]

    dx, dw = ub.velocity(E, x, w, alpha, beta)
    z = x.clone().requires_grad_(True)
    (grad_phi,) = torch.autograd.grad(phi(z).sum(), z)
    V = ub.first_variation(E, x, w)
    zv = x.clone().requires_grad_(True)
    (grad_V,) = torch.autograd.grad(E.potential(zv, x, w).sum(), zv)
    lhs = (dw * phi(x) + w * (grad_phi * dx).sum(-1)).sum()
    rhs = (w * (-alpha * (grad_phi * grad_V).sum(-1) - beta * phi(x) * V)).sum()
    assert lhs.item() == pytest.approx(rhs.item(), rel=1e-12)


def test_the_scheme_converges_to_the_ode_at_order_one():
    E = target(m=5)
    x, w = cloud(4, 2, 8)
    n, d, T = 4, 2, 1.0

    def rhs(_, state):
        xs = torch.from_numpy(state[: n * d].reshape(n, d).copy())
        ws = torch.from_numpy(state[n * d:].copy())
        dx, dw = ub.velocity(E, xs, ws, alpha=1.0, beta=2.0)
        return np.concatenate([dx.numpy().ravel(), dw.numpy()])

    ref = scipy.integrate.solve_ivp(rhs, (0, T), np.concatenate([x.numpy().ravel(), w.numpy()]), method="DOP853",
                                    rtol=1e-12, atol=1e-12).y[:, -1]
    steps = [20, 40, 80, 160]
    errors = []
    for k in steps:
        run = ub.flow(E, x, w, dt=T / k, steps=k, alpha=1.0, beta=2.0, record=[k])
        state = np.concatenate([run.x[-1].numpy().ravel(), run.w[-1].numpy()])
        errors.append(np.abs(state - ref).max())
    assert rates.power_law(steps, errors).slope == pytest.approx(-1.0, abs=0.1)


def example(n=32, steps=1500):
    """The page's example at a smaller size: two bumps of masses 3/4 and 1/4, particles spread evenly."""
    grid = torch.linspace(-5, 5, 101, dtype=torch.float64)[:, None]
    density = 0.75 * torch.exp(-(grid[:, 0] + 2) ** 2 / 0.18) + 0.25 * torch.exp(-(grid[:, 0] - 2) ** 2 / 0.18)
    E = ub.mmd(grid, density / density.sum(), sigma=0.5)
    x = torch.linspace(-4, 4, n, dtype=torch.float64)[:, None]
    w = torch.full((n,), 1 / n, dtype=torch.float64)
    return {name: ub.flow(E, x, w, dt=0.02, steps=steps, alpha=a, beta=b, record=range(0, steps + 1, 50))
            for name, a, b in (("transport", 1.0, 0.0), ("reaction", 0.0, 1.0), ("WFR", 1.0, 1.0))}


def test_unbalanced_page_reaction_fixes_what_transport_cannot():
    runs = example()
    for run in runs.values():
        assert (run.energy[1:] - run.energy[:-1]).max().item() <= 0
    transport, wfr = runs["transport"], runs["WFR"]
    assert (transport.mass - 1).abs().max().item() < 1e-14
    left = lambda run: run.w[-1][run.x[-1][:, 0] < 0].sum().item() / run.mass[-1].item()  # noqa: E731
    assert abs(left(transport) - 0.5) < 0.1 and abs(left(wfr) - 0.75) < 0.03
    assert wfr.energy[-1] < 0.05 * transport.energy[-1]
    assert wfr.mass.max().item() > 1.05  # mass is created on the way


@pytest.mark.parametrize("call, error, match", [
    (lambda: ub.mmd(torch.ones(3), sigma=1.0), ValueError, "y must have shape"),
    (lambda: ub.mmd(torch.ones(3, 2), b=-torch.ones(3)), ValueError, "non-negative"),
    (lambda: ub.mmd(torch.ones(3, 2), sigma=0.0), ValueError, "sigma must be > 0"),
    (lambda: ub.Energy(), ValueError, "needs an external potential"),
    (lambda: ub.Energy(external=3.0), TypeError, "external must be callable"),
    (lambda: ub.flow(target(), torch.ones(3, 2), torch.ones(2), 0.1, 3), ValueError, "w shape"),
    (lambda: ub.flow(target(), torch.ones(3, 2), -torch.ones(3), 0.1, 3), ValueError, "non-negative"),
    (lambda: ub.flow(target(), torch.ones(3, 2), torch.ones(3), 0.0, 3), ValueError, "dt must be > 0"),
    (lambda: ub.flow(target(), torch.ones(3, 2), torch.ones(3), 0.1, 3, alpha=0.0, beta=0.0), ValueError, "both be zero"),
    (lambda: ub.flow(target(), torch.ones(3, 2), torch.ones(3), 0.1, 3, record=[2, 1]), ValueError, "record"),
    (lambda: ub.flow("energy", torch.ones(3, 2), torch.ones(3), 0.1, 3), TypeError, "energy must be"),
    (lambda: ub.velocity(target(), torch.full((3, 2), math.nan), torch.ones(3)), ValueError, "x has non-finite"),
    (lambda: target().potential(torch.ones(4, 3), torch.ones(3, 2), torch.ones(3)), ValueError, "z must have shape"),
])
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
