r"""Time integration of particle systems on :math:`(\mathbb S^{d-1})^n`: depth is time.

One public verb, :func:`integrate`, in the manner of ``torchdiffeq.odeint``:

>>> from nnips import attention, flow, sphere
>>> xs = flow.integrate(attention.SelfAttention(1.0), sphere.uniform(8, 3, seed=0), t=[0.0, 1.0, 2.0])
>>> xs.shape
torch.Size([3, 8, 3])

Schemes live in :data:`METHODS`; each has an ``order`` and a ``step(field, x, dt)``:

- ``"layer"``: a residual step followed by normalisation, ``normalize(x + dt * velocity(x))``. This
  is literally a post-LN Transformer layer, and the scheme of the authors' code for GLPR
  (arXiv 2312.10794); order 1.
- ``"euler"``: projected Euler followed by normalisation; order 1.
- ``"rk4"``: the classical Runge-Kutta scheme on the projected field, then a retraction; order 4.
- ``"adaptive"``: ``scipy.integrate.solve_ivp`` (DOP853, tolerances ``rtol``, ``atol``), the
  reference solution of the tests and of the book's convergence studies.

Book: Chapter 1, "Discrete layers and continuous time"; appendix "Numerical methods".
"""

from __future__ import annotations

import math

import numpy as np
import scipy.integrate
import torch
from tqdm import tqdm

from . import _checks

__all__ = ["integrate", "METHODS", "Layer", "Euler", "RK4", "Adaptive", "log_times"]


def _retract(x):
    return x / x.norm(dim=-1, keepdim=True)


class Layer:
    """Residual step on the unprojected branch, then normalisation (a post-LN Transformer layer)."""

    order = 1

    @staticmethod
    def step(field, x, dt):
        if hasattr(field, "layer_step"):
            return field.layer_step(x, dt)
        return _retract(x + dt * field(x))


class Euler:
    """Projected explicit Euler, then normalisation."""

    order = 1

    @staticmethod
    def step(field, x, dt):
        return _retract(x + dt * field(x))


class RK4:
    """Classical fourth-order Runge-Kutta on the projected field, then normalisation (Hairer, II.1)."""

    order = 4

    @staticmethod
    def step(field, x, dt):
        k1 = field(x)
        k2 = field(x + 0.5 * dt * k1)
        k3 = field(x + 0.5 * dt * k2)
        k4 = field(x + dt * k3)
        return _retract(x + (dt / 6) * (k1 + 2 * k2 + 2 * k3 + k4))


class Adaptive:
    """Adaptive DOP853 (scipy) in float64 on the CPU, outputs normalised; the reference solver."""

    order = 8


METHODS = {"layer": Layer, "euler": Euler, "rk4": RK4, "adaptive": Adaptive}


def log_times(t_min, t_max, num) -> torch.Tensor:
    """Recording times ``[0, t_min, ..., t_max]`` with the positive ones log-spaced (float64)."""
    t_min = _checks.real(t_min, "t_min", 0.0, strict=True)
    t_max = _checks.real(t_max, "t_max", t_min, strict=True)
    num = _checks.integer(num, "num", 2)
    return torch.cat([torch.zeros(1, dtype=torch.float64),
                      torch.logspace(math.log10(t_min), math.log10(t_max), num, dtype=torch.float64)])


def _check_inputs(field, x0, t, method, dt, rtol, atol):
    if not callable(field):
        raise TypeError(f"field must be callable, got {type(field).__name__}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(sorted(METHODS))}")
    x0 = _checks.points(x0, "x0")
    t = _checks.times(t, "t")
    if method == "adaptive":
        _checks.real(rtol, "rtol", 0.0, strict=True)
        _checks.real(atol, "atol", 0.0, strict=True)
    else:
        dt = _checks.real(dt, "dt", 0.0, strict=True)
    return x0, t, dt


def integrate(field, x0, t, method="rk4", dt=0.01, rtol=1e-10, atol=1e-12, observe=None, progress=False):
    r"""Solve :math:`\dot x = \mathrm{field}(x)`, :math:`x(t_0) = x_0`, and record at the times ``t``.

    Parameters
    ----------
    field : callable (..., n, d) -> (..., n, d), e.g. :class:`nnips.attention.SelfAttention`.
    x0 : (..., n, d) tensor on the sphere; leading dimensions are independent systems (a batch).
    t : 1-D increasing sequence of times; ``t[0]`` is the time of ``x0``.
    method : one of :data:`METHODS` ("layer", "euler", "rk4", "adaptive").
    dt : largest step of the fixed-step methods. Each interval ``[t_k, t_{k+1}]`` is cut into
        ``ceil((t_{k+1}-t_k)/dt)`` equal steps, so recording times are hit exactly; with
        ``t = [0, T]`` and ``dt = T/L`` the layer scheme is an ``L``-layer network.
    rtol, atol : tolerances of the adaptive method.
    observe : optional callable applied to each recorded state (e.g. a cluster statistic), so that
        long, large runs keep only what they need.
    progress : show a tqdm progress bar.

    Returns
    -------
    tensor of shape ``(len(t), *x0.shape)``, or ``(len(t), *observe(x0).shape)``, in the dtype and
    on the device of ``x0``; the first entry is ``x0`` itself.

    Raises
    ------
    FloatingPointError if the state stops being finite (for instance USA overflowing at large beta).
    """
    x0, t, dt = _check_inputs(field, x0, t, method, dt, rtol, atol)
    record = (lambda x: x) if observe is None else observe
    if method == "adaptive":
        states = _integrate_adaptive(field, x0, t, rtol, atol, progress)
        return torch.stack([record(x) for x in states])
    steps = [max(1, math.ceil((b - a) / dt - 1e-9)) for a, b in zip(t[:-1].tolist(), t[1:].tolist())]
    scheme = METHODS[method]
    out = [record(x0)]
    x = x0
    with tqdm(total=sum(steps), disable=not progress, desc=f"integrate ({method})") as bar:
        for k, m in enumerate(steps):
            h = (t[k + 1] - t[k]).item() / m
            for _ in range(m):
                x = scheme.step(field, x, h)
            bar.update(m)
            if not bool(torch.isfinite(x).all()):
                raise FloatingPointError(f"the state became non-finite before t = {t[k + 1].item():g}; "
                                         "reduce dt or beta, or use float64")
            out.append(record(x))
    return torch.stack(out)


def _integrate_adaptive(field, x0, t, rtol, atol, progress):
    shape, dtype, device = x0.shape, x0.dtype, x0.device

    def rhs(_, y):
        x = torch.from_numpy(y).reshape(shape)
        return field(x).numpy().ravel()

    y0 = x0.detach().double().cpu().numpy().ravel()
    states = [x0]
    if t.numel() > 1:
        with tqdm(total=1, disable=not progress, desc="integrate (adaptive)") as bar:
            sol = scipy.integrate.solve_ivp(rhs, (t[0].item(), t[-1].item()), y0, method="DOP853",
                                            t_eval=t.numpy(), rtol=rtol, atol=atol)
            bar.update(1)
        if not sol.success or not np.isfinite(sol.y).all():
            raise FloatingPointError(f"the adaptive solver failed: {sol.message}")
        ys = torch.from_numpy(sol.y.T[1:].copy()).reshape(-1, *shape)
        states += list(_retract(ys).to(dtype=dtype, device=device))
    return states
