"""What both regimes share: the meta-loss as a least-squares problem, and its random pieces.

For task i the query residual after the inner step is affine in omega:
``r_i(omega) = e_i - Z_i (omega - w0)`` with ``Z_i = X_v^{(i)} A_i`` and
``e_i = r_i(w0)`` (task offset and label noise, seen through the design).  Stacking the m
tasks gives the design ``Z`` (m n_v x p) and ``e``; the meta-loss is ``|e - Z(omega - w0)|^2``
up to a factor.  This module derives that form and the per-task moments the regimes need.
With k_t inner steps (a :class:`~symmaml.maml.model.Model`) the same holds with ``Z_i = X_v A_i^{k_t}``.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ..algebra import factor
from ..derivation import Derivation
from ..rmt import expect, expectation
from ..rmt.conditional import conditional_expectation
from ..symbols import m, n_v, p
from .model import PAPER, MetaTrainingTask, Model, omega, w0
from .rules import CONDITIONAL_AVERAGE, LINEAR_IN_OMEGA, LINEAR_IN_OMEGA_STEPS, WICK

__all__ = ["TASK", "OTHER_TASK", "Z", "e", "linearise", "task_noise_covariance", "identity_multiple", "tasks",
           "expand_powers"]

TASK = MetaTrainingTask("")
OTHER_TASK = MetaTrainingTask("'")


@lru_cache(maxsize=None)
def tasks(model: Model = PAPER) -> tuple:
    """Two independent meta-training tasks of ``model`` (``TASK``, ``OTHER_TASK`` for the paper's)."""
    if model.is_paper:
        return TASK, OTHER_TASK
    return MetaTrainingTask("", model), MetaTrainingTask("'", model)


def _power(base, k: int):
    """``base**k`` multiplied out term by term (SymPy keeps ``A*A`` of a sum ``A`` as ``A**2``)."""
    def split(t):
        coeff, mats = t.as_coeff_matrices() if isinstance(t, sp.MatMul) else (sp.S.One, [t])
        return coeff, [x for x in mats if not isinstance(x, sp.Identity)]

    terms = [split(t) for t in (base.args if isinstance(base, sp.MatAdd) else (base,))]
    out = {tuple(ms): c for c, ms in terms}
    for _ in range(k - 1):
        nxt: dict = {}
        for ma, ca in out.items():
            for cb, mb in terms:
                key = ma + tuple(mb)
                nxt[key] = nxt.get(key, sp.S.Zero) + ca * cb
        out = nxt
    size = base.shape[0]
    parts = [sp.expand(c) * (sp.MatMul(*ms) if len(ms) > 1 else ms[0] if ms else sp.Identity(size))
             for ms, c in out.items() if c != 0]
    return sp.MatAdd(*parts) if len(parts) > 1 else parts[0]


def expand_powers(expr):
    """``expr`` with every positive integer matrix power written out as a product, expanded."""
    pows = [e for e in expr.atoms(sp.MatPow) if e.exp.is_Integer and e.exp > 1 and isinstance(e.base, sp.MatAdd)]
    if not pows:
        return expr
    return sp.expand(expr.xreplace({e: _power(e.base, int(e.exp)) for e in pows}))

#: the stacked design and residual at w0 (symbolic stand-ins: m is a symbol)
Z = sp.MatrixSymbol("Z", m * n_v, p)
e = sp.MatrixSymbol("e", m * n_v, 1)


def linearise(d: Derivation, model: Model = PAPER):
    """Record that the query residual is affine in omega; return ``(Z_1, e_1)``.

    With ``k_t`` inner steps the residual is that of the iterated step, and ``Z_1 = X_v A^{k_t}``
    is checked against it (the power expanded)."""
    task = tasks(model)[0]
    r = task.query_residual(omega)
    e1 = task.query_residual(w0)
    z1 = task.Z
    check = sp.expand(r - e1 + expand_powers(z1) * (omega - w0))
    if check != sp.ZeroMatrix(*r.shape) and check != 0:
        raise AssertionError(f"the query residual is not e - Z(omega - w0): remainder {check}")
    if model.is_paper:
        d.add(LINEAR_IN_OMEGA, r, e1 - z1 * (omega - w0), lhs=sp.Symbol(r"r_1(\omega)"),
              note="the expanded difference is the zero matrix (checked by the engine)")
    else:
        d.add(LINEAR_IN_OMEGA_STEPS, r, e1 - z1 * (omega - w0), lhs=sp.Symbol(r"r_1(\omega)"),
              note=(rf"$k_t = {model.inner_steps}$: the step, differentiated by SymPy, iterated from $\omega$; "
                    r"the expanded difference is the zero matrix (checked by the engine)"))
    return z1, e1


def identity_multiple(value, size, tidy=factor) -> sp.Expr:
    """``c`` for a SymPy matrix ``value == c * I_size`` (raises otherwise), passed through ``tidy``."""
    if value == sp.ZeroMatrix(size, size) or value == 0:
        return sp.S.Zero
    if isinstance(value, sp.Identity):
        return sp.S.One
    if isinstance(value, sp.MatMul):
        scalars = [a for a in value.args if not isinstance(a, sp.MatrixExpr)]
        mats = [a for a in value.args if isinstance(a, sp.MatrixExpr)]
        if len(mats) == 1 and isinstance(mats[0], sp.Identity):
            return tidy(sp.Mul(*scalars))
    raise AssertionError(f"expected a multiple of the identity, got {value}")


@lru_cache(maxsize=None)
def task_noise_covariance(model: Model = PAPER):
    """``C_1 = E[e_1 e_1^T | X_t, X_v]``: average over the task offset and label noise."""
    task = tasks(model)[0]
    e1 = task.query_residual(w0)
    return conditional_expectation(e1 * e1.T, given=[task.X_t, task.X_v])


def record_average(d: Derivation, expr, lhs=None, note="", rule=WICK):
    """Average ``expr`` exactly with the engine and record the step; returns the value."""
    value = expectation(expr)
    d.add(rule, expect(expr), value, lhs=lhs, note=note)
    return value


def record_conditional(d: Derivation, lhs, model: Model = PAPER):
    c1 = task_noise_covariance(model)
    e1 = tasks(model)[0].query_residual(w0)
    d.add(CONDITIONAL_AVERAGE, expect(e1 * e1.T), c1, lhs=lhs,
          note=r"average over $g$, $z_t$, $z_v$ with $X_t$, $X_v$ fixed; blocks of different tasks average to 0")
    return c1
