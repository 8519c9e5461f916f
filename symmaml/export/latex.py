r"""Derivations as LaTeX: a fragment to ``\input`` into a paper, or a standalone article.

Expressions are printed by SymPy's LaTeX printer with the canonical symbol names
(:data:`symmaml.symbols.LATEX_NAMES`) and a few notational choices (``^{\top}``, ``I``, raw
LaTeX symbol names kept verbatim).  Long expressions are broken over the lines of an
``align*`` environment by :func:`break_lines`, which walks the expression tree (never the
string, so ``\left...\right`` pairs are never cut):

* a sum is packed greedily, term by term, into lines of at most ``width`` units of printed
  math (:func:`visual_width` estimates the printed width of a LaTeX string in units of an
  italic letter); continuation lines start with ``+`` or ``-``;
* a term (or factor) that alone is too wide is broken recursively: a fraction becomes
  ``\frac{short factors}{denominator}\Big( ... \Big)`` with its long factors broken inside
  sized delimiters, a product of long factors puts each factor on its own lines (joined by
  ``\times`` or, for matrices, ``\cdot``), and one-argument wrappers such as
  ``\mathbb{E}[...]`` or ``\operatorname{tr}(...)`` are broken inside ``\Big[ ... \Big]``.

The output is deterministic: it depends only on the expressions (SymPy's printer orders
terms by a hash-independent sort key) and contains no dates.
"""
from __future__ import annotations

import re
import textwrap
from functools import lru_cache
from typing import Any, Iterable

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import precedence_traditional
from sympy.simplify.radsimp import fraction

from ..derivation import Derivation, Step
from ..symbols import LATEX_NAMES

__all__ = [
    "expr_latex", "break_lines", "visual_width", "text_latex",
    "derivation_fragment", "derivation_document", "DEFAULT_WIDTH", "REGIME_NAMES",
]

#: printed-math budget of one display line, in units of an italic letter (about 6 pt at 11 pt);
#: fits the 16 cm text width of :func:`derivation_document` (A4, 2.5 cm margins) with room to spare.
DEFAULT_WIDTH = 68
#: how the regimes read in prose
REGIME_NAMES = {"over": "overparameterised", "under": "underparameterised"}
#: longest line of generated LaTeX source (math lines are wrapped at spaces beyond this)
SOURCE_WIDTH = 100

_RAW_NAME = re.compile(r"[\\{}()\[\] ]")


class SymmamlLatexPrinter(LatexPrinter):
    """SymPy's LaTeX printer with symmaml's notation.

    Canonical symbols print with :data:`~symmaml.symbols.LATEX_NAMES`; symbols whose names
    are already LaTeX (they contain a backslash, braces, brackets or spaces) print verbatim;
    transposes print as ``^{\\top}`` and identities as ``I``; a matrix term with a negative
    scalar coefficient in a sum prints as ``- x`` rather than ``+ - x``.
    """

    def __init__(self, settings=None, memo: bool = False):
        settings = dict(settings or {})
        names = dict(LATEX_NAMES)
        names.update(settings.get("symbol_names") or {})
        settings["symbol_names"] = names
        super().__init__(settings)
        #: printed subexpressions (the line breaker prints the same pieces repeatedly); a
        #: lookup table only, never iterated, so it cannot affect the output's order
        self.memo: dict | None = {} if memo else None

    def _print(self, expr, **kwargs):
        if self.memo is None or kwargs or not isinstance(expr, sp.Basic):
            return super()._print(expr, **kwargs)
        tex = self.memo.get(expr)
        if tex is None:
            tex = self.memo[expr] = super()._print(expr)
        return tex

    def _print_Symbol(self, expr, style="plain"):
        name = self._settings["symbol_names"].get(expr)
        if name is not None:
            return name
        if _RAW_NAME.search(expr.name):
            return expr.name
        return super()._print_Symbol(expr, style=style)

    def _print_MatrixSymbol(self, expr):
        if _RAW_NAME.search(expr.name):
            return expr.name
        return super()._print_MatrixSymbol(expr)

    def _print_Transpose(self, expr):
        mat = expr.arg
        if not isinstance(mat, (sp.MatrixSymbol, sp.BlockMatrix)) and mat.is_MatrixExpr:
            return r"\left(%s\right)^{\top}" % self._print(mat)
        s = self.parenthesize(mat, precedence_traditional(expr), True)
        if "^" in s:
            return r"\left(%s\right)^{\top}" % s
        return "%s^{\\top}" % s

    def _print_Identity(self, expr):
        return "I"

    def _print_Add(self, expr, order=None):
        tex = ""
        for sign, term_tex, _ in _add_terms(self, expr, order):
            tex += (" %s " % sign if tex else ("- " if sign == "-" else "")) + term_tex
        return tex


