"""The ticket and volume fields: one list that the CSV/XLSX reader, the JSON API, the CLI, the
OpenAPI document and the README all follow, and the parser that checks one row.

Times: ISO 8601 (``2026-03-02 18:00``, ``2026-03-02T18:00:00+08:00``); a time without an offset
is in the ticket's ``customer_tz`` (default: the portal's zone, Asia/Shanghai). Amounts: yuan with
at most two decimals. Yes/no: ``1``/``0``, ``true``/``false``, ``yes``/``no``, ``Y``/``N``,
``是``/``否``; empty means unknown.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class Field:
    name: str
    kind: str            # text, code, money, time, bool, zone, int, date
    required: bool
    max_len: int
    help: object         # lazy string
    example: str


TICKET_FIELDS = [
    Field("ticket_no", "text", True, 40, _l("Ticket number, unique; importing it again updates "
                                           "the ticket"), "T202603020001"),
    Field("order_no", "text", False, 40, _l("Order number"), "O88001234567"),
    Field("carrier_code", "code", False, 20, _l("Carrier code (a party of kind carrier)"),
          "C001"),
    Field("merchant_code", "code", False, 20, _l("Merchant code"), "M001"),
    Field("warehouse_code", "code", False, 20, _l("Warehouse code"), "W001"),
    Field("category", "text", False, 40, _l("Complaint category"), "delay"),
    Field("order_value", "money", True, 20, _l("Order value in yuan, not negative"), "199.00"),
    Field("opened_at", "time", True, 40, _l("When the ticket was opened"), "2026-03-04 10:30"),
    Field("promised_at", "time", False, 40, _l("Promised delivery time"), "2026-03-02 18:00"),
    Field("delivered_at", "time", False, 40, _l("Actual delivery time (empty: not delivered)"),
          "2026-03-04 09:12"),
    Field("carrier_signed", "bool", False, 5, _l("The carrier reported the package signed for"),
          "1"),
    Field("customer_signed", "bool", False, 5, _l("The customer confirmed signing"), "0"),
    Field("proxy_signed", "bool", False, 5, _l("A proxy signature (代签) was recorded"), "0"),
    Field("cs_request_at", "time", False, 40, _l("When CS sent a request to the party"),
          "2026-03-03 09:00"),
    Field("responded_at", "time", False, 40, _l("When the party answered (empty: no answer)"),
          "2026-03-03 11:01"),
    Field("request_to", "code", False, 20, _l("Code of the party CS asked (default: the "
                                             "carrier)"), ""),
    Field("customer_tz", "zone", False, 40, _l("The customer's time zone (default "
                                              "Asia/Shanghai)"), ""),
    Field("text", "text", False, 4000, _l("What the customer said"), "客户称未收到包裹"),
]

VOLUME_FIELDS = [
    Field("party_code", "code", True, 20, _l("Party code"), "C001"),
    Field("day", "date", True, 10, _l("Day shipped (YYYY-MM-DD, the portal's zone)"),
          "2026-03-02"),
    Field("orders", "int", True, 12, _l("Orders shipped that day (whole number, not negative)"),
          "12500"),
]

TICKET_NAMES = [f.name for f in TICKET_FIELDS]
VOLUME_NAMES = [f.name for f in VOLUME_FIELDS]

def reasons() -> dict[str, str]:
    """The reason codes stored with a rejected row, in the reader's language."""
    from flask_babel import gettext as _

    return {
        "missing_column": _("the column is missing from the file"),
        "required": _("required, but empty"),
        "too_long": _("too long"),
        "unknown_party": _("no party has this code"),
        "wrong_kind": _("this party is not of the expected kind"),
        "bad_time": _("not a date and time (use e.g. 2026-03-02 18:00)"),
        "bad_amount": _("not an amount in yuan (use e.g. 199.00)"),
        "negative": _("must not be negative"),
        "bad_bool": _("not yes/no (use 1/0, true/false, 是/否)"),
        "bad_zone": _("not a time zone (use e.g. Asia/Shanghai)"),
        "bad_int": _("not a whole number"),
        "bad_date": _("not a date (use YYYY-MM-DD)"),
        "duplicate": _("the same ticket number appears earlier in this batch"),
        "response_before_request": _("the answer is earlier than the request"),
        "no_party": _("a ticket needs at least a carrier, merchant or warehouse code"),
        "bad_row": _("the row has a different number of columns than the header"),
        "not_object": _("each ticket must be a JSON object"),
        "nul_character": _("contains the NUL character (U+0000), which text cannot hold"),
    }


class RowError(Exception):
    def __init__(self, field: str, reason: str, value: str = ""):
        super().__init__(reason)
        self.field, self.reason, self.value = field, reason, (value or "")[:200]


_BOOLS = {"1": True, "0": False, "true": True, "false": False, "yes": True, "no": False,
          "y": True, "n": False, "是": True, "否": False, "t": True, "f": False}
_MONEY_RE = re.compile(r"^\d{1,10}(\.\d{1,2})?$")
_zones: dict[str, ZoneInfo | None] = {}


def _zone(name: str) -> ZoneInfo | None:
    if name not in _zones:
        try:
            _zones[name] = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            _zones[name] = None
    return _zones[name]


