"""Optimal learning rates: the average test loss minimised over alpha_t or alpha_r.

``optimal(result, wrt)`` differentiates the derived loss, solves the stationarity condition and
selects the global minimum, recording every fact it uses as a derivation step: the sign of each
factor of the derivative (positive-definite quadratics by their discriminant, the regime
``p > m n_v``), the roots of the stationarity polynomial, their signs (Vieta), the sign chart of
the derivative, the limits at infinity and the second derivative at the minimiser.

* alpha_r: the loss is exactly a quadratic in alpha_r (for any meta-trained omega*), convex
  because its alpha_r^2 coefficient is positive, so alpha_r* is a closed form in both regimes.
* alpha_t, overparameterised: the stationarity condition is a quadratic equation; the engine
  derives the closed form and that alpha_t* < 0 for every admissible parameter set.
* alpha_t, underparameterised: the stationarity polynomial has degree 4, so the optimum is a
  *certified numeric* minimisation per parameter set: exact rational coefficients, real-root
  isolation of the stationarity polynomial (SymPy ``Poly.intervals``), and exact rational
  interval arithmetic to compare the loss at every critical point with its limits at
  +-infinity.  Its ``numeric()`` loops in Python over the points (it is a root finder).

* a loss stated with named intermediate quantities, or not rational in the rate (the corrected
  results: a self-consistent ``r``, a spectral integral): alpha_r is still a closed form, in the
  named quantities (the meta-test average is exact for any omega*); alpha_t is a *bracketed
  numeric* minimisation of the staged numeric function per parameter set
  (:mod:`symmaml.minimise`: a grid, widened until its lowest point is interior, then refined to a
  stated tolerance, with the check ``f(lo) > f(x*) < f(hi)``), a search, not a certificate.
* an exact result holds only at alpha_t = 0: there is no alpha_t to optimise, and ``optimal``
  says so.

``optimize(regime, wrt, **params)`` is the plain function behind the command line; where the loss
does not depend on the rate at the given parameters (e.g. sigma = 0 at leading order) it says so
instead of returning a minimiser.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import sympy as sp

from .. import cache
from ..algebra import factor, factor_list
from ..derivation import Derivation, Rule
from ..minimise import Bracketed, NoInteriorMinimum, bracketed_minimum
from ..symbols import LATEX_NAMES, PARAMETERS, alpha_r, alpha_t, by_name, dist0, m, n_v, nu, p, sigma
from .adaptation import ERROR, adaptation_average
from .result import Result
from .rules import SUBSTITUTE

__all__ = [
    "WRT", "METHODS", "optimal", "optimize", "Optimum", "Certificate", "CertifiedMinimiser", "ArgMin",
    "NoMinimiserError", "BracketedMinimiser", "numeric_optimum",
]

#: the learning rates one can optimise over
WRT = ("alpha_t", "alpha_r")
METHODS = ("closed form", "certified numeric", "bracketed numeric")

# --------------------------------------------------------------------------- rules (as data)

LOSS = Rule(
    "derived average test loss",
    r"\overline{\mathcal{L}}_{\mathrm{test}} = \mathbb{E}\,\mathcal{L}_{\mathrm{test}} \text{ as derived by the engine}",
    reference="symmaml.maml.average_test_loss",
)
ERROR_FORM = Rule(
    "affine in the meta-training error",
    r"\overline{\mathcal{L}}_{\mathrm{test}} = c_0(\alpha_r) + c_1(\alpha_r)\,\mathbb{E}\lVert\omega^\star - w_0\rVert^2",
    reference="the exact meta-test average (symmaml.maml.adaptation); E read off and checked by the engine",
)
NONNEGATIVE_ERROR = Rule(
    "the mean squared error is non-negative",
    r"\mathbb{E}\lVert\omega^\star - w_0\rVert^2 \ge 0",
    reference="a sum of non-negative terms, each certified by the engine (or, where stated, by construction)",
)
POSITIVE_QUADRATIC = Rule(
    "positive-definite quadratic",
    r"a > 0,\ b^2 - 4ac < 0 \implies a x^2 + b x + c = a\big(x + \tfrac{b}{2a}\big)^2 + \tfrac{4ac - b^2}{4a} > 0\ \ \forall x \in \mathbb{R}",
    reference="completing the square",
)
REGIME_SIGN = Rule(
    "regime",
    r"p > m n_v \implies p = m n_v + k,\ k \in \{1, 2, \dots\}",
    conditions=(r"p > m n_v",),
)
DIFFERENTIATE = Rule(
    "derivative",
    r"\frac{\partial}{\partial x}\overline{\mathcal{L}}_{\mathrm{test}},\ \text{computed and factored by SymPy}",
)
SIGN_OF_FACTORS = Rule(
    "sign of the derivative",
    r"\operatorname{sign}\frac{\partial\overline{\mathcal{L}}}{\partial x} = s\,\operatorname{sign} q(x),\quad s = \pm 1 \text{ the sign of the factors free of roots}",
    reference="every other factor is certified positive (or non-negative, vanishing only where stated)",
)
STATIONARITY = Rule(
    "stationarity",
    r"x^\star \text{ an interior minimiser of a differentiable } f \implies f'(x^\star) = 0",
    reference="Fermat's theorem",
)
QUADRATIC_FORMULA = Rule(
    "quadratic formula",
    r"a x^2 + b x + c = 0,\ a > 0 \iff x = x_\mp = \frac{-b \mp \sqrt{b^2 - 4ac}}{2a}",
)
VIETA = Rule("Vieta", r"x_- x_+ = \frac{c}{a}\ ;\ \ \frac{c}{a} < 0 \implies x_- < 0 < x_+")
SIGN_CHART = Rule(
    "first-derivative test",
    r"f' < 0 \text{ on } (-\infty, x_-),\ f' > 0 \text{ on } (x_-, x_+),\ f' < 0 \text{ on } (x_+, \infty)",
    reference="sign of a quadratic with positive leading coefficient outside/between its roots, times s = -1",
)
LIMITS = Rule(
    "limits at infinity",
    r"\lim_{x\to\pm\infty}\frac{\sum_{k\le d} a_k x^k}{\sum_{k\le d} b_k x^k} = \frac{a_d}{b_d}",
    reference="computed by SymPy",
)
GLOBAL_MINIMUM = Rule(
    "global minimum",
    r"f\downarrow(-\infty,x_-),\ f\uparrow(x_-,x_+),\ f\downarrow(x_+,\infty),\ f(-\infty) = f(+\infty) \implies f(x_-) < f(x)\ \ \forall x \ne x_-",
    reference="f(x_-) < f(-inf) = f(+inf) < f(x) for x > x_+, and f increases on (x_-, x_+]",
)
SECOND_DERIVATIVE = Rule(
    "second derivative",
    r"f = C\,q/P,\ q(x^\star) = 0 \implies f''(x^\star) = C\,q'(x^\star)/P(x^\star)",
    reference="product rule; q'(x_-) = -sqrt(b^2 - 4ac) at the smaller root",
)
CONVEX_QUADRATIC = Rule(
    "convex quadratic",
    r"f(x) = a x^2 + b x + c,\ a > 0 \implies \arg\min f = -\frac{b}{2a},\ \min f = c - \frac{b^2}{4a}",
    reference="f'(x) = 2ax + b, f''(x) = 2a > 0",
)
VALUE_AT_OPTIMUM = Rule(
    "value at the optimum",
    r"\min_x f = f(x^\star)",
)
SIGN_OF_OPTIMUM = Rule(
    "sign of the optimum",
    r"\operatorname{sign}\frac{u}{v} = \operatorname{sign} u \cdot \operatorname{sign} v",
)
FIRST_ORDER_IMPROVEMENT = Rule(
    "first-order improvement",
    r"f'(0) > 0 \implies f(-\varepsilon) < f(0) \text{ for small } \varepsilon > 0",
    reference="definition of the derivative",
)
BRACKETED_NUMERIC = Rule(
    "bracketed numeric minimisation",
    r"f(\mathrm{lo}) > f(x^\star) < f(\mathrm{hi}),\ \ \mathrm{hi} - \mathrm{lo} \le \varepsilon\max(1, |x^\star|)",
    reference=("per parameter set, on the staged numeric function: the lowest of a grid over [-B, B] "
               "(B widened until that point is interior), refined by finer grids between its neighbours to "
               "the tolerance epsilon or to float precision (symmaml.minimise); a numeric search, not a "
               "certificate: a dip narrower than the first grid's spacing can be missed"),
)
CERTIFIED_NUMERIC = Rule(
    "certified numeric minimisation",
    r"\min_{x\in\mathbb{R}} f = \min\big(\{f(x_i) : q(x_i) = 0\} \cup \{f(\pm\infty)\}\big),\ \ f = N/D,\ D > 0 \text{ on } \mathbb{R}",
    reference=("per parameter set: exact rational coefficients; real roots of q = N'D - ND' isolated "
               "(SymPy Poly.intervals, exact); f enclosed on each isolating interval by exact rational "
               "interval arithmetic; the minimiser is certified when its enclosure lies below all others"),
)


# --------------------------------------------------------------------------- display helpers

class ArgMin(sp.Function):
    """``ArgMin(f, x)``: the global minimiser of ``f`` over real ``x`` (no closed form; numeric only)."""

    nargs = 2

    @property
    def free_symbols(self):
        return self.args[0].free_symbols - {self.args[1]}

    def _latex(self, printer):
        return r"\operatorname*{arg\,min}_{%s} %s" % (printer._print(self.args[1]), _LOSS_LATEX)

    def _sympystr(self, printer):
        return f"argmin_{printer._print(self.args[1])}(average test loss)"


_LOSS_LATEX = r"\overline{\mathcal{L}}_{\mathrm{test}}"
_LOSS = sp.Symbol(_LOSS_LATEX)


def _latex_name(x) -> str:
    return LATEX_NAMES.get(x, sp.latex(x))


def _tex(expr) -> str:
    """Inline LaTeX for notes, with the canonical symbol names."""
    return sp.latex(expr, symbol_names=LATEX_NAMES)


def _sorted_factors(expr):
    """``sp.factor_list`` of a rational expression, factors in a deterministic order."""
    num, den = sp.fraction(sp.together(expr))
    cn, fn = factor_list(num)
    cd, fd = factor_list(den)
    factors = list(fn) + [(f, -k) for f, k in fd]
    return cn / cd, sorted(factors, key=lambda t: sp.default_sort_key(t[0]))


# --------------------------------------------------------------------------- sign certificates

class _Signs:
    """Certifies signs of factors for every admissible parameter set, recording the argument."""

    def __init__(self, d: Derivation, regime: str):
        self.d, self.regime = d, regime
        self._recorded: set = set()

    def positive_quadratic(self, f) -> bool:
        for x in (alpha_t, alpha_r):
            if not f.has(x):
                continue
            poly = sp.Poly(f, x)
            if poly.degree() != 2:
                continue
            a, b, c = poly.all_coeffs()
            disc = factor(b**2 - 4 * a * c)
            if a.is_positive and disc.is_negative:
                if f not in self._recorded:
                    self._recorded.add(f)
                    square = a * (x + factor(b / (2 * a)))**2 + factor(-disc / (4 * a))
                    self.d.add(POSITIVE_QUADRATIC, f, square,
                               note=(rf"leading coefficient ${_tex(a)} > 0$, discriminant "
                                     rf"${_tex(disc)} < 0$: positive for every real ${_latex_name(x)}$"))
                return True
        return False

    def regime_positive(self, f) -> bool:
        if self.regime != "over" or not f.has(p):
            return False
        k = sp.Symbol("k", integer=True, positive=True)
        g = factor(sp.expand(f.subs(p, m * n_v + k)))
        if g.is_positive:
            if f not in self._recorded:
                self._recorded.add(f)
                self.d.add(REGIME_SIGN, f, g, note=r"substitute $p = m n_v + k$ with $k \ge 1$: positive")
            return True
        return False

    def factor_sign(self, f) -> str | None:
        """'positive', 'nonnegative' (vanishes somewhere admissible) or None (unknown)."""
        if f.is_positive:
            return "positive"
        if self.positive_quadratic(f) or self.regime_positive(f):
            return "positive"
        if f.is_nonnegative:
            return "nonnegative"
        return None

    def sign(self, expr):
        """``(s, vanishing)``: ``expr`` has sign ``s`` (+1/-1) wherever the factors listed in
        ``vanishing`` are non-zero, and is 0 where one of them is; ``None`` if not certified."""
        coeff, factors = _sorted_factors(expr)
        s = 1 if coeff > 0 else -1
        vanishing = []
        for f, k in factors:
            fs = self.factor_sign(f)
            if fs == "positive":
                continue
            if k < 0:  # a denominator must be certified non-zero
                return None
            if fs == "nonnegative" or (k % 2 == 0 and f.is_real):
                vanishing.append(f)
                continue
            return None
        return s, vanishing


# --------------------------------------------------------------------------- the result type

class Certificate(NamedTuple):
    """What the certified minimisation established for one parameter set (exact rationals)."""

    argmin: float
    bracket: tuple  # exact (lo, hi) Fractions around the minimiser (lo == hi for a rational root); argmin is the
    #                 float of its midpoint, so float(lo) <= argmin <= float(hi)
    minimum: float
    minimum_bracket: tuple  # enclosure of the minimal loss
    critical_points: tuple  # ((lo, hi), (value_lo, value_hi)) per real root of the stationarity polynomial
    limits: tuple  # (f(-inf), f(+inf)) as Fractions (or +-inf)
    certified: bool  # the minimiser's enclosure lies strictly below every other candidate's
    sign: int  # the certified sign of the minimiser (-1, 0, +1)
    degenerate: bool  # the loss does not depend on the rate: every value is a minimiser (0 returned)

    def as_dict(self) -> dict:
        return dict(
            argmin=self.argmin,
            min=self.minimum,
            bracket=[float(self.bracket[0]), float(self.bracket[1])],
            min_bracket=[float(self.minimum_bracket[0]), float(self.minimum_bracket[1])],
            critical_points=[[float(a), float(b)] for (a, b), _ in self.critical_points],
            certified=self.certified,
            sign=self.sign,
            degenerate=self.degenerate,
        )


class NoMinimiserError(ValueError):
    """The infimum of the loss is approached at infinity and not attained."""


@dataclass(frozen=True)
class Optimum(Result):
    """An optimal learning rate: ``expr`` is the minimiser, in the other parameters.

    ``method`` is 'closed form' (``expr`` and ``minimum`` are SymPy expressions) or
    'certified numeric' (``expr`` is an unevaluated :class:`ArgMin`; ``numeric()`` runs the
    certified minimisation per point).  ``loss`` is the minimised average test loss.
    """

    wrt: str = "alpha_t"
    method: str = "closed form"
    minimum: Any = None
    loss: Result | None = None
    solver: Any = field(default=None, compare=False, repr=False)
    #: expressions in the parameters: where one vanishes, the loss does not depend on the rate
    #: (every value minimises it), e.g. sigma**2 for alpha_t at leading order
    flat_when: tuple = ()

    def _lhs_latex(self) -> str:
        return rf"{_latex_name(self.symbol)}^\star"

    @property
    def symbol(self) -> sp.Symbol:
        return by_name(self.wrt)

    def numeric(self, backend: str = "numpy", **options):
        """A function of ``p, m, n_t, n_v, n_r, alpha_t, alpha_r, sigma, nu, dist0`` (the optimised
        rate is accepted and ignored) returning the optimal rate.

        Closed form: the exporter's lambdified function.  Certified numeric: a Python loop over
        the (broadcast) points, each a certified root isolation; ``backend`` 'numpy' returns floats
        (an ndarray for array input), 'mpmath' returns ``mpf`` at the current precision.  Bracketed
        numeric: a Python loop over the points, each a bracketed minimisation (floats, NumPy only).
        """
        if self.method == "closed form":
            return super().numeric(backend=backend, **options)
        if self.method == "bracketed numeric" and (backend != "numpy" or options):
            raise ValueError("a bracketed numeric optimum is computed with the 'numpy' backend only, without options")
        if backend not in ("numpy", "mpmath"):
            raise ValueError(f"backend must be 'numpy' or 'mpmath' for a certified numeric optimum, got {backend!r}")
        solver = self.solver

        def argmin(**params):
            return solver.vectorised(params, lambda c: _to_backend(c, backend))

        argmin.__name__ = f"argmin_{self.wrt}"
        argmin.__doc__ = f"{self.name} ({self.regime}, {self.order}): certified numeric, one root isolation per point"
        return argmin

    def certify(self, **params) -> Certificate:
        """Run the certified minimisation of the loss over ``wrt`` at one parameter set.

        Available for closed forms too (an independent check of the formula), for losses that are
        rational functions of the rate."""
        if not isinstance(self.solver, CertifiedMinimiser):
            raise ValueError(f"no certified minimisation for the {self.loss.order} result: its loss is stated with "
                             "named quantities (or is not rational in the rate); see optimize() for its minimum")
        return self.solver.certificate(params)


def _to_backend(cert: Certificate, backend: str):
    if getattr(cert, "degenerate", False):
        raise ValueError("the loss does not depend on the rate at these parameters: every value is a minimiser")
    if backend == "mpmath":
        import mpmath

        lo, hi = cert.bracket
        return (mpmath.mpf(lo.numerator) / lo.denominator + mpmath.mpf(hi.numerator) / hi.denominator) / 2
    return cert.argmin


# --------------------------------------------------------------------------- certified numerics

def _monomials(expr, gens):
    """An integer/rational polynomial in ``gens`` as a list of (exponents, Fraction)."""
    poly = sp.Poly(expr, *gens)
    out = []
    for exps, c in poly.terms():
        c = sp.Rational(c)
        out.append((exps, Fraction(int(c.p), int(c.q))))
    return out


class _Interval:
    """Closed interval with exact rational endpoints (exact interval arithmetic, no rounding)."""

    __slots__ = ("lo", "hi")

    def __init__(self, lo, hi=None):
        self.lo, self.hi = lo, lo if hi is None else hi

    def __add__(self, c):  # c a Fraction
        return _Interval(self.lo + c, self.hi + c)

    def __mul__(self, o):
        prods = (self.lo * o.lo, self.lo * o.hi, self.hi * o.lo, self.hi * o.hi)
        return _Interval(min(prods), max(prods))


def _horner(coeffs, x: _Interval) -> _Interval:
    acc = _Interval(coeffs[0])
    for c in coeffs[1:]:
        acc = acc * x + c
    return acc


def _enclose(num, den, lo, hi):
    """An enclosure of num(x)/den(x) over [lo, hi]; den certified positive on R."""
    x = _Interval(lo, hi)
    n, d = _horner(num, x), _horner(den, x)
    if d.lo <= 0:
        raise ArithmeticError("denominator enclosure not positive")
    cands = (n.lo / d.lo, n.lo / d.hi, n.hi / d.lo, n.hi / d.hi)
    return min(cands), max(cands)


def _limit(num, den, at_plus: bool):
    """Exact limit at +-infinity of num/den (coefficient lists, highest first, leading non-zero)."""
    dn, dd = len(num) - 1, len(den) - 1
    if dn < dd:
        return Fraction(0)
    if dn == dd:
        return num[0] / den[0]
    s = (1 if num[0] / den[0] > 0 else -1) * (1 if (at_plus or (dn - dd) % 2 == 0) else -1)
    return math.inf if s > 0 else -math.inf


def _strip(coeffs):
    i = 0
    while i < len(coeffs) - 1 and coeffs[i] == 0:
        i += 1
    return coeffs[i:]


def _exact(name: str, value) -> Fraction:
    if isinstance(value, Fraction):
        return value
    if isinstance(value, sp.Rational):
        return Fraction(int(value.p), int(value.q))
    return Fraction(float(value)) if not isinstance(value, numbers.Integral) else Fraction(int(value))


class CertifiedMinimiser:
    """Global minimisation of a rational function of one rate, per parameter set, certified.

    The loss is put over a common denominator ``N(x)/D(x)`` once, symbolically; per point the
    coefficients are evaluated exactly (rationals), ``D > 0`` on R is checked (no real roots),
    the real roots of ``q = N'D - ND'`` are isolated and refined exactly, the loss is enclosed
    on each isolating interval by exact interval arithmetic, and compared with the exact limits
    at +-infinity.
    """

    def __init__(self, expr, x, conditions=(), ignore=(), name="optimum"):
        self.expr, self.x, self.conditions, self.name = expr, x, tuple(conditions), name
        self.ignore = tuple(ignore)
        self.gens = tuple(s for s in PARAMETERS if s != x and expr.has(s))
        self._tables = None
        self._validator = None

    def __getstate__(self):
        return dict(self.__dict__, _validator=None)  # the compiled validator is rebuilt on use

    def _coefficient_tables(self):
        """``N``, ``D`` coefficient tables (built once, on first use: a second or two)."""
        if self._tables is None:
            num, den = sp.fraction(sp.together(self.expr))
            self._tables = ([_monomials(c, self.gens) for c in sp.Poly(num, self.x).all_coeffs()],
                            [_monomials(c, self.gens) for c in sp.Poly(den, self.x).all_coeffs()])
        return self._tables

    def _coeffs(self, table, values):
        vals = [values[g.name] for g in self.gens]
        out = []
        for terms in table:
            acc = Fraction(0)
            for exps, c in terms:
                t = c
                for v, e in zip(vals, exps):
                    if e:
                        t *= v**e
                acc += t
            out.append(acc)
        return _strip(out)

    def validator(self):
        """The exporter's input check (sizes, rates, scales, conditions) for this problem."""
        if self._validator is None:
            from ..export.numeric import numeric_function

            self._validator = numeric_function(sp.S.Zero, conditions=self.conditions, ignore=self.ignore,
                                               name=self.name)
        return self._validator

    def certificate(self, params: dict) -> Certificate:
        """Validate one parameter set (scalars) and minimise there."""
        self.validator()(**params)
        params = dict(params)
        params.setdefault("dist0", 0.0)
        return self.solve_exact({s.name: _exact(s.name, params[s.name]) for s in self.gens})

    def solve_exact(self, values: dict) -> Certificate:
        """The certified minimum for exact rational ``values`` (no validation: sizes may be real)."""
        x = self.x
        tn, td = self._coefficient_tables()
        num, den = self._coeffs(tn, values), self._coeffs(td, values)
        to_q = lambda cs: sp.Poly([sp.Rational(c.numerator, c.denominator) for c in cs], x, domain="QQ")
        N, D = to_q(num), to_q(den)
        if D.is_zero or D.count_roots() > 0:
            raise ArithmeticError("the loss has a real pole in the rate: not certified")
        q = N.diff(x) * D - N * D.diff(x)
        lim = (_limit(num, den, False), _limit(num, den, True))
        if q.is_zero:  # the loss does not depend on the rate
            val = num[0] / den[0]
            z = Fraction(0)
            return Certificate(0.0, (z, z), float(val), (val, val), (), lim, True, 0, True)
        q = q.sqf_part()
        crit = []
        for (a, b), _ in q.intervals():
            crit.append([sp.Rational(a), sp.Rational(b)])
        result = None
        for rnd in range(4):
            enclosures = []
            for i, (a, b) in enumerate(crit):
                if a != b:
                    mag = max(abs(a), abs(b))
                    eps = sp.Rational(1, 10**(20 + 20 * rnd)) * (mag if (a > 0 or b < 0) else 1)
                    if b - a > eps:
                        a, b = q.refine_root(a, b, eps=eps)
                        crit[i] = [sp.Rational(a), sp.Rational(b)]
                fa, fb = Fraction(int(a.p), int(a.q)), Fraction(int(b.p), int(b.q))
                enclosures.append(((fa, fb), _enclose(num, den, fa, fb)))
            result = self._select(enclosures, lim)
            if result.certified:
                return result
        return result

    @staticmethod
    def _select(enclosures, lim) -> Certificate:
        if not enclosures:
            raise NoMinimiserError(f"no critical point: the infimum {min(lim)} is approached at infinity")
        best = min(range(len(enclosures)), key=lambda i: (enclosures[i][1][1], enclosures[i][0][0]))
        (lo, hi), (vlo, vhi) = enclosures[best]
        lim_min = min(lim)
        if lim_min < vlo:
            raise NoMinimiserError(f"the infimum {float(lim_min)} is approached at infinity, not attained")
        others = [e[1][0] for j, e in enumerate(enclosures) if j != best]
        certified = all(vhi < o for o in others) and vhi <= lim_min
        sign = 0 if lo == hi == 0 else (1 if lo > 0 else (-1 if hi < 0 else 0))
        if sign == 0 and lo != hi:
            certified = False  # an isolating interval straddling 0 after refinement (cannot happen for q(0) != 0)
        mid = (lo + hi) / 2
        return Certificate(float(mid), (lo, hi), float((vlo + vhi) / 2), (vlo, vhi), tuple(enclosures), lim,
                           certified, sign, False)

    def vectorised(self, params: dict, convert):
        """The certified minimisation at every point of the broadcast arguments (a Python loop)."""
        self.validator()(**params)  # validates arrays elementwise, raises naming the parameter
        params = dict(params)
        params.setdefault("dist0", 0.0)
        arrays = {s.name: np.asarray(params[s.name]) for s in self.gens}
        if all(a.ndim == 0 for a in arrays.values()):
            return convert(self.solve_exact({n: _exact(n, a.item()) for n, a in arrays.items()}))
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
        b = {n: np.broadcast_to(a, shape) for n, a in arrays.items()}
        out = np.empty(shape, dtype=object)
        for idx in np.ndindex(shape):
            out[idx] = convert(self.solve_exact({n: _exact(n, b[n][idx].item()) for n in b}))
        return out.astype(float) if out.size and isinstance(out.flat[0], float) else out


