"""symmaml.rmt against Monte Carlo simulation (numpy), with a z-score tolerance.

Tolerance, stated once: every simulated mean must satisfy |mc - exact| <= 5 standard errors of the
MC mean (SE = sample standard deviation / sqrt(N)), entry by entry.  The generator is seeded, so a
run is deterministic and cannot flake; the seed is not tuned either: for a correct formula a fresh
seed fails one comparison with probability about 6e-7 (two-sided normal tail at 5 sigma; the
sample sizes, 20 000-40 000, make the CLT accurate for these polynomial statistics), while the
sample sizes make a wrong coefficient (a relative error of a few percent) fail by many SEs.
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from symmaml.rmt import (
    NotAveragable, expectation, expected_projection, gaussian_matrix, gaussian_vector,
    inverse_wishart_moment, inverse_wishart_second_moments,
)

n, p = sp.symbols("n p", positive=True, integer=True)
a, s = sp.symbols("a s", real=True)
Z_TOL = 5.0


def assert_mc(samples, exact, label=""):
    """|mean - exact| <= 5 SE for every entry (samples: array of shape (N, ...))."""
    samples = np.asarray(samples, dtype=float)
    exact = np.broadcast_to(np.asarray(exact, dtype=float), samples.shape[1:])
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    z = np.abs(mean - exact) / np.maximum(se, 1e-300)
    ok = np.abs(mean - exact) <= Z_TOL * se + 1e-12 * np.maximum(1.0, np.abs(exact))
    assert ok.all(), f"{label}: max z = {z.max():.2f}, mc = {mean}, exact = {exact}"


def numeric_matrix(expr, subs: dict, mats: dict, size: int):
    """A symbolic matrix result evaluated at numbers (``mats`` maps MatrixSymbols to arrays)."""
    expr = expr.xreplace({k: sp.ImmutableMatrix(v) for k, v in mats.items()})
    expr = expr.xreplace(subs).doit()
    return np.array(sp.Matrix(expr.as_explicit()).evalf(), dtype=float).reshape(size, size)


def test_trace_of_power_of_sum():
    """E[tr((I - a/n X^T X)^4)] at n = 6, p = 3, a = 1/2."""
    X = gaussian_matrix("X", n, p)
    exact = expectation(sp.Trace((sp.Identity(p) - a / n * X.T * X) ** 4))
    nn, pp, aa = 6, 3, 0.5
    value = float(exact.subs({n: nn, p: pp, a: sp.Rational(1, 2)}))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40_000, nn, pp))
    B = np.eye(pp) - aa / nn * np.einsum("kij,kil->kjl", x, x)
    B2 = B @ B
    assert_mc(np.einsum("kij,kji->k", B2, B2), value, "tr((I - a/n W)^4)")


def test_wishart_sandwich():
    """E[W M W] = n^2 M + n M^T + n tr(M) I for a random non-symmetric M."""
    X = gaussian_matrix("X", n, p)
    M = sp.MatrixSymbol("M", p, p)
    exact = expectation(X.T * X * M * X.T * X)
    nn, pp = 5, 3
    rng = np.random.default_rng(2)
    m = rng.integers(-3, 4, size=(pp, pp)).astype(float)
    value = numeric_matrix(exact, {n: nn, p: pp}, {M: m.astype(int)}, pp)
    x = rng.standard_normal((30_000, nn, pp))
    w = np.einsum("kij,kil->kjl", x, x)
    assert_mc(w @ m @ w, value, "W M W")


def test_gaussian_vector_quadratic_forms():
    """g ~ N(0, s^2 I): E[g^T M g] = s^2 tr M and E[(g^T M g)^2] = s^4 (tr^2 M + tr M M^T + tr M^2)."""
    g = gaussian_vector("g", n, s)
    M = sp.MatrixSymbol("M", n, n)
    first = expectation(g.T * M * g)
    second = expectation((g.T * M * g) ** 2)
    assert first == s**2 * sp.Trace(M)
    assert sp.expand(second - s**4 * (sp.Trace(M) ** 2 + sp.Trace(M * M.T) + sp.Trace(M**2))) == 0
    nn, ss = 4, 1.5
    rng = np.random.default_rng(3)
    m = rng.integers(-2, 3, size=(nn, nn))
    subs = {s: sp.Rational(3, 2), n: nn}
    tr = lambda e: float(e.xreplace({M: sp.ImmutableMatrix(m)}).xreplace(subs).doit())  # noqa: E731
    gs = ss * rng.standard_normal((40_000, nn))
    q = np.einsum("ki,ij,kj->k", gs, m.astype(float), gs)
    assert_mc(q, tr(first), "g^T M g")
    assert_mc(q**2, tr(second), "(g^T M g)^2")


def test_two_independent_gaussians():
    """E[X^T Y Y^T X] = n p I... computed by the engine, for independent X, Y (n x p)."""
    X, Y = gaussian_matrix("X", n, p), gaussian_matrix("Y", n, p)
    exact = expectation(X.T * Y * Y.T * X)
    assert exact == n * p * sp.Identity(p)
    nn, pp = 3, 2
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((2, 30_000, nn, pp))
    xty = np.einsum("kij,kil->kjl", x, y)
    assert_mc(xty @ xty.transpose(0, 2, 1), numeric_matrix(exact, {n: nn, p: pp}, {}, pp), "X^T Y Y^T X")


# ---------------------------------------------------------------------------------------
# inverse Wishart (stated rules) and the projection rule


def _inverse_wisharts(nn, pp, size, seed):
    x = np.random.default_rng(seed).standard_normal((size, nn, pp))
    return np.linalg.inv(np.einsum("kij,kil->kjl", x, x))


def test_inverse_wishart_rules_vs_simulation():
    """n = 12, p = 3 (n > p + 3, and moments up to order 4 of W^{-1} exist so the SE is finite)."""
    nn, pp = 12, 3
    v = _inverse_wisharts(nn, pp, 40_000, 5)
    assert_mc(v, float(inverse_wishart_moment(nn, pp)) * np.eye(pp), "E[W^-1]")
    second = inverse_wishart_second_moments(nn, pp)
    tr = np.einsum("kii->k", v)
    assert_mc(tr**2, float(second["tr_inv_sq"]), "E[tr(W^-1)^2]")
    assert_mc(np.einsum("kij,kji->k", v, v), float(second["tr_inv2"]), "E[tr W^-2]")
    # the individual coefficients: E[V_11^2] = c1 + 2 c2, E[V_11 V_22] = c1, E[V_12^2] = c2
    c1, c2 = float(second["c1"]), float(second["c2"])
    assert_mc(v[:, 0, 0] ** 2, c1 + 2 * c2, "E[V_11^2]")
    assert_mc(v[:, 0, 0] * v[:, 1, 1], c1, "E[V_11 V_22]")
    assert_mc(v[:, 0, 1] ** 2, c2, "E[V_12^2]")


def test_inverse_wishart_inside_expectation_vs_simulation():
    """expectation() averages (X^T X)^{-1} M (X^T X)^{-1} and tr((I - a V)^2) with the rules."""
    X = gaussian_matrix("X", n, p)
    V = sp.Inverse(X.T * X)
    M = sp.MatrixSymbol("M", p, p)
    nn, pp = 12, 3
    rng = np.random.default_rng(6)
    m = rng.integers(-3, 4, size=(pp, pp))
    v = _inverse_wisharts(nn, pp, 40_000, 7)
    assert_mc(v @ m.astype(float) @ v, numeric_matrix(expectation(V * M * V), {n: nn, p: pp}, {M: m}, pp), "V M V")
    exact = expectation(sp.Trace((sp.Identity(p) - a * V) ** 2)).subs({n: nn, p: pp, a: 3})
    b = np.eye(pp) - 3 * v
    assert_mc(np.einsum("kij,kji->k", b, b), float(exact), "tr((I - aV)^2)")


@pytest.mark.parametrize("rows,cols", [(2, 5), (3, 3), (1, 4)])
def test_projection_rule_vs_simulation(rows, cols):
    """E[Z^+ Z] = (r/c) I for a Gaussian r x c matrix Z with r <= c."""
    z = np.random.default_rng(8).standard_normal((20_000, rows, cols))
    proj = np.linalg.pinv(z) @ z
    assert_mc(proj, float(expected_projection(rows, cols)) * np.eye(cols), f"E[Z^+ Z], {rows}x{cols}")


def test_inverse_existence_conditions():
    """Numeric n, p violating the existence condition raise ValueError naming it."""
    with pytest.raises(ValueError, match=r"n > p \+ 1"):
        inverse_wishart_moment(4, 3)
    with pytest.raises(ValueError, match=r"n > p \+ 3"):
        inverse_wishart_second_moments(6, 3)
    with pytest.raises(ValueError, match="rows <= cols"):
        expected_projection(4, 3)
    Z = gaussian_matrix("Z", 6, 3)  # n = p + 3: the mean exists, second moments do not
    V = sp.Inverse(Z.T * Z)
    assert expectation(sp.Trace(V)) == sp.Rational(3, 2)
    with pytest.raises(ValueError, match=r"n > p \+ 3"):
        expectation(sp.Trace(V) ** 2)
    with pytest.raises(ValueError, match=r"n > p \+ 1"):
        expectation(sp.Inverse(gaussian_matrix("Z", 4, 3).T * gaussian_matrix("Z", 4, 3)))
    with pytest.raises(NotAveragable, match="third-order inverse moments are not derived"):
        expectation(sp.Trace(sp.Inverse(gaussian_matrix("X", n, p).T * gaussian_matrix("X", n, p))) ** 3)
    # symbolic dimensions: the condition is an assumption, recorded in the derivation
    X = gaussian_matrix("X", n, p)
    _, d = expectation(sp.Trace(sp.Inverse(X.T * X)) ** 2, steps=True)
    assert "n > p + 3" in d.assumptions
