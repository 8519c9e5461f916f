"""Results as fast numeric functions that check their inputs (NumPy, mpmath, JAX).

:func:`numeric_function` turns a SymPy expression in the canonical parameters into a
callable of the keyword arguments ``p, m, n_t, n_v, n_r, alpha_t, alpha_r, sigma, nu,
dist0`` (:data:`symmaml.symbols.PARAMETERS`).  Before evaluating it checks, vectorised over
arrays, that sizes are positive integers, rates finite, scales finite and non-negative,
and every condition of the result (e.g. ``p > m*n_v``) holds; a violation raises
``ValueError`` with a one-line message naming the parameters.  A non-finite value after
valid input also raises: the function never returns NaN silently.

NumPy backend and speed.  For each pattern of which arguments are arrays (the rest are
scalars) the expression is specialised once and cached: every maximal subexpression in the
scalar arguments alone is evaluated once, in Python floats, and the array part is
rewritten in Horner form in the array arguments (polynomial parts) before ``lambdify``
with common-subexpression elimination.  On a grid of learning rates the function thus does
about as many array operations as a hand-written formula (``benchmarks/bench_numeric.py``).
When one argument is an array of at least :data:`RATIONAL_MIN_POINTS` points and the result
depends on it through ``+ - * /`` and integer powers only, the compiled array part is run once on a
symbolic stand-in (:mod:`symmaml.export.rational`): it returns the result as one rational function of
that argument, evaluated over the array by Horner schemes, after a check at five of the points against
the operation-by-operation evaluation (:data:`RATIONAL_RTOL`).  The nonlinear kernel-limit result, with
thousands of operations per rate, thus evaluates 10^6 rates in tens of milliseconds.

Special functions.  An expression may contain the functions of :mod:`symmaml.special` (a
one-dimensional integral left unevaluated by a derivation) and of :mod:`symmaml.rmt.wishart_quadrature`
(averages over a Wishart eigenvalue, and a root defined by one) and :mod:`symmaml.rmt.deflated_gram` (a
two-dimensional integral); each backend evaluates them with the implementation the module registers for it
(vectorised fixed-node quadratures for NumPy and floats, mpmath versions for mpmath).  JAX has none, and
says so; mpmath has none for the two-dimensional integral (float64 only), and says so.
"""
from __future__ import annotations

import base64
import builtins
import dis
import hashlib
import importlib
import inspect
import json
import linecache
import marshal
import math
import numbers
from decimal import Decimal
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
import sympy as sp
from sympy.core.sorting import default_sort_key

from .. import cache, special
from ..rmt import deflated_gram, wishart_quadrature
from ..derivation import Condition
from ..symbols import LINEAR, ParameterSet, m, n_v, p
from .rational import Rational
from .rational import evaluate as evaluate_rational

__all__ = ["numeric_function", "NumericFunction", "PreciseMpf", "BACKENDS"]

BACKENDS = ("numpy", "mpmath", "jax")
_REGIME_LABELS = (
    (sp.StrictGreaterThan(p, m * n_v).canonical, "regime 'over'"),
    (sp.StrictLessThan(p, m * n_v).canonical, "regime 'under'"),
)


def _requirement(name: str, params: ParameterSet = LINEAR) -> str:
    kind = params.kind(name)
    if kind == "size":
        return "a positive integer"
    if kind == "rate":
        return "a finite real number"
    return "a finite number >= 0"


def _fmt(name: str, value, params: ParameterSet = LINEAR) -> str:
    if isinstance(value, (bool, np.bool_, str, bytes, Fraction, Decimal)):
        return repr(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return repr(value)
    if name in params.names and params.kind(name) == "size" and x.is_integer():
        return str(int(x))
    return repr(x) if math.isfinite(x) else str(x)


def _bad(name: str, value, where: str = "", params: ParameterSet = LINEAR) -> ValueError:
    return ValueError(f"{name} must be {_requirement(name, params)}; got {_fmt(name, value, params)}{where}")


def _relation_text(rel) -> str:
    """``p > m*n_v``, ``alpha_t = 0``: a relation as a one-line message reads it."""
    op = {"==": "=", "!=": "!="}.get(rel.rel_op, rel.rel_op)
    return f"{sp.sstr(rel.lhs)} {op} {sp.sstr(rel.rhs)}"


def _is_tracer(x) -> bool:
    """A JAX tracer (under jax.grad/jit): its values cannot be inspected."""
    return type(x).__module__.startswith("jax") and "Tracer" in type(x).__name__


def _exact_real(value):
    """``value`` as an exact ``Fraction`` if it is an exact real number (``int``, ``Fraction``,
    ``Decimal``, a SymPy ``Rational``, or a string such as ``'0.2'`` or ``'1/5'``), else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return Fraction(int(value))
    if isinstance(value, Fraction):
        return value
    if isinstance(value, Decimal):
        return Fraction(value) if value.is_finite() else None
    if isinstance(value, str):
        try:
            return Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            return None
    if isinstance(value, sp.Rational):
        return Fraction(int(value.p), int(value.q))
    return None


def _is_size(value) -> bool:
    """D1: an ``int``, a NumPy integer or an integral float (Python or NumPy); never a bool."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer()


def _check_scalar(name: str, value, params: ParameterSet = LINEAR) -> float:
    """The float value of one scalar argument, checked for its kind (size, rate or scale).

    Sizes are accepted as decision D1 says (an ``int``, a NumPy integer, an integral float);
    rates and scales as any real number: ``int``, ``float``, NumPy scalars, ``Fraction``,
    ``Decimal``, SymPy numbers, ``mpmath.mpf``, or a string of a decimal or a fraction."""
    kind = params.kind(name)
    if kind == "size":
        if not _is_size(value) or value <= 0:
            raise _bad(name, value, params=params)
        return float(value)
    exact = _exact_real(value)
    if exact is not None:
        x = float(exact)
    elif isinstance(value, (bool, np.bool_, str, bytes)) or not _real_like(value):
        raise _bad(name, value, params=params)
    else:
        try:
            x = float(value)
        except (TypeError, ValueError, OverflowError):
            raise _bad(name, value, params=params) from None
    if not math.isfinite(x) or (kind == "scale" and x < 0):
        raise _bad(name, value, params=params)
    return x


def _real_like(value) -> bool:
    """A real scalar of a numeric type (NumPy, SymPy, mpmath numbers...), not a container or a complex."""
    if isinstance(value, (numbers.Real, np.floating, np.integer)):
        return True
    if isinstance(value, sp.Basic):
        return bool(value.is_number and value.is_extended_real)
    return type(value).__module__.split(".")[0] == "mpmath" and hasattr(value, "_mpf_")


def _check_array(name: str, value, params: ParameterSet = LINEAR) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype == object and params.kind(name) == "size":  # D1 elementwise
        bad = next((x for x in a.flat if not _is_size(x)), None)
        if bad is not None:
            raise _bad(name, bad, " (in an array)", params)
    if a.dtype == bool or a.dtype.kind not in "iuf":
        try:
            if a.dtype == bool or a.dtype.kind in "USbc":
                raise TypeError
            a = a.astype(float)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be {_requirement(name, params)} (or an array of them); "
                             f"got {value!r}") from None
    a = a.astype(float, copy=False)
    kind = params.kind(name)
    if kind == "size":
        ok = (a > 0) & (a == np.floor(a))  # NaN and inf fail one of these
    elif kind == "scale":
        ok = np.isfinite(a) & (a >= 0)
    else:
        ok = np.isfinite(a)
    if not ok.all():
        idx = np.unravel_index(int(np.argmin(ok)), a.shape)
        raise _bad(name, a[idx], f" (at index {tuple(int(i) for i in idx)})", params)
    return a


