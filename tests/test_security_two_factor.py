"""Two-factor sign-in (TOTP): required for CS, HR and auditors, optional for party staff;
the sign-in contract the browser tests rely on; recovery codes; no code accepted twice."""
from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from portal.accounts.models import RecoveryCode, User
from portal.accounts.services import create_user
from portal.core.audit import AuditEvent
from portal.core.db import utcnow
from portal.core.permissions import Role
from portal.core.timeutil import frozen_time
from portal.extensions import db
from portal.parties.models import PartyKind
from portal.parties.services import create_party
from tests.conftest import TOTP_SECRET_RE
from tests.helpers import english, row_counts

PW = "test-password-1"
CODE_INPUT = re.compile(r'<input[^>]*name="code"')
PRIMARY = re.compile(r'<button[^>]*class="[^"]*\bprimary\b')
RECOVERY = re.compile(r'class="recovery-code">([a-z0-9-]+)<')


@pytest.fixture
def people(app):
    with app.test_request_context():
        party = create_party(code="C001", name_zh="顺丰速运", name_en="SF", kind=PartyKind.CARRIER)
        create_user(username="officer", display_name="O", password=PW, role=Role.CS_OFFICER)
        create_user(username="admin", display_name="A", password=PW, role=Role.CS_ADMIN)
        create_user(username="staff.a", display_name="S", password=PW, role=Role.PARTY_STAFF,
                    party=party)
        db.session.commit()


def password_step(browser, username):
    browser.get("/login")
    return browser.post("/login", {"username": username, "password": PW})


def second_step(browser, code):
    browser.get("/login/2fa")  # the sign-in started a new session: a new CSRF token
    return browser.post("/login/2fa", {"code": code})


def enrol(browser, username="officer"):
    """Password, set-up page, first code: returns (secret, recovery codes, final response)."""
    resp = password_step(browser, username)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account/2fa/setup")
    page = browser.get("/account/2fa/setup").get_data(as_text=True)
    secret = TOTP_SECRET_RE.search(page).group(1)
    resp = browser.post("/account/2fa/setup", {"code": pyotp.TOTP(secret).at(utcnow())})
    return secret, RECOVERY.findall(resp.get_data(as_text=True)), resp


def user(app, username) -> User:
    with app.app_context():
        u = db.session.scalar(select(User).where(User.username == username))
        db.session.expunge(u)
        return u


def actions(app) -> list[str]:
    with app.app_context():
        return db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()


def test_required_role_is_sent_to_set_up_after_the_password(app, people, browser):
    resp = password_step(browser, "officer")
    assert resp.headers["Location"].endswith("/account/2fa/setup")
    assert browser.get("/").status_code == 302  # not signed in yet
    page = browser.get("/account/2fa/setup").get_data(as_text=True)
    secret = TOTP_SECRET_RE.search(page).group(1)
    assert len(secret) == 32 and page.count(secret) >= 2  # the attribute and the text
    assert 'src="data:image/svg+xml;base64,' in page
    assert CODE_INPUT.search(page) and PRIMARY.search(page)
    # the same key until confirmed (a reload does not change it)
    assert secret in browser.get("/account/2fa/setup").get_data(as_text=True)


def test_enrolment_signs_in_and_shows_ten_recovery_codes(app, people, browser):
    secret, codes, resp = enrol(browser)
    assert resp.status_code == 200
    assert len(codes) == 10 and len(set(codes)) == 10
    assert 'href="/"' in resp.get_data(as_text=True)  # the continue link
    assert browser.get("/").status_code == 200
    u = user(app, "officer")
    assert u.totp_secret == secret and u.two_factor_enabled
    with app.app_context():
        stored = db.session.scalars(select(RecoveryCode.code_hash)).all()
    assert len(stored) == 10 and not set(stored) & {c.replace("-", "") for c in codes}
    assert {"two_factor.enrolled", "login.succeeded"} <= set(actions(app))


