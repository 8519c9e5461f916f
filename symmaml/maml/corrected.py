"""Finite-size corrected average test loss (overparameterised regime), any alpha_t.

Derivation (see :func:`derive_over_corrected`):

1. Exact reduction (leave one task out).  Task i's block of ``G^{-1}`` is
   ``(Z_i (I - P_{-i}) Z_i^T)^{-1}`` (Schur complement), and ``P_{-i}``, the projection on the
   other tasks' rows, is independent of task i and Haar-distributed of rank ``N - n_v`` (the other
   tasks' design is rotation invariant).  With ``Q = I - P_{-i}`` (Haar, rank ``r = p - N + n_v``),
   ``B = A Q A`` and ``H = X_v B X_v^T`` the noise part of the meta-training error is exactly
   ``m E[sigma^2 tr H^{-1} + tr(H^{-1} X_v M X_v^T)]``: a single-task problem, so each task's
   self-normalisation is kept.
2. Exact representation of ``E tr H^{-1}``, one query row at a time: by the Schur complement
   ``(H^{-1})_{11} = 1/(x^T B^{1/2} Pi B^{1/2} x)`` and ``E_x exp(-s x^T K x) = det(I + 2sK)^{-1/2}``,
   ``E tr H^{-1} = n_v E int_0^inf det(I + 2sB)^{-1/2} [det(Y B Y^T) / det(Y B (I+2sB)^{-1} Y^T)]^{1/2} ds``
   with ``Y`` the other n_v - 1 rows (matrix determinant lemma).
3. Approximations, each exact at alpha_t = 0 (B a projection) and measured one by one against
   Monte Carlo of the ingredients: the other rows enter through the means of their quadratic forms
   (exact for n_v = 1); the log-determinant self-averages over A and Q, so B enters through its mean
   spectral measure rho_B (mass r); rho_B is replaced by the two-node Gauss quadrature with the same
   moments E tr B^k, k <= 3, stated in centred form (mean, variance / alpha_t^2, skewness) so that it
   is regular at alpha_t = 0.  What is left is a one-dimensional integral
   (:class:`symmaml.special.SpectralIntegral`, evaluated by quadrature).  A matched-Wishart
   resummation of H (the previous version of this result) was 27% off ``E tr H^{-1}`` at
   m n_v/p = 0.3, alpha_t = 1, where B's spectrum is heavy-tailed; this is within 1%.  Several inner
   steps (``k_t >= 2``) use :mod:`.corrected_over_steps` instead: applied to them, this construction's
   ``E tr H^{-1}`` is 8-42% low at Figure 2, k_t = 3, |alpha_t| >= 0.5 and its linear projection (step 4) 2-17%
   high on the support-noise term (``benchmarks/diagnose_over_quadrature.py``).
4. Approximation (linear projection): ``X_v M X_v^T = beta H + R`` with ``beta`` chosen so that the
   remainder R is uncorrelated with H at second order; R is averaged independently of H.
5. Everything left is a moment of the inner-step matrix A (Wishart moments, exact, by the engine)
   and of the Haar projection Q (Weingarten coefficients of degree <= 3, :mod:`symmaml.rmt.haar`).

At alpha_t = 0 the result equals the exact result (:mod:`.exact`): the two nodes coincide and
the integral has a closed form; this is tested symbolically.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ..algebra import factor
from ..derivation import Derivation, Rule
from ..rmt import expect
from ..rmt.haar import HAAR_PROJECTION_WEINGARTEN, haar_projection_trace_moment
from ..rmt.wishart import wishart_trace_moment_poly
from ..special import SpectralIntegral
from ..symbols import alpha_t, m, n_t, n_v, nu, p, sigma
from .leading import N, _finish, order_text, over_error_decomposition, title
from .meta_training import expand_powers, linearise, record_conditional, task_noise_covariance, tasks
from .model import PAPER, Model
from .rules import ALGEBRA, SOLUTION_OVER, SUBSTITUTE, WICK

__all__ = ["derive_over_corrected", "over_corrected_error", "spectral_moments_b", "LEAVE_ONE_TASK_OUT",
           "HAAR_PROJECTION_MOMENTS", "ROW_SCHUR_INTEGRAL", "OTHER_ROWS_MEAN", "LOG_DET_SELF_AVERAGING",
           "TWO_NODE_GAUSS", "LINEAR_PROJECTION"]

LEAVE_ONE_TASK_OUT = Rule(
    "leave one task out",
    r"(G^{-1})_{ii} = \big(X_v^{(i)}A_i Q A_i X_v^{(i)\top}\big)^{-1},\quad Q = I - P_{-i}"
    r"\ \text{Haar projection of rank } r = p - m n_v + n_v \text{ independent of task } i",
    conditions=(r"p > m n_v", r"\text{tasks independent}", r"Z_{-i} \overset{d}{=} Z_{-i}O\ \forall O\in O(p)"),
    reference=r"Schur complement of $G = ZZ^{\top}$; rotational invariance of the other tasks' design (exact)",
)
HAAR_PROJECTION_MOMENTS = Rule(
    "moments of a Haar projection",
    r"\mathbb{E}Q_{ij}Q_{kl} = a\,\delta_{ij}\delta_{kl} + b(\delta_{ik}\delta_{jl} + \delta_{il}\delta_{jk}),"
    r"\ b = \tfrac{r(p-r)}{p(p+2)(p-1)},\ a = \tfrac{r}{p} - (p+1)b",
    conditions=(r"Q \text{ Haar-distributed projection of rank } r",),
    reference=r"solved from $O(p)$ invariance, $\operatorname{tr}Q = r$ and $Q^2 = Q$ (Weingarten, degree 2)",
)
ROW_SCHUR_INTEGRAL = Rule(
    "one query row at a time (exact)",
    r"\mathbb{E}\operatorname{tr}H^{-1} = n_v\,\mathbb{E}\frac{1}{x^{\top}B^{1/2}\Pi B^{1/2}x}"
    r" = n_v\,\mathbb{E}\int_0^\infty \det(I + 2sB)^{-1/2}\left[\frac{\det YBY^{\top}}{\det YB(I+2sB)^{-1}Y^{\top}}\right]^{1/2}ds",
    conditions=(r"H = X_vBX_v^{\top},\ X_v = [x^{\top}; Y] \text{ Gaussian}",),
    reference=(r"Schur complement: $(H^{-1})_{11} = 1/(x^{\top}B^{1/2}\Pi B^{1/2}x)$, $\Pi$ the projection off "
               r"$B^{1/2}Y^{\top}$; $\mathbb{E}_x e^{-s\,x^{\top}Kx} = \det(I+2sK)^{-1/2}$ integrated over $s$; "
               r"matrix determinant lemma for $\det(I + 2sB^{1/2}\Pi B^{1/2})$ (exact)"),
)
OTHER_ROWS_MEAN = Rule(
    "other query rows by their mean quadratic forms",
    r"\frac{\det YBY^{\top}}{\det YB(I+2sB)^{-1}Y^{\top}} \to \left[\frac{\operatorname{tr}B}{\operatorname{tr}B(I+2sB)^{-1}}\right]^{n_v-1}",
    conditions=(r"\text{exact for } n_v = 1 \text{ and when } B \text{ is a projection}",),
    reference=r"approximation: each of the other $n_v - 1$ rows of $X_v$ enters through the mean of its quadratic forms",
)
LOG_DET_SELF_AVERAGING = Rule(
    "self-averaging of the log-determinant",
    r"\mathbb{E}_B\,e^{-\frac12\operatorname{tr}\log(I+2sB)}\,(\ldots) \to e^{-\frac12\int\log(1+2s\lambda)\,d\rho_B(\lambda)}\,(\ldots),"
    r"\quad \rho_B = \mathbb{E}\textstyle\sum_{\lambda_k(B) > 0}\delta_{\lambda_k}",
    conditions=(r"\text{exact when } B \text{ is a projection } (\alpha_t = 0)",),
    reference=(r"approximation: the inner-step and projection randomness of $B$ enters through its mean spectral "
               r"measure (measured: 0.2-0.4% at Figure 2 and at $m n_v/p = 0.3$)"),
)
TWO_NODE_GAUSS = Rule(
    "two-node Gauss quadrature of the mean spectral measure",
    r"\rho_B \to w_1\delta_{x_1} + w_2\delta_{x_2},\quad x_{1,2} = \bar{x} + \alpha_t\sqrt{v}\,\xi_{1,2},"
    r"\ \xi_{1,2} = \tfrac{\gamma \pm \sqrt{\gamma^2 + 4}}{2},\ w_{1,2} = \tfrac{r}{2}\Big(1 \mp \tfrac{\gamma}{\sqrt{\gamma^2+4}}\Big)",
    conditions=(r"\rho_B \ge 0 \text{ with mass } r \text{ and moments } \mathbb{E}\operatorname{tr}B^k,\ k \le 3",),
    reference=(r"the two-point law with the same mean $\bar{x}$, variance $\alpha_t^2v$ and skewness $\gamma$ "
               r"(the nodes are the roots of the degree-2 orthogonal polynomial); stated in centred form so that "
               r"it is regular at $\alpha_t = 0$, where both nodes are 1"),
)
LINEAR_PROJECTION = Rule(
    "linear projection on the Gram block",
    r"\mathbb{E}\operatorname{tr}(H^{-1}X_vMX_v^{\top}) \approx \beta n_v + (\mathbb{E}\operatorname{tr}M - \beta\tau)\,\mathbb{E}\operatorname{tr}H^{-1},"
    r"\ \beta = \frac{\mathbb{E}\operatorname{tr}H\,X_vMX_v^{\top} - \tau\,n_v\mathbb{E}\operatorname{tr}M}{\mathbb{E}\operatorname{tr}H^2 - n_v\tau^2}",
    conditions=(r"\text{remainder } X_v(M - \beta B)X_v^{\top} \text{ uncorrelated with } H \text{ at second order}",),
    reference="self-normalisation: the part of the numerator proportional to H cancels exactly; the rest is averaged independently",
)
LEAVE_ONE_TASK_OUT_STEPS = Rule(
    "leave one task out",
    r"(G^{-1})_{ii} = \big(X_v^{(i)}A_i^{k_t} Q A_i^{k_t} X_v^{(i)\top}\big)^{-1},\quad Q = I - P_{-i}"
    r"\ \text{Haar projection of rank } r = p - m n_v + n_v \text{ independent of task } i",
    conditions=(r"p > m n_v", r"\text{tasks independent}", r"Z_{-i} \overset{d}{=} Z_{-i}O\ \forall O\in O(p)"),
    reference="Schur complement of G = ZZ^T; rotational invariance of the other tasks' design (exact)",
)
NOISE_COVARIANCE_STEPS = Rule(
    "task noise covariance",
    r"C_i = \sigma^2 I + X_v^{(i)}M_iX_v^{(i)\top},\ M_i = \tfrac{\nu^2}{p}A_i^{2k_t} + \tfrac{\alpha_t\sigma^2}{n_t}(I - A_i^{k_t})\textstyle\sum_{j<k_t}A_i^j",
    reference=r"the task offset through $A^{k_t}$ and the support noise through $\tfrac{\alpha_t}{n_t}S_kX_t^{\top}$, "
              r"$S_k = \sum_{j<k}A^j$, $\tfrac{\alpha_t}{n_t}S_kWS_k = (I - A^k)S_k$",
)
INNER_STEP_MOMENTS = Rule(
    "moments of the inner-step matrix",
    r"A = I - \tfrac{\alpha_t}{n_t}W,\ W \sim \mathcal{W}_p(n_t, I):\ \mathbb{E}\prod_j\operatorname{tr}A^{k_j} \text{ by binomial expansion}",
    reference="Wishart trace moments by Wick contraction (the engine, exact)",
)
NOISE_COVARIANCE = Rule(
    "task noise covariance",
    r"C_i = \sigma^2 I + X_v^{(i)}M_iX_v^{(i)\top},\ M_i = \tfrac{\alpha_t\sigma^2}{n_t}(I - A_i) + \tfrac{\nu^2}{p}A_i^2",
    reference=r"$C_1$ as the engine computes it, with $\tfrac{\alpha_t^2}{n_t^2}W = \tfrac{\alpha_t}{n_t}(I - A)$",
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
    # the coefficient of c^s, summed in polynomial arithmetic in (n_t, p) (no tree is expanded)
    by_power: dict = {}
    for key in sorted(grouped, key=str):
        term = sp.Poly(grouped[key], n_t, p)
        if key:
            term = term * wishart_trace_moment_poly(key, n_t, p)
        s = sum(key)
        by_power[s] = by_power[s] + term if s in by_power else term
    return sp.expand(sp.Add(*(poly.as_expr() * c**s for s, poly in sorted(by_power.items()))))


@lru_cache(maxsize=None)
def _a_moments():
    names = {(1,): "t1", (2,): "t2", (3,): "t3", (4,): "t4", (2, 1): "t21", (2, 2): "t22"}
    return {v: tr_a_moment(k) for k, v in names.items()}


def _divide_alpha(expr, k: int) -> sp.Expr:
    """``expr / alpha_t**k`` for a rational function whose numerator vanishes to order k at 0."""
    num, den = sp.fraction(sp.together(expr))
    poly = sp.Poly(sp.expand(num), alpha_t)
    low = [c for (e,), c in poly.terms() if e < k]
    if any(sp.expand(c) != 0 for c in low):
        raise AssertionError(f"not divisible by alpha_t^{k}: {low}")
    quotient = sp.Add(*(c * alpha_t**(e - k) for (e,), c in poly.terms()))
    return factor(quotient) / factor(den)


@lru_cache(maxsize=None)
def spectral_moments_b(steps: int = 1) -> tuple:
    """``(E tr B, E tr B^2, E tr B^3)`` for ``B = A^k Q A^k`` (``k = steps``; mean spectral measure of B,
    mass r).

    Haar projection moments (degree k, :func:`symmaml.rmt.haar_projection_trace_moment`) in the
    power sums of ``D = A^{2k}``, then the inner-step moments ``E prod tr A^{2k lambda_j}``.
    """
    r = p - N + n_v
    out = []
    for k in (1, 2, 3):
        total = sp.S.Zero
        for lam, coeff in sorted(haar_projection_trace_moment(k, p, r).items()):
            total += coeff * tr_a_moment(tuple(2 * steps * part for part in lam))
        out.append(total)
    return tuple(out)


def over_corrected_error(d: Derivation | None = None, model: Model = PAPER) -> tuple[sp.Expr, tuple]:
    """The noise part of E|omega* - w0|^2 (overparameterised), corrected for finite size.

    Returns ``(noise, definitions)``: the noise part in named quantities (the nodes and weights
    of the two-node quadrature and ``h``, the approximation of ``E tr H^{-1}``), and their
    definitions in dependency order.  With k_t inner steps ``B = A^{k_t} Q A^{k_t}``.
    """
    d = d if d is not None else Derivation("scratch")
    r = p - N + n_v
    b = r * (p - r) / (p * (p + 2) * (p - 1))
    a = r / p - (p + 1) * b
    if not model.is_paper:
        return _over_corrected_tail(d, *_moments_steps(d, model, r, a, b), fast=True)
    d.add(LEAVE_ONE_TASK_OUT, expect(sp.Symbol(r"\operatorname{tr}(G^{-1}C)")),
          m * expect(sp.Symbol(r"\sigma^2\operatorname{tr}H^{-1} + \operatorname{tr}(H^{-1}X_vMX_v^{\top})")),
          note=r"$H = X_vAQAX_v^{\top}$, $B = AQA$; $C$ is block diagonal so only the diagonal blocks of $G^{-1}$ enter")
    d.add(HAAR_PROJECTION_MOMENTS, sp.Symbol("a"), factor(a))
    d.add(HAAR_PROJECTION_MOMENTS, sp.Symbol("b"), factor(b))
    mo = _a_moments()
    t1, t2, t3, t4, t21, t22 = (mo[k] for k in ("t1", "t2", "t3", "t4", "t21", "t22"))
    for j, (k, v) in enumerate(mo.items()):
        d.add(INNER_STEP_MOMENTS, sp.Symbol(rf"\mathbb{{E}}\,t_{{{k[1:]}}}"), sp.collect(v, alpha_t, sp.factor),
              note=(r"$t_k = \operatorname{tr}A^k$, $t_{21} = \operatorname{tr}A^2\operatorname{tr}A$, "
                    r"$t_{22} = (\operatorname{tr}A^2)^2$") if j == 0 else "")
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
    mu1, mu2, mu3 = spectral_moments_b()
    if sp.cancel(sp.together(mu1 - tau)) != 0 or sp.cancel(sp.together(mu2 - e_trB2)) != 0:
        raise AssertionError("the Haar moments of degree 1 and 2 disagree with a, b")
    d.add(HAAR_PROJECTION_WEINGARTEN, expect(sp.Symbol(r"\operatorname{tr}B^3")), sp.collect(mu3, alpha_t, factor),
          note=(r"$\operatorname{tr}B^3 = \operatorname{tr}(DQ)^3$: coefficients of "
                r"$\operatorname{tr}D^3$, $\operatorname{tr}D^2\operatorname{tr}D$, $(\operatorname{tr}D)^3$ "
                r"from the pairings of six indices; then $\mathbb{E}\operatorname{tr}A^6$, "
                r"$\mathbb{E}\operatorname{tr}A^4\operatorname{tr}A^2$, $\mathbb{E}(\operatorname{tr}A^2)^3$"))
    e_trM = c1 * (p - t1) + c2 * t2
    e_trB_trM = r / p * (c1 * (p * t2 - t21) + c2 * t22)
    e_trBM = r / p * (c1 * (t2 - t3) + c2 * t4)
    return _over_corrected_tail(d, r, tau, e_trB2, e_trB_sq, mu3, e_trM, e_trB_trM, e_trBM)


def _a_expect(*polys) -> sp.Expr:
    """``E prod_j tr f_j(A)`` for polynomials ``f_j`` given as ``{power: coefficient}`` (``A^0 = I``)."""
    total = sp.S.Zero
    combos = [((), sp.S.One)]
    for f in polys:
        combos = [(ks + (k,), c * ck) for ks, c in combos for k, ck in sorted(f.items())]
    for ks, c in combos:
        nonzero = tuple(sorted((k for k in ks if k), reverse=True))
        total += c * p ** (len(ks) - len(nonzero)) * (tr_a_moment(nonzero) if nonzero else 1)
    return sp.expand(total)


def _poly_mul(f: dict, g: dict) -> dict:
    out: dict = {}
    for i, a in f.items():
        for j, b in g.items():
            out[i + j] = out.get(i + j, 0) + a * b
    return {k: v for k, v in out.items() if v != 0}


def noise_weight(model: Model) -> dict:
    """``M`` with ``C_1 = sigma^2 I + X_v M X_v^T`` as a polynomial in ``A``: ``{power: coefficient}``.

    ``M = (nu^2/p) A^{2k} + (alpha_t sigma^2/n_t)(I - A^k) S_k``, ``S_k = sum_{j<k} A^j``: the task offset
    seen through ``A^k``, and the support noise through ``(alpha_t/n_t) S_k X_t^T`` with
    ``(alpha_t/n_t) S_k W S_k = S_k (I - A) S_k = (I - A^k) S_k``.  Checked against the engine's ``C_1``.
    """
    k = model.inner_steps
    s_k = {j: 1 for j in range(k)}
    one_minus = {0: 1, k: -1}
    m_poly = {2 * k: nu**2 / p}
    for j, c in _poly_mul(one_minus, s_k).items():
        m_poly[j] = m_poly.get(j, 0) + alpha_t * sigma**2 / n_t * c
    return {j: c for j, c in m_poly.items() if c != 0}


def check_noise_covariance(model: Model) -> None:
    """The engine's ``C_1`` equals ``sigma^2 I + X_v M X_v^T`` with ``M`` from :func:`noise_weight`."""
    task = tasks(model)[0]
    c1 = task_noise_covariance(model)
    A = sp.Identity(p) - (alpha_t / n_t) * task.X_t.T * task.X_t
    M = sp.MatAdd(*(c * (sp.Identity(p) if j == 0 else A if j == 1 else sp.MatPow(A, j))
                    for j, c in sorted(noise_weight(model).items())))
    diff = sp.expand(c1 - sigma**2 * sp.Identity(n_v) - expand_powers(task.X_v * M * task.X_v.T))
    if diff not in (0, sp.ZeroMatrix(n_v, n_v)):
        raise AssertionError(f"C_1 is not sigma^2 I + X_v M X_v^T: remainder {diff}")


