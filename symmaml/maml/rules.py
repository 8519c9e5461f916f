"""The rules the MAML derivations apply, as data (name, LaTeX statement, conditions, reference)."""
from ..derivation import Rule

MATRIX_CALCULUS = Rule(
    "matrix calculus",
    r"\nabla_\theta \tfrac{1}{2n}\lVert y - X\theta\rVert^2 = -\tfrac{1}{n}X^{\top}(y - X\theta)",
    reference="SymPy matrix derivative of the loss",
)
DATA_MODEL = Rule(
    "data model",
    r"y = Xw + \sigma z,\quad w = w_0 + \tfrac{\nu}{\sqrt p}\,g,\quad x,z,g \text{ standard Gaussian}",
    reference="shared/spec/model.md",
)
LINEAR_IN_OMEGA = Rule(
    "residual linear in $\\omega$",
    r"r_i(\omega) = e_i - Z_i(\omega - w_0),\quad Z_i = X_v^{(i)}A_i,\ A_i = I - \tfrac{\alpha_t}{n_t}X_t^{(i)\top}X_t^{(i)}",
    reference=r"checked by expanding $r_i(\omega) - r_i(w_0) + Z_i(\omega - w_0)$ to zero",
)
LINEAR_IN_OMEGA_STEPS = Rule(
    "residual linear in $\\omega$ ($k_t$ steps)",
    r"r_i(\omega) = e_i - Z_i(\omega - w_0),\quad Z_i = X_v^{(i)}A_i^{k_t},\ A_i = I - \tfrac{\alpha_t}{n_t}X_t^{(i)\top}X_t^{(i)}",
    reference=(r"$k_t$ steps on the same support set: $\theta - w \mapsto A_i(\theta - w) + \ldots$ each step; checked by "
               r"expanding $r_i(\omega) - r_i(w_0) + Z_i(\omega - w_0)$ to zero"),
)
MIN_DISTANCE_SOLUTION = Rule(
    "minimiser closest to $\\omega_0$",
    r"\omega^\star = \omega_0 + Z^{\top}(ZZ^{\top})^{-1}(b - Z\omega_0)",
    conditions=(r"p > m n_v", r"\operatorname{rank} Z = m n_v"),
    reference=r"gradient descent from $\omega_0$ stays in $\omega_0 + \mathrm{row}(Z)$ and converges to the interpolating point there",
)
NORMAL_EQUATIONS = Rule(
    "unique minimiser",
    r"\omega^\star = (Z^{\top}Z)^{-1}Z^{\top}b",
    conditions=(r"p < m n_v", r"\operatorname{rank} Z = p"),
    reference="normal equations of the quadratic meta-loss",
)
ALGEBRA = Rule(
    "matrix algebra",
    r"(ZZ^{\top})^{-1}ZZ^{\top} = I,\ \ b = e + Zw_0",
    reference="SymPy expansion and simplification of the matrix expression",
)
TRACE_TRICK = Rule(
    "trace of a quadratic form",
    r"e^{\top}Me = \operatorname{tr}(M\, e e^{\top})",
)
CONDITIONAL_AVERAGE = Rule(
    "average over task offsets and label noise",
    r"\mathbb{E}[e e^{\top}\mid X] = C = \operatorname{blockdiag}(C_1,\dots,C_m)",
    conditions=(r"g_i, z_i \text{ independent of the designs, zero mean}",),
    reference=r"Wick contraction over $g, z_t, z_v$ with the designs held fixed (symmaml.rmt)",
)
EXCHANGEABILITY = Rule(
    "exchangeable tasks",
    r"\mathbb{E}\sum_{i,j} f(i,j) = m\,\mathbb{E} f(1,1) + m(m-1)\,\mathbb{E} f(1,2)",
    conditions=(r"\text{tasks i.i.d.}",),
)
LEADING_ORDER_GRAM_OVER = Rule(
    "leading order: Gram matrix by its mean",
    r"\mathbb{E}\operatorname{tr}(G^{-1}C) \approx \operatorname{tr}\big((\mathbb{E}G)^{-1}\,\mathbb{E}C\big),\quad G = ZZ^{\top}",
    conditions=(r"p > m n_v",),
    reference=r"Bernacchia (ICLR 2021), leading order in $1/p$: fluctuations of $G$ dropped",
)
LEADING_ORDER_GRAM_UNDER = Rule(
    "leading order: Gram matrix by its mean",
    r"\mathbb{E}[u^{\top}S^{-2}u] \approx \mathbb{E}[u^{\top}(\mathbb{E}S)^{-2}u],\quad S = Z^{\top}Z,\ u = Z^{\top}e",
    conditions=(r"p < m n_v",),
    reference=r"Bernacchia (ICLR 2021), leading order in $1/p$: fluctuations of $S$ dropped",
)
LEADING_ORDER_GRAM_OVER_SIGMA = Rule(
    "leading order: Gram matrices by their means",
    r"G \to \mathbb{E}G = g\,I,\quad ZMZ^{\top} \to \mathbb{E}[ZMZ^{\top}] = h\,I,\quad G = ZZ^{\top}",
    conditions=(r"p > m n_v",),
    reference=(r"Bernacchia (ICLR 2021)'s approximation, applied to every Gram-type matrix the anisotropic error "
               r"holds: fluctuations of $G$ and $ZMZ^{\top}$ dropped; at $\Sigma = I$, $M = cI$ and it is the paper's"),
)
LEADING_ORDER_GRAM_UNDER_SIGMA = Rule(
    "leading order: Gram matrix by its mean",
    r"\mathbb{E}[u^{\top}S^{-1}MS^{-1}u] \approx \mathbb{E}[u^{\top}(\mathbb{E}S)^{-1}M(\mathbb{E}S)^{-1}u],\quad S = Z^{\top}Z,\ u = Z^{\top}e",
    conditions=(r"p < m n_v",),
    reference=r"Bernacchia (ICLR 2021), leading order in $1/p$: fluctuations of $S$ dropped; $\mathbb{E}S$ is a function of $\Sigma$",
)
ISOTROPIC_START = Rule(
    "initialisation in a random direction",
    r"\mathbb{E}[\delta_0\delta_0^{\top}] = \tfrac{\lVert\omega_0 - w_0\rVert^2}{p}\,I,\quad \delta_0 = \omega_0 - w_0",
    conditions=(r"\delta_0 \text{ in a uniformly random direction, independent of the data}",),
    reference=(r"with anisotropic inputs the loss depends on the direction of $\omega_0 - w_0$ relative to $\Sigma$; "
               r"the result is its average over directions (exact when $\omega_0 = w_0$)"),
)
PROJECTION = Rule(
    "rotational invariance of the projection",
    r"\mathbb{E}[Z^{\top}(ZZ^{\top})^{-1}Z] = \tfrac{m n_v}{p} I_p",
    conditions=(r"p > m n_v", r"Z \overset{d}{=} ZO\ \forall O \in O(p)"),
    reference=r"$X_t, X_v \mapsto X_tO, X_vO$ maps $Z$ to $ZO$; the expectation commutes with rotations and has trace $m n_v$",
)
WICK = Rule(
    "Gaussian average (Wick)",
    r"\mathbb{E}\prod \text{Gaussian entries} = \sum_{\text{pairings}}\prod\delta",
    reference="symmaml.rmt.expectation: exact, by recursive Wick contraction",
)
ADAPTATION = Rule(
    "meta-test adaptation",
    r"\theta_r = \omega^\star - \alpha_r\nabla L(\omega^\star; D_r),\quad \mathcal{L}_{\mathrm{test}} = \tfrac12(\sigma^2 + \lVert w - \theta_r\rVert^2)",
    reference="shared/spec/model.md",
)
INDEPENDENCE = Rule(
    "independence of meta-training and meta-test",
    r"\mathbb{E}\,f(\omega^\star, D_r, w) = \mathbb{E}_{\omega^\star}\big[\mathbb{E}_{D_r, w} f\big]",
    reference=r"$\omega^\star$ depends on the meta-training data only",
)
SUBSTITUTE = Rule("substitution", r"\text{insert the averaged meta-training error}")

#: the meta-training solution each regime assumes, as stated in the theorems
SOLUTION_OVER = r"\omega^\star = \text{the meta-loss minimiser closest to } \omega_0"
SOLUTION_UNDER = r"\omega^\star = \text{the unique meta-loss minimiser}"
