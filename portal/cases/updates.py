"""Telling people when a case moves: emails (each in the reader's language) and webhook events,
queued in the same transaction as the change (``core.notify``). The caller commits.

* a ruling takes effect: the managers of each party it holds responsible are told their share,
  amounts, points and until when they may appeal (event ``case.ruled``);
* an appeal is filed: the officer who ruled is told (another officer decides it) (event
  ``appeal.filed``);
* an appeal is decided: whoever filed it and the party's managers are told the outcome and the
  reasons (event ``appeal.decided``).

Each email is keyed by what happened and who reads it, so it is never queued twice.
"""
from __future__ import annotations

from functools import partial

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from portal.accounts.models import User
from portal.core.money import format_yuan
from portal.core.notify import email_text, email_user, webhook
from portal.core.permissions import Role
from portal.extensions import db

MANAGERS = (Role.PARTY_MANAGER, Role.DEPARTMENT_MANAGER)


def _managers(party_id: int) -> list[User]:
    return db.session.scalars(select(User).where(
        User.party_id == party_id, User.active.is_(True), User.role.in_(MANAGERS))
        .order_by(User.id)).all()


def _link(case) -> str:
    return f"{current_app.config['PORTAL_BASE_URL'].rstrip('/')}/cases/{case.id}"


def ruling_effective(ruling) -> None:
    from portal.cases.appeals import window

    case = ruling.case
    shares = []
    for p in ruling.penalties:
        if not p.active:
            continue
        party = p.party
        shares.append({"party": party.code, "percent": p.share.percent, "fine": str(p.fine),
                       "compensation": str(p.compensation), "amount": str(p.amount),
                       "points": p.points})
        open_window = window(case, party.id)
        for user in _managers(party.id):
            email_text(user, key=f"case-ruled-{ruling.id}:{user.id}",
                       text=partial(_ruled_text, ruling, p, user, open_window))
    webhook(event="case.ruled", key=f"case-ruled-{ruling.id}", payload={
        "case": case.number, "ruling": ruling.number, "total": str(ruling.total_amount),
        "effective_at": ruling.effective_at.isoformat(), "shares": shares})


def _ruled_text(ruling, penalty, user, open_window) -> tuple[str, str]:
    from portal.core.timeutil import zone

    case = ruling.case
    subject = _("Case %(n)s ruled: %(party)s owes %(amount)s", n=case.number,
                party=penalty.party.code, amount=format_yuan(penalty.amount))
    lines = [_("Customer service ruled on case %(n)s (%(title)s).", n=case.number,
               title=case.title),
             _("Your share: %(percent)d%%. Fine %(fine)s, compensation recovered %(comp)s, "
               "%(points)d points.", percent=penalty.share.percent,
               fine=format_yuan(penalty.fine), comp=format_yuan(penalty.compensation),
               points=penalty.points),
             _("Rationale: %(text)s", text=ruling.rationale)]
    if open_window:
        closes = open_window[1].astimezone(zone(user.timezone))
        lines.append(_("You may appeal until %(when)s.", when=closes.strftime("%Y-%m-%d %H:%M")))
    lines.append(_link(case))
    return subject, "\n\n".join(lines)


def appeal_filed(appeal) -> None:
    case, officer = appeal.case, appeal.ruling.officer
    email_user(officer, key=f"appeal-filed-{appeal.id}:{officer.id}",
               subject=lambda: _("Appeal %(a)s filed on case %(n)s", a=appeal.number,
                                 n=case.number),
               body=lambda: "\n\n".join([
                   _("%(party)s appealed your ruling %(r)s on case %(n)s (round %(round)d). "
                     "Another officer decides it.", party=appeal.party.code,
                     r=appeal.ruling.number, n=case.number, round=appeal.round),
                   _link(case)]))
    webhook(event="appeal.filed", key=f"appeal-filed-{appeal.id}", payload={
        "appeal": appeal.number, "case": case.number, "ruling": appeal.ruling.number,
        "party": appeal.party.code, "round": appeal.round})


def appeal_decided(appeal) -> None:
    from portal.cases.appeals import outcome_label

    case = appeal.case
    readers = {u.id: u for u in _managers(appeal.party_id)}
    readers.setdefault(appeal.filed_by.id, appeal.filed_by)
    amount = appeal.new_penalty.amount if appeal.new_penalty else appeal.penalty.amount
    for user in readers.values():
        email_user(user, key=f"appeal-decided-{appeal.id}:{user.id}",
                   subject=lambda: _("Appeal %(a)s on case %(n)s: %(outcome)s", a=appeal.number,
                                     n=case.number, outcome=outcome_label(appeal.status)),
                   body=lambda: "\n\n".join([
                       _("Your appeal %(a)s on case %(n)s was decided: %(outcome)s. Your party "
                         "now owes %(amount)s for this case.", a=appeal.number, n=case.number,
                         outcome=outcome_label(appeal.status), amount=format_yuan(
                             amount if appeal.status.value != "overturned" else 0)),
                       _("Reasons: %(text)s", text=appeal.decision_reason), _link(case)]))
    webhook(event="appeal.decided", key=f"appeal-decided-{appeal.id}", payload={
        "appeal": appeal.number, "case": case.number, "party": appeal.party.code,
        "outcome": appeal.status.value, "reason": appeal.decision_reason,
        "amount": str(amount if appeal.status.value != "overturned" else "0.00")})
