r"""Spectral quantities of a deterministic symmetric matrix: moments and normalised traces.

For a symmetric ``d x d`` matrix ``M`` with eigenvalues ``lambda_1..lambda_d``:

* :class:`SpectralMoment` ``s_j = tr(M^j)/d``, a positive symbol (any integer ``j``; the model's
  covariance ``Sigma`` has positive eigenvalues, so negative moments exist);
* :class:`SpectralMean` ``<h>_M = tr h(M)/d = (1/d) sum_k h(lambda_k)`` for a function ``h`` of the
  eigenvalue, given as a SymPy expression in a bound variable.  A polynomial ``h`` evaluates to its
  moments; a rational one (e.g. ``lambda/(1 + c lambda)^2``) stays a normalised trace, which no
  finite set of moments determines.

Numbers come from a *spectrum*: eigenvalue levels, each with an equal share of the ``d`` directions,
so ``s_j`` is the mean of ``level**j`` over the levels and ``<h>`` the mean of ``h(level)``
(:class:`SpectrumInput`, the ``spectrum=`` argument of numeric functions).  :func:`at_identity`
specialises to ``M = I`` (every moment 1, ``<h> = h(1)``).

This module imports nothing from symmaml; :mod:`symmaml.symbols`, :mod:`symmaml.rmt` and
:mod:`symmaml.export` build on it.
"""
from __future__ import annotations

import math
import numbers
import re

import numpy as np
import sympy as sp
from sympy.core.symbol import Str

__all__ = ["SpectralMoment", "SpectralMean", "LAMBDA", "at_identity", "spectral_atoms", "combine_means",
           "SpectrumInput",
           "moment_from_levels", "check_levels"]

#: the eigenvalue variable of spectral means (bound; never a parameter)
LAMBDA = sp.Symbol("_lambda", positive=True)

_CANONICAL = (r"\Sigma", "p")
_NAME = re.compile(r"^s_(-?\d+)(?:\[(.+)/(.+)\])?$")


class SpectralMoment(sp.Symbol):
    """``s_j = tr(M^j)/d``: the ``j``-th spectral moment of a symmetric matrix ``M`` of size ``d``.

    ``SpectralMoment(2)`` is ``s_2`` of the canonical covariance ``Sigma`` (size ``p``); other
    matrices carry their LaTeX name and size in the symbol's name.  Positive (``M`` positive
    definite).  ``s_0 = 1`` is returned as the number 1.
    """

    def __new__(cls, j: int, matrix: str = _CANONICAL[0], dim: str = _CANONICAL[1]):
        if isinstance(j, bool) or not isinstance(j, (int, np.integer)):
            raise TypeError(f"the order j of a spectral moment must be an integer, got {j!r}")
        j = int(j)
        if j == 0:
            return sp.S.One
        name = f"s_{j}" if (matrix, str(dim)) == _CANONICAL else f"s_{j}[{matrix}/{dim}]"
        return super().__new__(cls, name, positive=True)

    def __getnewargs_ex__(self):
        return (self.order, self.matrix, self.dim), {}

    @property
    def _parts(self):
        j, matrix, dim = _NAME.match(self.name).groups()
        return int(j), matrix or _CANONICAL[0], dim or _CANONICAL[1]

    @property
    def order(self) -> int:
        return self._parts[0]

    @property
    def matrix(self) -> str:
        return self._parts[1]

    @property
    def dim(self) -> str:
        return self._parts[2]

    def _latex(self, printer):
        j, matrix, dim = self._parts
        return f"s_{{{j}}}" if (matrix, dim) == _CANONICAL else rf"s_{{{j}}}({matrix})"


