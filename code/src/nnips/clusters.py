r"""Cluster statistics of token configurations on the sphere.

Tokens :math:`x_1,\dots,x_n` are clustered at scale :math:`\delta` when the graph joining pairs with
:math:`\langle x_i,x_j\rangle\ge1-\delta` splits into few connected components. Book: Chapters 2-3.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import torch

from . import _checks

__all__ = ["gram", "pair_fraction", "count", "sizes", "diameter", "min_inner_product",
           "labels", "number", "snap", "atoms", "first_time", "plateau", "plateaus"]


def gram(x) -> torch.Tensor:
    r"""Pairwise inner products :math:`\langle x_i,x_j\rangle`, shape (..., n, n)."""
    x = _checks.points(x, "x")
    return x @ x.mT


def _delta(delta):
    delta = _checks.real(delta, "delta", 0.0, strict=True)
    if delta >= 2:
        raise ValueError(f"delta must lie in (0, 2), got {delta}")
    return delta


def pair_fraction(x, delta=1e-3) -> torch.Tensor:
    r"""Fraction of ordered pairs :math:`i\ne j` with :math:`\langle x_i,x_j\rangle\ge1-\delta`, shape ``x.shape[:-2]``.

    Averaged over seeds, this estimates :math:`\mathbb P(\langle x_1(t),x_2(t)\rangle\ge1-\delta)`, the
    quantity of the phase diagrams of GLPR (arXiv 2312.10794, Fig. 3).
    """
    delta = _delta(delta)
    G = gram(x)
    n = G.shape[-1]
    if n < 2:
        raise ValueError("pair_fraction needs n >= 2 points")
    close = (G >= 1 - delta).sum(dim=(-1, -2)) - n  # drop the diagonal, always close
    return close.to(x.dtype) / (n * (n - 1))


def _labels(x, delta):
    G = gram(x).detach().cpu().numpy()
    flat = G.reshape(-1, *G.shape[-2:])
    labels = []
    for g in flat:
        _, lab = scipy.sparse.csgraph.connected_components(scipy.sparse.csr_matrix(g >= 1 - delta),
                                                           directed=False)
        labels.append(lab)
    return np.array(labels).reshape(*G.shape[:-1])


def count(x, delta=1e-3) -> torch.Tensor:
    r"""Number of clusters: connected components of the graph :math:`\{\langle x_i,x_j\rangle\ge1-\delta\}`.

    Returns an int64 tensor of shape ``x.shape[:-2]``.

    Examples
    --------
    >>> x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> count(x).item()
    2
    """
    labels = _labels(x, _delta(delta))
    return torch.from_numpy(np.asarray(labels.max(axis=-1) + 1, dtype=np.int64))


def sizes(x, delta=1e-3) -> list:
    """Cluster sizes in decreasing order, for one configuration ``(n, d)``."""
    x = _checks.points(x, "x")
    if x.ndim != 2:
        raise ValueError(f"sizes takes one configuration of shape (n, d), got {tuple(x.shape)}")
    labels = _labels(x, _delta(delta))
    return sorted(np.bincount(labels).tolist(), reverse=True)


def diameter(x) -> torch.Tensor:
    r"""Largest distance :math:`\max_{i,j}\|x_i-x_j\|`, shape ``x.shape[:-2]``."""
    G = gram(x)
    return torch.sqrt(torch.clamp(2 - 2 * G.amin(dim=(-1, -2)), min=0))


def min_inner_product(x, w) -> torch.Tensor:
    r""":math:`\min_i\langle x_i,w\rangle`, non-decreasing along SA and USA when positive (cone collapse,
    GLPR, arXiv 2312.10794, Lemma 6.4). ``w`` has shape (d,) or (..., d)."""
    x = _checks.points(x, "x")
    w = _checks.floating_tensor(w, "w").to(dtype=x.dtype, device=x.device)
    if w.shape[-1] != x.shape[-1]:
        raise ValueError(f"w must have last dimension {x.shape[-1]}, got {tuple(w.shape)}")
    return (x @ w.unsqueeze(-1)).squeeze(-1).amin(dim=-1)


# ------------------------------------------------------------------------------------------------
# Vectorised cluster labels, merging and plateaus (Chapter 3, "Metastability"). These run in torch
# on the device of x, with no loop over the systems of a batch.
# ------------------------------------------------------------------------------------------------


def labels(x, delta=1e-3) -> torch.Tensor:
    r"""Cluster labels: tokens joined by a chain of pairs with :math:`\langle x_i,x_j\rangle\ge1-\delta` share one.

    The label of a token is the smallest index in its connected component, found by propagating
    minima along the graph (torch, batched, on the device of ``x``). ``count(x, delta)`` equals the
    number of distinct labels.

    Parameters
    ----------
    x : (..., n, d) tensor on the sphere.
    delta : float in (0, 2), or a tensor of them broadcasting against ``x.shape[:-2]`` (one scale
        per system, e.g. one per beta).

    Returns
    -------
    int64 tensor of shape ``x.shape[:-1]``.

    Examples
    --------
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    >>> labels(x).tolist()
    [0, 1, 0]
    """
    close = gram(x) >= 1 - _deltas(delta, x)
    n = x.shape[-2]
    lab = torch.arange(n, device=x.device).expand(x.shape[:-1]).contiguous()
    big = torch.full_like(close, n, dtype=torch.long)
    for _ in range(n):
        new = torch.where(close, lab.unsqueeze(-2).expand_as(close), big).amin(dim=-1)
        new = torch.gather(new, -1, new)  # pointer jumping: a label's own label is smaller or equal
        if torch.equal(new, lab):
            break
        lab = new
    return lab


def number(x, delta=1e-3) -> torch.Tensor:
    """Number of clusters, as :func:`count`, computed in torch on the device of ``x`` (int64, ``x.shape[:-2]``)."""
    lab = labels(x, delta)
    return (lab == torch.arange(lab.shape[-1], device=lab.device)).sum(dim=-1)


def snap(x, delta) -> torch.Tensor:
    r"""Merge the tokens of each cluster into one point: each is replaced by its cluster's normalised mean.

    Clusters are those of :func:`labels` at scale ``delta``; tokens alone in their cluster are
    returned unchanged. Tokens put on the same point stay together exactly under SA and USA (they
    receive the same velocity), so that, applied after each step of
    :func:`nnips.flow.integrate_adaptive`, a collapsed cluster behaves as one particle of mass
    :math:`m/n` (the "glue and continue" device of Geshkovski, Koubbi, Polyanskiy, Rigollet,
    arXiv 2410.06833, Section 6).

    **Perturbation.** A token of a cluster of :math:`m` tokens whose pairwise inner products all
    exceed :math:`1-\delta` moves by at most :math:`\sqrt{2\delta}` (the distance to the mean of
    points within :math:`\sqrt{2\delta}` of it); along a chain of close pairs, by at most
    :math:`(m-1)\sqrt{2\delta}`. Pick ``delta`` so that this is below the accuracy needed, e.g.
    ``delta = 1e-12`` (tokens within :math:`1.4\cdot10^{-6}`).

    Parameters
    ----------
    x : (..., n, d) tensor on the sphere.
    delta : float in (0, 2), or a tensor of them broadcasting against ``x.shape[:-2]``.

    Returns
    -------
    tensor like ``x``.
    """
    lab = labels(x, delta)
    n = x.shape[-2]
    member = (lab.unsqueeze(-1) == torch.arange(n, device=x.device)).to(x.dtype)  # (..., token, cluster)
    sums = member.mT @ x
    size = member.sum(dim=-2)
    norms = sums.norm(dim=-1, keepdim=True)
    means = sums / torch.where(norms > 0, norms, torch.ones_like(norms))
    merged = torch.gather(means, -2, lab.unsqueeze(-1).expand_as(x))
    alone = torch.gather(size, -1, lab) == 1
    return torch.where(alone.unsqueeze(-1), x, merged)


def _deltas(delta, x):
    """delta as a float, or as a tensor shaped (..., 1, 1) against the (..., n, n) Gram matrices of x."""
    if not isinstance(delta, torch.Tensor):
        return _delta(delta)
    delta = _checks.floating_tensor(delta, "delta")
    if bool(((delta <= 0) | (delta >= 2)).any()):
        raise ValueError("delta must lie in (0, 2)")
    try:
        torch.broadcast_shapes(delta.shape, x.shape[:-2])
    except RuntimeError as err:
        raise ValueError(f"delta of shape {tuple(delta.shape)} does not broadcast against the batch "
                         f"dimensions {tuple(x.shape[:-2])} of x") from err
    return delta.to(dtype=x.dtype, device=x.device)[..., None, None]


def atoms(x, delta=1e-3):
    r"""The clusters of one configuration as weighted atoms: their normalised means and mass fractions.

    The empirical measure of a clustered configuration, :math:`rac1n\sum_i\delta_{x_i}pprox
    \sum_a m_a\delta_{y_a}`, exact when the tokens of each cluster coincide (after :func:`snap`).

    Parameters
    ----------
    x : (n, d) tensor on the sphere; delta : float in (0, 2), the scale of :func:`labels`.

    Returns
    -------
    (y, m) : (k, d) tensor of cluster positions (ordered by first token) and (k,) tensor of masses
    summing to one.

    Examples
    --------
    >>> y, m = atoms(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64))
    >>> y.tolist(), m.tolist()
    ([[1.0, 0.0], [0.0, 1.0]], [0.6666666666666666, 0.3333333333333333])
    """
    x = _checks.points(x, "x")
    if x.ndim != 2:
        raise ValueError(f"atoms takes one configuration of shape (n, d), got {tuple(x.shape)}")
    lab = labels(x, delta)
    roots = torch.unique(lab)
    member = (lab.unsqueeze(-1) == roots).to(x.dtype)
    sums = member.mT @ x
    return sums / sums.norm(dim=-1, keepdim=True), member.sum(dim=0) / x.shape[0]


def _series(t, values):
    t = _checks.times(t, "t")
    values = torch.as_tensor(values)
    if values.ndim < 1 or values.shape[0] != t.numel():
        raise ValueError(f"values must have shape (len(t), ...) = ({t.numel()}, ...), got {tuple(values.shape)}")
    return t, values.detach().cpu()


def plateau(t, counts, k):
    r"""When a cluster count enters and leaves the level ``k``: the metastable plateau with ``k`` clusters.

    For each system, ``start`` is the first recorded time with at most ``k`` clusters and ``end``
    the first with fewer than ``k`` (``inf`` if that never happens within ``t``). The plateau
    lasts ``end - start``; a system that jumps over ``k`` has ``start == end``. The times are the
    recording times, so each is known up to the spacing of ``t`` (log-spaced ``t``: a fixed ratio).

    Parameters
    ----------
    t : 1-D increasing sequence of times, length T.
    counts : (T, ...) integer tensor of cluster counts (e.g. :func:`number` recorded along a flow);
        counts are expected to be non-increasing in time, as they are along SA and USA.
    k : int >= 1.

    Returns
    -------
    (start, end) : two float64 tensors of shape ``counts.shape[1:]``.

    Examples
    --------
    >>> start, end = plateau([1.0, 2.0, 4.0, 8.0], torch.tensor([5, 2, 2, 1]), 2)
    >>> start.item(), end.item()
    (2.0, 8.0)
    """
    t, counts = _series(t, counts)
    k = _checks.integer(k, "k", 1)
    return first_time(t, counts <= k), first_time(t, counts < k)


def first_time(t, events) -> torch.Tensor:
    r"""The first recording time at which an event holds, per system (``inf`` if it never does).

    Parameters
    ----------
    t : 1-D increasing sequence of times, length T.
    events : (T, ...) boolean tensor, e.g. ``counts < k`` or "a token has left its cap".

    Returns
    -------
    float64 tensor of shape ``events.shape[1:]``.

    Examples
    --------
    >>> first_time([0.0, 1.0, 2.0], torch.tensor([[False, False], [False, True], [True, True]])).tolist()
    [2.0, 1.0]
    """
    t, events = _series(t, events)
    if events.dtype != torch.bool:
        raise TypeError(f"events must be a boolean tensor, got {events.dtype}")
    hit = events.any(dim=0)
    idx = events.to(torch.int8).argmax(dim=0)
    return torch.where(hit, t[idx], torch.tensor(math.inf, dtype=torch.float64))


def plateaus(t, values, min_ratio=1.0) -> list:
    r"""The runs of constant value of one recorded series, as ``(value, start, end)`` triples.

    ``start`` is the first recording time of a run and ``end`` the first time of the next run
    (the last recording time for the last run). With ``min_ratio > 1`` only runs with
    ``end >= min_ratio * start`` are kept: on a log-time axis, runs at least ``log(min_ratio)`` long
    (the metastable plateaus of a cluster count). Runs starting at ``t = 0`` are kept when
    ``min_ratio`` is 1.

    Parameters
    ----------
    t : 1-D increasing sequence of times, length T.
    values : (T,) sequence (e.g. the cluster count of one system).
    min_ratio : float >= 1.

    Examples
    --------
    >>> plateaus([1.0, 2.0, 4.0, 8.0, 16.0], [5, 3, 3, 3, 1], min_ratio=3.0)
    [(3, 2.0, 16.0)]
    """
    t, values = _series(t, values)
    if values.ndim != 1:
        raise ValueError(f"values must be one series of shape ({t.numel()},), got {tuple(values.shape)}")
    min_ratio = _checks.real(min_ratio, "min_ratio", 1.0)
    runs, begin = [], 0
    for i in range(1, t.numel() + 1):
        if i == t.numel() or values[i] != values[begin]:
            end = t[min(i, t.numel() - 1)].item()
            start = t[begin].item()
            if min_ratio == 1.0 or (start > 0 and end >= min_ratio * start):
                runs.append((values[begin].item(), start, end))
            begin = i
    return runs
