"""A derived result: the expression, how it was derived, where it holds, and its outputs."""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from ..derivation import Derivation
from ..symbols import LINEAR, ParameterSet

__all__ = ["Result", "substitute_definitions"]


def substitute_definitions(expr, definitions) -> sp.Expr:
    """``expr`` with the named quantities ``((symbol, value), ...)`` (dependency order) substituted.

    One pass over the expression graph, memoised by subexpression: a quantity used many times is
    expanded once, so the cost is linear in the size of the graph, not of the printed tree.
    Sums, products, powers, relations and ``Piecewise`` are rebuilt unevaluated, as they stand:
    evaluating them would query assumptions over the whole substituted tree (minutes for the
    corrected results), and SymPy would fold a ``Piecewise`` that a substituted condition contains
    and compare with its NaN branch (an error)."""
    if not definitions:
        return expr
    full: dict = {}
    memo: dict = {}

    def rebuild(e, args):
        if isinstance(e, (sp.Piecewise, sp.Tuple)):  # Tuple: Piecewise's (expr, cond) pairs
            return sp.Basic.__new__(type(e), *args)
        if isinstance(e, (sp.core.relational.Relational, sp.Add, sp.Mul, sp.Pow)):
            return e.func(*args, evaluate=False)
        return e.func(*args)

    def sub(e):
        out = memo.get(e)
        if out is None:
            if e in full:
                out = full[e]
            elif not e.args:
                out = e
            else:
                args = tuple(sub(a) for a in e.args)
                out = e if args == e.args else rebuild(e, args)
            memo[e] = out
        return out

    for sym, value in definitions:
        full[sym] = sub(value)
        memo.clear()  # memoised results may predate this definition
    return sub(expr)


@dataclass(frozen=True)
class Result:
    """An averaged test loss (or optimum) as a SymPy expression in the canonical symbols.

    ``conditions`` are SymPy relations in the parameters that must hold for ``expr`` to be
    valid (the regime, moment existence); ``order`` is the order of approximation.
    """

    expr: sp.Expr
    derivation: Derivation
    regime: str
    order: str
    conditions: tuple = ()
    name: str = "average test loss"
    ignored: tuple = field(default=())  # parameters the numeric function accepts but ignores
    #: ``((symbol, value), ...)``: named intermediate quantities ``expr`` is stated with, in
    #: dependency order (each value in the parameters and the symbols defined before it)
    definitions: tuple = field(default=())
    #: where ``expr`` is defined beyond ``conditions`` (it evaluates to NaN outside; the
    #: numeric function then raises with this sentence)
    domain: str = ""
    #: the parameters ``expr`` is a function of (the linear model's by default)
    parameter_set: ParameterSet = LINEAR

    @property
    def parameters(self) -> tuple:
        return self.parameter_set.symbols

    def latex(self, standalone: bool = False) -> str:
        """LaTeX of the derivation: a fragment to ``\\input``, or a standalone document."""
        from ..export.latex import derivation_document, derivation_fragment

        return derivation_document(self.derivation) if standalone else derivation_fragment(self.derivation)

    def markdown(self) -> str:
        from ..export.markdown import derivation_markdown

        return derivation_markdown(self.derivation)

    def numeric(self, backend: str = "numpy", **options):
        """A function of the keyword arguments ``p, m, n_t, n_v, n_r, alpha_t, alpha_r, sigma, nu, dist0``.

        It checks its inputs (sizes positive integers, finite rates and scales, the result's
        conditions) and raises ``ValueError`` naming the parameter, never returns NaN silently.
        """
        from ..export.numeric import numeric_function

        # keyed by type too: dps=True must not find the function made for dps=1 (True == 1)
        key = (backend, tuple(sorted((k, type(v).__name__, v) for k, v in options.items())))
        cache = self.__dict__.setdefault("_numeric_cache", {})  # building one costs up to a second
        if key not in cache:
            # a result read from (or written to) the persistent cache has a key there: what is
            # compiled from it is kept under the same key (symmaml.cache)
            stored = self.__dict__.get("cache_key")
            cache[key] = numeric_function(self.expr, backend=backend, conditions=self.conditions,
                                          ignore=self.ignored, name=f"{self.name} ({self.regime}, {self.order})",
                                          definitions=self.definitions, domain=self.domain,
                                          parameters=self.parameter_set,
                                          cache_key=f"{stored} numeric" if stored else None, **options)
        return cache[key]

    def __getstate__(self):
        """Pickled without the compiled numeric functions (they are rebuilt, or read from the cache)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_numeric_cache", "_full_expr")}

    def full_expr(self) -> sp.Expr:
        """``expr`` with every named intermediate quantity (:attr:`definitions`) substituted: one
        SymPy expression in the parameters alone.  (It can be long: for evaluation the staged
        ``numeric()`` is faster; for reading, :attr:`expr` with the definitions.)"""
        cached = self.__dict__.get("_full_expr")
        if cached is None:
            cached = substitute_definitions(self.expr, self.definitions)
            self.__dict__["_full_expr"] = cached
        return cached

    def _lhs_latex(self) -> str:
        return r"\overline{\mathcal{L}}_{\mathrm{test}}"

    def _repr_latex_(self) -> str:
        """The statement in math: the expression, then each named quantity it uses."""
        from ..export.notebook import statement_latex

        return statement_latex(self._lhs_latex(), self.expr, self.definitions,
                               long_note="; see r.definitions")

    def _repr_markdown_(self) -> str:
        """What the result is, where it holds, the expression and its named quantities."""
        from ..export.notebook import result_markdown

        return result_markdown(name=self.name, regime=self.regime, order=self.order,
                               approximation=self.derivation.order, conditions=self.conditions, expr=self.expr,
                               definitions=self.definitions, domain=self.domain, steps=len(self.derivation),
                               lhs=self._lhs_latex())

    def __str__(self) -> str:
        return str(self.expr)