class SpectralMean(sp.Expr):
    r"""``<h>_M = tr h(M)/d``: the mean of ``h`` over the eigenvalues of ``M`` (a normalised trace).

    ``SpectralMean(h, lam)`` with ``h`` an expression in the bound variable ``lam`` (default
    :data:`LAMBDA`); ``matrix``/``dim`` name the matrix as in :class:`SpectralMoment`.  Where ``h``
    is a polynomial in ``lam`` the result is the combination of moments it equals; otherwise it
    stays unevaluated.  Prints as ``\left\langle h(\lambda)\right\rangle_{\Sigma}``.
    """

    is_commutative = True
    is_real = True
    #: opaque to SymPy's expansion (which would otherwise distribute the averaged function term by
    #: term); substitution and xreplace still reach the parameters inside
    is_Atom = True

    def __new__(cls, h, lam=None, matrix: str = _CANONICAL[0], dim: str = _CANONICAL[1], name: str = ""):
        if isinstance(lam, Str):  # rebuilt from args: (Lambda, matrix, dim, name)
            lam, matrix, dim, name = None, lam, matrix, dim
        if isinstance(h, sp.Lambda):
            lam_, body = h.variables[0], h.expr
        else:
            lam_, body = (lam if lam is not None else LAMBDA), sp.sympify(h)
        matrix = matrix.name if isinstance(matrix, Str) else str(matrix)
        dim = dim.name if isinstance(dim, Str) else str(dim)
        name = name.name if isinstance(name, Str) else str(name)
        body = sp.sympify(body)
        if not body.has(lam_):
            return body
        try:
            poly = sp.Poly(body, lam_)
        except sp.PolynomialError:
            poly = None
        if poly is not None and all(not c.has(lam_) for c in poly.coeffs()):
            return sp.Add(*(c * SpectralMoment(e, matrix, dim) for (e,), c in poly.terms()))
        if body.is_Add:  # linearity: the polynomial part as moments, the rest as one mean
            plain = [t for t in body.args if _is_monomial(t, lam_)]
            if plain:
                rest = sp.Add(*[t for t in body.args if not _is_monomial(t, lam_)])
                return cls(sp.Add(*plain), lam_, matrix, dim) + cls(rest, lam_, matrix, dim)
        return sp.Expr.__new__(cls, sp.Lambda(LAMBDA, body.xreplace({lam_: LAMBDA})), Str(matrix), Str(dim),
                               Str(name))

    @property
    def function(self) -> sp.Lambda:
        return self.args[0]

    @property
    def variable(self):
        return self.function.variables[0]

    @property
    def body(self):
        return self.function.expr

    @property
    def matrix(self) -> str:
        return self.args[1].name

    @property
    def dim(self) -> str:
        return self.args[2].name

    @property
    def name(self) -> str:
        """How the averaged function prints ('' : written out)."""
        return self.args[3].name if len(self.args) > 3 else ""

    @property
    def free_symbols(self):
        return self.function.free_symbols

    def _eval_subs(self, old, new):
        if old == self.variable:
            return self
        return None

    def _latex(self, printer):
        if self.name:
            return r"\left\langle %s(\lambda)\right\rangle_{%s}" % (self.name, self.matrix)
        body = printer._print(self.body.xreplace({self.variable: sp.Symbol(r"\lambda")}))
        return r"\left\langle %s\right\rangle_{%s}" % (body, self.matrix)

    def _sympystr(self, printer):
        body = printer._print(self.body.xreplace({self.variable: sp.Symbol("lambda")}))
        return f"<{body}>_{self.matrix.lstrip(chr(92))}"


def _is_monomial(term, lam) -> bool:
    coeff, dep = term.as_independent(lam, as_Add=False)
    if dep == 1:
        return True
    base, exp = dep.as_base_exp()
    return base == lam and exp.is_Integer


def combine_means(expr, matrix: str = _CANONICAL[0], name: str = ""):
    """``sum_i c_i <h_i>`` (``c_i`` free of the eigenvalue) as one mean ``<sum_i c_i h_i>`` (printed as
    ``<name(lambda)>`` if a name is given); the terms without a mean, or with a product of means, are
    kept as they are."""
    expr = sp.expand(sp.sympify(expr))
    rest, bodies = [], []
    for term in sp.Add.make_args(expr):
        means = [f for f in sp.Mul.make_args(term) if isinstance(f, SpectralMean) and f.matrix == matrix]
        if len(means) != 1 or sp.Mul.make_args(term).count(means[0]) != 1:
            rest.append(term)
            continue
        (mean,) = means
        coeff = term / mean
        bodies.append(coeff * mean.body)
        dim = mean.dim
    if not bodies:
        return expr
    body = sp.Add(*bodies)
    return sp.Add(*rest) + SpectralMean(sp.factor(sp.together(body)), LAMBDA, matrix, dim, name)


def spectral_atoms(expr, matrix: str = _CANONICAL[0]) -> tuple[set, set]:
    """The spectral moments and spectral means of ``matrix`` in ``expr``: ``(moments, means)``."""
    expr = sp.sympify(expr)
    moments = {s for s in expr.atoms(SpectralMoment) if s.matrix == matrix}
    means = {s for s in expr.atoms(SpectralMean) if s.matrix == matrix}
    for mean in list(means):  # moments used inside the functions being averaged
        inner_m, inner_s = spectral_atoms(mean.body, matrix)
        moments |= inner_m
        means |= inner_s
    return moments, means


