"""Rulings priced by breach and loss (issue 21): each party pays its own fines with their points
in full and its share of the loss; no override reason is asked for a clause it did not break;
its HR notice lists only its own clauses."""
from __future__ import annotations

from decimal import Decimal

import pytest
from flask_babel import force_locale

from portal.accounts.models import User
from portal.cases import services
from portal.cases.models import Case, Penalty, RulingArithmetic, Violation
from portal.cases.rulings import ShareInput, issue_ruling
from portal.core.audit import acting_as
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.hr.models import HrNotice
from portal.parties.models import Party
from portal.standards.models import Clause, StandardVersion
from portal.standards.services import acknowledge
from tests.factories import build_world, username

V2 = RulingArithmetic.BREACH_AND_LOSS
D = Decimal


def user(key: str) -> User:
    return db.session.scalar(db.select(User).where(User.username == username(key)))


def _case(app, acknowledged=("staff_a", "dept_manager")):
    """The issue's case: 顺丰 C001 broke CAR-DLV §1 (¥500, 2 points) and its delay cost ¥10 of
    customer compensation; 促销部 D001 broke INT-PROMO §1 (¥1,000). Each party (of those
    whose people are ``acknowledged``) acknowledged its own standard, never the other's."""
    with app.test_request_context():
        w = build_world(with_case=False)
        officer = user("cs_officer")
        for key, version in (("staff_a", w.version), ("dept_manager", w.promo_version)):
            if key not in acknowledged:
                continue
            with acting_as(user(key)):
                acknowledge(db.session.get(StandardVersion, version), user(key), ip="127.0.0.1",
                            user_agent="test")
        with acting_as(officer):
            c = services.open_case(title="虚假签收且促销设置错误", description="",
                                   incident_at=utcnow(), user=officer)
            carrier = services.record_violation(
                c, clause=db.session.get(Clause, w.clause),
                party=db.session.get(Party, w.carrier_a), occurrences=1, evidence="录音",
                user=officer)
            carrier.points, carrier.customer_compensation = 2, D("10.00")
            services.record_violation(
                c, clause=db.session.get(Clause, w.promo_clause),
                party=db.session.get(Party, w.dept), occurrences=1, evidence="促销配置截图",
                user=officer)
        db.session.commit()
        w.ids["the_case"] = c.id
        return w


@pytest.fixture
def case(app):
    return _case(app)


def rule(w, shares, arithmetic=V2):
    officer = user("cs_officer")
    with acting_as(officer), force_locale("en"):
        ruling = issue_ruling(db.session.get(Case, w.the_case), officer=officer,
                              rationale="证据充分", shares=shares, arithmetic=arithmetic)
    db.session.commit()
    return ruling


def seventy_thirty(w, **dept):
    return [ShareInput(w.carrier_a, 70),
            ShareInput(w.dept, 30, "E0137", "钱晓", **dept)]


def test_each_party_pays_its_own_fine_and_its_share_of_the_loss(app, case):
    with app.test_request_context():
        ruling = rule(case, seventy_thirty(case))     # no override reason needed
        assert ruling.arithmetic is V2
        shares = {s.party_id: s for s in ruling.shares}
        c001, d001 = shares[case.carrier_a], shares[case.dept]
        assert (c001.fine, c001.compensation, c001.points) == (D("500.00"), D("7.00"), 2)
        assert (d001.fine, d001.compensation, d001.points) == (D("1000.00"), D("3.00"), 0)
        assert ruling.total_amount == D("1510.00") == c001.fine + c001.compensation + \
            d001.fine + d001.compensation
        assert [s.override_reason for s in ruling.shares] == ["", ""]
        penalties = {p.party_id: p.amount for p in db.session.scalars(
            db.select(Penalty).where(Penalty.ruling_id == ruling.id))}
        # within the officer's limit (¥2,000) it took effect: one penalty a party
        assert penalties == {case.carrier_a: D("507.00"), case.dept: D("1003.00")}


def test_the_whole_case_arithmetic_still_prices_as_before(app, case):
    """Until the ruling form moves to breach and loss, it rules as it always did: each share of
    the whole case, and override reasons for the clauses the party never acknowledged."""
    with app.test_request_context():
        with pytest.raises(ServiceError, match="never acknowledged"):
            rule(case, seventy_thirty(case), RulingArithmetic.WHOLE_CASE)
        db.session.rollback()
        ruling = rule(case, [ShareInput(case.carrier_a, 70, override_reason="已线下告知"),
                             ShareInput(case.dept, 30, "E0137", "钱晓",
                                        override_reason="已线下告知")],
                      RulingArithmetic.WHOLE_CASE)
        shares = {s.party_id: s for s in ruling.shares}
        assert ruling.arithmetic is RulingArithmetic.WHOLE_CASE
        assert (shares[case.carrier_a].fine, shares[case.dept].fine) == (D("1050.00"),
                                                                         D("450.00"))


def test_an_unacknowledged_own_clause_still_needs_an_override(app):
    case = _case(app, acknowledged=("staff_a",))
    with app.test_request_context():
        with pytest.raises(ServiceError, match="D001 never acknowledged INT-PROMO"):
            rule(case, seventy_thirty(case))
        db.session.rollback()
        ruling = rule(case, seventy_thirty(case, override_reason="部门例会已传达"))
        assert {s.party_id: s.override_reason for s in ruling.shares} == {
            case.carrier_a: "", case.dept: "部门例会已传达"}


def test_a_party_that_broke_a_clause_must_be_in_the_ruling(app, case):
    with app.test_request_context(), \
            pytest.raises(ServiceError, match="D001 broke a clause of this case"):
        rule(case, [ShareInput(case.carrier_a, 100)])


def test_a_party_with_no_breach_carries_only_a_share_of_the_loss(app, case):
    with app.test_request_context():
        ruling = rule(case, [ShareInput(case.carrier_a, 50),
                             ShareInput(case.dept, 10, "E0137", "钱晓"),
                             ShareInput(case.warehouse, 40)])
        w001 = next(s for s in ruling.shares if s.party_id == case.warehouse)
        assert (w001.fine, w001.compensation, w001.points) == (D("0.00"), D("4.00"), 0)


def test_a_party_with_nothing_to_pay_is_refused(app, case):
    with app.test_request_context():
        db.session.execute(db.update(Violation).values(customer_compensation=D("0.00")))
        db.session.commit()
        with pytest.raises(ServiceError, match="W001 broke no clause of this case"):
            rule(case, [ShareInput(case.carrier_a, 50),
                        ShareInput(case.dept, 10, "E0137", "钱晓"),
                        ShareInput(case.warehouse, 40)])


def test_the_departments_hr_notice_lists_only_its_own_clause(app, case, monkeypatch):
    monkeypatch.setitem(app.config, "RULING_APPROVAL_LEVELS", ":cs_officer")  # in effect at once
    with app.test_request_context():
        rule(case, seventy_thirty(case))
        (notice,) = db.session.scalars(db.select(HrNotice)).all()
        assert notice.amount == D("1003.00")
        assert [c["label"] for c in notice.clauses] == ["INT-PROMO v1 §1"]
