"""``symmaml nn train``: MAML on the real two-layer ReLU network (JAX), averaged over runs.

Every model flag takes a number, a comma list or a sweep ``start:stop:count``.  The rates of
``--alpha-t`` are trained side by side in each run (common random numbers: same initialisation,
data and test tasks); any other list is one sweep over points (:func:`train_points`), each with the same
seed.  Needs the ``nn`` extra (JAX, optax); without it, one line names the extra.
"""
from __future__ import annotations

import csv
import itertools
import json
import sys

from .common import (Parser, Progress, UsageError, add_sweep_options, check_counts, fmt, json_number, parse_values,
                     sweep_options)

__all__ = ["register", "run", "train_points", "NAMES"]

#: the network's flags, in the order of ``train_maml``
NAMES = ("width", "d", "m", "n_t", "n_v", "n_r", "alpha_t", "alpha_r", "sigma", "nu", "beta")
SIZES = frozenset(("width", "d", "m", "n_t", "n_v", "n_r"))
HELP = {
    "width": "hidden units k of the network (positive integer)",
    "d": "input dimension (positive integer)",
    "m": "number of meta-training tasks",
    "n_t": "support (inner-loop) points per meta-training task",
    "n_v": "query (outer-loop) points per meta-training task",
    "n_r": "adaptation points of a meta-test task",
    "alpha_t": "inner-loop learning rate during meta-training (may be negative; a list is trained side by side)",
    "alpha_r": "adaptation learning rate during meta-testing",
    "sigma": "label-noise standard deviation (>= 0)",
    "nu": "task scale: w ~ N(0, (nu^2/d) I_d) (>= 0)",
    "beta": "task offset scale: b ~ N(0, beta^2) (>= 0)",
}
_SUMMARY = ("mean", "stderr", "runs", "not_converged")


def _require_jax() -> None:
    from ..nonlinear.network import require_jax

    try:
        require_jax()
    except ModuleNotFoundError as e:
        raise UsageError(str(e)) from None


def train_points(points: list, alphas: list, *, runs: int, seed: int, options: dict, progress=None,
                 workers=None, scheduler=None) -> list:
    """Every point of a sweep (all ``alpha_t`` of a point side by side) as one sweep of ``train_many``."""
    from ..nonlinear import train_many

    return train_many([dict({k: v for k, v in pt.items() if k != "alpha_t"}, alpha_t=list(alphas)) for pt in points],
                      runs=runs, seed=seed, progress=progress, workers=workers, scheduler=scheduler, **options)


def _rows(point, res):
    """One row per rate: the point's values, then mean, stderr, runs and convergence."""
    for i, a in enumerate(res["alpha_t"]):
        conv = res["converged"][:, i]
        yield dict(point, alpha_t=float(a), mean=float(res["mean"][i]), stderr=json_number(res["stderr"][i]),
                   runs=res["runs"], not_converged=int((~conv).sum()),
                   **({"gap": float(res["gap"][i]), "gap_stderr": json_number(res["gap_stderr"][i])}
                      if "gap" in res else {}))


