"""The rule engine: every ticket checked against the penalty rules in force at its incident.

How it works, set-based so that a million tickets are one pass:

1. ``calendar()`` reads the released standard versions and, for each clause that has a check
   (``standards.rules.Check``), makes entries: the check, the clause, the parties its standard
   binds, the UTC interval in which that version was in force (from its effective date to the
   next version's, in the portal's zone), and the amounts, already in Decimal and already
   multiplied for escalation (so SQL only picks values, never does money arithmetic, and SQLite
   and PostgreSQL agree to the fen).
2. ``evaluate()`` joins tickets (or an import's staging table with the same columns) to the
   calendar (a scratch table) by party and incident time, keeps the rows whose facts breach the
   check, counts earlier confirmed violations of the same party and clause in the escalation
   window, and writes one result row per ticket, clause and party.
3. ``apply()`` turns results into proposed violations: new ones are inserted, changed proposals
   are revised, proposals a ticket no longer triggers are removed; confirmed and dismissed
   violations are never touched. Evaluating the same tickets twice changes nothing.

The incident moment of each check: days late, the promised time; false feedback, the time the
carrier reported delivery (else the ticket's opening); response time, the CS request.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import selectinload
from sqlalchemy.sql.expression import FunctionElement

from portal.cases.models import Violation, ViolationSource, ViolationStatus
from portal.core.db import Money, UTCDateTime, utcnow
from portal.core.money import FEN
from portal.core.timeutil import zone
from portal.intake.models import Ticket
from portal.parties.models import Party
from portal.standards.models import RELEASED, Clause, Standard, StandardVersion
from portal.standards.rules import ORDER_VALUE, Check, RuleKind

FOREVER = datetime(9999, 1, 1, tzinfo=UTC)
CHECKS = [c.value for c in Check]


@dataclass
class Entry:
    """One clause of one version, as the engine applies it (one row per tier if tiered)."""

    check: str
    standard_id: int
    clause_id: int
    clause_number: str
    valid_from: datetime
    valid_to: datetime
    party_ids: list[int]
    fine: Decimal = Decimal("0.00")
    points: int = 0
    limit_seconds: int | None = None
    esc_nth: int | None = None
    esc_window_days: int | None = None
    esc_multiplier: Decimal = Decimal(1)
    tiers: list[dict] = field(default_factory=list)


def _day_start(day, tz) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


def escalated(fine: Decimal, multiplier: Decimal) -> Decimal:
    return (fine * multiplier).quantize(FEN, rounding=ROUND_HALF_UP)


def calendar(session, tz_name: str | None = None) -> list[Entry]:
    tz = zone(tz_name)
    versions = session.scalars(
        sa.select(StandardVersion).where(StandardVersion.status.in_(RELEASED))
        .options(selectinload(StandardVersion.standard).selectinload(Standard.audiences),
                 selectinload(StandardVersion.clauses).selectinload(Clause.rules))
        .order_by(StandardVersion.standard_id, StandardVersion.effective_from,
                  StandardVersion.number)).all()
    parties = session.execute(sa.select(Party.id, Party.kind)).all()
    by_standard: dict[int, list[StandardVersion]] = {}
    for v in versions:
        by_standard.setdefault(v.standard_id, []).append(v)
    entries: list[Entry] = []
    for standard_id, chain in by_standard.items():
        standard = chain[0].standard
        kinds, named = set(standard.audience_kinds), standard.audience_party_ids
        party_ids = sorted(pid for pid, kind in parties if kind in kinds or pid in named)
        for i, v in enumerate(chain):
            start = _day_start(v.effective_from, tz)
            end = _day_start(chain[i + 1].effective_from, tz) if i + 1 < len(chain) else FOREVER
            if v.retired_at is not None:
                end = min(end, v.retired_at)
            if end <= start or not party_ids:
                continue
            for clause in v.clauses:
                if clause.check:
                    entries.append(_entry(clause, standard_id, start, end, party_ids))
    return entries


def _entry(clause: Clause, standard_id: int, start, end, party_ids) -> Entry:
    e = Entry(clause.check, standard_id, clause.id, clause.number, start, end, party_ids)
    for rule in clause.rules:
        params = rule.params
        if rule.kind in (RuleKind.FIXED_FINE, RuleKind.TIME_LIMIT):
            e.fine += rule.amount
            if rule.kind is RuleKind.TIME_LIMIT:
                e.limit_seconds = params["limit_minutes"] * 60
        elif rule.kind is RuleKind.POINTS:
            e.points += rule.points or 0
        elif rule.kind is RuleKind.ESCALATION:
            e.esc_nth, e.esc_window_days = params["nth"], params["window_days"]
            e.esc_multiplier = Decimal(params["multiplier"])
        elif rule.kind is RuleKind.TIERED:
            e.tiers = params["tiers"]
    return e


# --- the scratch tables ----------------------------------------------------------------------

def calendar_table(name: str, **kw) -> sa.Table:
    return sa.Table(
        name, sa.MetaData(),
        sa.Column("check", sa.String(20)), sa.Column("standard_id", sa.Integer),
        sa.Column("clause_id", sa.Integer), sa.Column("clause_number", sa.String(20)),
        sa.Column("party_id", sa.Integer), sa.Column("valid_from", UTCDateTime()),
        sa.Column("valid_to", UTCDateTime()), sa.Column("tier_no", sa.Integer),
        sa.Column("tier_from", sa.Integer), sa.Column("tier_to", sa.Integer),
        sa.Column("comp", Money()), sa.Column("comp_order_value", sa.Boolean),
        sa.Column("comp_minimum", Money()), sa.Column("fine", Money()),
        sa.Column("esc_fine", Money()), sa.Column("esc_nth", sa.Integer),
        sa.Column("esc_window_days", sa.Integer), sa.Column("esc_multiplier", sa.Numeric(6, 2)),
        sa.Column("points", sa.Integer), sa.Column("limit_seconds", sa.Integer), **kw)


def result_table(name: str, **kw) -> sa.Table:
    return sa.Table(
        name, sa.MetaData(),
        sa.Column("ticket_no", sa.String(40)), sa.Column("standard_id", sa.Integer),
        sa.Column("clause_number", sa.String(20)), sa.Column("party_id", sa.Integer),
        sa.Column("clause_id", sa.Integer), sa.Column("check", sa.String(20)),
        sa.Column("incident_at", UTCDateTime()), sa.Column("customer_compensation", Money()),
        sa.Column("party_fine", Money()), sa.Column("points", sa.Integer),
        sa.Column("repeat_no", sa.Integer), sa.Column("multiplier", sa.Numeric(6, 2)),
        sa.Column("tier_no", sa.Integer), sa.Column("fact_from", UTCDateTime()),
        sa.Column("fact_to", UTCDateTime()), sa.Column("fact_value", sa.Integer),
        sa.Column("fact_limit", sa.Integer), sa.Column("order_value", Money()),
        sa.Column("order_no", sa.String(40)), **kw)


def calendar_rows(entries: list[Entry]) -> list[dict]:
    rows = []
    for e in entries:
        esc_fine = escalated(e.fine, e.esc_multiplier) if e.esc_nth else e.fine
        base = {"check": e.check, "standard_id": e.standard_id, "clause_id": e.clause_id,
                "clause_number": e.clause_number, "valid_from": e.valid_from,
                "valid_to": e.valid_to, "esc_nth": e.esc_nth,
                "esc_window_days": e.esc_window_days, "esc_multiplier": e.esc_multiplier,
                "esc_fine": esc_fine, "points": e.points, "limit_seconds": e.limit_seconds,
                "tier_no": None, "tier_from": None, "tier_to": None, "comp": None,
                "comp_order_value": False, "comp_minimum": None, "fine": e.fine}
        variants = [base]
        if e.check == Check.DAYS_LATE:
            variants = []
            for n, t in enumerate(e.tiers, start=1):
                fine = e.fine + Decimal(t["fine"] or "0")
                variants.append({**base, "tier_no": n, "tier_from": t["from"],
                                 "tier_to": t["to"] if t["to"] is not None else 1_000_000,
                                 "comp": None if t["compensation"] in (None, ORDER_VALUE)
                                 else Decimal(t["compensation"]),
                                 "comp_order_value": t["compensation"] == ORDER_VALUE,
                                 "comp_minimum": Decimal(t["minimum"] or "0"),
                                 "fine": fine,
                                 "esc_fine": escalated(fine, e.esc_multiplier) if e.esc_nth
                                 else fine})
        for v in variants:
            rows.extend({**v, "party_id": pid} for pid in e.party_ids)
    return rows


class days_before(FunctionElement):
    """``moment`` minus ``days`` days, in the database's own date arithmetic."""

    inherit_cache = True
    type = UTCDateTime()


