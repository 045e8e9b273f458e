"""nnips: neural networks as interacting particle systems.

The shared package of the executable book *Neural Networks as Interacting Particle Systems*:
tokens of a Transformer as particles on the sphere, residual networks as neural ODEs, and
two-layer networks in the mean-field limit.

>>> from nnips import sphere, attention, flow, equiangular
"""

from . import attention, clusters, control, equiangular, flow, rates, scale, sphere

__all__ = ["sphere", "attention", "flow", "equiangular", "clusters", "control", "rates", "scale", "plot",
           "experiments"]
__version__ = "0.1.0"


def __getattr__(name):
    # plot pulls in matplotlib and seaborn, experiments the CLI; import them only when asked for.
    if name in ("plot", "experiments"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
