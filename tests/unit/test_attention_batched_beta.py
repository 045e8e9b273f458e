"""SelfAttention with a tensor of betas: one per system of a batch (Chapter 2, phase diagrams)."""

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from nnips import attention, flow, sphere


def random_matrix(d, seed, heads=None):
    shape = (d, d) if heads is None else (heads, d, d)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) / d**0.5


def one_field_per_beta(betas, x, method, **kwargs):
    """Apply method to x[k] with a scalar field of beta betas[k], and stack."""
    return torch.stack([getattr(attention.SelfAttention(b, **kwargs), method)(x[k])
                        for k, b in enumerate(betas.tolist())])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 7), d=st.integers(2, 5), seeds=st.integers(1, 3), seed=st.integers(0, 2**31 - 1),
       betas=st.lists(st.one_of(st.just(0.0), st.floats(0.01, 9.0), st.floats(-3.0, -0.01)), min_size=1, max_size=4),
       normalized=st.booleans(),
       heads=st.sampled_from([None, 2]))
def test_batched_beta_equals_one_field_per_beta(n, d, seeds, seed, betas, normalized, heads):
    betas = torch.tensor(betas, dtype=torch.float64)
    kwargs = {"normalized": normalized}
    if heads is not None:
        kwargs.update(Q=random_matrix(d, seed, heads), V=random_matrix(d, seed + 1, heads))
    x = sphere.uniform(n, d, batch=(len(betas), seeds), seed=seed)
    batched = attention.SelfAttention(betas[:, None], **kwargs)
    for method in ("__call__", "velocity", "energy", "normalized_energy", "energy_gradient", "attention_matrix"):
        expected = one_field_per_beta(betas, x, method, **kwargs)
        torch.testing.assert_close(getattr(batched, method)(x), expected, rtol=1e-10, atol=1e-12)


def test_zero_beta_entries_use_the_limit_energy():
    betas = torch.tensor([0.0, 2.0, 0.0], dtype=torch.float64)
    x = sphere.uniform(6, 3, batch=3, seed=1)
    energy = attention.SelfAttention(betas).energy(x)
    torch.testing.assert_close(energy, one_field_per_beta(betas, x, "energy"))


def test_scalar_tensor_behaves_as_a_float():
    field = attention.SelfAttention(torch.tensor(1.5, dtype=torch.float64))
    assert field.beta == 1.5 and isinstance(field.beta, float)


def test_fused_path_with_a_tensor_of_betas():
    betas = torch.tensor([0.5, 3.0], dtype=torch.float64)
    x = sphere.uniform(16, 4, batch=(2, 3), seed=0)
    Q, K = random_matrix(4, 1), random_matrix(4, 2)
    dense = attention.SelfAttention(betas[:, None], Q=Q, K=K, fused=False)(x)
    fused = attention.SelfAttention(betas[:, None], Q=Q, K=K, fused=True)(x)
    assert (dense - fused).abs().max().item() < 1e-12


def test_measure_field_with_a_tensor_of_betas():
    betas = torch.tensor([1.0, 4.0], dtype=torch.float64)
    tokens = sphere.uniform(5, 3, batch=2, seed=3)
    field = attention.SelfAttention(betas)
    torch.testing.assert_close(field.measure_field(tokens, tokens), field(tokens))


def test_batched_flow_equals_separate_flows():
    """The whole grid advanced as one tensor gives the same trajectories as one run per beta."""
    betas = torch.tensor([0.1, 2.0, 9.0], dtype=torch.float64)
    x0 = sphere.uniform(8, 3, batch=4, seed=2).expand(3, 4, 8, 3)
    t = [0.0, 0.5, 1.0]
    batched = flow.integrate(attention.SelfAttention(betas[:, None]), x0, t, method="layer", dt=0.1)
    separate = torch.stack([flow.integrate(attention.SelfAttention(b), x0[k], t, method="layer", dt=0.1)
                            for k, b in enumerate(betas.tolist())], dim=1)
    torch.testing.assert_close(batched, separate, rtol=0, atol=1e-14)


def test_usa_gradient_identity_holds_entry_by_entry():
    """GLPR (3.11) for every beta of the batch: USA = n grad E_beta."""
    betas = torch.tensor([0.0, 0.7, 3.0], dtype=torch.float64)
    field = attention.SelfAttention(betas, normalized=False)
    x = sphere.uniform(7, 4, batch=3, seed=5)
    torch.testing.assert_close(field(x), 7 * field.energy_gradient(x))


@pytest.mark.parametrize("beta,error,match", [
    (torch.tensor([1.0, math.nan]), ValueError, "beta has non-finite"),
    (torch.tensor([1, 2]), TypeError, "beta must have a floating dtype"),
])
def test_bad_tensor_betas_are_rejected(beta, error, match):
    with pytest.raises(error, match=match):
        attention.SelfAttention(beta)


@pytest.mark.parametrize("shape", [(3,), (3, 1), (2, 1)])
def test_beta_must_not_enlarge_the_batch(shape):
    x = sphere.uniform(4, 3, batch=(2, 3), seed=0)[:, 0]  # batch (2,)
    field = attention.SelfAttention(torch.ones(shape, dtype=torch.float64))
    with pytest.raises(ValueError, match="beta of shape"):
        field(x)


def test_repr_names_the_tensor():
    assert "tensor of shape (3, 1)" in repr(attention.SelfAttention(torch.ones(3, 1, dtype=torch.float64)))