def parse_time(text: str, tz: ZoneInfo) -> datetime:
    """A local time without an offset is read in ``tz`` as PostgreSQL reads it, so both import
    paths agree: a time in the hour repeated when clocks go back is the later one (standard
    time), a time in the hour skipped when they go forward takes the offset before the jump."""
    value = datetime.fromisoformat(text.replace("/", "-"))
    if value.tzinfo is None:
        first, later = value.replace(tzinfo=tz), value.replace(tzinfo=tz, fold=1)
        value = first
        if first.utcoffset() != later.utcoffset():
            round_trip = later.astimezone(UTC).astimezone(tz).replace(tzinfo=None, fold=0)
            if round_trip == value.replace(tzinfo=None):   # repeated, not skipped
                value = later
    return value.astimezone(UTC)


class Parties:
    """Party codes -> (id, kind), loaded once per import."""

    def __init__(self, session):
        from sqlalchemy import select

        from portal.parties.models import Party

        self.by_code = {code: (pid, kind.value) for pid, code, kind in session.execute(
            select(Party.id, Party.code, Party.kind))}

    def id_of(self, name: str, code: str, kind: str | None) -> int | None:
        if not code:
            return None
        found = self.by_code.get(code)
        if found is None:
            raise RowError(name, "unknown_party", code)
        if kind is not None and found[1] != kind:
            raise RowError(name, "wrong_kind", code)
        return found[0]


_CODE_KIND = {"carrier_code": "carrier", "merchant_code": "merchant",
              "warehouse_code": "warehouse", "request_to": None}


def parse_ticket(raw: dict, parties: Parties, default_tz: ZoneInfo,
                 captured_at: datetime) -> dict:
    """Check one ticket given as strings (or JSON values); return the row to store, with the
    engine's facts derived. Raises ``RowError`` naming the first field at fault."""
    get = {}
    for f in TICKET_FIELDS:
        value = raw.get(f.name)
        value = "" if value is None else (str(value) if not isinstance(value, str) else value)
        value = value.strip()
        if "\x00" in value:
            raise RowError(f.name, "nul_character")
        if not value and f.required:
            raise RowError(f.name, "required")
        if len(value) > f.max_len:
            raise RowError(f.name, "too_long", value)
        get[f.name] = value
    tz = default_tz
    if get["customer_tz"]:
        tz = _zone(get["customer_tz"])
        if tz is None:
            raise RowError("customer_tz", "bad_zone", get["customer_tz"])
    row = {"ticket_no": get["ticket_no"], "order_no": get["order_no"],
           "category": get["category"], "text": get["text"], "customer_tz": get["customer_tz"]}
    for name, kind in _CODE_KIND.items():
        key = "request_to_id" if name == "request_to" else name.replace("_code", "_id")
        row[key] = parties.id_of(name, get[name], kind)
    if not (row["carrier_id"] or row["merchant_id"] or row["warehouse_id"]):
        raise RowError("carrier_code", "no_party")
    amount = get["order_value"].replace(",", "")
    if amount.startswith("-"):
        raise RowError("order_value", "negative", get["order_value"])
    if not _MONEY_RE.match(amount):
        raise RowError("order_value", "bad_amount", get["order_value"])
    row["order_value"] = Decimal(amount).quantize(Decimal("0.01"))
    for name in ("opened_at", "promised_at", "delivered_at", "cs_request_at", "responded_at"):
        text = get[name]
        if not text:
            row[name] = None
            continue
        try:
            row[name] = parse_time(text, tz)
        except ValueError:
            raise RowError(name, "bad_time", text) from None
    for name in ("carrier_signed", "customer_signed", "proxy_signed"):
        text = get[name].lower()
        if text and text not in _BOOLS:
            raise RowError(name, "bad_bool", get[name])
        row[name] = _BOOLS.get(text)
    if row["responded_at"] and row["cs_request_at"] and row["responded_at"] < row["cs_request_at"]:
        raise RowError("responded_at", "response_before_request", get["responded_at"])
    row.update(derive(row, tz, captured_at))
    return row


def derive(row: dict, tz: ZoneInfo, captured_at: datetime) -> dict:
    """The facts the engine reads: days late by calendar day in the customer's zone (delivered
    on or before the promised day: 0; not delivered: unknown), and seconds to answer a CS
    request (unanswered: up to the time the ticket was captured)."""
    days_late = None
    if row["promised_at"] and row["delivered_at"]:
        promised = row["promised_at"].astimezone(tz).date()
        delivered = row["delivered_at"].astimezone(tz).date()
        days_late = max(0, (delivered - promised).days)
    seconds = None
    if row["cs_request_at"]:
        end = row["responded_at"] or captured_at
        seconds = max(0, int((end - row["cs_request_at"]).total_seconds()))
    return {"days_late": days_late, "response_seconds": seconds, "captured_at": captured_at}


def parse_volume(raw: dict, parties: Parties) -> dict:
    from datetime import date

    get = {}
    for f in VOLUME_FIELDS:
        value = raw.get(f.name)
        value = "" if value is None else str(value).strip()
        if not value:
            raise RowError(f.name, "required")
        get[f.name] = value
    party_id = parties.id_of("party_code", get["party_code"], None)
    try:
        day = date.fromisoformat(get["day"])
    except ValueError:
        raise RowError("day", "bad_date", get["day"]) from None
    try:
        orders = int(get["orders"].replace(",", ""))
    except ValueError:
        raise RowError("orders", "bad_int", get["orders"]) from None
    if orders < 0:
        raise RowError("orders", "negative", get["orders"])
    return {"party_id": party_id, "day": day, "orders": orders}
