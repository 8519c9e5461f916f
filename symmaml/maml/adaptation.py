"""The exact average over the meta-test task and its adaptation data (any n_r, p).

Given the meta-trained ``omega*`` (independent of the meta-test data), the test loss after one
adaptation step is averaged exactly over the test task ``w``, the adaptation inputs ``X_r`` and
the label noise.  The result is affine in ``|omega* - w0|^2``, so averaging over meta-training
only needs ``E|omega* - w0|^2``.
"""
from __future__ import annotations

import sympy as sp

from ..derivation import Derivation
from ..rmt import expectation
from ..symbols import alpha_r, sigma
from .model import MetaTestTask, w0
from .rules import ADAPTATION, WICK

__all__ = ["ERROR", "OMEGA_STAR", "adaptation_average"]

#: |omega* - w0|^2, the meta-training error (a placeholder until averaged)
ERROR = sp.Symbol(r"\lVert\omega^\star - w_0\rVert^2", nonnegative=True)
#: the meta-trained initialisation, as seen by the meta-test phase
OMEGA_STAR = sp.MatrixSymbol(r"omega^\star", w0.shape[0], 1)
_a = sp.MatrixSymbol("a", w0.shape[0], 1)  # omega* - w0


def adaptation_average(derivation: Derivation | None = None) -> sp.Expr:
    """``E_{w, D_r}[L_test]`` as an expression in :data:`ERROR` and the canonical symbols."""
    d = derivation if derivation is not None else Derivation("meta-test average")
    test = MetaTestTask()
    theta_r = test.adapted(OMEGA_STAR, alpha_r)
    residual = (test.w - theta_r).subs(OMEGA_STAR, _a + w0).expand()
    half_sq = sp.Trace(residual.T * residual) / 2  # a 1x1 matrix read as a scalar
    lhs = sp.Symbol(r"\mathcal{L}_{\mathrm{test}}")
    d.add(ADAPTATION, sp.Symbol(r"\tfrac12(\sigma^2 + \lVert w - \theta_r\rVert^2)"),
          sigma**2 / 2 + half_sq, lhs=lhs,
          note=r"with $a = \omega^\star - w_0$; the inner step is differentiated by SymPy")
    value = expectation(half_sq)
    value = sp.expand(value.subs(sp.Trace(_a.T * _a), ERROR))
    value = sigma**2 / 2 + sp.collect(value, ERROR, sp.factor)
    # the average of the expression of the step above (not repeated: it is long)
    d.add(WICK, sp.Symbol(r"\tfrac{\sigma^2}{2} + \mathbb{E}_{w,D_r}\big[\tfrac12\lVert w - \theta_r\rVert^2\big]"), value,
          lhs=sp.Symbol(r"\mathbb{E}_{w,D_r}\mathcal{L}_{\mathrm{test}}"),
          note=r"exact average over $w$, $X_r$, $z_r$; $\lVert a\rVert^2 = \lVert\omega^\star - w_0\rVert^2$")
    return value
