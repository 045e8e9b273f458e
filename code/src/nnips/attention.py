r"""Self-attention as a vector field on :math:`(\mathbb S^{d-1})^n`: tokens are particles.

The full model of Geshkovski, Letrouit, Polyanskiy and Rigollet, "A mathematical perspective on
Transformers" (arXiv 2312.10794, eqs. (2.3)-(2.8)), is

.. math::
    \dot x_i = P^\perp_{x_i}\Big(\sum_{h}\frac{1}{Z_{\beta,i}^h}\sum_{j=1}^n
    e^{\beta\langle Q_h x_i, K_h x_j\rangle} V_h x_j \;+\; W(Ux_i+b)_+\Big),
    \qquad Z^h_{\beta,i} = \sum_{k=1}^n e^{\beta\langle Q_h x_i, K_h x_k\rangle},

with SA for :math:`Q=K=V=I_d` and USA when :math:`Z_{\beta,i}` is replaced by ``n``.

Each field splits into the *residual branch* ``velocity(x)`` (what a Transformer sublayer adds to
its input) and the projection :math:`P^\perp_x` onto the tangent space; ``field(x)`` is the
projected velocity, the right-hand side of the ODE. ``field.layer_step(x, dt)`` is one post-LN
residual layer, ``normalize(x + dt * velocity(x))``. Book: Chapter 1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import _checks
from .sphere import normalize, project

__all__ = ["Field", "FieldSum", "SelfAttention", "Perceptron", "RescaledUSA"]


class Field:
    """A vector field on configurations of ``n`` points on the sphere.

    Subclasses define ``velocity(x)``, the unprojected residual branch; calling the field returns
    its tangent projection. Fields add: ``attention + mlp`` is the field of a full Transformer block.
    """

    def velocity(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return project(x, self.velocity(x))

    def layer_step(self, x: torch.Tensor, dt: float) -> torch.Tensor:
        r"""One residual layer followed by normalisation: :math:`x\mapsto (x+\Delta t\,v(x))/\|\cdot\|`."""
        y = x + dt * self.velocity(x)
        return y / y.norm(dim=-1, keepdim=True)

    def __add__(self, other: "Field") -> "FieldSum":
        if not isinstance(other, Field):
            return NotImplemented
        return FieldSum(self, other)


class FieldSum(Field):
    """The sum of several fields; its layer step applies them one after the other (Lie-Trotter).

    A Transformer block is exactly this splitting: an attention sublayer and an MLP sublayer, each
    followed by layer normalisation (GLPR, arXiv 2312.10794, Section 2).
    """

    def __init__(self, *terms: Field):
        self.terms = tuple(t for term in terms for t in (term.terms if isinstance(term, FieldSum) else (term,)))

    def velocity(self, x):
        return sum(term.velocity(x) for term in self.terms)

    def layer_step(self, x, dt):
        for term in self.terms:
            x = term.layer_step(x, dt)
        return x

    def __repr__(self):
        return " + ".join(repr(term) for term in self.terms)


def _matrix_stack(matrices: dict, d_hint: int | None):
    """Validate the optional Q, K, V and return them with the common dimension and head count."""
    given = {name: M for name, M in matrices.items() if M is not None}
    dims = {_checks.floating_tensor(M, name).shape[-1] for name, M in given.items()}
    if len(dims) > 1:
        raise ValueError(f"Q, K, V must share the dimension d, got shapes "
                         f"{ {name: tuple(torch.as_tensor(M).shape) for name, M in given.items()} }")
    d = dims.pop() if dims else d_hint
    checked = {name: _checks.square_matrices(M, name, d).detach().to(torch.float64)
               for name, M in given.items()}
    heads = {M.shape[0] for M in checked.values() if M.ndim == 3}
    if len(heads) > 1:
        raise ValueError(f"Q, K, V must have the same number of heads, got {sorted(heads)}")
    return checked, d, (heads.pop() if heads else None)


class SelfAttention(Field):
    r"""The self-attention field, SA (softmax) or USA (``normalized=False``), one or several heads.

    .. math::
        v_i = \sum_h \sum_j A^h_{ij} V_h x_j, \qquad
        A^h_{ij} = \frac{e^{\beta\langle Q_h x_i, K_h x_j\rangle}}{Z^h_{\beta,i}}
        \ \text{(SA)}\quad\text{or}\quad \frac{e^{\beta\langle Q_h x_i, K_h x_j\rangle}}{n}\ \text{(USA)},

    and ``field(x)`` returns :math:`\dot x_i = P^\perp_{x_i} v_i` (GLPR, arXiv 2312.10794, eqs.
    (2.3)-(2.7)).

    Parameters
    ----------
    beta : float, inverse temperature :math:`\beta` (any real; the theory mostly takes beta >= 0);
        or a tensor of betas, one per system of a batch. A tensor ``beta`` broadcasts against the
        *batch* dimensions ``x.shape[:-2]``: with ``x`` of shape ``(n_beta, seeds, n, d)`` and
        ``beta`` of shape ``(n_beta, 1)``, row ``k`` of the batch evolves at inverse temperature
        ``beta[k]``, so that a whole grid of betas and seeds advances as one tensor (the phase
        diagrams of GLPR, Fig. 3). Broadcasting must reproduce ``x.shape[:-2]`` (it may not enlarge
        the batch); a 0-d tensor behaves as a float.
    Q, K, V : None (the identity) or a (d, d) tensor, or (heads, d, d) for multi-head attention.
    normalized : bool, True for SA (softmax rows), False for USA (rows divided by n).
    fused : "auto", True or False. The fused path computes the SA step with
        ``torch.nn.functional.scaled_dot_product_attention`` (flash / memory-efficient kernels on
        CUDA, O(n) memory). "auto" uses it for SA on CUDA. On CUDA in float32 the kernels agree with
        the dense path to about 1e-6 relative; in bfloat16 to about 1e-2 (8 mantissa bits).

    Examples
    --------
    Two antipodal tokens do not move: the field vanishes.

    >>> x = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    >>> SelfAttention(beta=1.0)(x).abs().max().item()
    0.0
    """

    def __init__(self, beta, Q=None, K=None, V=None, normalized=True, fused="auto"):
        self.beta = _beta(beta)
        mats, self.d, self.heads = _matrix_stack({"Q": Q, "K": K, "V": V}, None)
        if not isinstance(normalized, bool):
            raise TypeError(f"normalized must be True (SA) or False (USA), got {normalized!r}")
        if fused not in ("auto", True, False):
            raise ValueError(f"fused must be 'auto', True or False, got {fused!r}")
        if fused is True and not normalized:
            raise ValueError("fused=True needs normalized=True: the fused kernel computes softmax attention")
        self.normalized = normalized
        self.fused = fused
        self.Q, self.K, self.V = mats.get("Q"), mats.get("K"), mats.get("V")
        # B = Q^T K is all the logits need: <Q x_i, K x_j> = x_i^T B x_j.
        self.B = None if self.Q is None and self.K is None else self._eye_or(self.Q).mT @ self._eye_or(self.K)
        self._cache = {}

    def _eye_or(self, M):
        return torch.eye(self.d, dtype=torch.float64) if M is None else M

    def _cast(self, name, x):
        """The matrix ``name`` in the dtype and on the device of ``x`` (cached)."""
        M = getattr(self, name)
        if M is None:
            return None
        key = (name, x.dtype, x.device)
        if key not in self._cache:
            self._cache[key] = M.to(dtype=x.dtype, device=x.device)
        return self._cache[key]

    def _check_dimension(self, x):
        if self.d is not None and x.shape[-1] != self.d:
            raise ValueError(f"x has dimension d = {x.shape[-1]} but Q, K, V are {self.d} x {self.d}")

    def _heads(self, x):
        """Insert a head axis when the field has several heads: (..., n, d) -> (..., 1, n, d)."""
        return x if self.heads is None else x.unsqueeze(-3)

    def _beta_for(self, x):
        """beta as a float, or as a tensor shaped to multiply (..., [heads,] n, m) arrays built from ``x``."""
        if not isinstance(self.beta, torch.Tensor):
            return self.beta
        batch = x.shape[:-2]
        try:
            fits = torch.broadcast_shapes(self.beta.shape, batch) == batch
        except RuntimeError:
            fits = False
        if not fits:  # broadcasting must not enlarge the batch: (3, 1) against (3,) would make it (3, 3)
            raise ValueError(f"beta of shape {tuple(self.beta.shape)} does not broadcast to the batch "
                             f"dimensions {tuple(batch)} of x (beta pairs with x.shape[:-2])")
        key = ("beta", x.dtype, x.device)
        if key not in self._cache:
            self._cache[key] = self.beta.to(dtype=x.dtype, device=x.device)
        b = self._cache[key]
        return b[..., None, None] if self.heads is None else b[..., None, None, None]

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        r"""The scores :math:`\beta\langle Q x_i, K x_j\rangle`, shape (..., [heads,] n, n)."""
        xh = self._heads(x)
        B = self._cast("B", x)
        # Scale the n x d queries rather than the n x n scores: one pass less over n^2 numbers.
        beta = self._beta_for(x)
        queries = beta * xh if B is None else (beta * xh) @ B
        return queries @ xh.mT

    def attention_matrix(self, x: torch.Tensor) -> torch.Tensor:
        r"""The attention matrix :math:`A_{ij}`, shape (..., n, n), or (..., heads, n, n) for several heads.

        Rows sum to one for SA. For USA the entries are :math:`e^{\beta\langle Qx_i,Kx_j\rangle}/n`.
        """
        x = _checks.points(x, "x")
        self._check_dimension(x)
        return self._attention(x)

    def _attention(self, x):
        s = self._logits(x)
        if self.normalized:
            return torch.softmax(s, dim=-1)
        return torch.exp(s) / x.shape[-2]

    def _values(self, x):
        V = self._cast("V", x)
        xh = self._heads(x)
        return xh if V is None else xh @ V.mT

    def measure_field(self, points, tokens, weights=None) -> torch.Tensor:
        r"""The field :math:`\mathcal X[\mu]` of the measure :math:`\mu=\sum_j w_j\delta_{y_j}`, at any points.

        .. math::
            \mathcal X[\mu](x) = P^\perp_x\,\frac{\int e^{\beta\langle Qx,Ky\rangle}\,Vy\,d\mu(y)}
            {\int e^{\beta\langle Qx,Ky\rangle}\,d\mu(y)}\ \text{(SA)},\qquad
            P^\perp_x\!\int e^{\beta\langle Qx,Ky\rangle}\,Vy\,d\mu(y)\ \text{(USA)}

        (GLPR, arXiv 2312.10794, Section 2.2). With uniform weights :math:`1/n` and
        ``points = tokens`` this is ``self(tokens)``: the dynamics depends on the tokens only through
        their empirical measure.

        Parameters
        ----------
        points : (..., p, d) tensor on the sphere, where the field is evaluated.
        tokens : (..., n, d) tensor on the sphere, the atoms :math:`y_j` of the measure.
        weights : None (uniform, 1/n) or (..., n) tensor of non-negative masses summing to one.
        """
        points = _checks.points(points, "points")
        tokens = _checks.points(tokens, "tokens")
        self._check_dimension(points)
        self._check_dimension(tokens)
        n = tokens.shape[-2]
        if weights is None:
            weights = torch.full(tokens.shape[:-1], 1.0 / n, dtype=tokens.dtype, device=tokens.device)
        weights = _checks.floating_tensor(weights, "weights").to(dtype=tokens.dtype, device=tokens.device)
        if weights.shape != tokens.shape[:-1] or bool((weights < 0).any()):
            raise ValueError(f"weights must be non-negative with shape {tuple(tokens.shape[:-1])}")
        if not torch.allclose(weights.sum(-1), torch.ones((), dtype=weights.dtype)):
            raise ValueError("weights must sum to one (a probability measure)")
        B = self._eye_or_cast("B", points)
        s = self._beta_for(points) * (self._heads(points) @ B @ self._heads(tokens).mT)
        log_w = torch.log(weights).unsqueeze(-2)
        if self.heads is not None:
            log_w = log_w.unsqueeze(-3)
        A = torch.softmax(s + log_w, dim=-1) if self.normalized else torch.exp(s + log_w)
        v = A @ self._values(tokens)
        v = v if self.heads is None else v.sum(dim=-3)
        return project(points, v)

    def _use_fused(self, x):
        return self.normalized and (self.fused is True or (self.fused == "auto" and x.is_cuda))

    def velocity(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch :math:`v_i=\\sum_h\\sum_j A^h_{ij}V_hx_j`, shape (..., n, d)."""
        self._check_dimension(x)
        if self._use_fused(x):
            out = self._fused_attention(x)
        else:
            out = self._attention(x) @ self._values(x)
        return out if self.heads is None else out.sum(dim=-3)

    def _fused_attention(self, x):
        xh = self._heads(x)
        Q, K = self._cast("Q", x), self._cast("K", x)
        q = xh if Q is None else xh @ Q.mT
        k = xh if K is None else xh @ K.mT
        beta = self._beta_for(x)
        if isinstance(beta, torch.Tensor):  # the kernel's scale is one float: put a batch of betas in q
            q, beta = beta * q, 1.0
        # The fused kernels want one batch shape; expand (no copy) where only V carries the heads.
        q, k, v = torch.broadcast_tensors(q, k, self._values(x))
        return F.scaled_dot_product_attention(q, k, v, scale=beta)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        r"""The interaction energy, summed over the heads of :math:`Q^\top K`, shape ``x.shape[:-2]``.

        .. math:: E_\beta(x) = \frac{1}{2\beta n^2}\sum_{i,j=1}^n e^{\beta\langle Q x_i, K x_j\rangle}

        (GLPR, arXiv 2312.10794, Section 3). It is non-decreasing along SA and USA with
        :math:`Q=K=V=I_d`. At ``beta = 0`` it returns the limit of :math:`E_\beta - 1/(2\beta)`,
        :math:`\frac{1}{2n^2}\sum_{ij}\langle Qx_i,Kx_j\rangle` (the same gradient). Computed through a
        log-sum-exp so that it is exact wherever the result is representable.
        """
        x = _checks.points(x, "x")
        self._check_dimension(x)
        n = x.shape[-2]
        if isinstance(self.beta, torch.Tensor):
            e = self._energy_of_beta_batch(x)
        elif self.beta == 0:
            s = self._heads(x) @ self._eye_or_cast("B", x) @ self._heads(x).mT
            e = s.sum(dim=(-1, -2)) / (2 * n * n)
        else:
            lse = torch.logsumexp(self._logits(x).flatten(-2), dim=-1)
            e = math.copysign(1.0, self.beta) * torch.exp(lse - math.log(2 * abs(self.beta) * n * n))
        e = e if self.heads is None else e.sum(dim=-1)
        if not bool(torch.isfinite(e).all()):
            raise OverflowError(f"E_beta overflows {x.dtype} at beta = {self.beta}; "
                                "use normalized_energy, which divides by e^beta")
        return e

    def _energy_of_beta_batch(self, x):
        """The energy for a tensor of betas: the same two formulas, chosen entry by entry."""
        n = x.shape[-2]
        beta = self._beta_for(x).squeeze(-1).squeeze(-1)  # (..., [1]) against the summed arrays
        s = self._heads(x) @ self._eye_or_cast("B", x) @ self._heads(x).mT
        at_zero = s.sum(dim=(-1, -2)) / (2 * n * n)
        safe = torch.where(beta == 0, torch.ones_like(beta), beta)
        lse = torch.logsumexp((safe[..., None, None] * s).flatten(-2), dim=-1)
        away = torch.sign(safe) * torch.exp(lse - torch.log(2 * safe.abs() * n * n))
        return torch.where(beta == 0, at_zero, away)

    def _eye_or_cast(self, name, x):
        M = self._cast(name, x)
        return torch.eye(x.shape[-1], dtype=x.dtype, device=x.device) if M is None else M

    def normalized_energy(self, x: torch.Tensor) -> torch.Tensor:
        r"""The energy rescaled to (0, 1] for ``Q = K = I``: :math:`\frac1{n^2}\sum_{ij}e^{\beta(\langle x_i,x_j\rangle-1)}`.

        It equals :math:`2\beta e^{-\beta}E_\beta`, stays finite for any :math:`\beta`, and tends to
        :math:`\sum_k m_k^2` for well-separated clusters of mass fractions :math:`m_k` as
        :math:`\beta\to\infty` (the staircase of Geshkovski, Koubbi, Polyanskiy, Rigollet, arXiv 2410.06833).
        """
        x = _checks.points(x, "x")
        self._check_dimension(x)
        e = torch.exp(self._logits(x) - self._beta_for(x)).mean(dim=(-1, -2))
        return e if self.heads is None else e.sum(dim=-1)

    def energy_gradient(self, x: torch.Tensor, riemannian: bool = True) -> torch.Tensor:
        r"""The gradient of :math:`E_\beta`, shape (..., n, d).

        .. math:: \nabla_{x_k}E_\beta = \frac{1}{2n^2}\sum_j\big(e^{\beta x_k^\top Bx_j}Bx_j
                  + e^{\beta x_j^\top Bx_k}B^\top x_j\big),\qquad B=Q^\top K.

        With ``riemannian=True`` it is projected on the tangent space of the sphere at each
        :math:`x_k`; then USA with :math:`V=I` is :math:`\dot x = n\nabla E_\beta(x)` (GLPR, eq. (3.11)).
        """
        x = _checks.points(x, "x")
        self._check_dimension(x)
        n = x.shape[-2]
        xh = self._heads(x)
        B = self._eye_or_cast("B", x)
        G = torch.exp(self._logits(x))
        grad = (G @ xh @ B.mT + G.mT @ xh @ B) / (2 * n * n)
        grad = grad if self.heads is None else grad.sum(dim=-3)
        return project(x, grad) if riemannian else grad

    def __repr__(self):
        kind = "SA" if self.normalized else "USA"
        heads = "" if self.heads is None else f", heads={self.heads}"
        mats = "" if self.B is None and self.V is None else ", general Q,K,V"
        beta = self.beta if not isinstance(self.beta, torch.Tensor) else f"tensor of shape {tuple(self.beta.shape)}"
        return f"SelfAttention({kind}, beta={beta}{heads}{mats})"


