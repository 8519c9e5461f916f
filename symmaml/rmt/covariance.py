r"""A deterministic covariance inside traces: ``X = G Sigma^{1/2}`` and functions of ``Sigma``.

A Gaussian matrix with a column covariance (:func:`~symmaml.rmt.gaussian_matrix` with
``covariance=Sigma``) has i.i.d. rows ``N(0, Sigma)``: ``E[X_ab X_cd] = delta_ac Sigma_bd``, the law of
``G Sigma^{1/2}`` with ``G`` standard.  Wick contraction then inserts ``Sigma`` where two copies of
``X`` are joined (rule :data:`COVARIANCE_CONTRACTION`), so no square root is ever written.

:class:`Covariance` is the matrix ``Sigma`` itself (symmetric, positive definite, deterministic);
:class:`CovarianceFunction` is ``h(Sigma)`` for a scalar function ``h`` (e.g. a resolvent
``(I + c Sigma)^{-1}``), a deterministic letter that commutes with ``Sigma``.  A trace of a word
made of such letters only is a normalised trace of one function of ``Sigma``:
``tr(h_1(Sigma) ... h_k(Sigma)) = d <h_1 ... h_k>_Sigma``, returned as spectral moments ``d s_j`` when
the product is a monomial (:mod:`symmaml.spectral`).  Results are thus stated in spectral moments
(and normalised traces of rational functions where no finite set of moments suffices).
"""
from __future__ import annotations

import sympy as sp
from sympy.core.symbol import Str

from ..derivation import Rule
from ..spectral import LAMBDA, SpectralMean, SpectralMoment

__all__ = ["Covariance", "CovarianceFunction", "COVARIANCE_CONTRACTION", "SPECTRAL_TRACE", "spectral_product",
           "as_function_of"]

COVARIANCE_CONTRACTION = Rule(
    name="Wick contraction with a covariance",
    statement=(r"\mathbb{E}[X_{ab}X_{cd}] = \delta_{ac}\Sigma_{bd}:\ "
               r"\mathbb{E}\,\mathrm{tr}(XQX^{\top}R) = \mathrm{tr}(\Sigma Q)\,\mathrm{tr}\,R,\ "
               r"\mathbb{E}\,\mathrm{tr}(XQXR) = \mathrm{tr}(Q^{\top}\Sigma R),\ "
               r"\mathbb{E}\,\mathrm{tr}(XQ)\,\mathrm{tr}(XR) = \mathrm{tr}(Q^{\top}\Sigma R)"),
    conditions=(r"X = G\Sigma^{1/2},\ G \text{ i.i.d. } \mathcal{N}(0,1),\ \Sigma \text{ deterministic}",),
    reference="Isserlis (1918) for the rows N(0, Sigma); Stein's lemma, one letter at a time",
)
SPECTRAL_TRACE = Rule(
    name="trace of a function of $\\Sigma$",
    statement=(r"\operatorname{tr}\big(h_1(\Sigma)\cdots h_k(\Sigma)\big) = p\,\langle h_1\cdots h_k\rangle_\Sigma,"
               r"\quad \langle \lambda^j\rangle_\Sigma = s_j = \operatorname{tr}(\Sigma^j)/p"),
    conditions=(r"\Sigma \text{ symmetric}, \ h_i(\Sigma) \text{ functions of } \Sigma \text{ (they commute)}",),
    reference="spectral theorem: tr f(Sigma) = sum_k f(lambda_k)",
)


