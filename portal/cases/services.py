"""Operations on cases: opening, recording violations, ruling. The caller commits.

A ruling prices the case as the sum of its violations' fines (clause fine x occurrences), splits
that total over the responsibility shares with ``core.money.split_by_shares`` and writes one
penalty per share. A share on an internal department names the responsible employee and yields
an HR penalty notice.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import or_, select

from portal.cases.models import (
    Case,
    CaseStatus,
    Penalty,
    ResponsibilityShare,
    Ruling,
    Violation,
)
from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.money import split_by_shares
from portal.core.permissions import party_scope
from portal.extensions import db
from portal.parties.models import Party
from portal.standards.models import Clause, VersionStatus


@dataclass(frozen=True)
class ShareInput:
    party_id: int
    percent: int
    employee_no: str = ""
    employee_name: str = ""


def open_case(*, title: str, description: str, incident_at: datetime, user) -> Case:
    if not (title or "").strip():
        raise ServiceError(_("Title is required."), "title")
    if incident_at is None or incident_at.tzinfo is None:
        raise ServiceError(_("Incident time is required."), "incident_at")
    if incident_at > utcnow():
        raise ServiceError(_("The incident time cannot be in the future."), "incident_at")
    case = Case(title=title.strip(), description=(description or "").strip(),
                incident_at=incident_at, opened_by_id=user.id if user else None)
    db.session.add(case)
    db.session.flush()
    record("case.opened", case, after=case.snapshot())
    return case


def record_violation(case: Case, *, clause: Clause, party: Party, occurrences: int,
                     evidence: str, user) -> Violation:
    if case.status is not CaseStatus.OPEN:
        raise ServiceError(_("Case %(n)s is already ruled; violations can no longer be added.",
                             n=case.number))
    if clause is None or not clause.standard_version.is_published:
        raise ServiceError(_("Choose a clause of a published standard version."), "clause_id")
    if party is None or not party.active:
        raise ServiceError(_("Choose an active party."), "party_id")
    if not clause.standard_version.standard.addresses(party):
        raise ServiceError(_("Standard %(code)s does not bind %(party)s.",
                             code=clause.standard_version.standard.code, party=party.name_zh),
                           "party_id")
    if not isinstance(occurrences, int) or occurrences < 1:
        raise ServiceError(_("Occurrences must be a whole number of at least 1."),
                           "occurrences")
    if not (evidence or "").strip():
        raise ServiceError(_("Evidence is required: say what happened and where it is "
                             "recorded."), "evidence")
    version = clause.standard_version
    v = Violation(case=case, clause=clause, party=party, occurrences=occurrences,
                  evidence=evidence.strip(), recorded_by_id=user.id if user else None,
                  recorded_at=utcnow(), incident_at=case.incident_at,
                  standard_id=version.standard_id, clause_number=clause.number,
                  party_fine=(clause.fine_per_occurrence or Decimal("0.00")) * occurrences,
                  points=clause.points_per_occurrence * occurrences)
    db.session.add(v)
    record("violation.recorded", v, after=v.snapshot())
    return v


def case_total(case: Case) -> Decimal:
    return sum((v.fine for v in case.violations), Decimal("0.00"))


def issue_ruling(case: Case, *, officer, rationale: str, shares: list[ShareInput]) -> Ruling:
    if case.status is not CaseStatus.OPEN:
        raise ServiceError(_("Case %(n)s has already been ruled.", n=case.number))
    if not case.violations:
        raise ServiceError(_("Record at least one violation before ruling."))
    if not (rationale or "").strip():
        raise ServiceError(_("A ruling needs a written rationale."), "rationale")
    parties = _validate_shares(shares)
    total = case_total(case)
    ruling = Ruling(case=case, officer_id=officer.id, rationale=rationale.strip(),
                    total_amount=total, ruled_at=utcnow())
    db.session.add(ruling)
    amounts = split_by_shares(total, [s.percent for s in shares])
    for s, amount in zip(shares, amounts, strict=True):
        share = ResponsibilityShare(ruling=ruling, party_id=s.party_id, percent=s.percent,
                                    employee_no=s.employee_no.strip(),
                                    employee_name=s.employee_name.strip())
        db.session.add(share)
        penalty = Penalty(ruling=ruling, share=share, case=case, party_id=s.party_id,
                          amount=amount)
        db.session.add(penalty)
        record("penalty.created", penalty, after={
            "case": case.number, "party": parties[s.party_id].code, "percent": s.percent,
            "amount": amount})
    before = case.snapshot()
    case.status = CaseStatus.RULED
    record("ruling.issued", ruling, after={
        "case": case.number, "total": total, "rationale": ruling.rationale,
        "shares": [{"party": parties[s.party_id].code, "percent": s.percent} for s in shares]})
    record("case.ruled", case, before=before, after=case.snapshot())

    from portal.hr.services import notices_for_ruling

    notices_for_ruling(ruling)
    return ruling


def _validate_shares(shares: list[ShareInput]) -> dict[int, Party]:
    if not shares:
        raise ServiceError(_("Assign responsibility to at least one party."), "shares")
    ids = [s.party_id for s in shares]
    if len(set(ids)) != len(ids):
        raise ServiceError(_("Each party may appear only once in the responsibility split."),
                           "shares")
    for s in shares:
        if not isinstance(s.percent, int) or not 1 <= s.percent <= 100:
            raise ServiceError(_("Each share must be a whole percentage from 1 to 100."),
                               "shares")
    total = sum(s.percent for s in shares)
    if total != 100:
        raise ServiceError(_("Responsibility shares must add up to 100%% (they add up to "
                             "%(total)d%%).", total=total), "shares")
    parties = {p.id: p for p in db.session.scalars(select(Party).where(Party.id.in_(ids)))}
    for s in shares:
        party = parties.get(s.party_id)
        if party is None:
            raise ServiceError(_("Unknown party in the responsibility split."), "shares")
        if party.is_internal and not (s.employee_no.strip() and s.employee_name.strip()):
            raise ServiceError(_("A share on an internal department must name the responsible "
                                 "employee (number and name) for the HR notice."), "shares")
    return parties


# --- reading ------------------------------------------------------------------------------

def _involving(scope: int):
    """Cases that involve party ``scope`` through a violation or a responsibility share."""
    return or_(
        Case.id.in_(select(Violation.case_id).where(Violation.party_id == scope)),
        Case.id.in_(select(Ruling.case_id).join(ResponsibilityShare)
                    .where(ResponsibilityShare.party_id == scope)),
    )


def visible_cases_query(user, status: CaseStatus | None = None):
    q = select(Case).order_by(Case.id.desc())
    scope = party_scope(user)
    if scope is not None:
        q = q.where(_involving(scope))
    if status:
        q = q.where(Case.status == status)
    return q


def visible_penalties_query(user):
    q = select(Penalty).order_by(Penalty.id.desc())
    scope = party_scope(user)
    if scope is not None:
        q = q.where(Penalty.party_id == scope)
    return q


def ruled_clauses() -> list[Clause]:
    """Clauses of the versions in force, for the violation form."""
    from portal.standards.models import StandardVersion

    return db.session.scalars(
        select(Clause).join(StandardVersion)
        .where(StandardVersion.status == VersionStatus.PUBLISHED)
        .order_by(StandardVersion.standard_id, Clause.position)).all()