# --------------------------------------------------------------------------- derivations

@lru_cache(maxsize=None)
def _test_average():
    """The exact meta-test average in the placeholder :data:`ERROR` (computed once)."""
    return adaptation_average(Derivation("scratch"))


def _canonical_loss(loss: sp.Expr) -> sp.Expr:
    """The loss as ``c0 + c1 E`` with each piece in SymPy's canonical factored form.

    The engine's own form of the loss can depend on the hash seed (term grouping); this one
    depends only on its value, so the documents written from it are byte-identical across runs."""
    t = _test_average()
    c1, c0 = sp.diff(t, ERROR), t.subs(ERROR, 0)
    return factor(c0) + factor(c1) * factor(sp.cancel((loss - c0) / c1))


def _error_form(d: Derivation, loss: sp.Expr, staged: bool = False, definitions=()):
    """Record ``L = c0 + c1 E`` with ``E = E|omega* - w0|^2`` read off ``loss``; return (T, E).

    ``T`` is the exact meta-test average with the placeholder :data:`ERROR` for ``E``.  A staged
    loss (named quantities) keeps ``E`` in them, cancelled but not factored."""
    t = _test_average()
    c1, c0 = factor(sp.diff(t, ERROR)), factor(t.subs(ERROR, 0))
    test_average = c0 + c1 * ERROR
    if staged:
        # cancel() would expand the whole staged loss (minutes); read E off at alpha_r = 0 instead and
        # check the identity L = c0 + c1 E exactly at random rational values of every symbol
        error = (loss.subs(alpha_r, 0) - c0.subs(alpha_r, 0)) / c1.subs(alpha_r, 0)
        ok = _identity_at_random_points(test_average.subs(ERROR, error) - loss)
    else:
        error = factor(sp.cancel((loss - c0) / c1))
        ok = sp.cancel(test_average.subs(ERROR, error) - loss) == 0
    if not ok or error.has(alpha_r) or any(value.has(alpha_r) for _, value in definitions):
        raise AssertionError("the loss is not the meta-test average at a meta-training error free of alpha_r")
    d.add(ERROR_FORM, None, test_average, lhs=_LOSS,
          note=(r"the exact meta-test average, affine in the meta-training error; here "
                r"$\lVert\omega^\star - w_0\rVert^2$ stands for its mean $E$"))
    d.add(ERROR_FORM, sp.Mul(_LOSS - c0, 1 / c1, evaluate=False), error, lhs=ERROR,
          note=(r"solved from the derived loss; substituting back reproduces the loss exactly (checked"
                + (r" at random rational values of every symbol, in exact arithmetic)" if staged else ")")))
    return test_average, error


