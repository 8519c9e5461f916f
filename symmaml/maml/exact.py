"""Exact (finite p, m, n_v) average test loss where the engine reaches it.

Overparameterised, alpha_t = 0: the meta-training design is then a plain Gaussian matrix
``X`` (m n_v x p) and the Gram matrix ``G = X X^T`` is Wishart, so its fluctuations can be
averaged exactly: the label-noise term by the inverse-Wishart mean, the task-variability term
by a Schur complement per task block (the block of ``G^{-1}`` belonging to task i is the inverse
of task i's design projected off the other tasks' row space), which splits task i's design into
two independent Gaussian parts.
"""
from __future__ import annotations

import sympy as sp

from ..derivation import Derivation, Rule
from ..rmt import expect, expectation, gaussian_matrix
from ..rmt.wishart import INVERSE_WISHART_MEAN, inverse_wishart_moment
from ..symbols import alpha_t, m, n_v, nu, p
from .leading import N, _finish, over_error_decomposition
from .meta_training import identity_multiple, linearise, record_conditional
from .rules import SUBSTITUTE, WICK

__all__ = ["derive_over_exact", "SCHUR_COMPLEMENT", "ROTATION_SPLIT"]

NO_INNER_LOOP = Rule(
    "no inner loop", r"\alpha_t = 0 \Rightarrow A_i = I,\ Z_i = X_v^{(i)}",
    reference=r"multi-task pre-training: the design is Gaussian, $G = ZZ^{\top}$ is Wishart",
)
SCHUR_COMPLEMENT = Rule(
    "Schur complement",
    r"(G^{-1})_{ii} = \big(X_i (I - P_{-i}) X_i^{\top}\big)^{-1},\quad P_{-i} = X_{-i}^{\top}(X_{-i}X_{-i}^{\top})^{-1}X_{-i}",
    conditions=(r"G = XX^{\top} \text{ invertible}",),
    reference=r"block inversion: $(G^{-1})_{ii} = (G_{ii} - G_{i,-i}G_{-i,-i}^{-1}G_{-i,i})^{-1}$",
)
ROTATION_SPLIT = Rule(
    "rotation to the other tasks' row space",
    r"X_i \overset{d}{=} [\,U\ \ V\,],\ U \in \mathbb{R}^{n_v\times(N-n_v)},\ V \in \mathbb{R}^{n_v\times(p-N+n_v)}"
    r"\text{ independent Gaussian};\ X_iP_{-i}X_i^{\top} = UU^{\top},\ X_i(I-P_{-i})X_i^{\top} = VV^{\top}",
    conditions=(r"X_i \text{ independent of } X_{-i}", r"\operatorname{rank} P_{-i} = N - n_v"),
    reference=r"rotational invariance of the law of $X_i$, conditionally on $X_{-i}$",
)


def derive_over_exact() -> tuple[sp.Expr, Derivation]:
    d = Derivation(
        "Average test loss of multi-task pre-training (alpha_t = 0), overparameterised regime",
        order="exact (finite p, m, n_v)",
        regime="over",
        assumptions=(r"p > m n_v + 1", r"\alpha_t = 0",
                     r"\omega^\star = \text{the meta-loss minimiser closest to } \omega_0"),
    )
    z1, e1 = linearise(d)
    d.add(NO_INNER_LOOP, z1, z1.subs(alpha_t, 0).doit(), lhs=sp.Symbol("Z_1"))
    proj_mean = over_error_decomposition(d)
    c1 = record_conditional(d, lhs=sp.Symbol("C_1")).subs(alpha_t, 0).doit()
    # C_1 = s I + t X_v X_v^T at alpha_t = 0: read off the two coefficients
    xv = z1.subs(alpha_t, 0).doit()
    s_coef = sp.factor(c1.subs(xv, sp.ZeroMatrix(*xv.shape)).doit().args[0]) if isinstance(
        c1.subs(xv, sp.ZeroMatrix(*xv.shape)).doit(), sp.MatMul) else None
    gram_coef = nu**2 / p
    if s_coef is None or sp.simplify(c1 - (s_coef * sp.Identity(n_v) + gram_coef * xv * xv.T)) not in (0, sp.ZeroMatrix(n_v, n_v)):
        raise AssertionError(f"unexpected C_1 at alpha_t = 0: {c1}")
    d.add(NO_INNER_LOOP, sp.Symbol("C_1"), c1, note=r"$C_1 = \sigma^2 I + \frac{\nu^2}{p}G_{11}$")
    # label-noise term: inverse-Wishart mean of G (N x N, p degrees of freedom)
    inv_g = inverse_wishart_moment(p, N)
    noise = s_coef * N * inv_g
    d.add(INVERSE_WISHART_MEAN, expect(sp.Symbol(r"\sigma^2\operatorname{tr}G^{-1}")), noise,
          note=r"$G \sim \mathcal{W}_{m n_v}(p, I)$")
    # task-variability term: Schur complement and rotation per task block
    U = gaussian_matrix("U", n_v, N - n_v)
    d.add(SCHUR_COMPLEMENT, sp.Symbol(r"\operatorname{tr}\big((G^{-1})_{11}G_{11}\big)"),
          sp.Symbol(r"\operatorname{tr}\big((VV^{\top})^{-1}(UU^{\top} + VV^{\top})\big)"))
    uu = identity_multiple(expectation(U * U.T), n_v)
    d.add(WICK, expect(U * U.T), uu * sp.Identity(n_v), note="U is independent of V")
    inv_v = inverse_wishart_moment(p - N + n_v, n_v)
    d.add(INVERSE_WISHART_MEAN, expect(sp.Symbol(r"(VV^{\top})^{-1}")), inv_v * sp.Identity(n_v),
          note=r"$VV^{\top} \sim \mathcal{W}_{n_v}(p - m n_v + n_v, I)$")
    block = sp.factor(n_v + n_v * uu * inv_v)
    d.add(ROTATION_SPLIT, expect(sp.Symbol(r"\operatorname{tr}\big((VV^{\top})^{-1}(UU^{\top} + VV^{\top})\big)")),
          block, note=r"$\mathbb{E}\operatorname{tr}\big((VV^{\top})^{-1}UU^{\top}\big) = \operatorname{tr}\big(\mathbb{E}(VV^{\top})^{-1}\,\mathbb{E}\,UU^{\top}\big)$")
    variability = sp.factor(gram_coef * m * block)
    d.add(SUBSTITUTE, expect(sp.Symbol(r"\frac{\nu^2}{p}\sum_i\operatorname{tr}\big((G^{-1})_{ii}G_{ii}\big)")),
          variability, note="m exchangeable task blocks")
    error_mean = proj_mean + noise + variability
    d.add(SUBSTITUTE, sp.Symbol(r"\mathbb{E}\lVert\omega^\star - w_0\rVert^2"), error_mean)
    return _finish(d, error_mean), d
