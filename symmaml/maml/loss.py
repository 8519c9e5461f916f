"""``average_test_loss``: the entry point to the derived results."""
from __future__ import annotations

import importlib
from functools import lru_cache

import sympy as sp

from .. import cache
from ..symbols import alpha_t, m, n_v, p
from .result import Result

__all__ = ["average_test_loss", "REGIMES", "ORDERS", "regime_condition"]

REGIMES = ("over", "under")


def _lazy(module: str, name: str):
    """``module.name``, imported on first call: a result read from the cache needs no derivation code."""
    def derive(*args, **kwargs):
        return getattr(importlib.import_module(f".{module}", __package__), name)(*args, **kwargs)

    derive.__name__ = derive.__qualname__ = name
    return derive


derive_over_leading, derive_under_leading = _lazy("leading", "derive_over_leading"), _lazy("leading", "derive_under_leading")
derive_over_exact, derive_under_exact = _lazy("exact", "derive_over_exact"), _lazy("exact", "derive_under_exact")
derive_over_corrected = _lazy("corrected", "derive_over_corrected")
derive_under_corrected = _lazy("corrected_under", "derive_under_corrected")
#: the derivations by order and regime
ORDERS = {
    "leading": {"over": derive_over_leading, "under": derive_under_leading},
    "exact": {"over": derive_over_exact, "under": derive_under_exact},
    "corrected": {"over": derive_over_corrected, "under": derive_under_corrected},
}
#: conditions beyond the regime: moment existence, and the slice where an exact result holds
EXTRA_CONDITIONS = {
    ("exact", "over"): (sp.StrictGreaterThan(p, m * n_v + 1), sp.Eq(alpha_t, 0)),
    ("exact", "under"): (sp.StrictLessThan(p, m * n_v - 1), sp.Eq(alpha_t, 0)),
    ("corrected", "over"): (sp.StrictGreaterThan(p, m * n_v + 1),),
    # anchored at the exact alpha_t = 0 result, which needs p < m n_v - 1
    ("corrected", "under"): (sp.StrictLessThan(p, m * n_v - 1),),
}


def regime_condition(regime: str):
    """The regime as a SymPy relation: ``p > m n_v`` (over) or ``p < m n_v`` (under)."""
    return sp.StrictGreaterThan(p, m * n_v) if regime == "over" else sp.StrictLessThan(p, m * n_v)


@lru_cache(maxsize=None)
@cache.persistent
def average_test_loss(regime: str, order: str = "leading") -> Result:
    """The average test loss of one-step MAML in ``regime`` ('over' or 'under') at ``order``.

    Derived on first call (a second to a minute) and cached, in the process and on disk
    (:mod:`symmaml.cache`: a later process reads it in milliseconds).  ``order='leading'`` is the paper's
    approximation: the meta-training Gram matrix replaced by its mean.
    """
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {', '.join(REGIMES)}, got {regime!r}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)} (derived so far), got {order!r}")
    derive = ORDERS[order].get(regime)
    if derive is None:
        raise ValueError(f"order {order!r} is not derived for regime {regime!r}")
    expr, derivation, *extra = derive()  # (definitions, domain): named intermediate quantities
    definitions, domain = extra if extra else ((), "")
    return Result(expr=expr, derivation=derivation, regime=regime, order=order,
                  conditions=(regime_condition(regime),) + EXTRA_CONDITIONS.get((order, regime), ()),
                  ignored=(), definitions=definitions, domain=domain)
