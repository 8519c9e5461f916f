"""The underparameterised corrected result with several inner steps (symmaml/maml/corrected_under_steps.py).

With k_t = 2, 3 the construction keeps the inner step's directions explicit (Sherman-Morrison over A's
eigenbasis, a deterministic equivalent of the quadratic forms, one average over a support eigenvalue).
Tested here: what the derivation records, the anchoring (equal to the exact result at alpha_t = 0), the
result against simulation of the model at Figure 3 where the earlier quadrature and the leading order
miss, the mpmath backend, the domain, and the refusal of k_t >= 4.
"""
import mpmath
import numpy as np
import pytest

from symmaml.maml import Model, average_test_loss
from symmaml.maml.corrected_under_steps import (DETERMINISTIC_EQUIVALENT, IMPLICIT_DIFFERENTIATION,
                                                SHERMAN_MORRISON)
from symmaml.maml.loss import NotDerived
from symmaml.maml.paper import FIGURE_3
from symmaml.sim import simulate

FIG3 = dict(FIGURE_3, alpha_r=0.2)


@pytest.fixture(scope="module", params=[2, 3])
def steps(request):
    r = average_test_loss("under", "corrected", Model(request.param))
    return request.param, r, r.numeric()


def test_the_derivation_records_its_steps(steps):
    k, r, _ = steps
    rules = [s.rule for s in r.derivation.steps]
    for rule in (SHERMAN_MORRISON, DETERMINISTIC_EQUIVALENT, IMPLICIT_DIFFERENTIATION):
        assert rule in rules
    names = [str(sym) for sym, _ in r.definitions]
    assert names[:3] == [r"\delta", "u", "r"] and r"\eta" in names
    assert f"k_t = {k}" in r.derivation.title or f"k_t={k}" in r.derivation.title.replace(" ", "")


def test_equals_exact_at_alpha_t_zero(steps):
    """At alpha_t = 0 the inner loop does nothing, and the anchored result is the exact one."""
    _, _, f = steps
    exact = average_test_loss("under", "exact").numeric()
    assert f(**FIG3, alpha_t=0.0) == pytest.approx(exact(**FIG3, alpha_t=0.0), rel=1e-12)


#: (k_t, alpha_t, seed): where the two-node quadrature (k_t = 2: -1.73% at +0.3; k_t = 3: refused, 3.6%
#: low at +0.2) and the leading order (+8.6% at k_t = 2, +0.3; +85% at k_t = 3, +0.3) missed
POINTS = [(2, -0.3, 61), (2, 0.3, 62), (3, -0.3, 63), (3, 0.3, 64)]


@pytest.mark.parametrize("k, alpha, seed", POINTS)
def test_against_simulation(k, alpha, seed):
    """Figure 3, alpha_r = 0.2: 6,000 runs (meta-test averaged analytically; s.e. 0.06-0.2% of the mean).

    Tolerance: 3 s.e. plus 0.25%, the construction's accuracy measured at |alpha_t| <= 0.3 (README: within
    0.2% at all ten Figure 3 points with k_t = 2, 3).  And at least 3x closer than the leading order.  The
    earlier quadrature's -1.73% at k_t = 2, alpha_t = 0.3 fails this tolerance (it is 0.25% + 3 x 0.09%)."""
    prm = dict(FIG3, alpha_t=alpha)
    sim = simulate(**prm, runs=6000, seed=seed, inner_steps=k, meta_test="analytic")
    corr = float(average_test_loss("under", "corrected", Model(k)).numeric()(**prm))
    lead = float(average_test_loss("under", "leading", Model(k)).numeric()(**prm))
    err_corr, err_lead = abs(corr - sim["mean"]), abs(lead - sim["mean"])
    assert err_corr < 3 * sim["stderr"] + 0.0025 * sim["mean"], (corr, sim["mean"], sim["stderr"])
    assert 3 * err_corr < err_lead, (corr, lead, sim["mean"])


def test_mpmath_backend_agrees(steps):
    _, r, f = steps
    value = r.numeric("mpmath", dps=30)(**FIG3, alpha_t=0.25)
    assert isinstance(value, mpmath.mpf)
    assert float(value) == pytest.approx(f(**FIG3, alpha_t=0.25), rel=1e-10)


def test_vectorised_in_alpha_t(steps):
    _, _, f = steps
    grid = np.linspace(-0.3, 0.3, 7)
    values = f(**FIG3, alpha_t=grid)
    assert values.shape == grid.shape and np.all(np.isfinite(values))
    assert values[2] == pytest.approx(f(**FIG3, alpha_t=float(grid[2])), rel=1e-13)


def test_outside_its_domain_raises():
    """Three steps, few tasks (m n_v/p = 1.3, so u is large) and alpha_t = 0.6: the Gauss rule of the support
    eigenvalue does not resolve u (1 - alpha_t lambda/n_t)^6 crossing 1, and the numeric function says so, not NaN."""
    f = average_test_loss("under", "corrected", Model(3)).numeric()
    prm = dict(p=30, m=4, n_t=5, n_v=10, n_r=10, sigma=1.0, nu=1.0, dist0=0.0, alpha_r=0.2)
    assert np.isfinite(f(**prm, alpha_t=0.0))
    with pytest.raises(ValueError, match="Gauss rule"):
        f(**prm, alpha_t=0.6)


@pytest.mark.parametrize("k", [4, 5])
def test_four_or_more_steps_refused_with_the_measured_reason(k):
    with pytest.raises(NotDerived, match="at most 3 inner steps.*5.6% below simulation"):
        average_test_loss("under", "corrected", Model(k))
