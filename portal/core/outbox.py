"""The outbox: every outgoing message (email, webhook) written in the same transaction as the
change that calls for it, and delivered by ``flask worker run``.

Services queue through ``core.notify`` (``email_user``, ``webhook``), which call ``enqueue``
next to their model changes: a message exists exactly when the change was committed. The key
is unique, so queueing the same message twice writes it once.

Delivery (``deliver_pending``), and what is guaranteed
----------------------------------------------------------

1. **Claim.** A worker claims up to ``limit`` due rows in one short transaction: it selects them
   (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two workers skip each other's rows instead of
   waiting) and sets them ``sending`` with a claim token of its own and a lease
   (``lease_until``), with an ``UPDATE ... WHERE status = 'pending'`` that only takes rows still
   pending. That condition alone makes the claim exclusive on SQLite too (writes are
   serialised there). **Two workers never hold the same row at the same time.**
2. **Hand over one by one, each outcome committed before the next hand-over.** The claimed
   rows are handed over in id order, one at a time. The outcome of each (``sent``; back to
   ``pending`` with a back-off; ``failed``), its attempt row and its audit event are one
   transaction, committed before the next row is handed over. To keep that fast, the next
   message is made ready while the commit runs (in a second thread with its own connection):
   an email's MAIL, RCPT, DATA and text go to the server, all but the final "." - which is
   the hand-over, sent once the commit is done (a connection closed before it drops the
   message); a webhook's request is built and POSTed once the commit is done. Every outcome
   is written ``WHERE claim_token = <ours>``: a worker that lost its claim writes nothing.
   The lease is renewed while the batch runs, and no row is handed over unless at least half
   a lease remains - which outlasts one hand-over, because the lease is at least ten times
   ``MAIL_TIMEOUT`` and ``WEBHOOK_TIMEOUT``.
3. **A killed worker.** Its rows stay ``sending`` until the lease ends; then any worker (the
   restarted one or another) releases them (``release_expired``). Because of (2), of the rows
   one claim left ``sending`` **only the first one (the lowest id) can have been in the SMTP or
   HTTP server's hands**; the others were certainly never handed over and simply go back to
   ``pending``: **nothing claimed is lost, and nothing not yet attempted is sent twice.**
4. **The message in flight at the kill** is the one case nobody can decide afterwards: the
   server may have taken it (its "250 OK" or "200" never reached us) or not (it dropped the
   message with the connection, as aiosmtpd and most MTAs do when the client goes away before
   they answered). We record an ``interrupted`` attempt and **send it again**, with the same
   ``Message-ID: <outbox-ID@domain>`` (webhooks: the same ``X-Portal-Delivery``), so that a
   receiver that did take the first copy can drop the second. We do not hold it for a person:
   they could not find out either (SMTP has no "did you get it?"), so holding it turns a rare,
   recognisable duplicate into a silent loss of a reminder or an HR notice. This is the
   duplicate RFC 1047 describes; the window is from the end of the message to the commit of
   ``sent`` - one round trip and one commit - and only for the message in hand at the kill.
   A hand-over whose answer times out is the same case while the worker lives: it is
   recorded as a failed attempt and tried again later with the same identifier.

So: **each outbox row is handed over at most once, except the single row in flight when its
worker died, which is handed over again with the same identifier.** This holds whether the
worker or the database server stops (outcomes are committed synchronously, as PostgreSQL
does by default, before the next hand-over). What is *not* guaranteed:
a worker frozen (SIGSTOP, a suspended VM) for longer than a lease, or clocks of worker
machines apart by more than a fraction of the lease, can let a second worker take a row the
first still sends; keep ``OUTBOX_LEASE_SECONDS`` well above both.

Failures: an SMTP 5xx reply, a webhook 4xx (other than 408 and 429) or a disabled endpoint
fails the row at once (``failed``); anything else (4xx SMTP replies, timeouts, refused
connections, HTTP 5xx) puts it back to ``pending`` after ``OUTBOX_RETRY_SECONDS * 2 **
(attempts - 1)`` until ``OUTBOX_MAX_ATTEMPTS``. Every attempt is a row of ``outbox_attempts``
(when, how long, outcome, error); the row keeps the last error. Failed rows are retried by
hand (the failures page, ``flask worker retry ID``), which starts a fresh count of attempts.

Audit: every outcome (sent, retry scheduled, failed, interrupted) and every retry by hand is
an audit event. Claiming and releasing untouched rows are a worker's lease, not a change of
the message, and are kept on the row (token, lease) rather than in the audit chain.
"""
from __future__ import annotations

