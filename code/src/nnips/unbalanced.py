r"""Unbalanced transport: the Wasserstein-Fisher-Rao (Hellinger-Kantorovich) gradient flow of weighted particles.

A finite non-negative measure :math:`\mu=\sum_i w_i\delta_{x_i}` is stored as positions ``x`` of shape
``(..., n, d)`` and weights ``w`` of shape ``(..., n)``; leading dimensions are batches. An energy
:math:`E(\mu)` has a first variation :math:`V_\mu = \delta E/\delta\mu`, a function on
:math:`\mathbb R^d`. Its gradient flow for the Hellinger-Kantorovich (Wasserstein-Fisher-Rao)
geometry, with transport weight :math:`\alpha` and reaction weight :math:`\beta`, is

.. math::
    \partial_t\mu = \alpha\,\nabla\cdot(\mu\nabla V_\mu) - \beta\,V_\mu\,\mu ,

the continuity equation of Wasserstein gradient flows plus a source term: the Onsager operator is the
sum of a Wasserstein part and a reaction part that creates and destroys mass (Liero, Mielke, Savaré,
arXiv 1509.00068 and 1508.07941; Kondratyev, Monsaingeon, Vorotnikov, arXiv 1505.07746; Chizat,
Peyré, Schmitzer, Vialard, arXiv 1506.06430). Atomic measures stay atomic: :math:`\mu_t=\sum_i
w_i(t)\delta_{x_i(t)}` solves it exactly when

.. math::
    \dot x_i = -\alpha\,\nabla V_{\mu_t}(x_i), \qquad \dot w_i = -\beta\,V_{\mu_t}(x_i)\,w_i ,

positions move by the transport term and weights change by the reaction term. Along the flow
:math:`\frac{d}{dt}E(\mu_t) = -\int\big(\alpha|\nabla V|^2+\beta V^2\big)\,d\mu_t\le 0`.
With ``conserve_mass=True`` the reaction uses :math:`V - \bar V`, :math:`\bar V = \int V\,d\mu/\mu(\mathbb R^d)`,
which keeps the mass (the spherical variant; the birth-death equation of Rotskoff, Jelassi, Bruna,
Vanden-Eijnden, arXiv 1902.01843, is of this form). Book: Chapter 8, "Unbalanced transport".
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from . import _checks

__all__ = ["Energy", "mmd", "gaussian_kernel", "first_variation", "velocity", "dissipation", "step", "flow",
           "Flow"]


def gaussian_kernel(sigma):
    r"""The Gaussian kernel :math:`k(r) = e^{-|r|^2/(2\sigma^2)}` as a function of differences ``r`` (..., d).

    Examples
    --------
    >>> k = gaussian_kernel(1.0)
    >>> float(k(torch.tensor([0.0, 0.0]))), round(float(k(torch.tensor([2.0, 0.0]))), 4)
    (1.0, 0.1353)
    """
    sigma = _checks.real(sigma, "sigma", 0.0, strict=True)

    def kernel(r):
        return torch.exp(-(r * r).sum(-1) / (2 * sigma ** 2))

    return kernel


class Energy:
    r"""An energy of finite measures: external potential, pair interaction and a constant.

    .. math::
        E(\mu) = \int U\,d\mu + \frac12\iint W(x-y)\,d\mu(x)\,d\mu(y) + C,
        \qquad V_\mu(z) = \frac{\delta E}{\delta\mu}(z) = U(z) + \int W(z-y)\,d\mu(y),

    for a symmetric interaction :math:`W(r) = W(-r)`.

    Parameters
    ----------
    external : callable ``z -> U(z)``, ``(..., m, d) -> (..., m)``, optional
    interaction : callable ``r -> W(r)``, ``(..., d) -> (...)``, even, optional
    constant : float, the constant :math:`C`

    Examples
    --------
    A linear energy :math:`\int|x|^2d\mu`: its first variation is :math:`U` itself.

    >>> E = Energy(external=lambda z: (z * z).sum(-1))
    >>> x, w = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([0.5, 0.25])
    >>> float(E(x, w)), E.potential(x, x, w).tolist()
    (1.5, [1.0, 4.0])
    """

    def __init__(self, external: Callable | None = None, interaction: Callable | None = None, constant=0.0):
        if external is None and interaction is None:
            raise ValueError("an Energy needs an external potential, an interaction, or both")
        for f, name in ((external, "external"), (interaction, "interaction")):
            if f is not None and not callable(f):
                raise TypeError(f"{name} must be callable, got {type(f).__name__}")
        self.external, self.interaction = external, interaction
        self.constant = _checks.real(constant, "constant")

    def __call__(self, x, w):
        """The energy :math:`E(\\mu)` of ``mu = sum_i w_i delta_{x_i}``: a tensor of the batch shape."""
        x, w = _measure(x, w)
        return self._energy(x, w)

    def potential(self, z, x, w):
        """The first variation :math:`V_\\mu(z)` at the points ``z`` (..., m, d): shape (..., m)."""
        x, w = _measure(x, w)
        z = _checks.floating_tensor(z, "z")
        if z.ndim < 2 or z.shape[-1] != x.shape[-1]:
            raise ValueError(f"z must have shape (..., m, {x.shape[-1]}), got {tuple(z.shape)}")
        return self._potential(z, x, w)

    def _energy(self, x, w):
        value = torch.zeros(w.shape[:-1], dtype=w.dtype, device=w.device) + self.constant
        if self.external is not None:
            value = value + (w * self.external(x)).sum(-1)
        if self.interaction is not None:
            pair = self.interaction(x[..., :, None, :] - x[..., None, :, :])
            value = value + 0.5 * (w[..., :, None] * pair * w[..., None, :]).sum((-1, -2))
        return value

    def _potential(self, z, x, w):
        value = 0.0
        if self.external is not None:
            value = value + self.external(z)
        if self.interaction is not None:
            value = value + (self.interaction(z[..., :, None, :] - x[..., None, :, :]) * w[..., None, :]).sum(-1)
        return value


def mmd(y, b=None, sigma=1.0) -> Energy:
    r"""Half the squared maximum mean discrepancy to a target :math:`\nu=\sum_l b_l\delta_{y_l}`, Gaussian kernel.

    .. math::
        E(\mu) = \frac12\iint k(x-y)\,d(\mu-\nu)(x)\,d(\mu-\nu)(y) \ \ge 0,\qquad
        V_\mu(z) = \int k(z-y)\,d\mu(y) - \int k(z-y)\,d\nu(y),

    with :math:`k(r)=e^{-|r|^2/(2\sigma^2)}`, a positive definite kernel, so that :math:`E(\mu) = 0`
    only at :math:`\mu = \nu` (Peyré and Cuturi, arXiv 1803.00567, Section 8.2). The target may
    have any total mass: an unbalanced flow can create or destroy mass to reach it.

    Parameters
    ----------
    y : (m, d) tensor, the target atoms.
    b : (m,) tensor of non-negative weights (default: uniform, total mass one).
    sigma : float > 0, the kernel width.

    Examples
    --------
    >>> E = mmd(torch.tensor([[0.0, 0.0]]), sigma=1.0)
    >>> x = torch.tensor([[0.0, 0.0]])
    >>> float(E(x, torch.tensor([1.0]))), float(E(x, torch.tensor([2.0])))  # the target, and twice its mass
    (0.0, 0.5)
    """
    y = _checks.floating_tensor(y, "y")
    if y.ndim != 2 or y.shape[0] < 1:
        raise ValueError(f"y must have shape (m, d) with m >= 1, got {tuple(y.shape)}")
    if b is None:
        b = torch.full(y.shape[:1], 1.0 / y.shape[0], dtype=y.dtype, device=y.device)
    b = _checks.floating_tensor(b, "b").to(y)
    if b.shape != y.shape[:1] or bool((b < 0).any()):
        raise ValueError(f"b must hold {y.shape[0]} non-negative weights, got shape {tuple(b.shape)}")
    kernel = gaussian_kernel(sigma)

    def external(z):
        return -(kernel(z[..., :, None, :] - y.to(z)) * b.to(z)).sum(-1)

    constant = 0.5 * float(b @ kernel(y[:, None, :] - y[None, :, :]) @ b)
    return Energy(external=external, interaction=kernel, constant=constant)


def _measure(x, w):
    x = _checks.floating_tensor(x, "x")
    w = _checks.floating_tensor(w, "w")
    if x.ndim < 2 or w.shape != x.shape[:-1]:
        raise ValueError(f"x must have shape (..., n, d) and w shape (..., n), "
                         f"got {tuple(x.shape)} and {tuple(w.shape)}")
    if x.shape[-2] < 1:
        raise ValueError("the measure must have n >= 1 atoms")
    if bool((w < 0).any()):
        raise ValueError("w must be non-negative (the weights of a measure)")
    if w.dtype != x.dtype or w.device != x.device:
        raise TypeError(f"x and w must have the same dtype and device, "
                        f"got {x.dtype} on {x.device} and {w.dtype} on {w.device}")
    return x, w


def _energy(energy):
    if not isinstance(energy, Energy):
        raise TypeError(f"energy must be an nnips.unbalanced.Energy, got {type(energy).__name__}")
    return energy


def _weights(alpha, beta):
    alpha = _checks.real(alpha, "alpha", 0.0)
    beta = _checks.real(beta, "beta", 0.0)
    if alpha == 0 and beta == 0:
        raise ValueError("alpha and beta cannot both be zero: nothing would move")
    return alpha, beta


def _field(energy, x, w):
    """V and its gradient at the atoms; the gradient by autograd through the potential."""
    with torch.enable_grad():
        z = x.detach().requires_grad_(True)
        V = energy._potential(z, x.detach(), w.detach())
        (grad,) = torch.autograd.grad(V.sum(), z)
    return V.detach(), grad


def _reaction(V, w, conserve_mass):
    if not conserve_mass:
        return V
    mass = w.sum(-1, keepdim=True)
    return V - (w * V).sum(-1, keepdim=True) / mass


def first_variation(energy, x, w, at=None):
    r"""The first variation :math:`V_\mu = \delta E/\delta\mu` of ``energy`` at the points ``at`` (default: the atoms).

    At the atoms it is the derivative of the energy in the weights,
    :math:`V_\mu(x_i) = \partial E/\partial w_i`, and :math:`w_i\nabla V_\mu(x_i) = \partial E/\partial x_i`.

    Returns
    -------
    tensor of shape ``at.shape[:-1]`` (or ``w.shape``).
    """
    energy = _energy(energy)
    x, w = _measure(x, w)
    return energy.potential(x if at is None else at, x, w)


def velocity(energy, x, w, alpha=1.0, beta=1.0, conserve_mass=False):
    r"""The velocities :math:`(\dot x_i, \dot w_i) = (-\alpha\nabla V_\mu(x_i),\ -\beta V_\mu(x_i)w_i)` of the atoms.

    With ``conserve_mass=True`` the reaction uses :math:`V-\bar V`, :math:`\bar V=\sum_iw_iV(x_i)/\sum_iw_i`.

    Returns
    -------
    dx : (..., n, d) tensor, dw : (..., n) tensor.
    """
    energy = _energy(energy)
    x, w = _measure(x, w)
    alpha, beta = _weights(alpha, beta)
    V, grad = _field(energy, x, w)
    return -alpha * grad, -beta * _reaction(V, w, conserve_mass) * w


def dissipation(energy, x, w, alpha=1.0, beta=1.0, conserve_mass=False):
    r"""The rate :math:`-\frac{d}{dt}E(\mu_t) = \int\big(\alpha|\nabla V|^2+\beta (V - \bar V)^2\big)\,d\mu \ge 0`.

    (:math:`\bar V = 0` unless ``conserve_mass``.) The energy-dissipation identity of a gradient
    flow: the metric tensor of the Hellinger-Kantorovich geometry evaluated on the force.

    Returns
    -------
    tensor of the batch shape.
    """
    energy = _energy(energy)
    x, w = _measure(x, w)
    alpha, beta = _weights(alpha, beta)
    V, grad = _field(energy, x, w)
    reaction = _reaction(V, w, conserve_mass)
    return (w * (alpha * (grad * grad).sum(-1) + beta * reaction * reaction)).sum(-1)


def _step(energy, x, w, dt, alpha, beta, conserve_mass):
    V, grad = _field(energy, x, w)
    reaction = _reaction(V, w, conserve_mass)
    new_w = w * torch.exp(-beta * dt * reaction)
    if conserve_mass:  # the exact flow keeps the mass; the discrete one does to O(dt^2): restore it
        new_w = new_w * (w.sum(-1, keepdim=True) / new_w.sum(-1, keepdim=True))
    return x - alpha * dt * grad, new_w


def step(energy, x, w, dt, alpha=1.0, beta=1.0, conserve_mass=False):
    r"""One step of the flow: explicit Euler for the positions, the exact exponential for the weights.

    .. math::
        x_i \leftarrow x_i - \alpha\,\Delta t\,\nabla V_\mu(x_i),\qquad
        w_i \leftarrow w_i\,e^{-\beta\,\Delta t\,V_\mu(x_i)},

    with :math:`V_\mu` frozen at the start of the step. The weight update is the exact solution of
    the reaction equation :math:`\dot w_i = -\beta V w_i` for frozen :math:`V`, so weights stay
    positive for any step; the scheme is first order. With ``conserve_mass`` the new weights are
    rescaled to the old total mass.
    """
    energy = _energy(energy)
    x, w = _measure(x, w)
    alpha, beta = _weights(alpha, beta)
    dt = _checks.real(dt, "dt", 0.0, strict=True)
    return _step(energy, x, w, dt, alpha, beta, conserve_mass)


class Flow(NamedTuple):
    """What :func:`flow` recorded at the steps ``step`` (first dimension of every tensor)."""

    step: torch.Tensor
    t: torch.Tensor
    x: torch.Tensor
    w: torch.Tensor
    energy: torch.Tensor
    mass: torch.Tensor


def flow(energy, x, w, dt, steps, alpha=1.0, beta=1.0, conserve_mass=False, record=None) -> Flow:
    r"""Integrate the Wasserstein-Fisher-Rao gradient flow of ``energy`` from :math:`\mu_0=\sum_iw_i\delta_{x_i}`.

    ``alpha = 0`` freezes the positions (a pure Fisher-Rao, or reaction, flow); ``beta = 0`` freezes
    the weights (the Wasserstein gradient flow, mass conserved exactly).

    Parameters
    ----------
    energy : Energy
    x : (..., n, d) tensor, w : (..., n) tensor of non-negative weights.
    dt : float > 0, steps : int >= 0.
    alpha, beta : floats >= 0, not both zero: the transport and reaction weights.
    conserve_mass : bool, use the mass-conserving reaction :math:`V - \bar V`.
    record : increasing step counts in ``[0, steps]`` (default: every step).

    Returns
    -------
    Flow
        ``x`` (len(record), ..., n, d), ``w`` (len(record), ..., n), ``energy`` and ``mass``
        (len(record), ...), ``t = step * dt``.

    Examples
    --------
    Reaction only, linear energy :math:`\int U d\mu`: each weight decays like :math:`e^{-\beta U(x_i)t}`.

    >>> E = Energy(external=lambda z: z[..., 0])
    >>> run = flow(E, torch.tensor([[1.0], [2.0]]), torch.ones(2), dt=0.1, steps=10, alpha=0.0)
    >>> [round(v, 6) for v in run.w[-1].tolist()]
    [0.367879, 0.135335]
    """
    energy = _energy(energy)
    x, w = _measure(x, w)
    alpha, beta = _weights(alpha, beta)
    dt = _checks.real(dt, "dt", 0.0, strict=True)
    steps = _checks.integer(steps, "steps", 0)
    record = list(range(steps + 1)) if record is None else [_checks.integer(k, "record entries", 0) for k in record]
    if not record or any(b <= a for a, b in zip(record, record[1:])) or record[-1] > steps:
        raise ValueError(f"record must be strictly increasing step counts in [0, {steps}], got {record}")
    wanted, out = set(record), {"x": [], "w": [], "energy": []}
    for k in range(record[-1] + 1):
        if k in wanted:
            out["x"].append(x)
            out["w"].append(w)
            out["energy"].append(energy._energy(x, w).detach())
        if k == record[-1]:
            break
        x, w = _step(energy, x, w, dt, alpha, beta, conserve_mass)
        if not bool(torch.isfinite(x).all() and torch.isfinite(w).all()):
            raise FloatingPointError(f"the flow diverged at step {k + 1}: reduce dt")
    xs, ws = torch.stack(out["x"]), torch.stack(out["w"])
    steps_t = torch.tensor(record)
    return Flow(steps_t, steps_t.double() * dt, xs, ws, torch.stack(out["energy"]), ws.sum(-1))
