"""MAML on the real two-layer ReLU network (JAX): meta-training to convergence, meta-test on fresh tasks.

One run (:func:`train_maml` averages ``runs`` of them):

1. **Data** (NumPy, seeded): ``theta_0`` (:func:`.network.init_params`); ``m`` tasks
   ``y = (w.x + b)^2 + z`` (``x ~ N(0, I_d)``, ``w ~ N(0, (nu^2/d) I_d)``, ``b ~ N(0, beta^2)``,
   ``z ~ N(0, sigma^2)``) with ``n_t`` support and ``n_v`` query points each.
2. **Meta-training**, exactly one-step MAML from ``omega = theta_0``: the meta-loss
   ``(1/m) sum_i L(omega - alpha_t grad L(omega; D_t^i); D_v^i)``, ``L = |y - f|^2 / (2n)``.  Its gradient
   is ``jax.grad`` of a function that itself calls ``jax.grad`` (the exact second-order meta-gradient).
   The outer loop (``optimizer``):

   * ``'gauss-newton'`` (default): the meta-gradient preconditioned by the Gauss-Newton metric at the
     current point, ``omega <- omega - lr n_q J^T (J J^T)^+2 J grad`` (``J``: the Jacobian of the
     ``n_q = m n_v`` query residuals, task by task with ``jax.jacrev``, second order through the inner
     step), i.e. the minimum-norm Gauss-Newton step; ``lr = 1`` unless backtracking halves it (a trial is
     rejected when it doubles the meta-loss: near a ReLU kink, where the inner gradient jumps, a full
     step may raise it a little first).  Its updates lie in the row space of ``J``, so on the linearised
     network it lands on the solution closest to ``theta_0`` in one step, as gradient descent does in
     the limit; on the network it converges in 2-12 steps.
   * ``'nesterov'``: plain first-order, ``optax.sgd`` with Nesterov momentum, ``lr = 1/L`` and momentum
     ``(1 - sqrt(mu/L)) / (1 + sqrt(mu/L))`` from the extreme eigenvalues of ``J J^T / n_q`` at
     ``theta_0``; restarts from ``theta_0`` with half the rate if the meta-loss blows up.  Thousands of
     steps where the meta-problem is ill-conditioned (large ``|alpha_t|``).

   **Convergence criterion:** overparameterised (``P = k(d+2) > m n_v``): interpolation, the
   meta-training loss at most ``tol`` (1e-8) times its value at ``theta_0``; otherwise the squared
   meta-gradient norm at most ``tol`` times its initial value.  A run that has not met it after
   ``max_steps`` steps (or whose backtracking stalled) is kept in the averages and reported
   (``converged``, ``not_converged``), never dropped.
3. **Meta-test:** ``test_tasks`` fresh tasks; on each, one adaptation step with ``alpha_r`` on ``n_r``
   points, then the population loss ``(sigma^2 + E_x (g(x) - f(x; theta_r))^2)/2``, ``g(x) = (w.x + b)^2``:
   the noise term exactly, the average over ``x`` by Monte Carlo on ``test_points`` fresh points per
   task.  Its sampling error is reported per run (``population_stderr``) against the spread between runs.

Common random numbers: run ``r`` draws everything from ``SeedSequence([seed, r])``: its initialisation,
meta-training data and test tasks do not depend on ``alpha_t`` (a list of rates is trained side by side
on the same draws, so differences between rates are measured run by run), and the task data do not
depend on the width or the parameterisation.  Everything runs in float64 (``jax.enable_x64`` inside the
call only).  XLA's CPU computations have no run-to-run nondeterminism (no atomics), so a call is
reproducible bit for bit with the same arguments on the same machine and JAX version.
"""
from __future__ import annotations

import math
import numbers
from functools import lru_cache

import numpy as np

from .network import (
    Params, apply, check_parameterisation, check_real, check_size, init_params, require_jax, sample_tasks, target,
)

__all__ = ["train_maml", "train_many", "meta_train", "maml_predictions", "OPTIMIZERS", "TOL", "MAX_STEPS", "TEST_TASKS", "TEST_POINTS"]

