"""Deterministic factorisation.

SymPy's multivariate factorisation (Wang's algorithm) draws evaluation points from
``sympy.core.random.rng``, a generator seeded from OS entropy at import.  Its running time then
varies from process to process and with every earlier call: factoring the same 56 polynomials
took 22 s, 69 s or 202 s under three seeds.  :func:`factor` seeds that generator with a fixed
value around each call (and restores its state), so the cost of a derivation is the same in
every run.  The factorisation itself is unique, so results do not depend on the seed.
"""
from __future__ import annotations

import sympy as sp
import sympy.core.random as _sympy_random

__all__ = ["factor", "factor_list", "SEED"]

SEED = 0
"""The seed of SymPy's generator during a factorisation (chosen as the fastest of three on
this project's polynomials)."""


def factor(expr, *args, **kwargs):
    """``sympy.factor`` with SymPy's random generator seeded with :data:`SEED` (state restored)."""
    state = _sympy_random.rng.getstate()
    _sympy_random.seed(SEED)
    try:
        return sp.factor(expr, *args, **kwargs)
    finally:
        _sympy_random.rng.setstate(state)


def factor_list(expr, *args, **kwargs):
    """``sympy.factor_list``, seeded like :func:`factor`."""
    state = _sympy_random.rng.getstate()
    _sympy_random.seed(SEED)
    try:
        return sp.factor_list(expr, *args, **kwargs)
    finally:
        _sympy_random.rng.setstate(state)
