r"""Cluster statistics of token configurations on the sphere.

Tokens :math:`x_1,\dots,x_n` are clustered at scale :math:`\delta` when the graph joining pairs with
:math:`\langle x_i,x_j\rangle\ge1-\delta` splits into few connected components. Book: Chapters 2-3.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import torch

from . import _checks

__all__ = ["gram", "pair_fraction", "count", "sizes", "diameter", "min_inner_product"]


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