def _add_terms(printer: LatexPrinter, expr, order=None):
    """The terms of a sum as ``(sign, tex, term)`` triples in the printer's order.

    ``term`` is the SymPy object that ``tex`` prints (its sign taken out).
    """
    memo = getattr(printer, "memo", None)
    key = ("terms", expr, order)
    if memo is not None and key in memo:
        return memo[key]
    out = []
    terms = list(printer._as_ordered_terms(expr, order=order))
    if len(terms) <= 3 and terms[0].could_extract_minus_sign():
        # a short sum reads better with a positive term first: p - m n_v, not - m n_v + p
        first = next((k for k, t in enumerate(terms) if not t.could_extract_minus_sign()), None)
        if first is not None:
            terms.insert(0, terms.pop(first))
    for i, term in enumerate(terms):
        sign = "+"
        if i > 0 and term.could_extract_minus_sign():
            sign, term = "-", -term
        tex = printer._print(term)
        if tex.startswith("- "):
            sign, term, tex = ("-" if sign == "+" else "+"), -term, tex[2:]
        if printer._needs_add_brackets(term):
            tex = r"\left(%s\right)" % tex
        out.append((sign, tex, term))
    if memo is not None:
        memo[key] = out
    return out


_PRINTER = SymmamlLatexPrinter()


def expr_latex(expr, **settings) -> str:
    """LaTeX of a SymPy object in symmaml's notation (a string is taken as LaTeX already)."""
    if isinstance(expr, str):
        return expr
    printer = SymmamlLatexPrinter(settings) if settings else _PRINTER
    return printer.doprint(expr)


# ----------------------------------------------------------------------------- widths

_ZERO_WIDTH = {
    "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr",
    "Biggl", "Biggr", "displaystyle", "textstyle", "scriptstyle", "limits", "nolimits", "mathstrut",
    "strut", "allowbreak", "nonumber", "notag",
}
_FONT = {"mathrm", "mathbf", "mathit", "mathcal", "mathbb", "mathsf", "mathtt", "boldsymbol",
         "operatorname", "mathfrak", "overline", "underline", "hat", "widehat", "tilde", "widetilde",
         "bar", "vec", "dot", "ddot", "phantom", "mathop", "mathbin", "mathrel", "mathord"}
_TEXT = {"text", "textbf", "textit", "textrm", "mbox", "mathnormal"}
_SPACE = {",": 0.17, ":": 0.22, ";": 0.28, "!": -0.17, " ": 0.33, "quad": 1.8, "qquad": 3.6,
          "enspace": 0.9, "thinspace": 0.17}
_RELATION = {"leq", "geq", "le", "ge", "neq", "approx", "sim", "simeq", "equiv", "to", "mapsto",
             "times", "cdot", "pm", "mp", "in", "notin", "subset", "subseteq", "propto", "coloneqq",
             "Rightarrow", "Leftrightarrow", "rightarrow", "leftarrow", "otimes", "oplus", "circ",
             "overset", "ll", "gg"}