def record_noise_weight(d: Derivation, model: Model) -> dict:
    """``M`` of :func:`noise_weight`, checked against the engine's ``C_1`` and recorded in ``d``; returned."""
    check_noise_covariance(model)
    m_poly = noise_weight(model)
    d.add(NOISE_COVARIANCE_STEPS, sp.Symbol("M"), sp.Add(*(c * sp.Symbol("A") ** j for j, c in sorted(m_poly.items()))),
          note=rf"$k_t = {model.inner_steps}$; checked against the engine's $C_1$")
    return m_poly


def _moments_steps(d: Derivation, model: Model, r, a, b):
    """The moments of ``B = A^k Q A^k`` and of ``M`` for ``k_t = k`` inner steps, recorded in ``d``."""
    k = model.inner_steps
    d.add(LEAVE_ONE_TASK_OUT_STEPS, expect(sp.Symbol(r"\operatorname{tr}(G^{-1}C)")),
          m * expect(sp.Symbol(r"\sigma^2\operatorname{tr}H^{-1} + \operatorname{tr}(H^{-1}X_vMX_v^{\top})")),
          note=(r"$H = X_vBX_v^{\top}$, " + rf"$B = A^{{{k}}}QA^{{{k}}}$; "
                r"$C$ is block diagonal so only the diagonal blocks of $G^{-1}$ enter"))
    d.add(HAAR_PROJECTION_MOMENTS, sp.Symbol("a"), factor(a))
    d.add(HAAR_PROJECTION_MOMENTS, sp.Symbol("b"), factor(b))
    m_poly = record_noise_weight(d, model)
    D = {2 * k: 1}
    moments = {
        r"\operatorname{tr}D": _a_expect(D),
        r"\operatorname{tr}D^2": _a_expect({4 * k: 1}),
        r"(\operatorname{tr}D)^2": _a_expect(D, D),
        r"\operatorname{tr}M": _a_expect(m_poly),
        r"\operatorname{tr}D\operatorname{tr}M": _a_expect(D, m_poly),
        r"\operatorname{tr}DM": _a_expect(_poly_mul(D, m_poly)),
    }
    for name, value in moments.items():
        d.add(INNER_STEP_MOMENTS, expect(sp.Symbol(name)), sp.collect(value, alpha_t),
              note=(rf"$D = A^{{{2 * k}}}$; Wishart trace moments of the support design up to degree {4 * k}"
                    if name == r"\operatorname{tr}D" else ""))
    t_d, t_d2, t_dd, e_trM, t_dm, t_DM = moments.values()
    # the moments of B in polynomial arithmetic over the field of the sizes (no tree expansion)
    K = _FIELD
    Pd, Pd2, Pdd = (_alpha_poly(v) for v in (t_d, t_d2, t_dd))
    ka, kb, kr_p = (_alpha_poly(x) for x in (a, b, r / p))
    tau = Pd * kr_p
    e_trB2 = Pd2 * ka + (Pdd + Pd2) * kb
    e_trB_sq = Pdd * ka + Pd2 * kb * 2
    TD, TD2, TDD = (sp.Symbol(rf"\mathbb{{E}}{x}") for x in (r"\operatorname{tr}D", r"\operatorname{tr}D^2",
                                                           r"(\operatorname{tr}D)^2"))
    note = (r"$\operatorname{tr}B = \operatorname{tr}DQ$, $\operatorname{tr}B^2 = \operatorname{tr}DQDQ$ "
            r"(Haar moments of $Q$ of degree 2)")
    for name, value in ((r"\operatorname{tr}B", r / p * TD), (r"\operatorname{tr}B^2", a * TD2 + b * (TDD + TD2)),
                        (r"(\operatorname{tr}B)^2", a * TDD + 2 * b * TD2)):
        d.add(HAAR_PROJECTION_MOMENTS, expect(sp.Symbol(name)), value, note=note)
    mu3 = sp.Poly(0, alpha_t, domain=K)
    terms = []
    for lam, coeff in sorted(haar_projection_trace_moment(3, p, r).items()):
        mu3 += _alpha_poly(tr_a_moment(tuple(2 * k * part for part in lam))) * _alpha_poly(coeff)
        terms.append(coeff * sp.Mul(*(sp.Symbol(rf"\operatorname{{tr}}D^{{{part}}}") for part in lam)))
    d.add(HAAR_PROJECTION_WEINGARTEN, expect(sp.Symbol(r"\operatorname{tr}B^3")), expect(sp.Add(*terms)),
          note=(r"$\operatorname{tr}B^3 = \operatorname{tr}(DQ)^3$: coefficients of "
                r"$\operatorname{tr}D^3$, $\operatorname{tr}D^2\operatorname{tr}D$, $(\operatorname{tr}D)^3$ "
                rf"from the pairings of six indices; then Wishart moments up to degree {6 * k}"))
    return r, tau, e_trB2, e_trB_sq, mu3, e_trM, r / p * t_dm, r / p * t_DM


