"""The finite-size corrected result (overparameterised): exact at alpha_t = 0, closer to simulation.

The underparameterised corrected result is tested in test_corrected_under.py."""
import numpy as np
import pytest
import sympy as sp

from symmaml.maml import average_test_loss
from symmaml.sim import simulate
from symmaml.symbols import alpha_t


def test_reduces_to_exact_at_alpha_t_zero():
    corrected = average_test_loss("over", "corrected").expr
    exact = average_test_loss("over", "exact").expr
    assert sp.simplify(sp.together(corrected.subs(alpha_t, 0) - exact.subs(alpha_t, 0))) == 0


# seeded: Figure 2 and an m n_v / p = 0.3 setting with dist0 > 0; meta_test='analytic'
POINTS = [
    dict(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=-1.0, alpha_r=0.2, sigma=1.0, nu=0.5, dist0=0.0),
    dict(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=0.5, alpha_r=0.2, sigma=1.0, nu=0.5, dist0=0.0),
    dict(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=1.5, alpha_r=0.0, sigma=1.0, nu=0.5, dist0=0.0),
    dict(p=40, m=4, n_t=20, n_v=3, n_r=20, alpha_t=-0.5, alpha_r=0.2, sigma=1.0, nu=1.0, dist0=1.0),
    dict(p=50, m=5, n_t=40, n_v=2, n_r=10, alpha_t=0.3, alpha_r=0.1, sigma=0.7, nu=1.2, dist0=0.5),
]


@pytest.mark.parametrize("prm", POINTS)
def test_corrected_closer_than_leading(prm):
    sim = simulate(**prm, runs=6000, seed=11, meta_test="analytic")
    lead = float(average_test_loss("over", "leading").numeric()(**prm))
    corr = float(average_test_loss("over", "corrected").numeric()(**prm))
    err_lead, err_corr = abs(lead - sim["mean"]), abs(corr - sim["mean"])
    # corrected within 4 standard errors + 0.4% of simulation, and at least twice closer than leading
    assert err_corr < 4 * sim["stderr"] + 0.004 * sim["mean"]
    assert err_corr < 0.5 * err_lead


def test_exact_alpha_t_zero_within_4_standard_errors():
    rng = np.random.default_rng(2026)
    f = average_test_loss("over", "exact").numeric()
    for _ in range(3):
        m, n_v = int(rng.integers(2, 5)), int(rng.integers(1, 4))
        prm = dict(p=int(m * n_v + rng.integers(4, 30)), m=m, n_t=int(rng.integers(5, 40)), n_v=n_v,
                   n_r=int(rng.integers(1, 30)), alpha_t=0.0, alpha_r=float(rng.uniform(-0.1, 0.4)),
                   sigma=float(rng.uniform(0.3, 1.5)), nu=float(rng.uniform(0.2, 1.5)), dist0=float(rng.uniform(0, 1)))
        sim = simulate(**prm, runs=4000, seed=int(rng.integers(1 << 30)), meta_test="analytic")
        assert abs(float(f(**prm)) - sim["mean"]) < 4 * sim["stderr"], prm
