"""Operations on cases: opening, recording violations; rulings are in ``cases.rulings``. The
caller commits.

A share on an internal department names the responsible employee and yields
an HR penalty notice.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import func, or_, select, true
from sqlalchemy.orm import selectinload

from portal.cases.models import (
    Case,
    CaseParty,
    CaseStatus,
    Penalty,
    Ruling,
    RulingStatus,
    Violation,
)
from portal.cases.rulings import ShareInput, issue_ruling  # noqa: F401  (re-exported)
from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.money import to_money
from portal.core.permissions import party_scope
from portal.core.web import CappedPage, capped_page
from portal.extensions import db
from portal.parties.models import Party, PartyKind
from portal.parties.services import parties_matching
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
    involve(case.id, [party])
    record("violation.recorded", v, after=v.snapshot())
    return v


def involve(case_id: int, parties) -> None:
    """Note that case ``case_id`` involves ``parties`` (violations recorded or confirmed into
    it, responsibility shares), for the case list's filters and the parties' own lists."""
    wanted = {p.id: p.kind.value for p in parties}
    if not wanted:
        return
    have = set(db.session.scalars(select(CaseParty.party_id).where(
        CaseParty.case_id == case_id, CaseParty.party_id.in_(wanted))))
    for party_id, kind in wanted.items():
        if party_id not in have:
            db.session.add(CaseParty(case_id=case_id, party_id=party_id, kind=kind))


def case_total(case: Case) -> Decimal:
    """What the parties would owe for the case: fines plus compensation recovered."""
    from portal.cases.rulings import case_totals

    return case_totals(case).owed


# --- reading ------------------------------------------------------------------------------

CASE_NO = re.compile(r"^(?:CASE-)?0*(\d{1,9})$", re.IGNORECASE)
PER_PAGE = 25
LEDGER_PER_PAGE = 50
COUNT_CAP = 10_000


@dataclass
class CaseFilters:
    """What the case list is narrowed by (all optional)."""

    q: str = ""                         # a case number, a ticket number, or words of the title
    status: CaseStatus | None = None
    kind: PartyKind | None = None       # cases involving a party of this kind
    party: str = ""                     # ... or this party (code, or part of its name)
    standard_id: int | None = None      # with clause_number: a violation of this clause
    clause_number: str = ""
    incident_from: datetime | None = None   # UTC bounds of the local days asked for
    incident_to: datetime | None = None
    min_amount: Decimal | None = None   # what the parties owe under the ruling in effect
    open_appeal: bool = False           # only cases with an appeal waiting for a decision
    # cases with an appeal filed (APPEAL_FILED) or decided with this outcome (APPEAL_DECIDED or
    # an AppealStatus value) between these UTC bounds; by the party filter's parties if any
    appeal: str = ""
    appeal_from: datetime | None = None
    appeal_to: datetime | None = None


APPEAL_FILED, APPEAL_DECIDED = "filed", "decided"
APPEAL_CHOICES = ("open", APPEAL_FILED, APPEAL_DECIDED, "upheld", "reduced", "overturned")


def _appeal_condition(f: CaseFilters, parties=None):
    """``Case.id IN (appeals ...)`` for ``f.appeal`` (see CaseFilters), or None."""
    from portal.cases.models import Appeal, AppealStatus

    if f.appeal in ("", "open"):
        return None
    conds = []
    when = Appeal.filed_at if f.appeal == APPEAL_FILED else Appeal.decided_at
    if f.appeal == APPEAL_DECIDED:
        conds.append(Appeal.decided_at.is_not(None))
    elif f.appeal != APPEAL_FILED:
        conds.append(Appeal.status == AppealStatus(f.appeal))
    if f.appeal_from is not None:
        conds.append(when >= f.appeal_from)
    if f.appeal_to is not None:
        conds.append(when <= f.appeal_to)
    if parties is not None:
        conds.append(Appeal.party_id.in_(parties))
    return Case.id.in_(select(Appeal.case_id).where(*conds))


def _involving(scope: int):
    """Cases that involve party ``scope`` through a violation or a responsibility share."""
    return Case.id.in_(select(CaseParty.case_id).where(CaseParty.party_id == scope))


def visible_cases_query(user, f: CaseFilters | None = None):
    """The cases ``user`` may see that match ``f``, newest first.

    For a user bound to one party the list is that party's cases whatever is asked, and a
    filter never matches on the other parties of a shared case: the party and kind filters
    (not offered to them) are ignored, and the clause, ticket, amount and appeal filters look
    only at the party's own violations, penalties and appeals."""
    from portal.cases.models import Appeal, AppealStatus

    f = f or CaseFilters()
    q = select(Case).order_by(Case.id.desc())
    scope = party_scope(user)
    own_violations = Violation.party_id == scope if scope is not None else true()
    if scope is not None:
        q = q.where(_involving(scope))
    if f.status:
        q = q.where(Case.status == f.status)
    appellants = None     # the appeal filter counts the appeals of the parties asked for
    if scope is not None:
        appellants = [scope]
    elif f.party:         # a plain list of ids for the planner
        parties = db.session.scalars(parties_matching(f.kind, f.party)).all()
        q = q.where(Case.id.in_(select(CaseParty.case_id)
                                .where(CaseParty.party_id.in_(parties))))
        appellants = parties
    elif f.kind is not None:
        q = q.where(Case.id.in_(select(CaseParty.case_id).where(CaseParty.kind == f.kind.value)))
        appellants = select(Party.id).where(Party.kind == f.kind)
    appealed = _appeal_condition(f, appellants)
    if appealed is not None:
        q = q.where(appealed)
    if f.standard_id is not None:
        q = q.where(Case.id.in_(select(Violation.case_id).where(
            Violation.standard_id == f.standard_id, Violation.clause_number == f.clause_number,
            Violation.case_id.is_not(None), own_violations)))
    if f.incident_from is not None:
        q = q.where(Case.incident_at >= f.incident_from)
    if f.incident_to is not None:
        q = q.where(Case.incident_at <= f.incident_to)
    if f.min_amount is not None:
        if scope is None:
            q = q.where(Case.id.in_(select(Ruling.case_id).where(
                Ruling.status == RulingStatus.EFFECTIVE, Ruling.total_amount >= f.min_amount)))
        else:             # what this party owes under the ruling in effect (the list's amount)
            q = q.where(Case.id.in_(
                select(Penalty.case_id).where(Penalty.party_id == scope, Penalty.active.is_(True))
                .group_by(Penalty.case_id).having(func.sum(Penalty.amount) >= f.min_amount)))
    if f.open_appeal:
        q = q.where(Case.id.in_(select(Appeal.case_id).where(
            Appeal.status == AppealStatus.OPEN,
            Appeal.party_id == scope if scope is not None else true())))
    if f.q:
        term = f.q.strip()
        number = CASE_NO.match(term)
        if number:
            q = q.where(Case.id == int(number.group(1)))
        else:
            q = q.where(or_(Case.title.contains(term, autoescape=True),
                            Case.id.in_(select(Violation.case_id)
                                        .where(Violation.ticket_no == term, own_violations))))
    return q


