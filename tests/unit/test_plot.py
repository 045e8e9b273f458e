"""The drawing helpers of nnips.plot: figure sizes, log ticks, and animations small enough to embed."""

import math
import re

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch

from nnips import attention, flow, plot, sphere

matplotlib.use("Agg")

FRAMES = 12


def circle_and_sphere():
    t = torch.linspace(0, 6, FRAMES, dtype=torch.float64)
    on_circle = flow.integrate(attention.SelfAttention(4.0), sphere.uniform(16, 2, seed=0), t, dt=0.05)
    on_sphere = flow.integrate(attention.SelfAttention(4.0), sphere.uniform(16, 3, seed=1), t, dt=0.05)
    return t, on_circle, on_sphere


def check_html(html, alt, limit_kb):
    assert isinstance(html, str)
    assert len(html) < limit_kb * 1000, f"{len(html) / 1000:.0f} kB"
    assert len(re.findall(r"frames\[\d+\] = \"data:image/png;base64,", html)) == FRAMES
    # Self-contained: no stylesheet or script from the network, and the image is described.
    assert "http://" not in html and "https://" not in html
    images = re.findall(r"<img [^>]*>", html)
    assert len(images) == 1 and f'alt="{alt}"' in images[0]
    assert 'src="data:image/png;base64,' in images[0], "the first frame shows before the script runs"


def test_tokens_animation_on_the_circle_and_the_sphere_is_small_and_described():
    t, on_circle, on_sphere = circle_and_sphere()
    open_before = set(plt.get_fignums())  # other tests in this process may have left figures open
    html = plot.tokens_animation([on_circle, on_sphere], alt="Tokens gather into clusters.", t=t,
                                 titles=["circle", "sphere"])
    check_html(html, "Tokens gather into clusters.", 300)
    assert set(plt.get_fignums()) == open_before, "the helper must close its figure"


def test_points_animation_with_two_panels_and_rays():
    g = torch.Generator().manual_seed(0)
    start = torch.randn(20, 2, generator=g, dtype=torch.float64)
    xs = torch.stack([start * (1 + k / FRAMES) for k in range(FRAMES)])
    rays = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    html = plot.points_animation([xs, 10 * xs], alt='Points "spread" out.', t=torch.arange(FRAMES) / 2.0,
                                 lines=[rays, None], titles=["small", "large"])
    check_html(html, "Points &quot;spread&quot; out.", 300)


def test_sphere_animation_with_alt_is_self_contained():
    t, _, on_sphere = circle_and_sphere()
    html = plot.sphere_animation(on_sphere[:, None], t=t, alt="One measure on the sphere.")
    check_html(html, "One measure on the sphere.", 200)


def test_animations_reject_bad_input():
    t, on_circle, on_sphere = circle_and_sphere()
    with pytest.raises(ValueError, match="alt"):
        plot.tokens_animation(on_circle, alt=" ")
    with pytest.raises(ValueError, match="shape"):
        plot.tokens_animation(on_circle[0], alt="x")
    with pytest.raises(ValueError, match="same number of frames"):
        plot.tokens_animation([on_circle, on_sphere[:-1]], alt="x")
    with pytest.raises(ValueError, match="shape"):
        plot.points_animation(on_sphere, alt="x")
    with pytest.raises(ValueError, match="non-finite"):
        plot.points_animation(on_circle * math.nan, alt="x")


def test_figsize_is_the_same_for_every_page():
    assert plot.figsize() == (6.0, 3.6)
    assert plot.figsize(2) == plot.figsize(4, height=3.4) == (plot.TEXT_WIDTH, 3.4)
    assert plot.figsize(2, 2) == (plot.TEXT_WIDTH, 6.8)
    assert plot.figsize(square=True) == (4.5, 4.5)
    with pytest.raises(ValueError, match="ncols"):
        plot.figsize(0)
    with pytest.raises(ValueError, match="height"):
        plot.figsize(2, height=-1.0)


def test_log_ticks_label_the_given_values_only():
    fig, ax = plt.subplots()
    widths = [16, 32, 64, 128]
    ax.loglog(widths, [1.0, 0.5, 0.25, 0.125])
    plot.log_ticks(ax, widths)
    fig.canvas.draw()
    assert [label.get_text() for label in ax.get_xticklabels()] == ["16", "32", "64", "128"]
    assert not ax.xaxis.get_minorticklocs().size
    plt.close(fig)
    with pytest.raises(ValueError, match="axis"):
        plot.log_ticks(ax, widths, axis="z")
