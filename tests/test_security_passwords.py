"""Passwords: argon2id hashes, old hashes re-hashed at sign-in, the rules of a new password,
the change-password page (OWASP ASVS 5.0 chapter 6)."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from portal.accounts.models import User
from portal.accounts.passwords import check_password_rules, hash_password, verify_password
from portal.accounts.services import create_user
from portal.core.errors import ServiceError
from portal.core.permissions import Role
from portal.extensions import db
from portal.parties.models import PartyKind
from portal.parties.services import create_party
from tests.helpers import english, row_counts

PW = "test-password-1"


@pytest.fixture
def staff(app):
    with app.test_request_context():
        party = create_party(code="C001", name_zh="顺丰速运", name_en="SF", kind=PartyKind.CARRIER)
        user = create_user(username="staff.a", display_name="A", password=PW,
                           role=Role.PARTY_STAFF, party=party)
        create_user(username="admin", display_name="Admin", password=PW, role=Role.CS_ADMIN)
        db.session.commit()
        return user.id


def _hash_of(app, username):
    with app.app_context():
        return db.session.scalar(select(User.password_hash).where(User.username == username))


def test_new_hashes_are_argon2id_in_production(app, ctx):
    app.config["PASSWORD_HASH_METHOD"] = "argon2id"
    try:
        stored = hash_password("a long enough secret")
    finally:
        app.config["PASSWORD_HASH_METHOD"] = "pbkdf2:sha256:1000"
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "a long enough secret")
    assert not verify_password(stored, "another long secret")


def test_the_tests_fast_method_is_honoured(app, ctx):
    assert hash_password("a long enough secret").startswith("pbkdf2:sha256:1000$")


@pytest.mark.parametrize("old", ["scrypt", "pbkdf2:sha256:600000"])
def test_an_old_hash_is_rehashed_at_sign_in(app, staff, browser, old):
    with app.app_context():
        user = db.session.get(User, staff)
        user.password_hash = generate_password_hash(PW, method=old)
        db.session.commit()
    browser.login("staff.a", PW)
    assert browser.get("/").status_code == 200
    assert _hash_of(app, "staff.a").startswith("pbkdf2:sha256:1000$")


def test_an_argon2_hash_verifies_and_moves_to_the_configured_method(app, staff, browser):
    from argon2 import PasswordHasher

    with app.app_context():
        db.session.get(User, staff).password_hash = PasswordHasher().hash(PW)
        db.session.commit()
    browser.login("staff.a", PW)
    assert browser.get("/").status_code == 200
    assert _hash_of(app, "staff.a").startswith("pbkdf2:sha256:1000$")


@pytest.mark.parametrize("password, message", [
    ("short-pw-1", "at least 12 characters"),
    ("x" * 129, "at most 128 characters"),
    ("qwertyuiop123", "most common passwords"),
    ("1234567890123", "too easy to guess"),
    ("aaaaaaaaaaaaaa", "too easy to guess"),
    ("my-name-is-new.user", "must not contain the username"),
    ("NEW.USER-and-more", "must not contain the username"),
])
def test_weak_passwords_are_refused_with_the_reason(app, ctx, password, message):
    from flask_babel import force_locale

    with force_locale("en"), pytest.raises(ServiceError) as err:
        check_password_rules(password, "new.user")
    assert message in err.value.message
    assert err.value.field == "password"


def test_a_good_password_passes(app, ctx):
    check_password_rules("correct horse battery", "new.user")


def test_admin_cannot_create_a_user_with_a_weak_password(app, staff, make_browser):
    admin = make_browser()
    admin.login("admin", PW)
    english(admin)
    before = row_counts(app)
    resp = admin.post("/users/new", {"username": "new.one", "display_name": "New",
                                     "role": "cs_officer", "party_id": 0,
                                     "password": "password1234"})
    assert "most common passwords" in resp.get_data(as_text=True)
    assert row_counts(app) == before


def test_the_service_refuses_a_weak_password(app, ctx):
    with pytest.raises(ServiceError):
        create_user(username="someone", display_name="S", password="someone-12345",
                    role=Role.CS_OFFICER)


def _change(browser, **fields):
    data = {"current_password": PW, "password": "a-brand-new-secret-7",
            "confirm": "a-brand-new-secret-7", **fields}
    browser.get("/account/password")
    return browser.post("/account/password", data)


def test_change_password(app, staff, browser):
    browser.login("staff.a", PW)
    english(browser)
    resp = _change(browser)
    assert resp.status_code == 302
    with app.app_context():
        user = db.session.get(User, staff)
        assert user.check_password("a-brand-new-secret-7")
        from portal.core.audit import AuditEvent

        assert db.session.scalar(select(AuditEvent.action).where(
            AuditEvent.action == "user.password_changed"))


@pytest.mark.parametrize("fields, message", [
    ({"current_password": "not-my-password"}, "The current password is wrong."),
    ({"confirm": "something-else-entirely"}, "The two new passwords differ."),
    ({"password": "short", "confirm": "short"}, "at least 12 characters"),
    ({"password": "staff.a-is-me!", "confirm": "staff.a-is-me!"}, "must not contain"),
    ({"password": PW, "confirm": PW}, "must differ from the current one"),
])
def test_change_password_refusals_leave_the_password(app, staff, browser, fields, message):
    browser.login("staff.a", PW)
    english(browser)
    before = row_counts(app)
    resp = _change(browser, **fields)
    assert resp.status_code == 400
    assert message in resp.get_data(as_text=True)
    if message == "The current password is wrong.":   # kept: a failed sign-in, audited
        before["login_attempts"] += 1
        before["audit_events"] += 1
    assert row_counts(app) == before
    assert _hash_of(app, "staff.a") and verify_password(_hash_of(app, "staff.a"), PW)


def test_change_password_page_in_chinese(app, staff, browser):
    browser.login("staff.a", PW)
    resp = _change(browser, current_password="not-my-password")
    assert resp.status_code == 400
    text = resp.get_data(as_text=True)
    assert "The current password is wrong." in text or "当前密码" in text
