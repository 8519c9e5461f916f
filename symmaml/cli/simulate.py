"""``symmaml simulate``: Monte Carlo average test loss (mean, standard error, runs) at each point of a sweep.

Runs through :func:`symmaml.sweep.run`: rows are printed in point order as they are finished, in
bounded memory; ``--workers``/``--scheduler`` say where the work runs (never what it gives);
``--out FILE`` keeps finished points in ``FILE.partial`` so that an interrupted sweep resumes.
"""
from __future__ import annotations

import functools
import itertools
import json
import os
import sys
import tempfile
from pathlib import Path

from .common import (PARAM_NAMES, Progress, UsageError, add_model_options, add_parameters, add_sweep_options,
                     check_counts, fmt, json_head, json_number, json_row, lazy_grid, sweep_options)

__all__ = ["register", "run", "run_simulation", "check_regime"]


def run_simulation(params: dict, *, runs: int, seed: int, test_tasks: int, meta_test: str,
                   progress: Progress | None = None, workers: int | None = 1, scheduler: str | None = None,
                   **model) -> dict:
    """One point as ``symmaml simulate`` computes it: mean, stderr, runs, seed, test_tasks, meta_test, regime.

    The runs are drawn in chunks of :data:`symmaml.sweep.CHUNK_RUNS` (chunk 0 seeded ``seed``), so with
    at most that many runs this is exactly ``symmaml.sim.simulate(..., runs=runs, seed=seed)``.
    ``model``: ``inner_steps``, ``adaptation_steps``, ``spectrum`` (as ``simulate`` takes them).
    """
    from .. import sweep
    from ..sim import regime

    fn = functools.partial(sweep.simulate_chunk, test_tasks=test_tasks, meta_test=meta_test, **_model_options(model))
    (res,) = sweep.run(fn, [params], runs=runs, seed=seed, workers=workers, scheduler=scheduler,
                       progress=None if progress is None else progress.set)
    return dict(res, seed=seed, test_tasks=test_tasks, meta_test=meta_test,
                regime=regime(params["p"], params["m"], params["n_v"]))


def _model_options(model: dict) -> dict:
    """The model options that differ from the paper's model (so that the paper's sweeps are described,
    and resumed, as before)."""
    defaults = dict(inner_steps=1, adaptation_steps=1, spectrum=None)
    out = {k: v for k, v in model.items() if v != defaults.get(k)}
    if out.get("spectrum") is not None:
        out["spectrum"] = tuple(out["spectrum"])
    return out


def check_regime(args, grid=None) -> None:
    """A given regime must match the sizes (every combination of p, m, n_v in the sweep)."""
    if not args.regime:
        return
    grid = lazy_grid(args) if grid is None else grid
    for p, m, n_v in itertools.product(*(grid.values[n] for n in ("p", "m", "n_v"))):
        ok = p > m * n_v if args.regime == "over" else p < m * n_v
        if not ok:
            rel = ">" if args.regime == "over" else "<"
            raise UsageError(f"regime '{args.regime}' requires p {rel} m*n_v; got p={p}, m={m}, n_v={n_v}")


class _AtomicText:
    """A text file written to a temporary name in its directory and renamed into place when complete."""

    def __init__(self, path: Path):
        self.path = path
        fd, self.tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self.file = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, text: str) -> None:
        self.file.write(text)

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


