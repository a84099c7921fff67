"""Money: yuan as ``Decimal`` with two places, rounded half-up to the fen.

The rounding rule used everywhere: each amount is rounded half-up to the fen; when a total is
split by blame shares, each part is rounded half-up and whatever fen remain (positive or
negative) go to the largest share (the first one listed on a tie), so the parts always add up
to the total.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, DecimalException

FEN = Decimal("0.01")
MAX_AMOUNT = Decimal(10) ** 10  # NUMERIC(12, 2) holds up to 9,999,999,999.99


class MoneyError(ValueError):
    pass


def to_money(value) -> Decimal:
    """Parse a money value (Decimal, int or string) and round it half-up to the fen.

    Floats are refused: a binary fraction is not an amount of money.
    """
    if isinstance(value, (bool, float)):
        raise MoneyError(f"not a money amount: {value!r} (use Decimal or a string)")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
        if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
            raise MoneyError(f"not a money amount: {value!r}")
        return amount.quantize(FEN, rounding=ROUND_HALF_UP)
    except MoneyError:
        raise
    except (DecimalException, ValueError) as exc:
        raise MoneyError(f"not a money amount: {value!r}") from exc


def apply_percent(amount: Decimal, percent: int) -> Decimal:
    return to_money(Decimal(amount) * Decimal(percent) / Decimal(100))


def split_by_shares(total: Decimal, percents: list[int]) -> list[Decimal]:
    """Split ``total`` by whole percentages that sum to 100; the parts add up to ``total``."""
    if not percents:
        raise MoneyError("no shares to split over")
    if sum(percents) != 100 or any(p <= 0 for p in percents):
        raise MoneyError("shares must be positive and sum to 100")
    total = to_money(total)
    parts = [apply_percent(total, p) for p in percents]
    remainder = total - sum(parts, Decimal("0.00"))
    if remainder:
        largest = max(range(len(percents)), key=lambda i: (percents[i], -i))
        parts[largest] += remainder
    return parts


def format_yuan(value) -> str:
    """Yuan as ¥1,234.50 in both languages (the portal's one currency); None as a dash."""
    if value is None:
        return "—"
    value = Decimal(value)
    return ("-" if value < 0 else "") + f"¥{abs(value):,.2f}"
