"""W_2 through POT, against closed forms: a Dirac mass, one dimension, translations."""

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from nnips import sphere, wasserstein

seeds = st.integers(min_value=0, max_value=2**31 - 1)


def cloud(n, d, seed):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 30), d=st.integers(1, 4), seed=seeds, weighted=st.booleans())
def test_pot_agrees_with_the_closed_form_against_a_dirac(n, d, seed, weighted):
    x, p = cloud(n, d, seed), cloud(1, d, seed + 1)
    a = None
    if weighted:
        a = torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + 0.1
        a = a / a.sum()
    exact = wasserstein.w2_dirac(x, p[0], a).item()
    assert wasserstein.w2(x, p, a=a) == pytest.approx(exact, rel=1e-9, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), seed=seeds)
def test_one_dimension_is_the_sorted_matching(n, seed):
    x, y = cloud(n, 1, seed), cloud(n, 1, seed + 7)
    exact = math.sqrt(((x.sort(0).values - y.sort(0).values) ** 2).mean().item())
    assert wasserstein.w2(x, y) == pytest.approx(exact, rel=1e-9, abs=1e-12)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 20), m=st.integers(2, 20), seed=seeds)
def test_metric_properties_and_translation(n, m, seed):
    x, y = cloud(n, 3, seed), cloud(m, 3, seed + 1)
    shift = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    w = wasserstein.w2(x, y)
    assert wasserstein.w2(x, x) == pytest.approx(0.0, abs=1e-7)
    assert wasserstein.w2(y, x) == pytest.approx(w, rel=1e-9)
    # Translating both measures changes nothing; translating one by c adds |c|^2 to W_2^2 for
    # measures with the same mean, and in general W_2 >= |mean difference|.
    assert wasserstein.w2(x + shift, y + shift) == pytest.approx(w, rel=1e-9)
    assert w >= (x.mean(0) - y.mean(0)).norm().item() - 1e-9


def test_batched_dirac_distance_and_the_sphere_identity():
    """On the sphere, W_2(mu, delta_p)^2 = 2 - 2 <mean, p>."""
    x = sphere.uniform(50, 3, batch=4, seed=0)
    p = sphere.uniform(1, 3, seed=1)[0]
    w = wasserstein.w2_dirac(x, p)
    assert w.shape == (4,)
    torch.testing.assert_close(w ** 2, 2 - 2 * (x.mean(-2) @ p))


@pytest.mark.parametrize("call,error,match", [
    (lambda: wasserstein.w2(torch.ones(3), torch.ones(2, 3)), ValueError, "x must have shape"),
    (lambda: wasserstein.w2(torch.ones(2, 3), torch.ones(2, 2)), ValueError, "same dimension"),
    (lambda: wasserstein.w2(torch.ones(2, 3), torch.ones(2, 3), a=torch.tensor([0.5, 0.6])), ValueError,
     "a must sum to one"),
    (lambda: wasserstein.w2(torch.ones(2, 3), torch.ones(2, 3), b=torch.ones(3) / 3), ValueError, "b must hold 2"),
    (lambda: wasserstein.w2(torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 3)), TypeError,
     "x must have a floating"),
    (lambda: wasserstein.w2_dirac(torch.ones(2, 3), torch.ones(2)), ValueError, "point must have dimension"),
    (lambda: wasserstein.w2_dirac(torch.ones(2, 3), torch.ones(3), a=torch.ones(2)), ValueError, "a must sum"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
