"""Tests of symmaml.special: the SymPy function SpectralIntegral and its numeric implementations.

The float64 quadrature is checked against mpmath.quad at 30 digits on seeded random points of
the domain used by symmaml (decay exponent (w1 + w2)/2 - k >= 3/2, x in [1e-3, 1e4]), against
the closed forms (coincident nodes, a zero weight, and w1 = w2 = 2, k = 0), and through
``sympy.lambdify`` with the module dictionaries NUMPY, MATH and MPMATH.
"""
from __future__ import annotations

import math
import warnings

import mpmath
import numpy as np
import sympy as sp

from symmaml.special import (
    MATH, MPMATH, NUMPY, SpectralIntegral, spectral_integral_float, spectral_integral_mpmath,
    spectral_integral_numpy,
)

TOL = 1e-11  # relative, float64 against 30-digit mpmath (the measured worst case is ~1e-13)


def _domain_points(n: int, seed: int) -> np.ndarray:
    """Seeded points (x1, x2, w1, w2, k) as symmaml uses them: k = (n_v - 1)/2, w1 + w2 = r
    an integer >= n_v + 2, tiny or large w1, x in [1e-3, 1e4] with ratios up to 1e4 and beyond."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        nv = int(rng.integers(1, 31))
        k = (nv - 1) / 2
        r = nv + 2 + (0 if i % 3 == 0 else int(rng.integers(0, 60)))  # every third: exponent 3/2
        frac = (10 ** rng.uniform(-3, -1), rng.uniform(0, 1), 1 - 10 ** rng.uniform(-3, -1))[i % 3]
        w1 = r * frac
        if i % 2:
            x1, x2 = 10 ** rng.uniform(-3, 4, 2)
        else:
            lr = rng.uniform(-4, 4)
            x1 = 10 ** rng.uniform(max(-3, -3 - lr), min(4, 4 - lr))
            x2 = x1 * 10 ** lr
        rows.append((x1, x2, w1, r - w1, k))
    rows[0] = (1e-3, 10.0, 2.4, 28.6, 14.0)        # small w1, x2/x1 = 1e4, decay exponent 3/2
    rows[1] = (1e4, 1.0, 2.4, 28.6, 13.5)          # x1/x2 = 1e4, decay exponent 2
    rows[2] = (3.0, 5e-3, 1e-3, 12.999, 5.0)       # w1 -> 0, decay exponent 3/2
    return np.array(rows)


def _mp(*args):
    with mpmath.workdps(30):
        return spectral_integral_mpmath(*args)


# -- the SymPy function --------------------------------------------------------------------
def test_closed_form_coincident_nodes():
    x, w1, w2, k = sp.symbols("x w1 w2 k", positive=True)
    J = SpectralIntegral(x, x, w1, w2, k)
    assert not isinstance(J, SpectralIntegral)
    assert sp.simplify(J - 1 / (x * (w1 + w2 - 2 * k - 2))) == 0
    assert SpectralIntegral(2, 2, 3, 4, 1) == sp.Rational(1, 6)
    assert SpectralIntegral(2, 2.0, 3, 4, 1) == sp.Rational(1, 6)


def test_closed_form_zero_weight():
    x1, x2, w1, w2, k = sp.symbols("x1 x2 w1 w2 k", positive=True)
    assert sp.simplify(SpectralIntegral(x1, x2, w1, 0, k) - 1 / (x1 * (w1 - 2 * k - 2))) == 0
    assert sp.simplify(SpectralIntegral(x1, x2, 0, w2, k) - 1 / (x2 * (w2 - 2 * k - 2))) == 0
    J = SpectralIntegral(x1, x2, w1, w2, k)
    assert isinstance(J, SpectralIntegral) and J.args == (x1, x2, w1, w2, k)
    # provably divergent: stays unevaluated rather than giving a negative number
    assert isinstance(SpectralIntegral(1, 1, 2, 2, 1), SpectralIntegral)


def test_closed_form_derivation_by_quadrature():
    """1/(x (W - 2k - 2)) is the integral of (1 + 2 s x)^-(W/2 - k), checked by mpmath.quad."""
    for x, W, k in [(0.7, 7.0, 1.5), (30.0, 4.5, 0.0), (1e-3, 40.0, 12.0)]:
        with mpmath.workdps(30):
            direct = mpmath.quad(lambda s: (1 + 2 * s * x) ** (-(W / 2 - k)), [0, 1 / x, mpmath.inf])
        assert abs(direct * x * (W - 2 * k - 2) - 1) < 1e-25


def test_evalf():
    J = SpectralIntegral(sp.Rational(1, 3), 7, sp.Rational(5, 2), 9, 2)
    assert isinstance(J, SpectralIntegral)
    v = J.evalf(30)
    assert isinstance(v, sp.Float)
    assert abs(float(v) / spectral_integral_numpy(1 / 3, 7.0, 2.5, 9.0, 2.0) - 1) < TOL


def test_latex():
    xp, xm, wp, wm = sp.symbols("x_+ x_- w_+ w_-", positive=True)
    n_v = sp.Symbol("n_v", positive=True, integer=True)
    tex = sp.latex(SpectralIntegral(xp, xm, wp, wm, (n_v - 1) / 2))
    assert r"\int" in tex and r"\infty" in tex and r"\, ds" in tex
    assert tex.count(r"\left(") == tex.count(r"\right)")
    # an argument that is a sum is parenthesised; a free symbol s renames the variable
    s = sp.Symbol("s")
    tex2 = sp.latex(SpectralIntegral(xp + s, xm, wp, wm, 1))
    assert r"\, dt" in tex2 and r"\left(s + x_{+}\right)" in tex2


# -- float64 quadrature ---------------------------------------------------------------------
def test_numpy_coincident_nodes_closed_form():
    x = np.array([1e-3, 0.37, 2.0, 5e3])
    w1, w2, k = 2.4, 28.6, 7.0
    closed = 1 / (x * (w1 + w2 - 2 * k - 2))
    assert np.allclose(spectral_integral_numpy(x, x, w1, w2, k), closed, rtol=1e-12, atol=0)
    # nearly coincident nodes go through the quadrature: J is smooth there
    near = spectral_integral_numpy(x, x * (1 + 1e-13), w1, w2, k)
    assert np.max(np.abs(near / closed - 1)) < 1e-12
    # one weight zero
    assert np.allclose(spectral_integral_numpy(x, 3.0, w2, 0.0, 0.5), 1 / (x * (w2 - 3)), rtol=1e-12, atol=0)
    assert np.allclose(spectral_integral_numpy(3.0, x, 0.0, w2, 0.5), 1 / (x * (w2 - 3)), rtol=1e-12, atol=0)


def test_numpy_against_mpmath():
    pts = _domain_points(50, seed=20240611)
    got = spectral_integral_numpy(*pts.T)
    ref = np.array([float(_mp(*row)) for row in pts])
    rel = np.abs(got / ref - 1)
    assert rel.max() < TOL, (rel.max(), pts[np.argmax(rel)])


def test_w_equal_two_k_zero_closed_form():
    """w1 = w2 = 2, k = 0: J = int ds/((1 + 2 s x1)(1 + 2 s x2)) = ln(x1/x2) / (2 (x1 - x2))."""
    rng = np.random.default_rng(7)
    x1 = 10 ** rng.uniform(-3, 4, 200)
    x2 = x1 * 10 ** rng.uniform(-4, 4, 200)
    closed = np.log(x1 / x2) / (2 * (x1 - x2))
    got = spectral_integral_numpy(x1, x2, 2.0, 2.0, 0.0)
    assert np.max(np.abs(got / closed - 1)) < TOL
    for a, b in [(1e-3, 10.0), (1e4, 1.0), (0.5, 0.25)]:
        with mpmath.workdps(30):
            exact = mpmath.log(mpmath.mpf(a) / b) / (2 * (mpmath.mpf(a) - b))
            assert abs(_mp(a, b, 2, 2, 0) / exact - 1) < 1e-25


def test_slow_decay():
    """Decay exponent d = (w1 + w2)/2 - k in (1, 3/2), outside symmaml's use: the slow tail is
    subtracted (one-node integrand) and added back in closed form."""
    rows = [(0.01, 50.0, 3.0, 2.7, 1.8), (1e4, 1e-3, 0.5, 8.0, 3.2), (2.0, 3.0, 7.0, 13.1, 9.0),
            (0.3, 0.2, 1.0, 1.4, 0.15)]
    for row in rows:
        d = (row[2] + row[3]) / 2 - row[4]
        assert 1 < d < 1.5
        got = spectral_integral_numpy(*row)
        assert abs(got / float(_mp(*row)) - 1) < 1e-10, row


def test_numpy_broadcasting_and_scalars():
    x1 = np.linspace(0.1, 3.0, 6).reshape(2, 3)
    out = spectral_integral_numpy(x1, 0.4, np.array([[1.5], [2.5]]), 11.0, 2.0)
    assert out.shape == (2, 3) and out.dtype == np.float64
    direct = np.array([[spectral_integral_float(a, 0.4, w, 11.0, 2.0) for a, w in zip(row, (wr,) * 3)]
                       for row, wr in zip(x1, (1.5, 2.5))])
    assert np.allclose(out, direct, rtol=1e-14, atol=0)
    v = spectral_integral_numpy(0.3, 2.0, 3.0, 4.0, 1.0)
    assert isinstance(v, np.floating) and np.ndim(v) == 0
    assert isinstance(spectral_integral_float(0.3, 2.0, 3.0, 4.0, 1.0), float)


def test_nan_outside_domain_without_warnings():
    bad = [
        (-1.0, 2.0, 3.0, 4.0, 0.0),     # x1 < 0
        (1.0, 0.0, 3.0, 4.0, 0.0),      # x2 = 0
        (1.0, 2.0, 3.0, 1.0, 1.0),      # decay exponent (w1 + w2)/2 - k = 1
        (1.0, 2.0, -1.0, 9.0, 0.0),     # negative weight
        (1.0, 2.0, 0.0, 0.0, 0.0),      # no weight
        (1.0, 2.0, 3.0, 9.0, -0.5),     # k < 0
        (np.inf, 2.0, 3.0, 9.0, 1.0),   # not finite
        (1.0, 2.0, np.nan, 9.0, 1.0),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = spectral_integral_numpy(*np.array(bad).T)
        assert np.isnan(got).all()
        assert all(math.isnan(spectral_integral_float(*row)) for row in bad)
    for row in bad:
        assert mpmath.isnan(spectral_integral_mpmath(*row))
    # valid points next to invalid ones are unaffected
    mixed = spectral_integral_numpy(np.array([-1.0, 1.0]), 2.0, 3.0, 4.0, 0.0)
    assert np.isnan(mixed[0])
    assert math.isclose(mixed[1], spectral_integral_float(1.0, 2.0, 3.0, 4.0, 0.0), rel_tol=1e-14)


def test_large_input_is_chunked():
    n = 100_000
    rng = np.random.default_rng(3)
    x1 = 10 ** rng.uniform(-3, 4, n)
    out = spectral_integral_numpy(x1, 1.0, 2.4, 28.6, 6.5)
    assert out.shape == (n,) and np.isfinite(out).all()
    idx = rng.choice(n, 3, replace=False)
    for i in idx:
        assert abs(out[i] / float(_mp(x1[i], 1.0, 2.4, 28.6, 6.5)) - 1) < TOL


# -- lambdify --------------------------------------------------------------------------------
def test_lambdify_numpy_cse():
    a, b, c, d, e = sp.symbols("a b c d e", positive=True)
    expr = 2 * SpectralIntegral(a, b, c, d, e)
    f = sp.lambdify((a, b, c, d, e), expr, modules=[NUMPY, "numpy"], cse=True)
    rng = np.random.default_rng(11)
    A = 10 ** rng.uniform(-2, 2, 20)
    B = 10 ** rng.uniform(-2, 2, 20)
    assert np.array_equal(f(A, B, 3.0, 9.0, 2.0), 2 * spectral_integral_numpy(A, B, 3.0, 9.0, 2.0))
    # arguments that are expressions of the array symbols, a shared subexpression for CSE
    expr2 = SpectralIntegral(a + b, b, 2 * c, d, (e - 1) / 2) + 1 / (a + b)
    g = sp.lambdify((a, b, c, d, e), expr2, modules=[NUMPY, "numpy"], cse=True)
    want = spectral_integral_numpy(A + B, B, 6.0, 9.0, 1.5) + 1 / (A + B)
    assert np.allclose(g(A, B, 3.0, 9.0, 4.0), want, rtol=1e-15, atol=0)


def test_lambdify_math_and_mpmath():
    a, b, c, d, e = sp.symbols("a b c d e", positive=True)
    expr = 2 * SpectralIntegral(a, b, c, d, e)
    args = (0.3, 40.0, 2.4, 28.6, 10.0)
    f_math = sp.lambdify((a, b, c, d, e), expr, modules=[MATH, "math"], cse=True)
    v = f_math(*args)
    assert isinstance(v, float) and v == 2 * spectral_integral_float(*args)
    f_mp = sp.lambdify((a, b, c, d, e), expr, modules=[MPMATH, "mpmath"], cse=True)
    with mpmath.workdps(30):
        w = f_mp(*(mpmath.mpf(x) for x in args))
        assert isinstance(w, mpmath.mpf)
        assert abs(w - 2 * spectral_integral_mpmath(*args)) < mpmath.mpf(10) ** -28 * abs(w)
    assert abs(float(w) / v - 1) < TOL