def _broadcast_message(shapes) -> str:
    """Which array arguments do not broadcast together, by name (NumPy's message says 'arg 0')."""
    names = ", ".join(f"{n} {tuple(shp)}" for n, shp in shapes if shp)
    for i, (n1, s1) in enumerate(shapes):
        for n2, s2 in shapes[i + 1:]:
            try:
                np.broadcast_shapes(s1, s2)
            except ValueError:
                return (f"{n1} (shape {tuple(s1)}) and {n2} (shape {tuple(s2)}) cannot be broadcast together "
                        f"(array arguments: {names}); use arrays of one shape, or shapes that broadcast, "
                        "e.g. (n, 1) and (1, k) for an n x k grid")
    return f"the array arguments cannot be broadcast together: {names}"


def _rational_in(e, arrays: frozenset) -> bool:
    """Whether ``e`` depends on the symbols ``arrays`` through ``+``, ``*`` and integer powers only."""
    seen: set = set()
    stack = [e]
    while stack:
        x = stack.pop()
        if x in seen or not (x.free_symbols & arrays) or x.is_Symbol:
            continue
        seen.add(x)
        if x.is_Add or x.is_Mul:
            stack.extend(x.args)
        elif x.is_Pow and x.exp.is_Integer:
            stack.append(x.base)
        else:
            return False
    return True


RATIONAL_MIN_POINTS = 512
"""Arrays of at least this many points are evaluated through the rational function (when there is one)."""
RATIONAL_RTOL = 1e-8
"""The agreement the rational function must show with direct evaluation at the checked points."""


_EXPAND_LIMIT = 400
"""Largest expression (in operations) the specialiser expands to find its polynomial form."""


#: ``lambdify`` module lists by name: (the list, the modules and functions a cached source is rebuilt with)
_MODULES = {
    "math": lambda: ["math"],
    "numpy": lambda: ["numpy"],
    "special-math": lambda: [_SPECIAL["math"], "math"],
    "special-numpy": lambda: [_SPECIAL["numpy"], "numpy"],
    "special-mpmath": lambda: [_SPECIAL["mpmath"], "mpmath"],
    "jax": lambda: "jax",
}
_NAMESPACES: dict = {}
#: the special functions' implementations by backend: SpectralIntegral (symmaml.special), the Wishart
#: resolvent averages (symmaml.rmt.wishart_quadrature) and the deflated Gram traces (symmaml.rmt.deflated_gram,
#: float64 only: the mpmath backend refuses them, _FLOAT_ONLY)
_SPECIAL = {"math": {**special.MATH, **wishart_quadrature.MATH, **deflated_gram.MATH},
            "numpy": {**special.NUMPY, **wishart_quadrature.NUMPY, **deflated_gram.NUMPY},
            "mpmath": {**special.MPMATH, **wishart_quadrature.MPMATH}}
_FLOAT_ONLY = deflated_gram.FLOAT_ONLY


def _functions_named(names, expr, defs) -> list:
    """The names in ``names`` of the functions that occur in ``expr`` or a definition's value, sorted."""
    return sorted({f.func.__name__ for e in (expr, *(v for _, v in defs))
                   for f in e.atoms(sp.Function) if f.func.__name__ in names})


def _namespace(modules: str) -> dict:
    """The module objects and special functions a cached function made with ``modules`` reads.

    ``lambdify`` prints qualified names (``numpy.exp``, ``math.sqrt``, ``mpmath.mpf``), the
    special functions by name and a few bare names (``greater``); :func:`_resolve` finds the bare
    ones as ``lambdify`` does, without its ``from numpy import *`` (0.4 s on first use)."""
    ns = _NAMESPACES.get(modules)
    if ns is None:
        if modules == "jax":
            importlib.import_module("jax.numpy")
            ns = {"jax": importlib.import_module("jax")}
        else:
            base = modules.split("-")[-1]
            ns = {base: importlib.import_module(base)}
            if modules.startswith("special-"):
                ns.update(_SPECIAL[base])
        _NAMESPACES[modules] = ns
    return ns


_MISSING = object()


