"""Settings, read from environment variables.

Defaults give the embedded set-up: a SQLite database under ``instance/`` and a secret key
generated once and kept in ``instance/secret_key`` (never committed).
"""
from __future__ import annotations

import ipaddress
import os
import secrets
from datetime import date
from itertools import pairwise
from pathlib import Path


def _secret_key(instance_path: Path) -> str:
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


class SettingError(ValueError):
    """A setting that cannot be read; the message starts with the setting's name."""


# Sanction levels from the mildest to the gravest (the values of ``cases.models.SanctionLevel``)
SANCTION_LEVELS = ("warning", "retraining", "suspension", "termination")


def parse_sanction_thresholds(text: str, name: str = "SANCTION_THRESHOLDS"
                              ) -> list[tuple[int, str]]:
    """``"12:warning,24:retraining"`` -> ``[(12, "warning"), (24, "retraining")]``, mildest
    first. Each level at most once, and a graver level needs more points than a milder one;
    an empty setting means no sanctions."""
    ladder = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        points, sep, level = item.strip().partition(":")
        points, level = points.strip(), level.strip().lower()
        if not sep or not points.isdigit() or int(points) < 1:
            raise SettingError(f"{name}: {item.strip()!r} is not points:level with whole "
                               f"points of at least 1 (e.g. 12:warning)")
        if level not in SANCTION_LEVELS:
            raise SettingError(f"{name}: unknown level {level!r} (use "
                               f"{', '.join(SANCTION_LEVELS)})")
        if any(level == known for _p, known in ladder):
            raise SettingError(f"{name}: {level} is given twice")
        ladder.append((int(points), level))
    ladder.sort(key=lambda t: SANCTION_LEVELS.index(t[1]))
    for (low, milder), (high, graver) in pairwise(ladder):
        if high <= low:
            raise SettingError(f"{name}: {graver} ({high} points) must need more points than "
                               f"{milder} ({low} points)")
    return ladder


def parse_carry_years(value, name: str = "SERIOUS_POINTS_CARRY_YEARS") -> int:
    """The following years serious points also count in: a whole number from 0 to 10."""
    text = str(value).strip()
    if not text.isdigit() or int(text) > 10:
        raise SettingError(f"{name}: {text!r} is not a whole number of years from 0 to 10")
    return int(text)


def parse_holidays(text: str, name: str = "HR_HOLIDAYS") -> list[date]:
    """``"2026-10-01,2026-10-02"`` -> the dates (days off besides weekends)."""
    days = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        try:
            days.append(date.fromisoformat(item.strip()))
        except ValueError:
            raise SettingError(f"{name}: {item.strip()!r} is not a date like 2026-10-01"
                               ) from None
    return days


def parse_working_days(text: str, name: str = "HR_ESCALATE_WORKING_DAYS") -> int:
    """A whole number of working days from 0 (never escalate) to 30."""
    value = str(text).strip()
    if not value.isdigit() or int(value) > 30:
        raise SettingError(f"{name}: {value!r} is not a whole number of working days "
                           f"from 0 to 30")
    return int(value)


def parse_file_storage(text: str, name: str = "FILE_STORAGE") -> str:
    """``local`` or ``s3``; ``s3`` needs ``S3_BUCKET``."""
    value = (text or "").strip().lower()
    if value not in ("local", "s3"):
        raise SettingError(f"{name}: {text!r} is neither local nor s3")
    if value == "s3" and not os.environ.get("S3_BUCKET", "").strip():
        raise SettingError(f"{name}=s3 needs S3_BUCKET (the bucket's name)")
    return value


