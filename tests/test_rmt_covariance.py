"""symmaml.rmt with a deterministic covariance: X = G Sigma^{1/2}, functions of Sigma, spectral moments.

Each new rule is checked on its own:

1. Brute force at small numeric sizes (no statistics): the rows of X are N(0, Sigma) with Sigma a
   *symbolic* symmetric 2x2 or 3x3 matrix; an expression is multiplied out entry by entry and
   every monomial averaged by enumerating all pairings with E[X_ab X_cd] = delta_ac Sigma_bd.  The
   engine's result (symbolic n, p; spectral moments s_j = tr(Sigma^j)/p and normalised traces
   <h>_Sigma) evaluated at the same Sigma must agree exactly.  Catches a covariance inserted at the
   wrong place (Sigma Q instead of Q Sigma in a non-commuting word) or a wrong moment index.
2. Monte Carlo (5 standard errors, seeded) for the inverse rule with a covariance and for the
   second moments of a Haar rotation of two matrices.
3. The Wishart helpers built for several inner steps equal the engine's plain results.
"""
from __future__ import annotations

from itertools import product

import numpy as np
import pytest
import sympy as sp
from reference import pairings

from symmaml.rmt import NotAveragable, expectation, gaussian_matrix
from symmaml.rmt.covariance import Covariance, as_function_of
from symmaml.rmt.haar import haar_rotation_second_moment
from symmaml.rmt.wishart import wishart_average, wishart_trace_moment, wishart_trace_moment_poly
from symmaml.spectral import (LAMBDA, SpectralMean, SpectralMoment, SpectrumInput, at_identity, combine_means,
                              spectral_atoms)

n, p, N = sp.symbols("n p N", positive=True, integer=True)
Z_TOL = 5.0


def brute_trace_word(word, nn, pp, sig, extra=None):
    """E tr(word) for a word of letters 'X', 'Xt' (X^T) and names in ``extra`` (pp x pp matrices), by
    enumerating indices and pairings.  X is nn x pp with E[X_ab X_cd] = delta_ac sig[b, d]."""
    extra = extra or {}
    shapes = {"X": (nn, pp), "Xt": (pp, nn)}
    shapes.update({k: (pp, pp) for k in extra})
    total = sp.S.Zero
    L = len(word)
    dims = [shapes[w][0] for w in word]
    for idx in product(*[range(dd) for dd in dims]):
        # letter k has row idx[k], column idx[k+1]
        coeff = sp.S.One
        gauss = []
        for k, w in enumerate(word):
            r, c = idx[k], idx[(k + 1) % L]
            if w == "X":
                gauss.append((r, c))
            elif w == "Xt":
                gauss.append((c, r))
            else:
                coeff *= extra[w][r, c]
        if coeff == 0:
            continue
        acc = sp.S.Zero
        for pr in pairings(gauss):
            t = sp.S.One
            for (a1, b1), (a2, b2) in pr:
                if a1 != a2:
                    t = 0
                    break
                t *= sig[b1, b2]
            acc += t
        total += coeff * acc
    return sp.expand(total)


def _sigma(pp):
    syms = sp.symbols(f"q0:{pp * (pp + 1) // 2}")
    m = sp.zeros(pp, pp)
    k = 0
    for i in range(pp):
        for j in range(i, pp):
            m[i, j] = m[j, i] = syms[k]
            k += 1
    return m


def _at_matrix(expr, sig, pp, nn, funcs=None):
    """The engine's expression at p = pp, n = nn and Sigma = sig: s_j = tr(sig^j)/p, <h> = tr h(sig)/p."""
    funcs = funcs or {}
    reps = {}
    for s in expr.atoms(SpectralMoment):
        reps[s] = (sig**s.order).trace() / pp
    for s in expr.atoms(SpectralMean):
        reps[s] = funcs[s]
    return sp.expand(expr.xreplace(reps).subs({p: pp, n: nn}))


SIGMA = Covariance(r"\Sigma", p)
X = gaussian_matrix("X", n, p, covariance=SIGMA)


