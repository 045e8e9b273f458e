import numpy as np
import pytest
import torch

from nnips import clusters, rates, scale, sphere


def test_count_and_sizes():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [0.0, -1.0]], dtype=torch.float64)
    assert clusters.count(x).item() == 3
    assert clusters.sizes(x) == [2, 2, 1]
    assert clusters.count(torch.stack([x, x[:1].expand(5, 2)])).tolist() == [3, 1]


def test_pair_fraction_and_diameter():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    assert clusters.pair_fraction(x, 1e-3).item() == pytest.approx(2 / 6)
    assert clusters.diameter(x).item() == pytest.approx(2**0.5)


def test_fits_recover_exact_laws():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    fit = rates.power_law(x, 3 * x**-1.5)
    assert fit.slope == pytest.approx(-1.5) and np.exp(fit.intercept) == pytest.approx(3)
    t = np.linspace(0, 2, 5)
    assert rates.exponential(t, 2 * np.exp(-0.7 * t)).slope == pytest.approx(-0.7)


def test_fits_reject_bad_data():
    with pytest.raises(ValueError, match="positive"):
        rates.power_law([1, 2], [1.0, -1.0])
    with pytest.raises(ValueError, match="same number"):
        rates.exponential([1, 2, 3], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        rates.exponential([1, 2], [1.0, np.nan])


def test_scale(monkeypatch):
    monkeypatch.delenv("NNIPS_SCALE", raising=False)
    assert scale.current() == "book" and scale.pick(book=1, paper=2) == 1
    monkeypatch.setenv("NNIPS_SCALE", "paper")
    assert scale.pick(book=1, paper=2) == 2
    monkeypatch.setenv("NNIPS_SCALE", "huge")
    with pytest.raises(ValueError, match="NNIPS_SCALE"):
        scale.current()


def test_min_inner_product():
    x = sphere.uniform(5, 3, seed=0)
    w = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    assert clusters.min_inner_product(x, w).item() == pytest.approx(x[:, 2].min().item())
