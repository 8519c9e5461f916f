"""Monte Carlo of one-step MAML on the infinite-width network, through its kernel formula.

In the kernel (linearised) regime the network is ``f(x) = f0(x) + phi(x).delta`` with features
``phi = grad_theta f(.; theta_0)``, tangent kernel ``Theta = phi.phi`` and a random initial function
``f0`` (a Gaussian process with covariance ``Sigma``).  One-step MAML on it, written in kernel blocks
(see :mod:`symmaml.nonlinear.kernel_maml` for the derivation):

* task i, support points ``T_i`` and query points ``V_i``; ``S = (T, V)`` all support points, then all
  query points; ``M = [-(alpha_t/n_t) W_b, I]`` with ``W_b`` block diagonal, blocks ``Theta(V_i, T_i)``;
  residuals ``ytilde = y - f0``;
* meta-training (the solution closest to ``theta_0``): ``G = M Theta(S, S) M^T``,
  ``beta = M^T G^{-1} M ytilde_S``, ``f*(x) = f0(x) + Theta(x, S) beta``;
* adaptation on ``R`` (n_r points): ``f_r(x) = f*(x) + (alpha_r/n_r) Theta(x, R)(y_R - f*(R))``;
* test loss ``(sigma^2 + E_x (g(x) - f_r(x))^2) / 2`` with ``g(x) = (w.x + b)^2``.

:func:`kernel_predictions` evaluates ``f_r`` for any kernel and initial function (e.g. the empirical
ones of a finite network); :func:`ntk_simulate` averages the test loss at infinite width.

Variance reduction (exact): the prediction is linear in ``ytilde``, so given the points the average
over the initial function ``f0`` (a Gaussian process independent of the data) and over the label
noise is taken in closed form; inputs, tasks and test points are sampled.  ``average_f0=False``
samples ``f0`` and the noise instead (slower; for checking).
"""
from __future__ import annotations

import math
import numbers
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import threadpool_limits

import numpy as np

from ..memory import keep_freed_memory
from .checks import check_real as _real
from .checks import check_size as _size

from .kernels import kernel_blocks

__all__ = ["kernel_predictions", "ntk_simulate", "BLOCK", "sample_tasks", "ntk_chunk"]

BLOCK = 16
"""Runs per random-number block (one child generator each): results do not depend on ``workers``."""


# ----------------------------------------------------------------------------- validation

# ----------------------------------------------------------------------------- kernel form

def _meta_operator(K_SS, n_t, n_v, alpha_t, W=None):
    """``(G, W)`` for the points of one run stacked as all support points, then all query points.

    ``K_SS``: (m*(n_t+n_v), m*(n_t+n_v)) in that order; ``W_i = Theta(V_i, T_i)`` (m, n_v, n_t);
    ``G = M K M^T`` with ``M = [-a W_b, I]``, ``W_b`` block diagonal with blocks ``W_i``, ``a = alpha_t / n_t``:
    ``G = K_VV - a (W_b K_TV + K_VT W_b^T) + a^2 W_b K_TT W_b^T``.  Given ``W``, ``M`` is built from it and
    ``K_SS`` may be any symmetric matrix on the points (``M Sigma M^T`` for the initial function's covariance).
    """
    N = K_SS.shape[0]
    m = N // (n_t + n_v)
    N_t = m * n_t
    a = alpha_t / n_t
    if W is None:
        idx = np.arange(m)
        W = np.ascontiguousarray(K_SS[N_t:, :N_t].reshape(m, n_v, m, n_t)[idx, :, idx, :])
    B = _block_times(W, K_SS[:N_t, N_t:])                            # W_b K_TV
    C = _block_times(W, K_SS[:N_t, :N_t])                            # W_b K_TT
    G = K_SS[N_t:, N_t:] - a * (B + B.T) + a * a * _block_times(W, C.T)
    return G, W


