"""Gathers what the period audit report shows. Reads only; shared by the page and the PDF."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.cases.models import Penalty, Ruling, Violation
from portal.core.timeutil import local_day_bounds_utc, zone
from portal.extensions import db
from portal.hr.models import HrNotice
from portal.standards.models import Standard, StandardVersion, VersionStatus
from portal.standards.campaigns import Totals, totals_by_version


@dataclass
class AuditReport:
    start: date
    end: date
    generated_at: datetime
    published: list[StandardVersion] = field(default_factory=list)
    coverage: list[tuple[StandardVersion, Totals]] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    penalties: list[Penalty] = field(default_factory=list)
    penalty_by_party: list[tuple] = field(default_factory=list)
    penalty_total: Decimal = Decimal("0.00")
    rulings: list[Ruling] = field(default_factory=list)
    notices: list[HrNotice] = field(default_factory=list)


def build_audit_report(start: date, end: date, tz_name: str, now: datetime) -> AuditReport:
    lo, hi = local_day_bounds_utc(start, end, zone(tz_name))
    rep = AuditReport(start=start, end=end, generated_at=now)
    rep.published = db.session.scalars(
        select(StandardVersion).where(StandardVersion.published_at.between(lo, hi))
        .order_by(StandardVersion.published_at)).all()
    current = db.session.scalars(
        select(StandardVersion).join(Standard)
        .where(StandardVersion.status == VersionStatus.PUBLISHED).order_by(Standard.code)).all()
    counts = totals_by_version([v.id for v in current])
    rep.coverage = [(v, counts.get(v.id, Totals())) for v in current]
    rep.violations = db.session.scalars(
        select(Violation).options(selectinload(Violation.party))
        .where(Violation.recorded_at.between(lo, hi)).order_by(Violation.recorded_at)).all()
    rep.rulings = db.session.scalars(
        select(Ruling).options(selectinload(Ruling.shares))
        .where(Ruling.ruled_at.between(lo, hi)).order_by(Ruling.ruled_at)).all()
    rep.penalties = db.session.scalars(
        select(Penalty).join(Ruling).where(Ruling.ruled_at.between(lo, hi))
        .order_by(Penalty.id)).all()
    by_party: dict = defaultdict(lambda: [0, Decimal("0.00")])
    for p in rep.penalties:
        by_party[p.party][0] += 1
        by_party[p.party][1] += p.amount
    rep.penalty_by_party = sorted(((party, n, amt) for party, (n, amt) in by_party.items()),
                                  key=lambda r: (-r[2], r[0].code))
    rep.penalty_total = sum((p.amount for p in rep.penalties), Decimal("0.00"))
    rep.notices = db.session.scalars(
        select(HrNotice).where(HrNotice.created_at.between(lo, hi)).order_by(HrNotice.id)).all()
    return rep
