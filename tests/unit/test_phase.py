"""Phase diagrams (nnips.phase), the phase-diagram command line, and plot.phase_diagram."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from nnips import attention, clusters, equiangular, flow, phase, sphere
from nnips.experiments import run


@pytest.mark.parametrize("ensemble", sorted(phase.ENSEMBLES))
def test_random_weights_have_the_stated_structure(ensemble):
    Q, K, V = phase.random_weights(ensemble, 64, seed=3)
    if ensemble == "identity":
        assert (Q, K, V) == (None, None, None)
        return
    B = (torch.eye(64, dtype=torch.float64) if Q is None else Q).T @ K
    assert V.shape == (64, 64) and V.dtype == torch.float64
    if ensemble.endswith("tied"):
        torch.testing.assert_close(V, B)
    if ensemble.startswith("wigner"):
        torch.testing.assert_close(B, B.T)
        assert 1.6 < torch.linalg.eigvalsh(B).max().item() < 2.4  # semicircle edge at 2
    if ensemble == "wigner-psd":
        assert torch.linalg.eigvalsh(V).min().item() > -1e-12
    if ensemble == "ginibre":
        assert 0.8 < torch.linalg.eigvals(V).abs().max().item() < 1.25  # circular law, radius 1
    again = phase.random_weights(ensemble, 64, seed=3)
    assert all(torch.equal(a, b) for a, b in zip((Q, K, V), again) if a is not None)


def test_unknown_ensemble_is_rejected():
    with pytest.raises(ValueError, match="valid ensembles: identity"):
        phase.random_weights("gaussian", 8)


def test_diagram_equals_a_direct_computation():
    """One batched tensor gives, beta by beta, the pair fraction of separate runs."""
    betas = torch.tensor([0.5, 4.0], dtype=torch.float64)
    t = torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64)
    p = phase.diagram(3, betas, t, n=6, seeds=5, seed=4)
    x0 = sphere.uniform(6, 3, batch=5, seed=4)
    for k, b in enumerate(betas.tolist()):
        xs = flow.integrate(attention.SelfAttention(b), x0, t, method="layer", dt=0.1)
        torch.testing.assert_close(p[:, k], clusters.pair_fraction(xs, 1e-3).mean(dim=-1))


def test_diagram_of_orthonormal_like_high_dimension_matches_the_curve():
    """In d = 256, 8 tokens: p jumps from 0 to 1 across t*(beta) (GLPR, Theorem 6.9)."""
    betas = torch.tensor([1.0], dtype=torch.float64)
    t_star = phase.transition_curve(betas, 8).item()
    t = torch.tensor([0.0, t_star - 0.5, t_star + 0.5], dtype=torch.float64)
    p = phase.diagram(256, betas, t, n=8, seeds=4, dt=0.02)
    assert p[0, 0] == 0 and p[1, 0] == 0 and p[2, 0] == 1


@settings(max_examples=10, deadline=None)
@given(n=st.integers(2, 64), delta=st.floats(1e-6, 0.5))
def test_transition_curve_increases_with_beta_for_sa(n, delta):
    betas = torch.tensor([0.0, 1.0, 3.0, 6.0], dtype=torch.float64)
    curve = phase.transition_curve(betas, n, delta)
    assert bool((curve[1:] > curve[:-1]).all())
    assert curve[0].item() == pytest.approx(equiangular.hitting_time(1 - delta, 0.0, n), rel=1e-9)


@pytest.mark.parametrize("call,error,match", [
    (lambda: phase.diagram(3, [1.0], [0.5, 1.0]), ValueError, "t must start at 0"),
    (lambda: phase.diagram(3, [[1.0]], [0.0, 1.0]), ValueError, "betas must be a non-empty 1-D"),
    (lambda: phase.diagram(1, [1.0], [0.0, 1.0]), ValueError, "d must be"),
    (lambda: phase.diagram(3, [1.0], [0.0, 1.0], seeds=0), ValueError, "seeds must be"),
    (lambda: phase.transition_curve([1.0], 4, delta=1.5), ValueError, "delta must lie in"),
])
def test_bad_input_is_rejected(call, error, match):
    with pytest.raises(error, match=match):
        call()


SMALL = ["--n", "5", "--seeds", "6", "--betas", "0.5", "4", "3", "--T", "1", "--records", "3"]


def test_cli_writes_resumes_and_draws(tmp_path, monkeypatch):
    out = run("phase-diagram", SMALL + ["--dims", "2", "3", "--out", str(tmp_path)])
    saved = np.load(out)
    assert list(saved["panels"]) == ["identity_d2", "identity_d3"]
    assert saved["p_identity_d3"].shape == (3, 3) and saved["curve"].shape == (3,)
    assert (tmp_path / "phase-diagram" / "phase-diagram.png").exists()
    # The panel equals the library computation with the block's seed.
    expected = phase.diagram(3, torch.linspace(0.5, 4, 3, dtype=torch.float64), torch.linspace(0, 1, 3),
                             n=5, seeds=6, seed=0)
    np.testing.assert_allclose(saved["p_identity_d3"], expected.numpy())

    # A second run loads every unit instead of recomputing it.
    from nnips.experiments import phase_diagram

    def refuse(*args, **kwargs):
        raise AssertionError("a saved unit was recomputed")

    monkeypatch.setattr(phase_diagram.PhaseDiagram, "run_unit", refuse)
    run("phase-diagram", SMALL + ["--dims", "2", "3", "--out", str(tmp_path)])

    # The book's figure is drawn from the saved results.
    import matplotlib.pyplot as plt

    from nnips import plot

    fig, ax = plt.subplots()
    plot.phase_diagram(ax, saved["t"], saved["betas"], saved["p_identity_d2"], curve=saved["curve"])
    plt.close(fig)


def test_cli_blocks_average_to_the_panel(tmp_path):
    """A tiny memory budget cuts the seeds into blocks; the summary weights them by size."""
    # One seed is 3 betas x 5 tokens x 3 coordinates x 8 bytes = 360 bytes: a 360-byte budget fits one.
    out = run("phase-diagram", SMALL + ["--dims", "3", "--max-state-gb", "3.6e-7", "--out", str(tmp_path)])
    units = sorted((tmp_path / "phase-diagram" / "units").glob("*.npz"))
    assert len(units) == 6
    blocks = [np.load(u) for u in units]
    mean = sum(b["p"] * b["seeds"] for b in blocks) / sum(b["seeds"] for b in blocks)
    np.testing.assert_allclose(np.load(out)["p_identity_d3"], mean)


def test_cli_figure_5_runs_every_ensemble(tmp_path):
    out = run("phase-diagram", SMALL + ["--figure", "5", "--dims", "4", "--draws", "2", "--out", str(tmp_path)])
    saved = np.load(out)
    assert sorted(saved["panels"]) == sorted(f"{e}_d4" for e in phase.ENSEMBLES if e != "identity")
    assert all(0 <= saved[f"p_{p}"].min() and saved[f"p_{p}"].max() <= 1 for p in saved["panels"])


def test_cli_refuses_to_mix_settings(tmp_path):
    run("phase-diagram", SMALL + ["--dims", "2", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="other settings"):
        run("phase-diagram", SMALL[:-2] + ["--records", "4", "--dims", "2", "--out", str(tmp_path)])


def test_plot_phase_diagram_checks_shapes():
    import matplotlib.pyplot as plt

    from nnips import plot

    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="p must have shape"):
        plot.phase_diagram(ax, np.arange(3), np.arange(2), np.zeros((2, 3)))
    plt.close(fig)
