"""Traces of matrix words: the engine's internal form of polynomials in random matrices.

A *letter* is ``(name, transposed)``; an :class:`Alphabet` knows each name's shape, whether
it is Gaussian, and the SymPy object it stands for.  A *word* is a tuple of letters read as a
cyclic trace ``tr(L1 L2 ... Lk)``; a *state* is a sorted tuple of canonical words, read as the
product of their traces.  A matrix-valued expression ``M`` is carried as the word of
``tr(M E)`` with a unique external letter ``E``, so one representation serves scalars and
matrices alike.

:func:`expand` turns a SymPy expression (traces, products of traces, 1x1 matrices, matrix
expressions) into ``[(coefficient, state), ...]`` by multilinearity, the first step of every
expectation.  It also checks what SymPy does not: with symbolic shapes SymPy builds
non-conformable products and sums (``X*X`` for an ``n x p`` symbol) without complaint, so every
product, sum, power and trace is checked here and a :class:`~sympy.matrices.exceptions.ShapeError`
(a ``ValueError``) names the offending factors.

Besides Gaussian and deterministic ``MatrixSymbol``s the alphabet holds two kinds of letters:

* *opaque deterministic* letters: any matrix expression without a Gaussian matrix that is not a
  sum/product/transpose/power (e.g. ``Inverse(M)`` of a deterministic, or frozen, ``M``);
* *inverse-Wishart* letters ``V = (X^T X)^{-1}`` (or ``(X X^T)^{-1}``) of a Gaussian ``X`` that
  appears nowhere else in the expression; :mod:`.wick` averages them with the stated rules of
  :mod:`.inverse`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product as cartesian

import sympy as sp
from sympy.matrices.exceptions import ShapeError

from ..spectral import LAMBDA
from .gaussian import GaussianMatrix, has_gaussian

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
    #: inverse-Wishart letters: name -> (n, p, Gaussian source) for V = W^{-1}, W ~ Wishart_p(n, I)
    inverse: dict = field(default_factory=dict)
    #: Gaussian name -> name of its column covariance (rows N(0, Sigma))
    covariance: dict = field(default_factory=dict)
    #: letters equal to their transpose (a covariance and functions of it)
    symmetric: set = field(default_factory=set)

    def add(self, mat: sp.MatrixSymbol) -> str:
        name = mat.name
        shape = tuple(sp.sympify(d) for d in mat.shape)
        if name in self.shapes and self.shapes[name] != shape:
            raise ValueError(f"matrix {name!r} appears with two shapes {self.shapes[name]} and {shape}")
        if name in self.objects and self.objects[name] != mat:
            kinds = sorted({type(o).__name__ for o in (mat, self.objects[name])})
            raise ValueError(f"the name {name!r} is used by two different matrices ({' and '.join(kinds)})")
        self.shapes[name] = shape
        self.objects[name] = mat
        if isinstance(mat, GaussianMatrix):
            self.gaussian.add(name)
            if mat.covariance is not None:
                self.covariance[name] = self.add(mat.covariance)
        elif getattr(mat, "_eval_transpose", None) is not None and mat._eval_transpose() == mat:
            self.symmetric.add(name)
        return name

    def add_opaque(self, expr: sp.MatrixExpr) -> str:
        """A deterministic matrix expression kept whole as one letter (e.g. ``Inverse(M)``)."""
        name = "\x01" + sp.srepr(expr)
        self.shapes[name] = tuple(sp.sympify(d) for d in expr.shape)
        self.objects[name] = expr
        return name

    def add_inverse_wishart(self, expr: sp.MatrixExpr, base: sp.MatrixExpr):
        """The letter of ``expr = base^{-1}`` with ``base = c X^T X`` or ``c X X^T``; returns ``(name, c)``.

        Raises :class:`NotAveragable` for any other random base.
        """
        coeff, mats = base.as_coeff_matrices() if isinstance(base, sp.MatMul) else (sp.S.One, [base])
        x = mats[0].arg if len(mats) == 2 and isinstance(mats[0], sp.Transpose) else mats[0]
        if not (len(mats) == 2 and isinstance(x, GaussianMatrix) and coeff != 0 and not _is_random(coeff)
                and {mats[0], mats[1]} == {x, x.T}):
            raise NotAveragable(
                f"cannot average {expr}: the only random inverses the engine averages are (X^T X)^-1 and "
                "(X X^T)^-1 of a Gaussian X (times a deterministic scalar)")
        r, c = (sp.sympify(d) for d in x.shape)
        gram_cols = isinstance(mats[0], sp.Transpose)  # X^T X (c x c) rather than X X^T (r x r)
        if x.covariance is not None and not gram_cols:
            raise NotAveragable(
                f"cannot average {expr}: with X = G Sigma^(1/2) (rows N(0, Sigma)), X X^T = G Sigma G^T is not an "
                "inverse-Wishart case (its inverse moments are not rational in finitely many spectral moments of "
                "Sigma); only (X^T X)^-1 = Sigma^(-1/2) (G^T G)^-1 Sigma^(-1/2) is averaged")
        name = f"\x01({x.name}^T {x.name})^-1" if gram_cols else f"\x01({x.name} {x.name}^T)^-1"
        n, p = (r, c) if gram_cols else (c, r)
        self.shapes[name] = (p, p)
        self.objects[name] = sp.Inverse(x.T * x if gram_cols else x * x.T)
        self.inverse[name] = (n, p, x)
        if x.covariance is not None:  # the mean rule puts Sigma^{-1} in its place
            self.add(x.covariance.function(1 / LAMBDA, name=x.covariance.name + "^{-1}"))
        return name, coeff

    def check_inverses(self) -> None:
        """Each inverse-Wishart letter must be independent of every other letter."""
        sources = {}
        for name, (_, _, x) in self.inverse.items():
            if x.name in sources:
                raise NotAveragable(
                    f"(X^T X)^-1 and (X X^T)^-1 of the same X={x.name} are not independent; "
                    "their joint moments are not derived")
            sources[x.name] = name
            if x.name in self.objects:
                if self.objects[x.name] == x:
                    raise NotAveragable(
                        f"the Gaussian {x.name} appears both inside an inverse and elsewhere; the engine averages "
                        f"an inverse Wishart only when its Gaussian appears nowhere else")
                raise ValueError(f"the name {x.name!r} is used by two different matrices")

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
        for n, p, _ in self.inverse.values():
            out |= {n, p}
        return out


def transpose(word: Word) -> Word:
    """The word of the transposed product: reversed, each letter transposed."""
    return tuple((name, not t) for name, t in reversed(word))


def canonical(word: Word, symmetric=frozenset()) -> Word:
    """The least rotation of the word or of its transpose (``tr w = tr w^T``); letters named in
    ``symmetric`` (equal to their transpose) are written untransposed."""
    best = None
    for w in (word, transpose(word)):
        if symmetric:
            w = tuple((name, False) if name in symmetric else (name, t) for name, t in w)
        for i in range(len(w)):
            r = w[i:] + w[:i]
            if best is None or r < best:
                best = r
    return best


# ---------------------------------------------------------------------------------------
# expansion of SymPy expressions into linear combinations of states


def _is_random(expr) -> bool:
    return isinstance(expr, sp.Basic) and bool(expr.atoms(sp.MatrixSymbol) or expr.has(sp.Trace))


def _same(a, b) -> bool:
    return sp.expand(sp.sympify(a) - sp.sympify(b)) == 0


def _shape(m) -> str:
    return f"{m.shape[0]} x {m.shape[1]}"


def _check_shapes(expr) -> None:
    """Raise ``ShapeError`` unless a product's factors / a sum's terms fit, or a power's base is square."""
    if isinstance(expr, sp.MatMul):
        mats = [a for a in expr.args if isinstance(a, sp.MatrixExpr)]
        for a, b in zip(mats, mats[1:]):
            if not _same(a.shape[1], b.shape[0]):
                hint = ("; a 1 x 1 product (e.g. g.T*g) is not a scalar to SymPy: wrap it in Trace(...)"
                        if 1 in (a.shape[1], b.shape[0]) else "")
                raise ShapeError(f"non-conformable product in {expr}: {a} is {_shape(a)} but {b} is {_shape(b)}{hint}")
    elif isinstance(expr, sp.MatAdd):
        for a in expr.args[1:]:
            if not (_same(a.shape[0], expr.args[0].shape[0]) and _same(a.shape[1], expr.args[0].shape[1])):
                raise ShapeError(f"non-conformable sum in {expr}: {expr.args[0]} is {_shape(expr.args[0])} "
                                 f"but {a} is {_shape(a)}")
    elif isinstance(expr, sp.MatPow):
        _check_square(expr.args[0], "power")


