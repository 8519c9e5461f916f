"""``symmaml optimize``: the optimal alpha_t or alpha_r and the minimal average test loss."""
from __future__ import annotations

import csv
import json
import sys

from .common import PARAM_NAMES, UsageError, add_model_options, add_parameters, fmt, grid, model_from_args

__all__ = ["register", "run"]


def run(args) -> int:
    from ..maml.optimal import optimize

    other = "alpha_r" if args.wrt == "alpha_t" else "alpha_t"
    if getattr(args, other) is None:
        raise UsageError(f"the following arguments are required: --{other.replace('_', '-')}")
    points, swept = grid(args, exclude=(args.wrt,))
    model = model_from_args(args)
    extra = {} if model.is_paper else {"model": model, "spectrum": args.spectrum}
    results = [optimize(args.regime, args.wrt, args.order, **extra, **pt) for pt in points]
    if len(points) == 1:
        res = results[0]
        if args.json:
            print(json.dumps(res, indent=2))
        else:
            how = res.get("method", "")
            print(f"{args.wrt} = {res['argmin']!r} (minimal average test loss {res['min']!r}; {how}"
                  f"{', certified' if res.get('certified') else ''})")
        return 0
    names = [n for n in PARAM_NAMES if n != args.wrt]
    if args.json:
        rows = [dict(pt, argmin=res["argmin"], min=res["min"], method=res.get("method"),
                     certified=res.get("certified")) for pt, res in zip(points, results)]
        print(json.dumps(dict(regime=args.regime, order=args.order, wrt=args.wrt, swept=swept, rows=rows), indent=1))
    else:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(names + [f"argmin_{args.wrt}", "min_loss", "method"])
        for pt, res in zip(points, results):
            w.writerow([fmt(n, pt[n]) for n in names] + [repr(res["argmin"]), repr(res["min"]), res.get("method", "")])
    return 0


def register(sub, regimes, orders) -> None:
    o = sub.add_parser("optimize", help="optimal learning rate and the minimal average test loss",
                       description="Minimise the derived average test loss over one learning rate "
                                   "(symmaml.maml.optimal): a closed form where the engine derives one, "
                                   "else a certified numeric minimisation. The optimised rate's flag may "
                                   "be omitted.")
    o.add_argument("regime", choices=regimes)
    o.add_argument("--wrt", choices=("alpha_t", "alpha_r"), required=True, help="the rate to optimise")
    o.add_argument("--order", choices=orders, default="leading", help="order of approximation (default: leading)")
    add_parameters(o, optional=("alpha_t", "alpha_r"))
    o.add_argument("--json", action="store_true", help="print JSON")
    add_model_options(o)
    o.set_defaults(func=run)
