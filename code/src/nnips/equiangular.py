r"""The exact equiangular solution: all pairwise inner products equal :math:`\gamma_\beta(t)`.

If the tokens start pairwise orthogonal (or, more generally, with all pairwise inner products
equal to :math:`\rho_0`), SA and USA with :math:`Q=K=V=I_d` keep every pairwise inner product equal
to one number :math:`\gamma_\beta(t)`, which solves (GLPR, arXiv 2312.10794, Theorem 6.8,
eqs. (6.9)-(6.10))

.. math::
    \text{SA:}\quad \dot\gamma = \frac{2e^{\beta\gamma}(1-\gamma)\big((n-1)\gamma+1\big)}{e^{\beta}+(n-1)e^{\beta\gamma}},
    \qquad
    \text{USA:}\quad \dot\gamma = \frac{2}{n}e^{\beta\gamma}(1-\gamma)\big((n-1)\gamma+1\big),
    \qquad \gamma(0)=\rho_0 .

Book: Chapter 1 (the exact benchmark of the integrators) and Chapter 2 (high dimension).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.integrate
import torch

from . import _checks

__all__ = ["gamma", "gamma_beta0", "rhs", "rate", "hitting_time", "one_layer_cosine", "long_context_limit"]


def _params(beta, n, rho0):
    beta = _checks.real(beta, "beta")
    n = _checks.integer(n, "n", 2)
    rho0 = _checks.real(rho0, "rho0")
    if not -1.0 / (n - 1) < rho0 < 1:
        raise ValueError(f"rho0 must lie in (-1/(n-1), 1) = ({-1.0 / (n - 1):.4g}, 1), got {rho0}")
    return beta, n, rho0


def rhs(g, beta, n, normalized=True):
    r"""The right-hand side :math:`\dot\gamma = f(\gamma)` of (6.9) (SA) or (6.10) (USA), for numpy ``g``."""
    g = np.asarray(g, dtype=float)
    common = 2 * (1 - g) * ((n - 1) * g + 1)
    if normalized:
        # Divide numerator and denominator by e^beta so that large beta does not overflow.
        return common * np.exp(beta * (g - 1)) / (1 + (n - 1) * np.exp(beta * (g - 1)))
    return common * np.exp(beta * g) / n


def gamma(t, beta, n, normalized=True, rho0=0.0, rtol=1e-12, atol=1e-14) -> torch.Tensor:
    r"""The pairwise inner product :math:`\gamma_\beta(t)` of the equiangular solution.

    Parameters
    ----------
    t : 1-D increasing sequence of times >= 0.
    beta : float; n : int >= 2, number of tokens.
    normalized : True for SA (6.9), False for USA (6.10).
    rho0 : the common initial inner product (0 for an orthonormal start).

    Returns
    -------
    float64 tensor shaped like ``t``.

    Examples
    --------
    At beta = 0 and n = 2 the solution is tanh(t):

    >>> round(gamma([0.0, 1.0], beta=0.0, n=2)[1].item(), 10) == round(math.tanh(1.0), 10)
    True
    """
    beta, n, rho0 = _params(beta, n, rho0)
    t = _checks.times(t, "t")
    if t[0] < 0:
        raise ValueError(f"t must be >= 0, got t[0] = {t[0].item()}")
    t_end = t[-1].item()
    if t_end == 0:
        return torch.full_like(t, rho0)
    sol = scipy.integrate.solve_ivp(lambda _, g: rhs(g, beta, n, normalized), (0.0, t_end), [rho0],
                                    method="DOP853", t_eval=t.numpy(), rtol=rtol, atol=atol)
    if not sol.success:
        raise FloatingPointError(f"the equiangular ODE failed: {sol.message}")
    return torch.from_numpy(sol.y[0].copy())


def gamma_beta0(t, n, rho0=0.0) -> torch.Tensor:
    r"""Closed form at :math:`\beta=0` (SA and USA coincide): a Riccati equation with roots 1 and -1/(n-1).

    .. math:: \frac{1+(n-1)\gamma}{1-\gamma} = e^{2t}\,\frac{1+(n-1)\rho_0}{1-\rho_0},
       \qquad\text{so for }\rho_0=0:\quad \gamma(t)=\frac{e^{2t}-1}{e^{2t}+n-1}.

    For n = 2 this is :math:`\tanh t`.
    """
    _, n, rho0 = _params(0.0, n, rho0)
    t = _checks.floating_tensor(torch.as_tensor(t, dtype=torch.float64), "t")
    c = torch.exp(2 * t) * (1 + (n - 1) * rho0) / (1 - rho0)
    return (c - 1) / (c + n - 1)


def rate(beta, normalized=True) -> float:
    r"""The exponential rate of :math:`1-\gamma_\beta(t)\to 0`: 2 for SA (any beta), :math:`2e^\beta` for USA.

    Linearising (6.9)-(6.10) at :math:`\gamma=1`: :math:`\dot\varepsilon \simeq -2\varepsilon` (SA),
    :math:`\dot\varepsilon\simeq -2e^{\beta}\varepsilon` (USA), with :math:`\varepsilon = 1-\gamma`.
    """
    beta = _checks.real(beta, "beta")
    return 2.0 if normalized else 2.0 * math.exp(beta)


def hitting_time(level, beta, n, normalized=True, rho0=0.0) -> float:
    r"""The time at which :math:`\gamma_\beta` reaches ``level`` (e.g. :math:`1-\delta`).

    The curve :math:`\{(t,\beta): \gamma_\beta(t) = 1-\delta\}` is drawn over the phase diagrams of
    GLPR, Fig. 3. Computed with an event of the DOP853 solver.
    """
    beta, n, rho0 = _params(beta, n, rho0)
    level = _checks.real(level, "level")
    if not rho0 <= level < 1:
        raise ValueError(f"level must lie in [rho0, 1) = [{rho0}, 1), got {level}")
    if level == rho0:
        return 0.0

    def reached(_, g):
        return g[0] - level

    reached.terminal = True
    t_max = 1.0
    while True:  # gamma increases to 1 monotonically, so doubling the horizon always ends.
        sol = scipy.integrate.solve_ivp(lambda _, g: rhs(g, beta, n, normalized), (0.0, t_max), [rho0],
                                        method="DOP853", events=reached, rtol=1e-12, atol=1e-14)
        if sol.t_events[0].size:
            return float(sol.t_events[0][0])
        t_max *= 2
        if t_max > 1e12:
            raise FloatingPointError(f"gamma_beta does not reach {level} before t = 1e12")


def one_layer_cosine(n, gamma, rho) -> float:
    r"""Cosine between two output directions of one attention layer at :math:`\beta_n=\gamma\log n`, equiangular inputs.

    With unit inputs, :math:`\langle x_i,x_j\rangle=\rho` for :math:`i\ne j`, the attention weights are
    :math:`A_{ii}=a=\big(1+(n-1)n^{-\gamma(1-\rho)}\big)^{-1}` and :math:`A_{ij}=b=a\,n^{-\gamma(1-\rho)}`,
    and the output :math:`\mathrm{ATT}(x_i)=\sum_jA_{ij}x_j=(a-b)x_i+bS`, :math:`S=\sum_jx_j`, has direction
    :math:`\theta_i`. With :math:`\langle x_i,S\rangle=1+(n-1)\rho=:\sigma` and :math:`\|S\|^2=n\sigma`,

    .. math:: \langle\theta_i,\theta_j\rangle=\frac{(a-b)^2\rho+2(a-b)b\sigma+b^2n\sigma}
              {(a-b)^2+2(a-b)b\sigma+b^2n\sigma}.

    As :math:`n\to\infty` it tends to 1, :math:`4\rho/(1+3\rho)` or :math:`\rho` for :math:`\gamma` below,
    at or above :math:`1/(1-\rho)` (Rigollet, arXiv 2512.01868, Section 6.3; see :func:`long_context_limit`).
    The formula is exact for each ``n``; :class:`nnips.attention.SelfAttention` on
    :func:`nnips.sphere.equiangular` tokens gives the same number.

    Parameters
    ----------
    n : int >= 2; gamma : float > 0; rho : float in (0, 1).

    Examples
    --------
    >>> round(one_layer_cosine(10**12, 2.0, 0.5), 6)
    0.8
    """
    n = _checks.integer(n, "n", 2)
    gamma = _checks.real(gamma, "gamma", 0.0, strict=True)
    rho = _checks.real(rho, "rho")
    if not 0 < rho < 1:
        raise ValueError(f"rho must lie in (0, 1), got {rho}")
    q = math.exp(-gamma * (1 - rho) * math.log(n))  # n^{-gamma (1 - rho)}
    a = 1.0 / (1.0 + (n - 1) * q)
    b = a * q
    sigma = 1 + (n - 1) * rho
    shared = 2 * (a - b) * b * sigma + b * b * n * sigma
    return ((a - b) ** 2 * rho + shared) / ((a - b) ** 2 + shared)


def long_context_limit(gamma, rho) -> float:
    r"""The limit of :func:`one_layer_cosine` as :math:`n\to\infty`: 1, :math:`4\rho/(1+3\rho)` or :math:`\rho`.

    The phase transition of one attention layer with :math:`\beta_n=\gamma\log n` and equiangular
    inputs at correlation :math:`\rho`, on the three sides of :math:`\gamma=1/(1-\rho)` (Rigollet, arXiv
    2512.01868, Section 6.3, theorem on the long-context phase transition; Chen, Lin, Polyanskiy,
    Rigollet, arXiv 2510.05554).

    Examples
    --------
    >>> long_context_limit(1.0, 0.5), long_context_limit(2.0, 0.5), long_context_limit(3.0, 0.5)
    (1.0, 0.8, 0.5)
    """
    gamma = _checks.real(gamma, "gamma", 0.0, strict=True)
    rho = _checks.real(rho, "rho")
    if not 0 < rho < 1:
        raise ValueError(f"rho must lie in (0, 1), got {rho}")
    critical = 1 / (1 - rho)
    if math.isclose(gamma, critical, rel_tol=1e-12):
        return 4 * rho / (1 + 3 * rho)
    return 1.0 if gamma < critical else rho
