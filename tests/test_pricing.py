"""Pricing by breach and loss (issue 21): a fine stays with the party that broke the clause, the
loss is split by the blame shares, to the fen."""
from __future__ import annotations

from decimal import Decimal

import pytest

from portal.cases.pricing import Breach, LossItem, PricingError, loss_total, price

C001, D001, W001 = 1, 2, 3
D = Decimal


def test_each_fine_stays_with_its_breach_and_the_loss_follows_the_shares():
    """The issue's case: 顺丰 C001 broke CAR-DLV §1 (¥500, 2 serious points) and caused ¥10 of
    delay compensation; 促销部 D001 broke INT-PROMO §4 (¥100); CS paid a ¥20 goodwill credit.
    Ruled 70 / 30: C001 owes ¥500 + 70 % of ¥30, D001 ¥100 + 30 % of ¥30; the points are
    C001's alone."""
    breaches = [Breach(C001, D("500.00"), points=2, serious=True, compensation=D("10.00")),
                Breach(D001, D("100.00"))]
    priced = price(breaches, [LossItem(D("20.00"))], [(C001, 70), (D001, 30)])
    c, d = priced.of(C001), priced.of(D001)
    assert (c.fine, c.loss_part, c.amount) == (D("500.00"), D("21.00"), D("521.00"))
    assert (d.fine, d.loss_part, d.amount) == (D("100.00"), D("9.00"), D("109.00"))
    assert (c.points, c.serious_points, d.points, d.serious_points) == (2, 2, 0, 0)
    assert priced.loss_total == D("30.00") and priced.total == D("630.00")
    assert c.amount + d.amount == priced.total


def test_without_a_loss_each_party_owes_its_own_fines_whatever_its_share():
    breaches = [Breach(C001, D("500.00"), points=2), Breach(D001, D("100.00"))]
    priced = price(breaches, [], [(C001, 70), (D001, 30)])
    assert [(p.party_id, p.amount, p.points) for p in priced.parties] == [
        (C001, D("500.00"), 2), (D001, D("100.00"), 0)]


def test_a_party_can_carry_a_share_of_the_loss_without_a_breach_of_its_own():
    """The warehouse packed late, which the carrier's delay compensation paid for: it carries
    40 % of the ¥50 loss and no fine."""
    breaches = [Breach(C001, D("200.00"), compensation=D("50.00"))]
    priced = price(breaches, [], [(C001, 60), (W001, 40)])
    w = priced.of(W001)
    assert (w.fine, w.loss_part, w.points, w.breaches) == (D("0.00"), D("20.00"), 0, ())
    assert priced.of(C001).amount == D("230.00")


def test_a_three_way_split_rounds_half_up_and_gives_the_remainder_fen_to_the_largest_share():
    priced = price([], [LossItem(D("100.01"))], [(C001, 33), (D001, 33), (W001, 34)])
    assert [p.loss_part for p in priced.parties] == [D("33.00"), D("33.00"), D("34.01")]
    assert sum(p.loss_part for p in priced.parties) == D("100.01")


def test_a_breaching_party_may_carry_none_of_the_loss():
    breaches = [Breach(C001, D("500.00")), Breach(D001, D("100.00"))]
    priced = price(breaches, [LossItem(D("30.00"))], [(C001, 100), (D001, 0)])
    assert priced.of(D001).amount == D("100.00") and priced.of(C001).amount == D("530.00")


def test_the_loss_adds_compensation_and_recorded_costs():
    breaches = [Breach(C001, D("0.00"), compensation=D("5.00")),
                Breach(C001, D("0.00"), compensation=D("10.00"))]
    assert loss_total(breaches, [LossItem(D("12.5")), LossItem(D("0.004"))]) == D("27.50")


@pytest.mark.parametrize(("breaches", "losses", "shares", "code", "party"), [
    ([Breach(C001, D("500"))], [], [(C001, 101)], "percent", C001),
    ([Breach(C001, D("500"))], [], [(C001, -1)], "percent", C001),
    ([Breach(C001, D("500"))], [], [(C001, 50.5)], "percent", C001),
    ([Breach(C001, D("500"))], [], [(C001, 60), (C001, 40)], "duplicate", C001),
    ([Breach(C001, D("500")), Breach(D001, D("100"))], [], [(C001, 100)],
     "breach_without_share", D001),
    ([Breach(C001, D("500"))], [LossItem(D("10"))], [(C001, 60), (W001, 30)], "sum", None),
    ([Breach(C001, D("500"))], [], [(C001, 60), (W001, 40)], "nothing_owed", W001),
], ids=["over-100", "negative", "fraction", "twice", "breach-left-out", "not-100",
        "nothing-to-charge"])
def test_shares_that_cannot_price_the_case_are_refused(breaches, losses, shares, code, party):
    with pytest.raises(PricingError) as refused:
        price(breaches, losses, shares)
    assert (refused.value.code, refused.value.party_id) == (code, party)