def _block_times(W, X):
    """``W_b X`` for the block-diagonal ``W_b`` (blocks ``W_i``, (m, r, c)) and X (m c, k) -> (m r, k)."""
    m, r, c = W.shape
    return np.matmul(W, X.reshape(m, c, -1)).reshape(m * r, -1)


def _apply_M(vec, W, n_t, n_v, alpha_t):
    """``M y`` for vectors on the stacked points (m*(n_t+n_v), k) -> (m*n_v, k)."""
    N_t = W.shape[0] * n_t
    return vec[N_t:] - (alpha_t / n_t) * _block_times(W, vec[:N_t])


def _apply_MT(vec, W, n_t, n_v, alpha_t):
    """``M^T c`` for (m*n_v, k) -> (m*(n_t+n_v), k)."""
    top = -(alpha_t / n_t) * _block_times(W.transpose(0, 2, 1), vec)
    return np.concatenate([top, vec], axis=0)


def _stack_tasks(X_t, X_v):
    """All support points, then all query points: (..., m, n_t, d), (..., m, n_v, d) -> (..., m*(n_t+n_v), d)."""
    d = X_t.shape[-1]
    return np.concatenate([X_t.reshape(*X_t.shape[:-3], -1, d), X_v.reshape(*X_v.shape[:-3], -1, d)], axis=-2)


def kernel_predictions(K, f0, X_t, y_t, X_v, y_v, X_r, y_r, X_test, alpha_t, alpha_r):
    """Predictions at ``X_test`` of one-step MAML on the linearised network, in kernel form.

    ``K(A, B)``: the tangent kernel matrix of point sets A, B; ``f0(A)``: the initial function's
    values.  ``X_t`` (m, n_t, d), ``y_t`` (m, n_t), ``X_v`` (m, n_v, d), ``y_v`` (m, n_v), ``X_r``
    (n_r, d), ``y_r`` (n_r,), ``X_test`` (n, d).  Meta-training reaches the solution closest to
    ``theta_0``; then one adaptation step with ``alpha_r`` on ``(X_r, y_r)``.
    """
    X_t, X_v, X_r, X_test = (np.asarray(a, dtype=float) for a in (X_t, X_v, X_r, X_test))
    m, n_t, _ = X_t.shape
    n_v, n_r = X_v.shape[1], X_r.shape[0]
    S = _stack_tasks(X_t, X_v)
    y_S = np.concatenate([np.asarray(y_t, float).reshape(-1), np.asarray(y_v, float).reshape(-1)])
    G, W = _meta_operator(np.asarray(K(S, S), float), n_t, n_v, alpha_t)
    e = _apply_M((y_S - np.asarray(f0(S), float))[:, None], W, n_t, n_v, alpha_t)
    beta = _apply_MT(np.linalg.solve(G, e), W, n_t, n_v, alpha_t)[:, 0]
    f_star_R = np.asarray(f0(X_r), float) + np.asarray(K(X_r, S), float) @ beta
    rho = np.asarray(y_r, float) - f_star_R
    return (np.asarray(f0(X_test), float) + np.asarray(K(X_test, S), float) @ beta
            + (alpha_r / n_r) * np.asarray(K(X_test, X_r), float) @ rho)


# ----------------------------------------------------------------------------- sampling

def sample_tasks(rng, shape, d, nu, beta):
    """Task parameters ``w ~ N(0, (nu^2/d) I_d)`` and ``b ~ N(0, beta^2)`` of the given batch shape."""
    w = rng.standard_normal((*shape, d)) * (nu / math.sqrt(d))
    b = rng.standard_normal(shape) * beta
    return w, b


def _target(X, w, b):
    """``g(x) = (w.x + b)^2`` for points X (..., n, d) of tasks (w (..., d), b (...))."""
    return (np.einsum("...nd,...d->...n", X, w) + b[..., None]) ** 2


def _kernels(X1, X2):
    return kernel_blocks(X1, X2, check=False)


