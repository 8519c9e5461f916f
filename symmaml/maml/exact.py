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
from ..rmt.covariance import as_function_of
from ..rmt.haar import HAAR_ROTATION_SECOND_MOMENT, haar_rotation_second_moment
from ..spectral import LAMBDA
from .adaptation import adaptation_weight
from .leading import model_assumptions, order_text
from .meta_training import OTHER_TASK, TASK, identity_multiple, linearise, record_conditional, tasks
from .model import PAPER, SIGMA, Model, w0
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


def _exact_title(regime: str, model: Model) -> str:
    base = rf"Average test loss of multi-task pre-training ($\alpha_t = 0$), {regime}parameterised regime"
    if model.is_paper:
        return base
    return base.replace(r"multi-task pre-training ($\alpha_t = 0$)",
                        rf"multi-task pre-training ($\alpha_t = 0$; {model.describe(tex=True)})")


def derive_over_exact(model: Model = PAPER) -> tuple[sp.Expr, Derivation]:
    if model.anisotropic:
        raise ValueError("the exact alpha_t = 0 result does not carry over to anisotropic inputs in the "
                         "overparameterised regime: (G Sigma G^T)^-1 is not an inverse Wishart matrix")
    d = Derivation(
        _exact_title("over", model),
        order=order_text("exact (finite $p$, $m$, $n_v$)", model),
        regime="over",
        assumptions=(r"p > m n_v + 1", r"\alpha_t = 0",
                     SOLUTION_OVER),
    )
    z1, e1 = linearise(d, model)
    d.add(NO_INNER_LOOP, z1, z1.subs(alpha_t, 0).doit(), lhs=sp.Symbol("Z_1"))
    proj_mean = over_error_decomposition(d)
    c1 = record_conditional(d, lhs=sp.Symbol("C_1"), model=model).subs(alpha_t, 0).doit()
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
    return _finish(d, error_mean, model), d


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


def derive_under_exact(model: Model = PAPER) -> tuple[sp.Expr, Derivation]:
    d = Derivation(
        _exact_title("under", model),
        order=order_text("exact (finite $p$, $m$, $n_v$)", model),
        regime="under",
        assumptions=(r"p < m n_v - 1", r"\alpha_t = 0", SOLUTION_UNDER) + model_assumptions(model),
    )
    if model.anisotropic:
        return _finish(d, under_exact_error_sigma(d, model), model), d
    return _finish(d, under_exact_error(d, model), model), d


def under_exact_error(d: Derivation | None = None, model: Model = PAPER) -> sp.Expr:
    """``E|omega* - w0|^2`` at alpha_t = 0, underparameterised, exact (steps recorded in ``d``)."""
    d = d if d is not None else Derivation("scratch")
    z1, e1 = linearise(d, model)
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


COVARIANCE_FACTOR = Rule(
    "whitening the design",
    r"X = G\Sigma^{1/2}:\ S = \Sigma^{1/2}W\Sigma^{1/2},\ W_i = \Sigma^{1/2}V_i\Sigma^{1/2},\ "
    r"\operatorname{tr}(S^{-1}MS^{-1}W_i^2) = \operatorname{tr}(W^{-1}PW^{-1}V_iQV_i),\ P = M\Sigma^{-1},\ Q = \Sigma",
    conditions=(r"G \text{ i.i.d. } \mathcal{N}(0, 1),\ W = G^{\top}G = \textstyle\sum_i V_i,\ V_i = G_i^{\top}G_i",),
    reference=r"$M$ is a polynomial in $\Sigma$, so $\Sigma^{-1/2}M\Sigma^{-1/2} = M\Sigma^{-1}$",
)
SINGULAR_VECTORS_ROTATED = Rule(
    "singular value decomposition of a Gaussian design",
    r"G = UDO^{\top},\ U \in \mathbb{R}^{N\times p} \text{ Haar},\ O \text{ Haar on } O(p),\ U, D, O \text{ independent};\ "
    r"\operatorname{tr}(W^{-1}PW^{-1}V_iQV_i) = \textstyle\sum_{abce} d_a^{-1}d_b^{-1}d_cd_e\,\tilde P_{ab}\tilde Q_{ce}K_{bc}K_{ea}",
    conditions=(r"N > p", r"\tilde P = O^{\top}PO,\ \tilde Q = O^{\top}QO,\ K = U_i^{\top}U_i"),
    reference=r"$G \overset{d}{=} O_1GO_2$ for all orthogonal $O_1, O_2$ (Muirhead 1982, Thm 3.2.17 and its proof)",
)
HAAR_FOURTH_MOMENTS_ALL = Rule(
    "fourth moments of Haar orthogonal entries",
    r"\mathbb{E}u_{11}^4 = \tfrac{3}{N(N+2)},\ \mathbb{E}u_{11}^2u_{12}^2 = \tfrac{1}{N(N+2)},\ "
    r"\mathbb{E}u_{11}^2u_{22}^2 = \tfrac{N+1}{N(N-1)(N+2)},\ \mathbb{E}u_{11}u_{12}u_{21}u_{22} = -\tfrac{1}{N(N-1)(N+2)}",
    conditions=(r"U \text{ Haar on } O(N)",),
    reference="Weingarten calculus for O(N), degree 2 (Collins and Sniady, Commun. Math. Phys. 264, 2006)",
)


