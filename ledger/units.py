"""Grams inside, tonnes at the edge: one exact conversion for everything a person reads."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

GRAMS_PER_TONNE = 1_000_000


def tonnes(amount_g: int) -> str:
    """Integer grams as tonnes with three decimals, rounded half to even (exact: no floats)."""
    assert isinstance(amount_g, int)
    return str((Decimal(amount_g) / GRAMS_PER_TONNE).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN))
