"""What every command of the ``symmaml`` command line shares: parameter flags and values,
usage errors, output files and the progress bar."""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import sys
import time
from pathlib import Path

from ..symbols import PARAMETERS, SIZES

__all__ = ["UsageError", "Parser", "PARAM_NAMES", "SIZE_NAMES", "REPO", "parse_values", "fmt", "grid",
           "json_number", "write_output", "write_outputs", "check_output", "prepare_output_dir", "add_parameters",
           "Progress", "attach_negative_values", "add_sweep_options", "sweep_options", "lazy_grid", "json_head",
           "json_row",
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


def lazy_grid(args, names=PARAM_NAMES, sizes=SIZE_NAMES):
    """All parameter points as a lazy :class:`symmaml.sweep.Grid` (no list of points is built)."""
    from ..sweep import Grid

    return Grid({n: parse_values(n, getattr(args, n), sizes) for n in names})


def json_head(meta: dict) -> str:
    """The start of ``json.dumps(dict(**meta, rows=[...]), indent=1)``, up to the first row."""
    lines = [f" {json.dumps(k)}: " + json.dumps(v, indent=1).replace("\n", "\n ") for k, v in meta.items()]
    return "{\n" + ",\n".join(lines + [' "rows": [']) + "\n"


def json_row(row: dict) -> str:
    """One row as ``json.dumps(..., indent=1)`` prints it inside :func:`json_head`'s list (no separator)."""
    return "  " + json.dumps(row, indent=1).replace("\n", "\n  ")


def json_number(x):
    x = float(x)
    return x if math.isfinite(x) else None


def check_output(path: str, what: str) -> Path:
    """Refuse, before anything is computed, an output file that cannot be written: a directory,
    a missing directory (never created silently), a parent that is not a directory."""
    target = Path(path)
    if not str(path):
        raise UsageError(f"no file name given for the {what}")
    if target.is_dir():
        raise UsageError(f"cannot write the {what} to {path}: it is a directory")
    parent = target.parent
    if not parent.exists():
        raise UsageError(f"cannot write the {what} to {path}: directory {parent} does not exist (create it first)")
    if not parent.is_dir():
        raise UsageError(f"cannot write the {what} to {path}: {parent} is not a directory")
    return target


def _reason(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__


def write_outputs(outputs) -> None:
    """Write ``[(path, text, what), ...]``: all of them, or (on an error) none changed.

    Each goes to a temporary file beside its target, renamed over it once every one is written,
    so a full disk or an unwritable place never leaves a half-written file.  A target that
    exists and is not a regular file (``/dev/stdout``, a pipe) is written in place.  An error is
    one line naming the path and the reason (:class:`UsageError`, exit status 2)."""
    import os
    import tempfile

    staged, done = [], []
    try:
        for path, text, what in outputs:
            target = check_output(path, what)
            data = text.encode("utf-8")
            if target.exists() and not target.is_file():  # a device or a pipe: no rename possible
                staged.append((target, None, data, what))
                continue
            real = target.resolve() if target.is_symlink() else target
            try:
                fd, tmp = tempfile.mkstemp(dir=real.parent if str(real.parent) else ".", prefix=f".{real.name}.",
                                           suffix=".tmp")
            except OSError as e:
                raise UsageError(f"cannot write the {what} to {path}: cannot create a file in "
                                 f"{real.parent or '.'} ({_reason(e)})") from None
            staged.append((real, tmp, data, what))
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                mode = real.stat().st_mode & 0o7777 if real.exists() else 0o666 & ~_umask()
                os.chmod(tmp, mode)
            except OSError as e:
                raise UsageError(f"cannot write the {what} to {path}: {_reason(e)}") from None
        for target, tmp, data, what in staged:
            try:
                if tmp is None:
                    with open(target, "wb") as f:
                        f.write(data)
                else:
                    os.replace(tmp, target)
                    done.append(tmp)
            except OSError as e:
                raise UsageError(f"cannot write the {what} to {target}: {_reason(e)}") from None
            print(f"wrote {target} ({what})", file=sys.stderr)
    finally:
        for _, tmp, _, _ in staged:
            if tmp is not None and tmp not in done:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_output(path: str, text: str, what: str) -> None:
    """Write one output file (see :func:`write_outputs`)."""
    write_outputs([(path, text, what)])


def prepare_output_dir(path: str) -> Path:
    """An output directory: created if missing (its parent must exist), checked writable."""
    import tempfile

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"cannot write outputs to {path}: it is not a directory")
    if not out.exists():
        if not out.parent.is_dir():
            raise UsageError(f"cannot write outputs to {path}: directory {out.parent} does not exist (create it first)")
        try:
            out.mkdir()
        except OSError as e:
            raise UsageError(f"cannot create the output directory {path}: {_reason(e)}") from None
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise UsageError(f"cannot write outputs to {path}: {_reason(e)}") from None
    return out


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


# ----------------------------------------------------------------------------- sweeps

def add_sweep_options(p: argparse.ArgumentParser) -> None:
    """``--workers N`` and ``--scheduler ADDRESS``: where a sweep runs (see :mod:`symmaml.sweep`)."""
    g = p.add_argument_group("where the sweep runs (results never depend on it)")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="1: in this process (no Dask); N > 1: a local Dask cluster of N worker processes "
                        "(default: in this process, moving to one worker per CPU when the sweep is long "
                        "and Dask is installed)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on an existing Dask cluster, e.g. tcp://host:8786 (default: $SYMMAML_SCHEDULER)")