_WIDE = {"sum": 1.5, "prod": 1.5, "int": 1.0, "ldots": 2.0, "cdots": 2.0, "dots": 2.0, "arg": 2.0,
         "min": 2.2, "max": 2.3, "log": 1.8, "ln": 1.4, "exp": 2.2, "det": 2.0, "lVert": 0.5,
         "rVert": 0.5, "Vert": 0.5, "lvert": 0.3, "rvert": 0.3, "langle": 0.5, "rangle": 0.5, "{": 0.6,
         "}": 0.6, "|": 0.5, "star": 0.8, "top": 1.1, "prime": 0.3}
_CHAR = {"+": 2.2, "-": 2.2, "=": 2.4, "<": 2.4, ">": 2.4, ",": 0.5, ".": 0.4, "(": 0.7, ")": 0.7,
         "[": 0.5, "]": 0.5, "|": 0.4, "'": 0.3, "/": 0.8, "&": 0.0, "~": 0.33, "!": 0.5, ";": 0.5,
         ":": 0.6}


class _WidthParser:
    """Estimates the printed width of LaTeX math (units: an italic letter, about 0.55 em)."""

    def __init__(self, s: str):
        self.s, self.i = s, 0

    def _cmd(self) -> str:
        s, j = self.s, self.i + 1
        if j < len(s) and s[j].isalpha():
            while j < len(s) and s[j].isalpha():
                j += 1
        else:
            j += 1
        name = s[self.i + 1:j]
        self.i = j
        return name

    def _skip_space(self):
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def arg(self) -> float:
        """Width of the next argument: a braced group or one token."""
        self._skip_space()
        if self.i >= len(self.s):
            return 0.0
        if self.s[self.i] == "{":
            self.i += 1
            w = self.run(stop="}")
            self.i += 1
            return w
        return self.token()

    def _text_arg(self) -> float:
        self._skip_space()
        if self.i < len(self.s) and self.s[self.i] == "{":
            depth, j = 0, self.i
            while j < len(self.s):
                depth += {"{": 1, "}": -1}.get(self.s[j], 0)
                if depth == 0:
                    break
                j += 1
            content = self.s[self.i + 1:j]
            self.i = j + 1
            return 0.85 * len(re.sub(r"\\[a-zA-Z]+|[{}$]", "", content))
        return self.token()

    def token(self) -> float:
        s = self.s
        c = s[self.i]
        if c == "\\":
            name = self._cmd()
            if name in _ZERO_WIDTH:
                return 0.0
            if name in ("left", "right"):
                return 0.3
            if name in ("frac", "dfrac"):
                return max(self.arg(), self.arg()) + 0.4
            if name == "tfrac":
                return 0.7 * max(self.arg(), self.arg()) + 0.3
            if name == "sqrt":
                self._skip_space()
                if self.i < len(s) and s[self.i] == "[":
                    self.i = s.index("]", self.i) + 1
                return self.arg() + 1.0
            if name in _FONT:
                return self.arg()
            if name in _TEXT:
                return self._text_arg()
            if name in _SPACE:
                return _SPACE[name]
            if name == "\\":
                return 0.0
            if name in _RELATION:
                return 2.2
            return _WIDE.get(name, 1.0)
        self.i += 1
        if c in "^_":
            return 0.7 * self.arg()
        if c.isspace():
            return 0.0
        if c == "{":
            w = self.run(stop="}")
            self.i += 1
            return w
        if c.isupper():
            return 1.35
        return _CHAR.get(c, 1.0)

    def run(self, stop: str | None = None) -> float:
        w = 0.0
        while self.i < len(self.s) and (stop is None or self.s[self.i] != stop):
            w += self.token()
        return w


