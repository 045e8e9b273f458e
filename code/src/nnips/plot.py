"""One visual style for the book: particles on circles and spheres, histograms, fitted slopes.

Drawing code lives here so that pages stay short; every function takes the matplotlib axes to draw
on and returns it. numpy appears only here, at the plotting edge.
"""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from . import rates

__all__ = ["use_style", "circle", "circle_angles", "sphere", "inner_products", "loglog", "semilogy", "PALETTE",
           "phase_diagram", "sphere_animation", "figsize", "log_ticks", "tokens_animation",
           "points_animation"]

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



def phase_diagram(ax, t, betas, p, curve=None, log=False, colorbar=True, cmap="cividis"):
    r"""Draw :math:`p(t,\beta)` as a colour map over time (x) and beta (y), as in GLPR Fig. 3.

    ``p`` has shape (len(t), len(betas)); ``curve`` (optional) holds the times :math:`t^*(\beta)`
    at which the equiangular solution reaches :math:`1-\delta`, drawn as a line over the map.
    ``log=True`` uses a logarithmic colour scale (down to 1e-3). The default colour map, cividis,
    keeps its order in grey and for colour-blind readers; the curve is white with a black edge so that
    it shows on both ends of the map.
    """
    import matplotlib.colors
    from matplotlib import patheffects

    t, betas, p = _numpy(t), _numpy(betas), _numpy(p)
    if p.shape != (t.size, betas.size):
        raise ValueError(f"p must have shape (len(t), len(betas)) = {(t.size, betas.size)}, got {p.shape}")
    norm = matplotlib.colors.LogNorm(vmin=1e-3, vmax=1) if log else matplotlib.colors.Normalize(0, 1)
    mesh = ax.pcolormesh(t, betas, np.clip(p.T, 1e-3 if log else 0, 1), cmap=cmap, norm=norm,
                         shading="auto", rasterized=True)
    if curve is not None:
        curve = _numpy(curve)
        inside = curve <= t.max()
        ax.plot(curve[inside], betas[inside], color="w", lw=1.5,
                path_effects=[patheffects.withStroke(linewidth=3, foreground="k")])
    ax.set_xlabel("time $t$")
    ax.set_ylabel(r"$\beta$")
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax)
    return ax


