r"""Residual networks as time discretisations of neural ODEs.

A ResNet with ``L`` layers and step :math:`h = T/L`,

.. math:: x_{k+1} = x_k + h\,W_k\,\sigma(A_k x_k + b_k), \qquad k = 0,\dots,L-1,

is the explicit Euler scheme of the neural ODE

.. math:: \dot x(t) = W(t)\,\sigma\big(A(t)x(t) + b(t)\big), \qquad t\in[0,T],

when :math:`(W_k, A_k, b_k) = (W, A, b)(kh)` (Haber and Ruthotto, arXiv 1705.03341; Chen et al.,
arXiv 1806.07366; Esteve, Geshkovski, Pighin, Zuazua, arXiv 2008.02491). The network is the flow map
of its data points. Book: Chapter 1, "From ResNets to neural ODEs"; Chapter 5 trains it as a control
problem.
"""

from __future__ import annotations

import numpy as np
import scipy.integrate
import torch

from .. import _checks
from ..sphere import generator

__all__ = ["ResNet", "neural_ode_field", "flow_map", "winding_number"]


def neural_ode_field(theta, activation=torch.tanh):
    r"""The vector field :math:`(t, x)\mapsto W(t)\sigma(A(t)x+b(t))` for rows ``x`` of shape (..., d).

    ``theta(t)`` returns ``(W, A, b)`` with shapes (d, m), (m, d), (m,).
    """
    def field(t, x):
        W, A, b = theta(t)
        return activation(x @ A.mT + b) @ W.mT

    return field


class ResNet(torch.nn.Module):
    r"""A residual network :math:`x_{k+1} = x_k + h W_k\sigma(A_k x_k + b_k)` with ``L`` layers on [0, T].

    Parameters
    ----------
    W : (L, d, m) tensor; A : (L, m, d) tensor; b : (L, m) tensor. Trainable (``nn.Parameter``).
    T : float > 0, the time horizon (depth); the step is ``h = T / L``.
    activation : the nonlinearity :math:`\sigma` (tanh by default).
    """

    def __init__(self, W, A, b, T, activation=torch.tanh):
        super().__init__()
        W, A, b = (_checks.floating_tensor(v, name) for v, name in ((W, "W"), (A, "A"), (b, "b")))
        if W.ndim != 3 or A.ndim != 3 or b.ndim != 2:
            raise ValueError("W, A, b must be stacked per layer: shapes (L, d, m), (L, m, d), (L, m)")
        L, d, m = W.shape
        if A.shape != (L, m, d) or b.shape != (L, m):
            raise ValueError(f"with W of shape {(L, d, m)}, A must be {(L, m, d)} and b {(L, m)}; "
                             f"got A {tuple(A.shape)}, b {tuple(b.shape)}")
        self.T = _checks.real(T, "T", 0.0, strict=True)
        self.W, self.A, self.b = (torch.nn.Parameter(v.clone()) for v in (W, A, b))
        self.activation = activation

    @classmethod
    def from_function(cls, theta, T, L, activation=torch.tanh):
        r"""Sample smooth parameters :math:`\theta(t) = (W, A, b)(t)` at the layer times :math:`kh`."""
        L = _checks.integer(L, "L", 1)
        T = _checks.real(T, "T", 0.0, strict=True)
        params = [theta(k * T / L) for k in range(L)]
        return cls(*(torch.stack([p[i] for p in params]) for i in range(3)), T=T, activation=activation)

    @classmethod
    def random(cls, d, m, L, T, seed=0, scale=1.0, fixed_features=False, activation=torch.tanh,
               dtype=torch.float64, device=None):
        r"""A network with zero outer weights :math:`W_k = 0` and Gaussian inner weights.

        The entries of :math:`A` and :math:`b` are :math:`\mathcal N(0, \text{scale}^2)`. With
        ``fixed_features=True`` every layer shares the same :math:`(A, b)`, which are frozen
        (``requires_grad=False``): only :math:`W(t)` is trained, the field
        :math:`W\sigma(Ax+b)` is linear in the control :math:`u = W`, as the large-time results of
        Esteve, Geshkovski, Pighin and Zuazua (arXiv 2008.02491) require (homogeneity in the
        parameters). Starting from :math:`W = 0` means starting from the uncontrolled flow
        :math:`x(t) = x_0`.

        Parameters
        ----------
        d, m, L : int >= 1, the state dimension, the width and the number of layers.
        T : float > 0, the time horizon.
        seed : int >= 0, seed of the torch generator that draws :math:`A, b`.
        scale : float > 0, standard deviation of the entries of :math:`A, b`.
        fixed_features : bool, share and freeze :math:`(A, b)` across layers.

        Examples
        --------
        >>> net = ResNet.random(3, 8, 10, 5.0, seed=0, fixed_features=True)
        >>> [name for name, p in net.named_parameters() if p.requires_grad]
        ['W']
        """
        d, m, L = (_checks.integer(v, name, 1) for v, name in ((d, "d"), (m, "m"), (L, "L")))
        scale = _checks.real(scale, "scale", 0.0, strict=True)
        if not isinstance(fixed_features, bool):
            raise TypeError(f"fixed_features must be True or False, got {fixed_features!r}")
        g = generator(seed)
        shape = () if fixed_features else (L,)
        A = scale * torch.randn(*shape, m, d, generator=g, dtype=torch.float64)
        b = scale * torch.randn(*shape, m, generator=g, dtype=torch.float64)
        A, b = A.expand(L, m, d), b.expand(L, m)
        W = torch.zeros(L, d, m, dtype=torch.float64)
        net = cls(W, A, b, T, activation=activation).to(dtype=dtype, device=device)
        if fixed_features:
            net.A.requires_grad_(False)
            net.b.requires_grad_(False)
        return net

    def extend(self, T):
        r"""A copy of this network on the longer horizon ``T``, with the same step and identity layers appended.

        The new layers have :math:`W_k = 0` (zero control, so :math:`x_{k+1} = x_k`) and copy the last
        layer's :math:`(A, b)`; which parameters are trainable is kept. The network computes the same
        map, and its trained layers are a warm start for a longer horizon.

        Examples
        --------
        >>> net = ResNet.random(2, 4, 5, 1.0, seed=0)
        >>> longer = net.extend(2.0)
        >>> x = torch.ones(3, 2, dtype=torch.float64)
        >>> longer.layers, torch.equal(longer(x), net(x))
        (10, True)
        """
        T = _checks.real(T, "T", self.T)
        h = self.T / self.layers
        L = round(T / h)
        if abs(L * h - T) > 1e-9 * T:
            raise ValueError(f"T must be a multiple of the step h = {h}, got {T}")
        extra = L - self.layers
        with torch.no_grad():
            W = torch.cat([self.W, torch.zeros(extra, *self.W.shape[1:], dtype=self.W.dtype, device=self.W.device)])
            A = torch.cat([self.A, self.A[-1:].expand(extra, *self.A.shape[1:])])
            b = torch.cat([self.b, self.b[-1:].expand(extra, *self.b.shape[1:])])
        net = type(self)(W, A, b, T, activation=self.activation)
        for new, old in ((net.W, self.W), (net.A, self.A), (net.b, self.b)):
            new.requires_grad_(old.requires_grad)
        return net

    @property
    def layers(self) -> int:
        return self.W.shape[0]

    def forward(self, x, return_states=False):
        """Push the rows of ``x`` (..., d) through the network; all ``L + 1`` states if asked."""
        h = self.T / self.layers
        states = [x]
        for W, A, b in zip(self.W, self.A, self.b):
            x = x + h * self.activation(x @ A.mT + b) @ W.mT
            states.append(x)
        return torch.stack(states) if return_states else x


