r"""Neural ODEs as control systems: ResNets, the linear-quadratic turnpike, and training as optimal control.

A ResNet with ``L`` layers and step :math:`h = T/L` is the explicit Euler scheme of the neural ODE
:math:`\dot x = W(t)\sigma(A(t)x + b(t))` (:mod:`.resnet`, Chapter 1). Training it is an optimal
control problem whose control is the parameters :math:`u(t)`: the scalar linear-quadratic problem
shows the turnpike in closed form (:mod:`.lq`), and :mod:`.learning` trains networks with final-time
or running losses and L2 or L1 penalties (Esteve, Geshkovski, Pighin, Zuazua, arXiv 2008.02491;
Esteve-Yagüe, Geshkovski, arXiv 2102.13566; Geshkovski, Zuazua, arXiv 2202.04097). Book: Chapters 1
and 5. :mod:`.cnf` adds the log-density along the flow: a continuous normalizing flow, a neural ODE
as a transport map between densities (Chapter 8).

>>> from nnips import control
>>> net = control.ResNet.random(d=3, m=16, L=20, T=5.0, seed=0, fixed_features=True)
>>> x0, y = control.discs(20, seed=0)
>>> history = control.train(net, x0, y, lam=0.1, iterations=5)
>>> bool(history[-1] < history[0])
True
"""

from .cnf import CNF, Banana, divergence, gaussian_log_density, train_cnf
from .learning import (costates, discs, layer_norms, objective, pontryagin_gradient, prox_l1, risk,
                       stopping_time, train)
from .lq import ScalarLQ
from .resnet import ResNet, flow_map, neural_ode_field, winding_number

__all__ = ["ResNet", "neural_ode_field", "flow_map", "winding_number", "ScalarLQ", "discs", "risk",
           "objective", "costates", "pontryagin_gradient", "prox_l1", "train", "layer_norms",
           "stopping_time", "CNF", "Banana", "divergence", "gaussian_log_density", "train_cnf"]
