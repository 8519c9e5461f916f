"""Inverse-Wishart rules: stated (with references and existence conditions), not derived.

``W = X^T X`` with ``X`` an ``n x p`` matrix of i.i.d. N(0,1) entries is ``Wishart_p(n, I)``.
Negative moments do not follow from Wick's theorem; they are stated here once, as data, and
the tests hold every one of them against simulation.  Both :mod:`.wishart` (the standalone
helpers) and :mod:`.wick` (which averages ``(X^T X)^{-1}`` inside expressions) read them from
this module, which imports nothing else of the engine.
"""
from __future__ import annotations

import sympy as sp

from ..algebra import factor
from ..derivation import Rule

__all__ = [
    "INVERSE_WISHART_MEAN", "INVERSE_WISHART_SECOND", "ROTATIONAL_PROJECTION",
    "inverse_wishart_moment", "inverse_wishart_second_moments", "expected_projection",
    "inverse_mean_coefficient", "inverse_second_coefficients", "require",
]

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


def _size(name, value):
    value = sp.sympify(value)
    if value.is_number and not (value.is_integer and value.is_positive):
        raise ValueError(f"{name} must be a positive integer, got {value}")
    if not value.is_number and value.is_positive is False:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def require(condition, message):
    """Raise ``ValueError(message)`` when ``condition`` is decidably false; else return it.

    Symbolic conditions that SymPy cannot decide (``n > p + 1`` with free ``n, p``) pass:
    they are the rule's stated assumptions, recorded with it.
    """
    cond = sp.sympify(condition)
    if cond is sp.false:
        raise ValueError(message)
    return cond


def inverse_mean_coefficient(n, p):
    """``m`` with ``E[W^{-1}] = m I_p``; raises ``ValueError`` unless ``n > p + 1`` may hold."""
    require(sp.Gt(n, p + 1), f"E[W^-1] exists only for n > p + 1 (W ~ Wishart_p(n)), got n={n}, p={p}")
    return 1 / (n - p - 1)


def inverse_second_coefficients(n, p):
    """``(c1, c2)`` of rule :data:`INVERSE_WISHART_SECOND`; raises unless ``n > p + 3`` may hold."""
    require(sp.Gt(n, p + 3),
            f"second inverse-Wishart moments exist only for n > p + 3 (W ~ Wishart_p(n)), got n={n}, p={p}")
    c2 = 1 / ((n - p) * (n - p - 1) * (n - p - 3))
    return (n - p - 2) * c2, c2


def inverse_wishart_moment(n, p):
    """``c`` with ``E[W^{-1}] = c I_p`` (rule :data:`INVERSE_WISHART_MEAN`), requires n > p + 1."""
    n, p = _size("n", n), _size("p", p)
    return inverse_mean_coefficient(n, p)


def inverse_wishart_second_moments(n, p) -> dict:
    """Second-order inverse-Wishart moments (rule :data:`INVERSE_WISHART_SECOND`), n > p + 3.

    Returns ``c1``, ``c2`` and the contractions ``tr_inv_sq`` = E[(tr W^{-1})^2] and
    ``tr_inv2`` = E[tr W^{-2}] (so that E[W^{-2}] = tr_inv2 / p * I).
    """
    n, p = _size("n", n), _size("p", p)
    c1, c2 = inverse_second_coefficients(n, p)
    return {
        "c1": c1,
        "c2": c2,
        "tr_inv_sq": _factored(c1 * p**2 + 2 * c2 * p),  # sum_{ik} E[V_ii V_kk]
        "tr_inv2": _factored(c1 * p + c2 * (p + p**2)),  # sum_{ij} E[V_ij V_ji]
    }


def _factored(e):
    """``factor`` with generators ordered by name, so signs read ``n - p - 1`` (not ``-n + p + 1``)."""
    gens = sorted(e.free_symbols, key=lambda s: s.name)
    return factor(e, *gens) if gens else e


def expected_projection(rows, cols):
    """``r/c`` with ``E[Z^T (Z Z^T)^{-1} Z] = (r/c) I_c`` for a right-rotation-invariant Z of rank r <= c.

    Rule :data:`ROTATIONAL_PROJECTION` (e.g. Z Gaussian ``r x c``: ``Z^+ Z`` projects onto its
    row space, of dimension ``r`` almost surely).
    """
    rows, cols = _size("rows", rows), _size("cols", cols)
    require(sp.Le(rows, cols), f"the projection rule needs rows <= cols, got rows={rows}, cols={cols}")
    return rows / cols
