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

__all__ = ["use_style", "circle", "circle_angles", "sphere", "inner_products", "loglog", "semilogy", "PALETTE",
           "phase_diagram", "sphere_animation"]

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



def phase_diagram(ax, t, betas, p, curve=None, log=False, colorbar=True):
    r"""Draw :math:`p(t,\beta)` as a colour map over time (x) and beta (y), as in GLPR Fig. 3.

    ``p`` has shape (len(t), len(betas)); ``curve`` (optional) holds the times :math:`t^*(\beta)`
    at which the equiangular solution reaches :math:`1-\delta`, drawn as a line over the map.
    ``log=True`` uses a logarithmic colour scale (down to 1e-3).
    """
    import matplotlib.colors

    t, betas, p = _numpy(t), _numpy(betas), _numpy(p)
    if p.shape != (t.size, betas.size):
        raise ValueError(f"p must have shape (len(t), len(betas)) = {(t.size, betas.size)}, got {p.shape}")
    norm = matplotlib.colors.LogNorm(vmin=1e-3, vmax=1) if log else matplotlib.colors.Normalize(0, 1)
    mesh = ax.pcolormesh(t, betas, np.clip(p.T, 1e-3 if log else 0, 1), cmap="RdBu_r", norm=norm,
                         shading="auto", rasterized=True)
    if curve is not None:
        curve = _numpy(curve)
        inside = curve <= t.max()
        ax.plot(curve[inside], betas[inside], color="k", lw=1.5)
    ax.set_xlabel("time $t$")
    ax.set_ylabel(r"$\beta$")
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax)
    return ax


def sphere_animation(xs, t=None, targets=None, size=8, dpi=60, figsize=(3.2, 3.2), elev=20, azim=-60):
    """An animation of measures moving on the sphere S^2, as JavaScript/HTML for a notebook.

    ``xs`` has shape (frames, N, n, 3): N measures of n points each, drawn in the book's palette;
    ``targets`` (optional, shape (N, 3)) are drawn as stars of the same colours; ``t`` labels the
    frames. Keep frames few and ``dpi`` low: each frame is embedded as a PNG image.
    Returns the HTML string of ``matplotlib.animation.FuncAnimation.to_jshtml``.
    """
    from matplotlib import animation

    xs = _numpy(xs)
    if xs.ndim != 4 or xs.shape[-1] != 3:
        raise ValueError(f"xs must have shape (frames, N, n, 3), got {xs.shape}")
    fig = plt.figure(figsize=figsize, dpi=dpi)
    ax = fig.add_subplot(projection="3d")
    sphere(ax, xs[0, 0, :0], size=0)  # the wireframe and the axes settings only
    ax.view_init(elev=elev, azim=azim)
    ax.set_box_aspect((1, 1, 1), zoom=1.3)
    dots = [ax.scatter(*xs[0, k].T, s=size, color=PALETTE[k % len(PALETTE)], depthshade=False)
            for k in range(xs.shape[1])]
    if targets is not None:
        for k, y in enumerate(_numpy(targets)):
            ax.scatter(*y, s=120, marker="*", color=PALETTE[k % len(PALETTE)], edgecolor="k", depthshade=False)
    title = ax.set_title("")
    fig.subplots_adjust(0, 0, 1, 0.92)

    def draw(frame):
        for k, dot in enumerate(dots):
            dot._offsets3d = tuple(xs[frame, k].T)
        if t is not None:
            title.set_text(f"t = {float(_numpy(t)[frame]):.1f}")
        return dots

    anim = animation.FuncAnimation(fig, draw, frames=xs.shape[0], interval=250, blit=False)
    html = anim.to_jshtml(default_mode="once")
    plt.close(fig)
    return html


use_style()
