"""Chapter 8, "Beyond Wasserstein", at paper scale: transport maps learned by CNFs, and neuron birth-death.

``transport-maps``: one unit trains one continuous normalizing flow of width ``m`` and depth ``L``
on samples of the banana law; the summary lists the divergence from the target and W2 to held-out
samples for every (m, L), next to the sampling floor of W2.

``birth-death``: one unit trains, for one width ``n``, a batch of networks of Gaussian units with
gradient descent, with birth-death, and the weighted-particle solution of the mean-field equation
with reaction; the summary lists the speed-ups at each loss level and the distance of the
birth-death networks to the weighted solution (which should fall with ``n``).

Examples (small enough for a CPU)::

    python -m nnips.experiments transport-maps --widths 2 8 --depths 4 --N 1000 --eval 1000 --iterations 300
    python -m nnips.experiments birth-death --widths 64 256 --seeds 4 --steps 1000 --dt 0.1
    python -m nnips.experiments birth-death --device cuda --dtype float32 --widths 1024 4096 16384 --seeds 64
"""

from __future__ import annotations

import numpy as np
import torch

from .. import control, meanfield, rates, wasserstein
from . import register


@register
class TransportMaps:
    """KL and W2 of continuous normalizing flows of several widths and depths, trained on the banana law."""

    name = "transport-maps"

    def add_arguments(self, p):
        p.add_argument("--widths", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
        p.add_argument("--depths", type=int, nargs="+", default=[1, 2, 4, 8, 16],
                       help="depths L, trained at the width --depth-width")
        p.add_argument("--depth-width", type=int, default=8)
        p.add_argument("--width-depth", type=int, default=4, help="depth L of the width sweep")
        p.add_argument("--T", type=float, default=2.0, help="time horizon of the flow")
        p.add_argument("--N", type=int, default=20000, help="training samples")
        p.add_argument("--eval", type=int, default=4000, help="held-out samples (W2 by POT on the CPU)")
        p.add_argument("--iterations", type=int, default=3000)
        p.add_argument("--lr", type=float, default=0.03)
        p.add_argument("--kinetic", type=float, default=0.3, help="kinetic penalty lambda")
        p.add_argument("--batch", type=int, default=None, help="mini-batch size (default: full batch)")

    def units(self, args):
        pairs = [(m, args.width_depth) for m in args.widths] + [(args.depth_width, L) for L in args.depths]
        return [f"m{m}_L{L}" for m, L in dict.fromkeys(pairs)]

    def _samples(self, args):
        target = control.Banana(a=0.5, s=0.5)
        return (target, target.sample(args.N, seed=args.seed), target.sample(args.eval, seed=args.seed + 1),
                target.sample(args.eval, seed=args.seed + 2))

    def run_unit(self, key, args):
        m, L = (int(part[1:]) for part in key.split("_"))
        target, data, test, _ = self._samples(args)
        net = control.ResNet.random(2, m, L, args.T, seed=args.seed, dtype=args.torch_dtype, device=args.device)
        flow = control.CNF(net)
        history = control.train_cnf(flow, data, iterations=args.iterations, lr=args.lr, kinetic=args.kinetic,
                                    batch=args.batch, seed=args.seed)
        with torch.no_grad():
            logp = torch.cat([flow.log_prob(chunk).double().cpu() for chunk in test.split(4096)])
            pushed = flow.sample(args.eval, seed=args.seed + 5).double().cpu()
        return {"history": history, "kl": torch.tensor((target.log_prob(test) - logp).mean().item()),
                "w2": torch.tensor(wasserstein.w2(pushed, test))}

    def summarise(self, results, args):
        _, _, test, other = self._samples(args)
        summary = {"floor": np.array(wasserstein.w2(other, test))}
        for name, pairs in (("width", [(m, args.width_depth) for m in args.widths]),
                            ("depth", [(args.depth_width, L) for L in args.depths])):
            summary[f"{name}_values"] = np.array([m if name == "width" else L for m, L in pairs], dtype=float)
            summary[f"{name}_kl"] = np.array([float(results[f"m{m}_L{L}"]["kl"]) for m, L in pairs])
            summary[f"{name}_w2"] = np.array([float(results[f"m{m}_L{L}"]["w2"]) for m, L in pairs])
        return summary

    def plot(self, summary, args):
        import matplotlib.pyplot as plt

        from .. import plot

        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
        for name, color in (("width", 0), ("depth", 1)):
            left.plot(summary[f"{name}_values"], summary[f"{name}_kl"], "o-", color=plot.PALETTE[color], label=name)
            right.plot(summary[f"{name}_values"], summary[f"{name}_w2"], "o-", color=plot.PALETTE[color], label=name)
        right.axhline(float(summary["floor"]), ls="--", color="0.5", label="sampling floor")
        left.set_ylabel("KL(target || model)")
        right.set_ylabel("W2 to held-out samples")
        for ax in (left, right):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("width m or depth L")
            ax.legend()
        fig.suptitle(f"banana law, N = {args.N} samples")
        return fig


@register
class BirthDeathExperiment:
    """Gradient descent against neuron birth-death, and the mean-field limit with reaction, over widths."""

    name = "birth-death"

    def add_arguments(self, p):
        p.add_argument("--widths", type=int, nargs="+", default=[64, 256, 1024, 4096])
        p.add_argument("--seeds", type=int, default=16, help="networks per width")
        p.add_argument("--M", type=int, default=400, help="data points on [-4, 4]")
        p.add_argument("--alpha", type=float, default=20.0, help="birth-death rate")
        p.add_argument("--dt", type=float, default=0.05)
        p.add_argument("--steps", type=int, default=2000)
        p.add_argument("--every", type=int, default=5, help="record the loss every so many steps")
        p.add_argument("--levels", type=float, nargs="+", default=[1e-2, 5e-3, 1e-3])

    def units(self, args):
        return [f"n{n}" for n in args.widths]

    def _setting(self, args):
        to = {"dtype": args.torch_dtype, "device": args.device}
        unit = meanfield.RBF(alpha=4.0)
        x = torch.linspace(-4, 4, args.M, **to)[:, None]
        f = meanfield.output(torch.tensor([1.5, 0.5], **to), torch.tensor([[-2.0], [2.0]], **to), unit, x)
        return unit, meanfield.Data(x, f)

    def run_unit(self, key, args):
        n = int(key[1:])
        unit, data = self._setting(args)
        c, y = meanfield.initial(n, 1, batch=args.seeds, seed=args.seed + n, y_std=2.0, c_value=1.0,
                                 dtype=args.torch_dtype, device=args.device)
        record = range(0, args.steps + 1, args.every)
        gd = meanfield.train(c, y, unit, data, args.dt, args.steps, record=record, learn_c=False)
        bd = meanfield.train(c, y, unit, data, args.dt, args.steps, record=record, learn_c=False,
                             step=meanfield.BirthDeath(args.alpha, seed=args.seed + 1))
        weighted = meanfield.train_weighted(c, y, unit, data, args.dt, args.steps, args.alpha, learn_c=False,
                                            record=record)
        return {"t": gd.t.double().cpu(), "gd": gd.loss.double().cpu(), "bd": bd.loss.double().cpu(),
                "weighted": weighted.loss.double().cpu()}

    def summarise(self, results, args):
        def time_to(t, loss, level):
            below = np.nonzero(loss.mean(-1) < level)[0]
            return float(t[below[0]]) if len(below) else np.inf

        widths = np.array(args.widths, dtype=float)
        speed = np.array([[time_to(r["t"], r["gd"], level) / time_to(r["t"], r["bd"], level) for level in args.levels]
                          for r in (results[f"n{n}"] for n in args.widths)])
        gap = np.array([float(np.abs(np.log(r["bd"][1:].mean(-1)) - np.log(r["weighted"][1:].mean(-1))).mean())
                        for r in (results[f"n{n}"] for n in args.widths)])
        summary = {"widths": widths, "levels": np.array(args.levels), "speed_up": speed, "gap_to_weighted": gap}
        if len(widths) > 1 and (gap > 0).all():
            summary["gap_slope"] = rates.power_law(widths, gap).slope
        return summary

    def plot(self, summary, args):
        import matplotlib.pyplot as plt

        from .. import plot

        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
        largest = np.load(f"{args.out}/{self.name}/units/n{args.widths[-1]}.npz")
        for key, color, label in (("gd", 0, "gradient descent"), ("bd", 1, "birth-death"), ("weighted", 2, "weighted")):
            left.semilogy(largest["t"], largest[key].mean(-1), color=plot.PALETTE[color], label=label)
        left.set_xlabel("time t")
        left.set_ylabel(f"loss (n = {args.widths[-1]})")
        left.legend()
        plot.loglog(right, summary["widths"], summary["gap_to_weighted"], fit=len(args.widths) > 1)
        right.set_xlabel("width n")
        right.set_ylabel("mean |log loss(BD) - log loss(weighted)|")
        return fig
