r"""Finite-size corrected average test loss (overparameterised regime), several inner steps.

With ``k_t >= 2`` inner steps the spectrum of ``B = A^{k_t} Q A^{k_t}`` is heavy-tailed, and the one-step
construction (:mod:`.corrected`: the other query rows by their mean quadratic forms, ``B`` through a two-node
quadrature of its moments, the query-noise term by a linear projection on the Gram block) breaks down: at
Figure 2, ``k_t = 3``, ``alpha_t = 0.5`` it is 0.7% low, and where it looked right (``alpha_t = 1``) its errors were
cancelling (``E tr H^{-1}`` 44% off, the linear projection 16% off on the support-noise term; measured,
``benchmarks/diagnose_over_quadrature.py``).  This construction keeps the exact leave-one-task-out reduction and
splits the task's noise covariance ``C = sigma^2 I + X_v M X_v^T``,
``M = (nu^2/p) A^{2k} + sigma^2 (alpha_t/n_t) F``, ``F = (I - A^k) sum_{i<k} A^i`` (``k = k_t``):

1. exact (the task offset): ``X_v A^{2k} X_v^T = H + U U^T`` with ``U = X_v A^k V`` (``Q = I - V V^T``, ``V`` a Haar
   frame of rank ``d = (m - 1) n_v``), and by Woodbury ``tr(H^{-1} U U^T) = tr Psi (I - Psi)^{-1}``,
   ``Psi = V^T P V`` with ``P`` the projection on the rows of ``X_v A^k``.  ``V`` is independent of ``A`` and ``X_v``,
   so ``Psi`` has the law of a block of a Haar projection whatever ``A`` is: ``tr Psi(I - Psi)^{-1}`` has the law of
   ``tr G_1 (G_2^T G_2)^{-1} G_1^T`` (``G_1``, ``G_2`` Gaussian, ``n_v x d`` and ``(p - n_v) x d``), whose mean is
   ``n_v d/(p - n_v - d - 1)`` (inverse-Wishart mean).  So
   ``E tr(H^{-1} X_v A^{2k} X_v^T) = n_v (p - n_v - 1)/(p - m n_v - 1)`` exactly, for every ``k_t`` and ``alpha_t``;
2. ``E tr H^{-1}`` and ``E tr(H^{-1} X_v F X_v^T)``: the query Gram block averaged exactly for ``n_v <= 2`` rows
   (the pair representation, :mod:`symmaml.rmt.gram_pair`), then the inner-step and projection randomness by its
   means with the inner step's directions explicit (:class:`symmaml.rmt.deflated_gram.DeflatedGramTrace`: the
   self-averaging of the exponent and of the traces, and the Haar frame by its mean, are the approximations).

Measured at Figure 2 (``derivations/out/models_accuracy_table.md``; 6,000 runs per point): within 0.2% of
simulation at ``k_t = 2, 3``, ``k_r = 1, 2``, ``alpha_t`` in {-1, -0.5, 0.2, 0.5, 1}, and within 0.1% at
``k_t = 5`` on the figure's curve.  Derived for ``n_v <= 2`` (the exact average of the query Gram block); the
numeric function refuses ``n_v >= 3``.
"""
from __future__ import annotations

import sympy as sp

from ..algebra import factor
from ..derivation import Derivation, Rule
from ..rmt import expect
from ..rmt.deflated_gram import DeflatedGramTrace
from ..rmt.gram_pair import GRAM_PAIR
from ..rmt.inverse import INVERSE_WISHART_MEAN, inverse_wishart_moment
from ..symbols import alpha_t, m, n_t, n_v, nu, p, sigma
from .corrected import LEAVE_ONE_TASK_OUT_STEPS, derive_over, record_noise_weight
from .leading import N
from .model import Model
from .rules import ALGEBRA, SOLUTION_OVER, SUBSTITUTE

__all__ = ["derive_over_corrected_steps", "over_steps_error", "DOMAIN", "OFFSET_DEFLATION", "SELF_AVERAGING",
           "DEFLATION", "FRAME_MEAN", "INNER_STEP_SPECTRUM"]

DOMAIN = ("it needs n_v <= 2 (the query Gram block is averaged exactly for one or two rows), p > m n_v + 1, and the "
          "average over a support eigenvalue lambda resolved by its Gauss rule (the 20- and 16-node rules agree "
          "to 0.2%)")

