"""Which approximation of the overparameterised corrected order's ``E tr H^{-1}`` fails with several steps?

    python benchmarks/diagnose_over_quadrature.py [--samples 40000]

The corrected order (``symmaml/maml/corrected.py``) writes ``E tr H^{-1}``, ``H = X_v B X_v^T``,
``B = A^k Q A^k`` (Q a Haar projection of rank ``r = p - m n_v + n_v``), as an exact one-dimensional
integral, then approximates it in three steps:

(a) the other query rows by their mean quadratic forms;
(b) the log-determinant self-averaging: ``B`` enters through its mean spectral measure ``rho_B``;
(c) ``rho_B`` replaced by the two-node Gauss quadrature with the exact moments ``E tr B^j``, ``j <= 3``.

At the Figure 2 parameters this script takes ``E tr H^{-1}`` by Monte Carlo (``--samples`` draws of
A, Q and X_v) and evaluates the integral after (a) alone (averaged over the first 4,000 sampled B), after (a) and (b)
(``rho_B`` the sampled eigenvalues), and after (a), (b), (c) (the library's moments), so that each
step's error is seen.  Only ``E tr H^{-1}`` (the label-noise part) is checked here, not the loss.
A diagnostic, not a result.

The last column is a prototype that replaces (b) and (c) with the inner step's directions explicit, as the
underparameterised corrected order does for several steps (``symmaml/maml/corrected_under_steps.py``):
``Q = I - VV^T`` with ``V`` a Haar frame of rank ``p - r``, so ``log det(I + 2sB) = log det(I + 2s A^{2k})
+ log det(I - 2s V^T A^k (I + 2s A^{2k})^{-1} A^k V)``; the first is ``(p - n') log(1 + 2s) + n' E_lambda
log(1 + 2s w)`` (``w = (1 - alpha_t lambda/n_t)^{2k}``, ``n' = min(n_t, p)``), the second is taken with
``V^T g(A) V`` replaced by its mean ``tr g(A)/p``; ``tr B (I + 2sB)^{-1}`` is half the derivative in ``s``
and ``E tr B = (r/p) tr A^{2k}``.  The average over the support eigenvalue ``lambda`` is the library's
20-node Gauss rule.  (a) is kept.
"""
from __future__ import annotations

import argparse

import numpy as np
import sympy as sp
from scipy.integrate import quad

from symmaml.maml.corrected import spectral_moments_b
from symmaml.maml.paper import FIGURE_2
from symmaml.symbols import alpha_t, m, n_t, n_v, p

P, M_, T, V = (FIGURE_2[k] for k in ("p", "m", "n_t", "n_v"))
R = P - M_ * V + V                   # rank of Q
POINTS = ((1, 0.5), (2, 0.5), (3, 0.3), (3, 0.5), (3, -0.5))
S_GRID = np.concatenate([[0.0], np.geomspace(1e-7, 1e4, 3000)])


def samples(alpha: float, steps: int, n: int, rng):
    """tr H^{-1} and the non-zero eigenvalues of B for n draws of A, Q, X_v."""
    h, lam = [], []
    for start in range(0, n, 2000):
        b = min(2000, n - start)
        Xt = rng.standard_normal((b, T, P))
        Ak = np.linalg.matrix_power(np.eye(P) - alpha / T * Xt.transpose(0, 2, 1) @ Xt, steps)
        Qo, _ = np.linalg.qr(rng.standard_normal((b, P, P - R)))
        B = Ak @ (np.eye(P) - Qo @ Qo.transpose(0, 2, 1)) @ Ak
        Xv = rng.standard_normal((b, V, P))
        h.append(np.trace(np.linalg.inv(Xv @ B @ Xv.transpose(0, 2, 1)), axis1=1, axis2=2))
        lam.append(np.linalg.eigvalsh(B)[:, P - R:])
    return np.concatenate(h), np.concatenate(lam)


def integral(logdet, trace_ratio) -> float:
    """``n_v int_0^inf exp(-logdet(s)/2) trace_ratio(s)^((n_v - 1)/2) ds`` (step (a) applied)."""
    return V * quad(lambda s: np.exp(-0.5 * logdet(s)) * trace_ratio(s) ** ((V - 1) / 2), 0, np.inf, limit=400)[0]


