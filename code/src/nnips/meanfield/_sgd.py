r"""Stochastic gradient descent on a two-layer network as a noisy interacting particle system.

Mini-batches drawn from a data law, the covariance of the mini-batch velocity (the noise that SGD
adds to gradient descent), the diffusion approximation of SGD with temperature
:math:`\tau = \Delta t/P`, and dropout as a particle system with independent Bernoulli clocks.
Every step here has the signature of :func:`~nnips.meanfield.gd_step`, so that
:func:`~nnips.meanfield.train` runs it. Book: Chapter 7, "SGD as a noisy particle system".

Only the abstracts of Rotskoff and Vanden-Eijnden (arXiv 1805.00915), Gess, Kassing and Konarovskyi
(arXiv 2302.07125) and Chizat, Marion and Yesbay (arXiv 2510.07554) could be read when this module
was written: the formulas below are derived in the book's pages and tested in
``tests/unit/test_sgd.py``; the docstrings name the paper and the object, not an equation number.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from .. import _checks
from ..sphere import generator
from ._particles import Data, _data, _particles, train
from ._units import _check_unit

__all__ = ["per_sample_velocity", "noise_covariance", "flatten", "step_seed", "MiniBatches", "DiffusionStep",
           "DropoutStep", "PenaltyStep", "dropout_loss", "dropout_penalty", "Excess", "excess_loss"]


def step_seed(seed: int, k: int) -> int:
    """A seed for step ``k`` of a stream seeded by ``seed``: well mixed, and the same on every run."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _batch(batch):
    batch = (batch,) if isinstance(batch, int) else tuple(batch)
    for b in batch:
        _checks.integer(b, "batch entries", 1)
    return batch


def per_sample_velocity(c, y, unit, data, learn_c=True):
    r"""The velocity that each data point alone gives each particle: :math:`g_m(\theta_i)`.

    .. math::
        g_m(\theta_i) = -\big(f_n(x_m) - f(x_m)\big)\,\nabla_\theta\big(c\,\varphi(x_m, y)\big)\big|_{\theta_i},
        \qquad \frac1M\sum_{m=1}^M g_m(\theta_i) = \dot\theta_i,

    the velocity :func:`~nnips.meanfield.velocity` of the loss of the single point :math:`x_m`
    (learning rate times ``n``, as in Rotskoff and Vanden-Eijnden, arXiv 1805.00915). A mini-batch
    velocity is the mean of :math:`g_m` over the points of the batch.

    Parameters
    ----------
    c, y : (..., n), (..., n, p) tensors
    unit : Ridge or RBF
    data : Data
        ``M`` points ``x`` of shape ``(..., M, d)``.
    learn_c : bool
        With ``False`` the output weights get velocity 0.

    Returns
    -------
    vc : (..., M, n) tensor
    vy : (..., M, n, p) tensor

    Examples
    --------
    >>> from nnips.meanfield import Ridge, Data, velocity
    >>> x = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    >>> c, y = torch.tensor([1.0], dtype=torch.float64), torch.tensor([[1.0]], dtype=torch.float64)
    >>> vc, vy = per_sample_velocity(c, y, Ridge("relu"), Data(x, torch.zeros(2, dtype=torch.float64)))
    >>> vc[:, 0].tolist(), bool(torch.allclose(vc.mean(-2), velocity(c, y, Ridge("relu"), Data(x, torch.zeros(2, dtype=torch.float64)))[0]))
    ([-1.0, -4.0], True)
    """
    unit = _check_unit(unit)
    c, y = _particles(c, y)
    data = _data(data, unit, y)
    phi = unit(data.x, y)                                             # (..., M, n)
    residual = (phi @ c[..., None])[..., 0] / c.shape[-1] - data.f    # (..., M)
    vc = -residual[..., None] * phi if learn_c else torch.zeros_like(phi)
    vy = -(c[..., None, :, None] * residual[..., :, None, None]) * unit.jacobian(data.x, y)
    return vc, vy