class Covariance(sp.MatrixSymbol):
    """A deterministic symmetric positive-definite ``dim x dim`` matrix (a covariance), e.g. ``Sigma``.

    Its transpose is itself; ``moment(j)`` is ``s_j = tr(Sigma^j)/dim``; ``mean(h)`` is
    ``<h>_Sigma = tr h(Sigma)/dim``; ``function(h)`` is the matrix ``h(Sigma)``.
    """

    def __new__(cls, name, dim, cols=None):  # (name, dim, dim) when SymPy rebuilds it from its args
        if cols is not None and sp.sympify(cols) != sp.sympify(dim):
            raise ValueError(f"a covariance is square, got {dim} x {cols}")
        return super().__new__(cls, name, dim, dim)

    def __getnewargs__(self):
        return (self.name, self.shape[0])

    def doit(self, **hints):
        return self

    def _eval_transpose(self):
        return self

    @property
    def dim(self):
        return self.shape[0]

    @property
    def _dim_name(self) -> str:
        return str(self.dim)

    def moment(self, j: int):
        """``s_j = tr(Sigma^j)/dim`` (the number 1 for ``j = 0``)."""
        return SpectralMoment(j, self.name, self._dim_name)

    def mean(self, h, lam=None):
        """``<h>_Sigma = tr h(Sigma)/dim`` for ``h`` an expression in ``lam`` (default the spectral variable)."""
        return SpectralMean(h, lam if lam is not None else LAMBDA, self.name, self._dim_name)

    def function(self, h, lam=None, name: str | None = None):
        """The matrix ``h(Sigma)``: ``Sigma^j`` for a monomial, else a :class:`CovarianceFunction` letter."""
        lam = lam if lam is not None else LAMBDA
        body = sp.sympify(h).xreplace({lam: LAMBDA})
        coeff, dep = body.as_independent(LAMBDA, as_Add=False)
        if dep == 1:
            return coeff * sp.Identity(self.dim)
        base, exp = dep.as_base_exp()
        if base == LAMBDA and exp.is_Integer and exp > 0:
            return coeff * (self if exp == 1 else sp.MatPow(self, exp))
        if name is None:
            if base == LAMBDA and exp.is_Integer and coeff == 1:
                name = rf"{self.name}^{{{exp}}}"
            else:
                name = r"\left[%s\right]" % sp.latex(body.xreplace({LAMBDA: sp.Symbol(self.name)}))
        return CovarianceFunction(name, self, sp.Lambda(LAMBDA, body))


class CovarianceFunction(sp.MatrixSymbol):
    """The deterministic matrix ``h(Sigma)`` (symmetric, commutes with ``Sigma``), a letter of the engine.

    ``name`` is how it prints (LaTeX allowed); ``covariance`` is ``Sigma``; ``function`` the
    ``Lambda`` ``h``.
    """

    def __new__(cls, name, covariance, function, *rebuilt):
        if rebuilt:  # rebuilt by SymPy from its args (name, dim, dim, covariance, function)
            covariance, function = rebuilt
        if not isinstance(covariance, Covariance):
            raise TypeError(f"covariance must be a Covariance, got {type(covariance).__name__}")
        if not isinstance(function, sp.Lambda):
            raise TypeError("function must be a sympy Lambda of one variable")
        name = name if isinstance(name, Str) else Str(name)
        return sp.Basic.__new__(cls, name, covariance.dim, covariance.dim, covariance, function)

    def __getnewargs__(self):
        return (self.name, self.covariance, self.function)

    def doit(self, **hints):
        return self

    @property
    def shape(self):
        return self.args[1], self.args[2]

    @property
    def covariance(self) -> Covariance:
        return self.args[3]

    @property
    def function(self) -> sp.Lambda:
        return self.args[4]

    def _eval_transpose(self):
        return self


def spectral_product(letters) -> tuple:
    """``(covariance, h)`` for a sequence of :class:`Covariance` / :class:`CovarianceFunction` objects of
    one covariance, ``h`` the product of their functions in :data:`~symmaml.spectral.LAMBDA`; else None."""
    cov, body = None, sp.S.One
    for obj in letters:
        c = obj if isinstance(obj, Covariance) else getattr(obj, "covariance", None)
        if c is None or (cov is not None and c != cov):
            return None
        cov = c
        body *= LAMBDA if isinstance(obj, Covariance) else obj.function(LAMBDA)
    return (cov, body) if cov is not None else None


def as_function_of(matrix, covariance: Covariance):
    """The scalar function ``h`` (in :data:`~symmaml.spectral.LAMBDA`) with ``matrix = h(covariance)``.

    ``matrix`` is a sum of scalar multiples of products of the identity, the covariance, its powers
    and :class:`CovarianceFunction` letters (what the engine returns for a matrix-valued average);
    anything else raises ``ValueError``.
    """
    if isinstance(matrix, sp.MatAdd):
        return sp.Add(*(as_function_of(t, covariance) for t in matrix.args))
    if isinstance(matrix, sp.Identity):
        return sp.S.One
    if matrix == covariance:
        return LAMBDA
    if isinstance(matrix, CovarianceFunction) and matrix.covariance == covariance:
        return matrix.function(LAMBDA)
    if isinstance(matrix, sp.MatPow) and matrix.exp.is_Integer:
        return as_function_of(matrix.base, covariance) ** matrix.exp
    if isinstance(matrix, sp.MatMul):
        coeff, mats = matrix.as_coeff_matrices()
        return coeff * sp.Mul(*(as_function_of(x, covariance) for x in mats))
    if not isinstance(matrix, sp.MatrixExpr):
        return sp.sympify(matrix)
    raise ValueError(f"{matrix} is not a function of {covariance}")
