"""Settings of the nonlinear-regression results (the paper's Figure 5 does not state its own).

``FIGURE_5``: the setting of the regenerated Figure 5 in the NTK parameterisation: few tasks with few
query points and a task vector of dimension well above the number of query points (``m n_v / d = 0.2``),
the analogue of the paper's Figure 2, where the kernel-limit theory is accurate and alpha_t matters.
"""
import itertools

__all__ = ["FIGURE_5", "ACCURACY_SETTINGS", "SIGN_GRID"]

FIGURE_5 = dict(d=30, m=3, n_t=30, n_v=2, n_r=20, alpha_r=0.5, sigma=0.3, nu=0.5, beta=0.0)

#: name -> (parameters, alpha_t values) of the accuracy table
ACCURACY_SETTINGS = {
    "Figure 5": (FIGURE_5, (-1.5, -1.0, -0.5, 0.0, 0.5)),
    "B": (dict(d=40, m=4, n_t=20, n_v=2, n_r=10, alpha_r=0.3, sigma=0.5, nu=0.7, beta=0.5), (-1.0, 0.0, 0.5)),
    "C": (dict(d=20, m=5, n_t=10, n_v=2, n_r=10, alpha_r=0.5, sigma=0.3, nu=0.5, beta=0.5), (-1.0, 0.0, 0.5)),
}

#: 32 settings for the sign of the optimal alpha_t (m n_v / d from 0.1 to 0.4)
SIGN_GRID = tuple(
    dict(d=d, m=m, n_t=n_t, n_v=2, n_r=10, alpha_r=0.5, sigma=0.3, nu=nu, beta=beta)
    for d, m, n_t, nu, beta in itertools.product((20, 40), (2, 4), (10, 30), (0.5, 1.0), (0.0, 0.5))
)
