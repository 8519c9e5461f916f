"""Deterministic factorisation: same result as SymPy, SymPy's random state untouched."""
import sympy as sp
import sympy.core.random as sympy_random

from symmaml.algebra import factor, factor_list


def test_factor_is_sympy_factor_and_restores_the_random_state():
    x, y, z = sp.symbols("x y z")
    poly = sp.expand((x + 2 * y - z) * (x * y + z**2 + 3) * (y - z + 1) ** 2)
    sympy_random.seed(123)
    state = sympy_random.rng.getstate()
    assert factor(poly) == sp.factor(poly) and factor_list(poly) == sp.factor_list(poly)
    sympy_random.seed(123)
    factor(poly)
    assert sympy_random.rng.getstate() == state