@compiles(days_before, "postgresql")
def _days_before_pg(element, compiler, **kw):
    moment, days = list(element.clauses)
    return (f"({compiler.process(moment, **kw)} - make_interval(days => "
            f"{compiler.process(days, **kw)}))")


@compiles(days_before, "sqlite")
def _days_before_sqlite(element, compiler, **kw):
    moment, days = list(element.clauses)
    return (f"strftime('%Y-%m-%d %H:%M:%f', {compiler.process(moment, **kw)}, "
            f"'-' || {compiler.process(days, **kw)} || ' days')")


def _moment(check: str, t):
    if check == Check.DAYS_LATE:
        return t.c.promised_at
    if check == Check.FALSE_FEEDBACK:
        return sa.func.coalesce(t.c.delivered_at, t.c.opened_at)
    return t.c.cs_request_at


def _party(check: str, t):
    if check == Check.RESPONSE_TIME:
        return sa.func.coalesce(t.c.request_to_id, t.c.carrier_id)
    return t.c.carrier_id


def _breach(check: str, t, c):
    if check == Check.DAYS_LATE:
        return sa.and_(t.c.days_late >= 1, t.c.days_late >= c.c.tier_from,
                       t.c.days_late <= c.c.tier_to)
    if check == Check.FALSE_FEEDBACK:
        return sa.and_(t.c.carrier_signed.is_(True), t.c.customer_signed.is_(False),
                       sa.func.coalesce(t.c.proxy_signed, False).is_(False))
    return t.c.response_seconds > c.c.limit_seconds


