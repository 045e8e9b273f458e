r"""Units :math:`\varphi(x, y)` of a two-layer network: ridge units and Gaussian radial basis functions.

A unit maps inputs ``x`` of shape ``(..., M, d)`` and particle positions ``y`` of shape ``(..., n, p)``
to the features :math:`\varphi(x_m, y_i)`, shape ``(..., M, n)``. Besides the features each unit
gives the *pullback* :math:`\sum_m g_{mi}\nabla_y\varphi(x_m, y_i)` (what gradient descent needs,
without forming the ``(M, n, p)`` Jacobian) and, for small problems, that Jacobian itself.
"""

from __future__ import annotations

import torch

from .. import _checks

__all__ = ["Activation", "RELU", "TANH", "PiecewiseLinear", "Ridge", "RBF"]


class Activation:
    """A scalar activation :math:`\\sigma` with its derivative :math:`\\sigma'` (both elementwise)."""

    def __init__(self, name, function, derivative):
        self.name, self.function, self.derivative = name, function, derivative

    def __call__(self, z):
        return self.function(z)

    def __repr__(self):
        return f"Activation({self.name!r})"


def _relu_derivative(z):
    return (z > 0).to(z.dtype)


def _tanh_derivative(z):
    return 1 - torch.tanh(z) ** 2


#: :math:`\sigma(z)=\max(0,z)`, with :math:`\sigma'(0)=0` (the convention of autograd).
RELU = Activation("relu", torch.relu, _relu_derivative)
#: :math:`\sigma(z)=\tanh z`.
TANH = Activation("tanh", torch.tanh, _tanh_derivative)


class PiecewiseLinear(Activation):
    r"""The piecewise-linear activation of Mei, Montanari and Nguyen's Gaussian-classes example.

    .. math::
        \sigma(z) = s_1 \text{ for } z\le t_1,\qquad s_2 \text{ for } z\ge t_2,\qquad
        \text{linear in between,}

    Mei, Montanari, Nguyen (arXiv 1804.06561), their isotropic-Gaussians example (the breakpoints
    and slopes used in the book are recalled from that paper, not checked against it).

    Examples
    --------
    >>> sigma = PiecewiseLinear(0.5, 1.5, -2.5, 7.5)
    >>> sigma(torch.tensor([0.0, 1.0, 2.0])).tolist(), sigma.derivative(torch.tensor([1.0])).item()
    ([-2.5, 2.5, 7.5], 10.0)
    """

    def __init__(self, t1, t2, s1, s2):
        self.t1, self.t2 = _checks.real(t1, "t1"), _checks.real(t2, "t2")
        self.s1, self.s2 = _checks.real(s1, "s1"), _checks.real(s2, "s2")
        if not self.t1 < self.t2:
            raise ValueError(f"t1 must be < t2, got t1 = {self.t1}, t2 = {self.t2}")
        self.slope = (self.s2 - self.s1) / (self.t2 - self.t1)
        super().__init__("piecewise-linear", self._function, self._derivative)

    def _function(self, z):
        return self.s1 + self.slope * (z.clamp(self.t1, self.t2) - self.t1)

    def _derivative(self, z):
        return self.slope * ((z > self.t1) & (z < self.t2)).to(z.dtype)

    def __repr__(self):
        return f"PiecewiseLinear(t1={self.t1}, t2={self.t2}, s1={self.s1}, s2={self.s2})"


_ACTIVATIONS = {"relu": RELU, "tanh": TANH}


def _activation(value):
    if isinstance(value, Activation):
        return value
    if isinstance(value, str) and value in _ACTIVATIONS:
        return _ACTIVATIONS[value]
    raise ValueError(f"activation must be an Activation or one of {sorted(_ACTIVATIONS)}, got {value!r}")


