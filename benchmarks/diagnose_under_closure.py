"""Which approximation of the underparameterised corrected order fails with several inner steps?

    python benchmarks/diagnose_under_closure.py [--runs 6000] [--tasks 100000] [--steps 2 3]

The corrected order (``symmaml/maml/corrected_under.py``) makes three approximations: the other tasks
isotropic (``R -> r I``, a self-consistent closure), a two-node Gauss quadrature of the own task's
spectral measures (built from the exact moments ``E tr L^j``, ``E tr C L^j``, ``j <= 4``), and the
anchoring at the exact ``alpha_t = 0`` result.  This script separates the quadrature from the rest: it
evaluates the closure with the own task's averages ``S_1(r) = E tr L(I + rL)^{-1}``,
``S_2(r) = E tr L(I + rL)^{-2}`` and ``F(r) = E tr C(I + rL)^{-1}L(I + rL)^{-1}`` taken by Monte Carlo
over ``--tasks`` simulated own tasks (eigenpairs of ``L``; no quadrature), anchors it the same way
(at the exact ``alpha_t = 0`` result), and compares with

- a simulation of the meta-training solution (``--runs`` runs; ``E|omega* - w0|^2``),
- the library's corrected order and its leading order (the corrected order for ``k_t = 2, 3`` is now
  ``symmaml/maml/corrected_under_steps.py``, the derived form of the prototype below; the README's table keeps
  the two-node quadrature's numbers, measured with this script before that change),

all at the Figure 3 parameters (alpha_r = 0.2), as test losses (the adaptation averaged in closed
form, ``sim.meta_test_analytic``: the loss is affine in ``E|omega* - w0|^2``).  The Monte Carlo
closure's standard error is from ten batches of own tasks.  A diagnostic, not a result: the closure
with Monte Carlo averages is not a formula of the library.

The last columns are the prototype of what replaced the quadrature (:func:`spike_closure`): the own
task's averages from a self-consistent deterministic equivalent in which the inner step's large
directions are explicit, so that the only average left is over one eigenvalue of the support Gram
matrix, which is light-tailed: sampled, and (last column, no sampling at all) by a Gauss quadrature of
its exact Wishart moments.  Anchored the same way.
"""
from __future__ import annotations

import argparse

import numpy as np
from scipy.optimize import brentq

from symmaml import sim
from symmaml.maml import Model, average_test_loss
from symmaml.maml.loss import NotDerived
from symmaml.maml.paper import FIGURE_3

FIG3 = {**FIGURE_3, "alpha_r": 0.2}
ALPHAS = (-0.3, -0.1, 0.1, 0.2, 0.3)
BATCHES = 10


