"""The underparameterised corrected result with several inner steps (k_t = 2, 3).

With k_t steps the construction of symmaml/maml/corrected_under.py is unchanged; what changes is the
own task's Gram matrix L = X_v A^{2 k_t} X_v^T and the weight M of its noise covariance, so its exact
moments E tr L^j, E tr C L^j (j <= 4) are Wishart moments of degree up to 10 k_t.  Tested here: the
one-step path is untouched (symbolically), the k_t = 2 moments against a direct Monte Carlo of the
same traces, and the result against simulation of the model at Figure 3.
"""
from fractions import Fraction
from math import prod

import numpy as np
import pytest
import sympy as sp
from reference import own_task_samples

from symmaml.maml import Model, average_test_loss
from symmaml.maml.corrected_under import _a_average_steps, _own_task_traces, own_task_moments
from symmaml.maml.loss import NotDerived
from symmaml.maml.paper import FIGURE_3
from symmaml.sim import simulate
from symmaml.symbols import alpha_t, n_t, n_v, nu, p, sigma


def test_one_step_moments_unchanged():
    """The integer-ring route used for several steps reproduces the one-step moments exactly, and
    the one-step result still uses the one-step route (its moments are the ones of L = X_v A^2 X_v^T)."""
    plain, weighted = own_task_moments()
    assert own_task_moments(1) == (plain, weighted)
    traces_plain, traces_weighted = _own_task_traces(1)
    for exact, traces in zip(plain + weighted, traces_plain + traces_weighted):
        assert sp.expand(exact.as_expr() - _a_average_steps(traces).as_expr()) == 0


def test_moments_reduce_to_wishart_at_alpha_t_zero():
    """At alpha_t = 0, A = I and L = X_v X_v^T whatever k_t: E tr L = n_v p, E tr L^2 = n_v p (n_v + p + 1),
    and the weighted moments are those of k_t = 1 (C does not depend on k_t there)."""
    def at_zero(poly):  # the alpha_t^0 terms (alpha_t is the first generator)
        assert poly.gens[0] == alpha_t
        return sp.Add(*(c * sp.Mul(*(g**e for g, e in zip(poly.gens[1:], mo[1:]))) for mo, c in poly.terms() if mo[0] == 0))

    one_plain, one_weighted = own_task_moments(1)
    plain, weighted = own_task_moments(2)
    assert sp.expand(at_zero(plain[0]) - n_v * p) == 0
    assert sp.expand(at_zero(plain[1]) - n_v * p * (n_v + p + 1)) == 0
    for a, b in zip(plain + weighted, one_plain + one_weighted):
        assert sp.expand(at_zero(a) - at_zero(b)) == 0


@pytest.mark.parametrize("prm", [dict(p=6, n_t=4, n_v=3, alpha_t=0.1, sigma=0.8, nu=1.1),
                                 dict(p=4, n_t=7, n_v=5, alpha_t=-0.06, sigma=1.0, nu=0.5)])
def test_two_step_moments_against_monte_carlo(prm):
    """The exact k_t = 2 moments E tr L^j, E tr C L^j (j = 1..4) against 200,000 simulated tasks: within
    5 standard errors each (16 comparisons).  The rates keep |1 - alpha_t lambda(W)/n_t| moderate: tr L^4
    is of degree 16 in A, and with larger rates its law is so heavy-tailed (rare large eigenvalues of W)
    that a sample mean and its s.e. are not to be trusted (at alpha_t = 0.3 here, tr L^3 came out at 4,471
    +- 1,343 against the exact 19,236)."""
    plain, weighted = own_task_moments(2)
    sub = {p: prm["p"], n_t: prm["n_t"], n_v: prm["n_v"], alpha_t: Fraction(str(prm["alpha_t"])),
           sigma: Fraction(str(prm["sigma"])), nu: Fraction(str(prm["nu"]))}
    sub.update({1 / p: Fraction(1, prm["p"]), 1 / n_t: Fraction(1, prm["n_t"])})
    samples = own_task_samples(prm, 2, 200_000, seed=41)
    for k, (tr_l, tr_cl) in enumerate(samples):
        for exact, draws in ((plain[k], tr_l), (weighted[k], tr_cl)):
            values = [sub[g] for g in exact.gens]  # exact rational arithmetic, term by term
            value = float(sum(Fraction(int(c)) * prod(v**e for v, e in zip(values, mo)) for mo, c in exact.terms()))
            se = draws.std() / np.sqrt(draws.size)
            assert abs(draws.mean() - value) < 5 * se, (k, value, draws.mean(), se)


@pytest.mark.parametrize("steps", [3, 4])
def test_three_or_more_steps_refused_with_the_measured_reason(steps):
    with pytest.raises(NotDerived, match="refused for k_t >= 3 inner steps.*3.6% below simulation"):
        average_test_loss("under", "corrected", Model(steps))


class _Numeric:
    """The k_t = 2 result and its numeric function compiled without common-subexpression elimination:
    the same expression, so the same values, in a third of the compile time (CSE of its moments,
    polynomials of thousands of terms, takes most of the 33 s the default takes)."""

    def __init__(self):
        self.result = average_test_loss("under", "corrected", Model(2))
        self.f = self.result.numeric(cse=False)

    def numeric(self):
        return self.f


@pytest.fixture(scope="module")
def two_steps():
    return _Numeric()


def test_two_steps_equals_exact_at_alpha_t_zero(two_steps):
    """At alpha_t = 0 the inner loop does nothing, and the anchored result is the exact one."""
    exact = average_test_loss("under", "exact").numeric()
    prm = dict(FIGURE_3, alpha_t=0.0, alpha_r=0.2)
    assert two_steps.numeric()(**prm) == pytest.approx(exact(**prm), rel=1e-12)


@pytest.mark.parametrize("alpha", [-0.3, -0.1])
def test_two_steps_against_simulation(two_steps, alpha):
    """Figure 3, k_t = 2, alpha_r = 0.2: 6,000 runs (meta-test averaged analytically; s.e. 0.065% and
    0.021% of the mean at alpha_t = -0.3, -0.1).

    Tolerance: 4 s.e. plus 0.4% (its accuracy at |alpha_t| <= 0.3 below, README: within 0.32% at 8 of 10
    Figure 3 points); measured with this seed -0.19% and +0.01%.  And at least 3x closer than leading,
    which is +1.50% and +0.55% off here: the leading order's value fails both checks (0.55% > 4 s.e. +
    0.4% too).  (At alpha_t = +0.3 the corrected result was measured 1.7% low, leading 8.7% high: not
    tested as passing, see README.)"""
    prm = dict(FIGURE_3, alpha_t=alpha, alpha_r=0.2)
    sim = simulate(**prm, runs=6000, seed=59, inner_steps=2, meta_test="analytic")
    corr = float(two_steps.numeric()(**prm))
    lead = float(average_test_loss("under", "leading", Model(2)).numeric()(**prm))
    err_corr, err_lead = abs(corr - sim["mean"]), abs(lead - sim["mean"])
    assert err_corr < 4 * sim["stderr"] + 0.004 * sim["mean"], (corr, sim["mean"], sim["stderr"])
    assert 3 * err_corr < err_lead, (corr, lead, sim["mean"])
