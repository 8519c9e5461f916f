"""Mixed linear regression and MAML as symbolic objects (``shared/spec/model.md``).

The model is defined once, here.  Everything random is a standard Gaussian matrix or vector
of :mod:`symmaml.rmt` scaled by its standard deviation; the inner step is obtained by
differentiating the loss with SymPy's matrix calculus, not typed in, and a loop of several steps
is that step iterated.

Task vectors are ``w = w0 + (nu/sqrt(p)) g`` with ``g ~ N(0, I_p)``; labels ``y = X w + sigma z``.
A :class:`Model` of the family fixes the number of inner steps ``k_t`` (meta-training), of
adaptation steps ``k_r`` (meta-test) and whether inputs are anisotropic, ``x ~ N(0, Sigma)``
(rows ``G Sigma^{1/2}``, :data:`SIGMA`), with the population test loss
``(sigma^2 + (w - theta)^T Sigma (w - theta))/2``.  ``Model()`` is the paper's model.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import sympy as sp

from ..rmt import gaussian_matrix
from ..rmt.covariance import Covariance
from ..symbols import LINEAR, LINEAR_ANISOTROPIC, alpha_t, n_t, n_v, n_r, nu, p, sigma

__all__ = ["loss", "gradient", "inner_step", "iterate", "Model", "PAPER", "SIGMA", "MetaTrainingTask",
           "MetaTestTask", "w0", "omega0", "omega"]

#: the input covariance of an anisotropic model (symmetric, positive definite, p x p)
SIGMA = Covariance(r"\Sigma", p)


def _steps(name: str, value) -> int:
    """A number of steps: a positive int, NumPy integer or integral float (booleans refused)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise TypeError(f"{name} must be a positive integer; got {value!r}")
    if isinstance(value, numbers.Integral):
        v = int(value)
    elif isinstance(value, numbers.Real) and float(value).is_integer():
        v = int(value)
    else:
        raise TypeError(f"{name} must be a positive integer; got {value!r}")
    if v < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return v


def _plural(k: int, one: str, many: str) -> str:
    return one if k == 1 else many


@dataclass(frozen=True)
class Model:
    """A model of the family: ``inner_steps`` k_t >= 1 full-batch steps with alpha_t on the support set
    during meta-training, ``adaptation_steps`` k_r >= 1 steps with alpha_r on the adaptation set at
    meta-test, and isotropic (``x ~ N(0, I)``) or ``anisotropic`` (``x ~ N(0, Sigma)``) inputs.

    Frozen and hashable (a cache key); ``Model()`` is the paper's model.
    """

    inner_steps: int = 1
    adaptation_steps: int = 1
    anisotropic: bool = False

    def __post_init__(self):
        object.__setattr__(self, "inner_steps", _steps("inner_steps", self.inner_steps))
        object.__setattr__(self, "adaptation_steps", _steps("adaptation_steps", self.adaptation_steps))
        if not isinstance(self.anisotropic, bool) and type(self.anisotropic).__name__ != "bool_":
            raise TypeError(f"anisotropic must be True or False; got {self.anisotropic!r}")
        object.__setattr__(self, "anisotropic", bool(self.anisotropic))

    @property
    def is_paper(self) -> bool:
        """One inner step, one adaptation step, isotropic inputs: Bernacchia (ICLR 2021)."""
        return self == PAPER

    @property
    def covariance(self):
        """The input covariance: :data:`SIGMA` if anisotropic, else ``None`` (the identity)."""
        return SIGMA if self.anisotropic else None

    @property
    def parameter_set(self):
        """The parameters of its results (with ``spectrum=`` for anisotropic inputs)."""
        return LINEAR_ANISOTROPIC if self.anisotropic else LINEAR

    def describe(self, tex: bool = False) -> str:
        """The model in words, e.g. 'k_t = 2 inner steps, k_r = 1 adaptation step, isotropic inputs'
        (``tex``: symbols in math mode, for documents)."""
        kt, kr = self.inner_steps, self.adaptation_steps
        if tex:
            inputs = (r"anisotropic inputs $x \sim \mathcal{N}(0, \Sigma)$" if self.anisotropic
                      else "isotropic inputs")
            return (f"$k_t = {kt}$ {_plural(kt, 'inner step', 'inner steps')}, "
                    f"$k_r = {kr}$ {_plural(kr, 'adaptation step', 'adaptation steps')}, {inputs}")
        inputs = "anisotropic inputs x ~ N(0, Sigma)" if self.anisotropic else "isotropic inputs"
        return (f"k_t = {kt} {_plural(kt, 'inner step', 'inner steps')}, "
                f"k_r = {kr} {_plural(kr, 'adaptation step', 'adaptation steps')}, {inputs}")

    @property
    def suffix(self) -> str:
        """What file names add for this model ('' for the paper's; e.g. '_kt2', '_kt2_kr2_aniso')."""
        parts = []
        if self.inner_steps != 1:
            parts.append(f"kt{self.inner_steps}")
        if self.adaptation_steps != 1:
            parts.append(f"kr{self.adaptation_steps}")
        if self.anisotropic:
            parts.append("aniso")
        return "".join("_" + x for x in parts)


#: the paper's model (one inner step, one adaptation step, isotropic inputs)
PAPER = Model()

#: the mean task vector, the meta-training initialisation, and a generic parameter vector
w0 = sp.MatrixSymbol("w_0", p, 1)
omega0 = sp.MatrixSymbol("omega_0", p, 1)
omega = sp.MatrixSymbol("omega", p, 1)
_theta = sp.MatrixSymbol("theta", p, 1)
_START = sp.MatrixSymbol(r"\theta^{(0)}", p, 1)  # a generic start of an inner loop


