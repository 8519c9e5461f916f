r"""The special function ``SpectralIntegral``: a one-dimensional integral, with fast numerics.

What it is.  For ``x1, x2 > 0``, ``w1, w2 >= 0`` (``W = w1 + w2 > 0``) and ``k >= 0``::

    J(x1, x2, w1, w2, k) = int_0^inf (1 + 2 s x1)^(-w1/2) (1 + 2 s x2)^(-w2/2)
                                 * [ (w1 x1 + w2 x2) / (w1 x1/(1 + 2 s x1) + w2 x2/(1 + 2 s x2)) ]^k ds.

The bracket grows like s, so the integrand decays like ``s^-d`` with the *decay exponent*
``d = W/2 - k``; the integral converges iff ``d > 1``.  With one node (``x1 == x2``, or a zero
weight) the integrand is ``(1 + 2 s x)^-d`` and ``J = 1/(2 x (d - 1)) = 1/(x (W - 2k - 2))``.

Where it comes from.  For ``H = X B X^T`` with ``X`` an ``n_v x p`` standard Gaussian matrix,
``E tr H^-1`` is, row by row (Schur complement), ``E 1/(x^T K x)`` for a Gaussian vector ``x`` and a
matrix ``K`` built from ``B`` and the other rows, and the exponential-integral representation
``E_x 1/(x^T K x) = int_0^inf det(I + 2 s K)^(-1/2) ds`` (from ``1/q = int_0^inf e^(-s q) ds``)
turns it into a one-dimensional integral.  Replacing the spectral measure of ``B`` by two nodes
``x1, x2`` with weights (multiplicities) ``w1, w2`` leads to the integrand above, with
``k = (n_v - 1)/2`` in symmaml's use (and ``W`` an integer ``>= n_v + 2``, so ``d >= 3/2``).
With one node this is exact: ``B = x I_r`` gives the inverse-Wishart value
``E tr H^-1 = n_v/(x (r - n_v - 1)) = n_v J``.

SymPy.  :class:`SpectralIntegral` evaluates to the closed form when the nodes coincide or a weight
is zero and otherwise stays unevaluated; it prints to LaTeX as the explicit integral and
``.evalf()`` integrates with mpmath.  For ``sympy.lambdify`` use the module dictionaries
:data:`NUMPY` (with ``"numpy"``), :data:`MATH` (with ``"math"``) and :data:`MPMATH` (with
``"mpmath"``); ``cse=True`` is fine.  Outside the domain (non-positive ``x``, negative ``w`` or
``k``, ``d <= 1``, non-finite input) the numeric functions return NaN, without warnings.

The float64 quadrature (:func:`spectral_integral_numpy`).  In ``u = log s`` the integrand is
``exp g(u)``, ``g(u) = u + sum_i a_i log(1 + q_i e^u)`` with the rates ``q = 2 x1, 2 x2, q_D``
(``q_D = 2 W/(w1/x2 + w2/x1)``, from the bracket: ``D/S = 1 + q_D s``) and ``a = k - w1/2,
k - w2/2, -k``.  ``exp g`` is analytic in the strip ``|Im u| < pi`` (its singularities sit above
the break points ``-log q_i``), unimodal, and decays like ``e^u`` on the left and ``e^-(d-1)u`` on
the right; the break points spread over ``|log(x1/x2)|``.  Per point the peak ``u*`` of ``g`` is
found by bisection on the sign of ``g'`` (a cubic in ``e^-u``), and the nodes are

    u_j = u* + c sinh(t_j) + eps sinh(lam t_j),   t_j = -T1 + j h   (trapezoid rule in t),

so ``s_j = e^{u*} e^{phi_j}``: one fixed node set per class of points, shifted per point.  The
``c sinh t`` part is the exp-sinh (double-exponential) map: fine steps ``c h`` at the peak,
growing ones in the tails, where the algebraic tails in ``s`` become double-exponential in
``t``; the small ``eps sinh(lam t)`` term (``lam = 5, 6``) takes over far out and reaches the
slow tail ``e^-(d-1)u`` (``d - 1 >= 1/2``: 33/(d - 1) e-folds past the break points) in a few
nodes.  The trapezoid rule on such an integrand converges geometrically in ``1/h``.  Four node
sets, by ``|log(x1/x2)|`` (wider spread of break points needs a wider, finer rule), tuned on
2800 points and validated on 1000 others:

    |log(x1/x2)| < 6 (ratio < 400):  69 nodes    6 .. 9.3 (ratio < 1.1e4):  78 nodes
    9.3 .. 12.5 (ratio < 2.7e5):     95 nodes    beyond:                   143 nodes

For ``d - 1 < 1/2`` (outside symmaml's use) the slow tail is removed first: ``f - f_1`` is
integrated, ``f_1 = c (1 + q s)^-d`` the one-node integrand with the last break point's rate and
the same tail, and ``int f_1 = c/(q (d - 1))`` added back.  Evaluation goes in blocks of 16384
points and node x point arrays of at most 143 x 2048 elements (memory bounded for any input size).

Measured accuracy, against ``mpmath.quad`` at 30 digits (:func:`spectral_integral_mpmath`, itself
checked at 45 digits), on 4089 points with ``x`` in ``[1e-3, 1e4]`` (ratios up to 1e7), ``d`` from
3/2 to 100, ``W`` up to 286, ``k`` up to 59, ``w1`` down to ``3e-4 W``: worst relative error
3.2e-13 (at x = (2.6e-3, 7.4e3), w = (20.6, 35.4), k = 16.5), median 1.2e-15, 99% below 2.8e-14;
by class 4.9e-14, 1.4e-13, 2.5e-13, 3.2e-13.  For ``0.05 <= d - 1 < 1/2``: 3.7e-12 worst (300
points); ``d - 1 = 1e-3``: ~1e-12, ``1e-6``: ~2e-9.  Outside ``[1e-3, 1e4]`` (x down to 1e-9,
ratios 1e7) it stays below 1e-10.  (Rounding alone costs ~1e-14 when ``|a_i log(1 + q_i s)|`` are
large and cancel.)

Speed (one core, NumPy 2.4): 10^6 points in 0.70 s when ``|log(x1/x2)| < 6``, 0.78 s with
``x1, x2`` log-uniform on ``[1e-3, 1e4]``, 1.3 s when all ratios exceed 2.7e5; coincident nodes
(closed form) 0.03 s; one point (:func:`spectral_integral_float`) about 0.2 ms.  About 10 ns per
node and point: three ``log1p``, one ``exp`` and a few array passes.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import sympy as sp
from sympy.printing.precedence import PRECEDENCE

__all__ = [
    "SpectralIntegral",
    "spectral_integral_numpy",
    "spectral_integral_float",
    "spectral_integral_mpmath",
    "NUMPY",
    "MATH",
    "MPMATH",
]


# --------------------------------------------------------------------------------------
# SymPy function
# --------------------------------------------------------------------------------------
def _same(a, b) -> bool:
    """Structurally equal, or equal numbers (2 and 2.0)."""
    if a == b:
        return True
    if a.is_number and b.is_number:
        return bool((a - b).is_zero)
    return False


def evalf_with(fn, args, prec):
    """``.evalf`` of a special function by its mpmath implementation ``fn``: None (stay unevaluated) unless every
    argument is a real number; NaN where ``fn`` is not finite."""
    try:
        vals = [a._to_mpmath(prec) for a in args]
    except (AttributeError, TypeError, ValueError):
        return None
    if any(isinstance(v, mpmath.mpc) for v in vals):
        return None
    with mpmath.workprec(prec):
        v = fn(*vals)
    if not mpmath.isfinite(v):
        return sp.S.NaN
    return sp.Float._new(v._mpf_, prec)


class SpectralIntegral(sp.Function):
    r"""``SpectralIntegral(x1, x2, w1, w2, k)``: the one-dimensional integral

    .. math::

        J = \int_0^\infty (1 + 2 s x_1)^{-w_1/2} (1 + 2 s x_2)^{-w_2/2}
            \left[\frac{w_1 x_1 + w_2 x_2}{\frac{w_1 x_1}{1 + 2 s x_1}
            + \frac{w_2 x_2}{1 + 2 s x_2}}\right]^k ds

    for ``x1, x2 > 0``, ``w1, w2 >= 0`` (not both zero), ``k >= 0`` and
    ``(w1 + w2)/2 - k > 1`` (see the module docstring).  It evaluates to its closed form
    ``1/(x (W - 2 k - 2))`` when the two nodes coincide (``x1 == x2``, ``W = w1 + w2``) or one
    weight is zero (then ``x, W`` are the node with the non-zero weight and that weight);
    otherwise it stays unevaluated.  ``.evalf()`` integrates with mpmath; ``lambdify`` with the
    module dictionaries :data:`NUMPY`, :data:`MATH`, :data:`MPMATH` gives fast numerics.
    """

    nargs = 5

    @classmethod
    def eval(cls, x1, x2, w1, w2, k):
        if w1.is_zero and w2.is_zero:
            return None  # outside the domain: nothing to say
        if w2.is_zero:
            x, W = x1, w1
        elif w1.is_zero:
            x, W = x2, w2
        elif _same(x1, x2):
            x, W = x1, w1 + w2
        else:
            return None
        den = W - 2 * k - 2
        if x.is_nonpositive or den.is_nonpositive:
            return None  # provably outside the domain (divergent or undefined): stay unevaluated
        return 1 / (x * den)

    def _eval_evalf(self, prec):
        return evalf_with(spectral_integral_mpmath, self.args, prec)

    def _latex(self, printer, exp=None):
        r"""The explicit integral, e.g. ``\int_{0}^{\infty} \frac{(\ldots)^{k}}{(1 + 2 s x_1)^{w_1/2}
        (1 + 2 s x_2)^{w_2/2}} \, ds`` (the variable is ``s`` unless an argument uses that name)."""
        x1, x2, w1, w2, k = self.args
        names = {str(sym) for sym in self.free_symbols}
        var = next(v for v in ("s", "t", "u", "v", r"\sigma") if v not in names)
        mul = PRECEDENCE["Mul"]

        def term(x):  # 1 + 2 s x
            return rf"1 + 2 {var} {printer.parenthesize(x, mul, strict=True)}"

        def weighted(w, x):  # w x
            return " ".join(printer.parenthesize(f, mul, strict=True) for f in (w, x) if f != 1)

        def half(w):  # w/2, compact in an exponent
            coeff, rest = (w / 2).as_coeff_Mul()
            if coeff == sp.Rational(1, 2) and rest != 1:
                return rf"{printer.parenthesize(rest, mul, strict=True)}/2"
            return printer._print(w / 2)

        def power(x, w):  # (1 + 2 s x)^{w/2}
            return rf"\left({term(x)}\right)^{{{half(w)}}}"

        if k.is_zero:
            num = "1"
        else:
            wx1, wx2 = weighted(w1, x1), weighted(w2, x2)
            ratio = rf"\frac{{{wx1} + {wx2}}}{{\frac{{{wx1}}}{{{term(x1)}}} + \frac{{{wx2}}}{{{term(x2)}}}}}"
            num = ratio if k == 1 else rf"\left({ratio}\right)^{{{printer._print(k)}}}"
        tex = rf"\int_{{0}}^{{\infty}} \frac{{{num}}}{{{power(x1, w1)} {power(x2, w2)}}} \, d{var}"
        if exp is not None:
            tex = rf"\left({tex}\right)^{{{exp}}}"
        return tex


# --------------------------------------------------------------------------------------
# float64 / NumPy
# --------------------------------------------------------------------------------------
#: The rules, by |log(x1/x2)|: (largest |log(x1/x2)|, c, eps, lam, T1, T2, h); see the module docstring.
_CLASSES = (
    (6.0, 3.0, 0.001, 5.0, 2.25, 2.5, 0.07),        # 69 nodes
    (9.3, 5.0, 0.0003, 6.0, 2.0, 2.25, 0.055),      # 78 nodes
    (12.5, 6.0, 0.0003, 6.0, 2.0, 2.25, 0.045),     # 95 nodes
    (math.inf, 8.0, 0.003, 5.0, 2.0, 2.25, 0.03),   # 143 nodes
)
_SLOW = 0.5  # decay exponent - 1 below this: subtract the one-node integrand (see _general)
_REACH_MAX = 600.0  # largest node offset in u = log s (e^u must not overflow)


def _nodes(c, eps, lam, T1, T2, h):
    """Offsets ``phi_j`` (in u = log s) and weights ``h phi'(t_j)`` of one rule: t_j = -T1 + j h."""
    t = -T1 + h * np.arange(int(round((T1 + T2) / h)) + 1)
    phi = c * np.sinh(t) + eps * np.sinh(lam * t)
    dphi = c * np.cosh(t) + eps * lam * np.cosh(lam * t)
    keep = phi <= _REACH_MAX
    return phi[keep], h * dphi[keep]


