"""Regular polyhedra and the repulsive case V = -I (nnips.polyhedra, Chapter 2)."""

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from nnips import attention, flow, polyhedra, sphere

# Distinct inner products between distinct vertices, with their multiplicity per vertex.
EXPECTED = {
    4: {-1 / 3: 3},
    6: {0.0: 4, -1.0: 1},
    8: {1 / 3: 3, -1 / 3: 3, -1.0: 1},
    12: {1 / math.sqrt(5): 5, -1 / math.sqrt(5): 5, -1.0: 1},
    20: {math.sqrt(5) / 3: 3, 1 / 3: 6, -1 / 3: 6, -math.sqrt(5) / 3: 3, -1.0: 1},
}


@pytest.mark.parametrize("n", sorted(polyhedra.NAMES))
def test_vertices_have_the_inner_products_of_the_regular_polyhedron(n):
    x = polyhedra.vertices(n)
    assert x.shape == (n, 3)
    torch.testing.assert_close(x.norm(dim=-1), torch.ones(n, dtype=torch.float64))
    G = x @ x.T
    for i in range(n):
        others = torch.cat([G[i, :i], G[i, i + 1:]])
        for value, count in EXPECTED[n].items():
            assert int(((others - value).abs() < 1e-12).sum()) == count
    assert polyhedra.recognise(x) == polyhedra.NAMES[n]


@settings(max_examples=20, deadline=None)
@given(n=st.sampled_from(sorted(polyhedra.NAMES)), seed=st.integers(0, 2**31 - 1))
def test_distance_ignores_rotations_and_relabellings(n, seed):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    x = polyhedra.vertices(n)
    y = (x @ q.T)[torch.randperm(n, generator=g)]
    assert polyhedra.inner_product_distance(y, x).item() < 1e-12
    assert polyhedra.inner_product_distance(sphere.uniform(n, 3, seed=seed), x).item() > 1e-3


def test_recognise_returns_none_for_other_configurations():
    assert polyhedra.recognise(sphere.uniform(6, 3, seed=0)) is None
    assert polyhedra.recognise(sphere.uniform(5, 3, seed=0)) is None


@pytest.mark.parametrize("n", [4, 6, 12])
def test_repulsive_usa_finds_the_polyhedron(n):
    """The page's check: USA with V = -I, beta = 4, T = 50 ends on the universally optimal configuration."""
    repel = attention.SelfAttention(4.0, V=-torch.eye(3, dtype=torch.float64), normalized=False)
    xs = flow.integrate(repel, sphere.uniform(n, 3, batch=8, seed=n), torch.linspace(0, 50, 11), dt=0.05)
    assert polyhedra.inner_product_distance(xs[-1], polyhedra.vertices(n)).max().item() < 1e-6
    e = repel.energy(xs)
    assert bool((e[1:] <= e[:-1] + 1e-12).all())  # gradient descent of E_beta
    assert e[-1].max().item() == pytest.approx(repel.energy(polyhedra.vertices(n)).item(), rel=1e-12)


@pytest.mark.parametrize("call,error,match", [
    (lambda: polyhedra.vertices(5), ValueError, "vertex count"),
    (lambda: polyhedra.vertices(4.0), TypeError, "n must be"),
    (lambda: polyhedra.inner_product_distance(polyhedra.vertices(4), polyhedra.vertices(6)), ValueError, "y must be"),
    (lambda: polyhedra.recognise(2 * polyhedra.vertices(4)), ValueError, "unit sphere"),
])
def test_bad_input_is_rejected(call, error, match):
    with pytest.raises(error, match=match):
        call()
