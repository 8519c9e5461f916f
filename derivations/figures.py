"""Appendix B: Figures 2 and 3 of the paper, theory against simulation.

For each panel the leading-order theory (derived by the engine) is drawn over the scanned
learning rate, with the finite-size corrected theory where it is derived for the panel's regime
(``ORDERS['corrected']``), and the Monte Carlo simulator of the same model gives points with
two-standard-error bars.  Writes ``derivations/out/figure_{2a,2b,3a,3b}.{png,csv}``; the CSV has
one theory column and one relative-error column per order drawn.

The simulation uses the exact meta-training solution, and the exact population test loss of
each adapted test task (no test points are sampled); 20,000 runs per point for Figure 2 and
3,000 for Figure 3, seeded, so the output is reproducible byte for byte.  The simulations of
all four panels run as one sweep (symmaml.sweep; --workers / --scheduler say where, never what
they give), point i of a panel seeded 1000 + i.
"""
import argparse
from pathlib import Path

import numpy as np

from symmaml import sweep
from symmaml.export.figures import learning_curve_figure, write_table
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
    """Draw and tabulate a panel from its simulations (dicts with mean and stderr, in point order)."""
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

    learning_curve_figure(
        out / f"figure_{name}.png", grid,
        {f"theory, {o} ({regime}parameterised)": curves[o] for o in orders},
        (xs, mean, se, f"simulation ({RUNS[name[0]]:,} runs/point, ±2 s.e.)"),
        xlabel=LABELS[scanned],
        title=f"Figure {name}\n" + ", ".join(f"{k}={v:g}" for k, v in {**fixed, **other}.items()),
        vlines=(0.0,),
    )
    errors = {o: (at_points[o] - mean) / mean for o in orders}
    header = [scanned] + [f"theory_{o}" for o in orders] + ["sim_mean", "sim_stderr"]
    header += ["rel_error" if o == "leading" else f"rel_error_{o}" for o in orders]
    write_table(out / f"figure_{name}.csv", header,
                zip(xs, *(at_points[o] for o in orders), mean, se, *(errors[o] for o in orders)))
    summary = "; ".join(f"max |{o} - sim| / sim = {np.max(np.abs(errors[o])):.2%}" for o in orders)
    best = grid[np.argmin(curves["leading"])]
    print(f"figure {name}: leading-order minimum at {scanned} = {best:+.3f}; {summary}")


def main(out: Path = OUT, workers: int | None = None, scheduler: str | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pts = [pt for name in SCANS for pt in points(name)]
    results = sweep.run(sweep.simulate_chunk, [prm for prm, _, _ in pts], runs=[r for _, r, _ in pts],
                        seeds=[s for *_, s in pts], workers=workers, scheduler=scheduler)
    for name in SCANS:  # each panel as soon as its points are done
        panel(name, out, [next(results) for _ in range(POINTS)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--workers", type=int, default=None,
                        help="1: in this process; N: a local Dask cluster of N processes (default: as "
                             "symmaml.sweep decides; the results do not depend on it)")
    parser.add_argument("--scheduler", default=None, help="address of an existing Dask cluster")
    args = parser.parse_args()
    main(args.out, args.workers, args.scheduler)
