"""The dashboard's numbers (温度计 / 晴雨表): one reading interface for the dashboard, the party
scorecard and the printed reports.

Every function takes a ``DashboardFilters`` (kind of party, one party, one clause, a ``Period``
of whole local days in the portal's time zone) and returns plain dataclasses; every count is
one SQL aggregation (GROUP BY), never a loop over records; money is ``Decimal``.

Definitions (each "in the period" means: between the first instant of ``start`` and the last
instant of ``end``, local days in the portal's zone, PORTAL_DEFAULT_TIMEZONE):

complaints of a party
    Tickets opened in the period that name the party: as carrier, merchant or warehouse, or as
    the party a CS request went to (``request_to``; this is how a department is named). A ticket
    counts once per party, even when it names the party twice.
orders of a party
    The sum of ``ShipmentVolume.orders`` over the party's days in the period (imported volumes).
    Complaints and orders are counted by whole calendar months (``reports.models`` keeps the
    monthly counts): a period is widened to the months it touches.
complaint rate (投诉率, 每千单投诉)
    complaints ÷ orders × 1,000, rounded half-up to two decimals; none when there were no
    orders. The rate of a kind (or of all parties) is the sum of complaints over the sum of
    orders of its parties. The monthly trend applies the same definition to each calendar month
    of the period.
violations by clause
    Confirmed violations (in a case, or a proposal CS confirmed) whose incident took place in
    the period (the time recorded when the incident time is unknown), per standard and clause
    number; "fines" is their ``party_fine`` summed and "compensation" their
    ``customer_compensation`` summed: the amounts as assessed, before blame shares and appeals.
top offenders
    Parties ranked by the amount of their penalties (罚单) that began to stand in the period
    and still stand (not withdrawn by a later ruling or an appeal), most first.
acknowledgement coverage
    Reading tasks of the versions in force (published), of active people, not cancelled:
    done ÷ all, now (not limited to the period); overdue = open past their due date.
training coverage
    Training tasks of active people, not cancelled: done ÷ all, now.
appeal rate (申诉率)
    Appeals filed in the period ÷ penalties that began to stand in the period (every penalty,
    including one an appeal later replaced).
overturn rate (改判率)
    Appeals decided in the period as overturned ÷ appeals decided in the period; the reduced
    share is given the same way.
HR notices
    Notices on internal staff created in the period: still open (new, receipt acknowledged or
    action recorded but not closed), acted on (an action recorded, whether closed since or not),
    withdrawn by CS.
rank among peers
    A party's place among the parties of its kind that shipped orders in the period, by
    complaint rate, lowest first (1 = best); parties with the same rate share a place. Peers are
    counted, never named.

The clause filter narrows violations, offenders and appeals (penalties of cases with a
confirmed violation of the clause); tickets and HR notices have no clause and are not narrowed
by it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Date, and_, case, delete, func, insert, literal, or_, select, union_all

from portal.accounts.models import User
from portal.cases.models import Appeal, AppealStatus, Penalty, Violation, ViolationStatus
from portal.core.db import utcnow
from portal.core.money import to_money
from portal.core.tasks import Totals, count_columns
from portal.core.timeutil import local_day_bounds_utc, local_today, zone
from portal.extensions import db
from portal.hr.models import OPEN_STATUSES, HrNotice, NoticeStatus
from portal.intake.models import BatchStatus, ImportBatch, ShipmentVolume, Ticket
from portal.parties.models import Party, PartyKind
from portal.reports.models import ComplaintRollup, RollupMonth
from portal.standards.models import AckTask, Clause, Standard, StandardVersion, VersionStatus
from portal.training.models import TrainingTask

PER = Decimal(1000)
CENT = Decimal("0.01")


def portal_zone() -> ZoneInfo:
    from flask import current_app

    return zone(current_app.config.get("PORTAL_DEFAULT_TIMEZONE"))


def first_of_month(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """Whole local days ``start`` .. ``end`` (inclusive) in the portal's zone."""

    start: date
    end: date

    @classmethod
    def year(cls, year: int) -> Period:
        return cls(date(year, 1, 1), date(year, 12, 31))

    @classmethod
    def months(cls, first: date, last: date) -> Period:
        """The calendar months of ``first`` through ``last``."""
        return cls(first_of_month(first), next_month(last) - timedelta(days=1))

    @classmethod
    def last_twelve_months(cls, today: date | None = None) -> Period:
        """The current calendar month and the eleven before it."""
        today = today or local_today()
        first = first_of_month(today)
        for _ in range(11):
            first = first_of_month(first - timedelta(days=1))
        return cls.months(first, today)

    def bounds(self, tz: ZoneInfo | None = None) -> tuple[datetime, datetime]:
        return local_day_bounds_utc(self.start, self.end, tz or portal_zone())

    def month_starts(self) -> list[date]:
        out, month = [], first_of_month(self.start)
        while month <= self.end:
            out.append(month)
            month = next_month(month)
        return out

    @property
    def label(self) -> str:
        return f"{self.start.isoformat()} – {self.end.isoformat()}"