import contextvars
import enum
import functools
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import (
    ForeignKey,
    Index,
    String,
    Text,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.audit import record
from portal.core.db import Base, CreatedAtMixin, enum_column, utcnow
from portal.core.errors import ServiceError
from portal.core.transports import DeliveryError, SmtpSession, WebhookTargets
from portal.extensions import db


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"    # waiting for its time (``next_attempt_at``)
    SENDING = "sending"    # claimed by a worker until ``lease_until``
    SENT = "sent"
    FAILED = "failed"      # given up: a permanent refusal or OUTBOX_MAX_ATTEMPTS reached


class OutboxChannel(enum.StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class AttemptOutcome(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"              # a temporary failure: tried again after a back-off
    FAILED = "failed"            # a permanent failure, or the last attempt allowed
    INTERRUPTED = "interrupted"  # the worker stopped while this message was in its hands


class OutboxMessage(CreatedAtMixin, Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[OutboxChannel] = mapped_column(
        enum_column(OutboxChannel), default=OutboxChannel.EMAIL, server_default="email")
    # who it is addressed to (their notification history); None for webhooks
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # webhooks: the endpoint (its URL and secret are read when delivering) and the event
    endpoint_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_endpoints.id"),
                                                    index=True)
    event: Mapped[str] = mapped_column(String(80), default="", server_default="")
    to_addr: Mapped[str] = mapped_column(String(254))  # an email address, or the endpoint name
    subject: Mapped[str] = mapped_column(String(300))  # a webhook's event name
    body: Mapped[str] = mapped_column(Text)            # a webhook's JSON body, as signed
    status: Mapped[OutboxStatus] = mapped_column(enum_column(OutboxStatus),
                                                 default=OutboxStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # the claim of a worker: which claim (one per batch) and until when
    claim_token: Mapped[str | None] = mapped_column(String(40), index=True)
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None]

    @property
    def message_id(self) -> str:
        """The email's Message-ID (and a webhook's X-Portal-Delivery): the same on every try."""
        domain = current_app.config["MAIL_FROM"].rpartition("@")[2] or "portal"
        return f"<outbox-{self.id}@{domain}>"


class DeliveryAttempt(Base):
    """One try at handing a message over: when, how long, what came of it."""

    __tablename__ = "outbox_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox_messages.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[int] = mapped_column(default=0)
    outcome: Mapped[AttemptOutcome] = mapped_column(enum_column(AttemptOutcome))
    error: Mapped[str] = mapped_column(Text, default="")
    worker: Mapped[str] = mapped_column(String(80), default="")


def enqueue(*, key: str, to: str, subject: str, body: str, user_id: int | None = None,
            channel: OutboxChannel = OutboxChannel.EMAIL, endpoint_id: int | None = None,
            event: str = "") -> OutboxMessage | None:
    """Add a message to the caller's transaction; ``None`` if ``key`` was queued before."""
    if db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key)):
        return None
    msg = OutboxMessage(key=key, channel=channel, to_addr=to[:254], subject=subject[:300],
                        body=body, user_id=user_id, endpoint_id=endpoint_id, event=event,
                        next_attempt_at=utcnow())
    db.session.add(msg)
    return msg


# --- delivery ------------------------------------------------------------------------------

@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0      # rows of a stopped worker put back to pending (lease ended)
    interrupted: int = 0   # of those, the one each stopped worker had in its hands


@dataclass
class Claimed:
    """A claimed row as plain data (no ORM object to reload after each commit)."""

    __tablename__ = "outbox_messages"  # what ``audit.record`` names the object by

    id: int
    key: str
    channel: OutboxChannel
    to_addr: str
    subject: str
    body: str
    attempts: int
    created_at: datetime
    endpoint_id: int | None
    event: str


@dataclass
class MessageRef:
    """An outbox row named by id, for ``audit.record`` without loading the row."""

    __tablename__ = "outbox_messages"
    id: int


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:80]