def _identity_at_random_points(expr, points: int = 3) -> bool:
    """``expr`` vanishes at ``points`` random rational values of its symbols (exactly, or to 1e-40
    relative where it is not rational there): a check of an identity too large to cancel."""
    import random

    rng = random.Random(20240601)  # deterministic
    symbols = sorted(expr.free_symbols, key=sp.default_sort_key)
    for _ in range(points):
        values = {s: sp.Rational(rng.randint(1, 997), rng.randint(1, 97)) for s in symbols}
        value = expr.xreplace(values)
        if value.is_Rational:
            if value != 0:
                return False
        elif abs(sp.N(value, 60)) > sp.Float("1e-40", 60):
            return False
    return True


def _error_nonnegative(d: Derivation, error, signs: _Signs) -> tuple:
    """Certify E >= 0 term by term in (dist0, nu^2, sigma^2).

    Returns (certified, the scales E is certified positive in, E as that sum)."""
    num, den = sp.fraction(error)
    terms = sp.collect(sp.expand(num), [dist0, nu**2, sigma**2], evaluate=False)
    certified, scales = True, []
    pieces = []
    for key in sorted(terms, key=sp.default_sort_key):
        coeff = factor(terms[key]) / den
        sg = signs.sign(coeff) if key != 1 else None
        if key == 1 or sg is None or sg[0] < 0 or sg[1]:
            certified = False
        else:
            scales.append(key)
        pieces.append(key * coeff)
    decomposition = sp.Add(*pieces, evaluate=False)
    if certified:
        d.add(NONNEGATIVE_ERROR, error, decomposition, lhs=ERROR,
              note=(r"each coefficient of $\lVert\omega_0 - w_0\rVert^2$, $\nu^2$, $\sigma^2$ is certified "
                    r"positive above (regime, positive-definite quadratics); so $E \ge 0$, with $E > 0$ "
                    r"unless all of " + ", ".join(f"${_tex(s)}$" for s in scales) + " vanish"))
    else:
        d.add(NONNEGATIVE_ERROR, error, decomposition, lhs=ERROR,
              note=(r"not certified from the expanded coefficients (they are quartics in $\alpha_t$ of "
                    r"indefinite-looking sign); $E \ge 0$ holds by construction: it is the leading-order value "
                    r"of $\mathbb{E}\lVert u\rVert^2/\lVert\mathbb{E}S\rVert^2$, a mean squared norm "
                    r"($\mathbb{E}\lVert Z_1^{\top}e_1\rVert^2$ plus $m-1$ times $\lVert\mathbb{E}Z_1^{\top}e_1\rVert^2$) "
                    r"over a positive square; also checked numerically by the tests"))
    return certified, tuple(scales), decomposition


