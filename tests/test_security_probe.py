"""The gaps an outside probe found in sign-in and redirects (issue 20): a ``next`` that leaves
the portal, the current-password check that was never throttled, cookies without Secure or
the __Host- prefix over HTTPS, and throttling that let anyone lock anyone out."""
from __future__ import annotations

import html
import re
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
TOO_MANY = "Too many failed sign-ins"


@pytest.fixture
def people(app):
    with app.test_request_context():
        party = create_party(code="C001", name_zh="顺丰速运", name_en="SF", kind=PartyKind.CARRIER)
        for name in ("staff.a", "staff.b"):
            create_user(username=name, display_name=name, password=PW, role=Role.PARTY_STAFF,
                        party=party)
        db.session.commit()


def attempt(browser, username, password, ip="127.0.0.1"):
    browser.get("/login")
    return browser.post("/login", {"username": username, "password": password},
                        environ_base={"REMOTE_ADDR": ip})


def actions(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


# --- 2. redirects ---------------------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "/\t/evil.example?", "/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example",
    "//evil.example", "/\\evil.example", "\\\\evil.example", "https://evil.example/",
    "http:/evil.example", "javascript:alert(1)", "evil.example", "/cases\r\nSet-Cookie: x=1",
    "/\x00/evil.example", " //evil.example", "/%0a", ""])
def test_the_language_switch_never_leaves_the_portal(app, people, browser, target):
    resp = browser.post("/lang", {"lang": "en", "next": target})
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert location in ("/", "/%0a"), location   # "/%0a" is a path on this portal (a 404)


def test_the_404_page_of_a_tab_path_carries_no_way_out(app, people, browser):
    """As the probe did it: the 404 page of /%09/evil.example puts the path into the language
    form; posting that form lands on the home page."""
    page = browser.get("/%09/evil.example")
    assert page.status_code == 404
    carried = re.search(r'name="next" value="([^"]*)"', page.get_data(as_text=True)).group(1)
    resp = browser.post("/lang", {"lang": "zh_CN", "next": html.unescape(carried)})
    assert resp.status_code == 302 and resp.headers["Location"] == "/"


def test_a_path_on_the_portal_is_kept(app, people, browser):
    resp = browser.post("/lang", {"lang": "en", "next": "/cases?status=open&q=顺丰"})
    assert resp.headers["Location"].startswith("/cases?status=open")


def test_sign_in_next_is_checked_the_same_way(app, people, browser):
    browser.get("/login")
    for bad in ("/\t/evil.example", "/\\evil.example", "//evil.example"):
        b = type(browser)(app)
        b.get("/login")
        resp = b.post("/login?next=" + bad.replace("\t", "%09"),
                      {"username": "staff.a", "password": PW})
        assert resp.headers["Location"] == "/", bad


# --- 3. the current password is throttled with the sign-in ----------------------------------

def change(browser, current):
    return browser.post("/account/password", {"current_password": current,
                                              "password": "another-fine-secret-3",
                                              "confirm": "another-fine-secret-3"})


def test_wrong_current_passwords_end_the_session_at_the_limit(app, people, browser):
    english(browser)
    browser.login("staff.a", PW)
    browser.get("/account/password")
    for _i in range(4):
        resp = change(browser, "wrong-password-x")
        assert resp.status_code == 400
        assert "The current password is wrong." in resp.get_data(as_text=True)
    resp = change(browser, "wrong-password-x")       # the fifth
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    page = browser.get("/login").get_data(as_text=True)
    assert "you are signed out. Sign in again in 1 minute." in page
    assert browser.get("/").status_code == 302       # signed out
    assert change(browser, PW).status_code == 302     # ... so the right one changes nothing
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "staff.a"))
        assert user.check_password(PW)
        assert all(s.ended_at is not None for s in db.session.scalars(
            select(UserSession).where(UserSession.user_id == user.id)))
    failed = actions(app, "login.failed")
    assert [e.after_dict()["reason"] for e in failed] == ["current_password"] * 5
    assert len(actions(app, "login.locked")) == 1
    assert len(actions(app, "session.ended_after_failures")) == 1
    # they count as failed sign-ins: this address waits before signing in again
    assert TOO_MANY in attempt(browser, "staff.a", PW).get_data(as_text=True)


