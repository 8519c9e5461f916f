"""Figure 5, width sweep: how far the finite network is from its NTK limit, width by width.

At the settings of Figure 5 (``symmaml.nonlinear.paper``) and three of its rates (the paper's -0.0175
and -0.0075 mapped, and alpha_t = 0), the network is trained at widths 16 ... 1024 (a factor 64), 20
runs per width, with the same task draws at every width.  Each run also gives the NTK-limit loss of its
own draw (``train_maml(..., paired_ntk=True)``: the kernel form with the network's own initial function,
data and test points), so the gap network - NTK limit is measured run by run, with an error far
smaller than the spread of the network's loss.

Writes ``figure_5_width.png``, ``.pdf``, ``figure_5_width.csv`` (width, alpha_t, network_mean,
network_stderr, ntk_mc_mean, ntk_mc_stderr) and ``figure_5_width_gap.csv`` (the paired gap, absolute
and relative to the NTK limit, with standard errors, and the convergence count).
"""
import argparse
import time
from pathlib import Path

import numpy as np

from symmaml import sweep
from symmaml.export import figures  # deterministic PNG and PDF (no dates or versions)
from symmaml.export.figures import parameters_text, write_table
from symmaml.nonlinear import ntk_simulate, train_many
from symmaml.nonlinear.network import alpha_scale
from symmaml.nonlinear.paper import FIGURE_5, FIGURE_5_WIDTH, WIDTH_SWEEP

OUT = Path(__file__).resolve().parent / "out"
RUNS = 20
NTK_RUNS = 400
SEED = 5           # the seeds of figure_5.py: the same draws and the same NTK-limit values at these rates
NTK_SEED = 9
TEST_POINTS = 32
SCALE = alpha_scale(FIGURE_5_WIDTH, FIGURE_5["d"])
ALPHAS = [round(-0.0175 * SCALE, 6), round(-0.0075 * SCALE, 6), 0.0]


def main(out: Path = OUT, workers: int | None = None, scheduler: str | None = None) -> None:
    start = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    ntk = [ntk_simulate(**FIGURE_5, alpha_t=a, runs=NTK_RUNS, seed=NTK_SEED, workers=2) for a in ALPHAS]
    ntk_mean = np.array([r["mean"] for r in ntk])
    ntk_se = np.array([r["stderr"] for r in ntk])
    rows, gaps = [], []
    t = time.monotonic()
    nets = train_many([dict(width=k, **FIGURE_5, alpha_t=ALPHAS) for k in WIDTH_SWEEP], runs=RUNS, seed=SEED,
                      test_points=TEST_POINTS, paired_ntk=True, workers=workers, scheduler=scheduler)
    t_net = time.monotonic() - t
    for k, net in zip(WIDTH_SWEEP, nets):
        nc = (~net["converged"]).sum(axis=0)
        for i, a in enumerate(ALPHAS):
            rows.append((k, a, net["mean"][i], net["stderr"][i], ntk_mean[i], ntk_se[i]))
            # relative gap: paired gap over the NTK limit; its error adds the NTK Monte Carlo's in quadrature
            rel = net["gap"][i] / ntk_mean[i]
            rel_se = np.hypot(net["gap_stderr"][i] / ntk_mean[i], rel * ntk_se[i] / ntk_mean[i])
            gaps.append((k, a, net["gap"][i], net["gap_stderr"][i], rel, rel_se, int(nc[i])))
    write_table(out / "figure_5_width.csv",
                ["width", "alpha_t", "network_mean", "network_stderr", "ntk_mc_mean", "ntk_mc_stderr"], rows)
    write_table(out / "figure_5_width_gap.csv",
                ["width", "alpha_t", "gap", "gap_stderr", "relative_gap", "relative_gap_stderr", "not_converged"],
                gaps)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    G = np.array(gaps, dtype=float)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(8.0, 3.8), dpi=120)
    for i, a in enumerate(ALPHAS):
        sel = G[:, 1] == a
        ax.errorbar(G[sel, 0] * (1 + 0.04 * (i - 1)), 100 * G[sel, 4], yerr=200 * G[sel, 5], fmt="o-", ms=4,
                    capsize=2, lw=1, color=f"C{i}", label=rf"$\alpha_t$ = {a:+.3g}")
        R = np.array([r for r in rows if r[1] == a], dtype=float)
        bx.errorbar(R[:, 0] * (1 + 0.04 * (i - 1)), R[:, 2], yerr=2 * R[:, 3], fmt="o", ms=4, capsize=2, lw=1,
                    color=f"C{i}", label=rf"network, $\alpha_t$ = {a:+.3g}")
        bx.axhspan(ntk_mean[i] - 2 * ntk_se[i], ntk_mean[i] + 2 * ntk_se[i], color=f"C{i}", alpha=0.25, lw=0)
        bx.axhline(ntk_mean[i], color=f"C{i}", lw=1, ls="--")
    ax.axhline(0.0, color="0.5", lw=0.8)
    for axis in (ax, bx):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("width k")
    ax.set_ylabel("network - NTK limit, % of the limit (paired)")
    bx.set_ylabel("average test loss (dashed: NTK limit)")
    ax.legend(fontsize=7, frameon=False)
    bx.legend(fontsize=6, frameon=False)
    p = FIGURE_5
    fig.suptitle("Figure 5, width sweep (NTK param.): " + parameters_text(p) + "\n"
                 f"{RUNS} runs/width (same task draws at every width), 1000 test tasks $\\times$ {TEST_POINTS} points "
                 f"each; NTK limit: ntk_simulate, {NTK_RUNS} runs; bars and bands: $\\pm 2$ s.e.", fontsize=7)
    fig.tight_layout()
    figures.save(fig, out / "figure_5_width.png")
    plt.close(fig)

    for k, a, gp, gs, rel, rel_se, nc in gaps:
        print(f"width {k:5d} alpha_t {a:+8.4f}: network - NTK limit = {gp:+.4f} +- {gs:.4f} "
              f"({100 * rel:+.2f}% +- {100 * rel_se:.2f}%), {nc} not converged")
    for i, a in enumerate(ALPHAS):
        G_a = np.array([g for g in gaps if g[1] == a], dtype=float)
        slope = np.polyfit(np.log(G_a[1:, 0]), np.log(np.abs(G_a[1:, 2])), 1)[0]
        print(f"figure 5 width: alpha_t {a:+.4f}: |gap| ~ k^{slope:.2f} (fit over widths {WIDTH_SWEEP[1]}-{WIDTH_SWEEP[-1]})")
    widest = [g for g in gaps if g[0] == WIDTH_SWEEP[-1]]
    ok = all(abs(g[4]) <= 0.02 or abs(g[4]) <= 3 * g[5] for g in widest)
    print(f"figure 5 width: at width {WIDTH_SWEEP[-1]} every rate within 2% or 3 s.e. of the NTK limit: {ok}")
    print(f"figure 5 width: {time.monotonic() - start:.0f} s (networks {t_net:.0f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    sweep.add_arguments(parser)
    args = parser.parse_args()
    main(args.out, args.workers, args.scheduler)
