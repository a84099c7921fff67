"""Rulings: blame shares priced to the fen, decision levels signed by someone else, corrections
that supersede, and fines on clauses a party never acknowledged."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.accounts.models import User
from portal.cases.models import Case, CaseStatus, Penalty, RulingStatus
from portal.cases.rulings import (
    ShareInput,
    approve_ruling,
    decline_ruling,
    issue_ruling,
    split_points,
    standing,
)
from portal.cases.services import open_case, record_violation
from portal.core.audit import AuditEvent, acting_as
from portal.core.db import utcnow
from portal.core.errors import ConflictError, ServiceError
from portal.extensions import db
from portal.parties.models import Party
from portal.standards.models import Clause
from portal.standards.services import acknowledge
from tests.factories import build_world, username

OK = "线下已确认"


def user(key: str) -> User:
    return db.session.scalar(select(User).where(User.username == username(key)))


@pytest.fixture
def world(ctx):
    return build_world(with_case=False)


def a_case(world, occurrences=1, compensation="0.00", clause_key="clause") -> Case:
    """A case with one violation of the ¥500 false-feedback clause by carrier C001."""
    officer = user("cs_officer")
    with acting_as(officer):
        case = open_case(title="虚假签收", description="", incident_at=utcnow() - timedelta(days=1),
                         user=officer)
        v = record_violation(case, clause=db.session.get(Clause, world.ids[clause_key]),
                             party=db.session.get(Party, world.carrier_a),
                             occurrences=occurrences, evidence="录音", user=officer)
        v.customer_compensation = Decimal(compensation)
        db.session.flush()
    return case


def rule(case, *shares, officer="cs_officer", **kw):
    with acting_as(user(officer)):
        return issue_ruling(case, officer=user(officer), rationale="证据充分",
                            shares=list(shares), **kw)


def actions() -> list[str]:
    return db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()


# --- money and points by share -------------------------------------------------------------

def test_points_split_by_share_add_up_to_the_total():
    assert split_points(6, [70, 30]) == [4, 2]
    # half-up gives 1 + 1; the extra point comes off the largest share (the first on a tie),
    # as core.money does with fen
    assert split_points(1, [50, 50]) == [0, 1]
    assert split_points(7, [33, 33, 34]) == [2, 2, 3]
    assert sum(split_points(11, [10, 20, 70])) == 11


def test_each_share_carries_its_fine_compensation_and_points(world):
    case = a_case(world, occurrences=1, compensation="10.01")   # ¥500 fine
    ruling = rule(case, ShareInput(world.carrier_a, 50, override_reason=OK),
                  ShareInput(world.warehouse, 50, override_reason=OK))
    assert ruling.status is RulingStatus.EFFECTIVE
    assert (ruling.fine_total, ruling.compensation_total) == (Decimal("500.00"),
                                                            Decimal("10.01"))
    assert ruling.total_amount == Decimal("510.01")
    got = [(s.fine, s.compensation) for s in ruling.shares]
    assert got == [(Decimal("250.00"), Decimal("5.00")), (Decimal("250.00"), Decimal("5.01"))]
    penalties = db.session.scalars(select(Penalty).order_by(Penalty.id)).all()
    assert [p.amount for p in penalties] == [Decimal("255.00"), Decimal("255.01")]
    assert sum(p.amount for p in penalties) == ruling.total_amount


# --- decision levels ------------------------------------------------------------------------

def test_within_the_officers_limit_the_ruling_takes_effect_at_once(world):
    case = a_case(world, occurrences=4)                                  # ¥2,000
    ruling = rule(case, ShareInput(world.carrier_a, 100, override_reason=OK))
    assert ruling.status is RulingStatus.EFFECTIVE and case.status is CaseStatus.RULED
    assert ruling.approved_by_id is None


def test_above_the_limit_it_waits_for_a_supervisor_who_is_someone_else(world):
    case = a_case(world, occurrences=5)                                  # ¥2,500
    ruling = rule(case, ShareInput(world.carrier_a, 100, override_reason=OK), officer="cs_admin")
    assert ruling.status is RulingStatus.PENDING and ruling.required_role == "cs_supervisor"
    assert case.status is CaseStatus.AWAITING_APPROVAL
    assert db.session.scalars(select(Penalty)).all() == []
    with pytest.raises(ServiceError, match="someone other than|以外的人"):
        approve_ruling(ruling, user("cs_admin"))           # the one who ruled
    with pytest.raises(ServiceError):
        approve_ruling(ruling, user("cs_officer"))         # not senior enough
    with acting_as(user("cs_supervisor")):
        approve_ruling(ruling, user("cs_supervisor"))
    assert ruling.status is RulingStatus.EFFECTIVE and case.status is CaseStatus.RULED
    assert ruling.approved_by_id == user("cs_supervisor").id and ruling.approved_at
    assert "R-" in ruling.approval_meaning and "2,500.00" in ruling.approval_meaning
    assert [p.amount for p in db.session.scalars(select(Penalty))] == [Decimal("2500.00")]
    assert {"ruling.issued", "case.awaiting_approval", "ruling.approved",
            "ruling.effective"} <= set(actions())


def test_the_largest_rulings_need_a_director(world):
    case = a_case(world, occurrences=41)                                 # ¥20,500
    ruling = rule(case, ShareInput(world.carrier_a, 100, override_reason=OK))
    assert ruling.required_role == "cs_director"
    with pytest.raises(ServiceError):
        approve_ruling(ruling, user("cs_supervisor"))
    with acting_as(user("cs_director")):
        approve_ruling(ruling, user("cs_director"))
    assert ruling.status is RulingStatus.EFFECTIVE


def test_a_declined_ruling_opens_the_case_again_and_needs_a_reason(world):
    case = a_case(world, occurrences=5)
    ruling = rule(case, ShareInput(world.carrier_a, 100, override_reason=OK))
    with pytest.raises(ServiceError):
        decline_ruling(ruling, user("cs_supervisor"), " ")
    with acting_as(user("cs_supervisor")):
        decline_ruling(ruling, user("cs_supervisor"), "证据不足,请补充录音")
    assert ruling.status is RulingStatus.DECLINED and case.status is CaseStatus.OPEN
    with pytest.raises(ServiceError):
        approve_ruling(ruling, user("cs_director"))        # no longer waiting


def test_a_second_ruling_is_refused_while_one_waits(world):
    case = a_case(world, occurrences=5)
    rule(case, ShareInput(world.carrier_a, 100, override_reason=OK))
    with pytest.raises(ServiceError, match="waiting for approval|待审批"):
        rule(case, ShareInput(world.carrier_a, 100, override_reason=OK))


# --- corrections --------------------------------------------------------------------------------

def test_a_correction_supersedes_the_ruling_and_its_penalties(world):
    case = a_case(world, occurrences=2)                                  # ¥1,000
    first = rule(case, ShareInput(world.carrier_a, 100, override_reason=OK))
    with pytest.raises(ServiceError, match="reason|理由"):
        rule(case, ShareInput(world.carrier_a, 60, override_reason=OK),
             ShareInput(world.warehouse, 40, override_reason=OK))
    second = rule(case, ShareInput(world.carrier_a, 60, override_reason=OK),
                  ShareInput(world.warehouse, 40, override_reason=OK),
                  supersede_reason="仓库出库延误也有责任")
    assert second.supersedes_id == first.id and second.status is RulingStatus.EFFECTIVE
    assert first.status is RulingStatus.SUPERSEDED and case.ruling is second
    standing_penalties = db.session.scalars(select(Penalty).where(Penalty.active.is_(True))).all()
    assert sorted(p.amount for p in standing_penalties) == [Decimal("400.00"),
                                                            Decimal("600.00")]
    assert "ruling.superseded" in actions()


def test_a_stale_form_is_a_conflict_and_saves_nothing(world):
    case = a_case(world)
    seen = case.version
    case.title = "改过的标题"
    db.session.flush()
    with pytest.raises(ConflictError):
        rule(case, ShareInput(world.carrier_a, 100, override_reason=OK), case_version=seen)
    assert case.rulings == []


# --- acknowledgement ------------------------------------------------------------------------------

def test_a_fine_on_a_clause_never_acknowledged_needs_an_override_reason(world):
    case = a_case(world)
    with pytest.raises(ServiceError, match="C001"):
        rule(case, ShareInput(world.carrier_a, 100))
    ruling = rule(case, ShareInput(world.carrier_a, 100, override_reason="线下培训签到表为证"))
    assert ruling.shares[0].override_reason == "线下培训签到表为证"


def test_once_the_party_acknowledged_no_override_is_needed_or_kept(world):
    case = a_case(world)
    clause = db.session.get(Clause, world.clause)
    with acting_as(user("staff_a")):
        ack = acknowledge(clause.standard_version, user("staff_a"), ip="10.0.0.1",
                          user_agent="test")
    (st,) = standing(case, [world.carrier_a])[world.carrier_a]
    assert st.acknowledged_at == ack.acknowledged_at and st.staff >= 1
    ruling = rule(case, ShareInput(world.carrier_a, 100, override_reason="不需要"))
    assert ruling.shares[0].override_reason == ""
