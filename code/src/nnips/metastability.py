r"""The experiments of Chapter 3, "Metastability", as functions: pages and the command line share them.

Each runs a whole batch (seeds, betas) as one tensor through
:func:`nnips.flow.integrate_adaptive`, with clusters merged by :func:`nnips.clusters.snap` once
their tokens are within ``merge_delta`` (in inner product; ``1e-12`` means :math:`1.4\cdot10^{-6}`
apart), so that long plateaus cost few steps. They run on the device and in the dtype of their
arguments (``device="cuda"`` for the paper-scale runs of :mod:`nnips.experiments.metastability`).

- :func:`cluster_counts`: the number of clusters of SA from uniform tokens, recorded in time.
- :func:`escape_times`: tokens in separated caps; when the first one leaves its cap, when caps merge.
- :func:`staircase`: the normalised USA energy on the arclength clock, from a given start.
"""

from __future__ import annotations

import math

import torch

from . import _checks, attention, clusters, flow, sphere

__all__ = ["cluster_counts", "escape_times", "two_caps", "staircase"]


def _betas(betas, device):
    b = torch.as_tensor(betas, dtype=torch.float64)
    b = _checks.floating_tensor(b.reshape(-1), "betas")
    if b.numel() < 1 or bool((b <= 0).any()):
        raise ValueError("betas must be a non-empty sequence of positive numbers")
    return b.to(device)


def cluster_counts(betas, n, d, seeds, t, seed=0, delta=1e-3, merge_delta=1e-12, rtol=1e-7, atol=1e-9,
                   dtype=torch.float64, device=None, progress=False) -> torch.Tensor:
    r"""Cluster counts along SA from i.i.d. uniform tokens, for every beta and seed at once.

    .. math:: \dot x_i = P^\perp_{x_i}\Big(\frac{\sum_j e^{\beta\langle x_i,x_j\rangle}x_j}{\sum_k e^{\beta\langle x_i,x_k\rangle}}\Big)

    (GLPR, arXiv 2312.10794, eq. (2.4)); all betas start from the same ``seeds`` configurations.

    Parameters
    ----------
    betas : sequence of positive floats (B values).
    n, d : tokens and dimension; seeds : int >= 1, independent starts per beta.
    t : 1-D increasing recording times (log-spaced: :func:`nnips.flow.log_times`).
    seed : int; delta : the scale of :func:`nnips.clusters.number`; merge_delta : of the merging.
    rtol, atol : tolerances of :func:`nnips.flow.integrate_adaptive`.

    Returns
    -------
    int64 tensor of shape (len(t), B, seeds).
    """
    b = _betas(betas, device)
    seeds = _checks.integer(seeds, "seeds", 1)
    x0 = sphere.uniform(n, d, batch=seeds, seed=seed, dtype=dtype, device=device).expand(b.numel(), seeds, n, d)
    field = attention.SelfAttention(b.cpu().reshape(-1, 1))
    return flow.integrate_adaptive(field, x0.contiguous(), t, rtol=rtol, atol=atol,
                                   merge=lambda x: clusters.snap(x, merge_delta),
                                   observe=lambda x: clusters.number(x, delta), progress=progress)


def two_caps(m, angle, eps, d=3, batch=(), seed=0, dtype=torch.float64, device=None):
    r"""``2m`` tokens in two caps :math:`\mathcal S_{w_1}(\varepsilon),\mathcal S_{w_2}(\varepsilon)` with :math:`\angle(w_1,w_2)=` ``angle``.

    The centres are :math:`w_1=e_1` and :math:`w_2=\cos(\mathrm{angle})e_1+\sin(\mathrm{angle})e_2`. Also
    returns each token's centre and the theorem's :math:`\alpha`, the largest inner product between
    points of the doubled caps :math:`\mathcal S_{w_q}(2\varepsilon)`:
    :math:`\alpha=\cos(\mathrm{angle}-2\arccos(1-2\varepsilon))` (Geshkovski, Koubbi, Polyanskiy,
    Rigollet, arXiv 2410.06833, as transcribed in the book).

    Returns
    -------
    (x0, home, alpha) : (*batch, 2m, d) tokens, (2m, d) centres, float.
    """
    m = _checks.integer(m, "m", 1)
    angle = _checks.real(angle, "angle", 0.0, strict=True)
    eps = _checks.real(eps, "eps", 0.0, strict=True)
    d = _checks.integer(d, "d", 2)
    if 2 * math.acos(1 - 2 * eps) >= angle:
        raise ValueError(f"the doubled caps overlap: need 2 arccos(1 - 2 eps) < angle, got eps = {eps}, "
                         f"angle = {angle}")
    w = torch.zeros(2, d, dtype=torch.float64)
    w[0, 0] = 1.0
    w[1, 0], w[1, 1] = math.cos(angle), math.sin(angle)
    x0 = torch.cat([sphere.cap(m, w[0], eps, batch=batch, seed=seed),
                    sphere.cap(m, w[1], eps, batch=batch, seed=seed + 1)], dim=-2)
    home = torch.cat([w[0].expand(m, d), w[1].expand(m, d)])
    alpha = math.cos(angle - 2 * math.acos(1 - 2 * eps))
    return x0.to(dtype=dtype, device=device), home.to(dtype=dtype, device=device), alpha