def test_a_wrong_code_at_enrolment_is_refused(app, people, browser):
    password_step(browser, "officer")
    browser.get("/account/2fa/setup")
    before = row_counts(app)
    resp = browser.post("/account/2fa/setup", {"code": "000000"})
    assert resp.status_code == 400 and CODE_INPUT.search(resp.get_data(as_text=True))
    assert row_counts(app) == before
    assert browser.get("/").status_code == 302


def test_pending_sign_in_reaches_only_the_two_factor_pages(app, people, browser):
    password_step(browser, "officer")
    for url in ("/", "/account/settings", "/users", "/cases"):
        resp = browser.get(url)
        assert resp.status_code == 302 and resp.headers["Location"].endswith(
            "/account/2fa/setup"), url
    assert browser.get("/static/css/portal.css").status_code == 200
    browser.get("/account/2fa/setup")
    assert browser.post("/logout").status_code == 302
    assert browser.get("/account/2fa/setup").headers["Location"].endswith("/login")


def test_enrolled_user_enters_a_code_after_the_password(app, people, make_browser):
    secret, _codes, _resp = enrol(make_browser())
    b = make_browser()
    resp = password_step(b, "officer")
    assert resp.headers["Location"].endswith("/login/2fa")
    page = b.get("/login/2fa").get_data(as_text=True)
    assert CODE_INPUT.search(page) and PRIMARY.search(page)
    assert b.get("/").status_code == 302
    later = utcnow() + timedelta(seconds=30)  # the next step (the enrolment used this one)
    with frozen_time(later):
        resp = second_step(b, pyotp.TOTP(secret).at(later))
        assert resp.status_code == 302
        assert b.get("/").status_code == 200
    assert "two_factor.succeeded" in actions(app)


def test_a_code_is_not_accepted_twice(app, people, make_browser):
    secret, _codes, _resp = enrol(make_browser())
    later = utcnow() + timedelta(seconds=60)
    code = pyotp.TOTP(secret).at(later)
    with frozen_time(later):
        first = make_browser()
        password_step(first, "officer")
        assert second_step(first, code).status_code == 302
        second = make_browser()
        english(second)
        password_step(second, "officer")
        resp = second_step(second, code)
        assert resp.status_code == 400
        assert "The code is wrong or was already used." in resp.get_data(as_text=True)
        assert second.get("/").status_code == 302
    assert "two_factor.failed" in actions(app)


def test_a_code_from_an_earlier_step_is_refused(app, people, make_browser):
    secret, _codes, _resp = enrol(make_browser())
    later = utcnow() + timedelta(seconds=120)
    with frozen_time(later):
        b = make_browser()
        password_step(b, "officer")
        old = pyotp.TOTP(secret).at(later - timedelta(seconds=90))
        assert second_step(b, old).status_code == 400


def test_recovery_codes_work_once(app, people, make_browser):
    _secret, codes, _resp = enrol(make_browser())
    b = make_browser()
    english(b)
    password_step(b, "officer")
    resp = second_step(b, codes[3].upper())
    assert resp.status_code == 302
    home = b.get("/")
    assert home.status_code == 200
    assert "You signed in with a recovery code; 9 are left." in home.get_data(as_text=True)
    again = make_browser()
    password_step(again, "officer")
    assert second_step(again, codes[3]).status_code == 400
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(RecoveryCode).where(
            RecoveryCode.used_at.is_not(None))) == 1


def test_two_factor_failures_count_towards_the_lock(app, people, make_browser):
    enrol(make_browser())
    b = make_browser()
    english(b)
    password_step(b, "officer")
    for _i in range(5):
        second_step(b, "123456")
    resp = second_step(b, "654321")
    assert "Too many failed sign-ins" in resp.get_data(as_text=True)


def test_party_staff_sign_in_without_a_code_and_may_turn_it_on(app, people, browser):
    resp = password_step(browser, "staff.a")
    assert resp.headers["Location"] == "/"
    page = browser.get("/account/2fa/setup").get_data(as_text=True)
    secret = TOTP_SECRET_RE.search(page).group(1)
    # re-authentication: the current password is needed
    english(browser)
    resp = browser.post("/account/2fa/setup", {"current_password": "wrong-password-1",
                                               "code": pyotp.TOTP(secret).at(utcnow())})
    assert resp.status_code == 400 and "The current password is wrong." in resp.get_data(
        as_text=True)
    assert not user(app, "staff.a").two_factor_enabled
    resp = browser.post("/account/2fa/setup", {"current_password": PW,
                                               "code": pyotp.TOTP(secret).at(utcnow())})
    assert len(RECOVERY.findall(resp.get_data(as_text=True))) == 10
    assert user(app, "staff.a").two_factor_enabled


