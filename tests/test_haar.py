"""symmaml.rmt.haar: closed forms, exact limits (r = p, D = I), the full Gram system, Monte Carlo."""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import symmaml.rmt as rmt
from symmaml.derivation import Rule
from symmaml.rmt.haar import (
    HAAR_PROJECTION_WEINGARTEN, MAX_K, _cycles, _q_edges, haar_projection_trace_moment,
    pairing_coefficients,
)

p, r = sp.symbols("p r", positive=True, integer=True)


def _partitions(k):
    return sorted((tuple(sorted(sum(([a] * m for a, m in d.items()), []), reverse=True))
                   for d in (dict(x) for x in sp.utilities.iterables.partitions(k))), reverse=True)


def test_api_and_rule():
    for name in ("haar_projection_trace_moment", "pairing_coefficients", "HAAR_PROJECTION_WEINGARTEN"):
        assert name in rmt.__all__ and hasattr(rmt, name)
    rule = HAAR_PROJECTION_WEINGARTEN
    assert isinstance(rule, Rule) and rule.statement and rule.conditions and rule.reference
    res = haar_projection_trace_moment(3, p, r)
    assert list(res) == [(3,), (2, 1), (1, 1, 1)]                 # every partition, canonical order
    assert haar_projection_trace_moment(3, p, r) == res           # cached, deterministic
    res[(3,)] = 0                                                 # the caller's dict is a copy
    assert haar_projection_trace_moment(3, p, r)[(3,)] != 0


def test_k1_k2_closed_forms():
    assert haar_projection_trace_moment(1, p, r) == {(1,): r / p}
    b = r * (p - r) / (p * (p + 2) * (p - 1))
    a = r / p - (p + 1) * b
    res = haar_projection_trace_moment(2, p, r)
    assert set(res) == {(2,), (1, 1)}
    assert sp.cancel(res[(2,)] - (a + b)) == 0
    assert sp.cancel(res[(1, 1)] - b) == 0


@pytest.mark.parametrize("k", [1, 2, 3])
def test_identity_projection_and_identity_matrix(k):
    res = haar_projection_trace_moment(k, p, r)
    # r = p (Q = I): the generic rational functions reduce to tr D^k exactly
    for lam, c in res.items():
        assert sp.cancel(c.subs(r, p) - (1 if lam == (k,) else 0)) == 0, (lam, c)
    # D = I: tr(Q^k) = tr Q = r, and tr(I^j) = p
    assert sp.cancel(sum(c * p ** len(lam) for lam, c in res.items()) - r) == 0
    # the direct r = p path agrees
    assert haar_projection_trace_moment(k, p, p) == {lam: (1 if lam == (k,) else 0) for lam in _partitions(k)}


@pytest.mark.parametrize("k", [2, 3])
def test_full_gram_system(k):
    """The pairing coefficients (solved on orbits) satisfy every equation of the full Gram system."""
    coeffs = pairing_coefficients(k, p, r)
    assert len(coeffs) == {2: 3, 3: 15}[k]
    pi0 = _q_edges(k)
    for tau in coeffs:
        lhs = sum(c * p ** len(_cycles(sigma, tau)) for sigma, c in coeffs.items())
        assert sp.cancel(lhs - r ** len(_cycles(tau, pi0))) == 0


def test_k4_at_a_point():
    """k = 4 (105 matchings): full Gram system and the D = I / r = p checks at numbers."""
    coeffs = pairing_coefficients(4, 9, 4)
    assert len(coeffs) == 105
    pi0 = _q_edges(4)
    for tau in coeffs:
        lhs = sum(c * 9 ** len(_cycles(sigma, tau)) for sigma, c in coeffs.items())
        assert lhs == 4 ** len(_cycles(tau, pi0))
    res = haar_projection_trace_moment(4, p, r)
    assert sp.cancel(sum(c * p ** len(lam) for lam, c in res.items()) - r) == 0


def test_k3_monte_carlo():
    """E tr((DQ)^3) against 200 000 seeded Haar projections (p = 7, r = 3).

    Tolerance: |MC mean - exact| < 5 standard errors of the MC mean (SE = sample sd / sqrt(N)).
    The seed is fixed, so the test is deterministic; for a correct formula a fresh seed would fail
    with probability about 6e-7 (two-sided normal tail at 5 sigma, the CLT being accurate at this
    N for a bounded statistic).  Power: with this D, a 3% error in c_(3) or c_(2,1) moves the
    exact value by 3.5-4.4 SE, so an error of 6% or more in either fails; the c_(1,1,1) term is
    tiny here (|c| ~ 6e-4) and is pinned down by the symbolic and Gram-system tests instead.
    """
    pv, rv, n, batch = 7, 3, 200_000, 50_000
    rng = np.random.default_rng(20240607)
    d = rng.standard_normal((pv, pv))
    d = (d + d.T) / 2
    values = []
    for _ in range(n // batch):
        u, _ = np.linalg.qr(rng.standard_normal((batch, pv, rv)))  # orthonormal basis of a uniform r-plane
        m = u.transpose(0, 2, 1) @ d @ u                            # U^T D U: tr((D U U^T)^3) = tr(M^3)
        values.append(np.einsum("bij,bjk,bki->b", m, m, m))
    values = np.concatenate(values)
    mean, se = values.mean(), values.std(ddof=1) / np.sqrt(n)
    res = haar_projection_trace_moment(3, p, r)
    tr = {j: np.trace(np.linalg.matrix_power(d, j)) for j in (1, 2, 3)}
    exact = sum(float(c.subs({p: pv, r: rv})) * np.prod([tr[j] for j in lam]) for lam, c in res.items())
    # the same value from the numeric call
    assert haar_projection_trace_moment(3, pv, rv) == {lam: c.subs({p: pv, r: rv}) for lam, c in res.items()}
    assert abs(mean - exact) < 5 * se, f"mc = {mean}, exact = {exact}, se = {se}"


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "3", None, MAX_K + 1])
def test_bad_k(k):
    with pytest.raises(ValueError, match=r"\bk\b"):
        haar_projection_trace_moment(k, p, r)


@pytest.mark.parametrize("pv, rv, name", [(0, 0, "p"), (3, 4, "r"), (3, -1, "r"), (sp.Rational(5, 2), 1, "p")])
def test_bad_p_r(pv, rv, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        haar_projection_trace_moment(2, pv, rv)
