"""Penalty rules are data: validated with clear messages, described in plain language."""
from decimal import Decimal

import pytest

from portal.core.errors import ServiceError
from portal.standards.rules import RuleKind, describe, parse_rule, parse_rules

DELAY = {"kind": "tiered", "measure": "days_late", "tiers": [
    {"from": 1, "to": 1, "compensation": "5.00"},
    {"from": 2, "to": 2, "compensation": "10"},
    {"from": 3, "compensation": "order_value", "minimum": "10.00"}]}


@pytest.fixture
def en(app):
    with app.test_request_context():
        from flask import session
        session["lang"] = "en"
        yield


@pytest.fixture
def zh(app):
    with app.test_request_context():
        yield


def test_the_delay_tiers_parse(en):
    rule = parse_rule(DELAY)
    assert rule["kind"] is RuleKind.TIERED
    assert rule["params"]["tiers"][1]["compensation"] == "10.00"
    assert rule["params"]["tiers"][2] == {"from": 3, "to": None, "compensation": "order_value",
                                          "minimum": "10.00", "fine": None}


def test_rules_are_described_in_plain_english(en):
    text = describe(**_args(parse_rule(DELAY)))
    assert text == ("By days late: 1 day: customer compensated ¥5.00; 2 days: customer "
                    "compensated ¥10.00; 3 days or more: customer compensated the order value "
                    "(the package is free), at least ¥10.00.")
    tl = parse_rule({"kind": "time_limit", "limit_minutes": 120, "amount": "50"})
    assert describe(**_args(tl)) == ("Must be done within 2 hours; each breach fines the party "
                                      "¥50.00.")
    esc = parse_rule({"kind": "escalation", "nth": 3, "window_days": 30, "multiplier": "2"})
    assert "From breach number 3 within 30 days" in describe(**_args(esc))


def test_rules_are_described_in_chinese(zh):
    text = describe(**_args(parse_rule(DELAY)))
    assert "延误" in text and "¥5.00" in text and "免单" in text
    tl = parse_rule({"kind": "time_limit", "limit_minutes": 120, "amount": "50"})
    assert "2 小时" in describe(**_args(tl))


@pytest.mark.parametrize("rule, message", [
    ({"kind": "bonus"}, "Unknown rule kind bonus"),
    ({"kind": "fixed_fine", "amount": "-5"}, "Fine must be greater than zero."),
    ({"kind": "fixed_fine", "amount": "abc"}, "Fine must be an amount in yuan"),
    ({"kind": "fixed_fine", "amount": "5", "extra": 1}, "does not take: extra"),
    ({"kind": "time_limit", "limit_minutes": 0, "amount": "5"}, "from 1 to 10080"),
    ({"kind": "points", "points": "many"}, "Points must be a whole number."),
    ({"kind": "escalation", "nth": 3, "window_days": 30, "multiplier": "1"},
     "more than 1 and at most 10"),
    ({"kind": "tiered", "measure": "weight", "tiers": []}, 'measure = "days_late"'),
    ({"kind": "tiered", "measure": "days_late", "tiers": []}, "at least one tier"),
    ({"kind": "tiered", "measure": "days_late", "tiers": [
        {"from": 1, "to": 2, "compensation": "5"}, {"from": 2, "compensation": "9"}]},
     "without overlapping (tier 2)"),
    ({"kind": "tiered", "measure": "days_late", "tiers": [
        {"from": 1, "compensation": "5"}, {"from": 3, "compensation": "9"}]},
     "Only the last tier may be open-ended (tier 1)"),
    ({"kind": "tiered", "measure": "days_late", "tiers": [{"from": 1}]},
     "needs a compensation, a fine or both"),
    ({"kind": "tiered", "measure": "days_late", "tiers": [
        {"from": 1, "compensation": "5", "minimum": "1"}]}, "'minimum' goes only with"),
])
def test_bad_rules_are_refused_with_a_clear_message(en, rule, message):
    with pytest.raises(ServiceError) as err:
        parse_rule(rule)
    assert message in err.value.message


def test_escalation_needs_a_fine_to_multiply(en):
    with pytest.raises(ServiceError, match="needs a fine to multiply"):
        parse_rules([{"kind": "escalation", "nth": 3, "window_days": 30, "multiplier": "2"}])
    assert len(parse_rules([{"kind": "fixed_fine", "amount": "500"},
                            {"kind": "escalation", "nth": 3, "window_days": 30,
                             "multiplier": "2"}])) == 2


def test_one_rule_of_a_kind_per_clause(en):
    with pytest.raises(ServiceError, match="only one rule of kind fixed_fine"):
        parse_rules([{"kind": "fixed_fine", "amount": "1"}, {"kind": "fixed_fine", "amount": "2"}])


def test_shipped_rulebook_prices_the_seed_rules(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["standards", "load"]).exit_code == 0
    with app.test_request_context():
        from sqlalchemy import select

        from portal.extensions import db
        from portal.standards.models import Clause, Standard

        car = db.session.scalar(select(Standard).where(Standard.code == "CAR-DLV"))
        clauses = {c.number: c for c in car.current_version.clauses}
        assert clauses["1"].fine_per_occurrence == Decimal("500.00")
        assert clauses["1"].points_per_occurrence == 6
        assert clauses["3"].fine_per_occurrence == Decimal("50.00")
        tiers = next(r for r in clauses["4"].rules if r.kind is RuleKind.TIERED).params["tiers"]
        assert [t["compensation"] for t in tiers] == ["5.00", "10.00", "order_value"]
        assert db.session.scalar(select(db.func.count()).select_from(Clause)) > 20


def _args(parsed):
    return {"kind": parsed["kind"], "amount": parsed["amount"], "points": parsed["points"],
            "params": parsed["params"]}
