"""Benchmark of symmaml.rmt: Wishart trace moments E[prod_j tr W^{k_j}], W = X^T X, X n x p Gaussian.

Run:  python benchmarks/bench_rmt.py [--naive-max 7]

Prints, each measured from a cold cache (the module's lru_caches and SymPy's cache cleared):

* the time for all trace moments of total degree <= 6 (every integer partition), and for all
  partitions of degree 8 and of degree 10, and for the single moments E[tr W^8], E[tr W^10];
* the number of memoised states the contraction visits;
* the peak Python memory (tracemalloc) and the process's maximum resident set size;
* a naive reference, the genus expansion that enumerates all (2K-1)!! pairings of the 2K Gaussian
  letters one at a time (a generator: never all in memory), for small degrees, and the ratio.

Algorithm and cost (see symmaml/rmt/wick.py): the engine contracts one Gaussian letter with each
possible partner and recurses, memoising canonical states (sorted tuples of cyclically/transpose
canonical words).  For Wishart trace products the reachable states are products of traces
prod tr W^{k_j} with sum k_j <= K, so one moment of degree K visits at most sum_{j<=K} P(j) states
(P = partition numbers), each producing at most 2K children, with coefficient arithmetic in a
sparse polynomial ring Q[n, p] (polynomials of degree <= K+1 in each variable).  The naive
enumeration costs (2K-1)!! pairings times a union-find over 4K indices.
"""
from __future__ import annotations

import argparse
import math
import resource
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sympy as sp  # noqa: E402
from sympy.core.cache import clear_cache  # noqa: E402
from sympy.utilities.iterables import partitions  # noqa: E402

from symmaml.rmt import gaussian_matrix, wishart_trace_moment  # noqa: E402
from symmaml.rmt import wishart as _wishart  # noqa: E402
from symmaml.rmt.wick import Contractor  # noqa: E402
from symmaml.rmt.words import Alphabet, expand  # noqa: E402

n, p = sp.symbols("n p", positive=True, integer=True)


def cold():
    """Forget every cached result: the module's lru_caches and SymPy's global cache."""
    _wishart._trace_moment.cache_clear()
    _wishart._moment.cache_clear()
    clear_cache()


def all_partitions(degree):
    return [tuple(sorted((k for k, m in part.items() for _ in range(m)), reverse=True))
            for part in partitions(degree)]


def states_visited(ks):
    """Number of memoised states of one contraction of E[prod tr W^{k_j}]."""
    X = gaussian_matrix("X", n, p)
    alphabet = Alphabet()
    terms = expand(sp.Mul(*(sp.Trace((X.T * X) ** k) for k in ks)), alphabet)
    engine = Contractor(alphabet)
    for _, state in terms:
        engine.value(state)
    return len(engine.memo)


def measure(label, moments):
    """Time (cold, untraced) and then peak traced memory (cold again) of every moment in ``moments``."""
    cold()
    t0 = time.perf_counter()
    for ks in moments:
        wishart_trace_moment(ks, n, p)
    elapsed = time.perf_counter() - t0
    cold()
    tracemalloc.start()
    for ks in moments:
        wishart_trace_moment(ks, n, p)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    states = sum(states_visited(ks) for ks in moments)
    print(f"{label:<38} {len(moments):>4} moments  {elapsed:8.3f} s   {states:>6} states   "
          f"peak {peak / 2**20:7.1f} MiB")
    return elapsed


# ---------------------------------------------------------------------------------------
# the naive reference: all (2K-1)!! pairings, one at a time


def _pairings(items):
    if not items:
        yield ()
        return
    first, rest = items[0], items[1:]
    for k in range(len(rest)):
        for tail in _pairings(rest[:k] + rest[k + 1:]):
            yield ((first, rest[k]),) + tail


def naive(ks):
    """E[prod tr W^{k_j}] by the genus expansion: n^(#row classes) p^(#col classes) per pairing."""
    letters = []
    for k in ks:  # tr (X^T X)^k = sum X_{r_i c_i} X_{r_i c_{i+1}} (indices cyclic within the trace)
        r0 = len(letters) // 2
        for i in range(k):
            letters.append((2 * (r0 + i), 2 * (r0 + i) + 1))
            letters.append((2 * (r0 + i), 2 * (r0 + (i + 1) % k) + 1))
    counts = {}
    size = 2 * len(letters)
    for pairing in _pairings(tuple(range(len(letters)))):
        parent = list(range(size))

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for u, v in pairing:
            for slot in (0, 1):
                a, b = find(letters[u][slot]), find(letters[v][slot])
                if a != b:
                    parent[a] = b
        roots = {find(i) for l in letters for i in l}
        key = (sum(1 for r in roots if r % 2 == 0), sum(1 for r in roots if r % 2 == 1))
        counts[key] = counts.get(key, 0) + 1
    return sp.Add(*(c * n**a * p**b for (a, b), c in counts.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--naive-max", type=int, default=6, help="largest degree for the naive enumeration")
    args = parser.parse_args()

    print(f"python {sys.version.split()[0]}, sympy {sp.__version__}")
    print("\n== engine: E[prod_j tr W^{k_j}], cold cache ==")
    low = [ks for d in range(1, 7) for ks in all_partitions(d)]
    measure("all partitions, total degree <= 6", low)
    for d in range(1, 7):
        measure(f"  all partitions of degree {d}", all_partitions(d))
    measure("all partitions of degree 8", all_partitions(8))
    measure("all partitions of degree 10", all_partitions(10))
    measure("E[tr W^8]", [(8,)])
    measure("E[tr W^10]", [(10,)])
    measure("E[tr W^12]", [(12,)])

    print("\n== naive pairing enumeration (genus expansion) vs engine, E[tr W^K], cold ==")
    print(f"{'K':>3} {'pairings':>12} {'naive s':>10} {'engine s':>10} {'ratio':>9}  agree")
    for k in range(2, args.naive_max + 1):
        cold()
        t0 = time.perf_counter()
        ref = naive((k,))
        t_naive = time.perf_counter() - t0
        cold()
        t0 = time.perf_counter()
        got = wishart_trace_moment((k,), n, p)
        t_engine = time.perf_counter() - t0
        agree = sp.expand(ref - got) == 0
        print(f"{k:>3} {math.prod(range(1, 2 * k, 2)):>12} {t_naive:10.3f} {t_engine:10.4f} "
              f"{t_naive / t_engine:9.1f}  {agree}")
    per_pairing = t_naive / math.prod(range(1, 2 * args.naive_max, 2))
    for k in (8, 10):
        pairs = math.prod(range(1, 2 * k, 2))
        print(f"{k:>3} {pairs:>12} ~{per_pairing * pairs:9.0f} (extrapolated at {per_pairing * 1e6:.1f} us/pairing)")

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nmax resident set size of this process: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
