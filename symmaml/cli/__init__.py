"""The ``symmaml`` command line: one module per command, assembled here.

``symmaml derive``      print a derived result; write its derivation as LaTeX / Markdown
``symmaml eval``        evaluate a result at parameters (any parameter may be a sweep)
``symmaml optimize``    optimal alpha_t or alpha_r and the minimal loss
``symmaml simulate``    Monte Carlo average test loss at the same parameters
``symmaml ntk``         the two-layer ReLU network in its kernel limit (eval, simulate)
``symmaml regenerate``  run every ``derivations/*.py`` script
``symmaml cache``       where the persistent cache of derived results is (``info``); empty it (``clear``)
``symmaml nn train``    MAML on the real two-layer ReLU network (JAX; extra ``nn``)

Parameters are given as ``--p 60 --m 3 --n-t 30 --n-v 2 --n-r 20 --alpha-t 0.2 --alpha-r 0.1
--sigma 1 --nu 0.5 [--dist0 0]``.  Each value may be a number, a comma list (``0.1,0.2``) or
a sweep ``start:stop:count`` (inclusive, like ``numpy.linspace``); several lists or sweeps
give their Cartesian product, printed as CSV (default) or JSON (``--json``).

Input errors (unknown regime, missing or malformed parameter, a size that is not a positive
integer, a failing regime condition, a non-finite value, an output file or directory that cannot
be written, standard output that cannot be written) print one line ``symmaml: error: ...`` on
stderr and exit with status 2.  ``regenerate`` exits with 1 when a script fails; an internal
error prints one line and exits with 1.  No traceback reaches the user unless
``SYMMAML_DEBUG=1`` is set.

A command is a module with ``register(subparsers, regimes, orders)`` that adds its parser and
sets ``func``; :data:`COMMANDS` lists them in the order ``--help`` shows.
"""
from __future__ import annotations

import os
import sys

from . import cache, derive, evaluate, nn, ntk, optimize, regenerate, simulate
from .common import PARAM_NAMES, Parser, UsageError, attach_negative_values, parse_values
from .simulate import run_simulation

__all__ = ["main", "build_parser", "parse_values", "run_simulation", "UsageError", "COMMANDS"]

COMMANDS = (derive, evaluate, optimize, simulate, ntk, nn, regenerate, cache)
#: flags whose value may start with a minus sign (a negative number or sweep)
VALUE_FLAGS = frozenset("--" + n.replace("_", "-") for n in PARAM_NAMES) | ntk.VALUE_FLAGS


def build_parser() -> Parser:
    from .. import __version__
    from ..maml import ORDERS, REGIMES

    parser = Parser(
        prog="symmaml",
        description="Closed-form average test loss of one-step MAML (mixed linear regression), "
                    "derived step by step with SymPy, checked by simulation.",
        epilog="Run 'symmaml COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"symmaml {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.register(sub, REGIMES, list(ORDERS))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 a regenerate script failed, 2 bad input)."""
    debug = os.environ.get("SYMMAML_DEBUG", "") not in ("", "0")
    argv = attach_negative_values(list(sys.argv[1:] if argv is None else argv), VALUE_FLAGS)
    try:
        args = build_parser().parse_args(argv)
        status = args.func(args)
        sys.stdout.flush()  # a full disk or a closed pipe shows here, not at exit
        return status
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
        _silence_stdout()
        return 1
    except OSError as e:  # e.g. `symmaml eval ... > /dev/full`
        if debug:
            raise
        reason = e.strerror or str(e) or type(e).__name__
        where = f"cannot use {e.filename}" if e.filename else "cannot write to standard output"
        _silence_stdout()
        print(f"symmaml: error: {where}: {reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("symmaml: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: one line, never a traceback (SYMMAML_DEBUG=1 shows it)
        if debug:
            raise
        text = str(e).splitlines()[0] if str(e) else ""
        print(f"symmaml: error: internal error ({type(e).__name__}{': ' + text if text else ''}); "
              "set SYMMAML_DEBUG=1 for the traceback", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
