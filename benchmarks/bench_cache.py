"""The persistent cache: every result derived and evaluated in fresh processes, cold and warm.

    python benchmarks/bench_cache.py [--repeat 3]

Uses a new temporary cache directory (``SYMMAML_CACHE_DIR``), so the user's cache is untouched.
For each regime and order, in this order and all in one run:

* cold: a fresh interpreter derives the result, builds its NumPy function and evaluates it once
  (this fills the cache);
* warm: a fresh interpreter imports symmaml, reads the result, builds the function and evaluates it
  once (best of ``--repeat``), and ``symmaml eval`` is run as a command (wall time, best of
  ``--repeat``), then a sweep of alpha_r (a second array pattern) and the mpmath backend.

The issue's targets: with a warm cache, ``symmaml eval`` of every result in under 1 s of wall time,
and the first numeric evaluation of every result in a fresh process in under 0.5 s.  Ratios are
cold/warm in the same run, which survive a loaded machine better than absolute times.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

POINTS = {
    "over": dict(p=60, m=3, n_t=30, n_v=2, n_r=20, alpha_t=0.2, alpha_r=0.2, sigma=1.0, nu=0.5),
    "under": dict(p=30, m=40, n_t=5, n_v=25, n_r=10, alpha_t=0.2, alpha_r=0.2, sigma=1.0, nu=1.0),
}
RESULTS = [(order, regime) for order in ("leading", "exact", "corrected") for regime in ("over", "under")]

CHILD = """
import json, time
t0 = time.perf_counter()
import numpy as np
from symmaml.maml import average_test_loss
t1 = time.perf_counter()
r = average_test_loss({regime!r}, {order!r})
t2 = time.perf_counter()
f = r.numeric()
value = f(**{point!r})
t3 = time.perf_counter()
sweep = dict({point!r}, alpha_r=np.linspace(0.0, 0.4, 101))
f(**sweep)
t4 = time.perf_counter()
g = r.numeric("mpmath", dps=30)
g(**{point!r})
t5 = time.perf_counter()
print(json.dumps(dict(imports=t1 - t0, result=t2 - t1, first=t3 - t2, sweep=t4 - t3, mpmath=t5 - t4,
                      value=value)))
"""


def point(regime: str, order: str) -> dict:
    pt = dict(POINTS[regime])
    if order == "exact":
        pt["alpha_t"] = 0.0
    return pt


def child(order: str, regime: str, env: dict) -> dict:
    code = CHILD.format(regime=regime, order=order, point=point(regime, order))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed(args: list, env: dict) -> tuple:
    """(wall, CPU) seconds of a child process; CPU time is less sensitive to a loaded machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cli(order: str, regime: str, env: dict) -> tuple:
    """``symmaml eval`` at one point: (wall, CPU), and the same for importing SymPy and NumPy alone,
    measured right after it (the floor any symmaml command stands on)."""
    args = [sys.executable, "-m", "symmaml", "eval", regime, "--order", order]
    for name, value in point(regime, order).items():
        args += [f"--{name.replace('_', '-')}={value}"]
    return timed(args, env), timed([sys.executable, "-c", "import sympy, numpy"], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import numpy
    import sympy

    print(f"# bench_cache (CPython {sys.version.split()[0]}, SymPy {sympy.__version__}, NumPy {numpy.__version__}, "
          f"{os.cpu_count()} CPUs; fresh processes; shared machine, so absolute times vary)")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SYMMAML_CACHE_DIR=tmp)
        env.pop("SYMMAML_CACHE", None)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import symmaml"], env=env, check=True)
        python = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import sympy, numpy"], env=env, check=True)
        floor = time.perf_counter() - t
        print(f"\nfresh interpreter: {python:.2f} s; importing SymPy and NumPy alone: {floor:.2f} s wall\n")
        print("| result | cold: derive | cold: numeric + 1st eval | warm: imports | warm: read result | "
              "warm: numeric + 1st eval | warm: alpha_r sweep | warm: mpmath | `symmaml eval` warm: wall (CPU) | "
              "import SymPy + NumPy alone: wall (CPU) | first eval cold/warm |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        worst = dict(wall=0.0, cpu=0.0, first=0.0, excess=0.0)
        for order, regime in RESULTS:
            cold = child(order, regime, env)
            warm = min((child(order, regime, env) for _ in range(args.repeat)), key=lambda w: w["result"] + w["first"])
            assert warm["value"] == cold["value"], (order, regime, warm["value"], cold["value"])
            runs = [cli(order, regime, env) for _ in range(args.repeat)]
            (wall, cpu), (floor_wall, floor_cpu) = min(runs, key=lambda r: r[0][1])
            first = warm["result"] + warm["first"]
            worst = dict(wall=max(worst["wall"], wall), cpu=max(worst["cpu"], cpu), first=max(worst["first"], first),
                         excess=max(worst["excess"], cpu - floor_cpu))
            print(f"| {regime}, {order} | {cold['result']:.2f} s | {cold['first']:.2f} s | {warm['imports']:.2f} s | "
                  f"{warm['result'] * 1e3:.0f} ms | {warm['first'] * 1e3:.0f} ms | {warm['sweep'] * 1e3:.0f} ms | "
                  f"{warm['mpmath'] * 1e3:.0f} ms | {wall:.2f} s ({cpu:.2f} s) | {floor_wall:.2f} s ({floor_cpu:.2f} s) | "
                  f"{(cold['result'] + cold['first']) / first:.0f}x |")
        print(f"\nwarm `symmaml eval`, worst over the six results: {worst['wall']:.2f} s wall, {worst['cpu']:.2f} s CPU, "
              f"of which at most {worst['excess']:.2f} s CPU beyond importing SymPy and NumPy (target < 1 s wall); "
              f"worst warm first numeric evaluation (read result + build + evaluate): {worst['first'] * 1e3:.0f} ms "
              "(target < 500 ms)")


if __name__ == "__main__":
    main()