def cases_page(user, f: CaseFilters, page: int, per_page: int = PER_PAGE) -> CappedPage:
    """One page of the case list, each case with what its row shows loaded in a few queries
    (its violations' and penalties' parties, its rulings)."""
    q = visible_cases_query(user, f).options(
        selectinload(Case.violations).selectinload(Violation.party),
        selectinload(Case.rulings).selectinload(Ruling.shares),
        selectinload(Case.rulings).selectinload(Ruling.penalties).selectinload(Penalty.party))
    return capped_page(q, Case.id, page, per_page, COUNT_CAP)


class LedgerStatus(enum.StrEnum):
    STANDING = "standing"       # owed now
    WITHDRAWN = "withdrawn"     # superseded or replaced on appeal
    ALL = "all"


@dataclass
class LedgerFilters:
    kind: PartyKind | None = None
    party: str = ""
    since: datetime | None = None        # began to stand from (UTC bound of a local day)
    until: datetime | None = None
    status: LedgerStatus = LedgerStatus.STANDING
    case_no: int | None = None


@dataclass(frozen=True)
class LedgerTotals:
    count: int
    fine: Decimal
    compensation: Decimal
    amount: Decimal
    points: int


def visible_penalties_query(user, f: LedgerFilters | None = None):
    """The penalties ``user`` may see that match ``f``, newest first. A penalty replaced by
    an appeal with nothing owed (overturned) never stood and is not listed."""
    f = f or LedgerFilters()
    q = select(Penalty).order_by(Penalty.created_at.desc(), Penalty.id.desc())
    scope = party_scope(user)
    if scope is not None:     # a party's own ledger: the party and kind filters are not theirs
        q = q.where(Penalty.party_id == scope)
        f = replace(f, kind=None, party="")
    if f.status is LedgerStatus.STANDING:
        q = q.where(Penalty.active.is_(True))
    elif f.status is LedgerStatus.WITHDRAWN:
        q = q.where(Penalty.withdrawn_at.is_not(None))
    else:
        q = q.where(or_(Penalty.active.is_(True), Penalty.withdrawn_at.is_not(None)))
    if f.kind is not None or f.party:
        parties = parties_matching(f.kind, f.party)
        if f.party:
            parties = db.session.scalars(parties).all()
        q = q.where(Penalty.party_id.in_(parties))
    if f.since is not None:
        q = q.where(Penalty.created_at >= f.since)
    if f.until is not None:
        q = q.where(Penalty.created_at <= f.until)
    if f.case_no is not None:
        q = q.where(Penalty.case_id == f.case_no)
    return q


def ledger_page(user, f: LedgerFilters, page: int, per_page: int = LEDGER_PER_PAGE
                ) -> CappedPage:
    q = visible_penalties_query(user, f).options(
        selectinload(Penalty.party), selectinload(Penalty.share), selectinload(Penalty.case),
        selectinload(Penalty.ruling))
    return capped_page(q, Penalty.id, page, per_page, COUNT_CAP)


def ledger_totals(user, f: LedgerFilters) -> LedgerTotals:
    """The sums over every penalty matching ``f`` (not only the page shown)."""
    matching = visible_penalties_query(user, f).order_by(None).subquery()
    row = db.session.execute(select(
        func.count(), func.coalesce(func.sum(matching.c.fine), 0),
        func.coalesce(func.sum(matching.c.compensation), 0),
        func.coalesce(func.sum(matching.c.points), 0))).one()
    fine, compensation = to_money(row[1]), to_money(row[2])
    # a penalty's amount is its fine plus the compensation recovered: one sum fewer
    return LedgerTotals(row[0], fine, compensation, fine + compensation, int(row[3]))


def ruled_clauses() -> list[Clause]:
    """Clauses of the versions in force, for the violation form."""
    from portal.standards.models import StandardVersion

    return db.session.scalars(
        select(Clause).join(StandardVersion)
        .where(StandardVersion.status == VersionStatus.PUBLISHED)
        .order_by(StandardVersion.standard_id, Clause.position)).all()
