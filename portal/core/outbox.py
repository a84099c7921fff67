"""The outbox: email written in the same transaction as the change that calls for it.

A service calls ``enqueue`` next to its model changes, so a message exists exactly when the change
was committed. ``deliver_pending`` (run by ``flask worker run``) sends what is due through the
SMTP server named in the settings:

* a row is claimed (``sending``, committed) before it is handed to SMTP, so two workers never
  take the same row and a row is never handed over twice, even if the worker dies mid-send: a
  row left ``sending`` is reported by ``flask worker status`` for a person to check, never resent;
* a temporary failure (server down, 4xx) puts the row back to ``pending`` with an exponential
  back-off, up to ``OUTBOX_MAX_ATTEMPTS``; a permanent one (5xx) fails it at once;
* ``key`` is unique: enqueueing the same reminder twice writes it once.

Each message carries ``Message-ID: <outbox-ID@domain>`` so a receiving server can drop a copy.
"""
from __future__ import annotations

import enum
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from flask import current_app
from sqlalchemy import String, Text, func, select
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.audit import record
from portal.core.db import Base, CreatedAtMixin, enum_column, utcnow
from portal.extensions import db


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(CreatedAtMixin, Base):
    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    to_addr: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[OutboxStatus] = mapped_column(enum_column(OutboxStatus),
                                                 default=OutboxStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None]


def enqueue(*, key: str, to: str, subject: str, body: str) -> OutboxMessage | None:
    """Add a message to the caller's transaction; ``None`` if ``key`` was queued before."""
    if db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key)):
        return None
    msg = OutboxMessage(key=key, to_addr=to, subject=subject[:300], body=body,
                        next_attempt_at=utcnow())
    db.session.add(msg)
    return msg


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def _email(msg: OutboxMessage) -> EmailMessage:
    cfg = current_app.config
    mail = EmailMessage()
    mail["From"] = cfg["MAIL_FROM"]
    mail["To"] = msg.to_addr
    mail["Subject"] = msg.subject
    mail["Date"] = format_datetime(msg.created_at or utcnow())
    mail["Message-ID"] = f"<outbox-{msg.id}@{cfg['MAIL_FROM'].rpartition('@')[2] or 'portal'}>"
    mail.set_content(msg.body)
    return mail


def _connect() -> smtplib.SMTP:
    cfg = current_app.config
    cls = smtplib.SMTP_SSL if cfg["MAIL_USE_SSL"] else smtplib.SMTP
    smtp = cls(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=cfg["MAIL_TIMEOUT"])
    if cfg["MAIL_USE_TLS"] and not cfg["MAIL_USE_SSL"]:
        smtp.starttls()
    if cfg["MAIL_USERNAME"]:
        smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"])
    return smtp


def _permanent(exc: Exception) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _msg in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500


def _claim(limit: int) -> list[OutboxMessage]:
    q = (select(OutboxMessage)
         .where(OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at <= utcnow())
         .order_by(OutboxMessage.id).limit(limit))
    if db.session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    msgs = db.session.scalars(q).all()
    for m in msgs:
        m.status = OutboxStatus.SENDING
        m.attempts += 1
    db.session.commit()
    return msgs


def _failed(msg: OutboxMessage, exc: Exception, report: DeliveryReport) -> None:
    cfg = current_app.config
    msg.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    if _permanent(exc) or msg.attempts >= cfg["OUTBOX_MAX_ATTEMPTS"]:
        msg.status = OutboxStatus.FAILED
        report.failed += 1
        record("outbox.failed", msg, after={"key": msg.key, "attempts": msg.attempts,
                                            "error": msg.last_error})
    else:
        msg.status = OutboxStatus.PENDING
        delay = cfg["OUTBOX_RETRY_SECONDS"] * 2 ** (msg.attempts - 1)
        msg.next_attempt_at = utcnow() + timedelta(seconds=delay)
        report.retried += 1
        record("outbox.retry_scheduled", msg, after={
            "key": msg.key, "attempts": msg.attempts, "next_attempt_at": msg.next_attempt_at,
            "error": msg.last_error})


def deliver_pending(limit: int = 200) -> DeliveryReport:
    """Send the messages that are due; commits per message (this is a worker, not a request)."""
    report = DeliveryReport()
    msgs = _claim(limit)
    if not msgs:
        return report
    try:
        smtp = _connect()
    except (smtplib.SMTPException, OSError) as exc:
        for m in msgs:
            _failed(m, exc, report)
        db.session.commit()
        return report
    try:
        for m in msgs:
            try:
                smtp.send_message(_email(m))
            except (smtplib.SMTPException, OSError) as exc:
                _failed(m, exc, report)
            else:
                m.status = OutboxStatus.SENT
                m.sent_at = utcnow()
                m.last_error = ""
                report.sent += 1
                record("outbox.sent", m, after={"key": m.key, "to": m.to_addr,
                                                "attempts": m.attempts})
            db.session.commit()
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
    return report


def status_counts() -> dict[str, int]:
    rows = db.session.execute(select(OutboxMessage.status, func.count())
                              .group_by(OutboxMessage.status)).all()
    return {str(s): n for s, n in rows}
