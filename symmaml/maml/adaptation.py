"""The exact average over the meta-test task and its adaptation data (any n_r, p, any model).

Given the meta-trained ``omega*`` (independent of the meta-test data), the test loss after the
adaptation steps is averaged exactly over the test task ``w``, the adaptation inputs ``X_r`` and
the label noise.  With isotropic inputs the result is affine in ``|omega* - w0|^2``, so averaging
over meta-training only needs ``E|omega* - w0|^2``; with anisotropic inputs it is affine in the
quadratic form ``(omega* - w0)^T M (omega* - w0)`` for a polynomial ``M`` in ``Sigma``
(:func:`adaptation_weight`), and meta-training must supply ``E (omega* - w0)^T M (omega* - w0)``.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ..derivation import Derivation, Rule
from ..rmt import expectation, expect
from ..symbols import alpha_r, sigma
from .model import PAPER, SIGMA, MetaTestTask, Model, w0
from .rules import ADAPTATION, WICK

__all__ = ["ERROR", "ERROR_M", "OMEGA_STAR", "adaptation_average", "adaptation_weight", "QUADRATIC_FORM"]

#: |omega* - w0|^2, the meta-training error (a placeholder until averaged)
ERROR = sp.Symbol(r"\lVert\omega^\star - w_0\rVert^2", nonnegative=True)
#: (omega* - w0)^T M (omega* - w0), the meta-training error an anisotropic test loss weighs by M
ERROR_M = sp.Symbol(r"\lVert\omega^\star - w_0\rVert_M^2", nonnegative=True)
#: the meta-trained initialisation, as seen by the meta-test phase
OMEGA_STAR = sp.MatrixSymbol(r"omega^\star", w0.shape[0], 1)
_a = sp.MatrixSymbol("a", w0.shape[0], 1)  # omega* - w0

ADAPTATION_STEPS = Rule(
    "meta-test adaptation",
    r"\theta_r^{(j+1)} = \theta_r^{(j)} - \alpha_r\nabla L(\theta_r^{(j)}; D_r),\ \theta_r^{(0)} = \omega^\star,\ "
    r"j < k_r;\quad \mathcal{L}_{\mathrm{test}} = \tfrac12\big(\sigma^2 + (w - \theta_r)^{\top}\Sigma(w - \theta_r)\big)",
    reference=r"the model's definition ($\Sigma = I$ for isotropic inputs)",
)
QUADRATIC_FORM = Rule(
    "quadratic form of the meta-training error",
    r"\sum_j c_j\,a^{\top}\Sigma^j a = a^{\top}Ma,\quad M = \sum_j c_j\Sigma^j,\ a = \omega^\star - w_0",
    reference="collecting the terms of the exact average by the power of Sigma between the two copies of a",
)


def _rule(model: Model) -> Rule:
    return ADAPTATION if model.is_paper else ADAPTATION_STEPS


def _test_average(model: Model):
    """``(loss_expression, half_sq)``: the test loss of the adapted parameters, with ``a = omega* - w0``."""
    test = MetaTestTask(model)
    theta_r = test.adapted(OMEGA_STAR, alpha_r)
    residual = (test.w - theta_r).subs(OMEGA_STAR, _a + w0).expand()
    weight = SIGMA if model.anisotropic else None
    half_sq = sp.Trace(residual.T * (weight * residual if weight is not None else residual)) / 2
    return half_sq


def adaptation_average(derivation: Derivation | None = None, model: Model = PAPER) -> sp.Expr:
    """``E_{w, D_r}[L_test]`` as an expression in :data:`ERROR` (isotropic inputs) or :data:`ERROR_M`
    (anisotropic: ``M`` is :func:`adaptation_weight`) and the canonical symbols."""
    d = derivation if derivation is not None else Derivation("meta-test average")
    half_sq = _test_average(model)
    lhs = sp.Symbol(r"\mathcal{L}_{\mathrm{test}}")
    if model.anisotropic:
        before = sp.Symbol(r"\tfrac12(\sigma^2 + (w - \theta_r)^{\top}\Sigma(w - \theta_r))")
    else:
        before = sp.Symbol(r"\tfrac12(\sigma^2 + \lVert w - \theta_r\rVert^2)")
    note = r"with $a = \omega^\star - w_0$; the inner step is differentiated by SymPy"
    if model.adaptation_steps > 1:
        note = (rf"with $a = \omega^\star - w_0$; $k_r = {model.adaptation_steps}$ steps: the step, "
                r"differentiated by SymPy, iterated")
    d.add(_rule(model), before, sigma**2 / 2 + half_sq, lhs=lhs, note=note)
    value = expectation(half_sq)
    if model.anisotropic:
        rest, weight = _split_quadratic_form(sp.expand(value))
        value = sigma**2 / 2 + sp.collect(rest, sigma, sp.factor) + ERROR_M / 2
        d.add(WICK, sigma**2 / 2 + expect(half_sq), value, lhs=sp.Symbol(r"\mathbb{E}_{w,D_r}\mathcal{L}_{\mathrm{test}}"),
              note=(r"exact average over $w$, $X_r$, $z_r$ (rows of $X_r$ are $\mathcal{N}(0, \Sigma)$); "
                    r"$s_j = \operatorname{tr}(\Sigma^j)/p$"))
        d.add(QUADRATIC_FORM, sp.Symbol("M"), weight, note=r"$\lVert a\rVert_M^2 = a^{\top}Ma$")
        return value
    value = sp.expand(value.subs(sp.Trace(_a.T * _a), ERROR))
    value = sigma**2 / 2 + sp.collect(value, ERROR, sp.factor)
    # the average of the expression of the step above (not repeated: it is long)
    d.add(WICK, sp.Symbol(r"\tfrac{\sigma^2}{2} + \mathbb{E}_{w,D_r}\big[\tfrac12\lVert w - \theta_r\rVert^2\big]"), value,
          lhs=sp.Symbol(r"\mathbb{E}_{w,D_r}\mathcal{L}_{\mathrm{test}}"),
          note=r"exact average over $w$, $X_r$, $z_r$; $\lVert a\rVert^2 = \lVert\omega^\star - w_0\rVert^2$")
    return value


@lru_cache(maxsize=None)
def adaptation_weight(model: Model):
    """The matrix ``M`` (a polynomial in ``Sigma``) with ``E_{w,D_r} L_test = c_0 + a^T M a / 2``."""
    if not model.anisotropic:
        raise ValueError("the adaptation weight M is a matrix only for anisotropic inputs")
    return _split_quadratic_form(sp.expand(expectation(_test_average(model))))[1] * 2


def _split_quadratic_form(value):
    """``(rest, W)``: ``value = rest + a^T W a`` with ``W`` a polynomial in ``Sigma`` (a matrix)."""
    rest, parts = sp.S.Zero, []
    for term in sp.Add.make_args(value):
        traces = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Trace) and f.has(_a)]
        if not traces:
            rest += term
            continue
        (tr,) = traces
        coeff = term / tr
        arg = tr.arg
        mats = list(arg.args) if isinstance(arg, sp.MatMul) else [arg]
        scalars = [x for x in mats if not isinstance(x, sp.MatrixExpr)]
        mats = [x for x in mats if isinstance(x, sp.MatrixExpr)]
        if mats[0] != _a.T or mats[-1] != _a or coeff.has(_a):
            raise AssertionError(f"not a quadratic form in a: {term}")
        middle = mats[1:-1]
        mid = sp.Identity(SIGMA.shape[0]) if not middle else (middle[0] if len(middle) == 1 else sp.MatMul(*middle))
        parts.append(sp.Mul(coeff, *scalars) * mid)
    weight = sp.MatAdd(*parts).doit() if len(parts) > 1 else parts[0]
    return rest, _collect_matrix(weight)


def _collect_matrix(weight):
    """``sum_j c_j Sigma^j`` with each coefficient factored (deterministic order)."""
    terms = sp.MatAdd.make_args(weight) if isinstance(weight, sp.MatAdd) else (weight,)
    groups: dict = {}
    for t in terms:
        coeff, mats = t.as_coeff_matrices() if isinstance(t, sp.MatMul) else (sp.S.One, [t])
        part = mats[0] if len(mats) == 1 else sp.MatMul(*mats)
        groups[part] = groups.get(part, sp.S.Zero) + coeff
    out = [sp.factor(c) * part for part, c in sorted(groups.items(), key=lambda kv: sp.default_sort_key(kv[0]))
           if c != 0]
    return sp.MatAdd(*out) if len(out) > 1 else out[0]
