import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from nnips import attention, equiangular, flow, sphere


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("beta", [0.0, 0.5, 2.0, 5.0])
@pytest.mark.parametrize("n", [2, 5])
def test_particles_from_an_orthonormal_start_follow_gamma(normalized, beta, n):
    """GLPR Theorem 6.8: every pairwise inner product equals gamma_beta(t)."""
    t = torch.linspace(0, 4, 9, dtype=torch.float64)
    x0 = sphere.orthonormal(n, n, seed=3)
    xs = flow.integrate(attention.SelfAttention(beta, normalized=normalized), x0, t, method="adaptive")
    g = equiangular.gamma(t, beta, n, normalized=normalized)
    off = ~torch.eye(n, dtype=torch.bool)
    err = ((xs @ xs.mT)[:, off] - g[:, None]).abs().max().item()
    assert err < 1e-8


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 50), t=st.floats(0, 5), rho0=st.floats(0, 0.9))
def test_beta0_closed_form(n, t, rho0):
    numeric = equiangular.gamma([0.0, t], 0.0, n, rho0=rho0)[-1].item() if t > 0 else rho0
    exact = equiangular.gamma_beta0(t, n, rho0=rho0).item()
    assert abs(numeric - exact) < 1e-10


def test_n2_beta0_is_tanh():
    t = torch.linspace(0, 3, 7, dtype=torch.float64)
    torch.testing.assert_close(equiangular.gamma_beta0(t, 2), torch.tanh(t))


@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0])
def test_linear_rates_near_one(beta):
    """1 - gamma decays at rate 2 (SA) and 2 e^beta (USA) once gamma is close to 1."""
    for normalized in (True, False):
        r = equiangular.rate(beta, normalized)
        t1 = equiangular.hitting_time(1 - 1e-4, beta, 4, normalized)
        t = torch.tensor([0.0, t1, t1 + 1.0 / r], dtype=torch.float64)
        g = equiangular.gamma(t, beta, 4, normalized=normalized)
        measured = math.log((1 - g[1]) / (1 - g[2])) * r  # = r * (rate / r) -> r
        assert measured == pytest.approx(r, rel=1e-3)


def test_hitting_time_is_where_gamma_reaches_level():
    t_hit = equiangular.hitting_time(0.999, 3.0, 32)
    assert equiangular.gamma([0.0, t_hit], 3.0, 32)[-1].item() == pytest.approx(0.999, abs=1e-9)


def test_gamma_is_monotone_and_below_one():
    g = equiangular.gamma(torch.linspace(0, 30, 301), 9.0, 32)
    assert bool((g[1:] >= g[:-1]).all()) and bool((g < 1).all())
