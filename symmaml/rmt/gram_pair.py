r"""The Gram matrix of one or two Gaussian rows, inverted exactly: the pair representation.

``X`` a ``q x p`` matrix of i.i.d. N(0, 1) entries (``q = 1, 2``), ``B >= 0`` and ``F`` symmetric ``p x p``, both
fixed; ``H = X B X^T``.  With ``C_z = (I + zB)^{-1}``, ``Lambda(z) = log det(I + zB)``,
``Lambda'(z) = tr B C_z``, ``mu(z) = tr F C_z`` and ``nu(z1, z2) = tr(B C_{z1} F C_{z2})``:

* ``q = 1``: ``E 1/H = 1/2 int_0^inf e^{-Lambda(z)/2} dz`` and ``E x^T F x / H = 1/2 int_0^inf mu(z) e^{-Lambda(z)/2} dz``
  (``1/H = 1/2 int_0^inf e^{-zH/2} dz``, and ``E_x x^T F x e^{-z x^T B x/2} = mu(z) e^{-Lambda(z)/2}``);
* ``q = 2``: ``E tr H^{-1} = 1/4 iint_{z1 > z2 > 0} (z1 - z2)(z1 z2)^{-1/2} e^{-(Lambda(z1) + Lambda(z2))/2}
  [Lambda'(z1) + Lambda'(z2)] dz1 dz2``, and ``E tr(H^{-1} X F X^T)`` the same integral with the bracket
  ``Lambda'(z1) mu(z2) + Lambda'(z2) mu(z1) - 2 nu(z1, z2)``.

Why (``q = 2``): for a 2 x 2 matrix ``adj H = (tr H) I - H``, so ``tr(H^{-1} K) = tr(adj(H) K)/det H``, and
``1/det H = (2 pi)^{-2} int exp(-tr(Z^T H Z)/2) dZ`` over real 2 x 2 matrices ``Z``; the average over ``X``
moves inside (Tonelli).  ``X``'s law is invariant under rotations of its rows, so ``Z Z^T`` may be taken
diagonal, ``diag(z1, z2)``: the two rows are then independent ``N(0, C_{z_i})`` with weight
``det(I + z_i B)^{-1/2}``, and ``H_11 K_22 + H_22 K_11 - 2 H_12 K_12 = tr(adj(H) K)`` averages (Wick) to the
bracket.  In the singular values of ``Z``, ``dZ = pi^2 (z1 - z2)(z1 z2)^{-1/2} dz1 dz2`` on ``z1 > z2`` (the
constant from ``int exp(-tr Z^T Z/2) dZ = (2 pi)^2``).  For ``tr H^{-1} = tr H/det H`` the bracket is
``tr H`` averaged under the tilted law, ``Lambda'(z1) + Lambda'(z2)``.  Every step is exact, for every ``B`` and ``F``: the tests hold
the integrals against Monte Carlo for a spread spectrum.

Numbers: :func:`pair_integral` integrates given ``Lambda, Lambda', mu`` and ``nu`` (vectorised callables) by the
trapezoid rule in ``s = log z1`` and ``t = log log(z1/z2)``.  In these variables the integrand is analytic (the
kink of ``|z1 - z2|`` on the diagonal is gone) and decays exponentially both ways, so the rule converges
geometrically: with the step :data:`STEP` it reproduces the closed form at ``B = I`` (``E tr H^{-1} = 2/(r - 3)``)
to ``1e-13`` and agrees with the half step to ``1e-13`` (measured in the tests).  There is no mpmath version: a
two-dimensional ``mpmath.quad`` takes minutes.  :func:`gram_pair_spectrum` does it for an explicit spectrum
(the reference of the tests).

This module knows nothing of MAML.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..derivation import Rule

__all__ = ["GRAM_PAIR", "STEP", "pair_integral", "gram_pair_spectrum"]

GRAM_PAIR = Rule(
    "the Gram matrix of two Gaussian rows, inverted exactly",
    r"\mathbb{E}\operatorname{tr}\big(H^{-1}XFX^{\top}\big) = \tfrac14\iint_{z_1 > z_2 > 0}\frac{z_1 - z_2}{\sqrt{z_1z_2}}"
    r"\,e^{-\frac12[\Lambda(z_1) + \Lambda(z_2)]}\big[\Lambda'(z_1)\mu(z_2) + \Lambda'(z_2)\mu(z_1) - 2\nu(z_1, z_2)\big]dz_1dz_2",
    conditions=(r"H = XBX^{\top},\ X \in \mathbb{R}^{2\times p} \text{ standard Gaussian},\ B, F \text{ fixed}",
                r"\Lambda(z) = \log\det(I + zB),\ \mu(z) = \operatorname{tr}F(I + zB)^{-1},\ "
                r"\nu = \operatorname{tr}B(I + z_1B)^{-1}F(I + z_2B)^{-1}"),
    reference=(r"exact: $\operatorname{tr}H^{-1}K = \operatorname{tr}(\operatorname{adj}H\,K)/\det H$, "
               r"$(\det H)^{-1} = (2\pi)^{-2}\int e^{-\operatorname{tr}Z^{\top}HZ/2}dZ$ over $2\times2$ matrices $Z$, "
               r"the rows of $X$ rotated so that $ZZ^{\top}$ is diagonal, Wick's theorem, and the singular values "
               r"of $Z$ ($dZ = \pi^2(z_1 - z_2)(z_1z_2)^{-1/2}dz_1dz_2$); $F = B$ gives $\operatorname{tr}H^{-1}$ "
               r"with the bracket $\Lambda'(z_1) + \Lambda'(z_2)$"),
)

STEP = 0.2
"""Step of the trapezoid rule in ``s = log z1`` and ``t = log log(z1/z2)``."""
S_RANGE = (-40.0, 80.0)
"""``z1`` (the larger) from ``e^-40`` (the integrand vanishes there as ``z1^2``) to ``e^80``."""
T_RANGE = (-14.0, 4.5)
"""``log(z1/z2)`` from ``e^-14`` (the integrand vanishes as ``log(z1/z2)^2``) to ``e^4.5`` (it falls as
``(z2/z1)^(1/2)``, here below ``e^-45``)."""
NEGLIGIBLE = 1e-20
"""Rows of ``s`` whose bound on the integrand is below this fraction of the largest are not evaluated."""
_CHUNK = 100

Fields = Callable[[np.ndarray], tuple]
Cross = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _grid(lo: float, hi: float, step: float) -> np.ndarray:
    return np.arange(lo, hi + step / 2, step)


def pair_integral(fields: Fields, cross: Cross | None, q: int, step: float = STEP) -> tuple[float, float]:
    """``(E tr H^{-1}, E tr(H^{-1} X F X^T))`` for ``q = 1, 2`` rows (module docstring), by the trapezoid rule.

    ``fields(z)`` returns ``(Lambda, Lambda', mu)`` at the points ``z`` (an array of any shape; ``mu`` may be
    ``None`` when only ``E tr H^{-1}`` is wanted), ``cross(z1, z2)`` returns ``nu`` at the broadcast points
    (``z1 >= z2``; ``z1`` a column, ``z2`` the same array ``fields`` was just given, so that its work may be reused).  Non-finite values propagate (the caller decides what NaN means)."""
    s = _grid(*S_RANGE, step)
    if q == 1:
        z = np.exp(s)
        lam, _, mu = fields(z)
        f = np.exp(s - lam / 2)                      # dz = z ds
        return 0.5 * f.sum() * step, (0.5 * (mu * f).sum() * step if mu is not None else np.nan)
    if q != 2:
        raise ValueError(f"q (the number of rows) must be 1 or 2, got {q!r}")
    t = _grid(*T_RANGE, step)
    v = np.exp(t)[None, :]
    lam1, dlam1, mu1 = fields(np.exp(s))
    # the integrand is at most a constant times e^(2s - Lambda(z1)/2) (e^(-Lambda(z2)/2) <= 1, the bracket is
    # bounded): the rows of s where that is below NEGLIGIBLE of its largest value are skipped
    envelope = 2 * s - lam1 / 2
    keep = np.flatnonzero(envelope >= np.nanmax(envelope) + np.log(NEGLIGIBLE))
    if keep.size:
        rows = slice(keep[0], keep[-1] + 1)
        s, lam1, dlam1 = s[rows], lam1[rows], dlam1[rows]
        mu1 = mu1[rows] if mu1 is not None else None
    # (z1 - z2)(z1 z2)^(-1/2) dz1 dz2 = -expm1(-v) z1^2 e^(-v/2) v ds dt (z1 = e^s, z2 = z1 e^-v), in logs
    log_measure = np.log(-np.expm1(-v)) - v / 2 + t[None, :]
    h = tr = 0.0
    for i in range(0, s.size, _CHUNK):
        sl = slice(i, i + _CHUNK)
        ss = s[sl, None]
        z1 = np.exp(ss)
        z2 = np.exp(ss - v)
        lam2, dlam2, mu2 = fields(z2)
        w = np.exp(2 * ss + log_measure - (lam1[sl, None] + lam2) / 2)
        h += (w * (dlam1[sl, None] + dlam2)).sum()
        if mu1 is not None:
            nu = cross(z1, z2)
            tr += (w * (dlam1[sl, None] * mu2 + dlam2 * mu1[sl, None] - 2 * nu)).sum()
    scale = 0.25 * step * step
    return h * scale, (tr * scale if mu1 is not None else np.nan)


def gram_pair_spectrum(b, f_diag, q: int = 2, step: float = STEP) -> tuple[float, float]:
    """``(E tr H^{-1}, E tr(H^{-1} X F X^T))`` for ``B = diag(b)`` (``b >= 0``) and ``F`` with diagonal ``f_diag``
    in ``B``'s eigenbasis (only the diagonal enters), averaged over ``X`` exactly (the module's integrals)."""
    b, fd = np.asarray(b, float), np.asarray(f_diag, float)

    def fields(z):
        zb = z[..., None] * b
        c = 1 / (1 + zb)
        return np.log1p(zb).sum(-1), (b * c).sum(-1), (fd * c).sum(-1)

    def cross(z1, z2):
        return (b * fd / ((1 + z1[..., None] * b) * (1 + z2[..., None] * b))).sum(-1)

    return pair_integral(fields, cross, q, step)
