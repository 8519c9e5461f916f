"""The parameters of the paper's figures (Bernacchia, ICLR 2021; ``shared/spec/model.md``)."""
from __future__ import annotations

__all__ = ["FIGURE_2", "FIGURE_3", "SCANS"]

#: Figure 2, overparameterised (p > m n_v): omega0 = w0 = 0
FIGURE_2 = dict(p=60, m=3, n_t=30, n_v=2, n_r=20, sigma=1.0, nu=0.5, dist0=0.0)
#: Figure 3, underparameterised (p < m n_v).  The caption's sigma = nu = 0.2 does not match the
#: plotted losses (near 1); those are sigma = nu = 1 (the loss scales as sigma^2 at fixed nu/sigma).
FIGURE_3 = dict(p=30, m=40, n_t=5, n_v=25, n_r=10, sigma=1.0, nu=1.0, dist0=0.0)

#: the scans of panels (a) and (b): the scanned rate, its range, and the fixed other rate
SCANS = {
    "2a": (FIGURE_2, "alpha_r", (-0.1, 0.5), {"alpha_t": 0.2}),
    "2b": (FIGURE_2, "alpha_t", (-2.0, 2.0), {"alpha_r": 0.2}),
    "3a": (FIGURE_3, "alpha_r", (-0.1, 0.5), {"alpha_t": 0.2}),
    "3b": (FIGURE_3, "alpha_t", (-0.5, 0.5), {"alpha_r": 0.2}),
}
