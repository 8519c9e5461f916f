"""The paper's leading-order average test loss, in both regimes (Bernacchia, ICLR 2021), for
every model of the family (:class:`~symmaml.maml.model.Model`).

The meta-training error ``|omega* - w0|^2`` is reduced exactly to quadratic forms in the
residual ``e`` weighted by the inverse Gram matrix; the leading order then replaces the Gram
matrix by its mean (its fluctuations are dropped) and averages what is left exactly.

With k_t inner steps the same construction holds with ``Z_i = X_v A_i^{k_t}`` (moments of degree
up to 4 k_t in the support Gram matrix).  With anisotropic inputs the test loss weighs the error
by ``M`` (a polynomial in ``Sigma``, :func:`~symmaml.maml.adaptation.adaptation_weight`), so the
meta-training average is that of ``(omega* - w0)^T M (omega* - w0)``:

* overparameterised: ``G = Z Z^T`` and ``Z M Z^T`` are replaced by their means (multiples of the
  identity), and the projection ``P = Z^T G^{-1} Z`` by ``Z^T Z / g`` (no rotation invariance now);
* underparameterised: ``S = Z^T Z`` is replaced by its mean ``m F(Sigma)``, a polynomial in
  ``Sigma``, so the result holds normalised traces ``<h>_Sigma`` of rational functions of ``Sigma``
  (not determined by finitely many moments).
"""
from __future__ import annotations

import sympy as sp

from ..algebra import factor
from ..derivation import Derivation
from ..rmt import expect, expectation
from ..rmt.conditional import conditional_expectation
from ..rmt.covariance import SPECTRAL_TRACE, as_function_of
from ..rmt.wishart import expected_projection, wishart_average
from ..spectral import LAMBDA, SpectralMean, combine_means
from ..symbols import alpha_t, dist0, m, n_v, p
from .adaptation import ERROR, ERROR_M, adaptation_average, adaptation_weight
from .meta_training import (OTHER_TASK, Z, e, expand_powers, identity_multiple, linearise, record_conditional,
                            tasks)
from .model import PAPER, SIGMA, Model, omega0, w0
from .rules import (
    ALGEBRA, EXCHANGEABILITY, INDEPENDENCE, ISOTROPIC_START, LEADING_ORDER_GRAM_OVER, LEADING_ORDER_GRAM_OVER_SIGMA,
    LEADING_ORDER_GRAM_UNDER, LEADING_ORDER_GRAM_UNDER_SIGMA, MIN_DISTANCE_SOLUTION, NORMAL_EQUATIONS, PROJECTION,
    SOLUTION_OVER, SOLUTION_UNDER, SUBSTITUTE, TRACE_TRICK, WICK,
)

__all__ = ["derive_over_leading", "derive_under_leading", "title", "order_text", "model_assumptions",
           "staged_expectation"]

N = m * n_v
G = Z * Z.T
S = Z.T * Z
_b = e + Z * w0  # the stacked meta-training targets: r(omega) = b - Z omega


def title(base: str, model: Model) -> str:
    """A derivation title naming the model: ``base`` is today's title for the paper's model."""
    if model.is_paper:
        return base
    return base.replace("one-step MAML", f"MAML ({model.describe(tex=True)})")


def order_text(text: str, model: Model) -> str:
    """The order of approximation, naming the model (unchanged for the paper's model)."""
    return text if model.is_paper else f"{text}; model: {model.describe(tex=True)}"


def model_assumptions(model: Model) -> tuple:
    """What an anisotropic result adds to the stated assumptions."""
    if not model.anisotropic:
        return ()
    return (r"x \sim \mathcal{N}(0, \Sigma),\ s_j = \operatorname{tr}(\Sigma^j)/p,\ "
            r"\langle h\rangle_\Sigma = \operatorname{tr}h(\Sigma)/p",)


