r"""Stein variational gradient descent (SVGD): sampling by a deterministic interacting particle system.

Liu and Wang, "Stein variational gradient descent: a general purpose Bayesian inference algorithm"
(NeurIPS 2016, arXiv 1608.04471) move particles :math:`x_1,\dots,x_n\in\mathbb R^d` toward a target
density :math:`p` along

.. math::
    \phi(x_i) = \frac1n\sum_{j=1}^n\Big(k(x_j,x_i)\,\nabla\log p(x_j) + \nabla_{x_j}k(x_j,x_i)\Big),
    \qquad x_i \leftarrow x_i + \varepsilon\,\phi(x_i),

(their Algorithm 1): a kernel-weighted average of the score (attraction toward high density) plus a
repulsion between particles. With the Gaussian kernel :math:`k(x,y)=e^{-\|x-y\|^2/h}` the
repulsion is minus an unnormalised self-attention update (book, Chapter 4, "Stein variational
gradient descent"). Particles are tensors ``(..., n, d)``, any :math:`d\ge1`.
"""

from __future__ import annotations

import math

import torch

from . import _checks
from .sphere import generator

__all__ = ["GaussianMixture", "kernel", "median_bandwidth", "direction", "ksd", "run"]


def _particles(x, name="x"):
    x = _checks.floating_tensor(x, name)
    if x.ndim < 2 or x.shape[-2] < 1 or x.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (..., n, d) with n, d >= 1, got {tuple(x.shape)}")
    return x


def _bandwidth(h):
    return _checks.real(h, "h", 0.0, strict=True)


def kernel(x, y, h):
    r"""The Gaussian (RBF) kernel matrix :math:`k(x_i,y_j)=e^{-\|x_i-y_j\|^2/h}`, shape (..., n, m)."""
    x, y = _particles(x, "x"), _particles(y, "y")
    h = _bandwidth(h)
    return torch.exp(-torch.cdist(x, y).pow(2) / h)


def median_bandwidth(x) -> torch.Tensor:
    r"""The median heuristic :math:`h=\mathrm{med}^2/\log n` of Liu and Wang (arXiv 1608.04471, experiments),
    with :math:`\mathrm{med}` the median distance between distinct particles; shape ``x.shape[:-2]``.

    It balances the two terms of :func:`direction`: :math:`\sum_jk(x_i,x_j)\approx n\,e^{-\mathrm{med}^2/h}=1`.
    """
    x = _particles(x)
    n = x.shape[-2]
    if n < 2:
        raise ValueError("the median bandwidth needs n >= 2 particles")
    dist = torch.cdist(x, x)
    i, j = torch.triu_indices(n, n, 1)
    med = dist[..., i, j].median(dim=-1).values
    return med.pow(2) / math.log(n)


def _h_for(x, h):
    if h is None:
        return median_bandwidth(x)[..., None, None]
    return torch.as_tensor(_bandwidth(h), dtype=x.dtype)


def _scores(score, x):
    s = score(x)
    if not isinstance(s, torch.Tensor) or s.shape != x.shape:
        raise ValueError(f"score(x) must return a tensor shaped like x, {tuple(x.shape)}")
    if not bool(torch.isfinite(s).all()):
        raise FloatingPointError("score(x) returned non-finite values")
    return s


def direction(x, score, h=None) -> torch.Tensor:
    r"""The SVGD direction :math:`\phi(x_i)` for all particles, shape (..., n, d).

    .. math::
        \phi(x_i) = \frac1n\sum_j k_{ij}\Big(\nabla\log p(x_j) + \frac2h(x_i-x_j)\Big),\qquad
        k_{ij}=e^{-\|x_i-x_j\|^2/h}

    (Liu and Wang, arXiv 1608.04471, Algorithm 1, with :math:`\nabla_{x_j}k(x_j,x_i)=\frac2h(x_i-x_j)k_{ij}`).

    Parameters
    ----------
    x : (..., n, d) tensor of particles.
    score : callable returning :math:`\nabla\log p` at each particle, shaped like ``x``.
    h : float > 0, or None for :func:`median_bandwidth`.

    Examples
    --------
    One particle follows the score: gradient ascent on :math:`\log p`.

    >>> direction(torch.tensor([[2.0]]), lambda x: -x, h=1.0)
    tensor([[-2.]])
    """
    x = _particles(x)
    hh = _h_for(x, h)
    s = _scores(score, x)
    k = torch.exp(-torch.cdist(x, x).pow(2) / hh)
    n = x.shape[-2]
    repulsion = (2.0 / hh) * (k.sum(-1, keepdim=True) * x - k @ x)
    return (k @ s + repulsion) / n


