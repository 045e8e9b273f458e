r"""Self-attention in :math:`\mathbb R^d` without normalisation, and its rescaled tokens :math:`z = e^{-tV}x`.

Geshkovski, Letrouit, Polyanskiy, Rigollet, "The emergence of clusters in self-attention dynamics"
(arXiv 2305.05465), study the unnormalised dynamics

.. math::
    \dot x_i = \sum_{j=1}^n P_{ij}(t)\,Vx_j,\qquad
    P_{ij}(t) = \frac{e^{\beta\langle Qx_i,Kx_j\rangle}}{\sum_k e^{\beta\langle Qx_i,Kx_k\rangle}} .

Tokens grow like :math:`e^{tV}`; the rescaled tokens :math:`z_i(t) = e^{-tV}x_i(t)`, "a surrogate for
layer normalisation", solve

.. math::
    \dot z_i = \sum_{j=1}^n P_{ij}(t)\,V(z_j - z_i),\qquad
    P_{ij}(t) = \operatorname{softmax}_j\big(\beta\langle Qe^{tV}z_i, Ke^{tV}z_j\rangle\big),

with the same attention matrix (GLPR, arXiv 2312.10794, Section 9.2, eqs. (9.1)-(9.3)). As
:math:`\beta\to\infty` the softmax becomes a hardmax over the active sets
:math:`C_i = \arg\max_j\langle Qz_i,Kz_j\rangle` (GLPR, Section 9.3).

Tokens are rows of tensors shaped ``(..., n, d)``, here with any ``d >= 1``. Book: Chapter 2,
"What the value matrix decides".
"""

from __future__ import annotations

import math

import torch

from . import _checks

__all__ = ["Rescaled", "integrate", "hardmax_velocity", "leaders"]


def _tokens(z, name="z", d=None):
    z = _checks.floating_tensor(z, name)
    if z.ndim < 2 or z.shape[-2] < 1 or z.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (..., n, d) with n, d >= 1, got {tuple(z.shape)}")
    if d is not None and z.shape[-1] != d:
        raise ValueError(f"{name} has dimension d = {z.shape[-1]} but the matrices are {d} x {d}")
    return z


def _matrix(M, name, d):
    if M is None:
        return torch.eye(d, dtype=torch.float64)
    M = _checks.floating_tensor(torch.as_tensor(M, dtype=torch.float64), name).detach()
    M = M.reshape(1, 1) if M.ndim == 0 else M
    if M.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}), got {tuple(M.shape)}")
    return M


class Rescaled:
    r"""The rescaled self-attention field :math:`\dot z_i = \sum_j P_{ij}(t)V(z_j-z_i)`.

    .. math:: P_{ij}(t) = \operatorname{softmax}_j\big(\beta\langle Qe^{tV}z_i, Ke^{tV}z_j\rangle\big)

    (GLPR, arXiv 2305.05465; the form (9.3) of arXiv 2312.10794). Non-autonomous: call it as
    ``field(t, z)``.

    Parameters
    ----------
    V : (d, d) tensor, or a real number when d = 1.
    Q, K : None (the identity) or (d, d) tensors (numbers when d = 1).
    beta : real, inverse temperature (default 1; the paper absorbs it into Q^T K).

    Examples
    --------
    A lone token attends only to itself, so it does not move in the rescaled frame:

    >>> field = Rescaled(V=torch.eye(2, dtype=torch.float64))
    >>> field(0.0, torch.tensor([[1.0, 2.0]], dtype=torch.float64))
    tensor([[0., 0.]], dtype=torch.float64)
    """

    def __init__(self, V, Q=None, K=None, beta=1.0):
        V = _checks.floating_tensor(torch.as_tensor(V, dtype=torch.float64), "V").detach()
        V = V.reshape(1, 1) if V.ndim == 0 else V
        if V.ndim != 2 or V.shape[0] != V.shape[1]:
            raise ValueError(f"V must be a square (d, d) matrix, got shape {tuple(V.shape)}")
        self.d = V.shape[0]
        self.V = V
        self.Q, self.K = _matrix(Q, "Q", self.d), _matrix(K, "K", self.d)
        self.beta = _checks.real(beta, "beta")

    def propagator(self, t) -> torch.Tensor:
        r""":math:`e^{tV}`, a (d, d) float64 tensor (``torch.linalg.matrix_exp``)."""
        t = _checks.real(t, "t")
        return torch.linalg.matrix_exp(t * self.V)

    def _cast(self, z, *mats):
        return [M.to(dtype=z.dtype, device=z.device) for M in mats]

    def _attention(self, t, z):
        E = self.propagator(t)
        M, N = self._cast(z, self.Q @ E, self.K @ E)
        return torch.softmax(self.beta * (z @ M.mT) @ (z @ N.mT).mT, dim=-1)

    def attention_matrix(self, t, z) -> torch.Tensor:
        r"""The attention matrix :math:`P(t)`, shape (..., n, n); the same for :math:`x` and :math:`z`."""
        return self._attention(_checks.real(t, "t"), _tokens(z, "z", self.d))

    def __call__(self, t, z) -> torch.Tensor:
        (V,) = self._cast(z, self.V)
        P = self._attention(t, z)
        # sum_j P_ij V (z_j - z_i) = V (P z - z)_i, because the rows of P sum to one.
        return (P @ z - z) @ V.mT

    def to_x(self, t, z) -> torch.Tensor:
        r"""The unnormalised tokens :math:`x_i = e^{tV}z_i`."""
        z = _tokens(z, "z", self.d)
        (E,) = self._cast(z, self.propagator(t))
        return z @ E.mT

    def from_x(self, t, x) -> torch.Tensor:
        r"""The rescaled tokens :math:`z_i = e^{-tV}x_i`."""
        x = _tokens(x, "x", self.d)
        (E,) = self._cast(x, self.propagator(-_checks.real(t, "t")))
        return x @ E.mT

    def __repr__(self):
        return f"Rescaled(d={self.d}, beta={self.beta})"


