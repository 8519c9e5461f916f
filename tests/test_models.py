"""Models of the family (symmaml.maml.Model): several inner steps, several adaptation steps, anisotropic inputs.

What is checked, and the tolerances:

* The paper's model is the family's member k_t = k_r = 1, Sigma = I: every anisotropic result at
  Sigma = I (all spectral moments 1, <h> = h(1)) equals today's result *symbolically*, in every regime
  and order derived for it; every exact alpha_t = 0 result with k_t inner steps equals the one-step
  one (the inner loop is the identity at alpha_t = 0).
* Exact parts against simulation (4 standard errors, seeded): the adaptation average with k_r = 2 and
  with anisotropic inputs (against the full meta-test sampler, conditional on omega*), and the exact
  underparameterised alpha_t = 0 result with anisotropic inputs.
* Approximations against simulation: 4 standard errors plus the approximation's stated error.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from symmaml import sim
from symmaml.maml import Model, NotDerived, PAPER, average_test_loss
from symmaml.maml.adaptation import ERROR, ERROR_M, adaptation_average, adaptation_weight
from symmaml.rmt.covariance import as_function_of
from symmaml.spectral import LAMBDA, SpectralMean, at_identity
from symmaml.symbols import alpha_r, n_r, nu, p, sigma
from symmaml.maml.model import SIGMA

ANISO = Model(anisotropic=True)
F2 = dict(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_r=0.2, sigma=1.0, nu=0.5)
F3 = dict(p=30, m=40, n_t=5, n_v=25, n_r=10, alpha_r=0.2, sigma=1.0, nu=1.0)


def _z(theory, s, extra=0.0):
    return abs(theory - s["mean"]) <= 4 * s["stderr"] + extra * abs(s["mean"])


# ----------------------------------------------------------------------------- the model object


def test_model_object():
    assert Model() == PAPER and PAPER.is_paper and hash(Model(1, 1, False)) == hash(PAPER)
    m = Model(2.0, 3, True)  # sizes accept integral floats (D1)
    assert (m.inner_steps, m.adaptation_steps, m.anisotropic) == (2, 3, True)
    assert m.suffix == "_kt2_kr3_aniso" and PAPER.suffix == ""
    assert m.describe() == "k_t = 2 inner steps, k_r = 3 adaptation steps, anisotropic inputs x ~ N(0, Sigma)"
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises((TypeError, ValueError), match="inner_steps must be a positive integer"):
            Model(inner_steps=bad)
    with pytest.raises(TypeError, match="anisotropic must be True or False"):
        Model(anisotropic=1)


def test_results_name_the_model():
    r = average_test_loss("over", model=Model(2))
    assert "$k_t = 2$ inner steps" in r.derivation.title and "$k_t = 2$ inner steps" in r.derivation.order
    assert average_test_loss("over").derivation.title == "Average test loss of one-step MAML, overparameterised regime"
    assert average_test_loss("over", model=None) is average_test_loss("over", "leading", PAPER)
    with pytest.raises(NotDerived, match=r"G Sigma G\^T"):
        average_test_loss("over", "exact", ANISO)
    with pytest.raises(NotDerived, match="isotropic inputs only"):
        average_test_loss("under", "corrected", ANISO)
    with pytest.raises(TypeError, match="model must be"):
        average_test_loss("over", model=(2, 1, False))


# ----------------------------------------------------------------------------- reduction to the paper


@pytest.mark.parametrize("regime,order", [("over", "leading"), ("under", "leading"), ("under", "exact")])
def test_anisotropic_results_reduce_to_the_paper_at_identity(regime, order):
    """Symbolic: Sigma = I in the anisotropic result gives the paper's result exactly."""
    aniso = average_test_loss(regime, order, ANISO).expr
    assert aniso.atoms(SpectralMean) or aniso.has(sp.Symbol)  # stated in spectral quantities
    assert sp.simplify(sp.factor(at_identity(aniso) - average_test_loss(regime, order).expr)) == 0


@pytest.mark.parametrize("regime", ["over", "under"])
def test_exact_results_do_not_depend_on_the_inner_steps(regime):
    """At alpha_t = 0 the inner loop is the identity: k_t = 2 gives the paper's exact result."""
    assert sp.simplify(average_test_loss(regime, "exact", Model(2)).expr
                       - average_test_loss(regime, "exact").expr) == 0


def test_one_step_results_are_the_papers_at_alpha_t_zero_for_k_steps():
    """Leading order with k_t = 2 at alpha_t = 0 equals the one-step leading order there."""
    for regime in ("over", "under"):
        two = average_test_loss(regime, model=Model(2)).expr.subs(sp.Symbol("alpha_t", real=True), 0)
        one = average_test_loss(regime).expr.subs(sp.Symbol("alpha_t", real=True), 0)
        assert sp.simplify(two - one) == 0


