import math

import pytest
import scipy.linalg
import torch

from nnips import control, rates


def linear_theta(M):
    """sigma = identity with W A = M and b = 0 gives the linear ODE x' = M x."""
    d = M.shape[0]
    return lambda t: (M, torch.eye(d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64))


def test_linear_flow_map_is_the_matrix_exponential():
    M = torch.tensor([[0.0, 1.0], [-2.0, -0.3]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0], [0.3, -0.5]], dtype=torch.float64)
    xs = control.flow_map(linear_theta(M), x, [0.0, 1.0, 2.5], activation=lambda z: z)
    for k, t in enumerate([0.0, 1.0, 2.5]):
        expected = x @ torch.from_numpy(scipy.linalg.expm(t * M.numpy())).T
        torch.testing.assert_close(xs[k], expected, atol=1e-9, rtol=0)


def test_linear_resnet_is_a_matrix_power():
    M = torch.tensor([[0.0, 1.0], [-2.0, -0.3]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    L, T = 7, 1.4
    net = control.ResNet.from_function(linear_theta(M), T, L, activation=lambda z: z)
    step = torch.eye(2, dtype=torch.float64) + (T / L) * M
    torch.testing.assert_close(net(x), x @ torch.linalg.matrix_power(step, L).T)


def smooth_theta(seed, d=2, m=6):
    g = torch.Generator().manual_seed(seed)
    W0, W1 = torch.randn(2, d, m, generator=g, dtype=torch.float64)
    A0, A1 = torch.randn(2, m, d, generator=g, dtype=torch.float64)
    b0, b1 = torch.randn(2, m, generator=g, dtype=torch.float64)
    return lambda t: (W0 * math.cos(t) + W1 * math.sin(t), A0 * math.cos(t) + A1 * math.sin(t),
                      b0 * math.cos(t) + b1 * math.sin(t))


def test_resnet_converges_to_the_flow_map_at_order_one():
    theta = smooth_theta(1)
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ref = control.flow_map(theta, x, [0.0, 1.0])[-1]
    layers = [16, 32, 64, 128]
    errors = [(control.ResNet.from_function(theta, 1.0, L)(x) - ref).abs().max().item() for L in layers]
    assert rates.power_law(layers, errors).slope == pytest.approx(-1, abs=0.1)


def test_resnet_states_and_gradients():
    net = control.ResNet.from_function(smooth_theta(0), 2.0, 5)
    x = torch.zeros(3, 2, dtype=torch.float64)
    states = net(x, return_states=True)
    assert states.shape == (6, 3, 2) and torch.equal(states[0], x)
    net(x).sum().backward()
    assert net.W.grad is not None and net.W.grad.shape == net.W.shape


def test_winding_numbers():
    angles = torch.linspace(0, 2 * math.pi, 50, dtype=torch.float64)[:-1]
    circle = torch.stack([angles.cos(), angles.sin()], -1)
    points = torch.tensor([[0.0, 0.0], [0.5, 0.2], [2.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(control.winding_number(circle, points),
                               torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64), atol=1e-12, rtol=0)
    assert control.winding_number(circle.flip(0), points[:1]).item() == pytest.approx(-1)


def test_bad_input():
    with pytest.raises(ValueError, match="A must be"):
        control.ResNet(torch.ones(3, 2, 4), torch.ones(3, 2, 4), torch.ones(3, 4), T=1.0)
    with pytest.raises(ValueError, match="T must be > 0"):
        control.ResNet(torch.ones(3, 2, 4), torch.ones(3, 4, 2), torch.ones(3, 4), T=0.0)
    with pytest.raises(ValueError, match="L must be"):
        control.ResNet.from_function(smooth_theta(0), 1.0, 0)
    with pytest.raises(ValueError, match="curve must have shape"):
        control.winding_number(torch.ones(2, 2), torch.ones(1, 2))