OPTIMIZERS = ("gauss-newton", "nesterov")
#: interpolation tolerance: final meta-training loss / initial meta-training loss
TOL = 1e-8
#: the default cap on outer steps, per optimiser
MAX_STEPS = {"gauss-newton": 200, "nesterov": 20_000}
TEST_TASKS = 1000
TEST_POINTS = 64
#: test points per task of the paired NTK-limit reference (``paired_ntk=True``)
PAIRED_POINTS = 16
#: bytes of hidden activations per meta-test batch (sets how many test tasks are evaluated at once; about
#: a core's cache: larger batches made the meta-test memory-bound and up to 2x slower)
_TEST_BUDGET = 2**20
#: Gauss-Newton stops (not converged) when backtracking has shrunk the step below this fraction
_MIN_LR = 2.0**-20


def _network_fns(unravel, parameterisation):
    """``f(flat, X)`` and the loss ``L(flat; X, y) = |y - f|^2 / (2n)`` on flat parameter vectors."""
    import jax.numpy as jnp

    def f(flat, X):
        return apply(unravel(flat), X, parameterisation)

    def loss(flat, X, y):
        r = y - f(flat, X)
        return 0.5 * jnp.mean(r * r)
    return f, loss


@lru_cache(maxsize=16)
def _compiled_train(width, d, m, n_t, n_v, parameterisation, optimizer):
    """Jitted meta-training ``(theta0, X_t, y_t, X_v, y_v, alphas, tol, max_steps) -> dict`` (one omega per rate)."""
    import jax
    import jax.numpy as jnp
    import optax
    from jax.flatten_util import ravel_pytree

    P = width * (d + 2)
    over = P > m * n_v
    n_q = m * n_v

    def train_all(theta0, X_t, y_t, X_v, y_v, alphas, tol, max_steps):
        flat0, unravel = ravel_pytree(theta0)
        f, loss = _network_fns(unravel, parameterisation)

        def task_residuals(flat, alpha, Xt, yt, Xv, yv):
            inner = flat - alpha * jax.grad(loss)(flat, Xt, yt)       # one inner step
            return yv - f(inner, Xv)

        def residuals(flat, alpha):                                   # (m n_v,)
            return jax.vmap(task_residuals, (None, None, 0, 0, 0, 0))(flat, alpha, X_t, y_t, X_v, y_v).reshape(-1)

        def meta_loss(flat, alpha):
            r = residuals(flat, alpha)
            return 0.5 * jnp.mean(r * r)

        meta_value_and_grad = jax.value_and_grad(meta_loss)
        task_jacobian = jax.vmap(jax.jacrev(task_residuals), (None, None, 0, 0, 0, 0))

        def curvature(flat, alpha):
            """The Jacobian J of the query residuals (second order through the inner step) and eigh(J J^T)."""
            J = task_jacobian(flat, alpha, X_t, y_t, X_v, y_v).reshape(n_q, P)  # task by task
            lam, V = jnp.linalg.eigh(J @ J.T)
            return J, lam, V

        def condition(lam):
            mu = lam[0] if over else lam[n_q - P]
            return lam[-1] / mu

        def train_gauss_newton(alpha):
            """Meta-gradient preconditioned by the Gauss-Newton metric at the current point, with backtracking:
            omega <- omega - lr n_q J^T (J J^T)^+2 J grad, i.e. the minimum-norm Gauss-Newton step for lr = 1."""
            v0, g0 = meta_value_and_grad(flat0, alpha)
            crit0 = v0 if over else jnp.sum(g0 * g0)

            def criterion(v, g):
                return (v if over else jnp.sum(g * g)) / crit0

            def cond(s):
                flat, v, g, step, lr, rejected, kappa = s
                return (criterion(v, g) > tol) & (step < max_steps) & (lr > _MIN_LR)

            def body(s):
                flat, v, g, step, lr, rejected, kappa = s
                J, lam, V = curvature(flat, alpha)
                kappa = jnp.where(step == 0, condition(lam), kappa)
                keep = lam > lam[-1] * 1e-12
                inv2 = jnp.where(keep, 1.0 / jnp.where(keep, lam, 1.0) ** 2, 0.0)
                direction = n_q * (J.T @ (V @ (inv2 * (V.T @ (J @ g)))))
                trial = flat - lr * direction
                v_trial, g_trial = meta_value_and_grad(trial, alpha)
                # non-monotone acceptance: near a ReLU kink the full step may raise the loss a little
                # before the next one lands on the right side; backtrack only on a real increase
                ok = jnp.isfinite(v_trial) & (v_trial < 2.0 * v)
                flat = jnp.where(ok, trial, flat)
                v = jnp.where(ok, v_trial, v)
                g = jnp.where(ok, g_trial, g)
                lr = jnp.where(ok, jnp.minimum(1.0, 2.0 * lr), 0.5 * lr)
                return flat, v, g, step + 1, lr, rejected + (~ok).astype(jnp.int32), kappa

            one = jnp.asarray(1.0, flat0.dtype)
            s = (flat0, v0, g0, jnp.int32(0), one, jnp.int32(0), jnp.nan * one)
            flat, v, g, step, lr, rejected, kappa = jax.lax.while_loop(cond, body, s)
            return flat, step, criterion(v, g), rejected, v0, kappa

        def train_nesterov(alpha):
            """Plain first-order: gradient descent with Nesterov momentum, lr = 1/L and momentum from L/mu at
            theta_0; restarts from theta_0 with half the step size if the meta-loss blows up."""
            _, lam0, _ = curvature(flat0, alpha)
            L, kappa = lam0[-1] / n_q, condition(lam0)
            mom = (1.0 - jnp.sqrt(1.0 / kappa)) / (1.0 + jnp.sqrt(1.0 / kappa))
            v0, g0 = meta_value_and_grad(flat0, alpha)
            crit0 = v0 if over else jnp.sum(g0 * g0)

            def make_opt(lr):
                return optax.sgd(lr, momentum=mom, nesterov=True)

            def criterion(v, g):
                return (v if over else jnp.sum(g * g)) / crit0

            def cond(s):
                flat, opt_state, step, v, g, lr, restarts = s
                return (criterion(v, g) > tol) & (step < max_steps)

            def body(s):
                flat, opt_state, step, v, g, lr, restarts = s
                upd, opt_state = make_opt(lr).update(g, opt_state, flat)
                flat = flat + upd
                v, g = meta_value_and_grad(flat, alpha)
                blown = ~jnp.isfinite(v) | (v > 10.0 * v0)
                lr = jnp.where(blown, 0.5 * lr, lr)
                flat = jnp.where(blown, flat0, flat)
                opt_state = jax.tree_util.tree_map(lambda a, z: jnp.where(blown, z, a), opt_state,
                                                   make_opt(lr).init(flat0))
                v = jnp.where(blown, v0, v)
                g = jnp.where(blown, g0, g)
                return flat, opt_state, step + 1, v, g, lr, restarts + blown.astype(jnp.int32)

            lr0 = 1.0 / L
            s = (flat0, make_opt(lr0).init(flat0), jnp.int32(0), v0, g0, jnp.asarray(lr0, flat0.dtype), jnp.int32(0))
            flat, _, step, v, g, lr, restarts = jax.lax.while_loop(cond, body, s)
            return flat, step, criterion(v, g), restarts, v0, kappa

        train = train_gauss_newton if optimizer == "gauss-newton" else train_nesterov
        omegas, steps, crit, rejected, v0, kappa = jax.lax.map(train, alphas)  # each rate its own steps
        return dict(omegas=omegas, steps=steps, criterion=crit, rejected=rejected, initial_meta_loss=v0,
                    condition=kappa)

    return jax.jit(train_all)



