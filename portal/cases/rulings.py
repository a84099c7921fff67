"""Rulings (裁定): blame split over parties, decision levels, approval, correction.

Pricing a case: its violations' party fines, the customer compensation paid out (recovered from
the responsible parties) and points are summed; each total is split over the responsibility
shares by ``core.money.split_by_shares`` (each part rounded half-up to the fen, the remaining
fen to the largest share, so the parts always add up), points the same way in whole points.

Decision levels: ``RULING_APPROVAL_LEVELS`` maps the amount the parties owe to the role that
must sign (default: up to ¥2,000 the officer alone; up to ¥20,000 a supervisor; above that a
director). A ruling above the officer's limit waits, and takes effect only when a different
person of that rank or higher signs it; the signature records who, when and what it means.

Rulings are never edited. A correction is a new ruling that supersedes the effective one, with
a reason; it passes the same decision levels, and when it takes effect the old ruling's
penalties stop standing. A fine on a clause the party never acknowledged needs an explicit
override reason on its share. The caller commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.cases.models import (
    Case,
    CaseStatus,
    Penalty,
    ResponsibilityShare,
    Ruling,
    RulingArithmetic,
    RulingStatus,
    ViolationStatus,
)
from portal.cases.pricing import Breach, PricingError, price
from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ConflictError, ServiceError
from portal.core.money import format_yuan, split_by_shares
from portal.core.permissions import Role
from portal.extensions import db
from portal.parties.models import Party

RANK = {Role.CS_OFFICER: 1, Role.CS_SUPERVISOR: 2, Role.CS_ADMIN: 2, Role.CS_DIRECTOR: 3}
REASON_MAX = 2000


@dataclass(frozen=True)
class ShareInput:
    party_id: int
    percent: int
    employee_no: str = ""
    employee_name: str = ""
    override_reason: str = ""


@dataclass(frozen=True)
class Totals:
    fine: Decimal
    compensation: Decimal
    points: int
    serious_points: int = 0     # the part of ``points`` from serious clauses

    @property
    def owed(self) -> Decimal:
        return self.fine + self.compensation


def case_totals(case: Case) -> Totals:
    confirmed = [v for v in case.violations if v.status is ViolationStatus.CONFIRMED]
    return Totals(sum((v.party_fine for v in confirmed), Decimal("0.00")),
                  sum((v.customer_compensation for v in confirmed), Decimal("0.00")),
                  sum(v.points for v in confirmed),
                  sum(v.points for v in confirmed if v.clause.serious))


def split_points(total: int, percents: list[int]) -> list[int]:
    """Whole points by share: each rounded half-up, the remainder to the largest share."""
    parts = [int((Decimal(total) * p / 100).to_integral_value(rounding="ROUND_HALF_UP"))
             for p in percents]
    if parts:
        largest = max(range(len(percents)), key=lambda i: (percents[i], -i))
        parts[largest] += total - sum(parts)
    return parts


# --- decision levels --------------------------------------------------------------------------

def approval_levels() -> list[tuple[Decimal | None, Role]]:
    """``[(up to amount or None for any amount, role)]`` from ``RULING_APPROVAL_LEVELS``
    ("2000:cs_officer,20000:cs_supervisor,:cs_director")."""
    levels = []
    for item in current_app.config["RULING_APPROVAL_LEVELS"].split(","):
        limit, _sep, role = item.strip().partition(":")
        levels.append((Decimal(limit) if limit.strip() else None, Role(role.strip())))
    return levels


def required_role(amount: Decimal) -> Role:
    for limit, role in approval_levels():
        if limit is None or amount <= limit:
            return role
    return approval_levels()[-1][1]


def may_sign(user, role: Role) -> bool:
    return RANK.get(user.role, 0) >= RANK[role]


# --- acknowledgement and training of the parties ------------------------------------------------

@dataclass
class ClauseStanding:
    """What one party knew of one clause of the case: acknowledged when, staff trained."""

    clause: object
    acknowledged_at: datetime | None
    trained: int
    staff: int


def standing(case: Case, party_ids: list[int], *, own_only: bool = False
             ) -> dict[int, list[ClauseStanding]]:
    """For each party, each clause of the case's confirmed violations (the version recorded is
    the one in force at the incident): the first acknowledgement of that version by the party's
    staff, and how many of its active staff hold a valid certificate covering it. With
    ``own_only`` each party's list holds only the clauses it broke itself (a ruling priced by
    breach and loss fines no party under another party's clause)."""
    from portal.accounts.models import User
    from portal.standards.models import Acknowledgement
    from portal.training.models import Certificate, CertificateVersion

    confirmed = [v for v in case.violations if v.status is ViolationStatus.CONFIRMED]
    clauses = {v.clause_id: v.clause for v in confirmed}
    broke = {(v.party_id, v.clause_id) for v in confirmed}
    versions = {c.standard_version_id for c in clauses.values()}
    if not party_ids or not versions:
        return {p: [] for p in party_ids}
    acked = {(party, version): at for party, version, at in db.session.execute(
        select(Acknowledgement.party_id, Acknowledgement.standard_version_id,
               func.min(Acknowledgement.acknowledged_at))
        .where(Acknowledgement.party_id.in_(party_ids),
               Acknowledgement.standard_version_id.in_(versions))
        .group_by(Acknowledgement.party_id, Acknowledgement.standard_version_id))}
    staff = dict(db.session.execute(
        select(User.party_id, func.count(User.id))
        .where(User.party_id.in_(party_ids), User.active.is_(True)).group_by(User.party_id)).all())
    from portal.core.timeutil import local_today

    today = local_today()
    trained = {(party, version): n for party, version, n in db.session.execute(
        select(User.party_id, CertificateVersion.standard_version_id,
               func.count(func.distinct(Certificate.user_id)))
        .join(Certificate, Certificate.user_id == User.id)
        .join(CertificateVersion, CertificateVersion.certificate_id == Certificate.id)
        .where(User.party_id.in_(party_ids), User.active.is_(True),
               CertificateVersion.standard_version_id.in_(versions),
               Certificate.revoked_at.is_(None),
               (Certificate.expires_on.is_(None)) | (Certificate.expires_on >= today))
        .group_by(User.party_id, CertificateVersion.standard_version_id))}
    return {p: [ClauseStanding(c, acked.get((p, c.standard_version_id)),
                               trained.get((p, c.standard_version_id), 0), staff.get(p, 0))
                for c in clauses.values() if not own_only or (p, c.id) in broke]
            for p in party_ids}


