"""``symmaml simulate``: Monte Carlo average test loss (mean, standard error, runs)."""
from __future__ import annotations

import csv
import json
import math
import sys

from .common import PARAM_NAMES, Progress, UsageError, add_model_options, add_parameters, fmt, grid, json_number

__all__ = ["register", "run", "run_simulation", "chunk_seeds", "check_regime", "DEFAULT_CHUNKS"]

#: number of simulate() calls a `symmaml simulate` run is split into (for the progress bar)
DEFAULT_CHUNKS = 10


def chunk_seeds(seed: int, chunks: int) -> list[int]:
    """The seed of each simulate() call: ``seed`` itself for one chunk, else derived ones."""
    if chunks == 1:
        return [seed]
    import numpy as np

    return [int(np.random.SeedSequence([seed, k]).generate_state(1, np.uint64)[0]) for k in range(chunks)]


def run_simulation(params: dict, *, runs: int, seed: int, test_tasks: int, meta_test: str,
                   chunks: int = DEFAULT_CHUNKS, progress: Progress | None = None, **model) -> dict:
    """``symmaml.sim.simulate`` in ``chunks`` calls of about ``runs / chunks`` runs each.

    Chunk k uses the seed ``chunk_seeds(seed, chunks)[k]``, so the result is a deterministic
    function of (parameters, runs, seed, test_tasks, meta_test, chunks); with ``chunks=1`` it
    is exactly ``simulate(..., runs=runs, seed=seed)``.  The mean and standard error are
    those of all runs pooled.
    """
    import numpy as np

    from ..sim import simulate

    chunks = max(1, min(chunks, runs))
    sizes = [runs // chunks + (1 if k < runs % chunks else 0) for k in range(chunks)]
    per_run, last = [], None
    for n, s in zip(sizes, chunk_seeds(seed, chunks)):
        last = simulate(**params, runs=n, seed=s, test_tasks=test_tasks, meta_test=meta_test, **model)
        per_run.append(np.asarray(last["per_run"], dtype=float))
        if progress is not None:
            progress.update(n)
    all_runs = np.concatenate(per_run)
    mean = float(all_runs.mean())
    stderr = float(all_runs.std(ddof=1) / math.sqrt(runs)) if runs > 1 else math.inf
    return dict(mean=mean, stderr=stderr, runs=runs, seed=seed, chunks=chunks, test_tasks=test_tasks,
                meta_test=meta_test, regime=last.get("regime"))


def check_regime(args) -> None:
    """A given regime must match the sizes (every point of a sweep)."""
    if not args.regime:
        return
    points, _ = grid(args)
    for pt in points:
        n = pt["m"] * pt["n_v"]
        ok = pt["p"] > n if args.regime == "over" else pt["p"] < n
        if not ok:
            rel = ">" if args.regime == "over" else "<"
            raise UsageError(f"regime '{args.regime}' requires p {rel} m*n_v; got p={pt['p']}, m={pt['m']}, "
                             f"n_v={pt['n_v']}")


def run(args) -> int:
    check_regime(args)
    points, swept = grid(args)
    for name, v in (("runs", args.runs), ("test-tasks", args.test_tasks), ("chunks", args.chunks)):
        if v < 1:
            raise UsageError(f"--{name} must be a positive integer; got {v}")
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer; got {args.seed}")
    progress = Progress(args.runs * len(points), enabled=sys.stderr.isatty() and not args.quiet)
    results = []
    try:
        for pt in points:
            results.append(run_simulation(pt, runs=args.runs, seed=args.seed, test_tasks=args.test_tasks,
                                          meta_test=args.meta_test, chunks=args.chunks, progress=progress,
                                          inner_steps=args.inner_steps, adaptation_steps=args.adaptation_steps,
                                          spectrum=args.spectrum))
    finally:
        progress.close()
    if len(points) == 1:
        res = results[0]
        if args.json:
            print(json.dumps(dict(mean=res["mean"], stderr=json_number(res["stderr"]),
                                  **{k: res[k] for k in ("runs", "seed", "chunks", "test_tasks", "meta_test", "regime")},
                                  parameters=points[0]), indent=2))
        else:
            print(f"{res['mean']!r} +- {res['stderr']!r} (stderr; {res['runs']} runs, seed {res['seed']}, "
                  f"{res['chunks']} chunks, meta-test {res['meta_test']})")
        return 0
    if args.json:
        rows = [dict(pt, mean=res["mean"], stderr=json_number(res["stderr"]), runs=res["runs"])
                for pt, res in zip(points, results)]
        print(json.dumps(dict(seed=args.seed, chunks=min(args.chunks, args.runs), test_tasks=args.test_tasks,
                              meta_test=args.meta_test, swept=swept, rows=rows), indent=1))
    else:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(list(PARAM_NAMES) + ["mean", "stderr", "runs"])
        for pt, res in zip(points, results):
            w.writerow([fmt(n, pt[n]) for n in PARAM_NAMES] + [repr(res["mean"]), repr(res["stderr"]), res["runs"]])
    return 0


def register(sub, regimes, orders) -> None:
    s = sub.add_parser("simulate", help="Monte Carlo average test loss (mean, stderr, runs)",
                       description="Simulate one-step MAML (symmaml.sim) and print the mean test loss over "
                                   "runs and its standard error. The runs are split into --chunks calls of "
                                   "the simulator with seeds derived from --seed (a progress bar is shown "
                                   "on a terminal); results depend on --chunks, and --chunks 1 reproduces "
                                   "symmaml.sim.simulate(..., runs=N, seed=S) exactly. Every point of a "
                                   "sweep uses the same seed (common random numbers).")
    s.add_argument("regime", nargs="?", choices=regimes,
                   help="optional; checked against p and m n_v if given")
    add_parameters(s)
    s.add_argument("--runs", type=int, default=1000, help="independent meta-training runs (default 1000)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--test-tasks", dest="test_tasks", type=int, default=50,
                   help="meta-test tasks per run (default 50)")
    s.add_argument("--meta-test", dest="meta_test", choices=("full", "reduced", "analytic"), default="reduced",
                   help="meta-test average: full (sample everything), reduced (exact in distribution; "
                        "default), analytic (conditional expectation)")
    s.add_argument("--chunks", type=int, default=DEFAULT_CHUNKS,
                   help=f"simulator calls the runs are split into (default {DEFAULT_CHUNKS})")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_model_options(s)
    s.set_defaults(func=run)
