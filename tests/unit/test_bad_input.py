"""Every public function rejects bad input with an error that names the argument."""

import math

import pytest
import torch

from nnips import attention, clusters, equiangular, flow, sphere

X = sphere.uniform(4, 3, seed=0)
FIELD = attention.SelfAttention(1.0)


@pytest.mark.parametrize("call,error,match", [
    (lambda: sphere.uniform(0, 3), ValueError, "n must be"),
    (lambda: sphere.uniform(4, 1), ValueError, "d must be"),
    (lambda: sphere.uniform(4.5, 3), TypeError, "n must be"),
    (lambda: sphere.uniform(4, 3, seed=-1), ValueError, "seed"),
    (lambda: sphere.orthonormal(5, 3), ValueError, "d >= n"),
    (lambda: sphere.equiangular(3, 3, 1.0), ValueError, "rho"),
    (lambda: sphere.normalize(torch.zeros(2, 3)), ValueError, "zero row"),
    (lambda: sphere.in_open_hemisphere(2 * X), ValueError, "unit sphere"),
    (lambda: attention.SelfAttention(math.nan), ValueError, "beta"),
    (lambda: attention.SelfAttention("1"), TypeError, "beta"),
    (lambda: attention.SelfAttention(1.0, Q=torch.eye(3), K=torch.eye(4)), ValueError, "dimension d"),
    (lambda: attention.SelfAttention(1.0, Q=torch.ones(3, 4)), ValueError, "Q must have shape"),
    (lambda: attention.SelfAttention(1.0, Q=torch.eye(3).expand(2, 3, 3), V=torch.eye(3).expand(3, 3, 3)),
     ValueError, "heads"),
    (lambda: attention.SelfAttention(1.0, V=torch.eye(3, dtype=torch.int64)), TypeError, "V must have a floating"),
    (lambda: attention.SelfAttention(1.0, normalized=0), TypeError, "normalized"),
    (lambda: attention.SelfAttention(1.0, normalized=False, fused=True), ValueError, "fused"),
    (lambda: attention.SelfAttention(1.0, Q=torch.eye(4)).attention_matrix(X), ValueError, "dimension"),
    (lambda: FIELD.energy(X * 1.1), ValueError, "unit sphere"),
    (lambda: attention.Perceptron(torch.ones(3, 2), torch.ones(3, 3), torch.ones(3)), ValueError, "shapes"),
    (lambda: flow.integrate(FIELD, X, [0.0, 1.0], dt=0.0), ValueError, "dt must be > 0"),
    (lambda: flow.integrate(FIELD, X, [0.0, 1.0], dt=-1.0), ValueError, "dt must be > 0"),
    (lambda: flow.integrate(FIELD, X, [0.0, 1.0], method="rk45"), ValueError, "valid methods: adaptive, euler"),
    (lambda: flow.integrate(FIELD, X, [1.0, 0.0]), ValueError, "t must be strictly increasing"),
    (lambda: flow.integrate(FIELD, X, [[0.0, 1.0]]), ValueError, "1-D"),
    (lambda: flow.integrate(FIELD, X * 2, [0.0, 1.0]), ValueError, "x0 must lie on the unit sphere"),
    (lambda: flow.integrate(FIELD, torch.full((4, 3), math.nan), [0.0, 1.0]), ValueError, "x0 has non-finite"),
    (lambda: flow.integrate(FIELD, torch.ones(4, 1), [0.0, 1.0]), ValueError, "d >= 2"),
    (lambda: flow.integrate(FIELD, torch.ones(0, 3), [0.0, 1.0]), ValueError, "n >= 1"),
    (lambda: flow.integrate(FIELD, torch.ones(3), [0.0, 1.0]), ValueError, r"\(\.\.\., n, d\)"),
    (lambda: flow.integrate(FIELD, X.long(), [0.0, 1.0]), TypeError, "x0 must have a floating dtype"),
    (lambda: flow.integrate("field", X, [0.0, 1.0]), TypeError, "field must be callable"),
    (lambda: flow.integrate(FIELD, X, [0.0, 1.0], method="adaptive", rtol=0.0), ValueError, "rtol"),
    (lambda: flow.log_times(0.0, 1.0, 5), ValueError, "t_min"),
    (lambda: equiangular.gamma([0.0, 1.0], 1.0, 1), ValueError, "n must be"),
    (lambda: equiangular.gamma([-1.0, 1.0], 1.0, 3), ValueError, "t must be >= 0"),
    (lambda: equiangular.gamma([0.0, 1.0], 1.0, 3, rho0=1.0), ValueError, "rho0"),
    (lambda: equiangular.hitting_time(1.0, 1.0, 3), ValueError, "level"),
    (lambda: clusters.pair_fraction(X, 0.0), ValueError, "delta"),
    (lambda: clusters.count(X, 3.0), ValueError, "delta"),
    (lambda: clusters.min_inner_product(X, torch.ones(2)), ValueError, "w must have"),
])
def test_bad_input_raises_a_named_error(call, error, match):
    with pytest.raises(error, match=match):
        call()
