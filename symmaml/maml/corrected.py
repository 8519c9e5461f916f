"""Finite-size corrected average test loss (overparameterised regime), any alpha_t.

Derivation (see :func:`derive_over_corrected`):

1. Exact reduction (leave one task out).  Task i's block of ``G^{-1}`` is
   ``(Z_i (I - P_{-i}) Z_i^T)^{-1}`` (Schur complement), and ``P_{-i}``, the projection on the
   other tasks' rows, is independent of task i and Haar-distributed of rank ``N - n_v`` (the other
   tasks' design is rotation invariant).  With ``Q = I - P_{-i}`` (Haar, rank ``r = p - N + n_v``),
   ``B = A Q A`` and ``H = X_v B X_v^T`` the noise part of the meta-training error is exactly
   ``m E[sigma^2 tr H^{-1} + tr(H^{-1} X_v M X_v^T)]``: a single-task problem, so each task's
   self-normalisation is kept.
2. Approximation (matched Wishart): ``H`` is replaced by a Wishart matrix with the same first two
   moments (averaged over X_v, A and Q); ``E tr H^{-1}`` is then the [0/1] Pade resummation of the
   second-order expansion, exact when B is a projection (alpha_t = 0).
3. Approximation (linear projection): ``X_v M X_v^T = beta H + R`` with ``beta`` chosen so that the
   remainder R is uncorrelated with H at second order; R is averaged independently of H.
4. Everything left is a moment of the inner-step matrix A (Wishart moments, exact, by the engine)
   and of the Haar projection Q (two Weingarten coefficients, stated).

At alpha_t = 0 the result equals the exact result (:mod:`.exact`); this is tested symbolically.
The result is a rational function of the parameters (no quadrature): ``lambdify`` evaluates it.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ..algebra import factor
from ..derivation import Derivation, Rule
from ..rmt import expect
from ..rmt.wishart import wishart_trace_moment
from ..symbols import alpha_t, m, n_t, n_v, nu, p, sigma
from .leading import N, _finish, over_error_decomposition
from .meta_training import linearise, record_conditional
from .rules import ALGEBRA, SOLUTION_OVER, SUBSTITUTE, WICK

__all__ = ["derive_over_corrected", "over_corrected_error", "LEAVE_ONE_TASK_OUT",
           "HAAR_PROJECTION_MOMENTS", "MATCHED_WISHART", "LINEAR_PROJECTION"]

LEAVE_ONE_TASK_OUT = Rule(
    "leave one task out",
    r"(G^{-1})_{ii} = \big(X_v^{(i)}A_i Q A_i X_v^{(i)\top}\big)^{-1},\quad Q = I - P_{-i}"
    r"\ \text{Haar projection of rank } r = p - m n_v + n_v \text{ independent of task } i",
    conditions=(r"p > m n_v", r"\text{tasks independent}", r"Z_{-i} \overset{d}{=} Z_{-i}O\ \forall O\in O(p)"),
    reference="Schur complement of G = ZZ^T; rotational invariance of the other tasks' design (exact)",
)
HAAR_PROJECTION_MOMENTS = Rule(
    "moments of a Haar projection",
    r"\mathbb{E}Q_{ij}Q_{kl} = a\,\delta_{ij}\delta_{kl} + b(\delta_{ik}\delta_{jl} + \delta_{il}\delta_{jk}),"
    r"\ b = \tfrac{r(p-r)}{p(p+2)(p-1)},\ a = \tfrac{r}{p} - (p+1)b",
    conditions=(r"Q \text{ Haar-distributed projection of rank } r",),
    reference="solved from O(p) invariance, tr Q = r and Q^2 = Q (Weingarten, degree 2)",
)
MATCHED_WISHART = Rule(
    "matched Wishart (Pade [0/1])",
    r"\mathbb{E}\operatorname{tr}H^{-1} \approx \frac{n_v\tau}{2\tau^2 - \mathbb{E}(\operatorname{tr}B)^2 - (n_v+1)\mathbb{E}\operatorname{tr}B^2},"
    r"\quad \tau = \mathbb{E}\operatorname{tr}B",
    conditions=(r"H = X_vBX_v^{\top}", r"\text{exact if } B \text{ is a projection}"),
    reference="H replaced by the Wishart matrix with the same E H and E tr H^2; equals the [0/1] Pade resummation of the second-order expansion of E H^{-1}",
)
LINEAR_PROJECTION = Rule(
    "linear projection on the Gram block",
    r"\mathbb{E}\operatorname{tr}(H^{-1}X_vMX_v^{\top}) \approx \beta n_v + (\mathbb{E}\operatorname{tr}M - \beta\tau)\,\mathbb{E}\operatorname{tr}H^{-1},"
    r"\ \beta = \frac{\mathbb{E}\operatorname{tr}H\,X_vMX_v^{\top} - \tau\,n_v\mathbb{E}\operatorname{tr}M}{\mathbb{E}\operatorname{tr}H^2 - n_v\tau^2}",
    conditions=(r"\text{remainder } X_v(M - \beta B)X_v^{\top} \text{ uncorrelated with } H \text{ at second order}",),
    reference="self-normalisation: the part of the numerator proportional to H cancels exactly; the rest is averaged independently",
)
INNER_STEP_MOMENTS = Rule(
    "moments of the inner-step matrix",
    r"A = I - \tfrac{\alpha_t}{n_t}W,\ W \sim \mathcal{W}_p(n_t, I):\ \mathbb{E}\prod_j\operatorname{tr}A^{k_j} \text{ by binomial expansion}",
    reference="Wishart trace moments by Wick contraction (symmaml.rmt.wishart_trace_moment)",
)
NOISE_COVARIANCE = Rule(
    "task noise covariance",
    r"C_i = \sigma^2 I + X_v^{(i)}M_iX_v^{(i)\top},\ M_i = \tfrac{\alpha_t\sigma^2}{n_t}(I - A_i) + \tfrac{\nu^2}{p}A_i^2",
    reference=r"C_1 (engine); \tfrac{\alpha_t^2}{n_t^2}W = \tfrac{\alpha_t}{n_t}(I - A)",
)


@lru_cache(maxsize=None)
def tr_a_moment(ks: tuple) -> sp.Expr:
    """``E prod_j tr(A^{k_j})`` for A = I - (alpha_t/n_t) W, W ~ Wishart_p(n_t, I): a polynomial."""
    c = -alpha_t / n_t
    # prod_j sum_{l_j} binom(k_j, l_j) c^{l_j} tr(W^{l_j})   (tr W^0 = p); terms grouped by the
    # multiset of nonzero powers l_j, so each Wishart moment is multiplied in once
    grouped: dict = {}

    def rec(j, coef, powers):
        if j == len(ks):
            key = tuple(sorted(powers, reverse=True))
            grouped[key] = grouped.get(key, 0) + coef
            return
        for l in range(ks[j] + 1):
            rec(j + 1, coef * int(sp.binomial(ks[j], l)) * (p if l == 0 else 1), powers + ([l] if l else []))

    rec(0, sp.S.One, [])
    total = sp.S.Zero
    for key in sorted(grouped, key=str):
        moment = wishart_trace_moment(key, n_t, p) if key else sp.S.One
        total += grouped[key] * c ** sum(key) * moment
    return sp.expand(total)


@lru_cache(maxsize=None)
def _a_moments():
    names = {(1,): "t1", (2,): "t2", (3,): "t3", (4,): "t4", (2, 1): "t21", (2, 2): "t22"}
    return {v: tr_a_moment(k) for k, v in names.items()}


def _den_h(tau, e_trB_sq, e_trB2):
    return 2 * tau**2 - e_trB_sq - (n_v + 1) * e_trB2


@lru_cache(maxsize=None)
def validity_condition():
    """``den > 0``: the matched Wishart's denominator (its degrees of freedom exceed n_v + 1).

    At alpha_t = 0 it is ``p > m n_v + 1``; near the interpolation threshold with |alpha_t| large
    it fails, and there the corrected result is not valid (it would turn small or negative).
    """
    r = p - N + n_v
    b = r * (p - r) / (p * (p + 2) * (p - 1))
    a = r / p - (p + 1) * b
    mo = _a_moments()
    tau = r / p * mo["t2"]
    den = _den_h(tau, a * mo["t22"] + 2 * b * mo["t4"], a * mo["t4"] + b * (mo["t22"] + mo["t4"]))
    num, dd = sp.fraction(sp.together(den))
    # dd is a positive monomial-type denominator (powers of p, n_t, p + 2, p - 1): sign is num's.
    # num is a quartic in alpha_t; stated in Horner form with factored coefficients (compact, and
    # about 50x faster to check on arrays than the factored polynomial)
    quartic = sp.Integer(0)
    for coeff in sp.Poly(sp.expand(num), alpha_t).all_coeffs():
        quartic = quartic * alpha_t + factor(coeff)
    return sp.StrictGreaterThan(quartic, 0)


def over_corrected_error(d: Derivation | None = None) -> sp.Expr:
    """The noise part of E|omega* - w0|^2 (overparameterised), corrected for finite size."""
    d = d if d is not None else Derivation("scratch")
    r = p - N + n_v
    b = r * (p - r) / (p * (p + 2) * (p - 1))
    a = r / p - (p + 1) * b
    d.add(LEAVE_ONE_TASK_OUT, expect(sp.Symbol(r"\operatorname{tr}(G^{-1}C)")),
          m * expect(sp.Symbol(r"\sigma^2\operatorname{tr}H^{-1} + \operatorname{tr}(H^{-1}X_vMX_v^{\top})")),
          note=r"$H = X_vAQAX_v^{\top}$, $B = AQA$; $C$ is block diagonal so only the diagonal blocks of $G^{-1}$ enter")
    d.add(HAAR_PROJECTION_MOMENTS, sp.Symbol("a"), factor(a))
    d.add(HAAR_PROJECTION_MOMENTS, sp.Symbol("b"), factor(b))
    mo = _a_moments()
    t1, t2, t3, t4, t21, t22 = (mo[k] for k in ("t1", "t2", "t3", "t4", "t21", "t22"))
    for k, v in mo.items():
        d.add(INNER_STEP_MOMENTS, sp.Symbol(rf"\mathbb{{E}}\,{k}"), sp.collect(v, alpha_t, sp.factor),
              note=r"$t_k = \operatorname{tr}A^k$, $t_{21} = \operatorname{tr}A^2\operatorname{tr}A$, $t_{22} = (\operatorname{tr}A^2)^2$")
    c1 = alpha_t * sigma**2 / n_t
    c2 = nu**2 / p
    d.add(NOISE_COVARIANCE, sp.Symbol("M"), sp.Symbol("c_1(I - A) + c_2A^2"),
          note=rf"$c_1 = {sp.latex(c1)}$, $c_2 = {sp.latex(c2)}$")
    tau = r / p * t2
    e_trB2 = a * t4 + b * (t22 + t4)          # E tr B^2
    e_trB_sq = a * t22 + 2 * b * t4          # E (tr B)^2
    note = r"$D = A^2$: $\operatorname{tr}B = \operatorname{tr}DQ$, $\operatorname{tr}B^2 = \operatorname{tr}DQDQ$"
    for name, value in ((r"\operatorname{tr}B", tau), (r"\operatorname{tr}B^2", e_trB2),
                        (r"(\operatorname{tr}B)^2", e_trB_sq)):
        d.add(HAAR_PROJECTION_MOMENTS, expect(sp.Symbol(name)), value, note=note)
    inv_h = n_v * tau / _den_h(tau, e_trB_sq, e_trB2)
    d.add(MATCHED_WISHART, expect(sp.Symbol(r"\operatorname{tr}H^{-1}")), inv_h)
    e_trM = c1 * (p - t1) + c2 * t2
    e_trB_trM = r / p * (c1 * (p * t2 - t21) + c2 * t22)
    e_trBM = r / p * (c1 * (t2 - t3) + c2 * t4)
    beta = (e_trB_trM + (n_v + 1) * e_trBM - tau * e_trM) / (e_trB_sq + (n_v + 1) * e_trB2 - tau**2)
    d.add(WICK, expect(sp.Symbol(r"\operatorname{tr}(H X_vMX_v^{\top})")),
          n_v * sp.Symbol(r"\mathbb{E}\operatorname{tr}B\operatorname{tr}M") + n_v * (n_v + 1) * sp.Symbol(r"\mathbb{E}\operatorname{tr}BM"),
          note="Gaussian average over the query inputs X_v given A and Q")
    d.add(LINEAR_PROJECTION, sp.Symbol(r"\beta"), beta)
    per_task = sigma**2 * inv_h + beta * n_v + (e_trM - beta * tau) * inv_h
    noise = m * per_task
    d.add(SUBSTITUTE, expect(sp.Symbol(r"\operatorname{tr}(G^{-1}C)")), sp.Symbol(r"m\big[\sigma^2\mathbb{E}\operatorname{tr}H^{-1} + \beta n_v + (\mathbb{E}\operatorname{tr}M - \beta\tau)\mathbb{E}\operatorname{tr}H^{-1}\big]"))
    # one fraction of factored polynomials: compact, and fast to specialise numerically
    num, den = sp.fraction(sp.together(noise))
    compact = factor(num) / factor(den)
    d.add(ALGEBRA, sp.Symbol(r"m\,(\ldots)"), compact, note="over a common denominator, numerator and denominator factored")
    return compact


def derive_over_corrected() -> tuple[sp.Expr, Derivation]:
    d = Derivation(
        "Average test loss of one-step MAML, overparameterised regime, finite-size corrected",
        order="corrected (exact leave-one-task-out reduction; matched-Wishart resummation of the task's Gram block)",
        regime="over",
        assumptions=(r"p > m n_v + 1", SOLUTION_OVER),
    )
    linearise(d)
    proj_mean = over_error_decomposition(d)
    record_conditional(d, lhs=sp.Symbol("C_1"))
    noise = over_corrected_error(d)
    error_mean = proj_mean + noise
    d.add(SUBSTITUTE, sp.Symbol(r"\mathbb{E}\lVert\omega^\star - w_0\rVert^2"), error_mean)
    return _finish(d, error_mean), d
