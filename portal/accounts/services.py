"""Operations on user accounts."""
from __future__ import annotations

import re

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from portal.accounts.models import User
from portal.core.audit import record
from portal.core.errors import ServiceError
from portal.core.permissions import PARTY_BOUND_ROLES, Role
from portal.extensions import db
from portal.parties.models import Party, PartyKind

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def create_user(*, username: str, display_name: str, password: str, role: Role | str,
                party: Party | None = None, email: str = "", employee_no: str = "",
                locale: str = "zh_CN") -> User:
    username = (username or "").strip().lower()
    if not USERNAME_RE.match(username):
        raise ServiceError(_("Username must be 3-64 lower-case letters, digits, '.', '-' or "
                             "'_'."), "username")
    if db.session.scalar(select(User.id).where(func.lower(User.username) == username)):
        raise ServiceError(_("The username %(name)s is taken.", name=username), "username")
    if not (display_name or "").strip():
        raise ServiceError(_("Name is required."), "display_name")
    if len(password or "") < MIN_PASSWORD:
        raise ServiceError(_("Password must be at least %(n)d characters.", n=MIN_PASSWORD),
                           "password")
    try:
        role = Role(role)
    except ValueError:
        raise ServiceError(_("Unknown role: %(role)s", role=role), "role") from None
    _check_party_for_role(role, party)
    user = User(username=username, display_name=display_name.strip(), email=email.strip(),
                employee_no=employee_no.strip(), password_hash=hash_password(password),
                role=role, party=party, party_id=party.id if party else None, locale=locale)
    db.session.add(user)
    record("user.created", user, after=user.snapshot())
    if party is not None:
        from portal.standards.campaigns import assign_open_tasks

        assign_open_tasks(user)  # new staff inherit the open reading tasks of their party
    from portal.training.assignments import inherit_assignments

    inherit_assignments(user)  # and the courses assigned to people like them
    return user


def _check_party_for_role(role: Role, party: Party | None) -> None:
    if role in PARTY_BOUND_ROLES and party is None:
        raise ServiceError(_("This role belongs to a party: choose the party."), "party_id")
    if role is Role.DEPARTMENT_MANAGER and party.kind is not PartyKind.DEPARTMENT:
        raise ServiceError(_("A department manager must belong to an internal department."),
                           "party_id")
    if role in (Role.PARTY_STAFF, Role.PARTY_MANAGER) and party.kind is PartyKind.DEPARTMENT:
        raise ServiceError(_("Party staff belong to a carrier, merchant or warehouse; use "
                             "department manager for internal departments."), "party_id")
    if role not in PARTY_BOUND_ROLES and party is not None:
        raise ServiceError(_("CS, HR and auditor accounts do not belong to a party."),
                           "party_id")


def active_staff(party_id: int) -> list[User]:
    """A party's active people, by name (for its manager's team views)."""
    return db.session.scalars(select(User).where(User.party_id == party_id,
                                                 User.active.is_(True))
                              .order_by(User.display_name)).all()


def authenticate(username: str, password: str) -> User | None:
    user = db.session.scalar(
        select(User).where(func.lower(User.username) == (username or "").strip().lower()))
    if user is None or not user.active or not user.check_password(password or ""):
        return None
    return user


def set_locale(user: User, locale: str) -> None:
    if user.locale == locale:
        return
    before = {"locale": user.locale}
    user.locale = locale
    record("user.locale_changed", user, before=before, after={"locale": locale})


def set_email_locale(user: User, locale: str | None) -> None:
    """The language of ``user``'s emails (None: the language of their pages)."""
    if locale not in (None, "zh_CN", "en"):
        raise ValueError(f"not a language of the portal: {locale!r}")
    if user.email_locale == locale:
        return
    before = {"email_locale": user.email_locale}
    user.email_locale = locale
    record("user.email_locale_changed", user, before=before, after={"email_locale": locale})