def _build_rules(classes=None):
    """Per class: (largest |log(x1/x2)|, nodes e^{phi_j}, weights e^{phi_j} h phi'(t_j))."""
    rules = []
    for (lrmax, c, eps, lam, T1, T2, h) in (classes or _CLASSES):
        phi, w = _nodes(c, eps, lam, T1, T2, h)
        rules.append((lrmax, np.exp(phi), w * np.exp(phi)))
    return rules


_RULES = _build_rules()
_BLOCK = 1 << 14  # points per block of per-point work (peak finding)
_CHUNK = 2048  # points per node x point array (at most 2^22 elements)
_PEAK_TOL = 0.15  # |u - u*| after bisection (the rule tolerates about 0.5)


def _peak(lq, a, d):
    """The maximum u* of g(u) = u + sum_i a_i log(1 + e^{u + lq_i}), the log of s f(s) at s = e^u.

    g'(u) = 1 + sum_i a_i sigma(u + lq_i) goes from 1 (u -> -inf) to 1 - d < 0 (u -> inf) and
    changes sign once (the piecewise-linear slopes 1, 1 + a_big, 1 - w_big/2, 1 - d of g never turn
    positive again once negative), so bisection on its sign is safe.  Times the positive
    prod_i (1 + r_i E) (E = e^{-u}, r_i = e^{-lq_i}) its sign is that of the cubic
    c0 + c1 E + c2 E^2 + c3 E^3.  The bracket: left of every break point -lq_i by
    log(1 + sum|a|) + 1, g' > 0; right of them by log(1 + sum|a|/(d - 1)) + 1, g' < 0.  The rule
    needs u* only to about +-0.5 (it centres the nodes): bisect to _PEAK_TOL.
    """
    asum = np.abs(a).sum(0)
    lo = -lq.max(0) - np.log1p(asum) - 1.0
    hi = -lq.min(0) + np.log1p(asum / (d - 1.0)) + 1.0
    r = np.exp(-lq)
    e1 = r.sum(0)
    c0 = 1.0 - d
    c1 = e1 * c0 - (a * r).sum(0)
    c2 = r[0] * r[1] * (1.0 + a[2]) + r[0] * r[2] * (1.0 + a[1]) + r[1] * r[2] * (1.0 + a[0])
    c3 = r[0] * r[1] * r[2]
    half = 0.5 * (hi - lo)
    v = -(lo + half)                           # v = -u, E = e^v
    cub = np.empty_like(v)
    steps = int(np.clip(np.ceil(np.log2(np.max(half, initial=1.0) / _PEAK_TOL)), 1, 60))
    for _ in range(steps):
        half *= 0.5
        E = np.exp(v)
        np.multiply(c3, E, out=cub)
        cub += c2
        cub *= E
        cub += c1
        cub *= E
        cub += c0
        v -= np.copysign(half, cub)            # g' > 0 (cub > 0): the peak is to the right
    return -v