@lru_cache(maxsize=65536)
def visual_width(tex: str) -> float:
    """Estimated printed width of LaTeX math ``tex``, in units of an italic letter (~6 pt at 11 pt).

    A crude typesetting model, calibrated against TeX's own widths of the derivations'
    lines (5-7 pt per unit at 11 pt): fractions take the wider of numerator and denominator,
    sub/superscripts 70%, capitals 1.35, binary operators and relations with their spacing,
    delimiter sizes nothing, text 0.85 per character.
    """
    try:
        return _WidthParser(tex).run()
    except (ValueError, IndexError):  # unbalanced input: fall back to its length
        return float(len(tex))


# ----------------------------------------------------------------------------- line breaking

class _Breaker:
    """Breaks one SymPy object into lines of at most ``width`` printed units (best effort)."""

    def __init__(self, printer: LatexPrinter, width: float):
        self.p = printer
        self.width = width

    def tex(self, e) -> str:
        return e if isinstance(e, str) else self.p._print(e)

    # -- assembling -----------------------------------------------------------------
    def hcat(self, blocks: list[list[str]], first: float, joiner: str) -> list[str]:
        """Join blocks left to right, starting a new line (with ``joiner``) when one overflows."""
        out: list[str] = []
        for block in blocks:
            for k, line in enumerate(block):
                if k == 0 and out:
                    limit = first if len(out) == 1 else self.width
                    if visual_width(out[-1]) + visual_width(line) <= limit:
                        out[-1] = out[-1] + " " + line
                    else:
                        out.append(joiner + line)
                else:
                    out.append(line)
        return out

    @staticmethod
    def wrap(prefix: str, left: str, inner: list[str], right: str, suffix: str = "") -> list[str]:
        """``prefix \\Big<left> inner \\Big<right> suffix`` over the lines of ``inner``."""
        size = r"\Bigg" if any(r"\frac" in line for line in inner) else r"\Big"
        out = list(inner)
        out[0] = f"{prefix}{size}{left} {out[0]}"
        out[-1] = f"{out[-1]} {size}{right}{suffix}"
        return out

    # -- dispatch ---------------------------------------------------------------------
    def lines(self, e, first: float | None = None) -> list[str]:
        first = self.width if first is None else first
        s = self.tex(e)
        if isinstance(e, str) or visual_width(s) <= first or not isinstance(e, sp.Basic):
            return [s]
        if isinstance(e, sp.Add):  # MatAdd is an Add too
            return self._sum(e, first)
        if isinstance(e, sp.MatMul):
            return self._matmul(e, first)
        if isinstance(e, sp.Mul):
            return self._mul(e, first)
        if isinstance(e, (sp.Pow, sp.MatPow)) and e.exp.is_Integer:
            out = self._wrapped(e, e.base, first)
            if out:
                return out
        if len(e.args) == 1:
            out = self._wrapped(e, e.args[0], first)
            if out:
                return out
        return [s]

    def _wrapped(self, e, arg, first) -> list[str] | None:
        r"""Break ``prefix\left<d>arg\right<d'>suffix`` (as ``e`` prints) inside sized delimiters."""
        s, a = self.tex(e), self.tex(arg)
        for left, right in (("(", ")"), ("[", "]"), (r"\{", r"\}"), (r"\lVert", r"\rVert"), ("|", "|")):
            for gap in (" ", ""):
                pattern = r"\left%s%s%s\right%s" % (left, a, gap, right)
                k = s.find(pattern)
                if k < 0:
                    continue
                prefix, suffix = s[:k], s[k + len(pattern):]
                inner = self.lines(arg, first - visual_width(prefix) - 1.5)
                if len(inner) == 1:
                    return None
                return self.wrap(prefix, left, inner, right, suffix)
        return None

    def _sum(self, e, first) -> list[str]:
        blocks = []
        for i, (sign, tex, term) in enumerate(_add_terms(self.p, e)):
            lead = "" if i == 0 and sign == "+" else sign + " "
            room = first if not blocks else self.width
            if visual_width(lead + tex) <= room:
                blocks.append([lead + tex])
                continue
            sub = self.lines(term, room - 2.2)
            sub[0] = lead + sub[0]
            blocks.append(sub)
        return self.hcat(blocks, first, "")

    def _factor_block(self, f, tex: str, room: float) -> list[str]:
        """A factor of a product: as is if it fits ``room``, else broken (a sum inside delimiters)."""
        if visual_width(tex) <= room:
            return [tex]
        if isinstance(f, sp.Add):
            inner = self.lines(f, room - 1.5)
            return self.wrap("", "(", inner, ")") if len(inner) > 1 else [tex]
        return self.lines(f, room)

    def _mul(self, e, first) -> list[str]:
        lead = ""
        if e.could_extract_minus_sign():
            e, lead = -e, "- "
        numer, denom = fraction(e, exact=True)
        factors = list(numer.as_ordered_factors()) if numer.is_Mul else [numer]
        if denom == 1 and len(factors) == 1:
            return [lead + self.tex(e)]
        widths = [visual_width(self.tex(f)) for f in factors]
        long_ = [f for f, w in zip(factors, widths) if w > self.width / 2]
        if not long_ and numer != 1:
            long_ = [factors[max(range(len(factors)), key=widths.__getitem__)]]
        short = [f for f in factors if f not in long_ and f != 1]
        blocks: list[list[str]] = []
        inverse: list = []  # long denominator factors, written as (...)^{-k} after the fraction
        if denom != 1:
            den = list(denom.as_ordered_factors()) if denom.is_Mul else [denom]
            num_tex = self.tex(sp.Mul(*short)) if short else "1"
            while True:
                rest = [f for f in den if f not in inverse]
                head = r"\frac{%s}{%s}" % (num_tex, self.tex(sp.Mul(*rest))) if rest else num_tex
                if visual_width(head) <= 0.8 * self.width or not rest:
                    break
                inverse.append(max(rest, key=lambda f: visual_width(self.tex(f))))
            if visual_width(head) > self.width:
                return [lead + self.tex(e)]
            if head != "1" or not (inverse or long_):
                blocks.append([lead + head])
            elif lead:
                blocks.append([lead.strip()])
        else:
            if short:
                head = self.tex(sp.Mul(*short))
                lone = short[0] if len(short) == 1 else None
                if lone is not None and long_ and (
                        isinstance(lone, sp.Add) or self.p._needs_mul_brackets(lone, first=True, last=False)):
                    head = r"\left(%s\right)" % head  # a lone sum factor keeps its parentheses
                blocks.append([lead + head])
            elif lead:
                blocks.append([lead.strip()])
        used = visual_width(blocks[0][0]) + 0.5 if blocks else 0.0
        for k, f in enumerate(long_):
            tex = self.tex(f)
            if isinstance(f, sp.Add) or self.p._needs_mul_brackets(f, first=False, last=False):
                tex = r"\left(%s\right)" % tex
            room = first - used if k == 0 and used <= 0.6 * self.width else self.width - 2.2
            blocks.append(self._factor_block(f, tex, room))
        for f in inverse:
            base, k = (f.base, -f.exp) if f.is_Pow and f.exp.is_Integer else (f, sp.S.NegativeOne)
            suffix = "^{%s}" % self.tex(k)
            tex = r"\left(%s\right)%s" % (self.tex(base), suffix)
            if visual_width(tex) <= self.width - 2.2:
                blocks.append([tex])
            else:
                blocks.append(self.wrap("", "(", self.lines(base, self.width - 4), ")", suffix))
        return self.hcat(blocks, first, r"\times ")

    def _matmul(self, e, first) -> list[str]:
        args, lead = list(e.args), ""
        if e.could_extract_minus_sign():
            args = args[1:] if args[0] == -1 else [-args[0]] + args[1:]
            lead = "- "
        blocks = []
        for x in args:
            if isinstance(x, sp.Mul) and not isinstance(x, sp.MatMul):
                tex = self.tex(x)
            else:
                tex = self.p.parenthesize(x, precedence_traditional(e), False)
            blocks.append(self._factor_block(x, tex, self.width - 1.5))
        if lead:
            blocks[0][0] = lead + blocks[0][0]
        return self.hcat(blocks, first, r"\cdot ")