def escape_times(betas, m, angle, eps, seeds, t, d=3, seed=0, delta=1e-3, merge_delta=1e-12, rtol=1e-8,
                 atol=1e-10, dtype=torch.float64, device=None, progress=False):
    r"""Exit and merge times of SA from two separated caps (:func:`two_caps`), for every beta and seed.

    ``exit`` is the first recorded time at which a token has left its doubled cap
    :math:`\mathcal S_{w_q}(2\varepsilon)` (the time :math:`T_2` of the metastability theorem is a lower
    bound for it), ``merge`` the first at which the two caps form one cluster at scale ``delta``.
    ``inf`` when it does not happen before ``t[-1]``.

    Returns
    -------
    (exit, merge, alpha) : two float64 tensors of shape (B, seeds) and the float :math:`\alpha`.
    """
    b = _betas(betas, device)
    seeds = _checks.integer(seeds, "seeds", 1)
    x0, home, alpha = two_caps(m, angle, eps, d=d, batch=seeds, seed=seed, dtype=dtype, device=device)
    x0 = x0.expand(b.numel(), *x0.shape).contiguous()

    def observe(x):
        inside = ((x * home).sum(-1) >= 1 - 2 * eps).all(-1)
        return torch.stack([(~inside).to(x.dtype), (clusters.number(x, delta) == 1).to(x.dtype)], dim=-1)

    field = attention.SelfAttention(b.cpu().reshape(-1, 1))
    events = flow.integrate_adaptive(field, x0, t, rtol=rtol, atol=atol, merge=lambda x: clusters.snap(x, merge_delta),
                                     observe=observe, progress=progress).cpu()
    return clusters.first_time(t, events[..., 0] > 0), clusters.first_time(t, events[..., 1] > 0), alpha


def staircase(x0, betas, s, tol=1e-4, rtol=1e-8, atol=1e-10, states=False, progress=False) -> torch.Tensor:
    r"""The normalised USA energy along the arclength clock, for each beta, from the same tokens ``x0``.

    Integrates :class:`nnips.flow.ArcLength` of :class:`nnips.attention.RescaledUSA` (finite at any
    beta; USA's trajectories), merging tokens with
    :math:`\beta(1-\langle x_i,x_j\rangle)\le` ``tol``: a merge then changes the normalised energy by at
    most :math:`2m_am_b\,\mathrm{tol}`. Records
    :math:`\frac1{n^2}\sum_{ij}e^{\beta(\langle x_i,x_j\rangle-1)}` at the clock values ``s``.

    Parameters
    ----------
    x0 : (n, d) tensor on the sphere; betas : sequence of positive floats (B values).
    s : 1-D increasing clock values, ``s[0] = 0``; tol : float in (0, 1).
    states : bool, return the configurations instead of the energies.

    Returns
    -------
    (len(s), B) tensor of energies, or (len(s), B, n, d) configurations if ``states``.
    """
    x0 = _checks.points(x0, "x0")
    if x0.ndim != 2:
        raise ValueError(f"x0 must be one configuration of shape (n, d), got {tuple(x0.shape)}")
    b = _betas(betas, x0.device)
    tol = _checks.real(tol, "tol", 0.0, strict=True)
    usa = attention.RescaledUSA(b.cpu())
    merge_delta = (tol / b).to(dtype=x0.dtype)
    xs = x0.expand(b.numel(), *x0.shape).contiguous()
    return flow.integrate_adaptive(flow.ArcLength(usa), xs, s, rtol=rtol, atol=atol,
                                   merge=lambda x: clusters.snap(x, merge_delta),
                                   observe=None if states else usa.normalized_energy, progress=progress)
