"""Wishart moments (derived by the engine) and inverse-Wishart rules (stated, with conditions).

``W = X^T X`` with ``X`` an ``n x p`` matrix of i.i.d. N(0,1) entries: ``W ~ Wishart_p(n, I)``.
Positive moments are computed by :func:`~symmaml.rmt.expectation`, i.e. by Wick contraction,
never typed in.  Inverse moments are stated rules (references in the docstrings) with their
existence conditions; the tests hold them against simulation.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ..derivation import Derivation, Rule
from .expectation import expectation
from .gaussian import gaussian_matrix

__all__ = [
    "wishart_moment", "wishart_trace_moment", "inverse_wishart_moment",
    "inverse_wishart_second_moments", "expected_projection",
    "INVERSE_WISHART_MEAN", "INVERSE_WISHART_SECOND", "ROTATIONAL_PROJECTION",
]


def _size(name, value):
    value = sp.sympify(value)
    if value.is_number and not (value.is_integer and value.is_positive):
        raise ValueError(f"{name} must be a positive integer, got {value}")
    if not value.is_number and value.is_positive is False:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


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
    c = sp.expand(value.args[0]) if isinstance(value, sp.MatMul) else (sp.S.One if isinstance(value, sp.Identity) else None)
    if c is None or sp.MatMul(c, sp.Identity(p)).doit() != value:
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


# ---------------------------------------------------------------------------------------
# inverse Wishart: stated rules

INVERSE_WISHART_MEAN = Rule(
    name="inverse-Wishart mean",
    statement=r"\mathbb{E}[W^{-1}] = \frac{1}{n-p-1}\, I_p",
    conditions=(r"W \sim \mathcal{W}_p(n, I_p)", r"n > p + 1"),
    reference="Muirhead, Aspects of Multivariate Statistical Theory (1982), Thm 3.2.12",
)
INVERSE_WISHART_SECOND = Rule(
    name="inverse-Wishart second moments",
    statement=(
        r"\mathbb{E}[(W^{-1})_{ij}(W^{-1})_{kl}] = c_1\,\delta_{ij}\delta_{kl}"
        r" + c_2(\delta_{ik}\delta_{jl} + \delta_{il}\delta_{jk}),\ "
        r"c_2 = \frac{1}{(n-p)(n-p-1)(n-p-3)},\ c_1 = (n-p-2)\,c_2"
    ),
    conditions=(r"W \sim \mathcal{W}_p(n, I_p)", r"n > p + 3"),
    reference="von Rosen, Scand. J. Stat. 15 (1988); Letac & Massam, Ann. Stat. 32 (2004)",
)
ROTATIONAL_PROJECTION = Rule(
    name="rotational invariance of a projection",
    statement=r"\mathbb{E}[Z^{\top}(ZZ^{\top})^{-1}Z] = \frac{r}{c}\, I_c",
    conditions=(r"Z \in \mathbb{R}^{r\times c},\ r \le c,\ \operatorname{rank} Z = r \text{ a.s.}",
                r"Z \overset{d}{=} ZO \text{ for every orthogonal } O"),
    reference="the expectation commutes with every rotation, so it is a multiple of I; its trace is the rank",
)


def _require(condition, message):
    cond = sp.sympify(condition)
    if cond is sp.false:
        raise ValueError(message)
    return cond


def inverse_wishart_moment(n, p):
    """``c`` with ``E[W^{-1}] = c I_p`` (rule :data:`INVERSE_WISHART_MEAN`), requires n > p + 1."""
    n, p = _size("n", n), _size("p", p)
    _require(sp.Gt(n, p + 1), f"E[W^-1] exists only for n > p + 1, got n={n}, p={p}")
    return 1 / (n - p - 1)


def inverse_wishart_second_moments(n, p) -> dict:
    """Second-order inverse-Wishart moments (rule :data:`INVERSE_WISHART_SECOND`), n > p + 3.

    Returns ``c1``, ``c2`` and the contractions ``tr_inv_sq`` = E[(tr W^{-1})^2] and
    ``tr_inv2`` = E[tr W^{-2}] (so that E[W^{-2}] = tr_inv2 / p * I).
    """
    n, p = _size("n", n), _size("p", p)
    _require(sp.Gt(n, p + 3), f"second inverse-Wishart moments exist only for n > p + 3, got n={n}, p={p}")
    c2 = 1 / ((n - p) * (n - p - 1) * (n - p - 3))
    c1 = (n - p - 2) * c2
    return {
        "c1": c1,
        "c2": c2,
        "tr_inv_sq": sp.factor(c1 * p**2 + 2 * c2 * p),  # sum_{ik} E[V_ii V_kk]
        "tr_inv2": sp.factor(c1 * p + c2 * (p + p**2)),  # sum_{ij} E[V_ij V_ji]
    }


def expected_projection(rows, cols):
    """``r/c`` with ``E[Z^T (Z Z^T)^{-1} Z] = (r/c) I_c`` for a right-rotation-invariant Z of rank r <= c."""
    rows, cols = _size("rows", rows), _size("cols", cols)
    _require(sp.Le(rows, cols), f"the projection rule needs rows <= cols, got rows={rows}, cols={cols}")
    return rows / cols