def noise_covariance(c, y, unit, data, P=1, learn_c=True):
    r"""Covariance of the mini-batch velocity of all particles: :math:`\frac1P\,\Sigma(\theta)`.

    A mini-batch of ``P`` points drawn uniformly with replacement from the ``M`` points of ``data``
    gives the velocity :math:`\hat v_i = \frac1P\sum_{j=1}^P g_{m_j}(\theta_i)`. Its mean is the
    velocity :math:`\dot\theta_i` of gradient descent and its covariance, over all particles, is

    .. math::
        \operatorname{Cov}(\hat v) = \frac1P\,\Sigma,\qquad
        \Sigma_{(i,a),(j,b)} = \frac1M\sum_{m=1}^M \big(g_m(\theta_i) - \dot\theta_i\big)_a
        \big(g_m(\theta_j) - \dot\theta_j\big)_b,

    with :math:`g_m` of :func:`per_sample_velocity`. One step :math:`\theta\leftarrow\theta+\Delta t\,\hat v`
    is therefore a gradient step plus a noise of covariance :math:`\Delta t^2\Sigma/P = \tau\,\Delta t\,\Sigma`,
    the Euler-Maruyama step of an SDE at temperature :math:`\tau=\Delta t/P` (the scale of the SGD
    noise that Rotskoff and Vanden-Eijnden, arXiv 1805.00915, quantify; the formula is derived in
    the book, Chapter 7, "SGD is GD plus noise").

    Parameters
    ----------
    c, y : (..., n), (..., n, p) tensors
    unit : Ridge or RBF
    data : Data
    P : int
        Mini-batch size.
    learn_c : bool

    Returns
    -------
    (..., D, D) tensor, ``D = n (1 + p)``, the coordinates ordered as ``(c_1..c_n, y_1..y_n)``
    (each ``y_i`` contributing its ``p`` coordinates in turn), as in :func:`flatten`.

    Examples
    --------
    >>> from nnips.meanfield import Ridge, Data
    >>> x = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
    >>> c, y = torch.tensor([0.0], dtype=torch.float64), torch.tensor([[1.0]], dtype=torch.float64)
    >>> noise_covariance(c, y, Ridge("relu"), Data(x, torch.ones(2, dtype=torch.float64)))[0, 0]  # g_m = x_m: variance 1
    tensor(1., dtype=torch.float64)
    """
    P = _checks.integer(P, "P", 1)
    vc, vy = per_sample_velocity(c, y, unit, data, learn_c)
    g = torch.cat([vc, vy.flatten(-2)], dim=-1)          # (..., M, D)
    g = g - g.mean(-2, keepdim=True)
    return g.transpose(-1, -2) @ g / (g.shape[-2] * P)


def flatten(c, y):
    """Concatenate ``c (..., n)`` and ``y (..., n, p)`` into ``(..., n (1 + p))``, the order of :func:`noise_covariance`."""
    c, y = _particles(c, y)
    return torch.cat([c, y.flatten(-2)], dim=-1)


class MiniBatches:
    r"""Mini-batches of ``P`` points for step ``k``: ``batches(k) -> Data``, the same on every run.

    ``source`` is either a :class:`~nnips.meanfield.Data` of ``M`` points without batch dimensions
    (the data law is their empirical measure, and a mini-batch is ``P`` of them drawn uniformly *with
    replacement*), or a target with a ``sample(M, batch, seed)`` method such as
    :class:`~nnips.meanfield.ThreeSpin` (fresh points from the population at every step: online
    SGD). Each of the ``batch`` networks gets its own mini-batch; pass the result as the ``data`` of
    :func:`~nnips.meanfield.train`.

    Parameters
    ----------
    source : Data or target
    P : int
        Mini-batch size.
    batch : int or tuple of int
        Batch shape of the networks (independent mini-batches for each).
    seed : int

    Examples
    --------
    >>> from nnips.meanfield import Data
    >>> data = Data(torch.arange(5.0)[:, None], torch.arange(5.0))
    >>> batches = MiniBatches(data, 3, batch=2, seed=0)
    >>> batches(7).x.shape, bool((batches(7).x == batches(7).x).all())
    (torch.Size([2, 3, 1]), True)
    """

    def __init__(self, source, P, batch=(), seed=0):
        self.P = _checks.integer(P, "P", 1)
        self.batch = _batch(batch)
        self.seed = _checks.integer(seed, "seed", 0)
        if isinstance(source, Data):
            x = _checks.floating_tensor(source.x, "source.x")
            f = _checks.floating_tensor(source.f, "source.f")
            if x.ndim != 2 or f.shape != x.shape[:1]:
                raise ValueError(f"source must be Data with x of shape (M, d) and f of shape (M,), got "
                                 f"{tuple(x.shape)} and {tuple(f.shape)}")
            self.source = Data(x, f)
        elif callable(getattr(source, "sample", None)):
            self.source = source
        else:
            raise TypeError(f"source must be a meanfield.Data or a target with a sample method, "
                            f"got {type(source).__name__}")

    def __repr__(self):
        return f"MiniBatches(P={self.P}, batch={self.batch}, seed={self.seed})"

    def __call__(self, k) -> Data:
        seed = step_seed(self.seed, _checks.integer(k, "k", 0))
        if isinstance(self.source, Data):
            index = torch.randint(self.source.x.shape[0], (*self.batch, self.P), generator=generator(seed))
            index = index.to(self.source.x.device)
            return Data(self.source.x[index], self.source.f[index])
        return self.source.sample(self.P, batch=self.batch, seed=seed)