def loss(theta, X, y, n):
    """``L(theta; D) = |y - X theta|^2 / (2n)`` as a 1x1 matrix expression."""
    r = y - X * theta
    return (r.T * r) / (2 * n)


def _theta_for(dim):
    """The parameter vector of dimension ``dim`` (the model's own theta when it is p)."""
    return _theta if dim == _theta.shape[0] else sp.MatrixSymbol("theta", dim, 1)


@lru_cache(maxsize=None)
def _gradient_form(X, y, n):
    theta = _theta_for(X.shape[1])
    return loss(theta, X, y, n).diff(theta)


def gradient(X, y, n, at):
    """``grad_theta L(theta; D)`` at ``at``, by SymPy matrix calculus (theta of X's column dimension)."""
    theta = _theta_for(X.shape[1])
    return _gradient_form(X, y, n).subs(theta, at)


def inner_step(start, X, y, alpha, n):
    """One gradient step ``start - alpha grad L(start; D)`` (expanded)."""
    return (start - alpha * gradient(X, y, n, start)).expand()


def iterate(start, X, y, alpha, n, steps: int):
    """``steps`` gradient steps from ``start`` on the same data: :func:`inner_step` applied repeatedly.

    For several steps the labels are carried as one symbol through the iteration and inserted at the
    end (expanding them at every step multiplies the terms for nothing)."""
    if steps == 1:
        return inner_step(start, X, y, alpha, n)
    labels = sp.MatrixSymbol(r"\mathbf{y}", *y.shape)
    theta = start
    for _ in range(steps):
        theta = inner_step(theta, X, labels, alpha, n)
    return theta.xreplace({labels: y}).expand()


@dataclass(frozen=True)
class MetaTrainingTask:
    """One meta-training task: support set (n_t points), query set (n_v points), task vector.

    ``label`` distinguishes independent tasks (their Gaussian matrices have distinct names);
    ``model`` fixes the number of inner steps and the input covariance.
    """

    label: str = ""
    model: Model = field(default=PAPER)

    def _name(self, base):
        return f"{base}{self.label}"

    @cached_property
    def X_t(self):
        return gaussian_matrix(self._name("X_t"), n_t, p, covariance=self.model.covariance)

    @cached_property
    def X_v(self):
        return gaussian_matrix(self._name("X_v"), n_v, p, covariance=self.model.covariance)

    @cached_property
    def z_t(self):
        return gaussian_matrix(self._name("z_t"), n_t, 1)

    @cached_property
    def z_v(self):
        return gaussian_matrix(self._name("z_v"), n_v, 1)

    @cached_property
    def g(self):
        """Standardised task offset: ``w = w0 + (nu / sqrt p) g``."""
        return gaussian_matrix(self._name("g"), p, 1)

    @property
    def w(self):
        return w0 + (nu / sp.sqrt(p)) * self.g

    @property
    def y_t(self):
        return self.X_t * self.w + sigma * self.z_t

    @property
    def y_v(self):
        return self.X_v * self.w + sigma * self.z_v

    @property
    def A(self):
        """The inner-step matrix ``I - (alpha_t/n_t) X_t^T X_t``."""
        return sp.Identity(p) - (alpha_t / n_t) * self.X_t.T * self.X_t

    @property
    def Z(self):
        """The task's block of the meta-training design, ``X_v A^{k_t}``."""
        k = self.model.inner_steps
        return self.X_v * (self.A if k == 1 else sp.MatPow(self.A, k))

    def adapted(self, start):
        """The inner loop on the support set, from ``start`` (alpha = alpha_t): k_t steps.

        With several steps the loop is iterated once from a generic start and ``start`` inserted."""
        if self.model.inner_steps == 1:
            return iterate(start, self.X_t, self.y_t, alpha_t, n_t, 1)
        return self._loop.xreplace({_START: start}).expand()

    @cached_property
    def _loop(self):
        return iterate(_START, self.X_t, self.y_t, alpha_t, n_t, self.model.inner_steps)

    def query_residual(self, start):
        """``y_v - X_v theta(start; D_t)``: the residual whose square the meta-loss averages."""
        return _query_residual(self, start)

    @property
    def randomness(self):
        """The task's Gaussian matrices: design first, then offset and noise."""
        return (self.X_t, self.X_v, self.g, self.z_t, self.z_v)


@lru_cache(maxsize=None)
def _query_residual(task: MetaTrainingTask, start):
    return (task.y_v - task.X_v * task.adapted(start)).expand()


@dataclass(frozen=True)
class MetaTestTask:
    """A meta-test task with its adaptation set (n_r points) and learning rate alpha_r (k_r steps)."""

    model: Model = field(default=PAPER)

    @cached_property
    def X_r(self):
        return gaussian_matrix("X_r", n_r, p, covariance=self.model.covariance)

    @cached_property
    def z_r(self):
        return gaussian_matrix("z_r", n_r, 1)

    @cached_property
    def g(self):
        return gaussian_matrix("g_r", p, 1)

    @property
    def w(self):
        return w0 + (nu / sp.sqrt(p)) * self.g

    def adapted(self, start, alpha):
        return iterate(start, self.X_r, self.X_r * self.w + sigma * self.z_r, alpha, n_r,
                       self.model.adaptation_steps)

    def test_loss(self, theta):
        """Population loss ``E_{x,z}(y - theta.x)^2 / 2 = (sigma^2 + (w - theta)^T Sigma (w - theta)) / 2``
        (``Sigma = I`` for isotropic inputs)."""
        d = self.w - theta
        if self.model.anisotropic:
            return (sigma**2 + sp.Trace(d.T * SIGMA * d)) / 2
        return (sigma**2 + sp.Trace(d.T * d)) / 2
