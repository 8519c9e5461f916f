"""Benchmark of symmaml.sim.simulate: runs/s per meta-test mode at the paper's Figure 2 and 3 sizes.

Run: python benchmarks/bench_sim.py [--seconds S] [--workers 1,2] [--no-models]

Prints, all measured in this run: runs/s for full/reduced/analytic; floating-point
operations per run, counted analytically from the matrix shapes (see flops_per_run); the
machine's float64 matmul peak (large np.matmul) and the share of it reached; the random
draws per run with the measured standard-normal throughput (the simulator is bound by
random-number generation, not by flops); and the reduced/full speed-up.  Then the models of
the family (k_t = 2, k_r = 2, an anisotropic spectrum) at the same sizes, as ratios to the
paper's model in this run, and the variance reduction of 'analytic' (the per-run variance of
'reduced' over that of 'analytic', measured here): its runs/s times that ratio is the rate of
'reduced' runs it is worth.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from symmaml import sim  # noqa: E402

FIGURES = {
    "fig2": dict(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=0.2, alpha_r=0.2, sigma=1.0, nu=0.5),
    "fig3": dict(p=30, m=40, n_t=5, n_v=25, n_r=10, alpha_t=0.2, alpha_r=0.2, sigma=1.0, nu=1.0),
}
TEST_TASKS = 50


def flops_per_run(p, m, n_t, n_v, n_r, alpha_t, mode, T, **_):
    """Flops of one run as simulate computes it (multiply-add = 2, LU solve of size k = 2k^3/3 + 2k^2,
    sqrt = 1; random-number generation not counted).

    meta-training: y = X w + z on m (n_t+n_v) rows; if alpha_t != 0, C = X_v X_t^T, C X_t, C y_t
    and the subtractions; solve: over  G = Z Z^T (2N^2 p), b - Z omega0, Z^T c, LU(N);
    under Z^T Z (2N p^2), Z^T b, LU(p); meta-test per test task: full 4 n_r p + 6p + n_r
    (X_r v, X_r^T u, w, updates, norm), reduced ~32 scalar ops, analytic ~6 per run.
    """
    nn, N = n_t + n_v, m * n_v
    f = 2 * m * nn * p + m * nn
    if alpha_t != 0:
        f += 4 * m * n_v * n_t * p + m * n_v * n_t + 2 * m * n_v * n_t + m * n_v * p + m * n_v
    lu = lambda k: 2 * k**3 / 3 + 2 * k**2  # noqa: E731
    if p > N:
        f += 2 * N * p + 2 * N * N * p + lu(N) + 2 * N * p + p
    elif p < N:
        f += 2 * N * p * p + 2 * N * p + lu(p)
    else:
        f += lu(N)
    f += 2 * p  # |omega* - w0|^2
    f += {"full": T * (4 * n_r * p + 6 * p + n_r), "reduced": 32 * T, "analytic": 6}[mode]
    return f


def draws_per_run(p, m, n_t, n_v, n_r, mode, T, **_):
    """Random numbers drawn per run (normals and gammas)."""
    d = m * p + m * (n_t + n_v) * (p + 1)
    return d + {"full": T * (p + n_r * (p + 1)), "reduced": 6 * T, "analytic": 0}[mode]


def matmul_peak(n=2000, reps=3):
    """Best GFLOP/s of an n x n float64 np.matmul (2 n^3 flops), all BLAS threads."""
    a, b = np.random.default_rng(0).standard_normal((2, n, n))
    a @ b
    best = min(_timeit(lambda: a @ b) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def normal_peak(n=10_000_000, reps=3):
    """Best standard normals/s of one PCG64 generator filling a preallocated array (one thread)."""
    rng, out = np.random.Generator(np.random.PCG64(0)), np.empty(n)
    return n / min(_timeit(lambda: rng.standard_normal(out=out)) for _ in range(reps))


def _timeit(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def runs_per_second(params, mode, workers, seconds):
    """Time simulate on enough runs to take about `seconds` (after a pilot)."""
    kw = dict(params, test_tasks=TEST_TASKS, meta_test=mode, workers=workers, seed=1)
    pilot = 256
    dt = _timeit(lambda: sim.simulate(**kw, runs=pilot))
    runs = max(pilot, int(pilot * seconds / max(dt, 1e-6)) // sim.BLOCK * sim.BLOCK)
    return runs / _timeit(lambda: sim.simulate(**kw, runs=runs))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="target time per measurement")
    ap.add_argument("--workers", default="1,2", help="comma-separated thread counts to time")
    ap.add_argument("--no-models", dest="models", action="store_false", help="skip the models of the family")
    args = ap.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]

    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, test_tasks={TEST_TASKS}, BLOCK={sim.BLOCK}")
    peak = matmul_peak()
    npeak = normal_peak()
    print(f"peak float64 matmul (2000^3, all BLAS threads): {peak:.1f} GFLOP/s")
    print(f"standard normal throughput (1 thread): {npeak / 1e6:.0f} M draws/s\n")
    hdr = f"{'size':5} {'mode':8} {'wk':>2} {'runs/s':>9} {'kflop/run':>10} {'GFLOP/s':>8} {'%peak':>6} " \
          f"{'draws/run':>10} {'Mdraw/s':>8} {'%rng1':>6}"
    print(hdr)
    print("-" * len(hdr))
    rates = {}
    for name, prm in FIGURES.items():
        for mode in sim.META_TEST_MODES:
            for wk in workers:
                secs = args.seconds * (0.5 if mode == "full" else 1.0)
                r = runs_per_second(prm, mode, wk, secs)
                rates[name, mode, wk] = r
                f = flops_per_run(**prm, mode=mode, T=TEST_TASKS)
                d = draws_per_run(**prm, mode=mode, T=TEST_TASKS)
                print(f"{name:5} {mode:8} {wk:>2} {r:9.0f} {f / 1e3:10.1f} {r * f / 1e9:8.2f} "
                      f"{100 * r * f / 1e9 / peak:6.2f} {d:10d} {r * d / 1e6:8.1f} {100 * r * d / npeak:6.1f}")
    print("\n%rng1: share of one thread's normal-draw throughput (can exceed 100 with 2 workers)")
    print("speed-up reduced/full (same workers):")
    for name in FIGURES:
        for wk in workers:
            print(f"  {name} workers={wk}: {rates[name, 'reduced', wk] / rates[name, 'full', wk]:.1f}x"
                  f"   (analytic/full {rates[name, 'analytic', wk] / rates[name, 'full', wk]:.1f}x)")
    if args.models:
        models(rates, workers, args.seconds)


MODELS = {
    "k_t=2": dict(inner_steps=2),
    "k_t=3": dict(inner_steps=3),
    "k_r=2": dict(adaptation_steps=2),
    "spectrum 0.5,1.5": dict(spectrum=(0.5, 1.5)),
}


def models(rates, workers, seconds):
    """runs/s of the models of the family ('reduced'; a spectrum samples the meta-test as 'full' does),
    as ratios to the paper's model measured above, and the worth of 'analytic' in 'reduced' runs."""
    print("\n== models of the family (meta_test='reduced'), ratio to the paper's model in this run ==")
    print(f"{'size':5} {'model':17} {'wk':>2} {'runs/s':>9} {'ratio':>7}")
    for name, prm in FIGURES.items():
        for label, extra in MODELS.items():
            for wk in workers:
                kw = dict(prm, **extra)
                r = runs_per_second(kw, "reduced", wk, seconds)
                print(f"{name:5} {label:17} {wk:>2} {r:9.0f} {r / rates[name, 'reduced', wk]:7.2f}")
    print("\n== variance reduction of 'analytic' (same seeds, 4096 runs) ==")
    for name, prm in FIGURES.items():
        red = sim.simulate(**prm, runs=4096, seed=3, test_tasks=TEST_TASKS, meta_test="reduced")["per_run"].var()
        ana = sim.simulate(**prm, runs=4096, seed=3, meta_test="analytic")["per_run"].var()
        for wk in workers:
            worth = rates[name, "analytic", wk] * red / ana
            print(f"  {name} workers={wk}: variance ratio reduced/analytic {red / ana:.2f}; analytic runs/s "
                  f"{rates[name, 'analytic', wk]:.0f} are worth {worth:.0f} reduced runs/s "
                  f"({worth / rates[name, 'reduced', wk]:.1f}x reduced)")


if __name__ == "__main__":
    main()