class _BelowBar:
    """stdout when it shares the terminal with the progress bar: each row erases the bar, which follows it."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def write(self, text: str) -> None:
        self.progress.clear()
        sys.stdout.write(text)
        sys.stdout.flush()
        self.progress.update(0)


def run(args) -> int:
    from .. import sweep
    from ..sim import regime

    opts = sweep_options(args)
    grid = lazy_grid(args)
    check_regime(args, grid)
    check_counts(args, "runs", "test_tasks")
    target = None
    if args.out:
        target = Path(args.out)
        if not target.parent.is_dir():
            raise UsageError(f"cannot write {target}: directory {target.parent} does not exist")
        if target.is_dir():
            raise UsageError(f"cannot write {target}: it is a directory")

    model = _model_options(dict(inner_steps=args.inner_steps, adaptation_steps=args.adaptation_steps,
                                spectrum=args.spectrum))
    fn = functools.partial(sweep.simulate_chunk, test_tasks=args.test_tasks, meta_test=args.meta_test, **model)
    n = len(grid)
    progress = Progress(args.runs * n, enabled=sys.stderr.isatty() and not args.quiet, points=n)
    journal = None if target is None else target.with_name(target.name + ".partial")
    results = sweep.run(fn, grid, runs=args.runs, seed=args.seed, progress=progress.set, store=journal,
                        key=dict(command="simulate", seed=args.seed), **opts)
    out = sys.stdout if target is None else _AtomicText(target)
    if out is sys.stdout and progress.enabled and sys.stdout.isatty():
        out = _BelowBar(progress)
    try:
        _write(out, args, grid, results, regime)
        if target is not None:
            out.commit()
            journal.unlink()
    finally:
        progress.close()
        if target is not None:
            out.discard()
    if target is not None:
        print(f"wrote {target} ({n} point{'s' * (n > 1)})", file=sys.stderr)
    return 0


def _write(out, args, grid, results, regime) -> None:
    """Print the results as they come (one line each; JSON streamed as one valid object)."""
    n, swept = len(grid), grid.swept
    model = _model_options(dict(inner_steps=args.inner_steps, adaptation_steps=args.adaptation_steps,
                                spectrum=args.spectrum))
    model = {"model": {k: list(v) if isinstance(v, tuple) else v for k, v in model.items()}} if model else {}
    if n == 1:
        (res,), pt = list(results), grid[0]
        reg = regime(pt["p"], pt["m"], pt["n_v"])
        if args.json:
            out.write(json.dumps(dict(mean=res["mean"], stderr=json_number(res["stderr"]), runs=res["runs"],
                                      seed=args.seed, test_tasks=args.test_tasks, meta_test=args.meta_test,
                                      regime=reg, **model, parameters=pt), indent=2) + "\n")
        else:
            out.write(f"{res['mean']!r} +- {res['stderr']!r} (stderr; {res['runs']} runs, seed {args.seed}, "
                      f"meta-test {args.meta_test})\n")
        return
    if args.json:
        out.write(json_head(dict(seed=args.seed, test_tasks=args.test_tasks, meta_test=args.meta_test, **model,
                                 swept=swept)))
        for i, res in enumerate(results):
            row = dict(grid[i], mean=res["mean"], stderr=json_number(res["stderr"]), runs=res["runs"])
            out.write((",\n" if i else "") + json_row(row))
            _flush(out)
        out.write("\n ]\n}\n")
    else:
        out.write(",".join(list(PARAM_NAMES) + ["mean", "stderr", "runs"]) + "\n")
        for i, res in enumerate(results):
            pt = grid[i]
            out.write(",".join([fmt(n, pt[n]) for n in PARAM_NAMES]
                               + [repr(res["mean"]), repr(res["stderr"]), str(res["runs"])]) + "\n")
            _flush(out)


def _flush(out) -> None:
    if out is sys.stdout:
        out.flush()  # a row is visible (to a pipe too) as soon as it is finished


def register(sub, regimes, orders) -> None:
    from ..sweep import CHUNK_RUNS

    s = sub.add_parser("simulate", help="Monte Carlo average test loss (mean, stderr, runs)",
                       description="Simulate one-step MAML (symmaml.sim) and print the mean test loss over "
                                   "runs and its standard error, at each point of a sweep (CSV or JSON rows, "
                                   "printed as they are finished). Every point uses --seed (common random "
                                   f"numbers). A point's runs are drawn in chunks of {CHUNK_RUNS:,} runs, "
                                   "chunk 0 seeded --seed, the others from (--seed, chunk), so the output "
                                   "never depends on --workers or --scheduler, and with at most "
                                   f"{CHUNK_RUNS:,} runs it is exactly symmaml.sim.simulate(..., runs=N, "
                                   "seed=S). A progress bar is shown on a terminal.")
    s.add_argument("regime", nargs="?", choices=regimes,
                   help="optional; checked against p and m n_v if given")
    add_parameters(s)
    s.add_argument("--runs", type=int, default=1000, help="independent meta-training runs per point (default 1000)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--test-tasks", dest="test_tasks", type=int, default=50,
                   help="meta-test tasks per run (default 50)")
    s.add_argument("--meta-test", dest="meta_test", choices=("full", "reduced", "analytic"), default="reduced",
                   help="meta-test average: full (sample everything), reduced (exact in distribution; "
                        "default), analytic (conditional expectation)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--out", metavar="FILE",
                   help="write the output to FILE (atomically, when complete) instead of stdout; finished "
                        "points are kept in FILE.partial meanwhile, and a rerun of an interrupted sweep "
                        "computes only the missing ones")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_sweep_options(s)
    add_model_options(s)
    s.set_defaults(func=run)