def check_counts(args, *flags: str) -> None:
    """``--runs``, ``--test-tasks``, ... (attribute names with ``_``) positive integers and ``--seed`` a
    non-negative one: the checks every simulating command makes."""
    for attr in flags:
        v = getattr(args, attr)
        if v < 1:
            raise UsageError(f"--{attr.replace('_', '-')} must be a positive integer; got {v}")
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer; got {args.seed}")


def sweep_options(args) -> dict:
    """``workers`` and ``scheduler`` for :func:`symmaml.sweep.run`, checked (Dask installed if needed)."""
    from ..sweep import DaskMissing, require_dask

    workers, scheduler = args.workers, args.scheduler
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be a positive integer; got {workers}")
    if scheduler and workers is not None:
        raise UsageError("give --workers or --scheduler, not both")
    if scheduler is None and workers is None:
        scheduler = os.environ.get("SYMMAML_SCHEDULER") or None
    if (workers or 1) > 1 or scheduler:
        try:
            require_dask()
        except DaskMissing as e:
            raise UsageError(str(e)) from None
    return dict(workers=workers, scheduler=scheduler)


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

def _duration(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


class Progress:
    """A one-line progress bar on stderr (only when enabled).

    ``update(n)`` adds ``n`` units of work; ``set(points, done)`` (a sweep's progress callback) sets the
    points finished and the work done, and shows points done/total and an ETA from the rate since the
    first call.
    """

    def __init__(self, total: int, enabled: bool, label: str = "simulate", unit: str = "runs",
                 points: int | None = None):
        self.total, self.enabled, self.label, self.unit = max(total, 1), enabled, label, unit
        self.done, self.start = 0, time.monotonic()
        self.points, self.points_done = points, 0
        self._base, self._shown = None, 0.0

    def update(self, n: int) -> None:
        self.done += n
        self._draw()

    def set(self, points: int, done: int) -> None:
        if self._base is None:
            self._base = (done, time.monotonic())
        self.points_done, self.done = points, done
        self._draw()

    def clear(self) -> None:
        """Erase the bar (before other output on the same terminal; the next update redraws it)."""
        if self.enabled and self._shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self._shown = 0.0

    def _draw(self) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self._shown and now - self._shown < 0.1 and self.done < self.total:
            return
        self._shown = now
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        if self.points is None:
            count = f"{self.done}/{self.total} {self.unit}"
        else:
            count = f"{self.points_done}/{self.points} points"
        eta = ""
        if self._base is not None and self.done > self._base[0] and self.done < self.total:
            rate = (self.done - self._base[0]) / (now - self._base[1] or 1e-9)
            eta = f" ETA {_duration((self.total - self.done) / rate)}"
        sys.stderr.write(f"\r{self.label} [{bar}] {100 * frac:3.0f}% {count} {_duration(now - self.start)}{eta}\033[K")
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