@lru_cache(maxsize=16)
def _compiled_test(width, d, n_r, T, N, parameterisation):
    """Jitted meta-test ``(theta0, omegas, X_r, y_r, X_x, g_x, alpha_r) -> dict`` over T tasks of N points."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    def test_all(theta0, omegas, X_r, y_r, X_x, g_x, alpha_r):
        _, unravel = ravel_pytree(theta0)
        f, loss = _network_fns(unravel, parameterisation)

        def test_task(omega, Xr, yr, Xx, gx):
            theta_r = omega - alpha_r * jax.grad(loss)(omega, Xr, yr)  # one adaptation step
            e = gx - f(theta_r, Xx)
            e2 = e * e
            return jnp.mean(e2), jnp.var(e2, ddof=1)

        # one rate at a time, a few tasks at a time: the hidden activations of a batch stay in cache
        batch = max(1, min(T, _TEST_BUDGET // (8 * N * width)))

        def test_rate(omega):
            return jax.lax.map(lambda a: test_task(omega, *a), (X_r, y_r, X_x, g_x), batch_size=batch)

        mean_e2, var_e2 = (x.T for x in jax.lax.map(test_rate, omegas))   # (T, n_alpha)
        excess = 0.5 * jnp.mean(mean_e2, axis=0)                     # test loss - sigma^2/2
        pop_stderr = 0.5 * jnp.sqrt(jnp.sum(var_e2, axis=0) / N) / T
        task_sd = 0.5 * jnp.std(mean_e2, axis=0, ddof=1)
        return dict(excess=excess, population_stderr=pop_stderr, task_sd=task_sd)

    return jax.jit(test_all)



@lru_cache(maxsize=16)
def _compiled_forward(width, d, rows, parameterisation):
    """Jitted ``(theta0, X (chunks, rows, d)) -> f(X)`` one chunk of rows at a time."""
    import jax

    def forward(theta0, X):
        return jax.lax.map(lambda x: apply(theta0, x, parameterisation), X)
    return jax.jit(forward)


def _network_values(theta0, X, parameterisation):
    """``f(X; theta0)`` for points X (n, d), in chunks that keep the hidden activations small (float64)."""
    import jax
    import jax.numpy as jnp

    n, d = X.shape
    width = len(theta0.a)
    rows = max(64, 4 * _TEST_BUDGET // (8 * width))
    chunks = -(-n // rows)
    padded = np.zeros((chunks * rows, d))
    padded[:n] = X
    with jax.enable_x64(True):
        p0 = Params(*(jnp.asarray(v, jnp.float64) for v in theta0))
        out = _compiled_forward(width, d, rows, parameterisation)(p0, padded.reshape(chunks, rows, d))
        return np.asarray(out).reshape(-1)[:n]


class _Memo:
    """A function of NumPy arrays, memoised on their bytes (the kernel form asks for the same blocks again)."""

    def __init__(self, fn):
        self.fn, self.cache = fn, {}

    def __call__(self, *arrays):
        key = tuple((a.shape, a.tobytes()) for a in arrays)
        if key not in self.cache:
            self.cache[key] = self.fn(*arrays)
        return self.cache[key]


def _paired_ntk_excess(theta0, X_t, y_t, X_v, y_v, X_r, y_r, X_x, g_x, alphas, alpha_r, parameterisation):
    """The NTK-limit test loss (minus sigma^2/2) of the same draw: the kernel form (``kernel_predictions``) with
    the infinite-width tangent kernel and this network's own initial function, on the same meta-training
    data, test tasks and test points.  Its average over draws is the NTK limit exactly (the loss is
    quadratic in ``f0``, whose covariance is the NNGP at every width), so ``network - paired`` measures the
    finite-width gap with the draw-to-draw spread largely cancelled.  Only the first :data:`PAIRED_POINTS`
    test points of each task are used (the kernel blocks cost more than the network; the extra
    sampling error is small against the spread of the gap between runs and is part of ``gap_stderr``)."""
    from .kernels import ntk
    from .ntk_sim import kernel_predictions

    T, n_r, d = X_r.shape
    X_x, g_x = X_x[:, :PAIRED_POINTS], g_x[:, :PAIRED_POINTS]
    N = X_x.shape[1]
    S = np.concatenate([X_t, X_v], axis=1).reshape(-1, d)
    points = np.concatenate([X_r.reshape(-1, d), X_x.reshape(-1, d)])
    f0_values = _network_values(theta0, np.concatenate([S, points]), parameterisation)
    f0_S, f0_points = f0_values[:len(S)], f0_values[len(S):]

    def f0(A):                       # the kernel form evaluates f0 on S and on the prediction points only
        if A.shape == S.shape and np.array_equal(A, S):
            return f0_S
        if A.shape == points.shape and np.array_equal(A, points):
            return f0_points
        return _network_values(theta0, A, parameterisation)

    K = _Memo(ntk)
    K_xR = ntk(X_x, X_r)                                                  # (T, N, n_r)
    out = []
    for a in alphas:
        # f* (meta-trained, not adapted): alpha_r = 0 makes the adaptation set irrelevant
        f_star = kernel_predictions(K, f0, X_t, y_t, X_v, y_v, X_r[0], y_r[0], points, float(a), 0.0)
        f_R, f_x = f_star[:T * n_r].reshape(T, n_r), f_star[T * n_r:].reshape(T, N)
        f_r = f_x + (alpha_r / n_r) * np.einsum("tnr,tr->tn", K_xR, y_r - f_R)
        out.append(0.5 * np.mean((g_x - f_r) ** 2))
    return np.array(out)


def meta_train(params0, X_t, y_t, X_v, y_v, alpha_t, *, parameterisation: str = "ntk",
               optimizer: str = "gauss-newton", tol: float = TOL, max_steps: int | None = None):
    """Meta-train the network from ``params0`` on one set of tasks; returns ``(params, info)``.

    ``X_t`` (m, n_t, d), ``y_t`` (m, n_t), ``X_v`` (m, n_v, d), ``y_v`` (m, n_v); ``alpha_t`` a number.
    ``params`` is the meta-trained ``omega*`` (NumPy, float64); ``info`` has ``steps``, ``criterion``,
    ``converged``, ``rejected``, ``condition``.  The same code as :func:`train_maml` uses.
    """
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    check_parameterisation(parameterisation)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {optimizer!r}")
    max_steps = check_size("max_steps", MAX_STEPS[optimizer] if max_steps is None else max_steps)
    require_jax()
    X_t, X_v = np.asarray(X_t, float), np.asarray(X_v, float)
    m, n_t, d = X_t.shape
    with jax.enable_x64(True):
        p0 = Params(*(jnp.asarray(np.asarray(v), jnp.float64) for v in params0))
        width = p0.a.shape[0]
        train = _compiled_train(width, d, m, n_t, X_v.shape[1], parameterisation, optimizer)
        res = train(p0, X_t, np.asarray(y_t, float), X_v, np.asarray(y_v, float),
                    jnp.asarray([check_real("alpha_t", alpha_t)]), jnp.float64(tol), jnp.int32(max_steps))
        _, unravel = ravel_pytree(p0)
        omega = Params(*(np.asarray(v) for v in unravel(res["omegas"][0])))
    info = {k: np.asarray(res[k])[0].item() for k in ("steps", "criterion", "rejected", "condition")}
    info["converged"] = info["criterion"] <= tol
    return omega, info


def maml_predictions(params0, X_t, y_t, X_v, y_v, X_r, y_r, X_test, alpha_t, alpha_r, *,
                     parameterisation: str = "ntk", optimizer: str = "gauss-newton", tol: float = TOL):
    """Predictions at ``X_test`` (n, d) of the network meta-trained from ``params0`` and adapted by one step
    with ``alpha_r`` on ``(X_r, y_r)``: the finite network's counterpart of ``linearised_predictions`` and
    the kernel form's ``kernel_predictions`` (same arguments)."""
    import jax
    import jax.numpy as jnp

    omega, _ = meta_train(params0, X_t, y_t, X_v, y_v, alpha_t, parameterisation=parameterisation,
                          optimizer=optimizer, tol=tol)
    with jax.enable_x64(True):
        om = Params(*(jnp.asarray(v) for v in omega))
        X_r, y_r = jnp.asarray(X_r, jnp.float64), jnp.asarray(y_r, jnp.float64)

        def loss(p):
            r = y_r - apply(p, X_r, parameterisation)
            return 0.5 * jnp.mean(r * r)
        grad = jax.grad(loss)(om)
        theta_r = Params(*(w - float(alpha_r) * g for w, g in zip(om, grad)))
        return np.asarray(apply(theta_r, jnp.asarray(X_test, jnp.float64), parameterisation))


