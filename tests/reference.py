"""Independent references shared by the tests (brute-force enumerations, no symmaml code)."""
from __future__ import annotations

import numpy as np


def pairings(items):
    """Every perfect matching of ``items`` (a list), as a list of pairs; none for odd length."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for k in range(len(rest)):
        for tail in pairings(rest[:k] + rest[k + 1:]):
            yield [(first, rest[k])] + tail


def own_task_samples(prm, steps, tasks, seed):
    """tr L^j and tr(C L^j), j = 1..4, for simulated tasks of ``steps`` inner steps: L = X_v A^{2k} X_v^T and
    C = sigma^2 I + X_v M X_v^T, M = (nu^2/p) A^{2k} + (alpha_t sigma^2/n_t)(I - A^k) sum_{j<k} A^j
    (the task offset through A^k, the support noise through (alpha_t/n_t) S_k X_t^T)."""
    rng = np.random.default_rng(seed)
    P, T, V, a, s, v = (prm[k] for k in ("p", "n_t", "n_v", "alpha_t", "sigma", "nu"))
    I = np.eye(P)
    Xt = rng.standard_normal((tasks, T, P))
    Xv = rng.standard_normal((tasks, V, P))
    A = I - a / T * Xt.transpose(0, 2, 1) @ Xt
    Ak = np.linalg.matrix_power(A, steps)
    S = sum(np.linalg.matrix_power(A, j) for j in range(steps))
    M = v**2 / P * Ak @ Ak + a * s**2 / T * (I - Ak) @ S
    L = Xv @ Ak @ Ak @ Xv.transpose(0, 2, 1)
    C = s**2 * np.eye(V) + Xv @ M @ Xv.transpose(0, 2, 1)
    out, Lk = [], np.broadcast_to(np.eye(V), L.shape)
    for _ in range(4):
        Lk = Lk @ L
        out.append((np.trace(Lk, axis1=1, axis2=2), np.trace(C @ Lk, axis1=1, axis2=2)))
    return out
