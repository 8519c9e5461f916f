"""The derived average test loss against the simulator and against independent cross-checks.

Tolerances
----------
* Exact results: |theory - simulation| <= 4 standard errors of the simulation mean.  With a
  Gaussian sampling error that fails with probability 6e-5 per comparison; the examples are
  seeded (hypothesis ``derandomize=True``, fixed simulation seeds), so the suite is
  deterministic and cannot flake.
* Leading-order results: 4 standard errors plus the approximation's own error, on the part of
  the loss it approximates.  Leading order replaces the meta-training Gram matrix by its mean;
  at alpha_t = 0 the exact value of the dropped fluctuation is known (E tr G^{-1} = N/(p-N-1)
  instead of N/p, and the underparameterised analogue p/(N-p-1) instead of p/N, N = m n_v), a
  relative error (min(p,N)+1)/(|p-N|-1) on the Gram-matrix term of the meta-training error (not
  on the exact projection term ||omega0 - w0||^2 (1 - N/p)).  Away from alpha_t = 0 we allow 1.25
  times that relative error (measured: 0.4 to 1.02 times at the points below, leading against the
  corrected result).  Overparameterised, the dropped fluctuation only raises the loss (Jensen,
  E tr G^{-1} >= tr (E G)^{-1}, at alpha_t = 0; below simulation at all 35 overparameterised
  points of derivations/out/accuracy_table.md), so there the interval is one-sided.
* Every comparison uses the simulator's variance-reduced sampler (meta_test='analytic': the
  meta-test average taken exactly given omega*) and is sized so that the wrong answers named in
  its docstring fail it at its seed (tried once, by substituting them for the theory).
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


LEADING_FACTOR = 1.25  # allowed error of the leading order away from alpha_t = 0, in units of its alpha_t = 0 value


def leading_interval(regime, params, loss) -> tuple:
    """``(lo, hi)``: the leading order's stated error on ``theory - truth`` (see the module docstring).

    ``loss`` is the leading-order numeric function; the approximated part of the loss is its value
    without the exact projection term (dist0 = 0) above its value at omega* = w0.
    """
    P, N = params["p"], params["m"] * params["n_v"]
    rel = (min(P, N) + 1) / (abs(P - N) - 1)
    floor = float(adaptation_average().subs(ERROR, 0).subs(
        {p: P, n_r: params["n_r"], alpha_r: params["alpha_r"], sigma: params["sigma"], nu: params["nu"]}))
    bound = LEADING_FACTOR * rel * (loss(**{**params, "dist0": 0.0}) - floor)
    return (-bound, 0.0) if regime == "over" else (-bound, bound)


#: (regime, parameters, runs); the runs make 4 s.e. well below the distance of every wrong answer
#: named in the test's docstring from the allowed interval
LEADING_POINTS = [
    ("over", dict(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=0.2, alpha_r=0.2, sigma=1.0, nu=0.5, dist0=0.0), 4000),
    ("over", dict(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=-1.0, alpha_r=0.2, sigma=1.0, nu=0.5, dist0=0.0), 4000),
    ("over", dict(p=60, m=4, n_t=40, n_v=3, n_r=10, alpha_t=-1.0, alpha_r=0.3, sigma=2.0, nu=0.5, dist0=1.5), 2000),
    ("under", dict(p=30, m=40, n_t=5, n_v=25, n_r=10, alpha_t=0.2, alpha_r=0.2, sigma=1.0, nu=1.0, dist0=0.0), 1000),
    ("under", dict(p=20, m=30, n_t=10, n_v=10, n_r=15, alpha_t=0.3, alpha_r=0.1, sigma=1.0, nu=0.5, dist0=2.0), 2000),
]


def leading_check(regime, params, runs, theory=None):
    """``(ok, detail)``: the leading order (or ``theory``, a stand-in value) against simulation."""
    loss = average_test_loss(regime).numeric()
    value = loss(**params) if theory is None else theory
    lo, hi = leading_interval(regime, params, loss)
    res = sim.simulate(**params, runs=runs, seed=11, meta_test="analytic")
    k = 4 * res["stderr"]
    gap = value - res["mean"]
    return lo - k <= gap <= hi + k, dict(theory=value, sim=res["mean"], se=res["stderr"], gap=gap, lo=lo, hi=hi)


@pytest.mark.parametrize("regime,params,runs", LEADING_POINTS)
def test_leading_order_against_simulation(regime, params, runs):
    """Within 4 s.e. plus the leading order's stated error (module docstring).

    Catches, at every point: alpha_t ignored (the loss at alpha_t = 0) or negated, and the loss
    scaled by 0.95 or 1.05; at the Figure 2 points (params0, params1) also by 0.98 or 1.02.
    """
    ok, detail = leading_check(regime, params, runs)
    assert ok, detail


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


#: (parameters, runs): the runs make 4 s.e. at most about 0.5% of the loss
EXACT_POINTS = [
    (dict(p=20, m=3, n_t=10, n_v=4, n_r=10, alpha_t=0.0, alpha_r=0.3, sigma=1.0, nu=1.0, dist0=1.0), 80000),
    (dict(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=0.0, alpha_r=0.2, sigma=1.0, nu=0.5, dist0=0.0), 20000),
    (dict(p=40, m=4, n_t=5, n_v=3, n_r=5, alpha_t=0.0, alpha_r=0.5, sigma=0.5, nu=1.5, dist0=2.0), 20000),
    # close to the interpolation threshold (p = m n_v + 10, where the loss still has a finite
    # variance; at p = m n_v + 3 it has none and 20,000 runs gave s.e. 1.3%)
    (dict(p=16, m=2, n_t=3, n_v=3, n_r=4, alpha_t=0.0, alpha_r=-0.2, sigma=1.0, nu=2.0, dist0=0.5), 80000),
]


def exact_check(regime, params, runs, seed, theory=None):
    """``(ok, detail)``: the exact result (or ``theory``, a stand-in value) within 4 s.e. of simulation."""
    value = average_test_loss(regime, "exact").numeric()(**params) if theory is None else theory
    res = sim.simulate(**params, runs=runs, seed=seed, meta_test="analytic")
    return abs(value - res["mean"]) <= 4 * res["stderr"], dict(theory=value, sim=res["mean"], se=res["stderr"])


@pytest.mark.parametrize("params,runs", EXACT_POINTS)
def test_over_exact_at_alpha_t_zero(params, runs):
    """Exact: within 4 standard errors (no approximation term).

    Catches the leading order (6-44% low here) and the exact value off by +-1%.
    """
    ok, detail = exact_check("over", params, runs, seed=5)
    assert ok, detail


def test_over_exact_reduces_to_leading_for_large_p():
    """The exact result's leading term in 1/p is the leading-order result (alpha_t = 0)."""
    t = sp.Symbol("t", positive=True)
    ex = average_test_loss("over", "exact").expr.subs(p, 1 / t)
    le = average_test_loss("over", "leading").expr.subs(alpha_t, 0).subs(p, 1 / t)
    # they agree at t -> 0 and differ at first order in t = 1/p
    assert sp.limit(ex - le, t, 0) == 0
    assert sp.limit((ex - le) / t, t, 0) != 0