def _check_square(m, what: str) -> None:
    if not _same(m.shape[0], m.shape[1]):
        raise ShapeError(f"{what} of a non-square matrix: {m} is {_shape(m)}")


def _expand_matrix(expr, alphabet: Alphabet):
    """``expr`` (a matrix expression) as ``[(coeff, words_of_scalar_factors, open_word, dim)]``.

    ``open_word`` is a tuple of letters (empty for an identity of size ``dim``);
    ``words_of_scalar_factors`` collects traces that multiply the matrix.
    """
    _check_shapes(expr)
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
    if isinstance(expr, sp.MatPow):  # Inverse(B) is MatPow(B, -1)
        base, k = expr.args
        if not k.is_Integer:
            raise NotAveragable(f"cannot average the power {k} of a matrix: only integer powers are expanded: {expr}")
        if k < 0:
            if not has_gaussian(base):
                return [(sp.S.One, (), ((alphabet.add_opaque(expr), False),), expr.shape[0])]
            name, c = alphabet.add_inverse_wishart(expr, base)
            return [(c**k, (), ((name, False),) * int(-k), expr.shape[0])]
        if k == 0:
            return [(sp.S.One, (), (), expr.shape[0])]
        return _expand_matrix(sp.MatMul(*([base] * int(k))), alphabet)
    if not has_gaussian(expr):
        return [(sp.S.One, (), ((alphabet.add_opaque(expr), False),), expr.shape[0])]
    raise NotAveragable(f"the engine cannot average {type(expr).__name__} objects: {expr}")


def _trace_words(matrix_expr, alphabet: Alphabet):
    """``tr(matrix_expr)`` as ``[(coeff, words)]`` (an empty word contributes its dimension)."""
    _check_square(matrix_expr, "trace")
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
            if not has_gaussian(expr):  # e.g. 1/tr(M) of a deterministic M: a coefficient
                return [(expr, ())]
            raise NotAveragable(f"cannot average a random quantity to the power {k}: {expr}")
        return _expand_scalar(sp.Mul(*([base] * int(k)), evaluate=False), alphabet)
    if not has_gaussian(expr):  # a deterministic function of deterministic matrices: a coefficient
        return [(expr, ())]
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
    alphabet.check_inverses()
    for c, words in raw:
        state = tuple(sorted(canonical(w, alphabet.symmetric) for w in words))
        terms[state] = terms.get(state, sp.S.Zero) + c
    return sorted(((sp.expand(c), s) for s, c in terms.items() if c != 0), key=lambda t: t[1])
