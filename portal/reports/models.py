"""The dashboard's monthly rollup of complaints and orders per party.

Counting a year of a million tickets four ways (carrier, merchant, warehouse, CS request) and a
million days of volumes took over three seconds on PostgreSQL, ten times the dashboard's budget.
So ``reports.metrics`` counts each calendar month once per party into ``ComplaintRollup`` and
reads the sums from there. A month's rows carry the *mark* of the data they were counted from
(``RollupMonth.mark``: the last finished import batch, the latest ticket capture time, the last
volume row); when the data has moved on, the months asked for are counted again, set-based, on
the next read. The rows are a cache: deleting them loses nothing.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import Base
from portal.intake.models import Ticket


class ComplaintRollup(Base):
    """Complaints naming a party and orders it shipped in one calendar month (portal zone)."""

    __tablename__ = "complaint_rollups"

    # no FOREIGN KEY to parties: the rows are a cache, written in bulk, parties never deleted
    party_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    month: Mapped[date] = mapped_column(primary_key=True)    # the month's first day
    complaints: Mapped[int] = mapped_column(default=0)
    orders: Mapped[int] = mapped_column(default=0)


class RollupMonth(Base):
    """A month counted into ``ComplaintRollup``, with the mark of the data it was counted from."""

    __tablename__ = "complaint_rollup_months"

    month: Mapped[date] = mapped_column(primary_key=True)
    mark: Mapped[str] = mapped_column(String(200))
    counted_at: Mapped[datetime]


# the latest capture time is part of the mark: read off an index, not a scan of the tickets
Index("ix_tickets_captured_at", Ticket.captured_at)
