"""The algebraic average test loss of one-step MAML on the infinite-width network (leading order).

Starting point: MAML on the linearised network in kernel form (:mod:`.kernel_maml`, exact).  Four
approximations, each stated as a rule in the derivation and measured against ``ntk_simulate``:

1. **Effective kernels** (:mod:`.effective`): ``Theta ~ c_0 + c_1 x.x'/d + lambda [x = x']`` and the
   initial function ``f0 = s_0 + v.x + epsilon(x)`` with ``s_0 ~ N(0, e_0)``, ``v ~ N(0, (e_1/d) I)``,
   ``epsilon`` independent per point with variance ``lambda_Sigma`` (high-dimensional linearisation).
   The learned function then lies in the span of the constant and the linear functions, and the
   test error splits exactly into a constant part, a linear part and a rest.
2. **The quadratic part of the target as noise**: ``(w.x + b)^2 = C + 2b w.x + r(x)`` with
   ``C = |w|^2 + b^2`` and ``r(x) = (w.x)^2 - |w|^2``, orthogonal to constants and linear functions; at
   the training points ``r`` is taken independent of the inputs (its correlations with them are O(1/d)).
3. **Leading order**: the meta-training Gram matrix ``G = M Theta(S, S) M^T`` is replaced by its mean
   (as in the paper's overparameterised theorem); the mean has three levels (diagonal, same task,
   different tasks) and is inverted in closed form.
4. Everything else is averaged exactly: the adaptation step over the adaptation data, and the
   meta-training coefficients over inputs, tasks, noise and the initial function (Wick contractions by
   :mod:`symmaml.rmt`, sums over the m tasks by set partitions, :mod:`symmaml.rmt.exchangeable`).

The result is stated with named intermediate quantities (``Result.definitions``).
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .. import cache
from ..algebra import factor
from ..derivation import Derivation, Rule
from ..maml.result import Result
from ..rmt import expect, expectation, gaussian_matrix
from ..rmt.exchangeable import Factor, GroupSum
from ..symbols import NONLINEAR, alpha_r, alpha_t, beta, d, m, n_r, n_t, n_v, nu, sigma
from .effective import C0, C1, E0, E1, LAMBDA, LAMBDA_SIGMA, derive_effective_kernels

__all__ = ["average_test_loss", "derive_leading", "ORDERS"]

ORDERS = ("leading",)

_1t = sp.MatrixSymbol("1_{n_t}", n_t, 1)
_1v = sp.MatrixSymbol("1_{n_v}", n_v, 1)
_1r = sp.MatrixSymbol("1_{n_r}", n_r, 1)
_ONES = {_1t: sp.OneMatrix(n_t, 1), _1v: sp.OneMatrix(n_v, 1), _1r: sp.OneMatrix(n_r, 1)}
_a = alpha_t / n_t  # the inner step's rate per support point

# named quantities of the result
ALPHA_G, BETA_G, GAMMA_G = sp.symbols("g_1 g_2 g_3", real=True)
H1, H2, H3 = sp.symbols("h_1 h_2 h_3", real=True)
MU_C, VAR_C, SIGMA_XI = sp.Symbol("mu_C", positive=True), sp.Symbol("v_C", nonnegative=True), sp.Symbol("sigma_xi", positive=True)
DELTA_C, DELTA_L = sp.Symbol("D_c", nonnegative=True), sp.Symbol("D_l", nonnegative=True)
LAM1 = sp.Symbol("ell_1", real=True)
KAPPA = sp.symbols("k_1:6", real=True)  # the channels of E[kappa*^2]
UPS = sp.symbols("u_1:6", real=True)    # the channels of E|u*|^2
TRACE_U = sp.Symbol("u_0", real=True)

# rules ------------------------------------------------------------------------------------
ORTHOGONAL = Rule(
    "orthogonal decomposition of the test error",
    r"\mathbb{E}_x\big(\kappa + u^{\top}x + \rho(x)\big)^2 = \kappa^2 + |u|^2 + \mathbb{E}_x\rho^2",
    conditions=(r"x \sim \mathcal{N}(0, I_d)", r"\rho \perp \{1, x\} \text{ in } L^2"),
)
QUADRATIC_AS_NOISE = Rule(
    "quadratic part of the target as noise",
    r"(w^{\top}x + b)^2 = C + 2b\,w^{\top}x + r(x),\ \ C = |w|^2 + b^2,\ \ \mathbb{E}[r(x)^2 \mid w] = 2|w|^4",
    conditions=(r"r(x_p) \text{ uncorrelated with the inputs at training points (error } O(1/d))",),
    reference=r"$r(x) = (w^{\top}x)^2 - |w|^2$ is orthogonal to constants and linear functions of $x$",
)
MEAN_GRAM = Rule(
    "leading order: meta-training Gram matrix by its mean",
    r"G = M\,\Theta(S,S)\,M^{\top} \to \mathbb{E}G = g_1 I + g_2 B + g_3 J",
    conditions=(r"m n_v \ll d",),
    reference=r"Bernacchia (ICLR 2021) for the linear model; $B$: ones within a task, $J$: all ones",
)
THREE_LEVEL_INVERSE = Rule(
    "inverse of a three-level matrix",
    r"(g_1 I + g_2 B + g_3 J)^{-1} = h_1 I + h_2 B + h_3 J",
    reference=r"eigenvalues $g_1$, $g_1 + n_v g_2$, $g_1 + n_v g_2 + m n_v g_3$ on nested subspaces",
)
LABEL_CHANNELS = Rule(
    "second moments of the labels",
    r"\mathbb{E}[\tilde y_p \tilde y_q \mid X] = \mu_C^2 + e_0 + \delta_{ij}v_C + "
    r"\big(\delta_{ij}\tfrac{4\beta^2\nu^2}{d} + \tfrac{e_1}{d}\big)x_p^{\top}x_q + \delta_{pq}\sigma_\xi^2",
    conditions=(r"p \in \text{task } i,\ q \in \text{task } j", r"\tilde y = y - f_0"),
)
EXCHANGEABLE = Rule(
    "sums over i.i.d. tasks",
    r"\mathbb{E}\sum_{i_1..i_K}\prod_k f_k(i_k) = \sum_{\text{partitions } P}(m)_{|P|}\,\mathbb{E}\prod_k f_k(\text{block of } k)",
    reference="symmaml.rmt.exchangeable",
)
ADAPT = Rule(
    "adaptation in the effective model",
    r"\Delta_r = \Delta^\star - \tfrac{\alpha_r}{n_r} D\,\tilde X_R^{\top}(\tilde X_R\Delta^\star + \xi_R),"
    r"\ \ \tilde X_R = [1, X_R],\ D = \operatorname{diag}(c_0, \tfrac{c_1}{d}I_d)",
    reference=r"$f_r = f^\star + \tfrac{\alpha_r}{n_r}\Theta(\cdot, R)(y_R - f^\star(R))$ with the effective kernel",
)
WICK = Rule("Gaussian average (Wick)", r"\mathbb{E}\prod\text{Gaussian entries} = \sum_{\text{pairings}}\prod\delta",
            reference="symmaml.rmt.expectation")
ALGEBRA = Rule("algebra", r"\text{collect the pieces}")


_LENGTH = {_1t: n_t, _1v: n_v, _1r: n_r}


def _ones_word_trace(word) -> sp.Expr | None:
    """tr of a product of ones vectors and their transposes: the product of the inner products."""
    args = word.args if isinstance(word, sp.MatMul) else (word,)
    value = sp.S.One
    for a in args:
        if isinstance(a, sp.Transpose) and a.arg in _LENGTH:
            value *= _LENGTH[a.arg]
        elif a in _LENGTH:
            continue
        elif a.is_number:
            value *= a
        else:
            return None
    return value


def _ones(e):
    """Evaluate the traces of words in the ones vectors (their only deterministic matrices here)."""
    if isinstance(e, sp.MatrixExpr) and e.shape == (1, 1):
        e = e[0, 0]
    if isinstance(e, sp.MatrixExpr):  # a matrix: its trace, term by term
        parts = []
        for term in (e.args if isinstance(e, sp.MatAdd) else (e,)):
            coeff, mats = term.as_coeff_matrices() if isinstance(term, sp.MatMul) else (sp.S.One, [term])
            word = mats[0] if len(mats) == 1 else sp.MatMul(*mats)
            if isinstance(word, sp.Identity):
                parts.append(coeff * word.shape[0])
            else:
                parts.append(coeff * sp.Trace(word))
        e = sp.Add(*parts)
    reps = {}
    for tr in e.atoms(sp.Trace):
        v = _ones_word_trace(tr.arg)
        if v is not None:
            reps[tr] = v
    e = e.xreplace(reps)
    if e.has(_1t, _1v, _1r):  # something else (should not happen): SymPy's own evaluation
        e = sp.expand(e.xreplace(_ONES).doit())
    return e


def _mul(*args):
    """An unevaluated matrix product (scalars allowed): building it costs no simplification."""
    return sp.MatMul(*args, evaluate=False)


def _add(*args):
    return sp.MatAdd(*args, evaluate=False)


class _Task:
    """One meta-training task's inputs and the effective-kernel objects built from them."""

    def __init__(self, k):
        a = _a
        self.X_T = gaussian_matrix(f"X_T{k}", n_t, d)
        self.X_V = gaussian_matrix(f"X_V{k}", n_v, d)
        self.W = _add(_mul(C0, _1v, _1t.T), _mul(C1 / d, self.X_V, self.X_T.T))          # Theta(V, T)
        self.M1 = _add(_1v, _mul(-a, self.W, _1t))                                       # M 1
        self.MX = _add(self.X_V, _mul(-a, self.W, self.X_T))                              # M X_S
        self.MMt = _add(sp.Identity(n_v), _mul(a**2, self.W, self.W.T))                  # M M^T
        self.pi = _mul(_1v.T, self.M1)                                                   # 1^T M 1
        self.q = _mul(self.MX.T, _1v)                                                    # X_S^T M^T 1
        self.x = _mul(self.MX.T, self.M1)                                                # X_S^T M^T M 1


