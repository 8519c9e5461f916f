r"""Figures for papers: learning curves of the theory against simulated points, saved as PNG and PDF.

* Every figure is written twice, a PNG (for the README and notebooks) and a vector PDF (for a
  paper), with no dates or software versions in either, so both are byte-identical from run to
  run (``metadata`` of :func:`save`).
* Titles and labels are mathtext (``$n_t = 30$``, ``$\alpha_r$``): :func:`parameters_text` writes
  a parameter set in the paper's notation.
* Simulated points are hollow markers with two-standard-error bars drawn over them; when every
  bar is shorter than the marker, the legend says so (it is measured on the figure, not assumed).
* Legends sit below the axes, never over the data.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["learning_curve_figure", "write_table", "save", "parameters_text", "MATH_NAMES", "bars_hidden"]

#: the parameters in mathtext (matplotlib's TeX subset has no \lVert)
MATH_NAMES = {
    "p": "p", "m": "m", "n_t": "n_t", "n_v": "n_v", "n_r": "n_r", "alpha_t": r"\alpha_t", "alpha_r": r"\alpha_r",
    "sigma": r"\sigma", "nu": r"\nu", "dist0": r"\|\omega_0 - w_0\|^2", "d": "d", "beta": r"\beta",
}
#: PNG and PDF metadata without dates or versions (deterministic bytes)
PNG_METADATA = {"Software": None}
PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None}


def parameters_text(params: dict) -> str:
    """``$p = 60$, $m = 3$, ...``: a parameter set in mathtext, in the given order."""
    return ", ".join(f"${MATH_NAMES.get(k, k)} = {v:g}$" for k, v in params.items())


def save(fig, path) -> list:
    """Save ``fig`` as ``path`` (PNG) and beside it as a PDF; returns both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf = path.with_suffix(".pdf")
    fig.savefig(path.with_suffix(".png"), metadata=PNG_METADATA, bbox_inches="tight", pad_inches=0.04)
    fig.savefig(pdf, metadata=PDF_METADATA, bbox_inches="tight", pad_inches=0.04)
    return [path.with_suffix(".png"), pdf]


def bars_hidden(ax, x, y, half, marker_size: float) -> bool:
    """Whether every error bar ``y +- half`` is shorter than the marker (``marker_size`` points)
    on ``ax`` as it is drawn (limits fixed)."""
    fig = ax.figure
    radius = marker_size / 2 * fig.dpi / 72
    pts = np.column_stack([x, y])
    up = ax.transData.transform(np.column_stack([x, np.asarray(y) + np.asarray(half)]))
    return bool(np.all(np.abs(up[:, 1] - ax.transData.transform(pts)[:, 1]) < radius))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curve_figure(path, x, curves, points=None, *, xlabel, ylabel="average test loss", title="",
                          vlines=(), ncol: int = 2):
    """Save ``curves`` (``{label: y}`` on the grid ``x``) and simulated ``points`` as PNG and PDF.

    ``points`` is ``(x, mean, stderr, label)``; the bars are two standard errors.  Returns the
    paths written.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.9), dpi=150)
    styles = ["-", "--", ":", "-."]
    for i, (label, y) in enumerate(curves.items()):
        ax.plot(x, y, styles[i % len(styles)], color=f"C{i}", lw=1.6, label=label, zorder=2)
    for xv in vlines:
        ax.axvline(xv, color="0.6", lw=0.8, ls=":", zorder=1)
    if points is not None:
        px, mean, se, label = points
        ms = 4.5
        bars = ax.errorbar(px, mean, yerr=2 * np.asarray(se), fmt="o", ms=ms, mfc="none", mec="k", mew=0.9,
                           color="k", ecolor="k", elinewidth=1.0, capsize=2.5, zorder=4)
        ax.autoscale_view()
        hidden = bars_hidden(ax, px, mean, 2 * np.asarray(se), ms)
        bars.set_label(label + (r" ($\pm 2$ s.e.: shorter than the markers)" if hidden else r", $\pm 2$ s.e."))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7.5, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol)
    written = save(fig, path)
    plt.close(fig)
    return written


def write_table(path, header, rows, fmt="{:.10g}"):
    """Write a CSV table with a fixed number format (deterministic)."""
    lines = [",".join(header)]
    for row in rows:
        lines.append(",".join(v if isinstance(v, str) else fmt.format(v) for v in row))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")
