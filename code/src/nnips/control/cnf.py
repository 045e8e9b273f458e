r"""Continuous normalizing flows: a neural ODE as a transport map, with its log-density along the flow.

A neural ODE :math:`\dot x = f(t, x)` pushes a base density :math:`p_0` forward; along a trajectory
the log-density obeys the instantaneous change of variables

.. math:: \frac{d}{dt}\log p_t(x(t)) = -\operatorname{div} f\big(t, x(t)\big)

(Chen, Rubanova, Bettencourt, Duvenaud, arXiv 1806.07366, Theorem 1; Grathwohl et al., FFJORD,
arXiv 1810.01367). Here the field is the one of :class:`~nnips.control.ResNet`,
:math:`f(t,x) = W_k\sigma(A_kx+b_k)` on the :math:`k`-th layer interval :math:`[kh,(k+1)h)`, and its
divergence is exact in any dimension,

.. math:: \operatorname{div} f = \operatorname{tr}\big(W_k\operatorname{diag}\sigma'(A_kx+b_k)A_k\big)
          = \sum_{j=1}^m\sigma'\big((A_kx+b_k)_j\big)\,(A_kW_k)_{jj} .

The augmented state :math:`(x, \log p)` is integrated with the classical Runge-Kutta scheme, a
fixed number of steps per layer (the field is smooth on each layer interval). Book: Chapter 8,
"A neural ODE as a transport map".
"""

from __future__ import annotations

import math

import torch

from .. import _checks
from ..sphere import generator
from .resnet import ResNet

__all__ = ["CNF", "Banana", "divergence", "gaussian_log_density", "train_cnf"]


def gaussian_log_density(z):
    r"""Log-density of the standard Gaussian :math:`\mathcal N(0, I_d)` at the rows of ``z`` (..., d).

    Examples
    --------
    >>> round(float(gaussian_log_density(torch.zeros(2))), 6)  # -log(2 pi)
    -1.837877
    """
    z = _checks.floating_tensor(z, "z")
    return -0.5 * (z * z).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


class Banana:
    r"""A banana-shaped law in the plane, the image of :math:`\mathcal N(0, I_2)` by a triangular map.

    .. math::
        x_1 = z_1,\qquad x_2 = a\,(z_1^2 - 1) + s\,z_2,\qquad z\sim\mathcal N(0, I_2),

    so that :math:`p(x) = \mathcal N(x_1; 0, 1)\,\mathcal N\big(x_2; a(x_1^2-1), s^2\big)` exactly. The map
    :math:`K(z) = (z_1, a(z_1^2-1)+sz_2)` is the Knothe-Rosenblatt map from the Gaussian: it pushes
    :math:`\mathcal N(0, I_2)` to the banana, but it is not the gradient of a convex function, so it is
    not the optimal transport map.

    Examples
    --------
    >>> target = Banana(a=0.5, s=0.5)
    >>> target.knothe(torch.zeros(1, 2)).tolist(), round(float(target.log_prob(torch.tensor([0.0, -0.5]))), 5)
    ([[0.0, -0.5]], -1.14473)
    """

    def __init__(self, a=0.5, s=0.5):
        self.a = _checks.real(a, "a")
        self.s = _checks.real(s, "s", 0.0, strict=True)

    def __repr__(self):
        return f"Banana(a={self.a}, s={self.s})"

    def knothe(self, z):
        """The triangular map :math:`K(z) = (z_1, a(z_1^2-1)+sz_2)` at the rows of ``z`` (..., 2)."""
        z = _checks.floating_tensor(z, "z")
        if z.ndim < 1 or z.shape[-1] != 2:
            raise ValueError(f"z must have shape (..., 2), got {tuple(z.shape)}")
        return torch.stack([z[..., 0], self.a * (z[..., 0] ** 2 - 1) + self.s * z[..., 1]], dim=-1)

    def sample(self, n, seed=0):
        """``n`` exact samples, shape (n, 2), float64."""
        n = _checks.integer(n, "n", 1)
        return self.knothe(torch.randn(n, 2, generator=generator(seed), dtype=torch.float64))

    def log_prob(self, x):
        """The exact log-density at the rows of ``x`` (..., 2)."""
        x = _checks.floating_tensor(x, "x")
        if x.ndim < 1 or x.shape[-1] != 2:
            raise ValueError(f"x must have shape (..., 2), got {tuple(x.shape)}")
        z = torch.stack([x[..., 0], (x[..., 1] - self.a * (x[..., 0] ** 2 - 1)) / self.s], dim=-1)
        return gaussian_log_density(z) - math.log(self.s)

    def entropy(self) -> float:
        r"""The differential entropy :math:`-\int p\log p = \log(2\pi e) + \log s` (the map has Jacobian :math:`s`)."""
        return math.log(2 * math.pi * math.e) + math.log(self.s)


