"""Operations on user accounts."""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.accounts import security
from portal.accounts.models import User
from portal.accounts.passwords import (
    burn_password_check,
    check_password_rules,
    hash_password,
    needs_rehash,
)
from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.permissions import PARTY_BOUND_ROLES, Role
from portal.extensions import db
from portal.parties.models import Party, PartyKind

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")

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
    check_password_rules(password, username)
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
    """The active user with this username and password, else None (no throttling or audit:
    the sign-in page uses ``sign_in_password``)."""
    user = _find(username)
    if user is None or not user.active or not user.check_password(password or ""):
        return None
    return user


def _find(username: str) -> User | None:
    return db.session.scalar(
        select(User).where(func.lower(User.username) == (username or "").strip().lower()))


@dataclass
class PasswordStep:
    """What the password step of the sign-in decided."""

    user: User | None = None
    wait: security.Throttle | None = None   # throttled: the password was not looked at
    second_factor: str | None = None  # "code" (enrolled) or "enrol" (required, not enrolled)


def sign_in_password(username: str, password: str) -> PasswordStep:
    """Check a username and password, throttled per username and per address.

    A wrong password, an unknown or disabled account all count as the same failure. A right
    password re-hashes an old hash with the configured method; the sign-in is complete only
    when no second factor is needed (then ``finish_sign_in``)."""
    ip = security.client_ip()
    wait = security.throttle(username, ip)
    if wait.seconds:
        security.record_throttled(username, wait.seconds)
        return PasswordStep(wait=wait)
    user = _find(username)
    if user is None:
        burn_password_check(password or "")  # as long as for a real account
    if user is None or not user.active or not user.check_password(password or ""):
        security.record_failure(username, ip, "password")
        return PasswordStep()
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    if user.two_factor_enabled:
        return PasswordStep(user, second_factor="code")
    if security.two_factor_required(user):
        return PasswordStep(user, second_factor="enrol")
    return PasswordStep(user)


def sign_in_second_factor(user: User, code: str) -> PasswordStep:
    """The second step: a TOTP code or a recovery code, throttled like the password."""
    ip = security.client_ip()
    wait = security.throttle(user.username, ip)
    if wait.seconds:
        security.record_throttled(user.username, wait.seconds)
        return PasswordStep(wait=wait)
    method = security.check_second_factor(user, code)
    if method is None:
        security.record_failure(user.username, ip, "second_factor")
        record("two_factor.failed", user, after={"username": user.username},
               actor=security.NOBODY)
        return PasswordStep()
    record("two_factor.succeeded", user, after={"method": method}, actor=user)
    return PasswordStep(user, second_factor=method)


def finish_sign_in(user: User, method: str = "password"):
    """Sign-in complete: the attempt counter starts again, a server-side session opens."""
    security.note_attempt(user.username, security.client_ip(), succeeded=True)
    row = security.start_session(user)
    record("login.succeeded", user, after={"method": method}, actor=user)
    return row


def sign_out(user: User, sid: str | None) -> None:
    security.end_session(sid)
    record("logout", user, actor=user)


def sign_out_everywhere(user: User) -> int:
    n = security.end_sessions(user)
    record("user.sessions_ended", user, after={"sessions": n}, actor=user)
    return n


def _reauthenticate(user: User, password: str, code: str | None) -> None:
    """The current password (and a current code when two-factor sign-in is on) confirm a
    change to how ``user`` signs in; a wrong one counts as a failed sign-in (throttled with
    them: at the limit the session asking ends)."""
    refused = security.reauth_throttled(user)
    if refused is not None:
        raise refused
    if not user.check_password(password or ""):
        raise security.reauth_refusal(user, "current_password",
                                      _("The current password is wrong."), "current_password")
    if user.two_factor_enabled and security.check_second_factor(user, code or "") is None:
        raise security.reauth_refusal(
            user, "second_factor",
            _("The code from your authenticator app is wrong or was already used."), "code")


