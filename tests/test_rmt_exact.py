"""symmaml.rmt against exact, independent references (no statistics).

1. A brute-force Isserlis reference written here: for small *numeric* dimensions every entry of
   every Gaussian matrix is a polynomial variable, the expression is multiplied out entry by entry
   (SymPy sparse polynomials), and each monomial is averaged by enumerating *all* pairings of its
   factors.  Random words (hypothesis, derandomized) are averaged by the engine with *symbolic*
   dimensions, then evaluated at the numbers; the two must agree exactly.
2. Literature closed forms for Wishart moments of order <= 3.
3. A naive pairing enumeration with symbolic dimensions (the genus expansion: one monomial
   ``n^a p^b`` per pairing) for the trace moments of total degree <= 4.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import pytest
import sympy as sp
from reference import pairings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sympy.polys.domains import QQ
from sympy.polys.rings import ring

from symmaml.rmt import (
    GaussianMatrix, expectation, gaussian_matrix, gaussian_vector, wishart_moment, wishart_trace_moment,
)

n, p = sp.symbols("n p", positive=True, integer=True)
a, s = sp.symbols("a s", real=True)


# ---------------------------------------------------------------------------------------
# the independent reference: entrywise expansion + enumeration of all pairings


@lru_cache(maxsize=None)
def isserlis(exponents: tuple) -> int:
    """E[prod_i x_i^{e_i}] for independent N(0,1) x_i: the number of pairings of the factor list
    ``[x_1]*e_1 + [x_2]*e_2 + ...`` that pair every factor with a copy of the same variable
    (Isserlis: E[x_a x_b] = delta_ab, summed over all pairings)."""
    factors = [i for i, e in enumerate(exponents) for _ in range(e)]
    return sum(all(u == v for u, v in pairing) for pairing in pairings(factors))


class Brute:
    """Evaluate a SymPy matrix/scalar expression entrywise, Gaussian entries as polynomial variables.

    ``dims`` maps dimension symbols to integers, ``scalars`` symbols to rationals, ``mats`` the
    names of deterministic matrices to nested lists of integers.  Gaussian matrices (numeric
    shapes) become matrices of ring generators.
    """

    def __init__(self, gaussians, dims, scalars, mats):
        names = [f"{g.name}_{i}_{j}" for g in gaussians for i in range(g.shape[0]) for j in range(g.shape[1])]
        self.R, *gens = ring(names or ["_unused"], QQ)
        it = iter(gens)
        self.gauss = {g.name: [[next(it) for _ in range(g.shape[1])] for _ in range(g.shape[0])] for g in gaussians}
        self.subs = {**dims, **scalars}
        self.mats = mats

    # matrices are lists of rows of ring elements
    def _int(self, d):
        return int(sp.sympify(d).xreplace(self.subs))

    def matrix(self, e):
        R = self.R
        if isinstance(e, GaussianMatrix):
            return self.gauss[e.name]
        if isinstance(e, sp.MatrixSymbol):
            return [[R(QQ(x)) for x in row] for row in self.mats[e.name]]
        if isinstance(e, sp.Identity):
            k = self._int(e.shape[0])
            return [[R.one if i == j else R.zero for j in range(k)] for i in range(k)]
        if isinstance(e, sp.ZeroMatrix):
            return [[R.zero] * self._int(e.shape[1]) for _ in range(self._int(e.shape[0]))]
        if isinstance(e, sp.Transpose):
            return [list(col) for col in zip(*self.matrix(e.arg))]
        if isinstance(e, sp.MatAdd):
            terms = [self.matrix(t) for t in e.args]
            return [[sum((t[i][j] for t in terms), R.zero) for j in range(len(terms[0][0]))]
                    for i in range(len(terms[0]))]
        if isinstance(e, sp.MatMul):
            c = R.one
            out = None
            for f in e.args:
                if isinstance(f, sp.MatrixExpr):
                    m = self.matrix(f)
                    out = m if out is None else [[sum((ra[k] * m[k][j] for k in range(len(m))), R.zero)
                                                  for j in range(len(m[0]))] for ra in out]
                else:
                    c *= self.scalar(f)
            return [[c * x for x in row] for row in out]
        if isinstance(e, sp.MatPow) and e.args[1].is_Integer and e.args[1] >= 0:
            k = int(e.args[1])
            base = e.args[0]
            return self.matrix(sp.MatMul(*([base] * k)) if k else sp.Identity(base.shape[0]))
        raise TypeError(f"brute force cannot evaluate {type(e).__name__}: {e}")

    def scalar(self, e):
        R = self.R
        e = sp.sympify(e)
        if not (e.atoms(sp.MatrixSymbol) or e.has(sp.Trace)):  # a number once symbols are substituted
            v = sp.Rational(e.xreplace(self.subs))
            return R(QQ(int(v.p), int(v.q)))
        if isinstance(e, sp.MatrixExpr):  # a 1x1 matrix in a scalar position
            m = self.matrix(e)
            assert len(m) == 1 and len(m[0]) == 1
            return m[0][0]
        if isinstance(e, sp.Trace):
            m = self.matrix(e.arg)
            return sum((m[i][i] for i in range(len(m))), R.zero)
        if isinstance(e, sp.Add):
            return sum((self.scalar(t) for t in e.args), R.zero)
        if isinstance(e, sp.Mul):
            out = R.one
            for f in e.args:
                out *= self.scalar(f)
            return out
        if isinstance(e, sp.Pow) and e.exp.is_Integer and e.exp >= 0:
            return self.scalar(e.base) ** int(e.exp)
        raise TypeError(f"brute force cannot evaluate {type(e).__name__}: {e}")

    def evaluate(self, e):
        """``e`` as a nested list (a scalar is a 1x1 matrix) of ring elements."""
        return self.matrix(e) if isinstance(e, sp.MatrixExpr) else [[self.scalar(e)]]

    def mean(self, e):
        """E[e] by averaging every monomial of every entry with :func:`isserlis`."""
        return [[sum((Fraction(int(c.numerator), int(c.denominator)) * isserlis(tuple(mon))
                      for mon, c in x.terms()), Fraction(0)) for x in row] for row in self.evaluate(e)]

    def constant(self, e):
        """A deterministic expression (an engine result) evaluated to rationals."""
        out = []
        for row in self.evaluate(e):
            assert all(x.is_ground for x in row), f"random left in {e}"
            out.append([Fraction(int(x.LC.numerator), int(x.LC.denominator)) if x else Fraction(0) for x in row])
        return out


def test_isserlis_reference_itself():
    """The reference reproduces E[x^4] = 3, E[x^2 y^2] = 1, E[x^6] = 15, E[x^3 y] = 0."""
    assert isserlis((4,)) == 3 and isserlis((2, 2)) == 1 and isserlis((6,)) == 15 and isserlis((3, 1)) == 0
    assert sum(1 for _ in pairings(list(range(8)))) == 105


# ---------------------------------------------------------------------------------------
# random words

#: letters: name -> (rows, cols, kind); dims are "n", "p" and "1"
LETTERS = {
    "X": ("n", "p", "gauss"), "Y": ("n", "p", "gauss"), "g": ("n", "1", "gauss"),
    "A": ("p", "p", "det"), "B": ("n", "n", "det"), "C": ("n", "p", "det"),
    "h": ("p", "1", "det"), "u": ("n", "1", "det"),
}
ORIENTED = [(name, t) for name in LETTERS for t in (False, True)]


def rows(letter):
    r, c, _ = LETTERS[letter[0]]
    return c if letter[1] else r


def cols(letter):
    r, c, _ = LETTERS[letter[0]]
    return r if letter[1] else c


def is_gauss(letter):
    return LETTERS[letter[0]][2] == "gauss"


@st.composite
def words(draw, start, end=None, budget=None, max_len=4):
    """A random product of oriented letters from dimension ``start`` (to ``end`` if given),
    using at most ``budget[0]`` Gaussian letters (decremented)."""
    word, at = [], start
    for _ in range(draw(st.integers(1, max_len))):
        options = [l for l in ORIENTED if rows(l) == at and (budget[0] > 0 or not is_gauss(l))]
        letter = draw(st.sampled_from(options))
        budget[0] -= is_gauss(letter)
        word.append(letter)
        at = cols(letter)
    if end is not None and at != end:  # one connecting letter (every pair of dims has one)
        options = [l for l in ORIENTED if rows(l) == at and cols(l) == end and (budget[0] > 0 or not is_gauss(l))]
        letter = draw(st.sampled_from(options))
        budget[0] -= is_gauss(letter)
        word.append(letter)
    return word


coefficients = st.sampled_from([1, 2, -1, -3, a, 2 * a, a**2])


@st.composite
def scalar_recipes(draw):
    """A sum of 1-2 terms, each a coefficient times a product of 1-2 traces of closed words."""
    budget = [8]
    terms = []
    for _ in range(draw(st.integers(1, 2))):
        traces = []
        for _ in range(draw(st.integers(1, 2))):
            start = draw(st.sampled_from(["n", "p", "1"]))
            traces.append(draw(words(start, start, budget)))
        terms.append((draw(coefficients), traces))
    return ("scalar", terms)


@st.composite
def matrix_recipes(draw):
    """A sum of 1-2 open words of one shape, each times a coefficient and maybe a trace."""
    budget = [8]
    d0, d1 = draw(st.sampled_from([("p", "p"), ("n", "n"), ("n", "p"), ("p", "1")]))
    terms = []
    for _ in range(draw(st.integers(1, 2))):
        starts = draw(st.lists(st.sampled_from(["n", "p"]), max_size=1))
        traces = [draw(words(start, start, budget)) for start in starts]
        terms.append((draw(coefficients), traces, draw(words(d0, d1, budget))))
    return ("matrix", terms)


def build(recipe, dims):
    """The SymPy expression of a recipe with dimensions ``dims`` ({"n": .., "p": ..})."""
    dim = {"n": dims["n"], "p": dims["p"], "1": 1}
    objs = {}
    for name, (r, c, kind) in LETTERS.items():
        if kind == "gauss":
            objs[name] = gaussian_vector(name, dim[r], s) if name == "g" else gaussian_matrix(name, dim[r], dim[c])
        else:
            objs[name] = sp.MatrixSymbol(name, dim[r], dim[c])

    def product(word):
        mats = [objs[name].T if t else objs[name] for name, t in word]
        return sp.MatMul(*mats).doit() if len(mats) > 1 else mats[0]

    kind, terms = recipe
    if kind == "scalar":
        return sp.Add(*[c * sp.Mul(*[sp.Trace(product(w)) for w in traces]) for c, traces in terms])
    return sp.MatAdd(*[c * sp.Mul(*[sp.Trace(product(w)) for w in traces]) * product(open_word)
                       for c, traces, open_word in terms])


def check_against_brute(recipe, nn, pp, seed):
    import random

    rng = random.Random(seed)
    mats = {name: [[rng.randint(-3, 3) for _ in range(pp if c == "p" else nn if c == "n" else 1)]
                   for _ in range(pp if r == "p" else nn if r == "n" else 1)]
            for name, (r, c, kind) in LETTERS.items() if kind == "det"}
    scalars = {a: sp.Rational(rng.randint(-5, 5), 2), s: sp.Rational(rng.randint(1, 4), 3)}
    numeric = build(recipe, {"n": nn, "p": pp})
    gaussians = sorted(numeric.atoms(GaussianMatrix), key=lambda g: g.name)
    brute = Brute(gaussians, {n: nn, p: pp}, scalars, mats)
    reference = brute.mean(numeric)
    # the engine with symbolic dimensions, evaluated at the numbers afterwards
    symbolic = expectation(build(recipe, {"n": n, "p": p}))
    assert brute.constant(symbolic) == reference, (recipe, nn, pp, symbolic)
    # and the engine with the numeric dimensions directly
    assert brute.constant(expectation(numeric)) == reference, (recipe, nn, pp)


EXACT = settings(derandomize=True, max_examples=300, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@EXACT
@given(scalar_recipes(), st.integers(1, 3), st.integers(1, 3), st.integers(0, 10**6))
def test_scalar_words_match_brute_force_isserlis(recipe, nn, pp, seed):
    check_against_brute(recipe, nn, pp, seed)


@EXACT
@given(matrix_recipes(), st.integers(1, 3), st.integers(1, 3), st.integers(0, 10**6))
def test_matrix_words_match_brute_force_isserlis(recipe, nn, pp, seed):
    check_against_brute(recipe, nn, pp, seed)


@pytest.mark.parametrize("nn,pp", [(1, 1), (2, 1), (1, 3), (2, 3), (3, 2)])
def test_powers_of_sums_match_brute_force(nn, pp):
    """The issue's example ``(I - a/n X^T X)^k`` (the same Gaussian many times), scalar and matrix."""
    X = lambda d: gaussian_matrix("X", d["n"], d["p"])  # noqa: E731
    exprs = [
        lambda d: sp.Trace((sp.Identity(d["p"]) - a / d["n"] * X(d).T * X(d)) ** 3),
        lambda d: (sp.Identity(d["p"]) - a * X(d).T * X(d)) * sp.MatrixSymbol("A", d["p"], d["p"])
        * (sp.Identity(d["p"]) - a * X(d).T * X(d)),
        lambda d: sp.Trace(X(d).T * X(d)) ** 2 * X(d) * X(d).T,
    ]
    mats = {"A": [[1, -2, 3][:pp], [0, 2, -1][:pp], [4, 1, 1][:pp]][:pp]}
    for make in exprs:
        numeric = make({"n": nn, "p": pp})
        brute = Brute(sorted(numeric.atoms(GaussianMatrix), key=lambda g: g.name), {n: nn, p: pp},
                      {a: sp.Rational(3, 7)}, mats)
        assert brute.constant(expectation(make({"n": n, "p": p}))) == brute.mean(numeric)


