"""Settings, read from environment variables.

Defaults give the embedded set-up: a SQLite database under ``instance/`` and a secret key
generated once and kept in ``instance/secret_key`` (never committed).
"""
from __future__ import annotations

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
        # Hash method for new passwords (Werkzeug): scrypt by default.
        "PASSWORD_HASH_METHOD": os.environ.get("PASSWORD_HASH_METHOD", "scrypt"),
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
    }