def run(args) -> int:
    values = {n: parse_values(n, getattr(args, n), SIZES) for n in NAMES}
    check_counts(args, "runs", "test_tasks", "test_points")
    if args.test_points < 2:
        raise UsageError(f"--test-points must be an integer >= 2; got {args.test_points}")
    if not 0.0 < args.tol < 1.0:
        raise UsageError(f"--tol must be in (0, 1); got {args.tol!r}")
    if args.paired_ntk and args.parameterisation != "ntk":
        raise UsageError("--paired-ntk needs --parameterisation ntk")
    _require_jax()
    others = [n for n in NAMES if n != "alpha_t"]
    points = [dict(zip(others, combo)) for combo in itertools.product(*(values[n] for n in others))]
    swept = [n for n in NAMES if len(values[n]) > 1]
    options = dict(parameterisation=args.parameterisation, test_tasks=args.test_tasks,
                   test_points=args.test_points, tol=args.tol, optimizer=args.optimizer, paired_ntk=args.paired_ntk)
    where = sweep_options(args)
    progress = Progress(args.runs * len(points), enabled=sys.stderr.isatty() and not args.quiet, label="train",
                        points=len(points))
    try:
        results = train_points(points, values["alpha_t"], runs=args.runs, seed=args.seed, options=options,
                               progress=lambda n, p: progress.set(p, n), **where)
    finally:
        progress.close()
    rows = [row for pt, res in zip(points, results) for row in _rows(pt, res)]
    missed = sum(r["not_converged"] for r in rows)
    if missed:
        print(f"symmaml: warning: {missed} of {args.runs * len(rows)} (run, alpha_t) pairs did not meet the "
              f"convergence criterion (tol {args.tol:g}); they are included in the averages", file=sys.stderr)
    settings = dict(seed=args.seed, parameterisation=args.parameterisation, optimizer=args.optimizer,
                    test_tasks=args.test_tasks, test_points=args.test_points, tol=args.tol)
    if args.json:
        if len(rows) == 1:
            res, row = results[0], rows[0]
            print(json.dumps(dict(
                {k: row[k] for k in _SUMMARY}, **({"gap": row["gap"], "gap_stderr": row["gap_stderr"]}
                                                  if "gap" in row else {}),
                per_run=[float(x) for x in res["per_run"][:, 0]],
                converged=[bool(x) for x in res["converged"][:, 0]],
                steps=[int(x) for x in res["steps"][:, 0]],
                criterion=[float(x) for x in res["criterion"][:, 0]],
                **settings, parameters={n: row[n] for n in NAMES}), indent=2))
        else:
            print(json.dumps(dict(settings, swept=swept, rows=rows), indent=1))
        return 0
    if len(rows) == 1:
        r = rows[0]
        print(f"{r['mean']!r} +- {r['stderr']!r} (stderr; {r['runs']} runs, seed {args.seed}, "
              f"{args.parameterisation} parameterisation, {r['not_converged']} not converged)")
        return 0
    w = csv.writer(sys.stdout, lineterminator="\n")
    extra = ["gap", "gap_stderr"] if args.paired_ntk else []
    w.writerow(list(NAMES) + ["mean", "stderr", "runs", "not_converged"] + extra)
    for r in rows:
        w.writerow([fmt(n, r[n], SIZES) for n in NAMES] + [repr(r["mean"]), repr(r["stderr"]), r["runs"],
                                                           r["not_converged"]] + [repr(r[k]) for k in extra])
    return 0


def register(sub, regimes, orders) -> None:
    from ..nonlinear.experiment import OPTIMIZERS, TEST_POINTS, TEST_TASKS, TOL
    from ..nonlinear.network import PARAMETERISATIONS

    nn = sub.add_parser("nn", help="MAML on a real two-layer ReLU network (JAX; extra 'nn')",
                        description="Experiments with the two-layer ReLU network (symmaml.nonlinear).")
    nsub = nn.add_subparsers(dest="nn_command", metavar="SUBCOMMAND", required=True, parser_class=Parser)
    t = nsub.add_parser("train", help="meta-train the network by one-step MAML and meta-test it, averaged over runs",
                        description="Meta-train the network (exact second-order meta-gradient, to interpolation), "
                                    "adapt on fresh test tasks and print the average test loss over runs with its "
                                    "standard error. A progress bar is shown on a terminal.")
    g = t.add_argument_group("model parameters (a number, a list a,b,c, or a sweep start:stop:count)")
    for name in NAMES:
        g.add_argument("--" + name.replace("_", "-"), dest=name, required=True, metavar="V", help=HELP[name])
    t.add_argument("--runs", type=int, default=10, help="independent runs (default 10)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--parameterisation", choices=PARAMETERISATIONS, default="ntk",
                   help="ntk (default; kernel of order 1) or standard (raw weights; kernel grows with the width)")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="gauss-newton",
                   help="outer loop: Gauss-Newton-preconditioned meta-gradient (default) or Nesterov momentum")
    t.add_argument("--test-tasks", dest="test_tasks", type=int, default=TEST_TASKS,
                   help=f"meta-test tasks per run (default {TEST_TASKS})")
    t.add_argument("--test-points", dest="test_points", type=int, default=TEST_POINTS,
                   help=f"population points per test task (default {TEST_POINTS})")
    t.add_argument("--tol", type=float, default=TOL,
                   help=f"interpolation tolerance: final / initial meta-training loss (default {TOL:g})")
    t.add_argument("--paired-ntk", dest="paired_ntk", action="store_true",
                   help="also the NTK-limit loss of each run's own draw, and the gap network - NTK limit")
    t.add_argument("--json", action="store_true", help="print JSON")
    t.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_sweep_options(t)
    t.set_defaults(func=run)
