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

Cost: one visit per distinct reachable state, each doing O(#occurrences) contractions; no step
ever holds more than one state's children, never the set of pairings.  For products of traces
of Wishart powers the reachable states are the products ``prod tr W^{k_j}`` with
``sum k_j <= K`` (integer partitions), so ``E[tr W^K]`` costs at most O(K * sum_{j<=K} P(j))
ring operations instead of (2K-1)!! pairings (measured: ``E[tr W^10]`` visits 37 states, all
42 partitions of 10 together 1018; see ``benchmarks/bench_rmt.py``).

Inverse-Wishart letters ``V = (X^T X)^{-1}`` (see :mod:`.words`; ``X`` appears nowhere else, so
``V`` is independent of every other letter) are averaged first, by the stated rules of
:mod:`.inverse`: a state holding ``V`` once becomes ``m`` times the state with ``V -> I``; a
state holding it twice becomes ``c1`` times the state with both ``V -> I`` plus ``c2`` times the
two contractions of the pair read as a Gaussian ``G`` with ``G`` and with ``G^T``
(``E[V_ij V_kl] = c1 d_ij d_kl + c2 (d_ik d_jl + d_il d_jk)``, and ``d_ik d_jl``, ``d_il d_jk``
are exactly ``E[G_ij G_kl]``, ``E[G_ij G^T_kl]``).  Three or more occurrences raise
:class:`~.words.NotAveragable`; a failing existence condition raises ``ValueError``.  With
inverse letters the coefficients live in the fraction field of the dimensions.
"""
from __future__ import annotations

from collections import defaultdict

import sympy as sp
from sympy.polys.domains import QQ, ZZ
from sympy.polys.fields import field
from sympy.polys.rings import ring

from ..algebra import factor
from ..derivation import Derivation, Rule
from .inverse import (INVERSE_WISHART_MEAN, INVERSE_WISHART_SECOND, inverse_mean_coefficient,
                      inverse_second_coefficients)
from ..spectral import LAMBDA
from .covariance import spectral_product
from .words import EXTERNAL, Alphabet, NotAveragable, canonical, transpose

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

    ``value(state)`` returns ``{terminal_state: coefficient}`` with coefficients in ``self.ring``
    (a polynomial ring in the dimensions; its fraction field when inverse-Wishart letters occur).
    With ``record=True`` every non-terminal state visited adds one step (the state and the
    combination of states its first contraction produces) to ``self.derivation``, parents
    before children; ``self.assumptions`` collects the existence conditions the rules used.
    """

    def __init__(self, alphabet: Alphabet, record: bool = False):
        self.alphabet = alphabet
        gens = sorted(set().union(*(sp.sympify(d).free_symbols for d in alphabet.dims())) or {sp.Dummy("_")},
                      key=lambda s: s.name)
        if alphabet.inverse:
            self.ring, *_ = field(gens, QQ)
        else:  # integer coefficients are much faster than rationals; QQ only for dims like n/2
            dims = [sp.sympify(d) for d in alphabet.dims()]
            integral = all(sp.Poly(d, *gens).domain.is_ZZ for d in dims if d.free_symbols) and \
                all(d.is_Integer for d in dims if not d.free_symbols)
            self.ring, *_ = ring(gens, ZZ if integral else QQ)
        self.memo: dict = {}
        self.record = record
        self.derivation = Derivation("Wick contractions")
        self.assumptions: list = []

    def dim(self, d):
        return self.ring(sp.sympify(d))

    # -- the three contractions -------------------------------------------------------
    def _first(self, state, names):
        for i, w in enumerate(state):
            for j, (name, _) in enumerate(w):
                if name in names:
                    return i, j
        return None

    def _first_gaussian(self, state):
        return self._first(state, self.alphabet.gaussian)

    @staticmethod
    def _to_front(word, j):
        """Rotate (transposing if needed) so that letter j stands first, untransposed."""
        if word[j][1]:
            word = transpose(word)
            j = len(word) - 1 - j
        return word[j:] + word[:j]

    def _children(self, state):
        """The contractions of the first Gaussian letter: ``[(factor, new_state)]``."""
        return self._contract(state, *self._first_gaussian(state))

    def _contract(self, state, i, j):
        """Pair letter ``j`` of word ``i`` with each letter of the same name: ``[(factor, new_state)]``."""
        word = self._to_front(state[i], j)
        others = state[:i] + state[i + 1:]
        x = word[0]
        r, c = self.alphabet.rows(x), self.alphabet.cols(x)
        # with a column covariance, E[X_ab X_cd] = delta_ac Sigma_bd: Sigma is inserted at the join
        cov = self.alphabet.covariance.get(x[0])
        s = ((cov, False),) if cov is not None else ()
        out = []
        for k in range(1, len(word)):
            name, t = word[k]
            if name != x[0]:
                continue
            q, rr = word[1:k], word[k + 1:]
            if t:  # X Q X^T R -> tr(Sigma Q) tr R
                out.append((others, ((s + q, c), (rr, r))))
            else:  # X Q X R -> tr(Q^T Sigma R)
                out.append((others, ((transpose(q) + s + rr, r),)))
        rest = word[1:]
        for u_idx, u in enumerate(others):
            for k, (name, _) in enumerate(u):
                if name != x[0]:
                    continue
                u0 = self._to_front(u, k)
                out.append((others[:u_idx] + others[u_idx + 1:], ((transpose(rest) + s + u0[1:], r),)))
        children = []
        for kept, new in out:
            factor = self.ring.one
            words = list(kept)
            for w, d in new:
                if w:
                    words.append(canonical(w, self.alphabet.symmetric))
                else:
                    factor *= self.dim(d)
            children.append((factor, tuple(sorted(words))))
        return children

    # -- inverse-Wishart letters ------------------------------------------------------
    def _drop(self, state, positions):
        """``(factor, state)`` with the letters at ``positions`` replaced by identities."""
        words = [list(w) for w in state]
        for i, j in sorted(positions, reverse=True):
            del words[i][j]
        factor = self.ring.one
        kept = []
        for w, old in zip(words, state):
            if w:
                kept.append(canonical(tuple(w), self.alphabet.symmetric))
            else:  # tr(V) -> tr(I_p)
                factor *= self.dim(self.alphabet.rows(old[0]))
        return factor, tuple(sorted(kept))

    def _assume(self, condition):
        if condition is not sp.true and str(condition) not in self.assumptions:
            self.assumptions.append(str(condition))

    def _inverse_children(self, state, name):
        """The rule averaging the inverse-Wishart letter ``name``, and the children it produces."""
        where = [(i, j) for i, w in enumerate(state) for j, (nm, _) in enumerate(w) if nm == name]
        n, p, _ = self.alphabet.inverse[name]
        obj = self.alphabet.objects[name]
        if len(where) > 2:
            raise NotAveragable(f"third-order inverse moments are not derived: {obj} appears {len(where)} "
                                f"times in one term of the expansion")
        source = self.alphabet.inverse[name][2]
        if source.covariance is not None and len(where) == 2:
            raise NotAveragable(f"second moments of {obj} with a covariance (rows N(Sigma)) are not derived")
        if len(where) == 1:
            m = inverse_mean_coefficient(n, p)
            self._assume(sp.Gt(n, p + 1))
            if source.covariance is not None:  # (X^T X)^{-1} = Sigma^{-1/2} W^{-1} Sigma^{-1/2}: mean Sigma^{-1}/(n-p-1)
                inv = self.alphabet.add(source.covariance.function(1 / LAMBDA, name=source.covariance.name + "^{-1}"))
                (i, j), = where
                words = list(state)
                words[i] = canonical(state[i][:j] + ((inv, False),) + state[i][j + 1:], self.alphabet.symmetric)
                return INVERSE_WISHART_MEAN, [(self.ring(m), tuple(sorted(words)))]
            factor, child = self._drop(state, where)
            return INVERSE_WISHART_MEAN, [(self.ring(m) * factor, child)]
        c1, c2 = inverse_second_coefficients(n, p)
        self._assume(sp.Gt(n, p + 3))
        factor, child = self._drop(state, where)
        children = [(self.ring(c1) * factor, child)]
        (i1, j1), (i2, j2) = where
        flipped = list(state)
        flipped[i2] = tuple((nm, not t) if k == j2 else (nm, t) for k, (nm, t) in enumerate(state[i2]))
        for s in (state, tuple(flipped)):  # the pair as (G, G) and as (G, G^T)
            children += [(self.ring(c2) * f, ch) for f, ch in self._contract(s, i1, j1)]
        return INVERSE_WISHART_SECOND, children

    # -- recursion --------------------------------------------------------------------
    def value(self, state) -> dict:
        if state in self.memo:
            return self.memo[state]
        inverse = self._first(state, self.alphabet.inverse)
        if inverse is not None:
            rule, children = self._inverse_children(state, state[inverse[0]][inverse[1]][0])
        elif self._first_gaussian(state) is not None:
            rule, children = WICK_CONTRACTION, self._children(state)
        else:
            result = {state: self.ring.one}
            self.memo[state] = result
            return result
        if self.record:
            self._record(rule, state, children)
        combined: dict = defaultdict(lambda: self.ring.zero)
        for weight, child in children:
            for term, coeff in self.value(child).items():
                combined[term] += weight * coeff
        result = {k: v for k, v in combined.items() if v}
        self.memo[state] = result
        return result

    def _record(self, rule, state, children):
        before = expect(self.to_sympy(state))
        merged: dict = defaultdict(lambda: self.ring.zero)
        for weight, child in children:
            merged[child] += weight
        after = add_terms([_coefficient(f) * self._expect(ch) for ch, f in sorted(merged.items()) if f])
        self.derivation.add(rule, before, after)

    def _expect(self, state):
        """``E[state]`` unevaluated, or the state itself once nothing random is left in it."""
        random = set(self.alphabet.gaussian) | set(self.alphabet.inverse)
        expr = self.to_sympy(state)
        return expr if self._first(state, random) is None else expect(expr)

    # -- back to SymPy ----------------------------------------------------------------
    def word_to_sympy(self, word):
        mats = [self.alphabet.symbol(l) for l in word]
        if self.alphabet.symmetric:  # runs of one symmetric letter as a power: Sigma Sigma -> Sigma^2
            merged = []
            for (name, _), mat in zip(word, mats):
                if merged and name in self.alphabet.symmetric and merged[-1][0] == name:
                    merged[-1][2] += 1
                else:
                    merged.append([name, mat, 1])
            mats = [mat if k == 1 else sp.MatPow(mat, k) for _, mat, k in merged]
        return mats[0] if len(mats) == 1 else sp.MatMul(*mats)

    def _spectral(self, word):
        """``(covariance, h)`` if every letter of ``word`` is a covariance or a function of it."""
        if not all(name in self.alphabet.symmetric for name, _ in word):
            return None
        return spectral_product([self.alphabet.objects[name] for name, _ in word])

    def trace_to_sympy(self, word):
        """``tr(word)``: a normalised trace of a function of a covariance where it is one
        (``dim <h>_Sigma``, spectral moments for powers), else a SymPy trace."""
        spectral = self._spectral(word)
        if spectral is not None:
            cov, h = spectral
            return cov.dim * cov.mean(h)
        return sp.Trace(self.word_to_sympy(self._readable(word)))

    def to_sympy(self, state):
        """A state as a SymPy expression: product of traces, times the matrix of the open word."""
        scalar = sp.S.One
        matrix = None
        for w in state:
            if any(name == EXTERNAL for name, _ in w):
                matrix = self._open_word(w)
            else:
                scalar *= self.trace_to_sympy(w)
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
        spectral = self._spectral(body)
        if spectral is not None:
            cov, h = spectral
            return cov.function(h)
        return self.word_to_sympy(body)


def tidy(c, rational: bool):
    """A scalar coefficient in canonical form: expanded polynomial, or (``rational``) one fraction
    with factored numerator and denominator, generators ordered by name so that signs read
    ``n - p - 1`` whatever the hash seed."""
    c = sp.sympify(c)
    if not rational:
        return sp.expand(c)
    gens = sorted(c.free_symbols, key=lambda s: s.name)
    if not gens:
        return c
    try:
        return factor(c, *gens)
    except sp.PolynomialError:  # a coefficient holding e.g. a function of a deterministic trace
        return factor(c)


def _coefficient(c):
    """A ring or field element as a SymPy expression (fractions factored, polynomials expanded)."""
    return tidy(c.as_expr(), rational=hasattr(c, "denom"))


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
