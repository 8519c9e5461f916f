"""The ``symmaml`` command line: derive, evaluate, simulate, regenerate.

``symmaml derive``      print a derived result; write its derivation as LaTeX / Markdown
``symmaml eval``        evaluate a result at parameters (any parameter may be a sweep)
``symmaml optimize``    optimal alpha_t or alpha_r and the minimal loss
``symmaml simulate``    Monte Carlo average test loss at the same parameters
``symmaml regenerate``  run every ``derivations/*.py`` script

Parameters are given as ``--p 60 --m 3 --n-t 30 --n-v 2 --n-r 20 --alpha-t 0.2 --alpha-r 0.1
--sigma 1 --nu 0.5 [--dist0 0]``.  Each value may be a number, a comma list (``0.1,0.2``) or
a sweep ``start:stop:count`` (inclusive, like ``numpy.linspace``); several lists or sweeps
give their Cartesian product, printed as CSV (default) or JSON (``--json``).

Input errors (unknown regime, missing or malformed parameter, a size that is not a positive
integer, a failing regime condition, a non-finite value) print one line
``symmaml: error: ...`` on stderr and exit with status 2.  ``regenerate`` exits with 1 when a
script fails.  Set ``SYMMAML_DEBUG=1`` to get tracebacks instead.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from .symbols import PARAMETERS, SIZES

__all__ = ["main", "build_parser", "parse_values", "run_simulation"]

PARAM_NAMES = tuple(s.name for s in PARAMETERS)
SIZE_NAMES = frozenset(s.name for s in SIZES)
REPO = Path(__file__).resolve().parent.parent
#: number of simulate() calls a `symmaml simulate` run is split into (for the progress bar)
DEFAULT_CHUNKS = 10

_HELP = {
    "p": "input dimension = number of parameters (positive integer)",
    "m": "number of meta-training tasks",
    "n_t": "support (inner-loop) points per meta-training task",
    "n_v": "query (outer-loop) points per meta-training task",
    "n_r": "adaptation points of a meta-test task",
    "alpha_t": "inner-loop learning rate during meta-training (may be negative)",
    "alpha_r": "adaptation learning rate during meta-testing",
    "sigma": "label-noise standard deviation (>= 0)",
    "nu": "task-variability scale (>= 0)",
    "dist0": "|omega0 - w0|^2 (>= 0; default 0)",
}


class UsageError(Exception):
    """A problem with the command line or its values: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage and exit; we want one line
        raise UsageError(f"{message} (see '{self.prog} --help')")


# ----------------------------------------------------------------------------- values

def parse_values(name: str, text: str) -> list[float]:
    """The values of ``--name text``: a number, a comma list, or ``start:stop:count``."""
    flag = "--" + name.replace("_", "-")
    text = text.strip()
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop = float(parts[0]), float(parts[1])
            count = int(parts[2])
            if count < 1:
                raise ValueError
            if count == 1:
                values = [start]
            else:
                step = (stop - start) / (count - 1)
                values = [start + k * step for k in range(count - 1)] + [stop]
        elif "," in text:
            values = [float(v) for v in text.split(",")]
        else:
            values = [float(text)]
    except ValueError:
        raise UsageError(f"malformed value for {flag}: {text!r} (expected a number, a comma list like "
                         f"0.1,0.2, or a sweep start:stop:count like -2:2:81)") from None
    if name in SIZE_NAMES:
        for v in values:
            if not (math.isfinite(v) and v.is_integer() and v > 0):
                raise UsageError(f"{name} must be a positive integer; got {_fmt(name, v)}")
        values = [int(v) for v in values]
    return values


def _fmt(name: str, v) -> str:
    if name in SIZE_NAMES and isinstance(v, (int, float)) and float(v).is_integer():
        return str(int(v))
    return format(float(v), ".15g")


def _grid(args, exclude: tuple = ()) -> tuple[list[dict], list[str]]:
    """All parameter points (Cartesian product of the given values) and the swept names."""
    names = [n for n in PARAM_NAMES if n not in exclude]
    values = {n: parse_values(n, getattr(args, n)) for n in names}
    swept = [n for n in names if len(values[n]) > 1]
    points = [dict(zip(names, combo)) for combo in itertools.product(*(values[n] for n in names))]
    return points, swept


def _json_number(x):
    x = float(x)
    return x if math.isfinite(x) else None


# ----------------------------------------------------------------------------- derive

def _result(regime: str, order: str):
    from .maml import average_test_loss

    return average_test_loss(regime, order)


