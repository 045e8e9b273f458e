"""Neuron birth-death (nnips.meanfield.BirthDeath) and its mean-field limit on weighted particles."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nnips import meanfield as mf

UNITS = {"relu-bias": mf.Ridge("relu", bias=True), "tanh": mf.Ridge("tanh"), "rbf": mf.RBF(0.7)}


def problem(unit, n=7, d=2, M=11, batch=(), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((*batch, M, d), generator=g, dtype=torch.float64)
    f = torch.sin(x.sum(-1)) + x[..., 0] ** 2
    c, y = mf.initial(n, unit.dim(d), batch=batch, seed=seed + 1, c_std=1.3, y_std=0.9)
    return c, y, mf.Data(x, f)


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(sorted(UNITS)), n=st.integers(1, 9), batch=st.sampled_from([(), (2,)]),
       seed=st.integers(0, 1000))
def test_potential_is_the_first_variation_of_the_loss(name, n, batch, seed):
    unit = UNITS[name]
    c, y, data = problem(unit, n=n, batch=batch, seed=seed)
    U = mf.potential(c, y, unit, data)
    _, F, K = mf.potentials(c, y, unit, data)
    torch.testing.assert_close(U, -F + K.mean(-1), atol=1e-12, rtol=1e-10)
    w = torch.ones_like(c).requires_grad_(True)  # U_i = n dL/dw_i for the network of weighted particles
    (dw,) = torch.autograd.grad(mf.loss(w * c, y, unit, data).sum(), w)
    torch.testing.assert_close(U, n * dw, atol=1e-12, rtol=1e-10)


def test_potential_at_test_particles_and_its_gradient_is_the_velocity():
    unit = UNITS["tanh"]
    c, y, data = problem(unit, n=5)
    c2, y2 = mf.initial(3, unit.dim(2), seed=9)
    y2.requires_grad_(True)
    c2.requires_grad_(True)
    U = mf.potential(c, y, unit, data, at=(c2, y2))
    gc, gy = torch.autograd.grad(U.sum(), (c2, y2))
    vc, vy = mf.velocity(c, y, unit, data, at=(c2.detach(), y2.detach()))
    torch.testing.assert_close(vc, -gc, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(vy, -gy, atol=1e-12, rtol=1e-10)


def test_birth_death_keeps_the_width_copies_existing_neurons_and_is_seeded():
    unit = UNITS["rbf"]
    c, y, data = problem(unit, n=16, batch=(4,), seed=3)
    runs = [mf.BirthDeath(alpha=50.0, seed=7).resample(c, y, unit, data, dt=0.5) for _ in range(2)]
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    c1, y1 = runs[0]
    assert c1.shape == c.shape and y1.shape == y.shape
    for b in range(4):
        old = {tuple(v) for v in torch.cat([c[b, :, None], y[b]], -1).tolist()}
        assert {tuple(v) for v in torch.cat([c1[b, :, None], y1[b]], -1).tolist()} <= old
    assert not torch.equal(c1, c)


def test_expected_multiplicity_follows_the_reaction_term():
    """E[copies of neuron i after a short time dt] = 1 - alpha dt (U_i - mean U) + O(dt^2)."""
    unit = UNITS["rbf"]
    c, y, data = problem(unit, n=6, seed=4)
    copies = 40_000
    cb, yb = c.expand(copies, -1), y.expand(copies, -1, -1)
    alpha, dt = 1.0, 0.05
    step = mf.BirthDeath(alpha=alpha, seed=11)
    c1, _ = step.resample(cb, yb, unit, data, dt)
    multiplicity = (c1[..., None] == c).double().sum(1).mean(0)
    U = mf.potential(c, y, unit, data)
    predicted = 1 - alpha * dt * (U - U.mean())
    rate = alpha * dt * (U - U.mean()).abs().max()
    standard_error = (2 * rate / copies).sqrt()  # events are rare: the variance of a count is about its rate
    assert ((multiplicity - predicted).abs() < 5 * standard_error + 2 * rate ** 2).all()
    assert (predicted - 1).abs().max() > 10 * standard_error  # the effect is resolved
    assert step.deaths > 0 and step.births > 0


def test_weighted_training_without_reaction_is_gradient_descent():
    unit = UNITS["relu-bias"]
    c, y, data = problem(unit, n=8, batch=(2,), seed=5)
    run = mf.train(c, y, unit, data, dt=0.05, steps=30)
    weighted = mf.train_weighted(c, y, unit, data, dt=0.05, steps=30, alpha=0.0)
    torch.testing.assert_close(weighted.c, run.c, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(weighted.y, run.y, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(weighted.loss, run.loss, atol=1e-12, rtol=1e-12)
    assert torch.equal(weighted.w, torch.ones_like(weighted.w))


def test_weighted_training_keeps_mean_one_weights_and_decreases_the_loss():
    unit = UNITS["rbf"]
    c, y, data = problem(unit, n=12, seed=6)
    run = mf.train_weighted(c, y, unit, data, dt=0.02, steps=200, alpha=5.0, record=range(0, 201, 10))
    torch.testing.assert_close(run.w.mean(-1), torch.ones(21, dtype=torch.float64), atol=1e-12, rtol=0)
    assert (run.loss[1:] - run.loss[:-1]).max().item() <= 0
    torch.testing.assert_close(run.loss[-1], mf.loss(run.w[-1] * run.c[-1], run.y[-1], unit, data))


def page_setting(n, seeds):
    """The page's problem: RBF units with fixed output weights, a teacher with 3/4 of its mass at -2."""
    unit = mf.RBF(alpha=4.0)
    x = torch.linspace(-4, 4, 100, dtype=torch.float64)[:, None]
    teacher = torch.tensor([[-2.0], [2.0]], dtype=torch.float64)
    data = mf.Data(x, mf.output(torch.tensor([1.5, 0.5], dtype=torch.float64), teacher, unit, x))
    c, y = mf.initial(n, 1, batch=seeds, seed=0, y_std=2.0, c_value=1.0)
    return unit, data, c, y


