r"""SGD on linear least squares: exact moments, the SDE and the stochastic modified flow.

Least squares on ``M`` data points is the one problem where the law of SGD is known in closed
form at every step: the gradient is affine in the parameters, so the first and second moments of
the iterates obey a closed linear recursion, and those of the SDE approximations a closed linear
ODE. Book: Chapter 7, pages "Noise of machine-learning type" and "Stochastic modified flows".
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .. import _checks
from ..sphere import generator

__all__ = ["LinearRegression", "SGDPath", "Moments"]


class SGDPath(NamedTuple):
    """Iterates recorded at the steps ``step``: ``theta`` of shape ``(len(step), ..., p)``, ``loss`` ``(len(step), ...)``."""

    step: torch.Tensor
    theta: torch.Tensor
    loss: torch.Tensor


class Moments(NamedTuple):
    """First moment ``mean`` ``(..., p)`` and second moment ``second`` :math:`\\mathbb E[\\theta\\theta^\\top]` ``(..., p, p)``."""

    mean: torch.Tensor
    second: torch.Tensor


def _record(record, steps):
    record = [0, steps] if record is None else [_checks.integer(k, "record entries", 0) for k in record]
    if not record or any(b <= a for a, b in zip(record, record[1:])) or record[-1] > steps:
        raise ValueError(f"record must be strictly increasing step counts in [0, {steps}], got {record}")
    return record


class LinearRegression:
    r"""Least squares on ``M`` points: :math:`L(\theta) = \frac1{2M}\sum_{m=1}^M(\langle x_m,\theta\rangle - y_m)^2`.

    The per-sample gradient :math:`g_m(\theta) = x_m(\langle x_m,\theta\rangle - y_m) = A_m\theta - b_m`
    (:math:`A_m = x_mx_m^\top`, :math:`b_m = y_mx_m`) is affine in :math:`\theta`, with mean
    :math:`\nabla L(\theta) = H\theta - b`, :math:`H = \frac1M\sum_mA_m`. With more parameters than
    points (``p > M``) and generic data, the problem interpolates: :math:`\min L = 0`.

    Parameters
    ----------
    x : (M, p) tensor
    y : (M,) tensor

    Examples
    --------
    >>> problem = LinearRegression(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([1.0, 2.0]))
    >>> problem.loss(torch.tensor([1.0, 1.0])).item(), problem.gradient(torch.zeros(2)).tolist()
    (0.0, [-0.5, -2.0])
    """

    def __init__(self, x, y):
        x = _checks.floating_tensor(x, "x")
        y = _checks.floating_tensor(y, "y")
        if x.ndim != 2 or y.shape != x.shape[:1]:
            raise ValueError(f"x must have shape (M, p) and y shape (M,), got {tuple(x.shape)} and {tuple(y.shape)}")
        if y.dtype != x.dtype:
            raise TypeError(f"x and y must have the same dtype, got {x.dtype} and {y.dtype}")
        self.x, self.y = x, y
        self.M, self.p = x.shape
        self.A = x[:, :, None] * x[:, None, :]          # (M, p, p)
        self.b_m = y[:, None] * x                        # (M, p)
        self.H = self.A.mean(0)
        self.b = self.b_m.mean(0)

    def __repr__(self):
        return f"LinearRegression(M={self.M}, p={self.p})"

    def _theta(self, theta, name="theta"):
        theta = _checks.floating_tensor(theta, name)
        if theta.ndim < 1 or theta.shape[-1] != self.p:
            raise ValueError(f"{name} must have shape (..., {self.p}), got {tuple(theta.shape)}")
        return theta.to(self.x.dtype)

    def loss(self, theta):
        """:math:`L(\\theta)`, shape ``theta.shape[:-1]``."""
        theta = self._theta(theta)
        return 0.5 * ((theta @ self.x.T - self.y) ** 2).mean(-1)

    def gradient(self, theta):
        """:math:`\\nabla L(\\theta) = H\\theta - b`, shape of ``theta``."""
        return self._theta(theta) @ self.H - self.b

    def covariance(self, theta):
        r"""Covariance of one sampled gradient, :math:`\Sigma(\theta) = \frac1M\sum_m g_mg_m^\top - \nabla L\nabla L^\top`.

        It vanishes where every :math:`g_m` does, in particular at an interpolating minimiser:
        noise "of machine-learning type" (Wojtowytsch, arXiv 2105.01650).
        """
        theta = self._theta(theta)
        g = torch.einsum("...j,mjk->...mk", theta, self.A) - self.b_m   # (..., M, p)
        g = g - g.mean(-2, keepdim=True)
        return g.transpose(-1, -2) @ g / self.M

    def solution(self, theta):
        r"""The minimiser of :math:`L` closest to ``theta``: :math:`\theta - X^+(X\theta - y)`.

        Gradient descent and SGD move only inside :math:`\theta_0 + \operatorname{span}\{x_m\}`,
        so when they converge it is to this point of the set of minimisers.
        """
        theta = self._theta(theta)
        return theta - (theta @ self.x.T - self.y) @ torch.linalg.pinv(self.x).T

    def sgd(self, theta, eta, steps, P=1, additive=0.0, record=None, seed=0) -> SGDPath:
        r"""SGD with constant step, or gradient descent with additive noise, from ``theta``.

        .. math::
            \theta_{k+1} = \theta_k - \eta\Big(\frac1P\sum_{j=1}^P g_{m_{k,j}}(\theta_k) + s\,\xi_k\Big),

        the :math:`m_{k,j}` uniform on the data with replacement (``P = None``: the full gradient
        :math:`\nabla L` instead) and :math:`\xi_k` standard Gaussian vectors (``additive`` is
        :math:`s`, 0 by default). Leading dimensions of ``theta`` are independent runs.

        Returns
        -------
        SGDPath
        """
        theta = self._theta(theta)
        eta = _checks.real(eta, "eta", minimum=0.0, strict=True)
        steps = _checks.integer(steps, "steps", 0)
        if P is not None:
            P = _checks.integer(P, "P", 1)
        s = _checks.real(additive, "additive", minimum=0.0)
        record = _record(record, steps)
        g = generator(seed)
        wanted, thetas = set(record), []
        for k in range(steps + 1):
            if k in wanted:
                thetas.append(theta)
            if k == steps:
                break
            if P is None:
                grad = theta @ self.H - self.b
            else:
                index = torch.randint(self.M, (*theta.shape[:-1], P), generator=g)
                x = self.x[index]                                     # (..., P, p)
                grad = ((x @ theta[..., :, None])[..., 0] - self.y[index])[..., None, :] @ x / P
                grad = grad[..., 0, :]
            if s > 0:
                grad = grad + s * torch.randn(theta.shape, generator=g, dtype=theta.dtype)
            theta = theta - eta * grad
        thetas = torch.stack(thetas)
        return SGDPath(torch.tensor(record), thetas, self.loss(thetas))

    # ---- exact moments -------------------------------------------------------------------------

    def _moment_terms(self, c0, m, S):
        """E[grad L grad L^T] and E[Sigma(theta)] for theta with moments (m, S); c0 multiplies constants."""
        outer_b = self.b[:, None] * self.b[None, :]
        HmB = (self.H @ m)[:, None] * self.b[None, :]
        full = self.H @ S @ self.H - HmB - HmB.T + c0 * outer_b
        Am = self.A @ m                                                 # (M, p)
        cross = (Am[:, :, None] * self.b_m[:, None, :]).mean(0)
        per_sample = (self.A @ S @ self.A).mean(0) - cross - cross.T \
            + c0 * (self.b_m[:, :, None] * self.b_m[:, None, :]).mean(0)
        return full, per_sample - full

    def _sgd_map(self, c0, m, S, eta, P, s):
        full, sigma = self._moment_terms(c0, m, S)
        grad_m = self.H @ m - c0 * self.b
        # E[theta grad^T] and E[grad theta^T], written for any (not only symmetric) S, so that the
        # matrix of the map is stable on the whole space of p x p matrices
        Sg = S @ self.H - m[:, None] * self.b[None, :]
        gS = self.H @ S - self.b[:, None] * m[None, :]
        noise = 0 if P is None else sigma / P
        S_next = S - eta * (Sg + gS) + eta ** 2 * (full + noise) \
            + c0 * eta ** 2 * s ** 2 * torch.eye(self.p, dtype=S.dtype)
        return c0, m - eta * grad_m, S_next

    def _sde_field(self, c0, m, S, eta, P, modified):
        B = torch.eye(self.p, dtype=S.dtype) + (0.5 * eta * self.H if modified else 0)
        _, sigma = self._moment_terms(c0, m, S)
        dm = -B @ (self.H @ m - c0 * self.b)
        Bb = B @ self.b
        drift_theta = -B @ self.H @ S + Bb[:, None] * m[None, :]           # E[drift theta^T]
        theta_drift = -S @ self.H @ B + m[:, None] * Bb[None, :]           # E[theta drift^T] (B H = H B)
        return 0 * c0, dm, drift_theta + theta_drift + eta / P * sigma

    def _as_matrix(self, fn):
        """The matrix of a linear map of (c0, m, S), on the vector (c0, m, vec S)."""
        p = self.p
        columns = []
        for j in range(1 + p + p * p):
            z = torch.zeros(1 + p + p * p, dtype=self.x.dtype)
            z[j] = 1
            c0, m, S = fn(z[0], z[1:1 + p], z[1 + p:].reshape(p, p))
            columns.append(torch.cat([torch.as_tensor(c0, dtype=z.dtype).reshape(1), m, S.reshape(-1)]))
        return torch.stack(columns, dim=1)

    def _start(self, mean, second):
        mean = self._theta(mean, "mean")
        second = _checks.floating_tensor(second, "second").to(self.x.dtype)
        if mean.shape != (self.p,) or second.shape != (self.p, self.p):
            raise ValueError(f"mean must have shape ({self.p},) and second shape ({self.p}, {self.p}), "
                             f"got {tuple(mean.shape)} and {tuple(second.shape)}")
        return torch.cat([torch.ones(1, dtype=self.x.dtype), mean, second.reshape(-1)])

    def _split(self, z):
        return Moments(z[..., 1:1 + self.p], z[..., 1 + self.p:].reshape(*z.shape[:-1], self.p, self.p))

    def sgd_moments(self, mean, second, eta, steps, P=1, additive=0.0) -> Moments:
        r"""Exact first and second moments of the SGD iterates of :meth:`sgd` after ``steps`` steps.

        With :math:`m_k = \mathbb E\theta_k` and :math:`S_k = \mathbb E\theta_k\theta_k^\top`,

        .. math::
            m_{k+1} = m_k - \eta(Hm_k - b),\qquad
            S_{k+1} = S_k - \eta\,(G_k + G_k^\top) + \eta^2\Big(\mathbb E\,\nabla L\nabla L^\top
            + \tfrac1P\,\mathbb E\,\Sigma(\theta_k) + s^2 I\Big),

        :math:`G_k = \mathbb E[\theta_k\nabla L(\theta_k)^\top] = S_kH - m_kb^\top`; the expectations of
        :math:`\nabla L\nabla L^\top` and :math:`\Sigma` are linear in :math:`(m_k, S_k)` because the
        gradients are affine. (A direct computation; ``P = None`` drops the sampling term.)

        Returns
        -------
        Moments
            ``mean`` ``(p,)`` and ``second`` ``(p, p)``.
        """
        z = self._start(mean, second)
        eta = _checks.real(eta, "eta", minimum=0.0, strict=True)
        steps = _checks.integer(steps, "steps", 0)
        P = None if P is None else _checks.integer(P, "P", 1)
        s = _checks.real(additive, "additive", minimum=0.0)
        T = self._as_matrix(lambda c0, m, S: self._sgd_map(c0, m, S, eta, P, s))
        return self._split(torch.linalg.matrix_power(T, steps) @ z)

    def sde_moments(self, mean, second, eta, t, P=1, modified=False) -> Moments:
        r"""Exact moments at time ``t`` of the SDE approximation of SGD with step ``eta`` and batch ``P``.

        .. math::
            d\theta_t = -B\,\nabla L(\theta_t)\,dt + \sqrt{\eta/P}\;\Sigma(\theta_t)^{1/2}\,dW_t,\qquad
            B = I \text{ (plain SDE)},\quad B = I + \tfrac\eta2H \text{ (modified flow)},

        where :math:`B\nabla L = \nabla\big(L + \frac\eta4\|\nabla L\|^2\big)` for the modified
        drift. The moments solve the linear ODE
        :math:`\dot m = -B(Hm - b)`, :math:`\dot S = D + D^\top + \frac\eta P\mathbb E\,\Sigma(\theta_t)`,
        :math:`D = \mathbb E[\text{drift}\;\theta^\top]`, integrated exactly with a matrix exponential.
        The first-order SDE is the stochastic modified equation of Li, Tai and E (arXiv 1511.06251);
        the drift correction is that of the second-order modified equation, and the stochastic
        modified flows of Gess, Kassing and Konarovskyi (arXiv 2302.07125) have the same one-time
        law with a cylindrical noise (see :meth:`sde`). The weak orders 1 and 2 are derived for this
        problem in the book (Chapter 7, "Stochastic modified flows").

        Returns
        -------
        Moments
        """
        z = self._start(mean, second)
        eta = _checks.real(eta, "eta", minimum=0.0, strict=True)
        t = _checks.real(t, "t", minimum=0.0)
        P = _checks.real(P, "P", minimum=0.0, strict=True)
        if not isinstance(modified, bool):
            raise TypeError(f"modified must be True or False, got {modified!r}")
        Q = self._as_matrix(lambda c0, m, S: self._sde_field(c0, m, S, eta, P, modified))
        return self._split(torch.linalg.matrix_exp(t * Q) @ z)

    def sde(self, theta, eta, t, h, P=1, modified=False, seed=0) -> torch.Tensor:
        r"""Euler-Maruyama paths of the SDE of :meth:`sde_moments`, with one Brownian motion per data point.

        .. math::
            d\theta_t = -B\,\nabla L(\theta_t)\,dt + \sqrt{\frac{\eta}{PM}}\sum_{m=1}^M
            \big(g_m(\theta_t) - \nabla L(\theta_t)\big)\,dW^m_t,

        whose diffusion matrix is :math:`\frac\eta P\Sigma(\theta)` and whose coefficients are affine
        in :math:`\theta` (no matrix square root): the form of the stochastic modified flows of Gess,
        Kassing and Konarovskyi (arXiv 2302.07125, abstract: "driven by a cylindrical Brownian
        motion", "regular diffusion coefficients"), here for finitely many data points.

        Parameters
        ----------
        theta : (..., p) tensor
            Starts (leading dimensions are independent paths).
        eta : float
            SGD step that the SDE imitates.
        t, h : float
            Final time and Euler-Maruyama step (``t/h`` must be an integer).
        P : float
        modified : bool
        seed : int

        Returns
        -------
        (..., p) tensor: the paths at time ``t``.
        """
        theta = self._theta(theta)
        eta = _checks.real(eta, "eta", minimum=0.0, strict=True)
        t = _checks.real(t, "t", minimum=0.0)
        h = _checks.real(h, "h", minimum=0.0, strict=True)
        P = _checks.real(P, "P", minimum=0.0, strict=True)
        steps = round(t / h)
        if abs(steps * h - t) > 1e-9 * max(t, 1):
            raise ValueError(f"t / h must be an integer, got t = {t}, h = {h}")
        B = torch.eye(self.p, dtype=self.x.dtype) + (0.5 * eta * self.H if modified else 0)
        g = generator(seed)
        scale = math.sqrt(h * eta / (P * self.M))
        for _ in range(steps):
            per_sample = torch.einsum("...j,mjk->...mk", theta, self.A) - self.b_m   # (..., M, p)
            grad = per_sample.mean(-2)
            z = torch.randn((*theta.shape[:-1], self.M), generator=g, dtype=theta.dtype)
            noise = (z[..., None, :] @ (per_sample - grad[..., None, :]))[..., 0, :]
            theta = theta - h * grad @ B.T + scale * noise
        return theta

    # ---- interpolation: rates and floors -------------------------------------------------------

    def _span(self):
        U, sv, _ = torch.linalg.svd(self.x.T, full_matrices=False)
        rank = int((sv > sv[0] * self.p * torch.finfo(self.x.dtype).eps).sum())
        return U[:, :rank]

    def mean_square_rate(self, eta, P=1):
        r"""The exact factor :math:`\rho` by which :math:`\mathbb E\,L(\theta_k)` of interpolating SGD shrinks per step, asymptotically.

        When the data interpolate, the error :math:`e_k = \theta_k - \theta_*` (projected on the span
        of the data) obeys :math:`e_{k+1} = (I - \eta\hat A_k)e_k` with :math:`\hat A_k` the mean of
        :math:`A_m` over the mini-batch; its second moment :math:`E_k = \mathbb E e_ke_k^\top` follows
        the linear map :math:`E\mapsto\mathbb E[(I - \eta\hat A)E(I-\eta\hat A)]`, and
        :math:`\rho` is its spectral radius (a direct computation; the linear convergence of SGD with
        noise of machine-learning type is the subject of Wojtowytsch, arXiv 2105.01650).
        """
        eta = _checks.real(eta, "eta", minimum=0.0, strict=True)
        P = _checks.integer(P, "P", 1)
        U = self._span()
        A = U.T @ self.A @ U                                            # (M, r, r)
        r = A.shape[-1]
        Hr = A.mean(0)
        # E[(I - eta A^)E(I - eta A^)] = E - eta(H E + E H) + eta^2 E[A^ E A^], with
        # E[A^ E A^] = H E H + (mean_m A_m E A_m - H E H) / P for P draws with replacement.
        ops = []
        for j in range(r * r):
            E = torch.zeros(r * r, dtype=A.dtype)
            E[j] = 1
            E = E.reshape(r, r)
            AEA = Hr @ E @ Hr + ((A @ E @ A).mean(0) - Hr @ E @ Hr) / P
            ops.append((E - eta * (Hr @ E + E @ Hr) + eta ** 2 * AEA).reshape(-1))
        return float(torch.linalg.eigvals(torch.stack(ops, dim=1)).abs().max())

    def additive_floor(self, eta, additive):
        r"""The exact limit of :math:`\mathbb E\,L(\theta_k)` for gradient descent with additive noise, when the data interpolate.

        With :math:`\theta_{k+1} = \theta_k - \eta(\nabla L(\theta_k) + s\xi_k)` and :math:`\lambda_i`
        the nonzero eigenvalues of :math:`H`, each eigen-direction of the error is an AR(1) process
        with variance :math:`\eta s^2/(\lambda_i(2 - \eta\lambda_i))` at stationarity, so

        .. math::
            \lim_k\mathbb E\,L(\theta_k) = \frac{\eta s^2}{2}\sum_i\frac{1}{2 - \eta\lambda_i}
            \approx \frac{\eta s^2 r}{4}\quad(\eta\to0,\ r = \operatorname{rank}H),

        proportional to the step (a direct computation). Needs :math:`\eta\lambda_{\max} < 2`.
        """
        eta = _checks.real(eta, "eta", minimum=0.0, strict=True)
        s = _checks.real(additive, "additive", minimum=0.0)
        U = self._span()
        lam = torch.linalg.eigvalsh(U.T @ self.H @ U)
        if float(eta * lam.max()) >= 2:
            raise ValueError(f"eta * lambda_max must be < 2 for a stationary law, got {float(eta * lam.max()):.3g}")
        return float(eta * s ** 2 / 2 * (1 / (2 - eta * lam)).sum())
