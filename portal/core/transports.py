"""How the outbox hands a message over: email over SMTP (``SmtpSession``: MAIL, RCPT and the
text sent ahead, the final "." as the hand-over) and webhooks (``WebhookTargets``). Kept apart
from ``core.outbox``, which decides what is handed over when and records what came of it."""
from __future__ import annotations

import re
import smtplib
import socket
from email.header import Header
from email.mime.text import MIMEText
from email.utils import format_datetime

from flask import current_app

from portal.core.db import utcnow


class DeliveryError(Exception):
    """A hand-over that did not succeed; ``permanent`` ones are not tried again."""

    def __init__(self, text: str, *, permanent: bool = False):
        super().__init__(text)
        self.permanent = permanent


# --- email over SMTP -----------------------------------------------------------------------

def email_bytes(row) -> bytes:
    """The email as sent: UTF-8 text, its Message-ID the same on every try."""
    cfg = current_app.config
    mail = MIMEText(row.body, "plain", "utf-8")
    mail["From"] = cfg["MAIL_FROM"]
    mail["To"] = row.to_addr
    mail["Subject"] = Header(row.subject, "utf-8")
    mail["Date"] = format_datetime(row.created_at or utcnow())
    domain = cfg["MAIL_FROM"].rpartition("@")[2] or "portal"
    mail["Message-ID"] = f"<outbox-{row.id}@{domain}>"
    return mail.as_bytes()


def _data_block(message: bytes) -> bytes:
    """The DATA text: CRLF line ends, leading dots doubled, ending in CRLF (without the
    final "." line, which is the hand-over)."""
    text = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", message)
    text = re.sub(rb"(?m)^\.", b"..", text)
    return text if text.endswith(b"\r\n") else text + b"\r\n"


def _connect() -> smtplib.SMTP:
    cfg = current_app.config
    cls = smtplib.SMTP_SSL if cfg["MAIL_USE_SSL"] else smtplib.SMTP
    smtp = cls(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=cfg["MAIL_TIMEOUT"])
    try:
        if cfg["MAIL_USE_TLS"] and not cfg["MAIL_USE_SSL"]:
            smtp.starttls()
        if cfg["MAIL_USERNAME"]:
            smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"])
        smtp.ehlo_or_helo_if_needed()
        # the final "." goes alone, after the text: without this, Nagle's algorithm holds
        # it until the server acknowledges the text (up to its delayed-ACK time, ~40 ms)
        smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _describe(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc.smtp_code, exc.smtp_error)
    return f"{type(exc).__name__}: {exc}"


def _reply(code: int, text) -> str:
    text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"SMTP {code} {text}"


class SmtpSession:
    """One SMTP connection for a claim, opened at its first email and again after a broken
    one. If the server cannot be reached, the rest of the claim is not tried against it: each
    of its emails gets the same error (a round costs one timeout, not one per email).

    ``prepare`` sends MAIL, RCPT, DATA and the text; ``hand_over`` the final "." - the moment
    the server takes the message. A connection closed between the two drops the message."""

    def __init__(self):
        self.smtp: smtplib.SMTP | None = None
        self.unreachable: DeliveryError | None = None
        self.in_data = False

    def _refused(self, code: int, text, what: str = "") -> DeliveryError:
        if code == 421 or code < 0:  # the server is closing the connection
            self.close()
        elif self.smtp is not None:
            try:
                self.smtp.rset()
            except (smtplib.SMTPException, OSError):
                self.close()
        return DeliveryError(what + _reply(code, text), permanent=code >= 500)

    def prepare(self, row) -> None:
        if self.unreachable is not None:
            raise self.unreachable
        if self.smtp is None:
            try:
                self.smtp = _connect()
            except (smtplib.SMTPException, OSError) as exc:
                self.unreachable = DeliveryError("connecting to the mail server: "
                                                 + _describe(exc))
                raise self.unreachable from None
        try:
            code, text = self.smtp.mail(current_app.config["MAIL_FROM"])
            if code != 250:
                raise self._refused(code, text, "MAIL FROM: ")
            code, text = self.smtp.rcpt(row.to_addr)
            if code not in (250, 251):
                raise self._refused(code, text, f"{row.to_addr}: ")
            code, text = self.smtp.docmd("DATA")
            if code != 354:
                raise self._refused(code, text, "DATA: ")
            self.in_data = True
            self.smtp.send(_data_block(email_bytes(row)))
        except (smtplib.SMTPException, OSError) as exc:
            self.close()  # a timeout or a broken connection: its state is unknown
            raise DeliveryError(_describe(exc)) from None

    def hand_over(self, _handle=None) -> None:
        try:
            self.smtp.send(b".\r\n")
            self.in_data = False
            code, text = self.smtp.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            self.close()  # in doubt: tried again later, with the same Message-ID
            raise DeliveryError(_describe(exc)) from None
        if code != 250:
            if code == 421 or code < 0:
                self.close()
            raise DeliveryError(_reply(code, text), permanent=code >= 500)

    def abandon(self) -> None:
        if self.in_data:  # never send the final "." (nor a QUIT the server would take as text)
            self.smtp.close()
            self.smtp, self.in_data = None, False

    def close(self) -> None:
        self.abandon()
        if self.smtp is None:
            return
        try:
            self.smtp.quit()
        except (smtplib.SMTPException, OSError):
            self.smtp.close()
        self.smtp = None


class WebhookTargets:
    """The endpoints of a claim's webhooks, read once before its messages are handed over."""

    def __init__(self, endpoint_ids: set[int | None]):
        from portal.core import webhooks

        ids = {i for i in endpoint_ids if i is not None}
        self.targets = webhooks.targets(ids) if ids else {}

    def prepare(self, row):
        target = self.targets.get(row.endpoint_id)
        if target is None or not target.active:
            raise DeliveryError("the endpoint is disabled (enable it, then retry)",
                                permanent=True)
        return target, row

    def hand_over(self, handle) -> None:
        from portal.core import webhooks

        webhooks.post(*handle)

    def abandon(self) -> None:
        pass

    def close(self) -> None:
        pass