def time_to(run, level):
    below = (run.loss.mean(-1) < level).nonzero()
    return run.t[below[0, 0]].item() if len(below) else float("inf")


def test_birth_death_page_speed_up_and_limit():
    unit, data, c, y = page_setting(64, 4)
    record = range(0, 1001, 5)
    gd = mf.train(c, y, unit, data, dt=0.1, steps=1000, record=record, learn_c=False)
    bd = mf.train(c, y, unit, data, dt=0.1, steps=1000, record=record, learn_c=False,
                  step=mf.BirthDeath(alpha=20.0, seed=1))
    weighted = mf.train_weighted(c, y, unit, data, dt=0.1, steps=200, alpha=20.0, learn_c=False,
                                 record=range(0, 201, 5))
    assert time_to(gd, 5e-3) / time_to(bd, 5e-3) > 10
    assert bd.loss[-1].mean() < 1e-3 < gd.loss[-1].mean()
    left = (bd.y[-1, ..., 0] < 0).double().mean().item()
    assert abs(left - 0.75) < 0.03 and abs((gd.y[-1, ..., 0] < 0).double().mean().item() - 0.75) > 0.1
    ratio = bd.loss[:41].mean(-1).log() - weighted.loss.mean(-1).log()
    assert ratio[1:].abs().max().item() < 0.5  # the birth-death network follows the equation with reaction


@pytest.mark.parametrize("call, error, match", [
    (lambda: mf.BirthDeath(alpha=0.0), ValueError, "alpha must be > 0"),
    (lambda: mf.BirthDeath(seed=-1), ValueError, "seed must be"),
    (lambda: mf.BirthDeath().resample(*problem(UNITS["rbf"])[:2], UNITS["rbf"], problem(UNITS["rbf"])[2], dt=0.0),
     ValueError, "dt must be > 0"),
    (lambda: mf.potential(torch.ones(3), torch.ones(2, 1), UNITS["rbf"], problem(UNITS["rbf"])[2]), ValueError,
     "c must have shape"),
    (lambda: mf.train_weighted(*problem(UNITS["rbf"])[:2], UNITS["rbf"], problem(UNITS["rbf"])[2], dt=0.1,
                               steps=3, alpha=-1.0), ValueError, "alpha must be >= 0"),
    (lambda: mf.train_weighted(*problem(UNITS["rbf"])[:2], UNITS["rbf"], "data", dt=0.1, steps=3, alpha=1.0),
     TypeError, "data must be"),
])
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_birth_death_gap_to_the_limit_equation_falls_with_the_width():
    gaps = []
    for n in (16, 256):
        unit, data, c, y = page_setting(n, 4)
        bd = mf.train(c, y, unit, data, dt=0.1, steps=200, record=range(0, 201, 5), learn_c=False,
                      step=mf.BirthDeath(alpha=20.0, seed=1))
        weighted = mf.train_weighted(c, y, unit, data, dt=0.1, steps=200, alpha=20.0, learn_c=False,
                                     record=range(0, 201, 5))
        gaps.append((bd.loss[1:].mean(-1).log() - weighted.loss[1:].mean(-1).log()).abs().mean().item())
    assert gaps[1] < 0.25 * gaps[0]


def test_the_birth_death_experiment_runs_small_and_resumes(tmp_path, monkeypatch):
    import numpy as np

    from nnips.experiments import beyond, run

    small = ["--widths", "16", "32", "--seeds", "2", "--M", "50", "--steps", "40", "--dt", "0.1",
             "--out", str(tmp_path)]
    summary = np.load(run("birth-death", small))
    assert summary["speed_up"].shape == (2, 3) and summary["gap_to_weighted"].shape == (2,)
    assert (tmp_path / "birth-death" / "birth-death.png").exists()

    def refuse(*args, **kwargs):
        raise AssertionError("a saved unit was recomputed")

    monkeypatch.setattr(beyond.BirthDeathExperiment, "run_unit", refuse)
    run("birth-death", small)
