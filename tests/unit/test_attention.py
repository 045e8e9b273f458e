import pytest
import torch
from hypothesis import given, settings, strategies as st

from nnips import attention, flow, sphere

betas = st.floats(min_value=0.0, max_value=8.0)
seeds = st.integers(min_value=0, max_value=2**31 - 1)


def random_matrix(d, seed, heads=None):
    shape = (d, d) if heads is None else (heads, d, d)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) / d**0.5


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 10), d=st.integers(2, 6), beta=betas, seed=seeds, normalized=st.booleans())
def test_field_is_tangent(n, d, beta, seed, normalized):
    x = sphere.uniform(n, d, batch=3, seed=seed)
    v = attention.SelfAttention(beta, normalized=normalized)(x)
    assert v.shape == x.shape
    assert (v * x).sum(-1).abs().max() < 1e-12


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 10), d=st.integers(2, 6), beta=betas, seed=seeds)
def test_sa_rows_are_probability_vectors(n, d, beta, seed):
    A = attention.SelfAttention(beta, K=random_matrix(d, seed)).attention_matrix(sphere.uniform(n, d, seed=seed))
    assert bool((A >= 0).all())
    torch.testing.assert_close(A.sum(-1), torch.ones(n, dtype=torch.float64))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 8), d=st.integers(2, 5), beta=betas, seed=seeds, normalized=st.booleans())
def test_permutation_equivariance(n, d, beta, seed, normalized):
    field = attention.SelfAttention(beta, Q=random_matrix(d, seed), V=random_matrix(d, seed + 1),
                                    normalized=normalized)
    x = sphere.uniform(n, d, seed=seed)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(field(x[perm]), field(x)[perm])


def test_explicit_two_token_field():
    """Two tokens at angle theta under SA: each moves toward the other at speed A_12 sin(theta)."""
    theta, beta = 1.0, 2.0
    x = torch.tensor([[1.0, 0.0], [torch.cos(torch.tensor(theta)), torch.sin(torch.tensor(theta))]],
                     dtype=torch.float64)
    v = attention.SelfAttention(beta)(x)
    a12 = torch.exp(torch.tensor(beta * torch.cos(torch.tensor(theta)).item())) / (
        torch.exp(torch.tensor(beta)) + torch.exp(torch.tensor(beta * torch.cos(torch.tensor(theta)).item())))
    torch.testing.assert_close(v[0], torch.tensor([0.0, (a12 * torch.sin(torch.tensor(theta))).item()],
                                                  dtype=torch.float64))


@pytest.mark.parametrize("beta", [0.0, 0.7, 3.0])
def test_usa_is_n_times_the_gradient_of_the_energy(beta):
    """GLPR (3.11): USA is the gradient ascent x' = n grad E_beta(x) for the round metric."""
    n, d = 7, 4
    field = attention.SelfAttention(beta, normalized=False)
    x = sphere.uniform(n, d, seed=5).requires_grad_(True)
    (grad,) = torch.autograd.grad(field.energy(x), x)
    with torch.no_grad():
        torch.testing.assert_close(field(x), n * sphere.project(x, grad))
        torch.testing.assert_close(field.energy_gradient(x, riemannian=False), grad)


def test_energy_gradient_with_general_matrices_matches_autograd():
    d = 3
    field = attention.SelfAttention(1.3, Q=random_matrix(d, 1, heads=2), K=random_matrix(d, 2, heads=2))
    x = sphere.uniform(6, d, seed=0).requires_grad_(True)
    (grad,) = torch.autograd.grad(field.energy(x), x)
    torch.testing.assert_close(field.energy_gradient(x.detach(), riemannian=False), grad)


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("beta,d", [(0.0, 2), (1.0, 2), (4.0, 3), (9.0, 8)])
def test_energy_is_non_decreasing_along_the_flow(normalized, beta, d):
    """E_beta is a Lyapunov function of SA and USA (GLPR (3.6) and Lemma 3.7)."""
    field = attention.SelfAttention(beta, normalized=normalized)
    x0 = sphere.uniform(16, d, batch=4, seed=11)
    t = torch.linspace(0, 5, 101, dtype=torch.float64)
    dt = 0.01 if normalized else 0.01 * torch.exp(torch.tensor(-beta)).item()
    xs = flow.integrate(field, x0, t if normalized else t * dt / 0.01, method="rk4", dt=dt)
    e = torch.stack([field.energy(x) for x in xs])
    increments = e[1:] - e[:-1]
    assert bool((increments >= -1e-12 * e[1:].abs()).all())
    assert bool((e[-1] > e[0]).all())