def _write(path: str, text: str, what: str) -> None:
    target = Path(path)
    if target.parent != Path(""):
        target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target} ({what})", file=sys.stderr)


def cmd_derive(args) -> int:
    import sympy as sp

    r = _result(args.regime, args.order)
    conditions = [sp.sstr(c) for c in r.conditions]
    if args.json:
        from .export.latex import expr_latex

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
    if args.latex:
        _write(args.latex, r.latex(standalone=True), "standalone LaTeX")
    if args.fragment:
        _write(args.fragment, r.latex(), "LaTeX fragment")
    if args.markdown:
        _write(args.markdown, r.markdown(), "Markdown")
    return 0


# ----------------------------------------------------------------------------- eval

def cmd_eval(args) -> int:
    import numpy as np

    points, swept = _grid(args)
    r = _result(args.regime, args.order)
    options = {"dps": args.dps} if args.backend == "mpmath" else {}
    f = r.numeric(args.backend, **options)
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
            w.writerow([_fmt(n, pt[n]) for n in PARAM_NAMES] + [t])
    return 0


# ----------------------------------------------------------------------------- optimize

def cmd_optimize(args) -> int:
    from .maml.optimal import optimize

    other = "alpha_r" if args.wrt == "alpha_t" else "alpha_t"
    if getattr(args, other) is None:
        raise UsageError(f"the following arguments are required: --{other.replace('_', '-')}")
    points, swept = _grid(args, exclude=(args.wrt,))
    results = [optimize(args.regime, args.wrt, args.order, **pt) for pt in points]
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
            w.writerow([_fmt(n, pt[n]) for n in names] + [repr(res["argmin"]), repr(res["min"]), res.get("method", "")])
    return 0


# ----------------------------------------------------------------------------- simulate

