"""Server-side sessions (idle and absolute time-outs, sign out everywhere, ended when the
account is disabled or the password changes) and the security headers."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.accounts.models import User, UserSession
from portal.accounts.services import create_user
from portal.core.audit import AuditEvent
from portal.core.db import utcnow
from portal.core.permissions import Role
from portal.core.timeutil import frozen_time
from portal.extensions import db
from portal.parties.models import PartyKind
from portal.parties.services import create_party
from tests.helpers import english

PW = "test-password-1"


@pytest.fixture
def people(app):
    with app.test_request_context():
        party = create_party(code="C001", name_zh="顺丰速运", name_en="SF", kind=PartyKind.CARRIER)
        create_user(username="admin", display_name="A", password=PW, role=Role.CS_ADMIN)
        create_user(username="staff.a", display_name="S", password=PW, role=Role.PARTY_STAFF,
                    party=party)
        db.session.commit()


def sessions(app, username="staff.a") -> list[UserSession]:
    with app.app_context():
        rows = db.session.scalars(select(UserSession).join(User).where(
            User.username == username).order_by(UserSession.created_at)).all()
        for r in rows:
            db.session.expunge(r)
        return rows


def test_sign_in_rotates_the_session_and_records_it(app, people, browser):
    browser.get("/login")
    before = browser.client.get_cookie("session")
    browser.login("staff.a", PW)
    assert browser.client.get_cookie("session").value != (before.value if before else None)
    (row,) = sessions(app)
    assert len(row.id) >= 43 and row.ip == "127.0.0.1" and row.ended_at is None
    browser.logout()
    (row,) = sessions(app)
    assert row.ended_at is not None
    assert browser.get("/").status_code == 302


def test_idle_timeout_signs_out_with_a_message(app, people, browser):
    browser.login("staff.a", PW)
    english(browser)
    with frozen_time(utcnow() + timedelta(minutes=29)):
        assert browser.get("/").status_code == 200  # still in (and last seen now)
    with frozen_time(utcnow() + timedelta(minutes=29 + 31)):
        resp = browser.get("/")
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]
        page = browser.get("/login").get_data(as_text=True)
    assert "Your session timed out; please sign in again." in page
    assert sessions(app)[0].ended_at is not None
    with app.app_context():
        assert db.session.scalar(select(AuditEvent.id).where(
            AuditEvent.action == "session.expired"))


def test_absolute_timeout_even_when_active(app, people, browser):
    browser.login("staff.a", PW)
    start = utcnow()
    for minutes in range(20, 12 * 60, 20):  # active every 20 minutes
        with frozen_time(start + timedelta(minutes=minutes)):
            assert browser.get("/").status_code == 200, minutes
    with frozen_time(start + timedelta(hours=12, minutes=1)):
        assert browser.get("/").status_code == 302


def test_last_seen_is_written_at_most_once_a_minute(app, people, browser):
    browser.login("staff.a", PW)
    first = sessions(app)[0].last_seen_at
    browser.get("/")
    assert sessions(app)[0].last_seen_at == first
    with frozen_time(utcnow() + timedelta(minutes=2)):
        browser.get("/")
    assert sessions(app)[0].last_seen_at > first


def test_sign_out_everywhere(app, people, make_browser):
    one, two = make_browser(), make_browser()
    one.login("staff.a", PW)
    two.login("staff.a", PW)
    one.get("/account/settings")
    resp = one.post("/account/sessions/end")
    assert resp.status_code == 302
    assert one.get("/").status_code == 302 and two.get("/").status_code == 302
    assert all(r.ended_at for r in sessions(app))


def test_the_settings_page_lists_open_sessions(app, people, make_browser):
    one, two = make_browser(), make_browser()
    one.login("staff.a", PW)
    two.login("staff.a", PW)
    english(one)
    page = one.get("/account/settings").get_data(as_text=True)
    assert page.count("127.0.0.1") == 2 and "this browser" in page


def test_disabling_an_account_ends_its_sessions(app, people, make_browser):
    staff, admin = make_browser(), make_browser()
    staff.login("staff.a", PW)
    admin.login("admin", PW)
    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.username == "staff.a"))
    admin.get("/users")
    assert admin.post(f"/users/{uid}/disable").status_code == 302
    assert staff.get("/").status_code == 302
    assert all(r.ended_at for r in sessions(app))
    fresh = make_browser()
    fresh.login("staff.a", PW)
    assert fresh.get("/").status_code == 302  # a disabled account cannot sign in
    admin.get("/users")
    admin.post(f"/users/{uid}/enable")
    fresh.login("staff.a", PW)
    assert fresh.get("/").status_code == 200
    with app.app_context():
        got = set(db.session.scalars(select(AuditEvent.action)))
    assert {"user.disabled", "user.enabled"} <= got


def test_an_admin_cannot_disable_themselves(app, people, browser):
    browser.login("admin", PW)
    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.username == "admin"))
    browser.get("/users")
    browser.post(f"/users/{uid}/disable")
    assert browser.get("/").status_code == 200


def test_changing_the_password_ends_the_other_sessions(app, people, make_browser):
    here, there = make_browser(), make_browser()
    here.login("staff.a", PW)
    there.login("staff.a", PW)
    here.get("/account/password")
    resp = here.post("/account/password", {"current_password": PW,
                                           "password": "another-fine-secret-3",
                                           "confirm": "another-fine-secret-3"})
    assert resp.status_code == 302
    assert here.get("/").status_code == 200
    assert there.get("/").status_code == 302


def test_a_session_cookie_without_its_record_is_not_signed_in(app, people, browser):
    browser.login("staff.a", PW)
    with app.app_context():
        db.session.execute(db.delete(UserSession))
        db.session.commit()
    assert browser.get("/").status_code == 302


# --- headers --------------------------------------------------------------------------------

def test_security_headers_over_http(app, people, browser):
    resp = browser.get("/login")
    h = resp.headers
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
    assert "script-src" not in h["Content-Security-Policy"] or "'unsafe-inline'" not in h[
        "Content-Security-Policy"]
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "same-origin"
    assert h["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in h["Permissions-Policy"]
    assert "Strict-Transport-Security" not in h


def test_hsts_only_over_https(app, people):
    client = app.test_client()
    resp = client.get("/login", base_url="https://localhost")
    assert resp.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_signed_in_pages_are_not_cached(app, people, browser):
    assert "no-store" not in browser.get("/login").headers.get("Cache-Control", "")
    browser.login("staff.a", PW)
    assert browser.get("/").headers["Cache-Control"] == "no-store"


def test_session_cookie_flags(app, people, browser):
    browser.get("/login")
    browser.post("/login", {"username": "staff.a", "password": PW})
    cookie = browser.client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax"


def test_proxy_fix_trusts_the_configured_proxies(database, tmp_path_factory):
    from portal import create_app

    app = create_app({"TESTING": True, "SECRET_KEY": "x", "PROXY_FIX": 1,
                      "SQLALCHEMY_DATABASE_URI": database.url,
                      "FILE_STORAGE_DIR": str(tmp_path_factory.mktemp("f"))})
    resp = app.test_client().get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" in resp.headers