@lru_cache(maxsize=None)
def _task(k) -> _Task:
    return _Task(k)


def _F(name, build, parity):
    return Factor(name, build, parity)


# per-task factors (parity in the task's Gaussian letters)
_n2 = _F("n2", lambda t: t.M1.T * t.M1, 0)
_pi = _F("pi", lambda t: t.pi, 0)
_pi2 = _F("pi2", lambda t: t.pi * t.pi, 0)
_q = _F("q", lambda t: t.q, 1)
_y = _F("y", lambda t: H1 * t.x + H2 * t.q * t.pi, 1)     # h1 x + h2 pi q


def _channels() -> dict:
    """The design averages of the meta-trained coefficients, as GroupSums (see the module docstring)."""
    Pi, Q = GroupSum.over(_pi), GroupSum.over(_q)
    lam1 = H1 * GroupSum.over(_n2) + H2 * GroupSum.over(_pi2) + H3 * (Pi @ Pi)          # Lambda 1 / c_0
    V = GroupSum.over(_y) + H3 * (Q @ Pi)                                               # sum_j R_j M1_j
    s = {
        "ell": lam1,
        # kappa*: c_0 r_i^T M_i with r_i = h1 M1_i + (h2 pi_i + h3 Pi) 1
        "k1": lam1 @ lam1,
        "k2": (GroupSum.over(_F("D2", lambda t: (H1 * t.M1.T * t.M1 + H2 * t.pi * t.pi) ** 2, 0))
               + 2 * H3 * (GroupSum.over(_F("Dp", lambda t: (H1 * t.M1.T * t.M1 + H2 * t.pi * t.pi) * t.pi, 0)) @ Pi)
               + H3**2 * (GroupSum.over(_pi2) @ Pi @ Pi)),
        "k3": (GroupSum.over(_F("|y|2", lambda t: (H1 * t.x + H2 * t.q * t.pi).T * (H1 * t.x + H2 * t.q * t.pi), 0))
               + 2 * H3 * (GroupSum.over(_F("y.q", lambda t: (H1 * t.x + H2 * t.q * t.pi).T * t.q, 0)) @ Pi)
               + H3**2 * (GroupSum.over(_F("|q|2", lambda t: t.q.T * t.q, 0)) @ Pi @ Pi)),
        "k4": V.T @ V,
        "k5": (GroupSum.over(_F("rMr", lambda t: (H1 * t.M1 + H2 * _1v * t.pi).T * t.MMt * (H1 * t.M1 + H2 * _1v * t.pi), 0))
               + 2 * H3 * (GroupSum.over(_F("1Mr", lambda t: _1v.T * t.MMt * (H1 * t.M1 + H2 * _1v * t.pi), 0)) @ Pi)
               + H3**2 * (GroupSum.over(_F("1M1", lambda t: _1v.T * t.MMt * _1v, 0)) @ Pi @ Pi)),
        # u*: (c_1/d) R_j M_j with R_j = h1 MX_j^T + (h2 q_j + h3 Q) 1^T
        "u1": V.T @ V,
        "u2": (GroupSum.over(_F("|y|2", lambda t: (H1 * t.x + H2 * t.q * t.pi).T * (H1 * t.x + H2 * t.q * t.pi), 0))
               + 2 * H3 * (GroupSum.over(_F("pi y", lambda t: t.pi * (H1 * t.x + H2 * t.q * t.pi).T, 1)) @ Q)
               + H3**2 * (GroupSum.over(_pi2) @ Q.T @ Q)),
        "u3": _frobenius_self(),
        "u4": _u4(),
        "u0": GroupSum.over(_F("trB", lambda t: sp.Trace(_B(t)), 0)) + H3 * (Q.T @ Q),
        "u5": (GroupSum.over(_F("RMR", lambda t: _rmr(t), 0))
               + 2 * H3 * (Q.T @ GroupSum.over(_F("z", lambda t: (H1 * t.MX.T + H2 * t.q * _1v.T) * t.MMt * _1v, 1)))
               + H3**2 * (GroupSum.over(_F("1M1", lambda t: _1v.T * t.MMt * _1v, 0)) @ Q.T @ Q)),
    }
    return s