@dataclass
class DashboardFilters:
    period: Period
    kind: PartyKind | None = None
    party_id: int | None = None
    standard_id: int | None = None
    clause_number: str = ""

    @property
    def has_clause(self) -> bool:
        return self.standard_id is not None and bool(self.clause_number)


def rate(complaints: int, orders: int) -> Decimal | None:
    if not orders:
        return None
    return (Decimal(complaints) * PER / Decimal(orders)).quantize(CENT, ROUND_HALF_UP)


def ratio(part: int, whole: int) -> Decimal | None:
    """``part`` ÷ ``whole`` as a percentage with one decimal; none when ``whole`` is 0."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)


# --- complaint rates ----------------------------------------------------------------------


@dataclass
class PartyRate:
    party_id: int
    code: str
    name_zh: str
    name_en: str
    kind: PartyKind
    complaints: int = 0
    orders: int = 0

    @property
    def rate(self) -> Decimal | None:
        return rate(self.complaints, self.orders)

    def name(self, locale: str) -> str:
        return self.name_en if locale.startswith("en") and self.name_en else self.name_zh


@dataclass
class RateRow:
    """A kind's, a month's or the whole period's complaints and orders."""

    key: object
    complaints: int = 0
    orders: int = 0

    @property
    def rate(self) -> Decimal | None:
        return rate(self.complaints, self.orders)


@dataclass
class ComplaintRates:
    parties: list[PartyRate] = field(default_factory=list)     # highest rate first
    by_kind: list[RateRow] = field(default_factory=list)
    trend: list[RateRow] = field(default_factory=list)         # key: the month's first day
    total: RateRow = field(default_factory=lambda: RateRow("all"))


def _party_condition(f: DashboardFilters):
    conds = []
    if f.kind is not None:
        conds.append(Party.kind == f.kind)
    if f.party_id is not None:
        conds.append(Party.id == f.party_id)
    return conds


def _month_of(column, months: list[date], starts: list) -> object:
    """SQL: the first day of the month ``column`` falls in (``starts``: where each begins)."""
    whens = [(column >= start, literal(month, Date)) for month, start in
             reversed(list(zip(months, starts, strict=True)))][:-1]
    return case(*whens, else_=literal(months[0], Date)) if whens else literal(months[0], Date)


def _data_mark() -> str:
    """What the counts were made from: changes whenever tickets or volumes may have."""
    batch = db.session.execute(
        select(func.max(ImportBatch.id), func.max(ImportBatch.finished_at))
        .where(ImportBatch.status == BatchStatus.DONE)).one()
    captured = db.session.scalar(select(func.max(Ticket.captured_at)))
    volume = db.session.scalar(select(func.max(ShipmentVolume.id)))
    return f"{batch[0]}|{batch[1]}|{captured}|{volume}"


