"""One visual style for the book: particles on circles and spheres, histograms, fitted slopes.

Drawing code lives here so that pages stay short; every function takes the matplotlib axes to draw
on and returns it. numpy appears only here, at the plotting edge.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from . import rates

__all__ = ["use_style", "circle", "circle_angles", "sphere", "inner_products", "loglog", "semilogy", "PALETTE"]

PALETTE = sns.color_palette("colorblind")


def use_style():
    """Seaborn's ticks style with the book's palette and figure size (called on import)."""
    sns.set_theme(style="ticks", palette=PALETTE, rc={"figure.figsize": (6.0, 3.6), "figure.dpi": 100,
                                                     "axes.spines.top": False, "axes.spines.right": False})


def _numpy(x):
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)


def circle(ax, x, color=None, size=30, label=None):
    """Draw points of the unit circle, ``x`` of shape (n, 2), over the circle itself."""
    x = _numpy(x)
    theta = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(theta), np.sin(theta), color="0.8", lw=1, zorder=0)
    ax.scatter(x[:, 0], x[:, 1], s=size, color=color or PALETTE[0], label=label, zorder=2)
    ax.set_aspect("equal")
    ax.set_xlim(-1.15, 1.15)
    ax.set_ylim(-1.15, 1.15)
    ax.set_axis_off()
    return ax


def circle_angles(ax, t, xs, lw=1.0, color=None):
    """Plot the angles of tokens on the circle against time; ``xs`` has shape (len(t), n, 2).

    Angles are unwrapped in time, so a token crossing the angle pi does not jump.
    """
    xs = _numpy(xs)
    angles = np.unwrap(np.arctan2(xs[..., 1], xs[..., 0]), axis=0)
    ax.plot(_numpy(t), angles, lw=lw, color=color)
    ax.set_xlabel("time $t$")
    return ax


def sphere(ax, x, color=None, size=20, wireframe=True):
    """Draw points of the unit sphere, ``x`` of shape (n, 3), on 3-D axes."""
    x = _numpy(x)
    if wireframe:
        u, v = np.mgrid[0:2 * np.pi:30j, 0:np.pi:15j]
        ax.plot_wireframe(np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v), color="0.85", lw=0.4)
    ax.scatter(x[:, 0], x[:, 1], x[:, 2], s=size, color=color or PALETTE[0], depthshade=False)
    ax.set_box_aspect((1, 1, 1))
    ax.set_axis_off()
    return ax


def inner_products(ax, x, bins=50, color=None, label=None):
    r"""Histogram (density) of the pairwise inner products :math:`\langle x_i,x_j\rangle`, :math:`i<j`."""
    x = _numpy(x)
    g = x @ x.T
    vals = g[np.triu_indices(len(x), 1)]
    ax.hist(vals, bins=bins, range=(-1, 1), density=True, color=color or PALETTE[0], alpha=0.8, label=label)
    ax.set_xlabel(r"$\langle x_i, x_j\rangle$")
    return ax


def loglog(ax, x, y, fit=True, label=None, color=None, marker="o"):
    """Log-log plot of ``y`` against ``x`` with the least-squares line; the legend shows its slope."""
    x, y = _numpy(x), _numpy(y)
    color = color or PALETTE[0]
    ax.loglog(x, y, marker, color=color, label=label)
    if fit:
        f = rates.power_law(x, y)
        ax.loglog(x, np.exp(f.intercept) * x ** f.slope, "--", color=color, label=f"slope {f.slope:.2f}")
    ax.legend()
    return ax


def semilogy(ax, t, y, fit=True, label=None, color=None, marker="-"):
    """Semi-log plot of ``y`` against ``t`` with the fitted exponential; the legend shows its rate."""
    t, y = _numpy(t), _numpy(y)
    color = color or PALETTE[0]
    ax.semilogy(t, y, marker, color=color, label=label)
    if fit:
        f = rates.exponential(t, y)
        ax.semilogy(t, np.exp(f.intercept + f.slope * t), "--", color=color, label=f"rate {-f.slope:.2f}")
    ax.legend()
    return ax


use_style()
