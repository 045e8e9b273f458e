r"""Training a neural ODE is an optimal control problem: costs, costates, L2 and L1 training, stopping time.

A ResNet (:class:`nnips.control.ResNet`) with :math:`L` layers of step :math:`h = T/L` moves the data
points :math:`x_i`, and its trainable parameters of layer :math:`k` are the control :math:`u_k`.
With a fixed readout :math:`P\in\mathbb R^d` and labels :math:`y_i`, the empirical risk of a state is

.. math:: \phi(x) = \frac1N\sum_{i=1}^N \big(P\cdot x_i - y_i\big)^2 .

The three costs of the large-time theory, discretised exactly on the layer grid, are

.. math::
    J^{\rm final} &= \phi(x_L) + \frac{\lambda}{2}\,h\sum_{k<L}\|u_k\|_2^2
        &&\text{(Esteve, Geshkovski, Pighin, Zuazua, arXiv 2008.02491: regularised ERM)}\\
    J^{\rm running} &= h\sum_{k=1}^{L}\phi(x_k) + \frac{\lambda}{2}\,h\sum_{k<L}\|u_k\|_2^2
        &&\text{(same paper: the turnpike cost)}\\
    J^{\ell^1} &= h\sum_{k=1}^{L}\phi(x_k) + \lambda\,h\sum_{k<L}\|u_k\|_1
        &&\text{(Esteve-Yagüe, Geshkovski, arXiv 2102.13566)}

Smooth costs are minimised with L-BFGS, the :math:`\ell^1` cost with accelerated proximal gradient
steps whose proximal map is the soft threshold, so that parameters vanish exactly.
Book: Chapter 5, "Neural ODEs and the turnpike".
"""

from __future__ import annotations

import math

import torch

from .. import _checks
from ..sphere import generator
from .resnet import ResNet

__all__ = ["discs", "risk", "objective", "costates", "pontryagin_gradient", "prox_l1", "train",
           "layer_norms", "stopping_time"]

PENALTIES = ("l2", "l1")


def discs(n, seed=0, inner=0.5, outer=(1.0, 1.5), augment=1, dtype=torch.float64):
    r"""Two classes in the plane: a disc (label +1) inside an annulus (label -1), uniform in area.

    The first ``n // 2`` points lie in the disc of radius ``inner``, the others in the annulus
    ``outer[0] <= |x| <= outer[1]``. ``augment`` zero coordinates are appended: a flow of the plane
    cannot pull a disc out of a ring around it (Chapter 1), a flow of :math:`\mathbb R^3` can.

    Returns
    -------
    x : (n, 2 + augment) tensor, y : (n,) tensor of +1 and -1.
    """
    n = _checks.integer(n, "n", 2)
    augment = _checks.integer(augment, "augment", 0)
    inner = _checks.real(inner, "inner", 0.0, strict=True)
    r1, r2 = (_checks.real(v, "outer", inner, strict=True) for v in outer)
    if r2 <= r1:
        raise ValueError(f"outer must be an increasing pair of radii above inner, got {outer}")
    g = generator(seed)
    k = n // 2
    u = torch.rand(n, generator=g, dtype=torch.float64)
    radius = torch.cat([inner * u[:k].sqrt(), (r1 ** 2 + (r2 ** 2 - r1 ** 2) * u[k:]).sqrt()])
    angle = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    x = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=-1)
    x = torch.cat([x, torch.zeros(n, augment, dtype=torch.float64)], dim=-1)
    y = torch.cat([torch.ones(k, dtype=torch.float64), -torch.ones(n - k, dtype=torch.float64)])
    return x.to(dtype), y.to(dtype)


def _readout(readout, d, like):
    if readout is None:
        P = torch.zeros(d, dtype=like.dtype, device=like.device)
        P[-1] = 1.0
        return P
    P = _checks.floating_tensor(readout, "readout").to(like)
    if P.shape != (d,):
        raise ValueError(f"readout must have shape ({d},), got {tuple(P.shape)}")
    return P


def _data(net, x0, y):
    if not isinstance(net, ResNet):
        raise TypeError(f"net must be an nnips.control.ResNet, got {type(net).__name__}")
    x0 = _checks.floating_tensor(x0, "x0").to(net.W)
    y = _checks.floating_tensor(y, "y").to(net.W)
    d = net.W.shape[1]
    if x0.ndim != 2 or x0.shape[1] != d:
        raise ValueError(f"x0 must have shape (N, {d}) for this network, got {tuple(x0.shape)}")
    if y.shape != x0.shape[:1]:
        raise ValueError(f"y must hold one label per data point, shape ({x0.shape[0]},), got {tuple(y.shape)}")
    return x0, y


