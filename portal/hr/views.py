from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.core.permissions import Perm, allowed, ensure_visible, require
from portal.core.web import ConfirmForm, one_click, page_arg, submit
from portal.extensions import db
from portal.hr import services
from portal.hr.forms import ActionForm
from portal.hr.models import HrNotice

bp = Blueprint("hr", __name__, url_prefix="/hr")


def _notice_or_404(notice_id: int) -> HrNotice:
    notice = db.session.get(HrNotice, notice_id) or abort(404)
    ensure_visible(notice.department_id)  # department managers: their own department only
    return notice


@bp.get("/notices")
@require(Perm.VIEW_HR_NOTICES)
def inbox():
    page = db.paginate(services.visible_notices_query(current_user), page=page_arg(request),
                       per_page=25, error_out=False)
    return render_template("hr/inbox.html", page=page)


@bp.get("/notices/<int:notice_id>")
@require(Perm.VIEW_HR_NOTICES)
def detail(notice_id: int, form: ActionForm | None = None):
    notice = _notice_or_404(notice_id)
    return render_template("hr/detail.html", notice=notice, confirm=ConfirmForm(),
                           form=form or ActionForm(),
                           may_act=allowed(current_user, Perm.ACT_ON_HR_NOTICES))


@bp.post("/notices/<int:notice_id>/acknowledge")
@require(Perm.ACT_ON_HR_NOTICES)
def acknowledge(notice_id: int):
    notice = _notice_or_404(notice_id)
    return one_click(lambda: services.acknowledge_notice(notice, current_user),
                     _("Receipt of %(n)s acknowledged.", n=notice.number),
                     url_for("hr.detail", notice_id=notice.id))


@bp.post("/notices/<int:notice_id>/action")
@require(Perm.ACT_ON_HR_NOTICES)
def record_action(notice_id: int):
    notice = _notice_or_404(notice_id)
    form = ActionForm()
    done = submit(form, lambda: services.record_action(notice, current_user,
                                                       form.action_taken.data),
                  _("Action recorded on %(n)s.", n=notice.number))
    if done.ok:
        return redirect(url_for("hr.detail", notice_id=notice.id))
    return detail(notice_id, form=form), 400