def _rates(name, value):
    """``(array of rates, given as a scalar?)``."""
    if isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) > 0:
        if np.ndim(value) != 1 or len(value) == 0:
            raise ValueError(f"{name} must be a number or a non-empty one-dimensional list of numbers; got {value!r}")
        return np.array([check_real(name, v) for v in value]), False
    return np.array([check_real(name, value.item() if isinstance(value, np.ndarray) else value)]), True


def train_maml(width, d, m, n_t, n_v, n_r, alpha_t, alpha_r, sigma, nu, beta, *, runs: int = 10, seed: int = 0,
               parameterisation: str = "ntk", test_tasks: int = TEST_TASKS, test_points: int = TEST_POINTS,
               tol: float = TOL, max_steps: int | None = None, optimizer: str = "gauss-newton",
               paired_ntk: bool = False, progress=None, workers: int | None = 1, scheduler: str | None = None) -> dict:
    """Average test loss of one-step MAML trained on the two-layer ReLU network of width ``width``.

    ``alpha_t`` may be a number or a list of rates; the rates of a list are trained side by side with
    common random numbers (same initialisation, data and test tasks in each run).  Returns a dict:

    * ``mean``, ``stderr`` (over runs), ``runs``, ``per_run`` (runs,) -- or (n_alpha,), (n_alpha,),
      (runs, n_alpha) for a list;
    * convergence per run (same shapes as ``per_run``): ``converged`` (bool), ``steps``,
      ``criterion`` (the final relative meta-training loss, or relative squared gradient norm when
      underparameterised), ``rejected`` (rejected steps: Gauss-Newton backtracking, or Nesterov restarts), ``condition`` (``L / mu`` at ``theta_0``); ``not_converged``
      (how many (run, rate) pairs missed the criterion);
    * ``population_stderr`` (per run: the Monte Carlo error of its population loss) and ``task_sd``
      (per run: the spread of the test loss between its test tasks);
    * with ``paired_ntk=True`` (NTK parameterisation only): ``ntk_per_run``, the NTK-limit test loss of each
      run's own draw (its initial function, data, test tasks and points; see :func:`_paired_ntk_excess`),
      and the finite-width gap ``gap`` = mean of ``per_run - ntk_per_run`` with ``gap_stderr``: an
      unbiased estimate of (network average - NTK limit) whose error is much smaller than ``stderr``;
    * the settings: ``alpha_t``, ``seed``, ``parameterisation``, ``optimizer``, ``test_tasks``,
      ``test_points``, ``tol``, ``max_steps``, ``criterion_name``, ``params``.

    Runs are drawn from ``SeedSequence([seed, r])`` (r = 0, 1, ...): the first runs of a longer call are
    the runs of a shorter one.

    ``progress``: a callable called with the number of runs finished so far, after each run.

    ``workers``, ``scheduler``: where the runs are trained (:func:`symmaml.sweep.run`: ``workers=1`` in this
    process, the default; ``N > 1`` a local Dask cluster of N processes; ``scheduler`` an existing Dask
    cluster; ``None`` as the runner decides).  Each run is one task seeded by its index, so the result is
    byte-identical wherever it runs.
    """
    point = dict(width=width, d=d, m=m, n_t=n_t, n_v=n_v, n_r=n_r, alpha_t=alpha_t, alpha_r=alpha_r, sigma=sigma,
                 nu=nu, beta=beta)
    (out,) = train_many([point], runs=runs, seed=seed, parameterisation=parameterisation, test_tasks=test_tasks,
                        test_points=test_points, tol=tol, max_steps=max_steps, optimizer=optimizer,
                        paired_ntk=paired_ntk, workers=workers, scheduler=scheduler,
                        progress=None if progress is None else (lambda runs_done, _points: progress(runs_done)))
    return out


