"""Time to derive the models of the family from nothing (fresh process, cold caches).

    python benchmarks/bench_models.py [--quick]

Each derivation runs in its own interpreter with the persistent cache off (``SYMMAML_CACHE=0``).  Every time is also given as a
ratio to deriving the paper's leading-order result (overparameterised) measured in the same run,
which survives a loaded machine; the budgets are 10 s for any leading order and 60 s for the
corrected order with k_t <= 3 (absolute times are machine dependent).
"""
import argparse
import os
import subprocess
import sys

CHILD = """
import time; t = time.perf_counter()
from symmaml.maml import Model, average_test_loss
average_test_loss({regime!r}, {order!r}, Model({kt}, {kr}, {aniso}))
print(time.perf_counter() - t)
"""

CASES = [  # (regime, order, k_t, k_r, anisotropic)
    ("over", "leading", 1, 1, False), ("under", "leading", 1, 1, False),
    ("over", "leading", 2, 1, False), ("under", "leading", 2, 1, False),
    ("over", "leading", 3, 1, False), ("under", "leading", 3, 1, False),
    ("over", "leading", 5, 1, False), ("under", "leading", 5, 1, False),
    ("over", "leading", 1, 2, False), ("under", "leading", 1, 2, False),
    ("over", "leading", 1, 1, True), ("under", "leading", 1, 1, True),
    ("over", "leading", 2, 1, True), ("under", "leading", 2, 1, True),
    ("under", "exact", 1, 1, True),
    ("over", "corrected", 1, 1, False), ("over", "corrected", 2, 1, False), ("over", "corrected", 3, 1, False),
    ("over", "corrected", 5, 1, False),
    ("under", "corrected", 1, 1, False), ("under", "corrected", 2, 1, False), ("under", "corrected", 3, 1, False),
]


def derive_time(regime, order, kt, kr, aniso) -> float:
    env = dict(os.environ, SYMMAML_CACHE="0")  # no persistent cache: derived from nothing
    out = subprocess.run([sys.executable, "-c", CHILD.format(regime=regime, order=order, kt=kt, kr=kr, aniso=aniso)],
                         capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="leading orders only")
    ap.add_argument("--corrected", action="store_true", help="corrected orders only")
    args = ap.parse_args(argv)
    base = derive_time("over", "leading", 1, 1, False)
    print(f"reference: the paper's leading order (over) derives in {base:.2f} s in this run\n")
    print("| result | model | derive (fresh process) | ratio to the paper's leading (over) |")
    print("|---|---|---|---|")
    for regime, order, kt, kr, aniso in CASES:
        if (args.quick and order != "leading") or (args.corrected and order != "corrected"):
            continue
        t = derive_time(regime, order, kt, kr, aniso)
        model = f"k_t={kt}, k_r={kr}" + (", anisotropic" if aniso else "")
        print(f"| {regime}, {order} | {model} | {t:.2f} s | {t / base:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