def unacknowledged(case: Case, party_id: int) -> list:
    return [s.clause for s in standing(case, [party_id])[party_id] if s.acknowledged_at is None]


# --- ruling ---------------------------------------------------------------------------------------

def issue_ruling(case: Case, *, officer, rationale: str, shares: list[ShareInput],
                 case_version: int | None = None, supersede_reason: str = "",
                 arithmetic: RulingArithmetic = RulingArithmetic.WHOLE_CASE) -> Ruling:
    """Rule on ``case`` (or correct its effective ruling, with ``supersede_reason``). Takes
    effect at once within the officer's limit, else waits for the approver.
    ``case_version``: the version of the case the officer saw; another change since is a
    conflict. ``arithmetic``: how the shares price the case (``RulingArithmetic``; the ruling
    form still rules by the whole case until the breach-and-loss form replaces it)."""
    if case_version is not None and case_version != case.version:
        raise ConflictError(_("Someone else changed case %(n)s while you were writing this "
                              "ruling. Your ruling was not saved; your text is still in the "
                              "form: check the case above, then submit again.", n=case.number))
    if case.status is CaseStatus.AWAITING_APPROVAL:
        raise ServiceError(_("A ruling on case %(n)s is waiting for approval; it must be "
                             "approved or declined first.", n=case.number))
    superseded = case.ruling if case.status is CaseStatus.RULED else None
    if superseded is not None and not (supersede_reason or "").strip():
        raise ServiceError(_("Case %(n)s is already ruled. A correction is a new ruling that "
                             "replaces the old one: give the reason for the correction.",
                             n=case.number), "supersede_reason")
    totals = case_totals(case)
    if totals.owed == 0 and totals.points == 0:
        raise ServiceError(_("Record at least one violation before ruling."))
    if not (rationale or "").strip():
        raise ServiceError(_("A ruling needs a written rationale."), "rationale")
    if len(rationale) > 10_000 or len(supersede_reason or "") > REASON_MAX:
        raise ServiceError(_("The text is too long."), "rationale")
    parties = _validate_shares(shares)
    by_breach = arithmetic is RulingArithmetic.BREACH_AND_LOSS
    parts = _priced_shares(case, shares, parties) if by_breach else _whole_case_shares(
        totals, shares)
    overrides = _check_overrides(case, shares, parties, own_only=by_breach)
    role = required_role(totals.owed)
    ruling = Ruling(case=case, officer_id=officer.id, rationale=rationale.strip(),
                    total_amount=totals.owed, fine_total=totals.fine,
                    compensation_total=totals.compensation, points_total=totals.points,
                    ruled_at=utcnow(), status=RulingStatus.PENDING, required_role=role.value,
                    supersedes=superseded, supersede_reason=(supersede_reason or "").strip(),
                    arithmetic=arithmetic)
    db.session.add(ruling)
    for s, fine, comp, points, serious in parts:
        db.session.add(ResponsibilityShare(
            ruling=ruling, party_id=s.party_id, percent=s.percent,
            employee_no=s.employee_no.strip(), employee_name=s.employee_name.strip(),
            fine=fine, compensation=comp, points=points, serious_points=min(serious, points),
            override_reason=overrides.get(s.party_id, "")))
    db.session.flush()
    from portal.cases.services import involve

    involve(case.id, parties.values())
    before = case.snapshot()
    record("ruling.issued", ruling, after={
        "case": case.number, "total": totals.owed, "fine": totals.fine,
        "compensation": totals.compensation, "points": totals.points,
        "rationale": ruling.rationale, "requires": role.value,
        "supersedes": superseded.number if superseded else None,
        "supersede_reason": ruling.supersede_reason, "arithmetic": arithmetic.value,
        "shares": [{"party": parties[s.party_id].code, "percent": s.percent,
                    "override": overrides.get(s.party_id, "")} for s in shares]})
    if role is Role.CS_OFFICER:
        _take_effect(ruling)
    else:
        case.status = CaseStatus.AWAITING_APPROVAL
        record("case.awaiting_approval", case, before=before, after=case.snapshot())
    return ruling


