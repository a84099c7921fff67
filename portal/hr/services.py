"""HR penalty notices: written from rulings, kept in step with corrections and appeals, and
acknowledged, acted on and closed by HR. The caller commits.

Following a ruling's fate (the amendment rule):

* a ruling takes effect: one notice per penalty on an internal department, naming the
  employee of that share (``notices_for_ruling``);
* a correcting ruling takes effect: each earlier notice is matched by department and employee
  number to the new ruling's shares. No match: the notice is withdrawn. A match whose facts
  (amount, share, clauses, rationale, proposed sanction) changed: the notice is amended: the
  earlier facts and whatever HR had done are kept in its history, and it goes back to *new*,
  so HR acknowledges the amended notice and records the action that stands now. Facts
  unchanged: it only follows the new ruling's penalty (carried over, nothing for HR to do);
* an appeal overturns the department's penalty: the notice is withdrawn; reduces it: amended.

Every change HR must know about (created, amended, withdrawn, escalated) queues an email to
each HR officer in their language and a webhook event, in the same transaction.
"""
from __future__ import annotations

import json
from decimal import Decimal

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.cases.models import Case, Penalty, RulingArithmetic, ViolationStatus
from portal.core.audit import record
from portal.core.db import utcnow
from portal.core.errors import ConflictError, ServiceError, required_reason
from portal.core.i18n import current_locale
from portal.core.money import format_yuan, to_money
from portal.core.notify import email_user, webhook
from portal.core.permissions import Role, party_scope
from portal.extensions import db
from portal.hr.models import (
    ActionKind,
    EventKind,
    HrNotice,
    HrNoticeEvent,
    NoticeStatus,
)
from portal.standards.rules import HrSanction, RuleKind

TEXT_MAX = 2000


# --- writing notices and following the ruling ------------------------------------------------

def notices_for_ruling(ruling) -> list[HrNotice]:
    """When ``ruling`` takes effect: a notice for each of its penalties on an internal
    department; if it corrects an earlier ruling, that ruling's notices follow it (amended,
    carried over or withdrawn, see the module's doc). Returns the notices written anew."""
    earlier = _open_notices_of_ruling(ruling.supersedes_id) if ruling.supersedes_id else {}
    written = []
    for penalty in ruling.penalties:
        share = penalty.share
        if not penalty.active or not share.party.is_internal:
            continue
        notice = earlier.pop((share.party_id, share.employee_no), None)
        if notice is None:
            written.append(_write(penalty, ruling))
        else:
            _follow(notice, penalty, ref=ruling.number, reason=ruling.supersede_reason,
                    actor=ruling.officer)
    for notice in earlier.values():
        _withdraw(notice, ref=ruling.number, reason=ruling.supersede_reason,
                  actor=ruling.officer)
    return written


def follow_appeal(appeal) -> HrNotice | None:
    """After an appeal was decided: a notice on the appealed penalty is withdrawn when the
    appeal overturned it, amended when it reduced it."""
    from portal.cases.models import AppealStatus

    if appeal.status not in (AppealStatus.REDUCED, AppealStatus.OVERTURNED):
        return None
    notice = db.session.scalar(select(HrNotice).where(
        HrNotice.penalty_id == appeal.penalty_id, HrNotice.status != NoticeStatus.WITHDRAWN))
    if notice is None:
        return None
    if appeal.status is AppealStatus.OVERTURNED:
        _withdraw(notice, ref=appeal.number, reason=appeal.decision_reason,
                  actor=appeal.decided_by)
    else:
        replacement = db.session.get(Penalty, appeal.new_penalty_id)
        _follow(notice, replacement, ref=appeal.number, reason=appeal.decision_reason,
                actor=appeal.decided_by)
    return notice


def _open_notices_of_ruling(ruling_id: int) -> dict[tuple[int, str], HrNotice]:
    notices = db.session.scalars(
        select(HrNotice).join(Penalty, Penalty.id == HrNotice.penalty_id)
        .where(Penalty.ruling_id == ruling_id, HrNotice.status != NoticeStatus.WITHDRAWN)
        .order_by(HrNotice.id)).all()
    return {(n.department_id, n.employee_no): n for n in notices}