_FIELD = sp.QQ.frac_field(m, n_t, n_v, p)


def _alpha_poly(expr) -> sp.Poly:
    """``expr`` (an expanded polynomial in alpha_t with coefficients rational in the sizes) as a ``Poly``
    in alpha_t over the field of rational functions of the sizes: exact arithmetic without expanding trees."""
    return sp.Poly(expr, alpha_t, domain=_FIELD)


def _poly_expr(poly: sp.Poly) -> sp.Expr:
    """A Poly in alpha_t over the field of the sizes as ``sum_j c_j alpha_t^j`` (each ``c_j`` one fraction)."""
    return _shift(poly, 0)


def _shift(poly: sp.Poly, k: int) -> sp.Expr:
    """``poly / alpha_t**k`` for a polynomial whose coefficients below degree k vanish (checked)."""
    coeffs = dict(poly.terms())
    low = [c for (e,), c in coeffs.items() if e < k and c != 0]
    if low:
        raise AssertionError(f"not divisible by alpha_t^{k}: {low}")
    return sp.Add(*(poly.domain.to_sympy(c) * alpha_t**(e - k) for (e,), c in sorted(coeffs.items())))


def _over_corrected_tail(d: Derivation, r, tau, e_trB2, e_trB_sq, mu3, e_trM, e_trB_trM, e_trBM, fast=False):
    """From the moments of ``B`` and ``M`` to the corrected noise term (shared by every model).

    ``fast`` (several inner steps): the centred moments are divided by powers of alpha_t in polynomial
    arithmetic over the field of the sizes, and beta is a named quantity, instead of factoring whole
    rational functions (which takes minutes at k_t = 2)."""
    define = d.define
    # E tr H^{-1}: one row at a time, the other rows by their means, the spectral measure of B
    h = sp.Symbol("h")
    d.add(ROW_SCHUR_INTEGRAL, expect(sp.Symbol(r"\operatorname{tr}H^{-1}")),
          n_v * expect(sp.Symbol(r"\int_0^\infty \det(I+2sB)^{-1/2}[\ldots]^{1/2}\,ds")))
    d.add(OTHER_ROWS_MEAN, sp.Symbol(r"[\ldots]^{1/2}"),
          sp.Symbol(r"\left[\operatorname{tr}B/\operatorname{tr}B(I+2sB)^{-1}\right]^{(n_v-1)/2}"))
    d.add(LOG_DET_SELF_AVERAGING, sp.Symbol(r"\mathbb{E}\operatorname{tr}H^{-1}"),
          sp.Symbol(r"n_v\int_0^\infty e^{-\frac12\int\log(1+2s\lambda)d\rho_B}"
                    r"\left[\tfrac{\int\lambda\,d\rho_B}{\int\lambda(1+2s\lambda)^{-1}d\rho_B}\right]^{\frac{n_v-1}{2}}ds"),
          note=r"$\rho_B$ has mass $r = p - m n_v + n_v$ and moments $\mathbb{E}\operatorname{tr}B^k$")
    xbar, v, gamma = sp.Symbol(r"\bar{x}"), sp.Symbol("v"), sp.Symbol(r"\gamma")
    if fast:  # tau, e_trB2, e_trB_sq, mu3 are Polys in alpha_t over the field of the sizes
        inv_r = _alpha_poly(1 / r)
        P_tau, P_b2, P_mu3 = tau * inv_r, e_trB2 * inv_r, mu3 * inv_r
        tau, e_trB2, e_trB_sq = (_poly_expr(x) for x in (tau, e_trB2, e_trB_sq))
        define(xbar, _poly_expr(P_tau), TWO_NODE_GAUSS, note=r"the mean node $\mathbb{E}\operatorname{tr}B/r$")
        v_value = _shift(P_b2 - P_tau**2, 2)
        g3_value = _shift(P_mu3 - 3 * P_tau * P_b2 + 2 * P_tau**3, 3)
    else:
        define(xbar, factor(tau / r), TWO_NODE_GAUSS, note=r"the mean node $\mathbb{E}\operatorname{tr}B/r$")
        centred2 = e_trB2 / r - (tau / r)**2
        centred3 = mu3 / r - 3 * (tau / r) * e_trB2 / r + 2 * (tau / r)**3
        v_value = _divide_alpha(centred2, 2)
        g3_value = _divide_alpha(centred3, 3)
    define(v, v_value, TWO_NODE_GAUSS,
           note=r"the variance of $\rho_B/r$ divided by $\alpha_t^2$ (it vanishes as $\alpha_t^2$)")
    define(gamma, g3_value / v**sp.Rational(3, 2), TWO_NODE_GAUSS,
           note=r"the skewness of $\rho_B$: its third central moment divided by $\alpha_t^3$, over $v^{3/2}$")
    root = sp.sqrt(gamma**2 + 4)
    x1, x2, w1, w2 = sp.symbols("x_1 x_2 w_1 w_2")
    define(x1, xbar + alpha_t * sp.sqrt(v) * (gamma + root) / 2, TWO_NODE_GAUSS)
    define(x2, xbar + alpha_t * sp.sqrt(v) * (gamma - root) / 2, TWO_NODE_GAUSS)
    define(w1, r / 2 * (1 - gamma / root), TWO_NODE_GAUSS)
    define(w2, r / 2 * (1 + gamma / root), TWO_NODE_GAUSS)
    define(h, n_v * SpectralIntegral(x1, x2, w1, w2, (n_v - 1) / 2), LOG_DET_SELF_AVERAGING,
           note=(r"$\mathbb{E}\operatorname{tr}H^{-1} \approx h$; the integral is one-dimensional "
                 r"(evaluated by quadrature); at $\alpha_t = 0$ both nodes are 1 and $h = n_v/(r - n_v - 1)$, "
                 r"the inverse-Wishart mean"))
    beta = (e_trB_trM + (n_v + 1) * e_trBM - tau * e_trM) / (e_trB_sq + (n_v + 1) * e_trB2 - tau**2)
    d.add(WICK, expect(sp.Symbol(r"\operatorname{tr}(H X_vMX_v^{\top})")),
          n_v * sp.Symbol(r"\mathbb{E}\operatorname{tr}B\operatorname{tr}M") + n_v * (n_v + 1) * sp.Symbol(r"\mathbb{E}\operatorname{tr}BM"),
          note=r"Gaussian average over the query inputs $X_v$ given $A$ and $Q$")
    d.add(LINEAR_PROJECTION, sp.Symbol(r"\beta"), beta)
    d.add(SUBSTITUTE, expect(sp.Symbol(r"\operatorname{tr}(G^{-1}C)")),
          sp.Symbol(r"m\big[\sigma^2h + \beta n_v + (\mathbb{E}\operatorname{tr}M - \beta\tau)h\big]"))
    if fast:  # beta named, each moment a polynomial: evaluated in stages
        beta_sym = sp.Symbol(r"\beta")
        d.define(beta_sym, beta, LINEAR_PROJECTION, note="a named quantity: the noise term below is stated with it")
        noise = m * (sigma**2 + e_trM - beta_sym * tau) * h + m * beta_sym * n_v
        d.add(ALGEBRA, sp.Symbol(r"m\,(\ldots)"), noise)
        return noise, tuple(d.definitions)
    # over common denominators, numerators and denominators factored: compact and fast numerically
    slope = _compact(m * (sigma**2 + e_trM - beta * tau))
    offset = _compact(m * beta * n_v)
    noise = slope * h + offset
    # the coefficient of h and the constant term, named for the documents (the result is written in
    # their values): E tr(G^{-1}C) = l_1 h + l_0
    d.add(ALGEBRA, sp.Symbol(r"m\big(\sigma^2 + \mathbb{E}\operatorname{tr}M - \beta\tau\big)"), slope,
          lhs=sp.Symbol(r"\ell_1"), note=(r"so $\mathbb{E}\operatorname{tr}(G^{-1}C) = \ell_1h + \ell_0$; each over "
                                          r"a common denominator, numerator and denominator factored"))
    d.add(ALGEBRA, sp.Symbol(r"m\,\beta\,n_v"), offset, lhs=sp.Symbol(r"\ell_0"))
    return noise, tuple(d.definitions)