@pytest.mark.parametrize("word,label", [
    ((X.T * X), "X^T X"),
    ((X.T * X * X.T * X), "W^2"),
    ((X.T * X * SIGMA * X.T * X), "W Sigma W"),
    ((X.T * X * X.T * X * X.T * X), "W^3"),
    ((X * SIGMA**2 * X.T * X * X.T), "X Sigma^2 X^T X X^T"),
])
@pytest.mark.parametrize("pp,nn", [(2, 2), (3, 2)])
def test_covariance_wick_against_brute_force(word, label, pp, nn):
    """Traces of words in X (rows N(0, Sigma)) and Sigma: engine (symbolic n, p) vs enumeration."""
    sig = _sigma(pp)
    letters = []
    for f in (word.args if isinstance(word, sp.MatMul) else (word,)):
        if isinstance(f, sp.MatPow):
            letters += [f.base] * int(f.exp)
        else:
            letters.append(f)
    names = []
    for f in letters:
        names.append("X" if f == X else "Xt" if f == X.T else "S")
    ref = brute_trace_word(tuple(names), nn, pp, sig, extra={"S": sig})
    got = _at_matrix(expectation(sp.Trace(word)), sig, pp, nn)
    assert sp.expand(got - ref) == 0, label


def test_function_of_sigma_against_brute_force():
    """tr(R X^T X R X^T X) with R = (I + c Sigma)^{-1}: normalised traces <h>_Sigma, enumerated with a
    numeric diagonal Sigma (R is then diagonal too)."""
    c = sp.Rational(1, 3)
    R = SIGMA.function(1 / (1 + c * LAMBDA), name="R")
    value = expectation(sp.Trace(R * X.T * X * R * X.T * X))
    levels = [sp.Rational(1, 2), sp.Integer(2), sp.Rational(5, 4)]
    pp, nn = 3, 2
    sig = sp.diag(*levels)
    rm = sp.diag(*[1 / (1 + c * x) for x in levels])
    ref = brute_trace_word(("R", "Xt", "X", "R", "Xt", "X"), nn, pp, sig, extra={"R": rm})
    means = {m: sum(m.body.subs(LAMBDA, x) for x in levels) / pp for m in value.atoms(SpectralMean)}
    assert sp.simplify(_at_matrix(value, sig, pp, nn, means) - ref) == 0
    assert value.atoms(SpectralMean), "a rational function of Sigma stays a normalised trace"


def test_matrix_valued_average_is_a_function_of_sigma():
    """E[X^T X X^T X] = n(n+1) Sigma^2 + n p s_1 Sigma (literature: E[W A W] for Wishart rows)."""
    value = expectation(X.T * X * X.T * X)
    h = as_function_of(value, SIGMA)
    assert sp.expand(h - (n * (n + 1) * LAMBDA**2 + n * p * SpectralMoment(1) * LAMBDA)) == 0


def test_inverse_with_covariance_mean_and_refusals():
    """E (X^T X)^{-1} = Sigma^{-1}/(N - p - 1) against Monte Carlo; (X X^T)^{-1} and second moments refused."""
    Y = gaussian_matrix("Y", N, p, covariance=SIGMA)
    value = expectation(sp.Trace(sp.Inverse(Y.T * Y) * SIGMA**2))
    assert sp.simplify(value - p * SpectralMoment(1) / (N - p - 1)) == 0
    levels = np.array([0.5, 2.0, 1.0, 3.0])
    pp, NN, reps = 4, 12, 40_000
    rng = np.random.default_rng(2)
    G = rng.standard_normal((reps, NN, pp)) * np.sqrt(levels)
    inv = np.linalg.inv(G.swapaxes(1, 2) @ G)
    samples = np.einsum("bii,i->b", inv, levels**2)
    exact = float(value.subs({p: pp, N: NN, SpectralMoment(1): levels.mean()}))
    se = samples.std(ddof=1) / np.sqrt(reps)
    assert abs(samples.mean() - exact) <= Z_TOL * se, (samples.mean(), exact, se)
    with pytest.raises(NotAveragable, match="not an inverse-Wishart case"):
        expectation(sp.Inverse(Y * Y.T))
    with pytest.raises(NotAveragable, match="second moments"):
        expectation(sp.Trace(sp.Inverse(Y.T * Y) * sp.Inverse(Y.T * Y)))


