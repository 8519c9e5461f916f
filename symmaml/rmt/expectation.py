"""``expectation``: exact averages of polynomials in Gaussian matrices, with their steps."""
from __future__ import annotations

import sympy as sp

from ..derivation import Derivation, Rule
from .words import Alphabet, expand
from .wick import Contractor, add_terms, expect, tidy

__all__ = ["expectation", "LINEARITY", "EVALUATE"]

LINEARITY = Rule(
    name="linearity",
    statement=r"\mathbb{E}\Big[\sum_k c_k \prod_j \mathrm{tr}\,w_{kj}\Big] = \sum_k c_k\, \mathbb{E}\Big[\prod_j \mathrm{tr}\,w_{kj}\Big]",
    conditions=(r"c_k \text{ deterministic}",),
    reference="multilinear expansion of the products; expectation is linear",
)
EVALUATE = Rule(
    name="Wick evaluation",
    statement=r"\mathbb{E}\prod_j \mathrm{tr}\,w_j = \sum_{\text{pairings}} \prod \delta\text{'s} "
              r"\text{, summed by recursive contraction}",
    conditions=(r"\text{Gaussian letters have i.i.d. } \mathcal{N}(0,1) \text{ entries}",),
    reference="Isserlis (1918)",
)


def _collect(expr, rational: bool = False):
    """Canonical form of a result: ``sum_k c_k M_k`` with distinct matrix parts ``M_k`` and
    scalar coefficients ``c_k`` (traces of deterministic matrices stay in the coefficients),
    expanded; with inverse moments (``rational``) the per-terminal fractions are left as
    :func:`~.wick.tidy` made them."""
    if not isinstance(expr, sp.MatrixExpr):
        return expr  # scalars are built expanded (or factored) by expectation()
    groups: dict = {}
    for term in (expr.args if isinstance(expr, sp.MatAdd) else (expr,)):
        coeff, mats = term.as_coeff_matrices() if isinstance(term, sp.MatMul) else (sp.S.One, [term])
        part = mats[0] if len(mats) == 1 else sp.MatMul(*mats)
        groups[part] = groups.get(part, sp.S.Zero) + coeff
    terms = []
    for part, coeff in groups.items():
        coeff = coeff if rational else sp.expand(coeff)
        if coeff != 0:
            terms.append(part if coeff == 1 else coeff * part)
    if not terms:
        return sp.ZeroMatrix(*expr.shape)
    return sp.MatAdd(*terms) if len(terms) > 1 else terms[0]


def expectation(expr, steps: bool = False):
    """The exact expectation of ``expr`` over every Gaussian matrix in it.

    ``expr`` is a SymPy scalar (traces, products of traces, 1x1 matrix products, polynomials of
    these) or matrix expression built from :func:`~symmaml.rmt.gaussian_matrix` symbols,
    deterministic ``MatrixSymbol``s, identities, sums, products, transposes and non-negative
    integer powers.  Deterministic matrix expressions the engine does not decompose (e.g.
    ``Inverse(M)``) are kept whole.  ``(X^T X)^{-1}`` (or ``(X X^T)^{-1}``, or their square) of a
    Gaussian ``X`` that appears nowhere else is averaged by the stated inverse-Wishart rules up
    to second order; their existence conditions are checked (``ValueError`` when decidably
    false) and recorded in ``Derivation.assumptions``.

    Returns a SymPy expression: a polynomial in the dimensions (a factored fraction when
    inverse moments occur), or a matrix ``sum_k c_k M_k``.  A 1x1 matrix expression is averaged
    as a scalar.  With ``steps=True`` returns ``(value, Derivation)`` whose steps are the
    expansion, one step per contracted state (parents first), and the final collection.

    Raises :class:`NotAveragable` for an object the engine cannot average and
    :class:`~sympy.matrices.exceptions.ShapeError` (a ``ValueError``) for non-conformable shapes.
    """
    expr = sp.sympify(expr)
    alphabet = Alphabet()
    terms = expand(expr, alphabet)
    engine = Contractor(alphabet, record=steps)
    rational = bool(alphabet.inverse)
    by_terminal: dict = {}  # terminal state -> {expansion coefficient: ring element}
    for coeff, state in terms:
        for terminal, poly in engine.value(state).items():
            acc = by_terminal.setdefault(terminal, {})
            acc[coeff] = acc[coeff] + poly if coeff in acc else poly
    parts = []
    for terminal, acc in sorted(by_terminal.items()):
        c = sp.Add(*(k * v.as_expr() for k, v in acc.items()))
        if rational or not all(k.is_Number for k in acc):  # numbers distribute over a ring's sum
            c = tidy(c, rational)
        t = engine.to_sympy(terminal)
        # an expanded sum times a product of traces, distributed term by term (no global expand)
        parts.append(sp.Add(*(m * t for m in sp.Add.make_args(c))) if not rational and not
                     isinstance(t, sp.MatrixExpr) else c * t)
    value = add_terms(parts)
    if isinstance(expr, sp.MatrixExpr) and expr.shape != (1, 1) and value == 0:
        value = sp.ZeroMatrix(*expr.shape)
    value = _collect(value, rational)
    if not steps:
        return value
    d = Derivation(title=f"E[{expr}]", order="exact", assumptions=tuple(engine.assumptions))
    expanded = add_terms([c * expect(engine.to_sympy(s)) for c, s in terms])
    d.add(LINEARITY, expect(expr), expanded)
    d.extend(engine.derivation)
    d.add(EVALUATE, expanded, value, note=f"{len(engine.memo)} states evaluated")
    d.result = value
    return value, d