def divergence(field, x, create_graph=False):
    r"""The exact divergence :math:`\sum_i\partial_if_i(x)` of a field ``x -> f(x)``, (..., d) -> (..., d), by autograd.

    One backward pass per coordinate (``d`` passes): the exact trace, meant for small ``d`` and for
    checking closed forms. Rows of ``x`` must be independent (the field acts row by row).

    Examples
    --------
    >>> M = torch.tensor([[1.0, 2.0], [3.0, -4.0]])
    >>> divergence(lambda x: x @ M.T, torch.zeros(5, 2)).tolist()  # the trace of M
    [-3.0, -3.0, -3.0, -3.0, -3.0]
    """
    x = _checks.floating_tensor(x, "x")
    with torch.enable_grad():
        x = x if x.requires_grad else x.detach().requires_grad_(True)
        f = field(x)
        if f.shape != x.shape:
            raise ValueError(f"the field must return the shape of x {tuple(x.shape)}, got {tuple(f.shape)}")
        total = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        for i in range(x.shape[-1]):
            (g,) = torch.autograd.grad(f[..., i].sum(), x, create_graph=create_graph,
                                       retain_graph=create_graph or i < x.shape[-1] - 1)
            total = total + g[..., i]
    return total


def _activation_derivative(activation, z):
    """sigma'(z), differentiable in z (so that training can differentiate the divergence)."""
    if activation is torch.tanh:
        return 1 - torch.tanh(z) ** 2
    with torch.enable_grad():
        leaf = not z.requires_grad
        zz = z.detach().requires_grad_(True) if leaf else z
        (ds,) = torch.autograd.grad(activation(zz).sum(), zz, create_graph=not leaf)
    return ds.detach() if leaf else ds


class CNF(torch.nn.Module):
    r"""A continuous normalizing flow: the neural ODE of a :class:`ResNet`, integrated with RK4, plus its log-density.

    The map :math:`\Phi = \Phi_{0\to T}` of the ODE :math:`\dot x = W(t)\sigma(A(t)x+b(t))` (parameters
    constant on each of the ``L`` layer intervals of length :math:`h = T/L`) pushes the base law
    :math:`\mathcal N(0, I_d)` to the model law :math:`p = \Phi_\#\mathcal N(0, I_d)`, with

    .. math:: \log p(\Phi(z)) = \log\mathcal N(z; 0, I_d) - \int_0^T\operatorname{div} f\big(t, x(t)\big)\,dt .

    Parameters
    ----------
    net : ResNet
        Holds the trainable parameters :math:`(W_k, A_k, b_k)`, the horizon ``T`` and the activation.
    steps : int >= 1
        RK4 steps per layer interval.

    Examples
    --------
    A flow with zero outer weights is the identity, and its density the base Gaussian:

    >>> flow = CNF(ResNet.random(2, 4, 3, 1.0, seed=0))
    >>> z = torch.randn(5, 2, dtype=torch.float64)
    >>> x, logp = flow(z)
    >>> bool(torch.equal(x, z)), bool(torch.allclose(logp, gaussian_log_density(z)))
    (True, True)
    """

    def __init__(self, net, steps=1):
        super().__init__()
        if not isinstance(net, ResNet):
            raise TypeError(f"net must be an nnips.control.ResNet, got {type(net).__name__}")
        self.net = net
        self.steps = _checks.integer(steps, "steps", 1)

    @property
    def dim(self) -> int:
        return self.net.W.shape[1]

    def field(self, k, x):
        """The field :math:`W_k\\sigma(A_kx+b_k)` of layer ``k`` and its exact divergence, at the rows of ``x``."""
        W, A, b = self.net.W[k], self.net.A[k], self.net.b[k]
        z = x @ A.mT + b
        s = _activation_derivative(self.net.activation, z)
        return self.net.activation(z) @ W.mT, s @ torch.diagonal(A @ W)

    def _layer(self, k, x, h, kinetic, path):
        """``self.steps`` RK4 steps of signed size ``h`` on layer ``k``: x, int div f dt, int |f|^2 dt."""
        div_total = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        energy = torch.zeros_like(div_total)
        for _ in range(self.steps):
            f1, d1 = self.field(k, x)
            f2, d2 = self.field(k, x + 0.5 * h * f1)
            f3, d3 = self.field(k, x + 0.5 * h * f2)
            f4, d4 = self.field(k, x + h * f3)
            x = x + h / 6 * (f1 + 2 * f2 + 2 * f3 + f4)
            div_total = div_total + abs(h) / 6 * (d1 + 2 * d2 + 2 * d3 + d4)
            if kinetic:
                speed = [(f * f).sum(-1) for f in (f1, f2, f3, f4)]
                energy = energy + abs(h) / 6 * (speed[0] + 2 * speed[1] + 2 * speed[2] + speed[3])
            if path is not None:
                path.append(x)
        return x, div_total, energy

    def _integrate(self, x, direction, kinetic=False, states=False):
        """RK4 over all layers, forward (+1) or backward (-1): x (or every state), int div f dt, int |f|^2 dt."""
        h = self.net.T / (self.net.layers * self.steps) * direction
        div_total, energy, path = 0.0, 0.0, ([x] if states else None)
        for k in (range(self.net.layers) if direction > 0 else reversed(range(self.net.layers))):
            x, div_k, energy_k = self._layer(k, x, h, kinetic, path)
            div_total, energy = div_total + div_k, energy + energy_k
        return (torch.stack(path) if states else x), div_total, energy

    def _points(self, x, name):
        x = _checks.floating_tensor(x, name)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"{name} must have shape (..., {self.dim}), got {tuple(x.shape)}")
        return x.to(self.net.W)

    def forward(self, z, return_states=False):
        r"""Push base points ``z`` (..., d) through the flow: :math:`x = \Phi(z)` and :math:`\log p(x)`.

        With ``return_states=True`` also returns the states after every RK4 step, at the times
        :math:`jT/(L\cdot\text{steps})`: shape (L * steps + 1, ..., d).
        """
        z = self._points(z, "z")
        x, div_total, _ = self._integrate(z, +1, states=return_states)
        logp = gaussian_log_density(z) - div_total
        return (x[-1], logp, x) if return_states else (x, logp)

    def inverse(self, x):
        r"""Pull points ``x`` (..., d) back to the base: :math:`z\approx\Phi^{-1}(x)`, and :math:`\int_0^T\operatorname{div}f\,dt`.

        The integral is taken along the path from :math:`z` to :math:`x`; both come from RK4 run backward.
        """
        x = self._points(x, "x")
        z, div_total, _ = self._integrate(x, -1)
        return z, div_total

    def log_prob(self, x):
        r"""The model log-density at the rows of ``x``: :math:`\log p(x) = \log\mathcal N(z) - \int_0^T\operatorname{div} f\,dt`.

        Here :math:`z = \Phi^{-1}(x)` and the integral runs along the path from :math:`z` to :math:`x`.
        """
        z, div_total = self.inverse(x)
        return gaussian_log_density(z) - div_total

    def kinetic_energy(self, x):
        r"""The action :math:`\int_0^T|f(t, x(t))|^2dt` of each path, run backward from ``x``, (...,)."""
        x = self._points(x, "x")
        return self._integrate(x, -1, kinetic=True)[2]

    def sample(self, n, seed=0):
        """``n`` samples of the model law: base draws pushed through the flow, shape (n, d), no gradient."""
        n = _checks.integer(n, "n", 1)
        z = torch.randn(n, self.dim, generator=generator(seed), dtype=torch.float64).to(self.net.W)
        with torch.no_grad():
            return self(z)[0]


