"""A general engine for exact expectations of polynomials in Gaussian random matrices.

It knows nothing of MAML.  See :func:`expectation` (Wick contraction, memoised on canonical
states), the Wishart helpers (:func:`wishart_moment`, :func:`wishart_trace_moment`, derived by the
engine) and the stated inverse-Wishart / projection rules with their existence conditions, and the
Haar-projection trace moments (:func:`haar_projection_trace_moment`, Weingarten calculus).
"""
from .gaussian import GaussianMatrix, gaussian_matrix, gaussian_vector, has_gaussian, is_gaussian
from .expectation import EVALUATE, LINEARITY, expectation
from .words import NotAveragable
from .wick import WICK_CONTRACTION, Expect, MatExpect, expect
from .inverse import (
    INVERSE_WISHART_MEAN, INVERSE_WISHART_SECOND, ROTATIONAL_PROJECTION,
    expected_projection, inverse_wishart_moment, inverse_wishart_second_moments,
)
from .wishart import wishart_moment, wishart_trace_moment
from .haar import HAAR_PROJECTION_WEINGARTEN, haar_projection_trace_moment, pairing_coefficients

__all__ = [
    "GaussianMatrix", "gaussian_matrix", "gaussian_vector", "is_gaussian", "has_gaussian",
    "expectation", "NotAveragable", "Expect", "MatExpect", "expect",
    "wishart_moment", "wishart_trace_moment",
    "inverse_wishart_moment", "inverse_wishart_second_moments", "expected_projection",
    "LINEARITY", "EVALUATE", "WICK_CONTRACTION",
    "INVERSE_WISHART_MEAN", "INVERSE_WISHART_SECOND", "ROTATIONAL_PROJECTION",
    "haar_projection_trace_moment", "pairing_coefficients", "HAAR_PROJECTION_WEINGARTEN",
]
