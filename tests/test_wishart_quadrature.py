"""Averages over one eigenvalue of a Wishart matrix (symmaml/rmt/wishart_quadrature.py).

The Gauss rule is checked against the engine's exact moments (it must integrate polynomials of degree
< 2N exactly), the resolvent averages against sampled eigenvalues and against a larger rule, the root
against its equation, and the closed forms at s = 0 symbolically.
"""
import mpmath
import numpy as np
import pytest
import sympy as sp

from symmaml.rmt import wishart_quadrature as wq
from symmaml.rmt.wishart_quadrature import (WishartResolventMean, WishartResolventRoot, gauss_rule,
                                            resolvent_mean_mpmath, resolvent_mean_numpy, resolvent_root_mpmath,
                                            resolvent_root_numpy, support_moments)


@pytest.mark.parametrize("n, p", [(5, 30), (7, 4)])
def test_gauss_rule_is_exact_on_polynomials(n, p):
    """The 12-node rule reproduces the engine's moments E tr W^j / min(n, p), j < 24, to 1e-20 (at 30
    digits); nodes positive and increasing, weights positive and summing to 1."""
    x, w = gauss_rule(n, p, 12)
    mu = support_moments(n, p, 24)
    assert all(a > 0 for a in w) and all(0 < a < b for a, b in zip(x, x[1:]))
    with mpmath.workdps(30):
        for j, exact in enumerate(mu):
            value = mpmath.fsum(wi * xi**j for xi, wi in zip(x, w))
            assert abs(value / (mpmath.mpf(exact.numerator) / exact.denominator) - 1) < 1e-20, j


def test_support_moments_known_values():
    """E tr W = n p and E tr W^2 = n p (n + p + 1) (real Wishart), divided by min(n, p)."""
    mu = support_moments(5, 30, 3)
    assert mu[1] == 30 and mu[2] == 30 * 36


def _sampled_eigenvalues(n, p, tasks, seed):
    X = np.random.default_rng(seed).standard_normal((tasks, min(n, p), max(n, p)))
    return np.linalg.eigvalsh(X @ X.transpose(0, 2, 1))


@pytest.mark.parametrize("n, p, j, e, k, s, u", [(5, 30, 4, 1, 2, 0.06, 0.03), (5, 30, 6, 2, 3, -0.06, 0.01),
                                                 (7, 4, 1, 1, 2, 0.05, 0.2)])
def test_resolvent_mean_against_sampled_eigenvalues(n, p, j, e, k, s, u):
    """Against 40,000 sampled Wishart matrices (their eigenvalues, averaged per matrix): within 4 s.e.
    A wrong law fails: the same average over the eigenvalues of W/2 (half the scale) is off by far more."""
    lam = _sampled_eigenvalues(n, p, 40_000, seed=7)

    def f(x):
        a = 1 - s * x
        return (a**j / (1 + u * a ** (2 * k)) ** e).mean(axis=1)

    draws = f(lam)
    mean, se = draws.mean(), draws.std(ddof=1) / np.sqrt(draws.size)
    value = resolvent_mean_numpy(j, e, k, s, u, n, p)
    assert abs(value - mean) < 4 * se, (value, mean, se)
    assert abs(f(lam / 2).mean() - value) > 20 * se


def test_numpy_mpmath_and_more_nodes_agree():
    """float64, mpmath (same rules) and an 18-node rule agree (the 20-node rule's error is what RTOL bounds)."""
    s, u = 0.06, 0.0184
    value = resolvent_mean_numpy(8, 2, 2, s, u, 5, 30)
    with mpmath.workdps(30):
        precise = resolvent_mean_mpmath(8, 2, 2, mpmath.mpf(s), mpmath.mpf(u), 5, 30)
    assert value == pytest.approx(float(precise), rel=1e-13)
    x, w = wq.float_rule(5, 30, 18)
    a = 1 - s * x
    assert value == pytest.approx(float(w @ (a**8 / (1 + u * a**4) ** 2)), rel=1e-5)


def test_vectorised_and_sizes_as_arrays():
    s = np.array([[0.02, -0.04], [0.06, 0.0]])
    out = resolvent_mean_numpy(2, 1, 2, s, 0.03, 5, 30)
    assert out.shape == (2, 2)
    for idx in np.ndindex(2, 2):
        assert out[idx] == pytest.approx(resolvent_mean_numpy(2, 1, 2, float(s[idx]), 0.03, 5, 30), rel=1e-14)
    both = resolvent_mean_numpy(2, 1, 2, 0.02, 0.03, np.array([5, 7]), np.array([30, 4]))
    assert both[1] == pytest.approx(resolvent_mean_numpy(2, 1, 2, 0.02, 0.03, 7, 4), rel=1e-14)


def test_root_solves_its_equation():
    k, b, c, t = 2, 25.0, 5.0, 0.75
    s = np.array([-0.1, -0.06, 0.0, 0.06, 0.1])
    u = resolvent_root_numpy(k, s, b, c, t, 5, 30)
    lhs = b * u / (1 + u) + c * u * resolvent_mean_numpy(2 * k, 1, k, s, u, 5, 30)
    np.testing.assert_allclose(lhs, t, rtol=1e-12)
    assert u[2] == pytest.approx(t / (b + c - t), rel=1e-14)
    with mpmath.workdps(30):
        assert float(resolvent_root_mpmath(k, mpmath.mpf("0.06"), b, c, t, 5, 30)) == pytest.approx(u[3], rel=1e-12)


def test_outside_the_domain_is_nan():
    """No root (t >= b + c), sizes that are not positive integers, and an average the rules do not resolve
    (five steps, a broad inner step: the 16- and 20-node rules differ by 3%) are NaN, not a number."""
    assert np.isnan(resolvent_root_numpy(2, 0.05, 1.0, 1.0, 2.5, 5, 30))
    assert np.isnan(resolvent_mean_numpy(2, 1, 2, 0.05, 0.03, 5.5, 30))
    assert np.isnan(resolvent_mean_numpy(0, 2, 5, 0.06, 0.0027, 5, 30))
    assert mpmath.isnan(resolvent_mean_mpmath(0, 2, 5, mpmath.mpf("0.06"), mpmath.mpf("0.0027"), 5, 30))


def test_closed_forms_at_s_zero_and_latex():
    u, s, t = sp.symbols("u s t", positive=True)
    assert WishartResolventMean(3, 2, 2, 0, u, 5, 30) == (1 + u) ** -2
    assert WishartResolventRoot(2, 0, 25, 5, t, 5, 30) == t / (30 - t)
    assert isinstance(WishartResolventMean(3, 2, 2, s, u, 5, 30), WishartResolventMean)
    tex = sp.latex(WishartResolventMean(3, 2, 2, s, u, 5, 30))
    assert tex.startswith(r"\mathbb{E}_{\lambda}") and r"\left(1 - s\,\lambda\right)^{4}" in tex
    assert "u^\\star" in sp.latex(WishartResolventRoot(2, s, 25, 5, t, 5, 30))
    value = sp.N(WishartResolventMean(4, 1, 2, sp.Rational(6, 100), sp.Rational(3, 100), 5, 30), 20)
    assert float(value) == pytest.approx(resolvent_mean_numpy(4, 1, 2, 0.06, 0.03, 5, 30), rel=1e-13)
