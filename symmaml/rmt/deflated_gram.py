r"""The inverse Gram block of q <= 2 Gaussian rows seen through a deflated power of an inner-step matrix.

``A = I - sW`` with ``W ~ Wishart_p(n, I)``, ``V`` a ``p x d`` Haar frame independent of ``A``, ``Q = I - V V^T``,
``B = A^k Q A^k`` and ``F = (I - A^k) sum_{i<k} A^i``; ``X`` a ``q x p`` standard Gaussian matrix (``q = 1, 2``) and
``H = X B X^T``.  :class:`DeflatedGramTrace` ``(j, k, s, n, p, d, q)`` approximates

* ``j = 0``: ``E tr H^{-1}``;
* ``j = 1``: ``E tr(H^{-1} X F X^T)``.

Construction (each approximation named, the rest exact):

1. exact given ``B`` and ``F``: the pair representation (:mod:`.gram_pair`), the average over ``X`` as an
   integral over ``(z1, z2)`` of ``e^{-(Lambda(z1) + Lambda(z2))/2}`` times traces of resolvents of ``B``;
2. approximation (self-averaging): ``Lambda = log det(I + zB)`` and each trace by its mean over ``A`` and ``V``;
3. exact: the deflation by the matrix determinant lemma and Woodbury's identity, with ``D = A^{2k}`` and
   ``R_z = (I + zD)^{-1}``: ``log det(I + zB) = log det(I + zD) + log det(I - z V^T A^k R_z A^k V)`` and
   ``(I + zB)^{-1} = R_z + z R_z A^k V (I - z V^T A^k R_z A^k V)^{-1} V^T A^k R_z``;
4. approximation (the frame by its mean): ``V^T g(A) V -> (tr g(A)/p) I_d`` (exact in mean), also inside products;
5. exact for a mean trace: ``tr f(A) -> (p - n') f(1) + n' E_lambda f(1 - s lambda)``, ``n' = min(n, p)``, ``lambda``
   a non-zero eigenvalue of ``W`` picked at random; ``E_lambda`` by the Gauss rule of its exact moments
   (:mod:`.wishart_quadrature`, the one approximation of this step).

With ``g(z) = tr(R_z)/p`` (``= 1 - z tr(D R_z)/p``) the means are

* ``Lambda = tr log(I + zD) + d log g``, ``Lambda' = tr D R - d tr(D R^2)/(p g)``,
* ``mu = tr F R + z d tr(D R^2 F)/(p g)``,
* ``tr(C_1 F C_2) = tr R_1R_2F + d[z_1 tr(D R_1^2 R_2 F)/g_1 + z_2 tr(D R_1 R_2^2 F)/g_2]/p
  + d z_1 z_2 tr(D R_1 R_2 F) tr(D R_1 R_2)/(p^2 g_1 g_2)``, and ``nu = (mu(z_2) - tr(C_1 F C_2))/z_1``
  (``B C_1 = (I - C_1)/z_1``).

At ``s = 0`` (``A = I``, ``B = Q`` a projection of rank ``p - d``, ``F = 0``) the value is exact and closed:
``q/(p - d - q - 1)`` (the inverse-Wishart mean) for ``j = 0``, and 0 for ``j = 1``.  Measured against Monte Carlo of
``H`` (the tests, and ``benchmarks/diagnose_over_quadrature.py``, 10,000 samples per point): at ``n = 30``,
``p = 60``, ``d = 4``, ``q = 2``, ``k = 2, 3``, ``s`` in {-1, -1/2, 1/5, 1/2, 1}/30: ``j = 1`` within 0.6% at ``|s| <= 1/60``
and 1.2% at ``|s| = 1/30``; ``j = 0`` within 2% at ``|s| <= 1/60`` and up to 6% at ``|s| = 1/30`` (where
``E tr H^{-1}`` is small; steps 2 and 4 together, the self-averaging of the exponent being most of it).

Numbers: NumPy only (float64; the two-dimensional integral by :func:`.gram_pair.pair_integral`, about 1e-13),
with the ``NODES``- and ``CHECK_NODES``-node rules compared as in :mod:`.wishart_quadrature` (NaN where they differ
by more than ``RTOL``), and NaN outside the domain (``q`` not 1 or 2, ``p - d < q + 2``, a size not a positive
integer).  There is no mpmath implementation (a two-dimensional ``mpmath.quad`` takes minutes); ``.evalf`` gives
float64 digits at most.

This module knows nothing of MAML.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

from .gram_pair import STEP, pair_integral
from .inverse import inverse_mean_coefficient
from .wishart_quadrature import CHECK_NODES, NODES, RTOL, float_rule

__all__ = ["DeflatedGramTrace", "deflated_gram_numpy", "NUMPY", "MATH", "FLOAT_ONLY"]


class DeflatedGramTrace(sp.Function):
    r"""``DeflatedGramTrace(j, k, s, n, p, d, q)``: the module docstring's approximation of ``E tr H^{-1}`` (``j = 0``)
    or ``E tr(H^{-1} X F X^T)`` (``j = 1``); printed as :math:`\mathcal{G}_j^{(k)}(s)`, defined where it is used."""

    nargs = 7

    @classmethod
    def eval(cls, j, k, s, n, p, d, q):
        if s.is_zero and j.is_Integer:
            if j == 0:  # H = X Q X^T with Q a projection of rank p - d: tr of an inverse Wishart_q(p - d)
                try:
                    return q * inverse_mean_coefficient(p - d, q)
                except ValueError:  # p - d <= q + 1: no mean
                    return None
            if j == 1:
                return sp.S.Zero
        return None

    def _latex(self, printer, exp=None):
        j, k, s = self.args[:3]
        tex = rf"\mathcal{{G}}_{{{printer._print(j)}}}^{{({printer._print(k)})}}\!\left({printer._print(s)}\right)"
        return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"

    def _eval_evalf(self, prec):
        if prec > 53:
            return None  # float64 only: no more digits to give
        try:
            vals = [float(a) for a in self.args]
        except (TypeError, ValueError):
            return None
        v = deflated_gram_numpy(*vals)
        return sp.Float(v, 15) if np.isfinite(v) else sp.S.NaN


# --------------------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------------------
def _deflated_fields(x, w, k: int, s: float, p: int, n1: int, d: int):
    """``fields(z) -> (Lambda, Lambda', mu)`` and ``cross(z1, z2) -> nu`` (module docstring) for the pair integral."""
    bulk = p - n1
    a = 1 - s * x
    D = a ** (2 * k)
    F = (1 - a**k) * sum(a**i for i in range(k))

    last: list = [None, None]  # the pair integral asks for fields(z2), then cross(z1, z2): z2's parts reused

    def parts(z):
        if z is last[0]:
            return last[1]
        zc = z[..., None]
        R = 1 / (1 + zc * D)
        rb = 1 / (1 + z)
        g = (bulk * rb + n1 * (R @ w)) / p
        last[:] = z, (zc, R, rb, g)
        return zc, R, rb, g

    def fields(z):
        zc, R, rb, g = parts(z)
        lam = bulk * np.log1p(z) + n1 * (np.log1p(zc * D) @ w) + d * np.log(g)
        dlam = bulk * rb + n1 * ((D * R) @ w) - d * (bulk * rb**2 + n1 * ((D * R**2) @ w)) / (p * g)
        mu = n1 * ((F * R) @ w) + z * d * n1 * ((D * R**2 * F) @ w) / (p * g)
        return lam, dlam, mu

    def cross(z1, z2):
        _, R2, rb2, g2 = parts(z2)
        R1 = 1 / (1 + z1[..., None] * D)
        rb1 = 1 / (1 + z1)
        g1 = (bulk * rb1 + n1 * (R1 @ w)) / p
        wF = w * F
        kappa = (n1 * ((R1 * R2) @ wF)
                 + d * n1 * (z1 * ((D * R1**2 * R2) @ wF) / g1 + z2 * ((D * R1 * R2**2) @ wF) / g2) / p
                 + d * z1 * z2 * n1 * ((D * R1 * R2) @ wF) * (bulk * rb1 * rb2 + n1 * ((D * R1 * R2) @ w))
                 / (p * p * g1 * g2))
        mu2 = n1 * ((F * R2) @ w) + z2 * d * n1 * ((D * R2**2 * F) @ w) / (p * g2)
        return (mu2 - kappa) / z1

    return fields, cross


@lru_cache(maxsize=4096)
def _pair_values(nodes: int, k: int, s: float, n: int, p: int, d: int, q: int) -> tuple[float, float]:
    x, w = float_rule(n, p, nodes)
    fields, cross = _deflated_fields(x, w, k, s, p, min(n, p), d)
    with np.errstate(all="ignore"):
        return pair_integral(fields, cross, q, STEP)


def _integer(value) -> int | None:
    v = float(value)
    return int(v) if np.isfinite(v) and v >= 0 and v.is_integer() else None


def _scalar(j, k, s, n, p, d, q) -> float:
    j, k, n, p, d, q = (_integer(v) for v in (j, k, n, p, d, q))
    s = float(s)
    if None in (j, k, n, p, d, q) or j > 1 or k < 1 or n < 1 or p < 1 or q not in (1, 2) or p - d < q + 2 \
            or not np.isfinite(s):
        return float("nan")
    value, check = (_pair_values(nodes, k, s, n, p, d, q)[j] for nodes in (NODES, CHECK_NODES))
    if not (np.isfinite(value) and np.isfinite(check)) or abs(value - check) > RTOL * abs(value) + 1e-300:
        return float("nan")
    return value


def deflated_gram_numpy(j, k, s, n, p, d, q):
    """:class:`DeflatedGramTrace` in float64, elementwise over broadcast arrays (NaN outside the domain)."""
    arrays = np.broadcast_arrays(*(np.asarray(v, float) for v in (j, k, s, n, p, d, q)))
    out = np.array([_scalar(*vals) for vals in zip(*(a.ravel() for a in arrays))], float).reshape(arrays[0].shape)
    return out if out.ndim else float(out)


NUMPY = {"DeflatedGramTrace": deflated_gram_numpy}
MATH = {"DeflatedGramTrace": lambda *args: float(deflated_gram_numpy(*args))}
FLOAT_ONLY = frozenset(NUMPY)
"""Functions without an mpmath implementation: the mpmath backend refuses expressions that contain them."""
