"""What every command of the ``symmaml`` command line shares: parameter flags and values,
usage errors, output files and the progress bar."""
from __future__ import annotations

import argparse
import itertools
import math
import re
import sys
import time
from pathlib import Path

from ..symbols import PARAMETERS, SIZES

__all__ = ["UsageError", "Parser", "PARAM_NAMES", "SIZE_NAMES", "REPO", "parse_values", "fmt", "grid",
           "json_number", "write_output", "add_parameters", "Progress", "attach_negative_values",
           "add_model_options", "model_from_args"]

PARAM_NAMES = tuple(s.name for s in PARAMETERS)
SIZE_NAMES = frozenset(s.name for s in SIZES)
#: the repository (or installed tree) holding ``derivations/``
REPO = Path(__file__).resolve().parent.parent.parent

HELP = {
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


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage and exit; we want one line
        raise UsageError(f"{message} (see '{self.prog} --help')")


# ----------------------------------------------------------------------------- values

def parse_values(name: str, text: str, sizes=SIZE_NAMES) -> list[float]:
    """The values of ``--name text``: a number, a comma list, or ``start:stop:count``.

    Names in ``sizes`` must be positive integers (integral floats such as ``60.0`` are accepted).
    """
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
    if name in sizes:
        for v in values:
            if not (math.isfinite(v) and v.is_integer() and v > 0):
                raise UsageError(f"{name} must be a positive integer; got {fmt(name, v, sizes)}")
        values = [int(v) for v in values]
    return values


def fmt(name: str, v, sizes=SIZE_NAMES) -> str:
    if name in sizes and isinstance(v, (int, float)) and float(v).is_integer():
        return str(int(v))
    return format(float(v), ".15g")


def grid(args, names=PARAM_NAMES, exclude: tuple = (), sizes=SIZE_NAMES) -> tuple[list[dict], list[str]]:
    """All parameter points (Cartesian product of the given values) and the swept names."""
    names = [n for n in names if n not in exclude]
    values = {n: parse_values(n, getattr(args, n), sizes) for n in names}
    swept = [n for n in names if len(values[n]) > 1]
    points = [dict(zip(names, combo)) for combo in itertools.product(*(values[n] for n in names))]
    return points, swept


def json_number(x):
    x = float(x)
    return x if math.isfinite(x) else None


def write_output(path: str, text: str, what: str) -> None:
    target = Path(path)
    if target.parent != Path(""):
        target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target} ({what})", file=sys.stderr)


def add_parameters(p: argparse.ArgumentParser, optional: tuple = ()) -> None:
    """The model-parameter flags ``--p ... --dist0`` (a number, a list or a sweep each)."""
    g = p.add_argument_group("model parameters (a number, a list a,b,c, or a sweep start:stop:count)")
    for name in PARAM_NAMES:
        flag = "--" + name.replace("_", "-")
        if name == "dist0":
            g.add_argument(flag, dest=name, default="0", metavar="V", help=HELP[name])
        elif name in optional:
            g.add_argument(flag, dest=name, default=None, metavar="V", help=HELP[name] + " (unless optimised)")
        else:
            g.add_argument(flag, dest=name, required=True, metavar="V", help=HELP[name])


def _steps_value(flag: str):
    def parse(text: str) -> int:
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        if not (math.isfinite(v) and v.is_integer() and v >= 1):
            raise UsageError(f"{flag} must be a positive integer; got {text!r}")
        return int(v)
    return parse


def _spectrum_value(text: str) -> tuple:
    try:
        levels = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"malformed value for --spectrum: {text!r} (expected positive levels like 0.5,1.5)") from None
    if not levels or not all(math.isfinite(v) and v > 0 for v in levels):
        raise UsageError(f"--spectrum levels must be positive finite numbers; got {text!r}")
    return levels


def add_model_options(p: argparse.ArgumentParser) -> None:
    """``--inner-steps``, ``--adaptation-steps``, ``--spectrum``: which model of the family (the paper's by default)."""
    g = p.add_argument_group("model (default: the paper's, one inner step, one adaptation step, isotropic inputs)")
    g.add_argument("--inner-steps", dest="inner_steps", type=_steps_value("--inner-steps"), default=1, metavar="K",
                   help="k_t: inner-loop steps during meta-training (default 1)")
    g.add_argument("--adaptation-steps", dest="adaptation_steps", type=_steps_value("--adaptation-steps"), default=1,
                   metavar="K", help="k_r: adaptation steps at meta-test (default 1)")
    g.add_argument("--spectrum", dest="spectrum", type=_spectrum_value, default=None, metavar="L1,L2,...",
                   help="anisotropic inputs x ~ N(0, Sigma): the eigenvalue levels of Sigma, each with an equal share "
                        "of the p directions (e.g. 0.5,1.5)")


def model_from_args(args):
    """The :class:`symmaml.maml.Model` the model options select (anisotropic iff ``--spectrum`` is given)."""
    from ..maml import Model

    return Model(inner_steps=getattr(args, "inner_steps", 1), adaptation_steps=getattr(args, "adaptation_steps", 1),
                 anisotropic=getattr(args, "spectrum", None) is not None)


# ----------------------------------------------------------------------------- progress

class Progress:
    """A one-line progress bar on stderr (only when enabled)."""

    def __init__(self, total: int, enabled: bool, label: str = "simulate", unit: str = "runs"):
        self.total, self.enabled, self.label, self.unit = max(total, 1), enabled, label, unit
        self.done, self.start = 0, time.monotonic()

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        sys.stderr.write(f"\r{self.label} [{bar}] {100 * frac:3.0f}% {self.done}/{self.total} {self.unit} "
                         f"{time.monotonic() - self.start:5.1f}s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


# ----------------------------------------------------------------------------- argv

_NEGATIVE = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


def attach_negative_values(argv: list[str], value_flags) -> list[str]:
    """``--alpha-t -2:2:81`` -> ``--alpha-t=-2:2:81`` (argparse would read ``-2:2:81`` as an option)."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a in value_flags and i + 1 < len(argv) and _NEGATIVE.match(argv[i + 1]):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out
