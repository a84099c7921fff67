"""HR penalty notices: created from rulings, acknowledged and acted on by HR. Caller commits."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ServiceError
from portal.core.permissions import Role, party_scope
from portal.extensions import db
from portal.hr.models import HrNotice, NoticeStatus


def notices_for_ruling(ruling) -> list[HrNotice]:
    """One notice per penalty on an internal department, naming the responsible employee."""
    notices = []
    for penalty in ruling.penalties:
        share = penalty.share
        if not share.party.is_internal:
            continue
        notice = HrNotice(penalty=penalty, case_id=ruling.case_id, department_id=share.party_id,
                          employee_no=share.employee_no, employee_name=share.employee_name,
                          amount=penalty.amount, rationale=ruling.rationale)
        db.session.add(notice)
        db.session.flush()
        record("hr_notice.sent", notice, after=notice.snapshot())
        notices.append(notice)
    return notices


def acknowledge_notice(notice: HrNotice, user) -> HrNotice:
    if notice.status is not NoticeStatus.SENT:
        raise ServiceError(_("Notice %(n)s was already acknowledged.", n=notice.number))
    before = notice.snapshot()
    notice.status = NoticeStatus.ACKNOWLEDGED
    notice.acknowledged_at = utcnow()
    notice.acknowledged_by_id = user.id
    record("hr_notice.acknowledged", notice, before=before, after=notice.snapshot())
    return notice


def record_action(notice: HrNotice, user, action_taken: str) -> HrNotice:
    if notice.status is NoticeStatus.SENT:
        raise ServiceError(_("Acknowledge receipt of the notice before recording the action."))
    if notice.status is NoticeStatus.ACTIONED:
        raise ServiceError(_("The action on notice %(n)s is already recorded.", n=notice.number))
    if not (action_taken or "").strip():
        raise ServiceError(_("Describe the action taken."), "action_taken")
    before = notice.snapshot()
    notice.action_taken = action_taken.strip()
    notice.status = NoticeStatus.ACTIONED
    notice.actioned_at = utcnow()
    notice.actioned_by_id = user.id
    record("hr_notice.actioned", notice, before=before, after=notice.snapshot())
    return notice


def visible_notices_query(user):
    q = select(HrNotice).order_by(HrNotice.id.desc())
    if user.role is Role.DEPARTMENT_MANAGER:
        q = q.where(HrNotice.department_id == party_scope(user))
    return q