def train_many(points, *, runs: int = 10, seed: int = 0, parameterisation: str = "ntk",
               test_tasks: int = TEST_TASKS, test_points: int = TEST_POINTS, tol: float = TOL,
               max_steps: int | None = None, optimizer: str = "gauss-newton", paired_ntk: bool = False,
               progress=None, workers: int | None = 1, scheduler: str | None = None) -> list:
    """:func:`train_maml` at each of ``points`` (dicts of ``width, d, m, n_t, n_v, n_r, alpha_t, alpha_r, sigma,
    nu, beta``; ``alpha_t`` a number or a list), as one sweep: every (point, run) is a task of
    :func:`symmaml.sweep.run` (or of a loop in this process, ``workers=1``), so the results are byte-identical
    to calling :func:`train_maml` point by point, wherever they run.  ``progress(runs_done, points_done)``."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    runs = check_size("runs", runs)
    prepared = [_prepare(pt, seed=int(seed), parameterisation=parameterisation, test_tasks=test_tasks,
                         test_points=test_points, tol=tol, max_steps=max_steps, optimizer=optimizer,
                         paired_ntk=paired_ntk) for pt in points]
    require_jax()
    if workers == 1 and scheduler is None:
        pers, done = [], 0
        for i, (task, _, _) in enumerate(prepared):
            tick = None if progress is None else (lambda n, d0=done, i=i: progress(d0 + n, i))
            pers.append(_train_runs(task, range(runs), tick))
            done += runs
            if progress is not None:
                progress(done, i + 1)
    else:
        from .. import sweep

        tasks = [dict(task, run=r) for task, _, _ in prepared for r in range(runs)]
        rows = sweep.run(_train_chunk, tasks, runs=1, seed=int(seed), reduce=_as_rows, workers=workers,
                         scheduler=scheduler,
                         progress=None if progress is None else (lambda n, _r: progress(n, n // runs)))
        rows = [row for block in rows for row in block]
        pers = [_unpack(rows[i * runs:(i + 1) * runs], len(task["alphas"]), task["paired_ntk"])
                for i, (task, _, _) in enumerate(prepared)]
    return [_summarise(per, task, scalar, over, runs) for per, (task, scalar, over) in zip(pers, prepared)]


def _prepare(point: dict, *, seed, parameterisation, test_tasks, test_points, tol, max_steps, optimizer,
             paired_ntk) -> tuple:
    """``(task, scalar, over)``: one point's arguments checked, as :func:`_train_runs` takes them."""
    names = ("width", "d", "m", "n_t", "n_v", "n_r", "alpha_t", "alpha_r", "sigma", "nu", "beta")
    missing = [n for n in names if n not in point]
    unknown = sorted(set(point) - set(names))
    if missing or unknown:
        raise TypeError(f"a point needs exactly {', '.join(names)}; missing {missing}, unknown {unknown}")
    sizes = {k: check_size(k, point[k]) for k in ("width", "d", "m", "n_t", "n_v", "n_r")}
    alphas, scalar = _rates("alpha_t", point["alpha_t"])
    a_r = check_real("alpha_r", point["alpha_r"])
    scales = {k: check_real(k, point[k], 0.0) for k in ("sigma", "nu", "beta")}
    T, N = check_size("test_tasks", test_tasks), check_size("test_points", test_points)
    if N < 2:
        raise ValueError(f"test_points must be an integer >= 2 (for the sampling error); got {test_points!r}")
    tol = check_real("tol", tol)
    if not 0.0 < tol < 1.0:
        raise ValueError(f"tol must be in (0, 1); got {tol!r}")
    check_parameterisation(parameterisation)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {optimizer!r}")
    max_steps = check_size("max_steps", MAX_STEPS[optimizer] if max_steps is None else max_steps)
    if paired_ntk and parameterisation != "ntk":
        raise ValueError("paired_ntk needs parameterisation='ntk' (the NTK limit is that of the NTK parameterisation)")
    over = sizes["width"] * (sizes["d"] + 2) > sizes["m"] * sizes["n_v"]
    task = dict(sizes=sizes, alphas=[float(a) for a in alphas], alpha_r=a_r, scales=scales, seed=seed,
                parameterisation=parameterisation, test_tasks=T, test_points=N, tol=tol, max_steps=max_steps,
                optimizer=optimizer, paired_ntk=bool(paired_ntk))
    return task, scalar, over