# ----------------------------------------------------------------------------- exact parts


def test_adaptation_weight_by_hand():
    """k_r = 1, anisotropic: M = E[A Sigma A] = Sigma - 2 a Sigma^2 + a^2((n+1)/n Sigma^3 + p s_2/n Sigma),
    from E[W Sigma W] = n(n+1) Sigma^3 + n p s_2 Sigma for W = X^T X with rows N(0, Sigma)."""
    h = sp.expand(as_function_of(adaptation_weight(ANISO), SIGMA))
    s2 = SIGMA.moment(2)
    hand = LAMBDA - 2 * alpha_r * LAMBDA**2 + alpha_r**2 * ((n_r + 1) / n_r * LAMBDA**3 + p * s2 / n_r * LAMBDA)
    assert sp.expand(h - hand) == 0


@pytest.mark.parametrize("model,spectrum", [(Model(adaptation_steps=2), None), (Model(adaptation_steps=3), None),
                                            (ANISO, [0.5, 1.5]), (Model(1, 2, True), [0.25, 1.0, 2.0])])
def test_adaptation_average_is_exact(model, spectrum):
    """E over the test task and its adaptation data for a fixed omega*, against the full sampler
    (4 s.e.; 40,000 test tasks per omega*).  Catches, e.g., a missing noise term of a later step."""
    P, nr, ar, sg, nu_ = 6, 3, 0.4, 0.8, 1.1
    prm = sim.make_params(P, 1, 1, 1, nr, 0.0, ar, sg, nu_, 0.0, adaptation_steps=model.adaptation_steps,
                          spectrum=spectrum)
    rng = np.random.default_rng(3)
    omega = rng.standard_normal((2, P)) * 0.8
    losses = sim.meta_test_full(np.random.default_rng(4), omega, prm, 40_000)
    value = adaptation_average(model=model)
    subs = {p: P, n_r: nr, alpha_r: ar, sigma: sg, nu: nu_}
    for k in range(2):
        a = omega[k]
        if model.anisotropic:
            h = _numbers(as_function_of(adaptation_weight(model), SIGMA), spectrum).subs(subs)
            quad = float(sum(x * x * h.subs(LAMBDA, lam) for x, lam in zip(a, prm.sigma_diag())))
            th = _numbers(value, spectrum).subs(subs).subs(ERROR_M, quad)
        else:
            th = value.subs(subs).subs(ERROR, float(a @ a))
        s = losses[k]
        assert abs(float(th) - s.mean()) <= 4 * s.std(ddof=1) / math.sqrt(s.size), (k, float(th), s.mean())


def _numbers(expr, spectrum):
    """Spectral moments of ``expr`` replaced by their values for the equal-share ``spectrum``."""
    from symmaml.spectral import SpectralMoment

    return expr.xreplace({s: sp.Float(np.mean(np.asarray(spectrum, dtype=float) ** s.order))
                          for s in expr.atoms(SpectralMoment)})


@pytest.mark.parametrize("point,spectrum", [
    (dict(p=10, m=8, n_t=3, n_v=4, n_r=5, alpha_r=0.3, sigma=1.0, nu=1.0), [0.5, 1.5]),
    (dict(p=12, m=5, n_t=3, n_v=4, n_r=5, alpha_r=0.2, sigma=0.5, nu=1.5), [0.2, 1.0, 2.8]),
])
def test_exact_under_anisotropic_against_simulation(point, spectrum):
    """The exact alpha_t = 0 result with anisotropic inputs within 4 s.e. of 12,000 simulated runs
    (measured: 0.03 and 0.5 s.e.).  Dropping its Haar-rotation term (beta = 0, as if the right singular
    vectors did not matter) is 3.3 and 5.6 s.e. off: the second point fails."""
    r = average_test_loss("under", "exact", ANISO)
    th = r.numeric()(**point, alpha_t=0.0, spectrum=spectrum)
    s = sim.simulate(**point, alpha_t=0.0, runs=12_000, seed=3, spectrum=spectrum, test_tasks=10)
    assert _z(th, s), (th, s["mean"], s["stderr"])


# ----------------------------------------------------------------------------- approximations


LEADING = [  # (regime, model, point, spectrum, stated error of the leading order on the loss)
    ("over", Model(2), dict(F2, alpha_t=0.1), None, 0.025),
    ("over", Model(1, 2), dict(F2, alpha_t=-0.5), None, 0.025),
    ("over", ANISO, dict(F2, alpha_t=0.2), [0.5, 1.5], 0.025),
    ("under", Model(2), dict(F3, alpha_t=-0.1), None, 0.01),
    ("under", ANISO, dict(F3, alpha_t=0.2, alpha_r=0.4), [0.2, 1.8], 0.01),
]