def _beta(beta):
    """Validate beta: a finite real, or a tensor of finite reals (a 0-d tensor becomes a float)."""
    if isinstance(beta, torch.Tensor):
        beta = _checks.floating_tensor(beta, "beta").detach().to(device="cpu", dtype=torch.float64)
        return beta.item() if beta.ndim == 0 else beta
    return _checks.real(beta, "beta")


class Perceptron(Field):
    r"""The feed-forward (MLP) sublayer as a field: :math:`v_i = W(Ux_i+b)_+`.

    GLPR (arXiv 2312.10794), eq. (2.8), and the model of Geshkovski, Rigollet, Ruiz-Balet,
    "Measure-to-measure interpolation using Transformers" (arXiv 2411.04551).

    Parameters
    ----------
    W : (d, m) tensor; U : (m, d) tensor; b : (m,) tensor.
    """

    def __init__(self, W, U, b):
        W = _checks.floating_tensor(W, "W").detach().double()
        U = _checks.floating_tensor(U, "U").detach().double()
        b = _checks.floating_tensor(b, "b").detach().double()
        if W.ndim != 2 or U.ndim != 2 or b.ndim != 1:
            raise ValueError("W and U must be matrices and b a vector")
        if U.shape[0] != b.shape[0] or W.shape[1] != U.shape[0] or W.shape[0] != U.shape[1]:
            raise ValueError(f"shapes must be W (d, m), U (m, d), b (m,), got W {tuple(W.shape)}, "
                             f"U {tuple(U.shape)}, b {tuple(b.shape)}")
        self.W, self.U, self.b = W, U, b

    def velocity(self, x):
        W, U, b = (M.to(dtype=x.dtype, device=x.device) for M in (self.W, self.U, self.b))
        return torch.relu(x @ U.mT + b) @ W.mT

    def __repr__(self):
        d, m = self.W.shape
        return f"Perceptron(d={d}, width={m})"