def notice_facts(penalty: Penalty) -> dict:
    """What a notice says about ``penalty``: amount, share, rationale, the clauses breached
    and the sanction they propose. The clauses are the department's own violations; a ruling
    priced as the whole case (``whole_case_v1``) charged the department for every clause of
    the case, so a department without a violation of its own is shown all of them there."""
    share, ruling = penalty.share, penalty.ruling
    case = db.session.get(Case, penalty.case_id)
    confirmed = [v for v in case.violations if v.status is ViolationStatus.CONFIRMED]
    own = [v for v in confirmed if v.party_id == share.party_id]
    if ruling.arithmetic is not RulingArithmetic.BREACH_AND_LOSS and not own:
        own = confirmed
    clauses = {v.clause_id: v.clause for v in own}
    ordered = sorted(clauses.values(), key=lambda c: c.label)
    proposal, text = proposed_sanction(ordered)
    return {"amount": str(to_money(penalty.amount)), "percent": share.percent,
            "rationale": ruling.rationale,
            "clauses": [{"label": c.label, "title_zh": c.title_zh, "title_en": c.title_en}
                        for c in ordered],
            "proposal": proposal.value if proposal else None, "proposal_text": text}


def proposed_sanction(clauses) -> tuple[HrSanction | None, str]:
    """The gravest ``hr_sanction`` among the clauses' rules, with its text."""
    order = list(HrSanction)
    found = [(HrSanction(r.params["proposal"]), r.params.get("text", ""))
             for c in clauses for r in c.rules if r.kind is RuleKind.HR_SANCTION]
    if not found:
        return None, ""
    return max(found, key=lambda item: order.index(item[0]))


def _apply(notice: HrNotice, facts: dict) -> None:
    notice.amount = Decimal(facts["amount"])
    notice.percent = facts["percent"]
    notice.rationale = facts["rationale"]
    notice.clauses_json = json.dumps(facts["clauses"], ensure_ascii=False)
    notice.proposal = HrSanction(facts["proposal"]) if facts["proposal"] else None
    notice.proposal_text = facts["proposal_text"]


def _write(penalty: Penalty, ruling) -> HrNotice:
    share = penalty.share
    notice = HrNotice(penalty=penalty, case_id=penalty.case_id, department_id=share.party_id,
                      employee_no=share.employee_no, employee_name=share.employee_name,
                      status=NoticeStatus.NEW)
    _apply(notice, notice_facts(penalty))
    db.session.add(notice)
    db.session.flush()
    _event(notice, EventKind.SENT, actor=ruling.officer, ref=ruling.number)
    record("hr_notice.sent", notice, after={**notice.snapshot(), "ruling": ruling.number})
    _tell(notice, "created")
    return notice


def _follow(notice: HrNotice, penalty: Penalty, *, ref: str, reason: str, actor=None) -> None:
    """``notice`` now carries out ``penalty`` (a correcting ruling's, or an appeal's)."""
    facts = notice_facts(penalty)
    before_facts, before = notice.facts(), notice.snapshot()
    notice.penalty = penalty
    if facts == before_facts:
        _event(notice, EventKind.CARRIED_OVER, actor=actor, ref=ref, reason=reason)
        record("hr_notice.carried_over", notice, before=before,
               after={**notice.snapshot(), "ref": ref})
        return
    previous = _hr_steps(notice)
    _apply(notice, facts)
    notice.status = NoticeStatus.NEW
    notice.acknowledged_at = notice.acknowledged_by_id = None
    notice.action_kind, notice.action_taken, notice.action_reason = None, "", ""
    notice.actioned_at = notice.actioned_by_id = None
    notice.closed_at = notice.closed_by_id = None
    notice.escalated_at = None
    notice.amended_at = utcnow()
    notice.amendments += 1
    _event(notice, EventKind.AMENDED, actor=actor, ref=ref, reason=reason,
           details={"before": before_facts, "after": facts, "previous": previous})
    record("hr_notice.amended", notice, before=before,
           after={**notice.snapshot(), "ref": ref, "reason": reason})
    _tell(notice, "amended")


def _withdraw(notice: HrNotice, *, ref: str, reason: str, actor=None) -> None:
    if notice.status is NoticeStatus.WITHDRAWN:
        return
    before = notice.snapshot()
    previous = _hr_steps(notice)
    notice.status = NoticeStatus.WITHDRAWN
    notice.withdrawn_at = utcnow()
    _event(notice, EventKind.WITHDRAWN, actor=actor, ref=ref, reason=reason,
           details={"previous": previous})
    record("hr_notice.withdrawn", notice, before=before,
           after={**notice.snapshot(), "ref": ref, "reason": reason})
    _tell(notice, "withdrawn")