#: the per-run records of :func:`_train_runs`, in the order :func:`_train_chunk` packs them
_FIELDS = ("excess", "population_stderr", "task_sd", "steps", "criterion", "rejected", "condition")


def _train_chunk(point: dict, *, runs: int, seed: int) -> np.ndarray:
    """One run of :func:`train_maml` as a task of :func:`symmaml.sweep.run`: run ``point['run']`` of the
    sweep (seeded ``SeedSequence([seed, run])``, as in process), packed into one row of floats."""
    task = {k: v for k, v in point.items() if k != "run"}
    per = _train_runs(dict(task, seed=seed), range(point["run"], point["run"] + runs))  # seed: the sweep's own
    names = _FIELDS + (("ntk_excess",) if task["paired_ntk"] else ())
    return np.concatenate([np.asarray(per[n], dtype=float).reshape(runs, -1) for n in names], axis=1)


def _as_rows(values) -> list:
    """The sweep's reduction for :func:`_train_chunk`: the packed rows themselves."""
    return [list(map(float, row)) for row in np.asarray(values, dtype=float)]


def _unpack(rows: list, n_alpha: int, paired: bool) -> dict:
    names = _FIELDS + (("ntk_excess",) if paired else ())
    a = np.asarray(rows, dtype=float).reshape(len(rows), len(names), n_alpha)
    return {n: a[:, i, :] for i, n in enumerate(names)}


