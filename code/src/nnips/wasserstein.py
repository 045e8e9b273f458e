r"""The quadratic Wasserstein distance :math:`W_2` between weighted point clouds, through POT.

Measures are sums of Dirac masses :math:`\mu=\sum_i a_i\delta_{x_i}` given by their atoms ``x`` of shape
``(n, d)`` and optional weights ``a`` (uniform by default). :func:`w2` solves the exact optimal
transport problem with ``ot.emd2`` (Flamary et al., "POT: Python Optimal Transport", JMLR 2021);
:func:`w2_dirac` is the closed form against one Dirac mass, used to measure how far tokens are from
having collapsed. Book: Chapter 4, "Expressivity". :func:`w2_gaussian` is the closed form between two
Gaussians and :func:`assignment` the optimal matching of two equal-size samples (an empirical optimal
transport map); Chapter 8, "A neural ODE as a transport map".
"""

from __future__ import annotations

import numpy as np
import ot
import torch

from . import _checks

__all__ = ["w2", "w2_dirac", "w2_gaussian", "assignment"]


def _cloud(x, name):
    x = _checks.floating_tensor(x, name)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape (n, d) with n >= 1, got {tuple(x.shape)}")
    return x


def _weights(a, n, name, like):
    if a is None:
        return torch.full((n,), 1.0 / n, dtype=torch.float64, device=like.device)
    a = _checks.floating_tensor(a, name).to(dtype=torch.float64, device=like.device)
    if a.shape != (n,) or bool((a < 0).any()):
        raise ValueError(f"{name} must hold {n} non-negative weights, got shape {tuple(a.shape)}")
    if abs(a.sum().item() - 1.0) > 1e-9:
        raise ValueError(f"{name} must sum to one (a probability measure), got {a.sum().item():.6g}")
    return a


