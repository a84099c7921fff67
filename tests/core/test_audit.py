from sqlalchemy import select, text

from portal.core.audit import AuditEvent, verify_chain
from portal.extensions import db
from tests.factories import build_world


def test_chain_verifies_and_the_cli_says_so(app):
    with app.test_request_context():
        build_world()
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0
    assert "audit chain intact" in result.output


def test_tampering_is_found_at_the_changed_event(app):
    with app.test_request_context():
        build_world()
        target = db.session.scalar(select(AuditEvent.id).where(
            AuditEvent.action == "penalty.created").order_by(AuditEvent.id))
        db.session.execute(text("UPDATE audit_events SET after = :a WHERE id = :i"),
                           {"a": '{"amount": "1.00"}', "i": target})
        db.session.commit()
        report = verify_chain()
        assert not report.intact and report.broken_at == target
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"BROKEN at event {target}" in result.output


def test_deleting_an_event_breaks_the_link(app):
    with app.test_request_context():
        build_world()
        ids = db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()
        db.session.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": ids[3]})
        db.session.commit()
        report = verify_chain()
        assert report.broken_at == ids[4]


def test_events_cannot_be_changed_through_the_orm(app):
    import pytest

    with app.test_request_context():
        build_world()
        ev = db.session.scalar(select(AuditEvent).limit(1))
        ev.actor_name = "someone else"
        with pytest.raises(RuntimeError, match="append-only"):
            db.session.flush()
        db.session.rollback()


def test_events_record_actor_and_before_after(app):
    with app.test_request_context():
        build_world()
        ev = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "case.ruled"))
        assert ev.actor_name == "cs.officer"
        assert ev.before_dict()["status"] == "open"
        assert ev.after_dict()["status"] == "ruled"
