"""Univariate rational functions (symmaml.export.rational) and the numeric path that uses them."""
from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from symmaml.export import numeric as numeric_module
from symmaml.export.numeric import numeric_function
from symmaml.export.rational import Rational, evaluate
from symmaml.symbols import alpha_t, m, n_t, n_v, p, sigma

X = sp.Symbol("x")


def test_arithmetic_against_sympy():
    """A rational expression run on ``Rational.variable()`` equals SymPy's value of it, to rounding; the
    shared factor ``x - 2`` is registered once."""
    expr = (3 * X**2 + 1) / (X - 2) + 1 / (X - 2) ** 2 - (X + 5) / (2 * X**2 + 2 * X + 1) * X**3
    fn = sp.lambdify(X, expr, modules="math")
    r = fn(Rational.variable())
    xs = np.linspace(-3, 5, 101)
    xs = xs[np.abs(xs - 2) > 1e-3]
    np.testing.assert_allclose(evaluate(r, xs), sp.lambdify(X, expr, "numpy")(xs), rtol=1e-12)
    assert len(r.table.polys) == 2
    assert r.degrees[1] == 4  # (x - 2)^2 (x^2 + x + 1/2)


def test_powers_reciprocals_and_zero():
    x = Rational.variable()
    r = (x + 1) ** -2 * (x + 1) ** 3
    assert evaluate(r, 2.0) == pytest.approx(3.0, rel=1e-15)
    with pytest.raises(ZeroDivisionError):
        (x - x).reciprocal()
    assert x.__pow__(0.5) is NotImplemented  # x ** 0.5 raises TypeError: not a rational function


coefficient = st.integers(-5, 5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(coefficient, coefficient, coefficient), min_size=1, max_size=4),
       st.floats(-4, 4))
def test_random_sums_of_fractions(terms, x0):
    """``sum_k a_k / (x^2 + b_k x + 5 + c_k^2)`` (denominators without real roots) against exact arithmetic."""
    expr = sum(sp.Integer(a) / (X**2 + b * X + 5 + c**2) for a, b, c in terms)
    r = sp.lambdify(X, expr, modules="math")(Rational.variable())
    want = float(expr.subs(X, sp.Float(x0, 30)))
    got = evaluate(r, x0) if isinstance(r, Rational) else float(r)  # a zero sum is the number 0
    assert got == pytest.approx(want, rel=1e-11, abs=1e-13)


def test_nonlinear_result_on_a_grid_matches_mpmath():
    """The algebraic kernel-limit result over a grid of 10^4 rates goes through its rational function (built
    once for the scalars); at 25 of the points it equals the mpmath backend (40 digits) to 1e-9 relative,
    over alpha_t in [-20, 5], including the steep region.  The operation-by-operation path agrees too."""
    from symmaml.nonlinear.theory import average_test_loss

    r = average_test_loss()
    f = r.numeric()
    fm = r.numeric(backend="mpmath", dps=40)
    point = dict(d=40, m=4, n_t=10, n_v=2, n_r=10, alpha_r=0.5, sigma=0.3, nu=0.5, beta=0.5)
    grid = np.linspace(-20, 5, 10_000)
    fast = f(**point, alpha_t=grid)
    assert any(isinstance(v, Rational) for v in f._rationals.values())
    idx = np.linspace(0, grid.size - 1, 25).astype(int)
    want = np.array([float(fm(**point, alpha_t=mpmath.mpf(float(grid[i])))) for i in idx])
    np.testing.assert_allclose(fast[idx], want, rtol=1e-9)
    direct = f(**point, alpha_t=grid[idx])  # fewer points than RATIONAL_MIN_POINTS: term by term
    np.testing.assert_allclose(direct, want, rtol=1e-9)


def test_linear_leading_result_uses_it_and_agrees():
    from symmaml.maml import average_test_loss

    f = average_test_loss("over", "leading").numeric()
    point = dict(p=60, m=10, n_t=30, n_v=5, n_r=30, alpha_r=0.2, sigma=0.2, nu=0.2, dist0=1.0)
    grid = np.linspace(-3, 3, 2001)
    fast = f(**point, alpha_t=grid)
    assert f._rationals
    direct = np.array([f(**point, alpha_t=float(a)) for a in grid[::50]])
    np.testing.assert_allclose(fast[::50], direct, rtol=1e-12)


def test_a_rational_function_that_disagrees_is_not_used(monkeypatch):
    """When the check at the sample points fails, the grid is evaluated operation by operation."""
    f = numeric_function(sigma**2 / (1 + alpha_t**2) + p / (m * n_v + n_t))
    point = dict(p=40, m=2, n_t=3, n_v=5, n_r=4, alpha_r=0.1, sigma=0.5, nu=0.1, dist0=1.0)
    grid = np.linspace(-2, 2, 1000)
    want = 0.25 / (1 + grid**2) + 40 / 13
    monkeypatch.setattr(numeric_module, "RATIONAL_RTOL", -1.0)  # no agreement is good enough
    np.testing.assert_allclose(f(**point, alpha_t=grid), want, rtol=1e-15)
    assert all(isinstance(v, Rational) for v in f._rationals.values())
