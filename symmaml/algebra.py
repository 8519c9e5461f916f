"""Deterministic factorisation.

SymPy's multivariate factorisation (Wang's algorithm) draws evaluation points from
``sympy.core.random.rng``, a generator seeded from OS entropy at import.  Its running time then
varies from process to process and with every earlier call: factoring the same 56 polynomials
took 22 s, 69 s or 202 s under three seeds.  :func:`factor` seeds that generator with a fixed
value around each call (and restores its state), so the cost of a derivation is the same in
every run.  The factorisation itself is unique, so results do not depend on the seed.
"""
from __future__ import annotations

from contextlib import contextmanager

import sympy as sp
import sympy.core.random as _sympy_random

__all__ = ["factor", "factor_list", "SEED"]

SEED = 0
"""The seed of SymPy's generator during a factorisation (chosen as the fastest of three on
this project's polynomials)."""


@contextmanager
def _seeded():
    """SymPy's random generator seeded with :data:`SEED` inside the block, its state restored after."""
    state = _sympy_random.rng.getstate()
    _sympy_random.seed(SEED)
    try:
        yield
    finally:
        _sympy_random.rng.setstate(state)


def factor(expr, *args, **kwargs):
    """``sympy.factor`` with SymPy's random generator seeded with :data:`SEED` (state restored)."""
    with _seeded():
        return sp.factor(expr, *args, **kwargs)


def factor_list(expr, *args, **kwargs):
    """``sympy.factor_list``, seeded like :func:`factor`."""
    with _seeded():
        return sp.factor_list(expr, *args, **kwargs)
