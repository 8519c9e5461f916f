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
            print(describe(res))
        return 0
    names = [n for n in PARAM_NAMES if n != args.wrt]
    if args.json:
        rows = [dict(pt, argmin=res["argmin"], min=res["min"], method=res.get("method"),
                     certified=res.get("certified"), degenerate=res.get("degenerate", False),
                     bracket=res.get("bracket")) for pt, res in zip(points, results)]
        print(json.dumps(dict(regime=args.regime, order=args.order, wrt=args.wrt, swept=swept, rows=rows), indent=1))
    else:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(names + [f"argmin_{args.wrt}", "min_loss", "method"])
        for pt, res in zip(points, results):
            argmin = "any" if res.get("degenerate") else repr(res["argmin"])
            w.writerow([fmt(n, pt[n]) for n in names] + [argmin, repr(res["min"]), res.get("method", "")])
    return 0


def describe(res: dict) -> str:
    """One line: the optimum, the minimal loss, and how it was found (method, certificate or bracket)."""
    wrt, how = res["wrt"], res.get("method", "")
    if res.get("degenerate"):
        return (f"every {wrt} minimises the loss here: it does not depend on {wrt} at these parameters "
                f"(average test loss {res['min']!r}; {how})")
    if how == "bracketed numeric":
        lo, hi = res["bracket"]
        s_lo, s_hi = res["search"]
        return (f"{wrt} = {res['argmin']!r} (minimal average test loss {res['min']!r}; bracketed numeric: a minimum "
                f"interior to [{lo!r}, {hi!r}] (width {hi - lo:.1e}; tolerance {res['xtol']:g} x max(1, |{wrt}|)), "
                f"the lowest of {res['grid_points']} grid points on [{s_lo:g}, {s_hi:g}]; a search, not certified)")
    if how == "certified numeric":
        lo, hi = res["bracket"]
        where = (f"the minimiser lies in [{lo!r}, {hi!r}]" if lo != hi
                 else "the minimiser enclosed to below float precision")
        return (f"{wrt} = {res['argmin']!r} (minimal average test loss {res['min']!r}; certified numeric "
                f"(root isolation in exact arithmetic): {where}"
                f"{', certified' if res.get('certified') else '; NOT certified unique'})")
    return f"{wrt} = {res['argmin']!r} (minimal average test loss {res['min']!r}; {how}, certified)"


def register(sub, regimes, orders) -> None:
    o = sub.add_parser("optimize", help="optimal learning rate and the minimal average test loss",
                       description="Minimise the derived average test loss over one learning rate "
                                   "(symmaml.maml.optimal): a closed form where the engine derives one, "
                                   "else a certified numeric minimisation (root isolation, exact arithmetic) "
                                   "for a loss rational in the rate, else (the corrected results' alpha_t) a "
                                   "bracketed numeric minimisation with a stated tolerance. The exact order "
                                   "holds only at alpha_t = 0. The optimised rate's flag may be omitted.")
    o.add_argument("regime", choices=regimes)
    o.add_argument("--wrt", choices=("alpha_t", "alpha_r"), required=True, help="the rate to optimise")
    o.add_argument("--order", choices=orders, default="leading", help="order of approximation (default: leading)")
    add_parameters(o, optional=("alpha_t", "alpha_r"))
    o.add_argument("--json", action="store_true", help="print JSON")
    add_model_options(o)
    o.set_defaults(func=run)
