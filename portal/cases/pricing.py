"""What each party owes for a case, priced by breach and loss (``breach_loss_v2``).

Two kinds of money, kept apart so that every party can reconcile its figure with what it did:

- **A fine belongs to the breach.** Each confirmed violation names one party and a clause that
  binds it; its fine (escalation included) and its points go to that party in full. No party
  is fined or given points for another party's breach.
- **The loss is split by blame.** What the company paid or owes because of the incident (the
  customers' compensation from the delay tiers, goodwill credits, re-shipping or other costs
  recorded on the case) is recovered from the responsible parties by their whole-percent blame
  shares, which sum to 100: each part half-up to the fen, the remainder fen to the largest
  share (``core.money.split_by_shares``). A party may carry a share of the loss without a
  breach of its own (the ruling says why); a party that breached a clause may carry none.

Pure functions on plain values: no database, no request. Rulings are not priced with it yet
(they say which arithmetic priced them: ``RulingArithmetic``); the next step gives it the
case's confirmed violations and loss items and the shares the officer chose, stores what comes
back, and shows the same figures on the ruling form before it is submitted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from portal.core.money import split_by_shares, to_money

ZERO = Decimal("0.00")


class PricingError(ValueError):
    """Shares that cannot price the case; ``code`` says why, ``party_id`` names the share."""

    def __init__(self, code: str, party_id: int | None = None):
        super().__init__(f"{code}" + (f" (party {party_id})" if party_id is not None else ""))
        self.code = code
        self.party_id = party_id


@dataclass(frozen=True)
class Breach:
    """A confirmed violation, as priced: whose it is, its fine and points, and the customer
    compensation it caused (part of the loss, not of the fine)."""

    party_id: int
    fine: Decimal
    points: int = 0
    serious: bool = False
    compensation: Decimal = ZERO
    ref: object = None           # the violation (or its id), for the derivation


@dataclass(frozen=True)
class LossItem:
    """A cost of the incident recorded on the case (goodwill credit, re-shipping...)."""

    amount: Decimal
    ref: object = None


@dataclass(frozen=True)
class PartyPrice:
    """One party's figure: its own breaches in full, and its part of the loss."""

    party_id: int
    percent: int                 # its share of the blame for the loss
    breaches: tuple[Breach, ...]
    loss_part: Decimal

    @property
    def fine(self) -> Decimal:
        return sum((b.fine for b in self.breaches), ZERO)

    @property
    def points(self) -> int:
        return sum(b.points for b in self.breaches)

    @property
    def serious_points(self) -> int:
        return sum(b.points for b in self.breaches if b.serious)

    @property
    def amount(self) -> Decimal:
        return self.fine + self.loss_part


@dataclass(frozen=True)
class Pricing:
    loss_total: Decimal
    parties: tuple[PartyPrice, ...] = field(default_factory=tuple)

    @property
    def fine_total(self) -> Decimal:
        return sum((p.fine for p in self.parties), ZERO)

    @property
    def total(self) -> Decimal:
        return self.fine_total + self.loss_total

    def of(self, party_id: int) -> PartyPrice:
        return next(p for p in self.parties if p.party_id == party_id)


def loss_total(breaches: list[Breach], losses: list[LossItem]) -> Decimal:
    """The loss of the case: the customers' compensation its breaches caused and the costs
    recorded on it."""
    return (sum((to_money(b.compensation) for b in breaches), ZERO)
            + sum((to_money(item.amount) for item in losses), ZERO))


def price(breaches: list[Breach], losses: list[LossItem],
          shares: list[tuple[int, int]]) -> Pricing:
    """Price a case: ``shares`` are ``(party_id, percent)`` in the order the ruling lists them.

    Refused (``PricingError``):
    - ``percent``: a percent that is not a whole number from 0 to 100;
    - ``duplicate``: a party listed twice;
    - ``breach_without_share``: a party that broke a clause but is not in the ruling (its fine
      must be ruled on);
    - ``sum``: the loss is not zero and the percents do not sum to 100;
    - ``nothing_owed``: a party with no breach of its own and no part of a loss (nothing to
      charge it: leave it out of the ruling)."""
    seen: set[int] = set()
    for party_id, percent in shares:
        if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
            raise PricingError("percent", party_id)
        if party_id in seen:
            raise PricingError("duplicate", party_id)
        seen.add(party_id)
    for b in breaches:
        if b.party_id not in seen:
            raise PricingError("breach_without_share", b.party_id)
    loss = loss_total(breaches, losses)
    carrying = [(party_id, percent) for party_id, percent in shares if percent > 0]
    if loss and sum(p for _id, p in carrying) != 100:
        raise PricingError("sum")
    parts = dict(zip([party_id for party_id, _p in carrying],
                     split_by_shares(loss, [p for _id, p in carrying]), strict=True)) \
        if loss else {}
    priced = []
    for party_id, percent in shares:
        own = tuple(b for b in breaches if b.party_id == party_id)
        part = parts.get(party_id, ZERO)
        if not own and not part:
            raise PricingError("nothing_owed", party_id)
        priced.append(PartyPrice(party_id, percent, own, part))
    return Pricing(loss, tuple(priced))
