"""Escalating notices HR leaves unacknowledged (升级催办), run by each worker round.

A notice still *new* ``HR_ESCALATE_WORKING_DAYS`` working days after it was sent (or last
amended) is escalated once: marked, audited, and HR officers and CS supervisors are emailed.

Working days are Monday to Friday in the portal's time zone, less the dates in
``HR_HOLIDAYS``. They are counted as whole days of working time from the moment the notice was
sent: sent on Friday 15:00 with 2 working days, it is due on Tuesday 15:00; sent on a
Saturday (or a holiday) the count starts at 00:00 on the next working day. The setting is
read at each round, so changing it (or adding a holiday) applies to notices already waiting.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from portal.config import parse_holidays
from portal.core.db import utcnow
from portal.core.timeutil import zone
from portal.extensions import db
from portal.hr.models import HrNotice, NoticeStatus


def is_working_day(day: date, holidays: frozenset[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def escalation_due(sent_at: datetime, working_days: int, tz, holidays: frozenset[date]
                   ) -> datetime:
    """The instant (UTC) a notice sent at ``sent_at`` has waited ``working_days``."""
    local = sent_at.astimezone(tz)
    day, clock = local.date(), local.timetz().replace(tzinfo=None)
    if not is_working_day(day, holidays):
        while not is_working_day(day, holidays):
            day += timedelta(days=1)
        clock = clock.replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(working_days):
        day += timedelta(days=1)
        while not is_working_day(day, holidays):
            day += timedelta(days=1)
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def settings() -> tuple[int, object, frozenset[date]]:
    cfg = current_app.config
    return (int(cfg["HR_ESCALATE_WORKING_DAYS"]), zone(cfg["PORTAL_DEFAULT_TIMEZONE"]),
            frozenset(parse_holidays(cfg.get("HR_HOLIDAYS", ""))))


def due_at(notice: HrNotice) -> datetime | None:
    """When ``notice`` will be (or was) overdue for acknowledgement; None if escalation is off."""
    days, tz, holidays = settings()
    return escalation_due(notice.sent_at, days, tz, holidays) if days > 0 else None


def escalate_overdue() -> int:
    """Escalate every notice overdue now; each only once. Returns how many. Caller commits."""
    from portal.hr.services import escalate

    days, tz, holidays = settings()
    if days <= 0:
        return 0
    q = select(HrNotice).where(HrNotice.status == NoticeStatus.NEW,
                               HrNotice.escalated_at.is_(None)).order_by(HrNotice.id)
    if db.session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)   # two workers never escalate one notice
    now = utcnow()
    done = 0
    for notice in db.session.scalars(q).all():
        if now >= escalation_due(notice.sent_at, days, tz, holidays):
            escalate(notice, days)
            done += 1
    return done
