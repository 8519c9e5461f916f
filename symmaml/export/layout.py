r"""How a derivation is laid out for a reader; shared by the LaTeX and Markdown exporters.

Three mechanisms keep a document short without hiding anything the engine did:

* **Compact forms** (:func:`symmaml.export.display.compact`): each scalar expression is shown
  in the shortest of a few equal forms (factored, collected by a variable), checked equal to
  the engine's expression where it is rewritten.
* **Names for long sub-expressions.**  A step ``name = value`` (its ``lhs``, or else its
  ``before``, is a symbol) names ``value``; where a later display contains ``value`` it shows
  the name instead.  So the result is stated through the quantities its derivation named
  (``E\lVert\omega^\star - w_0\rVert^2``, the moments, ...), followed by a "where" clause.  The
  substitution is checked: putting the values back gives the engine's expression.
* **An appendix.**  A step whose display would take more than :data:`BODY_ROWS` rows has its
  longest member moved to the appendix (the step shows ``= (A.k)``).  An appendix entry longer
  than :data:`APPENDIX_ROWS` rows is summarised in a printed document (its degree in
  ``\alpha_t`` and number of terms) and given in full, collected by powers of ``\alpha_t``, in
  the Markdown version, up to :data:`MARKDOWN_MAX_TERMS` terms; a longer one (the moments of the
  corrected orders with several inner steps run to tens of thousands of terms) is summarised in
  both, with where the engine's expression is found.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from ..derivation import Derivation, Step
from ..symbols import LATEX_NAMES, alpha_t
from .display import _size, compact

__all__ = ["Layout", "StepView", "Entry", "layout", "BODY_ROWS", "APPENDIX_ROWS", "NAME_MIN_WIDTH",
           "MARKDOWN_MAX_TERMS"]

#: a step's display longer than this (in rows) moves its longest member to the appendix
BODY_ROWS = 9
#: an appendix entry longer than this (in rows) is summarised, not printed, in LaTeX
APPENDIX_ROWS = 36
#: an appendix entry of more terms than this (written out as a sum of products) is summarised in
#: the Markdown version too.  Of the documents under derivations/out, the longest entry given in full
#: has 3,897 terms (the overparameterised corrected order at k_t = 2, 46 kB of text); those left out
#: have 5,440 to about 56,000 (the corrected orders at k_t = 3 overparameterised, k_t = 2 under)
MARKDOWN_MAX_TERMS = 5_000
#: a named value is shown by its name only when it prints wider than this (units of a letter)
NAME_MIN_WIDTH = 24
#: a "where" clause shows a named value in full when it takes at most this many rows
WHERE_ROWS = 3
#: consecutive steps of the same rule are shown together while their displays take at most this
GROUP_ROWS = 12
#: an expression showing more symbols than this is shown as the engine wrote it (no compact form:
#: it goes to the appendix, and searching its forms would cost seconds)
COMPACT_MAX_SYMBOLS = 300


@dataclass
class Entry:
    """An appendix entry: ``name = value`` (value in compact form)."""

    label: str
    name: Any
    value: Any
    step: int
    rows: list | None = None       # the LaTeX display rows, or None when too long to print
    summary: str = ""              # what the value is (degree in alpha_t, number of terms)
    terms: int = 0                 # its number of terms written out, when summarised

    @property
    def in_markdown(self) -> bool:
        """Whether the Markdown version gives it in full (it always does when LaTeX prints it)."""
        return self.rows is not None or self.terms <= MARKDOWN_MAX_TERMS


@dataclass
class StepView:
    number: int
    step: Step
    first: int | None              # the earlier step that stated the same rule
    rows: list                     # display rows of ``lhs = before = after``
    refs: list = field(default_factory=list)  # appendix labels shown in this step


@dataclass
class Layout:
    statement_rows: list           # display rows of the result (empty if none)
    where_rows: list               # rows "name = value" of the short named values it uses
    where_refs: list               # ``(name, step)`` of the named values it uses, defined in steps
    steps: list
    appendix: list

    @property
    def groups(self) -> list:
        """The steps in runs shown as one paragraph: consecutive steps applying the same rule,
        the later ones without a note, whose displays together take at most :data:`GROUP_ROWS`."""
        out: list = []
        for v in self.steps:
            g = out[-1] if out else None
            if (g and v.step.rule == g[0].step.rule and not v.step.note
                    and sum(len(x.rows) for x in g) + len(v.rows) <= GROUP_ROWS):
                g.append(v)
            else:
                out.append([v])
        return out


# ----------------------------------------------------------------------------- names

def _is_name(x) -> bool:
    return isinstance(x, sp.Symbol)


def _is_scalar(x) -> bool:
    return isinstance(x, sp.Expr) and not x.is_Atom and not x.has(sp.MatrixExpr) and not isinstance(x, sp.MatrixExpr)


def step_name(step: Step):
    """The symbol a step names its ``after`` by (its ``lhs``, or its ``before``), or None."""
    for cand in (step.lhs, step.before):
        if _is_name(cand) and cand not in LATEX_NAMES and _is_scalar(step.after) and cand != step.after:
            return cand
    return None


def _width(expr, printer) -> float:
    from .latex import visual_width

    return visual_width(expr if isinstance(expr, str) else printer.doprint(expr))


def _symbols_shown(expr) -> int:
    """How many symbols ``expr`` shows (a cheap measure of its length, no printing)."""
    return _size(expr)[0] if isinstance(expr, sp.Basic) else 0


def _wider_than(expr, units: float, printer) -> bool:
    # a letter is about one unit: an expression showing many more symbols is wide without printing it
    return _symbols_shown(expr) > 2 * units or _width(expr, printer) > units


def _names(steps, printer) -> list:
    """``[(k, name, value)]`` for the steps that name a long value, in step order."""
    out = []
    for k, s in enumerate(steps, 1):
        name = step_name(s)
        if name is not None and _wider_than(s.after, NAME_MIN_WIDTH, printer):
            out.append((k, name, s.after))
    return out


def _replace(expr, value, name, memo):
    """``expr`` with ``value`` replaced by ``name``: whole subtrees, and the part of a product or
    sum made of ``value``'s factors or terms (``value h`` in a flattened product)."""
    key = (expr, id(value))
    if key in memo:
        return memo[key]
    if expr == value:
        out = name
    elif not expr.args or not isinstance(expr, sp.Basic):
        out = expr
    else:
        args = [_replace(a, value, name, memo) for a in expr.args]
        changed = any(a is not b and a != b for a, b in zip(args, expr.args))
        out = expr.func(*args) if changed else expr
        if not changed and type(value) is type(expr) and isinstance(expr, (sp.Mul, sp.Add)):
            coeff, parts, wanted = sp.S.One, list(expr.args), list(value.args)
            if isinstance(expr, sp.Mul):  # numeric coefficients merge in a product: compare the rest
                ce, parts = expr.as_coeff_mul()
                cv, wanted = value.as_coeff_mul()
                parts, coeff = list(parts), ce / cv
            for a in wanted:  # a sub-multiset of the arguments
                if a in parts:
                    parts.remove(a)
                else:
                    break
            else:
                out = coeff * expr.func(name, *parts) if isinstance(expr, sp.Mul) else expr.func(name, *parts)
    memo[key] = out
    return out


