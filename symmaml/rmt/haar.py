"""Trace moments of a Haar-distributed orthogonal projection, by Weingarten calculus (exact).

``Q = O diag(I_r, 0) O^T`` with ``O`` Haar on ``O(p)`` is a uniformly random rank-``r``
projection of ``R^p``.  For a fixed symmetric ``p x p`` matrix ``D``,
:func:`haar_projection_trace_moment` returns the coefficients ``c_lambda(p, r)`` of

    E tr((D Q)^k) = sum_{lambda |- k} c_lambda(p, r) prod_j tr(D^{lambda_j}).

Method (nothing is fitted or typed in):

1. The law of ``Q`` is ``O(p)``-invariant, so the ``2k``-index tensor
   ``T = E[Q_{x1 x2} Q_{x3 x4} ... Q_{x_{2k-1} x_{2k}}]`` is invariant, hence (first fundamental
   theorem of invariant theory for ``O(p)``) a combination ``sum_sigma c_sigma delta_sigma`` over
   the perfect matchings ``sigma`` of the ``2k`` index slots.
2. Contracting with ``delta_tau`` for every matching ``tau`` gives the Gram system
   ``sum_sigma p^{loops(sigma, tau)} c_sigma = r^{loops(tau, pi0)}``: ``loops`` counts the cycles
   of the union of two matchings, ``pi0 = {(1,2), (3,4), ...}`` are the ``Q``-edges, and every
   cycle of ``tau + pi0`` contracts to ``tr Q^j = tr Q = r`` (``Q^2 = Q``).  The inverse of the
   Gram matrix is the orthogonal Weingarten function (Collins and Sniady 2006).
3. The system is solved exactly over ``Q(p, r)``.  It is equivariant under the stabiliser of
   ``pi0`` (the hyperoctahedral group: permute the ``Q`` factors, transpose any of them), so its
   unique solution is constant on the orbits of matchings, which are labelled by the coset type
   of ``sigma`` (the partition of ``k`` given by the cycles of ``sigma + pi0``).  Summing the
   equations over each orbit and taking one equation per orbit gives an equivalent
   ``|partitions of k|`` square system (1, 2, 3, 5, 7, 11 unknowns for ``k = 1..6`` instead of
   1, 3, 15, 105, 945, 10395); :func:`pairing_coefficients` expands its solution back to every
   matching, and the tests check it against the full Gram system.
4. In ``tr(Q D Q D ... Q D)`` the ``D``-edges join slot ``2i`` to ``2i+1`` (and slot ``2k`` to
   slot 1).  Every cycle of ``sigma`` + ``D``-edges with ``j`` ``D``-edges contracts to
   ``tr D^j`` (``D`` symmetric, orientation is irrelevant); grouping the matchings by the
   resulting partition gives ``c_lambda``.

The symbolic solution is computed once per ``k`` in private symbols and then evaluated at the
given ``p`` and ``r`` (``r`` first, cancelling, then ``p``).  At a small integer ``p`` where the
generic solution has a pole (the Gram matrix is singular for ``p < k``; the tensor ``T`` is still
well defined) the evaluated Gram system is solved directly, taking the particular solution with
the free unknowns set to 0: the expansion in products of traces is then valid but not unique,
since the power sums of a small matrix are algebraically dependent.  ``r = 0`` (``Q = 0``) and
``r = p`` (``Q = I``, ``T = delta_pi0``) are evaluated exactly, so ``r = p`` always gives
``c_(k) = 1`` and every other coefficient 0 (as the generic solution does at ``r = p``).
"""
from __future__ import annotations

from collections import Counter
from functools import lru_cache

import sympy as sp
from sympy.polys.matrices import DomainMatrix

from ..algebra import factor
from ..derivation import Rule

__all__ = ["HAAR_PROJECTION_WEINGARTEN", "HAAR_ROTATION_SECOND_MOMENT", "MAX_K", "haar_projection_trace_moment",
           "haar_rotation_second_moment", "pairing_coefficients"]