def staged_expectation(expr, first_given, by_powers=None):
    """``E[expr]`` in two stages: over everything but ``first_given`` (held fixed), then over those.

    Exact, and much cheaper for words of high degree in the support designs (several inner steps):
    the query inputs, offsets and noise are contracted with the support designs frozen, then the
    support designs' moments are taken once per product of traces (Wishart trace moments, in
    polynomial arithmetic).  ``by_powers``: a symbol to collect the result by (coefficients expanded)."""
    stage = conditional_expectation(expr, given=first_given)
    if len(first_given) == 1:
        value = wishart_average(stage, first_given[0], as_poly=by_powers is not None)
        if isinstance(value, sp.Poly):
            return _by_powers(value, by_powers)
    else:
        value = expectation(stage)
    return sp.collect(sp.expand(value), by_powers) if by_powers is not None else value


def _by_powers(poly: sp.Poly, x) -> sp.Expr:
    """A polynomial as ``sum_k c_k x^k`` (``c_k`` expanded), built from its terms (no tree expansion)."""
    if x not in poly.gens:
        return poly.as_expr()
    i = poly.gens.index(x)
    others = poly.gens[:i] + poly.gens[i + 1:]
    by: dict = {}
    for monom, coeff in poly.terms():
        by.setdefault(monom[i], {})[monom[:i] + monom[i + 1:]] = coeff
    return sp.Add(*(sp.Poly.from_dict(c, *others, domain=poly.domain).as_expr() * x**k
                    for k, c in sorted(by.items())))


def _mean_gram_block(d: Derivation, first, second, size, lhs, staged=(), model: Model = PAPER):
    value = staged_expectation(first * second, staged) if staged else expectation(first * second)
    d.add(WICK, expect(first * second), value, lhs=lhs)
    return identity_multiple(value, size, tidy=lambda c: _tidy(c, model))


def _finish(d: Derivation, error_mean, model: Model = PAPER) -> sp.Expr:
    """Insert the averaged meta-training error into the exact meta-test average."""
    test_average = adaptation_average(d, model)
    placeholder = ERROR_M if model.anisotropic else ERROR
    note = (r"the meta-test average is affine in $\lVert\omega^\star - w_0\rVert_M^2$" if model.anisotropic
            else r"the meta-test average is affine in $\lVert\omega^\star - w_0\rVert^2$")
    d.add(INDEPENDENCE, sp.Symbol(r"\mathbb{E}\,\mathcal{L}_{\mathrm{test}}"), test_average, note=note)
    result = test_average.subs(placeholder, error_mean)
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


def derive_over_leading(model: Model = PAPER) -> tuple[sp.Expr, Derivation]:
    d = Derivation(
        title("Average test loss of one-step MAML, overparameterised regime", model),
        order=order_text("leading order in $1/p$ (Gram matrix replaced by its mean)" if not model.anisotropic else
                         "leading order in $1/p$ (Gram matrices replaced by their means)", model),
        regime="over",
        assumptions=(r"p > m n_v", SOLUTION_OVER) + model_assumptions(model),
    )
    first, second = tasks(model)
    z1, e1 = linearise(d, model)
    zx = expand_powers(z1)
    staged = [] if model.inner_steps == 1 else [first.X_t]
    if model.anisotropic:
        return _over_leading_sigma(d, model, zx, staged)
    proj_mean = over_error_decomposition(d)
    c1 = record_conditional(d, lhs=sp.Symbol("C_1"), model=model)
    g = _mean_gram_block(d, zx, zx.T, n_v, lhs=sp.Symbol(r"\mathbb{E}[G_{11}]"), staged=staged, model=model)
    g12 = _mean_gram_block(d, zx, expand_powers(second.Z).T, n_v, lhs=sp.Symbol(r"\mathbb{E}[G_{12}]"))
    assert g12 == 0
    tr_c1 = _tidy(staged_expectation(sp.Trace(c1), staged) if staged else expectation(sp.Trace(c1)), model)
    d.add(WICK, expect(sp.Trace(c1)), tr_c1, lhs=sp.Symbol(r"\mathbb{E}\operatorname{tr}C_1"))
    noise_mean = m * tr_c1 / g
    d.add(LEADING_ORDER_GRAM_OVER, expect(sp.Trace(G.I * e * e.T)), noise_mean,
          note=r"$\mathbb{E}G = g\,I_{m n_v}$ with $g = \mathbb{E}[G_{11}]$; $m$ equal diagonal blocks of $C$")
    error_mean = proj_mean + noise_mean
    d.add(SUBSTITUTE, sp.Symbol(r"\mathbb{E}\lVert\omega^\star - w_0\rVert^2"), error_mean)
    return _finish(d, error_mean, model), d


