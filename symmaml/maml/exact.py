"""Exact (finite p, m, n_v) average test loss where the engine reaches it: alpha_t = 0.

Overparameterised, alpha_t = 0: the meta-training design is then a plain Gaussian matrix
``X`` (m n_v x p) and the Gram matrix ``G = X X^T`` is Wishart, so its fluctuations can be
averaged exactly: the label-noise term by the inverse-Wishart mean, the task-variability term
by a Schur complement per task block (the block of ``G^{-1}`` belonging to task i is the inverse
of task i's design projected off the other tasks' row space), which splits task i's design into
two independent Gaussian parts.

Underparameterised, alpha_t = 0: ``S = X^T X`` is Wishart; the label-noise term is its
inverse-Wishart mean, and the task-variability term ``sum_i tr(S^{-2} W_i^2)`` is averaged through
the singular value decomposition ``X = U D V^T`` (U Haar, independent of D): degree-4 moments of
Haar orthogonal entries, and ``E[tr S tr S^{-1}]`` from the independence of ``tr S`` and ``S/tr S``.
"""
from __future__ import annotations

import sympy as sp

from ..algebra import factor
from ..derivation import Derivation, Rule
from ..rmt import expect, expectation, gaussian_matrix
from ..rmt.wishart import INVERSE_WISHART_MEAN, inverse_wishart_moment
from ..symbols import alpha_t, m, n_v, nu, p, sigma
from .leading import N, _finish, over_error_decomposition, under_error_decomposition
from ..rmt.conditional import conditional_expectation
from .meta_training import OTHER_TASK, TASK, identity_multiple, linearise, record_conditional
from .model import w0
from .rules import SOLUTION_OVER, SOLUTION_UNDER, SUBSTITUTE, WICK