def at_identity(expr, matrix: str = _CANONICAL[0]):
    """``expr`` at ``M = I``: every moment of ``matrix`` is 1 and ``<h> = h(1)``."""
    expr = sp.sympify(expr)
    means = sorted((s for s in expr.atoms(SpectralMean) if s.matrix == matrix), key=sp.default_sort_key)
    expr = expr.xreplace({s: at_identity(s.body.xreplace({s.variable: sp.S.One}), matrix) for s in means})
    return expr.xreplace({s: sp.S.One for s in expr.atoms(SpectralMoment) if s.matrix == matrix})


# ------------------------------------------------------------------------------- numbers


def check_levels(value, name: str = "spectrum") -> tuple:
    """A spectrum as a tuple of floats: a non-empty sequence of positive finite levels (else ValueError)."""
    if isinstance(value, (str, bytes)) or value is None:
        raise ValueError(f"{name} must be a non-empty sequence of positive finite eigenvalue levels; got {value!r}")
    try:
        items = list(np.asarray(value, dtype=object).reshape(-1)) if isinstance(value, np.ndarray) else list(value)
    except TypeError:
        raise ValueError(f"{name} must be a non-empty sequence of positive finite eigenvalue levels; "
                         f"got {value!r}") from None
    if not items:
        raise ValueError(f"{name} must be a non-empty sequence of positive finite eigenvalue levels; got {value!r}")
    out = []
    for x in items:
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, (numbers.Real, np.floating, np.integer)):
            raise ValueError(f"{name} levels must be positive finite numbers; got {x!r}")
        v = float(x)
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} levels must be positive finite numbers; got {x!r}")
        out.append(v)
    return tuple(out)


def moment_from_levels(levels, j: int) -> float:
    """``s_j`` of the equal-share spectrum ``levels``: the mean of ``level**j``."""
    return float(np.mean(np.asarray(levels, dtype=float) ** j))


class SpectrumInput:
    """The ``spectrum=`` argument of a numeric function: the derived input that fixes the spectral
    moments and means of one matrix (default the model's ``Sigma``).

    Protocol used by :class:`symmaml.export.numeric.NumericFunction` (any derived input provides it):
    ``name``; ``owns(expr)`` (does ``expr`` use it); ``check(value)`` (normalised, hashable);
    ``key(value)`` (what the compiled form depends on: the number of levels); ``rewrite(expr, key)``
    (spectral means as explicit sums over placeholder level symbols); ``values(value, symbols)``
    (floats for the moments and placeholders among ``symbols``); ``placeholders(symbols)``.
    """

    def __init__(self, name: str = "spectrum", matrix: str = _CANONICAL[0]):
        self.name, self.matrix = name, matrix

    def __repr__(self) -> str:
        return f"SpectrumInput({self.name!r}, {self.matrix!r})"

    def __eq__(self, other):
        return isinstance(other, SpectrumInput) and (self.name, self.matrix) == (other.name, other.matrix)

    def __hash__(self):
        return hash(("SpectrumInput", self.name, self.matrix))

    def owns(self, expr) -> bool:
        moments, means = spectral_atoms(expr, self.matrix)
        return bool(moments or means)

    def owns_symbol(self, s) -> bool:
        return (isinstance(s, SpectralMoment) and s.matrix == self.matrix) or self.is_placeholder(s)

    def check(self, value) -> tuple:
        return check_levels(value, self.name)

    def key(self, value) -> int:
        return len(value)

    @staticmethod
    def level(i: int) -> sp.Symbol:
        return sp.Symbol(f"_level{i}", positive=True)

    @staticmethod
    def is_placeholder(s) -> bool:
        return isinstance(s, sp.Symbol) and s.name.startswith("_level")

    def rewrite(self, expr, key: int):
        """Each spectral mean ``<h>`` replaced by ``(1/L) sum_l h(level_l)`` (``L = key`` levels)."""
        expr = sp.sympify(expr)
        means = sorted((s for s in expr.atoms(SpectralMean) if s.matrix == self.matrix), key=sp.default_sort_key)
        if not means:
            return expr
        reps = {}
        for s in means:
            body = self.rewrite(s.body, key)
            reps[s] = sp.Add(*(body.xreplace({s.variable: self.level(i)}) for i in range(key))) / key
        return expr.xreplace(reps)

    def values(self, value: tuple, symbols, number=float) -> dict:
        """``{name: number}`` for the moments and level placeholders among ``symbols``; ``number``
        converts a level (``float``, or e.g. ``mpmath.mpf`` for arbitrary precision)."""
        out = {}
        levels = [number(x) for x in value]
        for s in symbols:
            if isinstance(s, SpectralMoment) and s.matrix == self.matrix:
                out[s.name] = (sum(x**s.order for x in levels) / len(levels) if number is not float
                               else moment_from_levels(value, s.order))
            elif self.is_placeholder(s):
                out[s.name] = levels[int(s.name[len("_level"):])]
        return out
