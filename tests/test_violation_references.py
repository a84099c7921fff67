"""A violation never points to a row that does not exist, and a row a violation points to
cannot be deleted or re-keyed: FOREIGN KEY constraints on SQLite, statement-level triggers on
PostgreSQL (migration c4f1a2b3d5e6); both refuse the same writes with an IntegrityError."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.cases.models import Violation
from portal.extensions import db
from portal.intake.models import Ticket
from portal.parties.models import Party
from tests.factories import build_world
from tests.test_intake import rulebook, run, ticket


@pytest.fixture
def world(ctx):
    w = build_world()
    rulebook()
    db.session.commit()
    return w


def _row(w, **over) -> dict:
    from portal.core.db import utcnow

    return {"clause_id": w.clause, "party_id": w.carrier_a, "standard_id": w.standard,
            "clause_number": "1", "check": "", "occurrences": 1, "evidence": "",
            "recorded_at": utcnow(), "status": "proposed", "source": "rule",
            "customer_compensation": 0, "party_fine": 0, "points": 0, "repeat_no": 1,
            "multiplier": 1, "dismiss_reason": "", "case_id": None, "recorded_by_id": None,
            "reviewed_by_id": None, "ticket_no": None, **over}


def _refused(statement, params=None):
    with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
        db.session.execute(statement, params)
    return True


@pytest.mark.parametrize("column, value", [
    ("party_id", 999_999), ("clause_id", 999_999), ("standard_id", 999_999),
    ("case_id", 999_999), ("recorded_by_id", 999_999), ("reviewed_by_id", 999_999),
    ("ticket_no", "NO-SUCH-TICKET")])
def test_a_violation_pointing_nowhere_is_refused(world, column, value):
    v = Violation.__table__
    assert _refused(sa.insert(v), [_row(world), _row(world, **{column: value})])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(v).where(
        v.c.source == "rule")) == 0       # the good row of the same statement is not kept
    existing = db.session.scalar(sa.select(v.c.id).limit(1))
    assert _refused(sa.update(v).where(v.c.id == existing).values({column: value}))


def test_a_referenced_row_cannot_go_and_an_unreferenced_one_can(world):
    t = Ticket.__table__
    run([ticket("R1"), ticket("R2")])
    db.session.execute(sa.insert(Violation.__table__), [_row(world, ticket_no="R1")])
    assert _refused(sa.delete(t).where(t.c.ticket_no == "R1"))
    assert _refused(sa.update(t).where(t.c.ticket_no == "R1").values(ticket_no="R9"))
    assert _refused(sa.delete(Party.__table__).where(Party.__table__.c.id == world.carrier_a))
    db.session.execute(sa.delete(t).where(t.c.ticket_no == "R2"))     # nobody points to it
    db.session.execute(sa.update(t).where(t.c.ticket_no == "R1").values(order_no="changed"))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(t)) == 1