def _header(loss: Result, wrt_sym, method_hint: str) -> Derivation:
    name = _latex_name(wrt_sym)
    regime_word = {"over": "overparameterised", "under": "underparameterised"}.get(loss.regime, loss.regime)
    return Derivation(
        f"Optimal ${name}$ of one-step MAML, {regime_word} regime",
        order=loss.derivation.order,
        regime=loss.regime,
        assumptions=tuple(loss.derivation.assumptions),
        statement=rf"${name}^\star = \arg\min_{{{name}}} {_LOSS_LATEX}$ ({method_hint}).",
    )


def _tidy(expr):
    """A rational expression with numerator and denominator collected in E, nu^2, sigma^2."""
    keys = [ERROR, nu**2, sigma**2]
    num, den = sp.fraction(factor(expr))
    return sp.collect(sp.expand(num), keys, sp.factor) / sp.collect(sp.expand(den), keys, sp.factor)


def _optimal_alpha_r(loss: Result) -> Optimum:
    x = alpha_r
    star = sp.Symbol(r"\alpha_r^\star")
    d = _header(loss, x, "closed form")
    L = loss.expr
    staged = _is_staged(loss)
    d.add(LOSS, None, L if staged else _canonical_loss(L), lhs=_LOSS,
          note=(f"{loss.derivation.title} ({loss.order}); "
                + ("stated with its named quantities (defined in its derivation)" if staged
                   else "written as $c_0 + c_1 E$ in factored form")))
    signs = _Signs(d, loss.regime)
    T, E = _error_form(d, L, staged, loss.definitions)
    coeffs = sp.collect(sp.expand(T), x, evaluate=False)
    if set(coeffs) - {1, x, x**2}:
        raise AssertionError("the loss is not a quadratic in alpha_r")
    a2, a1, a0 = (_tidy(coeffs.get(k, 0)) for k in (x**2, x, 1))
    quad = a2 * x**2 + a1 * x + a0
    d.add(CONVEX_QUADRATIC, T, quad, lhs=_LOSS,
          note=r"collected in $\alpha_r$: exactly a quadratic, whatever the meta-trained $\omega^\star$")
    definitions = tuple(loss.definitions)
    if staged:
        # E in the result's named quantities: its sign is not certified symbolically; a point where
        # the approximation gives E < 0 is refused by the numeric function (E is undefined there)
        error_ok, scales = False, ()
        E_sum = sp.Symbol("E")
        value = sp.Piecewise((E, E >= 0), (sp.nan, True))
        d.define(E_sum, value, NONNEGATIVE_ERROR,
                 note=(r"the meta-training error in the result's named quantities; $E \ge 0$ holds for the exact "
                       r"mean (a mean squared norm) and is checked numerically at each point for this "
                       r"approximation (undefined where it fails)"))
        definitions += ((E_sum, value),)
    else:
        error_ok, scales, E_sum = _error_nonnegative(d, E, signs)
    # a2 = positive combination of ERROR, nu^2, sigma^2 ; -a1 = positive multiple of (ERROR + nu^2)
    a2_parts = sp.collect(sp.expand(a2), [ERROR, nu**2, sigma**2], evaluate=False)
    a1_parts = sp.collect(sp.expand(-a1), [ERROR, nu**2, sigma**2], evaluate=False)
    if 1 in a2_parts or 1 in a1_parts or not all(
        signs.sign(v) == (1, []) for v in list(a2_parts.values()) + list(a1_parts.values())
    ):
        raise AssertionError("unexpected coefficients of the alpha_r quadratic")
    d.add(CONVEX_QUADRATIC, None, 2 * a2, lhs=sp.Symbol(r"\partial^2_{\alpha_r}" + _LOSS_LATEX),
          note=(r"the coefficients of $\lVert\omega^\star - w_0\rVert^2$, $\nu^2$, $\sigma^2$ are positive and "
                r"$\lVert\omega^\star - w_0\rVert^2 \ge 0$: convex in $\alpha_r$, strictly unless "
                r"$\sigma = \nu = \lVert\omega^\star - w_0\rVert^2 = 0$ (then the loss is constant)"))
    dL = sp.diff(quad, x)
    d.add(DIFFERENTIATE, None, dL, lhs=sp.Derivative(_LOSS, x))
    opt_error_form = _tidy(-a1 / (2 * a2))
    d.add(STATIONARITY, None, opt_error_form, lhs=star,
          note=(r"the unique root of $\partial_{\alpha_r}\overline{\mathcal{L}} = 0$; the stationary point of a "
                r"strictly convex quadratic is its global minimiser"))
    num, den = sp.fraction(opt_error_form)
    sn, sd = signs.sign(num), signs.sign(den)
    if sn is None or sd is None or sn[0] * sd[0] < 0:
        raise AssertionError("could not certify the sign of alpha_r*")
    d.add(SIGN_OF_OPTIMUM, None, sp.StrictGreaterThan(star, 0, evaluate=False),
          note=(r"numerator and denominator are positive combinations of "
                r"$\lVert\omega^\star - w_0\rVert^2 \ge 0$, $\nu^2$, $\sigma^2$: "
                r"$\alpha_r^\star > 0$ whenever $\nu^2 + \mathbb{E}\lVert\omega^\star - w_0\rVert^2 > 0$"
                + ("" if error_ok else r" (here $E \ge 0$ by construction, see above)")))
    expr = opt_error_form.subs(ERROR, E_sum)
    d.add(SUBSTITUTE, opt_error_form, expr, lhs=star,
          note=r"with $E = \mathbb{E}\lVert\omega^\star - w_0\rVert^2$ as decomposed above")
    min_error_form = a0 - _tidy(a1**2 / (4 * a2))
    d.add(CONVEX_QUADRATIC, None, min_error_form, lhs=sp.Symbol(r"\min_{\alpha_r}" + _LOSS_LATEX),
          note=r"$c - b^2/(4a)$")
    minimum = min_error_form.subs(ERROR, E_sum)
    d.result = expr
    # when is E + nu^2 > 0? nu > 0, or a scale E is certified positive in
    pos_scales = {nu**2} | set(scales) if error_ok else {nu**2, sigma**2}
    positivity = sp.StrictGreaterThan(sp.Add(*sorted(pos_scales, key=sp.default_sort_key)), 0)
    return Optimum(expr=expr, derivation=d, regime=loss.regime, order=loss.order,
                   conditions=tuple(loss.conditions) + (positivity,), name="optimal alpha_r",
                   ignored=("alpha_r",), wrt="alpha_r", method="closed form", minimum=minimum, loss=loss,
                   definitions=definitions,
                   domain=(loss.domain + ("; " if loss.domain else "") + "and its meta-training error E >= 0"
                           if staged else loss.domain),
                   parameter_set=loss.parameter_set,
                   solver=None if staged else CertifiedMinimiser(
                       L, x, tuple(loss.conditions) + (positivity,), ignore=("alpha_r",),
                       name=f"optimal alpha_r ({loss.regime}, {loss.order})"))