def _step(c, y, dt, vc, vy):
    if isinstance(dt, torch.Tensor):  # one step per network
        return c + dt[..., None] * vc, y + dt[..., None, None] * vy
    return c + dt * vc, y + dt * vy


def _weighted_velocity(c, y, unit, data, weights, learn_c):
    """Velocity of the loss sum_m w_m (f_n(x_m) - f(x_m))^2 / 2 (times n): weights 1/M give gd's."""
    phi, aux = unit._forward(data.x, y)
    residual = ((phi @ c[..., None])[..., 0] / c.shape[-1] - data.f) * weights
    vc = -(residual[..., None, :] @ phi)[..., 0, :] if learn_c else torch.zeros_like(c)
    vy = -c[..., None] * unit._pullback(data.x, y, residual[..., :, None], aux)
    return vc, vy


class DiffusionStep:
    r"""The diffusion approximation of SGD: one Euler-Maruyama step of the SDE at temperature :math:`\tau=\Delta t/P`.

    .. math::
        d\theta_t = \dot\theta(\theta_t)\,dt + \sqrt{\tau}\,\Sigma(\theta_t)^{1/2}\,dW_t,\qquad
        \theta\leftarrow\theta + \Delta t\,\dot\theta + \frac{\Delta t}{\sqrt P}\,\xi,\quad
        \xi\sim\mathcal N\big(0, \Sigma(\theta)\big),

    with :math:`\Sigma` the per-sample covariance of :func:`noise_covariance` over the ``M`` points
    of ``data``. The Gaussian :math:`\xi` is drawn without forming :math:`\Sigma^{1/2}`: with
    :math:`z_m` i.i.d. standard normal, :math:`\frac{1}{\sqrt M}\sum_m z_m\big(g_m - \bar g\big)` has
    covariance :math:`\Sigma` exactly, so the step is gradient descent with random weights
    :math:`w_m = \frac1M + \frac{z_m - \bar z}{\sqrt{MP}}` on the data points, where SGD has
    multinomial weights with the same mean and covariance. This is a noise driven by one Brownian
    motion per data point, the finite-data form of the cylindrical noise of the stochastic modified
    flows of Gess, Kassing and Konarovskyi (arXiv 2302.07125).

    Call it like :func:`~nnips.meanfield.gd_step`; it draws its noise from its own generator.

    Parameters
    ----------
    P : int or float
        Mini-batch size of the SGD it imitates (any value > 0).
    seed : int

    Examples
    --------
    >>> from nnips.meanfield import Ridge, Data, gd_step
    >>> x = torch.linspace(-1, 1, 5, dtype=torch.float64)[:, None]
    >>> data, c, y = Data(x, x[:, 0] ** 2), torch.ones(3, dtype=torch.float64), torch.ones(3, 1, dtype=torch.float64)
    >>> c1, y1 = DiffusionStep(P=1e12, seed=0)(c, y, Ridge("tanh"), data, 0.1)  # P -> infinity: gradient descent
    >>> bool(torch.allclose(c1, gd_step(c, y, Ridge("tanh"), data, 0.1)[0], atol=1e-6))
    True
    """

    def __init__(self, P, seed=0):
        self.P = _checks.real(P, "P", minimum=0.0, strict=True)
        self.seed = _checks.integer(seed, "seed", 0)
        self._generator = generator(self.seed)

    def __repr__(self):
        return f"DiffusionStep(P={self.P}, seed={self.seed})"

    def __call__(self, c, y, unit, data, dt, learn_c=True):
        M = data.f.shape[-1]
        shape = torch.broadcast_shapes(c.shape[:-1], data.f.shape[:-1]) + (M,)
        z = torch.randn(shape, generator=self._generator, dtype=torch.float64).to(dtype=c.dtype, device=c.device)
        weights = 1 / M + (z - z.mean(-1, keepdim=True)) / math.sqrt(M * self.P)
        vc, vy = _weighted_velocity(c, y, unit, data, weights, learn_c)
        return _step(c, y, dt, vc, vy)