def abbreviate(expr, names, whole: bool = True):
    """``expr`` with each named value (latest first) replaced by its name; checked exact.

    ``whole=False`` keeps ``expr`` itself from being replaced by a name (a statement of a value).
    """
    if not _is_scalar(expr):
        return expr
    shown, used, memo = expr, [], {}
    for k, name, value in reversed(names):
        if value == expr and not whole:
            continue
        new = _replace(shown, value, name, memo)
        if new is not shown and new != shown:
            used.append((name, value))
            shown = new
    if used:
        back = shown
        for name, value in reversed(used):
            back = back.xreplace({name: value})
        if back != expr and sp.expand(back - expr) != 0:
            raise AssertionError(f"abbreviating {expr} gave {shown}, which is not equal to it")
    return shown


# ----------------------------------------------------------------------------- appendix

def _powers(value) -> dict | None:
    """``{k: [coefficients]}`` of a sum by powers of alpha_t (None if it is not one), without expanding."""
    by_power: dict = {}
    for term in sp.Add.make_args(value):
        k, rest = 0, []
        for f in sp.Mul.make_args(term):
            if f == alpha_t:
                k += 1
            elif f.is_Pow and f.base == alpha_t and f.exp.is_Integer and f.exp > 0:
                k += int(f.exp)
            elif f.has(alpha_t):
                return None
            else:
                rest.append(f)
        by_power.setdefault(k, []).append(sp.Mul(*rest))
    return by_power


def _summary(value, rows) -> str:
    """What a long value is, in words and inline math (for a document that does not print it)."""
    from .latex import expr_latex

    powers = _powers(value) if _is_scalar(value) else None
    if powers and len(powers) > 1:
        others = sorted(value.free_symbols - {alpha_t}, key=sp.default_sort_key)
        coeffs = (", ".join(f"${expr_latex(s)}$" for s in others) if len(others) <= 8 else
                  f"{len(others)} symbols")
        return (f"a polynomial of degree {max(powers)} in $\\alpha_t$"
                + (f" whose coefficients are polynomials in {coeffs}" if coeffs else ""))
    return f"an expression whose display takes {rows} lines" if rows else "a long expression"


def term_count(expr) -> int:
    """The number of terms of ``expr`` written out as a sum of products, counted without expanding."""
    if isinstance(expr, sp.Add):
        return sum(term_count(a) for a in expr.args)
    if isinstance(expr, sp.Mul):
        n = 1
        for a in expr.args:
            n *= term_count(a)
        return n
    if isinstance(expr, sp.Pow) and isinstance(expr.base, sp.Add) and expr.exp.is_Integer and expr.exp > 0:
        return term_count(expr.base) ** int(expr.exp)
    return 1