def approve_ruling(ruling: Ruling, approver) -> Ruling:
    _pending(ruling)
    if approver.id == ruling.officer_id:
        raise ServiceError(_("A ruling is signed by someone other than the officer who made "
                             "it."))
    role = Role(ruling.required_role)
    if not may_sign(approver, role):
        raise ServiceError(_("Ruling %(r)s for %(amount)s needs the signature of a %(role)s or "
                             "higher.", r=ruling.number, amount=format_yuan(ruling.total_amount),
                             role=role_label(role)))
    ruling.approved_by_id, ruling.approved_at = approver.id, utcnow()
    ruling.approval_meaning = _("Approved ruling %(r)s on case %(c)s for %(amount)s.",
                                r=ruling.number, c=ruling.case.number,
                                amount=format_yuan(ruling.total_amount))
    record("ruling.approved", ruling, after={
        "case": ruling.case.number, "signed_by": approver.display_name,
        "signed_at": ruling.approved_at, "meaning": ruling.approval_meaning})
    _take_effect(ruling)
    return ruling


def decline_ruling(ruling: Ruling, approver, reason: str) -> Ruling:
    _pending(ruling)
    if approver.id == ruling.officer_id:
        raise ServiceError(_("A ruling is signed by someone other than the officer who made "
                             "it."))
    if not may_sign(approver, Role(ruling.required_role)):
        raise ServiceError(_("Only a %(role)s or higher may decline this ruling.",
                             role=role_label(Role(ruling.required_role))))
    if not (reason or "").strip():
        raise ServiceError(_("Say why the ruling is declined: the officer reads it."), "reason")
    case = ruling.case
    before = case.snapshot()
    ruling.status, ruling.declined_reason = RulingStatus.DECLINED, reason.strip()[:REASON_MAX]
    ruling.approved_by_id, ruling.approved_at = approver.id, utcnow()
    case.status = CaseStatus.RULED if ruling.supersedes_id else CaseStatus.OPEN
    record("ruling.declined", ruling, after={"case": case.number, "reason": ruling.declined_reason,
                                             "by": approver.display_name})
    record("case.reopened" if case.status is CaseStatus.OPEN else "case.correction_declined",
           case, before=before, after=case.snapshot())
    return ruling


def role_label(role: Role) -> str:
    from portal.accounts.forms import ROLE_LABELS

    return str(ROLE_LABELS.get(role, role.value))


def _pending(ruling: Ruling) -> None:
    if ruling.status is not RulingStatus.PENDING:
        raise ServiceError(_("Ruling %(r)s is not waiting for approval (someone else may have "
                             "signed or declined it meanwhile).", r=ruling.number))


