"""Reminder emails: queued in the outbox with the change, sent by the worker, never twice."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from portal.accounts.models import User
from portal.core.outbox import OutboxMessage, OutboxStatus, deliver_pending
from portal.core.timeutil import frozen_time, local_today
from portal.extensions import db
from portal.standards import campaigns
from portal.standards.models import AckTask
from tests.conftest import free_port
from tests.factories import build_world


@pytest.fixture
def world(app):
    with app.test_request_context():
        w = build_world(with_case=False)
        db.session.execute(update(User).values(email=User.username + "@example.com"))
        db.session.commit()
        return w


def at_noon(day) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=4)


def outbox() -> list[OutboxMessage]:
    return db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()


def test_reminders_go_out_before_the_due_date_once_per_person(app, world, smtp_server):
    with app.test_request_context():
        due = local_today() + timedelta(days=14)
        assert campaigns.schedule_reminders() == {"due_soon": 0, "overdue": 0}  # too early
        with frozen_time(at_noon(due - timedelta(days=2))):
            counts = campaigns.schedule_reminders()
            db.session.commit()
            assert counts == {"due_soon": 5, "overdue": 0}  # 3 carriers' + 2 departments' staff
            assert campaigns.schedule_reminders() == {"due_soon": 0, "overdue": 0}
            db.session.commit()
            report = deliver_pending()
            assert (report.sent, report.retried, report.failed) == (5, 0, 0)
            assert deliver_pending().sent == 0  # nothing is sent twice
    assert len(smtp_server.messages) == 5
    msg = next(m for m in smtp_server.messages if m["To"] == "staff.a@example.com")
    assert "CAR-DLV v1" in msg.get_content() and "/standards/to-read" in msg.get_content()
    assert msg["Subject"].startswith("[服务标准治理平台] 提醒") or "Reminder" in msg["Subject"]
    assert msg["Message-ID"].startswith("<outbox-")


def test_overdue_reminders_are_in_the_users_language(app, world, smtp_server):
    with app.test_request_context():
        db.session.execute(update(User).where(User.username == "staff.a").values(locale="en"))
        db.session.commit()
        due = local_today() + timedelta(days=14)
        with frozen_time(at_noon(due + timedelta(days=1))):
            counts = campaigns.schedule_reminders()
            db.session.commit()
            assert counts["overdue"] == 5
            deliver_pending()
    by_to = {m["To"]: m for m in smtp_server.messages}
    assert by_to["staff.a@example.com"]["Subject"].endswith(
        "Overdue: 1 service standard(s) still to acknowledge")
    assert "逾期" in by_to["staff.b@example.com"]["Subject"]


def test_an_acknowledged_task_is_not_reminded(app, world, smtp_server):
    with app.test_request_context():
        from portal.standards.models import StandardVersion
        from portal.standards.services import acknowledge

        staff = db.session.scalar(select(User).where(User.username == "staff.a"))
        acknowledge(db.session.get(StandardVersion, world.version), staff, ip="1.2.3.4",
                    user_agent="t")
        db.session.commit()
        with frozen_time(at_noon(local_today() + timedelta(days=13))):
            campaigns.schedule_reminders()
            db.session.commit()
            assert "staff.a@example.com" not in {m.to_addr for m in outbox()}


def test_a_server_that_is_down_is_retried_later_and_the_mail_sent_once(app, world,
                                                                       smtp_server):
    with app.test_request_context():
        moment = at_noon(local_today() + timedelta(days=13))
        with frozen_time(moment):
            campaigns.schedule_reminders()
            db.session.commit()
            good_port = app.config["MAIL_PORT"]
            app.config["MAIL_PORT"] = free_port()  # nobody listens there
            try:
                report = deliver_pending()
            finally:
                app.config["MAIL_PORT"] = good_port
            assert report.retried == 5 and report.sent == 0
            msgs = outbox()
            assert {m.status for m in msgs} == {OutboxStatus.PENDING}
            assert all(m.attempts == 1 and "ConnectionRefusedError" in m.last_error
                       for m in msgs)
            assert deliver_pending().sent == 0  # not due again yet (back-off)
        with frozen_time(moment + timedelta(minutes=5)):
            assert deliver_pending().sent == 5
        assert {m.status for m in outbox()} == {OutboxStatus.SENT}
    assert len(smtp_server.messages) == 5


def test_a_refused_recipient_fails_at_once_without_retrying(app, world, smtp_server):
    smtp_server.reject = "550 5.1.1 mailbox unavailable"
    with app.test_request_context():
        with frozen_time(at_noon(local_today() + timedelta(days=13))):
            campaigns.schedule_reminders()
            db.session.commit()
            report = deliver_pending()
        assert report.failed == 5
        msg = outbox()[0]
        assert msg.status is OutboxStatus.FAILED and msg.attempts == 1
        assert "550" in msg.last_error


def test_the_worker_command_does_a_round(app, world, smtp_server):
    runner = app.test_cli_runner()
    with app.app_context():
        db.session.execute(update(AckTask).values(due_on=local_today() + timedelta(days=1)))
        db.session.commit()
    result = runner.invoke(args=["worker", "run", "--once"])
    assert result.exit_code == 0, result.output
    assert "due_soon=5" in result.output and "sent=5" in result.output
    result = runner.invoke(args=["worker", "run", "--once"])
    assert "due_soon=0" in result.output and "sent=0" in result.output
    assert len(smtp_server.messages) == 5
    status = runner.invoke(args=["worker", "status"])
    assert "sent     5" in status.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 5
