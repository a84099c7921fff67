"""Appeals (申诉): a party contests its share of a ruling, an officer other than the one who
ruled decides.

The window: ``APPEAL_DAYS`` (default 7) from the moment the ruling took effect for round 1,
from the round-1 decision for round 2; at most two rounds. A window that has passed is closed
by the clock itself (nothing needs to run for it). An appeal is decided upheld (nothing
changes), reduced (the party's penalty is replaced by a lower one) or overturned (the penalty
stops standing), always with a reason. The caller commits.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from portal.cases.models import (
    Appeal,
    AppealStatus,
    Case,
    Penalty,
    Ruling,
    RulingStatus,
)
from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.money import MoneyError, format_yuan, to_money
from portal.extensions import db

MAX_ROUNDS = 2
TEXT_MAX = 5000


def outcome_label(status: AppealStatus) -> str:
    return {AppealStatus.OPEN: _("Waiting for a decision"), AppealStatus.UPHELD: _("Upheld"),
            AppealStatus.REDUCED: _("Reduced"), AppealStatus.OVERTURNED: _("Overturned")}[status]


def appeal_days() -> int:
    return int(current_app.config["APPEAL_DAYS"])


def appeals_of(case: Case, party_id: int | None = None) -> list[Appeal]:
    q = select(Appeal).where(Appeal.case_id == case.id).order_by(Appeal.id)
    if party_id is not None:
        q = q.where(Appeal.party_id == party_id)
    return db.session.scalars(q).all()


def standing_penalty(ruling: Ruling, party_id: int) -> Penalty | None:
    """The party's penalty for the ruling as it stands now (after any appeal)."""
    return db.session.scalar(select(Penalty).where(
        Penalty.ruling_id == ruling.id, Penalty.party_id == party_id,
        Penalty.active.is_(True)).order_by(Penalty.id.desc()).limit(1))


def window(case: Case, party_id: int, now: datetime | None = None
           ) -> tuple[int, datetime] | None:
    """``(round, closes_at)`` if the party may appeal now, else None."""
    now = now or utcnow()
    ruling = case.ruling
    if ruling is None or ruling.status is not RulingStatus.EFFECTIVE:
        return None
    if standing_penalty(ruling, party_id) is None:
        return None
    done = [a for a in appeals_of(case, party_id) if a.ruling_id == ruling.id]
    if any(a.status is AppealStatus.OPEN for a in done) or len(done) >= MAX_ROUNDS:
        return None
    if done and done[-1].status is AppealStatus.OVERTURNED:
        return None
    opened = done[-1].decided_at if done else ruling.effective_at
    closes = opened + timedelta(days=appeal_days())
    return (len(done) + 1, closes) if now < closes else None


def file_appeal(case: Case, party_id: int, statement: str, user) -> Appeal:
    open_round = window(case, party_id)
    if open_round is None:
        raise ServiceError(_("Case %(n)s cannot be appealed now: the appeal window has closed, "
                             "an appeal is already being decided, or both rounds are used.",
                             n=case.number))
    text = (statement or "").strip()
    if not text:
        raise ServiceError(_("Say why the ruling is wrong for your party."), "statement")
    if len(text) > TEXT_MAX:
        raise ServiceError(_("The statement may be at most %(n)d characters.", n=TEXT_MAX),
                           "statement")
    ruling = case.ruling
    appeal = Appeal(case=case, ruling=ruling, party_id=party_id, round=open_round[0],
                    statement=text, filed_by_id=user.id, filed_at=utcnow(),
                    penalty=standing_penalty(ruling, party_id))
    db.session.add(appeal)
    db.session.flush()
    record("appeal.filed", appeal, after={**appeal.snapshot(), "statement": text,
                                          "window_closed_at": open_round[1]})
    from portal.cases.updates import appeal_filed

    appeal_filed(appeal)
    return appeal