def _count_months(first: date, last: date, mark: str, tz: ZoneInfo) -> None:
    """Count the months ``first`` .. ``last`` into the rollup again, in one INSERT ... SELECT."""
    months, month = [], first
    while month <= last:
        months.append(month)
        month = next_month(month)
    starts = [local_day_bounds_utc(m, m, tz)[0] for m in months]
    lo, hi = starts[0], local_day_bounds_utc(next_month(last), next_month(last), tz)[0]
    ticket_month = _month_of(Ticket.opened_at, months, starts)
    named_else = or_(Ticket.request_to_id.is_(None),
                     and_(Ticket.request_to_id != func.coalesce(Ticket.carrier_id, 0),
                          Ticket.request_to_id != func.coalesce(Ticket.merchant_id, 0),
                          Ticket.request_to_id != func.coalesce(Ticket.warehouse_id, 0)))
    branches = []
    for column, extra in ((Ticket.carrier_id, None), (Ticket.merchant_id, None),
                          (Ticket.warehouse_id, None), (Ticket.request_to_id, named_else)):
        q = (select(column.label("party_id"), ticket_month.label("month"),
                    func.count().label("c"), literal(0).label("o"))
             .where(Ticket.opened_at >= lo, Ticket.opened_at < hi, column.is_not(None)))
        if extra is not None:
            q = q.where(extra)
        branches.append(q.group_by(column, ticket_month))
    day_month = _month_of(ShipmentVolume.day, months, months)
    branches.append(select(ShipmentVolume.party_id, day_month, literal(0),
                           func.sum(ShipmentVolume.orders))
                    .where(ShipmentVolume.day >= first, ShipmentVolume.day < next_month(last))
                    .group_by(ShipmentVolume.party_id, day_month))
    counted = union_all(*branches).subquery()
    db.session.execute(delete(ComplaintRollup).where(ComplaintRollup.month.in_(months)))
    db.session.execute(delete(RollupMonth).where(RollupMonth.month.in_(months)))
    db.session.execute(insert(ComplaintRollup).from_select(
        ["party_id", "month", "complaints", "orders"],
        select(counted.c.party_id, counted.c.month, func.sum(counted.c.c),
               func.sum(counted.c.o)).group_by(counted.c.party_id, counted.c.month)))
    now = utcnow()
    db.session.execute(insert(RollupMonth), [{"month": m, "mark": mark, "counted_at": now}
                                             for m in months])


def ensure_rollup(months: list[date], tz: ZoneInfo | None = None) -> None:
    """Count again the ``months`` whose counts are older than the data, and commit: the
    rollup is a cache, written on a read. Two requests counting at once: the later one's
    insert fails on the primary key and it reads what the first one counted."""
    from sqlalchemy.exc import IntegrityError

    if not months:
        return
    mark = _data_mark()
    have = dict(db.session.execute(select(RollupMonth.month, RollupMonth.mark)
                                   .where(RollupMonth.month.in_(months))).all())
    stale = [m for m in months if have.get(m) != mark]
    if not stale:
        return
    try:
        _count_months(min(stale), max(stale), mark, tz or portal_zone())
        db.session.commit()
    except IntegrityError:
        db.session.rollback()


def complaint_rates(f: DashboardFilters, tz: ZoneInfo | None = None) -> ComplaintRates:
    """Counted by whole calendar months (a period is widened to the months it touches)."""
    months = f.period.month_starts()
    ensure_rollup(months, tz)
    r = ComplaintRollup
    scope = [r.month.in_(months), *_party_condition(f)]
    joined = select().select_from(r).join(Party, Party.id == r.party_id).where(*scope)
    sums = (func.coalesce(func.sum(r.complaints), 0), func.coalesce(func.sum(r.orders), 0))
    parties = [PartyRate(row[0], row[1], row[2], row[3], PartyKind(row[4]), int(row[5]),
                         int(row[6]))
               for row in db.session.execute(joined.add_columns(
                   Party.id, Party.code, Party.name_zh, Party.name_en, Party.kind, *sums)
                   .group_by(Party.id, Party.code, Party.name_zh, Party.name_en, Party.kind))]
    monthly = (joined if f.kind is not None or f.party_id is not None
               else select().select_from(r).where(r.month.in_(months)))
    by_month = {row[0]: (int(row[1]), int(row[2])) for row in db.session.execute(
        monthly.add_columns(r.month, *sums).group_by(r.month))}
    trend = [RateRow(m, *by_month.get(m, (0, 0))) for m in months]
    by_kind: dict[PartyKind, RateRow] = {}
    for p in parties:
        row = by_kind.setdefault(p.kind, RateRow(p.kind))
        row.complaints += p.complaints
        row.orders += p.orders
    kinds = [by_kind[k] for k in PartyKind if k in by_kind]
    total = RateRow("all", sum(k.complaints for k in kinds), sum(k.orders for k in kinds))
    ordered = sorted(parties,
                     key=lambda p: (p.rate is None, -(p.rate or 0), -p.complaints, p.code))
    return ComplaintRates(ordered, kinds, trend, total)


