r"""The scalar linear-quadratic turnpike: an optimal control problem solved in closed form.

Minimise

.. math:: J_T(u) = \int_0^T \big(u(t)^2 + q\,(x(t) - z)^2\big)\,dt, \qquad \dot x = a x + u, \quad x(0) = x_0,

with a free endpoint :math:`x(T)`. Pontryagin's principle, with the costate written as
:math:`2\lambda`, gives :math:`u = -\lambda` and the Hamiltonian system

.. math:: \frac{d}{dt}\begin{pmatrix} x\\ \lambda\end{pmatrix}
          = \begin{pmatrix} a & -1\\ -q & -a\end{pmatrix}\begin{pmatrix} x\\ \lambda\end{pmatrix}
          + \begin{pmatrix} 0\\ qz\end{pmatrix}, \qquad x(0) = x_0,\quad \lambda(T) = 0,

whose matrix has the eigenvalues :math:`\pm\mu`, :math:`\mu = \sqrt{a^2+q}`. The optimal pair is the
static optimum plus one mode decaying away from :math:`t = 0` and one decaying away from
:math:`t = T`: the exponential turnpike (Trélat and Zuazua, arXiv 1402.3263, for the general statement through
Riccati equations; Geshkovski and Zuazua, arXiv 2202.04097, for a survey). The formulas are derived
in the book: Chapter 5, "The turnpike in its simplest form".
"""

from __future__ import annotations

import math

import numpy as np
import scipy.integrate
import torch

from .. import _checks

__all__ = ["ScalarLQ"]


