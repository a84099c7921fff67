from decimal import Decimal

import pytest

from portal.core.money import MoneyError, split_by_shares, to_money


def test_amounts_round_half_up_to_the_fen():
    assert to_money("0.005") == Decimal("0.01")
    assert to_money("2.675") == Decimal("2.68")
    assert to_money(500) == Decimal("500.00")


def test_floats_are_refused():
    with pytest.raises(MoneyError):
        to_money(0.1)


@pytest.mark.parametrize("text", ["", "abc", "NaN", "Infinity", "1e999999999999", "10000000000"])
def test_garbage_is_refused(text):
    with pytest.raises(MoneyError):
        to_money(text)


def test_split_70_30():
    assert split_by_shares(Decimal("500.00"), [70, 30]) == [Decimal("350.00"), Decimal("150.00")]


def test_split_gives_leftover_fen_to_the_largest_share():
    # 0.01 * 50% = 0.005 -> 0.01 each (half-up), 2 fen for a 1-fen total: largest gives one back
    parts = split_by_shares(Decimal("0.01"), [50, 50])
    assert sum(parts) == Decimal("0.01")
    assert parts == [Decimal("0.00"), Decimal("0.01")] or parts == [Decimal("0.01"),
                                                                    Decimal("0.00")]


def test_split_three_ways_adds_up():
    parts = split_by_shares(Decimal("100.00"), [33, 33, 34])
    assert parts == [Decimal("33.00"), Decimal("33.00"), Decimal("34.00")]
    parts = split_by_shares(Decimal("10.00"), [33, 33, 34])
    assert sum(parts) == Decimal("10.00")
    assert parts == [Decimal("3.30"), Decimal("3.30"), Decimal("3.40")]
    # each part rounds up to 0.02 (0.06 in all): the fen too many comes off the largest share
    parts = split_by_shares(Decimal("0.05"), [33, 33, 34])
    assert parts == [Decimal("0.02"), Decimal("0.02"), Decimal("0.01")]


@pytest.mark.parametrize("shares", [[70, 20], [101, -1], [0, 100], []])
def test_shares_must_be_positive_and_sum_to_100(shares):
    with pytest.raises(MoneyError):
        split_by_shares(Decimal("1.00"), shares)