def _train_runs(task: dict, run_ids, progress=None) -> dict:
    """The per-run records ``{name: (runs, n_alpha)}`` of the runs ``run_ids`` (run ``r`` drawn from
    ``SeedSequence([seed, r])``)."""
    import jax
    import jax.numpy as jnp

    sizes, alphas, a_r, scales = task["sizes"], np.asarray(task["alphas"]), task["alpha_r"], task["scales"]
    seed, parameterisation, T, N = task["seed"], task["parameterisation"], task["test_tasks"], task["test_points"]
    tol, max_steps, optimizer, paired_ntk = task["tol"], task["max_steps"], task["optimizer"], task["paired_ntk"]
    k_, d_, m_, nt_, nv_, nr_ = (sizes[n] for n in ("width", "d", "m", "n_t", "n_v", "n_r"))
    out = {name: [] for name in _FIELDS + (("ntk_excess",) if paired_ntk else ())}
    sig, nu_, beta_ = scales["sigma"], scales["nu"], scales["beta"]
    with jax.enable_x64(True):
        train = _compiled_train(k_, d_, m_, nt_, nv_, parameterisation, optimizer)
        test = _compiled_test(k_, d_, nr_, T, N, parameterisation)
        controls = (jnp.asarray(alphas), jnp.float64(tol), jnp.int32(max_steps))
        for done, r in enumerate(run_ids, 1):
            s_init, s_meta, s_test = np.random.SeedSequence([int(seed), r]).spawn(3)
            theta0 = init_params(np.random.default_rng(s_init), k_, d_, parameterisation)
            rng = np.random.default_rng(s_meta)
            w, b = sample_tasks(rng, (m_,), d_, nu_, beta_)
            X_t, X_v = rng.standard_normal((m_, nt_, d_)), rng.standard_normal((m_, nv_, d_))
            y_t = target(X_t, w, b) + sig * rng.standard_normal((m_, nt_))
            y_v = target(X_v, w, b) + sig * rng.standard_normal((m_, nv_))
            rng = np.random.default_rng(s_test)
            w_r, b_r = sample_tasks(rng, (T,), d_, nu_, beta_)
            X_r = rng.standard_normal((T, nr_, d_))
            y_r = target(X_r, w_r, b_r) + sig * rng.standard_normal((T, nr_))
            X_x = rng.standard_normal((T, N, d_))
            g_x = target(X_x, w_r, b_r)
            res = train(theta0, X_t, y_t, X_v, y_v, *controls)
            res.update(test(theta0, res["omegas"], X_r, y_r, X_x, g_x, jnp.float64(a_r)))
            if paired_ntk:
                res["ntk_excess"] = _paired_ntk_excess(theta0, X_t, y_t, X_v, y_v, X_r, y_r, X_x, g_x, alphas, a_r,
                                                       parameterisation)
            for name in out:
                out[name].append(np.asarray(res[name]))
            if progress is not None:
                progress(done)
    return {name: np.stack(v) for name, v in out.items()}               # (runs, n_alpha)


