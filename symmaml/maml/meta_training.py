"""What both regimes share: the meta-loss as a least-squares problem, and its random pieces.

For task i the query residual after the inner step is affine in omega:
``r_i(omega) = e_i - Z_i (omega - w0)`` with ``Z_i = X_v^{(i)} A_i`` and
``e_i = r_i(w0)`` (task offset and label noise, seen through the design).  Stacking the m
tasks gives the design ``Z`` (m n_v x p) and ``e``; the meta-loss is ``|e - Z(omega - w0)|^2``
up to a factor.  This module derives that form and the per-task moments the regimes need.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ..algebra import factor
from ..derivation import Derivation
from ..rmt import expect, expectation
from ..rmt.conditional import conditional_expectation
from ..symbols import m, n_v, p
from .model import MetaTrainingTask, omega, w0
from .rules import CONDITIONAL_AVERAGE, LINEAR_IN_OMEGA, WICK

__all__ = ["TASK", "OTHER_TASK", "Z", "e", "linearise", "task_noise_covariance", "identity_multiple"]

TASK = MetaTrainingTask("")
OTHER_TASK = MetaTrainingTask("'")

#: the stacked design and residual at w0 (symbolic stand-ins: m is a symbol)
Z = sp.MatrixSymbol("Z", m * n_v, p)
e = sp.MatrixSymbol("e", m * n_v, 1)


def linearise(d: Derivation):
    """Record that the query residual is affine in omega; return ``(Z_1, e_1)``."""
    r = TASK.query_residual(omega)
    e1 = TASK.query_residual(w0)
    z1 = TASK.Z
    check = sp.expand(r - e1 + z1 * (omega - w0))
    if check != sp.ZeroMatrix(*r.shape) and check != 0:
        raise AssertionError(f"the query residual is not e - Z(omega - w0): remainder {check}")
    d.add(LINEAR_IN_OMEGA, r, e1 - z1 * (omega - w0), lhs=sp.Symbol(r"r_1(\omega)"),
          note="the expanded difference is the zero matrix (checked by the engine)")
    return z1, e1


def identity_multiple(value, size) -> sp.Expr:
    """``c`` for a SymPy matrix ``value == c * I_size`` (raises otherwise)."""
    if value == sp.ZeroMatrix(size, size) or value == 0:
        return sp.S.Zero
    if isinstance(value, sp.Identity):
        return sp.S.One
    if isinstance(value, sp.MatMul):
        scalars = [a for a in value.args if not isinstance(a, sp.MatrixExpr)]
        mats = [a for a in value.args if isinstance(a, sp.MatrixExpr)]
        if len(mats) == 1 and isinstance(mats[0], sp.Identity):
            return factor(sp.Mul(*scalars))
    raise AssertionError(f"expected a multiple of the identity, got {value}")


@lru_cache(maxsize=None)
def task_noise_covariance():
    """``C_1 = E[e_1 e_1^T | X_t, X_v]``: average over the task offset and label noise."""
    _, e1 = linearise(Derivation("scratch"))
    return conditional_expectation(e1 * e1.T, given=[TASK.X_t, TASK.X_v])


def record_average(d: Derivation, expr, lhs=None, note="", rule=WICK):
    """Average ``expr`` exactly with the engine and record the step; returns the value."""
    value = expectation(expr)
    d.add(rule, expect(expr), value, lhs=lhs, note=note)
    return value


def record_conditional(d: Derivation, lhs):
    c1 = task_noise_covariance()
    _, e1 = linearise(Derivation("scratch"))
    d.add(CONDITIONAL_AVERAGE, expect(e1 * e1.T), c1, lhs=lhs,
          note=r"average over $g$, $z_t$, $z_v$ with $X_t$, $X_v$ fixed; blocks of different tasks average to 0")
    return c1
