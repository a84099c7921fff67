from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
)
from flask_login import current_user, login_required
from sqlalchemy import func, select

from portal.accounts.services import set_locale
from portal.cases.models import Case, CaseStatus
from portal.cases.services import visible_cases_query, visible_penalties_query
from portal.core.permissions import Perm, allowed, party_scope
from portal.core.web import safe_target
from portal.extensions import db
from portal.hr.models import NoticeStatus
from portal.hr.services import visible_notices_query
from portal.standards.services import pending_acknowledgements

bp = Blueprint("main", __name__)


@bp.get("/")
@login_required
def home():
    ctx = {"pending": pending_acknowledgements(current_user)}
    if allowed(current_user, Perm.TAKE_TRAINING):
        from portal.training.models import TrainingStatus
        from portal.training.reports import tasks_of

        ctx["training"] = tasks_of(current_user, statuses=(TrainingStatus.OPEN,))
    if allowed(current_user, Perm.VIEW_CASES):
        base = visible_cases_query(current_user).order_by(None).subquery()
        ctx["open_cases"] = db.session.scalar(
            select(func.count()).select_from(base).where(base.c.status == CaseStatus.OPEN.value))
        ctx["recent_cases"] = db.session.scalars(visible_cases_query(current_user).limit(8)).all()
    if allowed(current_user, Perm.VIEW_PENALTIES):
        pq = visible_penalties_query(current_user).order_by(None).subquery()
        ctx["penalty_total"] = db.session.scalar(select(func.coalesce(func.sum(pq.c.amount), 0)))
    if allowed(current_user, Perm.VIEW_PENALTIES) and current_user.party is not None \
            and party_scope(current_user) == current_user.party_id:
        from portal.cases import sanctions

        ctx["standing"] = {"party": current_user.party, "year": sanctions.current_year(),
                           "points": sanctions.year_points(current_user.party_id),
                           "levels": sanctions.LEVEL_LABELS}
    if allowed(current_user, Perm.VIEW_HR_NOTICES):
        nq = visible_notices_query(current_user).order_by(None).subquery()
        waiting = (NoticeStatus.NEW.value, NoticeStatus.ACKNOWLEDGED.value)   # for HR to act
        ctx["notices_open"] = db.session.scalar(
            select(func.count()).select_from(nq).where(nq.c.status.in_(waiting)))
    return render_template("main/home.html", **ctx, Case=Case)


@bp.post("/lang")
def set_language():
    lang = request.form.get("lang", "")
    if lang not in current_app.config["PORTAL_LANGUAGES"]:
        abort(400)
    session["lang"] = lang
    if current_user.is_authenticated:
        set_locale(current_user, lang)
        db.session.commit()
    return redirect(safe_target(request.form.get("next")))