# ---------------------------------------------------------------------------------------
# Wishart moments: literature closed forms (k <= 3) and the genus expansion


def test_wishart_moments_literature_k_le_3():
    """E[W] = n I, E[W^2] = n(n+p+1) I, E[W^3] = n(n^2 + 3np + 3n + p^2 + 3p + 4) I for W ~ W_p(n, I).

    Graczyk, Letac & Massam, "The complex Wishart distribution and the symmetric group",
    Ann. Stat. 31 (2003), and Letac & Massam, Ann. Stat. 32 (2004); special cases checked by
    hand: p = 1 gives the chi-square moments n, n(n+2), n(n+2)(n+4); n = 1 gives
    E[|x|^4 x x^T] = (p+2)(p+4) I.
    """
    assert wishart_moment(0, n, p) == 1
    assert wishart_moment(1, n, p) == n
    assert sp.expand(wishart_moment(2, n, p) - n * (n + p + 1)) == 0
    assert sp.expand(wishart_moment(3, n, p) - n * (n**2 + 3 * n * p + 3 * n + p**2 + 3 * p + 4)) == 0
    assert sp.factor(wishart_moment(3, n, 1)) == n * (n + 2) * (n + 4)
    assert sp.factor(wishart_moment(3, 1, p)) == (p + 2) * (p + 4)
    X = gaussian_matrix("X", n, p)
    assert matrix_coefficients(expectation((X.T * X) ** 2)) == {sp.Identity(p): sp.expand(n * (n + p + 1))}


