"""``expectation``: exact averages of polynomials in Gaussian matrices, with their steps."""
from __future__ import annotations

import sympy as sp

from ..derivation import Derivation, Rule
from .words import Alphabet, expand
from .wick import Contractor, add_terms, expect

__all__ = ["expectation", "LINEARITY"]

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


def _collect(expr):
    """Canonical form of a result: expanded, traces and matrices collected."""
    if isinstance(expr, sp.MatrixExpr):
        return expr
    return sp.expand(expr)


def expectation(expr, steps: bool = False):
    """The exact expectation of ``expr`` over every Gaussian matrix in it.

    ``expr`` is a SymPy scalar (traces, products of traces, 1x1 matrix products, polynomials of
    these) or matrix expression built from :func:`~symmaml.rmt.gaussian_matrix` symbols,
    deterministic ``MatrixSymbol``s, identities, sums, products, transposes and non-negative
    integer powers.  Returns a SymPy expression; with ``steps=True`` returns
    ``(value, Derivation)`` whose steps are the expansion, one step per contracted state, and
    the final collection.
    """
    expr = sp.sympify(expr)
    alphabet = Alphabet()
    terms = expand(expr, alphabet)
    engine = Contractor(alphabet, record=steps)
    parts = []
    for coeff, state in terms:
        for terminal, poly in engine.value(state).items():
            parts.append(coeff * poly.as_expr() * engine.to_sympy(terminal))
    value = add_terms(parts)
    if isinstance(expr, sp.MatrixExpr) and expr.shape != (1, 1) and value == 0:
        value = sp.ZeroMatrix(*expr.shape)
    value = _collect(value)
    if not steps:
        return value
    d = Derivation(title=f"E[{expr}]", order="exact")
    expanded = add_terms([c * expect(engine.to_sympy(s)) for c, s in terms])
    d.add(LINEARITY, expect(expr), expanded)
    d.extend(engine.derivation)
    d.add(EVALUATE, expanded, value, note=f"{len(engine.memo)} states evaluated")
    d.result = value
    return value, d
