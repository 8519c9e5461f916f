"""The infinite-width kernels of the two-layer ReLU network, derived as Gaussian expectations.

For ``f(x; theta) = (1/sqrt(k)) sum_j a_j relu(u_j.x/sqrt(d) + c_j)`` with ``a_j, c_j ~ N(0, 1)`` and
``u_j ~ N(0, I_d)`` (NTK parameterisation), :func:`derive_kernels` differentiates one neuron with SymPy,
takes the width to infinity (law of large numbers), computes the pre-activation covariance
``q(x, x') = x.x'/d + 1`` with the Gaussian engine (:mod:`symmaml.rmt`) and integrates the ReLU
products in polar coordinates.  The results are the arc-cosine kernels of degree 1 (the covariance
``Sigma`` of the initial function, the NNGP) and degree 0 (in the tangent kernel ``Theta``):

    Sigma  = sqrt(q11 q22) kappa_1(vartheta),      Theta = Sigma + q12 kappa_0(vartheta),
    cos vartheta = q12 / sqrt(q11 q22).

:func:`ntk` and :func:`nngp` are these expressions compiled to NumPy (``lambdify``), for point sets
of shapes ``(n1, d)`` and ``(n2, d)``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

from ..derivation import Derivation
from ..rmt import expect, expectation, gaussian_matrix
from ..symbols import d
from .rules import (
    CHAIN_RULE, GAUSSIAN_PREACTIVATIONS, HOMOGENEITY, INITIAL_COVARIANCE, INTEGRATE, LARGE_WIDTH, NETWORK,
    POLAR, SUPPORT, SUBSTITUTE, TANGENT_KERNEL,
)

__all__ = ["derive_kernels", "kernel_expressions", "ntk", "nngp", "kernel_blocks", "Q11", "Q22", "Q12", "VARTHETA"]

#: the pre-activation covariances E h(x)^2, E h(x')^2, E h(x)h(x') and the angle between them
Q11 = sp.Symbol("q_11", positive=True)
Q22 = sp.Symbol("q_22", positive=True)
Q12 = sp.Symbol("q_12", real=True)
VARTHETA = sp.Symbol("vartheta", nonnegative=True)

_a = sp.Symbol("a", real=True)
_c = sp.Symbol("c", real=True)
_h, _h2 = sp.Symbol("h", real=True), sp.Symbol("h'", real=True)
_r = sp.Symbol("r", nonnegative=True)
_psi = sp.Symbol("psi", real=True)


def _relu(z):
    return sp.Max(0, z)


@lru_cache(maxsize=None)
def derive_kernels() -> tuple[dict, Derivation]:
    """``({'ntk': Theta, 'nngp': Sigma, 'vartheta': acos(...)}, derivation)`` in ``q11, q22, q12, vartheta``."""
    dv = Derivation(
        "Infinite-width kernels of the two-layer ReLU network",
        order="exact in the limit of infinite width k",
        regime="any d",
        assumptions=(r"k \to \infty", r"\text{NTK parameterisation}"),
    )
    x, x2 = sp.MatrixSymbol("x", d, 1), sp.MatrixSymbol("x'", d, 1)
    u, c = gaussian_matrix("u", d, 1), gaussian_matrix("c", 1, 1)
    a = gaussian_matrix("a", 1, 1)

    neuron = _a * _relu(_h)
    dv.add(NETWORK, sp.Symbol(r"\sqrt{k}\,f_j(x)"), neuron, lhs=sp.Symbol(r"\sqrt{k}\,f_j(x)"),
           note=r"one neuron, written through its pre-activation $h = h_j(x)$")

    # gradients of one neuron: the output weight directly, the rest through h
    d_a = sp.diff(neuron, _a)
    d_h = sp.diff(neuron, _h)
    pre = u.T * x / sp.sqrt(d)
    d_u = pre.diff(u)
    d_c = sp.diff(_h, _h)  # h depends on c with coefficient 1
    dv.add(CHAIN_RULE, sp.Symbol(r"\partial_{a_j}\sqrt{k}f_j"), d_a)
    dv.add(CHAIN_RULE, sp.Symbol(r"\partial_{h}\sqrt{k}f_j"), d_h)
    dv.add(CHAIN_RULE, sp.Symbol(r"\partial_{u_j} h_j(x)"), d_u, note=r"matrix calculus on $u^{\top}x/\sqrt d$")
    dv.add(CHAIN_RULE, sp.Symbol(r"\partial_{c_j} h_j(x)"), d_c)

    # the tangent kernel of one neuron: sum over its parameters of products of gradients
    inner_u = (d_u.T * d_u.subs(x, x2))  # x^T x' / d
    inner_u = sp.Trace(inner_u).doit() if isinstance(inner_u, sp.MatrixExpr) else inner_u
    per_neuron = (d_a * d_a.subs(_h, _h2)
                  + d_h * d_h.subs(_h, _h2) * (inner_u + d_c**2))
    dv.add(TANGENT_KERNEL, sp.Symbol(r"k\,\Theta_j(x,x')"), per_neuron,
           note=r"$a_j$, then $u_j$ and $c_j$ through $h$; $h' = h_j(x')$")

    # infinite width: averages over one neuron's parameters; a is independent of (u, c)
    a_sq = expectation(a.T * a)
    q12 = expectation((pre + c) * (u.T * x2 / sp.sqrt(d) + c).T)
    q11 = q12.subs(x2, x)
    dv.add(GAUSSIAN_PREACTIVATIONS, expect((pre + c) * (u.T * x2 / sp.sqrt(d) + c).T), q12, lhs=Q12)
    dv.add(GAUSSIAN_PREACTIVATIONS, expect((pre + c) * (pre + c).T), q11, lhs=Q11)
    E_relu = sp.Symbol(r"\mathbb{E}[\phi(h)\phi(h')]")
    E_step = sp.Symbol(r"\mathbb{E}[\phi'(h)\phi'(h')]")
    theta_lln = E_relu + a_sq * E_step * Q12
    dv.add(LARGE_WIDTH, sp.Symbol(r"\Theta(x,x')"), theta_lln,
           note=r"$\mathbb{E}a^2 = %s$ (engine); $\phi'$ is the Heaviside step" % sp.latex(a_sq))
    sigma_lln = a_sq * E_relu
    dv.add(INITIAL_COVARIANCE, sp.Symbol(r"\Sigma(x,x')"), sigma_lln,
           note=r"$f(x;\theta_0) = \tfrac1{\sqrt k}\sum_j a_j\phi(h_j(x))$, neurons independent, $\mathbb{E}a_j = 0$")

    # unit variances and the angle
    kappa1_s, kappa0_s = sp.Symbol(r"\kappa_1(\vartheta)"), sp.Symbol(r"\kappa_0(\vartheta)")
    dv.add(HOMOGENEITY, E_relu, sp.sqrt(Q11 * Q22) * kappa1_s,
           note=r"$\kappa_1(\vartheta) = \mathbb{E}[\phi(g_1)\phi(g_1\cos\vartheta + g_2\sin\vartheta)]$")
    dv.add(HOMOGENEITY, E_step, kappa0_s,
           note=r"$\kappa_0(\vartheta) = \mathbb{E}[\phi'(g_1)\phi'(g_1\cos\vartheta + g_2\sin\vartheta)]$")

    # polar coordinates: the products are r^n times angular factors, nonzero on the support
    density = _r * sp.exp(-_r**2 / 2) / (2 * sp.pi)
    g1, g2 = _r * sp.cos(_psi), _r * sp.cos(_psi - VARTHETA)
    lo, hi = VARTHETA - sp.pi / 2, sp.pi / 2
    integrand1 = sp.expand(g1 * g2 * density)   # phi(g1) phi(g2) on the support
    integrand0 = density                        # phi'(g1) phi'(g2) = 1 on the support
    dv.add(POLAR, kappa1_s, sp.Integral(integrand1, (_psi, lo, hi), (_r, 0, sp.oo)),
           note=r"on the support both ReLUs are the identity")
    dv.add(SUPPORT, kappa0_s, sp.Integral(integrand0, (_psi, lo, hi), (_r, 0, sp.oo)),
           note=r"on the support both steps are 1")
    kappa1 = _integrate(integrand1, lo, hi)
    kappa0 = _integrate(integrand0, lo, hi)
    dv.add(INTEGRATE, sp.Integral(integrand1, (_psi, lo, hi), (_r, 0, sp.oo)), kappa1, lhs=kappa1_s)
    dv.add(INTEGRATE, sp.Integral(integrand0, (_psi, lo, hi), (_r, 0, sp.oo)), kappa0, lhs=kappa0_s)

    sigma = sp.sqrt(Q11 * Q22) * kappa1
    theta = sigma + Q12 * kappa0
    dv.add(SUBSTITUTE, sigma_lln, sigma, lhs=sp.Symbol(r"\Sigma(x,x')"))
    dv.add(SUBSTITUTE, theta_lln, theta, lhs=sp.Symbol(r"\Theta(x,x')"),
           note=r"with $\cos\vartheta = q_{12}/\sqrt{q_{11}q_{22}}$, $q_{12} = %s$" % sp.latex(q12))
    dv.result = theta
    angle = sp.acos(Q12 / sp.sqrt(Q11 * Q22))
    return {"ntk": theta, "nngp": sigma, "vartheta": angle, "q12": q12, "q11": q11}, dv


def _integrate(integrand, lo, hi) -> sp.Expr:
    """The radial integral, then the angular one, by SymPy; trigonometric terms collected."""
    radial = sp.integrate(integrand, (_r, 0, sp.oo))
    angular = sp.integrate(radial, (_psi, lo, hi))
    return sp.collect(sp.expand(sp.expand_trig(angular)), [sp.cos(VARTHETA), sp.sin(VARTHETA)], sp.factor)


def kernel_expressions() -> dict:
    """The derived kernels (SymPy) in ``q11, q22, q12`` and ``vartheta``."""
    return derive_kernels()[0]


#: ``sqrt(q11 q22) sin(vartheta) = sqrt(q11 q22 - q12^2)`` (``0 <= vartheta <= pi``)
_ROOT = sp.Symbol("s", nonnegative=True)


def compiled_form() -> dict:
    """The derived kernels rewritten exactly in ``(q12, s, vartheta)``, ``s = sqrt(q11) sqrt(q22) sin(vartheta)``.

    ``sqrt(q11) sqrt(q22) cos(vartheta) = q12`` (the definition of the angle) and ``sin(vartheta) =
    s / (sqrt(q11) sqrt(q22))`` are substituted and the result multiplied out: the factors
    ``sqrt(q11) sqrt(q22)`` cancel, so an entry costs one square root (for ``s``) and one ``arccos``.
    """
    exprs = kernel_expressions()
    norm = sp.sqrt(Q11) * sp.sqrt(Q22)
    trig = {sp.cos(VARTHETA): Q12 / norm, sp.sin(VARTHETA): _ROOT / norm}
    out = {}
    for name in ("ntk", "nngp"):
        form = sp.expand(exprs[name].xreplace(trig))
        if not form.free_symbols <= {Q12, _ROOT, VARTHETA}:
            raise AssertionError(f"the {name} kernel did not reduce to q12, s and vartheta: {form}")
        out[name] = sp.collect(form, [Q12, _ROOT])
    return out


@lru_cache(maxsize=None)
def _compiled():
    """NumPy functions of ``(q12, s, vartheta)`` (see :func:`compiled_form`): ntk, nngp, and both."""
    form = compiled_form()
    args = (Q12, _ROOT, VARTHETA)
    return (sp.lambdify(args, form["ntk"], modules="numpy", cse=True),
            sp.lambdify(args, form["nngp"], modules="numpy", cse=True),
            sp.lambdify(args, (form["ntk"], form["nngp"]), modules="numpy", cse=True))


def _angle(q12, norm):
    """``(q12, s, vartheta)`` from ``q12`` and ``sqrt(q11 q22)``; rounding can push the cosine a hair
    past +-1, so it is clipped.  Returns the cosine too (for the caller to fix entries exactly)."""
    cos = q12 / norm
    np.clip(cos, -1.0, 1.0, out=cos)
    return cos


def _finish(q12, norm, cos):
    s = cos * cos
    np.subtract(1.0, s, out=s)
    np.sqrt(s, out=s)
    s *= norm
    return q12, s, np.arccos(cos)


def _moments(X1, X2, check: bool = True):
    """``(q12, s, vartheta)`` for point sets (..., n1, d), (..., n2, d) (see :func:`compiled_form`).

    ``arccos`` is ill-conditioned at 1 (a rounding error of 1e-16 in the cosine is 1e-8 in the angle),
    which matters only for a point paired with itself: when ``X1`` is ``X2`` the diagonal is set
    exactly (``q12 = q11``, cosine 1, angle 0).
    """
    same = X1 is X2
    if check:
        X1 = _points("X1", X1)
        X2 = X1 if same else _points("X2", X2)
        if X1.shape[-1] != X2.shape[-1]:
            raise ValueError(f"X1 and X2 must have the same dimension d; got {X1.shape[-1]} and {X2.shape[-1]}")
    dim = X1.shape[-1]
    q12 = np.matmul(X1, np.swapaxes(X2, -1, -2))
    q12 *= 1.0 / dim
    q12 += 1.0
    q11 = np.einsum("...i,...i->...", X1, X1) / dim + 1.0
    r1 = np.sqrt(q11)
    r2 = r1 if same else np.sqrt(np.einsum("...i,...i->...", X2, X2) / dim + 1.0)
    norm = r1[..., :, None] * r2[..., None, :]
    cos = _angle(q12, norm)
    if same and cos.shape[-1] == cos.shape[-2]:
        diag = np.einsum("...ii->...i", cos)
        diag.setflags(write=True)
        diag[...] = 1.0
        q12_diag = np.einsum("...ii->...i", q12)
        q12_diag.setflags(write=True)
        q12_diag[...] = q11
    return _finish(q12, norm, cos)


def _points(name, X):
    X = np.asarray(X, dtype=float)  # the same object when X is a float array
    if X.ndim < 2:
        raise ValueError(f"{name} must be an array of points of shape (n, d) (or (..., n, d)); got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} must be finite")
    return X


@lru_cache(maxsize=8)
def _upper(n: int):
    """Flat indices of the upper triangle (diagonal included) of an n x n matrix and of its mirror image,
    and which of them are on the diagonal."""
    i, j = np.triu_indices(n)
    return i * n + j, j * n + i, i, j, i == j


def _symmetric(fn, X, check: bool):
    """``fn`` of a point set with itself, evaluated on the upper triangle only and mirrored: the same
    numbers as the full evaluation to rounding, exactly symmetric, in about 60% of the time."""
    if check:
        X = _points("X1", X)
    n, dim = X.shape
    upper, lower, i, j, diag = _upper(n)
    q = np.matmul(X, X.T).ravel()[upper]
    q *= 1.0 / dim
    q += 1.0
    qd = np.einsum("ni,ni->n", X, X) / dim + 1.0
    rd = np.sqrt(qd)
    norm = rd[i] * rd[j]
    q[diag] = qd
    cos = _angle(q, norm)
    cos[diag] = 1.0  # a point with itself: the angle is exactly 0
    values = fn(*_finish(q, norm, cos))
    out = []
    for v in (values if isinstance(values, tuple) else (values,)):
        full = np.empty(n * n)
        full[upper] = v
        full[lower] = v
        out.append(full.reshape(n, n))
    return tuple(out) if isinstance(values, tuple) else out[0]


def _evaluate(k: int, X1, X2, check: bool = True):
    fn = _compiled()[k]
    if X1 is X2 and np.ndim(X1) == 2:
        return _symmetric(fn, X1, check)
    return fn(*_moments(X1, X2, check))


def ntk(X1, X2) -> np.ndarray:
    """The infinite-width neural tangent kernel ``Theta(X1, X2)``: shape ``(n1, n2)`` (batched over leading axes)."""
    return _evaluate(0, X1, X2)


def nngp(X1, X2) -> np.ndarray:
    """The covariance ``Sigma(X1, X2)`` of the initial function ``f(.; theta_0)`` at infinite width."""
    return _evaluate(1, X1, X2)


def kernel_blocks(X1, X2, check: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(ntk(X1, X2), nngp(X1, X2))`` sharing the pre-activation moments and common subexpressions
    (a point set with itself, ``X1 is X2``: on the upper triangle only, exactly symmetric)."""
    return _evaluate(2, X1, X2, check)
