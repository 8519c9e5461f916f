"""One BLAS thread per worker thread, while a simulator runs its own threads.

The simulators (:func:`symmaml.sim.simulate`, :func:`symmaml.nonlinear.ntk_sim.ntk_simulate`) run blocks
of Monte Carlo runs on ``workers`` threads, each doing small dense linear algebra.  An OpenBLAS that also
starts a thread per core then runs ``workers x cores`` threads on ``cores`` cores: at the kernel-limit
benchmark size two workers ran at 0.6x the speed of one (``benchmarks/bench_ntk.py``).
:func:`single_threaded_blas` limits the BLAS libraries NumPy loaded to one thread for the duration
(``threadpoolctl``); the results do not depend on it beyond the last bits of BLAS reductions.
"""
from __future__ import annotations

import contextlib

__all__ = ["single_threaded_blas"]


@contextlib.contextmanager
def single_threaded_blas():
    """Within the block, the BLAS libraries loaded by NumPy use one thread each."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