def _B(t):
    return H1 * t.MX.T * t.MX + H2 * t.q * t.q.T   # h1 Y + h2 q q^T  (d x d, symmetric)


def _rmr(t):
    R = H1 * t.MX.T + H2 * t.q * _1v.T
    return sp.Trace(R * t.MMt * R.T)


def _frobenius_self():
    """sum_j ||B_j + h3 Q q_j^T||_F^2 = sum_j ||B_j||^2 + 2 h3 Q^T B_j q_j + h3^2 |Q|^2 |q_j|^2."""
    Q = GroupSum.over(_q)
    return (GroupSum.over(_F("|B|2", lambda t: sp.Trace(_B(t) * _B(t)), 0))
            + 2 * H3 * (Q.T @ GroupSum.over(_F("Bq", lambda t: _B(t) * t.q, 1)))
            + H3**2 * (GroupSum.over(_F("|q|2", lambda t: t.q.T * t.q, 0)) @ Q.T @ Q))


def _u4():
    """||sum_j B_j + h3 Q Q^T||_F^2 as trace GroupSums: tr(Z Z) with Z symmetric."""
    Q = GroupSum.over(_q)
    Bsum = GroupSum.over(_F("B", _B, 0))
    Z = Bsum + H3 * (Q @ Q.T)
    return Z @ Z