def _summarise(per: dict, task: dict, scalar: bool, over: bool, runs: int) -> dict:
    """train_maml's result from the per-run records."""
    alphas, sig, tol = np.array(task["alphas"]), task["scales"]["sigma"], task["tol"]
    k_, parameterisation, paired_ntk = task["sizes"]["width"], task["parameterisation"], task["paired_ntk"]
    losses = 0.5 * sig**2 + per["excess"]
    if not np.all(np.isfinite(losses)):
        bad = np.argwhere(~np.isfinite(losses))
        r, i = bad[0]
        raise FloatingPointError(f"non-finite test loss in run {r} at alpha_t={alphas[i]!r} "
                                 f"(width={k_}, parameterisation={parameterisation})")
    converged = per["criterion"] <= tol
    mean = losses.mean(axis=0)
    stderr = losses.std(axis=0, ddof=1) / math.sqrt(runs) if runs > 1 else np.full(len(alphas), math.inf)

    def shape(x):
        return x[:, 0] if scalar and x.ndim == 2 else (x[0] if scalar else x)

    extra = {}
    if paired_ntk:
        ntk_losses = 0.5 * sig**2 + per["ntk_excess"]
        gaps = losses - ntk_losses
        gap_se = gaps.std(axis=0, ddof=1) / math.sqrt(runs) if runs > 1 else np.full(len(alphas), math.inf)
        extra = dict(ntk_per_run=shape(ntk_losses), gap=shape(gaps.mean(axis=0)), gap_stderr=shape(gap_se))
        if scalar:
            extra["gap"], extra["gap_stderr"] = float(extra["gap"]), float(extra["gap_stderr"])

    return dict(
        mean=float(mean[0]) if scalar else mean,
        stderr=float(stderr[0]) if scalar else stderr,
        runs=runs,
        per_run=shape(losses),
        converged=shape(converged),
        not_converged=int((~converged).sum()),
        steps=shape(per["steps"].astype(int)),
        criterion=shape(per["criterion"]),
        rejected=shape(per["rejected"].astype(int)),
        condition=shape(per["condition"]),
        population_stderr=shape(per["population_stderr"]),
        task_sd=shape(per["task_sd"]),
        alpha_t=float(alphas[0]) if scalar else alphas,
        seed=task["seed"], parameterisation=parameterisation, test_tasks=task["test_tasks"],
        test_points=task["test_points"], tol=tol, max_steps=task["max_steps"], optimizer=task["optimizer"],
        criterion_name="meta-training loss / initial" if over else "squared meta-gradient norm / initial",
        params=dict(**task["sizes"], alpha_r=task["alpha_r"], **task["scales"]),
        **extra,
    )
