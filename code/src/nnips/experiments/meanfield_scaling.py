"""Loss of trained two-layer networks against their width, and of Monte-Carlo samples (Chapter 6)."""

from __future__ import annotations

import pathlib

import numpy as np
import torch

from .. import meanfield, rates
from . import register


@register
class MeanfieldScaling:
    """Loss against width n on the 3-spin target: GD-trained networks and Monte-Carlo resamples."""

    name = "meanfield-scaling"

    def add_arguments(self, p):
        p.add_argument("--d", type=int, default=25, help="dimension of the 3-spin target")
        p.add_argument("--M", type=int, default=20000, help="data points (the data law)")
        p.add_argument("--test", type=int, default=20000, help="fresh test points")
        p.add_argument("--widths", type=int, nargs="+", default=[64, 256, 1024, 4096, 16384])
        p.add_argument("--reference", type=int, default=65536, help="width of the reference network")
        p.add_argument("--seeds", type=int, default=8, help="trained networks per width")
        p.add_argument("--draws", type=int, default=64, help="Monte-Carlo resamples per width")
        p.add_argument("--unit", default="tanh", choices=["tanh", "relu"])
        p.add_argument("--dt", type=float, default=0.05, help="mean-field time step (learning rate dt/n)")
        p.add_argument("--steps", type=int, default=40000)
        p.add_argument("--max-elements", type=float, default=2e8,
                       help="largest (networks x width x M) feature tensor; more networks are run in turn")

    def units(self, args):
        return ["reference"] + [f"n{n}" for n in args.widths]

    def _setting(self, args):
        target = meanfield.ThreeSpin(args.d, seed=args.seed)
        to = {"dtype": args.torch_dtype, "device": args.device}
        data, test = target.sample(args.M, seed=args.seed + 1), target.sample(args.test, seed=args.seed + 2)
        data = meanfield.Data(data.x.to(**to), data.f.to(**to))
        test = meanfield.Data(test.x.to(**to), test.f.to(**to))
        return meanfield.Ridge(args.unit, bias=True), data, test

    def _train(self, n, networks, seed, args):
        """Train `networks` networks of width n in chunks that fit the memory budget; final train/test losses."""
        unit, data, test = self._setting(args)
        chunk = max(1, int(args.max_elements // (n * args.M)))
        losses, tests, last = [], [], None
        for start in range(0, networks, chunk):
            size = min(chunk, networks - start)
            c, y = meanfield.initial(n, unit.dim(args.d), batch=size, seed=seed + start, c_std=0.5, y_std=0.5,
                                     dtype=args.torch_dtype, device=args.device)
            run = meanfield.train(c, y, unit, data, args.dt, args.steps, test=test)
            losses.append(run.loss[-1])
            tests.append(run.test[-1])
            last = (run.c[-1], run.y[-1])
        return torch.cat(losses), torch.cat(tests), last

    def run_unit(self, key, args):
        unit, data, test = self._setting(args)
        if key == "reference":
            loss, test_loss, (c, y) = self._train(args.reference, 1, args.seed + 7, args)
            return {"loss": loss.double().cpu(), "test": test_loss.double().cpu(), "c": c[0].double().cpu(),
                    "y": y[0].double().cpu()}
        n = int(key[1:])
        saved = np.load(pathlib.Path(args.out) / self.name / "units" / "reference.npz")
        c_ref = torch.as_tensor(saved["c"]).to(dtype=args.torch_dtype, device=args.device)
        y_ref = torch.as_tensor(saved["y"]).to(dtype=args.torch_dtype, device=args.device)
        loss, test_loss, _ = self._train(n, args.seeds, args.seed + 100 * n, args)
        chunk = max(1, int(args.max_elements // (n * args.M)))
        resampled = torch.cat([meanfield.loss(*meanfield.resample(c_ref, y_ref, n, batch=min(chunk, args.draws - s),
                                                                 seed=args.seed + n + s), unit, data)
                               for s in range(0, args.draws, chunk)])
        return {"loss": loss.double().cpu(), "test": test_loss.double().cpu(), "resampled": resampled.double().cpu()}

    def summarise(self, results, args):
        widths = np.array(args.widths, dtype=float)
        reference = float(results["reference"]["loss"][0])
        trained = np.array([float(np.mean(results[f"n{n}"]["loss"])) for n in args.widths])
        excess = np.array([float(np.mean(results[f"n{n}"]["resampled"])) - reference for n in args.widths])
        summary = {"widths": widths, "trained": trained, "trained_test": np.array(
            [float(np.mean(results[f"n{n}"]["test"])) for n in args.widths]), "resampled_excess": excess,
            "reference_loss": reference,
            "trained_slope": rates.power_law(widths, trained).slope}
        if (excess > 0).all():
            summary["resampled_slope"] = rates.power_law(widths, excess).slope
        return summary

    def plot(self, summary, args):
        import matplotlib.pyplot as plt

        from .. import plot

        fig, ax = plt.subplots()
        plot.loglog(ax, summary["widths"], summary["trained"], label="trained by GD: loss")
        if (summary["resampled_excess"] > 0).all():
            plot.loglog(ax, summary["widths"], summary["resampled_excess"], color=plot.PALETTE[1], marker="s",
                        label="Monte-Carlo resample: loss minus the reference's")
        ax.set_xlabel("units $n$")
        ax.set_ylabel("loss (half the mean squared error)")
        ax.set_title(f"3-spin target, d = {args.d}, t = {args.steps * args.dt:g}")
        return fig