_CACHE: dict = {}  # built factors and averaged products, shared by the channels


def _expect(gs: GroupSum):
    return gs.expect(m, _task, _ones, cache=_CACHE)


def _mean_gram(dv: Derivation):
    """``E G``: its diagonal g_1 + g_2, same-task g_2, different-task g_3 entries; and h_1, h_2, h_3."""
    t, u = _Task("'"), _Task("''")
    block = C0 * t.M1 * t.M1.T + (C1 / d) * t.MX * t.MX.T + LAMBDA * t.MMt   # M_i Theta(S_i, S_i) M_i^T
    mean_block = expectation(block)
    tr_ = _ones(sp.Trace(mean_block).doit())
    sum_ = _ones(_1v.T * mean_block * _1v)
    # E G_ii = g_1 I + (g_2 + g_3) 1 1^T (the all-ones part J also covers the diagonal blocks):
    # trace n_v (g_1 + g_2 + g_3), sum of entries n_v g_1 + n_v^2 (g_2 + g_3)
    within = factor((sum_ - tr_) / (n_v * (n_v - 1)))
    g1 = factor(tr_ / n_v - within)
    dv.add(WICK, expect(sp.Symbol(r"G_{ii}")), g1 * sp.Symbol(r"I") + within * sp.Symbol(r"\mathbf{1}\mathbf{1}^{\top}"),
           lhs=sp.Symbol(r"\mathbb{E}\,G_{ii}"),
           note=r"$G_{ii} = c_0 M_i\mathbf{1}\mathbf{1}^{\top}M_i^{\top} + \tfrac{c_1}{d}M_iX_{S_i}X_{S_i}^{\top}M_i^{\top} + \lambda M_iM_i^{\top}$, "
                r"$M_i = [-\tfrac{\alpha_t}{n_t}\Theta(V_i, T_i),\ I]$")
    m1 = expectation(t.M1)
    m1_coeff = factor(_ones(_1v.T * m1) / n_v)
    g3 = factor(C0 * m1_coeff**2)
    g2 = factor(within - g3)
    dv.add(WICK, expect(sp.Symbol(r"G_{ij}")), g3 * sp.Symbol(r"\mathbf{1}\mathbf{1}^{\top}"), lhs=sp.Symbol(r"\mathbb{E}\,G_{ij}"),
           note=r"$i \ne j$: $\mathbb{E}[M_i\mathbf{1}] = %s\,\mathbf{1}$; the linear parts average to zero" % sp.latex(m1_coeff))
    h1 = 1 / ALPHA_G
    h2 = (1 / (ALPHA_G + n_v * BETA_G) - 1 / ALPHA_G) / n_v
    h3 = (1 / (ALPHA_G + n_v * BETA_G + m * n_v * GAMMA_G) - 1 / (ALPHA_G + n_v * BETA_G)) / (m * n_v)
    return [(ALPHA_G, g1), (BETA_G, g2), (GAMMA_G, g3), (H1, factor(h1)), (H2, factor(h2)), (H3, factor(h3))]