class DropoutStep:
    r"""One gradient step with dropout: each unit is kept with probability :math:`q = 1-p` and rescaled by :math:`1/q`.

    With independent masks :math:`m_i\sim\mathrm{Bernoulli}(q)`, drawn afresh at every step for every
    unit of every network, the step trains the masked network
    :math:`\tilde f(x) = \frac1n\sum_i\frac{m_i}{q}\,c_i\,\varphi(x,y_i)` ("inverted" dropout,
    Srivastava et al., JMLR 2014, with the rescaling moved from test to training time):

    .. math::
        \theta_i\leftarrow\theta_i - \Delta t\,n\,\nabla_{\theta_i}\tilde{\mathcal L},\qquad
        \tilde{\mathcal L} = \tfrac12\,\mathbb E_x\big(\tilde f(x) - f(x)\big)^2 .

    A dropped unit does not move (its gradient vanishes): each particle moves at the ticks of its
    own Bernoulli clock, the "random geometry" picture of Chizat, Marion and Yesbay
    (arXiv 2510.07554, abstract). The learning rate is :math:`\Delta t/n`, as in
    :func:`~nnips.meanfield.gd_step`.

    Parameters
    ----------
    rate : float
        Dropout rate :math:`p\in[0, 1)`; ``rate = 0`` is gradient descent.
    seed : int

    Examples
    --------
    >>> from nnips.meanfield import Ridge, Data, gd_step
    >>> x = torch.linspace(-1, 1, 5, dtype=torch.float64)[:, None]
    >>> data, c, y = Data(x, x[:, 0] ** 2), torch.ones(3, dtype=torch.float64), torch.ones(3, 1, dtype=torch.float64)
    >>> bool(torch.equal(DropoutStep(0.0)(c, y, Ridge("tanh"), data, 0.1)[1], gd_step(c, y, Ridge("tanh"), data, 0.1)[1]))
    True
    """

    def __init__(self, rate, seed=0):
        self.rate = _rate(rate)
        self.seed = _checks.integer(seed, "seed", 0)
        self._generator = generator(self.seed)

    def __repr__(self):
        return f"DropoutStep(rate={self.rate}, seed={self.seed})"

    def __call__(self, c, y, unit, data, dt, learn_c=True):
        keep = torch.rand(c.shape, generator=self._generator, dtype=torch.float64) < 1 - self.rate
        return self._masked(c, y, unit, data, dt, learn_c, keep.to(dtype=c.dtype, device=c.device))

    def with_mask(self, c, y, unit, data, dt, keep, learn_c=True):
        r"""The dropout step with a given mask instead of a random one.

        Parameters
        ----------
        c, y : (..., n), (..., n, p) tensors
        unit : Ridge or RBF
        data : Data
        dt : float
        keep : tensor of 0 and 1 broadcasting with ``c``
            1 for the kept units; a leading dimension of masks gives one step per mask.
        learn_c : bool

        Returns
        -------
        (c, y) after the step, with the broadcast batch shape.
        """
        unit = _check_unit(unit)
        c, y = _particles(c, y)
        data = _data(data, unit, y)
        keep = _checks.floating_tensor(keep, "keep").to(dtype=c.dtype, device=c.device)
        if not bool(((keep == 0) | (keep == 1)).all()):
            raise ValueError("keep must hold only 0 and 1")
        return self._masked(c, y, unit, data, dt, learn_c, keep)

    def _masked(self, c, y, unit, data, dt, learn_c, keep):
        q = 1 - self.rate
        scale = keep / q
        phi, aux = unit._forward(data.x, y)
        c_eff = c * scale
        residual = ((phi @ c_eff[..., None])[..., 0] / c.shape[-1] - data.f) / data.f.shape[-1]
        vc = -(residual[..., None, :] @ phi)[..., 0, :] * scale if learn_c else torch.zeros_like(c)
        vy = -c_eff[..., None] * unit._pullback(data.x, y, residual[..., :, None], aux)
        return _step(c, y, dt, vc, vy)


