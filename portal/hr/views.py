"""HR notices: the inbox, a notice's page with HR's next step, and its printable PDF.

HR officers act; CS (auditors included) and a department's manager (their own department
only) read. Nothing here links HR into a case: the notice carries what HR may see.
"""
from __future__ import annotations

from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.core.i18n import current_locale
from portal.core.pdf import render_pdf
from portal.core.permissions import Perm, allowed, ensure_visible, party_scope, require
from portal.core.web import page_arg, submit
from portal.extensions import db
from portal.hr import escalation, services
from portal.hr.forms import ActionForm, NoticeStepForm
from portal.hr.models import STATUS_LABELS, HrNotice, NoticeStatus
from portal.parties.models import Party, PartyKind

bp = Blueprint("hr", __name__, url_prefix="/hr")


def _notice_or_404(notice_id: int) -> HrNotice:
    notice = db.session.get(HrNotice, notice_id) or abort(404)
    ensure_visible(notice.department_id)  # department managers: their own department only
    return notice


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


@bp.get("/notices")
@require(Perm.VIEW_HR_NOTICES)
def inbox():
    status = request.args.get("status", "open")
    if status not in services.STATUS_FILTERS:
        status = "open"
    scoped = party_scope(current_user) is not None
    department_id = None if scoped else _int(request.args.get("department"))
    escalated = request.args.get("escalated") == "1"
    q = services.inbox_query(current_user, status=status, department_id=department_id,
                             escalated=escalated)
    page = db.paginate(q, page=page_arg(request), per_page=25, error_out=False)
    departments = [] if scoped else db.session.scalars(
        select(Party).where(Party.kind == PartyKind.DEPARTMENT).order_by(Party.code)).all()
    return render_template("hr/inbox.html", page=page, status=status, escalated=escalated,
                           department_id=department_id, departments=departments,
                           counts=services.status_counts(current_user, department_id),
                           statuses=list(NoticeStatus), labels=STATUS_LABELS)


def _render_detail(notice: HrNotice, form: ActionForm | None = None, status: int = 200):
    may_act = allowed(current_user, Perm.ACT_ON_HR_NOTICES)
    if form is None:
        form = ActionForm(action_kind=services.default_action(notice).value,
                          version=notice.version)
    return render_template("hr/detail.html", notice=notice, form=form, status_labels=STATUS_LABELS,
                           step=NoticeStepForm(version=notice.version), may_act=may_act,
                           may_see_case=allowed(current_user, Perm.VIEW_CASES),
                           due_at=escalation.due_at(notice) if notice.status is NoticeStatus.NEW
                           else None), status


@bp.get("/notices/<int:notice_id>")
@require(Perm.VIEW_HR_NOTICES)
def detail(notice_id: int):
    return _render_detail(_notice_or_404(notice_id))


def _step(notice_id: int, run, success: str):
    notice = _notice_or_404(notice_id)
    form = NoticeStepForm()
    submit(form, lambda: run(notice, form.version.data), success)
    return redirect(url_for("hr.detail", notice_id=notice.id))


@bp.post("/notices/<int:notice_id>/acknowledge")
@require(Perm.ACT_ON_HR_NOTICES)
def acknowledge(notice_id: int):
    return _step(notice_id, lambda n, v: services.acknowledge_notice(n, current_user, v),
                 _("Receipt of the notice acknowledged."))


@bp.post("/notices/<int:notice_id>/close")
@require(Perm.ACT_ON_HR_NOTICES)
def close(notice_id: int):
    return _step(notice_id, lambda n, v: services.close_notice(n, current_user, v),
                 _("Notice closed."))


@bp.post("/notices/<int:notice_id>/action")
@require(Perm.ACT_ON_HR_NOTICES)
def record_action(notice_id: int):
    notice = _notice_or_404(notice_id)
    form = ActionForm(action_kind=services.default_action(notice).value)
    done = submit(form, lambda: services.record_action(
        notice, current_user, form.action_taken.data, kind=form.action_kind.data,
        reason=form.reason.data, version=form.version.data),
        _("Action recorded on %(n)s.", n=notice.number))
    if done.ok:
        return redirect(url_for("hr.detail", notice_id=notice.id))
    db.session.refresh(notice)
    return _render_detail(notice, form, 400)


@bp.get("/notices/<int:notice_id>.pdf")
@require(Perm.VIEW_HR_NOTICES)
def notice_pdf(notice_id: int):
    notice = _notice_or_404(notice_id)
    html = render_template("hr/notice_pdf.html", notice=notice, locale=current_locale(),
                           ruling=notice.penalty.ruling, status_labels=STATUS_LABELS)
    response = make_response(render_pdf(html))
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{notice.number}.pdf"'
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response
