r"""Regular polyhedra on :math:`\mathbb S^2` and recognising a configuration from its inner products.

In the repulsive case :math:`V=-I_d`, USA is the gradient *descent* of the interaction energy
:math:`E_\beta`, and the minimisers of :math:`\sum_{i,j}e^{\beta\langle x_i,x_j\rangle}` over ``n``
points are the universally optimal configurations of Cohn and Kumar when these exist: on
:math:`\mathbb S^2`, the tetrahedron (n = 4), the octahedron (n = 6) and the icosahedron (n = 12)
(GLPR, arXiv 2312.10794, Section 9.1; Cohn and Kumar, arXiv math/0607446). Book: Chapter 2, "The
repulsive case".
"""

from __future__ import annotations

import math

import torch

from . import _checks

__all__ = ["NAMES", "vertices", "inner_product_distance", "recognise"]

#: The regular polyhedra inscribed in the unit sphere, by number of vertices.
NAMES = {4: "tetrahedron", 6: "octahedron", 8: "cube", 12: "icosahedron", 20: "dodecahedron"}


def vertices(n, dtype=torch.float64) -> torch.Tensor:
    r"""The ``n`` vertices of the regular polyhedron of :data:`NAMES`, on the unit sphere, shape (n, 3).

    Examples
    --------
    The tetrahedron's vertices have pairwise inner products -1/3:

    >>> x = vertices(4)
    >>> round((x @ x.T)[0, 1].item(), 12)
    -0.333333333333
    """
    n = _checks.integer(n, "n", 1)
    if n not in NAMES:
        raise ValueError(f"n must be the vertex count of a regular polyhedron, one of {sorted(NAMES)}, got {n}")
    phi = (1 + math.sqrt(5)) / 2
    signs = [(a, b) for a in (1, -1) for b in (1, -1)]
    if n == 4:
        pts = [(1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)]
    elif n == 6:
        pts = [tuple(s * (k == i) for k in range(3)) for i in range(3) for s in (1, -1)]
    elif n == 8:
        pts = [(a, b, c) for a in (1, -1) for b in (1, -1) for c in (1, -1)]
    elif n == 12:  # cyclic permutations of (0, +-1, +-phi)
        pts = [p for a, b in signs for p in ((0, a, b * phi), (a, b * phi, 0), (b * phi, 0, a))]
    else:  # (+-1, +-1, +-1) and cyclic permutations of (0, +-1/phi, +-phi)
        pts = [(a, b, c) for a in (1, -1) for b in (1, -1) for c in (1, -1)]
        pts += [p for a, b in signs for p in ((0, a / phi, b * phi), (a / phi, b * phi, 0), (b * phi, 0, a / phi))]
    x = torch.tensor(pts, dtype=torch.float64)
    return (x / x.norm(dim=-1, keepdim=True)).to(dtype)


def inner_product_distance(x, y) -> torch.Tensor:
    r"""Distance between two configurations that ignores rotations and relabellings.

    .. math:: \max_k |g_{(k)}(x) - g_{(k)}(y)|,

    where :math:`g_{(1)}\le\dots\le g_{(n^2)}` are the sorted entries of the Gram matrix
    :math:`(\langle x_i,x_j\rangle)_{ij}`. It vanishes when ``y`` is a rotated, relabelled copy of
    ``x``. ``x`` may carry batch dimensions (..., n, d); ``y`` is one configuration (n, d).
    """
    x = _checks.points(x, "x")
    y = _checks.points(y, "y")
    if y.ndim != 2 or x.shape[-2:] != y.shape:
        raise ValueError(f"y must be one configuration shaped like the last two dimensions of x, "
                         f"got x {tuple(x.shape)} and y {tuple(y.shape)}")
    gx = torch.sort((x @ x.mT).flatten(-2)).values
    gy = torch.sort((y @ y.T).flatten()).values.to(dtype=gx.dtype, device=gx.device)
    return (gx - gy).abs().amax(dim=-1)


def recognise(x, tol=1e-6):
    """The name of the regular polyhedron that ``x`` (one configuration (n, 3)) is, or None."""
    x = _checks.points(x, "x")
    tol = _checks.real(tol, "tol", 0.0, strict=True)
    if x.ndim != 2 or x.shape[1] != 3 or x.shape[0] not in NAMES:
        return None
    return NAMES[x.shape[0]] if inner_product_distance(x, vertices(x.shape[0])).item() < tol else None
