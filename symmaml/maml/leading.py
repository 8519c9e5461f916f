"""The paper's leading-order average test loss, in both regimes (Bernacchia, ICLR 2021).

The meta-training error ``|omega* - w0|^2`` is reduced exactly to quadratic forms in the
residual ``e`` weighted by the inverse Gram matrix; the leading order then replaces the Gram
matrix by its mean (its fluctuations are dropped) and averages what is left exactly.
"""
from __future__ import annotations

import sympy as sp

from ..algebra import factor
from ..derivation import Derivation
from ..rmt import expect, expectation
from ..rmt.wishart import expected_projection
from ..symbols import alpha_t, dist0, m, n_v, p
from .adaptation import ERROR, adaptation_average
from .meta_training import OTHER_TASK, Z, e, identity_multiple, linearise, record_conditional
from .model import omega0, w0
from .rules import (
    ALGEBRA, EXCHANGEABILITY, INDEPENDENCE, LEADING_ORDER_GRAM_OVER, LEADING_ORDER_GRAM_UNDER,
    MIN_DISTANCE_SOLUTION, NORMAL_EQUATIONS, PROJECTION, SOLUTION_OVER, SOLUTION_UNDER, SUBSTITUTE, TRACE_TRICK,
    WICK,
)

__all__ = ["derive_over_leading", "derive_under_leading"]

N = m * n_v
G = Z * Z.T
S = Z.T * Z
_b = e + Z * w0  # the stacked meta-training targets: r(omega) = b - Z omega


def _mean_gram_block(d: Derivation, first, second, size, lhs):
    value = expectation(first * second)
    d.add(WICK, expect(first * second), value, lhs=lhs)
    return identity_multiple(value, size)


def _finish(d: Derivation, error_mean) -> sp.Expr:
    """Insert the averaged meta-training error into the exact meta-test average."""
    test_average = adaptation_average(d)
    d.add(INDEPENDENCE, sp.Symbol(r"\mathbb{E}\,\mathcal{L}_{\mathrm{test}}"), test_average,
          note=r"the meta-test average is affine in $\lVert\omega^\star - w_0\rVert^2$")
    result = test_average.subs(ERROR, error_mean)
    d.add(SUBSTITUTE, test_average, result, lhs=sp.Symbol(r"\overline{\mathcal{L}}_{\mathrm{test}}"))
    d.result = result
    return result


_D0 = sp.MatrixSymbol(r"\delta_0", p, 1)  # omega0 - w0


def over_error_decomposition(d: Derivation) -> sp.Expr:
    """``|omega* - w0|^2 = d^T(I - P)d + e^T G^{-1} e`` (overparameterised); returns ``E d^T(I-P)d``.

    Records the minimiser closest to omega0, the algebra (the cross term vanishes), the
    projection's average by rotational invariance, and the trace form of the noise term.
    """
    omega_star = omega0 + Z.T * G.I * (_b - Z * omega0)
    d.add(MIN_DISTANCE_SOLUTION, sp.Symbol(r"\arg\min_\omega \lVert b - Z\omega\rVert^2"), omega_star,
          lhs=sp.Symbol(r"\omega^\star"))
    err = (omega_star - w0).subs(omega0, w0 + _D0).expand()
    quad = (err.T * err).expand()
    projection = _D0.T * Z.T * G.I * Z * _D0
    noise = e.T * G.I * e
    if sp.expand(quad - (_D0.T * _D0 - projection + noise)) not in (0, sp.ZeroMatrix(1, 1)):
        raise AssertionError(f"unexpected form of |omega* - w0|^2: {quad}")
    d.add(ALGEBRA, err.T * err, quad, lhs=sp.Symbol(r"\lVert\omega^\star - w_0\rVert^2"),
          note=r"with $\delta_0 = \omega_0 - w_0$; the cross term vanishes: $(I - Z^{\top}G^{-1}Z)Z^{\top} = 0$")
    proj_mean = dist0 - expected_projection(N, p) * dist0
    d.add(PROJECTION, expect(_D0.T * _D0 - projection), proj_mean,
          note=r"$\lVert\delta_0\rVert^2 = \lVert\omega_0 - w_0\rVert^2$, the only way $\omega_0$ and $w_0$ enter")
    d.add(TRACE_TRICK, noise, sp.Trace(G.I * e * e.T))
    return proj_mean


