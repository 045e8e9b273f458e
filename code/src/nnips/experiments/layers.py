"""Discrete layers vs continuous time: error of L-layer networks against the flow map (Chapter 1)."""

from __future__ import annotations

import torch

from .. import attention, flow, rates, sphere
from . import register


@register
class Layers:
    """Error at time T of the layer scheme and RK4 with L layers, against a fine RK4 reference."""

    name = "layers"

    def add_arguments(self, p):
        p.add_argument("--n", type=int, default=4096, help="tokens")
        p.add_argument("--d", type=int, default=64, help="dimension")
        p.add_argument("--beta", type=float, default=1.0)
        p.add_argument("--T", type=float, default=2.0)
        p.add_argument("--batch", type=int, default=8, help="independent starts")
        p.add_argument("--layers", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])

    def units(self, args):
        return [f"L{L}" for L in args.layers]

    def _start_and_reference(self, args):
        if not hasattr(self, "_ref"):
            x0 = sphere.uniform(args.n, args.d, batch=args.batch, seed=args.seed, dtype=args.torch_dtype,
                                device=args.device)
            field = attention.SelfAttention(args.beta)
            # RK4 with 8x the finest step: its error is (1/8)^4 of the finest RK4 run's.
            ref = flow.integrate(field, x0, [0.0, args.T], method="rk4", dt=args.T / (8 * max(args.layers)))[-1]
            self._ref = (field, x0, ref)
        return self._ref

    def run_unit(self, key, args):
        field, x0, ref = self._start_and_reference(args)
        L = int(key[1:])
        out = {}
        for method in ("layer", "rk4"):
            x = flow.integrate(field, x0, [0.0, args.T], method=method, dt=args.T / L)[-1]
            out[method] = (x - ref).norm(dim=-1).amax(dim=-1).mean().double().cpu()
        return out

    def summarise(self, results, args):
        L = torch.tensor(args.layers, dtype=torch.float64)
        summary = {"layers": L.numpy()}
        for method in ("layer", "rk4"):
            err = torch.tensor([float(results[f"L{k}"][method]) for k in args.layers], dtype=torch.float64)
            summary[method] = err.numpy()
            summary[f"{method}_order"] = -rates.power_law(L, err).slope
        return summary

    def plot(self, summary, args):
        import matplotlib.pyplot as plt

        from .. import plot

        fig, ax = plt.subplots()
        for method, color in (("layer", plot.PALETTE[0]), ("rk4", plot.PALETTE[1])):
            plot.loglog(ax, summary["layers"], summary[method], label=method, color=color)
        ax.set_xlabel("layers L")
        ax.set_ylabel(r"max$_i\,\|x_i^{(L)}-x_i(T)\|$")
        return fig
