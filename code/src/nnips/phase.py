r"""Phase diagrams of clustering: :math:`\mathbb P(\langle x_1(t),x_2(t)\rangle\ge1-\delta)` over :math:`(t,\beta)`.

GLPR (arXiv 2312.10794, Section 6.3, Fig. 3) start :math:`n` tokens i.i.d. uniform on
:math:`\mathbb S^{d-1}`, run SA for every inverse temperature :math:`\beta` of a grid, and plot the
probability that two tokens are :math:`\delta`-close at time :math:`t`. Over it they draw the curve
:math:`\{(t,\beta):\gamma_\beta(t)=1-\delta\}` of the equiangular solution, which the transition
approaches as :math:`d` grows (Theorem 6.9). Fig. 5 repeats the experiment with random
:math:`(Q,K,V)`.

Here the whole grid advances as **one batched tensor** of shape ``(n_beta, seeds, n, d)``, with
``beta`` of shape ``(n_beta, 1)`` (see :class:`nnips.attention.SelfAttention`), by the layer scheme
of the authors' code (a residual step and a normalisation, :math:`\Delta t = 0.1`). Book: Chapter 2,
"Phase diagrams"; command line: ``python -m nnips.experiments phase-diagram``.
"""

from __future__ import annotations

import math

import torch

from . import _checks, attention, clusters, equiangular, flow, sphere

__all__ = ["ENSEMBLES", "random_weights", "diagram", "transition_curve"]

#: The random (Q, K, V) ensembles of GLPR Fig. 5, and "identity" (Q = K = V = I, Fig. 3).
ENSEMBLES = {
    "identity": "Q = K = V = I (Fig. 3)",
    "ginibre": "Q, K, V independent real Ginibre (Fig. 5a)",
    "wigner-psd": "Q^T K a GOE (Wigner) matrix, V a Wishart matrix, V >= 0 (Fig. 5b)",
    "ginibre-tied": "Q, K independent real Ginibre, V = Q^T K (Fig. 5c)",
    "wigner-tied": "Q^T K a GOE (Wigner) matrix, V = Q^T K (Fig. 5d)",
}


def random_weights(ensemble, d, seed=0):
    r"""Draw :math:`(Q, K, V)` from one of the :data:`ENSEMBLES` in dimension ``d``.

    With :math:`G` a real Ginibre matrix (i.i.d. :math:`\mathcal N(0, 1/d)` entries, spectrum
    filling the unit disc), :math:`W=(G+G^\top)/\sqrt2` a GOE matrix (semicircle on
    :math:`[-2,2]`) and :math:`GG^\top` a Wishart matrix (spectrum in :math:`[0,4]`):

    - ``"ginibre"``: :math:`Q, K, V` three independent Ginibre matrices;
    - ``"wigner-psd"``: :math:`Q = I`, :math:`K = W`, :math:`V = GG^\top`;
    - ``"ginibre-tied"``: :math:`Q, K` Ginibre, :math:`V = Q^\top K`;
    - ``"wigner-tied"``: :math:`Q = I`, :math:`K = V = W`;
    - ``"identity"``: ``(None, None, None)``.

    Only :math:`Q^\top K` and :math:`V` enter the dynamics. The normalisation by ``d`` keeps the
    spectra of order one as ``d`` grows, so that :math:`\beta` keeps its meaning (GLPR, arXiv
    2312.10794, Fig. 5, describe the ensembles; the scalings here are ours).

    Returns
    -------
    Q, K, V : (d, d) float64 tensors, or None for the identity.
    """
    if ensemble not in ENSEMBLES:
        raise ValueError(f"unknown ensemble {ensemble!r}; valid ensembles: {', '.join(ENSEMBLES)}")
    d = _checks.integer(d, "d", 2)
    if ensemble == "identity":
        return None, None, None
    g = sphere.generator(seed)

    def ginibre():
        return torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)

    if ensemble == "ginibre":
        return ginibre(), ginibre(), ginibre()
    if ensemble == "ginibre-tied":
        Q, K = ginibre(), ginibre()
        return Q, K, Q.T @ K
    G = ginibre()
    W = (G + G.T) / math.sqrt(2)
    if ensemble == "wigner-tied":
        return None, W, W.clone()
    H = ginibre()
    return None, W, H @ H.T


