r"""Compact display forms of derived expressions, chosen at render time and checked.

A derivation's expressions are stored as the engine made them (often expanded).  For a reader
:func:`compact` rewrites each polynomial part into the shortest of a few equal forms:

* expanded, or factored;
* collected by one of its variables, each coefficient made compact in turn (so
  ``n_r\alpha_r^2 + p\alpha_r^2 + \alpha_r^2 - 2n_r\alpha_r + n_r`` reads
  ``n_r(1 - \alpha_r)^2 + \alpha_r^2(p + 1)``);

and a sum of fractions may be put over a common denominator when that is shorter.  A form is
shorter when it shows fewer symbols, then has fewer operations, then when it prints narrower
(:func:`symmaml.export.latex.visual_width`).  Every rewrite is checked
where it is made: the difference between the new polynomial and the engine's expands to zero,
else :class:`DisplayError` is raised.  An even power of a sum is written with the sign that
gives the sum a positive constant term (``(1 - \alpha_t)^2``).

The choice is deterministic (candidates in a fixed order, ties to the first), and results are
cached per expression.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from sympy.core.mul import _keep_coeff

from ..algebra import factor_list
from ..symbols import RATES

__all__ = ["compact", "DisplayError", "MAX_TERMS"]

#: polynomials with more terms than this are left as the engine wrote them (factoring them
#: would cost seconds; such expressions go to a document's appendix anyway)
MAX_TERMS = 60
#: polynomials with at most this many terms are collected by every variable, longer ones by the rates
SMALL_TERMS = 8
#: a sum showing more symbols than this is not tried over a common denominator
TOGETHER_MAX_SYMBOLS = 60
#: how deep coefficients of a collected polynomial are themselves collected
MAX_DEPTH = 2


class DisplayError(AssertionError):
    """A display form that is not equal to the engine's expression (a bug: never shown)."""


def _width(expr) -> float:
    from .latex import expr_latex, visual_width  # latex imports this module

    return visual_width(expr_latex(expr))


def _size(expr) -> tuple:
    """How long a form reads: (symbols it shows, nodes of its tree)."""
    if isinstance(expr, sp.Symbol):
        return (1, 1)
    symbols, nodes = 0, 1
    for a in expr.args:
        s, n = _size(a)
        symbols, nodes = symbols + s, nodes + n
    return (symbols, nodes)


def _shorter(a, b) -> bool:
    """Whether ``a`` reads shorter than ``b``: fewer symbols shown, then fewer nodes, then narrower."""
    sa, sb = _size(a), _size(b)
    return sa < sb or (sa == sb and _width(a) < _width(b) - 1e-9)


def _is_plain_polynomial(expr) -> bool:
    """A polynomial in plain (commutative scalar) symbols with rational coefficients."""
    if not isinstance(expr, sp.Expr) or expr.is_Atom or expr.has(sp.MatrixExpr):
        return False
    if any(not isinstance(s, sp.Symbol) or isinstance(s, sp.Dummy) for s in expr.free_symbols):
        return False
    return bool(expr.free_symbols) and expr.is_polynomial(*sorted(expr.free_symbols, key=sp.default_sort_key))


def _mul(factors):
    """The product of ``factors`` with a rational coefficient kept outside a lone sum (``2(x + 1)``)."""
    coeff, rest = sp.S.One, []
    for f in factors:
        if f.is_Rational:
            coeff *= f
        else:
            rest.append(f)
    return _keep_coeff(coeff, sp.Mul(*rest)) if rest else coeff


def _minus_signs(b) -> int:
    return sum(1 for t in sp.Add.make_args(b) if t.could_extract_minus_sign())


def _signed_base(base, exp):
    """``(x - 1)^2 -> (1 - x)^2``: an even power of a sum, written with a positive constant term
    (or else with fewer minus signs)."""
    if base.is_Add and exp.is_Integer and int(exp) % 2 == 0:
        neg = sp.expand(-base)
        const = base.as_coeff_Add()[0]
        if const < 0 or (const == 0 and _minus_signs(neg) < _minus_signs(base)):
            return neg
    return base


def _check(new, old) -> None:
    if sp.expand(new - old) != 0:
        raise DisplayError(f"display form differs from the engine's expression: {new} vs {old}")


@lru_cache(maxsize=4096)
def _factor_list(expanded):
    """``(coefficient, [(factor, multiplicity)])`` of a polynomial, by the Poly-level factoriser."""
    gens = sorted(expanded.free_symbols, key=sp.default_sort_key)
    coeff, parts = factor_list(sp.Poly(expanded, *gens))
    return coeff, [(f.as_expr(), k) for f, k in parts]


