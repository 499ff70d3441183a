"""Grams inside, tonnes at the edge: one exact conversion for everything a person reads."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

GRAMS_PER_TONNE = 1_000_000


def tonnes(amount_g: int) -> str:
    """Integer grams as tonnes with three decimals, rounded half to even (exact: no floats)."""
    assert isinstance(amount_g, int)
    return str((Decimal(amount_g) / GRAMS_PER_TONNE).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN))


def tonnes_shown(amount_g: int, *, unit: bool = True) -> str:
    """Tonnes as a person reads them, "1.234 t", with the grams beside where the tonnes would read
    0.000 (a citizen's 78 g is not nothing): "0.000 t (78 g)". Without the unit, for a column headed
    in tonnes: "1.234", "0.000 (78 g)". A small negative change reads 0.000, not -0.000."""
    text = tonnes(amount_g)
    text = "0.000" if text == "-0.000" else text
    shown = f"{text} t" if unit else text
    return f"{shown} ({amount_g} g)" if text == "0.000" and amount_g else shown