__all__ = ["derive_over_exact", "derive_under_exact", "under_exact_error", "SCHUR_COMPLEMENT", "ROTATION_SPLIT",
           "SINGULAR_VECTORS", "HAAR_FOURTH_MOMENTS", "SCALE_INDEPENDENCE"]

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
        r"Average test loss of multi-task pre-training ($\alpha_t = 0$), overparameterised regime",
        order="exact (finite $p$, $m$, $n_v$)",
        regime="over",
        assumptions=(r"p > m n_v + 1", r"\alpha_t = 0",
                     SOLUTION_OVER),
    )
    z1, e1 = linearise(d)
    d.add(NO_INNER_LOOP, z1, z1.subs(alpha_t, 0).doit(), lhs=sp.Symbol("Z_1"))
    proj_mean = over_error_decomposition(d)
    c1 = record_conditional(d, lhs=sp.Symbol("C_1")).subs(alpha_t, 0).doit()
    # C_1 = s I + t X_v X_v^T at alpha_t = 0: read off the two coefficients
    xv = z1.subs(alpha_t, 0).doit()
    s_coef = factor(c1.subs(xv, sp.ZeroMatrix(*xv.shape)).doit().args[0]) if isinstance(
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
    d.add(WICK, expect(U * U.T), uu * sp.Identity(n_v), note="$U$ is independent of $V$")
    inv_v = inverse_wishart_moment(p - N + n_v, n_v)
    d.add(INVERSE_WISHART_MEAN, expect(sp.Symbol(r"(VV^{\top})^{-1}")), inv_v * sp.Identity(n_v),
          note=r"$VV^{\top} \sim \mathcal{W}_{n_v}(p - m n_v + n_v, I)$")
    block = factor(n_v + n_v * uu * inv_v)
    d.add(ROTATION_SPLIT, expect(sp.Symbol(r"\operatorname{tr}\big((VV^{\top})^{-1}(UU^{\top} + VV^{\top})\big)")),
          block, note=r"$\mathbb{E}\operatorname{tr}\big((VV^{\top})^{-1}UU^{\top}\big) = \operatorname{tr}\big(\mathbb{E}(VV^{\top})^{-1}\,\mathbb{E}\,UU^{\top}\big)$")
    variability = factor(gram_coef * m * block)
    d.add(SUBSTITUTE, expect(sp.Symbol(r"\frac{\nu^2}{p}\sum_i\operatorname{tr}\big((G^{-1})_{ii}G_{ii}\big)")),
          variability, note="$m$ exchangeable task blocks")
    error_mean = proj_mean + noise + variability
    d.add(SUBSTITUTE, sp.Symbol(r"\mathbb{E}\lVert\omega^\star - w_0\rVert^2"), error_mean)
    return _finish(d, error_mean), d


SINGULAR_VECTORS = Rule(
    "singular value decomposition of a Gaussian design",
    r"X = UDV^{\top},\ U \in \mathbb{R}^{N\times p} \text{ Haar (first } p \text{ columns of } O \in O(N)),"
    r"\ U \text{ independent of } D;\ S = VD^2V^{\top},\ W_i = VD\,U_i^{\top}U_i\,DV^{\top}",
    conditions=(r"X \in \mathbb{R}^{N\times p} \text{ i.i.d. Gaussian}", r"N > p"),
    reference=r"$X \overset{d}{=} OX$ for every $O \in O(N)$ (Muirhead 1982, Thm 3.2.17 and its proof)",
)
HAAR_FOURTH_MOMENTS = Rule(
    "fourth moments of Haar orthogonal entries",
    r"\mathbb{E}u_{11}^4 = \tfrac{3}{N(N+2)},\ \mathbb{E}u_{11}^2u_{12}^2 = \mathbb{E}u_{11}^2u_{21}^2 = \tfrac{1}{N(N+2)},"
    r"\ \mathbb{E}u_{11}u_{12}u_{21}u_{22} = -\tfrac{1}{N(N-1)(N+2)}",
    conditions=(r"U \text{ Haar on } O(N)",),
    reference="Weingarten calculus for $O(N)$, degree 2 (Collins and Sniady, Commun. Math. Phys. 264, 2006)",
)
SCALE_INDEPENDENCE = Rule(
    "independence of scale and shape",
    r"\operatorname{tr}S \perp S/\operatorname{tr}S \Rightarrow \mathbb{E}[\operatorname{tr}S\,\operatorname{tr}S^{-1}]"
    r" = \frac{\mathbb{E}\operatorname{tr}S^{-1}}{\mathbb{E}[1/\operatorname{tr}S]},\ \operatorname{tr}S \sim \chi^2_{Np}",
    conditions=(r"S = X^{\top}X,\ X \text{ i.i.d. Gaussian}",),
    reference=r"$X/\lVert X\rVert_F$ is uniform on the sphere and independent of $\lVert X\rVert_F$; $\mathbb{E}[1/\chi^2_k] = 1/(k-2)$",
)


def derive_under_exact() -> tuple[sp.Expr, Derivation]:
    d = Derivation(
        r"Average test loss of multi-task pre-training ($\alpha_t = 0$), underparameterised regime",
        order="exact (finite $p$, $m$, $n_v$)",
        regime="under",
        assumptions=(r"p < m n_v - 1", r"\alpha_t = 0", SOLUTION_UNDER),
    )
    return _finish(d, under_exact_error(d)), d


def under_exact_error(d: Derivation | None = None) -> sp.Expr:
    """``E|omega* - w0|^2`` at alpha_t = 0, underparameterised, exact (steps recorded in ``d``)."""
    d = d if d is not None else Derivation("scratch")
    z1, e1 = linearise(d)
    xv = z1.subs(alpha_t, 0).doit()
    d.add(NO_INNER_LOOP, z1, xv, lhs=sp.Symbol("Z_1"))
    under_error_decomposition(d)
    # average over task offsets and noise with the designs fixed; M stands for S^{-2}
    M = sp.MatrixSymbol(r"S^{-2}", p, p)
    e1_0 = e1.subs(alpha_t, 0).doit()
    own = sp.expand(conditional_expectation(sp.Trace(e1_0.T * xv * M * xv.T * e1_0), given=[TASK.X_v]))
    xv2 = OTHER_TASK.X_v
    e2_0 = OTHER_TASK.query_residual(w0).subs(alpha_t, 0).doit()
    cross = conditional_expectation(sp.Trace(e1_0.T * xv * M * xv2.T * e2_0), given=[TASK.X_v, xv2])
    d.add(WICK, expect(sp.Symbol(r"e_1^{\top}Z_1S^{-2}Z_1^{\top}e_1 \mid X")), own,
          note=r"with $W_1 = X_v^{\top}X_v$; the same average for two different tasks is " + f"${sp.latex(cross)}$")
    if cross != 0:
        raise AssertionError(f"cross-task term does not vanish: {cross}")
    W = xv.T * xv
    expected_own = sigma**2 * sp.Trace(M * W) + (nu**2 / p) * sp.Trace(M * W * W)
    if sp.simplify(own - expected_own) != 0:
        raise AssertionError(f"unexpected conditional average: {own}")
    d.add(SUBSTITUTE, sp.Symbol(r"\mathbb{E}[\lVert S^{-1}u\rVert^2 \mid X]"),
          sp.Symbol(r"\sigma^2\operatorname{tr}S^{-1} + \frac{\nu^2}{p}\sum_i \operatorname{tr}(S^{-2}W_i^2)"),
          note=r"$\sum_i W_i = S$")
    noise = sigma**2 * p * inverse_wishart_moment(N, p)
    d.add(INVERSE_WISHART_MEAN, expect(sp.Symbol(r"\sigma^2\operatorname{tr}S^{-1}")), noise,
          note=r"$S \sim \mathcal{W}_p(m n_v, I)$")
    d.add(SINGULAR_VECTORS, sp.Symbol(r"\operatorname{tr}(S^{-2}W_i^2)"),
          sp.Symbol(r"\sum_{k,l \in i}\sum_{a,b} d_a^2 d_b^{-2}\, U_{ka}U_{la}U_{lb}U_{kb}"),
          note=r"task $i$ owns the rows $k \in i$ of $U$")
    n_ = N
    e4, e22, ecross = 3 / (n_ * (n_ + 2)), 1 / (n_ * (n_ + 2)), -1 / (n_ * (n_ - 1) * (n_ + 2))
    same_column = factor(n_v * e4 + n_v * (n_v - 1) * e22)  # a = b: k = l, k != l
    two_columns = factor(n_v * e22 + n_v * (n_v - 1) * ecross)  # a != b
    d.add(HAAR_FOURTH_MOMENTS, expect(sp.Symbol(r"\sum_{k,l\in i} U_{ka}^2U_{la}^2")), same_column)
    d.add(HAAR_FOURTH_MOMENTS, expect(sp.Symbol(r"\sum_{k,l\in i} U_{ka}U_{la}U_{lb}U_{kb}\ (a \ne b)")), two_columns)
    tr_s_tr_inv = factor(p * inverse_wishart_moment(N, p) * (N * p - 2))
    d.add(SCALE_INDEPENDENCE, expect(sp.Symbol(r"\operatorname{tr}S\,\operatorname{tr}S^{-1}")), tr_s_tr_inv)
    block = factor(p * same_column + (tr_s_tr_inv - p) * two_columns)
    d.add(SUBSTITUTE, expect(sp.Symbol(r"\operatorname{tr}(S^{-2}W_i^2)")), block,
          note=r"$\sum_a d_a^2d_a^{-2} = p$, $\sum_{a\ne b} d_a^2d_b^{-2} = \operatorname{tr}S\operatorname{tr}S^{-1} - p$")
    variability = factor(nu**2 / p * m * block)
    error_mean = noise + variability
    d.add(SUBSTITUTE, sp.Symbol(r"\mathbb{E}\lVert\omega^\star - w_0\rVert^2"), error_mean)
    return error_mean
