r"""Fitted slopes, rates and orders: the numbers the book prints next to the theory.

Least-squares fits on logarithmic scales (``numpy.polyfit``). Book: every chapter.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

__all__ = ["Fit", "power_law", "exponential"]


class Fit(NamedTuple):
    """A straight-line fit ``y = slope * x + intercept`` on the transformed scale."""

    slope: float
    intercept: float


def _arrays(x, y, name_x, name_y):
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=float).ravel()
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y, dtype=float).ravel()
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"{name_x} and {name_y} must hold the same number (>= 2) of values, "
                         f"got {x.size} and {y.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"{name_x} and {name_y} must be finite")
    return x, y


def power_law(x, y) -> Fit:
    r"""Fit :math:`y \approx C x^{p}`: returns ``Fit(p, log C)`` from a least-squares line in log-log.

    Examples
    --------
    >>> round(power_law([1, 2, 4], [1.0, 0.25, 0.0625]).slope, 6)
    -2.0
    """
    x, y = _arrays(x, y, "x", "y")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("power_law needs positive x and y")
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return Fit(float(slope), float(intercept))


def exponential(t, y) -> Fit:
    r"""Fit :math:`y \approx C e^{\lambda t}`: returns ``Fit(lambda, log C)`` from a line in semi-log.

    A decay at rate :math:`r` gives ``slope = -r``.

    Examples
    --------
    >>> round(exponential([0, 1, 2], [1.0, np.exp(-2), np.exp(-4)]).slope, 6)
    -2.0
    """
    t, y = _arrays(t, y, "t", "y")
    if (y <= 0).any():
        raise ValueError("exponential needs positive y")
    slope, intercept = np.polyfit(t, np.log(y), 1)
    return Fit(float(slope), float(intercept))
