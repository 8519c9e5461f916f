"""Gaussian random matrices and vectors as SymPy matrix symbols.

A :class:`GaussianMatrix` is an ordinary ``MatrixSymbol`` (it prints, transposes and
multiplies like one) whose entries the engine knows are i.i.d. N(0, 1).  Symbols with
distinct names are independent; the same name is the same matrix.  Other variances are
written as scalar multiples, ``s * X``, so the engine only ever pairs unit-variance entries.
A column covariance (``covariance=Sigma``, a :class:`~symmaml.rmt.covariance.Covariance`) gives
i.i.d. rows ``N(0, Sigma)``, the law of ``G Sigma^{1/2}``; the engine inserts ``Sigma`` where it pairs.
"""
from __future__ import annotations

import sympy as sp

__all__ = ["GaussianMatrix", "gaussian_matrix", "gaussian_vector", "is_gaussian", "has_gaussian"]


class GaussianMatrix(sp.MatrixSymbol):
    """A ``rows x cols`` matrix of i.i.d. standard normal entries, or, with a ``covariance``
    (``cols x cols``), of i.i.d. rows ``N(0, covariance)``."""

    def __new__(cls, name, n, m, covariance=None):
        obj = super().__new__(cls, name, n, m)
        if covariance is None:
            return obj
        if covariance.shape != (obj.shape[1], obj.shape[1]):
            raise ValueError(f"the covariance of {name} must be {obj.shape[1]} x {obj.shape[1]}, "
                             f"got {covariance.shape[0]} x {covariance.shape[1]}")
        return sp.Basic.__new__(cls, *obj.args, covariance)

    @property
    def covariance(self):
        """The column covariance (``None``: the identity)."""
        return self.args[3] if len(self.args) > 3 else None


def _dim(name: str, value):
    value = sp.sympify(value)
    if value.is_number and not (value.is_integer and value.is_positive):
        raise ValueError(f"{name} must be a positive integer or a symbol, got {value}")
    if value.is_number is False and value.is_positive is False:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def gaussian_matrix(name: str, rows, cols, covariance=None) -> GaussianMatrix:
    """A Gaussian matrix symbol: entries i.i.d. N(0, 1), shape ``rows x cols`` (symbolic allowed);
    with ``covariance`` (a :class:`~symmaml.rmt.covariance.Covariance` of size ``cols``) its rows are
    i.i.d. ``N(0, covariance)``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if covariance is not None:
        from .covariance import Covariance

        if not isinstance(covariance, Covariance):
            raise TypeError(f"covariance must be a symmaml.rmt.Covariance, got {type(covariance).__name__}")
    return GaussianMatrix(name, _dim("rows", rows), _dim("cols", cols), covariance)


def gaussian_vector(name: str, dim, scale=1) -> sp.MatrixExpr:
    """A column vector ``scale * g`` with ``g ~ N(0, I_dim)``, i.e. law N(0, scale^2 I)."""
    g = gaussian_matrix(name, _dim("dim", dim), 1)
    scale = sp.sympify(scale)
    return g if scale == 1 else scale * g


def is_gaussian(x) -> bool:
    return isinstance(x, GaussianMatrix)


def has_gaussian(expr) -> bool:
    """Whether ``expr`` contains a Gaussian matrix symbol."""
    return isinstance(expr, sp.Basic) and any(isinstance(a, GaussianMatrix) for a in expr.atoms(sp.MatrixSymbol))