def _take_effect(ruling: Ruling) -> None:
    case = ruling.case
    before = case.snapshot()
    old = ruling.supersedes
    now = utcnow()
    if old is not None:
        old.status = RulingStatus.SUPERSEDED
        for p in old.penalties:
            if p.active:
                p.withdraw(now)
        record("ruling.superseded", old, after={"case": case.number, "by": ruling.number,
                                                "reason": ruling.supersede_reason})
    ruling.status, ruling.effective_at = RulingStatus.EFFECTIVE, now
    parties = {p.id: p for p in db.session.scalars(select(Party).where(
        Party.id.in_([s.party_id for s in ruling.shares])))}
    for share in ruling.shares:
        penalty = Penalty(ruling=ruling, share=share, case=case, party_id=share.party_id,
                          amount=share.fine + share.compensation, fine=share.fine,
                          compensation=share.compensation, points=share.points,
                          serious_points=share.serious_points, created_at=now)
        db.session.add(penalty)
        record("penalty.created", penalty, after={
            "case": case.number, "party": parties[share.party_id].code,
            "percent": share.percent, "fine": share.fine, "compensation": share.compensation,
            "points": share.points, "amount": penalty.amount})
    case.status = CaseStatus.RULED
    db.session.flush()
    record("ruling.effective", ruling, after={"case": case.number, "total": ruling.total_amount})
    record("case.ruled", case, before=before, after=case.snapshot())

    from portal.cases.sanctions import review_sanctions
    from portal.cases.updates import ruling_effective
    from portal.hr.services import notices_for_ruling

    notices_for_ruling(ruling)
    ruling_effective(ruling)
    review_sanctions({s.party_id for s in ruling.shares} |
                     ({p.party_id for p in old.penalties} if old is not None else set()))


def _whole_case_shares(totals: Totals, shares: list[ShareInput]):
    """``whole_case_v1``: each share's percent of every fine, compensation and point of the
    case: ``(share, fine, compensation, points, serious points)``."""
    percents = [s.percent for s in shares]
    return list(zip(shares, split_by_shares(totals.fine, percents),
                    split_by_shares(totals.compensation, percents),
                    split_points(totals.points, percents),
                    split_points(totals.serious_points, percents), strict=True))


def _priced_shares(case: Case, shares: list[ShareInput], parties: dict):
    """``breach_loss_v2`` (``cases.pricing``): each party's own fines and points in full, its
    share of the loss (the customers' compensation) as compensation recovered."""
    breaches = [Breach(v.party_id, v.party_fine, v.points, bool(v.clause.serious),
                       v.customer_compensation, v.id)
                for v in case.violations if v.status is ViolationStatus.CONFIRMED]
    try:
        priced = price(breaches, [], [(s.party_id, s.percent) for s in shares])
    except PricingError as err:
        party = parties.get(err.party_id) or db.session.get(Party, err.party_id)
        code = party.code if party is not None else ""
        if err.code == "breach_without_share":
            raise ServiceError(_("%(party)s broke a clause of this case: its fine is ruled on "
                                 "here, so give it a share.", party=code), "shares") from None
        if err.code == "nothing_owed":
            raise ServiceError(_("%(party)s broke no clause of this case and there is no loss "
                                 "to share: leave it out of the ruling.", party=code),
                               "shares") from None
        raise ServiceError(_("The shares cannot price this case."), "shares") from None
    return [(s, p.fine, p.loss_part, p.points, p.serious_points)
            for s, p in zip(shares, priced.parties, strict=True)]


def _check_overrides(case: Case, shares: list[ShareInput], parties: dict, *,
                     own_only: bool = False) -> dict[int, str]:
    """The override reason of each share whose party never acknowledged a clause of the case
    (with ``own_only``: a clause it broke itself); refuses a share that needs one and has
    none."""
    needed = standing(case, [s.party_id for s in shares], own_only=own_only)
    reasons = {}
    for s in shares:
        missing = [st.clause for st in needed[s.party_id] if st.acknowledged_at is None]
        if not missing:
            continue
        reason = (s.override_reason or "").strip()
        if not reason:
            raise ServiceError(_("%(party)s never acknowledged %(clauses)s: a fine on it needs "
                                 "an override reason on that share.",
                                 party=parties[s.party_id].code,
                                 clauses=", ".join(c.label for c in missing)), "shares")
        reasons[s.party_id] = reason[:REASON_MAX]
    return reasons


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
