"""A derived result: the expression, how it was derived, where it holds, and its outputs."""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from ..derivation import Derivation
from ..symbols import LINEAR, ParameterSet

__all__ = ["Result"]


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

        key = (backend, tuple(sorted(options.items())))
        cache = self.__dict__.setdefault("_numeric_cache", {})  # building one costs up to a second
        if key not in cache:
            cache[key] = numeric_function(self.expr, backend=backend, conditions=self.conditions,
                                          ignore=self.ignored, name=f"{self.name} ({self.regime}, {self.order})",
                                          definitions=self.definitions, domain=self.domain,
                                          parameters=self.parameter_set, **options)
        return cache[key]

    def _repr_latex_(self) -> str:
        from ..export.latex import expr_latex

        return f"$\\displaystyle {expr_latex(self.expr)}$"

    def __str__(self) -> str:
        return str(self.expr)