def change_password(user: User, *, current: str, new: str, confirm: str,
                    code: str | None = None, keep_session: str | None = None) -> None:
    """Set a new password; every other session of ``user`` ends."""
    _reauthenticate(user, current, code)
    if new != confirm:
        raise ServiceError(_("The two new passwords differ."), "confirm")
    check_password_rules(new, user.username)
    if user.check_password(new):
        raise ServiceError(_("The new password must differ from the current one."), "password")
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    ended = security.end_sessions(user, keep=keep_session)
    record("user.password_changed", user, after={"other_sessions_ended": ended})


def enable_two_factor(user: User, secret: str, code: str, *, password: str | None = None,
                      current_code: str | None = None, reauthenticate: bool = True
                      ) -> list[str]:
    """Turn on (or move to a new app) two-factor sign-in with ``secret`` once ``code`` proves
    the app has it; the ten new recovery codes (shown once)."""
    if reauthenticate:
        _reauthenticate(user, password or "", current_code)
    step = security.matching_step(secret, code)
    if step is None or (user.totp_secret == secret and user.totp_last_step is not None
                        and step <= user.totp_last_step):
        raise ServiceError(_("The code is wrong: check the time on your phone and enter the "
                             "code the app shows now."), "code")
    again = user.two_factor_enabled
    user.totp_secret, user.totp_last_step = secret, step
    user.totp_enabled_at = utcnow()
    codes = security.new_recovery_codes(user)
    record("two_factor.enrolled", user, after={"again": again})
    return codes


def disable_two_factor(user: User, *, password: str, code: str) -> None:
    """Party staff may turn two-factor sign-in off again; the roles that require it may not."""
    if security.two_factor_required(user):
        raise ServiceError(_("Your role requires two-factor sign-in."))
    if not user.two_factor_enabled:
        raise ServiceError(_("Two-factor sign-in is not on."))
    _reauthenticate(user, password, code)
    _clear_two_factor(user)
    record("two_factor.disabled", user)


def regenerate_recovery_codes(user: User, *, password: str, code: str) -> list[str]:
    if not user.two_factor_enabled:
        raise ServiceError(_("Two-factor sign-in is not on."))
    _reauthenticate(user, password, code)
    codes = security.new_recovery_codes(user)
    record("two_factor.recovery_codes_renewed", user)
    return codes


def _clear_two_factor(user: User) -> None:
    from sqlalchemy import delete

    from portal.accounts.models import RecoveryCode

    user.totp_secret = user.totp_enabled_at = user.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def reset_two_factor(user: User, by: User | None) -> None:
    """An administrator (None: the ``flask accounts`` command) clears ``user``'s second factor
    (a lost phone): they enrol again at their next sign-in; their sessions end."""
    if not user.two_factor_enabled:
        raise ServiceError(_("%(name)s has no two-factor sign-in to reset.",
                             name=user.username))
    _clear_two_factor(user)
    ended = security.end_sessions(user)
    record("two_factor.reset", user, after={"sessions_ended": ended}, actor=by)


def set_password(user: User, password: str, by: User | None) -> None:
    """An administrator (None: the ``flask accounts`` command) sets ``user``'s password; every
    session of ``user`` ends."""
    check_password_rules(password, user.username)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    ended = security.end_sessions(user)
    record("user.password_set", user, after={"sessions_ended": ended}, actor=by)


def set_active(user: User, active: bool, by: User) -> None:
    """Disable (every session ends) or enable again an account."""
    if user.id == by.id and not active:
        raise ServiceError(_("You cannot disable your own account."))
    if user.active == active:
        return
    before = user.snapshot()
    user.active = active
    ended = 0 if active else security.end_sessions(user)
    record("user.enabled" if active else "user.disabled", user, before=before,
           after={**user.snapshot(), "sessions_ended": ended}, actor=by)


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