OFFSET_DEFLATION = Rule(
    "the task offset through the deflated Gram block (exact)",
    r"\operatorname{tr}H^{-1}X_vA^{2k}X_v^{\top} = n_v + \operatorname{tr}\Psi(I - \Psi)^{-1},\ \Psi = V^{\top}PV"
    r"\ \overset{d}{=}\ \text{a } d\times d \text{ block law independent of } A",
    conditions=(r"Q = I - VV^{\top},\ V \text{ Haar of rank } d = (m-1)n_v,\ \text{independent of } A, X_v",),
    reference=(r"$X_vA^{2k}X_v^{\top} = H + UU^{\top}$, $U = X_vA^kV$; Woodbury: $\operatorname{tr}H^{-1}UU^{\top} = "
               r"\operatorname{tr}\Psi(I - \Psi)^{-1}$ with $P$ the projection on the rows of $X_vA^k$; a block of a "
               r"Haar projection: $\operatorname{tr}\Psi(I-\Psi)^{-1} \overset{d}{=} \operatorname{tr}G_1(G_2^{\top}G_2)^{-1}"
               r"G_1^{\top}$, $G_1 \in \mathbb{R}^{n_v\times d}$, $G_2 \in \mathbb{R}^{(p - n_v)\times d}$ Gaussian"),
)
SELF_AVERAGING = Rule(
    "self-averaging over the inner step and the projection",
    r"\mathbb{E}_{A,Q}\,e^{-\frac12[\Lambda(z_1) + \Lambda(z_2)]}\,[\ldots] \to "
    r"e^{-\frac12[\mathbb{E}\Lambda(z_1) + \mathbb{E}\Lambda(z_2)]}\,[\mathbb{E}\ldots]",
    reference=(r"approximation, exact at $\alpha_t = 0$ ($B$ a projection): the exponent $\Lambda = \log\det(I + zB)$ "
               r"and each trace of the bracket by its mean (measured at Figure 2, $k_t = 2, 3$, $\alpha_t = 0.5, \pm "
               r"1$, with the means sampled: the support-noise term within 0.7%, $\mathbb{E}\operatorname{tr}H^{-1}$ "
               r"within 1% at $\alpha_t = 0.5$ and 5% at $|\alpha_t| = 1$, where it is small)"),
)
DEFLATION = Rule(
    "the projection as a deflation",
    r"\log\det(I + zB) = \log\det(I + zD) + \log\det(I - zV^{\top}A^kR_zA^kV),\ "
    r"(I + zB)^{-1} = R_z + zR_zA^kV(I - zV^{\top}A^kR_zA^kV)^{-1}V^{\top}A^kR_z",
    conditions=(r"B = A^kQA^k = D - A^kVV^{\top}A^k,\ D = A^{2k},\ R_z = (I + zD)^{-1}",),
    reference="matrix determinant lemma and Woodbury's identity (exact)",
)
FRAME_MEAN = Rule(
    "the Haar frame by its mean",
    r"V^{\top}g(A)V \to \tfrac1p\operatorname{tr}g(A)\,I_d",
    conditions=(r"V \text{ Haar, independent of } A",),
    reference=r"approximation: $\mathbb{E}\,V^{\top}g(A)V = \tfrac1p\operatorname{tr}g(A)\,I_d$ exactly; fluctuations dropped",
)
INNER_STEP_SPECTRUM = Rule(
    "the inner step's spectrum, one support eigenvalue",
    r"\mathbb{E}\operatorname{tr}f(A) = (p - n')f(1) + n'\,\mathbb{E}_\lambda f\big(1 - \tfrac{\alpha_t}{n_t}\lambda\big),"
    r"\quad n' = \min(n_t, p)",
    reference=(r"exact for a mean trace: $A$ is $1$ on the $p - n'$ directions $W$ does not see, $\lambda$ a non-zero "
               r"eigenvalue of $W$ picked at random; $\mathbb{E}_\lambda$ by the Gauss rule of its exact moments"),
)


