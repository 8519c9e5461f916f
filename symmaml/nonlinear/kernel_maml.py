"""One-step MAML on the linearised network, derived in kernel blocks (exact in the kernel regime).

Linearised around its initialisation, the network is ``f(x) = f0(x) + phi(x).delta`` with features
``phi = grad_theta f(.; theta_0)`` and ``delta = theta - theta_0``: the linear model of the paper with
labels ``ytilde = y - f0`` (the initial function is part of the model, not subtracted from it).  The
derivation differentiates the loss with SymPy (the inner step is the linear model's, iterated from
its differentiated form), checks that each task's query residual is affine in ``delta``, solves the
meta-training problem for the solution closest to ``theta_0``, adapts, and then replaces every
product of feature matrices ``Phi_A Phi_B^T`` by the kernel block ``Theta(A, B)``: the result holds
for any kernel and initial function, and involves no P x P matrix.  :func:`kernel_form` returns it,
``symmaml.nonlinear.ntk_sim.kernel_predictions`` evaluates it numerically.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ..derivation import Derivation, Rule
from ..maml.model import inner_step
from ..maml.rules import MIN_DISTANCE_SOLUTION
from ..symbols import alpha_r, alpha_t, n_r, n_t, n_v

__all__ = ["kernel_form", "derive_kernel_form", "KERNEL_TRICK", "LINEARISATION", "feature", "kernel"]

_P = sp.Symbol("P", integer=True, positive=True)   # number of parameters (never appears in the result)
_N = sp.Symbol("N", integer=True, positive=True)   # training points of all tasks, m (n_t + n_v)
_Nv = sp.Symbol("N_v", integer=True, positive=True)  # query points of all tasks, m n_v

LINEARISATION = Rule(
    "linearisation around the initialisation",
    r"f(x;\theta) = f(x;\theta_0) + \phi(x)^{\top}(\theta - \theta_0),\quad \phi(x) = \nabla_\theta f(x;\theta_0)",
    conditions=(r"\text{kernel regime: width } k \to \infty \text{ (NTK parameterisation)}",),
    reference="Jacot et al. (2018); Lee et al. (NeurIPS 2019): wide networks train as their linearisation",
)
KERNEL_TRICK = Rule(
    "kernel blocks",
    r"\Phi_A\Phi_B^{\top} = \Theta(A, B),\quad \Phi_A = \big[\phi(x)^{\top}\big]_{x \in A}",
    reference=r"every product of two feature matrices is a block of the tangent kernel",
)
STACK = Rule(
    "stacking the tasks",
    r"Z = \operatorname{blockdiag}(M_i)\,\Phi_S,\ \ e = \operatorname{blockdiag}(M_i)\,\tilde y_S,"
    r"\ \ ZZ^{\top} = M\,\Theta(S, S)\,M^{\top} =: G",
    reference="the meta-loss is the sum of the tasks' squared query residuals",
)
LINEAR_IN_DELTA = Rule(
    "query residual affine in the meta-parameters",
    r"r_i(\delta) = e_i - Z_i\delta,\quad Z_i = M_i\Phi_{S_i},\ e_i = M_i\tilde y_{S_i},\ "
    r"M_i = \big[-\tfrac{\alpha_t}{n_t}\Theta(V_i, T_i),\ I\big]",
    reference=r"checked by expanding $r_i(\delta) - r_i(0) + Z_i\delta$ to zero",
)
ADAPTATION = Rule(
    "adaptation step",
    r"\delta_r = \delta^\star - \alpha_r\nabla_\delta L(\delta^\star; D_r)",
    reference="shared/spec/model.md",
)
TEST_LOSS = Rule(
    "population test loss",
    r"\mathcal{L}_{\mathrm{test}} = \tfrac12\big(\sigma^2 + \mathbb{E}_x(g(x) - f_r(x))^2\big),\ \ g(x) = (w^{\top}x + b)^2",
    reference="shared/spec/model.md (nonlinear regression)",
)
ALGEBRA = Rule("matrix algebra", r"\text{expand and regroup}", reference="SymPy")


def feature(name, rows):
    """The feature matrix ``Phi_A`` (rows x P) of a point set A."""
    return sp.MatrixSymbol(rf"\Phi_{{{name}}}", rows, _P)


def kernel(a: str, b: str, rows, cols):
    """The kernel block ``Theta(A, B)``."""
    return sp.MatrixSymbol(rf"\Theta_{{{a}{b}}}", rows, cols)


def _kernel_trick(expr, blocks: dict):
    """Replace each adjacent ``Phi_A * Phi_B.T`` in the products of ``expr`` by ``Theta(A, B)``."""
    def rewrite(e):
        if isinstance(e, sp.MatMul):
            args = list(e.args)
            out, i = [], 0
            while i < len(args):
                a = args[i]
                if i + 1 < len(args) and isinstance(args[i + 1], sp.Transpose) and (a, args[i + 1].arg) in blocks:
                    out.append(blocks[(a, args[i + 1].arg)])
                    i += 2
                    continue
                out.append(a)
                i += 1
            return sp.MatMul(*out).doit() if len(out) != len(args) else e
        if isinstance(e, (sp.MatAdd, sp.Add)):
            return type(e)(*(rewrite(a) for a in e.args))
        return e
    new = rewrite(expr)
    if new != expr:
        new = _kernel_trick(new, blocks)
    return new


@lru_cache(maxsize=None)
def derive_kernel_form() -> tuple[dict, Derivation]:
    """``({'Z_i', 'e_i', 'M_i', 'prediction', ...}, derivation)``."""
    dv = Derivation("One-step MAML on the linearised network, in kernel form",
                    order="exact (kernel regime)", regime="any",
                    assumptions=(r"\text{network linearised at } \theta_0",
                                 r"\theta^\star = \text{the meta-loss minimiser closest to } \theta_0"))
    delta = sp.MatrixSymbol(r"\delta", _P, 1)
    Phi_T, Phi_V = feature("T_i", n_t), feature("V_i", n_v)
    y_T, y_V = sp.MatrixSymbol(r"\tilde y_{T_i}", n_t, 1), sp.MatrixSymbol(r"\tilde y_{V_i}", n_v, 1)
    dv.add(LINEARISATION, sp.Symbol(r"f(x;\theta)"), sp.Symbol(r"f_0(x) + \phi(x)^{\top}\delta"),
           note=r"$\delta = \theta - \theta_0$; on a set $A$ the labels enter as $\tilde y_A = y_A - f_0(A)$")

    # the inner step of the linear model, differentiated by SymPy
    adapted = inner_step(delta, Phi_T, y_T, alpha_t, n_t)
    dv.add(ADAPTATION, sp.Symbol(r"\delta_i"), adapted, note=r"the inner step on the support set $T_i$ (rate $\alpha_t$)")
    residual = (y_V - Phi_V * adapted).expand()
    a = alpha_t / n_t
    e_i = y_V - a * Phi_V * Phi_T.T * y_T
    Z_i = Phi_V - a * Phi_V * Phi_T.T * Phi_T
    check = sp.expand(residual - (e_i - Z_i * delta))
    if check not in (0, sp.ZeroMatrix(n_v, 1)):
        raise AssertionError(f"the query residual is not affine in delta: remainder {check}")
    dv.add(LINEAR_IN_DELTA, sp.Symbol(r"r_i(\delta)"), e_i - Z_i * delta,
           note="the expanded difference is the zero matrix (checked by the engine)")
    blocks = {(Phi_V, Phi_T): kernel("V_i", "T_i", n_v, n_t)}
    Z_k, e_k = _kernel_trick(Z_i, blocks), _kernel_trick(e_i, blocks)
    dv.add(KERNEL_TRICK, Z_i, Z_k, lhs=sp.Symbol("Z_i"))
    dv.add(KERNEL_TRICK, e_i, e_k, lhs=sp.Symbol("e_i"))

    # all tasks stacked: Z = M Phi_S, e = M ytilde_S; the solution closest to theta_0
    Phi_S, Phi_R = feature("S", _N), feature("R", n_r)
    phi_x = feature("x", 1)
    M = sp.MatrixSymbol("M", _Nv, _N)
    y_S, y_R = sp.MatrixSymbol(r"\tilde y_S", _N, 1), sp.MatrixSymbol(r"\tilde y_R", n_r, 1)
    Z, e = M * Phi_S, M * y_S
    G = sp.MatrixSymbol("G", _Nv, _Nv)
    dv.add(STACK, Z * Z.T, _kernel_trick(Z * Z.T, {(Phi_S, Phi_S): kernel("S", "S", _N, _N)}), lhs=G)
    delta_star = Z.T * G.I * e                     # omega0 = theta_0, i.e. delta_0 = 0
    dv.add(MIN_DISTANCE_SOLUTION, sp.Symbol(r"\arg\min_\delta \lVert e - Z\delta\rVert^2"), delta_star,
           lhs=sp.Symbol(r"\delta^\star"), note=r"the initialisation is $\delta = 0$; $ZZ^{\top} = G$")

    # adaptation on R, then the prediction at a test point x
    delta_r = inner_step(delta_star, Phi_R, y_R, alpha_r, n_r)
    dv.add(ADAPTATION, sp.Symbol(r"\delta_r"), delta_r)
    pred = (phi_x * delta_r).expand()
    blocks = {(phi_x, Phi_S): kernel("x", "S", 1, _N), (phi_x, Phi_R): kernel("x", "R", 1, n_r),
              (Phi_R, Phi_S): kernel("R", "S", n_r, _N)}
    pred_k = _kernel_trick(pred, blocks)
    if pred_k.has(_P):
        raise AssertionError(f"the prediction still involves the features: {pred_k}")
    beta_ = M.T * G.I * M * y_S
    expected = kernel("x", "S", 1, _N) * beta_ + (alpha_r / n_r) * kernel("x", "R", 1, n_r) * (
        y_R - kernel("R", "S", n_r, _N) * beta_)
    if sp.expand(pred_k - expected) not in (0, sp.ZeroMatrix(1, 1)):
        raise AssertionError(f"unexpected kernel form of the prediction: {pred_k}")
    dv.add(KERNEL_TRICK, sp.Symbol(r"\phi(x)^{\top}\delta_r"), pred_k, lhs=sp.Symbol(r"f_r(x) - f_0(x)"),
           note=r"no $P\times P$ matrix is left: only kernel blocks between point sets")
    dv.add(ALGEBRA, pred_k, expected, lhs=sp.Symbol(r"f_r(x) - f_0(x)"),
           note=r"with $\beta = M^{\top}G^{-1}M\tilde y_S$ the meta-trained coefficients")
    dv.add(TEST_LOSS, sp.Symbol(r"\mathcal{L}_{\mathrm{test}}"),
           sp.Symbol(r"\tfrac12\big(\sigma^2 + \mathbb{E}_x(g(x) - f_0(x) - \Theta(x,S)\beta - "
                     r"\tfrac{\alpha_r}{n_r}\Theta(x,R)(\tilde y_R - \Theta(R,S)\beta))^2\big)"))
    dv.result = expected
    return dict(Z_i=Z_k, e_i=e_k, prediction=expected, M=M, G=G, y_S=y_S, y_R=y_R,
                K_xS=kernel("x", "S", 1, _N), K_xR=kernel("x", "R", 1, n_r), K_RS=kernel("R", "S", n_r, _N)), dv


def kernel_form():
    """The prediction ``f_r(x) - f0(x)`` of one-step MAML in kernel blocks (a SymPy matrix expression)."""
    return derive_kernel_form()[0]["prediction"]
