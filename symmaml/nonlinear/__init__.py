"""Nonlinear regression: MAML on a wide two-layer ReLU network and its neural-tangent-kernel theory.

The task family is ``y = (w.x + b)^2 + z`` with ``x ~ N(0, I_d)``, ``w ~ N(0, (nu^2/d) I_d)``,
``b ~ N(0, beta^2)``, ``z ~ N(0, sigma^2)``; the network is
``f(x; theta) = (1/sqrt(k)) sum_j a_j relu(u_j.x/sqrt(d) + c_j)`` (NTK parameterisation, all
parameters trained).  Modules (one concept each):

- ``kernels``: the infinite-width kernels (NTK and NNGP), derived as Gaussian expectations;
  ``ntk(X1, X2)``, ``nngp(X1, X2)`` are their fast NumPy versions;
- ``kernel_maml``: one-step MAML on the linearised network, derived in kernel blocks;
- ``ntk_sim``: ``ntk_simulate``, Monte Carlo of the exact kernel formula (the infinite-width
  ground truth);
- ``theory``: ``average_test_loss``, the algebraic average test loss;
- ``network``, ``experiment``, ``linearised``: the finite network in JAX, MAML training
  (``train_maml``; ``train_many``: a sweep of points, in process or on Dask) and MAML on its explicit linearisation (JAX is imported there only).

Names are resolved lazily, so ``import symmaml.nonlinear`` never imports JAX.
"""
from __future__ import annotations

import importlib

__all__ = ["ntk", "nngp", "ntk_simulate", "average_test_loss", "train_maml", "train_many"]

_WHERE = {
    "ntk": "kernels",
    "nngp": "kernels",
    "ntk_simulate": "ntk_sim",
    "average_test_loss": "theory",
    "train_maml": "experiment",
    "train_many": "experiment",
}


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'symmaml.nonlinear' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__():
    return sorted(list(globals()) + __all__)