def _general(x1, x2, w1, w2, k, rules=None, work=None):
    """J for valid points with x1 != x2 and both weights positive (1-d float arrays)."""
    rules = _RULES if rules is None else rules
    nmax = max(len(r[1]) for r in rules)
    if work is None or work.shape[1] < nmax * min(_CHUNK, x1.size):
        work = np.empty((2, nmax * min(_CHUNK, x1.size)))
    W = w1 + w2
    d = 0.5 * W - k
    # log of the three break-point rates: 1 + 2 s x1, 1 + 2 s x2 and
    # D/S = 1 + 2 s x1 x2 W / (w1 x1 + w2 x2) (with x_D = W / (w1/x2 + w2/x1), between x1 and x2)
    lq = np.stack([np.log(2.0 * x1), np.log(2.0 * x2), np.log(2.0 * W) - np.log(w1 / x2 + w2 / x1)])
    a = np.stack([k - 0.5 * w1, k - 0.5 * w2, -k])
    u = _peak(lq, a, d)
    Q = np.exp(u + lq)                    # rate x e^{u*}: the node s = e^{u*} e_j
    g = u + (a * np.log1p(Q)).sum(0)      # log(s* f(s*))
    shift = g - u                         # log f(s*)
    scale = np.exp(g)                     # s* f(s*)
    # slowly decaying tail (d - 1 < _SLOW): integrate f - f_1 instead, f_1 = c (1 + q s)^-d a one-node
    # integrand with the rate q = min(rates) of the last break point and the same tail C s^-d
    # (C = prod rate^a, so c = C q^d), whose integral c / (q (d - 1)) is added back; f - f_1
    # decays like s^(-d-1), and the two agree where the tail begins (no cancellation)
    lqe = lq.min(0)
    lc1 = (a * lq).sum(0) + d * lqe       # log c
    Q1 = np.exp(u + lqe)
    slow = d - 1.0 < _SLOW
    out = np.where(slow, np.exp(lc1 - lqe) / (d - 1.0), 0.0)
    lr = np.abs(lq[0] - lq[1])
    key = (2 * np.searchsorted(np.array([r[0] for r in rules]), lr) + slow).astype(np.int8)
    order = np.argsort(key, kind="stable")
    starts = np.searchsorted(key[order], np.arange(2 * len(rules) + 1))
    for ci, (_, e, w) in enumerate(rules):
        n = len(e)
        for vi in (0, 1):
            idx = order[starts[2 * ci + vi]:starts[2 * ci + vi + 1]]
            for j0 in range(0, idx.size, _CHUNK):
                sel = idx[j0:j0 + _CHUNK]
                m = sel.size
                acc = work[0, :n * m].reshape(n, m)
                buf = work[1, :n * m].reshape(n, m)
                first = True
                for i in range(3):                   # acc = log f(s_j) = sum_i a_i log(1 + rate_i s_j)
                    ai = a[i, sel]
                    if i == 2 and not ai.any():      # k = 0: no D term
                        continue
                    dst = acc if first else buf
                    np.multiply.outer(e, Q[i, sel], out=dst)
                    np.log1p(dst, out=dst)
                    dst *= ai
                    if not first:
                        acc += buf
                    first = False
                acc -= shift[sel]                    # log f(s_j) - log f(s*)
                np.maximum(acc, -650.0, out=acc)     # no subnormal results: exp would be 50x slower
                np.exp(acc, out=acc)
                if vi:  # minus f_1(s_j) / f(s*)
                    np.multiply.outer(e, Q1[sel], out=buf)
                    np.log1p(buf, out=buf)
                    buf *= -d[sel]
                    buf += (lc1 - shift)[sel]
                    np.maximum(buf, -650.0, out=buf)
                    np.exp(buf, out=buf)
                    acc -= buf
                out[sel] += (w @ acc) * scale[sel]
    return out


