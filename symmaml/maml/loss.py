"""``average_test_loss``: the entry point to the derived results."""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from ..symbols import alpha_t, m, n_v, p
from .corrected import derive_over_corrected
from .corrected_under import derive_under_corrected
from .exact import derive_over_exact, derive_under_exact
from .leading import derive_over_leading, derive_under_leading
from .result import Result

__all__ = ["average_test_loss", "REGIMES", "ORDERS", "regime_condition"]

REGIMES = ("over", "under")
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
def average_test_loss(regime: str, order: str = "leading") -> Result:
    """The average test loss of one-step MAML in ``regime`` ('over' or 'under') at ``order``.

    Derived on first call (a second or so) and cached.  ``order='leading'`` is the paper's
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
