"""One-step MAML on the explicit linearisation of a finite network, solved in parameter space.

The linearised network is ``f_lin(x; theta) = f0(x) + phi(x).(theta - theta_0)`` with the features
``phi = grad_theta f(.; theta_0)`` (the network's Jacobian, by JAX) and its initial function ``f0``.
One-step MAML on it is the linear problem of the paper with these features.  With
``delta = omega - theta_0``, ``ytilde = y - f0`` and ``a = alpha_t / n_t``, task i's query residual after
the inner step is ``b_i - Z_i delta`` with

    Z_i = phi(X_v^i) - a phi(X_v^i) phi(X_t^i)^T phi(X_t^i),   b_i = ytilde_v^i - a phi(X_v^i) phi(X_t^i)^T ytilde_t^i,

so meta-training from ``theta_0`` reaches ``delta* = Z^+ b`` (the least-squares solution closest to
``theta_0``: the minimum-norm one, by SVD); then one adaptation step with ``alpha_r`` on ``(X_r, y_r)``.
This is the parameter-space reference for the kernel form (``symmaml.nonlinear.kernel_maml``,
``ntk_sim.kernel_predictions``): both must agree to rounding for any finite network.
Features are computed in float64; the algebra is NumPy (P x m n_v matrices, never P x P).
"""
from __future__ import annotations

import numpy as np

from .network import apply, check_parameterisation, features

__all__ = ["linearised_maml", "linearised_predictions"]


def _x64(fn):
    import jax

    with jax.enable_x64(True):
        return fn()


def linearised_maml(params0, X_t, y_t, X_v, y_v, alpha_t, parameterisation: str = "ntk"):
    """``delta*`` (P,): the meta-training solution closest to ``theta_0`` of MAML on the linearised network.

    ``X_t`` (m, n_t, d), ``y_t`` (m, n_t), ``X_v`` (m, n_v, d), ``y_v`` (m, n_v).
    """
    import jax.numpy as jnp

    check_parameterisation(parameterisation)
    X_t, X_v = np.asarray(X_t, float), np.asarray(X_v, float)
    y_t, y_v = np.asarray(y_t, float), np.asarray(y_v, float)
    m, n_t, d = X_t.shape
    n_v = X_v.shape[1]

    def feats():
        p0 = type(params0)(*(jnp.asarray(np.asarray(v), dtype=jnp.float64) for v in params0))
        phi_t = np.asarray(features(p0, jnp.asarray(X_t.reshape(-1, d)), parameterisation)).reshape(m, n_t, -1)
        phi_v = np.asarray(features(p0, jnp.asarray(X_v.reshape(-1, d)), parameterisation)).reshape(m, n_v, -1)
        f0_t = np.asarray(apply(p0, jnp.asarray(X_t), parameterisation))
        f0_v = np.asarray(apply(p0, jnp.asarray(X_v), parameterisation))
        return phi_t, phi_v, f0_t, f0_v

    phi_t, phi_v, f0_t, f0_v = _x64(feats)
    a = float(alpha_t) / n_t
    K_vt = np.matmul(phi_v, phi_t.transpose(0, 2, 1))                       # (m, n_v, n_t)
    Z = phi_v - a * np.matmul(K_vt, phi_t)                                   # (m, n_v, P)
    b = (y_v - f0_v) - a * np.matmul(K_vt, (y_t - f0_t)[..., None])[..., 0]  # (m, n_v)
    delta, *_ = np.linalg.lstsq(Z.reshape(m * n_v, -1), b.reshape(-1), rcond=None)
    return delta


def linearised_predictions(params0, X_t, y_t, X_v, y_v, X_r, y_r, X_test, alpha_t, alpha_r,
                           parameterisation: str = "ntk"):
    """Predictions at ``X_test`` (n, d) of one-step MAML on the linearised network (parameter space).

    Same arguments as ``kernel_predictions`` of the kernel form, with the network's ``theta_0`` in place of
    the kernel and initial function: ``X_r`` (n_r, d), ``y_r`` (n_r,).
    """
    import jax.numpy as jnp

    delta = linearised_maml(params0, X_t, y_t, X_v, y_v, alpha_t, parameterisation)
    X_r, X_test = np.asarray(X_r, float), np.asarray(X_test, float)
    y_r = np.asarray(y_r, float)
    n_r = X_r.shape[0]

    def feats():
        p0 = type(params0)(*(jnp.asarray(np.asarray(v), dtype=jnp.float64) for v in params0))
        return (np.asarray(features(p0, jnp.asarray(X_r), parameterisation)),
                np.asarray(features(p0, jnp.asarray(X_test), parameterisation)),
                np.asarray(apply(p0, jnp.asarray(X_r), parameterisation)),
                np.asarray(apply(p0, jnp.asarray(X_test), parameterisation)))

    phi_r, phi_x, f0_r, f0_x = _x64(feats)
    # adaptation: theta_r = omega* - alpha_r grad L_lin(omega*; D_r)
    delta_r = delta + (float(alpha_r) / n_r) * phi_r.T @ (y_r - f0_r - phi_r @ delta)
    return f0_x + phi_x @ delta_r