def _optimal_alpha_t(loss: Result, method: str) -> Optimum:
    x = alpha_t
    L = loss.expr
    if not L.has(x):
        raise ValueError("the loss does not depend on alpha_t")
    d = _header(loss, x, "closed form")
    d.add(LOSS, None, _canonical_loss(L), lhs=_LOSS,
          note=f"{loss.derivation.title} ({loss.order}); written as $c_0 + c_1 E$ in factored form")
    signs = _Signs(d, loss.regime)
    dL = factor(sp.diff(L, x))
    coeff, factors = _sorted_factors(dL)
    q_factors = [(f, k) for f, k in factors if f.has(x) and k > 0]
    rest = coeff * sp.Mul(*[f**k for f, k in factors if not (f.has(x) and k > 0)])
    q = sp.expand(sp.Mul(*[f**k for f, k in q_factors]))
    absent = [s for s in PARAMETERS if s != x and L.has(s) and not q.has(s)]
    gone = [s for s in PARAMETERS if s != x and L.has(s) and not dL.has(s)]
    names = lambda syms: ", ".join(f"${_latex_name(s)}$" for s in syms)
    d.add(DIFFERENTIATE, None, dL, lhs=sp.Derivative(_LOSS, x),
          note=("factored by SymPy"
                + (f"; the derivative does not contain {names(gone)} (checked in the expression)" if gone else "")
                + "; the factor $q(\\alpha_t)$ carrying the roots involves only "
                + names([s for s in PARAMETERS if q.has(s) and s != x])
                + (f": the optimum does not depend on {names(absent)}" if absent else "")))
    sg = signs.sign(rest)
    qsym = sp.Function("q")(x)
    if sg is None:  # no symbolic sign for every parameter set: certified per parameter set instead
        s, vanishing = None, []
        d.add(SIGN_OF_FACTORS, None, rest * qsym, lhs=sp.Derivative(_LOSS, x),
              note=(r"the sign of the factors free of roots is not certified for every parameter set: no closed "
                    r"form is claimed; the minimisation below is certified per parameter set"))
    else:
        s, vanishing = sg
        d.add(SIGN_OF_FACTORS, None, s * sp.sign(qsym), lhs=sp.Symbol(r"\operatorname{sign}\partial_{\alpha_t}" + _LOSS_LATEX),
              note=(r"$q(\alpha_t)$ is the factor carrying the roots (next step); the other factors are positive"
                    + (", except " + ", ".join(f"${_tex(v)}$" for v in vanishing)
                       + r" $\ge 0$, which vanishes only at the edge of the parameter space (then the loss does "
                         r"not depend on $\alpha_t$ and every $\alpha_t$ is optimal)" if vanishing else "")))
    d.add(STATIONARITY, None, sp.collect(q, x, sp.factor), lhs=qsym,
          note=r"collected in $\alpha_t$: the stationary points of the loss are the real roots of $q$")
    poly = sp.Poly(q, x)
    deg = poly.degree()
    lim_minus, lim_plus = _limits_at_infinity(L, x)
    d.add(LIMITS, sp.Limit(_LOSS, x, sp.oo), lim_plus, lhs=sp.Symbol(_LOSS_LATEX + r"(\pm\infty)"),
          note=("equal limits at $+\\infty$ and $-\\infty$ (checked)" if sp.cancel(lim_plus - lim_minus) == 0
                else rf"at $-\infty$: ${_tex(lim_minus)}$"))
    equal_limits = sp.cancel(lim_plus - lim_minus) == 0
    at_zero = factor(dL.subs(x, 0))
    zsign = signs.sign(at_zero)
    if zsign is not None and zsign[0] > 0:
        d.add(FIRST_ORDER_IMPROVEMENT, sp.Subs(sp.Derivative(_LOSS, x), x, 0), at_zero,
              note=(r"positive" + (" unless " + ", ".join(f"${_tex(v)} = 0$" for v in zsign[1]) if zsign[1] else "")
                    + r": a small negative $\alpha_t$ beats $\alpha_t = 0$, so $\alpha_t = 0$ is never optimal"))
    closed = None
    if method != "certified numeric" and s is not None and deg == 2 and equal_limits:
        closed = _quadratic_case(d, signs, L, poly, s, rest, q_factors)
    if closed is not None:
        expr, minimum = closed
        d.result = expr
        return Optimum(expr=expr, derivation=d, regime=loss.regime, order=loss.order,
                       conditions=tuple(loss.conditions), name="optimal alpha_t", ignored=("alpha_t",),
                       wrt="alpha_t", method="closed form", minimum=minimum, loss=loss, flat_when=tuple(vanishing),
                       solver=CertifiedMinimiser(L, x, tuple(loss.conditions), ignore=("alpha_t",),
                                            name=f"optimal alpha_t ({loss.regime}, {loss.order})"))
    d.statement = d.statement.replace("(closed form)", "(certified numeric, per parameter set)")
    d.add(CERTIFIED_NUMERIC, None, ArgMin(L, x), lhs=sp.Symbol(r"\alpha_t^\star"),
          note=(f"the stationarity polynomial has degree {deg} in $\\alpha_t$: no closed form is used; "
                "per parameter set the real roots are isolated exactly and the loss compared at each "
                "and at $\\pm\\infty$"))
    expr = ArgMin(L, x)
    d.result = expr
    return Optimum(expr=expr, derivation=d, regime=loss.regime, order=loss.order,
                   conditions=tuple(loss.conditions), name="optimal alpha_t", ignored=("alpha_t",),
                   wrt="alpha_t", method="certified numeric", minimum=None, loss=loss, flat_when=tuple(vanishing),
                   solver=CertifiedMinimiser(L, x, tuple(loss.conditions), ignore=("alpha_t",),
                                            name=f"optimal alpha_t ({loss.regime}, {loss.order})"))