def test_wishart_trace_moments_literature():
    """E[tr W] = np, E[(tr W)^2] = np(np+2) (tr W ~ chi^2_{np}), E[tr W^2] = np(n+p+1)."""
    assert wishart_trace_moment((1,), n, p) == n * p
    assert sp.expand(wishart_trace_moment((1, 1), n, p) - n * p * (n * p + 2)) == 0
    assert sp.expand(wishart_trace_moment((2,), n, p) - n * p * (n + p + 1)) == 0
    # (tr W)^3 ~ chi^2_{np} third moment
    assert sp.expand(wishart_trace_moment((1, 1, 1), n, p) - n * p * (n * p + 2) * (n * p + 4)) == 0
    # E[tr W^k] = p E[W^k]_{11}: the trace of the matrix moment
    for k in range(1, 5):
        assert sp.expand(wishart_trace_moment((k,), n, p) - p * wishart_moment(k, n, p)) == 0


def test_wishart_sandwich_literature():
    """E[W M W] = n^2 M + n M^T + n tr(M) I (generic M); n(n+1) M + n tr(M) I for symmetric M."""
    X = gaussian_matrix("X", n, p)
    M = sp.MatrixSymbol("M", p, p)
    got = expectation(X.T * X * M * X.T * X)
    assert got == n**2 * M + n * M.T + n * sp.Trace(M) * sp.Identity(p)
    S = sp.MatrixSymbol("S", p, p)  # symmetric: M^T = M
    sym = matrix_coefficients(got.xreplace({M: S, M.T: S}))
    assert sym == {S: sp.expand(n * (n + 1)), sp.Identity(p): n * sp.Trace(S)}