def _resolve(modules: str, name: str):
    """What a global ``name`` means in the namespace ``lambdify`` builds for ``modules`` (the
    special functions, its translations, ``from module import *``, its defaults), or _MISSING."""
    ns = _namespace(modules)
    if name in ns:
        return ns[name]
    if hasattr(builtins, name):
        return _MISSING  # found in builtins at call time; nothing to add
    base = "jax" if modules == "jax" else modules.split("-")[-1]
    _, defaults, translations, _ = importlib.import_module("sympy.utilities.lambdify").MODULES[base]
    module = importlib.import_module(base)
    if name in translations:
        return getattr(module, translations[name], _MISSING)
    stars = [importlib.import_module("numpy.linalg"), module] if base == "numpy" else ([] if base == "jax" else [module])
    for mod in stars:
        public = getattr(mod, "__all__", None)
        if (name in public) if public is not None else (not name.startswith("_") and hasattr(mod, name)):
            return getattr(mod, name)
    return defaults.get(name, _MISSING)


def _globals_used(code) -> set:
    """Every global name the code (and the functions it defines) reads."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _globals_used(const)
    return names


def _from_source(item: list, label: str):
    modules, source, names, compiled = item
    filename = f"<symmaml {label}>"
    # the compiled code (marshal, this Python's format: the cache generation includes its version)
    code = marshal.loads(base64.b64decode(compiled)) if compiled else compile(source, filename, "exec")
    ns = dict(_namespace(modules))
    for name in names:
        value = _resolve(modules, name)
        if value is _MISSING:
            raise NameError(name)
        ns[name] = value
    exec(code, ns)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # for tracebacks
    return ns["_lambdifygenerated"]


def _storable(modules: str, source: str, label: str) -> list | None:
    """``[modules, source, bare names, compiled code]`` if every global the source reads resolves,
    else None."""
    try:
        code = compile(source, f"<symmaml {label}>", "exec")
    except SyntaxError:
        return None
    used = _globals_used(code)
    ns = _namespace(modules)
    bare = sorted(n for n in used if n not in ns and n != "_lambdifygenerated" and not hasattr(builtins, n))
    if any(_resolve(modules, n) is _MISSING for n in bare):
        return None
    return [modules, source, bare, base64.b64encode(marshal.dumps(code)).decode("ascii")]


def _compiled(key: str | None, build) -> list:
    """Functions made by ``sympy.lambdify``, kept in the persistent cache under ``key``.

    ``build()`` returns a list of ``(args, expr, modules, cse)`` (``modules`` a name of
    :data:`_MODULES`) or None for an absent function; it runs only on a miss, so the work before
    ``lambdify`` (e.g. specialising an expression) is saved too.  The cache holds the generated
    sources; each is rebuilt in the namespace ``lambdify`` gives its module list, so a stored
    function is what ``lambdify`` returned, in milliseconds.  A group whose source reads a global
    outside that namespace (e.g. an implemented function of the expression) is not stored."""
    st = cache.store() if key is not None else None
    if st is not None:
        data = st.get(key)
        if data is not None:
            try:
                return [None if item is None else _from_source(item, f"{key} [{i}]")
                        for i, item in enumerate(json.loads(data.decode("utf-8")))]
            except Exception:  # unusable: compile again (and overwrite the entry)
                pass
    fns, stored = [], []
    for i, spec in enumerate(build()):
        if spec is None:
            fns.append(None)
            stored.append(None)
            continue
        args, expr, modules, cse = spec
        fn = sp.lambdify(args, expr, modules=_MODULES[modules](), cse=cse)
        fns.append(fn)
        source = "".join(linecache.getlines(fn.__code__.co_filename))
        stored.append((_storable(modules, source, f"{key} [{i}]") or False) if st is not None else False)
    if st is not None and all(item is not False for item in stored):
        st.put(key, json.dumps(stored).encode("utf-8"))
    return fns


class _Specialiser:
    """Rewrites an expression for one pattern of array arguments (see the module docstring)."""

    def __init__(self, arrays: frozenset):
        self.arrays = arrays
        self.coeffs: list[sp.Expr] = []
        self.index: dict = {}

    def scalar(self, e) -> sp.Expr:
        if e.is_number:
            return e
        key = e
        if key not in self.index:
            self.index[key] = sp.Symbol(f"_c{len(self.coeffs)}")
            self.coeffs.append(e)
        return self.index[key]

    def gens(self, e):
        return sorted(e.free_symbols & self.arrays, key=default_sort_key)

    @staticmethod
    def terms(e, gens):
        """``{exponents: coefficient}`` if ``e`` is a sum of (scalar coefficient) x (monomial in
        gens) as written, else None.  Coefficients are kept as they are (factored forms stay
        factored): no expansion, which is what makes large stated polynomials cheap."""
        out: dict = {}
        for term in sp.Add.make_args(e):
            coeff, dep = term.as_independent(*gens, as_Add=False)
            powers = dep.as_powers_dict() if dep != 1 else {}
            if any(g not in gens or not (k.is_Integer and k >= 0) for g, k in powers.items()):
                return None
            monom = tuple(int(powers.get(g, 0)) for g in gens)
            out[monom] = out.get(monom, 0) + coeff
        return out

    def horner_terms(self, terms: dict, gens):
        if not gens:
            return self.scalar(sp.Add(*terms.values()))
        x, rest = gens[0], gens[1:]
        by_power: dict = {}
        for monom, coeff in terms.items():
            by_power.setdefault(monom[0], {})[monom[1:]] = coeff
        out = None
        for k in range(max(by_power), -1, -1):
            sub = {mo: c for mo, c in by_power.get(k, {}).items() if c != 0}
            h = self.horner_terms(sub, rest) if sub else sp.S.Zero
            if out is None:
                out = h
            else:
                # evaluated: out * x never distributes (x is a symbol), and unevaluated products
                # such as (1*x)*x are mis-read by sympy.cse (it turned -2*b into -b**2)
                prod = sp.Mul(out, x)
                out = prod if h == 0 else sp.Add(prod, h)
        return out

    def rewrite(self, e) -> sp.Expr:
        gens = self.gens(e)
        if not gens:
            return self.scalar(e)
        if e.is_Atom:
            return e
        if e.is_Add:
            terms = self.terms(e, gens)
            if terms is not None:
                return self.horner_terms(terms, gens)
            # a polynomial not written as a sum of monomials: expand it, unless that would
            # multiply out large scalar coefficients (the generic split below is then cheaper)
            if sp.count_ops(e) <= _EXPAND_LIMIT:
                try:
                    poly = sp.Poly(sp.expand(e), *gens)
                    if poly.total_degree() >= 1:
                        return self.horner_terms(dict(poly.terms()), gens)
                except sp.PolynomialError:
                    pass
            fixed = [t for t in e.args if not (t.free_symbols & self.arrays)]
            moving = [self.rewrite(t) for t in e.args if t.free_symbols & self.arrays]
            parts = ([self.scalar(sp.Add(*fixed))] if fixed else []) + moving
            return sp.Add(*parts, evaluate=False) if len(parts) > 1 else parts[0]
        if e.is_Mul:
            fixed = [f for f in e.args if not (f.free_symbols & self.arrays)]
            moving = [self.rewrite(f) for f in e.args if f.free_symbols & self.arrays]
            parts = ([self.scalar(sp.Mul(*fixed))] if fixed else []) + moving
            return sp.Mul(*parts, evaluate=False) if len(parts) > 1 else parts[0]
        if e.is_Pow:
            base = self.rewrite(e.base)
            exp = self.rewrite(e.exp) if e.exp.free_symbols & self.arrays else self.scalar(e.exp)
            return sp.Pow(base, exp, evaluate=False)
        if isinstance(e, sp.Piecewise):
            return sp.Piecewise(*[(self.rewrite(x), self.condition(c)) for x, c in e.args], evaluate=False)
        return e.func(*[self.rewrite(a) for a in e.args])

    def condition(self, c):
        """A Piecewise condition: relations rewritten on both sides, logic kept."""
        if c in (sp.true, sp.false):
            return c
        if isinstance(c, sp.core.relational.Relational):
            return c.func(self.rewrite(c.lhs), self.rewrite(c.rhs), evaluate=False)
        if isinstance(c, (sp.And, sp.Or, sp.Not)):
            return c.func(*[self.condition(a) for a in c.args], evaluate=False)
        raise TypeError(f"unsupported Piecewise condition {c}")


def _to_mpf(value):
    """An argument at the working precision: exact numbers (``int``, ``Fraction``, ``Decimal``,
    SymPy ``Rational``, strings such as ``'0.2'`` or ``'1/5'``) converted exactly (the one rounding
    is to the working precision), binary floats taken as the numbers they are (``0.2`` is
    0.200000000000000011102...), ``mpf`` as is."""
    exact = _exact_real(value)
    if exact is not None:
        return mpmath.mpf(exact.numerator) / exact.denominator
    if isinstance(value, sp.Float):
        return mpmath.mpf(value._mpf_)
    if isinstance(value, (float, np.floating)):
        return mpmath.mpf(float(value))
    return mpmath.mpf(value)


class PreciseMpf(mpmath.mpf):
    """An ``mpmath.mpf`` that prints with the significant digits it was computed at.

    A plain ``mpf`` prints at mpmath's global precision (15 digits), whatever precision it holds;
    the mpmath backend returns this subclass so that ``print(f(...))`` shows ``dps`` digits.
    Arithmetic on it returns plain ``mpf`` values, as usual."""

    __slots__ = ("dps",)

    @classmethod
    def of(cls, x, dps: int) -> "PreciseMpf":
        v = object.__new__(cls)
        v._mpf_ = x._mpf_
        v.dps = int(dps)
        return v

    def __reduce__(self):
        return (_precise_mpf, (self._mpf_, self.dps))

    def __str__(self) -> str:
        return mpmath.nstr(self, self.dps)

    def __repr__(self) -> str:
        return f"mpf('{self}')"

    def __format__(self, spec: str) -> str:
        return str(self) if not spec else super().__format__(spec)


def _precise_mpf(mpf_tuple, dps):
    v = object.__new__(PreciseMpf)
    v._mpf_ = mpf_tuple
    v.dps = dps
    return v


def _check_dps(dps, backend: str):
    """``dps`` for the mpmath backend: a positive integer (D1: integral floats accepted); refused
    by the other backends (NumPy and JAX compute in float64: a precision would be ignored)."""
    if dps is None:
        return 50
    if backend != "mpmath":
        raise ValueError(f"dps applies to the 'mpmath' backend only; the {backend!r} backend computes in "
                         f"float64 (got dps={dps!r})")
    if not _is_size(dps) or dps < 1:
        raise ValueError(f"dps must be a positive integer (significant digits); got {dps!r}")
    return int(dps)


class NumericFunction:
    """A validated numeric function of the canonical parameters (see :func:`numeric_function`).

    Attributes: ``expr`` (the SymPy expression), ``backend``, ``signature``
    (an :class:`inspect.Signature` of keyword-only parameters), ``conditions``, ``name``.
    """

    def __init__(self, expr, *, backend: str = "numpy", conditions=(), ignore=(), name: str = "",
                 dps: int | None = None, cse: bool = True, definitions=(), domain: str = "",
                 parameters: ParameterSet = LINEAR, cache_key: str | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
        self.expr = sp.sympify(expr)
        self.parameters = parameters
        names = parameters.names
        self.definitions = tuple((sym, sp.sympify(value)) for sym, value in definitions)
        self._renamed = None  # (definitions, expr) under private names, made when first compiled
        self.backend = backend
        self.name = name or "expression"
        self.dps = _check_dps(dps, backend)
        self.cse = bool(cse)
        self.domain = domain
        conditions = [c if isinstance(c, Condition) else Condition(sp.sympify(c), "") for c in conditions]
        self.conditions = tuple(c.relation for c in conditions)
        self._condition_texts = tuple(c.text for c in conditions)
        ignore = {getattr(s, "name", s) for s in ignore}
        unknown = sorted(ignore - set(names))
        if unknown:
            raise ValueError(f"ignore: unknown parameter(s) {', '.join(unknown)}")
        self.ignored = tuple(n for n in names if n in ignore)
        self._fingerprint = (hashlib.sha256(f"{cache_key} cse={self.cse}".encode()).hexdigest() if cache_key
                             else self._content_hash())
        self.derived = tuple(parameters.derived)
        self.used = self._analyse()
        #: the derived inputs (e.g. ``spectrum``) this expression needs
        self.derived_used = tuple(dv for dv in self.derived
                                  if dv.owns(self.expr) or any(dv.owns(v) for _, v in self.definitions))
        self._forms: dict = {}
        self.checked = tuple(n for n in names if n not in self.ignored)
        params = []
        for n in names:
            default = parameters.defaults.get(n, None if n in self.ignored else inspect.Parameter.empty)
            params.append(inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=default))
        for dv in self.derived:
            default = inspect.Parameter.empty if dv in self.derived_used else None
            params.append(inspect.Parameter(dv.name, inspect.Parameter.KEYWORD_ONLY, default=default))
        self.signature = inspect.Signature(params)
        self.__signature__ = self.signature
        self.__name__ = "numeric_function"
        self.__doc__ = f"{self.name}: a numeric function of {', '.join(names)} (its expression: .expr)"
        self._conditions = [self._compile_condition(c, t, i)
                            for i, (c, t) in enumerate(zip(self.conditions, self._condition_texts))]
        self._cache: dict = {}
        self._rationals: dict = {}
        self._mp: dict = {}
        self._jax: dict = {}
        if not self.derived_used:  # compile now (a derived input's form depends on its value)
            if backend == "jax":
                self._jax_fn(())  # fail early and clearly if jax is missing
            elif backend == "mpmath":
                self._mp_fn(())

    def __repr__(self) -> str:
        return f"<NumericFunction {self.name!r} backend={self.backend!r}>"

    def _analyse(self) -> tuple:
        """The parameters the expression uses, after checking that it uses no other symbol.

        Walking large expressions for their symbols costs most of a second for the corrected
        results, so the answer is kept in the persistent cache with the compiled functions."""
        symbols = self.parameters.symbols
        key = self._key("analysis")
        st = cache.store() if key is not None else None
        if st is not None:
            data = st.get(key)
            if data is not None:
                used = json.loads(data.decode("utf-8"))
                if set(used) <= set(self.parameters.names):
                    return tuple(s for s in symbols if s.name in used)
        known = set(symbols)
        owned = lambda s: any(dv.owns_symbol(s) for dv in self.derived)  # noqa: E731
        extra = []
        for sym, value in self.definitions:
            if sym in known:
                raise ValueError(f"{self.name}: {sym} is defined twice, or is a parameter")
            extra += sorted(s.name for s in value.free_symbols if s not in known and not owned(s))
            known.add(sym)
        extra += sorted((s.name for s in self.expr.free_symbols if s not in known and not owned(s)))
        for c in self.conditions:
            extra += sorted(s.name for s in c.free_symbols if s not in symbols)
        if extra:
            raise ValueError(f"{self.name}: symbols that are not parameters: {', '.join(sorted(set(extra)))}")
        everything = self.expr.free_symbols.union(*(v.free_symbols for _, v in self.definitions))
        used = tuple(s for s in symbols if s in everything)
        if st is not None:
            st.put(key, json.dumps([s.name for s in used]).encode("utf-8"))
        return used

    @property
    def _defs(self) -> tuple:
        return self._private()[0]

    @property
    def _expr(self):
        return self._private()[1]

    def _private(self):
        """The definitions and the expression under private names ``_d0, _d1, ...`` (a definition may
        be called ``\\mu_0`` for LaTeX), as compiled."""
        if self._renamed is None:
            rename = {sym: sp.Symbol(f"_d{i}") for i, (sym, _) in enumerate(self.definitions)}
            self._renamed = (tuple((rename[sym], value.xreplace(rename)) for sym, value in self.definitions),
                             self.expr.xreplace(rename))
        return self._renamed

    # -- derived inputs ---------------------------------------------------------------
    def _form(self, dkey: tuple):
        """``(expr, defs, used)`` for the values of the derived inputs summarised by ``dkey``: spectral
        means written out over the levels; ``used`` the parameters, then the derived symbols."""
        form = self._forms.get(dkey)
        if form is None:
            expr, defs = self._expr, self._defs
            for dv, key in zip(self.derived_used, dkey):
                expr = dv.rewrite(expr, key)
                defs = tuple((sym, dv.rewrite(value, key)) for sym, value in defs)
            free = expr.free_symbols.union(*(v.free_symbols for _, v in defs))
            extra = sorted((x for x in free if any(dv.owns_symbol(x) for dv in self.derived_used)),
                           key=default_sort_key)
            form = self._forms[dkey] = (expr, defs, self.used + tuple(extra))
        return form

    def _derived_values(self, raw: dict, number=float) -> tuple[tuple, dict]:
        """``(dkey, {symbol name: value})`` of the derived inputs given in ``raw``."""
        dkey, checked = [], []
        for dv in self.derived_used:
            value = dv.check(raw[dv.name])
            dkey.append(dv.key(value))
            checked.append(value)
        dkey = tuple(dkey)
        values = {}
        if self.derived_used:
            used = self._form(dkey)[2][len(self.used):]
            for dv, value in zip(self.derived_used, checked):
                values.update(dv.values(value, used, number))
        return dkey, values

    def _content_hash(self) -> str | None:
        """A hash of everything the compiled functions depend on (None if it cannot be pickled),
        for a function made without a ``cache_key``: an expression built the same way in another
        process has the same hash (one rebuilt differently, e.g. read from a pickle, may not: SymPy
        shares cached subexpressions differently, which changes the pickle, never the meaning)."""
        try:
            data = cache.dumps((self.expr, self.definitions, self.conditions, self.parameters.symbols,
                                self.ignored, self.cse))
        except Exception:
            return None
        return hashlib.sha256(data).hexdigest()

    def _key(self, part: str) -> str | None:
        return None if self._fingerprint is None else f"numeric {self._fingerprint} {part}"

    def _cse_with(self, defs):
        """``lambdify``'s ``cse`` argument: the definitions first (in order), then optional CSE."""
        defs = list(defs)
        if not defs:
            return self.cse

        def cse(exprs):
            if not self.cse:
                return list(defs), exprs
            names = sp.numbered_symbols("_x")
            inner = []
            for sym, value in defs:  # CSE inside each definition (e.g. powers shared by its terms)
                reps, (reduced,) = sp.cse([value], symbols=names)
                inner += reps + [(sym, reduced)]
            single = not isinstance(exprs, (list, tuple))
            reps, reduced = sp.cse([exprs] if single else list(exprs), symbols=names)
            return inner + reps, (reduced[0] if single else reduced)

        return cse

    # -- conditions -----------------------------------------------------------------
    def _compile_condition(self, cond, text: str = "", index: int = 0):
        if not isinstance(cond, sp.core.relational.Relational):
            raise ValueError(f"condition must be a SymPy relation in the parameters; got {cond!r}")
        args = tuple(s for s in self.parameters.symbols if s in cond.free_symbols)
        label = next((lab for c, lab in _REGIME_LABELS if cond.canonical == c), self.name)
        # CSE: a large condition (e.g. a validity polynomial) then costs about as much as the result
        scalar, vector = _compiled(self._key(f"condition {index}"),
                                   lambda: [(args, cond, "math", True), (args, cond, "numpy", True)])
        return dict(cond=cond, args=args, label=label, scalar=scalar, vector=vector,
                    message=f"{label} requires {text or _relation_text(cond)}")

    def _check_conditions(self, values: dict, shape) -> None:
        for c in self._conditions:
            if any(s.name not in values for s in c["args"]):
                continue  # a traced (JAX) value: cannot be checked
            xs = [values[s.name] for s in c["args"]]
            if all(isinstance(x, float) for x in xs):
                if not bool(c["scalar"](*xs)):
                    got = ", ".join(f"{s.name}={_fmt(s.name, x, self.parameters)}" for s, x in zip(c["args"], xs))
                    raise ValueError(f"{c['message']}; got {got}")
                continue
            ok = np.asarray(c["vector"](*xs), dtype=bool)
            if not ok.all():
                ok = np.broadcast_to(ok, np.broadcast_shapes(ok.shape, *(np.shape(x) for x in xs)))
                idx = np.unravel_index(int(np.argmin(ok)), ok.shape)
                got = ", ".join(f"{s.name}={_fmt(s.name, np.broadcast_to(x, ok.shape)[idx], self.parameters)}"
                                for s, x in zip(c["args"], xs))
                raise ValueError(f"{c['message']}; got {got}")

    # -- arguments ------------------------------------------------------------------
    def _bind(self, args, kwargs) -> dict:
        names, defaults = self.parameters.names, self.parameters.defaults
        derived = tuple(dv.name for dv in self.derived)
        if args:
            raise TypeError(f"{self.name} takes keyword arguments only ({', '.join(names + derived)}); "
                            f"got {len(args)} positional")
        unknown = sorted(set(kwargs) - set(names) - set(derived))
        if unknown:
            raise TypeError(f"{self.name} got unexpected keyword argument(s): {', '.join(unknown)} "
                            f"(parameters: {', '.join(names + derived)})")
        missing = [n for n in self.checked if n not in kwargs and n not in defaults]
        missing += [dv.name for dv in self.derived_used if kwargs.get(dv.name) is None]
        if missing:
            raise TypeError(f"{self.name} missing required keyword argument(s): {', '.join(missing)}")
        for dv in self.derived:  # validated even where the expression happens not to need it
            if dv not in self.derived_used and kwargs.get(dv.name) is not None:
                dv.check(kwargs[dv.name])
        bound = {n: kwargs.get(n, defaults.get(n)) for n in self.checked}
        self._raw_derived = {dv.name: kwargs[dv.name] for dv in self.derived_used}
        return bound

    def _validate(self, raw: dict, allow_arrays: bool = True):
        values, shapes = {}, []
        for n, v in raw.items():
            if np.ndim(v) == 0 and not isinstance(v, np.ndarray):
                values[n] = _check_scalar(n, v, self.parameters)
            elif not allow_arrays:
                raise ValueError(f"the {self.backend} backend takes scalar arguments; got an array for {n}")
            else:
                a = _check_array(n, v, self.parameters)
                values[n] = float(a) if a.ndim == 0 else a
                shapes.append((n, a.shape))
        try:
            shape = np.broadcast_shapes(*(shp for _, shp in shapes)) if shapes else ()
        except ValueError:
            raise ValueError(_broadcast_message(shapes)) from None
        self._check_conditions(values, shape)
        return values, shape

    def _nonfinite(self, values: dict, where=None) -> ValueError:
        at = ", ".join(f"{n}={_fmt(n, v if where is None else np.broadcast_to(v, where[1])[where[0]], self.parameters)}"
                       for n, v in values.items())
        hint = f" (outside its domain: {self.domain})" if self.domain else ""
        return ValueError(f"{self.name} is not finite at {at}{hint}")

    # -- evaluation -----------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        raw = self._bind(args, kwargs)
        derived = self._raw_derived
        if self.backend == "mpmath":
            return self._call_mpmath(raw, derived)
        if self.backend == "jax":
            return self._call_jax(raw, derived)
        values, shape = self._validate(raw)
        dkey, extra = self._derived_values(derived)
        return self._call_numpy(values, shape, dkey=dkey, extra=extra)

    def masked(self, *args, **kwargs):
        """Like calling the function (NumPy backend), but a value that is not finite (outside the
        result's domain) comes back as NaN instead of raising: for searches over a parameter.
        Inputs are validated as usual."""
        if self.backend != "numpy":
            raise ValueError(f"masked() needs the 'numpy' backend; this function uses {self.backend!r}")
        raw = self._bind(args, kwargs)
        derived = self._raw_derived
        values, shape = self._validate(raw)
        dkey, extra = self._derived_values(derived)
        return self._call_numpy(values, shape, strict=False, dkey=dkey, extra=extra)

    def _specialised(self, arrays: tuple, dkey: tuple = ()):
        fn = self._cache.get((arrays, dkey))
        if fn is None:
            expr, defs, syms, array_args, scalar_args = self._array_pattern(arrays, dkey)

            def build():
                array_syms, scalar_defs = self._array_definitions(defs, syms)
                spec, array_defs, body = self._specialise(expr, defs, array_syms)
                placeholders = [spec.index[c] for c in spec.coeffs]
                return [(scalar_args, spec.coeffs, "special-math", self._cse_with(scalar_defs)) if spec.coeffs else None,
                        (array_args + placeholders, body, "special-numpy", self._cse_with(array_defs))]

            key = (f"numpy arrays={','.join(s.name for s in array_args)}"
                   + (f" derived={dkey!r}" if dkey else ""))
            coeff_fn, body_fn = _compiled(self._key(key), build)
            fn = (coeff_fn, body_fn, [s.name for s in array_args], [s.name for s in scalar_args], key)
            self._cache[(arrays, dkey)] = fn
        return fn

    def _array_pattern(self, arrays: tuple, dkey: tuple):
        """``(expr, defs, array symbols, array arguments, scalar arguments)`` for the arguments named
        in ``arrays`` being arrays (arguments in the order the expression uses them)."""
        expr, defs, used = self._form(dkey)
        syms = frozenset(s for s in used if s.name in arrays)
        return expr, defs, syms, [s for s in used if s in syms], [s for s in used if s not in syms]

    @staticmethod
    def _array_definitions(defs, syms: frozenset) -> tuple[set, list]:
        """The definitions that are arrays (a definition is one if it depends on one), and the others,
        which are computed once, in floats."""
        array_syms, scalar_defs = set(syms), []
        for sym, value in defs:
            if value.free_symbols & array_syms:
                array_syms.add(sym)
            else:
                scalar_defs.append((sym, value))
        return array_syms, scalar_defs

    @staticmethod
    def _specialise(expr, defs, array_syms: set):
        """The :class:`_Specialiser` of an array pattern with the rewritten array definitions and body."""
        spec = _Specialiser(frozenset(array_syms))
        array_defs = [(sym, spec.rewrite(value)) for sym, value in defs if sym in array_syms]
        return spec, array_defs, spec.rewrite(expr)

    def _rational_fn(self, arrays: tuple, dkey: tuple, key: str):
        """The array part compiled for :class:`~symmaml.export.rational.Rational` arguments (plain
        arithmetic), or None if the result is not rational in its one array argument; built on first use."""
        cached = self._cache.get(("rational", arrays, dkey), False)
        if cached is not False:
            return cached
        expr, defs, syms, array_args, _ = self._array_pattern(arrays, dkey)

        def build():
            array_syms, _ = self._array_definitions(defs, syms)
            spec, array_defs, body = self._specialise(expr, defs, array_syms)
            arrays_ = frozenset(array_syms)
            rational = (len(array_args) == 1 and _rational_in(body, arrays_)
                        and all(_rational_in(v, arrays_) for _, v in array_defs))
            placeholders = [spec.index[c] for c in spec.coeffs]
            return [(array_args + placeholders, body, "math", self._cse_with(array_defs)) if rational else None]

        fn, = _compiled(self._key(key + " rational"), build)
        self._cache[("rational", arrays, dkey)] = fn
        return fn

    def _call_numpy(self, values: dict, shape, strict: bool = True, dkey: tuple = (), extra: dict | None = None):
        arrays = tuple(s.name for s in self.used if isinstance(values[s.name], np.ndarray))
        coeff_fn, body_fn, array_names, scalar_names, key = self._specialised(arrays, dkey)
        inputs = {**values, **extra} if extra else values
        try:
            coeffs = coeff_fn(*(inputs[n] for n in scalar_names)) if coeff_fn else []
        except (ZeroDivisionError, OverflowError, ValueError):
            if not strict:
                return np.full(shape, np.nan) if shape else math.nan
            raise self._nonfinite(values) from None
        out = None
        if len(array_names) == 1 and np.size(inputs[array_names[0]]) >= RATIONAL_MIN_POINTS:
            rational_fn = self._rational_fn(arrays, dkey, key)
            if rational_fn is not None:
                out = self._call_rational(rational_fn, body_fn, inputs[array_names[0]], coeffs)
        if out is None:
            with np.errstate(all="ignore"):
                out = body_fn(*(inputs[n] for n in array_names), *coeffs)
        if not shape:
            out = float(out)
            if not math.isfinite(out):
                if not strict:
                    return math.nan
                raise self._nonfinite(values)
            return out
        out = np.asarray(out, dtype=float)
        if out.shape != shape:
            out = np.broadcast_to(out, shape).copy()
        if not strict:
            return np.where(np.isfinite(out), out, np.nan)
        if not np.isfinite(out).all():
            idx = np.unravel_index(int(np.argmin(np.isfinite(out))), shape)
            raise self._nonfinite(values, (idx, shape))
        return out

    def _call_rational(self, rational_fn, body_fn, x: np.ndarray, coeffs) -> np.ndarray | None:
        """The values at the points ``x`` through the result as one rational function of its only array
        argument (:mod:`symmaml.export.rational`), or None to evaluate operation by operation instead.

        The rational function is built once per value of the scalar arguments (a few milliseconds) and
        kept.  At the extreme, first, middle and last points of ``x`` it must agree with the direct
        evaluation to :data:`RATIONAL_RTOL`, else (ill-conditioned polynomials there) it is not used."""
        key = tuple(float(c) for c in coeffs)
        r = self._rationals.get(key)
        if r is None:
            try:
                with np.errstate(all="raise"):
                    r = rational_fn(Rational.variable(), *coeffs)
            except (ArithmeticError, FloatingPointError, TypeError, ValueError):
                r = False
            if not isinstance(r, Rational):
                r = False
            if len(self._rationals) >= 64:
                self._rationals.clear()
            self._rationals[key] = r
        if r is False:
            return None
        flat = x.reshape(-1)
        points = np.unique(np.array([flat.min(), flat.max(), flat[0], flat[flat.size // 2], flat[-1]]))
        with np.errstate(all="ignore"):
            direct = np.asarray(body_fn(points, *coeffs), dtype=float)
            fast = evaluate_rational(r, points)
        if not (np.all(np.isfinite(direct)) and np.allclose(fast, direct, rtol=RATIONAL_RTOL, atol=0.0)):
            return None
        with np.errstate(all="ignore"):
            return evaluate_rational(r, x)

    def _mp_fn(self, dkey: tuple = ()):
        if dkey not in self._mp:
            expr, defs, used = self._form(dkey)
            floats = _functions_named(_FLOAT_ONLY, expr, defs)
            if floats:
                raise ValueError(f"{self.name}: the 'mpmath' backend cannot evaluate {', '.join(floats)} "
                                 "(a two-dimensional quadrature, evaluated in float64 only); use the 'numpy' backend")
            self._mp[dkey], = _compiled(self._key("mpmath" + (f" derived={dkey!r}" if dkey else "")),
                                        lambda: [(used, expr, "special-mpmath", self._cse_with(defs))])
        return self._mp[dkey]

    def _call_mpmath(self, raw: dict, derived: dict | None = None):
        values, _ = self._validate(raw, allow_arrays=False)
        with mpmath.workdps(self.dps):
            dkey, extra = self._derived_values(derived or {}, number=_to_mpf)
            fn = self._mp_fn(dkey)
            args = [_to_mpf(raw[s.name]) for s in self.used]
            args += [extra[s.name] for s in self._form(dkey)[2][len(self.used):]]
            try:
                out = fn(*args)
            except ZeroDivisionError:
                raise self._nonfinite(values) from None
            out = +mpmath.mpf(out)
            if not mpmath.isfinite(out):
                raise self._nonfinite(values)
            return PreciseMpf.of(out, self.dps)

    def _jax_fn(self, dkey: tuple = ()):
        if dkey not in self._jax:
            expr, defs, used = self._form(dkey)
            quadratures = _functions_named(_SPECIAL["numpy"], expr, defs)
            if quadratures:
                raise ValueError(f"{self.name}: the 'jax' backend cannot evaluate {', '.join(quadratures)} "
                                 "(a numerical quadrature); use the 'numpy' or 'mpmath' backend")
            try:
                importlib.import_module("jax")
            except ImportError:
                raise ImportError("the 'jax' backend needs JAX: pip install 'symmaml[jax]' (or pip install jax)") from None
            self._jax[dkey], = _compiled(self._key("jax" + (f" derived={dkey!r}" if dkey else "")),
                                         lambda: [(used, expr, "jax", self._cse_with(defs))])
        return self._jax[dkey]

    def _call_jax(self, raw: dict, derived: dict | None = None):
        import jax.numpy as jnp

        dkey, extra = self._derived_values(derived or {})
        fn = self._jax_fn(dkey)
        concrete = {n: v for n, v in raw.items() if not _is_tracer(v)}  # traced values cannot be checked
        values = self._validate({n: v if np.isscalar(v) else np.asarray(v) for n, v in concrete.items()})[0]
        out = fn(*(raw[s.name] for s in self.used), *(extra[s.name] for s in self._form(dkey)[2][len(self.used):]))
        if not _is_tracer(out):
            shape = np.broadcast_shapes(*(np.shape(raw[n]) for n in raw))
            out = jnp.broadcast_to(jnp.asarray(out), shape)
            if not bool(jnp.all(jnp.isfinite(out))):
                raise self._nonfinite(values)
        return out


def numeric_function(expr, *, backend: str = "numpy", conditions=(), ignore=(), name: str = "",
                     dps: int | None = None, cse: bool = True, definitions=(), domain: str = "",
                     parameters: ParameterSet = LINEAR, cache_key: str | None = None,
                     **options: Any) -> NumericFunction:
    """A function of the keyword arguments ``p, m, n_t, n_v, n_r, alpha_t, alpha_r, sigma, nu, dist0``.

    All are required except ``dist0`` (default 0.0) and those in ``ignore`` (accepted and
    ignored); a missing one raises ``TypeError`` naming it.  Inputs are validated first
    (sizes positive integers -- integral floats such as 60.0 are fine -- rates finite, scales
    finite and >= 0, every relation in ``conditions`` true elementwise): a violation raises a
    one-line ``ValueError`` such as ``regime 'over' requires p > m*n_v; got p=6, m=3, n_v=2``.

    ``backend``:

    * ``'numpy'`` -- vectorised; array arguments broadcast; returns a float for scalar input;
    * ``'mpmath'`` -- scalar arguments, evaluated at ``dps`` significant digits (default 50)
      inside ``mpmath.workdps``; returns an ``mpf`` that prints at that precision
      (:class:`PreciseMpf`).  Exact inputs (``int``, ``Fraction``, ``Decimal``, SymPy
      ``Rational``, strings such as ``'0.2'`` or ``'1/5'``) are converted exactly; a Python
      ``float`` is taken as the binary number it is (``0.2`` is 0.2000000000000000111...):
      pass ``'0.2'`` or ``Fraction(1, 5)`` for one fifth.  ``dps`` is refused by the other backends;
    * ``'jax'`` -- ``jax.numpy``, so ``jax.grad`` works with respect to the rates and scales
      (validation skips traced values); needs JAX installed.

    ``definitions``: ``((symbol, value), ...)`` in dependency order; ``expr`` and each value may use
    the symbols defined before it (a result stated with named intermediate quantities is then
    evaluated in stages, never expanded into one tree).  ``domain``: a sentence on where the
    expression is defined, added to the error raised for a non-finite value (an expression may
    encode its own domain by evaluating to NaN outside it, e.g. with ``Piecewise``).

    ``parameters``: the :class:`~symmaml.symbols.ParameterSet` the function takes (default: the
    linear model's; :data:`~symmaml.symbols.NONLINEAR` for the network's kernel limit); each is
    validated by its kind (size, rate or scale).

    ``cache_key``: a string that determines everything else passed here (e.g. the key a derived
    result is cached under, :mod:`symmaml.cache`); the compiled functions are then kept in the
    persistent cache under it, so a later process skips specialising and ``lambdify``.  Without
    it they are kept under a hash of the expression's pickle.

    The returned object has attributes ``expr``, ``definitions``, ``backend`` and ``signature``.
    """
    if options:
        raise TypeError(f"numeric_function got unexpected option(s): {', '.join(sorted(options))}")
    return NumericFunction(expr, backend=backend, conditions=conditions, ignore=ignore, name=name,
                           dps=dps, cse=cse, definitions=definitions, domain=domain, parameters=parameters,
                           cache_key=cache_key)