def lease_seconds() -> float:
    """The lease of a claim: the setting, but never under ten times the longest time one
    hand-over may wait for a server (so half a lease always outlasts a hand-over)."""
    cfg = current_app.config
    longest = max(float(cfg["MAIL_TIMEOUT"]), float(cfg.get("WEBHOOK_TIMEOUT", 10)))
    return max(float(cfg.get("OUTBOX_LEASE_SECONDS", 300)), 10 * longest)


def _is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _attempt(row, outcome: AttemptOutcome, *, started: datetime, ms: int, error: str,
             worker: str) -> None:
    db.session.add(DeliveryAttempt(message_id=row.id, started_at=started, duration_ms=ms,
                                   outcome=outcome, error=error[:2000], worker=worker))


def release_expired(worker: str | None = None) -> DeliveryReport:
    """Put the rows of claims whose lease ended back to ``pending``; the first row of each
    claim may have been in flight and gets an ``interrupted`` attempt (see the module doc)."""
    report = DeliveryReport()
    worker = worker or worker_name()
    now = utcnow()
    q = (select(OutboxMessage.id, OutboxMessage.claim_token, OutboxMessage.attempts,
                OutboxMessage.key)
         .where(OutboxMessage.status == OutboxStatus.SENDING,
                OutboxMessage.lease_until < now)
         .order_by(OutboxMessage.id))
    if _is_postgresql():
        q = q.with_for_update(skip_locked=True)
    rows = db.session.execute(q).all()
    seen: set[str | None] = set()
    max_attempts = current_app.config["OUTBOX_MAX_ATTEMPTS"]
    for row in rows:
        in_doubt = row.claim_token not in seen
        seen.add(row.claim_token)
        values = {"status": OutboxStatus.PENDING,
                  "claim_token": None,  # nosec B105  # a worker's claim, not a secret
                  "lease_until": None, "next_attempt_at": now}
        if in_doubt:
            error = ("the worker stopped while delivering this message (its lease ended); it "
                     "may have arrived: sent again with the same Message-ID / delivery id")
            attempts = row.attempts + 1
            values.update(attempts=attempts, last_error=error)
            if attempts >= max_attempts:
                values["status"] = OutboxStatus.FAILED
            _attempt(row, AttemptOutcome.INTERRUPTED, started=now, ms=0, error=error,
                     worker=worker)
            report.interrupted += 1
        db.session.execute(update(OutboxMessage).where(
            OutboxMessage.id == row.id, OutboxMessage.claim_token == row.claim_token,
            OutboxMessage.status == OutboxStatus.SENDING).values(**values))
        if in_doubt:
            record("outbox.interrupted", MessageRef(row.id), after={
                "key": row.key, "attempts": values["attempts"],
                "status": values["status"], "error": values["last_error"]})
        report.released += 1
    db.session.commit()
    return report


_CLAIMED_COLUMNS = (OutboxMessage.id, OutboxMessage.key, OutboxMessage.channel,
                    OutboxMessage.to_addr, OutboxMessage.subject, OutboxMessage.body,
                    OutboxMessage.attempts, OutboxMessage.created_at,
                    OutboxMessage.endpoint_id, OutboxMessage.event)


