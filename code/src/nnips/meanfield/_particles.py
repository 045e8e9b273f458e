r"""Two-layer networks as particle systems: the network, its loss, the potentials F and K, and training.

A network of width ``n`` is a cloud of particles :math:`\theta_i = (c_i, y_i)`, stored as two tensors:
output weights ``c`` of shape ``(..., n)`` and positions ``y`` of shape ``(..., n, p)``. Leading
dimensions are batches of independent networks (seeds, parameter grids). Data are a
:class:`Data` pair ``(x, f)`` with ``x`` of shape ``(..., M, d)`` and targets ``f`` of shape ``(..., M)``;
the data law is the empirical measure of these ``M`` points (a fixed Monte-Carlo sample of the
population, or one mini-batch). Book: Chapter 6, "Parameters are particles".

Only the abstracts of the papers cited here could be read when this module was written, so the
docstrings name the paper and the object (network, loss expansion, velocity) rather than an
equation number.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from tqdm import tqdm

from .. import _checks
from ..sphere import generator
from ._units import _check_unit

__all__ = ["Data", "Run", "initial", "output", "loss", "potentials", "loss_from_potentials", "velocity",
           "gd_step", "train", "characteristics", "resample", "relative_displacement", "pair_covariance"]


class Data(NamedTuple):
    """Inputs ``x`` of shape ``(..., M, d)`` and target values ``f`` of shape ``(..., M)``."""

    x: torch.Tensor
    f: torch.Tensor


class Run(NamedTuple):
    """What :func:`train` recorded, at the steps ``step`` (``len(step)`` first in every tensor).

    ``t = step * dt`` is the mean-field time; ``loss`` is on the training data (``None`` when the data
    change at every step) and ``test`` on the test data (``None`` without test data).
    """

    step: torch.Tensor
    t: torch.Tensor
    c: torch.Tensor
    y: torch.Tensor
    loss: torch.Tensor | None
    test: torch.Tensor | None


def _particles(c, y):
    c = _checks.floating_tensor(c, "c")
    y = _checks.floating_tensor(y, "y")
    if c.ndim < 1 or y.ndim < 2 or y.shape[:-1] != c.shape:
        raise ValueError(f"c must have shape (..., n) and y shape (..., n, p) with the same (..., n), "
                         f"got c {tuple(c.shape)} and y {tuple(y.shape)}")
    if c.shape[-1] < 1:
        raise ValueError("the network must have n >= 1 particles")
    if c.dtype != y.dtype or c.device != y.device:
        raise TypeError(f"c and y must have the same dtype and device, got {c.dtype} on {c.device} "
                        f"and {y.dtype} on {y.device}")
    return c, y


def _inputs(x, unit, y, name="x"):
    x = _checks.floating_tensor(x, name)
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (..., M, d), got {tuple(x.shape)}")
    if x.dtype != y.dtype or x.device != y.device:
        raise TypeError(f"{name} must have the dtype and device of the particles ({y.dtype} on {y.device}), "
                        f"got {x.dtype} on {x.device}")
    if unit.dim(x.shape[-1]) != y.shape[-1]:
        raise ValueError(f"{name} has dimension d = {x.shape[-1]}, so the unit {unit!r} needs particles "
                         f"y of dimension {unit.dim(x.shape[-1])}, got {y.shape[-1]}")
    return x


def _data(data, unit, y, name="data"):
    if not isinstance(data, Data):
        raise TypeError(f"{name} must be a meanfield.Data(x, f), got {type(data).__name__}")
    x = _inputs(data.x, unit, y, f"{name}.x")
    f = _checks.floating_tensor(data.f, f"{name}.f")
    if f.dtype != x.dtype:
        raise TypeError(f"{name}.f must have the dtype of {name}.x ({x.dtype}), got {f.dtype}")
    if f.shape != x.shape[:-1]:
        raise ValueError(f"{name}.f must have shape {tuple(x.shape[:-1])} (one value per input), "
                         f"got {tuple(f.shape)}")
    return Data(x, f)


def initial(n, p, batch=(), seed=0, c_std=1.0, y_std=1.0, c_value=None, symmetric=False,
            dtype=torch.float64, device=None):
    r"""``n`` i.i.d. particles: :math:`c_i\sim\mathcal N(0, c_{\rm std}^2)`, :math:`y_i\sim\mathcal N(0, y_{\rm std}^2 I_p)`.

    The empirical measure of the particles approximates :math:`\mu_0 = \mathcal N(0,c_{\rm std}^2)\otimes
    \mathcal N(0, y_{\rm std}^2 I_p)`, the i.i.d. start of the mean-field theory.

    Parameters
    ----------
    n, p : int
        Width and dimension of a position.
    batch : int or tuple of int
        Leading batch shape (independent networks).
    seed : int or torch.Generator
    c_std, y_std : float
        Standard deviations; ``c_std = 0`` starts with a network that is identically zero.
    c_value : float, optional
        Give every :math:`c_i` this value instead of drawing it (e.g. 1 for networks with fixed
        output weights, as in Mei, Montanari, Nguyen).
    symmetric : bool
        Draw ``n/2`` particles and add their copies with opposite output weights, so that the
        network is exactly zero at the start (the symmetrised start of Chizat, Oyallon, Bach,
        arXiv 1812.07956). ``n`` must then be even.

    Returns
    -------
    c : (*batch, n) tensor
    y : (*batch, n, p) tensor

    Examples
    --------
    >>> c, y = initial(4, 3, batch=2, symmetric=True)
    >>> c.shape, y.shape, bool((c[..., :2] + c[..., 2:] == 0).all())
    (torch.Size([2, 4]), torch.Size([2, 4, 3]), True)
    """
    n = _checks.integer(n, "n", 1)
    p = _checks.integer(p, "p", 1)
    batch = (batch,) if isinstance(batch, int) else tuple(batch)
    for b in batch:
        _checks.integer(b, "batch entries", 1)
    c_std = _checks.real(c_std, "c_std", minimum=0.0)
    y_std = _checks.real(y_std, "y_std", minimum=0.0)
    if not isinstance(symmetric, bool):
        raise TypeError(f"symmetric must be True or False, got {symmetric!r}")
    if symmetric and n % 2:
        raise ValueError(f"a symmetric start needs an even n, got n = {n}")
    half = n // 2 if symmetric else n
    g = generator(seed)
    c = c_std * torch.randn((*batch, half), generator=g, dtype=torch.float64)
    y = y_std * torch.randn((*batch, half, p), generator=g, dtype=torch.float64)
    if c_value is not None:
        c = torch.full_like(c, _checks.real(c_value, "c_value"))
    if symmetric:
        c, y = torch.cat([c, -c], dim=-1), torch.cat([y, y], dim=-2)
    return c.to(dtype=dtype, device=device), y.to(dtype=dtype, device=device)


def _output(c, y, unit, x):
    return (unit(x, y) @ c[..., None])[..., 0] / c.shape[-1]


def output(c, y, unit, x):
    r"""The network :math:`f_n(x) = \frac1n\sum_{i=1}^n c_i\,\varphi(x, y_i)` at the inputs ``x``.

    Rotskoff and Vanden-Eijnden (arXiv 1805.00915), the network of their setting; Mei, Montanari,
    Nguyen (arXiv 1804.06561), :math:`\hat y(x;\theta)` with :math:`\sigma_*(x;\theta_i) = c_i\,\varphi(x,y_i)`.

    Parameters
    ----------
    c : (..., n) tensor
    y : (..., n, p) tensor
    unit : Ridge or RBF
    x : (..., M, d) tensor

    Returns
    -------
    (..., M) tensor

    Examples
    --------
    >>> from nnips.meanfield import Ridge
    >>> output(torch.tensor([2.0, 4.0]), torch.tensor([[1.0], [-1.0]]), Ridge("relu"), torch.tensor([[3.0]]))
    tensor([3.])
    """
    unit = _check_unit(unit)
    c, y = _particles(c, y)
    return _output(c, y, unit, _inputs(x, unit, y))


def _loss(c, y, unit, data):
    return 0.5 * ((_output(c, y, unit, data.x) - data.f) ** 2).mean(-1)


def loss(c, y, unit, data):
    r"""The loss :math:`\mathcal L[f_n] = \frac12\,\mathbb E_{x}\,|f(x) - f_n(x)|^2` over the data law.

    Rotskoff and Vanden-Eijnden (arXiv 1805.00915), the mean-squared loss of their setting; the
    expectation is the mean over the ``M`` points of ``data``.

    Returns
    -------
    tensor of the batch shape
    """
    unit = _check_unit(unit)
    c, y = _particles(c, y)
    return _loss(c, y, unit, _data(data, unit, y))


def potentials(c, y, unit, data):
    r"""The constant :math:`C_f`, one-body potential :math:`F` and two-body interaction :math:`K`.

    .. math::
        C_f = \tfrac12\mathbb E f(x)^2,\qquad F(\theta_i) = c_i\,\mathbb E[f(x)\varphi(x,y_i)],\qquad
        K(\theta_i,\theta_j) = c_ic_j\,\mathbb E[\varphi(x,y_i)\varphi(x,y_j)],

    so that :math:`\mathcal L = C_f - \frac1n\sum_iF(\theta_i) + \frac1{2n^2}\sum_{i,j}K(\theta_i,\theta_j)`
    (:func:`loss_from_potentials`). Rotskoff and Vanden-Eijnden (arXiv 1805.00915), the expansion of
    the loss into one- and two-body potentials; Mei, Montanari, Nguyen (arXiv 1804.06561), the same
    expansion of the risk with :math:`V=-F`, :math:`U=K` (their risk is twice our loss).

    Returns
    -------
    C_f : tensor of the data's batch shape
    F : (..., n) tensor
    K : (..., n, n) tensor
    """
    unit = _check_unit(unit)
    c, y = _particles(c, y)
    data = _data(data, unit, y)
    phi = unit(data.x, y)
    M = data.f.shape[-1]
    C_f = 0.5 * (data.f ** 2).mean(-1)
    F = c * (data.f[..., None, :] @ phi)[..., 0, :] / M
    K = c[..., :, None] * c[..., None, :] * (phi.transpose(-1, -2) @ phi) / M
    return C_f, F, K


def loss_from_potentials(C_f, F, K):
    r""":math:`C_f - \frac1n\sum_i F(\theta_i) + \frac1{2n^2}\sum_{i,j}K(\theta_i,\theta_j)`: the energy of the empirical measure.

    Rotskoff and Vanden-Eijnden (arXiv 1805.00915), the loss as an energy of the empirical measure.

    Examples
    --------
    >>> loss_from_potentials(torch.tensor(1.0), torch.tensor([1.0, 1.0]), torch.ones(2, 2))
    tensor(0.5000)
    """
    C_f = _checks.floating_tensor(C_f, "C_f")
    F = _checks.floating_tensor(F, "F")
    K = _checks.floating_tensor(K, "K")
    if F.ndim < 1 or K.shape[-2:] != (F.shape[-1], F.shape[-1]):
        raise ValueError(f"F must have shape (..., n) and K shape (..., n, n), got {tuple(F.shape)} "
                         f"and {tuple(K.shape)}")
    return C_f - F.mean(-1) + 0.5 * K.mean((-1, -2))


def _test_particles(at, y):
    if not isinstance(at, (tuple, list)) or len(at) != 2:
        raise TypeError(f"at must be a pair (c, y) of test particles, got {type(at).__name__}")
    c_at, y_at = _particles(*at)
    if y_at.shape[-1] != y.shape[-1] or y_at.dtype != y.dtype:
        raise ValueError(f"the test particles at must have dimension p = {y.shape[-1]} and dtype {y.dtype}, "
                         f"got {y_at.shape[-1]} and {y_at.dtype}")
    return c_at, y_at


def _velocity(c, y, unit, data, learn_c=True, at=None):
    phi, aux = unit._forward(data.x, y)
    M = data.f.shape[-1]
    residual = ((phi @ c[..., None])[..., 0] / c.shape[-1] - data.f) / M  # (f_n - f) / M
    if at is not None:  # test particles feel the field of the network without acting on it
        c, y = at
        phi, aux = unit._forward(data.x, y)
    vc = -(residual[..., None, :] @ phi)[..., 0, :] if learn_c else torch.zeros_like(c)
    vy = -c[..., None] * unit._pullback(data.x, y, residual[..., :, None], aux)
    return vc, vy


def velocity(c, y, unit, data, learn_c=True, at=None):
    r"""The mean-field velocity of every particle, :math:`\dot\theta_i = -n\,\nabla_{\theta_i}\mathcal L`.

    .. math::
        \dot\theta_i = \nabla F(\theta_i) - \frac1n\sum_{j=1}^n\nabla_{\theta_i}K(\theta_i,\theta_j)
        = -\mathbb E\big[(f_n(x) - f(x))\,\nabla_\theta\big(c\,\varphi(x,y)\big)\big|_{\theta_i}\big],

    that is :math:`\dot\theta_i = -\nabla_\theta U(\theta_i,[\mu^n])` with
    :math:`U(\theta,[\mu]) = -F(\theta) + \int K(\theta,\theta')\,\mu(d\theta')`.
    Rotskoff and Vanden-Eijnden (arXiv 1805.00915), gradient descent as an interacting particle
    system, time rescaled by ``n``; Mei, Montanari, Nguyen (arXiv 1804.06561), the particle form
    of their distributional dynamics (up to the unit of time).

    Parameters
    ----------
    c, y : (..., n), (..., n, p) tensors
    unit : Ridge or RBF
    data : Data
    learn_c : bool
        With ``False`` the output weights stay fixed (velocity 0), as in Mei, Montanari, Nguyen.
    at : pair of tensors ``(c', y')``, optional
        Evaluate the field :math:`-\nabla_\theta U(\cdot,[\mu^n])` of the network at other
        particles, of shapes ``(..., m)`` and ``(..., m, p)`` (broadcasting with the network's batch):
        test particles that feel the network without acting on it (see :func:`characteristics`).

    Returns
    -------
    vc : (..., n) tensor (or (..., m))
    vy : (..., n, p) tensor (or (..., m, p))
    """
    unit = _check_unit(unit)
    c, y = _particles(c, y)
    if at is not None:
        at = _test_particles(at, y)
    return _velocity(c, y, unit, _data(data, unit, y), learn_c, at)


def characteristics(c, y, unit, data, at, dt, steps, learn_c=True):
    r"""Move test particles along the mean field of a network that trains by gradient descent.

    The network ``(c, y)`` takes ``steps`` steps of :func:`gd_step`; the test particles ``at`` move
    with the field of the network at each step,
    :math:`\theta\leftarrow\theta - \Delta t\,\nabla_\theta U(\theta,[\mu^n_t])`, without acting on it.
    When the network is wide, :math:`\mu^n_t\approx\mu_t` and each test particle follows the
    characteristic of the McKean-Vlasov equation
    :math:`\partial_t\mu_t = \nabla\cdot\big(\mu_t\nabla_\theta U(\theta,[\mu_t])\big)` from its
    start: the nonlinear process that the neurons of a finite network follow up to
    :math:`O(n^{-1/2})` (propagation of chaos; Sirignano and Spiliopoulos, arXiv 1805.01053; Mei,
    Montanari, Nguyen, arXiv 1804.06561).

    Parameters
    ----------
    c, y : (..., n), (..., n, p) tensors
        The network that generates the field.
    unit : Ridge or RBF
    data : Data
    at : pair ``(c', y')`` of tensors of shapes ``(..., m)``, ``(..., m, p)``
        Starts of the test particles (batch dimensions broadcast with the network's).
    dt : float
    steps : int
    learn_c : bool

    Returns
    -------
    (c', y') after ``steps`` steps.
    """
    unit = _check_unit(unit)
    c, y = _particles(c, y)
    data = _data(data, unit, y)
    c_at, y_at = _test_particles(at, y)
    dt = _checks.real(dt, "dt", minimum=0.0, strict=True)
    for _ in range(_checks.integer(steps, "steps", 0)):
        vc, vy = _velocity(c, y, unit, data, learn_c, (c_at, y_at))
        c, y = gd_step(c, y, unit, data, dt, learn_c)
        c_at, y_at = c_at + dt * vc, y_at + dt * vy
    return c_at, y_at


def _check_dt(dt):
    if isinstance(dt, torch.Tensor):
        dt = _checks.floating_tensor(dt, "dt")
        if not bool((dt > 0).all()):
            raise ValueError("dt must be > 0 (every entry of a tensor dt)")
        return dt
    return _checks.real(dt, "dt", minimum=0.0, strict=True)


def gd_step(c, y, unit, data, dt, learn_c=True):
    r"""One gradient-descent step in mean-field time: :math:`\theta_i \leftarrow \theta_i + \Delta t\,\dot\theta_i`.

    With learning rate :math:`\eta` on :math:`\mathcal L`, :math:`\theta_i\leftarrow\theta_i-\eta\nabla_{\theta_i}\mathcal L`
    is this step with :math:`\Delta t = n\eta`: the learning rate scales like ``1/n`` at fixed
    mean-field time :math:`t = k\,\Delta t` (Rotskoff and Vanden-Eijnden, arXiv 1805.00915;
    Sirignano and Spiliopoulos, arXiv 1805.01053, learning rate :math:`\alpha/N`, time :math:`k/N`).
    Written so that a stochastic variant (mini-batch ``data``, added noise) can call it.

    ``dt`` is a float or a positive tensor of the batch shape (one step per network). No input
    checks: :func:`train` checks once.
    """
    vc, vy = _velocity(c, y, unit, data, learn_c)
    if isinstance(dt, torch.Tensor):  # one step per network: broadcast over particles (and coordinates)
        return c + dt[..., None] * vc, y + dt[..., None, None] * vy
    return c + dt * vc, y + dt * vy


def train(c, y, unit, data, dt, steps, record=None, test=None, learn_c=True,
          step: Callable | None = None, progress=False) -> Run:
    r"""Run ``steps`` training steps from ``(c, y)`` and record the particles and losses.

    Parameters
    ----------
    c, y : (..., n), (..., n, p) tensors
    unit : Ridge or RBF
    data : Data, or a callable ``k -> Data``
        The training data; a callable gives the data of step ``k`` (fresh mini-batches for SGD).
    dt : float or tensor of the batch shape
        Mean-field time step (learning rate times ``n``).
    steps : int
    record : sequence of int, optional
        Strictly increasing step counts in ``[0, steps]`` at which to record (default ``[0, steps]``).
    test : Data, optional
        Data on which to record the loss as well (a fixed test set).
    learn_c : bool
        Train the output weights too (default) or keep them fixed.
    step : callable, optional
        ``step(c, y, unit, data, dt, learn_c) -> (c, y)``; defaults to :func:`gd_step`. A noisy
        or stochastic variant plugs in here.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    Run
        ``c`` of shape ``(len(record), ..., n)``, ``y`` of shape ``(len(record), ..., n, p)``, the
        losses of shape ``(len(record), ...)``.

    Examples
    --------
    >>> from nnips.meanfield import Ridge
    >>> x = torch.linspace(-1, 1, 9, dtype=torch.float64)[:, None]
    >>> data = Data(x, x[:, 0].abs())
    >>> c, y = initial(8, 1, seed=0)
    >>> run = train(c, y, Ridge("relu"), data, dt=0.1, steps=200)
    >>> bool(run.loss[-1] < 0.1 * run.loss[0])
    True
    """
    unit = _check_unit(unit)
    c, y = _particles(c, y)
    steps = _checks.integer(steps, "steps", 0)
    dt = _check_dt(dt)
    record = [0, steps] if record is None else [_checks.integer(k, "record entries", 0) for k in record]
    if not record or any(b <= a for a, b in zip(record, record[1:])) or record[-1] > steps:
        raise ValueError(f"record must be strictly increasing step counts in [0, {steps}], got {record}")
    fixed = not callable(data)
    if fixed:
        data = _data(data, unit, y)
    test = None if test is None else _data(test, unit, y, "test")
    step = gd_step if step is None else step
    out = {"c": [], "y": [], "loss": [], "test": []}
    wanted = set(record)
    for k in tqdm(range(steps + 1), disable=not progress, desc="training"):
        if k in wanted:
            out["c"].append(c)
            out["y"].append(y)
            if fixed:
                out["loss"].append(_loss(c, y, unit, data))
            if test is not None:
                out["test"].append(_loss(c, y, unit, test))
        if k == steps:
            break
        batch = data if fixed else _data(data(k), unit, y)
        c, y = step(c, y, unit, batch, dt, learn_c)
        if not bool(torch.isfinite(c).all() and torch.isfinite(y).all()):
            raise FloatingPointError(f"training diverged at step {k + 1}: reduce dt")
    steps_t = torch.tensor(record)
    t = steps_t.double().reshape(-1, *([1] * (dt.ndim if isinstance(dt, torch.Tensor) else 0))) * dt
    return Run(steps_t, t, torch.stack(out["c"]), torch.stack(out["y"]),
               torch.stack(out["loss"]) if fixed else None,
               torch.stack(out["test"]) if test is not None else None)


def resample(c, y, n, batch=(), seed=0):
    r"""Draw ``n`` particles i.i.d. from the empirical measure :math:`\frac1N\sum_j\delta_{\theta_j}` of a network.

    The Monte-Carlo baseline of the central limit theorem: for i.i.d. draws from :math:`\mu`,
    :math:`\mathbb E\,\mathcal L[f_n] = \mathcal L[f_\mu] + \frac1{2n}\mathbb E_x\operatorname{Var}_{\theta\sim\mu}\big(c\,\varphi(x,y)\big)`
    (a direct computation; the Monte-Carlo rate that Rotskoff and Vanden-Eijnden, arXiv 1805.00915,
    compare trained networks with).

    Parameters
    ----------
    c, y : (N,), (N, p) tensors
        One network (no batch dimension).
    n : int
    batch : int or tuple of int
    seed : int or torch.Generator

    Returns
    -------
    c : (*batch, n) tensor
    y : (*batch, n, p) tensor

    Examples
    --------
    >>> c, y = resample(torch.tensor([1.0, 2.0]), torch.tensor([[0.0], [1.0]]), 5, batch=3)
    >>> c.shape, y.shape, bool((y[..., 0] + 1 == c).all())
    (torch.Size([3, 5]), torch.Size([3, 5, 1]), True)
    """
    c, y = _particles(c, y)
    if c.ndim != 1:
        raise ValueError(f"resample draws from one network: c must have shape (N,), got {tuple(c.shape)}")
    n = _checks.integer(n, "n", 1)
    batch = (batch,) if isinstance(batch, int) else tuple(batch)
    index = torch.randint(c.shape[0], (*batch, n), generator=generator(seed))
    return c[index.to(c.device)], y[index.to(c.device)]


def relative_displacement(c0, y0, c, y):
    r"""How far the particles moved, relative to where they started: :math:`\|\theta - \theta_0\|/\|\theta_0\|`.

    The norm is over all particles of one network (:math:`\theta = (c_i, y_i)_{i\le n}`); small values
    mean lazy training (Chizat, Oyallon, Bach, arXiv 1812.07956).

    Returns
    -------
    tensor of the batch shape

    Examples
    --------
    >>> relative_displacement(torch.tensor([3.0]), torch.tensor([[4.0]]), torch.tensor([3.0]), torch.tensor([[4.5]]))
    tensor(0.1000)
    """
    c0, y0 = _particles(c0, y0)
    c, y = _particles(c, y)
    if c.shape[-1] != c0.shape[-1] or y.shape[-1] != y0.shape[-1]:
        raise ValueError("the two networks must have the same width n and dimension p")
    moved = (c - c0).pow(2).sum(-1) + (y - y0).pow(2).sum((-1, -2))
    start = c0.pow(2).sum(-1) + y0.pow(2).sum((-1, -2))
    return (moved / start).sqrt()


def pair_covariance(h, control=None):
    r"""Covariance :math:`\operatorname{Cov}(h(\theta_1), h(\theta_2))` of a statistic of two distinct neurons.

    ``h`` holds a statistic of every neuron of ``S`` independent networks, shape ``(S, n)``; the
    estimator averages over the :math:`n(n-1)` ordered pairs :math:`i\ne j` of each network and over
    the networks. With i.i.d. starts, any deterministic function :math:`g` of a neuron's start
    (``control``, same shape, e.g. the neuron's McKean-Vlasov characteristic from
    :func:`characteristics`) satisfies :math:`\operatorname{Cov}(g_1, g_2) = 0`, so

    .. math::
        \operatorname{Cov}(h_1,h_2) = \operatorname{Cov}(g_1,\delta_2) + \operatorname{Cov}(\delta_1,g_2)
        + \operatorname{Cov}(\delta_1,\delta_2),\qquad \delta = h - g,

    and estimating the right-hand side drops the noise of the exactly-zero term (a control variate).
    Propagation of chaos says this covariance is :math:`O(1/n)` (Sirignano and Spiliopoulos,
    arXiv 1805.01053).

    Examples
    --------
    >>> h = torch.tensor([[1.0, -1.0], [2.0, 0.0]])
    >>> pair_covariance(h)  # mean of the products over pairs, -1/2, minus the squared mean, 1/4
    tensor(-0.7500)
    >>> pair_covariance(h, control=h)  # h is a function of the start: no interaction at all
    tensor(0.)
    """
    h = _checks.floating_tensor(h, "h")
    if h.ndim != 2 or h.shape[1] < 2:
        raise ValueError(f"h must have shape (S, n) with n >= 2 neurons per network, got {tuple(h.shape)}")
    g = torch.zeros_like(h) if control is None else _checks.floating_tensor(control, "control")
    if g.shape != h.shape:
        raise ValueError(f"control must have the shape of h {tuple(h.shape)}, got {tuple(g.shape)}")
    n = h.shape[1]
    delta = h - g

    def cross(a, b):  # E[a_1 b_2] - E[a] E[b], over ordered pairs of distinct neurons
        pairs = (a.sum(1) * b.sum(1) - (a * b).sum(1)) / (n * (n - 1))
        return pairs.mean() - a.mean() * b.mean()

    return cross(g, delta) + cross(delta, g) + cross(delta, delta)
