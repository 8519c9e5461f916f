"""``symmaml ntk``: the two-layer ReLU network in its kernel limit (nonlinear regression).

``symmaml ntk eval``      the algebraic average test loss (``symmaml.nonlinear.average_test_loss``)
``symmaml ntk simulate``  Monte Carlo of the exact kernel formula (``symmaml.nonlinear.ntk_simulate``)

Parameters: ``--d --m --n-t --n-v --n-r --alpha-t --alpha-r --sigma --nu --beta``, each a number, a
list ``a,b,c`` or a sweep ``start:stop:count``; several give their Cartesian product (CSV rows, or
JSON with ``--json``).
"""
from __future__ import annotations

import csv
import json
import sys

from ..symbols import NONLINEAR
from .common import Progress, UsageError, add_sweep_options, check_counts, fmt, grid, json_number, sweep_options

__all__ = ["register", "NAMES", "VALUE_FLAGS"]

NAMES = NONLINEAR.names
SIZES = NONLINEAR.sizes
VALUE_FLAGS = frozenset("--" + n.replace("_", "-") for n in NAMES)
_HELP = {
    "d": "input dimension (positive integer)",
    "m": "number of meta-training tasks",
    "n_t": "support points per meta-training task",
    "n_v": "query points per meta-training task",
    "n_r": "adaptation points of a meta-test task",
    "alpha_t": "inner-loop learning rate during meta-training (may be negative)",
    "alpha_r": "adaptation learning rate",
    "sigma": "label-noise standard deviation (>= 0)",
    "nu": "scale of the task vector w ~ N(0, nu^2/d I) (>= 0)",
    "beta": "standard deviation of the task offset b (>= 0)",
}


def _add_parameters(p) -> None:
    g = p.add_argument_group("model parameters (a number, a list a,b,c, or a sweep start:stop:count)")
    for name in NAMES:
        g.add_argument("--" + name.replace("_", "-"), dest=name, required=True, metavar="V", help=_HELP[name])


def _points(args):
    return grid(args, names=NAMES, sizes=SIZES)


def _write_rows(points, rows: list[dict], json_out: bool, meta: dict, swept) -> None:
    if json_out:
        print(json.dumps(dict(**meta, swept=swept, rows=[dict(pt, **r) for pt, r in zip(points, rows)]), indent=1))
        return
    w = csv.writer(sys.stdout, lineterminator="\n")
    keys = list(rows[0])
    w.writerow(list(NAMES) + keys)
    for pt, r in zip(points, rows):
        w.writerow([fmt(n, pt[n], SIZES) for n in NAMES] + [repr(r[k]) if isinstance(r[k], float) else r[k] for k in keys])


def run_eval(args) -> int:
    import numpy as np

    from ..nonlinear.theory import average_test_loss

    points, swept = _points(args)
    f = average_test_loss(args.order).numeric()
    if len(points) == 1:
        value = float(f(**points[0]))
        if args.json:
            print(json.dumps(dict(value=value, order=args.order, parameters=points[0]), indent=2))
        else:
            print(repr(value))
        return 0
    cols = {n: (np.array([pt[n] for pt in points], dtype=float) if n in swept else points[0][n]) for n in NAMES}
    values = [float(v) for v in np.broadcast_to(f(**cols), (len(points),))]
    _write_rows(points, [dict(value=v) for v in values], args.json, dict(order=args.order), swept)
    return 0


def run_simulate(args) -> int:
    import functools

    from .. import sweep
    from ..nonlinear.ntk_sim import ntk_chunk

    points, swept = _points(args)
    check_counts(args, "runs", "test_tasks", "test_points")
    if args.threads < 1:
        raise UsageError(f"--threads must be a positive integer; got {args.threads}")
    where = sweep_options(args)
    fn = functools.partial(ntk_chunk, test_tasks=args.test_tasks, test_points=args.test_points, workers=args.threads)
    progress = Progress(args.runs * len(points), enabled=sys.stderr.isatty() and not args.quiet, label="ntk simulate",
                        points=len(points))
    try:
        results = [dict(mean=r["mean"], stderr=json_number(r["stderr"]), runs=r["runs"])
                   for r in sweep.run(fn, points, runs=args.runs, seed=args.seed, progress=progress.set, **where)]
    finally:
        progress.close()
    if len(points) == 1:
        res = results[0]
        if args.json:
            print(json.dumps(dict(**res, seed=args.seed, test_tasks=args.test_tasks, test_points=args.test_points,
                                  parameters=points[0]), indent=2))
        else:
            print(f"{res['mean']!r} +- {res['stderr']!r} (stderr; {res['runs']} runs, seed {args.seed})")
        return 0
    _write_rows(points, results, args.json, dict(seed=args.seed, test_tasks=args.test_tasks,
                                                 test_points=args.test_points), swept)
    return 0


def register(sub, regimes, orders) -> None:
    from ..nonlinear.theory import ORDERS

    p = sub.add_parser("ntk", help="the two-layer ReLU network in its kernel limit: eval, simulate",
                       description="Nonlinear regression y = (w.x + b)^2 + z with a wide two-layer ReLU network "
                                   "(NTK parameterisation) in its kernel limit.")
    ntk_sub = p.add_subparsers(dest="ntk_command", metavar="COMMAND", required=True, parser_class=type(p))
    e = ntk_sub.add_parser("eval", help="the algebraic average test loss",
                           description="Evaluate symmaml.nonlinear.average_test_loss (holds for m n_v < d).")
    e.add_argument("--order", choices=ORDERS, default="leading", help="order of approximation (default: leading)")
    _add_parameters(e)
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=run_eval)
    s = ntk_sub.add_parser("simulate", help="Monte Carlo of the exact kernel formula",
                           description="symmaml.nonlinear.ntk_simulate: inputs, tasks and test points sampled, "
                                       "the initial function and label noise averaged exactly; mean, standard "
                                       "error and runs.")
    _add_parameters(s)
    s.add_argument("--runs", type=int, default=1000, help="independent meta-training runs (default 1000)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--test-tasks", dest="test_tasks", type=int, default=4, help="test tasks per run (default 4)")
    s.add_argument("--test-points", dest="test_points", type=int, default=32,
                   help="test points per test task (default 32)")
    s.add_argument("--threads", type=int, default=1,
                   help="threads per task (results do not depend on it; default 1)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_sweep_options(s)
    s.set_defaults(func=run_simulate)