HAAR_PROJECTION_WEINGARTEN = Rule(
    name="moments of a Haar projection",
    statement=(r"\mathbb{E}\operatorname{tr}(DQ)^k = \sum_{\lambda \vdash k} c_\lambda(p, r)\,"
               r"\prod_j\operatorname{tr}D^{\lambda_j}"),
    conditions=(r"Q = O\operatorname{diag}(I_r, 0)O^{\top},\ O \text{ Haar on } O(p)",
                r"D = D^{\top} \in \mathbb{R}^{p\times p} \text{ fixed}"),
    reference=(r"$O(p)$ invariance: $\mathbb{E}\,Q^{\otimes k}$ in the span of pairings; coefficients from the Gram "
               "system of the pairings (Weingarten calculus, Collins and Sniady 2006)"),
)

MAX_K = 6
"""The largest supported ``k`` (``k = 6`` takes a few seconds on first call, ``k = 7`` would
enumerate 135135 matchings)."""

_P, _R = sp.symbols("_haar_p _haar_r")


# --- matchings ---------------------------------------------------------------------------

def _matchings(n: int) -> list[tuple[int, ...]]:
    """All perfect matchings of ``0..n-1`` as partner tuples (``m[i]`` is the partner of ``i``),
    in a fixed order (the partner of the smallest free slot increases first)."""
    out: list[tuple[int, ...]] = []
    partner = [-1] * n

    def rec():
        try:
            i = partner.index(-1)
        except ValueError:
            out.append(tuple(partner))
            return
        for j in range(i + 1, n):
            if partner[j] == -1:
                partner[i], partner[j] = j, i
                rec()
                partner[i] = partner[j] = -1

    rec()
    return out