def spectral_integral_numpy(x1, x2, w1, w2, k):
    """SpectralIntegral on arrays (broadcast, float64); NaN outside the domain."""
    arrs = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x1, x2, w1, w2, k)))
    shape = arrs[0].shape
    x1, x2, w1, w2, k = (np.ravel(v) for v in arrs)
    out = np.full(x1.shape, np.nan)
    with np.errstate(all="ignore"):
        W = w1 + w2
        pm1 = 0.5 * W - k - 1.0
        valid = (np.isfinite(x1) & np.isfinite(x2) & np.isfinite(w1) & np.isfinite(w2) & np.isfinite(k)
                 & (x1 > 0) & (x2 > 0) & (w1 >= 0) & (w2 >= 0) & (W > 0) & (k >= 0) & (pm1 > 0))
        # closed forms: one node (coincident nodes, or a zero weight)
        single = valid & ((x1 == x2) | (w1 == 0) | (w2 == 0))
        xs = np.where(w1 == 0, x2, x1)
        out[single] = 0.5 / (xs[single] * pm1[single])
        idx = np.flatnonzero(valid & ~single)
        work = np.empty((2, max(len(r[1]) for r in _RULES) * min(_CHUNK, idx.size)))
        for i0 in range(0, idx.size, _BLOCK):
            sel = idx[i0:i0 + _BLOCK]
            out[sel] = _general(x1[sel], x2[sel], w1[sel], w2[sel], k[sel], work=work)
    out = out.reshape(shape)
    return out[()] if out.ndim == 0 else out


