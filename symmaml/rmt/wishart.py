"""Wishart moments (derived by the engine) and inverse-Wishart rules (stated, with conditions).

``W = X^T X`` with ``X`` an ``n x p`` matrix of i.i.d. N(0,1) entries: ``W ~ Wishart_p(n, I)``.
Positive moments are computed by :func:`~symmaml.rmt.expectation`, i.e. by Wick contraction,
never typed in.  Inverse moments are stated rules (:mod:`.inverse`, references in the docstrings)
with their existence conditions; the tests hold them against simulation.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ..derivation import Derivation
from .expectation import expectation
from .gaussian import gaussian_matrix
# the inverse-Wishart rules live in .inverse (shared with the engine); re-exported here
from .inverse import (
    INVERSE_WISHART_MEAN, INVERSE_WISHART_SECOND, ROTATIONAL_PROJECTION, _size,
    expected_projection, inverse_wishart_moment, inverse_wishart_second_moments,
)

__all__ = [
    "wishart_moment", "wishart_trace_moment", "wishart_trace_moment_poly", "wishart_average", "inverse_wishart_moment",
    "inverse_wishart_second_moments", "expected_projection",
    "INVERSE_WISHART_MEAN", "INVERSE_WISHART_SECOND", "ROTATIONAL_PROJECTION",
]


def _wishart(n, p):
    n, p = _size("n", n), _size("p", p)
    x = gaussian_matrix("X", n, p)
    return x.T * x


@lru_cache(maxsize=None)
def _trace_moment(ks: tuple, n, p, steps: bool):
    w = _wishart(n, p)
    expr = sp.Mul(*(sp.Trace(w**k) if k else p for k in ks))
    return expectation(expr, steps=steps)


_ENGINES: dict = {}


@lru_cache(maxsize=None)
def wishart_trace_moment_poly(ks: tuple, n, p) -> sp.Poly:
    """``E[prod_j tr(W^{k_j})]`` as a ``Poly`` in the symbols of ``n`` and ``p`` (exact).

    The same contraction as :func:`wishart_trace_moment`, but every partition shares one memoised
    engine per ``(n, p)`` and the result stays in polynomial arithmetic (no SymPy tree is built),
    which is what moments of high degree need."""
    from .wick import Contractor
    from .words import Alphabet, expand

    ks = tuple(sorted(ks, reverse=True))
    n, p = sp.sympify(n), sp.sympify(p)
    key = (n, p)
    if key not in _ENGINES:
        alphabet = Alphabet()
        w = _wishart(n, p)
        expand(sp.Trace(w), alphabet)
        _ENGINES[key] = (alphabet, Contractor(alphabet))
    alphabet, engine = _ENGINES[key]
    w = _wishart(n, p)
    total = engine.ring.zero
    for coeff, state in expand(sp.Mul(*(sp.Trace(w**k) if k else p for k in ks)), alphabet):
        for terminal, value in engine.value(state).items():
            if terminal:
                raise AssertionError(f"a Wishart trace moment left a random state: {terminal}")
            total += engine.ring(coeff) * value
    gens = engine.ring.symbols
    return sp.Poly.from_dict(dict(total.items()), *gens) if total else sp.Poly(0, *gens)


def wishart_trace_moment(ks, n, p, steps: bool = False):
    """``E[prod_j tr(W^{k_j})]`` as a polynomial in ``n`` and ``p`` (exact, any order)."""
    if isinstance(ks, int):
        ks = (ks,)
    ks = tuple(ks)
    if not ks or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in ks):
        raise ValueError(f"ks must be a non-empty sequence of non-negative integers, got {ks!r}")
    return _trace_moment(tuple(sorted(ks, reverse=True)), sp.sympify(n), sp.sympify(p), steps)


@lru_cache(maxsize=None)
def _moment(k: int, n, p, steps: bool):
    w = _wishart(n, p)
    res = expectation(w**k, steps=steps)
    value = res[0] if steps else res
    if not isinstance(value, sp.MatrixExpr):  # p == 1: W is 1x1, its expectation a scalar
        c = sp.expand(value)
    elif isinstance(value, sp.Identity):
        c = sp.S.One
    elif isinstance(value, sp.MatMul) and value.as_coeff_matrices()[1] == [sp.Identity(p)]:
        c = sp.expand(value.as_coeff_matrices()[0])
    else:
        raise AssertionError(f"E[W^{k}] is not a multiple of the identity: {value}")
    return (c, res[1]) if steps else c


def wishart_moment(k, n, p, steps: bool = False):
    """The scalar ``c`` with ``E[W^k] = c I_p``, a polynomial in ``n`` and ``p``.

    Computed from the matrix-valued expectation (free indices carried by the engine), not by
    dividing a trace by ``p``.
    """
    if not (isinstance(k, int) and not isinstance(k, bool) and k >= 0):
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    if k == 0:
        return (sp.S.One, Derivation("E[W^0] = I")) if steps else sp.S.One
    return _moment(k, sp.sympify(n), sp.sympify(p), steps)


def _wishart_power(word, x) -> int | None:
    """``j`` if the matrix product ``word`` is ``(X^T X)^j`` or ``(X X^T)^j`` read cyclically, else None."""
    mats = list(word.args) if isinstance(word, sp.MatMul) else [word]
    if any(not isinstance(f, sp.MatrixExpr) for f in mats):
        return None
    flat = []
    for f in mats:
        if isinstance(f, sp.MatPow) and f.exp.is_Integer and f.exp > 0:
            inner = list(f.base.args) if isinstance(f.base, sp.MatMul) else [f.base]
            flat += inner * int(f.exp)
        else:
            flat.append(f)
    if len(flat) % 2 or not flat:
        return None
    a, b = flat[0], flat[1]
    if {a, b} != {x, x.T}:
        return None
    return len(flat) // 2 if all(flat[i] == (a if i % 2 == 0 else b) for i in range(len(flat))) else None


def _laurent_gens(*exprs) -> tuple:
    """Generators in which ``exprs`` are polynomials: their symbols, and the reciprocals that occur."""
    symbols, inverse = set(), set()
    for e in exprs:
        symbols |= e.free_symbols
        for pw in e.atoms(sp.Pow):
            if pw.exp.is_Integer and pw.exp < 0 and pw.base.is_Symbol:
                inverse.add(pw.base)
    ordered = sorted(symbols, key=lambda s: s.name)
    return tuple(ordered) + tuple(1 / s for s in sorted(inverse, key=lambda s: s.name))


def wishart_average(expr, x, as_poly: bool = False):
    """``E[expr]`` over a Gaussian ``x`` (``n x p``, no covariance) for ``expr`` a polynomial in traces of
    powers of ``x^T x`` (as the engine returns when everything else has been averaged).

    Each product of traces is a Wishart trace moment (:func:`wishart_trace_moment`, cached by
    partition), so moments of high degree are computed once, and the sum is formed in polynomial
    arithmetic (a Laurent polynomial in the symbols), never by expanding SymPy trees; falls back to
    :func:`~symmaml.rmt.expectation` for any other form.  Returns an expanded expression (a ``Poly``
    in its Laurent generators with ``as_poly``, unless it fell back).
    """
    expr = sp.sympify(expr)
    if getattr(x, "covariance", None) is not None or isinstance(expr, sp.MatrixExpr):
        return expectation(expr)
    n, p = x.shape
    grouped: dict = {}
    for term in sp.Add.make_args(expr):
        coeff, ks = [], []
        for piece in sp.Mul.make_args(term):
            base, exp = piece.as_base_exp()
            if isinstance(base, sp.Trace):
                j = _wishart_power(base.arg, x)
                if j is None or not exp.is_Integer or exp < 0:
                    return expectation(expr)
                ks += [j] * int(exp)
            elif piece.has(x):
                return expectation(expr)
            else:
                coeff.append(piece)
        key = tuple(sorted(ks, reverse=True))
        grouped.setdefault(key, []).append(sp.Mul(*coeff))
    keys = sorted(grouped, key=str)
    sums = {key: sp.Add(*grouped[key]) for key in keys}
    gens = _laurent_gens(*sums.values(), n, p)
    total = sp.Poly(0, *gens)
    for key in keys:
        moment = wishart_trace_moment_poly(key, n, p).as_expr() if key else sp.S.One
        total += sp.Poly(sums[key], *gens) * sp.Poly(moment, *gens)
    return total if as_poly else total.as_expr()