def _hr_steps(notice: HrNotice) -> dict:
    """What HR had done on the notice, for its history when the facts change under it."""
    def when(value):
        return value.isoformat() if value else None

    return {"status": notice.status.value, "acknowledged_at": when(notice.acknowledged_at),
            "action_kind": notice.action_kind.value if notice.action_kind else None,
            "action_taken": notice.action_taken, "action_reason": notice.action_reason,
            "actioned_at": when(notice.actioned_at), "closed_at": when(notice.closed_at),
            "escalated_at": when(notice.escalated_at)}


def _event(notice: HrNotice, kind: EventKind, *, actor=None, ref: str = "", reason: str = "",
           details: dict | None = None) -> HrNoticeEvent:
    event = HrNoticeEvent(notice=notice, kind=kind, actor_id=getattr(actor, "id", None),
                          actor_name=getattr(actor, "display_name", "") or "",
                          ref=ref, reason=(reason or "")[:TEXT_MAX], created_at=utcnow(),
                          details_json=json.dumps(details or {}, ensure_ascii=False,
                                                  default=str))
    db.session.add(event)
    return event


# --- HR's steps ---------------------------------------------------------------------------------

def _check(notice: HrNotice, version) -> None:
    """Refuse a step on a notice that changed since the page was shown, or was withdrawn."""
    if version not in (None, "") and int(version) != notice.version:
        raise ConflictError(_("Notice %(n)s changed while you were looking at it (someone "
                              "else acted on it, or CS amended it). Reload the page to see "
                              "the change, then try again.", n=notice.number))
    if notice.status is NoticeStatus.WITHDRAWN:
        raise ServiceError(_("Notice %(n)s was withdrawn: there is nothing more to do on it.",
                             n=notice.number))


def acknowledge_notice(notice: HrNotice, user, version=None) -> HrNotice:
    _check(notice, version)
    if notice.status is not NoticeStatus.NEW:
        raise ServiceError(_("Notice %(n)s was already acknowledged.", n=notice.number))
    before = notice.snapshot()
    notice.status = NoticeStatus.ACKNOWLEDGED
    notice.acknowledged_at = utcnow()
    notice.acknowledged_by_id = user.id
    _event(notice, EventKind.ACKNOWLEDGED, actor=user)
    record("hr_notice.acknowledged", notice, before=before, after=notice.snapshot())
    return notice


def default_action(notice: HrNotice) -> ActionKind:
    """What the action form proposes: the sanction proposed, else "other" (described)."""
    return ActionKind(notice.proposal.value) if notice.proposal else ActionKind.OTHER


def record_action(notice: HrNotice, user, action_taken: str, *, kind=None, reason: str = "",
                  version=None) -> HrNotice:
    """Record what HR actually did: ``kind`` (an ``ActionKind``; default ``default_action``)
    and a description; a kind other than the one proposed needs ``reason``."""
    _check(notice, version)
    if notice.status is NoticeStatus.NEW:
        raise ServiceError(_("Acknowledge receipt of the notice before recording the action."))
    if notice.status is not NoticeStatus.ACKNOWLEDGED:
        raise ServiceError(_("The action on notice %(n)s is already recorded.", n=notice.number))
    try:
        kind = ActionKind(kind) if kind not in (None, "") else default_action(notice)
    except ValueError:
        raise ServiceError(_("Choose the action taken from the list."), "action_kind") from None
    text = (action_taken or "").strip()
    if not text:
        raise ServiceError(_("Describe the action taken."), "action_taken")
    if len(text) > TEXT_MAX:
        raise ServiceError(_("The text may be at most %(n)d characters.", n=TEXT_MAX),
                           "action_taken")
    why = (reason or "").strip()
    if notice.proposal is not None and kind.value != notice.proposal.value:
        why = required_reason(reason, _("The action differs from the sanction proposed "
                                        "(%(proposal)s): give the reason.",
                                        proposal=notice.proposal_label), TEXT_MAX)
    before = notice.snapshot()
    notice.action_kind, notice.action_taken, notice.action_reason = kind, text, why[:TEXT_MAX]
    notice.status = NoticeStatus.ACTIONED
    notice.actioned_at = utcnow()
    notice.actioned_by_id = user.id
    _event(notice, EventKind.ACTION_RECORDED, actor=user, reason=notice.action_reason,
           details={"action_kind": kind.value, "action_taken": text})
    record("hr_notice.actioned", notice, before=before, after=notice.snapshot())
    return notice