def simulated_error(alpha_t: float, steps: int, runs: int, seed: int) -> tuple[float, float]:
    """E|omega* - w0|^2 (w0 = 0) by simulation: mean and standard error."""
    prm = sim.make_params(**FIG3, alpha_t=alpha_t, inner_steps=steps)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(-(-runs // 500)):
        Z, b = sim.sample_meta_training(rng, prm, 500)
        out.append((sim.meta_solution(Z, b, np.zeros(prm.p), "under") ** 2).sum(1))
    x = np.concatenate(out)[:runs]
    return x.mean(), x.std(ddof=1) / np.sqrt(len(x))


def own_tasks(alpha_t: float, steps: int, tasks: int, seed: int):
    """Eigenvalues of L = X_v A^{2k} X_v^T and the weights u^T C u of C = sigma^2 I + X_v M X_v^T on its
    eigenvectors, for ``tasks`` simulated own tasks (M as in tests/reference.py)."""
    P, T, V, s, v = (FIG3[k] for k in ("p", "n_t", "n_v", "sigma", "nu"))
    rng = np.random.default_rng(seed)
    lam, wc = [], []
    for start in range(0, tasks, 10_000):
        n = min(10_000, tasks - start)
        Xt, Xv = rng.standard_normal((n, T, P)), rng.standard_normal((n, V, P))
        A = np.eye(P) - alpha_t / T * Xt.transpose(0, 2, 1) @ Xt
        Ak = np.linalg.matrix_power(A, steps)
        S = sum(np.linalg.matrix_power(A, j) for j in range(steps))
        M = v**2 / P * Ak @ Ak + alpha_t * s**2 / T * (np.eye(P) - Ak) @ S
        L = Xv @ Ak @ Ak @ Xv.transpose(0, 2, 1)
        C = s**2 * np.eye(V) + Xv @ M @ Xv.transpose(0, 2, 1)
        e, U = np.linalg.eigh(L)
        lam.append(e)
        wc.append(np.einsum("tvk,tvw,twk->tk", U, C, U))
    return np.concatenate(lam), np.concatenate(wc)


def closure_of(s1, s2, f) -> float:
    """m r_2 F of the self-consistent closure, given the own task's averages as functions of r."""
    m, P = FIG3["m"], FIG3["p"]
    r = brentq(lambda r: m * r * s1(r) - P, 1e-14, 1e3)
    return m * (P * r / (s1(r) + m * s2(r))) * f(r)


def closure(lam, wc) -> float:
    """The closure with the own task's averages taken over the samples (eigenpairs of L)."""
    return closure_of(lambda r: (lam / (1 + r * lam)).sum(1).mean(),
                      lambda r: (lam / (1 + r * lam) ** 2).sum(1).mean(),
                      lambda r: (wc * lam / (1 + r * lam) ** 2).sum(1).mean())


def closure_with_error(lam, wc) -> tuple[float, float]:
    parts = [closure(lam[i::BATCHES], wc[i::BATCHES]) for i in range(BATCHES)]
    return closure(lam, wc), np.std(parts, ddof=1) / np.sqrt(BATCHES)


def support_eigenvalues(samples: int, seed: int) -> np.ndarray:
    """The non-zero eigenvalues of the support Gram matrix X_t^T X_t, pooled over ``samples`` tasks."""
    P, T = FIG3["p"], FIG3["n_t"]
    X = np.random.default_rng(seed).standard_normal((samples, min(T, P), max(T, P)))
    return np.linalg.eigvalsh(X @ X.transpose(0, 2, 1)).ravel()


def support_quadrature(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss rule (nodes, weights summing to 1) of the mean law of the non-zero eigenvalues of X_t^T X_t, from
    its exact moments: the library's (:func:`symmaml.rmt.wishart_quadrature.gauss_rule`), as floats."""
    from symmaml.rmt.wishart_quadrature import gauss_rule

    x, w = gauss_rule(FIG3["n_t"], FIG3["p"], nodes)
    return np.array([float(v) for v in x]), np.array([float(v) for v in w])


def spike_closure(alpha_t: float, steps: int, lam_w: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The closure with the own task's averages from a deterministic equivalent that keeps the inner
    step's large directions (a prototype for the next derivation, not a result).

    ``L = sum_j w_j x_j x_j^T`` over the columns of X_v in A's eigenbasis: ``w = 1`` on the p - n_t
    directions the support set does not see, ``w = (1 - alpha_t lambda/n_t)^{2k}`` on the n_t others
    (lambda an eigenvalue of X_t^T X_t).  Sherman-Morrison gives exactly
    ``tr L(I + rL)^{-1} = sum_j w_j q_j/(1 + r w_j q_j)`` and ``tr X_v M X_v^T (I + rL)^{-1} =
    sum_j m_j q_j/(1 + r w_j q_j)``, ``q_j = x_j^T (I + r L_{-j})^{-1} x_j``; each ``q_j`` is replaced by
    ``delta = tr(I + rL)^{-1} = n_v - r S_1``, solved self-consistently.  The only average left is over
    one eigenvalue lambda (over ``lam_w``: sampled, or Gauss nodes with ``weights``; light-tailed, unlike
    the moments of L)."""
    P, T, V, s, v = (FIG3[k] for k in ("p", "n_t", "n_v", "sigma", "nu"))
    a = 1 - alpha_t / T * lam_w
    w = a ** (2 * steps)
    m_spike = v**2 / P * w + alpha_t * s**2 / T * (1 - a**steps) * sum(a**j for j in range(steps))
    bulk, spikes, m_bulk = P - min(T, P), min(T, P), v**2 / P  # M = m(A): nu^2/p on A's unit directions
    weights = np.full(lam_w.size, 1 / lam_w.size) if weights is None else weights

    def solve(r):
        def parts(delta):
            s1 = bulk * delta / (1 + r * delta) + spikes * weights @ (w * delta / (1 + r * w * delta))
            return s1, delta - (V - r * s1)
        delta = brentq(lambda x: parts(x)[1], 1e-12, V)
        s1 = parts(delta)[0]
        trace_c = s**2 * delta + bulk * m_bulk * delta / (1 + r * delta) + spikes * weights @ (m_spike * delta / (1 + r * w * delta))
        return s1, trace_c

    h = 1e-4  # S_2 = d/dr [r S_1] and F = -d/dr E tr C(I + rL)^{-1}, by central differences

    def s2(r):
        return ((1 + h) * solve(r * (1 + h))[0] - (1 - h) * solve(r * (1 - h))[0]) / (2 * h)

    def f(r):
        return -(solve(r * (1 + h))[1] - solve(r * (1 - h))[1]) / (2 * r * h)

    return closure_of(lambda r: solve(r)[0], s2, f)


def loss(error: float, alpha_t: float, steps: int) -> float:
    return float(sim.meta_test_analytic(error, sim.make_params(**FIG3, alpha_t=alpha_t, inner_steps=steps)))


def error_from_loss(value: float) -> float:
    """Invert the affine map of :func:`loss` (it does not depend on alpha_t or k_t)."""
    a, b = loss(0.0, 0.0, 1), loss(1.0, 0.0, 1)
    return (value - a) / (b - a)


def library(regime_order: str, steps: int, alpha_t: float) -> float | None:
    try:
        r = average_test_loss("under", regime_order, Model(inner_steps=steps))
    except NotDerived:
        return None
    return float(r.numeric()(**FIG3, alpha_t=alpha_t))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=6000, help="simulated meta-training sets per point")
    ap.add_argument("--tasks", type=int, default=100_000, help="own tasks for the Monte Carlo closure")
    ap.add_argument("--steps", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--lambda-nodes", type=int, default=12,
                    help="Gauss nodes for the support eigenvalue in the prototype's last column (default 12)")
    args = ap.parse_args()
    exact0 = error_from_loss(float(average_test_loss("under", "exact").numeric()(**FIG3, alpha_t=0.0)))
    lam0, wc0 = own_tasks(0.0, 1, args.tasks, seed=1)
    eta = exact0 / closure(lam0, wc0)
    lam_w = support_eigenvalues(args.tasks, seed=3)
    eta_spike = exact0 / spike_closure(0.0, 1, lam_w)
    nodes = support_quadrature(args.lambda_nodes)
    eta_gauss = exact0 / spike_closure(0.0, 1, *nodes)
    print(f"Figure 3 parameters, alpha_r = 0.2; {args.runs} simulated runs and {args.tasks} own tasks per point")
    print(f"anchor: exact E|omega* - w0|^2 at alpha_t = 0 is {exact0:.5f}; eta (Monte Carlo closure) = {eta:.4f}, "
          f"(spikes explicit, lambda sampled) = {eta_spike:.4f}, "
          f"(lambda by {args.lambda_nodes} Gauss nodes) = {eta_gauss:.4f}")
    print("errors are (theory - sim)/sim of the test loss; s.e. of the simulation and of the Monte Carlo closure")
    print()
    print("| k_t | alpha_t | sim (s.e.) | leading | corrected (library) | "
          "closure, own-task averages by Monte Carlo (s.e.) | spikes explicit (prototype), lambda sampled | "
          f"the same, lambda by {args.lambda_nodes} Gauss nodes |")
    print("|---|---|---|---|---|---|---|---|")
    for steps in args.steps:
        for i, a in enumerate(ALPHAS):
            e, se = simulated_error(a, steps, args.runs, seed=100 * steps + i)
            c, cse = closure_with_error(*own_tasks(a, steps, args.tasks, seed=200 * steps + i))
            ref, ref_se = loss(e, a, steps), loss(e + se, a, steps) - loss(e, a, steps)
            mc, mc_se = loss(c * eta, a, steps), loss((c + cse) * eta, a, steps) - loss(c * eta, a, steps)
            spike = loss(spike_closure(a, steps, lam_w) * eta_spike, a, steps)
            gauss = loss(spike_closure(a, steps, *nodes) * eta_gauss, a, steps)
            cells = []
            for value in (library("leading", steps, a), library("corrected", steps, a)):
                cells.append("refused" if value is None else f"{(value / ref - 1) * 100:+.2f}%")
            print(f"| {steps} | {a:+.1f} | {ref:.5f} ({ref_se:.5f}) | {cells[0]} | {cells[1]} | "
                  f"{(mc / ref - 1) * 100:+.2f}% ({mc_se / ref * 100:.2f}%) | {(spike / ref - 1) * 100:+.2f}% | "
                  f"{(gauss / ref - 1) * 100:+.2f}% |", flush=True)


if __name__ == "__main__":
    main()