UNDER_EXACT_POINTS = [
    # Figure 3 at alpha_t = 0, where the leading order is only 0.04% low: the variance-reduced
    # sampler's s.e. (0.006%) separates them
    (dict(p=30, m=40, n_t=5, n_v=25, n_r=10, alpha_t=0.0, alpha_r=0.2, sigma=1.0, nu=1.0, dist0=0.0), 20000),
    (dict(p=10, m=5, n_t=5, n_v=4, n_r=10, alpha_t=0.0, alpha_r=0.0, sigma=1.0, nu=2.0, dist0=0.0), 160000),
    (dict(p=8, m=3, n_t=3, n_v=5, n_r=6, alpha_t=0.0, alpha_r=0.3, sigma=0.5, nu=1.5, dist0=0.7), 160000),
]


@pytest.mark.parametrize("params,runs", UNDER_EXACT_POINTS)
def test_under_exact_at_alpha_t_zero(params, runs):
    """Exact: within 4 standard errors of the simulation (no approximation term).

    Catches the leading order (0.04% low at params0, 14-18% low at the others) and the exact
    value off by +-1% (params1, params2) or +-0.1% (params0).
    """
    ok, detail = exact_check("under", params, runs, seed=6)
    assert ok, detail


def test_under_exact_single_task_is_the_task_variance():
    """Independent check: with one task the meta-solution is w_1 + noise, so the variability term is nu^2."""
    from symmaml.maml.adaptation import ERROR
    expr = average_test_loss("under", "exact").expr
    at_one = sp.simplify(expr.subs({m: 1, sigma: 0}))
    expected = adaptation_average().subs(ERROR, nu**2).subs(sigma, 0)
    assert sp.simplify(at_one - expected) == 0