def _cycles(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """Cycle type of the union of matchings ``a`` and ``b``: for each cycle, its number of
    ``b``-edges (equal to its number of ``a``-edges), as a partition sorted decreasingly."""
    seen = [False] * len(a)
    lengths = []
    for start in range(len(a)):
        if seen[start]:
            continue
        length, i = 0, start
        while True:
            seen[i] = True
            j = a[i]
            seen[j] = True
            i = b[j]
            length += 1
            if i == start:
                break
        lengths.append(length)
    return tuple(sorted(lengths, reverse=True))


def _q_edges(k: int) -> tuple[int, ...]:
    """``pi0``: slot ``2i`` paired with ``2i+1`` (0-based), the index pairs of the ``Q`` factors."""
    return tuple(i + 1 if i % 2 == 0 else i - 1 for i in range(2 * k))


def _d_edges(k: int) -> tuple[int, ...]:
    """The ``D``-edges of ``tr(Q D Q D ...)``: slot ``2i+1`` paired with ``2i+2``, cyclically (0-based)."""
    n = 2 * k
    out = [0] * n
    for i in range(1, n, 2):
        j = (i + 1) % n
        out[i], out[j] = j, i
    return tuple(out)


def _partitions(k: int) -> list[tuple[int, ...]]:
    """The partitions of ``k`` as decreasing tuples, in decreasing lexicographic order."""
    return sorted((tuple(sorted(sum(([part] * mult for part, mult in d.items()), []), reverse=True))
                   for d in (dict(x) for x in sp.utilities.iterables.partitions(k))), reverse=True)


# --- the generic (symbolic) solution -----------------------------------------------------

@lru_cache(maxsize=None)
def _structure(k: int):
    """Everything integer about order ``k``: coset types, the reduced Gram matrix (as exponent
    counts), the right-hand side exponents and the coset-type/trace-partition counts."""
    pi0, pid = _q_edges(k), _d_edges(k)
    ms = _matchings(2 * k)
    types = [_cycles(s, pi0) for s in ms]          # coset type of each matching
    parts = _partitions(k)
    index = {mu: i for i, mu in enumerate(parts)}
    reps = {}
    for s, mu in zip(ms, types):
        reps.setdefault(mu, s)                     # first matching of each type (deterministic)
    # gram[nu][mu] = Counter{loops: how many sigma of type mu have loops(sigma, rep_nu) = loops}
    gram = [[Counter() for _ in parts] for _ in parts]
    for nu in parts:
        rep = reps[nu]
        row = gram[index[nu]]
        for s, mu in zip(ms, types):
            row[index[mu]][len(_cycles(s, rep))] += 1
    # counts[mu][lam] = number of sigma of type mu whose D-contraction is prod tr D^{lam_j}
    counts = [Counter() for _ in parts]
    for s, mu in zip(ms, types):
        counts[index[mu]][_cycles(s, pid)] += 1
    return parts, gram, counts, ms, types


def _gram_matrix(gram, p) -> sp.Matrix:
    return sp.Matrix([[sum((n * p**e for e, n in sorted(cell.items())), sp.S.Zero) for cell in row]
                      for row in gram])


@lru_cache(maxsize=None)
def _generic(k: int) -> tuple[sp.Expr, ...]:
    """``c_mu(P, R)`` for each coset type ``mu`` (in :func:`_partitions` order), factored."""
    parts, gram, _, _, _ = _structure(k)
    domain = sp.QQ.frac_field(_P, _R)
    a = DomainMatrix.from_Matrix(_gram_matrix(gram, _P)).convert_to(domain)
    b = DomainMatrix.from_Matrix(sp.Matrix([_R**len(nu) for nu in parts])).convert_to(domain)
    sol = a.lu_solve(b).to_Matrix()
    return tuple(factor(sp.cancel(sol[i, 0]), _P, _R) for i in range(len(parts)))


# --- evaluation at (p, r) ----------------------------------------------------------------

def _evaluate(expr, p, r):
    """``expr(P -> p, R -> r)`` with removable singularities cancelled; ``None`` at a pole."""
    e = sp.cancel(expr.xreplace({_R: r}))
    num, den = sp.fraction(e)
    den = sp.expand(den.xreplace({_P: p}))
    if den == 0:
        return None
    return sp.cancel(sp.expand(num.xreplace({_P: p})) / den)


def _direct(k: int, p, r) -> tuple[sp.Expr, ...]:
    """Particular solution (free unknowns = 0) of the reduced Gram system at the given ``p, r``."""
    parts, gram, _, _, _ = _structure(k)
    a = _gram_matrix(gram, p)
    b = sp.Matrix([r**len(nu) for nu in parts])
    try:
        sol, params = a.gauss_jordan_solve(b)
    except ValueError as exc:  # inconsistent: only for (p, r) that are not a valid projection
        raise ValueError(f"the Gram system of order k={k} has no solution at p={p}, r={r}") from exc
    sol = sol.xreplace({t: 0 for t in params})
    return tuple(sp.cancel(x) for x in sol)


def _type_coefficients(k: int, p, r) -> tuple[sp.Expr, ...]:
    parts = _structure(k)[0]
    if r == 0:       # Q = 0
        return tuple(sp.S.Zero for _ in parts)
    if sp.cancel(p - r) == 0:    # Q = I: T = delta_pi0 exactly (also the generic solution at r = p)
        return tuple(sp.S.One if mu == (1,) * k else sp.S.Zero for mu in parts)
    generic = _generic(k)
    values = [_evaluate(c, p, r) for c in generic]
    if any(v is None for v in values):
        values = list(_direct(k, p, r))
    return tuple(values)


def _factored(e):
    e = sp.cancel(e)
    gens = sorted(e.free_symbols, key=sp.default_sort_key)
    return factor(e, *gens) if gens else e


@lru_cache(maxsize=None)
def _moment(k: int, p, r) -> tuple[tuple[tuple[int, ...], sp.Expr], ...]:
    parts, _, counts, _, _ = _structure(k)
    cmu = _type_coefficients(k, p, r)
    total = {lam: sp.S.Zero for lam in parts}
    for i in range(len(parts)):
        for lam, n in counts[i].items():
            total[lam] += n * cmu[i]
    return tuple((lam, _factored(total[lam])) for lam in parts)


@lru_cache(maxsize=None)
def _pairings(k: int, p, r):
    parts, _, _, ms, types = _structure(k)
    index = {mu: i for i, mu in enumerate(parts)}
    cmu = [_factored(c) for c in _type_coefficients(k, p, r)]
    return tuple((s, cmu[index[mu]]) for s, mu in zip(ms, types))


# --- public API ----------------------------------------------------------------------------

def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, sp.Integer)) or not 1 <= int(k) <= MAX_K:
        raise ValueError(f"k must be an integer with 1 <= k <= {MAX_K} (supported range 1..{MAX_K}), got {k!r}")
    return int(k)