def break_lines(expr, width: float = DEFAULT_WIDTH, first: float | None = None,
                printer: LatexPrinter | None = None) -> list[str]:
    """LaTeX of ``expr`` as lines of at most ``width`` printed units (``first`` for line one).

    Concatenating the lines (with spaces) gives valid LaTeX math equal in meaning to
    :func:`expr_latex`; continuation lines start with a sign, ``\\times``/``\\cdot``, or
    the rest of an open ``\\Big``-delimited group.  A part that cannot be broken further
    (e.g. a very long denominator) stays on one line.
    """
    return _Breaker(printer or _PRINTER, width).lines(expr, first)


def display_rows(chain: Iterable[Any], width: float = DEFAULT_WIDTH,
                 printer: LatexPrinter | None = None) -> list[str]:
    """Rows of an ``align*``/``aligned`` block showing ``chain[0] = chain[1] = ...``.

    A short first member is the left column (``lhs &= ...``); a long one is printed on its
    own rows and every ``=`` starts a row.  Consecutive members that print identically
    are shown once.
    """
    printer = printer or _PRINTER
    items, texs = [], []
    for x in chain:
        tex = x if isinstance(x, str) else printer.doprint(x)
        if not texs or tex != texs[-1]:
            items.append(x)
            texs.append(tex)
    anchor = texs[0]
    rows: list[str] = []
    cont = r"&\quad "
    if len(items) > 1 and visual_width(anchor) <= 0.3 * width:
        room = width - visual_width(anchor) - 2.4
        b = _Breaker(printer, room - 1.8)
        for x in items[1:]:
            ls = b.lines(x, room)
            rows.append(("%s &= " % anchor if not rows else "&= ") + ls[0])
            rows.extend(cont + line for line in ls[1:])
        return rows
    b = _Breaker(printer, width - 1.8)
    ls = b.lines(items[0], width)
    rows.append("&" + ls[0])
    rows.extend(cont + line for line in ls[1:])
    b = _Breaker(printer, width - 2.4 - 1.8)
    for x in items[1:]:
        ls = b.lines(x, width - 2.4)
        rows.append("&= " + ls[0])
        rows.extend(cont + line for line in ls[1:])
    return rows