def parse_networks(text, name: str = "WEBHOOK_ALLOWED_NETWORKS"
                   ) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``"10.20.0.0/16,fd00:1::/64"`` -> the networks (an address alone is a /32 or /128);
    empty: none. A list of such texts is read the same (``instance/config.py``)."""
    items = text.split(",") if isinstance(text, str) else list(text or ())
    networks = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as exc:
            raise SettingError(f"{name}: {item!r} is not a network like 10.20.0.0/16 or "
                               f"fd00:1::/64 ({exc})") from None
    return networks


def _optional_flag(name: str) -> bool | None:
    """A yes/no setting, or None when the environment does not say."""
    return _flag(name) if os.environ.get(name, "").strip() else None


def settle_cookies(config) -> None:
    """Once every setting is loaded: cookies (session, remember-me, sign-in device) go over
    HTTPS only and carry the ``__Host-`` prefix (ASVS 5.0 V3.3.1) when ``PORTAL_BASE_URL``
    is https, unless SESSION_COOKIE_SECURE says otherwise; a name set by hand is kept. The
    prefix needs Secure, Path=/ and no Domain, so it is used only on secure cookies."""
    secure = config.get("SESSION_COOKIE_SECURE")
    if secure is None:
        secure = str(config.get("PORTAL_BASE_URL", "")).strip().lower().startswith("https://")
    config["SESSION_COOKIE_SECURE"] = bool(secure)
    if config.get("REMEMBER_COOKIE_SECURE") is None:
        config["REMEMBER_COOKIE_SECURE"] = bool(secure)
    prefix = "__Host-" if secure else ""
    for key, name in (("SESSION_COOKIE_NAME", "session"),
                      ("REMEMBER_COOKIE_NAME", "remember_token"),
                      ("DEVICE_COOKIE_NAME", "portal_device")):
        if not config.get(key):
            config[key] = prefix + name
    if secure:
        config["SESSION_COOKIE_DOMAIN"] = config["REMEMBER_COOKIE_DOMAIN"] = None
        config["SESSION_COOKIE_PATH"] = config["REMEMBER_COOKIE_PATH"] = "/"


def database_url(instance_path: Path) -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        # Accept the common postgres:// spellings and route them to psycopg 3.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url
    return f"sqlite:///{instance_path / 'portal.db'}"


def _setting(name: str, default: str, parse) -> str:
    """The environment's text for ``name`` (or ``default``), refused at start-up if ``parse``
    cannot read it."""
    text = os.environ.get(name, default)
    parse(text, name)
    return text


def defaults(instance_path: Path) -> dict:
    return {
        "SECRET_KEY": _secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": database_url(instance_path),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "PORTAL_LANGUAGES": ["zh_CN", "en"],
        "PORTAL_DEFAULT_TIMEZONE": os.environ.get("PORTAL_TIMEZONE", "Asia/Shanghai"),
        "PORTAL_NAME": "服务标准治理平台",
        # Hash method for new passwords: "argon2id" (argon2-cffi, RFC 9106 settings), or a
        # Werkzeug method ("scrypt", "pbkdf2:sha256:600000"). Older hashes still verify and are
        # hashed again with this method at the next successful sign-in.
        "PASSWORD_HASH_METHOD": os.environ.get("PASSWORD_HASH_METHOD", "argon2id"),
        # --- account security (accounts/security.py) ---
        # Roles that must sign in with a second factor (TOTP); others may turn it on.
        "TWO_FACTOR_REQUIRED_ROLES": [r.strip() for r in os.environ.get(
            "TWO_FACTOR_REQUIRED_ROLES", "cs_admin,cs_supervisor,cs_director,cs_officer,"
            "hr_officer,auditor").split(",") if r.strip()],
        # Sign-in throttling, counted in the database (shared by every app server); wrong
        # current passwords (password change, two-factor settings) count the same.
        # - one username from one address: after LOGIN_MAX_FAILURES failures within
        #   LOGIN_WINDOW_MINUTES that address waits a delay that doubles with each further
        #   failure (1 min up to the window); other addresses are not locked out by it;
        # - one username from every address (LOGIN_USER_SLOW_AFTER failures in the window) or
        #   one address for every username (LOGIN_IP_MAX_FAILURES): attempts are slowed to one
        #   per LOGIN_SLOW_SECONDS, except from a browser that signed in to that account before
        #   (a signed device cookie, kept LOGIN_DEVICE_DAYS): the owner is never locked out by
        #   someone else's guesses.
        "LOGIN_MAX_FAILURES": int(os.environ.get("LOGIN_MAX_FAILURES", "5")),
        "LOGIN_USER_SLOW_AFTER": int(os.environ.get("LOGIN_USER_SLOW_AFTER", "10")),
        "LOGIN_IP_MAX_FAILURES": int(os.environ.get("LOGIN_IP_MAX_FAILURES", "20")),
        "LOGIN_SLOW_SECONDS": int(os.environ.get("LOGIN_SLOW_SECONDS", "60")),
        "LOGIN_WINDOW_MINUTES": int(os.environ.get("LOGIN_WINDOW_MINUTES", "15")),
        "LOGIN_DEVICE_DAYS": int(os.environ.get("LOGIN_DEVICE_DAYS", "90")),
        # Server-side sessions: signed out after this long without a request, and this long
        # after signing in whatever happens.
        "SESSION_IDLE_MINUTES": int(os.environ.get("SESSION_IDLE_MINUTES", "30")),
        "SESSION_ABSOLUTE_HOURS": int(os.environ.get("SESSION_ABSOLUTE_HOURS", "12")),
        # Behind a reverse proxy: how many proxies set X-Forwarded-For/-Proto/-Host/-Port
        # (Werkzeug ProxyFix); 0 = the portal is reached directly.
        "PROXY_FIX": int(os.environ.get("PROXY_FIX", "0")),
        # Cookies (session, remember-me, sign-in device) over HTTPS only, named with the
        # __Host- prefix (ASVS 5.0 V3.3.1): on by default when PORTAL_BASE_URL is https://,
        # off for the http://127.0.0.1 demo; SESSION_COOKIE_SECURE=1/0 decides otherwise
        # (None: follow PORTAL_BASE_URL; see settle_cookies).
        "SESSION_COOKIE_SECURE": _optional_flag("SESSION_COOKIE_SECURE"),
        "REMEMBER_COOKIE_SECURE": None,
        "SESSION_COOKIE_NAME": None, "REMEMBER_COOKIE_NAME": None, "DEVICE_COOKIE_NAME": None,
        "WTF_CSRF_TIME_LIMIT": None,  # token lives as long as the session
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PAGE_SIZE": 25,
        # Outgoing email (reminders, notices): any SMTP server; sent by `flask worker run`.
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", "127.0.0.1"),
        "MAIL_PORT": int(os.environ.get("MAIL_PORT", "25")),
        "MAIL_USE_TLS": _flag("MAIL_USE_TLS"),
        "MAIL_USE_SSL": _flag("MAIL_USE_SSL"),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME", ""),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD", ""),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "service-standards@portal.local"),
        "MAIL_TIMEOUT": float(os.environ.get("MAIL_TIMEOUT", "20")),
        "OUTBOX_MAX_ATTEMPTS": int(os.environ.get("OUTBOX_MAX_ATTEMPTS", "6")),
        "OUTBOX_RETRY_SECONDS": int(os.environ.get("OUTBOX_RETRY_SECONDS", "60")),
        # How long a worker holds the messages it claimed before another may take them (it
        # renews while it works); never less than 10x MAIL_TIMEOUT / WEBHOOK_TIMEOUT.
        "OUTBOX_LEASE_SECONDS": float(os.environ.get("OUTBOX_LEASE_SECONDS", "300")),
        # Webhooks (signed POSTs to the endpoints CS admins register): seconds to wait.
        "WEBHOOK_TIMEOUT": float(os.environ.get("WEBHOOK_TIMEOUT", "10")),
        # Networks webhooks may be sent to although they are not public (loopback, private,
        # link-local...: refused by default): "10.20.0.0/16,fd00:1::/64", for a receiver
        # inside the network. Checked on the address each delivery connects to.
        "WEBHOOK_ALLOWED_NETWORKS": _setting("WEBHOOK_ALLOWED_NETWORKS", "", parse_networks),
        # Acknowledgement campaigns: days to acknowledge a published version (also what a new
        # member of staff gets when the campaign's own date has passed), and how many days
        # before the due date the reminder goes out.
        "ACK_DUE_DAYS": int(os.environ.get("ACK_DUE_DAYS", "14")),
        "ACK_REMIND_DAYS_BEFORE": int(os.environ.get("ACK_REMIND_DAYS_BEFORE", "3")),
        # Training: reminders this many days before a training task is due; a certificate's
        # holder is asked to renew this many days before it expires.
        "TRAINING_REMIND_DAYS_BEFORE": int(os.environ.get("TRAINING_REMIND_DAYS_BEFORE", "3")),
        "CERTIFICATE_RENEW_DAYS_BEFORE": int(os.environ.get("CERTIFICATE_RENEW_DAYS_BEFORE",
                                                            "30")),
        # Uploaded images (lesson illustrations): largest accepted file; requests above
        # MAX_CONTENT_LENGTH are refused before they are read.
        "UPLOAD_MAX_BYTES": int(os.environ.get("UPLOAD_MAX_BYTES", str(5_000_000))),
        "MAX_CONTENT_LENGTH": int(os.environ.get("MAX_CONTENT_LENGTH", str(16_000_000))),
        # Evidence files of cases: largest accepted file (its form alone takes a request this
        # large), and the folder uploaded files are kept in, outside the web root.
        "EVIDENCE_MAX_BYTES": int(os.environ.get("EVIDENCE_MAX_BYTES", str(20_000_000))),
        "FILE_STORAGE_DIR": os.environ.get("FILE_STORAGE_DIR", str(instance_path / "files")),
        # Most an uploaded zip-based file (an XLSX workbook) may expand to (core.filetypes)
        "UPLOAD_MAX_EXPANDED_BYTES": int(os.environ.get("UPLOAD_MAX_EXPANDED_BYTES", "100000000")),
        # Who signs a ruling, by what the parties owe: "up to amount:role,...", the last without
        # an amount (any amount). Above the officer's own limit a different person signs.
        "RULING_APPROVAL_LEVELS": os.environ.get(
            "RULING_APPROVAL_LEVELS", "2000:cs_officer,20000:cs_supervisor,:cs_director"),
        # Days a party has to appeal a ruling (from when it took effect; round 2 from the
        # round-1 decision)
        "APPEAL_DAYS": int(os.environ.get("APPEAL_DAYS", "7")),
        # Ticket and volume files uploaded for import (read as a stream, stored while imported)
        "IMPORT_MAX_BYTES": int(os.environ.get("IMPORT_MAX_BYTES", str(1_000_000_000))),
        # Points per party per calendar year (portal time zone) and the sanctions they trigger:
        # "points:level,..." (levels: warning, retraining, suspension, termination). Serious
        # points also count in the following SERIOUS_POINTS_CARRY_YEARS years (0: reset).
        "SANCTION_THRESHOLDS": _setting("SANCTION_THRESHOLDS",
                                        "12:warning,24:retraining,36:suspension,48:termination",
                                        parse_sanction_thresholds),
        "SERIOUS_POINTS_CARRY_YEARS": parse_carry_years(
            os.environ.get("SERIOUS_POINTS_CARRY_YEARS", "1")),
        # HR penalty notices still new after this many working days (Mon-Fri in the portal's
        # time zone, less HR_HOLIDAYS: "2026-10-01,2026-10-02") are escalated once to HR and
        # the CS supervisors; 0 never escalates.
        "HR_ESCALATE_WORKING_DAYS": parse_working_days(
            os.environ.get("HR_ESCALATE_WORKING_DAYS", "2")),
        "HR_HOLIDAYS": _setting("HR_HOLIDAYS", "", parse_holidays),
        # Address used in emails for links back to the portal.
        "PORTAL_BASE_URL": os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:5000"),
        # Background jobs (portal.core.jobs): with REDIS_URL (redis://host:6379/0) they go on
        # an RQ queue run by `flask worker jobs`; without it, a thread of the web process.
        # JOBS_INLINE runs them at once in the caller (tests).
        "REDIS_URL": os.environ.get("REDIS_URL", "").strip(),
        "JOBS_INLINE": _flag("JOBS_INLINE"),
        "JOBS_QUEUE": os.environ.get("JOBS_QUEUE", "portal"),
        "JOBS_TIMEOUT": int(os.environ.get("JOBS_TIMEOUT", "3600")),
        "SCHEDULE_SECONDS": int(os.environ.get("SCHEDULE_SECONDS", "60")),
        # Under Redis, a commit that queued emails enqueues a delivery run at once.
        "OUTBOX_DELIVER_ON_COMMIT": (_flag("OUTBOX_DELIVER_ON_COMMIT")
                                     if "OUTBOX_DELIVER_ON_COMMIT" in os.environ
                                     else bool(os.environ.get("REDIS_URL", "").strip())),
        # Report jobs (PDF, snapshot) older than this many days are removed by the round.
        "REPORTS_KEEP_DAYS": int(os.environ.get("REPORTS_KEEP_DAYS", "30")),
        # An upload still waiting after this many hours is marked failed by the round.
        "INTAKE_ABANDONED_HOURS": int(os.environ.get("INTAKE_ABANDONED_HOURS", "6")),
        # Where files are kept: "local" (FILE_STORAGE_DIR) or "s3" (any S3-compatible store).
        "FILE_STORAGE": _setting("FILE_STORAGE", "local", parse_file_storage),
        "S3_BUCKET": os.environ.get("S3_BUCKET", ""),
        "S3_ENDPOINT_URL": os.environ.get("S3_ENDPOINT_URL", ""),
        "S3_REGION": os.environ.get("S3_REGION", ""),
        "S3_ACCESS_KEY_ID": os.environ.get("S3_ACCESS_KEY_ID", ""),
        "S3_SECRET_ACCESS_KEY": os.environ.get("S3_SECRET_ACCESS_KEY", ""),
        "S3_PREFIX": os.environ.get("S3_PREFIX", ""),
    }