def _is_staged(loss: Result) -> bool:
    """The loss is stated with named quantities, or is not a rational function of the rates (e.g. a
    spectral integral): no symbolic calculus on it, its numeric function is staged."""
    return bool(loss.definitions) or not loss.expr.is_rational_function(alpha_t, alpha_r)


def _only_at_zero(loss: Result) -> bool:
    """The result holds only at alpha_t = 0 (an exact order): one of its conditions is alpha_t = 0."""
    return any(isinstance(c, sp.Eq) and c.has(alpha_t) and not c.has(*[s for s in PARAMETERS if s != alpha_t])
               for c in loss.conditions)


def _bracketed_alpha_t(loss: Result) -> Optimum:
    """alpha_t* by a bracketed numeric minimisation of the staged loss, per parameter set."""
    x = alpha_t
    d = _header(loss, x, "bracketed numeric, per parameter set")
    d.add(LOSS, None, loss.expr, lhs=_LOSS,
          note=(f"{loss.derivation.title} ({loss.order})"
                + ("; stated with its named quantities, evaluated in stages" if loss.definitions else "")))
    solver = BracketedMinimiser(loss, x)
    expr = ArgMin(loss.expr, x)
    d.add(BRACKETED_NUMERIC, None, expr, lhs=sp.Symbol(r"\alpha_t^\star"),
          note=(r"the loss is not a rational function of $\alpha_t$ in the parameters alone (named quantities"
                r" or an integral): no closed form and no root isolation; per parameter set, the lowest of "
                rf"{solver.points} grid points on $[-B, B]$, $B = 8 n_t/(n_t + p + 1)$ widened by 4 while that point "
                rf"is at an end, refined to a bracket narrower than ${solver.xtol:g}\max(1, |\alpha_t^\star|)$ "
                r"(or to float precision), with $f(\mathrm{lo}) > f(\alpha_t^\star) < f(\mathrm{hi})$ checked"))
    d.result = expr
    return Optimum(expr=expr, derivation=d, regime=loss.regime, order=loss.order,
                   conditions=tuple(loss.conditions), name="optimal alpha_t", ignored=("alpha_t",),
                   wrt="alpha_t", method="bracketed numeric", minimum=None, loss=loss,
                   definitions=tuple(loss.definitions), domain=loss.domain, parameter_set=loss.parameter_set,
                   solver=solver)


class BracketedMinimiser:
    """The minimum of a loss over one rate per parameter set, by :func:`symmaml.minimise.bracketed_minimum`
    on the loss's staged NumPy function (NaN outside its domain)."""

    def __init__(self, loss: Result, x, xtol: float = 1e-9, points: int = 401):
        self.loss, self.x, self.xtol, self.points = loss, x, xtol, points

    @staticmethod
    def scale(params: dict) -> float:
        """Where the loss varies in alpha_t: the inner step I - (alpha_t/n_t) X_t^T X_t is closest to 0 in
        mean square at alpha_t = n_t/(n_t + p + 1); the search starts at 8 times that."""
        n_t_, p_ = float(params["n_t"]), float(params["p"])
        return 8 * n_t_ / (n_t_ + p_ + 1)

    def minimise(self, params: dict) -> Bracketed:
        """Validate one parameter set (the rate itself is ignored) and minimise there."""
        f = self.loss.numeric()
        name = self.x.name
        base = {k: v for k, v in params.items() if k != name}
        base.setdefault("dist0", 0.0)
        f.masked(**base, **{name: 0.0})  # validates the other parameters (a ValueError names the culprit)
        return bracketed_minimum(lambda xs: f.masked(**base, **{name: xs}), self.scale(base),
                                 xtol=self.xtol, points=self.points, name=name)

    def vectorised(self, params: dict, convert):
        params = dict(params)
        params.pop(self.x.name, None)
        arrays = {n: np.asarray(v) for n, v in params.items()}
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
        out = np.empty(shape, dtype=float)
        for idx in np.ndindex(shape):
            point = {n: np.broadcast_to(a, shape)[idx].item() for n, a in arrays.items()}
            res = self.minimise(point)
            if res.flat:
                raise ValueError(f"the loss does not depend on {self.x.name} at "
                                 + ", ".join(f"{n}={v}" for n, v in point.items())
                                 + f" (to float precision): every {self.x.name} is a minimiser")
            out[idx] = convert(res)
        return out if out.ndim else float(out)