def test_party_staff_turn_it_off_with_password_and_code(app, people, browser):
    now = utcnow()
    with frozen_time(now):  # one time step for the set-up and the first try
        password_step(browser, "staff.a")
        secret = TOTP_SECRET_RE.search(browser.get("/account/2fa/setup").get_data(
            as_text=True)).group(1)
        browser.post("/account/2fa/setup", {"current_password": PW,
                                            "code": pyotp.TOTP(secret).at(now)})
        browser.get("/account/settings")
        # the code of the step just used does not count again
        browser.post("/account/2fa/disable", {"current_password": PW,
                                              "current_code": pyotp.TOTP(secret).at(now)})
    assert user(app, "staff.a").two_factor_enabled
    later = now + timedelta(seconds=30)
    with frozen_time(later):
        browser.post("/account/2fa/disable", {"current_password": PW,
                                              "current_code": pyotp.TOTP(secret).at(later)})
    assert not user(app, "staff.a").two_factor_enabled
    assert "two_factor.disabled" in actions(app)


def test_required_roles_cannot_turn_it_off(app, people, browser):
    _secret, codes, _resp = enrol(browser)
    browser.get("/account/settings")
    browser.post("/account/2fa/disable", {"current_password": PW, "current_code": codes[0]})
    assert user(app, "officer").two_factor_enabled


def test_new_recovery_codes_need_the_password_and_a_code(app, people, browser):
    _secret, codes, _resp = enrol(browser)
    browser.get("/account/settings")
    resp = browser.post("/account/2fa/recovery-codes", {"current_password": PW,
                                                        "current_code": "000000"})
    assert resp.status_code == 302
    resp = browser.post("/account/2fa/recovery-codes", {"current_password": PW,
                                                        "current_code": codes[0]})
    fresh = RECOVERY.findall(resp.get_data(as_text=True))
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    assert "two_factor.recovery_codes_renewed" in actions(app)


def test_admin_resets_a_users_two_factor(app, people, make_browser):
    officer = make_browser()
    enrol(officer)
    admin = make_browser()
    admin.login("admin", PW)
    officer_id = user(app, "officer").id
    admin.get("/users")
    assert admin.post(f"/users/{officer_id}/2fa/reset").status_code == 302
    u = user(app, "officer")
    assert not u.two_factor_enabled and u.totp_secret is None
    assert officer.get("/").status_code == 302  # their sessions ended
    with app.app_context():
        ev = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "two_factor.reset"))
        assert ev.actor_name == "admin"
    # next sign-in: set up again
    assert password_step(make_browser(), "officer").headers["Location"].endswith(
        "/account/2fa/setup")


def test_the_browser_helper_signs_the_same_person_in_twice(app, people, make_browser):
    first, second = make_browser(), make_browser()
    first.login("officer", PW)
    second.login("officer", PW)
    assert first.get("/").status_code == 200 and second.get("/").status_code == 200


def test_demo_code_command(app, people):
    from portal.demo.cli import demo_cli
    from portal.demo.data import DEMO_TOTP_SECRET

    runner = app.test_cli_runner()
    refused = runner.invoke(demo_cli, ["code", "officer"])
    assert refused.exit_code != 0 and "not a demo account" in refused.output
    with app.app_context():
        u = db.session.scalar(select(User).where(User.username == "officer"))
        u.totp_secret, u.totp_enabled_at = DEMO_TOTP_SECRET, utcnow()
        db.session.commit()
    result = runner.invoke(demo_cli, ["code", "officer"])
    assert result.exit_code == 0
    assert result.output.strip() == pyotp.TOTP(DEMO_TOTP_SECRET).now()
