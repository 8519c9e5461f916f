r"""Averages over one eigenvalue of a Wishart matrix, by Gauss quadrature of its exact moments.

``W = X^T X`` with ``X`` an ``n x p`` standard Gaussian matrix has ``n' = min(n, p)`` non-zero
eigenvalues.  Their *mean law* ``rho_{n,p}`` (the law of one of them, picked at random) has the
moments ``mu_j = E tr W^j / n'``, exact polynomials in ``n`` and ``p`` from the engine
(:func:`~.wishart.wishart_trace_moment_poly`).  The law is light-tailed (its tail decays
exponentially), so a function of one eigenvalue is well averaged by the Gauss rule of ``rho_{n,p}``:

* :func:`gauss_rule` -- nodes and weights of the ``N``-node Gauss rule (exact for polynomials of degree
  ``< 2N``), by Golub-Welsch from the exact moments ``mu_0 .. mu_{2N}`` (Cholesky of their Hankel
  matrix, in mpmath at enough digits for its conditioning), cached per ``(n, p, N)``.

Two SymPy functions use it (``a = 1 - s lambda``, ``lambda ~ rho_{n,p}``; ``j, e, k`` non-negative
integers, ``k >= 1``, ``u >= 0``):

* :class:`WishartResolventMean` ``(j, e, k, s, u, n, p) = E[a^j / (1 + u a^{2k})^e]``;
* :class:`WishartResolventRoot` ``(k, s, b, c, t, n, p)``: the ``u >= 0`` with
  ``b u/(1 + u) + c E[u a^{2k}/(1 + u a^{2k})] = t`` (``b, c >= 0``, ``0 <= t < b + c``).  The left side is
  increasing and concave in ``u`` (each term is), from 0 to ``b + c``, so the root is unique and Newton's
  method from ``u = 0`` converges to it monotonically from below.

Both evaluate in closed form at ``s = 0`` (``a = 1``): ``(1 + u)^-e`` and ``t/(b + c - t)``.  Otherwise
they stay unevaluated; LaTeX prints the average as ``\mathbb{E}_\lambda[...]`` and the root as the equation
it solves.  Numbers: NumPy (vectorised over the nodes), floats and mpmath; outside the domain they are
NaN.

The one approximation is the Gauss rule itself (the average of a function that is not a polynomial in
``lambda``).  Its error falls geometrically with ``N`` at a rate set by how far the integrand's poles
(``u a^{2k} = -1``) are from the support; the numeric functions use ``N = 20`` and refuse (NaN) where the 16-node
rule differs by more than :data:`RTOL` (see there for the measured errors).  The mpmath functions evaluate the
same rules at higher precision: more digits of the rule, not of the average.

This module knows nothing of MAML.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import mpmath
import numpy as np
import sympy as sp
from sympy.printing.precedence import PRECEDENCE

from .. import cache
from ..special import evalf_with
from .wishart import wishart_trace_moment_poly

__all__ = ["NODES", "support_moments", "gauss_rule", "float_rule", "WishartResolventMean", "WishartResolventRoot",
           "resolvent_mean_numpy", "resolvent_root_numpy", "resolvent_mean_mpmath", "resolvent_root_mpmath",
           "NUMPY", "MATH", "MPMATH"]

NODES = 20
"""Gauss nodes (moments up to degree 40)."""
CHECK_NODES = 16
RTOL = 2e-3
"""The numeric functions compare the ``NODES``- and ``CHECK_NODES``-node rules and return NaN where they differ
by more than ``RTOL`` (relative): the integrand has a feature (``u a^{2k}`` crossing 1 far in the tail) that
the rule does not resolve.  Measured against 24 nodes (``a = 1 - s lambda``, ``n = 5``, ``p = 30``, ``u`` at the
values of symmaml's use, ``|s| <= 0.1``, the averages ``E[a^{2k}/(1 + u a^{2k})^e]``): the 20-node error is at
``k <= 2`` below ``6e-8``, at ``k = 3`` below ``9e-5`` (the 16-node rule's below ``4e-4``, 12 nodes' ``1.3e-3``,
so the difference of two rules bounds the error of the finer); at ``k = 5``, ``s = 0.06`` 20 nodes still miss
by 1.4% (the 16- and 20-node rules differ by 3%: refused)."""

_NEWTON_MAX = 200


def support_moments(n: int, p: int, count: int) -> list[Fraction]:
    """``mu_j = E tr W^j / min(n, p)`` for ``j = 0 .. count - 1``, exactly (``mu_0 = 1``): the engine's
    Wishart trace moments at the given sizes (integer arithmetic; degree 40 in about 10 s, once per sizes:
    kept in the persistent cache, :mod:`symmaml.cache`)."""
    n, p = _positive_int("n", n), _positive_int("p", p)
    # one computation for every rule of up to NODES nodes
    moments = _trace_moments(n, p, max(count, 2 * NODES + 1))[:count - 1]
    return [Fraction(1)] + [Fraction(m, min(n, p)) for m in moments]


@lru_cache(maxsize=None)
@cache.persistent
def _trace_moments(n: int, p: int, count: int) -> tuple[int, ...]:
    """``E tr W^j``, ``j = 1 .. count - 1`` (integers, the engine's)."""
    return tuple(int(wishart_trace_moment_poly((j,), n, p).as_expr()) for j in range(1, count))


def _positive_int(name: str, value) -> int:
    if isinstance(value, (int, np.integer)) and value > 0:
        return int(value)
    if isinstance(value, (float, np.floating)) and value > 0 and float(value).is_integer():
        return int(value)
    raise ValueError(f"{name} must be a positive integer, got {value!r}")


@lru_cache(maxsize=None)
def _rule(n: int, p: int, nodes: int, dps: int) -> tuple:
    """Golub-Welsch: the Jacobi matrix from the Cholesky factor of the Hankel matrix of the moments."""
    mu = support_moments(n, p, 2 * nodes + 1)
    # the Hankel matrix loses about log10(mu_2N) digits per node to its conditioning
    work = dps + 20 + nodes * max(1, len(str(mu[-1].numerator)) // nodes + 2)
    with mpmath.workdps(work):
        H = mpmath.matrix([[mpmath.mpf(mu[i + j].numerator) / mu[i + j].denominator for j in range(nodes + 1)]
                           for i in range(nodes + 1)])
        R = mpmath.cholesky(H).T
        J = mpmath.matrix(nodes, nodes)
        for i in range(nodes):
            J[i, i] = R[i, i + 1] / R[i, i] - (R[i - 1, i] / R[i - 1, i - 1] if i else 0)
            if i + 1 < nodes:
                J[i, i + 1] = J[i + 1, i] = R[i + 1, i + 1] / R[i, i]
        E, Q = mpmath.eigsy(J)
        order = sorted(range(nodes), key=lambda i: E[i])
        x = tuple(+E[i] for i in order)
        w = tuple(+(Q[0, i] ** 2) for i in order)
    with mpmath.workdps(dps):
        return tuple(+v for v in x), tuple(+v for v in w)


def gauss_rule(n: int, p: int, nodes: int = NODES, dps: int = 30) -> tuple[tuple, tuple]:
    """Nodes (increasing, positive) and weights (positive, summing to 1) of the ``nodes``-point Gauss rule of
    the mean law of the non-zero eigenvalues of ``W ~ Wishart_p(n, I)``, as mpmath numbers at ``dps`` digits."""
    n, p = _positive_int("n", n), _positive_int("p", p)
    if not (isinstance(nodes, int) and nodes >= 1):
        raise ValueError(f"nodes must be a positive integer, got {nodes!r}")
    return _rule(n, p, nodes, dps)


@lru_cache(maxsize=None)
def float_rule(n: int, p: int, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`gauss_rule` as float64 arrays (nodes, weights), cached."""
    x, w = _rule(n, p, nodes, 20)
    return np.array([float(v) for v in x]), np.array([float(v) for v in w])


# --------------------------------------------------------------------------------------
# SymPy functions
# --------------------------------------------------------------------------------------
def _a_latex(printer, s) -> str:
    return rf"1 - {printer.parenthesize(s, PRECEDENCE['Mul'], strict=True)}\,\lambda"


class WishartResolventMean(sp.Function):
    r"""``WishartResolventMean(j, e, k, s, u, n, p)`` ``= E[a^j / (1 + u a^{2k})^e]``, ``a = 1 - s lambda``,
    ``lambda`` a non-zero eigenvalue of ``W ~ Wishart_p(n, I)`` picked at random (module docstring)."""

    nargs = 7

    @classmethod
    def eval(cls, j, e, k, s, u, n, p):
        if s.is_zero:
            return (1 + u) ** (-e)
        return None

    def _latex(self, printer, exp=None):
        j, e, k, s, u, n, p = self.args
        a = _a_latex(printer, s)
        num = "1" if j == 0 else (rf"\left({a}\right)" + ("" if j == 1 else f"^{{{printer._print(j)}}}"))
        den = rf"1 + {printer.parenthesize(u, PRECEDENCE['Mul'], strict=True)}\left({a}\right)^{{{printer._print(2 * k)}}}"
        den = den if e == 1 else rf"\left({den}\right)^{{{printer._print(e)}}}"
        tex = rf"\mathbb{{E}}_{{\lambda}}\!\left[\frac{{{num}}}{{{den}}}\right]"
        return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"

    def _eval_evalf(self, prec):
        return evalf_with(resolvent_mean_mpmath, self.args, prec)


class WishartResolventRoot(sp.Function):
    r"""``WishartResolventRoot(k, s, b, c, t, n, p)``: the ``u >= 0`` with
    ``b u/(1 + u) + c E[u a^{2k}/(1 + u a^{2k})] = t``, ``a = 1 - s lambda`` (module docstring)."""

    nargs = 7

    @classmethod
    def eval(cls, k, s, b, c, t, n, p):
        if s.is_zero:
            return t / (b + c - t)
        return None

    def _latex(self, printer, exp=None):
        k, s, b, c, t, n, p = self.args
        a = _a_latex(printer, s)
        mul = PRECEDENCE["Mul"]
        w = rf"u\left({a}\right)^{{{printer._print(2 * k)}}}"
        tex = (rf"u^\star\!\left\{{{printer.parenthesize(b, mul, strict=True)}\,\frac{{u}}{{1 + u}} + "
               rf"{printer.parenthesize(c, mul, strict=True)}\,\mathbb{{E}}_{{\lambda}}\!\left[\frac{{{w}}}{{1 + {w}}}\right]"
               rf" = {printer._print(t)}\right\}}")
        return tex if exp is None else rf"\left({tex}\right)^{{{exp}}}"

    def _eval_evalf(self, prec):
        return evalf_with(resolvent_root_mpmath, self.args, prec)


# --------------------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------------------
def _integer(value) -> int | None:
    v = float(value)
    return int(v) if v >= 0 and v.is_integer() else None


def _by_sizes(fn, n, p, *arrays):
    """``fn(x, w, *arrays)`` with the float rule of each ``(n, p)`` (scalars, or arrays broadcast with the
    others); NaN where a size is not a positive integer, or where the ``NODES``- and ``CHECK_NODES``-node rules
    differ by more than ``RTOL``."""
    n, p, *arrays = np.broadcast_arrays(np.asarray(n, float), np.asarray(p, float),
                                        *(np.asarray(a, float) for a in arrays))
    out = np.full(n.shape, np.nan)
    valid = (n > 0) & (p > 0) & (n == np.round(n)) & (p == np.round(p))
    for nn, pp in sorted({(int(a), int(b)) for a, b in zip(n[valid].ravel(), p[valid].ravel())}):
        mask = valid & (n == nn) & (p == pp)
        args = [a[mask] for a in arrays]
        value, check = (fn(*float_rule(nn, pp, nodes), *args) for nodes in (NODES, CHECK_NODES))
        out[mask] = np.where(np.abs(value - check) <= RTOL * np.abs(value), value, np.nan)
    return out if out.ndim else float(out)


def _mean(x, w, j, e, k, s, u):
    a = 1 - np.multiply.outer(s, x)  # points x nodes
    num = a**j if j else 1.0
    return (num / (1 + u[..., None] * a ** (2 * k)) ** e) @ w


def resolvent_mean_numpy(j, e, k, s, u, n, p):
    """:class:`WishartResolventMean` in float64, vectorised (NaN outside the domain)."""
    j, e, k = _integer(j), _integer(e), _integer(k)
    if None in (j, e, k) or k < 1:
        return np.full(np.broadcast(s, u, n, p).shape, np.nan) if np.ndim(s) or np.ndim(u) else float("nan")
    with np.errstate(all="ignore"):
        return _by_sizes(lambda x, w, s, u: np.where(u >= 0, _mean(x, w, j, e, k, s, u), np.nan), n, p, s, u)


def _root(x, w, k, s, b, c, t):
    """Newton from u = 0 on the concave increasing left side: monotone from below (module docstring)."""
    W = (1 - np.multiply.outer(s, x)) ** (2 * k)
    ok = (b >= 0) & (c >= 0) & (t >= 0) & (t < b + c * ((W > 0) @ w))
    u = np.zeros(s.shape)
    for _ in range(_NEWTON_MAX):
        g = b * u / (1 + u) + c * ((u[..., None] * W / (1 + u[..., None] * W)) @ w) - t
        dg = b / (1 + u) ** 2 + c * ((W / (1 + u[..., None] * W) ** 2) @ w)
        step = np.where(ok, -g / dg, 0.0)
        u = u + step
        if not np.any(step > 1e-15 * u):
            break
    else:
        ok = ok & ~(step > 1e-15 * u)
    return np.where(ok, u, np.nan)


def resolvent_root_numpy(k, s, b, c, t, n, p):
    """:class:`WishartResolventRoot` in float64, vectorised (NaN outside the domain)."""
    k = _integer(k)
    if k is None or k < 1:
        return np.full(np.broadcast(s, b, c, t, n, p).shape, np.nan) if np.ndim(s) else float("nan")
    with np.errstate(all="ignore"):
        return _by_sizes(lambda x, w, s, b, c, t: _root(x, w, k, s, b, c, t), n, p, s, b, c, t)


def _mp_checked(fn):
    """``fn(rule, *args)`` with the ``NODES``-node rule at the working precision, NaN where the ``CHECK_NODES``-node
    rule differs by more than ``RTOL`` (as in float64), or where a size is not a positive integer."""
    def checked(*args):
        nn, pp = _integer(args[-2]), _integer(args[-1])
        if not nn or not pp:
            return mpmath.nan
        value, check = (fn(_rule(nn, pp, nodes, mpmath.mp.dps + 10), *args[:-2]) for nodes in (NODES, CHECK_NODES))
        if not (mpmath.isfinite(value) and mpmath.isfinite(check)) or abs(value - check) > RTOL * abs(value):
            return mpmath.nan
        return value
    checked.__name__, checked.__doc__ = fn.__name__, fn.__doc__
    return checked


@_mp_checked
def resolvent_mean_mpmath(rule, j, e, k, s, u):
    """:class:`WishartResolventMean` in mpmath (the same Gauss rules, at the working precision)."""
    j, e, k = _integer(j), _integer(e), _integer(k)
    if None in (j, e, k) or k < 1 or u < 0:
        return mpmath.nan
    total = mpmath.mpf(0)
    for x, w in zip(*rule):
        a = 1 - s * x
        total += w * a**j / (1 + u * a ** (2 * k)) ** e
    return total


@_mp_checked
def resolvent_root_mpmath(rule, k, s, b, c, t):
    """:class:`WishartResolventRoot` in mpmath (Newton from 0, to the working precision)."""
    k = _integer(k)
    if k is None or k < 1:
        return mpmath.nan
    W = [(1 - s * x) ** (2 * k) for x in rule[0]]
    if not (b >= 0 and c >= 0 and 0 <= t < b + c * sum(w for w, v in zip(rule[1], W) if v > 0)):
        return mpmath.nan
    u, tol = mpmath.mpf(0), mpmath.eps * 4
    for _ in range(_NEWTON_MAX + mpmath.mp.prec):
        g = b * u / (1 + u) + c * mpmath.fsum(w * u * v / (1 + u * v) for w, v in zip(rule[1], W)) - t
        dg = b / (1 + u) ** 2 + c * mpmath.fsum(w * v / (1 + u * v) ** 2 for w, v in zip(rule[1], W))
        step = -g / dg
        u += step
        if step <= tol * u:
            return u
    return mpmath.nan



def _to_float(fn):
    def f(*args):
        return float(fn(*args))
    f.__name__ = fn.__name__
    return f


NUMPY = {"WishartResolventMean": resolvent_mean_numpy, "WishartResolventRoot": resolvent_root_numpy}
MATH = {"WishartResolventMean": _to_float(resolvent_mean_numpy), "WishartResolventRoot": _to_float(resolvent_root_numpy)}
MPMATH = {"WishartResolventMean": resolvent_mean_mpmath, "WishartResolventRoot": resolvent_root_mpmath}