def _limits_at_infinity(L, x):
    """``(L(-oo), L(+oo))`` of a rational function of ``x``, from its leading coefficients."""
    num, den = sp.fraction(sp.together(L))
    pn, pd = sp.Poly(num, x), sp.Poly(den, x)
    dn, dd = pn.degree(), pd.degree()
    if dn < dd:
        return sp.S.Zero, sp.S.Zero
    ratio = factor(pn.LC() / pd.LC())
    if dn == dd:
        return ratio, ratio
    s = ratio.is_positive if ratio.is_positive is not None else None
    if s is None:
        raise ValueError("sign of the leading coefficient of the loss is undetermined")
    plus = sp.oo if s else -sp.oo
    minus = plus if (dn - dd) % 2 == 0 else -plus
    return minus, plus


def _quadratic_case(d, signs, L, poly, s, rest, q_factors):
    """Closed form when q is a quadratic: roots, their signs, the sign chart, the global minimum."""
    x = poly.gens[0]
    a, b, c = poly.all_coeffs()
    if not a.is_positive or s != -1:
        return None
    disc = factor(b**2 - 4 * a * c)
    if not disc.is_positive:
        return None
    lo_sym, hi_sym = sp.Symbol(r"\alpha_t^{-}"), sp.Symbol(r"\alpha_t^{+}")
    star = sp.Symbol(r"\alpha_t^\star")
    r_lo = (-b - sp.sqrt(disc)) / (2 * a)
    r_hi = (-b + sp.sqrt(disc)) / (2 * a)
    d.add(QUADRATIC_FORMULA, None, sp.Tuple(r_lo, r_hi), lhs=sp.Tuple(lo_sym, hi_sym),
          note=rf"the roots of $q$; discriminant ${_tex(disc)} > 0$: two distinct real roots")
    product = factor(c / a)
    if not product.is_negative:
        return None
    d.add(VIETA, None, product, lhs=lo_sym * hi_sym,
          note=r"negative: the roots have opposite signs, $\alpha_t^{-} < 0 < \alpha_t^{+}$")
    inside = lambda lo, hi: sp.Contains(x, sp.Interval.open(lo, hi), evaluate=False)
    chart = sp.Piecewise((-1, inside(-sp.oo, lo_sym)), (1, inside(lo_sym, hi_sym)), (-1, inside(hi_sym, sp.oo)))
    d.add(SIGN_CHART, s * sp.sign(sp.Function("q")(x)), chart,
          lhs=sp.Symbol(r"\operatorname{sign}\partial_{\alpha_t}" + _LOSS_LATEX),
          note=(rf"$q$ has leading coefficient ${_tex(a)} > 0$: positive outside its roots, negative "
                r"between them; times $s = -1$. The loss decreases on $(-\infty, \alpha_t^-)$, increases on "
                r"$(\alpha_t^-, \alpha_t^+)$ and decreases on $(\alpha_t^+, \infty)$"))
    q_prime = sp.expand(sp.diff(poly.as_expr(), x).subs(x, r_lo))
    if not (q_prime.is_negative and s == -1):
        return None
    second = sp.Mul(factor(rest).subs(x, lo_sym), q_prime, evaluate=False)
    d.add(SECOND_DERIVATIVE, sp.Subs(sp.Derivative(_LOSS, (x, 2)), x, lo_sym), second,
          note=(rf"$q'(\alpha_t^-) = {_tex(q_prime)} < 0$ and the prefactor is negative: "
                r"$\partial^2_{\alpha_t}\overline{\mathcal{L}} > 0$ at $\alpha_t^-$, a strict local minimum"
                r" (for $\sigma > 0$)"))
    d.add(GLOBAL_MINIMUM, None, lo_sym, lhs=star,
          note=(r"$\overline{\mathcal{L}}(\alpha_t^-) < \overline{\mathcal{L}}(-\infty) = \overline{\mathcal{L}}(+\infty) "
                r"< \overline{\mathcal{L}}(\alpha_t)$ for every $\alpha_t > \alpha_t^+$ (the loss decreases to its "
                r"limit there), and the loss increases on $(\alpha_t^-, \alpha_t^+]$: the global minimum is at "
                r"$\alpha_t^-$, unique when $\sigma > 0$ (for $\sigma = 0$ the loss is constant in $\alpha_t$ and "
                r"$\alpha_t^-$ is one of its minimisers)"))
    expr = sp.simplify(r_lo)
    d.add(QUADRATIC_FORMULA, lo_sym, expr, lhs=star)
    d.add(SIGN_OF_OPTIMUM, None, sp.StrictLessThan(expr, 0, evaluate=False), lhs=None,
          note=(r"for every admissible parameter set: $\alpha_t^-\alpha_t^+ < 0$ (Vieta, above); here also "
                r"$-(n_t + 1) < 0$ and $\sqrt{\cdot} > 0$ in the numerator over $2p > 0$"))
    minimum = _evaluate_at(L, x, expr)
    d.add(VALUE_AT_OPTIMUM, sp.Subs(_LOSS, x, star), minimum, lhs=sp.Symbol(r"\min_{\alpha_t}" + _LOSS_LATEX),
          note=r"each $\alpha_t$-dependent factor of the loss evaluated at $\alpha_t^\star$ and simplified (radicals rationalised)")
    return expr, minimum


def _evaluate_at(expr, x, value):
    """``expr`` at ``x = value``, simplifying each factor that depends on ``x`` on its own."""
    if not expr.has(x):
        return expr
    if expr.is_Add:
        return sp.Add(*[_evaluate_at(t, x, value) for t in expr.args])
    if expr.is_Mul:
        dep = sp.Mul(*[f for f in expr.args if f.has(x)])
        rest = sp.Mul(*[f for f in expr.args if not f.has(x)])
        return rest * factor(sp.radsimp(sp.together(dep.subs(x, value))))
    return factor(sp.radsimp(sp.together(expr.subs(x, value))))


# --------------------------------------------------------------------------- public API

def _wrt_name(wrt) -> str:
    name = wrt.name if isinstance(wrt, sp.Symbol) else wrt
    if name not in WRT:
        raise ValueError(f"wrt must be one of {', '.join(repr(w) for w in WRT)}, got {wrt!r}")
    return name


