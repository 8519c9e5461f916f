"""Benchmark of symmaml.export.numeric: generated functions against hand-written NumPy.

Measured in one run and printed as a Markdown table:

* the NumPy function of the overparameterised leading-order result on a 10^6-point
  (alpha_t, alpha_r) grid (two full 1000 x 1000 arrays, validation included) against the
  same formula written by hand in NumPy, twice: typed in from the printed formula, and
  hand-optimised (scalar coefficients precomputed, Horner form) -- target: ratio <= 1.5;
* the same on the broadcast grid (a 1000 x 1 and a 1 x 1000 array);
* mpmath evaluations per second at 30 and 100 digits (both regimes);
* JAX (jit-compiled, 10^6 grid), if JAX is installed.

Run: ``python benchmarks/bench_numeric.py`` (about 20 s).  Timings are the minimum over
repeats (the least noisy estimate of the cost on an idle machine).
"""
from __future__ import annotations

import platform
import sys
import time

from pathlib import Path

import numpy as np

try:
    from symmaml.maml import average_test_loss
except ImportError:  # run from a clone without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from symmaml.maml import average_test_loss

FIG2 = dict(p=60, m=3, n_t=30, n_v=2, n_r=20, sigma=1.0, nu=0.5, dist0=0.0)
FIG3 = dict(p=30, m=40, n_t=5, n_v=25, n_r=10, sigma=1.0, nu=1.0, dist0=0.0)


def hand_written(p, m, n_t, n_v, n_r, alpha_t, alpha_r, sigma, nu, dist0=0.0):
    """The overparameterised leading-order loss, typed in from the printed formula
    (powers of the rates collected by hand, no validation)."""
    N = m * n_v
    at2, ar2 = alpha_t**2, alpha_r**2
    num_t = at2 * (n_t * nu**2 + nu**2 * p + nu**2 + p * sigma**2) - 2 * alpha_t * n_t * nu**2 + n_t * (nu**2 + sigma**2)
    den_t = at2 * (n_t + p + 1) - 2 * alpha_t * n_t + n_t
    err = dist0 * (1 - N / p) + N * num_t / (p * den_t)
    q_r = ar2 * (n_r + p + 1) - 2 * alpha_r * n_r + n_r
    return sigma**2 / 2 + err * q_r / (2 * n_r) + (nu**2 * q_r + ar2 * p * sigma**2) / (2 * n_r)


def hand_optimised(p, m, n_t, n_v, n_r, alpha_t, alpha_r, sigma, nu, dist0=0.0):
    """The same formula as a careful NumPy programmer writes it: every scalar coefficient
    computed once in Python, each polynomial in a rate in Horner form."""
    N, s2, v2 = m * n_v, sigma**2, nu**2
    a2, a1, a0 = n_t * v2 + v2 * p + v2 + p * s2, -2 * n_t * v2, n_t * (v2 + s2)
    b2, b1, b0 = n_t + p + 1, -2 * n_t, n_t
    c2, c1, c0 = (n_r + p + 1) / (2 * n_r), -1.0, 0.5
    d2 = p * s2 / (2 * n_r)
    err = dist0 * (1 - N / p) + (N / p) * ((a2 * alpha_t + a1) * alpha_t + a0) / ((b2 * alpha_t + b1) * alpha_t + b0)
    q_r = (c2 * alpha_r + c1) * alpha_r + c0
    return s2 / 2 + (err + v2) * q_r + d2 * alpha_r**2


def best_time(fn, repeats=15):
    fn()  # warm up (and compile)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def grid_rows():
    over = average_test_loss("over").numeric()
    at, ar = np.meshgrid(np.linspace(-2, 2, 1000), np.linspace(-0.1, 0.5, 1000), indexing="ij")
    at, ar = np.ascontiguousarray(at), np.ascontiguousarray(ar)
    got = over(**FIG2, alpha_t=at, alpha_r=ar)
    for hand in (hand_written, hand_optimised):
        ref = hand(**FIG2, alpha_t=at, alpha_r=ar)
        err = float(np.max(np.abs(got - ref) / np.abs(ref)))
        if err > 1e-12:
            raise SystemExit(f"{hand.__name__} no longer matches the derived result (rel. error {err:.2e}): "
                             "update it from the printed formula")
    at_b, ar_b = at[:, :1].copy(), ar[:1, :].copy()
    rows = []
    for label, a, b in (("10^6 grid, full 1000x1000 arrays", at, ar),
                        ("10^6 grid, broadcast 1000x1 and 1x1000", at_b, ar_b)):
        t_gen = best_time(lambda: over(**FIG2, alpha_t=a, alpha_r=b))
        t_hand = best_time(lambda: hand_written(**FIG2, alpha_t=a, alpha_r=b))
        t_opt = best_time(lambda: hand_optimised(**FIG2, alpha_t=a, alpha_r=b))
        rows.append((label, t_gen, t_hand, t_opt))
    return rows


def mpmath_rate(regime, params, dps, n=300):
    f = average_test_loss(regime).numeric("mpmath", dps=dps)
    rates = np.linspace(-0.5, 0.5, n)
    f(**params, alpha_t=0.1, alpha_r=0.2)
    t = time.perf_counter()
    for a in rates:
        f(**params, alpha_t=float(a), alpha_r=0.2)
    return n / (time.perf_counter() - t)


def jax_row():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    f = average_test_loss("over").numeric("jax")
    at, ar = np.meshgrid(np.linspace(-2, 2, 1000), np.linspace(-0.1, 0.5, 1000), indexing="ij")
    at, ar = jnp.asarray(at), jnp.asarray(ar)
    g = jax.jit(lambda a, b: f(**FIG2, alpha_t=a, alpha_r=b))
    return best_time(lambda: g(at, ar).block_until_ready())


def main() -> None:
    print(f"# bench_numeric ({platform.python_implementation()} {platform.python_version()}, "
          f"NumPy {np.__version__}, {platform.machine()})\n")
    print("| numpy backend | symmaml (validated) | hand-written | hand-optimised | ratio to written | ratio to optimised |")
    print("|---|---|---|---|---|---|")
    for label, t_gen, t_hand, t_opt in grid_rows():
        print(f"| {label} | {t_gen * 1e3:.1f} ms | {t_hand * 1e3:.1f} ms | {t_opt * 1e3:.1f} ms "
              f"| {t_gen / t_hand:.2f} | {t_gen / t_opt:.2f} |")
    t_jax = jax_row()
    if t_jax is not None:
        print(f"| jax (jit, float64), 10^6 grid | {t_jax * 1e3:.1f} ms | | | | |")
    print()
    print("| mpmath | over (Fig. 2) | under (Fig. 3) |")
    print("|---|---|---|")
    for dps in (30, 100):
        print(f"| {dps} digits | {mpmath_rate('over', FIG2, dps):,.0f} eval/s "
              f"| {mpmath_rate('under', FIG3, dps):,.0f} eval/s |")
    if t_jax is None:
        print("\n(jax not installed: no JAX row)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