class PenaltyStep:
    r"""The mean of the dropout step over the masks: a gradient step on :math:`\mathcal L + R_p`.

    Because the masks do not depend on the parameters,
    :math:`\mathbb E_m\nabla\tilde{\mathcal L} = \nabla\,\mathbb E_m\tilde{\mathcal L} = \nabla(\mathcal L + R_p)`
    with :math:`R_p` of :func:`dropout_penalty`, so averaging :class:`DropoutStep` over its masks gives
    the deterministic step

    .. math::
        c_i \leftarrow c_i + \Delta t\Big(\dot c_i - \frac{p}{(1-p)n}\,c_i\,\mathbb E_x\varphi(x,y_i)^2\Big),\qquad
        y_i \leftarrow y_i + \Delta t\Big(\dot y_i - \frac{p}{(1-p)n}\,c_i^2\,\mathbb E_x\big[\varphi(x,y_i)\nabla_y\varphi(x,y_i)\big]\Big),

    gradient descent plus the "penalty" effect of dropout, of size :math:`O(1/n)` in the mean-field
    scaling (a direct computation; Chizat, Marion and Yesbay, arXiv 2510.07554, abstract: the
    penalty effect persists in the large-width limit only for learning rates of order ``1/width``).

    Parameters
    ----------
    rate : float
        Dropout rate :math:`p\in[0, 1)`.
    """

    def __init__(self, rate):
        self.rate = _rate(rate)

    def __repr__(self):
        return f"PenaltyStep(rate={self.rate})"

    def __call__(self, c, y, unit, data, dt, learn_c=True):
        phi, aux = unit._forward(data.x, y)
        M, n = data.f.shape[-1], c.shape[-1]
        residual = ((phi @ c[..., None])[..., 0] / n - data.f) / M
        weight = self.rate / (1 - self.rate) / n
        vc = -(residual[..., None, :] @ phi)[..., 0, :] - weight * c * (phi ** 2).mean(-2) if learn_c \
            else torch.zeros_like(c)
        vy = -c[..., None] * unit._pullback(data.x, y, residual[..., :, None], aux) \
            - weight * (c ** 2)[..., None] * unit._pullback(data.x, y, phi / M, aux)
        return _step(c, y, dt, vc, vy)


def _rate(rate):
    rate = _checks.real(rate, "rate", minimum=0.0)
    if rate >= 1:
        raise ValueError(f"rate must lie in [0, 1), got {rate}")
    return rate


def dropout_loss(c, y, unit, data, mask, rate):
    r"""Loss of the network with the units of ``mask`` kept: :math:`\tfrac12\mathbb E_x(\tilde f - f)^2`.

    :math:`\tilde f(x) = \frac1n\sum_i \frac{m_i}{1-p}\,c_i\,\varphi(x, y_i)` with ``mask`` the
    :math:`m_i\in\{0, 1\}` (shape broadcasting with ``c``) and ``rate`` :math:`p`.

    Examples
    --------
    >>> from nnips.meanfield import Ridge, Data
    >>> data = Data(torch.tensor([[1.0]]), torch.tensor([0.0]))
    >>> dropout_loss(torch.tensor([1.0, 1.0]), torch.tensor([[1.0], [1.0]]), Ridge("relu"), data,
    ...              torch.tensor([1.0, 0.0]), 0.5)  # f~ = (2 * 1 + 0) / 2 = 1
    tensor(0.5000)
    """
    unit = _check_unit(unit)
    c, y = _particles(c, y)
    data = _data(data, unit, y)
    mask = _checks.floating_tensor(mask, "mask")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask must hold only 0 and 1")
    c_eff = c * mask.to(c) / (1 - _rate(rate))
    f = (unit(data.x, y) @ c_eff[..., None])[..., 0] / c.shape[-1]
    return 0.5 * ((f - data.f) ** 2).mean(-1)


