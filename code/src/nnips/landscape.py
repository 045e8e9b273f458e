r"""The energy landscape on :math:`(\mathbb S^{d-1})^n`: Riemannian gradients and Hessians by autograd.

Critical points of the interaction energy :math:`E_\beta` other than a single cluster are saddles,
and the metastable dynamics passes from one to the next (Geshkovski, Koubbi, Polyanskiy, Rigollet,
arXiv 2410.06833; GLPR, arXiv 2312.10794, Problem 3). A saddle is *strict* when the Hessian has
an eigenvalue of the sign that lets a gradient flow escape: positive for the gradient *ascent* of
:math:`E_\beta` that SA and USA perform (equivalently, negative for the descent of :math:`-E_\beta`).

The Riemannian Hessian of :math:`f` on the product of unit spheres, at :math:`x` and along a
tangent vector :math:`u`, is

.. math:: \operatorname{Hess}f(x)[u]_i = P^\perp_{x_i}\big(\nabla^2\bar f(x)\,u\big)_i
          - \langle x_i,\nabla_i\bar f(x)\rangle\,u_i ,

with :math:`\bar f` any smooth extension of :math:`f` to :math:`(\mathbb R^d)^n` (Absil, Mahony,
Sepulchre, *Optimization algorithms on matrix manifolds*, 2008, Section 5.5 and eq. (5.15) for
one sphere; on a product the terms add up token by token). Both :math:`\nabla\bar f` and
:math:`\nabla^2\bar f` come from torch autograd. Book: Chapter 3, "The energy staircase".
"""

from __future__ import annotations

import torch

from . import _checks

__all__ = ["tangent_basis", "riemannian_gradient", "riemannian_hessian"]


def tangent_basis(x) -> torch.Tensor:
    r"""An orthonormal basis of each tangent space :math:`T_{x_i}\mathbb S^{d-1}=x_i^\perp`.

    Parameters
    ----------
    x : (..., n, d) tensor on the sphere.

    Returns
    -------
    (..., n, d - 1, d) tensor whose rows ``[..., i, k, :]`` are orthonormal and orthogonal to ``x_i``.
    On the circle (``d = 2``) the single vector is :math:`(-x_{i,2}, x_{i,1})`, the direction of
    increasing angle.

    Examples
    --------
    >>> tangent_basis(torch.tensor([[1.0, 0.0]], dtype=torch.float64)).tolist()
    [[[-0.0, 1.0]]]
    """
    x = _checks.points(x, "x")
    if x.shape[-1] == 2:
        return torch.stack([-x[..., 1], x[..., 0]], dim=-1).unsqueeze(-2)
    d = x.shape[-1]
    projector = torch.eye(d, dtype=x.dtype, device=x.device) - x.unsqueeze(-1) * x.unsqueeze(-2)
    _, vectors = torch.linalg.eigh(projector)  # eigenvalue 0 (along x_i) first, then d - 1 ones
    return vectors[..., 1:].mT


def _value_and_gradient(f, x):
    y = x.detach().clone().requires_grad_(True)
    value = f(y)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise ValueError("f must return a scalar tensor (one configuration, no batch)")
    (grad,) = torch.autograd.grad(value.reshape(()), y)
    return value.detach(), grad


def _one_configuration(x):
    x = _checks.points(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must be one configuration of shape (n, d), got {tuple(x.shape)}")
    return x


def riemannian_gradient(f, x) -> torch.Tensor:
    r"""The Riemannian gradient :math:`P^\perp_{x_i}\nabla_i\bar f(x)` of a scalar function, shape (n, d).

    Parameters
    ----------
    f : callable (n, d) tensor -> scalar tensor, differentiable by torch autograd.
    x : (n, d) tensor on the sphere.
    """
    x = _one_configuration(x)
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    _, grad = _value_and_gradient(f, x)
    return grad - (grad * x).sum(-1, keepdim=True) * x


def riemannian_hessian(f, x, weights=None) -> torch.Tensor:
    r"""The Riemannian Hessian of ``f`` at ``x`` in the basis :func:`tangent_basis`, a symmetric matrix.

    .. math:: H_{(i,k),(j,l)} = \langle e_{ik}, \nabla^2_{ij}\bar f(x)\,e_{jl}\rangle
              - \delta_{ij}\delta_{kl}\langle x_i,\nabla_i\bar f(x)\rangle ,

    with :math:`(e_{ik})_k` the orthonormal tangent basis at :math:`x_i` (module docstring; Absil et
    al. 2008, eq. (5.15)). With ``weights`` :math:`w_i>0` it is the Hessian for the metric
    :math:`\sum_iw_i\langle u_i,v_i\rangle`, :math:`W^{-1/2}HW^{-1/2}`: the metric in which a cluster
    of :math:`m` coincident tokens moved rigidly is one atom of weight :math:`m` (:func:`nnips.clusters.atoms`).
    Its eigenvalues are then those of the token Hessian on the rigid motions of clusters.

    Parameters
    ----------
    f : callable (n, d) tensor -> scalar tensor, twice differentiable by torch autograd.
    x : (n, d) tensor on the sphere, one configuration.
    weights : None or (n,) tensor of positive weights.

    Returns
    -------
    (n (d - 1), n (d - 1)) tensor; row ``i * (d - 1) + k`` is tangent direction ``k`` of token ``i``.

    Examples
    --------
    The height :math:`f(x)=\langle a, x\rangle` on the circle has Hessian :math:`-\langle a,x\rangle`:

    >>> a = torch.tensor([0.0, 2.0], dtype=torch.float64)
    >>> riemannian_hessian(lambda y: (y @ a).sum(), torch.tensor([[0.0, 1.0]], dtype=torch.float64)).item()
    -2.0
    """
    x = _one_configuration(x)
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    n, d = x.shape
    _, grad = _value_and_gradient(f, x)
    euclidean = torch.autograd.functional.hessian(lambda y: f(y.reshape(n, d)).reshape(()), x.detach().reshape(-1))
    basis = tangent_basis(x)  # (n, d - 1, d)
    # E has block (i, j) = basis_i (d-1 x d) @ euclidean_ij (d x d) @ basis_j^T.
    blocks = euclidean.reshape(n, d, n, d)
    H = torch.einsum("ikp,ipjq,jlq->ikjl", basis, blocks, basis).reshape(n * (d - 1), n * (d - 1))
    radial = (grad * x).sum(-1).repeat_interleave(d - 1)
    H = H - torch.diag(radial)
    H = (H + H.mT) / 2
    if weights is not None:
        weights = _checks.floating_tensor(weights, "weights").to(dtype=x.dtype, device=x.device)
        if weights.shape != (n,) or bool((weights <= 0).any()):
            raise ValueError(f"weights must be a ({n},) tensor of positive numbers")
        scale = weights.rsqrt().repeat_interleave(d - 1)
        H = scale[:, None] * H * scale[None, :]
    return H