def test_energy_of_a_single_cluster_and_normalized_energy():
    beta, n = 3.0, 5
    x = torch.zeros(n, 2, dtype=torch.float64)
    x[:, 0] = 1.0
    field = attention.SelfAttention(beta)
    assert field.energy(x).item() == pytest.approx(torch.exp(torch.tensor(beta)).item() / (2 * beta))
    assert field.normalized_energy(x).item() == pytest.approx(1.0)
    y = sphere.uniform(n, 3, seed=0)
    expected = 2 * beta * torch.exp(torch.tensor(-beta)) * field.energy(y)
    torch.testing.assert_close(field.normalized_energy(y), expected)


def test_energy_overflow_is_reported():
    x = torch.zeros(3, 2, dtype=torch.float64)
    x[:, 0] = 1.0
    with pytest.raises(OverflowError, match="normalized_energy"):
        attention.SelfAttention(800.0).energy(x)


def test_multi_head_is_the_sum_of_heads():
    d, h = 4, 3
    Q, K, V = (random_matrix(d, s, heads=h) for s in (1, 2, 3))
    x = sphere.uniform(9, d, batch=2, seed=0)
    multi = attention.SelfAttention(0.8, Q=Q, K=K, V=V)
    single = sum(attention.SelfAttention(0.8, Q=Q[k], K=K[k], V=V[k]).velocity(x) for k in range(h))
    torch.testing.assert_close(multi.velocity(x), single)
    assert multi.attention_matrix(x).shape == (2, h, 9, 9)


def test_general_matrices_match_the_definition():
    d, n, beta = 3, 5, 1.7
    Q, K, V = (random_matrix(d, s) for s in (4, 5, 6))
    x = sphere.uniform(n, d, seed=2)
    logits = beta * (x @ Q.T) @ (x @ K.T).T
    expected = torch.softmax(logits, -1) @ (x @ V.T)
    torch.testing.assert_close(attention.SelfAttention(beta, Q, K, V).velocity(x), expected)
    usa = torch.exp(logits) / n @ (x @ V.T)
    torch.testing.assert_close(attention.SelfAttention(beta, Q, K, V, normalized=False).velocity(x), usa)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("heads", [None, 2])
def test_fused_path_agrees_with_dense(dtype, tol, heads):
    d = 8
    Q, K, V = (random_matrix(d, s, heads=heads) for s in (1, 2, 3))
    x = sphere.uniform(64, d, batch=2, seed=0, dtype=dtype)
    dense = attention.SelfAttention(2.0, Q, K, V, fused=False)(x)
    fused = attention.SelfAttention(2.0, Q, K, V, fused=True)(x)
    assert (dense - fused).abs().max().item() < tol


def test_layer_step_is_residual_plus_normalisation():
    field = attention.SelfAttention(1.0)
    x = sphere.uniform(6, 3, seed=0)
    y = x + 0.1 * field.velocity(x)
    torch.testing.assert_close(field.layer_step(x, 0.1), y / y.norm(dim=-1, keepdim=True))


def test_field_sum_and_perceptron():
    d = 3
    g = torch.Generator().manual_seed(0)
    W, U, b = torch.randn(d, 5, generator=g), torch.randn(5, d, generator=g), torch.randn(5, generator=g)
    mlp = attention.Perceptron(W.double(), U.double(), b.double())
    sa = attention.SelfAttention(1.0)
    block = sa + mlp
    x = sphere.uniform(7, d, seed=1)
    torch.testing.assert_close(block(x), sa(x) + mlp(x))
    torch.testing.assert_close(block.layer_step(x, 0.1), mlp.layer_step(sa.layer_step(x, 0.1), 0.1))
    expected = torch.relu(x @ U.double().T + b.double()) @ W.double().T
    torch.testing.assert_close(mlp.velocity(x), expected)


@pytest.mark.parametrize("normalized", [True, False])
def test_the_field_depends_only_on_the_empirical_measure(normalized):
    d = 3
    field = attention.SelfAttention(1.5, Q=random_matrix(d, 1), V=random_matrix(d, 2), normalized=normalized)
    x = sphere.uniform(5, d, seed=0)
    torch.testing.assert_close(field.measure_field(x, x), field(x))
    # Doubling token 0 is the measure with weights (2, 1, 1, 1, 1) / 6.
    doubled = torch.cat([x[:1], x])
    w = torch.tensor([2.0, 1, 1, 1, 1], dtype=torch.float64) / 6
    torch.testing.assert_close(field.measure_field(x, x, w), field(doubled)[1:])
    # Duplicating every token leaves the measure, hence the field, unchanged.
    torch.testing.assert_close(field(torch.cat([x, x]))[:5], field(x))


def test_measure_field_rejects_bad_weights():
    x = sphere.uniform(4, 3, seed=0)
    field = attention.SelfAttention(1.0)
    with pytest.raises(ValueError, match="sum to one"):
        field.measure_field(x, x, torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="non-negative"):
        field.measure_field(x, x, torch.tensor([2.0, -1.0, 0.0, 0.0], dtype=torch.float64))