def _none(type_):
    return sa.cast(sa.null(), type_)


def _zero():
    return sa.cast(sa.literal(0), sa.Numeric(12, 2))


def _facts(check: str, t, c) -> dict:
    if check == Check.DAYS_LATE:
        return {"fact_from": t.c.promised_at, "fact_to": t.c.delivered_at,
                "fact_value": t.c.days_late, "fact_limit": _none(sa.Integer),
                "customer_compensation": sa.case(
                    (c.c.comp_order_value.is_(True),
                     sa.case((t.c.order_value > c.c.comp_minimum, t.c.order_value),
                             else_=c.c.comp_minimum)),
                    else_=sa.func.coalesce(c.c.comp, _zero()))}
    if check == Check.FALSE_FEEDBACK:
        return {"fact_from": _none(UTCDateTime()), "fact_to": t.c.delivered_at,
                "fact_value": _none(sa.Integer), "fact_limit": _none(sa.Integer),
                "customer_compensation": _zero()}
    return {"fact_from": t.c.cs_request_at,
            "fact_to": sa.func.coalesce(t.c.responded_at, t.c.captured_at),
            "fact_value": t.c.response_seconds, "fact_limit": c.c.limit_seconds,
            "customer_compensation": _zero()}


def evaluate(conn, source: sa.Table, cal: sa.Table, result: sa.Table, where=None) -> int:
    """Write into ``result`` one row per ticket of ``source`` (narrowed by ``where``, a function
    of the source table), breached clause and party. Returns the number of rows."""
    v = Violation.__table__
    total = 0
    for check in CHECKS:
        t, c = source, cal
        moment, party = _moment(check, t), _party(check, t)
        earlier = (sa.select(sa.func.count()).select_from(v).where(
            v.c.party_id == c.c.party_id, v.c.standard_id == c.c.standard_id,
            v.c.clause_number == c.c.clause_number,
            v.c.status == ViolationStatus.CONFIRMED.value,
            v.c.incident_at < moment,
            v.c.incident_at >= days_before(moment, c.c.esc_window_days))
            .scalar_subquery())
        repeat = (1 + sa.case((c.c.esc_nth.is_(None), 0), else_=earlier)).label("repeat_no")
        facts = _facts(check, t, c)
        inner = (sa.select(
            t.c.ticket_no, c.c.standard_id, c.c.clause_number, c.c.party_id, c.c.clause_id,
            sa.literal(check).label("check"), moment.label("incident_at"),
            facts["customer_compensation"].label("customer_compensation"),
            c.c.fine, c.c.esc_fine, c.c.esc_nth, c.c.esc_multiplier, c.c.points, repeat,
            c.c.tier_no, facts["fact_from"].label("fact_from"),
            facts["fact_to"].label("fact_to"), facts["fact_value"].label("fact_value"),
            facts["fact_limit"].label("fact_limit"), t.c.order_value, t.c.order_no)
            .select_from(t.join(c, sa.and_(c.c.check == check, c.c.party_id == party,
                                           c.c.valid_from <= moment, c.c.valid_to > moment)))
            .where(_breach(check, t, c)))
        if where is not None:
            inner = inner.where(where(t))
        r = inner.subquery("r")
        escalates = sa.and_(r.c.esc_nth.is_not(None), r.c.repeat_no >= r.c.esc_nth)
        select = sa.select(
            r.c.ticket_no, r.c.standard_id, r.c.clause_number, r.c.party_id, r.c.clause_id,
            r.c.check, r.c.incident_at, r.c.customer_compensation,
            sa.case((escalates, r.c.esc_fine), else_=r.c.fine),
            r.c.points, r.c.repeat_no,
            sa.case((escalates, r.c.esc_multiplier), else_=sa.literal(Decimal("1.00"))),
            r.c.tier_no, r.c.fact_from, r.c.fact_to, r.c.fact_value, r.c.fact_limit,
            r.c.order_value, r.c.order_no)
        cols = ["ticket_no", "standard_id", "clause_number", "party_id", "clause_id", "check",
                "incident_at", "customer_compensation", "party_fine", "points", "repeat_no",
                "multiplier", "tier_no", "fact_from", "fact_to", "fact_value", "fact_limit",
                "order_value", "order_no"]
        total += conn.execute(sa.insert(result).from_select(cols, select),
                              execution_options={"preserve_rowcount": True}).rowcount
    return total


