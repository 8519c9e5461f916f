"""Exact Gaussian expectations of traces of words, by recursive Wick contraction.

Isserlis' theorem pairs the Gaussian entries of a product in every possible way.  Instead of
enumerating the (2k-1)!! pairings, the engine contracts *one* Gaussian letter with each
possible partner (Stein's lemma, ``E[x f(x)] = E[f'(x)]``) and recurses, memoising states by
their canonical form.  For i.i.d. N(0,1) entries three contractions cover every case
(``X`` is ``r x c``; ``Q``, ``R`` are words, empty words are identities):

* ``tr(X Q X^T R)  ->  tr(Q) tr(R)``            (an empty ``Q`` gives ``c``, an empty ``R`` gives ``r``)
* ``tr(X Q X R)    ->  tr(Q^T R)``
* ``tr(X Q) tr(X R) -> tr(Q^T R)``

A state's value is a linear combination of *terminal* states (no Gaussian letter left: traces
of deterministic words) with polynomial coefficients in the dimensions.  Coefficients live in
a SymPy polynomial ring, so no ``expand`` or ``simplify`` runs inside the recursion.

Cost: one visit per distinct reachable state, each doing O(#occurrences) contractions.  For
products of traces of Wishart powers the reachable states are the products ``prod tr W^{k_j}``
with ``sum k_j <= K`` (integer partitions), so ``E[tr W^K]`` costs O(K * sum_{j<=K} P(j))
ring operations instead of (2K-1)!! pairings.
"""
from __future__ import annotations

from collections import defaultdict

import sympy as sp
from sympy.polys.domains import QQ
from sympy.polys.rings import ring

from ..derivation import Derivation, Rule
from .words import EXTERNAL, Alphabet, canonical, transpose

__all__ = ["Contractor", "WICK_CONTRACTION", "Expect", "MatExpect", "expect", "add_terms"]

WICK_CONTRACTION = Rule(
    name="Wick contraction",
    statement=(
        r"\mathbb{E}\,\mathrm{tr}(XQX^{\top}R)\cdots = \mathbb{E}\,\mathrm{tr}(Q)\,\mathrm{tr}(R)\cdots"
        r"+ \mathbb{E}\,\mathrm{tr}(Q'^{\top}R')\cdots + \dots,\quad "
        r"\mathbb{E}[X_{ab}X_{cd}]=\delta_{ac}\delta_{bd}"
    ),
    conditions=(r"X \text{ has i.i.d. } \mathcal{N}(0,1) \text{ entries}",),
    reference="Isserlis (1918); one letter contracted with each partner (Stein's lemma)",
)