@dataclass
class _Claim:
    token: str
    worker: str
    lease: float
    until: datetime
    rows: list[Claimed] = field(default_factory=list)


def _claim(limit: int, worker: str) -> _Claim:
    now = utcnow()
    lease = lease_seconds()
    claim = _Claim(uuid.uuid4().hex, worker, lease, now + timedelta(seconds=lease))
    q = (select(OutboxMessage.id)
         .where(OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at <= now)
         .order_by(OutboxMessage.id).limit(limit))
    if _is_postgresql():
        q = q.with_for_update(skip_locked=True)
    ids = db.session.scalars(q).all()
    if ids:
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.SENDING, claim_token=claim.token,
                    lease_until=claim.until),
            execution_options={"synchronize_session": False})
        claim.rows = [Claimed(*r) for r in db.session.execute(
            select(*_CLAIMED_COLUMNS).where(OutboxMessage.claim_token == claim.token)
            .order_by(OutboxMessage.id))]
    db.session.commit()
    return claim


def _renew_lease(claim: _Claim, remaining: int) -> bool:
    """Renew the claim's lease when half of it is gone (in the caller's transaction); False if
    rows were taken from us (our lease ended and another worker released them)."""
    now = utcnow()
    if (claim.until - now).total_seconds() > claim.lease / 2:
        return True
    until = now + timedelta(seconds=claim.lease)
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.claim_token == claim.token,
               OutboxMessage.status == OutboxStatus.SENDING)
        .values(lease_until=until), execution_options={"synchronize_session": False})
    claim.until = until
    return result.rowcount == remaining


@functools.cache
def _outcome_statement():
    """The one UPDATE that writes an outcome (built once: the worker runs it per message)."""
    column = OutboxMessage.__table__.c
    return (update(OutboxMessage)
            .where(OutboxMessage.id == bindparam("m_id"),
                   OutboxMessage.claim_token == bindparam("m_token"))
            .values(status=bindparam("m_status", type_=column.status.type),
                    attempts=bindparam("m_attempts"), last_error=bindparam("m_error"),
                    next_attempt_at=func.coalesce(
                        bindparam("m_next", type_=column.next_attempt_at.type),
                        OutboxMessage.next_attempt_at),
                    sent_at=bindparam("m_sent", type_=column.sent_at.type),
                    claim_token=None, lease_until=None)
            .execution_options(synchronize_session=False))


def _settle(claim: _Claim, row: Claimed, *, started: datetime, ms: int,
            error: DeliveryError | None, report: DeliveryReport) -> bool:
    """Write one row's outcome, its attempt and its audit event (not committed here); False
    if the row is no longer ours."""
    cfg = current_app.config
    attempts = row.attempts + 1
    if error is None:
        values = {"status": OutboxStatus.SENT, "sent_at": utcnow(), "last_error": ""}
        outcome, action, text = AttemptOutcome.SENT, "outbox.sent", ""
    else:
        text = str(error)[:2000]
        values = {"last_error": text}
        if error.permanent or attempts >= cfg["OUTBOX_MAX_ATTEMPTS"]:
            values["status"] = OutboxStatus.FAILED
            outcome, action = AttemptOutcome.FAILED, "outbox.failed"
        else:
            delay = cfg["OUTBOX_RETRY_SECONDS"] * 2 ** (attempts - 1)
            values.update(status=OutboxStatus.PENDING,
                          next_attempt_at=utcnow() + timedelta(seconds=delay))
            outcome, action = AttemptOutcome.RETRY, "outbox.retry_scheduled"
    result = db.session.execute(_outcome_statement(), {
        "m_id": row.id, "m_token": claim.token, "m_status": values["status"],
        "m_attempts": attempts, "m_error": text, "m_next": values.get("next_attempt_at"),
        "m_sent": values.get("sent_at")})
    if result.rowcount != 1:  # our lease ended and the row was released: not ours to write
        current_app.logger.warning("outbox #%s: lease lost before its outcome was written",
                                   row.id)
        return False
    db.session.execute(insert(DeliveryAttempt), {
        "message_id": row.id, "started_at": started, "duration_ms": ms, "outcome": outcome,
        "error": text, "worker": claim.worker})
    after = {"key": row.key, "channel": row.channel, "to": row.to_addr, "attempts": attempts}
    if error is not None:
        after["error"] = text
    if "next_attempt_at" in values:
        after["next_attempt_at"] = values["next_attempt_at"]
    record(action, row, after=after)
    counter = {AttemptOutcome.SENT: "sent", AttemptOutcome.RETRY: "retried",
               AttemptOutcome.FAILED: "failed"}[outcome]
    setattr(report, counter, getattr(report, counter) + 1)
    return True


