r"""Targets and data laws: the spherical 3-spin function, teacher networks, Gaussian classes.

Each target has ``sample(M, batch=(), seed=0)`` returning :class:`~nnips.meanfield.Data` drawn from
its input law. Book: Chapter 6.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import scipy.special
import scipy.stats
import torch

from .. import _checks
from ..sphere import generator, uniform
from ._particles import Data, _inputs, _output, _particles
from ._units import PiecewiseLinear, _check_unit

__all__ = ["ThreeSpin", "Teacher", "GaussianClasses", "RadialRun"]


def _batch(batch):
    batch = (batch,) if isinstance(batch, int) else tuple(batch)
    for b in batch:
        _checks.integer(b, "batch entries", 1)
    return batch


def _pairings(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for k, other in enumerate(rest):
        for tail in _pairings(rest[:k] + rest[k + 1:]):
            yield [(first, other)] + tail


def _pairing_contractions():
    """einsum strings ``a_{i1 i2 i3} a_{i4 i5 i6}`` contracted along each of the 15 pairings."""
    specs = []
    for pairing in _pairings(list(range(6))):
        letters = [""] * 6
        for (k, l), letter in zip(pairing, "pqr"):
            letters[k] = letters[l] = letter
        specs.append(f"{''.join(letters[:3])},{''.join(letters[3:])}->")
    return specs


class ThreeSpin:
    r"""The energy of the spherical 3-spin model, a hard target on the sphere of radius :math:`\sqrt d`.

    .. math::
        f(x) = \frac1d\sum_{p,q,r=1}^d a_{pqr}\,x_px_qx_r,\qquad a_{pqr}\overset{\text{iid}}{\sim}\mathcal N(0,1),
        \qquad x\in\S^{d-1}(\sqrt d),

    with one fixed realisation of the coefficients (drawn from ``seed``) and inputs uniform on the
    sphere. Rotskoff and Vanden-Eijnden (arXiv 1805.00915) learn "the energy function of the
    continuous 3-spin model on the sphere" (abstract); the normalisation ``1/d`` and the radius
    :math:`\sqrt d` are recalled from that paper, not checked against it.

    Parameters
    ----------
    d : int
        Dimension (``d >= 2``).
    seed : int
        Seed of the coefficients :math:`a_{pqr}`.

    Examples
    --------
    >>> f = ThreeSpin(3, seed=0)
    >>> x = f.sample(4, seed=1).x
    >>> bool(torch.allclose(f(-x), -f(x))), bool(torch.allclose(x.norm(dim=-1), torch.full((4,), 3 ** 0.5, dtype=torch.float64)))
    (True, True)
    """

    def __init__(self, d, seed=0):
        self.d = _checks.integer(d, "d", 2)
        self.a = torch.randn((self.d,) * 3, generator=generator(seed), dtype=torch.float64)

    def __repr__(self):
        return f"ThreeSpin(d={self.d})"

    def __call__(self, x):
        x = _checks.floating_tensor(x, "x")
        if x.ndim < 1 or x.shape[-1] != self.d:
            raise ValueError(f"x must have shape (..., {self.d}), got {tuple(x.shape)}")
        a = self.a.to(dtype=x.dtype, device=x.device)
        return torch.einsum("...p,...q,...r,pqr->...", x, x, x, a) / self.d

    def second_moment(self) -> float:
        r"""The exact mean square :math:`\mathbb E f(x)^2` for :math:`x` uniform on :math:`\S^{d-1}(\sqrt d)`.

        For :math:`x` uniform on the sphere of radius :math:`R` in :math:`\mathbb R^d`,
        :math:`\mathbb E[x_{i_1}\cdots x_{i_6}] = \frac{R^6}{d(d+2)(d+4)}\sum_{\pi}\prod_{\{k,l\}\in\pi}\delta_{i_ki_l}`,
        the sum running over the 15 pairings :math:`\pi` of six indices (Wick's formula for the
        Gaussian vector :math:`g`, divided by :math:`\mathbb E\|g\|^6 = d(d+2)(d+4)`, since
        :math:`g/\|g\|` is uniform and independent of :math:`\|g\|`). With :math:`R^2 = d`,
        :math:`\mathbb E f^2 = \frac{1}{(d+2)(d+4)}\sum_\pi\langle a, a\rangle_\pi`. The loss constant
        is :math:`C_f = \frac12\mathbb E f^2`.
        """
        total = sum(torch.einsum(spec, self.a, self.a) for spec in _pairing_contractions())
        return float(total) / ((self.d + 2) * (self.d + 4))

    def sample(self, M, batch=(), seed=0) -> Data:
        """``M`` inputs uniform on the sphere of radius sqrt(d), with their target values."""
        x = math.sqrt(self.d) * uniform(_checks.integer(M, "M", 1), self.d, batch=_batch(batch), seed=seed)
        return Data(x, self(x))


class Teacher:
    r"""A teacher network :math:`f(x) = \frac1m\sum_{j=1}^m c^*_j\,\varphi(x, y^*_j)` as the target.

    Inputs are uniform on the sphere of radius ``radius`` (``inputs="sphere"``, the setting of Chizat,
    Oyallon, Bach, arXiv 1812.07956) or standard Gaussian (``inputs="gaussian"``, as in the
    teacher-student examples of the mean-field literature).

    Examples
    --------
    >>> from nnips.meanfield import Ridge
    >>> teacher = Teacher(torch.tensor([2.0]), torch.tensor([[1.0, 0.0]]), Ridge("relu"))
    >>> teacher(torch.tensor([[0.6, 0.8], [-1.0, 0.0]]))
    tensor([1.2000, 0.0000])
    """

    def __init__(self, c, y, unit, inputs="sphere", radius=1.0):
        self.unit = _check_unit(unit)
        self.c, self.y = _particles(c, y)
        if self.c.ndim != 1:
            raise ValueError(f"a teacher is one network: c must have shape (m,), got {tuple(self.c.shape)}")
        if inputs not in ("sphere", "gaussian"):
            raise ValueError(f"inputs must be 'sphere' or 'gaussian', got {inputs!r}")
        self.inputs = inputs
        self.radius = _checks.real(radius, "radius", minimum=0.0, strict=True)
        d = next((d for d in range(1, self.y.shape[-1] + 1) if self.unit.dim(d) == self.y.shape[-1]), None)
        if d is None or d < 2:
            raise ValueError(f"y has dimension {self.y.shape[-1]}, which fits no input dimension d >= 2 "
                             f"for the unit {self.unit!r}")
        self.d = d

    def __repr__(self):
        return f"Teacher(m={self.c.shape[0]}, d={self.d}, unit={self.unit!r})"

    def __call__(self, x):
        return _output(self.c, self.y, self.unit, _inputs(x, self.unit, self.y))

    def sample(self, M, batch=(), seed=0) -> Data:
        """``M`` inputs from the input law, with the teacher's values."""
        M, batch = _checks.integer(M, "M", 1), _batch(batch)
        if self.inputs == "sphere":
            x = self.radius * uniform(M, self.d, batch=batch, seed=seed)
        else:
            x = torch.randn((*batch, M, self.d), generator=generator(seed), dtype=torch.float64)
        x = x.to(dtype=self.y.dtype, device=self.y.device)
        return Data(x, self(x))


