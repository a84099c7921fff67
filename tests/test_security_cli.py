"""``flask accounts``: reset two-factor sign-in and set a password from the server."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.accounts.cli import accounts_cli
from portal.accounts.models import User
from portal.accounts.services import create_user
from portal.core.audit import AuditEvent
from portal.core.db import utcnow
from portal.core.permissions import Role
from portal.extensions import db

PW = "test-password-1"


@pytest.fixture
def admin(app):
    with app.test_request_context():
        create_user(username="admin", display_name="A", password=PW, role=Role.CS_ADMIN)
        db.session.commit()


def _user(app) -> User:
    with app.app_context():
        u = db.session.scalar(select(User).where(User.username == "admin"))
        db.session.expunge(u)
        return u


def test_reset_2fa(app, admin, browser):
    browser.login("admin", PW)  # enrols (a required role)
    assert _user(app).two_factor_enabled
    result = app.test_cli_runner().invoke(accounts_cli, ["reset-2fa", "Admin"])
    assert result.exit_code == 0, result.output
    assert not _user(app).two_factor_enabled
    assert browser.get("/").status_code == 302  # the session ended
    with app.app_context():
        ev = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "two_factor.reset"))
        assert ev.actor_name == "system"


def test_reset_2fa_of_someone_without_it_is_refused(app, admin):
    result = app.test_cli_runner().invoke(accounts_cli, ["reset-2fa", "admin"])
    assert result.exit_code != 0 and "no two-factor sign-in" in result.output


def test_set_password_applies_the_rules(app, admin):
    runner = app.test_cli_runner()
    weak = runner.invoke(accounts_cli, ["set-password", "admin", "--password", "short"])
    assert weak.exit_code != 0 and "at least 12 characters" in weak.output
    ok = runner.invoke(accounts_cli, ["set-password", "admin", "--password",
                                      "a-fresh-long-secret-9"])
    assert ok.exit_code == 0, ok.output
    with app.app_context():
        u = db.session.scalar(select(User).where(User.username == "admin"))
        assert u.check_password("a-fresh-long-secret-9") and u.password_changed_at <= utcnow()


def test_unknown_user(app, admin):
    result = app.test_cli_runner().invoke(accounts_cli, ["reset-2fa", "ghost"])
    assert result.exit_code != 0 and "no user ghost" in result.output