def close_notice(notice: HrNotice, user, version=None) -> HrNotice:
    _check(notice, version)
    if notice.status is NoticeStatus.CLOSED:
        raise ServiceError(_("Notice %(n)s is already closed.", n=notice.number))
    if notice.status is not NoticeStatus.ACTIONED:
        raise ServiceError(_("Record the action taken before closing notice %(n)s.",
                             n=notice.number))
    before = notice.snapshot()
    notice.status = NoticeStatus.CLOSED
    notice.closed_at = utcnow()
    notice.closed_by_id = user.id
    _event(notice, EventKind.CLOSED, actor=user)
    record("hr_notice.closed", notice, before=before, after=notice.snapshot())
    return notice


# --- escalation ----------------------------------------------------------------------------------

def escalate(notice: HrNotice, working_days: int) -> None:
    """Mark a notice left *new* too long and tell HR and the CS supervisors (once)."""
    before = notice.snapshot()
    notice.escalated_at = utcnow()
    _event(notice, EventKind.ESCALATED, details={"working_days": working_days,
                                                 "sent_at": notice.sent_at.isoformat()})
    record("hr_notice.escalated", notice, before=before,
           after={**notice.snapshot(), "working_days": working_days})
    _tell(notice, "escalated", supervisors=True)


# --- telling HR ---------------------------------------------------------------------------------

def _recipients(supervisors: bool = False) -> list:
    from portal.accounts.models import User

    roles = [Role.HR_OFFICER] + ([Role.CS_SUPERVISOR] if supervisors else [])
    return db.session.scalars(select(User).where(User.role.in_(roles),
                                                 User.active.is_(True))
                              .order_by(User.id)).all()


def _tell(notice: HrNotice, event: str, *, supervisors: bool = False) -> None:
    """Email every HR officer (and the CS supervisors) in their language; queue the webhook.
    Keys make each message once per notice, event and amendment."""
    seq = notice.amendments
    once = event in ("created", "withdrawn")
    key = f"hr-notice-{notice.id}-{event}" + ("" if once else f"-{seq}")
    for user in _recipients(supervisors):
        email_user(user, key=f"{key}-u{user.id}",
                   subject=lambda: _subject(notice, event),
                   body=lambda: _body(notice, event))
    webhook(event=f"hr_notice.{event}", key=key, payload=webhook_payload(notice, event))


def notice_url(notice: HrNotice) -> str:
    return f"{current_app.config['PORTAL_BASE_URL'].rstrip('/')}/hr/notices/{notice.id}"


def webhook_payload(notice: HrNotice, event: str) -> dict:
    """The notice's own facts, nothing else of the case (HR systems receive it)."""
    return {"notice": notice.number, "id": notice.id,
            "status": notice.status.value, "employee_no": notice.employee_no,
            "employee_name": notice.employee_name, "department": notice.department.code,
            "case": notice.case.number, "clauses": [c["label"] for c in notice.clauses],
            "amount": str(notice.amount),
            "proposal": notice.proposal.value if notice.proposal else None,
            "amendments": notice.amendments, "url": notice_url(notice)}


def _subject(notice: HrNotice, event: str) -> str:
    name = current_app.config["PORTAL_NAME"]
    if event == "amended":
        text = _("HR penalty notice %(n)s amended: please acknowledge it again",
                 n=notice.number)
    elif event == "withdrawn":
        text = _("HR penalty notice %(n)s withdrawn", n=notice.number)
    elif event == "escalated":
        text = _("Escalated: HR penalty notice %(n)s not acknowledged after %(days)d "
                 "working days", n=notice.number, days=escalate_working_days())
    else:
        text = _("New HR penalty notice %(n)s: %(employee)s", n=notice.number,
                 employee=f"{notice.employee_no} {notice.employee_name}")
    return f"[{name}] {text}"


