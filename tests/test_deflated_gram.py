"""DeflatedGramTrace (symmaml.rmt.deflated_gram): E tr H^-1 and E tr(H^-1 X F X^T) for H = X A^k Q A^k X^T.

* At s = 0 (B a projection, F = 0) the closed forms, symbolically and numerically (1e-12).
* Against Monte Carlo of H at Figure 2 sizes (n = 30, p = 60, d = 4, q = 2), k = 3, s = 0.5/30, the point where
  the one-step construction failed: the stated accuracy there (module docstring: E tr H^-1 within 2%, the
  support-noise trace within 0.6%; measured with 20,000 and 10,000 samples: -1.4% and -0.7% to -0.5%) plus 3
  standard errors of 6,000 samples (0.4% and 0.3%).  The same with the projection of one task fewer (d = 2) is 5%
  off and fails.
* The domain: NaN where the Gauss rule does not resolve the average, for q not 1 or 2, p - d < q + 2, a size that
  is not a positive integer; LaTeX and evalf.
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from symmaml.rmt.deflated_gram import DeflatedGramTrace, deflated_gram_numpy

K, S, N, P, D, Q = 3, 0.5 / 30, 30, 60, 4, 2


def test_closed_form_at_s_zero():
    n, p, d, q, k = sp.symbols("n p d q k", positive=True)
    assert DeflatedGramTrace(0, k, 0, n, p, d, q) == q / (p - d - q - 1)
    assert DeflatedGramTrace(1, k, 0, n, p, d, q) == 0
    assert deflated_gram_numpy(0, 2, 0.0, N, P, D, Q) == pytest.approx(Q / (P - D - Q - 1), rel=1e-12)
    assert deflated_gram_numpy(0, 2, 0.0, N, P, D, 1) == pytest.approx(1 / (P - D - 2), rel=1e-12)
    assert deflated_gram_numpy(1, 2, 0.0, N, P, D, Q) == 0.0


def _monte_carlo(n, rng):
    Xt = rng.standard_normal((n, N, P))
    A = np.eye(P) - S * Xt.transpose(0, 2, 1) @ Xt
    Ak = np.linalg.matrix_power(A, K)
    F = (np.eye(P) - Ak) @ sum(np.linalg.matrix_power(A, i) for i in range(K))
    V, _ = np.linalg.qr(rng.standard_normal((n, P, D)))
    B = Ak @ (np.eye(P) - V @ V.transpose(0, 2, 1)) @ Ak
    X = rng.standard_normal((n, Q, P))
    Hi = np.linalg.inv(X @ B @ X.transpose(0, 2, 1))
    return np.trace(Hi, axis1=1, axis2=2), np.einsum("nij,nji->n", Hi, X @ F @ X.transpose(0, 2, 1))


@pytest.fixture(scope="module")
def sampled():
    return _monte_carlo(6000, np.random.default_rng(17))


def _within(value, sample, accuracy):
    se = sample.std() / np.sqrt(sample.size)
    return abs(value - sample.mean()) <= 3 * se + accuracy * abs(sample.mean())


def test_against_monte_carlo(sampled):
    for j, sample, accuracy in zip((0, 1), sampled, (0.02, 0.006)):
        assert _within(deflated_gram_numpy(j, K, S, N, P, D, Q), sample, accuracy), (j, sample.mean())


def test_one_task_fewer_fails(sampled):
    """The check has power: the projection of one task fewer (d = 2, not 4) puts both 5% off."""
    for j, sample, accuracy in zip((0, 1), sampled, (0.02, 0.006)):
        assert not _within(deflated_gram_numpy(j, K, S, N, P, D - 2, Q), sample, accuracy), j


def test_vectorised_and_domain():
    s = np.array([-1 / 30, 0.0, 0.2 / 30])
    out = deflated_gram_numpy(0, 2, s, N, P, D, Q)
    assert out.shape == (3,)
    assert out == pytest.approx([deflated_gram_numpy(0, 2, float(v), N, P, D, Q) for v in s], rel=1e-14)
    for bad in (dict(q=3), dict(d=P - 3), dict(n=2.5), dict(j=2), dict(k=0)):
        args = dict(j=0, k=2, s=0.01, n=N, p=P, d=D, q=Q) | bad
        assert np.isnan(deflated_gram_numpy(*args.values())), bad
    # k = 8, s = 0.1 at n = 5, p = 30: the 16- and 20-node rules differ by 0.9%: refused
    assert np.isnan(deflated_gram_numpy(0, 8, 0.1, 5, 30, 4, 2))
    assert np.isfinite(deflated_gram_numpy(0, 3, 0.1, 5, 30, 4, 2))


def test_latex_and_evalf():
    s = sp.Symbol("s")
    assert sp.latex(DeflatedGramTrace(1, 3, s, N, P, D, Q)) == r"\mathcal{G}_{1}^{(3)}\!\left(s\right)"
    value = DeflatedGramTrace(0, 2, sp.Rational(1, 60), N, P, D, Q)
    assert float(value.evalf()) == pytest.approx(deflated_gram_numpy(0, 2, 1 / 60, N, P, D, Q), rel=1e-14)
    assert not value.evalf(30).is_Float  # float64 only: no 30 digits to give
