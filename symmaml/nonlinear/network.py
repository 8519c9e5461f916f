"""The two-layer ReLU network of nonlinear regression, in JAX: initialisation, both parameterisations,
the task family, and the network's features (its Jacobian) and empirical kernels.

Parameters ``theta = Params(a, u, c)``: ``a`` (k,), ``u`` (k, d), ``c`` (k,), ``k`` the width.

* ``'ntk'`` (the model of ``shared/spec/model.md``; kernel of order 1):
  ``f(x) = (1/sqrt(k)) sum_j a_j relu(u_j.x/sqrt(d) + c_j)``, with ``a_j, c_j ~ N(0, 1)`` and
  ``u_j ~ N(0, I_d)`` at initialisation; these are the trained parameters.
* ``'standard'`` (PyTorch-style): ``f(x) = sum_j A_j relu(W_j.x + C_j)`` with the raw weights
  ``A = a/sqrt(k)``, ``W = u/sqrt(d)``, ``C = c`` trained directly (stored in ``Params(a=A, u=W, c=C)``).
  Its function at initialisation has the same law as the NTK one (the same key gives the same
  function), but the gradient step in these coordinates is larger: its tangent kernel is
  ``k Theta_a + d Theta_u + Theta_c`` where ``Theta = Theta_a + Theta_u + Theta_c`` is the NTK one split by
  parameter group, so it grows like ``k``.  A rate ``alpha`` of the standard parameterisation acts like
  ``alpha * alpha_scale(k, d)`` of the NTK one, with ``alpha_scale = E Theta_std(x, x) / E Theta(x, x) =
  (k + (d + 1)/2) / 2`` (ratio of the mean kernel diagonals over ``x ~ N(0, I_d)`` and the initialisation).
  The ratio is not exact off the diagonal: the standard kernel is dominated by the readout part
  ``Theta_a``, so its infinite-width limit (with the rate scaled as ``1/k``) is not the NTK.

Initialisation and task sampling are NumPy (seeded ``numpy.random.Generator``: reproducible and quick to
set up); the network and its derivatives are JAX (imported when called, so this module and the constants
of :mod:`.experiment` import without it) and take the parameterisation as a static string.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .checks import check_real, check_size

__all__ = ["PARAMETERISATIONS", "Params", "init_params", "apply", "alpha_scale", "to_ntk", "target",
           "sample_tasks", "features", "empirical_ntk", "empirical_nngp", "require_jax", "check_size", "check_real", "check_parameterisation"]

PARAMETERISATIONS = ("ntk", "standard")


class Params(NamedTuple):
    """The trained parameters: readout ``a`` (k,), hidden weights ``u`` (k, d), hidden biases ``c`` (k,)."""

    a: object
    u: object
    c: object


# ----------------------------------------------------------------------------- validation (D1): checks.py

def require_jax() -> None:
    """Import JAX and optax, or fail with one line naming the extra that installs them."""
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
    except ImportError:
        raise ModuleNotFoundError("this needs JAX; install it with pip install 'symmaml[nn]'") from None


def check_parameterisation(value) -> str:
    if value not in PARAMETERISATIONS:
        raise ValueError(f"parameterisation must be one of {', '.join(PARAMETERISATIONS)}; got {value!r}")
    return value


# ----------------------------------------------------------------------------- the network

def init_params(rng: np.random.Generator, width: int, d: int, parameterisation: str = "ntk") -> Params:
    """theta_0 (NumPy float64): ``a, c ~ N(0, 1)``, ``u ~ N(0, I_d)`` (NTK); the standard raw weights are
    rescaled from the same draws, so a generator in the same state gives the same function."""
    a = rng.standard_normal(width)
    u = rng.standard_normal((width, d))
    c = rng.standard_normal(width)
    if parameterisation == "standard":
        return Params(a / math.sqrt(width), u / math.sqrt(d), c)
    return Params(a, u, c)


def apply(params: Params, X, parameterisation: str = "ntk"):
    """``f(X; theta)`` for points X (..., n, d) -> (..., n)."""
    import jax

    k, d = params.u.shape
    if parameterisation == "standard":
        h = X @ params.u.T + params.c
        return jax.nn.relu(h) @ params.a
    h = X @ params.u.T * (1.0 / math.sqrt(d)) + params.c
    return jax.nn.relu(h) @ params.a * (1.0 / math.sqrt(k))


def to_ntk(params: Params, parameterisation: str) -> Params:
    """The same function written in NTK coordinates (identity for ``'ntk'``)."""
    if parameterisation == "ntk":
        return params
    k, d = params.u.shape
    return Params(params.a * math.sqrt(k), params.u * math.sqrt(d), params.c)


def alpha_scale(width: int, d: int) -> float:
    """``E Theta_std(x,x) / E Theta(x,x) = (k + (d + 1)/2) / 2``: a standard-parameterisation rate ``alpha``
    acts like the NTK rate ``alpha * alpha_scale(k, d)`` (on the kernel's mean diagonal)."""
    return (check_size("width", width) + (check_size("d", d) + 1) / 2) / 2


# ----------------------------------------------------------------------------- the tasks

def target(X, w, b):
    """``g(x) = (w.x + b)^2`` for points X (..., n, d) of tasks ``w`` (..., d), ``b`` (...) (NumPy or JAX)."""
    return ((X @ w[..., None])[..., 0] + b[..., None]) ** 2


def sample_tasks(rng: np.random.Generator, shape: tuple, d: int, nu: float, beta: float):
    """Tasks ``w ~ N(0, (nu^2/d) I_d)``, ``b ~ N(0, beta^2)`` of batch shape ``shape`` (NumPy)."""
    w = rng.standard_normal((*shape, d)) * (nu / math.sqrt(d))
    b = rng.standard_normal(shape) * beta
    return w, b


# ----------------------------------------------------------------------------- features and kernels

@lru_cache(maxsize=None)
def _jitted(name: str, parameterisation: str):
    """The jit-compiled kernel functions (compiled once per parameterisation and shape)."""
    import jax
    from jax.flatten_util import ravel_pytree

    def feats(params, X):
        flat, unravel = ravel_pytree(params)
        return jax.jacrev(lambda v: apply(unravel(v), X, parameterisation))(flat)

    def ntk_(params, X1, X2):
        return feats(params, X1) @ feats(params, X2).T

    def nngp_(params, X1, X2):
        k, d = params.u.shape
        h1 = jax.nn.relu(X1 @ params.u.T * (1.0 / math.sqrt(d)) + params.c)
        h2 = jax.nn.relu(X2 @ params.u.T * (1.0 / math.sqrt(d)) + params.c)
        return h1 @ h2.T * (1.0 / k)
    return jax.jit({"features": feats, "ntk": ntk_, "nngp": nngp_}[name])


def features(params: Params, X, parameterisation: str = "ntk"):
    """``phi(X) = grad_theta f(X; theta)`` flattened in the order of :func:`jax.flatten_util.ravel_pytree`:
    shape (n, P), ``P = k (d + 2)``."""
    return _jitted("features", parameterisation)(params, X)


def empirical_ntk(params: Params, X1, X2, parameterisation: str = "ntk"):
    """The empirical tangent kernel ``phi(X1) phi(X2)^T`` of the network at ``params``: (n1, n2)."""
    return _jitted("ntk", parameterisation)(params, X1, X2)


def empirical_nngp(params: Params, X1, X2):
    """The covariance of ``f(.; theta)`` over the readout ``a ~ N(0, 1)`` given the hidden layer (NTK
    parameterisation): ``(1/k) sum_j relu(h_j(X1)) relu(h_j(X2))``, (n1, n2).  Its average over the hidden
    layer is the NNGP at every width; it converges to it like ``1/sqrt(k)``."""
    return _jitted("nngp", "ntk")(params, X1, X2)