def _wrap_source(line: str, limit: int = SOURCE_WIDTH) -> str:
    """Wrap a line of LaTeX source at spaces (a newline is a space to TeX; no blank lines)."""
    if len(line) <= limit:
        return line
    return "\n".join(textwrap.wrap(line, limit, break_long_words=False, break_on_hyphens=False))


def align_block(rows: list[str], env: str = "align*") -> str:
    body = " \\\\\n".join(_wrap_source(r) for r in rows)
    return f"\\begin{{{env}}}\n{body}\n\\end{{{env}}}"


# ----------------------------------------------------------------------------- text

_TEXT_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
    "|": r"\textbar{}", "$": r"\$",
}


def _escape(text: str) -> str:
    return "".join(_TEXT_ESCAPES.get(c, c) for c in text)


def text_latex(text: str) -> str:
    """Plain text with optional ``$...$`` math as LaTeX: the text escaped, the math kept."""
    parts = re.split(r"(?<!\\)\$", text or "")
    if len(parts) % 2 == 0:  # unbalanced: treat everything as text
        return _escape(text)
    return "".join(_escape(p) if i % 2 == 0 else f"${p}$" for i, p in enumerate(parts))


def regime_text(regime: str) -> str:
    return REGIME_NAMES.get(regime, regime)


def result_lhs(d: Derivation):
    """What the final result is equal to: the ``lhs`` of the last step producing it, if any."""
    for s in reversed(d.steps):
        if s.lhs is not None and s.after is not None and (s.after is d.result or s.after == d.result):
            return s.lhs
    return None


