r"""Transformers with piecewise-constant parameters as maps between measures on the sphere.

The model of Geshkovski, Rigollet and Ruiz-Balet, "Measure-to-measure interpolation using
Transformers" (arXiv 2411.04551) moves a probability measure :math:`\mu` on :math:`\mathbb S^{d-1}` by the
continuity equation :math:`\partial_t\mu+\operatorname{div}(v[\mu]\mu)=0` with the field

.. math::
    v[\mu](x) = P^\perp_x\Big(V\,\frac{\int e^{\langle Bx,y\rangle}\,y\,d\mu(y)}{\int e^{\langle Bx,y\rangle}\,d\mu(y)}
    + W(Ux+b)_+\Big),

where the parameters :math:`\theta=(V,B,W,U,b)` are constant on each of finitely many time intervals
(the inverse temperature is absorbed in :math:`B`). A :class:`Piece` is one such interval; a list of
pieces is a Transformer, and :func:`transport` is its flow map, applied to a batch of measures at
once (each measure is an independent system of particles: attention never couples two inputs).

The helpers :func:`separation`, :func:`clustering`, :func:`moves` and :func:`construct` build an
explicit parameter path for a small example (two input measures sent to two Dirac masses) in the
spirit of the paper's construction (separate the supports, cluster each measure, move the clusters);
they are the book's toy version, not the paper's own construction. Book: Chapter 4.
"""

from __future__ import annotations

import math

import torch

from . import _checks, flow, sphere
from .attention import Perceptron, SelfAttention

__all__ = ["Piece", "transport", "reverse", "switches", "separation", "clustering", "moves", "construct"]


def _matrix(M, name, shape=None):
    if M is None:
        return None
    M = _checks.floating_tensor(M, name).detach().to(torch.float64)
    if M.ndim != (1 if name == "b" else 2):
        raise ValueError(f"{name} must be a {'vector' if name == 'b' else 'matrix'}, got shape {tuple(M.shape)}")
    if shape is not None and tuple(M.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(M.shape)}")
    return M


class Piece:
    r"""Constant parameters :math:`\theta=(V,B,W,U,b)` held for a time ``duration``.

    The field of the piece is :math:`P^\perp_x(V\mathcal A_B[\mu](x)+W(Ux+b)_+)` (Geshkovski, Rigollet,
    Ruiz-Balet, arXiv 2411.04551), built from :class:`nnips.attention.SelfAttention` with
    ``beta = 1``, ``Q = B``, ``K = I`` (so that the scores are :math:`\langle Bx_i,x_j\rangle`) and
    :class:`nnips.attention.Perceptron`. ``B = None`` means :math:`B=0`: the attention term is then
    :math:`V` times the barycentre :math:`\int y\,d\mu(y)` of the measure. ``V = None`` or ``W = None``
    drop the corresponding term.

    Parameters
    ----------
    duration : float > 0.
    V, B : None or (d, d) tensors.
    W : None or (d, m) tensor; U : (m, d) tensor and b : (m,) tensor, required with W.
    """

    def __init__(self, duration, V=None, B=None, W=None, U=None, b=None):
        self.duration = _checks.real(duration, "duration", 0.0, strict=True)
        self.V, self.B = _matrix(V, "V"), _matrix(B, "B")
        self.W, self.U, self.b = _matrix(W, "W"), _matrix(U, "U"), _matrix(b, "b")
        if self.V is None and self.W is None:
            raise ValueError("a piece needs an attention term (V) or a perceptron term (W)")
        if self.B is not None and self.V is None:
            raise ValueError("B without V has no effect: give V as well")
        if (self.W is None) != (self.U is None) or (self.W is None) != (self.b is None):
            raise ValueError("W, U and b go together: give all three or none")
        dims = {M.shape[0] for M in (self.V, self.B, self.W) if M is not None}
        if self.V is not None and self.V.shape[1] != self.V.shape[0]:
            raise ValueError(f"V must be square, got shape {tuple(self.V.shape)}")
        if self.B is not None and self.B.shape != self.V.shape:
            raise ValueError(f"B must have the shape of V, {tuple(self.V.shape)}, got {tuple(self.B.shape)}")
        if len(dims) > 1:
            raise ValueError(f"V, B and W must act in the same dimension d, got {sorted(dims)}")
        self.d = dims.pop()
        if self.W is not None:  # the Perceptron checks the shapes of W, U and b against each other
            self._perceptron = Perceptron(self.W, self.U, self.b)

    def field(self):
        """The vector field of the piece, a :class:`nnips.attention.Field`."""
        terms = []
        if self.V is not None:
            terms.append(SelfAttention(0.0 if self.B is None else 1.0, Q=self.B, V=self.V))
        if self.W is not None:
            terms.append(self._perceptron)
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]

    def norm(self) -> float:
        r"""The size :math:`\|V\|+\|B\|+\|W\|+\|U\|+|b|` of the parameters (operator norms), as in the
        bound :math:`\|\theta\|_{L^\infty}` of arXiv 2411.04551."""
        mats = [M for M in (self.V, self.B, self.W, self.U) if M is not None]
        total = sum(torch.linalg.matrix_norm(M, ord=2).item() for M in mats)
        return total + (self.b.norm().item() if self.b is not None else 0.0)

    def inverse(self) -> "Piece":
        r"""The piece whose flow undoes this one: the field is linear in :math:`(V, W)`, so negating both
        reverses time."""
        neg = (lambda M: None if M is None else -M)
        return Piece(self.duration, neg(self.V), self.B, neg(self.W), self.U, self.b)

    def same_parameters(self, other: "Piece") -> bool:
        """Whether two pieces hold the same parameters (durations aside)."""
        def same(a, b):
            return (a is None and b is None) or (a is not None and b is not None and a.shape == b.shape
                                                 and bool(torch.equal(a, b)))
        return all(same(getattr(self, k), getattr(other, k)) for k in ("V", "B", "W", "U", "b"))

    def __repr__(self):
        terms = [name for name, M in (("V", self.V), ("B", self.B), ("W", self.W)) if M is not None]
        return f"Piece(duration={self.duration:g}, d={self.d}, terms={'+'.join(terms)}, norm={self.norm():.3g})"


