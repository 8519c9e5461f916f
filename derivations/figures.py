"""Appendix B: Figures 2 and 3 of the paper, theory against simulation.

For each panel the leading-order theory (derived by the engine) is drawn over the scanned
learning rate, and the Monte Carlo simulator of the same model gives points with two-standard-
error bars.  Writes ``derivations/out/figure_{2a,2b,3a,3b}.{png,csv}``.

The simulation uses the exact meta-training solution, and the exact population test loss of
each adapted test task (no test points are sampled); 20,000 runs per point for Figure 2 and
3,000 for Figure 3, seeded, so the output is reproducible byte for byte.
"""
import argparse
from pathlib import Path

import numpy as np

from symmaml.export.figures import learning_curve_figure, write_table
from symmaml.maml import average_test_loss
from symmaml.maml.paper import SCANS
from symmaml.sim import simulate

OUT = Path(__file__).resolve().parent / "out"
RUNS = {"2": 20_000, "3": 3_000}
POINTS = 13
LABELS = {"alpha_t": r"$\alpha_t$", "alpha_r": r"$\alpha_r$"}


def panel(name: str, out: Path) -> None:
    fixed, scanned, (lo, hi), other = SCANS[name]
    regime = "over" if fixed["p"] > fixed["m"] * fixed["n_v"] else "under"
    theory = average_test_loss(regime, "leading").numeric()
    grid = np.linspace(lo, hi, 241)
    curve = theory(**fixed, **other, **{scanned: grid})

    xs = np.linspace(lo, hi, POINTS)
    sims = [simulate(**fixed, **other, **{scanned: float(x)}, runs=RUNS[name[0]], seed=1000 + i)
            for i, x in enumerate(xs)]
    mean = np.array([s["mean"] for s in sims])
    se = np.array([s["stderr"] for s in sims])
    at_points = theory(**fixed, **other, **{scanned: xs})

    best = grid[np.argmin(curve)]
    learning_curve_figure(
        out / f"figure_{name}.png", grid, {f"theory, leading order ({regime}parameterised)": curve},
        (xs, mean, se, f"simulation ({RUNS[name[0]]:,} runs/point, ±2 s.e.)"),
        xlabel=LABELS[scanned],
        title=f"Figure {name}\n" + ", ".join(f"{k}={v:g}" for k, v in {**fixed, **other}.items()),
        vlines=(0.0,),
    )
    write_table(out / f"figure_{name}.csv", [scanned, "theory_leading", "sim_mean", "sim_stderr", "rel_error"],
                zip(xs, at_points, mean, se, (at_points - mean) / mean))
    print(f"figure {name}: theory minimum at {scanned} = {best:+.3f}; "
          f"max |theory - sim| / sim = {np.max(np.abs(at_points - mean) / mean):.2%}")


def main(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in SCANS:
        panel(name, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    main(parser.parse_args().out)
