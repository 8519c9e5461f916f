"""Learning-curve figures: a theory curve (or several) against simulated points with error bars.

Deterministic PNGs: the Agg backend, fixed size and DPI, and no software/date metadata.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["learning_curve_figure", "write_table"]


def learning_curve_figure(path, x, curves, points=None, *, xlabel, ylabel="average test loss", title="",
                          vlines=()):
    """Save a PNG of ``curves`` (``{label: y}`` on the grid ``x``) and simulated ``points``.

    ``points`` is ``(x, mean, stderr, label)``; error bars are two standard errors.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.6), dpi=120)
    styles = ["-", "--", ":", "-."]
    for i, (label, y) in enumerate(curves.items()):
        ax.plot(x, y, styles[i % len(styles)], color=f"C{i}", lw=1.6, label=label)
    if points is not None:
        px, mean, se, label = points
        ax.errorbar(px, mean, yerr=2 * np.asarray(se), fmt="o", ms=3.5, color="k", capsize=2, lw=1, label=label)
    for xv in vlines:
        ax.axvline(xv, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=8)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def write_table(path, header, rows, fmt="{:.10g}"):
    """Write a CSV table with a fixed number format (deterministic)."""
    lines = [",".join(header)]
    for row in rows:
        lines.append(",".join(v if isinstance(v, str) else fmt.format(v) for v in row))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")