def _factored(expanded, depth: int):
    """``factor(expanded)`` with each sum factor compact and even powers signed."""
    coeff, parts = _factor_list(expanded)
    odd = [i for i, (base, k) in enumerate(parts) if base.is_Add and k % 2]
    if coeff < 0 and odd:  # n_v (p - n_v - 1) rather than -n_v (n_v - p + 1)
        i = min(odd, key=lambda j: (_minus_signs(sp.expand(-parts[j][0])), j))
        parts = list(parts)
        parts[i] = (sp.expand(-parts[i][0]), parts[i][1])
        coeff = -coeff
    out = []
    for base, k in parts:
        b = _poly_compact(sp.expand(base), depth, False) if base.is_Add else base  # irreducible: not factored again
        b = _signed_base(b, sp.Integer(k)) if b.is_Add else b
        out.append(b if k == 1 else sp.Pow(b, k))
    return _mul([coeff] + out)


def _collected(expanded, x, depth: int):
    """``expanded`` collected by ``x``, each coefficient compact at ``depth + 1``."""
    parts = sp.collect(expanded, x, evaluate=False)
    if len(parts) < 2:
        return None
    terms = []
    for key in sorted(parts, key=sp.default_sort_key):
        coef = parts[key]
        if coef.is_Add:
            coef = _poly_compact(sp.expand(coef), depth + 1)
        terms.append(_mul([key, coef]) if key != 1 else coef)
    return sp.Add(*terms)


def _candidates(expanded, depth: int, factored: bool):
    """Equal forms of the expanded polynomial, in a fixed order (the first is itself).

    A polynomial of at most :data:`SMALL_TERMS` terms is also collected by each of its
    variables in turn; a longer one by the rates only (the search is exhaustive, so it is
    kept to what reads well: long polynomials are read by powers of the rates).
    """
    yield expanded
    n = len(sp.Add.make_args(expanded))
    if n > MAX_TERMS:
        return
    if factored:
        yield _factored(expanded, depth)
    if depth >= MAX_DEPTH or not expanded.is_Add:
        return
    syms = [s for s in RATES if s in expanded.free_symbols]
    if n <= SMALL_TERMS:
        syms += [s for s in sorted(expanded.free_symbols, key=sp.default_sort_key) if s not in RATES]
    for x in syms:
        cand = _collected(expanded, x, depth if n <= SMALL_TERMS else MAX_DEPTH - 1)
        if cand is not None:
            yield cand


@lru_cache(maxsize=4096)
def _poly_compact(expanded, depth: int = 0, factored: bool = True):
    """The shortest candidate for the expanded polynomial (checked equal to it at depth 0)."""
    best = None
    for cand in _candidates(expanded, depth, factored):
        if best is None or _shorter(cand, best):
            best = cand
    if depth == 0 and best is not expanded:
        _check(best, expanded)
    return best


def _term_compact(expr):
    """A product (perhaps with a denominator): each factor made compact."""
    if expr.is_Mul:
        num, den = sp.fraction(expr, exact=True)
        if den != 1:
            return _mul([_compact(num)]) / _compact(den)
        return _mul([_compact(a) for a in expr.args])
    if expr.is_Pow:
        base = _compact(expr.base)
        return sp.Pow(_signed_base(base, expr.exp) if base.is_Add else base, expr.exp)
    return _compact(expr)


@lru_cache(maxsize=4096)
def _compact(expr):
    if not isinstance(expr, sp.Expr) or expr.is_Atom or expr.has(sp.MatrixExpr):
        return expr
    if _is_plain_polynomial(expr) and (expr.is_Add or len(sp.Add.make_args(sp.expand(expr))) > 1):
        return _poly_compact(sp.expand(expr))
    if expr.is_Add:
        best = sp.Add(*(_term_compact(t) for t in expr.args))
        # over a common denominator, when that prints shorter
        if _size(expr)[0] > TOGETHER_MAX_SYMBOLS:
            return best
        num, den = sp.fraction(sp.together(expr))
        if den != 1 and _is_plain_polynomial(num) and len(sp.Add.make_args(sp.expand(num))) <= MAX_TERMS:
            joint = _mul([_poly_compact(sp.expand(num))]) / _compact(den)
            if _shorter(joint, best):
                best = joint
        return best
    if expr.is_Mul or expr.is_Pow:
        return _term_compact(expr)
    return expr


def compact(expr):
    """An expression equal to ``expr`` that prints shorter (see the module docstring).

    Only scalar expressions are rewritten (matrices, strings and other objects are returned
    as they are); inside functions nothing is changed.  Checked: each rewritten polynomial
    expands to the engine's.
    """
    if not isinstance(expr, sp.Expr):
        return expr
    return _compact(expr)