class RadialRun(NamedTuple):
    """What :meth:`GaussianClasses.radial_flow` recorded: steps, times, radii ``(len(step), K)``, risk."""

    step: torch.Tensor
    t: torch.Tensor
    r: torch.Tensor
    risk: torch.Tensor


class GaussianClasses:
    r"""Two centred Gaussian classes that differ by their variance (Mei, Montanari, Nguyen).

    .. math::
        y = \pm1 \text{ with probability } \tfrac12,\qquad x\mid y \sim \mathcal N\big(0, (1 + y\Delta)^2 I_d\big),

    the isotropic example of Mei, Montanari, Nguyen (arXiv 1804.06561), learned with
    :math:`\hat y(x) = \frac1N\sum_i\sigma(\langle w_i, x\rangle)` (output weights fixed to 1) and the
    risk :math:`R = \mathbb E(y - \hat y(x))^2`, which is twice :func:`~nnips.meanfield.loss`.

    Examples
    --------
    >>> data = GaussianClasses(4, 0.2).sample(1000, seed=0)
    >>> sorted(set(data.f.tolist())), data.x.shape
    ([-1.0, 1.0], torch.Size([1000, 4]))
    """

    def __init__(self, d, delta):
        self.d = _checks.integer(d, "d", 2)
        self.delta = _checks.real(delta, "delta", minimum=0.0)
        if self.delta >= 1:
            raise ValueError(f"delta must lie in [0, 1), got {self.delta}")

    def __repr__(self):
        return f"GaussianClasses(d={self.d}, delta={self.delta})"

    def sample(self, M, batch=(), seed=0) -> Data:
        """``M`` labelled points: labels ``f = y = +-1`` and inputs ``x`` of their class."""
        M, batch = _checks.integer(M, "M", 1), _batch(batch)
        g = generator(seed)
        labels = 2.0 * torch.randint(0, 2, (*batch, M), generator=g).double() - 1
        z = torch.randn((*batch, M, self.d), generator=g, dtype=torch.float64)
        return Data((1 + self.delta * labels)[..., None] * z, labels)

    def initial_radii(self, K, kappa):
        r"""``K`` quantiles of :math:`\|w\|` for :math:`w\sim\mathcal N(0, \kappa^2 I_d/d)`: a deterministic radial start.

        The radial law of the start :math:`w_i\sim\mathcal N(0,\kappa^2I_d/d)` of Mei, Montanari, Nguyen;
        :math:`\|w\| = \frac{\kappa}{\sqrt d}\chi_d`.
        """
        K = _checks.integer(K, "K", 1)
        kappa = _checks.real(kappa, "kappa", minimum=0.0, strict=True)
        levels = (torch.arange(K, dtype=torch.float64) + 0.5) / K
        return torch.as_tensor(kappa / math.sqrt(self.d) * scipy.stats.chi.ppf(levels.numpy(), self.d))

    def _quadrature(self, nodes):
        # |x| = (1 + y delta) sqrt(2 v) with v ~ Gamma(d/2): generalised Gauss-Laguerre in v.
        v, w = scipy.special.roots_genlaguerre(nodes, self.d / 2 - 1)
        w = torch.as_tensor(w / w.sum())
        s = torch.as_tensor((2 * v) ** 0.5)
        tau = torch.tensor([1 + self.delta, 1 - self.delta], dtype=torch.float64)
        return tau[:, None] * s, 0.5 * w.expand(2, -1), torch.tensor([1.0, -1.0], dtype=torch.float64)

    def _moments(self, a, sigma):
        """E_u sigma(a u) and E_u sigma'(a u) u for u = <w/|w|, x/|x|>, in closed form (a >= 0)."""
        d = self.d
        const = math.exp(math.lgamma(d / 2) - math.lgamma((d - 1) / 2)) / math.sqrt(math.pi) / (d - 1)

        def upper_first_moment(b):  # E[u 1{u > b}]
            return const * (1 - b.clamp(-1, 1) ** 2) ** ((d - 1) / 2)

        def upper_tail(b):  # P(u > b), u^2 ~ Beta(1/2, (d-1)/2)
            inc = torch.as_tensor(scipy.special.betainc(0.5, (d - 1) / 2, (b.clamp(-1, 1) ** 2).numpy()))
            return torch.where(b >= 0, 0.5 * (1 - inc), 0.5 * (1 + inc))

        safe = a.clamp_min(1e-300)
        ramp = torch.zeros_like(a)
        slope_moment = torch.zeros_like(a)
        for t, sign in ((sigma.t1, 1.0), (sigma.t2, -1.0)):
            b = t / safe
            ramp = ramp + sign * (safe * upper_first_moment(b) - t * upper_tail(b))
            slope_moment = slope_moment + sign * upper_first_moment(b)
        mean_sigma = torch.where(a > 0, sigma.s1 + sigma.slope * ramp, sigma(torch.zeros_like(a)))
        return mean_sigma, torch.where(a > 0, sigma.slope * slope_moment, torch.zeros_like(a))

    def _radial_state(self, r, sigma, nodes):
        s, w, labels = self._quadrature(nodes)
        mean_sigma, slope_moment = self._moments(r[:, None, None] * s, sigma)  # (K, 2, nodes)
        f = mean_sigma.mean(0)  # network output as a function of |x|, per class
        residual = f - labels[:, None]
        risk = (w * residual ** 2).sum()
        velocity = -(w * residual * s * slope_moment).sum((-1, -2))
        return risk, velocity

    def radial_risk(self, r, sigma, nodes=64):
        r"""Risk :math:`R(\rho)` of the radially symmetric measure whose radii are ``r`` (weights ``1/K``)."""
        r, sigma = self._check_radial(r, sigma)
        return self._radial_state(r, sigma, _checks.integer(nodes, "nodes", 2))[0]

    def _check_radial(self, r, sigma):
        if not isinstance(sigma, PiecewiseLinear):
            raise TypeError(f"sigma must be a meanfield.PiecewiseLinear activation, got {type(sigma).__name__}")
        r = _checks.floating_tensor(r, "r").double().cpu()
        if r.ndim != 1 or r.numel() < 1 or bool((r < 0).any()):
            raise ValueError(f"r must be a non-empty 1-D tensor of radii >= 0, got shape {tuple(r.shape)}")
        return r, sigma

    def radial_flow(self, r, sigma, dt, steps, record=None, nodes=64):
        r"""The distributional dynamics reduced to one dimension by rotational symmetry.

        For a start that is invariant under rotations, the law of the neurons stays invariant and is
        described by the law of their norms :math:`r=\|w\|`. Writing :math:`x = s\,e` (:math:`s=\|x\|`,
        :math:`e` uniform on the sphere) and :math:`u=\langle w/\|w\|, e\rangle`, the network is a
        function of :math:`s` alone, and each radius moves with the velocity

        .. math::
            \dot r = -\,\mathbb E_{y,s}\Big[\big(f_\rho(s) - y\big)\,s\,\mathbb E_u\big[\sigma'(rsu)\,u\big]\Big],
            \qquad f_\rho(s) = \int\mathbb E_u\,\sigma(r' s u)\,\rho(dr'),

        the radial part of :func:`~nnips.meanfield.velocity`: the distributional dynamics of Mei,
        Montanari, Nguyen (arXiv 1804.06561) up to the unit of time.
        The law of :math:`u` has density proportional to :math:`(1-u^2)^{(d-3)/2}`, so for the
        piecewise-linear :math:`\sigma` the :math:`u`-expectations are closed forms (incomplete beta
        functions); the :math:`s`-expectation uses Gauss-Laguerre quadrature with ``nodes`` points.
        The measure :math:`\rho` is represented by the ``K`` radii ``r`` (explicit Euler in time).

        Parameters
        ----------
        r : (K,) tensor of radii >= 0
        sigma : PiecewiseLinear
        dt : float
        steps : int
        record : sequence of int, optional
            Step counts to record (default ``[0, steps]``).
        nodes : int

        Returns
        -------
        RadialRun
        """
        r, sigma = self._check_radial(r, sigma)
        dt = _checks.real(dt, "dt", minimum=0.0, strict=True)
        steps = _checks.integer(steps, "steps", 0)
        nodes = _checks.integer(nodes, "nodes", 2)
        record = [0, steps] if record is None else [_checks.integer(k, "record entries", 0) for k in record]
        if any(b <= a for a, b in zip(record, record[1:])) or record[-1] > steps:
            raise ValueError(f"record must be strictly increasing step counts in [0, {steps}], got {record}")
        wanted, radii, risks = set(record), [], []
        for k in range(steps + 1):
            risk, v = self._radial_state(r, sigma, nodes)
            if k in wanted:
                radii.append(r)
                risks.append(risk)
            if k == steps:
                break
            r = (r + dt * v).clamp_min(0)
        step = torch.tensor(record)
        return RadialRun(step, step.double() * dt, torch.stack(radii), torch.stack(risks))