def test_a_right_current_password_before_the_limit_still_works(app, people, browser):
    browser.login("staff.a", PW)
    browser.get("/account/password")
    for _i in range(3):
        change(browser, "wrong-password-x")
    assert change(browser, PW).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(User).where(User.username == "staff.a")).check_password(
            "another-fine-secret-3")


def test_the_current_password_counts_with_sign_in_failures(app, people, make_browser):
    """Three wrong sign-ins, then two wrong current passwords: five failures of the user from
    this address, the limit."""
    for _i in range(3):
        attempt(make_browser(), "staff.a", "wrong-password-x")
    b = make_browser()
    b.login("staff.a", PW)           # a success starts the count again
    for _i in range(3):
        attempt(make_browser(), "staff.a", "wrong-password-x")
    b.get("/account/password")
    assert change(b, "wrong-password-x").status_code == 400
    assert change(b, "wrong-password-x").status_code == 302      # the fifth since the success
    assert b.get("/").status_code == 302


@pytest.mark.parametrize("url", ["/account/2fa/disable", "/account/2fa/recovery-codes",
                                 "/account/2fa/setup"])
def test_the_two_factor_settings_count_wrong_passwords_too(app, people, browser, url):
    import pyotp

    with app.app_context():      # staff.a signs in with a code from an app
        user = db.session.scalar(select(User).where(User.username == "staff.a"))
        user.totp_secret, user.totp_enabled_at = pyotp.random_base32(), utcnow()
        db.session.commit()
    browser.login("staff.a", PW)
    browser.get("/account/settings")
    for _i in range(5):
        resp = browser.post(url, {"current_password": "wrong-password-x",
                                  "current_code": "123456", "code": "123456"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    assert browser.get("/").status_code == 302
    assert len(actions(app, "login.failed")) == 5


# --- 5. cookies -----------------------------------------------------------------------------

def _app(database, tmp_path_factory, **config):
    from portal import create_app

    return create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": database.url,
                       "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
                       "FILE_STORAGE_DIR": str(tmp_path_factory.mktemp("f")), **config})