class RescaledUSA(SelfAttention):
    r"""USA on the clock :math:`s=e^{\beta}t`: the field :math:`e^{-\beta}` times USA, finite at any beta.

    .. math::
        \frac{dx_i}{ds} = P^\perp_{x_i}\Big(\frac1n\sum_{j=1}^n e^{\beta(\langle x_i,x_j\rangle-1)}x_j\Big),
        \qquad s = e^{\beta}t ,

    with :math:`Q=K=V=I_d`. USA itself has entries :math:`e^{\beta\langle x_i,x_j\rangle}`, which overflow
    float64 beyond :math:`\beta\approx709`; here every weight lies in :math:`(0,1]`. The trajectories
    are those of USA (GLPR, arXiv 2312.10794, eq. (2.6)); only time is rescaled. This is the form in
    which Geshkovski, Koubbi, Polyanskiy and Rigollet integrate USA at :math:`\beta` up to 4000
    (arXiv 2410.06833, Section 6). Weights below :math:`e^{-745}` underflow to zero in float64: two
    clusters with :math:`\beta(1-\langle x_a,x_b\rangle)>745` no longer attract.

    The field is the gradient ascent :math:`dx/ds = n\nabla\widetilde E_\beta(x)` of the rescaled energy
    returned by :meth:`energy`,

    .. math:: \widetilde E_\beta(x) = e^{-\beta}E_\beta(x) =
              \frac{1}{2\beta}\sum_{i,j=1}^n w_iw_j\,e^{\beta(\langle x_i,x_j\rangle-1)},\qquad w_i=\frac1n ,

    which is :meth:`normalized_energy` divided by :math:`2\beta`.

    Parameters
    ----------
    beta : float > 0, or a tensor of them broadcasting against the batch dimensions of ``x`` (as
        for :class:`SelfAttention`).

    Examples
    --------
    At beta = 2000 the weights stay finite; two tokens a tenth of a radian apart barely interact:

    >>> x = torch.tensor([[1.0, 0.0], [math.cos(0.1), math.sin(0.1)]], dtype=torch.float64)
    >>> bool(RescaledUSA(2000.0)(x).abs().max() < 1e-4)
    True
    """

    def __init__(self, beta):
        super().__init__(beta, normalized=False, fused=False)
        positive = self.beta > 0 if not isinstance(self.beta, torch.Tensor) else bool((self.beta > 0).all())
        if not positive:
            raise ValueError("beta must be > 0 for RescaledUSA")

    def _attention(self, x):
        return torch.exp(self._logits(x) - self._beta_for(x)) / x.shape[-2]

    def _distinct_weights(self, x):
        # Coincident tokens (x_j == x_i, e.g. a merged cluster) contribute P_{x_i} x_j = 0. Dropping
        # them before projecting avoids the cancellation x_i/n - <x_i, x_i/n> x_i, which would bury
        # the e^{-beta(1 - <x_i, x_j>)}-small pull of the other clusters under rounding errors.
        same = (x.unsqueeze(-2) == x.unsqueeze(-3)).all(dim=-1)
        return torch.where(same, torch.zeros((), dtype=x.dtype, device=x.device), self._attention(x))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return project(x, self._distinct_weights(x) @ x)

    def energy(self, x: torch.Tensor, weights=None, diagonal=True) -> torch.Tensor:
        r"""The rescaled energy :math:`\frac{1}{2\beta}\sum_{ij}w_iw_je^{\beta(\langle x_i,x_j\rangle-1)}`, shape ``x.shape[:-2]``.

        ``weights`` (default :math:`1/n`) are the masses of weighted tokens (atoms), shape ``x.shape[:-1]``:
        a cluster of :math:`m` coincident tokens and one atom of mass :math:`m/n` have the same energy.
        ``diagonal=False`` drops the terms :math:`i=j`, constant (:math:`\sum_iw_i^2/(2\beta)`) on the
        sphere: the same Riemannian gradient and Hessian, without the cancellations that would hide
        exponentially small curvatures (:func:`nnips.landscape.riemannian_hessian` of atoms).
        """
        x = _checks.points(x, "x")
        n = x.shape[-2]
        if weights is None:
            weights = torch.full(x.shape[:-1], 1.0 / n, dtype=x.dtype, device=x.device)
        weights = _checks.floating_tensor(weights, "weights").to(dtype=x.dtype, device=x.device)
        if weights.shape != x.shape[:-1]:
            raise ValueError(f"weights must have shape {tuple(x.shape[:-1])}, got {tuple(weights.shape)}")
        kernel = torch.exp(self._logits(x) - self._beta_for(x))
        if not diagonal:
            kernel = kernel * (1 - torch.eye(n, dtype=x.dtype, device=x.device))
        beta = self._beta_for(x)
        total = (weights.unsqueeze(-1) * kernel * weights.unsqueeze(-2)).sum(dim=(-1, -2))
        beta = beta if not isinstance(beta, torch.Tensor) else beta[..., 0, 0]
        return total / (2 * beta)

    def energy_gradient(self, x: torch.Tensor, riemannian: bool = True) -> torch.Tensor:
        r"""The gradient of the rescaled energy :meth:`energy`, so that ``self(x) == n * energy_gradient(x)``."""
        x = _checks.points(x, "x")
        n = x.shape[-2]
        if not riemannian:
            return torch.exp(self._logits(x) - self._beta_for(x)) @ x / (n * n)
        return project(x, self._distinct_weights(x) @ x) / n

    def __repr__(self):
        beta = self.beta if not isinstance(self.beta, torch.Tensor) else f"tensor of shape {tuple(self.beta.shape)}"
        return f"RescaledUSA(beta={beta})"