class _Recorder:
    """Commits the outcomes of one claim, in order, in a thread of its own (own app context,
    own session and connection): the commit of one message runs while the next one is made
    ready, and the next is handed over only once that commit is done (``ready``). At most one
    outcome is ever waiting. It also renews the claim's lease."""

    def __init__(self, claim: _Claim, report: DeliveryReport):
        self.claim, self.report = claim, report
        self.settled = 0
        self.lost = False                      # rows of the claim were taken from us
        self.failure: BaseException | None = None
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        context = contextvars.copy_context()  # the same clock (frozen in tests), same actor
        self._thread = threading.Thread(target=context.run, daemon=True, name="outbox-recorder",
                                        args=(self._run, current_app._get_current_object()))
        self._thread.start()

    def _run(self, app) -> None:
        with app.app_context():
            try:
                while (job := self._jobs.get()) is not None:
                    try:
                        if job:
                            row, started, ms, error = job
                            if not _settle(self.claim, row, started=started, ms=ms,
                                           error=error, report=self.report):
                                self.lost = True
                            self.settled += 1
                        if not _renew_lease(self.claim, len(self.claim.rows) - self.settled):
                            self.lost = True
                        db.session.commit()
                    except BaseException as exc:  # noqa: BLE001  (reported to the caller)
                        db.session.rollback()
                        self.failure = exc
                    finally:
                        self._idle.set()
            finally:
                db.session.remove()

    def submit(self, row: Claimed, started: datetime, ms: int,
               error: DeliveryError | None) -> None:
        self._idle.clear()
        self._jobs.put((row, started, ms, error))

    def ready(self) -> bool:
        """Wait for the outcome before to be committed; renew the lease if half of it is
        gone. True if the next message may be handed over."""
        self._idle.wait()
        if self.failure is None and not self.lost and (
                self.claim.until - utcnow()).total_seconds() <= self.claim.lease / 2:
            self._idle.clear()
            self._jobs.put(())  # renew only
            self._idle.wait()
        return self.failure is None and not self.lost

    def close(self) -> None:
        self._idle.wait()
        self._jobs.put(None)
        self._thread.join()


def _give_back(claim: _Claim) -> int:
    """Put the claim's rows not handed over back to ``pending`` (a worker asked to stop)."""
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.claim_token == claim.token,
               OutboxMessage.status == OutboxStatus.SENDING)
        .values(status=OutboxStatus.PENDING, claim_token=None, lease_until=None),
        execution_options={"synchronize_session": False})
    db.session.commit()
    return result.rowcount