def test_https_base_url_makes_host_prefixed_secure_cookies(database, tmp_path_factory, people):
    app = _app(database, tmp_path_factory, PORTAL_BASE_URL="https://portal.example.com")
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-session"
    assert app.config["REMEMBER_COOKIE_NAME"] == "__Host-remember_token"
    client = app.test_client()
    client.get("/login", base_url="https://portal.example.com")
    page = client.get("/login", base_url="https://portal.example.com").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    resp = client.post("/login", base_url="https://portal.example.com",
                       data={"username": "staff.a", "password": PW, "csrf_token": token},
                       headers={"Referer": "https://portal.example.com/login"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    cookies = resp.headers.getlist("Set-Cookie")
    session_cookie = next(c for c in cookies if c.startswith("__Host-session="))
    device = next(c for c in cookies if c.startswith("__Host-portal_device="))
    for c in (session_cookie, device):
        assert "Secure" in c and "Path=/" in c and "Domain" not in c and "HttpOnly" in c
    assert client.get("/", base_url="https://portal.example.com").status_code == 200


def test_plain_http_development_keeps_plain_cookies(database, tmp_path_factory):
    app = _app(database, tmp_path_factory, PORTAL_BASE_URL="http://127.0.0.1:5000")
    assert not app.config["SESSION_COOKIE_SECURE"]
    assert app.config["SESSION_COOKIE_NAME"] == "session"


def test_an_explicit_setting_wins(database, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "0")
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.example.com")
    app = _app(database, tmp_path_factory, PORTAL_BASE_URL="https://portal.example.com")
    assert not app.config["SESSION_COOKIE_SECURE"] and app.config["SESSION_COOKIE_NAME"] == "session"
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    monkeypatch.delenv("PORTAL_BASE_URL")
    app = _app(database, tmp_path_factory)
    assert app.config["SESSION_COOKIE_SECURE"]
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-session"


# --- 6. nobody can lock anybody out ---------------------------------------------------------

def test_five_failures_lock_that_address_not_the_account(app, people, make_browser):
    b = make_browser()
    english(b)
    for _i in range(5):
        attempt(b, "staff.a", "wrong-password-x", ip="203.0.113.9")
    assert TOO_MANY in attempt(b, "staff.a", PW, ip="203.0.113.9").get_data(as_text=True)
    # the owner, from the office, is not locked out by someone guessing from elsewhere
    assert attempt(make_browser(), "staff.a", PW, ip="198.51.100.7").status_code == 302


def test_guesses_from_many_addresses_slow_strangers_but_not_the_owner(app, people,
                                                                     make_browser):
    owner = make_browser()
    owner.login("staff.a", PW)          # this browser signed in before: it has a device cookie
    owner.logout()
    for i in range(12):                 # a botnet: two guesses each from six addresses
        attempt(make_browser(), "staff.a", "wrong-password-x", ip=f"203.0.113.{i // 2 + 1}")
    stranger = make_browser()
    english(stranger)
    assert TOO_MANY in attempt(stranger, "staff.a", PW, ip="198.51.100.7").get_data(
        as_text=True)                   # a new browser waits a minute ...
    # ... the owner's browser signs in at once, from the same address
    assert attempt(owner, "staff.a", PW, ip="198.51.100.7").status_code == 302
    owner.logout()
    for i in range(12):
        attempt(make_browser(), "staff.a", "wrong-password-x", ip=f"203.0.113.{i // 2 + 1}")
    with frozen_time(utcnow() + timedelta(seconds=61)):
        assert attempt(stranger, "staff.a", PW, ip="198.51.100.7").status_code == 302


def test_twenty_failures_from_one_address_slow_it_but_lock_nobody_out(app, people,
                                                                     make_browser):
    colleague = make_browser()
    colleague.login("staff.b", PW)      # a courier who signed in here before
    colleague.logout()
    spray = make_browser()
    english(spray)
    for i in range(20):
        attempt(spray, f"guess{i}", "wrong-password-x")
    told = attempt(spray, "staff.a", PW).get_data(as_text=True)
    assert "Too many failed sign-ins from this network. Try again in 1 minute;" in told
    assert attempt(colleague, "staff.b", PW).status_code == 302      # behind the same router
    with frozen_time(utcnow() + timedelta(seconds=61)):
        assert attempt(make_browser(), "staff.a", PW).status_code == 302
    assert attempt(make_browser(), "staff.a", PW, ip="10.9.8.7").status_code == 302


def test_a_forged_device_cookie_is_ignored(app, people, make_browser):
    for i in range(12):
        attempt(make_browser(), "staff.a", "wrong-password-x", ip=f"203.0.113.{i + 1}")
    b = make_browser()
    english(b)
    b.client.set_cookie("portal_device", "not-signed")
    assert TOO_MANY in attempt(b, "staff.a", PW, ip="198.51.100.7").get_data(as_text=True)


def test_a_stale_language_switch_goes_back_to_the_page(app, people, browser):
    """The session ended while the page was open: the switch's token is gone."""
    resp = browser.post("/lang", {"lang": "en", "next": "/cases"}, csrf=False)
    assert resp.status_code == 302 and resp.headers["Location"] == "/cases"
    resp = browser.post("/lang", {"lang": "en", "next": "//evil.example"}, csrf=False)
    assert resp.headers["Location"] == "/"
    assert browser.post("/logout", csrf=False).status_code == 400     # other forms: refused
