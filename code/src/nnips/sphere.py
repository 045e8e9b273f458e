r"""The unit sphere :math:`\mathbb S^{d-1}\subset\mathbb R^d`, where layer normalisation puts the tokens.

Configurations of ``n`` points are tensors shaped ``(..., n, d)``; leading dimensions are batches
(seeds, parameter grids). Book: Chapter 1, "A Transformer layer as an interacting particle system".
"""

from __future__ import annotations

import math
from math import comb

import numpy as np
import scipy.optimize
import torch

from . import _checks

__all__ = [
    "uniform",
    "hemisphere",
    "around",
    "cap",
    "orthonormal",
    "equiangular",
    "normalize",
    "project",
    "generator",
    "in_open_hemisphere",
    "wendel_probability",
]


def generator(seed, device=None) -> torch.Generator:
    """Return a ``torch.Generator`` seeded with ``seed`` (an int), or ``seed`` itself if it is one."""
    if isinstance(seed, torch.Generator):
        return seed
    seed = _checks.integer(seed, "seed", 0)
    return torch.Generator(device=device or "cpu").manual_seed(seed)


def _shape(n, d, batch):
    n = _checks.integer(n, "n", 1)
    d = _checks.integer(d, "d", 2)
    batch = (batch,) if isinstance(batch, int) else tuple(batch)
    for b in batch:
        _checks.integer(b, "batch entries", 1)
    return (*batch, n, d)