# ----------------------------------------------------------------------------- documents

def earlier_statement(steps) -> list:
    """For each step, the number (from 1) of the first earlier step with the same rule, else None:
    a rule is stated once, at its first use, and referred to afterwards."""
    first: dict = {}
    out = []
    for k, step in enumerate(steps, 1):
        out.append(first.get(step.rule))
        first.setdefault(step.rule, k)
    return out


def _rule_line(step: Step) -> str:
    rule = step.rule
    parts = [rf"Rule: ${rule.statement}$"]
    if rule.conditions:
        parts.append("when " + ", ".join(f"${c}$" for c in rule.conditions))
    text = "; ".join(parts)
    if rule.reference:
        text += f" [{text_latex(rule.reference)}]"
    return r"{\small " + text + ".}"


def _and_join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def where_text(refs, printer, math: str = "${}$") -> str:
    """``$h$ (Step 31) and $\\ell_1$ (Step 35)``: named quantities and the steps defining them."""
    return _and_join([math.format(printer.doprint(s)) + f" (Step {k})" for s, k in refs])


def _statement(d: Derivation, lay, theorem: str | None, printer) -> list[str]:
    title = text_latex(d.title)
    out = []
    if theorem:  # the title goes in the body: a theorem head cannot break across lines
        out.append(f"\\begin{{{theorem}}}\\textnormal{{(\\emph{{{title}}})}}\\ ")
    else:
        out.append(r"\par\medskip\noindent\textbf{Result} (\emph{%s}).\ " % title)
    facts = []
    if d.regime:
        facts.append(r"\emph{Regime:} %s." % text_latex(regime_text(d.regime)))
    facts.append(r"\emph{Order of approximation:} %s." % text_latex(d.order or "exact"))
    if d.assumptions:
        facts.append(r"\emph{Assumptions:} " + "; ".join(f"${a}$" for a in d.assumptions) + ".")
    out.extend(_wrap_source(f) for f in facts)
    if lay.statement_rows:
        out.append("Then")
        out.append(align_block(lay.statement_rows))
        if lay.where_rows:
            out.append("where")
            out.append(align_block(lay.where_rows))
        if lay.where_refs:
            verb = "is" if len(lay.where_refs) == 1 else "are"
            lead = "and" if lay.where_rows else "where"
            out.append(_wrap_source(f"{lead} {where_text(lay.where_refs, printer)} {verb} defined in the "
                                    "derivation below."))
        elif lay.where_rows:
            out.append(r"\par")
    if d.statement:
        out.append(_wrap_source(text_latex(d.statement)))
    if theorem:
        out.append(f"\\end{{{theorem}}}")
    else:
        out.append(r"\par\medskip")
    return out


def step_numbers(group) -> str:
    """``Step 7`` or ``Steps 7-12`` (an en dash in LaTeX)."""
    a, b = group[0].number, group[-1].number
    return f"Step {a}" if a == b else f"Steps {a}--{b}"


def _step(group, printer) -> list[str]:
    """A paragraph of steps applying one rule: the rule (stated at first use, else referred to),
    the first step's note, and the displays ``lhs = before = after`` one after the other."""
    view = group[0]
    step = view.step
    rule_line = (r"{\small Rule: as in Step %d.}" % view.first) if view.first else _rule_line(step)
    out = [r"\par\smallskip\noindent\textbf{%s} (%s).\ " % (step_numbers(group), text_latex(step.rule.name)),
           _wrap_source(rule_line)]
    if step.note:
        out.append(_wrap_source(text_latex(step.note[:1].upper() + step.note[1:]) + "."))
    if len(group) == 1:
        out.append(align_block(view.rows))
    else:  # one display, each step's rows aligned on their own
        blocks = ["\\begin{aligned}\n" + " \\\\\n".join(_wrap_source(r) for r in v.rows) + "\n\\end{aligned}"
                  for v in group]
        out.append("\\begin{gather*}\n" + " \\\\\n".join(blocks) + "\n\\end{gather*}")
    return out


