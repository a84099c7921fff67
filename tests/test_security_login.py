"""Signing in: throttled per username and per address (counted in the database), one
message whatever the reason, every success and failure in the audit log."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.accounts.models import LoginAttempt
from portal.accounts.services import create_user
from portal.core.audit import AuditEvent, verify_chain
from portal.core.db import utcnow
from portal.core.permissions import Role
from portal.core.timeutil import frozen_time
from portal.extensions import db
from portal.parties.models import PartyKind
from portal.parties.services import create_party
from tests.helpers import english

PW = "test-password-1"
TOO_MANY = "Too many failed sign-ins"


@pytest.fixture
def staff(app):
    with app.test_request_context():
        party = create_party(code="C001", name_zh="顺丰速运", name_en="SF", kind=PartyKind.CARRIER)
        create_user(username="staff.a", display_name="A", password=PW, role=Role.PARTY_STAFF,
                    party=party)
        create_user(username="staff.b", display_name="B", password=PW, role=Role.PARTY_STAFF,
                    party=party)
        db.session.commit()


def attempt(browser, username, password, **kw):
    browser.get("/login")
    return browser.post("/login", {"username": username, "password": password}, **kw)


def events(app, action=None):
    with app.app_context():
        q = select(AuditEvent).order_by(AuditEvent.id)
        if action:
            q = q.where(AuditEvent.action == action)
        return db.session.scalars(q).all()


def test_wrong_password_and_unknown_user_get_the_same_answer(app, staff, browser):
    english(browser)
    wrong = attempt(browser, "staff.a", "not-the-password").get_data(as_text=True)
    unknown = attempt(browser, "nobody.here", "not-the-password").get_data(as_text=True)
    assert "Wrong username or password." in wrong and "Wrong username or password." in unknown


def test_failures_are_audited_without_actor_or_password(app, staff, browser):
    attempt(browser, "Staff.A", "not-the-password-9")
    (ev,) = events(app, "login.failed")
    assert ev.actor_id is None
    assert ev.after_dict() == {"username": "staff.a", "reason": "password"}
    assert "not-the-password-9" not in (ev.after or "") + (ev.before or "")


def test_success_is_audited_with_the_user_as_actor(app, staff, browser):
    browser.login("staff.a", PW)
    (ev,) = events(app, "login.succeeded")
    assert ev.actor_name == "staff.a" and ev.after_dict() == {"method": "password"}
    browser.logout()
    assert [e.actor_name for e in events(app, "logout")] == ["staff.a"]
    with app.app_context():
        assert verify_chain().intact


def test_five_failures_lock_the_account_for_a_growing_delay(app, staff, browser,
                                                            make_browser):
    english(browser)
    for _i in range(5):
        attempt(browser, "staff.a", "wrong-password-x")
    assert len(events(app, "login.locked")) == 1
    resp = attempt(browser, "staff.a", PW)  # even the right password waits
    assert TOO_MANY in resp.get_data(as_text=True)
    assert browser.get("/").status_code == 302
    assert len(events(app, "login.throttled")) == 1
    # another account from the same address is not affected
    assert attempt(make_browser(), "staff.b", PW).status_code == 302
    # after a minute the account may try again; one more failure doubles the wait
    with frozen_time(utcnow() + timedelta(seconds=61)):
        attempt(browser, "staff.a", "wrong-password-x")
    with frozen_time(utcnow() + timedelta(seconds=61 + 90)):
        assert TOO_MANY in attempt(browser, "staff.a", PW).get_data(as_text=True)
    with frozen_time(utcnow() + timedelta(seconds=61 + 121)):
        assert attempt(browser, "staff.a", PW).status_code == 302


def test_unknown_usernames_are_locked_too(app, staff, browser):
    english(browser)
    for _i in range(5):
        attempt(browser, "ghost", "wrong-password-x")
    assert TOO_MANY in attempt(browser, "ghost", "wrong-password-x").get_data(as_text=True)


def test_a_success_resets_the_account_counter(app, staff, make_browser):
    b = make_browser()
    english(b)
    for _i in range(4):
        attempt(b, "staff.a", "wrong-password-x")
    good = make_browser()
    good.login("staff.a", PW)
    for _i in range(4):
        attempt(b, "staff.a", "wrong-password-x")
    assert attempt(b, "staff.a", PW).status_code == 302


def test_twenty_failures_from_one_address_block_it(app, staff, make_browser):
    b = make_browser()
    english(b)
    for i in range(20):
        attempt(b, f"guess{i}", "wrong-password-x")
    resp = attempt(b, "staff.a", PW)
    assert TOO_MANY in resp.get_data(as_text=True)
    other = make_browser()
    assert attempt(other, "staff.a", PW,
                   environ_base={"REMOTE_ADDR": "10.9.8.7"}).status_code == 302


def test_old_attempts_leave_the_window(app, staff, browser):
    for _i in range(5):
        attempt(browser, "staff.a", "wrong-password-x")
    with frozen_time(utcnow() + timedelta(minutes=16)):
        assert attempt(browser, "staff.a", PW).status_code == 302


def test_attempts_are_counted_in_the_database(app, staff, browser):
    attempt(browser, "staff.a", "wrong-password-x")
    browser.login("staff.a", PW)
    with app.app_context():
        rows = db.session.scalars(select(LoginAttempt).order_by(LoginAttempt.id)).all()
        assert [(r.username, r.succeeded) for r in rows] == [("staff.a", False), ("staff.a", True)]
        assert rows[0].ip == "127.0.0.1"


def test_lock_message_in_chinese(app, staff, browser):
    for _i in range(5):
        attempt(browser, "staff.a", "wrong-password-x")
    text = attempt(browser, "staff.a", PW).get_data(as_text=True)
    assert TOO_MANY in text or "登录失败次数过多" in text