class _Progress:
    """A one-line progress bar on stderr (only when enabled)."""

    def __init__(self, total: int, enabled: bool, label: str = "simulate"):
        self.total, self.enabled, self.label = max(total, 1), enabled, label
        self.done, self.start = 0, time.monotonic()

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        sys.stderr.write(f"\r{self.label} [{bar}] {100 * frac:3.0f}% {self.done}/{self.total} runs "
                         f"{time.monotonic() - self.start:5.1f}s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def chunk_seeds(seed: int, chunks: int) -> list[int]:
    """The seed of each simulate() call: ``seed`` itself for one chunk, else derived ones."""
    if chunks == 1:
        return [seed]
    import numpy as np

    return [int(np.random.SeedSequence([seed, k]).generate_state(1, np.uint64)[0]) for k in range(chunks)]


def run_simulation(params: dict, *, runs: int, seed: int, test_tasks: int, meta_test: str,
                   chunks: int = DEFAULT_CHUNKS, progress: _Progress | None = None) -> dict:
    """``symmaml.sim.simulate`` in ``chunks`` calls of about ``runs / chunks`` runs each.

    Chunk k uses the seed ``chunk_seeds(seed, chunks)[k]``, so the result is a deterministic
    function of (parameters, runs, seed, test_tasks, meta_test, chunks); with ``chunks=1`` it
    is exactly ``simulate(..., runs=runs, seed=seed)``.  The mean and standard error are
    those of all runs pooled.
    """
    import numpy as np

    from .sim import simulate

    chunks = max(1, min(chunks, runs))
    sizes = [runs // chunks + (1 if k < runs % chunks else 0) for k in range(chunks)]
    per_run, last = [], None
    for n, s in zip(sizes, chunk_seeds(seed, chunks)):
        last = simulate(**params, runs=n, seed=s, test_tasks=test_tasks, meta_test=meta_test)
        per_run.append(np.asarray(last["per_run"], dtype=float))
        if progress is not None:
            progress.update(n)
    all_runs = np.concatenate(per_run)
    mean = float(all_runs.mean())
    stderr = float(all_runs.std(ddof=1) / math.sqrt(runs)) if runs > 1 else math.inf
    return dict(mean=mean, stderr=stderr, runs=runs, seed=seed, chunks=chunks, test_tasks=test_tasks,
                meta_test=meta_test, regime=last.get("regime"))


def cmd_simulate(args) -> int:
    points, swept = _grid(args)
    for name, v in (("runs", args.runs), ("test-tasks", args.test_tasks), ("chunks", args.chunks)):
        if v < 1:
            raise UsageError(f"--{name} must be a positive integer; got {v}")
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer; got {args.seed}")
    progress = _Progress(args.runs * len(points), enabled=sys.stderr.isatty() and not args.quiet)
    results = []
    try:
        for pt in points:
            results.append(run_simulation(pt, runs=args.runs, seed=args.seed, test_tasks=args.test_tasks,
                                          meta_test=args.meta_test, chunks=args.chunks, progress=progress))
    finally:
        progress.close()
    if len(points) == 1:
        res = results[0]
        if args.json:
            print(json.dumps(dict(mean=res["mean"], stderr=_json_number(res["stderr"]),
                                  **{k: res[k] for k in ("runs", "seed", "chunks", "test_tasks", "meta_test", "regime")},
                                  parameters=points[0]), indent=2))
        else:
            print(f"{res['mean']!r} +- {res['stderr']!r} (stderr; {res['runs']} runs, seed {res['seed']}, "
                  f"{res['chunks']} chunks, meta-test {res['meta_test']})")
        return 0
    if args.json:
        rows = [dict(pt, mean=res["mean"], stderr=_json_number(res["stderr"]), runs=res["runs"])
                for pt, res in zip(points, results)]
        print(json.dumps(dict(seed=args.seed, chunks=min(args.chunks, args.runs), test_tasks=args.test_tasks,
                              meta_test=args.meta_test, swept=swept, rows=rows), indent=1))
    else:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(list(PARAM_NAMES) + ["mean", "stderr", "runs"])
        for pt, res in zip(points, results):
            w.writerow([_fmt(n, pt[n]) for n in PARAM_NAMES] + [repr(res["mean"]), repr(res["stderr"]), res["runs"]])
    return 0


# ----------------------------------------------------------------------------- regenerate

def cmd_regenerate(args) -> int:
    scripts_dir = Path(args.scripts) if args.scripts else REPO / "derivations"
    out = Path(args.out) if args.out else scripts_dir / "out"
    scripts = sorted(p for p in scripts_dir.glob("*.py") if not p.name.startswith("_")) if scripts_dir.is_dir() else []
    if not scripts:
        raise UsageError(f"no derivation scripts (*.py) in {scripts_dir}")
    out.mkdir(parents=True, exist_ok=True)
    # the scripts import the same symmaml as this command, installed or not
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    failed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        t = time.monotonic()
        rc = subprocess.run([sys.executable, str(script), "--out", str(out.resolve())],
                            cwd=str(scripts_dir.parent), env=env).returncode
        status = "ok" if rc == 0 else f"FAILED (exit {rc})"
        print(f"== {script.name}: {status} in {time.monotonic() - t:.1f} s", flush=True)
        if rc != 0:
            failed.append(script.name)
    if failed:
        print(f"symmaml: error: {len(failed)} of {len(scripts)} scripts failed: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    print(f"regenerated {len(scripts)} scripts into {out}")
    return 0


# ----------------------------------------------------------------------------- parser

def _add_parameters(p: argparse.ArgumentParser, optional: tuple = ()) -> None:
    g = p.add_argument_group("model parameters (a number, a list a,b,c, or a sweep start:stop:count)")
    for name in PARAM_NAMES:
        flag = "--" + name.replace("_", "-")
        if name == "dist0":
            g.add_argument(flag, dest=name, default="0", metavar="V", help=_HELP[name])
        elif name in optional:
            g.add_argument(flag, dest=name, default=None, metavar="V", help=_HELP[name] + " (unless optimised)")
        else:
            g.add_argument(flag, dest=name, required=True, metavar="V", help=_HELP[name])


def build_parser() -> argparse.ArgumentParser:
    from .maml import ORDERS, REGIMES

    orders = list(ORDERS)
    parser = _Parser(
        prog="symmaml",
        description="Closed-form average test loss of one-step MAML (mixed linear regression), "
                    "derived step by step with SymPy, checked by simulation.",
        epilog="Run 'symmaml COMMAND --help' for the options of a command.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"symmaml {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    d = sub.add_parser("derive", help="print a derived result and write its derivation",
                       description="Derive the average test loss in a regime at an order; print it and "
                                   "optionally write the step-by-step derivation.")
    d.add_argument("regime", choices=REGIMES, help="over (p > m n_v) or under (p < m n_v)")
    d.add_argument("--order", choices=orders, default="leading", help="order of approximation (default: leading)")
    d.add_argument("--latex", metavar="FILE", help="write a standalone LaTeX document (compiles with pdflatex)")
    d.add_argument("--fragment", metavar="FILE", help="write a LaTeX fragment to \\input into a paper "
                                                      "(needs amsmath and amssymb)")
    d.add_argument("--markdown", metavar="FILE", help="write the derivation as Markdown ($$ math)")
    d.add_argument("--json", action="store_true", help="print the result as JSON")
    d.set_defaults(func=cmd_derive)

    e = sub.add_parser("eval", help="evaluate the average test loss (sweeps -> CSV/JSON table)",
                       description="Evaluate a derived average test loss. Inputs are checked: sizes must be "
                                   "positive integers, the regime condition must hold.")
    e.add_argument("regime", choices=REGIMES)
    e.add_argument("--order", choices=orders, default="leading", help="order of approximation (default: leading)")
    _add_parameters(e)
    e.add_argument("--backend", choices=("numpy", "mpmath"), default="numpy",
                   help="numpy (float64, vectorised; default) or mpmath (arbitrary precision)")
    e.add_argument("--dps", type=int, default=50, help="digits for --backend mpmath (default 50)")
    e.add_argument("--json", action="store_true", help="print JSON (an object; rows for a sweep)")
    e.set_defaults(func=cmd_eval)

    s = sub.add_parser("simulate", help="Monte Carlo average test loss (mean, stderr, runs)",
                       description="Simulate one-step MAML (symmaml.sim) and print the mean test loss over "
                                   "runs and its standard error. The runs are split into --chunks calls of "
                                   "the simulator with seeds derived from --seed (a progress bar is shown "
                                   "on a terminal); results depend on --chunks, and --chunks 1 reproduces "
                                   "symmaml.sim.simulate(..., runs=N, seed=S) exactly. Every point of a "
                                   "sweep uses the same seed (common random numbers).")
    s.add_argument("regime", nargs="?", choices=REGIMES,
                   help="optional; checked against p and m n_v if given")
    _add_parameters(s)
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
    s.set_defaults(func=cmd_simulate)

    o = sub.add_parser("optimize", help="optimal learning rate and the minimal average test loss",
                       description="Minimise the derived average test loss over one learning rate "
                                   "(symmaml.maml.optimal): a closed form where the engine derives one, "
                                   "else a certified numeric minimisation. The optimised rate's flag may "
                                   "be omitted.")
    o.add_argument("regime", choices=REGIMES)
    o.add_argument("--wrt", choices=("alpha_t", "alpha_r"), required=True, help="the rate to optimise")
    o.add_argument("--order", choices=orders, default="leading", help="order of approximation (default: leading)")
    _add_parameters(o, optional=("alpha_t", "alpha_r"))
    o.add_argument("--json", action="store_true", help="print JSON")
    o.set_defaults(func=cmd_optimize)

    g = sub.add_parser("regenerate", help="run every derivations/*.py script",
                       description="Run each derivations/*.py script in sorted order with this Python, "
                                   "passing --out DIR; exit 1 if any fails.")
    g.add_argument("--out", metavar="DIR", help="output directory (default: derivations/out)")
    g.add_argument("--scripts", metavar="DIR", help="directory of scripts (default: the repository's derivations/)")
    g.set_defaults(func=cmd_regenerate)
    return parser


def _check_regime(args) -> None:
    """For simulate: a given regime must match the sizes (every point of a sweep)."""
    if getattr(args, "command", None) != "simulate" or not args.regime:
        return
    points, _ = _grid(args)
    for pt in points:
        n = pt["m"] * pt["n_v"]
        ok = pt["p"] > n if args.regime == "over" else pt["p"] < n
        if not ok:
            rel = ">" if args.regime == "over" else "<"
            raise UsageError(f"regime '{args.regime}' requires p {rel} m*n_v; got p={pt['p']}, m={pt['m']}, "
                             f"n_v={pt['n_v']}")


_VALUE_FLAGS = frozenset("--" + n.replace("_", "-") for n in PARAM_NAMES)
_NEGATIVE = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


def _attach_negative_values(argv: list[str]) -> list[str]:
    """``--alpha-t -2:2:81`` -> ``--alpha-t=-2:2:81`` (argparse would read ``-2:2:81`` as an option)."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a in _VALUE_FLAGS and i + 1 < len(argv) and _NEGATIVE.match(argv[i + 1]):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 a regenerate script failed, 2 bad input)."""
    debug = os.environ.get("SYMMAML_DEBUG", "") not in ("", "0")
    argv = _attach_negative_values(list(sys.argv[1:] if argv is None else argv))
    try:
        args = build_parser().parse_args(argv)
        _check_regime(args)
        return args.func(args)
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else 0
    except UsageError as e:
        if debug:
            raise
        print(f"symmaml: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as e:
        if debug:
            raise
        print(f"symmaml: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `symmaml eval ... | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("symmaml: interrupted", file=sys.stderr)
        return 130