def test_haar_rotation_second_moment_monte_carlo():
    """E[(O^T A O)_ab (O^T B O)_cd] for Haar O: the solved (alpha, beta) against simulation, entrywise.
    A wrong beta (e.g. the identity-only alpha = 1, beta = 0) fails by tens of standard errors."""
    pp, reps = 4, 40_000
    rng = np.random.default_rng(5)
    A = np.diag([1.0, 2.0, 0.5, 3.0])
    B = np.diag([2.0, 0.1, 1.0, 1.5])
    al, be = haar_rotation_second_moment(sp.Integer(pp), sp.Float(np.trace(A) * np.trace(B)), sp.Float(np.trace(A @ B)))
    al, be = float(al), float(be)
    q, r = np.linalg.qr(rng.standard_normal((reps, pp, pp)))
    O = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    At, Bt = O.swapaxes(1, 2) @ A @ O, O.swapaxes(1, 2) @ B @ O
    for (i, j, k, l) in [(0, 0, 0, 0), (0, 0, 1, 1), (0, 1, 0, 1), (0, 1, 1, 0), (0, 1, 2, 3), (1, 2, 1, 2)]:
        s = At[:, i, j] * Bt[:, k, l]
        exact = al * (i == j) * (k == l) + be * ((i == k) * (j == l) + (i == l) * (j == k))
        se = s.std(ddof=1) / np.sqrt(reps)
        assert abs(s.mean() - exact) <= Z_TOL * se + 1e-12, ((i, j, k, l), s.mean(), exact, se)


@pytest.mark.parametrize("ks", [(3,), (2, 2), (4, 1), (3, 2, 1)])
def test_wishart_moment_poly_equals_engine(ks):
    assert sp.expand(wishart_trace_moment_poly(ks, n, p).as_expr() - wishart_trace_moment(ks, n, p)) == 0


def test_wishart_average_equals_expectation():
    Xp = gaussian_matrix("Xp", n, p)
    W = Xp.T * Xp
    a = sp.Symbol("a")
    expr = a * sp.Trace(W * W) * sp.Trace(W) + sp.Trace(W) ** 2 / n + 3 * sp.Trace(W * W * W)
    assert sp.expand(wishart_average(expr, Xp) - expectation(expr)) == 0


def test_spectral_symbols():
    """Polynomial means are moments; at Sigma = I everything is h(1); a spectrum fixes the numbers."""
    c = sp.Symbol("c")
    assert SpectralMean(LAMBDA**2 + 3 * c * LAMBDA + 1) == SpectralMoment(2) + 3 * c * SpectralMoment(1) + 1
    mean = SpectralMean(LAMBDA / (1 + c * LAMBDA) ** 2)
    assert isinstance(mean, SpectralMean) and mean.free_symbols == {c}
    assert at_identity(mean * SpectralMoment(3)) == 1 / (1 + c) ** 2
    assert mean.subs(c, 2).body.has(2) and sp.expand(mean) == mean  # expansion leaves the average whole
    combined = combine_means(2 * mean + c * SpectralMean(1 / (1 + LAMBDA)))
    assert len(combined.atoms(SpectralMean)) == 1
    spec = SpectrumInput()
    levels = spec.check([0.5, 1.5])
    assert spec.values(levels, [SpectralMoment(2), spec.level(1)]) == {"s_2": 1.25, "_level1": 1.5}
    written = spec.rewrite(mean, 2)
    assert sp.simplify(written.subs({spec.level(0): 0.5, spec.level(1): 1.5, c: 1})
                       - (0.5 / 1.5**2 + 1.5 / 2.5**2) / 2) == 0
    assert spectral_atoms(mean * SpectralMoment(2))[0] == {SpectralMoment(2)}
    for bad in ([], [0.0], [-1.0], ["a"], None, "1,2"):
        with pytest.raises(ValueError, match="spectrum"):
            spec.check(bad)
