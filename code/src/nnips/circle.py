r"""Tokens on the circle as angles: the Kuramoto form of SA and USA, its linearisation, noise, staircase.

On :math:`\mathbb S^1` a token is an angle, :math:`x_i=(\cos\theta_i,\sin\theta_i)`, and USA reads

.. math:: \dot\theta_i=\frac1n\sum_{j=1}^n e^{\beta\cos(\theta_j-\theta_i)}\sin(\theta_j-\theta_i),

the Kuramoto model at :math:`\beta=0` (GLPR, arXiv 2312.10794, eq. (7.1); Rigollet, arXiv
2512.01868, Section 3.3). For SA the sum is divided by :math:`\frac1n\sum_je^{\beta\cos(\theta_j-\theta_i)}`.
Angles are tensors shaped ``(..., n)``; :func:`points` and :func:`angles` convert to and from the
``(..., n, 2)`` configurations of the rest of :mod:`nnips`. Book: Chapter 3, "Metastability".
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.optimize
import scipy.special
import torch

from . import _checks
from .sphere import generator

__all__ = ["angles", "points", "velocity", "growth_rates", "fastest_mode", "order_parameter",
           "kuramoto_order", "langevin", "Staircase", "staircase_limit"]


def _angles(theta, name="theta"):
    theta = _checks.floating_tensor(theta, name)
    if theta.ndim < 1 or theta.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (..., n) with n >= 1, got {tuple(theta.shape)}")
    return theta


def points(theta) -> torch.Tensor:
    r"""The points :math:`(\cos\theta_i,\sin\theta_i)` of angles ``theta`` (..., n): shape (..., n, 2)."""
    theta = _angles(theta)
    return torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)


def angles(x) -> torch.Tensor:
    r"""The angles in :math:`(-\pi,\pi]` of points ``x`` (..., n, 2) on the circle: shape (..., n).

    Examples
    --------
    >>> angles(points(torch.tensor([0.5, -2.0], dtype=torch.float64))).tolist()
    [0.5, -2.0]
    """
    x = _checks.points(x, "x")
    if x.shape[-1] != 2:
        raise ValueError(f"x must lie on the circle (d = 2), got d = {x.shape[-1]}")
    return torch.atan2(x[..., 1], x[..., 0])


def _beta_like(beta, theta):
    if isinstance(beta, torch.Tensor):
        beta = _checks.floating_tensor(beta, "beta").to(dtype=theta.dtype, device=theta.device)
        return beta[..., None, None]
    return _checks.real(beta, "beta")


def velocity(theta, beta, normalized=True, rescaled=False) -> torch.Tensor:
    r"""The SA (``normalized=True``) or USA angular velocities :math:`\dot\theta_i`, shape (..., n).

    .. math:: \dot\theta_i=\frac{\sum_j e^{\beta\cos(\theta_j-\theta_i)}\sin(\theta_j-\theta_i)}
              {\sum_je^{\beta\cos(\theta_j-\theta_i)}}\ \text{(SA)},\qquad
              \frac1n\sum_j e^{\beta\cos(\theta_j-\theta_i)}\sin(\theta_j-\theta_i)\ \text{(USA)}.

    With ``rescaled=True`` USA is multiplied by :math:`e^{-\beta}` (the clock :math:`s=e^\beta t` of
    :class:`nnips.attention.RescaledUSA`). ``beta`` is a float or a tensor broadcasting against
    ``theta.shape[:-1]``. At ``beta = 0`` USA costs O(n) per token through the order parameter
    :math:`z=\frac1n\sum_je^{i\theta_j}`: :math:`\dot\theta_i=\operatorname{Im}(ze^{-i\theta_i})`.

    Examples
    --------
    Two tokens a quarter turn apart, Kuramoto (USA at beta = 0): each moves at speed 1/2.

    >>> velocity(torch.tensor([0.0, math.pi / 2], dtype=torch.float64), 0.0, normalized=False).round(decimals=12).tolist()
    [0.5, -0.5]
    """
    theta = _angles(theta)
    if not isinstance(normalized, bool) or not isinstance(rescaled, bool):
        raise TypeError("normalized and rescaled must be booleans")
    b = _beta_like(beta, theta)
    if not normalized and not isinstance(b, torch.Tensor) and b == 0:
        c, s = torch.cos(theta), torch.sin(theta)
        return s.mean(-1, keepdim=True) * c - c.mean(-1, keepdim=True) * s
    diff = theta.unsqueeze(-2) - theta.unsqueeze(-1)  # [i, j] = theta_j - theta_i
    cos = torch.cos(diff)
    if normalized:
        weights = torch.softmax(b * cos, dim=-1)
        return (weights * torch.sin(diff)).sum(-1)
    exponent = b * (cos - 1) if rescaled else b * cos
    return (torch.exp(exponent) * torch.sin(diff)).mean(-1)


def growth_rates(beta, k, normalized=True) -> np.ndarray:
    r"""Growth rates of the Fourier modes :math:`e^{ik\theta}` of the mean-field dynamics linearised at uniform.

    .. math:: \lambda_k=\frac{k^2I_k(\beta)}{\beta I_0(\beta)}\ \text{(SA)},\qquad
              \lambda_k=\frac{k^2I_k(\beta)}{\beta}\ \text{(USA)},

    with :math:`I_k` the modified Bessel functions, because :math:`e^{\beta\cos u}=\sum_kI_k(\beta)e^{iku}`
    (derivation in the book, Chapter 3, "How many clusters?"; the linearisation is that of Bruno,
    Pasqualotto, Agazzi, arXiv 2410.23228, on the circle). USA rates are returned on the clock
    :math:`s=e^\beta t` (multiplied by :math:`e^{-\beta}`), which keeps them finite at large beta.

    Parameters
    ----------
    beta : float > 0; k : int or array of non-negative ints; normalized : SA (True) or USA.

    Examples
    --------
    >>> float(np.round(growth_rates(1e-9, 1, normalized=False), 6))
    0.5
    """
    beta = _checks.real(beta, "beta", 0.0, strict=True)
    k = np.asarray(k)
    if not np.issubdtype(k.dtype, np.integer) or (k < 0).any():
        raise ValueError("k must be non-negative integers")
    scaled = k.astype(float) ** 2 * scipy.special.ive(k, beta) / beta  # I_k(beta) e^{-beta}
    return scaled / scipy.special.ive(0, beta) if normalized else scaled


def fastest_mode(beta) -> int:
    r"""The most unstable mode :math:`k^*(\beta)=\arg\max_{k\ge1}k^2I_k(\beta)` (the same for SA and USA).

    As :math:`\beta\to\infty`, :math:`I_k(\beta)\approx\frac{e^\beta}{\sqrt{2\pi\beta}}e^{-k^2/(2\beta)}`, so
    :math:`k^*\approx\sqrt{2\beta}`.

    Examples
    --------
    >>> fastest_mode(2.0), fastest_mode(128.0)
    (2, 16)
    """
    beta = _checks.real(beta, "beta", 0.0, strict=True)
    k = np.arange(1, int(10 * math.sqrt(beta)) + 10)
    return int(k[np.argmax(growth_rates(beta, k))])


def order_parameter(theta) -> torch.Tensor:
    r"""The Kuramoto order parameter :math:`r=\big|\frac1n\sum_je^{i\theta_j}\big|\in[0,1]`, shape ``theta.shape[:-1]``."""
    theta = _angles(theta)
    return torch.hypot(torch.cos(theta).mean(-1), torch.sin(theta).mean(-1))


def kuramoto_order(kappa) -> float:
    r"""The stationary order parameter of the noisy Kuramoto model in the mean-field limit.

    With noise :math:`\sqrt{2/\kappa}\,dW` the stationary densities are
    :math:`\propto e^{\kappa r\cos(\theta-\psi)}`, so that :math:`r` solves :math:`r=I_1(\kappa r)/I_0(\kappa r)`.
    The only solution is :math:`r=0` (uniform) for :math:`\kappa\le2`; for :math:`\kappa>2` a positive one
    appears (pitchfork at :math:`\kappa=2`), returned here (Rigollet, arXiv 2512.01868, Section 7,
    citing Bertini, Giacomin, Pakdaman 2010).

    Examples
    --------
    >>> kuramoto_order(1.5), round(kuramoto_order(4.0), 4)
    (0.0, 0.8315)
    """
    kappa = _checks.real(kappa, "kappa", 0.0, strict=True)
    if kappa <= 2:
        return 0.0

    def gap(r):
        return scipy.special.ive(1, kappa * r) / scipy.special.ive(0, kappa * r) - r

    return float(scipy.optimize.brentq(gap, 1e-12, 1.0, xtol=1e-14))


def langevin(theta0, beta, kappa, t, dt=0.01, seed=0, observe=None) -> torch.Tensor:
    r"""Noisy USA on the circle, integrated by Euler-Maruyama; states (or statistics) at the times ``t``.

    .. math:: d\theta_i=\frac1n\sum_{j=1}^ne^{\beta\cos(\theta_j-\theta_i)}\sin(\theta_j-\theta_i)\,dt
              +\sqrt{2/\kappa}\,dW_i ,

    the noisy Transformer of Rigollet (arXiv 2512.01868, Section 7) on :math:`\mathbb S^1`, whose
    angle is a coordinate in which Brownian motion on the circle is a standard Brownian motion. At
    :math:`\beta=0` it is the noisy Kuramoto model, at O(n) cost per step. Euler-Maruyama has weak
    order 1 (Kloeden, Platen 1992): expectations are off by O(dt).

    Parameters
    ----------
    theta0 : (..., n) tensor of angles; leading dimensions are independent systems.
    beta : float >= 0 (one for the batch); kappa : float > 0 or a tensor of them broadcasting
        against ``theta0.shape[:-1]`` (one noise level per system).
    t : 1-D increasing times; each interval is cut into ``ceil(interval / dt)`` equal steps.
    dt : float > 0; seed : int or torch.Generator; observe : optional callable on the state.

    Returns
    -------
    tensor of shape ``(len(t), *theta0.shape)`` or ``(len(t), *observe(theta0).shape)``.
    """
    theta = _angles(theta0, "theta0")
    beta = _checks.real(beta, "beta", 0.0)
    if isinstance(kappa, torch.Tensor):
        kappa = _checks.floating_tensor(kappa, "kappa").to(dtype=theta.dtype, device=theta.device)
        if bool((kappa <= 0).any()):
            raise ValueError("kappa must be > 0")
        kappa = kappa.unsqueeze(-1)
    else:
        kappa = _checks.real(kappa, "kappa", 0.0, strict=True)
    t = _checks.times(t, "t")
    dt = _checks.real(dt, "dt", 0.0, strict=True)
    record = (lambda y: y) if observe is None else observe
    g = generator(seed)
    sigma = (2.0 / kappa) ** 0.5
    out = [record(theta)]
    for a, b in zip(t[:-1].tolist(), t[1:].tolist()):
        m = max(1, math.ceil((b - a) / dt - 1e-9))
        h = (b - a) / m
        for _ in range(m):
            noise = torch.randn(theta.shape, generator=g, dtype=torch.float64).to(dtype=theta.dtype,
                                                                                  device=theta.device)
            theta = theta + h * velocity(theta, beta, normalized=False) + (sigma * math.sqrt(h)) * noise
        out.append(record(theta))
    return torch.stack(out)


class Staircase(NamedTuple):
    """The limit profile of :func:`staircase_limit`."""

    levels: np.ndarray  #: normalised energy on each plateau, from 1/n to 1 (length k)
    jumps: np.ndarray  #: rescaled times s at which it jumps (length k - 1)
    merges: list  #: the merging clusters, as pairs of lists of token indices


def staircase_limit(theta0) -> Staircase:
    r"""The :math:`\beta\to\infty` limit of the normalised USA energy along the arclength clock, from distinct angles.

    In the limit, only the closest pair of clusters moves (Bruno, Pasqualotto, Agazzi, arXiv
    2509.25040, as stated by Rigollet, arXiv 2512.01868, Section 5.2): clusters :math:`a,b` of mass
    fractions :math:`m_a,m_b` at angular gap :math:`g` approach along the geodesic with velocities
    proportional to :math:`m_b` and :math:`m_a`, so they meet at the mass-weighted mean angle. Then

    - the normalised energy :math:`\frac1{n^2}\sum_{ij}e^{\beta(\cos(\theta_i-\theta_j)-1)}\to\sum_am_a^2`,
      so each merge raises it by :math:`(m_a+m_b)^2-m_a^2-m_b^2=2m_am_b`;
    - on the clock of :class:`nnips.flow.ArcLength` (root-mean-square distance travelled), the merge
      takes :math:`g\sqrt{m_am_b/(m_a+m_b)}`.

    This profile is derived in the book (Chapter 3, "The energy staircase"); Geshkovski, Koubbi,
    Polyanskiy and Rigollet (arXiv 2410.06833, Section 6) prove a staircase limit under their own
    time change.

    Parameters
    ----------
    theta0 : (n,) tensor of distinct angles.

    Examples
    --------
    >>> s = staircase_limit(torch.tensor([0.0, 0.1, 1.0], dtype=torch.float64))
    >>> s.levels.round(4).tolist(), s.jumps.round(4).tolist()
    ([0.3333, 0.5556, 1.0], [0.0408, 0.4887])
    """
    theta = _angles(theta0, "theta0")
    if theta.ndim != 1 or theta.numel() < 2:
        raise ValueError(f"theta0 must be one configuration of n >= 2 angles, got shape {tuple(theta.shape)}")
    n = theta.numel()
    positions = [float(a) for a in theta.tolist()]
    members = [[i] for i in range(n)]
    levels, jumps, merges, clock = [1.0 / n], [], [], 0.0
    while len(positions) > 1:
        best = None
        for a in range(len(positions)):
            for b in range(a + 1, len(positions)):
                gap = math.remainder(positions[b] - positions[a], 2 * math.pi)
                if best is None or abs(gap) < abs(best[2]):
                    best = (a, b, gap)
        a, b, gap = best
        if gap == 0:
            raise ValueError("theta0 must hold distinct angles")
        ma, mb = len(members[a]) / n, len(members[b]) / n
        clock += abs(gap) * math.sqrt(ma * mb / (ma + mb))
        jumps.append(clock)
        levels.append(levels[-1] + 2 * ma * mb)
        merges.append((list(members[a]), list(members[b])))
        positions[a] = positions[a] + gap * mb / (ma + mb)
        members[a] = members[a] + members[b]
        del positions[b], members[b]
    return Staircase(np.array(levels), np.array(jumps), merges)