# --- violations, penalties, appeals -------------------------------------------------------


@dataclass
class ClauseRow:
    standard_id: int
    standard_code: str
    clause_number: str
    title_zh: str
    title_en: str
    violations: int
    fines: Decimal
    compensation: Decimal

    def title(self, locale: str) -> str:
        return self.title_en if locale.startswith("en") and self.title_en else self.title_zh


def _violation_scope(f: DashboardFilters, tz: ZoneInfo):
    lo, hi = f.period.bounds(tz)
    # not coalesce(incident_at, recorded_at): the planner cannot estimate that and sorted
    # a year of violations on disk instead of hashing them
    conds = [Violation.status == ViolationStatus.CONFIRMED,
             or_(Violation.incident_at.between(lo, hi),
                 and_(Violation.incident_at.is_(None), Violation.recorded_at.between(lo, hi)))]
    if f.party_id is not None:
        conds.append(Violation.party_id == f.party_id)
    if f.kind is not None:
        conds.append(Violation.party_id.in_(select(Party.id).where(Party.kind == f.kind)))
    if f.has_clause:
        conds += [Violation.standard_id == f.standard_id,
                  Violation.clause_number == f.clause_number]
    return conds


def violations_by_clause(f: DashboardFilters, tz: ZoneInfo | None = None) -> list[ClauseRow]:
    tz = tz or portal_zone()
    counted = (select(Violation.standard_id, Violation.clause_number,
                      func.count().label("n"), func.sum(Violation.party_fine).label("fines"),
                      func.sum(Violation.customer_compensation).label("comp"),
                      func.max(Violation.clause_id).label("clause_id"))
               .where(*_violation_scope(f, tz))
               .group_by(Violation.standard_id, Violation.clause_number).subquery())
    q = (select(counted, Standard.code, Clause.title_zh, Clause.title_en)
         .join(Clause, Clause.id == counted.c.clause_id)
         .outerjoin(Standard, Standard.id == counted.c.standard_id)
         .order_by(counted.c.n.desc(), Standard.code, counted.c.clause_number))
    return [ClauseRow(r.standard_id or 0, r.code or "", r.clause_number, r.title_zh,
                      r.title_en, r.n, to_money(r.fines or 0), to_money(r.comp or 0))
            for r in db.session.execute(q)]


def _penalty_scope(f: DashboardFilters, tz: ZoneInfo):
    lo, hi = f.period.bounds(tz)
    conds = [Penalty.created_at.between(lo, hi)]
    if f.party_id is not None:
        conds.append(Penalty.party_id == f.party_id)
    if f.kind is not None:
        conds.append(Penalty.party_id.in_(select(Party.id).where(Party.kind == f.kind)))
    if f.has_clause:
        conds.append(Penalty.case_id.in_(select(Violation.case_id).where(
            Violation.standard_id == f.standard_id, Violation.clause_number == f.clause_number,
            Violation.status == ViolationStatus.CONFIRMED)))
    return conds


@dataclass
class Offender:
    party_id: int
    code: str
    name_zh: str
    name_en: str
    kind: PartyKind
    penalties: int
    amount: Decimal
    points: int

    def name(self, locale: str) -> str:
        return self.name_en if locale.startswith("en") and self.name_en else self.name_zh