def risk(x, y, readout=None):
    r"""Empirical risk :math:`\phi(x) = \frac1N\sum_i (P\cdot x_i - y_i)^2` of states ``x`` (..., N, d).

    ``readout`` is :math:`P` (default: the last coordinate). Returns a tensor of shape ``x.shape[:-2]``,
    e.g. one value per layer for the states returned by ``net(x0, return_states=True)``.

    Examples
    --------
    >>> risk(torch.tensor([[0.0, 1.0], [0.0, -3.0]]), torch.tensor([1.0, -1.0]))
    tensor(2.)
    """
    x = _checks.floating_tensor(x, "x")
    y = _checks.floating_tensor(y, "y").to(x)
    if x.ndim < 2 or y.shape != x.shape[-2:-1]:
        raise ValueError(f"x must have shape (..., N, d) and y shape (N,), got {tuple(x.shape)} and {tuple(y.shape)}")
    P = _readout(readout, x.shape[-1], x)
    return ((x @ P - y) ** 2).mean(dim=-1)


def _trainable(net):
    return [p for p in (net.W, net.A, net.b) if p.requires_grad]


def _penalty(net, penalty):
    params = _trainable(net)
    if penalty == "l2":
        return 0.5 * sum((p ** 2).sum() for p in params)
    return sum(p.abs().sum() for p in params)


def _check_cost(lam, penalty):
    lam = _checks.real(lam, "lam", 0.0)
    if penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {PENALTIES}, got {penalty!r}")
    return lam


def _loss(net, x0, y, running, P):
    states = net(x0, return_states=True)
    values = ((states @ P - y) ** 2).mean(dim=-1)
    return net.T / net.layers * values[1:].sum() if running else values[-1]


def objective(net, x0, y, lam, running=True, penalty="l2", readout=None):
    r"""The cost :math:`J` of the parameters of ``net`` (a scalar tensor that autograd can differentiate).

    .. math:: J = \Big[\phi(x_L)\ \text{or}\ h\sum_{k=1}^{L}\phi(x_k)\Big] + \lambda h\sum_{k<L} R(u_k),
              \qquad R(u) = \tfrac12\|u\|_2^2\ (\texttt{"l2"})\ \text{or}\ \|u\|_1\ (\texttt{"l1"}),

    where :math:`u_k` gathers the trainable parameters of layer :math:`k` (those with
    ``requires_grad``). ``running=False`` gives the final-time cost of regularised ERM.

    Parameters
    ----------
    net : ResNet; x0 : (N, d) tensor, the data; y : (N,) tensor, the labels.
    lam : float >= 0, the penalty weight :math:`\lambda`.
    running : bool, integral (running) loss or final-time loss.
    penalty : "l2" or "l1".
    readout : (d,) tensor :math:`P`, default the last coordinate.
    """
    x0, y = _data(net, x0, y)
    lam = _check_cost(lam, penalty)
    P = _readout(readout, x0.shape[1], x0)
    return _loss(net, x0, y, running, P) + lam * net.T / net.layers * _penalty(net, penalty)


def _activation_derivative(activation, z):
    # sigma acts entrywise, so the gradient of sum(sigma(z)) is sigma'(z), entry by entry.
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        (ds,) = torch.autograd.grad(activation(z).sum(), z)
    return ds


@torch.no_grad()
def costates(net, x0, y, running=False, readout=None):
    r"""The costates :math:`p_k = \partial J/\partial x_k` of the loss part of the cost, by the discrete adjoint equation.

    For :math:`x_{k+1} = x_k + h f(x_k, u_k)`, :math:`f(x,u) = W\sigma(Ax+b)`, Pontryagin's costate
    runs backward from the final time:

    .. math:: p_L = c_L\nabla\phi(x_L), \qquad
              p_k = p_{k+1} + h\,\partial_x f(x_k,u_k)^{\!\top} p_{k+1} + c_k\nabla\phi(x_k),

    with :math:`c_L = 1, c_k = 0` for the final-time loss and :math:`c_k = h` (:math:`k\ge1`),
    :math:`c_0 = 0` for the running loss; here :math:`\partial_x f^\top p = A^\top(\sigma'(Ax+b)\odot W^\top p)`.
    Backpropagation through the ResNet computes exactly these vectors (Li, Chen, Tai, E, arXiv
    1710.09513, the method of successive approximations; Chapter 5 of the book).

    Returns
    -------
    p : (L + 1, N, d) tensor.
    """
    x0, y = _data(net, x0, y)
    P = _readout(readout, x0.shape[1], x0)
    xs = net(x0, return_states=True)
    L, h, N = net.layers, net.T / net.layers, x0.shape[0]

    def grad_phi(x):
        return (2.0 / N) * (x @ P - y)[:, None] * P

    p = torch.empty_like(xs)
    p[L] = (h if running else 1.0) * grad_phi(xs[L])
    for k in reversed(range(L)):
        ds = _activation_derivative(net.activation, xs[k] @ net.A[k].mT + net.b[k])
        p[k] = p[k + 1] + h * (ds * (p[k + 1] @ net.W[k])) @ net.A[k]
        if running and k >= 1:
            p[k] += h * grad_phi(xs[k])
    return p


