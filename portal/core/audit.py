"""The audit chain: an append-only, hash-chained record of every state change.

Each event stores who did what to which object, the object's state before and after, and
``hash = sha256(prev_hash + canonical JSON of the event)``. Changing, removing or reordering any
stored event breaks every hash after it, which ``verify_chain`` (``flask --app wsgi audit
verify``) reports. Services call ``record`` inside the transaction of the change itself, so an
action and its audit event are committed together or not at all.
"""
from __future__ import annotations

import enum
import hashlib
import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from flask import has_request_context, request
from sqlalchemy import String, Text, event, select, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import Base, UTCDateTime, utcnow
from portal.extensions import db

GENESIS = "0" * 64
_CHAIN_LOCK_KEY = 740_211  # PostgreSQL advisory lock id serialising appends to the chain


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor_id: Mapped[int | None]
    actor_name: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(80), index=True)
    object_type: Mapped[str] = mapped_column(String(60))
    object_id: Mapped[str] = mapped_column(String(60))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    def payload(self) -> dict:
        return {name: getattr(self, name) for name in HASHED_FIELDS}

    def compute_hash(self) -> str:
        return chain_hash(self.prev_hash, self.payload())

    def before_dict(self) -> dict | None:
        return json.loads(self.before) if self.before else None

    def after_dict(self) -> dict | None:
        return json.loads(self.after) if self.after else None


HASHED_FIELDS = ("occurred_at", "actor_id", "actor_name", "action", "object_type", "object_id",
                 "before", "after", "ip")


def chain_hash(prev_hash: str, payload: dict) -> str:
    """sha256 over the previous hash and the canonical JSON of the event's fields."""
    fields = dict(payload)
    fields["occurred_at"] = fields["occurred_at"].isoformat(timespec="microseconds")
    body = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _append_only(mapper, connection, target):
    raise RuntimeError("audit events are append-only")


def _jsonable(value):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"cannot record {type(value).__name__} in an audit event")


def _dump(state: dict | None) -> str | None:
    if state is None:
        return None
    return json.dumps(state, sort_keys=True, ensure_ascii=False, default=_jsonable)


_acting_user: ContextVar = ContextVar("acting_user", default=None)


@contextmanager
def acting_as(user):
    """Name ``user`` as the actor of events recorded outside a web request (CLI, demo data)."""
    token = _acting_user.set(user)
    try:
        yield
    finally:
        _acting_user.reset(token)


def _current_actor():
    from flask_login import current_user

    if has_request_context() and current_user and current_user.is_authenticated:
        return current_user
    return _acting_user.get()


def record(action: str, obj, *, before: dict | None = None, after: dict | None = None,
           actor=None) -> AuditEvent:
    """Append one event for ``action`` on ``obj`` to the chain (in the current transaction)."""
    session = db.session
    session.flush()  # give new objects their ids
    actor = actor or _current_actor()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK_KEY})
    prev = session.execute(
        select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
    ev = AuditEvent(
        occurred_at=utcnow(),
        actor_id=getattr(actor, "id", None),
        actor_name=getattr(actor, "username", None) or "system",
        action=action,
        object_type=getattr(obj, "__tablename__", type(obj).__name__),
        object_id=str(getattr(obj, "id", "")),
        before=_dump(before),
        after=_dump(after),
        ip=request.remote_addr if has_request_context() else None,
        prev_hash=prev or GENESIS,
    )
    ev.hash = ev.compute_hash()
    session.add(ev)
    session.flush()
    return ev


@dataclass
class ChainReport:
    checked: int
    broken_at: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify_chain(batch: int = 5000) -> ChainReport:
    """Walk the chain in id order; report the first event whose hash or link does not hold."""
    columns = [AuditEvent.id, AuditEvent.prev_hash, AuditEvent.hash] + [
        getattr(AuditEvent, name) for name in HASHED_FIELDS]
    prev, checked, last_id = GENESIS, 0, 0
    while True:
        rows = db.session.execute(
            select(*columns).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not rows:
            return ChainReport(checked)
        for row in rows:
            if row.prev_hash != prev:
                return ChainReport(checked, row.id, "link to the previous event does not match")
            payload = {name: getattr(row, name) for name in HASHED_FIELDS}
            if chain_hash(row.prev_hash, payload) != row.hash:
                return ChainReport(checked, row.id, "content does not match its hash")
            prev, checked, last_id = row.hash, checked + 1, row.id
