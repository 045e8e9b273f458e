r"""Sinkformers: self-attention with doubly stochastic (Sinkhorn-normalised) attention matrices.

Sander, Ablin, Blondel and Peyre, "Sinkformers: Transformers with doubly stochastic attention"
(AISTATS 2022, arXiv 2110.11773) replace the row normalisation of softmax attention by Sinkhorn's
algorithm, which scales rows and columns alternately until both sum to one. On the sphere this
gives the particle system

.. math::
    \dot x_i = P^\perp_{x_i}\sum_{j=1}^n A_{ij}\,Vx_j,\qquad A = \operatorname{diag}(e^{f})\,
    \big(e^{\beta\langle Qx_i,Kx_j\rangle}/n\big)_{ij}\,\operatorname{diag}(e^{g}),\qquad
    A\mathbf 1 = \mathbf 1,\ A^\top\mathbf 1=\mathbf 1,

the subject of :class:`SinkhornAttention`. With a symmetric kernel it is a gradient flow (book,
Chapter 4, "Sinkformers"): the energy :math:`F=\frac{1}{\beta n}\sum_i f_i` decreases along it.
"""

from __future__ import annotations

import math

import torch

from . import _checks
from .attention import SelfAttention
from .sphere import project

__all__ = ["sinkhorn", "SinkhornAttention"]


def _log_weights(weights, scores):
    n = scores.shape[-1]
    if weights is None:
        return torch.full(scores.shape[:-1], -math.log(n), dtype=scores.dtype, device=scores.device)
    w = _checks.floating_tensor(weights, "weights").to(dtype=scores.dtype, device=scores.device)
    if w.shape[-1] != n or bool((w <= 0).any()):
        raise ValueError(f"weights must be positive with last dimension n = {n}, got shape {tuple(w.shape)}")
    if not torch.allclose(w.sum(-1), torch.ones((), dtype=w.dtype, device=w.device)):
        raise ValueError("weights must sum to one (a probability measure)")
    return torch.log(w).expand(scores.shape[:-1])


def sinkhorn(scores, weights=None, tol=1e-12, max_iter=10_000, potentials=False, symmetric=None):
    r"""Sinkhorn's algorithm: the doubly stochastic matrix :math:`A_{ij}=w_j\,e^{f_i+S_{ij}+g_j}`.

    Finds potentials :math:`f, g` such that

    .. math:: \sum_j w_j e^{f_i+S_{ij}+g_j} = 1 \ \ \text{(rows)},\qquad
              \sum_i w_i e^{f_i+S_{ij}+g_j} = 1 \ \ \text{(columns)},

    by alternately solving the column and the row equations (log-domain updates, Peyre and Cuturi,
    "Computational Optimal Transport", arXiv 1803.00567, Chapter 4; Sander et al., arXiv
    2110.11773). With uniform weights :math:`w_j=1/n`, :math:`A` has rows and columns summing to
    one; :math:`w_iA_{ij}` is the entropic optimal transport plan between :math:`\mu=\sum_iw_i\delta_i`
    and itself for the cost :math:`-S_{ij}`. The first row update alone is the softmax. Stops when
    the column sums are within ``tol`` of one (the row sums are exact after each row update).

    For a symmetric :math:`S` the solution has :math:`f=g`, and the averaged fixed-point iteration
    :math:`f\leftarrow\frac12\big(f-\log\sum_jw_je^{S_{ij}+f_j}\big)` is used instead: its
    linearisation is :math:`\frac12(I-P)` with :math:`P` a stochastic matrix, so it stays fast when the
    tokens form well-separated clusters, where the alternating updates slow down to a crawl (the
    relative scale of two nearly decoupled blocks is then almost undetermined). It stops when the
    row (equivalently, column) sums are within ``tol`` of one.

    Parameters
    ----------
    scores : (..., n, n) tensor :math:`S`, e.g. :math:`\beta\langle Qx_i, Kx_j\rangle`; leading dimensions
        are a batch.
    weights : None (uniform) or (..., n) tensor of positive masses summing to one.
    tol : float > 0; max_iter : int >= 1.
    potentials : if True, also return ``f`` and ``g``, each of shape (..., n).
    symmetric : None (detect: ``S`` equal to its transpose up to 1e-12 relative), True or False.

    Returns
    -------
    ``A`` of shape (..., n, n), or ``(A, f, g)``.

    Raises
    ------
    RuntimeError if the column sums are not within ``tol`` after ``max_iter`` iterations.

    Examples
    --------
    >>> A = sinkhorn(torch.tensor([[2.0, 0.0], [1.0, 1.0]], dtype=torch.float64))
    >>> [round(v, 6) for v in A.sum(0).tolist() + A.sum(1).tolist()]
    [1.0, 1.0, 1.0, 1.0]
    """
    scores = _checks.floating_tensor(scores, "scores")
    if scores.ndim < 2 or scores.shape[-1] != scores.shape[-2]:
        raise ValueError(f"scores must have shape (..., n, n), got {tuple(scores.shape)}")
    tol = _checks.real(tol, "tol", 0.0, strict=True)
    max_iter = _checks.integer(max_iter, "max_iter", 1)
    lw = _log_weights(weights, scores)
    if symmetric is None:
        scale = scores.abs().max().item() or 1.0
        symmetric = bool(((scores - scores.mT).abs() <= 1e-12 * scale).all())
    if symmetric:
        return _symmetric_sinkhorn(0.5 * (scores + scores.mT), lw, tol, max_iter, potentials)
    f = torch.zeros_like(lw)
    g = -torch.logsumexp(lw.unsqueeze(-1) + scores, dim=-2)
    for _ in range(max_iter):
        f = -torch.logsumexp(scores + (lw + g).unsqueeze(-2), dim=-1)  # rows sum to one
        g_next = -torch.logsumexp(scores + (lw + f).unsqueeze(-1), dim=-2)
        # The column sums are exp(g - g_next): one evaluation serves as test and as next update.
        error = (torch.exp(g - g_next) - 1).abs().max().item()
        if error <= tol:
            break
        g = g_next
    else:
        raise RuntimeError(f"Sinkhorn did not reach tol = {tol:g} in max_iter = {max_iter} iterations "
                           f"(column error {error:.2e}); raise max_iter or lower beta")
    A = torch.exp(f.unsqueeze(-1) + scores + (lw + g).unsqueeze(-2))
    return (A, f, g) if potentials else A


