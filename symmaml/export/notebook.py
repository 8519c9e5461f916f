"""Results and derivations as notebooks show them (Jupyter's ``_repr_latex_`` / ``_repr_markdown_``).

A notebook is for looking, not for a paper: a result shows its statement (the expression, then
each named intermediate quantity it uses), a derivation an overview of its steps (rule, note,
and the step's result when it is short).  Expressions too long to read at a glance (the moment
polynomials of a corrected result, several pages of LaTeX) are named with where to find them
instead of being printed; the documents (``.latex()``, ``.markdown()``) print everything.
"""
from __future__ import annotations

import sympy as sp

from ..derivation import Derivation
from .latex import expr_latex, regime_text, result_lhs
from .markdown import text_markdown

__all__ = ["statement_latex", "result_markdown", "derivation_markdown_summary", "LONG"]

#: expressions whose LaTeX is longer than this many characters are referred to, not printed
LONG = 700


def _tex(expr) -> str:
    return expr_latex(expr)


def _nodes_beyond(expr, limit: int) -> bool:
    """More than ``limit`` nodes in the expression tree (stops counting there: cheap for huge ones)."""
    if not hasattr(expr, "args"):
        return False
    for k, _ in enumerate(sp.preorder_traversal(expr)):
        if k > limit:
            return True
    return False


def _short(expr) -> str | None:
    """The LaTeX of ``expr`` if it is short (at most :data:`LONG` characters), else None; a tree of
    more than LONG/2 nodes is long without printing it (printing the corrected results' moment
    polynomials would take seconds)."""
    if _nodes_beyond(expr, LONG // 2):
        return None
    tex = _tex(expr)
    return tex if len(tex) <= LONG else None


def statement_latex(lhs: str, expr, definitions=(), *, long_note: str = "") -> str:
    """``$\\displaystyle \\begin{aligned} lhs &= expr \\\\ s_1 &= v_1 ... \\end{aligned}$``.

    A definition too long to read (over :data:`LONG` characters of LaTeX) is shown as
    ``\\text{(long; ...)}`` with ``long_note`` telling where it is."""
    if not lhs:
        return rf"$\displaystyle {_tex(expr)}$"
    rows = [rf"{lhs} &= {_tex(expr)}"]
    for sym, value in definitions:
        tex = _short(value)
        where = tex if tex is not None else rf"\text{{(a long expression{long_note})}}"
        rows.append(rf"{_tex(sym)} &= {where}")
    if len(rows) == 1:
        return rf"$\displaystyle {lhs} = {_tex(expr)}$"
    rows[1] = r"\text{where}\quad " + rows[1]
    return "$\\displaystyle \\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}$"


def result_markdown(*, name: str, regime: str, order: str, approximation: str, conditions, expr,
                    definitions=(), domain: str = "", steps: int = 0, lhs: str) -> str:
    """A result for a notebook: what it is, where it holds, the expression and its definitions."""
    out = [f"**{text_markdown(name[:1].upper() + name[1:])}** ({text_markdown(regime_text(regime))}; "
           f"order: {text_markdown(order)})", ""]
    if approximation and approximation != order:
        out += [f"*Approximation:* {text_markdown(approximation)}", ""]
    if conditions:
        out += ["*Holds for:* " + ", ".join(f"${_tex(c)}$" for c in conditions), ""]
    out += ["$$" + statement_latex(lhs, expr, ()).strip("$").replace(r"\displaystyle ", "", 1) + "$$", ""]
    if definitions:
        out += [f"where, in this order ({len(definitions)} named quantities):", ""]
        for k, (sym, value) in enumerate(definitions):
            tex = _short(value)
            if tex is not None:
                out.append(f"- ${_tex(sym)} = {tex}$")
            else:
                out.append(f"- ${_tex(sym)}$: a long expression (`r.definitions[{k}][1]`)")
        out.append("")
        if domain:
            out += [f"*Domain:* {text_markdown(domain)}", ""]
        out += ["`r.full_expr()` gives the expression with every named quantity substituted.", ""]
    if steps:
        out += [f"Derived in {steps} steps: `r.derivation` (the steps as data), `r.markdown()`, "
                "`r.latex(standalone=True)`.", ""]
    return "\n".join(out).rstrip() + "\n"


def derivation_markdown_summary(d: Derivation) -> str:
    """A derivation for a notebook: title, order, assumptions, then one line per step."""
    out = [f"**{text_markdown(d.title)}**", ""]
    meta = []
    if d.regime:
        meta.append(f"*Regime:* {text_markdown(regime_text(d.regime))}")
    meta.append(f"*Order:* {text_markdown(d.order or 'exact')}")
    if d.assumptions:
        meta.append("*Assumptions:* " + "; ".join(f"${a}$" for a in d.assumptions))
    out += ["; ".join(meta), ""]
    for k, step in enumerate(d.steps, 1):
        line = f"{k}. **{text_markdown(step.rule.name)}**"
        if step.note:
            line += f": {text_markdown(step.note)}"
        if step.after is not None:
            tex = _short(step.after)
            lhs = _short(step.lhs) if step.lhs is not None else None
            if tex is not None:
                line += f" — ${lhs + ' = ' if lhs else ''}{tex}$"
            else:
                line += f" — *(a long expression: `d.steps[{k - 1}].after`)*"
        out.append(line)
    if d.result is not None:
        lhs = result_lhs(d)
        tex = _short(d.result)
        out += ["", "**Result:** " + (f"${_tex(lhs) + ' = ' if lhs is not None else ''}{tex}$" if tex is not None
                                      else "a long expression (`d.result`)")]
    out += ["", "The full text, every expression included: `symmaml.export.markdown.derivation_markdown(d)` "
                "or `symmaml.export.latex.derivation_document(d)`."]
    return "\n".join(out) + "\n"
