"""The high-dimensional linearisation of the network's kernels (the effective kernels).

For ``x, x'`` independent ``N(0, I_d)`` the kernels depend on ``a = |x|^2/d``, ``b = |x'|^2/d`` and
``t = x.x'/d``; off the diagonal ``a, b = 1 + O(d^{-1/2})`` and ``t = O(d^{-1/2})``.  Expanding the
derived kernels (:mod:`.kernels`) at ``a = b = 1`` to second order in ``t``, and replacing ``t^2``
by its mean ``1/d`` (El Karoui, "The spectrum of kernel random matrices", Ann. Stat. 2010), gives

    Theta(x, x') ~ c_0 + c_1 x.x'/d + lambda [x = x'],    Sigma(x, x') ~ e_0 + e_1 x.x'/d + lambda_Sigma [x = x'],

the diagonal terms making ``Theta(x, x) = q = 2`` and ``Sigma(x, x) = q/2 = 1`` at ``|x|^2 = d``.  In
function space this is a linear model with a constant feature, ``d`` linear features and one private
feature per point (a ridge).  The constants are exact numbers (in ``pi`` and ``sqrt 3``) and ``1/d``.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ..derivation import Derivation, Rule
from ..symbols import d
from .kernels import Q11, Q12, Q22, VARTHETA, kernel_expressions

__all__ = ["derive_effective_kernels", "C0", "C1", "LAMBDA", "E0", "E1", "LAMBDA_SIGMA", "EFFECTIVE"]

C0 = sp.Symbol("c_0", positive=True)
C1 = sp.Symbol("c_1", positive=True)
LAMBDA = sp.Symbol("lambda", positive=True)
E0 = sp.Symbol("e_0", positive=True)
E1 = sp.Symbol("e_1", positive=True)
LAMBDA_SIGMA = sp.Symbol("lambda_Sigma", positive=True)

_t = sp.Symbol("t", real=True)

EFFECTIVE = Rule(
    "high-dimensional linearisation of the kernel",
    r"K(x, x') = F\big(\tfrac{|x|^2}{d}, \tfrac{|x'|^2}{d}, \tfrac{x^{\top}x'}{d}\big) \approx "
    r"F(1,1,0) + F_t\,\tfrac{x^{\top}x'}{d} + \tfrac{F_{tt}}{2d} + \big(F(1,1,1) - F(1,1,0) - F_t - \tfrac{F_{tt}}{2d}\big)[x = x']",
    conditions=(r"x, x' \sim \mathcal{N}(0, I_d) \text{ independent}", r"d \to \infty"),
    reference="El Karoui (Ann. Stat. 2010): off-diagonal entries by their Taylor expansion in "
              r"$t = x^{\top}x'/d$ with $t^2$ by its mean $1/d$, the rest of the diagonal as a multiple of $I$; "
              r"norm fluctuations $|x|^2/d - 1 = O(d^{-1/2})$ dropped",
)
TAYLOR = Rule("Taylor expansion", r"F(t) = F(0) + F'(0)\,t + \tfrac12 F''(0)\,t^2 + O(t^3)",
              reference="SymPy series")


def _unit_norm(expr):
    """A kernel at ``|x|^2 = |x'|^2 = d`` (q11 = q22 = 2) as a function of ``t`` (q12 = 1 + t)."""
    angle = sp.acos((1 + _t) / 2)
    return expr.subs({VARTHETA: angle}).subs({Q11: 2, Q22: 2, Q12: 1 + _t})


@lru_cache(maxsize=None)
def derive_effective_kernels() -> tuple[tuple, Derivation]:
    """``(((C0, value), (C1, value), ...), derivation)``: the effective kernels' constants in ``d``."""
    dv = Derivation("Effective (linearised) kernels", order="leading order in 1/d (kernel linearisation)",
                    regime="x ~ N(0, I_d)")
    definitions = []
    for name, (c_0, c_1, lam, diagonal) in (("ntk", (C0, C1, LAMBDA, 2)), ("nngp", (E0, E1, LAMBDA_SIGMA, 1))):
        f = _unit_norm(kernel_expressions()[name])
        series = sp.series(f, _t, 0, 3).removeO()
        f0, f1, f2 = (sp.radsimp(sp.simplify(series.coeff(_t, k))) for k in range(3))
        lhs = sp.Symbol(r"\Theta(x,x')" if name == "ntk" else r"\Sigma(x,x')")
        dv.add(TAYLOR, sp.Symbol(r"%s|_{|x|^2 = |x'|^2 = d}" % lhs.name), f0 + f1 * _t + f2 * _t**2, lhs=lhs,
               note=r"$q_{11} = q_{22} = 2$, $q_{12} = 1 + t$, $\cos\vartheta = (1 + t)/2$")
        values = [(c_0, sp.simplify(f0 + f2 / d)), (c_1, sp.simplify(f1)),
                  (lam, sp.simplify(diagonal - (f0 + f2 / d) - f1))]
        for sym, value in values:
            definitions.append((sym, value))
            dv.add(EFFECTIVE, sym, value)
    dv.result = None
    return tuple(definitions), dv
