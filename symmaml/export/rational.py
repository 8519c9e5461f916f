"""Univariate rational functions with float coefficients and factored denominators.

A result whose only array argument is ``x`` and which depends on it through ``+ - * /`` and integer
powers only (a rational function of ``x`` once the scalar arguments are numbers) need not be
evaluated operation by operation over the array: running its compiled code once on
:meth:`Rational.variable` gives the function itself, ``N(x) / prod_k F_k(x)^{e_k}``, whose
evaluation over a grid costs a Horner scheme per polynomial (:func:`evaluate`), a few dozen array
operations however large the expression was.

The denominator is kept factored: every division by a non-constant polynomial registers it (made
monic) as a factor in a shared :class:`Factors` table, and sums bring fractions to their least common
denominator over those factors, so the degrees stay those of the expression's own denominators.
Coefficients are floats: the rewriting is exact algebra carried out in floating point, so the result
agrees with direct evaluation to rounding where the polynomials are well conditioned; callers check
that at a few points (see :mod:`symmaml.export.numeric`).
"""
from __future__ import annotations

import numbers

import numpy as np
from numpy.polynomial import polynomial as P

__all__ = ["Rational", "Factors", "evaluate", "horner", "BLOCK"]

BLOCK = 16384
"""Points evaluated at once: a block's temporaries stay in the processor's L2 cache."""


class Factors:
    """The distinct monic polynomials of a computation's denominators, and their cached powers."""

    def __init__(self):
        self.polys: list[np.ndarray] = []
        self._powers: dict = {}

    def index(self, monic: np.ndarray) -> int:
        for i, f in enumerate(self.polys):
            if f.shape == monic.shape and np.array_equal(f, monic):
                return i
        self.polys.append(monic)
        return len(self.polys) - 1

    def power(self, i: int, k: int) -> np.ndarray:
        key = (i, k)
        out = self._powers.get(key)
        if out is None:
            out = np.ones(1) if k == 0 else P.polymul(self.power(i, k - 1), self.polys[i])
            self._powers[key] = out
        return out


def _trim(c: np.ndarray) -> np.ndarray:
    """Drop exactly-zero leading coefficients (keep at least one)."""
    n = len(c)
    while n > 1 and c[n - 1] == 0.0:
        n -= 1
    return c[:n]


class Rational:
    """``num(x) / prod_k F_k(x)^{den[k]}``: ``num`` ascending float coefficients, ``den`` a sorted tuple of
    ``(factor index, power)`` into the shared :class:`Factors` table."""

    __slots__ = ("num", "den", "table")
    __array_priority__ = 1000  # NumPy scalars defer to the reflected operators

    def __init__(self, num, den: tuple, table: Factors):
        self.num = _trim(np.atleast_1d(np.asarray(num, dtype=float)))
        self.den = den
        self.table = table

    @classmethod
    def variable(cls, table: Factors | None = None) -> "Rational":
        """``x`` itself."""
        return cls(np.array([0.0, 1.0]), (), table or Factors())

    # -- helpers --------------------------------------------------------------------
    def _lift(self, other) -> "Rational":
        if isinstance(other, Rational):
            return other
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return Rational(np.array([float(other)]), (), self.table)
        return NotImplemented

    def _scaled_num(self, target: dict) -> np.ndarray:
        """The numerator over the denominator ``target`` (a multiple of this one)."""
        num, mine = self.num, dict(self.den)
        for i, k in target.items():
            extra = k - mine.get(i, 0)
            if extra:
                num = P.polymul(num, self.table.power(i, extra))
        return num

    # -- arithmetic -----------------------------------------------------------------
    def __add__(self, other):
        other = self._lift(other)
        if other is NotImplemented:
            return other
        if self.den == other.den:
            return Rational(P.polyadd(self.num, other.num), self.den, self.table)
        lcd = dict(self.den)
        for i, k in other.den:
            lcd[i] = max(lcd.get(i, 0), k)
        num = P.polyadd(self._scaled_num(lcd), other._scaled_num(lcd))
        return Rational(num, tuple(sorted(lcd.items())), self.table)

    __radd__ = __add__

    def __neg__(self):
        return Rational(-self.num, self.den, self.table)

    def __pos__(self):
        return self

    def __sub__(self, other):
        other = self._lift(other)
        return other if other is NotImplemented else self + (-other)

    def __rsub__(self, other):
        other = self._lift(other)
        return other if other is NotImplemented else other + (-self)

    def __mul__(self, other):
        other = self._lift(other)
        if other is NotImplemented:
            return other
        den = dict(self.den)
        for i, k in other.den:
            den[i] = den.get(i, 0) + k
        return Rational(P.polymul(self.num, other.num), tuple(sorted(den.items())), self.table)

    __rmul__ = __mul__

    def reciprocal(self) -> "Rational":
        num = self.num
        if len(num) == 1:
            if num[0] == 0.0:
                raise ZeroDivisionError("division by the zero polynomial")
            top = np.ones(1)
            for i, k in self.den:
                top = P.polymul(top, self.table.power(i, k))
            return Rational(top / num[0], (), self.table)
        lead = num[-1]
        top = np.array([1.0 / lead])
        for i, k in self.den:
            top = P.polymul(top, self.table.power(i, k))
        return Rational(top, ((self.table.index(num / lead), 1),), self.table)

    def __truediv__(self, other):
        other = self._lift(other)
        return other if other is NotImplemented else self * other.reciprocal()

    def __rtruediv__(self, other):
        other = self._lift(other)
        return other if other is NotImplemented else other * self.reciprocal()

    def __pow__(self, k):
        if isinstance(k, float) and k.is_integer():
            k = int(k)
        if not isinstance(k, numbers.Integral) or isinstance(k, bool):
            return NotImplemented
        k = int(k)
        base = self if k >= 0 else self.reciprocal()
        out = Rational(np.ones(1), (), self.table)
        for _ in range(abs(k)):
            out = out * base
        return out

    # -- description ------------------------------------------------------------------
    @property
    def degrees(self) -> tuple[int, int]:
        """``(degree of the numerator, degree of the denominator)``."""
        return len(self.num) - 1, sum((len(self.table.polys[i]) - 1) * k for i, k in self.den)

    def __repr__(self) -> str:
        n, d = self.degrees
        return f"<Rational: numerator of degree {n} over {len(self.den)} factors of total degree {d}>"

    def __call__(self, x):
        return evaluate(self, x)


def horner(coeffs: np.ndarray, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``sum_k coeffs[k] x^k`` into ``out`` (same shape as ``x``), in place."""
    out.fill(coeffs[-1])
    for c in coeffs[-2::-1]:
        out *= x
        out += c
    return out


def evaluate(r: Rational, x) -> np.ndarray | float:
    """The values of ``r`` at ``x`` (an array, or a number): Horner schemes in blocks of :data:`BLOCK`."""
    if np.ndim(x) == 0:
        value = float(np.polynomial.polynomial.polyval(float(x), r.num))
        for i, k in r.den:
            value /= float(np.polynomial.polynomial.polyval(float(x), r.table.polys[i])) ** k
        return value
    x = np.asarray(x, dtype=float)
    flat = x.reshape(-1)
    result = np.empty_like(flat)
    tmp = np.empty(min(BLOCK, flat.size))
    for start in range(0, flat.size, BLOCK):
        xs = flat[start:start + BLOCK]
        out = result[start:start + BLOCK]
        horner(r.num, xs, out)
        t = tmp[:xs.size]
        for i, k in r.den:
            horner(r.table.polys[i], xs, t)
            if k > 1:
                np.power(t, k, out=t)
            out /= t
    return result.reshape(x.shape)

