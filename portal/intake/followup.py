"""The follow-up queue (跟单): shipments past their promised time and not delivered, before any
complaint, listed per carrier with their age, so CS can chase them; ``chase`` records that CS
chased one. The caller commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.timeutil import zone
from portal.extensions import db
from portal.intake.models import Chase, Ticket
from portal.parties.models import Party

PER_PAGE = 50
NOTE_MAX = 500


def _late(t=Ticket, now: datetime | None = None):
    """Past the promised time and not delivered (the partial index ``ix_tickets_undelivered``)."""
    return (t.delivered_at.is_(None), t.promised_at < (now or utcnow()))


@dataclass
class Lateness:
    days: int           # calendar days in the customer's zone, promised day to today
    hours: int          # elapsed hours past the promised time


def lateness(promised_at: datetime, customer_tz: str, now: datetime,
             default_tz: str | None = None) -> Lateness:
    tz = zone(customer_tz or default_tz)
    days = (now.astimezone(tz).date() - promised_at.astimezone(tz).date()).days
    return Lateness(max(0, days), max(0, int((now - promised_at).total_seconds() // 3600)))


@dataclass
class CarrierLate:
    carrier: Party
    late: int
    oldest_promised_at: datetime
    oldest: Lateness
    chased_today: int


def late_by_carrier(day_start: datetime, default_tz: str | None = None) -> list[CarrierLate]:
    """Per carrier: late shipments, the oldest one's lateness, how many were chased since
    ``day_start``. Most late shipments first."""
    now = utcnow()
    oldest = Ticket.__table__.alias("oldest")
    oldest_tz = (select(oldest.c.customer_tz)
                 .where(oldest.c.carrier_id == Ticket.carrier_id, *_late(oldest.c, now))
                 .order_by(oldest.c.promised_at).limit(1).scalar_subquery())
    rows = db.session.execute(
        select(Ticket.carrier_id, func.count().label("late"),
               func.min(Ticket.promised_at).label("oldest"), oldest_tz.label("tz"))
        .where(Ticket.carrier_id.is_not(None), *_late(Ticket, now))
        .group_by(Ticket.carrier_id)).all()
    if not rows:
        return []
    chased = dict(db.session.execute(
        select(Ticket.carrier_id, func.count(func.distinct(Chase.ticket_no)))
        .join(Ticket, Ticket.ticket_no == Chase.ticket_no)
        .where(Chase.chased_at >= day_start, Ticket.carrier_id.is_not(None), *_late(Ticket, now))
        .group_by(Ticket.carrier_id)).all())
    carriers = {p.id: p for p in db.session.scalars(
        select(Party).where(Party.id.in_([r.carrier_id for r in rows])))}
    out = [CarrierLate(carriers[r.carrier_id], r.late, r.oldest,
                       lateness(r.oldest, r.tz, now, default_tz), chased.get(r.carrier_id, 0))
           for r in rows]
    return sorted(out, key=lambda c: (-c.late, c.carrier.code))


@dataclass
class LateShipment:
    ticket: Ticket
    lateness: Lateness
    chases: int = 0
    last_chase: Chase | None = None


def late_shipments_query(carrier_id: int):
    return (select(Ticket).where(Ticket.carrier_id == carrier_id, *_late())
            .order_by(Ticket.promised_at, Ticket.ticket_no))


def late_shipments(carrier_id: int, page: int | None, per_page: int = PER_PAGE,
                   default_tz: str | None = None) -> tuple[list[LateShipment], int]:
    """A carrier's late shipments, oldest promise first, with their last chase; one page, or
    all of them when ``page`` is None. Returns (shipments, how many in all)."""
    now = utcnow()
    q = late_shipments_query(carrier_id)
    if page is not None:
        q = q.offset((page - 1) * per_page).limit(per_page)
    tickets = db.session.scalars(q).all()
    total = len(tickets) if page is None else db.session.scalar(
        select(func.count()).select_from(Ticket).where(Ticket.carrier_id == carrier_id,
                                                       *_late(Ticket, now)))
    late = select(Ticket.ticket_no).where(Ticket.carrier_id == carrier_id, *_late(Ticket, now))
    if page is not None:
        late = [t.ticket_no for t in tickets]
    chases = last_chases(late) if tickets else {}
    return [LateShipment(t, lateness(t.promised_at, t.customer_tz, now, default_tz),
                         *chases.get(t.ticket_no, (0, None)))
            for t in tickets], total


def last_chases(ticket_numbers) -> dict[str, tuple[int, Chase]]:
    """For each ticket chased: how many times, and the last chase (with who chased)."""
    ranked = select(
        Chase.id,
        func.row_number().over(partition_by=Chase.ticket_no,
                               order_by=(Chase.chased_at.desc(), Chase.id.desc())).label("rn"),
        func.count().over(partition_by=Chase.ticket_no).label("n"),
    ).where(Chase.ticket_no.in_(ticket_numbers)).subquery()
    rows = db.session.execute(
        select(Chase, ranked.c.n).join(ranked, ranked.c.id == Chase.id)
        .where(ranked.c.rn == 1).options(selectinload(Chase.user)))
    return {c.ticket_no: (n, c) for c, n in rows}


def chase(ticket: Ticket, note: str, *, user) -> Chase:
    """Record that CS chased the carrier about the late shipment of ``ticket``."""
    note = (note or "").strip()
    if not note:
        raise ServiceError(_("Say what was done (whom you reached, what they promised)."),
                           "note")
    if len(note) > NOTE_MAX:
        raise ServiceError(_("The note may be at most %(n)d characters.", n=NOTE_MAX), "note")
    now = utcnow()
    if ticket.delivered_at is not None:
        raise ServiceError(_("Ticket %(t)s has been delivered meanwhile: nothing to chase.",
                             t=ticket.ticket_no))
    if ticket.promised_at is None or ticket.promised_at >= now:
        raise ServiceError(_("Ticket %(t)s is not past its promised time: nothing to chase "
                             "yet.", t=ticket.ticket_no))
    c = Chase(ticket_no=ticket.ticket_no, user_id=user.id, chased_at=now, note=note)
    db.session.add(c)
    record("ticket.chased", c, after=c.snapshot() | {"carrier_id": ticket.carrier_id})
    return c