def _pieces(pieces):
    pieces = list(pieces) if not isinstance(pieces, Piece) else [pieces]
    if not pieces or not all(isinstance(p, Piece) for p in pieces):
        raise TypeError("pieces must be a non-empty sequence of interpolation.Piece")
    return pieces


def transport(pieces, x0, dt=0.01, method="rk4", frames=None):
    r"""The flow map :math:`\Phi^T_\theta` of a piecewise-constant Transformer, applied to particles.

    On each piece the field is autonomous, so the flow map is the composition
    :math:`\Phi^{\tau_K}_{\theta_K}\circ\dots\circ\Phi^{\tau_1}_{\theta_1}` of the flows of the pieces,
    each computed by :func:`nnips.flow.integrate`.

    Parameters
    ----------
    pieces : a :class:`Piece` or a sequence of them, applied in order.
    x0 : (..., n, d) tensor on the sphere; leading dimensions are independent measures (a batch).
    dt, method : step and scheme of :func:`nnips.flow.integrate`.
    frames : None, or the number of states recorded in each piece (equally spaced in time).

    Returns
    -------
    The final state, shape ``x0.shape``; or, with ``frames``, a pair ``(t, xs)`` of the recording
    times (float64, starting at 0) and the states, shape ``(len(t), *x0.shape)``.
    """
    pieces = _pieces(pieces)
    x = _checks.points(x0, "x0")
    if frames is not None:
        frames = _checks.integer(frames, "frames", 1)
    for p in pieces:
        if p.d != x.shape[-1]:
            raise ValueError(f"the pieces act in dimension {p.d} but x0 has d = {x.shape[-1]}")
    times, states, start = [torch.zeros(1, dtype=torch.float64)], [x.unsqueeze(0)], 0.0
    for p in pieces:
        grid = torch.linspace(0.0, p.duration, (frames or 1) + 1, dtype=torch.float64)
        xs = flow.integrate(p.field(), x, grid, method=method, dt=dt)
        x = xs[-1]
        times.append(start + grid[1:])
        states.append(xs[1:])
        start += p.duration
    if frames is None:
        return x
    return torch.cat(times), torch.cat(states)


def reverse(pieces) -> list:
    """The pieces of the inverse flow map: each piece inverted (:meth:`Piece.inverse`), in reverse order."""
    return [p.inverse() for p in reversed(_pieces(pieces))]


def switches(pieces) -> int:
    """The number of times the parameters change along the path (consecutive equal pieces count once)."""
    pieces = _pieces(pieces)
    return sum(not a.same_parameters(b) for a, b in zip(pieces[:-1], pieces[1:]))