def optimal(result: Result, wrt, *, method: str = "auto") -> Optimum:
    """The learning rate ``wrt`` ('alpha_t' or 'alpha_r') minimising ``result.expr``, derived step by step.

    ``method``: 'auto' (a closed form when the engine can derive and certify one, else certified
    numeric for a loss rational in the rate, else bracketed numeric), 'closed form' (raise if none),
    'certified numeric' (force the numeric path, e.g. to check a closed form) or 'bracketed numeric'
    (alpha_t only).  A result that holds only at alpha_t = 0 (order 'exact') has no optimal alpha_t:
    ``ValueError`` says so.
    """
    name = _wrt_name(wrt)
    if method not in ("auto",) + METHODS:
        raise ValueError(f"method must be one of 'auto', {', '.join(repr(x) for x in METHODS)}, got {method!r}")
    if not isinstance(result, Result):
        raise TypeError(f"result must be a symmaml Result (e.g. average_test_loss('over')), got {type(result).__name__}")
    if name == "alpha_r":
        opt = _optimal_alpha_r(result)
        if method == "certified numeric":
            if opt.solver is None:
                raise ValueError(f"no certified numeric minimisation for the {result.order} result (stated with "
                                 "named quantities); its optimal alpha_r is a closed form in them: use method='auto'")
            opt = _as_numeric(opt)
        elif method == "bracketed numeric":
            raise ValueError("alpha_r is always a closed form (the loss is a convex quadratic in it): use method='auto'")
    elif _only_at_zero(result):
        raise ValueError(f"the {result.order} result holds only at alpha_t = 0 (no inner step during meta-training), "
                         "so there is no alpha_t to optimise; use order 'corrected' (finite-size corrected, any "
                         "alpha_t) or 'leading'")
    elif method == "bracketed numeric" or (_is_staged(result) and method in ("auto", "bracketed numeric")):
        opt = _bracketed_alpha_t(result)
    elif _is_staged(result):
        raise ValueError(f"no {method} for the optimal alpha_t of the {result.order} result (stated with named "
                         "quantities, or not rational in alpha_t): use method='auto' (bracketed numeric)")
    else:
        opt = _optimal_alpha_t(result, method)
    if method == "closed form" and opt.method != "closed form":
        raise ValueError(f"no closed form for the optimal {name} in regime {result.regime!r}: use method='auto'")
    return opt


def _as_numeric(opt: Optimum) -> Optimum:
    from dataclasses import replace

    return replace(opt, method="certified numeric", expr=ArgMin(opt.loss.expr, opt.symbol), minimum=None)


@lru_cache(maxsize=None)
@cache.persistent
def _cached(regime: str, wrt: str, order: str, method: str) -> Optimum:
    from .loss import average_test_loss

    opt = optimal(average_test_loss(regime, order), wrt, method=method)
    if isinstance(opt.solver, CertifiedMinimiser) and opt.method == "certified numeric":
        opt.solver._coefficient_tables()  # built once, kept with the optimum in the cache
    return opt


@lru_cache(maxsize=None)
def _numeric(regime: str, wrt: str, order: str, method: str, which: str):
    """The (compiled once) numeric function of the optimum or of its loss."""
    opt = _cached(regime, wrt, order, method)
    return opt.numeric() if which == "argmin" else opt.loss.numeric()


def _is_flat(opt: Optimum, params: dict) -> bool:
    """The loss does not depend on the rate at ``params``: a factor of its derivative vanishes."""
    if not opt.flat_when:
        return False
    values = {s: _exact(s.name, params[s.name]) for s in PARAMETERS if s.name in params}
    return any(sp.Rational(f.subs({s: sp.Rational(v.numerator, v.denominator) for s, v in values.items()})) == 0
               for f in opt.flat_when)


#: points of the global grid of :func:`numeric_optimum`
GRID_POINTS = 2001


def _bracket(wrt: str, params: dict) -> float:
    """Half-width of the rate interval searched for a model of the family: twenty times the rate at which
    one step of a typical eigenvalue of the inner-step Gram matrix overshoots, ``n/(sqrt n + sqrt p)^2``."""
    n = params["n_t"] if wrt == "alpha_t" else params["n_r"]
    return 20.0 * float(n) / (math.sqrt(float(n)) + math.sqrt(float(params["p"]))) ** 2


def numeric_optimum(regime: str, wrt: str, order: str, model, spectrum=None, **params) -> dict:
    """The rate ``wrt`` minimising the average test loss of ``model`` at one parameter set, numerically:
    the lowest of :data:`GRID_POINTS` rates on ``[-B, B]`` (``B``: :func:`_bracket`; with several inner
    steps the loss can have a basin at negative and one at large positive rates, so the search is global
    on that interval), refined by :func:`symmaml.minimise.bracketed_minimum` around it.  Not certified;
    raises :class:`NoMinimiserError` if the lowest grid point is at the edge of the interval."""
    from .loss import average_test_loss

    name = _wrt_name(wrt)
    params = {k: v for k, v in params.items() if k != name}
    params.setdefault("dist0", 0.0)
    f = average_test_loss(regime, order, model).numeric()
    extra = {"spectrum": spectrum} if model.anisotropic else {}
    f.masked(**params, **extra, **{name: 0.0})  # validates the other parameters (a ValueError names the culprit)
    half = _bracket(name, params)
    grid = np.linspace(-half, half, GRID_POINTS)
    values = f.masked(**params, **extra, **{name: grid})
    if not np.isfinite(values).any():
        raise NoMinimiserError(f"the loss is not defined anywhere on {name} in [{-half:.4g}, {half:.4g}]")
    i = int(np.nanargmin(values))
    if i in (0, GRID_POINTS - 1):
        raise NoMinimiserError(f"no interior minimum of the loss over {name} in [{-half:.4g}, {half:.4g}] "
                               f"(the lowest grid point is at the edge)")
    step = grid[1] - grid[0]
    try:
        res = bracketed_minimum(lambda xs: f.masked(**params, **extra, **{name: xs}), 2 * step,
                                center=float(grid[i]), name=name)
    except NoInteriorMinimum as e:
        raise NoMinimiserError(str(e)) from None
    out = dict(regime=regime, order=order, wrt=name, method="bracketed numeric", model=repr(model),
               params=params, **res.as_dict(), certified=False, interior=not res.flat, degenerate=res.flat,
               search_interval=[float(-half), float(half)], global_grid_points=GRID_POINTS)
    out.pop("flat")
    if res.flat:
        out["argmin"] = None
    return out


def optimize(regime: str, wrt: str, order: str = "leading", *, method: str = "auto", model=None, spectrum=None,
             **params) -> dict:
    """Optimal ``wrt`` and the minimal average test loss at one parameter set (the CLI's function).

    ``params`` are the keyword parameters of the loss (``p, m, n_t, n_v, n_r, alpha_t, alpha_r,
    sigma, nu, dist0``; the optimised rate may be given and is ignored; dist0 defaults to 0).
    Returns a JSON-serialisable dict: ``argmin``, ``min``, ``method`` ('closed form', 'certified
    numeric' or 'bracketed numeric'), ``regime``, ``order``, ``wrt``, ``params`` (as used),
    ``certified``, ``degenerate`` and, by method: ``bracket`` (an exact enclosure of the argmin) and
    ``critical_points`` (certified numeric); ``bracket``, ``xtol``, ``search``, ``grid_points``,
    ``evaluations`` and ``interior`` (bracketed numeric: the minimum is interior to the bracket).
    Where the loss does not depend on the rate at these parameters (``degenerate``), ``argmin`` is
    None: every value is a minimiser.
    """
    from .loss import REGIMES
    from .model import Model

    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {', '.join(REGIMES)}, got {regime!r}")
    if model is not None and not (isinstance(model, Model) and model.is_paper):
        return numeric_optimum(regime, wrt, order, model, spectrum, **params)
    name = _wrt_name(wrt)
    opt = _cached(regime, name, order, method)
    params = dict(params)
    params.setdefault("dist0", 0.0)
    params.pop(name, None)
    unknown = sorted(set(params) - {s.name for s in PARAMETERS})
    if unknown:
        raise TypeError(f"unknown parameter(s): {', '.join(unknown)}")
    out = dict(regime=regime, order=order, wrt=name, method=opt.method,
               params={s.name: params[s.name] for s in PARAMETERS if s.name in params})
    if opt.method == "closed form":
        argmin = float(_numeric(regime, name, order, method, "argmin")(**params))
        minimum = float(_numeric(regime, name, order, method, "loss")(**params, **{name: argmin}))
        flat = _is_flat(opt, params)
        out.update(argmin=None if flat else argmin, min=minimum, certified=not flat, degenerate=flat)
    elif opt.method == "certified numeric":
        cert = opt.certify(**params)
        out.update(cert.as_dict())
        if cert.degenerate:
            out["argmin"] = None
    else:
        res = opt.solver.minimise(params)
        out.update(res.as_dict(), certified=False, interior=not res.flat, degenerate=res.flat)
        out.pop("flat")
        if res.flat:
            out["argmin"] = None
    return out