def by_powers_text(value) -> str:
    """``value`` as plain text by powers of alpha_t, when it is a sum by powers (the Markdown appendix)."""
    powers = _powers(value) if _is_scalar(value) else None
    if not powers:
        return sp.sstr(value)
    return "\n".join(f"alpha_t^{k}: {sp.sstr(sp.Add(*powers[k]))}" for k in sorted(powers))


# ----------------------------------------------------------------------------- layout

def _compact(x):
    if _is_scalar(x) and _symbols_shown(x) <= COMPACT_MAX_SYMBOLS:
        return compact(x)
    return x


def layout(derivation: Derivation, width: float, printer) -> Layout:
    """The layout of ``derivation`` at ``width`` (see the module docstring); cached on the
    derivation (keyed by width and number of steps: a derivation only grows)."""
    cache = derivation.__dict__.setdefault("_layout_cache", {})
    key = (width, len(derivation.steps), id(derivation.result))
    if key not in cache:
        cache[key] = _layout(derivation, width, printer)
    return cache[key]


def _layout(derivation: Derivation, width: float, printer) -> Layout:
    from .latex import display_rows, earlier_statement, result_lhs

    d = derivation
    names = _names(d.steps, printer)
    appendix: list = []
    views = []
    firsts = earlier_statement(d.steps)
    for k, (step, first) in enumerate(zip(d.steps, firsts), 1):
        earlier = [n for n in names if n[0] < k]
        chain = [x for x in (step.lhs, step.before, step.after) if x is not None]
        shown = [x if isinstance(x, str) else _compact(abbreviate(x, earlier)) for x in chain]
        refs = []
        movable = list(range(1, len(shown))) if len(shown) > 1 else []
        # a member showing more symbols than BODY_ROWS rows can hold is not even printed here
        rows = [] if any(_symbols_shown(shown[i]) > width * BODY_ROWS for i in movable) else \
            display_rows(shown, width, printer)
        while (not rows or len(rows) > BODY_ROWS) and movable:
            i = max(movable, key=lambda j: (_symbols_shown(shown[j]), j))  # the longest member
            movable.remove(i)
            label = f"A.{len(appendix) + 1}"
            name = chain[0] if (_is_name(chain[0]) or isinstance(chain[0], str)) and i > 0 else None
            appendix.append(Entry(label, name if name is not None else rf"\text{{Step {k}}}", shown[i], k))
            shown[i] = rf"\text{{(A.{len(appendix)})}}"
            refs.append(label)
            rows = display_rows(shown, width, printer)
        views.append(StepView(k, step, first, rows, refs))
    for entry in appendix:
        # a row shows at most about ``width`` symbols: longer values are not printed at all
        rows = (display_rows([entry.name, entry.value], width, printer)
                if _symbols_shown(entry.value) <= width * APPENDIX_ROWS else None)
        if rows is not None and len(rows) <= APPENDIX_ROWS:
            entry.rows = rows
        else:
            entry.summary = _summary(entry.value, len(rows) if rows else None)
            entry.terms = term_count(entry.value) if _is_scalar(entry.value) else 0

    statement_rows, where_rows, where_refs = [], [], []
    if d.result is not None:
        lhs = result_lhs(d)
        result = _compact(abbreviate(d.result, names, whole=False))
        statement_rows = display_rows([lhs, result] if lhs is not None else [result], width, printer)
        # the named quantities the statement uses: short ones in full, the others by their step
        defining = {}
        for k, s in enumerate(d.steps, 1):
            if _is_name(s.before) and any(s.before == sym for sym, _ in d.definitions):
                defining.setdefault(s.before, k)
        named = {name: (k, value) for k, name, value in names}
        shown = []
        for s in sorted(result.free_symbols & (set(named) | set(defining)), key=sp.default_sort_key):
            k, value = named[s] if s in named else (defining[s], None)
            if value is not None:
                value = _compact(abbreviate(value, [n for n in names if n[0] < k], whole=False))
                rows = (display_rows([s, value], width, printer)
                        if _symbols_shown(value) <= width * WHERE_ROWS else None)  # else surely too long
                if rows is not None and len(rows) <= WHERE_ROWS:
                    shown.append((k, rows, value))
                    continue
            where_refs.append((s, k))
        for k, rows, value in sorted(shown, key=lambda x: x[0]):
            where_rows.extend(rows)
            # what the shown values use, by its step
            for s in sorted(value.free_symbols & (set(named) | set(defining)), key=sp.default_sort_key):
                if s not in result.free_symbols and all(s != r for r, _ in where_refs):
                    where_refs.append((s, named[s][0] if s in named else defining[s]))
        where_refs.sort(key=lambda x: x[1])
    return Layout(statement_rows, where_rows, where_refs, views, appendix)


__all__ += ["abbreviate", "step_name", "by_powers_text", "term_count"]
