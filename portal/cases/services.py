"""Operations on cases: opening, recording violations; rulings are in ``cases.rulings``. The
caller commits.

A share on an internal department names the responsible employee and yields
an HR penalty notice.
"""
from __future__ import annotations

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
from portal.cases.rulings import ShareInput, issue_ruling  # noqa: F401  (re-exported)
from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.permissions import party_scope
from portal.extensions import db
from portal.parties.models import Party
from portal.standards.models import Clause, VersionStatus


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
    """What the parties would owe for the case: fines plus compensation recovered."""
    from portal.cases.rulings import case_totals

    return case_totals(case).owed


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
    q = select(Penalty).where(Penalty.active.is_(True)).order_by(Penalty.id.desc())
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
