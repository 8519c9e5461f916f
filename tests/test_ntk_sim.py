"""The kernel-form MAML predictor and the infinite-width Monte Carlo (symmaml.nonlinear.ntk_sim)."""
from __future__ import annotations

import numpy as np
import pytest

from symmaml.nonlinear.kernels import nngp
from symmaml.nonlinear.ntk_sim import kernel_predictions, ntk_simulate

SMALL = dict(d=4, m=3, n_t=3, n_v=2, n_r=3, alpha_t=0.6, alpha_r=0.4, sigma=0.3, nu=1.0, beta=0.5)


def _parameter_space_maml(phi, f0, X_t, y_t, X_v, y_v, X_r, y_r, X_test, alpha_t, alpha_r):
    """One-step MAML on the linear model f0(x) + phi(x).delta, solved in parameter space (P > m n_v)."""
    m, n_t, _ = X_t.shape
    n_r = X_r.shape[0]
    rows, rhs = [], []
    for i in range(m):
        Pt, Pv = phi(X_t[i]), phi(X_v[i])
        A = np.eye(Pt.shape[1]) - alpha_t / n_t * Pt.T @ Pt          # the inner step is affine in delta
        c = alpha_t / n_t * Pt.T @ (y_t[i] - f0(X_t[i]))
        rows.append(Pv @ A)
        rhs.append(y_v[i] - f0(X_v[i]) - Pv @ c)
    Z, e = np.vstack(rows), np.concatenate(rhs)
    delta = np.linalg.lstsq(Z, e, rcond=None)[0]                      # minimum norm: closest to theta_0
    Pr = phi(X_r)
    delta_r = delta + alpha_r / n_r * Pr.T @ (y_r - f0(X_r) - Pr @ delta)
    return f0(X_test) + phi(X_test) @ delta_r


@pytest.mark.parametrize("alpha_t", [-0.8, 0.0, 0.7])
def test_kernel_form_equals_parameter_space(alpha_t):
    """With explicit features (K = phi phi^T), the kernel-form predictor is parameter-space MAML, to 1e-10."""
    rng = np.random.default_rng(7)
    m, n_t, n_v, n_r, d, P = 3, 4, 2, 5, 3, 40
    F = rng.standard_normal((d, P))
    phi = lambda X: np.tanh(X @ F)                                      # noqa: E731
    f0 = lambda X: np.sin(X.sum(-1))                                    # noqa: E731
    K = lambda A, B: phi(A) @ phi(B).T                                  # noqa: E731
    data = (rng.standard_normal((m, n_t, d)), rng.standard_normal((m, n_t)), rng.standard_normal((m, n_v, d)),
            rng.standard_normal((m, n_v)), rng.standard_normal((n_r, d)), rng.standard_normal(n_r),
            rng.standard_normal((9, d)))
    got = kernel_predictions(K, f0, *data, alpha_t, 0.3)
    want = _parameter_space_maml(phi, f0, *data, alpha_t, 0.3)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_closed_form_average_over_f0_and_noise_agrees_with_sampling_them():
    """Given the points of a run, the exact average over the initial function and the label noise
    against 20,000 samples of them, per test point, within 5 standard errors of the samples.

    Checked once with a wrong answer: dropping the cross term ``-2 k_x Sigma(P, x)`` moves every
    point by hundreds of standard errors.
    """
    from symmaml.nonlinear import ntk_sim

    prm = (4, 3, 3, 2, 3, 0.6, 0.4, 0.3, 1.0, 0.5, 2, 5)
    rng = np.random.default_rng(5)
    run = ntk_sim._sample_run(rng, prm)
    pred = ntk_sim._predictor(run, prm)
    exact = ntk_sim._expected_sq_error(run, pred, prm)
    # per-draw values to get the standard error: 40 batches of 500 draws
    batches = np.array([ntk_sim._sampled_sq_error(run, pred, prm, rng, draws=500) for _ in range(40)])
    mean, se = batches.mean(0), batches.std(0, ddof=1) / np.sqrt(len(batches))
    assert np.all(np.abs(mean - exact) < 5 * se + 1e-12), np.max(np.abs(mean - exact) / se)
    assert np.all(se < 0.05 * exact)  # precise enough to see a missing term


def test_the_two_modes_of_ntk_simulate_agree():
    """``average_f0=False`` samples what the default averages exactly: same mean within 4 s.e. of the pair."""
    a = ntk_simulate(**SMALL, runs=200, seed=3)
    b = ntk_simulate(**SMALL, runs=200, seed=3, average_f0=False)
    diff = b["per_run"] - a["per_run"]
    assert abs(diff.mean()) < 4 * diff.std(ddof=1) / np.sqrt(diff.size)


def test_results_do_not_depend_on_threads_and_are_seeded():
    a = ntk_simulate(**SMALL, runs=40, seed=11)
    b = ntk_simulate(**SMALL, runs=40, seed=11, workers=2)
    c = ntk_simulate(**SMALL, runs=40, seed=12)
    np.testing.assert_array_equal(a["per_run"], b["per_run"])
    assert a["mean"] != c["mean"]
    assert set(a) >= {"mean", "stderr", "runs", "per_run"} and a["runs"] == 40


@pytest.mark.parametrize("change,match", [
    (dict(d=0), "d must be a positive integer"),
    (dict(m=2.5), "m must be a positive integer"),
    (dict(sigma=-1.0), "sigma must be a finite number >= 0"),
    (dict(alpha_t=float("nan")), "alpha_t must be a finite real number"),
])
def test_bad_input_names_the_parameter(change, match):
    with pytest.raises(ValueError, match=match):
        ntk_simulate(**{**SMALL, **change}, runs=2)


def test_integral_float_sizes_are_accepted():
    a = ntk_simulate(**{**SMALL, "d": 4.0, "m": 3.0}, runs=16, seed=1)
    b = ntk_simulate(**SMALL, runs=16, seed=1)
    assert a["mean"] == b["mean"]


def test_reduced_coordinates_give_the_explicit_average():
    """``_expected_sq_error`` works through ``v_x = G^{-1} M u_x`` (never forming ``k_x[S] = M^T v_x``); the
    same average written with the explicit ``k_x[S]`` (the formula of its docstring) agrees to 1e-10."""
    from symmaml.nonlinear import ntk_sim

    prm = (5, 4, 3, 2, 3, -0.7, 0.4, 0.3, 1.0, 0.5, 3, 6)
    d, sigma = prm[0], prm[7]
    run = ntk_sim._sample_run(np.random.default_rng(11), prm)
    pred = ntk_sim._predictor(run, prm)
    kS, kR = ntk_sim._explicit_kS(pred, prm), pred["c"] * pred["K_xR"]
    S, X_r, X_x = run["S"], run["X_r"], run["X_x"]
    want = np.empty(kS.shape[:2])
    for t in range(kS.shape[0]):
        P = np.concatenate([S, X_r[t]])
        g_P = np.concatenate([run["g_S"], run["g_R"][t]])
        for x in range(kS.shape[1]):
            k = np.concatenate([kS[t, x], kR[t, x]])
            point = X_x[t, x][None]
            C_PP, C_Px = nngp(P, P), nngp(P, point)[:, 0]
            want[t, x] = ((run["g_x"][t, x] - k @ g_P) ** 2 + sigma**2 * k @ k
                          + nngp(point, point)[0, 0] - 2 * k @ C_Px + k @ C_PP @ k)
    np.testing.assert_allclose(ntk_sim._expected_sq_error(run, pred, prm), want, rtol=1e-10)
    assert d == X_x.shape[-1]