def normalize(x: torch.Tensor) -> torch.Tensor:
    r"""Retract onto the sphere: :math:`x_i \mapsto x_i/\|x_i\|` (what layer normalisation does).

    Parameters
    ----------
    x : (..., n, d) tensor with no zero rows.

    Examples
    --------
    >>> normalize(torch.tensor([[3.0, 4.0]]))
    tensor([[0.6000, 0.8000]])
    """
    x = _checks.points(x, "x", on_sphere=False)
    norms = x.norm(dim=-1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError("x has a zero row, which has no direction to normalise to")
    return x / norms


def project(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r"""Tangent projection :math:`P^\perp_{x} v = v - \langle x, v\rangle x` at each point.

    GLPR (arXiv 2312.10794), eq. (2.3). No input checks: this runs inside every vector field.

    Examples
    --------
    >>> project(torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 3.0]]))
    tensor([[0., 3.]])
    """
    return v - (x * v).sum(-1, keepdim=True) * x


def uniform(n, d, batch=(), seed=0, dtype=torch.float64, device=None) -> torch.Tensor:
    r"""``n`` i.i.d. points from the uniform law :math:`\sigma_d` on :math:`\mathbb S^{d-1}`.

    Normalised standard Gaussian vectors are uniform on the sphere (rotation invariance).

    Parameters
    ----------
    n : int >= 1, number of points.
    d : int >= 2, ambient dimension.
    batch : int or tuple of ints, leading batch shape.
    seed : int or torch.Generator.
    dtype, device : of the returned tensor (float64 on the CPU by default).

    Returns
    -------
    (*batch, n, d) tensor with unit rows.

    Examples
    --------
    >>> x = uniform(5, 3, batch=2, seed=0)
    >>> x.shape, bool(torch.allclose(x.norm(dim=-1), torch.ones(2, 5, dtype=torch.float64)))
    (torch.Size([2, 5, 3]), True)
    """
    shape = _shape(n, d, batch)
    g = generator(seed)
    z = torch.randn(shape, generator=g, dtype=torch.float64)
    return (z / z.norm(dim=-1, keepdim=True)).to(dtype=dtype, device=device)


def hemisphere(n, d, w=None, batch=(), seed=0, dtype=torch.float64, device=None) -> torch.Tensor:
    r"""``n`` i.i.d. uniform points on the open hemisphere :math:`\{x:\langle x,w\rangle>0\}`.

    Reflecting a uniform point across the hyperplane :math:`w^\perp` when it lies on the wrong side
    gives the uniform law on the hemisphere. ``w`` defaults to the last basis vector.
    """
    x = uniform(n, d, batch=batch, seed=seed)
    d = x.shape[-1]
    w = torch.eye(d, dtype=torch.float64)[-1] if w is None else normalize(
        _checks.floating_tensor(w, "w").double().reshape(1, -1)
    )[0]
    if w.shape != (d,):
        raise ValueError(f"w must have shape ({d},), got {tuple(w.shape)}")
    s = x @ w
    x = x - 2 * torch.minimum(s, torch.zeros_like(s))[..., None] * w
    return x.to(dtype=dtype, device=device)


def around(n, center, spread, batch=(), seed=0, dtype=torch.float64, device=None) -> torch.Tensor:
    r"""``n`` i.i.d. points :math:`(c+sz)/\|c+sz\|` with :math:`z` standard Gaussian: a cloud around :math:`c`.

    The projected normal law centred at the unit vector :math:`c=` ``center/|center|`` with spread
    :math:`s>0`; it tends to :math:`\delta_c` as :math:`s\to0` and to the uniform law as :math:`s\to\infty`.

    Parameters
    ----------
    n : int >= 1; center : (d,) tensor, non-zero; spread : float > 0.
    batch, seed, dtype, device : as in :func:`uniform`.

    Examples
    --------
    >>> x = around(4, torch.tensor([0.0, 0.0, 2.0]), 1e-9)
    >>> bool(torch.allclose(x, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)))
    True
    """
    center = _checks.floating_tensor(center, "center").detach().to(torch.float64)
    if center.ndim != 1 or center.shape[0] < 2 or center.norm() == 0:
        raise ValueError(f"center must be a non-zero vector of dimension d >= 2, got shape {tuple(center.shape)}")
    spread = _checks.real(spread, "spread", 0.0, strict=True)
    shape = _shape(n, center.shape[0], batch)
    z = center / center.norm() + spread * torch.randn(shape, generator=generator(seed), dtype=torch.float64)
    return (z / z.norm(dim=-1, keepdim=True)).to(dtype=dtype, device=device)


def orthonormal(n, d, batch=(), seed=None, dtype=torch.float64, device=None) -> torch.Tensor:
    r"""``n`` mutually orthogonal unit vectors in :math:`\mathbb R^d` (needs ``d >= n``).

    With ``seed=None`` these are the first ``n`` basis vectors; otherwise a Haar-random orthonormal
    frame (QR of a Gaussian matrix with the sign convention that makes it Haar distributed).
    This is the start of the exact equiangular solution, GLPR (arXiv 2312.10794) Theorem 6.8.
    """
    shape = _shape(n, d, batch)
    n, d = shape[-2:]
    if d < n:
        raise ValueError(f"orthonormal needs d >= n, got n = {n}, d = {d}")
    if seed is None:
        x = torch.eye(d, dtype=torch.float64)[:n].expand(shape).clone()
    else:
        z = torch.randn((*shape[:-2], d, n), generator=generator(seed), dtype=torch.float64)
        q, r = torch.linalg.qr(z)
        q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[..., None, :]
        x = q.transpose(-1, -2)
    return x.to(dtype=dtype, device=device)


def equiangular(n, d, rho, dtype=torch.float64, device=None) -> torch.Tensor:
    r"""``n`` unit vectors in :math:`\mathbb R^d` with :math:`\langle x_i,x_j\rangle=\rho` for all ``i != j``.

    The Gram matrix :math:`(1-\rho)I+\rho\mathbf 1\mathbf 1^\top` is positive definite for
    :math:`-1/(n-1)<\rho<1`; its Cholesky factor gives the points (in the first ``n`` coordinates).
    """
    n = _checks.integer(n, "n", 1)
    d = _checks.integer(d, "d", 2)
    rho = _checks.real(rho, "rho")
    if d < n:
        raise ValueError(f"equiangular needs d >= n, got n = {n}, d = {d}")
    lower = -1.0 / (n - 1) if n > 1 else -1.0
    if not lower < rho < 1:
        raise ValueError(f"rho must lie in ({lower:.4g}, 1) for n = {n}, got {rho}")
    gram = (1 - rho) * torch.eye(n, dtype=torch.float64) + rho
    x = torch.zeros(n, d, dtype=torch.float64)
    x[:, :n] = torch.linalg.cholesky(gram)
    return x.to(dtype=dtype, device=device)


def in_open_hemisphere(x) -> torch.Tensor:
    r"""Whether all points of each configuration lie in one open hemisphere.

    Decided by the linear programme :math:`\max\{s:\langle x_i,w\rangle\ge s,\ \|w\|_\infty\le1\}`:
    the points lie in an open hemisphere iff the optimum is positive (Gordan's alternative: iff 0
    is not in their convex hull). Used for Wendel's theorem, GLPR (arXiv 2312.10794) Theorem 6.7.

    Parameters
    ----------
    x : (..., n, d) tensor of points on the sphere.

    Returns
    -------
    bool tensor of shape ``x.shape[:-2]``.
    """
    x = _checks.points(x, "x")
    flat = x.detach().double().cpu().reshape(-1, *x.shape[-2:]).numpy()
    n, d = flat.shape[1:]
    cost = np.zeros(d + 1)
    cost[-1] = -1.0  # maximise s
    bounds = [(-1.0, 1.0)] * d + [(None, 1.0)]
    answers = []
    for pts in flat:
        a_ub = np.hstack([-pts, np.ones((n, 1))])  # s - <x_i, w> <= 0
        res = scipy.optimize.linprog(cost, A_ub=a_ub, b_ub=np.zeros(n), bounds=bounds, method="highs")
        if res.status != 0:
            raise RuntimeError(f"hemisphere linear programme failed: {res.message}")
        answers.append(-res.fun > 1e-9)
    return torch.tensor(answers, dtype=torch.bool).reshape(x.shape[:-2])


def wendel_probability(n, d) -> float:
    r"""Wendel's probability that ``n`` uniform points on :math:`\mathbb S^{d-1}` lie in an open hemisphere.

    .. math:: p(n, d) = 2^{-(n-1)} \sum_{k=0}^{d-1} \binom{n-1}{k}

    Wendel (1962); GLPR (arXiv 2312.10794) Theorem 6.7. Equals 1 when ``d >= n``.

    Examples
    --------
    >>> wendel_probability(3, 2)
    0.75
    """
    n = _checks.integer(n, "n", 1)
    d = _checks.integer(d, "d", 2)
    return sum(comb(n - 1, k) for k in range(min(d, n))) / 2 ** (n - 1)


def cap(n, center, eps, batch=(), seed=0, dtype=torch.float64, device=None) -> torch.Tensor:
    r"""``n`` random points of the spherical cap :math:`\mathcal S_w(\varepsilon)=\{x:\langle x,w\rangle\ge1-\varepsilon\}`.

    The caps of the metastability theorem of Geshkovski, Koubbi, Polyanskiy, Rigollet
    (arXiv 2410.06833): tokens start in caps around well-separated centres. A point is
    :math:`\cos r\,w+\sin r\,u` with :math:`u` a uniform unit tangent vector at :math:`w` and geodesic
    radius :math:`r = r_{\max}U^{1/(d-1)}`, :math:`U` uniform on [0, 1] and
    :math:`r_{\max}=\arccos(1-\varepsilon)`: uniform on the geodesic ball to first order in
    :math:`r_{\max}`, and always inside the cap.

    Parameters
    ----------
    n : int >= 1; center : (d,) tensor, non-zero (normalised here); eps : float in (0, 2].
    batch, seed, dtype, device : as in :func:`uniform`.

    Examples
    --------
    >>> w = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    >>> bool((cap(50, w, 0.01, seed=1) @ w >= 1 - 0.01).all())
    True
    """
    center = _checks.floating_tensor(center, "center").detach().to(torch.float64)
    if center.ndim != 1 or center.shape[0] < 2 or center.norm() == 0:
        raise ValueError(f"center must be a non-zero vector of dimension d >= 2, got shape {tuple(center.shape)}")
    eps = _checks.real(eps, "eps", 0.0, strict=True)
    if eps > 2:
        raise ValueError(f"eps must lie in (0, 2], got {eps}")
    w = center / center.norm()
    shape = _shape(n, w.shape[0], batch)
    g = generator(seed)
    u = project(w.expand(shape), torch.randn(shape, generator=g, dtype=torch.float64))
    u = u / u.norm(dim=-1, keepdim=True)
    r_max = math.acos(1 - eps)
    r = r_max * torch.rand(shape[:-1], generator=g, dtype=torch.float64) ** (1.0 / (shape[-1] - 1))
    x = torch.cos(r)[..., None] * w + torch.sin(r)[..., None] * u
    return (x / x.norm(dim=-1, keepdim=True)).to(dtype=dtype, device=device)
