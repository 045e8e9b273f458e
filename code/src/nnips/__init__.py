"""nnips: neural networks as interacting particle systems.

The shared package of the executable book *Neural Networks as Interacting Particle Systems*:
tokens of a Transformer as particles on the sphere, residual networks as neural ODEs, and
two-layer networks in the mean-field limit.

>>> from nnips import sphere, attention, flow, equiangular
"""

import importlib

from . import (attention, circle, clusters, control, equiangular, flow, interpolation, landscape, meanfield,
               metastability, phase, polyhedra, pretrained, rates, rescaled, scale, sinkformer, sphere, svgd,
               unbalanced)

__all__ = [
    # Transformers as particle systems on the sphere
    "sphere", "attention", "flow", "equiangular", "clusters", "phase", "rescaled", "polyhedra", "pretrained",
    "circle", "landscape", "metastability", "interpolation", "sinkformer", "svgd", "wasserstein", "unbalanced",
    # Neural ODEs and mean-field training
    "control", "meanfield",
    # Tools
    "rates", "scale", "plot", "experiments",
]
__version__ = "0.1.0"

# These pull in matplotlib and seaborn, POT, or the command line: import them only when asked for.
_LAZY = ("plot", "wasserstein", "experiments")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
