"""Accuracy of every derived order of the theory against simulation, on every grid point.

The points: the 13-point grids of the paper's Figures 2a, 2b, 3a, 3b exactly as
``derivations/figures.py`` scans them (``np.linspace(lo, hi, 13)`` of each ``SCANS`` entry),
and two settings away from them, each on its own alpha_t grid with alpha_r = 0.2:
overparameterised with dist0 = 1 and m n_v / p = 0.3 (alpha_t in linspace(-1, 1, 9)) and
underparameterised with m n_v / p = 10 (alpha_t in linspace(-0.5, 0.5, 9)).

At each point every order of ``symmaml.maml.loss.ORDERS`` derived for the point's regime is
evaluated (so an order or a regime derived later is picked up with no edit here); where an
order's numeric function rejects the point (the 'exact' orders hold at alpha_t = 0 only) its
value is missing.  The table gives |theory - simulation| / simulation per order, the gain
err_leading / err_corrected, and whether 'corrected' is within 3 standard errors of the
simulation; the figure plots the errors by regime and setting against the scanned rate, with
the simulation's two standard errors as a band.

Simulations: symmaml.sim.simulate with meta_test='analytic' (exact conditional average of
the meta-test phase), 20,000 runs per Figure-2 / overparameterised-away point and 3,000 per
Figure-3 / underparameterised-away point, seeded 7000 + (index of the point in the fixed
order below), so the outputs are byte-identical from run to run.  They run as one sweep
(symmaml.sweep; --workers / --scheduler say where, never what they give).
Writes accuracy_table.{csv,md} and accuracy_figure.{png,pdf}; prints the per-panel summary
(``--plot-only`` redraws the figure from the committed table).
"""
import argparse
import csv
import functools
import math
from pathlib import Path

import numpy as np

from symmaml import sweep
from symmaml.maml import average_test_loss
from symmaml.maml.loss import ORDERS
from symmaml.maml.paper import SCANS

OUT = Path(__file__).resolve().parent / "out"
POINTS = 13                                   # as derivations/figures.py
RUNS = {"2": 20_000, "3": 3_000}              # per point, by figure, as derivations/figures.py
OVER_AWAY = dict(p=40, m=4, n_t=20, n_v=3, n_r=20, sigma=1.0, nu=1.0, dist0=1.0)   # m n_v / p = 0.3
UNDER_AWAY = dict(p=10, m=20, n_t=10, n_v=5, n_r=10, sigma=1.0, nu=1.0, dist0=0.0)  # m n_v / p = 10
#: the away settings: (name, fixed parameters, alpha_t grid, alpha_r, runs per point)
AWAY = (
    ("over_away", OVER_AWAY, np.linspace(-1.0, 1.0, 9), 0.2, 20_000),
    ("under_away", UNDER_AWAY, np.linspace(-0.5, 0.5, 9), 0.2, 3_000),
)
SEED0 = 7000
GAIN_TARGET = 4.0                             # "corrected is >= 4x closer" in the summary
STYLES = {"leading": ("o", "C0"), "exact": ("D", "C2"), "corrected": ("s", "C3")}  # others: cycled
MARKERS = "^vP*X"


def grid():
    """Every point, in a fixed order: (panel, fixed parameters, rates, runs)."""
    pts = []
    for name, (fixed, scanned, (lo, hi), other) in SCANS.items():
        for x in np.linspace(lo, hi, POINTS):
            pts.append((f"fig{name}", fixed, {**other, scanned: float(x)}, RUNS[name[0]]))
    for name, fixed, alphas, alpha_r, runs in AWAY:
        for a_t in alphas:
            pts.append((name, fixed, dict(alpha_t=float(a_t), alpha_r=alpha_r), runs))
    return pts


def regime_of(prm) -> str:
    return "over" if prm["p"] > prm["m"] * prm["n_v"] else "under"


def orders_for(regimes) -> list:
    """The orders derived for at least one of ``regimes``, in ORDERS' order."""
    return [o for o in ORDERS if any(r in ORDERS[o] for r in regimes)]


# ----------------------------------------------------------------------------- formatting

