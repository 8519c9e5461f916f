"""The derived average test loss against the simulator and against independent cross-checks.

Tolerances
----------
* Exact results: |theory - simulation| <= 4 standard errors of the simulation mean.  With a
  Gaussian sampling error that fails with probability 6e-5 per comparison; the examples are
  seeded (hypothesis ``derandomize=True``, fixed simulation seeds), so the suite is
  deterministic and cannot flake.
* Leading-order results: 4 standard errors plus the approximation's own error.  Leading order
  replaces the meta-training Gram matrix by its mean; at alpha_t = 0 the exact value of the
  dropped fluctuation is known (E tr G^{-1} = N/(p-N-1) instead of N/p, and the
  underparameterised analogue p/(N-p-1) instead of p/N, N = m n_v), a relative error
  (min(p,N)+1)/(|p-N|-1) on the meta-training error term.  Away from alpha_t = 0 the inner-step
  matrices broaden the spectrum, so we allow twice that relative error on that term.
"""
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symmaml import sim
from symmaml.maml import average_test_loss
from symmaml.maml.adaptation import ERROR, adaptation_average
from symmaml.symbols import PARAMETERS, alpha_r, alpha_t, dist0, m, n_r, n_t, n_v, nu, p, sigma

SETTINGS = settings(derandomize=True, max_examples=12, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _f(expr):
    return sp.lambdify(PARAMETERS, expr, "math")


# ----------------------------------------------------------------------------- exact part


@SETTINGS
@given(
    p_=st.integers(1, 25), n_r_=st.integers(1, 15),
    a_r=st.floats(-0.6, 1.2), sig=st.floats(0.0, 2.0), nu_=st.floats(0.0, 2.0),
    norm2=st.floats(0.0, 3.0),
)
def test_adaptation_average_is_exact(p_, n_r_, a_r, sig, nu_, norm2):
    """E over the test task and its adaptation data, for a fixed omega*, vs the full sampler."""
    formula = adaptation_average().subs(ERROR, norm2)
    value = float(formula.subs({p: p_, n_r: n_r_, alpha_r: a_r, sigma: sig, nu: nu_}))
    prm = sim.make_params(p_, 1, 1, 1, n_r_, 0.0, a_r, sig, nu_, 0.0)
    rng = np.random.default_rng([p_, n_r_, 7])
    omega_star = np.zeros((4000, p_))
    omega_star[:, 0] = np.sqrt(norm2)  # w0 = 0 in the simulator
    losses = sim.meta_test_full(rng, omega_star, prm, 5).mean(axis=1)
    mean, se = losses.mean(), losses.std(ddof=1) / np.sqrt(losses.size)
    assert abs(mean - value) <= 4 * se + 1e-12, (mean, se, value)


def test_adaptation_average_cross_check():
    """Independent hand computation: E|A_r v|^2 = (1 - 2a + a^2 (n_r+p+1)/n_r)|v|^2 (Wishart)."""
    h = 1 - 2 * alpha_r + alpha_r**2 * (n_r + p + 1) / n_r
    hand = sigma**2 / 2 + (h * (ERROR + nu**2) + alpha_r**2 * sigma**2 * p / n_r) / 2
    assert sp.simplify(adaptation_average() - hand) == 0


# ----------------------------------------------------------------------------- leading order


def _leading_bound(params, theory):
    """The leading order's stated error: twice the alpha_t = 0 relative error on the error term."""
    P, N = params["p"], params["m"] * params["n_v"]
    rel = 2 * (min(P, N) + 1) / (abs(P - N) - 1)
    # the meta-training error term is the part of the loss above its value at omega* = w0
    floor = float(adaptation_average().subs(ERROR, 0).subs(
        {p: P, n_r: params["n_r"], alpha_r: params["alpha_r"], sigma: params["sigma"], nu: params["nu"]}))
    return rel * abs(theory - floor)


LEADING_POINTS = [
    ("over", dict(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=0.2, alpha_r=0.2, sigma=1.0, nu=0.5, dist0=0.0)),
    ("over", dict(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=-1.0, alpha_r=0.2, sigma=1.0, nu=0.5, dist0=0.0)),
    ("over", dict(p=80, m=4, n_t=20, n_v=3, n_r=10, alpha_t=0.1, alpha_r=0.3, sigma=0.5, nu=1.0, dist0=1.5)),
    ("under", dict(p=30, m=40, n_t=5, n_v=25, n_r=10, alpha_t=0.2, alpha_r=0.2, sigma=1.0, nu=1.0, dist0=0.0)),
    ("under", dict(p=20, m=30, n_t=10, n_v=10, n_r=15, alpha_t=-0.1, alpha_r=0.1, sigma=1.0, nu=0.5, dist0=2.0)),
]


@pytest.mark.parametrize("regime,params", LEADING_POINTS)
def test_leading_order_against_simulation(regime, params):
    theory = _f(average_test_loss(regime).expr)(*(params[s.name] for s in PARAMETERS))
    res = sim.simulate(**params, runs=4000, seed=11)
    gap = abs(theory - res["mean"])
    assert gap <= 4 * res["stderr"] + _leading_bound(params, theory), (theory, res)


def test_over_leading_cross_check():
    """Independent hand computation of the overparameterised leading order."""
    h_t = 1 - 2 * alpha_t + alpha_t**2 * (n_t + p + 1) / n_t
    N = m * n_v
    err = dist0 * (1 - N / p) + N / p * (nu**2 + sigma**2 * (1 + alpha_t**2 * p / n_t) / h_t)
    hand = adaptation_average().subs(ERROR, err)
    assert sp.simplify(average_test_loss("over").expr - hand) == 0


def test_under_depends_on_fourth_moments():
    """The underparameterised result carries alpha_t^4 (fourth-order Wishart moments), not dist0."""
    expr = sp.together(average_test_loss("under").expr)
    num, _ = sp.fraction(expr)
    assert sp.Poly(num, alpha_t).degree() == 4
    assert dist0 not in expr.free_symbols


# ----------------------------------------------------------------------------- API and steps


@pytest.mark.parametrize("regime", ["over", "under"])
def test_result_api(regime):
    r = average_test_loss(regime)
    assert r.regime == regime and r.order == "leading"
    assert r.expr.free_symbols <= set(PARAMETERS)
    assert r.derivation.result == r.expr
    names = [s.rule.name for s in r.derivation]
    assert "residual linear in $\\omega$" in names and "Gaussian average (Wick)" in names
    assert any(n.startswith("leading order") for n in names)
    assert r is average_test_loss(regime)  # cached


def test_bad_regime_and_order():
    with pytest.raises(ValueError, match="regime must be one of over, under"):
        average_test_loss("sideways")
    with pytest.raises(ValueError, match="order must be one of"):
        average_test_loss("over", "fifth")


# ----------------------------------------------------------------------------- exact order


EXACT_POINTS = [
    dict(p=20, m=3, n_t=10, n_v=4, n_r=10, alpha_t=0.0, alpha_r=0.3, sigma=1.0, nu=1.0, dist0=1.0),
    dict(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=0.0, alpha_r=0.2, sigma=1.0, nu=0.5, dist0=0.0),
    dict(p=40, m=4, n_t=5, n_v=3, n_r=5, alpha_t=0.0, alpha_r=0.5, sigma=0.5, nu=1.5, dist0=2.0),
    dict(p=9, m=2, n_t=3, n_v=3, n_r=4, alpha_t=0.0, alpha_r=-0.2, sigma=1.0, nu=2.0, dist0=0.5),
]


@pytest.mark.parametrize("params", EXACT_POINTS)
def test_over_exact_at_alpha_t_zero(params):
    """Exact: within 4 standard errors (no approximation term), where 'leading' is visibly off."""
    exact = _f(average_test_loss("over", "exact").expr)(*(params[s.name] for s in PARAMETERS))
    res = sim.simulate(**params, runs=20000, seed=5)
    assert abs(exact - res["mean"]) <= 4 * res["stderr"], (exact, res)


def test_over_exact_reduces_to_leading_for_large_p():
    """The exact result's leading term in 1/p is the leading-order result (alpha_t = 0)."""
    t = sp.Symbol("t", positive=True)
    ex = average_test_loss("over", "exact").expr.subs(p, 1 / t)
    le = average_test_loss("over", "leading").expr.subs(alpha_t, 0).subs(p, 1 / t)
    # they agree at t -> 0 and differ at first order in t = 1/p
    assert sp.limit(ex - le, t, 0) == 0
    assert sp.limit((ex - le) / t, t, 0) != 0


UNDER_EXACT_POINTS = [
    dict(p=30, m=40, n_t=5, n_v=25, n_r=10, alpha_t=0.0, alpha_r=0.2, sigma=1.0, nu=1.0, dist0=0.0),
    dict(p=10, m=5, n_t=5, n_v=4, n_r=10, alpha_t=0.0, alpha_r=0.0, sigma=1.0, nu=2.0, dist0=0.0),
    dict(p=8, m=3, n_t=3, n_v=5, n_r=6, alpha_t=0.0, alpha_r=0.3, sigma=0.5, nu=1.5, dist0=0.7),
]


@pytest.mark.parametrize("params", UNDER_EXACT_POINTS)
def test_under_exact_at_alpha_t_zero(params):
    """Exact: within 4 standard errors of the simulation (no approximation term)."""
    exact = _f(average_test_loss("under", "exact").expr)(*(params[s.name] for s in PARAMETERS))
    res = sim.simulate(**params, runs=20000, seed=6)
    assert abs(exact - res["mean"]) <= 4 * res["stderr"], (exact, res)


def test_under_exact_single_task_is_the_task_variance():
    """Independent check: with one task the meta-solution is w_1 + noise, so the variability term is nu^2."""
    from symmaml.maml.adaptation import ERROR
    expr = average_test_loss("under", "exact").expr
    at_one = sp.simplify(expr.subs({m: 1, sigma: 0}))
    expected = adaptation_average().subs(ERROR, nu**2).subs(sigma, 0)
    assert sp.simplify(at_one - expected) == 0
