"""Accuracy of the leading-order and finite-size corrected theory against simulation.

On the grids of the paper's Figures 2a, 2b, 3a, 3b and on two settings away from them
(overparameterised with dist0 > 0 and m n_v / p = 0.3; underparameterised with m n_v / p = 10)
this tabulates |theory - simulation| / simulation for the 'leading' and 'corrected' orders,
with the simulations' relative standard errors, and plots the error against m n_v / p and
alpha_t.  The corrected order is derived for the overparameterised regime only ('n/a' in the
underparameterised rows).  Simulations: symmaml.sim.simulate with meta_test='analytic' (exact
conditional average of the meta-test phase), 20,000 runs per overparameterised point and
3,000 per underparameterised point, seeded.  Writes accuracy_table.{csv,md}, accuracy_figure.png.
"""
import argparse
import csv
from pathlib import Path

import numpy as np

from symmaml.maml import average_test_loss
from symmaml.maml.paper import FIGURE_2, FIGURE_3
from symmaml.sim import simulate

OUT = Path(__file__).resolve().parent / "out"
OVER_AWAY = dict(p=40, m=4, n_t=20, n_v=3, n_r=20, sigma=1.0, nu=1.0, dist0=1.0)   # m n_v / p = 0.3
UNDER_AWAY = dict(p=10, m=20, n_t=10, n_v=5, n_r=10, sigma=1.0, nu=1.0, dist0=0.0)  # m n_v / p = 10


def grid():
    pts = []
    for a_r in (-0.1, 0.1, 0.3, 0.5):
        pts.append(("fig2a", FIGURE_2, dict(alpha_t=0.2, alpha_r=a_r)))
    for a_t in (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0):
        pts.append(("fig2b", FIGURE_2, dict(alpha_t=a_t, alpha_r=0.2)))
    for a_r in (-0.1, 0.1, 0.3, 0.5):
        pts.append(("fig3a", FIGURE_3, dict(alpha_t=0.2, alpha_r=a_r)))
    for a_t in (-0.5, -0.25, 0.0, 0.25, 0.5):
        pts.append(("fig3b", FIGURE_3, dict(alpha_t=a_t, alpha_r=0.2)))
    for a_t in (-1.0, -0.5, 0.5, 1.0):
        pts.append(("over_away", OVER_AWAY, dict(alpha_t=a_t, alpha_r=0.2)))
    for a_t in (-0.5, 0.25, 0.5):
        pts.append(("under_away", UNDER_AWAY, dict(alpha_t=a_t, alpha_r=0.2)))
    return pts


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lead = {r: average_test_loss(r, "leading").numeric() for r in ("over", "under")}
    corr = average_test_loss("over", "corrected").numeric()
    rows = []
    for i, (name, fixed, rates) in enumerate(grid()):
        prm = {**fixed, **rates}
        regime = "over" if prm["p"] > prm["m"] * prm["n_v"] else "under"
        runs = 20_000 if regime == "over" else 3_000
        s = simulate(**prm, runs=runs, seed=7000 + i, meta_test="analytic")
        sim, se = s["mean"], s["stderr"]
        lo = float(lead[regime](**prm))
        co = float(corr(**prm)) if regime == "over" else float("nan")
        rows.append(dict(panel=name, regime=regime, ratio=prm["m"] * prm["n_v"] / prm["p"],
                         alpha_t=prm["alpha_t"], alpha_r=prm["alpha_r"], dist0=prm["dist0"], runs=runs,
                         sim=sim, rel_se=se / sim, leading=lo, corrected=co,
                         err_leading=abs(lo - sim) / sim, err_corrected=abs(co - sim) / sim,
                         gain=abs(lo - sim) / abs(co - sim) if regime == "over" else float("nan")))
    keys = list(rows[0])
    with open(out / "accuracy_table.csv", "w", newline="") as f:
        w = csv.DictWriter(f, keys, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    def pc(x):
        return "n/a" if np.isnan(x) else f"{100 * x:.2f}%"
    lines = ["| panel | m n_v/p | alpha_t | alpha_r | dist0 | simulation | rel. s.e. | leading err | corrected err | leading/corrected |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gain = "n/a" if np.isnan(r["gain"]) else f"{r['gain']:.1f}"
        lines.append(f"| {r['panel']} | {r['ratio']:.2f} | {r['alpha_t']:g} | {r['alpha_r']:g} | {r['dist0']:g} | "
                     f"{r['sim']:.5f} | {pc(r['rel_se'])} | {pc(r['err_leading'])} | {pc(r['err_corrected'])} | {gain} |")
    (out / "accuracy_table.md").write_text("\n".join(lines) + "\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "ratio", r"$m n_v / p$"), (axes[1], "alpha_t", r"$\alpha_t$")):
        x = np.array([r[key] for r in rows])
        shift = (lambda v, k: v * 1.08**k) if key == "ratio" else (lambda v, k: v + 0.03 * k)
        floor = 1e-5  # errors below this are drawn at the floor (log scale)
        el = np.maximum([r["err_leading"] for r in rows], floor)
        ec = np.array([r["err_corrected"] for r in rows])
        se = np.array([r["rel_se"] for r in rows])
        ax.errorbar(shift(x, -1), el, yerr=[np.minimum(2 * se, el - floor / 2), 2 * se], fmt="o",
                    label="leading", color="C0", ms=4, capsize=2)
        ok = ~np.isnan(ec)
        ecc = np.maximum(ec[ok], floor)
        ax.errorbar(shift(x[ok], 1), ecc, yerr=[np.minimum(2 * se[ok], ecc - floor / 2), 2 * se[ok]], fmt="s",
                    label="corrected (over only)", color="C3", ms=4, capsize=2)
        ax.set_yscale("log")
        ax.set_ylim(floor / 2, 0.2)
        ax.set_xlabel(label)
        ax.set_ylabel("|theory - simulation| / simulation  (bars: 2 s.e.)")
        if key == "ratio":
            ax.set_xscale("log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy_figure.png", dpi=120, metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    main(ap.parse_args().out)