def _fixed(fmt):
    def f(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        s = format(v, fmt)
        # a rate like -1.4e-17 (np.linspace) prints as -0.0000: drop the sign of a zero
        return s[1:] if s.startswith("-") and float(s) == 0.0 else s
    return f


CSV_FORMATS = {"ratio": _fixed(".6f"), "alpha_t": _fixed(".6f"), "alpha_r": _fixed(".6f"),
               "dist0": _fixed(".6f"), "sim": _fixed(".8f"), "rel_se": _fixed(".4e"),
               "gain": _fixed(".3f")}


def csv_value(key, v):
    if isinstance(v, bool):
        return "True" if v else "False"
    if v is None:
        return ""
    if key in CSV_FORMATS:
        return CSV_FORMATS[key](v)
    if isinstance(v, float):
        return _fixed(".4e")(v) if key.startswith("err_") else _fixed(".8f")(v)
    return str(v)


def pc(x) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.2f}%"


def md_float(fmt):
    f = _fixed(fmt)
    return lambda v: f(v) or "n/a"


# ----------------------------------------------------------------------------- computation

def simulations(pts, workers=None, scheduler=None):
    """The simulation of every point (mean, stderr, runs), in order: one sweep, point i seeded SEED0 + i."""
    fn = functools.partial(sweep.simulate_chunk, meta_test="analytic")
    return sweep.run(fn, [{**fixed, **rates} for _, fixed, rates, _ in pts], runs=[r for *_, r in pts],
                     seeds=[SEED0 + i for i in range(len(pts))], workers=workers, scheduler=scheduler)


def evaluate(workers: int | None = None, scheduler: str | None = None) -> tuple:
    pts = grid()
    regimes = sorted({regime_of({**fixed, **rates}) for _, fixed, rates, _ in pts})
    orders = orders_for(regimes)
    numeric = {(o, r): average_test_loss(r, o).numeric() for o in orders for r in regimes if r in ORDERS[o]}
    rows, notes = [], []
    for (name, fixed, rates, runs), s in zip(pts, simulations(pts, workers, scheduler)):
        prm = {**fixed, **rates}
        regime = regime_of(prm)
        sim, se = float(s["mean"]), float(s["stderr"])
        row = dict(panel=name, regime=regime, ratio=prm["m"] * prm["n_v"] / prm["p"], alpha_t=prm["alpha_t"],
                   alpha_r=prm["alpha_r"], dist0=float(prm["dist0"]), runs=runs, sim=sim, rel_se=se / sim)
        for o in orders:
            val = None
            if (o, regime) in numeric:
                try:
                    val = float(numeric[o, regime](**prm))
                except ValueError as e:
                    if not (o == "exact" and prm["alpha_t"] != 0):
                        notes.append(f"{name} alpha_t={prm['alpha_t']:+.4f} alpha_r={prm['alpha_r']:+.4f}: "
                                     f"{o} n/a ({e})")
            row[o] = val
            row[f"err_{o}"] = None if val is None else abs(val - sim) / sim
        el, ec = row.get("err_leading"), row.get("err_corrected")
        row["gain"] = (el / ec if ec > 0 else math.inf) if el is not None and ec is not None else None
        co = row.get("corrected")
        row["within_3se_corrected"] = None if co is None else bool(abs(co - sim) <= 3 * se)
        rows.append(row)
    return rows, orders, notes


