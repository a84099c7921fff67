"""The outbox: emails in the recipient's language, delivery with attempts recorded, back-off,
refusals and timeouts, leases of stopped workers, the failures page and retry by hand, and a
user's own history."""
from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from flask_babel import get_locale
from sqlalchemy import func, select

from portal.accounts.models import User
from portal.accounts.services import create_user
from portal.core import notify, outbox
from portal.core.audit import AuditEvent
from portal.core.db import utcnow
from portal.core.outbox import (
    AttemptOutcome,
    DeliveryAttempt,
    OutboxMessage,
    OutboxStatus,
    deliver_pending,
)
from portal.core.permissions import Role
from portal.core.timeutil import frozen_time
from portal.extensions import db
from tests.factories import PASSWORD
from tests.helpers import english


@pytest.fixture
def people(app):
    """A CS admin and two members of staff with addresses; Li reads pages in Chinese."""
    with app.test_request_context():
        made = {name: create_user(username=name, display_name=name, password=PASSWORD,
                                  role=role, email=f"{name}@example.com")
                for name, role in (("admin", Role.CS_ADMIN), ("lina", Role.CS_OFFICER),
                                   ("wangwei", Role.CS_OFFICER))}
        db.session.commit()
        return {name: u.id for name, u in made.items()}


def user(uid: int) -> User:
    return db.session.get(User, uid)


def queue(uid: int, key: str, subject: str = "Hello") -> OutboxMessage:
    msg = notify.email_user(user(uid), key=key, subject=lambda: subject,
                            body=lambda: "Body of " + key)
    db.session.commit()
    return msg


def attempts(msg_id: int) -> list[DeliveryAttempt]:
    return db.session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.message_id == msg_id)
                              .order_by(DeliveryAttempt.id)).all()


def audit_actions(prefix: str) -> list[str]:
    return db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id)).all()


# --- the language of emails --------------------------------------------------------------------

def test_an_email_is_written_in_the_language_the_user_chose_for_emails(app, people):
    with app.test_request_context():
        li = user(people["lina"])
        li.locale, li.email_locale = "zh_CN", "en"
        msg = notify.email_user(li, key="k1", subject=lambda: str(get_locale()),
                                body=lambda: str(get_locale()))
        assert (msg.subject, msg.body, msg.user_id) == ("en", "en", li.id)


def test_without_a_choice_emails_follow_the_language_of_the_pages(app, people):
    with app.test_request_context():
        li = user(people["lina"])
        li.locale, li.email_locale = "en", None
        msg = notify.email_user(li, key="k1", subject=lambda: str(get_locale()),
                                body=lambda: "")
        assert msg.subject == "en"


def test_the_settings_page_saves_the_language_of_emails(app, people, browser):
    browser.login("lina")
    english(browser)
    page = browser.get("/account/settings").get_data(as_text=True)
    assert "Language of my emails" in page
    resp = browser.post("/account/settings", {"email_locale": "zh_CN"})
    assert resp.status_code == 302
    with app.app_context():
        li = user(people["lina"])
        assert (li.locale, li.email_locale) == ("en", "zh_CN")  # pages stay English
        assert audit_actions("user.email_locale") == ["user.email_locale_changed"]
    assert browser.post("/account/settings", {"email_locale": "fr"}).status_code == 400


def test_a_user_sees_the_messages_addressed_to_them_and_no_others(app, people, browser):
    with app.test_request_context():
        queue(people["lina"], "li-1", "Reminder for Li")
        queue(people["wangwei"], "wang-1", "Reminder for Wang")
    browser.login("lina")
    english(browser)
    page = browser.get("/account/notifications").get_data(as_text=True)
    assert "Reminder for Li" in page and "Queued" in page
    assert "Reminder for Wang" not in page


def test_my_notifications_are_paginated(app, people, browser):
    with app.test_request_context():
        for i in range(30):
            queue(people["lina"], f"li-{i}", f"Message number {i:02d}")
    browser.login("lina")
    first = browser.get("/account/notifications").get_data(as_text=True)
    assert "Message number 29" in first and "Message number 00" not in first
    second = browser.get("/account/notifications?page=2").get_data(as_text=True)
    assert "Message number 00" in second


# --- delivery ------------------------------------------------------------------------------

def test_a_sent_email_records_its_attempt_and_audit_event(app, people, smtp_server):
    with app.test_request_context():
        msg = queue(people["lina"], "k1")
        report = deliver_pending()
        assert report.sent == 1
        db.session.refresh(msg)
        assert msg.status is OutboxStatus.SENT and msg.attempts == 1
        assert msg.claim_token is None and msg.lease_until is None
        (a,) = attempts(msg.id)
        assert a.outcome is AttemptOutcome.SENT and a.duration_ms >= 0 and a.worker
        assert audit_actions("outbox.") == ["outbox.sent"]
    (mail,) = smtp_server.messages
    assert mail["Message-ID"] == f"<outbox-{msg.id}@portal.local>"


