"""``symmaml eval``: evaluate a derived average test loss at parameters (any may be a sweep).

A sweep is evaluated in vectorised chunks of :data:`CHUNK` points and printed as it goes (CSV, or JSON
streamed as one valid object), so a sweep of any size starts printing at once and runs in bounded memory.
"""
from __future__ import annotations

import json
import math
import sys

from .common import PARAM_NAMES, SIZE_NAMES, UsageError, add_model_options, add_parameters, fmt, json_head, lazy_grid, model_from_args
from .derive import result

__all__ = ["register", "run", "CHUNK"]

#: points evaluated (and printed) together in a sweep
CHUNK = 1 << 16


def _json_float(v: float) -> str:
    return repr(v) if math.isfinite(v) else json.dumps(v)


def run(args) -> int:
    grid = lazy_grid(args)
    model = model_from_args(args)
    r = result(args.regime, args.order, model)
    if args.dps is not None and args.backend != "mpmath":
        raise UsageError(f"--dps applies to --backend mpmath only (the {args.backend} backend computes in float64)")
    options = {"dps": args.dps} if args.dps is not None else {}
    numeric = r.numeric(args.backend, **options)
    dps = numeric.dps if args.backend == "mpmath" else None
    extra = {"spectrum": args.spectrum} if args.spectrum is not None else {}
    f = (lambda **kw: numeric(**kw, **extra)) if extra else numeric
    meta = dict(regime=r.regime, order=r.order, backend=args.backend)
    if not model.is_paper:
        meta.update(model=dict(inner_steps=model.inner_steps, adaptation_steps=model.adaptation_steps,
                               spectrum=list(args.spectrum) if args.spectrum is not None else None))
    if len(grid) == 1:
        pt = grid[0]
        if args.backend == "mpmath":
            import mpmath

            v = f(**_exact(pt))
            value, text = float(v), mpmath.nstr(v, dps)
        else:
            value = f(**pt)
            text = repr(float(value))
        if args.json:
            out = dict(value=value, **meta, parameters=pt)
            if args.backend == "mpmath":
                out.update(value_str=text, dps=dps)
            print(json.dumps(out, indent=2))
        else:
            print(text)
        return 0
    chunks = _mpmath_chunks(f, grid, dps) if args.backend == "mpmath" else _numpy_chunks(f, grid)
    _stream(sys.stdout, grid, chunks, args.json, meta, args.backend == "mpmath")
    return 0


def _exact(pt: dict) -> dict:
    """Each parameter exactly as the decimal the output prints (15 significant digits), not the binary
    float nearest to it: 0.2 is one fifth (the mpmath backend takes strings exactly)."""
    return {n: v if n in SIZE_NAMES else fmt(n, v) for n, v in pt.items()}


def _numpy_chunks(f, grid):
    """(start, stop, value texts) for consecutive chunks of the grid, evaluated vectorised."""
    import numpy as np

    swept = set(grid.swept)
    for start in range(0, len(grid), CHUNK):
        stop = min(len(grid), start + CHUNK)
        cols = grid.columns(start, stop)
        cols = {n: (np.asarray(v, dtype=float) if n in swept else v) for n, v in cols.items()}
        values = np.broadcast_to(np.asarray(f(**cols), dtype=float), (stop - start,))
        yield start, stop, values.tolist(), None


def _mpmath_chunks(f, grid, dps):
    """(start, stop, values, value strings), one point at a time (mpmath is not vectorised)."""
    import mpmath

    for i in range(len(grid)):
        v = f(**_exact(grid[i]))
        yield i, i + 1, [float(v)], [mpmath.nstr(v, dps)]


def _stream(out, grid, chunks, as_json: bool, meta: dict, with_str: bool) -> None:
    """Write the rows of a sweep chunk by chunk: parameter columns from per-value texts, then the value.

    The output is byte-identical to formatting a list of row dicts with ``csv`` or
    ``json.dumps(..., indent=1)``; only the current chunk is ever held.
    """
    import numpy as np

    names = list(PARAM_NAMES)
    if as_json:
        def text(n, v):
            return f'   {json.dumps(n)}: {json.dumps(v)},\n'
    else:
        def text(n, v):
            return fmt(n, v) + ","
    # each value's text, made once for the names with few values (long ones: per chunk, as needed)
    texts = {n: np.array([text(n, v) for v in grid.values[n]], dtype=object)
             for n in names if len(grid.values[n]) <= CHUNK}
    first = True
    for start, stop, values, strs in chunks:
        digits = grid.indices(start, stop)
        row = ""  # the parameter part of every row, built column by column (object arrays: one C loop)
        for n in names:
            if n not in texts:
                used = grid.values[n]
                row = row + np.array([text(n, used[d]) for d in digits[n].tolist()], dtype=object)
            else:
                t = texts[n]
                row = row + (t[digits[n]] if len(t) > 1 else t[0])
        if isinstance(row, str):  # nothing swept in this chunk's columns (cannot happen for a sweep)
            row = np.full(stop - start, row, dtype=object)
        if as_json:
            if first:
                out.write(json_head(dict(meta, swept=grid.swept)))
            tail = [f'   "value": {_json_float(v)}' for v in values]
            if with_str:
                tail = [t + f',\n   "value_str": {json.dumps(s)}' for t, s in zip(tail, strs)]
            lines = [("  {\n" if first and k == 0 else ",\n  {\n") + p + t + "\n  }"
                     for k, (p, t) in enumerate(zip(row.tolist(), tail))]
        else:
            if first:
                out.write(",".join(names + ["value"]) + "\n")
            lines = [p + t + "\n" for p, t in zip(row.tolist(), strs if with_str else map(repr, values))]
        out.write("".join(lines))
        out.flush()
        first = False
    if as_json:
        out.write("\n ]\n}\n")


def register(sub, regimes, orders) -> None:
    e = sub.add_parser("eval", help="evaluate the average test loss (sweeps -> CSV/JSON table)",
                       description="Evaluate a derived average test loss. Inputs are checked: sizes must be "
                                   "positive integers, the regime condition must hold.")
    e.add_argument("regime", choices=regimes)
    e.add_argument("--order", choices=orders, default="leading", help="order of approximation (default: leading)")
    add_parameters(e)
    e.add_argument("--backend", choices=("numpy", "mpmath"), default="numpy",
                   help="numpy (float64, vectorised; default) or mpmath (arbitrary precision; each parameter "
                        "taken exactly as the decimal it prints as, 15 significant digits)")
    e.add_argument("--dps", type=int, default=None, help="significant digits for --backend mpmath (default 50)")
    e.add_argument("--json", action="store_true", help="print JSON (an object; rows for a sweep)")
    add_model_options(e)
    e.set_defaults(func=run)