def deliver_pending(limit: int = 200, *, worker: str | None = None,
                    stop: Callable[[], bool] | None = None) -> DeliveryReport:
    """Release ended leases, claim up to ``limit`` due messages and hand them over in id
    order, each outcome committed before the next hand-over (this is the worker, not a
    request). See the module doc.

    Each message is first made ready without being handed over (an email: MAIL, RCPT, DATA
    and its text, all but the final "."; a webhook: its signed request) while the outcome of
    the one before is committed; then, once that commit is done, handed over (the final ".",
    the POST). ``stop()`` is asked before each message: once it says yes, the rest of the
    claim is given back at once (none of it was handed over) and the call returns."""
    worker = worker or worker_name()
    report = release_expired(worker)
    claim = _claim(limit, worker)
    if not claim.rows:
        return report
    transports = {OutboxChannel.EMAIL: SmtpSession(), OutboxChannel.WEBHOOK: WebhookTargets(
        {r.endpoint_id for r in claim.rows if r.channel is OutboxChannel.WEBHOOK})}
    db.session.commit()  # this thread keeps no transaction open while the recorder writes
    recorder = _Recorder(claim, report)
    stopped = False
    try:
        for row in claim.rows:
            if stop is not None and stop():
                stopped = True
                break
            transport = transports[row.channel]
            started, t0 = utcnow(), time.perf_counter()
            error, handle = None, None
            try:
                handle = transport.prepare(row)
            except DeliveryError as exc:
                error = exc
            ready_at = time.perf_counter()
            if not recorder.ready():
                transport.abandon()  # an email made ready is dropped with the connection
                current_app.logger.warning("outbox: claim %s stopped (lease lost or a "
                                           "database error)", claim.token)
                break
            waited = time.perf_counter() - ready_at
            if error is None:
                try:
                    transport.hand_over(handle)
                except DeliveryError as exc:
                    error = exc
            ms = int((time.perf_counter() - t0 - waited) * 1000)
            recorder.submit(row, started, ms, error)
    finally:
        recorder.close()
        for transport in transports.values():
            transport.close()
    if recorder.failure is not None:
        raise recorder.failure
    if stopped:
        report.released += _give_back(claim)
    return report


# --- by hand, and what the pages and `flask worker status` show ------------------------------

RETRYABLE = (OutboxStatus.FAILED,)


def stuck_condition():
    """Rows whose worker stopped: ``sending`` with their lease ended (the next worker round
    releases them)."""
    return (OutboxMessage.status == OutboxStatus.SENDING) & (OutboxMessage.lease_until
                                                             < utcnow())


def retry(msg: OutboxMessage) -> None:
    """Put a failed (or stuck) message back in the queue now, with a fresh count of
    attempts; audited with who did it. The caller commits."""
    stuck = (msg.status is OutboxStatus.SENDING and msg.lease_until is not None
             and msg.lease_until < utcnow())
    if msg.status not in RETRYABLE and not stuck:
        raise ServiceError(_("Only a message that failed or whose worker stopped can be "
                             "retried."))
    before = {"status": msg.status, "attempts": msg.attempts, "error": msg.last_error}
    msg.status = OutboxStatus.PENDING
    msg.attempts = 0
    msg.next_attempt_at = utcnow()
    msg.claim_token = None
    msg.lease_until = None
    record("outbox.retried_by_hand", msg, before=before,
           after={"key": msg.key, "status": msg.status})


def status_counts() -> dict[str, int]:
    rows = db.session.execute(select(OutboxMessage.status, func.count())
                              .group_by(OutboxMessage.status)).all()
    return {str(s): n for s, n in rows}


def counts_by_channel() -> dict[tuple[str, str], int]:
    rows = db.session.execute(select(OutboxMessage.channel, OutboxMessage.status, func.count())
                              .group_by(OutboxMessage.channel, OutboxMessage.status)).all()
    return {(str(c), str(s)): n for c, s, n in rows}


def attempts_of(ids: Iterable[int]) -> dict[int, list[DeliveryAttempt]]:
    ids = list(ids)
    out: dict[int, list[DeliveryAttempt]] = {i: [] for i in ids}
    if ids:
        for a in db.session.scalars(select(DeliveryAttempt)
                                    .where(DeliveryAttempt.message_id.in_(ids))
                                    .order_by(DeliveryAttempt.id)):
            out[a.message_id].append(a)
    return out
