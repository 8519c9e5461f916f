"""Input checks of the nonlinear model's functions (decision D1: sizes may be integral floats).

Each raises a one-line ``ValueError`` naming the parameter and the allowed range."""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["check_size", "check_real"]


def check_size(name: str, value) -> int:
    """An int, a NumPy integer or an integral float (not a bool), as a positive int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    x = float(value)
    if not (math.isfinite(x) and x.is_integer() and x >= 1):
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(x)


def check_real(name: str, value, minimum: float | None = None) -> float:
    """A finite real number (``>= minimum`` when given), as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite real number; got {value!r}")
    x = float(value)
    if not math.isfinite(x) or (minimum is not None and x < minimum):
        what = "a finite real number" if minimum is None else f"a finite number >= {minimum:g}"
        raise ValueError(f"{name} must be {what}; got {value!r}")
    return x
