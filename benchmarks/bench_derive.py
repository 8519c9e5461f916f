"""Time to derive each result from nothing (fresh process, cold caches), and to evaluate it.

    python benchmarks/bench_derive.py

Each derivation runs in its own interpreter with the persistent cache turned off
(``SYMMAML_CACHE=0``; ``bench_cache.py`` measures it), so nothing is shared; evaluation is timed on
10^4 parameter points (every parameter varying) with the validated NumPy function, against
'leading' in the same regime, measured in the same run.
"""
import os
import subprocess
import sys
import time

os.environ["SYMMAML_CACHE"] = "0"  # cold: the persistent cache is off here and in the children

import numpy as np

from symmaml.maml import ORDERS, average_test_loss

CHILD = """
import time; t = time.perf_counter()
from symmaml.maml import average_test_loss
average_test_loss({regime!r}, {order!r})
print(time.perf_counter() - t)
"""


def points(regime, order, n=10_000, seed=0):
    rng = np.random.default_rng(seed)
    m_, n_v = rng.integers(1, 5, n), rng.integers(1, 4, n)
    if regime == "over":  # p >= m n_v + 10 (well inside p > m n_v + 1)
        p_ = m_ * n_v + rng.integers(10, 40, n)
    else:  # p < m n_v / 4 (inside the corrected result's domain)
        m_ = m_ * 20
        p_ = np.minimum(rng.integers(5, 20, n), m_ * n_v // 4)
    alpha_t = np.zeros(n) if order == "exact" else rng.uniform(-0.5, 0.5, n)
    return dict(p=p_, m=m_, n_t=rng.integers(20, 40, n), n_v=n_v, n_r=rng.integers(5, 30, n),
                alpha_t=alpha_t, alpha_r=rng.uniform(0, 0.4, n), sigma=rng.uniform(0.5, 1.5, n),
                nu=rng.uniform(0.1, 1.0, n), dist0=rng.uniform(0, 1, n))


def best_of(f, kw, repeat=5):
    f(**kw)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f(**kw)
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    print("| result | derive (fresh process) | build numeric | 10^4 points | vs leading |")
    print("|---|---|---|---|---|")
    base = {}
    for order, regimes in ORDERS.items():
        for regime in sorted(regimes):
            out = subprocess.run([sys.executable, "-c", CHILD.format(regime=regime, order=order)],
                                 capture_output=True, text=True, check=True)
            derive = float(out.stdout.strip().splitlines()[-1])
            t = time.perf_counter()
            f = average_test_loss(regime, order).numeric()
            build = time.perf_counter() - t
            kw = points(regime, order)
            ev = best_of(f, kw)
            if order == "leading":
                base[regime] = (f, kw)
                ratio = 1.0
            else:
                lead, _ = base[regime]
                kw_lead = dict(kw)
                ratio = ev / best_of(lead, kw_lead)
            print(f"| {regime}, {order} | {derive:.2f} s | {build:.2f} s | {ev * 1e3:.2f} ms | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