def integrate(field, z0, t, dt=0.05, method="rk4", observe=None) -> torch.Tensor:
    r"""Solve the non-autonomous system :math:`\dot z = \mathrm{field}(t, z)` in :math:`\mathbb R^d`.

    Fixed-step classical RK4 (order 4) or explicit Euler (order 1); each interval
    :math:`[t_k, t_{k+1}]` is cut into ``ceil((t_{k+1}-t_k)/dt)`` equal steps.

    Parameters
    ----------
    field : callable ``(t, z) -> dz/dt``, e.g. :class:`Rescaled` or a hardmax field.
    z0 : (..., n, d) tensor; t : 1-D increasing times, ``t[0]`` the time of ``z0``.
    dt : largest step; method : "rk4" or "euler".
    observe : optional callable ``(t, z) -> tensor`` recorded instead of the state.

    Returns
    -------
    tensor ``(len(t), *z0.shape)`` (or of the observed shape), in the dtype of ``z0``.
    """
    if not callable(field):
        raise TypeError(f"field must be callable, got {type(field).__name__}")
    if method not in ("rk4", "euler"):
        raise ValueError(f"unknown method {method!r}; valid methods: euler, rk4")
    z = _tokens(z0, "z0")
    t = _checks.times(t, "t")
    dt = _checks.real(dt, "dt", 0.0, strict=True)
    record = (lambda s, y: y) if observe is None else observe
    out = [record(t[0].item(), z)]
    for a, b in zip(t[:-1].tolist(), t[1:].tolist()):
        m = max(1, math.ceil((b - a) / dt - 1e-9))
        h = (b - a) / m
        for k in range(m):
            s = a + k * h
            if method == "euler":
                z = z + h * field(s, z)
            else:
                k1 = field(s, z)
                k2 = field(s + h / 2, z + (h / 2) * k1)
                k3 = field(s + h / 2, z + (h / 2) * k2)
                k4 = field(s + h, z + h * k3)
                z = z + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
        if not bool(torch.isfinite(z).all()):
            raise FloatingPointError(f"the state became non-finite before t = {b:g}; reduce dt or T")
        out.append(record(b, z))
    return torch.stack(out)


def hardmax_velocity(z, Q=None, K=None, V=None, tol=1e-12) -> torch.Tensor:
    r"""The hardmax field, the :math:`\beta\to\infty` limit of the softmax dynamics.

    .. math::
        \dot z_i = \frac{1}{|C_i|}\sum_{j\in C_i}V(z_j - z_i),\qquad
        C_i = \{j:\langle Qz_i,Kz_j\rangle \ge \max_k\langle Qz_i,Kz_k\rangle - \mathrm{tol}\}

    (GLPR, arXiv 2312.10794, Section 9.3). Ties within ``tol`` share the attention equally.

    Parameters
    ----------
    z : (..., n, d) tensor; Q, K, V : None (identity) or (d, d) tensors; tol : >= 0.
    """
    z = _tokens(z, "z")
    d = z.shape[-1]
    tol = _checks.real(tol, "tol", 0.0)
    Q, K, V = (_matrix(M, name, d).to(dtype=z.dtype, device=z.device) for M, name in ((Q, "Q"), (K, "K"), (V, "V")))
    scores = (z @ Q.mT) @ (z @ K.mT).mT
    active = (scores >= scores.amax(dim=-1, keepdim=True) - tol).to(z.dtype)
    P = active / active.sum(dim=-1, keepdim=True)
    return (P @ z - z) @ V.mT


def leaders(P, threshold=0.5) -> list:
    r"""The leaders of an attention matrix: the tokens ``j`` that receive weight above ``threshold``
    from at least one token, :math:`\{j:\max_i P_{ij} > \text{threshold}\}` (sorted indices).

    For a Boolean (0/1) attention matrix these are its non-zero columns, and their number bounds
    its rank. ``P`` is one matrix of shape (n, n).
    """
    P = _checks.floating_tensor(P, "P")
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise ValueError(f"P must be one square (n, n) matrix, got shape {tuple(P.shape)}")
    threshold = _checks.real(threshold, "threshold", 0.0)
    return torch.nonzero(P.amax(dim=0) > threshold).flatten().tolist()