def summarize(rows, orders) -> list:
    """One line per panel."""
    lines = []
    panels = list(dict.fromkeys(r["panel"] for r in rows))
    for name in panels:
        rs = [r for r in rows if r["panel"] == name]
        def present(key):
            return [r[key] for r in rs if r.get(key) is not None]
        def max_se(order):  # the largest |theory - simulation| in standard errors
            return max(abs(r[order] - r["sim"]) / (r["rel_se"] * r["sim"]) for r in rs if r.get(order) is not None)
        parts = [f"{name} ({rs[0]['regime']}, {len(rs)} points)"]
        el, ec = present("err_leading"), present("err_corrected")
        parts.append(f"max leading error {pc(max(el)) if el else 'n/a'}")
        if ec:
            gains = present("gain")
            good = sum(1 for r in rs if r.get("corrected") is not None
                       and (r["gain"] >= GAIN_TARGET or r["within_3se_corrected"]))
            n4 = sum(1 for g in gains if g >= GAIN_TARGET)
            n3 = sum(1 for r in rs if r.get("within_3se_corrected"))
            worse = sum(1 for g in gains if g < 1)
            parts += [f"max corrected error {pc(max(ec))}, max {max_se('corrected'):.1f} s.e.",
                      f"min gain {min(gains):.2f}x",
                      f"corrected >= {GAIN_TARGET:g}x closer or within 3 s.e. at {good}/{len(ec)} points "
                      f"(>= {GAIN_TARGET:g}x: {n4}, within 3 s.e.: {n3})"]
            if worse:
                parts.append(f"corrected worse than leading at {worse}")
        else:
            parts.append("corrected n/a")
        for o in orders:
            if o in ("leading", "corrected"):
                continue
            eo = present(f"err_{o}")
            if eo:
                parts.append(f"max {o} error {pc(max(eo))}, max {max_se(o):.1f} s.e. "
                             f"({len(eo)} point{'s' * (len(eo) > 1)})")
        lines.append("; ".join(parts))
    return lines


# ----------------------------------------------------------------------------- outputs

def write_csv(path, rows, keys) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(keys)
        for r in rows:
            w.writerow([csv_value(k, r.get(k)) for k in keys])