def penalties_by_party(f: DashboardFilters, tz: ZoneInfo | None = None) -> dict[int, tuple]:
    """Per party, over the penalties that began to stand in the period: (all of them, those
    still standing, their amount, their points). One pass serves the offenders and the
    appeal rate's denominator."""
    tz = tz or portal_zone()
    active = Penalty.active.is_(True)
    q = (select(Penalty.party_id, func.count(), func.sum(case((active, 1), else_=0)),
                func.sum(case((active, Penalty.amount), else_=0)),
                func.sum(case((active, Penalty.points), else_=0)))
         .where(*_penalty_scope(f, tz)).group_by(Penalty.party_id))
    return {r[0]: (int(r[1]), int(r[2] or 0), to_money(r[3] or 0), int(r[4] or 0))
            for r in db.session.execute(q)}


def top_offenders(f: DashboardFilters, tz: ZoneInfo | None = None, limit: int = 10, *,
                  by_party: dict | None = None) -> list[Offender]:
    by_party = penalties_by_party(f, tz) if by_party is None else by_party
    top = sorted(((pid, row) for pid, row in by_party.items() if row[1]),
                 key=lambda item: (-item[1][2], item[0]))[:limit]
    parties = {p.id: p for p in db.session.scalars(
        select(Party).where(Party.id.in_([pid for pid, _row in top])))}
    out = [Offender(pid, parties[pid].code, parties[pid].name_zh, parties[pid].name_en,
                    parties[pid].kind, row[1], row[2], row[3]) for pid, row in top]
    return sorted(out, key=lambda o: (-o.amount, o.code))


@dataclass
class AppealStats:
    penalties: int = 0
    filed: int = 0
    decided: int = 0
    upheld: int = 0
    reduced: int = 0
    overturned: int = 0

    @property
    def appeal_rate(self) -> Decimal | None:
        return ratio(self.filed, self.penalties)

    @property
    def overturn_rate(self) -> Decimal | None:
        return ratio(self.overturned, self.decided)

    @property
    def reduce_rate(self) -> Decimal | None:
        return ratio(self.reduced, self.decided)


def _appeal_conds(f: DashboardFilters):
    conds = []
    if f.party_id is not None:
        conds.append(Appeal.party_id == f.party_id)
    if f.kind is not None:
        conds.append(Appeal.party_id.in_(select(Party.id).where(Party.kind == f.kind)))
    if f.has_clause:
        conds.append(Appeal.case_id.in_(select(Violation.case_id).where(
            Violation.standard_id == f.standard_id, Violation.clause_number == f.clause_number,
            Violation.status == ViolationStatus.CONFIRMED)))
    return conds


def appeal_stats(f: DashboardFilters, tz: ZoneInfo | None = None, *,
                 by_party: dict | None = None) -> AppealStats:
    tz = tz or portal_zone()
    lo, hi = f.period.bounds(tz)
    by_party = penalties_by_party(f, tz) if by_party is None else by_party
    penalties = sum(row[0] for row in by_party.values())
    filed = db.session.scalar(select(func.count()).select_from(Appeal).where(
        Appeal.filed_at.between(lo, hi), *_appeal_conds(f)))
    decided = dict(db.session.execute(
        select(Appeal.status, func.count()).where(Appeal.decided_at.between(lo, hi),
                                                  *_appeal_conds(f))
        .group_by(Appeal.status)).all())
    counts = {AppealStatus(k): v for k, v in decided.items()}
    return AppealStats(penalties or 0, filed or 0, sum(counts.values()),
                       counts.get(AppealStatus.UPHELD, 0), counts.get(AppealStatus.REDUCED, 0),
                       counts.get(AppealStatus.OVERTURNED, 0))


# --- coverage and HR notices --------------------------------------------------------------


@dataclass
class CoverageRow:
    kind: PartyKind
    acknowledgements: Totals
    training: Totals


def _totals_by_kind(model, scope, f: DashboardFilters, today: date) -> dict:
    q = (select(Party.kind, *count_columns(model, today)).select_from(model)
         .join(User, model.user_id == User.id).join(Party, model.party_id == Party.id)
         .where(*scope, model.status != "cancelled", User.active.is_(True),
                *_party_condition(f))
         .group_by(Party.kind))
    return {PartyKind(r[0]): Totals(r[1] or 0, r[2] or 0, r[3] or 0)
            for r in db.session.execute(q)}


