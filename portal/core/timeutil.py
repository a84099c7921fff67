"""Times are stored in UTC and shown in the user's zone."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portal.core.db import _frozen_now, utcnow  # re-exported: the one clock


@contextmanager
def frozen_time(moment: datetime):
    """Pin ``utcnow()`` to ``moment`` (aware) inside the block: demo data and tests."""
    if moment.tzinfo is None:
        raise ValueError("frozen_time needs an aware datetime")
    token = _frozen_now.set(moment.astimezone(UTC))
    try:
        yield
    finally:
        _frozen_now.reset(token)


def zone(name: str | None, default: str = "Asia/Shanghai") -> ZoneInfo:
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


def local_day_bounds_utc(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants bounding the local calendar days ``start`` .. ``end`` inclusive."""
    lo = datetime.combine(start, time.min, tzinfo=tz).astimezone(UTC)
    hi = datetime.combine(end, time.max, tzinfo=tz).astimezone(UTC)
    return lo, hi


def local_today(tz_name: str | None = None) -> date:
    """Today's calendar date in ``tz_name`` (default: the portal's zone), by the one clock."""
    if tz_name is None:
        try:
            from flask import current_app
            tz_name = current_app.config["PORTAL_DEFAULT_TIMEZONE"]
        except (RuntimeError, KeyError):
            tz_name = None
    return utcnow().astimezone(zone(tz_name)).date()