def _measures(x, name="x"):
    x = _checks.points(x, name)
    if x.ndim != 3:
        raise ValueError(f"{name} must hold N measures as a tensor of shape (N, n, d), got {tuple(x.shape)}")
    return x


def separation(x, strength=3.0, duration=1.0) -> Piece:
    r"""A barycentre piece (:math:`B=0`, :math:`W=0`) that pushes two measures to opposite sides.

    With :math:`V=\lambda ee^\top` the field of a measure with barycentre :math:`m` is
    :math:`\lambda\langle m,e\rangle P^\perp_x e`: every particle climbs toward :math:`e` when
    :math:`\langle m,e\rangle>0` and toward :math:`-e` when :math:`\langle m,e\rangle<0`. The choice
    :math:`e\propto m_0/\|m_0\|-m_1/\|m_1\|` gives :math:`\langle m_0,e\rangle>0>\langle m_1,e\rangle`
    whenever the barycentres point in different directions, so the two measures separate even where
    their supports overlap; a field that does not depend on the measure (the perceptron alone) never
    can, since it moves a point shared by both supports in the same way.

    Parameters
    ----------
    x : (2, n, d) tensor, the particles of the two measures.
    strength : float > 0, :math:`\lambda`.
    duration : float > 0.
    """
    x = _measures(x)
    if x.shape[0] != 2:
        raise ValueError(f"separation takes two measures, x of shape (2, n, d); got N = {x.shape[0]}")
    strength = _checks.real(strength, "strength", 0.0, strict=True)
    m = x.mean(-2)
    if bool((m.norm(dim=-1) < 1e-12).any()):
        raise ValueError("a measure has its barycentre at the origin: the B = 0 field does not move it")
    direction = m[0] / m[0].norm() - m[1] / m[1].norm()
    if direction.norm() < 1e-9:
        raise ValueError("the barycentres of the two measures point the same way: B = 0 cannot tell them apart")
    e = direction / direction.norm()
    return Piece(duration, V=strength * torch.outer(e, e))


def clustering(d, beta=4.0, duration=10.0) -> Piece:
    r"""Pure attention with :math:`B=\beta I_d`, :math:`V=I_d`: SA at inverse temperature :math:`\beta`.

    A measure supported in an open hemisphere collapses to a Dirac mass, exponentially fast (cone
    collapse, Geshkovski, Letrouit, Polyanskiy, Rigollet, arXiv 2312.10794, Lemma 6.4).
    """
    d = _checks.integer(d, "d", 2)
    beta = _checks.real(beta, "beta", 0.0, strict=True)
    eye = torch.eye(d, dtype=torch.float64)
    return Piece(duration, V=eye, B=beta * eye)


def _angles(x, w):
    return torch.arccos((x @ w).clamp(-1.0, 1.0))


def _cap(x, index, w, rate, duration, margin):
    """One perceptron piece pulling measure ``index`` toward ``w`` inside a cap that others avoid."""
    radius = _angles(x[index], w).max().item() + margin
    others = torch.cat([x[j] for j in range(x.shape[0]) if j != index]) if x.shape[0] > 1 else None
    if others is not None:
        nearest = _angles(others, w).min().item()
        if nearest < radius + margin:
            raise ValueError(f"another measure lies {nearest:.3f} rad from the waypoint, inside the cap of "
                             f"radius {radius:.3f} needed to move measure {index}: change the targets or "
                             "their order, or lower max_hop")
    threshold = math.cos(radius)
    strength = rate / (1.0 - threshold)  # the contraction rate at w is strength * (1 - cos radius)
    return Piece(duration, W=strength * w.reshape(-1, 1), U=w.reshape(1, -1),
                 b=torch.tensor([-threshold], dtype=torch.float64))


