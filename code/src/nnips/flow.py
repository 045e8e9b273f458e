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

__all__ = ["integrate", "METHODS", "Layer", "Euler", "RK4", "Adaptive", "log_times",
           "integrate_adaptive", "DormandPrince", "ArcLength"]


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


# ------------------------------------------------------------------------------------------------
# Long times: a batched adaptive solver with one step size per system, merging, reparametrisation.
# Book: Chapter 3, "Metastability"; appendix "Numerical methods".
# ------------------------------------------------------------------------------------------------


class DormandPrince:
    r"""The Dormand-Prince 5(4) pair: an order-5 step with an embedded order-4 error estimate.

    Coefficients of Hairer, Norsett and Wanner, *Solving ODEs I* (1993), Table II.5.2. The step
    propagates the order-5 solution (local extrapolation); ``e = b - b*`` gives the difference of
    the two solutions, the local error estimate.
    """

    order = 5
    c = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
    a = ((),
         (1 / 5,),
         (3 / 40, 9 / 40),
         (44 / 45, -56 / 15, 32 / 9),
         (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
         (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
         (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84))
    b = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
    e = (35 / 384 - 5179 / 57600, 0.0, 500 / 1113 - 7571 / 16695, 125 / 192 - 393 / 640,
         -2187 / 6784 + 92097 / 339200, 11 / 84 - 187 / 2100, -1 / 40)

    @classmethod
    def stages(cls, field, x, h):
        """The order-5 increment and the error estimate of one step of size ``h`` (shape (..., 1, 1))."""
        ks = []
        for a_row in cls.a:
            y = x
            for a_ij, k in zip(a_row, ks):
                if a_ij:
                    y = y + (h * a_ij) * k
            ks.append(field(y))
        increment = sum((h * b_i) * k for b_i, k in zip(cls.b, ks) if b_i)
        error = sum((h * e_i) * k for e_i, k in zip(cls.e, ks) if e_i)
        return increment, error


class ArcLength:
    r"""A field reparametrised by the distance its tokens travel.

    .. math:: \frac{dx}{ds} = \frac{F(x)}{\|F(x)\|_{\mathrm{rms}}},\qquad
              \|F(x)\|_{\mathrm{rms}}^2 = \frac1n\sum_{i=1}^n\|F_i(x)\|^2 ,

    one norm per system of a batch. The trajectories are those of :math:`\dot x=F(x)`; only the
    clock changes: :math:`s` is the root-mean-square distance travelled by the tokens, and the
    original time is :math:`t(s)=\int_0^s d\sigma/\|F(x(\sigma))\|_{\mathrm{rms}}`. A long plateau in
    :math:`t`, where tokens barely move, becomes a short one in :math:`s`: the reparametrisation that
    turns the energy of the metastable dynamics into a staircase (Geshkovski, Koubbi, Polyanskiy,
    Rigollet, arXiv 2410.06833, Section 6). A system whose field vanishes exactly (one cluster)
    stands still. The norm is computed after scaling by the largest entry, so that speeds as small
    as 1e-300 (USA at large beta) do not underflow.

    Parameters
    ----------
    field : callable (..., n, d) -> (..., n, d).
    """

    def __init__(self, field):
        if not callable(field):
            raise TypeError(f"field must be callable, got {type(field).__name__}")
        self.field = field

    def __call__(self, x):
        v = self.field(x)
        scale = v.abs().amax(dim=(-1, -2), keepdim=True)
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        norm = safe * ((v / safe) ** 2).sum(dim=(-1, -2), keepdim=True).div(v.shape[-2]).sqrt()
        return torch.where(scale > 0, v / norm, torch.zeros_like(v))

    def __repr__(self):
        return f"ArcLength({self.field!r})"


def integrate_adaptive(field, x0, t, rtol=1e-8, atol=1e-10, merge=None, observe=None, h0=None,
                       max_steps=1_000_000, progress=False):
    r"""Solve :math:`\dot x = \mathrm{field}(x)` over long times, each system of a batch with its own steps.

    The long-time solver of the book: Dormand-Prince 5(4) in torch, on the CPU or a GPU, with one
    step size per system, so that a batch of seeds or a grid of betas advances as one tensor while
    each system takes the steps its own dynamics needs (tiny ones while clusters form, huge ones on
    a metastable plateau). Pair it with log-spaced recording times (:func:`log_times`) to follow a
    trajectory from ``t = 0.1`` to ``t = 1e9``.

    **Error control.** A step of size :math:`h` from :math:`x` is accepted for a system when

    .. math:: \mathrm{err} = \max_{i,k}\frac{|\Delta_{ik}|}{\mathrm{atol}+\mathrm{rtol}\,\max(|x_{ik}|,|x^{\rm new}_{ik}|)}\le 1,

    with :math:`\Delta = h\sum_s e_s k_s` the difference of the order-5 and order-4 solutions
    (:class:`DormandPrince`); either way the next step is
    :math:`h\min(5,\max(0.2,\,0.9\,\mathrm{err}^{-1/5}))` (Hairer, Norsett, Wanner, Section II.4).
    The local error per step is thus kept below the tolerance; the global error is not bounded a
    priori, and the tests compare with exact solutions and with :func:`integrate` at fine steps.
    Stages evaluate the field at their normalised points (the field extended as constant along
    rays, a smooth ODE on :math:`\mathbb R^{nd}` that keeps the sphere invariant, so the order is
    5), and accepted states are normalised back onto the sphere. Recording times are hit exactly (a step
    is shortened to land on the next one).

    **Merging.** Tokens of a collapsed cluster contract at a rate of order one (SA) or beta (USA),
    which caps the step of any explicit scheme, while clusters move on time scales
    :math:`e^{c\beta}`. ``merge`` (for instance ``lambda x: clusters.snap(x, 1e-12)``) is applied after
    every step: tokens it puts on the same point stay together exactly, the contraction disappears
    and the steps can grow. This is the "glue and continue" device of arXiv 2410.06833
    (Section 6); the perturbation it makes is stated by the merge function.

    Parameters
    ----------
    field : callable (..., n, d) -> (..., n, d), the right-hand side (tangent vectors).
    x0 : (..., n, d) tensor on the sphere; leading dimensions are independent systems.
    t : 1-D increasing sequence of recording times; ``t[0]`` is the time of ``x0``.
    rtol, atol : positive tolerances of the error control above.
    merge : optional callable (..., n, d) -> (..., n, d), applied to the state after each step.
    observe : optional callable applied to each recorded state; it must return a tensor whose
        leading dimensions are the batch dimensions ``x0.shape[:-2]`` (one statistic per system).
    h0 : first step; by default ``0.01 / max |field(x0)|`` per system, at most the first interval.
    max_steps : int, the most step attempts before giving up (RuntimeError).
    progress : show a tqdm bar over the recording times of the slowest system.

    Returns
    -------
    tensor of shape ``(len(t), *x0.shape)`` or ``(len(t), *observe(x0).shape)``; entry 0 is the
    (unmerged) ``x0``.

    Raises
    ------
    FloatingPointError if a system cannot make progress (non-finite field, vanishing step).

    Examples
    --------
    Two tokens on the circle at angle :math:`\varphi` under USA with :math:`\beta=0`: the angle solves
    :math:`\dot\varphi=-\sin\varphi`, so :math:`\tan(\varphi/2)=\tan(\varphi_0/2)e^{-t}`.

    >>> from nnips import attention
    >>> x0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> xs = integrate_adaptive(attention.SelfAttention(0.0, normalized=False), x0, [0.0, 2.0])
    >>> phi = torch.arccos(xs[-1, 0] @ xs[-1, 1]).item()
    >>> abs(math.tan(phi / 2) - math.tan(math.pi / 4) * math.exp(-2.0)) < 1e-8
    True
    """
    x0, t, _ = _check_inputs(field, x0, t, "adaptive", None, rtol, atol)
    rtol, atol = float(rtol), float(atol)
    if merge is not None and not callable(merge):
        raise TypeError(f"merge must be callable or None, got {type(merge).__name__}")
    if observe is not None and not callable(observe):
        raise TypeError(f"observe must be callable or None, got {type(observe).__name__}")
    max_steps = _checks.integer(max_steps, "max_steps", 1)
    record = (lambda x: x) if observe is None else observe
    first = record(x0)
    out = first.new_empty((t.numel(), *first.shape))
    out[0] = first
    if t.numel() == 1:
        return out
    batch, device = x0.shape[:-2], x0.device
    times = t.to(device=device)
    now = torch.full(batch, t[0].item(), dtype=torch.float64, device=device)
    k_next = torch.ones(batch, dtype=torch.long, device=device)
    x = x0 if merge is None else merge(x0)
    h = _first_step(field, x, t, h0)

    def ambient(y):
        # The field extended to R^d as constant along rays, F(y) = field(y/|y|): the sphere is then
        # invariant with a neutral normal direction, so the stage points, which leave the sphere by
        # O(h^2), feel no stiff pull back onto it (which would cap the step at about 1).
        return field(_retract(y))

    last = t.numel()
    with tqdm(total=last - 1, disable=not progress, desc="integrate_adaptive") as bar:
        for attempt in range(max_steps + 1):
            active = k_next < last
            if not bool(active.any()):
                break
            if attempt == max_steps:
                raise RuntimeError(f"integrate_adaptive: max_steps = {max_steps} step attempts were not "
                                   f"enough to reach t = {t[-1].item():g}; raise max_steps or the tolerances")
            target = times[k_next.clamp(max=last - 1)]
            reach = h >= target - now
            step = torch.where(active, torch.where(reach, target - now, h), torch.zeros_like(h))
            increment, error = DormandPrince.stages(ambient, x, step.to(x.dtype)[..., None, None])
            x_new = x + increment
            scale = atol + rtol * torch.maximum(x.abs(), x_new.abs())
            err = (error.abs() / scale).amax(dim=(-1, -2)).double()
            err = torch.where(torch.isfinite(err) & torch.isfinite(x_new).all(-1).all(-1), err,
                              torch.full_like(err, math.inf))
            accept = active & (err <= 1)
            x = torch.where(accept[..., None, None], _retract(torch.where(accept[..., None, None], x_new, x)), x)
            if merge is not None and bool(accept.any()):
                x = torch.where(accept[..., None, None], merge(x), x)
            hit = accept & reach
            now = torch.where(hit, target, torch.where(accept, now + step, now))
            factor = torch.clamp(0.9 * err.clamp(min=1e-12) ** -0.2, 0.2, 5.0)
            grown = step * factor
            h = torch.where(active, torch.where(hit & (factor >= 1), torch.maximum(h, grown), grown), h)
            stuck = active & ~accept & (h <= 1e-14 * torch.clamp(now.abs(), min=1.0))
            if bool(stuck.any()):
                raise FloatingPointError(f"integrate_adaptive: the step vanished near t = {now[stuck].min().item():g} "
                                         "(non-finite or stiff field); loosen the tolerances or merge clusters")
            if bool(hit.any()):
                obs = record(x)
                for k in torch.unique(k_next[hit]).tolist():
                    where = hit & (k_next == k)
                    out[k][where] = obs[where]
                k_next = torch.where(hit, k_next + 1, k_next)
                bar.n = int(k_next.min().item()) - 1
                bar.refresh()
    return out


def _first_step(field, x, t, h0):
    span = (t[1] - t[0]).item()
    batch = x.shape[:-2]
    if h0 is not None:
        h0 = _checks.real(h0, "h0", 0.0, strict=True)
        return torch.full(batch, min(h0, span), dtype=torch.float64, device=x.device)
    speed = field(x).abs().amax(dim=(-1, -2)).double()
    h = 0.01 / torch.clamp(speed, min=1e-300)
    return torch.clamp(h, min=1e-12 * span, max=span)