def _sample_run(rng, prm) -> dict:
    """The inputs and tasks of one run: m meta-training tasks, then T test tasks of n_x test points."""
    d, m, n_t, n_v, n_r, alpha_t, alpha_r, sigma, nu, beta, T, n_x = prm
    X_t = rng.standard_normal((m, n_t, d))
    X_v = rng.standard_normal((m, n_v, d))
    w, b = sample_tasks(rng, (m,), d, nu, beta)
    X_r = rng.standard_normal((T, n_r, d))
    X_x = rng.standard_normal((T, n_x, d))
    w_r, b_r = sample_tasks(rng, (T,), d, nu, beta)
    return dict(
        S=_stack_tasks(X_t, X_v),                                # all support points, then all query points
        g_S=np.concatenate([_target(X_t, w, b).reshape(-1), _target(X_v, w, b).reshape(-1)]),
        X_r=X_r, X_x=X_x, g_R=_target(X_r, w_r, b_r), g_x=_target(X_x, w_r, b_r))


def _predictor(run, prm) -> dict:
    """The prediction at each test point as a linear form in ``ytilde = y - f0`` at the training points,
    in the reduced coordinates of meta-training.

    ``f_r(x) = f0(x) + k_x[S] . ytilde_S + k_x[R] . ytilde_R`` with ``k_x[R] = c Theta(x, R)``,
    ``c = alpha_r / n_r``, and ``k_x[S] = (Theta(x,S) - c Theta(x,R) Theta(R,S)) M^T G^{-1} M = (M^T v_x)^T``,
    ``v_x = G^{-1} M u_x`` (length ``m n_v``): the columns ``V`` of the ``v_x`` are what is solved for, and
    every average below is taken through them, without forming the ``k_x[S]`` (``m (n_t + n_v)`` long).
    Also returns the ``M``-images of the covariance blocks of ``f0`` the averages need.
    """
    d, m, n_t, n_v, n_r, alpha_t, alpha_r, sigma, nu, beta, T, n_x = prm
    S, X_r, X_x = run["S"], run["X_r"], run["X_x"]
    n_m = m * n_v
    K_SS, C_SS = _kernels(S, S)
    G, W = _meta_operator(K_SS, n_t, n_v, alpha_t)
    H, _ = _meta_operator(C_SS, n_t, n_v, alpha_t, W=W)               # M Sigma(S, S) M^T
    K_Sx, C_Sx = _kernels(S, X_x.reshape(T * n_x, d))
    K_SR, C_SR = _kernels(S, X_r.reshape(T * n_r, d))                # (N, T n_r)
    K_xR, C_xR = _kernels(X_x, X_r)                                  # (T, n_x, n_r)
    c = alpha_r / n_r

    def M(a):
        return _apply_M(a, W, n_t, n_v, alpha_t)

    # M u_x = M Theta(S, x) - c M Theta(S, R_t) Theta(R_t, x), for the test points x of task t
    MK_R = M(K_SR).reshape(n_m, T, n_r)
    MU = M(K_Sx) - c * np.einsum("vtr,txr->vtx", MK_R, K_xR).reshape(n_m, T * n_x)
    V = np.linalg.solve(G, MU)                                       # (m n_v, T n_x)
    return dict(V=V, W=W, H=H, Mg_S=M(run["g_S"][:, None])[:, 0], MC_x=M(C_Sx), MC_R=M(C_SR),
                K_xR=K_xR, C_xR=C_xR, c=c)


def _explicit_kS(pred, prm) -> np.ndarray:
    """``k_x[S] = (M^T v_x)^T`` for every test point: (T, n_x, m (n_t + n_v))."""
    n_t, n_v, alpha_t, T, n_x = prm[2], prm[3], prm[5], prm[10], prm[11]
    return _apply_MT(pred["V"], pred["W"], n_t, n_v, alpha_t).T.reshape(T, n_x, -1)