def w2(x, y, a=None, b=None) -> float:
    r"""The Wasserstein distance :math:`W_2(\mu,\nu)` between two weighted point clouds.

    Here :math:`\mu=\sum_i a_i\delta_{x_i}` and :math:`\nu=\sum_j b_j\delta_{y_j}`, and

    .. math::
        W_2(\mu,\nu)^2 = \min_{\pi\in\Pi(a,b)}\sum_{i,j}\pi_{ij}\,\|x_i-y_j\|^2,

    where :math:`\Pi(a,b)` is the set of non-negative matrices with row sums :math:`a` and column
    sums :math:`b`: the Kantorovich problem with the squared Euclidean cost (Peyre and Cuturi,
    "Computational Optimal Transport", arXiv 1803.00567, Chapter 2).
    The linear programme is solved exactly by ``ot.emd2``.

    Parameters
    ----------
    x : (n, d) tensor, the atoms of the first measure.
    y : (m, d) tensor, the atoms of the second measure.
    a, b : None (uniform) or (n,) and (m,) tensors of non-negative weights summing to one.

    Returns
    -------
    float, the distance (in the Euclidean metric of the ambient space).

    Examples
    --------
    Two Dirac masses at distance 5:

    >>> w2(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]]))
    5.0
    """
    x, y = _cloud(x, "x"), _cloud(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must live in the same dimension, got d = {x.shape[1]} and {y.shape[1]}")
    a = _weights(a, x.shape[0], "a", x)
    b = _weights(b, y.shape[0], "b", y)
    xn, yn = x.detach().double().cpu().numpy(), y.detach().double().cpu().numpy()
    cost = ot.dist(xn, yn, metric="sqeuclidean")
    # Renormalise in float64 so that POT's marginal check sees sums equal to one to rounding.
    an, bn = a.cpu().numpy(), b.cpu().numpy()
    squared = ot.emd2(an / an.sum(), bn / bn.sum(), cost, numItermax=10 * (x.shape[0] + y.shape[0]) ** 2)
    return float(np.sqrt(max(float(squared), 0.0)))


def w2_dirac(x, point, a=None) -> torch.Tensor:
    r"""The distance :math:`W_2(\mu,\delta_p)=\big(\sum_i a_i\|x_i-p\|^2\big)^{1/2}` to a Dirac mass, batched.

    The only coupling of :math:`\mu` with a Dirac mass sends all the mass to :math:`p`, so the
    minimum in the definition of :func:`w2` is over a single plan, the product :math:`a\otimes 1`.

    Parameters
    ----------
    x : (..., n, d) tensor, the atoms (a batch of measures).
    point : (d,) tensor, or (..., d) with one point per measure of the batch.
    a : None (uniform) or (..., n) tensor of weights summing to one.

    Returns
    -------
    tensor of shape ``x.shape[:-2]``.

    Examples
    --------
    >>> w2_dirac(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]), torch.zeros(2)).item()
    1.0
    """
    x = _checks.floating_tensor(x, "x")
    if x.ndim < 2 or x.shape[-2] < 1:
        raise ValueError(f"x must have shape (..., n, d) with n >= 1, got {tuple(x.shape)}")
    point = _checks.floating_tensor(point, "point").to(dtype=x.dtype, device=x.device)
    if point.shape[-1] != x.shape[-1]:
        raise ValueError(f"point must have dimension d = {x.shape[-1]}, got shape {tuple(point.shape)}")
    squared = ((x - point.unsqueeze(-2)) ** 2).sum(-1)
    if a is None:
        return squared.mean(-1).sqrt()
    a = _checks.floating_tensor(a, "a").to(dtype=x.dtype, device=x.device)
    if a.shape != x.shape[:-1] or bool((a < 0).any()):
        raise ValueError(f"a must hold non-negative weights of shape {tuple(x.shape[:-1])}, got {tuple(a.shape)}")
    if not torch.allclose(a.sum(-1), torch.ones((), dtype=a.dtype, device=a.device)):
        raise ValueError("a must sum to one (a probability measure)")
    return (a * squared).sum(-1).sqrt()


def _psd_sqrt(S):
    values, vectors = torch.linalg.eigh(S)
    return (vectors * values.clamp_min(0).sqrt()[..., None, :]) @ vectors.mT


def _covariance(S, d, name):
    S = _checks.floating_tensor(S, name).to(torch.float64)
    if S.shape != (d, d) or not torch.allclose(S, S.mT, atol=1e-12, rtol=1e-10):
        raise ValueError(f"{name} must be a symmetric ({d}, {d}) matrix, got shape {tuple(S.shape)}")
    if torch.linalg.eigvalsh(S).min().item() < -1e-12 * max(1.0, S.abs().max().item()):
        raise ValueError(f"{name} must be positive semi-definite (a covariance matrix)")
    return S


def w2_gaussian(m1, S1, m2, S2) -> float:
    r"""The closed form of :math:`W_2(\mathcal N(m_1,\Sigma_1), \mathcal N(m_2,\Sigma_2))`.

    .. math::
        W_2^2 = |m_1-m_2|^2 + \operatorname{tr}\Big(\Sigma_1+\Sigma_2
                - 2\big(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}\big)^{1/2}\Big),

    attained by the affine map :math:`x\mapsto m_2 + A(x-m_1)`,
    :math:`A = \Sigma_1^{-1/2}(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}\Sigma_1^{-1/2}` (Peyré and
    Cuturi, arXiv 1803.00567, Remark 2.31).

    Parameters
    ----------
    m1, m2 : (d,) tensors, the means; S1, S2 : (d, d) symmetric positive semi-definite tensors.

    Examples
    --------
    >>> w2_gaussian(torch.zeros(2), torch.eye(2), torch.tensor([3.0, 4.0]), 4 * torch.eye(2))  # 25 + 2 (2 - 1)^2
    5.196152422706632
    """
    m1 = _checks.floating_tensor(m1, "m1").to(torch.float64)
    m2 = _checks.floating_tensor(m2, "m2").to(torch.float64)
    if m1.ndim != 1 or m2.shape != m1.shape:
        raise ValueError(f"m1 and m2 must be vectors of the same length, got {tuple(m1.shape)} and {tuple(m2.shape)}")
    d = m1.shape[0]
    S1, S2 = _covariance(S1, d, "S1"), _covariance(S2, d, "S2")
    root = _psd_sqrt(S1)
    cross = _psd_sqrt(root @ S2 @ root)
    squared = ((m1 - m2) ** 2).sum() + torch.trace(S1 + S2 - 2 * cross)
    return float(squared.clamp_min(0).sqrt())


def assignment(x, y) -> torch.Tensor:
    r"""The optimal matching :math:`\sigma` of two samples of equal size: pair :math:`x_i` with :math:`y_{\sigma(i)}`.

    For uniform weights on :math:`n` points each, the Kantorovich problem of :func:`w2` has a
    permutation matrix among its solutions (Birkhoff), found by ``ot.emd``; :math:`x_i\mapsto
    y_{\sigma(i)}` is the empirical optimal transport map, and
    :math:`\frac1n\sum_i|x_i-y_{\sigma(i)}|^2 = W_2^2`. By cyclical monotonicity, the identity is an
    optimal matching of :math:`x_i` with :math:`T(x_i)` whenever :math:`T` is an optimal transport
    map (Peyré and Cuturi, arXiv 1803.00567, Chapter 2).

    Parameters
    ----------
    x, y : (n, d) tensors.

    Returns
    -------
    (n,) long tensor, the permutation :math:`\sigma`.

    Examples
    --------
    >>> assignment(torch.tensor([[0.0], [1.0], [2.0]]), torch.tensor([[2.1], [-0.1], [0.9]])).tolist()
    [1, 2, 0]
    """
    x, y = _cloud(x, "x"), _cloud(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape (n, d), got {tuple(x.shape)} and {tuple(y.shape)}")
    n = x.shape[0]
    xn, yn = x.detach().double().cpu().numpy(), y.detach().double().cpu().numpy()
    weights = np.full(n, 1.0 / n)
    plan = ot.emd(weights, weights, ot.dist(xn, yn, metric="sqeuclidean"), numItermax=20 * n * n + 100000)
    sigma = torch.from_numpy(np.asarray(plan).argmax(axis=1))
    if torch.unique(sigma).numel() != n:
        raise FloatingPointError("the optimal plan found is not a permutation; perturb the points slightly")
    return sigma.to(x.device)
