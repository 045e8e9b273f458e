"""Input validation shared by the public functions of :mod:`nnips`.

Every public function checks its arguments once, at the boundary, with these helpers, so that bad
input fails with a message naming the argument and the allowed range, and inner loops never
re-check.
"""

from __future__ import annotations

import math
import numbers

import torch

#: Default tolerance on | ||x_i|| - 1 | for points that must lie on the unit sphere.
SPHERE_TOL = 1e-6


def integer(value, name: str, minimum: int) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def real(value, name: str, minimum: float | None = None, strict: bool = False) -> float:
    """Return ``value`` as a finite float, optionally bounded below (strictly if ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value < minimum or (strict and value == minimum)):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be {relation} {minimum}, got {value}")
    return value


def floating_tensor(x, name: str) -> torch.Tensor:
    """Return ``x`` as a floating torch tensor with finite entries (numpy arrays are converted)."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{name} must be a tensor of real numbers, got {type(x).__name__}") from err
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must have a floating dtype (float64, float32, bfloat16), got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    return x


def points(x, name: str = "x", tol: float = SPHERE_TOL, on_sphere: bool = True) -> torch.Tensor:
    """Check a configuration of ``n`` points in ``R^d`` shaped ``(..., n, d)``.

    Requires ``n >= 1``, ``d >= 2``, finite entries and, when ``on_sphere``, unit norms within ``tol``.
    """
    x = floating_tensor(x, name)
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (..., n, d), got a tensor with {x.ndim} dimension(s)")
    n, d = x.shape[-2:]
    if n < 1:
        raise ValueError(f"{name} must hold n >= 1 points, got n = {n}")
    if d < 2:
        raise ValueError(f"{name} must live in dimension d >= 2, got d = {d}")
    if on_sphere:
        # Compare in float64 so that a bf16 configuration is judged by its own rounding, scaled below.
        error = (x.double().norm(dim=-1) - 1).abs().max().item()
        allowed = max(tol, 10 * torch.finfo(x.dtype).eps)
        if error > allowed:
            raise ValueError(
                f"{name} must lie on the unit sphere: max | ||x_i|| - 1 | = {error:.2e} > {allowed:.1e}; "
                "normalise it with nnips.sphere.normalize"
            )
    return x


def square_matrices(M, name: str, d: int) -> torch.Tensor:
    """Check a ``(d, d)`` matrix or a stack ``(h, d, d)`` of them (one per attention head)."""
    M = floating_tensor(M, name)
    if M.ndim not in (2, 3) or M.shape[-2:] != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}) or (heads, {d}, {d}), got {tuple(M.shape)}")
    return M


def times(t, name: str = "t") -> torch.Tensor:
    """Check a 1-D, strictly increasing tensor of times (float64 on the CPU)."""
    t = floating_tensor(torch.as_tensor(t, dtype=torch.float64), name).detach().cpu()
    if t.ndim != 1 or t.numel() < 1:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of times, got shape {tuple(t.shape)}")
    if t.numel() > 1 and not bool((t[1:] > t[:-1]).all()):
        raise ValueError(f"{name} must be strictly increasing")
    return t