def _tidy(expr, model: Model):
    """A scalar for display: factored for the paper's model (as always), by powers of alpha_t with
    factored coefficients otherwise (factoring a polynomial of degree 2 k_t in alpha_t whole is slow)."""
    if model.is_paper:
        return factor(expr)
    return sp.collect(sp.expand(expr), alpha_t, factor)


def _spectral_factor(expr):
    """Spectral moments and means factored out where they are, each coefficient factored."""
    return sp.collect(sp.expand(expr), alpha_t, factor)


def _over_leading_sigma(d: Derivation, model: Model, zx, staged) -> tuple[sp.Expr, Derivation]:
    """Overparameterised, anisotropic inputs: ``E (omega* - w0)^T M (omega* - w0)`` at leading order."""
    first, second = tasks(model)
    weight = adaptation_weight(model)
    d.add(ALGEBRA, sp.Symbol("M"), weight, note=r"the weight of the test loss (exact meta-test average, below)")
    omega_star = omega0 + Z.T * G.I * (_b - Z * omega0)
    d.add(MIN_DISTANCE_SOLUTION, sp.Symbol(r"\arg\min_\omega \lVert b - Z\omega\rVert^2"), omega_star,
          lhs=sp.Symbol(r"\omega^\star"))
    err = (omega_star - w0).subs(omega0, w0 + _D0).expand()
    P = Z.T * G.I * Z
    form = _D0 - P * _D0 + Z.T * G.I * e
    if sp.expand(err - form) not in (0, sp.ZeroMatrix(p, 1)):
        raise AssertionError(f"unexpected form of omega* - w0: {err}")
    d.add(ALGEBRA, omega_star - w0, form, lhs=sp.Symbol(r"\omega^\star - w_0"),
          note=r"with $\delta_0 = \omega_0 - w_0$ and the projection $P = Z^{\top}G^{-1}Z$")
    Mq = sp.MatrixSymbol("M", p, p)
    d.add(ISOTROPIC_START, expect(sp.Symbol(r"(\omega^\star - w_0)^{\top}M(\omega^\star - w_0)")),
          sp.Symbol(r"\frac{\lVert\omega_0 - w_0\rVert^2}{p}\,\mathbb{E}\operatorname{tr}\big((I - P)M\big)"
                    r" + \mathbb{E}\operatorname{tr}\big(G^{-1}ZMZ^{\top}G^{-1}C\big)"),
          note=(r"the cross terms vanish ($e$ has mean zero given the designs); $(I-P)M(I-P)$ and $(I-P)M$ have "
                r"the same trace"))
    c1 = record_conditional(d, lhs=sp.Symbol("C_1"), model=model)
    g = _mean_gram_block(d, zx, zx.T, n_v, lhs=sp.Symbol(r"\mathbb{E}[G_{11}]"), staged=staged, model=model)
    g12 = _mean_gram_block(d, zx, expand_powers(second.Z).T, n_v, lhs=sp.Symbol(r"\mathbb{E}[G_{12}]"))
    assert g12 == 0
    h = _mean_gram_block(d, zx * weight, zx.T, n_v, lhs=sp.Symbol(r"\mathbb{E}[Z_1MZ_1^{\top}]"), staged=staged,
                         model=model)
    tr_c1 = _tidy(staged_expectation(sp.Trace(c1), staged) if staged else expectation(sp.Trace(c1)), model)
    d.add(WICK, expect(sp.Trace(c1)), tr_c1, lhs=sp.Symbol(r"\mathbb{E}\operatorname{tr}C_1"))
    tr_m = factor(expectation(sp.Trace(weight)))
    d.add(SPECTRAL_TRACE, sp.Trace(Mq), tr_m, note=r"$\operatorname{tr}\Sigma^j = p\,s_j$")
    proj_mean = factor(dist0 * (tr_m - m * n_v * h / g) / p)
    d.add(LEADING_ORDER_GRAM_OVER_SIGMA, expect(sp.Symbol(r"\frac{\lVert\omega_0 - w_0\rVert^2}{p}"
                                                          r"\operatorname{tr}\big((I - P)M\big)")), proj_mean,
          note=r"$\operatorname{tr}(PM) = \operatorname{tr}(G^{-1}ZMZ^{\top}) \to m\,n_v\,h/g$ with $\mathbb{E}[Z_1MZ_1^{\top}] = h\,I$")
    noise_mean = m * h * tr_c1 / g**2
    d.add(LEADING_ORDER_GRAM_OVER_SIGMA, expect(sp.Trace(G.I * Z * Mq * Z.T * G.I * e * e.T)), noise_mean,
          note=(r"$\mathbb{E}G = g\,I$, $\mathbb{E}[ZMZ^{\top}] = h\,I$ (blocks of different tasks average to 0); "
                r"$m$ equal diagonal blocks of $C$"))
    error_mean = proj_mean + noise_mean
    d.add(SUBSTITUTE, sp.Symbol(r"\mathbb{E}\lVert\omega^\star - w_0\rVert_M^2"), error_mean)
    return _finish(d, error_mean, model), d


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