class Ridge:
    r"""Ridge units :math:`\varphi(x, y) = \sigma(\langle w, x\rangle + b)`, with :math:`y = (w, b)`.

    Without bias :math:`y = w\in\mathbb R^d`; with ``bias=True`` the particle is :math:`y=(w,b)\in\mathbb R^{d+1}`
    and the input is extended by a constant 1. Rotskoff and Vanden-Eijnden (arXiv 1805.00915) and
    Mei, Montanari, Nguyen (arXiv 1804.06561) both use units of this form.

    Examples
    --------
    >>> unit = Ridge("relu", bias=True)
    >>> unit(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 1.0, -4.0], [1.0, 0.0, 0.0]]))
    tensor([[0., 1.]])
    """

    def __init__(self, activation="relu", bias=False):
        self.activation = _activation(activation)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        self.bias = bias

    def __repr__(self):
        return f"Ridge({self.activation.name!r}, bias={self.bias})"

    def dim(self, d: int) -> int:
        """Dimension ``p`` of a particle position ``y`` for inputs in ``R^d``."""
        return d + int(self.bias)

    def _inputs(self, x):
        if not self.bias:
            return x
        return torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)

    def _forward(self, x, y):
        """Features and what the pullback reuses: here sigma'(z) at the pre-activations z."""
        z = self._inputs(x) @ y.transpose(-1, -2)
        return self.activation(z), self.activation.derivative(z)

    def _pullback(self, x, y, g, aux):
        return (g * aux).transpose(-1, -2) @ self._inputs(x)

    def __call__(self, x, y):
        """Features :math:`\\varphi(x_m, y_i)`, shape ``(..., M, n)``."""
        return self._forward(x, y)[0]

    def pullback(self, x, y, g):
        r""":math:`\sum_m g_{mi}\,\nabla_y\varphi(x_m,y_i)`, shape ``(..., n, p)``; ``g`` broadcasts to ``(..., M, n)``."""
        return self._pullback(x, y, g, self._forward(x, y)[1])

    def jacobian(self, x, y):
        r""":math:`\nabla_y\varphi(x_m, y_i)`, shape ``(..., M, n, p)`` (for small problems only)."""
        return self._forward(x, y)[1][..., None] * self._inputs(x)[..., :, None, :]


class RBF:
    r"""Gaussian radial basis units :math:`\varphi(x, z) = e^{-\frac{\alpha}{2}\|x - z\|^2}`, :math:`z\in\mathbb R^d`.

    The units of the kernel-method examples of Rotskoff and Vanden-Eijnden (arXiv 1805.00915).

    Examples
    --------
    >>> RBF(alpha=2.0)(torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]]))
    tensor([[0.3679]])
    """

    def __init__(self, alpha=1.0):
        self.alpha = _checks.real(alpha, "alpha", minimum=0.0, strict=True)

    def __repr__(self):
        return f"RBF(alpha={self.alpha})"

    def dim(self, d: int) -> int:
        """Dimension ``p = d`` of a centre ``z``."""
        return d

    def _forward(self, x, y):
        # |x - z|^2 = |x|^2 - 2 <x, z> + |z|^2, without forming the (M, n, d) differences.
        sq = (x * x).sum(-1)[..., :, None] - 2 * x @ y.transpose(-1, -2) + (y * y).sum(-1)[..., None, :]
        phi = torch.exp(-0.5 * self.alpha * sq.clamp_min(0))
        return phi, phi

    def _pullback(self, x, y, g, aux):
        w = g * aux
        return self.alpha * (w.transpose(-1, -2) @ x - w.sum(-2)[..., None] * y)

    def __call__(self, x, y):
        """Features :math:`\\varphi(x_m, z_i)`, shape ``(..., M, n)``."""
        return self._forward(x, y)[0]

    def pullback(self, x, y, g):
        r""":math:`\sum_m g_{mi}\,\alpha(x_m - z_i)\varphi(x_m, z_i)`, shape ``(..., n, d)``."""
        return self._pullback(x, y, g, self._forward(x, y)[1])

    def jacobian(self, x, y):
        r""":math:`\alpha(x_m - z_i)\varphi(x_m,z_i)`, shape ``(..., M, n, d)`` (for small problems only)."""
        phi = self._forward(x, y)[0]
        return self.alpha * phi[..., None] * (x[..., :, None, :] - y[..., None, :, :])


def _check_unit(unit):
    if not all(hasattr(unit, a) for a in ("_forward", "_pullback", "dim")):
        raise TypeError(f"unit must be a meanfield unit (Ridge or RBF), got {type(unit).__name__}")
    return unit

