"""The pair representation of the inverse Gram matrix of one or two Gaussian rows (symmaml.rmt.gram_pair).

The representation is exact for every spectrum, so it is held to closed forms (B = I: the inverse-Wishart mean)
to 1e-12, and to Monte Carlo for a spread spectrum and an indefinite F within 4 standard errors (seeded); the
same check with the spectrum scaled by 1.01 (a 1% error in E tr H^-1) fails by more than 20 standard errors,
so the test has the power to see a wrong constant or a wrong bracket.
"""
from __future__ import annotations

import numpy as np
import pytest

from symmaml.rmt.gram_pair import STEP, gram_pair_spectrum, pair_integral


@pytest.mark.parametrize("r", [6, 10, 58])
@pytest.mark.parametrize("q", [1, 2])
def test_closed_form_at_identity(r, q):
    """B = F = I_r: E tr H^-1 = q/(r - q - 1) (inverse Wishart), E tr(H^-1 X X^T) = q."""
    h, t = gram_pair_spectrum(np.ones(r), np.ones(r), q=q)
    assert h == pytest.approx(q / (r - q - 1), rel=1e-12)
    assert t == pytest.approx(q, rel=1e-12)


def _spread(rng, p=40):
    return np.exp(rng.standard_normal(p)), rng.standard_normal(p)


def test_against_monte_carlo():
    rng = np.random.default_rng(5)
    b, f = _spread(rng)
    n = 200_000
    X = rng.standard_normal((n, 2, b.size))
    H = (X * b) @ X.transpose(0, 2, 1)
    K = (X * f) @ X.transpose(0, 2, 1)
    Hi = np.linalg.inv(H)
    th = np.trace(Hi, axis1=1, axis2=2)
    tk = np.einsum("nij,nji->n", Hi, K)
    h, t = gram_pair_spectrum(b, f)
    se_h, se_t = th.std() / np.sqrt(n), tk.std() / np.sqrt(n)
    assert abs(h - th.mean()) <= 4 * se_h, (h, th.mean(), se_h)
    assert abs(t - tk.mean()) <= 4 * se_t, (t, tk.mean(), se_t)
    wrong, _ = gram_pair_spectrum(1.01 * b, f)
    assert abs(wrong - th.mean()) > 20 * se_h
    # one row: E 1/(x^T B x) and E x^T F x/(x^T B x)
    h1, t1 = gram_pair_spectrum(b, f, q=1)
    x = X[:, 0, :]
    den = (x * x * b).sum(1)
    assert abs(h1 - (1 / den).mean()) <= 4 * (1 / den).std() / np.sqrt(n)
    assert abs(t1 - ((x * x * f).sum(1) / den).mean()) <= 4 * ((x * x * f).sum(1) / den).std() / np.sqrt(n)


def test_the_rule_has_converged():
    """Geometric convergence in the analytic variables: the step and half the step agree to 1e-12."""
    b, f = _spread(np.random.default_rng(9))
    coarse = gram_pair_spectrum(b, f)
    fine = gram_pair_spectrum(b, f, step=STEP / 2)
    assert coarse == pytest.approx(fine, rel=1e-12)


def test_rows_must_be_one_or_two():
    with pytest.raises(ValueError, match="q \\(the number of rows\\) must be 1 or 2, got 3"):
        pair_integral(lambda z: (z, z, z), None, 3)
