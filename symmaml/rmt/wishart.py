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
    "wishart_moment", "wishart_trace_moment", "inverse_wishart_moment",
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
