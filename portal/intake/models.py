"""Complaint intake (投诉工单): tickets, shipment volumes, import batches and their rejected rows,
follow-up of late shipments (跟单), and the API tokens integrations import with.

A ticket's key is its ticket number from the ticketing system: importing the same number again
updates that ticket. Besides what was imported, a ticket keeps the facts the rule engine reads,
computed once at import (days late by calendar day in the customer's zone, seconds to answer a
CS request), so that evaluating a million tickets is one set-based query.
"""
from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.cases.models import Violation
from portal.core.db import Base, CreatedAtMixin, enum_column


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        # the follow-up queue: promised, not delivered (a small share of all tickets)
        Index("ix_tickets_undelivered", "carrier_id", "promised_at",
              postgresql_where=text("delivered_at IS NULL"),
              sqlite_where=text("delivered_at IS NULL")),
    )

    ticket_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    # not indexed: the lookups by order go through violations.order_no (a copy the rule
    # engine keeps); an index of a million random order numbers doubled the time to store them
    order_no: Mapped[str] = mapped_column(String(40), default="")
    # Party ids without a FOREIGN KEY constraint, deliberately: the importer resolves every
    # code to an existing party (a row with an unknown code is rejected), parties are never
    # deleted (only deactivated), and the constraint's per-row check doubled the time to store
    # a million tickets (measured: 19.6 s against 9.3 s for the same COPY). Violations, the
    # records money hangs on, keep theirs.
    carrier_id: Mapped[int | None]
    merchant_id: Mapped[int | None]
    warehouse_id: Mapped[int | None]
    request_to_id: Mapped[int | None]
    category: Mapped[str] = mapped_column(String(40), default="")
    order_value: Mapped[Decimal]
    opened_at: Mapped[datetime]
    promised_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    carrier_signed: Mapped[bool | None]
    customer_signed: Mapped[bool | None]
    proxy_signed: Mapped[bool | None]
    cs_request_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    customer_tz: Mapped[str] = mapped_column(String(40), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    # derived at import, read by the rule engine
    days_late: Mapped[int | None]          # None: not delivered (or nothing promised)
    response_seconds: Mapped[int | None]   # None: no CS request; unanswered: up to captured_at
    captured_at: Mapped[datetime]          # when this content was imported
    batch_id: Mapped[int | None]           # the import that last wrote it (no constraint either)

    carrier = relationship("Party", primaryjoin="foreign(Ticket.carrier_id) == Party.id",
                           viewonly=True)
    merchant = relationship("Party", primaryjoin="foreign(Ticket.merchant_id) == Party.id",
                            viewonly=True)
    warehouse = relationship("Party", primaryjoin="foreign(Ticket.warehouse_id) == Party.id",
                             viewonly=True)
    request_to = relationship("Party", primaryjoin="foreign(Ticket.request_to_id) == Party.id",
                              viewonly=True)

    def snapshot(self) -> dict:
        return {"ticket_no": self.ticket_no, "order_no": self.order_no}


class BatchKind(enum.StrEnum):
    TICKETS = "tickets"
    VOLUMES = "volumes"


class BatchSource(enum.StrEnum):
    UPLOAD = "upload"
    API = "api"
    CLI = "cli"


class BatchStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportBatch(CreatedAtMixin, Base):
    """One import of tickets or volumes, whatever it came through, with its counts."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[BatchKind] = mapped_column(enum_column(BatchKind))
    source: Mapped[BatchSource] = mapped_column(enum_column(BatchSource))
    filename: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[BatchStatus] = mapped_column(enum_column(BatchStatus),
                                                default=BatchStatus.QUEUED)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    rows_total: Mapped[int] = mapped_column(default=0)      # rows read so far (progress)
    size_bytes: Mapped[int] = mapped_column(default=0)
    bytes_read: Mapped[int] = mapped_column(default=0)      # progress of an upload
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    violations: Mapped[int] = mapped_column(default=0)      # proposed or revised by this import
    error: Mapped[str] = mapped_column(Text, default="")

    user = relationship("User")
    rejections: Mapped[list[ImportRejection]] = relationship(
        back_populates="batch", order_by="ImportRejection.line", cascade="all, delete-orphan")

    @property
    def percent(self) -> int:
        if self.status is BatchStatus.DONE:
            return 100
        if not self.size_bytes:
            return 0
        return min(99, int(self.bytes_read * 100 / self.size_bytes))

    def counts(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "rejected": self.rejected}

    def snapshot(self) -> dict:
        return {"kind": self.kind, "source": self.source, "filename": self.filename,
                "status": self.status, **self.counts()}


class ImportRejection(Base):
    """A row an import refused: where, which field, why (a code rendered in the reader's
    language, with the offending value)."""

    __tablename__ = "import_rejections"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batches.id", ondelete="CASCADE"),
                                          index=True)
    line: Mapped[int]
    ticket_no: Mapped[str] = mapped_column(String(40), default="")
    field: Mapped[str] = mapped_column(String(40), default="")
    reason: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(200), default="")

    batch: Mapped[ImportBatch] = relationship(back_populates="rejections")


class ShipmentVolume(Base):
    """Orders a party shipped on one day (its local date): the denominator of complaint rates."""

    __tablename__ = "shipment_volumes"
    __table_args__ = (UniqueConstraint("party_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    day: Mapped[date]
    orders: Mapped[int]
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))

    party = relationship("Party")


class Chase(Base):
    """CS chasing a late shipment before the customer complains (跟单)."""

    __tablename__ = "chases"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_no: Mapped[str] = mapped_column(ForeignKey("tickets.ticket_no"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    chased_at: Mapped[datetime] = mapped_column(index=True)   # "chased today" per carrier
    note: Mapped[str] = mapped_column(Text)

    user = relationship("User")
    ticket: Mapped[Ticket] = relationship()

    def snapshot(self) -> dict:
        return {"ticket_no": self.ticket_no, "note": self.note}


class ApiToken(CreatedAtMixin, Base):
    """A per-integration credential for the JSON API; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(12))          # shown to tell tokens apart
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    created_by = relationship("User", foreign_keys=[created_by_id])
    revoked_by = relationship("User", foreign_keys=[revoked_by_id])

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def snapshot(self) -> dict:
        return {"name": self.name, "prefix": self.prefix, "revoked": self.revoked_at is not None}


# --- the review queue's indexes on violations -----------------------------------------------
# The violations table belongs to cases; these two partial indexes serve only the CS review
# queue (``intake.review``), so they are declared here with the rest of intake's data. They hold
# just the proposals waiting for review, in the queue's two orders (oldest first; most at stake
# first), so a filtered first page reads its 50 rows off an index instead of sorting the queue.
_PROPOSED = text("status = 'proposed'")
Index("ix_violations_proposed_age", Violation.recorded_at, Violation.id,
      postgresql_where=_PROPOSED, sqlite_where=_PROPOSED)
Index("ix_violations_proposed_amount",
      text("(party_fine + customer_compensation) DESC"), Violation.recorded_at, Violation.id,
      postgresql_where=_PROPOSED, sqlite_where=_PROPOSED)