def _expected_sq_error(run, pred, prm) -> np.ndarray:
    """``E (g(x) - f_r(x))^2`` over the initial function and the label noise, exactly: (T, n_x).

    With ``f0`` a centred Gaussian process independent of the data, ``P = (S, R)``, ``k_x = (k_x[S], k_x[R])``:
    ``(g(x) - k_x g_P)^2 + sigma^2 |k_x|^2 + Sigma(x,x) - 2 k_x Sigma(P,x) + k_x Sigma(P,P) k_x^T``; every
    ``k_x[S]`` product through ``v_x``: ``k_x[S] y = v_x . M y``, ``|k_x[S]|^2 = v_x^T M M^T v_x`` (``M M^T =
    I + a^2 W W^T`` per task), ``k_x[S] Sigma(S,S) k_x[S]^T = v_x^T (M Sigma M^T) v_x``.
    """
    d, n_t, n_r, alpha_t, sigma, T, n_x = prm[0], prm[2], prm[4], prm[5], prm[7], prm[10], prm[11]
    V, W, c, K_xR = pred["V"], pred["W"], pred["c"], pred["K_xR"]
    n_m, m = V.shape[0], W.shape[0]
    kR = c * K_xR                                                    # (T, n_x, n_r)
    Vt = V.reshape(n_m, T, n_x)
    signal = (run["g_x"] - (pred["Mg_S"] @ V).reshape(T, n_x)
              - np.matmul(kR, run["g_R"][:, :, None])[..., 0])
    # |k_x[S]|^2 = |v_x|^2 + a^2 |W^T v_x|^2 (per task block)
    WtV = np.matmul(W.transpose(0, 2, 1), V.reshape(m, -1, T * n_x))  # (m, n_t, T n_x)
    norm_S = (np.einsum("vp,vp->p", V, V) + (alpha_t / n_t) ** 2 * np.einsum("ijp,ijp->p", WtV, WtV))
    _, C_RR = _kernels(run["X_r"], run["X_r"])                      # (T, n_r, n_r)
    X_x = run["X_x"]
    C_xx = 0.5 * (np.einsum("tni,tni->tn", X_x, X_x) / d + 1.0)    # Sigma(x, x) = q/2 (kappa_1(0) = 1/2)
    quad = (np.einsum("vp,vp->p", V, pred["H"] @ V).reshape(T, n_x)
            + 2 * np.einsum("txr,vtr,vtx->tx", kR, pred["MC_R"].reshape(n_m, T, n_r), Vt)
            + np.einsum("txr,trs,txs->tx", kR, C_RR, kR))
    cross = np.einsum("vp,vp->p", V, pred["MC_x"]).reshape(T, n_x) + np.einsum("txr,txr->tx", kR, pred["C_xR"])
    noise = sigma**2 * (norm_S.reshape(T, n_x) + np.einsum("txr,txr->tx", kR, kR))
    return signal**2 + noise + C_xx - 2 * cross + quad


def _sampled_sq_error(run, pred, prm, rng, draws: int = 1) -> np.ndarray:
    """``(g(x) - f_r(x))^2`` averaged over ``draws`` samples of the initial function and the noise: (T, n_x).

    ``f0`` is drawn jointly at the training, adaptation and test points of each test task.
    """
    sigma, n_r = prm[7], prm[4]
    S, X_r, X_x = run["S"], run["X_r"], run["X_x"]
    kS, kR = _explicit_kS(pred, prm), pred["c"] * pred["K_xR"]
    T, n_x, N = kS.shape
    z_S = sigma * rng.standard_normal((draws, N))
    out = np.empty((T, n_x))
    for t in range(T):
        P = np.concatenate([S, X_r[t], X_x[t]])
        _, C = _kernels(P, P)
        f0 = rng.standard_normal((draws, len(P))) @ np.linalg.cholesky(C + 1e-10 * np.eye(len(P))).T
        z_R = sigma * rng.standard_normal((draws, n_r))
        pred_t = (run["g_S"] + z_S - f0[:, :N]) @ kS[t].T + (run["g_R"][t] + z_R - f0[:, N:N + n_r]) @ kR[t].T
        out[t] = ((run["g_x"][t] - f0[:, N + n_r:] - pred_t) ** 2).mean(axis=0)
    return out


