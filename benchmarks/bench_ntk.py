"""Benchmarks of the network's kernel-limit theory (plain script; prints, asserts nothing).

* ``ntk_simulate`` at d = 20, m n_v = 200 (m = 20, n_t = n_v = n_r = 10): runs per second on 1 and 2
  threads, and the share of a run spent in kernel evaluations;
* the algebraic result: derivation from nothing (a fresh interpreter), building its NumPy function,
  and evaluating it on 10^6 learning rates, against the NumPy kernels' own cost as a yardstick.
"""
import os
import subprocess
import sys
import time

import numpy as np

PARAMS = dict(d=20, m=20, n_t=10, n_v=10, n_r=10, alpha_t=-0.5, alpha_r=0.5, sigma=0.3, nu=0.5, beta=0.5)


def simulate_speed():
    from symmaml.nonlinear.ntk_sim import ntk_simulate

    ntk_simulate(**PARAMS, runs=16, seed=0)  # warm up (kernel compilation)
    out = {}
    for workers in (1, 2):
        t = time.perf_counter()
        ntk_simulate(**PARAMS, runs=320, seed=0, workers=workers)
        out[workers] = 320 / (time.perf_counter() - t)
    print(f"ntk_simulate, d=20, m n_v=200: {out[1]:.0f} runs/s (1 thread), {out[2]:.0f} runs/s (2 threads); "
          f"2,000 runs in {2000 / out[2]:.1f} s; thread speed-up {out[2] / out[1]:.2f}x")


def theory_speed():
    code = ("import time; t = time.perf_counter(); from symmaml.nonlinear.theory import derive_leading; "
            "derive_leading(); print(time.perf_counter() - t)")
    env = dict(os.environ, SYMMAML_CACHE_DIR=os.path.join(os.getcwd(), ".bench-cache-empty"))
    derive = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                  check=True).stdout.split()[-1])
    from symmaml.nonlinear.theory import average_test_loss

    r = average_test_loss()
    t = time.perf_counter()
    f = r.numeric()
    grid = np.linspace(-2, 1, 10**6)
    point = {k: v for k, v in PARAMS.items() if k != "alpha_t"}
    point.update(d=40, m=4, n_v=2)  # inside the theory's domain m n_v < d
    f(**point, alpha_t=grid[:10])
    f(**point, alpha_t=grid[:1000])  # a long grid: also builds its rational form (see symmaml.export.numeric)
    build = time.perf_counter() - t
    t = time.perf_counter()
    f(**point, alpha_t=grid)
    evaluate = time.perf_counter() - t
    t = time.perf_counter()
    c = np.clip(grid, -1, 1)
    np.arccos(c) * np.sqrt(1 - c**2)  # a yardstick: two ufuncs over the same grid
    yard = time.perf_counter() - t
    print(f"algebraic result: derived in {derive:.1f} s (fresh interpreter, empty cache); numeric function built "
          f"in {build:.2f} s; 10^6 values of alpha_t in {1e3 * evaluate:.1f} ms "
          f"({evaluate / yard:.1f}x the time of np.arccos * np.sqrt over the grid)")


if __name__ == "__main__":
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    simulate_speed()
    theory_speed()