def moves(x, index, target, rate=10.0, duration=1.0, max_hop=0.6, margin=0.1, dt=0.01, method="rk4"):
    r"""Perceptron pieces that carry measure ``index`` to ``target`` and leave the others in place.

    Each piece is the field :math:`\lambda(\langle w,x\rangle-\cos\rho)_+P^\perp_x w`: it vanishes
    outside the cap :math:`\{\langle w,x\rangle>\cos\rho\}` (so every other measure, kept outside,
    does not move at all) and, inside, pulls along great circles toward the waypoint :math:`w`,
    at the rate :math:`\lambda(1-\cos\rho)` near :math:`w`. Waypoints are spaced at most ``max_hop``
    radians apart along the great circle from the barycentre direction of the measure to the
    target; the cap of each hop is chosen after the previous one has been flowed, so the list is
    built by simulation (a :class:`ValueError` is raised when another measure is in the way).

    Parameters
    ----------
    x : (N, n, d) tensor, the current particles of the N measures.
    index : int, the measure to move.
    target : (d,) tensor on the sphere.
    rate : float > 0, the contraction rate of each hop; duration : float > 0, the time of each hop.
    max_hop, margin : floats > 0, in radians.
    dt, method : passed to :func:`nnips.flow.integrate`.

    Returns
    -------
    ``(pieces, x)``: the list of pieces and the particles after them.
    """
    x = _measures(x)
    index = _checks.integer(index, "index", 0)
    if index >= x.shape[0]:
        raise ValueError(f"index must be < N = {x.shape[0]}, got {index}")
    target = _checks.points(torch.as_tensor(target).reshape(1, -1), "target")[0].to(torch.float64)
    if target.shape[0] != x.shape[-1]:
        raise ValueError(f"target must have dimension d = {x.shape[-1]}, got {target.shape[0]}")
    rate = _checks.real(rate, "rate", 0.0, strict=True)
    max_hop = _checks.real(max_hop, "max_hop", 0.0, strict=True)
    margin = _checks.real(margin, "margin", 0.0, strict=True)
    centre = x[index].mean(0)
    centre = centre / centre.norm()
    angle = math.acos(max(-1.0, min(1.0, (centre @ target).item())))
    if angle > math.pi - 1e-6:
        raise ValueError("the target is antipodal to the measure: the great circle is not unique")
    hops = max(1, math.ceil(angle / max_hop))
    normal = target - (centre @ target) * centre  # slerp from centre to target
    normal = normal / normal.norm() if normal.norm() > 1e-12 else normal
    pieces = []
    for k in range(1, hops + 1):
        phi = angle * k / hops
        w = math.cos(phi) * centre + math.sin(phi) * normal
        w = w / w.norm()
        piece = _cap(x, index, w, rate, duration, margin)
        x = transport(piece, x, dt=dt, method=method)
        pieces.append(piece)
    return pieces, x


def construct(x0, targets, strength=3.0, separation_time=1.0, beta=4.0, cluster_time=10.0,
              rate=10.0, hop_time=1.0, max_hop=0.6, margin=0.1, dt=0.01, method="rk4"):
    r"""An explicit piecewise-constant path sending two measures near two Dirac masses.

    Three stages, each made of the building blocks above: :func:`separation` (one piece, checked:
    afterwards the two measures lie on the two sides of a hyperplane through the origin, so their
    geodesic convex hulls are disjoint), :func:`clustering` (one piece: each measure collapses
    toward its own point), then :func:`moves` for each measure in turn. The path is the book's toy
    version of the three stages of Geshkovski, Rigollet, Ruiz-Balet (arXiv 2411.04551):
    disentangle, cluster, match.

    Parameters
    ----------
    x0 : (2, n, d) tensor, the particles of the two input measures.
    targets : (2, d) tensor of points on the sphere.
    strength, separation_time : of :func:`separation`; beta, cluster_time : of :func:`clustering`;
    rate, hop_time, max_hop, margin : of :func:`moves`; dt, method : of :func:`nnips.flow.integrate`.

    Returns
    -------
    list of :class:`Piece`.
    """
    x = _measures(x0, "x0")
    targets = _checks.points(targets, "targets")
    if targets.shape != (x.shape[0], x.shape[-1]):
        raise ValueError(f"targets must have shape ({x.shape[0]}, {x.shape[-1]}), got {tuple(targets.shape)}")
    pieces = [separation(x, strength, separation_time)]
    x = transport(pieces[-1], x, dt=dt, method=method)
    if not bool(sphere.in_open_hemisphere(torch.cat([x[0], -x[1]]))):
        raise ValueError("the separation piece did not separate the measures: raise strength or separation_time")
    pieces.append(clustering(x.shape[-1], beta, cluster_time))
    x = transport(pieces[-1], x, dt=dt, method=method)
    for i in range(x.shape[0]):
        hops, x = moves(x, i, targets[i], rate, hop_time, max_hop, margin, dt, method)
        pieces += hops
    return pieces