def _appendix(lay) -> list[str]:
    if not lay.appendix:
        return []
    out = [r"\par\medskip\noindent\textbf{Appendix: long expressions.}\ "
           "The expressions the steps above refer to as (A.1), (A.2), ..., as the engine computed them.",
           r"\begingroup\small"]
    for e in lay.appendix:
        if e.rows is not None:
            rows = list(e.rows)
            rows[0] = rows[0] + r" \tag{%s}" % e.label
            out.append(r"\par\noindent From Step %d:" % e.step)
            out.append(align_block(rows))
        else:
            name = e.name if isinstance(e.name, str) else expr_latex(e.name)
            where = ("it is given in full, by powers of $\\alpha_t$, in the Markdown version of this document."
                     if e.in_markdown else
                     rf"and with {e.terms:,} terms written out it is not given in the Markdown version either: "
                     rf"the engine's expression is in step {e.step} of the result's derivation "
                     rf"(Python: \texttt{{r.derivation.steps[{e.step - 1}]}}).")
            out.append(_wrap_source(
                rf"\par\noindent ({e.label}) From Step {e.step}: ${name}$ is {text_latex(e.summary)}; too long "
                "to print here, " + where))
    out.append(r"\par\endgroup")
    return out


def derivation_fragment(derivation: Derivation, *, width: float = DEFAULT_WIDTH,
                        theorem: str | None = None) -> str:
    r"""LaTeX to ``\input`` into a paper (needs only ``amsmath`` and ``amssymb``).

    A statement (title, regime, order of approximation, assumptions, the result in compact form
    and the named quantities it uses), then the numbered steps: each names its rule (statement,
    conditions, reference in small text, stated at its first use), its note, and shows
    ``lhs = before = after`` broken over aligned lines of at most ``width`` printed units (see
    :func:`break_lines`; the default suits a 16 cm text width at 11 pt, use about 34 for a
    two-column paper), then an appendix of the long expressions (see
    :mod:`symmaml.export.layout`).  ``theorem`` names a theorem-like environment for the
    statement (the document defines ``result``); by default a bold paragraph heading is used so
    the fragment needs no preamble of its own.  The fragment is a group with
    ``\allowdisplaybreaks`` and ``\sloppy``, so long steps can break across pages without
    changing the host document's settings.
    """
    from .layout import layout

    d = derivation
    out = [f"% {d.title}",
           "% generated by symmaml (symmaml.export.latex); requires amsmath, amssymb",
           r"\begingroup\allowdisplaybreaks\sloppy"]
    printer = SymmamlLatexPrinter(memo=True)
    lay = layout(d, width, printer)
    out.extend(_statement(d, lay, theorem, printer))
    out.append(r"\par\noindent\emph{Derivation} (%d steps)." % len(d.steps))
    for group in lay.groups:
        out.extend(_step(group, printer))
    out.extend(_appendix(lay))
    out.append(r"\par\endgroup")
    return "\n".join(out) + "\n"


def derivation_document(derivation: Derivation, *, width: float = DEFAULT_WIDTH) -> str:
    """A standalone ``article`` (amsmath, amssymb, geometry) that compiles with pdflatex.

    Each rule is stated where it is first applied (later steps refer to that step), so the
    document has no separate list of rules.
    """
    d = derivation
    out = [
        "% generated by symmaml (symmaml.export.latex)",
        r"\documentclass[11pt]{article}",
        r"\usepackage[a4paper,margin=2.5cm]{geometry}",
        r"\usepackage{amsmath,amssymb}",
        r"\newtheorem{result}{Result}",
        r"\allowdisplaybreaks",
        r"\title{%s}" % text_latex(d.title),
        r"\author{symmaml}",
        r"\date{}",
        r"\begin{document}",
        r"\maketitle",
        derivation_fragment(d, width=width, theorem="result").rstrip("\n"),
    ]
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"
