"""A general engine for exact expectations of polynomials in Gaussian random matrices.

It knows nothing of MAML.  See :func:`expectation` and the Wishart helpers.
"""
from .gaussian import GaussianMatrix, gaussian_matrix, gaussian_vector, has_gaussian, is_gaussian
from .expectation import expectation
from .words import NotAveragable
from .wick import Expect, MatExpect, expect

__all__ = [
    "GaussianMatrix", "gaussian_matrix", "gaussian_vector", "is_gaussian", "has_gaussian",
    "expectation", "NotAveragable", "Expect", "MatExpect", "expect",
]