def matrix_coefficients(expr):
    """``{matrix part: expanded scalar coefficient}`` of a sum of scalar multiples of matrices."""
    out = {}
    for term in (expr.args if isinstance(expr, sp.MatAdd) else (expr,)):
        coeff, mats = term.as_coeff_matrices() if isinstance(term, sp.MatMul) else (sp.S.One, [term])
        part = mats[0] if len(mats) == 1 else sp.MatMul(*mats)
        out[part] = sp.expand(out.get(part, 0) + coeff)
    return {k: v for k, v in out.items() if v != 0}


def genus_expansion(ks):
    """E[prod_j tr W^{k_j}] by enumerating all (2K-1)!! pairings of the 2K Gaussian letters.

    Letter ``X_{r c}`` of ``tr(X^T X X^T X ...)``: each pairing identifies row indices (range n)
    and column indices (range p); a pairing contributes n^(#row classes) p^(#col classes).
    """
    letters = []  # (row index id, col index id) of each X in the product
    for k in ks:
        base = len(letters)  # tr(X^T X)^k = sum X_{r0 c0} X_{r0 c1} X_{r1 c1} X_{r1 c2} ...
        for i in range(k):
            letters.append((("r", base // 2 + i), ("c", base // 2 + i)))
            letters.append((("r", base // 2 + i), ("c", base // 2 + (i + 1) % k)))
    total = sp.S.Zero
    for pairing in pairings(list(range(len(letters)))):
        parent = {}

        def find(x):
            while parent.get(x, x) != x:
                x = parent[x]
            return x

        for u, v in pairing:
            for slot in (0, 1):
                ru, rv = find(letters[u][slot]), find(letters[v][slot])
                if ru != rv:
                    parent[ru] = rv
        classes = {find(idx) for l in letters for idx in l}
        total += n ** sum(1 for c in classes if c[0] == "r") * p ** sum(1 for c in classes if c[0] == "c")
    return sp.expand(total)


@pytest.mark.parametrize("ks", [(1,), (2,), (1, 1), (3,), (2, 1), (1, 1, 1), (4,), (3, 1), (2, 2), (2, 1, 1)])
def test_trace_moments_match_genus_expansion(ks):
    assert sp.expand(wishart_trace_moment(ks, n, p) - genus_expansion(ks)) == 0


def test_wishart_moment_small_numeric_dims():
    """Numeric n, p (including p = 1, where W is 1x1) agree with the symbolic polynomial."""
    for k in range(1, 5):
        poly = wishart_moment(k, n, p)
        for nn, pp in [(1, 1), (3, 1), (1, 2), (4, 3)]:
            assert wishart_moment(k, nn, pp) == poly.subs({n: nn, p: pp})
    assert wishart_moment(3, 1, 1) == 15  # E[x^6]


def test_inverse_wishart_inside_expectation_matches_rules():
    """``(X^T X)^{-1}`` averaged inside expressions agrees with the standalone stated rules."""
    from symmaml.rmt import inverse_wishart_moment, inverse_wishart_second_moments

    X = gaussian_matrix("X", n, p)
    V = sp.Inverse(X.T * X)
    second = inverse_wishart_second_moments(n, p)
    assert expectation(V) == inverse_wishart_moment(n, p) * sp.Identity(p)
    assert sp.simplify(expectation(sp.Trace(V) ** 2) - second["tr_inv_sq"]) == 0
    assert sp.simplify(expectation(sp.Trace(V * V)) - second["tr_inv2"]) == 0
    assert sp.simplify(expectation(sp.Trace(V**2)) - second["tr_inv2"]) == 0
    # V M V for a generic M: c1 M + c2 (M^T + tr(M) I) -- E[V_ij V_kl] contracted with M_jk
    M = sp.MatrixSymbol("M", p, p)
    got = {k: sp.factor(v) for k, v in matrix_coefficients(expectation(V * M * V)).items()}
    c1, c2 = second["c1"], second["c2"]
    assert got == {M: sp.factor(c1), M.T: sp.factor(c2), sp.Identity(p): sp.factor(c2 * sp.Trace(M))}
    # independent Gaussians mix with the inverse: E[tr(V Y^T Y)] = n tr E[V] (Y independent of X)
    Y = gaussian_matrix("Y", n, p)
    assert sp.simplify(expectation(sp.Trace(V * Y.T * Y)) - n * p / (n - p - 1)) == 0