def coverage(f: DashboardFilters, today: date | None = None) -> list[CoverageRow]:
    """Acknowledgement and training coverage per kind of party, now."""
    today = today or local_today()
    in_force = AckTask.standard_version_id.in_(
        select(StandardVersion.id).where(StandardVersion.status == VersionStatus.PUBLISHED))
    acks = _totals_by_kind(AckTask, [in_force], f, today)
    training = _totals_by_kind(TrainingTask, [], f, today)
    return [CoverageRow(k, acks.get(k, Totals()), training.get(k, Totals()))
            for k in PartyKind if k in acks or k in training]


@dataclass
class HrStats:
    department_id: int | None
    code: str
    name_zh: str
    name_en: str
    notices: int = 0
    open: int = 0
    acted: int = 0
    withdrawn: int = 0

    def name(self, locale: str) -> str:
        return self.name_en if locale.startswith("en") and self.name_en else self.name_zh


def hr_notices(f: DashboardFilters, tz: ZoneInfo | None = None) -> list[HrStats]:
    """Per department: notices created in the period, open, acted on, withdrawn."""
    tz = tz or portal_zone()
    if f.kind is not None and f.kind is not PartyKind.DEPARTMENT:
        return []
    lo, hi = f.period.bounds(tz)
    is_open = HrNotice.status.in_(OPEN_STATUSES)
    q = (select(Party.id, Party.code, Party.name_zh, Party.name_en, func.count(),
                func.sum(case((is_open, 1), else_=0)),
                func.sum(case((HrNotice.actioned_at.is_not(None), 1), else_=0)),
                func.sum(case((HrNotice.status == NoticeStatus.WITHDRAWN, 1), else_=0)))
         .join(Party, Party.id == HrNotice.department_id)
         .where(HrNotice.created_at.between(lo, hi), *_party_condition(f))
         .group_by(Party.id, Party.code, Party.name_zh, Party.name_en).order_by(Party.code))
    return [HrStats(r[0], r[1], r[2], r[3], r[4], int(r[5] or 0), int(r[6] or 0),
                    int(r[7] or 0)) for r in db.session.execute(q)]


# --- rank among peers ---------------------------------------------------------------------


@dataclass
class Rank:
    position: int | None      # None: the party shipped no orders in the period
    of: int                   # peers of the same kind with orders in the period
    rate: Decimal | None
    median: Decimal | None    # the peers' median rate (no party named)


def rank_among_peers(party: Party, period: Period, tz: ZoneInfo | None = None) -> Rank:
    peers = complaint_rates(DashboardFilters(period, kind=party.kind), tz).parties
    rates = sorted(p.rate for p in peers if p.rate is not None)
    own = next((p.rate for p in peers if p.party_id == party.id), None)
    median = None
    if rates:
        mid = len(rates) // 2
        median = rates[mid] if len(rates) % 2 else ((rates[mid - 1] + rates[mid]) / 2
                                                     ).quantize(CENT, ROUND_HALF_UP)
    if own is None:
        return Rank(None, len(rates), None, median)
    return Rank(1 + sum(1 for r in rates if r < own), len(rates), own, median)


# --- everything at once -------------------------------------------------------------------


@dataclass
class Dashboard:
    filters: DashboardFilters
    rates: ComplaintRates
    clauses: list[ClauseRow]
    offenders: list[Offender]
    appeals: AppealStats
    coverage: list[CoverageRow]
    hr: list[HrStats]

    @property
    def fines_total(self) -> Decimal:
        return sum((c.fines for c in self.clauses), Decimal("0.00"))


def dashboard(f: DashboardFilters, tz: ZoneInfo | None = None) -> Dashboard:
    tz = tz or portal_zone()
    by_party = penalties_by_party(f, tz)
    return Dashboard(f, complaint_rates(f, tz), violations_by_clause(f, tz),
                     top_offenders(f, tz, by_party=by_party),
                     appeal_stats(f, tz, by_party=by_party), coverage(f), hr_notices(f, tz))