def spectral_integral_float(x1, x2, w1, w2, k):
    """SpectralIntegral on Python floats (the NumPy rule on one point); NaN outside the domain."""
    return float(spectral_integral_numpy(float(x1), float(x2), float(w1), float(w2), float(k)))


# --------------------------------------------------------------------------------------
# mpmath
# --------------------------------------------------------------------------------------
def spectral_integral_mpmath(x1, x2, w1, w2, k):
    """SpectralIntegral with mpmath.quad at the current precision; nan outside the domain."""
    mp = mpmath.mp
    x1, x2, w1, w2, k = (mpmath.mpf(v) for v in (x1, x2, w1, w2, k))
    W = w1 + w2
    pm1 = W / 2 - k - 1
    ok = all(mpmath.isfinite(v) for v in (x1, x2, w1, w2, k))
    if not (ok and x1 > 0 and x2 > 0 and w1 >= 0 and w2 >= 0 and W > 0 and k >= 0 and pm1 > 0):
        return mpmath.mpf("nan")
    if x1 == x2 or w1 == 0 or w2 == 0:
        return 1 / (2 * (x2 if w1 == 0 else x1) * pm1)
    with mpmath.workprec(mp.prec + 10):
        # in u = log s: J = int exp(u + a1 log1p(2 x1 e^u) + a2 log1p(2 x2 e^u) - k log1p(qD e^u)) du
        # (D/S = 1 + qD s), split at the break points -log(rate), the peak and on the right tail
        # e^{-(d - 1) u}
        qD = 2 * W / (w1 / x2 + w2 / x1)
        a1, a2 = k - w1 / 2, k - w2 / 2

        def F(u):
            s = mpmath.exp(u)
            return mpmath.exp(u + a1 * mpmath.log1p(2 * x1 * s) + a2 * mpmath.log1p(2 * x2 * s)
                              - k * mpmath.log1p(qD * s))

        bs = sorted(-mpmath.log(q) for q in (2 * x1, 2 * x2, qD))
        lo, hi = bs[0] - mpmath.log1p(W) - 4, bs[-1] + 4
        cand = bs + [hi]
        with np.errstate(all="ignore"):  # the peak of e^u f(e^u), found in floats
            lq = np.array([[float(mpmath.log(q))] for q in (2 * x1, 2 * x2, qD)])
            a = np.array([[float(a1)], [float(a2)], [float(-k)]])
            u = float(_peak(lq, a, np.array([float(W / 2 - k)]))[0])
        if math.isfinite(u):
            cand += [u - 4, u]
        pts = [lo]
        for c in sorted(c for c in cand if lo < c <= hi):
            if c - pts[-1] > 1:
                n = int(mpmath.ceil((c - pts[-1]) / 16))  # no gap wider than 16
                pts += [pts[-1] + (c - pts[-1]) * i / n for i in range(1, n + 1)]
        pts.append(hi + 8 / pm1)                    # the tail e^{-(p - 1) u}
        val = mpmath.quad(F, [-mpmath.inf] + pts + [mpmath.inf])
    return +val


NUMPY = {"SpectralIntegral": spectral_integral_numpy}
MATH = {"SpectralIntegral": spectral_integral_float}
MPMATH = {"SpectralIntegral": spectral_integral_mpmath}
