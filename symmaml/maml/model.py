"""Mixed linear regression and one-step MAML as symbolic objects (``shared/spec/model.md``).

The model is defined once, here.  Everything random is a standard Gaussian matrix or vector
of :mod:`symmaml.rmt` scaled by its standard deviation; the inner step is obtained by
differentiating the loss with SymPy's matrix calculus, not typed in.

Task vectors are ``w = w0 + (nu/sqrt(p)) g`` with ``g ~ N(0, I_p)``; labels ``y = X w + sigma z``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from ..rmt import gaussian_matrix
from ..symbols import alpha_t, n_t, n_v, n_r, nu, p, sigma

__all__ = ["loss", "gradient", "inner_step", "MetaTrainingTask", "MetaTestTask", "w0", "omega0", "omega"]

#: the mean task vector, the meta-training initialisation, and a generic parameter vector
w0 = sp.MatrixSymbol("w_0", p, 1)
omega0 = sp.MatrixSymbol("omega_0", p, 1)
omega = sp.MatrixSymbol("omega", p, 1)
_theta = sp.MatrixSymbol("theta", p, 1)


def loss(theta, X, y, n):
    """``L(theta; D) = |y - X theta|^2 / (2n)`` as a 1x1 matrix expression."""
    r = y - X * theta
    return (r.T * r) / (2 * n)


def gradient(X, y, n, at):
    """``grad_theta L(theta; D)`` at ``at``, by SymPy matrix calculus (theta of X's column dimension)."""
    theta = _theta if X.shape[1] == _theta.shape[0] else sp.MatrixSymbol("theta", X.shape[1], 1)
    return loss(theta, X, y, n).diff(theta).subs(theta, at)


def inner_step(start, X, y, alpha, n):
    """One gradient step ``start - alpha grad L(start; D)`` (expanded)."""
    return (start - alpha * gradient(X, y, n, start)).expand()


@dataclass(frozen=True)
class MetaTrainingTask:
    """One meta-training task: support set (n_t points), query set (n_v points), task vector.

    ``label`` distinguishes independent tasks (their Gaussian matrices have distinct names).
    """

    label: str = ""

    def _name(self, base):
        return f"{base}{self.label}"

    @cached_property
    def X_t(self):
        return gaussian_matrix(self._name("X_t"), n_t, p)

    @cached_property
    def X_v(self):
        return gaussian_matrix(self._name("X_v"), n_v, p)

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
        """The task's block of the meta-training design, ``X_v A``."""
        return self.X_v * self.A

    def adapted(self, start):
        """The inner step on the support set, from ``start`` (alpha = alpha_t)."""
        return inner_step(start, self.X_t, self.y_t, alpha_t, n_t)

    def query_residual(self, start):
        """``y_v - X_v theta(start; D_t)``: the residual whose square the meta-loss averages."""
        return (self.y_v - self.X_v * self.adapted(start)).expand()

    @property
    def randomness(self):
        """The task's Gaussian matrices: design first, then offset and noise."""
        return (self.X_t, self.X_v, self.g, self.z_t, self.z_v)


@dataclass(frozen=True)
class MetaTestTask:
    """A meta-test task with its adaptation set (n_r points) and learning rate alpha_r."""

    @cached_property
    def X_r(self):
        return gaussian_matrix("X_r", n_r, p)

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
        return inner_step(start, self.X_r, self.X_r * self.w + sigma * self.z_r, alpha, n_r)

    def test_loss(self, theta):
        """Population loss ``E_{x,z}(y - theta.x)^2 / 2 = (sigma^2 + |w - theta|^2) / 2``."""
        d = self.w - theta
        return (sigma**2 + sp.Trace(d.T * d)) / 2