def derive_under_leading(model: Model = PAPER) -> tuple[sp.Expr, Derivation]:
    d = Derivation(
        title("Average test loss of one-step MAML, underparameterised regime", model),
        order=order_text("leading order in $1/p$ (Gram matrix replaced by its mean)", model),
        regime="under",
        assumptions=(r"p < m n_v", SOLUTION_UNDER) + model_assumptions(model),
    )
    first, second = tasks(model)
    z1, e1 = linearise(d, model)
    u = under_error_decomposition(d)
    if not model.is_paper:
        return _under_leading_model(d, model, e1, u)
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


def _under_leading_model(d: Derivation, model: Model, e1, u) -> tuple[sp.Expr, Derivation]:
    """Underparameterised, any model: ``S`` by its mean; with anisotropic inputs ``E S = m F(Sigma)``."""
    first, second = tasks(model)
    zx = expand_powers(first.Z)
    z2 = expand_powers(second.Z)
    e2 = second.query_residual(w0)
    staged1 = [first.X_t]
    staged2 = [first.X_t, second.X_t]
    k = model.inner_steps
    if not model.anisotropic:
        s = _mean_gram_block(d, zx.T, zx, p, lhs=sp.Symbol(r"\mathbb{E}[Z_1^{\top}Z_1]"), staged=staged1, model=model)
        s_mean = m * s
        quad = u.T * S.I * S.I * u
        d.add(LEADING_ORDER_GRAM_UNDER, expect(quad), expect(u.T * u) / s_mean**2,
              note=r"$\mathbb{E}S = m\,\mathbb{E}[Z_1^{\top}Z_1]$, a multiple of $I_p$")
        # a polynomial of degree 4 k_t in alpha_t: shown by powers of alpha_t (coefficients expanded:
        # factoring them costs minutes at k_t = 3 and shortens little)
        same = staged_expectation(e1.T * zx * zx.T * e1, staged1, by_powers=alpha_t)
        cross = staged_expectation(e1.T * zx * z2.T * e2, staged2)
        d.add(WICK, expect(e1.T * first.Z * first.Z.T * e1), same,
              lhs=sp.Symbol(r"\mathbb{E}\lVert Z_1^{\top}e_1\rVert^2"),
              note=(rf"Wishart moments of the support design of order up to ${4 * k}$ enter here; averaged over the "
                    r"query inputs, offsets and noise first, the support design held fixed, then over it"))
        d.add(WICK, expect(sp.Symbol(r"e_1^{\top}Z_1Z_2^{\top}e_2")), cross,
              lhs=sp.Symbol(r"\mathbb{E}[e_1^{\top}Z_1Z_2^{\top}e_2]"))
        uu = m * same + m * (m - 1) * cross
        d.add(EXCHANGEABILITY, expect(u.T * u), uu)
        error_mean = uu / s_mean**2
        d.add(SUBSTITUTE, sp.Symbol(r"\mathbb{E}\lVert\omega^\star - w_0\rVert^2"), error_mean)
        return _finish(d, error_mean, model), d
    weight = adaptation_weight(model)
    d.add(ALGEBRA, sp.Symbol("M"), weight, note=r"the weight of the test loss (exact meta-test average, below)")
    f_mat = staged_expectation(zx.T * zx, staged1)
    d.add(WICK, expect(first.Z.T * first.Z), f_mat, lhs=sp.Symbol(r"F(\Sigma) = \mathbb{E}[Z_1^{\top}Z_1]"),
          note=r"a polynomial in $\Sigma$ (the law of the task's design is invariant under rotations that fix $\Sigma$)")
    f = sp.collect(sp.expand(as_function_of(f_mat, SIGMA)), LAMBDA, factor)
    w_ = sp.expand(as_function_of(weight, SIGMA))
    r_fun = SIGMA.function(w_ / (m**2 * f**2), name="R")
    Mq = sp.MatrixSymbol("M", p, p)
    d.add(LEADING_ORDER_GRAM_UNDER_SIGMA, expect(u.T * S.I * Mq * S.I * u), expect(u.T * r_fun * u),
          note=(r"$\mathbb{E}S = m\,F(\Sigma)$; $R = M\,(\mathbb{E}S)^{-2} = h_R(\Sigma)$, "
                rf"$h_R(\lambda) = {sp.latex(r_fun.function(sp.Symbol(chr(92) + 'lambda')))}$"
                .replace(r"\lambda", r"\lambda")))
    same = staged_expectation(e1.T * zx * r_fun * zx.T * e1, staged1)
    cross = staged_expectation(e1.T * zx * r_fun * z2.T * e2, staged2)
    d.add(WICK, expect(e1.T * first.Z * r_fun * first.Z.T * e1), same,
          lhs=sp.Symbol(r"\mathbb{E}[e_1^{\top}Z_1RZ_1^{\top}e_1]"),
          note=r"traces of functions of $\Sigma$ as normalised traces $\langle h\rangle_\Sigma$ and moments $s_j$")
    d.add(WICK, expect(sp.Symbol(r"e_1^{\top}Z_1RZ_2^{\top}e_2")), cross,
          lhs=sp.Symbol(r"\mathbb{E}[e_1^{\top}Z_1RZ_2^{\top}e_2]"))
    error_mean = combine_means(m * same + m * (m - 1) * cross, name="h")
    (mean,) = [x for x in error_mean.atoms(SpectralMean)]
    d.add(EXCHANGEABILITY, expect(u.T * r_fun * u), error_mean,
          note=r"the normalised traces of functions of $\Sigma$ collected into one, of the function $h$ below")
    d.add(SPECTRAL_TRACE, sp.Function("h")(sp.Symbol(r"\lambda")), mean.body.xreplace({LAMBDA: sp.Symbol(r"\lambda")}),
          note=r"averaged over the spectrum of $\Sigma$: $\langle h\rangle_\Sigma = \operatorname{tr}h(\Sigma)/p$; a rational "
               r"function of $\lambda$, so no finite set of moments $s_j$ determines it")
    d.add(SUBSTITUTE, sp.Symbol(r"\mathbb{E}\lVert\omega^\star - w_0\rVert_M^2"), error_mean)
    return _finish(d, error_mean, model), d