def over_steps_error(d: Derivation, model: Model) -> tuple[sp.Expr, tuple]:
    """The noise part of ``E|omega* - w0|^2`` for ``k_t >= 2`` inner steps; returns ``(noise, definitions)``."""
    k = model.inner_steps
    d.add(LEAVE_ONE_TASK_OUT_STEPS, expect(sp.Symbol(r"\operatorname{tr}(G^{-1}C)")),
          m * expect(sp.Symbol(r"\sigma^2\operatorname{tr}H^{-1} + \operatorname{tr}(H^{-1}X_vMX_v^{\top})")),
          note=(r"$H = X_vBX_v^{\top}$, " + rf"$B = A^{{{k}}}QA^{{{k}}}$; "
                r"$C$ is block diagonal so only the diagonal blocks of $G^{-1}$ enter"))
    m_poly = record_noise_weight(d, model)
    offset, support = m_poly[2 * k], {j: c for j, c in m_poly.items() if j != 2 * k}
    F = sp.Add(*(sp.cancel(c * n_t / (alpha_t * sigma**2)) * sp.Symbol("A") ** j for j, c in sorted(support.items())))
    if sp.expand(offset - nu**2 / p) != 0 or sp.expand(F - _f_of_a(k)) != 0:
        raise AssertionError(f"unexpected noise covariance for k_t = {k}: {m_poly}")
    d.add(ALGEBRA, sp.Symbol("M"), nu**2 / p * sp.Symbol(rf"A^{{{2 * k}}}") + sigma**2 * alpha_t / n_t * sp.Symbol("F"),
          note=rf"$F = {sp.latex(F)} = (I - A^{{{k}}})\sum_{{i<{k}}}A^i$: the task offset and the support noise")
    # 1. the task offset, exactly
    dd = N - n_v
    d.add(OFFSET_DEFLATION, expect(sp.Symbol(rf"\operatorname{{tr}}H^{{-1}}X_vA^{{{2 * k}}}X_v^{{\top}}")),
          n_v + expect(sp.Symbol(r"\operatorname{tr}G_1(G_2^{\top}G_2)^{-1}G_1^{\top}")),
          note=r"$d = m n_v - n_v$, the rank of the other tasks' projection")
    inverse_mean = inverse_wishart_moment(p - n_v, dd)            # E (G_2^T G_2)^{-1} = c I_d
    offset_value = factor(n_v + n_v * dd * inverse_mean)
    d.add(INVERSE_WISHART_MEAN, expect(sp.Symbol(rf"\operatorname{{tr}}H^{{-1}}X_vA^{{{2 * k}}}X_v^{{\top}}")),
          offset_value, note=r"$\mathbb{E}\,G_1^{\top}G_1 = n_v I_d$, $G_2^{\top}G_2 \sim \mathcal{W}_d(p - n_v)$, independent")
    # 2. the rest: the pair representation, then the means with the inner step's directions explicit
    d.add(GRAM_PAIR, expect(sp.Symbol(r"\operatorname{tr}(H^{-1}X_vFX_v^{\top})")),
          sp.Symbol(r"\tfrac14\iint_{z_1>z_2>0}\tfrac{z_1 - z_2}{\sqrt{z_1z_2}}e^{-\frac12[\Lambda_1 + \Lambda_2]}"
                    r"[\Lambda_1'\mu_2 + \Lambda_2'\mu_1 - 2\nu_{12}]\,dz_1dz_2"),
          note=(r"exact for $n_v = 2$ (for $n_v = 1$ a single integral); $\mathbb{E}\operatorname{tr}H^{-1}$ the same with "
                r"the bracket $\Lambda_1' + \Lambda_2'$; given $A$ and $Q$"))
    d.add(SELF_AVERAGING, expect(sp.Symbol(r"e^{-\frac12[\Lambda_1 + \Lambda_2]}[\ldots]")),
          sp.Symbol(r"e^{-\frac12[\mathbb{E}\Lambda_1 + \mathbb{E}\Lambda_2]}[\mathbb{E}\ldots]"))
    d.add(DEFLATION, sp.Symbol(r"\Lambda(z)"), sp.Symbol(r"\log\det(I + zD) + \log\det(I - zV^{\top}A^kR_zA^kV)"),
          note=r"and Woodbury for the resolvents in $\mu$, $\nu$")
    d.add(FRAME_MEAN, sp.Symbol(r"\mathbb{E}\Lambda(z)"),
          sp.Symbol(r"\mathbb{E}\operatorname{tr}\log(I + zD) + d\log\big(\tfrac1p\mathbb{E}\operatorname{tr}R_z\big)"),
          note=r"likewise in each trace of $\mu$ and $\nu$ (the module $\texttt{symmaml.rmt.deflated\_gram}$ lists them)")
    h, t = sp.Symbol("h"), sp.Symbol("t_F")
    args = (k, alpha_t / n_t, n_t, p, dd, n_v)
    d.define(h, DeflatedGramTrace(0, *args), INNER_STEP_SPECTRUM,
             note=(r"$\mathbb{E}\operatorname{tr}H^{-1} \approx h$: the pair integral with every trace's mean over the "
                   r"inner step's spectrum, one support eigenvalue by its 20-node Gauss rule (evaluated numerically); "
                   r"at $\alpha_t = 0$, $h = n_v/(p - m n_v - 1)$, the inverse-Wishart mean"))
    d.define(t, DeflatedGramTrace(1, *args), INNER_STEP_SPECTRUM,
             note=r"$\mathbb{E}\operatorname{tr}(H^{-1}X_vFX_v^{\top}) \approx t_F$; 0 at $\alpha_t = 0$ ($F = 0$)")
    noise = m * (sigma**2 * h + nu**2 / p * offset_value + sigma**2 * alpha_t / n_t * t)
    d.add(SUBSTITUTE, expect(sp.Symbol(r"\operatorname{tr}(G^{-1}C)")), noise)
    return noise, tuple(d.definitions)


def _f_of_a(k: int) -> sp.Expr:
    A = sp.Symbol("A")
    return sp.expand((1 - A**k) * sp.Add(*(A**i for i in range(k))))


def derive_over_corrected_steps(model: Model) -> tuple[sp.Expr, Derivation, tuple, str]:
    if model.inner_steps < 2:
        raise ValueError("this construction is for k_t >= 2 inner steps (one step: symmaml.maml.corrected)")
    return derive_over(model, "the task offset exactly; the query Gram block averaged exactly for $n_v \\le 2$ rows, "
                       "the inner step and projection through their means with the inner step's directions explicit",
                       (r"n_v \le 2", SOLUTION_OVER), over_steps_error, DOMAIN)
