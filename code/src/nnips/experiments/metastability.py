"""Chapter 3, "Metastability", at paper scale: plateaus, escape times, the staircase, the number of clusters.

Each unit is one beta, so an interrupted run resumes beta by beta. The computations are those of
the book's pages (:mod:`nnips.metastability`); here the sizes are the papers'.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import circle, clusters, flow, metastability, rates
from . import register


def _beta_units(args):
    return [f"beta{b:g}" for b in args.betas]


def _beta(key):
    return float(key[len("beta"):])


@register
class Plateaus:
    """Cluster counts of SA on the circle against log t (n = 32, many seeds): plateau lengths, final collapse."""

    name = "metastable-plateaus"

    def add_arguments(self, p):
        p.add_argument("--n", type=int, default=32, help="tokens")
        p.add_argument("--d", type=int, default=2, help="dimension (2: the circle)")
        p.add_argument("--seeds", type=int, default=2048, help="independent starts per beta")
        p.add_argument("--betas", type=float, nargs="+", default=[4.0, 9.0])
        p.add_argument("--tmax", type=float, default=1e10)
        p.add_argument("--times", type=int, default=400, help="log-spaced recording times")

    def units(self, args):
        return _beta_units(args)

    def run_unit(self, key, args):
        t = flow.log_times(0.1, args.tmax, args.times)
        counts = metastability.cluster_counts([_beta(key)], args.n, args.d, args.seeds, t, seed=args.seed,
                                              dtype=args.torch_dtype, device=args.device, progress=True)
        return {"t": t, "counts": counts[:, 0].cpu()}

    def summarise(self, results, args):
        t = results[_beta_units(args)[0]]["t"]
        summary = {"t": t, "betas": np.array(args.betas)}
        for key in _beta_units(args):
            counts = torch.as_tensor(results[key]["counts"])
            summary[f"counts_{key}"] = counts.numpy()
            for k in (1, 2, 3):
                start, end = clusters.plateau(t, counts, k)
                summary[f"start{k}_{key}"], summary[f"end{k}_{key}"] = start.numpy(), end.numpy()
        return summary

    def plot(self, summary, args):
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(args.betas), figsize=(5 * len(args.betas), 3.5), squeeze=False)
        for ax, key in zip(axes[0], _beta_units(args)):
            counts = summary[f"counts_{key}"]
            for k in range(1, 6):
                ax.semilogx(summary["t"][1:], (counts[1:] == k).mean(-1), label=f"{k} clusters")
            ax.set_title(key.replace("beta", r"$\beta$ = "))
            ax.set_xlabel("time $t$")
        axes[0][0].set_ylabel("fraction of seeds")
        axes[0][0].legend()
        return fig


@register
class Escape:
    """Exit and merge times of SA from two separated caps against beta, with the fitted slope."""

    name = "escape-times"

    def add_arguments(self, p):
        p.add_argument("--m", type=int, default=16, help="tokens per cap")
        p.add_argument("--d", type=int, default=3)
        p.add_argument("--angle", type=float, default=math.pi / 3, help="angle between the cap centres")
        p.add_argument("--eps", type=float, default=0.002, help="cap parameter: <x, w> >= 1 - eps")
        p.add_argument("--seeds", type=int, default=256)
        p.add_argument("--betas", type=float, nargs="+", default=[6.0 + 4 * k for k in range(9)])
        p.add_argument("--tmax", type=float, default=1e18)
        p.add_argument("--times", type=int, default=1200)

    def units(self, args):
        return _beta_units(args)

    def run_unit(self, key, args):
        t = flow.log_times(0.1, args.tmax, args.times)
        exit_, merge, alpha = metastability.escape_times([_beta(key)], args.m, args.angle, args.eps, args.seeds, t,
                                                         d=args.d, seed=args.seed, dtype=args.torch_dtype,
                                                         device=args.device, progress=True)
        return {"exit": exit_[0], "merge": merge[0], "alpha": alpha}

    def summarise(self, results, args):
        keys = _beta_units(args)
        betas = np.array(args.betas)
        summary = {"betas": betas, "alpha": float(results[keys[0]]["alpha"])}
        for name in ("exit", "merge"):
            times = np.stack([results[k][name] for k in keys])
            summary[name] = times
            finite = np.isfinite(times).all(axis=1)
            summary[f"{name}_slope"] = rates.exponential(betas[finite], np.exp(np.log(times[finite]).mean(1))).slope
        return summary

    def plot(self, summary, args):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        for name in ("exit", "merge"):
            ax.semilogy(summary["betas"], np.exp(np.log(summary[name]).mean(1)), "o-",
                        label=f"{name} (slope {summary[f'{name}_slope']:.3f})")
        ax.set_xlabel(r"$\beta$")
        ax.set_ylabel("time")
        ax.set_title(f"1 - cos(angle) = {1 - math.cos(args.angle):.3f}, 1 - alpha = {1 - summary['alpha']:.3f}")
        ax.legend()
        return fig


@register
class StaircaseRun:
    """The energy staircase of USA (n = 5 on the circle) on the arclength clock, beta from 500 to 8000."""

    name = "staircase"

    def add_arguments(self, p):
        # float64 holds e^{-beta (1 - cos g)} down to e^{-745}: for this start (last gap 0.40) beta <= 9000.
        p.add_argument("--betas", type=float, nargs="+", default=[500.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0,
                                                                    6000.0, 8000.0])
        p.add_argument("--points", type=int, default=2001, help="recorded clock values")

    def _start(self):
        theta0 = 0.5 * torch.tensor([0.0, 0.5, 2.0, 4.0, 7.0], dtype=torch.float64) * math.log(2000) / math.sqrt(2000)
        return theta0, circle.staircase_limit(theta0)

    def units(self, args):
        return _beta_units(args)

    def run_unit(self, key, args):
        theta0, limit = self._start()
        s = torch.linspace(0, 1.15 * limit.jumps[-1], args.points, dtype=torch.float64)
        x0 = circle.points(theta0).to(device=args.device, dtype=args.torch_dtype)
        energy = metastability.staircase(x0, [_beta(key)], s, progress=True)
        return {"s": s, "energy": energy[:, 0].cpu()}

    def summarise(self, results, args):
        _, limit = self._start()
        keys = _beta_units(args)
        return {"s": results[keys[0]]["s"], "betas": np.array(args.betas),
                "energy": np.stack([results[k]["energy"] for k in keys]),
                "levels": limit.levels, "jumps": limit.jumps}

    def plot(self, summary, args):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        for beta, energy in zip(summary["betas"], summary["energy"]):
            ax.plot(summary["s"], energy, label=rf"$\beta$ = {beta:g}")
        edges = np.concatenate([[0.0], summary["jumps"], [summary["s"][-1]]])
        ax.step(edges, np.concatenate([summary["levels"], summary["levels"][-1:]]), where="post", color="k",
                ls="--", label="limit")
        ax.set_xlabel("arclength clock $s$")
        ax.set_ylabel("normalised energy")
        ax.legend()
        return fig


@register
class ClusterNumber:
    """Number of clusters at the first plateau of SA on the circle against beta, with the fitted exponent."""

    name = "cluster-number"

    def add_arguments(self, p):
        p.add_argument("--n", type=int, default=4096)
        p.add_argument("--seeds", type=int, default=16)
        p.add_argument("--betas", type=float, nargs="+", default=[8.0 * 2 ** k for k in range(8)])
        p.add_argument("--tmax", type=float, default=200.0)
        p.add_argument("--times", type=int, default=60)

    def units(self, args):
        return _beta_units(args)

    def run_unit(self, key, args):
        t = flow.log_times(1.0, args.tmax, args.times)
        counts = metastability.cluster_counts([_beta(key)], args.n, 2, args.seeds, t, seed=args.seed, rtol=1e-5,
                                              atol=1e-7, dtype=args.torch_dtype, device=args.device, progress=True)
        first = [next((v for v, _, _ in clusters.plateaus(t[1:], c[1:], 2.0) if v < args.n // 2), np.nan)
                 for c in counts[:, 0].cpu().T]
        return {"first": np.array(first, dtype=float)}

    def summarise(self, results, args):
        betas = np.array(args.betas)
        first = np.stack([results[k]["first"] for k in _beta_units(args)])
        mean = np.nanmean(first, axis=1)
        return {"betas": betas, "first": first, "exponent": rates.power_law(betas, mean).slope,
                "fastest": np.array([circle.fastest_mode(b) for b in betas])}

    def plot(self, summary, args):
        import matplotlib.pyplot as plt

        from .. import plot

        fig, ax = plt.subplots()
        plot.loglog(ax, summary["betas"], np.nanmean(summary["first"], axis=1), label="first plateau")
        ax.loglog(summary["betas"], summary["fastest"], "k--", label=r"$k^*(\beta)$")
        ax.set_xlabel(r"$\beta$")
        ax.set_ylabel("clusters")
        ax.legend()
        return fig