def _symmetric_sinkhorn(scores, lw, tol, max_iter, potentials):
    """The averaged iteration for symmetric scores; see :func:`sinkhorn`."""
    f = -0.5 * torch.logsumexp(scores + lw.unsqueeze(-2), dim=-1)
    for _ in range(max_iter):
        update = -torch.logsumexp(scores + (lw + f).unsqueeze(-2), dim=-1)
        # The row sums are exp(f - update): the test costs nothing more than the iteration.
        error = (torch.exp(f - update) - 1).abs().max().item()
        if error <= tol:
            break
        f = 0.5 * (f + update)
    else:
        raise RuntimeError(f"Sinkhorn did not reach tol = {tol:g} in max_iter = {max_iter} iterations "
                           f"(row error {error:.2e}); raise max_iter or lower beta")
    A = torch.exp(f.unsqueeze(-1) + scores + (lw + f).unsqueeze(-2))
    return (A, f, f) if potentials else A


class SinkhornAttention(SelfAttention):
    r"""The Sinkformer field on the sphere: attention normalised by :func:`sinkhorn` (rows and columns).

    .. math::
        \dot x_i = P^\perp_{x_i}\sum_j A_{ij}Vx_j,\qquad A=\mathrm{sinkhorn}\big(\beta\langle Qx_i,Kx_j\rangle\big)

    (Sander, Ablin, Blondel, Peyre, arXiv 2110.11773, with the tokens on the sphere as in GLPR,
    arXiv 2312.10794, Remark 3.5). Same parameters as :class:`nnips.attention.SelfAttention`
    (minus ``normalized`` and ``fused``), plus the tolerance and iteration cap of :func:`sinkhorn`.

    Examples
    --------
    The attention matrix is doubly stochastic:

    >>> from nnips import sphere
    >>> A = SinkhornAttention(2.0).attention_matrix(sphere.uniform(5, 3, seed=0))
    >>> round((A.sum(0) - 1).abs().max().item(), 9), round((A.sum(1) - 1).abs().max().item(), 9)
    (0.0, 0.0)
    """

    def __init__(self, beta, Q=None, K=None, V=None, tol=1e-10, max_iter=10_000):
        super().__init__(beta, Q=Q, K=K, V=V, normalized=True, fused=False)
        if isinstance(self.beta, torch.Tensor):
            raise TypeError("SinkhornAttention takes one float beta, not a tensor of betas")
        self.tol = _checks.real(tol, "tol", 0.0, strict=True)
        self.max_iter = _checks.integer(max_iter, "max_iter", 1)

    def _attention(self, x):
        return sinkhorn(self._logits(x), tol=self.tol, max_iter=self.max_iter)

    def measure_field(self, points, tokens, weights=None) -> torch.Tensor:
        r"""The Sinkformer field :math:`\mathcal X[\mu]` of :math:`\mu=\sum_jw_j\delta_{y_j}` at any points.

        With the potential :math:`g` of :func:`sinkhorn` on the atoms,

        .. math:: \mathcal X[\mu](x) = P^\perp_x\frac{\sum_j w_je^{g_j}e^{\beta\langle Qx,Ky_j\rangle}Vy_j}
                  {\sum_j w_je^{g_j}e^{\beta\langle Qx,Ky_j\rangle}},

        the softmax field of the reweighted measure :math:`\propto e^{g}\mu`: Sinkhorn attention is
        softmax attention to a measure in which crowded regions (small :math:`g`) weigh less.
        """
        if self.heads is not None:
            raise ValueError("measure_field of SinkhornAttention takes a single head")
        tokens = _checks.points(tokens, "tokens")
        self._check_dimension(tokens)
        scores = self._logits(tokens)
        _, _, g = sinkhorn(scores, weights, tol=self.tol, max_iter=self.max_iter, potentials=True)
        reweighted = torch.softmax(_log_weights(weights, scores) + g, dim=-1)
        return super().measure_field(points, tokens, reweighted)

    def _symmetric_kernel(self):
        if self.heads is not None:
            raise ValueError("the Sinkformer energy is defined for a single head")
        if self.B is not None and not torch.allclose(self.B, self.B.mT):
            raise ValueError("the Sinkformer energy needs a symmetric kernel: Q^T K must be symmetric")
        if self.beta <= 0:
            raise ValueError(f"the Sinkformer energy needs beta > 0, got {self.beta}")

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        r"""The energy :math:`F=\frac1{\beta n}\sum_i\bar f_i` that the flow decreases, shape ``x.shape[:-2]``.

        Here :math:`\bar f=(f+g)/2` is the symmetric Sinkhorn potential, :math:`A_{ij}=e^{\bar f_i+\bar f_j}
        e^{\beta\langle x_i,Bx_j\rangle}/n`, and :math:`F[\mu]=\frac12\mathrm{OT}_{1/\beta}(\mu,\mu)`
        is half the entropic optimal transport cost of :math:`\mu` to itself for the cost
        :math:`-\langle x, By\rangle` and regularisation :math:`1/\beta`. For :math:`B=Q^\top K`
        symmetric and :math:`V=B`, :math:`\dot x=-n\nabla F(x)` (book, Chapter 4,
        "Sinkformers", where it is proved; Sander et al., arXiv 2110.11773, show that Sinkformers
        are Wasserstein gradient flows). For :math:`B=I` it is at least :math:`-\tfrac12`, with
        equality exactly at one cluster.
        """
        x = _checks.points(x, "x")
        self._check_dimension(x)
        self._symmetric_kernel()
        _, f, g = sinkhorn(self._logits(x), tol=self.tol, max_iter=self.max_iter, potentials=True)
        return ((f + g) / 2).mean(-1) / self.beta

    def energy_gradient(self, x: torch.Tensor, riemannian: bool = True) -> torch.Tensor:
        r"""The gradient :math:`\nabla_{x_k}F=-\frac1n\sum_j A_{kj}\,Bx_j` of :meth:`energy`, shape (..., n, d).

        It follows from the envelope theorem applied to the dual of the entropic transport problem
        (book, Chapter 4, "Sinkformers"); with ``riemannian`` it is projected on the tangent spaces.
        """
        x = _checks.points(x, "x")
        self._check_dimension(x)
        self._symmetric_kernel()
        B = self._eye_or_cast("B", x)
        grad = -(self._attention(x) @ x @ B.mT) / x.shape[-2]
        return project(x, grad) if riemannian else grad

    def normalized_energy(self, x):
        raise NotImplementedError("SinkhornAttention has its own energy F (see energy); E_beta does not apply")

    def __repr__(self):
        mats = "" if self.B is None and self.V is None else ", general Q,K,V"
        heads = "" if self.heads is None else f", heads={self.heads}"
        return f"SinkhornAttention(beta={self.beta}{heads}{mats})"
