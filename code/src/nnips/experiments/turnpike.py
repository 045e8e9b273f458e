"""Neural ODEs trained as optimal control problems at paper scale (Chapter 5, "Neural ODEs and the turnpike").

One unit trains one network, for one horizon ``T`` and one penalty ``lam``, on the two-class discs
of :func:`nnips.control.discs`, with the cost chosen by ``--cost``:

- ``running``: running loss and L2 penalty; the summary fits the decay rate of the training error
  along the layers, for every ``T`` (the turnpike rate, which should not depend on ``T``);
- ``final``: final-time loss and L2 penalty; the summary fits the slope of the final training error
  against ``T`` (at most -1 by the O(1/T) bound);
- ``l1``: running loss, L1 penalty and the box ``|u| <= bound``; the summary lists the stopping time
  ``T*`` for every ``(T, lam)``.

Examples (small enough for a CPU)::

    python -m nnips.experiments turnpike --cost running --horizons 5 10 20 --iterations 300
    python -m nnips.experiments turnpike --cost l1 --horizons 5 10 20 40 --lam 0.1 1 --device cuda
"""

from __future__ import annotations

import torch

from .. import control, rates
from . import register


@register
class Turnpike:
    """Train neural ODEs with running, final-time or L1 costs over a grid of horizons and penalties."""

    name = "turnpike"

    def add_arguments(self, p):
        p.add_argument("--cost", choices=["running", "final", "l1"], default="running")
        p.add_argument("--n", type=int, default=400, help="data points")
        p.add_argument("--m", type=int, default=256, help="width (number of fixed features)")
        p.add_argument("--h", type=float, default=0.25, help="time step of a layer")
        p.add_argument("--horizons", type=float, nargs="+", default=[5.0, 10.0, 20.0, 40.0])
        p.add_argument("--lam", type=float, nargs="+", default=[1.0], help="penalty weights")
        p.add_argument("--bound", type=float, default=0.1, help="box |u| <= bound of the l1 cost")
        p.add_argument("--scale", type=float, default=2.0, help="standard deviation of the fixed features")
        p.add_argument("--iterations", type=int, default=3000)
        p.add_argument("--fit-window", type=float, nargs=2, default=[0.5, 2.5],
                       help="times between which the decay rate of the running cost is fitted")

    def units(self, args):
        return [f"T{T:g}_lam{lam:g}" for lam in args.lam for T in args.horizons]

    def run_unit(self, key, args):
        T, lam = (float(part[len(prefix):]) for part, prefix in zip(key.split("_"), ("T", "lam")))
        x0, y = control.discs(args.n, seed=args.seed)
        net = control.ResNet.random(3, args.m, round(T / args.h), T, seed=args.seed, scale=args.scale,
                                    fixed_features=True, dtype=args.torch_dtype, device=args.device)
        penalty, bound = ("l1", args.bound) if args.cost == "l1" else ("l2", None)
        history = control.train(net, x0, y, lam=lam, running=args.cost != "final", penalty=penalty,
                                iterations=args.iterations, bound=bound)
        with torch.no_grad():
            error = control.risk(net(x0.to(net.W), return_states=True), y.to(net.W))
        norms = control.layer_norms(net, p=1 if args.cost == "l1" else 2)
        return {"history": history, "error": error.double().cpu(), "norms": norms.double().cpu(),
                "stopping_time": torch.tensor(control.stopping_time(net)),
                "scaled_norm": torch.tensor(T * args.h * float((norms.double() ** 2).sum()))}

    def summarise(self, results, args):
        summary = {"horizons": torch.tensor(args.horizons, dtype=torch.float64).numpy(),
                   "lam": torch.tensor(args.lam, dtype=torch.float64).numpy()}
        grid = [[results[f"T{T:g}_lam{lam:g}"] for T in args.horizons] for lam in args.lam]
        summary["stopping_time"] = torch.tensor([[float(r["stopping_time"]) for r in row] for row in grid],
                                                 dtype=torch.float64).numpy()
        final = torch.tensor([[float(r["error"][-1]) for r in row] for row in grid], dtype=torch.float64)
        summary["final_error"] = final.numpy()
        summary["scaled_norm"] = torch.tensor([[float(r["scaled_norm"]) for r in row] for row in grid],
                                               dtype=torch.float64).numpy()
        if args.cost == "final" and len(args.horizons) > 1:
            summary["slope"] = torch.tensor([rates.power_law(args.horizons, row).slope for row in final],
                                            dtype=torch.float64).numpy()
        if args.cost == "running":
            lo, hi = args.fit_window
            fitted = []
            for row in grid:
                fitted.append([])
                for r in row:
                    error = torch.as_tensor(r["error"])
                    t = torch.arange(len(error), dtype=torch.float64) * args.h
                    window = (t >= lo) & (t <= hi)
                    fitted[-1].append(-rates.exponential(t[window], error[window]).slope)
            summary["rate"] = torch.tensor(fitted, dtype=torch.float64).numpy()
        for lam, row in zip(args.lam, grid):
            for T, r in zip(args.horizons, row):
                summary[f"error_T{T:g}_lam{lam:g}"] = torch.as_tensor(r["error"]).numpy()
                summary[f"norms_T{T:g}_lam{lam:g}"] = torch.as_tensor(r["norms"]).numpy()
        return summary

    def plot(self, summary, args):
        import matplotlib.pyplot as plt

        from .. import plot

        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
        lam = args.lam[0]
        for T, color in zip(args.horizons, plot.PALETTE):
            error = summary[f"error_T{T:g}_lam{lam:g}"]
            norms = summary[f"norms_T{T:g}_lam{lam:g}"]
            left.semilogy([k * args.h for k in range(len(error))], error, color=color, label=f"T = {T:g}")
            right.plot([k * args.h for k in range(len(norms))], norms, color=color, label=f"T = {T:g}")
        left.set_xlabel("time t")
        left.set_ylabel("training error")
        right.set_xlabel("time t")
        right.set_ylabel("size of the parameters")
        left.legend()
        fig.suptitle(f"cost {args.cost}, lambda = {lam:g}")
        return fig
