"""Sign-in security: throttling, server-side sessions, two-factor codes (OWASP ASVS 5.0 L2).

Everything here is kept in the database, never in a process's memory, so that several app
servers sharing the database and ``SECRET_KEY`` agree on it:

- **Throttling** counts ``LoginAttempt`` rows, so that guessing stays expensive without handing
  anyone a way to lock someone else out (OWASP's device-cookie approach):
  - one username from one address: ``LOGIN_MAX_FAILURES`` failures since the username's last
    success (within ``LOGIN_WINDOW_MINUTES``) make that address wait 1 minute, then 2, 4 ... up
    to the window after each further failure; the same username from another address is not
    locked by them;
  - one username from every address (``LOGIN_USER_SLOW_AFTER`` failures in the window), or one
    address for every username (``LOGIN_IP_MAX_FAILURES``): attempts are slowed to one per
    ``LOGIN_SLOW_SECONDS`` after the newest failure, not refused for long, and not at all in a
    browser that signed in to that account before (a signed device cookie): the owner of an
    account being guessed at, or a courier behind the same office router as someone guessing,
    signs in as usual.
  Usernames that do not exist are counted the same way, so the answers do not tell which
  accounts exist. A wrong current password (changing the password, the two-factor settings)
  counts as a failed sign-in of that user; at the limit the session asking is ended.
- **Sessions**: signing in creates a ``UserSession`` whose random id is kept in the (signed)
  Flask session; every request checks it for the idle (``SESSION_IDLE_MINUTES``) and absolute
  (``SESSION_ABSOLUTE_HOURS``) time-outs. Ending the row signs that browser out everywhere.
- **Two-factor codes**: TOTP (RFC 6238, 30 s, 6 digits, one step either side). The last
  accepted step is stored and moved forward with a conditional UPDATE, so a code is accepted
  once even when two servers see it at the same moment. Recovery codes are kept hashed (the
  password hash) and are single-use the same way.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from flask import current_app, g, has_request_context, request, session
from flask_babel import ngettext
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import delete, func, or_, select, update

from portal.accounts.models import LoginAttempt, RecoveryCode, User, UserSession
from portal.accounts.passwords import hash_password, verify_password
from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import RecordedRefusal
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


def _since(name: str) -> datetime:
    """Failures count from the later of the window's start and ``name``'s last success."""
    last_ok = db.session.scalar(select(func.max(LoginAttempt.occurred_at)).where(
        LoginAttempt.username == name, LoginAttempt.succeeded.is_(True)))
    start = utcnow() - _window()
    return max(start, last_ok) if last_ok else start


def _failed(*conds) -> tuple[int, datetime | None]:
    """How many failures match ``conds``, and when the newest was."""
    n, newest = db.session.execute(select(func.count(), func.max(LoginAttempt.occurred_at))
                                   .where(LoginAttempt.succeeded.is_(False), *conds)).one()
    return n or 0, newest


def _pair_failures(name: str, ip: str, since: datetime | None = None
                   ) -> tuple[int, datetime | None]:
    return _failed(LoginAttempt.username == name, LoginAttempt.ip == ip[:64],
                   LoginAttempt.occurred_at > (since or _since(name)))


@dataclass(frozen=True)
class Throttle:
    """How long an attempt must still wait (0: it may go ahead), and whether the address's
    failures for every account (``network``), not this account's, make it wait."""

    seconds: int = 0
    network: bool = False

    @property
    def minutes(self) -> int:
        return max(1, -(-self.seconds // 60))


def throttle(username: str, ip: str, *, trusted: bool | None = None) -> Throttle:
    """Whether ``username`` from ``ip`` must wait before trying again. ``trusted``: the
    browser signed in to this account before (read from the request's device cookie when not
    given)."""
    cfg, now = current_app.config, utcnow()
    name = _norm(username)
    if trusted is None:
        trusted = device_trusted(name)
    account = network = 0.0
    limit = cfg["LOGIN_MAX_FAILURES"]
    since = _since(name)                  # read once for both counts of the username
    n, newest = _pair_failures(name, ip, since)
    if n >= limit:
        delay = min(timedelta(minutes=2 ** min(n - limit, 16)), _window())
        account = (newest + delay - now).total_seconds()
    if not trusted:
        slow = timedelta(seconds=cfg["LOGIN_SLOW_SECONDS"])
        n, newest = _failed(LoginAttempt.username == name, LoginAttempt.occurred_at > since)
        if n >= cfg["LOGIN_USER_SLOW_AFTER"]:
            account = max(account, (newest + slow - now).total_seconds())
        if ip:
            n, newest = _failed(LoginAttempt.ip == ip[:64],
                                LoginAttempt.occurred_at > now - _window())
            if n >= cfg["LOGIN_IP_MAX_FAILURES"]:
                network = (newest + slow - now).total_seconds()
    wait = max(0, int(max(account, network) + 0.999))
    return Throttle(wait, network=wait > 0 and network > account)


def throttle_wait(username: str, ip: str, *, trusted: bool | None = None) -> int:
    """Seconds ``username`` from ``ip`` must still wait before trying again (0: may try)."""
    return throttle(username, ip, trusted=trusted).seconds


def wait_message(wait: Throttle) -> str:
    """What the sign-in page says to an attempt that must wait."""
    if wait.network:
        return ngettext("Too many failed sign-ins from this network. Try again in %(num)d "
                        "minute; a browser you signed in with before is not held up.",
                        "Too many failed sign-ins from this network. Try again in %(num)d "
                        "minutes; a browser you signed in with before is not held up.",
                        wait.minutes)
    return ngettext("Too many failed sign-ins. Try again in %(num)d minute.",
                    "Too many failed sign-ins. Try again in %(num)d minutes.", wait.minutes)


def note_attempt(username: str, ip: str, succeeded: bool) -> LoginAttempt:
    attempt = LoginAttempt(occurred_at=utcnow(), username=_norm(username), ip=ip[:64],
                           succeeded=succeeded)
    db.session.add(attempt)
    db.session.execute(delete(LoginAttempt).where(
        LoginAttempt.occurred_at < utcnow() - ATTEMPTS_KEPT))
    return attempt


def record_failure(username: str, ip: str, reason: str) -> None:
    """A failed attempt: counted, and audited without an actor (the password is never kept).
    The failure that reaches the limit of the username from this address also records
    ``login.locked``."""
    name = _norm(username)
    attempt = note_attempt(name, ip, succeeded=False)
    db.session.flush()
    record("login.failed", attempt, after={"username": name, "reason": reason},
           actor=NOBODY)
    if _pair_failures(name, ip)[0] == current_app.config["LOGIN_MAX_FAILURES"]:
        record("login.locked", attempt, after={"username": name, "ip": ip[:64]}, actor=NOBODY)


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


# --- browsers that signed in before (device cookies) -----------------------------------------

DEVICE_SALT = "portal.sign-in-device"
DEVICE_ACCOUNTS = 5          # accounts a shared browser remembers at most


def _account_mark(name: str) -> str:
    """What a device cookie keeps of an account: a short hash, not the username."""
    return hashlib.sha256(_norm(name).encode()).hexdigest()[:16]


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=DEVICE_SALT)


def _device_marks() -> list[str]:
    """The accounts this request's browser signed in to (its signed device cookie)."""
    if not has_request_context():
        return []
    raw = request.cookies.get(current_app.config["DEVICE_COOKIE_NAME"] or "portal_device")
    if not raw:
        return []
    try:
        marks = _device_serializer().loads(
            raw, max_age=current_app.config["LOGIN_DEVICE_DAYS"] * 86400)
    except BadData:
        return []
    return [m for m in marks if isinstance(m, str)] if isinstance(marks, list) else []


def device_trusted(username: str) -> bool:
    return _account_mark(username) in _device_marks()


def device_cookie(username: str) -> str:
    """The device cookie's new value once ``username`` signed in from this browser."""
    mark = _account_mark(username)
    marks = [m for m in _device_marks() if m != mark] + [mark]
    return _device_serializer().dumps(marks[-DEVICE_ACCOUNTS:])


# --- the current password asked again (changing how one signs in) ----------------------------

def reauth_refusal(user: User, reason: str, message: str, field: str | None
                   ) -> RecordedRefusal:
    """A wrong current password (or code) given to confirm a change: refused, and counted as
    a failed sign-in of ``user`` after the change is rolled back. The failure that reaches
    the limit ends the session that asked (``g.reauth_locked`` then holds the wait)."""
    ip, sid = client_ip(), session.get(SESSION_KEY)

    def keep() -> None:
        record_failure(user.username, ip, reason)
        wait = throttle_wait(user.username, ip)
        if wait:
            _end_locked(user, sid, wait)
    return RecordedRefusal(message, field, record=keep)


def reauth_throttled(user: User) -> RecordedRefusal | None:
    """The refusal (and end of the session asking) when ``user`` is throttled now: the
    password is then not looked at."""
    ip, sid = client_ip(), session.get(SESSION_KEY)
    wait = throttle(user.username, ip)
    if not wait.seconds:
        return None

    def keep() -> None:
        record_throttled(user.username, wait.seconds)
        _end_locked(user, sid, wait.seconds)
    return RecordedRefusal(wait_message(wait), "current_password", record=keep)


def _end_locked(user: User, sid: str | None, wait: int) -> None:
    end_session(sid)
    record("session.ended_after_failures", user, after={"wait_seconds": wait}, actor=user)
    g.reauth_locked = wait


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