def ksd(x, score, h=None) -> torch.Tensor:
    r"""The kernel Stein discrepancy :math:`\mathrm{KSD}(\mu_n, p)` of the empirical measure (V-statistic).

    .. math::
        \mathrm{KSD}^2 = \frac1{n^2}\sum_{i,j}k_{ij}\Big(s_i\cdot s_j+\frac2h(x_i-x_j)\cdot(s_i-s_j)
        +\frac{2d}h-\frac{4\|x_i-x_j\|^2}{h^2}\Big),\qquad s_i=\nabla\log p(x_i),

    the squared RKHS norm of the optimal direction :math:`\phi` (Liu and Wang, arXiv 1608.04471,
    Section 3). It vanishes in the limit :math:`\mu_n\to p` and is
    the rate at which SVGD decreases the KL divergence in the continuous-time, many-particle limit.
    Returns shape ``x.shape[:-2]``.
    """
    x = _particles(x)
    hh = _h_for(x, h)
    s = _scores(score, x)
    d = x.shape[-1]
    diff = x.unsqueeze(-2) - x.unsqueeze(-3)          # x_i - x_j
    sq = diff.pow(2).sum(-1)
    k = torch.exp(-sq / hh)
    ss = s @ s.mT
    cross = (diff * (s.unsqueeze(-2) - s.unsqueeze(-3))).sum(-1)
    u = k * (ss + (2.0 / hh) * cross + 2.0 * d / hh - 4.0 * sq / hh.pow(2))
    return u.mean(dim=(-1, -2)).clamp_min(0.0).sqrt()


def run(x0, score, steps, step_size, h=None, every=None):
    r"""Iterate :math:`x\leftarrow x+\varepsilon\,\phi(x)` (:func:`direction`) ``steps`` times.

    Parameters
    ----------
    x0 : (..., n, d) tensor, the initial particles.
    score : callable, :math:`\nabla\log p`.
    steps : int >= 0; step_size : float > 0, :math:`\varepsilon`.
    h : float > 0, or None for the median heuristic recomputed at every step (as Liu and Wang do).
    every : None (return the final particles) or int >= 1 (return the particles after
        0, every, 2 every, ... steps, and after the last one, stacked in a tensor).
    """
    x = _particles(x0, "x0")
    steps = _checks.integer(steps, "steps", 0)
    eps = _checks.real(step_size, "step_size", 0.0, strict=True)
    if every is not None:
        every = _checks.integer(every, "every", 1)
    out = [x]
    for k in range(1, steps + 1):
        x = x + eps * direction(x, score, h)
        if every is not None and (k % every == 0 or k == steps):
            out.append(x)
    if not bool(torch.isfinite(x).all()):
        raise FloatingPointError("SVGD diverged: lower step_size")
    return x if every is None else torch.stack(out)


class GaussianMixture:
    r"""A mixture of isotropic Gaussians :math:`p=\sum_k w_k\,\mathcal N(m_k,\sigma_k^2I_d)`, a target for SVGD.

    Parameters
    ----------
    means : (K, d) tensor; stds : (K,) tensor of positive standard deviations;
    weights : None (equal) or (K,) tensor of positive weights summing to one.
    """

    def __init__(self, means, stds, weights=None):
        self.means = _checks.floating_tensor(means, "means").detach().to(torch.float64)
        self.stds = _checks.floating_tensor(stds, "stds").detach().to(torch.float64)
        if self.means.ndim != 2 or self.stds.shape != self.means.shape[:1] or bool((self.stds <= 0).any()):
            raise ValueError(f"means must be (K, d) and stds (K,) positive, got {tuple(self.means.shape)} "
                             f"and {tuple(self.stds.shape)}")
        K = self.means.shape[0]
        w = torch.full((K,), 1.0 / K, dtype=torch.float64) if weights is None else \
            _checks.floating_tensor(weights, "weights").detach().to(torch.float64)
        if w.shape != (K,) or bool((w <= 0).any()) or abs(w.sum().item() - 1) > 1e-12:
            raise ValueError(f"weights must be {K} positive numbers summing to one")
        self.weights = w
        self.d = self.means.shape[1]

    def _log_components(self, x):
        if x.shape[-1] != self.d:
            raise ValueError(f"x must have dimension d = {self.d}, got {x.shape[-1]}")
        sq = (x.unsqueeze(-2) - self.means).pow(2).sum(-1)              # (..., n, K)
        var = self.stds.pow(2)
        return torch.log(self.weights) - 0.5 * sq / var - 0.5 * self.d * torch.log(2 * math.pi * var)

    def log_density(self, x) -> torch.Tensor:
        r""":math:`\log p(x)`, shape ``x.shape[:-1]``."""
        return torch.logsumexp(self._log_components(_checks.floating_tensor(x, "x")), dim=-1)

    def score(self, x) -> torch.Tensor:
        r"""The score :math:`\nabla\log p(x)=\sum_k r_k(x)\,(m_k-x)/\sigma_k^2`, with responsibilities :math:`r_k`."""
        x = _checks.floating_tensor(x, "x")
        r = torch.softmax(self._log_components(x), dim=-1)             # (..., n, K)
        pull = (self.means - x.unsqueeze(-2)) / self.stds.pow(2)[:, None]
        return (r.unsqueeze(-1) * pull).sum(-2)

    def sample(self, n, seed=0) -> torch.Tensor:
        """``n`` independent samples, shape (n, d), float64."""
        n = _checks.integer(n, "n", 1)
        g = generator(seed)
        k = torch.multinomial(self.weights, n, replacement=True, generator=g)
        z = torch.randn(n, self.d, generator=g, dtype=torch.float64)
        return self.means[k] + self.stds[k, None] * z

    def __repr__(self):
        return f"GaussianMixture(K={self.means.shape[0]}, d={self.d})"
