r"""Two-layer networks as interacting particle systems: the mean-field picture of training.

A network :math:`f_n(x)=\frac1n\sum_i c_i\varphi(x,y_i)` is a cloud of particles :math:`(c_i, y_i)`;
its loss is an energy of their empirical measure, with a one-body potential :math:`F` and a
two-body interaction :math:`K`, and gradient descent with learning rate :math:`\Delta t/n` moves
the particles by an interacting system whose many-particle limit is a McKean-Vlasov equation.
Book: Chapter 6, "Mean-field limits of two-layer networks"; the SGD chapter builds on
:func:`gd_step` and :func:`train` (mini-batch data as a callable, a noisy ``step``); Chapter 8
adds neuron birth-death (:class:`BirthDeath`, a ``step``) and its mean-field limit on weighted
particles (:func:`train_weighted`).

>>> from nnips import meanfield
>>> target = meanfield.ThreeSpin(5, seed=0)
>>> data = target.sample(200, seed=1)
>>> unit = meanfield.Ridge("relu", bias=True)
>>> c, y = meanfield.initial(64, unit.dim(5), c_std=0.0, y_std=0.5, seed=2)
>>> run = meanfield.train(c, y, unit, data, dt=0.1, steps=20)
>>> bool(run.loss[-1] < run.loss[0])
True
"""

from ._birth_death import BirthDeath, WeightedRun, potential, train_weighted
from ._kernel import linearized_fit, tangent_kernel
from ._linear import LinearRegression, Moments, SGDPath
from ._particles import (Data, Run, characteristics, gd_step, initial, loss, loss_from_potentials, output,
                         pair_covariance, potentials, relative_displacement, resample, train, velocity)
from ._sgd import (DiffusionStep, DropoutStep, Excess, MiniBatches, PenaltyStep, dropout_loss, dropout_penalty,
                   excess_loss, flatten, noise_covariance, per_sample_velocity, step_seed)
from ._targets import GaussianClasses, RadialRun, Teacher, ThreeSpin
from ._units import RBF, RELU, TANH, Activation, PiecewiseLinear, Ridge

__all__ = ["Activation", "RELU", "TANH", "PiecewiseLinear", "Ridge", "RBF",
           "Data", "Run", "initial", "output", "loss", "potentials", "loss_from_potentials", "velocity",
           "gd_step", "train", "characteristics", "resample", "relative_displacement", "pair_covariance",
           "ThreeSpin", "Teacher", "GaussianClasses", "RadialRun",
           "tangent_kernel", "linearized_fit",
           "per_sample_velocity", "noise_covariance", "flatten", "step_seed", "MiniBatches", "DiffusionStep",
           "DropoutStep", "PenaltyStep", "dropout_loss", "dropout_penalty", "LinearRegression", "SGDPath", "Moments",
           "Excess", "excess_loss", "BirthDeath", "WeightedRun", "potential", "train_weighted"]
