"""Excess loss of SGD over gradient descent against temperature and width on the 3-spin target (Chapter 7)."""

from __future__ import annotations

import numpy as np

from .. import meanfield, rates
from . import register


@register
class SGDTemperature:
    """SGD excess loss over GD on the 3-spin target: fixed temperature dt/P, dt/P = a/n, and dt/P at fixed n."""

    name = "sgd-temperature"

    def add_arguments(self, p):
        p.add_argument("--d", type=int, default=25, help="dimension of the 3-spin target")
        p.add_argument("--M", type=int, default=20000, help="data points (the data law)")
        p.add_argument("--unit", default="tanh", choices=["tanh", "relu"])
        p.add_argument("--dt", type=float, default=0.25, help="mean-field time step (learning rate dt/n)")
        p.add_argument("--steps", type=int, default=4000)
        p.add_argument("--seeds", type=int, default=32, help="SGD runs per (n, P)")
        p.add_argument("--widths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
        p.add_argument("--fixed-P", type=int, default=8, help="mini-batch size of the fixed-temperature series")
        p.add_argument("--a", type=float, default=2.0, help="temperature a/n series: P = round(n dt / a)")
        p.add_argument("--n-fixed", type=int, default=1024, help="width of the temperature series")
        p.add_argument("--temperatures-P", type=int, nargs="+", default=[4, 8, 16, 32, 64])

    def _scaled_P(self, n, args):
        return max(1, round(n * args.dt / args.a))

    def _pairs(self, args):
        pairs = [(n, args.fixed_P) for n in args.widths] + [(n, self._scaled_P(n, args)) for n in args.widths]
        pairs += [(args.n_fixed, P) for P in args.temperatures_P]
        return list(dict.fromkeys(pairs))

    def units(self, args):
        return [f"n{n}_P{P}" for n, P in self._pairs(args)]

    def run_unit(self, key, args):
        n, P = (int(part[1:]) for part in key.split("_"))
        target = meanfield.ThreeSpin(args.d, seed=args.seed)
        data = target.sample(args.M, seed=args.seed + 1)
        data = meanfield.Data(data.x.to(dtype=args.torch_dtype, device=args.device),
                              data.f.to(dtype=args.torch_dtype, device=args.device))
        unit = meanfield.Ridge(args.unit, bias=True)
        c, y = meanfield.initial(n, unit.dim(args.d), seed=args.seed + n, c_std=0.5, y_std=0.5,
                                 dtype=args.torch_dtype, device=args.device)
        out = meanfield.excess_loss(c, y, unit, data, args.dt, args.steps, args.seeds, P=P,
                                    seed=args.seed + 1000 * n + P)
        return {"excess": out.excess, "stderr": out.stderr, "gd": float(out.gd.mean())}

    def summarise(self, results, args):
        def series(pairs):
            return np.array([float(results[f"n{n}_P{P}"]["excess"]) for n, P in pairs])

        widths = np.array(args.widths, dtype=float)
        fixed = series([(n, args.fixed_P) for n in args.widths])
        scaled = series([(n, self._scaled_P(n, args)) for n in args.widths])
        temperatures = np.array([args.dt / P for P in args.temperatures_P])
        at_n = series([(args.n_fixed, P) for P in args.temperatures_P])
        summary = {"widths": widths, "fixed_excess": fixed, "scaled_excess": scaled,
                   "scaled_temperature": np.array([args.dt / self._scaled_P(n, args) for n in args.widths]),
                   "temperatures": temperatures, "temperature_excess": at_n,
                   "gd": np.array([float(results[f"n{n}_P{args.fixed_P}"]["gd"]) for n in args.widths]),
                   "slope_fixed": np.nan, "slope_scaled": np.nan, "slope_temperature": np.nan}
        for key, x, y in (("slope_fixed", widths, fixed), ("slope_scaled", widths, scaled),
                          ("slope_temperature", temperatures, at_n)):
            if (y > 0).all():
                summary[key] = rates.power_law(x, y).slope
        return summary

    def plot(self, summary, args):
        import matplotlib.pyplot as plt

        from .. import plot

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for values, label, k in ((summary["fixed_excess"], f"dt/P = {args.dt / args.fixed_P:g}", 0),
                                 (summary["scaled_excess"], f"dt/P = {args.a:g}/n", 1)):
            plot.loglog(axes[0], summary["widths"], np.abs(values), label=label, color=plot.PALETTE[k],
                        fit=bool((values > 0).all()))
        axes[0].set_xlabel("units $n$")
        axes[0].set_ylabel("excess loss of SGD over GD")
        plot.loglog(axes[1], summary["temperatures"], np.abs(summary["temperature_excess"]),
                    label=f"n = {args.n_fixed}", fit=bool((summary["temperature_excess"] > 0).all()))
        axes[1].set_xlabel("temperature dt/P")
        fig.suptitle(f"3-spin target, d = {args.d}, t = {args.steps * args.dt:g}")
        return fig