def diagram(d, betas, t, n=32, seeds=64, delta=1e-3, dt=0.1, ensemble="identity", seed=0,
            dtype=torch.float64, device=None, progress=False) -> torch.Tensor:
    r"""Estimate :math:`\mathbb P(\langle x_1(t),x_2(t)\rangle\ge1-\delta)` on a grid of times and betas.

    .. math::
        p(t,\beta) = \frac{1}{S}\sum_{s=1}^{S}\frac{1}{n(n-1)}\#\{i\ne j:
        \langle x^{(s)}_i(t), x^{(s)}_j(t)\rangle\ge1-\delta\}

    over ``S = seeds`` independent uniform starts, each run by SA with the layer scheme
    :math:`x_i\mapsto (x_i+\Delta t\,v_i)/\|\cdot\|` (GLPR, arXiv 2312.10794, Fig. 3 and Fig. 5).
    All betas and seeds form one tensor ``(len(betas), seeds, n, d)``; the same starts are used for
    every beta.

    Parameters
    ----------
    d : int >= 2; betas : 1-D sequence of inverse temperatures; t : 1-D increasing recording times
        starting at 0; n : int >= 2 tokens; seeds : int >= 1 starts per beta; delta : in (0, 2).
    dt : step of the layer scheme (0.1 in the paper).
    ensemble : a key of :data:`ENSEMBLES`; the matrices are drawn once, from ``seed``.
    seed : seeds both the starts and the matrices.
    dtype, device : of the computation (float64 on the CPU by default).

    Returns
    -------
    (len(t), len(betas)) float64 tensor on the CPU.
    """
    d = _checks.integer(d, "d", 2)
    n = _checks.integer(n, "n", 2)
    seeds = _checks.integer(seeds, "seeds", 1)
    seed = _checks.integer(seed, "seed", 0)
    betas = _betas(betas)
    t = _checks.times(t, "t")
    if t[0] != 0:
        raise ValueError(f"t must start at 0, got t[0] = {t[0].item()}")
    delta = _checks.real(delta, "delta", 0.0, strict=True)
    Q, K, V = random_weights(ensemble, d, seed=seed + 1)
    field = attention.SelfAttention(betas[:, None], Q=Q, K=K, V=V)
    x0 = sphere.uniform(n, d, batch=seeds, seed=seed, dtype=dtype, device=device)
    x0 = x0.expand(len(betas), seeds, n, d)
    observe = lambda x: clusters.pair_fraction(x, delta).double().mean(dim=-1).cpu()  # noqa: E731
    return flow.integrate(field, x0, t, method="layer", dt=dt, observe=observe, progress=progress)


def _betas(betas):
    betas = _checks.floating_tensor(torch.as_tensor(betas, dtype=torch.float64), "betas")
    if betas.ndim != 1 or betas.numel() < 1:
        raise ValueError(f"betas must be a non-empty 1-D sequence, got shape {tuple(betas.shape)}")
    return betas


def transition_curve(betas, n, delta=1e-3, normalized=True) -> torch.Tensor:
    r"""The times :math:`t^*(\beta)` at which the equiangular solution reaches :math:`1-\delta`.

    The curve :math:`\Gamma_{\infty,\delta} = \{(t,\beta):\gamma_\beta(t) = 1-\delta\}` drawn over
    the phase diagrams (GLPR, arXiv 2312.10794, Section 6.3 and Theorem 6.9); :math:`\gamma_\beta`
    solves (6.9) for SA or (6.10) for USA from :math:`\gamma(0) = 0`.

    Returns
    -------
    float64 tensor shaped like ``betas``.
    """
    betas = _betas(betas)
    delta = _checks.real(delta, "delta", 0.0, strict=True)
    if delta >= 1:
        raise ValueError(f"delta must lie in (0, 1) for the curve, got {delta}")
    return torch.tensor([equiangular.hitting_time(1 - delta, b, n, normalized=normalized)
                         for b in betas.tolist()], dtype=torch.float64)