def decide_appeal(appeal: Appeal, officer, outcome: AppealStatus, reason: str, *,
                  fine=None, compensation=None, points=None) -> Appeal:
    """Decide an open appeal. ``reduced`` takes the new fine, compensation and points, each no
    more than before and at least one lower."""
    if appeal.status is not AppealStatus.OPEN:
        raise ServiceError(_("Appeal %(a)s has already been decided.", a=appeal.number))
    if officer.id == appeal.ruling.officer_id:
        raise ServiceError(_("An appeal is decided by an officer other than the one who made "
                             "the ruling."))
    if outcome is AppealStatus.OPEN:
        raise ServiceError(_("Choose an outcome."), "outcome")
    text = (reason or "").strip()
    if not text:
        raise ServiceError(_("Give the reasons for the decision: the party reads them."),
                           "reason")
    old = appeal.penalty
    if outcome is AppealStatus.REDUCED:
        new = _reduced(old, fine, compensation, points)
    elif outcome is AppealStatus.OVERTURNED:
        new = (Decimal("0.00"), Decimal("0.00"), 0)
    appeal.status, appeal.decision_reason = outcome, text[:TEXT_MAX]
    appeal.decided_by_id, appeal.decided_at = officer.id, utcnow()
    after = {**appeal.snapshot(), "reason": appeal.decision_reason}
    if outcome is not AppealStatus.UPHELD:
        old.withdraw(appeal.decided_at)
        replacement = Penalty(ruling_id=old.ruling_id, share_id=old.share_id,
                              case_id=old.case_id, party_id=old.party_id,
                              fine=new[0], compensation=new[1], points=new[2],
                              serious_points=min(old.serious_points, new[2]),
                              amount=new[0] + new[1], active=outcome is AppealStatus.REDUCED,
                              created_at=appeal.decided_at)
        db.session.add(replacement)
        db.session.flush()
        appeal.new_penalty_id = replacement.id
        after.update(before_amount=old.amount, amount=replacement.amount,
                     fine=new[0], compensation=new[1], points=new[2])
        record("penalty.replaced", replacement, before={"penalty": old.id, "amount": old.amount},
               after={"amount": replacement.amount, "appeal": appeal.number})
    record("appeal.decided", appeal, after=after)
    if outcome is not AppealStatus.UPHELD:
        from portal.cases.sanctions import review_sanctions
        from portal.hr.services import follow_appeal

        follow_appeal(appeal)   # a department's HR notice is amended or withdrawn with it
        review_sanctions({old.party_id})
    from portal.cases.updates import appeal_decided

    appeal_decided(appeal)
    return appeal


def _reduced(old: Penalty, fine, compensation, points) -> tuple[Decimal, Decimal, int]:
    try:
        new_fine = to_money(fine if fine not in (None, "") else old.fine)
        new_comp = to_money(compensation if compensation not in (None, "") else old.compensation)
    except MoneyError:
        raise ServiceError(_("Enter the new amounts in yuan, e.g. 250.00."), "fine") from None
    try:
        new_points = int(points) if points not in (None, "") else old.points
    except (TypeError, ValueError):
        raise ServiceError(_("Points are a whole number."), "points") from None
    if min(new_fine, new_comp) < 0 or new_points < 0:
        raise ServiceError(_("Amounts and points cannot be negative."), "fine")
    if new_fine > old.fine or new_comp > old.compensation or new_points > old.points:
        raise ServiceError(_("A reduction cannot raise anything: the penalty was %(f)s fine, "
                             "%(c)s compensation and %(p)d points.", f=format_yuan(old.fine),
                             c=format_yuan(old.compensation), p=old.points), "fine")
    if (new_fine, new_comp, new_points) == (old.fine, old.compensation, old.points):
        raise ServiceError(_("A reduction must lower something; to leave the penalty as it is, "
                             "uphold the ruling."), "fine")
    return new_fine, new_comp, new_points