def _adaptation(dv: Derivation) -> tuple:
    """``E|Delta_r|^2 = q_c D_c + q_l D_l + q_0`` over the adaptation inputs and noise (exact)."""
    X_R = gaussian_matrix("X_R", n_r, d)
    xi = SIGMA_XI * gaussian_matrix("xi_R", n_r, 1)
    Dc, Dl = sp.MatrixSymbol(r"\Delta_c", 1, 1), sp.MatrixSymbol(r"\Delta_l", d, 1)
    c_r = alpha_r / n_r
    rc = Dc - c_r * C0 * (n_r * Dc + _1r.T * X_R * Dl + _1r.T * xi)
    rl = Dl - c_r * (C1 / d) * (X_R.T * _1r * Dc + X_R.T * X_R * Dl + X_R.T * xi)
    value = _ones(expectation(rc.T * rc + rl.T * rl))
    value = sp.expand(value.subs({sp.Trace(Dc.T * Dc): DELTA_C, sp.Trace(Dc * Dc.T): DELTA_C,
                                  sp.Trace(Dl.T * Dl): DELTA_L}).subs(Dc[0, 0]**2, DELTA_C))
    if value.has(Dc) or value.has(Dl):
        raise AssertionError(f"the adaptation average is not a function of |Delta_c|^2 and |Delta_l|^2: {value}")
    value = sp.collect(value, [DELTA_C, DELTA_L], factor)
    dv.add(WICK, expect(sp.Symbol(r"\lVert\Delta_r\rVert^2")), value, lhs=sp.Symbol(r"\mathbb{E}\lVert\Delta_r\rVert^2"),
           note=r"exact average over $X_R$ and $\xi_R$; the cross terms vanish by symmetry")
    return value


def _label_moments(dv: Derivation):
    """``mu_C = E C``, ``v_C = Var C`` and ``sigma_xi^2``, the noise variance at a training point (engine)."""
    g = gaussian_matrix("g_w", d, 1)
    b = gaussian_matrix("g_b", 1, 1)
    w2 = (nu**2 / d) * (g.T * g)
    C = w2 + beta**2 * (b * b)
    mu = factor(expectation(C))
    second = sp.expand(expectation(C * C))
    var = factor(second - mu**2)
    w4 = factor(expectation(w2 * w2))
    xi2 = sigma**2 + 2 * w4 + LAMBDA_SIGMA
    dv.add(WICK, expect(sp.Symbol("C")), mu, lhs=MU_C, note=r"$C = |w|^2 + b^2$, the task's constant")
    dv.add(WICK, expect(sp.Symbol(r"(C - \mu_C)^2")), var, lhs=VAR_C)
    dv.add(QUADRATIC_AS_NOISE, sp.Symbol(r"\sigma_\xi^2"), xi2, lhs=sp.Symbol(r"\sigma_\xi^2"),
           note=r"label noise, the quadratic residual $r$ ($\mathbb{E}|w|^4 = %s$) and the initial function's rest $\epsilon$" % sp.latex(w4))
    return [(MU_C, mu), (VAR_C, var), (SIGMA_XI, sp.sqrt(xi2))], 2 * w4