def train_cnf(flow, data, iterations=300, lr=0.02, kinetic=0.0, batch=None, seed=0):
    r"""Fit a :class:`CNF` to samples by maximum likelihood (Adam), optionally penalising the kinetic energy.

    Minimises the negative log-likelihood plus :math:`\lambda` times the kinetic energy of the paths,

    .. math:: J = -\frac1N\sum_{i=1}^N\log p(x_i) + \lambda\,\frac1N\sum_{i=1}^N\int_0^T|f(t,x_i(t))|^2\,dt,

    the kinetic penalty of "How to train your neural ODE" (Finlay, Jacobsen, Nurbekyan, Oberman,
    arXiv 2002.02798), which by the Benamou-Brenier formula pulls the flow toward the optimal
    transport path. Full batch by default; ``batch`` draws that many points per iteration (seeded).

    Parameters
    ----------
    flow : CNF
    data : (N, d) tensor, samples of the target law.
    iterations : int >= 0; lr : float > 0, Adam's learning rate; kinetic : float >= 0, :math:`\lambda`.
    batch : int or None; seed : int, for the mini-batches.

    Returns
    -------
    history : (iterations + 1,) tensor, the mean negative log-likelihood before each step and at the end.
    """
    if not isinstance(flow, CNF):
        raise TypeError(f"flow must be an nnips.control.CNF, got {type(flow).__name__}")
    data = flow._points(data, "data")
    if data.ndim != 2:
        raise ValueError(f"data must have shape (N, {flow.dim}), got {tuple(data.shape)}")
    iterations = _checks.integer(iterations, "iterations", 0)
    lr = _checks.real(lr, "lr", 0.0, strict=True)
    kinetic = _checks.real(kinetic, "kinetic", 0.0)
    if batch is not None:
        batch = _checks.integer(batch, "batch", 1)
    params = [p for p in flow.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the flow has no trainable parameters")
    optimiser = torch.optim.Adam(params, lr=lr)
    g = generator(seed)
    history = []

    def cost(points):
        z, div_total, energy = flow._integrate(points, -1, kinetic=kinetic > 0)
        nll = -(gaussian_log_density(z) - div_total).mean()
        return nll, nll + kinetic * energy.mean()

    for _ in range(iterations):
        points = data if batch is None else data[torch.randint(data.shape[0], (batch,), generator=g).to(data.device)]
        optimiser.zero_grad()
        nll, total = cost(points)
        total.backward()
        optimiser.step()
        history.append(nll.item())
    with torch.no_grad():
        history.append(-flow.log_prob(data).mean().item())
    history = torch.tensor(history, dtype=torch.float64)
    if not bool(torch.isfinite(history).all()):
        raise FloatingPointError("training produced a non-finite likelihood; lower lr or T")
    return history
