"""Traces of matrix words: the engine's internal form of polynomials in random matrices.

A *letter* is ``(name, transposed)``; an :class:`Alphabet` knows each name's shape, whether
it is Gaussian, and the SymPy object it stands for.  A *word* is a tuple of letters read as a
cyclic trace ``tr(L1 L2 ... Lk)``; a *state* is a sorted tuple of canonical words, read as the
product of their traces.  A matrix-valued expression ``M`` is carried as the word of
``tr(M E)`` with a unique external letter ``E``, so one representation serves scalars and
matrices alike.

:func:`expand` turns a SymPy expression (traces, products of traces, 1x1 matrices, matrix
expressions) into ``[(coefficient, state), ...]`` by multilinearity, the first step of every
expectation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product as cartesian

import sympy as sp
from sympy.core.sorting import default_sort_key

from .gaussian import GaussianMatrix

__all__ = ["Alphabet", "EXTERNAL", "transpose", "canonical", "expand", "NotAveragable"]

Letter = tuple  # (name: str, transposed: bool)
Word = tuple  # tuple[Letter, ...]
State = tuple  # tuple[Word, ...], sorted, each canonical

#: name of the external letter marking the free indices of a matrix-valued expression
EXTERNAL = "\x00E"


class NotAveragable(TypeError):
    """The engine cannot average this object."""


@dataclass
class Alphabet:
    """The letters of one computation: shapes, Gaussian-ness and SymPy objects."""

    shapes: dict = field(default_factory=dict)  # name -> (rows, cols)
    gaussian: set = field(default_factory=set)
    objects: dict = field(default_factory=dict)  # name -> sympy matrix

    def add(self, mat: sp.MatrixSymbol) -> str:
        name = mat.name
        shape = tuple(sp.sympify(d) for d in mat.shape)
        if name in self.shapes and self.shapes[name] != shape:
            raise ValueError(f"matrix {name!r} appears with two shapes {self.shapes[name]} and {shape}")
        self.shapes[name] = shape
        self.objects[name] = mat
        if isinstance(mat, GaussianMatrix):
            self.gaussian.add(name)
        return name

    def add_external(self, rows, cols) -> None:
        """Register ``E`` for a matrix result of shape ``rows x cols`` (E is ``cols x rows``)."""
        self.shapes[EXTERNAL] = (cols, rows)

    def rows(self, letter: Letter):
        r, c = self.shapes[letter[0]]
        return c if letter[1] else r

    def cols(self, letter: Letter):
        r, c = self.shapes[letter[0]]
        return r if letter[1] else c

    def symbol(self, letter: Letter) -> sp.MatrixExpr:
        obj = self.objects[letter[0]]
        return obj.T if letter[1] else obj

    def dims(self) -> set:
        out = set()
        for r, c in self.shapes.values():
            out |= {r, c}
        return out


def transpose(word: Word) -> Word:
    """The word of the transposed product: reversed, each letter transposed."""
    return tuple((name, not t) for name, t in reversed(word))


def canonical(word: Word) -> Word:
    """The least rotation of the word or of its transpose (``tr w = tr w^T``)."""
    best = None
    for w in (word, transpose(word)):
        for i in range(len(w)):
            r = w[i:] + w[:i]
            if best is None or r < best:
                best = r
    return best


# ---------------------------------------------------------------------------------------
# expansion of SymPy expressions into linear combinations of states


def _is_random(expr) -> bool:
    return isinstance(expr, sp.Basic) and bool(expr.atoms(sp.MatrixSymbol) or expr.has(sp.Trace))


def _expand_matrix(expr, alphabet: Alphabet):
    """``expr`` (a matrix expression) as ``[(coeff, words_of_scalar_factors, open_word, dim)]``.

    ``open_word`` is a tuple of letters (empty for an identity of size ``dim``);
    ``words_of_scalar_factors`` collects traces that multiply the matrix.
    """
    if isinstance(expr, sp.MatrixSymbol):
        alphabet.add(expr)
        return [(sp.S.One, (), ((expr.name, False),), expr.shape[0])]
    if isinstance(expr, sp.Identity):
        return [(sp.S.One, (), (), expr.shape[0])]
    if isinstance(expr, sp.ZeroMatrix):
        return []
    if isinstance(expr, sp.Transpose):
        return [(c, s, transpose(w), expr.shape[0]) for c, s, w, _ in _expand_matrix(expr.arg, alphabet)]
    if isinstance(expr, sp.MatAdd):
        return [t for a in expr.args for t in _expand_matrix(a, alphabet)]
    if isinstance(expr, sp.MatMul):
        scalars = [a for a in expr.args if not isinstance(a, sp.MatrixExpr)]
        mats = [a for a in expr.args if isinstance(a, sp.MatrixExpr)]
        scalar_terms = _expand_scalar(sp.Mul(*scalars), alphabet)
        factors = [_expand_matrix(a, alphabet) for a in mats]
        out = []
        for (c0, s0), *parts in cartesian(scalar_terms, *factors):
            c = c0 * sp.Mul(*(pc for pc, _, _, _ in parts))
            s = s0 + sum((ps for _, ps, _, _ in parts), ())
            w = sum((pw for _, _, pw, _ in parts), ())
            out.append((c, s, w, expr.shape[0]))
        return out
    if isinstance(expr, sp.MatPow):
        base, k = expr.args
        if not (k.is_Integer and k >= 0):
            raise NotAveragable(
                f"cannot average the power {k} of a matrix: only non-negative integer powers are "
                "expanded (inverses have their own rules: see symmaml.rmt.inverse_wishart_moment)"
            )
        if k == 0:
            return [(sp.S.One, (), (), expr.shape[0])]
        return _expand_matrix(sp.MatMul(*([base] * int(k))), alphabet)
    raise NotAveragable(f"the engine cannot average {type(expr).__name__} objects: {expr}")


def _trace_words(matrix_expr, alphabet: Alphabet):
    """``tr(matrix_expr)`` as ``[(coeff, words)]`` (an empty word contributes its dimension)."""
    out = []
    for c, s, w, dim in _expand_matrix(matrix_expr, alphabet):
        if w:
            out.append((c, s + (w,)))
        else:
            out.append((c * dim, s))
    return out


def _expand_scalar(expr, alphabet: Alphabet):
    """A scalar expression as ``[(coeff, words)]``: a sum of coefficients times products of traces."""
    expr = sp.sympify(expr)
    if not _is_random(expr):
        return [(expr, ())]
    if isinstance(expr, sp.Trace):
        return _trace_words(expr.arg, alphabet)
    if isinstance(expr, sp.MatrixExpr):
        if expr.shape != (1, 1):
            raise NotAveragable(f"a {expr.shape[0]} x {expr.shape[1]} matrix appears where a scalar is expected: {expr}")
        return _trace_words(expr, alphabet)
    if isinstance(expr, sp.Add):
        return [t for a in expr.args for t in _expand_scalar(a, alphabet)]
    if isinstance(expr, sp.Mul):
        out = [(sp.S.One, ())]
        for a in expr.args:
            out = [(c0 * c1, s0 + s1) for (c0, s0), (c1, s1) in cartesian(out, _expand_scalar(a, alphabet))]
        return out
    if isinstance(expr, sp.Pow):
        base, k = expr.args
        if not (k.is_Integer and k >= 0):
            raise NotAveragable(f"cannot average a random quantity to the power {k}: {expr}")
        return _expand_scalar(sp.Mul(*([base] * int(k)), evaluate=False), alphabet)
    raise NotAveragable(f"the engine cannot average {type(expr).__name__} objects: {expr}")


def expand(expr, alphabet: Alphabet):
    """``expr`` as a combined list ``[(coeff, state)]`` with canonical states, sorted.

    A matrix-valued ``expr`` carries its free indices in the external letter (see module doc).
    """
    expr = sp.sympify(expr)
    terms: dict = {}
    if isinstance(expr, sp.MatrixExpr) and expr.shape != (1, 1):
        alphabet.add_external(*expr.shape)
        raw = [(c, s + (w + ((EXTERNAL, False),),)) for c, s, w, _ in _expand_matrix(expr, alphabet)]
    else:
        raw = _expand_scalar(expr, alphabet)
    for c, words in raw:
        state = tuple(sorted(canonical(w) for w in words))
        terms[state] = terms.get(state, sp.S.Zero) + c
    return sorted(((sp.expand(c), s) for s, c in terms.items() if c != 0), key=lambda t: t[1])