def _body(notice: HrNotice, event: str) -> str:
    intro = {
        "created": _("CS has ruled on a case and names an employee of your company as "
                     "responsible. Please acknowledge receipt in the portal, then record the "
                     "action taken."),
        "amended": _("The ruling behind this notice was corrected or reduced on appeal. The "
                     "notice now reads as below; please acknowledge it again and record the "
                     "action that stands now. The earlier version is kept in its history."),
        "withdrawn": _("The ruling behind this notice was corrected without this employee, or "
                       "the department's penalty was overturned on appeal. No action is to be "
                       "taken; undo any action already taken."),
        "escalated": _("This notice has not been acknowledged within the working days "
                       "allowed. Please acknowledge receipt now."),
    }[event]
    locale = current_locale()
    lines = [intro, "",
             _("Notice: %(n)s", n=notice.number),
             _("Employee: %(no)s %(name)s", no=notice.employee_no, name=notice.employee_name),
             _("Department: %(code)s %(name)s", code=notice.department.code,
               name=notice.department.name(locale)),
             _("Case: %(case)s", case=notice.case.number),
             _("Clauses: %(clauses)s", clauses="; ".join(
                 f"{c['label']} {c['title_en'] if locale.startswith('en') and c['title_en'] else c['title_zh']}"
                 for c in notice.clauses) or "—"),
             _("Amount: %(amount)s", amount=format_yuan(notice.amount)),
             _("Proposed sanction: %(sanction)s", sanction=notice.proposal_label or "—")]
    if notice.proposal_text:
        lines.append(f"  {notice.proposal_text}")
    lines += [_("CS rationale: %(text)s", text=notice.rationale)]
    last = notice.events[-1] if notice.events else None
    if event in ("amended", "withdrawn") and last is not None:
        lines += ["", _("Why: %(ref)s %(reason)s", ref=last.ref, reason=last.reason)]
        if event == "amended":
            before = last.details.get("before", {})
            if before.get("amount") and before["amount"] != str(notice.amount):
                lines.append(_("Amount changed: %(old)s -> %(new)s",
                               old=format_yuan(Decimal(before["amount"])),
                               new=format_yuan(notice.amount)))
    lines += ["", _("Open the notice: %(url)s", url=notice_url(notice)), "",
              _("Service Standards Portal")]
    return "\n".join(lines)


def escalate_working_days() -> int:
    return int(current_app.config["HR_ESCALATE_WORKING_DAYS"])


# --- what a user may see ------------------------------------------------------------------------

def visible_notices_query(user):
    """Notices ``user`` may see: all of them, or a department manager's own department's."""
    q = select(HrNotice).order_by(HrNotice.id.desc())
    scope = party_scope(user)
    if scope is not None:
        q = q.where(HrNotice.department_id == scope)
    return q


STATUS_FILTERS = ("open", "all", *(s.value for s in NoticeStatus))


def inbox_query(user, *, status: str = "open", department_id: int | None = None,
                escalated: bool = False):
    q = visible_notices_query(user)
    if status == "open":
        q = q.where(HrNotice.status.in_([s.value for s in (NoticeStatus.NEW,
                                                             NoticeStatus.ACKNOWLEDGED,
                                                             NoticeStatus.ACTIONED)]))
    elif status != "all":
        q = q.where(HrNotice.status == NoticeStatus(status))
    if department_id:
        q = q.where(HrNotice.department_id == department_id)
    if escalated:
        q = q.where(HrNotice.escalated_at.is_not(None))
    return q


def status_counts(user, department_id: int | None = None) -> dict[str, int]:
    base = visible_notices_query(user).order_by(None)
    if department_id:
        base = base.where(HrNotice.department_id == department_id)
    sub = base.subquery()
    rows = db.session.execute(select(sub.c.status, func.count()).group_by(sub.c.status)).all()
    counts = {str(s): n for s, n in rows}
    counts["open"] = sum(counts.get(s.value, 0) for s in (NoticeStatus.NEW,
                                                          NoticeStatus.ACKNOWLEDGED,
                                                          NoticeStatus.ACTIONED))
    counts["all"] = sum(n for s, n in counts.items() if s in {x.value for x in NoticeStatus})
    escalated = base.where(HrNotice.escalated_at.is_not(None),
                           HrNotice.status == NoticeStatus.NEW).subquery()
    counts["escalated"] = db.session.scalar(select(func.count()).select_from(escalated))
    return counts