def derive_over_leading() -> tuple[sp.Expr, Derivation]:
    d = Derivation(
        "Average test loss of one-step MAML, overparameterised regime",
        order="leading order in $1/p$ (Gram matrix replaced by its mean)",
        regime="over",
        assumptions=(r"p > m n_v", SOLUTION_OVER),
    )
    z1, e1 = linearise(d)
    proj_mean = over_error_decomposition(d)
    c1 = record_conditional(d, lhs=sp.Symbol("C_1"))
    g = _mean_gram_block(d, z1, z1.T, n_v, lhs=sp.Symbol(r"\mathbb{E}[G_{11}]"))
    g12 = _mean_gram_block(d, z1, OTHER_TASK.Z.T, n_v, lhs=sp.Symbol(r"\mathbb{E}[G_{12}]"))
    assert g12 == 0
    tr_c1 = factor(expectation(sp.Trace(c1)))
    d.add(WICK, expect(sp.Trace(c1)), tr_c1, lhs=sp.Symbol(r"\mathbb{E}\operatorname{tr}C_1"))
    noise_mean = m * tr_c1 / g
    d.add(LEADING_ORDER_GRAM_OVER, expect(sp.Trace(G.I * e * e.T)), noise_mean,
          note=r"$\mathbb{E}G = g\,I_{m n_v}$ with $g = \mathbb{E}[G_{11}]$; $m$ equal diagonal blocks of $C$")
    error_mean = proj_mean + noise_mean
    d.add(SUBSTITUTE, sp.Symbol(r"\mathbb{E}\lVert\omega^\star - w_0\rVert^2"), error_mean)
    return _finish(d, error_mean), d


def under_error_decomposition(d: Derivation):
    """``omega* - w0 = S^{-1} u`` with ``u = Z^T e`` (underparameterised); returns the symbol ``u``."""
    omega_star = S.I * Z.T * _b
    d.add(NORMAL_EQUATIONS, sp.Symbol(r"\arg\min_\omega \lVert b - Z\omega\rVert^2"), omega_star,
          lhs=sp.Symbol(r"\omega^\star"))
    err = (omega_star - w0).expand()
    if sp.expand(err - S.I * Z.T * e) not in (0, sp.ZeroMatrix(p, 1)):
        raise AssertionError(f"unexpected form of omega* - w0: {err}")
    d.add(ALGEBRA, omega_star - w0, err, lhs=sp.Symbol(r"\omega^\star - w_0"),
          note=r"$(Z^{\top}Z)^{-1}Z^{\top}Z = I$; write $u = Z^{\top}e = \sum_i Z_i^{\top}e_i$")
    return sp.MatrixSymbol("u", p, 1)


def derive_under_leading() -> tuple[sp.Expr, Derivation]:
    d = Derivation(
        "Average test loss of one-step MAML, underparameterised regime",
        order="leading order in $1/p$ (Gram matrix replaced by its mean)",
        regime="under",
        assumptions=(r"p < m n_v", SOLUTION_UNDER),
    )
    z1, e1 = linearise(d)
    u = under_error_decomposition(d)
    s = _mean_gram_block(d, z1.T, z1, p, lhs=sp.Symbol(r"\mathbb{E}[Z_1^{\top}Z_1]"))
    s_mean = m * s
    quad = u.T * S.I * S.I * u
    d.add(LEADING_ORDER_GRAM_UNDER, expect(quad), expect(u.T * u) / s_mean**2,
          note=r"$\mathbb{E}S = m\,\mathbb{E}[Z_1^{\top}Z_1]$, a multiple of $I_p$")
    # a polynomial of degree 4 in alpha_t: shown by powers of alpha_t, coefficients factored
    same = sp.collect(sp.expand(expectation(e1.T * z1 * z1.T * e1)), alpha_t, sp.factor)
    cross = expectation(e1.T * z1 * OTHER_TASK.Z.T * OTHER_TASK.query_residual(w0))
    d.add(WICK, expect(e1.T * z1 * z1.T * e1), same, lhs=sp.Symbol(r"\mathbb{E}\lVert Z_1^{\top}e_1\rVert^2"),
          note="fourth-order Wishart moments of the support design enter here")
    d.add(WICK, expect(sp.Symbol(r"e_1^{\top}Z_1Z_2^{\top}e_2")), cross,
          lhs=sp.Symbol(r"\mathbb{E}[e_1^{\top}Z_1Z_2^{\top}e_2]"))
    uu = m * same + m * (m - 1) * cross
    d.add(EXCHANGEABILITY, expect(u.T * u), uu)
    error_mean = uu / s_mean**2
    d.add(SUBSTITUTE, sp.Symbol(r"\mathbb{E}\lVert\omega^\star - w_0\rVert^2"), error_mean)
    return _finish(d, error_mean), d
