"""Expectations of sums over independent, identically distributed groups of random matrices.

Many averages run over ``m`` i.i.d. groups (tasks, say): ``E[(sum_i a_i)(sum_j b_j)]`` and
higher.  A :class:`GroupSum` is a polynomial in such sums: a list of monomials, each a
coefficient times an ordered (matrix) product of *factors*, every factor built from the letters of
one group and carrying a group index; each index is summed over ``1..m``.  :meth:`GroupSum.expect`
splits every index sum by the set partition of equal indices,

    E sum_{i_1..i_K} prod_k f_k(i_k) = sum_{partitions P} (m)_{|P|} E prod_k f_k(group of k's block),

with ``(m)_r = m (m-1) ... (m-r+1)`` the number of ways to give the blocks distinct groups, and averages
each term with :func:`~symmaml.rmt.expectation` (letters of different groups are independent; letters
shared by all groups may appear too).  A factor may declare its parity in the group's letters; a
block whose parity is odd averages to zero and is skipped without calling the engine.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import count
from typing import Callable

import sympy as sp

from .expectation import expectation

__all__ = ["Factor", "GroupSum", "set_partitions", "falling"]


@dataclass(frozen=True)
class Factor:
    """A factor built from one group's letters: ``build(group) -> SymPy (matrix) expression``.

    ``parity``: 0 (even in the group's Gaussian letters), 1 (odd) or None (unknown / mixed).
    ``transposed`` builds the transpose.
    """

    name: str
    build: Callable
    parity: int | None = None
    transposed: bool = False

    def __call__(self, group):
        e = self.build(group)
        return e.T if self.transposed else e

    @property
    def T(self) -> "Factor":
        return Factor(self.name, self.build, self.parity, not self.transposed)


_fresh = count()


@dataclass(frozen=True)
class _Monomial:
    coeff: sp.Expr
    factors: tuple  # ((Factor or fixed SymPy matrix, index label or None), ...)

    @property
    def indices(self) -> tuple:
        seen = []
        for _, i in self.factors:
            if i is not None and i not in seen:
                seen.append(i)
        return tuple(seen)


class GroupSum:
    """A polynomial in sums over groups (see the module docstring).

    Build with :meth:`over` (``sum_i f(i)``), :meth:`constant` (a fixed matrix or scalar, the same for
    every group), ``+``, ``-``, scalar ``*``, matrix product ``@`` and ``.T``.
    """

    def __init__(self, monomials=()):
        self.monomials = tuple(monomials)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def over(cls, factor: Factor) -> "GroupSum":
        """``sum_i factor(group i)``."""
        return cls([_Monomial(sp.S.One, ((factor, next(_fresh)),))])

    @classmethod
    def constant(cls, value) -> "GroupSum":
        """A matrix or scalar that does not depend on the groups."""
        value = sp.sympify(value)
        if not isinstance(value, sp.MatrixExpr):
            return cls([_Monomial(value, ())])
        return cls([_Monomial(sp.S.One, ((value, None),))])

    def _renamed(self) -> "GroupSum":
        out = []
        for mono in self.monomials:
            fresh = {i: next(_fresh) for i in mono.indices}
            out.append(_Monomial(mono.coeff, tuple((f, fresh.get(i)) for f, i in mono.factors)))
        return GroupSum(out)

    def __add__(self, other):
        other = other if isinstance(other, GroupSum) else GroupSum.constant(other)
        return GroupSum(self.monomials + other.monomials)

    __radd__ = __add__

    def __neg__(self):
        return GroupSum(_Monomial(-mono.coeff, mono.factors) for mono in self.monomials)

    def __sub__(self, other):
        return self + (-other)

    def __mul__(self, scalar):
        if isinstance(scalar, GroupSum):
            raise TypeError("use @ for the product of two GroupSums")
        scalar = sp.sympify(scalar)
        return GroupSum(_Monomial(scalar * mono.coeff, mono.factors) for mono in self.monomials)

    __rmul__ = __mul__

    def __matmul__(self, other: "GroupSum") -> "GroupSum":
        other = other._renamed()  # the two sums' indices are independent summation variables
        return GroupSum(_Monomial(a.coeff * b.coeff, a.factors + b.factors)
                        for a in self.monomials for b in other.monomials)

    @property
    def T(self) -> "GroupSum":
        def t(f):
            return f.T
        return GroupSum(_Monomial(mono.coeff, tuple((t(f), i) for f, i in reversed(mono.factors)))
                        for mono in self.monomials)

    # -- expectation ------------------------------------------------------------------------
    def expect(self, m, make_group: Callable, finish: Callable = lambda e: e) -> sp.Expr:
        """``E[self]`` over ``m`` i.i.d. groups; ``make_group(k)`` returns the k-th group's letters.

        ``finish`` post-processes each engine result (e.g. substitutes deterministic vectors).
        A 1x1 matrix result is returned as a scalar.
        """
        total = sp.S.Zero
        for mono in self.monomials:
            idx = mono.indices
            for partition in set_partitions(len(idx)):
                where = {i: b for b, block in enumerate(partition) for i in (idx[k] for k in block)}
                if _odd_block(mono, where):
                    continue
                groups = [make_group(b) for b in range(len(partition))]
                parts = [f(groups[where[i]]) if i is not None else f for f, i in mono.factors]
                prod = sp.MatMul(*parts).doit() if any(isinstance(p, sp.MatrixExpr) for p in parts) else sp.Mul(*parts)
                value = finish(expectation(prod))
                if isinstance(value, sp.MatrixExpr) and value.shape == (1, 1):
                    value = value[0, 0]
                total += mono.coeff * falling(m, len(partition)) * value
        return total


def _odd_block(mono: _Monomial, where: dict) -> bool:
    parity: dict = {}
    for f, i in mono.factors:
        if i is None:
            continue
        p = getattr(f, "parity", None)
        if p is None:
            return False
        parity[where[i]] = parity.get(where[i], 0) ^ p
    return any(parity.values())


def falling(m, r: int):
    """``m (m-1) ... (m-r+1)``: ordered choices of r distinct groups out of m."""
    return sp.Mul(*(m - k for k in range(r)))


@lru_cache(maxsize=None)
def set_partitions(n: int) -> tuple:
    """All set partitions of ``range(n)`` as tuples of blocks (tuples), in a fixed order."""
    if n == 0:
        return ((),)
    out = []
    for part in set_partitions(n - 1):
        for b in range(len(part)):  # n-1 joins an existing block
            out.append(tuple(blk + (n - 1,) if k == b else blk for k, blk in enumerate(part)))
        out.append(part + ((n - 1,),))
    return tuple(out)
