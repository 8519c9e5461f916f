"""Scaling of the sweep runner (symmaml.sweep): 1 against 2 workers, and the cost of a Dask task.

1. A fixed subset of the accuracy-table sweep (``derivations/accuracy.py``: every third of its 70
   points, with their runs and seeds) in this process (``workers=1``) and on a local Dask cluster of
   2 worker processes: the speed-up, with and without the cluster's start-up.  The two alternate,
   ``--repeat`` times, and the best time of each is kept (the machine may be shared).
2. The overhead of a task: N tiny tasks (one 64-run chunk of a small model each) in this process and
   on a 1-worker cluster; (cluster - in process) / N.

Every configuration gives the same bytes (checked).  Ratios are measured in one run; the machine may
be shared, so the load average is printed with them.

    python benchmarks/bench_sweep.py [--fraction 3] [--tiny 400] [--repeat 2]
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from symmaml import sweep

ROOT = Path(__file__).resolve().parent.parent


def accuracy_points(every: int):
    spec = importlib.util.spec_from_file_location("accuracy", ROOT / "derivations" / "accuracy.py")
    accuracy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(accuracy)
    pts = accuracy.grid()
    keep = list(range(0, len(pts), every))
    points = [{**pts[i][1], **pts[i][2]} for i in keep]
    return points, [pts[i][3] for i in keep], [accuracy.SEED0 + i for i in keep]


def timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fraction", type=int, default=3, help="keep every N-th accuracy point (default 3)")
    ap.add_argument("--tiny", type=int, default=400, help="tiny tasks for the overhead (default 400)")
    ap.add_argument("--repeat", type=int, default=2, help="alternated repetitions, best kept (default 2)")
    args = ap.parse_args()
    import distributed

    print(f"python {platform.python_version()}, numpy {np.__version__}, dask {distributed.__version__}, "
          f"{sweep.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}")

    # 1. accuracy sweep, 1 against 2 workers (alternated, best of --repeat: the machine may be shared)
    points, runs, seeds = accuracy_points(args.fraction)
    fn = functools.partial(sweep.simulate_chunk, meta_test="analytic")
    total = sum(runs)

    def sweep_with(**where):
        return json.dumps(list(sweep.run(fn, points, runs=runs, seeds=seeds, **where))).encode()

    cluster, t_start = timed(lambda: distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                              dashboard_address=":0", silence_logs=40))
    t1, t2 = [], []
    with cluster, distributed.Client(cluster) as client:
        client.run(lambda: __import__("symmaml.sim"))  # imports once, as a long sweep pays them once
        for _ in range(args.repeat):
            one, t = timed(lambda: sweep_with(workers=1))
            t1.append(t)
            two, t = timed(lambda: sweep_with(scheduler=cluster.scheduler_address))
            t2.append(t)
            assert one == two, "1 and 2 workers gave different results"
    t1, t2 = min(t1), min(t2)
    print(f"\naccuracy sweep: {len(points)} of 70 points, {total:,} runs (meta-test analytic), best of {args.repeat}")
    print(f"  in process (workers=1)          {t1:7.2f} s")
    print(f"  local cluster, 2 workers        {t2:7.2f} s   speed-up {t1 / t2:.2f}x")
    print(f"  + cluster start-up              {t_start:7.2f} s   speed-up with start-up {t1 / (t2 + t_start):.2f}x")

    # 2. per-task overhead on a 1-worker cluster
    small = dict(p=6, m=2, n_t=3, n_v=2, n_r=3, alpha_t=0.2, alpha_r=0.3, sigma=1.0, nu=0.5)
    tiny = functools.partial(sweep.simulate_chunk, test_tasks=3, meta_test="reduced")
    pts = [dict(small, alpha_t=a) for a in np.linspace(-0.5, 0.5, args.tiny).tolist()]

    def tiny_with(**where):
        return json.dumps(list(sweep.run(tiny, pts, runs=64, seed=1, task_runs=1, **where))).encode()

    t_local, t_remote = [], []
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as c1, distributed.Client(c1) as client:
        client.run(lambda: __import__("symmaml.sim"))
        for _ in range(args.repeat):
            local, t = timed(lambda: tiny_with(workers=1))
            t_local.append(t)
            remote, t = timed(lambda: tiny_with(scheduler=c1.scheduler_address))
            t_remote.append(t)
            assert local == remote, "in process and on the cluster gave different results"
    t_local, t_remote = min(t_local), min(t_remote)
    per_task = (t_remote - t_local) / args.tiny
    print(f"\ntask overhead: {args.tiny} tasks of one 64-run chunk (p=6), one task each, best of {args.repeat}")
    print(f"  in process                      {t_local:7.2f} s   ({1e3 * t_local / args.tiny:.2f} ms per task)")
    print(f"  local cluster, 1 worker         {t_remote:7.2f} s   ({1e3 * t_remote / args.tiny:.2f} ms per task)")
    print(f"  overhead per task               {1e3 * per_task:7.2f} ms  (cluster / in process {t_remote / t_local:.1f}x)")
    print(f"\nload average at end {os.getloadavg()[0]:.2f} (absolute times: a shared machine)")


if __name__ == "__main__":
    main()
