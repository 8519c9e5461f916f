"""Tests of the Monte Carlo simulator symmaml.sim (all seeded, deterministic).

Statistical comparisons use a 4-standard-error band: for a correct simulator the
standardised difference is ~N(0, 1), so a comparison fails falsely with probability
P(|N(0,1)| > 4) ~ 6.3e-5; with a few dozen comparisons the whole file has a false-failure
probability of order 1e-3, and since every seed is fixed a passing file keeps passing.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from symmaml import sim

F2 = dict(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=0.2, alpha_r=0.2, sigma=1.0, nu=0.5)
SMALL = dict(p=6, m=2, n_t=3, n_v=2, n_r=3, alpha_t=0.3, alpha_r=0.2, sigma=0.5, nu=0.7, dist0=1.0)

Z_BAND = 4.0


def agree(a, se_a, b, se_b, z=Z_BAND):
    """|a - b| within z combined standard errors (plus rounding, for noiseless cases)."""
    return abs(a - b) <= z * math.sqrt(se_a**2 + se_b**2) + 1e-12 * (1 + abs(b))


def ks_statistic(a, b):
    """Two-sample Kolmogorov-Smirnov distance scaled by sqrt(n m / (n + m)); under equal
    distributions P(> c) ~ 2 exp(-2 c^2), ~2e-5 at c = 2.4."""
    a, b = np.sort(a), np.sort(b)
    x = np.concatenate([a, b])
    d = np.abs(np.searchsorted(a, x, side="right") / a.size - np.searchsorted(b, x, side="right") / b.size).max()
    return d / math.sqrt(1 / a.size + 1 / b.size)


KS_BAND = 2.4


# --------------------------------------------------------------------------- validation

INT_NAMES = ["p", "m", "n_t", "n_v", "n_r"]
BAD_INTS = [0, -1, 2.5, True, "3", None, np.float64(2.5), np.bool_(True)]


@pytest.mark.parametrize("name", INT_NAMES)
@pytest.mark.parametrize("bad", BAD_INTS, ids=repr)
def test_rejects_bad_sizes(name, bad):
    kw = dict(SMALL, **{name: bad})
    with pytest.raises((ValueError, TypeError), match=rf"^{name} must be a positive integer"):
        sim.simulate(**kw, runs=2)


@pytest.mark.parametrize("name", ["runs", "test_tasks", "batch", "workers"])
@pytest.mark.parametrize("bad", [0, -3, 1.5, False], ids=repr)
def test_rejects_bad_counts(name, bad):
    kw = dict(runs=2, test_tasks=2)
    kw[name] = bad
    with pytest.raises((ValueError, TypeError), match=rf"^{name} must be a positive integer"):
        sim.simulate(**SMALL | kw)


@pytest.mark.parametrize("name", ["alpha_t", "alpha_r", "sigma", "nu", "dist0"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "0.1", None, True, 1j], ids=repr)
def test_rejects_non_finite_reals(name, bad):
    with pytest.raises((ValueError, TypeError), match=rf"^{name} must be"):
        sim.simulate(**dict(SMALL, **{name: bad}), runs=2)


@pytest.mark.parametrize("name", ["sigma", "nu", "dist0"])
def test_rejects_negative_scales(name):
    with pytest.raises(ValueError, match=rf"^{name} must be finite and >= 0, got -0.1"):
        sim.simulate(**dict(SMALL, **{name: -0.1}), runs=2)


@pytest.mark.parametrize("bad", ["exact", "", None, 3, "FULL"])
def test_rejects_bad_meta_test(bad):
    with pytest.raises(ValueError, match="^meta_test must be one of"):
        sim.simulate(**SMALL, runs=2, meta_test=bad)


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_rejects_bad_seed(bad):
    with pytest.raises(ValueError, match="^seed must be"):
        sim.simulate(**SMALL, runs=2, seed=bad)


def test_check_helpers_messages_and_accepted_types():
    with pytest.raises(ValueError, match=r"^n_t must be a positive integer; got 0$"):
        sim.check_positive_int("n_t", 0)
    with pytest.raises(ValueError, match=r"^p must be a positive integer; got 60.5$"):
        sim.check_positive_int("p", 60.5)
    assert sim.check_positive_int("p", 60.0) == 60 and type(sim.check_positive_int("p", np.float64(3.0))) is int
    assert sim.check_positive_int("p", np.int64(7)) == 7 and type(sim.check_positive_int("p", np.int32(7))) is int
    assert sim.check_finite("alpha_t", np.float32(0.5)) == 0.5
    assert sim.check_finite("alpha_t", -3) == -3.0
    assert sim.check_finite("nu", 0, minimum=0.0) == 0.0
    with pytest.raises(ValueError, match=r"^nu must be finite and >= 0, got -1$"):
        sim.check_finite("nu", -1, minimum=0.0)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(name=st.sampled_from(INT_NAMES), value=st.integers(max_value=0))
def test_rejects_any_non_positive_size(name, value):
    with pytest.raises(ValueError, match=rf"^{name} must be a positive integer; got {value}$"):
        sim.make_params(**dict(SMALL, **{name: value}))


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    name=st.sampled_from(["alpha_t", "alpha_r", "sigma", "nu", "dist0"]),
    value=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
)
def test_finite_reals_accepted_iff_in_range(name, value):
    if name in ("sigma", "nu", "dist0") and value < 0:
        with pytest.raises(ValueError, match=rf"^{name} must be finite and >= 0"):
            sim.make_params(**dict(SMALL, **{name: value}))
    else:
        assert getattr(sim.make_params(**dict(SMALL, **{name: value})), name) == value


def test_extreme_but_valid_inputs_give_finite_results():
    # no noise, no task spread, omega0 = w0: omega* = w0 exactly, loss 0
    r = sim.simulate(**dict(SMALL, sigma=0.0, nu=0.0, dist0=0.0), runs=70, test_tasks=3)
    assert r["mean"] == 0.0 and r["stderr"] == 0.0
    for mode in sim.META_TEST_MODES:
        r = sim.simulate(p=3, m=1, n_t=1, n_v=1, n_r=1, alpha_t=-2.0, alpha_r=3.0, sigma=0.0, nu=1.0,
                         runs=1, test_tasks=1, meta_test=mode)
        assert math.isfinite(r["mean"]) and r["stderr"] == math.inf and r["runs"] == 1
    # float64 overflow is reported, never returned as NaN
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="non-finite"):
        sim.simulate(**dict(SMALL, alpha_t=1e200), runs=4)


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("mode", sim.META_TEST_MODES)
def test_same_seed_same_output_different_seed_differs(mode):
    kw = dict(SMALL, runs=150, test_tasks=7, meta_test=mode)
    a, b, c = sim.simulate(**kw, seed=3), sim.simulate(**kw, seed=3), sim.simulate(**kw, seed=4)
    assert a["mean"] == b["mean"] and np.array_equal(a["per_run"], b["per_run"])
    assert a["mean"] != c["mean"]
    assert a["meta_test"] == mode and a["test_tasks"] == 7 and a["runs"] == 150


@pytest.mark.parametrize("mode", sim.META_TEST_MODES)
def test_output_independent_of_batch_and_workers(mode):
    kw = dict(F2, runs=300, test_tasks=5, seed=11, meta_test=mode)
    ref = sim.simulate(**kw)["per_run"]
    for extra in (dict(batch=1), dict(batch=128), dict(batch=10_000), dict(workers=2), dict(batch=64, workers=2)):
        assert np.array_equal(sim.simulate(**kw, **extra)["per_run"], ref), extra


def test_modes_share_meta_training_draws():
    # same seed -> same omega* in every mode: analytic equals the exact conditional mean of reduced
    kw = dict(SMALL, runs=64, seed=5)
    ana = sim.simulate(**kw, meta_test="analytic")["per_run"]
    red = sim.simulate(**kw, meta_test="reduced", test_tasks=4000)["per_run"]
    assert np.allclose(red, ana, rtol=0.15)


# --------------------------------------------------------------------------- meta-training


def _tiny(regime_case):
    return {
        "under": sim.make_params(p=3, m=2, n_t=3, n_v=3, n_r=2, alpha_t=0.4, alpha_r=0.1, sigma=0.5, nu=0.8),
        "over": sim.make_params(p=7, m=2, n_t=3, n_v=2, n_r=2, alpha_t=-0.3, alpha_r=0.1, sigma=0.5, nu=0.8,
                                dist0=2.5),
        "square": sim.make_params(p=4, m=2, n_t=2, n_v=2, n_r=2, alpha_t=0.2, alpha_r=0.1, sigma=0.3, nu=0.5,
                                  dist0=1.0),
    }[regime_case]


def test_Z_b_reproduce_the_meta_loss_as_defined():
    prm = _tiny("over")
    rng = np.random.Generator(np.random.PCG64(1))
    Z, b, d = sim.sample_meta_training(rng, prm, 4, return_data=True)
    omega = rng.standard_normal((4, prm.p))
    # inner step theta_i = omega - alpha_t grad L(omega; D_t^i), then query loss, averaged over tasks
    Xt, yt, Xv, yv = d["X_t"], d["y_t"], d["X_v"], d["y_v"]
    om = omega[:, None, :]
    grad = -np.einsum("bmnp,bmn->bmp", Xt, yt - np.einsum("bmnp,bmp->bmn", Xt, np.broadcast_to(om, d["w"].shape)))
    theta = om - prm.alpha_t * grad / prm.n_t
    res = yv - np.einsum("bmnp,bmp->bmn", Xv, theta)
    direct = (res**2).sum(axis=2).mean(axis=1) / (2 * prm.n_v)
    assert np.allclose(sim.meta_loss(Z, b, omega), direct, rtol=1e-12)
    # labels are y = w.x + z with task vectors w_i (w0 = 0)
    assert Z.shape == (4, prm.m * prm.n_v, prm.p) and b.shape == (4, prm.m * prm.n_v)


@pytest.mark.parametrize("case", ["under", "over", "square"])
def test_exact_solution_equals_gradient_descent(case):
    prm = _tiny(case)
    assert prm.regime == case
    rng = np.random.Generator(np.random.PCG64(7))
    Z, b = sim.sample_meta_training(rng, prm, 6)
    omega0 = prm.omega0()
    exact = sim.meta_solution(Z, b, omega0, prm.regime)
    assert np.array_equal(exact, sim.meta_solution(Z, b, omega0))  # regime inferred from the shape
    # plain GD needs ~kappa log(1/tol) steps (kappa = condition number of the nonzero spectrum
    # of Z^T Z); square Z is often ill-conditioned, so compare on the well-conditioned draws only
    ev = np.linalg.eigvalsh(Z @ Z.swapaxes(1, 2) if case == "over" else Z.swapaxes(1, 2) @ Z)
    ok = ev[:, -1] / ev[:, 0] < 1e4
    assert ok.sum() >= 4
    gd = sim.meta_solution_gd(Z[ok], b[ok], omega0)
    scale = np.linalg.norm(exact, axis=1)
    assert np.all(np.linalg.norm(gd - exact[ok], axis=1) <= 1e-6 * scale[ok])
    # stationary point of the meta-loss
    grad = np.einsum("bnp,bn->bp", Z, b - np.einsum("bnp,bp->bn", Z, exact))
    assert np.all(np.linalg.norm(grad, axis=1) <= 1e-10 * np.linalg.norm(Z, axis=(1, 2)) ** 2 * (1 + scale))
    if case != "under":  # interpolates: Z omega* = b
        assert np.allclose(np.einsum("bnp,bp->bn", Z, exact), b, rtol=0, atol=1e-10 * (1 + np.abs(b).max()))
    if case == "over":
        # closest to omega0: omega* - omega0 lies in the row space of Z, and omega0 != w0 matters
        delta = exact - omega0
        coef = np.linalg.lstsq(Z[0].T, delta[0], rcond=None)[0]
        assert np.allclose(Z[0].T @ coef, delta[0], atol=1e-10)
        assert not np.allclose(exact, sim.meta_solution(Z, b, np.zeros(prm.p), "over"))


# --------------------------------------------------------------------------- meta-test samplers


@settings(max_examples=25, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    p=st.integers(1, 8),
    n_r=st.integers(1, 5),
    alpha_r=st.sampled_from([-0.3, 0.0, 0.25, 0.9]),
    sigma=st.sampled_from([0.0, 0.4, 1.0]),
    nu=st.sampled_from([0.0, 0.6, 1.5]),
)
@example(p=1, n_r=1, alpha_r=0.5, sigma=0.0, nu=1.0)
@example(p=1, n_r=1, alpha_r=0.5, sigma=1.0, nu=0.0)
@example(p=60, n_r=20, alpha_r=0.2, sigma=1.0, nu=0.5)
@example(p=5, n_r=2, alpha_r=0.9, sigma=1.0, nu=0.6)  # large step: second moment sees the g.z cross term
def test_meta_test_samplers_agree_given_omega_star(p, n_r, alpha_r, sigma, nu):
    """Conditional on omega*: full and reduced draws have the same distribution (KS test, and
    second moment), and both means match the analytic conditional expectation (exact, no error bar)."""
    prm = sim.make_params(p=p, m=1, n_t=1, n_v=1, n_r=n_r, alpha_t=0.0, alpha_r=alpha_r, sigma=sigma, nu=nu)
    rng = np.random.Generator(np.random.PCG64([p, n_r, 17]))
    omega = rng.standard_normal((3, p)) * np.array([0.0, 0.5, 1.5])[:, None]  # includes omega* = w0
    dist = np.einsum("bp,bp->b", omega, omega)
    T = 20_000 if p <= 8 else 4_000
    full = sim.meta_test_full(np.random.Generator(np.random.PCG64(1)), omega, prm, T)
    red = sim.meta_test_reduced(np.random.Generator(np.random.PCG64(2)), dist, prm, T)
    ana = sim.meta_test_analytic(dist, prm)
    assert full.shape == red.shape == (3, T) and ana.shape == (3,)
    for k in range(3):
        f, r = full[k], red[k]
        se = lambda a: a.std(ddof=1) / math.sqrt(T)  # noqa: E731
        assert agree(f.mean(), se(f), ana[k], 0.0), (k, f.mean(), ana[k])
        assert agree(r.mean(), se(r), ana[k], 0.0), (k, r.mean(), ana[k])
        assert agree((f**2).mean(), se(f**2), (r**2).mean(), se(r**2)), k
        if f.std() > 1e-9 * (1 + f.mean()):  # skip KS when the loss is deterministic (rounding only)
            assert ks_statistic(f, r) <= KS_BAND, (k, ks_statistic(f, r))
        assert (r >= 0.5 * sigma**2 - 1e-12).all()


@pytest.mark.parametrize(
    "kw",
    [
        dict(p=12, m=2, n_t=4, n_v=2, n_r=3, alpha_t=0.3, alpha_r=0.2, sigma=1.0, nu=0.7, dist0=0.0),
        dict(p=10, m=2, n_t=3, n_v=2, n_r=1, alpha_t=-0.5, alpha_r=0.6, sigma=0.0, nu=1.0, dist0=1.5),
        dict(p=3, m=5, n_t=3, n_v=3, n_r=4, alpha_t=0.2, alpha_r=-0.2, sigma=0.8, nu=0.5, dist0=0.5),
        dict(p=2, m=4, n_t=2, n_v=4, n_r=2, alpha_t=0.0, alpha_r=0.4, sigma=1.0, nu=0.0, dist0=0.0),
    ],
)
def test_modes_agree_statistically(kw):
    """Whole simulation, independent seeds per mode."""
    res = {mode: sim.simulate(**kw, runs=3000, test_tasks=10, seed=100 + i, meta_test=mode)
           for i, mode in enumerate(sim.META_TEST_MODES)}
    for a, b in [("full", "reduced"), ("full", "analytic"), ("reduced", "analytic")]:
        ra, rb = res[a], res[b]
        assert agree(ra["mean"], ra["stderr"], rb["mean"], rb["stderr"]), (a, b, ra["mean"], rb["mean"])


# --------------------------------------------------------------------------- hand-derived checks


def test_under_no_learning_rates_is_least_squares():
    # alpha_t = alpha_r = 0, nu = 0: omega* = OLS on N = m n_v points with noise sigma,
    # E|omega* - w0|^2 = sigma^2 p / (N - p - 1), test loss = (sigma^2 + |omega* - w0|^2) / 2
    p, m, n_v, sigma = 3, 4, 3, 0.7
    N = m * n_v
    expect = 0.5 * sigma**2 * (1 + p / (N - p - 1))
    r = sim.simulate(p=p, m=m, n_t=2, n_v=n_v, n_r=2, alpha_t=0.0, alpha_r=0.0, sigma=sigma, nu=0.0,
                     runs=20_000, test_tasks=1, seed=21)
    assert agree(r["mean"], r["stderr"], expect, 0.0), (r["mean"], expect)


def test_over_noiseless_projection():
    # alpha_t = alpha_r = 0, nu = sigma = 0: omega* = omega0 projected off the row space of the
    # N x p Gaussian design, E|omega* - w0|^2 = dist0 (1 - N/p)
    p, m, n_v, dist0 = 10, 2, 3, 2.0
    expect = 0.5 * dist0 * (1 - m * n_v / p)
    r = sim.simulate(p=p, m=m, n_t=2, n_v=n_v, n_r=2, alpha_t=0.0, alpha_r=0.0, sigma=0.0, nu=0.0,
                     dist0=dist0, runs=20_000, test_tasks=1, seed=22)
    assert agree(r["mean"], r["stderr"], expect, 0.0), (r["mean"], expect)


@pytest.mark.parametrize("case", ["under", "over"])
def test_single_training_task_by_hand(case):
    # m = 1, alpha_t = alpha_r = 0: omega* - w0 = delta_1 + OLS noise (under) or
    # (I - P)(omega0 - w0) + P delta_1 with P the projection on the row space of X_v (over, sigma = 0),
    # delta_1 = w_1 - w0 ~ N(0, nu^2/p I); the test task adds an independent delta: + nu^2
    n_v, nu = 12, 0.8
    if case == "under":
        p, sigma, dist0 = 3, 0.6, 0.0
        ea = nu**2 + sigma**2 * p / (n_v - p - 1)
    else:
        p, sigma, dist0 = 20, 0.0, 1.3
        ea = dist0 * (1 - n_v / p) + nu**2 * n_v / p
    expect = 0.5 * (sigma**2 + ea + nu**2)
    r = sim.simulate(p=p, m=1, n_t=2, n_v=n_v, n_r=2, alpha_t=0.0, alpha_r=0.0, sigma=sigma, nu=nu,
                     dist0=dist0, runs=20_000, test_tasks=5, seed=24)
    assert agree(r["mean"], r["stderr"], expect, 0.0), (r["mean"], expect)


def test_raw_meta_training_data_moments():
    prm = sim.make_params(p=5, m=3, n_t=4, n_v=2, n_r=2, alpha_t=0.3, alpha_r=0.1, sigma=0.7, nu=0.9)
    rng = np.random.Generator(np.random.PCG64(9))
    _, _, d = sim.sample_meta_training(rng, prm, 4000, return_data=True)
    checks = [
        (d["w"], prm.nu**2 / prm.p),  # w_i - w0 entries, w0 = 0
        (d["X_t"], 1.0),
        (d["X_v"], 1.0),
        (d["y_t"] - np.einsum("bmnp,bmp->bmn", d["X_t"], d["w"]), prm.sigma**2),
        (d["y_v"] - np.einsum("bmnp,bmp->bmn", d["X_v"], d["w"]), prm.sigma**2),
    ]
    for a, var in checks:
        a = a.ravel()
        assert agree(a.mean(), a.std() / math.sqrt(a.size), 0.0, 0.0)
        assert agree((a**2).mean(), (a**2).std() / math.sqrt(a.size), var, 0.0), (var, (a**2).mean())


@pytest.mark.parametrize("mode", ["full", "reduced"])
@pytest.mark.parametrize("case", ["under", "over"])
def test_adaptation_step_by_hand(mode, case):
    # alpha_t = 0, nu = 0 (so w = w0): E|omega* - w0|^2 = sigma^2 p/(N-p-1) (under) or
    # dist0 (1 - N/p) + sigma^2 N/(p-N-1) (over: E (X X^T)^{-1} = I/(p-N-1)); one adaptation step
    # with W = X_r^T X_r, E W = n I, E W^2 = n(n+p+1) I gives
    # E L = (sigma^2 + E|a|^2 (1 - 2 alpha_r + alpha_r^2 (n_r+p+1)/n_r) + alpha_r^2 sigma^2 p/n_r) / 2
    if case == "under":
        p, m, n_v, dist0 = 3, 4, 3, 0.0
    else:
        p, m, n_v, dist0 = 12, 2, 3, 1.5
    n_r, alpha_r, sigma = 4, 0.35, 0.8
    N = m * n_v
    ea = sigma**2 * p / (N - p - 1) if case == "under" else dist0 * (1 - N / p) + sigma**2 * N / (p - N - 1)
    expect = 0.5 * (sigma**2 + ea * (1 - 2 * alpha_r + alpha_r**2 * (n_r + p + 1) / n_r)
                    + alpha_r**2 * sigma**2 * p / n_r)
    r = sim.simulate(p=p, m=m, n_t=2, n_v=n_v, n_r=n_r, alpha_t=0.0, alpha_r=alpha_r, sigma=sigma, nu=0.0,
                     dist0=dist0, runs=6000, test_tasks=10, seed=23, meta_test=mode)
    assert agree(r["mean"], r["stderr"], expect, 0.0), (r["mean"], expect)


# --------------------------------------------------------------------------- the model family


def test_integral_float_sizes_are_sizes():
    """D1: 60.0 is the size 60 (same draws, same result); 60.5 is refused naming the parameter."""
    a = sim.simulate(**dict(SMALL, p=6.0, n_r=3.0), runs=70, seed=1, inner_steps=2.0)
    b = sim.simulate(**SMALL, runs=70, seed=1, inner_steps=2)
    assert np.array_equal(a["per_run"], b["per_run"]) and a["params"]["p"] == 6
    with pytest.raises(ValueError, match=r"^inner_steps must be a positive integer; got 1.5$"):
        sim.simulate(**SMALL, runs=2, inner_steps=1.5)


def test_progress_callback():
    """D2: called after each batch with the runs finished so far, ending at runs; never changes results."""
    for workers in (1, 2):
        seen = []
        r = sim.simulate(**SMALL, runs=300, seed=4, batch=64, workers=workers, progress=seen.append)
        assert seen == sorted(seen) and seen[-1] == 300 and len(seen) == 5
        assert np.array_equal(r["per_run"], sim.simulate(**SMALL, runs=300, seed=4)["per_run"])
    with pytest.raises(TypeError, match="^progress must be None or a callable"):
        sim.simulate(**SMALL, runs=2, progress=3)


@pytest.mark.parametrize("p", [3, 4, 5])
def test_interpolation_threshold_is_refused(p):
    """|p - m n_v| <= 1 with noise: the loss has no finite mean; without noise or task spread it does."""
    kw = dict(SMALL, p=p, m=2, n_v=2)
    with pytest.raises(ValueError, match=r"no finite mean at the interpolation threshold .* got p=%d, m n_v=4" % p):
        sim.simulate(**kw, runs=2)
    r = sim.simulate(**dict(kw, sigma=0.0, nu=0.0), runs=2)
    assert math.isfinite(r["mean"])


@pytest.mark.parametrize("k", [2, 3])
def test_inner_steps_reproduce_the_meta_loss_as_defined(k):
    """Z, b with k_t steps against the inner loop written out: k gradient steps from omega on the
    support set, then the query loss.  Catches a step applied to the wrong side or a missing term of b."""
    prm = sim.make_params(p=7, m=2, n_t=3, n_v=2, n_r=2, alpha_t=-0.3, alpha_r=0.1, sigma=0.5, nu=0.8,
                          inner_steps=k)
    rng = np.random.Generator(np.random.PCG64(1))
    Z, b, d = sim.sample_meta_training(rng, prm, 4, return_data=True)
    omega = rng.standard_normal((4, prm.p))
    Xt, yt, Xv, yv = d["X_t"], d["y_t"], d["X_v"], d["y_v"]
    theta = np.broadcast_to(omega[:, None, :], d["w"].shape).copy()
    for _ in range(k):
        grad = -np.einsum("bmnp,bmn->bmp", Xt, yt - np.einsum("bmnp,bmp->bmn", Xt, theta)) / prm.n_t
        theta = theta - prm.alpha_t * grad
    res = yv - np.einsum("bmnp,bmp->bmn", Xv, theta)
    direct = (res**2).sum(axis=2).mean(axis=1) / (2 * prm.n_v)
    assert np.allclose(sim.meta_loss(Z, b, omega), direct, rtol=1e-12)


@pytest.mark.parametrize("p,n_r,k", [(6, 3, 2), (4, 6, 3), (5, 5, 2), (1, 2, 2)])
def test_bidiagonal_sampler_agrees_with_full_given_omega_star(p, n_r, k):
    """k_r steps: the reduced (bidiagonal) sampler and the full sampler have the same law given omega*
    (means within 4 s.e., KS distance below 2.4, 20,000 test tasks).  Catches an off-by-one in the chi
    degrees of freedom or in the superdiagonal (a shifted law, several s.e. away)."""
    prm = sim.make_params(p=p, m=1, n_t=1, n_v=1, n_r=n_r, alpha_t=0.0, alpha_r=0.35, sigma=0.7, nu=0.9,
                          adaptation_steps=k)
    omega = np.random.default_rng(3).standard_normal((2, p)) * np.array([0.0, 1.2])[:, None]
    dist = np.einsum("bp,bp->b", omega, omega)
    T = 20_000
    full = sim.meta_test_full(np.random.Generator(np.random.PCG64(1)), omega, prm, T)
    red = sim.meta_test_reduced(np.random.Generator(np.random.PCG64(2)), dist, prm, T)
    for j in range(2):
        f, r = full[j], red[j]
        se = lambda a: a.std(ddof=1) / math.sqrt(T)  # noqa: E731
        assert agree(f.mean(), se(f), r.mean(), se(r)), (j, f.mean(), r.mean())
        assert ks_statistic(f, r) <= KS_BAND, (j, ks_statistic(f, r))


def test_spectrum_inputs():
    """Sigma's levels: column variances of the designs; omega0 - w0 uniform on the sphere of radius
    sqrt(dist0); p must be divisible by the number of levels; 'analytic' needs isotropic inputs."""
    prm = sim.make_params(p=6, m=2, n_t=3, n_v=2, n_r=2, alpha_t=0.2, alpha_r=0.1, sigma=0.5, nu=0.8,
                          dist0=2.0, spectrum=[0.5, 1.0, 4.0])
    assert np.array_equal(prm.sigma_diag(), [0.5, 0.5, 1.0, 1.0, 4.0, 4.0])
    rng = np.random.Generator(np.random.PCG64(3))
    _, _, d = sim.sample_meta_training(rng, prm, 4000, return_data=True)
    var = (d["X_t"] ** 2).mean(axis=(0, 1, 2))
    assert np.allclose(var, prm.sigma_diag(), rtol=0.05)
    start = d["omega0"]
    assert np.allclose(np.einsum("bp,bp->b", start, start), 2.0)
    assert np.allclose(start.mean(axis=0), 0.0, atol=5 * math.sqrt(2.0 / 6 / 4000))
    with pytest.raises(ValueError, match="p must be divisible by the number of spectrum levels; got p=6, 4 levels"):
        sim.simulate(**SMALL, runs=2, spectrum=[1, 2, 3, 4])
    with pytest.raises(ValueError, match="spectrum levels must be positive"):
        sim.simulate(**SMALL, runs=2, spectrum=[1.0, -1.0])
    with pytest.raises(ValueError, match="^meta_test='analytic' needs adaptation_steps=1 and isotropic inputs"):
        sim.simulate(**SMALL, runs=2, spectrum=[1.0, 2.0], meta_test="analytic")
    # 'reduced' samples everything with a spectrum and several adaptation steps: the same as 'full'
    kw = dict(SMALL, runs=64, seed=2, spectrum=[1.0, 2.0], test_tasks=3, adaptation_steps=2)
    assert np.array_equal(sim.simulate(**kw)["per_run"], sim.simulate(**kw, meta_test="full")["per_run"])


@pytest.mark.parametrize("p,n_r,spectrum", [(6, 3, [0.5, 1.5]), (4, 1, [0.2, 3.0]), (6, 8, [1.0, 2.0, 4.0])])
def test_reduced_sigma_sampler_agrees_with_full_given_omega_star(p, n_r, spectrum):
    """Anisotropic inputs, one step: the reduced sampler (2p + 3 draws) and the full sampler have the
    same law given omega* (means within 4 s.e., KS below 2.4, 20,000 test tasks), including omega* = w0
    with nu = 0 (v = 0).  Catches Sigma applied once instead of twice in the step (a shifted mean)."""
    for nu in (0.9, 0.0):
        prm = sim.make_params(p=p, m=1, n_t=1, n_v=1, n_r=n_r, alpha_t=0.0, alpha_r=0.45, sigma=0.7, nu=nu,
                              spectrum=spectrum)
        omega = np.random.default_rng(3).standard_normal((2, p)) * np.array([0.0, 1.2])[:, None]
        T = 20_000
        full = sim.meta_test_full(np.random.Generator(np.random.PCG64(1)), omega, prm, T)
        red = sim.meta_test_reduced_sigma(np.random.Generator(np.random.PCG64(2)), omega, prm, T)
        for j in range(2):
            f, r = full[j], red[j]
            se = lambda a: a.std(ddof=1) / math.sqrt(T)  # noqa: E731
            assert agree(f.mean(), se(f), r.mean(), se(r)), (nu, j, f.mean(), r.mean())
            assert ks_statistic(f, r) <= KS_BAND, (nu, j, ks_statistic(f, r))


def test_spectrum_test_loss_by_hand():
    """alpha_t = alpha_r = 0, nu = sigma = 0, omega0 - w0 uniform of norm^2 dist0, m n_v < p: omega* - w0
    = (I - P) delta0; with Sigma = I it is dist0 (1 - N/p) (test_over_noiseless_projection); with one
    level c it is c times that (the loss weighs by Sigma = c I)."""
    p, m, n_v, dist0, c = 10, 2, 3, 2.0, 3.0
    expect = 0.5 * c * dist0 * (1 - m * n_v / p)
    r = sim.simulate(p=p, m=m, n_t=2, n_v=n_v, n_r=2, alpha_t=0.0, alpha_r=0.0, sigma=0.0, nu=0.0,
                     dist0=dist0, runs=20_000, test_tasks=1, seed=22, spectrum=[c])
    assert agree(r["mean"], r["stderr"], expect, 0.0), (r["mean"], expect)