@pytest.mark.parametrize("regime,model,point,spectrum,err", LEADING, ids=lambda x: getattr(x, "suffix", None))
def test_leading_order_against_simulation(regime, model, point, spectrum, err):
    """Within 4 s.e. plus the leading order's stated error on these settings (2.5% overparameterised at
    Figure 2 sizes, 1% underparameterised at Figure 3 sizes; the one-step leading order misses by up to
    1.9% and 1.3% there).  What the paper's one-step isotropic formula would give instead (measured):
    -4.0% (k_r = 2), -3.8% (anisotropic, over), -2.5% (k_t = 2, under), -16.9% (anisotropic, under):
    each fails.  At the first point (k_t = 2, over, alpha_t = 0.1) the second step changes the loss by
    less than the leading order's own error; k_t there is checked by the corrected order (next test)."""
    f = average_test_loss(regime, model=model).numeric()
    th = f(**point, **({"spectrum": spectrum} if spectrum else {}))
    s = sim.simulate(**point, runs=3000, seed=8, inner_steps=model.inner_steps,
                     adaptation_steps=model.adaptation_steps, spectrum=spectrum, test_tasks=10)
    assert _z(th, s, err), (th, s["mean"], s["stderr"])


@pytest.mark.parametrize("steps,alpha", [(2, -0.5), (3, 0.5), (5, 0.5)])
def test_corrected_several_inner_steps_against_simulation(steps, alpha):
    """Overparameterised, k_t >= 2, Figure 2 sizes (corrected_over_steps): within 3 s.e. of 6,000 runs plus
    0.25% (measured within 0.2% at the 20 Figure 2 points of the accuracy table) and at least 3x closer than
    leading, which is off by 0.4% (k_t = 2, alpha_t = -0.5), 3.6% (k_t = 3) and 5.8% (k_t = 5) here.  The one-step
    construction applied to k_t = 3 steps (its moments of B, the two-node quadrature, the linear projection) is
    0.7% low at alpha_t = 0.5 and fails this test (tried once)."""
    model = Model(steps)
    fc = average_test_loss("over", "corrected", model).numeric()
    fl = average_test_loss("over", model=model).numeric()
    point = dict(F2, alpha_t=alpha)
    s = sim.simulate(**point, runs=6000, seed=11, inner_steps=steps, meta_test="analytic")
    c, lead = fc(**point), fl(**point)
    assert abs(c - s["mean"]) <= 3 * s["stderr"] + 0.0025 * s["mean"], (c, s["mean"], s["stderr"])
    assert abs(c - s["mean"]) * 3 <= abs(lead - s["mean"]), (c, lead, s["mean"])


@pytest.mark.parametrize("steps", [2, 3])
def test_corrected_several_inner_steps_is_exact_at_alpha_t_zero(steps):
    """At alpha_t = 0 (B a projection, F = 0) the construction reduces to the exact result, symbolically."""
    alpha = sp.Symbol("alpha_t", real=True)
    r = average_test_loss("over", "corrected", Model(steps))
    expr = r.expr
    for sym, value in reversed(r.definitions):
        expr = expr.xreplace({sym: value})
    assert sp.simplify(expr.subs(alpha, 0) - average_test_loss("over", "exact").expr.subs(alpha, 0)) == 0


def test_corrected_several_inner_steps_refuses_clearly():
    f = average_test_loss("over", "corrected", Model(2)).numeric()
    with pytest.raises(ValueError, match="outside its domain: it needs n_v <= 2"):
        f(**dict(F2, n_v=3, alpha_t=0.3))
    with pytest.raises(ValueError, match="'mpmath' backend cannot evaluate DeflatedGramTrace.*use the 'numpy' backend"):
        average_test_loss("over", "corrected", Model(2)).numeric("mpmath")


def test_numeric_function_takes_a_spectrum():
    f = average_test_loss("over", model=ANISO).numeric()
    point = dict(F2, alpha_t=0.2)
    assert f(**point, spectrum=[1.0]) == pytest.approx(average_test_loss("over").numeric()(**point), rel=1e-12)
    assert f(**point, spectrum=(2.0, 2.0)) == pytest.approx(f(**point, spectrum=[2.0]), rel=1e-12)
    with pytest.raises(TypeError, match="missing required keyword argument.*spectrum"):
        f(**point)
    with pytest.raises(ValueError, match="spectrum levels must be positive"):
        f(**point, spectrum=[1.0, -2.0])
    g = average_test_loss("under", model=ANISO).numeric("mpmath", dps=30)
    assert float(g(**dict(F3, alpha_t=0.1), spectrum=[0.5, 1.5])) == pytest.approx(
        average_test_loss("under", model=ANISO).numeric()(**dict(F3, alpha_t=0.1), spectrum=[0.5, 1.5]), rel=1e-10)
