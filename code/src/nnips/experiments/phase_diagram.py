"""Phase diagrams P(<x_1(t), x_2(t)> >= 1 - delta) over (t, beta): GLPR Fig. 3 and Fig. 5 (Chapter 2).

``--figure 3`` (default): SA with Q = K = V = I for d in 2, 8, 32, 128, 512, 1024.
``--figure 5``: the four random (Q, K, V) ensembles at d = 128.
Defaults are the paper's scale: n = 32, 2048 seeds, 90 betas in [0.1, 9], T = 30, dt = 0.1, float64.

A panel is one (ensemble, d); it is cut into blocks of seeds, one unit each (resumable), so that the
state tensor (betas, block, n, d) stays under --max-state-gb. Within a unit all betas and seeds
advance as one tensor. Each block of a random ensemble draws its own (Q, K, V) (at least --draws
blocks per random panel). The summary holds p_<ensemble>_d<d> of shape (len(t), len(betas)), the
times t, the betas, the equiangular curve, and the wall time of each panel.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from .. import phase
from . import register

FIGURES = {"3": (["identity"], [2, 8, 32, 128, 512, 1024]),
           "5": (["ginibre", "wigner-psd", "ginibre-tied", "wigner-tied"], [128])}


@register
class PhaseDiagram:
    """Phase diagrams P(<x_1(t),x_2(t)> >= 1-delta) over (t, beta), GLPR Fig. 3 and Fig. 5."""

    name = "phase-diagram"

    def add_arguments(self, p):
        p.add_argument("--figure", choices=sorted(FIGURES), default="3",
                       help="3: Q = K = V = I over d; 5: random (Q, K, V) ensembles at d = 128")
        p.add_argument("--dims", type=int, nargs="+", help="dimensions d (default: those of --figure)")
        p.add_argument("--ensembles", nargs="+", choices=sorted(phase.ENSEMBLES),
                       help="ensembles (default: those of --figure)")
        p.add_argument("--n", type=int, default=32, help="tokens")
        p.add_argument("--seeds", type=int, default=2048, help="uniform starts per panel")
        p.add_argument("--betas", type=float, nargs=3, default=[0.1, 9.0, 90], metavar=("MIN", "MAX", "NUM"),
                       help="beta grid: linspace(MIN, MAX, NUM)")
        p.add_argument("--T", type=float, default=30.0, help="final time")
        p.add_argument("--dt", type=float, default=0.1, help="step of the layer scheme")
        p.add_argument("--records", type=int, default=201, help="recording times in [0, T]")
        p.add_argument("--delta", type=float, default=1e-3)
        p.add_argument("--max-state-gb", type=float, default=8.0,
                       help="largest state tensor (betas x block x n x d) per unit; peak memory is a few times this")
        p.add_argument("--draws", type=int, default=8, help="independent (Q, K, V) draws per random panel")
        p.add_argument("--progress", action="store_true", help="a progress bar over the steps of each unit")

    # The grid and the panels, from the arguments.
    def _betas(self, args):
        low, high, num = args.betas
        if num < 1 or num != int(num):
            raise SystemExit(f"--betas NUM must be a positive integer, got {num}")
        return torch.linspace(low, high, int(num), dtype=torch.float64)

    def _times(self, args):
        if args.records < 2 or args.T <= 0:
            raise SystemExit("--records must be >= 2 and --T > 0")
        return torch.linspace(0.0, args.T, args.records, dtype=torch.float64)

    def _panels(self, args):
        ensembles, dims = FIGURES[args.figure]
        return [(e, d) for e in (args.ensembles or ensembles) for d in (args.dims or dims)]

    def _blocks(self, args, ensemble, d):
        """Seed counts of the blocks of one panel."""
        per_seed = len(self._betas(args)) * args.n * d * torch.finfo(args.torch_dtype).bits / 8
        fit = max(1, int(args.max_state_gb * 1e9 // per_seed))
        count = max(math.ceil(args.seeds / fit), 1 if ensemble == "identity" else min(args.draws, args.seeds))
        base, extra = divmod(args.seeds, count)
        return [base + (k < extra) for k in range(count)]

    def units(self, args):
        return [f"{e}_d{d}_block{k}" for e, d in self._panels(args) for k in range(len(self._blocks(args, e, d)))]

    def run_unit(self, key, args):
        ensemble, d, block = key.split("_")
        d, k = int(d[1:]), int(block[len("block"):])
        seeds = self._blocks(args, ensemble, d)[k]
        start = time.perf_counter()
        p = phase.diagram(d, self._betas(args), self._times(args), n=args.n, seeds=seeds, delta=args.delta,
                          dt=args.dt, ensemble=ensemble, seed=args.seed * 1_000_003 + 7919 * k,
                          dtype=args.torch_dtype, device=args.device, progress=args.progress)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return {"p": p.numpy(), "seeds": seeds, "seconds": time.perf_counter() - start}

    def summarise(self, results, args):
        betas, t = self._betas(args), self._times(args)
        summary = {"t": t.numpy(), "betas": betas.numpy(), "n": args.n, "delta": args.delta,
                   "curve": phase.transition_curve(betas, args.n, args.delta).numpy()}
        panels = []
        for e, d in self._panels(args):
            keys = [f"{e}_d{d}_block{k}" for k in range(len(self._blocks(args, e, d)))]
            weights = np.array([float(results[k]["seeds"]) for k in keys])
            p = sum(w * results[k]["p"] for w, k in zip(weights, keys)) / weights.sum()
            summary[f"p_{e}_d{d}"] = p
            summary[f"seconds_{e}_d{d}"] = sum(float(results[k]["seconds"]) for k in keys)
            panels.append(f"{e}_d{d}")
        summary["panels"] = np.array(panels)
        return summary

    def plot(self, summary, args):
        import matplotlib.pyplot as plt

        from .. import plot

        panels = list(summary["panels"])
        fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0), squeeze=False,
                                 constrained_layout=True)
        for ax, panel in zip(axes[0], panels):
            identity = panel.startswith("identity")
            plot.phase_diagram(ax, summary["t"], summary["betas"], summary[f"p_{panel}"],
                               curve=summary["curve"] if identity else None, colorbar=ax is axes[0, -1])
            ax.set_title(panel.replace("_", ", "))
        return fig