def test_a_refusing_server_fails_the_message_at_once_with_the_error_recorded(app, people,
                                                                            smtp_server):
    smtp_server.reject = "550 5.1.1 mailbox unavailable"
    with app.test_request_context():
        msg = queue(people["lina"], "k1")
        assert deliver_pending().failed == 1
        db.session.refresh(msg)
        assert msg.status is OutboxStatus.FAILED and "550" in msg.last_error
        (a,) = attempts(msg.id)
        assert a.outcome is AttemptOutcome.FAILED and "mailbox unavailable" in a.error
        assert audit_actions("outbox.") == ["outbox.failed"]


def test_a_temporary_refusal_is_retried_with_exponential_back_off_then_given_up(
        app, people, smtp_server):
    smtp_server.reject = "451 4.3.0 try again later"
    app.config.update(OUTBOX_MAX_ATTEMPTS=3, OUTBOX_RETRY_SECONDS=60)
    try:
        with app.test_request_context():
            start = utcnow()
            with frozen_time(start):
                msg = queue(people["lina"], "k1")
                assert deliver_pending().retried == 1
            db.session.refresh(msg)
            assert msg.status is OutboxStatus.PENDING and "451" in msg.last_error
            assert msg.next_attempt_at == start + timedelta(seconds=60)
            with frozen_time(start + timedelta(seconds=59)):
                assert deliver_pending().retried == 0  # not due yet
            with frozen_time(start + timedelta(seconds=60)):
                assert deliver_pending().retried == 1
            db.session.refresh(msg)
            assert msg.next_attempt_at == start + timedelta(seconds=60 + 120)  # doubled
            with frozen_time(start + timedelta(seconds=180)):
                assert deliver_pending().failed == 1  # the third attempt is the last
            db.session.refresh(msg)
            assert msg.status is OutboxStatus.FAILED and msg.attempts == 3
            assert [a.outcome for a in attempts(msg.id)] == [
                AttemptOutcome.RETRY, AttemptOutcome.RETRY, AttemptOutcome.FAILED]
    finally:
        app.config.update(OUTBOX_MAX_ATTEMPTS=6)