def _check_pr(p, r):
    p, r = sp.sympify(p), sp.sympify(r)
    if p.is_number and not (p.is_integer and p.is_positive):
        raise ValueError(f"p must be a positive integer (the dimension), got {p}")
    if not p.is_number and p.is_positive is False:
        raise ValueError(f"p must be positive, got {p}")
    if r.is_number and not (r.is_integer and r.is_nonnegative):
        raise ValueError(f"r must be an integer with 0 <= r <= p (the rank), got {r}")
    if not r.is_number and r.is_nonnegative is False:
        raise ValueError(f"r must be non-negative (the rank), got {r}")
    if (p - r).is_negative:
        raise ValueError(f"r must satisfy 0 <= r <= p (the rank), got p={p}, r={r}")
    return p, r


def haar_projection_trace_moment(k: int, p, r) -> dict[tuple[int, ...], sp.Expr]:
    """Coefficients ``c_lambda(p, r)`` of ``E tr((D Q)^k) = sum_lambda c_lambda prod_j tr D^{lambda_j}``.

    ``Q`` is a Haar-distributed rank-``r`` orthogonal projection of ``R^p`` and ``D`` any fixed
    symmetric ``p x p`` matrix (rule :data:`HAAR_PROJECTION_WEINGARTEN`; method in the module
    docstring).  ``p`` and ``r`` are symbols, expressions or integers (``0 <= r <= p``); ``k`` is
    an integer in ``1..MAX_K``.  The keys are all partitions of ``k`` (decreasing tuples, in
    decreasing lexicographic order, e.g. ``(3,), (2, 1), (1, 1, 1)``), zero coefficients
    included; the values are factored rational functions of ``p`` and ``r``.  Results are cached
    on ``(k, p, r)``; a fresh dict is returned on every call.

    >>> p, r = sp.symbols("p r")
    >>> haar_projection_trace_moment(1, p, r)
    {(1,): r/p}
    """
    k = _check_k(k)
    p, r = _check_pr(p, r)
    return dict(_moment(k, p, r))


def pairing_coefficients(k: int, p, r) -> dict[tuple[int, ...], sp.Expr]:
    """``c_sigma`` with ``E[Q_{x1 x2} ... Q_{x_{2k-1} x_{2k}}] = sum_sigma c_sigma delta_sigma``.

    Keys are the perfect matchings of the ``2k`` slots as 0-based partner tuples (``sigma[i]``
    is the slot paired with ``i``), in a fixed enumeration order; the values solve the full Gram
    system ``sum_sigma p^{loops(sigma, tau)} c_sigma = r^{loops(tau, pi0)}``.
    """
    k = _check_k(k)
    p, r = _check_pr(p, r)
    return dict(_pairings(k, p, r))


HAAR_ROTATION_SECOND_MOMENT = Rule(
    name="second moments of a Haar rotation of two matrices",
    statement=(r"\mathbb{E}\big[(O^{\top}\!AO)_{ab}(O^{\top}\!BO)_{cd}\big] = \alpha\,\delta_{ab}\delta_{cd}"
               r" + \beta(\delta_{ac}\delta_{bd} + \delta_{ad}\delta_{bc}),\ "
               r"\begin{pmatrix}p^2 & 2p\\ p & p^2 + p\end{pmatrix}\begin{pmatrix}\alpha\\ \beta\end{pmatrix} = "
               r"\begin{pmatrix}\operatorname{tr}A\operatorname{tr}B\\ \operatorname{tr}AB\end{pmatrix}"),
    conditions=(r"O \text{ Haar on } O(p)", r"A = A^{\top},\ B = B^{\top} \text{ fixed}"),
    reference=("O(p) invariance: the 4-index tensor is a combination of the three pairings, the last two with "
               "equal weight by the symmetry of A and B; contracting with two pairings gives the system (Weingarten, degree 2)"),
)


def haar_rotation_second_moment(p, tr_a_tr_b, tr_ab) -> tuple:
    """``(alpha, beta)`` of rule :data:`HAAR_ROTATION_SECOND_MOMENT`, solved exactly from its Gram system.

    ``p`` is the dimension, ``tr_a_tr_b = tr A tr B`` and ``tr_ab = tr(AB)`` (SymPy expressions)."""
    al, be = sp.symbols("_alpha _beta")
    sol = sp.solve([sp.Eq(p**2 * al + 2 * p * be, tr_a_tr_b), sp.Eq(p * al + (p**2 + p) * be, tr_ab)],
                   [al, be], dict=True)
    (s,) = sol
    return sp.factor(s[al]), sp.factor(s[be])
