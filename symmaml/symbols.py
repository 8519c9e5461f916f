"""The canonical symbols of symmaml (see ``shared/spec/model.md``).

One module holds every symbol of the model so that every derivation, exporter and
numeric function speaks the same names.  Code names are the spec's code names; the
LaTeX names live in :data:`LATEX_NAMES` and are handed to SymPy's printer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from .spectral import SpectrumInput

__all__ = [
    "p", "m", "n_t", "n_v", "n_r", "alpha_t", "alpha_r", "sigma", "nu", "dist0", "d", "beta",
    "SIZES", "RATES", "SCALES", "PARAMETERS", "LATEX_NAMES", "by_name",
    "ParameterSet", "LINEAR", "LINEAR_ANISOTROPIC", "NONLINEAR", "SPECTRUM",
]

# sizes: positive integers
p = sp.Symbol("p", integer=True, positive=True)
m = sp.Symbol("m", integer=True, positive=True)
n_t = sp.Symbol("n_t", integer=True, positive=True)
n_v = sp.Symbol("n_v", integer=True, positive=True)
n_r = sp.Symbol("n_r", integer=True, positive=True)

# learning rates: any real number (negative rates are the point of the paper)
alpha_t = sp.Symbol("alpha_t", real=True)
alpha_r = sp.Symbol("alpha_r", real=True)

# noise and task-variability scales, and |omega0 - w0|^2
sigma = sp.Symbol("sigma", nonnegative=True)
nu = sp.Symbol("nu", nonnegative=True)
dist0 = sp.Symbol("dist0", nonnegative=True)

# nonlinear regression (a two-layer network on y = (w.x + b)^2 + z): input dimension and the
# standard deviation of the task offset b
d = sp.Symbol("d", integer=True, positive=True)
beta = sp.Symbol("beta", nonnegative=True)

SIZES = (p, m, n_t, n_v, n_r)
RATES = (alpha_t, alpha_r)
SCALES = (sigma, nu, dist0)
#: Every parameter of an averaged result, in the order numeric functions list them.
PARAMETERS = SIZES + RATES + SCALES

LATEX_NAMES = {
    p: "p",
    m: "m",
    n_t: "n_t",
    n_v: "n_v",
    n_r: "n_r",
    alpha_t: r"\alpha_t",
    alpha_r: r"\alpha_r",
    sigma: r"\sigma",
    nu: r"\nu",
    dist0: r"\lVert \omega_0 - w_0 \rVert^2",
    d: "d",
    beta: r"\beta",
}


def by_name(name: str) -> sp.Symbol:
    """The canonical symbol whose code name is ``name``."""
    for s in PARAMETERS + (d, beta):
        if s.name == name:
            return s
    raise KeyError(f"unknown parameter {name!r}; known: {', '.join(s.name for s in PARAMETERS + (d, beta))}")


@dataclass(frozen=True)
class ParameterSet:
    """The parameters a family of results is a function of, in the order numeric functions list them.

    Each symbol's kind follows from its assumptions: a positive integer is a *size*, a real symbol
    that may be negative a *rate* (any finite number), a non-negative one a *scale* (finite, >= 0).
    ``defaults`` maps code names to default values (e.g. ``dist0 = 0``).  ``derived`` lists derived
    inputs: keyword arguments that are not symbols but fix some (e.g. ``spectrum``, a sequence of
    eigenvalue levels, fixes the spectral moments of ``Sigma``; see :class:`symmaml.spectral.SpectrumInput`
    for the protocol).
    """

    symbols: tuple
    defaults: dict = field(default_factory=dict, hash=False, compare=False)
    derived: tuple = ()

    @property
    def names(self) -> tuple:
        return tuple(s.name for s in self.symbols)

    def kind(self, name: str) -> str:
        s = self.symbol(name)
        if s.is_integer and s.is_positive:
            return "size"
        if s.is_nonnegative:
            return "scale"
        return "rate"

    def symbol(self, name: str) -> sp.Symbol:
        for s in self.symbols:
            if s.name == name:
                return s
        raise KeyError(f"unknown parameter {name!r}; known: {', '.join(self.names)}")

    @property
    def sizes(self) -> frozenset:
        return frozenset(n for n in self.names if self.kind(n) == "size")

    @property
    def rates(self) -> frozenset:
        return frozenset(n for n in self.names if self.kind(n) == "rate")

    @property
    def scales(self) -> frozenset:
        return frozenset(n for n in self.names if self.kind(n) == "scale")


#: the parameters of mixed linear regression (``shared/spec/model.md``)
LINEAR = ParameterSet(PARAMETERS, {"dist0": 0.0})
#: ``spectrum=``: eigenvalue levels of the input covariance Sigma, each with an equal share of the p
#: directions; fixes its spectral moments ``s_j = tr(Sigma^j)/p`` and normalised traces ``<h>_Sigma``
SPECTRUM = SpectrumInput("spectrum")
#: mixed linear regression with anisotropic inputs x ~ N(0, Sigma): the same parameters and ``spectrum``
LINEAR_ANISOTROPIC = ParameterSet(PARAMETERS, {"dist0": 0.0}, derived=(SPECTRUM,))
#: the parameters of nonlinear regression with a two-layer network in its kernel limit
NONLINEAR = ParameterSet((d, m, n_t, n_v, n_r, alpha_t, alpha_r, sigma, nu, beta))
