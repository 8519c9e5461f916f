"""``symmaml derive``: print a derived result and write its derivation (LaTeX, Markdown)."""
from __future__ import annotations

import json

from .common import UsageError, add_model_options, check_output, model_from_args, write_outputs

__all__ = ["register", "run"]


def result(regime: str, order: str, model=None):
    from ..maml import NotDerived, average_test_loss

    try:
        return average_test_loss(regime, order, model)
    except NotDerived as e:
        raise UsageError(str(e)) from None


def run(args) -> int:
    import sympy as sp

    files = [(path, what) for path, what in ((args.latex, "standalone LaTeX"), (args.fragment, "LaTeX fragment"),
                                             (args.markdown, "Markdown")) if path is not None]
    for path, what in files:  # refuse an unwritable place before deriving anything
        check_output(path, what)
    r = result(args.regime, args.order, model_from_args(args))
    render = {"standalone LaTeX": lambda: r.latex(standalone=True), "LaTeX fragment": r.latex,
              "Markdown": r.markdown}
    write_outputs([(path, render[what](), what) for path, what in files])
    conditions = [sp.sstr(c) for c in r.conditions]
    if args.json:
        from ..export.latex import expr_latex

        out = dict(regime=r.regime, order=r.order, approximation=r.derivation.order,
                   conditions=conditions, steps=len(r.derivation), expr=str(r.expr), latex=expr_latex(r.expr))
        if r.definitions:  # named intermediate quantities, in dependency order
            out["definitions"] = [dict(name=str(s), expr=str(v)) for s, v in r.definitions]
            out["domain"] = r.domain
        print(json.dumps(out, indent=2))
    else:
        print(f"{r.name} ({r.regime}, {r.order})")
        print(f"regime: {r.regime}" + (f" ({', '.join(conditions)})" if conditions else ""))
        print(f"order: {r.order} ({r.derivation.order})")
        print(f"steps: {len(r.derivation)}")
        print(str(r.expr))
        if r.definitions:
            print("where (in this order):")
            for sym, value in r.definitions:
                print(f"  {sym} = {value}")
            print(f"domain: {r.domain}")
    return 0


def register(sub, regimes, orders) -> None:
    d = sub.add_parser("derive", help="print a derived result and write its derivation",
                       description="Derive the average test loss in a regime at an order; print it and "
                                   "optionally write the step-by-step derivation.")
    d.add_argument("regime", choices=regimes, help="over (p > m n_v) or under (p < m n_v)")
    d.add_argument("--order", choices=orders, default="leading", help="order of approximation (default: leading)")
    d.add_argument("--latex", metavar="FILE", help="write a standalone LaTeX document (compiles with pdflatex)")
    d.add_argument("--fragment", metavar="FILE", help="write a LaTeX fragment to \\input into a paper "
                                                      "(needs amsmath and amssymb)")
    d.add_argument("--markdown", metavar="FILE", help="write the derivation as Markdown ($$ math)")
    d.add_argument("--json", action="store_true", help="print the result as JSON")
    add_model_options(d)
    d.set_defaults(func=run)
