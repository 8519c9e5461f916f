"""Conditional expectations: average over some Gaussian matrices, hold the others fixed."""
from __future__ import annotations

import sympy as sp

from .expectation import expectation
from .gaussian import GaussianMatrix

__all__ = ["conditional_expectation", "freeze", "thaw"]


def freeze(expr, keep):
    """Replace the Gaussian matrices in ``keep`` by plain (deterministic) matrix symbols."""
    names = {k.name for k in keep}
    mapping = {g: sp.MatrixSymbol(g.name, *g.shape) for g in expr.atoms(GaussianMatrix) if g.name in names}
    return expr.xreplace(mapping), {v: k for k, v in mapping.items()}


def thaw(expr, back: dict):
    return expr.xreplace(back)


def conditional_expectation(expr, given, steps: bool = False):
    """``E[expr | given]``: the Gaussian matrices in ``given`` are held fixed, the rest averaged."""
    frozen, back = freeze(sp.sympify(expr), given)
    res = expectation(frozen, steps=steps)
    if steps:
        value, d = res
        return thaw(value, back), d
    return thaw(res, back)
