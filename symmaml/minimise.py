"""Bracketed minimisation of a vectorised function of one real variable (a numeric search).

:func:`bracketed_minimum` evaluates ``f`` on a grid over ``[c - B, c + B]``, widening ``B`` while
the lowest grid point sits at an end of the grid, then zooms in: a finer grid between the lowest
point's neighbours, again and again, until the bracket ``[lo, hi]`` around the lowest point is
narrower than the tolerance or ``f`` is flat there to float precision.  The answer carries its
check: ``f(lo) > f(x) < f(hi)`` with all three finite, so a local minimum of ``f`` lies strictly
inside ``[lo, hi]`` (the minimum is interior, not at an end of the search or of the domain).

It is a search, not a proof: the minimum is the lowest of the grid points, so a dip narrower than
the first grid's spacing can be missed, and the argmin is known to the bracket's width.  ``f``
returns NaN where it is not defined; a lowest value next to an undefined point is reported as
lying at the edge of the domain, and one at the end of the widest grid as approached at infinity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Bracketed", "bracketed_minimum", "NoInteriorMinimum"]


class NoInteriorMinimum(ValueError):
    """The lowest value is at the edge of the domain or approached at infinity: no interior minimum."""


@dataclass(frozen=True)
class Bracketed:
    """A bracketed minimum: ``f(lo) > f(argmin) < f(hi)``, all finite (unless ``flat``)."""

    argmin: float
    minimum: float
    bracket: tuple  # (lo, hi)
    search: tuple  # the interval of the first grid, after widening
    points: int  # points of each grid
    evaluations: int
    xtol: float  # the requested bracket width (relative to max(1, |argmin|))
    flat: bool  # f is constant on the grid to float precision: every point is a minimiser

    @property
    def width(self) -> float:
        return self.bracket[1] - self.bracket[0]

    def as_dict(self) -> dict:
        return dict(argmin=self.argmin, min=self.minimum, bracket=list(self.bracket), search=list(self.search),
                    grid_points=self.points, evaluations=self.evaluations, xtol=self.xtol, flat=self.flat)


def _lowest(y):
    return int(np.nanargmin(y))


def bracketed_minimum(f, scale: float, *, center: float = 0.0, points: int = 401, xtol: float = 1e-9,
                      widen: float = 4.0, max_scale: float = 1e4, flat_rtol: float = 1e-13,
                      name: str = "x") -> Bracketed:
    """Minimise ``f`` (a vectorised function, NaN where undefined) over the real line.

    The first grid spans ``center +- scale`` with ``points`` points; it widens by ``widen`` while
    its lowest point is at one of its ends, up to ``center +- max_scale * scale``.  ``xtol``: the
    bracket is refined until narrower than ``xtol * max(1, |argmin|)`` or flat to float precision.
    ``flat_rtol``: ``f`` varying by less than this (relative) over the grid counts as constant.
    Raises :class:`NoInteriorMinimum` (naming ``name``) when the lowest value is not interior."""
    if not (scale > 0 and np.isfinite(scale)):
        raise ValueError(f"scale must be a finite positive number; got {scale!r}")
    evaluations = 0
    half = scale
    while True:
        x = np.linspace(center - half, center + half, points)
        y = np.asarray(f(x), dtype=float)
        evaluations += points
        finite = np.isfinite(y)
        if not finite.any():
            raise NoInteriorMinimum(f"the function is not defined anywhere on {name} in "
                                    f"[{center - half:.6g}, {center + half:.6g}]")
        i = _lowest(y)
        lo_val, hi_val = np.nanmin(y), np.nanmax(y)
        if finite.all() and hi_val - lo_val <= flat_rtol * max(abs(lo_val), abs(hi_val), np.finfo(float).tiny):
            return Bracketed(float(x[points // 2]), float(y[points // 2]), (float(x[0]), float(x[-1])),
                             (float(x[0]), float(x[-1])), points, evaluations, xtol, True)
        if i in (0, points - 1) and half < max_scale * scale:
            half *= widen
            continue
        break
    search = (float(x[0]), float(x[-1]))
    if i in (0, points - 1):
        side = "+" if i else "-"
        raise NoInteriorMinimum(
            f"no interior minimum: the function keeps decreasing towards {name} = {x[i]:.6g}, the end of the "
            f"widest search interval [{search[0]:.6g}, {search[1]:.6g}]; its infimum is approached as "
            f"{name} -> {side}infinity")
    if not (finite[i - 1] and finite[i + 1]):
        raise NoInteriorMinimum(
            f"no interior minimum where the function is defined: its lowest value on the grid is at {name} = "
            f"{x[i]:.6g}, next to where it is not defined (the edge of its domain)")
    step = _strict(y, i)
    if step is None:
        raise NoInteriorMinimum(f"no strict minimum: the function is flat to float precision around {name} = "
                                f"{x[i]:.6g} (its lowest grid values are equal there)")
    xi, yi = float(x[i]), float(y[i])
    lo, hi = float(x[i - 1]), float(x[i + step])
    half_points = max(points // 40, 5)
    while hi - lo > xtol * max(1.0, abs(xi)):
        xs = np.concatenate([np.linspace(lo, xi, half_points + 1), np.linspace(xi, hi, half_points + 1)[1:]])
        ys = np.asarray(f(xs), dtype=float)
        evaluations += len(xs)
        ys[half_points] = yi  # the centre is xi itself
        if not np.isfinite(ys).all():
            break  # keep the last bracket with finite ends (cannot happen for a continuous f)
        j = _lowest(ys)  # 0 < j < len(xs) - 1, as f(lo) > f(xi) < f(hi)
        step = _strict(ys, j) if 0 < j < len(xs) - 1 else None
        if step is None:
            break  # flat at float precision between grid points: the bracket cannot shrink further
        xi, yi, lo, hi = float(xs[j]), float(ys[j]), float(xs[j - 1]), float(xs[j + step])
    return Bracketed(xi, yi, (lo, hi), search, points, evaluations, xtol, False)


def _strict(y, i):
    """1 if ``y[i + 1] > y[i]``; 2 if ``y[i + 1] == y[i] < y[i + 2]`` (a tie: the minimum lies between
    the two); None if the lowest values form a longer plateau.  (``y[i - 1] > y[i]``, as ``i`` is the
    first lowest index.)"""
    if i + 1 < len(y) and y[i + 1] > y[i]:
        return 1
    if i + 2 < len(y) and y[i + 1] == y[i] and y[i + 2] > y[i]:
        return 2
    return None