@lru_cache(maxsize=None)
def derive_leading():
    """``(expr, derivation, definitions)``: the leading-order average test loss in the kernel limit."""
    dv = Derivation(
        "Average test loss of one-step MAML on a wide two-layer ReLU network (kernel limit)",
        order="leading order (effective kernels; meta-training Gram matrix replaced by its mean)",
        regime="m n_v < d",
        assumptions=(r"k \to \infty \text{ (kernel regime)}", r"m n_v < d",
                     r"\theta^\star = \text{the meta-loss minimiser closest to } \theta_0"),
    )
    eff, eff_dv = derive_effective_kernels()
    dv.extend(eff_dv)
    defs = list(eff)
    labels, w4x2 = _label_moments(dv)
    defs += labels
    rest = w4x2 + LAMBDA_SIGMA
    dv.add(ORTHOGONAL, sp.Symbol(r"\mathbb{E}_x(g - f_r)^2"),
           sp.Symbol(r"\Delta_{r,c}^2 + \lVert\Delta_{r,l}\rVert^2") + rest,
           note=r"$g - f_r = \Delta_{r,c} + \Delta_{r,l}^{\top}x + r(x) - \epsilon(x)$: constant, linear and rest")
    adapt = _adaptation(dv)
    defs += _mean_gram(dv)
    dv.add(MEAN_GRAM, sp.Symbol("G"), ALPHA_G * sp.Symbol("I") + BETA_G * sp.Symbol("B") + GAMMA_G * sp.Symbol("J"))
    dv.add(THREE_LEVEL_INVERSE, sp.Symbol(r"(\mathbb{E}G)^{-1}"), H1 * sp.Symbol("I") + H2 * sp.Symbol("B") + H3 * sp.Symbol("J"))
    channels = _channels()
    names = [("ell", LAM1)] + [(f"k{k}", KAPPA[k - 1]) for k in range(1, 6)] + [("u0", TRACE_U)] + \
            [(f"u{k}", UPS[k - 1]) for k in range(1, 6)]
    for key, sym in names:
        value = sp.expand(_expect(channels[key]))
        defs.append((sym, value))
        dv.add(EXCHANGEABLE, sym, value, note=f"design average ({key})")
    dv.add(LABEL_CHANNELS, sp.Symbol(r"\mathbb{E}\,\kappa^{\star 2}"),
           C0**2 * ((MU_C**2 + E0) * KAPPA[0] + VAR_C * KAPPA[1] + 4 * beta**2 * nu**2 / d * KAPPA[2]
                    + E1 / d * KAPPA[3] + SIGMA_XI**2 * KAPPA[4]))
    kappa2 = C0**2 * ((MU_C**2 + E0) * KAPPA[0] + VAR_C * KAPPA[1] + 4 * beta**2 * nu**2 / d * KAPPA[2]
                      + E1 / d * KAPPA[3] + SIGMA_XI**2 * KAPPA[4])
    u2 = (C1 / d)**2 * ((MU_C**2 + E0) * UPS[0] + VAR_C * UPS[1] + 4 * beta**2 * nu**2 / d * UPS[2]
                        + E1 / d * UPS[3] + SIGMA_XI**2 * UPS[4])
    Dc = MU_C**2 + VAR_C + E0 - 2 * (MU_C**2 + E0) * C0 * LAM1 + kappa2
    Dl = 4 * beta**2 * nu**2 + E1 + u2 - 2 * (E1 / d) * (C1 / d) * TRACE_U
    defs += [(DELTA_C, Dc), (DELTA_L, Dl)]
    dv.add(ALGEBRA, sp.Symbol(r"\mathbb{E}\Delta_c^{\star 2}"), Dc, lhs=DELTA_C)
    dv.add(ALGEBRA, sp.Symbol(r"\mathbb{E}\lVert\Delta_l^\star\rVert^2"), Dl, lhs=DELTA_L)
    result = (sigma**2 + rest + adapt) / 2
    dv.add(ALGEBRA, sp.Symbol(r"\overline{\mathcal{L}}_{\mathrm{test}}"), result)
    dv.result = result
    return result, dv, tuple(defs)


def average_test_loss(order: str = "leading") -> Result:
    """The average test loss of one-step MAML on the wide two-layer ReLU network, in its kernel limit.

    ``order='leading'``: see the module docstring.  Holds for ``m n_v < d``.  The numeric function
    takes ``d, m, n_t, n_v, n_r, alpha_t, alpha_r, sigma, nu, beta``.  Derived on first call (about a
    minute) and kept in the process and in the persistent cache (:mod:`symmaml.cache`).
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)} (derived so far), got {order!r}")
    return _average_test_loss(order)


@lru_cache(maxsize=None)
@cache.persistent
def _average_test_loss(order: str) -> Result:
    expr, dv, defs = derive_leading()
    return Result(expr=expr, derivation=dv, regime="kernel", order=order,
                  conditions=(sp.StrictLessThan(m * n_v, d),), definitions=defs, parameter_set=NONLINEAR,
                  name="average test loss (two-layer ReLU network, kernel limit)")
