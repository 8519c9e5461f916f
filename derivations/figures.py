"""Appendix B: Figures 2 and 3 of the paper, theory against simulation.

For each panel the leading-order theory (derived by the engine) is drawn over the scanned
learning rate, with the finite-size corrected theory where it is derived for the panel's regime
(``ORDERS['corrected']``), and the Monte Carlo simulator of the same model gives points with
two-standard-error bars.  Writes ``derivations/out/figure_{2a,2b,3a,3b}.{png,pdf,csv}``; the CSV
has one theory column and one relative-error column per order drawn.  ``--plot-only`` redraws
the figures from the committed CSVs' simulated points (the theory curves are recomputed).

The simulation uses the exact meta-training solution, and the exact population test loss of
each adapted test task (no test points are sampled); 20,000 runs per point for Figure 2 and
3,000 for Figure 3, seeded, so the output is reproducible byte for byte.
"""
import argparse
import csv
from pathlib import Path

import numpy as np

from symmaml import sweep
from symmaml.export.figures import learning_curve_figure, parameters_text, write_table
from symmaml.maml import ORDERS, average_test_loss
from symmaml.maml.paper import SCANS

OUT = Path(__file__).resolve().parent / "out"
RUNS = {"2": 20_000, "3": 3_000}
POINTS = 13
LABELS = {"alpha_t": r"$\alpha_t$", "alpha_r": r"$\alpha_r$"}


def points(name: str) -> list:
    """The simulated points of a panel: (parameters, runs, seed)."""
    fixed, scanned, (lo, hi), other = SCANS[name]
    return [({**fixed, **other, scanned: float(x)}, RUNS[name[0]], 1000 + i)
            for i, x in enumerate(np.linspace(lo, hi, POINTS))]


def panel(name: str, out: Path, sims: list) -> None:
    """Tabulate and draw a panel from its simulations (dicts with mean and stderr, in point order)."""
    fixed, scanned, (lo, hi), other = SCANS[name]
    regime = "over" if fixed["p"] > fixed["m"] * fixed["n_v"] else "under"
    orders = [o for o in ("leading", "corrected") if regime in ORDERS[o]]
    theories = {o: average_test_loss(regime, o).numeric() for o in orders}
    grid = np.linspace(lo, hi, 241)
    curves = {o: f(**fixed, **other, **{scanned: grid}) for o, f in theories.items()}

    xs = np.linspace(lo, hi, POINTS)
    mean = np.array([s["mean"] for s in sims])
    se = np.array([s["stderr"] for s in sims])
    at_points = {o: f(**fixed, **other, **{scanned: xs}) for o, f in theories.items()}

    errors = {o: (at_points[o] - mean) / mean for o in orders}
    header = [scanned] + [f"theory_{o}" for o in orders] + ["sim_mean", "sim_stderr"]
    header += ["rel_error" if o == "leading" else f"rel_error_{o}" for o in orders]
    write_table(out / f"figure_{name}.csv", header,
                zip(xs, *(at_points[o] for o in orders), mean, se, *(errors[o] for o in orders)))
    redraw(name, out, tables=out)  # from the table just written: the same figure as --plot-only
    summary = "; ".join(f"max |{o} - sim| / sim = {np.max(np.abs(errors[o])):.2%}" for o in orders)
    best = grid[np.argmin(curves["leading"])]
    print(f"figure {name}: leading-order curve lowest at {scanned} = {best:+.3f} on the plotted grid "
          f"(step {grid[1] - grid[0]:.3g}; the minimiser itself: optimal_summary.md); {summary}")


ORDER_WORDS = {"leading": "leading order", "corrected": "finite-size corrected", "exact": "exact"}


def draw(name: str, out: Path, xs, mean, se) -> None:
    """The figure of panel ``name``: the theory curves (derived now) and the simulated points."""
    fixed, scanned, (lo, hi), other = SCANS[name]
    regime = "over" if fixed["p"] > fixed["m"] * fixed["n_v"] else "under"
    orders = [o for o in ("leading", "corrected") if regime in ORDERS[o]]
    grid = np.linspace(lo, hi, 241)
    curves = {f"theory, {ORDER_WORDS[o]}": average_test_loss(regime, o).numeric()(**fixed, **other, **{scanned: grid})
              for o in orders}
    learning_curve_figure(
        out / f"figure_{name}.png", grid, curves,
        (xs, mean, se, f"simulation, {RUNS[name[0]]:,} runs per point"),
        xlabel=LABELS[scanned],
        title=f"Figure {name} ({regime}parameterised)\n" + parameters_text({**fixed, **other}),
        vlines=(0.0,),
    )


def redraw(name: str, out: Path, tables: Path = OUT) -> None:
    """Draw panel ``name`` from its simulated points in ``tables``/figure_{name}.csv (no simulation)."""
    scanned = SCANS[name][1]
    with open(tables / f"figure_{name}.csv") as f:
        rows = list(csv.DictReader(f))
    xs, mean, se = (np.array([float(r[k]) for r in rows]) for k in (scanned, "sim_mean", "sim_stderr"))
    draw(name, out, xs, mean, se)


def main(out: Path = OUT, workers: int | None = None, scheduler: str | None = None, plot_only: bool = False) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if plot_only:  # from the committed tables, no simulation
        for name in SCANS:
            redraw(name, out)
        return
    pts = [pt for name in SCANS for pt in points(name)]
    results = sweep.run(sweep.simulate_chunk, [prm for prm, _, _ in pts], runs=[r for _, r, _ in pts],
                        seeds=[s for *_, s in pts], workers=workers, scheduler=scheduler)
    for name in SCANS:  # each panel as soon as its points are done
        panel(name, out, [next(results) for _ in range(POINTS)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    sweep.add_arguments(parser)
    parser.add_argument("--plot-only", action="store_true",
                        help="redraw the figures from the simulated points of derivations/out/figure_*.csv")
    args = parser.parse_args()
    main(args.out, args.workers, args.scheduler, args.plot_only)