def under_exact_error_sigma(d: Derivation, model: Model) -> sp.Expr:
    """``E (omega* - w0)^T M (omega* - w0)`` at alpha_t = 0, underparameterised, anisotropic inputs, exact.

    The inverse-Wishart route carries over here: ``S = X^T X = Sigma^{1/2} W Sigma^{1/2}`` with ``W``
    Wishart, so ``E S^{-1} = Sigma^{-1}/(N - p - 1)`` (label noise), and the task-variability term is
    averaged through the singular value decomposition of the whitened design, with the right singular
    vectors (Haar on O(p)) now averaged too (second moments of a Haar rotation of two matrices)."""
    first, second = tasks(model)
    z1, e1 = linearise(d, model)
    xv = z1.subs(alpha_t, 0).doit()
    d.add(NO_INNER_LOOP, z1, xv, lhs=sp.Symbol("Z_1"))
    under_error_decomposition(d)
    weight = adaptation_weight(model)
    d.add(SUBSTITUTE, sp.Symbol("M"), weight, note="the weight of the test loss (exact meta-test average, below)")
    # conditional average over offsets and noise, the designs fixed: sigma^2 S + (nu^2/p) sum_i W_i^2
    Mq = sp.MatrixSymbol("M", p, p)
    e1_0 = e1.subs(alpha_t, 0).doit()
    xv2 = second.X_v
    e2_0 = second.query_residual(w0).subs(alpha_t, 0).doit()
    own = sp.expand(conditional_expectation(sp.Trace(e1_0.T * xv * Mq * xv.T * e1_0), given=[first.X_v]))
    cross = conditional_expectation(sp.Trace(e1_0.T * xv * Mq * xv2.T * e2_0), given=[first.X_v, xv2])
    if cross != 0:
        raise AssertionError(f"cross-task term does not vanish: {cross}")
    Wv = xv.T * xv
    if sp.expand(own - sigma**2 * sp.Trace(Mq * Wv) - (nu**2 / p) * sp.Trace(Mq * Wv * Wv)) != 0:
        raise AssertionError(f"unexpected conditional average: {own}")
    d.add(WICK, expect(sp.Symbol(r"u^{\top}S^{-1}MS^{-1}u \mid X")),
          sp.Symbol(r"\sigma^2\operatorname{tr}(S^{-1}M) + \frac{\nu^2}{p}\sum_i \operatorname{tr}(S^{-1}MS^{-1}W_i^2)"),
          note=r"$W_i = X_v^{(i)\top}X_v^{(i)}$, $\sum_i W_i = S$; tasks' cross terms vanish (checked by the engine)")
    # label noise: the inverse-Wishart mean carries over (X^T X = Sigma^{1/2} W Sigma^{1/2})
    X = gaussian_matrix("X", N, p, covariance=SIGMA)
    noise = sigma**2 * factor(expectation(sp.Trace(sp.Inverse(X.T * X) * weight)))
    d.add(INVERSE_WISHART_MEAN, expect(sp.Symbol(r"\sigma^2\operatorname{tr}(S^{-1}M)")), noise,
          note=r"$\mathbb{E}S^{-1} = \Sigma^{-1}/(m n_v - p - 1)$, $S = X^{\top}X$ with rows $\mathcal{N}(0, \Sigma)$")
    # task variability
    d.add(COVARIANCE_FACTOR, sp.Symbol(r"\operatorname{tr}(S^{-1}MS^{-1}W_i^2)"),
          sp.Symbol(r"\operatorname{tr}(W^{-1}PW^{-1}V_iQV_i)"))
    w_ = as_function_of(weight, SIGMA)
    tr_p = p * SIGMA.mean(sp.expand(w_ / LAMBDA))
    tr_q = p * SIGMA.moment(1)
    tr_pq = p * SIGMA.mean(sp.expand(w_))
    d.add(SINGULAR_VECTORS_ROTATED, sp.Symbol(r"\operatorname{tr}(W^{-1}PW^{-1}V_iQV_i)"),
          sp.Symbol(r"\sum_{abce} d_a^{-1}d_b^{-1}d_cd_e\,\tilde P_{ab}\tilde Q_{ce}K_{bc}K_{ea}"))
    al, be = haar_rotation_second_moment(p, tr_p * tr_q, tr_pq)
    d.add(HAAR_ROTATION_SECOND_MOMENT, sp.Tuple(sp.Symbol(r"\alpha"), sp.Symbol(r"\beta")), sp.Tuple(al, be),
          note=(r"$\operatorname{tr}P = p\langle M(\lambda)/\lambda\rangle_\Sigma$, $\operatorname{tr}Q = p\,s_1$, "
                r"$\operatorname{tr}PQ = \operatorname{tr}M$; the $\alpha$ term pairs $a = b$, $c = e$; the $\beta$ "
                r"terms $a = c, b = e$ and $a = e, b = c$"))
    n_ = N
    e4, e22 = 3 / (n_ * (n_ + 2)), 1 / (n_ * (n_ + 2))
    ecross, e1122 = -1 / (n_ * (n_ - 1) * (n_ + 2)), (n_ + 1) / (n_ * (n_ - 1) * (n_ + 2))
    same = factor(n_v * e4 + n_v * (n_v - 1) * e22)          # E K_aa^2
    two = factor(n_v * e22 + n_v * (n_v - 1) * ecross)        # E K_ab^2, a != b
    diag_pair = factor(n_v * e22 + n_v * (n_v - 1) * e1122)   # E K_aa K_bb, a != b
    d.add(HAAR_FOURTH_MOMENTS_ALL, sp.Tuple(*sp.symbols(r"\mathbb{E}K_{aa}^2 \mathbb{E}K_{ab}^2 \mathbb{E}K_{aa}K_{bb}")),
          sp.Tuple(same, two, diag_pair), note=r"task $i$ owns $n_v$ rows of $U$; $a \ne b$")
    tr_w_tr_inv = factor(p * inverse_wishart_moment(N, p) * (N * p - 2))
    d.add(SCALE_INDEPENDENCE, expect(sp.Symbol(r"\operatorname{tr}W\,\operatorname{tr}W^{-1}")), tr_w_tr_inv)
    alpha_part = p * same + (tr_w_tr_inv - p) * two
    beta_part = 2 * p * same + p * (p - 1) * (two + diag_pair)
    block = al * alpha_part + be * beta_part
    d.add(SUBSTITUTE, expect(sp.Symbol(r"\operatorname{tr}(W^{-1}PW^{-1}V_iQV_i)")), block,
          note=(r"$\alpha\big[p\,\mathbb{E}K_{aa}^2 + (\mathbb{E}\operatorname{tr}W\operatorname{tr}W^{-1} - p)\mathbb{E}K_{ab}^2\big] + "
                r"\beta\,p\big[2\mathbb{E}K_{aa}^2 + (p-1)(\mathbb{E}K_{ab}^2 + \mathbb{E}K_{aa}K_{bb})\big]$"))
    variability = nu**2 / p * m * block
    error_mean = noise + variability
    d.add(SUBSTITUTE, sp.Symbol(r"\mathbb{E}\lVert\omega^\star - w_0\rVert_M^2"), error_mean)
    return error_mean