@torch.no_grad()
def pontryagin_gradient(net, x0, y, lam=0.0, running=False, readout=None):
    r"""Gradient of the L2 cost :func:`objective` from the costates: :math:`\partial J/\partial u_k = h\,\partial_u f(x_k,u_k)^{\!\top}p_{k+1} + \lambda h u_k`.

    For :math:`f = W\sigma(z)`, :math:`z = Ax + b`, :math:`v = \sigma'(z)\odot W^\top p_{k+1}`, summed over
    the data points:

    .. math:: \partial_{W_k}J = h\sum_i p_{k+1,i}\,\sigma(z_{k,i})^\top,\quad
              \partial_{A_k}J = h\sum_i v_{k,i}\,x_{k,i}^\top,\quad
              \partial_{b_k}J = h\sum_i v_{k,i},

    plus :math:`\lambda h u_k` for the trainable parameters. Equal to what autograd returns for
    :func:`objective` with ``penalty="l2"``: backpropagation is the adjoint method.

    Returns
    -------
    (gW, gA, gb) : tensors shaped like ``net.W``, ``net.A``, ``net.b``.
    """
    lam = _check_cost(lam, "l2")
    p = costates(net, x0, y, running=running, readout=readout)
    x0, y = _data(net, x0, y)
    xs = net(x0, return_states=True)
    h = net.T / net.layers
    grads = [torch.zeros_like(net.W), torch.zeros_like(net.A), torch.zeros_like(net.b)]
    for k in range(net.layers):
        z = xs[k] @ net.A[k].mT + net.b[k]
        v = _activation_derivative(net.activation, z) * (p[k + 1] @ net.W[k])
        grads[0][k] = h * p[k + 1].mT @ net.activation(z)
        grads[1][k] = h * v.mT @ xs[k]
        grads[2][k] = h * v.sum(dim=0)
    for g, param in zip(grads, (net.W, net.A, net.b)):
        if param.requires_grad:
            g += lam * h * param
    return tuple(grads)


def prox_l1(v, tau, bound=None):
    r"""The proximal map of :math:`\tau\|\cdot\|_1`, the soft threshold, entry by entry; optionally boxed.

    .. math:: \operatorname{prox}(v) = \arg\min_{\|w\|_\infty\le M} \tfrac12\|w - v\|^2 + \tau\|w\|_1
              = \operatorname{clip}_{[-M, M]}\big(\operatorname{sign}(v)\max(|v| - \tau, 0)\big).

    Entries with :math:`|v|\le\tau` become exactly zero; this is what makes the parameters of
    :math:`\ell^1`-trained networks vanish beyond a stopping time. The problem separates into one
    convex problem per entry, whose minimiser over :math:`[-M, M]` is the unconstrained one clipped
    (no ``bound``: :math:`M = \infty`). This is the step of ISTA/FISTA (Beck and Teboulle, SIAM J.
    Imaging Sci. 2 (2009) 183-202).

    Examples
    --------
    >>> prox_l1(torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.5]), 1.0).tolist()
    [-1.0, -0.0, 0.0, 0.0, 0.5]
    >>> prox_l1(torch.tensor([-3.0, 0.5, 3.0]), 1.0, bound=1.5).tolist()
    [-1.5, 0.0, 1.5]
    """
    v = _checks.floating_tensor(v, "v")
    tau = _checks.real(tau, "tau", 0.0)
    w = v.sign() * (v.abs() - tau).clamp_min(0.0)
    if bound is None:
        return w
    bound = _checks.real(bound, "bound", 0.0, strict=True)
    return w.clamp(-bound, bound)


