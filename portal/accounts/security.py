"""Sign-in security: throttling, server-side sessions, two-factor codes (OWASP ASVS 5.0 L2).

Everything here is kept in the database, never in a process's memory, so that several app
servers sharing the database and ``SECRET_KEY`` agree on it:

- **Throttling** counts ``LoginAttempt`` rows: a username with ``LOGIN_MAX_FAILURES`` failures
  since its last success (within ``LOGIN_WINDOW_MINUTES``) waits 1 minute, then 2, 4 ... up to
  the window after each further failure; an address with ``LOGIN_IP_MAX_FAILURES`` failures in
  the window waits until the oldest of them leaves the window. Usernames that do not exist are
  counted the same way, so the answers do not tell which accounts exist.
- **Sessions**: signing in creates a ``UserSession`` whose random id is kept in the (signed)
  Flask session; every request checks it for the idle (``SESSION_IDLE_MINUTES``) and absolute
  (``SESSION_ABSOLUTE_HOURS``) time-outs. Ending the row signs that browser out everywhere.
- **Two-factor codes**: TOTP (RFC 6238, 30 s, 6 digits, one step either side). The last
  accepted step is stored and moved forward with a conditional UPDATE, so a code is accepted
  once even when two servers see it at the same moment. Recovery codes are kept hashed (the
  password hash) and are single-use the same way.
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from flask import current_app, has_request_context, request
from sqlalchemy import delete, func, or_, select, update

from portal.accounts.models import LoginAttempt, RecoveryCode, User, UserSession
from portal.accounts.passwords import hash_password, verify_password
from portal.core.audit import record
from portal.core.db import utcnow
from portal.extensions import db

TOTP_STEP = 30
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
SEEN_EVERY = timedelta(minutes=1)        # last_seen_at is written at most this often
ATTEMPTS_KEPT = timedelta(days=1)        # older attempts are pruned (the audit log keeps all)
SESSION_KEY = "sid"


# --- throttling -----------------------------------------------------------------------------

def client_ip() -> str:
    return (request.remote_addr or "") if has_request_context() else ""


def _window() -> timedelta:
    return timedelta(minutes=current_app.config["LOGIN_WINDOW_MINUTES"])


def _failures(name: str) -> list[datetime]:
    """When ``name``'s failures since its last success (within the window) happened, newest
    first."""
    now = utcnow()
    last_ok = db.session.scalar(select(func.max(LoginAttempt.occurred_at)).where(
        LoginAttempt.username == name, LoginAttempt.succeeded.is_(True)))
    since = max(now - _window(), last_ok) if last_ok else now - _window()
    return db.session.scalars(
        select(LoginAttempt.occurred_at).where(
            LoginAttempt.username == name, LoginAttempt.succeeded.is_(False),
            LoginAttempt.occurred_at > since).order_by(LoginAttempt.occurred_at.desc())).all()


def throttle_wait(username: str, ip: str) -> int:
    """Seconds ``username`` from ``ip`` must still wait before trying again (0: may try)."""
    now, window = utcnow(), _window()
    failures = _failures(_norm(username))
    wait = 0.0
    limit = current_app.config["LOGIN_MAX_FAILURES"]
    if len(failures) >= limit:
        delay = min(timedelta(minutes=2 ** min(len(failures) - limit, 16)), window)
        wait = (failures[0] + delay - now).total_seconds()
    ip_limit = current_app.config["LOGIN_IP_MAX_FAILURES"]
    if ip:
        nth = db.session.scalar(
            select(LoginAttempt.occurred_at).where(
                LoginAttempt.ip == ip, LoginAttempt.succeeded.is_(False),
                LoginAttempt.occurred_at > now - window)
            .order_by(LoginAttempt.occurred_at.desc()).offset(ip_limit - 1).limit(1))
        if nth is not None:
            wait = max(wait, (nth + window - now).total_seconds())
    return max(0, int(wait + 0.999))


def note_attempt(username: str, ip: str, succeeded: bool) -> LoginAttempt:
    attempt = LoginAttempt(occurred_at=utcnow(), username=_norm(username), ip=ip[:64],
                           succeeded=succeeded)
    db.session.add(attempt)
    db.session.execute(delete(LoginAttempt).where(
        LoginAttempt.occurred_at < utcnow() - ATTEMPTS_KEPT))
    return attempt


def record_failure(username: str, ip: str, reason: str) -> None:
    """A failed attempt: counted, and audited without an actor (the password is never kept).
    The failure that reaches the limit also records ``login.locked``."""
    name = _norm(username)
    attempt = note_attempt(name, ip, succeeded=False)
    record("login.failed", attempt, after={"username": name, "reason": reason},
           actor=NOBODY)
    if len(_failures(name)) == current_app.config["LOGIN_MAX_FAILURES"]:
        record("login.locked", attempt, after={"username": name}, actor=NOBODY)


def record_throttled(username: str, wait: int) -> None:
    """An attempt refused unseen while throttled (not counted: the wait does not grow)."""
    record("login.throttled", _Unsaved(),
           after={"username": _norm(username), "wait_seconds": wait}, actor=NOBODY)


class _Nobody:
    """The actor of events of someone not signed in (the attempted name is in the event)."""

    id = None
    username = "anonymous"


NOBODY = _Nobody()


class _Unsaved:
    __tablename__ = "login_attempts"
    id = ""


def _norm(username: str) -> str:
    return (username or "").strip().lower()[:120]


# --- sessions -------------------------------------------------------------------------------

def start_session(user: User) -> UserSession:
    """A new server-side session for ``user`` (the caller rotates the Flask session)."""
    now = utcnow()
    row = UserSession(id=secrets.token_urlsafe(32), user_id=user.id, created_at=now,
                      last_seen_at=now, ip=client_ip()[:64],
                      user_agent=(request.user_agent.string if has_request_context()
                                  else "")[:255])
    db.session.add(row)
    return row


def session_expired(row: UserSession, now: datetime | None = None) -> bool:
    now = now or utcnow()
    cfg = current_app.config
    return (now - row.last_seen_at > timedelta(minutes=cfg["SESSION_IDLE_MINUTES"])
            or now - row.created_at > timedelta(hours=cfg["SESSION_ABSOLUTE_HOURS"]))


@dataclass
class SessionCheck:
    user: User | None
    expired: bool = False


def check_session(user_id: str, sid: str | None) -> SessionCheck:
    """The user of this request if its session record is live; an expired one is ended.

    Writes (and commits) only when the session expires or ``last_seen_at`` is more than a
    minute old: the caller runs at the start of the request, before any other change."""
    if not sid:
        return SessionCheck(None)
    row = db.session.get(UserSession, sid)
    try:
        uid = int(user_id)
    except (TypeError, ValueError):
        return SessionCheck(None)
    if row is None or row.user_id != uid or row.ended_at is not None:
        return SessionCheck(None)
    user = db.session.get(User, uid)
    if user is None or not user.active:
        return SessionCheck(None)
    now = utcnow()
    if session_expired(row, now):
        row.ended_at = now
        record("session.expired", user, actor=user)
        db.session.commit()
        return SessionCheck(None, expired=True)
    if now - row.last_seen_at >= SEEN_EVERY:
        db.session.execute(update(UserSession).where(UserSession.id == sid)
                           .values(last_seen_at=now))
        db.session.commit()
    return SessionCheck(user)


def end_session(sid: str | None) -> None:
    if sid:
        db.session.execute(update(UserSession).where(
            UserSession.id == sid, UserSession.ended_at.is_(None)).values(ended_at=utcnow()))


def end_sessions(user: User, *, keep: str | None = None) -> int:
    """End every open session of ``user`` (but ``keep``); the number ended."""
    q = update(UserSession).where(UserSession.user_id == user.id,
                                  UserSession.ended_at.is_(None))
    if keep:
        q = q.where(UserSession.id != keep)
    return db.session.execute(q.values(ended_at=utcnow())).rowcount or 0


def open_sessions(user: User) -> list[UserSession]:
    rows = db.session.scalars(select(UserSession).where(
        UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .order_by(UserSession.last_seen_at.desc())).all()
    return [r for r in rows if not session_expired(r)]


# --- two-factor codes -----------------------------------------------------------------------

def two_factor_required(user: User) -> bool:
    return str(user.role) in current_app.config["TWO_FACTOR_REQUIRED_ROLES"]


def new_secret() -> str:
    return pyotp.random_base32()  # 32 base32 characters: 160 bits


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.username,
                                               issuer_name=current_app.config["PORTAL_NAME"])


def _steps_now() -> int:
    return int(utcnow().timestamp()) // TOTP_STEP


def matching_step(secret: str, code: str) -> int | None:
    """The time step (now, or one either side) whose code ``code`` is, if any."""
    code = "".join((code or "").split())
    if not (len(code) == 6 and code.isdigit()) or not secret:
        return None
    totp = pyotp.TOTP(secret)
    now = _steps_now()
    for step in (now - 1, now, now + 1):
        if hmac.compare_digest(totp.at(step * TOTP_STEP), code):
            return step
    return None


def use_totp(user: User, code: str) -> bool:
    """Accept ``code`` for ``user`` once: its step must be later than the last accepted."""
    step = matching_step(user.totp_secret or "", code)
    if step is None:
        return False
    moved = db.session.execute(
        update(User).where(User.id == user.id, or_(User.totp_last_step.is_(None),
                                                   User.totp_last_step < step))
        .values(totp_last_step=step)).rowcount
    if moved != 1:
        return False
    user.totp_last_step = step
    return True


def _norm_recovery(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


def new_recovery_codes(user: User) -> list[str]:
    """Replace ``user``'s recovery codes with ten new ones (returned once, kept hashed)."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _n in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _i in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(user_id=user.id, code_hash=hash_password(raw),
                                    created_at=utcnow()))
    return codes


def use_recovery_code(user: User, code: str) -> bool:
    raw = _norm_recovery(code)
    if len(raw) != 10:
        return False
    unused = db.session.scalars(select(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))).all()
    for row in unused:
        if verify_password(row.code_hash, raw):
            used = db.session.execute(update(RecoveryCode).where(
                RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                .values(used_at=utcnow())).rowcount
            return used == 1
    return False


def recovery_codes_left(user: User) -> int:
    return db.session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) or 0


def check_second_factor(user: User, code: str) -> str | None:
    """"totp" or "recovery_code" when ``code`` is accepted for ``user``, else None."""
    digits = "".join((code or "").split())
    if digits.isdigit():
        return "totp" if use_totp(user, digits) else None
    return "recovery_code" if use_recovery_code(user, code) else None
