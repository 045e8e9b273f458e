r"""The tangent kernel of a two-layer network and its linearisation trained to convergence (lazy training).

Book: Chapter 6, "Lazy versus active training".
"""

from __future__ import annotations

import torch

from .. import _checks
from ._particles import _data, _inputs, _output, _particles
from ._units import _check_unit

__all__ = ["tangent_kernel", "linearized_fit"]


def _features(c, y, unit, x):
    """Gradient of f_n(x) in all parameters, flattened: (..., M, n (1 + p)), times n."""
    phi = unit(x, y)
    jac = c[..., None, :, None] * unit.jacobian(x, y)
    return torch.cat([phi, jac.flatten(-2)], dim=-1)


def tangent_kernel(c, y, unit, x, x2=None):
    r"""The tangent kernel :math:`\mathcal K(x,x') = \sum_i \nabla_{\theta_i}f_n(x)\cdot\nabla_{\theta_i}f_n(x')`.

    .. math::
        \mathcal K(x, x') = \frac1{n^2}\sum_{i=1}^n\Big(\varphi(x,y_i)\varphi(x',y_i)
        + c_i^2\,\nabla_y\varphi(x,y_i)\cdot\nabla_y\varphi(x',y_i)\Big),

    the kernel that a network follows in the lazy regime (Chizat, Oyallon, Bach, arXiv 1812.07956;
    Jacot, Gabriel, Hongler, arXiv 1806.07572). Forms the ``(M, n, p)`` Jacobian: small problems only.

    Parameters
    ----------
    c, y : (..., n), (..., n, p) tensors
    unit : Ridge or RBF
    x : (..., M, d) tensor
    x2 : (..., M2, d) tensor, optional (default ``x``)

    Returns
    -------
    (..., M, M2) tensor

    Examples
    --------
    >>> from nnips.meanfield import Ridge
    >>> tangent_kernel(torch.tensor([1.0]), torch.tensor([[1.0]]), Ridge("relu"), torch.tensor([[2.0]]))
    tensor([[8.]])
    """
    unit = _check_unit(unit)
    c, y = _particles(c, y)
    x = _inputs(x, unit, y)
    x2 = x if x2 is None else _inputs(x2, unit, y, "x2")
    n = c.shape[-1]
    g1 = _features(c, y, unit, x)
    g2 = g1 if x2 is x else _features(c, y, unit, x2)
    return g1 @ g2.transpose(-1, -2) / n ** 2


def linearized_fit(c, y, unit, data, x, rtol=1e-12):
    r"""Prediction at ``x`` of the network's linearisation at ``(c, y)``, trained by gradient flow to convergence.

    Gradient flow on the square loss of the linear model
    :math:`\bar f(\theta) = f_n(\theta_0) + Df_n(\theta_0)(\theta - \theta_0)` converges to the least-norm
    correction, whose prediction is kernel regression with the tangent kernel:

    .. math::
        \bar f_\infty(x) = f_n(x) + \mathcal K(x, X)\,\mathcal K(X, X)^{+}\big(f(X) - f_n(X)\big),

    the lazy limit of Chizat, Oyallon, Bach (arXiv 1812.07956). The pseudo-inverse drops eigenvalues
    below ``rtol`` times the largest (directions that gradient flow never fits).

    Parameters
    ----------
    c, y : (..., n), (..., n, p) tensors
    unit : Ridge or RBF
    data : Data
        Training inputs ``X`` and targets.
    x : (..., M, d) tensor
        Where to predict.

    Returns
    -------
    (..., M) tensor

    Examples
    --------
    >>> from nnips.meanfield import Data, Ridge
    >>> c, y = torch.tensor([1.0, -1.0]), torch.tensor([[1.0], [1.0]])
    >>> train = Data(torch.tensor([[1.0]]), torch.tensor([2.0]))
    >>> linearized_fit(c, y, Ridge("relu"), train, train.x)
    tensor([2.])
    """
    unit = _check_unit(unit)
    c, y = _particles(c, y)
    data = _data(data, unit, y)
    x = _inputs(x, unit, y)
    rtol = _checks.real(rtol, "rtol", minimum=0.0)
    gram = tangent_kernel(c, y, unit, data.x)
    cross = tangent_kernel(c, y, unit, x, data.x)
    correction = torch.linalg.pinv(gram, rtol=rtol, hermitian=True) @ (data.f - _output(c, y, unit, data.x))[..., None]
    return _output(c, y, unit, x) + (cross @ correction)[..., 0]