def _compact(expr) -> sp.Expr:
    num, den = sp.fraction(sp.together(expr))
    return factor(num) / factor(den)


DOMAIN = "its spectral integral needs p > m n_v + 1 and a positive variance v of the spectrum of B"


def derive_over_corrected(model: Model = PAPER) -> tuple[sp.Expr, Derivation, tuple, str]:
    """One inner step (the two-node quadrature of ``B``'s spectrum; also what non-paper models with ``k_t = 1`` use).
    Several inner steps: :func:`~.corrected_over_steps.derive_over_corrected_steps`."""
    return derive_over(model, "each task's Gram block averaged one query row at a time, through the mean spectrum of $B$",
                       (SOLUTION_OVER,), over_corrected_error, DOMAIN)


def derive_over(model: Model, construction: str, assumptions: tuple, error, domain: str
                ) -> tuple[sp.Expr, Derivation, tuple, str]:
    """The overparameterised corrected derivation around ``error(d, model) -> (noise part, definitions)``: the
    linearised meta-training, the error decomposition, the task's noise covariance, then ``error``, then the exact
    meta-test average.  ``construction`` names how the task's Gram block is averaged (the order's description)."""
    if model.anisotropic:
        raise ValueError("the corrected order is derived for isotropic inputs only")
    d = Derivation(
        title("Average test loss of one-step MAML, overparameterised regime, finite-size corrected", model),
        order=order_text(f"corrected (exact leave-one-task-out reduction; {construction})", model),
        regime="over",
        assumptions=(r"p > m n_v + 1",) + assumptions,
    )
    linearise(d, model)
    proj_mean = over_error_decomposition(d)
    record_conditional(d, lhs=sp.Symbol("C_1"), model=model)
    noise, defs = error(d, model)
    error_mean = proj_mean + noise
    d.add(SUBSTITUTE, sp.Symbol(r"\mathbb{E}\lVert\omega^\star - w_0\rVert^2"), error_mean)
    return _finish(d, error_mean, model), d, defs, domain