class ScalarLQ:
    r"""The problem :math:`\min \int_0^T u^2 + q(x-z)^2\,dt` subject to :math:`\dot x = ax + u`, :math:`x(0)=x_0`.

    Parameters
    ----------
    a : float, the drift of the state equation.
    z : float, the running target of the state.
    x0 : float, the initial state.
    T : float > 0, the time horizon.
    q : float > 0, the weight of the tracking term (default 1).

    Examples
    --------
    >>> lq = ScalarLQ(a=0.0, z=1.0, x0=0.0, T=10.0)
    >>> lq.rate, lq.static()
    (1.0, (1.0, -0.0))
    """

    def __init__(self, a, z, x0, T, q=1.0):
        self.a = _checks.real(a, "a")
        self.z = _checks.real(z, "z")
        self.x0 = _checks.real(x0, "x0")
        self.T = _checks.real(T, "T", 0.0, strict=True)
        self.q = _checks.real(q, "q", 0.0, strict=True)

    @property
    def rate(self) -> float:
        r"""The turnpike rate :math:`\mu = \sqrt{a^2 + q}`, the positive eigenvalue of the Hamiltonian matrix."""
        return math.sqrt(self.a ** 2 + self.q)

    def static(self) -> tuple[float, float]:
        r"""The static optimum :math:`(\bar x, \bar u)`: minimise :math:`u^2 + q(x-z)^2` subject to :math:`ax + u = 0`.

        .. math:: \bar x = \frac{q z}{a^2 + q}, \qquad \bar u = -a\bar x .
        """
        x_bar = self.q * self.z / (self.a ** 2 + self.q)
        return x_bar, -self.a * x_bar

    def optimal(self, t):
        r"""The exact optimal state and control at the times ``t``.

        .. math:: x(t) = \bar x + \alpha e^{-\mu t} + \beta e^{-\mu(T-t)}, \qquad
                  u(t) = \bar u - \alpha(a+\mu)e^{-\mu t} - \beta(a-\mu)e^{-\mu(T-t)},

        where :math:`(\alpha, \beta)` solve the two boundary conditions :math:`x(0) = x_0`,
        :math:`\lambda(T) = 0` (a 2-by-2 linear system whose determinant
        :math:`(a-\mu) - (a+\mu)e^{-2\mu T}` is negative, so never zero). Only decaying exponentials
        appear, so the formula is exact and stable for any :math:`T`.

        Parameters
        ----------
        t : 1-D increasing sequence of times in [0, T].

        Returns
        -------
        (x, u) : two float64 tensors of the shape of ``t``.
        """
        t = self._times(t)
        alpha, beta = self._coefficients()
        mu, a = self.rate, self.a
        x_bar, u_bar = self.static()
        left, right = torch.exp(-mu * t), torch.exp(-mu * (self.T - t))
        x = x_bar + alpha * left + beta * right
        u = u_bar - alpha * (a + mu) * left - beta * (a - mu) * right
        return x, u

    def riccati(self, t, rtol=1e-10, atol=1e-12):
        r"""The optimal pair computed numerically, by the Riccati equation and the feedback law.

        The costate is affine in the state, :math:`\lambda = P(t)x + r(t)`, with

        .. math:: \dot P = P^2 - 2aP - q, \qquad \dot r = (P - a)\,r + qz, \qquad P(T) = r(T) = 0,

        integrated backward from :math:`T` (adaptive DOP853); then the closed loop
        :math:`\dot x = (a - P)x - r`, :math:`u = -(Px + r)` is integrated forward. Independent of
        :meth:`optimal`, against which the tests check it.

        Returns
        -------
        (x, u) : two float64 tensors of the shape of ``t``.
        """
        t = self._times(t)
        a, q, z = self.a, self.q, self.z
        rtol = _checks.real(rtol, "rtol", 0.0, strict=True)
        atol = _checks.real(atol, "atol", 0.0, strict=True)

        def backward(s, y):
            P, r = y
            return [P * P - 2 * a * P - q, (P - a) * r + q * z]

        gains = scipy.integrate.solve_ivp(backward, (self.T, 0.0), [0.0, 0.0], method="DOP853",
                                          dense_output=True, rtol=rtol, atol=atol)

        def closed_loop(s, x):
            P, r = gains.sol(s)
            return (a - P) * x - r

        state = scipy.integrate.solve_ivp(closed_loop, (0.0, self.T), [self.x0], method="DOP853",
                                          t_eval=t.numpy(), rtol=rtol, atol=atol)
        if not (gains.success and state.success):
            raise FloatingPointError(f"the Riccati solver failed: {gains.message} {state.message}")
        x = state.y[0]
        P, r = gains.sol(t.numpy())
        return torch.from_numpy(x.copy()), torch.from_numpy(-(P * x + r))

    def cost(self, t, x, u) -> float:
        r"""The cost :math:`\int_0^T u^2 + q(x-z)^2\,dt` of a pair sampled at the times ``t`` (trapezoid rule)."""
        t = self._times(t)
        x = _checks.floating_tensor(x, "x").double()
        u = _checks.floating_tensor(u, "u").double()
        if x.shape != t.shape or u.shape != t.shape:
            raise ValueError(f"x and u must have the shape of t {tuple(t.shape)}, got {tuple(x.shape)}, {tuple(u.shape)}")
        return torch.trapezoid(u ** 2 + self.q * (x - self.z) ** 2, t).item()

    def _coefficients(self):
        a, mu, T = self.a, self.rate, self.T
        x_bar, u_bar = self.static()
        lam_bar = -u_bar
        e = math.exp(-mu * T)
        # alpha + beta e = x0 - x_bar ;  alpha (a + mu) e + beta (a - mu) = -lam_bar
        M = np.array([[1.0, e], [(a + mu) * e, a - mu]])
        alpha, beta = np.linalg.solve(M, [self.x0 - x_bar, -lam_bar])
        return float(alpha), float(beta)

    def _times(self, t):
        t = _checks.times(t, "t")
        if t[0] < 0 or t[-1] > self.T * (1 + 1e-12):
            raise ValueError(f"t must lie in [0, T] = [0, {self.T}], got [{t[0].item()}, {t[-1].item()}]")
        return t
