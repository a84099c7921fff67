"""Gathers what the printed reports show: the period audit report, a case dossier and a party
scorecard. Reads only.

Each report is built *as of* a moment (its generation time): rows made later are left out, and
the report names the last audit event it includes and the SHA-256 of its data rows
(``data_sha256``). The job keeps these in a JSON snapshot beside the PDF; printing again from
the snapshot rebuilds the report as of the same moment and checks the hash, so a reprint is
the same document, or is refused because the records changed since (``SnapshotMismatch``).
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from portal.cases.models import (
    Appeal,
    AppealStatus,
    Case,
    Penalty,
    Ruling,
    Violation,
)
from portal.core.audit import AuditEvent
from portal.core.timeutil import local_day_bounds_utc, zone
from portal.extensions import db
from portal.hr.models import HrNotice
from portal.parties.models import Party
from portal.standards.campaigns import Totals, totals_by_version
from portal.standards.models import Clause, Standard, StandardVersion, VersionStatus


class SnapshotMismatch(Exception):
    """The records a report was made from have changed since: a reprint would differ."""


def data_hash(rows) -> str:
    """SHA-256 of the canonical JSON of a report's data rows."""
    body = json.dumps(rows, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def last_event_id(as_of: datetime) -> int:
    return db.session.scalar(select(func.max(AuditEvent.id))
                             .where(AuditEvent.occurred_at <= as_of)) or 0


def event_hashes(object_type: str, ids, up_to: int) -> dict[int, str]:
    """The hash of the latest audit event (up to event ``up_to``) of each object."""
    ids = [str(i) for i in ids]
    if not ids:
        return {}
    latest = (select(AuditEvent.object_id, func.max(AuditEvent.id).label("id"))
              .where(AuditEvent.object_type == object_type, AuditEvent.id <= up_to)
              .group_by(AuditEvent.object_id))
    out = {}
    for chunk in range(0, len(ids), 500):
        sub = latest.where(AuditEvent.object_id.in_(ids[chunk:chunk + 500])).subquery()
        rows = db.session.execute(select(AuditEvent.object_id, AuditEvent.hash)
                                  .join(sub, AuditEvent.id == sub.c.id))
        out.update({int(oid): h for oid, h in rows})
    return out


# --- the period audit report ----------------------------------------------------------------

@dataclass
class RulingEntry:
    """One line of the appendix: a ruling with what it rests on."""

    ruling: Ruling
    clauses: list[str]            # "CAR-DLV v2 §1" (the clause *version* breached)
    event_hash: str


@dataclass
class AuditReport:
    start: date
    end: date
    generated_at: datetime
    last_event_id: int = 0
    published: list[StandardVersion] = field(default_factory=list)
    changed: list[StandardVersion] = field(default_factory=list)     # superseded or retired
    coverage: list[tuple[StandardVersion, Totals]] = field(default_factory=list)
    training: list[tuple] = field(default_factory=list)             # (course, Totals)
    violations: list[Violation] = field(default_factory=list)
    by_party_clause: list[tuple] = field(default_factory=list)  # (party, clause, n, fines)
    penalties: list[Penalty] = field(default_factory=list)
    penalty_by_party: list[tuple] = field(default_factory=list)
    penalty_total: Decimal = Decimal("0.00")
    rulings: list[Ruling] = field(default_factory=list)
    appendix: list[RulingEntry] = field(default_factory=list)
    appeals: list[Appeal] = field(default_factory=list)
    appeal_outcomes: list[tuple] = field(default_factory=list)   # (status, how many)
    notices: list[HrNotice] = field(default_factory=list)
    charts: dict = field(default_factory=dict)
    data_sha256: str = ""


def _bounds(start: date, end: date, tz_name: str, as_of: datetime):
    lo, hi = local_day_bounds_utc(start, end, zone(tz_name))
    return lo, min(hi, as_of)


def build_audit_report(start: date, end: date, tz_name: str, now: datetime,
                       locale: str = "zh_CN") -> AuditReport:
    """The report of ``start`` .. ``end`` (local days in ``tz_name``) as of ``now``."""
    lo, hi = _bounds(start, end, tz_name, now)
    rep = AuditReport(start=start, end=end, generated_at=now, last_event_id=last_event_id(now))
    rep.published = db.session.scalars(
        select(StandardVersion).options(selectinload(StandardVersion.standard))
        .where(StandardVersion.published_at.between(lo, hi))
        .order_by(StandardVersion.published_at, StandardVersion.id)).all()
    rep.changed = db.session.scalars(
        select(StandardVersion).where(StandardVersion.retired_at.between(lo, hi))
        .order_by(StandardVersion.retired_at, StandardVersion.id)).all()
    current = db.session.scalars(
        select(StandardVersion).join(Standard)
        .where(StandardVersion.status == VersionStatus.PUBLISHED).order_by(Standard.code)).all()
    counts = totals_by_version([v.id for v in current])
    rep.coverage = [(v, counts.get(v.id, Totals())) for v in current]
    rep.training = _training_coverage()
    rep.violations = db.session.scalars(
        select(Violation).options(
            selectinload(Violation.party), selectinload(Violation.case),
            selectinload(Violation.clause).selectinload(Clause.standard_version)
            .selectinload(StandardVersion.standard))
        .where(Violation.recorded_at.between(lo, hi), Violation.case_id.is_not(None))
        .order_by(Violation.recorded_at, Violation.id)).all()
    groups: dict = defaultdict(lambda: [0, Decimal("0.00")])
    for v in rep.violations:
        groups[(v.party, v.clause)][0] += v.occurrences
        groups[(v.party, v.clause)][1] += v.party_fine
    rep.by_party_clause = sorted(((p, c, n, f) for (p, c), (n, f) in groups.items()),
                                 key=lambda r: (r[0].code, r[1].label))
    rep.rulings = db.session.scalars(
        select(Ruling).options(
            selectinload(Ruling.shares), selectinload(Ruling.case).selectinload(Case.violations)
            .selectinload(Violation.clause).selectinload(Clause.standard_version)
            .selectinload(StandardVersion.standard),
            selectinload(Ruling.officer), selectinload(Ruling.approved_by))
        .where(Ruling.ruled_at.between(lo, hi)).order_by(Ruling.ruled_at, Ruling.id)).all()
    hashes = event_hashes("rulings", [r.id for r in rep.rulings], rep.last_event_id)
    rep.appendix = [RulingEntry(r, sorted({v.clause.label for v in r.case.violations}),
                                hashes.get(r.id, "")) for r in rep.rulings]
    rep.penalties = db.session.scalars(
        select(Penalty).options(selectinload(Penalty.party)).join(Ruling)
        .where(Ruling.ruled_at.between(lo, hi), Penalty.created_at <= hi)
        .order_by(Penalty.id)).all()
    by_party: dict = defaultdict(lambda: [0, Decimal("0.00")])
    for p in rep.penalties:
        by_party[p.party][0] += 1
        by_party[p.party][1] += p.amount
    rep.penalty_by_party = sorted(((party, n, amt) for party, (n, amt) in by_party.items()),
                                  key=lambda r: (-r[2], r[0].code))
    rep.penalty_total = sum((p.amount for p in rep.penalties), Decimal("0.00"))
    rep.appeals = db.session.scalars(
        select(Appeal).options(selectinload(Appeal.party), selectinload(Appeal.case))
        .where(Appeal.filed_at.between(lo, hi)).order_by(Appeal.filed_at, Appeal.id)).all()
    outcomes = Counter(a.status for a in rep.appeals)
    rep.appeal_outcomes = [(status, outcomes.get(status, 0)) for status in AppealStatus]
    rep.notices = db.session.scalars(
        select(HrNotice).where(HrNotice.created_at.between(lo, hi)).order_by(HrNotice.id)).all()
    rep.charts = _audit_charts(rep, locale)
    rep.data_sha256 = data_hash(_audit_rows(rep))
    return rep


def _training_coverage() -> list[tuple]:
    from portal.training.models import Course, CourseStatus
    from portal.training.reports import totals_by_course

    counts = totals_by_course()
    courses = db.session.scalars(select(Course).where(Course.status == CourseStatus.PUBLISHED)
                                 .order_by(Course.code)).all()
    return [(c, counts.get(c.id, Totals())) for c in courses]


def _audit_charts(rep: AuditReport, locale: str) -> dict:
    """Two SVG charts (drawn by ``reports.charts``): fines by party, violations by clause."""
    from flask_babel import gettext as _

    from portal.reports.charts import bar_chart

    by_clause: Counter = Counter()
    for _p, clause, n, _f in rep.by_party_clause:
        by_clause[f"{clause.label}"] += n
    return {
        "penalties": bar_chart(_("Penalties by party (yuan)"),
                               [(f"{p.code} {p.name(locale)}", amt)
                                for p, _n, amt in rep.penalty_by_party[:12]]),
        "clauses": bar_chart(_("Violations by clause"), by_clause.most_common(12)),
    }


def _audit_rows(rep: AuditReport) -> list:
    """What the report says, as plain values (what ``data_sha256`` is taken over)."""
    return [
        ["published", [(v.id, v.status.value, v.text_hash) for v in rep.published]],
        ["changed", [(v.id, v.status.value) for v in rep.changed]],
        ["coverage", [(v.id, t.total, t.done, t.overdue) for v, t in rep.coverage]],
        ["training", [(c.id, t.total, t.done, t.overdue) for c, t in rep.training]],
        ["violations", [(v.id, v.case_id, v.clause_id, v.party_id, v.occurrences,
                         v.party_fine, v.status.value) for v in rep.violations]],
        ["rulings", [(e.ruling.id, e.ruling.status.value, e.ruling.total_amount,
                      e.ruling.approved_by_id, e.event_hash) for e in rep.appendix]],
        ["penalties", [(p.id, p.party_id, p.amount, p.active) for p in rep.penalties]],
        ["appeals", [(a.id, a.status.value, a.party_id) for a in rep.appeals]],
        ["notices", [(n.id, n.status.value, n.amount) for n in rep.notices]],
        ["last_event", rep.last_event_id],
    ]


# --- the case dossier -----------------------------------------------------------------------

@dataclass
class Dossier:
    case: Case
    scope: int | None
    generated_at: datetime
    last_event_id: int
    violations: list[Violation]
    evidence: list
    rulings: list[Ruling]
    appeals: list[Appeal]
    events: list[AuditEvent]
    data_sha256: str = ""

    def shares(self, ruling: Ruling):
        return [s for s in ruling.shares if self.scope is None or s.party_id == self.scope]


def build_dossier(case: Case, scope: int | None, now: datetime) -> Dossier:
    """One case as a viewer with party ``scope`` may see it (None: everything): its
    violations, evidence files with their SHA-256, rulings, appeals and the audit trail of
    the objects shown. Another party's rows never appear."""
    from portal.cases.appeals import appeals_of
    from portal.cases.evidence import Evidence, evidence_of

    last = last_event_id(now)
    violations = [v for v in case.violations_for(scope) if v.recorded_at <= now]
    evidence = [e for e in evidence_of(case, scope) if e.uploaded_at <= now]
    rulings = [r for r in case.rulings if r.ruled_at <= now]
    appeals = [a for a in appeals_of(case, scope) if a.filed_at <= now]
    objects = [("cases", [case.id]), ("violations", [v.id for v in violations]),
               ("rulings", [r.id for r in rulings]), ("appeals", [a.id for a in appeals]),
               (Evidence.__tablename__, [e.id for e in evidence])]
    conds = [(AuditEvent.object_type == t) & AuditEvent.object_id.in_([str(i) for i in ids])
             for t, ids in objects if ids]
    events = db.session.scalars(select(AuditEvent).where(or_(*conds), AuditEvent.id <= last)
                                .order_by(AuditEvent.id)).all()
    d = Dossier(case, scope, now, last, violations, evidence, rulings, appeals, events)
    d.data_sha256 = data_hash([
        ["case", case.id, case.status.value],
        ["violations", [(v.id, v.party_id, v.clause_id, v.party_fine) for v in violations]],
        ["evidence", [(e.id, e.sha256) for e in evidence]],
        ["rulings", [(r.id, r.status.value, [(s.party_id, s.percent) for s in d.shares(r)])
                     for r in rulings]],
        ["appeals", [(a.id, a.status.value) for a in appeals]],
        ["events", [(e.id, e.hash) for e in events]],
    ])
    return d


# --- the party scorecard --------------------------------------------------------------------

@dataclass
class Scorecard:
    party: Party
    start: date
    end: date
    generated_at: datetime
    last_event_id: int
    dashboard: object
    rank: object
    charts: dict
    data_sha256: str = ""


def build_scorecard(party: Party, start: date, end: date, now: datetime,
                    locale: str = "zh_CN") -> Scorecard:
    """The party's own numbers for the period (``reports.metrics``), its place among its
    peers (never named) and a trend chart."""
    from portal.reports import metrics
    from portal.reports.charts import bar_chart, line_chart

    period = metrics.Period(start, end)
    d = metrics.dashboard(metrics.DashboardFilters(period, party_id=party.id))
    rank = metrics.rank_among_peers(party, period)
    charts = {
        "trend": line_chart("", [(m.key.strftime("%Y-%m"), m.rate) for m in d.rates.trend],
                            unit="‰"),
        "clauses": bar_chart("", [(f"{c.standard_code} §{c.clause_number}", c.violations)
                                  for c in d.clauses[:10]]),
    }
    card = Scorecard(party, start, end, now, last_event_id(now), d, rank, charts)
    card.data_sha256 = data_hash([
        ["party", party.id],
        ["rates", [(m.key, m.complaints, m.orders) for m in d.rates.trend]],
        ["clauses", [(c.standard_id, c.clause_number, c.violations, c.fines)
                     for c in d.clauses]],
        ["appeals", vars(d.appeals)],
        ["rank", [rank.position, rank.of, rank.rate, rank.median]],
        ["last_event", card.last_event_id],
    ])
    return card