def train(net, x0, y, lam, running=True, penalty="l2", iterations=200, readout=None, bound=None):
    r"""Minimise :func:`objective` over the trainable parameters of ``net``, in place; deterministic.

    ``penalty="l2"``: full-batch L-BFGS (strong Wolfe line search, memory 20). ``penalty="l1"``:
    accelerated proximal gradient (FISTA with backtracking and a monotone restart, Beck and Teboulle
    2009): a gradient step on the smooth part, then :func:`prox_l1` with threshold
    :math:`\eta\lambda h`, so that parameters reach exact zeros. ``bound`` :math:`M` (``"l1"`` only)
    constrains every parameter to :math:`[-M, M]`, as in the sparsity paper's admissible controls
    :math:`\|u(t)\|\le M`; without it an :math:`\ell^1` cost favours ever larger controls in the
    first layers.

    Parameters
    ----------
    net, x0, y, lam, running, penalty, readout : as in :func:`objective`.
    iterations : int >= 0, the number of optimiser iterations.
    bound : float > 0 or None, the box constraint :math:`|u| \le M` of the ``"l1"`` training.

    Returns
    -------
    history : (iterations + 1,) float64 tensor, the cost before training and after each iteration.
    """
    x0, y = _data(net, x0, y)
    lam = _check_cost(lam, penalty)
    iterations = _checks.integer(iterations, "iterations", 0)
    P = _readout(readout, x0.shape[1], x0)
    params = _trainable(net)
    if not params:
        raise ValueError("net has no trainable parameters")
    h = net.T / net.layers
    if penalty == "l2":
        if bound is not None:
            raise ValueError("bound applies to penalty='l1' training only")
        return _lbfgs(net, params, lambda: _loss(net, x0, y, running, P) + lam * h * _penalty(net, "l2"), iterations)
    if bound is not None:
        bound = _checks.real(bound, "bound", 0.0, strict=True)
        if any(bool((p.abs() > bound).any()) for p in params):
            raise ValueError(f"the trainable parameters must start inside the box |u| <= bound = {bound}")
    return _fista(params, lambda: _loss(net, x0, y, running, P), lam * h, iterations, bound)


def _lbfgs(net, params, cost, iterations):
    # One iteration per call, so that the cost can be recorded; max_eval bounds the line search of
    # that iteration (torch's default, 5/4 of max_iter, would leave it no evaluation at all).
    optimiser = torch.optim.LBFGS(params, lr=1.0, max_iter=1, max_eval=25, history_size=20,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure():
        optimiser.zero_grad()
        value = cost()
        value.backward()
        return value

    history = [closure().item()]
    for _ in range(iterations):
        optimiser.step(closure)
        with torch.no_grad():
            history.append(cost().item())
    optimiser.zero_grad()
    return _finite_history(history)


def _fista(params, smooth, weight, iterations, bound, grow=1.2):
    def assign(values):
        with torch.no_grad():
            for p, v in zip(params, values):
                p.copy_(v)

    def value(values):
        assign(values)
        with torch.no_grad():
            return smooth().item()

    def value_and_grad(values):
        assign(values)
        f = smooth()
        return f.item(), torch.autograd.grad(f, params)

    def l1(values):
        return weight * sum(v.abs().sum().item() for v in values)

    x = [p.detach().clone() for p in params]
    z, t, step = x, 1.0, 1.0
    F_x = value(x) + l1(x)
    history = [F_x]
    for _ in range(iterations):
        f_z, g = value_and_grad(z)
        while True:
            candidate = [prox_l1(zi - step * gi, step * weight, bound) for zi, gi in zip(z, g)]
            move = [c - zi for c, zi in zip(candidate, z)]
            model = f_z + sum((gi * m).sum().item() + (m * m).sum().item() / (2 * step) for gi, m in zip(g, move))
            f_c = value(candidate)
            if f_c <= model + 1e-15 * abs(model):
                break
            step *= 0.5
            if step < 1e-30:
                raise FloatingPointError("the proximal gradient line search failed: the cost is not finite or smooth")
        F_c = f_c + l1(candidate)
        if F_c > F_x:
            # The extrapolated point did not descend: restart the momentum from the last iterate.
            z, t = x, 1.0
        else:
            t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
            z = [c + ((t - 1) / t_next) * (c - xi) for c, xi in zip(candidate, x)]
            x, t, F_x = candidate, t_next, F_c
            step *= grow
        history.append(F_x)
    assign(x)
    return _finite_history(history)


def _finite_history(history):
    history = torch.tensor(history, dtype=torch.float64)
    if not bool(torch.isfinite(history).all()):
        raise FloatingPointError("training produced a non-finite cost; lower lam or the time horizon T")
    return history


def layer_norms(net, p=2):
    r"""The size :math:`\|u_k\|_p` of the trainable parameters of each layer: a (L,) tensor (``p`` = 1 or 2)."""
    if not isinstance(net, ResNet):
        raise TypeError(f"net must be an nnips.control.ResNet, got {type(net).__name__}")
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    params = _trainable(net)
    if not params:
        raise ValueError("net has no trainable parameters")
    flat = torch.cat([q.detach().flatten(1) for q in params], dim=1)
    return flat.norm(p=p, dim=1)


def stopping_time(net) -> float:
    r"""The stopping time :math:`T^* = h\,(k^* + 1)`, with :math:`k^*` the last layer whose trainable parameters are not all exactly zero.

    Beyond :math:`T^*` the network is the identity: the control vanishes on :math:`(T^*, T]`
    (Esteve-Yagüe and Geshkovski, arXiv 2102.13566). Returns 0.0 when every parameter is zero.
    """
    alive = (layer_norms(net, p=1) > 0).nonzero()
    return 0.0 if alive.numel() == 0 else (alive.max().item() + 1) * net.T / net.layers
