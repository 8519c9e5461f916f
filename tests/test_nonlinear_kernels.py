"""The infinite-width kernels (symmaml.nonlinear.kernels) against their defining Gaussian expectations.

The reference is an independent two-dimensional quadrature of ``E[phi(h) phi(h')]`` and
``E[phi'(h) phi'(h')]`` over the positive quadrant of the pre-activations' density, in Cartesian
coordinates (a tensor-product exp-sinh rule), nothing shared with the derivation's polar route.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from symmaml.nonlinear import kernels
from symmaml.nonlinear.kernels import Q11, Q12, Q22, VARTHETA, derive_kernels, kernel_blocks, nngp, ntk


def _exp_sinh(h=1 / 64, reach=4.0):
    """Nodes and weights of the exp-sinh rule on (0, inf): x = exp(pi/2 sinh t)."""
    t = np.arange(-reach, reach + h / 2, h)
    x = np.exp(np.pi / 2 * np.sinh(t))
    w = h * np.pi / 2 * np.cosh(t) * x
    return x, w


def _quadrant(f, q11, q22, q12):
    """``E[f(h, h') 1{h>0, h'>0}]`` for centred Gaussians with covariance [[q11, q12], [q12, q22]]."""
    x, w = _exp_sinh()
    h1, h2 = np.meshgrid(x, x, indexing="ij")
    det = q11 * q22 - q12**2
    dens = np.exp(-(q22 * h1**2 - 2 * q12 * h1 * h2 + q11 * h2**2) / (2 * det)) / (2 * np.pi * math.sqrt(det))
    return float(np.einsum("i,ij,j->", w, f(h1, h2) * dens, w))


# moderate correlations (|cos| <= 0.85): the Cartesian reference resolves the density to 1e-13 there;
# the diagonal (cos = 1) is checked against Sigma(x,x) = q/2, Theta(x,x) = q below
CASES = [(1.3, 0.8, 0.5), (1.0, 1.0, 0.0), (2.0, 1.5, -1.2), (1.1, 1.05, 0.9), (1.7, 0.6, -0.85), (1.0, 1.0, 0.85)]


@pytest.mark.parametrize("q11,q22,q12", CASES)
def test_kernels_equal_their_gaussian_expectations(q11, q22, q12):
    """Sigma = E[relu(h) relu(h')] and Theta = Sigma + q12 E[step(h) step(h')], to 1e-10."""
    exprs, _ = derive_kernels()
    at = {Q11: q11, Q22: q22, Q12: q12, VARTHETA: math.acos(q12 / math.sqrt(q11 * q22))}
    sigma = float(exprs["nngp"].subs(at))
    theta = float(exprs["ntk"].subs(at))
    e_relu = _quadrant(lambda a, b: a * b, q11, q22, q12)
    e_step = _quadrant(lambda a, b: np.ones_like(a), q11, q22, q12)
    assert sigma == pytest.approx(e_relu, rel=1e-10, abs=1e-12)
    assert theta == pytest.approx(e_relu + q12 * e_step, rel=1e-10, abs=1e-12)


def test_the_reference_quadrature_is_sharp_enough_to_catch_a_wrong_kernel():
    """A kernel off by 1e-8 relative (e.g. a rounded constant) would fail the 1e-10 test above."""
    q11, q22, q12 = CASES[0]
    ref = _quadrant(lambda a, b: a * b, q11, q22, q12)
    th = math.acos(q12 / math.sqrt(q11 * q22))
    closed = math.sqrt(q11 * q22) * (math.sin(th) + (math.pi - th) * math.cos(th)) / (2 * math.pi)
    assert abs(ref - closed) < 1e-13 * closed  # the quadrature's own error is far below the tolerance


def test_derivation_records_the_engine_steps():
    exprs, dv = derive_kernels()
    rules = [s.rule.name for s in dv.steps]
    for name in ("neural tangent kernel", "law of large numbers over the neurons", "Gaussian pre-activations",
                 "polar coordinates", "integration"):
        assert name in rules
    # the pre-activation covariance came from the Gaussian engine: q12 = 1 + x.x'/d
    assert "Trace" in str(exprs["q12"]) and str(exprs["q12"]).startswith("1 +")
    # the degree-0 and degree-1 arc-cosine kernels: kappa_0(0) = 1/2, kappa_1(0) = 1/2
    k0 = (exprs["ntk"] - exprs["nngp"]) / Q12
    assert sp.simplify(k0.subs(VARTHETA, 0)) == sp.Rational(1, 2)
    assert sp.simplify((exprs["nngp"] / sp.sqrt(Q11 * Q22)).subs(VARTHETA, 0)) == sp.Rational(1, 2)


def test_numpy_kernels_match_the_expressions_and_are_positive_semidefinite():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 7))
    Y = rng.standard_normal((11, 7))
    K, C = ntk(X, Y), nngp(X, Y)
    exprs, _ = derive_kernels()
    for i, j in [(0, 0), (3, 5), (29, 10)]:
        q11 = X[i] @ X[i] / 7 + 1
        q22 = Y[j] @ Y[j] / 7 + 1
        q12 = X[i] @ Y[j] / 7 + 1
        at = {Q11: q11, Q22: q22, Q12: q12, VARTHETA: math.acos(q12 / math.sqrt(q11 * q22))}
        assert K[i, j] == pytest.approx(float(exprs["ntk"].subs(at)), rel=1e-13)
        assert C[i, j] == pytest.approx(float(exprs["nngp"].subs(at)), rel=1e-13)
    KK, CC = kernel_blocks(X, X)
    np.testing.assert_allclose(KK, ntk(X, X), rtol=1e-15)
    np.testing.assert_allclose(KK, KK.T, rtol=1e-14)
    assert np.linalg.eigvalsh(KK).min() > 0
    assert np.linalg.eigvalsh(CC).min() > -1e-12
    # the diagonal: Sigma(x, x) = q/2, Theta(x, x) = q
    q = (X * X).sum(1) / 7 + 1
    np.testing.assert_allclose(np.diag(CC), q / 2, rtol=1e-13)
    np.testing.assert_allclose(np.diag(KK), q, rtol=1e-13)


@pytest.mark.parametrize("bad,match", [
    (np.ones(3), "X1 must be an array of points"),
    (np.full((2, 3), np.nan), "X1 must be finite"),
])
def test_bad_points_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        ntk(bad, np.ones((2, 3)))


def test_dimension_mismatch_is_refused():
    with pytest.raises(ValueError, match="same dimension d"):
        nngp(np.ones((2, 3)), np.ones((2, 4)))


def test_module_exports():
    import symmaml.nonlinear as nl

    assert nl.ntk is kernels.ntk and nl.nngp is kernels.nngp


def test_compiled_form_is_the_derived_kernel_rewritten_exactly():
    """The NumPy kernels evaluate ``compiled_form``: in ``q12``, ``s = sqrt(q11 q22) sin(vartheta)`` and the
    angle.  Substituted back (``q12 = sqrt(q11 q22) cos(vartheta)``), it is the derived expression exactly."""
    from symmaml.nonlinear.kernels import _ROOT, compiled_form

    exprs, _ = derive_kernels()
    norm = sp.sqrt(Q11) * sp.sqrt(Q22)
    back = {Q12: norm * sp.cos(VARTHETA), _ROOT: norm * sp.sin(VARTHETA)}
    for name, form in compiled_form().items():
        assert form.free_symbols <= {Q12, _ROOT, VARTHETA}
        assert sp.expand(form.xreplace(back) - exprs[name].xreplace({Q12: norm * sp.cos(VARTHETA)})) == 0
