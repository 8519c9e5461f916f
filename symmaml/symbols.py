"""The canonical symbols of symmaml (see ``shared/spec/model.md``).

One module holds every symbol of the model so that every derivation, exporter and
numeric function speaks the same names.  Code names are the spec's code names; the
LaTeX names live in :data:`LATEX_NAMES` and are handed to SymPy's printer.
"""
from __future__ import annotations

import sympy as sp

__all__ = [
    "p", "m", "n_t", "n_v", "n_r", "alpha_t", "alpha_r", "sigma", "nu", "dist0",
    "SIZES", "RATES", "SCALES", "PARAMETERS", "LATEX_NAMES", "by_name",
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
}


def by_name(name: str) -> sp.Symbol:
    """The canonical symbol whose code name is ``name``."""
    for s in PARAMETERS:
        if s.name == name:
            return s
    raise KeyError(f"unknown parameter {name!r}; known: {', '.join(s.name for s in PARAMETERS)}")