_REVISED = ["clause_id", "check", "incident_at", "customer_compensation", "party_fine",
            "points", "repeat_no", "multiplier", "tier_no", "fact_from", "fact_to",
            "fact_value", "fact_limit", "order_value", "order_no"]


def apply(conn, result: sa.Table, scope, now: datetime | None = None) -> dict:
    """Make the proposals match ``result`` for the tickets selected by ``scope`` (a SELECT of
    ticket numbers). Returns counts: added, revised, withdrawn. ``result`` is used up: the rows
    already recorded are deleted from it."""
    now = now or utcnow()
    v = Violation.__table__
    key = sa.and_(result.c.ticket_no == v.c.ticket_no, result.c.standard_id == v.c.standard_id,
                  result.c.clause_number == v.c.clause_number,
                  result.c.party_id == v.c.party_id)
    proposed = v.c.status == ViolationStatus.PROPOSED.value
    withdrawn = conn.execute(sa.delete(v).where(
        proposed, v.c.ticket_no.in_(scope),
        ~sa.exists().where(key))).rowcount
    changed = sa.or_(*[v.c[name].is_distinct_from(result.c[name]) for name in _REVISED])
    revised = conn.execute(
        sa.update(v).where(key, proposed, changed)
        .values({name: result.c[name] for name in _REVISED} | {"recorded_at": now})).rowcount
    # a ticket's new order number reaches its confirmed and dismissed violations too (the
    # review queue finds violations by order, and pays one compensation per order)
    t = Ticket.__table__
    conn.execute(sa.update(v).where(v.c.ticket_no == t.c.ticket_no, v.c.ticket_no.in_(scope),
                                    v.c.order_no != t.c.order_no)
                 .values(order_no=t.c.order_no))
    cols = ["ticket_no", "standard_id", "clause_number", "party_id", *_REVISED]
    # what is left in the result is new: found by one statement, inserted by another (an
    # INSERT that looked for each row among the violations it is writing would read its own
    # new rows, invisible but on disk, once per row: minutes for 168k rows when planned as a
    # scan of a table thought empty)
    conn.execute(sa.delete(result).where(sa.exists().where(key)))
    fresh = sa.select(*[result.c[c] for c in cols], sa.literal(now, UTCDateTime()),
                      sa.literal(1), sa.literal(ViolationStatus.PROPOSED.value),
                      sa.literal(ViolationSource.RULE.value), sa.literal(""), sa.literal(""))
    added = conn.execute(sa.insert(v).from_select(
        [*cols, "recorded_at", "occurrences", "status", "source", "evidence", "dismiss_reason"],
        fresh), execution_options={"preserve_rowcount": True}).rowcount
    return {"added": added, "revised": revised, "withdrawn": withdrawn}