def dropout_penalty(c, y, unit, data, rate):
    r"""The penalty that dropout adds to the loss on average over the masks.

    .. math::
        \mathbb E_m\tilde{\mathcal L} = \mathcal L + R_p,\qquad
        R_p = \frac{p}{1-p}\,\frac{1}{2n^2}\sum_{i=1}^n c_i^2\,\mathbb E_x\,\varphi(x, y_i)^2,

    since :math:`\mathbb E_m\tilde f = f_n` and :math:`\operatorname{Var}_m\tilde f(x) =
    \frac{p}{1-p}\frac1{n^2}\sum_i c_i^2\varphi(x,y_i)^2` (independent masks,
    :math:`\operatorname{Var}(m_i/q) = p/q`). The mean dropout step is the gradient step on
    :math:`\mathcal L + R_p`; in the mean-field scaling :math:`R_p = O(1/n)`. Derived in the book,
    Chapter 7, "Dropout"; the classical computation for linear models is in Srivastava et al.
    (JMLR 2014).

    Returns
    -------
    tensor of the batch shape

    Examples
    --------
    >>> from nnips.meanfield import Ridge, Data
    >>> data = Data(torch.tensor([[1.0]]), torch.tensor([0.0]))
    >>> dropout_penalty(torch.tensor([1.0, 1.0]), torch.tensor([[1.0], [1.0]]), Ridge("relu"), data, 0.5)
    tensor(0.2500)
    """
    unit = _check_unit(unit)
    c, y = _particles(c, y)
    data = _data(data, unit, y)
    p = _rate(rate)
    second = (unit(data.x, y) ** 2).mean(-2)       # (..., n): E_x phi(x, y_i)^2
    n = c.shape[-1]
    return p / (1 - p) * (c ** 2 * second).sum(-1) / (2 * n ** 2)


class Excess(NamedTuple):
    """What :func:`excess_loss` measured: the window's steps, the losses, and the excess with its standard error."""

    step: torch.Tensor
    gd: torch.Tensor
    noisy: torch.Tensor
    excess: float
    stderr: float


def excess_loss(c, y, unit, data, dt, steps, seeds, P=None, step=None, window=0.25, points=6, seed=0,
                learn_c=True) -> Excess:
    r"""How much noise raises the loss: noisy runs against gradient descent from the same particles.

    From one network ``(c, y)``, runs gradient descent and ``seeds`` noisy copies (mini-batch SGD
    with batches of ``P`` points of ``data`` drawn with replacement, or full-batch training with a
    noisy ``step`` such as :class:`DropoutStep` or :class:`DiffusionStep`), records the loss on
    ``data`` at ``points`` steps of the last fraction ``window`` of the run, and returns

    .. math::
        \Delta\mathcal L = \overline{\mathcal L_{\rm noisy}} - \overline{\mathcal L_{\rm GD}},

    the averages taken over the window and over the seeds, with the standard error over seeds. The
    excess isolates the effect of the noise: both runs share the start and the data law.

    Parameters
    ----------
    c, y : (n,), (n, p) tensors
        One network.
    unit : Ridge or RBF
    data : Data
        The data law (``M`` points, no batch dimensions).
    dt : float
    steps : int
    seeds : int
        Number of noisy runs.
    P : int, optional
        Mini-batch size of SGD. Give either ``P`` or ``step``.
    step : callable, optional
        A full-batch noisy step with the signature of :func:`~nnips.meanfield.gd_step`.
    window : float
        Fraction of the run, at its end, over which losses are averaged.
    points : int
        Number of recorded steps in the window.
    seed : int
        Seed of the mini-batches (ignored with ``step``, which has its own).
    learn_c : bool

    Returns
    -------
    Excess
    """
    unit = _check_unit(unit)
    c, y = _particles(c, y)
    if c.ndim != 1:
        raise ValueError(f"excess_loss starts from one network: c must have shape (n,), got {tuple(c.shape)}")
    data = _data(data, unit, y)
    steps = _checks.integer(steps, "steps", 1)
    seeds = _checks.integer(seeds, "seeds", 2)
    window = _checks.real(window, "window", minimum=0.0, strict=True)
    points = _checks.integer(points, "points", 1)
    if window > 1:
        raise ValueError(f"window must lie in (0, 1], got {window}")
    if (P is None) == (step is None):
        raise ValueError("give exactly one of P (mini-batch SGD) and step (a noisy full-batch step)")
    first = steps - int(window * steps)
    record = sorted({round(first + (steps - first) * j / max(points - 1, 1)) for j in range(points)})
    gd = train(c, y, unit, data, dt, steps, record=record, learn_c=learn_c).loss
    cs, ys = c.expand(seeds, *c.shape).clone(), y.expand(seeds, *y.shape).clone()
    if P is not None:
        run = train(cs, ys, unit, MiniBatches(data, P, batch=seeds, seed=seed), dt, steps, record=record,
                    test=data, learn_c=learn_c)
        noisy = run.test
    else:
        noisy = train(cs, ys, unit, data, dt, steps, record=record, learn_c=learn_c, step=step).loss
    per_seed = noisy.mean(0) - gd.mean()
    return Excess(torch.tensor(record), gd, noisy, float(per_seed.mean()),
                  float(per_seed.std() / math.sqrt(seeds)))