class Contractor:
    """Expectations of states over one alphabet, memoised.

    ``value(state)`` returns ``{terminal_state: coefficient}`` with coefficients in ``self.ring``.
    With ``record=True`` every non-terminal state visited adds one step (the state and the
    combination of states its first contraction produces) to ``self.derivation``.
    """

    def __init__(self, alphabet: Alphabet, record: bool = False):
        self.alphabet = alphabet
        gens = sorted(set().union(*(sp.sympify(d).free_symbols for d in alphabet.dims())) or {sp.Dummy("_")},
                      key=lambda s: s.name)
        self.ring, *_ = ring(gens, QQ)
        self.memo: dict = {}
        self.record = record
        self.derivation = Derivation("Wick contractions")

    def dim(self, d):
        return self.ring(sp.sympify(d))

    # -- the three contractions -------------------------------------------------------
    def _first_gaussian(self, state):
        for i, w in enumerate(state):
            for j, (name, _) in enumerate(w):
                if name in self.alphabet.gaussian:
                    return i, j
        return None

    @staticmethod
    def _to_front(word, j):
        """Rotate (transposing if needed) so that letter j stands first, untransposed."""
        if word[j][1]:
            word = transpose(word)
            j = len(word) - 1 - j
        return word[j:] + word[:j]

    def _children(self, state):
        """The contractions of the first Gaussian letter: ``[(factor, new_words)]``."""
        i, j = self._first_gaussian(state)
        word = self._to_front(state[i], j)
        others = state[:i] + state[i + 1:]
        x = word[0]
        r, c = self.alphabet.rows(x), self.alphabet.cols(x)
        out = []
        for k in range(1, len(word)):
            name, t = word[k]
            if name != x[0]:
                continue
            q, rr = word[1:k], word[k + 1:]
            if t:  # X Q X^T R -> tr Q tr R
                out.append((others, ((q, c), (rr, r))))
            else:  # X Q X R -> tr(Q^T R)
                out.append((others, ((transpose(q) + rr, r),)))
        rest = word[1:]
        for u_idx, u in enumerate(others):
            for k, (name, _) in enumerate(u):
                if name != x[0]:
                    continue
                u0 = self._to_front(u, k)
                out.append((others[:u_idx] + others[u_idx + 1:], ((transpose(rest) + u0[1:], r),)))
        children = []
        for kept, new in out:
            factor = self.ring.one
            words = list(kept)
            for w, d in new:
                if w:
                    words.append(canonical(w))
                else:
                    factor *= self.dim(d)
            children.append((factor, tuple(sorted(words))))
        return children

    # -- recursion --------------------------------------------------------------------
    def value(self, state) -> dict:
        if state in self.memo:
            return self.memo[state]
        if self._first_gaussian(state) is None:
            result = {state: self.ring.one}
            self.memo[state] = result
            return result
        combined: dict = defaultdict(lambda: self.ring.zero)
        children = self._children(state)
        for factor, child in children:
            for term, coeff in self.value(child).items():
                combined[term] += factor * coeff
        result = {k: v for k, v in combined.items() if v}
        self.memo[state] = result
        if self.record:
            before = expect(self.to_sympy(state))
            merged: dict = defaultdict(lambda: self.ring.zero)
            for factor, child in children:
                merged[child] += factor
            after = add_terms([f.as_expr() * expect(self.to_sympy(ch)) for ch, f in sorted(merged.items()) if f])
            self.derivation.add(WICK_CONTRACTION, before, after)
        return result

    # -- back to SymPy ----------------------------------------------------------------
    def word_to_sympy(self, word):
        mats = [self.alphabet.symbol(l) for l in word]
        return mats[0] if len(mats) == 1 else sp.MatMul(*mats)

    def to_sympy(self, state):
        """A state as a SymPy expression: product of traces, times the matrix of the open word."""
        scalar = sp.S.One
        matrix = None
        for w in state:
            if any(name == EXTERNAL for name, _ in w):
                matrix = self._open_word(w)
            else:
                scalar *= sp.Trace(self.word_to_sympy(self._readable(w)))
        if matrix is None:
            return scalar
        return matrix if scalar == 1 else scalar * matrix

    def _readable(self, w):
        """The rotation of ``w`` (or of its transpose) that is a 1x1 product, if any: ``tr(v^T M v)``."""
        for cand in (w, transpose(w)):
            for i in range(len(cand)):
                if self.alphabet.rows(cand[i]) == 1:
                    return cand[i:] + cand[:i]
        return w

    def _open_word(self, w):
        k = next(i for i, (name, _) in enumerate(w) if name == EXTERNAL)
        if w[k][1]:
            w = transpose(w)
            k = len(w) - 1 - k
        body = w[k + 1:] + w[:k]  # tr(body E) = body read as a matrix
        if not body:
            return sp.Identity(self.alphabet.shapes[EXTERNAL][1])
        return self.word_to_sympy(body)


class Expect(sp.Expr):
    """An unevaluated expectation ``E[arg]`` for derivation steps (prints as \\mathbb{E})."""

    def __new__(cls, arg):
        return sp.Expr.__new__(cls, sp.sympify(arg))

    @property
    def arg(self):
        return self.args[0]

    def _latex(self, printer):
        return r"\mathbb{E}\left[%s\right]" % printer._print(self.arg)

    def _sympystr(self, printer):
        return "E[%s]" % printer._print(self.arg)


class MatExpect(sp.MatrixExpr):
    """An unevaluated expectation of a matrix expression."""

    def __new__(cls, arg):
        return sp.MatrixExpr.__new__(cls, arg)

    @property
    def arg(self):
        return self.args[0]

    @property
    def shape(self):
        return self.arg.shape

    def _latex(self, printer):
        return r"\mathbb{E}\left[%s\right]" % printer._print(self.arg)

    def _sympystr(self, printer):
        return "E[%s]" % printer._print(self.arg)


def expect(expr):
    """``E[expr]`` unevaluated, scalar or matrix (a number is its own expectation)."""
    expr = sp.sympify(expr)
    if not isinstance(expr, sp.MatrixExpr) and expr.is_number:
        return expr
    return MatExpect(expr) if isinstance(expr, sp.MatrixExpr) and expr.shape != (1, 1) else Expect(expr)


def add_terms(terms):
    """Sum SymPy scalars or matrices (``MatAdd`` for matrices); an empty sum is 0."""
    terms = list(terms)
    if not terms:
        return sp.S.Zero
    if any(isinstance(t, sp.MatrixExpr) for t in terms):
        return sp.MatAdd(*terms).doit() if len(terms) > 1 else terms[0]
    return sp.Add(*terms)