def flow_map(theta, x, t, activation=torch.tanh, rtol=1e-10, atol=1e-12):
    r"""The neural ODE's flow map applied to the rows of ``x``, at the times ``t`` (adaptive DOP853).

    Returns a float64 tensor of shape ``(len(t), *x.shape)``; ``t[0]`` is the initial time.
    """
    x = _checks.floating_tensor(x, "x")
    t = _checks.times(t, "t")
    field = neural_ode_field(theta, activation)
    shape = x.shape

    def rhs(s, y):
        return field(s, torch.from_numpy(y).reshape(shape)).numpy().ravel()

    sol = scipy.integrate.solve_ivp(rhs, (t[0].item(), t[-1].item()), x.detach().double().numpy().ravel(),
                                    method="DOP853", t_eval=t.numpy(), rtol=rtol, atol=atol)
    if not sol.success or not np.isfinite(sol.y).all():
        raise FloatingPointError(f"the neural ODE solver failed: {sol.message}")
    return torch.from_numpy(sol.y.T.copy()).reshape(len(t), *shape)


def winding_number(curve, points) -> torch.Tensor:
    r"""Winding number of the closed polygon ``curve`` (k, 2) around each of ``points`` (p, 2).

    The sum of the signed angle increments :math:`\Delta\arg(c_{j+1}-p)` over the closed polygon,
    divided by :math:`2\pi`; an integer up to rounding when no point lies on the curve. A flow map is
    a homeomorphism isotopic to the identity, so it keeps every winding number of the data.
    """
    curve = _checks.floating_tensor(curve, "curve")
    points = _checks.floating_tensor(points, "points")
    if curve.ndim != 2 or curve.shape[-1] != 2 or curve.shape[0] < 3:
        raise ValueError(f"curve must have shape (k, 2) with k >= 3, got {tuple(curve.shape)}")
    if points.ndim != 2 or points.shape[-1] != 2:
        raise ValueError(f"points must have shape (p, 2), got {tuple(points.shape)}")
    v = curve[None, :, :] - points[:, None, :]
    angle = torch.atan2(v[..., 1], v[..., 0])
    step = torch.diff(torch.cat([angle, angle[:, :1]], dim=1), dim=1)
    step = torch.remainder(step + torch.pi, 2 * torch.pi) - torch.pi
    return step.sum(dim=1) / (2 * torch.pi)