def per_sample(lam) -> float:
    """After (a) only: the integral for each sampled B, averaged (trapezoid on a log grid in s)."""
    out = []
    for chunk in np.array_split(lam, max(1, len(lam) // 500)):
        x = 2 * S_GRID[None, :, None] * chunk[:, None, :]
        f = np.exp(-0.5 * np.log1p(x).sum(2)) * (chunk.sum(1)[:, None] / (chunk[:, None, :] / (1 + x)).sum(2)) ** ((V - 1) / 2)
        out.append(V * np.trapezoid(f, S_GRID, axis=1))
    return float(np.concatenate(out).mean())


def two_node(mu) -> tuple[np.ndarray, np.ndarray]:
    m0, m1, m2, m3 = mu
    d = m0 * m2 - m1**2
    x = np.sort(np.roots([1, (m1 * m2 - m0 * m3) / d, (m1 * m3 - m2**2) / d]).real)
    w2 = (m1 - m0 * x[0]) / (x[1] - x[0])
    return x, np.array([m0 - w2, w2])


def spike_integral(alpha: float, steps: int) -> float:
    """After (a), with the log-determinant spike-explicit (module docstring; a prototype, not a result)."""
    from symmaml.rmt.wishart_quadrature import gauss_rule

    x, w = (np.array([float(v) for v in a]) for a in gauss_rule(T, P, 20))
    spikes = min(T, P)
    W = (1 - alpha / T * x) ** (2 * steps)

    def logdet(s):
        g = ((P - spikes) / (1 + 2 * s) + spikes * (w @ (W / (1 + 2 * s * W)))) / P
        return (P - spikes) * np.log1p(2 * s) + spikes * (w @ np.log1p(2 * s * W)) + (P - R) * np.log1p(-2 * s * g)

    def half_derivative(s, h=1e-6):  # tr B(I + 2sB)^-1
        return (logdet(s * (1 + h)) - logdet(s * (1 - h))) / (4 * s * h)

    trace_b = R / P * ((P - spikes) + spikes * (w @ W))
    return integral(logdet, lambda s: trace_b / half_derivative(s))


def loss_with(h_value: float, alpha: float, steps: int, adaptation_steps: int) -> tuple[float, float]:
    """The library's corrected test loss at Figure 2 (alpha_r = 0.2), and the same with its ``h = E tr H^-1``
    replaced by ``h_value`` (the result is affine in ``h``; every other named quantity as derived)."""
    from symmaml import symbols
    from symmaml.maml import Model, average_test_loss

    r = average_test_loss("over", "corrected", Model(steps, adaptation_steps))
    values = {getattr(symbols, k): sp.Float(v) if isinstance(v, float) else sp.Integer(v) for k, v in FIGURE_2.items()}
    values.update({alpha_t: sp.Float(alpha), symbols.alpha_r: sp.Float(0.2)})
    h = next(sym for sym, _ in r.definitions if str(sym) == "h")
    for sym, value in r.definitions:
        values[sym] = sp.N(value.xreplace(values), 30)
    return tuple(float(sp.N(r.expr.xreplace({**values, h: x}), 20)) for x in (values[h], sp.Float(h_value)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=40_000)
    args = ap.parse_args()
    print(f"Figure 2 parameters; {args.samples} draws of (A, Q, X_v) per point; E tr H^-1 and its approximations")
    print()
    print("| k_t | alpha_t | Monte Carlo (s.e.) | after (a) | after (a), (b) | after (a), (b), (c): the library | "
          "after (a), spikes explicit (prototype) |")
    print("|---|---|---|---|---|---|---|")
    for i, (steps, a) in enumerate(POINTS):
        h, lam = samples(a, steps, args.samples, np.random.default_rng(1000 + i))
        ref, se = h.mean(), h.std(ddof=1) / np.sqrt(len(h))
        only_a = per_sample(lam[:4000])
        mean_rho = integral(lambda s: np.log1p(2 * s * lam).sum(1).mean(),
                            lambda s: lam.sum(1).mean() / (lam / (1 + 2 * s * lam)).sum(1).mean())
        sub = {alpha_t: sp.Rational(str(a)), n_t: T, p: P, m: M_, n_v: V}
        mu = [R] + [float(x.subs(sub)) for x in spectral_moments_b(steps)]
        x, w = two_node(mu)
        library = integral(lambda s: (w * np.log1p(2 * s * x)).sum(), lambda s: mu[1] / (w * x / (1 + 2 * s * x)).sum())
        cells = [f"{v:.5f} ({(v / ref - 1) * 100:+.2f}%)" for v in (only_a, mean_rho, library, spike_integral(a, steps))]
        print(f"| {steps} | {a:+.1f} | {ref:.5f} ({se / ref * 100:.2f}%) | " + " | ".join(cells) + " |", flush=True)
    print()
    print("The test loss at k_t = 3, alpha_t = 0.5 (alpha_r = 0.2) with the prototype's h in the library's result:")
    for kr in (1, 2):
        library, prototype = loss_with(spike_integral(0.5, 3), 0.5, 3, kr)
        print(f"k_r = {kr}: library {library:.5f}, with the prototype's h {prototype:.5f} "
              "(compare with simulation: derivations/out/models_accuracy_table.csv)")


if __name__ == "__main__":
    main()