def write_md(path, rows, orders, summary) -> None:
    rate = md_float(".4f")
    head = ["panel", "regime", "m n_v/p", "alpha_t", "alpha_r", "dist0", "runs", "simulation", "rel. s.e."]
    for o in orders:
        head += [o, f"{o} err"]
    head += ["leading/corrected", "corrected within 3 s.e."]
    lines = [
        "# Accuracy of the theory against simulation",
        "",
        "Every point of the Figure 2a, 2b, 3a, 3b grids and of the two away settings; errors are "
        "|theory - simulation| / simulation, 'rel. s.e.' is the simulation's standard error over its mean.",
        "",
        "## Summary per panel",
        "",
        *[f"- {s}" for s in summary],
        "",
        "## Table",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cells = [r["panel"], r["regime"], f"{r['ratio']:.2f}", rate(r["alpha_t"]), rate(r["alpha_r"]),
                 f"{r['dist0']:g}", f"{r['runs']:,}", f"{r['sim']:.5f}", pc(r["rel_se"])]
        for o in orders:
            cells += [md_float(".5f")(r.get(o)), pc(r.get(f"err_{o}"))]
        g, w = r.get("gain"), r.get("within_3se_corrected")
        cells += ["n/a" if g is None else f"{g:.1f}", "n/a" if w is None else ("yes" if w else "no")]
        lines.append("| " + " | ".join(cells) + " |")
    Path(path).write_text("\n".join(lines) + "\n")


#: the panels of the figure: one row per regime, one column per setting (its scanned rate)
FIGURE_PANELS = {
    "over": (("fig2a", "alpha_r", "Figure 2a"), ("fig2b", "alpha_t", "Figure 2b"),
             ("over_away", "alpha_t", r"$m n_v/p = 0.3$, $\|\omega_0 - w_0\|^2 = 1$")),
    "under": (("fig3a", "alpha_r", "Figure 3a"), ("fig3b", "alpha_t", "Figure 3b"),
              ("under_away", "alpha_t", r"$m n_v/p = 10$")),
}
RATE_LABELS = {"alpha_t": r"$\alpha_t$", "alpha_r": r"$\alpha_r$"}


def write_figure(path, rows, orders) -> None:
    """The relative error of each order against simulation, by regime (rows) and setting (columns).

    Each point is |theory - simulation| / simulation on a log axis, one marker per order; the grey
    band is two standard errors of the simulation: an error inside it is noise.  (Error bars on a
    log axis would run off it wherever the error is within noise; the band shows the same thing.)
    Written as PNG and PDF.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from symmaml.export.figures import save

    errs = [r[f"err_{o}"] for r in rows for o in orders if r.get(f"err_{o}")]
    floor = 10 ** math.floor(math.log10(min(min(errs), min(2 * r["rel_se"] for r in rows)) / 2))
    top = 10 ** math.ceil(math.log10(max(errs) * 2))
    fig, axes = plt.subplots(2, 3, figsize=(10.5, 6.0), dpi=130, sharey=True)
    for i, (regime, panels) in enumerate(FIGURE_PANELS.items()):
        for j, (name, rate, title) in enumerate(panels):
            ax = axes[i, j]
            rs = sorted((r for r in rows if r["panel"] == name), key=lambda r: r[rate])
            if not rs:
                ax.set_visible(False)
                continue
            x = np.array([r[rate] for r in rs])
            noise = np.array([2 * r["rel_se"] for r in rs])
            ax.fill_between(x, floor, noise, step="mid", color="0.88", lw=0, zorder=1)
            for k, o in enumerate(orders):
                ok = [(r[rate], r[f"err_{o}"]) for r in rs if r.get(f"err_{o}") is not None]
                if not ok:
                    continue
                marker, color = STYLES.get(o, (MARKERS[k % len(MARKERS)], f"C{4 + k}"))
                xo, eo = np.array(ok).T
                ax.plot(xo, np.maximum(eo, floor), marker, color=color, ms=4.5,
                        mfc="none" if o == "leading" else color, mew=1.0, ls="none", zorder=3)
            ax.set_yscale("log")
            ax.set_ylim(floor, top)
            ax.set_xlabel(RATE_LABELS[rate])
            other = "alpha_t" if rate == "alpha_r" else "alpha_r"
            fixed = {r[other] for r in rs}
            sub = f", ${RATE_LABELS[other][1:-1]} = {fixed.pop():g}$" if len(fixed) == 1 else ""
            ax.set_title(f"{title}{sub}", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{regime}parameterised\n" + r"$|$theory $-$ simulation$|$ / simulation", fontsize=9)
    handles = [Line2D([], [], marker=STYLES.get(o, (MARKERS[k % len(MARKERS)], f"C{4 + k}"))[0], ls="none",
                      color=STYLES.get(o, (None, f"C{4 + k}"))[1], mfc="none" if o == "leading" else None,
                      label=f"{o} order" if o != "exact" else r"exact ($\alpha_t = 0$ only)")
               for k, o in enumerate(orders)]
    handles.append(Patch(color="0.88", label=r"$2$ s.e. of the simulation (errors inside are noise)"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=8.5,
               bbox_to_anchor=(0.5, -0.01))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    save(fig, path)
    plt.close(fig)


def read_csv(path) -> tuple:
    """The rows and orders of a written ``accuracy_table.csv`` (to redraw the figure without simulating)."""
    with open(path) as f:
        raw = list(csv.DictReader(f))
    orders = [o for o in ORDERS if o in raw[0]]
    rows = []
    for r in raw:
        row = {k: (float(v) if v not in ("", "True", "False") and k not in ("panel", "regime") else v)
               for k, v in r.items()}
        for k, v in row.items():
            if v == "":
                row[k] = None
        rows.append(row)
    return rows, orders


def main(out: Path = OUT, workers: int | None = None, scheduler: str | None = None, plot_only: bool = False) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if plot_only:  # the figure from the committed table, no simulation
        write_figure(out / "accuracy_figure.png", *read_csv(OUT / "accuracy_table.csv"))
        return
    rows, orders, notes = evaluate(workers, scheduler)
    keys = ["panel", "regime", "ratio", "alpha_t", "alpha_r", "dist0", "runs", "sim", "rel_se"]
    for o in orders:
        keys += [o, f"err_{o}"]
    keys += ["gain", "within_3se_corrected"]
    summary = summarize(rows, orders)
    write_csv(out / "accuracy_table.csv", rows, keys)
    write_md(out / "accuracy_table.md", rows, orders, summary)
    write_figure(out / "accuracy_figure.png", *read_csv(out / "accuracy_table.csv"))  # as --plot-only draws it
    for s in summary:
        print(s)
    for n in notes:
        print("note:", n)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    sweep.add_arguments(ap)
    ap.add_argument("--plot-only", action="store_true",
                    help="redraw accuracy_figure.{png,pdf} from derivations/out/accuracy_table.csv")
    args = ap.parse_args()
    main(args.out, args.workers, args.scheduler, args.plot_only)
