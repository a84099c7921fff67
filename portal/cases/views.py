from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.cases import services
from portal.cases.forms import CaseForm, RulingForm, ViolationForm
from portal.cases.models import Case
from portal.core.forms import choices
from portal.core.permissions import Perm, allowed, ensure_visible, party_scope, require
from portal.core.web import page_arg, submit
from portal.extensions import db
from portal.parties.forms import KIND_LABELS
from portal.parties.models import Party
from portal.standards.models import Clause

bp = Blueprint("cases", __name__)


def _case_or_404(case_id: int) -> Case:
    case = db.session.get(Case, case_id) or abort(404)
    ensure_visible(case.party_ids())
    return case


def _party_choices():
    parties = db.session.scalars(select(Party).where(Party.active.is_(True))
                                 .order_by(Party.kind, Party.code)).all()
    return [(p.id, f"{p.code} {p.name_zh} · {KIND_LABELS[p.kind]}") for p in parties]


def _violation_form(form: ViolationForm | None = None) -> ViolationForm:
    form = form or ViolationForm()
    form.clause_id.choices = choices(
        (c.id, f"{c.label} {c.title_zh}" + (f" (¥{c.fine_per_occurrence})" if c.fine_per_occurrence else ""))
        for c in services.ruled_clauses())
    form.party_id.choices = choices(_party_choices())
    return form


def _ruling_form(form: RulingForm | None = None) -> RulingForm:
    form = form or RulingForm()
    options = choices([(0, "—")] + _party_choices())
    for row in form.shares:
        row.form.party_id.choices = options
    return form


@bp.get("/cases")
@require(Perm.VIEW_CASES)
def index():
    page = db.paginate(services.visible_cases_query(current_user), page=page_arg(request),
                       per_page=25, error_out=False)
    return render_template("cases/index.html", page=page, scope=party_scope(current_user))


@bp.route("/cases/new", methods=["GET", "POST"])
@require(Perm.HANDLE_CASES)
def new():
    form = CaseForm()
    done = submit(form, lambda: services.open_case(
        title=form.title.data, description=form.description.data,
        incident_at=form.incident_at.utc(current_user.timezone), user=current_user),
        lambda case: _("Case %(n)s opened.", n=case.number))
    if done.ok:
        return redirect(url_for("cases.detail", case_id=done.result.id))
    return render_template("cases/form.html", form=form)


@bp.get("/cases/<int:case_id>")
@require(Perm.VIEW_CASES)
def detail(case_id: int, violation_form=None, ruling_form=None):
    case = _case_or_404(case_id)
    scope = party_scope(current_user)
    ctx = {"case": case, "total": services.case_total(case), "scope": scope,
           "violations": case.violations_for(scope), "penalties": case.penalties_for(scope)}
    if allowed(current_user, Perm.HANDLE_CASES):
        ctx["violation_form"] = _violation_form(violation_form)
        ctx["ruling_form"] = _ruling_form(ruling_form)
    return render_template("cases/detail.html", **ctx)


@bp.post("/cases/<int:case_id>/violations")
@require(Perm.HANDLE_CASES)
def add_violation(case_id: int):
    case = _case_or_404(case_id)
    form = _violation_form()
    done = submit(form, lambda: services.record_violation(
        case, clause=db.session.get(Clause, form.clause_id.data),
        party=db.session.get(Party, form.party_id.data), occurrences=form.occurrences.data,
        evidence=form.evidence.data, user=current_user), _("Violation recorded."))
    if done.ok:
        return redirect(url_for("cases.detail", case_id=case.id))
    return detail(case_id, violation_form=form), 400


@bp.post("/cases/<int:case_id>/ruling")
@require(Perm.HANDLE_CASES)
def rule(case_id: int):
    case = _case_or_404(case_id)
    form = _ruling_form()

    def shares():
        return [services.ShareInput(party_id=r.party_id.data, percent=r.percent.data or 0,
                                    employee_no=r.employee_no.data or "",
                                    employee_name=r.employee_name.data or "")
                for r in (row.form for row in form.shares) if r.party_id.data]

    done = submit(form, lambda: services.issue_ruling(
        case, officer=current_user, rationale=form.rationale.data, shares=shares()),
        _("Ruling issued on %(n)s.", n=case.number))
    if done.ok:
        return redirect(url_for("cases.detail", case_id=case.id))
    return detail(case_id, ruling_form=form), 400


@bp.get("/penalties")
@require(Perm.VIEW_PENALTIES)
def penalties():
    page = db.paginate(services.visible_penalties_query(current_user), page=page_arg(request),
                       per_page=50, error_out=False)
    return render_template("cases/penalties.html", page=page)


from portal.cases import evidence_views  # noqa: F401  (evidence routes on bp)
