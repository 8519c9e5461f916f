"""Derivations as data: rules, steps and the derivations that collect them.

A :class:`Rule` is a small frozen record (name, LaTeX statement, conditions, reference).
Applying a rule produces a :class:`Step` (rule, expression before, expression after,
a short note); a :class:`Derivation` is an ordered list of steps with the final result,
its order of approximation and the regime where it holds.  Exporters
(:mod:`symmaml.export`) render derivations; nothing here knows about LaTeX layout.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

__all__ = ["Rule", "Step", "Derivation", "Condition"]


@dataclass(frozen=True)
class Rule:
    """A named mathematical fact the engine applies.

    ``statement`` is LaTeX; ``conditions`` lists, in LaTeX, when the rule holds;
    ``reference`` says where it comes from (a paper, or "derived" when the engine
    proves it itself by a more primitive rule).
    """

    name: str
    statement: str
    conditions: tuple[str, ...] = ()
    reference: str = ""


@dataclass(frozen=True)
class Condition:
    """A condition on the parameters with a plain statement for error messages.

    ``relation`` is a SymPy relation; ``text`` replaces it in messages when the relation itself
    is too long to read (e.g. a positivity condition on a large polynomial).
    """

    relation: Any
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Step:
    """One application of a rule: ``before`` becomes ``after``.

    ``before`` and ``after`` are SymPy objects (expressions, equations, matrices) as the
    engine actually transformed them.  ``lhs`` optionally names what is being computed
    (e.g. ``E[|omega* - w0|^2]``) so exporters can print ``lhs = before = after``.
    """

    rule: Rule
    before: Any
    after: Any
    note: str = ""
    lhs: Any = None


@dataclass
class Derivation:
    """An ordered record of steps ending in ``result``."""

    title: str
    steps: list[Step] = field(default_factory=list)
    result: Any = None
    order: str = "exact"
    regime: str = ""
    assumptions: tuple[str, ...] = ()
    statement: str = ""
    #: ``[(symbol, value), ...]``: named intermediate quantities, in dependency order
    definitions: list = field(default_factory=list)

    def add(self, rule: Rule, before, after, note: str = "", lhs=None):
        """Record ``rule`` turning ``before`` into ``after``; returns ``after``."""
        self.steps.append(Step(rule, before, after, note, lhs))
        return after

    def define(self, symbol, value, rule: Rule, note: str = ""):
        """Name an intermediate quantity: record the step ``symbol = value`` and keep the pair in
        :attr:`definitions`; returns ``symbol``."""
        self.definitions.append((symbol, value))
        self.add(rule, symbol, value, note=note)
        return symbol

    def extend(self, other: "Derivation", note_prefix: str = "") -> None:
        """Append the steps of a sub-derivation (e.g. a moment the engine computed)."""
        for s in other.steps:
            note = f"{note_prefix}{s.note}" if note_prefix else s.note
            self.steps.append(Step(s.rule, s.before, s.after, note, s.lhs))

    @property
    def rules(self) -> list[Rule]:
        """The distinct rules used, in order of first use."""
        seen: dict[str, Rule] = {}
        for s in self.steps:
            seen.setdefault(s.rule.name, s.rule)
        return list(seen.values())

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return f"Derivation({self.title!r}, {len(self.steps)} steps, order={self.order!r})"

    # notebook display (rendering lives in symmaml.export, imported when a notebook asks, as
    # SymPy's own objects call its printers)
    def _repr_markdown_(self) -> str:
        from .export.notebook import derivation_markdown_summary

        return derivation_markdown_summary(self)

    def _repr_latex_(self) -> str | None:
        if self.result is None:
            return None
        from .export.latex import result_lhs
        from .export.notebook import statement_latex

        lhs = result_lhs(self)
        return statement_latex("" if lhs is None else _latex(lhs), self.result)


def _latex(x) -> str:
    from .export.latex import expr_latex

    return expr_latex(x)
