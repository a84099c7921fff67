"""Reading a list page's filters from its query string.

A value that cannot be read is dropped (the list shows unfiltered on that point) and its
message is put in ``errors`` under the parameter's name, so the page can say it beside the box.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from portal.core.money import MoneyError, to_money
from portal.core.timeutil import local_day_bounds_utc
from portal.parties.models import PartyKind


def party_kind(args, errors: dict, name: str = "kind") -> PartyKind | None:
    raw = args.get(name, "")
    if not raw:
        return None
    try:
        return PartyKind(raw)
    except ValueError:
        errors[name] = _("Unknown kind of party.")
        return None


def text(args, name: str, limit: int = 120) -> str:
    return args.get(name, "").strip()[:limit]


def clause(args, errors: dict, name: str = "clause") -> tuple[int | None, str]:
    """``standard_id:clause_number`` as chosen from a clause list."""
    raw = args.get(name, "")
    if not raw:
        return None, ""
    sid, _sep, number = raw.partition(":")
    if sid.isdigit() and number:
        return int(sid), number[:20]
    errors[name] = _("Choose a clause from the list.")
    return None, ""


def amount(args, errors: dict, name: str) -> Decimal | None:
    raw = args.get(name, "").strip()
    if not raw:
        return None
    try:
        value = to_money(raw)
        if value < 0:
            raise MoneyError(raw)
        return value
    except MoneyError:
        errors[name] = _("Enter an amount in yuan, e.g. 100 or 99.50.")
        return None


def whole_number(args, errors: dict, name: str, lo: int, hi: int, message: str = ""
                 ) -> int | None:
    raw = args.get(name, "").strip()
    if not raw:
        return None
    if raw.isdigit() and lo <= int(raw) <= hi:
        return int(raw)
    errors[name] = message or _("Enter a whole number from %(lo)d to %(hi)d.", lo=lo, hi=hi)
    return None


def local_day(args, errors: dict, name: str, tz: ZoneInfo, *, end: bool = False
              ) -> datetime | None:
    """A calendar day (YYYY-MM-DD) in ``tz`` as the UTC instant it starts (or, with ``end``,
    ends)."""
    raw = args.get(name, "").strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        errors[name] = _("Enter a date as YYYY-MM-DD, e.g. 2026-11-01.")
        return None
    lo, hi = local_day_bounds_utc(day, day, tz)
    return hi if end else lo


def month(args, errors: dict, name: str, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    """A calendar month (YYYY-MM) in ``tz`` as its UTC bounds."""
    raw = args.get(name, "").strip()
    if not raw:
        return None
    try:
        first = date.fromisoformat(raw + "-01")
    except ValueError:
        errors[name] = _("Enter a month as YYYY-MM, e.g. 2026-11.")
        return None
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return local_day_bounds_utc(first, following - timedelta(days=1), tz)