def _run_loss(rng, prm, average_f0):
    """The test loss of one run (meta-training, then ``T`` test tasks of ``n_x`` test points)."""
    run = _sample_run(rng, prm)
    pred = _predictor(run, prm)
    sq = _expected_sq_error(run, pred, prm) if average_f0 else _sampled_sq_error(run, pred, prm, rng)
    return 0.5 * (prm[7] ** 2 + sq.mean())


def ntk_simulate(d, m, n_t, n_v, n_r, alpha_t, alpha_r, sigma, nu, beta, *, runs=1000, seed=0,
                 test_tasks=4, test_points=32, average_f0=True, workers=1) -> dict:
    """Average test loss of one-step MAML on the infinite-width network, by Monte Carlo.

    Each run samples m meta-training tasks with their data, meta-trains in kernel form (exactly),
    and averages the test loss over ``test_tasks`` fresh test tasks with ``test_points`` fresh test
    points each (population loss by Monte Carlo over x).  The initial function and the label noise
    are averaged in closed form (``average_f0=True``, exact) or sampled.  Returns a dict with
    ``mean``, ``stderr`` (over runs), ``runs``, ``per_run`` and the settings.  Runs are drawn in
    blocks of :data:`BLOCK`, each from its own child of ``SeedSequence(seed)``, so results do not
    depend on ``workers`` (threads; with more than one, BLAS runs one thread per worker, and the sums
    of the linear algebra may differ in their last bits).
    """
    sizes = dict(d=d, m=m, n_t=n_t, n_v=n_v, n_r=n_r)
    sizes = {k: _size(k, v) for k, v in sizes.items()}
    rates = {k: _real(k, v) for k, v in dict(alpha_t=alpha_t, alpha_r=alpha_r).items()}
    scales = {k: _real(k, v, 0.0) for k, v in dict(sigma=sigma, nu=nu, beta=beta).items()}
    runs = _size("runs", runs)
    T, n_x = _size("test_tasks", test_tasks), _size("test_points", test_points)
    workers = _size("workers", workers)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    prm = (sizes["d"], sizes["m"], sizes["n_t"], sizes["n_v"], sizes["n_r"], rates["alpha_t"], rates["alpha_r"],
           scales["sigma"], scales["nu"], scales["beta"], T, n_x)
    keep_freed_memory()  # megabyte temporaries in every run: reused, not paged in again (see symmaml.memory)
    n_blocks = -(-runs // BLOCK)
    children = np.random.SeedSequence(int(seed)).spawn(n_blocks)
    per_run = np.empty(runs)

    def block(k):
        nb = min(BLOCK, runs - k * BLOCK)
        rng = np.random.default_rng(children[k])
        for j in range(nb):
            per_run[k * BLOCK + j] = _run_loss(rng, prm, bool(average_f0))

    if workers == 1:
        for k in range(n_blocks):
            block(k)
    else:
        # one BLAS thread per worker: with OpenBLAS's own threads too, two workers ran at 0.6x the speed of one
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(block, range(n_blocks)))
    mean = float(per_run.mean())
    if not math.isfinite(mean):
        raise FloatingPointError(f"non-finite average test loss at {sizes}, {rates}, {scales}")
    stderr = float(per_run.std(ddof=1) / math.sqrt(runs)) if runs > 1 else math.inf
    return dict(mean=mean, stderr=stderr, runs=runs, per_run=per_run, seed=seed, test_tasks=T,
                test_points=n_x, average_f0=bool(average_f0), params=dict(**sizes, **rates, **scales))


def ntk_chunk(point: dict, *, runs: int, seed: int, **options) -> np.ndarray:
    """The per-run losses of ``ntk_simulate(**point, runs=runs, seed=seed, **options)``: a task of
    :func:`symmaml.sweep.run` (a point of at most ``sweep.CHUNK_RUNS`` runs is exactly that call)."""
    return ntk_simulate(**point, runs=runs, seed=seed, **options)["per_run"]
