r"""Neuron birth-death: resampling the particles of a network by their local potential.

Gradient descent moves the particles :math:`\theta_i = (c_i, y_i)` with the velocity
:math:`-\nabla_\theta U(\theta_i,[\mu^n])`, where
:math:`U(\theta,[\mu]) = -F(\theta) + \int K(\theta,\theta')\,\mu(d\theta') = \delta\mathcal L/\delta\mu`
is the first variation of the loss. Rotskoff, Jelassi, Bruna and Vanden-Eijnden (arXiv 1902.01843)
add a birth-death process: a particle whose potential is above the mean,
:math:`\bar U_i = U(\theta_i) - \frac1n\sum_jU(\theta_j) > 0`, is killed at rate
:math:`\alpha\bar U_i` and replaced by a copy of a particle drawn uniformly; one below the mean is
duplicated at rate :math:`\alpha|\bar U_i|`, the copy replacing a particle drawn uniformly. The
number of neurons stays :math:`n`, and in the mean-field limit the transport equation gains a
reaction term with the same minimiser,

.. math::
    \partial_t\mu = \nabla\cdot\big(\mu\nabla U(\cdot,[\mu])\big)
    - \alpha\Big(U(\cdot,[\mu]) - \int U(\cdot,[\mu])\,d\mu\Big)\mu ,

the mass-conserving Wasserstein-Fisher-Rao gradient flow of the loss (:mod:`nnips.unbalanced`).
The rule above is our reading of the paper's scheme; only the abstract and introduction could be
read when this module was written. Book: Chapter 8, "Birth-death for neurons".
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .. import _checks
from ..sphere import generator
from ._particles import _check_dt, _data, _loss, _particles, _test_particles, _velocity, gd_step
from ._units import _check_unit

__all__ = ["potential", "BirthDeath", "WeightedRun", "train_weighted"]


def _potential(c, y, unit, data, at=None):
    phi = unit(data.x, y)
    residual = ((phi @ c[..., None])[..., 0] / c.shape[-1] - data.f) / data.f.shape[-1]
    if at is not None:
        c, y = at
        phi = unit(data.x, y)
    return c * (residual[..., None, :] @ phi)[..., 0, :]


def potential(c, y, unit, data, at=None):
    r"""The local potential :math:`U(\theta,[\mu^n]) = c\,\mathbb E[(f_n(x) - f(x))\varphi(x, y)]` of every particle.

    .. math::
        U(\theta_i,[\mu^n]) = -F(\theta_i) + \frac1n\sum_{j=1}^nK(\theta_i,\theta_j)
        = n\,c_i\,\frac{\partial\mathcal L}{\partial c_i},

    the first variation of the loss at the particle, whose gradient is minus the mean-field velocity
    (:func:`nnips.meanfield.velocity`) and whose deviation from the mean drives birth and death.

    Parameters
    ----------
    c, y : (..., n), (..., n, p) tensors
    unit : Ridge or RBF
    data : Data
    at : pair ``(c', y')`` of shapes ``(..., m)``, ``(..., m, p)``, optional
        Evaluate the potential of the network at other particles.

    Returns
    -------
    (..., n) tensor (or (..., m))

    Examples
    --------
    >>> from nnips.meanfield import Data, Ridge
    >>> data = Data(torch.tensor([[1.0]]), torch.tensor([1.0]))
    >>> potential(torch.tensor([2.0, 4.0]), torch.tensor([[1.0], [1.0]]), Ridge("relu"), data)  # f_n = 3, residual 2
    tensor([4., 8.])
    """
    unit = _check_unit(unit)
    c, y = _particles(c, y)
    data = _data(data, unit, y)
    if at is not None:
        at = _test_particles(at, y)
    return _potential(c, y, unit, data, at)


class BirthDeath:
    r"""A gradient-descent step followed by birth and death of neurons: a ``step`` for :func:`nnips.meanfield.train`.

    After :func:`~nnips.meanfield.gd_step`, with :math:`\bar U_i = U_i - \frac1n\sum_jU_j` computed once,
    each particle has an event with probability :math:`1 - e^{-\alpha\Delta t|\bar U_i|}`:

    - if :math:`\bar U_i > 0` it dies, and its slot takes a copy of a particle :math:`j` drawn uniformly;
    - if :math:`\bar U_i < 0` it is duplicated, the copy replacing a particle :math:`k` drawn uniformly.

    All events of a step read the particles at the start of the step (a synchronous update; a slot
    that several copies target takes the one of the highest index), which differs from applying them
    one after the other only at order :math:`(\alpha\Delta t)^2`. In expectation the mass at
    :math:`\theta_i` changes at the rate :math:`-\alpha\bar U_i`: the reaction term of the
    mean-field equation (Rotskoff, Jelassi, Bruna, Vanden-Eijnden, arXiv 1902.01843).

    Parameters
    ----------
    alpha : float > 0
        The birth-death rate :math:`\alpha` (per unit of mean-field time and of potential).
    seed : int or torch.Generator
        Randomness of the events (drawn on the CPU, then moved to the particles' device).

    Attributes
    ----------
    deaths, births : int
        Numbers of events so far.

    Examples
    --------
    >>> from nnips import meanfield
    >>> target = meanfield.ThreeSpin(4, seed=0)
    >>> data = target.sample(100, seed=1)
    >>> unit = meanfield.Ridge("relu", bias=True)
    >>> c, y = meanfield.initial(32, unit.dim(4), seed=2)
    >>> step = BirthDeath(alpha=1.0, seed=3)
    >>> run = meanfield.train(c, y, unit, data, dt=0.1, steps=20, step=step)
    >>> run.c.shape, step.deaths + step.births > 0
    (torch.Size([2, 32]), True)
    """

    def __init__(self, alpha=1.0, seed=0):
        self.alpha = _checks.real(alpha, "alpha", 0.0, strict=True)
        self.generator = generator(seed)
        self.deaths = 0
        self.births = 0

    def __repr__(self):
        return f"BirthDeath(alpha={self.alpha})"

    def __call__(self, c, y, unit, data, dt, learn_c=True):
        """One step, with the signature of :func:`~nnips.meanfield.gd_step` (no input checks: ``train`` checks once)."""
        c, y = gd_step(c, y, unit, data, dt, learn_c)
        return self._resample(c, y, unit, data, dt)

    def resample(self, c, y, unit, data, dt):
        """The birth-death part of the step alone, for a time ``dt`` (a float or a tensor of the batch shape)."""
        unit = _check_unit(unit)
        c, y = _particles(c, y)
        return self._resample(c, y, unit, _data(data, unit, y), _check_dt(dt))

    def _resample(self, c, y, unit, data, dt):
        U = _potential(c, y, unit, data)
        centred = U - U.mean(-1, keepdim=True)
        dt = dt[..., None] if isinstance(dt, torch.Tensor) else dt
        probability = (1 - torch.exp(-self.alpha * dt * centred.abs())).cpu()
        shape, n = c.shape, c.shape[-1]
        event = torch.rand(shape, generator=self.generator, dtype=probability.dtype) < probability
        death = event & (centred.cpu() > 0)
        birth = event & (centred.cpu() < 0)
        partner = torch.randint(n, shape, generator=self.generator)
        index = torch.arange(n).expand(shape)
        source = torch.where(death, partner, index)
        # a birth at i writes a copy of i into slot partner[i]; the highest such i wins a slot
        winner = torch.full(shape, -1, dtype=torch.long).scatter_reduce(
            -1, torch.where(birth, partner, 0), torch.where(birth, index, -1), reduce="amax")
        source = torch.where(winner >= 0, winner, source).to(c.device)
        self.deaths += int(death.sum())
        self.births += int(birth.sum())
        return c.gather(-1, source), y.gather(-2, source[..., None].expand(y.shape))


class WeightedRun(NamedTuple):
    """What :func:`train_weighted` recorded: particles, weights (mean one) and losses, ``len(step)`` first."""

    step: torch.Tensor
    t: torch.Tensor
    c: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor
    loss: torch.Tensor


def train_weighted(c, y, unit, data, dt, steps, alpha, learn_c=True, record=None) -> WeightedRun:
    r"""The mean-field equation with the birth-death reaction term, discretised on weighted particles.

    The measure :math:`\mu = \frac1n\sum_iw_i\delta_{\theta_i}` (weights of mean one) solves the
    equation of :class:`BirthDeath` exactly when the particles follow the gradient field and the
    weights the reaction, :math:`\dot\theta_i = -\nabla_\theta U(\theta_i,[\mu])`,
    :math:`\dot w_i = -\alpha\big(U(\theta_i,[\mu]) - \frac1n\sum_jw_jU(\theta_j,[\mu])\big)w_i`
    (the particle form of :mod:`nnips.unbalanced`). Each step is an explicit Euler step for the
    particles and the exact exponential for the weights, renormalised to mean one. No randomness:
    with the same start it is the deterministic counterpart of :class:`BirthDeath`, to which the
    birth-death network is compared.

    Parameters
    ----------
    c, y : (..., n), (..., n, p) tensors; unit : Ridge or RBF; data : Data
    dt : float > 0; steps : int >= 0; alpha : float >= 0
    learn_c : bool
    record : increasing step counts in ``[0, steps]`` (default ``[0, steps]``)

    Returns
    -------
    WeightedRun
        The network of weighted particles has output :math:`\frac1n\sum_iw_ic_i\varphi(x,y_i)`, its
        loss is ``meanfield.loss(w * c, y, unit, data)``.
    """
    unit = _check_unit(unit)
    c, y = _particles(c, y)
    data = _data(data, unit, y)
    dt = _checks.real(dt, "dt", 0.0, strict=True)
    steps = _checks.integer(steps, "steps", 0)
    alpha = _checks.real(alpha, "alpha", 0.0)
    record = [0, steps] if record is None else [_checks.integer(k, "record entries", 0) for k in record]
    if not record or any(b <= a for a, b in zip(record, record[1:])) or record[-1] > steps:
        raise ValueError(f"record must be strictly increasing step counts in [0, {steps}], got {record}")
    w = torch.ones_like(c)
    wanted, out = set(record), {"c": [], "y": [], "w": [], "loss": []}
    for k in range(steps + 1):
        if k in wanted:
            for key, value in (("c", c), ("y", y), ("w", w), ("loss", _loss(w * c, y, unit, data))):
                out[key].append(value)
        if k == steps:
            break
        vc, vy = _velocity(w * c, y, unit, data, learn_c, (c, y))
        U = _potential(w * c, y, unit, data, (c, y))
        w = w * torch.exp(-alpha * dt * (U - (w * U).mean(-1, keepdim=True)))
        w = w / w.mean(-1, keepdim=True)
        c, y = c + dt * vc, y + dt * vy
        if not bool(torch.isfinite(c).all() and torch.isfinite(y).all() and torch.isfinite(w).all()):
            raise FloatingPointError(f"training diverged at step {k + 1}: reduce dt")
    steps_t = torch.tensor(record)
    return WeightedRun(steps_t, steps_t.double() * dt, *(torch.stack(out[key]) for key in ("c", "y", "w", "loss")))
