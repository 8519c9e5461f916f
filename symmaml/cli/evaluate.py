"""``symmaml eval``: evaluate a derived average test loss at parameters (any may be a sweep)."""
from __future__ import annotations

import csv
import json
import sys

from .common import PARAM_NAMES, add_model_options, add_parameters, fmt, grid, model_from_args
from .derive import result

__all__ = ["register", "run"]


def run(args) -> int:
    import numpy as np

    points, swept = grid(args)
    r = result(args.regime, args.order, model_from_args(args))
    options = {"dps": args.dps} if args.backend == "mpmath" else {}
    numeric = r.numeric(args.backend, **options)
    extra = {"spectrum": args.spectrum} if args.spectrum is not None else {}
    f = (lambda **kw: numeric(**kw, **extra)) if extra else numeric
    if args.backend == "mpmath":
        import mpmath

        values = [f(**pt) for pt in points]
        texts = [mpmath.nstr(v, args.dps) for v in values]
        floats = [float(v) for v in values]
    else:
        if len(points) == 1:
            floats = [f(**points[0])]
        else:
            cols = {n: (np.array([pt[n] for pt in points], dtype=float) if n in swept else points[0][n])
                    for n in PARAM_NAMES}
            floats = [float(v) for v in f(**cols)]
        texts = [repr(float(v)) for v in floats]
    meta = dict(regime=r.regime, order=r.order, backend=args.backend)
    model = model_from_args(args)
    if not model.is_paper:
        meta.update(model=dict(inner_steps=model.inner_steps, adaptation_steps=model.adaptation_steps,
                               spectrum=list(args.spectrum) if args.spectrum is not None else None))
    if len(points) == 1:
        pt = points[0]
        if args.json:
            out = dict(value=floats[0], **meta, parameters=pt)
            if args.backend == "mpmath":
                out.update(value_str=texts[0], dps=args.dps)
            print(json.dumps(out, indent=2))
        else:
            print(texts[0])
        return 0
    if args.json:
        rows = []
        for pt, v, t in zip(points, floats, texts):
            row = dict(pt, value=v)
            if args.backend == "mpmath":
                row["value_str"] = t
            rows.append(row)
        print(json.dumps(dict(**meta, swept=swept, rows=rows), indent=1))
    else:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(list(PARAM_NAMES) + ["value"])
        for pt, t in zip(points, texts):
            w.writerow([fmt(n, pt[n]) for n in PARAM_NAMES] + [t])
    return 0


def register(sub, regimes, orders) -> None:
    e = sub.add_parser("eval", help="evaluate the average test loss (sweeps -> CSV/JSON table)",
                       description="Evaluate a derived average test loss. Inputs are checked: sizes must be "
                                   "positive integers, the regime condition must hold.")
    e.add_argument("regime", choices=regimes)
    e.add_argument("--order", choices=orders, default="leading", help="order of approximation (default: leading)")
    add_parameters(e)
    e.add_argument("--backend", choices=("numpy", "mpmath"), default="numpy",
                   help="numpy (float64, vectorised; default) or mpmath (arbitrary precision)")
    e.add_argument("--dps", type=int, default=50, help="digits for --backend mpmath (default 50)")
    e.add_argument("--json", action="store_true", help="print JSON (an object; rows for a sweep)")
    add_model_options(e)
    e.set_defaults(func=run)
