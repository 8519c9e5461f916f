"""symmaml.rmt: public API, derivations, errors, determinism, and what sympy.stats does instead."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp
from sympy import stats
from sympy.matrices.exceptions import ShapeError
from sympy.stats.symbolic_multivariate_probability import ExpectationMatrix

import symmaml.rmt as rmt
from symmaml.derivation import Derivation, Rule
from symmaml.rmt import (
    EVALUATE, INVERSE_WISHART_SECOND, LINEARITY, WICK_CONTRACTION, Expect, MatExpect, NotAveragable,
    expectation, gaussian_matrix, gaussian_vector, wishart_moment, wishart_trace_moment,
)

ROOT = Path(__file__).resolve().parents[1]
n, p = sp.symbols("n p", positive=True, integer=True)
a = sp.Symbol("a", real=True)


def test_public_api():
    for name in ["gaussian_matrix", "gaussian_vector", "expectation", "wishart_moment", "wishart_trace_moment",
                 "inverse_wishart_moment", "inverse_wishart_second_moments", "expected_projection",
                 "INVERSE_WISHART_MEAN", "INVERSE_WISHART_SECOND", "ROTATIONAL_PROJECTION", "NotAveragable"]:
        assert name in rmt.__all__ and hasattr(rmt, name)
    for rule in (rmt.INVERSE_WISHART_MEAN, rmt.INVERSE_WISHART_SECOND, rmt.ROTATIONAL_PROJECTION):
        assert isinstance(rule, Rule) and rule.statement and rule.conditions and rule.reference
    X = gaussian_matrix("X", n, p)
    assert isinstance(X, sp.MatrixSymbol) and X.shape == (n, p)
    assert wishart_moment(2, n, p) == n**2 + n * p + n
    assert wishart_trace_moment((1, 1), n, p) == n**2 * p**2 + 2 * n * p
    assert wishart_trace_moment(2, n, p) == wishart_trace_moment((2,), n, p)


def test_sympy_stats_leaves_wishart_mean_unevaluated():
    """What sympy.stats 1.14 does with E[X^T X] -- and that symmaml evaluates it.

    * A symbolic-shape random matrix (``RandomMatrixSymbol``, n x p): ``E`` returns an
      unevaluated ``ExpectationMatrix``, also after ``doit()``.
    * ``MatrixNormal`` needs explicit scale matrices (no symbolic n, p at all); with 2 x 2 ones
      ``E(Z.T*Z)`` raises ``TypeError`` inside sympy 1.14 (``compute_expectation() got an
      unexpected keyword argument 'evaluate'``) -- accepted here as "not evaluated" either way.
    * Only a matrix of explicit scalar ``Normal`` entries, for a fixed numeric size, is averaged
      (entry by entry); it agrees with symmaml at that size.
    """
    Xs = stats.rv.RandomMatrixSymbol("X", n, p)
    for e in (stats.E(Xs.T * Xs), stats.Expectation(Xs.T * Xs).doit()):
        assert isinstance(e, ExpectationMatrix)
        assert e.has(Xs)  # still an expectation of the random symbol

    Z = stats.MatrixNormal("Z", sp.zeros(2, 2), sp.eye(2), sp.eye(2))
    try:
        r = stats.E(Z.T * Z)
    except TypeError:
        r = None
    assert r is None or r.has(Z)

    X = gaussian_matrix("X", n, p)
    assert expectation(X.T * X) == n * sp.Identity(p)

    entries = sp.Matrix(2, 3, lambda i, j: stats.Normal(f"x{i}{j}", 0, 1))
    assert stats.E(entries.T * entries) == 2 * sp.eye(3)
    assert expectation(X.T * X).subs({n: 2, p: 3}).as_explicit() == 2 * sp.eye(3)


# ---------------------------------------------------------------------------------------
# derivations


def _evaluate_expects(e):
    """Replace every unevaluated E[.] in ``e`` by its value (to check a recorded step)."""
    return e.replace(lambda x: isinstance(x, (Expect, MatExpect)), lambda x: expectation(x.arg))


def _coefficients(e):
    """``{matrix part: coefficient}`` of a sum of scalar multiples of matrices (a scalar: {1: e})."""
    if not isinstance(e, sp.MatrixExpr):
        return {1: e}
    e = e.doit()
    out = {}
    for term in (e.args if isinstance(e, sp.MatAdd) else (e,)):
        coeff, mats = term.as_coeff_matrices() if isinstance(term, sp.MatMul) else (sp.S.One, [term])
        part = mats[0] if len(mats) == 1 else sp.MatMul(*mats)
        out[part] = out.get(part, 0) + coeff
    return out


def _equal(u, v):
    cu, cv = _coefficients(u), _coefficients(v)
    return all(sp.simplify(cu.get(k, 0) - cv.get(k, 0)) == 0 for k in set(cu) | set(cv))


@pytest.mark.parametrize("make", [
    lambda X, M: X.T * X * M * X.T * X,
    lambda X, M: sp.Trace((sp.Identity(p) - a / n * X.T * X) ** 3),
    lambda X, M: sp.Trace(X.T * X) ** 2,
    lambda X, M: sp.Trace(sp.Inverse(X.T * X) * M) ** 2,
])
def test_steps_are_true_equations(make):
    """steps=True: a Derivation whose steps carry Rules, end in the value, and are each an identity."""
    X = gaussian_matrix("X", n, p)
    M = sp.MatrixSymbol("M", p, p)
    expr = make(X, M)
    value, d = expectation(expr, steps=True)
    assert value == expectation(expr)
    assert isinstance(d, Derivation) and len(d) >= 2
    assert d.steps[0].rule is LINEARITY and d.steps[-1].rule is EVALUATE
    assert d.steps[-1].after == value and d.result == value and d.order == "exact"
    for step in d:
        assert isinstance(step.rule, Rule) and step.rule.name and step.rule.statement
        assert r"\mathbb{E}" in sp.latex(step.before)
        # each step is a true equation: E[before] = after once the inner E[.] are evaluated
        assert _equal(_evaluate_expects(step.before), _evaluate_expects(step.after)), step
    assert WICK_CONTRACTION in d.rules or INVERSE_WISHART_SECOND in d.rules


# ---------------------------------------------------------------------------------------
# bad input


def test_non_conformable_shapes():
    X = gaussian_matrix("X", n, p)
    M = sp.MatrixSymbol("M", p, p)
    # numeric shapes: SymPy refuses to build the product
    with pytest.raises(ShapeError):
        gaussian_matrix("Z", 2, 3) * gaussian_matrix("Z", 2, 3)
    # symbolic shapes: SymPy builds these silently; the engine refuses them
    for bad, words in [(X * M * X, "non-conformable product"), (X * X, "power of a non-square"),
                       (X * M + X.T, "non-conformable sum"),
                       (sp.Trace(X), "trace of a non-square"), (sp.MatPow(X, 2), "power of a non-square"),
                       (sp.Trace(X.T * X) * (X * M.T * X), "non-conformable product")]:
        with pytest.raises(ShapeError, match=words):
            expectation(bad)
    # with symbolic shapes SymPy even multiplies a 1x1 matrix into a product (giving it a wrong
    # shape); the engine refuses and says how to write the scalar
    g = gaussian_vector("g", n)
    for bad, words in [((g.T * g) * X.T * X, "wrap it in Trace"), (X.T * X * (g.T * g), "wrap it in Trace")]:
        with pytest.raises(ShapeError, match=words):
            expectation(bad)
    assert issubclass(ShapeError, ValueError)


def test_objects_the_engine_cannot_average():
    X = gaussian_matrix("X", n, p)
    S = gaussian_matrix("S", n, n)
    W = X.T * X
    M = sp.MatrixSymbol("M", p, p)
    for bad, words in [
        (sp.Inverse(S), "only random inverses"),                       # not a Wishart
        (sp.Inverse(M + W), "only random inverses"),
        (sp.exp(sp.Trace(W)), "cannot average exp"),                   # a function of a Gaussian
        (1 / sp.Trace(W), "power -1"),                                 # a negative power
        (sp.sqrt(sp.Trace(W)), "power 1/2"),
        (X[0, 0] ** 2, "MatrixElement"),
        (sp.MatPow(W, sp.Rational(1, 2)), "power 1/2"),
        (sp.Inverse(W) * sp.Trace(W), "appears both inside an inverse and elsewhere"),
        (sp.Inverse(W) + sp.Trace(sp.Inverse(X * X.T)) * sp.Identity(p), "not independent"),
    ]:
        with pytest.raises(NotAveragable, match=words):
            expectation(bad)
    # deterministic objects the engine does not decompose are kept whole
    assert expectation(sp.Trace(sp.Inverse(M) * W)) == n * sp.Trace(sp.Inverse(M))
    assert expectation(sp.exp(sp.Trace(M)) * sp.Trace(W)) == n * p * sp.exp(sp.Trace(M))


def test_name_clashes_are_refused():
    X = gaussian_matrix("X", n, p)
    with pytest.raises(ValueError, match="two different matrices"):
        expectation(X + sp.MatrixSymbol("X", n, p))
    with pytest.raises(ValueError, match="two shapes"):
        expectation(sp.Trace(X.T * X) * sp.Trace(gaussian_matrix("X", p, p)))


@pytest.mark.parametrize("bad", [0, -1, 2.5, sp.Rational(1, 2), sp.Symbol("q", negative=True)])
def test_gaussian_matrix_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match="rows"):
        gaussian_matrix("X", bad, 3)
    with pytest.raises(ValueError, match="cols"):
        gaussian_matrix("X", 3, bad)
    with pytest.raises(ValueError, match="dim"):
        gaussian_vector("g", bad)


def test_other_argument_errors():
    with pytest.raises(ValueError, match="name"):
        gaussian_matrix("", 2, 2)
    with pytest.raises(ValueError, match="k must"):
        wishart_moment(-1, n, p)
    with pytest.raises(ValueError, match="k must"):
        wishart_moment(1.5, n, p)
    with pytest.raises(ValueError, match="ks must"):
        wishart_trace_moment((), n, p)
    with pytest.raises(ValueError, match="n must"):
        wishart_moment(2, 0, p)


# ---------------------------------------------------------------------------------------
# determinism

_SCRIPT = """
import sympy as sp
from symmaml.rmt import expectation, gaussian_matrix, gaussian_vector, wishart_trace_moment
n, p, a = sp.symbols("n p a", positive=True)
X, Y = gaussian_matrix("X", n, p), gaussian_matrix("Y", n, p)
M, B = sp.MatrixSymbol("M", p, p), sp.MatrixSymbol("B", n, n)
g = gaussian_vector("g", n, a)
exprs = [X.T * X * M * X.T * X, sp.Trace((sp.Identity(p) - a / n * X.T * X) ** 4),
         X * M * Y.T * B * Y * M.T * X.T, sp.Trace(g.T * B * g) ** 2 * X.T * X,
         sp.Trace(sp.Inverse(X.T * X) * M) ** 2 + sp.Trace(Y.T * Y * M)]
for e in exprs:
    value, d = expectation(e, steps=True)
    print(value)
    for s in d:
        print(" ", s.rule.name, "|", s.before, "|", s.after)
print(wishart_trace_moment((3, 2, 1), n, p))
"""


def test_results_do_not_depend_on_the_hash_seed():
    outputs = []
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        run = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env,
                             cwd=ROOT, timeout=120)
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].count("\n") > 10