def sphere_animation(xs, t=None, targets=None, size=8, dpi=60, figsize=(3.2, 3.2), elev=20, azim=-60, alt=None):
    """An animation of measures moving on the sphere S^2, as JavaScript/HTML for a notebook.

    ``xs`` has shape (frames, N, n, 3): N measures of n points each, drawn in the book's palette;
    ``targets`` (optional, shape (N, 3)) are drawn as stars of the same colours; ``t`` labels the
    frames. Keep frames few and ``dpi`` low: each frame is embedded as a PNG image.
    Returns the HTML string of ``matplotlib.animation.FuncAnimation.to_jshtml``; with ``alt`` (a
    sentence describing the animation, for screen readers), self-contained HTML as from
    :func:`tokens_animation`.
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

    if alt is not None:
        return _jshtml(fig, draw, xs.shape[0], alt)
    anim = animation.FuncAnimation(fig, draw, frames=xs.shape[0], interval=250, blit=False)
    html = anim.to_jshtml(default_mode="once")
    plt.close(fig)
    return html


#: Width of a figure with several columns of panels: the text width of the book's pages, in inches.
TEXT_WIDTH = 10.0


def figsize(ncols=1, nrows=1, height=None, square=False):
    """The book's figure size, in inches, for a grid of ``nrows`` by ``ncols`` panels.

    One panel keeps the default size of :func:`use_style`, 6 by 3.6 inches (4.5 by 4.5 with
    ``square=True``, for maps of the plane or the circle drawn with equal axes); several columns span
    the text width, ``TEXT_WIDTH`` = 10 inches, in rows of 3.4 inches. ``height`` sets the height of
    one row. Pages call ``plt.subplots(1, 2, figsize=plot.figsize(2))`` rather than choosing sizes, so
    that every figure is drawn at the same scale and its fonts have the same size on the page.

    >>> figsize(2)
    (10.0, 3.4)
    """
    from . import _checks

    ncols, nrows = _checks.integer(ncols, "ncols", 1), _checks.integer(nrows, "nrows", 1)
    if square:
        width, row = 4.5, 4.5
    elif ncols == 1:
        width, row = 6.0, 3.6
    else:
        width, row = TEXT_WIDTH, 3.4
    if height is not None:
        row = _checks.real(height, "height", 0.0, strict=True)
    return (width, round(nrows * row, 6))


def log_ticks(ax, values, axis="x"):
    """Label a logarithmic axis at ``values`` (e.g. the widths of a sweep) in plain numbers.

    Replaces matplotlib's minor labels such as 2x10^1, 3x10^1, which overlap on an axis spanning
    about one decade.
    """
    import matplotlib.ticker

    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    values = [float(v) for v in _numpy(values).ravel()]
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(matplotlib.ticker.FixedLocator(values))
    target.set_major_formatter(matplotlib.ticker.FixedFormatter([f"{v:g}" for v in values]))
    target.set_minor_locator(matplotlib.ticker.NullLocator())
    return ax


# Icons of matplotlib's animation controls, as text: its template loads them from a CDN stylesheet,
# which would make the book's pages depend on the network.
_ICONS = {"fa fa-minus": "\u2212", "fa fa-fast-backward": "\u21e4", "fa fa-step-backward": "\u25c2",
          "fa fa-play fa-flip-horizontal": "\u25c0", "fa fa-pause": "\u275a\u275a", "fa fa-play": "\u25b6",
          "fa fa-step-forward": "\u25b8", "fa fa-fast-forward": "\u21e5", "fa fa-plus": "+"}


def _quantize(frame, colors=64):
    """A base64 PNG frame (with the template's line continuations) re-encoded with a palette of
    ``colors`` colours: about three times smaller, and the flat colours of a plot do not suffer."""
    import base64
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(frame.replace("\\\n", ""))))
    palette = image.convert("RGB").quantize(colors, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode("ascii")


def _jshtml(fig, draw, frames, alt, interval=250):
    """The animation of ``draw`` over ``frames`` as self-contained HTML, its image described by ``alt``."""
    import html as _html

    from matplotlib import animation

    if not isinstance(alt, str) or not alt.strip():
        raise ValueError("alt must be a non-empty sentence describing the animation")
    anim = animation.FuncAnimation(fig, draw, frames=frames, interval=interval, blit=False)
    text = anim.to_jshtml(default_mode="once")
    plt.close(fig)
    text = re.sub(r'"data:image/png;base64,([^"]*)"', lambda m: f'"data:image/png;base64,{_quantize(m.group(1))}"',
                  text)
    text = re.sub(r'<link rel="stylesheet"\s+href="[^"]*font-awesome[^"]*">', "", text)
    for classes, glyph in _ICONS.items():
        text = text.replace(f'<i class="{classes}"></i>', f'<span aria-hidden="true">{glyph}</span>')
    # The first frame is also the image's initial source, so that the page shows it before any script runs.
    first = re.search(r'frames\[0\] = "(data:image/png;base64,[^"]*)"', text)
    source = f' src="{first.group(1)}"' if first else ""
    return re.sub(r'<img id="(_anim_img[0-9a-f]+)">',
                  lambda m: f'<img id="{m.group(1)}" alt="{_html.escape(alt)}"{source}>', text)


def _frames(xs, name, dims):
    """``xs`` as a list of numpy arrays (frames, n, d) with d in ``dims`` and a common number of frames."""
    panels = [_numpy(x) for x in (xs if isinstance(xs, (list, tuple)) else [xs])]
    if not panels:
        raise ValueError(f"{name} must hold at least one panel")
    for x in panels:
        if x.ndim != 3 or x.shape[-1] not in dims:
            raise ValueError(f"each panel of {name} must have shape (frames, n, d) with d in {dims}, got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    if len({x.shape[0] for x in panels}) != 1:
        counts = [x.shape[0] for x in panels]
        raise ValueError(f"the panels of {name} must have the same number of frames, got {counts}")
    return panels


def tokens_animation(xs, alt, t=None, titles=None, colors=None, size=14, dpi=80, panel=3.0, elev=20, azim=-60,
                     label="t = {:.3g}"):
    """An animation of tokens moving on the circle S^1 or on the sphere S^2, as HTML for a notebook.

    ``xs`` is a tensor of shape (frames, n, d), or a list of them drawn side by side (the same number
    of frames each): d = 2 draws the unit circle, d = 3 the sphere. ``alt`` is the sentence a screen
    reader says for the animation. ``t`` labels the frames through the format string ``label``,
    ``titles`` the panels; ``colors`` holds one colour per token (default: the book's first colour).
    Each frame is embedded as a PNG of ``panel`` inches square per panel at ``dpi``, with a palette
    of 64 colours: keep frames few (about 20; 25 frames of two panels take about 250 kB). Returns
    self-contained HTML (no network access), for ``IPython.display.HTML``.
    """
    panels = _frames(xs, "xs", (2, 3))
    titles = list(titles) if titles is not None else [""] * len(panels)
    fig = plt.figure(figsize=(panel * len(panels), panel + 0.3), dpi=dpi)
    dots = []
    for k, x in enumerate(panels):
        color = colors if colors is not None else [PALETTE[0]] * x.shape[1]
        if x.shape[-1] == 2:
            ax = fig.add_subplot(1, len(panels), k + 1)
            circle(ax, x[0, :0], size=0)
            dots.append(ax.scatter(x[0, :, 0], x[0, :, 1], s=size, c=color, zorder=2))
        else:
            ax = fig.add_subplot(1, len(panels), k + 1, projection="3d")
            u, v = np.mgrid[0:2 * np.pi:13j, 0:np.pi:7j]  # a light wireframe: it is redrawn in every frame
            ax.plot_wireframe(np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v), color="0.85", lw=0.5)
            ax.set_axis_off()
            ax.view_init(elev=elev, azim=azim)
            ax.set_box_aspect((1, 1, 1), zoom=1.3)
            dots.append(ax.scatter(*x[0].T, s=size, c=color, depthshade=False))
        ax.set_title(titles[k])
    title = fig.suptitle(label.format(float(_numpy(t)[0])) if t is not None else "")
    fig.subplots_adjust(0.02, 0.02, 0.98, 0.86, wspace=0.05)

    def draw(frame):
        for dot, x in zip(dots, panels):
            if x.shape[-1] == 2:
                dot.set_offsets(x[frame])
            else:
                dot._offsets3d = tuple(x[frame].T)
        if t is not None:
            title.set_text(label.format(float(_numpy(t)[frame])))
        return dots

    return _jshtml(fig, draw, panels[0].shape[0], alt)


def points_animation(xs, alt, t=None, titles=None, colors=None, limits=None, lines=None, size=10, dpi=80,
                     panel=3.0, label="t = {:.3g}"):
    """An animation of points moving in the plane (data through a network, neurons during training).

    ``xs`` is a tensor of shape (frames, n, 2), or a list of them drawn side by side (the same
    number of frames each); ``alt`` is the sentence a screen reader says for the animation. ``t``
    labels the frames through the format string ``label``, ``titles`` the panels; ``colors`` holds
    one colour per point (default: the book's first colour). ``limits`` is one half-width per panel
    (the axes are ``[-r, r]^2``), by default the largest coordinate of the panel over all frames;
    ``lines`` (a list of arrays of directions (m, 2), one per panel, or None) draws dashed rays from
    the origin under the points. The panels have a plain frame, without ticks. Returns
    self-contained HTML (no network access), for ``IPython.display.HTML``.
    """
    panels = _frames(xs, "xs", (2,))
    titles = list(titles) if titles is not None else [""] * len(panels)
    if limits is None:
        limits = [1.05 * float(np.abs(x).max()) for x in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(panel * len(panels), panel + 0.3), dpi=dpi, squeeze=False)
    dots = []
    for k, (ax, x) in enumerate(zip(axes[0], panels)):
        r = float(limits[k])
        if lines is not None and lines[k] is not None:
            for v in _numpy(lines[k]):
                ax.plot([0, r * v[0]], [0, r * v[1]], "--", color=PALETTE[3], lw=1, zorder=1)
        color = colors if colors is not None else [PALETTE[0]] * x.shape[1]
        dots.append(ax.scatter(x[0, :, 0], x[0, :, 1], s=size, c=color, zorder=2))
        ax.set_xlim(-r, r)
        ax.set_ylim(-r, r)
        ax.set_aspect("equal")
        ax.set_title(titles[k])
        ax.set_xticks([])  # a plain frame: tick labels would take most of the drawing time
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_color("0.8")
    title = fig.suptitle(label.format(float(_numpy(t)[0])) if t is not None else "")
    fig.tight_layout()

    def draw(frame):
        for dot, x in zip(dots, panels):
            dot.set_offsets(x[frame])
        if t is not None:
            title.set_text(label.format(float(_numpy(t)[frame])))
        return dots

    return _jshtml(fig, draw, panels[0].shape[0], alt)


use_style()
