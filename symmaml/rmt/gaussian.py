"""Gaussian random matrices and vectors as SymPy matrix symbols.

A :class:`GaussianMatrix` is an ordinary ``MatrixSymbol`` (it prints, transposes and
multiplies like one) whose entries the engine knows are i.i.d. N(0, 1).  Symbols with
distinct names are independent; the same name is the same matrix.  Other variances are
written as scalar multiples, ``s * X``, so the engine only ever pairs unit-variance entries.
"""
from __future__ import annotations

import sympy as sp

__all__ = ["GaussianMatrix", "gaussian_matrix", "gaussian_vector", "is_gaussian", "has_gaussian"]


class GaussianMatrix(sp.MatrixSymbol):
    """A ``rows x cols`` matrix of i.i.d. standard normal entries."""


def _dim(name: str, value):
    value = sp.sympify(value)
    if value.is_number and not (value.is_integer and value.is_positive):
        raise ValueError(f"{name} must be a positive integer or a symbol, got {value}")
    if value.is_number is False and value.is_positive is False:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def gaussian_matrix(name: str, rows, cols) -> GaussianMatrix:
    """A Gaussian matrix symbol: entries i.i.d. N(0, 1), shape ``rows x cols`` (symbolic allowed)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    return GaussianMatrix(name, _dim("rows", rows), _dim("cols", cols))


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
