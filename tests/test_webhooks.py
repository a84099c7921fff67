"""Webhooks: endpoints CS admins register (secret shown once), events queued per subscribed
endpoint in the caller's transaction, and signed POSTs to a real local HTTP server that
checks the signature."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from portal.accounts.services import create_user
from portal.core import notify, webhooks
from portal.core.audit import AuditEvent
from portal.core.errors import ServiceError
from portal.core.outbox import (
    AttemptOutcome,
    DeliveryAttempt,
    OutboxChannel,
    OutboxMessage,
    OutboxStatus,
    deliver_pending,
)
from portal.core.permissions import Role
from portal.extensions import db
from tests.factories import PASSWORD
from tests.helpers import english

PAYLOAD = {"notice": "HR-2026-0001", "employee_no": "E0137", "amount": "300.00"}


class Receiver:
    """A real HTTP server in a thread standing for the HR system: it checks each delivery's
    signature with the secret it was given, keeps what it got and answers ``answers`` in
    turn (then 200)."""

    def __init__(self):
        self.secret = ""
        self.received: list[dict] = []
        self.answers: list[int] = []
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.delay:
                    time.sleep(receiver.delay)
                receiver.received.append({
                    "headers": dict(self.headers), "body": body, "path": self.path,
                    "valid": webhooks.verify(receiver.secret, self.headers, body)})
                code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/portal-events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def admin(app):
    with app.test_request_context():
        create_user(username="admin", display_name="admin", password=PASSWORD,
                    role=Role.CS_ADMIN)
        db.session.commit()


def endpoint(url: str, events=("hr_notice.created",), active=True, name="HR system"):
    ep, secret = webhooks.create_endpoint(name=name, url=url, events=list(events),
                                          active=active)
    db.session.commit()
    return ep, secret


def rows() -> list[OutboxMessage]:
    return db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()


# --- registering endpoints ---------------------------------------------------------------------

@pytest.mark.parametrize("url", ["ftp://hr.example.com/in", "file:///etc/passwd",
                                 "javascript:alert(1)", "hr.example.com/in", "https://",
                                 "http://[::1/in", "https://hr.example.com:99999/in",
                                 "https://hr.example.com:port/in", "http://hr.example.com:0/in"])
def test_only_http_and_https_urls_can_be_registered(app, url):
    with app.test_request_context(), pytest.raises(ServiceError) as refused:
        webhooks.create_endpoint(name="HR", url=url, events=["hr_notice.created"])
    assert refused.value.field == "url"


def test_the_secret_is_shown_once_when_the_endpoint_is_added(app, admin, browser):
    browser.login("admin")
    english(browser)
    resp = browser.post("/admin/webhooks/", {"name": "HR system",
                                             "url": "https://hr.example.com/in",
                                             "events": ["hr_notice.created",
                                                        "hr_notice.withdrawn"],
                                             "active": "y"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    with app.app_context():
        ep = db.session.scalar(select(webhooks.WebhookEndpoint))
        assert ep.event_list == ["hr_notice.created", "hr_notice.withdrawn"]
        assert ep.secret in page and "will not be shown again" in page
        assert ep.secret not in browser.get("/admin/webhooks/").get_data(as_text=True)
        assert ep.secret not in browser.get(f"/admin/webhooks/{ep.id}/edit").get_data(
            as_text=True)
        ev = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "webhook_endpoint.created"))
        assert ep.secret not in (ev.after or "")


def test_the_page_refuses_a_url_that_is_not_http(app, admin, browser):
    browser.login("admin")
    english(browser)
    resp = browser.post("/admin/webhooks/", {"name": "HR", "url": "ftp://hr.example.com",
                                             "events": ["hr_notice.created"]})
    assert resp.status_code == 400
    assert "Only http:// and https:// URLs can receive webhooks." in resp.get_data(as_text=True)


def test_an_endpoint_is_edited_disabled_and_enabled_from_its_pages(app, admin, browser):
    with app.test_request_context():
        ep, _secret = endpoint("https://hr.example.com/in")
        ep_id, version = ep.id, ep.version
    browser.login("admin")
    browser.get(f"/admin/webhooks/{ep_id}/edit")
    resp = browser.post(f"/admin/webhooks/{ep_id}/edit", {
        "name": "HR system (new)", "url": "https://hr2.example.com/in",
        "events": ["hr_notice.amended"], "active": "y", "lock": str(version)})
    assert resp.status_code == 302
    stale = browser.post(f"/admin/webhooks/{ep_id}/edit", {
        "name": "Other", "url": "https://x.example.com", "events": [], "lock": str(version)})
    assert stale.status_code == 400  # someone else changed it since
    assert browser.post(f"/admin/webhooks/{ep_id}/disable").status_code == 302
    with app.app_context():
        ep = db.session.get(webhooks.WebhookEndpoint, ep_id)
        assert (ep.name, ep.url, ep.event_list, ep.active) == (
            "HR system (new)", "https://hr2.example.com/in", ["hr_notice.amended"], False)
    assert browser.post(f"/admin/webhooks/{ep_id}/enable").status_code == 302
    with app.app_context():
        assert db.session.get(webhooks.WebhookEndpoint, ep_id).active
        actions = db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.action.startswith("webhook_endpoint.")).order_by(AuditEvent.id)).all()
        assert actions == ["webhook_endpoint.created", "webhook_endpoint.updated",
                           "webhook_endpoint.disabled", "webhook_endpoint.enabled"]


# --- queueing ----------------------------------------------------------------------------------

def test_an_event_is_queued_once_for_each_active_subscribed_endpoint(app):
    with app.test_request_context():
        hr, _s = endpoint("https://hr.example.com/in", name="HR")
        endpoint("https://old-hr.example.com/in", name="Old HR", active=False)
        endpoint("https://bi.example.com/in", events=("hr_notice.withdrawn",), name="BI")
        queued = notify.webhook(event="hr_notice.created", key="hr-notice-1-created",
                                payload=PAYLOAD)
        db.session.commit()
        assert [m.endpoint_id for m in queued] == [hr.id]
        (msg,) = rows()
        assert (msg.channel, msg.event, msg.key, msg.user_id) == (
            OutboxChannel.WEBHOOK, "hr_notice.created", f"hr-notice-1-created:ep{hr.id}", None)
        assert json.loads(msg.body)["data"] == PAYLOAD
        again = notify.webhook(event="hr_notice.created", key="hr-notice-1-created",
                               payload=PAYLOAD)
        assert again == []  # never twice


def test_an_event_is_queued_in_the_callers_transaction(app):
    with app.test_request_context():
        endpoint("https://hr.example.com/in")
        notify.webhook(event="hr_notice.created", key="k", payload=PAYLOAD)
        db.session.rollback()  # the change that called for it did not happen
        assert rows() == []


def test_an_unknown_event_is_a_programming_error(app):
    with app.test_request_context(), pytest.raises(ValueError):
        notify.webhook(event="hr_notice.creatd", key="k", payload={})


# --- delivering --------------------------------------------------------------------------------

def _queue(url: str) -> tuple[int, str]:
    _ep, secret = endpoint(url)
    (msg,) = notify.webhook(event="hr_notice.created", key="hr-notice-1-created",
                            payload=PAYLOAD)
    db.session.commit()
    return msg.id, secret


def test_a_delivery_is_signed_and_the_receiver_verifies_it(app, receiver):
    with app.test_request_context():
        msg_id, receiver.secret = _queue(receiver.url)
        before = int(time.time())
        assert deliver_pending().sent == 1
        assert db.session.get(OutboxMessage, msg_id).status is OutboxStatus.SENT
    (got,) = receiver.received
    headers = got["headers"]
    assert got["valid"] and got["path"] == "/portal-events"
    assert headers["X-Portal-Event"] == "hr_notice.created"
    assert headers["X-Portal-Delivery"] == str(msg_id)
    assert before <= int(headers["X-Portal-Timestamp"]) <= time.time()
    assert headers["X-Portal-Signature"] == webhooks.signature(
        receiver.secret, headers["X-Portal-Timestamp"], got["body"])
    assert headers["Content-Type"].startswith("application/json")
    body = json.loads(got["body"])
    assert body["event"] == "hr_notice.created" and body["data"] == PAYLOAD


def test_a_receiver_refuses_a_changed_body_or_an_old_timestamp(app):
    body = b'{"event":"hr_notice.created"}'
    now = 1_800_000_000
    headers = {"X-Portal-Timestamp": str(now),
               "X-Portal-Signature": webhooks.signature("s3cret", now, body)}
    assert webhooks.verify("s3cret", headers, body, now=now + 10)
    assert not webhooks.verify("s3cret", headers, body + b" ", now=now + 10)
    assert not webhooks.verify("other", headers, body, now=now + 10)
    assert not webhooks.verify("s3cret", headers, body, now=now + 3600)


@pytest.mark.parametrize("code", [408, 429, 500, 503, 302])
def test_a_temporary_answer_is_retried_with_the_same_delivery_id(app, receiver, code):
    receiver.answers = [code]
    app.config.update(OUTBOX_RETRY_SECONDS=0)
    try:
        with app.test_request_context():
            msg_id, receiver.secret = _queue(receiver.url)
            assert deliver_pending().retried == 1
            msg = db.session.get(OutboxMessage, msg_id)
            assert msg.status is OutboxStatus.PENDING and f"HTTP {code}" in msg.last_error
            assert deliver_pending().sent == 1
            assert [a.outcome for a in db.session.scalars(select(DeliveryAttempt).order_by(
                DeliveryAttempt.id))] == [AttemptOutcome.RETRY, AttemptOutcome.SENT]
    finally:
        app.config.update(OUTBOX_RETRY_SECONDS=60)
    first, second = receiver.received
    assert first["headers"]["X-Portal-Delivery"] == second["headers"]["X-Portal-Delivery"]
    assert first["body"] == second["body"] and first["valid"] and second["valid"]
    assert len(receiver.received) == 2  # a redirect is not followed


@pytest.mark.parametrize("code", [400, 401, 404, 410])
def test_a_4xx_answer_fails_the_delivery_at_once(app, receiver, code):
    receiver.answers = [code]
    with app.test_request_context():
        msg_id, receiver.secret = _queue(receiver.url)
        assert deliver_pending().failed == 1
        msg = db.session.get(OutboxMessage, msg_id)
        assert msg.status is OutboxStatus.FAILED and f"HTTP {code}" in msg.last_error


def test_a_receiver_that_does_not_answer_in_time_is_retried(app, receiver):
    receiver.delay = 1.0
    app.config.update(WEBHOOK_TIMEOUT=0.3)
    try:
        with app.test_request_context():
            msg_id, receiver.secret = _queue(receiver.url)
            assert deliver_pending().retried == 1
            msg = db.session.get(OutboxMessage, msg_id)
            assert msg.status is OutboxStatus.PENDING and "timed out" in msg.last_error
    finally:
        app.config.update(WEBHOOK_TIMEOUT=10)


def test_nobody_listening_is_retried(app):
    from tests.conftest import free_port

    with app.test_request_context():
        msg_id, _secret = _queue(f"http://127.0.0.1:{free_port()}/in")
        assert deliver_pending().retried == 1
        assert "Connection refused" in db.session.get(OutboxMessage, msg_id).last_error


def test_a_rotated_secret_signs_the_deliveries_after_it(app, receiver):
    with app.test_request_context():
        _msg_id, old = _queue(receiver.url)
        ep = db.session.scalar(select(webhooks.WebhookEndpoint))
        receiver.secret = webhooks.rotate_secret(ep)
        db.session.commit()
        assert receiver.secret != old
        assert deliver_pending().sent == 1
    (got,) = receiver.received
    assert got["valid"]


def test_a_disabled_endpoints_deliveries_fail_and_are_retried_by_hand(app, receiver):
    with app.test_request_context():
        msg_id, receiver.secret = _queue(receiver.url)
        ep = db.session.scalar(select(webhooks.WebhookEndpoint))
        webhooks.set_active(ep, False)
        db.session.commit()
        assert deliver_pending().failed == 1
        msg = db.session.get(OutboxMessage, msg_id)
        assert "disabled" in msg.last_error
        webhooks.set_active(ep, True)
        from portal.core.outbox import retry

        retry(msg)
        db.session.commit()
        assert deliver_pending().sent == 1
    assert len(receiver.received) == 1 and receiver.received[0]["valid"]


def test_emails_and_webhooks_go_out_in_the_same_round(app, receiver, smtp_server):
    with app.test_request_context():
        u = create_user(username="hr.li", display_name="Li", password=PASSWORD,
                        role=Role.HR_OFFICER, email="hr.li@example.com")
        _msg_id, receiver.secret = _queue(receiver.url)
        notify.email_user(u, key="mail-1", subject=lambda: "S", body=lambda: "B")
        db.session.commit()
        assert deliver_pending().sent == 2
    assert len(receiver.received) == 1 and len(smtp_server.messages) == 1