@pytest.fixture
def silent_server(app):
    """A server that accepts connections and never says a word (no SMTP greeting)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    saved = {k: app.config[k] for k in ("MAIL_SERVER", "MAIL_PORT", "MAIL_TIMEOUT")}
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=sock.getsockname()[1],
                      MAIL_TIMEOUT=0.3)
    yield sock
    sock.close()
    app.config.update(saved)


def test_a_server_that_times_out_leaves_the_messages_queued_with_the_error(app, people,
                                                                          silent_server):
    with app.test_request_context():
        first, second = queue(people["lina"], "k1"), queue(people["wangwei"], "k2")
        report = deliver_pending()
        assert report.retried == 2 and report.sent == 0
        for msg in (first, second):
            db.session.refresh(msg)
            assert msg.status is OutboxStatus.PENDING and msg.attempts == 1
            assert "timed out" in msg.last_error
            (a,) = attempts(msg.id)
            assert a.outcome is AttemptOutcome.RETRY and "timed out" in a.error
        # one timeout for the round, not one per message
        assert attempts(first.id)[0].duration_ms >= 250
        assert attempts(second.id)[0].duration_ms < 250


def test_a_claimed_message_is_not_claimed_again(app, people):
    with app.test_request_context():
        queue(people["lina"], "k1")
        first = outbox._claim(10, "worker-a")
        second = outbox._claim(10, "worker-b")
        assert len(first.rows) == 1 and second.rows == []
        msg = db.session.scalar(select(OutboxMessage))
        assert msg.status is OutboxStatus.SENDING and msg.claim_token == first.token


def test_a_stopped_workers_rows_come_back_only_the_first_as_interrupted(app, people):
    """Rows are handed over in id order with each outcome committed, so of a claim left
    behind only the first can have been in flight."""
    with app.test_request_context():
        ids = [queue(people["lina"], f"k{i}").id for i in range(3)]
        claim = outbox._claim(10, "worker-a")
        assert outbox.release_expired().released == 0  # the lease still runs
        with frozen_time(claim.until + timedelta(seconds=1)):
            report = outbox.release_expired("worker-b")
        assert (report.released, report.interrupted) == (3, 1)
        rows = [db.session.get(OutboxMessage, i) for i in ids]
        for m in rows:
            db.session.refresh(m)
        assert {m.status for m in rows} == {OutboxStatus.PENDING}
        assert [m.attempts for m in rows] == [1, 0, 0]
        assert [a.outcome for a in attempts(ids[0])] == [AttemptOutcome.INTERRUPTED]
        assert attempts(ids[1]) == [] and "same Message-ID" in rows[0].last_error
        assert audit_actions("outbox.") == ["outbox.interrupted"]


def test_the_lease_is_at_least_ten_times_the_longest_wait(app):
    with app.app_context():
        app.config.update(OUTBOX_LEASE_SECONDS=5, MAIL_TIMEOUT=2, WEBHOOK_TIMEOUT=1)
        try:
            assert outbox.lease_seconds() == 20
            app.config.update(WEBHOOK_TIMEOUT=3)
            assert outbox.lease_seconds() == 30
            app.config.update(OUTBOX_LEASE_SECONDS=300)
            assert outbox.lease_seconds() == 300
        finally:
            app.config.update(OUTBOX_LEASE_SECONDS=300, MAIL_TIMEOUT=20, WEBHOOK_TIMEOUT=10)


def test_a_worker_asked_to_stop_gives_back_what_it_has_not_sent(app, people, smtp_server):
    with app.test_request_context():
        for i in range(5):
            queue(people["lina"], f"k{i}")
        sent_before_stop = iter([False, False, True])
        report = deliver_pending(stop=lambda: next(sent_before_stop))
        assert (report.sent, report.released) == (2, 3)
        rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert [m.status for m in rows] == [OutboxStatus.SENT] * 2 + [OutboxStatus.PENDING] * 3
        assert all(m.claim_token is None and m.attempts == 0 for m in rows[2:])
    assert len(smtp_server.messages) == 2


# --- the pages of CS admins ------------------------------------------------------------------

def _failed_message(app, people) -> int:
    with app.test_request_context():
        msg = queue(people["lina"], "k1", "Overdue reading")
        msg.status, msg.attempts, msg.last_error = OutboxStatus.FAILED, 6, "SMTP 550 no such user"
        db.session.add(DeliveryAttempt(message_id=msg.id, outcome=AttemptOutcome.FAILED,
                                       error="SMTP 550 no such user", worker="w1"))
        db.session.commit()
        return msg.id


def test_the_failures_page_shows_failed_messages_with_their_attempts(app, people, browser):
    msg_id = _failed_message(app, people)
    browser.login("admin")
    english(browser)
    page = browser.get("/admin/notifications/failures").get_data(as_text=True)
    assert f"#{msg_id}" in page and "Overdue reading" in page
    assert "SMTP 550 no such user" in page and "Failed, given up" in page and "Retry" in page


def test_retry_by_hand_queues_the_message_again_and_is_audited(app, people, browser,
                                                               smtp_server):
    msg_id = _failed_message(app, people)
    browser.login("admin")
    browser.get("/admin/notifications/failures")
    resp = browser.post(f"/admin/notifications/messages/{msg_id}/retry")
    assert resp.status_code == 302
    with app.test_request_context():
        msg = db.session.get(OutboxMessage, msg_id)
        assert msg.status is OutboxStatus.PENDING and msg.attempts == 0
        ev = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "outbox.retried_by_hand"))
        assert ev.actor_name == "admin" and ev.before_dict()["status"] == "failed"
        assert deliver_pending().sent == 1
    assert len(smtp_server.messages) == 1


def test_a_message_being_sent_cannot_be_retried_by_hand(app, people, browser):
    with app.test_request_context():
        queue(people["lina"], "k1")
        outbox._claim(10, "worker-a")
        msg_id = db.session.scalar(select(OutboxMessage.id))
    browser.login("admin")
    browser.get("/admin/notifications/failures")
    browser.post(f"/admin/notifications/messages/{msg_id}/retry")
    with app.app_context():
        assert db.session.get(OutboxMessage, msg_id).status is OutboxStatus.SENDING
        assert audit_actions("outbox.retried") == []


def test_the_outbox_page_counts_messages_by_status_and_channel(app, people, browser):
    _failed_message(app, people)
    with app.test_request_context():
        queue(people["wangwei"], "k2", "Still queued")
    browser.login("admin")
    english(browser)
    page = browser.get("/admin/notifications/").get_data(as_text=True)
    assert "Outbox" in page and "Still queued" in page
    filtered = browser.get("/admin/notifications/?status=failed").get_data(as_text=True)
    assert "Overdue reading" in filtered and "Still queued" not in filtered


def test_the_message_page_shows_body_and_attempts(app, people, browser):
    msg_id = _failed_message(app, people)
    browser.login("admin")
    page = browser.get(f"/admin/notifications/messages/{msg_id}").get_data(as_text=True)
    assert "Body of k1" in page and "SMTP 550 no such user" in page


def test_flask_worker_retry_and_status(app, people):
    msg_id = _failed_message(app, people)
    runner = app.test_cli_runner()
    status = runner.invoke(args=["worker", "status"])
    assert "failed   1  (email 1)" in status.output
    result = runner.invoke(args=["worker", "retry", str(msg_id)])
    assert result.exit_code == 0 and "queued again" in result.output
    again = runner.invoke(args=["worker", "retry", str(msg_id)])
    assert again.exit_code != 0 and "pending" in again.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "outbox.retried_by_hand")) == 1
